//! The live dashboard: threads, latency, cost, anomalies and logs in a browser, served by the
//! agent process itself (`MissionControl::serve_dashboard` in mission-sdk) or over a store on disk
//! ([`serve_store`], what `mission-ctl dashboard <store>` runs). No separate server, no build
//! step, no network access at run time: every asset is embedded in the binary.
//!
//! | route | what |
//! |---|---|
//! | `/`, `/app.js`, `/app.css`, `/manifest.webmanifest`, `/icon.svg` | the page (no data; no token needed) |
//! | `/api/overview` | live counters, event rate, error rate, latency per operation with a forecast band, tokens and cost per model, health |
//! | `/api/threads`, `/api/threads/{id}` | threads newest first, filtered; one thread's spans, logs and permission decisions |
//! | `/api/threads/{id}/permissions` | a thread's permission lineage (root first; `?action=&resource=` for a decision) and its last decisions |
//! | `/api/graph` | the relationship graph of a window: agents, tools, models, MCP servers, directives, rules and the host's artefacts, with calls, errors, cost and p95 per edge |
//! | `/api/logs`, `/api/anomalies` | logs by level, agent and text; anomalies with their cause, and directive alerts |
//! | `/api/diff?a=&b=` | two threads' steps aligned and compared, with where they first diverge |
//! | `/api/recommendations`, `/api/audit` | recommendations computed from the store; the audit trail, filtered, with the chain's verification status |
//! | `/api/control` | the directives, the approvals waiting for an operator and the latest runs (inside an agent) |
//! | `POST /api/threads/{id}/control`, `POST /api/approvals/{id}`, `POST /api/directives/{name}/run` | an operator's writes: pause, resume or cancel a thread; approve or reject; run a directive by hand |
//! | `/api/stream` | Server-Sent Events: every span, log, anomaly, alert and decision as it is recorded, and `stats` every 500 ms |
//! | `/healthz` | `ok` |
//! | `/metrics` | OpenMetrics text for Prometheus: the health report's counters and a latency histogram per operation |
//! | `/api/export/threads.jsonl`, `/api/export/threads.csv` | threads with their spans (JSON Lines), thread summaries (CSV), to download |
//! | `/api/report.html` | the report on a period ([`crate::report`]) as a print-ready HTML page |
//!
//! The JSON of each route is specified in `API.md` beside this file.
//!
//! # Where the numbers come from
//!
//! Inside an agent, one hub subscription (bounded; what it misses is counted as `lagged`)
//! feeds a ring of the most recent events, the live counters and every stream client, each
//! through a bounded queue of its own: a slow browser never slows the agent. History comes from
//! the store through [`Store::query`](mission_store::Store::query), merged with the ring, so a
//! thread recorded a moment ago — not yet in a Parquet file — is already listed and viewable.
//! Over a store on disk, new files are read as they are finalized, a few per second.
//!
//! # Security
//!
//! The same bearer tokens and tenant scopes as the MCP server: with tokens configured, every
//! `/api/*` request needs `Authorization: Bearer <token>` (or `?access_token=` for
//! `EventSource`), compared in constant time; a token scoped to a tenant sees that tenant's
//! rows only (another tenant's thread is a 404). A non-loopback address is refused without a
//! token, tokens shorter than 16 characters are refused, and the `Host` header must name the
//! server (DNS-rebinding protection). Pages are served with a strict Content-Security-Policy.
//!
//! # Examples
//!
//! ```
//! use mission_serve::dashboard::{DashboardConfig, serve_store};
//!
//! let root = std::env::temp_dir().join(format!("mission-dashboard-mod-{}", std::process::id()));
//! let server = serve_store(&root, DashboardConfig::loopback(0))?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!

mod action;
mod advice;
mod api;
mod audit;
mod chart;
mod diff;
mod export;
mod feed;
mod graph;
mod metrics;
mod permissions;
mod row;
mod stream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::auth::{Access, Hosts, Role, authorize, check_tokens};
use crate::{Error, Result};
pub use export::{Export, ExportError, ExportFormat, export_store};
use feed::{Feed, StorePoller};

