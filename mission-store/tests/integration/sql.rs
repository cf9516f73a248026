//! SQL over the store (feature `sql`): the same answers as the query API, a tenant scope no
//! query escapes, only read-only queries, and every answer bounded.

use std::time::Duration;

use arrow::array::{Array, Float64Array, Int64Array, StringArray};
use mission_core::Timestamp;
use mission_store::sql::{SqlEngine, SqlError, SqlLimits};
use mission_store::{GroupBy, Store, StoreConfig};

use crate::{TempDir, thread_events, write};

/// Three threads of acme and two of globex, each with every kind of event.
fn store(dir: &TempDir) {
    let start = Timestamp::now().0 - 120_000_000_000;
    let mut events = Vec::new();
    for i in 0..3 {
        events.extend(thread_events("acme", "support-bot", start + i * 10_000_000));
    }
    for i in 0..2 {
        events.extend(thread_events("globex", "billing-bot", start + i * 10_000_000));
    }
    write(StoreConfig::at(&dir.0), events);
}

fn engine(store: Store) -> SqlEngine {
    SqlEngine::new(store, SqlLimits::default()).expect("engine")
}

fn int(engine: &SqlEngine, sql: &str) -> i64 {
    let answer = engine.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let column = answer.batches[0].column(0);
    column.as_any().downcast_ref::<Int64Array>().expect("an integer").value(0)
}

fn texts(engine: &SqlEngine, sql: &str) -> Vec<String> {
    let answer = engine.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for batch in &answer.batches {
        let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)
            .expect("as text");
        let column = column.as_any().downcast_ref::<StringArray>().expect("text");
        out.extend(column.iter().map(|v| v.unwrap_or("NULL").to_owned()));
    }
    out
}

#[test]
fn sql_answers_equal_the_query_api() {
    let dir = TempDir::new("sql-equal");
    store(&dir);
    let store = Store::open(&dir.0).expect("open");
    let sql = engine(store.clone());
    assert_eq!(
        int(&sql, "SELECT count(*) FROM events") as u64,
        store.query().count().expect("count")
    );
    for (view, kind) in [
        ("llm_calls", "llm_call"),
        ("tool_calls", "tool_call"),
        ("logs", "log"),
        ("decisions", "permission"),
    ] {
        assert_eq!(
            int(&sql, &format!("SELECT count(*) FROM {view}")) as u64,
            store.query().kind(kind).count().expect("count"),
            "{view}"
        );
    }
    assert_eq!(int(&sql, "SELECT count(*) FROM spans"), 15);
    assert_eq!(int(&sql, "SELECT count(*) FROM spans WHERE status = 'error'"), 5);
    assert_eq!(
        int(&sql, "SELECT count(*) FROM threads") as usize,
        store.threads(store.query()).expect("threads").len()
    );
    assert_eq!(int(&sql, "SELECT count(*) FROM events WHERE tenant = 'globex'"), 10);
    assert_eq!(
        int(
            &sql,
            "SELECT count(*) FROM events WHERE date = current_date() OR date < current_date()"
        ),
        25
    );

    // Cost by model and tenant, against the cost report.
    let report = store.cost_report(store.query(), &[GroupBy::Tenant]).expect("cost");
    let answer = sql
        .query("SELECT tenant, sum(gen_ai_usage_cost) AS cost, sum(gen_ai_usage_input_tokens) AS input FROM llm_calls GROUP BY tenant ORDER BY tenant")
        .expect("cost");
    let batch = &answer.batches[0];
    let tenants = batch.column(0).as_any().downcast_ref::<StringArray>().expect("tenant");
    let cost = batch.column(1).as_any().downcast_ref::<Float64Array>().expect("cost");
    let input = batch.column(2).as_any().downcast_ref::<Int64Array>().expect("input");
    assert_eq!(report.len(), 2);
    for (i, row) in report.iter().enumerate() {
        assert_eq!(tenants.value(i), row.group[0]);
        assert!(
            (cost.value(i) - row.cost_usd).abs() < 1e-12,
            "{} vs {}",
            cost.value(i),
            row.cost_usd
        );
        assert_eq!(input.value(i), row.input_tokens);
    }

    // The threads view: one row per thread, with its spans, errors and tokens.
    let answer = sql
        .query("SELECT tenant, agent, spans, errors, llm_calls, tool_calls, input_tokens FROM threads ORDER BY tenant, started")
        .expect("threads");
    assert_eq!(answer.rows(), 5);
    let rows = answer.to_json_rows().expect("json");
    assert_eq!(rows[0]["tenant"], "acme");
    assert_eq!(rows[0]["agent"], "support-bot");
    assert_eq!(rows[0]["spans"], 3);
    assert_eq!(rows[0]["errors"], 1);
    assert_eq!(rows[0]["input_tokens"], 812);
    assert_eq!(rows[4]["agent"], "billing-bot");

    // Attributes are a map; the partition columns are typed.
    assert_eq!(
        texts(&sql, "SELECT attributes['user.id'] FROM spans WHERE kind = 'agent_step' LIMIT 1"),
        ["u-42"]
    );
    assert_eq!(int(&sql, "SELECT count(DISTINCT hour) FROM events WHERE hour BETWEEN 0 AND 23"), {
        let hours: std::collections::BTreeSet<u8> =
            store.files().iter().map(|f| f.partition.hour).collect();
        hours.len() as i64
    });

    // Text, JSON and CSV renderings of the same answer.
    let answer = sql
        .query("SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY name")
        .expect("names");
    let table = answer.to_table().expect("table");
    assert!(table.contains("web_search") && table.contains("handle_request"), "{table}");
    let csv = answer.to_csv().expect("csv");
    assert_eq!(csv.lines().next(), Some("name,n"));
    assert!(csv.contains("web_search,5"), "{csv}");
    // Every column, the attributes map included, as CSV (maps as their text).
    let csv = sql
        .query("SELECT * FROM spans WHERE kind = 'agent_step'")
        .expect("spans")
        .to_csv()
        .expect("csv");
    assert!(csv.contains("user.id: u-42"), "{csv}");
}

