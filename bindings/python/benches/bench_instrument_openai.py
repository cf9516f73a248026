"""What instrumenting the official OpenAI client adds to one ``client.chat.completions.create``:
the uninstrumented call beside ``mission_control.instrument_openai()`` and, when installed,
``logfire.instrument_openai()`` and Langfuse's OpenAI drop-in, in one run, with
time.perf_counter_ns. A benchmark, not a test: it prints figures and asserts nothing.

    python bindings/python/benches/bench_instrument_openai.py [--calls 2000] [--rounds 7]

Three settings. ``alone``: Mission Control's wrapper around a ``create`` that returns an already
parsed answer (the instrumentation's own cost, without the client's request building and
parsing; ten times as many calls). Two transports, each answered by the tests' fake provider
(bindings/python/tests/fake_llm.py):
- ``in-process``: the client's HTTP transport answers in memory (httpx's MockTransport), so the
  difference between rows is the instrumentation, not loopback networking noise;
- ``loopback``: real HTTP to the fake server on 127.0.0.1 (what an agent sees, noisier).

Rows per transport: the uninstrumented call; Mission Control with the call inside an open span
(``with thread.step(...)``: one LLM-call span) and outside any (a thread per call: two spans);
Logfire (``logfire.configure(send_to_logfire=False, console=False)``, spans kept in process);
Langfuse's drop-in (``from langfuse.openai import openai``, which patches the client globally,
so it runs in a process of its own after an uninstrumented baseline there; its exporter points
at the fake server, which refuses it). Rounds interleave the in-process configurations; each
figure is the median of the rounds' per-call means, and "added" is that minus the median of the
uninstrumented rows of the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_llm import FakeLLM, respond  # noqa: E402

MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


def _httpx():
    try:
        import httpx2 as httpx  # what recent openai releases use
    except ImportError:
        import httpx
    return httpx


def make_client(transport: str, server: FakeLLM):
    import openai

    if transport == "loopback":
        return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    httpx = _httpx()

    def handler(request):
        status, content_type, payload = respond(request.url.path, json.loads(request.content or b"{}"))
        return httpx.Response(status, headers={"content-type": content_type}, content=payload)

    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(base_url="http://fake.invalid/v1", api_key="k", max_retries=0, http_client=http_client)


def timed(calls: int, body) -> float:
    """Mean ns per call of ``calls`` calls of ``body``."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        body()
    return (time.perf_counter_ns() - start) / calls


def report(label: str, samples, base) -> dict:
    median = statistics.median(samples)
    added = None if base is None else median - base
    extra = "" if added is None else f"  added {added / 1000:8.1f} µs"
    print(f"  {label:<58} {median / 1000:9.1f} µs/call{extra}  (min {min(samples) / 1000:.1f}, max {max(samples) / 1000:.1f})",
          flush=True)
    return {"label": label, "median_ns": median, "added_ns": added, "min_ns": min(samples), "max_ns": max(samples)}


