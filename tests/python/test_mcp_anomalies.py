"""The anomaly tools over MCP (official client, `mission-ctl mcp --store DIR`), on the store the quick
start writes: its planted incident (claude-sonnet-4 three times slower over the last quarter)."""

from test_mcp import RFC3339, run


def test_the_quickstart_prints_the_caught_incident(incident_store):
    _, out = incident_store
    assert "The planted incident (claude-sonnet-4 3x slower) was caught" in out, out
    assert "name model=claude-sonnet-4 as the top cause" in out


def test_the_quickstart_directives_fire_an_alert_and_a_circuit_breaker(incident_store):
    _, out = incident_store
    directives = out[out.index("Directives: 2 loaded"):]
    assert "alert    web_search failed 3 times in a row" in directives, directives
    assert "breaker  circuit breaker for web_search open" in directives, directives
    assert "[model=claude-sonnet-4]" in directives, "the latency directive fires on the slowed model"
    assert 'permit("web_search") now: DENIED by tool-failing' in directives, directives


def test_list_anomalies_and_explain_the_incident(incident_store):
    directory, _ = incident_store

    async def scenario(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = await client.call_tool("list_anomalies", {"metric": "latency_ms", "limit": 200})
        rows = listed.structured_content["rows"]
        slow = [r for r in rows if r.get("model") == "claude-sonnet-4"]
        pack = await client.call_tool("explain_anomaly", {"id": slow[0]["id"]}) if slow else None
        filtered = await client.call_tool("list_anomalies", {"agent": "support-bot", "min_score": 0.0})
        return tools, listed, slow, pack, filtered

    tools, listed, slow, pack, filtered = run(directory, scenario)
    assert tools["explain_anomaly"].output_schema is not None
    rows = listed.structured_content["rows"]
    assert all(r["metric"] == "latency_ms" for r in rows)
    times = [r["time"] for r in rows]
    assert all(RFC3339.fullmatch(t) for t in times), times
    assert times == sorted(times, reverse=True), "newest first (RFC 3339 UTC sorts as time)"
    assert slow, f"no anomaly on the slowed model: {rows}"
    assert sum(r.get("cause") == "model=claude-sonnet-4" for r in slow) >= len(slow) * 0.8, slow
    assert all(r["direction"] == "up" and r["value"] > r["expected"] for r in slow)
    assert all(r["agent"] == "support-bot" for r in filtered.structured_content["rows"])

    assert not pack.is_error
    p = pack.structured_content
    assert "claude-sonnet-4" in p["summary"] and "Top cause" in p["summary"], p["summary"]
    assert p["anomaly"]["id"] == slow[0]["id"]
    assert p["causes"][0]["dimension"] == "model" and p["causes"][0]["value"] == "claude-sonnet-4"
    # The slowed model's p50 is higher during the anomaly than before it.
    def p50(window):
        return {tuple(r["group"]): r["p50_ms"] for r in window["rows"]}
    before, during = p50(p["baseline"]), p50(p["during"])
    key = next(k for k in during if "claude-sonnet-4" in k)
    assert during[key] > before[key], (before, during)
    assert p["exemplar"]["spans_total"] >= 1
    assert p["exemplar"]["thread_id"] == p["anomaly"]["attributes"]["mission.anomaly.exemplar.thread_id"]
    assert p["instructions"]
    assert "# Anomaly" in pack.content[0].text


def test_anomaly_tools_reject_bad_input(incident_store):
    directory, _ = incident_store

    async def scenario(client):
        out = []
        for name, args in [
            ("explain_anomaly", {"id": "zz"}),
            ("explain_anomaly", {"id": "0000000000000000"}),
            ("list_anomalies", {"min_score": 7}),
            ("list_anomalies", {"since_minutes": 0}),
        ]:
            # Bad input is a tool result with isError, never a JSON-RPC error.
            result = await client.call_tool(name, args)
            out.append((result.is_error, str(result.content)))
        return out

    out = run(directory, scenario)
    assert all(is_error for is_error, _ in out), out
    assert "16 hex digits" in out[0][1]
    assert "no anomaly" in out[1][1]
    assert "min_score" in out[2][1]
    assert "since_minutes" in out[3][1]
