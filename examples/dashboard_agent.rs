//! A test agent for the dashboard's browser tests: serves the live dashboard from its own
//! process and records what it is told on stdin, so a test can watch values reach the page.
//!
//! ```text
//! cargo run -p mission-examples --example dashboard_agent -- ./agent-data --token <16+ chars>
//! ```
//!
//! Options: `--token T` (sees every tenant; without one, no token is asked for), `--tenant-token
//! T:TENANT` (sees one tenant), `--tenant NAME` (the agent's tenant, default `acme`), `--port P`
//! (default 0, a free port), `--otlp URL` (exports traces and metrics over OTLP/HTTP to URL,
//! logs off, so health shows each signal's state). The models run (anomaly detection), as in a
//! real agent.
//!
//! Prints one JSON line, `{"url": "http://127.0.0.1:PORT/", "token": "T" | null, "tenant":
//! "acme"}`, then reads commands from stdin, one per line, and answers each with one JSON line
//! (`{"ok": true, ...}`, or `{"ok": false, "error": "..."}`):
//!
//! | command | records | answer |
//! |---|---|---|
//! | `threads N [TENANT]` | N threads ending over the last minute: a step with LLM and tool calls of realistic durations (ms), logs, a permission check, a helpfulness score | `threads`, `events`, `thread_ids` (the first 100), `last_thread_id` |
//! | `span` | one LLM call (120 ms, ending now) in a new thread | `thread_id`, `span_id`, `end_ns`, `duration_ms` |
//! | `log LEVEL TEXT` | a log record of the agent `dashboard-agent` outside any thread | `ts_ns`, `level` |
//! | `error` | a thread whose `web_search` tool call fails (with a warn log) | `thread_id`, `span_id`, `end_ns` |
//! | `child` | a running thread (`planner`) with a running child thread (`researcher`, one step), flushed; both keep running | `parent`, `child` |
//! | `stopped ID` | nothing: asks the running thread ID's own code | `should_stop`, `state` |
//! | `loop` | a running thread (`looping-bot`) calling one tool three times alike, flushed: the directive `loop-guard` proposes cancelling it and waits for an operator | `thread_id` |
//! | `diffpair` | two runs of `support-bot` (`mission_examples::record_diff_pair`), the bad one diverging at step 4 (`web_search`'s arguments), flushed | `good`, `bad`, `step`, `field`, `spans` |
//! | `flush` | nothing: waits until everything is in the store | — |
//! | `quit` | nothing: answers, then shuts down and exits (so does the end of stdin) | — |

use std::io::{BufRead, Write};
use std::time::Duration;

use mission_core::{
    Backpressure, Decision, EventBody, Level, LlmUsage, LogRecord, PermissionDecision, Recorder,
    RecorderConfig, SpanId, SpanKind, Symbol, Text, ThreadContext, ThreadId, Timestamp,
};
use mission_sdk::directives::Severity;
use mission_sdk::threads::PermissionSet;
use mission_sdk::{DashboardConfig, MissionControl, OtlpConfig};
use serde_json::{Value, json};

