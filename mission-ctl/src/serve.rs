//! `mission-ctl serve`: the OTLP receiver, the dashboard and the MCP server over HTTP over one
//! store, in one process. Any process — an agent in TypeScript, a Python service instrumented
//! with OpenTelemetry, a subprocess — sends OTLP/HTTP or
//! OTLP/gRPC traces, logs and metrics, and they are
//! recorded into the store through the same pipeline as an agent's own events; the dashboard
//! and the MCP server show them live. It runs until the process is told to stop (Ctrl-C,
//! SIGTERM); then everything received is written before it exits.
//!
//! Each surface is started by a function of its own ([`start_otlp`], [`start_dashboard`],
//! [`start_mcp`]) and prints one line when it listens, `Mission Control <surface> on <url>`
//! (the surfaces: [`OTLP_LINE`], [`GRPC_LINE`], [`DASHBOARD_LINE`], [`MCP_LINE`]); a last line,
//! [`READY_LINE`], says every surface listens. Each is on loopback by default, turned off with
//! `--no-<surface>`, and off loopback only with tokens; one set of tokens serves all three: a
//! token of every tenant sends for any tenant and is an admin of the dashboard and the MCP
//! server, a tenant's token sends for its tenant and views only its tenant's data.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use mission_sdk::{
    DashboardConfig, DashboardServer, McpHttpConfig, McpHttpServer, MissionControl, OtlpReceiver,
    OtlpReceiverConfig,
};

/// The most tokens a tokens file may hold.
pub const MAX_TOKENS: usize = 1024;

/// What the line of the OTLP/HTTP receiver starts with (its URL follows).
pub const OTLP_LINE: &str = "Mission Control OTLP receiver on ";
/// What the line of the OTLP/gRPC receiver starts with (its URL follows).
pub const GRPC_LINE: &str = "Mission Control OTLP/gRPC receiver on ";
/// What the line of the dashboard starts with (its URL follows).
pub const DASHBOARD_LINE: &str = "Mission Control dashboard on ";
/// What the line of the MCP server over HTTP starts with (its URL follows).
pub const MCP_LINE: &str = "Mission Control MCP server on ";
/// What the line saying where the store's files are uploaded starts with (`--upload-to`).
pub const UPLOAD_LINE: &str = "Mission Control uploader to ";
/// What the line printed once every surface listens starts with.
pub const READY_LINE: &str = "serving store ";

/// The arguments of `mission-ctl serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// The store's root directory (created if missing).
    #[arg(long, default_value = "./mission-data")]
    pub store: PathBuf,
    /// The address the OTLP/HTTP receiver listens on (port 0 picks a free one); an address
    /// off loopback needs a token.
    #[arg(long, visible_alias = "otlp-addr", default_value = "127.0.0.1:4318")]
    pub addr: SocketAddr,
    /// The address the OTLP/gRPC receiver listens on (port 0 picks a free one); an address
    /// off loopback needs a token. Same tokens, limits and queue as OTLP/HTTP.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc_addr: SocketAddr,
    /// Serves no OTLP/gRPC (only OTLP/HTTP; `--no-otlp` turns both off).
    #[arg(long)]
    pub no_grpc: bool,
    /// No OTLP/HTTP receiver.
    #[arg(long)]
    pub no_otlp: bool,
    /// The most OTLP requests read and answered at once, HTTP and gRPC together (1..=4096);
    /// one more is answered `429` / `RESOURCE_EXHAUSTED` to retry later. Request bodies held
    /// at once are at most this times 8 MiB.
    #[arg(long, default_value_t = mission_sdk::receiver::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// The address the dashboard listens on (port 0 picks a free one); an address off
    /// loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub dashboard_addr: SocketAddr,
    /// No dashboard.
    #[arg(long)]
    pub no_dashboard: bool,
    /// The address the MCP server listens on, over streamable HTTP at `/mcp` (port 0 picks a
    /// free one); an address off loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8808")]
    pub mcp_addr: SocketAddr,
    /// No MCP server.
    #[arg(long)]
    pub no_mcp: bool,
    /// The tenant of data that names none (senders with a token for every tenant may name
    /// theirs in the resource attribute `mission.tenant`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A bearer token that may send for every tenant and is an admin of the dashboard and the
    /// MCP server (16 characters or more); may be repeated.
    #[arg(long)]
    pub token: Vec<String>,
    /// A bearer token whose data is one tenant's, written TOKEN:TENANT: it sends for that
    /// tenant and sees only its data on the dashboard and the MCP server; may be repeated.
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
    /// Compact the store's small files this often (`mission-ctl compact` with its defaults;
    /// 1s..=7d), or `0` / `off` for never.
    #[arg(long, default_value = "10m", value_parser = crate::compact::parse_compact_every)]
    pub compact_every: crate::compact::CompactEvery,
    /// Also upload the store's finalized files to object storage (`s3://bucket/prefix`,
    /// credentials and endpoint from the AWS_* environment), each exactly once, as
    /// `mission-ctl upload --follow` does: the store directory holds what is not up yet (the
    /// dashboard and MCP read it; read the bucket with `--store s3://…`). Scheduled
    /// compaction is off with it (files go up as they are finalized).
    #[cfg(feature = "s3")]
    #[arg(long)]
    pub upload_to: Option<String>,
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

