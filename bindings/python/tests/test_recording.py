"""Recording from Python: nesting and parentage (sync, asyncio, threads), exceptions, the
decorator, usage and cost, and queries that give back exactly what was recorded."""

import asyncio
import contextvars
import threading

import pytest

import mission_control as mc
from conftest import rows


def by_name(table):
    return {r["name"]: r for r in rows(table)}


def test_the_readme_example_round_trips(control):
    with control.thread(agent="support-bot", user_id="u-42") as thread:
        with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
            call.record_usage(input_tokens=812, output_tokens=64)
        with thread.tool_call("web_search", arguments={"q": "weather in Paris"}) as tool:
            tool.set_result(size=3)
    control.log("warn", "retrying", attempt=2)
    table = control.query(thread_id=thread.id)
    spans = by_name(table)
    assert set(spans) == {"invoke_agent", "chat", "web_search"}
    root, chat, tool = spans["invoke_agent"], spans["chat"], spans["web_search"]
    assert root["parent_span_id"] is None and root["gen_ai_agent_name"] == "support-bot"
    assert chat["parent_span_id"] == root["span_id"] == tool["parent_span_id"]
    assert (chat["gen_ai_usage_input_tokens"], chat["gen_ai_usage_output_tokens"]) == (812, 64)
    assert chat["gen_ai_request_model"] == "gpt-4o-mini" and chat["gen_ai_provider_name"] == "openai"
    attrs = dict(tool["attributes"])
    assert attrs["gen_ai.tool.call.result.size"] == "3"
    assert int(attrs["gen_ai.tool.call.arguments.size"]) == len('{"q": "weather in Paris"}')
    assert dict(root["attributes"])["user.id"] == "u-42"
    assert all(r["tenant"] == "acme" for r in rows(table))
    logs = rows(control.query(kind="log"))
    assert [(r["log_level"], r["log_message"], dict(r["attributes"])["attempt"]) for r in logs] == [("warn", "retrying", "2")]


def test_cost_is_priced_from_the_table_and_matches_stats(control):
    with control.thread() as thread:
        for model, tokens in [("gpt-4o-mini", (1000, 100)), ("gpt-4o", (2000, 300))]:
            with thread.llm_call(model, "openai") as call:
                call.record_usage(*tokens)
    table = control.query(kind="llm_call")
    costs = {r["gen_ai_request_model"]: r["gen_ai_usage_cost"] for r in rows(table)}
    assert costs["gpt-4o-mini"] == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    assert costs["gpt-4o"] > costs["gpt-4o-mini"] > 0
    usage = control.stats()["usage"]
    assert usage["llm_calls"] == 2 and usage["input_tokens"] == 3000
    assert usage["cost_usd"] == pytest.approx(sum(costs.values()))


def test_nested_spans_get_the_innermost_parent(control):
    with control.thread() as thread:
        with thread.step("plan") as plan:
            with thread.llm_call("gpt-4o-mini") as inner:
                pass
            with plan.tool_call("lookup_order"):
                thread.log("info", "looked up")
        with thread.retrieval("docs"):
            pass
    spans = by_name(control.query(thread_id=thread.id))
    assert spans["chat"]["parent_span_id"] == spans["plan"]["span_id"]
    assert format(spans["chat"]["span_id"], "016x") == inner.span_id and inner.ended
    assert spans["lookup_order"]["parent_span_id"] == spans["plan"]["span_id"]
    assert spans["docs"]["parent_span_id"] == spans["invoke_agent"]["span_id"]
    assert spans["log"]["span_id"] == spans["lookup_order"]["span_id"], "the log belongs to the open tool call"
    assert mc.current_span() is None, "the context is restored after the with blocks"


def test_parents_follow_asyncio_tasks(control):
    async def worker(thread, name):
        with thread.step(name):
            await asyncio.sleep(0.01)
            with thread.tool_call(f"{name}-tool"):
                await asyncio.sleep(0.01)

    async def main():
        with control.thread() as thread:
            await asyncio.gather(*(worker(thread, f"task{i}") for i in range(5)))
        return thread

    thread = asyncio.run(main())
    spans = by_name(control.query(thread_id=thread.id))
    for i in range(5):
        assert spans[f"task{i}-tool"]["parent_span_id"] == spans[f"task{i}"]["span_id"]
        assert spans[f"task{i}"]["parent_span_id"] == spans["invoke_agent"]["span_id"]


def test_parents_follow_copied_contexts_into_threads(control):
    with control.thread() as thread:
        with thread.step("fan-out"):
            workers = []
            for i in range(4):
                ctx = contextvars.copy_context()
                t = threading.Thread(target=ctx.run, args=(lambda i=i: thread.tool_call(f"t{i}").end(),))
                t.start()
                workers.append(t)
            for t in workers:
                t.join()
        # A thread started without the context falls back to the root.
        plain = threading.Thread(target=lambda: thread.tool_call("plain").end())
        plain.start()
        plain.join()
    spans = by_name(control.query(thread_id=thread.id))
    assert all(spans[f"t{i}"]["parent_span_id"] == spans["fan-out"]["span_id"] for i in range(4))
    assert spans["plain"]["parent_span_id"] == spans["invoke_agent"]["span_id"]


