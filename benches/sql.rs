//! SQL over the store (issue 19): Apache DataFusion through the release `mission-ctl sql`
//! beside DuckDB (Python) on the same files, in one run, answers checked equal.
//!
//! The store is the storage bench's: [`generate_store`] writes 100 M LLM and tool span events
//! over 24 h (`MISSION_BENCH_STORE_EVENTS` changes the count). Three queries, written once per
//! engine over the stored columns (DuckDB reads
//! `read_parquet('<root>/events/**/*.parquet', hive_partitioning = true)` and cannot see our
//! views, so both filter on `kind` — `mission-ctl` through its views):
//!
//! 1. cost by model over 24 h (the last 24 whole hours of the store);
//! 2. p95 duration by operation (span name) over one hour (exact `percentile_cont`, on
//!    `DOUBLE` in both engines);
//! 3. one thread's spans by id (a thread from the middle of the day).
//!
//! Timings, each a separate process unless said otherwise:
//! - `mission-ctl sql ... --format json`: process wall time (start, store listing, engine
//!   set-up reading every file's footer, the query, JSON out); the first run ("cold": nothing
//!   cached in any process of ours; the OS page cache holds what earlier runs read) and the
//!   median of 5 more. The CLI does not print its own query time, so the fixed part is
//!   measured apart: `SELECT 1` through the same command.
//! - DuckDB: `python3 benches/sql_duckdb.py once SQL`, process wall time (Python start and
//!   `import duckdb` included; `SELECT 1` measures that part), cold and median of 5, plus the
//!   script's own in-process time of the query (connect, run, fetch every row) in those fresh
//!   processes, and the median of 5 repeats on one open connection (`warm`).
//!
//! Environment:
//! - `MISSION_BENCH_SQL_STORE=DIR`: use the store at DIR if it has files, else generate it
//!   there and keep it (default: a temporary directory, deleted at the end).
//! - `MISSION_CTL`: the `mission-ctl` binary (default: the one next to this bench's profile
//!   directory, `target/release/mission-ctl`; build it with
//!   `cargo build --release -p mission-ctl`).
//! - `MISSION_BENCH_PYTHON`: a Python with the `duckdb` package (default `python3`).
//!
//! Run: `cargo bench --profile release -p mission-benches --bench sql`. Prints a Markdown
//! report; results are recorded in `benches/RESULTS.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::{Array, StringArray};
use mission_benches::{dir_bytes, generate_store};
use mission_core::Timestamp;
use mission_store::Store;
use serde_json::Value;

const SPAN_KINDS: &str = "('agent_step', 'llm_call', 'tool_call', 'retrieval', 'custom')";
const WARM_RUNS: usize = 5;

/// The store's directory, deleted at the end unless it was given.
struct StoreDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// One query, in each engine's SQL, with the columns of its answer.
struct Case {
    label: String,
    columns: &'static [&'static str],
    datafusion: String,
    duckdb: String,
}

/// `secs` since the epoch as RFC 3339 UTC text (`2026-12-06T04:00:00Z`).
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn cases(store: &Store, root: &Path) -> Vec<Case> {
    // The end of the store's last hour partition, in seconds.
    let end = store
        .files()
        .iter()
        .map(|f| f.partition.day * 86_400 + i64::from(f.partition.hour) * 3600 + 3600)
        .max()
        .expect("the store has files");
    let start = store
        .files()
        .iter()
        .map(|f| f.partition.day * 86_400 + i64::from(f.partition.hour) * 3600)
        .min()
        .expect("the store has files");
    // A thread from the middle of the store.
    let mid = ((start + end) / 2) as u64 * 1_000_000_000;
    let batches = store
        .query()
        .time_range(Timestamp(mid), Timestamp(mid + 1_000_000_000))
        .columns(&["thread_id"])
        .limit(1)
        .batches()
        .expect("probe query");
    let probe = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column_by_name("thread_id"))
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().map(|s| s.value(0).to_string()))
        .expect("a thread in the middle of the store");
    let events =
        format!("read_parquet('{}/events/**/*.parquet', hive_partitioning = true)", root.display());
    let (day_from, day_to) = (rfc3339(end - 86_400), rfc3339(end));
    let (hour_from, hour_to) = (rfc3339(end - 3 * 3600), rfc3339(end - 2 * 3600));
    let window =
        |ts: &str, from: &str, to: &str| format!("time >= {ts} '{from}' AND time < {ts} '{to}'");
    vec![
        Case {
            label: format!("cost by model over 24 h ({day_from} to {day_to})"),
            columns: &["model", "calls", "cost"],
            datafusion: format!(
                "SELECT CAST(gen_ai_request_model AS VARCHAR) AS model, count(*) AS calls, \
                 sum(gen_ai_usage_cost) AS cost FROM llm_calls WHERE {} GROUP BY 1 ORDER BY 1",
                window("TIMESTAMP", &day_from, &day_to)
            ),
            duckdb: format!(
                "SELECT gen_ai_request_model AS model, count(*) AS calls, \
                 sum(gen_ai_usage_cost) AS cost FROM {events} \
                 WHERE kind = 'llm_call' AND {} GROUP BY 1 ORDER BY 1",
                window("TIMESTAMPTZ", &day_from, &day_to)
            ),
        },
        Case {
            label: format!("p95 duration by operation over 1 h ({hour_from} to {hour_to})"),
            columns: &["operation", "spans", "p95_ns"],
            datafusion: format!(
                "SELECT CAST(name AS VARCHAR) AS operation, count(*) AS spans, \
                 percentile_cont(0.95) WITHIN GROUP (ORDER BY CAST(duration_ns AS DOUBLE)) \
                 AS p95_ns FROM spans WHERE {} GROUP BY 1 ORDER BY 1",
                window("TIMESTAMP", &hour_from, &hour_to)
            ),
            duckdb: format!(
                "SELECT name AS operation, count(*) AS spans, \
                 percentile_cont(0.95) WITHIN GROUP (ORDER BY CAST(duration_ns AS DOUBLE)) \
                 AS p95_ns FROM {events} WHERE kind IN {SPAN_KINDS} AND {} \
                 GROUP BY 1 ORDER BY 1",
                window("TIMESTAMPTZ", &hour_from, &hour_to)
            ),
        },
        Case {
            label: format!("one thread by id (`{probe}`)"),
            columns: &[
                "span_id",
                "parent_span_id",
                "name",
                "kind",
                "time_ns",
                "duration_ns",
                "status",
                "cost",
            ],
            datafusion: format!(
                "SELECT span_id, parent_span_id, CAST(name AS VARCHAR) AS name, \
                 CAST(kind AS VARCHAR) AS kind, CAST(time AS BIGINT) AS time_ns, duration_ns, \
                 CAST(status AS VARCHAR) AS status, gen_ai_usage_cost AS cost \
                 FROM events WHERE thread_id = '{probe}' ORDER BY time_ns, span_id"
            ),
            duckdb: format!(
                "SELECT span_id, parent_span_id, name, kind, epoch_ns(time) AS time_ns, \
                 duration_ns, status, gen_ai_usage_cost AS cost \
                 FROM {events} WHERE thread_id = '{probe}' ORDER BY time_ns, span_id"
            ),
        },
    ]
}

