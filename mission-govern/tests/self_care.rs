//! The `preset:self-care` directives, one test each, driven deterministically at the sink
//! (events and wall-clock ticks with fabricated times, no sleeps): each fires on the problem
//! planted for it, names what it is about (the thread, the tool, the provider, the agent, the
//! actor), and stays quiet on the healthy traffic next to it. The preset's directive names are
//! checked against the list of tested ones, so a directive added to the preset without a test
//! fails here.

use std::sync::{Arc, Mutex};

use mission_core::thread::{TARGET, event::BUDGET_WARNING};
use mission_core::{
    Decision, Event, EventBody, LlmUsage, LogRecord, PermissionDecision, Sink, SpanEnd, SpanId,
    SpanKind, Status, Symbol, ThreadId, Timestamp,
};
use mission_govern::directives::{
    ActionSpec, Alert, AlertState, DirectiveSet, DirectiveSink, Directives,
};
use mission_govern::threads::{NewThread, ThreadCommand, ThreadRegistry};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
/// 2026-01-05 10:00:00 UTC.
const T0: u64 = 1_767_607_200 * SECOND;

/// Every directive of the preset, each with its test below.
const TESTED: &[&str] = &[
    "stalled-thread",         // stalled_thread_*
    "dependency-instability", // dependency_instability_fires_per_tool_on_an_error_burst
    "dependency-mtbf",        // dependency_mtbf_fires_on_a_tool_failing_often_but_not_in_a_burst
    "mcp-server-instability", // mcp_server_instability_fires_per_server
    "provider-instability",   // provider_instability_fires_per_provider
    "denial-rate",            // denial_rate_fires_when_most_requests_are_denied
    "denial-burst",           // denial_burst_fires_on_one_actor_denied_again_and_again
    "budget-burn",            // budget_burn_fires_on_an_agent_spending_fast
    "budget-warnings",        // budget_warnings_fire_when_an_agents_threads_near_their_budgets
];

#[test]
fn preset_loads_and_every_directive_has_a_test() {
    let set = DirectiveSet::preset("self-care").expect("the preset loads");
    let names: Vec<&str> = set.directives().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, TESTED);
    for d in set.directives() {
        // A preset alerts; it never pauses, cancels or breaks anything by surprise.
        assert!(!d.then.iter().any(ActionSpec::is_remedy), "{}", d.name);
        assert!(!d.description.is_empty(), "{}", d.name);
    }
    Directives::new(set).expect("the preset compiles");
    // It loads next to the other presets (no name is taken twice).
    let mut all = DirectiveSet::new();
    for name in mission_govern::directives::PRESETS {
        all.extend(DirectiveSet::preset(name).expect(name)).expect(name);
    }
}

struct World {
    directives: Directives,
    sink: DirectiveSink,
    threads: Arc<ThreadRegistry>,
    alerts: Arc<Mutex<Vec<Alert>>>,
}

/// The preset's directives named `only` (all of them when empty), each also calling back into
/// a list of alerts, with a thread registry wired in.
fn world(only: &[&str]) -> World {
    let mut set = DirectiveSet::new();
    for mut spec in DirectiveSet::preset("self-care").expect("preset") {
        if only.is_empty() || only.contains(&spec.name.as_str()) {
            spec.then.push(ActionSpec::Callback { name: "keep".into() });
            set.push(spec).expect("valid");
        }
    }
    assert!(!set.is_empty(), "{only:?} are in the preset");
    let directives = Directives::new(set).expect("directives compile");
    let threads = Arc::new(ThreadRegistry::new());
    directives.with_threads(threads.clone());
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let keep = alerts.clone();
    directives
        .register_callback("keep", move |a: &Alert| keep.lock().expect("lock").push(a.clone()));
    let sink = directives.sink();
    World { directives, sink, threads, alerts }
}

impl World {
    fn consume(&mut self, events: &[Event]) {
        self.sink.consume(events).expect("consume");
    }

    fn tick(&mut self, wall: u64) {
        self.sink.tick(Timestamp(wall)).expect("tick");
    }

    /// The alerts of `directive` so far, in order.
    fn alerts(&self, directive: &str) -> Vec<Alert> {
        let all = self.alerts.lock().expect("lock");
        all.iter().filter(|a| a.directive == directive).cloned().collect()
    }

    fn firing(&self, directive: &str) -> Vec<Alert> {
        self.alerts(directive).into_iter().filter(|a| a.state == AlertState::Firing).collect()
    }

    /// The one firing of `directive` so far (fails unless there is exactly one).
    fn one_firing(&self, directive: &str) -> Alert {
        let mut fired = self.firing(directive);
        assert_eq!(fired.len(), 1, "{directive}: {:?}", self.alerts(directive));
        fired.remove(0)
    }

