"""The OpenTelemetry bridge: apps already instrumented with OpenTelemetry (or OpenLLMetry, or
any library emitting the GenAI semantic conventions) feed Mission Control with no code change.

    from opentelemetry.sdk.trace import TracerProvider
    from mission_control.otel import MissionSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(MissionSpanProcessor(control))

Each ended span becomes a Mission Control span with the same trace id (the thread), span id
and parent. Whatever convention the instrumentation speaks — OpenTelemetry GenAI (old and new
names), OpenLLMetry, OpenInference, Logfire, Langfuse — LLM calls land with model, provider and
tokens by kind (cached ones at the cached price), tool calls with the tool, agent steps,
retrievals, and everything else as ``custom``; child spans belong to their parent's agent.
Requires ``opentelemetry-sdk`` (``pip install 'mission-control-observability[otel]'``).
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

from . import _native

# The keys naming an agent, from the one convention table (mission_core::semconv).
_AGENT_KEYS = tuple(_native._semconv_agent_keys())


def _agent_of(attributes: Any) -> Optional[str]:
    if not attributes:
        return None
    for key in _AGENT_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class MissionSpanProcessor(SpanProcessor):
    """A ``SpanProcessor`` that records every ended OpenTelemetry span in a Mission Control
    instance.

    The attributes are read in Rust through one table of the GenAI conventions in wide use
    (OpenTelemetry GenAI old and new names, OpenLLMetry, OpenInference, Logfire, Langfuse):
    model, provider, input/output/cached/cache-creation/reasoning tokens, agent and tool land
    on the typed fields, and LLM calls are priced with cached tokens at the cached price. A
    span with no agent of its own belongs to its nearest open ancestor's agent (then the
    service's); a span whose source said OK is ``ok``. ``max_open_spans`` bounds the agents
    remembered for open spans; past it, spans are still recorded and counted in
    ``untracked``."""

    def __init__(self, control: Any, max_open_spans: int = 65536) -> None:
        if isinstance(max_open_spans, bool) or not isinstance(max_open_spans, int) or max_open_spans < 0:
            raise ValueError(f"max_open_spans must be a non-negative int, not {max_open_spans!r}")
        self.control = control
        self.recorded = 0
        self.skipped = 0
        self.untracked = 0
        self.max_open_spans = max_open_spans
        self._agents: Dict[int, str] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        context = span.get_span_context()
        if context is None:
            return
        agent = _agent_of(span.attributes)
        if agent is None and span.parent is not None:
            agent = self._agents.get(span.parent.span_id)
        if agent is None:
            return
        if len(self._agents) < self.max_open_spans:
            self._agents[context.span_id] = agent
        else:
            self.untracked += 1

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        parent = span.parent
        inherited = self._agents.pop(context.span_id, None) if context is not None else None
        if inherited is None and parent is not None:
            inherited = self._agents.get(parent.span_id)
        if context is None or span.start_time is None or span.end_time is None or self.control.is_shut_down:
            self.skipped += 1
            return
        error: Optional[str] = None
        ok = False
        if span.status is not None and span.status.status_code == StatusCode.ERROR:
            error = span.status.description or "error"
            for event in span.events or ():
                if event.name == "exception" and event.attributes:
                    kind_of = event.attributes.get("exception.type", "")
                    message = event.attributes.get("exception.message", "")
                    error = f"{kind_of}: {message}" if kind_of else str(message or error)
                    break
        elif span.status is not None and span.status.status_code == StatusCode.OK:
            ok = True
        self.control._record_span(
            trace_id=format(context.trace_id, "032x"),
            span_id=format(context.span_id, "016x"),
            parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
            name=span.name,
            start_ns=span.start_time,
            end_ns=span.end_time,
            agent=inherited,
            error=error,
            ok=ok,
            attributes=dict(span.attributes or {}),
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
