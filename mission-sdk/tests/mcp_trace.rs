//! MCP with the official Rust SDK's client (rmcp) against Mission Control's MCP server:
//!
//! - an agent's call through `mcp_client::call_tool` and the server's work share one trace
//!   (SEP-414): the server's request span has the caller's trace id and the caller's tool span
//!   as its parent;
//! - over a store on disk, the server lists only the tools that work there, answers in ms,
//!   RFC 3339 times and rounded dollars, and reports bad input as a tool result with `isError`.

use std::time::Duration;

use mission_sdk::mcp::MissionMcp;
use mission_sdk::mcp_client::call_tool;
use mission_sdk::{AttrValue, Event, EventBody, EventFilter, MissionControl, SpanKind, Status};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;
#[path = "support/mcp_duplex.rs"]
mod mcp_duplex;
use mcp_duplex::{args, connect, structured, text};

fn control(dir: &TempDir) -> MissionControl {
    MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .build()
        .expect("build")
}

fn drain(sub: &mission_sdk::Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = sub.recv_timeout(Duration::from_millis(200)) {
        out.push(e);
    }
    out
}

fn text_attr(e: &Event, key: &str) -> Option<String> {
    e.attributes.iter().find(|a| a.key.as_str() == key).and_then(|a| match &a.value {
        AttrValue::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    })
}

