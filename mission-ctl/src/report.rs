//! `mission-ctl report`: what happened over a period, in Markdown, JSON or HTML
//! ([`mission_sdk::report`] builds and renders it).

use std::io::Write;

use mission_sdk::report::{build_report, html, write_markdown};
use mission_store::Store;

use crate::{Error, Window};

/// Output formats of `report`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown: headings and tables, for a chat message, an issue or a wiki.
    #[default]
    Markdown,
    /// One JSON object.
    Json,
    /// The Markdown report as a self-contained HTML page with a print stylesheet (print it, or
    /// save it as PDF, from a browser).
    Html,
}

/// `mission-ctl report`: volumes, latency per operation, error rate, cost per model, the
/// slowest threads, the recommendations and the most frequent errors over `window`, as
/// Markdown, JSON or HTML.
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_report(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    format: ReportFormat,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let report = build_report(store, window.from, window.to, tenant)?;
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        ReportFormat::Markdown => write_markdown(&report, out)?,
        ReportFormat::Html => out.write_all(html(&report).as_bytes())?,
    }
    Ok(())
}
