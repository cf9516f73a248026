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
