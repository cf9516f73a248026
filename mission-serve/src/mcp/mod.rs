//! The MCP server: agents and people ask Mission Control about itself, with the official Rust
//! SDK (`rmcp`).
//!
//! [`MissionMcp`] answers over a store on disk (`mission-ctl mcp --store DIR` serves it on
//! stdio) or from inside a running agent (`MissionControl::mcp_server` in mission-sdk, served over
//! HTTP by `MissionControl::serve_mcp`). Both have the same tools, resources and prompts:
//!
//! | kind | name | what |
//! |---|---|---|
//! | tool | `list_threads` | threads newest first, filtered by agent, status, time, cost, duration, attribute |
//! | tool | `get_thread` | one thread's spans in tree order with timings, tokens, cost, errors, logs, decisions |
//! | tool | `search_events` | events by kind, name, level, text, thread, time |
//! | tool | `operation_stats` | p50/p95/p99, error rate, throughput by operation/model/agent/tenant/user |
//! | tool | `cost_report` | tokens and cost by model/agent/tenant/user |
//! | tool | `health` | buffers, drops, sinks, exporter, in-flight spans, store files |
//! | tool | `list_anomalies` | anomalies the models found, with their top cause |
//! | tool | `list_scores` | evaluation scores and feedback on threads and spans, with the mean per name |
//! | tool | `list_directives` | the agent's directives, their state and firing incidents (inside an agent) |
//! | tool | `set_directive_enabled`, `add_directive`, `remove_directive` | change directives: operator / admin tokens for every tenant; audited |
//! | tool | `acknowledge_alert` | acknowledge a firing incident: operator tokens, tenant-scoped ones for their tenant's incidents; audited |
//! | tool | `forecast` | when a statistic of an operation (p95 of `chat` on a model, tokens per minute, cost per hour) crosses a threshold, with an 80 % interval (feature `models`) |
//! | tool | `live_threads` | threads running now in the agent: tree, state, budget and use (inside an agent) |
//! | tool | `control_thread` | pause, resume or cancel a running thread: operator tokens, tenant-scoped ones in their tenant; audited |
//! | tool | `explain_permission` | a running thread's permission lineage (root first), which level narrowed a request, and its last decisions (inside an agent) |
//! | tool | `explain_anomaly` | one anomaly's context pack: causes, before/during numbers, exemplar and slowest threads, instructions for a narrative root-cause analysis |
//! | tool | `compare_threads` | two threads' steps aligned and compared (tool, arguments hash, model, tokens, latency, error), with where they first diverge |
//! | resource | `mission://health`, `mission://threads/{id}` | the same as JSON, with change notifications (`subscriptions/listen`) |
//! | prompt | `diagnose_thread`, `why_slow` | the right tools' output, framed for a model to reason over |
//!
//! Every tool validates its input and bounds its output: rows are paginated (`limit` up to
//! [`MAX_ROWS`]) and a page also stops at [`MAX_RESULT_BYTES`] of JSON, saying so with
//! `truncated: true` and a `next_cursor` to continue from. Cursors carry the time of the first
//! page, so a paginated listing is a consistent snapshot even while the agent keeps recording.
//!
//! Every answer uses the same units (see `format`): durations in milliseconds (`*_ms`), times
//! in RFC 3339 UTC, money in US dollars to 6 significant digits. What a tool cannot do with its
//! input (a malformed id, an unknown thread, a role too low) comes back one way: a tool result
//! with `isError: true` and a message saying what to pass instead; only an unknown tool name is
//! a JSON-RPC error. Only the tools that work where the server runs are listed: over a store
//! on disk there are no directive, policy or erasure tools.
//!
//! Inside an agent, every request the server answers is recorded as a span of the agent
//! `mission-mcp` (`tools/call get_thread`, with `mcp.method.name`, `mcp.session.id`,
//! `gen_ai.tool.name`): Mission Control observes its own MCP server. A tenant-scoped request is
//! recorded under its tenant; `mcp.session.id` is a [digest](session_digest) of the id.
//!
//! # Tenant scope
//!
//! A request's tenant scope (from its token, see [`Access`]) is applied where the server reads:
//! the store is opened [scoped](mission_store::Store::scoped) to that tenant, so no tool,
//! resource or prompt can read another tenant's partitions, whatever ids it is given (a thread
//! id another tenant continued shows the scope's own events only). Health for a scoped request
//! is the SDK's `TenantHealth` and that tenant's files; `get_policy` lists the rules
//! that can apply to its tenant.
//!

