"""The logging and OpenTelemetry bridges, error mapping, process life (atexit, fork)."""

import logging
import os
import subprocess
import sys
import textwrap

import pyarrow.dataset as ds
import pytest

import mission_control as mc
from conftest import rows


def test_logging_records_land_in_the_current_span_or_the_service(control):
    logger = logging.getLogger("agent.tools")
    logger.setLevel(logging.DEBUG)
    handler = control.handler()
    logger.addHandler(handler)
    try:
        logger.warning("outside any thread: %s", "service log")
        with control.thread() as thread:
            with thread.tool_call("web_search") as tool:
                logger.error("upstream said %d", 503)
                try:
                    raise TimeoutError("took too long")
                except TimeoutError:
                    logger.exception("gave up")
    finally:
        logger.removeHandler(handler)
    logs = rows(control.query(kind="log"))
    by_message = {r["log_message"]: r for r in logs}
    outside = by_message["outside any thread: service log"]
    assert outside["log_level"] == "warn" and outside["thread_id"] is None
    inside = by_message["upstream said 503"]
    assert inside["log_level"] == "error" and inside["thread_id"] == thread.id
    assert format(inside["span_id"], "016x") == tool.span_id
    assert dict(inside["attributes"])["logger"] == "agent.tools"
    assert by_message["gave up: TimeoutError: took too long"]["log_level"] == "error"


def test_opentelemetry_spans_feed_mission_control(control):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Status, StatusCode

    from mission_control.otel import MissionSpanProcessor

    provider = TracerProvider()
    processor = MissionSpanProcessor(control)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("an-openllmetry-app")
    with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}) as agent:
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai",
            "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 100, "app.region": "eu",
        }):
            pass
        with tracer.start_as_current_span("execute_tool search", attributes={"gen_ai.tool.name": "search"}) as tool:
            tool.set_status(Status(StatusCode.ERROR, "quota exceeded"))
    provider.shutdown()
    assert processor.recorded == 3
    trace_id = format(agent.get_span_context().trace_id, "032x")
    spans = {r["kind"]: r for r in rows(control.query(thread_id=trace_id))}
    assert set(spans) == {"agent_step", "llm_call", "tool_call"}
    llm = spans["llm_call"]
    assert (llm["name"], llm["gen_ai_request_model"], llm["gen_ai_provider_name"]) == ("chat", "gpt-4o-mini", "openai")
    assert (llm["gen_ai_usage_input_tokens"], llm["gen_ai_usage_output_tokens"]) == (1000, 100)
    assert llm["gen_ai_usage_cost"] == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    assert dict(llm["attributes"])["app.region"] == "eu"
    assert llm["parent_span_id"] == spans["agent_step"]["span_id"] == agent.get_span_context().span_id
    assert spans["tool_call"]["name"] == "search" and spans["tool_call"]["status"] == "error"
    assert spans["tool_call"]["error_message"] == "quota exceeded"
    assert spans["agent_step"]["gen_ai_agent_name"] == "planner"


def test_bad_arguments_raise_typed_errors_naming_the_argument(control, tmp_path):
    with pytest.raises(TypeError, match="ring_capacity"):
        mc.init(store=tmp_path / "x", ring_capacity="big")
    with pytest.raises(mc.ConfigError, match="backpressure"):
        mc.init(store=tmp_path / "x", backpressure="sometimes")
    # Out of range: refused by init, naming the field and the range (it used to abort the
    # interpreter at the first record).
    with pytest.raises(mc.ConfigError, match=r"ring_capacity.*4194304"):
        mc.init(store=tmp_path / "x", ring_capacity=2**40)
    with pytest.raises(ValueError, match="otlp_protocol"):
        mc.init(store=tmp_path / "x", otlp_endpoint="http://127.0.0.1:4318", otlp_protocol="carrier-pigeon")
    assert issubclass(mc.ConfigError, mc.MissionControlError)
    with control.thread() as thread:
        with thread.llm_call("gpt-4o-mini") as call:
            with pytest.raises(ValueError, match="input_tokens"):
                call.record_usage(-1, 5)
            # A bool is not a token count (Python counts True as 1).
            with pytest.raises(TypeError, match="output_tokens"):
                call.record_usage(5, True)
            with pytest.raises(TypeError, match="cached_input_tokens"):
                call.record_usage(5, 5, cached_input_tokens=False)
            with pytest.raises(TypeError, match="input_tokens"):
                call.record_usage(5.0, 5)
        with pytest.raises(TypeError, match='"payload"'):
            thread.tool_call("t").set_attribute("payload", object())
        with pytest.raises(ValueError, match="record_usage is for LLM calls"):
            thread.tool_call("t").record_usage(1, 1)
        with pytest.raises(ValueError, match="level"):
            thread.log("loud", "x")
    with pytest.raises(ValueError, match="thread_id"):
        control.thread(thread_id="not-hex")
    with pytest.raises(ValueError, match="traceparent"):
        control.thread(traceparent="00-zz")
    with pytest.raises(ValueError, match="thread_id"):
        control.query(thread_id="nope")
    with pytest.raises(ValueError, match="column"):
        control.query(columns=["no_such_column"])
    with pytest.raises(TypeError, match="since"):
        control.query(since="yesterday")
    # What was recorded before the mistakes is all there.
    assert len(rows(control.query(thread_id=thread.id))) >= 2


