//! `mission-ctl`: Mission Control from the command line, over a store on disk — new events as
//! they land (`tail`), the threads an agent ran, one thread's span tree, latency and cost by
//! operation, model, agent, tenant or user, a report for a period in Markdown or JSON, filtered
//! queries as a table, JSON or CSV, and a health check of the store itself.
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
//! | 0 | success (also when the reader of the output went away, as with `\| head`) |
//! | 1 | `doctor` found problems, `audit verify` found a broken chain, `thread` found no such thread, or `pack import` refused a pack (digest, size, signature, trust; nothing imported) |
//! | 2 | bad arguments (an unknown option, column or group, a malformed time, duration or id) |
//! | 3 | the store could not be read |
//! | 4 | files were unreadable and skipped, so the answer is incomplete (`threads`, `thread`, `stats`, `cost`, `report`, `query`; a warning on stderr names them; `--skip-unreadable` accepts the partial answer and exits 0) |
//!
//! # Untrusted input
//!
//! Arguments and stores come from outside: a malformed argument is an error with exit code 2,
//! never a panic; unreadable files are skipped and reported. Memory stays bounded by what a
//! command shows (`tail` remembers the names of the files it read, pruned to those still
//! present, not the events), except where a summary needs one entry per thread or group.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

mod audit;
pub mod compact;
pub mod control;
mod cost;
mod diff;
mod export;
mod graph;
pub mod pack;
pub mod progress;
mod report;
mod runs;
pub mod serve;
#[cfg(feature = "sql")]
pub mod sql;
mod tail;
#[cfg(feature = "s3")]
pub mod upload;
mod window;

use std::io::{self, Write};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use mission_core::Timestamp;
use mission_store::{GroupBy, SpanNode, Store};

pub use audit::{run_audit_verify, run_erase};
pub use cost::run_cost;
pub use diff::run_diff;
pub use export::{ExportArgs, ExportFormatArg, run_export};
pub use graph::{GraphFormat, graph, run_graph};
pub use mission_sdk::report::{ErrorCount, Report, Volumes, build_report, utc};
pub use report::{ReportFormat, run_report};
pub use runs::{IncidentRow, RunRow, incidents, run_incidents, run_runs, runs};
pub use tail::{Color, TailArgs, run_tail};
pub use window::{Window, WindowArgs, parse_time};

/// What a command can fail with.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An invalid-argument error (exit code 2).
pub(crate) fn invalid(what: &'static str, reason: String) -> Error {
    Box::new(mission_store::Error::Invalid { what, reason })
}

/// The exit code for an error of a command: 0 when the reader of the output went away (a
/// broken pipe, as with `| head`), 2 for an invalid argument, 3 for anything else (the store
/// could not be read).
pub fn exit_code(error: &Error) -> u8 {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
            return 0;
        }
        source = e.source();
    }
    #[cfg(feature = "sql")]
    if let Some(e) = error.downcast_ref::<mission_store::sql::SqlError>() {
        use mission_store::sql::SqlError;
        return match e {
            SqlError::Invalid(_) | SqlError::Forbidden(_) | SqlError::Setting { .. } => 2,
            _ => 3,
        };
    }
    match error.downcast_ref::<mission_store::Error>() {
        Some(mission_store::Error::Invalid { .. }) => 2,
        _ => 3,
    }
}

/// The exit code of a command whose answer misses files it could not read (unless
/// `--skip-unreadable`).
pub const EXIT_UNREADABLE: u8 = 4;

