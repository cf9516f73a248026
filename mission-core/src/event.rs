//! The event model: everything Mission Control records is one [`Event`].

use std::fmt;

use crate::{Attributes, SpanId, Symbol, Text, ThreadId, Timestamp};

/// Anything recorded: a finished span, a log record, a metric point, a permission decision, an
/// anomaly or a score. Every event says whose it is (tenant, agent), where it belongs (thread, span,
/// parent span), when it happened, and carries a bounded set of typed attributes.
///
/// An `Event` is 128 bytes and owns no heap memory unless a caller gave it a copied string or
/// attributes, so recording a span (name, ids, timing, status, model usage) allocates nothing.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Event {
    /// When it happened; for a span, when it started. Nanoseconds since the Unix epoch.
    pub time: Timestamp,
    /// The organisation or team the event belongs to.
    pub tenant: Symbol,
    /// The agent program that recorded it.
    pub agent: Symbol,
    /// The thread (run, conversation) it belongs to; an OpenTelemetry trace id.
    pub thread_id: ThreadId,
    /// For a span, its own id; for other events, the span they happened in (or none).
    pub span_id: SpanId,
    /// For a span, its parent ([`SpanId::NONE`] for a root).
    pub parent_span_id: SpanId,
    /// The span, metric or decision name; for a log record, the name of its call site.
    pub name: Symbol,
    /// What kind of event this is, with its kind-specific fields.
    pub body: EventBody,
    /// Extra typed attributes.
    pub attributes: Attributes,
}

impl Event {
    /// An event of the given body with every context field empty, stamped now.
    pub fn new(name: Symbol, body: EventBody) -> Self {
        Self {
            time: Timestamp::now(),
            tenant: Symbol::EMPTY,
            agent: Symbol::EMPTY,
            thread_id: ThreadId::default(),
            span_id: SpanId::NONE,
            parent_span_id: SpanId::NONE,
            name,
            body,
            attributes: Attributes::new(),
        }
    }

    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match &self.body {
            EventBody::Span(span) => EventKind::Span(span.kind),
            EventBody::Log(_) => EventKind::Log,
            EventBody::Metric(_) => EventKind::Metric,
            EventBody::Permission(_) => EventKind::Permission,
            EventBody::Anomaly(_) => EventKind::Anomaly,
            EventBody::Score(_) => EventKind::Score,
        }
    }

    /// The span fields, if this is a span.
    pub fn as_span(&self) -> Option<&SpanEnd> {
        match &self.body {
            EventBody::Span(span) => Some(span),
            _ => None,
        }
    }

    /// The score fields, if this is a score.
    pub fn as_score(&self) -> Option<&Score> {
        match &self.body {
            EventBody::Score(score) => Some(score),
            _ => None,
        }
    }

    /// The log fields, if this is a log record.
    pub fn as_log(&self) -> Option<&LogRecord> {
        match &self.body {
            EventBody::Log(log) => Some(log),
            _ => None,
        }
    }

    /// When this event ended: `time + duration` for a span, `time` otherwise.
    pub fn end_time(&self) -> Timestamp {
        match &self.body {
            EventBody::Span(span) => Timestamp(self.time.0.saturating_add(span.duration_ns)),
            _ => self.time,
        }
    }
}

/// The kind-specific part of an [`Event`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A span that ended.
    Span(SpanEnd),
    /// A log record.
    Log(LogRecord),
    /// A metric point.
    Metric(MetricPoint),
    /// A permission decision.
    Permission(PermissionDecision),
    /// An anomaly found by a model.
    Anomaly(AnomalyEvent),
    /// An evaluation score or feedback given to a thread or a span; the event's `name` is the
    /// score's name (`helpfulness`, `thumbs`).
    Score(Score),
}

/// The kind of an event, as a small `Copy` value for filtering and grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A span of the given kind.
    Span(SpanKind),
    /// A log record.
    Log,
    /// A metric point.
    Metric,
    /// A permission decision.
    Permission,
    /// An anomaly.
    Anomaly,
    /// An evaluation score or feedback.
    Score,
}

