//! The MCP server over streamable HTTP, served from inside the agent process: rmcp's
//! streamable-HTTP service mounted in axum, behind bearer-token authentication.
//!
//! Security rules:
//! - a non-loopback address is refused unless at least one token is configured;
//! - with tokens, every request needs `Authorization: Bearer <token>`; tokens are compared in
//!   constant time, and a missing or wrong token gets `401` before any MCP processing;
//! - a token may be scoped to a tenant: its requests see that tenant's data only;
//! - a token has a [`Role`]: `viewer` reads, `operator` also acknowledges alerts and toggles
//!   directives, `admin` also changes policies and directives and erases data;
//! - tokens shorter than [`MIN_TOKEN_LEN`] are refused (they could be guessed);
//! - the `Host` header must name the server (DNS-rebinding protection): loopback names for a
//!   loopback address, else the configured `allowed_hosts` (default: the bound address);
//! - a session belongs to the token that opened it: a request of another token naming it
//!   (`Mcp-Session-Id`), a `DELETE` included, gets `404` as if it did not exist, and the owner's
//!   session carries on;
//! - each token has at most [`McpHttpConfig::max_sessions_per_token`] sessions open (default
//!   [`DEFAULT_MAX_SESSIONS_PER_TOKEN`]); past it a new session is refused with `429` and
//!   counted ([`McpHttpServer::sessions_refused`]). Sessions idle for five minutes close.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{Access, MissionMcp, Role};
use crate::auth::{authorize_at, check_tokens};
use crate::{Error, Result};

pub use super::{MIN_TOKEN_LEN, McpToken};

/// Sessions one token may have open at once unless configured otherwise.
pub const DEFAULT_MAX_SESSIONS_PER_TOKEN: usize = 32;

/// The accepted range of [`McpHttpConfig::max_sessions_per_token`].
pub const MAX_SESSIONS_PER_TOKEN_RANGE: std::ops::RangeInclusive<usize> = 1..=10_000;

/// Where and how `MissionControl::serve_mcp` (mission-sdk) serves.
#[derive(Clone, Debug)]
#[must_use]
#[non_exhaustive]
pub struct McpHttpConfig {
    /// The address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Accepted bearer tokens; empty means none is asked for (loopback only).
    pub tokens: Vec<McpToken>,
    /// `Host` header values accepted besides the defaults (see the module's rules).
    pub allowed_hosts: Vec<String>,
    /// The path of the MCP endpoint (default `/mcp`).
    pub path: String,
    /// Sessions one token (or, without tokens, all clients together) may have open at once,
    /// in [`MAX_SESSIONS_PER_TOKEN_RANGE`]; default [`DEFAULT_MAX_SESSIONS_PER_TOKEN`].
    pub max_sessions_per_token: usize,
}

impl McpHttpConfig {
    /// Serves on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            tokens: Vec::new(),
            allowed_hosts: Vec::new(),
            path: "/mcp".into(),
            max_sessions_per_token: DEFAULT_MAX_SESSIONS_PER_TOKEN,
        }
    }

    /// Serves on `127.0.0.1:port` (0 picks a free port).
    pub fn loopback(port: u16) -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Accepts `token` as an admin of every tenant.
    pub fn with_token(mut self, token: &str) -> Self {
        self.tokens.push(McpToken { token: token.to_owned(), tenant: None, role: Role::Admin });
        self
    }

    /// Accepts `token` as a viewer of `tenant`'s data only.
    pub fn with_tenant_token(self, token: &str, tenant: &str) -> Self {
        self.with_role_token(token, Role::Viewer, Some(tenant))
    }

    /// Accepts `token` with `role`, for `tenant` only or (`None`) every tenant.
    pub fn with_role_token(mut self, token: &str, role: Role, tenant: Option<&str>) -> Self {
        self.tokens.push(McpToken {
            token: token.to_owned(),
            tenant: tenant.map(str::to_owned),
            role,
        });
        self
    }

    /// At most `n` sessions open at once per token (checked when serving: within
    /// [`MAX_SESSIONS_PER_TOKEN_RANGE`]).
    pub fn with_max_sessions_per_token(mut self, n: usize) -> Self {
        self.max_sessions_per_token = n;
        self
    }

    /// Also accepts this `Host` header value (a name clients use to reach the server).
    pub fn with_allowed_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_owned());
        self
    }

    fn check(&self) -> Result<()> {
        check_tokens(&self.tokens, self.addr, "MCP", "McpHttpConfig::with_token")?;
        let refuse = |message: String| Error::Serve { addr: self.addr.to_string(), message };
        if !self.path.starts_with('/') {
            return Err(refuse(format!("path {:?} must start with '/'", self.path)));
        }
        if !MAX_SESSIONS_PER_TOKEN_RANGE.contains(&self.max_sessions_per_token) {
            return Err(refuse(format!(
                "max_sessions_per_token = {} is outside {}..={}",
                self.max_sessions_per_token,
                MAX_SESSIONS_PER_TOKEN_RANGE.start(),
                MAX_SESSIONS_PER_TOKEN_RANGE.end()
            )));
        }
        Ok(())
    }
}