    fn label<'a>(alert: &'a Alert, key: &str) -> &'a str {
        alert.group.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }
}

fn thread_id(n: u128) -> ThreadId {
    ThreadId(0x5e1f_0000_0000_0000_0000_0000_0000_0000 | n)
}

fn span(tenant: &str, agent: &str, kind: SpanKind, name: &str, end: u64, ok: bool) -> Event {
    let mut e = Event::new(
        Symbol::intern(name),
        EventBody::Span(SpanEnd {
            kind,
            duration_ns: 5_000_000,
            status: if ok { Status::Ok } else { Status::Error },
            ..SpanEnd::default()
        }),
    );
    e.time = Timestamp(end - 5_000_000);
    e.tenant = Symbol::intern(tenant);
    e.agent = Symbol::intern(agent);
    e
}

/// A tool call inside `thread` (not its root span).
fn step(tenant: &str, thread: ThreadId, end: u64) -> Event {
    let mut e = span(tenant, "bot", SpanKind::ToolCall, "search", end, true);
    e.thread_id = thread;
    e.span_id = SpanId(end);
    e.parent_span_id = SpanId(1);
    e
}

/// The root span of `thread`, ending it.
fn root_end(tenant: &str, thread: ThreadId, end: u64) -> Event {
    let mut e = span(tenant, "bot", SpanKind::AgentStep, "run", end, true);
    e.thread_id = thread;
    e.span_id = SpanId(1);
    e
}

fn llm(agent: &str, provider: &str, end: u64, ok: bool, cost_usd: f64) -> Event {
    let mut e = span("acme", agent, SpanKind::LlmCall, "chat", end, ok);
    if let EventBody::Span(s) = &mut e.body {
        s.llm = LlmUsage {
            model: Symbol::intern("m-1"),
            provider: Symbol::intern(provider),
            input_tokens: 100,
            output_tokens: 10,
            cost_usd,
            ..LlmUsage::default()
        };
    }
    e
}

fn permission(agent: &str, actor: &str, at: u64, allowed: bool) -> Event {
    let mut e = Event::new(
        Symbol::intern("permission"),
        EventBody::Permission(PermissionDecision {
            actor: actor.into(),
            action: Symbol::intern("tool.call"),
            resource: "shell".into(),
            decision: if allowed { Decision::Allow } else { Decision::Deny },
            policy: Symbol::intern("default"),
        }),
    );
    e.time = Timestamp(at);
    e.tenant = Symbol::intern("acme");
    e.agent = Symbol::intern(agent);
    e
}

/// The budget warning the thread registry records (`mission.budget.warning`, target
/// `mission.control`) for a thread of `agent`.
fn budget_warning(agent: &str, thread: ThreadId, at: u64) -> Event {
    let mut e = Event::new(
        Symbol::intern(BUDGET_WARNING),
        EventBody::Log(LogRecord {
            level: mission_core::Level::Warn,
            target: Symbol::intern(TARGET),
            message: "budget nears its tokens limit: 850 of 1000".into(),
        }),
    );
    e.time = Timestamp(at);
    e.tenant = Symbol::intern("acme");
    e.agent = Symbol::intern(agent);
    e.thread_id = thread;
    e.span_id = SpanId(1);
    e
}

#[test]
fn stalled_thread_fires_on_a_quiet_running_thread_and_not_on_a_busy_one() {
    let mut w = world(&["stalled-thread"]);
    let (quiet, busy) = (thread_id(1), thread_id(2));
    w.consume(&[step("acme", quiet, T0), step("acme", busy, T0)]);
    // The busy thread works every minute for 20 minutes; the quiet one says nothing.
    for m in 1..=20 {
        w.consume(&[step("acme", busy, T0 + m * MINUTE)]);
        if m < 10 {
            assert!(w.firing("stalled-thread").is_empty(), "minute {m}: not quiet long enough");
        }
    }
    let a = &w.one_firing("stalled-thread");
    assert_eq!(a.thread_id, Some(quiet), "the alert names the stalled thread");
    assert_eq!(a.tenant, "acme");
    assert_eq!(World::label(a, "thread"), quiet.to_string());
    assert!(a.value >= 600.0 && a.threshold == 600.0, "{a:?}");
    assert!(a.time.0 >= T0 + 10 * MINUTE && a.time.0 <= T0 + 11 * MINUTE, "{a:?}");
    assert!(a.summary.contains("no event for") && a.summary.contains(&quiet.to_string()));

    // It works again: resolved. Both threads end: nothing more fires, however long it is quiet.
    w.consume(&[step("acme", quiet, T0 + 21 * MINUTE)]);
    let last = w.alerts("stalled-thread").pop().expect("an alert");
    assert_eq!((last.state, last.thread_id), (AlertState::Resolved, Some(quiet)));
    w.consume(&[
        root_end("acme", quiet, T0 + 22 * MINUTE),
        root_end("acme", busy, T0 + 22 * MINUTE),
    ]);
    w.tick(T0 + 22 * MINUTE + SECOND);
    w.tick(T0 + 60 * MINUTE);
    assert_eq!(w.firing("stalled-thread").len(), 1, "{:?}", w.alerts("stalled-thread"));
    let status = w.directives.list();
    assert_eq!(status[0].groups, 0, "ended threads are forgotten: {status:?}");
}

