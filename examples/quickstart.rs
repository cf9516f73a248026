//! Mission Control's quick start: record a realistic simulated multi-agent workload on the
//! embedded defaults (nothing to run beside it), then print what Mission Control saw —
//! including the incident planted in the last quarter of the run (`claude-sonnet-4` three
//! times slower), caught by the models with its attributed cause.
//!
//! Run: `cargo run --release -p mission-examples --example quickstart` (add `-- --threads 20000` for more,
//! `-- --store DIR` to write somewhere other than `./mission-data`, `-- --no-incident` for a
//! calm hour, `-- --directives FILE` for directives of your own instead of
//! `examples/directives/quickstart.toml`, `--features dashboard -- --dashboard [ADDR]` to watch it in a browser on
//! http://127.0.0.1:7878/ — served during the run and afterwards, until Ctrl-C).

use std::time::{Duration, Instant};

use mission_core::{Backpressure, RecorderConfig, StatsSnapshot};
use mission_examples::{Incident, Workload, simulate};
use mission_sdk::directives::{ALERT_EVENT, BREAKER_EVENT, Permit};
use mission_sdk::models::attr;
use mission_sdk::{Event, EventBody, EventFilter, MissionControl};
use mission_store::AnomalyRow;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn main() {
    let threads = arg("--threads").and_then(|n| n.parse().ok()).unwrap_or(6_000);
    let incident = (!std::env::args().any(|a| a == "--no-incident")).then(Incident::slow_model);
    let root = arg("--store").unwrap_or_else(|| "./mission-data".into());
    let directives = arg("--directives").unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/directives/quickstart.toml").to_owned()
    });
    // The embedded defaults: statistics, the live hub and a Parquet store; nothing to run
    // beside it. The simulation replays an hour of agent traffic in milliseconds, far faster
    // than any real agent records: `Block` makes it wait for the pipeline instead of dropping.
    let control = MissionControl::builder()
        .with_store_root(&root)
        .with_directives_file(&directives)
        .with_recorder_config(
            RecorderConfig::default()
                .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(5) }),
        )
        .build()
        .unwrap_or_else(|e| fail(e));
    // `--dashboard [ADDR]`: the live dashboard, served from this process.
    let dashboard = std::env::args().any(|a| a == "--dashboard").then(|| serve_dashboard(&control));

    // This run's anomalies, as they happen (the store may hold earlier runs' too).
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 100_000);
    let logs =
        control.subscribe(EventFilter { kinds: vec!["log".into()], ..EventFilter::all() }, 100_000);
    let stored_before = match control.store() {
        Some(Ok(store)) => store.query().count().unwrap_or_else(|e| fail(e)),
        Some(Err(e)) => fail(e),
        None => 0,
    };
    println!("Mission Control quick start: simulating {threads} agent threads over the last hour…");
    if let Some(i) = &incident {
        println!(
            "(planted: {} becomes {}x slower for the last {:.0}% of the run)",
            i.model,
            i.factor,
            100.0 * (1.0 - i.from)
        );
    }
    let started = Instant::now();
    let summary = simulate(
        control.recorder(),
        &Workload { threads, incident: incident.clone(), ..Workload::default() },
    );
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
    let models = control.model_stats_reader();
    let directive_count = control.directives().list().len();
    // What an agent asking before its next web_search would be told now. Breakers are per
    // tenant: ask as a tenant whose web_search failures opened one (the workload's tenants
    // are not this instance's).
    let tenant = control
        .directives()
        .breakers()
        .into_iter()
        .find(|b| b.tool == "web_search")
        .map_or_else(|| control.config().tenant.clone(), |b| b.tenant);
    let permit = control.directives().permit_for(&tenant, "web_search");
    let rules = control.directives().clone();
    let report = control.shutdown();
    println!(
        "Shut down: {} delivered, {} dropped.",
        report.accounting.delivered, report.accounting.dropped
    );
    // Opened after the shutdown: a store lists its files when opened, and the shutdown writes
    // the last one (whatever the models and directives derived after the flush above).
    let store = mission_store::Store::open(&root).unwrap_or_else(|e| fail(e));
    let stored = store.query().count().unwrap_or_else(|e| fail(e)) - stored_before;
    let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
    println!(
        "\nStored {stored} events; the store under {root}/events has {} Parquet files ({:.1} bytes per event).",
        store.files().len(),
        bytes as f64 / (stored + stored_before).max(1) as f64
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
    let mut anomalies: Vec<AnomalyRow> =
        std::iter::from_fn(|| live.try_recv()).filter_map(|e| anomaly_row(&e)).collect();
    anomalies.sort_by_key(|a| std::cmp::Reverse(a.time_ns));
    let models = models.map(|m| m.stats());
    print_anomalies(&anomalies, models.as_ref());
    if let (Some(incident), Some(started)) = (&incident, summary.incident_started) {
        report_incident(incident, &anomalies, started as i64);
    }
    let activity: Vec<Event> = std::iter::from_fn(|| logs.try_recv())
        .filter(|e| [ALERT_EVENT, BREAKER_EVENT].contains(&e.name.as_str()))
        .collect();
    print_directives(&directives, directive_count, &activity);
    match permit {
        Permit::Deny(d) => println!(
            "  permit(\"web_search\") now: DENIED by {}: {} (retry after {:?})",
            d.directive, d.reason, d.retry_after
        ),
        other => println!("  permit(\"web_search\") now: {other:?}"),
    }
    // What the workload recorded, plus what the models and directives derived from it
    // (anomalies, memory samples, alerts, breaker changes), is exactly what was recorded;
    // everything delivered was stored.
    let derived = models.as_ref().map_or(0, |m| m.derived_events) + rules.stats().derived_events;
    if stored != report.accounting.delivered {
        fail(format!(
            "this run stored {stored} events but delivered {}",
            report.accounting.delivered
        ));
    }
    if report.accounting.recorded != summary.events + derived
        || report.accounting.delivered + report.accounting.dropped != report.accounting.recorded
    {
        eprintln!("error: accounting does not match what was recorded");
        std::process::exit(2);
    }
    if let Some(server) = dashboard {
        println!("\nDashboard still serving on {} (Ctrl-C to stop)", server.url());
        loop {
            std::thread::park();
        }
    }
}

