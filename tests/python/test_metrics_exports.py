"""The dashboard's `/metrics` scraped and parsed by `prometheus_client` (the OpenMetrics parser,
and Prometheus' text parser), its values equal to the health report `/api/overview` shows at the
same moment; and the exports (`/api/export/threads.jsonl`, `.csv`) read back equal to the store's
rows as pyarrow reads them from the Parquet files. A real agent (the dashboard_agent example)
records, flushes, then serves."""

import csv
import io
import json
import os
import pathlib
import subprocess
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN = "admin-token-0123456789"
BETA = "beta-viewer-0123456789"  # a viewer of tenant beta only
DEADLINE_S = 60


def agent_binary():
    exe = os.environ.get("MISSION_DASHBOARD_AGENT")
    if exe:
        return exe
    subprocess.run(
        ["cargo", "build", "-q", "-p", "mission-examples", "--features", "full", "--example", "dashboard_agent"],
        cwd=ROOT,
        check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(pathlib.Path(target) / "debug" / "examples" / "dashboard_agent")


class Agent:
    def __init__(self, store):
        self.store = store
        self.proc = subprocess.Popen(
            [agent_binary(), str(store), "--token", ADMIN, "--tenant-token", f"{BETA}:beta"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = json.loads(self.proc.stdout.readline())["url"].rstrip("/")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert answer["ok"], answer
        return answer

    def get(self, path, token=ADMIN):
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()

    def json(self, path, token=ADMIN):
        return json.loads(self.get(path, token)[2])


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    agent = Agent(tmp_path_factory.mktemp("metrics-agent"))
    agent.command("threads 40")
    agent.command("threads 12 beta")
    agent.command("error")
    agent.command("flush")
    yield agent
    agent.proc.stdin.close()
    agent.proc.wait(timeout=60)


def without_moving_parts(health):
    """The health report without the numbers that move by themselves (the pipeline's lag)."""
    health = json.loads(json.dumps(health))
    if isinstance(health.get("recorder"), dict):
        health["recorder"].pop("pipeline_lag", None)
    return health


def samples(text):
    """{(sample name, frozenset of labels): value} of an OpenMetrics text, by the OpenMetrics parser."""
    out = {}
    for family in openmetrics_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape_at_rest(agent, token):
    """(health of /api/overview, /metrics text, /api/overview): a scrape between two overviews
    whose health reports are equal, so the scrape saw exactly those numbers."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        before = agent.json("/api/overview", token)
        status, headers, text = agent.get("/metrics", token)
        after = agent.json("/api/overview", token)
        if without_moving_parts(before["health"]) == without_moving_parts(after["health"]):
            assert status == 200
            return after["health"], headers, text, after
        assert time.monotonic() < deadline, "the health report never held still"


def value(found, sample, **labels):
    key = (sample, frozenset(labels.items()))
    assert key in found, f"{sample}{labels} is not in the scrape"
    return found[key]


def op_value(found, sample, tenant, kind, name):
    return value(found, sample, **{"tenant": tenant, "kind": kind, "name": name})


def test_metrics_equal_the_health_report(agent):
    health, headers, text, overview = scrape_at_rest(agent, ADMIN)
    assert headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert text.endswith("# EOF\n")
    found = samples(text)
    accounting = health["recorder"]["accounting"]
    assert health["recorded"] > 0
    assert value(found, "mission_events_recorded_total") == health["recorded"] == accounting["recorded"]
    assert value(found, "mission_events_delivered_total") == accounting["delivered"]
    assert value(found, "mission_events_in_flight") == accounting["in_flight"]
    reasons = ["buffer_full", "block_timeout", "after_shutdown", "thread_exit"]
    dropped = [value(found, "mission_events_dropped_total", reason=r) for r in reasons]
    assert dropped == [accounting[f"dropped_{r}"] for r in reasons]
    assert sum(dropped) == health["dropped"]
    assert value(found, "mission_dashboard_lagged_events_total") == health["lagged"]
    assert value(found, "mission_healthy") == int(health["healthy"])
    buffer = health["recorder"]["buffer"]
    assert value(found, "mission_buffer_capacity_events") == buffer["capacity"]
    assert value(found, "mission_buffer_fill_events") == buffer["fill"]
    assert value(found, "mission_pipeline_running") == int(health["recorder"]["pipeline_running"])
    sinks = health["recorder"]["sinks"]
    assert {s["name"] for s in sinks} >= {"parquet", "live-hub"}
    for sink in sinks:
        for state in ["ok", "failing", "disabled"]:
            want = int(sink["state"] == state)
            assert value(found, "mission_sink_state", sink=sink["name"], state=state) == want
        for field in ["batches", "events", "errors", "failed_events", "panics", "skipped_events"]:
            assert value(found, f"mission_sink_{field}_total", sink=sink["name"]) == sink[field], field
    for section, prefix in [("directives", "mission_directives"), ("models", "mission_models"), ("in_flight", "mission_spans")]:
        numbers = {k: v for k, v in (health[section] or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert numbers, section
        for key, want in numbers.items():
            got = found.get((f"{prefix}_{key}_total", frozenset()), found.get((f"{prefix}_{key}", frozenset())))
            assert got == want, f"{section}.{key}: {got} != {want}"
    assert value(found, "mission_directives_events_total") > 0

    # The latency histograms count the spans the overview counts, per operation (over tenants).
    count, errors, buckets = {}, {}, {}
    for (name, labels), v in found.items():
        labels = dict(labels)
        if name.startswith("mission_operation_"):
            op = (labels["kind"], labels["name"])
            if name == "mission_operation_duration_seconds_count":
                count[op] = count.get(op, 0) + v
            elif name == "mission_operation_errors_total":
                errors[op] = errors.get(op, 0) + v
            elif name == "mission_operation_duration_seconds_bucket":
                le = float(labels["le"])
                buckets.setdefault((labels["tenant"], *op), []).append((le, v))
    ops = {(o["kind"], o["name"]): o for o in overview["operations"]}
    assert ops and set(count) == set(ops)
    for op, o in ops.items():
        assert count[op] == o["count"], op
        assert errors[op] == o["errors"], op
    assert errors[("tool_call", "web_search")] >= 1
    for series, points in buckets.items():
        points.sort()
        assert points[-1][0] == float("inf")
        assert all(a[1] <= b[1] for a, b in zip(points, points[1:])), series
        assert points[-1][1] == op_value(found, "mission_operation_duration_seconds_count", *series)

    # Prometheus' own text parser reads the same numbers.
    plain = {s.name: s.value for f in prometheus_families(text) for s in f.samples if not s.labels}
    assert plain["mission_events_recorded_total"] == health["recorded"]


def test_a_tenant_token_scrapes_its_own_series_only(agent):
    with pytest.raises(urllib.error.HTTPError) as refused:
        agent.get("/metrics", None)
    assert refused.value.code == 401
    health, _, text, overview = scrape_at_rest(agent, BETA)
    found = samples(text)
    assert value(found, "mission_events_recorded_total") == health["recorded"] == overview["events_total"] > 0
    tenants = {dict(labels).get("tenant") for (_, labels) in found} - {None}
    assert tenants == {"beta"}
    assert "acme" not in text
    assert not any(name.startswith(("mission_events_dropped", "mission_events_delivered", "mission_directives")) for name, _ in found)
    assert value(found, "mission_sink_state", sink="parquet", state="ok") == 1
    ops = {(o["kind"], o["name"]): o["count"] for o in overview["operations"]}
    for (kind, name), want in ops.items():
        assert op_value(found, "mission_operation_duration_seconds_count", "beta", kind, name) == want


def store_spans(store):
    """{thread_id: sorted [(span_id hex, kind, name, duration_ns, status)]} of the store's spans."""
    table = ds.dataset(f"{store}/events", format="parquet", partitioning="hive").to_table()
    spans = table.filter(pc.is_valid(table["duration_ns"]))
    out = {}
    for row in spans.select(["thread_id", "span_id", "kind", "name", "duration_ns", "status"]).to_pylist():
        out.setdefault(row["thread_id"], []).append(
            (f"{row['span_id']:016x}", str(row["kind"]), str(row["name"]), row["duration_ns"], str(row["status"]))
        )
    return {k: sorted(v) for k, v in out.items()}


def test_the_jsonl_export_reads_back_as_the_stores_rows(agent):
    status, headers, body = agent.get("/api/export/threads.jsonl")
    assert status == 200
    assert headers["content-type"].startswith("application/x-ndjson")
    assert headers["x-mission-truncated"] == "false"
    lines = [json.loads(line) for line in body.splitlines()]
    exported = {
        line["thread_id"]: sorted(
            (s["span_id"], s["kind"], s["name"], round(s["duration_ms"] * 1e6), s["status"]) for s in line["spans"]
        )
        for line in lines
    }
    stored = store_spans(agent.store)
    assert len(exported) == len(lines) == len(stored) == 40 + 12 + 1
    assert exported == stored
    # A line's spans are the thread view's.
    line = lines[0]
    view = agent.json(f"/api/threads/{line['thread_id']}")
    assert line["spans"] == view["spans"]
    assert line["logs"] == view["logs"]
    # A tenant's export holds its own threads only.
    beta = [json.loads(l) for l in agent.get("/api/export/threads.jsonl", BETA)[2].splitlines()]
    assert len(beta) == 12 and {l["tenant"] for l in beta} == {"beta"}


def test_the_csv_export_has_one_row_per_thread_summary(agent):
    status, headers, body = agent.get("/api/export/threads.csv?limit=1000")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    summaries = {t["thread_id"]: t for t in agent.json("/api/threads?limit=1000")["threads"]}
    assert len(rows) == len(summaries) == 53
    for row in rows:
        want = summaries[row["thread_id"]]
        for field in ["tenant", "agent", "status"]:
            assert row[field] == want[field]
        for field in ["spans", "llm_calls", "tool_calls", "errors", "input_tokens", "output_tokens", "start_ns"]:
            assert int(row[field]) == want[field], field
        assert float(row["cost_usd"]) == pytest.approx(want["cost_usd"], rel=1e-12)
    cut = agent.get("/api/export/threads.csv?limit=5")
    assert cut[1]["x-mission-truncated"] == "true"
    assert len(list(csv.DictReader(io.StringIO(cut[2])))) == 5
    with pytest.raises(urllib.error.HTTPError) as bad:
        agent.get("/api/export/threads.csv?limit=0")
    assert bad.value.code == 400
