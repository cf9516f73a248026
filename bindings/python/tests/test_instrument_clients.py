"""instrument_openai() and instrument_anthropic() with the real openai and anthropic clients
against a fake provider on loopback (fake_llm.py): exact tokens by kind and exact cost per call,
the span tree, content omitted unless captured, errors recorded, streams unchanged."""

import asyncio

import pytest

import mission_control as mc
from conftest import rows
from fake_llm import ANTHROPIC_USAGE, OPENAI_USAGE, RESPONSE_MODELS, TEXT, FakeLLM

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

# The default price table (mission-sdk/src/price.rs), US dollars per million tokens.
GPT_4O_MINI = {"input": 0.15, "cached": 0.075, "output": 0.60}
CLAUDE_SONNET_4 = {"input": 3.00, "cached": 0.30, "cache_creation": 3.00 * 1.25, "output": 15.00}
# The costs of the fake's usage, worked out by hand: gpt-4o-mini, 300 fresh + 512 cached input
# and 64 output tokens; claude-sonnet-4, 100 fresh + 2,000 cache-read + 1,000 cache-write input
# and 50 output tokens.
GPT_4O_MINI_COST = (300 * 0.15 + 512 * 0.075 + 64 * 0.60) / 1e6  # $0.0001218
CLAUDE_SONNET_4_COST = (100 * 3.00 + 2000 * 0.30 + 1000 * 3.75 + 50 * 15.00) / 1e6  # $0.0054

MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
TOOLS_CHAT = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
TOOLS_RESPONSES = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
TOOLS_ANTHROPIC = [{"name": "get_weather", "input_schema": {"type": "object"}}]


def openai_cost():
    u, p = OPENAI_USAGE, GPT_4O_MINI
    fresh = u["input"] - u["cached"]
    return (fresh * p["input"] + u["cached"] * p["cached"] + 0 * p["input"] + u["output"] * p["output"]) / 1e6


def anthropic_cost():
    u, p = ANTHROPIC_USAGE, CLAUDE_SONNET_4
    return (u["input"] * p["input"] + u["cache_read"] * p["cached"]
            + u["cache_creation"] * p["cache_creation"] + u["output"] * p["output"]) / 1e6


@pytest.fixture
def server():
    s = FakeLLM()
    yield s
    s.close()


@pytest.fixture
def instrumented(control):
    mc.instrument_openai(control)
    mc.instrument_anthropic(control)
    yield control
    mc.uninstrument_openai()
    mc.uninstrument_anthropic()


def clients(server):
    return (openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0),
            openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0),
            anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0),
            anthropic.AsyncAnthropic(base_url=server.url, api_key="k", max_retries=0))


def llm_calls(control):
    return rows(control.query(kind="llm_call"))


def assert_openai_call(row, streamed=False):
    u = OPENAI_USAGE
    attrs = dict(row["attributes"])
    assert (row["gen_ai_provider_name"], row["gen_ai_request_model"]) == ("openai", "gpt-4o-mini")
    assert attrs["gen_ai.response.model"] == RESPONSE_MODELS["gpt-4o-mini"]
    assert (row["gen_ai_usage_input_tokens"], row["gen_ai_usage_cache_read_input_tokens"],
            row["gen_ai_usage_output_tokens"], row["gen_ai_usage_reasoning_output_tokens"]) == (
        u["input"], u["cached"], u["output"], u["reasoning"])
    assert row["gen_ai_usage_cost"] == pytest.approx(openai_cost(), rel=1e-12, abs=0)
    assert row["gen_ai_usage_cost"] == pytest.approx(GPT_4O_MINI_COST, rel=1e-12, abs=0)
    assert row["status"] != "error"
    assert ("gen_ai.server.time_to_first_token" in attrs) == streamed
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_instructions")) for k in attrs)
    return attrs


def assert_anthropic_call(row, streamed=False):
    u = ANTHROPIC_USAGE
    attrs = dict(row["attributes"])
    assert (row["gen_ai_provider_name"], row["gen_ai_request_model"]) == ("anthropic", "claude-sonnet-4")
    assert attrs["gen_ai.response.model"] == RESPONSE_MODELS["claude-sonnet-4"]
    total_input = u["input"] + u["cache_read"] + u["cache_creation"]
    assert (row["gen_ai_usage_input_tokens"], row["gen_ai_usage_cache_read_input_tokens"],
            row["gen_ai_usage_output_tokens"]) == (total_input, u["cache_read"], u["output"])
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == str(u["cache_creation"])
    assert row["gen_ai_usage_cost"] == pytest.approx(anthropic_cost(), rel=1e-12, abs=0)
    assert row["gen_ai_usage_cost"] == pytest.approx(CLAUDE_SONNET_4_COST, rel=1e-12, abs=0)
    assert ("gen_ai.server.time_to_first_token" in attrs) == streamed
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_instructions")) for k in attrs)
    return attrs


