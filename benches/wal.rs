//! The write-ahead log's cost on end-to-end write throughput (issue 15): recorder → pipeline →
//! Parquet sink → closed files, with the log (the default) and without it, side by side, for
//! a realistic agent mix (the simulated workload: agent steps, LLM and tool calls, logs).
//!
//! Each iteration writes 1,000 threads of the workload into a fresh store and shuts the pipeline
//! down (every file finalized), so the figure includes creating, appending to, syncing and
//! deleting the log segments.
//!
//! Two groups: `wal_end_to_end` measures wall-clock time; `wal_end_to_end_cpu` measures the
//! CPU time the process spent (user + system, every thread, from `/proc/self/stat`; Linux
//! only, 10 ms resolution per sample) — the figure that stays meaningful on a shared machine,
//! where wall time mostly measures the other processes.
//!
//! Run: `cargo bench -p mission-benches --bench wal`. Results: `benches/RESULTS.md`, with the
//! events lost per kill from the crash harness
//! (`cargo test -p mission-store --test integration a_killed -- --nocapture`).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mission_core::{Backpressure, Event, FnSink, Pipeline};
use mission_examples::{Workload, simulate};
use mission_store::{ParquetSink, StoreConfig};

/// The workload's events, captured once through a pipeline into memory.
fn workload() -> Vec<Event> {
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = captured.clone();
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(FnSink::new("capture", move |batch: &[Event]| {
            into.lock().map(|mut v| v.extend_from_slice(batch)).ok();
            Ok(())
        }))
        .start()
        .expect("start");
    simulate(&pipeline.recorder(), &Workload { threads: 1000, ..Workload::default() });
    pipeline.shutdown();
    captured.lock().expect("events").clone()
}

fn fresh_dir(name: &str, n: &mut u64) -> PathBuf {
    *n += 1;
    let dir =
        std::env::temp_dir().join(format!("mission-bench-wal-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn write(events: &[Event], root: &PathBuf, wal: bool) {
    let config = StoreConfig::at(root).with_wal(wal);
    let pipeline = Pipeline::builder()
        .with_ring_capacity(16 * 1024)
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(ParquetSink::new(config).expect("sink"))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for e in events {
        recorder.record(e.clone());
    }
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.dropped, 0);
    assert_eq!(report.sinks[0].errors, 0, "{:?}", report.sinks[0]);
    let _ = std::fs::remove_dir_all(root);
}

fn wal(c: &mut Criterion) {
    let events = workload();
    let mut group = c.benchmark_group("wal_end_to_end");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    let mut n = 0;
    for (name, on) in [("parquet_with_wal", true), ("parquet_without_wal", false)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || fresh_dir(name, &mut n),
                |dir| write(&events, &dir, on),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    if cpu_ticks().is_none() {
        eprintln!("wal_end_to_end_cpu: no /proc/self/stat here, skipped");
        return;
    }
    let mut group = c.benchmark_group("wal_end_to_end_cpu");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    for (name, on) in [("parquet_with_wal", true), ("parquet_without_wal", false)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let dirs: Vec<PathBuf> = (0..iters).map(|_| fresh_dir(name, &mut n)).collect();
                let before = cpu_ticks().unwrap_or(0);
                for dir in &dirs {
                    write(&events, dir, on);
                }
                let ticks = cpu_ticks().unwrap_or(0).saturating_sub(before);
                // Criterion needs a positive time, even for a sample shorter than one tick.
                Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
                    .max(Duration::from_nanos(1))
            })
        });
    }
    group.finish();
}

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on every Linux build we run).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time this process has used, every thread counted (live and exited), in clock ticks
/// (`utime + stime` of `/proc/self/stat`).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

criterion_group!(benches, wal);
criterion_main!(benches);
