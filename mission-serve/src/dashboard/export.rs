//! Exports people hand on: `GET /api/export/threads.jsonl` (one thread per line with its
//! spans, logs and scores: what evaluation tools take as a dataset) and
//! `GET /api/export/threads.csv` (one row per thread summary), within the principal's tenant,
//! bounded (`X-Mission-Truncated: true` says a bound cut the export short). The threads are
//! those `/api/threads` lists for the same parameters (`minutes`, `agent`, `status`, `q`,
//! `min_ms`, `limit`), newest first.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::Uri;
use serde_json::Value;

use super::api::{self, MAX_THREAD_SPANS, Select};
use super::row::Row;
use super::{ApiError, Shared};

/// Threads an export holds by default (and at most: `/api/threads`'s bound).
pub(crate) const DEFAULT_EXPORT_THREADS: u64 = api::MAX_THREAD_ROWS;
/// Rows an export reads into memory at most; past it, threads are cut short (`truncated`).
pub(crate) const MAX_EXPORT_ROWS: usize = 1_000_000;

/// A text answer: its content type, body, whether a bound cut it short, and the file name a
/// browser saves it under.
pub(crate) struct Text {
    pub content_type: &'static str,
    pub body: String,
    pub truncated: bool,
    pub filename: Option<&'static str>,
}

