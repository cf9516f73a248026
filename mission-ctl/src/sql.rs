//! `mission-ctl sql`: read-only SQL over a store, with Apache DataFusion (feature `sql`, on by
//! default). The tables and views are those of [`mission_store::sql`].

use std::io::Write;
use std::time::Duration;

use mission_store::Store;
use mission_store::sql::{SqlEngine, SqlLimits};

use crate::{Error, Format};

/// Arguments of `mission-ctl sql`.
#[derive(Clone, Debug, clap::Args)]
pub struct SqlArgs {
    /// The query: read-only SQL over the table `events` and the views `spans`, `llm_calls`,
    /// `tool_calls`, `logs`, `metrics`, `decisions`, `anomalies`, `scores` and `threads`.
    pub query: String,
    /// The store: its root directory (or, with the `s3` feature, an `s3://bucket/prefix` URL).
    #[arg(long)]
    pub store: String,
    /// Only this tenant's partitions are readable (the query cannot reach any other).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Rows printed at most (1 to 10,000,000); a longer answer is cut and says so on stderr.
    #[arg(long, default_value_t = 10_000)]
    pub max_rows: usize,
    /// Seconds the query may run (1 to 3,600).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// Runs `args.query` over `store` and writes the answer to `out` in `args.format`; a note on
/// stderr says when the answer was cut at `--max-rows`.
///
/// # Errors
/// Invalid or forbidden SQL and out-of-range limits (exit code 2), a query that fails or runs
/// past `--timeout` (exit code 3), or a failed write.
pub fn run_sql(store: &Store, args: &SqlArgs, out: &mut dyn Write) -> Result<(), Error> {
    let limits = SqlLimits::default()
        .with_max_rows(args.max_rows)?
        .with_timeout(Duration::from_secs(args.timeout))?;
    let engine = SqlEngine::new(store.clone(), limits)?;
    let answer = engine.query(&args.query)?;
    match args.format {
        Format::Table => writeln!(out, "{}", answer.to_table()?)?,
        Format::Csv => write!(out, "{}", answer.to_csv()?)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &answer.to_json_rows()?)?;
            writeln!(out)?;
        }
    }
    if answer.truncated {
        eprintln!(
            "note: the answer was cut at {} rows (--max-rows); more rows matched",
            args.max_rows
        );
    }
    Ok(())
}
