//! `mission-ctl report`'s recommendations section, on a store with the planted data of
//! `mission_examples::advice`: each kind appears with the planted numbers, in JSON and Markdown,
//! and `--tenant` of another tenant shows none of them.

use std::process::Command;

use mission_examples::advice;
use serde_json::Value;

fn ctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

#[test]
fn the_report_lists_the_planted_recommendations() {
    let root = std::env::temp_dir().join(format!("mission-ctl-advice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    advice::write_planted_store(&root, "acme").expect("planted");
    let store = root.to_str().expect("utf-8");

    let out = ctl(&["report", store, "--since", "2h", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let recs = report["recommendations"].as_array().expect("recommendations");
    let find = |kind: &str, subject: &str| {
        recs.iter()
            .find(|r| r["kind"] == kind && r["subject"] == subject)
            .unwrap_or_else(|| panic!("no {kind} for {subject} in {recs:#?}"))
    };
    let sizing = find("model_right_sizing", &format!("{}/{}", advice::AGENT, advice::OPERATION));
    // 20 calls × ($0.05 − $0.01).
    let saving = sizing["saving_usd"].as_f64().expect("saving");
    assert!((saving - 0.8).abs() < 1e-9, "{sizing}");
    assert_eq!(sizing["evidence"]["cheaper_model"], advice::CHEAP_MODEL);
    let cache = find("prompt_cache", advice::DEAR_MODEL);
    assert!((cache["evidence"]["hit_rate"].as_f64().expect("rate") - 0.05).abs() < 1e-9);
    assert!(recs.iter().all(|r| r["subject"] != advice::CHEAP_MODEL), "80 % cached is fine");
    let slow = find("slow_tool", advice::SLOW_TOOL);
    assert_eq!(slow["evidence"]["p95_ms"], 2000.0);
    let failing = find("failing_tool", advice::FAILING_TOOL);
    assert_eq!(failing["evidence"]["errors"], 10);
    assert_eq!(failing["evidence"]["top_error"], advice::FAILING_ERROR);
    let budget = find("budget_burn", &format!("{}/cost_usd", advice::AGENT));
    assert_eq!(budget["evidence"]["threads_exceeded"], 2);
    assert_eq!(budget["evidence"]["threads_warned"], 3);
    // The biggest saving first.
    assert_eq!(recs[0]["kind"], "model_right_sizing");

    let md = String::from_utf8(ctl(&["report", store, "--since", "2h"]).stdout).expect("utf-8");
    let section = md.split("## Recommendations").nth(1).expect("a recommendations section");
    let section = section.split("\n## ").next().unwrap_or(section);
    assert!(section.contains("| model_right_sizing | advice-bot/summarize"), "{section}");
    assert!(section.contains("0.80"), "{section}");
    assert!(section.contains("- Tool advice_flaky_api failed 10 of 20 calls"), "{section}");

    let other = ctl(&["report", store, "--since", "2h", "--json", "--tenant", "globex"]);
    let other: Value = serde_json::from_slice(&other.stdout).expect("json");
    assert_eq!(other["recommendations"], serde_json::json!([]), "another tenant sees none");
    let _ = std::fs::remove_dir_all(&root);
}
