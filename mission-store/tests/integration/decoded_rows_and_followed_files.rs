//! The read API other crates use instead of opening Parquet themselves: [`EventFile`] (the one
//! schema-version check), [`EventRow`] (the one decoder) and [`Follower`] (new files as they
//! land, tenant-scoped).

use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use mission_core::Timestamp;
use mission_store::layout::Partition;
use mission_store::schema::col;
use mission_store::{Error, EventFile, EventRow, Follower, Store, StoreConfig};
use parquet::file::metadata::KeyValue;

use crate::{TempDir, thread_events, write, write_file};

fn rows_of(store: &Store) -> Vec<EventRow> {
    let mut rows = Vec::new();
    for file in store.files() {
        let read = EventFile::open(file).expect("open").rows(None).expect("rows");
        rows.extend(read.map(|r| r.expect("row")));
    }
    rows.sort_by_key(|r| r.time_ns);
    rows
}

#[test]
fn every_column_decodes_back_to_what_was_recorded() {
    let dir = TempDir::new("decode");
    let hour = 3_600_000_000_000;
    let start = (Timestamp::now().0 / hour - 1) * hour; // one partition, whatever the time

    write(StoreConfig::at(&dir.0), thread_events("acme", "support-bot", start));
    let store = Store::open(&dir.0).expect("open");
    let file = EventFile::open(&store.files()[0]).expect("open");
    assert_eq!(file.num_rows(), 5);
    let rows = rows_of(&store);
    assert_eq!(rows.len(), 5);
    let [root, llm, tool, log, decision] = &rows[..] else { panic!("{rows:?}") };
    for row in &rows {
        assert_eq!((row.tenant.as_str(), row.agent.as_str()), ("acme", "support-bot"));
        assert_eq!(row.thread_id, root.thread_id);
        assert!(row.span_id.is_some());
    }
    assert_eq!(root.time_ns, i64::try_from(start).expect("fits"));
    assert_eq!((root.kind.as_str(), root.name.as_str()), ("agent_step", "handle_request"));
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.duration_ns, Some(5_000_000));
    assert_eq!(root.attribute("user.id"), Some("u-42"));
    assert_eq!(llm.parent_span_id, root.span_id);
    assert_eq!(llm.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(llm.provider.as_deref(), Some("openai"));
    assert_eq!((llm.input_tokens, llm.output_tokens), (Some(812), Some(64)));
    assert_eq!((llm.cached_input_tokens, llm.reasoning_tokens), (Some(100), Some(7)));
    assert_eq!(llm.cost_usd, Some(0.0002));
    assert_eq!(tool.status.as_deref(), Some("error"));
    assert_eq!(tool.error_message.as_deref(), Some("upstream returned 503"));
    assert_eq!(tool.attribute("attempt"), Some("2"));
    assert_eq!(tool.model, None, "a tool call has no LLM columns");
    assert_eq!((log.kind.as_str(), log.level.as_deref()), ("log", Some("warn")));
    assert_eq!(log.log_target.as_deref(), Some("agent::tools"));
    assert_eq!(log.message.as_deref(), Some("retrying web_search"));
    assert_eq!(log.duration_ns, None);
    assert_eq!(decision.decision.as_deref(), Some("deny"));
    assert_eq!(decision.resource.as_deref(), Some("refund_payment"));
    assert_eq!(decision.policy.as_deref(), Some("no-refunds"));
    assert_eq!(decision.actor.as_deref(), Some("support-bot"));

    // A query's batches decode to the same rows (the tenant from the query's own column).
    let mut queried: Vec<EventRow> = Vec::new();
    for batch in store.query().batches().expect("query") {
        queried.extend(EventRow::from_batch(&batch).expect("decode"));
    }
    queried.sort_by_key(|r| r.time_ns);
    assert_eq!(queried, rows);

    // A projection decodes too: the columns not read are `None`.
    let file = EventFile::open(&store.files()[0]).expect("open");
    let some: Vec<EventRow> = file
        .rows(Some(&[col::TIME, col::NAME, col::STATUS]))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(some.len(), 5);
    assert!(some.iter().all(|r| r.tenant == "acme" && r.agent.is_empty() && r.model.is_none()));
    assert!(some.iter().any(|r| r.status.as_deref() == Some("error")));
}

