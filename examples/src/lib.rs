//! A simulated but realistic multi-agent workload, recorded through Mission Control's real
//! API: several agents, many threads, LLM calls with heavy-tailed latencies and token counts,
//! tool calls that sometimes fail, logs and permission checks. The quick start runs it; the
//! workspace tests check that what Mission Control reports matches what it recorded.
//!
//! ```
//! use mission_core::Pipeline;
//! use mission_examples::{Workload, simulate};
//! let pipeline = Pipeline::builder().start()?;
//! let summary = simulate(&pipeline.recorder(), &Workload { threads: 10, ..Workload::default() });
//! assert_eq!(pipeline.shutdown().accounting.delivered, summary.events);
//! # Ok::<(), mission_core::StartError>(())
//! ```

#[cfg(feature = "openai")]
pub mod openai;

use mission_core::{
    Decision, Event, EventBody, Level, LlmUsage, LogRecord, PermissionDecision, Recorder, SpanKind,
    Symbol, Text, ThreadContext, Timestamp,
};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Threads (conversations) in all.
    pub threads: u64,
    /// Tenants the agents are spread over.
    pub tenants: u64,
    /// Seed of the pseudo-random generator (same seed, same workload).
    pub seed: u64,
    /// Simulated time the threads start in, ending ten minutes ago.
    pub span_of_time_ns: u64,
    /// An incident to plant, if any.
    pub incident: Option<Incident>,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            threads: 2_000,
            tenants: 3,
            seed: 42,
            span_of_time_ns: 3_600 * 1_000_000_000,
            incident: None,
        }
    }
}

/// A planted incident: from a point of the run on, one model's calls take longer, and for a
/// while one tool fails every call.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// The model that slows down (one of `claude-sonnet-4`, `gpt-4.1`, `gpt-4o-mini`).
    pub model: &'static str,
    /// How many times slower.
    pub factor: f64,
    /// Where in the run it starts, as a share of the threads (0.75: the last quarter).
    pub from: f64,
    /// A tool (one of `web_search`, `lookup_order`, `send_email`, `run_sql`,
    /// `refund_payment`) that fails every call from `from` on, for `outage` of the threads.
    pub failing_tool: Option<&'static str>,
    /// How long the tool's outage lasts, as a share of the threads.
    pub outage: f64,
}

impl Incident {
    /// The quick start's incident: `claude-sonnet-4` three times slower over the last
    /// quarter of the run, and `web_search` down for the first 5 % of the run's threads of it
    /// (three simulated minutes).
    pub fn slow_model() -> Self {
        Self {
            model: "claude-sonnet-4",
            factor: 3.0,
            from: 0.75,
            failing_tool: Some("web_search"),
            outage: 0.05,
        }
    }
}

/// Exactly what [`simulate`] recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Every event recorded.
    pub events: u64,
    /// Spans, by kind: agent steps, LLM calls, tool calls, retrievals.
    pub agent_steps: u64,
    /// LLM calls.
    pub llm_calls: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Retrievals.
    pub retrievals: u64,
    /// Spans that ended with an error.
    pub errors: u64,
    /// Log records.
    pub logs: u64,
    /// Permission decisions (of which denials).
    pub permissions: u64,
    /// Denied permission decisions.
    pub denials: u64,
    /// Input tokens over all LLM calls.
    pub input_tokens: u64,
    /// Output tokens over all LLM calls.
    pub output_tokens: u64,
    /// Cost over all LLM calls, US dollars.
    pub cost_usd: f64,
    /// When the planted incident began (ns since the Unix epoch), if one was planted.
    pub incident_started: Option<u64>,
}

/// The agents, the tools they use and how often the tools fail.
const AGENTS: [&str; 3] = ["support-bot", "research-agent", "billing-assistant"];
const TOOLS: [(&str, f64, f64); 5] = [
    // (tool, median latency ms, failure probability)
    ("web_search", 420.0, 0.04),
    ("lookup_order", 35.0, 0.01),
    ("send_email", 180.0, 0.02),
    ("run_sql", 90.0, 0.06),
    ("refund_payment", 260.0, 0.03),
];
/// (provider, model, median latency ms, $ per million input tokens, $ per million output tokens)
const MODELS: [(&str, &str, f64, f64, f64); 3] = [
    ("openai", "gpt-4o-mini", 900.0, 0.15, 0.60),
    ("anthropic", "claude-sonnet-4", 2_400.0, 3.00, 15.00),
    ("openai", "gpt-4.1", 1_800.0, 2.00, 8.00),
];

