"""``@mission_control.observe`` on any function: sync, async, generators, async generators,
nested; errors with their type; and ``span.set_model`` / ``set_response_model`` pricing a call
whose model is known only after it started."""

import asyncio

import pytest
from conftest import rows

import mission_control as mc


def _spans(control, thread_id=None):
    control.flush()
    found = rows(control.query(thread_id=thread_id) if thread_id else control.query())
    return [r for r in found if r["kind"] != "log"]


def test_sync_functions_nest_and_record_errors_with_their_type(control):
    @mc.observe
    def inner(x):
        return x * 2

    @mc.observe(name="plan", kind="tool")
    def failing():
        raise KeyError("missing")

    @mc.observe
    def outer():
        with pytest.raises(KeyError):
            failing()
        return inner(21)

    with control.thread(agent="planner") as thread:
        assert outer() == 42
    by_name = {r["name"]: r for r in _spans(control, thread.id)}
    assert by_name["outer"]["parent_span_id"] == by_name["invoke_agent"]["span_id"]
    assert by_name["inner"]["parent_span_id"] == by_name["outer"]["span_id"]
    plan = by_name["plan"]
    assert plan["kind"] == "tool_call" and plan["status"] == "error"
    assert plan["parent_span_id"] == by_name["outer"]["span_id"]
    assert plan["error_message"] == "KeyError: 'missing'"
    assert dict(plan["attributes"])["error.type"] == "KeyError"
    assert all(r["gen_ai_agent_name"] == "planner" for r in by_name.values())


def test_outside_a_thread_each_call_is_a_thread_of_its_own(control):
    @mc.observe
    def job():
        return mc.current_span().thread_id

    first, second = job(), job()
    assert first != second
    names = sorted(r["name"] for r in _spans(control, first))
    assert names == sorted(["invoke_agent", "job"])


def test_async_functions_keep_their_parents_across_gather(control):
    @mc.observe
    async def leaf(i):
        await asyncio.sleep(0)
        return mc.current_span().span_id

    @mc.observe
    async def fan_out():
        me = mc.current_span().span_id
        children = await asyncio.gather(*(leaf(i) for i in range(3)))
        return me, children

    async def main():
        with control.thread() as thread:
            return thread.id, await fan_out()

    thread_id, (parent, children) = asyncio.run(main())
    spans = {r["span_id"]: r for r in _spans(control, thread_id)}
    leaves = [r for r in spans.values() if r["name"] == "leaf"]
    assert len(leaves) == 3
    assert {format(r["parent_span_id"], "016x") for r in leaves} == {parent}
    assert {format(r["span_id"], "016x") for r in leaves} == set(children)


def test_generators_are_one_span_over_the_whole_iteration_and_do_not_leak(control):
    seen = []

    @mc.observe
    def numbers(n):
        for i in range(n):
            seen.append(mc.current_span().span_id)
            yield i
        return "done"

    @mc.observe
    def consumer():
        me = mc.current_span().span_id
        got = []
        for value in numbers(3):
            # Between items, the caller's span is current again.
            assert mc.current_span().span_id == me
            got.append(value)
        return got

    with control.thread() as thread:
        assert consumer() == [0, 1, 2]
        gen = numbers(5)
        assert next(gen) == 0
        gen.close()  # closed early: not an error
    spans = [r for r in _spans(control, thread.id) if r["name"] == "numbers"]
    assert len(spans) == 2 and all(r["status"] != "error" for r in spans)
    assert len(set(seen)) == 2  # one span per generator, the same for all its items

    @mc.observe
    def broken():
        yield 1
        raise ValueError("bad item")

    with control.thread() as thread, pytest.raises(ValueError):
        list(broken())
    failed = next(r for r in _spans(control, thread.id) if r["name"] == "broken")
    assert failed["status"] == "error" and failed["error_message"] == "ValueError: bad item"