/// Shortest bearer token accepted (as for the MCP server).
pub use crate::auth::MIN_TOKEN_LEN;

/// A bearer token: a role, optionally scoped to one tenant — the MCP server's token type (the
/// dashboard only reads, so any role may use it).
pub use crate::auth::Token as DashboardToken;

/// Events the dashboard's hub subscription holds before it loses the oldest (counted).
pub const HUB_BUFFER: usize = 65_536;

/// Where and for whom the dashboard serves.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[must_use]
pub struct DashboardConfig {
    /// The address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Accepted bearer tokens; empty means none is asked for (loopback only).
    pub tokens: Vec<DashboardToken>,
    /// `Host` header values accepted besides the defaults: loopback names for a loopback
    /// address, else the bound address.
    pub allowed_hosts: Vec<String>,
}

impl DashboardConfig {
    /// Serves on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, tokens: Vec::new(), allowed_hosts: Vec::new() }
    }

    /// Serves on `127.0.0.1:port` (0 picks a free port).
    pub fn loopback(port: u16) -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Accepts `token` for every tenant (an admin token, as for the MCP server).
    pub fn with_token(self, token: &str) -> Self {
        self.with_role_token(token, Role::Admin, None)
    }

    /// Accepts `token` as a viewer of `tenant`'s data only.
    pub fn with_tenant_token(self, token: &str, tenant: &str) -> Self {
        self.with_role_token(token, Role::Viewer, Some(tenant))
    }

    /// Accepts `token` with `role`, for `tenant` only or (`None`) every tenant.
    pub fn with_role_token(mut self, token: &str, role: Role, tenant: Option<&str>) -> Self {
        self.tokens.push(DashboardToken {
            token: token.to_owned(),
            tenant: tenant.map(str::to_owned),
            role,
        });
        self
    }

    /// Accepts the MCP server's tokens too: one set of tokens for both.
    #[cfg(feature = "mcp-http")]
    pub fn with_tokens_of(mut self, mcp: &crate::mcp::http::McpHttpConfig) -> Self {
        self.tokens.extend(mcp.tokens.iter().cloned());
        self
    }

    /// Also accepts this `Host` header value (a name clients use to reach the server).
    pub fn with_allowed_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_owned());
        self
    }

    fn check(&self) -> Result<()> {
        check_tokens(&self.tokens, self.addr, "the dashboard", "DashboardConfig::with_token")
    }
}

/// A running dashboard. Dropping it (or [`shutdown`](Self::shutdown)) stops it.
#[derive(Debug)]
pub struct DashboardServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DashboardServer {
    /// The address it listens on (with the port picked, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL, to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving: open streams end, then the server thread ends.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Live (inside an agent) or over a store on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Live,
    Store,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Store => "store",
        }
    }
}

/// What every request handler reads.
pub(crate) struct Shared {
    mode: Mode,
    root: Option<PathBuf>,
    feed: Arc<Feed>,
    live: Option<crate::live::Live>,
    last_flush: Mutex<Option<Instant>>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// What handlers read over the store at `root`, without a server (an export from the
    /// command line).
    fn over_store(root: PathBuf) -> Self {
        Self {
            mode: Mode::Store,
            root: Some(root),
            feed: Arc::new(Feed::new(false)),
            live: None,
            last_flush: Mutex::new(None),
            stop: watch::channel(false).1,
        }
    }

