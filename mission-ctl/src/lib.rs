//! `mission-ctl`: Mission Control from the command line, over a store on disk — the threads an
//! agent ran, one thread's span tree, latency and cost by operation or model, filtered queries
//! as a table, JSON or CSV, and a health check of the store itself.
//!
//! It is a separate crate because it is a program, not a library an agent links: it depends
//! on the store's reader and owns its command-line interface. The commands are functions here
//! (each writes to any `io::Write`), so they are tested without spawning a process.
//!
//! ```
//! use mission_ctl::{Format, QueryArgs, run_query};
//! let root = std::env::temp_dir().join(format!("mission-ctl-doc-{}", std::process::id()));
//! let store = mission_store::Store::open(&root)?; // an empty store is fine
//! let mut out = Vec::new();
//! run_query(&store, &QueryArgs { format: Format::Json, ..QueryArgs::default() }, &mut out)?;
//! assert_eq!(String::from_utf8(out)?, "[]\n");
//! # Ok::<(), mission_ctl::Error>(())
//! ```
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `doctor` found problems |
//! | 2 | bad arguments |
//! | 3 | the store could not be read |
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

use std::io::{self, Write};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use mission_core::Timestamp;
use mission_store::{GroupBy, SpanNode, Store};

/// What a command can fail with.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Output formats of `query`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    #[default]
    Table,
    /// A JSON array of objects.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// Filters of `query` (and `threads`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct QueryArgs {
    /// Only events of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only events of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only events of this thread (32 hex digits).
    #[arg(long)]
    pub thread: Option<String>,
    /// Only events of this kind: llm_call, tool_call, agent_step, retrieval, log, permission, …
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only spans with this status: ok, error, unset.
    #[arg(long)]
    pub status: Option<String>,
    /// Only events of the last DURATION (e.g. 15m, 2h, 7d).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only these columns (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Parses a duration such as `15m` (for `--since`).
///
/// # Errors
/// A message naming the text and the accepted units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    mission_core::duration_text::parse(text)
}

fn query<'s>(store: &'s Store, args: &QueryArgs) -> mission_store::Query<'s> {
    let mut q = store.query();
    if let Some(v) = &args.tenant {
        q = q.tenant(v);
    }
    if let Some(v) = &args.agent {
        q = q.agent(v);
    }
    if let Some(v) = &args.thread {
        q = q.thread(v);
    }
    if let Some(v) = &args.kind {
        q = q.kind(v);
    }
    if let Some(v) = &args.name {
        q = q.name(v);
    }
    if let Some(v) = &args.status {
        q = q.status(v);
    }
    if let Some(since) = args.since {
        let now = Timestamp::now();
        q = q.time_range(
            Timestamp(now.0.saturating_sub(since.as_nanos() as u64)),
            Timestamp(u64::MAX >> 1),
        );
    }
    q
}

/// Rows of `batches` as strings, with the column names.
fn cells(batches: &[RecordBatch]) -> Result<(Vec<String>, Vec<Vec<String>>), Error> {
    let Some(first) = batches.first() else { return Ok((Vec::new(), Vec::new())) };
    let names: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for batch in batches {
        // Timestamps are stored with the zone "UTC"; the formatter (without a time-zone
        // database) prints offset zones, so present them as "+00:00" (the same instants).
        let columns: Vec<arrow::array::ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                arrow::datatypes::DataType::Timestamp(unit, Some(_)) => arrow::compute::cast(
                    c,
                    &arrow::datatypes::DataType::Timestamp(*unit, Some("+00:00".into())),
                ),
                _ => Ok(c.clone()),
            })
            .collect::<Result<_, _>>()?;
        let formatters: Vec<ArrayFormatter<'_>> = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    Ok((names, rows))
}

fn write_table(out: &mut dyn Write, header: &[String], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(60));
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = if c.chars().count() > 60 {
                    c.chars().take(59).chain(['…']).collect()
                } else {
                    c.clone()
                };
                format!("{c:<w$}")
            })
            .collect();
        writeln!(out, "{}", parts.join("  ").trim_end())
    };
    line(out, header)?;
    line(out, &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())?;
    for row in rows {
        line(out, row)?;
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of nanoseconds since the epoch.
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let (y, m, d) = mission_store::layout::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", t / 3600, t % 3600 / 60, t % 60)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `mission-ctl query`: filtered events as a table, JSON or CSV.
///
/// # Errors
/// Unknown columns, unreadable files, or a failed write.
pub fn run_query(store: &Store, args: &QueryArgs, out: &mut dyn Write) -> Result<(), Error> {
    let mut q = query(store, args).limit(args.limit);
    if !args.columns.is_empty() {
        let cols: Vec<&str> = args.columns.iter().map(String::as_str).collect();
        q = q.columns(&cols);
    }
    let batches = q.batches()?;
    let (header, rows) = cells(&batches)?;
    match args.format {
        Format::Table => write_table(out, &header, &rows)?,
        Format::Csv => {
            writeln!(out, "{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","))?;
            for row in &rows {
                writeln!(
                    out,
                    "{}",
                    row.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
                )?;
            }
        }
        Format::Json => {
            let objects: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let map = header
                        .iter()
                        .zip(row)
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect();
                    serde_json::Value::Object(map)
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&objects)?)?;
        }
    }
    Ok(())
}

