//! The tools: typed inputs (JSON Schema from `schemars`), structured outputs with an output
//! schema, and a short text rendering for the model.

use std::fmt::Write as _;

use mission_core::Timestamp;
use mission_store::schema::col;
use mission_store::{GroupBy, SpanNode, Store, ThreadView};
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::format::{ms, ms_text, normalize, rfc3339, usd, usd_text};
use super::{MAX_RESULT_BYTES, MAX_ROWS, MissionMcp, Source, internal, invalid, scope_of};

/// Structured content plus the concise text the model reads.
pub(crate) struct Answer<T> {
    pub(crate) value: T,
    pub(crate) text: String,
}

impl<T: Serialize> IntoCallToolResult for Answer<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let mut value = serde_json::to_value(self.value).map_err(internal)?;
        // Every tool answers in the same units (see `format`).
        normalize(&mut value);
        let mut result = CallToolResult::structured(value);
        result.content = vec![ContentBlock::text(self.text)];
        Ok(result.into())
    }
}

/// Filters of `list_threads`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListThreadsInput {
    /// Only threads of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only threads with at least one error (`error`), or without (`ok`).
    #[serde(default)]
    pub status: Option<String>,
    /// Only threads active in the last this many minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Only threads that cost at least this many US dollars.
    #[serde(default)]
    pub min_cost_usd: Option<f64>,
    /// Only threads that took at least this many milliseconds.
    #[serde(default)]
    pub min_duration_ms: Option<f64>,
    /// Only threads with an event whose attribute `key` equals `value`, written `key=value`
    /// (e.g. `user.id=u-42`).
    #[serde(default)]
    pub attribute: Option<String>,
    /// Rows per page (1–200, default 20).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of rows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Page {
    /// The rows.
    pub rows: Vec<serde_json::Value>,
    /// Rows matching in all.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// True when this page stopped early because it reached the size bound
    /// ([`MAX_RESULT_BYTES`](super::MAX_RESULT_BYTES) of JSON), not `limit`: continue with
    /// `next_cursor`.
    pub truncated: bool,
    /// Files of the store that could not be read and were skipped, each with why and how many
    /// rows it held: when present, the answer is incomplete (absent when every file was read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl Page {
    /// Notes the files `store`'s reads skipped for this page, so the answer says it is
    /// incomplete.
    pub(crate) fn with_unreadable(mut self, store: &Store) -> Self {
        self.unreadable = store.skipped_files().iter().map(ToString::to_string).collect();
        self
    }
}

/// Input of `get_thread`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetThreadInput {
    /// The thread id: 32 lowercase hex digits.
    pub thread_id: String,
    /// Spans per page (1–200, default 200).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One event inside a span (a log record, a permission decision, a metric).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ThreadEvent {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// `log`, `permission`, `metric`, …
    pub kind: String,
    /// The log message, or `decision action resource`, or the name.
    pub text: String,
}

/// One span of a thread, in tree order (parents before children, `depth` 0 at the roots).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ThreadSpan {
    /// Nesting depth: 0 for a root.
    pub depth: usize,
    /// 16 hex digits.
    pub span_id: String,
    /// Operation: `chat`, a tool's name, `invoke_agent`, …
    pub name: String,
    /// `llm_call`, `tool_call`, `agent_step`, `retrieval`, `custom`.
    pub kind: String,
    /// Start, RFC 3339 UTC.
    pub start: String,
    /// Duration in milliseconds (to the microsecond).
    pub duration_ms: f64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// The error message of a failed span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The model of an LLM call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Input tokens of an LLM call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    /// Output tokens of an LLM call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    /// Cost in US dollars (6 significant digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Logs, decisions and other events inside the span.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ThreadEvent>,
}

/// A page of one thread's spans.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ThreadPage {
    /// The thread.
    pub thread_id: String,
    /// Events of the thread in all.
    pub event_count: usize,
    /// Spans of the thread in all.
    pub spans_total: usize,
    /// Failed spans of the thread in all.
    pub errors: usize,
    /// This page's spans, in tree order.
    pub spans: Vec<ThreadSpan>,
    /// Events that belong to no recorded span (first page only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loose_events: Vec<ThreadEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// True when this page stopped early at the size bound; continue with `next_cursor`.
    pub truncated: bool,
    /// Files of the store that could not be read and were skipped: when present, the thread
    /// may be missing events (absent when every file was read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// The thread's scores and feedback, oldest first (first page only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<super::scores::ScoreEntry>,
    /// Where the thread sits in its tree — its parent and children (subagents) — and its last
    /// recorded state change (first page only; absent for a lone thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<ThreadTree>,
    /// The thread as it runs now in this agent: state, budget and use (absent when it is not
    /// running here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<mission_govern::threads::ThreadSnapshot>,
}