    /// The health part of the overview: the agent's health report (live) or the store's
    /// files, with `recorded`, `dropped` and `lagged` on top (over a store, `recorded` is what
    /// `scope` may see). A tenant-scoped principal gets the agent's
    /// the SDK's `TenantHealth`, its tenant's `recorded` count and files, and no
    /// process-wide number (`dropped` is left out).
    fn health(&self, scope: Option<&str>, lagged: u64) -> Value {
        let mut health = match &self.live {
            Some(live) => (live.health)(scope),
            None => json!({}),
        };
        let accounting = self
            .live
            .as_ref()
            .filter(|_| scope.is_none())
            .and_then(|l| l.recorder.upgrade())
            .map(|r| r.accounting());
        if !health.is_object() {
            health = json!({ "report": health });
        }
        if let Some(object) = health.as_object_mut() {
            if let Some(a) = accounting {
                object.insert("recorded".into(), a.recorded.into());
                object.insert("dropped".into(), a.dropped.into());
            } else {
                object.insert("recorded".into(), self.feed.stats(scope).events_total.into());
                if scope.is_none() {
                    object.insert("dropped".into(), 0.into());
                }
            }
            object.insert("lagged".into(), lagged.into());
            if self.mode == Mode::Store
                && let Some(root) = &self.root
                && let Ok(store) = mission_store::Store::open_scoped(root, scope)
            {
                object.insert("files".into(), store.files().len().into());
                let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
                object.insert("bytes".into(), bytes.into());
                object.insert("leftovers".into(), store.open_report().leftovers.len().into());
            }
        }
        health
    }

    /// Events the agent's recorder dropped (0 over a store). Every tenant's: shown to
    /// principals of every tenant only.
    fn dropped(&self, scope: Option<&str>) -> Option<u64> {
        if scope.is_some() {
            return None;
        }
        Some(
            self.live
                .as_ref()
                .and_then(|l| l.recorder.upgrade())
                .map_or(0, |r| r.accounting().dropped),
        )
    }

    /// Inside an agent, flushes its pipeline so the store holds everything recorded (at most
    /// once a second); returns whether it did.
    fn flush_for_misses(&self) -> bool {
        let Some(recorder) = self.live.as_ref().and_then(|l| l.recorder.upgrade()) else {
            return false;
        };
        let mut last = self.last_flush.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        // Only what the store needs: never wait on an export backend.
        let _ = recorder.flush_for_reads(api::FLUSH_TIMEOUT);
        *last = Some(Instant::now());
        true
    }
}

/// An error answer: `{"error": kind, "message": ...}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "bad_request", message: message.into() }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, kind: "not_found", message: message.into() }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal", message: e.to_string() }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: "a valid bearer token is required (Authorization: Bearer <token>)".into(),
        }
    }
}

/// The thread id of a path `/api/threads/{id}<suffix>` (`/control`, `/permissions`).
pub(crate) fn thread_id_in(
    uri: &Uri,
    suffix: &str,
) -> std::result::Result<mission_core::ThreadId, ApiError> {
    let id = uri.path().trim_end_matches(suffix).rsplit('/').next().unwrap_or("");
    id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "a thread id is 32 lowercase hex digits, not {:?}",
            id.chars().take(40).collect::<String>()
        ))
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            json_response(self.status, &json!({ "error": self.kind, "message": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mission-control\""),
            );
        }
        response
    }
}

/// The token of a request: the `Authorization: Bearer` header, else `?access_token=`.
fn presented_token(request: &Request) -> Option<Vec<u8>> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        return value.as_bytes().strip_prefix(b"Bearer ").map(<[u8]>::to_vec);
    }
    let params = api::Params::parse(request.uri().query());
    params.get("access_token").map(|t| t.as_bytes().to_vec())
}

async fn authenticate(
    State(tokens): State<Arc<Vec<DashboardToken>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() {
        request.extensions_mut().insert(Access::default());
        return next.run(request).await;
    }
    match presented_token(&request).and_then(|p| authorize(&tokens, &p)) {
        Some(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        None => ApiError::unauthorized().into_response(),
    }
}

async fn check_host(State(hosts): State<Arc<Hosts>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(h) if !hosts.accepts(h) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "forbidden", "message": "the Host header does not name this server"})
                .to_string(),
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

/// The page's Content-Security-Policy: everything from this server, nothing inline but styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response()
}

