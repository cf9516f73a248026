"""DuckDB's side of the SQL bench (benches/sql.rs): runs one query and prints the answer and
its timing as one JSON object on stdout.

    python3 sql_duckdb.py once SQL        # one run in this fresh process
    python3 sql_duckdb.py warm SQL N      # a first run, then N more on the same connection

`elapsed_ms` is in-process time: from before `duckdb.connect()` (a fresh in-memory database)
to the last row fetched, not counting `import duckdb`; `warm` adds `warm_ms`, the N repeats
(connection open, DuckDB's caches as they are after the first run). The SQL reads the store
itself (`read_parquet('<root>/events/**/*.parquet', hive_partitioning = true)`).
"""

import json
import sys
import time

import duckdb


def run(con, sql):
    started = time.perf_counter()
    relation = con.sql(sql)
    rows = relation.fetchall()
    elapsed = (time.perf_counter() - started) * 1e3
    return relation.columns, rows, elapsed


def main():
    mode, sql = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    con = duckdb.connect()
    opened = (time.perf_counter() - started) * 1e3
    columns, rows, elapsed = run(con, sql)
    out = {
        "duckdb": duckdb.__version__,
        "threads": con.sql("SELECT current_setting('threads')").fetchall()[0][0],
        "columns": columns,
        "rows": [list(r) for r in rows],
        "elapsed_ms": opened + elapsed,
    }
    if mode == "warm":
        out["warm_ms"] = [run(con, sql)[2] for _ in range(int(sys.argv[3]))]
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
