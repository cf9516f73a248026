"""The OpenTelemetry bridge: apps already instrumented with OpenTelemetry (or OpenLLMetry, or
any library emitting the GenAI semantic conventions) feed Mission Control with no code change.

    from opentelemetry.sdk.trace import TracerProvider
    from mission_control.otel import MissionSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(MissionSpanProcessor(control))

Each ended span becomes a Mission Control span with the same trace id (the thread), span id
and parent: LLM calls (``gen_ai.operation.name`` chat/text_completion/…, or a request model)
with model, provider and token usage — priced like native ones — tool calls
(``execute_tool``/``gen_ai.tool.name``), agent steps, retrievals, and everything else as
``custom``. Requires ``opentelemetry-sdk`` (``pip install 'mission-control-observability[otel]'``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

try:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.trace import StatusCode
except ImportError as e:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "mission_control.otel needs opentelemetry-sdk: pip install 'mission-control-observability[otel]'"
    ) from e

__all__ = ["MissionSpanProcessor"]

_LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
_AGENT_OPERATIONS = {"invoke_agent", "create_agent"}
_RETRIEVAL_OPERATIONS = {"embeddings", "retrieval", "retrieve"}
# Attributes that become typed fields; the rest travel as attributes.
_CONSUMED = {
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.agent.name",
    "llm.request.type",
}
_MAX_ATTRIBUTES = 32


def _first(attributes: Dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            return value
    return None


def _tokens(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return min(max(n, 0), 2**32 - 1)


class MissionSpanProcessor(SpanProcessor):
    """A ``SpanProcessor`` that records every ended OpenTelemetry span in a Mission Control
    instance. Cheap: the mapping is a few dictionary lookups and one native call."""

    def __init__(self, control: Any) -> None:
        self.control = control
        self.recorded = 0
        self.skipped = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None or span.start_time is None or span.end_time is None or self.control.is_shut_down:
            self.skipped += 1
            return
        attributes: Dict[str, Any] = dict(span.attributes or {})
        operation = _first(attributes, "gen_ai.operation.name", "llm.request.type")
        model = _first(attributes, "gen_ai.request.model", "gen_ai.response.model")
        tool = attributes.get("gen_ai.tool.name")
        if operation in _LLM_OPERATIONS or (model is not None and operation is None and tool is None):
            kind, name = "llm_call", str(operation or "chat")
        elif operation == "execute_tool" or tool is not None:
            kind, name = "tool_call", str(tool or span.name)
        elif operation in _AGENT_OPERATIONS:
            kind, name = "agent_step", span.name
        elif operation in _RETRIEVAL_OPERATIONS:
            kind, name = "retrieval", span.name
        else:
            kind, name = "custom", span.name
        error: Optional[str] = None
        if span.status is not None and span.status.status_code == StatusCode.ERROR:
            error = span.status.description or "error"
            for event in span.events or ():
                if event.name == "exception" and event.attributes:
                    kind_of = event.attributes.get("exception.type", "")
                    message = event.attributes.get("exception.message", "")
                    error = f"{kind_of}: {message}" if kind_of else str(message or error)
                    break
        extra = {}
        for key, value in attributes.items():
            if key in _CONSUMED or len(extra) >= _MAX_ATTRIBUTES:
                continue
            if isinstance(value, (str, bool, int, float)):
                extra[key] = value
            elif isinstance(value, (list, tuple)):
                extra[key] = ",".join(str(v) for v in value)
        parent = span.parent
        self.control._record_span(
            trace_id=format(context.trace_id, "032x"),
            span_id=format(context.span_id, "016x"),
            parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
            name=name,
            kind=kind,
            start_ns=span.start_time,
            end_ns=span.end_time,
            agent=_first(attributes, "gen_ai.agent.name"),
            error=error,
            model=str(model) if model is not None else None,
            provider=_first(attributes, "gen_ai.provider.name", "gen_ai.system"),
            input_tokens=_tokens(_first(attributes, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
            output_tokens=_tokens(_first(attributes, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
            attributes=extra,
        )
        self.recorded += 1

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            self.control.flush(timeout=timeout_millis / 1000)
            return True
        except Exception:
            return False