def test_a_bool_is_not_a_result_size(control):
    # Python counts True as 1: set_result(size=True) would have stored a size of 1.
    with control.thread() as thread:
        with thread.tool_call("lookup") as tool:
            with pytest.raises(TypeError, match="size"):
                tool.set_result(size=True)
            with pytest.raises(TypeError, match="size"):
                tool.set_result(size=False)
            with pytest.raises(ValueError, match="size"):
                tool.set_result(size=-1)
            tool.set_result(size=2)
    tools = rows(control.query(thread_id=thread.id, kind="tool_call"))
    assert [dict(r["attributes"]).get("gen_ai.tool.call.result.size") for r in tools] == ["2"]


def test_a_rust_panic_is_a_python_exception_not_an_abort():
    with pytest.raises(BaseException) as raised:
        mc._native._panic_for_test()
    assert "deliberate panic" in str(raised.value)
    assert type(raised.value).__name__ == "PanicException"


def test_calls_after_shutdown_raise_a_clear_error(control):
    thread = control.thread()
    report = control.shutdown()
    assert report["accounting"]["recorded"] == 0
    calls = (control.thread, lambda: control.log("info", "x"), control.flush, lambda: control.query(),
             lambda: thread.llm_call("m"), control.stats, control.health, lambda: control.record("x"))
    for call in calls:
        with pytest.raises(mc.ShutdownError, match="shut down"):
            call()
    with pytest.raises(mc.ShutdownError):
        thread.end()
    assert control.shutdown() is None, "a second shutdown is a no-op"


