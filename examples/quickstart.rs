//! Mission Control's quick start: record a realistic simulated multi-agent workload on the
//! embedded defaults (nothing to run beside it), then print what Mission Control saw.
//!
//! Run: `cargo run --release --example quickstart` (add `-- --threads 20000` for more, or
//! `-- --store DIR` to write somewhere other than `./mission-data`).

use std::time::{Duration, Instant};

use mission_core::{Backpressure, RecorderConfig, StatsSnapshot};
use mission_examples::{Workload, simulate};
use mission_sdk::MissionControl;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn main() {
    let threads = arg("--threads").and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let root = arg("--store").unwrap_or_else(|| "./mission-data".into());
    // The embedded defaults: statistics, the live hub and a Parquet store; nothing to run
    // beside it. The simulation replays an hour of agent traffic in milliseconds, far faster
    // than any real agent records: `Block` makes it wait for the pipeline instead of dropping.
    let control = MissionControl::builder()
        .with_store_root(&root)
        .with_recorder_config(RecorderConfig {
            backpressure: Backpressure::Block { timeout: Duration::from_secs(5) },
            ..RecorderConfig::default()
        })
        .build()
        .unwrap_or_else(|e| fail(e));

    println!("Mission Control quick start: simulating {threads} agent threads over the last hour…");
    let started = Instant::now();
    let summary = simulate(control.recorder(), &Workload { threads, ..Workload::default() });
    let recorded_in = started.elapsed();
    if let Err(e) = control.flush() {
        eprintln!("warning: flush: {e}");
    }
    let health = control.health();
    let snapshot = control.stats();
    print_operations(&snapshot);
    print_models(&snapshot);

    let a = health.accounting;
    println!(
        "\nRecorded {} events in {:.1} ms, {} spans with errors, {} of {} permission checks denied.",
        summary.events,
        recorded_in.as_secs_f64() * 1e3,
        summary.errors,
        summary.denials,
        summary.permissions
    );
    println!(
        "Accounting: recorded {} = delivered {} + dropped {} + in flight {}",
        a.recorded, a.delivered, a.dropped, a.in_flight
    );
    let sinks: Vec<String> = health
        .sinks
        .iter()
        .map(|s| format!("{} {:?} ({} events)", s.name, s.state, s.events))
        .collect();
    println!(
        "Health: pipeline {}, lag {:?}, buffers {}/{} events over {} thread(s), sinks: {}",
        if health.pipeline_running { "running" } else { "stopped" },
        health.pipeline_lag,
        health.buffer.fill,
        health.buffer.capacity,
        health.buffer.producers,
        sinks.join(", ")
    );
    let store = match control.store() {
        Some(Ok(store)) => store,
        Some(Err(e)) => fail(e),
        None => fail("no store configured"),
    };
    let report = control.shutdown();
    println!(
        "Shut down: {} delivered, {} dropped.",
        report.accounting.delivered, report.accounting.dropped
    );
    let stored = store.query().count().unwrap_or_else(|e| fail(e));
    let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
    println!(
        "\nStored {stored} events in {} Parquet files under {root}/events ({:.1} bytes per event).",
        store.files().len(),
        bytes as f64 / stored.max(1) as f64
    );
    println!("Query it with DuckDB (nothing else to run):");
    println!(
        "  duckdb -c \"SELECT gen_ai_agent_name, name, count(*) AS n, round(median(duration_ns)/1e6, 1) AS p50_ms, \\
         round(sum(gen_ai_usage_cost), 4) AS cost FROM read_parquet('{root}/events/**/*.parquet', hive_partitioning = true) \\
         WHERE duration_ns IS NOT NULL GROUP BY ALL ORDER BY n DESC\""
    );
    println!(
        "or from Python: pyarrow.dataset.dataset('{root}/events', format='parquet', partitioning='hive').to_table()"
    );
    if stored != summary.events {
        fail(format!("the store holds {stored} events, {} were recorded", summary.events));
    }
    if report.accounting.recorded != summary.events
        || report.accounting.delivered + report.accounting.dropped != summary.events
    {
        eprintln!("error: accounting does not match what was recorded");
        std::process::exit(2);
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn print_operations(snapshot: &StatsSnapshot) {
    println!("\nLatency per operation (all time)");
    println!(
        "{:<18} {:<16} {:<10} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "agent", "operation", "kind", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for op in &snapshot.operations {
        let l = &op.all_time;
        println!(
            "{:<18} {:<16} {:<10} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            op.agent,
            op.operation,
            op.kind.as_str(),
            l.count,
            l.errors,
            ms(l.p50_ns),
            ms(l.p95_ns),
            ms(l.p99_ns),
            ms(l.max_ns)
        );
    }
}

fn print_models(snapshot: &StatsSnapshot) {
    println!("\nTokens and cost by model");
    println!(
        "{:<12} {:<18} {:>8} {:>12} {:>12} {:>10}",
        "provider", "model", "calls", "input tok", "output tok", "cost $"
    );
    for m in &snapshot.models {
        let u = &m.usage;
        println!(
            "{:<12} {:<18} {:>8} {:>12} {:>12} {:>10.4}",
            m.provider, m.model, u.llm_calls, u.input_tokens, u.output_tokens, u.cost_usd
        );
    }
    let u = snapshot.usage;
    println!(
        "{:<31} {:>8} {:>12} {:>12} {:>10.4}",
        "total", u.llm_calls, u.input_tokens, u.output_tokens, u.cost_usd
    );
}
