"""A small agent instrumented with the OpenTelemetry JS SDK from npm (tests/otlp-js/agent.js: the
OTLP/HTTP protobuf trace and logs exporters, as a TypeScript agent uses them) sends one run to
`mission-ctl serve` on loopback: the store then holds exactly the spans sent (count, names, parent
links), the GenAI fields typed (model, provider, tokens, tool), and the log record with its trace
context; once with the spans over OTLP/HTTP protobuf, once over OTLP/gRPC (`agent.js --grpc URL`,
the SDK's `exporter-trace-otlp-grpc` on grpc-js)."""

import json
import subprocess

import pytest

from test_otlp_receiver import PATIENCE, ROOT, ctl_binary, serve, stop

AGENT = ROOT / "tests" / "otlp-js" / "agent.js"
TOKEN = "js-sender-token-00001"


def run_agent(*args):
    modules = AGENT.parent / "node_modules"
    assert modules.is_dir(), f"run `npm ci` in {AGENT.parent} first (./scripts/test does)"
    done = subprocess.run(["node", str(AGENT), *args], capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_opentelemetry_js_sdk_reaches_the_store(tmp_path, protocol):
    store = tmp_path / "data"
    grpc = ["--grpc-addr", "127.0.0.1:0"] if protocol == "grpc" else ["--no-grpc"]
    proc, lines, urls = serve(store, "--addr", "127.0.0.1:0", *grpc, "--no-dashboard", "--no-mcp",
                              "--tenant-token", f"{TOKEN}:acme")
    try:
        via = ["--grpc", urls["OTLP/gRPC receiver"]] if protocol == "grpc" else []
        sent = run_agent("--endpoint", urls["OTLP receiver"], "--token", TOKEN, *via)
    finally:
        rest = stop(proc, lines)
    assert sent["exported"] == {"spans": 4, "logs": 1}, sent
    assert any(line.startswith("stopped: received 4 spans, 1 log records") for line in rest), rest

    out = subprocess.run(
        [ctl_binary(), "query", str(store), "--thread", sent["trace_id"], "--format", "json", "--limit", "100"],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = json.loads(out)
    spans = {int(r["span_id"]): r for r in rows if r["kind"] != "log"}
    logs = [r for r in rows if r["kind"] == "log"]
    # Exactly the spans sent, each under the parent it was sent with.
    assert set(spans) == {int(s["span_id"], 16) for s in sent["spans"]}, rows
    for s in sent["spans"]:
        row = spans[int(s["span_id"], 16)]
        parent = int(s["parent_span_id"], 16) if s["parent_span_id"] else None
        assert (int(row["parent_span_id"]) if row.get("parent_span_id") else None) == parent, row
        assert row["tenant"] == "acme" and row["gen_ai_agent_name"] == "ts-agent", row
    by_name = {s["name"]: spans[int(s["span_id"], 16)] for s in sent["spans"]}
    root = by_name["invoke_agent ts-agent"]
    assert (root["kind"], root["name"]) == ("agent_step", "invoke_agent"), root
    for name, model, tokens in [("chat gpt-4o-mini", "gpt-4o-mini", ("812", "64")),
                                ("chat gpt-4o", "gpt-4o", ("1200", "30"))]:
        chat = by_name[name]
        assert (chat["kind"], chat["name"]) == ("llm_call", "chat"), chat
        assert chat["gen_ai_provider_name"] == "openai", chat
        assert chat["gen_ai_request_model"] == model, chat
        assert (chat["gen_ai_usage_input_tokens"], chat["gen_ai_usage_output_tokens"]) == tokens, chat
        assert float(chat["gen_ai_usage_cost"]) > 0, "priced by the server's price table"
        assert f"{model}-2024-07-18" in chat["attributes"], chat
    tool = by_name["execute_tool get_weather"]
    assert (tool["kind"], tool["name"], tool["status"]) == ("tool_call", "get_weather", "error"), tool
    assert tool["error_message"] == "weather service timed out", tool
    assert "call_0001" in tool["attributes"], tool
    # The log record, inside the tool call.
    assert len(logs) == 1, logs
    log = logs[0]
    assert log["thread_id"] == sent["log"]["trace_id"], log
    assert int(log["span_id"]) == int(sent["log"]["span_id"], 16), log
    assert (log["log_level"], log["log_message"]) == ("warn", "weather service slow, retrying"), log
    assert log["log_target"] == "ts-agent.tools", log
