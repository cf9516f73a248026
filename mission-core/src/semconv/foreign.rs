//! Spans timed elsewhere — by an OpenTelemetry SDK in Python (the bridge), by any process
//! sending OTLP (the receiver) — made into our span events through the one table. Both go
//! through [`span_event`], so a span reads the same whichever way it arrived.

use super::{GenAiFields, Value};
use crate::{
    AttrValue, Event, EventBody, LazySymbol, LlmUsage, SpanEnd, SpanId, SpanKind, Status, Symbol,
    ThreadId, Timestamp,
};

/// The most attributes kept per foreign span besides the typed fields; past it the rest are
/// counted in the attribute `mission.bridge.attributes_dropped`.
pub const MAX_FOREIGN_ATTRIBUTES: usize = 32;

/// The attribute counting what [`MAX_FOREIGN_ATTRIBUTES`] left out.
pub const ATTRIBUTES_DROPPED: &str = "mission.bridge.attributes_dropped";

/// A span timed elsewhere, apart from its attributes.
#[derive(Clone, Copy, Debug)]
pub struct ForeignSpan<'a> {
    /// The tenant it is recorded under.
    pub tenant: Symbol,
    /// Its agent unless its attributes name one (`gen_ai.agent.name`, …): the nearest
    /// ancestor's agent, else the sender's `service.name`.
    pub agent: Symbol,
    /// The thread: the OpenTelemetry trace id.
    pub thread_id: ThreadId,
    /// Its own id.
    pub span_id: SpanId,
    /// Its parent ([`SpanId::NONE`] for a root).
    pub parent_span_id: SpanId,
    /// The span's name as the sender gave it.
    pub name: &'a str,
    /// Start and end, in nanoseconds since the Unix epoch (an end before the start is a span
    /// of no duration).
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// How it ended; with [`Status::Error`], `error` is the message.
    pub status: Status,
    /// Why it failed (may be empty).
    pub error: &'a str,
}

/// An attribute value as a sender gave it: the scalar the table reads, or any other value
/// already rendered as text (a list joined with commas, bytes in base64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ForeignValue<'a> {
    /// A scalar, read by the table and kept with its type when the table does not know it.
    Scalar(Value<'a>),
    /// Something the table does not read (a list, a map, bytes), kept as this text.
    Text(&'a str),
}

impl ForeignValue<'_> {
    fn kept(self) -> AttrValue {
        match self {
            ForeignValue::Scalar(Value::Str(s)) | ForeignValue::Text(s) => AttrValue::from(s),
            ForeignValue::Scalar(Value::Int(n)) => AttrValue::Int(n),
            ForeignValue::Scalar(Value::Float(f)) => AttrValue::Float(f),
            ForeignValue::Scalar(Value::Bool(b)) => AttrValue::Bool(b),
        }
    }
}