/// Every token of the flags and the tokens file.
///
/// # Errors
/// [`ServeError::Arguments`] for an unreadable or malformed tokens file.
pub fn serve_tokens(args: &ServeArgs) -> Result<Vec<ServeToken>, ServeError> {
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
    Ok(tokens)
}

/// Refuses an address off loopback without a token (`what` names the surface and its flag).
fn check_exposure(addr: SocketAddr, tokens: &[ServeToken], what: &str) -> Result<(), ServeError> {
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ServeError::Arguments(format!(
            "refusing to serve {what} on {addr}, off loopback, without a token (add --token, \
             --tenant-token or --tokens-file)"
        )));
    }
    Ok(())
}

/// `config` with `tokens`: `every` adds a token of every tenant, `one` a tenant's.
fn with_tokens<C>(
    config: C,
    tokens: &[ServeToken],
    every: fn(C, &str) -> C,
    one: fn(C, &str, &str) -> C,
) -> C {
    tokens.iter().fold(config, |config, t| match &t.tenant {
        Some(tenant) => one(config, &t.token, tenant),
        None => every(config, &t.token),
    })
}

/// The receiver's configuration from the flags and `tokens`, checked.
///
/// # Errors
/// [`ServeError::Arguments`] for a short token or one with spaces, or an address off loopback
/// without a token.
pub fn receiver_config(
    args: &ServeArgs,
    tokens: &[ServeToken],
) -> Result<OtlpReceiverConfig, ServeError> {
    check_exposure(args.addr, tokens, "the OTLP receiver (--addr)")?;
    let mut config = with_tokens(
        OtlpReceiverConfig::new(args.addr).with_max_in_flight(args.max_in_flight),
        tokens,
        OtlpReceiverConfig::with_token,
        OtlpReceiverConfig::with_tenant_token,
    );
    if !args.no_grpc {
        check_exposure(args.grpc_addr, tokens, "the OTLP/gRPC receiver (--grpc-addr)")?;
        config = config.with_grpc_addr(args.grpc_addr);
    }
    config.check().map_err(|e| ServeError::Arguments(e.to_string()))?;
    Ok(config)
}

/// The dashboard's configuration from the flags and `tokens`: a token of every tenant is an
/// admin, a tenant's token a viewer of its tenant.
///
/// # Errors
/// [`ServeError::Arguments`] for an address off loopback without a token.
pub fn dashboard_config(
    args: &ServeArgs,
    tokens: &[ServeToken],
) -> Result<DashboardConfig, ServeError> {
    check_exposure(args.dashboard_addr, tokens, "the dashboard (--dashboard-addr)")?;
    Ok(with_tokens(
        DashboardConfig::new(args.dashboard_addr),
        tokens,
        DashboardConfig::with_token,
        DashboardConfig::with_tenant_token,
    ))
}