#[test]
fn stalled_thread_fires_on_the_wall_clock_with_no_event_at_all() {
    let mut w = world(&["stalled-thread"]);
    let quiet = thread_id(3);
    w.consume(&[step("acme", quiet, T0)]);
    // Nothing arrives any more: the ticks of the wall clock move the directive's clock on.
    w.tick(T0 + SECOND);
    w.tick(T0 + 9 * MINUTE);
    assert!(w.firing("stalled-thread").is_empty());
    w.tick(T0 + 11 * MINUTE);
    assert_eq!(w.one_firing("stalled-thread").thread_id, Some(quiet));
}

#[test]
fn stalled_thread_sees_registered_threads_and_skips_paused_ones() {
    let mut w = world(&["stalled-thread"]);
    let (silent, paused, shared_id) = (thread_id(4), thread_id(5), thread_id(6));
    let new = |tenant: &str, id: ThreadId, start: u64| {
        NewThread::new(Symbol::intern(tenant), Symbol::intern("bot"), id, start)
    };
    // A thread that never recorded anything, one paused by an operator, and one id that runs
    // in two tenants, started at different times.
    let h = w.threads.register(new("acme", silent, T0)).expect("slot");
    w.threads.register(new("acme", paused, T0)).expect("slot");
    w.threads
        .control("acme", paused, ThreadCommand::Pause, "operator:ana", "waiting for a human")
        .expect("paused");
    w.threads.register(new("acme", shared_id, T0)).expect("slot");
    w.threads.register(new("globex", shared_id, T0 + 5 * MINUTE)).expect("slot");

    for m in [0, 5, 9] {
        w.tick(T0 + m * MINUTE);
    }
    assert!(w.firing("stalled-thread").is_empty());
    w.tick(T0 + 11 * MINUTE);
    let mut fired: Vec<(String, ThreadId)> = w
        .firing("stalled-thread")
        .iter()
        .map(|a| (a.tenant.clone(), a.thread_id.expect("names its thread")))
        .collect();
    fired.sort();
    assert_eq!(
        fired,
        [("acme".to_owned(), silent), ("acme".to_owned(), shared_id)],
        "the paused thread and globex's younger thread are not stalled"
    );
    // Globex's thread of the same id stalls in its own time, as its own incident.
    w.tick(T0 + 16 * MINUTE);
    let globex: Vec<Alert> =
        w.firing("stalled-thread").into_iter().filter(|a| a.tenant == "globex").collect();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].thread_id, Some(shared_id));

    // The silent thread ends (it leaves the registry; its root span was never seen): resolved.
    w.threads.deregister(h, T0 + 17 * MINUTE).expect("live");
    w.tick(T0 + 17 * MINUTE);
    let resolved: Vec<Alert> = w
        .alerts("stalled-thread")
        .into_iter()
        .filter(|a| a.state == AlertState::Resolved)
        .collect();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!((resolved[0].tenant.as_str(), resolved[0].thread_id), ("acme", Some(silent)));
}

#[test]
fn dependency_instability_fires_per_tool_on_an_error_burst() {
    let mut w = world(&["dependency-instability"]);
    // Over 6 minutes, every 20 s: `search` fails one call in three, `fetch` one in 18, and
    // `lookup` fails once in its only two calls (one failure is not an incident).
    let mut batch = Vec::new();
    for i in 0..18u64 {
        let t = T0 + i * 20 * SECOND;
        batch.push(span("acme", "bot", SpanKind::ToolCall, "search", t, i % 3 != 0));
        batch.push(span("acme", "bot", SpanKind::ToolCall, "fetch", t, i != 5));
        if i < 2 {
            batch.push(span("acme", "bot", SpanKind::ToolCall, "lookup", t, i == 0));
        }
    }
    w.consume(&batch);
    w.consume(&[span("acme", "bot", SpanKind::ToolCall, "fetch", T0 + 6 * MINUTE, true)]);
    let a = w.one_firing("dependency-instability");
    assert_eq!(a.operation, "search");
    assert_eq!(World::label(&a, "operation"), "search");
    assert!(a.value > 0.2 && a.value < 0.4, "{a:?}");
}

