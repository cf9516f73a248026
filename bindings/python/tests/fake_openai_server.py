"""A small OpenAI-compatible server on loopback for the framework tests (no network).

It speaks Chat Completions (plain and streamed) and the Responses API (plain and streamed) and
answers every call with the same known usage: ``INPUT`` input tokens of which ``CACHED`` were
read from the cache, ``OUTPUT`` output tokens of which ``REASONING`` were reasoning, so a test
can assert exact tokens and cost. When the request offers tools and no tool result came back
yet, the model asks for the first tool (arguments ``{"city": "Paris"}``); otherwise it answers
``ANSWER``. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Dict, List

INPUT, CACHED, OUTPUT, REASONING = 812, 512, 64, 16
MODEL_SNAPSHOT = "gpt-4o-mini-2024-07-18"
ANSWER = "It is sunny in Paris."
TOOL_ARGUMENTS = json.dumps({"city": "Paris"})
# What one call costs for gpt-4o-mini in the default price table: $0.15/M input, $0.075/M cached
# input, $0.60/M output.
EXACT_COST = ((INPUT - CACHED) * 0.15 + CACHED * 0.075 + OUTPUT * 0.60) / 1e6


def chat_usage() -> Dict[str, Any]:
    return {
        "prompt_tokens": INPUT,
        "completion_tokens": OUTPUT,
        "total_tokens": INPUT + OUTPUT,
        "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": REASONING, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def responses_usage() -> Dict[str, Any]:
    return {
        "input_tokens": INPUT,
        "input_tokens_details": {"cached_tokens": CACHED},
        "output_tokens": OUTPUT,
        "output_tokens_details": {"reasoning_tokens": REASONING},
        "total_tokens": INPUT + OUTPUT,
    }


def _wants_tool_chat(body: Dict[str, Any]) -> bool:
    return bool(body.get("tools")) and not any(m.get("role") == "tool" for m in body.get("messages", []))


def _wants_tool_responses(body: Dict[str, Any]) -> bool:
    items = body.get("input")
    answered = isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
    )
    return bool(body.get("tools")) and not answered


def _tool_name(tool: Dict[str, Any]) -> str:
    return tool.get("name") or tool.get("function", {}).get("name", "tool")


def chat_completion(body: Dict[str, Any]) -> Dict[str, Any]:
    if _wants_tool_chat(body):
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": _tool_name(body["tools"][0]), "arguments": TOOL_ARGUMENTS},
        }]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": ANSWER}, "stop"
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": MODEL_SNAPSHOT, "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": chat_usage(),
    }


def chat_chunks(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": MODEL_SNAPSHOT}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for word in ANSWER.split(" "):
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]))
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(dict(base, choices=[], usage=chat_usage()))
    return chunks


def response(body: Dict[str, Any]) -> Dict[str, Any]:
    if _wants_tool_responses(body):
        output = [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "status": "completed",
                   "name": _tool_name(body["tools"][0]), "arguments": TOOL_ARGUMENTS}]
    else:
        output = [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}]
    return {
        "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "model": MODEL_SNAPSHOT, "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": body.get("tools", []), "usage": responses_usage(), "error": None,
        "incomplete_details": None, "instructions": body.get("instructions"), "metadata": {},
        "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}, "truncation": "disabled",
    }


def response_events(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    done = response(body)
    started = dict(done, status="in_progress", output=[], usage=None)
    events = [{"type": "response.created", "sequence_number": 0, "response": started}]
    for i, item in enumerate(done["output"]):
        events.append({"type": "response.output_item.done", "sequence_number": i + 1, "output_index": i, "item": item})
    events.append({"type": "response.completed", "sequence_number": len(events), "response": done})
    return events


class FakeOpenAI:
    """The server, started on a free loopback port; ``url`` is the ``base_url`` for clients."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                requests.append(dict(body, _path=self.path))
                if self.path.endswith("/chat/completions"):
                    if body.get("stream"):
                        return self._stream([(None, c) for c in chat_chunks(body)])
                    return self._json(chat_completion(body))
                if self.path.endswith("/responses"):
                    if body.get("stream"):
                        return self._stream([(e["type"], e) for e in response_events(body)])
                    return self._json(response(body))
                self._json({"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}}, 404)

            def _json(self, payload: Dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, events: List[Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, payload in events:
                    prefix = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{prefix}data: {json.dumps(payload)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