#[test]
fn a_scoped_engine_sees_only_its_tenant_whatever_the_query() {
    let dir = TempDir::new("sql-scope");
    store(&dir);
    let sql = engine(Store::open_scoped(&dir.0, Some("acme")).expect("open"));
    assert_eq!(texts(&sql, "SELECT DISTINCT tenant FROM events"), ["acme"]);
    assert_eq!(int(&sql, "SELECT count(*) FROM events"), 15);
    assert_eq!(int(&sql, "SELECT count(*) FROM events WHERE tenant = 'globex'"), 0);
    assert_eq!(
        int(&sql, "SELECT count(*) FROM events WHERE tenant <> 'acme' OR tenant IS NULL OR true"),
        15
    );
    assert_eq!(int(&sql, "SELECT count(*) FROM threads WHERE agent = 'billing-bot'"), 0);
    assert_eq!(
        int(
            &sql,
            "SELECT count(*) FROM (SELECT * FROM events UNION ALL SELECT * FROM spans) WHERE tenant = 'globex'"
        ),
        0
    );
    let globex = dir.0.join("events").join("tenant=globex");
    let other_file = std::fs::read_dir(
        globex.read_dir().expect("dates").next().expect("a date").expect("entry").path(),
    )
    .expect("hours")
    .next()
    .expect("an hour")
    .expect("entry")
    .path();
    let escapes = [
        format!("SELECT * FROM '{}'", globex.display()),
        format!("SELECT * FROM '{}/'", other_file.display()),
        format!("CREATE EXTERNAL TABLE stolen STORED AS PARQUET LOCATION '{}'", globex.display()),
        "SELECT * FROM information_schema.tables".to_owned(),
        "SELECT * FROM datafusion.public.events_all".to_owned(),
        format!("SELECT * FROM read_parquet('{}')", globex.display()),
        "CREATE VIEW mine AS SELECT * FROM events".to_owned(),
        "SET datafusion.catalog.information_schema = true".to_owned(),
    ];
    for escape in &escapes {
        match sql.query(escape) {
            Err(SqlError::Invalid(_) | SqlError::Forbidden(_)) => {}
            other => panic!("{escape}: {other:?}"),
        }
    }
    // Nothing registered by a refused statement.
    assert!(matches!(sql.query("SELECT * FROM stolen"), Err(SqlError::Invalid(_))));
    assert!(matches!(sql.query("SELECT * FROM mine"), Err(SqlError::Invalid(_))));
}

