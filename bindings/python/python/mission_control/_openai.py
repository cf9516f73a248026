"""``instrument_openai()``: every call of the official ``openai`` client's Chat Completions
(``client.chat.completions.create``, ``.parse``, ``.stream``) and Responses
(``client.responses.create``, ``.parse``, ``.stream``), sync and async, streaming or not, also
through ``with_raw_response``, becomes an LLM call with request and response model, tokens by kind
(input, cached input, output, reasoning), cost, finish reasons, time to first token when
streamed, the tool calls the model asked for (``gen_ai.response.tool_calls`` count, names and
ids) and, for a failed call, the error type and HTTP status. Prompt and completion content
(``gen_ai.input.messages``, ``gen_ai.system_instructions``, ``gen_ai.output.messages``) is
collected only when the tenant captures content.

Streaming Chat Completions report usage only when asked: when the caller did not set
``stream_options``, we ask (``include_usage``) and keep the extra usage-only chunk from the
caller, so what the caller reads is unchanged and the cost is exact. A caller's own
``stream_options`` is left as it is (without ``include_usage`` the call has no tokens), and so
is every request with ``instrument_openai(stream_usage=False)`` (for a server that refuses
``stream_options``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._instrument import Call, Hooks, StreamObserver, attr, content, patch, tokens, unpatch


def _usage(call: Call, usage: Any, input_key: str, output_key: str) -> None:
    """Records OpenAI usage (input includes cached tokens, output includes reasoning ones)."""
    if usage is None:
        return
    details_in = attr(usage, f"{input_key}_details") or attr(usage, "input_tokens_details")
    details_out = attr(usage, f"{output_key}_details") or attr(usage, "output_tokens_details")
    call.span.record_usage(
        tokens(attr(usage, input_key)),
        tokens(attr(usage, output_key)),
        cached_input_tokens=tokens(attr(details_in, "cached_tokens")),
        reasoning_tokens=tokens(attr(details_out, "reasoning_tokens")),
    )


def _tool_calls(call: Call, calls: List[Any]) -> None:
    """The tool calls the model asked for: count, names and ids (no arguments: content)."""
    if calls:
        call.set("gen_ai.response.tool_calls", len(calls))
        call.set("gen_ai.response.tool_calls.names", ",".join(str(c[0] or "") for c in calls))
        call.set("gen_ai.response.tool_calls.ids", ",".join(str(c[1] or "") for c in calls))


def _response_meta(call: Call, answer: Any) -> None:
    model = attr(answer, "model")
    if isinstance(model, str) and model:
        call.set("gen_ai.response.model", model)
    call.set("gen_ai.response.id", attr(answer, "id"))


# Request parameters recorded (when given) and their attribute names.
_REQUEST_ATTRIBUTES = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
)


_REQUEST_KEYS = frozenset(key for key, _ in _REQUEST_ATTRIBUTES)


def _request(call: Call, kwargs: Dict[str, Any], content_keys: Dict[str, str]) -> None:
    if not _REQUEST_KEYS.isdisjoint(kwargs):
        for key, name in _REQUEST_ATTRIBUTES:
            value = kwargs.get(key)
            if value is not None:
                call.set(name, value)
    if call.capture:
        for key, name in content_keys.items():
            if kwargs.get(key) is not None:
                call.set(name, content(kwargs[key]))


class _ChatStream(StreamObserver):
    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.meta: Any = None
        self.usage: Any = None
        self.reasons: Dict[int, str] = {}
        self.tools: Dict[tuple, List[Any]] = {}
        self.text: Dict[int, List[str]] = {}

    def item(self, chunk: Any) -> Any:
        if self.meta is None and attr(chunk, "model"):
            self.meta = chunk
        usage = attr(chunk, "usage")
        if usage is not None:
            self.usage = usage
        choices = attr(chunk, "choices") or []
        token = False
        for choice in choices:
            index = attr(choice, "index") or 0
            if attr(choice, "finish_reason"):
                self.reasons[index] = attr(choice, "finish_reason")
            delta = attr(choice, "delta")
            text = attr(delta, "content")
            if text:
                token = True
                self.text.setdefault(index, []).append(text)
            for tool in attr(delta, "tool_calls") or []:
                token = True
                entry = self.tools.setdefault((index, attr(tool, "index") or 0), [None, None])
                entry[0] = entry[0] or attr(tool, "function", "name")
                entry[1] = entry[1] or attr(tool, "id")
        if not choices and usage is not None and self.hide_usage_chunk:
            return StreamObserver.HIDE
        return token

    def finish(self, call: Call) -> None:
        if self.meta is not None:
            _response_meta(call, self.meta)
        _usage(call, self.usage, "prompt_tokens", "completion_tokens")
        if self.reasons:
            call.span.set_finish_reason(",".join(self.reasons[i] for i in sorted(self.reasons)))
        _tool_calls(call, [self.tools[k] for k in sorted(self.tools)])
        if call.capture and self.text:
            out = [{"role": "assistant", "content": "".join(self.text[i])} for i in sorted(self.text)]
            call.set("gen_ai.output.messages", content(out))


class _ChatHooks(Hooks):
    provider = "openai"

    def __init__(self, stream_usage: bool) -> None:
        self.stream_usage = stream_usage

    def start(self, call: Call, kwargs: Dict[str, Any]) -> Optional[StreamObserver]:
        _request(call, kwargs, {"messages": "gen_ai.input.messages"})
        if kwargs.get("stream") is not True:
            return None
        options = kwargs.get("stream_options")
        # The client's "not given" sentinels (NotGiven, Omit) mean unset, like None.
        asked = self.stream_usage and (options is None or type(options).__name__ in ("NotGiven", "Omit"))
        if asked:
            kwargs["stream_options"] = {"include_usage": True}
        return _ChatStream(hide_usage_chunk=asked)

    def answer(self, call: Call, result: Any) -> Any:
        # The client's parsed ChatCompletion, read attribute by attribute, and the span ended
        # in one native call; anything else (a raw or odd answer) goes the generic way.
        try:
            choices = result.choices
            usage = result.usage
            reasons: Any = None
            asked: List[Any] = []
            for choice in choices:
                reason = choice.finish_reason
                if reason:
                    reasons = reason if reasons is None else f"{reasons},{reason}"
                tools = choice.message.tool_calls
                if tools:
                    asked.extend([t.function.name, t.id] for t in tools)
            if usage is None:
                counts: Any = (None, None, None, None)
            else:
                details_in, details_out = usage.prompt_tokens_details, usage.completion_tokens_details
                counts = (usage.prompt_tokens, usage.completion_tokens,
                          details_in.cached_tokens if details_in is not None else None,
                          details_out.reasoning_tokens if details_out is not None else None)
            model, answer_id = result.model, result.id
        except AttributeError:
            self._answer(call, result)
            return False
        if asked:
            _tool_calls(call, asked)
        if call.capture and choices:
            call.set("gen_ai.output.messages", content([c.message for c in choices]))
        call.span.end_llm_call(model, answer_id, *counts, reasons)
        return True

    @staticmethod
    def _answer(call: Call, result: Any) -> None:
        _response_meta(call, result)
        _usage(call, attr(result, "usage"), "prompt_tokens", "completion_tokens")
        choices = attr(result, "choices") or []
        reasons = [attr(c, "finish_reason") for c in choices if attr(c, "finish_reason")]
        if reasons:
            call.span.set_finish_reason(",".join(reasons))
        _tool_calls(call, [[attr(t, "function", "name"), attr(t, "id")]
                           for c in choices for t in (attr(c, "message", "tool_calls") or [])])
        if call.capture and choices:
            call.set("gen_ai.output.messages", content([attr(c, "message") for c in choices]))


def _responses_answer(call: Call, response: Any) -> None:
    _response_meta(call, response)
    _usage(call, attr(response, "usage"), "input_tokens", "output_tokens")
    status = attr(response, "status")
    reason = attr(response, "incomplete_details", "reason") or status
    if isinstance(reason, str) and reason:
        call.span.set_finish_reason(reason)
    output = attr(response, "output") or []
    _tool_calls(call, [[attr(o, "name"), attr(o, "call_id")]
                       for o in output if attr(o, "type") == "function_call"])
    error = attr(response, "error")
    if status == "failed" or error is not None:
        message = attr(error, "message") or "the response failed"
        call.span.set_error(f"{attr(error, 'code') or 'response_failed'}: {message}")
        call.set("error.type", attr(error, "code") or "response_failed")
    if call.capture and output:
        call.set("gen_ai.output.messages", content(output))


class _ResponsesStream(StreamObserver):
    def __init__(self) -> None:
        self.final: Any = None

    def item(self, event: Any) -> Any:
        kind = attr(event, "type") or ""
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = attr(event, "response")
        elif kind == "response.created" and self.final is None:
            self.final = attr(event, "response")
        return kind.endswith(".delta")

    def finish(self, call: Call) -> None:
        if self.final is not None:
            _responses_answer(call, self.final)


class _ResponsesHooks(Hooks):
    provider = "openai"

    def start(self, call: Call, kwargs: Dict[str, Any]) -> Optional[StreamObserver]:
        _request(call, kwargs, {"input": "gen_ai.input.messages",
                                "instructions": "gen_ai.system_instructions"})
        return _ResponsesStream() if kwargs.get("stream") is True else None

    def answer(self, call: Call, result: Any) -> None:
        _responses_answer(call, result)


def _owners() -> List[type]:
    try:
        from openai.resources.chat.completions import AsyncCompletions, Completions
        from openai.resources.responses import AsyncResponses, Responses
    except ImportError as e:
        raise ImportError(
            "instrument_openai() needs the openai package: "
            "pip install 'mission-control-observability[openai]'"
        ) from e
    return [Completions, AsyncCompletions, Responses, AsyncResponses]


def instrument(control: Any = None, stream_usage: bool = True) -> None:
    """Patches the ``openai`` client (see the module documentation); ``stream_usage=False``
    never adds ``stream_options`` to a request."""
    chat, responses = _ChatHooks(stream_usage), _ResponsesHooks()
    completions, async_completions, resp, async_resp = _owners()
    targets = [(completions, "create", chat), (async_completions, "create", chat),
               (resp, "create", responses), (async_resp, "create", responses)]
    # Structured outputs (``.parse(...)``) post on their own, not through ``create``; the
    # ``.stream(...)`` helpers call ``create`` and are recorded through it.
    targets += [(owner, "parse", hooks) for owner, hooks in
                ((completions, chat), (async_completions, chat), (resp, responses), (async_resp, responses))
                if "parse" in owner.__dict__]
    patch(targets, control)


def uninstrument() -> None:
    """Restores the ``openai`` client's methods."""
    unpatch(_owners())
