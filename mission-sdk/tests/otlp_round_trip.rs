//! Round trip, as a property: what an agent built with `MissionControl` records and exports
//! with its own OTLP exporter (`with_otlp`), received by another instance's receiver
//! (`serve_otlp`), is what the sending side recorded, field by field — the events as recorded
//! (live, typed) and the rows of the receiving store against the rows of the sender's own
//! store — for generated events:
//! spans of every kind (LLM calls with model, provider, tokens of each kind and cost; tool
//! calls; steps, retrievals, custom spans), statuses and error messages, attributes of each
//! value type, parents, several tenants, agents and threads, log records with their trace
//! context, and scores.
//!
//! What our exporter does not carry, so is not generated here: metric events and permission
//! decisions (the exporter sends spans, logs, anomalies and scores; its metrics are the GenAI
//! client metrics aggregated from LLM spans, off here so they do not arrive as extra events),
//! and span links (our events have none).

use std::time::Duration;

use mission_core::{
    AttrValue, Event, EventBody, Level, LlmUsage, LogRecord, Score, ScoreSource, SpanEnd, SpanId,
    SpanKind, Status, Symbol, Text, ThreadId, Timestamp,
};
use mission_sdk::{EventFilter, MissionControl, OtlpConfig, OtlpReceiverConfig, Subscription};
use mission_store::EventRow;
use proptest::prelude::*;

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const AGENTS: [&str; 3] = ["support-bot", "research-agent", "billing-assistant"];
/// Models no price table knows, so the cost the sender recorded is the one that arrives (a
/// known model is priced again by the receiving instance's table, by design).
const MODELS: [&str; 2] = ["model-x1", "model-y2"];
const T0: u64 = 1_780_000_000_000_000_000;

/// One generated event: the context indexes and the body.
#[derive(Clone, Debug)]
struct Planned {
    tenant: usize,
    agent: usize,
    thread: usize,
    /// For a span: the parent, an earlier span of the same thread (by its index among them).
    parent: Option<usize>,
    offset_ns: u64,
    body: Body,
    attributes: Vec<(String, Attr)>,
}

#[derive(Clone, Debug)]
enum Attr {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Debug)]
enum Body {
    Span {
        kind: SpanKind,
        name: String,
        duration_ns: u64,
        status: Status,
        error: String,
        llm: Option<LlmUsage>,
        /// What the agent API's setters record (response model, finish reason, …).
        attributes: Vec<(String, Attr)>,
    },
    Log {
        level: Level,
        target: String,
        message: String,
        in_span: bool,
    },
    Score {
        value: f64,
        label: String,
        comment: String,
        source: ScoreSource,
    },
}

fn attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        "[a-zA-Z0-9 é中/-]{0,24}".prop_map(Attr::Str),
        any::<i64>().prop_map(Attr::Int),
        (-1.0e12_f64..1.0e12).prop_map(Attr::Float),
        any::<bool>().prop_map(Attr::Bool),
    ]
}

fn llm() -> impl Strategy<Value = LlmUsage> {
    (
        0..MODELS.len(),
        0..2_usize,
        0..100_000_u32,
        0..10_000_u32,
        0..100_000_u32,
        0..10_000_u32,
        0.0..5.0_f64,
    )
        .prop_map(|(m, p, input, output, cached, reasoning, cost)| LlmUsage {
            model: Symbol::intern(MODELS[m]),
            provider: Symbol::intern(["openai", "anthropic"][p]),
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached.min(input),
            reasoning_tokens: reasoning.min(output),
            cost_usd: cost,
        })
}

