//! The tenant-isolation suite: two tenants share thread ids, agent, operation and model names,
//! incident keys and the agent's own tenant; for every surface — the Rust `Store` with a tenant
//! scope, every MCP tool, resource and prompt over HTTP with tenant tokens, and the dashboard's
//! JSON API and event stream — a tenant's principals never receive a byte of the other tenant's
//! data, and no write of theirs (acknowledge, directive changes, policy, erase, session delete)
//! reaches the other tenant.
//!
//! Every content string a tenant records carries that tenant's marker; a response is checked
//! for the other tenant's marker, its name and its MCP session id (raw and as spans record it).
//! What a request itself named (a probe for the other tenant's thread id) is removed from the
//! response before the check, since echoing the caller's own argument tells it nothing.
//!
//! [`SURFACES`] is the one list the suite iterates; `every_surface_is_in_the_suite` fails when
//! the MCP server lists a tool, resource or prompt, or advertises a change notification, or
//! the dashboard (inside the agent, or over the store on disk) a route, that it lacks. The
//! audit trail is a surface too: a tenant's records and the chain's anchors in its files.
//! (`mission-ctl --tenant` is checked in `mission-ctl/tests/tenant_isolation.rs`, and with
//! Python's `query(tenant=)` in `tests/python/test_tenant_isolation.py`.)

// A tenant is an index into several parallel tables (names, markers, tokens, threads).
#![allow(clippy::needless_range_loop)]
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mission_sdk::core::{
    AnomalyEvent, Decision, EventBody, Level, LlmUsage, LogRecord, PermissionDecision, SpanId,
    SpanKind, Symbol, Text, ThreadContext, ThreadId, Timestamp,
};
use mission_sdk::dashboard::DashboardConfig;
use mission_sdk::policy::PolicySet;
use mission_sdk::{DashboardServer, McpHttpConfig, McpHttpServer, MissionControl, Role};
use proptest::prelude::*;
use serde_json::{Value, json};

const TENANTS: [&str; 2] = ["acme-corp", "globex-inc"];
/// Every content string of tenant `t` contains `MARKERS[t]`.
const MARKERS: [&str; 2] = ["qx-zero-mark", "qx-one-mark"];
const ADMIN: &str = "admin-of-everyone-0123456789";
/// Tokens of each tenant: viewer, operator, admin.
const TOKENS: [[&str; 3]; 2] = [
    ["acme-viewer-0123456789", "acme-operator-0123456789", "acme-admin-0123456789"],
    ["globex-viewer-0123456789", "globex-operator-0123456789", "globex-admin-0123456789"],
];
const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];
const AGENT: &str = "support-bot";
/// A directive whose remedy waits for approval (run by hand in each tenant).
const HELD: &str = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                    approve = { within = \"1h\" }\n\
                    then = [{ action = \"pause_thread\", reason = \"held\" }]\n";
const OPERATION: &str = "web_search";
const MODEL: &str = "gpt-4.1";
const SHARED_THREADS: usize = 3;

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (Connection: close) and the MCP streamable-HTTP calls over it.

#[derive(Debug)]
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

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            out.push_str(&after[..size.min(after.len())]);
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    out
}

fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let mut reply = Reply { status, headers: head.to_owned(), body: body.to_owned() };
    if reply.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// One MCP session over HTTP, opened with one token.
struct McpClient {
    addr: SocketAddr,
    token: String,
    session: String,
    next_id: u64,
    /// What the server said it can do (its `initialize` answer).
    capabilities: Value,
}

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

impl McpClient {
    /// Opens a session (initialize, then initialized); the reply when it was refused.
    fn open(addr: SocketAddr, token: &str) -> Result<Self, Reply> {
        let auth = format!("Bearer {token}");
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tenant-isolation", "version": "0"}}});
        let reply = http(
            addr,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("Authorization", &auth)],
            &init.to_string(),
        );
        let Some(session) = reply.header("mcp-session-id").map(str::to_owned) else {
            return Err(reply);
        };
        let capabilities = answer_of(&reply, 0)["result"]["capabilities"].clone();
        let client = Self { addr, token: token.to_owned(), session, next_id: 1, capabilities };
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let r = client.post(&done.to_string());
        assert!(r.status < 300, "initialized: {} {}", r.status, r.body);
        Ok(client)
    }

    fn post(&self, body: &str) -> Reply {
        let auth = format!("Bearer {}", self.token);
        http(
            self.addr,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("Authorization", &auth), ("Mcp-Session-Id", &self.session)],
            body,
        )
    }

    /// A request: the raw reply (every byte the principal received) and the JSON-RPC answer.
    fn request(&mut self, method: &str, params: Value) -> (Reply, Value) {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = self.post(&body.to_string());
        let answer = answer_of(&reply, id);
        (reply, answer)
    }

    fn tool(&mut self, name: &str, arguments: Value) -> (Reply, Value) {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// `DELETE` of `session` with this client's token.
    fn delete(&self, session: &str) -> u16 {
        let auth = format!("Bearer {}", self.token);
        http(
            self.addr,
            "DELETE",
            "/mcp",
            &[("Authorization", &auth), ("Mcp-Session-Id", session)],
            "",
        )
        .status
    }
}

/// The JSON-RPC answer with `id` in a reply (JSON, or an event stream's `data:` lines).
fn answer_of(reply: &Reply, id: u64) -> Value {
    reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(reply.body.as_str()))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v["id"] == id)
        .unwrap_or(Value::Null)
}

/// An HTTP response read as it arrives: an event stream (MCP notifications, the dashboard's
/// `/api/stream`).
struct Streamed {
    stream: TcpStream,
    raw: Vec<u8>,
}