#[test]
fn only_queries_run_and_bad_sql_names_what_is_wrong() {
    let dir = TempDir::new("sql-forbidden");
    store(&dir);
    let sql = engine(Store::open(&dir.0).expect("open"));
    let out = dir.0.join("copied.parquet");
    for statement in [
        "DROP VIEW spans".to_owned(),
        "CREATE TABLE t AS SELECT * FROM events".to_owned(),
        "INSERT INTO events SELECT * FROM events".to_owned(),
        format!("COPY (SELECT * FROM events) TO '{}'", out.display()),
        "  copy events TO 'x.csv'".to_owned(),
        "SET datafusion.execution.batch_size = 1".to_owned(),
        "DELETE FROM events".to_owned(),
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'y.csv'".to_owned(),
    ] {
        match sql.query(&statement) {
            Err(SqlError::Forbidden(_)) | Err(SqlError::Invalid(_)) => {}
            other => panic!("{statement}: {other:?}"),
        }
    }
    assert!(!out.exists(), "COPY wrote nothing");
    assert!(!std::path::Path::new("x.csv").exists() && !std::path::Path::new("y.csv").exists());
    assert!(matches!(sql.query("DROP VIEW spans"), Err(SqlError::Forbidden(_))));
    assert_eq!(int(&sql, "SELECT count(*) FROM spans"), 25 - 10, "the view is still there");

    match sql.query("SELECT no_such_column FROM spans") {
        Err(SqlError::Invalid(message)) => assert!(message.contains("no_such_column"), "{message}"),
        other => panic!("{other:?}"),
    }
    match sql.query("SELECT * FROM no_such_table") {
        Err(SqlError::Invalid(message)) => assert!(message.contains("no_such_table"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(sql.query("SELEC 1"), Err(SqlError::Invalid(_))));
    assert!(matches!(sql.query(""), Err(SqlError::Invalid(_))));
    assert!(matches!(
        sql.query("SELECT 1; SELECT 2"),
        Err(SqlError::Invalid(_) | SqlError::Forbidden(_))
    ));
    // Deeply nested SQL is an error, not a stack overflow.
    let nested = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(sql.query(&nested).is_err());
}

#[test]
fn answers_are_bounded_in_rows_bytes_and_time() {
    let dir = TempDir::new("sql-bounds");
    store(&dir);
    let limits = SqlLimits::default().with_max_rows(1_000).expect("rows");
    let sql = SqlEngine::new(Store::open(&dir.0).expect("open"), limits).expect("engine");
    let answer =
        sql.query("SELECT value FROM generate_series(1, 1000000)").expect("a million rows");
    assert_eq!(answer.rows(), 1_000);
    assert!(answer.truncated);
    let whole = sql.query("SELECT value FROM generate_series(1, 1000)").expect("exactly the limit");
    assert_eq!(whole.rows(), 1_000);
    assert!(!whole.truncated, "exactly max_rows rows is a whole answer");

    let limits = SqlLimits::default().with_max_bytes(4 << 10).expect("bytes");
    let sql = SqlEngine::new(Store::open(&dir.0).expect("open"), limits).expect("engine");
    let answer =
        sql.query("SELECT repeat('x', 1000) FROM generate_series(1, 100000)").expect("bytes");
    assert!(answer.truncated);
    assert!(answer.rows() < 100_000);

    let limits = SqlLimits::default().with_timeout(Duration::from_millis(200)).expect("timeout");
    let sql = SqlEngine::new(Store::open(&dir.0).expect("open"), limits).expect("engine");
    match sql.query("SELECT count(*) FROM generate_series(1, 100000000000)") {
        Err(SqlError::Timeout(after)) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
    // The engine answers the next query.
    assert_eq!(int(&sql, "SELECT count(*) FROM tool_calls"), 5);

    let limits = SqlLimits::default().with_memory(16 << 20).expect("memory");
    let sql = SqlEngine::new(Store::open(&dir.0).expect("open"), limits).expect("engine");
    match sql.query("SELECT value, repeat('y', 100) AS pad FROM generate_series(1, 3000000) ORDER BY pad DESC, value DESC LIMIT 5") {
        Ok(answer) => assert_eq!(answer.rows(), 5, "a top-5 needs little memory"),
        Err(e) => panic!("{e}"),
    }
    // One list of 5 million values cannot be spilled to disk: past the memory bound, an error.
    match sql.query("SELECT cardinality(array_agg(value)) FROM generate_series(1, 5000000)") {
        Err(SqlError::Execution(message)) => {
            assert!(
                message.to_lowercase().contains("memory") || message.contains("Resources"),
                "{message}"
            )
        }
        Ok(answer) => panic!("5 million values fit in 16 MiB: {:?}", answer.to_json_rows()),
        Err(e) => panic!("{e}"),
    }

    for bad in [
        SqlLimits::default().with_max_rows(0).err(),
        SqlLimits::default().with_max_bytes(10).err(),
        SqlLimits::default().with_timeout(Duration::ZERO).err(),
        SqlLimits::default().with_memory(1).err(),
    ] {
        assert!(matches!(bad, Some(SqlError::Setting { .. })), "{bad:?}");
    }
}

#[test]
fn a_damaged_file_is_left_out_and_reported() {
    let dir = TempDir::new("sql-damaged");
    store(&dir);
    let first = Store::open(&dir.0).expect("open").files()[0].clone();
    let damaged = first.path.with_file_name("part-99999999-damaged.parquet");
    std::fs::write(&damaged, b"PAR1 this is not a parquet file").expect("write");
    let store = Store::open(&dir.0).expect("open");
    let sql = engine(store.clone());
    let answer = sql.query("SELECT count(*) FROM events").expect("count");
    assert_eq!(answer.skipped.len(), 1);
    assert_eq!(answer.skipped[0].path, damaged);
    assert_eq!(int(&sql, "SELECT count(*) FROM events"), 25);
    assert!(store.skipped_files().iter().any(|s| s.path == damaged));
}

#[test]
fn an_empty_store_answers_with_no_rows() {
    let dir = TempDir::new("sql-empty");
    let sql = engine(Store::open(&dir.0).expect("open"));
    assert_eq!(int(&sql, "SELECT count(*) FROM events"), 0);
    let answer = sql.query("SELECT * FROM threads").expect("threads");
    assert_eq!(answer.rows(), 0);
    assert!(answer.columns().iter().any(|(name, _)| name == "thread_id"));
    assert!(answer.to_csv().expect("csv").starts_with("tenant,thread_id,agent"));
}
