"""LangChain (``langchain-core`` + ``langchain-openai``) against the fake OpenAI server on
loopback, through ``mission_control.integrations.langchain``: the span tree agent run -> LLM
calls / tool, exact tokens and cost, errors with their type, content omitted."""

import pytest
from conftest import rows
from fake_openai_server import ANSWER, CACHED, EXACT_COST, INPUT, MODEL_SNAPSHOT, OUTPUT, REASONING

import mission_control as mc

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_openai")




def test_a_tool_calling_chain_lands_as_one_thread(tmp_path, fake_openai):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    from mission_control.integrations.langchain import MissionCallbackHandler

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny SECRET-TOOL-OUTPUT"

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise LookupError("no such city")

    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake_openai.url, api_key="test-key", max_retries=0)
    with_tools = model.bind_tools([get_weather])

    def agent_loop(question: str) -> str:
        messages = [HumanMessage(question)]
        first = with_tools.invoke(messages)
        messages.append(first)
        for call in first.tool_calls:
            messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
        with pytest.raises(LookupError):
            broken.invoke({"city": "Atlantis"})
        return with_tools.invoke(messages).content

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    handler = MissionCallbackHandler(control, agent="weather-bot")
    try:
        answer = RunnableLambda(agent_loop).with_config(run_name="weather-agent").invoke(
            "Weather in Paris? SECRET-PROMPT-42", config={"callbacks": [handler]})
        assert answer == ANSWER
        found = rows(control.query())
    finally:
        control.shutdown()
    spans = [r for r in found if r["kind"] != "log"]
    assert len({r["thread_id"] for r in spans}) == 1
    root = next(r for r in spans if r["name"] == "weather-agent")
    assert root["kind"] == "agent_step" and root["parent_span_id"] in (0, None)
    llm_calls = [r for r in spans if r["kind"] == "llm_call"]
    tools = {r["name"]: r for r in spans if r["kind"] == "tool_call"}
    assert len(llm_calls) == 2 and set(tools) == {"get_weather", "broken"}
    for r in llm_calls + list(tools.values()):
        assert r["parent_span_id"] == root["span_id"]
    for call in llm_calls:
        assert call["gen_ai_request_model"] == "gpt-4o-mini"
        assert call["gen_ai_provider_name"] == "openai"
        assert (call["gen_ai_usage_input_tokens"], call["gen_ai_usage_cache_read_input_tokens"],
                call["gen_ai_usage_output_tokens"], call["gen_ai_usage_reasoning_output_tokens"]) == (
                    INPUT, CACHED, OUTPUT, REASONING)
        assert call["gen_ai_usage_cost"] == pytest.approx(EXACT_COST, rel=1e-9)
        assert dict(call["attributes"])["gen_ai.response.model"] == MODEL_SNAPSHOT
        assert call["status"] == "ok"
    assert tools["get_weather"]["status"] == "ok"
    assert tools["broken"]["status"] == "error"
    assert tools["broken"]["error_message"] == "LookupError: no such city"
    assert dict(tools["broken"]["attributes"])["error.type"] == "LookupError"
    assert all(r["gen_ai_agent_name"] == "weather-bot" for r in spans)
    stored = repr(found)
    for secret in ("SECRET-PROMPT-42", "SECRET-TOOL-OUTPUT", ANSWER):
        assert secret not in stored