def test_async_generators_are_observed(control):
    @mc.observe(name="stream")
    async def stream():
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    async def main():
        with control.thread() as thread:
            return thread.id, [i async for i in stream()]

    thread_id, items = asyncio.run(main())
    assert items == [0, 1, 2]
    spans = [r for r in _spans(control, thread_id) if r["name"] == "stream"]
    assert len(spans) == 1 and spans[0]["status"] != "error"


def test_observe_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        mc.observe(kind="banana")
    with pytest.raises(TypeError, match="name"):
        mc.observe(name=3)


def test_a_model_set_after_start_prices_the_call(control):
    with control.thread() as thread:
        with thread.llm_call(provider="openai") as call:  # the Responses API: model unknown yet
            call.record_usage(812, 64, cached_input_tokens=512)
            call.set_response_model("gpt-4o-mini-2024-07-18")
        with thread.llm_call("placeholder", provider="openai") as call:
            call.set_model("gpt-4o")
            call.set_response_model("gpt-4o-2024-08-06")
            call.record_usage(1000, 100)
        with thread.tool_call("search") as tool, pytest.raises(ValueError, match="LLM calls"):
            tool.set_model("gpt-4o")
    calls = [r for r in _spans(control, thread.id) if r["kind"] == "llm_call"]
    assert len(calls) == 2
    mini = next(r for r in calls if r["gen_ai_request_model"] == "gpt-4o-mini-2024-07-18")
    assert mini["gen_ai_usage_cost"] == pytest.approx((300 * 0.15 + 512 * 0.075 + 64 * 0.60) / 1e6, rel=1e-9)
    assert dict(mini["attributes"])["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    big = next(r for r in calls if r["gen_ai_request_model"] == "gpt-4o")
    assert big["gen_ai_usage_cost"] == pytest.approx((1000 * 2.50 + 100 * 10.00) / 1e6, rel=1e-9)
    assert dict(big["attributes"])["gen_ai.response.model"] == "gpt-4o-2024-08-06"


def test_end_llm_call_records_the_answer_in_one_call_and_never_raises_for_odd_values(control):
    with control.thread() as thread:
        call = thread.llm_call(provider="openai")  # the model named only by the answer
        call.end_llm_call("gpt-4o-mini-2024-07-18", "chatcmpl-1", 812, 64, 512, 16, "stop")
        assert call.ended
        call.end_llm_call("gpt-4o", "again", 1, 1, 0, 0, "length")  # ended: nothing changes
        odd = thread.llm_call("gpt-4o", provider="openai")
        odd.end_llm_call(42, None, -1, True, 2**40, "16", None)
    calls = [r for r in _spans(control, thread.id) if r["kind"] == "llm_call"]
    assert len(calls) == 2
    mini = next(r for r in calls if r["gen_ai_request_model"] == "gpt-4o-mini-2024-07-18")
    assert (mini["gen_ai_usage_input_tokens"], mini["gen_ai_usage_cache_read_input_tokens"],
            mini["gen_ai_usage_output_tokens"], mini["gen_ai_usage_reasoning_output_tokens"]) == (812, 512, 64, 16)
    assert mini["gen_ai_usage_cost"] == pytest.approx((300 * 0.15 + 512 * 0.075 + 64 * 0.60) / 1e6, rel=1e-12)
    attrs = dict(mini["attributes"])
    assert (attrs["gen_ai.response.model"], attrs["gen_ai.response.id"],
            attrs["gen_ai.response.finish_reasons"]) == ("gpt-4o-mini-2024-07-18", "chatcmpl-1", "stop")
    odd = next(r for r in calls if r["gen_ai_request_model"] == "gpt-4o")
    # A count that is not an int from 0 to 2**32 - 1 (or a bool) is 0; a non-str model is ignored.
    assert (odd["gen_ai_usage_input_tokens"], odd["gen_ai_usage_output_tokens"],
            odd["gen_ai_usage_cache_read_input_tokens"], odd["gen_ai_usage_reasoning_output_tokens"]) == (0, 0, 0, 0)
    assert "gen_ai.response.model" not in dict(odd["attributes"] or [])
