"""LangChain and LangGraph in Mission Control, with two lines:

    from mission_control.integrations.langchain import MissionCallbackHandler
    chain.invoke(inputs, config={"callbacks": [MissionCallbackHandler(control, agent="support-bot")]})

Each top-level run becomes a thread whose root is that run (an agent step, ``invoke_agent``);
nested chains and graph nodes are agent steps, chat models and LLMs are LLM calls (model,
provider and tokens by kind from the answer's usage, priced with cached tokens at the cached
price), tools are tool calls, retrievers are retrievals, agent actions are kept on their run.
Every run belongs to ``agent`` (default: the top-level run's name). Errors are recorded with
their type. Prompts, messages, tool inputs and outputs and documents are not recorded. Needs
``pip install langchain-core``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from uuid import UUID

try:
    from langchain_core.callbacks import BaseCallbackHandler
except ImportError as e:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "mission_control.integrations.langchain needs LangChain: pip install langchain-core"
    ) from e

from ._common import MAX_OPEN_SPANS, field, now_ns, usage_attributes

__all__ = ["MissionCallbackHandler"]


class _Run:
    __slots__ = ("trace_id", "span_id", "parent", "name", "start", "agent", "attributes")

    def __init__(self, trace_id: str, span_id: str, parent: Optional[str], name: str, agent: Optional[str],
                 attributes: Dict[str, Any]) -> None:
        self.trace_id, self.span_id, self.parent, self.name = trace_id, span_id, parent, name
        self.start, self.agent, self.attributes = now_ns(), agent, attributes


def _name(serialized: Any, kwargs: Dict[str, Any], default: str) -> str:
    name = kwargs.get("name") or field(serialized, "name")
    if not name:
        ids = field(serialized, "id")
        name = ids[-1] if isinstance(ids, list) and ids else None
    return str(name or default)


def _usage_metadata_attributes(usage: Any) -> Dict[str, int]:
    """LangChain's standard ``usage_metadata`` (input includes cached; output includes
    reasoning) as GenAI attributes."""
    out: Dict[str, int] = {}
    for key, path in (
        ("gen_ai.usage.input_tokens", ("input_tokens",)),
        ("gen_ai.usage.output_tokens", ("output_tokens",)),
        ("gen_ai.usage.cache_read.input_tokens", ("input_token_details", "cache_read")),
        ("gen_ai.usage.cache_creation.input_tokens", ("input_token_details", "cache_creation")),
        ("gen_ai.usage.reasoning.output_tokens", ("output_token_details", "reasoning")),
    ):
        value = field(usage, *path)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[key] = value
    return out


class MissionCallbackHandler(BaseCallbackHandler):
    """A LangChain callback handler recording every run in ``control`` (see the module's
    documentation). Safe to share between concurrent runs; at most 65,536 runs open at once
    are tracked, beyond which runs are counted in ``untracked`` and not recorded."""

    raise_error = False
    run_inline = True

    def __init__(self, control: Any, agent: Optional[str] = None) -> None:
        super().__init__()
        self.control = control
        self.agent = agent
        self.recorded = 0
        self.untracked = 0
        self._runs: Dict[UUID, _Run] = {}

    # -- bookkeeping ----------------------------------------------------------------------------

    def _start(self, run_id: UUID, parent_run_id: Optional[UUID], name: str, attributes: Dict[str, Any]) -> None:
        if len(self._runs) >= MAX_OPEN_SPANS:
            self.untracked += 1
            return
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        # The run id's low 64 bits: LangChain's run ids are UUIDv7 (langchain-core 1.x), whose
        # high half is the millisecond and a per-process constant, the same for every run
        # started in one millisecond; the low half is the counter and random bits.
        span_id = run_id.hex[16:]
        if parent is None:
            agent = self.agent or name
            if attributes.get("mission.kind") == "agent_step":  # a top-level chain or graph: the agent's run
                attributes = {k: v for k, v in attributes.items() if k != "mission.kind"}
                attributes["gen_ai.operation.name"] = "invoke_agent"
            attributes = dict(attributes, **{"gen_ai.agent.name": agent})
            run = _Run(run_id.hex, span_id, None, name, agent, attributes)
        else:
            run = _Run(parent.trace_id, span_id, parent.span_id, name, parent.agent, attributes)
        self._runs[run_id] = run

    def _end(self, run_id: UUID, error: Optional[BaseException] = None, **attributes: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or self.control.is_shut_down:
            return
        run.attributes.update(attributes)
        message = None
        if error is not None:
            kind = type(error).__qualname__
            text = str(error)
            message = f"{kind}: {text}" if text else kind
            run.attributes["error.type"] = kind
        self.control._record_span(
            trace_id=run.trace_id, span_id=run.span_id, parent_span_id=run.parent, name=run.name,
            start_ns=run.start, end_ns=max(now_ns(), run.start), agent=run.agent, error=message,
            ok=error is None, attributes=run.attributes,
        )
        self.recorded += 1

    # -- chains, graph nodes and agents ---------------------------------------------------------

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None,
                       metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        attributes: Dict[str, Any] = {"mission.kind": "agent_step"}
        node = (metadata or {}).get("langgraph_node")
        if isinstance(node, str):
            attributes["langgraph.node"] = node
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "chain"), attributes)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        tool = field(action, "tool")
        if run is not None and isinstance(tool, str):
            run.attributes["langchain.agent.last_tool"] = tool

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        return None

    # -- models ---------------------------------------------------------------------------------

    def _model_start(self, operation: str, run_id: UUID, parent_run_id: Optional[UUID],
                     metadata: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        metadata = metadata or {}
        attributes: Dict[str, Any] = {"gen_ai.operation.name": operation}
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        if model:
            attributes["gen_ai.request.model"] = str(model)
        provider = metadata.get("ls_provider") or params.get("_type")
        if provider:
            attributes["gen_ai.provider.name"] = str(provider)
        self._start(run_id, parent_run_id, operation, attributes)

    def on_chat_model_start(self, serialized: Any, messages: List[Any], *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, metadata: Optional[Dict[str, Any]] = None,
                            **kwargs: Any) -> None:
        self._model_start("chat", run_id, parent_run_id, metadata, kwargs)

    def on_llm_start(self, serialized: Any, prompts: List[str], *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, metadata: Optional[Dict[str, Any]] = None,
                     **kwargs: Any) -> None:
        self._model_start("text_completion", run_id, parent_run_id, metadata, kwargs)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        attributes: Dict[str, Any] = {}
        generations = field(response, "generations") or []
        message = None
        if generations and generations[0]:
            message = field(generations[0][0], "message")
        usage = _usage_metadata_attributes(field(message, "usage_metadata"))
        llm_output = field(response, "llm_output") or {}
        if not usage:
            usage = usage_attributes(llm_output.get("token_usage") or llm_output.get("usage"))
        attributes.update(usage)
        metadata = field(message, "response_metadata") or {}
        model = metadata.get("model_name") or llm_output.get("model_name")
        if isinstance(model, str) and model:
            attributes["gen_ai.response.model"] = model
        finish = metadata.get("finish_reason")
        if isinstance(finish, str):
            attributes["gen_ai.response.finish_reasons"] = finish
        self._end(run_id, **attributes)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    # -- tools and retrievers -------------------------------------------------------------------

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        name = _name(serialized, kwargs, "tool")
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        call_id = (kwargs.get("inputs") or {}).get("tool_call_id") if isinstance(kwargs.get("inputs"), dict) else None
        if isinstance(call_id, str):
            attributes["gen_ai.tool.call.id"] = call_id
        self._start(run_id, parent_run_id, name, attributes)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "retriever"), {"mission.kind": "retrieval"})

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        count = len(documents) if isinstance(documents, (list, tuple)) else None
        self._end(run_id, **({"retrieval.document_count": count} if count is not None else {}))

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)