fn span_of(e: &Event) -> Option<&mission_sdk::core::SpanEnd> {
    match &e.body {
        EventBody::Span(s) => Some(s),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_mcp_call_and_the_servers_work_share_one_trace() {
    let dir = TempDir::new("mcp-trace");
    let control = control(&dir);
    let sub = control.subscribe(EventFilter::all(), 10_000);
    let client = connect(control.mcp_server()).await;

    let thread = control.agent("planner").thread();
    let ok = call_tool(&thread, client.peer(), CallToolRequestParams::new("health"), Some("s-1"))
        .await
        .expect("health answers");
    assert_ne!(ok.is_error, Some(true), "{ok:?}");
    let mut bad = args(json!({"thread_id": "not-a-thread"}));
    bad.name = "get_thread".into();
    let failed = call_tool(&thread, client.peer(), bad, None).await.expect("a tool result");
    assert_eq!(failed.is_error, Some(true), "bad input is a tool result with isError");
    let trace = thread.id();
    thread.end();
    control.flush().expect("flush");
    let events = drain(&sub);

    for (tool, status) in [("health", Status::Ok), ("get_thread", Status::Error)] {
        let mine = events
            .iter()
            .find(|e| e.name.as_str() == tool && e.agent.as_str() == "planner")
            .unwrap_or_else(|| panic!("no client span {tool}: {events:#?}"));
        let span = span_of(mine).expect("a span");
        assert_eq!((span.kind, span.status), (SpanKind::ToolCall, status), "{tool}");
        assert_eq!(mine.thread_id, trace);
        assert_eq!(text_attr(mine, "mcp.method.name").as_deref(), Some("tools/call"));
        assert_eq!(text_attr(mine, "gen_ai.tool.name").as_deref(), Some(tool));
        // The server as its initialize answer named it, for directives grouping by server.
        assert_eq!(text_attr(mine, "mcp.server.name").as_deref(), Some("mission-control"));

        let served = events
            .iter()
            .find(|e| e.name.as_str() == format!("tools/call {tool}"))
            .unwrap_or_else(|| panic!("no server span for {tool}: {events:#?}"));
        assert_eq!(served.agent.as_str(), "mission-mcp");
        assert_eq!(served.thread_id, trace, "the server's span is in the caller's trace");
        assert_eq!(served.parent_span_id, mine.span_id, "under the caller's tool span");
        // The server's span fails with the call; a success leaves it unset (OTel's default).
        let served_failed = span_of(served).map(|s| s.status == Status::Error);
        assert_eq!(served_failed, Some(status == Status::Error), "{tool}");
    }
    let health = events.iter().find(|e| e.name.as_str() == "health").expect("client span");
    let digest = text_attr(health, "mcp.session.id").expect("session digest");
    assert!(digest.starts_with("sha256:") && digest.len() == 39 && !digest.contains("s-1"));

    // Without trace context, the server's spans stay in the session's own thread.
    client.peer().call_tool(CallToolRequestParams::new("health")).await.expect("health");
    control.flush().expect("flush");
    let plain = drain(&sub);
    let served = plain.iter().find(|e| e.name.as_str() == "tools/call health").expect("span");
    assert_ne!(served.thread_id, trace);
    assert_eq!(served.parent_span_id, mission_sdk::SpanId::NONE);
    let _ = client.cancel().await;
}

/// Every key of `v`, recursively.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn is_rfc3339_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 17
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_store_answers_read_well_and_only_working_tools_are_listed() {
    let dir = TempDir::new("mcp-store");
    {
        let control = control(&dir);
        let agent = control.agent("support-bot");
        for _ in 0..3 {
            let thread = agent.thread();
            {
                let mut call = thread.llm_call("gpt-4o-mini", "openai");
                call.record_usage(812, 64).record_cached_tokens(512);
            }
            let mut tool = thread.tool_call("lookup_order");
            tool.set_error("order service timed out");
            tool.end();
        }
        let _ = control.shutdown();
    }
    let client = connect(MissionMcp::new(&dir.0)).await;
    let peer = client.peer();

    let listed: Vec<String> = peer
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for gone in [
        "list_directives",
        "set_directive_enabled",
        "add_directive",
        "remove_directive",
        "acknowledge_alert",
        "get_policy",
        "set_policy",
        "erase_subject",
    ] {
        assert!(!listed.iter().any(|n| n == gone), "{gone} cannot work over a store: {listed:?}");
    }
    for kept in [
        "list_threads",
        "get_thread",
        "search_events",
        "operation_stats",
        "cost_report",
        "health",
        "list_anomalies",
        "explain_anomaly",
        "list_permission_decisions",
    ] {
        assert!(listed.iter().any(|n| n == kept), "{kept} missing: {listed:?}");
    }
    let unlisted = peer.call_tool(CallToolRequestParams::new("list_directives")).await;
    assert!(unlisted.is_err(), "an unknown tool is a protocol error: {unlisted:?}");

    let call = |name: &'static str, v: Value| {
        let mut p = args(v);
        p.name = name.into();
        peer.call_tool(p)
    };
    let threads = call("list_threads", json!({})).await.expect("list_threads");
    let stats = call("operation_stats", json!({"group_by": ["operation"]})).await.expect("stats");
    let cost = call("cost_report", json!({})).await.expect("cost");
    let rows = structured(&threads)["rows"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 3);
    let id = rows[0]["thread_id"].as_str().expect("id").to_owned();
    let thread = call("get_thread", json!({"thread_id": id})).await.expect("get_thread");
    let search = call("search_events", json!({"kind": "tool_call"})).await.expect("search");

    for answer in [&threads, &stats, &cost, &thread, &search] {
        assert_ne!(answer.is_error, Some(true), "{answer:?}");
        let mut all = Vec::new();
        keys(structured(answer), &mut all);
        assert!(!all.iter().any(|k| k.ends_with("_ns")), "no nanoseconds anywhere: {all:?}");
    }
    for r in &rows {
        assert!(is_rfc3339_ms(r["start"].as_str().expect("start")), "{r}");
        assert!(r["duration_ms"].as_f64().expect("ms") >= 0.0);
        // 812 input (512 cached) and 64 output tokens of gpt-4o-mini, to 6 significant digits.
        let c = r["cost_usd"].to_string();
        let digits: String = c.chars().filter(char::is_ascii_digit).collect();
        assert!(digits.trim_start_matches('0').len() <= 6, "cost {c} has float noise");
    }
    let t = text(&threads);
    assert!(
        t.contains(" ms") && t.contains('$') && t.contains(rows[0]["start"].as_str().unwrap()),
        "{t}"
    );
    let chat = structured(&stats)["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["group"][0] == "chat")
        .expect("chat")
        .clone();
    for p in ["p50_ms", "p95_ms", "p99_ms", "max_ms"] {
        assert!(chat[p].is_f64() || chat[p].is_u64(), "{p} in {chat}");
    }
    assert!(text(&stats).contains(" ms"), "{}", text(&stats));
    let span = &structured(&thread)["spans"][0];
    assert!(is_rfc3339_ms(span["start"].as_str().expect("start")), "{span}");
    let found = &structured(&search)["rows"][0];
    assert!(is_rfc3339_ms(found["time"].as_str().expect("time")), "{found}");
    assert!(text(&cost).contains("total $"), "{}", text(&cost));

    // Every kind of bad input: a tool result with isError and a message saying what to pass.
    for (name, input, says) in [
        ("get_thread", json!({"thread_id": "not-a-thread"}), "32 lowercase hex digits"),
        ("get_thread", json!({"thread_id": "0af7651916cd43dd8448eb211c80319c"}), "list_threads"),
        ("operation_stats", json!({"group_by": ["colour"]}), "expected one of `operation`"),
        ("list_threads", json!({"limit": 100_000}), "limit must be between 1 and 200"),
        ("list_threads", json!({"cursor": "garbage"}), "cursor"),
        ("search_events", json!({"level": "loud"}), "level"),
        ("list_threads", json!({"since_minutes": 0}), "since_minutes"),
    ] {
        let result = call(name, input.clone()).await.expect("a tool result, not a JSON-RPC error");
        assert_eq!(result.is_error, Some(true), "{name} {input}");
        assert!(text(&result).contains(says), "{name} {input}: {}", text(&result));
    }
    let _ = client.cancel().await;
}
