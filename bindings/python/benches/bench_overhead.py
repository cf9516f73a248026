"""Per-span cost from Python: Mission Control against the OpenTelemetry Python SDK and a bare
function call, in one run, with time.perf_counter_ns.

Run (builds a release wheel into a venv of its own, with opentelemetry-sdk beside it):

    scripts/bench-python

or, in an environment that has both installed: python bindings/python/benches/bench_overhead.py

Measured, per operation (median of 7 rounds of N operations each):
- baseline: a Python function call (`noop()`), and an empty `with` block on a trivial context manager
- mission_control: `with thread.llm_call(...) as call: call.record_usage(...)`; the same with a tool
  call; the `@control.tool` decorator; a single positional-argument `control.record("name")`
- OpenTelemetry: `with tracer.start_as_current_span(...)` setting the same attributes, with a
  `TracerProvider` + `BatchSpanProcessor` + an exporter that drops spans (no I/O), and with
  `SimpleSpanProcessor` (the synchronous path).
"""

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time

N = int(os.environ.get("BENCH_N", "200000"))
ROUNDS = 7


def measure(label, body, n=N):
    """Median ns per operation over ROUNDS rounds of n operations; `body(n)` runs them."""
    body(min(n, 10_000))  # warm up
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        body(n)
        samples.append((time.perf_counter_ns() - start) / n)
    result = {"label": label, "ns_per_op": statistics.median(samples), "min": min(samples), "max": max(samples)}
    print(f"{label:<62} {result['ns_per_op']:>9.1f} ns/op  (min {result['min']:.1f}, max {result['max']:.1f})", flush=True)
    return result


def bench_baselines():
    def noop():
        return None

    def calls(n):
        for _ in range(n):
            noop()

    @contextlib.contextmanager
    def empty():
        yield

    class Trivial:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    trivial = Trivial()

    def with_blocks(n):
        for _ in range(n):
            with trivial:
                pass

    return [measure("baseline: bare Python function call", calls), measure("baseline: empty with block (class context manager)", with_blocks)]


def bench_mission_control():
    import mission_control as mc

    results = []
    store = tempfile.mkdtemp(prefix="mc-bench-")
    # A big ring so the measurement is the record path, not drops; the pipeline drains to
    # Parquet on its own thread meanwhile.
    control = mc.init(store=store, service="bench", ring_capacity=1 << 20)
    thread = control.thread(agent="bench")

    def llm(n):
        for _ in range(n):
            with thread.llm_call("gpt-4o-mini", "openai") as call:
                call.record_usage(812, 64)

    def tool(n):
        for _ in range(n):
            with thread.tool_call("lookup_order"):
                pass

    @control.tool("lookup_order")
    def decorated():
        return None

    def deco(n):
        for _ in range(n):
            decorated()

    def record(n):
        rec = control.record
        for _ in range(n):
            rec("cache_hit")

    with thread:
        results.append(measure("mission_control: with thread.llm_call(...) + record_usage", llm))
        results.append(measure("mission_control: with thread.tool_call(...)", tool))
        results.append(measure("mission_control: @control.tool decorated call", deco))
    results.append(measure('mission_control: control.record("cache_hit")', record))
    report = control.shutdown()
    acc = report["accounting"]
    print(f"  accounting: recorded {acc['recorded']}, delivered {acc['delivered']}, dropped {acc['dropped']}")
    return results, acc


def bench_opentelemetry():
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
    except ImportError:
        print("opentelemetry-sdk not installed: skipping the comparison")
        return []

    class DropExporter(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

        def shutdown(self):
            pass

    results = []
    for label, processor in [
        ("OpenTelemetry SDK: BatchSpanProcessor", BatchSpanProcessor(DropExporter(), max_queue_size=1 << 20)),
        ("OpenTelemetry SDK: SimpleSpanProcessor", SimpleSpanProcessor(DropExporter())),
    ]:
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("bench")

        def llm(n):
            for _ in range(n):
                with tracer.start_as_current_span("chat gpt-4o-mini") as span:
                    span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                    span.set_attribute("gen_ai.provider.name", "openai")
                    span.set_attribute("gen_ai.usage.input_tokens", 812)
                    span.set_attribute("gen_ai.usage.output_tokens", 64)

        results.append(measure(f"{label}: with start_as_current_span + 4 attributes", llm, n=min(N, 50_000)))
        provider.shutdown()
    return results


def main():
    import mission_control

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; mission_control {mission_control.__version__}; N={N}")
    results = bench_baselines()
    mc_results, accounting = bench_mission_control()
    results += mc_results
    results += bench_opentelemetry()
    if "--json" in sys.argv:
        print(json.dumps({"results": results, "accounting": accounting}))


if __name__ == "__main__":
    main()