/// A small deterministic generator (xorshift64*), so runs are reproducible without a
/// dependency (the workload's, and tests' that make data of their own).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is taken as 1: xorshift has no zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Log-normal with the given median and shape: heavy right tail, like real latencies.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }
}

const MS: f64 = 1_000_000.0;

/// The loop directive the test agents share (`mcp_agent`, `dashboard_agent`): three alike tool
/// calls of the agent `looping-bot` in one thread propose cancelling it, for an operator to
/// approve within 10 minutes.
pub const LOOP_GUARD: &str = r#"
[[directive]]
name = "loop-guard"
when = "3 same tool calls in a thread"
where = { agent = "looping-bot" }
approve = { within = "10m", confidence = 0.9 }
then = [{ action = "alert" }, { action = "cancel_thread", reason = "a tool loop" }]
"#;

/// Records the workload into `recorder` and returns exactly what it recorded.
///
/// Threads are laid out over the simulated time span (ending now), each with a plan step,
/// one to four LLM calls, tool calls (some failing, some needing permission), an occasional
/// retrieval, and logs.
pub fn simulate(recorder: &Recorder, workload: &Workload) -> Summary {
    let mut rng = Rng(workload.seed.max(1));
    let mut summary = Summary::default();
    let now = Timestamp::now().0;
    // Threads start over the simulated span ending ten minutes ago, so every span (the longest
    // threads run a few minutes) has ended by now.
    let start_of_time = now.saturating_sub(workload.span_of_time_ns + 600_000_000_000);
    let step_name = Symbol::intern("handle_request");
    let retrieval_name = Symbol::intern("vector_search");
    let chat_name = Symbol::intern("chat");
    let check = Symbol::intern("tool.call");
    let policy = Symbol::intern("default-tool-policy");
    let user_key = Symbol::intern("user.id");
    let target = Symbol::intern("agent");
    let tenants: Vec<Symbol> =
        (0..workload.tenants.max(1)).map(|t| Symbol::intern(&format!("tenant-{t}"))).collect();
    let incident_from =
        workload.incident.as_ref().map(|inc| (inc.from * workload.threads as f64) as u64);
    let outage_until = workload
        .incident
        .as_ref()
        .map(|inc| ((inc.from + inc.outage) * workload.threads as f64) as u64);
    for i in 0..workload.threads {
        let agent_index = rng.below(AGENTS.len() as u64) as usize;
        let tenant = tenants[rng.below(tenants.len() as u64) as usize];
        let thread = ThreadContext::new(tenant, Symbol::intern(AGENTS[agent_index]));
        let user = format!("u-{}", rng.below(500));
        // Spread the threads over the simulated hour, in order.
        let mut clock = start_of_time + workload.span_of_time_ns / workload.threads.max(1) * i;
        if incident_from == Some(i) {
            summary.incident_started = Some(clock);
        }
        let mut root =
            recorder.start_span_at(&thread, SpanKind::AgentStep, step_name, None, Timestamp(clock));
        root.set_attribute(user_key, user.as_str());
        let root_id = root.span_id();
        let mut failed = false;

        if rng.chance(0.3) {
            let duration = rng.lognormal(60.0, 0.5) * MS;
            let span = recorder.start_span_at(
                &thread,
                SpanKind::Retrieval,
                retrieval_name,
                Some(root_id),
                Timestamp(clock),
            );
            clock += duration as u64;
            span.end_at(Timestamp(clock));
            summary.retrievals += 1;
            summary.events += 1;
        }

        let turns = 1 + rng.below(4);
        for _ in 0..turns {
            let (provider, model, median, input_price, output_price) =
                MODELS[rng.below(MODELS.len() as u64) as usize];
            let mut call = recorder.start_span_at(
                &thread,
                SpanKind::LlmCall,
                chat_name,
                Some(root_id),
                Timestamp(clock),
            );
            let input = rng.lognormal(900.0, 0.8).min(120_000.0) as u32 + 50;
            let output = rng.lognormal(120.0, 0.9).min(8_000.0) as u32 + 5;
            let cost = input as f64 * input_price / 1e6 + output as f64 * output_price / 1e6;
            call.set_llm_usage(LlmUsage {
                model: Symbol::intern(model),
                provider: Symbol::intern(provider),
                input_tokens: input,
                output_tokens: output,
                cost_usd: cost,
                ..LlmUsage::default()
            });
            let slowdown = match (&workload.incident, incident_from) {
                (Some(inc), Some(from)) if i >= from && inc.model == model => inc.factor,
                _ => 1.0,
            };
            clock += (rng.lognormal(median, 0.6) * slowdown * MS) as u64;
            summary.llm_calls += 1;
            summary.input_tokens += u64::from(input);
            summary.output_tokens += u64::from(output);
            summary.cost_usd += cost;
            summary.events += 1;
            if rng.chance(0.01) {
                call.set_status(mission_core::Status::Error);
                summary.errors += 1;
                failed = true;
            }
            call.end_at(Timestamp(clock));

            if rng.chance(0.7) {
                let (tool, median, failure) = TOOLS[rng.below(TOOLS.len() as u64) as usize];
                let mut decision = Event::new(
                    check,
                    EventBody::Permission(PermissionDecision {
                        actor: Text::from(AGENTS[agent_index].to_owned()),
                        action: check,
                        resource: Text::new(tool),
                        decision: if tool == "refund_payment" && rng.chance(0.2) {
                            Decision::Deny
                        } else {
                            Decision::Allow
                        },
                        policy,
                    }),
                );
                decision.time = Timestamp(clock);
                decision.tenant = thread.tenant;
                decision.agent = thread.agent;
                decision.thread_id = thread.thread_id;
                decision.span_id = root_id;
                let denied = matches!(&decision.body, EventBody::Permission(p) if p.decision == Decision::Deny);
                recorder.record(decision);
                summary.permissions += 1;
                summary.events += 1;
                if denied {
                    summary.denials += 1;
                    continue;
                }
                let span = recorder.start_span_at(
                    &thread,
                    SpanKind::ToolCall,
                    Symbol::intern(tool),
                    Some(root_id),
                    Timestamp(clock),
                );
                clock += (rng.lognormal(median, 0.7) * MS) as u64;
                summary.tool_calls += 1;
                summary.events += 1;
                let down = match (&workload.incident, incident_from, outage_until) {
                    (Some(inc), Some(from), Some(until)) => {
                        inc.failing_tool == Some(tool) && (from..until).contains(&i)
                    }
                    _ => false,
                };
                if rng.chance(failure) || down {
                    summary.errors += 1;
                    failed = true;
                    let mut log = thread.event(
                        target,
                        root_id,
                        EventBody::Log(LogRecord {
                            level: Level::Warn,
                            target,
                            message: Text::from(format!(
                                "{tool} failed; retrying with a different plan"
                            )),
                        }),
                    );
                    log.time = Timestamp(clock);
                    recorder.record(log);
                    summary.logs += 1;
                    summary.events += 1;
                    span.end_at_with_error(Timestamp(clock), "upstream returned 503");
                } else {
                    span.end_at(Timestamp(clock));
                }
            }
        }
        if failed {
            root.set_status(mission_core::Status::Error);
            summary.errors += 1;
        }
        root.end_at(Timestamp(clock));
        summary.agent_steps += 1;
        summary.events += 1;
    }
    summary
}

