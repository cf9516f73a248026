//! `mission-ctl audit verify` run as a process on audit trails written by `mission-sdk`,
//! intact and tampered with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mission_sdk::audit::{self, AuditHead, AuditLog};
use serde_json::{Value, json};

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mission-ctl-audit-{name}-{}-{}",
            std::process::id(),
            mission_core::Timestamp::now().0
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// A store with `n` audit records; returns the head.
fn store_with_records(dir: &TempDir, n: u64) -> AuditHead {
    let log = AuditLog::open(&dir.0).expect("open");
    for i in 0..n {
        log.append(
            audit::kind::PERMISSION_DENIED,
            &format!("agent:bot-{i}"),
            "acme",
            json!({"rule": "no-refunds-for-bots", "resource": format!("refund_{i}")}),
        )
        .expect("append");
    }
    log.head()
}

fn edit_lines(root: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let path = root.join("audit").join("audit.jsonl");
    let mut lines: Vec<String> =
        std::fs::read_to_string(&path).expect("read").lines().map(str::to_owned).collect();
    f(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
}

#[test]
fn an_intact_trail_is_ok_with_its_count_and_head() {
    let dir = TempDir::new("ok");
    let head = store_with_records(&dir, 5);
    let out = ctl(&["audit", "verify", dir.path()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.starts_with("OK: 5 records in 1 file"), "{text}");
    assert!(text.contains(&format!("head seq 5 hash {}", head.hash)), "{text}");

    let out = ctl(&["audit", "verify", dir.path(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"], 5);
    assert_eq!(v["head"]["seq"], 5);
    assert_eq!(v["head"]["hash"], head.hash.as_str());
    assert_eq!(v["problem"], Value::Null);
}

#[test]
fn tampering_is_reported_at_its_position_with_exit_code_1() {
    type Tamper = fn(&mut Vec<String>);
    let cases: [(&str, Tamper, &str, u64, Option<u64>); 3] = [
        ("edit", |l| l[2] = l[2].replace("bot-2", "bot-9"), "hash_mismatch", 3, Some(3)),
        ("delete", |l| drop(l.remove(3)), "missing_record", 4, Some(5)),
        ("swap", |l| l.swap(1, 2), "reordered", 2, Some(3)),
    ];
    for (name, tamper, kind, line, seq) in cases {
        let dir = TempDir::new(name);
        store_with_records(&dir, 6);
        edit_lines(&dir.0, tamper);
        let out = ctl(&["audit", "verify", dir.path()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let text = stdout(&out);
        assert!(text.starts_with(&format!("FAILED: {kind} at line {line} of ")), "{name}: {text}");
        let out = ctl(&["audit", "verify", dir.path(), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["ok"], false, "{name}");
        assert_eq!(v["problem"]["kind"], kind, "{name}");
        assert_eq!(v["problem"]["line"], line, "{name}");
        assert_eq!(v["problem"]["seq"], json!(seq), "{name}");
    }

    let dir = TempDir::new("truncate");
    store_with_records(&dir, 3);
    let path = dir.0.join("audit").join("audit.jsonl");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("write");
    let out = ctl(&["audit", "verify", dir.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("FAILED: truncated_line at line 3 of "), "{}", stdout(&out));
}

#[test]
fn missing_logs_and_bad_arguments_have_their_exit_codes() {
    assert_eq!(ctl(&["audit", "verify", "/definitely/not/a/store"]).status.code(), Some(3));
    let empty = TempDir::new("empty");
    let out = ctl(&["audit", "verify", empty.path()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audit log"));
    for args in [&["audit"][..], &["audit", "verify"], &["audit", "check", empty.path()]] {
        let out = ctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let help = stdout(&ctl(&["audit", "verify", "--help"]));
    assert!(help.contains("--json"), "{help}");
}

/// An agent recording into `dir`'s store, with the audit trail beside it.
fn control(dir: &TempDir) -> mission_sdk::MissionControl {
    mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .build()
        .expect("build")
}

#[test]
fn erase_rewrites_the_subjects_events_and_audits_a_digest() {
    let dir = TempDir::new("erase");
    let control = control(&dir);
    let agent = control.agent("support");
    for user in ["u-1", "u-2", "u-1"] {
        let mut thread = agent.thread();
        thread.root().set_attribute("user.id", user);
        thread.end();
    }
    drop(control);

    let bad = ctl(&["erase", dir.path(), "--attribute", "user.id"]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    let out =
        ctl(&["erase", dir.path(), "--attribute", "user.id=u-1", "--actor", "dpo@acme", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["events"], 2);
    assert_eq!(report["audit_seq"], 1);
    let store = mission_sdk::Store::open(&dir.0).expect("store");
    assert_eq!(store.query().attribute("user.id", "u-1").count().expect("count"), 0);
    assert_eq!(store.query().attribute("user.id", "u-2").count().expect("count"), 1);

    let trail = std::fs::read_to_string(dir.0.join("audit").join("audit.jsonl")).expect("trail");
    let record: Value =
        serde_json::from_str(trail.lines().last().expect("a record")).expect("json");
    assert_eq!(record["kind"], "erasure");
    assert_eq!(record["actor"], "dpo@acme");
    assert!(!trail.contains("\"u-1\""), "the value itself is not kept: {trail}");
    let verified = ctl(&["audit", "verify", dir.path()]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
}

/// Compaction keeps what the verifier needs: the merged file carries the newest anchor, so an
/// intact trail still verifies and a trail cut after the data was written is still caught.
#[test]
fn audit_verify_works_on_a_compacted_store() {
    let dir = TempDir::new("compact");
    let control = control(&dir);
    let agent = control.agent("support");
    let log = control.audit().expect("an audit log beside the store");
    for i in 0..4 {
        log.append(audit::kind::PERMISSION_DENIED, "agent:bot", "acme", json!({"round": i}))
            .expect("append");
        agent.thread().end();
        control.flush().expect("flush: one data file per round, each with its anchor");
    }
    drop(control);
    let files = mission_sdk::Store::open(&dir.0).expect("store").files().len();
    assert!(files >= 4, "{files} files");
    let out = ctl(&["compact", "--store", dir.path(), "--min-files", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["files_merged"], files, "{report}");
    assert_eq!(mission_sdk::Store::open(&dir.0).expect("store").files().len(), 1);
    let verified = ctl(&["audit", "verify", dir.path()]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    // The last record removed: the merged file's anchor names a record the log lacks.
    edit_lines(&dir.0, |lines| {
        lines.pop();
    });
    let verified = ctl(&["audit", "verify", dir.path()]);
    assert_eq!(verified.status.code(), Some(1), "{}", stdout(&verified));
}