fn mission_ctl() -> PathBuf {
    if let Some(path) = std::env::var_os("MISSION_CTL") {
        return path.into();
    }
    // This bench runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile directory");
    let path = profile_dir.join("mission-ctl");
    assert!(
        path.exists(),
        "no {}: build it first (`cargo build --release -p mission-ctl`) or set MISSION_CTL",
        path.display()
    );
    path
}

/// A process run: wall time and its stdout as JSON.
fn run(command: &mut Command) -> (Duration, Value) {
    let started = Instant::now();
    let output = command.output().expect("start the process");
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{command:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
    });
    (wall, json)
}

/// `mission-ctl sql`: wall time and the rows, in `columns` order (JSON objects; nulls are
/// left out of them).
fn ctl(binary: &Path, root: &Path, sql: &str, columns: &[&str]) -> (Duration, Vec<Vec<Value>>) {
    let (wall, json) = run(Command::new(binary).args([
        "sql",
        sql,
        "--store",
        &root.to_string_lossy(),
        "--format",
        "json",
        "--max-rows",
        "1000000",
        "--timeout",
        "3600",
    ]));
    let rows = json
        .as_array()
        .expect("an array of rows")
        .iter()
        .map(|row| {
            let row = row.as_object().expect("a row object");
            columns.iter().map(|c| row.get(*c).cloned().unwrap_or(Value::Null)).collect()
        })
        .collect();
    (wall, rows)
}

/// DuckDB's run: wall time, the script's answer (rows in `columns` order) and its in-process
/// times (first run, then the repeats of `warm`).
struct Duck {
    wall: Duration,
    rows: Vec<Vec<Value>>,
    elapsed: f64,
    warm: Vec<f64>,
    version: String,
    threads: String,
}

fn duck(python: &str, script: &Path, sql: &str, columns: &[&str], warm: usize) -> Duck {
    let mut command = Command::new(python);
    command.arg(script);
    if warm > 0 {
        command.args(["warm", sql, &warm.to_string()]);
    } else {
        command.args(["once", sql]);
    }
    let (wall, json) = run(&mut command);
    let names: Vec<&str> = json["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("a column name"))
        .collect();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| names.iter().position(|n| n == c).unwrap_or_else(|| panic!("no column {c}")))
        .collect();
    let rows = json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| index.iter().map(|&i| r[i].clone()).collect())
        .collect();
    Duck {
        wall,
        rows,
        elapsed: json["elapsed_ms"].as_f64().expect("elapsed_ms"),
        warm: json["warm_ms"]
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        version: json["duckdb"].as_str().unwrap_or("?").to_string(),
        threads: json["threads"].to_string(),
    }
}

