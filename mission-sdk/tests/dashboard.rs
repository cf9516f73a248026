//! The dashboard's JSON API and event stream, over real HTTP on loopback: what it shows matches
//! what was recorded, tokens and tenant scopes hold, bad input is a 400, and a store on disk is
//! served (and followed) the same way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mission_sdk::core::{
    Decision, EventBody, Level, LlmUsage, LogRecord, PermissionDecision, SpanKind, Symbol, Text,
    ThreadContext, Timestamp,
};
use mission_sdk::dashboard::{DashboardConfig, serve_store};
use mission_sdk::{Error, MissionControl, ServeError, Store};
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789";
const ACME: &str = "acme-viewer-0123456789";
const BETA: &str = "beta-viewer-0123456789";
const MS: u64 = 1_000_000;

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

/// One HTTP/1.1 response.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn request(addr: SocketAddr, path: &str, token: Option<&str>, host: Option<&str>) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let host = host.map_or_else(|| addr.to_string(), str::to_owned);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")
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

fn get(addr: SocketAddr, path: &str, token: &str) -> Value {
    let reply = request(addr, path, Some(token), None);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

/// Polls `path` until `done` holds of its JSON, or fails after a few seconds.
fn wait_for(addr: SocketAddr, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = get(addr, path, token);
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An open event stream.
struct Stream {
    socket: TcpStream,
    seen: String,
}

impl Stream {
    fn open(addr: SocketAddr, token: Option<&str>) -> Self {
        let mut socket = TcpStream::connect(addr).expect("connect");
        let query = token.map(|t| format!("?access_token={t}")).unwrap_or_default();
        write!(socket, "GET /api/stream{query} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("write");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let mut stream = Self { socket, seen: String::new() };
        // The first `stats` event arrives at once: the stream is subscribed from then on.
        stream.read_until("event: stats");
        assert!(stream.seen.contains("text/event-stream"), "{}", stream.seen);
        stream
    }

    /// Reads until `needle` arrived; returns everything read so far.
    fn read_until(&mut self, needle: &str) -> &str {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 8192];
        while !self.seen.contains(needle) {
            assert!(Instant::now() < deadline, "{needle} never came; got:\n{}", self.seen);
            match self.socket.read(&mut buf) {
                Ok(0) => panic!("stream closed; got:\n{}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("{e}"),
            }
        }
        &self.seen
    }
}

/// What one recorded thread's ids are.
struct Recorded {
    thread: String,
    root: String,
}

/// A thread of `agent` for `tenant`, starting `ago` before now: a 100 ms root step with a 40 ms
/// LLM call, a failing 30 ms tool call, a warn log and a permission decision.
fn record_thread(control: &MissionControl, tenant: &str, agent: &str, failing: bool) -> Recorded {
    let recorder = control.recorder();
    let ctx = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(agent));
    let t0 = Timestamp::now().0 - 200 * MS;
    let at = |ms: u64| Timestamp(t0 + ms * MS);
    let root =
        recorder.start_span_at(&ctx, SpanKind::AgentStep, Symbol::intern("handle"), None, at(0));
    let root_id = root.span_id();
    let mut llm = recorder.start_span_at(
        &ctx,
        SpanKind::LlmCall,
        Symbol::intern("chat"),
        Some(root_id),
        at(5),
    );
    llm.set_llm_usage(LlmUsage {
        model: Symbol::intern("gpt-4o"),
        provider: Symbol::intern("openai"),
        input_tokens: 100,
        output_tokens: 20,
        cost_usd: 0.01,
        ..LlmUsage::default()
    });
    llm.end_at(at(45));
    let tool = recorder.start_span_at(
        &ctx,
        SpanKind::ToolCall,
        Symbol::intern("web_search"),
        Some(root_id),
        at(50),
    );
    if failing {
        tool.end_at_with_error(at(80), "upstream returned 503");
    } else {
        tool.end_at(at(80));
    }
    let mut log = ctx.event(
        Symbol::intern("agent"),
        root_id,
        EventBody::Log(LogRecord {
            level: Level::Warn,
            target: Symbol::intern("agent"),
            message: Text::new("web_search failed; retrying"),
        }),
    );
    log.time = at(81);
    recorder.record(log);
    let mut decision = ctx.event(
        Symbol::intern("tool.call"),
        root_id,
        EventBody::Permission(PermissionDecision {
            actor: Text::new(agent),
            action: Symbol::intern("tool.call"),
            resource: Text::new("web_search"),
            decision: Decision::Allow,
            policy: Symbol::intern("default"),
        }),
    );
    decision.time = at(49);
    recorder.record(decision);
    root.end_at(at(100));
    Recorded { thread: ctx.thread_id.to_string(), root: root_id.to_string() }
}

/// One 10 ms span in a new thread.
fn record_span(control: &MissionControl, tenant: &str, agent: &str) -> Recorded {
    let ctx = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(agent));
    let start = Timestamp(Timestamp::now().0 - 10 * MS);
    let span = control.recorder().start_span_at(
        &ctx,
        SpanKind::AgentStep,
        Symbol::intern("step"),
        None,
        start,
    );
    let id = span.span_id();
    span.end_at(Timestamp(start.0 + 10 * MS));
    Recorded { thread: ctx.thread_id.to_string(), root: id.to_string() }
}

fn find<'v>(rows: &'v Value, key: &str, value: &str) -> Option<&'v Value> {
    rows.as_array()?.iter().find(|r| r[key] == value)
}

