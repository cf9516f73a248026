//! `mission-ctl export`: a store's threads as JSON Lines (one thread per line with its spans,
//! logs and scores: a dataset for evaluation tools) or CSV (one row per thread summary), the
//! same text as the dashboard's `/api/export/threads.jsonl` and `/api/export/threads.csv`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mission_sdk::dashboard::{ExportFormat, export_store};

use crate::{Error, invalid};

/// Output formats of `export`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// JSON Lines: one thread per line with its spans, logs and scores.
    #[default]
    Jsonl,
    /// CSV: a header line, then one line per thread summary.
    Csv,
}

/// The arguments of `mission-ctl export`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Jsonl)]
    pub format: ExportFormatArg,
    /// Only threads with an event in this last period (e.g. 15m, 2h, 7d; at most 30 days)
    /// [default: the whole store].
    #[arg(long, value_parser = crate::parse_duration)]
    pub since: Option<Duration>,
    /// Only this agent's threads.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The most threads, newest first (1..=1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub limit: u64,
}

/// The longest `--since`: 30 days, as the dashboard's `minutes`.
const MAX_SINCE_MINUTES: u64 = 43_200;

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes the export of the store at `root` to `out`; returns whether it is complete (a bound
/// cut it short: a warning goes to stderr and the exit code is 1).
///
/// # Errors
/// An invalid-argument error for a parameter out of range, else the store's error.
pub fn run_export(root: &Path, args: &ExportArgs, out: &mut dyn Write) -> Result<bool, Error> {
    let mut query = format!("limit={}", args.limit);
    if let Some(since) = args.since {
        let minutes = since.as_secs().div_ceil(60).max(1);
        if minutes > MAX_SINCE_MINUTES {
            return Err(invalid(
                "--since",
                format!("at most 30 days, not {}", crate::window::human(since)),
            ));
        }
        query.push_str(&format!("&minutes={minutes}"));
    }
    if let Some(agent) = &args.agent {
        query.push_str(&format!("&agent={}", percent_encode(agent)));
    }
    let format = match args.format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Csv => ExportFormat::Csv,
    };
    let export = export_store(root, args.tenant.as_deref(), format, &query).map_err(|e| {
        if e.kind == "bad_request" { invalid("export", e.message) } else { Error::from(e.message) }
    })?;
    out.write_all(export.body.as_bytes())?;
    if export.truncated {
        eprintln!(
            "warning: the export is truncated (more threads matched than --limit, or a thread \
             held more rows than an export keeps); narrow it with --since, --agent or --tenant"
        );
    }
    Ok(!export.truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_encoded() {
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