def assert_four_calls(control, assert_call, finish_reason, parent_span_id):
    """The four calls of a test of sync and async, streamed and not: each checked by
    ``assert_call``, ended as ``finish_reason``, a child of ``parent_span_id``; two streamed."""
    calls = llm_calls(control)
    assert len(calls) == 4
    for row in calls:
        streamed = "gen_ai.server.time_to_first_token" in dict(row["attributes"])
        attrs = assert_call(row, streamed=streamed)
        assert attrs["gen_ai.response.finish_reasons"] == finish_reason
        assert row["parent_span_id"] == int(parent_span_id, 16)
    assert sum("gen_ai.server.time_to_first_token" in dict(r["attributes"]) for r in calls) == 2
    return calls


def test_openai_chat_sync_and_async_with_and_without_streaming_record_exact_tokens_and_cost(instrumented, server):
    control = instrumented
    client, aclient, _, _ = clients(server)
    with control.thread(agent="support-bot") as thread, thread.step("turn") as turn:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.choices[0].message.content == "".join(TEXT)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(stream)

        async def run_async():
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            got = []
            async for chunk in await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                got.append(chunk)
            return got

        async_chunks = asyncio.run(run_async())
    # We asked for usage (the caller did not set stream_options) and kept the usage-only chunk
    # from the caller: every chunk it read has a choice, as without instrumentation.
    streamed = [body for path, body in server.requests if body.get("stream")]
    assert [b.get("stream_options") for b in streamed] == [{"include_usage": True}] * 2
    for got in (chunks, async_chunks):
        assert all(c.choices for c in got) and len(got) == 1 + len(TEXT) + 1
        assert "".join(c.choices[0].delta.content or "" for c in got) == "".join(TEXT)
    calls = assert_four_calls(control, assert_openai_call, "stop", turn.span_id)
    assert all(row["thread_id"] == thread.id for row in calls)
    spans = {format(r["span_id"], "016x"): r for r in rows(control.query(thread_id=thread.id))}
    assert spans[turn.span_id]["parent_span_id"] == int(thread.root.span_id, 16)
    assert spans[thread.root.span_id]["gen_ai_agent_name"] == "support-bot"


def test_a_callers_own_stream_options_are_left_alone(instrumented, server):
    client = clients(server)[0]
    with instrumented.thread():
        got = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True}))
    assert got[-1].choices == [] and got[-1].usage.prompt_tokens == OPENAI_USAGE["input"]
    assert_openai_call(llm_calls(instrumented)[0], streamed=True)


def test_stream_usage_false_leaves_every_request_as_it_is(control, server):
    mc.instrument_openai(control, stream_usage=False)
    try:
        client = clients(server)[0]
        with control.thread():
            got = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    finally:
        mc.uninstrument_openai()
    assert [body.get("stream_options") for _, body in server.requests] == [None]
    assert len(got) == 1 + len(TEXT) + 1
    (row,) = llm_calls(control)
    # The server reported no usage: the call is recorded, without tokens or cost.
    assert (row["gen_ai_usage_input_tokens"], row["gen_ai_usage_cost"]) == (0, 0)
    assert "gen_ai.server.time_to_first_token" in dict(row["attributes"])


def test_openai_responses_sync_async_and_streaming(instrumented, server):
    control = instrumented
    client, aclient, _, _ = clients(server)
    with control.thread(agent="support-bot") as thread:
        response = client.responses.create(model="gpt-4o-mini", input="Weather in Paris?")
        assert response.output_text == "".join(TEXT)
        events = [e.type for e in client.responses.create(model="gpt-4o-mini", input="Weather?", stream=True)]
        assert events == (["response.created", "response.in_progress", "response.output_item.added",
                           "response.content_part.added"] + ["response.output_text.delta"] * len(TEXT)
                          + ["response.output_text.done", "response.content_part.done",
                             "response.output_item.done", "response.completed"])

        async def run_async():
            await aclient.responses.create(model="gpt-4o-mini", input="Weather?")
            async for _ in await aclient.responses.create(model="gpt-4o-mini", input="Weather?", stream=True):
                pass

        asyncio.run(run_async())
    calls = assert_four_calls(control, assert_openai_call, "completed", thread.root.span_id)
    assert all(dict(row["attributes"])["gen_ai.response.id"] == "resp_1" for row in calls)