impl Streamed {
    fn open(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        // One response per connection: an error answer ends the stream at once.
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body.as_bytes()).expect("write");
        Self { stream, raw: Vec::new() }
    }

    /// Every byte received so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The JSON of every complete `data:` line received so far.
    fn messages(&self) -> Vec<Value> {
        let text = self.text();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return Vec::new() };
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }

    /// The URIs of the `notifications/resources/updated` received so far, in order.
    fn updated(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter(|m| m["method"] == "notifications/resources/updated")
            .filter_map(|m| m["params"]["uri"].as_str().map(str::to_owned))
            .collect()
    }

    /// Reads until `done` holds or `until` passes; whether it holds.
    fn read_until(&mut self, until: Instant, done: impl Fn(&Self) -> bool) -> bool {
        let mut buf = [0u8; 8192];
        while !done(self) {
            if Instant::now() >= until {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return done(self),
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        true
    }
}

/// The MCP protocol revision with `subscriptions/listen` (and no sessions).
const LISTEN_VERSION: &str = "2026-07-28";

/// Opens a `subscriptions/listen` stream with `token` for `uris`.
fn listen(addr: SocketAddr, token: &str, uris: &[String]) -> Streamed {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": LISTEN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "_meta": meta, "notifications": {"resourceSubscriptions": uris}}});
    let auth = format!("Bearer {token}");
    Streamed::open(
        addr,
        "POST",
        "/mcp",
        &[
            ACCEPT,
            JSON,
            ("Authorization", &auth),
            ("MCP-Protocol-Version", LISTEN_VERSION),
            ("Mcp-Method", "subscriptions/listen"),
        ],
        &body.to_string(),
    )
}

fn thread_uri(id: &impl ToString) -> String {
    format!("mission://threads/{}", id.to_string())
}

// ---------------------------------------------------------------------------------------------
// The world: one agent recording both tenants, its MCP server and dashboard.

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

/// What one step of the recording does, for tenant `.0`.
#[derive(Clone, Debug)]
enum Op {
    /// A thread of its own: a step, an LLM call and a failing tool call.
    NewThread,
    /// Continues shared thread id `n` (each tenant records into the same ids).
    Continue(usize),
    /// A log line in a shared thread.
    Log(usize),
    /// A permission decision in a shared thread.
    Permit(usize),
    /// An anomaly whose exemplar is a shared thread.
    Anomaly(usize),
    /// A score given to a shared thread (label and comment carry the marker).
    Score(usize),
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let n = 0..SHARED_THREADS;
    (
        0..2usize,
        prop_oneof![
            Just(Op::NewThread),
            n.clone().prop_map(Op::Continue),
            n.clone().prop_map(Op::Log),
            n.clone().prop_map(Op::Permit),
            n.clone().prop_map(Op::Anomaly),
            n.prop_map(Op::Score),
        ],
    )
}

const POLICY: &str = r#"
default = "allow"

[[rule]]
name = "everyone-no-refunds"
effect = "deny"
tenant = "*"
action = "tool.call"
resource = "refund_payment"
reason = "nobody refunds"

[[rule]]
name = "acme-rule"
effect = "deny"
tenant = "acme-corp"
action = "tool.call"
resource = "qx-zero-mark-resource"
reason = "qx-zero-mark policy reason"

[[rule]]
name = "globex-rule"
effect = "deny"
tenant = "globex-inc"
action = "tool.call"
resource = "qx-one-mark-resource"
reason = "qx-one-mark policy reason"
"#;

struct World {
    _dir: TempDir,
    root: PathBuf,
    control: MissionControl,
    mcp: McpHttpServer,
    dashboard: DashboardServer,
    /// The dashboard over the store on disk (what `mission-ctl dashboard` serves).
    store_dashboard: DashboardServer,
    shared: Vec<ThreadId>,
    /// Thread ids only tenant `t` used.
    own: [Vec<ThreadId>; 2],
    /// An anomaly id of each tenant (when one was recorded).
    anomalies: [Option<String>; 2],
    /// Each tenant's viewer session (its id is the other tenant's secret).
    sessions: [String; 2],
    /// The span kept open for each tenant (in-flight).
    counter: u64,
}

impl World {
    fn new(ops: &[(usize, Op)]) -> Self {
        let dir = TempDir::new("world");
        let root = dir.0.join("store");
        let policy = PolicySet::from_toml_str(POLICY).expect("policy");
        let control = MissionControl::builder()
            .with_store_root(&root)
            .with_tenant(TENANTS[0])
            .with_directives_file("preset:tool-circuit-breaker")
            .with_policy(policy)
            .without_models()
            .ignore_environment()
            .build()
            .expect("build");
        let mut mcp_config = McpHttpConfig::loopback(0).with_token(ADMIN);
        let mut dash_config = DashboardConfig::loopback(0).with_token(ADMIN);
        for (t, tokens) in TOKENS.iter().enumerate() {
            for (token, role) in tokens.iter().zip(ROLES) {
                mcp_config = mcp_config.with_role_token(token, role, Some(TENANTS[t]));
                dash_config = dash_config.with_role_token(token, role, Some(TENANTS[t]));
            }
        }
        let mcp = control.serve_mcp(mcp_config).expect("mcp");
        let dashboard = control.serve_dashboard(dash_config.clone()).expect("dashboard");
        let store_dashboard =
            mission_sdk::dashboard::serve_store(&root, dash_config).expect("store dashboard");
        let mut world = World {
            _dir: dir,
            root,
            control,
            mcp,
            dashboard,
            store_dashboard,
            shared: (0..SHARED_THREADS).map(|_| ThreadId::generate()).collect(),
            own: [Vec::new(), Vec::new()],
            anomalies: [None, None],
            sessions: [String::new(), String::new()],
            counter: 0,
        };
        // Both tenants always have a little of everything, then the interleaving.
        let base = [
            Op::NewThread,
            Op::Continue(0),
            Op::Log(0),
            Op::Permit(0),
            Op::Anomaly(0),
            Op::Score(0),
        ];
        for o in &base {
            for t in 0..2 {
                world.record(t, o);
            }
        }
        // Five 2-second calls of a tool named with the tenant's marker in each tenant: a
        // slow-tool recommendation of its own (no failures: the circuit breaker stays quiet).
        for t in 0..2 {
            let ctx = world.ctx(t, world.shared[1]);
            let name = Symbol::intern(&format!("{}-slow-tool", MARKERS[t]));
            let start = Timestamp::now().0 - 20_000_000_000;
            for n in 0..5 {
                let at = start + n * 2_000_000_000;
                let recorder = world.control.recorder();
                let tool =
                    recorder.start_span_at(&ctx, SpanKind::ToolCall, name, None, Timestamp(at));
                tool.end_at(Timestamp(at + 2_000_000_000));
            }
        }
        for (t, o) in ops {
            world.record(*t, o);
        }
        // Live threads in both tenants: the first shared id runs in both, with a child of
        // each tenant's own under a budget, paused with a reason carrying the tenant's marker.
        for t in 0..2 {
            world.live_threads(t);
        }
        // A directive that holds its remedy for a person, run by hand in each tenant by a
        // principal whose name carries the tenant's marker: each tenant has a run and a
        // pending approval of its own.
        let directives = world.control.directives();
        let held = mission_sdk::directives::DirectiveSet::from_toml_str(HELD, "held")
            .expect("the held directive");
        for spec in held {
            directives.add(spec).expect("added");
        }
        for t in 0..2 {
            let by = format!("{} operator", MARKERS[t]);
            directives.run("held", &by, Some(TENANTS[t]), Some(world.shared[0])).expect("run");
        }
        // Each tenant's agent is denied a tool by its tenant's rule: the denial is audited
        // under its tenant, with the tenant's resource and reason.
        for t in 0..2 {
            let ctx = world.ctx(t, world.shared[0]);
            let resource = format!("{}-resource", MARKERS[t]);
            let decision = world.control.policy().permit_in(
                &ctx,
                SpanId::NONE,
                &format!("agent:{AGENT}"),
                "tool.call",
                &resource,
            );
            assert!(!decision.allowed, "{resource} is denied to {}", TENANTS[t]);
        }
        // The relationship graph's nodes carry each tenant's marker: a tool of its own in the
        // store and an artefact (with a relation) the host registered in its tenant.
        for t in 0..2 {
            let ctx = world.ctx(t, world.own[t][0]);
            let tool = Symbol::intern(&format!("{}-graph-tool", MARKERS[t]));
            world.control.recorder().start_span(&ctx, SpanKind::ToolCall, tool, None).end();
            let name = format!("{}-ledger", MARKERS[t]);
            let c = &world.control;
            c.register_artefact_in(TENANTS[t], "datastore", &name, &[("owner", MARKERS[t])])
                .expect("artefact");
            c.register_relation_in(
                TENANTS[t],
                &format!("agent:{AGENT}"),
                &format!("datastore:{name}"),
                "writes",
            )
            .expect("relation");
        }
        world.control.flush().expect("flush");
        // Each tenant's viewer opens a session and uses it: its calls are recorded too.
        for t in 0..2 {
            let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
            let id = world.shared[0].to_string();
            c.tool("get_thread", json!({"thread_id": id}));
            c.request("resources/read", json!({"uri": format!("mission://threads/{id}")}));
            world.sessions[t] = c.session.clone();
        }
        world
    }

    fn marker(&mut self, t: usize, what: &str) -> String {
        self.counter += 1;
        format!("{} {what} {}", MARKERS[t], self.counter)
    }

    fn ctx(&self, t: usize, thread: ThreadId) -> ThreadContext {
        ThreadContext {
            tenant: Symbol::intern(TENANTS[t]),
            agent: Symbol::intern(AGENT),
            thread_id: thread,
        }
    }

    fn record(&mut self, t: usize, op: &Op) {
        let thread = match op {
            Op::NewThread => {
                let id = ThreadId::generate();
                self.own[t].push(id);
                id
            }
            Op::Continue(n) | Op::Log(n) | Op::Permit(n) | Op::Anomaly(n) | Op::Score(n) => {
                self.shared[*n]
            }
        };
        let ctx = self.ctx(t, thread);
        let recorder = self.control.recorder().clone();
        match op {
            Op::NewThread | Op::Continue(_) => {
                let root_span = recorder.start_span(
                    &ctx,
                    SpanKind::AgentStep,
                    Symbol::intern("handle_request"),
                    None,
                );
                let mut llm = recorder.start_span(
                    &ctx,
                    SpanKind::LlmCall,
                    Symbol::intern("chat"),
                    Some(root_span.span_id()),
                );
                llm.set_llm_usage(LlmUsage {
                    model: Symbol::intern(MODEL),
                    provider: Symbol::intern("openai"),
                    input_tokens: 100 + t as u32,
                    output_tokens: 10,
                    cost_usd: 0.001,
                    ..LlmUsage::default()
                });
                let user = self.marker(t, "user");
                llm.set_attribute(Symbol::intern("user.id"), user.as_str());
                llm.end();
                let tool = recorder.start_span(
                    &ctx,
                    SpanKind::ToolCall,
                    Symbol::intern(OPERATION),
                    Some(root_span.span_id()),
                );
                let error = self.marker(t, "upstream error");
                tool.end_with_error(&error);
                root_span.end();
            }
            Op::Log(_) => {
                let message = self.marker(t, "log line");
                recorder.record(ctx.event(
                    Symbol::intern("log"),
                    SpanId::NONE,
                    EventBody::Log(LogRecord {
                        level: Level::Warn,
                        target: Symbol::intern("agent::tools"),
                        message: Text::new(&message),
                    }),
                ));
            }
            Op::Permit(_) => {
                let resource = self.marker(t, "resource");
                recorder.record(ctx.event(
                    Symbol::intern("tool.call"),
                    SpanId::NONE,
                    EventBody::Permission(PermissionDecision {
                        actor: Text::new(&format!("agent:{AGENT}")),
                        action: Symbol::intern("tool.call"),
                        resource: Text::new(&resource),
                        decision: Decision::Deny,
                        policy: Symbol::intern("everyone-no-refunds"),
                    }),
                ));
            }
            Op::Score(_) => {
                let label = self.marker(t, "label");
                let comment = self.marker(t, "comment");
                let score = mission_sdk::Score::new(0.5)
                    .expect("finite")
                    .with_label(&label)
                    .with_comment(&comment);
                recorder.record(ctx.event(
                    Symbol::intern("helpfulness"),
                    SpanId::NONE,
                    EventBody::Score(score),
                ));
            }
            Op::Anomaly(_) => {
                let span = SpanId::generate();
                let mut event = ctx.event(
                    Symbol::intern("duration"),
                    span,
                    EventBody::Anomaly(AnomalyEvent {
                        detector: Symbol::intern("test"),
                        score: 0.99,
                        value: 9.0,
                        expected: 1.0,
                        lower: 0.5,
                        upper: 1.5,
                    }),
                );
                // A single cause (`model=…`) carrying the tenant's marker: the incident it opens
                // is named by it too.
                let cause = format!("model={}", self.marker(t, "cause"));
                event.attributes.set(Symbol::intern("mission.anomaly.operation"), OPERATION);
                event.attributes.set(Symbol::intern("mission.anomaly.span_kind"), "tool_call");
                event.attributes.set(Symbol::intern("mission.anomaly.cause"), cause.as_str());
                let exemplar = thread.to_string();
                event
                    .attributes
                    .set(Symbol::intern("mission.anomaly.exemplar.thread_id"), exemplar.as_str());
                recorder.record(event);
                self.anomalies[t] = Some(span.to_string());
            }
        }
    }

    /// Threads of tenant `t` running now: the first shared id (a root, with permissions whose
    /// name and pattern carry the marker) and a child of it (an id of its own) with a budget,
    /// paused by an operator whose reason carries the marker.
    fn live_threads(&mut self, t: usize) {
        use mission_sdk::threads::{Budget, Charge, NewThread, PermissionSet, ThreadCommand};
        let registry = self.control.threads();
        let (tenant, agent) = (Symbol::intern(TENANTS[t]), Symbol::intern(AGENT));
        let now = Timestamp::now().0;
        let permissions = PermissionSet::new([format!("tool_call:{}-tool-*", MARKERS[t])])
            .and_then(|p| p.named(format!("{}-tools", MARKERS[t])))
            .expect("permissions");
        let root = registry
            .register(
                NewThread::new(tenant, agent, self.shared[0], now).with_permissions(permissions),
            )
            .expect("room for the root");
        let child_id = ThreadId::generate();
        let budget = Budget::new().with_tokens(1_000 + t as u64).expect("budget");
        let child = registry
            .register(
                NewThread::new(tenant, agent, child_id, now)
                    .with_parent(root)
                    .with_budget(budget)
                    .with_permissions(PermissionSet::new(["tool_call:*"]).expect("permissions")),
            )
            .expect("room for the child");
        registry.charge(child, Charge { turns: 1, tokens: 850, ..Charge::default() }, now);
        let reason = format!("{} paused for review", MARKERS[t]);
        registry
            .control(TENANTS[t], child_id, ThreadCommand::Pause, "operator:test", &reason)
            .expect("pause");
        self.own[t].push(child_id);
    }

    /// A failed tool call and a log line of tenant `t` in `thread`, whose texts carry its marker.
    fn record_change(&self, t: usize, thread: ThreadId, what: &str) {
        record_change(&self.control, t, thread, what);
    }

    /// What tenant `t`'s principals must never receive.
    fn foreign(&self, t: usize) -> Vec<String> {
        let o = 1 - t;
        let mut out = vec![MARKERS[o].to_owned(), TENANTS[o].to_owned()];
        // The other tenant's first thread and its anomaly are probed by id (and the error a
        // probe gets is recorded in the prober's own tenant), so those ids are not secret;
        // everything recorded under them is, and every other id is.
        out.extend(self.own[o].iter().skip(1).map(ToString::to_string));
        if !self.sessions[o].is_empty() {
            out.push(self.sessions[o].clone());
            out.push(mission_sdk::mcp::session_digest(&self.sessions[o]));
        }
        out
    }

    /// Fails when `bytes` (what tenant `t`'s principal received for `what`) holds anything of
    /// the other tenant; `asked` are strings the request itself named.
    fn assert_clean(&self, t: usize, what: &str, bytes: &str, asked: &[String]) {
        let mut text = bytes.to_owned();
        for a in asked {
            text = text.replace(a.as_str(), "");
        }
        // The refusal of `erase_subject` in the other tenant quotes what the principal asked,
        // and is recorded in its own tenant (the request span's error): a stream or a listing
        // of its tenant's events may show it later, as its own words.
        text = text.replace(&format!("cannot erase in {}", TENANTS[1 - t]), "");
        // Likewise a refused `query_sql` naming the other tenant's partition directory.
        text = text.replace(&foreign_partition(self, t), "");
        for f in self.foreign(t) {
            if let Some(at) = text.find(&f) {
                // Where it was found, for the failure message.
                let mut from = at.saturating_sub(1500);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (at + 500).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                panic!(
                    "{what}: {}'s principal received {f:?} of the other tenant:\n…{}…",
                    TENANTS[t],
                    &text[from..to]
                );
            }
        }
    }
}

/// A failed tool call and a log line of tenant `t` in `thread`, whose texts carry its marker.
fn record_change(control: &MissionControl, t: usize, thread: ThreadId, what: &str) {
    let ctx = ThreadContext {
        tenant: Symbol::intern(TENANTS[t]),
        agent: Symbol::intern(AGENT),
        thread_id: thread,
    };
    let recorder = control.recorder();
    let message = format!("{} {what}", MARKERS[t]);
    let tool = recorder.start_span(&ctx, SpanKind::ToolCall, Symbol::intern(OPERATION), None);
    tool.end_with_error(&message);
    recorder.record(ctx.event(
        Symbol::intern("log"),
        SpanId::NONE,
        EventBody::Log(LogRecord {
            level: Level::Info,
            target: Symbol::intern("agent"),
            message: Text::new(&message),
        }),
    ));
}

// ---------------------------------------------------------------------------------------------
// The surfaces.

/// What a surface is, for the completeness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The Rust store API with a tenant scope.
    Store,
    /// An MCP tool.
    Tool,
    /// An MCP resource (or resource template).
    Resource,
    /// An MCP prompt.
    Prompt,
    /// A dashboard route.
    Route,
    /// A route of the dashboard served over the store on disk (`mission-ctl dashboard`,
    /// `dashboard::serve_store`).
    StoreRoute,
    /// A way of hearing of changes over MCP (`resources/subscribe`, `subscriptions/listen`).
    Notification,
    /// The audit trail.
    Audit,
    /// A dashboard write route (`POST`, inside the agent).
    Action,
}