def test_retrievers_and_a_model_called_alone(tmp_path, fake_openai):
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_openai import ChatOpenAI

    from mission_control.integrations.langchain import MissionCallbackHandler

    class Docs(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            return [Document(page_content="SECRET-DOCUMENT"), Document(page_content="another")]

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    handler = MissionCallbackHandler(control)
    try:
        assert len(Docs().invoke("paris", config={"callbacks": [handler]})) == 2
        model = ChatOpenAI(model="gpt-4o-mini", base_url=fake_openai.url, api_key="k", max_retries=0)
        assert model.invoke("hello", config={"callbacks": [handler]}).content == ANSWER
        found = [r for r in rows(control.query()) if r["kind"] != "log"]
    finally:
        control.shutdown()
    retrieval = next(r for r in found if r["kind"] == "retrieval")
    assert retrieval["name"] == "Docs" and dict(retrieval["attributes"])["retrieval.document_count"] == "2"
    assert retrieval["gen_ai_agent_name"] == "Docs"  # no agent given: the top-level run's name
    call = next(r for r in found if r["kind"] == "llm_call")
    assert call["gen_ai_usage_cost"] == pytest.approx(EXACT_COST, rel=1e-9)
    assert len({r["thread_id"] for r in found}) == 2
    assert "SECRET-DOCUMENT" not in repr(found)


def test_a_langgraph_agent_with_a_tool_node_lands_as_one_thread(tmp_path, fake_openai):
    """A LangGraph graph (model node -> tool node -> model node, a conditional edge): the graph
    is the thread's root, each node an agent step named by the node, the model calls inside the
    model node with exact tokens and cost, the tool call inside the tool node."""
    pytest.importorskip("langgraph")
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    from mission_control.integrations.langchain import MissionCallbackHandler

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny SECRET-TOOL-OUTPUT"

    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake_openai.url, api_key="k", max_retries=0)
    with_tools = model.bind_tools([get_weather])

    def call_model(state: MessagesState):
        return {"messages": [with_tools.invoke(state["messages"])]}

    def route(state: MessagesState):
        return "tools" if state["messages"][-1].tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    app = graph.compile().with_config(run_name="weather-graph")

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    try:
        final = app.invoke({"messages": [HumanMessage("Weather in Paris? SECRET-PROMPT-42")]},
                           config={"callbacks": [MissionCallbackHandler(control, agent="weather-bot")]})
        assert final["messages"][-1].content == ANSWER
        found = [r for r in rows(control.query()) if r["kind"] != "log"]
    finally:
        control.shutdown()
    assert len({r["thread_id"] for r in found}) == 1

    def attrs(row):
        return dict(row["attributes"] or [])

    by_id = {r["span_id"]: r for r in found}
    # Every run its own span id (run ids are UUIDv7: runs of one millisecond share their high half).
    assert len(by_id) == len(found)
    root = next(r for r in found if r["name"] == "weather-graph")
    assert root["kind"] == "agent_step" and root["parent_span_id"] in (0, None)
    # A node's own run is named by the node; the conditional edge (route) runs inside it.
    nodes = [r for r in found if attrs(r).get("langgraph.node") == r["name"]]
    assert sorted(r["name"] for r in nodes) == ["model", "model", "tools"]
    assert all(r["kind"] == "agent_step" and r["parent_span_id"] == root["span_id"] for r in nodes)
    routes = [r for r in found if r["name"] == "route"]
    assert len(routes) == 2 and all(by_id[r["parent_span_id"]]["name"] == "model" for r in routes)

    def node_of(row):
        """The graph node a span runs in: the nearest ancestor that is a node."""
        while row["parent_span_id"] not in (0, None):
            row = by_id[row["parent_span_id"]]
            if attrs(row).get("langgraph.node"):
                return attrs(row)["langgraph.node"]
        return None

    llm_calls = [r for r in found if r["kind"] == "llm_call"]
    tools = [r for r in found if r["kind"] == "tool_call"]
    assert len(llm_calls) == 2 and [r["name"] for r in tools] == ["get_weather"]
    assert [node_of(r) for r in llm_calls] == ["model", "model"] and node_of(tools[0]) == "tools"
    for call in llm_calls:
        assert (call["gen_ai_usage_input_tokens"], call["gen_ai_usage_cache_read_input_tokens"],
                call["gen_ai_usage_output_tokens"], call["gen_ai_usage_reasoning_output_tokens"]) == (
                    INPUT, CACHED, OUTPUT, REASONING)
        assert call["gen_ai_usage_cost"] == pytest.approx(EXACT_COST, rel=1e-9)
        assert attrs(call)["gen_ai.response.model"] == MODEL_SNAPSHOT
    assert tools[0]["status"] == "ok"
    assert all(r["gen_ai_agent_name"] == "weather-bot" for r in found)
    stored = repr(found)
    assert "SECRET-PROMPT-42" not in stored and "SECRET-TOOL-OUTPUT" not in stored
