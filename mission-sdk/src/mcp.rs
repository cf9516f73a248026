//! The MCP server: agents and people ask Mission Control about itself, with the official Rust
//! SDK (`rmcp`). [`MissionMcp`] answers over a store on disk (`mission-ctl mcp --store DIR`
//! serves it on stdio). Every tool validates its input, bounds its output (paginated with a
//! cursor) and returns structured JSON plus a short text for the model.

use std::path::{Path, PathBuf};

use mission_core::Timestamp;
use mission_store::{GroupBy, Store};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most rows one call returns; further rows come with a `next_cursor`.
pub const MAX_ROWS: usize = 200;

/// The MCP server over the store at a root directory (re-opened on every call, so it sees files
/// written since it started).
#[derive(Clone, Debug)]
pub struct MissionMcp {
    root: PathBuf,
    tool_router: ToolRouter<Self>,
}

/// Filters of `list_threads`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListThreadsInput {
    /// Only threads of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only threads with at least one error (`error`), or without (`ok`).
    #[serde(default)]
    pub status: Option<String>,
    /// Only threads that started in the last this many minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Only threads that cost at least this many US dollars.
    #[serde(default)]
    pub min_cost_usd: Option<f64>,
    /// Only threads that took at least this many milliseconds.
    #[serde(default)]
    pub min_duration_ms: Option<f64>,
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
}

/// Input of `get_thread`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetThreadInput {
    /// The thread id: 32 lowercase hex digits.
    pub thread_id: String,
}

/// Input of `operation_stats`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct StatsInput {
    /// The window, ending now, in minutes (default 60).
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Group by any of: operation, model, agent, tenant (default operation).
    #[serde(default)]
    pub group_by: Vec<Group>,
}

/// A grouping of `operation_stats`.
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
}

impl From<Group> for GroupBy {
    fn from(g: Group) -> Self {
        match g {
            Group::Operation => GroupBy::Operation,
            Group::Model => GroupBy::Model,
            Group::Agent => GroupBy::Agent,
            Group::Tenant => GroupBy::Tenant,
        }
    }
}

/// Input of `search_events`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SearchInput {
    /// Only this kind: llm_call, tool_call, agent_step, retrieval, log, permission, …
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Only log records of this level.
    #[serde(default)]
    pub level: Option<String>,
    /// Only events whose log or error message contains this text.
    #[serde(default)]
    pub text: Option<String>,
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

fn invalid(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

fn page_bounds(
    limit: Option<usize>,
    default: usize,
    cursor: Option<&str>,
) -> Result<(usize, usize), ErrorData> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_ROWS {
        return Err(invalid(format!("limit must be between 1 and {MAX_ROWS}, not {limit}")));
    }
    let offset = match cursor {
        None => 0,
        Some(c) => {
            c.parse().map_err(|_| invalid(format!("cursor {c:?} is not one this server issued")))?
        }
    };
    Ok((offset, limit))
}

fn page(all: Vec<serde_json::Value>, offset: usize, limit: usize) -> Page {
    let total = all.len();
    let rows: Vec<serde_json::Value> = all.into_iter().skip(offset).take(limit).collect();
    let next = offset + rows.len();
    Page { rows, total, next_cursor: (next < total).then(|| next.to_string()) }
}

fn since(minutes: Option<u64>) -> Option<Timestamp> {
    minutes.map(|m| Timestamp(Timestamp::now().0.saturating_sub(m.saturating_mul(60_000_000_000))))
}

