//! A report on what happened over a period: volumes, latency per operation, error rate, cost
//! per model, the slowest threads, scores, recommendations ([`crate::advice`]) and the most
//! frequent errors, as a [`Report`] (serialises to JSON), as Markdown ([`write_markdown`]) or as
//! a self-contained, print-ready HTML page ([`html`]). `mission-ctl report` prints it; the
//! dashboard serves the HTML page at `GET /api/report.html` within the token's tenant.
//!
//! # Guide
//!
//! 1. [`build_report`] reads a [`Store`] over `from <= time < to`, for one tenant or all:
//!    a few passes over the period's files, memory bounded (at most 10 rows per top list,
//!    10 000 distinct error messages).
//! 2. Serialise the [`Report`] (`serde_json::to_string`), or render it: [`write_markdown`]
//!    writes GitHub-flavoured Markdown (tables padded to read as plain text), [`html`] the same
//!    as an HTML page with a print stylesheet (no script, nothing from another origin: print it
//!    or save it as PDF from a browser).
//! 3. Text from the store is made safe on the way: control characters escaped ([`clean`]),
//!    table cells escaped and cut at 120 characters, HTML escaped.
//!
//! ```
//! use mission_core::Timestamp;
//! use mission_serve::report::{build_report, html, write_markdown};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("mission-report-doc-{}", std::process::id()));
//! let store = mission_store::Store::open(&dir)?;
//! let to = Timestamp::now();
//! let from = Timestamp(to.0.saturating_sub(24 * 3600 * 1_000_000_000));
//! let report = build_report(&store, from, to, None)?;
//! let mut markdown = Vec::new();
//! write_markdown(&report, &mut markdown)?;
//! assert!(String::from_utf8(markdown)?.starts_with("# Mission Control report"));
//! assert!(html(&report).contains("<h2>Volumes</h2>"));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::Duration;

use mission_core::Timestamp;
use mission_store::schema::col;
use mission_store::{
    CostRow, EventRow, GroupBy, OperationStat, Query, ScoreSummary, Store, ThreadSummary,
};

mod markdown;

pub use markdown::to_html;
use markdown::{Align, cell, table};

/// Rows of the slowest-threads and top-errors tables.
const TOP: usize = 10;
/// Distinct error messages counted; past this, new ones count under `(other messages)`, so
/// memory stays bounded when messages carry ids.
const MAX_ERROR_KEYS: usize = 10_000;

/// Counts of what was recorded over the period.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Volumes {
    /// Events of every kind.
    pub events: u64,
    /// Threads with at least one event in the period.
    pub threads: u64,
    /// Spans of every kind.
    pub spans: u64,
    /// Agent steps.
    pub agent_steps: u64,
    /// LLM calls.
    pub llm_calls: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Retrievals.
    pub retrievals: u64,
    /// Spans of another kind (`custom`).
    pub other_spans: u64,
    /// Log records.
    pub logs: u64,
    /// Log records by level (`warn`, `error`, …).
    pub logs_by_level: BTreeMap<String, u64>,
    /// Permission decisions.
    pub permissions: u64,
    /// Of which denied.
    pub denials: u64,
    /// Metric points.
    pub metrics: u64,
    /// Anomalies found by models.
    pub anomalies: u64,
    /// Evaluation scores and feedback.
    pub scores: u64,
    /// Spans that ended with an error.
    pub errors: u64,
    /// `errors / spans` (0 without spans).
    pub error_rate: f64,
    /// Input tokens of the LLM calls.
    pub input_tokens: i64,
    /// Output tokens of the LLM calls.
    pub output_tokens: i64,
    /// Cost of the LLM calls, US dollars.
    pub cost_usd: f64,
}

/// Failed spans with the same kind, name and error message.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCount {
    /// How many.
    pub count: u64,
    /// The spans' kind.
    pub kind: String,
    /// The spans' name.
    pub name: String,
    /// The error message (empty when none was recorded).
    pub message: String,
}