/// The threads `/api/threads` lists for `uri`'s parameters (with [`DEFAULT_EXPORT_THREADS`]
/// when no `limit` is given), and whether the list was cut short.
fn listed(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<(Vec<Value>, bool), ApiError> {
    let query = uri.query().unwrap_or("");
    let params = api::Params::parse(Some(query));
    let query = if params.get("limit").is_some() {
        query.to_owned()
    } else {
        format!("{query}&limit={DEFAULT_EXPORT_THREADS}")
    };
    let uri: Uri = format!("/api/threads?{query}")
        .parse()
        .map_err(|_| ApiError::bad_request("the query string is not valid"))?;
    let answer = api::threads(shared, scope, &uri)?;
    let threads = answer["threads"].as_array().cloned().unwrap_or_default();
    let total = answer["total"].as_u64().unwrap_or(0);
    let truncated = answer["truncated"].as_bool().unwrap_or(false) || total > threads.len() as u64;
    Ok((threads, truncated))
}

/// `GET /api/export/threads.jsonl`: one line per thread: its summary (as `/api/threads`) with
/// `spans`, `logs` and `scores` (as `/api/threads/{id}`), by start time, at most
/// [`MAX_THREAD_SPANS`] of each.
pub(crate) fn threads_jsonl(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Text, ApiError> {
    let (threads, mut truncated) = listed(shared, scope, uri)?;
    let mut rows: HashMap<String, Vec<Row>> = threads
        .iter()
        .filter_map(|t| t["thread_id"].as_str())
        .map(|id| (id.to_owned(), Vec::new()))
        .collect();
    let from = threads.iter().filter_map(|t| t["start_ns"].as_i64()).min();
    let mut held = 0usize;
    if let Some(from_ns) = from {
        let select = Select { from_ns: Some(from_ns), scope, ..Select::default() };
        truncated |= api::scan(shared, &select, &mut |row| {
            let Some(id) = &row.thread_id else { return };
            let Some(list) = rows.get_mut(id.as_str()) else { return };
            if held >= MAX_EXPORT_ROWS || list.len() >= 3 * MAX_THREAD_SPANS {
                truncated = true;
                return;
            }
            held += 1;
            list.push(row.clone());
        })?;
    }
    let mut body = String::new();
    for mut thread in threads {
        let id = thread["thread_id"].as_str().unwrap_or("").to_owned();
        let mut list = rows.remove(&id).unwrap_or_default();
        list.sort_by_key(|r| (r.time_ns, r.span_id));
        // At most MAX_THREAD_SPANS of each; `truncated` only when there were more.
        let mut cut = false;
        let mut pick = |keep: &dyn Fn(&Row) -> bool,
                        render: &dyn Fn(&Row) -> Value|
         -> Vec<Value> {
            let mut kept = list.iter().filter(|r| keep(r)).take(MAX_THREAD_SPANS + 1).map(render);
            let out: Vec<Value> = kept.by_ref().take(MAX_THREAD_SPANS).collect();
            cut |= kept.next().is_some();
            out
        };
        let spans = pick(&Row::is_span, &Row::span_json);
        let logs = pick(&|r| r.kind == "log", &Row::log_json);
        let scores = pick(&|r| r.kind == "score", &Row::score_json);
        truncated |= cut;
        if let Some(object) = thread.as_object_mut() {
            object.insert("spans".into(), Value::Array(spans));
            object.insert("logs".into(), Value::Array(logs));
            object.insert("scores".into(), Value::Array(scores));
        }
        body.push_str(&thread.to_string());
        body.push('\n');
    }
    Ok(Text {
        content_type: "application/x-ndjson; charset=utf-8",
        body,
        truncated,
        filename: Some("threads.jsonl"),
    })
}

/// The columns of `/api/export/threads.csv`, in order (the fields of `/api/threads`' rows).
pub(crate) const CSV_COLUMNS: [&str; 14] = [
    "thread_id",
    "tenant",
    "agent",
    "status",
    "start_ns",
    "end_ns",
    "duration_ms",
    "spans",
    "llm_calls",
    "tool_calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
];

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; text a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a
/// leading `'`.
pub(crate) fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `GET /api/export/threads.csv`: a header line, then one line per thread summary.
pub(crate) fn threads_csv(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Text, ApiError> {
    let (threads, truncated) = listed(shared, scope, uri)?;
    let mut body = CSV_COLUMNS.join(",");
    body.push_str("\r\n");
    for thread in &threads {
        let fields: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_field(&thread[*c])).collect();
        let _ = write!(body, "{}\r\n", fields.join(","));
    }
    Ok(Text {
        content_type: "text/csv; charset=utf-8; header=present",
        body,
        truncated,
        filename: Some("threads.csv"),
    })
}

/// `GET /metrics`: the OpenMetrics text (see [`super::metrics`]).
pub(crate) fn metrics(shared: &Shared, scope: Option<&str>, _: &Uri) -> Result<Text, ApiError> {
    use super::metrics::{Exposition, health_metrics, latency_metrics};
    let feed = shared.feed.stats(scope);
    let mut out = Exposition::default();
    health_metrics(&mut out, &shared.health(scope, feed.lagged));
    latency_metrics(&mut out, &shared.feed.latency(scope));
    Ok(Text {
        content_type: super::metrics::CONTENT_TYPE,
        body: out.render(),
        truncated: false,
        filename: None,
    })
}

/// `GET /api/report.html?minutes=` (default 1440: a day, at most 30 days): the report on the
/// last `minutes` ([`crate::report`]) as a self-contained, print-ready HTML page, within the
/// principal's tenant: what `mission-ctl report --format html` prints.
pub(crate) fn report_html(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Text, ApiError> {
    use mission_core::Timestamp;
    let minutes = api::Params::parse(uri.query()).minutes(Some(1440))?.unwrap_or(1440);
    let to = Timestamp::now();
    let from = Timestamp(to.0.saturating_sub(minutes.saturating_mul(60_000_000_000)));
    let report = match &shared.root {
        Some(root) => {
            // Inside an agent: what was recorded a moment ago reaches the store first.
            shared.flush_for_misses();
            let store =
                mission_store::Store::open_scoped(root, scope).map_err(ApiError::internal)?;
            crate::report::build_report(&store, from, to, scope).map_err(ApiError::internal)?
        }
        None => crate::report::Report::empty(from, to, scope),
    };
    Ok(Text {
        content_type: "text/html; charset=utf-8",
        body: crate::report::html(&report),
        truncated: report.recommendations_truncated,
        filename: None,
    })
}

/// The formats of [`export_store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines: one thread per line with its spans, logs and scores.
    Jsonl,
    /// CSV: a header line, then one line per thread summary.
    Csv,
}

/// What [`export_store`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The export's text (JSON Lines or CSV).
    pub body: String,
    /// A bound cut it short: more threads matched than `limit`, or a thread held more rows than
    /// an export keeps.
    pub truncated: bool,
}

/// Why [`export_store`] could not export: a parameter out of range (`kind` `bad_request`, the
/// message names it) or a store that could not be read (`internal`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ExportError {
    /// `bad_request` or `internal`, as the dashboard's API errors.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Exports the threads of the store at `root` as the dashboard's `/api/export/threads.jsonl`
/// and `/api/export/threads.csv` do (what `mission-ctl export` prints), for one tenant or
/// (`None`) every tenant; `query` holds the routes' parameters (`minutes=60&agent=a&limit=10`).
///
/// # Errors
/// [`ExportError`] for a parameter out of range or a store that cannot be read.
pub fn export_store(
    root: &std::path::Path,
    tenant: Option<&str>,
    format: ExportFormat,
    query: &str,
) -> Result<Export, ExportError> {
    let shared = Shared::over_store(root.to_path_buf());
    let uri: Uri = format!("/api/export?{query}").parse().map_err(|_| ExportError {
        kind: "bad_request",
        message: "the parameters are not a valid query string".into(),
    })?;
    let handler = match format {
        ExportFormat::Jsonl => threads_jsonl,
        ExportFormat::Csv => threads_csv,
    };
    handler(&shared, tenant, &uri)
        .map(|t| Export { body: t.body, truncated: t.truncated })
        .map_err(|e| ExportError { kind: e.kind, message: e.message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field(&json!("plain")), "plain");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("say \"hi\"\nbye")), "\"say \"\"hi\"\"\nbye\"");
        assert_eq!(csv_field(&json!("=SUM(A1)")), "'=SUM(A1)");
        assert_eq!(csv_field(&json!("-1+1,")), "\"'-1+1,\"");
        assert_eq!(csv_field(&json!(12.5)), "12.5");
        assert_eq!(csv_field(&json!(-3)), "-3");
        assert_eq!(csv_field(&Value::Null), "");
    }
}
