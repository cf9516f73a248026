"""The MCP server (`mission-ctl mcp --store DIR`, stdio) driven by the official Python MCP client."""

import asyncio
import os
import pathlib
import subprocess

import mcp
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ctl_binary():
    exe = os.environ.get("MISSION_CTL")
    if exe:
        return exe
    subprocess.run(["cargo", "build", "-q", "-p", "mission-ctl"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "mission-ctl")


def run(store_dir, scenario):
    params = mcp.StdioServerParameters(command=ctl_binary(), args=["mcp", "--store", str(store_dir)])

    async def main():
        async with mcp.Client(params) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_tools_are_listed_with_schemas(store):
    directory, _ = store

    async def scenario(client):
        return await client.list_tools()

    tools = {t.name: t for t in run(directory, scenario).tools}
    assert {"list_threads", "get_thread", "operation_stats", "search_events", "health"} <= set(tools)
    assert "thread_id" in tools["get_thread"].input_schema["properties"]
    assert tools["list_threads"].output_schema is not None


def test_list_threads_paginates_and_matches_what_was_recorded(store):
    directory, expected = store

    async def scenario(client):
        pages = []
        cursor = None
        while True:
            args = {"limit": 150}
            if cursor:
                args["cursor"] = cursor
            result = await client.call_tool("list_threads", args)
            assert not result.is_error
            pages.append(result.structured_content)
            cursor = result.structured_content.get("next_cursor")
            if not cursor:
                return pages

    pages = run(directory, scenario)
    rows = [row for page in pages for row in page["rows"]]
    assert len(pages) == 3, "400 threads at 150 a page"
    assert pages[0]["total"] == 400
    assert {r["thread_id"] for r in rows} == set(expected["threads"])
    for r in rows:
        want = expected["threads"][r["thread_id"]]
        assert (r["spans"], r["errors"], r["agent"]) == (want["spans"], want["errors"], want["agent"])


def test_get_thread_stats_search_and_health(store):
    directory, expected = store
    some_failed = next(t for t, v in expected["threads"].items() if v["errors"] > 0)

    async def scenario(client):
        thread = await client.call_tool("get_thread", {"thread_id": some_failed})
        failed = await client.call_tool("list_threads", {"status": "error", "limit": 200})
        stats = await client.call_tool("operation_stats", {"since_minutes": 180, "group_by": ["operation"]})
        search = await client.call_tool("search_events", {"kind": "log", "text": "retrying", "limit": 200})
        health = await client.call_tool("health", {})
        return thread, failed, stats, search, health

    thread, failed, stats, search, health = run(directory, scenario)
    root = thread.structured_content["spans"][0]
    assert root["depth"] == 0 and root["name"] == "handle_request" and root["status"] == "error"
    assert thread.structured_content["spans_total"] == expected["threads"][some_failed]["spans"]
    assert thread.content and thread.content[0].text, "a text rendering for the model too"
    assert failed.structured_content["total"] == sum(1 for v in expected["threads"].values() if v["errors"] > 0)
    spans = sum(row["count"] for row in stats.structured_content["rows"])
    assert spans == expected["agent_steps"] + expected["llm_calls"] + expected["tool_calls"] + expected["retrievals"]
    assert search.structured_content["total"] == expected["logs"]
    assert health.structured_content["agent"] is None, "a store on disk, no agent"
    assert health.structured_content["store"]["events"] == expected["events"]
    assert health.structured_content["store"]["leftovers"] == 0


def test_bad_arguments_are_mcp_errors_not_crashes(store):
    directory, _ = store

    async def scenario(client):
        out = []
        for name, args in [
            ("get_thread", {"thread_id": "not-a-thread"}),
            ("list_threads", {"limit": 100000}),
            ("list_threads", {"cursor": "garbage"}),
            ("list_threads", {"status": "sideways"}),
        ]:
            try:
                result = await client.call_tool(name, args)
                out.append(("result", result.is_error, str(result.content)))
            except Exception as e:  # an MCP error response
                out.append(("error", True, str(e)))
        # The server is still alive afterwards.
        alive = await client.call_tool("health", {})
        return out, alive

    out, alive = run(directory, scenario)
    messages = [m for _, is_error, m in out if is_error]
    assert len(messages) == 4, out
    assert "thread_id" in messages[0]
    assert "limit must be between 1 and 200" in messages[1]
    assert "cursor" in messages[2]
    assert "status" in messages[3]
    assert not alive.is_error


def test_legacy_subscribers_hear_when_the_store_changes(tmp_path):
    """A 2025-era client (`resources/subscribe`) over stdio: the server polls the store on disk and
    notifies when new files land."""
    import warnings

    exe = os.environ.get("MISSION_STORE_FIXTURE")
    write = [exe] if exe else ["cargo", "run", "-q", "-p", "mission-examples", "--example", "store_fixture", "--"]
    subprocess.run([*write, str(tmp_path), "5"], cwd=ROOT, check=True, capture_output=True)
    params = mcp.StdioServerParameters(command=ctl_binary(), args=["mcp", "--store", str(tmp_path)])
    updates = []

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(message.params.uri)

    async def main():
        async with mcp.Client(params, mode="legacy", message_handler=on_message) as client:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the legacy API is what this test exercises
                await client.subscribe_resource("mission://health")
                with pytest.raises(Exception):
                    await client.subscribe_resource("mission://elsewhere")
            await asyncio.sleep(1.5)
            quiet = list(updates)
            subprocess.run([*write, str(tmp_path), "3"], cwd=ROOT, check=True, capture_output=True)
            for _ in range(100):
                if updates:
                    break
                await asyncio.sleep(0.1)
            return quiet, list(updates)

    quiet, heard = asyncio.run(main())
    assert quiet == [], "no change, no notification"
    assert heard and heard[0] == "mission://health"


def test_list_threads_and_cost_report_say_when_files_were_skipped(store, tmp_path):
    import shutil

    directory, _ = store
    damaged = tmp_path / "damaged"
    shutil.copytree(directory, damaged)
    files = sorted((damaged / "events").rglob("*.parquet"))
    files[0].write_bytes(files[0].read_bytes()[: len(files[0].read_bytes()) // 2])
    (files[0].parent / "part-garbage.parquet").write_bytes(b"not parquet")

    async def scenario(client):
        threads = await client.call_tool("list_threads", {"limit": 5})
        cost = await client.call_tool("cost_report", {"since_minutes": 100000})
        thread_id = threads.structured_content["rows"][0]["thread_id"]
        thread = await client.call_tool("get_thread", {"thread_id": thread_id})
        return threads, cost, thread

    for result in run(damaged, scenario):
        assert not result.is_error
        unreadable = result.structured_content["unreadable"]
        assert len(unreadable) == 2, unreadable
        assert any("part-garbage.parquet" in u for u in unreadable)
        text = result.content[0].text
        assert text.startswith("WARNING: incomplete answer, 2 unreadable file(s)"), text

    async def intact(client):
        return await client.call_tool("list_threads", {"limit": 5})

    result = run(directory, intact)
    assert "unreadable" not in result.structured_content
    assert "WARNING" not in result.content[0].text
