//! `mission-ctl serve`: the OTLP receiver over a store, in one process. Any process — an agent
//! in TypeScript, a Python service instrumented with OpenTelemetry, a subprocess — sends
//! OTLP/HTTP or OTLP/gRPC traces, logs and metrics, and they are recorded into the store through the same
//! pipeline as an agent's own events, until the process is told to stop (Ctrl-C, SIGTERM);
//! then everything received is written before it exits.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use mission_sdk::{MissionControl, OtlpReceiverConfig};

/// The most tokens a tokens file may hold.
pub const MAX_TOKENS: usize = 1024;

/// The arguments of `mission-ctl serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// The store's root directory (created if missing).
    #[arg(long, default_value = "./mission-data")]
    pub store: PathBuf,
    /// The address the OTLP/HTTP receiver listens on (port 0 picks a free one); an address
    /// off loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub addr: SocketAddr,
    /// The address the OTLP/gRPC receiver listens on (port 0 picks a free one); an address
    /// off loopback needs a token. Same tokens, limits and queue as OTLP/HTTP.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc_addr: SocketAddr,
    /// Serves no OTLP/gRPC (only OTLP/HTTP).
    #[arg(long)]
    pub no_grpc: bool,
    /// The tenant of data that names none (senders with a token for every tenant may name
    /// theirs in the resource attribute `mission.tenant`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A bearer token that may send for every tenant (16 characters or more); may be repeated.
    #[arg(long)]
    pub token: Vec<String>,
    /// A bearer token whose data is one tenant's, written TOKEN:TENANT; may be repeated.
    #[arg(long, value_parser = parse_tenant_token)]
    pub tenant_token: Vec<(String, String)>,
    /// A file of tokens, one per line: TOKEN (every tenant) or TOKEN:TENANT; blank lines and
    /// lines starting with `#` are skipped. Keeps tokens out of the process list.
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// A Mission Control configuration file (redaction, sampling, retention, prices…), as an
    /// agent's `with_config_file`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// A bearer token and the tenant it sends for (`None`: every tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeToken {
    /// The token, as senders present it (`Authorization: Bearer TOKEN`).
    pub token: String,
    /// Its tenant; `None` lets the sender name any.
    pub tenant: Option<String>,
}

/// Parses `TOKEN:TENANT` (`--tenant-token`, and the lines of a tokens file that name a
/// tenant).
///
/// # Errors
/// A message when either side is empty or there is no `:`.
pub fn parse_tenant_token(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((token, tenant)) if !token.is_empty() && !tenant.is_empty() => {
            Ok((token.to_owned(), tenant.to_owned()))
        }
        _ => Err(format!("expected TOKEN:TENANT, not {text:?}")),
    }
}

/// The tokens of a tokens file: one per line, `TOKEN` or `TOKEN:TENANT`; blank lines and
/// lines starting with `#` skipped, spaces around a line ignored.
///
/// # Errors
/// A message naming the line (never its token) for a line that is neither, or past
/// [`MAX_TOKENS`] tokens. (Token lengths and characters are checked with the receiver's
/// configuration.)
pub fn parse_tokens_file(text: &str) -> Result<Vec<ServeToken>, String> {
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if tokens.len() == MAX_TOKENS {
            return Err(format!("more than {MAX_TOKENS} tokens"));
        }
        let token = if line.contains(':') {
            let (token, tenant) = parse_tenant_token(line)
                .map_err(|_| format!("line {}: expected TOKEN or TOKEN:TENANT", n + 1))?;
            ServeToken { token, tenant: Some(tenant) }
        } else {
            ServeToken { token: line.to_owned(), tenant: None }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Why `serve` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A flag or the tokens file is wrong (exit code 2).
    #[error("{0}")]
    Arguments(String),
    /// The store or the receiver could not start (exit code 3).
    #[error("{0}")]
    Start(String),
    /// Writing to the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Arguments(_) => 2,
            ServeError::Start(_) | ServeError::Io(_) => 3,
        }
    }
}

/// The receiver's configuration from the flags and the tokens file, checked.
///
/// # Errors
/// [`ServeError::Arguments`] for an unreadable or malformed tokens file, a short token, or an
/// address off loopback without a token.
pub fn receiver_config(args: &ServeArgs) -> Result<OtlpReceiverConfig, ServeError> {
    let mut tokens: Vec<ServeToken> =
        args.token.iter().map(|t| ServeToken { token: t.clone(), tenant: None }).collect();
    tokens.extend(
        args.tenant_token.iter().map(|(token, tenant)| ServeToken {
            token: token.clone(),
            tenant: Some(tenant.clone()),
        }),
    );
    if let Some(path) = &args.tokens_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Arguments(format!("{}: {e}", path.display())))?;
        let read = parse_tokens_file(&text)
            .map_err(|e| ServeError::Arguments(format!("{}: {e}", path.display())))?;
        tokens.extend(read);
    }
    let mut config = OtlpReceiverConfig::new(args.addr);
    if !args.no_grpc {
        config = config.with_grpc_addr(args.grpc_addr);
    }
    for t in &tokens {
        config = match &t.tenant {
            Some(tenant) => config.with_tenant_token(&t.token, tenant),
            None => config.with_token(&t.token),
        };
    }
    config.check().map_err(|e| ServeError::Arguments(e.to_string()))?;
    Ok(config)
}

