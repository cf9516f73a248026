//! Compaction (issue 18): a store of 10,000 small files, as a fleet of writers leaves it, is
//! compacted; the bench prints the compaction's speed (MB/s of input, rows/s) and how much
//! faster typical queries are before and after.
//!
//! The small files are the real sink's, as a fleet of short-lived writers leaves them: each
//! writer (a pipeline with a `ParquetSink`, write-ahead log off: it would only slow the setup)
//! records a couple of simulated threads and shuts down, finalizing one small file per
//! partition it touched, until the store holds at least 10,000 files.
//!
//! Queries, each run once untimed (warm page cache on both sides) and then three times, the
//! fastest kept: listing the store (`Store::open`), a full scan count, latency statistics by
//! operation (what the dashboard and `mission-ctl stats` ask), and one thread's span tree
//! (`mission-ctl thread`). Compaction is timed once (wall clock, and the process's CPU time
//! from `/proc/self/stat`, which stays meaningful on a shared machine).
//!
//! Run: `cargo bench -p mission-benches --bench compaction` (prints a Markdown table for
//! `benches/RESULTS.md`). `MISSION_BENCH_FILES` changes the number of small files (100..=100000),
//! `MISSION_BENCH_THREADS_PER_WRITER` the threads each writer records (1..=10000, default 2).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mission_core::{Backpressure, Pipeline};
use mission_examples::{Workload, simulate};
use mission_store::{CompactOptions, GroupBy, ParquetSink, Store, StoreConfig};

/// Writes the simulated workload as a fleet of short-lived writers leaves it: each round is a
/// writer of its own (a pipeline and a sink started, a few threads recorded, shut down), so
/// each round finalizes one small file per partition it touched; rounds go on until `root`
/// holds `files` files.
fn small_files(root: &Path, files: usize, threads_per_writer: u64) -> (usize, u64) {
    let mut round = 0;
    loop {
        // Listed every 50 writers (each leaves one file per partition it touched).
        if round % 50 == 0 {
            let store = Store::open(root).expect("open");
            if store.files().len() >= files {
                let rows = store.query().count().expect("count");
                return (store.files().len(), rows);
            }
        }
        round += 1;
        let config = StoreConfig::at(root).with_wal(false);
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
            .with_sink(ParquetSink::new(config).expect("sink"))
            .start()
            .expect("pipeline");
        simulate(
            &pipeline.recorder(),
            &Workload { threads: threads_per_writer, seed: round, ..Workload::default() },
        );
        let report = pipeline.shutdown();
        assert_eq!(report.accounting.dropped, 0);
    }
}

/// Process CPU time (user + system, all threads) in clock ticks, if `/proc/self/stat` exists.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The fastest of three timed runs of `f`, after one untimed.
fn fastest<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = f();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        out = f();
        best = best.min(start.elapsed());
    }
    (best, out)
}

/// Each query's name and fastest time.
type Timings = Vec<(&'static str, Duration)>;

/// Times the four queries on the store at `root`; the answers (rows counted, operations,
/// root spans of the thread) are returned to compare.
fn queries(root: &Path, thread: &str) -> (Timings, (u64, usize, usize)) {
    let (open, store) = fastest(|| Store::open(root).expect("open"));
    let (scan, count) = fastest(|| store.query().count().expect("count"));
    let (stats, ops) = fastest(|| {
        store.operation_stats(store.query(), &[GroupBy::Operation]).expect("stats").len()
    });
    let (lookup, spans) = fastest(|| store.thread(thread).expect("thread").roots.len());
    assert!(store.skipped_files().is_empty(), "{:?}", store.skipped_files());
    (
        vec![
            ("list the store (`Store::open`)", open),
            ("full scan count", scan),
            ("latency by operation (`operation_stats`)", stats),
            ("one thread's span tree (`Store::thread`)", lookup),
        ],
        (count, ops, spans),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let files: usize = std::env::var("MISSION_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (100..=100_000).contains(n))
        .unwrap_or(10_000);
    // Threads each short-lived writer records (a few dozen rows a file).
    let threads_per_writer: u64 = std::env::var("MISSION_BENCH_THREADS_PER_WRITER")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .unwrap_or(2);
    let root: PathBuf =
        std::env::temp_dir().join(format!("mission-bench-compaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let setup = Instant::now();
    let (files, rows) = small_files(&root, files, threads_per_writer);
    let store = Store::open(&root).expect("open");
    let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
    let partitions =
        store.files().iter().map(|f| &f.partition).collect::<std::collections::BTreeSet<_>>().len();
    let thread = store
        .threads(store.query().limit(1))
        .expect("threads")
        .first()
        .map(|t| t.thread_id.clone())
        .expect("a thread");
    eprintln!(
        "setup: {files} files, {rows} rows, {:.1} MB in {partitions} partitions, {:.0} s",
        bytes as f64 / 1e6,
        setup.elapsed().as_secs_f64()
    );

    let (before, answers_before) = queries(&root, &thread);
    let mut store = Store::open(&root).expect("open");
    let cpu = cpu_ticks();
    let start = Instant::now();
    let report = store.compact(&CompactOptions::default().with_min_files(2)).expect("compact");
    let wall = start.elapsed();
    let cpu = cpu.zip(cpu_ticks()).map(|(a, b)| b.saturating_sub(a));
    assert_eq!(report.files_merged, files, "{report:?}");
    assert_eq!(report.rows, rows);
    let (after, answers_after) = queries(&root, &thread);
    assert_eq!(answers_before, answers_after, "the same answers after compaction");
    let after_files = Store::open(&root).expect("open").files().len();

    let mb = report.bytes_read as f64 / 1e6;
    println!(
        "compaction: {files} files ({mb:.1} MB, {rows} rows, {partitions} partitions) into \
         {after_files} files ({:.1} MB)",
        report.bytes_written as f64 / 1e6
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| compaction wall time | {:.2} s |", wall.as_secs_f64());
    println!(
        "| compaction throughput (input) | {:.1} MB/s, {:.0} K rows/s |",
        mb / wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64() / 1e3
    );
    if let Some(ticks) = cpu {
        // Linux's USER_HZ is 100 on every platform Rust targets.
        let secs = ticks as f64 / 100.0;
        println!(
            "| compaction CPU time (process) | {secs:.2} s ({:.1} MB/s of CPU) |",
            mb / secs.max(0.01)
        );
    }
    println!();
    println!("| query | {files} small files | {after_files} compacted | speed-up |");
    println!("|---|---|---|---|");
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1}× |",
            b.as_secs_f64() * 1e3,
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() / a.as_secs_f64().max(1e-9)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