#[test]
fn foreign_and_newer_files_are_refused_by_the_one_check() {
    let dir = TempDir::new("decode-check");
    let now = Timestamp::now().0 - 60_000_000_000;
    write(StoreConfig::at(&dir.0), thread_events("acme", "a", now));
    let partition_dir = Partition::of("acme", Timestamp(now)).dir(&dir.0);
    let ours = Store::open(&dir.0).expect("open").query().batches().expect("query");
    let stored = ours[0].project(&(0..ours[0].num_columns() - 1).collect::<Vec<_>>()).expect("p");
    let newer = partition_dir.join("part-newer.parquet");
    write_file(
        &newer,
        &stored,
        vec![KeyValue::new("mission.schema_version".into(), "3".to_owned())],
    );
    let err = EventFile::open_path(&newer, "acme").expect_err("newer schema");
    assert!(matches!(err, Error::NewerSchema { found: 3, supported: 2, .. }), "{err:?}");
    let foreign = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)])),
        vec![Arc::new(Int32Array::from(vec![1]))],
    )
    .expect("batch");
    let path = partition_dir.join("part-foreign.parquet");
    write_file(&path, &foreign, vec![]);
    let err = EventFile::open_path(&path, "acme").expect_err("foreign");
    assert!(matches!(err, Error::Foreign { .. }), "{err:?}");
    let path = partition_dir.join("part-garbage.parquet");
    std::fs::write(&path, b"PAR1 not parquet").expect("write");
    let err = EventFile::open_path(&path, "acme").expect_err("corrupt");
    assert!(matches!(err, Error::Parquet { .. }), "{err:?}");
    let err = EventFile::open_path(&dir.0.join("missing.parquet"), "acme").expect_err("missing");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn a_follower_returns_each_new_file_once_within_its_tenant() {
    let dir = TempDir::new("follow");
    let hour = 3_600_000_000_000;
    let start = (Timestamp::now().0 / hour - 3) * hour;
    write(StoreConfig::at(&dir.0), thread_events("acme", "a", start));
    let mut all = Follower::new(&dir.0);
    let mut acme = Follower::new(&dir.0).scoped("acme");
    let mut later = Follower::new(&dir.0);
    let backlog = later.skip_existing().expect("skip");
    assert_eq!(backlog.files().len(), 1);
    assert!(later.poll_files().expect("poll").is_empty(), "files present at the start are skipped");
    assert_eq!(all.poll_files().expect("poll").len(), 1, "a new follower starts at the beginning");

    // Two new files: globex's, then acme's an hour earlier than globex's.
    write(StoreConfig::at(&dir.0), thread_events("globex", "b", start + 2 * hour));
    write(StoreConfig::at(&dir.0), thread_events("acme", "a", start + hour));
    let new = later.poll_files().expect("poll");
    let tenants: Vec<&str> = new.iter().map(|f| f.partition.tenant.as_str()).collect();
    assert_eq!(tenants, ["acme", "globex"], "oldest partition first");
    assert!(later.poll_files().expect("poll").is_empty(), "each file once");

    let polled = acme.poll_rows(None).expect("poll");
    assert_eq!(polled.rows.len(), 10, "acme's two files, never globex's");
    assert!(polled.rows.iter().all(|r| r.tenant == "acme"));
    assert!(polled.rows.windows(2).all(|w| w[0].time_ns <= w[1].time_ns), "oldest first");
    assert!(polled.skipped.is_empty());
    assert!(acme.poll_rows(None).expect("poll").rows.is_empty());

    let polled = all.poll_rows(Some(&[col::TIME, col::KIND])).expect("poll");
    assert_eq!(polled.rows.len(), 10);
    assert!(polled.rows.iter().all(|r| r.name.is_empty() && !r.kind.is_empty()));
}

#[test]
fn a_follower_limits_files_per_poll_and_reports_unreadable_ones() {
    let dir = TempDir::new("follow-limit");
    let hour = 3_600_000_000_000;
    let start = (Timestamp::now().0 / hour - 5) * hour;
    for i in 0..3 {
        write(StoreConfig::at(&dir.0), thread_events("acme", "a", start + i * hour));
    }
    let mut follower = Follower::new(&dir.0).with_max_files(2);
    assert_eq!(follower.poll_files().expect("poll").len(), 2);
    let rest = follower.poll_files().expect("poll");
    assert_eq!(rest.len(), 1, "the rest wait for the next poll");
    assert_eq!(rest[0].partition.start_ns(), i128::from(start + 2 * hour));

    let damaged = Partition::of("acme", Timestamp(start)).dir(&dir.0).join("part-damaged.parquet");
    std::fs::write(&damaged, b"PAR1 not parquet").expect("write");
    let polled = follower.poll_rows(None).expect("a damaged file is not an error");
    assert!(polled.rows.is_empty());
    assert_eq!(polled.skipped.len(), 1);
    assert_eq!(polled.skipped[0].path, damaged);
    assert!(follower.poll_rows(None).expect("poll").skipped.is_empty(), "reported once");
}