/// Two threads of the agent `support-bot` recorded by [`record_diff_pair`]: the good run and
/// the bad run, and where they were made to diverge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffPair {
    /// The good run's thread id.
    pub good: String,
    /// The bad run's thread id.
    pub bad: String,
    /// The step (span in start order, from 0) where the bad run first differs.
    pub step: usize,
    /// The field that differs there first (`args_hash`: the tool was called with other
    /// arguments).
    pub field: &'static str,
    /// Spans of each thread.
    pub spans: usize,
}

/// Records two runs of the same request by `support-bot` in `tenant`, the second ending at
/// `end_ns` and the first a minute before: the same seven steps (a root step, three LLM calls
/// and three tool calls, each with a log, and a permission decision before each tool call),
/// except that the bad run calls `web_search` (step 4) with other arguments, then its
/// `send_email` fails. The thread diff's tests look for that planted divergence.
pub fn record_diff_pair(recorder: &Recorder, tenant: &str, end_ns: u64) -> DiffPair {
    const MS: u64 = 1_000_000;
    // (kind, name, duration ms, good arguments, bad arguments)
    let plan: [(SpanKind, &str, u64, &str, &str); 6] = [
        (SpanKind::LlmCall, "chat", 310, "", ""),
        (SpanKind::ToolCall, "lookup_order", 40, r#"{"order":"A-1001"}"#, r#"{"order":"A-1001"}"#),
        (SpanKind::LlmCall, "chat", 420, "", ""),
        (
            SpanKind::ToolCall,
            "web_search",
            180,
            r#"{"q":"refund policy"}"#,
            r#"{"q":"refund policy A-1001 lawsuit"}"#,
        ),
        (SpanKind::LlmCall, "chat", 380, "", ""),
        (SpanKind::ToolCall, "send_email", 120, r#"{"to":"customer"}"#, r#"{"to":"customer"}"#),
    ];
    let total: u64 = plan.iter().map(|p| p.2 + 2).sum::<u64>() + 4;
    let mut ids = Vec::new();
    for (run, end) in [(0, end_ns.saturating_sub(60_000 * MS)), (1, end_ns)] {
        let bad = run == 1;
        let ctx = ThreadContext::new(Symbol::intern(tenant), Symbol::intern("support-bot"));
        let start = end.saturating_sub(total * MS);
        let root = recorder.start_span_at(
            &ctx,
            SpanKind::AgentStep,
            Symbol::intern("handle_request"),
            None,
            Timestamp(start),
        );
        let root_id = root.span_id();
        let mut clock = start + 2 * MS;
        for (i, (kind, name, ms, good_args, bad_args)) in plan.iter().enumerate() {
            let log = |message: &str, at: u64| {
                let mut event = ctx.event(
                    Symbol::intern("agent"),
                    root_id,
                    EventBody::Log(LogRecord {
                        level: Level::Info,
                        target: Symbol::intern("agent"),
                        message: Text::new(message),
                    }),
                );
                event.time = Timestamp(at);
                recorder.record(event);
            };
            if *kind == SpanKind::ToolCall {
                let mut decision = ctx.event(
                    Symbol::intern("tool.call"),
                    root_id,
                    EventBody::Permission(PermissionDecision {
                        actor: Text::new("support-bot"),
                        action: Symbol::intern("tool.call"),
                        resource: Text::new(name),
                        decision: Decision::Allow,
                        policy: Symbol::intern("default-tool-policy"),
                    }),
                );
                decision.time = Timestamp(clock);
                recorder.record(decision);
            }
            let mut span = recorder.start_span_at(
                &ctx,
                *kind,
                Symbol::intern(name),
                Some(root_id),
                Timestamp(clock + MS),
            );
            if *kind == SpanKind::LlmCall {
                let (input, output) = (600 + 100 * i as u32, 80);
                span.set_llm_usage(LlmUsage {
                    model: Symbol::intern("gpt-4o-mini"),
                    provider: Symbol::intern("openai"),
                    input_tokens: input,
                    output_tokens: output,
                    cost_usd: f64::from(input) * 0.15 / 1e6 + f64::from(output) * 0.60 / 1e6,
                    ..LlmUsage::default()
                });
            } else {
                // What the SDK's `set_arguments` records: the arguments' fingerprint (the
                // store redacts the arguments themselves).
                let args = if bad { bad_args } else { good_args };
                let hash = mission_core::fingerprint::fingerprint(args.as_bytes());
                span.set_attribute(
                    Symbol::intern(mission_core::fingerprint::attr::TOOL_ARGS_HASH),
                    mission_core::fingerprint::hex(hash).as_str(),
                );
            }
            let span_end = clock + MS + ms * MS;
            if bad && *name == "send_email" {
                log("send_email failed", span_end);
                span.end_at_with_error(Timestamp(span_end), "smtp 550: mailbox unavailable");
            } else {
                log(&format!("{name} done"), span_end);
                span.end_at(Timestamp(span_end));
            }
            clock = span_end + MS;
        }
        // The root step ends alike in both runs: the first difference is the planted one.
        root.end_at(Timestamp(end));
        ids.push(ctx.thread_id.to_string());
    }
    let bad = ids.pop().unwrap_or_default();
    let good = ids.pop().unwrap_or_default();
    DiffPair { good, bad, step: 4, field: "args_hash", spans: plan.len() + 1 }
}