mod anomalies;
mod control;
mod diff;
mod directives;
#[cfg(feature = "models")]
mod forecast;
mod format;
mod governance;
mod health;
#[cfg(feature = "mcp-http")]
pub mod http;
mod incidents;
mod permissions;
mod prompts;
mod resources;
mod scores;
#[cfg(feature = "sql")]
mod sql;
mod tools;
mod workflows;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mission_core::{
    AttrValue, LazySymbol, SpanId, SpanKind, Symbol, ThreadContext, ThreadId, Timestamp,
};
use mission_store::Store;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Extensions,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, RequestMetaObject, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

pub use tools::{
    CostInput, GetThreadInput, Group, ListThreadsInput, Page, SearchInput, StatsInput, ThreadEvent,
    ThreadPage, ThreadSpan,
};

pub use crate::auth::{Access, MIN_TOKEN_LEN, Role, Token as McpToken};
pub use crate::live::{HealthFn, Live};

/// Most rows one call returns; further rows come with a `next_cursor`.
pub const MAX_ROWS: usize = 200;

/// Most bytes of JSON rows one page carries; a page that reaches it stops early with
/// `truncated: true` and a `next_cursor`.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Most bytes one resource read returns (a bigger thread is read page by page with
/// `get_thread`).
pub const MAX_RESOURCE_BYTES: usize = 1024 * 1024;

/// How often the server flushes the agent's pipeline before reading its store, at most: often
/// enough that a question sees what just happened, rarely enough not to write tiny files.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Source {
    root: Option<PathBuf>,
    live: Option<Live>,
    last_flush: Mutex<Option<Instant>>,
}

impl Source {
    /// The store as `scope` may see it (only that tenant's partitions; `None`: every tenant),
    /// after flushing the agent's pipeline (at most every [`FLUSH_EVERY`]). Every read of the
    /// server goes through here, so a tenant-scoped request cannot read another tenant's
    /// files whatever ids or filters it passes.
    fn store(&self, scope: Option<&str>) -> Result<Store, ErrorData> {
        let Some(root) = &self.root else {
            return Err(ErrorData::invalid_request(
                "this Mission Control instance keeps no store (it runs without_store)",
                None,
            ));
        };
        if let Some(recorder) = self.live.as_ref().and_then(|l| l.recorder.upgrade()) {
            let mut last = self.last_flush.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
                // Only what the store needs: a query never waits on an export backend. A
                // failed flush still leaves a readable store: answer from what is on disk.
                let _ = recorder.flush_for_reads(Duration::from_secs(5));
                *last = Some(Instant::now());
            }
        }
        Store::open_scoped(root, scope).map_err(internal)
    }
}

/// One client connection: its id, and the thread its calls are recorded in.
#[derive(Debug)]
struct Session {
    id: String,
    thread: ThreadId,
    /// Legacy `resources/subscribe` watches, by URI.
    subscriptions: Mutex<std::collections::HashMap<String, resources::CancellationTokenLite>>,
    /// Live-event subscriptions opened for a `subscriptions/listen` before its acknowledgment
    /// goes out, so a change made right after the client reads the acknowledgment is not
    /// missed; the listen that follows takes its own (by URIs). At most
    /// [`resources::MAX_EARLY_WATCHES`], oldest dropped.
    early_watches: Mutex<std::collections::VecDeque<resources::EarlyWatch>>,
}