impl EventKind {
    /// The stable lowercase name: `llm_call`, `tool_call`, …, `log`, `metric`, `permission`,
    /// `anomaly`, `score`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Span(kind) => kind.as_str(),
            EventKind::Log => "log",
            EventKind::Metric => "metric",
            EventKind::Permission => "permission",
            EventKind::Anomaly => "anomaly",
            EventKind::Score => "score",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a span did.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// One step of an agent (or the agent's whole run, at the root).
    AgentStep,
    /// A call to a language model.
    LlmCall,
    /// A tool call.
    ToolCall,
    /// A retrieval (vector search, document fetch).
    Retrieval,
    /// Anything else.
    #[default]
    Custom,
}

impl SpanKind {
    /// Every kind, in declaration order.
    pub const ALL: [SpanKind; 5] = [
        SpanKind::AgentStep,
        SpanKind::LlmCall,
        SpanKind::ToolCall,
        SpanKind::Retrieval,
        SpanKind::Custom,
    ];

    /// The stable lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::AgentStep => "agent_step",
            SpanKind::LlmCall => "llm_call",
            SpanKind::ToolCall => "tool_call",
            SpanKind::Retrieval => "retrieval",
            SpanKind::Custom => "custom",
        }
    }

    /// The OpenTelemetry GenAI `gen_ai.operation.name` for this kind, if it has one.
    pub const fn gen_ai_operation(self) -> Option<&'static str> {
        match self {
            SpanKind::AgentStep => Some("invoke_agent"),
            SpanKind::LlmCall => Some("chat"),
            SpanKind::ToolCall => Some("execute_tool"),
            SpanKind::Retrieval => Some("retrieval"),
            SpanKind::Custom => None,
        }
    }
}

/// How a span ended (OpenTelemetry's span status code). The error message, if any, is
/// [`SpanEnd::error_message`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not set by the caller.
    #[default]
    Unset,
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
}

impl Status {
    /// Whether this is an error.
    pub const fn is_error(self) -> bool {
        matches!(self, Status::Error)
    }

    /// The lowercase name: `unset`, `ok`, `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// A span that ended.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SpanEnd {
    /// What the span did.
    pub kind: SpanKind,
    /// How it ended.
    pub status: Status,
    /// How long it took, in nanoseconds.
    pub duration_ns: u64,
    /// Why it failed, when `status` is [`Status::Error`] (may be empty).
    pub error_message: Text,
    /// Model usage, for LLM calls (all zero otherwise).
    pub llm: LlmUsage,
}

impl SpanEnd {
    /// Marks the span failed with `message`.
    pub fn set_error(&mut self, message: &str) {
        self.status = Status::Error;
        self.error_message = Text::new(message);
    }
}

/// What one LLM call used and cost. Token counts are `u32` (over four billion tokens per
/// call), which keeps an [`Event`] within two cache lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct LlmUsage {
    /// The model asked for (`gen_ai.request.model`).
    pub model: Symbol,
    /// The provider (`gen_ai.provider.name`): `openai`, `anthropic`, …
    pub provider: Symbol,
    /// Input (prompt) tokens, including cached ones (`gen_ai.usage.input_tokens`).
    pub input_tokens: u32,
    /// Output (completion) tokens, including reasoning ones (`gen_ai.usage.output_tokens`).
    pub output_tokens: u32,
    /// Of the input tokens, how many were read from the provider's cache.
    pub cached_input_tokens: u32,
    /// Of the output tokens, how many were reasoning tokens.
    pub reasoning_tokens: u32,
    /// Cost in US dollars, computed when recorded.
    pub cost_usd: f64,
}

impl LlmUsage {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.model.is_empty() && self.input_tokens == 0 && self.output_tokens == 0
    }
}

/// Severity of a log record (OpenTelemetry severity ranges).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Diagnostic.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Something unusual.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The OpenTelemetry severity number (1, 5, 9, 13, 17).
    pub const fn severity_number(self) -> u8 {
        match self {
            Level::Trace => 1,
            Level::Debug => 5,
            Level::Info => 9,
            Level::Warn => 13,
            Level::Error => 17,
        }
    }
}

impl std::str::FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Ok(Level::Trace),
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            _ => Err(UnknownLevel(s.chars().take(32).collect())),
        }
    }
}

/// A level name that is not `trace`, `debug`, `info`, `warn` or `error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownLevel(pub String);

impl fmt::Display for UnknownLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown log level {:?}: expected trace, debug, info, warn or error", self.0)
    }
}

impl std::error::Error for UnknownLevel {}

