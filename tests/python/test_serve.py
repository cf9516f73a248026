"""One `mission-ctl serve` process: a Python service sends its spans with the real OpenTelemetry
SDK's OTLP/HTTP exporter, and while the process runs they show on its dashboard's JSON API and
through its MCP server over streamable HTTP, read with the official MCP Python client; one token
of one tenant for all three."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import httpx2
import mcp
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from test_otlp_receiver import PATIENCE, serve, stop

TOKEN = "acme-sender-and-viewer-01"


def dashboard_get(url, path):
    request = urllib.request.Request(url.rstrip("/") + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_what_serve_receives_shows_on_its_dashboard_and_mcp_server(tmp_path):
    proc, lines, urls = serve(tmp_path / "data", "--addr", "127.0.0.1:0", "--no-grpc", "--dashboard-addr", "127.0.0.1:0",
                              "--mcp-addr", "127.0.0.1:0", "--tenant-token", f"{TOKEN}:acme")
    try:
        assert set(urls) == {"OTLP receiver", "dashboard", "MCP server"}, urls
        assert all(u.startswith("http://127.0.0.1:") for u in urls.values()), urls
        exporter = OTLPSpanExporter(endpoint=f"{urls['OTLP receiver']}/v1/traces",
                                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=PATIENCE)
        provider = TracerProvider(resource=Resource.create({"service.name": "py-served"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test_serve")
        with tracer.start_as_current_span("handle request") as root:
            with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.provider.name", "openai")
                chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                chat.set_attribute("gen_ai.usage.input_tokens", 812)
                chat.set_attribute("gen_ai.usage.output_tokens", 64)
        provider.shutdown()
        thread = format(root.get_span_context().trace_id, "032x")

        # The dashboard: the thread, once the receiver's events reached the store.
        deadline = time.monotonic() + PATIENCE
        while True:
            status, body = dashboard_get(urls["dashboard"], f"/api/threads/{thread}")
            if status == 200 and "gpt-4o-mini" in body:
                break
            assert time.monotonic() < deadline, (status, body)
        page = json.loads(body)
        assert "py-served" in body and "812" in body, page
        status, _ = dashboard_get(urls["dashboard"], "/api/threads/" + "0" * 31 + "1")
        assert status == 404

        # The MCP server, with the official client and the same token.
        async def ask():
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx2.AsyncClient(headers=headers, timeout=PATIENCE) as http:
                async with mcp.Client(streamable_http_client(urls["MCP server"], http_client=http)) as client:
                    listed = await client.call_tool("list_threads", {"limit": 100})
                    got = await client.call_tool("get_thread", {"thread_id": thread})
                    return listed, got

        listed, got = asyncio.run(ask())
        assert not listed.is_error and not got.is_error, (listed.content, got.content)
        threads = listed.structured_content["rows"]
        assert [t["thread_id"] for t in threads if t["agent"] == "py-served"] == [thread], threads
        spans = got.structured_content["spans"]
        assert [(s["depth"], s["name"]) for s in spans] == [(0, "handle request"), (1, "chat")], spans
        assert spans[1]["model"] == "gpt-4o-mini", spans[1]
    finally:
        rest = stop(proc, lines)
    assert any(line.startswith("stopped: received 2 spans") for line in rest), rest