fn static_routes() -> axum::Router {
    macro_rules! asset_route {
        ($file:literal, $type:literal) => {
            get(|| async { asset($type, include_bytes!(concat!("assets/", $file))) })
        };
    }
    axum::Router::new()
        .route("/", asset_route!("index.html", "text/html; charset=utf-8"))
        .route("/index.html", asset_route!("index.html", "text/html; charset=utf-8"))
        .route("/app.js", asset_route!("app.js", "text/javascript; charset=utf-8"))
        .route("/app.css", asset_route!("app.css", "text/css; charset=utf-8"))
        .route(
            "/manifest.webmanifest",
            asset_route!("manifest.webmanifest", "application/manifest+json"),
        )
        .route("/icon.svg", asset_route!("icon.svg", "image/svg+xml"))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/views/{file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>| async move {
                match VIEW_ASSETS.iter().find(|(name, _)| *name == file) {
                    Some((_, body)) => asset("text/javascript; charset=utf-8", body),
                    None => ApiError::not_found("no such view file").into_response(),
                }
            }),
        )
}

/// The view files (`assets/views/*.js`): pages and thread panels that register with `app.js`
/// (`MissionDashboard.view`, `MissionDashboard.threadPanel`). `index.html` loads each of them.
const VIEW_ASSETS: &[(&str, &[u8])] = &[
    ("palette.js", include_bytes!("assets/views/palette.js")),
    ("permflow.js", include_bytes!("assets/views/permflow.js")),
    ("diff.js", include_bytes!("assets/views/diff.js")),
    ("graph.js", include_bytes!("assets/views/graph.js")),
    ("advice.js", include_bytes!("assets/views/advice.js")),
    ("audit.js", include_bytes!("assets/views/audit.js")),
    ("exports.js", include_bytes!("assets/views/exports.js")),
];

type Handler = fn(&Shared, Option<&str>, &Uri) -> std::result::Result<Value, ApiError>;

/// Runs a store-reading handler on the blocking pool.
async fn answer(shared: Arc<Shared>, access: Access, uri: Uri, handler: Handler) -> Response {
    let operator = access.role >= Role::Operator;
    let work = move || handler(&shared, access.tenant.as_deref(), &uri);
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(mut value)) => {
            // A thread view says whether this principal may control the thread (it runs here
            // and the token is an operator's), so the page shows the buttons only then.
            if let Some(view) = value.as_object_mut()
                && let Some(live) = view.get("live")
            {
                let can = operator && !live.is_null();
                view.insert("can_control".into(), Value::Bool(can));
            }
            json_response(StatusCode::OK, &value)
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The JSON routes and what answers them; the router is built from this table, so
/// [`api_routes`] lists every data route there is.
const JSON_ROUTES: [(&str, Handler); 11] = [
    ("/api/overview", api::overview),
    ("/api/threads", api::threads),
    ("/api/logs", api::logs),
    ("/api/anomalies", api::anomalies),
    ("/api/threads/{id}", api::thread),
    ("/api/control", api::control),
    (permissions::ROUTE, permissions::permissions),
    (diff::ROUTE, diff::diff),
    (graph::ROUTE, graph::graph),
    (advice::ROUTE, advice::recommendations),
    (audit::ROUTE, audit::audit),
];

/// A route answering text rather than JSON (OpenMetrics, JSON Lines, CSV).
type TextHandler = fn(&Shared, Option<&str>, &Uri) -> std::result::Result<export::Text, ApiError>;

/// The text routes and what answers them (same tokens and tenant scopes as the JSON routes).
const TEXT_ROUTES: [(&str, TextHandler); 4] = [
    ("/metrics", export::metrics),
    ("/api/export/threads.jsonl", export::threads_jsonl),
    ("/api/export/threads.csv", export::threads_csv),
    ("/api/report.html", export::report_html),
];

/// Runs a text handler on the blocking pool; the answer says whether a bound cut it short
/// (`X-Mission-Truncated`) and, for a download, its file name.
async fn answer_text(
    shared: Arc<Shared>,
    access: Access,
    uri: Uri,
    handler: TextHandler,
) -> Response {
    let work = move || handler(&shared, access.tenant.as_deref(), &uri);
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(text)) => {
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, text.content_type), (header::CACHE_CONTROL, "no-store")],
                text.body,
            )
                .into_response();
            let headers = response.headers_mut();
            let truncated = if text.truncated { "true" } else { "false" };
            headers.insert("x-mission-truncated", HeaderValue::from_static(truncated));
            if let Some(name) = text.filename
                && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            if text.content_type.starts_with("text/html") {
                // A page (the report): the dashboard's policy holds for it too.
                headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
                headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            }
            response
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The event stream's route.
const STREAM_ROUTE: &str = "/api/stream";

