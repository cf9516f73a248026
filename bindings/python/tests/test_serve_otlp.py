"""control.serve_otlp(): a Python agent receives OpenTelemetry from its subprocesses and services.
The real OpenTelemetry SDK with its own OTLP/HTTP exporter (protobuf) sends to the receiver on
loopback; the instance's store then holds exactly the spans sent, GenAI fields typed and priced,
under the tenant of the sender's token. Tokens are enforced, settings range-checked, and
shutdown records what was acknowledged."""

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

import mission_control as mc
from conftest import rows

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402

TOKEN = "subprocess-token-000001"
OTHER = "other-tenant-token-0002"


class Recording(OTLPSpanExporter):
    """The SDK's exporter, keeping each export's result."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.results = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result)
        return result


def send(endpoint, token, service):
    """Two spans from a 'service': a model call (the current GenAI names) under a request."""
    exporter = Recording(endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {token}"},
                         timeout=60)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test_serve_otlp")
    with tracer.start_as_current_span("handle") as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.usage.input_tokens", 812)
            chat.set_attribute("gen_ai.usage.cache_read.input_tokens", 512)
            chat.set_attribute("gen_ai.usage.output_tokens", 64)
    provider.shutdown()
    assert exporter.results == [SpanExportResult.SUCCESS] * 2
    return format(root.get_span_context().trace_id, "032x"), chat.get_span_context().span_id


def test_the_sdks_exporter_reaches_this_instances_store_under_the_tokens_tenant(tmp_path):
    control = mc.init(store=tmp_path / "store", service="host-agent", tenant="acme", models=False)
    try:
        receiver = control.serve_otlp(port=0, tokens={TOKEN: "acme"})
        assert receiver.endpoint == f"http://127.0.0.1:{receiver.port}" and not receiver.closed
        # Without a token, nothing is accepted.
        request = urllib.request.Request(f"{receiver.endpoint}/v1/traces", data=b"", method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 401
        thread, chat_id = send(receiver.endpoint, TOKEN, "worker")
        receiver.close()
        assert receiver.closed
        # After close, everything acknowledged was handed to the recorder.
        stats = receiver.stats()
        control.flush()
        found = rows(control.query(thread_id=thread))
    finally:
        control.shutdown()
    assert (stats["requests"], stats["unauthorized"], stats["spans"], stats["rejected_items"]) == (3, 1, 2, 0)
    assert len(found) == 2
    assert all(r["tenant"] == "acme" and r["gen_ai_agent_name"] == "worker" for r in found)
    chat = next(r for r in found if r["span_id"] == chat_id)
    assert chat["kind"] == "llm_call" and chat["gen_ai_request_model"] == "gpt-4o-mini"
    assert (chat["gen_ai_usage_input_tokens"], chat["gen_ai_usage_cache_read_input_tokens"],
            chat["gen_ai_usage_output_tokens"]) == (812, 512, 64)
    # Priced by this instance's table: gpt-4o-mini, 300 fresh + 512 cached input, 64 output.
    assert chat["gen_ai_usage_cost"] == pytest.approx((300 * 0.15 + 512 * 0.075 + 64 * 0.60) / 1e6, rel=1e-12)


# A worker as an agent would start it: the OpenTelemetry SDK's exporter with no arguments, so
# everything (endpoint, token, service name) comes from the standard environment variables.
WORKER = textwrap.dedent("""
    import json
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    results = []

    class Exporter(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            results.append(result.name)
            return result

    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(SimpleSpanProcessor(Exporter()))
    tracer = provider.get_tracer("worker")
    with tracer.start_as_current_span("invoke_agent summarizer") as root:
        with tracer.start_as_current_span("chat claude-sonnet-4") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.system", "anthropic")
            chat.set_attribute("gen_ai.request.model", "claude-sonnet-4")
            chat.set_attribute("gen_ai.usage.prompt_tokens", 1200)
            chat.set_attribute("gen_ai.usage.completion_tokens", 90)
    provider.shutdown()
    print(json.dumps({"trace_id": format(root.get_span_context().trace_id, "032x"),
                      "chat": chat.get_span_context().span_id, "results": results}))
""")


def test_a_subprocess_reports_through_the_standard_environment(tmp_path):
    control = mc.init(store=tmp_path / "store", service="host-agent", tenant="acme", models=False)
    try:
        receiver = control.serve_otlp(tokens={TOKEN: "acme"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{TOKEN}",
            "OTEL_SERVICE_NAME": "summarizer-worker",
        })
        done = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        sent = json.loads(done.stdout.strip().splitlines()[-1])
        receiver.close()
        control.flush()
        found = rows(control.query(thread_id=sent["trace_id"]))
    finally:
        control.shutdown()
    assert sent["results"] == ["SUCCESS", "SUCCESS"], sent
    assert len(found) == 2, found
    assert all(r["tenant"] == "acme" for r in found)
    chat = next(r for r in found if r["span_id"] == sent["chat"])
    # The old GenAI names (gen_ai.system, prompt/completion tokens) land on the typed columns.
    assert chat["kind"] == "llm_call" and chat["gen_ai_request_model"] == "claude-sonnet-4"
    assert (chat["gen_ai_usage_input_tokens"], chat["gen_ai_usage_output_tokens"]) == (1200, 90)
    # No gen_ai.agent.name: the agent is the service, named by OTEL_SERVICE_NAME alone.
    assert [r["gen_ai_agent_name"] for r in found] == ["summarizer-worker"] * 2, found


def test_shutdown_records_what_was_acknowledged_and_stops_the_receiver(tmp_path):
    control = mc.init(store=tmp_path / "store", service="host-agent", tenant="acme", models=False)
    receiver = control.serve_otlp(token=TOKEN)
    thread, _ = send(receiver.endpoint, TOKEN, "worker")
    control.shutdown()
    assert receiver.closed
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{receiver.endpoint}/v1/traces", data=b"", timeout=60)
    again = mc.init(store=tmp_path / "store", service="reader", tenant="acme", models=False)
    try:
        assert len(rows(again.query(thread_id=thread))) == 2
    finally:
        again.shutdown()


def test_settings_are_checked_and_a_public_address_needs_tokens(tmp_path):
    control = mc.init(store=tmp_path / "store", tenant="acme", models=False)
    try:
        for kwargs, message in [
            ({"max_body_bytes": 10}, "max_body_bytes"),
            ({"queue_capacity": 0}, "queue_capacity"),
            ({"max_in_flight": 0}, "max_in_flight"),
            ({"max_in_flight": 4097}, "max_in_flight"),
            ({"port": 70000}, "port"),
            ({"grpc_port": -1}, "grpc_port"),
            ({"host": "localhost"}, "host"),
        ]:
            with pytest.raises(ValueError, match=message):
                control.serve_otlp(**kwargs)
        with pytest.raises(TypeError, match="max_body_bytes"):
            control.serve_otlp(max_body_bytes="big")
        with pytest.raises(mc.ServeError, match="token"):
            control.serve_otlp(host="0.0.0.0")
        assert control.serve_otlp().grpc_endpoint is None
        assert control.serve_otlp(max_in_flight=1).stats()["in_flight"] == 0
        with pytest.raises(mc.ServeError):
            control.serve_otlp(token="short")
    finally:
        control.shutdown()


def test_grpc_port_serves_otlp_grpc_with_the_same_tokens(tmp_path):
    grpc = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    control = mc.init(store=tmp_path / "store", service="host-agent", tenant="home", models=False)
    try:
        receiver = control.serve_otlp(grpc_port=0, tokens={TOKEN: "acme"})
        assert receiver.grpc_endpoint == f"http://127.0.0.1:{receiver.grpc_port}"
        assert receiver.grpc_port not in (0, receiver.port)
        provider = TracerProvider(resource=Resource.create({"service.name": "grpc-worker"}))
        exporter = grpc.OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True,
                                         headers=(("authorization", f"Bearer {TOKEN}"),),
                                         timeout=60)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("test_serve_otlp").start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        provider.shutdown()
        stats = receiver.stats()
        control.flush()
        found = rows(control.query(thread_id=format(chat.get_span_context().trace_id, "032x")))
    finally:
        control.shutdown()
    assert (stats["requests"], stats["spans"], stats["unauthorized"]) == (1, 1, 0), stats
    assert [(r["tenant"], r["kind"], r["gen_ai_request_model"]) for r in found] == [
        ("acme", "llm_call", "gpt-4o-mini")
    ]
