//! A fleet on one store: several writer processes write one store directory at once, readers
//! read it while they write and while compaction merges the small files they leave, and every
//! read counts each row exactly once.
//!
//! No sleeps: the writers (`examples/crash_writer.rs --events <n>`) say `done` on stdout when
//! their events are flushed, the harness waits for their exit with a deadline, and the readers
//! loop until told to stop.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::{Array, UInt64Array};
use mission_core::{
    Backpressure, EventBody, Level, LogRecord, Pipeline, SpanId, Symbol, Text, ThreadContext,
    Timestamp,
};
use mission_store::schema::col;
use mission_store::{
    CompactOptions, Follower, META_COMPACTED_FROM, META_COMPACTED_WRITERS, ParquetSink, Store,
    StoreConfig,
};

use crate::TempDir;
use crate::a_killed_writer_loses_nothing_acknowledged::crash_writer;

/// How long a test waits for a child process or a reader before failing (a generous margin
/// for a loaded 2-core machine; the tests normally take seconds).
const DEADLINE: Duration = Duration::from_secs(300);

/// Every span id in the store, through a fresh listing.
fn ids(root: &Path) -> Vec<u64> {
    let store = Store::open(root).expect("open");
    ids_of(&store)
}

/// Every span id `store` (as listed) reads; no file may be skipped.
fn ids_of(store: &Store) -> Vec<u64> {
    let mut out = Vec::new();
    let mut iter = store.query().columns(&[col::SPAN_ID]).iter().expect("query");
    for batch in iter.by_ref() {
        let batch = batch.expect("batch");
        let column = batch.column(0).as_any().downcast_ref::<UInt64Array>().expect("span ids");
        out.extend(column.iter().flatten());
    }
    assert!(iter.stats().skipped.is_empty(), "skipped: {:?}", iter.stats().skipped);
    out
}

/// Asserts `ids` holds no id twice; returns them counted per writer run (`id >> 32`).
fn per_run(ids: &[u64]) -> BTreeMap<u64, u64> {
    let mut seen = HashSet::with_capacity(ids.len());
    for id in ids {
        assert!(seen.insert(*id), "span id {id:#x} read twice");
    }
    let mut runs = BTreeMap::new();
    for id in ids {
        *runs.entry(id >> 32).or_insert(0) += 1;
    }
    runs
}

/// A reader on its own thread: reads the whole store again and again until `stop`, checking
/// every read (never more than `total` rows, never an id twice, and — when `exact` — exactly
/// `total`); returns how many reads it made.
fn reader(
    root: &Path,
    total: u64,
    exact: bool,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        let mut reads = 0;
        // At least one read, even if the work it races with is over before it starts.
        while reads == 0 || !stop.load(Ordering::SeqCst) {
            let ids = ids(&root);
            let n = per_run(&ids).values().sum::<u64>();
            assert!(n <= total, "read {n} rows of {total}");
            if exact {
                assert_eq!(n, total, "read {reads}: every row exactly once");
            }
            reads += 1;
        }
        reads
    })
}

/// Writes `files` small files per tenant (each `rows` rows, one flush each) in-process, span
/// ids `run << 32 | seq`; each file's metadata carries an audit anchor whose `seq` grows.
/// Returns how many events it wrote (over every tenant).
fn small_files(root: &Path, run: u64, tenants: &[&str], files: u64, rows: u64) -> u64 {
    let anchor = Arc::new(AtomicU64::new(0));
    let source: mission_store::FileMetadataSource = Arc::new(move || {
        let seq = anchor.fetch_add(1, Ordering::SeqCst) + 1;
        vec![("mission.audit.head".to_owned(), format!("{{\"seq\":{seq},\"hash\":\"h{seq}\"}}"))]
    });
    let sink = ParquetSink::new(StoreConfig::at(root)).expect("sink").with_file_metadata(source);
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(sink)
        .start()
        .expect("pipeline");
    let recorder = pipeline.recorder();
    let threads: Vec<ThreadContext> = tenants
        .iter()
        .map(|t| ThreadContext::new(Symbol::intern(t), Symbol::intern("fleet-agent")))
        .collect();
    let name = Symbol::intern("numbered");
    let start = crate::half_past_last_hour();
    let mut seq = 0;
    for _ in 0..files {
        for thread in &threads {
            for _ in 0..rows {
                seq += 1;
                let mut event = thread.event(
                    name,
                    SpanId(run << 32 | seq),
                    EventBody::Log(LogRecord {
                        level: Level::Info,
                        target: name,
                        message: Text::new("numbered event"),
                    }),
                );
                event.time = Timestamp(start + seq * 1_000);
                recorder.record(event);
            }
        }
        pipeline.flush().expect("flush");
    }
    pipeline.shutdown();
    seq
}