/// The MCP server's configuration from the flags and `tokens`, as the dashboard's.
///
/// # Errors
/// [`ServeError::Arguments`] for an address off loopback without a token.
pub fn mcp_config(args: &ServeArgs, tokens: &[ServeToken]) -> Result<McpHttpConfig, ServeError> {
    check_exposure(args.mcp_addr, tokens, "the MCP server (--mcp-addr)")?;
    Ok(with_tokens(
        McpHttpConfig::new(args.mcp_addr),
        tokens,
        McpHttpConfig::with_token,
        McpHttpConfig::with_tenant_token,
    ))
}

/// The surfaces `serve` runs over one [`MissionControl`]; `None` where turned off.
#[derive(Default)]
pub struct Surfaces {
    /// The OTLP/HTTP receiver.
    pub otlp: Option<OtlpReceiver>,
    /// The dashboard.
    pub dashboard: Option<DashboardServer>,
    /// The MCP server over streamable HTTP.
    pub mcp: Option<McpHttpServer>,
}

impl Surfaces {
    /// Stops every surface: the readers first, then the receiver, so what it acknowledged is
    /// recorded before the pipeline stops.
    pub fn stop(self) {
        if let Some(mcp) = self.mcp {
            mcp.shutdown();
        }
        if let Some(dashboard) = self.dashboard {
            dashboard.shutdown();
        }
        if let Some(otlp) = self.otlp {
            otlp.shutdown();
        }
    }
}

/// Starts the OTLP/HTTP receiver and, unless `--no-grpc`, the OTLP/gRPC one (neither with
/// `--no-otlp`), and prints their lines.
///
/// # Errors
/// [`ServeError::Start`] when it cannot listen; [`ServeError::Io`] when the output fails.
pub fn start_otlp(
    control: &MissionControl,
    config: Option<OtlpReceiverConfig>,
    out: &mut dyn Write,
) -> Result<Option<OtlpReceiver>, ServeError> {
    let Some(config) = config else { return Ok(None) };
    let receiver = control.serve_otlp(config).map_err(|e| ServeError::Start(e.to_string()))?;
    let endpoint = receiver.endpoint();
    writeln!(out, "{OTLP_LINE}{endpoint}")?;
    writeln!(out, "  senders: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}")?;
    if let Some(grpc) = receiver.grpc_endpoint() {
        writeln!(out, "{GRPC_LINE}{grpc}")?;
        writeln!(
            out,
            "  senders: OTEL_EXPORTER_OTLP_ENDPOINT={grpc} OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
        )?;
    }
    Ok(Some(receiver))
}

/// Starts the dashboard (unless `--no-dashboard`), live over what `control` records and its
/// store, and prints its line.
///
/// # Errors
/// [`ServeError::Start`] when it cannot listen; [`ServeError::Io`] when the output fails.
pub fn start_dashboard(
    control: &MissionControl,
    config: Option<DashboardConfig>,
    out: &mut dyn Write,
) -> Result<Option<DashboardServer>, ServeError> {
    let Some(config) = config else { return Ok(None) };
    let server = control.serve_dashboard(config).map_err(|e| ServeError::Start(e.to_string()))?;
    writeln!(out, "{DASHBOARD_LINE}{}", server.url())?;
    Ok(Some(server))
}

/// Starts the MCP server over streamable HTTP (unless `--no-mcp`), over `control`'s store and
/// live events, and prints its line.
///
/// # Errors
/// [`ServeError::Start`] when it cannot listen; [`ServeError::Io`] when the output fails.
pub fn start_mcp(
    control: &MissionControl,
    config: Option<McpHttpConfig>,
    out: &mut dyn Write,
) -> Result<Option<McpHttpServer>, ServeError> {
    let Some(config) = config else { return Ok(None) };
    let server = control.serve_mcp(config).map_err(|e| ServeError::Start(e.to_string()))?;
    writeln!(out, "{MCP_LINE}{}", server.url())?;
    Ok(Some(server))
}

