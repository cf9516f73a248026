"""Manual run of Mission Control's OTLP export against Arize Phoenix (issue 15, section 6)."""
import sys, tempfile, time

import mission_control as mc

endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:6006"
for label, switches in (("all signals on", {}), ("logs and metrics off", {"otlp_logs": False, "otlp_metrics": False})):
    c = mc.init(store=tempfile.mkdtemp(), service="phoenix-check", otlp_endpoint=endpoint, models=False, **switches)
    for i in range(20):
        with c.thread(agent="support-bot") as thread:
            with thread.llm_call("gpt-4o-mini", provider="openai"):
                pass
            with thread.tool_call("web_search"):
                pass
            thread.log("info", f"one log line {i}")
    t0 = time.monotonic()
    error = None
    try:
        c.flush()
    except Exception as e:  # noqa: BLE001
        error = repr(e)
    t1 = time.monotonic()
    c.query(kind="llm_call")
    t2 = time.monotonic()
    otlp = c.health()["otlp"]
    t3 = time.monotonic()
    c.shutdown()
    t4 = time.monotonic()
    print(f"{label}: flush {t1 - t0:.3f}s (error: {error}), query {t2 - t1:.3f}s, shutdown {t4 - t3:.3f}s")
    for s in ("traces", "logs", "metrics"):
        x = otlp[s]
        print(f"  {s}: enabled={x['enabled']} accepted={x['accepted']} exported={x['exported']} rejected={x['rejected']} "
              f"healthy={x['healthy']} backend_up={x['backend_up']} last_rejection={x['last_rejection']!r}")
    print(f"  otlp healthy: {otlp['healthy']}")