/// The span event of a foreign span: its kind, model, provider, tokens by kind, agent and
/// tool read from `attributes` through the table ([`GenAiFields`]); an LLM call priced by
/// `price` (given the usage and the cache-written input tokens; `None` when it has no price
/// for the model, and then a cost the sender stated in `gen_ai.usage.cost` is kept); the other
/// attributes kept, at most [`MAX_FOREIGN_ATTRIBUTES`] (the rest counted in
/// [`ATTRIBUTES_DROPPED`]). The span's name is the operation for an LLM call (`chat`), the
/// tool for a tool call (so the tool's name is not kept again as an attribute), `invoke_agent` for `invoke_agent {agent}`, else the name given.
/// Two attributes saying only what the event already holds are not kept: a
/// `gen_ai.conversation.id` equal to the trace id, and `error.type = "error"` on a failed span.
///
/// ```
/// use mission_core::semconv::{ForeignSpan, ForeignValue, Value, span_event};
/// use mission_core::{SpanId, SpanKind, Status, Symbol};
///
/// let span = ForeignSpan {
///     tenant: Symbol::intern("acme"),
///     agent: Symbol::intern("checkout-service"),
///     thread_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse()?,
///     span_id: "00f067aa0ba902b7".parse()?,
///     parent_span_id: SpanId::NONE,
///     name: "chat gpt-4o-mini",
///     start_ns: 1_000,
///     end_ns: 51_000,
///     status: Status::Unset,
///     error: "",
/// };
/// let attributes = [
///     ("gen_ai.operation.name", ForeignValue::Scalar(Value::Str("chat"))),
///     ("gen_ai.request.model", ForeignValue::Scalar(Value::Str("gpt-4o-mini"))),
///     ("gen_ai.usage.input_tokens", ForeignValue::Scalar(Value::Int(812))),
///     ("app.region", ForeignValue::Scalar(Value::Str("eu"))),
/// ];
/// let event = span_event(&span, attributes, |usage, _| Some(f64::from(usage.input_tokens) * 1e-6));
/// let end = event.as_span().expect("a span");
/// assert_eq!((end.kind, event.name.as_str(), end.duration_ns), (SpanKind::LlmCall, "chat", 50_000));
/// assert_eq!((end.llm.model.as_str(), end.llm.input_tokens), ("gpt-4o-mini", 812));
/// assert!((end.llm.cost_usd - 812e-6).abs() < 1e-12);
/// assert_eq!(event.agent.as_str(), "checkout-service");
/// assert_eq!(event.attributes.len(), 1); // app.region
/// # Ok::<(), mission_core::ParseIdError>(())
/// ```
pub fn span_event<'v>(
    span: &ForeignSpan<'_>,
    attributes: impl IntoIterator<Item = (&'v str, ForeignValue<'v>)>,
    price: impl Fn(&LlmUsage, u32) -> Option<f64>,
) -> Event {
    let mut fields = GenAiFields::default();
    let mut kept: Vec<(&'v str, AttrValue)> = Vec::new();
    let mut dropped = 0_i64;
    let mut operation: Option<&'v str> = None;
    let failed = span.status == Status::Error;
    for (key, value) in attributes {
        if let ForeignValue::Scalar(scalar) = value {
            if let Value::Str(s) = scalar {
                if key == "gen_ai.operation.name" || key == "llm.request.type" {
                    operation.get_or_insert(s);
                }
                let redundant = (key == "gen_ai.conversation.id"
                    && s.parse::<ThreadId>().is_ok_and(|id| id == span.thread_id))
                    || (key == "error.type" && failed && s == "error");
                if redundant {
                    continue;
                }
            }
            if fields.read(key, scalar) {
                continue;
            }
        }
        if kept.len() < MAX_FOREIGN_ATTRIBUTES {
            kept.push((key, value.kept()));
        } else {
            dropped += 1;
        }
    }
    let kind = fields.kind().unwrap_or(SpanKind::Custom);
    let mut end = SpanEnd {
        kind,
        duration_ns: span.end_ns.saturating_sub(span.start_ns),
        ..SpanEnd::default()
    };
    match span.status {
        Status::Error => end.set_error(span.error),
        status => end.status = status,
    }
    static CHAT: LazySymbol = LazySymbol::new("chat");
    static INVOKE_AGENT: LazySymbol = LazySymbol::new("invoke_agent");
    let agent = fields.agent().map_or(span.agent, Symbol::intern);
    let name = match kind {
        SpanKind::LlmCall => {
            end.llm = fields.usage();
            if !end.llm.model.is_empty()
                && let Some(cost) =
                    price(&end.llm, fields.cache_creation_input_tokens().unwrap_or(0))
            {
                end.llm.cost_usd = cost;
            } else if let Some(cost) = fields.cost() {
                end.llm.cost_usd = cost;
            }
            operation
                .filter(|op| super::kind_of_operation(op) == Some(SpanKind::LlmCall))
                .map_or(CHAT.get(), Symbol::intern)
        }
        SpanKind::ToolCall => {
            fields.tool().map_or_else(|| Symbol::intern(span.name), Symbol::intern)
        }
        SpanKind::AgentStep
            if span
                .name
                .strip_prefix("invoke_agent ")
                .is_some_and(|rest| rest == agent.as_str()) =>
        {
            INVOKE_AGENT.get()
        }
        _ => Symbol::intern(span.name),
    };
    let mut event = Event::new(name, EventBody::Span(end));
    event.time = Timestamp(span.start_ns);
    event.tenant = span.tenant;
    event.agent = agent;
    event.thread_id = span.thread_id;
    event.span_id = span.span_id;
    event.parent_span_id = span.parent_span_id;
    if kind == SpanKind::LlmCall {
        if let Some(model) = fields
            .response_model()
            .filter(|m| *m != event.as_span().map_or("", |s| s.llm.model.as_str()))
        {
            event.attributes.set(Symbol::intern("gen_ai.response.model"), AttrValue::from(model));
        }
        if let Some(n) = fields.cache_creation_input_tokens() {
            event.attributes.set(
                Symbol::intern("gen_ai.usage.cache_creation.input_tokens"),
                AttrValue::Int(i64::from(n)),
            );
        }
    }
    for (key, value) in kept {
        event.attributes.set(Symbol::intern(key), value);
    }
    if dropped > 0 {
        event.attributes.set(Symbol::intern(ATTRIBUTES_DROPPED), dropped);
    }
    event
}
