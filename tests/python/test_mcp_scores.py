"""Scores over MCP (official client, `mission-ctl mcp --store DIR`) and in `mission-ctl report`, on a
store the Python package wrote: `list_scores` with its per-name means, and `get_thread` showing a
thread's scores."""

import json
import subprocess

import mission_control as mc
import pytest

from test_mcp import ctl_binary, run


@pytest.fixture(scope="module")
def scored_store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scores")
    control = mc.init(store=directory, service="support-bot", tenant="acme", capture_content=True)
    ids = []
    for value in (0.9, 0.5, 0.1):
        with control.thread() as thread:
            with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
                call.record_usage(input_tokens=10, output_tokens=2)
                call.score("correctness", 1.0, label="pass", source="rule")
            thread.score("helpfulness", value, label=f"v{value}", comment=f"because {value}", source="llm")
        ids.append(thread.id)
    control.score_thread(ids[0], "thumbs", -1.0, comment="late feedback")
    control.shutdown()
    return directory, ids


def test_list_scores_and_get_thread_show_scores(scored_store):
    directory, ids = scored_store

    async def scenario(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        everything = await client.call_tool("list_scores", {"limit": 200})
        helpful = await client.call_tool("list_scores", {"name": "helpfulness", "source": "llm"})
        one = await client.call_tool("list_scores", {"thread_id": ids[0]})
        thread = await client.call_tool("get_thread", {"thread_id": ids[0]})
        try:  # a tool-input error: an MCP error response or a result with isError
            result = await client.call_tool("list_scores", {"source": "robot"})
            bad = (result.is_error, str(result.content))
        except Exception as e:
            bad = (True, str(e))
        return tools, everything, helpful, one, thread, bad

    tools, everything, helpful, one, thread, bad = run(directory, scenario)
    assert tools["list_scores"].output_schema is not None
    rows = everything.structured_content["rows"]
    assert len(rows) == 7, rows
    times = [r["time"] for r in rows]  # RFC 3339 UTC with a fixed width: sorts as text
    assert times == sorted(times, reverse=True), "newest first"
    summary = {s["name"]: s for s in everything.structured_content["summary"]}
    assert summary["helpfulness"]["count"] == 3
    assert summary["helpfulness"]["mean"] == pytest.approx(0.5)
    assert (summary["thumbs"]["min"], summary["correctness"]["count"]) == (-1.0, 3)
    assert "helpfulness: mean 0.500 over 3" in everything.content[0].text
    assert {r["name"] for r in helpful.structured_content["rows"]} == {"helpfulness"}
    assert len(helpful.structured_content["rows"]) == 3
    mine = {r["name"]: r for r in one.structured_content["rows"]}
    assert set(mine) == {"correctness", "helpfulness", "thumbs"}
    assert mine["helpfulness"]["comment"] == "because 0.9" and mine["helpfulness"]["label"] == "v0.9"
    assert "span_id" not in mine["thumbs"], "a late score on the whole thread"
    scores = {s["name"]: s for s in thread.structured_content["scores"]}
    assert scores["thumbs"]["value"] == -1.0 and scores["helpfulness"]["source"] == "llm"
    assert "scores:" in thread.content[0].text and "thumbs = -1" in thread.content[0].text
    assert bad[0] and "source" in bad[1], bad


def test_report_lists_scores(scored_store):
    directory, _ = scored_store
    out = subprocess.run(
        [ctl_binary(), "report", str(directory), "--json"], check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(out)
    assert report["volumes"]["scores"] == 7
    by_name = {s["name"]: s for s in report["scores"]}
    assert by_name["helpfulness"]["mean"] == pytest.approx(0.5)
    markdown = subprocess.run(
        [ctl_binary(), "report", str(directory)], check=True, capture_output=True, text=True
    ).stdout
    assert "## Scores" in markdown and "| helpfulness |" in markdown, markdown