def test_tool_calls_the_model_asked_for_are_recorded(instrumented, server):
    client, _, anth, _ = clients(server)
    with instrumented.thread():
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS_CHAT)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS_CHAT, stream=True))
        client.responses.create(model="gpt-4o-mini", input="Weather?", tools=TOOLS_RESPONSES)
        anth.messages.create(model="claude-sonnet-4", max_tokens=100, messages=MESSAGES, tools=TOOLS_ANTHROPIC)
        list(anth.messages.create(model="claude-sonnet-4", max_tokens=100, messages=MESSAGES,
                                     tools=TOOLS_ANTHROPIC, stream=True))
    calls = llm_calls(instrumented)
    assert len(calls) == 5
    for row in calls:
        attrs = dict(row["attributes"])
        assert attrs["gen_ai.response.tool_calls"] == "1"
        assert attrs["gen_ai.response.tool_calls.names"] == "get_weather"
        assert attrs["gen_ai.response.tool_calls.ids"] in ("call_1", "toolu_1")
        assert attrs["gen_ai.response.finish_reasons"] in ("tool_calls", "completed", "tool_use")
        assert not any("arguments" in k or k.startswith("gen_ai.output") for k in attrs)


def test_anthropic_messages_sync_async_and_streaming_price_cache_reads_and_writes(instrumented, server):
    control = instrumented
    _, _, client, aclient = clients(server)
    with control.thread(agent="support-bot") as thread, thread.step("turn") as turn:
        message = client.messages.create(model="claude-sonnet-4", max_tokens=100, messages=MESSAGES)
        assert message.content[0].text == "".join(TEXT)
        events = [e.type for e in client.messages.create(model="claude-sonnet-4", max_tokens=100,
                                                         messages=MESSAGES, stream=True)]
        assert events[0] == "message_start" and events[-1] == "message_stop"

        async def run_async():
            await aclient.messages.create(model="claude-sonnet-4", max_tokens=100, messages=MESSAGES)
            async for _ in await aclient.messages.create(model="claude-sonnet-4", max_tokens=100,
                                                         messages=MESSAGES, stream=True):
                pass

        asyncio.run(run_async())
    assert_four_calls(control, assert_anthropic_call, "end_turn", turn.span_id)
    spans = {format(r["span_id"], "016x"): r for r in rows(control.query(thread_id=thread.id))}
    assert spans[turn.span_id]["parent_span_id"] == int(thread.root.span_id, 16)
    # Cache writes are dearer than fresh input: the cost is not the one without them.
    assert anthropic_cost() > (3100 - 2000) * 3.0 / 1e6 + 2000 * 0.30 / 1e6 + 50 * 15.0 / 1e6


def test_raw_responses_and_the_parse_and_stream_helpers_are_recorded_too(instrumented, server):
    """with_raw_response (sync, async, streamed), chat.completions.parse/.stream and
    responses.parse/.stream: each one LLM call with exact tokens and cost, and what the caller
    reads is what it reads without instrumentation."""
    control = instrumented
    client, aclient, anthropic_client, _ = clients(server)
    text = "".join(TEXT)
    with control.thread() as thread:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.http_response.status_code == 200
        assert raw.parse().choices[0].message.content == text
        raw_stream = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(raw_stream.parse())
        assert all(c.choices for c in chunks) and "".join(c.choices[0].delta.content or "" for c in chunks) == text
        parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)
        assert parsed.choices[0].message.content == text
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as events:
            assert "".join(e.delta for e in events if e.type == "content.delta") == text
        assert client.responses.with_raw_response.create(model="gpt-4o-mini", input="Weather?").parse().output_text == text
        assert client.responses.parse(model="gpt-4o-mini", input="Weather?").output_text == text
        with client.responses.stream(model="gpt-4o-mini", input="Weather?") as events:
            assert [e.type for e in events][-1] == "response.completed"

        async def run_async():
            answer = await aclient.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
            return answer.parse()

        assert asyncio.run(run_async()).choices[0].message.content == text
        raw_message = anthropic_client.messages.with_raw_response.create(
            model="claude-sonnet-4", max_tokens=100, messages=MESSAGES)
        assert raw_message.parse().content[0].text == text
    calls = llm_calls(control)
    openai_calls = [r for r in calls if r["gen_ai_provider_name"] == "openai"]
    assert len(openai_calls) == 8 and len(calls) == 9
    for row in openai_calls:
        assert_openai_call(row, streamed="gen_ai.server.time_to_first_token" in dict(row["attributes"]))
    # The raw stream and the two .stream() helpers were read as streams.
    assert sum("gen_ai.server.time_to_first_token" in dict(r["attributes"]) for r in openai_calls) == 3
    assert_anthropic_call(next(r for r in calls if r["gen_ai_provider_name"] == "anthropic"))
    assert all(row["thread_id"] == thread.id for row in calls)