/// A thread's place in its tree, as recorded in the store.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ThreadTree {
    /// The parent thread, for a child thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_thread_id: Option<String>,
    /// Depth in the tree (absent for a root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    /// The child threads' ids (at most 100).
    pub children: Vec<String>,
    /// Whether it has more children than listed.
    pub children_truncated: bool,
    /// The last recorded state change: `paused`, `running` or `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Who made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_by: Option<String>,
}

impl From<mission_store::ThreadLinks> for ThreadTree {
    fn from(l: mission_store::ThreadLinks) -> Self {
        Self {
            parent_thread_id: l.parent_thread_id,
            depth: l.depth,
            children: l.children,
            children_truncated: l.children_truncated,
            state: l.state,
            state_by: l.state_by,
        }
    }
}

/// Input of `operation_stats`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsInput {
    /// The window, ending now, in minutes (default 60).
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Group by any of: operation, model, agent, tenant, user (default operation).
    #[serde(default)]
    pub group_by: Vec<Group>,
    /// Only spans of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only spans of this operation (span name, e.g. `chat` or a tool's name).
    #[serde(default)]
    pub operation: Option<String>,
}

/// Input of `cost_report`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostInput {
    /// The window, ending now, in minutes (default 1440, a day).
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Group by any of: model, agent, tenant, user, operation (default model).
    #[serde(default)]
    pub group_by: Vec<Group>,
    /// Only LLM calls of this agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// A grouping of `operation_stats` and `cost_report`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// By span name.
    Operation,
    /// By model.
    Model,
    /// By agent.
    Agent,
    /// By tenant.
    Tenant,
    /// By the thread's `user.id`.
    User,
}

impl From<Group> for GroupBy {
    fn from(g: Group) -> Self {
        match g {
            Group::Operation => GroupBy::Operation,
            Group::Model => GroupBy::Model,
            Group::Agent => GroupBy::Agent,
            Group::Tenant => GroupBy::Tenant,
            Group::User => GroupBy::User,
        }
    }
}

/// Input of `search_events`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    /// Only this kind: llm_call, tool_call, agent_step, retrieval, custom, log, permission,
    /// metric, anomaly.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Only log records of this level (trace, debug, info, warn, error).
    #[serde(default)]
    pub level: Option<String>,
    /// Only events whose log or error message contains this text (case-insensitive).
    #[serde(default)]
    pub text: Option<String>,
    /// Only events of this thread.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Only events of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only events of the last this many minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Rows per page (1–200, default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Where a page starts, and the moment the listing was first taken: later pages see the same
/// snapshot (events recorded after it are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) offset: usize,
    pub(crate) as_of: u64,
}

impl Cursor {
    pub(crate) fn parse(cursor: Option<&str>) -> Result<Self, ErrorData> {
        let Some(c) = cursor else { return Ok(Self { offset: 0, as_of: Timestamp::now().0 }) };
        let bad = || {
            invalid(format!(
                "cursor {c:?} is not one this server issued: pass the next_cursor of the \
                 previous page, or no cursor for the first page"
            ))
        };
        let (offset, as_of) = c.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            offset: offset.parse().map_err(|_| bad())?,
            as_of: as_of.parse().map_err(|_| bad())?,
        })
    }

    fn next(self, offset: usize) -> String {
        format!("{offset}.{}", self.as_of)
    }

    /// Events up to the snapshot time.
    pub(crate) fn until(self) -> Timestamp {
        Timestamp(self.as_of.saturating_add(1))
    }
}

pub(crate) fn check_limit(limit: Option<usize>, default: usize) -> Result<usize, ErrorData> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_ROWS {
        return Err(invalid(format!("limit must be between 1 and {MAX_ROWS}, not {limit}")));
    }
    Ok(limit)
}

pub(crate) fn window_start(minutes: Option<u64>) -> Result<Option<Timestamp>, ErrorData> {
    match minutes {
        Some(0) => Err(invalid("since_minutes must be at least 1")),
        Some(m) => {
            Ok(Some(Timestamp(Timestamp::now().0.saturating_sub(m.saturating_mul(60_000_000_000)))))
        }
        None => Ok(None),
    }
}

