"""The real OpenAI Agents SDK (``openai-agents``) against the fake OpenAI server on loopback,
through ``mission_control.integrations.openai_agents``: the span tree agent -> turn -> LLM
call / tool, exact tokens and cost per call with the model known only from the Responses API's
answer, every span under the agent that runs it, content omitted."""

import pytest
from conftest import rows
from fake_openai_server import ANSWER, CACHED, EXACT_COST, INPUT, MODEL_SNAPSHOT, OUTPUT, REASONING

import mission_control as mc

agents = pytest.importorskip("agents")




def test_an_agent_run_lands_as_a_thread_with_priced_calls_and_its_tool(tmp_path, fake_openai):
    from openai import AsyncOpenAI

    from mission_control.integrations.openai_agents import instrument

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    processor = instrument(control, exclusive=True)
    calls = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "sunny SECRET-TOOL-OUTPUT"

    model = agents.OpenAIResponsesModel(
        model="gpt-4o-mini", openai_client=AsyncOpenAI(base_url=fake_openai.url, api_key="test-key", max_retries=0))
    agent = agents.Agent(name="weather-bot", instructions="Answer about the weather.", tools=[get_weather],
                         model=model)
    try:
        result = agents.Runner.run_sync(agent, "Weather in Paris? SECRET-PROMPT-42")
        assert result.final_output == ANSWER
        assert calls == ["Paris"]
        agents.flush_traces()
        found = rows(control.query())
    finally:
        agents.set_trace_processors([])
        control.shutdown()
    assert processor.recorded >= 6 and processor.skipped == 0
    spans = [r for r in found if r["kind"] != "log"]
    assert len({r["thread_id"] for r in spans}) == 1
    by_id = {r["span_id"]: r for r in spans}
    root = next(r for r in spans if r["name"] == "invoke_agent" and r["parent_span_id"] not in by_id)
    assert root["kind"] == "agent_step" and root["gen_ai_agent_name"] == "weather-bot"

    def ancestors(r):
        out = []
        while r["parent_span_id"] in by_id:
            r = by_id[r["parent_span_id"]]
            out.append(r)
        return out

    agent_span = next(r for r in spans if r["name"] == "invoke_agent" and r is not root)
    llm_calls = [r for r in spans if r["kind"] == "llm_call"]
    tools = [r for r in spans if r["kind"] == "tool_call"]
    assert len(llm_calls) == 2 and len(tools) == 1
    for r in llm_calls + tools:
        chain = ancestors(r)
        # LLM call / tool -> turn -> agent -> ... -> root
        assert chain[0]["name"].startswith("turn ") and chain[0]["kind"] == "agent_step"
        assert agent_span in chain and chain[-1] is root
    for call in llm_calls:
        assert call["gen_ai_request_model"] == MODEL_SNAPSHOT
        assert call["gen_ai_provider_name"] == "openai"
        assert (call["gen_ai_usage_input_tokens"], call["gen_ai_usage_cache_read_input_tokens"],
                call["gen_ai_usage_output_tokens"], call["gen_ai_usage_reasoning_output_tokens"]) == (
                    INPUT, CACHED, OUTPUT, REASONING)
        assert call["gen_ai_usage_cost"] == pytest.approx(EXACT_COST, rel=1e-9)
    assert tools[0]["name"] == "get_weather" and tools[0]["status"] == "ok"
    assert all(r["gen_ai_agent_name"] == "weather-bot" for r in spans)
    stored = repr(found)
    for secret in ("SECRET-PROMPT-42", "SECRET-TOOL-OUTPUT", ANSWER):
        assert secret not in stored


def test_a_failing_tool_is_recorded_with_its_error(tmp_path, fake_openai):
    from openai import AsyncOpenAI

    from mission_control.integrations.openai_agents import MissionTracingProcessor

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    agents.set_trace_processors([MissionTracingProcessor(control)])

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        raise RuntimeError("weather service down")

    model = agents.OpenAIResponsesModel(
        model="gpt-4o-mini", openai_client=AsyncOpenAI(base_url=fake_openai.url, api_key="k", max_retries=0))
    agent = agents.Agent(name="weather-bot", tools=[get_weather], model=model)
    try:
        agents.Runner.run_sync(agent, "Weather in Paris?")
        agents.flush_traces()
        tools = [r for r in rows(control.query(kind="tool_call"))]
    finally:
        agents.set_trace_processors([])
        control.shutdown()
    assert len(tools) == 1 and tools[0]["status"] == "error"
    assert tools[0]["error_message"]


def test_handoffs_and_guardrails_are_kept_and_each_agent_owns_its_spans(tmp_path, fake_openai):
    from openai import AsyncOpenAI

    from mission_control.integrations.openai_agents import MissionTracingProcessor

    control = mc.init(store=tmp_path / "store", service="svc", tenant="acme", models=False)
    agents.set_trace_processors([MissionTracingProcessor(control)])

    @agents.input_guardrail
    def polite(context, agent, question):
        return agents.GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    model = agents.OpenAIResponsesModel(
        model="gpt-4o-mini", openai_client=AsyncOpenAI(base_url=fake_openai.url, api_key="k", max_retries=0))
    weather = agents.Agent(name="weather-bot", model=model)
    triage = agents.Agent(name="triage", handoffs=[weather], input_guardrails=[polite], model=model)
    try:
        result = agents.Runner.run_sync(triage, "Weather in Paris?")
        assert result.final_output == ANSWER and result.last_agent.name == "weather-bot"
        agents.flush_traces()
        spans = [r for r in rows(control.query()) if r["kind"] != "log"]
    finally:
        agents.set_trace_processors([])
        control.shutdown()
    guard = next(r for r in spans if r["name"] == "polite")
    assert guard["kind"] == "custom" and dict(guard["attributes"])["openai_agents.guardrail.triggered"] == "false"
    handoff = next(r for r in spans if r["name"] == "handoff")
    assert dict(handoff["attributes"])["openai_agents.handoff.to"] == "weather-bot"
    by_id = {r["span_id"]: r for r in spans}
    agent_spans = {r["gen_ai_agent_name"]: r for r in spans if r["name"] == "invoke_agent"
                   and r["parent_span_id"] in by_id}
    assert set(agent_spans) == {"triage", "weather-bot"}
    calls = [r for r in spans if r["kind"] == "llm_call"]
    assert len(calls) == 2
    for call in calls:
        owner = call
        while owner["name"] != "invoke_agent":
            owner = by_id[owner["parent_span_id"]]
        assert call["gen_ai_agent_name"] == owner["gen_ai_agent_name"]
        assert call["gen_ai_usage_cost"] == pytest.approx(EXACT_COST, rel=1e-9)
    assert {c["gen_ai_agent_name"] for c in calls} == {"triage", "weather-bot"}
