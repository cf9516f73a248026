"""Mission Control's Python quick start: a simulated support agent records a few hundred
conversations (LLM calls, tool calls that sometimes fail, logs), then prints what Mission Control
saw and how to read the store.

    pip install ./bindings/python            # or from PyPI: pip install mission-control-observability
                                             # add [arrow] for query results as pyarrow Tables
    python examples/python/quickstart.py [--threads 500] [--store ./mission-data]

Works with or without pyarrow: without it, ``control.query`` returns an Arrow stream that
Polars and DuckDB read as it is, and ``len()`` counts its rows.
"""

import argparse
import asyncio
import logging
import random
import time

import mission_control as mc

if not hasattr(mc, "init"):
    # The unrelated PyPI package `mission-control` ships a `mission_control` module too; when it
    # was installed after ours, its (empty) __init__.py is what got imported.
    raise SystemExit(
        f"'import mission_control' found {getattr(mc, '__file__', None) or 'a module'}, which is not "
        "Mission Control: the unrelated PyPI package 'mission-control' ships a module of the same "
        "name. Run: pip uninstall mission-control mission-control-observability && "
        "pip install mission-control-observability"
    )

MODELS = [("openai", "gpt-4o-mini", 0.9), ("anthropic", "claude-3-5-haiku", 1.1), ("openai", "gpt-4o", 1.6)]
TOOLS = [("web_search", 0.04), ("lookup_order", 0.01), ("send_email", 0.02), ("run_sql", 0.06)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=500)
    parser.add_argument("--store", default="./mission-data")
    args = parser.parse_args()

    control = mc.init(store=args.store, service="support-bot")
    log = logging.getLogger("support-bot")
    log.addHandler(control.handler())
    log.setLevel(logging.INFO)
    rng = random.Random(42)

    @control.tool("lookup_order")
    async def lookup_order(order_id):
        await asyncio.sleep(0)  # a real agent awaits its order service here
        if rng.random() < 0.01:
            raise TimeoutError(f"order service timed out for {order_id}")
        return {"order": order_id, "status": "shipped"}

    async def conversation(i):
        with control.thread(agent="support-bot", user_id=f"u-{i % 50}") as thread:
            for turn in range(rng.randint(1, 4)):
                provider, model, _ = rng.choice(MODELS)
                with thread.llm_call(model=model, provider=provider) as call:
                    call.record_usage(input_tokens=rng.randint(200, 3000), output_tokens=rng.randint(20, 600))
                tool, failure_rate = rng.choice(TOOLS)
                try:
                    if tool == "lookup_order":
                        await lookup_order(1000 + i)
                    else:
                        with thread.tool_call(tool, arguments={"turn": turn}) as span:
                            if rng.random() < failure_rate:
                                raise ConnectionError(f"{tool} upstream returned 503")
                            span.set_result(size=rng.randint(1, 20))
                except (ConnectionError, TimeoutError) as e:
                    log.warning("tool failed, continuing: %s", e)

    async def run_all():
        await asyncio.gather(*(conversation(i) for i in range(args.threads)))

    started = time.perf_counter()
    asyncio.run(run_all())
    elapsed = time.perf_counter() - started
    control.flush()
    stats = control.stats()
    health = control.health()
    usage = stats["usage"]
    print(f"Recorded {args.threads} conversations in {elapsed * 1000:.0f} ms")
    print(f"LLM calls: {usage['llm_calls']}, tokens in/out: {usage['input_tokens']}/{usage['output_tokens']}, cost ${usage['cost_usd']:.4f}")
    accounting = health["recorder"]["accounting"]
    print(f"Events: recorded {accounting['recorded']}, delivered {accounting['delivered']}, dropped {accounting['dropped']}")
    failed = control.query(kind="tool_call", status="error")  # a pyarrow.Table, or without pyarrow an Arrow stream
    example = failed.column("error_message")[0] if hasattr(failed, "column") and len(failed) else "-"
    print(f"Failed tool calls: {len(failed)} (e.g. {example})")
    print(f"Store: {control.store_root} — read it with DuckDB:")
    print(f"  duckdb -c \"SELECT name, count(*) FROM read_parquet('{control.store_root}/events/**/*.parquet', hive_partitioning=true) GROUP BY name\"")
    control.shutdown()


if __name__ == "__main__":
    main()
