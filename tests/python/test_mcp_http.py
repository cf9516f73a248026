"""The MCP server served over streamable HTTP from inside a running agent (`control.serve_mcp`),
driven by the official Python MCP client: tokens, tenant scoping, every tool, resources with live
change notifications, prompts, size-bounded pages, and the server's own calls recorded as events."""

import asyncio
import json
import os
import pathlib
import subprocess
import time

import duckdb
import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN = "admin-token-0123456789"
ACME = "acme-token-0123456789"  # a viewer of tenant-1 only
OPERATOR = "operator-token-0123456789"  # an operator of every tenant
ACME_ADMIN = "acme-admin-token-0123456789"  # an admin of tenant-1 only
SIMULATED = {"support-bot", "research-agent", "billing-assistant"}


def agent_binary():
    exe = os.environ.get("MISSION_MCP_AGENT")
    if exe:
        return exe
    subprocess.run(["cargo", "build", "-q", "-p", "mission-examples", "--features", "mcp", "--example", "mcp_agent"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "examples" / "mcp_agent")


def start_agent(store, threads):
    """(process, what it printed): an agent recording `threads` simulated threads into `store`
    and serving MCP with the four tokens above."""
    proc = subprocess.Popen(
        [agent_binary(), str(store), "--threads", str(threads), "--token", ADMIN, "--tenant-token", f"{ACME}:tenant-1",
         "--role-token", f"{OPERATOR}:operator", "--role-token", f"{ACME_ADMIN}:admin:tenant-1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    info = json.loads(proc.stdout.readline())
    info["store"] = str(store)
    return proc, info


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    proc, info = start_agent(tmp_path_factory.mktemp("agent-store"), 200)
    yield proc, info
    proc.stdin.close()
    proc.wait(timeout=30)


def run(url, token, scenario):
    async def main():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with mcp.Client(streamable_http_client(url, http_client=http)) as client:
                return await scenario(client)

    return asyncio.run(main())


async def all_rows(client, tool, args):
    """Every row of a paginated tool, following next_cursor; also the pages."""
    pages, cursor = [], None
    while True:
        result = await client.call_tool(tool, {**args, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, result.content
        pages.append(result.structured_content)
        cursor = result.structured_content.get("next_cursor")
        if not cursor:
            return [r for p in pages for r in p["rows"]], pages


def test_requests_without_or_with_a_wrong_token_are_refused(agent):
    _, info = agent
    url = info["url"]
    for headers in [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": ADMIN}]:
        response = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        assert response.status_code == 401, (headers, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def scenario(client):
        return await client.list_tools()

    with pytest.raises(Exception):
        run(url, "wrong-token-0123456789", scenario)


def test_every_tool_answers_over_http(agent):
    _, info = agent

    async def scenario(client):
        tools = {t.name for t in (await client.list_tools()).tools}
        threads, _ = await all_rows(client, "list_threads", {"limit": 200})
        some = next(t for t in threads if t["agent"] in SIMULATED and t["errors"] > 0)
        thread = await client.call_tool("get_thread", {"thread_id": some["thread_id"]})
        stats = await client.call_tool("operation_stats", {"since_minutes": 180, "group_by": ["operation", "model"]})
        cost = await client.call_tool("cost_report", {"since_minutes": 24 * 60, "group_by": ["model"]})
        cost_by_user = await client.call_tool("cost_report", {"since_minutes": 24 * 60, "group_by": ["tenant", "user"]})
        health = await client.call_tool("health", {})
        return tools, threads, some, thread, stats, cost, cost_by_user, health

    tools, threads, some, thread, stats, cost, cost_by_user, health = run(info["url"], ADMIN, scenario)
    assert {"list_threads", "get_thread", "search_events", "operation_stats", "cost_report", "health"} <= tools
    assert len([t for t in threads if t["agent"] in SIMULATED]) == 200

    page = thread.structured_content
    assert page["thread_id"] == some["thread_id"]
    assert page["spans_total"] == some["spans"] and page["errors"] == some["errors"]
    assert page["spans"][0]["depth"] == 0 and page["spans"][0]["name"] == "handle_request"
    assert all(s["depth"] >= 1 for s in page["spans"][1:])
    assert some["thread_id"] in thread.content[0].text

    chat = [r for r in stats.structured_content["rows"] if r["group"][0] == "chat"]
    assert sum(r["count"] for r in chat) == info["llm_calls"]
    assert all(r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"] for r in chat)

    rows = cost.structured_content["rows"]
    assert sum(r["llm_calls"] for r in rows) == info["llm_calls"]
    assert sum(r["input_tokens"] for r in rows) == info["input_tokens"]
    # Each row's cost is rounded to 6 significant digits (a relative error of at most 5e-7).
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(info["cost_usd"], rel=1e-6)
    assert [r["cost_usd"] for r in rows] == sorted((r["cost_usd"] for r in rows), reverse=True)
    by_user = cost_by_user.structured_content["rows"]
    assert sum(r["llm_calls"] for r in by_user) == info["llm_calls"]
    assert all(r["group"][1].startswith("u-") for r in by_user), "every simulated thread has a user"
    assert "total $" in cost.content[0].text

    h = health.structured_content
    assert h["agent"]["recorder"]["accounting"]["dropped"] == 0
    assert h["agent"]["recorder"]["pipeline_running"] is True
    assert h["store"]["events"] >= info["events"]


def test_a_tenant_token_sees_its_tenant_only(agent):
    _, info = agent

    async def admin(client):
        rows, _ = await all_rows(client, "list_threads", {"limit": 200})
        return rows

    async def acme(client):
        rows, _ = await all_rows(client, "list_threads", {"limit": 200})
        cost = await client.call_tool("cost_report", {"group_by": ["tenant"]})
        other = next(t for t in everything if t["tenant"] != "tenant-1")
        result = await client.call_tool("get_thread", {"thread_id": other["thread_id"]})
        foreign = ("result", result.is_error, str(result.content))
        return rows, cost, foreign

    everything = run(info["url"], ADMIN, admin)
    rows, cost, foreign = run(info["url"], ACME, acme)
    # The server's own calls are recorded under the agent's tenant (tenant-0).
    mine = [t for t in everything if t["tenant"] == "tenant-1"]
    assert 0 < len(mine) < len(everything)
    assert {t["thread_id"] for t in rows} == {t["thread_id"] for t in mine}
    assert [r["group"] for r in cost.structured_content["rows"]] == [["tenant-1"]]
    assert foreign[1] and "no thread" in foreign[2], foreign


def test_huge_results_are_truncated_with_a_marker_and_a_cursor(agent):
    _, info = agent

    async def scenario(client):
        return await all_rows(client, "search_events", {"thread_id": info["bulky_thread"], "text": "bulk record", "limit": 200})

    rows, pages = run(info["url"], ADMIN, scenario)
    assert pages[0]["truncated"] is True and pages[0]["next_cursor"]
    assert len(pages[0]["rows"]) < 200, "the size bound cut the page before the row limit"
    assert all(len(json.dumps(p["rows"])) <= 70_000 for p in pages)
    messages = [r["log_message"] for r in rows]
    assert len(messages) == info["bulky_logs"] == len(set(messages)), "every record exactly once"
    assert pages[0]["total"] == info["bulky_logs"]


def test_resources_prompts_and_live_notifications(agent):
    proc, info = agent

    async def scenario(client):
        listed = await client.list_resources()
        templates = await client.list_resource_templates()
        health = await client.read_resource("mission://health")
        threads, _ = await all_rows(client, "list_threads", {"limit": 200, "agent": "support-bot"})
        target = threads[0]["thread_id"]
        thread = await client.read_resource(f"mission://threads/{target}")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        diagnose = await client.get_prompt("diagnose_thread", {"thread_id": target})
        slow = await client.get_prompt("why_slow", {"operation": "chat", "since_minutes": "180"})
        uri = f"mission://threads/{target}"
        async with client.listen(resource_subscriptions=[uri]) as sub:
            assert list(sub.honored.resource_subscriptions) == [uri]
            # The agent records into that thread; the subscriber hears of it. A generous deadline
            # for a loaded machine: how fast it arrives is a benchmark's question, not this test's.
            proc.stdin.write(f"record {target}\n")
            proc.stdin.flush()
            event = await asyncio.wait_for(sub.__anext__(), timeout=120)
        return listed, templates, health, target, thread, prompts, diagnose, slow, event

    listed, templates, health, target, thread, prompts, diagnose, slow, event = run(info["url"], ADMIN, scenario)
    assert proc.stdout.readline().strip() == "ok"
    uris = [r.uri for r in listed.resources]
    assert "mission://health" in uris and any(u.startswith("mission://threads/") for u in uris)
    assert templates.resource_templates[0].uri_template == "mission://threads/{thread_id}"
    assert json.loads(health.contents[0].text)["agent"]["recorder"]["pipeline_running"] is True
    view = json.loads(thread.contents[0].text)
    assert view["thread_id"] == target and view["roots"][0]["name"] == "handle_request"

    assert prompts == {"diagnose_thread", "why_slow"}
    text = diagnose.messages[0].content.text
    assert target in text and "handle_request" in text and "root cause" in text
    assert "chat" in slow.messages[0].content.text and "Slowest spans" in slow.messages[0].content.text

    assert event.uri == f"mission://threads/{target}"


def test_bad_input_gets_clear_errors_over_http(agent):
    _, info = agent

    async def scenario(client):
        out = []
        # A tool's bad input is a tool result with isError (never a JSON-RPC error) ...
        for name, args in [
            ("get_thread", {"thread_id": "xyz"}),
            ("search_events", {"level": "loud"}),
            ("cost_report", {"since_minutes": 0}),
        ]:
            result = await client.call_tool(name, args)
            out.append(str(result.content) if result.is_error else None)
        # ... while resources and prompts answer bad input with MCP errors.
        for call in [
            lambda: client.read_resource("mission://nothing"),
            lambda: client.get_prompt("why_slow", {"operation": "no-such-operation"}),
        ]:
            try:
                await call()
                out.append(None)
            except Exception as e:
                out.append(str(e))
        alive = await client.call_tool("health", {})
        return out, alive

    out, alive = run(info["url"], ADMIN, scenario)
    assert all(out), out
    assert "thread_id" in out[0] and "level" in out[1] and "since_minutes" in out[2]
    assert "mission://nothing" in out[3] and "no-such-operation" in out[4]
    assert not alive.is_error


def test_the_servers_own_calls_are_recorded(agent):
    _, info = agent

    async def scenario(client):
        await client.call_tool("list_threads", {"limit": 1})
        await asyncio.sleep(1.2)  # the server flushes the agent's pipeline at most once a second
        return await all_rows(client, "search_events", {"kind": "custom", "agent": "mission-mcp", "limit": 200})

    rows, _ = run(info["url"], ADMIN, scenario)
    names = {r["name"] for r in rows}
    assert "tools/call list_threads" in names, names
    assert all(r["gen_ai_agent_name"] == "mission-mcp" for r in rows)
    # The spans carry the MCP semantic-convention attributes (read with DuckDB, as a user would).
    con = duckdb.connect()
    found = con.execute(f"""
        SELECT attributes['mcp.method.name'], attributes['mcp.session.id'], attributes['gen_ai.tool.name']
        FROM read_parquet('{info["store"]}/**/*.parquet', hive_partitioning = true)
        WHERE gen_ai_agent_name = 'mission-mcp' AND name = 'tools/call list_threads'
    """).fetchall()
    assert found and all(m == "tools/call" and s and t == "list_threads" for m, s, t in found), found


async def attempt(client, tool, args):
    """(is_error, text) of a tool call, whether refused as a result or as an MCP error."""
    try:
        result = await client.call_tool(tool, args)
        return result.is_error, str(result.content), result
    except Exception as e:  # an MCP error response
        return True, str(e), None


NEW_DIRECTIVE = """
[[directive]]
name = "mcp-added"
when = "error_rate > 50% over 5m"
where = { kind = "tool_call" }
"""


def test_directives_are_listed_and_changed_only_with_the_right_role(agent):
    _, info = agent

    async def viewer(client):
        listed = await client.call_tool("list_directives", {})
        toggle = await attempt(client, "set_directive_enabled", {"name": "tool-failing", "enabled": False})
        add = await attempt(client, "add_directive", {"toml": NEW_DIRECTIVE})
        return listed, toggle, add

    async def scoped_admin(client):
        return await attempt(client, "remove_directive", {"name": "tool-failing"})

    async def operator(client):
        names = [d["name"] for d in (await client.call_tool("list_directives", {})).structured_content["directives"]]
        assert "tool-error-rate" in names, names
        toggle = await attempt(client, "set_directive_enabled", {"name": "tool-error-rate", "enabled": False})
        add = await attempt(client, "add_directive", {"toml": NEW_DIRECTIVE})
        after = (await client.call_tool("list_directives", {})).structured_content["directives"]
        return names, toggle, add, after

    async def admin(client):
        bad = await attempt(client, "add_directive", {"toml": "[[directive]]\nname = \"x\"\nwhen = \"p97(duration) > 1s over 5m\"\n"})
        add = await attempt(client, "add_directive", {"toml": NEW_DIRECTIVE})
        listed = (await client.call_tool("list_directives", {})).structured_content["directives"]
        removed = await attempt(client, "remove_directive", {"name": "mcp-added"})
        return bad, add, listed, removed

    listed, toggle, add = run(info["url"], ACME, viewer)
    assert listed.structured_content["directives"], "the preset's directives are listed"
    assert toggle[0] and "operator" in toggle[1], toggle[:2]
    assert add[0] and "admin" in add[1], add[:2]

    removed = run(info["url"], ACME_ADMIN, scoped_admin)
    assert removed[0] and "every tenant" in removed[1], removed[:2]

    names, toggle, add, after = run(info["url"], OPERATOR, operator)
    assert not toggle[0], toggle[:2]
    assert next(d for d in after if d["name"] == "tool-error-rate")["enabled"] is False
    assert add[0] and "admin" in add[1], "an operator may not add directives"

    bad, add, listed, removed = run(info["url"], ADMIN, admin)
    assert bad[0] and "p97" in bad[1], bad[:2]
    assert not add[0], add[:2]
    assert add[2].structured_content["audit_seq"] >= 1, "the change is in the audit trail"
    assert "mcp-added" in [d["name"] for d in listed]
    assert not removed[0], removed[:2]

    # The audit trail records the changes, and mission-ctl says the chain is intact.
    ctl = os.environ.get("MISSION_CTL") or str(ROOT / "target" / "debug" / "mission-ctl")
    out = subprocess.run([ctl, "audit", "verify", info["store"], "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True and report["records"] >= 3, report


ACK_DIRECTIVE = """
[[directive]]
name = "ack-test"
when = "2 failures in a row"
where = { kind = "tool_call", agent = "flaky-bot" }
group_by = ["tenant", "operation"]
"""


def test_alerts_are_acknowledged_by_operators_within_their_tenant(agent):
    proc, info = agent

    def command(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok", line

    async def add(client):
        return await attempt(client, "add_directive", {"toml": ACK_DIRECTIVE})

    added = run(info["url"], ADMIN, add)
    assert not added[0], added[:2]
    command("fail tenant-1 ack-probe 2")
    command("fail tenant-0 ack-probe 2")

    def firing(directives):
        return {f["tenant"]: f for d in directives if d["name"] == "ack-test" for f in d["firing"]}

    async def viewer(client):
        listed = (await client.call_tool("list_directives", {})).structured_content["directives"]
        keys = {t: f["dedup_key"] for t, f in firing(listed).items()}
        ack = await attempt(client, "acknowledge_alert", {"incident": keys["tenant-1"]})
        return keys, ack

    keys, refused = run(info["url"], ACME, viewer)
    assert set(keys) == {"tenant-1"}, "a tenant's token sees its own tenant's incidents only"
    assert refused[0] and "operator" in refused[1], refused[:2]

    async def everyone(client):
        listed = (await client.call_tool("list_directives", {})).structured_content["directives"]
        return {t: f["dedup_key"] for t, f in firing(listed).items()}

    keys = run(info["url"], ADMIN, everyone)
    assert set(keys) == {"tenant-0", "tenant-1"}, keys

    async def scoped(client):
        foreign = await attempt(client, "acknowledge_alert", {"incident": keys["tenant-0"]})
        own = await attempt(client, "acknowledge_alert", {"incident": keys["tenant-1"], "note": "on it"})
        return foreign, own

    foreign, own = run(info["url"], ACME_ADMIN, scoped)
    assert foreign[0] and "no firing incident" in foreign[1], foreign[:2]
    assert not own[0], own[:2]
    assert own[2].structured_content["dedup_keys"] == [keys["tenant-1"]]
    assert own[2].structured_content["by"] == "mcp:admin@tenant-1"
    assert own[2].structured_content["audit_seq"] >= 1, "the acknowledgement is in the audit trail"

    async def operator(client):
        ack = await attempt(client, "acknowledge_alert", {"incident": "ack-test", "note": "all of it"})
        listed = (await client.call_tool("list_directives", {})).structured_content["directives"]
        await asyncio.sleep(1.2)  # the server flushes the agent's pipeline at most once a second
        search = await client.call_tool("search_events", {"kind": "log", "text": "acknowledged by", "limit": 50})
        return ack, listed, search

    ack, listed, search = run(info["url"], OPERATOR, operator)
    assert not ack[0], ack[:2]
    assert ack[2].structured_content["dedup_keys"] == [keys["tenant-0"]], "tenant-1's was acknowledged already"
    acknowledged = {t: f["acknowledged"]["by"] for t, f in firing(listed).items()}
    assert acknowledged == {"tenant-0": "mcp:operator", "tenant-1": "mcp:admin@tenant-1"}, acknowledged
    assert search.structured_content["total"] >= 2, "the acknowledgements are recorded as alert events"

    async def remove(client):
        return await attempt(client, "remove_directive", {"name": "ack-test"})

    assert not run(info["url"], ADMIN, remove)[0]
    ctl = os.environ.get("MISSION_CTL") or str(ROOT / "target" / "debug" / "mission-ctl")
    out = subprocess.run([ctl, "audit", "verify", info["store"], "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True, out.stdout + out.stderr


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def server_spans(store, thread_id):
    """(name, parent span id as W3C hex) of the MCP server's spans in one thread, read with
    DuckDB (the store keeps span ids as unsigned 64-bit integers)."""
    rows = duckdb.connect().execute(f"""
        SELECT name, parent_span_id FROM read_parquet('{store}/**/*.parquet', hive_partitioning = true)
        WHERE gen_ai_agent_name = 'mission-mcp' AND thread_id = '{thread_id}'
    """).fetchall()
    return [(name, f"{parent:016x}" if parent is not None else None) for name, parent in rows]


async def until_recorded(client, thread_id, name):
    """Polls search_events (the server flushes the agent at most once a second) until the
    server's span `name` shows in `thread_id`, for at most 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = await client.call_tool(
            "search_events", {"kind": "custom", "agent": "mission-mcp", "thread_id": thread_id, "limit": 200})
        if any(r["name"] == name for r in result.structured_content["rows"]):
            return True
        await asyncio.sleep(0.2)
    return False


def test_the_server_continues_a_callers_trace_from_meta_and_from_headers(agent):
    """SEP-414: `_meta.traceparent` of a request, or the `traceparent` HTTP header, puts the
    server's span for it in the caller's trace, under the caller's span."""
    _, info = agent
    by_meta, by_header, other = "00f067aa0ba902b7", "b7ad6b7169203331", "e457b5a2e4d86bd1"

    async def meta(client):
        result = await client.call_tool(
            "list_threads", {"limit": 1}, meta={"traceparent": f"00-{CALLER_TRACE}-{by_meta}-01"})
        assert not result.is_error
        # A malformed traceparent is ignored: the call is answered and recorded elsewhere.
        bad = await client.call_tool("health", {}, meta={"traceparent": f"00-{'0' * 32}-{other}-01"})
        assert not bad.is_error
        return await until_recorded(client, CALLER_TRACE, "tools/call list_threads")

    assert run(info["url"], ADMIN, meta)

    async def header(client):
        await client.call_tool("cost_report", {})
        return await until_recorded(client, CALLER_TRACE, "tools/call cost_report")

    async def main():
        headers = {"Authorization": f"Bearer {ADMIN}", "traceparent": f"00-{CALLER_TRACE}-{by_header}-01"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with mcp.Client(streamable_http_client(info["url"], http_client=http)) as client:
                return await header(client)

    assert asyncio.run(main())
    spans = server_spans(info["store"], CALLER_TRACE)
    assert ("tools/call list_threads", by_meta) in spans, spans
    assert ("tools/call cost_report", by_header) in spans, spans
    assert not [s for s in spans if s[0] == "tools/call health"], "the malformed one did not join"


def test_an_agents_own_mcp_calls_are_traced_into_the_servers_spans(agent, tmp_path):
    """`mission_control.mcp_client.call_tool` around the official client's `call_tool`: the
    agent's tool span carries the MCP attributes, and the server's span for the call is in the
    agent's trace, under that tool span."""
    import mission_control as mc
    from mission_control.mcp_client import call_tool, session_digest

    _, info = agent
    control = mc.init(store=str(tmp_path / "caller"), service="planner", tenant="acme")

    async def scenario(client):
        with control.thread(agent="planner") as thread:
            ok = await call_tool(client, "list_threads", {"limit": 1}, parent=thread, session_id="s-1")
            with thread.step("plan"):  # inside an open span, the parent is that span
                failed = await call_tool(client, "get_thread", {"thread_id": "xyz"})
            found = await until_recorded(client, thread.id, "tools/call get_thread")
        with pytest.raises(ValueError):
            await call_tool(client, "health")  # no parent and no open span
        return thread.id, ok, failed, found

    thread_id, ok, failed, found = run(info["url"], ADMIN, scenario)
    assert not ok.is_error and failed.is_error and found
    control.flush()
    mine = duckdb.connect().execute(f"""
        SELECT name, span_id, status, kind, attributes['mcp.method.name'], attributes['gen_ai.tool.name'],
               attributes['mcp.session.id'], error_message
        FROM read_parquet('{tmp_path / "caller"}/**/*.parquet', hive_partitioning = true)
        WHERE thread_id = '{thread_id}' AND kind = 'tool_call' ORDER BY time
    """).fetchall()
    assert [(m[0], m[2], m[3], m[4], m[5]) for m in mine] == [
        ("list_threads", "ok", "tool_call", "tools/call", "list_threads"),
        ("get_thread", "error", "tool_call", "tools/call", "get_thread"),
    ], mine
    assert mine[0][6] == session_digest("s-1") and mine[1][6] is None
    assert "32 lowercase hex digits" in mine[1][7]
    served = dict(server_spans(info["store"], thread_id))
    assert served["tools/call list_threads"] == f"{mine[0][1]:016x}", (served, mine)
    assert served["tools/call get_thread"] == f"{mine[1][1]:016x}", (served, mine)
    control.shutdown()


def test_an_operator_pauses_and_cancels_a_running_thread_and_a_viewer_cannot(agent):
    """`live_threads` lists what runs now (a child under its parent); `control_thread` with an
    operator token pauses and cancels it — the agent's own code sees it through should_stop —
    while a viewer's attempt is an error result that changes nothing."""
    proc, info = agent
    proc.stdin.write("live\n")
    proc.stdin.flush()
    ids = json.loads(proc.stdout.readline())

    def stopped(thread_id):
        proc.stdin.write(f"stopped {thread_id}\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    async def viewer(client):
        listed = await client.call_tool("live_threads", {"parent_thread_id": ids["parent"]})
        refused = await client.call_tool("control_thread", {"thread_id": ids["child"], "command": "cancel"})
        return listed, refused

    async def operator(client):
        paused = await client.call_tool("control_thread", {"thread_id": ids["child"], "command": "pause", "reason": "a person looks"})
        return paused

    async def cancel(client):
        cancelled = await client.call_tool("control_thread", {"thread_id": ids["parent"], "command": "cancel", "reason": "runaway"})
        again = await client.call_tool("control_thread", {"thread_id": ids["parent"], "command": "resume"})
        return cancelled, again

    # The viewer is a tenant-1 token; the agent's live threads are the agent's tenant (tenant-0).
    listed, refused = run(info["url"], ACME, viewer)
    assert not listed.is_error and listed.structured_content["threads"] == [], "another tenant's threads stay hidden"
    assert refused.is_error and "operator" in str(refused.content), refused.content
    async def listing(client):
        return await client.call_tool("live_threads", {"parent_thread_id": ids["parent"]})

    listed = run(info["url"], ADMIN, listing)
    [row] = listed.structured_content["threads"]
    assert row["thread_id"] == ids["child"] and row["parent_thread_id"] == ids["parent"] and row["state"] == "running"
    assert stopped(ids["child"]) == {"should_stop": False, "state": "running"}

    # An admin of another tenant (tenant-1) cannot reach tenant-0's thread, by id or by naming
    # the tenant.
    async def intruder(client):
        return [
            await client.call_tool("control_thread", {"thread_id": ids["child"], "command": "cancel"}),
            await client.call_tool("control_thread", {"thread_id": ids["child"], "command": "cancel", "tenant": "tenant-0"}),
        ]

    for result in run(info["url"], ACME_ADMIN, intruder):
        assert result.is_error and "no running thread" in str(result.content), result.content
    assert stopped(ids["child"]) == {"should_stop": False, "state": "running"}

    paused = run(info["url"], OPERATOR, operator)
    assert not paused.is_error, paused.content
    assert paused.structured_content["state"] == "paused"
    assert stopped(ids["child"]) == {"should_stop": True, "state": "paused"}

    cancelled, again = run(info["url"], OPERATOR, cancel)
    assert cancelled.structured_content["state"] == "cancelled"
    assert again.is_error and "cancelled" in str(again.content)
    assert stopped(ids["child"])["should_stop"] is True, "a cancel reaches the children"


def test_approvals_wait_for_an_operator_and_runs_are_listed(agent):
    """A planted tool loop makes `loop-guard` propose cancelling the thread: pending until an
    operator approves (then the thread is cancelled) or rejects (it runs on); a viewer cannot
    decide, another tenant's token sees nothing; `quick-expiry`'s proposal expires on its own
    after 2 s; a run by hand shows in `list_directive_runs`."""
    proc, info = agent

    def command(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    def approvals(token, **args):
        async def scenario(client):
            result = await client.call_tool("list_approvals", args)
            assert not result.is_error, result.content
            return result.structured_content["approvals"]

        return run(info["url"], token, scenario)

    def pending_for(thread, deadline_s=20.0):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            mine = [a for a in approvals(ADMIN) if a.get("thread_id") == thread]
            if mine:
                return mine[0]
            time.sleep(0.05)
        raise AssertionError(f"no approval for {thread}")

    def decide(token, approval_id, decision, note=""):
        async def scenario(client):
            return await client.call_tool("decide_approval", {"id": approval_id, "decision": decision, "note": note})

        return run(info["url"], token, scenario)

    # Approved by an operator: the agent's own code sees the cancel.
    approved = command("loop looping-bot")["thread"]
    proposal = pending_for(approved)
    assert proposal["state"] == "pending" and proposal["actions"] == ["cancel_thread"], proposal
    assert proposal["confidence"] == 0.9 and "same arguments" in proposal["reason"], proposal
    assert command(f"stopped {approved}") == {"should_stop": False, "state": "running"}
    assert approvals(ACME) == [], "a tenant-1 token sees none of tenant-0's approvals"
    for token in (ACME, ACME_ADMIN):
        refused = decide(token, proposal["id"], "approve")
        assert refused.is_error, refused.content
    assert command(f"stopped {approved}") == {"should_stop": False, "state": "running"}
    done = decide(OPERATOR, proposal["id"], "approve", "confirmed loop")
    assert not done.is_error, done.content
    assert done.structured_content["approval"]["state"] == "approved"
    assert done.structured_content["approval"]["decided_by"] == "mcp:operator"
    assert done.structured_content["run"]["outcome"] == "approved", done.structured_content
    assert command(f"stopped {approved}") == {"should_stop": True, "state": "cancelled"}
    again = decide(OPERATOR, proposal["id"], "reject")
    assert again.is_error and "approved" in str(again.content), again.content

    # Rejected: nothing runs.
    rejected = command("loop looping-bot")["thread"]
    proposal = pending_for(rejected)
    done = decide(OPERATOR, proposal["id"], "reject", "expected retries")
    assert done.structured_content["approval"]["state"] == "rejected"
    assert command(f"stopped {rejected}") == {"should_stop": False, "state": "running"}

    # Nobody decides: it expires (judged on the agent's clock), and nothing runs.
    expiring = command("loop expiring-bot")["thread"]
    proposal = pending_for(expiring)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = {a["id"]: a["state"] for a in approvals(ADMIN, state="expired")}
        if proposal["id"] in states:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the approval did not expire")
    late = decide(OPERATOR, proposal["id"], "approve")
    assert late.is_error and "expired" in str(late.content), late.content
    assert command(f"stopped {expiring}") == {"should_stop": False, "state": "running"}

    # A run by hand (an operator) is listed with its trigger, and waits for approval too.
    async def by_hand(client):
        ran = await client.call_tool("run_directive", {"name": "loop-guard", "thread_id": expiring})
        listed = await client.call_tool("list_directive_runs", {"directive": "loop-guard"})
        return ran, listed

    ran, listed = run(info["url"], OPERATOR, by_hand)
    assert not ran.is_error, ran.content
    assert ran.structured_content["run"]["trigger"] == "manual"
    assert ran.structured_content["run"]["outcome"] == "pending_approval"
    runs = listed.structured_content["runs"]
    assert runs[0]["id"] == ran.structured_content["run"]["id"] and runs[0]["by"] == "mcp:operator"
    assert {r["outcome"] for r in runs} >= {"approved", "rejected", "pending_approval"}, runs

    async def viewer_runs(client):
        return await client.call_tool("run_directive", {"name": "loop-guard"})

    refused = run(info["url"], ACME, viewer_runs)
    assert refused.is_error and "operator" in str(refused.content), refused.content


def test_incidents_are_grouped_closed_and_found_again_by_cause(agent):
    """Two anomalies on one cause are one incident; an operator's acknowledgement carries a
    verdict; once quiet (1 s in this agent) it closes, and `similar_incidents` finds it for a
    new anomaly on the same cause — by cause, by incident and by anomaly — while another
    tenant's token finds nothing."""
    proc, info = agent

    def command(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    def call(token, tool, args):
        async def scenario(client):
            return await client.call_tool(tool, args)

        return run(info["url"], token, scenario)

    cause = "model=claude-incident-test"
    first = command(f"anomaly {cause}")["anomaly"]
    second = command(f"anomaly {cause}")["anomaly"]
    listed = call(ADMIN, "list_incidents", {"state": "open"})
    assert not listed.is_error, listed.content
    [incident] = [i for i in listed.structured_content["incidents"] if i["cause"] == cause]
    assert [m["id"] for m in incident["members"]] == [first, second], incident

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        closed = call(ADMIN, "list_incidents", {"state": "closed"}).structured_content["incidents"]
        if any(i["id"] == incident["id"] for i in closed):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the incident did not close")

    later = command(f"anomaly {cause}")["anomaly"]
    for args in ({"cause": cause}, {"anomaly_id": later}, {"incident_id": incident["id"]}):
        found = call(ADMIN, "similar_incidents", args)
        assert not found.is_error, (args, found.content)
        ids = [i["id"] for i in found.structured_content["incidents"]]
        if "incident_id" in args:
            assert incident["id"] not in ids, "an incident is not its own past"
        else:
            assert ids[0] == incident["id"] and found.structured_content["incidents"][0]["likeness"] == 1.0, found.structured_content
    other = call(ACME, "similar_incidents", {"cause": cause})
    assert not other.is_error and other.structured_content["incidents"] == [], "tenant-1 sees none of tenant-0's incidents"
    theirs = call(ACME, "list_incidents", {}).structured_content["incidents"]
    assert all(i["tenant"] == "tenant-1" and i["cause"] != cause for i in theirs), theirs
    bad = call(ADMIN, "similar_incidents", {})
    assert bad.is_error and "exactly one" in str(bad.content)
    bad = call(OPERATOR, "acknowledge_alert", {"incident": "tool-failing", "verdict": "maybe"})
    assert bad.is_error and "true_positive or false_positive" in str(bad.content), bad.content
