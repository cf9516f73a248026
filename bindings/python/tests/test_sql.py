"""Control.sql: read-only SQL (Apache DataFusion) over the store, as a pyarrow.Table, equal to
what Control.query and DuckDB say; scoped to a tenant whatever the query; refusals are
SqlError."""

import warnings

import pytest

import mission_control as mc
from conftest import rows


def _record(control, tools):
    with control.thread(agent="support-bot") as thread:
        llm = thread.llm_call("gpt-4o-mini", provider="openai")
        llm.record_usage(100, 10)
        llm.end()
        for i in range(tools):
            span = thread.tool_call(f"tool-{i}")
            if i == 0:
                span.set_error("timeout")
            span.end()


@pytest.fixture
def two_tenants(tmp_path):
    """A store with globex's thread (2 tool calls, written and shut down first) and acme's
    (3 tool calls), and the acme instance still running."""
    globex = mc.init(store=tmp_path / "store", service="test-agent", tenant="globex")
    _record(globex, 2)
    globex.shutdown()
    acme = mc.init(store=tmp_path / "store", service="test-agent", tenant="acme")
    _record(acme, 3)
    yield acme
    if not acme.is_shut_down:
        acme.shutdown()


def test_sql_returns_a_pyarrow_table_equal_to_query_and_duckdb(two_tenants):
    import duckdb
    import pyarrow as pa

    control = two_tenants
    table = control.sql("SELECT tenant, name, status FROM tool_calls ORDER BY tenant, name")
    assert isinstance(table, pa.Table)
    assert table.num_rows == 5
    assert table.column("tenant").to_pylist() == ["acme"] * 3 + ["globex"] * 2
    assert table.num_rows == control.query(kind="tool_call").num_rows

    costs = control.sql(
        "SELECT tenant, sum(gen_ai_usage_cost) AS cost, sum(gen_ai_usage_input_tokens) AS tokens "
        "FROM llm_calls GROUP BY tenant ORDER BY tenant"
    ).to_pylist()
    llm = rows(control.query(kind="llm_call"))
    assert [r["tenant"] for r in costs] == ["acme", "globex"]
    for row in costs:
        mine = [e for e in llm if e["tenant"] == row["tenant"]]
        assert row["tokens"] == sum(e["gen_ai_usage_input_tokens"] for e in mine) == 100
        assert row["cost"] == pytest.approx(sum(e["gen_ai_usage_cost"] for e in mine)) and row["cost"] > 0
    events = control.query()  # noqa: F841 - read by DuckDB below, by name
    expected = duckdb.sql("SELECT count(*) FROM events WHERE kind = 'tool_call' AND status = 'error'").fetchall()[0][0]
    assert control.sql("SELECT count(*) AS n FROM tool_calls WHERE status = 'error'").column("n")[0].as_py() == expected == 2
    threads = control.sql("SELECT tenant, spans, errors, tool_calls FROM threads ORDER BY tenant").to_pylist()
    kinds = {"agent_step", "llm_call", "tool_call", "retrieval", "custom"}
    every = rows(control.query())
    expected = []
    for tenant in ("acme", "globex"):
        spans = [e for e in every if e["tenant"] == tenant and e["kind"] in kinds]
        expected.append(
            {
                "tenant": tenant,
                "spans": len(spans),
                "errors": sum(1 for e in spans if e["status"] == "error"),
                "tool_calls": sum(1 for e in spans if e["kind"] == "tool_call"),
            }
        )
    assert threads == expected
    assert [t["tool_calls"] for t in threads] == [3, 2]


def test_a_tenant_sees_only_its_rows_whatever_the_query(two_tenants):
    control = two_tenants
    seen = control.sql("SELECT DISTINCT tenant FROM events", tenant="acme").column("tenant").to_pylist()
    assert seen == ["acme"]
    assert control.sql("SELECT count(*) AS n FROM events WHERE tenant = 'globex'", tenant="acme").column("n")[0].as_py() == 0
    for escape in (
        "SELECT * FROM information_schema.tables",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/'",
        "SELECT * FROM '/etc/passwd'",
    ):
        with pytest.raises(mc.SqlError):
            control.sql(escape, tenant="acme")


def test_refusals_and_limits_are_clear(two_tenants):
    control = two_tenants
    for statement in ("DROP VIEW spans", "INSERT INTO events SELECT * FROM events", "COPY (SELECT 1) TO '/tmp/x.csv'", "SET x = 1"):
        with pytest.raises(mc.SqlError, match="forbidden|not supported|Unsupported"):
            control.sql(statement)
    with pytest.raises(mc.SqlError, match="no_such_column"):
        control.sql("SELECT no_such_column FROM spans")
    with pytest.raises(mc.SqlError, match="longer than"):
        control.sql("SELECT count(*) FROM generate_series(1, 100000000000)", timeout=0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = control.sql("SELECT value FROM generate_series(1, 1000000)", max_rows=500)
    assert table.num_rows == 500
    assert any(issubclass(w.category, mc.TruncatedResultWarning) for w in caught)
    stream = control.sql("SELECT value FROM generate_series(1, 10)", max_rows=5, arrow=False)
    assert stream.truncated and len(stream) == 5
    for bad in (0, -1, 10_000_001, True, 1.5):
        with pytest.raises(ValueError):
            control.sql("SELECT 1", max_rows=bad)
    with pytest.raises(ValueError):
        control.sql("SELECT 1", timeout=0)
    with pytest.raises(TypeError):
        control.sql(b"SELECT 1")