def test_exceptions_are_recorded_and_reraised_unchanged(control):
    class Boom(RuntimeError):
        pass

    error = Boom("upstream returned 503")
    with pytest.raises(Boom) as raised:
        with control.thread() as thread:
            with thread.tool_call("web_search"):
                raise error
    assert raised.value is error
    spans = by_name(control.query(thread_id=thread.id))
    for name in ("web_search", "invoke_agent"):
        assert spans[name]["status"] == "error"
        assert spans[name]["error_message"] == "test_exceptions_are_recorded_and_reraised_unchanged.<locals>.Boom: upstream returned 503"
        assert dict(spans[name]["attributes"])["error.type"].endswith("Boom")


def test_the_decorator_wraps_sync_and_async_functions(control):
    @control.tool("lookup_order")
    def lookup(order_id):
        return {"id": order_id}

    @control.tool()
    async def refund(order_id):
        await asyncio.sleep(0)
        if order_id < 0:
            raise ValueError("no such order")
        return order_id

    assert lookup.__name__ == "lookup"
    with control.thread() as thread:
        assert lookup(7) == {"id": 7}
        assert asyncio.run(refund(3)) == 3
        with pytest.raises(ValueError):
            asyncio.run(refund(-1))
    assert lookup(8) == {"id": 8}, "outside a thread: a thread of its own"
    inside = rows(control.query(thread_id=thread.id, kind="tool_call"))
    assert sorted((r["name"], r["status"]) for r in inside) == [("lookup_order", "unset"), ("refund", "error"), ("refund", "unset")]
    root = by_name(control.query(thread_id=thread.id))["invoke_agent"]["span_id"]
    assert all(r["parent_span_id"] == root for r in inside)
    alone = [r for r in rows(control.query(kind="tool_call", name="lookup_order")) if r["thread_id"] != thread.id]
    assert len(alone) == 1
    with pytest.raises(TypeError, match="parentheses"):
        control.tool(lookup)