def test_a_call_outside_any_thread_is_a_thread_of_its_own(instrumented, server):
    client = clients(server)[0]
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (row,) = llm_calls(instrumented)
    assert_openai_call(row)
    spans = rows(instrumented.query(thread_id=row["thread_id"]))
    root = next(s for s in spans if s["span_id"] == row["parent_span_id"])
    assert root["parent_span_id"] is None and root["gen_ai_agent_name"] == "test-agent"


def test_errors_are_recorded_with_their_type_and_reraised_unchanged(instrumented, server):
    client, aclient, anth, _ = clients(server)
    with instrumented.thread():
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="fail-400", messages=MESSAGES)
        with pytest.raises(openai.InternalServerError):
            asyncio.run(aclient.responses.create(model="fail-500", input="x"))
        with pytest.raises(anthropic.InternalServerError):
            anth.messages.create(model="fail-500", max_tokens=10, messages=MESSAGES)
    calls = sorted(llm_calls(instrumented), key=lambda r: r["time"])
    assert [r["status"] for r in calls] == ["error"] * 3
    expected = [("BadRequestError", 400), ("InternalServerError", 500), ("InternalServerError", 500)]
    for row, (error_type, status) in zip(calls, expected):
        attrs = dict(row["attributes"])
        assert (attrs["error.type"], attrs["http.response.status_code"]) == (error_type, str(status))
        assert row["error_message"].startswith(error_type + ": ") and f"fake {status}" in row["error_message"]
        assert row["gen_ai_usage_cost"] == 0


def test_content_is_kept_only_when_the_tenant_captures_it(tmp_path, server):
    control = mc.init(store=tmp_path / "store", service="test-agent", tenant="acme", capture_content=["acme"])
    assert control.captures_content
    mc.instrument_openai(control)
    mc.instrument_anthropic(control)
    try:
        client, _, anth, _ = clients(server)
        with control.thread():
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            list(anth.messages.create(model="claude-sonnet-4", max_tokens=10, messages=MESSAGES,
                                      system="Be brief.", stream=True))
        calls = {r["gen_ai_provider_name"]: dict(r["attributes"]) for r in llm_calls(control)}
    finally:
        mc.uninstrument_openai()
        mc.uninstrument_anthropic()
        control.shutdown()
    assert "Weather in Paris?" in calls["openai"]["gen_ai.input.messages"]
    assert "".join(TEXT) in calls["openai"]["gen_ai.output.messages"]
    assert calls["anthropic"]["gen_ai.system_instructions"] == "Be brief."
    assert "".join(TEXT) in calls["anthropic"]["gen_ai.output.messages"]


def test_uninstrument_restores_the_clients(control, server):
    original = openai.resources.chat.completions.Completions.create
    mc.instrument_openai(control)
    mc.instrument_openai(control)  # twice: wrapped once
    assert openai.resources.chat.completions.Completions.create.__wrapped__ is original
    mc.uninstrument_openai()
    assert openai.resources.chat.completions.Completions.create is original
    client = clients(server)[0]
    with control.thread():
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert llm_calls(control) == []


def test_the_issues_example_costs_what_gpt_4o_bills(instrumented, server):
    """Issue 17's example: 812 input tokens of which 512 were read from the cache, and 64 output
    tokens, on gpt-4o ($2.50 input, $1.25 cached input, $10 output per million): $0.00203.
    Billing the cached tokens at the input price, as the OTel instrumentations measured there
    do, gives $0.00267 (+31.5 %)."""
    client, aclient, _, _ = clients(server)
    with instrumented.thread():
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        asyncio.run(aclient.responses.create(model="gpt-4o", input="Weather?"))
    calls = llm_calls(instrumented)
    assert len(calls) == 3
    for row in calls:
        assert row["gen_ai_request_model"] == "gpt-4o"
        assert dict(row["attributes"])["gen_ai.response.model"] == RESPONSE_MODELS["gpt-4o"]
        assert (row["gen_ai_usage_input_tokens"], row["gen_ai_usage_cache_read_input_tokens"],
                row["gen_ai_usage_output_tokens"]) == (812, 512, 64)
        assert row["gen_ai_usage_cost"] == pytest.approx(0.00203, rel=1e-12, abs=0)
    assert (812 * 2.50 + 64 * 10.00) / 1e6 == pytest.approx(0.00267)