/// Whether two answers are the same: integers and text exactly, other numbers to 1e-9
/// relative (sums and interpolations in a different order).
fn same(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    let value = |x: &Value, y: &Value| match (x, y) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), ..) => x == y,
                (.., Some(x), Some(y)) => x == y,
                _ => {
                    let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300)
                }
            }
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| value(x, y)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n: u64 = std::env::var("MISSION_BENCH_STORE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000_000);
    let dir = match std::env::var_os("MISSION_BENCH_SQL_STORE") {
        Some(path) => StoreDir { path: path.into(), keep: true },
        None => StoreDir {
            path: std::env::temp_dir().join(format!("mission-bench-sql-{}", std::process::id())),
            keep: false,
        },
    };
    let root = dir.path.clone();
    let reuse = dir_bytes(&root) > 0;
    let generated = if reuse {
        None
    } else {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("store directory");
        Some(generate_store(&root, n).0)
    };
    let store = Store::open(&root).expect("open the store");
    let rows_total: u64 = store.query().count().expect("count");
    let bytes = dir_bytes(&root);
    let cases = cases(&store, &root);
    let binary = mission_ctl();
    let python = std::env::var("MISSION_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql_duckdb.py");

    println!("## SQL: DataFusion (`mission-ctl sql`) beside DuckDB\n");
    match generated {
        Some(took) => println!(
            "Store: {rows_total} span events over 24 h in {} files, {:.2} GB on disk, \
             generated in {:.1} s.",
            store.files().len(),
            bytes as f64 / 1e9,
            took.as_secs_f64()
        ),
        None => println!(
            "Store: {rows_total} events in {} files, {:.2} GB on disk (reused: {}).",
            store.files().len(),
            bytes as f64 / 1e9,
            root.display()
        ),
    }
    drop(store);

    // The fixed part of each process: `SELECT 1`.
    let ctl_fixed = median(
        (0..WARM_RUNS).map(|_| ms(ctl(&binary, &root, "SELECT 1 AS one", &["one"]).0)).collect(),
    );
    let duck_fixed: Vec<Duck> =
        (0..WARM_RUNS).map(|_| duck(&python, &script, "SELECT 1 AS one", &["one"], 0)).collect();
    println!(
        "DuckDB {} (Python, threads = {}); `mission-ctl` at {}.\n",
        duck_fixed[0].version,
        duck_fixed[0].threads,
        binary.display()
    );
    println!(
        "| query | rows | `mission-ctl sql` cold | `mission-ctl sql` warm (median of {WARM_RUNS}) \
         | DuckDB process cold | DuckDB process warm (median of {WARM_RUNS}) \
         | DuckDB in-process, fresh process (median of {WARM_RUNS}) \
         | DuckDB in-process, same connection (median of {WARM_RUNS}) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| `SELECT 1` (fixed cost of a process) | 1 | — | {ctl_fixed:.1} ms | — | {:.1} ms | {:.1} ms | — |",
        median(duck_fixed.iter().map(|d| ms(d.wall)).collect()),
        median(duck_fixed.iter().map(|d| d.elapsed).collect()),
    );
    let mut answers = Vec::new();
    for case in &cases {
        let (ctl_cold, ctl_rows) = ctl(&binary, &root, &case.datafusion, case.columns);
        let duck_cold = duck(&python, &script, &case.duckdb, case.columns, 0);
        assert!(
            same(&ctl_rows, &duck_cold.rows),
            "the engines disagree on {}:\nDataFusion: {ctl_rows:?}\nDuckDB: {:?}",
            case.label,
            duck_cold.rows
        );
        assert!(!ctl_rows.is_empty(), "no rows for {}", case.label);
        let ctl_warm: Vec<f64> = (0..WARM_RUNS)
            .map(|_| {
                let (wall, rows) = ctl(&binary, &root, &case.datafusion, case.columns);
                assert!(same(&rows, &ctl_rows), "mission-ctl changed its answer");
                ms(wall)
            })
            .collect();
        let duck_warm: Vec<Duck> = (0..WARM_RUNS)
            .map(|_| {
                let d = duck(&python, &script, &case.duckdb, case.columns, 0);
                assert!(same(&d.rows, &ctl_rows), "DuckDB changed its answer");
                d
            })
            .collect();
        let same_connection = duck(&python, &script, &case.duckdb, case.columns, WARM_RUNS);
        assert!(same(&same_connection.rows, &ctl_rows), "DuckDB changed its answer");
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            case.label,
            ctl_rows.len(),
            ms(ctl_cold),
            median(ctl_warm),
            ms(duck_cold.wall),
            median(duck_warm.iter().map(|d| ms(d.wall)).collect()),
            median(duck_warm.iter().map(|d| d.elapsed).collect()),
            median(same_connection.warm.clone()),
        );
        answers.push((case, ctl_rows));
    }
    println!("\nAnswers (the same in both engines, checked):\n");
    for (case, rows) in answers {
        println!("- {}: `{}`", case.label, case.columns.join(", "));
        for row in rows.iter().take(8) {
            let cells: Vec<String> = row.iter().map(Value::to_string).collect();
            println!("  - {}", cells.join(", "));
        }
    }
    println!("\nSQL, DataFusion (`mission-ctl sql`):\n");
    for case in &cases {
        println!("    {}", case.datafusion);
    }
    println!("\nSQL, DuckDB:\n");
    for case in &cases {
        println!("    {}", case.duckdb);
    }
}