/// The configuration of each surface that is on, checked before anything starts.
struct Configs {
    otlp: Option<OtlpReceiverConfig>,
    dashboard: Option<DashboardConfig>,
    mcp: Option<McpHttpConfig>,
}

impl Configs {
    fn of(args: &ServeArgs) -> Result<Self, ServeError> {
        let tokens = serve_tokens(args)?;
        let configs = Configs {
            otlp: (!args.no_otlp).then(|| receiver_config(args, &tokens)).transpose()?,
            dashboard: (!args.no_dashboard).then(|| dashboard_config(args, &tokens)).transpose()?,
            mcp: (!args.no_mcp).then(|| mcp_config(args, &tokens)).transpose()?,
        };
        if configs.otlp.is_none() && configs.dashboard.is_none() && configs.mcp.is_none() {
            return Err(ServeError::Arguments("every surface is turned off".into()));
        }
        Ok(configs)
    }
}

/// Starts every surface that is on; the ones started are stopped again when one fails.
fn start_surfaces(
    control: &MissionControl,
    configs: Configs,
    out: &mut dyn Write,
) -> Result<Surfaces, ServeError> {
    let mut surfaces = Surfaces::default();
    match start_each(control, configs, &mut surfaces, out) {
        Ok(()) => Ok(surfaces),
        Err(e) => {
            surfaces.stop();
            Err(e)
        }
    }
}

fn start_each(
    control: &MissionControl,
    configs: Configs,
    surfaces: &mut Surfaces,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    surfaces.otlp = start_otlp(control, configs.otlp, out)?;
    surfaces.dashboard = start_dashboard(control, configs.dashboard, out)?;
    surfaces.mcp = start_mcp(control, configs.mcp, out)?;
    Ok(())
}