pub(crate) fn check_thread_id(id: &str) -> Result<(), ErrorData> {
    id.parse::<mission_core::ThreadId>().map(|_| ()).map_err(|_| {
        invalid(format!(
            "thread_id must be 32 lowercase hex digits, as list_threads returns them, not {:?}",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// Takes up to `limit` items from `offset`, stopping early before [`MAX_RESULT_BYTES`] of JSON
/// (but always at least one item). Returns the items, the offset after them and whether the
/// size bound cut the page.
pub(crate) fn take_bounded<T: Serialize>(
    all: Vec<T>,
    offset: usize,
    limit: usize,
) -> (Vec<T>, usize, bool) {
    let mut bytes = 0;
    let mut out = Vec::new();
    let mut truncated = false;
    for item in all.into_iter().skip(offset).take(limit) {
        let size = serde_json::to_string(&item).map_or(0, |s| s.len() + 1);
        if !out.is_empty() && bytes + size > MAX_RESULT_BYTES {
            truncated = true;
            break;
        }
        bytes += size;
        out.push(item);
    }
    let next = offset + out.len();
    (out, next, truncated)
}

pub(crate) fn page(mut all: Vec<serde_json::Value>, cursor: Cursor, limit: usize) -> Page {
    all.iter_mut().for_each(normalize);
    let total = all.len();
    let (rows, next, truncated) = take_bounded(all, cursor.offset, limit);
    Page {
        rows,
        total,
        next_cursor: (next < total).then(|| cursor.next(next)),
        truncated,
        unreadable: Vec::new(),
    }
}

/// What a listing tool was asked for besides its filters: the page size, where the page
/// starts in which snapshot (the cursor), and the start of the time window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paging {
    limit: usize,
    cursor: Cursor,
    from: Timestamp,
}

impl Paging {
    /// Checks a listing's `limit` (`default` when absent), `cursor` and `since_minutes`, in
    /// that order.
    pub(crate) fn parse(
        limit: Option<usize>,
        default: usize,
        cursor: Option<&str>,
        since_minutes: Option<u64>,
    ) -> Result<Self, ErrorData> {
        let limit = check_limit(limit, default)?;
        let cursor = Cursor::parse(cursor)?;
        let from = window_start(since_minutes)?.unwrap_or(Timestamp(0));
        Ok(Self { limit, cursor, from })
    }

    /// A report's paging: one page of up to [`MAX_ROWS`] rows over the last `minutes`, as of
    /// now.
    fn window(minutes: u64) -> Result<Self, ErrorData> {
        let from = window_start(Some(minutes))?.unwrap_or_default();
        Ok(Self { limit: MAX_ROWS, cursor: Cursor::parse(None)?, from })
    }
}

/// The first line of an answer's text when files were skipped (empty when none were).
fn unreadable_warning(unreadable: &[String]) -> String {
    if unreadable.is_empty() {
        return String::new();
    }
    format!(
        "WARNING: incomplete answer, {} unreadable file(s) of the store were skipped: {}\n",
        unreadable.len(),
        unreadable.join("; ")
    )
}

/// A text table of `fields` of `rows`, for the model.
pub(crate) fn table(title: &str, page: &Page, fields: &[&str]) -> String {
    let mut text = unreadable_warning(&page.unreadable);
    let _ = write!(text, "{title}: {} of {} shown", page.rows.len(), page.total);
    if let Some(c) = &page.next_cursor {
        let _ =
            write!(text, " (more: cursor {c}{})", if page.truncated { ", size bound" } else { "" });
    }
    text.push('\n');
    text.push_str(&fields.join(" | "));
    for row in &page.rows {
        text.push('\n');
        let cells: Vec<String> = fields
            .iter()
            .map(|f| match row.get(*f) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) if f.ends_with("_ms") => {
                    n.as_f64().map_or_else(|| n.to_string(), ms_text)
                }
                Some(serde_json::Value::Number(n)) if f.ends_with("_usd") => {
                    n.as_f64().map_or_else(|| n.to_string(), usd_text)
                }
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("/"),
                Some(v) if !v.is_null() => v.to_string(),
                _ => String::new(),
            })
            .collect();
        text.push_str(&cells.join(" | "));
    }
    text
}

/// The thread's spans in tree order, and its loose events.
pub(crate) fn flatten(view: ThreadView) -> (Vec<ThreadSpan>, Vec<ThreadEvent>) {
    fn events(list: Vec<(i64, String, String)>) -> Vec<ThreadEvent> {
        list.into_iter()
            .map(|(time_ns, kind, text)| ThreadEvent { time: rfc3339(time_ns), kind, text })
            .collect()
    }
    fn walk(node: SpanNode, depth: usize, out: &mut Vec<ThreadSpan>) {
        out.push(ThreadSpan {
            depth,
            span_id: node.span_id,
            name: node.name,
            kind: node.kind,
            start: rfc3339(node.start_ns),
            duration_ms: ms(node.duration_ns as f64),
            status: node.status,
            error_message: node.error_message,
            model: node.model,
            input_tokens: node.input_tokens,
            output_tokens: node.output_tokens,
            cost_usd: node.cost_usd.map(usd),
            events: events(node.events),
        });
        for child in node.children {
            walk(child, depth + 1, out);
        }
    }
    let mut spans = Vec::new();
    for root in view.roots {
        walk(root, 0, &mut spans);
    }
    (spans, events(view.loose_events))
}

/// One line per span, indented by depth, for the model.
pub(crate) fn thread_text(page: &ThreadPage) -> String {
    let mut text = unreadable_warning(&page.unreadable);
    let _ = write!(
        text,
        "thread {}: {} spans ({} failed), {} events",
        page.thread_id, page.spans_total, page.errors, page.event_count
    );
    if let Some(first) = page.spans.first() {
        let _ = write!(text, ", from {}", first.start);
    }
    if let Some(c) = &page.next_cursor {
        let _ = write!(text, "; showing {} (more: cursor {c})", page.spans.len());
    }
    if let Some(tree) = &page.tree {
        if let Some(parent) = &tree.parent_thread_id {
            let _ = write!(text, "\nchild of thread {parent}");
        }
        if !tree.children.is_empty() {
            let _ = write!(text, "\nchild threads: {}", tree.children.join(", "));
        }
        if let Some(state) = &tree.state {
            let by = tree.state_by.as_deref().unwrap_or("?");
            let _ = write!(text, "\nlast state change: {state} by {by}");
        }
    }
    if let Some(live) = &page.live {
        let _ = write!(
            text,
            "\nrunning now: {}, used {} turns, {} tokens, ${:.4}",
            live.state.as_str(),
            live.used.turns,
            live.used.tokens,
            live.used.cost_usd
        );
    }
    for s in &page.spans {
        let _ = write!(
            text,
            "\n{}{} [{}] {} {}",
            "  ".repeat(s.depth),
            s.name,
            s.kind,
            ms_text(s.duration_ms),
            s.status
        );
        if let Some(m) = &s.model {
            let _ = write!(text, " {m}");
        }
        if let (Some(i), Some(o)) = (s.input_tokens, s.output_tokens) {
            let _ = write!(text, " {i}→{o} tok");
        }
        if let Some(c) = s.cost_usd {
            let _ = write!(text, " {}", usd_text(c));
        }
        if let Some(e) = &s.error_message {
            let _ = write!(text, " error: {e}");
        }
        for e in &s.events {
            let _ = write!(text, "\n{}- {}: {}", "  ".repeat(s.depth + 1), e.kind, e.text);
        }
    }
    for e in &page.loose_events {
        let _ = write!(text, "\n- {}: {}", e.kind, e.text);
    }
    if !page.scores.is_empty() {
        text.push_str("\nscores:");
        text.push_str(&super::scores::scores_text(&page.scores));
    }
    text
}

/// `get_thread`'s work, shared with the resource and the prompts.
pub(crate) fn thread_page(
    source: &Source,
    input: GetThreadInput,
    scope: Option<&str>,
) -> Result<ThreadPage, ErrorData> {
    check_thread_id(&input.thread_id)?;
    let limit = check_limit(input.limit, MAX_ROWS)?;
    let cursor = Cursor::parse(input.cursor.as_deref())?;
    let store = source.store(scope)?;
    let view = load_thread(&store, &input.thread_id)?;
    let event_count = view.event_count;
    let scores = if cursor.offset == 0 {
        view.scores.clone().into_iter().map(super::scores::ScoreEntry::from).collect()
    } else {
        Vec::new()
    };
    let (tree, live) = if cursor.offset == 0 {
        let links = store.thread_links(&input.thread_id).map_err(internal)?;
        let lone =
            links.parent_thread_id.is_none() && links.children.is_empty() && links.state.is_none();
        let live = match (&source.live, input.thread_id.parse::<mission_core::ThreadId>()) {
            (Some(live), Ok(id)) => live
                .threads
                .as_ref()
                .and_then(|t| t.snapshot(scope, id, mission_core::Timestamp::now().0)),
            _ => None,
        };
        ((!lone).then(|| ThreadTree::from(links)), live)
    } else {
        (None, None)
    };
    let (spans, loose) = flatten(view);
    let spans_total = spans.len();
    let errors = spans.iter().filter(|s| s.status == "error").count();
    let (spans, next, truncated) = take_bounded(spans, cursor.offset, limit);
    Ok(ThreadPage {
        thread_id: input.thread_id,
        event_count,
        spans_total,
        errors,
        spans,
        loose_events: if cursor.offset == 0 { loose } else { Vec::new() },
        next_cursor: (next < spans_total).then(|| cursor.next(next)),
        truncated,
        unreadable: store.skipped_files().iter().map(ToString::to_string).collect(),
        scores,
        tree,
        live,
    })
}

/// A thread as `store` (opened with the request's scope) holds it, or an error naming it: a
/// thread id another tenant continued shows only the scope's own events.
pub(crate) fn load_thread(store: &Store, thread_id: &str) -> Result<ThreadView, ErrorData> {
    let view = store.thread(thread_id).map_err(internal)?;
    if view.event_count == 0 {
        return Err(invalid(format!(
            "no thread {thread_id} in the store (list_threads lists the threads you can read)"
        )));
    }
    Ok(view)
}

/// `operation_stats`' rows, shared with the prompts.
pub(crate) fn stats_rows(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    input: &StatsInput,
) -> Result<Vec<mission_store::OperationStat>, ErrorData> {
    let groups: Vec<GroupBy> = input.group_by.iter().map(|g| (*g).into()).collect();
    let mut q = store.query().time_range(from, to);
    if let Some(a) = &input.agent {
        q = q.agent(a);
    }
    if let Some(o) = &input.operation {
        q = q.name(o);
    }
    store.operation_stats(q, &groups).map_err(internal)
}

impl MissionMcp {
    /// One page of a listing, read from the store as the request's tenant scope may see it
    /// (a tenant-scoped store lists that tenant's files only): `rows` gets that store and the
    /// time range (the window's start to the cursor's snapshot) and returns every matching
    /// row, and whatever else the answer carries; the page is cut from the rows by the cursor
    /// and the limit, and names the files the store skipped. Every listing tool reads through
    /// here, so none can forget the scope.
    pub(crate) async fn scoped_page_with<X: Send + 'static>(
        &self,
        context: &RequestContext<RoleServer>,
        paging: Paging,
        rows: impl FnOnce(
            &Store,
            Timestamp,
            Timestamp,
        ) -> Result<(Vec<serde_json::Value>, X), ErrorData>
        + Send
        + 'static,
    ) -> Result<(Page, X), ErrorData> {
        let scope = scope_of(&context.extensions);
        self.blocking(move |source| {
            let store = source.store(scope.as_deref())?;
            let (rows, besides) = rows(&store, paging.from, paging.cursor.until())?;
            Ok((page(rows, paging.cursor, paging.limit).with_unreadable(&store), besides))
        })
        .await
    }

    /// [`scoped_page_with`](Self::scoped_page_with) for a listing that answers with its page
    /// only.
    pub(crate) async fn scoped_page(
        &self,
        context: &RequestContext<RoleServer>,
        paging: Paging,
        rows: impl FnOnce(&Store, Timestamp, Timestamp) -> Result<Vec<serde_json::Value>, ErrorData>
        + Send
        + 'static,
    ) -> Result<Page, ErrorData> {
        let listing = move |store: &Store, from, until| Ok((rows(store, from, until)?, ()));
        Ok(self.scoped_page_with(context, paging, listing).await?.0)
    }

    /// A report over the last `minutes` of the store as one bounded page: `rows` gets the
    /// store as the request's tenant scope may see it, and the window.
    async fn window_page<T: Serialize>(
        &self,
        minutes: u64,
        context: &RequestContext<RoleServer>,
        rows: impl FnOnce(&Store, Timestamp, Timestamp) -> Result<Vec<T>, ErrorData> + Send + 'static,
    ) -> Result<Page, ErrorData> {
        self.scoped_page(context, Paging::window(minutes)?, move |store, from, until| {
            let rows = rows(store, from, until)?;
            Ok(rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect())
        })
        .await
    }
}

#[tool_router(router = tool_router, vis = "pub(crate)")]
impl MissionMcp {
    /// List agent threads (runs), newest first.
    #[tool(
        name = "list_threads",
        description = "List agent threads (runs), newest first, with agent, tenant, start (RFC 3339 UTC), duration_ms, span count, tokens, cost_usd and errors. Filters: agent, status (error|ok), since_minutes, min_cost_usd, min_duration_ms, attribute (key=value). Paginated: pass next_cursor as cursor.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn list_threads(
        &self,
        Parameters(input): Parameters<ListThreadsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let paging = Paging::parse(input.limit, 20, input.cursor.as_deref(), input.since_minutes)?;
        if let Some(s) = &input.status
            && s != "error"
            && s != "ok"
        {
            return Err(invalid(format!("status must be \"error\" or \"ok\", not {s:?}")));
        }
        let attribute = match input.attribute.as_deref() {
            Some(a) => Some(
                a.split_once('=')
                    .ok_or_else(|| invalid(format!("attribute must be key=value, not {a:?}")))?,
            )
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            None => None,
        };
        let page = self
            .scoped_page(&context, paging, move |store, from, until| {
                let mut q = store.query().time_range(from, until);
                if let Some(a) = &input.agent {
                    q = q.agent(a);
                }
                let mut threads = store.threads(q).map_err(internal)?;
                if let Some((k, v)) = &attribute {
                    let q = store.query().attribute(k, v).columns(&[col::THREAD_ID]);
                    let mut with = std::collections::HashSet::new();
                    for batch in q.iter().map_err(internal)? {
                        let batch = batch.map_err(internal)?;
                        if let Some(ids) = batch
                            .column_by_name(col::THREAD_ID)
                            .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
                        {
                            with.extend(ids.iter().flatten().map(str::to_owned));
                        }
                    }
                    threads.retain(|t| with.contains(&t.thread_id));
                }
                let rows = threads
                    .into_iter()
                    .filter(|t| match input.status.as_deref() {
                        Some("error") => t.errors > 0,
                        Some("ok") => t.errors == 0,
                        _ => true,
                    })
                    .filter(|t| input.min_cost_usd.is_none_or(|c| t.cost_usd >= c))
                    .filter(|t| {
                        input.min_duration_ms.is_none_or(|d| t.duration_ns as f64 / 1e6 >= d)
                    })
                    .map(|t| serde_json::to_value(t).unwrap_or_default())
                    .collect();
                Ok(rows)
            })
            .await?;
        let text = table(
            "threads",
            &page,
            &["thread_id", "agent", "start", "duration_ms", "spans", "errors", "cost_usd"],
        );
        Ok(Answer { value: page, text })
    }

    /// One thread's spans in tree order.
    #[tool(
        name = "get_thread",
        description = "One thread's spans in tree order (depth 0 = root): kind, name, start (RFC 3339 UTC), duration_ms, status, error message, model, tokens and cost, with the logs, permission decisions and scores inside each span, and the thread's scores and feedback (name, value, label, comment, source). Paginated by spans for very large threads.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ThreadPage>()
    )]
    pub(crate) async fn get_thread(
        &self,
        Parameters(input): Parameters<GetThreadInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<ThreadPage>, ErrorData> {
        check_thread_id(&input.thread_id)?;
        let scope = scope_of(&context.extensions);
        let page =
            self.blocking(move |source| thread_page(source, input, scope.as_deref())).await?;
        let text = thread_text(&page);
        Ok(Answer { value: page, text })
    }

    /// Latency percentiles by operation/model/agent/tenant/user over a window.
    #[tool(
        name = "operation_stats",
        description = "Latency p50/p95/p99/max in milliseconds (p50_ms, …), error rate, throughput, tokens and cost of spans over the last since_minutes (default 60), grouped by any of operation, model, agent, tenant, user; optionally only one agent or operation.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn operation_stats(
        &self,
        Parameters(input): Parameters<StatsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let minutes = input.since_minutes.unwrap_or(60);
        let page = self
            .window_page(minutes, &context, move |store, from, to| {
                stats_rows(store, from, to, &input)
            })
            .await?;
        let text = table(
            "operation stats",
            &page,
            &["group", "count", "errors", "p50_ms", "p95_ms", "p99_ms", "cost_usd"],
        );
        Ok(Answer { value: page, text })
    }

    /// Tokens and cost by model/agent/tenant/user over a window.
    #[tool(
        name = "cost_report",
        description = "Tokens (input, cached input, output) and cost in US dollars of LLM calls over the last since_minutes (default 1440), grouped by any of model, agent, tenant, user, operation (default model); most expensive first, with the number of calls and threads.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn cost_report(
        &self,
        Parameters(input): Parameters<CostInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let minutes = input.since_minutes.unwrap_or(1440);
        let page = self
            .window_page(minutes, &context, move |store, from, to| {
                let groups: Vec<GroupBy> = input.group_by.iter().map(|g| (*g).into()).collect();
                let mut q = store.query().time_range(from, to);
                if let Some(a) = &input.agent {
                    q = q.agent(a);
                }
                store.cost_report(q, &groups).map_err(internal)
            })
            .await?;
        let total: f64 =
            page.rows.iter().filter_map(|r| r.get("cost_usd").and_then(|c| c.as_f64())).sum();
        let text = format!(
            "{}\ntotal {}",
            table(
                "cost",
                &page,
                &["group", "llm_calls", "threads", "input_tokens", "output_tokens", "cost_usd"],
            ),
            usd_text(total)
        );
        Ok(Answer { value: page, text })
    }

    /// Search events by kind, name, level, text, thread and time.
    #[tool(
        name = "search_events",
        description = "Search events by kind, name, log level, text (in log and error messages, case-insensitive), thread_id, agent and since_minutes. Returns time, kind, agent, thread, name, status, level and message, oldest first. Paginated.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn search_events(
        &self,
        Parameters(input): Parameters<SearchInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let paging = Paging::parse(input.limit, 50, input.cursor.as_deref(), input.since_minutes)?;
        if let Some(t) = &input.thread_id {
            check_thread_id(t)?;
        }
        if let Some(l) = &input.level
            && !["trace", "debug", "info", "warn", "error"].contains(&l.as_str())
        {
            return Err(invalid(format!(
                "level must be trace, debug, info, warn or error, not {l:?}"
            )));
        }
        let page = self
            .scoped_page(&context, paging, move |store, from, until| {
                search(store, &input, from, until)
            })
            .await?;
        let text = table(
            "events",
            &page,
            &[
                "time",
                "kind",
                "gen_ai_agent_name",
                "thread_id",
                "name",
                "status",
                "log_message",
                "error_message",
            ],
        );
        Ok(Answer { value: page, text })
    }

    /// Health of the agent (when inside one) and of the store.
    #[tool(
        name = "health",
        description = "Health: inside an agent, the recorder's exact event accounting (delivered, dropped by reason), buffer fill, each sink's state and errors, OTLP export counters and spans in flight; and the store's files, bytes, events, leftovers of killed writers and unreadable files."
    )]
    pub(crate) async fn health(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<serde_json::Value>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let value =
            self.blocking(move |source| super::health::health(source, scope.as_deref())).await?;
        let text = health_text(&value);
        Ok(Answer { value, text })
    }
}

