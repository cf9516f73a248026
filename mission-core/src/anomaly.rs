//! What anomaly events say: the attribute keys the models (`mission-sdk`'s anomaly sink) set on
//! them, which the MCP tools, the dashboard, `mission-ctl` and any reader of the store rely on.
//! Part of the event vocabulary, so every crate that writes or reads anomalies names them the
//! same way.

/// Attribute keys of anomaly events.
pub mod attr {
    /// The operation (span name) of the stream, or the metric's name.
    pub const OPERATION: &str = "mission.anomaly.operation";
    /// The span kind of the stream (`llm_call`, `tool_call`, …); absent for metric streams.
    pub const SPAN_KIND: &str = "mission.anomaly.span_kind";
    /// For LLM calls, the model whose series raised the alarm.
    pub const MODEL: &str = "gen_ai.request.model";
    /// `up` (above the band) or `down`.
    pub const DIRECTION: &str = "mission.anomaly.direction";
    /// The top cause, `dimension=value` (`model=gpt-4.1`), or [`NO_SINGLE_CAUSE`] when
    /// attribution ran and no value explains the change beyond its share of the calls.
    pub const CAUSE: &str = "mission.anomaly.cause";
    /// The value of [`CAUSE`] when no single dimension value explains the change (it is spread
    /// over the traffic, or lies outside what the spans record).
    pub const NO_SINGLE_CAUSE: &str = "no single cause";
    /// The share of the change the top cause explains (1.0: all of it).
    pub const CAUSE_CONTRIBUTION: &str = "mission.anomaly.cause.contribution";
    /// The top three causes as a JSON array of `mission_ml::attribution::Attribution`s.
    pub const CAUSES: &str = "mission.anomaly.causes";
    /// The thread of the span that raised the alarm (hex).
    pub const EXEMPLAR_THREAD_ID: &str = "mission.anomaly.exemplar.thread_id";
    /// The span that raised the alarm (hex).
    pub const EXEMPLAR_SPAN_ID: &str = "mission.anomaly.exemplar.span_id";
    /// Start of the anomalous window, ns since the Unix epoch.
    pub const WINDOW_START: &str = "mission.anomaly.window.start";
    /// Spans in the anomalous window.
    pub const WINDOW_COUNT: &str = "mission.anomaly.window.count";
    /// Spans in the baseline window.
    pub const BASELINE_COUNT: &str = "mission.anomaly.baseline.count";
    /// For a leak: seconds until the limit at the estimated slope.
    pub const TIME_TO_LIMIT_S: &str = "mission.anomaly.leak.time_to_limit_s";
    /// For a leak: the limit, in the metric's unit.
    pub const LIMIT: &str = "mission.anomaly.leak.limit";
    /// For a leak: growth per second.
    pub const SLOPE_PER_S: &str = "mission.anomaly.leak.slope_per_s";
    /// For a leak: confidence that the series rises.
    pub const CONFIDENCE: &str = "mission.anomaly.leak.confidence";
}

/// The gauge the anomaly sink records process memory as.
pub const MEMORY_METRIC: &str = "process.memory.rss";