/// Runs the surfaces over `args.store` until `stop` receives (or its sender is dropped):
/// prints where each listens, then, once stopped, what the receiver received and what was
/// written.
///
/// # Errors
/// [`ServeError`]: bad arguments, a store or address that cannot be used, or output that
/// cannot be written.
pub fn run_serve(
    args: &ServeArgs,
    stop: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    let configs = Configs::of(args)?;
    let mut builder = MissionControl::builder().with_store_root(&args.store);
    if let Some(tenant) = &args.tenant {
        builder = builder.with_tenant(tenant);
    }
    if let Some(file) = &args.config {
        builder = builder.with_config_file(file);
    }
    #[cfg(feature = "s3")]
    let uploading = args.upload_to.is_some();
    #[cfg(not(feature = "s3"))]
    let uploading = false;
    #[cfg(feature = "s3")]
    if let Some(url) = &args.upload_to {
        builder = builder.with_store_upload(url);
    }
    let control = builder.build().map_err(|e| ServeError::Start(e.to_string()))?;
    let surfaces = match start_surfaces(&control, configs, out) {
        Ok(s) => s,
        Err(e) => {
            control.shutdown();
            return Err(e);
        }
    };
    #[cfg(feature = "s3")]
    if let Some(url) = &args.upload_to {
        writeln!(
            out,
            "{UPLOAD_LINE}{}",
            mission_store::RemoteRoot::parse(url).map(|r| r.url().to_owned()).unwrap_or_default()
        )?;
    }
    writeln!(out, "{READY_LINE}{} (Ctrl-C to stop)", args.store.display())?;
    out.flush()?;
    // Scheduled compaction beside the receiver; each run that merged something says so on
    // stderr (stdout is `out`, which the caller may hold locked).
    let compaction = args.compact_every.0.filter(|_| !uploading).and_then(|every| {
        let options = crate::compact::CompactArgs::default().options().unwrap_or_default();
        let scheduled =
            crate::compact::Scheduled::start(args.store.clone(), every, options, |run| match run {
                Ok(r) if r.files_merged > 0 => eprintln!("{}", crate::compact::describe(r)),
                Ok(_) => {}
                Err(e) => eprintln!("warning: compaction failed: {e}"),
            });
        scheduled.map_err(|e| eprintln!("warning: scheduled compaction could not start: {e}")).ok()
    });
    // A message or the handler gone: stop either way.
    let _ = stop.recv();
    drop(compaction);
    let stats = surfaces.otlp.as_ref().map(OtlpReceiver::stats).unwrap_or_default();
    surfaces.stop();
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
            no_otlp: false,
            max_in_flight: 32,
            dashboard_addr: "127.0.0.1:0".parse().expect("addr"),
            no_dashboard: false,
            mcp_addr: "127.0.0.1:0".parse().expect("addr"),
            no_mcp: false,
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            no_grpc: false,
            tenant: None,
            token: token.iter().map(|t| (*t).to_owned()).collect(),
            tenant_token: Vec::new(),
            tokens_file: None,
            config: None,
            compact_every: crate::compact::CompactEvery(None),
            #[cfg(feature = "s3")]
            upload_to: None,
        };
        let config = |args: &ServeArgs| receiver_config(args, &serve_tokens(args)?);
        let err = config(&args("0.0.0.0:0", &[])).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        for bad in ["short", "two words-0000000001"] {
            let err = config(&args("127.0.0.1:0", &[bad])).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
        }
        let ok = config(&args("0.0.0.0:0", &["a-long-enough-token-01"])).expect("ok");
        assert_eq!(ok.tokens.len(), 1);
        assert_eq!(ok.grpc_addr, Some("127.0.0.1:0".parse().expect("addr")));
        let grpc_off_loopback =
            ServeArgs { grpc_addr: "0.0.0.0:0".parse().expect("addr"), ..args("127.0.0.1:0", &[]) };
        assert_eq!(config(&grpc_off_loopback).expect_err("no token").exit_code(), 2);
        let no_grpc = ServeArgs { no_grpc: true, ..grpc_off_loopback };
        let unbounded = ServeArgs { max_in_flight: 0, ..args("127.0.0.1:0", &[]) };
        let err = config(&unbounded).expect_err("out of range");
        assert!(err.to_string().contains("max_in_flight = 0"), "{err}");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(config(&args("127.0.0.1:0", &[])).expect("ok").max_in_flight, 32);
        assert_eq!(config(&no_grpc).expect("HTTP only").grpc_addr, None);
        let missing = ServeArgs {
            tokens_file: Some(PathBuf::from("/nonexistent/mission-tokens")),
            ..args("127.0.0.1:0", &[])
        };
        assert!(matches!(Configs::of(&missing), Err(ServeError::Arguments(_))));
        // Every surface off loopback needs a token; one token serves all three.
        let open = ServeArgs {
            dashboard_addr: "0.0.0.0:0".parse().expect("addr"),
            ..args("127.0.0.1:0", &[])
        };
        let err = Configs::of(&open).err().expect("refused");
        assert!(err.to_string().contains("--dashboard-addr"), "{err}");
        let open = ServeArgs { mcp_addr: "0.0.0.0:0".parse().expect("addr"), ..open };
        assert!(Configs::of(&ServeArgs { no_dashboard: true, ..open.clone() }).is_err());
        let configs = Configs::of(&ServeArgs {
            tenant_token: vec![("acme-viewer-token-001".into(), "acme".into())],
            ..open
        })
        .expect("tokens");
        let tenants = |c: &Configs| {
            (
                c.dashboard.as_ref().map(|d| d.tokens[0].tenant.clone()),
                c.mcp.as_ref().map(|m| m.tokens[0].tenant.clone()),
            )
        };
        let acme = Some(Some("acme".to_owned()));
        assert_eq!(tenants(&configs), (acme.clone(), acme));
        let off = ServeArgs {
            no_otlp: true,
            no_dashboard: true,
            no_mcp: true,
            ..args("127.0.0.1:0", &[])
        };
        assert!(matches!(Configs::of(&off), Err(ServeError::Arguments(_))));
    }
}