/// The events `search_events` finds from `from` to `until`, oldest first, as JSON objects of
/// text values.
fn search(
    store: &Store,
    input: &SearchInput,
    from: Timestamp,
    until: Timestamp,
) -> Result<Vec<serde_json::Value>, ErrorData> {
    let mut q = store
        .query()
        .columns(&[
            col::TIME,
            col::KIND,
            col::AGENT,
            col::THREAD_ID,
            col::NAME,
            col::STATUS,
            col::ERROR_MESSAGE,
            col::LOG_LEVEL,
            col::LOG_MESSAGE,
        ])
        .time_range(from, until);
    for (value, set) in [
        (&input.kind, mission_store::Query::kind as fn(_, &str) -> _),
        (&input.name, mission_store::Query::name),
        (&input.thread_id, mission_store::Query::thread),
        (&input.agent, mission_store::Query::agent),
    ] {
        if let Some(v) = value {
            q = set(q, v);
        }
    }
    let text = input.text.as_deref().map(str::to_lowercase);
    let mut rows = Vec::new();
    for batch in q.iter().map_err(|e| invalid(e.to_string()))? {
        let batch = batch.map_err(internal)?;
        for obj in text_rows(&batch) {
            if let Some(level) = &input.level
                && obj.get(col::LOG_LEVEL).and_then(|v| v.as_str()) != Some(level.as_str())
            {
                continue;
            }
            if let Some(t) = &text {
                let hit = [col::LOG_MESSAGE, col::ERROR_MESSAGE]
                    .iter()
                    .filter_map(|k| obj.get(*k).and_then(|v| v.as_str()))
                    .any(|m| m.to_lowercase().contains(t.as_str()));
                if !hit {
                    continue;
                }
            }
            rows.push(serde_json::Value::Object(obj));
        }
    }
    // Files hold rows by thread; the model reads a timeline.
    rows.sort_by_key(row_time);
    Ok(rows)
}

