//! Planted data for the recommendations and the audit browser (issue 23): a store where each
//! kind of recommendation must appear with known numbers, and an audit trail with a denial,
//! an erasure and a policy change among ordinary records. `store_fixture --advice` writes
//! both; the dashboard's browser tests and `mission-ctl report`'s tests read them.

use std::path::Path;

use mission_core::thread::{TARGET, attr, event};
use mission_core::{
    AnomalyEvent, Event, EventBody, Level, LlmUsage, LogRecord, Recorder, Score, SpanKind, Symbol,
    Text, ThreadContext, Timestamp,
};

/// The agent every planted event belongs to.
pub const AGENT: &str = "advice-bot";
/// The operation served by two models.
pub const OPERATION: &str = "summarize";
/// The expensive model ($0.05 a call) and the cheaper one ($0.01 a call), both scored 0.9.
pub const DEAR_MODEL: &str = "advice-large";
/// See [`DEAR_MODEL`].
pub const CHEAP_MODEL: &str = "advice-small";
/// Calls of each model: the saving is `CALLS × ($0.05 − $0.01)` = $0.80.
pub const CALLS: u64 = 20;
/// A tool whose calls take 2 s.
pub const SLOW_TOOL: &str = "advice_slow_search";
/// A tool failing one call in two with [`FAILING_ERROR`].
pub const FAILING_TOOL: &str = "advice_flaky_api";
/// The failing tool's error message.
pub const FAILING_ERROR: &str = "upstream 503 (planted)";
/// The cause attributed to the planted changepoint of [`OPERATION`]'s latency.
pub const CHANGEPOINT_CAUSE: &str = "model=advice-large";
/// The audit record's actor that was denied.
pub const DENIED_ACTOR: &str = "agent:advice-bot";

/// Records the planted events in `tenant` over the last half hour, and a changepoint of
/// [`OPERATION`]'s latency caused by [`CHANGEPOINT_CAUSE`]; returns how many.
///
/// Every call of the dear model reads 5 % of its 1,000 input tokens from the prompt cache
/// (a `prompt_cache` recommendation), the cheap model 80 %.
pub fn plant_advice(recorder: &Recorder, tenant: &str) -> u64 {
    let mut events = 0;
    let start = Timestamp::now().0.saturating_sub(30 * 60_000_000_000);
    let mut clock = start;
    let thread = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(AGENT));
    let op = Symbol::intern(OPERATION);
    for i in 0..CALLS {
        for (model, cost, cached) in [(DEAR_MODEL, 0.05, 50), (CHEAP_MODEL, 0.01, 800)] {
            let mut call =
                recorder.start_span_at(&thread, SpanKind::LlmCall, op, None, Timestamp(clock));
            call.set_llm_usage(LlmUsage {
                model: Symbol::intern(model),
                provider: Symbol::intern("planted"),
                input_tokens: 1_000,
                output_tokens: 100,
                cached_input_tokens: cached,
                cost_usd: cost,
                ..LlmUsage::default()
            });
            let span = call.span_id();
            clock += 500_000_000;
            call.end_at(Timestamp(clock));
            let score = Score::new(0.9).expect("finite");
            let mut e = Event::new(Symbol::intern("quality"), EventBody::Score(score));
            e.time = Timestamp(clock);
            e.tenant = thread.tenant;
            e.agent = thread.agent;
            e.thread_id = thread.thread_id;
            e.span_id = span;
            recorder.record(e);
            events += 2;
        }
        let mut tool = |name: &str, took: u64, error: Option<&str>| {
            let span = recorder.start_span_at(
                &thread,
                SpanKind::ToolCall,
                Symbol::intern(name),
                None,
                Timestamp(clock),
            );
            clock += took;
            match error {
                Some(e) => span.end_at_with_error(Timestamp(clock), e),
                None => span.end_at(Timestamp(clock)),
            }
        };
        tool(SLOW_TOOL, 2_000_000_000, None);
        tool(FAILING_TOOL, 10_000_000, (i % 2 == 0).then_some(FAILING_ERROR));
        events += 2;
    }
    // A changepoint of the operation's latency halfway through, with its attributed cause.
    let mut shift = Event::new(
        Symbol::intern("duration"),
        EventBody::Anomaly(AnomalyEvent {
            detector: Symbol::intern("cusum"),
            score: 0.99,
            value: 900.0,
            expected: 500.0,
            lower: 400.0,
            upper: 600.0,
        }),
    );
    shift.time = Timestamp(start + (clock - start) / 2);
    shift.tenant = thread.tenant;
    shift.agent = thread.agent;
    shift.span_id = mission_core::SpanId::generate();
    shift.attributes.set(Symbol::intern(mission_core::anomaly::attr::OPERATION), OPERATION);
    shift.attributes.set(Symbol::intern(mission_core::anomaly::attr::DIRECTION), "up");
    shift.attributes.set(Symbol::intern(mission_core::anomaly::attr::CAUSE), CHANGEPOINT_CAUSE);
    recorder.record(shift);
    events += 1;
    // Budget burn: three threads warned, two of them stopped.
    for (n, exceeded) in [(0, true), (1, true), (2, false)] {
        let t = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(AGENT));
        let mut names = vec![(event::BUDGET_WARNING, "0.8")];
        if exceeded {
            names.push((event::BUDGET_EXCEEDED, "1.05"));
        }
        for (name, share) in names {
            let mut e = Event::new(
                Symbol::intern(name),
                EventBody::Log(LogRecord {
                    level: Level::Warn,
                    target: Symbol::intern(TARGET),
                    message: Text::from(format!("planted budget event {n}")),
                }),
            );
            e.time = Timestamp(clock + n * 1_000_000);
            e.tenant = t.tenant;
            e.agent = t.agent;
            e.thread_id = t.thread_id;
            e.attributes.set(Symbol::intern(attr::BUDGET_RESOURCE), "cost_usd");
            e.attributes.set(Symbol::intern(attr::BUDGET_LIMIT), "0.5");
            e.attributes.set(Symbol::intern(attr::BUDGET_SHARE), share);
            recorder.record(e);
            events += 1;
        }
    }
    events
}

