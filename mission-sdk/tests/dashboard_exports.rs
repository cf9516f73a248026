//! The dashboard's text routes over real HTTP on loopback: `/metrics` (OpenMetrics, the health
//! report's numbers and a latency histogram per operation, scoped to a tenant's token) and the
//! exports (`/api/export/threads.jsonl`, `/api/export/threads.csv`), inside an agent and over a
//! store on disk.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mission_sdk::MissionControl;
use mission_sdk::core::{SpanKind, Symbol, ThreadContext, Timestamp};
use mission_sdk::dashboard::{DashboardConfig, serve_store};
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789";
const ACME: &str = "acme-viewer-0123456789";
const BETA: &str = "beta-viewer-0123456789";
const MS: u64 = 1_000_000;

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn request(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let mut reply = Reply { status, headers: head.to_owned(), body: body.to_owned() };
    if reply.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut decoded = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            decoded.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        reply.body = decoded;
    }
    reply
}

fn ok(addr: SocketAddr, path: &str, token: &str) -> Reply {
    let reply = request(addr, path, Some(token));
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply
}

fn json(addr: SocketAddr, path: &str, token: &str) -> Value {
    serde_json::from_str(&ok(addr, path, token).body).expect("json")
}

/// A thread of `tenant`: a 100 ms step holding a 40 ms LLM call and a 30 ms tool call (failing
/// when `failing`). Returns its id.
fn record_thread(control: &MissionControl, tenant: &str, agent: &str, failing: bool) -> String {
    let recorder = control.recorder();
    let ctx = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(agent));
    let t0 = Timestamp::now().0 - 200 * MS;
    let at = |ms: u64| Timestamp(t0 + ms * MS);
    let root =
        recorder.start_span_at(&ctx, SpanKind::AgentStep, Symbol::intern("handle"), None, at(0));
    let root_id = root.span_id();
    let llm = recorder.start_span_at(
        &ctx,
        SpanKind::LlmCall,
        Symbol::intern("chat"),
        Some(root_id),
        at(5),
    );
    llm.end_at(at(45));
    let tool = recorder.start_span_at(
        &ctx,
        SpanKind::ToolCall,
        Symbol::intern("web,\"search\""),
        Some(root_id),
        at(50),
    );
    if failing {
        tool.end_at_with_error(at(80), "upstream returned 503");
    } else {
        tool.end_at(at(80));
    }
    root.end_at(at(100));
    ctx.thread_id.to_string()
}

/// The value of the sample `line_start` (a name with its labels) in `text`.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_show_the_health_report_and_latency_to_whom_it_may() {
    let dir = TempDir::new("metrics");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    let server = control
        .serve_dashboard(
            DashboardConfig::loopback(0)
                .with_token(ADMIN)
                .with_tenant_token(ACME, "acme")
                .with_tenant_token(BETA, "beta"),
        )
        .expect("serve");
    let addr = server.local_addr();
    record_thread(&control, "acme", "researcher", true);
    record_thread(&control, "acme", "researcher", false);
    record_thread(&control, "beta", "billing", false);
    control.flush().expect("flush");
    // The feed has seen every span (9) once the overview counts them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while json(addr, "/api/overview", ADMIN)["events_total"] != 9 {
        assert!(Instant::now() < deadline, "the feed never saw the 9 spans");
        std::thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(request(addr, "/metrics", None).status, 401, "the token guards /metrics");
    let reply = ok(addr, "/metrics", ADMIN);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = reply.body;
    assert!(text.ends_with("# EOF\n"), "{text}");
    let health = control.health();
    let recorded = sample(&text, "mission_events_recorded_total").expect("recorded");
    assert_eq!(recorded, health.accounting.recorded as f64);
    assert_eq!(recorded, 9.0);
    assert_eq!(sample(&text, "mission_events_delivered_total"), Some(9.0));
    assert_eq!(sample(&text, "mission_events_dropped_total{reason=\"buffer_full\"}"), Some(0.0));
    assert_eq!(sample(&text, "mission_sink_state{sink=\"parquet\",state=\"ok\"}"), Some(1.0));
    let parquet = health.sinks.iter().find(|s| s.name == "parquet").expect("parquet sink");
    assert_eq!(
        sample(&text, "mission_sink_events_total{sink=\"parquet\"}"),
        Some(parquet.events as f64)
    );
    assert!(sample(&text, "mission_directives_events_total").is_some(), "{text}");
    let tool = "tenant=\"acme\",kind=\"tool_call\",name=\"web,\\\"search\\\"\"";
    let hist = "mission_operation_duration_seconds";
    assert_eq!(sample(&text, &format!("{hist}_count{{{tool}}}")), Some(2.0), "{text}");
    assert_eq!(sample(&text, &format!("{hist}_bucket{{{tool},le=\"0.025\"}}")), Some(0.0));
    assert_eq!(sample(&text, &format!("{hist}_bucket{{{tool},le=\"0.05\"}}")), Some(2.0));
    assert_eq!(sample(&text, &format!("{hist}_bucket{{{tool},le=\"+Inf\"}}")), Some(2.0));
    let sum = sample(&text, &format!("{hist}_sum{{{tool}}}")).expect("sum");
    assert!((sum - 0.06).abs() < 1e-9, "{sum}");
    assert_eq!(sample(&text, &format!("mission_operation_errors_total{{{tool}}}")), Some(1.0));
    assert!(text.contains("tenant=\"beta\""));

    // A tenant's token: its own series, no process-wide counter.
    let acme = ok(addr, "/metrics", ACME).body;
    assert!(acme.ends_with("# EOF\n"));
    assert!(!acme.contains("beta"), "{acme}");
    assert!(!acme.contains("dropped") && !acme.contains("delivered"), "{acme}");
    assert_eq!(sample(&acme, "mission_events_recorded_total"), Some(6.0));
    assert_eq!(sample(&acme, &format!("{hist}_count{{{tool}}}")), Some(2.0));
    let beta = ok(addr, "/metrics", BETA).body;
    assert!(!beta.contains("acme"), "{beta}");
    assert_eq!(sample(&beta, "mission_events_recorded_total"), Some(3.0));
    server.shutdown();
}

