"""A fake LLM provider on loopback for the instrumentation tests: it speaks OpenAI Chat
Completions and Responses and Anthropic Messages, each with and without SSE streaming, and
answers every call with the same known usage, so that the tests can assert exact tokens and
cost. The real ``openai`` and ``anthropic`` clients talk to it through ``base_url``.

- the answer names the dated snapshot of the model asked for (``RESPONSE_MODELS``), or the model;
- a model named ``fail-400`` or ``fail-500`` gets that HTTP status with the provider's error body;
- a request with ``tools`` gets one tool call (``get_weather``, id ``call_1`` / ``toolu_1``);
- every request body is kept in ``requests`` as (path, JSON).
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Dict, List, Tuple

# The snapshot that answers for a model asked for (as the providers name them).
RESPONSE_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "claude-sonnet-4": "claude-sonnet-4-20250514",
}
# OpenAI usage (the example): 812 input tokens of which 512 read from the cache; 64
# output of which 16 reasoning.
OPENAI_USAGE = {"input": 812, "cached": 512, "output": 64, "reasoning": 16}
# Anthropic usage: 100 fresh input tokens, 2,000 read from the cache, 1,000 written to it; 50 output.
ANTHROPIC_USAGE = {"input": 100, "cache_read": 2000, "cache_creation": 1000, "output": 50}
TEXT = ["Sun", "ny in ", "Paris."]


def _model(body: Dict[str, Any]) -> str:
    model = str(body.get("model", ""))
    return RESPONSE_MODELS.get(model, model)


def _chat_usage() -> Dict[str, Any]:
    u = OPENAI_USAGE
    return {
        "prompt_tokens": u["input"],
        "completion_tokens": u["output"],
        "total_tokens": u["input"] + u["output"],
        "prompt_tokens_details": {"cached_tokens": u["cached"], "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0},
    }


def _responses_usage() -> Dict[str, Any]:
    u = OPENAI_USAGE
    return {
        "input_tokens": u["input"],
        "input_tokens_details": {"cached_tokens": u["cached"]},
        "output_tokens": u["output"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
        "total_tokens": u["input"] + u["output"],
    }


def _anthropic_usage(output: int) -> Dict[str, Any]:
    u = ANTHROPIC_USAGE
    return {
        "input_tokens": u["input"],
        "cache_read_input_tokens": u["cache_read"],
        "cache_creation_input_tokens": u["cache_creation"],
        "output_tokens": output,
    }


def _chat(body: Dict[str, Any]) -> List[Tuple[str, Any]]:
    """The chat answer, as SSE events when streamed, else one (None, JSON) pair."""
    tools = bool(body.get("tools"))
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    base = {"id": "chatcmpl-1", "created": 1, "model": _model(body)}
    if not body.get("stream"):
        message: Dict[str, Any] = {"role": "assistant", "content": None if tools else "".join(TEXT)}
        if tools:
            message["tool_calls"] = [tool_call]
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}
        return [(None, dict(base, object="chat.completion", choices=[choice], usage=_chat_usage()))]
    chunk = dict(base, object="chat.completion.chunk")
    deltas: List[Dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if tools:
        deltas.append({"tool_calls": [dict(tool_call, index=0)]})
    else:
        deltas += [{"content": t} for t in TEXT]
    events = [(None, dict(chunk, choices=[{"index": 0, "delta": d, "finish_reason": None}])) for d in deltas]
    events.append((None, dict(chunk, choices=[{"index": 0, "delta": {},
                                               "finish_reason": "tool_calls" if tools else "stop"}])))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((None, dict(chunk, choices=[], usage=_chat_usage())))
    events.append((None, "[DONE]"))
    return events


def _response(body: Dict[str, Any], done: bool) -> Dict[str, Any]:
    tools = bool(body.get("tools"))
    output: List[Dict[str, Any]] = []
    if done:
        if tools:
            output.append({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
                           "arguments": '{"city": "Paris"}', "status": "completed"})
        else:
            output.append({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": "".join(TEXT), "annotations": []}]})
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "model": _model(body),
        "status": "completed" if done else "in_progress", "output": output,
        "usage": _responses_usage() if done else None, "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
    }


def _responses(body: Dict[str, Any]) -> List[Tuple[str, Any]]:
    if not body.get("stream"):
        return [(None, _response(body, True))]
    # The events OpenAI sends for one text message, in its order: the SDK's
    # ``client.responses.stream()`` helper needs the item and part to be announced first.
    started = _response(body, False)
    text = "".join(TEXT)
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: List[Tuple[str, Any]] = [
        ("response.created", {"type": "response.created", "response": started}),
        ("response.in_progress", {"type": "response.in_progress", "response": started}),
        ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
        ("response.content_part.added", {"type": "response.content_part.added", **where, "part": part}),
    ]
    for t in TEXT:
        events.append(("response.output_text.delta", {"type": "response.output_text.delta", **where, "delta": t,
                                                      "logprobs": []}))
    done_item = _response(body, True)["output"][0]
    events += [
        ("response.output_text.done", {"type": "response.output_text.done", **where, "text": text, "logprobs": []}),
        ("response.content_part.done", {"type": "response.content_part.done", **where,
                                        "part": dict(part, text=text)}),
        ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": done_item}),
        ("response.completed", {"type": "response.completed", "response": _response(body, True)}),
    ]
    return [(name, dict(data, sequence_number=i)) for i, (name, data) in enumerate(events)]


def _messages(body: Dict[str, Any]) -> List[Tuple[str, Any]]:
    tools = bool(body.get("tools"))
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    stop = "tool_use" if tools else "end_turn"
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": _model(body),
               "stop_reason": stop, "stop_sequence": None}
    blocks = [{"type": "text", "text": "".join(TEXT)}] + ([tool_use] if tools else [])
    if not body.get("stream"):
        return [(None, dict(message, content=blocks, usage=_anthropic_usage(ANTHROPIC_USAGE["output"])))]
    start = dict(message, content=[], stop_reason=None, usage=_anthropic_usage(1))
    events: List[Tuple[str, Any]] = [("message_start", {"type": "message_start", "message": start})]
    events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}))
    events.append(("ping", {"type": "ping"}))
    for t in TEXT:
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": t}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tools:
        events.append(("content_block_start", {"type": "content_block_start", "index": 1,
                                               "content_block": dict(tool_use, input={})}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 1,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": '{"city": "Paris"}'}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": ANTHROPIC_USAGE["output"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


_ROUTES = {"/v1/chat/completions": _chat, "/v1/responses": _responses, "/v1/messages": _messages}


def respond(path: str, body: Dict[str, Any]) -> Tuple[int, str, bytes]:
    """The answer to a POST of ``body`` to ``path``: (HTTP status, content type, payload). Also
    what the benchmark's in-process transport answers with."""
    route = _ROUTES.get(path)
    model = str(body.get("model", ""))
    if route is None or model.startswith("fail-"):
        status = 404 if route is None else int(model[len("fail-"):])
        if path == "/v1/messages":
            kind = "api_error" if status >= 500 else "invalid_request_error"
            error: Dict[str, Any] = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
        else:
            error = {"error": {"message": f"fake {status}", "type": "invalid_request_error",
                               "code": "fake", "param": None}}
        return status, "application/json", json.dumps(error).encode()
    events = route(body)
    if not body.get("stream"):
        return 200, "application/json", json.dumps(events[0][1]).encode()
    lines = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}\n")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return 200, "text/event-stream", "".join(lines).encode()


class FakeLLM:
    """The server; ``url`` is its root (OpenAI's ``base_url`` is ``url + "/v1"``)."""

    def __init__(self) -> None:
        self.requests: List[Tuple[str, Dict[str, Any]]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                path = self.path.split("?")[0]
                requests.append((path, body))
                self._send(*respond(path, body))

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