/// Each row of `batch` as a JSON object of its non-null values: times (nanosecond timestamp
/// columns) as integer ns since the epoch, for sorting (a [`page`] writes them as RFC 3339);
/// everything else as text (columns that do not cast to text, such as maps, are left out).
pub(crate) fn text_rows(
    batch: &arrow::array::RecordBatch,
) -> impl Iterator<Item = serde_json::Map<String, serde_json::Value>> + '_ {
    use arrow::array::{Array, StringArray, TimestampNanosecondArray};
    enum Column {
        Time(TimestampNanosecondArray),
        Text(arrow::array::ArrayRef),
    }
    let columns: Vec<(String, Column)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter_map(|(f, c)| {
            if let Some(t) = c.as_any().downcast_ref::<TimestampNanosecondArray>() {
                return Some((f.name().clone(), Column::Time(t.clone())));
            }
            let text = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok()?;
            Some((f.name().clone(), Column::Text(text)))
        })
        .collect();
    (0..batch.num_rows()).map(move |row| {
        let mut obj = serde_json::Map::new();
        for (name, column) in &columns {
            match column {
                Column::Time(t) if t.is_valid(row) => {
                    obj.insert(name.clone(), serde_json::Value::from(t.value(row)));
                }
                Column::Text(c) => {
                    if let Some(s) = c.as_any().downcast_ref::<StringArray>()
                        && s.is_valid(row)
                    {
                        obj.insert(
                            name.clone(),
                            serde_json::Value::String(s.value(row).to_owned()),
                        );
                    }
                }
                Column::Time(_) => {}
            }
        }
        obj
    })
}

