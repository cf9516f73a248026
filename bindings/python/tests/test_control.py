"""Thread trees, states and budgets from Python (issue 22): budgets stop threads (and refuse
calls when hard), a child's spending counts against its parent, pause/cancel/resume are seen by
``should_stop`` and stamped in the store, and a child in another process continues from
``child_handoff()`` with what the parent's budget had left."""

import json
import time
import subprocess
import sys

import pytest

import mission_control as mc
from conftest import rows

PARENT_ID = "mission.thread.parent_id"


def spend(thread, tokens):
    """One LLM call of `tokens` tokens (half in, half out) in `thread`."""
    with thread.llm_call("gpt-4o-mini", provider="openai") as call:
        call.record_usage(input_tokens=tokens // 2, output_tokens=tokens - tokens // 2)


def attrs(row):
    return dict(row["attributes"] or [])


def one(control, thread_id, name):
    found = rows(control.query(thread_id=thread_id, name=name))
    assert len(found) == 1, found
    return attrs(found[0])


def test_budgets_are_checked_and_name_the_field_that_is_wrong(control):
    assert mc.Budget(tokens=5, cost_usd=0.5, hard=True) == {"tokens": 5, "cost_usd": 0.5, "hard": True}
    assert mc.Budget() == {"hard": False}
    with pytest.raises(ValueError, match="turns"):
        mc.Budget(turns=0)
    with pytest.raises(ValueError, match="tokens"):
        mc.Budget(tokens=-3)
    with pytest.raises(ValueError, match="cost_usd"):
        mc.Budget(cost_usd=-1.0)
    with pytest.raises(ValueError, match="wall_time_s"):
        mc.Budget(wall_time_s=float("nan"))
    with pytest.raises(ValueError, match="warn_share"):
        control.thread(budget={"tokens": 5, "warn_share": 1.5})
    with pytest.raises(ValueError, match="tokenz"):
        control.thread(budget={"tokenz": 5})
    with pytest.raises(TypeError, match="tokens"):
        mc.Budget(tokens=True)
    with pytest.raises(TypeError, match="hard"):
        control.thread(budget={"tokens": 5, "hard": 1})
    with pytest.raises(TypeError, match="budget"):
        control.thread(budget=5)
    with pytest.raises(ValueError, match="child=True"):
        control.thread(baggage="mission.budget=tokens:5")
    with pytest.raises(ValueError, match="traceparent"):
        control.thread(child=True)


def test_a_used_up_budget_stops_the_thread_and_a_hard_one_refuses_calls(control):
    soft = control.thread("support-bot", budget={"turns": 1})
    assert not soft.should_stop() and soft.stop_reason() is None
    spend(soft, 10)
    assert soft.should_stop()
    reason = soft.stop_reason()
    assert reason["kind"] == "budget" and reason["resource"] == "turns" and reason["owner_id"] == soft.id
    assert reason["hard"] is False
    spend(soft, 10)  # a soft budget only tells

    hard = control.thread("support-bot", budget=mc.Budget(tokens=100, hard=True))
    with hard.tool_call("search"):
        pass
    spend(hard, 60)
    assert not hard.should_stop()
    spend(hard, 60)
    assert hard.should_stop()
    with pytest.raises(mc.BudgetExceeded) as refused:
        hard.llm_call("gpt-4o-mini", provider="openai")
    e = refused.value
    assert isinstance(e, mc.MissionControlError)
    assert (e.resource, e.used, e.limit, e.owner_id, e.thread_id) == ("tokens", 120.0, 100.0, hard.id, hard.id)
    assert "over budget" in str(e)
    with pytest.raises(mc.BudgetExceeded):
        hard.tool_call("search")
    with hard.step("plan") as step, pytest.raises(mc.BudgetExceeded):
        step.llm_call("gpt-4o-mini")  # nested spans are refused too
    assert hard.budget_used["tokens"] == 120 and hard.budget_used["turns"] == 2
    hard_id = hard.id
    hard.end()
    soft.end()

    exceeded = one(control, hard_id, "mission.budget.exceeded")
    assert exceeded["mission.budget.resource"] == "tokens" and exceeded["mission.budget.owner_id"] == hard_id
    root = one(control, hard_id, "invoke_agent")
    assert root["mission.budget.used.tokens"] == "120" and root["mission.budget.used.turns"] == "2"
    assert "mission.thread.state" not in root, "a thread nobody paused or cancelled ends running"
    # The refused calls were not recorded: a tool call, two LLM calls and a step.
    kinds = sorted(r["kind"] for r in rows(control.query(thread_id=hard_id)) if r["name"] != "invoke_agent")
    assert kinds.count("llm_call") == 2 and kinds.count("tool_call") == 1


def test_a_childs_spend_counts_against_its_parent_and_the_tree_is_in_the_store(control):
    parent = control.thread("planner", budget=mc.Budget(tokens=1000))
    child = parent.child_thread("researcher")
    grandchild = child.child_thread(budget={"tokens": 5000})
    assert child.id != parent.id and grandchild.agent == "researcher"
    assert (parent.depth, child.depth, grandchild.depth) == (0, 1, 2)
    # The children's starts are in the store while they run.
    starts = rows(control.query(name="mission.thread.start"))
    assert sorted(attrs(r)[PARENT_ID] for r in starts) == sorted([parent.id, child.id])

    spend(grandchild, 500)
    spend(child, 350)
    assert parent.budget_used["tokens"] == 850 and parent.budget_used["turns"] == 2
    assert child.budget_used["tokens"] == 850 and grandchild.budget_used["tokens"] == 500
    assert not grandchild.should_stop(), "850 of 1,000: warned, not stopped"
    spend(grandchild, 200)
    reason = grandchild.stop_reason()
    assert reason["kind"] == "budget" and reason["owner_id"] == parent.id
    assert (reason["used"], reason["limit"]) == (1050.0, 1000.0)
    assert child.should_stop() and parent.should_stop()
    ids = (parent.id, child.id, grandchild.id)
    grandchild.end()
    child.end()
    parent.end()
    plain = control.thread("planner")
    plain.end()

    p, c, g = (one(control, i, "invoke_agent") for i in ids)
    assert (c[PARENT_ID], c["mission.thread.depth"]) == (ids[0], "1")
    assert (g[PARENT_ID], g["mission.thread.depth"]) == (ids[1], "2")
    parent_span = rows(control.query(thread_id=ids[0], name="invoke_agent"))[0]["span_id"]
    assert c["mission.thread.parent_span_id"] == f"{parent_span:016x}"
    assert (p["mission.budget.used.tokens"], c["mission.budget.used.tokens"], g["mission.budget.used.tokens"]) == (
        "1050", "1050", "700")
    assert PARENT_ID not in p
    plain_root = one(control, plain.id, "invoke_agent")
    assert not [k for k in plain_root if k.startswith(("mission.thread.", "mission.budget."))]
    warnings = rows(control.query(thread_id=ids[0], name="mission.budget.warning"))
    exceeded = rows(control.query(thread_id=ids[0], name="mission.budget.exceeded"))
    assert (len(warnings), len(exceeded)) == (1, 1), "each recorded once, in the owner's thread"


def test_pause_cancel_and_resume_are_seen_by_should_stop_and_stamped_in_the_store(control, tmp_path):
    thread = control.thread("support-bot")
    child = thread.child_thread()
    assert thread.state == "running" and not thread.should_stop()
    thread.pause("waiting for a human")
    assert thread.state == "paused" and child.state == "running"
    assert child.should_stop() and child.stop_reason() == {"kind": "paused", "thread_id": thread.id}
    with pytest.raises(mc.ThreadStopped, match="paused"):
        child.tool_call("search")
    thread.resume()
    assert thread.state == "running" and not child.should_stop()
    with child.tool_call("search"):
        pass
    state = control.control_thread(thread.id, "cancel", by="operator:ann", reason="runaway loop")
    assert state == "cancelled" and thread.state == "cancelled"
    assert child.stop_reason() == {"kind": "cancelled", "thread_id": thread.id, "by": "operator:ann",
                                   "reason": "runaway loop"}
    with pytest.raises(mc.ThreadStopped, match="operator:ann") as refused:
        child.llm_call("gpt-4o-mini")
    assert refused.value.thread_id == child.id and "runaway loop" in refused.value.reason
    with pytest.raises(ValueError, match="cancelled"):
        control.control_thread(thread.id, "resume")
    with pytest.raises(ValueError, match="no running thread"):
        control.control_thread("0123456789abcdef" * 2, "cancel")
    with pytest.raises(ValueError, match="cancel, pause or resume"):
        control.control_thread(thread.id, "stop")
    by_code = control.thread("support-bot")
    by_code.cancel("done early")
    ids = (thread.id, child.id, by_code.id)
    child.end()
    thread.end()
    by_code.end()
    with pytest.raises(ValueError, match="no running thread"):
        control.control_thread(ids[0], "pause")

    root = one(control, ids[0], "invoke_agent")
    assert (root["mission.thread.state"], root["mission.thread.state.by"], root["mission.thread.state.reason"]) == (
        "cancelled", "operator:ann", "runaway loop")
    changes = sorted(rows(control.query(thread_id=ids[0], name="mission.thread.state")), key=lambda r: r["time"])
    assert [attrs(r)["mission.thread.state"] for r in changes] == ["paused", "running", "cancelled"]
    child_root = one(control, ids[1], "invoke_agent")
    assert "mission.thread.state" not in child_root and child_root[PARENT_ID] == ids[0]
    assert one(control, ids[2], "invoke_agent")["mission.thread.state.by"] == "code"
    control.shutdown()
    trail = [json.loads(l) for l in (tmp_path / "store" / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [r["detail"]["state"] for r in trail if r["kind"] == "thread_control"].count("cancelled") == 2


CHILD = r"""
import json, sys
import mission_control as mc

store, traceparent, baggage = sys.argv[1:4]
control = mc.init(store=store, service="researcher", tenant="acme")
child = control.thread("researcher", traceparent=traceparent, baggage=baggage, child=True)
out = {"id": child.id}

def spend(n):
    with child.llm_call("gpt-4o-mini", provider="openai") as call:
        call.record_usage(input_tokens=n // 2, output_tokens=n - n // 2)

spend(250)
out["after_250"] = child.should_stop()
spend(100)
out["after_350"] = child.should_stop()
out["reason"] = child.stop_reason()
try:
    child.llm_call("gpt-4o-mini")
    out["refused"] = None
except mc.BudgetExceeded as e:
    out["refused"] = e.resource
child.end()
control.shutdown()
print(json.dumps(out))
"""


def test_a_child_in_another_process_continues_with_what_the_budget_had_left(control, tmp_path):
    parent = control.thread("planner", budget=mc.Budget(tokens=1000, turns=10, hard=True))
    spend(parent, 700)
    traceparent, baggage = parent.child_handoff()
    assert traceparent == parent.traceparent
    assert "tokens:300" in baggage and "turns:9" in baggage and "hard:1" in baggage, baggage
    assert control.thread("planner").child_handoff()[1] is None, "no budget, no baggage"
    child_store = tmp_path / "child-store"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(child_store), traceparent, "userid=7," + baggage],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["after_250"], out["after_350"]) == (False, True)
    assert out["reason"]["kind"] == "budget" and out["reason"]["resource"] == "tokens"
    assert (out["reason"]["used"], out["reason"]["limit"]) == (350.0, 300.0)
    assert out["refused"] == "tokens"
    assert parent.budget_used["tokens"] == 700, "another process's spending is its own"

    there = mc.init(store=child_store, service="reader", tenant="acme")
    try:
        root = one(there, out["id"], "invoke_agent")
        assert root[PARENT_ID] == parent.id
        assert root["mission.thread.parent_span_id"] == traceparent.split("-")[2]
        assert (root["mission.thread.depth"], root["mission.budget.used.tokens"]) == ("1", "350")
        assert one(there, out["id"], "mission.thread.start")[PARENT_ID] == parent.id
        assert one(there, out["id"], "mission.budget.exceeded")["mission.budget.resource"] == "tokens"
    finally:
        there.shutdown()
    # Bad handoffs are ValueErrors naming what is wrong.
    with pytest.raises(ValueError, match="tokens"):
        control.thread(traceparent=traceparent, baggage="mission.budget=tokens:0", child=True)
    with pytest.raises(ValueError, match="traceparent"):
        control.thread(traceparent="not-a-traceparent", baggage=baggage, child=True)
    parent.end()


def test_a_config_file_gives_agents_budgets(tmp_path):
    """`[budget.default]` and `[budget.agent.NAME]` in the configuration file apply to new
    threads and children of those agents; a budget given in code replaces the file's."""
    config = tmp_path / "mission.toml"
    config.write_text('[budget.default]\ntokens = 1000\n\n[budget.agent.researcher]\nturns = 1\nhard = true\n')
    control = mc.init(store=tmp_path / "store", tenant="acme", config_file=config)
    try:
        planner = control.thread("planner")
        spend(planner, 1200)
        assert planner.stop_reason()["resource"] == "tokens"
        researcher = planner.child_thread("researcher")
        spend(researcher, 10)
        with pytest.raises(mc.BudgetExceeded):
            researcher.llm_call("gpt-4o-mini", provider="openai")
        coded = control.thread("planner", budget={"tokens": 5000})
        spend(coded, 1200)
        assert not coded.should_stop(), "code's budget replaces the file's"
        for t in (researcher, planner, coded):
            t.end()
    finally:
        control.shutdown()


HELD = """
[[directive]]
name = "loop-guard"
when = "3 same tool calls in a thread"
approve = { within = "10m", confidence = 0.9 }
then = [{ action = "alert" }, { action = "cancel_thread", reason = "a tool loop" }]
"""


@pytest.fixture
def held(tmp_path):
    path = tmp_path / "held.toml"
    path.write_text(HELD)
    c = mc.init(store=tmp_path / "store", service="held", tenant="acme", directives=[path], models=False)
    yield c
    if not c.is_shut_down:
        c.shutdown()


def plant_loop(control):
    """A running thread calling one tool three times with the same arguments, flushed."""
    thread = control.thread("looping-bot")
    for _ in range(3):
        with thread.tool_call("search_docs", {"query": "refund policy"}):
            pass
    control.flush()
    return thread


def test_an_approved_remedy_runs_and_a_rejected_one_never_does(held):
    """A tool loop makes the directive propose cancelling the thread: nothing runs until it is
    approved from Python (then the thread's own code sees the cancel); a rejected proposal
    never runs; both decisions are in the run history, the store and the audit trail."""
    approved = plant_loop(held)
    [proposal] = held.approvals()
    assert proposal["state"] == "pending" and proposal["actions"] == ["cancel_thread"], proposal
    assert proposal["thread_id"] == approved.id and proposal["confidence"] == 0.9
    assert not approved.should_stop()
    decided = held.approve(proposal["id"], by="jo", note="confirmed loop")
    assert decided["state"] == "approved" and decided["decided_by"] == "jo"
    assert approved.should_stop() and approved.state == "cancelled"
    with pytest.raises(ValueError, match="approved"):
        held.reject(proposal["id"])

    rejected = plant_loop(held)
    pending = [a for a in held.approvals() if a["state"] == "pending"]
    assert [a["thread_id"] for a in pending] == [rejected.id]
    held.reject(pending[0]["id"], by="kim", note="expected retries")
    assert not rejected.should_stop()
    with pytest.raises(ValueError, match="no approval"):
        held.approve(999)

    outcomes = [r["outcome"] for r in held.directive_runs(directive="loop-guard")]
    assert outcomes == ["rejected", "approved"], outcomes
    held.flush()
    states = sorted(attrs(r)["mission.approval.state"] for r in rows(held.query(name="mission.approval")))
    assert states == ["approved", "pending", "pending", "rejected"], states
    stats = held.directive_stats()
    assert (stats["approvals_approved"], stats["approvals_rejected"]) == (1, 1)


def test_a_directive_run_by_hand_is_listed_with_its_trigger(held):
    thread = held.thread("support-bot")
    run = held.run_directive("loop-guard", by="jo", thread_id=thread.id)
    assert (run["trigger"], run["outcome"], run["by"]) == ("manual", "pending_approval", "jo"), run
    assert run["tenant"] == "acme"
    assert held.directive_runs(limit=1)[0]["id"] == run["id"]
    with pytest.raises(ValueError, match="no directive"):
        held.run_directive("nope")
    with pytest.raises(ValueError, match="32 hex digits"):
        held.run_directive("loop-guard", thread_id="xyz")


def test_incidents_carry_the_analysers_narrative_and_the_verdict(tmp_path):
    """A firing opens an incident on its operation; the registered analyser's narrative is
    kept with it; an acknowledgement's verdict joins it; an exception in the analyser is
    counted, never raised into the agent."""
    path = tmp_path / "flaky.toml"
    path.write_text(
        '[[directive]]\nname = "flaky"\nwhen = "2 failures in a row"\n'
        'where = { kind = "tool_call" }\ngroup_by = ["operation"]\n'
    )
    c = mc.init(store=tmp_path / "store", service="inc", tenant="acme", directives=[path], models=False)
    try:
        seen = []

        def analyser(request):
            seen.append(request)
            if request["incident"]["cause"] == "operation=broken":
                raise RuntimeError("the analyser failed")
            return "search is down: " + request["incident"]["cause"]

        c.register_analyser(analyser)
        with pytest.raises(TypeError):
            c.register_analyser("not callable")
        for tool in ("search", "broken"):
            with c.thread(agent="support-bot") as thread:
                for _ in range(2):
                    with thread.tool_call(tool) as call:
                        call.set_error("upstream returned 503")
        c.flush()
        deadline = time.monotonic() + 30
        while c.analyser_stats()["analysed"] < 2:
            assert time.monotonic() < deadline, c.analyser_stats()
            time.sleep(0.02)
        stats = c.analyser_stats()
        assert (stats["narrated"], stats["panicked"]) == (1, 1), stats
        by_cause = {i["cause"]: i for i in c.incidents()}
        assert by_cause["operation=search"]["narrative"] == "search is down: operation=search"
        assert "narrative" not in by_cause["operation=broken"]
        assert seen[0]["incident"]["members"][0]["kind"] == "firing"
        c.acknowledge("flaky", "jo", "restarted the search backend", verdict="true_positive")
        members = {i["cause"]: i for i in c.incidents()}["operation=search"]["members"]
        assert any(m["kind"] == "acknowledgement" and m.get("verdict") == "true_positive" for m in members), members
        with pytest.raises(ValueError, match="true_positive or false_positive"):
            c.acknowledge("flaky", "jo", verdict="maybe")
    finally:
        c.shutdown()


def test_a_child_holds_the_intersection_of_its_lineages_permissions(control, tmp_path):
    """A child's permissions narrow its parent's: what the parent does not allow is an
    escalation in the child, recorded with the ancestor that narrowed it and a severity; bad
    permission sets are refused naming what is wrong."""
    parent = control.thread("planner", permissions={"allow": ["tool_call:search_*"], "name": "research only",
                                                      "escalations": {"tool_call:refund*": "critical"}})
    child = parent.child_thread("researcher", permissions=["tool_call:*"])
    allowed = child.permit("agent:researcher", "tool_call", "search_web")
    assert allowed["allowed"] is True and "lineage" not in allowed, allowed
    denied = child.permit("agent:researcher", "tool_call", "refund_order")
    assert denied["allowed"] is False, denied
    assert denied["lineage"]["thread_id"] == parent.id and denied["lineage"]["depth"] == 0, denied
    assert denied["lineage"]["rule"] == "research only" and denied["escalation"] == "critical", denied
    control.flush()
    decisions = [attrs(r) for r in rows(control.query(kind="permission", thread_id=child.id))]
    escalations = [d for d in decisions if d.get("mission.permission.escalation")]
    assert [d["mission.permission.narrowed_by"] for d in escalations] == [parent.id], decisions
    for bad, match in ((["tool_call:\x07"], "control"), ({"allow": [], "oops": 1}, "unknown key"),
                       ({"severity": "loud"}, "severity"), (42, "list of allow patterns")):
        with pytest.raises((ValueError, TypeError), match=match):
            control.thread("x", permissions=bad)
    child.end()
    parent.end()


def test_a_python_remedy_runs_through_the_guard_and_its_outcome_goes_into_the_run(tmp_path):
    """`reset_connection` calls a Python remedy with the request; what it returns (or raises)
    is the run's outcome."""
    path = tmp_path / "flaky.toml"
    path.write_text(
        '[[directive]]\nname = "flaky"\nwhen = "2 failures in a row"\n'
        'where = { kind = "tool_call" }\ngroup_by = ["operation"]\n'
        'then = [{ action = "reset_connection", name = "reset-pool" }]\n'
    )
    c = mc.init(store=tmp_path / "store", service="rem", tenant="acme", directives=[path], models=False)
    try:
        asked = []

        def reset(request):
            asked.append(request)
            if request["target"] == "broken":
                raise RuntimeError("the pool is gone")
            return None

        c.register_remedy("reset-pool", reset)
        with pytest.raises(TypeError):
            c.register_remedy("x", 3)
        for tool in ("search", "broken"):
            with c.thread(agent="support-bot") as thread:
                for _ in range(2):
                    with thread.tool_call(tool) as call:
                        call.set_error("upstream returned 503")
        c.flush()
        deadline = time.monotonic() + 30
        while True:
            runs = c.directive_runs(directive="flaky")
            if len(runs) == 2 and all(r["outcome"] != "running" for r in runs):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.02)
        by_target = {r["actions"][0]["target"]: r for r in runs}
        assert by_target["search"]["outcome"] == "ok", by_target
        assert by_target["broken"]["outcome"] == "failed"
        assert "the pool is gone" in by_target["broken"]["actions"][0]["detail"], by_target
        assert {a["target"] for a in asked} == {"search", "broken"}
        assert all(a["action"] == "reset_connection" and a["tenant"] == "acme" for a in asked)
    finally:
        c.shutdown()
