//! The JSON API (see `API.md` beside this file): request parameters, the scan over the store
//! and the live ring, and the answers of `/api/overview`, `/api/threads`, `/api/threads/{id}`,
//! `/api/logs` and `/api/anomalies`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use mission_core::Timestamp;
use mission_store::schema::col;
use mission_store::{EventRow, Store};
use serde_json::{Value, json};

use super::chart::{Histogram, forecast};
use super::row::{Row, level_rank};
use super::{ApiError, Mode, Shared};

/// Most rows one request reads; a scan that reaches it stops and says `truncated: true`.
pub(crate) const MAX_SCAN_ROWS: u64 = 2_000_000;
/// The longest window a request may ask for: 30 days.
pub(crate) const MAX_MINUTES: u64 = 43_200;
/// Most threads `/api/threads` returns.
pub(crate) const MAX_THREAD_ROWS: u64 = 1_000;
/// Most log or anomaly rows one request returns.
pub(crate) const MAX_ROWS: u64 = 2_000;
/// Most spans (and logs, and decisions) a thread view returns.
pub(crate) const MAX_THREAD_SPANS: usize = 5_000;
/// Threads and operations a request aggregates at most (more are left out, `truncated`).
const MAX_GROUPS: usize = 200_000;
const MAX_OPERATIONS: usize = 200;
const SHOWN_OPERATIONS: usize = 50;
/// Buckets of the overview's series at most.
const MAX_BUCKETS: i64 = 180;
/// Forecast steps of an operation's p95.
const FORECAST_STEPS: usize = 12;

/// The query string, decoded; empty values count as absent.
pub(crate) struct Params(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// Parses a query string (`a=1&b=x%20y`), at most 64 pairs.
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .take(64)
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Self(pairs)
    }

    /// A parameter's value, `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    pub(crate) fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &self,
        name: &str,
        min: T,
        max: T,
    ) -> Result<Option<T>, ApiError> {
        let Some(text) = self.get(name) else { return Ok(None) };
        match text.parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(Some(v)),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be a number from {min} to {max}, not {:?}",
                text.chars().take(40).collect::<String>()
            ))),
        }
    }

    pub(crate) fn minutes(&self, default: Option<u64>) -> Result<Option<u64>, ApiError> {
        Ok(self.number("minutes", 1, MAX_MINUTES)?.or(default))
    }

    pub(crate) fn limit(&self, default: u64, max: u64) -> Result<usize, ApiError> {
        Ok(self.number("limit", 1, max)?.unwrap_or(default) as usize)
    }
}

fn now_ns() -> i64 {
    i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX)
}

/// What a scan selects; `None` fields match everything.
#[derive(Clone, Copy, Default)]
pub(crate) struct Select<'a> {
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    pub scope: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub thread: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    /// Store columns to read (all when `None`); the ones identifying a row are added.
    pub columns: Option<&'a [&'a str]>,
}

impl Select<'_> {
    fn matches(&self, row: &Row) -> bool {
        self.from_ns.is_none_or(|f| row.time_ns >= f)
            && self.to_ns.is_none_or(|t| row.time_ns < t)
            && self.scope.is_none_or(|s| row.tenant == s)
            && self.agent.is_none_or(|a| row.agent == a)
            && self.thread.is_none_or(|t| row.thread_id.as_deref() == Some(t))
            && self.kind.is_none_or(|k| row.kind == k)
            && self.name.is_none_or(|n| row.name == n)
    }
}

fn window(minutes: Option<u64>) -> Select<'static> {
    let now = now_ns();
    Select {
        from_ns: minutes.map(|m| now.saturating_sub((m as i64).saturating_mul(60_000_000_000))),
        to_ns: Some(now.saturating_add(1_000_000_000)),
        ..Select::default()
    }
}

/// Passes every row `select` matches to `visit`: the store's, then the live ring's that the
/// store does not hold yet. Returns whether it stopped at [`MAX_SCAN_ROWS`].
pub(crate) fn scan(
    shared: &Shared,
    select: &Select<'_>,
    visit: &mut dyn FnMut(&Row),
) -> Result<bool, ApiError> {
    scan_noting(shared, select, visit, &mut Vec::new())
}