/// Runs the receiver over `args.store` until `stop` receives (or its sender is dropped):
/// prints where it listens, then, once stopped, what it received and what was written.
///
/// # Errors
/// [`ServeError`]: bad arguments, a store or address that cannot be used, or output that
/// cannot be written.
pub fn run_serve(
    args: &ServeArgs,
    stop: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    let config = receiver_config(args)?;
    let mut builder = MissionControl::builder().with_store_root(&args.store);
    if let Some(tenant) = &args.tenant {
        builder = builder.with_tenant(tenant);
    }
    if let Some(file) = &args.config {
        builder = builder.with_config_file(file);
    }
    let control = builder.build().map_err(|e| ServeError::Start(e.to_string()))?;
    let receiver = match control.serve_otlp(config) {
        Ok(r) => r,
        Err(e) => {
            control.shutdown();
            return Err(ServeError::Start(e.to_string()));
        }
    };
    let endpoint = receiver.endpoint();
    writeln!(
        out,
        "Mission Control OTLP receiver on {endpoint} (store {}; Ctrl-C to stop)",
        args.store.display()
    )?;
    writeln!(out, "  senders: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}")?;
    if let Some(grpc) = receiver.grpc_endpoint() {
        writeln!(
            out,
            "  OTLP/gRPC on {grpc}: OTEL_EXPORTER_OTLP_ENDPOINT={grpc} OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
        )?;
    }
    out.flush()?;
    // A message or the handler gone: stop either way.
    let _ = stop.recv();
    let stats = receiver.stats();
    receiver.shutdown();
    let report = control.shutdown();
    let a = &report.accounting;
    writeln!(
        out,
        "stopped: received {} spans, {} log records, {} metric points in {} requests \
         ({} refused); {} events recorded, {} delivered, {} dropped",
        stats.spans,
        stats.logs,
        stats.metric_points,
        stats.requests,
        stats.malformed
            + stats.too_large
            + stats.unsupported
            + stats.throttled
            + stats.unauthorized
            + stats.unavailable,
        a.recorded,
        a.delivered,
        a.dropped,
    )?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_has_tokens_for_every_tenant_and_for_one() {
        let text = "# ops\n\n  every-tenant-token-0001  \nacme-token-000000001:acme\n";
        let tokens = parse_tokens_file(text).expect("valid");
        assert_eq!(
            tokens,
            vec![
                ServeToken { token: "every-tenant-token-0001".into(), tenant: None },
                ServeToken { token: "acme-token-000000001".into(), tenant: Some("acme".into()) },
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_without_its_token() {
        let err = parse_tokens_file("ok-token-0000000001\nsecret-token-000001:\n").unwrap_err();
        assert_eq!(err, "line 2: expected TOKEN or TOKEN:TENANT");
        let many = "t-0123456789abcdef\n".repeat(MAX_TOKENS + 1);
        assert_eq!(parse_tokens_file(&many).unwrap_err(), format!("more than {MAX_TOKENS} tokens"));
    }

    #[test]
    fn flags_are_checked_before_anything_starts() {
        let args = |addr: &str, token: &[&str]| ServeArgs {
            store: PathBuf::from("unused"),
            addr: addr.parse().expect("addr"),
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            no_grpc: false,
            tenant: None,
            token: token.iter().map(|t| (*t).to_owned()).collect(),
            tenant_token: Vec::new(),
            tokens_file: None,
            config: None,
        };
        let err = receiver_config(&args("0.0.0.0:0", &[])).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        for bad in ["short", "two words-0000000001"] {
            let err = receiver_config(&args("127.0.0.1:0", &[bad])).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
        }
        let config = receiver_config(&args("0.0.0.0:0", &["a-long-enough-token-01"])).expect("ok");
        assert_eq!(config.tokens.len(), 1);
        assert_eq!(config.grpc_addr, Some("127.0.0.1:0".parse().expect("addr")));
        let grpc_off_loopback =
            ServeArgs { grpc_addr: "0.0.0.0:0".parse().expect("addr"), ..args("127.0.0.1:0", &[]) };
        assert_eq!(receiver_config(&grpc_off_loopback).expect_err("no token").exit_code(), 2);
        let no_grpc = ServeArgs { no_grpc: true, ..grpc_off_loopback };
        assert_eq!(receiver_config(&no_grpc).expect("HTTP only").grpc_addr, None);
        let missing = ServeArgs {
            tokens_file: Some(PathBuf::from("/nonexistent/mission-tokens")),
            ..args("127.0.0.1:0", &[])
        };
        assert!(matches!(receiver_config(&missing), Err(ServeError::Arguments(_))));
    }
}