def run_in_process(transport: str, calls: int, rounds: int) -> list:
    import mission_control as mc

    server = FakeLLM()
    client = make_client(transport, server)
    control = mc.init(store=tempfile.mkdtemp(prefix="mc-bench-"), service="bench", models=False)

    def create(c=client):
        return lambda: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    thread = control.thread(agent="bench")
    no_span = contextlib.nullcontext
    # (label, instrumented by Mission Control, one call, what each round runs inside)
    configs = [("uninstrumented", False, create(), no_span)]
    configs.append(("mission_control.instrument_openai(), inside a span", True, create(),
                    lambda: thread.step("turn")))
    configs.append(("mission_control.instrument_openai(), a thread per call", True, create(), no_span))
    try:
        import logfire

        logfire.configure(send_to_logfire=False, console=False)
        logfire_client = make_client(transport, server)
        logfire.instrument_openai(logfire_client)
        configs.append(("logfire.instrument_openai()", False, create(logfire_client), no_span))
    except ImportError:
        print("  (logfire not installed: no Logfire row)")
    samples = {label: [] for label, _, _, _ in configs}
    for round_ in range(rounds + 1):  # the first round warms up
        for label, instrumented, body, within in configs:
            if instrumented:
                mc.instrument_openai(control)
            with within():
                took = timed(calls if round_ else max(calls // 10, 10), body)
            mc.uninstrument_openai()
            if round_:
                samples[label].append(took)
    thread.end()
    base = statistics.median(samples["uninstrumented"])
    results = [report(label, samples[label], None if label == "uninstrumented" else base)
               for label, _, _, _ in configs]
    control.shutdown()
    server.close()
    return results


def run_alone(calls: int, rounds: int) -> list:
    """Mission Control's instrumentation alone: its wrapper around a ``create`` that returns an
    already parsed answer at once (no HTTP, no request building), beside that bare function."""
    import openai

    import mission_control as mc
    from mission_control import _instrument, _openai

    status, _, payload = respond("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES})
    assert status == 200
    answer = openai.types.chat.ChatCompletion.model_validate_json(payload)

    def bare(self, **kwargs):
        return answer

    control = mc.init(store=tempfile.mkdtemp(prefix="mc-bench-"), service="bench", models=False)
    wrapped = _instrument.wrap(bare, _openai._ChatHooks(True), control, is_async=False)
    thread = control.thread(agent="bench")
    configs = [
        ("bare create() returning a parsed answer", lambda: bare(None, model="gpt-4o-mini", messages=MESSAGES),
         contextlib.nullcontext),
        ("instrumented, inside a span", lambda: wrapped(None, model="gpt-4o-mini", messages=MESSAGES),
         lambda: thread.step("turn")),
        ("instrumented, a thread per call", lambda: wrapped(None, model="gpt-4o-mini", messages=MESSAGES),
         contextlib.nullcontext),
    ]
    samples = {label: [] for label, _, _ in configs}
    for round_ in range(rounds + 1):  # the first round warms up
        for label, body, within in configs:
            with within():
                took = timed(calls if round_ else max(calls // 10, 10), body)
            if round_:
                samples[label].append(took)
    thread.end()
    base = statistics.median(samples[configs[0][0]])
    results = [report(label, samples[label], None if i == 0 else base) for i, (label, _, _) in enumerate(configs)]
    control.shutdown()
    return results


def run_langfuse(transport: str, calls: int, rounds: int) -> list:
    """In this process: the uninstrumented baseline, then Langfuse's drop-in (it patches openai
    globally on import, so nothing else may run after it here)."""
    server = FakeLLM()
    os.environ.setdefault("LANGFUSE_PUBLIC_KEY", "pk-lf-bench")
    os.environ.setdefault("LANGFUSE_SECRET_KEY", "sk-lf-bench")
    os.environ.setdefault("LANGFUSE_HOST", server.url)
    plain = make_client(transport, server)
    body = lambda: plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # noqa: E731
    timed(max(calls // 10, 10), body)
    base_samples = [timed(calls, body) for _ in range(rounds)]
    from langfuse.openai import openai as lf_openai  # noqa: F401  (patches the client)

    client = make_client(transport, server)
    body = lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # noqa: E731
    timed(max(calls // 10, 10), body)
    samples = [timed(calls, body) for _ in range(rounds)]
    base = statistics.median(base_samples)
    results = [report("uninstrumented (Langfuse's process)", base_samples, None),
               report("langfuse.openai drop-in", samples, base)]
    server.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--transport", choices=["alone", "in-process", "loopback"], action="append")
    parser.add_argument("--langfuse-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.calls <= 1_000_000 or not 1 <= args.rounds <= 100:
        parser.error("--calls must be 1..1000000 and --rounds 1..100")
    transports = args.transport or ["alone", "in-process", "loopback"]
    if args.langfuse_only:
        print(json.dumps({t: run_langfuse(t, args.calls, args.rounds) for t in transports}))
        return
    import mission_control as mc
    import openai

    print(f"python {platform.python_version()} on {platform.machine()} {platform.system()}, "
          f"mission_control {mc.__version__}, openai {openai.__version__}, load {os.getloadavg()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    for transport in transports:
        print(f"== {transport}: {args.calls} calls x {args.rounds} rounds")
        if transport == "alone":
            run_alone(args.calls * 10, args.rounds)
            continue
        run_in_process(transport, args.calls, args.rounds)
        try:
            import langfuse  # noqa: F401
        except ImportError:
            print("  (langfuse not installed: no Langfuse row)")
            continue
        done = subprocess.run([sys.executable, __file__, "--langfuse-only", "--transport", transport,
                               "--calls", str(args.calls), "--rounds", str(args.rounds)],
                              capture_output=True, text=True, timeout=3600)
        print(done.stdout.rsplit("\n", 2)[0] if done.returncode == 0 else f"  Langfuse run failed: {done.stderr[-2000:]}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