#[test]
fn dependency_mtbf_fires_on_a_tool_failing_often_but_not_in_a_burst() {
    let mut w = world(&["dependency-mtbf", "dependency-instability"]);
    // Over 80 minutes, a call every 20 s: `search` fails every 8 minutes (10 an hour, too few
    // for an error-rate burst), `fetch` every 20 minutes (3 an hour).
    let mut batch = Vec::new();
    for i in 0..240u64 {
        let t = T0 + i * 20 * SECOND;
        batch.push(span("acme", "bot", SpanKind::ToolCall, "search", t, i % 24 != 23));
        batch.push(span("acme", "bot", SpanKind::ToolCall, "fetch", t, i % 60 != 59));
    }
    w.consume(&batch);
    let a = w.one_firing("dependency-mtbf");
    assert_eq!(a.operation, "search");
    assert!(a.value < 600_000.0 && a.value >= 300_000.0, "mtbf in ms: {a:?}");
    assert!(a.summary.contains("mtbf"), "{}", a.summary);
    assert!(
        w.firing("dependency-instability").is_empty(),
        "no burst: {:?}",
        w.alerts("dependency-instability")
    );
}

#[test]
fn mcp_server_instability_fires_per_server() {
    let mut w = world(&["mcp-server-instability"]);
    // Calls through two MCP servers' tools (the MCP client names the server): `files` fails
    // two calls in five, `search` one in twenty; a plain tool call never counts.
    let call = |server: &str, tool: &str, t: u64, ok: bool| {
        let mut e = span("acme", "bot", SpanKind::ToolCall, tool, t, ok);
        e.attributes.set(Symbol::intern("mcp.method.name"), "tools/call");
        e.attributes.set(Symbol::intern("mcp.server.name"), server);
        e
    };
    let mut batch = Vec::new();
    for i in 0..20u64 {
        let t = T0 + i * 15 * SECOND;
        batch.push(call("files", if i % 2 == 0 { "read" } else { "write" }, t, i % 5 >= 2));
        batch.push(call("search", "query", t, i != 7));
        batch.push(span("acme", "bot", SpanKind::ToolCall, "local", t, false));
    }
    w.consume(&batch);
    w.consume(&[call("search", "query", T0 + 6 * MINUTE, true)]);
    let a = w.one_firing("mcp-server-instability");
    assert_eq!(World::label(&a, "mcp_server"), "files", "{a:?}");
    assert!((a.value - 0.4).abs() < 0.05, "{a:?}");
}

#[test]
fn mtbf_is_checked_and_shown_in_time_units() {
    use mission_govern::directives::Condition;
    let c: Condition = "mtbf < 10m over 1h".parse().expect("parses");
    assert_eq!(c.to_string(), "mtbf < 600000ms over 1h");
    assert_eq!(c.to_string().parse::<Condition>().expect("round trip"), c);
    let err = "forecast mtbf < 10m within 1h".parse::<Condition>().unwrap_err();
    assert!(err.contains("mtbf"), "{err}");
    let err = "mtbf < often over 1h".parse::<Condition>().unwrap_err();
    assert!(err.contains("often"), "{err}");
}

#[test]
fn provider_instability_fires_per_provider() {
    let mut w = world(&["provider-instability"]);
    let mut batch = Vec::new();
    for i in 0..36u64 {
        let t = T0 + i * 10 * SECOND;
        batch.push(llm("bot", "flaky-ai", t, i % 4 != 0, 0.001)); // 25% fail
        batch.push(llm("bot", "steady-ai", t, i != 7, 0.001)); // 1 in 36
    }
    batch.push(llm("bot", "steady-ai", T0 + 6 * MINUTE, true, 0.001));
    w.consume(&batch);
    let a = w.one_firing("provider-instability");
    assert_eq!(World::label(&a, "provider"), "flaky-ai");
    assert!((a.value - 0.25).abs() < 0.05, "{a:?}");
}