fn body() -> impl Strategy<Value = Body> {
    let status = prop_oneof![Just(Status::Unset), Just(Status::Ok), Just(Status::Error)];
    let span = (
        prop_oneof![
            Just(SpanKind::AgentStep),
            Just(SpanKind::LlmCall),
            Just(SpanKind::ToolCall),
            Just(SpanKind::Retrieval),
            Just(SpanKind::Custom),
        ],
        "[a-z_]{1,12}",
        0..10_000_000_000_u64,
        status,
        "[a-zA-Z0-9 :é]{0,30}",
        llm(),
    )
        .prop_map(|(kind, name, duration_ns, status, error, llm)| {
            let error = if status == Status::Error { error } else { String::new() };
            let name = if kind == SpanKind::LlmCall { "chat".to_owned() } else { name };
            let llm = (kind == SpanKind::LlmCall).then_some(llm);
            Body::Span { kind, name, duration_ns, status, error, llm, attributes: Vec::new() }
        });
    // The attributes the agent API's own setters record on LLM and tool calls.
    let typed = (
        "[a-z0-9-]{1,12}",
        prop_oneof![Just("stop"), Just("length"), Just("tool_calls")],
        0.0..30.0_f64,
        0..1_000_000_i64,
        "call_[a-zA-Z0-9]{1,12}",
    );
    let span = (span, typed).prop_map(|(mut body, (model, reason, ttft, size, call))| {
        if let Body::Span { kind, attributes, .. } = &mut body {
            match kind {
                SpanKind::LlmCall => {
                    attributes.push(("gen_ai.response.model".into(), Attr::Str(model)));
                    attributes
                        .push(("gen_ai.response.finish_reasons".into(), Attr::Str(reason.into())));
                    attributes
                        .push(("gen_ai.server.time_to_first_token".into(), Attr::Float(ttft)));
                }
                SpanKind::ToolCall => {
                    attributes.push(("gen_ai.tool.call.arguments.size".into(), Attr::Int(size)));
                    attributes.push(("gen_ai.tool.call.result.size".into(), Attr::Int(size / 2)));
                    attributes.push(("gen_ai.tool.call.id".into(), Attr::Str(call)));
                }
                _ => {}
            }
        }
        body
    });
    let level = prop_oneof![
        Just(Level::Trace),
        Just(Level::Debug),
        Just(Level::Info),
        Just(Level::Warn),
        Just(Level::Error),
    ];
    let log = (level, "[a-z:_]{1,16}", "[a-zA-Z0-9 é中]{0,40}", any::<bool>()).prop_map(
        |(level, target, message, in_span)| Body::Log { level, target, message, in_span },
    );
    let source =
        prop_oneof![Just(ScoreSource::Human), Just(ScoreSource::Llm), Just(ScoreSource::Rule)];
    let score = (-100.0..100.0_f64, "[a-z]{0,8}", "[a-zA-Z ]{0,20}", source)
        .prop_map(|(value, label, comment, source)| Body::Score { value, label, comment, source });
    prop_oneof![6 => span, 3 => log, 1 => score]
}

fn planned() -> impl Strategy<Value = Planned> {
    (
        0..TENANTS.len(),
        0..AGENTS.len(),
        0..3_usize,
        proptest::option::of(0..8_usize),
        0..60_000_000_000_u64,
        body(),
        proptest::collection::vec(("app\\.[a-z]{1,6}", attr()), 0..5),
    )
        .prop_map(|(tenant, agent, thread, parent, offset_ns, body, attributes)| Planned {
            tenant,
            agent,
            thread,
            parent,
            offset_ns,
            body,
            attributes,
        })
}

/// The events of a plan, as an agent records them: ids drawn as the recorder draws them,
/// parents among the thread's earlier spans.
fn events(plan: &[Planned], threads: &[ThreadId; 3]) -> Vec<Event> {
    let mut spans: [Vec<SpanId>; 3] = Default::default();
    let mut out = Vec::new();
    for p in plan {
        let (name, body, span_id, parent) = match &p.body {
            Body::Span { kind, name, duration_ns, status, error, llm, .. } => {
                let mut end = SpanEnd {
                    kind: *kind,
                    duration_ns: *duration_ns,
                    llm: llm.unwrap_or_default(),
                    ..SpanEnd::default()
                };
                match status {
                    Status::Error => end.set_error(error),
                    s => end.status = *s,
                }
                let id = SpanId::generate();
                let parent =
                    p.parent.and_then(|i| spans[p.thread].get(i).copied()).unwrap_or(SpanId::NONE);
                spans[p.thread].push(id);
                (name.as_str(), EventBody::Span(end), id, parent)
            }
            Body::Log { level, target, message, in_span } => {
                let span = if *in_span {
                    spans[p.thread].last().copied().unwrap_or(SpanId::NONE)
                } else {
                    SpanId::NONE
                };
                let record = LogRecord {
                    level: *level,
                    target: Symbol::intern(target),
                    message: Text::new(message),
                };
                ("log", EventBody::Log(record), span, SpanId::NONE)
            }
            Body::Score { value, label, comment, source } => {
                let score = Score::new(*value)
                    .expect("finite")
                    .with_label(label)
                    .with_comment(comment)
                    .with_source(*source);
                let span = spans[p.thread].last().copied().unwrap_or(SpanId::NONE);
                ("helpfulness", EventBody::Score(score), span, SpanId::NONE)
            }
        };
        let mut event = Event::new(Symbol::intern(name), body);
        event.time = Timestamp(T0 + p.offset_ns);
        event.tenant = Symbol::intern(TENANTS[p.tenant]);
        event.agent = Symbol::intern(AGENTS[p.agent]);
        event.thread_id = threads[p.thread];
        event.span_id = span_id;
        event.parent_span_id = parent;
        let typed = match &p.body {
            Body::Span { attributes, .. } => &attributes[..],
            _ => &[],
        };
        for (key, value) in p.attributes.iter().chain(typed) {
            let value = match value {
                Attr::Str(s) => AttrValue::from(s.as_str()),
                Attr::Int(n) => AttrValue::Int(*n),
                Attr::Float(f) => AttrValue::Float(*f),
                Attr::Bool(b) => AttrValue::Bool(*b),
            };
            event.attributes.set(Symbol::intern(key), value);
        }
        out.push(event);
    }
    out
}

