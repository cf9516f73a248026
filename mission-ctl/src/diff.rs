//! `mission-ctl diff <store> <a> <b>`: two threads' steps aligned and compared, with where they
//! first diverge (the same comparison as the dashboard's `/api/diff` and the MCP tool
//! `compare_threads`).

use std::io::Write;

use mission_sdk::diff::{DiffError, ThreadDiff, diff_threads};
use mission_store::Store;

use crate::{Error, clean, invalid, write_table};

/// `mission-ctl diff`: prints the comparison of threads `a` and `b` (as JSON with `json`, else
/// a summary, the first divergence and one line per aligned step). Returns false when a
/// thread has no steps in the store (exit code 1).
///
/// # Errors
/// A malformed id (exit code 2), unreadable files, or a failed write.
pub fn run_diff(
    store: &Store,
    a: &str,
    b: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let diff = match diff_threads(store, a, b) {
        Ok(d) => d,
        Err(DiffError::BadId { which, given }) => {
            let what = if which == "a" { "thread id a" } else { "thread id b" };
            return Err(invalid(what, format!("not 32 lowercase hex digits: {given:?}")));
        }
        Err(e @ DiffError::NotFound { .. }) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "error": "not_found", "message": e.to_string() })
                )?;
            } else {
                writeln!(out, "{e}")?;
            }
            return Ok(false);
        }
        Err(DiffError::Store(e)) => return Err(Box::new(e)),
    };
    if json {
        writeln!(out, "{}", serde_json::to_string(&diff)?)?;
    } else {
        print_diff(&diff, out)?;
    }
    Ok(true)
}

fn print_diff(diff: &ThreadDiff, out: &mut dyn Write) -> Result<(), Error> {
    for (label, side) in [("a", &diff.a), ("b", &diff.b)] {
        writeln!(out, "{label}: {side}")?;
    }
    match &diff.diff.first_divergence {
        None => writeln!(out, "identical: {} aligned steps, no difference", diff.diff.pairs.len())?,
        Some(d) => writeln!(
            out,
            "first divergence: step {} ({}), {}: a={} b={} ({} of {} aligned steps differ)",
            d.step,
            clean(&d.name),
            d.field,
            d.a,
            d.b,
            diff.diff.differing,
            diff.diff.pairs.len()
        )?,
    }
    if diff.diff.truncated {
        writeln!(
            out,
            "(truncated: only the first {} steps of each thread are compared)",
            mission_sdk::diff::MAX_STEPS
        )?;
    }
    let header: Vec<String> =
        ["step", "a", "b", "differences"].iter().map(|s| (*s).to_owned()).collect();
    let side = |s: &Option<mission_sdk::diff::Step>| {
        s.as_ref().map_or_else(
            || "–".to_owned(),
            |s| {
                format!(
                    "{}{} {} {:.1}ms",
                    "  ".repeat(s.depth.min(8)),
                    s.kind,
                    clean(&s.name),
                    s.duration_ms
                )
            },
        )
    };
    let rows: Vec<Vec<String>> = diff
        .diff
        .pairs
        .iter()
        .map(|p| {
            let marker = if diff.diff.first_divergence.as_ref().is_some_and(|d| d.step == p.step) {
                "▶ "
            } else {
                ""
            };
            let diffs: Vec<String> = p
                .differences
                .iter()
                .map(|d| clean(&format!("{} {}→{}", d.field, d.a, d.b)).into_owned())
                .collect();
            vec![format!("{marker}{}", p.step), side(&p.a), side(&p.b), diffs.join(", ")]
        })
        .collect();
    write_table(out, &header, &rows)?;
    Ok(())
}