/// Eight writer processes write one store at once while a reader reads it; then compaction
/// merges their small files while a reader reads. Every count is exact, no id is read twice.
#[test]
fn eight_writer_processes_and_a_reader_then_compaction_with_a_reader_count_exactly() {
    const WRITERS: u64 = 8;
    const EVENTS: u64 = 1_000; // per writer, a multiple of the writer's step of 50
    let dir = TempDir::new("fleet");
    let bin = crash_writer();
    let total = WRITERS * EVENTS;
    let stop = Arc::new(AtomicBool::new(false));
    let reading = reader(&dir.0, total, false, stop.clone());
    let (done_tx, done_rx) = mpsc::channel();
    let mut children = Vec::new();
    for run in 1..=WRITERS {
        let mut child = Command::new(&bin)
            .arg(&dir.0)
            .arg(run.to_string())
            .args(["--events", &EVENTS.to_string(), "--tenants", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            let done = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line == format!("done {EVENTS}"));
            let _ = tx.send((run, done));
        });
        children.push(child);
    }
    let deadline = Instant::now() + DEADLINE;
    for _ in 0..WRITERS {
        let left = deadline.saturating_duration_since(Instant::now());
        let (run, done) = done_rx.recv_timeout(left).expect("a writer finished in time");
        assert!(done, "writer {run} did not say it flushed its {EVENTS} events");
    }
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reading.join().expect("reader");
    assert!(reads >= 1);

    let store = Store::open(&dir.0).expect("open");
    assert!(store.open_report().wal.is_empty() && store.open_report().leftovers.is_empty());
    let runs = per_run(&ids_of(&store));
    assert_eq!(runs, (1..=WRITERS).map(|r| (r, EVENTS)).collect::<BTreeMap<_, _>>());
    let names: HashSet<_> = store.files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(names.len(), store.files().len(), "no two files share a name");
    let small_files = store.files().len();
    assert!(small_files > 2 * 2 * WRITERS as usize, "{small_files} files");

    // Compaction while a reader reads: every read is exact.
    let stop = Arc::new(AtomicBool::new(false));
    let reading = reader(&dir.0, total, true, stop.clone());
    let mut store = Store::open(&dir.0).expect("open");
    let report = store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    stop.store(true, Ordering::SeqCst);
    reading.join().expect("reader");
    assert_eq!(report.files_merged, small_files);
    assert_eq!(report.partitions, 2, "one merged file per tenant's partition: {report:?}");
    assert_eq!(report.rows, total);
    assert_eq!(store.files().len(), 2);
    assert_eq!(per_run(&ids_of(&store)).values().sum::<u64>(), total);
}

/// A reader that listed the store before compactions (the merged files do not exist in its
/// listing, its files are gone) reads each of its files' rows from the merged file that holds
/// them, once — even when that merged file was merged again.
#[test]
fn a_reader_that_listed_before_compaction_reads_every_row_once() {
    let dir = TempDir::new("compact-listing");
    let first = small_files(&dir.0, 1, &["acme", "globex"], 6, 25);
    let before = Store::open(&dir.0).expect("open");
    assert_eq!(before.files().len(), 12);
    let mut store = Store::open(&dir.0).expect("open");
    let report = store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    assert_eq!((report.files_merged, report.files_written), (12, 2));
    assert_eq!(per_run(&ids_of(&before)), BTreeMap::from([(1, first)]));
    let between = Store::open(&dir.0).expect("open");
    // More small files, and a second compaction merging the merged files with them.
    let second = small_files(&dir.0, 2, &["acme", "globex"], 3, 10);
    let report = store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    assert_eq!((report.files_merged, report.files_written), (8, 2));
    let expected = BTreeMap::from([(1, first), (2, second)]);
    assert_eq!(per_run(&ids_of(&store)), expected);
    assert_eq!(per_run(&ids_of(&before)), BTreeMap::from([(1, first)]), "transitively");
    assert_eq!(per_run(&ids_of(&between)), BTreeMap::from([(1, first)]));
    // Views built on queries agree.
    assert_eq!(store.check().expect("check").events, first + second);
}