def test_everything_is_flushed_at_interpreter_exit(tmp_path):
    script = textwrap.dedent(f"""
        import mission_control as mc
        control = mc.init(store={str(tmp_path)!r}, service="exiting")
        for i in range(100):
            with control.thread() as thread:
                thread.tool_call("t").end()
        # no flush, no shutdown: atexit delivers it
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    table = ds.dataset(str(tmp_path / "events"), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_recorder_and_the_parent_loses_nothing(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, threading
        import mission_control as mc
        control = mc.init(store={str(tmp_path)!r}, service="forking")
        # A thread started before the fork keeps recording in the parent.
        stop = threading.Event()
        def background():
            while not stop.is_set():
                control.record("heartbeat")
                stop.wait(0.001)
        bg = threading.Thread(target=background); bg.start()
        with control.thread(agent="parent-before") as t:
            t.tool_call("before").end()
        pid = os.fork()
        if pid == 0:
            with control.thread(agent="child") as t:
                for i in range(50):
                    t.tool_call("in-child").end()
            child_rows = control.query(agent="child").num_rows
            before_rows = control.query(agent="parent-before").num_rows
            report = control.shutdown()
            ok = child_rows == 51 and before_rows == 2 and report["accounting"]["dropped"] == 0
            if not ok:
                print("child:", child_rows, before_rows, report["accounting"], file=sys.stderr)
            os._exit(0 if ok else 1)
        with control.thread(agent="parent-after") as t:
            t.tool_call("after").end()
        _, status = os.waitpid(pid, 0)
        stop.set(); bg.join()
        report = control.shutdown()
        assert report["accounting"]["dropped"] == 0, report
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 0, "the child's own checks failed"
    table = ds.dataset(str(tmp_path / "events"), format="parquet", partitioning="hive").to_table()
    agents = table.column("gen_ai_agent_name").to_pylist()
    assert agents.count("parent-before") == 2, "recorded once, not duplicated by the child"
    assert agents.count("child") == 51
    assert agents.count("parent-after") == 2


def test_the_stubs_cover_every_public_name():
    import ast
    import pathlib

    stub = pathlib.Path(mc.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            declared[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        elif isinstance(node, ast.FunctionDef):
            declared[node.name] = set()
        elif isinstance(node, ast.AnnAssign):
            declared[node.target.id] = set()
    for name in dir(mc._native):
        if name.startswith("__") and name != "__version__":
            continue
        assert name in declared, f"_native.{name} has no stub"
        obj = getattr(mc._native, name)
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            methods = {m for m in vars(obj) if not m.startswith("__") or m in ("__enter__", "__exit__", "__len__", "__arrow_c_stream__")}
            missing = methods - declared[name] - {"__new__"}
            assert not missing, f"{name} stubs lack {missing}"
    assert (pathlib.Path(mc.__file__).parent / "py.typed").exists()


def test_the_python_quick_start_runs(tmp_path):
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python" / "quickstart.py"
    out = subprocess.run([sys.executable, str(script), "--threads", "60", "--store", str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    assert "Recorded 60 conversations" in out and "dropped 0" in out, out
    table = ds.dataset(str(tmp_path / "events"), format="parquet", partitioning="hive").to_table()
    assert table.filter(ds.field("kind") == "agent_step").num_rows == 60


def test_otlp_over_https_sends_the_headers_and_trusts_the_ca_file(tmp_path, https_receiver):
    c = mc.init(store=tmp_path / "store", service="tls-agent", otlp_endpoint=https_receiver.url,
                otlp_headers={"x-api-key": "k-123"}, otlp_ca_file=https_receiver.ca_file, models=False)
    with c.thread(agent="support-bot") as thread:
        with thread.llm_call("claude-sonnet-4", provider="anthropic"):
            pass
    c.flush()
    c.shutdown()
    traces = [(h, b) for p, h, b in https_receiver.requests if p == "/v1/traces"]
    assert traces, https_receiver.requests
    headers, body = traces[0]
    assert headers["x-api-key"] == "k-123"
    assert headers["content-type"] == "application/x-protobuf"
    assert b"claude-sonnet-4" in body


def test_otlp_headers_without_an_endpoint_are_refused(tmp_path):
    with pytest.raises(ValueError, match="otlp_endpoint"):
        mc.init(store=tmp_path / "x", otlp_headers={"k": "v"})


@pytest.mark.parametrize("capture, kept", [(None, False), (["acme"], True), (True, True), (["lab"], False)])
def test_prompt_content_is_omitted_unless_the_tenant_captures_it(tmp_path, capture, kept):
    from conftest import rows

    c = mc.init(store=tmp_path / "store", tenant="acme", capture_content=capture, models=False)
    with c.thread(agent="support-bot") as thread:
        with thread.llm_call("claude-sonnet-4", provider="anthropic") as call:
            call.set_attribute("gen_ai.input.messages", "PROMPT: my account is 12345")
            call.set_attribute("gen_ai.request.temperature", 0.2)
    c.flush()
    spans = rows(c.query(kind="llm_call"))
    c.shutdown()
    assert spans
    attributes = dict(spans[0]["attributes"])
    expected = "PROMPT: my account is 12345" if kept else "[content omitted]"
    assert attributes["gen_ai.input.messages"] == expected
    assert "gen_ai.request.temperature" in attributes


def test_openinference_content_bridged_from_opentelemetry_is_not_stored(tmp_path):
    """An OpenInference span (Arize Phoenix's convention) through MissionSpanProcessor, with
    content capture off: no prompt or completion text reaches the Parquet files."""
    import pyarrow.dataset as ds
    from conftest import rows
    from opentelemetry.sdk.trace import TracerProvider

    from mission_control.otel import MissionSpanProcessor

    c = mc.init(store=tmp_path / "store", tenant="acme", models=False)
    provider = TracerProvider()
    provider.add_span_processor(MissionSpanProcessor(c))
    tracer = provider.get_tracer("an-openinference-app")
    prompt, completion = "PROMPT: my account is 12345", "COMPLETION: your balance is 67890"
    with tracer.start_as_current_span("ChatOpenAI", attributes={
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "input.value": prompt,
        "input.mime_type": "text/plain",
        "output.value": completion,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": prompt,
        "llm.output_messages.0.message.content": completion,
        "llm.prompts": [prompt],
    }):
        pass
    provider.shutdown()
    c.flush()
    c.shutdown()
    table = ds.dataset(str(tmp_path / "store" / "events"), format="parquet", partitioning="hive").to_table()
    assert table.num_rows >= 1
    stored = repr(rows(table))
    assert "input.value" in stored and "input.mime_type" in stored, stored
    for text in ("my account is 12345", "your balance is 67890"):
        assert text not in stored, stored
    # An OpenInference LLM span is an LLM call now (named after its operation, `chat`).
    attributes = dict(next(r for r in rows(table) if r["kind"] == "llm_call")["attributes"])
    assert attributes["input.value"] == attributes["output.value"] == "[content omitted]"
    assert attributes["input.mime_type"] == "text/plain"


class _TracesOnlyBackend:
    """A plain-HTTP OTLP backend on loopback that takes traces and answers 405 on /v1/logs and
    /v1/metrics, as Arize Phoenix does; keeps the path of every request."""

    def __init__(self, port=0):
        import http.server
        import threading

        self.paths = []
        paths = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                paths.append(self.path)
                status, body = (200, b"") if self.path == "/v1/traces" else (405, b"Method Not Allowed")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("switched_off", [False, True])
def test_a_backend_that_takes_only_traces_never_fails_flush(tmp_path, switched_off):
    backend = _TracesOnlyBackend()
    off = {"otlp_logs": False, "otlp_metrics": False} if switched_off else {}
    c = mc.init(store=tmp_path / "store", otlp_endpoint=backend.url, models=False, **off)
    with c.thread(agent="support-bot") as thread:
        with thread.llm_call("gpt-4o-mini", provider="openai"):
            pass
        thread.log("info", "one log line")
    c.flush()  # a 405 on logs and metrics is counted, not raised
    otlp = c.health()["otlp"]
    c.shutdown()
    backend.close()
    assert otlp["traces"]["exported"] == 2, otlp
    assert "/v1/traces" in backend.paths
    if switched_off:
        assert set(backend.paths) == {"/v1/traces"}, backend.paths
        assert otlp["healthy"] and not otlp["logs"]["enabled"] and not otlp["metrics"]["enabled"], otlp
    else:
        assert otlp["logs"]["rejected"] == 1 and "405" in otlp["logs"]["last_rejection"], otlp
        assert not otlp["healthy"], otlp


def test_spans_wait_in_the_otlp_spill_while_the_backend_is_down(tmp_path):
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = mc.init(store=tmp_path / "store", otlp_endpoint=f"http://127.0.0.1:{port}", models=False,
                otlp_logs=False, otlp_metrics=False, otlp_spill_dir=tmp_path / "spill",
                otlp_spill_max_bytes=1 << 20)

    def wait_for(done):
        deadline = time.monotonic() + 60
        while not done(c.health()["otlp"]["traces"]):
            assert time.monotonic() < deadline, c.health()["otlp"]["traces"]
            time.sleep(0.01)
        return c.health()["otlp"]["traces"]

    with c.thread(agent="support-bot") as thread:
        with thread.llm_call("gpt-4o-mini", provider="openai"):
            pass
    traces = wait_for(lambda t: t["spilled"] == 2)
    assert traces["spill_queued"] >= 1 and traces["exported"] == 0, traces
    backend = _TracesOnlyBackend(port)
    traces = wait_for(lambda t: t["replayed"] == 2 and t["exported"] == 2)
    c.shutdown()
    backend.close()
    assert backend.paths == ["/v1/traces"], backend.paths
    assert traces["spill_queued"] == 0 and traces["dropped_spill_full"] == 0, traces
    with pytest.raises(mc.ConfigError, match="otlp_spill_max_bytes"):
        mc.init(store=tmp_path / "y", otlp_endpoint="http://127.0.0.1:9", otlp_spill_max_bytes=1000)


def test_otlp_signal_switches_must_be_bools(tmp_path):
    with pytest.raises(TypeError, match="otlp_logs"):
        mc.init(store=tmp_path / "x", otlp_logs="off")


def test_a_query_that_skips_unreadable_files_warns(control, tmp_path):
    import warnings

    with control.thread(agent="bot") as thread:
        control.log("info", "kept")
    control.flush()
    assert control.query(thread_id=thread.id).num_rows >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", mc.UnreadableDataWarning)
        control.query()  # an intact store: no warning
    part = next((tmp_path / "store" / "events").rglob("*.parquet")).parent
    (part / "part-garbage.parquet").write_bytes(b"not parquet at all")
    with pytest.warns(mc.UnreadableDataWarning, match=r"1 unreadable file.*part-garbage\.parquet"):
        table = control.query()
    assert table.num_rows >= 1, "the readable files are still read"
    with pytest.warns(mc.UnreadableDataWarning):
        raw = control.query(arrow=False)
    assert len(raw.unreadable) == 1 and "part-garbage.parquet" in raw.unreadable[0]
