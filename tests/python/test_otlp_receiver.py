"""A Python service instrumented with the real OpenTelemetry SDK sends its spans with the SDK's own
OTLP/HTTP exporter (opentelemetry-exporter-otlp-proto-http, protobuf) to `mission-ctl serve`,
started here on loopback; the store then holds exactly the spans sent, with the GenAI fields
(model, provider, tokens of the current and of the deprecated attribute names, tool) typed,
parents kept, and the tenant of the sender's token. The same over OTLP/gRPC with the SDK's gRPC
exporters (opentelemetry-exporter-otlp-proto-grpc, gzip), traces and logs."""

import json
import pathlib
import queue
import signal
import subprocess
import threading

from grpc import Compression
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)

from conftest import ctl_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
# How long one step may take on a loaded machine before the test fails (seconds).
PATIENCE = 120
TOKEN = "python-sender-token-0001"


class Recording(OTLPSpanExporter):
    """The SDK's exporter, keeping each export's result so the test knows every span was
    acknowledged."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.results = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append((len(spans), result))
        return result


def serve(store, *flags):
    """(process, queue of the lines it prints after starting, {surface: url}) of `mission-ctl
    serve --store STORE FLAGS`, read up to its line saying every surface listens."""
    proc = subprocess.Popen([ctl_binary(), "serve", "--store", str(store), *flags],
                            stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    urls = {}
    while True:
        line = lines.get(timeout=PATIENCE)
        assert line is not None, "serve stopped before it served"
        if line.startswith("serving store "):
            return proc, lines, urls
        if line.startswith("Mission Control ") and " on " in line:
            surface, url = line[len("Mission Control "):].split(" on ", 1)
            urls[surface] = url.split()[0]


def stop(proc, lines):
    """Stops `mission-ctl serve` with SIGTERM, as a service manager would; asserts it exits
    cleanly and returns the lines it printed since starting."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=PATIENCE)
    assert code == 0, f"serve exited with {code}"
    rest = []
    while (line := lines.get(timeout=PATIENCE)) is not None:
        rest.append(line)
    return rest


def start_server(store):
    proc, lines, urls = serve(store, "--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
                              "--no-dashboard", "--no-mcp", "--tenant-token", f"{TOKEN}:acme")
    assert list(urls) == ["OTLP receiver", "OTLP/gRPC receiver"], urls
    return proc, lines, urls["OTLP receiver"], urls["OTLP/gRPC receiver"].removeprefix("http://")


