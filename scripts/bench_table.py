"""Summarise criterion's results (target/criterion/*/*/new/estimates.json) as Markdown.

Usage: python3 scripts/bench_table.py LOG [GROUP_PREFIX ...]
Prints the date, the machine, one row per benchmark (mean and 95 % interval), and the
free-form result lines benches print themselves (lines containing "accounted exactly").
"""

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

GROUPS = {
    "record": "record_span",
    "layer": "tracing_layer",
    "throughput": "pipeline_throughput",
    "components": "components",
    "sdk": "sdk_llm_call",
}


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target/bench.log")
    wanted = [GROUPS.get(a, a) for a in sys.argv[2:]] or list(GROUPS.values())
    root = Path("target/criterion")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu_model()}, "
          f"{os.cpu_count()} cores, {rustc}, `cargo bench` (bench profile: lto=fat, codegen-units=1).\n")
    print("| benchmark | mean | 95 % interval | throughput |")
    print("|---|---|---|---|")
    for group in wanted:
        gdir = root / group
        if not gdir.is_dir():
            continue
        for est in sorted(gdir.glob("**/new/estimates.json")):
            bench = est.parent.parent.relative_to(root).as_posix()
            data = json.loads(est.read_text())
            mean = data["mean"]
            lo, hi = mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
            throughput = ""
            bjson = est.parent / "benchmark.json"
            if bjson.exists():
                tp = json.loads(bjson.read_text()).get("throughput") or {}
                if "Elements" in tp:
                    throughput = f"{tp['Elements'] / (mean['point_estimate'] / 1e9) / 1e6:.1f} M events/s"
            print(f"| `{bench}` | {fmt_ns(mean['point_estimate'])} | {fmt_ns(lo)} – {fmt_ns(hi)} | {throughput} |")
    if log.exists():
        # Lines the benches print themselves (the storage bench prints whole Markdown tables).
        extra = [
            l.strip()
            for l in log.read_text().splitlines()
            if "accounted exactly" in l or l.startswith("sdk_latency/") or l.startswith("|") or l.startswith("Query store")
        ]
        if extra:
            print()
            for line in extra:
                print(line if line.startswith("|") else f"- {line}")


if __name__ == "__main__":
    main()
