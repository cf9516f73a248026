"""A store written by Mission Control's Rust side, read unchanged by pyarrow, DuckDB and Polars."""

import json
import math

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def text(column):
    """A dictionary-encoded column as plain strings."""
    return pc.cast(column, pa.string())


def glob(directory):
    return f"{directory}/events/**/*.parquet"


def per_thread_from_arrow(table):
    spans = table.filter(pc.is_valid(table["duration_ns"]))
    grouped = spans.group_by("thread_id").aggregate([
        ("duration_ns", "count"),
        ("gen_ai_usage_input_tokens", "sum"),
        ("gen_ai_usage_output_tokens", "sum"),
        ("gen_ai_usage_cost", "sum"),
    ])
    return {
        row["thread_id"]: row
        for row in grouped.to_pylist()
    }


def test_pyarrow_dataset_with_hive_partitioning(store):
    directory, expected = store
    dataset = ds.dataset(f"{directory}/events", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == expected["events"] == expected["delivered"]
    schema = table.schema
    assert schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("span_id").type == pa.uint64()
    assert schema.field("gen_ai_usage_input_tokens").type == pa.int64()
    assert pa.types.is_map(schema.field("attributes").type)
    assert pa.types.is_dictionary(schema.field("gen_ai_agent_name").type)
    assert set(table["tenant"].to_pylist()) == {"tenant-0", "tenant-1"}
    kinds = pc.value_counts(text(table["kind"])).to_pylist()
    counts = {k["values"]: k["counts"] for k in kinds}
    assert counts["llm_call"] == expected["llm_calls"]
    assert counts["tool_call"] == expected["tool_calls"]
    assert counts["agent_step"] == expected["agent_steps"]
    assert counts["log"] == expected["logs"]
    assert counts["permission"] == expected["permissions"]
    assert pc.sum(table["gen_ai_usage_input_tokens"]).as_py() == expected["input_tokens"]
    assert math.isclose(pc.sum(table["gen_ai_usage_cost"]).as_py(), expected["cost_usd"], rel_tol=1e-9)
    assert pc.sum(pc.equal(text(table["status"]), "error")).as_py() == expected["errors"]
    # A per-thread aggregate equals the Rust reader's thread summaries.
    threads = per_thread_from_arrow(table)
    assert len(threads) == len(expected["threads"]) == 400
    for thread_id, want in expected["threads"].items():
        got = threads[thread_id]
        assert got["duration_ns_count"] == want["spans"]
        assert (got["gen_ai_usage_input_tokens_sum"] or 0) == want["input_tokens"]
        assert (got["gen_ai_usage_output_tokens_sum"] or 0) == want["output_tokens"]
        assert math.isclose(got["gen_ai_usage_cost_sum"] or 0.0, want["cost_usd"], rel_tol=1e-9, abs_tol=1e-12)
    # Attributes are a map: look a key up without parsing text.
    steps = table.filter(pc.equal(text(table["kind"]), "agent_step"))
    users = pc.map_lookup(steps["attributes"], pa.scalar("user.id"), "first")
    assert pc.all(pc.starts_with(users, "u-")).as_py()


def test_duckdb_read_parquet_hive(store):
    directory, expected = store
    con = duckdb.connect()
    source = f"read_parquet('{glob(directory)}', hive_partitioning = true)"
    total, tokens, cost = con.execute(
        f"SELECT count(*), sum(gen_ai_usage_input_tokens), sum(gen_ai_usage_cost) FROM {source}"
    ).fetchone()
    assert total == expected["events"]
    assert tokens == expected["input_tokens"]
    assert math.isclose(cost, expected["cost_usd"], rel_tol=1e-9)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source})").fetchall())
    assert types["time"].startswith("TIMESTAMP")  # TIMESTAMPTZ_NS in DuckDB ≥ 1.4
    assert types["span_id"] == "UBIGINT"
    assert types["attributes"].startswith("MAP(VARCHAR, VARCHAR)")
    assert types["tenant"] == "VARCHAR"
    rows = con.execute(f"""
        SELECT thread_id, count(duration_ns) AS spans,
               coalesce(sum(gen_ai_usage_input_tokens), 0) AS input_tokens,
               coalesce(sum(gen_ai_usage_cost), 0) AS cost,
               count(*) FILTER (WHERE status = 'error') AS errors,
               any_value(tenant) AS tenant, any_value(gen_ai_agent_name) AS agent
        FROM {source} WHERE thread_id IS NOT NULL GROUP BY thread_id
    """).fetchall()
    assert len(rows) == len(expected["threads"])
    for thread_id, spans, input_tokens, cost, errors, tenant, agent in rows:
        want = expected["threads"][thread_id]
        assert (spans, input_tokens, errors, tenant, agent) == (
            want["spans"], want["input_tokens"], want["errors"], want["tenant"], want["agent"])
        assert math.isclose(cost, want["cost_usd"], rel_tol=1e-9, abs_tol=1e-12)
    user_rows = con.execute(
        f"SELECT count(*) FROM {source} WHERE kind = 'agent_step' AND attributes['user.id'] LIKE 'u-%'"
    ).fetchone()[0]
    assert user_rows == expected["agent_steps"]
    denied = con.execute(f"SELECT count(*) FROM {source} WHERE permission_decision = 'deny'").fetchone()[0]
    assert denied == expected["denials"]


def test_polars_scan_parquet_hive(store):
    directory, expected = store
    frame = pl.scan_parquet(glob(directory), hive_partitioning=True).collect()
    assert frame.height == expected["events"]
    assert frame.schema["time"] == pl.Datetime("ns", "UTC")
    assert frame.schema["span_id"] == pl.UInt64
    llm = frame.filter(pl.col("kind") == "llm_call")
    assert llm.height == expected["llm_calls"]
    assert llm["gen_ai_usage_output_tokens"].sum() == expected["output_tokens"]
    per_thread = (
        frame.filter(pl.col("duration_ns").is_not_null())
        .group_by("thread_id")
        .agg(pl.len().alias("spans"), pl.col("gen_ai_usage_cost").sum().alias("cost"))
    )
    assert per_thread.height == len(expected["threads"])
    for row in per_thread.iter_rows(named=True):
        want = expected["threads"][row["thread_id"]]
        assert row["spans"] == want["spans"]
        assert math.isclose(row["cost"], want["cost_usd"], rel_tol=1e-9, abs_tol=1e-12)
    assert set(frame["tenant"].unique().to_list()) == {"tenant-0", "tenant-1"}


def test_every_file_carries_version_and_accounting(store):
    directory, expected = store
    files = sorted(directory.glob("events/**/*.parquet"))
    assert len(files) == expected["files"] >= 2
    assert not list(directory.glob("events/**/*.tmp")), "no temporary file is left after shutdown"
    last = None
    for path in files:
        meta = pq.read_metadata(path).metadata
        assert meta[b"mission.schema_version"] == b"2"
        accounting = json.loads(meta[b"mission.accounting"])
        assert accounting["recorded"] == accounting["delivered"] + accounting["dropped"] + accounting["in_flight"]
        assert accounting["dropped"] == 0
        last = max(last or 0, accounting["delivered"])
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert last <= expected["events"]