/// [`scan`], adding the store files it could not read (path, reason, rows) to `unreadable`,
/// for the answer's `unreadable` list (the page shows a banner when it is not empty).
pub(crate) fn scan_noting(
    shared: &Shared,
    select: &Select<'_>,
    visit: &mut dyn FnMut(&Row),
    unreadable: &mut Vec<String>,
) -> Result<bool, ApiError> {
    let ring: Vec<Arc<Row>> =
        shared.feed.ring().into_iter().filter(|r| select.matches(r)).collect();
    let ring_from = ring.iter().map(|r| r.time_ns).min().unwrap_or(i64::MAX);
    let mut stored: HashSet<u64> = HashSet::new();
    let mut rows = 0u64;
    if let Some(root) = &shared.root {
        // The store as the scope may see it: another tenant's files are not even listed.
        let store = Store::open_scoped(root, select.scope).map_err(ApiError::internal)?;
        let mut q = store.query();
        if select.from_ns.is_some() || select.to_ns.is_some() {
            let ts = |ns: i64| Timestamp(u64::try_from(ns).unwrap_or(0));
            q = q.time_range(ts(select.from_ns.unwrap_or(0)), ts(select.to_ns.unwrap_or(i64::MAX)));
        }
        for (value, set) in [
            (select.agent, mission_store::Query::agent as fn(_, &str) -> _),
            (select.thread, mission_store::Query::thread),
            (select.kind, mission_store::Query::kind),
            (select.name, mission_store::Query::name),
        ] {
            if let Some(v) = value {
                q = set(q, v);
            }
        }
        if let Some(columns) = select.columns {
            let mut all: Vec<&str> = columns.to_vec();
            for c in [col::TIME, col::KIND, col::THREAD_ID, col::SPAN_ID, col::NAME] {
                if !all.contains(&c) {
                    all.push(c);
                }
            }
            q = q.columns(&all);
        }
        let note = |unreadable: &mut Vec<String>| {
            unreadable.extend(store.skipped_files().iter().map(ToString::to_string));
        };
        for batch in q.iter().map_err(ApiError::internal)? {
            let batch = batch.map_err(ApiError::internal)?;
            for row in EventRow::from_batch(&batch).map_err(ApiError::internal)? {
                let row = Row::from(row);
                rows += 1;
                if rows > MAX_SCAN_ROWS {
                    note(unreadable);
                    return Ok(true);
                }
                if row.time_ns >= ring_from {
                    stored.insert(row.key());
                }
                visit(&row);
            }
        }
        note(unreadable);
    }
    for row in ring {
        if !stored.contains(&row.key()) {
            visit(&row);
        }
    }
    Ok(false)
}

/// One thread's numbers, summed over its rows.
#[derive(Clone, Debug, Default)]
struct ThreadSum {
    tenant: String,
    agent: String,
    root_agent: bool,
    start_ns: i64,
    end_ns: i64,
    spans: u64,
    llm_calls: u64,
    tool_calls: u64,
    errors: u64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

impl ThreadSum {
    fn new(row: &Row) -> Self {
        Self {
            tenant: row.tenant.clone(),
            agent: row.agent.clone(),
            start_ns: row.time_ns,
            end_ns: row.end_ns(),
            ..Self::default()
        }
    }

    fn add(&mut self, row: &Row) {
        self.start_ns = self.start_ns.min(row.time_ns);
        self.end_ns = self.end_ns.max(row.end_ns());
        if row.is_span() {
            self.spans += 1;
            self.errors += u64::from(row.is_error());
            if row.parent_span_id == 0 && !self.root_agent {
                // The root span names the thread's agent.
                self.agent.clone_from(&row.agent);
                self.root_agent = true;
            }
        }
        match row.kind.as_str() {
            "llm_call" => self.llm_calls += 1,
            "tool_call" => self.tool_calls += 1,
            _ => {}
        }
        self.input_tokens += row.input_tokens.unwrap_or(0);
        self.output_tokens += row.output_tokens.unwrap_or(0);
        self.cost_usd += row.cost_usd.unwrap_or(0.0);
    }

