//! An agent that serves Mission Control's MCP server over HTTP from its own process, while it
//! records: the simulated workload, one bulky thread of long logs, and whatever it is told on
//! stdin. The Python tests drive it with the official MCP client; try it with any MCP client:
//!
//! ```text
//! cargo run -p mission-examples --example mcp_agent -- ./agent-data --token <16+ chars>
//! ```
//!
//! Prints one JSON line (the URL and what was recorded), then reads commands from stdin until
//! it closes: `record <thread-id>` records a step in that thread, flushed (and answers `ok`);
//! `permit ACTOR ACTION RESOURCE` asks the policy and answers the decision as JSON; `fail
//! TENANT TOOL N` records N failed calls of TOOL by the agent `flaky-bot` of TENANT, flushed so
//! the directives have seen them (and answers `ok`); `live` starts a thread and a child thread
//! that keep running (answers their ids as JSON); `stopped ID` answers whether that running
//! thread should stop, and its state, as JSON; `loop AGENT` starts a thread of AGENT that keeps
//! running and calls one tool three times with the same arguments, flushed (answers its id as
//! JSON): the directive `loop-guard` (agent `looping-bot`) then proposes cancelling it and waits
//! for an operator's approval for 10 minutes, `quick-expiry` (agent `expiring-bot`) proposes
//! pausing it and waits 2 seconds; `anomaly CAUSE` records an anomaly of tenant-0 on
//! `chat.latency` whose single cause is CAUSE (`model=claude-sonnet-4`), flushed (answers its id
//! as JSON): incidents close after 1 second of quiet here.
//! Options: `--threads N` (default 200), `--token T` (admin of every tenant), `--tenant-token
//! T:TENANT` (viewer of one tenant), `--role-token T:ROLE[:TENANT]` (`viewer`, `operator` or
//! `admin`), `--port P` (default 0, a free port). It runs the `tool-circuit-breaker` preset.

use std::io::BufRead;
use std::time::Duration;

use mission_core::{Backpressure, Level, RecorderConfig, ThreadId};
use mission_examples::{Workload, simulate};
use mission_sdk::{McpHttpConfig, MissionControl, Role};