/// A compaction killed at each of its points leaves a readable store with exact counts; the
/// next compaction finishes the job (deletes the merged inputs, or the temporary file is
/// removed by recovery).
#[test]
fn a_compaction_killed_at_any_point_leaves_exact_counts() {
    let bin = crash_writer();
    for point in ["compact-before-rename", "compact-before-delete"] {
        let dir = TempDir::new(point);
        let n = small_files(&dir.0, 1, &["acme"], 5, 20);
        let output = Command::new(&bin)
            .arg(&dir.0)
            .args(["--compact", "--crash-at", &format!("{point}:1")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .expect("run compactor");
        assert!(!output.status.success(), "{point}: the compactor died");
        let store = Store::open(&dir.0).expect("open");
        assert_eq!(per_run(&ids_of(&store)), BTreeMap::from([(1, n)]), "{point}");
        let report = store.open_report();
        match point {
            "compact-before-rename" => {
                assert_eq!(report.leftovers.len(), 1, "{point}: {report:?}");
                assert!(report.replaced.is_empty());
            }
            _ => {
                assert_eq!(report.replaced.len(), 5, "{point}: {report:?}");
                assert_eq!(store.files().len(), 1);
            }
        }
        let mut store = Store::open(&dir.0).expect("open");
        store.recover().expect("recover");
        let compacted =
            store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
        assert_eq!(per_run(&ids_of(&store)), BTreeMap::from([(1, n)]), "{point}");
        assert_eq!(store.files().len(), 1, "{point}: {compacted:?}");
        let report = store.open_report();
        assert!(report.replaced.is_empty() && report.leftovers.is_empty(), "{point}: {report:?}");
        assert!(store.check().expect("check").healthy());
    }
}

/// A follower delivers each row once, whether compaction merged files it had delivered, files
/// it had not, or both.
#[test]
fn a_follower_gets_each_row_once_across_compaction() {
    let dir = TempDir::new("compact-follow");
    let mut follower = Follower::new(&dir.0);
    let first = small_files(&dir.0, 1, &["acme"], 4, 10);
    assert_eq!(follower.poll_rows(None).expect("poll").rows.len() as u64, first);
    let second = small_files(&dir.0, 2, &["acme"], 3, 10);
    let mut store = Store::open(&dir.0).expect("open");
    store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    let polled = follower.poll_rows(Some(&[col::SPAN_ID])).expect("poll");
    let got: Vec<u64> = polled.rows.iter().filter_map(|r| r.span_id).collect();
    assert_eq!(per_run(&got), BTreeMap::from([(2, second)]), "only the undelivered rows");
    assert!(follower.poll_rows(None).expect("poll").rows.is_empty());
    store.compact(&CompactOptions::default().with_min_files(2)).expect("nothing to merge");
    small_files(&dir.0, 3, &["acme"], 1, 5);
    store.compact(&CompactOptions::default().with_min_files(2)).expect("compact again");
    let polled = follower.poll_rows(Some(&[col::SPAN_ID])).expect("poll");
    let got: Vec<u64> = polled.rows.iter().filter_map(|r| r.span_id).collect();
    assert_eq!(per_run(&got), BTreeMap::from([(3, 5)]));
}

/// The merged file carries the newest audit anchor (what the verifier reads), each writer's
/// latest metadata and the list of what it replaces; erasure and retention work on it.
#[test]
fn compaction_keeps_anchors_and_accounting_and_erasure_and_retention_still_work() {
    let dir = TempDir::new("compact-metadata");
    let n = small_files(&dir.0, 1, &["acme"], 5, 10);
    let mut store = Store::open(&dir.0).expect("open");
    let report = store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    assert_eq!(report.files_merged, 5);
    let anchors = store.file_metadata("mission.audit.head").expect("metadata");
    assert_eq!(anchors.len(), 1);
    assert_eq!(anchors[0].1.as_deref(), Some("{\"seq\":5,\"hash\":\"h5\"}"), "the newest");
    let accounting = store.file_metadata("mission.accounting").expect("metadata");
    assert!(accounting[0].1.as_deref().is_some_and(|a| a.contains("recorded")), "{accounting:?}");
    let writers = store.file_metadata(META_COMPACTED_WRITERS).expect("metadata");
    let writers: serde_json::Value =
        serde_json::from_str(writers[0].1.as_deref().expect("writers")).expect("json");
    let writers = writers.as_object().expect("object");
    assert_eq!(writers.len(), 1, "one writer wrote them: {writers:?}");
    let (_, latest) = writers.iter().next().expect("writer");
    assert_eq!(latest["metadata"]["mission.audit.head"], "{\"seq\":5,\"hash\":\"h5\"}");
    let sources = store.file_metadata(META_COMPACTED_FROM).expect("metadata");
    let sources: Vec<mission_store::CompactedSource> =
        serde_json::from_str(sources[0].1.as_deref().expect("sources")).expect("json");
    assert_eq!(sources.len(), 5);
    assert_eq!(sources.iter().map(|s| s.rows).sum::<u64>(), n);

    // Erasure rewrites the merged file and keeps its list of sources right.
    let ids = ids_of(&store);
    let thread = store
        .query()
        .columns(&[col::THREAD_ID])
        .batches()
        .expect("threads")
        .first()
        .map(|b| {
            let c = b.column(0).as_any().downcast_ref::<arrow::array::StringArray>();
            c.expect("text").value(0).to_owned()
        })
        .expect("a thread");
    let erased = store.erase_thread(&thread).expect("erase");
    assert_eq!(erased, n, "every event was of the one thread");
    assert_eq!(ids.len() as u64, n);
    assert_eq!(store.query().count().expect("count"), 0);
    let sources = store.file_metadata(META_COMPACTED_FROM).expect("metadata");
    let sources: Vec<mission_store::CompactedSource> =
        serde_json::from_str(sources[0].1.as_deref().expect("sources")).expect("json");
    assert!(sources.iter().all(|s| s.rows == 0 && s.first_row == 0), "{sources:?}");
    // Retention deletes the merged file's partition like any other.
    let expired = store
        .apply_retention(Duration::from_secs(1), Timestamp(Timestamp::now().0 + 7_200_000_000_000))
        .expect("retention");
    assert_eq!(expired, 1);
    assert!(store.files().is_empty());
}

/// Options out of range are typed errors; a second compactor while one runs is refused.
#[test]
fn compaction_options_are_range_checked() {
    let dir = TempDir::new("compact-options");
    let mut store = Store::open(&dir.0).expect("open");
    for bad in [
        CompactOptions::default().with_min_files(1),
        CompactOptions::default().with_min_files(1_000_000),
        CompactOptions::default().with_target_file_bytes(10),
        CompactOptions::default().with_older_than(Duration::from_secs(400 * 86_400)),
    ] {
        let err = store.compact(&bad).expect_err("out of range");
        assert!(matches!(err, mission_store::Error::Invalid { .. }), "{err}");
    }
    let report = store.compact(&CompactOptions::default()).expect("empty store");
    assert_eq!(report.files_merged, 0);
    // `older_than` leaves recent files alone.
    small_files(&dir.0, 1, &["acme"], 3, 5);
    let report = store
        .compact(
            &CompactOptions::default().with_min_files(2).with_older_than(Duration::from_secs(3600)),
        )
        .expect("compact");
    assert_eq!(report.files_merged, 0);
}

/// Two writers of one process have distinct ids (so distinct file names), and a writer that
/// starts recovers nothing of a live writer's open file: its log segment stays, its rows land
/// when it finishes.
#[test]
fn a_starting_writer_never_touches_a_live_writers_files() {
    let dir = TempDir::new("fleet-live");
    let config = StoreConfig::at(&dir.0).with_wal_sync_interval(Duration::ZERO);
    let live = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(config.clone()).expect("live sink"))
        .start()
        .expect("pipeline");
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("fleet-agent"));
    let name = Symbol::intern("numbered");
    let recorder = live.recorder();
    for seq in 1..=100u64 {
        recorder.record(thread.event(
            name,
            SpanId(seq),
            EventBody::Log(LogRecord {
                level: Level::Info,
                target: name,
                message: Text::new("live"),
            }),
        ));
    }
    // Wait (with a deadline) until the live writer's sink took them: its segment is on disk.
    let deadline = Instant::now() + DEADLINE;
    while live.health().sinks.first().map_or(0, |s| s.events) < 100 {
        assert!(Instant::now() < deadline, "the live writer took its events in time");
        std::thread::yield_now();
    }
    let open = Store::open(&dir.0).expect("open");
    assert!(open.open_report().in_progress >= 1, "{:?}", open.open_report());
    let starting = ParquetSink::new(config).expect("second sink");
    assert_eq!(starting.recovery().rows_recovered, 0);
    assert!(starting.recovery().in_use >= 1, "{:?}", starting.recovery());
    let mut other = Store::open(&dir.0).expect("open");
    let report = other.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    assert_eq!(report.files_merged, 0, "nothing finalized yet");
    live.shutdown();
    drop(starting);
    assert_eq!(per_run(&ids(&dir.0)), BTreeMap::from([(0, 100)]));
}