    fn status(&self) -> &'static str {
        if self.errors > 0 { "error" } else { "ok" }
    }

    fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    fn to_json(&self, id: &str) -> Value {
        json!({
            "thread_id": id,
            "tenant": self.tenant,
            "agent": self.agent,
            "status": self.status(),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "duration_ms": self.duration_ms(),
            "spans": self.spans,
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        })
    }
}

const THREAD_COLUMNS: &[&str] = &[
    col::TIME,
    col::KIND,
    col::AGENT,
    col::THREAD_ID,
    col::SPAN_ID,
    col::PARENT_SPAN_ID,
    col::NAME,
    col::DURATION_NS,
    col::STATUS,
    col::INPUT_TOKENS,
    col::OUTPUT_TOKENS,
    col::COST,
    col::SCORE_VALUE,
];

/// `GET /api/threads`.
pub(crate) fn threads(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = &Params::parse(uri.query());
    let status = p.get("status");
    if let Some(s) = status
        && s != "ok"
        && s != "error"
    {
        return Err(ApiError::bad_request(format!("status must be ok or error, not {s:?}")));
    }
    let min_ms = p.number("min_ms", 0.0, f64::MAX)?;
    let limit = p.limit(200, MAX_THREAD_ROWS)?;
    let q = p.get("q").map(str::to_lowercase);
    let agent = p.get("agent");
    let select = Select { scope, agent, columns: Some(THREAD_COLUMNS), ..window(p.minutes(None)?) };
    let mut sums: HashMap<String, ThreadSum> = HashMap::new();
    let mut unreadable = Vec::new();
    let mut truncated = scan_noting(
        shared,
        &select,
        &mut |row| {
            let Some(id) = &row.thread_id else { return };
            if let Some(sum) = sums.get_mut(id.as_str()) {
                sum.add(row);
            } else if sums.len() < MAX_GROUPS {
                let mut sum = ThreadSum::new(row);
                sum.add(row);
                sums.insert(id.clone(), sum);
            }
        },
        &mut unreadable,
    )?;
    truncated |= sums.len() >= MAX_GROUPS;
    let mut rows: Vec<(String, ThreadSum)> = sums
        .into_iter()
        .filter(|(_, s)| status.is_none_or(|st| s.status() == st))
        .filter(|(_, s)| min_ms.is_none_or(|m| s.duration_ms() >= m))
        .filter(|(id, s)| {
            q.as_deref().is_none_or(|q| {
                id.contains(q)
                    || s.agent.to_lowercase().contains(q)
                    || s.tenant.to_lowercase().contains(q)
            })
        })
        .collect();
    let total = rows.len();
    rows.sort_by(|a, b| b.1.start_ns.cmp(&a.1.start_ns).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(limit);
    let threads: Vec<Value> = rows.iter().map(|(id, s)| s.to_json(id)).collect();
    Ok(json!({
        "threads": threads,
        "total": total,
        "truncated": truncated,
        "unreadable": unreadable,
    }))
}

/// `GET /api/threads/{id}` (the id is the last segment of `uri`'s path).
pub(crate) fn thread(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let id = uri.path().rsplit('/').next().unwrap_or("");
    if id.len() != 32 || id.parse::<mission_core::ThreadId>().is_err() {
        return Err(ApiError::bad_request(format!(
            "a thread id is 32 lowercase hex digits, not {:?}",
            id.chars().take(40).collect::<String>()
        )));
    }
    let select = Select { scope, thread: Some(id), ..Select::default() };
    let read = |rows: &mut Vec<Row>| scan(shared, &select, &mut |r| rows.push(r.clone()));
    let mut rows = Vec::new();
    let mut truncated = read(&mut rows)?;
    if rows.is_empty() && shared.flush_for_misses() {
        truncated = read(&mut rows)?;
    }
    let Some(first) = rows.first() else {
        return Err(ApiError::not_found(format!("no thread {id}")));
    };
    let mut sum = ThreadSum::new(first);
    for r in &rows {
        sum.add(r);
    }
    rows.sort_by_key(|r| (r.time_ns, r.span_id));
    let pick =
        |keep: &dyn Fn(&Row) -> bool, render: &dyn Fn(&Row) -> Value| -> (Vec<Value>, usize) {
            let all: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
            let total = all.len();
            (all.into_iter().take(MAX_THREAD_SPANS).map(render).collect(), total)
        };
    let (spans, spans_total) = pick(&|r| r.is_span(), &Row::span_json);
    let (logs, logs_total) = pick(&|r| r.kind == "log", &Row::log_json);
    let (permissions, _) = pick(&|r| r.kind == "permission", &Row::permission_json);
    let (scores, _) = pick(&|r| r.kind == "score", &Row::score_json);
    // Its place in the tree (parent, children) and last state change, from the store; how it
    // runs now, inside an agent.
    let tree = shared
        .root
        .as_ref()
        .and_then(|root| Store::open_scoped(root, scope).ok())
        .and_then(|store| store.thread_links(id).ok());
    let live = match (shared.live.as_ref().and_then(|l| l.threads.as_ref()), id.parse()) {
        (Some(threads), Ok(thread_id)) => threads.snapshot(scope, thread_id, Timestamp::now().0),
        _ => None,
    };
    Ok(json!({
        "thread": sum.to_json(id),
        "tree": tree,
        "live": live,
        "spans": spans,
        "spans_total": spans_total,
        "logs": logs,
        "logs_total": logs_total,
        "permissions": permissions,
        "scores": scores,
        "truncated": truncated || spans_total > MAX_THREAD_SPANS || logs_total > MAX_THREAD_SPANS,
    }))
}

/// Keeps the `limit` newest of what it is given (in O(n log limit) time, O(limit) memory).
struct Newest<T> {
    limit: usize,
    rows: Vec<(i64, T)>,
}

impl<T> Newest<T> {
    fn new(limit: usize) -> Self {
        Self { limit, rows: Vec::new() }
    }

    fn push(&mut self, time: i64, row: T) {
        self.rows.push((time, row));
        if self.rows.len() >= self.limit.saturating_mul(2).max(64) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        self.rows.truncate(self.limit);
    }

    fn into_vec(mut self) -> Vec<T> {
        self.trim();
        self.rows.into_iter().map(|(_, r)| r).collect()
    }
}

/// `GET /api/logs`.
pub(crate) fn logs(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = &Params::parse(uri.query());
    let min_level = match p.get("level") {
        None => 0,
        Some(l) if ["trace", "debug", "info", "warn", "warning", "error"].contains(&l) => {
            level_rank(l)
        }
        Some(l) => {
            return Err(ApiError::bad_request(format!(
                "level must be trace, debug, info, warn or error, not {:?}",
                l.chars().take(40).collect::<String>()
            )));
        }
    };
    let limit = p.limit(500, MAX_ROWS)?;
    let q = p.get("q").map(str::to_lowercase);
    let thread = p.get("thread_id");
    if let Some(t) = thread
        && t.parse::<mission_core::ThreadId>().is_err()
    {
        return Err(ApiError::bad_request("thread_id must be 32 lowercase hex digits"));
    }
    let select = Select {
        scope,
        agent: p.get("agent"),
        thread,
        kind: Some("log"),
        ..window(p.minutes(Some(15))?)
    };
    let mut newest = Newest::new(limit);
    let truncated = scan(shared, &select, &mut |row| {
        if row.level_rank() < min_level {
            return;
        }
        if let Some(q) = &q {
            let hit = row.message.as_deref().is_some_and(|m| m.to_lowercase().contains(q))
                || row.agent.to_lowercase().contains(q)
                || row.thread_id.as_deref().is_some_and(|t| t.contains(q));
            if !hit {
                return;
            }
        }
        newest.push(row.time_ns, row.log_json());
    })?;
    Ok(json!({ "logs": newest.into_vec(), "truncated": truncated }))
}

/// `GET /api/anomalies`.
pub(crate) fn anomalies(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Value, ApiError> {
    let p = &Params::parse(uri.query());
    let limit = p.limit(500, MAX_ROWS)?;
    let base = Select { scope, agent: p.get("agent"), ..window(p.minutes(Some(1440))?) };
    let mut anomalies = Newest::new(limit);
    let mut truncated = scan(shared, &Select { kind: Some("anomaly"), ..base }, &mut |row| {
        anomalies.push(row.time_ns, row.anomaly_json());
    })?;
    let mut alerts = Newest::new(limit);
    let alert =
        Select { kind: Some("log"), name: Some(mission_govern::directives::ALERT_EVENT), ..base };
    truncated |= scan(shared, &alert, &mut |row| alerts.push(row.time_ns, row.alert_json()))?;
    Ok(json!({
        "anomalies": anomalies.into_vec(),
        "alerts": alerts.into_vec(),
        "truncated": truncated,
    }))
}

/// One operation's numbers over the window and per bucket.
#[derive(Default)]
struct Operation {
    errors: u64,
    all: Histogram,
    buckets: Vec<Option<Histogram>>,
}

/// One model's numbers over the window and per bucket.
#[derive(Default)]
struct Model {
    calls: u64,
    input: i64,
    output: i64,
    cost: f64,
    buckets: Vec<(i64, f64)>,
}

const OVERVIEW_COLUMNS: &[&str] = &[
    col::TIME,
    col::KIND,
    col::THREAD_ID,
    col::SPAN_ID,
    col::NAME,
    col::DURATION_NS,
    col::STATUS,
    col::MODEL,
    col::INPUT_TOKENS,
    col::OUTPUT_TOKENS,
    col::COST,
    col::SCORE_VALUE,
];

/// The bucket width of a window: 10 s, or wider so a window has at most [`MAX_BUCKETS`].
pub(crate) fn bucket_ms(window_ms: i64) -> i64 {
    let step = 10_000;
    let wanted = (window_ms + MAX_BUCKETS - 1) / MAX_BUCKETS;
    (wanted + step - 1) / step * step.max(1)
}

/// `GET /api/overview`.
pub(crate) fn overview(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = &Params::parse(uri.query());
    let minutes = p.minutes(Some(15))?.unwrap_or(15) as i64;
    let now_ns = now_ns();
    let now_ms = now_ns / 1_000_000;
    let window_ms = minutes * 60_000;
    let bucket = bucket_ms(window_ms).max(10_000);
    let start_ms = (now_ms - window_ms).div_euclid(bucket) * bucket;
    let n = ((now_ms - start_ms) / bucket + 1) as usize;
    let select = Select {
        from_ns: Some(start_ms.saturating_mul(1_000_000)),
        to_ns: Some(now_ns.saturating_add(1_000_000_000)),
        scope,
        columns: Some(OVERVIEW_COLUMNS),
        ..Select::default()
    };
    let mut rate = vec![(0u64, 0u64); n];
    let (mut spans, mut errors, mut events, mut last_10s) = (0u64, 0u64, 0u64, 0u64);
    let mut recent_threads: HashSet<String> = HashSet::new();
    let mut operations: HashMap<(String, String), Operation> = HashMap::new();
    let mut models: HashMap<String, Model> = HashMap::new();
    // Per score name: count, sum, lowest.
    let mut scores: HashMap<String, (u64, f64, f64)> = HashMap::new();
    let mut unreadable = Vec::new();
    let truncated = scan_noting(
        shared,
        &select,
        &mut |row| {
            let b = ((row.time_ns / 1_000_000 - start_ms) / bucket).clamp(0, n as i64 - 1) as usize;
            events += 1;
            rate[b].0 += 1;
            if row.time_ns >= now_ns - 10_000_000_000 {
                last_10s += 1;
            }
            if row.time_ns >= now_ns - 60_000_000_000
                && let Some(t) = &row.thread_id
                && recent_threads.len() < MAX_GROUPS
            {
                recent_threads.insert(t.clone());
            }
            if row.kind == "score"
                && let Some(v) = row.value
                && (scores.len() < MAX_OPERATIONS || scores.contains_key(&row.name))
            {
                let s = scores.entry(row.name.clone()).or_insert((0, 0.0, f64::INFINITY));
                s.0 += 1;
                s.1 += v;
                s.2 = s.2.min(v);
            }
            let Some(duration) = row.duration_ns else { return };
            spans += 1;
            if row.is_error() {
                errors += 1;
                rate[b].1 += 1;
            }
            let key = (row.kind.clone(), row.name.clone());
            if operations.len() < MAX_OPERATIONS || operations.contains_key(&key) {
                let op = operations.entry(key).or_default();
                op.errors += u64::from(row.is_error());
                op.all.record(duration);
                if op.buckets.is_empty() {
                    op.buckets = vec![None; n];
                }
                op.buckets[b].get_or_insert_with(Histogram::default).record(duration);
            }
            if row.kind == "llm_call"
                && let Some(model) = &row.model
                && (models.len() < MAX_OPERATIONS || models.contains_key(model))
            {
                let m = models.entry(model.clone()).or_default();
                let tokens = row.input_tokens.unwrap_or(0) + row.output_tokens.unwrap_or(0);
                let cost = row.cost_usd.unwrap_or(0.0);
                m.calls += 1;
                m.input += row.input_tokens.unwrap_or(0);
                m.output += row.output_tokens.unwrap_or(0);
                m.cost += cost;
                if m.buckets.is_empty() {
                    m.buckets = vec![(0, 0.0); n];
                }
                m.buckets[b].0 += tokens;
                m.buckets[b].1 += cost;
            }
        },
        &mut unreadable,
    )?;
    let t_ms = |b: usize| start_ms + b as i64 * bucket;
    let mut ops: Vec<((String, String), Operation)> = operations.into_iter().collect();
    ops.sort_by(|a, b| b.1.all.count().cmp(&a.1.all.count()).then_with(|| a.0.cmp(&b.0)));
    let operations: Vec<Value> = ops
        .into_iter()
        .take(SHOWN_OPERATIONS)
        .map(|((kind, name), op)| {
            let mut p95 = Vec::new();
            let series: Vec<Value> = op
                .buckets
                .iter()
                .enumerate()
                .map(|(b, h)| match h {
                    Some(h) => {
                        p95.push((t_ms(b), h.quantile_ms(0.95)));
                        json!({"t_ms": t_ms(b), "count": h.count(), "p50_ms": h.quantile_ms(0.5),
                               "p95_ms": h.quantile_ms(0.95), "p99_ms": h.quantile_ms(0.99)})
                    }
                    None => json!({"t_ms": t_ms(b), "count": 0, "p50_ms": null, "p95_ms": null,
                                   "p99_ms": null}),
                })
                .collect();
            let band: Vec<Value> = forecast(&p95, bucket, FORECAST_STEPS)
                .into_iter()
                .map(|f| json!({"t_ms": f.t_ms, "mean_ms": f.mean_ms, "lo_ms": f.lo_ms, "hi_ms": f.hi_ms}))
                .collect();
            json!({
                "kind": kind, "name": name, "count": op.all.count(), "errors": op.errors,
                "p50_ms": op.all.quantile_ms(0.5), "p95_ms": op.all.quantile_ms(0.95),
                "p99_ms": op.all.quantile_ms(0.99), "series": series, "forecast": band,
            })
        })
        .collect();
    let mut models: Vec<(String, Model)> = models.into_iter().collect();
    models.sort_by(|a, b| b.1.cost.total_cmp(&a.1.cost).then_with(|| a.0.cmp(&b.0)));
    let models: Vec<Value> = models
        .into_iter()
        .take(SHOWN_OPERATIONS)
        .map(|(model, m)| {
            let series: Vec<Value> = m
                .buckets
                .iter()
                .enumerate()
                .map(|(b, (tokens, cost))| json!({"t_ms": t_ms(b), "tokens": tokens, "cost_usd": cost}))
                .collect();
            json!({"model": model, "calls": m.calls, "input_tokens": m.input,
                   "output_tokens": m.output, "cost_usd": m.cost, "series": series})
        })
        .collect();
    let mut scores: Vec<(String, (u64, f64, f64))> = scores.into_iter().collect();
    scores.sort_by(|a, b| a.0.cmp(&b.0));
    let scores: Vec<Value> = scores
        .into_iter()
        .take(SHOWN_OPERATIONS)
        .map(|(name, (count, sum, min))| {
            json!({"name": name, "count": count, "mean": sum / count as f64, "min": min})
        })
        .collect();
    let rate_series: Vec<Value> = rate
        .iter()
        .enumerate()
        .map(|(b, (e, err))| json!({"t_ms": t_ms(b), "events": e, "errors": err}))
        .collect();
    let feed = shared.feed.stats(scope);
    let (event_rate, active_threads) = match shared.mode {
        Mode::Live => (feed.event_rate, feed.active_threads),
        Mode::Store => (last_10s as f64 / 10.0, recent_threads.len() as u64),
    };
    Ok(json!({
        "mode": shared.mode.as_str(),
        "tenant": scope,
        "now_ms": now_ms,
        "minutes": minutes,
        "bucket_ms": bucket,
        "events_total": feed.events_total,
        "events_in_window": events,
        "event_rate": event_rate,
        "active_threads": active_threads,
        "error_rate": if spans == 0 { 0.0 } else { errors as f64 / spans as f64 },
        "rate_series": rate_series,
        "operations": operations,
        "models": models,
        "scores": scores,
        "health": shared.health(scope, feed.lagged),
        "truncated": truncated,
        "unreadable": unreadable,
    }))
}

/// How long a thread view waits for the agent's pipeline to deliver before it says 404.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Most runs `/api/control` shows.
const MAX_CONTROL_RUNS: usize = 200;

/// `/api/control`: the directives, the approvals (pending first), the latest runs and the
/// incidents in memory (open, then the latest closed), within the principal's tenant. Over a store on
/// disk nothing runs: `live` is null and the lists are empty.
pub(crate) fn control(shared: &Shared, scope: Option<&str>, _: &Uri) -> Result<Value, ApiError> {
    let Some(directives) = shared.live.as_ref().and_then(|l| l.directives.as_ref()) else {
        return Ok(json!({
            "live": null,
            "directives": [],
            "approvals": [],
            "runs": [],
            "incidents": []
        }));
    };
    let list: Vec<Value> = directives
        .list_for(scope)
        .into_iter()
        .map(|d| {
            json!({
                "name": d.name,
                "condition": d.condition,
                "enabled": d.enabled,
                "across_tenants": d.across_tenants,
                "firing": d.firing.len(),
            })
        })
        .collect();
    let mut approvals = directives.approvals_for(scope);
    approvals.sort_by_key(|a| a.state != mission_govern::directives::ApprovalState::Pending);
    let runs = directives.runs_for(scope, None, MAX_CONTROL_RUNS);
    let incidents = directives.incidents_for(scope);
    Ok(json!({
        "live": true,
        "directives": list,
        "approvals": approvals,
        "runs": runs,
        "incidents": incidents,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_numbers_are_checked() {
        let p = Params::parse(Some("a=x%20y+z&b=&minutes=15&limit=0&bad=%zz&%41=1"));
        assert_eq!(p.get("a"), Some("x y z"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get("A"), Some("1"));
        assert_eq!(p.minutes(None).ok().flatten(), Some(15));
        assert!(p.limit(10, 100).is_err());
        let p = Params::parse(Some("minutes=abc&trailing=%4"));
        assert!(p.minutes(None).is_err());
        assert_eq!(p.get("trailing"), Some("%4"));
        assert_eq!(Params::parse(None).get("x"), None);
    }

    #[test]
    fn buckets_are_ten_seconds_or_wider() {
        assert_eq!(bucket_ms(15 * 60_000), 10_000);
        assert_eq!(bucket_ms(60 * 60_000), 20_000);
        assert!(24 * 60 * 60_000 / bucket_ms(24 * 60 * 60_000) <= MAX_BUCKETS);
    }

    #[test]
    fn newest_keeps_the_latest() {
        let mut n = Newest::new(3);
        for t in [5, 1, 9, 7, 3, 8, 2] {
            n.push(t, t);
        }
        assert_eq!(n.into_vec(), vec![9, 8, 7]);
    }
}