/// An event as text, field by field, with its attributes sorted: what must arrive unchanged.
fn fields(e: &Event) -> Vec<(&'static str, String)> {
    let mut attributes: Vec<String> =
        e.attributes.iter().map(|a| format!("{}={:?}", a.key.as_str(), a.value)).collect();
    attributes.sort();
    vec![
        ("time", e.time.0.to_string()),
        ("tenant", e.tenant.as_str().to_owned()),
        ("agent", e.agent.as_str().to_owned()),
        ("thread_id", e.thread_id.to_string()),
        ("span_id", e.span_id.to_string()),
        ("parent_span_id", e.parent_span_id.to_string()),
        ("name", e.name.as_str().to_owned()),
        ("body", format!("{:?}", e.body)),
        ("attributes", attributes.join(", ")),
    ]
}

fn drain(sub: &Subscription, threads: &[ThreadId; 3]) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(e) = sub.try_recv() {
        if threads.contains(&e.thread_id) {
            events.push(e);
        }
    }
    events.sort_by_key(|e| (e.thread_id, e.span_id, e.time, format!("{:?}", e.body)));
    events
}

/// The rows of `threads` in `control`'s store, each with its attributes sorted, in one order.
fn stored(control: &MissionControl, threads: &[ThreadId; 3]) -> Vec<EventRow> {
    control.flush().expect("flush");
    let store = control.store().expect("a store").expect("open");
    let mut rows = Vec::new();
    for thread in threads {
        let batches = store.query().thread(&thread.to_string()).batches().expect("query");
        rows.extend(batches.iter().flat_map(|b| EventRow::from_batch(b).expect("rows")));
    }
    for row in &mut rows {
        row.attributes.sort();
    }
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

/// A sending and a receiving instance, each with a store, for every case.
struct Pair {
    sending: MissionControl,
    sent: Subscription,
    receiving: MissionControl,
    received: Subscription,
    _receiver: mission_sdk::OtlpReceiver,
    _dirs: [TempDir; 2],
}

fn pair() -> Pair {
    let dirs = [TempDir::new("round-trip-sent"), TempDir::new("round-trip-received")];
    let receiving = MissionControl::builder()
        .with_store_root(&dirs[1].0)
        .ignore_environment()
        .without_models()
        .with_tenant("the-receivers-own")
        .build()
        .expect("receiving control");
    let received = receiving.subscribe(EventFilter::all(), 100_000);
    let receiver = receiving.serve_otlp(OtlpReceiverConfig::loopback(0)).expect("serve");
    let sending = MissionControl::builder()
        .with_store_root(&dirs[0].0)
        .ignore_environment()
        .without_models()
        .with_tenant(TENANTS[0])
        .with_service_name("the-senders-service")
        .with_otlp(
            OtlpConfig::http(&receiver.endpoint())
                .with_metrics(false)
                .with_batch_delay(Duration::from_millis(10)),
        )
        .build()
        .expect("sending control");
    let sent = sending.subscribe(EventFilter::all(), 100_000);
    Pair { sending, sent, receiving, received, _receiver: receiver, _dirs: dirs }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn what_our_exporter_sends_our_receiver_records_unchanged(
        plan in proptest::collection::vec(planned(), 1..40)
    ) {
        thread_local! {
            static PAIR: Pair = pair();
        }
        PAIR.with(|p| {
            let threads = [ThreadId::generate(), ThreadId::generate(), ThreadId::generate()];
            for event in events(&plan, &threads) {
                assert!(p.sending.recorder().record(event), "recorded");
            }
            p.sending.flush().expect("export");
            p.receiving.flush().expect("flush");
            let sent = drain(&p.sent, &threads);
            let received = drain(&p.received, &threads);
            assert_eq!(sent.len(), plan.len(), "the sender recorded every event");
            assert_eq!(received.len(), sent.len(), "{received:#?}");
            for (a, b) in sent.iter().zip(&received) {
                for ((field, x), (_, y)) in fields(a).into_iter().zip(fields(b)) {
                    assert_eq!(x, y, "{field} changed:\nsent {a:#?}\nreceived {b:#?}");
                }
            }
            let (kept, written) = (stored(&p.sending, &threads), stored(&p.receiving, &threads));
            assert_eq!(kept.len(), plan.len(), "the sender's store holds every event");
            for (a, b) in kept.iter().zip(&written) {
                assert_eq!(a, b, "a row changed on the way to the receiving store");
            }
            assert_eq!(kept.len(), written.len());
        });
    }
}
