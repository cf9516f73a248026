//! The `mission-ctl` binary: parses arguments and runs a command of [`mission_ctl`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mission_ctl::{QueryArgs, parse_duration};
use mission_store::{GroupBy, Store};

/// Mission Control from the command line, over a store on disk.
#[derive(Parser)]
#[command(
    name = "mission-ctl",
    version,
    after_help = "Examples:
  mission-ctl threads ./mission-data --agent support-bot --limit 20
  mission-ctl thread ./mission-data 4bf92f3577b34da6a3ce929d0e0e4736
  mission-ctl stats ./mission-data --since 1h --group-by operation,model
  mission-ctl query ./mission-data --kind tool_call --status error --format csv
  mission-ctl doctor ./mission-data
  mission-ctl mcp --store ./mission-data     # MCP server on stdio

Exit codes: 0 success, 1 problems found (doctor) or no such thread, 2 bad arguments, 3 the store
could not be read."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One summary row per thread (agent, start, duration, spans, tokens, cost, errors).
    Threads {
        /// The store's root directory.
        store: PathBuf,
        #[command(flatten)]
        filter: QueryArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One thread as a span tree with timings, tokens, cost, errors, logs and decisions.
    Thread {
        /// The store's root directory.
        store: PathBuf,
        /// The thread id (32 hex digits).
        id: String,
        /// Print JSON instead of a tree.
        #[arg(long)]
        json: bool,
    },
    /// Latency percentiles, error rate, throughput, tokens and cost per operation, model, agent or tenant.
    Stats {
        /// The store's root directory.
        store: PathBuf,
        /// The window, ending now.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        since: Duration,
        /// Group by these (comma-separated): operation, model, agent, tenant.
        #[arg(long, value_delimiter = ',', value_enum, default_value = "operation")]
        group_by: Vec<GroupArg>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Events matching filters, as a table, JSON or CSV.
    Query {
        /// The store's root directory.
        store: PathBuf,
        #[command(flatten)]
        filter: QueryArgs,
    },
    /// Serves the MCP server over stdio for a store (for desktop MCP clients).
    Mcp {
        /// The store's root directory.
        #[arg(long, default_value = "./mission-data")]
        store: PathBuf,
    },
    /// Checks a store: files, schema versions, leftovers of killed writers.
    Doctor {
        /// The store's root directory.
        store: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupArg {
    Operation,
    Model,
    Agent,
    Tenant,
}

impl From<GroupArg> for GroupBy {
    fn from(g: GroupArg) -> Self {
        match g {
            GroupArg::Operation => GroupBy::Operation,
            GroupArg::Model => GroupBy::Model,
            GroupArg::Agent => GroupBy::Agent,
            GroupArg::Tenant => GroupBy::Tenant,
        }
    }
}

fn open(root: &PathBuf) -> Result<Store, ExitCode> {
    if !root.exists() {
        eprintln!("error: no store at {}", root.display());
        return Err(ExitCode::from(3));
    }
    Store::open(root).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    })
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Mcp { store } = &cli.command {
        return serve_mcp(store);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Threads { store, filter, json } => open(store)
            .map(|s| mission_ctl::run_threads(&s, filter, *json, &mut out).map(|()| true)),
        Command::Thread { store, id, json } => {
            open(store).map(|s| mission_ctl::run_thread(&s, id, *json, &mut out))
        }
        Command::Stats { store, since, group_by, json } => {
            let groups: Vec<GroupBy> = group_by.iter().map(|g| (*g).into()).collect();
            open(store).map(|s| {
                mission_ctl::run_stats(&s, *since, &groups, *json, &mut out).map(|()| true)
            })
        }
        Command::Query { store, filter } => {
            open(store).map(|s| mission_ctl::run_query(&s, filter, &mut out).map(|()| true))
        }
        Command::Mcp { .. } => Ok(Ok(true)),
        Command::Doctor { store, json } => {
            open(store).map(|s| mission_ctl::run_doctor(&s, *json, &mut out).map(|r| r.healthy()))
        }
    };
    let _ = out.flush();
    match result {
        Err(code) => code,
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::from(1),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            // A bad filter or column is the caller's mistake (2), anything else the store's (3).
            match e.downcast_ref::<mission_store::Error>() {
                Some(mission_store::Error::Invalid { .. }) => ExitCode::from(2),
                _ => ExitCode::from(3),
            }
        }
    }
}
