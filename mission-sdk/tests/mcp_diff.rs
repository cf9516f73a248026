//! The MCP `compare_threads` tool with the official Rust MCP client over a real store: two runs
//! of one agent that differ in one tool call's arguments, then in a failing step, are aligned
//! and their first divergence named; a thread against itself is identical; bad or unknown ids
//! are tool errors that say what to pass. (That a tenant compares only its own threads is in
//! `tenant_isolation.rs`.)

use mission_sdk::core::{LlmUsage, Symbol, ThreadContext, Timestamp};
use mission_sdk::mcp::MissionMcp;
use mission_sdk::{MissionControl, SpanKind};
use serde_json::{Value, json};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;
#[path = "support/mcp_duplex.rs"]
mod mcp_duplex;
use mcp_duplex::{args, connect, structured, text};

const MS: u64 = 1_000_000;

/// Records one run of `support-bot`: a root step, a `chat`, a `web_search` whose arguments hash
/// is `args`, and a `send_email` that fails when `fail`. Returns the thread id.
fn run(control: &MissionControl, end: u64, args: &str, fail: bool) -> String {
    let recorder = control.recorder();
    let ctx = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let start = end - 1_000 * MS;
    let root = recorder.start_span_at(
        &ctx,
        SpanKind::AgentStep,
        Symbol::intern("handle_request"),
        None,
        Timestamp(start),
    );
    let parent = Some(root.span_id());
    let mut chat = recorder.start_span_at(
        &ctx,
        SpanKind::LlmCall,
        Symbol::intern("chat"),
        parent,
        Timestamp(start + MS),
    );
    chat.set_llm_usage(LlmUsage {
        model: Symbol::intern("gpt-4o-mini"),
        provider: Symbol::intern("openai"),
        input_tokens: 500,
        output_tokens: 50,
        cost_usd: 0.0001,
        ..LlmUsage::default()
    });
    chat.end_at(Timestamp(start + 300 * MS));
    let mut search = recorder.start_span_at(
        &ctx,
        SpanKind::ToolCall,
        Symbol::intern("web_search"),
        parent,
        Timestamp(start + 301 * MS),
    );
    search.set_attribute(Symbol::intern("mission.tool.args_hash"), args);
    search.end_at(Timestamp(start + 500 * MS));
    let email = recorder.start_span_at(
        &ctx,
        SpanKind::ToolCall,
        Symbol::intern("send_email"),
        parent,
        Timestamp(start + 501 * MS),
    );
    if fail {
        email.end_at_with_error(Timestamp(start + 600 * MS), "smtp 550");
    } else {
        email.end_at(Timestamp(start + 600 * MS));
    }
    root.end_at(Timestamp(end));
    ctx.thread_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_threads_names_the_first_divergence() {
    let dir = TempDir::new("mcp-diff");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    let now = Timestamp::now().0;
    let good = run(&control, now - 60_000 * MS, "00000000000000aa", false);
    let bad = run(&control, now, "00000000000000bb", true);
    let report = control.shutdown();
    assert_eq!(report.accounting.dropped, 0, "{report:?}");

    let client = connect(MissionMcp::new(&dir.0)).await;
    let peer = client.peer();
    let listed = peer.list_all_tools().await.expect("tools");
    assert!(listed.iter().any(|t| t.name == "compare_threads"), "listed over a store");
    let compare = |v: Value| {
        let mut p = args(v);
        p.name = "compare_threads".into();
        peer.call_tool(p)
    };

    let r = compare(json!({"a": good, "b": bad})).await.expect("an answer");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let a = structured(&r);
    assert_eq!(a["identical"], false);
    let first = &a["first_divergence"];
    assert_eq!(
        (first["step"].as_u64(), first["field"].as_str()),
        (Some(2), Some("args_hash")),
        "{a}"
    );
    assert_eq!(
        (first["a"].as_str(), first["b"].as_str()),
        (Some("00000000000000aa"), Some("00000000000000bb"))
    );
    assert_eq!(first["name"], "web_search");
    assert_eq!((a["aligned"].as_u64(), a["differing"].as_u64()), (Some(4), Some(2)), "{a}");
    // Only the differing pairs are listed by default: web_search, then send_email's status.
    let pairs = a["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.iter().map(|p| p["step"].as_u64()).collect::<Vec<_>>(), [Some(2), Some(3)]);
    assert_eq!(pairs[1]["differences"][0]["field"], "status");
    assert_eq!((a["a"]["steps"].as_u64(), a["b"]["errors"].as_u64()), (Some(4), Some(1)));
    assert_eq!(a["truncated"], false);
    let words = text(&r);
    assert!(words.contains("first divergence at step 2 (web_search): args_hash"), "{words}");

    // Every step, and a limit that cuts the list (saying so).
    let all = compare(json!({"a": good, "b": bad, "all_steps": true})).await.expect("answer");
    assert_eq!(structured(&all)["pairs"].as_array().map(Vec::len), Some(4));
    let cut =
        compare(json!({"a": good, "b": bad, "all_steps": true, "limit": 1})).await.expect("answer");
    assert_eq!(structured(&cut)["pairs"].as_array().map(Vec::len), Some(1));
    assert_eq!(structured(&cut)["truncated"], true);

    // A thread against itself.
    let same = compare(json!({"a": good, "b": good})).await.expect("an answer");
    assert_eq!(structured(&same)["identical"], true);
    assert!(structured(&same).get("first_divergence").is_none());

    // What it cannot do: a tool error saying what to pass.
    for (bad_args, says) in [
        (json!({"a": "nope", "b": bad}), "a must be a thread id"),
        (
            json!({"a": good, "b": "0123456789abcdef0123456789abcdef"}),
            "no thread 0123456789abcdef0123456789abcdef (b)",
        ),
        (json!({"a": good, "b": bad, "limit": 0}), "limit must be between 1 and 200"),
        (json!({"a": good}), "missing field `b`"),
    ] {
        let r = compare(bad_args.clone()).await.expect("a tool result");
        assert_eq!(r.is_error, Some(true), "{bad_args}: {r:?}");
        assert!(text(&r).contains(says), "{bad_args}: {}", text(&r));
    }
    let _ = client.cancel().await;
}
