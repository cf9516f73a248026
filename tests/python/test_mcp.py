"""The MCP server (`mission-ctl mcp --store DIR`, stdio) driven by the official Python MCP client."""

import asyncio
import json
import os
import pathlib
import re
import subprocess

import mcp
import pytest

from conftest import ctl_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# Tools that work only inside a running agent: a server over a store on disk does not list them.
AGENT_ONLY = {"list_directives", "set_directive_enabled", "add_directive", "remove_directive",
              "acknowledge_alert", "get_policy", "set_policy", "erase_subject", "explain_permission"}


def all_keys(value):
    """Every key of a JSON value, recursively."""
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in [key, *all_keys(v)]]
    if isinstance(value, list):
        return [k for v in value for k in all_keys(v)]
    return []


def significant_digits(x):
    """Significant digits of a number as Python writes it (0.000177 -> 3, 1.77e-05 -> 3)."""
    mantissa = repr(float(x)).split("e")[0]
    return len(mantissa.replace("-", "").replace(".", "").strip("0"))


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
    assert {"list_threads", "get_thread", "operation_stats", "search_events", "health", "cost_report",
            "list_anomalies", "explain_anomaly", "list_permission_decisions"} <= set(tools)
    assert not AGENT_ONLY & set(tools), "over a store, no tool that can only fail is listed"
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


def test_bad_arguments_are_tool_results_with_is_error_not_crashes(store):
    directory, _ = store

    async def scenario(client):
        out = []
        for name, args in [
            ("get_thread", {"thread_id": "not-a-thread"}),
            ("list_threads", {"limit": 100000}),
            ("list_threads", {"cursor": "garbage"}),
            ("list_threads", {"status": "sideways"}),
            ("operation_stats", {"group_by": ["colour"]}),
            ("get_thread", {"thread_id": "0af7651916cd43dd8448eb211c80319c"}),
        ]:
            # One way for every bad input: a tool result with isError (never a JSON-RPC error).
            result = await client.call_tool(name, args)
            out.append((result.is_error, result.content[0].text))
        unknown = None
        try:
            await client.call_tool("list_directives", {})
        except Exception as e:  # a tool the server does not have is a protocol error
            unknown = str(e)
        # The server is still alive afterwards.
        alive = await client.call_tool("health", {})
        return out, unknown, alive

    out, unknown, alive = run(directory, scenario)
    assert all(is_error for is_error, _ in out), out
    messages = [m for _, m in out]
    assert "thread_id must be 32 lowercase hex digits" in messages[0], messages[0]
    assert "limit must be between 1 and 200" in messages[1]
    assert "cursor" in messages[2] and "next_cursor" in messages[2]
    assert "status" in messages[3]
    assert "colour" in messages[4] and "operation" in messages[4], messages[4]
    assert "no thread" in messages[5] and "list_threads" in messages[5], messages[5]
    assert unknown is not None, "an unlisted tool cannot be called"
    assert not alive.is_error


def test_answers_use_ms_rfc3339_times_and_rounded_dollars(store):
    directory, expected = store
    some = next(iter(expected["threads"]))

    async def scenario(client):
        return [
            await client.call_tool("list_threads", {"limit": 200}),
            await client.call_tool("get_thread", {"thread_id": some}),
            await client.call_tool("operation_stats", {"since_minutes": 100000, "group_by": ["operation"]}),
            await client.call_tool("cost_report", {"since_minutes": 100000}),
            await client.call_tool("search_events", {"kind": "log", "limit": 20}),
        ]

    threads, thread, stats, cost, search = run(directory, scenario)
    for result in (threads, thread, stats, cost, search):
        assert not result.is_error, result.content
        assert not [k for k in all_keys(result.structured_content) if k.endswith("_ns")], "no nanoseconds"
    rows = threads.structured_content["rows"]
    assert all(RFC3339.fullmatch(r["start"]) and r["duration_ms"] >= 0 for r in rows)
    assert all(significant_digits(r["cost_usd"]) <= 6 for r in rows), [r["cost_usd"] for r in rows]
    text = threads.content[0].text
    assert "start" in text.splitlines()[1] and rows[0]["start"] in text, "start times are in the table"
    assert " ms" in text and "$" in text
    spans = thread.structured_content["spans"]
    assert all(RFC3339.fullmatch(s["start"]) for s in spans)
    assert all(RFC3339.fullmatch(e["time"]) for s in spans for e in s.get("events", []))
    assert spans[0]["start"] in thread.content[0].text and " ms " in thread.content[0].text
    for r in stats.structured_content["rows"]:
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"], r
    assert " ms" in stats.content[0].text
    assert all(significant_digits(r["cost_usd"]) <= 6 for r in cost.structured_content["rows"])
    assert "total $" in cost.content[0].text
    assert all(RFC3339.fullmatch(r["time"]) for r in search.structured_content["rows"])
    times = [r["time"] for r in search.structured_content["rows"]]
    assert times == sorted(times), "oldest first"


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
