"""``instrument_anthropic()``: every call of the official ``anthropic`` client's Messages API
(``client.messages.create``, sync and async, ``stream=True`` included) becomes an LLM call
with request and response model, tokens by kind, cost, stop reason, time to first token when
streamed, the tool calls the model asked for (``gen_ai.response.tool_calls`` count, names and
ids) and, for a failed call, the error type and HTTP status. Content (``gen_ai.input.messages``,
``gen_ai.system_instructions``, ``gen_ai.output.messages``) is collected only when the tenant
captures content.

Anthropic's ``input_tokens`` counts neither the tokens read from its cache nor those written to
it; Mission Control's input tokens include both (as OpenAI counts them), so the input recorded
is their sum, of which ``cache_read_input_tokens`` are cached (priced at the cached price) and
``cache_creation_input_tokens`` are priced at the cache-creation price.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._instrument import Call, Hooks, StreamObserver, attr, content, patch, tokens, unpatch


def _usage(call: Call, usage: Any) -> None:
    if usage is None:
        return
    read = tokens(attr(usage, "cache_read_input_tokens"))
    created = tokens(attr(usage, "cache_creation_input_tokens"))
    call.span.record_usage(
        tokens(attr(usage, "input_tokens")) + read + created,
        tokens(attr(usage, "output_tokens")),
        cached_input_tokens=read,
        cache_creation_input_tokens=created,
    )


def _answer(call: Call, model: Any, message_id: Any, usage: Any, stop: Any, blocks: List[Any]) -> None:
    if isinstance(model, str) and model:
        call.set("gen_ai.response.model", model)
    call.set("gen_ai.response.id", message_id)
    _usage(call, usage)
    if isinstance(stop, str) and stop:
        call.span.set_finish_reason(stop)
    tools = [b for b in blocks if attr(b, "type") in ("tool_use", "server_tool_use")]
    if tools:
        call.set("gen_ai.response.tool_calls", len(tools))
        call.set("gen_ai.response.tool_calls.names", ",".join(str(attr(b, "name") or "") for b in tools))
        call.set("gen_ai.response.tool_calls.ids", ",".join(str(attr(b, "id") or "") for b in tools))
    if call.capture and blocks:
        call.set("gen_ai.output.messages", content([{"role": "assistant", "content": blocks}]))


class _MessagesStream(StreamObserver):
    """Usage over a stream: ``message_start`` has the input side, each ``message_delta`` the
    output so far (cumulative, and lately the input side again); the last value wins."""

    def __init__(self) -> None:
        self.message: Any = None
        self.usage: Dict[str, int] = {}
        self.stop: Any = None
        self.blocks: List[Any] = []
        self.text: List[str] = []

    def _take(self, usage: Any) -> None:
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = attr(usage, key)
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = value

    def item(self, event: Any) -> Any:
        kind = attr(event, "type")
        if kind == "message_start":
            self.message = attr(event, "message")
            self._take(attr(self.message, "usage"))
        elif kind == "content_block_start":
            self.blocks.append(attr(event, "content_block"))
        elif kind == "content_block_delta":
            text = attr(event, "delta", "text")
            if isinstance(text, str):
                self.text.append(text)
            return True
        elif kind == "message_delta":
            self.stop = attr(event, "delta", "stop_reason") or self.stop
            self._take(attr(event, "usage"))
        return False

    def finish(self, call: Call) -> None:
        blocks = self.blocks
        if call.capture and self.text:
            blocks = [b for b in blocks if attr(b, "type") != "text"] + [{"type": "text", "text": "".join(self.text)}]
        _answer(call, attr(self.message, "model"), attr(self.message, "id"),
                self.usage or None, self.stop, blocks)


class _MessagesHooks(Hooks):
    provider = "anthropic"

    def start(self, call: Call, kwargs: Dict[str, Any]) -> Optional[StreamObserver]:
        for key, name in (("max_tokens", "max_tokens"), ("temperature", "temperature"),
                          ("top_p", "top_p"), ("top_k", "top_k")):
            call.set(f"gen_ai.request.{name}", kwargs.get(key))
        if call.capture:
            if kwargs.get("messages") is not None:
                call.set("gen_ai.input.messages", content(kwargs["messages"]))
            if kwargs.get("system") is not None:
                call.set("gen_ai.system_instructions", content(kwargs["system"]))
        return _MessagesStream() if kwargs.get("stream") is True else None

    def answer(self, call: Call, result: Any) -> None:
        _answer(call, attr(result, "model"), attr(result, "id"), attr(result, "usage"),
                attr(result, "stop_reason"), attr(result, "content") or [])


def _owners() -> List[type]:
    try:
        from anthropic.resources.messages import AsyncMessages, Messages
    except ImportError as e:
        raise ImportError(
            "instrument_anthropic() needs the anthropic package: "
            "pip install 'mission-control-observability[anthropic]'"
        ) from e
    return [Messages, AsyncMessages]


def instrument(control: Any = None) -> None:
    """Patches the ``anthropic`` client (see the module documentation)."""
    hooks = _MessagesHooks()
    messages, async_messages = _owners()
    patch([(messages, "create", hooks), (async_messages, "create", hooks)], control)


def uninstrument() -> None:
    """Restores the ``anthropic`` client's methods."""
    unpatch(_owners())