#[tool_router(router = tool_router)]
impl MissionMcp {
    /// A server over the store at `root`.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self { root: root.as_ref().to_path_buf(), tool_router: Self::tool_router() }
    }

    fn store(&self) -> Result<Store, ErrorData> {
        Store::open(&self.root).map_err(internal)
    }

    /// List agent threads (runs, conversations), newest first, with duration, spans, tokens,
    /// cost and errors.
    #[tool(
        name = "list_threads",
        description = "List agent threads (runs), newest first, with agent, start, duration, span count, tokens, cost and errors. Filters: agent, status (error|ok), since_minutes, min_cost_usd, min_duration_ms. Paginated: pass next_cursor as cursor."
    )]
    pub async fn list_threads(
        &self,
        Parameters(input): Parameters<ListThreadsInput>,
    ) -> Result<Json<Page>, ErrorData> {
        let (offset, limit) = page_bounds(input.limit, 20, input.cursor.as_deref())?;
        if let Some(s) = &input.status
            && s != "error"
            && s != "ok"
        {
            return Err(invalid(format!("status must be \"error\" or \"ok\", not {s:?}")));
        }
        let store = self.store()?;
        let mut q = store.query();
        if let Some(a) = &input.agent {
            q = q.agent(a);
        }
        if let Some(from) = since(input.since_minutes) {
            q = q.time_range(from, Timestamp(u64::MAX >> 1));
        }
        let threads = store.threads(q).map_err(internal)?;
        let rows = threads
            .into_iter()
            .filter(|t| match input.status.as_deref() {
                Some("error") => t.errors > 0,
                Some("ok") => t.errors == 0,
                _ => true,
            })
            .filter(|t| input.min_cost_usd.is_none_or(|c| t.cost_usd >= c))
            .filter(|t| input.min_duration_ms.is_none_or(|d| t.duration_ns as f64 / 1e6 >= d))
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .collect();
        Ok(Json(page(rows, offset, limit)))
    }

    /// One thread as a span tree.
    #[tool(
        name = "get_thread",
        description = "One thread as a span tree: each span's kind, name, start, duration, status, error message, model, tokens and cost, with its logs and permission decisions."
    )]
    pub async fn get_thread(
        &self,
        Parameters(input): Parameters<GetThreadInput>,
    ) -> Result<Json<serde_json::Value>, ErrorData> {
        input
            .thread_id
            .parse::<mission_core::ThreadId>()
            .map_err(|e| invalid(format!("thread_id: {e}")))?;
        let view = self.store()?.thread(&input.thread_id).map_err(internal)?;
        if view.event_count == 0 {
            return Err(invalid(format!("no thread {} in the store", input.thread_id)));
        }
        serde_json::to_value(view).map(Json).map_err(internal)
    }

    /// Latency percentiles by operation/model/agent/tenant over a window.
    #[tool(
        name = "operation_stats",
        description = "Latency p50/p95/p99/max, error rate, throughput, tokens and cost of spans over the last since_minutes (default 60), grouped by any of operation, model, agent, tenant."
    )]
    pub async fn operation_stats(
        &self,
        Parameters(input): Parameters<StatsInput>,
    ) -> Result<Json<Page>, ErrorData> {
        let minutes = input.since_minutes.unwrap_or(60);
        if minutes == 0 {
            return Err(invalid("since_minutes must be at least 1"));
        }
        let now = Timestamp::now();
        let from = since(Some(minutes)).unwrap_or(now);
        let groups: Vec<GroupBy> = input.group_by.iter().map(|g| (*g).into()).collect();
        let store = self.store()?;
        let stats = store
            .operation_stats(store.query().time_range(from, Timestamp(now.0 + 1)), &groups)
            .map_err(internal)?;
        let rows = stats.into_iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect();
        Ok(Json(page(rows, 0, MAX_ROWS)))
    }

    /// Search events by kind, name, level, text and time.
    #[tool(
        name = "search_events",
        description = "Search events by kind, name, log level, text (in log and error messages) and since_minutes. Returns time, kind, agent, thread, name, status, message. Paginated."
    )]
    pub async fn search_events(
        &self,
        Parameters(input): Parameters<SearchInput>,
    ) -> Result<Json<Page>, ErrorData> {
        use mission_store::schema::col;
        let (offset, limit) = page_bounds(input.limit, 50, input.cursor.as_deref())?;
        let store = self.store()?;
        let mut q = store.query().columns(&[
            col::TIME,
            col::KIND,
            col::AGENT,
            col::THREAD_ID,
            col::NAME,
            col::STATUS,
            col::ERROR_MESSAGE,
            col::LOG_LEVEL,
            col::LOG_MESSAGE,
        ]);
        if let Some(k) = &input.kind {
            q = q.kind(k);
        }
        if let Some(n) = &input.name {
            q = q.name(n);
        }
        if let Some(from) = since(input.since_minutes) {
            q = q.time_range(from, Timestamp(u64::MAX >> 1));
        }
        let batches = q.batches().map_err(|e| invalid(e.to_string()))?;
        let text = input.text.as_deref().map(str::to_lowercase);
        let mut rows = Vec::new();
        for batch in &batches {
            let columns: Vec<(String, arrow::array::ArrayRef)> = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| {
                    (
                        f.name().clone(),
                        arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
                            .unwrap_or_else(|_| c.clone()),
                    )
                })
                .collect();
            for row in 0..batch.num_rows() {
                let mut obj = serde_json::Map::new();
                for (name, column) in &columns {
                    if let Some(s) = column.as_any().downcast_ref::<arrow::array::StringArray>()
                        && arrow::array::Array::is_valid(s, row)
                    {
                        obj.insert(
                            name.clone(),
                            serde_json::Value::String(s.value(row).to_owned()),
                        );
                    }
                }
                if let Some(level) = &input.level
                    && obj.get(col::LOG_LEVEL).and_then(|v| v.as_str()) != Some(level.as_str())
                {
                    continue;
                }
                if let Some(t) = &text {
                    let hay = [col::LOG_MESSAGE, col::ERROR_MESSAGE]
                        .iter()
                        .filter_map(|k| obj.get(*k).and_then(|v| v.as_str()))
                        .any(|m| m.to_lowercase().contains(t.as_str()));
                    if !hay {
                        continue;
                    }
                }
                rows.push(serde_json::Value::Object(obj));
            }
        }
        Ok(Json(page(rows, offset, limit)))
    }

    /// Health of the store: files, events, leftovers, unreadable files.
    #[tool(
        name = "health",
        description = "Health of the store: files, bytes, events, leftovers of killed writers, unreadable or foreign files."
    )]
    pub async fn health(&self) -> Result<Json<serde_json::Value>, ErrorData> {
        let check = self.store()?.check().map_err(internal)?;
        Ok(Json(serde_json::json!({
            "store": self.root.display().to_string(),
            "files": check.files,
            "bytes": check.bytes,
            "events": check.events,
            "leftovers": check.leftovers.len(),
            "unreadable": check.unreadable.iter().map(|(p, r)| format!("{}: {r}", p.display())).collect::<Vec<_>>(),
        })))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MissionMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mission-control", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Mission Control observes AI agents. list_threads finds runs (filter by agent, errors, cost, \
                 duration); get_thread shows one run's span tree; operation_stats gives latency, errors and \
                 cost by operation or model; search_events finds logs and errors by text.",
            )
    }
}

/// Serves [`MissionMcp`] over stdin/stdout until the client disconnects.
///
/// # Errors
/// The transport failed to start or ended with an error.
pub async fn serve_stdio(
    root: impl AsRef<Path>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use rmcp::ServiceExt;
    let service = MissionMcp::new(root).serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
