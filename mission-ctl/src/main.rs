//! The `mission-ctl` binary: parses arguments and runs a command of [`mission_ctl`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mission_ctl::progress::{ClearingWriter, Progress};
use mission_ctl::{QueryArgs, ReportFormat, TailArgs, WindowArgs};
use mission_store::{GroupBy, Store};

/// Mission Control from the command line, over a store on disk or on object storage.
#[derive(Parser)]
#[command(
    name = "mission-ctl",
    version,
    after_help = "Examples:
  mission-ctl tail ./mission-data --level warn            # follow new events, like tail -f
  mission-ctl tail ./mission-data --lines 50 --no-follow --json
  mission-ctl threads ./mission-data --agent support-bot --limit 20
  mission-ctl thread ./mission-data 4bf92f3577b34da6a3ce929d0e0e4736
  mission-ctl stats ./mission-data --since 1h --group-by operation,model
  mission-ctl cost ./mission-data --since 7d --group-by model,user
  mission-ctl report ./mission-data --since 24h > report.md
  mission-ctl report ./mission-data --from 2025-03-01 --to 2025-03-08 --json
  mission-ctl query ./mission-data --kind tool_call --status error --format csv
  mission-ctl export ./mission-data --since 24h --format jsonl > threads.jsonl   # for eval tools
  mission-ctl sql 'SELECT gen_ai_request_model, sum(gen_ai_usage_cost) FROM llm_calls GROUP BY 1' --store ./mission-data
  mission-ctl doctor ./mission-data
  mission-ctl stats s3://bucket/mission-data --since 1h  # on S3: credentials from AWS_*
  mission-ctl doctor ./mission-data --recover  # rebuild what a killed writer left
  mission-ctl compact --store ./mission-data   # merge small files (fleets of writers)
  mission-ctl audit verify ./mission-data       # check the audit trail's hash chain
  mission-ctl pack export --out team.pack --directives slo.toml --compliance hipaa --store ./mission-data --sign team.key
  mission-ctl pack import team.pack --into ./shared --trust team.key.pub   # checked, then written
  mission-ctl mcp --store ./mission-data     # MCP server on stdio
  mission-ctl dashboard ./mission-data       # the dashboard on http://127.0.0.1:7878/
  mission-ctl serve --store ./mission-data   # OTLP receiver: HTTP on :4318, gRPC on :4317;
                                             # dashboard on :7878, MCP on http://127.0.0.1:8808/mcp

Times (--from, --to): RFC 3339 (2025-03-04T10:00:00Z), a date (UTC midnight) or nanoseconds
since the epoch. Durations (--since): 15m, 2h, 7d.

