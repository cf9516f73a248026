"""The OpenAI Agents SDK (``openai-agents``) in Mission Control, with two lines:

    from mission_control.integrations.openai_agents import instrument
    instrument(control)

Every run becomes a thread: the trace is its root (``invoke_agent``), and the SDK's spans
nest under it as they do in the SDK — task and agent spans and turns are agent steps, responses
and generations are LLM calls (model, provider and tokens by kind, priced with cached tokens at
the cached price; under the Responses API the model is read from the response when it
arrives), function calls are tool calls, handoffs and guardrails are kept with what they
decided. Every span belongs to the agent that runs it. Prompts, tool arguments and outputs are
not recorded. Needs ``pip install openai-agents``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

try:
    import agents as _agents
    from agents.tracing import TracingProcessor
except ImportError as e:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "mission_control.integrations.openai_agents needs the OpenAI Agents SDK: pip install openai-agents"
    ) from e

from ._common import OpenSpans, field, iso_ns, now_ns, usage_attributes, w3c_id

__all__ = ["MissionTracingProcessor", "instrument"]


def _root_span_id(trace_id: str) -> str:
    return w3c_id(f"root:{trace_id}", 16)


class MissionTracingProcessor(TracingProcessor):
    """A tracing processor of the OpenAI Agents SDK recording every trace and span in
    ``control`` (see the module's documentation for the mapping)."""

    def __init__(self, control: Any) -> None:
        self.control = control
        self.recorded = 0
        self.skipped = 0
        self._open = OpenSpans()
        self._traces: Dict[str, Dict[str, Any]] = {}

    # -- traces: one thread each ------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if len(self._traces) < self._open.capacity:
            self._traces[trace.trace_id] = {"start": now_ns(), "agent": None}
        else:
            self._open.untracked += 1

    def on_trace_end(self, trace: Any) -> None:
        state = self._traces.pop(trace.trace_id, None) or {"start": now_ns(), "agent": None}
        attributes: Dict[str, Any] = {"gen_ai.operation.name": "invoke_agent"}
        if state["agent"]:
            attributes["gen_ai.agent.name"] = state["agent"]
        name = getattr(trace, "name", None)
        if isinstance(name, str) and name:
            attributes["openai_agents.workflow"] = name
        group = getattr(trace, "group_id", None)
        if isinstance(group, str) and group:
            attributes["gen_ai.conversation.id"] = group
        self._record(trace_id=trace.trace_id, span_id=_root_span_id(trace.trace_id), parent=None,
                     name="invoke_agent", start_ns=state["start"], end_ns=now_ns(), agent=state["agent"],
                     error=None, attributes=attributes)

    # -- spans --------------------------------------------------------------------------------

    def _inherited(self, span: Any) -> Optional[str]:
        agent = self._open.agent(span.parent_id)
        if agent is None:
            agent = (self._traces.get(span.trace_id) or {}).get("agent")
        return agent

    def on_span_start(self, span: Any) -> None:
        data = span.span_data
        kind = getattr(data, "type", None)
        agent = None
        if kind == "agent":
            agent = data.name
            state = self._traces.get(span.trace_id)
            if state is not None and state["agent"] is None:
                state["agent"] = agent
        elif kind == "turn":
            agent = getattr(data, "agent_name", None)
        self._open.open(span.span_id, agent or self._inherited(span))

    def on_span_end(self, span: Any) -> None:
        agent = self._open.close(span.span_id) or self._inherited(span)
        data = span.span_data
        kind = getattr(data, "type", None)
        name, attributes = self._map(kind, data)
        error = None
        if span.error:
            message = field(span.error, "message") or "error"
            error = str(message)
        parent = span.parent_id
        self._record(
            trace_id=span.trace_id,
            span_id=w3c_id(span.span_id, 16),
            parent=w3c_id(parent, 16) if parent else _root_span_id(span.trace_id),
            name=name,
            start_ns=iso_ns(span.started_at, now_ns()),
            end_ns=iso_ns(span.ended_at, now_ns()),
            agent=agent,
            error=error,
            attributes=attributes,
        )

    @staticmethod
    def _map(kind: Optional[str], data: Any) -> "tuple[str, Dict[str, Any]]":
        if kind == "agent":
            attributes: Dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": data.name}
            if data.tools:
                attributes["openai_agents.tools"] = ",".join(map(str, data.tools))
            if data.handoffs:
                attributes["openai_agents.handoffs"] = ",".join(map(str, data.handoffs))
            return "invoke_agent", attributes
        if kind == "response":
            response = data.response
            attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
            model = field(response, "model")
            if isinstance(model, str) and model:
                # The Responses API names the model only in its answer.
                attributes["gen_ai.request.model"] = model
                attributes["gen_ai.response.model"] = model
            response_id = field(response, "id")
            if isinstance(response_id, str):
                attributes["gen_ai.response.id"] = response_id
            attributes.update(usage_attributes(data.usage or field(response, "usage")))
            return "chat", attributes
        if kind == "generation":
            attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
            if data.model:
                attributes["gen_ai.request.model"] = str(data.model)
            attributes.update(usage_attributes(data.usage))
            return "chat", attributes
        if kind == "function":
            attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": data.name}
            server = field(data.mcp_data, "server")
            if isinstance(server, str):
                attributes["mcp.server"] = server
            return data.name, attributes
        if kind == "handoff":
            return "handoff", {
                "mission.kind": "agent_step",
                "openai_agents.handoff.from": str(data.from_agent or ""),
                "openai_agents.handoff.to": str(data.to_agent or ""),
            }
        if kind == "guardrail":
            return str(data.name), {"mission.kind": "custom", "openai_agents.guardrail.triggered": bool(data.triggered)}
        if kind == "turn":
            return f"turn {data.turn}", {"mission.kind": "agent_step"}
        if kind == "task":
            return str(data.name), {"mission.kind": "agent_step"}
        if kind == "mcp_tools":
            return "mcp_list_tools", {"mission.kind": "custom", "mcp.server": str(data.server or "")}
        return str(getattr(data, "name", None) or kind or "span"), {"mission.kind": "custom"}

    def _record(self, *, trace_id: str, span_id: str, parent: Optional[str], name: str, start_ns: int,
                end_ns: int, agent: Optional[str], error: Optional[str], attributes: Dict[str, Any]) -> None:
        if self.control.is_shut_down:
            self.skipped += 1
            return
        self.control._record_span(
            trace_id=w3c_id(trace_id, 32), span_id=span_id, parent_span_id=parent, name=name,
            start_ns=start_ns, end_ns=max(end_ns, start_ns), agent=agent, error=error,
            ok=error is None, attributes=attributes,
        )
        self.recorded += 1

    @property
    def untracked(self) -> int:
        """Spans whose agent could not be remembered (more than the bound open at once)."""
        return self._open.untracked

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        if not self.control.is_shut_down:
            self.control.flush()


def instrument(control: Any = None, *, exclusive: bool = False) -> MissionTracingProcessor:
    """Records every OpenAI Agents SDK run in ``control`` (default: the instance
    ``mission_control.init`` made last) and returns the processor. With ``exclusive=True`` it
    replaces the SDK's other processors (its default one exports to OpenAI's platform)."""
    if control is None:
        import mission_control

        ref = mission_control._LAST_CONTROL
        control = ref() if ref is not None else None
        if control is None:
            raise RuntimeError("call mission_control.init() first, or pass the instance")
    processor = MissionTracingProcessor(control)
    if exclusive:
        _agents.set_trace_processors([processor])
    else:
        _agents.add_trace_processor(processor)
    return processor