impl Session {
    fn new() -> Arc<Self> {
        let thread = ThreadId::generate();
        Arc::new(Self {
            id: thread.to_string(),
            thread,
            subscriptions: Mutex::default(),
            early_watches: Mutex::default(),
        })
    }
}

/// The MCP server. Cheap to clone; each clone made by [`session`](Self::session) records its
/// calls in a thread of its own.
#[derive(Clone, Debug)]
pub struct MissionMcp {
    source: Arc<Source>,
    session: Arc<Session>,
    /// Shared by every session: a session costs its own state only, not a copy of the tools'
    /// schemas.
    tool_router: Arc<ToolRouter<Self>>,
}

pub(crate) fn invalid(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

/// What a request may do (see [`Access`]).
pub(crate) fn access_of(extensions: &Extensions) -> Access {
    #[cfg(feature = "mcp-http")]
    if let Some(parts) = extensions.get::<::http::request::Parts>()
        && let Some(access) = parts.extensions.get::<Access>()
    {
        return access.clone();
    }
    extensions.get::<Access>().cloned().unwrap_or_default()
}

/// The tenant scope of a request (see [`Access`]).
fn scope_of(extensions: &Extensions) -> Option<String> {
    access_of(extensions).tenant
}

/// Refuses a request whose role is below `needed`, naming both.
pub(crate) fn require(extensions: &Extensions, needed: Role) -> Result<Access, ErrorData> {
    let access = access_of(extensions);
    if access.role < needed {
        return Err(ErrorData::invalid_request(
            format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                access.role.as_str()
            ),
            None,
        ));
    }
    Ok(access)
}

/// What spans record of a session id: `sha256:` and the first 32 hex digits of its SHA-256.
pub fn session_digest(session_id: &str) -> String {
    let mut hex = mission_govern::erasure::sha256_hex(session_id.as_bytes());
    hex.truncate(32);
    format!("sha256:{hex}")
}

/// The client's session id: the `Mcp-Session-Id` header over HTTP, else this connection's own.
fn session_id_of(extensions: &Extensions) -> Option<String> {
    #[cfg(feature = "mcp-http")]
    if let Some(parts) = extensions.get::<::http::request::Parts>()
        && let Some(id) = parts.headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
    {
        return Some(id.to_owned());
    }
    let _ = extensions;
    None
}

/// Who sent a request, as [`MissionMcp::observed`] records it: the request's extensions (its
/// token's access, its HTTP headers) and the caller's trace context, if it sent one.
struct Caller {
    extensions: Extensions,
    trace: Option<(ThreadId, SpanId)>,
}

impl Caller {
    fn of(context: &RequestContext<RoleServer>) -> Self {
        let trace = trace_of(&context.meta, &context.extensions);
        Self { extensions: context.extensions.clone(), trace }
    }
}

/// The caller's W3C trace context (MCP SEP-414): `params._meta.traceparent` of the request,
/// else (over streamable HTTP) its `traceparent` header. A missing or malformed one is
/// ignored, as W3C Trace Context asks: the request is then recorded in the session's thread.
fn trace_of(meta: &RequestMetaObject, extensions: &Extensions) -> Option<(ThreadId, SpanId)> {
    if let Some(trace) = meta.get_traceparent().and_then(parse_traceparent) {
        return Some(trace);
    }
    #[cfg(feature = "mcp-http")]
    if let Some(parts) = extensions.get::<::http::request::Parts>() {
        return parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
    }
    let _ = extensions;
    None
}

/// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`, ids not all zero.
pub fn parse_traceparent(header: &str) -> Option<(ThreadId, SpanId)> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some() || version != "00" || flags.len() != 2 || !hex(flags) {
        return None;
    }
    Some((trace.parse().ok()?, span.parse().ok()?))
}

