//! Writes numbered events into a store until it is killed: the victim of the SIGKILL crash
//! harness (`tests/integration/a_killed_writer_loses_nothing_acknowledged.rs`).
//!
//! Every event is a log record whose span id is `run << 32 | seq` (`seq` counts from 1). The
//! program prints, on stdout, one line per step, so the harness uses its output as the clock:
//!
//! - `ready <rows recovered>` once the sink has started (and recovered what a previous, killed
//!   writer left);
//! - `accepted <seq> <ns>` after recording events up to `seq`; `ns` is the wall-clock time
//!   (nanoseconds since the Unix epoch) taken just *before* the first event of that step was
//!   recorded, so for every event of the step `ns` is no later than its acceptance: an age
//!   computed from it is an upper bound, never flattering;
//! - `appended <n> <ns>` when the pipeline reports (its sink health's delivered count) that the
//!   Parquet sink took events up to `n` — appended to the write-ahead log, which survives a
//!   kill -9 from the page cache — observed at wall-clock time `ns` (after the step's records,
//!   so again late rather than early);
//! - `flushed <seq>` after a `flush()` returned `Ok`: every event up to `seq` is durable.
//!
//! One recording thread and one ring: the sink receives events in sequence order, so
//! `appended n` means events `1..=n` of this run were appended.
//!
//! It finalizes files often (small files, a flush every few steps), so kills land in every
//! phase: appending to the log, writing a row group, finalizing, renaming, recovering.
//!
//! `--crash-at <point>:<n>` arms a crash point ([`mission_store::crash_points`]): the process
//! aborts the `n`-th time it reaches that point of finalize or recovery, so the harness hits
//! those moments deliberately. `--tenants <k>` spreads the events over `k` tenants (so `k`
//! partitions, files and log segments at a time) in turn.
//!
//! `--events <n>` stops after `n` events (rounded up to a step of 50): it flushes, prints
//! `done <seq>` and exits 0 — one member of a fleet of writers sharing the store
//! (`tests/integration/a_fleet_shares_one_store.rs`).
//!
//! `--compact` writes nothing: it compacts the store (every partition with at least two small
//! files), prints `compacted <files merged> <files written>` and exits; with `--crash-at
//! compact-before-…:<n>` it dies inside the compaction instead.
//!
//! Run: `cargo run -p mission-store --features crash-points --example crash_writer --
//! <store-dir> [run] [--no-wal] [--no-flush] [--crash-at <point>:<n>] [--tenants <k>]
//! [--events <n>] [--compact]`.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mission_core::{
    Backpressure, EventBody, Level, LogRecord, Pipeline, SpanId, Symbol, Text, ThreadContext,
};
use mission_store::crash_points::arm;
use mission_store::{CompactOptions, ParquetSink, Store, StoreConfig};

const USAGE: &str = "crash_writer <store-dir> [run] [--no-wal] [--no-flush] \
                     [--crash-at <point>:<n>] [--tenants <k>] [--events <n>] [--compact]";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(root) = args.get(1) else {
        eprintln!("usage: {USAGE}");
        std::process::exit(2);
    };
    let value_of = |flag: &str| args.iter().position(|a| a == flag).map(|i| args.get(i + 1));
    if let Some(spec) = value_of("--crash-at") {
        let armed = spec.ok_or_else(|| "--crash-at: missing value".to_owned()).and_then(|s| arm(s));
        if let Err(e) = armed {
            eprintln!("error: {e}\nusage: {USAGE}");
            std::process::exit(2);
        }
    }
    let tenants: usize = match value_of("--tenants") {
        None => 1,
        Some(n) => match n.and_then(|n| n.parse().ok()).filter(|n| (1..=64).contains(n)) {
            Some(n) => n,
            None => {
                eprintln!("error: --tenants: expected an integer in 1..=64\nusage: {USAGE}");
                std::process::exit(2);
            }
        },
    };
    if args.iter().any(|a| a == "--compact") {
        let options = CompactOptions::default().with_min_files(2);
        match Store::open(root).and_then(|mut s| s.compact(&options)) {
            Ok(r) => println!("compacted {} {}", r.files_merged, r.files_written),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let limit: Option<u64> = match value_of("--events") {
        None => None,
        Some(n) => match n.and_then(|n| n.parse().ok()).filter(|n| *n >= 1) {
            Some(n) => Some(n),
            None => {
                eprintln!("error: --events: expected an integer >= 1\nusage: {USAGE}");
                std::process::exit(2);
            }
        },
    };
    let run: u64 = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(0);
    // `--no-flush`: one long-lived file, never flushed — before the write-ahead log, a kill
    // lost every event of it.
    let flushes = !args.iter().any(|a| a == "--no-flush");
    let config = StoreConfig::at(root)
        .with_row_group_rows(200)
        .with_max_file_bytes(if flushes { 32 * 1024 } else { 1 << 30 })
        .with_wal(!args.iter().any(|a| a == "--no-wal"));
    let sink = match ParquetSink::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let recovered = sink.recovery().rows_recovered;
    let Ok(pipeline) = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(sink)
        .start()
    else {
        std::process::exit(1);
    };
    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: String| {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    };
    say(&mut out, format!("ready {recovered}"));
    let recorder = pipeline.recorder();
    let threads: Vec<ThreadContext> = (0..tenants)
        .map(|t| {
            let tenant = if t == 0 { "acme".to_owned() } else { format!("acme-{t}") };
            ThreadContext::new(Symbol::intern(&tenant), Symbol::intern("crash-agent"))
        })
        .collect();
    let name = Symbol::intern("numbered");
    let mut seq: u64 = 0;
    let mut appended: u64 = 0;
    for step in 1u64.. {
        let step_start = now_ns();
        for _ in 0..50 {
            seq += 1;
            let thread = &threads[(seq as usize) % threads.len()];
            recorder.record(thread.event(
                name,
                SpanId(run << 32 | seq),
                EventBody::Log(LogRecord {
                    level: Level::Info,
                    target: name,
                    message: Text::new("numbered event"),
                }),
            ));
        }
        say(&mut out, format!("accepted {seq} {step_start}"));
        let delivered = pipeline.health().sinks.first().map_or(0, |s| s.events);
        if delivered > appended {
            appended = delivered;
            say(&mut out, format!("appended {appended} {}", now_ns()));
        }
        if limit.is_some_and(|n| seq >= n) {
            match pipeline.flush() {
                Ok(()) => say(&mut out, format!("done {seq}")),
                Err(e) => {
                    eprintln!("flush failed: {e}");
                    std::process::exit(1);
                }
            }
            pipeline.shutdown();
            return;
        }
        if flushes && step % 8 == 0 {
            match pipeline.flush() {
                Ok(()) => say(&mut out, format!("flushed {seq}")),
                Err(e) => eprintln!("flush failed: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wall-clock nanoseconds since the Unix epoch: the one clock this process and the harness
/// share (0 if the clock is before 1970).
fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