/// A directive whose remedy waits for an operator 2 seconds (`loop expiring-bot` plants the loop
/// it catches; `loop looping-bot` plants `LOOP_GUARD`'s).
const QUICK_EXPIRY: &str = r#"
[[directive]]
name = "quick-expiry"
when = "3 same tool calls in a thread"
where = { agent = "expiring-bot" }
approve = { within = "2s" }
then = [{ action = "pause_thread" }]
"#;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().filter(|a| !a.starts_with("--")) else {
        fail(
            "usage: mcp_agent <store-dir> [--threads N] [--token T] [--tenant-token T:TENANT] [--port P]",
        )
    };
    let option = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let threads = option("--threads").map_or(200, |n| n.parse().unwrap_or_else(|e| fail(e)));
    let port = option("--port").map_or(0, |p| p.parse().unwrap_or_else(|e| fail(e)));
    let mut config = McpHttpConfig::loopback(port);
    for (i, a) in args.iter().enumerate() {
        match (a.as_str(), args.get(i + 1)) {
            ("--token", Some(t)) => config = config.with_token(t),
            ("--tenant-token", Some(t)) => {
                let (token, tenant) =
                    t.split_once(':').unwrap_or_else(|| fail("--tenant-token T:TENANT"));
                config = config.with_tenant_token(token, tenant);
            }
            ("--role-token", Some(t)) => {
                let mut parts = t.splitn(3, ':');
                let (Some(token), Some(role)) = (parts.next(), parts.next()) else {
                    fail("--role-token T:ROLE[:TENANT]")
                };
                let role: Role = role.parse().unwrap_or_else(|e| fail(e));
                config = config.with_role_token(token, role, parts.next());
            }
            _ => {}
        }
    }

    let control = MissionControl::builder()
        .with_store_root(root)
        .with_tenant("tenant-0")
        .with_recorder_config(
            RecorderConfig::default()
                .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(5) }),
        )
        .with_directives_file("preset:tool-circuit-breaker")
        .with_directives(
            mission_sdk::DirectiveSet::from_toml_str(mission_examples::LOOP_GUARD, "loop-guard")
                .unwrap_or_else(|e| fail(e)),
        )
        .with_directives(
            mission_sdk::DirectiveSet::from_toml_str(QUICK_EXPIRY, "mcp_agent")
                .unwrap_or_else(|e| fail(e)),
        )
        .ignore_environment()
        .build()
        .unwrap_or_else(|e| fail(e));
    control.directives().set_incident_quiet(Duration::from_secs(1)).unwrap_or_else(|e| fail(e));
    let summary =
        simulate(control.recorder(), &Workload { threads, tenants: 2, ..Workload::default() });

    // A thread with many long log lines: a search over it is bigger than one MCP result.
    let agent = control.agent("bulky-bot");
    let bulky = agent.thread();
    let bulky_id = bulky.id();
    let line = "x".repeat(1_000);
    for i in 0..300 {
        bulky.log(Level::Info, &format!("bulk record {i:03} {line}"));
    }
    bulky.end();
    control.flush().unwrap_or_else(|e| fail(e));

    let server = control.serve_mcp(config).unwrap_or_else(|e| fail(e));
    println!(
        "{}",
        serde_json::json!({
            "url": server.url(),
            "events": summary.events,
            "llm_calls": summary.llm_calls,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cost_usd": summary.cost_usd,
            "errors": summary.errors,
            "bulky_thread": bulky_id.to_string(),
            "bulky_logs": 300,
        })
    );

    let live = control.agent("live-bot");
    // Threads kept running for `live` / `stopped` (a parent and its child each time).
    let mut running: Vec<mission_sdk::Thread<'_>> = Vec::new();
    for command in std::io::stdin().lock().lines() {
        let Ok(command) = command else { break };
        if command == "live" {
            if running.len() >= 64 {
                println!("error: at most 64 running threads");
                continue;
            }
            let parent = live.thread();
            let child = parent.child_thread(&control.agent("live-helper"));
            println!(
                "{}",
                serde_json::json!({"parent": parent.id().to_string(), "child": child.id().to_string()})
            );
            running.push(parent);
            running.push(child);
            continue;
        }
        match command.split_once(' ') {
            Some(("loop", agent)) if running.len() < 64 => {
                // `loop AGENT`: a running thread calling one tool three times alike.
                let thread = control.agent(agent.trim()).thread();
                for _ in 0..3 {
                    thread.tool_call("search_docs").set_arguments(r#"{"query":"refund policy"}"#);
                }
                println!("{}", serde_json::json!({"thread": thread.id().to_string()}));
                running.push(thread);
                if let Err(e) = control.flush() {
                    eprintln!("flush: {e}");
                }
            }
            Some(("anomaly", cause)) => {
                let id = mission_core::SpanId::generate();
                let mut event = mission_core::Event::new(
                    mission_core::Symbol::intern("chat.latency"),
                    mission_core::EventBody::Anomaly(mission_core::AnomalyEvent {
                        detector: mission_core::Symbol::intern("ewma"),
                        score: 0.97,
                        value: 9.0,
                        expected: 1.0,
                        ..Default::default()
                    }),
                );
                event.time = mission_core::Timestamp::now();
                event.tenant = mission_core::Symbol::intern("tenant-0");
                event.agent = mission_core::Symbol::intern("live-bot");
                event.span_id = id;
                let cause = cause.trim();
                event
                    .attributes
                    .set(mission_core::Symbol::intern(mission_core::anomaly::attr::CAUSE), cause);
                control.recorder().record(event);
                match control.flush() {
                    Ok(()) => println!("{}", serde_json::json!({"anomaly": id.to_string()})),
                    Err(e) => println!("error: {e}"),
                }
            }
            Some(("stopped", id)) => {
                // `stopped ID`: whether the running thread ID should stop, and why, as JSON.
                match running.iter().find(|t| t.id().to_string() == id.trim()) {
                    Some(t) => println!(
                        "{}",
                        serde_json::json!({"should_stop": t.should_stop(), "state": t.state().as_str()})
                    ),
                    None => println!("error: no running thread {id}"),
                }
            }
            Some(("record", id)) => match id.trim().parse::<ThreadId>() {
                Ok(id) => {
                    let thread = live.thread_with_id(id);
                    thread.step("follow-up").end();
                    thread.end();
                    // Flushed, so a question asked next sees it.
                    match control.flush() {
                        Ok(()) => println!("ok"),
                        Err(e) => println!("error: {e}"),
                    }
                }
                Err(e) => println!("error: {e}"),
            },
            Some(("permit", rest)) => {
                // `permit ACTOR ACTION RESOURCE`: asks the policy, answers the decision as JSON.
                let parts: Vec<&str> = rest.split_whitespace().collect();
                if let [actor, action, resource] = parts[..] {
                    let d = control.permit(actor, action, resource);
                    println!(
                        "{}",
                        serde_json::json!({"allowed": d.allowed, "rule": d.rule, "reason": d.reason})
                    );
                } else {
                    println!("error: permit ACTOR ACTION RESOURCE");
                }
            }
            Some(("fail", rest)) => {
                // `fail TENANT TOOL N`: N failed calls of TOOL in a thread of TENANT.
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let n = parts.get(2).and_then(|n| n.parse::<u32>().ok());
                if let ([tenant, tool, _], Some(n)) = (&parts[..], n) {
                    let ctx = mission_core::ThreadContext::new(
                        mission_core::Symbol::intern(tenant),
                        mission_core::Symbol::intern("flaky-bot"),
                    );
                    for _ in 0..n {
                        let tool = mission_core::Symbol::intern(tool);
                        let span = control.recorder().start_span(
                            &ctx,
                            mission_core::SpanKind::ToolCall,
                            tool,
                            None,
                        );
                        span.end_with_error("upstream returned 503");
                    }
                    match control.flush() {
                        Ok(()) => println!("ok"),
                        Err(e) => println!("error: {e}"),
                    }
                } else {
                    println!("error: fail TENANT TOOL N");
                }
            }
            _ => println!("error: unknown command {command:?}"),
        }
    }
    drop(running);
    server.shutdown();
    control.shutdown();
}