def query_thread(ctl, store, trace_id):
    """The stored rows of one trace, by span id (the query's JSON gives ids as decimals)."""
    out = subprocess.run(
        [ctl, "query", str(store), "--thread", format(trace_id, "032x"), "--format", "json",
         "--limit", "100"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def test_the_python_sdks_otlp_exporter_reaches_the_store(tmp_path):
    ctl = ctl_binary()
    store = tmp_path / "data"
    proc, lines, endpoint, _ = start_server(store)
    try:
        exporter = Recording(endpoint=f"{endpoint}/v1/traces",
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=PATIENCE)
        provider = TracerProvider(resource=Resource.create({"service.name": "py-service"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test_otlp_receiver")
        with tracer.start_as_current_span("handle request") as root:
            with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.provider.name", "openai")
                chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                chat.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
                chat.set_attribute("gen_ai.usage.input_tokens", 812)
                chat.set_attribute("gen_ai.usage.output_tokens", 64)
                chat.set_attribute("app.region", "eu")
            with tracer.start_as_current_span("chat old") as old:
                # The attribute names of semantic conventions before 1.27.
                old.set_attribute("gen_ai.system", "openai")
                old.set_attribute("gen_ai.request.model", "gpt-4o")
                old.set_attribute("gen_ai.usage.prompt_tokens", 1200)
                old.set_attribute("gen_ai.usage.completion_tokens", 30)
            # A link (to the model call whose answer asked for the tool) is kept.
            with tracer.start_as_current_span("execute_tool get_weather",
                                              links=[Link(chat.get_span_context())]) as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "get_weather")
        provider.shutdown()
        assert exporter.results == [(1, SpanExportResult.SUCCESS)] * 4, exporter.results
    finally:
        rest = stop(proc, lines)
    assert any(line.startswith("stopped: received 4 spans") for line in rest), rest

    rows = {int(row["span_id"]): row
            for row in query_thread(ctl, store, root.get_span_context().trace_id)}
    ids = {name: span.get_span_context().span_id
           for name, span in [("root", root), ("chat", chat), ("old", old), ("tool", tool)]}
    assert set(rows) == set(ids.values()), rows
    for row in rows.values():
        assert row["tenant"] == "acme", row
        assert row["gen_ai_agent_name"] == "py-service", row
    for name in ("chat", "old", "tool"):
        assert int(rows[ids[name]]["parent_span_id"]) == ids["root"], rows[ids[name]]

    chat_row = rows[ids["chat"]]
    assert chat_row["kind"] == "llm_call"
    assert chat_row["name"] == "chat"
    assert chat_row["gen_ai_provider_name"] == "openai"
    assert chat_row["gen_ai_request_model"] == "gpt-4o-mini"
    assert chat_row["gen_ai_usage_input_tokens"] == "812"
    assert chat_row["gen_ai_usage_output_tokens"] == "64"
    assert float(chat_row["gen_ai_usage_cost"]) > 0, "priced by the server's price table"
    assert "gpt-4o-mini-2024-07-18" in chat_row["attributes"]
    assert "app.region" in chat_row["attributes"]

    old_row = rows[ids["old"]]
    assert old_row["kind"] == "llm_call"
    assert old_row["gen_ai_provider_name"] == "openai"
    assert old_row["gen_ai_request_model"] == "gpt-4o"
    assert old_row["gen_ai_usage_input_tokens"] == "1200"
    assert old_row["gen_ai_usage_output_tokens"] == "30"

    tool_row = rows[ids["tool"]]
    assert tool_row["kind"] == "tool_call"
    assert tool_row["name"] == "get_weather"
    link = f"{root.get_span_context().trace_id:032x}-{ids['chat']:016x}"
    assert f"mission.links: {link}" in tool_row["attributes"], tool_row["attributes"]
    assert "mission.links" not in chat_row["attributes"]
    assert rows[ids["root"]]["kind"] == "custom"
    assert rows[ids["root"]]["name"] == "handle request"


def test_the_python_sdks_grpc_exporters_reach_the_store(tmp_path):
    ctl = ctl_binary()
    store = tmp_path / "data"
    proc, lines, _, grpc_endpoint = start_server(store)
    try:
        auth = (("authorization", f"Bearer {TOKEN}"),)
        spans = GrpcSpanExporter(endpoint=grpc_endpoint, insecure=True, headers=auth,
                                 compression=Compression.Gzip, timeout=PATIENCE)
        logs = GrpcLogExporter(endpoint=grpc_endpoint, insecure=True, headers=auth,
                               compression=Compression.Gzip, timeout=PATIENCE)
        resource = Resource.create({"service.name": "py-grpc-service"})
        tracer_provider = TracerProvider(resource=resource)
        # One batch: the model call is sent with its root, whose agent name it takes.
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        tracer = tracer_provider.get_tracer("test_otlp_receiver")
        logger = logger_provider.get_logger("test_otlp_receiver")
        with tracer.start_as_current_span("invoke_agent planner") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            root.set_attribute("gen_ai.agent.name", "planner")
            with tracer.start_as_current_span("chat claude") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.provider.name", "anthropic")
                chat.set_attribute("gen_ai.request.model", "claude-sonnet-4")
                chat.set_attribute("gen_ai.usage.input_tokens", 1000)
                chat.set_attribute("gen_ai.usage.output_tokens", 20)
                logger.emit(LogRecord(severity_text="WARN", severity_number=SeverityNumber.WARN,
                                      body="retrying", attributes={"attempt": 2}))
        tracer_provider.shutdown()
        logger_provider.shutdown()
    finally:
        rest = stop(proc, lines)
    summary = next(line for line in rest if line.startswith("stopped:"))
    assert "received 2 spans, 1 log records" in summary and "(0 refused)" in summary, summary

    trace_id = root.get_span_context().trace_id
    rows = query_thread(ctl, store, trace_id)
    assert len(rows) == 3, rows
    for row in rows:
        assert row["tenant"] == "acme", row
    by_kind = {row["kind"]: row for row in rows}
    assert set(by_kind) == {"agent_step", "llm_call", "log"}, rows
    chat_row = by_kind["llm_call"]
    assert by_kind["agent_step"]["gen_ai_agent_name"] == chat_row["gen_ai_agent_name"] == "planner"
    assert int(chat_row["span_id"]) == chat.get_span_context().span_id
    assert int(chat_row["parent_span_id"]) == root.get_span_context().span_id
    assert chat_row["gen_ai_provider_name"] == "anthropic"
    assert chat_row["gen_ai_request_model"] == "claude-sonnet-4"
    assert chat_row["gen_ai_usage_input_tokens"] == "1000"
    assert chat_row["gen_ai_usage_output_tokens"] == "20"
    log_row = by_kind["log"]
    assert (log_row["log_level"], log_row["log_message"]) == ("warn", "retrying"), log_row
    assert int(log_row["span_id"]) == chat.get_span_context().span_id, "the log keeps its span"