/// One surface: its kind, its name as the server lists it, and how tenant `t`'s principal with
/// token `token` asks it: every response it received, each with the strings it named.
struct Surface {
    kind: Kind,
    name: &'static str,
    ask: Ask,
}

/// Every response a surface gave, each with the strings the request named.
type Answers = Vec<(String, Vec<String>)>;

/// How a surface is asked (see [`Surface`]).
type Ask = fn(&World, usize, &mut Asker) -> Answers;

/// A principal of one tenant: its MCP session and its token.
struct Asker {
    mcp: McpClient,
    token: &'static str,
}

fn tool(a: &mut Asker, name: &str, args: Value) -> (String, Vec<String>) {
    let named = strings_of(&args);
    let (reply, _) = a.mcp.tool(name, args);
    (reply.body, named)
}

fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings_of).collect(),
        Value::Object(o) => o.values().flat_map(strings_of).collect(),
        _ => Vec::new(),
    }
}

/// Thread ids a tenant's principal asks about: the shared ones, one of its own, and one of the
/// other tenant's (a probe).
fn probe_threads(w: &World, t: usize) -> Vec<String> {
    let mut ids: Vec<String> = w.shared.iter().map(ToString::to_string).collect();
    ids.extend(w.own[t].first().map(ToString::to_string));
    ids.extend(w.own[1 - t].first().map(ToString::to_string));
    ids
}

/// `POST path` of the agent's dashboard with the principal's token and a JSON `body`: the reply's
/// headers and body, and the strings the request named.
fn post(w: &World, a: &Asker, path: &str, body: &Value) -> (String, Vec<String>) {
    let auth = format!("Bearer {}", a.token);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let reply = http(w.dashboard.local_addr(), "POST", path, &headers, &body.to_string());
    (format!("{} {}", reply.headers, reply.body), strings_of(body))
}

fn get(w: &World, a: &Asker, path: &str) -> (String, Vec<String>) {
    get_at(w.dashboard.local_addr(), a, path)
}

/// `GET /api/diff` of every pair of probes, both ways (of the agent's dashboard, or the one
/// over the store on disk).
fn diff_surface(w: &World, t: usize, a: &mut Asker, store: bool) -> Vec<(String, Vec<String>)> {
    let addr = if store { w.store_dashboard.local_addr() } else { w.dashboard.local_addr() };
    let ids = probe_threads(w, t);
    let mut out = Vec::new();
    for x in &ids {
        for y in &ids {
            out.push(get_at(addr, a, &format!("/api/diff?a={x}&b={y}")));
        }
    }
    out
}

/// A relationship graph answer, checked to show tenant `t` its own planted nodes
/// (`<marker>-<suffix>`: its tool, its registered artefact), so the leak check is not vacuous.
fn own_graph(t: usize, answer: (String, Vec<String>), suffixes: &[&str]) -> (String, Vec<String>) {
    for suffix in suffixes {
        let own = format!("{}-{suffix}", MARKERS[t]);
        assert!(answer.0.contains(&own), "{own} is missing from {}", answer.0);
    }
    answer
}

/// `GET path` of the dashboard at `addr` with the principal's token.
fn get_at(addr: SocketAddr, a: &Asker, path: &str) -> (String, Vec<String>) {
    let auth = format!("Bearer {}", a.token);
    let reply = http(addr, "GET", path, &[("Authorization", &auth)], "");
    let named = path.split(['/', '?', '&', '=']).map(str::to_owned).filter(|p| p.len() > 3);
    (format!("{} {}", reply.headers, reply.body), named.collect())
}

/// `GET path` of a text route (`/metrics`, the exports) at `addr`: answered (200); an export
/// holds the principal's own threads (its tenant is named), `/metrics` ends in `# EOF`.
fn text_route(addr: SocketAddr, a: &Asker, path: &str) -> (String, Vec<String>) {
    let auth = format!("Bearer {}", a.token);
    let reply = http(addr, "GET", path, &[("Authorization", &auth)], "");
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    if path.starts_with("/metrics") {
        assert!(reply.body.ends_with("# EOF\n"), "{path}: {}", reply.body);
    } else {
        let own = TENANTS.iter().find(|t| a.token.starts_with(&t[..4])).expect("a tenant's token");
        assert!(reply.body.contains(own), "{path} shows {own} its own threads: {}", reply.body);
    }
    (format!("{} {}", reply.headers, reply.body), Vec::new())
}

/// The other tenant's partition directory, as a query that tries to read it names it (and
/// its refusal quotes it).
fn foreign_partition(w: &World, t: usize) -> String {
    format!("{}/events/tenant={}/", w.root.display(), TENANTS[1 - t])
}

/// `query_sql` (with the `sql` feature): everything, every view, and queries that try to
/// reach the other tenant (a filter on its name, its partition directory as a table, an
/// external table, the catalog).
fn sql_surface(w: &World, t: usize, a: &mut Asker) -> Vec<(String, Vec<String>)> {
    if !cfg!(feature = "sql") {
        return Vec::new();
    }
    let other = TENANTS[1 - t];
    let path = foreign_partition(w, t);
    let mut queries: Vec<String> = [
        "SELECT * FROM events",
        "SELECT * FROM threads",
        "SELECT DISTINCT tenant, thread_id FROM events",
        "SELECT * FROM logs UNION ALL SELECT * FROM decisions",
        "SELECT * FROM information_schema.tables",
    ]
    .map(str::to_owned)
    .to_vec();
    queries.push(format!("SELECT * FROM events WHERE tenant = '{other}' OR true"));
    queries.push(format!("SELECT * FROM '{path}'"));
    queries.push(format!("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{path}'"));
    queries
        .into_iter()
        .map(|q| {
            let (bytes, mut asked) = tool(a, "query_sql", json!({"sql": q, "max_rows": 1000}));
            asked.push(path.clone());
            (bytes, asked)
        })
        .collect()
}

fn store_view(w: &World, t: usize, _: &mut Asker) -> Vec<(String, Vec<String>)> {
    use mission_sdk::store::{GroupBy, Store};
    let store = Store::open_scoped(&w.root, Some(TENANTS[t])).expect("open");
    let mut out = Vec::new();
    let batches = store.query().batches().expect("query");
    let mut text = String::new();
    for b in &batches {
        let columns = b.columns().iter().filter_map(|c| arrow_cast(c).map(|s| format!("{s:?}")));
        text.extend(columns);
    }
    out.push((text, Vec::new()));
    for id in probe_threads(w, t) {
        let view = store.thread(&id).expect("thread");
        out.push((serde_json::to_string(&view).expect("json"), vec![id]));
    }
    let all = [GroupBy::Tenant, GroupBy::Agent, GroupBy::User, GroupBy::Model];
    out.push((format!("{:?}", store.threads(store.query()).expect("threads")), Vec::new()));
    out.push((format!("{:?}", store.cost_report(store.query(), &all).expect("cost")), Vec::new()));
    out.push((
        format!("{:?}", store.operation_stats(store.query(), &all).expect("stats")),
        Vec::new(),
    ));
    out.push((format!("{:?}", store.anomalies(store.query()).expect("anomalies")), Vec::new()));
    out.push((format!("{:?}", store.scores(store.query()).expect("scores")), Vec::new()));
    out.push((format!("{:?}", store.files()), Vec::new()));
    out.push((
        format!("{:?}", store.file_metadata("mission.schema_version").expect("meta")),
        Vec::new(),
    ));
    out.push((format!("{:?}", store.check().expect("check")), Vec::new()));
    out
}

/// A column as text, a map column (attributes) as `key=value` entries.
fn arrow_cast(c: &arrow::array::ArrayRef) -> Option<Vec<Option<String>>> {
    if let Some(map) = c.as_any().downcast_ref::<arrow::array::MapArray>() {
        let keys = arrow_cast(map.keys())?;
        let values = arrow_cast(map.values())?;
        return Some(
            keys.into_iter().zip(values).map(|(k, v)| Some(format!("{k:?}={v:?}"))).collect(),
        );
    }
    let text = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok()?;
    let text = text.as_any().downcast_ref::<arrow::array::StringArray>()?;
    Some(text.iter().map(|s| s.map(str::to_owned)).collect())
}

