//! `mission-ctl tail`: new events as they land in a store, like `tail -f`.
//!
//! Files are finalized atomically (renamed when complete), so a file that appears in the
//! listing is whole: `tail` asks the store's [`Follower`] every `--poll` (250 ms) for the files
//! it has not read yet, reads them through the store's decoder ([`EventFile`]) and prints their
//! events oldest first. The follower remembers the paths of the files it has seen, pruned to
//! those still present — never the events — so memory stays bounded however long it runs.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use mission_core::Level;
use mission_store::schema::col;
use mission_store::{EventFile, EventRow, Follower, StoreFile};

use crate::{Error, clean, invalid, utc};

/// Events sorted and printed at once at most; a larger round is printed in chunks of this
/// many (each oldest first).
const CHUNK: usize = 100_000;

/// When to colour the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always, even into a pipe or with `NO_COLOR` set.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to colour standard output.
    pub fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && io::stdout().is_terminal()
            }
        }
    }
}

/// Options of `tail`.
#[derive(Clone, Debug, clap::Args)]
pub struct TailArgs {
    /// Only events of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only events of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only events of this kind: llm_call, tool_call, agent_step, retrieval, log, permission, …
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events of this thread: its id, its short form as printed (4bf9…4736), or hex digits
    /// it starts or ends with.
    #[arg(long, value_parser = parse_thread_filter)]
    pub thread: Option<String>,
    /// Only log records at this level or above: trace, debug, info, warn, error.
    #[arg(long, value_parser = parse_level)]
    pub level: Option<Level>,
    /// Print the last N events already in the store first.
    #[arg(long, short = 'n', default_value_t = 10)]
    pub lines: usize,
    /// Exit after those instead of following new events.
    #[arg(long)]
    pub no_follow: bool,
    /// Print one JSON object per line (JSON Lines).
    #[arg(long)]
    pub json: bool,
    /// Colour failures red and warnings yellow: auto (when stdout is a terminal and NO_COLOR is
    /// not set), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// How often to look for new files.
    #[arg(long, default_value = "250ms", value_parser = crate::parse_duration)]
    pub poll: Duration,
}

impl Default for TailArgs {
    /// The command line's defaults: the last 10 events, then follow.
    fn default() -> Self {
        Self {
            tenant: None,
            agent: None,
            kind: None,
            thread: None,
            level: None,
            lines: 10,
            no_follow: false,
            json: false,
            color: Color::Auto,
            poll: Duration::from_millis(250),
        }
    }
}

/// A thread filter: hex digits the id starts or ends with, or `head…tail` (also `head..tail`).
fn parse_thread_filter(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    let hex = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = match t.split_once('…').or_else(|| t.split_once("..")) {
        Some((head, tail)) => hex(head) && hex(tail) && head.len() + tail.len() <= 32,
        None => hex(&t),
    };
    if !ok {
        return Err(format!(
            "{text:?}: expected a thread id, its short form (4bf9…4736) or hex digits it starts or \
             ends with"
        ));
    }
    Ok(t.replace("..", "…"))
}

/// Whether thread `id` matches a filter of [`parse_thread_filter`].
fn thread_matches(filter: &str, id: &str) -> bool {
    match filter.split_once('…') {
        Some((head, tail)) => id.starts_with(head) && id.ends_with(tail),
        None => id.starts_with(filter) || id.ends_with(filter),
    }
}

/// A thread id as `tail` prints it: the first and last four digits (ids made by one process
/// share their first half and differ in their second).
fn short_thread(id: &str) -> String {
    match (id.get(..4), id.get(id.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) if id.len() > 9 => format!("{head}…{tail}"),
        _ => id.to_owned(),
    }
}

fn parse_level(text: &str) -> Result<Level, String> {
    text.parse::<Level>().map_err(|e| e.to_string())
}

/// One event as `tail` prints it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
struct TailEvent {
    time: String,
    time_ns: i64,
    tenant: String,
    kind: String,
    agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
}

/// The columns `tail` reads.
const COLUMNS: [&str; 22] = [
    col::TIME,
    col::KIND,
    col::AGENT,
    col::THREAD_ID,
    col::SPAN_ID,
    col::NAME,
    col::DURATION_NS,
    col::STATUS,
    col::ERROR_MESSAGE,
    col::MODEL,
    col::INPUT_TOKENS,
    col::OUTPUT_TOKENS,
    col::COST,
    col::LOG_LEVEL,
    col::LOG_MESSAGE,
    col::METRIC_VALUE,
    col::METRIC_UNIT,
    col::PERMISSION_ACTION,
    col::PERMISSION_RESOURCE,
    col::PERMISSION_DECISION,
    col::ANOMALY_DETECTOR,
    col::ANOMALY_SCORE,
];

