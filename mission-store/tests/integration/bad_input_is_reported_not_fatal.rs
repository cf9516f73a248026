use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use mission_core::{Backpressure, Pipeline, SinkState, Timestamp};
use mission_store::layout::Partition;
use mission_store::{Error, ParquetSink, Store, StoreConfig};
use parquet::file::metadata::KeyValue;

use crate::{TempDir, half_past_last_hour, thread_events, write, write_file};

#[test]
fn an_unwritable_root_is_a_typed_error() {
    let dir = TempDir::new("unwritable");
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let err = ParquetSink::new(StoreConfig::at(file.join("store"))).err().expect("must fail");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
    let err =
        ParquetSink::new(StoreConfig::at(&dir.0).with_zstd_level(99)).err().expect("must fail");
    assert!(matches!(err, Error::Invalid { what: "zstd_level", .. }), "{err:?}");
}

#[test]
fn a_failing_write_is_counted_and_other_partitions_are_kept() {
    let dir = TempDir::new("failing-write");
    let now = Timestamp::now().0 - 60_000_000_000;
    // A plain file where tenant `blocked`'s directory must go: every write there fails.
    std::fs::create_dir_all(dir.0.join("events")).expect("dir");
    std::fs::write(dir.0.join("events").join("tenant=blocked"), b"in the way").expect("write");
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(StoreConfig::at(&dir.0)).expect("sink"))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for e in thread_events("blocked", "a", now).into_iter().chain(thread_events("fine", "a", now)) {
        recorder.record(e);
    }
    let flushed = pipeline.flush();
    assert!(flushed.is_err(), "the failure reaches the caller of flush");
    let health = pipeline.health();
    assert_eq!(health.sinks[0].state, SinkState::Failing);
    assert!(
        health.sinks[0].last_error.as_deref().unwrap_or("").contains("tenant=blocked"),
        "{:?}",
        health.sinks[0]
    );
    pipeline.shutdown();
    let store = Store::open(&dir.0).expect("open");
    assert_eq!(store.query().tenant("fine").count().expect("count"), 5);
    assert_eq!(store.query().count().expect("count"), 5);
}

#[test]
fn corrupt_foreign_and_newer_files_are_skipped_and_reported() {
    let dir = TempDir::new("bad-files");
    let now = half_past_last_hour();
    write(StoreConfig::at(&dir.0), thread_events("acme", "a", now));
    let partition_dir = Partition::of("acme", Timestamp(now)).dir(&dir.0);
    std::fs::write(partition_dir.join("part-corrupt.parquet"), b"PAR1 this is not parquet")
        .expect("write");
    let foreign = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)])),
        vec![Arc::new(Int32Array::from(vec![1, 2, 3]))],
    )
    .expect("batch");
    write_file(&partition_dir.join("part-foreign.parquet"), &foreign, vec![]);
    let ours = Store::open(&dir.0).expect("open").query().batches().expect("query");
    write_file(
        &partition_dir.join("part-newer.parquet"),
        &ours[0].project(&(0..ours[0].num_columns() - 1).collect::<Vec<_>>()).expect("project"),
        vec![KeyValue::new("mission.schema_version".into(), "999".to_string())],
    );
    let store = Store::open(&dir.0).expect("open");
    assert_eq!(store.files().len(), 4);
    let mut iter = store.query().iter().expect("query");
    let rows: usize = iter.by_ref().map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 5, "the good file is read in full");
    let skipped = &iter.stats().skipped;
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    let reason = |name: &str| {
        skipped.iter().find(|(p, _)| p.ends_with(name)).map(|(_, r)| r.clone()).unwrap_or_default()
    };
    assert!(reason("part-corrupt.parquet").contains("unreadable"), "{skipped:?}");
    assert!(
        reason("part-foreign.parquet").contains("not a Mission Control events file"),
        "{skipped:?}"
    );
    assert!(reason("part-newer.parquet").contains("schema version 999"), "{skipped:?}");
}

#[test]
fn store_settings_out_of_range_are_refused_naming_field_and_range() {
    let dir = TempDir::new("store-ranges");
    assert!(StoreConfig::at(&dir.0).validate().is_ok());
    drop(ParquetSink::new(StoreConfig::at(&dir.0)).expect("the defaults pass"));
    let cases = [
        (StoreConfig::at(&dir.0).with_row_group_rows(0), "row_group_rows", "16777216"),
        (
            StoreConfig::at(&dir.0).with_max_file_bytes(10),
            "max_file_bytes",
            "4096 to 1099511627776",
        ),
        (StoreConfig::at(&dir.0).with_max_file_age(Duration::ZERO), "max_file_age", "1ms"),
        (StoreConfig::at(&dir.0).with_max_open_files(0), "max_open_files", "1 to 4096"),
        (StoreConfig::at(&dir.0).with_zstd_level(0), "zstd_level", "1 to 22"),
        (
            StoreConfig::at(&dir.0).with_retention(Some(Duration::ZERO)),
            "retention",
            "0s is out of range: expected 1s to ",
        ),
        (
            StoreConfig::at(&dir.0).with_tenant_retention(
                [("acme".to_owned(), Duration::from_secs(200 * 365 * 86_400))].into(),
            ),
            "tenant_retention",
            "(tenant \"acme\")",
        ),
    ];
    for (config, field, range) in cases {
        let Err(err) = ParquetSink::new(config) else { panic!("{field} refused") };
        assert!(matches!(err, Error::Invalid { what, .. } if what == field), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("`{field}`")) && text.contains(range), "{text}");
    }
}