impl MissionMcp {
    /// A server over the store at `root` (re-opened on every call, so it sees files written
    /// since it started). Its calls are not recorded: a reader of a store does not write to it.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self::build(Some(root.as_ref().to_path_buf()), None)
    }

    /// A server inside a running agent: reads the agent's store (flushing it first), streams
    /// its live events and records every call.
    pub fn live(root: Option<PathBuf>, live: Live) -> Self {
        Self::build(root, Some(live))
    }

    fn build(root: Option<PathBuf>, live: Option<Live>) -> Self {
        Self {
            session: Session::new(),
            tool_router: Arc::new(Self::tools(root.is_some(), live.as_ref())),
            source: Arc::new(Source { root, live, last_flush: Mutex::new(None) }),
        }
    }

    /// The tools that work where the server runs, and only those (a tool that can only fail
    /// costs the model its schema and a wasted call): the store's and the anomaly tools when
    /// there is a store; the directive tools inside an agent running directives; the policy
    /// tools inside an agent enforcing a policy; erasure inside an agent that writes a store.
    /// So `mission-ctl mcp` over a store on disk lists no directive, policy or erasure tool.
    fn tools(store: bool, live: Option<&Live>) -> ToolRouter<Self> {
        let router = Self::tool_router()
            + Self::anomaly_router()
            + Self::directive_router()
            + Self::governance_router()
            + Self::control_router()
            + Self::workflow_router()
            + Self::incident_router()
            + Self::permission_router()
            + Self::score_router()
            + Self::diff_router();
        #[cfg(feature = "sql")]
        let router = router + Self::sql_router();
        #[cfg(feature = "models")]
        let router = router + Self::forecast_router();
        let mut router = router;
        let mut absent: Vec<String> = Vec::new();
        if live.is_none_or(|l| l.directives.is_none()) {
            absent.extend(Self::directive_router().list_all().into_iter().map(|t| t.name.into()));
            absent.extend(Self::workflow_router().list_all().into_iter().map(|t| t.name.into()));
            absent.push("list_incidents".into());
            if !store {
                absent.push("similar_incidents".into());
            }
        }
        if live.is_none_or(|l| l.threads.is_none()) {
            absent.extend(Self::control_router().list_all().into_iter().map(|t| t.name.into()));
            absent.extend(Self::permission_router().list_all().into_iter().map(|t| t.name.into()));
        }
        if live.is_none_or(|l| l.policy.is_none()) {
            absent.extend(["get_policy".into(), "set_policy".into()]);
        }
        if !store {
            let reads = Self::tool_router()
                + Self::anomaly_router()
                + Self::score_router()
                + Self::diff_router();
            #[cfg(feature = "sql")]
            let reads = reads + Self::sql_router();
            #[cfg(feature = "models")]
            let reads = reads + Self::forecast_router();
            absent.extend(
                reads.list_all().into_iter().map(|t| t.name.into()).filter(|n| n != "health"),
            );
            absent.push("list_permission_decisions".into());
        }
        if live.is_none() || !store {
            absent.push("erase_subject".into());
        }
        for name in absent {
            router.remove_route(&name);
        }
        router
    }

    /// The same server for a new client connection (its calls recorded in a thread of its own).
    pub fn session(&self) -> Self {
        Self { session: Session::new(), ..self.clone() }
    }

    /// Runs `work` on the blocking pool (store reads are file I/O and decoding).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Source) -> Result<T, ErrorData> + Send + 'static,
    ) -> Result<T, ErrorData> {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || work(&source)).await.map_err(internal)?
    }

    /// Runs one request and, inside an agent, records it as a span: name `method target`,
    /// attributes `mcp.method.name`, `mcp.session.id` and `target_key = target`.
    async fn observed<T>(
        &self,
        method: &'static str,
        target: Option<(&'static str, &str)>,
        caller: &Caller,
        work: impl Future<Output = Result<T, ErrorData>>,
        failed: impl FnOnce(&T) -> Option<String>,
    ) -> Result<T, ErrorData> {
        let extensions = &caller.extensions;
        let start = Timestamp::now();
        let result = work.await;
        let Some(live) = &self.source.live else { return result };
        let Some(recorder) = live.recorder.upgrade() else { return result };
        static AGENT: LazySymbol = LazySymbol::new("mission-mcp");
        // A tenant-scoped principal's requests are its tenant's data (they name its threads and
        // resources): they are recorded under its tenant, so no other tenant's viewer reads
        // them. Tenants here come from the configured tokens, a bounded set.
        let scope = access_of(extensions).tenant;
        let tenant = scope.as_deref().map_or(live.tenant, Symbol::intern);
        // A caller that sent its trace context (SEP-414) gets the request's span in its trace,
        // as a child of its own span; otherwise the session's calls share a thread.
        let (thread_id, parent) = match caller.trace {
            Some((trace, span)) => (trace, Some(span)),
            None => (self.session.thread, None),
        };
        let ctx = ThreadContext { tenant, agent: AGENT.get(), thread_id };
        // Span names are interned: only names from a known, bounded set become part of one.
        let name = match target {
            Some((_, t)) if self.known_target(method, t) => {
                Symbol::intern(&format!("{method} {t}"))
            }
            _ => Symbol::intern(method),
        };
        let mut span = recorder.start_span_at(&ctx, SpanKind::Custom, name, parent, start);
        static METHOD: LazySymbol = LazySymbol::new("mcp.method.name");
        static SESSION: LazySymbol = LazySymbol::new("mcp.session.id");
        span.set_attribute(METHOD.get(), method);
        // The session id is a capability: with it (and a token) a client can use or end the
        // session. So the span keeps only its SHA-256 (the first 128 bits, hex): calls of one
        // session still correlate, and whoever holds the id can compute the digest to find
        // them, but no reader of the store can recover the id from it (it is random).
        let session = session_id_of(extensions).unwrap_or_else(|| self.session.id.clone());
        let digest = session_digest(&session);
        span.set_attribute(SESSION.get(), AttrValue::from(digest.as_str()));
        if let Some((key, value)) = target {
            // An unscoped principal's request lands in the agent's tenant: a thread it names may
            // be any tenant's, so only the URI's template is kept.
            let value = match value.strip_prefix(resources::THREAD_URI_PREFIX) {
                Some(_) if scope.is_none() => "mission://threads/{thread_id}",
                _ => value,
            };
            span.set_attribute(Symbol::intern(key), AttrValue::from(value));
        }
        let error = match &result {
            Err(e) => Some(e.message.to_string()),
            Ok(value) => failed(value),
        };
        match error {
            // The same for an error's text: it may quote what the request named.
            Some(_) if scope.is_none() => span.end_with_error("the request failed"),
            Some(message) => span.end_with_error(&message),
            None => span.end(),
        }
        result
    }

    fn known_target(&self, method: &str, target: &str) -> bool {
        match method {
            "tools/call" => self.tool_router.get(target).is_some(),
            "prompts/get" => prompts::NAMES.contains(&target),
            _ => false,
        }
    }
}

