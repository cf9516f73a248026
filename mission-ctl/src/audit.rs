//! `audit verify`: recomputes the hash chain of a store's audit trail
//! ([`mission_sdk::audit`]) and names the first bad position.

use std::io::Write;
use std::path::Path;

use mission_sdk::audit::{self, AuditReport};

use crate::Error;

/// Verifies the audit trail under `store` and writes the result: `OK` with the record count
/// and the head hash, or the kind and position of the first problem (`--json`: one object
/// with `ok`, `records`, `head`, `files` and `problem`). Returns whether the chain is intact.
///
/// # Errors
/// The store has no audit log, or a file cannot be read (exit code 3); writing fails.
pub fn run_audit_verify(store: &Path, json: bool, out: &mut dyn Write) -> Result<bool, Error> {
    let report = audit::verify(store)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&JsonReport::from(&report))?)?;
    } else {
        write_text(&report, out)?;
    }
    Ok(report.is_ok())
}

#[derive(serde::Serialize)]
struct JsonReport<'r> {
    ok: bool,
    #[serde(flatten)]
    report: &'r AuditReport,
}

impl<'r> From<&'r AuditReport> for JsonReport<'r> {
    fn from(report: &'r AuditReport) -> Self {
        Self { ok: report.is_ok(), report }
    }
}

fn write_text(report: &AuditReport, out: &mut dyn Write) -> Result<(), Error> {
    let files = report.files.len();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match &report.problem {
        None => writeln!(
            out,
            "OK: {} in {}, head seq {} hash {}",
            plural(report.records as usize, "record"),
            plural(files, "file"),
            report.head.seq,
            report.head.hash
        )?,
        Some(p) => {
            writeln!(out, "FAILED: {p}")?;
            writeln!(
                out,
                "  {} verified before it; last good seq {} hash {}",
                plural(report.records as usize, "record"),
                report.head.seq,
                report.head.hash
            )?;
        }
    }
    Ok(())
}