/// Issue 15, section 2: what a killed writer left and recovery cannot use is quarantined and
/// reported, exactly once, and never read. Two such leftovers of a writer that is gone (no
/// lock): a `.tmp` Parquet file with no log segment beside it (its rows cannot be read back)
/// and a log segment of garbage. Before recovery they are reported as leftovers and a pending
/// segment that cannot be recovered; recovery moves both under `<root>/quarantine/` (same
/// path below `events/`, same bytes) with a reason; afterwards the store reports them as
/// quarantined (so `check` is not healthy), reads only its good file, and a second recovery
/// has nothing left to do. A writer that starts later quarantines a new leftover by itself.
#[test]
fn unrecoverable_leftovers_are_quarantined_and_reported_once() {
    let dir = TempDir::new("quarantine");
    let root = &dir.0;
    let now = half_past_last_hour();
    write(StoreConfig::at(root), thread_events("acme", "a", now));
    let partition_dir = Partition::of("acme", Timestamp(now)).dir(root);
    let temp = partition_dir.join(".part-00000007-deadbeef.parquet.tmp");
    let segment = partition_dir.join(".part-00000008-deadbeef.parquet.wal");
    let temp_bytes = b"PAR1 a file whose writer died before its footer".to_vec();
    let segment_bytes = vec![0xAB_u8; 64 * 1024];
    std::fs::write(&temp, &temp_bytes).expect("write temp");
    std::fs::write(&segment, &segment_bytes).expect("write segment");

    let store = Store::open(root).expect("open");
    assert_eq!(store.open_report().leftovers, vec![temp.clone()]);
    assert_eq!(store.open_report().wal, vec![segment.clone()]);
    assert!(store.open_report().quarantined.is_empty());
    let check = store.check().expect("check");
    assert_eq!(check.events, 5);
    assert_eq!(check.wal.len(), 1, "{check:?}");
    assert_eq!(check.wal[0].rows, 0);
    assert!(check.wal[0].unrecoverable.is_some(), "doctor says it cannot be recovered: {check:?}");
    assert!(!check.healthy());

    let mut store = Store::open(root).expect("open");
    let recovery = store.recover().expect("recover");
    assert!(recovery.files_recovered.is_empty(), "{recovery:?}");
    assert_eq!(recovery.rows_recovered, 0);
    assert_eq!(recovery.temps_removed, 0, "a temp without a segment is not silently deleted");
    let reason = |path: &std::path::Path| {
        recovery.quarantined.iter().find(|(p, _)| p == path).map(|(_, r)| r.clone())
    };
    assert_eq!(recovery.quarantined.len(), 2, "{recovery:?}");
    assert!(
        reason(&temp).is_some_and(|r| r.contains("without a write-ahead log segment")),
        "{recovery:?}"
    );
    assert!(reason(&segment).is_some_and(|r| !r.is_empty()), "{recovery:?}");

    let quarantined = |path: &std::path::Path| {
        root.join("quarantine").join(path.strip_prefix(root.join("events")).expect("below events"))
    };
    assert!(!temp.exists() && !segment.exists(), "moved out of the events tree");
    assert_eq!(std::fs::read(quarantined(&temp)).expect("quarantined temp"), temp_bytes);
    assert_eq!(std::fs::read(quarantined(&segment)).expect("quarantined segment"), segment_bytes);

    let store = Store::open(root).expect("reopen");
    let report = store.open_report();
    assert!(report.leftovers.is_empty() && report.wal.is_empty(), "{report:?}");
    let mut expected = vec![quarantined(&temp), quarantined(&segment)];
    expected.sort();
    assert_eq!(report.quarantined, expected);
    assert_eq!(store.query().count().expect("count"), 5, "quarantined files are never read");
    let check = store.check().expect("check");
    assert_eq!(check.quarantined, expected);
    assert!(check.unreadable.is_empty(), "{check:?}");
    assert!(!check.healthy(), "a quarantine is reported, not hidden");

    let mut store = Store::open(root).expect("reopen");
    let again = store.recover().expect("recover again");
    assert!(again.quarantined.is_empty() && again.files_recovered.is_empty(), "{again:?}");
    assert_eq!(store.open_report().quarantined, expected, "reported once, still there");

    // The next writer to start recovers by itself: a new leftover goes to the quarantine too.
    let late = partition_dir.join(".part-00000009-deadbeef.parquet.tmp");
    std::fs::write(&late, b"another dead writer's unfinished file").expect("write");
    write(StoreConfig::at(root), thread_events("acme", "b", now + 10_000_000));
    let store = Store::open(root).expect("reopen");
    assert!(!late.exists());
    assert!(store.open_report().leftovers.is_empty(), "{:?}", store.open_report());
    assert!(store.open_report().quarantined.contains(&quarantined(&late)));
    assert_eq!(store.query().count().expect("count"), 10);
}
