//! `GET /api/audit`: the store's audit trail (`mission_govern::audit`), filtered, newest
//! first, with each entry's severity and whether it is suspicious, and the chain's
//! verification status. A tenant-scoped principal sees its tenant's records only, numbered
//! within its tenant (`n`), without the global `seq` or the previous record's hash (which
//! would tell it how much, and what, other tenants did).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use axum::http::Uri;
use mission_govern::audit::{self, AuditError, AuditRecord, kind};
use serde_json::{Value, json};

use super::api::Params;
use super::{ApiError, Shared};

/// The route.
pub(crate) const ROUTE: &str = "/api/audit";
/// Most entries one answer returns.
const MAX_LIMIT: u64 = 5_000;
/// Most lines read (past it the answer says `truncated`).
const MAX_LINES: u64 = 5_000_000;
/// Longest line read.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Severities, lowest first.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// A record's escalation severity (a permission denial a thread's lineage narrowed), if any.
fn escalation(r: &AuditRecord) -> Option<&str> {
    r.detail.get("escalation").and_then(Value::as_str)
}

/// A record's severity: `critical` for erasures and error or critical escalations,
/// `warning` for denials, policy, directive and administrative changes and used-up budgets,
/// `info` for the rest.
fn severity(r: &AuditRecord) -> &'static str {
    match (r.kind.as_str(), escalation(r)) {
        (_, Some("critical" | "error")) | (kind::ERASURE, _) => "critical",
        (
            kind::PERMISSION_DENIED
            | kind::POLICY_CHANGE
            | kind::DIRECTIVE_CHANGE
            | kind::ADMIN_ACTION
            | kind::BUDGET_EXCEEDED,
            _,
        )
        | (_, Some(_)) => "warning",
        _ => "info",
    }
}

/// Why a record deserves a look (denials, escalations, erasures, policy changes), if it does.
fn suspicious(r: &AuditRecord) -> Option<&'static str> {
    if escalation(r).is_some() {
        return Some("escalation");
    }
    match r.kind.as_str() {
        kind::PERMISSION_DENIED => Some("denial"),
        kind::ERASURE => Some("erasure"),
        kind::POLICY_CHANGE => Some("policy change"),
        _ => None,
    }
}

/// `YYYY-MM-DD` (UTC midnight; `end`: the next midnight, so the day is included) or
/// milliseconds since the epoch, as nanoseconds.
fn parse_time(name: &str, text: &str, end: bool) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{name} must be a date (YYYY-MM-DD) or milliseconds since the epoch, not {:?}",
            text.chars().take(40).collect::<String>()
        ))
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = text.parse().map_err(|_| bad())?;
        return ms.checked_mul(1_000_000).ok_or_else(bad);
    }
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts[..] else { return Err(bad()) };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<i64>(), d.parse::<i64>()) else {
        return Err(bad());
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=month_days).contains(&d) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 + i64::from(end);
    // Past 2554 the nanoseconds no longer fit in a u64: refused, as any other bad date.
    u64::try_from(days).ok().and_then(|d| d.checked_mul(86_400 * 1_000_000_000)).ok_or_else(bad)
}

