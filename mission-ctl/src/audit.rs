//! `audit verify`: recomputes the hash chain of a store's audit trail
//! ([`mission_sdk::audit`]), checks it against the anchors the data files recorded, and names
//! the first bad position; `erase`: erasure of a data subject over a store on disk, audited.

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
            "OK: {} in {}, head seq {} hash {}; {} in data files checked",
            plural(report.records as usize, "record"),
            plural(files, "file"),
            report.head.seq,
            report.head.hash,
            plural(report.anchors_checked as usize, "anchor"),
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

/// Erases the events of `store` whose attribute is `attribute` (`KEY=VALUE`), in `tenant`'s
/// data or every tenant's, and appends the erasure to the store's audit trail as `actor`.
/// Writes what was done (`--json`: the [`ErasureReport`](mission_sdk::ErasureReport)).
///
/// # Errors
/// An attribute not written `KEY=VALUE` (exit code 2); the store cannot be rewritten or the
/// audit trail cannot be opened or appended to (exit code 3).
pub fn run_erase(
    store: &Path,
    attribute: &str,
    tenant: Option<&str>,
    actor: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let Some((key, value)) =
        attribute.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty())
    else {
        return Err(crate::invalid("--attribute", format!("{attribute:?}: expected KEY=VALUE")));
    };
    let log = mission_sdk::AuditLog::open(store)?;
    let report =
        mission_sdk::erasure::erase_subject(Some(store), Some(&log), actor, tenant, key, value)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "erased {} events with {key} = (sha256 {}) in {}; audit record {}",
            report.events,
            report.value_sha256,
            tenant.unwrap_or("every tenant"),
            report.audit_seq.map_or_else(|| "-".to_owned(), |s| s.to_string())
        )?;
    }
    Ok(true)
}