/// A running MCP HTTP server. Dropping it (or [`shutdown`](Self::shutdown)) stops it.
#[derive(Debug)]
pub struct McpHttpServer {
    addr: SocketAddr,
    path: String,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    sessions: Arc<SessionOwners>,
}

impl McpHttpServer {
    /// New sessions refused because their token had
    /// [`max_sessions_per_token`](McpHttpConfig::max_sessions_per_token) open.
    pub fn sessions_refused(&self) -> u64 {
        self.sessions.refused.load(Ordering::Relaxed)
    }

    /// Requests that named a session another token opened (answered `404`).
    pub fn foreign_session_requests(&self) -> u64 {
        self.sessions.foreign.load(Ordering::Relaxed)
    }

    /// The address it listens on (with the port picked, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint's URL, for a client's configuration.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Stops serving: open sessions are closed, then the server thread ends.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for McpHttpServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Who a request is: the index of its token in the configuration (`None`: no tokens are
/// configured, every client is the same principal). Sessions are bound to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Principal(Option<usize>);

async fn authenticate(
    State(tokens): State<Arc<Vec<McpToken>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() {
        request.extensions_mut().insert(Access::default());
        request.extensions_mut().insert(Principal(None));
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::to_vec);
    match presented.and_then(|p| authorize_at(&tokens, &p)) {
        Some((index, scope)) => {
            request.extensions_mut().insert(scope);
            request.extensions_mut().insert(Principal(Some(index)));
            next.run(request).await
        }
        None => (
            ::http::StatusCode::UNAUTHORIZED,
            [(::http::header::WWW_AUTHENTICATE, "Bearer realm=\"mission-control\"")],
            "a valid bearer token is required\n",
        )
            .into_response(),
    }
}

/// The owner of every open session, and the per-principal cap.
struct SessionOwners {
    manager: Arc<LocalSessionManager>,
    max_per_principal: usize,
    state: Mutex<OwnersState>,
    /// New sessions refused at the cap.
    refused: AtomicU64,
    /// Requests naming another principal's session.
    foreign: AtomicU64,
}

impl std::fmt::Debug for SessionOwners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOwners").field("max_per_principal", &self.max_per_principal).finish()
    }
}

#[derive(Default)]
struct OwnersState {
    /// Session id → who opened it. Bounded: at most the cap per principal, and principals are
    /// the configured tokens.
    owners: HashMap<String, Principal>,
    /// Requests that may open a session, running now, per principal.
    opening: HashMap<Principal, usize>,
}

impl SessionOwners {
    fn lock(&self) -> std::sync::MutexGuard<'_, OwnersState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a request that may open a session, forgetting sessions that closed
    /// (ended by their client or idle); `false` at the cap.
    async fn reserve(&self, principal: Principal) -> bool {
        let open: HashSet<String> =
            self.manager.sessions.read().await.keys().map(|k| k.to_string()).collect();
        let mut state = self.lock();
        state.owners.retain(|id, _| open.contains(id));
        let owned = state.owners.values().filter(|p| **p == principal).count();
        let opening = state.opening.get(&principal).copied().unwrap_or(0);
        if owned + opening >= self.max_per_principal {
            return false;
        }
        *state.opening.entry(principal).or_default() += 1;
        true
    }

    /// Ends a [`reserve`](Self::reserve)d request; `opened` is the session it opened, if any.
    fn settle(&self, principal: Principal, opened: Option<String>) {
        let mut state = self.lock();
        if let Some(n) = state.opening.get_mut(&principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.opening.remove(&principal);
            }
        }
        if let Some(id) = opened {
            state.owners.insert(id, principal);
        }
    }
}

