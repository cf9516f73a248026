"""Tenant isolation from outside the process, as issue 15 reproduced the leaks: the official MCP
client over HTTP with tenant tokens against `examples/mcp_agent`, and `mission-ctl --tenant`
over the store it wrote. A tenant-0 agent continues a thread id tenant-1 used first; tenant-0's
principals must never receive tenant-1's part of it, nor tenant-1's session, and tenant-1's
session must survive whatever tenant-0's token does, and tenant-1's watch of that thread hears
nothing of tenant-0's changes. (The Rust suites cover every surface: every tool, resource, prompt,
change notification and dashboard route in `mission-sdk/tests/tenant_isolation.rs`, every
`mission-ctl` subcommand with `--tenant` in `mission-ctl/tests/tenant_isolation.rs`.)"""

import asyncio
import json
import os
import pathlib
import subprocess

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN = "iso-admin-token-0123456789"
T0 = "iso-tenant0-viewer-0123456789"
T1 = "iso-tenant1-viewer-0123456789"
T0_ADMIN = "iso-tenant0-admin-0123456789"


def binary(env, args, path):
    exe = os.environ.get(env)
    if exe:
        return exe
    subprocess.run(["cargo", "build", "-q", *args], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / path)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """(process, its JSON line, store, a tenant-1 thread id that tenant-0 continued)."""
    store = tmp_path_factory.mktemp("iso-store")
    exe = binary("MISSION_MCP_AGENT", ["-p", "mission-examples", "--features", "mcp", "--example", "mcp_agent"],
                 "examples/mcp_agent")
    proc = subprocess.Popen(
        [exe, str(store), "--threads", "40", "--token", ADMIN, "--tenant-token", f"{T0}:tenant-0",
         "--tenant-token", f"{T1}:tenant-1", "--role-token", f"{T0_ADMIN}:admin:tenant-0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    info = json.loads(proc.stdout.readline())

    async def tenant1_thread(client):
        page = (await client.call_tool("list_threads", {"limit": 200})).structured_content
        return next(t["thread_id"] for t in page["rows"] if t["tenant"] == "tenant-1")

    shared = run(info["url"], ADMIN, tenant1_thread)
    proc.stdin.write(f"record {shared}\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ok"
    yield proc, info, store, shared
    proc.stdin.close()
    proc.wait(timeout=60)


def run(url, token, scenario):
    async def main():
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            async with mcp.Client(streamable_http_client(url, http_client=http)) as client:
                return await scenario(client)

    return asyncio.run(main())


def test_a_thread_continued_across_tenants_shows_each_viewer_its_own_half(agent):
    _, info, _, shared = agent

    async def scenario(client):
        thread = await client.call_tool("get_thread", {"thread_id": shared})
        resource = await client.read_resource(f"mission://threads/{shared}")
        prompt = await client.get_prompt("diagnose_thread", {"thread_id": shared})
        return thread, resource, prompt

    thread, resource, prompt = run(info["url"], T0, scenario)
    names = {s["name"] for s in thread.structured_content["spans"]}
    # tenant-0's agent run and step only: none of tenant-1's spans
    assert names == {"invoke_agent", "follow-up"}, names
    texts = [str(thread.content), str(resource.contents), str(prompt.messages)]
    for text in texts:
        assert "handle_request" not in text and "tenant-1" not in text, text[:2000]

    thread1, _, _ = run(info["url"], T1, scenario)
    names1 = {s["name"] for s in thread1.structured_content["spans"]}
    assert "handle_request" in names1 and "follow-up" not in names1, names1


def test_another_tenants_token_cannot_end_or_use_a_session(agent):
    _, info, _, _ = agent
    url = info["url"]

    # Open a tenant-1 session by hand, the way any client does, and keep its id.
    headers = {"Authorization": f"Bearer {T1}", "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "iso", "version": "0"}}}
    opened = httpx2.post(url, json=init, headers=headers, timeout=60)
    session = opened.headers["mcp-session-id"]
    mine = {**headers, "Mcp-Session-Id": session}
    done = httpx2.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=mine)
    assert done.status_code < 300
    for token in [T0, T0_ADMIN]:
        intruder = {"Authorization": f"Bearer {token}", "Mcp-Session-Id": session,
                    "Accept": "application/json, text/event-stream"}
        assert httpx2.delete(url, headers=intruder, timeout=60).status_code == 404
        used = httpx2.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=intruder)
        assert used.status_code == 404
    alive = httpx2.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=mine, timeout=60)
    assert alive.status_code == 200 and "list_threads" in alive.text
    assert httpx2.delete(url, headers=mine, timeout=60).status_code < 300


def test_health_shows_a_tenant_only_its_own_numbers(agent):
    _, info, store, _ = agent

    async def scenario(client):
        return await client.call_tool("health", {}), await client.read_resource("mission://health")

    tool, resource = run(info["url"], T0, scenario)
    for text in [json.dumps(tool.structured_content), str(tool.content), str(resource.contents)]:
        assert str(store) not in text and "accounting" not in text and "last_error" not in text, text
    assert tool.structured_content["agent"]["tenant"] == "tenant-0"


def ctl(*args):
    exe = binary("MISSION_CTL", ["-p", "mission-ctl", "--bin", "mission-ctl"], "mission-ctl")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def test_mission_ctl_with_tenant_reads_only_that_tenant(agent):
    proc, info, store, shared = agent

    async def flush(client):  # the server flushes the agent before it reads
        await client.call_tool("list_threads", {"limit": 1})

    run(info["url"], ADMIN, flush)
    runs = [
        ctl("thread", str(store), shared, "--tenant", "tenant-0", "--json"),
        ctl("threads", str(store), "--tenant", "tenant-0", "--json"),
        ctl("query", str(store), "--tenant", "tenant-0", "--format", "json"),
        ctl("stats", str(store), "--tenant", "tenant-0", "--since", "7d", "--group-by", "tenant,agent", "--json"),
        ctl("cost", str(store), "--tenant", "tenant-0", "--since", "7d", "--group-by", "tenant,user", "--json"),
        ctl("report", str(store), "--tenant", "tenant-0", "--since", "7d", "--json"),
    ]
    for r in runs:
        assert r.returncode == 0, (r.args, r.stderr)
        assert "tenant-1" not in r.stdout, (r.args, r.stdout[:2000])
    thread = json.loads(runs[0].stdout)
    assert {n["name"] for n in thread["roots"]} == {"invoke_agent"}, runs[0].stdout
    assert "follow-up" in runs[0].stdout and "handle_request" not in runs[0].stdout
    everyone = ctl("thread", str(store), shared, "--json")
    assert "handle_request" in everyone.stdout, "without --tenant the whole thread shows"


def test_a_watch_hears_only_its_own_tenants_changes(agent):
    """tenant-1's viewer watches its thread that tenant-0 continued, and health. tenant-0
    records into that thread, then tenant-1 fails a tool call in a thread of its own: the first
    thing the watch hears is health (tenant-1's change). A watch handles its events in recording
    order, and it lists the thread first, so had tenant-0's change reached it, the thread's
    notification would have come first."""
    proc, info, _, shared = agent
    uris = [f"mission://threads/{shared}", "mission://health"]

    def command(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok", line

    async def scenario(client):
        async with client.listen(resource_subscriptions=uris) as sub:
            assert sorted(sub.honored.resource_subscriptions) == sorted(uris)
            command(f"record {shared}")
            command("fail tenant-1 web_search 1")
            event = await asyncio.wait_for(sub.__anext__(), timeout=120)
            return event.uri

    assert run(info["url"], T1, scenario) == "mission://health"