/// Every surface the suite checks.
const SURFACES: &[Surface] = &[
    Surface { kind: Kind::Store, name: "Store::open_scoped", ask: store_view },
    Surface {
        kind: Kind::Tool,
        name: "list_threads",
        ask: |_, _, a| vec![tool(a, "list_threads", json!({"limit": 200}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "get_thread",
        ask: |w, t, a| {
            probe_threads(w, t)
                .into_iter()
                .map(|id| tool(a, "get_thread", json!({"thread_id": id})))
                .collect()
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "search_events",
        ask: |w, t, a| {
            let mut out = vec![
                tool(a, "search_events", json!({"limit": 200})),
                tool(a, "search_events", json!({"text": "qx", "limit": 200})),
                tool(a, "search_events", json!({"agent": "mission-mcp", "limit": 200})),
            ];
            for id in probe_threads(w, t) {
                out.push(tool(a, "search_events", json!({"thread_id": id})));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "operation_stats",
        ask: |_, _, a| {
            let g = json!(["operation", "model", "agent", "tenant", "user"]);
            vec![tool(a, "operation_stats", json!({"since_minutes": 600, "group_by": g}))]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "cost_report",
        ask: |_, _, a| {
            let g = json!(["model", "agent", "tenant", "user", "operation"]);
            vec![tool(a, "cost_report", json!({"since_minutes": 600, "group_by": g}))]
        },
    },
    Surface { kind: Kind::Tool, name: "health", ask: |_, _, a| vec![tool(a, "health", json!({}))] },
    Surface { kind: Kind::Tool, name: "query_sql", ask: sql_surface },
    Surface {
        kind: Kind::Tool,
        name: "list_anomalies",
        ask: |_, _, a| vec![tool(a, "list_anomalies", json!({"limit": 200}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "live_threads",
        ask: |w, t, a| {
            let mut out = vec![tool(a, "live_threads", json!({"limit": 500}))];
            for id in probe_threads(w, t) {
                out.push(tool(a, "live_threads", json!({"parent_thread_id": id})));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "control_thread",
        // The probes (the other tenant's first thread among them; its child's id is a secret
        // `no_write_reaches_the_other_tenant` tries) are paused in the asker's tenant or refused;
        // naming the other tenant is refused.
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t).into_iter() {
                out.push(tool(
                    a,
                    "control_thread",
                    json!({"thread_id": id, "command": "pause", "reason": "probe"}),
                ));
                out.push(tool(
                    a,
                    "control_thread",
                    json!({"thread_id": id, "command": "pause", "tenant": TENANTS[1 - t]}),
                ));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "list_directive_runs",
        ask: |_, _, a| {
            vec![
                tool(a, "list_directive_runs", json!({"limit": 500})),
                tool(a, "list_directive_runs", json!({"directive": "held"})),
            ]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "list_approvals",
        ask: |_, _, a| {
            vec![
                tool(a, "list_approvals", json!({})),
                tool(a, "list_approvals", json!({"state": "pending"})),
            ]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "run_directive",
        // Run in the asker's tenant (on the probes), or refused when naming the other tenant.
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t) {
                out.push(tool(a, "run_directive", json!({"name": "held", "thread_id": id})));
            }
            out.push(tool(a, "run_directive", json!({"name": "held", "tenant": TENANTS[1 - t]})));
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "explain_permission",
        // The probes, asked in the asker's tenant and (refused) in the other's.
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t) {
                let ask = json!({"thread_id": id, "action": "tool_call", "resource": "refund"});
                out.push(tool(a, "explain_permission", ask.clone()));
                let mut other = ask;
                other["tenant"] = json!(TENANTS[1 - t]);
                out.push(tool(a, "explain_permission", other));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "decide_approval",
        // Every approval id there may be: the asker's are rejected, the other tenant's are
        // not found.
        ask: |_, _, a| {
            (1..=12)
                .map(|id| tool(a, "decide_approval", json!({"id": id, "decision": "reject"})))
                .collect()
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "list_scores",
        ask: |w, t, a| {
            let mut out = vec![
                tool(a, "list_scores", json!({"limit": 200})),
                tool(a, "list_scores", json!({"name": "helpfulness", "limit": 200})),
            ];
            for id in probe_threads(w, t) {
                out.push(tool(a, "list_scores", json!({"thread_id": id})));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "forecast",
        ask: |_, t, a| {
            // With the `models` feature: every statistic over the operations both tenants
            // share, and a filter on the other tenant's marker.
            if !cfg!(feature = "models") {
                return Vec::new();
            }
            let other = format!("user.id={}", MARKERS[1 - t]);
            vec![
                tool(a, "forecast", json!({"operation": "chat", "threshold": "1s"})),
                tool(
                    a,
                    "forecast",
                    json!({"operation": "chat", "model": MODEL, "agent": AGENT,
                           "statistic": "cost", "threshold": 1, "since_minutes": 10}),
                ),
                tool(
                    a,
                    "forecast",
                    json!({"operation": OPERATION, "statistic": "p99", "threshold": "1ms",
                           "horizon": "1m", "since_minutes": 10}),
                ),
                tool(
                    a,
                    "forecast",
                    json!({"operation": "chat", "attribute": other, "threshold": 1}),
                ),
            ]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "explain_anomaly",
        ask: |w, _, a| {
            w.anomalies
                .iter()
                .flatten()
                .map(|id| tool(a, "explain_anomaly", json!({"id": id})))
                .collect()
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "list_incidents",
        ask: |_, _, a| {
            vec![
                tool(a, "list_incidents", json!({})),
                tool(a, "list_incidents", json!({"state": "open"})),
            ]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "similar_incidents",
        // By the operation both tenants' anomalies name, and by each tenant's anomaly id (the
        // other's joined no incident this principal may see).
        ask: |w, _, a| {
            let mut out = vec![tool(
                a,
                "similar_incidents",
                json!({"cause": format!("operation={OPERATION}")}),
            )];
            for id in w.anomalies.iter().flatten() {
                out.push(tool(a, "similar_incidents", json!({"anomaly_id": id})));
            }
            out
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "list_directives",
        ask: |_, _, a| vec![tool(a, "list_directives", json!({}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "acknowledge_alert",
        ask: |_, _, a| {
            let key = format!("tool-failing:operation={OPERATION}");
            vec![
                tool(a, "acknowledge_alert", json!({"incident": key, "note": "on it"})),
                tool(a, "acknowledge_alert", json!({"incident": "tool-failing"})),
            ]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "set_directive_enabled",
        ask: |_, _, a| {
            vec![tool(
                a,
                "set_directive_enabled",
                json!({"name": "tool-failing", "enabled": false}),
            )]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "add_directive",
        ask: |_, _, a| {
            let toml = "[[directive]]\nname = \"sneaky\"\nwhen = \"3 failures in a row\"\n";
            vec![tool(a, "add_directive", json!({"toml": toml}))]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "remove_directive",
        ask: |_, _, a| vec![tool(a, "remove_directive", json!({"name": "tool-error-rate"}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "list_permission_decisions",
        ask: |_, _, a| vec![tool(a, "list_permission_decisions", json!({"limit": 200}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "get_policy",
        ask: |_, _, a| vec![tool(a, "get_policy", json!({}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "set_policy",
        ask: |_, _, a| vec![tool(a, "set_policy", json!({"toml": "default = \"deny\"\n"}))],
    },
    Surface {
        kind: Kind::Tool,
        name: "erase_subject",
        ask: |_, t, a| {
            // The other tenant's users all carry its marker; nobody has this exact value.
            let other = TENANTS[1 - t];
            vec![
                tool(
                    a,
                    "erase_subject",
                    json!({"key": "user.id", "value": "nobody", "tenant": other}),
                ),
                tool(a, "erase_subject", json!({"key": "user.id", "value": "nobody"})),
            ]
        },
    },
    Surface {
        kind: Kind::Resource,
        name: "mission://health",
        ask: |_, _, a| {
            let (r, _) = a.mcp.request("resources/read", json!({"uri": "mission://health"}));
            let (l, _) = a.mcp.request("resources/list", json!({}));
            vec![(r.body, Vec::new()), (l.body, Vec::new())]
        },
    },
    Surface {
        kind: Kind::Resource,
        name: "mission://threads/{thread_id}",
        ask: |w, t, a| {
            probe_threads(w, t)
                .into_iter()
                .map(|id| {
                    let uri = format!("mission://threads/{id}");
                    let (r, _) = a.mcp.request("resources/read", json!({"uri": uri}));
                    (r.body, vec![id])
                })
                .collect()
        },
    },
    Surface {
        kind: Kind::Prompt,
        name: "diagnose_thread",
        ask: |w, t, a| {
            probe_threads(w, t)
                .into_iter()
                .map(|id| {
                    let args = json!({"name": "diagnose_thread", "arguments": {"thread_id": id}});
                    (a.mcp.request("prompts/get", args).0.body, vec![id])
                })
                .collect()
        },
    },
    Surface {
        kind: Kind::Prompt,
        name: "why_slow",
        ask: |_, _, a| {
            let args =
                json!({"name": "why_slow", "arguments": {"operation": OPERATION, "minutes": 600}});
            vec![(a.mcp.request("prompts/get", args).0.body, Vec::new())]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/overview",
        ask: |w, _, a| vec![get(w, a, "/api/overview?minutes=600")],
    },
    Surface {
        kind: Kind::Route,
        name: "/api/threads",
        ask: |w, _, a| vec![get(w, a, "/api/threads?minutes=600&limit=500")],
    },
    Surface {
        kind: Kind::Route,
        name: "/api/threads/{id}",
        ask: |w, t, a| {
            probe_threads(w, t)
                .into_iter()
                .map(|id| get(w, a, &format!("/api/threads/{id}")))
                .collect()
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/threads/{id}/permissions",
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t) {
                let path = format!("/api/threads/{id}/permissions?action=tool_call&resource=x");
                out.push(get(w, a, &path));
                out.push(get(w, a, &format!("{path}&tenant={}", TENANTS[1 - t])));
            }
            out
        },
    },
    Surface {
        kind: Kind::Action,
        name: "/api/threads/{id}/control",
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t) {
                for body in [
                    json!({"command": "pause", "reason": "probe"}),
                    json!({"command": "pause", "tenant": TENANTS[1 - t]}),
                ] {
                    let (reply, mut named) =
                        post(w, a, &format!("/api/threads/{id}/control"), &body);
                    named.push(id.clone());
                    out.push((reply, named));
                }
            }
            out
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/control",
        ask: |w, _, a| vec![get(w, a, "/api/control")],
    },
    Surface {
        kind: Kind::Action,
        name: "/api/approvals/{id}",
        // The asker's approvals are rejected; the other tenant's are not found.
        ask: |w, _, a| {
            (1..=12)
                .map(|id| {
                    post(w, a, &format!("/api/approvals/{id}"), &json!({"decision": "reject"}))
                })
                .collect()
        },
    },
    Surface {
        kind: Kind::Action,
        name: "/api/directives/{name}/run",
        ask: |w, t, a| {
            let mut out = Vec::new();
            for id in probe_threads(w, t) {
                out.push(post(w, a, "/api/directives/held/run", &json!({"thread_id": id})));
            }
            out.push(post(w, a, "/api/directives/held/run", &json!({"tenant": TENANTS[1 - t]})));
            out
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/logs",
        ask: |w, _, a| vec![get(w, a, "/api/logs?minutes=600&limit=500")],
    },
    Surface {
        kind: Kind::Route,
        name: "/api/anomalies",
        ask: |w, _, a| vec![get(w, a, "/api/anomalies?minutes=600")],
    },
    Surface {
        kind: Kind::Route,
        name: "/api/stream",
        ask: |w, t, a| vec![stream_until_own_end(w, t, a, w.dashboard.local_addr(), false)],
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/control",
        ask: |w, _, a| vec![get_at(w.store_dashboard.local_addr(), a, "/api/control")],
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/overview",
        ask: |w, _, a| vec![get_at(w.store_dashboard.local_addr(), a, "/api/overview?minutes=600")],
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/threads",
        ask: |w, _, a| {
            vec![get_at(w.store_dashboard.local_addr(), a, "/api/threads?minutes=600&limit=500")]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/threads/{id}",
        ask: |w, t, a| {
            probe_threads(w, t)
                .into_iter()
                .map(|id| get_at(w.store_dashboard.local_addr(), a, &format!("/api/threads/{id}")))
                .collect()
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/threads/{id}/permissions",
        ask: |w, t, a| {
            let addr = w.store_dashboard.local_addr();
            probe_threads(w, t)
                .into_iter()
                .map(|id| get_at(addr, a, &format!("/api/threads/{id}/permissions")))
                .collect()
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/logs",
        ask: |w, _, a| {
            vec![get_at(w.store_dashboard.local_addr(), a, "/api/logs?minutes=600&limit=500")]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/anomalies",
        ask: |w, _, a| {
            vec![get_at(w.store_dashboard.local_addr(), a, "/api/anomalies?minutes=600")]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/recommendations",
        ask: |w, t, a| {
            vec![own_seen(t, "slow_tool", get(w, a, "/api/recommendations?minutes=600"))]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/recommendations",
        ask: |w, t, a| {
            let path = "/api/recommendations?minutes=600";
            vec![own_seen(t, "slow_tool", get_at(w.store_dashboard.local_addr(), a, path))]
        },
    },
    Surface {
        kind: Kind::Tool,
        name: "recommendations",
        ask: |_, t, a| {
            vec![own_seen(
                t,
                "slow_tool",
                tool(a, "recommendations", json!({"since_minutes": 600})),
            )]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/audit",
        ask: |w, t, a| {
            let mut out =
                vec![own_seen(t, "permission_denied", get(w, a, "/api/audit?limit=5000"))];
            let other = format!("/api/audit?actor={}&limit=5000", MARKERS[1 - t]);
            out.push(get(w, a, &other));
            out
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/audit",
        ask: |w, t, a| {
            let addr = w.store_dashboard.local_addr();
            vec![
                own_seen(t, "permission_denied", get_at(addr, a, "/api/audit?limit=5000")),
                get_at(addr, a, "/api/audit?type=permission_denied&severity=warning"),
            ]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/stream",
        ask: |w, t, a| vec![stream_until_own_end(w, t, a, w.store_dashboard.local_addr(), true)],
    },
    Surface {
        kind: Kind::Tool,
        name: "compare_threads",
        // Every pair of probes (shared ids, the asker's own, the other tenant's), both ways.
        ask: |w, t, a| {
            let ids = probe_threads(w, t);
            let mut out = Vec::new();
            for x in &ids {
                for y in &ids {
                    out.push(tool(
                        a,
                        "compare_threads",
                        json!({"a": x, "b": y, "all_steps": true}),
                    ));
                }
            }
            out
        },
    },
    Surface { kind: Kind::Route, name: "/api/diff", ask: |w, t, a| diff_surface(w, t, a, false) },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/diff",
        ask: |w, t, a| diff_surface(w, t, a, true),
    },
    Surface {
        kind: Kind::Tool,
        name: "relationship_graph",
        ask: |_, t, a| {
            let args = json!({"since_minutes": 600, "limit": 10000});
            vec![own_graph(t, tool(a, "relationship_graph", args), &["ledger"])]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/graph",
        ask: |w, t, a| {
            vec![own_graph(t, get(w, a, "/api/graph?minutes=600"), &["graph-tool", "ledger"])]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/metrics",
        ask: |w, _, a| vec![text_route(w.dashboard.local_addr(), a, "/metrics")],
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/metrics",
        ask: |w, _, a| vec![text_route(w.store_dashboard.local_addr(), a, "/metrics")],
    },
    Surface {
        kind: Kind::Route,
        name: "/api/export/threads.jsonl",
        ask: |w, _, a| {
            let path = "/api/export/threads.jsonl?minutes=600";
            vec![text_route(w.dashboard.local_addr(), a, path)]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/graph",
        ask: |w, t, a| {
            let answer = get_at(w.store_dashboard.local_addr(), a, "/api/graph?minutes=600");
            vec![own_graph(t, answer, &["graph-tool"])]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/export/threads.jsonl",
        ask: |w, _, a| {
            vec![text_route(w.store_dashboard.local_addr(), a, "/api/export/threads.jsonl")]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/export/threads.csv",
        ask: |w, _, a| vec![text_route(w.dashboard.local_addr(), a, "/api/export/threads.csv")],
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/export/threads.csv",
        ask: |w, _, a| {
            vec![text_route(
                w.store_dashboard.local_addr(),
                a,
                "/api/export/threads.csv?minutes=600",
            )]
        },
    },
    Surface {
        kind: Kind::Route,
        name: "/api/report.html",
        ask: |w, _, a| {
            vec![text_route(w.dashboard.local_addr(), a, "/api/report.html?minutes=600")]
        },
    },
    Surface {
        kind: Kind::StoreRoute,
        name: "/api/report.html",
        ask: |w, _, a| {
            vec![text_route(w.store_dashboard.local_addr(), a, "/api/report.html?minutes=600")]
        },
    },
    Surface { kind: Kind::Notification, name: "subscriptions/listen", ask: listen_surface },
    Surface { kind: Kind::Notification, name: "resources/subscribe", ask: subscribe_surface },
    Surface { kind: Kind::Audit, name: "audit trail", ask: audit_surface },
];

/// With shared thread ids, a tenant's principal sees its own thread's permission chain only —
/// over MCP and on the dashboard — and a token of every tenant must name the tenant.
#[test]
fn explain_permission_shows_a_tenant_its_own_chain() {
    let world = World::new(&[]);
    let shared = world.shared[0].to_string();
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
        let ask = json!({"thread_id": shared, "action": "tool_call", "resource": "refund"});
        let (reply, answer) = c.tool("explain_permission", ask);
        let flow = &answer["result"]["structuredContent"];
        let x = &flow["explanation"];
        assert_eq!(x["chain"].as_array().map(Vec::len), Some(1), "{}", reply.body);
        assert_eq!(x["chain"][0]["permissions"]["name"], format!("{}-tools", MARKERS[t]));
        assert_eq!(x["escalation"], "warning", "{}", reply.body);
        assert_eq!(x["tenant"], TENANTS[t]);
        assert!(!reply.body.contains(MARKERS[1 - t]), "{}", reply.body);
        let auth = format!("Bearer {}", TOKENS[t][0]);
        let path = format!("/api/threads/{shared}/permissions?action=tool_call&resource=x");
        let r = http(world.dashboard.local_addr(), "GET", &path, &[("Authorization", &auth)], "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains(&format!("{}-tools", MARKERS[t])), "{}", r.body);
        assert!(!r.body.contains(MARKERS[1 - t]), "{}", r.body);
    }
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let ask = json!({"thread_id": shared, "action": "tool_call", "resource": "refund"});
    let (_, answer) = admin.tool("explain_permission", ask.clone());
    assert_eq!(answer["result"]["isError"], true, "ambiguous without a tenant: {answer}");
    let mut named = ask;
    named["tenant"] = json!(TENANTS[1]);
    let (_, answer) = admin.tool("explain_permission", named);
    assert_eq!(answer["result"]["structuredContent"]["explanation"]["tenant"], TENANTS[1]);
}

/// Thread resources of the other tenant: the threads the two tenants share and one of the
/// other tenant's own.
fn foreign_thread_uris(w: &World, t: usize) -> Vec<String> {
    w.shared.iter().chain(w.own[1 - t].first()).map(thread_uri).collect()
}

/// With tenant `t`'s watch of `warm`, `sentinel` and [`foreign_thread_uris`] open on
/// `stream`: waits until the watch hears `t`'s change to `warm` (it is in place), then the
/// other tenant changes every thread it shares with `t` and one of its own, then `t` changes
/// `sentinel`; returns once `t` hears of that. A watch handles its events in recording order,
/// so whatever the other tenant's changes would notify was sent by then: none may be.
fn provoke_changes(w: &World, t: usize, stream: &mut Streamed, warm: ThreadId, sentinel: ThreadId) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let heard = |s: &Streamed, id: ThreadId| s.updated().contains(&thread_uri(&id));
    // Until the watch is in place, a change can pass unseen: change `warm` again now and then.
    loop {
        w.record_change(t, warm, "warm-up");
        let round = (Instant::now() + Duration::from_secs(5)).min(deadline);
        if stream.read_until(round, |s| heard(s, warm)) {
            break;
        }
        assert!(Instant::now() < deadline, "{} never heard of its own change", TENANTS[t]);
    }
    let o = 1 - t;
    for thread in w.shared.iter().chain(w.own[o].first()) {
        w.record_change(o, *thread, "changed under a watch");
    }
    w.record_change(t, sentinel, "sentinel");
    let done = stream.read_until(deadline, |s| heard(s, sentinel));
    assert!(done, "{} never heard of its sentinel: {}", TENANTS[t], stream.text());
    let updated = stream.updated();
    for uri in foreign_thread_uris(w, t) {
        assert!(
            !updated.contains(&uri),
            "{} was notified of the other tenant's change to {uri}: {updated:?}",
            TENANTS[t]
        );
    }
}

/// `subscriptions/listen` (protocol 2026-07-28): one stream watching health, two fresh
/// threads of `t` and the other tenant's threads.
fn listen_surface(w: &World, t: usize, a: &mut Asker) -> Answers {
    let (warm, sentinel) = (ThreadId::generate(), ThreadId::generate());
    let mut uris = vec![thread_uri(&warm), thread_uri(&sentinel), "mission://health".to_owned()];
    uris.extend(foreign_thread_uris(w, t));
    // What was recorded before is delivered now: the watch starts on a quiet stream.
    w.control.flush().expect("flush");
    let mut stream = listen(w.mcp.local_addr(), a.token, &uris);
    let deadline = Instant::now() + Duration::from_secs(120);
    let acknowledged = stream.read_until(deadline, |s| {
        s.messages().iter().any(|m| m["method"] == "notifications/subscriptions/acknowledged")
    });
    assert!(acknowledged, "the subscription was not acknowledged: {}", stream.text());
    provoke_changes(w, t, &mut stream, warm, sentinel);
    vec![(stream.text(), uris)]
}

/// The legacy `resources/subscribe` of the principal's session, heard on its `GET` stream.
fn subscribe_surface(w: &World, t: usize, a: &mut Asker) -> Answers {
    let (warm, sentinel) = (ThreadId::generate(), ThreadId::generate());
    let mut uris = foreign_thread_uris(w, t);
    uris.extend(["mission://health".to_owned(), thread_uri(&sentinel), thread_uri(&warm)]);
    w.control.flush().expect("flush");
    let auth = format!("Bearer {}", a.token);
    let session = a.mcp.session.clone();
    let headers = [
        ("Accept", "text/event-stream"),
        ("Authorization", auth.as_str()),
        ("Mcp-Session-Id", session.as_str()),
    ];
    let mut stream = Streamed::open(w.mcp.local_addr(), "GET", "/mcp", &headers, "");
    let deadline = Instant::now() + Duration::from_secs(120);
    let open = stream.read_until(deadline, |s| s.text().contains("\r\n\r\n"));
    assert!(open && stream.text().starts_with("HTTP/1.1 200"), "{}", stream.text());
    // The other tenant's session's stream (where its notifications go) is not this token's.
    let theirs = w.sessions[1 - t].as_str();
    let mut foreign = Streamed::open(
        w.mcp.local_addr(),
        "GET",
        "/mcp",
        &[headers[0], headers[1], ("Mcp-Session-Id", theirs)],
        "",
    );
    let answered = foreign.read_until(deadline, |s| s.text().contains("\r\n\r\n"));
    assert!(answered && foreign.text().starts_with("HTTP/1.1 404"), "{}", foreign.text());
    let mut out = vec![(foreign.text(), vec![theirs.to_owned()])];
    for uri in &uris {
        let (reply, answer) = a.mcp.request("resources/subscribe", json!({"uri": uri}));
        assert!(answer["result"].is_object(), "subscribe {uri}: {}", reply.body);
        out.push((reply.body, vec![uri.clone()]));
    }
    provoke_changes(w, t, &mut stream, warm, sentinel);
    for uri in &uris {
        let (reply, _) = a.mcp.request("resources/unsubscribe", json!({"uri": uri}));
        out.push((reply.body, vec![uri.clone()]));
    }
    out.push((stream.text(), uris));
    out
}

/// The audit trail as tenant `t` may see it: the anchors of the audit chain in its files, and
/// the records of its tenant (which must hold nothing of the other tenant, nor be attributed
/// to it).
fn audit_surface(w: &World, t: usize, _: &mut Asker) -> Answers {
    let store = mission_sdk::store::Store::open_scoped(&w.root, Some(TENANTS[t])).expect("open");
    let anchors = store.file_metadata(mission_sdk::audit::ANCHOR_KEY).expect("anchors");
    let mut out = vec![(format!("{anchors:?}"), Vec::new())];
    let records: Vec<_> = audit_records(w).into_iter().filter(|r| r.tenant == TENANTS[t]).collect();
    out.push((format!("{records:?}"), Vec::new()));
    out
}

/// `answer`, after checking it shows tenant `t` its own data (`what`, with its marker): a
/// surface that showed nothing would pass the leak check for nothing.
fn own_seen(t: usize, what: &str, answer: (String, Vec<String>)) -> (String, Vec<String>) {
    assert!(
        answer.0.contains(what) && answer.0.contains(MARKERS[t]),
        "{} does not see its own {what}: {}",
        TENANTS[t],
        answer.0
    );
    answer
}

/// Every record of the world's audit trail.
fn audit_records(w: &World) -> Vec<mission_sdk::audit::AuditRecord> {
    let path = w.root.join(mission_sdk::audit::AUDIT_DIR).join(mission_sdk::audit::ACTIVE_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("an audit record")).collect()
}

/// Reads tenant `t`'s event stream at `addr` while both tenants record, until `t`'s own last
/// event arrives (the hub delivers in recording order, and a store's poll streams what it
/// found in time order, so everything the other tenant recorded before it has passed by then).
/// `on_disk`: the dashboard reads the store, so what was recorded is flushed to it.
fn stream_until_own_end(
    w: &World,
    t: usize,
    a: &Asker,
    addr: SocketAddr,
    on_disk: bool,
) -> (String, Vec<String>) {
    let auth = format!("Bearer {}", a.token);
    let mut stream = Streamed::open(addr, "GET", "/api/stream", &[("Authorization", &auth)], "");
    let deadline = Instant::now() + Duration::from_secs(120);
    // The first bytes (headers, or the first stats event) say the subscription is in place.
    let started = stream.read_until(deadline, |s| s.text().contains("event:"));
    assert!(started, "the stream never started: {}", stream.text());
    let end = format!("end of stream {}", Timestamp::now().0);
    w.record_change(1 - t, w.shared[0], "streamed");
    w.record_change(t, w.shared[0], &end);
    if on_disk {
        w.control.flush().expect("flush");
    }
    let end = format!("{} {end}", MARKERS[t]);
    let arrived = stream.read_until(deadline, |s| s.text().contains(&end));
    assert!(arrived, "{}'s own events never arrived on its stream at {addr}", TENANTS[t]);
    (stream.text(), Vec::new())
}

/// Asks every surface as each of tenant `t`'s principals and checks every byte received.
fn check_every_surface(w: &World, t: usize) {
    for token in TOKENS[t] {
        let mcp = McpClient::open(w.mcp.local_addr(), token).unwrap_or_else(|r| {
            panic!("{} could not open a session: {} {}", TENANTS[t], r.status, r.body)
        });
        let mut asker = Asker { mcp, token };
        for surface in SURFACES {
            for (bytes, asked) in (surface.ask)(w, t, &mut asker) {
                w.assert_clean(
                    t,
                    &format!("{:?} {} with {token}", surface.kind, surface.name),
                    &bytes,
                    &asked,
                );
            }
        }
        let session = asker.mcp.session.clone();
        assert_eq!(asker.mcp.delete(&session), 202, "a principal ends its own session");
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the interleaving of the two tenants' recording, no surface gives a tenant's
    /// principal anything of the other tenant. Both tenants' tool failures share the incident
    /// key `tool-failing:operation=web_search`, so this also checks that an incident stays
    /// with its tenant (issue 15, "directive incidents change tenant": one tenant's
    /// acknowledgement must never show to the other), which needs the per-tenant directive
    /// engine.
    #[test]
    fn a_tenant_never_receives_another_tenants_bytes(ops in proptest::collection::vec(op(), 0..24)) {
        let world = World::new(&ops);
        for t in 0..2 {
            check_every_surface(&world, t);
        }
    }
}

/// The suite is not vacuous: a scoped principal does get its own tenant's data.
#[test]
fn a_tenant_sees_its_own_data() {
    let world = World::new(&[]);
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
        let shared = world.shared[0].to_string();
        let (reply, answer) = c.tool("get_thread", json!({"thread_id": shared}));
        assert!(reply.body.contains(MARKERS[t]), "{}", reply.body);
        let spans = answer["result"]["structuredContent"]["spans_total"].as_u64();
        assert_eq!(spans, Some(3), "only its own half of the shared thread: {}", reply.body);
        let (reply, _) = c.tool("search_events", json!({"text": "qx", "limit": 200}));
        assert!(reply.body.contains(MARKERS[t]), "{}", reply.body);
        let (reply, _) = c.tool("list_permission_decisions", json!({}));
        assert!(reply.body.contains(MARKERS[t]), "{}", reply.body);
        if cfg!(feature = "sql") {
            let sql = json!({"sql": "SELECT tenant, log_message FROM logs", "max_rows": 1000});
            let (reply, answer) = c.tool("query_sql", sql);
            assert!(reply.body.contains(MARKERS[t]), "{}", reply.body);
            let rows = answer["result"]["structuredContent"]["rows"].as_array().expect("rows");
            assert!(rows.iter().all(|r| r["tenant"] == TENANTS[t]), "{}", reply.body);
        }
        let auth = format!("Bearer {}", TOKENS[t][0]);
        let r =
            http(world.dashboard.local_addr(), "GET", "/api/logs", &[("Authorization", &auth)], "");
        assert!(r.body.contains(MARKERS[t]), "{}", r.body);
        // Its own half of a shared thread, compared with itself.
        let (reply, answer) = c.tool("compare_threads", json!({"a": shared, "b": shared}));
        let diff = &answer["result"]["structuredContent"];
        assert_eq!(
            (diff["a"]["steps"].as_u64(), diff["identical"].as_bool()),
            (Some(3), Some(true))
        );
        assert!(reply.body.contains(AGENT), "{}", reply.body);
        let path = format!("/api/diff?a={shared}&b={shared}");
        for addr in [world.dashboard.local_addr(), world.store_dashboard.local_addr()] {
            let r = http(addr, "GET", &path, &[("Authorization", &auth)], "");
            let diff: Value =
                serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("{}", r.body));
            assert_eq!(diff["b"]["steps"], 3, "{}", r.body);
        }
    }
}

/// A tenant's `forecast` learns from its own spans only: tenant 1 recorded five more `chat`
/// calls than tenant 0 (which shares every thread id, agent, operation and model with it), and
/// each tenant's principals count their own; a token of every tenant counts both.
#[cfg(feature = "models")]
#[test]
fn a_tenants_forecast_counts_its_own_spans_only() {
    let ops: Vec<(usize, Op)> = (0..5).map(|_| (1, Op::NewThread)).collect();
    let world = World::new(&ops);
    let spans = |token: &str, args: Value| {
        let mut c = McpClient::open(world.mcp.local_addr(), token).expect("session");
        let (reply, answer) = c.tool("forecast", args);
        let a = &answer["result"]["structuredContent"];
        assert_eq!(a["status"], "insufficient_data", "seconds of data: {}", reply.body);
        a["spans"].as_u64().unwrap_or_else(|| panic!("{}", reply.body))
    };
    let chat = json!({"operation": "chat", "model": MODEL, "threshold": "1s"});
    for role in 0..3 {
        assert_eq!(spans(TOKENS[0][role], chat.clone()), 2, "{}", TENANTS[0]);
        assert_eq!(spans(TOKENS[1][role], chat.clone()), 7, "{}", TENANTS[1]);
    }
    assert_eq!(spans(ADMIN, chat), 9, "every tenant's");
}

/// Names as the MCP server and the dashboard list them, against [`SURFACES`].
#[test]
fn every_surface_is_in_the_suite() {
    let world = World::new(&[]);
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let names = |kind: Kind| -> BTreeSet<String> {
        SURFACES.iter().filter(|s| s.kind == kind).map(|s| s.name.to_owned()).collect()
    };
    let listed = |answer: &Value, list: &str, field: &str| -> BTreeSet<String> {
        answer["result"][list]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .filter_map(|t| t[field].as_str().map(str::to_owned))
            .collect()
    };
    let (_, tools) = admin.request("tools/list", json!({}));
    let mut expected = names(Kind::Tool);
    if !cfg!(feature = "sql") {
        expected.remove("query_sql");
    }
    if !cfg!(feature = "models") {
        expected.remove("forecast");
    }
    assert_eq!(listed(&tools, "tools", "name"), expected, "a tool is missing from SURFACES");
    let (_, prompts) = admin.request("prompts/list", json!({}));
    assert_eq!(listed(&prompts, "prompts", "name"), names(Kind::Prompt));
    let (_, resources) = admin.request("resources/list", json!({}));
    let (_, templates) = admin.request("resources/templates/list", json!({}));
    let mut uris: BTreeSet<String> = listed(&resources, "resources", "uri")
        .into_iter()
        .filter(|u| !u.starts_with("mission://threads/"))
        .collect();
    uris.extend(listed(&templates, "resourceTemplates", "uriTemplate"));
    assert_eq!(uris, names(Kind::Resource));
    let routes: BTreeSet<String> =
        mission_sdk::dashboard::api_routes().into_iter().map(str::to_owned).collect();
    assert_eq!(routes, names(Kind::Route), "a dashboard route is missing from SURFACES");
    assert_eq!(routes, names(Kind::StoreRoute), "a route of the store's dashboard is missing");
    let actions: BTreeSet<String> =
        mission_sdk::dashboard::action_routes().into_iter().map(str::to_owned).collect();
    assert_eq!(actions, names(Kind::Action), "a dashboard write route is missing from SURFACES");
    // Every way the server says it tells of changes.
    let caps = &admin.capabilities;
    let mut told = BTreeSet::new();
    if caps["resources"]["subscribe"] == true {
        told.extend(["resources/subscribe".to_owned(), "subscriptions/listen".to_owned()]);
    }
    for list in ["tools", "prompts", "resources"] {
        if caps[list]["listChanged"] == true {
            told.insert(format!("notifications/{list}/list_changed"));
        }
    }
    assert!(caps.is_object(), "the server's capabilities: {caps}");
    assert_eq!(told, names(Kind::Notification), "a change notification is missing from SURFACES");
    // The agent keeps an audit trail (the world's denials are in it): it is a surface too.
    assert!(!audit_records(&world).is_empty(), "the world has an audit trail");
    assert_eq!(names(Kind::Audit).len(), 1);
    assert_eq!(names(Kind::Store).len(), 1);
}

/// A watch of a tenant-scoped principal hears of its own tenant's changes only: after the
/// other tenant changed a thread both use and its own threads, then the principal's tenant
/// changed a thread of its own, the first thing it hears is its own change — neither the
/// shared thread nor health (which a change of the other tenant would touch first). A quiet
/// agent (no directives, no models), so nothing else changes meanwhile.
#[test]
fn a_watch_hears_only_its_own_tenants_changes() {
    let dir = TempDir::new("watch");
    let control = MissionControl::builder()
        .with_store_root(dir.0.join("store"))
        .with_tenant(TENANTS[0])
        .without_models()
        .ignore_environment()
        .build()
        .expect("build");
    let config = McpHttpConfig::loopback(0)
        .with_tenant_token(TOKENS[0][0], TENANTS[0])
        .with_tenant_token(TOKENS[1][0], TENANTS[1]);
    let server = control.serve_mcp(config).expect("serve");
    for t in 0..2 {
        let (mine, shared) = (ThreadId::generate(), ThreadId::generate());
        let uris = [thread_uri(&mine), "mission://health".to_owned(), thread_uri(&shared)];
        control.flush().expect("flush");
        let mut stream = listen(server.local_addr(), TOKENS[t][0], &uris);
        let deadline = Instant::now() + Duration::from_secs(120);
        let acknowledged = stream.read_until(deadline, |s| {
            s.messages().iter().any(|m| m["method"] == "notifications/subscriptions/acknowledged")
        });
        assert!(acknowledged, "{}", stream.text());
        // Until the watch is in place a change can pass unseen: repeat the round now and then.
        loop {
            for n in 0..5 {
                record_change(&control, 1 - t, shared, &format!("change {n}"));
            }
            record_change(&control, t, mine, "own change");
            let round = (Instant::now() + Duration::from_secs(5)).min(deadline);
            if stream.read_until(round, |s| !s.updated().is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "{} never heard of its change", TENANTS[t]);
        }
        assert_eq!(
            stream.updated()[0],
            uris[0],
            "{} heard of the other tenant's changes first: {}",
            TENANTS[t],
            stream.text()
        );
        stream.read_until(deadline, |s| s.updated().contains(&uris[1]));
        assert!(!stream.updated().contains(&uris[2]), "{}", stream.text());
        assert!(!stream.text().contains(MARKERS[1 - t]), "{}", stream.text());
    }
}

/// What tenant-scoped principals write to the audit trail — acknowledgements, erasures,
/// their agents' denials — is recorded under their tenant, never the other one's, and a
/// tenant's records hold nothing of the other tenant.
#[test]
fn audit_records_carry_the_tenant_that_made_them() {
    let world = World::new(&[]);
    let before = audit_records(&world).len();
    for t in 0..2 {
        let mut operator = McpClient::open(world.mcp.local_addr(), TOKENS[t][1]).expect("session");
        let key = format!("tool-failing:operation={OPERATION}");
        operator.tool("acknowledge_alert", json!({"incident": key, "note": MARKERS[t]}));
        operator.tool("acknowledge_alert", json!({"incident": "tool-failing"}));
        let mut admin = McpClient::open(world.mcp.local_addr(), TOKENS[t][2]).expect("session");
        let (reply, answer) = admin.tool(
            "erase_subject",
            json!({"key": "user.id", "value": format!("{} user 1", MARKERS[1 - t])}),
        );
        assert!(answer["result"]["isError"] != true, "{}", reply.body);
    }
    let records = audit_records(&world);
    assert!(records.len() >= before + 2, "each tenant's erasure is audited: {records:?}");
    for t in 0..2 {
        let o = 1 - t;
        let of_t: Vec<_> = records.iter().filter(|r| r.tenant == TENANTS[t]).collect();
        let kinds: BTreeSet<&str> = of_t.iter().map(|r| r.kind.as_str()).collect();
        assert!(
            kinds.contains("permission_denied") && kinds.contains("erasure"),
            "{}'s denial and erasure: {of_t:?}",
            TENANTS[t]
        );
        for r in &of_t {
            let text = format!("{r:?}");
            assert!(!text.contains(MARKERS[o]) && !text.contains(TENANTS[o]), "{text}");
        }
        for r in records.iter().filter(|r| r.actor.ends_with(&format!("@{}", TENANTS[t]))) {
            assert_eq!(r.tenant, TENANTS[t], "a write of {}'s principal: {r:?}", TENANTS[t]);
        }
    }
}

/// The audit record numbers a tenant-scoped principal is told count its own tenant's records
/// only: the trail's global sequence would tell it how many audited actions every other tenant
/// took in between (issue 15's side channels). The global chain is still whole and verifies.
#[test]
fn a_tenants_audit_numbers_do_not_move_with_another_tenants_activity() {
    let world = World::new(&[]);
    let erase = |t: usize, n: usize| {
        let mut admin = McpClient::open(world.mcp.local_addr(), TOKENS[t][2]).expect("session");
        let value = format!("{} nobody {n}", MARKERS[t]);
        let (reply, answer) =
            admin.tool("erase_subject", json!({"key": "user.id", "value": value}));
        let result = &answer["result"];
        assert!(result["isError"] != true, "{}", reply.body);
        let seq = result["structuredContent"]["audit_seq"].as_u64().expect("audit_seq");
        let text = result["content"][0]["text"].as_str().unwrap_or_default().to_owned();
        assert!(text.ends_with(&format!("; audit record {seq}")), "{text}");
        seq
    };
    let own_records =
        |t: usize| audit_records(&world).iter().filter(|r| r.tenant == TENANTS[t]).count();
    let first = erase(0, 0);
    assert_eq!(first as usize, own_records(0), "acme's record is counted among acme's");
    let global_before = audit_records(&world).len();
    for n in 0..5 {
        erase(1, n);
    }
    let second = erase(0, 1);
    assert_eq!(second, first + 1, "globex's five erasures do not move acme's numbers");
    assert_eq!(audit_records(&world).len(), global_before + 6, "all six are in the trail");
    // A principal of every tenant is told the global sequence number.
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let (reply, answer) = admin.tool(
        "erase_subject",
        json!({"key": "user.id", "value": "nobody at all", "tenant": TENANTS[0]}),
    );
    let seq = answer["result"]["structuredContent"]["audit_seq"].as_u64();
    assert_eq!(seq, Some(audit_records(&world).last().expect("a record").seq), "{}", reply.body);
    let report = mission_sdk::audit::verify(&world.root).expect("verify");
    assert!(report.is_ok(), "{report:?}");
}

/// A thread id continued across tenants: each tenant's viewer sees its own half only, over
/// `get_thread`, the thread resource, `diagnose_thread` and the dashboard (the leak of
/// issue 15: the loader checked that some event was in the tenant, then loaded all of them).
#[test]
fn a_thread_continued_across_tenants_shows_each_tenant_its_own_half() {
    let world = World::new(&[]);
    let id = world.shared[0].to_string();
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
        let replies = [
            c.tool("get_thread", json!({"thread_id": id})).0.body,
            c.request("resources/read", json!({"uri": format!("mission://threads/{id}")})).0.body,
            c.request(
                "prompts/get",
                json!({"name": "diagnose_thread", "arguments": {"thread_id": id}}),
            )
            .0
            .body,
        ];
        for body in replies {
            assert!(body.contains(MARKERS[t]), "{body}");
            assert!(!body.contains(MARKERS[1 - t]), "{} sees the other half: {body}", TENANTS[t]);
        }
    }
}

/// A session answers only the token that opened it; another tenant's `DELETE` of it is a 404
/// and the owner carries on.
#[test]
fn a_session_belongs_to_the_token_that_opened_it() {
    let world = World::new(&[]);
    let addr = world.mcp.local_addr();
    let mut owner = McpClient::open(addr, TOKENS[1][0]).expect("session");
    let intruder = McpClient::open(addr, TOKENS[0][2]).expect("session");
    assert_eq!(intruder.delete(&owner.session), 404);
    let hijack = McpClient {
        session: owner.session.clone(),
        ..McpClient::open(addr, TOKENS[0][0]).expect("s")
    };
    let reply =
        hijack.post(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string());
    assert_eq!(reply.status, 404, "{}", reply.body);
    let (reply, answer) = owner.tool("health", json!({}));
    assert_eq!(reply.status, 200);
    assert!(answer["result"].is_object(), "the owner's session still works: {}", reply.body);
    assert!(world.mcp.foreign_session_requests() >= 2);
    assert_eq!(owner.delete(&owner.session), 202);
}

/// Sessions are capped per token: past the cap a new one is a 429 (counted), other tokens are
/// unaffected, and ending one makes room.
#[test]
fn sessions_are_capped_per_token() {
    let control = MissionControl::builder()
        .without_store()
        .without_models()
        .ignore_environment()
        .build()
        .expect("build");
    let config = McpHttpConfig::loopback(0)
        .with_tenant_token(TOKENS[0][0], TENANTS[0])
        .with_tenant_token(TOKENS[1][0], TENANTS[1])
        .with_max_sessions_per_token(2);
    let server = control.serve_mcp(config).expect("serve");
    let addr = server.local_addr();
    let first = McpClient::open(addr, TOKENS[0][0]).expect("1");
    let _second = McpClient::open(addr, TOKENS[0][0]).expect("2");
    let refused = McpClient::open(addr, TOKENS[0][0]).err().expect("the third is refused");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(server.sessions_refused(), 1);
    let _other = McpClient::open(addr, TOKENS[1][0]).expect("another token has its own cap");
    assert_eq!(first.delete(&first.session), 202);
    let _again = McpClient::open(addr, TOKENS[0][0]).expect("room again after a DELETE");
    let bad = McpHttpConfig::loopback(0).with_max_sessions_per_token(0);
    let e = control.serve_mcp(bad).expect_err("0 is out of range").to_string();
    assert!(e.contains("max_sessions_per_token"), "{e}");
}

/// Health for a tenant-scoped principal: its tenant's in-flight spans and files, no
/// process-wide numbers, no store path, no sink error texts.
#[test]
fn health_is_scoped_to_the_tenant() {
    let world = World::new(&[]);
    // A span of acme-corp (the agent's own tenant) stays open while both tenants look.
    let agent = world.control.agent(AGENT);
    let thread = agent.thread();
    let open = thread.step("long-running");
    let root = world.root.display().to_string();
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
        let (reply, answer) = c.tool("health", json!({}));
        let health = &answer["result"]["structuredContent"];
        assert_eq!(health["agent"]["tenant"], TENANTS[t], "{}", reply.body);
        let in_flight = health["agent"]["in_flight_open"].as_u64().expect("in_flight_open");
        if t == 0 {
            assert!(in_flight >= 1, "acme's open spans: {}", reply.body);
        } else {
            assert_eq!(in_flight, 0, "globex has no span open: {}", reply.body);
        }
        for absent in [root.as_str(), "accounting", "last_error", "store_root", "delivered"] {
            assert!(!reply.body.contains(absent), "{absent} in {}", reply.body);
        }
        let auth = format!("Bearer {}", TOKENS[t][0]);
        let r = http(
            world.dashboard.local_addr(),
            "GET",
            "/api/overview",
            &[("Authorization", &auth)],
            "",
        );
        for absent in [root.as_str(), "accounting", "last_error", "store_root", "\"dropped\""] {
            assert!(!r.body.contains(absent), "{absent} in {}", r.body);
        }
    }
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let (reply, _) = admin.tool("health", json!({}));
    assert!(
        reply.body.contains("accounting") && reply.body.contains("store_root"),
        "{}",
        reply.body
    );
    open.end();
}

/// `mission://health` answers a tenant-scoped principal as the `health` tool does (issue 15
/// lists the resource with the tool): its tenant's view of the agent and its files only, no
/// store path, no process-wide numbers, nothing of the other tenant.
#[test]
fn the_health_resource_is_scoped_to_the_tenant() {
    let world = World::new(&[]);
    let root = world.root.display().to_string();
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][0]).expect("session");
        let (reply, answer) = c.request("resources/read", json!({"uri": "mission://health"}));
        let text = answer["result"]["contents"][0]["text"].as_str().unwrap_or_default();
        let health: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {}", reply.body));
        assert_eq!(health["agent"]["tenant"], TENANTS[t], "{text}");
        assert!(!text.contains(TENANTS[1 - t]), "{} sees the other tenant: {text}", TENANTS[t]);
        for absent in [root.as_str(), "\"root\"", "accounting", "last_error", "store_root"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }
}

/// No write of one tenant's principals reaches the other tenant.
#[test]
fn no_write_reaches_the_other_tenant() {
    let world = World::new(&[]);
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let snapshot = |admin: &mut McpClient| {
        let directives = admin.tool("list_directives", json!({})).1["result"]["structuredContent"]
            ["directives"]
            .as_array()
            .expect("directives")
            .iter()
            .map(|d| (d["name"].to_string(), d["enabled"].to_string()))
            .collect::<Vec<_>>();
        let policy =
            admin.tool("get_policy", json!({})).1["result"]["structuredContent"].to_string();
        (directives, policy)
    };
    let before = snapshot(&mut admin);
    let store = |t: usize| {
        mission_sdk::store::Store::open_scoped(&world.root, Some(TENANTS[t]))
            .expect("open")
            .query()
            .count()
            .expect("count")
    };
    world.control.flush().expect("flush");
    let events_of_globex = store(1);
    for (token, role) in TOKENS[0].iter().zip(ROLES) {
        let mut c = McpClient::open(world.mcp.local_addr(), token).expect("session");
        for (name, args) in [
            ("set_directive_enabled", json!({"name": "tool-failing", "enabled": false})),
            (
                "add_directive",
                json!({"toml": "[[directive]]\nname = \"x\"\nwhen = \"3 failures in a row\"\n"}),
            ),
            ("remove_directive", json!({"name": "tool-failing"})),
            ("set_policy", json!({"toml": "default = \"deny\"\n"})),
            ("erase_subject", json!({"key": "user.id", "value": "x", "tenant": TENANTS[1]})),
        ] {
            let (reply, answer) = c.tool(name, args);
            // Refused as every tool refuses: a result with isError.
            let refused = answer["result"]["isError"] == true;
            assert!(refused, "{name} with a {role:?} token of {}: {}", TENANTS[0], reply.body);
        }
        // An erasure in its own tenant leaves the other's events alone, whatever the value.
        if role == Role::Admin {
            for n in 1..=world.counter {
                let value = format!("{} user {n}", MARKERS[1]);
                c.tool("erase_subject", json!({"key": "user.id", "value": value}));
            }
        }
        c.tool(
            "acknowledge_alert",
            json!({"incident": format!("tool-failing:operation={OPERATION}")}),
        );
        assert_eq!(c.delete(&world.sessions[1]), 404, "another tenant's session cannot be ended");
        // Every approval id, approved (over MCP and the dashboard); and the held directive run
        // for globex.
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let dashboard = world.dashboard.local_addr();
        for id in 1..=8 {
            c.tool("decide_approval", json!({"id": id, "decision": "approve"}));
            let path = format!("/api/approvals/{id}");
            http(dashboard, "POST", &path, &headers, r#"{"decision": "approve"}"#);
        }
        let body = json!({"tenant": TENANTS[1]}).to_string();
        let reply = http(dashboard, "POST", "/api/directives/held/run", &headers, &body);
        assert_eq!(reply.status, 403, "run for globex by {role:?}: {}", reply.body);
        let (reply, answer) =
            c.tool("run_directive", json!({"name": "held", "tenant": TENANTS[1]}));
        assert!(answer["result"]["isError"] == true, "run for globex by {role:?}: {}", reply.body);
        // Globex's running threads: the shared id, and its child by its own id.
        let theirs = [world.shared[0], *world.own[1].last().expect("globex's live child")];
        for id in theirs {
            for args in [
                json!({"thread_id": id.to_string(), "command": "cancel"}),
                json!({"thread_id": id.to_string(), "command": "cancel", "tenant": TENANTS[1]}),
            ] {
                c.tool("control_thread", args);
            }
        }
    }
    // Globex's approval is still pending, and it has no run of acme's making.
    let globex_approvals = || world.control.directives().approvals_for(Some(TENANTS[1]));
    assert_eq!(globex_approvals().len(), 1, "{:?}", globex_approvals());
    assert_eq!(globex_approvals()[0].state, mission_sdk::directives::ApprovalState::Pending);
    assert_eq!(world.control.directives().runs_for(Some(TENANTS[1]), None, 100).len(), 1);
    // Acme's operator cancelled its own thread of the shared id (it may); globex's are as
    // they were: the root running, the child paused.
    let registry = world.control.threads();
    let now = Timestamp::now().0;
    let state =
        |id| registry.snapshot(Some(TENANTS[1]), id, now).expect("globex's thread runs").state;
    assert_eq!(state(world.shared[0]), mission_sdk::ThreadState::Running);
    assert_eq!(state(*world.own[1].last().unwrap()), mission_sdk::ThreadState::Paused);
    assert_eq!(
        registry.snapshot(Some(TENANTS[0]), world.shared[0], now).unwrap().state,
        mission_sdk::ThreadState::Cancelled,
        "the same id in the operator's own tenant was cancelled, so the calls did reach the registry"
    );
    world.control.flush().expect("flush");
    assert_eq!(store(1), events_of_globex, "globex's events are all there");
    assert_eq!(snapshot(&mut admin), before, "directives and policy are unchanged");
    let mut globex = McpClient::open(world.mcp.local_addr(), TOKENS[1][0]).expect("session");
    let (reply, _) = globex.tool("list_directives", json!({}));
    assert!(
        !reply.body.contains(TENANTS[0]),
        "an acknowledgement by acme shows to globex: {}",
        reply.body
    );
    let session = McpClient {
        session: world.sessions[1].clone(),
        ..McpClient::open(world.mcp.local_addr(), TOKENS[1][0]).expect("s")
    };
    let reply =
        session.post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).to_string());
    assert_eq!(reply.status, 200, "globex's session survives: {}", reply.body);
}

/// `get_policy` with a tenant-scoped token lists only rules that can apply to its tenant.
#[test]
fn get_policy_shows_a_tenant_its_rules_only() {
    let world = World::new(&[]);
    for t in 0..2 {
        let mut c = McpClient::open(world.mcp.local_addr(), TOKENS[t][1]).expect("session");
        let (reply, answer) = c.tool("get_policy", json!({}));
        let rules = answer["result"]["structuredContent"]["rules"].as_array().expect("rules").len();
        assert_eq!(rules, 2, "the shared rule and its own: {}", reply.body);
        assert!(!reply.body.contains(MARKERS[1 - t]), "{}", reply.body);
    }
}

/// MCP request spans carry a digest of the session id, never the id, under the caller's tenant.
#[test]
fn session_ids_are_not_stored() {
    let world = World::new(&[]);
    world.control.flush().expect("flush");
    let all = mission_sdk::store::Store::open(&world.root).expect("open");
    let mut text = String::new();
    for b in all.query().agent("mission-mcp").batches().expect("batches") {
        for c in b.columns() {
            text.push_str(&format!("{:?}", arrow_cast(c)));
        }
    }
    for t in 0..2 {
        assert!(!text.contains(&world.sessions[t]), "a raw session id is stored");
        let digest = mission_sdk::mcp::session_digest(&world.sessions[t]);
        let mine =
            mission_sdk::store::Store::open_scoped(&world.root, Some(TENANTS[t])).expect("open");
        let count = mine.query().attribute("mcp.session.id", &digest).count().expect("count");
        assert!(count >= 2, "{}'s calls are recorded under its own tenant", TENANTS[t]);
    }
}

/// An unscoped principal's requests are recorded in the agent's own tenant (acme-corp here):
/// what they name of another tenant (a thread in a resource URI, an id in an error) is not.
#[test]
fn an_admins_requests_name_nothing_of_another_tenant_in_the_agents_tenant() {
    let world = World::new(&[]);
    let mut admin = McpClient::open(world.mcp.local_addr(), ADMIN).expect("session");
    let globex = world.own[1][0].to_string();
    let missing = ThreadId::generate().to_string();
    admin.request("resources/read", json!({"uri": format!("mission://threads/{globex}")}));
    admin.request("resources/read", json!({"uri": format!("mission://threads/{missing}")}));
    admin.tool("get_thread", json!({"thread_id": missing}));
    world.control.flush().expect("flush");
    let acme = mission_sdk::store::Store::open_scoped(&world.root, Some(TENANTS[0])).expect("open");
    let mut text = String::new();
    for b in acme.query().agent("mission-mcp").batches().expect("batches") {
        for c in b.columns() {
            text.push_str(&format!("{:?}", arrow_cast(c)));
        }
    }
    assert!(text.contains("mission://threads/{thread_id}"), "the admin's reads are recorded");
    assert!(!text.contains(&globex) && !text.contains(&missing), "{text}");
}