/// Every write route (`POST`; an operator's actions from the page, inside an agent), in axum's
/// path syntax. The tenant-isolation suite checks each of them.
pub fn action_routes() -> Vec<&'static str> {
    action::ACTION_ROUTES.iter().map(|(path, _)| *path).collect()
}

/// Every route that serves data (each needs a token when tokens are configured, and answers
/// within the token's tenant scope), in axum's path syntax: the JSON routes, the event
/// stream and the text routes (`/metrics`, the exports). The tenant-isolation suite checks
/// each of them.
pub fn api_routes() -> Vec<&'static str> {
    JSON_ROUTES
        .iter()
        .map(|(path, _)| *path)
        .chain([STREAM_ROUTE])
        .chain(TEXT_ROUTES.iter().map(|(path, _)| *path))
        .collect()
}

fn router(shared: Arc<Shared>, tokens: Vec<DashboardToken>) -> axum::Router {
    use axum::Extension;
    type S = State<Arc<Shared>>;
    type A = Extension<Access>;
    let mut router = axum::Router::new();
    for (path, handler) in JSON_ROUTES {
        router = router.route(
            path,
            get(move |State(s): S, Extension(a): A, uri: Uri| answer(s, a, uri, handler)),
        );
    }
    for (path, handler) in TEXT_ROUTES {
        router = router.route(
            path,
            get(move |State(s): S, Extension(a): A, uri: Uri| answer_text(s, a, uri, handler)),
        );
    }
    for (path, act) in action::ACTION_ROUTES {
        router = router.route(
            path,
            post(
                move |State(s): S,
                      Extension(a): A,
                      headers: axum::http::HeaderMap,
                      uri: Uri,
                      body: axum::body::Bytes| async move {
                    if let Err(e) = action::check_write(&headers, &uri, &a) {
                        return e.into_response();
                    }
                    match act(&s, &a, &uri, &body) {
                        Ok(value) => json_response(StatusCode::OK, &value),
                        Err(e) => e.into_response(),
                    }
                },
            ),
        );
    }
    router
        .route(
            STREAM_ROUTE,
            get(|State(s): S, Extension(a): A| async move { stream::stream(s, a.tenant) }),
        )
        .fallback(|| async { ApiError::not_found("no such API route").into_response() })
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(Arc::new(tokens), authenticate))
}

/// Binds, then serves `shared` on a thread of its own; `start` runs first on the server's
/// runtime (to start the feed).
fn serve(
    config: DashboardConfig,
    mode: Mode,
    root: Option<PathBuf>,
    live: Option<crate::live::Live>,
    feed: Arc<Feed>,
    start: impl FnOnce(watch::Receiver<bool>) + Send + 'static,
) -> Result<DashboardServer> {
    config.check()?;
    let (listener, addr) = crate::listen::listen(config.addr)?;
    let fail = |source: std::io::Error| Error::Bind { addr: addr.to_string(), source };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_name("mission-dashboard")
        .build()
        .map_err(fail)?;
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        mode,
        root,
        feed,
        live,
        last_flush: Mutex::new(None),
        stop: stopped.clone(),
    });
    let hosts = Arc::new(Hosts::for_addr(addr, &config.allowed_hosts));
    let app = router(shared, config.tokens.clone())
        .merge(static_routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn_with_state(hosts, check_host));
    let thread = std::thread::Builder::new()
        .name("mission-dashboard".into())
        .spawn(move || {
            runtime.block_on(async move {
                start(stopped.clone());
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let mut stopping = stopped.clone();
                let graceful = async move {
                    let _ = stopping.wait_for(|s| *s).await;
                };
                let serve = axum::serve(listener, app).with_graceful_shutdown(graceful);
                let mut stopping = stopped;
                // Streams end when told to stop; give the rest two seconds.
                tokio::select! {
                    _ = serve => {}
                    () = async {
                        let _ = stopping.wait_for(|s| *s).await;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    } => {}
                }
            });
        })
        .map_err(fail)?;
    Ok(DashboardServer { addr, stop, thread: Some(thread) })
}