/// The warning printed on stderr when a command skipped files: one line per file, with the
/// reason and the rows it held when known.
pub fn unreadable_warning(skipped: &[mission_store::SkippedFile]) -> String {
    let rows: u64 = skipped.iter().filter_map(|f| f.rows).sum();
    let unknown = skipped.iter().filter(|f| f.rows.is_none()).count();
    let mut text = format!(
        "warning: the answer is incomplete: {} unreadable file(s) skipped ({rows} rows known to be missing{})\n",
        skipped.len(),
        if unknown > 0 { format!(", {unknown} file(s) of unknown size") } else { String::new() }
    );
    for f in skipped {
        text.push_str(&format!("warning: skipped {f}\n"));
    }
    text
}

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
    #[arg(long, value_parser = parse_thread_id)]
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
    /// Only events of the last DURATION (e.g. 15m, 2h, 7d), ending at --to or now.
    #[arg(long, value_parser = parse_duration, conflicts_with = "from")]
    pub since: Option<Duration>,
    /// Only events at or after this time: RFC 3339 (2025-03-04T10:00:00Z), a date (UTC) or
    /// nanoseconds since the epoch.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// Only events before this time (same forms as --from).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
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

/// Checks a thread id (32 hex digits, not all zero) and returns it in lowercase.
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_thread_id(text: &str) -> Result<String, String> {
    let id = text.trim().to_ascii_lowercase();
    id.parse::<mission_core::ThreadId>().map_err(|e| format!("{text:?}: {e}"))?;
    Ok(id)
}

fn query<'s>(store: &'s Store, args: &QueryArgs) -> Result<mission_store::Query<'s>, Error> {
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
    match window::bounds(args.since, args.from, args.to)? {
        (None, None) => {}
        (from, to) => {
            q = q.time_range(from.unwrap_or(Timestamp(0)), to.unwrap_or(Timestamp(u64::MAX >> 1)));
        }
    }
    Ok(q)
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

/// Writes an aligned text table: the header, a rule, then the rows (cells of more than 60
/// characters are cut).
pub(crate) fn write_table(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(clean(cell).chars().count().min(60));
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c = clean(c);
                let c: String = if c.chars().count() > 60 {
                    c.chars().take(59).chain(['…']).collect()
                } else {
                    c.into_owned()
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

pub(crate) use mission_sdk::report::clean;

/// The column header of a group.
pub(crate) fn group_name(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Operation => "operation",
        GroupBy::Agent => "agent",
        GroupBy::Model => "model",
        GroupBy::Tenant => "tenant",
        GroupBy::User => "user",
    }
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
    let mut q = query(store, args)?.limit(args.limit);
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
    let mut threads = store.threads(query(store, args)?)?;
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
        writeln!(out, "{indent}  · {kind}: {}", clean(text))?;
    }
    for child in &node.children {
        print_node(out, child, depth + 1, thread_start)?;
    }
    Ok(())
}

/// Most levels of child threads `thread` prints.
const TREE_DEPTH: usize = 4;

/// A thread's parent, last state change and child threads (their children indented, down to
/// [`TREE_DEPTH`] levels).
fn print_tree(
    store: &Store,
    out: &mut dyn Write,
    links: &mission_store::ThreadLinks,
) -> Result<(), Error> {
    if let Some(parent) = &links.parent_thread_id {
        writeln!(out, "  child of thread {parent}")?;
    }
    if let Some(state) = &links.state {
        writeln!(out, "  state: {state} (by {})", links.state_by.as_deref().unwrap_or("?"))?;
    }
    if links.children.is_empty() {
        return Ok(());
    }
    writeln!(out, "  child threads:")?;
    fn children(
        store: &Store,
        out: &mut dyn Write,
        links: &mission_store::ThreadLinks,
        level: usize,
    ) -> Result<(), Error> {
        for child in &links.children {
            let theirs = store.thread_links(child)?;
            let state = theirs.state.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            writeln!(out, "{}└ {child}{state}", "  ".repeat(level + 1))?;
            if level < TREE_DEPTH {
                children(store, out, &theirs, level + 1)?;
            } else if !theirs.children.is_empty() {
                writeln!(
                    out,
                    "{}… {} more level(s)",
                    "  ".repeat(level + 2),
                    theirs.children.len()
                )?;
            }
        }
        if links.children_truncated {
            writeln!(out, "{}… more children than listed", "  ".repeat(level + 1))?;
        }
        Ok(())
    }
    children(store, out, links, 1)
}