Exit codes: 0 success (also when the output is closed early, as with | head), 1 problems found
(doctor, audit verify, a pack that fails its digest or signature checks) or no such thread, 2 bad arguments, 3 the store could not be read,
4 files were unreadable and skipped, so the answer is incomplete (threads, thread, stats, cost,
report, query: a warning on stderr names them; --skip-unreadable accepts the partial answer
and exits 0)."
)]
struct Cli {
    /// Accept an answer computed without the files that cannot be read (they are still named
    /// on stderr) instead of exiting with code 4.
    #[arg(long, global = true)]
    skip_unreadable: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Follows new events as they land in the store, like `tail -f` (one line per event:
    /// time, kind, agent, thread, name, then duration and status or level and message).
    Tail {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        args: TailArgs,
    },
    /// One summary row per thread (agent, start, duration, spans, tokens, cost, errors).
    Threads {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        filter: QueryArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One thread as a span tree with timings, tokens, cost, errors, logs and decisions.
    Thread {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        /// The thread id (32 hex digits).
        id: String,
        /// Only this tenant's events of the thread (another tenant may continue a thread id).
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of a tree.
        #[arg(long)]
        json: bool,
    },
    /// Two threads (say an agent's good run and bad run) compared step by step: their spans
    /// aligned on kind and name, what differs (tool, arguments hash, model, tokens, latency,
    /// error) and where they first diverge. Exit code 1 when a thread has no steps.
    Diff {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        /// Thread A (32 hex digits).
        a: String,
        /// Thread B (32 hex digits).
        b: String,
        /// Only this tenant's events of the threads.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Latency percentiles, error rate, throughput, tokens and cost per operation, model,
    /// agent, tenant or user (over the last hour unless told otherwise).
    Stats {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Group by these (comma-separated): operation, model, agent, tenant, user.
        #[arg(long, value_delimiter = ',', value_enum, default_value = "operation")]
        group_by: Vec<GroupArg>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Tokens and cost of the LLM calls per model, agent, tenant or user, with a total (over the
    /// last 24 hours unless told otherwise).
    Cost {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Group by these (comma-separated): model, agent, tenant, user, operation.
        #[arg(long, value_delimiter = ',', value_enum, default_value = "model")]
        group_by: Vec<GroupArg>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A report for a period (the last 24 hours unless told otherwise): volumes, latency per
    /// operation, error rate, cost per model, the slowest threads, recommendations (prompt
    /// cache, model right-sizing, slow and failing tools, budget burn) and the most frequent
    /// errors.
    Report {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// Print JSON (same as --format json).
        #[arg(long)]
        json: bool,
    },
    /// Threads as JSON Lines (one thread per line with its spans, logs and scores: a dataset for
    /// evaluation tools) or CSV (one row per thread summary), newest first; the dashboard's
    /// exports. Exit code 1 when a bound cut the export short (a warning says so).
    Export {
        /// The store's root directory.
        store: PathBuf,
        #[command(flatten)]
        args: mission_ctl::ExportArgs,
    },
    /// The directives' run history (the last 24 hours unless told otherwise): each firing,
    /// scheduled firing, run by hand and retry, with who started it, its outcome and what each
    /// action did.
    Runs {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this directive's runs.
        #[arg(long)]
        directive: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The relationship graph (the last hour unless told otherwise): agents, tools, models,
    /// MCP servers, directives and policy rules, and who calls what, with calls, errors, cost
    /// and p95 per edge; a table of edges, JSON or Graphviz DOT.
    Graph {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Keep the busiest this many nodes (1-10000).
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Print JSON (the dashboard's /api/graph) instead of a table.
        #[arg(long, conflicts_with = "dot")]
        json: bool,
        /// Print Graphviz DOT instead of a table.
        #[arg(long)]
        dot: bool,
    },
    /// Incidents (the last 24 hours unless told otherwise): alarms of one tenant on one cause
    /// with their members, what resolved them and the analyser's narrative, each in its latest
    /// recorded state.
    Incidents {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Events matching filters, as a table, JSON or CSV.
    Query {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        #[command(flatten)]
        filter: QueryArgs,
    },
    /// Serves the MCP server over stdio for a store (for desktop MCP clients).
    Mcp {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        #[arg(long, default_value = "./mission-data")]
        store: PathBuf,
    },
    /// Serves the dashboard (threads, latency, cost, anomalies, logs in a browser) over a store,
    /// following new files as they land, until Ctrl-C.
    Dashboard {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        /// The address to serve on; a non-loopback address needs a token.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: std::net::SocketAddr,
        /// A bearer token that sees every tenant (16 characters or more); may be repeated.
        #[arg(long)]
        token: Vec<String>,
        /// A bearer token that sees one tenant only, written TOKEN:TENANT; may be repeated.
        #[arg(long, value_parser = mission_ctl::serve::parse_tenant_token)]
        tenant_token: Vec<(String, String)>,
    },
    /// Receives OTLP/HTTP traces, logs and metrics (protobuf or JSON, gzip) from any process
    /// and records them into a store, and serves the dashboard and the MCP server (streamable
    /// HTTP) over it, live, until Ctrl-C or SIGTERM (then writes what it received). Senders set
    /// OTEL_EXPORTER_OTLP_ENDPOINT to the URL it prints.
    Serve {
        #[command(flatten)]
        args: mission_ctl::serve::ServeArgs,
    },
    /// Checks a store: files, schema versions, leftovers of killed writers (temporary files and
    /// write-ahead log segments, with the events recovery will add), the quarantine.
    /// Merges each partition's small files into larger ones, atomically while agents write
    /// and readers read (a reader never sees a row twice or misses one); keeps the files'
    /// audit anchors and accounting. `serve` also does it on a schedule (--compact-every).
    Compact {
        /// The store's root directory.
        #[arg(long)]
        store: PathBuf,
        #[command(flatten)]
        args: mission_ctl::compact::CompactArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    Doctor {
        /// The store's root: a directory, or a URL on object storage (`s3://bucket/prefix`,
        /// credentials from the AWS_* environment).
        store: PathBuf,
        /// First recover what writers that are no longer running left behind (rebuild their
        /// files from the write-ahead log, exactly once; quarantine what cannot be recovered).
        /// Safe beside running writers: their files are left alone.
        #[arg(long)]
        recover: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Erases a data subject's events: rewrites the files holding events whose attribute KEY
    /// equals VALUE without them, and appends the erasure (with the SHA-256 of the value, not
    /// the value) to the audit trail. Run it while no agent writes the store; inside an agent,
    /// `erase_subject` (Rust, Python or MCP) does it live.
    Erase {
        /// The store's root directory.
        store: PathBuf,
        /// The subject, as KEY=VALUE (e.g. `user.id=u-42`).
        #[arg(long)]
        attribute: String,
        /// Only this tenant's data.
        #[arg(long)]
        tenant: Option<String>,
        /// Who asked, as recorded in the audit trail.
        #[arg(long, default_value = "mission-ctl")]
        actor: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read-only SQL over the store (Apache DataFusion): the table `events`, with the
    /// partitions `tenant`, `date` and `hour` as columns, and the views `spans`, `llm_calls`,
    /// `tool_calls`, `logs`, `metrics`, `decisions`, `anomalies`, `scores` and `threads`.
    #[cfg(feature = "sql")]
    Sql {
        #[command(flatten)]
        args: mission_ctl::sql::SqlArgs,
    },
    /// Sends a local store's finalized files to object storage (`--to s3://bucket/prefix`),
    /// each exactly once: deleted locally once the bucket has it; while the bucket is
    /// unreachable the files wait (at most --max-spill-mb; past it the oldest are dropped,
    /// counted). Exits 1 when something could not be sent (it stays for the next run).
    #[cfg(feature = "s3")]
    Upload {
        #[command(flatten)]
        args: mission_ctl::upload::UploadArgs,
    },
    /// Shares what was learned: directives, compliance packs, a price table and the anomaly
    /// models' learned baselines as one versioned file with a SHA-256 manifest and an optional
    /// ed25519 signature. `import` checks every digest (and the signature, against --trust)
    /// and reads every entry back before it writes anything; a failed check writes nothing
    /// and exits 1.
    Pack {
        #[command(subcommand)]
        command: PackCommand,
    },
    /// An operator's writes to a running agent, through its dashboard (`serve_dashboard`):
    /// run a directive by hand, approve or reject a proposed remedy, pause, resume or cancel a
    /// thread. Needs an operator's or admin's token (`--token` or MISSION_TOKEN). Exit 1 when
    /// the agent refuses.
    Control {
        /// The agent's dashboard, e.g. `http://127.0.0.1:7878`.
        url: String,
        /// The bearer token (default: the MISSION_TOKEN environment variable).
        #[arg(long)]
        token: Option<String>,
        #[command(subcommand)]
        command: mission_ctl::control::ControlCommand,
    },
    /// The audit trail of security-relevant events (`<store>/audit/`).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recomputes the hash chain: prints OK with the record count and head hash, or the kind
    /// and position of the first problem (edited, missing or reordered record, broken link,
    /// truncated line) and exits with 1.
    Verify {
        /// The store's root directory.
        store: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PackCommand {
    /// Writes a pack of the files named (directive files, compliance packs, a price table) and
    /// the learned model baseline of a store (`--store`, its `models/state.json`) or a state
    /// file (`--baseline`); `--tenant` keeps that tenant's baselines only; `--sign KEYFILE`
    /// signs the manifest.
    Export {
        #[command(flatten)]
        args: mission_ctl::pack::ExportArgs,
    },
    /// Checks a pack (format version, every entry's SHA-256 and size, the signature; with
    /// --trust a signature by one of those keys is required) and writes its entries under
    /// --into, then prints how an agent uses them (MISSION_DIRECTIVES, MISSION_COMPLIANCE,
    /// MISSION_PRICES_FILE, MISSION_MODEL_BASELINE). `--tenant` imports that tenant's
    /// baselines only.
    Import {
        #[command(flatten)]
        args: mission_ctl::pack::ImportArgs,
    },
    /// Makes an ed25519 key pair for `export --sign` (secret key file, mode 0600) and
    /// `import --trust` (`<KEYFILE>.pub`, also printed).
    Keygen {
        #[command(flatten)]
        args: mission_ctl::pack::KeygenArgs,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupArg {
    Operation,
    Model,
    Agent,
    Tenant,
    User,
}

impl From<GroupArg> for GroupBy {
    fn from(g: GroupArg) -> Self {
        match g {
            GroupArg::Operation => GroupBy::Operation,
            GroupArg::Model => GroupBy::Model,
            GroupArg::Agent => GroupBy::Agent,
            GroupArg::Tenant => GroupBy::Tenant,
            GroupArg::User => GroupBy::User,
        }
    }
}

fn groups(args: &[GroupArg]) -> Vec<GroupBy> {
    args.iter().map(|g| (*g).into()).collect()
}

/// The store at `root`, scoped to `tenant` when one is given: a command with `--tenant` then
/// reads that tenant's partitions only, whatever else it is asked.
fn open(root: &PathBuf, tenant: Option<&str>) -> Result<Store, ExitCode> {
    if !is_url(root) && !root.exists() {
        eprintln!("error: no store at {}", root.display());
        return Err(ExitCode::from(3));
    }
    Store::open_scoped(root, tenant).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    })
}

/// Whether a store argument is a URL (`s3://…`) rather than a directory.
fn is_url(root: &std::path::Path) -> bool {
    mission_store::is_url_root(root)
}

fn serve_mcp(store: &std::path::Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(mission_sdk::mcp::serve_stdio(store)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

/// `mission-ctl serve`: the OTLP receiver, the dashboard and the MCP server over a store until
/// Ctrl-C or SIGTERM.
fn serve_otlp(args: &mission_ctl::serve::ServeArgs) -> ExitCode {
    let (stop, stopped) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop.send(());
    }) {
        eprintln!("error: cannot handle Ctrl-C and SIGTERM: {e}");
        return ExitCode::from(3);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match mission_ctl::serve::run_serve(args, &stopped, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Serves the dashboard over `store` until the process is interrupted.
fn serve_dashboard(
    store: &std::path::Path,
    addr: std::net::SocketAddr,
    tokens: &[String],
    tenant_tokens: &[(String, String)],
) -> ExitCode {
    if is_url(store) {
        // A URL store is checked by opening it: a bad URL or a refused key says so now.
        if let Err(code) = open(&store.to_path_buf(), None) {
            return code;
        }
    } else if !store.exists() {
        eprintln!("error: no store at {}", store.display());
        return ExitCode::from(3);
    }
    let mut config = mission_sdk::DashboardConfig::new(addr);
    for token in tokens {
        config = config.with_token(token);
    }
    for (token, tenant) in tenant_tokens {
        config = config.with_tenant_token(token, tenant);
    }
    let secured = !config.tokens.is_empty();
    match mission_sdk::dashboard::serve_store(store, config) {
        Ok(server) => {
            println!("Mission Control dashboard on {} (Ctrl-C to stop)", server.url());
            if secured {
                println!("The page asks for your token once per browser tab.");
            }
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// What a scan does about files it had to skip.
#[derive(Clone, Copy)]
enum Unreadable {
    /// Warn on stderr and exit with [`mission_ctl::EXIT_UNREADABLE`].
    Fail,
    /// Warn on stderr only (`--skip-unreadable`).
    Warn,
    /// The command reports them itself (`doctor`).
    Report,
}

impl Unreadable {
    fn from_flag(skip_unreadable: bool) -> Self {
        if skip_unreadable { Unreadable::Warn } else { Unreadable::Fail }
    }
}

/// Runs a command that scans the store (as `tenant` may see it, when given), with a progress bar on stderr when it is a terminal;
/// then warns about the files it skipped, if any.
fn scan(
    root: &PathBuf,
    tenant: Option<&str>,
    unreadable: Unreadable,
    run: impl FnOnce(&Store, &mut dyn Write) -> Result<bool, mission_ctl::Error>,
) -> ExitCode {
    let store = match open(root, tenant) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (store, progress) = Progress::attach(store);
    let stdout = std::io::stdout();
    let mut out = ClearingWriter::new(stdout.lock(), progress.clone());
    let result = run(&store, &mut out).and_then(|ok| {
        out.flush()?;
        Ok(ok)
    });
    if let Some(p) = progress {
        p.finish();
    }
    let skipped = store.skipped_files();
    if result.is_ok() && !skipped.is_empty() && !matches!(unreadable, Unreadable::Report) {
        eprint!("{}", mission_ctl::unreadable_warning(&skipped));
        if matches!(unreadable, Unreadable::Fail) {
            eprintln!("(exit code 4; pass --skip-unreadable to accept the partial answer)");
            return ExitCode::from(mission_ctl::EXIT_UNREADABLE);
        }
    }
    finish(result)
}

fn finish(result: Result<bool, mission_ctl::Error>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            let code = mission_ctl::exit_code(&e);
            // 0: the reader went away (`| head`); there is nobody to tell.
            if code != 0 {
                eprintln!("error: {e}");
            }
            ExitCode::from(code)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let checked = Unreadable::from_flag(cli.skip_unreadable);
    if let Command::Mcp { store } = &cli.command {
        return serve_mcp(store);
    }
    match &cli.command {
        Command::Mcp { .. } => ExitCode::SUCCESS,
        Command::Serve { args } => serve_otlp(args),
        Command::Dashboard { store, addr, token, tenant_token } => {
            serve_dashboard(store, *addr, token, tenant_token)
        }
        Command::Tail { store, args } => {
            if !is_url(store) && !store.exists() {
                eprintln!("error: no store at {}", store.display());
                return ExitCode::from(3);
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::run_tail(store, args, &mut out).map(|()| true))
        }
        Command::Threads { store, filter, json } => {
            scan(store, filter.tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_threads(s, filter, *json, out).map(|()| true)
            })
        }
        Command::Thread { store, id, tenant, json } => {
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_thread(s, id, *json, out)
            })
        }
        Command::Diff { store, a, b, tenant, json } => {
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_diff(s, a, b, *json, out)
            })
        }
        Command::Stats { store, window, tenant, group_by, json } => {
            let window = match window.resolve(HOUR) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_stats(s, window, tenant.as_deref(), &groups(group_by), *json, out)
                    .map(|()| true)
            })
        }
        Command::Cost { store, window, tenant, group_by, json } => {
            let window = match window.resolve(DAY) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_cost(s, window, tenant.as_deref(), &groups(group_by), *json, out)
                    .map(|()| true)
            })
        }
        Command::Runs { store, window, tenant, directive, json } => {
            let window = match window.resolve(DAY) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            scan(store, tenant.as_deref(), checked, |s, out| {
                let (tenant, directive) = (tenant.as_deref(), directive.as_deref());
                mission_ctl::run_runs(s, window, tenant, directive, *json, out).map(|()| true)
            })
        }
        Command::Graph { store, window, tenant, limit, json, dot } => {
            let window = match window.resolve(HOUR) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            let format = match (json, dot) {
                (true, _) => mission_ctl::GraphFormat::Json,
                (_, true) => mission_ctl::GraphFormat::Dot,
                _ => mission_ctl::GraphFormat::Table,
            };
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_graph(s, window, *limit, format, out).map(|()| true)
            })
        }
        Command::Incidents { store, window, tenant, json } => {
            let window = match window.resolve(DAY) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_incidents(s, window, tenant.as_deref(), *json, out).map(|()| true)
            })
        }
        Command::Export { store, args } => {
            if !store.exists() {
                eprintln!("error: no store at {}", store.display());
                return ExitCode::from(3);
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::run_export(store, args, &mut out))
        }
        Command::Report { store, window, tenant, format, json } => {
            let window = match window.resolve(DAY) {
                Ok(w) => w,
                Err(e) => return finish(Err(e)),
            };
            let format = if *json { ReportFormat::Json } else { *format };
            scan(store, tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_report(s, window, tenant.as_deref(), format, out).map(|()| true)
            })
        }
        #[cfg(feature = "sql")]
        Command::Sql { args } => {
            scan(&PathBuf::from(&args.store), args.tenant.as_deref(), checked, |s, out| {
                mission_ctl::sql::run_sql(s, args, out).map(|()| true)
            })
        }
        #[cfg(feature = "s3")]
        Command::Upload { args } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::upload::run_upload(args, &mut out))
        }
        Command::Query { store, filter } => {
            scan(store, filter.tenant.as_deref(), checked, |s, out| {
                mission_ctl::run_query(s, filter, out).map(|()| true)
            })
        }
        Command::Compact { store, args, json } => {
            if !store.exists() {
                eprintln!("error: no store at {}", store.display());
                return ExitCode::from(3);
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::compact::run_compact(store, args, *json, &mut out).map(|_| true))
        }
        Command::Doctor { store, json, recover } => {
            if *recover {
                let mut opened = match open(store, None) {
                    Ok(s) => s,
                    Err(code) => return code,
                };
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                if let Err(e) = mission_ctl::run_recover(&mut opened, *json, &mut out) {
                    return finish(Err(e));
                }
            }
            scan(store, None, Unreadable::Report, |s, out| {
                mission_ctl::run_doctor(s, *json, out).map(|r| r.healthy())
            })
        }
        Command::Erase { store, attribute, tenant, actor, json } => {
            if !store.exists() {
                eprintln!("error: no store at {}", store.display());
                return ExitCode::from(3);
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::run_erase(
                store,
                attribute,
                tenant.as_deref(),
                actor,
                *json,
                &mut out,
            ))
        }
        Command::Control { url, token, command } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let token = token.clone().or_else(|| std::env::var("MISSION_TOKEN").ok());
            let token = token.unwrap_or_default();
            match mission_ctl::control::run_control(url, &token, command, &mut out) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(mission_ctl::exit_code(&e))
                }
            }
        }
        Command::Pack { command } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let result = match command {
                PackCommand::Export { args } => {
                    mission_ctl::pack::run_pack_export(args, &mut out).map(drop)
                }
                PackCommand::Import { args } => {
                    mission_ctl::pack::run_pack_import(args, &mut out).map(drop)
                }
                PackCommand::Keygen { args } => {
                    mission_ctl::pack::run_pack_keygen(args, &mut out).map(drop)
                }
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    if matches!(command, PackCommand::Import { .. }) && e.exit_code() == 1 {
                        eprintln!("nothing was imported");
                    }
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Audit { command: AuditCommand::Verify { store, json } } => {
            if !store.exists() {
                eprintln!("error: no store at {}", store.display());
                return ExitCode::from(3);
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            finish(mission_ctl::run_audit_verify(store, *json, &mut out))
        }
    }
}