/// Serves the dashboard of a running agent, whose store is at `root` (what
/// `MissionControl::serve_dashboard` in mission-sdk calls).
///
/// # Errors
/// As [`serve_store`].
pub fn serve_live(
    root: Option<PathBuf>,
    live: crate::live::Live,
    config: DashboardConfig,
) -> Result<DashboardServer> {
    let feed = Arc::new(Feed::new(true));
    let subscription = live.hub.subscribe(mission_core::EventFilter::all(), HUB_BUFFER);
    let fed = feed.clone();
    serve(config, Mode::Live, root, Some(live), feed, move |_| {
        tokio::spawn(feed::follow_hub(subscription, fed));
    })
}

/// Serves the dashboard over the store at `root` (which need not exist yet), on a thread of its
/// own, until the returned handle is dropped or shut down. New files are read as they appear,
/// a few per second.
///
/// # Errors
/// [`Error::Serve`] if the address is not loopback and no token is configured, a token is too
/// short, or the address cannot be bound.
///
/// # Examples
///
/// ```
/// use mission_serve::dashboard::{DashboardConfig, serve_store};
///
/// let root = std::env::temp_dir().join(format!("mission-dashboard-doc-{}", std::process::id()));
/// let server = serve_store(&root, DashboardConfig::loopback(0).with_token("a-long-enough-token"))?;
/// println!("open {}", server.url());
/// server.shutdown();
/// # Ok::<(), mission_serve::Error>(())
/// ```
pub fn serve_store(root: impl AsRef<Path>, config: DashboardConfig) -> Result<DashboardServer> {
    config.check()?;
    let root = root.as_ref().to_path_buf();
    let feed = Arc::new(Feed::new(false));
    let mut poller = StorePoller::start(&root, &feed);
    let fed = feed.clone();
    serve(config, Mode::Store, Some(root), None, feed, move |mut stop| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let feed = fed.clone();
                let polled = tokio::task::spawn_blocking(move || {
                    poller.poll(&feed);
                    poller
                });
                match polled.await {
                    Ok(p) => poller = p,
                    Err(_) => return,
                }
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_settings_are_refused() {
        let open = DashboardConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)));
        let e = open.clone().check().expect_err("no token on 0.0.0.0");
        assert!(e.to_string().contains("without a bearer token"), "{e}");
        assert!(open.clone().with_token("short").check().is_err());
        assert!(open.clone().with_token("has a space in it, long enough").check().is_err());
        assert!(open.with_token("a-long-enough-token-123").check().is_ok());
        assert!(DashboardConfig::loopback(0).check().is_ok());
    }

    #[test]
    fn tokens_and_hosts_are_checked() {
        let tokens = DashboardConfig::loopback(0)
            .with_token("admin-token-0123456789")
            .with_tenant_token("acme-token-0123456789", "acme")
            .tokens;
        assert_eq!(authorize(&tokens, b"admin-token-0123456789"), Some(Access::default()));
        assert_eq!(
            authorize(&tokens, b"acme-token-0123456789"),
            Some(Access { tenant: Some("acme".into()), role: Role::Viewer })
        );
        assert_eq!(authorize(&tokens, b"acme-token-012345678"), None);
        let local = Hosts::for_addr(SocketAddr::from(([127, 0, 0, 1], 7878)), &[]);
        for ok in ["localhost:7878", "127.0.0.1:1", "[::1]:80", "LOCALHOST"] {
            assert!(local.accepts(ok), "{ok}");
        }
        for bad in ["evil.example:7878", "127.0.0.1.evil.example", "::1"] {
            assert!(!local.accepts(bad), "{bad}");
        }
        let public =
            Hosts::for_addr(SocketAddr::from(([10, 0, 0, 5], 7878)), &["dash.internal".into()]);
        assert!(public.accepts("10.0.0.5:7878"));
        assert!(public.accepts("dash.internal:443"));
        assert!(!public.accepts("localhost:7878"));
    }
}