/// The time (ns) of a row of [`text_rows`], for sorting.
pub(crate) fn row_time(row: &serde_json::Value) -> Option<i64> {
    row.get(col::TIME).and_then(serde_json::Value::as_i64)
}

/// A few lines on what matters in a health report.
fn health_text(value: &serde_json::Value) -> String {
    let mut text = String::new();
    if let Some(agent) = value.get("agent").filter(|a| a.get("tenant").is_some()) {
        // A tenant's view (see TenantHealth): no process-wide numbers.
        let _ = writeln!(
            text,
            "agent (tenant {}): healthy={} in flight={}",
            agent["tenant"].as_str().unwrap_or("?"),
            agent["healthy"],
            agent["in_flight_open"]
        );
        for s in agent["sinks"].as_array().into_iter().flatten() {
            let _ = writeln!(text, "sink {}: {}", s["name"].as_str().unwrap_or("?"), s["state"]);
        }
    } else if let Some(agent) = value.get("agent").filter(|a| !a.is_null()) {
        let get = |path: &[&str]| {
            path.iter().try_fold(agent, |v, k| v.get(*k)).map(|v| v.to_string()).unwrap_or_default()
        };
        let _ = writeln!(
            text,
            "agent: healthy={} delivered={} dropped={} buffer fill={}/{} in flight={} overdue={}",
            get(&["healthy"]),
            get(&["recorder", "accounting", "delivered"]),
            get(&["recorder", "accounting", "dropped"]),
            get(&["recorder", "buffer", "fill"]),
            get(&["recorder", "buffer", "capacity"]),
            get(&["in_flight", "open"]),
            get(&["in_flight", "overdue"]),
        );
        if let Some(sinks) = agent.pointer("/recorder/sinks").and_then(|s| s.as_array()) {
            for s in sinks {
                let _ = writeln!(
                    text,
                    "sink {}: {} events={} errors={}",
                    s["name"].as_str().unwrap_or("?"),
                    s["state"],
                    s["events"],
                    s["errors"]
                );
            }
        }
    }
    if let Some(store) = value.get("store").filter(|s| !s.is_null()) {
        let _ = write!(
            text,
            "store: files={} bytes={} events={} leftovers={} unreadable={}",
            store["files"],
            store["bytes"],
            store["events"],
            store["leftovers"],
            store["unreadable"].as_array().map_or(0, Vec::len)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_what_we_did_not_issue() {
        let c = Cursor { offset: 40, as_of: 1_700_000_000_000_000_000 };
        assert_eq!(Cursor::parse(Some(&c.next(40))).expect("ours"), c);
        for bad in ["", "40", "x.1", "1.y", "-1.5"] {
            assert!(Cursor::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_stop_at_the_size_bound_but_never_empty() {
        let big = "x".repeat(MAX_RESULT_BYTES / 3);
        let rows: Vec<String> = (0..10).map(|_| big.clone()).collect();
        let (page, next, truncated) = take_bounded(rows.clone(), 0, 10);
        assert_eq!((page.len(), next, truncated), (2, 2, true));
        let huge = vec!["y".repeat(MAX_RESULT_BYTES * 2)];
        let (page, next, truncated) = take_bounded(huge, 0, 10);
        assert_eq!((page.len(), next, truncated), (1, 1, false));
        let (page, next, truncated) = take_bounded(rows, 9, 10);
        assert_eq!((page.len(), next, truncated), (1, 10, false));
    }
}