#[test]
fn denial_rate_fires_when_most_requests_are_denied() {
    let mut w = world(&["denial-rate"]);
    // Over 11 minutes, every 20 s: `prober` is denied 3 requests in 4; `bot` 1 in 11.
    let mut batch = Vec::new();
    for i in 0..33u64 {
        let t = T0 + i * 20 * SECOND;
        batch.push(permission("prober", "prober", t, i % 4 == 0));
        batch.push(permission("bot", "bot", t, i % 11 != 3));
    }
    batch.push(permission("bot", "bot", T0 + 11 * MINUTE, true));
    w.consume(&batch);
    let a = w.one_firing("denial-rate");
    assert_eq!(a.agent, "prober");
    assert_eq!(World::label(&a, "agent"), "prober");
    assert!(a.value > 0.6 && a.value < 0.9, "{a:?}");
}

#[test]
fn denial_burst_fires_on_one_actor_denied_again_and_again() {
    let mut w = world(&["denial-burst"]);
    let mut batch = Vec::new();
    // `mallory` is denied 10 times in 2 minutes; `alice` 10 times in 18 minutes.
    for i in 0..10u64 {
        batch.push(permission("bot", "mallory", T0 + i * 12 * SECOND, false));
    }
    for i in 0..10u64 {
        batch.push(permission("bot", "alice", T0 + i * 2 * MINUTE, false));
    }
    batch.sort_by_key(|e| e.time.0);
    w.consume(&batch);
    let a = w.one_firing("denial-burst");
    assert_eq!(World::label(&a, "actor"), "mallory");
}

#[test]
fn budget_burn_fires_on_an_agent_spending_fast() {
    let mut w = world(&["budget-burn"]);
    // Over 10 minutes: `spender` pays $0.60 a call, 12 calls; `thrifty` $0.10, 40 calls.
    let mut batch = Vec::new();
    for i in 0..12u64 {
        batch.push(llm("spender", "ai", T0 + i * 50 * SECOND, true, 0.6));
    }
    for i in 0..40u64 {
        batch.push(llm("thrifty", "ai", T0 + i * 15 * SECOND, true, 0.1));
    }
    batch.sort_by_key(|e| e.time.0);
    w.consume(&batch);
    w.consume(&[llm("thrifty", "ai", T0 + 10 * MINUTE + 5 * SECOND, true, 0.1)]);
    let a = w.one_firing("budget-burn");
    assert_eq!(a.agent, "spender");
    assert!(a.value > 5.0 && a.value <= 7.2, "{a:?}");
}

#[test]
fn budget_warnings_fire_when_an_agents_threads_near_their_budgets() {
    let mut w = world(&["budget-warnings"]);
    let mut batch = vec![budget_warning("helper", thread_id(20), T0)];
    // Five of `planner`'s threads warn within 5 minutes; `helper` warns twice in 10.
    for i in 0..5u64 {
        batch.push(budget_warning("planner", thread_id(10 + u128::from(i)), T0 + (5 + i) * MINUTE));
    }
    batch.push(budget_warning("helper", thread_id(21), T0 + 10 * MINUTE + 30 * SECOND));
    w.consume(&batch);
    let a = w.one_firing("budget-warnings");
    assert_eq!(a.agent, "planner");
    assert_eq!(a.value, 5.0);
}

#[test]
fn the_whole_preset_stays_quiet_on_healthy_traffic() {
    let mut w = world(&[]);
    // Three threads, each working every minute for 30 minutes: cheap, successful calls,
    // allowed requests; then they end, and the stream goes quiet for an hour.
    for m in 0..30u64 {
        let t = T0 + m * MINUTE;
        let mut batch = Vec::new();
        for n in 0..3u128 {
            let id = thread_id(30 + n);
            batch.push(step("acme", id, t + n as u64 * SECOND));
            let mut call = llm("bot", "ai", t + 10 * SECOND, true, 0.01);
            call.thread_id = id;
            call.parent_span_id = SpanId(1);
            batch.push(call);
            batch.push(permission("bot", "bot", t + 20 * SECOND, true));
        }
        w.consume(&batch);
    }
    let ends: Vec<Event> =
        (0..3u128).map(|n| root_end("acme", thread_id(30 + n), T0 + 30 * MINUTE)).collect();
    w.consume(&ends);
    w.tick(T0 + 30 * MINUTE + SECOND);
    w.tick(T0 + 90 * MINUTE);
    let all = w.alerts.lock().expect("lock").clone();
    assert!(all.is_empty(), "{all:?}");
}

/// The README's self-care paragraph names the preset and each of its directives.
#[test]
fn the_readme_names_every_directive_of_the_preset() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let start = readme.find("**Self-care.**").expect("the README's self-care paragraph");
    let paragraph = &readme[start..start + readme[start..].find("\n\n").expect("its end")];
    assert!(paragraph.contains("preset:self-care"));
    for name in TESTED {
        assert!(paragraph.contains(&format!("`{name}`")), "{name} is not in the README");
    }
}
