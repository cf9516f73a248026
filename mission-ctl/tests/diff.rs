//! `mission-ctl diff` as a process, on a store holding `mission_examples::record_diff_pair`'s
//! two runs (the bad one diverging at a known step and field) in two tenants.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use mission_core::{Backpressure, Pipeline, Timestamp};
use mission_examples::{DiffPair, record_diff_pair};
use mission_store::{ParquetSink, StoreConfig};
use serde_json::Value;

fn store() -> (PathBuf, DiffPair, DiffPair) {
    let root = std::env::temp_dir().join(format!("mission-ctl-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
        .start()
        .expect("start");
    let now = Timestamp::now().0;
    let acme = record_diff_pair(&pipeline.recorder(), "acme", now);
    let globex = record_diff_pair(&pipeline.recorder(), "globex", now);
    pipeline.shutdown();
    (root, acme, globex)
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

#[test]
fn diff_finds_the_planted_divergence_and_checks_its_input() {
    let (root, pair, other) = store();
    let root = root.to_str().expect("utf-8");

    let out = ctl(&["diff", root, &pair.good, &pair.bad, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["identical"], false);
    let first = &v["first_divergence"];
    assert_eq!(first["step"], pair.step);
    assert_eq!(first["field"], pair.field);
    assert_eq!(first["name"], "web_search");
    assert_ne!(first["a"], first["b"]);
    assert_eq!(v["a"]["steps"], pair.spans);
    assert_eq!(v["b"]["steps"], pair.spans);
    assert_eq!(v["a"]["agent"], "support-bot");
    assert_eq!(v["b"]["errors"], 1);
    // The bad run's failing send_email is the other difference.
    assert_eq!(v["differing"], 2);
    let pairs = v["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), pair.spans);
    assert_eq!(pairs[6]["differences"][0]["field"], "status");

    // A thread against itself: identical.
    let same: Value =
        serde_json::from_slice(&ctl(&["diff", root, &pair.good, &pair.good, "--json"]).stdout)
            .expect("json");
    assert_eq!(same["identical"], true);
    assert_eq!(same["first_divergence"], Value::Null);

    // The table marks the divergence.
    let table = ctl(&["diff", root, &pair.good, &pair.bad]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).expect("utf-8");
    assert!(text.contains("first divergence: step 4 (web_search), args_hash"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("▶ 4")), "{text}");

    // Tenant-scoped: the other tenant's thread is not there.
    let scoped = ctl(&["diff", root, &pair.good, &other.bad, "--tenant", "acme", "--json"]);
    assert_eq!(scoped.status.code(), Some(1), "{}", String::from_utf8_lossy(&scoped.stdout));
    let answer = String::from_utf8_lossy(&scoped.stdout);
    assert!(answer.contains("not_found") && answer.contains("(b)"), "{answer}");
    let own = ctl(&["diff", root, &other.good, &other.bad, "--tenant", "globex", "--json"]);
    assert!(own.status.success());

    // A malformed id is an invalid argument (exit code 2).
    let bad = ctl(&["diff", root, "not-an-id", &pair.bad]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("thread id a"));
}