/// Writes a store at `root` holding the events of [`plant_advice`] in `tenant` only; returns
/// how many were written.
///
/// # Errors
/// The store cannot be written.
pub fn write_planted_store(root: &Path, tenant: &str) -> Result<u64, Box<dyn std::error::Error>> {
    use mission_core::{Backpressure, Pipeline};
    use mission_store::{ParquetSink, StoreConfig};
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: std::time::Duration::from_secs(30) })
        .with_sink(ParquetSink::new(StoreConfig::at(root))?)
        .start()?;
    let planted = plant_advice(&pipeline.recorder(), tenant);
    let delivered = pipeline.shutdown().accounting.delivered;
    if delivered != planted {
        return Err(format!("{planted} events planted, {delivered} delivered").into());
    }
    Ok(planted)
}

/// Appends planted records to the audit trail of the store at `root`, in `tenant`: two
/// ordinary directive runs, a permission denial of [`DENIED_ACTOR`], an erasure and a policy
/// change. Returns the denial's `seq`.
///
/// # Errors
/// The audit log cannot be opened or appended to.
pub fn plant_audit(root: &Path, tenant: &str) -> Result<u64, mission_sdk::audit::AuditError> {
    use mission_sdk::audit::{AuditLog, kind};
    use serde_json::json;
    let log = AuditLog::open(root)?;
    log.append(kind::DIRECTIVE_RUN, "directive:digest", tenant, json!({"outcome": "ok"}))?;
    log.append(
        kind::PERMISSION_DENIED,
        DENIED_ACTOR,
        tenant,
        json!({"action": "tool_call", "resource": "refund_payment", "rule": "no-refunds"}),
    )?;
    let denied = log.head().seq;
    log.append(kind::DIRECTIVE_RUN, "directive:digest", tenant, json!({"outcome": "ok"}))?;
    log.append(kind::ERASURE, "admin:jo", tenant, json!({"key": "user.id", "events": 3}))?;
    log.append(kind::POLICY_CHANGE, "admin:jo", tenant, json!({"rules": ["no-refunds"]}))?;
    Ok(denied)
}