/// A log record.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LogRecord {
    /// Severity.
    pub level: Level,
    /// Where it came from (a module path or logger name).
    pub target: Symbol,
    /// The message, bounded.
    pub message: Text,
}

/// What a metric point measures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A value at a moment (memory in use, queue length).
    #[default]
    Gauge,
    /// An increment of a monotonic counter.
    Counter,
    /// One observation of a distribution.
    Histogram,
}

/// A metric point; the event's `name` is the metric's name.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct MetricPoint {
    /// What kind of metric.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
    /// The unit (UCUM, as OpenTelemetry uses): `ms`, `By`, `{token}`.
    pub unit: Symbol,
}

/// Allowed or denied.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The action was allowed.
    #[default]
    Allow,
    /// The action was denied.
    Deny,
}

/// A permission decision: who asked to do what to which resource, and what the policy said.
/// The event's `name` is the action.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PermissionDecision {
    /// Who asked (a user, an agent, a tool).
    pub actor: Text,
    /// What they asked to do (`tool.call`, `file.write`).
    pub action: Symbol,
    /// What they asked to do it to.
    pub resource: Text,
    /// The answer.
    pub decision: Decision,
    /// The policy or rule that decided.
    pub policy: Symbol,
}

/// An anomaly found by a model; the event's `name` is the metric's name.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct AnomalyEvent {
    /// The detector that found it.
    pub detector: Symbol,
    /// Anomaly score in `0..=1`.
    pub score: f64,
    /// The observed value.
    pub value: f64,
    /// What the model expected.
    pub expected: f64,
    /// Lower edge of the expected band.
    pub lower: f64,
    /// Upper edge of the expected band.
    pub upper: f64,
}

/// Who gave a [`Score`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ScoreSource {
    /// A person (a user's thumbs-up, a reviewer's grade).
    #[default]
    Human,
    /// A model acting as a judge.
    Llm,
    /// A rule or program (a test, a regex, an exact-match check).
    Rule,
}

impl ScoreSource {
    /// Every source, in declaration order.
    pub const ALL: [ScoreSource; 3] = [ScoreSource::Human, ScoreSource::Llm, ScoreSource::Rule];

    /// The lowercase name: `human`, `llm`, `rule`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScoreSource::Human => "human",
            ScoreSource::Llm => "llm",
            ScoreSource::Rule => "rule",
        }
    }
}

impl std::str::FromStr for ScoreSource {
    type Err = InvalidScore;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScoreSource::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| InvalidScore::Source(s.chars().take(32).collect()))
    }
}

/// Why a score cannot be recorded.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InvalidScore {
    /// The value is NaN or infinite.
    NotFinite(f64),
    /// The name is empty.
    EmptyName,
    /// The source is not `human`, `llm` or `rule`.
    Source(String),
}

impl fmt::Display for InvalidScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidScore::NotFinite(v) => write!(f, "score value {v} is not a finite number"),
            InvalidScore::EmptyName => f.write_str("score name is empty"),
            InvalidScore::Source(s) => {
                write!(f, "unknown score source {s:?}: expected human, llm or rule")
            }
        }
    }
}

impl std::error::Error for InvalidScore {}

/// An evaluation score or a piece of feedback on a thread or a span (exported over OTLP as the
/// GenAI `gen_ai.evaluation.result` event). The event's `name` is the score's name, interned
/// and so bounded to [`MAX_SCORE_NAME_BYTES`](crate::limits::MAX_SCORE_NAME_BYTES).
///
/// The value is checked finite when the score is made ([`Score::new`]); the label and the
/// comment are bounded ([`MAX_SCORE_LABEL_BYTES`](crate::limits::MAX_SCORE_LABEL_BYTES),
/// [`MAX_SCORE_COMMENT_BYTES`](crate::limits::MAX_SCORE_COMMENT_BYTES)) with a marker. The
/// comment is content: it is omitted unless the tenant captures content.
///
/// ```
/// use mission_core::{Score, ScoreSource};
/// let score = Score::new(0.4)?.with_label("partly").with_comment("missed the refund policy")
///     .with_source(ScoreSource::Llm);
/// assert_eq!((score.value, score.label.as_str(), score.source), (0.4, "partly", ScoreSource::Llm));
/// assert!(Score::new(f64::NAN).is_err());
/// # Ok::<(), mission_core::InvalidScore>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Score {
    /// The value (`gen_ai.evaluation.score.value`), finite.
    pub value: f64,
    /// A label for the value (`gen_ai.evaluation.score.label`: `relevant`, `pass`), may be
    /// empty.
    pub label: Text,
    /// Why (`gen_ai.evaluation.explanation`), may be empty. Content.
    pub comment: Text,
    /// Who gave it.
    pub source: ScoreSource,
}