/// `mission-ctl thread`: one thread's span tree with timings, tokens, cost, errors, logs and
/// permission decisions, its parent and child threads
/// (subagents) as a tree and its last state change. Returns whether the thread has events.
///
/// # Errors
/// A malformed id, unreadable files, or a failed write.
pub fn run_thread(store: &Store, id: &str, json: bool, out: &mut dyn Write) -> Result<bool, Error> {
    let id = parse_thread_id(id).map_err(|reason| invalid("thread id", reason))?;
    let id = id.as_str();
    let view = store.thread(id)?;
    let links = store.thread_links(id)?;
    if json {
        let mut value = serde_json::to_value(&view)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("tree".into(), serde_json::to_value(&links)?);
        }
        writeln!(out, "{value}")?;
    } else if view.event_count == 0 {
        writeln!(out, "no events for thread {id}")?;
    } else {
        let start = view.roots.iter().map(|r| r.start_ns).min().unwrap_or(0);
        writeln!(out, "thread {id}: {} events", view.event_count)?;
        print_tree(store, out, &links)?;
        for root in &view.roots {
            print_node(out, root, 1, start)?;
        }
        for (_, kind, text) in &view.loose_events {
            writeln!(out, "  · {kind}: {}", clean(text))?;
        }
    }
    Ok(view.event_count > 0)
}

/// `mission-ctl stats`: latency percentiles, error rate, throughput, tokens and cost per group
/// over `window`, of one tenant or all.
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_stats(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    group_by: &[GroupBy],
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let stats = store.operation_stats(window.query(store, tenant), group_by)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&stats)?)?;
        return Ok(());
    }
    let mut header: Vec<String> = group_by.iter().map(|g| group_name(*g).to_owned()).collect();
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

/// `mission-ctl doctor --recover`: recovers what writers that are no longer running left
/// (see [`mission_store::wal`]) and says what it did; files of running writers are left alone.
///
/// # Errors
/// I/O or Parquet errors of the recovery, or a failed write.
pub fn run_recover(
    store: &mut Store,
    json: bool,
    out: &mut dyn Write,
) -> Result<mission_store::Recovery, Error> {
    let recovery = store.recover()?;
    if !json {
        writeln!(
            out,
            "recovered {} events into {} files; {} log segments of files already finalized \
             deleted; {} temporary files deleted; {} files quarantined; {} files of running \
             writers left alone",
            recovery.rows_recovered,
            recovery.files_recovered.len(),
            recovery.already_finalized,
            recovery.temps_removed,
            recovery.quarantined.len(),
            recovery.in_use
        )?;
        for (p, why) in &recovery.quarantined {
            writeln!(out, "  quarantined {}: {why}", p.display())?;
        }
    }
    Ok(recovery)
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
        for s in &report.wal {
            match &s.unrecoverable {
                Some(why) => writeln!(
                    out,
                    "  write-ahead log of a writer that did not finish, unrecoverable ({why}; \
                     recovery quarantines it): {}",
                    s.path.display()
                )?,
                None if s.rows == 0 => writeln!(
                    out,
                    "  write-ahead log of a file already finalized (recovery deletes it): {}",
                    s.path.display()
                )?,
                None => writeln!(
                    out,
                    "  write-ahead log of a writer that did not finish: {} events not yet in the \
                     store (recovered by `doctor --recover` or the next writer): {}",
                    s.rows,
                    s.path.display()
                )?,
            }
        }
        for p in &report.quarantined {
            writeln!(out, "  quarantined by recovery (never read): {}", p.display())?;
        }
        if report.in_progress > 0 {
            writeln!(out, "  {} files being written by a running writer", report.in_progress)?;
        }
        writeln!(out, "  {}", if report.healthy() { "healthy" } else { "problems found" })?;
    }
    Ok(report)
}