/// What `report` shows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Start of the period, RFC 3339.
    pub from: String,
    /// End of the period (exclusive), RFC 3339.
    pub to: String,
    /// The tenant reported on, or `None` for all.
    pub tenant: Option<String>,
    /// Volumes.
    pub volumes: Volumes,
    /// Latency, errors, tokens and cost per operation (span name).
    pub operations: Vec<OperationStat>,
    /// Tokens and cost per model, most expensive first.
    pub cost_by_model: Vec<CostRow>,
    /// The slowest threads (at most 10), slowest first.
    pub slowest_threads: Vec<ThreadSummary>,
    /// The most frequent errors (at most 10), most frequent first.
    pub top_errors: Vec<ErrorCount>,
    /// Scores and feedback per name: count, mean, min, max, by name.
    pub scores: Vec<ScoreSummary>,
    /// What to change to spend less or fail less ([`crate::advice`]).
    pub recommendations: Vec<crate::advice::Recommendation>,
    /// Whether a bound of the recommendations cut something off.
    pub recommendations_truncated: bool,
    /// The period's length (not in the JSON: `from` and `to` say it).
    #[serde(skip)]
    pub length: Duration,
}

/// Gathers the report for `from <= time < to` (one tenant or all): six passes over the
/// period's files.
///
/// # Errors
/// Unreadable files.
pub fn build_report(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    tenant: Option<&str>,
) -> mission_store::Result<Report> {
    let query = || {
        let q = store.query().time_range(from, to);
        match tenant {
            Some(t) => q.tenant(t),
            None => q,
        }
    };
    let (mut volumes, top_errors) = count(query())?;
    let operations = store.operation_stats(query(), &[GroupBy::Operation])?;
    let cost_by_model = store.cost_report(query(), &[GroupBy::Model])?;
    let scores = store.score_summary(query())?;
    let advice = crate::advice::recommend(query())?;
    let mut threads = store.threads(query())?;
    volumes.threads = threads.len() as u64;
    volumes.error_rate =
        if volumes.spans == 0 { 0.0 } else { volumes.errors as f64 / volumes.spans as f64 };
    for row in &cost_by_model {
        volumes.input_tokens += row.input_tokens;
        volumes.output_tokens += row.output_tokens;
        volumes.cost_usd += row.cost_usd;
    }
    threads.sort_by(|a, b| b.duration_ns.cmp(&a.duration_ns).then(a.thread_id.cmp(&b.thread_id)));
    threads.truncate(TOP);
    Ok(Report {
        tenant: tenant.map(str::to_owned),
        volumes,
        operations,
        cost_by_model,
        slowest_threads: threads,
        top_errors,
        scores,
        recommendations: advice.recommendations,
        recommendations_truncated: advice.truncated,
        ..Report::empty(from, to, tenant)
    })
}

impl Report {
    /// A report of nothing over `from..to` (a store with no events there, or none at all).
    pub fn empty(from: Timestamp, to: Timestamp, tenant: Option<&str>) -> Self {
        let ns = |t: Timestamp| i64::try_from(t.0).unwrap_or(i64::MAX);
        Self {
            from: utc(ns(from)),
            to: utc(ns(to)),
            tenant: tenant.map(str::to_owned),
            length: Duration::from_nanos(to.0.saturating_sub(from.0)),
            ..Self::default()
        }
    }
}

/// One pass counting events by kind, level and decision, and failed spans by message.
fn count(query: Query<'_>) -> mission_store::Result<(Volumes, Vec<ErrorCount>)> {
    let iter = query
        .columns(&[
            col::KIND,
            col::NAME,
            col::DURATION_NS,
            col::STATUS,
            col::ERROR_MESSAGE,
            col::LOG_LEVEL,
            col::PERMISSION_DECISION,
        ])
        .iter()?;
    let mut v = Volumes::default();
    let mut errors: HashMap<(String, String, String), u64> = HashMap::new();
    for batch in iter {
        for row in EventRow::from_batch(&batch?)? {
            v.events += 1;
            let kind = row.kind.as_str();
            let is_span = row.duration_ns.is_some();
            match kind {
                "agent_step" => v.agent_steps += 1,
                "llm_call" => v.llm_calls += 1,
                "tool_call" => v.tool_calls += 1,
                "retrieval" => v.retrievals += 1,
                "log" => {
                    v.logs += 1;
                    *v.logs_by_level.entry(row.level.clone().unwrap_or_default()).or_default() += 1;
                }
                "permission" => {
                    v.permissions += 1;
                    v.denials += u64::from(row.decision.as_deref() == Some("deny"));
                }
                "metric" => v.metrics += 1,
                "anomaly" => v.anomalies += 1,
                "score" => v.scores += 1,
                _ if is_span => v.other_spans += 1,
                _ => {}
            }
            if !is_span {
                continue;
            }
            v.spans += 1;
            if row.status.as_deref() != Some("error") {
                continue;
            }
            v.errors += 1;
            let key = (kind.to_owned(), row.name, row.error_message.unwrap_or_default());
            if errors.len() < MAX_ERROR_KEYS || errors.contains_key(&key) {
                *errors.entry(key).or_default() += 1;
            } else {
                *errors
                    .entry((String::new(), String::new(), "(other messages)".into()))
                    .or_default() += 1;
            }
        }
    }
    let mut top: Vec<ErrorCount> = errors
        .into_iter()
        .map(|((kind, name, message), count)| ErrorCount { count, kind, name, message })
        .collect();
    top.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.kind, &a.name, &a.message).cmp(&(&b.kind, &b.name, &b.message)))
    });
    top.truncate(TOP);
    Ok((v, top))
}