def test_eight_python_threads_record_concurrently_with_exact_accounting(control):
    per_thread = 2_000

    def work(i):
        for _ in range(per_thread // 4):
            with control.thread(agent=f"worker-{i}") as thread:
                with thread.llm_call("gpt-4o-mini") as call:
                    call.record_usage(10, 5)
                thread.tool_call("noop").end()
                thread.log("debug", "tick")

    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    report = control.shutdown()
    accounting = report["accounting"]
    # What the workers recorded, plus what the models derived from it (anomalies, memory
    # samples) and what the directives derived from those (the incidents anomalies open),
    # exactly.
    derived = report["models"]["derived_events"] + report["directives"]["derived_events"]
    assert accounting["recorded"] == 8 * per_thread + derived
    assert accounting["delivered"] + accounting["dropped"] == accounting["recorded"]
    assert accounting["in_flight"] == 0


def test_query_results_feed_polars_and_duckdb_without_pyarrow_conversion(control):
    import duckdb
    import polars as pl

    with control.thread() as thread:
        for i in range(10):
            thread.tool_call(f"tool-{i % 3}").end()
    frame = pl.DataFrame(control.query(kind="tool_call", arrow=False))
    assert frame.height == 10
    stream = control.query(kind="tool_call", arrow=False)
    assert len(stream) == 10
    counts = duckdb.sql("SELECT name, count(*) AS n FROM stream GROUP BY name ORDER BY name").fetchall()
    assert counts == [("tool-0", 4), ("tool-1", 3), ("tool-2", 3)]
    assert pl.DataFrame(stream).height == 10, "a result can be read again"


def test_threads_started_before_init_record_too(tmp_path):
    go = threading.Event()
    box = {}

    def early():
        go.wait(10)
        with box["control"].thread(agent="early") as t:
            t.tool_call("from-an-old-thread").end()

    worker = threading.Thread(target=early)
    worker.start()  # before init
    control = mc.init(store=tmp_path, service="late")
    box["control"] = control
    go.set()
    worker.join()
    assert [r["name"] for r in rows(control.query(agent="early", kind="tool_call"))] == ["from-an-old-thread"]
    assert control.shutdown()["accounting"]["dropped"] == 0


def test_models_run_by_default_and_can_be_turned_off(tmp_path):
    on = mc.init(store=tmp_path / "on", service="models-on")
    with on.thread() as thread:
        thread.tool_call("lookup").end()
    on.flush()
    health = on.health()
    assert health["models"] is not None and health["models"]["streams"] >= 1
    assert "models" in [s["name"] for s in health["recorder"]["sinks"]]
    on.shutdown()
    off = mc.init(store=tmp_path / "off", service="models-off", models=False)
    assert off.health()["models"] is None
    assert off.shutdown()["models"] is None


def test_permit_policy_directives_and_redaction_from_python(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'default = "allow"\n[[rule]]\nname = "no-refunds"\neffect = "deny"\naction = "tool.call"\n'
        'resource = "refund_*"\nreason = "refunds need a human"\n'
    )
    redaction = tmp_path / "redaction.toml"
    redaction.write_text('key = "a-python-redaction-key-0123"\n')
    c = mc.init(store=tmp_path / "store", service="gov", directives=["preset:tool-circuit-breaker"],
                policy_file=policy, redaction_file=redaction)
    denied = c.permit("agent:gov", "tool.call", "refund_payment")
    assert denied["allowed"] is False and denied["rule"] == "no-refunds"
    assert "refunds need a human" in denied["reason"]
    assert c.permit("agent:gov", "tool.call", "lookup")["allowed"] is True
    assert {"tool-failing", "tool-error-rate"} <= {d["name"] for d in c.directives()}
    c.log("warn", "mail bob@example.com")
    table = c.query(kind="log")
    messages = table.column("log_message").to_pylist()
    assert messages and "bob@example.com" not in str(messages), messages
    assert c.query(kind="permission").num_rows == 2
    c.shutdown()
    with pytest.raises(mc.MissionControlError, match="missing.toml"):
        mc.init(store=tmp_path / "bad", policy_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad-directives.toml"
    bad.write_text('[[directive]]\nname = "x"\nwhen = "p97(duration) > 1s over 5m"\n')
    with pytest.raises(mc.ConfigError, match="p97"):
        mc.init(store=tmp_path / "bad2", directives=[bad])


def test_compliance_packs_and_erasure_from_python(tmp_path):
    import hashlib
    import json

    with pytest.raises(mc.ConfigError, match="redaction_key|MISSION_REDACTION_KEY"):
        mc.init(store=tmp_path / "nokey", compliance=["hipaa"])
    with pytest.raises(mc.ConfigError, match="unknown pack"):
        mc.init(store=tmp_path / "unknown", compliance=["sox"], redaction_key="a-python-redaction-key-0123")
    c = mc.init(store=tmp_path / "store", service="clinic-bot", tenant="clinic",
                compliance=["hipaa@clinic"], redaction_key="a-python-redaction-key-0123")
    [applied] = c.compliance()
    assert applied["tenant"] == "clinic" and applied["pack"]["name"] == "hipaa"
    c.log("info", "patient jane@example.org called from 555-867-5309")
    assert c.permit("agent:clinic-bot", "tool.call", "ehr_lookup")["allowed"]
    for user in ("u-1", "u-2", "u-1"):
        with c.thread("clinic-bot", user_id=user) as t:
            with t.tool_call("lookup"):
                pass
    report = c.erase_subject("dpo@clinic", "user.id", "u-1", tenant="clinic")
    assert report["events"] == 2 and report["audit_seq"] is not None
    assert report["value_sha256"] == hashlib.sha256(b"u-1").hexdigest()
    assert c.query(kind="log").column("log_message").to_pylist()[0].count("[email:") == 1
    with pytest.raises(mc.ConfigError, match="must not be empty"):
        c.erase_subject("dpo@clinic", "user.id", "")
    c.shutdown()
    trail = [json.loads(l) for l in (tmp_path / "store" / "audit" / "audit.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in trail]
    assert kinds[0] == "compliance" and "permission_granted" in kinds and kinds[-1] == "erasure"


def test_a_tenant_query_reads_only_that_tenants_partitions(tmp_path):
    """Two tenants' agents write one store and share a thread id: `query(tenant=)` returns
    that tenant's rows only, whatever other filter is given (issue 15)."""
    store = tmp_path / "store"
    first = mc.init(store=store, service="support-bot", tenant="acme", models=False)
    with first.thread(agent="support-bot") as thread:
        shared = thread.id
        with thread.tool_call("web_search"):
            pass
    first.log("warn", "acme-only marker")
    first.shutdown()
    second = mc.init(store=store, service="support-bot", tenant="globex", models=False)
    with second.thread(agent="support-bot", thread_id=shared) as thread:
        with thread.tool_call("web_search"):
            pass
    second.log("warn", "globex-only marker")
    second.flush()
    for tenant, other in [("acme", "globex"), ("globex", "acme")]:
        for filters in [{}, {"thread_id": shared}, {"kind": "log"}, {"name": "web_search"}]:
            table = second.query(tenant=tenant, **filters)
            got = rows(table)
            assert got, (tenant, filters)
            assert all(r["tenant"] == tenant for r in got), (tenant, filters)
            assert f"{other}-only" not in str(got)
    both = rows(second.query(thread_id=shared))
    assert {r["tenant"] for r in both} == {"acme", "globex"}, "without a tenant, every tenant"
    second.shutdown()
