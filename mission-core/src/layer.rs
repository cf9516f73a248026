//! [`MissionLayer`]: records what code instrumented with `tracing` already emits.
//!
//! Spans become span events (their fields become attributes, and the GenAI fields of every
//! convention in [`crate::semconv`]'s table map onto the typed ones: `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, `llm.token_count.prompt`, `gen_ai.tool.name`, …); `tracing` events become log records whose parent is the span they
//! happened in. A root span starts a new thread; its descendants inherit the thread id.

use std::fmt;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes as SpanAttributes, Id, Record};
use tracing_core::{Event as TracingEvent, Level as TracingLevel, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::semconv::{self, Meaning};
use crate::{
    AttrValue, Event, EventBody, Level, LogRecord, Recorder, SpanEnd, SpanId, SpanKind, Status,
    Symbol, Text, ThreadId, Timestamp,
};

/// A `tracing_subscriber` [`Layer`] that records spans and events into a [`Recorder`].
///
/// ```
/// use mission_core::{MissionLayer, Pipeline};
/// use tracing_subscriber::layer::SubscriberExt;
/// let pipeline = Pipeline::builder().start()?;
/// let subscriber = tracing_subscriber::registry()
///     .with(MissionLayer::new(pipeline.recorder()).with_agent("support-bot"));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("llm_call", gen_ai.request.model = "gpt-4o-mini",
///         gen_ai.usage.input_tokens = 812u64);
///     let _entered = span.enter();
///     tracing::info!("answered");
/// });
/// assert_eq!(pipeline.shutdown().accounting.delivered, 2);
/// # Ok::<(), mission_core::StartError>(())
/// ```
pub struct MissionLayer {
    recorder: Recorder,
    tenant: Symbol,
    agent: Symbol,
    ignored_targets: Vec<String>,
}

/// Targets the layer ignores by default: the exporters' own HTTP and gRPC stacks, whose spans
/// would otherwise feed back into what is exported (and can deadlock a synchronous exporter).
///
/// The core names no crate above it: a crate whose own module exports through the recorder
/// (an OTLP exporter that logs) tells the layer with [`MissionLayer::ignore_target`], passing
/// a target constant that module exports (`module_path!()`), where it builds the layer.
pub const DEFAULT_IGNORED_TARGETS: [&str; 7] =
    ["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest", "opentelemetry"];

impl fmt::Debug for MissionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MissionLayer")
            .field("tenant", &self.tenant)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl MissionLayer {
    /// A layer recording into `recorder`, with tenant `default` and agent `default`.
    pub fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            tenant: Symbol::intern("default"),
            agent: Symbol::intern("default"),
            ignored_targets: DEFAULT_IGNORED_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Also ignores spans and events whose target is `target` or starts with `target::`.
    pub fn ignore_target(mut self, target: &str) -> Self {
        self.ignored_targets.push(target.to_owned());
        self
    }

    /// Also ignores every target of `targets` (see [`ignore_target`](Self::ignore_target)).
    pub fn ignore_targets<'t>(mut self, targets: impl IntoIterator<Item = &'t str>) -> Self {
        self.ignored_targets.extend(targets.into_iter().map(str::to_owned));
        self
    }

    /// The targets this layer ignores (with everything below them), in the order given.
    pub fn ignored_targets(&self) -> impl Iterator<Item = &str> {
        self.ignored_targets.iter().map(String::as_str)
    }

    /// Records every target, including the exporters' own (see [`DEFAULT_IGNORED_TARGETS`]).
    pub fn record_all_targets(mut self) -> Self {
        self.ignored_targets.clear();
        self
    }

    fn ignores(&self, target: &str) -> bool {
        self.ignored_targets.iter().any(|t| {
            target
                .strip_prefix(t.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }

    /// The tenant events belong to (a `tenant` field on a span overrides it for that span).
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Symbol::intern(tenant);
        self
    }

    /// The agent events belong to (a `gen_ai.agent.name` field overrides it).
    pub fn with_agent(mut self, agent: &str) -> Self {
        self.agent = Symbol::intern(agent);
        self
    }
}

/// What the layer keeps in a span's extensions until it closes.
struct SpanData {
    event: Event,
    kind_set: bool,
}

fn level_of(level: &TracingLevel) -> Level {
    match *level {
        TracingLevel::TRACE => Level::Trace,
        TracingLevel::DEBUG => Level::Debug,
        TracingLevel::INFO => Level::Info,
        TracingLevel::WARN => Level::Warn,
        _ => Level::Error,
    }
}

fn kind_from_operation(op: &str) -> Option<SpanKind> {
    Some(match op {
        "chat" | "text_completion" | "generate_content" | "embeddings" | "llm_call" => {
            SpanKind::LlmCall
        }
        "execute_tool" | "tool_call" => SpanKind::ToolCall,
        "invoke_agent" | "create_agent" | "agent_step" => SpanKind::AgentStep,
        "retrieval" => SpanKind::Retrieval,
        "custom" => SpanKind::Custom,
        _ => return None,
    })
}

/// Maps `tracing` fields onto a span event.
struct SpanVisitor<'a> {
    data: &'a mut SpanData,
}

impl SpanVisitor<'_> {
    fn span(&mut self) -> Option<&mut SpanEnd> {
        match &mut self.data.event.body {
            EventBody::Span(span) => Some(span),
            _ => None,
        }
    }

    fn set_kind(&mut self, kind: SpanKind, explicit: bool) {
        if explicit || !self.data.kind_set {
            if let Some(span) = self.span() {
                span.kind = kind;
            }
            self.data.kind_set |= explicit;
        }
    }

    fn number(&mut self, field: &Field, value: u64) -> bool {
        let Some(span) = self.span() else {
            return false;
        };
        let llm = &mut span.llm;
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        // The GenAI names of every convention, from the one table (`semconv`).
        match semconv::meaning(field.name()) {
            Some(Meaning::InputTokens) => llm.input_tokens = value,
            Some(Meaning::OutputTokens) => llm.output_tokens = value,
            Some(Meaning::CacheReadTokens) => llm.cached_input_tokens = value,
            Some(Meaning::ReasoningTokens) => llm.reasoning_tokens = value,
            _ => return false,
        }
        self.set_kind(SpanKind::LlmCall, false);
        true
    }

    fn string(&mut self, field: &Field, value: &str) -> bool {
        match semconv::meaning(field.name()) {
            Some(meaning @ (Meaning::RequestModel | Meaning::ResponseModel)) => {
                let request = meaning == Meaning::RequestModel;
                if let Some(span) = self.span()
                    && (request || span.llm.model.is_empty())
                {
                    span.llm.model = Symbol::intern(value);
                }
                self.set_kind(SpanKind::LlmCall, false);
                // Keep the response model visible too when it differs.
                return request;
            }
            Some(Meaning::Provider) => {
                if let Some(span) = self.span() {
                    span.llm.provider = Symbol::intern(value);
                }
                return true;
            }
            Some(Meaning::ToolName) => {
                self.data.event.name = Symbol::intern(value);
                self.set_kind(SpanKind::ToolCall, false);
                return true;
            }
            Some(Meaning::Operation) => {
                if let Some(kind) = semconv::kind_of_operation(value) {
                    self.set_kind(kind, true);
                }
                return false;
            }
            Some(Meaning::AgentName) => {
                self.data.event.agent = Symbol::intern(value);
                return false;
            }
            _ => {}
        }
        match field.name() {
            "tenant" | "mission.tenant" => {
                self.data.event.tenant = Symbol::intern(value);
                true
            }
            "otel.status_message" | "error.message" => {
                if let Some(span) = self.span() {
                    span.set_error(value);
                }
                true
            }
            "otel.status_code" => {
                if let Some(span) = self.span() {
                    match value.to_ascii_uppercase().as_str() {
                        "ERROR" => span.status = Status::Error,
                        "OK" if !span.status.is_error() => span.status = Status::Ok,
                        _ => {}
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn attr(&mut self, field: &Field, value: AttrValue) {
        self.data.event.attributes.set(Symbol::intern(field.name()), value);
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "gen_ai.usage.cost" {
            if let Some(span) = self.span() {
                span.llm.cost_usd = value;
            }
            return;
        }
        self.attr(field, AttrValue::Float(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if value >= 0 && self.number(field, value as u64) {
            return;
        }
        self.attr(field, AttrValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.number(field, value) {
            return;
        }
        self.attr(field, AttrValue::Int(i64::try_from(value).unwrap_or(i64::MAX)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attr(field, AttrValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.string(field, value) || semconv::meaning(field.name()) == Some(Meaning::ToolName) {
            self.attr(field, AttrValue::string(value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        if let Some(span) = self.span() {
            span.set_error(&message);
        }
        self.attr(field, AttrValue::string(&message));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

/// Maps `tracing` event fields onto a log record.
struct LogVisitor<'a> {
    event: &'a mut Event,
}

impl LogVisitor<'_> {
    fn message(&mut self, value: &str) {
        if let EventBody::Log(log) = &mut self.event.body {
            log.message = Text::new(value);
        }
    }
}

impl Visit for LogVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.event.attributes.set(Symbol::intern(field.name()), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.event.attributes.set(Symbol::intern(field.name()), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.event
            .attributes
            .set(Symbol::intern(field.name()), i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.event.attributes.set(Symbol::intern(field.name()), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message(value);
        } else {
            self.event.attributes.set(Symbol::intern(field.name()), AttrValue::string(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

impl<S> Layer<S> for MissionLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if self.ignores(span.metadata().target()) {
            return;
        }
        let meta = span.metadata();
        let mut event = Event::new(
            Symbol::intern(meta.name()),
            EventBody::Span(SpanEnd {
                kind: kind_from_operation(meta.name()).unwrap_or_default(),
                ..SpanEnd::default()
            }),
        );
        event.span_id = SpanId::generate();
        let parent = span.parent();
        let inherited = parent.as_ref().and_then(|p| {
            p.extensions()
                .get::<SpanData>()
                .map(|d| (d.event.span_id, d.event.thread_id, d.event.tenant, d.event.agent))
        });
        match inherited {
            Some((parent_id, thread_id, tenant, agent)) => {
                event.parent_span_id = parent_id;
                event.thread_id = thread_id;
                event.tenant = tenant;
                event.agent = agent;
            }
            None => {
                event.thread_id = ThreadId::generate();
                event.tenant = self.tenant;
                event.agent = self.agent;
            }
        }
        let mut data = SpanData { event, kind_set: false };
        attrs.record(&mut SpanVisitor { data: &mut data });
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(data) = extensions.get_mut::<SpanData>() {
            values.record(&mut SpanVisitor { data });
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if self.ignores(meta.target()) {
            return;
        }
        let mut record = Event::new(
            Symbol::intern(meta.name()),
            EventBody::Log(LogRecord {
                level: level_of(meta.level()),
                target: Symbol::intern(meta.target()),
                message: Text::EMPTY,
            }),
        );
        record.tenant = self.tenant;
        record.agent = self.agent;
        if let Some(span) = ctx.event_span(event)
            && let Some(data) = span.extensions().get::<SpanData>()
        {
            record.span_id = data.event.span_id;
            record.thread_id = data.event.thread_id;
            record.tenant = data.event.tenant;
            record.agent = data.event.agent;
        }
        event.record(&mut LogVisitor { event: &mut record });
        self.recorder.record(record);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        let mut event = data.event;
        let end = Timestamp::now();
        if let EventBody::Span(span) = &mut event.body {
            span.duration_ns = end.0.saturating_sub(event.time.0);
        }
        self.recorder.record(event);
    }
}
