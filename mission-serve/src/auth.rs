//! Who may use the servers, one module for both the MCP server over HTTP and the dashboard:
//! bearer [`Token`]s with a [`Role`] and an optional tenant scope, the [`Access`] a request
//! gets from its token, [`authorize`] (every token compared in constant time), the checks that
//! refuse a server configuration exposing data ([`check_tokens`]) and the `Host` header check
//! against DNS rebinding ([`Hosts`]).
//!
//! ```
//! use mission_serve::auth::{Role, Token, authorize};
//! let tokens = vec![Token::new("viewer-of-acme-0001", Role::Viewer, Some("acme"))];
//! let access = authorize(&tokens, b"viewer-of-acme-0001").expect("a known token");
//! assert_eq!((access.tenant.as_deref(), access.role), (Some("acme"), Role::Viewer));
//! assert!(authorize(&tokens, b"viewer-of-acme-0002").is_none());
//! ```

use crate::{Error, Result};

/// What a request may do, set by the HTTP transport from the bearer token: the tenant it may
/// see (`None`: every tenant) and its [`Role`]. Stdio and a loopback server without tokens
/// get full access (whoever can start the process or reach loopback owns it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The tenant its requests may see and change; `None` is every tenant.
    pub tenant: Option<String>,
    /// What it may do.
    pub role: Role,
}

impl Default for Access {
    fn default() -> Self {
        Self { tenant: None, role: Role::Admin }
    }
}

/// What a token may do, each role including the ones before it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads its tenant's data (or every tenant's, unscoped).
    Viewer,
    /// Also acknowledges alerts and turns directives on and off.
    Operator,
    /// Also changes policies and directives and erases data.
    Admin,
}

impl Role {
    /// `viewer`, `operator` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?}: expected viewer, operator or admin")),
        }
    }
}

/// Shortest bearer token accepted (the MCP server over HTTP and the dashboard).
pub const MIN_TOKEN_LEN: usize = 16;

/// A bearer token: a role, optionally scoped to one tenant. The MCP server over HTTP and the
/// dashboard accept the same tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The secret.
    pub token: String,
    /// The tenant its requests may see; `None` sees every tenant.
    pub tenant: Option<String>,
    /// What its requests may do.
    pub role: Role,
}

impl Token {
    /// `token` with `role`, for `tenant` only or (`None`) every tenant.
    pub fn new(token: &str, role: Role, tenant: Option<&str>) -> Self {
        Self { token: token.to_owned(), tenant: tenant.map(str::to_owned), role }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &"<secret>")
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .finish()
    }
}

/// Refuses a server configuration that would expose data: no token on a non-loopback
/// `addr`, a token shorter than [`MIN_TOKEN_LEN`], or one with whitespace or control
/// characters. `what` names the server, `hint` the method that adds a token.
pub fn check_tokens(
    tokens: &[Token],
    addr: std::net::SocketAddr,
    what: &str,
    hint: &str,
) -> Result<()> {
    let refuse = |message: String| Error::Serve { addr: addr.to_string(), message };
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(refuse(format!(
            "refusing to serve {what} on a non-loopback address without a bearer token (add \
             one with {hint})"
        )));
    }
    if let Some(short) = tokens.iter().find(|t| t.token.len() < MIN_TOKEN_LEN) {
        let tenant = short.tenant.as_deref().unwrap_or("every tenant");
        return Err(refuse(format!(
            "the token for {tenant} is shorter than {MIN_TOKEN_LEN} characters"
        )));
    }
    if tokens.iter().any(|t| t.token.chars().any(|c| c.is_whitespace() || c.is_control())) {
        return Err(refuse("a token contains whitespace or control characters".into()));
    }
    Ok(())
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// The access of the first token `presented` matches, checking every token (no early exit).
pub fn authorize(tokens: &[Token], presented: &[u8]) -> Option<Access> {
    authorize_at(tokens, presented).map(|(_, access)| access)
}

/// [`authorize`], with the index of the token that matched (who the principal is).
pub fn authorize_at(tokens: &[Token], presented: &[u8]) -> Option<(usize, Access)> {
    let mut found = None;
    for (i, t) in tokens.iter().enumerate() {
        if constant_time_eq(t.token.as_bytes(), presented) && found.is_none() {
            found = Some((i, Access { tenant: t.tenant.clone(), role: t.role }));
        }
    }
    found
}

#[derive(Clone, Debug)]
/// Which `Host` headers name this server: loopback names for a loopback address, the address
/// itself for another, any for a wildcard address (`0.0.0.0`, `::`: its names are unknown, and
/// it has tokens), and the configured `allowed_hosts`.
pub struct Hosts {
    loopback: bool,
    any: bool,
    allowed: Vec<String>,
}

impl Hosts {
    /// The names of a server bound to `addr`, plus `allowed` (the configured `allowed_hosts`).
    pub fn for_addr(addr: std::net::SocketAddr, allowed: &[String]) -> Self {
        let mut allowed = allowed.to_vec();
        if !addr.ip().is_loopback() {
            allowed.push(addr.ip().to_string());
            allowed.push(addr.to_string());
        }
        Self { loopback: addr.ip().is_loopback(), any: addr.ip().is_unspecified(), allowed }
    }

    /// Whether `host` (a `Host` header's value, with or without a port) names this server.
    pub fn accepts(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        // Without the port: `name:port`, `[v6]:port`.
        let name = match host.rsplit_once(':') {
            Some((name, port))
                if !name.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && !name.ends_with(':') =>
            {
                name
            }
            _ => host.as_str(),
        };
        self.any
            || (self.loopback && ["localhost", "127.0.0.1", "[::1]"].contains(&name))
            || self
                .allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&host) || a.eq_ignore_ascii_case(name))
    }
}