fn session_header(headers: &::http::HeaderMap) -> Option<String> {
    headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Binds sessions to the principal that opened them and caps how many each has open.
async fn bind_sessions(
    State(owners): State<Arc<SessionOwners>>,
    request: Request,
    next: Next,
) -> Response {
    let principal = request.extensions().get::<Principal>().copied().unwrap_or(Principal(None));
    if let Some(id) = session_header(request.headers()) {
        let owner = owners.lock().owners.get(&id).copied();
        if owner.is_some_and(|o| o != principal) {
            owners.foreign.fetch_add(1, Ordering::Relaxed);
            // The same answer as for a session that does not exist: another token learns
            // nothing, and the owner's session is untouched.
            return (::http::StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
        }
        let delete = request.method() == ::http::Method::DELETE;
        let response = next.run(request).await;
        if delete && response.status().is_success() {
            owners.lock().owners.remove(&id);
        }
        return response;
    }
    if request.method() != ::http::Method::POST {
        return next.run(request).await;
    }
    // A POST without a session may open one (initialize).
    if !owners.reserve(principal).await {
        owners.refused.fetch_add(1, Ordering::Relaxed);
        return (
            ::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "this token has {} MCP sessions open, the most allowed: end one (DELETE) or let \
                 one expire\n",
                owners.max_per_principal
            ),
        )
            .into_response();
    }
    let response = next.run(request).await;
    owners.settle(principal, session_header(response.headers()));
    response
}

/// Serves `server` per `config` on a thread of its own, until the returned handle is dropped
/// or shut down.
///
/// # Errors
/// [`Error::Serve`] if the address is not loopback and no bearer token is configured, a token
/// is too short; [`Error::Bind`] (with the operating system's error) if the address cannot be bound.
pub fn serve(server: MissionMcp, config: McpHttpConfig) -> Result<McpHttpServer> {
    config.check()?;
    let (listener, addr) = crate::listen::listen(config.addr)?;
    let fail = |source: std::io::Error| Error::Bind { addr: addr.to_string(), source };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("mission-mcp-http")
        .build()
        .map_err(fail)?;
    let stop = CancellationToken::new();
    let mut http_config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_cancellation_token(stop.child_token());
    if !addr.ip().is_loopback() {
        let mut hosts = config.allowed_hosts.clone();
        hosts.push(addr.ip().to_string());
        hosts.push(addr.to_string());
        http_config = http_config.with_allowed_hosts(hosts);
    } else if !config.allowed_hosts.is_empty() {
        let mut hosts = http_config.allowed_hosts.clone();
        hosts.extend(config.allowed_hosts.iter().cloned());
        http_config = http_config.with_allowed_hosts(hosts);
    }
    let manager = Arc::new(LocalSessionManager::default());
    let sessions = Arc::new(SessionOwners {
        manager: manager.clone(),
        max_per_principal: config.max_sessions_per_token,
        state: Mutex::default(),
        refused: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
    });
    let service = StreamableHttpService::new(move || Ok(server.session()), manager, http_config);
    // Layers run outside in: authentication, then the session binding.
    let app = axum::Router::new()
        .nest_service(&config.path, service)
        .layer(axum::middleware::from_fn_with_state(sessions.clone(), bind_sessions))
        .layer(axum::middleware::from_fn_with_state(Arc::new(config.tokens.clone()), authenticate));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("mission-mcp-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let graceful = stopping.clone().cancelled_owned();
                let serve = axum::serve(listener, app).with_graceful_shutdown(graceful);
                // Open event streams may not end by themselves: give them two seconds.
                tokio::select! {
                    _ = serve => {}
                    () = async {
                        stopping.cancelled().await;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    } => {}
                }
            });
        })
        .map_err(fail)?;
    Ok(McpHttpServer { addr, path: config.path, stop, thread: Some(thread), sessions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{authorize, constant_time_eq};

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdef", b"0123456789abcdeg"));
        assert!(!constant_time_eq(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!constant_time_eq(b"", b"x"));
        let tokens = vec![
            McpToken { token: "admin-token-0123456789".into(), tenant: None, role: Role::Admin },
            McpToken {
                token: "acme-token-0123456789".into(),
                tenant: Some("acme".into()),
                role: Role::Viewer,
            },
        ];
        assert_eq!(authorize_at(&tokens, b"acme-token-0123456789").map(|(i, _)| i), Some(1));
        assert_eq!(
            authorize(&tokens, b"acme-token-0123456789"),
            Some(Access { tenant: Some("acme".into()), role: Role::Viewer })
        );
        assert_eq!(authorize(&tokens, b"admin-token-0123456789"), Some(Access::default()));
        assert_eq!(authorize(&tokens, b"acme-token-012345678"), None);
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let open = McpHttpConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)));
        let e = open.clone().check().expect_err("no token on 0.0.0.0");
        assert!(e.to_string().contains("without a bearer token"), "{e}");
        assert!(open.clone().with_token("short").check().is_err());
        assert!(open.clone().with_token("has a space in it, long enough").check().is_err());
        assert!(open.with_token("a-long-enough-token-123").check().is_ok());
        assert!(McpHttpConfig::loopback(0).check().is_ok(), "loopback may go without a token");
        for bad in [0, 10_001] {
            let e = McpHttpConfig::loopback(0).with_max_sessions_per_token(bad).check();
            let e = e.expect_err("out of range").to_string();
            assert!(e.contains("max_sessions_per_token") && e.contains("1..=10000"), "{e}");
        }
        assert!(McpHttpConfig::loopback(0).with_max_sessions_per_token(1).check().is_ok());
    }
}