impl TailArgs {
    /// Reads one finalized file (through the store's decoder, which checks its schema
    /// version) and passes the events that match the filters to `sink`.
    fn read_file(&self, file: &StoreFile, sink: &mut dyn FnMut(TailEvent)) -> Result<(), Error> {
        for row in EventFile::open(file)?.rows(Some(&COLUMNS))? {
            if let Some(event) = self.event(row?) {
                sink(event);
            }
        }
        Ok(())
    }

    /// The event `tail` prints for `row`, if it matches the filters.
    fn event(&self, row: EventRow) -> Option<TailEvent> {
        if self.kind.as_ref().is_some_and(|want| *want != row.kind)
            || self.agent.as_ref().is_some_and(|want| *want != row.agent)
            || self
                .thread
                .as_ref()
                .is_some_and(|want| !thread_matches(want, row.thread_id.as_deref().unwrap_or("")))
        {
            return None;
        }
        if let Some(min) = self.level {
            let at = row.level.as_deref().and_then(|l| l.parse::<Level>().ok());
            if at.is_none_or(|at| at < min) {
                return None;
            }
        }
        Some(TailEvent {
            time: utc(row.time_ns),
            time_ns: row.time_ns,
            tenant: row.tenant,
            kind: row.kind,
            agent: row.agent,
            thread_id: row.thread_id,
            span_id: row.span_id.map(|s| format!("{s:016x}")),
            name: row.name,
            duration_ns: row.duration_ns,
            status: row.status,
            error_message: row.error_message,
            model: row.model,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cost_usd: row.cost_usd,
            level: row.level,
            message: row.message,
            decision: row.decision,
            action: row.action,
            resource: row.resource,
            value: row.value,
            unit: row.unit,
            score: row.score,
        })
    }

    /// The last `self.lines` matching events among `files`, oldest first. Partitions are hours
    /// of event time, so it reads hour by hour from the newest and stops once it has enough.
    fn last_events(&self, files: &[StoreFile]) -> Vec<TailEvent> {
        let n = self.lines;
        if n == 0 {
            return Vec::new();
        }
        let mut hours: BTreeMap<i128, Vec<&StoreFile>> = BTreeMap::new();
        for f in files {
            hours.entry(f.partition.start_ns()).or_default().push(f);
        }
        // The newest n events: a min-heap of (time, order read), the oldest on top.
        let mut heap: BinaryHeap<std::cmp::Reverse<Keyed>> = BinaryHeap::new();
        let mut order = 0u64;
        for files in hours.values().rev() {
            for f in files {
                let result = self.read_file(f, &mut |e| {
                    order += 1;
                    heap.push(std::cmp::Reverse(Keyed(e.time_ns, order, e)));
                    if heap.len() > n {
                        heap.pop();
                    }
                });
                if let Err(e) = result {
                    eprintln!("warning: skipped {}: {e}", f.path.display());
                }
            }
            if heap.len() >= n {
                break;
            }
        }
        let mut events: Vec<Keyed> = heap.into_iter().map(|k| k.0).collect();
        events.sort_by_key(|k| (k.0, k.1));
        events.into_iter().map(|k| k.2).collect()
    }
}

/// An event ordered by time, then by the order it was read in.
struct Keyed(i64, u64, TailEvent);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}

impl Eq for Keyed {}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

fn write_event(out: &mut dyn Write, e: &TailEvent, json: bool, color: bool) -> io::Result<()> {
    if json {
        let line = serde_json::to_string(e).map_err(io::Error::other)?;
        return writeln!(out, "{line}");
    }
    let thread = e.thread_id.as_deref().map_or_else(|| "-".to_owned(), short_thread);
    let mut line = format!(
        "{}  {:<10}  {}  {:<9}  {}",
        e.time,
        clean(&e.kind),
        clean(&e.agent),
        thread,
        clean(&e.name)
    );
    if let Some(d) = e.duration_ns {
        let status = clean(e.status.as_deref().unwrap_or(""));
        line.push_str(&format!("  {:.1}ms {status}", d as f64 / 1e6));
        if let Some(model) = &e.model {
            line.push_str(&format!(
                " {} {}/{} tokens ${:.6}",
                clean(model),
                e.input_tokens.unwrap_or(0),
                e.output_tokens.unwrap_or(0),
                e.cost_usd.unwrap_or(0.0)
            ));
        }
        if let Some(m) = &e.error_message {
            line.push_str(&format!(" error: {}", clean(m)));
        }
    } else if let Some(level) = &e.level {
        line.push_str(&format!(
            "  {:<5} {}",
            clean(&level.to_uppercase()),
            clean(e.message.as_deref().unwrap_or(""))
        ));
    } else if let Some(decision) = &e.decision {
        line.push_str(&format!(
            "  {} {} {}",
            clean(decision),
            clean(e.action.as_deref().unwrap_or("")),
            clean(e.resource.as_deref().unwrap_or(""))
        ));
    } else if let Some(v) = e.value {
        line.push_str(&format!("  {v} {}", clean(e.unit.as_deref().unwrap_or(""))));
    } else if let Some(s) = e.score {
        line.push_str(&format!("  score {s:.2}"));
    }
    let paint = if !color {
        None
    } else if e.status.as_deref() == Some("error") || e.level.as_deref() == Some("error") {
        Some(RED)
    } else if e.level.as_deref() == Some("warn") || e.decision.as_deref() == Some("deny") {
        Some(YELLOW)
    } else {
        None
    };
    match paint {
        Some(p) => writeln!(out, "{p}{line}{RESET}"),
        None => writeln!(out, "{line}"),
    }
}