#[test]
fn exports_hold_the_threads_with_their_spans_within_the_tenant() {
    let dir = TempDir::new("exports");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    let ids: Vec<String> =
        (0..3).map(|i| record_thread(&control, "acme", "=researcher", i == 0)).collect();
    let other = record_thread(&control, "beta", "billing", false);
    drop(control);
    let server = serve_store(
        &dir.0,
        DashboardConfig::loopback(0).with_token(ADMIN).with_tenant_token(ACME, "acme"),
    )
    .expect("serve");
    let addr = server.local_addr();

    assert_eq!(request(addr, "/api/export/threads.jsonl", None).status, 401);
    let reply = ok(addr, "/api/export/threads.jsonl", ACME);
    assert!(reply.header("content-type").is_some_and(|c| c.starts_with("application/x-ndjson")));
    assert_eq!(reply.header("x-mission-truncated"), Some("false"));
    assert!(reply.header("content-disposition").is_some_and(|c| c.contains("threads.jsonl")));
    assert!(!reply.body.contains(&other) && !reply.body.contains("beta"), "{}", reply.body);
    let lines: Vec<Value> =
        reply.body.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let id = line["thread_id"].as_str().expect("id");
        assert!(ids.contains(&id.to_owned()));
        let view = json(addr, &format!("/api/threads/{id}"), ACME);
        assert_eq!(line["spans"], view["spans"], "the export's spans are the thread view's");
        assert_eq!(line["spans"].as_array().map(Vec::len), Some(3));
        assert_eq!(line["agent"], "=researcher");
    }
    let all = ok(addr, "/api/export/threads.jsonl", ADMIN).body;
    assert_eq!(all.lines().count(), 4);
    let cut = ok(addr, "/api/export/threads.jsonl?limit=2", ADMIN);
    assert_eq!(cut.body.lines().count(), 2);
    assert_eq!(cut.header("x-mission-truncated"), Some("true"));
    let errors = ok(addr, "/api/export/threads.jsonl?status=error", ACME).body;
    assert!(errors.lines().count() == 1 && errors.contains(&ids[0]));
    for bad in ["limit=0", "limit=1001", "minutes=abc", "status=odd"] {
        let reply = request(addr, &format!("/api/export/threads.csv?{bad}"), Some(ADMIN));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body.contains("bad_request"));
    }

    let csv = ok(addr, "/api/export/threads.csv", ACME);
    assert!(csv.header("content-type").is_some_and(|c| c.starts_with("text/csv")));
    let rows: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows[0],
        "thread_id,tenant,agent,status,start_ns,end_ns,duration_ms,spans,llm_calls,tool_calls,errors,input_tokens,output_tokens,cost_usd"
    );
    assert_eq!(rows.len(), 4);
    let failed = rows.iter().find(|r| r.starts_with(&ids[0])).expect("the failed thread");
    // The agent name would be a formula in a spreadsheet: defused.
    assert!(failed.contains(",acme,'=researcher,error,"), "{failed}");
    assert!(failed.ends_with(",3,1,1,1,0,0,0.0"), "{failed}");
    assert!(!csv.body.contains("beta"));
    server.shutdown();
}
