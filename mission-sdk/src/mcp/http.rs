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
//!   loopback address, else the configured `allowed_hosts` (default: the bound address).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{Access, MissionMcp, Role, authorize};
use crate::{Error, Result};

pub use super::{MIN_TOKEN_LEN, McpToken};

/// Where and how [`MissionControl::serve_mcp`](crate::MissionControl::serve_mcp) serves.
#[derive(Clone, Debug)]
#[must_use]
pub struct McpHttpConfig {
    /// The address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Accepted bearer tokens; empty means none is asked for (loopback only).
    pub tokens: Vec<McpToken>,
    /// `Host` header values accepted besides the defaults (see the module's rules).
    pub allowed_hosts: Vec<String>,
    /// The path of the MCP endpoint (default `/mcp`).
    pub path: String,
}

impl McpHttpConfig {
    /// Serves on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, tokens: Vec::new(), allowed_hosts: Vec::new(), path: "/mcp".into() }
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

    /// Also accepts this `Host` header value (a name clients use to reach the server).
    pub fn with_allowed_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_owned());
        self
    }

    fn check(&self) -> Result<()> {
        super::check_tokens(&self.tokens, self.addr, "MCP", "McpHttpConfig::with_token")?;
        let refuse = |message: String| Error::Serve { addr: self.addr.to_string(), message };
        if !self.path.starts_with('/') {
            return Err(refuse(format!("path {:?} must start with '/'", self.path)));
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
}

impl McpHttpServer {
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

async fn authenticate(
    State(tokens): State<Arc<Vec<McpToken>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() {
        request.extensions_mut().insert(Access::default());
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::to_vec);
    match presented.and_then(|p| authorize(&tokens, &p)) {
        Some(scope) => {
            request.extensions_mut().insert(scope);
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

/// Serves `server` per `config` on a thread of its own.
pub(crate) fn serve(server: MissionMcp, config: McpHttpConfig) -> Result<McpHttpServer> {
    config.check()?;
    let fail = |message: String| Error::Serve { addr: config.addr.to_string(), message };
    let listener = std::net::TcpListener::bind(config.addr).map_err(|e| fail(e.to_string()))?;
    listener.set_nonblocking(true).map_err(|e| fail(e.to_string()))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("mission-mcp-http")
        .build()
        .map_err(|e| fail(e.to_string()))?;
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
    let service = StreamableHttpService::new(
        move || Ok(server.session()),
        Arc::new(LocalSessionManager::default()),
        http_config,
    );
    let app = axum::Router::new()
        .nest_service(&config.path, service)
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
        .map_err(|e| fail(e.to_string()))?;
    Ok(McpHttpServer { addr, path: config.path, stop, thread: Some(thread) })
}

#[cfg(test)]
mod tests {
    use super::super::constant_time_eq;
    use super::*;

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
    }
}