/// `GET /api/audit?type=&actor=&severity=&from=&to=&limit=`.
pub(crate) fn audit(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = Params::parse(uri.query());
    let want_kind = p.get("type");
    let actor = p.get("actor").map(str::to_lowercase);
    let min_severity = match p.get("severity") {
        None => 0,
        Some(s) => SEVERITIES.iter().position(|x| *x == s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "severity must be info, warning or critical, not {:?}",
                s.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let from = p.get("from").map(|t| parse_time("from", t, false)).transpose()?;
    let to = p.get("to").map(|t| parse_time("to", t, true)).transpose()?;
    let limit = p.limit(500, MAX_LIMIT)?;
    let empty = |available: bool| {
        json!({"available": available, "tenant": scope, "entries": [], "total": 0,
               "truncated": false, "chain": null})
    };
    let Some(root) = &shared.root else { return Ok(empty(false)) };
    let files = match audit::files(root) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) | Err(AuditError::NotFound { .. }) => return Ok(empty(false)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let report = audit::verify(root).map_err(ApiError::internal)?;
    let broken_seq = report.problem.as_ref().and_then(|p| p.seq);
    let mut kept: VecDeque<Value> = VecDeque::new();
    let (mut total, mut lines, mut unreadable, mut truncated) = (0u64, 0u64, 0u64, false);
    // The tenant's own numbering (as `AuditLog::tenant_seq`), and where the chain broke in it.
    let (mut n, mut broken_at) = (0u64, None);
    let mut line = Vec::new();
    'files: for path in &files {
        let file = std::fs::File::open(path).map_err(ApiError::internal)?;
        let mut reader = BufReader::new(file);
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut line)
                .map_err(ApiError::internal)?;
            if read == 0 {
                break;
            }
            lines += 1;
            if lines > MAX_LINES {
                truncated = true;
                break 'files;
            }
            let Ok(r) = serde_json::from_slice::<AuditRecord>(line.trim_ascii_end()) else {
                unreadable += 1;
                continue;
            };
            if scope.is_some_and(|s| r.tenant != s) {
                continue;
            }
            n += 1;
            let broken = broken_seq == Some(r.seq);
            if broken {
                broken_at = Some(if scope.is_some() { n } else { r.seq });
            }
            let sev = severity(&r);
            let keep = want_kind.is_none_or(|k| r.kind == k)
                && actor.as_deref().is_none_or(|a| r.actor.to_lowercase().contains(a))
                && SEVERITIES.iter().position(|x| *x == sev).unwrap_or(0) >= min_severity
                && from.is_none_or(|f| r.time_ns >= f)
                && to.is_none_or(|t| r.time_ns < t);
            if !keep {
                continue;
            }
            total += 1;
            let verified = r.seq <= report.head.seq && !broken;
            let mut entry = json!({
                "n": n,
                "time_ns": r.time_ns,
                "kind": r.kind,
                "actor": r.actor,
                "tenant": r.tenant,
                "severity": sev,
                "suspicious": suspicious(&r),
                "detail": r.detail,
                "hash": r.hash,
                "verified": verified,
                "broken": broken,
            });
            if scope.is_none()
                && let Some(object) = entry.as_object_mut()
            {
                object.insert("seq".into(), r.seq.into());
                object.insert("prev_hash".into(), r.prev_hash.into());
            }
            kept.push_back(entry);
            if kept.len() > limit {
                kept.pop_front();
            }
        }
    }
    let chain = match &report.problem {
        // The record count is every tenant's: a tenant is told its own entries (`total`) only.
        None if scope.is_some() => {
            json!({"ok": true, "records": null, "broken_at": null, "problem": null})
        }
        None => json!({"ok": true, "records": report.records, "broken_at": null, "problem": null}),
        // A tenant is told where in its own records the chain broke (when it broke at one of
        // them), never another tenant's position, file or hashes.
        Some(problem) if scope.is_some() => json!({
            "ok": false, "records": null, "broken_at": broken_at,
            "problem": problem.kind.as_str(),
            "message": format!("the audit chain fails verification: {}", problem.kind),
        }),
        Some(problem) => json!({
            "ok": false, "records": report.records, "broken_at": problem.seq,
            "problem": problem.kind.as_str(), "message": problem.to_string(),
        }),
    };
    let entries: Vec<Value> = kept.into_iter().rev().collect();
    Ok(json!({
        "available": true,
        "tenant": scope,
        "entries": entries,
        "total": total,
        "truncated": truncated || total > limit as u64,
        // Unreadable lines belong to no known tenant: counted for an every-tenant token only.
        "unreadable_lines": if scope.is_some() { Value::Null } else { json!(unreadable) },
        "chain": chain,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn shared(root: &std::path::Path) -> Shared {
        Shared {
            mode: super::super::Mode::Store,
            root: Some(root.to_path_buf()),
            feed: Arc::new(super::super::Feed::new(false)),
            live: None,
            last_flush: Mutex::new(None),
            stop: tokio::sync::watch::channel(false).1,
        }
    }

    fn ask(s: &Shared, scope: Option<&str>, query: &str) -> Value {
        let uri: Uri = format!("/api/audit?{query}").parse().expect("uri");
        audit(s, scope, &uri).unwrap_or_else(|e| panic!("{}", e.message))
    }

    /// Two tenants' records in one chain; a tenant sees its own, numbered within its tenant,
    /// and of a chain broken at the other tenant's record only that it is broken.
    #[test]
    fn a_tenant_sees_its_records_and_where_its_own_chain_broke() {
        let root = std::env::temp_dir().join(format!("mission-audit-route-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let log = audit::AuditLog::open(&root).expect("log");
        for (tenant, k) in [
            ("acme", kind::PERMISSION_DENIED),
            ("globex", kind::DIRECTIVE_RUN),
            ("acme", kind::DIRECTIVE_RUN),
            ("globex", kind::ERASURE),
            ("acme", kind::POLICY_CHANGE),
        ] {
            log.append(k, &format!("agent:{tenant}-bot"), tenant, json!({"secret": tenant}))
                .expect("append");
        }
        drop(log);
        let s = shared(&root);
        let all = ask(&s, None, "");
        assert_eq!(all["chain"]["ok"], true, "{all}");
        assert_eq!(all["total"], 5);
        let acme = ask(&s, Some("acme"), "");
        assert_eq!(acme["total"], 3, "{acme}");
        let entries = acme["entries"].as_array().expect("entries");
        // Newest first, numbered 3, 2, 1 within acme; no global seq, no previous hash.
        let n: Vec<u64> = entries.iter().map(|e| e["n"].as_u64().expect("n")).collect();
        assert_eq!(n, [3, 2, 1]);
        assert!(entries.iter().all(|e| e.get("seq").is_none() && e.get("prev_hash").is_none()));
        assert!(!acme.to_string().contains("globex"), "{acme}");
        assert_eq!(entries[2]["suspicious"], "denial");
        assert_eq!(entries[0]["suspicious"], "policy change");
        // Filters: type, actor, severity.
        assert_eq!(ask(&s, Some("acme"), "type=directive_run")["total"], 1);
        assert_eq!(ask(&s, None, "actor=GLOBEX")["total"], 2);
        assert_eq!(ask(&s, None, "severity=critical")["total"], 1, "the erasure");
        assert_eq!(ask(&s, None, "severity=warning")["total"], 3);
        assert_eq!(ask(&s, None, "limit=2")["truncated"], true);

        // Edit globex's erasure (seq 4): acme is told the chain is broken, not where.
        let file = root.join(audit::AUDIT_DIR).join(audit::ACTIVE_FILE);
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let edited = lines[3].replace("\"secret\":\"globex\"", "\"secret\":\"tampered\"");
        let text = [&lines[..3], &[edited.as_str()], &lines[4..]].concat().join("\n") + "\n";
        std::fs::write(&file, text).expect("write");
        let all = ask(&s, None, "");
        assert_eq!(
            (all["chain"]["ok"].clone(), all["chain"]["broken_at"].clone()),
            (json!(false), json!(4))
        );
        let acme = ask(&s, Some("acme"), "");
        assert_eq!(acme["chain"]["ok"], false);
        assert_eq!(acme["chain"]["broken_at"], Value::Null, "{acme}");
        assert!(!acme.to_string().contains("globex") && !acme.to_string().contains("tampered"));
        // Acme's entries after the break are no longer verified.
        let verified: Vec<bool> = acme["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["verified"] == true)
            .collect();
        assert_eq!(verified, [false, true, true]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn dates_and_milliseconds_parse() {
        assert_eq!(parse_time("from", "1970-01-01", false).ok(), Some(0));
        assert_eq!(parse_time("to", "1970-01-01", true).ok(), Some(86_400_000_000_000));
        // 2026-12-07 is day 20,794 since the epoch.
        assert_eq!(
            parse_time("from", "2026-12-07", false).ok(),
            Some(20_794 * 86_400 * 1_000_000_000)
        );
        assert_eq!(parse_time("from", "1500", false).ok(), Some(1_500_000_000));
        assert!(parse_time("from", "2024-02-29", false).is_ok(), "a leap day");
        // No 31st of February, no 29th in a common year; past 2554 the nanoseconds overflow.
        for bad in
            ["2026-13-01", "yesterday", "2026-1", "-5", "2026-02-31", "2025-02-29", "2600-01-01"]
        {
            assert!(parse_time("from", bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn severities_and_suspicion() {
        let record = |k: &str, detail: Value| AuditRecord {
            seq: 1,
            time_ns: 0,
            kind: k.into(),
            actor: "a".into(),
            tenant: "t".into(),
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let denied = record(kind::PERMISSION_DENIED, json!({"rule": "no"}));
        assert_eq!((severity(&denied), suspicious(&denied)), ("warning", Some("denial")));
        let escalated = record(kind::PERMISSION_DENIED, json!({"escalation": "critical"}));
        assert_eq!(
            (severity(&escalated), suspicious(&escalated)),
            ("critical", Some("escalation"))
        );
        let erased = record(kind::ERASURE, json!({}));
        assert_eq!((severity(&erased), suspicious(&erased)), ("critical", Some("erasure")));
        let policy = record(kind::POLICY_CHANGE, json!({}));
        assert_eq!(suspicious(&policy), Some("policy change"));
        let run = record(kind::DIRECTIVE_RUN, json!({}));
        assert_eq!((severity(&run), suspicious(&run)), ("info", None));
    }
}