/// An agent of tenant `acme` storing in `dir` (no models), serving its dashboard to `ADMIN`,
/// `ACME` and `BETA`.
fn live_agent(dir: &TempDir) -> (MissionControl, mission_sdk::DashboardServer) {
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
    (control, server)
}

#[test]
fn live_api_shows_what_was_recorded_to_whom_it_may() {
    let dir = TempDir::new("live");
    let (control, server) = live_agent(&dir);
    let addr = server.local_addr();
    assert_eq!(server.url(), format!("http://{addr}/"));

    let t1 = record_thread(&control, "acme", "researcher", true);
    let t2 = record_span(&control, "beta", "billing");
    control.log(Level::Info, "outside any thread", &[]);
    // Everything reached every sink: the store holds it, and so does the live ring; each event
    // must still count once.
    control.flush().expect("flush");
    let overview = wait_for(addr, "/api/overview", ADMIN, |o| o["events_total"] == 7);
    assert_eq!(overview["mode"], "live");
    assert_eq!(overview["events_in_window"], 7, "{overview}");
    assert_eq!(overview["error_rate"], 0.25, "1 failed span of 4");
    let ops = &overview["operations"];
    let chat = find(ops, "name", "chat").expect("chat");
    assert_eq!((chat["kind"].as_str(), chat["count"].as_u64()), (Some("llm_call"), Some(1)));
    let p50 = chat["p50_ms"].as_f64().expect("p50");
    assert!((p50 - 40.0).abs() < 40.0 * 0.07, "{p50}");
    let search = find(ops, "name", "web_search").expect("web_search");
    assert_eq!(search["errors"], 1);
    let model = find(&overview["models"], "model", "gpt-4o").expect("model");
    assert_eq!((model["calls"].as_u64(), model["input_tokens"].as_u64()), (Some(1), Some(100)));
    assert_eq!(model["output_tokens"], 20);
    assert!(overview["rate_series"].as_array().is_some_and(|s| s.len() >= 90));
    assert_eq!(overview["health"]["dropped"], 0);
    assert_eq!(get(addr, "/api/overview", ACME)["events_total"], 6, "acme: its thread + the log");
    assert_eq!(get(addr, "/api/overview", BETA)["events_total"], 1);

    // Threads, newest first, and their filters.
    let threads = get(addr, "/api/threads", ADMIN);
    assert_eq!(threads["total"], 2, "{threads}");
    let row = find(&threads["threads"], "thread_id", &t1.thread).expect("t1 listed");
    assert_eq!(row["agent"], "researcher");
    assert_eq!(row["status"], "error");
    assert_eq!(row["duration_ms"], 100.0);
    assert_eq!((row["spans"].as_u64(), row["llm_calls"].as_u64()), (Some(3), Some(1)));
    assert_eq!((row["tool_calls"].as_u64(), row["errors"].as_u64()), (Some(1), Some(1)));
    assert_eq!(row["input_tokens"], 100);
    let ids = |v: &Value| -> Vec<String> {
        v["threads"].as_array().expect("rows").iter().map(|r| r["thread_id"].to_string()).collect()
    };
    let only = |path: &str, token: &str, id: &str| {
        let v = get(addr, path, token);
        assert_eq!(ids(&v), vec![format!("\"{id}\"")], "{path}: {v}");
    };
    only("/api/threads?status=error", ADMIN, &t1.thread);
    only("/api/threads?status=ok", ADMIN, &t2.thread);
    only("/api/threads?agent=billing", ADMIN, &t2.thread);
    only("/api/threads?min_ms=50", ADMIN, &t1.thread);
    only(&format!("/api/threads?q={}", &t1.thread[20..]), ADMIN, &t1.thread);
    only("/api/threads?q=BETA&minutes=5", ADMIN, &t2.thread);
    only("/api/threads?agent=&status=", ACME, &t1.thread);
    only("/api/threads", BETA, &t2.thread);
    assert_eq!(
        get(addr, "/api/threads?limit=1", ADMIN)["threads"].as_array().map(Vec::len),
        Some(1)
    );

    // One thread: spans with their durations and parents, logs, decisions.
    let view = get(addr, &format!("/api/threads/{}", t1.thread), ACME);
    assert_eq!(view["thread"]["thread_id"], t1.thread.as_str());
    let spans = view["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 3, "{view}");
    let span = |name: &str| spans.iter().find(|s| s["name"] == name).expect(name);
    assert_eq!(span("handle")["duration_ms"], 100.0);
    assert_eq!(span("handle")["parent_id"], Value::Null);
    assert_eq!(span("handle")["span_id"], t1.root.as_str());
    assert_eq!(span("chat")["duration_ms"], 40.0);
    assert_eq!(span("chat")["parent_id"], t1.root.as_str());
    assert_eq!(span("chat")["model"], "gpt-4o");
    assert_eq!(span("web_search")["duration_ms"], 30.0);
    assert_eq!(span("web_search")["status"], "error");
    assert_eq!(span("web_search")["error"], "upstream returned 503");
    assert_eq!(view["logs"][0]["level"], "warn");
    assert_eq!(view["logs"][0]["span_id"], t1.root.as_str());
    assert_eq!(view["permissions"][0]["resource"], "web_search");
    assert_eq!(view["permissions"][0]["decision"], "allow");

    // Tenant scopes: another tenant's thread does not exist for a viewer.
    let t2_path = format!("/api/threads/{}", t2.thread);
    assert_eq!(request(addr, &t2_path, Some(ACME), None).status, 404);
    let missing = request(addr, &format!("/api/threads/{}", t1.thread), Some(BETA), None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");
    assert_eq!(get(addr, &t2_path, ADMIN)["thread"]["tenant"], "beta");

    // Logs: minimum level, text, agent.
    let logs =
        |q: &str| get(addr, &format!("/api/logs{q}"), ADMIN)["logs"].as_array().map_or(0, Vec::len);
    assert_eq!(logs(""), 2);
    assert_eq!(logs("?level=warn"), 1);
    assert_eq!(logs("?level=info"), 2);
    assert_eq!(logs("?level=error"), 0);
    assert_eq!(logs("?q=OUTSIDE"), 1);
    assert_eq!(logs("?agent=researcher"), 1);
    let warn = get(addr, "/api/logs?level=warn", ADMIN);
    assert_eq!(warn["logs"][0]["thread_id"], t1.thread.as_str());
    assert_eq!(warn["logs"][0]["message"], "web_search failed; retrying");
    assert_eq!(get(addr, "/api/logs", BETA)["logs"].as_array().map(Vec::len), Some(0));
    let anomalies = get(addr, "/api/anomalies", ADMIN);
    assert!(anomalies["anomalies"].is_array() && anomalies["alerts"].is_array());

    // A thread recorded a moment ago, not flushed to the store yet, is there already.
    let t3 = record_span(&control, "acme", "researcher");
    let threads = wait_for(addr, "/api/threads", ADMIN, |v| v["total"] == 3);
    assert!(find(&threads["threads"], "thread_id", &t3.thread).is_some());
    let view = get(addr, &format!("/api/threads/{}", t3.thread), ADMIN);
    assert_eq!(view["spans"][0]["duration_ms"], 10.0);

    // Authentication.
    for (token, what) in [(None, "no token"), (Some("wrong-token-0123456789"), "a wrong token")] {
        let reply = request(addr, "/api/overview", token, None);
        assert_eq!(reply.status, 401, "{what}");
        assert_eq!(reply.json()["error"], "unauthorized");
        assert!(reply.header("www-authenticate").is_some());
    }
    assert_eq!(
        request(addr, &format!("/api/threads?access_token={ADMIN}"), None, None).status,
        200
    );
    assert_eq!(request(addr, "/api/stream", None, None).status, 401);
    let page = request(addr, "/", None, None);
    assert_eq!(page.status, 200, "the page holds no data and needs no token");
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(page.body.contains("<html"));
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/icon.svg", "image/svg+xml"),
    ] {
        let reply = request(addr, path, None, None);
        assert_eq!(reply.status, 200, "{path}");
        assert!(reply.header("content-type").is_some_and(|c| c.starts_with(kind)), "{path}");
    }
    assert_eq!(request(addr, "/healthz", None, None).body, "ok\n");
    let rebound = request(addr, "/", None, Some("evil.example:80"));
    assert_eq!(rebound.status, 403, "DNS rebinding: a foreign Host is refused");

    // Bad parameters are a 400 with the JSON error, never a panic.
    for path in [
        "/api/threads?limit=0",
        "/api/threads?limit=100000",
        "/api/threads?limit=abc",
        "/api/threads?minutes=0",
        "/api/threads?status=maybe",
        "/api/threads?min_ms=-1",
        "/api/threads/not-a-thread-id",
        "/api/threads/%FF%00%0A",
        "/api/threads/00000000000000000000000000000000",
        "/api/overview?minutes=99999999999999999999",
        "/api/logs?level=loud",
        "/api/logs?thread_id=xyz",
        "/api/anomalies?limit=-5",
    ] {
        let reply = request(addr, path, Some(ADMIN), None);
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.json()["error"], "bad_request", "{path}");
    }
    let unknown = format!("/api/threads/{}", "ab".repeat(16));
    assert_eq!(request(addr, &unknown, Some(ADMIN), None).status, 404);
    assert_eq!(request(addr, "/api/nothing", Some(ADMIN), None).status, 404);

    // The stream: a span recorded now arrives as a `span` event, only to whom may see it.
    let mut admin = Stream::open(addr, Some(ADMIN));
    let mut beta = Stream::open(addr, Some(BETA));
    let acme_span = record_span(&control, "acme", "researcher");
    let beta_span = record_span(&control, "beta", "billing");
    let seen = admin.read_until(&beta_span.root).to_owned();
    assert!(seen.contains("event: span"), "{seen}");
    assert!(seen.contains(&acme_span.root), "{seen}");
    let data = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.contains(&acme_span.root))
        .expect("the span's data line");
    let span: Value = serde_json::from_str(data).expect("json");
    assert_eq!(span["duration_ms"], 10.0);
    assert_eq!(span["thread_id"], acme_span.thread.as_str());
    assert_eq!(span["kind"], "agent_step");
    let seen = beta.read_until(&beta_span.root);
    assert!(!seen.contains(&acme_span.root), "a beta viewer never sees acme's span");
    let stats = beta.read_until("\"events_total\"").to_owned();
    assert!(stats.contains("\"lagged\""), "{stats}");

    server.shutdown();
    drop(control);
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let public = DashboardConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)));
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .without_models()
        .build()
        .expect("build");
    match control.serve_dashboard(public.clone()) {
        Err(Error::Serve { message, .. }) => assert!(message.contains("token"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let dir = TempDir::new("refused");
    assert!(matches!(serve_store(&dir.0, public.clone()), Err(ServeError::Serve { .. })));
    assert!(matches!(
        serve_store(&dir.0, public.clone().with_token("short")),
        Err(ServeError::Serve { .. })
    ));
    let server = serve_store(&dir.0, public.with_token(ADMIN)).expect("with a token it serves");
    // A wildcard address answers to any name, and its token guards the data.
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    assert_eq!(request(addr, "/api/overview", None, Some("dashboard.example:7878")).status, 401);
    assert_eq!(request(addr, "/api/overview", Some(ADMIN), Some("dashboard.example")).status, 200);
}

#[test]
fn a_store_on_disk_is_served_and_followed() {
    let dir = TempDir::new("store");
    let writer = || {
        MissionControl::builder()
            .ignore_environment()
            .with_store_root(&dir.0)
            .with_tenant("acme")
            .without_models()
            .build()
            .expect("build")
    };
    let control = writer();
    let t1 = record_thread(&control, "acme", "researcher", false);
    let t2 = record_span(&control, "beta", "billing");
    drop(control);

    let server = serve_store(
        &dir.0,
        DashboardConfig::loopback(0).with_token(ADMIN).with_tenant_token(BETA, "beta"),
    )
    .expect("serve");
    let addr = server.local_addr();
    let overview = get(addr, "/api/overview", ADMIN);
    assert_eq!(overview["mode"], "store");
    assert_eq!(overview["events_total"], 6, "{overview}");
    assert_eq!(overview["error_rate"], 0.0);
    assert_eq!(get(addr, "/api/overview", BETA)["events_total"], 1);
    assert!(overview["health"]["files"].as_u64().is_some_and(|f| f >= 1), "{overview}");
    let threads = get(addr, "/api/threads", ADMIN);
    assert_eq!(threads["total"], 2);
    assert_eq!(find(&threads["threads"], "thread_id", &t1.thread).expect("t1")["status"], "ok");
    let view = get(addr, &format!("/api/threads/{}", t1.thread), ADMIN);
    assert_eq!(view["spans"].as_array().map(Vec::len), Some(3));
    assert_eq!(request(addr, &format!("/api/threads/{}", t1.thread), Some(BETA), None).status, 404);
    assert_eq!(
        get(addr, &format!("/api/threads/{}", t2.thread), BETA)["spans"][0]["duration_ms"],
        10.0
    );

    // What another process writes later streams in as its files are finalized.
    let mut stream = Stream::open(addr, Some(ADMIN));
    let control = writer();
    let t3 = record_span(&control, "acme", "late");
    control.flush().expect("flush");
    let seen = stream.read_until(&t3.root).to_owned();
    assert!(seen.contains("event: span"), "{seen}");
    wait_for(addr, "/api/overview", ADMIN, |o| o["events_total"] == 7);
    drop(control);
    server.shutdown();
}

#[test]
fn answers_over_a_store_list_the_files_they_skipped() {
    let dir = TempDir::new("unreadable");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    record_thread(&control, "acme", "researcher", false);
    record_span(&control, "beta", "billing");
    drop(control);
    let acme = Store::open(&dir.0)
        .expect("open")
        .files()
        .iter()
        .find(|f| f.partition.tenant == "acme")
        .map(|f| f.path.clone())
        .expect("an acme file");
    let garbage = acme.with_file_name("part-garbage.parquet");
    std::fs::write(&garbage, b"not parquet").expect("write");

    let server = serve_store(
        &dir.0,
        DashboardConfig::loopback(0).with_token(ADMIN).with_tenant_token(BETA, "beta"),
    )
    .expect("serve");
    let addr = server.local_addr();
    for path in ["/api/overview", "/api/threads"] {
        let answer = get(addr, path, ADMIN);
        let unreadable = answer["unreadable"].as_array().expect("unreadable list");
        assert_eq!(unreadable.len(), 1, "{path}: {answer}");
        assert!(unreadable[0].as_str().is_some_and(|u| u.contains("part-garbage.parquet")));
        // The other tenant's answers read none of acme's files, so they are complete.
        let beta = get(addr, path, BETA);
        assert_eq!(beta["unreadable"].as_array().map(Vec::len), Some(0), "{path}: {beta}");
    }
    std::fs::remove_file(&garbage).expect("remove");
    let answer = get(addr, "/api/overview", ADMIN);
    assert_eq!(answer["unreadable"].as_array().map(Vec::len), Some(0), "{answer}");
    server.shutdown();
}

/// `POST path` with `body` and the given extra headers; the reply.
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    Reply { status, headers: head.to_owned(), body: body.to_owned() }
}

/// An operator pauses and cancels a running child thread from the page's write route; a
/// viewer, a foreign Origin, a form content type and a token in the query string are refused;
/// the thread view shows the tree and the live state; a dashboard over the store answers 409.
#[test]
fn an_operator_controls_a_running_thread_and_nobody_else_can() {
    const OPERATOR: &str = "acme-operator-0123456789";
    let dir = TempDir::new("control");
    let root = dir.0.join("store");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .build()
        .expect("build");
    let config = DashboardConfig::loopback(0)
        .with_token(ADMIN)
        .with_role_token(ACME, mission_sdk::Role::Viewer, Some("acme"))
        .with_role_token(OPERATOR, mission_sdk::Role::Operator, Some("acme"));
    let server = control.serve_dashboard(config.clone()).expect("dashboard");
    let addr = server.local_addr();
    let agent = control.agent("planner");
    let parent = agent.thread();
    let child = parent.child_thread(&control.agent("researcher"));
    control.flush().expect("flush");
    let path = format!("/api/threads/{}/control", child.id());
    let json = ("Content-Type", "application/json");
    let bearer = |t: &str| format!("Bearer {t}");
    let (viewer, operator) = (bearer(ACME), bearer(OPERATOR));
    let pause = r#"{"command": "pause", "reason": "look at it"}"#;

    let refused = [
        post(addr, &path, &[("Authorization", &viewer), json], pause),
        post(addr, &path, &[("Authorization", &operator), ("Content-Type", "text/plain")], pause),
        post(
            addr,
            &path,
            &[("Authorization", &operator), json, ("Origin", "https://evil.example")],
            pause,
        ),
        post(addr, &format!("{path}?access_token={OPERATOR}"), &[json], pause),
        post(addr, &path, &[json], pause),
    ];
    let statuses: Vec<u16> = refused.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 415, 403, 400, 401], "{:?}", refused.map(|r| r.body));
    assert!(!child.should_stop(), "nothing refused reached the thread");

    let origin = format!("http://{addr}");
    let ok = post(addr, &path, &[("Authorization", &operator), json, ("Origin", &origin)], pause);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["state"], "paused");
    assert!(child.should_stop());
    let bad = post(addr, &path, &[("Authorization", &operator), json], r#"{"command": "explode"}"#);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("explode"), "{}", bad.body);
    let other = post(
        addr,
        &path,
        &[("Authorization", &operator), json],
        r#"{"command": "cancel", "tenant": "globex"}"#,
    );
    assert_eq!(other.status, 404, "naming another tenant finds nothing: {}", other.body);

    // The child's view (its start is recorded; the parent has recorded nothing yet): its
    // parent, and how it runs now.
    let view = get(addr, &format!("/api/threads/{}", child.id()), ADMIN);
    assert_eq!(view["live"]["state"], "paused");
    assert_eq!(view["live"]["state_reason"], "look at it");
    assert_eq!(view["tree"]["parent_thread_id"], parent.id().to_string());
    let cancel = r#"{"command": "cancel", "reason": "done"}"#;
    let ok = post(addr, &path, &[("Authorization", &operator), json], cancel);
    assert_eq!(ok.json()["state"], "cancelled");
    let again =
        post(addr, &path, &[("Authorization", &operator), json], r#"{"command": "resume"}"#);
    assert_eq!(again.status, 409, "a cancelled thread cannot resume: {}", again.body);
    let view = get(addr, &format!("/api/threads/{}", child.id()), ADMIN);
    assert_eq!(view["live"]["state"], "cancelled");
    assert_eq!(view["tree"]["parent_thread_id"], parent.id().to_string());

    let store_server = serve_store(&root, config).expect("store dashboard");
    let on_disk =
        post(store_server.local_addr(), &path, &[("Authorization", &operator), json], pause);
    assert_eq!(on_disk.status, 409, "{}", on_disk.body);
    drop((child, parent));
}

/// The Control page's routes: `/api/control` lists an approval a run by hand proposed; an
/// operator approves it with `POST /api/approvals/{id}` (the remedy runs) and runs a directive
/// with `POST /api/directives/{name}/run`; a viewer, a foreign Origin, another tenant and a
/// second decision are refused; over the store there is nothing to act on.
#[test]
fn an_operator_decides_approvals_and_runs_directives_from_the_page() {
    const OPERATOR: &str = "acme-operator-0123456789";
    let dir = TempDir::new("approvals");
    let root = dir.0.join("store");
    let held = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                approve = { within = \"1h\" }\n\
                then = [{ action = \"cancel_thread\", reason = \"held\" }]\n";
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .with_directives(mission_sdk::DirectiveSet::from_toml_str(held, "test").expect("toml"))
        .build()
        .expect("build");
    let config = DashboardConfig::loopback(0)
        .with_token(ADMIN)
        .with_role_token(ACME, mission_sdk::Role::Viewer, Some("acme"))
        .with_role_token(OPERATOR, mission_sdk::Role::Operator, Some("acme"));
    let server = control.serve_dashboard(config.clone()).expect("dashboard");
    let addr = server.local_addr();
    let thread = control.agent("planner").thread();
    let json = ("Content-Type", "application/json");
    let (viewer, operator) = (format!("Bearer {ACME}"), format!("Bearer {OPERATOR}"));

    let run_body = format!(r#"{{"thread_id": "{}"}}"#, thread.id());
    let refused =
        post(addr, "/api/directives/held/run", &[("Authorization", &viewer), json], &run_body);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let other = post(
        addr,
        "/api/directives/held/run",
        &[("Authorization", &operator), json],
        r#"{"tenant": "globex"}"#,
    );
    assert_eq!(other.status, 403, "{}", other.body);
    let missing =
        post(addr, "/api/directives/nope/run", &[("Authorization", &operator), json], "{}");
    assert_eq!(missing.status, 404, "{}", missing.body);
    let ran =
        post(addr, "/api/directives/held/run", &[("Authorization", &operator), json], &run_body);
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert_eq!(ran.json()["outcome"], "pending_approval");
    assert_eq!(ran.json()["by"], "dashboard:operator@acme");

    let listed = get(addr, "/api/control", OPERATOR);
    assert_eq!(listed["can_control"], true);
    let approval = &listed["approvals"][0];
    assert_eq!(approval["state"], "pending");
    assert_eq!(approval["thread_id"], thread.id().to_string());
    assert_eq!(listed["runs"][0]["trigger"], "manual");
    assert_eq!(get(addr, "/api/control", ACME)["can_control"], false, "a viewer may not act");
    let path = format!("/api/approvals/{}", approval["id"]);
    let approve = r#"{"decision": "approve", "note": "confirmed"}"#;
    for headers in [
        &[("Authorization", viewer.as_str()), json][..],
        &[("Authorization", operator.as_str()), json, ("Origin", "https://evil.example")][..],
        &[("Authorization", operator.as_str()), ("Content-Type", "text/plain")][..],
    ] {
        let r = post(addr, &path, headers, approve);
        assert!(matches!(r.status, 403 | 415), "{}: {}", r.status, r.body);
    }
    assert!(!thread.should_stop(), "nothing refused reached the thread");
    let bad = post(addr, &path, &[("Authorization", &operator), json], r#"{"decision": "maybe"}"#);
    assert_eq!(bad.status, 400, "{}", bad.body);
    let ok = post(addr, &path, &[("Authorization", &operator), json], approve);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["state"], "approved");
    assert_eq!(ok.json()["decided_by"], "dashboard:operator@acme");
    assert!(thread.should_stop(), "the approved remedy cancelled the thread");
    let again = post(addr, &path, &[("Authorization", &operator), json], approve);
    assert_eq!(again.status, 409, "{}", again.body);
    let unknown = post(addr, "/api/approvals/999", &[("Authorization", &operator), json], approve);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // An anomaly opens an incident, listed with the approvals.
    let mut anomaly = mission_core::Event::new(
        mission_core::Symbol::intern("chat.latency"),
        mission_core::EventBody::Anomaly(mission_core::AnomalyEvent {
            score: 0.97,
            ..Default::default()
        }),
    );
    anomaly.tenant = mission_core::Symbol::intern("acme");
    anomaly.time = mission_core::Timestamp::now();
    anomaly.attributes.set(mission_core::Symbol::intern("mission.anomaly.cause"), "model=m1");
    control.recorder().record(anomaly);
    control.flush().expect("flush");
    let listed = get(addr, "/api/control", OPERATOR);
    assert_eq!(listed["incidents"][0]["cause"], "model=m1", "{listed}");
    assert_eq!(listed["incidents"][0]["members"][0]["kind"], "anomaly");

    let store_server = serve_store(&root, config).expect("store dashboard");
    let on_disk =
        post(store_server.local_addr(), &path, &[("Authorization", &operator), json], approve);
    assert_eq!(on_disk.status, 409, "{}", on_disk.body);
    assert!(get(store_server.local_addr(), "/api/control", ADMIN)["live"].is_null());
    drop(thread);
}

// ---------------------------------------------------------------------------------------------
// The text routes: `/metrics` (OpenMetrics) and the exports.

/// `GET path` answered 200 (any content type).
fn text_ok(addr: SocketAddr, path: &str, token: &str) -> Reply {
    let reply = request(addr, path, Some(token), None);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply
}

/// The value of the sample `line_start` (a name with its labels) in `text`.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_show_the_health_report_and_latency_to_whom_it_may() {
    let dir = TempDir::new("metrics");
    let (control, server) = live_agent(&dir);
    let addr = server.local_addr();
    record_thread(&control, "acme", "researcher", true);
    record_thread(&control, "acme", "researcher", false);
    record_thread(&control, "beta", "billing", false);
    control.flush().expect("flush");
    // The feed has seen every event (15) once the overview counts them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, "/api/overview", ADMIN)["events_total"] != 15 {
        assert!(Instant::now() < deadline, "the feed never saw the 15 events");
        std::thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(request(addr, "/metrics", None, None).status, 401, "the token guards /metrics");
    let reply = text_ok(addr, "/metrics", ADMIN);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = reply.body;
    assert!(text.ends_with("# EOF\n"), "{text}");
    let health = control.health();
    let recorded = sample(&text, "mission_events_recorded_total").expect("recorded");
    assert_eq!(recorded, health.accounting.recorded as f64);
    assert_eq!(recorded, 15.0);
    assert_eq!(sample(&text, "mission_events_delivered_total"), Some(15.0));
    assert_eq!(sample(&text, "mission_events_dropped_total{reason=\"buffer_full\"}"), Some(0.0));
    assert_eq!(sample(&text, "mission_sink_state{sink=\"parquet\",state=\"ok\"}"), Some(1.0));
    let parquet = health.sinks.iter().find(|s| s.name == "parquet").expect("parquet sink");
    assert_eq!(
        sample(&text, "mission_sink_events_total{sink=\"parquet\"}"),
        Some(parquet.events as f64)
    );
    assert!(sample(&text, "mission_directives_events_total").is_some(), "{text}");
    let tool = "tenant=\"acme\",kind=\"tool_call\",name=\"web_search\"";
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
    let acme = text_ok(addr, "/metrics", ACME).body;
    assert!(acme.ends_with("# EOF\n"));
    assert!(!acme.contains("beta"), "{acme}");
    assert!(!acme.contains("dropped") && !acme.contains("delivered"), "{acme}");
    assert_eq!(sample(&acme, "mission_events_recorded_total"), Some(10.0));
    assert_eq!(sample(&acme, &format!("{hist}_count{{{tool}}}")), Some(2.0));
    let beta = text_ok(addr, "/metrics", BETA).body;
    assert!(!beta.contains("acme"), "{beta}");
    assert_eq!(sample(&beta, "mission_events_recorded_total"), Some(5.0));
    server.shutdown();
}

#[test]
fn exports_hold_the_threads_with_their_spans_within_the_tenant() {
    let dir = TempDir::new("exports");
    let (control, live) = live_agent(&dir);
    let ids: Vec<String> =
        (0..3).map(|i| record_thread(&control, "acme", "=researcher", i == 0).thread).collect();
    let other = record_thread(&control, "beta", "billing", false).thread;
    control.flush().expect("flush");
    // Inside the agent, the export is the store's (below) as soon as it is flushed.
    let live_export = text_ok(live.local_addr(), "/api/export/threads.csv", ADMIN).body;
    assert_eq!(live_export.split("\r\n").filter(|l| !l.is_empty()).count(), 5, "{live_export}");
    live.shutdown();
    drop(control);
    let server = serve_store(
        &dir.0,
        DashboardConfig::loopback(0).with_token(ADMIN).with_tenant_token(ACME, "acme"),
    )
    .expect("serve");
    let addr = server.local_addr();

    assert_eq!(request(addr, "/api/export/threads.jsonl", None, None).status, 401);
    let reply = text_ok(addr, "/api/export/threads.jsonl", ACME);
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
        let view = get(addr, &format!("/api/threads/{id}"), ACME);
        assert_eq!(line["spans"], view["spans"], "the export's spans are the thread view's");
        assert_eq!(line["spans"].as_array().map(Vec::len), Some(3));
        assert_eq!(line["agent"], "=researcher");
    }
    let all = text_ok(addr, "/api/export/threads.jsonl", ADMIN).body;
    assert_eq!(all.lines().count(), 4);
    let cut = text_ok(addr, "/api/export/threads.jsonl?limit=2", ADMIN);
    assert_eq!(cut.body.lines().count(), 2);
    assert_eq!(cut.header("x-mission-truncated"), Some("true"));
    let errors = text_ok(addr, "/api/export/threads.jsonl?status=error", ACME).body;
    assert!(errors.lines().count() == 1 && errors.contains(&ids[0]));
    for bad in ["limit=0", "limit=1001", "minutes=abc", "status=odd"] {
        let reply = request(addr, &format!("/api/export/threads.csv?{bad}"), Some(ADMIN), None);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body.contains("bad_request"));
    }

    let csv = text_ok(addr, "/api/export/threads.csv", ACME);
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
    assert!(failed.ends_with(",3,1,1,1,100,20,0.01"), "{failed}");
    assert!(!csv.body.contains("beta"));
    server.shutdown();
}

