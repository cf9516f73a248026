//! The relationship graph from inside an agent: the MCP tool `relationship_graph` and the
//! dashboard's `GET /api/graph` answer the same edges for a planted topology (tool calls on an
//! MCP server, LLM calls, a child thread, a denial) and the host's registered artefact and
//! relation; the store's dashboard has the same edges but the registered ones (they live in
//! the agent); bad arguments are tool errors naming the argument.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mission_sdk::core::LlmUsage;
use mission_sdk::core::{
    Decision, EventBody, PermissionDecision, SpanId, Symbol, Text, ThreadContext,
};
use mission_sdk::dashboard::DashboardConfig;
use mission_sdk::{MissionControl, SpanKind};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;
#[path = "support/mcp_duplex.rs"]
mod mcp_duplex;
use mcp_duplex::{args, connect};

const TOKEN: &str = "graph-test-token-0123456789";

fn get(addr: SocketAddr, path: &str) -> Value {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    // HTTP/1.0: the answer comes whole (no chunked encoding), ended by the close.
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{path}: {raw}");
    serde_json::from_str(body).expect("json")
}

/// `from -kind-> to` → (calls, errors).
fn edges(graph: &Value) -> BTreeMap<String, (u64, u64)> {
    graph["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("edges: {graph}"))
        .iter()
        .map(|e| {
            let key = format!(
                "{} -{}-> {}",
                e["from"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or("")
            );
            (key, (e["calls"].as_u64().unwrap_or(0), e["errors"].as_u64().unwrap_or(0)))
        })
        .collect()
}

fn planted(control: &MissionControl) {
    let recorder = control.recorder();
    let planner = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("planner"));
    let root = recorder.start_span(&planner, SpanKind::AgentStep, Symbol::intern("run"), None);
    for i in 0..3 {
        let mut tool = recorder.start_span(
            &planner,
            SpanKind::ToolCall,
            Symbol::intern("lookup"),
            Some(root.span_id()),
        );
        tool.set_attribute(Symbol::intern("mcp.server.name"), "crm");
        if i == 0 {
            tool.end_with_error("timeout");
        } else {
            tool.end();
        }
    }
    let mut llm = recorder.start_span(
        &planner,
        SpanKind::LlmCall,
        Symbol::intern("chat"),
        Some(root.span_id()),
    );
    llm.set_llm_usage(LlmUsage {
        model: Symbol::intern("gpt-4o"),
        provider: Symbol::intern("openai"),
        input_tokens: 10,
        output_tokens: 2,
        cost_usd: 0.25,
        ..LlmUsage::default()
    });
    llm.end();
    let writer = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("writer"));
    let mut child = recorder.start_span(&writer, SpanKind::AgentStep, Symbol::intern("run"), None);
    child.set_attribute(
        Symbol::intern(mission_sdk::core::thread::attr::PARENT_ID),
        planner.thread_id.to_string().as_str(),
    );
    recorder.record(writer.event(
        Symbol::intern("tool.call"),
        SpanId::NONE,
        EventBody::Permission(PermissionDecision {
            actor: Text::new("writer"),
            action: Symbol::intern("tool.call"),
            resource: Text::new("publish"),
            decision: Decision::Deny,
            policy: Symbol::intern("no-publishing"),
        }),
    ));
    child.end();
    root.end();
    control.register_artefact("datastore", "docs", &[("engine", "s3")]).expect("artefact");
    control.register_relation("agent:writer", "datastore:docs", "writes").expect("relation");
    assert!(control.register_artefact("Not A Kind", "x", &[]).is_err());
    assert!(control.register_relation("writer", "datastore:docs", "writes").is_err());
    control.flush().expect("flush");
}

fn structured(r: &CallToolResult) -> &Value {
    r.structured_content.as_ref().unwrap_or_else(|| panic!("structured content: {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_the_dashboard_draw_the_same_graph() {
    let dir = TempDir::new("graph");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    planted(&control);
    let want: BTreeMap<String, (u64, u64)> = [
        ("agent:planner -calls_tool-> tool:lookup", (3, 1)),
        ("tool:lookup -served_by-> mcp_server:crm", (3, 1)),
        ("agent:planner -uses_model-> model:gpt-4o", (1, 0)),
        ("agent:planner -child_thread-> agent:writer", (1, 0)),
        ("agent:writer -denied_by-> rule:no-publishing", (1, 0)),
        ("agent:writer -relation-> datastore:docs", (0, 0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let server =
        control.serve_dashboard(DashboardConfig::loopback(0).with_token(TOKEN)).expect("dashboard");
    let addr = server.local_addr();
    let dashboard =
        tokio::task::spawn_blocking(move || get(addr, "/api/graph?minutes=10")).await.expect("get");
    assert_eq!(edges(&dashboard), want, "{dashboard}");

    let client = connect(control.mcp_server()).await;
    let peer = client.peer();
    let call = |v: Value| {
        let mut p = args(v);
        p.name = "relationship_graph".into();
        peer.call_tool(p)
    };
    let answer = call(json!({"since_minutes": 10})).await.expect("an answer");
    assert_ne!(answer.is_error, Some(true), "{answer:?}");
    let mcp = structured(&answer);
    assert_eq!(edges(mcp), want, "{mcp}");
    assert_eq!(mcp["nodes"], dashboard["nodes"], "the same nodes, busiest first");
    let text: String =
        answer.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
    assert!(text.contains("agent:planner -calls_tool-> tool:lookup: 3 calls, 1 errors"), "{text}");
    // Bounded: one node keeps no edge, and says what it cut.
    let one = call(json!({"since_minutes": 10, "limit": 1})).await.expect("an answer");
    let one = structured(&one);
    assert_eq!(
        (one["nodes"].as_array().map(Vec::len), one["truncated"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        one["nodes_cut"].as_u64(),
        Some(dashboard["nodes"].as_array().map_or(0, Vec::len) as u64 - 1)
    );
    for (bad, named) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 10001}), "limit"),
        (json!({"since_minutes": 0}), "since_minutes"),
        (json!({"color": "red"}), "color"),
    ] {
        let r = call(bad.clone()).await.expect("a tool result");
        assert_eq!(r.is_error, Some(true), "{bad}: {r:?}");
        let message: String =
            r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
        assert!(message.contains(named), "{bad}: {message}");
    }

    // Over the store on disk: the same edges, but the registered ones (they live in the agent).
    let store =
        mission_sdk::dashboard::serve_store(&dir.0, DashboardConfig::loopback(0).with_token(TOKEN))
            .expect("store dashboard");
    let addr = store.local_addr();
    let on_disk =
        tokio::task::spawn_blocking(move || get(addr, "/api/graph?minutes=10")).await.expect("get");
    let mut without = want.clone();
    without.remove("agent:writer -relation-> datastore:docs");
    assert_eq!(edges(&on_disk), without, "{on_disk}");
    drop(client);
    store.shutdown();
    server.shutdown();
    control.shutdown();
}