impl ServerHandler for MissionMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("mission-control", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Mission Control observes AI agents. list_threads finds runs (filter by agent, errors, cost, \
                 duration); get_thread shows one run's spans; operation_stats gives latency percentiles and \
                 error rates by operation or model; cost_report gives tokens and cost by model, agent, tenant \
                 or user; search_events finds logs and errors by text; health shows drops and exporter state. \
                 Durations are in milliseconds (*_ms), times RFC 3339 UTC, costs US dollars. \
                 Paginated results carry next_cursor: pass it back as cursor. Prompts diagnose_thread and \
                 why_slow gather the evidence for a diagnosis. list_anomalies and explain_anomaly say what \
                 the models found and its likely cause (or that there is no single one); forecast, when \
                 listed, says when a statistic of an operation is expected to cross a threshold.",
            )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Caller::of(&context);
        let name = request.name.to_string();
        let known = self.tool_router.get(&name).is_some();
        let call = self.tool_router.call(ToolCallContext::new(self, request, context));
        // One way to report what a tool cannot do: a result with `isError` and a message the
        // model can act on (MCP's tool execution errors; invalid arguments included). Only a
        // tool this server does not have stays a protocol error.
        let work = async move {
            match call.await {
                Err(e) if known => {
                    Ok(CallToolResult::error(vec![ContentBlock::text(e.message.to_string())])
                        .into())
                }
                other => other,
            }
        };
        self.observed("tools/call", Some(("gen_ai.tool.name", &name)), &caller, work, |r| match r {
            CallToolResponse::Complete(r) if r.is_error == Some(true) => Some(
                r.content
                    .first()
                    .and_then(|c| c.as_text().map(|t| t.text.clone()))
                    .unwrap_or_else(|| "tool error".into()),
            ),
            _ => None,
        })
        .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.tool_router.list_all();
        self.observed(
            "tools/list",
            None,
            &Caller::of(&context),
            async { Ok(ListToolsResult::with_all_items(tools)) },
            |_| None,
        )
        .await
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let scope = scope_of(&context.extensions);
        let work = self.blocking(move |source| resources::list(source, scope.as_deref()));
        self.observed("resources/list", None, &Caller::of(&context), work, |_| None).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.observed(
            "resources/templates/list",
            None,
            &Caller::of(&context),
            async { Ok(resources::templates()) },
            |_| None,
        )
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let scope = scope_of(&context.extensions);
        let uri = request.uri.clone();
        let work = self.blocking(move |source| {
            resources::read(source, &request.uri, scope.as_deref()).map(Into::into)
        });
        self.observed(
            "resources/read",
            Some(("mcp.resource.uri", &uri)),
            &Caller::of(&context),
            work,
            |_| None,
        )
        .await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| resources::Uri::parse(uri).is_ok())
            .take(resources::MAX_SUBSCRIPTIONS)
            .cloned()
            .collect();
        resources::open_early_watch(self, &uris);
        Some(SubscriptionFilter::builder().resource_subscriptions(uris).build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        resources::listen(self, context).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = Caller::of(&context);
        let uri = request.uri.clone();
        let work = async { resources::subscribe(self, &request.uri, context) };
        self.observed(
            "resources/subscribe",
            Some(("mcp.resource.uri", &uri)),
            &caller,
            work,
            |_| None,
        )
        .await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let work = async {
            resources::unsubscribe(self, &request.uri);
            Ok(())
        };
        self.observed(
            "resources/unsubscribe",
            Some(("mcp.resource.uri", &request.uri)),
            &Caller::of(&context),
            work,
            |_| None,
        )
        .await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.observed(
            "prompts/list",
            None,
            &Caller::of(&context),
            async { Ok(ListPromptsResult::with_all_items(prompts::list())) },
            |_| None,
        )
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let scope = scope_of(&context.extensions);
        let name = request.name.clone();
        let work = self.blocking(move |source| {
            prompts::get(source, &request.name, request.arguments.as_ref(), scope.as_deref())
                .map(Into::into)
        });
        self.observed(
            "prompts/get",
            Some(("mcp.prompt.name", &name)),
            &Caller::of(&context),
            work,
            |_| None,
        )
        .await
    }
}

/// Serves `server` over stdin/stdout until the client disconnects.
///
/// # Errors
/// The transport failed to start or ended with an error.
pub async fn serve(server: MissionMcp) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use rmcp::ServiceExt;
    let service = server.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}

/// Serves a [`MissionMcp`] over the store at `root` on stdin/stdout until the client
/// disconnects (what `mission-ctl mcp --store DIR` runs).
///
/// # Errors
/// The transport failed to start or ended with an error.
pub async fn serve_stdio(
    root: impl AsRef<Path>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve(MissionMcp::new(root)).await
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn traceparents_parse_or_are_ignored() {
        let (trace, span) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .expect("valid");
        assert_eq!(
            (trace.to_string().as_str(), span.to_string().as_str()),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