/// The body of a report page from its first section on (what does not depend on the moment
/// the period ends).
fn report_sections(html: &str) -> &str {
    &html[html.find("<h2>Volumes</h2>").expect("the Volumes section")..]
}

#[test]
fn the_report_page_is_the_tenants_report_ready_to_print() {
    let dir = TempDir::new("report-page");
    let (control, live) = live_agent(&dir);
    record_thread(&control, "acme", "researcher-a", true);
    record_thread(&control, "acme", "researcher-a", false);
    record_thread(&control, "beta", "billing-b", false);
    control.flush().expect("flush");
    // Inside the agent, over what it flushed.
    let page = text_ok(live.local_addr(), "/api/report.html", ADMIN).body;
    assert!(page.contains("researcher-a") && page.contains("billing-b"), "{page}");
    live.shutdown();
    drop(control);
    let server = serve_store(
        &dir.0,
        DashboardConfig::loopback(0)
            .with_token(ADMIN)
            .with_tenant_token(ACME, "acme")
            .with_tenant_token(BETA, "beta"),
    )
    .expect("serve");
    let addr = server.local_addr();
    assert_eq!(request(addr, "/api/report.html", None, None).status, 401);

    let acme = text_ok(addr, "/api/report.html?minutes=1440", ACME);
    assert!(acme.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let csp = acme.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self' 'unsafe-inline'"));
    assert_eq!(acme.header("x-mission-truncated"), Some("false"));
    let html = &acme.body;
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("<title>Mission Control report, "));
    assert!(html.contains("@media print"));
    for section in ["Volumes", "Latency by operation", "Cost by model", "Slowest threads"] {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "{section}: {html}");
    }
    assert!(html.contains("<li>Tenant: acme</li>"), "{html}");
    assert!(html.contains("researcher-a"), "{html}");
    assert!(!html.contains("billing-b") && !html.contains("beta"), "{html}");
    assert!(!html.contains("<script"));
    // The page is the library's report (what `mission-ctl report --format html` prints).
    let store = Store::open(&dir.0).expect("open");
    let to = Timestamp::now();
    let from = Timestamp(to.0 - 1440 * 60 * 1_000_000_000);
    let report = mission_sdk::report::build_report(&store, from, to, Some("acme")).expect("report");
    assert_eq!(report.volumes.threads, 2);
    assert_eq!(report.volumes.errors, 1);
    assert_eq!(report_sections(html), report_sections(&mission_sdk::report::html(&report)));

    let beta = text_ok(addr, "/api/report.html", BETA).body;
    assert!(beta.contains("<li>Tenant: beta</li>") && beta.contains("billing-b"), "{beta}");
    assert!(!beta.contains("researcher-a") && !beta.contains("acme"), "{beta}");
    let all = text_ok(addr, "/api/report.html", ADMIN).body;
    assert!(all.contains("<li>Tenants: all</li>"), "{all}");
    assert!(all.contains("researcher-a") && all.contains("billing-b"), "{all}");

    for bad in ["minutes=0", "minutes=43201", "minutes=abc"] {
        let reply = request(addr, &format!("/api/report.html?{bad}"), Some(ADMIN), None);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body.contains("bad_request") && reply.body.contains("minutes"), "{bad}");
    }
    server.shutdown();
}