impl Score {
    /// A score of `value`, from a person, without label or comment.
    ///
    /// # Errors
    /// [`InvalidScore::NotFinite`] for NaN or an infinity.
    pub fn new(value: f64) -> Result<Self, InvalidScore> {
        if !value.is_finite() {
            return Err(InvalidScore::NotFinite(value));
        }
        Ok(Self { value, ..Self::default() })
    }

    /// With a label, bounded to [`MAX_SCORE_LABEL_BYTES`](crate::limits::MAX_SCORE_LABEL_BYTES).
    #[must_use]
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Text::bounded(label, crate::limits::MAX_SCORE_LABEL_BYTES);
        self
    }

    /// With a comment, bounded to
    /// [`MAX_SCORE_COMMENT_BYTES`](crate::limits::MAX_SCORE_COMMENT_BYTES).
    #[must_use]
    pub fn with_comment(mut self, comment: &str) -> Self {
        self.comment = Text::bounded(comment, crate::limits::MAX_SCORE_COMMENT_BYTES);
        self
    }

    /// From `source`.
    #[must_use]
    pub fn with_source(mut self, source: ScoreSource) -> Self {
        self.source = source;
        self
    }
}

/// The interned name of a score: `name` cut to
/// [`MAX_SCORE_NAME_BYTES`](crate::limits::MAX_SCORE_NAME_BYTES) with a marker.
///
/// # Errors
/// [`InvalidScore::EmptyName`] for an empty (or all-blank) name.
pub fn score_name(name: &str) -> Result<Symbol, InvalidScore> {
    let name = name.trim();
    if name.is_empty() {
        return Err(InvalidScore::EmptyName);
    }
    Ok(Symbol::intern(&crate::limits::truncate_with_marker(
        name,
        crate::limits::MAX_SCORE_NAME_BYTES,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_small_enough_to_move_cheaply() {
        // The recorder copies events by value; keep them within a few cache lines.
        assert!(std::mem::size_of::<Event>() <= 320, "{}", std::mem::size_of::<Event>());
    }

    #[test]
    fn kinds_and_levels() {
        let e = Event::new(Symbol::intern("x"), EventBody::Log(LogRecord::default()));
        assert_eq!(e.kind(), EventKind::Log);
        assert_eq!(e.end_time(), e.time);
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warn));
        assert!("loud".parse::<Level>().is_err());
        assert_eq!(SpanKind::LlmCall.gen_ai_operation(), Some("chat"));
        let json = serde_json::to_value(&e).expect("serialize");
        assert_eq!(json["body"]["kind"], "log");
    }

    #[test]
    fn scores_are_checked_and_bounded() {
        assert_eq!(Score::new(f64::INFINITY), Err(InvalidScore::NotFinite(f64::INFINITY)));
        assert!(matches!(Score::new(f64::NAN), Err(InvalidScore::NotFinite(_))));
        assert_eq!(score_name("  "), Err(InvalidScore::EmptyName));
        let long = "n".repeat(1000);
        assert!(
            score_name(&long).expect("name").as_str().len() <= crate::limits::MAX_SCORE_NAME_BYTES
        );
        let s = Score::new(-2.5)
            .expect("finite")
            .with_label(&"l".repeat(10_000))
            .with_comment(&"c".repeat(100_000));
        assert!(s.label.len() <= crate::limits::MAX_SCORE_LABEL_BYTES);
        assert!(s.comment.len() <= crate::limits::MAX_SCORE_COMMENT_BYTES);
        assert_eq!("LLM".parse::<ScoreSource>(), Ok(ScoreSource::Llm));
        assert!("robot".parse::<ScoreSource>().is_err());
        let e = Event::new(Symbol::intern("helpfulness"), EventBody::Score(s));
        assert_eq!(e.kind().as_str(), "score");
        assert_eq!(e.as_score().map(|s| s.value), Some(-2.5));
    }
}