/// Serves the live dashboard from this process on `--dashboard [ADDR]` (default
/// `127.0.0.1:7878`).
#[cfg(feature = "dashboard")]
fn serve_dashboard(control: &MissionControl) -> mission_sdk::DashboardServer {
    let addr = arg("--dashboard").filter(|a| !a.starts_with("--"));
    let addr = addr.as_deref().unwrap_or("127.0.0.1:7878");
    let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|e| fail(e));
    let server = control
        .serve_dashboard(mission_sdk::DashboardConfig::new(addr))
        .unwrap_or_else(|e| fail(e));
    println!("Dashboard: {}", server.url());
    server
}

/// Without the `dashboard` feature (the first command builds no HTTP server), `--dashboard`
/// says how to get it.
#[cfg(not(feature = "dashboard"))]
fn serve_dashboard(_: &MissionControl) -> Never {
    fail(
        "--dashboard needs the dashboard feature: \
         cargo run --release -p mission-examples --example quickstart --features dashboard -- --dashboard",
    )
}

/// The dashboard server type when the feature is off: never built.
#[cfg(not(feature = "dashboard"))]
enum Never {}

#[cfg(not(feature = "dashboard"))]
impl Never {
    fn url(&self) -> &str {
        match *self {}
    }
}

/// What the directives did: alerts firing and resolving, breakers opening and closing.
fn print_directives(file: &str, count: usize, activity: &[Event]) {
    println!("\nDirectives: {count} loaded from {file}; what they did, in stream order:");
    if activity.is_empty() {
        println!("  nothing fired");
    }
    for e in activity.iter().take(20) {
        let secs = e.time.0 / 1_000_000_000;
        let text = e.as_log().map(|l| l.message.to_string()).unwrap_or_default();
        let kind = if e.name.as_str() == BREAKER_EVENT { "breaker" } else { "alert" };
        println!(
            "  {:02}:{:02}:{:02} {kind:<8} {text}",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
    }
    if activity.len() > 20 {
        println!("  … and {} more", activity.len() - 20);
    }
}

/// An anomaly event as the store would give it back.
fn anomaly_row(e: &Event) -> Option<AnomalyRow> {
    let EventBody::Anomaly(a) = &e.body else { return None };
    Some(AnomalyRow {
        id: e.span_id.to_string(),
        time_ns: i64::try_from(e.time.0).unwrap_or(i64::MAX),
        tenant: e.tenant.as_str().to_owned(),
        agent: e.agent.as_str().to_owned(),
        metric: e.name.as_str().to_owned(),
        detector: a.detector.as_str().to_owned(),
        score: a.score,
        value: a.value,
        expected: a.expected,
        lower: a.lower,
        upper: a.upper,
        attributes: e
            .attributes
            .iter()
            .map(|x| (x.key.as_str().to_owned(), x.value.to_string()))
            .collect(),
    })
}

fn print_anomalies(anomalies: &[AnomalyRow], models: Option<&mission_sdk::ModelStats>) {
    let Some(models) = models else {
        println!("\nModels are off: no anomaly detection.");
        return;
    };
    println!(
        "\nAnomalies: {} found in {} points over {} streams, oldest first (cause: what changed, and how much)",
        anomalies.len(),
        models.points,
        models.streams
    );
    println!(
        "{:<9} {:<9} {:<18} {:<10} {:<16} {:>9} {:>9}  top cause",
        "time", "tenant", "agent", "metric", "operation/model", "value", "expected"
    );
    for a in anomalies.iter().rev().take(15) {
        println!("{}", anomaly_line(a));
    }
    if anomalies.len() > 15 {
        println!("… and {} more (mission-ctl mcp: list_anomalies)", anomalies.len() - 15);
    }
}

fn anomaly_line(a: &AnomalyRow) -> String {
    let get = |k: &str| a.attributes.get(k).cloned().unwrap_or_default();
    let secs = a.time_ns / 1_000_000_000;
    let operation = a.attributes.get(attr::MODEL).cloned().unwrap_or_else(|| get(attr::OPERATION));
    // The top cause and what changed about it: its own calls moved (its lift: the anomalous
    // window's typical value over the baseline's), or there are more of them.
    let top = a
        .attributes
        .get(attr::CAUSES)
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .map(|c| c[0].clone());
    let how = top.and_then(|t| {
        let (lift, now, was) =
            (t["lift"].as_f64()?, t["support"].as_f64()?, t["baseline_support"].as_f64()?);
        Some(if (0.8..1.25).contains(&lift) {
            format!("{:.0}% of calls, was {:.0}%", 100.0 * now, 100.0 * was)
        } else {
            format!("{lift:.1}x its usual")
        })
    });
    let cause = match (a.attributes.get(attr::CAUSE), how) {
        (Some(c), Some(how)) => format!("{c} ({how})"),
        (Some(c), None) => c.clone(),
        (None, _) => "-".into(),
    };
    format!(
        "{:02}:{:02}:{:02} {:<9} {:<18} {:<10} {:<16} {:>9.0} {:>9.0}  {cause}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        a.tenant,
        a.agent,
        a.metric,
        operation,
        a.value,
        a.expected
    )
}

/// Says whether the planted incident was caught: an alarm on the slowed model's latency after
/// the incident began, and what it was blamed on.
fn report_incident(incident: &Incident, anomalies: &[AnomalyRow], started_ns: i64) {
    let caught: Vec<&AnomalyRow> = anomalies
        .iter()
        .rev()
        .filter(|a| a.metric == "latency_ms" && a.time_ns >= started_ns)
        .filter(|a| a.attributes.get(attr::MODEL).map(String::as_str) == Some(incident.model))
        .collect();
    match caught.first() {
        Some(first) => {
            let blamed = caught
                .iter()
                .filter(|a| {
                    a.attributes.get(attr::CAUSE).map(String::as_str)
                        == Some(&format!("model={}", incident.model))
                })
                .count();
            println!(
                "\nThe planted incident ({} {}x slower) was caught in {} of the agent/tenant streams, the first {:.1} min after it began; {} of those alarms name model={} as the top cause:\n{}",
                incident.model,
                incident.factor,
                caught.len(),
                (first.time_ns - started_ns) as f64 / 6e10,
                blamed,
                incident.model,
                anomaly_line(first)
            );
        }
        None => println!("\nThe planted incident ({} slower) was NOT caught.", incident.model),
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
