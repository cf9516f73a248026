//! `mission-ctl` run as a process on a generated store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use mission_core::{Backpressure, Pipeline};
use mission_examples::{Summary, Workload, simulate};
use mission_store::{ParquetSink, Store, StoreConfig};
use serde_json::Value;

/// A store of the simulated workload, written once for all tests.
fn fixture() -> &'static (PathBuf, Summary) {
    static STORE: OnceLock<(PathBuf, Summary)> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("mission-ctl-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
            .start()
            .expect("start");
        let summary =
            simulate(&pipeline.recorder(), &Workload { threads: 120, ..Workload::default() });
        pipeline.shutdown();
        (root, summary)
    })
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn root() -> &'static str {
    fixture().0.to_str().expect("utf-8 path")
}

#[test]
fn threads_json_matches_the_store() {
    let out = json(&ctl(&["threads", root(), "--limit", "1000", "--json"]));
    let store = Store::open(root()).expect("open");
    let expected = store.threads(store.query()).expect("threads");
    let rows = out.as_array().expect("array");
    assert_eq!(rows.len(), 120);
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows[0]["thread_id"], expected[0].thread_id.as_str());
    assert_eq!(rows[0]["spans"], expected[0].spans);
    let errors: u64 = rows.iter().map(|r| r["errors"].as_u64().expect("errors")).sum();
    assert_eq!(errors, fixture().1.errors);
    let table = String::from_utf8(ctl(&["threads", root(), "--agent", "support-bot"]).stdout)
        .expect("utf-8");
    let mut lines = table.lines();
    assert!(lines.next().expect("header").starts_with("thread"), "{table}");
    assert!(lines.next().expect("rule").starts_with("----"));
    assert!(lines.all(|l| l.contains("support-bot")), "{table}");
}

#[test]
fn thread_prints_the_span_tree() {
    let store = Store::open(root()).expect("open");
    let first = store.threads(store.query()).expect("threads").remove(0);
    let tree = ctl(&["thread", root(), &first.thread_id]);
    assert!(tree.status.success());
    let text = String::from_utf8(tree.stdout).expect("utf-8");
    assert!(text.starts_with(&format!("thread {}:", first.thread_id)), "{text}");
    assert!(text.contains("agent_step handle_request +0.0ms"), "{text}");
    assert!(text.contains("llm_call chat"), "{text}");
    let view = json(&ctl(&["thread", root(), &first.thread_id, "--json"]));
    assert_eq!(view["roots"][0]["name"], "handle_request");
    let missing = ctl(&["thread", root(), "0123456789abcdef0123456789abcdef"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn stats_and_query_agree_with_what_was_recorded() {
    let (_, summary) = fixture();
    let stats =
        json(&ctl(&["stats", root(), "--since", "2h", "--group-by", "operation", "--json"]));
    let spans: u64 =
        stats.as_array().expect("array").iter().map(|s| s["count"].as_u64().expect("count")).sum();
    assert_eq!(
        spans,
        summary.agent_steps + summary.llm_calls + summary.tool_calls + summary.retrievals
    );
    let csv = String::from_utf8(
        ctl(&[
            "query",
            root(),
            "--kind",
            "llm_call",
            "--limit",
            "100000",
            "--format",
            "csv",
            "--columns",
            "name,gen_ai_request_model",
        ])
        .stdout,
    )
    .expect("utf-8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("name,gen_ai_request_model,tenant"));
    assert_eq!(lines.count() as u64, summary.llm_calls);
    let errors = json(&ctl(&[
        "query",
        root(),
        "--status",
        "error",
        "--format",
        "json",
        "--limit",
        "100000",
    ]));
    assert_eq!(errors.as_array().expect("array").len() as u64, summary.errors);
    let bad = ctl(&["query", root(), "--columns", "no_such_column"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no_such_column"));
    let bad_duration = ctl(&["stats", root(), "--since", "soon"]);
    assert_eq!(bad_duration.status.code(), Some(2));
}

#[test]
fn doctor_reports_problems_with_an_exit_code() {
    let healthy = json(&ctl(&["doctor", root(), "--json"]));
    assert_eq!(healthy["events"].as_u64(), Some(fixture().1.events));
    // A copy of the store with a corrupt file and a leftover of a killed writer.
    let broken = std::env::temp_dir().join(format!("mission-ctl-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&broken);
    copy_dir(&fixture().0, &broken);
    let some_file = Store::open(&broken).expect("open").files()[0].path.clone();
    let dir = some_file.parent().expect("dir");
    std::fs::write(dir.join("part-bad.parquet"), b"not parquet").expect("write");
    std::fs::write(dir.join(".part-x.parquet.tmp"), b"half").expect("write");
    let out = ctl(&["doctor", broken.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("unreadable") && text.contains("part-bad.parquet"), "{text}");
    assert!(text.contains("leftover") && text.contains("problems found"), "{text}");
    let _ = std::fs::remove_dir_all(&broken);
    assert_eq!(ctl(&["doctor", "/definitely/not/a/store"]).status.code(), Some(3));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
