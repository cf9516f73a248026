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

/// Records an LLM call carrying prompt and completion content; returns (stored, streamed) text.
fn record_content(control: &MissionControl) -> (String, String) {
    let live = control.subscribe(EventFilter::all(), 1000);
    let thread = control.agent("support").thread();
    let mut call = thread.llm_call("claude-sonnet-4", "anthropic");
    call.set_attribute("gen_ai.input.messages", "PROMPT: my account number is 12345");
    call.set_attribute("gen_ai.completion.0.content", "COMPLETION: here it is");
    call.set_attribute("gen_ai.request.temperature", 0.2);
    call.end();
    thread.end();
    control.flush().unwrap();
    let mut streamed = String::new();
    while let Some(e) = live.try_recv() {
        streamed.push_str(&format!("{e:?}"));
    }
    (all_text(&control.store().unwrap().unwrap()), streamed)
}

#[test]
fn content_is_omitted_by_default_and_kept_for_tenants_that_opt_in() {
    for (tenant, capture, kept) in
        [("acme", vec![], false), ("lab", vec!["lab"], true), ("acme", vec!["lab"], false)]
    {
        let root = temp_root(&format!("content-{tenant}-{}", capture.len()));
        let control = MissionControl::builder()
            .ignore_environment()
            .with_tenant(tenant)
            .with_store_root(&root)
            .with_content_capture(capture.clone())
            .build()
            .unwrap();
        let (stored, streamed) = record_content(&control);
        for content in ["PROMPT: my account", "COMPLETION: here it is"] {
            assert_eq!(stored.contains(content), kept, "{tenant} {capture:?}: {content} stored");
            assert_eq!(streamed.contains(content), kept, "{tenant} {capture:?}: streamed");
        }
        assert_eq!(stored.contains("[content omitted]"), !kept, "{stored}");
        assert!(stored.contains("claude-sonnet-4"), "the rest of the call is kept");
        if !kept {
            let stats = control.redaction_stats().expect("content omission runs");
            assert_eq!(stats.content_omitted, 2, "{stats:?}");
        }
        drop(control);
        let _ = std::fs::remove_dir_all(&root);
    }
    // Every tenant: nothing runs in front of the sinks.
    let root = temp_root("content-all");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_content_capture(["*"])
        .build()
        .unwrap();
    let (stored, _) = record_content(&control);
    assert!(stored.contains("PROMPT: my account"));
    assert!(control.redaction_stats().is_none());
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_redaction_file_and_the_capture_list_combine() {
    let root = temp_root("content-redaction");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_tenant("lab")
        .with_store_root(&root)
        .with_redaction(RedactionConfig::with_key("a-redaction-key-of-some-length"))
        .with_content_capture(["lab"])
        .build()
        .unwrap();
    let thread = control.agent("support").thread();
    let mut call = thread.llm_call("claude-sonnet-4", "anthropic");
    call.set_attribute("gen_ai.input.messages", "PROMPT from jane.doe@example.com");
    call.end();
    thread.end();
    control.flush().unwrap();
    let stored = all_text(&control.store().unwrap().unwrap());
    assert!(stored.contains("PROMPT from [email:"), "kept, and still redacted: {stored}");
    assert!(!stored.contains("jane.doe@example.com"));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}