/// `mission-ctl threads`: one summary row per thread, newest first.
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_threads(
    store: &Store,
    args: &QueryArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut threads = store.threads(query(store, args))?;
    threads.truncate(args.limit as usize);
    if json {
        writeln!(out, "{}", serde_json::to_string(&threads)?)?;
        return Ok(());
    }
    let header: Vec<String> = [
        "thread",
        "agent",
        "tenant",
        "start",
        "duration ms",
        "spans",
        "llm",
        "tokens",
        "cost $",
        "errors",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let rows: Vec<Vec<String>> = threads
        .iter()
        .map(|t| {
            vec![
                t.thread_id.clone(),
                t.agent.clone(),
                t.tenant.clone(),
                utc(t.start_ns),
                format!("{:.1}", t.duration_ns as f64 / 1e6),
                t.spans.to_string(),
                t.llm_calls.to_string(),
                (t.input_tokens + t.output_tokens).to_string(),
                format!("{:.4}", t.cost_usd),
                t.errors.to_string(),
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    Ok(())
}

fn print_node(
    out: &mut dyn Write,
    node: &SpanNode,
    depth: usize,
    thread_start: i64,
) -> io::Result<()> {
    let indent = "  ".repeat(depth);
    let mut line = format!(
        "{indent}{} {} +{:.1}ms {:.1}ms {}",
        node.kind,
        node.name,
        (node.start_ns - thread_start) as f64 / 1e6,
        node.duration_ns as f64 / 1e6,
        node.status
    );
    if let Some(model) = &node.model {
        line.push_str(&format!(
            " model={model} tokens={}/{} cost=${:.6}",
            node.input_tokens.unwrap_or(0),
            node.output_tokens.unwrap_or(0),
            node.cost_usd.unwrap_or(0.0)
        ));
    }
    if let Some(e) = &node.error_message {
        line.push_str(&format!(" error={e:?}"));
    }
    writeln!(out, "{line}")?;
    for (_, kind, text) in &node.events {
        writeln!(out, "{indent}  · {kind}: {text}")?;
    }
    for child in &node.children {
        print_node(out, child, depth + 1, thread_start)?;
    }
    Ok(())
}

/// `mission-ctl thread`: one thread's span tree with timings, tokens, cost, errors, logs and
/// permission decisions.
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_thread(store: &Store, id: &str, json: bool, out: &mut dyn Write) -> Result<bool, Error> {
    let view = store.thread(id)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
    } else if view.event_count == 0 {
        writeln!(out, "no events for thread {id}")?;
    } else {
        let start = view.roots.iter().map(|r| r.start_ns).min().unwrap_or(0);
        writeln!(out, "thread {id}: {} events", view.event_count)?;
        for root in &view.roots {
            print_node(out, root, 1, start)?;
        }
        for (_, kind, text) in &view.loose_events {
            writeln!(out, "  · {kind}: {text}")?;
        }
    }
    Ok(view.event_count > 0)
}

/// `mission-ctl stats`: latency percentiles, error rate, throughput, tokens and cost per group
/// over the last `since`.
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_stats(
    store: &Store,
    since: Duration,
    group_by: &[GroupBy],
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let now = Timestamp::now();
    let from = Timestamp(now.0.saturating_sub(since.as_nanos() as u64));
    let stats =
        store.operation_stats(store.query().time_range(from, Timestamp(now.0 + 1)), group_by)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&stats)?)?;
        return Ok(());
    }
    let mut header: Vec<String> =
        group_by.iter().map(|g| format!("{g:?}").to_lowercase()).collect();
    if header.is_empty() {
        header.push("operation".into());
    }
    header.extend(
        ["count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "per s", "tokens", "cost $"]
            .map(String::from),
    );
    let ms = |ns: u64| format!("{:.1}", ns as f64 / 1e6);
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            let mut row = s.group.clone();
            row.extend([
                s.count.to_string(),
                s.errors.to_string(),
                ms(s.p50_ns),
                ms(s.p95_ns),
                ms(s.p99_ns),
                ms(s.max_ns),
                format!("{:.2}", s.per_second),
                s.tokens.to_string(),
                format!("{:.4}", s.cost_usd),
            ]);
            row
        })
        .collect();
    write_table(out, &header, &rows)?;
    Ok(())
}

/// What `doctor` found.
pub type DoctorReport = mission_store::StoreCheck;

/// `mission-ctl doctor`: checks every file of the store.
///
/// # Errors
/// A directory that cannot be listed, or a failed write.
pub fn run_doctor(store: &Store, json: bool, out: &mut dyn Write) -> Result<DoctorReport, Error> {
    let report = store.check()?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "store {}", store.root().display())?;
        writeln!(
            out,
            "  {} files, {} bytes, {} events",
            report.files, report.bytes, report.events
        )?;
        for p in &report.leftovers {
            writeln!(
                out,
                "  leftover of a writer that did not finish (never read): {}",
                p.display()
            )?;
        }
        for p in &report.misplaced {
            writeln!(out, "  outside the partition layout (never read): {}", p.display())?;
        }
        for (p, why) in &report.unreadable {
            writeln!(out, "  unreadable: {}: {why}", p.display())?;
        }
        writeln!(out, "  {}", if report.healthy() { "healthy" } else { "problems found" })?;
    }
    Ok(report)
}