fn print_sorted(
    out: &mut dyn Write,
    events: &mut Vec<TailEvent>,
    json: bool,
    color: bool,
) -> io::Result<()> {
    events.sort_by_key(|e| e.time_ns);
    for e in events.drain(..) {
        write_event(out, &e, json, color)?;
    }
    out.flush()
}

/// `mission-ctl tail`: prints the last `args.lines` events of the store at `root`, then (unless
/// `args.no_follow`) every new event as its file lands, until the output is closed or the
/// process is stopped.
///
/// # Errors
/// A store directory that cannot be listed, or a failed write (a broken pipe included: see
/// [`exit_code`](crate::exit_code)). Files that cannot be read are reported on stderr and
/// skipped.
pub fn run_tail(root: &Path, args: &TailArgs, out: &mut dyn Write) -> Result<(), Error> {
    if args.poll.is_zero() {
        return Err(invalid("poll", "--poll must be longer than zero".into()));
    }
    let color = !args.json && args.color.enabled();
    let mut follower = Follower::new(root).scoped_to(args.tenant.as_deref());
    let store = follower.skip_existing()?;
    let mut events = args.last_events(store.files());
    print_sorted(out, &mut events, args.json, color)?;
    drop(store);
    if args.no_follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(args.poll);
        for f in follower.poll_files()? {
            let result = args.read_file(&f, &mut |e| events.push(e));
            if let Err(e) = result {
                eprintln!("warning: skipped {}: {e}", f.path.display());
            }
            if events.len() >= CHUNK {
                print_sorted(out, &mut events, args.json, color)?;
            }
        }
        print_sorted(out, &mut events, args.json, color)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> TailEvent {
        TailEvent {
            time: utc(1_741_082_400_000_000_000),
            time_ns: 1_741_082_400_000_000_000,
            tenant: "acme".into(),
            kind: "tool_call".into(),
            agent: "support-bot".into(),
            thread_id: Some("0123456789abcdef0123456789abcdef".into()),
            name: "web_search".into(),
            duration_ns: Some(420_000_000),
            status: Some("error".into()),
            error_message: Some("upstream\nreturned 503".into()),
            ..TailEvent::default()
        }
    }

    #[test]
    fn lines_are_coloured_only_when_asked_and_never_carry_control_characters() {
        let mut out = Vec::new();
        write_event(&mut out, &event(), false, false).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "2025-03-04T10:00:00.000Z  tool_call   support-bot  0123…cdef  web_search  420.0ms \
             error error: upstream\\nreturned 503\n"
        );
        let mut out = Vec::new();
        write_event(&mut out, &event(), false, true).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(RED) && text.ends_with(&format!("{RESET}\n")), "{text:?}");
        let log = TailEvent {
            kind: "log".into(),
            duration_ns: None,
            status: None,
            error_message: None,
            level: Some("warn".into()),
            message: Some("\x1b[2Jcleared".into()),
            ..event()
        };
        let mut out = Vec::new();
        write_event(&mut out, &log, false, true).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(YELLOW) && text.contains("WARN  \\u{1b}[2Jcleared"), "{text:?}");
    }

    #[test]
    fn thread_filters_and_levels_are_checked() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(short_thread(id), "4bf9…4736");
        assert_eq!(parse_thread_filter("4BF9..4736"), Ok("4bf9…4736".into()));
        for filter in ["4bf9…4736", "4bf92f", "0e4736", id] {
            let filter = parse_thread_filter(filter).expect("filter");
            assert!(thread_matches(&filter, id), "{filter}");
        }
        assert!(!thread_matches("4bf9…4737", id));
        assert!(!thread_matches("92f3", id));
        for bad in ["xyz", "", "…", "4bf9…", &"0".repeat(33), "4bf9…x"] {
            assert!(parse_thread_filter(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_level("warn"), Ok(Level::Warn));
        assert!(parse_level("loud").is_err());
    }
}