const MS: u64 = 1_000_000;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..high` milliseconds, as ns.
    fn ms(&mut self, low: u64, high: u64) -> u64 {
        (low + self.next() % (high - low).max(1)) * MS
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const MODELS: [(&str, &str, u64, u64, f64, f64); 3] = [
    // (provider, model, min ms, max ms, $ per M input, $ per M output)
    ("openai", "gpt-4o-mini", 300, 1_200, 0.15, 0.60),
    ("anthropic", "claude-sonnet-4", 800, 2_500, 3.0, 15.0),
    ("openai", "gpt-4.1", 600, 1_800, 2.0, 8.0),
];
const TOOLS: [(&str, u64, u64); 3] =
    [("web_search", 100, 400), ("lookup_order", 20, 60), ("send_email", 80, 200)];
const AGENTS: [&str; 3] = ["support-bot", "research-agent", "billing-assistant"];

fn log_event(
    ctx: &ThreadContext,
    span: SpanId,
    level: Level,
    message: &str,
    at: u64,
) -> mission_core::Event {
    let mut event = ctx.event(
        Symbol::intern("agent"),
        span,
        EventBody::Log(LogRecord {
            level,
            target: Symbol::intern("agent"),
            message: Text::new(message),
        }),
    );
    event.time = Timestamp(at);
    event
}

/// One thread ending at `end`; returns its id and the number of events recorded.
fn record_thread(recorder: &Recorder, rng: &mut Rng, tenant: Symbol, end: u64) -> (ThreadId, u64) {
    let ctx = ThreadContext::new(tenant, Symbol::intern(rng.pick(&AGENTS)));
    // Plan the spans first, so the thread ends at `end`.
    let turns = 1 + rng.next() % 3;
    let mut plan = Vec::new();
    for _ in 0..turns {
        let (provider, model, low, high, input_price, output_price) = rng.pick(&MODELS);
        plan.push((
            SpanKind::LlmCall,
            model,
            provider,
            rng.ms(low, high),
            input_price,
            output_price,
        ));
        if rng.next() % 10 < 7 {
            let (tool, low, high) = rng.pick(&TOOLS);
            plan.push((SpanKind::ToolCall, tool, "", rng.ms(low, high), 0.0, 0.0));
        }
    }
    let total: u64 = plan.iter().map(|p| p.3).sum::<u64>() + 5 * MS;
    let mut clock = end.saturating_sub(total);
    let root = recorder.start_span_at(
        &ctx,
        SpanKind::AgentStep,
        Symbol::intern("handle_request"),
        None,
        Timestamp(clock),
    );
    let root_id = root.span_id();
    let mut events = 1;
    recorder.record(log_event(&ctx, root_id, Level::Info, "request received", clock));
    events += 1;
    for (kind, name, provider, duration, input_price, output_price) in plan {
        if kind == SpanKind::ToolCall {
            let mut decision = ctx.event(
                Symbol::intern("tool.call"),
                root_id,
                EventBody::Permission(PermissionDecision {
                    actor: Text::new(ctx.agent.as_str()),
                    action: Symbol::intern("tool.call"),
                    resource: Text::new(name),
                    decision: Decision::Allow,
                    policy: Symbol::intern("default-tool-policy"),
                }),
            );
            decision.time = Timestamp(clock);
            recorder.record(decision);
            events += 1;
        }
        let symbol = Symbol::intern(if kind == SpanKind::LlmCall { "chat" } else { name });
        let mut span = recorder.start_span_at(&ctx, kind, symbol, Some(root_id), Timestamp(clock));
        if kind == SpanKind::LlmCall {
            let input = 200 + (rng.next() % 2_000) as u32;
            let output = 20 + (rng.next() % 400) as u32;
            span.set_llm_usage(LlmUsage {
                model: Symbol::intern(name),
                provider: Symbol::intern(provider),
                input_tokens: input,
                output_tokens: output,
                cost_usd: f64::from(input) * input_price / 1e6
                    + f64::from(output) * output_price / 1e6,
                ..LlmUsage::default()
            });
        }
        clock += duration;
        span.end_at(Timestamp(clock));
        events += 1;
    }
    // The run's evaluation: a judge's helpfulness score on the whole run.
    let value = (rng.next() % 101) as f64 / 100.0;
    if let Ok(score) = mission_core::Score::new(value) {
        let mut judged = ctx.event(
            Symbol::intern("helpfulness"),
            root_id,
            EventBody::Score(
                score.with_label("judged").with_source(mission_core::ScoreSource::Llm),
            ),
        );
        judged.time = Timestamp(end);
        recorder.record(judged);
        events += 1;
    }
    root.end_at(Timestamp(end));
    (ctx.thread_id, events)
}

fn reply(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().filter(|a| !a.starts_with("--")) else {
        fail(
            "usage: dashboard_agent <store-dir> [--token T] [--tenant-token T:TENANT] [--tenant NAME] [--port P] [--otlp URL]",
        )
    };
    let option = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let port: u16 = option("--port").map_or(0, |p| p.parse().unwrap_or_else(|e| fail(e)));
    let tenant = option("--tenant").unwrap_or_else(|| "acme".into());
    let token = option("--token");
    let mut config = DashboardConfig::loopback(port);
    if let Some(t) = &token {
        config = config.with_token(t);
    }
    for (i, a) in args.iter().enumerate() {
        if let ("--tenant-token", Some(t)) = (a.as_str(), args.get(i + 1)) {
            let (token, tenant) =
                t.split_once(':').unwrap_or_else(|| fail("--tenant-token T:TENANT"));
            config = config.with_tenant_token(token, tenant);
        }
    }
    let mut builder = MissionControl::builder();
    if let Some(url) = option("--otlp") {
        builder = builder.with_otlp(OtlpConfig::http(&url).with_logs(false));
    }
    let control = builder
        .with_store_root(root)
        .with_tenant(&tenant)
        .with_recorder_config(
            RecorderConfig::default()
                .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(5) }),
        )
        .with_directives(
            mission_sdk::DirectiveSet::from_toml_str(mission_examples::LOOP_GUARD, "loop-guard")
                .unwrap_or_else(|e| fail(e)),
        )
        .ignore_environment()
        .build()
        .unwrap_or_else(|e| fail(e));
    let server = control.serve_dashboard(config).unwrap_or_else(|e| fail(e));
    reply(json!({ "url": server.url(), "token": token, "tenant": tenant }));

    let recorder = control.recorder();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    // Threads kept running for `child` / `stopped`.
    let mut running: Vec<mission_sdk::Thread<'_>> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let answer = match words.next() {
            Some("threads") => {
                let n: u64 = match words.next().map(str::parse) {
                    Some(Ok(n)) => n,
                    _ => {
                        reply(json!({ "ok": false, "error": "usage: threads N [TENANT]" }));
                        continue;
                    }
                };
                let tenant = Symbol::intern(words.next().unwrap_or(&tenant));
                // Threads end over the last minute (or less), the newest now.
                let now = Timestamp::now().0;
                let spacing = (60_000 * MS / n.max(1)).min(1_000 * MS);
                let (mut ids, mut events, mut last) = (Vec::new(), 0, None);
                for i in 0..n {
                    let end = now.saturating_sub((n - 1 - i) * spacing);
                    let (id, e) = record_thread(recorder, &mut rng, tenant, end);
                    events += e;
                    if ids.len() < 100 {
                        ids.push(id.to_string());
                    }
                    last = Some(id.to_string());
                }
                json!({ "ok": true, "threads": n, "events": events, "thread_ids": ids, "last_thread_id": last })
            }
            Some("span") => {
                let ctx =
                    ThreadContext::new(Symbol::intern(&tenant), Symbol::intern("support-bot"));
                let end = Timestamp::now().0;
                let mut span = recorder.start_span_at(
                    &ctx,
                    SpanKind::LlmCall,
                    Symbol::intern("chat"),
                    None,
                    Timestamp(end - 120 * MS),
                );
                span.set_llm_usage(LlmUsage {
                    model: Symbol::intern("gpt-4o-mini"),
                    provider: Symbol::intern("openai"),
                    input_tokens: 500,
                    output_tokens: 50,
                    cost_usd: 500.0 * 0.15 / 1e6 + 50.0 * 0.60 / 1e6,
                    ..LlmUsage::default()
                });
                let id = span.span_id();
                span.end_at(Timestamp(end));
                json!({ "ok": true, "thread_id": ctx.thread_id.to_string(), "span_id": id.to_string(),
                        "end_ns": end, "duration_ms": 120.0 })
            }
            Some("log") => {
                let level = words.next().map(str::parse::<Level>);
                let text = words.collect::<Vec<_>>().join(" ");
                match level {
                    Some(Ok(level)) => {
                        let ctx = ThreadContext {
                            tenant: Symbol::intern(&tenant),
                            agent: Symbol::intern("dashboard-agent"),
                            thread_id: ThreadId::default(),
                        };
                        let now = Timestamp::now().0;
                        recorder.record(log_event(&ctx, SpanId::NONE, level, &text, now));
                        json!({ "ok": true, "ts_ns": now, "level": level.as_str() })
                    }
                    _ => {
                        json!({ "ok": false, "error": "usage: log trace|debug|info|warn|error TEXT" })
                    }
                }
            }
            Some("error") => {
                let ctx =
                    ThreadContext::new(Symbol::intern(&tenant), Symbol::intern("support-bot"));
                let end = Timestamp::now().0;
                let start = end - 400 * MS;
                let root = recorder.start_span_at(
                    &ctx,
                    SpanKind::AgentStep,
                    Symbol::intern("handle_request"),
                    None,
                    Timestamp(start),
                );
                let root_id = root.span_id();
                let tool = recorder.start_span_at(
                    &ctx,
                    SpanKind::ToolCall,
                    Symbol::intern("web_search"),
                    Some(root_id),
                    Timestamp(start + 50 * MS),
                );
                let id = tool.span_id();
                tool.end_at_with_error(Timestamp(end - 10 * MS), "upstream returned 503");
                recorder.record(log_event(
                    &ctx,
                    root_id,
                    Level::Warn,
                    "web_search failed; giving up",
                    end - 10 * MS,
                ));
                let mut root = root;
                root.set_status(mission_core::Status::Error);
                root.end_at(Timestamp(end));
                json!({ "ok": true, "thread_id": ctx.thread_id.to_string(), "span_id": id.to_string(), "end_ns": end })
            }
            Some("child") if running.len() < 64 => {
                // A running thread with a running child thread (visible: its start is flushed).
                let parent = control.agent("planner").thread();
                let child = parent.child_thread(&control.agent("researcher"));
                child.step("search").end();
                let answer = json!({ "ok": true, "parent": parent.id().to_string(), "child": child.id().to_string() });
                running.push(parent);
                running.push(child);
                match control.flush() {
                    Ok(()) => answer,
                    Err(e) => json!({ "ok": false, "error": e.to_string() }),
                }
            }
            Some("lineage") if running.len() < 64 => {
                // A planner allowed only search tools (a refund escalates), with a researcher
                // child allowed every tool: the child's search is allowed, its refund denied by
                // the planner.
                let parent_set = PermissionSet::new(["tool_call:search_*"])
                    .and_then(|p| p.named("planner-tools"))
                    .and_then(|p| p.with_escalation("tool_call:refund_*", Severity::Critical));
                match (parent_set, PermissionSet::new(["tool_call:*"])) {
                    (Ok(parent_set), Ok(child_set)) => {
                        let parent = control.agent("planner").thread_with_permissions(parent_set);
                        let child = parent
                            .child_thread_with_permissions(&control.agent("researcher"), child_set);
                        let search = child.permit("agent:researcher", "tool_call", "search_docs");
                        let refund =
                            child.permit("agent:researcher", "tool_call", "refund_payment");
                        let answer = json!({ "ok": true, "parent": parent.id().to_string(),
                            "child": child.id().to_string(),
                            "allowed": [search.allowed, refund.allowed] });
                        running.push(parent);
                        running.push(child);
                        match control.flush() {
                            Ok(()) => answer,
                            Err(e) => json!({ "ok": false, "error": e.to_string() }),
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => json!({ "ok": false, "error": e.to_string() }),
                }
            }
            Some("diffpair") => {
                let pair =
                    mission_examples::record_diff_pair(recorder, &tenant, Timestamp::now().0);
                match control.flush() {
                    Ok(()) => json!({ "ok": true, "good": pair.good, "bad": pair.bad,
                                      "step": pair.step, "field": pair.field, "spans": pair.spans }),
                    Err(e) => json!({ "ok": false, "error": e.to_string() }),
                }
            }
            Some("loop") if running.len() < 64 => {
                let thread = control.agent("looping-bot").thread();
                for _ in 0..3 {
                    thread.tool_call("search_docs").set_arguments(r#"{"query":"refund policy"}"#);
                }
                let answer = json!({ "ok": true, "thread_id": thread.id().to_string() });
                running.push(thread);
                match control.flush() {
                    Ok(()) => answer,
                    Err(e) => json!({ "ok": false, "error": e.to_string() }),
                }
            }
            Some("stopped") => {
                let id = words.next().unwrap_or("");
                match running.iter().find(|t| t.id().to_string() == id) {
                    Some(t) => {
                        json!({ "ok": true, "should_stop": t.should_stop(), "state": t.state().as_str() })
                    }
                    None => json!({ "ok": false, "error": format!("no running thread {id}") }),
                }
            }
            Some("flush") => match control.flush() {
                Ok(()) => json!({ "ok": true }),
                Err(e) => json!({ "ok": false, "error": e.to_string() }),
            },
            Some("quit") => {
                reply(json!({ "ok": true }));
                break;
            }
            _ => {
                json!({ "ok": false, "error": format!("unknown command {line:?}: threads N, span, log LEVEL TEXT, error, child, loop, diffpair, stopped ID, flush, quit") })
            }
        };
        reply(answer);
    }
    drop(running);
    server.shutdown();
    control.shutdown();
}
