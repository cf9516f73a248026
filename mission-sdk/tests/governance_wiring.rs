//! Governance wired into `MissionControl`: redaction before every sink, `permit` deciding by
//! policy and circuit breakers, decisions recorded and audited.

use std::path::PathBuf;
use std::time::Duration;

use mission_sdk::store::schema::col;
use mission_sdk::{DirectiveSet, EventFilter, Level, MissionControl, PolicySet, RedactionConfig};

fn temp_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("mission-wiring-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

fn all_text(store: &mission_sdk::Store) -> String {
    let mut text = String::new();
    for batch in store.query().batches().unwrap() {
        for column in batch.columns() {
            let as_text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8);
            if let Ok(a) = as_text
                && let Some(s) = a.as_any().downcast_ref::<arrow::array::StringArray>()
            {
                for v in s.iter().flatten() {
                    text.push_str(v);
                    text.push('\n');
                }
            }
        }
        // Attribute maps: their values column.
        if let Some(map) = batch
            .column_by_name(col::ATTRIBUTES)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::MapArray>())
            && let Some(values) = map.values().as_any().downcast_ref::<arrow::array::StringArray>()
        {
            for v in values.iter().flatten() {
                text.push_str(v);
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn redaction_runs_before_the_store_and_the_live_stream() {
    let root = temp_root("redact");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_redaction(RedactionConfig::with_key("a-redaction-key-of-some-length"))
        .build()
        .unwrap();
    let live = control.subscribe(EventFilter::all(), 1000);
    let thread = control.agent("billing").thread();
    thread.log(Level::Warn, "refund for jane.doe@example.com on card 4111 1111 1111 1111");
    let mut tool = thread.tool_call("charge");
    tool.set_error("upstream rejected key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789");
    tool.end();
    thread.end();
    control.flush().unwrap();
    let mut streamed = String::new();
    while let Some(e) = live.try_recv() {
        streamed.push_str(&format!("{e:?}"));
    }
    let stored = all_text(&control.store().unwrap().unwrap());
    for secret in ["jane.doe@example.com", "4111 1111 1111 1111", "sk-proj-abcdefghijklmnop"] {
        assert!(!stored.contains(secret), "{secret} stored");
        assert!(!streamed.contains(secret), "{secret} streamed");
    }
    assert!(stored.contains("[email:"), "{stored}");
    let stats = control.redaction_stats().expect("redaction is on");
    assert!(stats.replacements >= 3, "{stats:?}");
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn permit_decides_by_policy_and_breakers_and_every_decision_is_recorded_and_denials_audited() {
    let root = temp_root("permit");
    let policy = PolicySet::from_toml_str(
        r#"
        default = "allow"
        [[rule]]
        name = "no-refunds-by-bots"
        effect = "deny"
        actor = "agent:*"
        action = "tool.call"
        resource = "refund_*"
        reason = "refunds need a human"
        "#,
    )
    .unwrap();
    let breakers = DirectiveSet::from_toml_str(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        where = { kind = "tool_call" }
        group_by = ["operation"]
        then = [{ action = "open_breaker", cool_down = "10m" }]
        "#,
        "test",
    )
    .unwrap();
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_policy(policy)
        .with_directives(breakers)
        .build()
        .unwrap();
    let refused = control.permit("agent:billing", "tool.call", "refund_payment");
    assert!(!refused.allowed);
    assert_eq!(refused.rule.as_deref(), Some("no-refunds-by-bots"));
    assert!(control.permit("agent:billing", "tool.call", "lookup_order").allowed);

    // Two failures of send_email open its breaker: permit now denies it, naming the directive.
    let thread = control.agent("billing").thread();
    for _ in 0..2 {
        let mut call = thread.tool_call("send_email");
        call.set_error("smtp down");
        call.end();
    }
    thread.end();
    control.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut broken = control.permit("agent:billing", "tool.call", "send_email");
    while broken.allowed && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        broken = control.permit("agent:billing", "tool.call", "send_email");
    }
    assert!(!broken.allowed, "{broken:?}");
    assert_eq!(broken.rule.as_deref(), Some("directive:tool-failing"));

    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let denials = store.query().kind("permission").count().unwrap();
    assert!(denials >= 3, "every decision is an event: {denials}");
    let text = all_text(&store);
    assert!(text.contains("no-refunds-by-bots") && text.contains("directive:tool-failing"));
    let report = mission_sdk::audit::verify(&root).unwrap();
    assert!(report.problem.is_none(), "{report:?}");
    assert!(report.records >= 2, "both denials are audited: {report:?}");
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}