/// The report as a self-contained HTML page with a print stylesheet (what `mission-ctl report
/// --format html` prints and the dashboard's `/api/report.html` serves): the Markdown of
/// [`write_markdown`] through [`to_html`].
pub fn html(report: &Report) -> String {
    let mut markdown = Vec::new();
    // Writing to a `Vec` cannot fail.
    let _ = write_markdown(report, &mut markdown);
    let title = format!("Mission Control report, {} to {}", report.from, report.to);
    to_html(&String::from_utf8_lossy(&markdown), &title)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of nanoseconds since the epoch.
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let (y, m, d) = mission_store::layout::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", t / 3600, t % 3600 / 60, t % 60)
}

/// A duration as people write it: `24h`, `90m`, `7d`, `1.5s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        mission_core::duration_text::format(d)
    } else if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Text from a store made safe to print on a terminal or in Markdown: control characters
/// (line breaks, escape sequences) are shown escaped (`\n`, `\u{1b}`) instead of acting.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Writes the report as Markdown: headings, lists and tables (GitHub-flavoured, padded so they
/// also read well as plain text).
///
/// # Errors
/// A failed write.
pub fn write_markdown(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    use Align::{Left, Right};
    writeln!(out, "# Mission Control report")?;
    writeln!(out)?;
    writeln!(out, "- Period: {} to {} ({})", r.from, r.to, human(r.length))?;
    match &r.tenant {
        Some(t) => writeln!(out, "- Tenant: {}", cell(t))?,
        None => writeln!(out, "- Tenants: all")?,
    }
    let v = &r.volumes;
    writeln!(out, "\n## Volumes\n")?;
    let mut rows: Vec<(String, String)> = vec![
        ("events".into(), v.events.to_string()),
        ("threads".into(), v.threads.to_string()),
        ("spans".into(), v.spans.to_string()),
        ("agent steps".into(), v.agent_steps.to_string()),
        ("LLM calls".into(), v.llm_calls.to_string()),
        ("tool calls".into(), v.tool_calls.to_string()),
        ("retrievals".into(), v.retrievals.to_string()),
    ];
    if v.other_spans > 0 {
        rows.push(("other spans".into(), v.other_spans.to_string()));
    }
    rows.push(("errors (failed spans)".into(), v.errors.to_string()));
    rows.push(("error rate".into(), percent(v.error_rate)));
    rows.push(("logs".into(), v.logs.to_string()));
    for (level, n) in &v.logs_by_level {
        rows.push((format!("logs: {level}"), n.to_string()));
    }
    rows.push(("permission decisions".into(), v.permissions.to_string()));
    rows.push(("permissions denied".into(), v.denials.to_string()));
    if v.metrics > 0 {
        rows.push(("metric points".into(), v.metrics.to_string()));
    }
    if v.anomalies > 0 {
        rows.push(("anomalies".into(), v.anomalies.to_string()));
    }
    if v.scores > 0 {
        rows.push(("scores".into(), v.scores.to_string()));
    }
    rows.push(("input tokens".into(), v.input_tokens.to_string()));
    rows.push(("output tokens".into(), v.output_tokens.to_string()));
    rows.push(("cost $".into(), format!("{:.6}", v.cost_usd)));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(a, b)| vec![a, b]).collect();
    table(out, &["what", "count"], &[Left, Right], &rows)?;

    writeln!(out, "\n## Latency by operation\n")?;
    if r.operations.is_empty() {
        writeln!(out, "No spans in this period.")?;
    } else {
        let rows: Vec<Vec<String>> = r
            .operations
            .iter()
            .map(|s| {
                vec![
                    s.group.join(" "),
                    s.count.to_string(),
                    s.errors.to_string(),
                    percent(s.error_rate),
                    ms(s.p50_ns),
                    ms(s.p95_ns),
                    ms(s.p99_ns),
                    ms(s.max_ns),
                ]
            })
            .collect();
        table(
            out,
            &["operation", "count", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms", "max ms"],
            &[Left, Right, Right, Right, Right, Right, Right, Right],
            &rows,
        )?;
    }

    writeln!(out, "\n## Cost by model\n")?;
    if r.cost_by_model.is_empty() {
        writeln!(out, "No LLM calls in this period.")?;
    } else {
        let mut rows: Vec<Vec<String>> = r
            .cost_by_model
            .iter()
            .map(|c| {
                vec![
                    c.group.join(" "),
                    c.llm_calls.to_string(),
                    c.threads.to_string(),
                    c.input_tokens.to_string(),
                    c.output_tokens.to_string(),
                    format!("{:.6}", c.cost_usd),
                ]
            })
            .collect();
        rows.push(vec![
            "**total**".into(),
            v.llm_calls.to_string(),
            String::new(),
            v.input_tokens.to_string(),
            v.output_tokens.to_string(),
            format!("{:.6}", v.cost_usd),
        ]);
        table(
            out,
            &["model", "LLM calls", "threads", "input tokens", "output tokens", "cost $"],
            &[Left, Right, Right, Right, Right, Right],
            &rows,
        )?;
    }

    writeln!(out, "\n## Slowest threads\n")?;
    if r.slowest_threads.is_empty() {
        writeln!(out, "No threads in this period.")?;
    } else {
        let rows: Vec<Vec<String>> = r
            .slowest_threads
            .iter()
            .map(|t| {
                vec![
                    format!("`{}`", t.thread_id),
                    t.agent.clone(),
                    t.tenant.clone(),
                    utc(t.start_ns),
                    format!("{:.1}", t.duration_ns as f64 / 1e6),
                    t.spans.to_string(),
                    t.errors.to_string(),
                    format!("{:.4}", t.cost_usd),
                ]
            })
            .collect();
        table(
            out,
            &["thread", "agent", "tenant", "start", "duration ms", "spans", "errors", "cost $"],
            &[Left, Left, Left, Left, Right, Right, Right, Right],
            &rows,
        )?;
    }

    if !r.scores.is_empty() {
        writeln!(out, "\n## Scores\n")?;
        let rows: Vec<Vec<String>> = r
            .scores
            .iter()
            .map(|s| {
                vec![
                    cell(&s.name),
                    s.count.to_string(),
                    format!("{:.3}", s.mean),
                    format!("{:.3}", s.min),
                    format!("{:.3}", s.max),
                ]
            })
            .collect();
        table(
            out,
            &["score", "count", "mean", "min", "max"],
            &[Left, Right, Right, Right, Right],
            &rows,
        )?;
    }

    write_recommendations(r, out)?;

    writeln!(out, "\n## Top errors\n")?;
    if r.top_errors.is_empty() {
        writeln!(out, "No failed spans in this period.")?;
    } else {
        let rows: Vec<Vec<String>> = r
            .top_errors
            .iter()
            .map(|e| {
                let message = if e.message.is_empty() {
                    "(no message)".to_owned()
                } else {
                    e.message.clone()
                };
                vec![e.count.to_string(), e.kind.clone(), e.name.clone(), message]
            })
            .collect();
        table(out, &["count", "kind", "name", "message"], &[Right, Left, Left, Left], &rows)?;
    }
    Ok(())
}

fn write_recommendations(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    use Align::{Left, Right};
    if r.recommendations.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n## Recommendations\n")?;
    let rows: Vec<Vec<String>> = r
        .recommendations
        .iter()
        .map(|a| {
            vec![
                a.kind.clone(),
                cell(&a.subject),
                a.saving_usd.map_or_else(String::new, |s| format!("{s:.2}")),
                cell(&a.impact),
            ]
        })
        .collect();
    table(out, &["kind", "subject", "saving $", "impact"], &[Left, Left, Right, Left], &rows)?;
    writeln!(out)?;
    for a in &r.recommendations {
        writeln!(out, "- {}", clean(&a.message))?;
    }
    if r.recommendations_truncated {
        writeln!(out, "\n(Some recommendations were left out: a bound was reached.)")?;
    }
    Ok(())
}
