//! Conditions: the `when` of a directive, its grammar, and the bounded-memory windows that
//! judge it.
//!
//! Every statistics window is [`BUCKETS`] time buckets (a 5-minute window has 5-second
//! buckets); a bucket keeps a count, an error count, a sum, a minimum, a maximum and, for
//! percentiles, a sparse log histogram of at most [`HISTOGRAM_BINS`] bins (16 per octave, about
//! 2% relative error). So a window never holds more than `BUCKETS × HISTOGRAM_BINS` counters,
//! whatever the event rate.
//!
//! A `forecast` condition keeps the same window over twice its horizon and projects the
//! statistic of its buckets forward with a least-squares linear trend ([`project`]): a closed
//! form over at most [`BUCKETS`] points, no fitting loop on the pipeline thread, no dependency
//! on `mission-ml` (a directive file reads the same in every build).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use mission_core::duration_text;

/// Buckets per statistics window.
pub const BUCKETS: usize = 60;

/// Most bins of one bucket's latency histogram.
pub const HISTOGRAM_BINS: usize = 1 + 43 * BINS_PER_OCTAVE;
const BINS_PER_OCTAVE: usize = 16;
/// The smallest value the histogram tells apart: 2^-20 (a nanosecond in milliseconds).
const LOWEST_OCTAVE: f64 = -20.0;

/// The `when` of a directive, read from text.
///
/// | text | meaning |
/// |---|---|
/// | `p95(duration) > 4s over 5m` | a statistic crosses a threshold over a sliding window |
/// | `error_rate > 5% over 10m`, `count == 0 over 15m`, `sum(cost) > $20 over 1h` | |
/// | `anomaly score > 0.9` (`for 10m`: stays firing 10m after the last one; default 5m) | an anomaly event scores above a level |
/// | `slo 99% under 4s over 30d`, `slo 99.9% ok over 30d` | SLO burn rate, multi-window (Google SRE workbook) |
/// | `avg(score:helpfulness) < 0.7 over 1h` | the mean of the scores named `helpfulness` given in the last hour |
/// | `forecast p95(duration) > 4s within 30m` | the statistic's linear trend over the last 2 × 30m crosses the threshold within 30m (horizon 1m to 7d) |
/// | `3 failures in a row` | an operation fails N times in a row |
/// | `5 denials per actor within 10m` | permission denied to the same actor N times |
/// | `3 same tool calls in a thread` | a thread calls one tool with the same arguments N times (a loop) |
/// | `3 same llm requests in a thread` | a thread sends the same LLM request N times |
/// | `3 same tool errors in a thread` | one tool fails with the same error message N times in a thread |
/// | `no event for 10m while running` | a running thread recorded nothing for 10m (a stalled thread; quiet time 1m to 7d) |
///
/// Statistics: `count`, `error_rate`, and `p50`, `p90`, `p95`, `p99`, `min`, `max`, `avg`,
/// `sum` of `duration` (values in ms, or text like `4s`), `cost` (US dollars, `$2` or `2`),
/// `tokens`, `value` (a metric point's value) or `score:NAME` (the value of scores named NAME,
/// e.g. `avg(score:helpfulness) < 0.7 over 1h`; thresholds may be negative). Comparisons: `>`, `>=`, `<`, `<=`, `==`.
/// Rates are fractions (`0.05`) or percentages (`5%`).
///
/// ```
/// use mission_govern::directives::Condition;
/// let c: Condition = "p95(duration) > 4s over 5m".parse()?;
/// assert_eq!(c.to_string(), "p95(duration) > 4000ms over 5m");
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Condition {
    /// A statistic over a sliding window crosses a threshold.
    Threshold(Threshold),
    /// An anomaly event scores above a level.
    Anomaly {
        /// The comparison (`>` or `>=`).
        op: Comparison,
        /// The level, 0 to 1.
        score: f64,
        /// How long the incident stays firing after the last such anomaly.
        hold: Duration,
    },
    /// The error budget of an SLO burns fast.
    Slo(Slo),
    /// The same operation failed this many times in a row.
    ConsecutiveFailures {
        /// N.
        count: u32,
    },
    /// The trend of a statistic is forecast to cross a threshold within a horizon.
    Forecast(ForecastThreshold),
    /// Permission was denied to the same actor this many times within a window.
    RepeatedDenials {
        /// N.
        count: u32,
        /// The window.
        within: Duration,
    },
    /// The same call repeated in one thread: fires at its N-th identical occurrence. Groups
    /// are per (tenant, thread); see [`Repeat`] for what counts as the same.
    Loop {
        /// N, 2 to 10000.
        count: u32,
        /// What repeats.
        of: Repeat,
    },
    /// A running thread recorded no event for this long: it is stalled. Groups are per
    /// (tenant, thread), like [`Condition::Loop`]; judged on the directive's clock (which the
    /// wall clock moves while the stream is quiet), so it needs no event to fire. A thread is
    /// running from its first event (or, with a thread registry, from its start) until its
    /// root span ends; a paused or cancelled thread is not stalled.
    Stalled {
        /// The quiet time, [`MIN_STALL`] to [`MAX_STALL`].
        after: Duration,
    },
}

/// Shortest quiet time of a `no event for … while running` condition.
pub const MIN_STALL: Duration = Duration::from_secs(60);
/// Longest quiet time of a `no event for … while running` condition.
pub const MAX_STALL: Duration = Duration::from_secs(7 * 86_400);

/// What a [`Condition::Loop`] counts, per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Tool calls of the same tool with the same arguments (the same
    /// [`TOOL_ARGS_HASH`](mission_core::fingerprint::attr::TOOL_ARGS_HASH)); tool calls without
    /// that attribute are not counted.
    ToolCalls,
    /// LLM calls with the same request (the same
    /// [`LLM_REQUEST_HASH`](mission_core::fingerprint::attr::LLM_REQUEST_HASH)); calls without
    /// it are not counted.
    LlmRequests,
    /// Failed tool calls of the same tool with the same error message.
    ToolErrors,
}

impl Repeat {
    /// `tool calls`, `llm requests` or `tool errors`, as the grammar writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Repeat::ToolCalls => "tool calls",
            Repeat::LlmRequests => "llm requests",
            Repeat::ToolErrors => "tool errors",
        }
    }
}

/// `<statistic> <comparison> <value> over <window>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// What is measured.
    pub stat: Statistic,
    /// How it is compared.
    pub op: Comparison,
    /// The threshold, in the statistic's unit (ms for durations, a fraction for rates).
    pub value: f64,
    /// The sliding window.
    pub over: Duration,
}

/// `forecast <statistic> <comparison> <value> within <horizon>`: the statistic of each bucket
/// of a window over the last `2 × within` (the history), projected forward by a least-squares
/// line (not damped), crosses the threshold within `within`. Judged once
/// [`MIN_FORECAST_BUCKETS`] buckets hold values; memory as for any window (see the
/// [module docs](super)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForecastThreshold {
    /// What is forecast: a percentile, `min`, `max` or `avg` of a field, or `error_rate` (not
    /// `count` or `sum`, which depend on the bucket width).
    pub stat: Statistic,
    /// How the forecast is compared (`>`, `>=`, `<`, `<=`).
    pub op: Comparison,
    /// The threshold, in the statistic's unit.
    pub value: f64,
    /// The horizon, 1 minute to 7 days.
    pub within: Duration,
}

/// Shortest horizon of a `forecast` condition.
pub const MIN_FORECAST_HORIZON: Duration = Duration::from_secs(60);
/// Longest horizon of a `forecast` condition.
pub const MAX_FORECAST_HORIZON: Duration = Duration::from_secs(7 * 86_400);
/// Buckets of a `forecast` condition's history that must hold values before it is judged (a
/// quarter of [`BUCKETS`]).
pub const MIN_FORECAST_BUCKETS: usize = BUCKETS / 4;

impl ForecastThreshold {
    /// The window the trend is fitted on: twice the horizon, so the horizon is 30 of its
    /// buckets.
    pub fn history(&self) -> Duration {
        self.within.saturating_mul(2)
    }
}

/// A statistic of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// Events in the window.
    Count,
    /// Failed spans over all spans, 0 to 1; over permission decisions (`where.kind =
    /// "permission"`), denials over all decisions.
    ErrorRate,
    /// An aggregation of a field.
    Aggregate(Aggregation, Field),
    /// Mean time between failures: the window's length over its failed spans, in ms
    /// (unbounded while none failed). `mtbf < 10m over 1h`: more than six failures an hour.
    Mtbf,
}

/// How a field is aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Mean.
    Avg,
    /// Total.
    Sum,
}

/// A measured field of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A span's duration, in milliseconds.
    Duration,
    /// An LLM call's cost, in US dollars.
    Cost,
    /// An LLM call's input plus output tokens.
    Tokens,
    /// A metric point's (or anomaly's) value.
    Value,
    /// The value of scores with this name (`score:helpfulness`).
    Score(mission_core::Symbol),
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
}

impl Comparison {
    /// Whether `value <op> threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
            Comparison::Eq => (value - threshold).abs() <= f64::EPSILON * threshold.abs().max(1.0),
        }
    }

    /// The operator's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "==",
        }
    }
}

impl Condition {
    /// The statistic a threshold or forecast condition measures.
    pub fn statistic(&self) -> Option<Statistic> {
        match self {
            Condition::Threshold(t) => Some(t.stat),
            Condition::Forecast(f) => Some(f.stat),
            _ => None,
        }
    }
}

/// A service level objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slo {
    /// The fraction of good events promised, e.g. 0.99.
    pub objective: f64,
    /// What makes an event good.
    pub good: SloGood,
    /// The SLO period (the error budget's horizon), e.g. 30 days.
    pub period: Duration,
}

/// What makes an event good for an [`Slo`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SloGood {
    /// It did not fail and took less than this (a latency SLO).
    Under(Duration),
    /// It did not fail (an availability SLO).
    Ok,
}

impl Slo {
    /// The burn-rate threshold of the fast-burn (page) pair: 2% of the budget in an hour,
    /// 14.4 for a 30-day period.
    pub fn page_burn_rate(&self) -> f64 {
        0.02 * self.period.as_secs_f64() / 3600.0
    }

    /// The burn-rate threshold of the slow-burn (ticket) pair: 5% of the budget in six hours,
    /// 6 for a 30-day period.
    pub fn ticket_burn_rate(&self) -> f64 {
        0.05 * self.period.as_secs_f64() / (6.0 * 3600.0)
    }
}

impl Statistic {
    /// The field measured, if any.
    pub fn field(self) -> Option<Field> {
        match self {
            Statistic::Aggregate(_, f) => Some(f),
            _ => None,
        }
    }

    /// Whether the statistic needs a histogram.
    pub fn is_percentile(self) -> bool {
        matches!(
            self,
            Statistic::Aggregate(
                Aggregation::P50 | Aggregation::P90 | Aggregation::P95 | Aggregation::P99,
                _
            )
        )
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Count => f.write_str("count"),
            Statistic::ErrorRate => f.write_str("error_rate"),
            Statistic::Mtbf => f.write_str("mtbf"),
            Statistic::Aggregate(a, field) => {
                let a = match a {
                    Aggregation::P50 => "p50",
                    Aggregation::P90 => "p90",
                    Aggregation::P95 => "p95",
                    Aggregation::P99 => "p99",
                    Aggregation::Min => "min",
                    Aggregation::Max => "max",
                    Aggregation::Avg => "avg",
                    Aggregation::Sum => "sum",
                };
                match field {
                    Field::Duration => write!(f, "{a}(duration)"),
                    Field::Cost => write!(f, "{a}(cost)"),
                    Field::Tokens => write!(f, "{a}(tokens)"),
                    Field::Value => write!(f, "{a}(value)"),
                    Field::Score(name) => write!(f, "{a}(score:{})", name.as_str()),
                }
            }
        }
    }
}

/// Formats a threshold value in the statistic's unit.
pub(crate) fn format_value(stat: Statistic, v: f64) -> String {
    match stat {
        Statistic::ErrorRate => format!("{}%", round(v * 100.0)),
        Statistic::Aggregate(_, Field::Duration) | Statistic::Mtbf => format!("{}ms", round(v)),
        Statistic::Aggregate(_, Field::Cost) => format!("${}", round(v)),
        _ => format!("{}", round(v)),
    }
}

/// `p95(duration) > 4000ms`: a statistic, a comparison and a threshold in the statistic's unit.
pub(crate) fn comparison_text(stat: Statistic, op: Comparison, value: f64) -> String {
    format!("{stat} {} {}", op.as_str(), format_value(stat, value))
}

/// A duration in the largest whole unit: `30d`, `6h`, `5m`, `4s`, `250ms`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s > 0 {
        for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s.is_multiple_of(n) {
                return format!("{}{unit}", s / n);
            }
        }
    }
    duration_text::format(d)
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn pct(v: f64) -> String {
    format!("{}%", round(v * 100.0))
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = human;
        match self {
            Condition::Threshold(t) => {
                write!(f, "{} over {}", comparison_text(t.stat, t.op, t.value), d(t.over))
            }
            Condition::Forecast(t) => write!(
                f,
                "forecast {} within {}",
                comparison_text(t.stat, t.op, t.value),
                d(t.within)
            ),
            Condition::Anomaly { op, score, hold } => {
                write!(f, "anomaly score {} {score} for {}", op.as_str(), d(*hold))
            }
            Condition::Slo(slo) => {
                let good = match slo.good {
                    SloGood::Under(t) => format!("under {}", d(t)),
                    SloGood::Ok => "ok".to_owned(),
                };
                write!(f, "slo {} {good} over {}", pct(slo.objective), d(slo.period))
            }
            Condition::ConsecutiveFailures { count } => write!(f, "{count} failures in a row"),
            Condition::RepeatedDenials { count, within } => {
                write!(f, "{count} denials per actor within {}", d(*within))
            }
            Condition::Loop { count, of } => write!(f, "{count} same {} in a thread", of.as_str()),
            Condition::Stalled { after } => write!(f, "no event for {} while running", d(*after)),
        }
    }
}

impl From<Condition> for String {
    fn from(c: Condition) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Condition {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

const GRAMMAR: &str = "expected e.g. \"p95(duration) > 4s over 5m\", \"count == 0 over 15m\", \
                       \"forecast p95(duration) > 4s within 30m\", \
                       \"anomaly score > 0.9\", \"slo 99% under 4s over 30d\", \
                       \"3 failures in a row\", \"5 denials per actor within 10m\", \
                       \"3 same tool calls in a thread\" (or llm requests, tool errors) or \
                       \"no event for 10m while running\"";

impl FromStr for Condition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = |why: &str| format!("invalid condition {text:?}: {why}; {GRAMMAR}");
        match words.as_slice() {
            ["anomaly", "score", op, level, rest @ ..] => {
                let op = comparison(op).map_err(|e| bad(&e))?;
                if !matches!(op, Comparison::Gt | Comparison::Ge) {
                    return Err(bad("an anomaly score is compared with > or >="));
                }
                let score: f64 = level.parse().map_err(|_| bad("the score is not a number"))?;
                if !(0.0..=1.0).contains(&score) {
                    return Err(bad("the score is between 0 and 1"));
                }
                let hold = match rest {
                    [] => Duration::from_secs(300),
                    ["for", t] => positive_duration(t).map_err(|e| bad(&e))?,
                    _ => return Err(bad("after the score, only `for <duration>`")),
                };
                Ok(Condition::Anomaly { op, score, hold })
            }
            ["slo", objective, good @ .., "over", period] => {
                let objective = fraction(objective).map_err(|e| bad(&e))?;
                if !(objective > 0.0 && objective < 1.0) {
                    return Err(bad("the objective is between 0% and 100%, exclusive"));
                }
                let good = match good {
                    ["under", t] => SloGood::Under(positive_duration(t).map_err(|e| bad(&e))?),
                    ["ok"] | ["succeed"] | ["available"] => SloGood::Ok,
                    _ => return Err(bad("after the objective, `under <duration>` or `ok`")),
                };
                let period = positive_duration(period).map_err(|e| bad(&e))?;
                if period < Duration::from_secs(6 * 3600) {
                    return Err(bad("the SLO period is at least 6h"));
                }
                Ok(Condition::Slo(Slo { objective, good, period }))
            }
            [n, "failures", "in", "a", "row"] => {
                Ok(Condition::ConsecutiveFailures { count: count(n).map_err(|e| bad(&e))? })
            }
            [n, "same", what @ .., "in", "a", "thread"] => {
                let of = match what {
                    ["tool", "calls"] => Repeat::ToolCalls,
                    ["llm", "requests"] => Repeat::LlmRequests,
                    ["tool", "errors"] => Repeat::ToolErrors,
                    _ => {
                        return Err(bad(
                            "after `same`, `tool calls`, `llm requests` or `tool errors`",
                        ));
                    }
                };
                if matches!(n.parse::<u32>(), Ok(0 | 1)) {
                    return Err(bad(&format!(
                        "{n} is not a loop: count at least 2 identical {} (the first call is \
                         not a repeat)",
                        of.as_str()
                    )));
                }
                Ok(Condition::Loop { count: count(n).map_err(|e| bad(&e))?, of })
            }
            ["no", "event" | "events", "for", quiet, rest @ ..] => {
                if rest != ["while", "running"] {
                    return Err(bad("after `no event for <duration>`, `while running`"));
                }
                let after = duration_text::parse(quiet).map_err(|e| bad(&e))?;
                if !(MIN_STALL..=MAX_STALL).contains(&after) {
                    return Err(bad("the quiet time of a stalled thread is 1m to 7d"));
                }
                Ok(Condition::Stalled { after })
            }
            [n, "denials", "per", "actor", "within", w] => Ok(Condition::RepeatedDenials {
                count: count(n).map_err(|e| bad(&e))?,
                within: positive_duration(w).map_err(|e| bad(&e))?,
            }),
            ["forecast", stat, op, value, "within", horizon] => {
                let stat = statistic(stat).map_err(|e| bad(&e))?;
                if matches!(
                    stat,
                    Statistic::Count | Statistic::Mtbf | Statistic::Aggregate(Aggregation::Sum, _)
                ) {
                    return Err(bad(
                        "count, sum and mtbf depend on the bucket width: forecast a percentile, \
                         min, max, avg or error_rate",
                    ));
                }
                let op = comparison(op).map_err(|e| bad(&e))?;
                if op == Comparison::Eq {
                    return Err(bad("a forecast is compared with >, >=, < or <="));
                }
                let value = threshold_value(stat, value).map_err(|e| bad(&e))?;
                let within = duration_text::parse(horizon).map_err(|e| bad(&e))?;
                if !(MIN_FORECAST_HORIZON..=MAX_FORECAST_HORIZON).contains(&within) {
                    return Err(bad("the horizon is 1m to 7d"));
                }
                Ok(Condition::Forecast(ForecastThreshold { stat, op, value, within }))
            }
            [stat, op, value, "over", window] => {
                let stat = statistic(stat).map_err(|e| bad(&e))?;
                let op = comparison(op).map_err(|e| bad(&e))?;
                let value = threshold_value(stat, value).map_err(|e| bad(&e))?;
                let over = positive_duration(window).map_err(|e| bad(&e))?;
                Ok(Condition::Threshold(Threshold { stat, op, value, over }))
            }
            _ => Err(bad("not a condition")),
        }
    }
}

fn count(n: &str) -> Result<u32, String> {
    match n.parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!("{n:?} is not a count from 1 to 10000")),
    }
}

fn positive_duration(t: &str) -> Result<Duration, String> {
    let d = duration_text::parse(t)?;
    if d.is_zero() || d > Duration::from_secs(366 * 86_400) {
        return Err(format!("{t:?} is not a duration between 0 and a year"));
    }
    Ok(d)
}

fn fraction(t: &str) -> Result<f64, String> {
    let v = match t.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    v.ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{t:?} is not a fraction or a percentage"))
}

fn comparison(op: &str) -> Result<Comparison, String> {
    Ok(match op {
        ">" => Comparison::Gt,
        ">=" => Comparison::Ge,
        "<" => Comparison::Lt,
        "<=" => Comparison::Le,
        "==" | "=" => Comparison::Eq,
        other => return Err(format!("unknown comparison {other:?}: use >, >=, <, <= or ==")),
    })
}

fn statistic(s: &str) -> Result<Statistic, String> {
    match s {
        "count" => return Ok(Statistic::Count),
        "error_rate" => return Ok(Statistic::ErrorRate),
        "mtbf" => return Ok(Statistic::Mtbf),
        _ => {}
    }
    let unknown = || {
        format!(
            "unknown statistic {s:?}: use count, error_rate, mtbf or \
             p50|p90|p95|p99|min|max|avg|sum of (duration|cost|tokens|value|score:NAME), \
             e.g. p95(duration)"
        )
    };
    let (agg, rest) = s.split_once('(').ok_or_else(unknown)?;
    let field = rest.strip_suffix(')').ok_or_else(unknown)?;
    let agg = match agg {
        "p50" => Aggregation::P50,
        "p90" => Aggregation::P90,
        "p95" => Aggregation::P95,
        "p99" => Aggregation::P99,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "avg" => Aggregation::Avg,
        "sum" => Aggregation::Sum,
        _ => return Err(unknown()),
    };
    let field = match field {
        "duration" => Field::Duration,
        "cost" => Field::Cost,
        "tokens" => Field::Tokens,
        "value" => Field::Value,
        other => match other.strip_prefix("score:") {
            Some(name) => Field::Score(score_field_name(name)?),
            None => return Err(unknown()),
        },
    };
    Ok(Statistic::Aggregate(agg, field))
}

/// The name of `score:NAME`: 1 to 128 letters, digits, `_`, `-` or `.`.
fn score_field_name(name: &str) -> Result<mission_core::Symbol, String> {
    if name.is_empty()
        || name.len() > mission_core::limits::MAX_SCORE_NAME_BYTES
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "score name {name:?} must be 1 to {} letters, digits, '-', '_' or '.'",
            mission_core::limits::MAX_SCORE_NAME_BYTES
        ));
    }
    Ok(mission_core::Symbol::intern(name))
}

fn threshold_value(stat: Statistic, text: &str) -> Result<f64, String> {
    let v = match stat {
        Statistic::ErrorRate => fraction(text)?,
        Statistic::Aggregate(_, Field::Duration) | Statistic::Mtbf => {
            duration_text::parse(text)?.as_secs_f64() * 1000.0
        }
        Statistic::Aggregate(_, Field::Cost) => text
            .strip_prefix('$')
            .unwrap_or(text)
            .parse::<f64>()
            .map_err(|_| format!("{text:?} is not an amount of dollars"))?,
        _ => text.parse::<f64>().map_err(|_| format!("{text:?} is not a number"))?,
    };
    if matches!(stat, Statistic::Aggregate(_, Field::Score(_))) {
        // Scores have no sign convention: any finite threshold.
        if !v.is_finite() {
            return Err(format!("{text:?} is not a finite threshold"));
        }
    } else if !v.is_finite() || v < 0.0 {
        return Err(format!("{text:?} is not a threshold of zero or more"));
    }
    Ok(v)
}

/// One bucket of a [`Window`].
#[derive(Clone, Debug, Default)]
struct Bucket {
    epoch: u64,
    count: u64,
    errors: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Sparse log histogram: (bin, count), sorted by bin; at most [`HISTOGRAM_BINS`] entries.
    bins: Vec<(u16, u32)>,
}

/// A sliding window of [`BUCKETS`] time buckets.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    width_ns: u64,
    histogram: bool,
    buckets: Vec<Bucket>,
}

/// What a [`Window`] holds right now.
#[derive(Clone, Debug, Default)]
pub(crate) struct WindowSummary {
    pub count: u64,
    pub errors: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    bins: Vec<u64>,
}

fn bin_of(v: f64) -> u16 {
    if v <= 0.0 || !v.is_finite() {
        return 0;
    }
    let i = ((v.log2() - LOWEST_OCTAVE) * BINS_PER_OCTAVE as f64).floor();
    (i.max(0.0) as usize + 1).min(HISTOGRAM_BINS - 1) as u16
}

fn bin_value(bin: usize) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    ((bin as f64 - 0.5) / BINS_PER_OCTAVE as f64 + LOWEST_OCTAVE).exp2()
}

impl Window {
    /// A window of `over`, with a histogram if `histogram`.
    pub fn new(over: Duration, histogram: bool) -> Self {
        let width_ns = (over.as_nanos() / BUCKETS as u128).max(1) as u64;
        Self { width_ns, histogram, buckets: vec![Bucket::default(); BUCKETS] }
    }

    /// The bucket epoch of time `t`.
    pub fn epoch(&self, t: u64) -> u64 {
        t / self.width_ns
    }

    /// Adds an observation at `t`, unless it is older than the window ending at `now`.
    /// Returns false for such a late observation.
    pub fn add(&mut self, t: u64, now: u64, value: f64, error: bool) -> bool {
        let epoch = self.epoch(t);
        if epoch + (BUCKETS as u64) <= self.epoch(now) {
            return false;
        }
        let bucket = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            if bucket.epoch > epoch && bucket.count > 0 {
                return false;
            }
            let mut bins = std::mem::take(&mut bucket.bins);
            bins.clear();
            *bucket = Bucket {
                epoch,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                bins,
                ..Bucket::default()
            };
        }
        bucket.count += 1;
        bucket.errors += u64::from(error);
        bucket.sum += value;
        bucket.min = bucket.min.min(value);
        bucket.max = bucket.max.max(value);
        if self.histogram {
            let bin = bin_of(value);
            match bucket.bins.binary_search_by_key(&bin, |(b, _)| *b) {
                Ok(i) => bucket.bins[i].1 = bucket.bins[i].1.saturating_add(1),
                Err(i) => bucket.bins.insert(i, (bin, 1)),
            }
        }
        true
    }

    /// Whether nothing in the window ending at `now` was observed.
    pub fn is_empty_at(&self, now: u64) -> bool {
        let now_epoch = self.epoch(now);
        !self.buckets.iter().any(|b| b.count > 0 && b.epoch + BUCKETS as u64 > now_epoch)
    }

    /// Totals over the window ending at `now`.
    pub fn summary(&self, now: u64) -> WindowSummary {
        let now_epoch = self.epoch(now);
        let mut s = WindowSummary {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            bins: if self.histogram { vec![0; HISTOGRAM_BINS] } else { Vec::new() },
            ..WindowSummary::default()
        };
        for b in &self.buckets {
            if b.count == 0 || b.epoch + BUCKETS as u64 <= now_epoch || b.epoch > now_epoch {
                continue;
            }
            s.count += b.count;
            s.errors += b.errors;
            s.sum += b.sum;
            s.min = s.min.min(b.min);
            s.max = s.max.max(b.max);
            for &(bin, n) in &b.bins {
                s.bins[bin as usize] += u64::from(n);
            }
        }
        s
    }
}

impl WindowSummary {
    /// The statistic, or `None` when it has no value (a percentile of nothing).
    pub fn statistic(&self, stat: Statistic) -> Option<f64> {
        let bins = self.bins.iter().enumerate().map(|(bin, &n)| (bin, n));
        statistic_of(self.count, self.errors, self.sum, self.min, self.max, bins, stat)
    }
}

/// A statistic of observations: `count` of them, `errors` failed, summing to `sum`, from `min`
/// to `max`, with histogram `bins` (bin, count) in increasing bin order. `None` when it has no
/// value (a percentile of nothing).
fn statistic_of(
    count: u64,
    errors: u64,
    sum: f64,
    min: f64,
    max: f64,
    bins: impl Iterator<Item = (usize, u64)>,
    stat: Statistic,
) -> Option<f64> {
    let Statistic::Aggregate(agg, _) = stat else {
        return match stat {
            Statistic::Count => Some(count as f64),
            // Needs the window's length: `Window::mtbf`.
            Statistic::Mtbf => None,
            _ => (count > 0).then(|| errors as f64 / count as f64),
        };
    };
    if agg == Aggregation::Sum {
        return Some(sum);
    }
    if count == 0 {
        return None;
    }
    let q = match agg {
        Aggregation::Min => return Some(min),
        Aggregation::Max => return Some(max),
        Aggregation::Avg => return Some(sum / count as f64),
        Aggregation::P50 => 0.50,
        Aggregation::P90 => 0.90,
        Aggregation::P95 => 0.95,
        _ => 0.99,
    };
    let rank = ((q * count as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (bin, n) in bins {
        seen += n;
        if seen >= rank {
            return Some(bin_value(bin).clamp(min, max));
        }
    }
    Some(max)
}

impl Window {
    /// The statistic of each bucket of the window ending at `now` that holds observations,
    /// oldest first: (bucket epoch, value, observations). At most [`BUCKETS`] points.
    pub fn series(&self, now: u64, stat: Statistic) -> Vec<(u64, f64, u64)> {
        let now_epoch = self.epoch(now);
        let mut points: Vec<(u64, f64, u64)> = self
            .buckets
            .iter()
            .filter(|b| b.count > 0 && b.epoch + BUCKETS as u64 > now_epoch && b.epoch <= now_epoch)
            .filter_map(|b| {
                let bins = b.bins.iter().map(|&(bin, n)| (usize::from(bin), u64::from(n)));
                let v = statistic_of(b.count, b.errors, b.sum, b.min, b.max, bins, stat)?;
                v.is_finite().then_some((b.epoch, v, b.count))
            })
            .collect();
        points.sort_by_key(|p| p.0);
        points
    }

    /// Where the statistic of `forecast`'s window ending at `now` is heading (see [`project`]);
    /// `None` until [`MIN_FORECAST_BUCKETS`] buckets hold values.
    pub fn forecast(&self, now: u64, forecast: &ForecastThreshold) -> Option<Projection> {
        let series = self.series(now, forecast.stat);
        let steps = (forecast.within.as_nanos() / u128::from(self.width_ns)).max(1) as u64;
        let mut p = project(&series, self.epoch(now), steps, forecast.op, forecast.value)?;
        p.crossing_ns = p.crossing_steps.map(|k| {
            // Step `k` is the bucket `k` after the current one: the time to its middle.
            let middle = (self.epoch(now) + k).saturating_mul(self.width_ns) + self.width_ns / 2;
            middle.saturating_sub(now)
        });
        Some(p)
    }
}

/// Where a bucket series is heading, from [`project`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Projection {
    /// The last bucket's value.
    pub last: f64,
    /// The trend's value at the first step that crosses the threshold, or at the horizon's
    /// end when none does.
    pub value: f64,
    /// Buckets ahead of the current one at which the trend first crosses, if it does.
    pub crossing_steps: Option<u64>,
    /// The time from now to that crossing (set by [`Window::forecast`]).
    pub crossing_ns: Option<u64>,
    /// Observations in the series.
    pub count: u64,
}

/// The least-squares line through `series` ((bucket epoch, value, observations), oldest first),
/// extended `steps` buckets past `now_epoch`: the first step `k` (1..=steps) at which
/// `value(now_epoch + k) <op> threshold`. `None` with fewer than [`MIN_FORECAST_BUCKETS`]
/// points. A straight line, not damped: the trend of the history (twice the horizon) is
/// assumed to go on at its rate, which is what an early warning asks; an old trend ages out
/// of the history. O(points + steps), no allocation.
pub(crate) fn project(
    series: &[(u64, f64, u64)],
    now_epoch: u64,
    steps: u64,
    op: Comparison,
    threshold: f64,
) -> Option<Projection> {
    let &(first, _, _) = series.first()?;
    let &(_, last, _) = series.last()?;
    if series.len() < MIN_FORECAST_BUCKETS {
        return None;
    }
    let n = series.len() as f64;
    let x = |epoch: u64| epoch.saturating_sub(first) as f64;
    let mean_x = series.iter().map(|p| x(p.0)).sum::<f64>() / n;
    let mean_y = series.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(e, y, _) in series {
        sxx += (x(e) - mean_x).powi(2);
        sxy += (x(e) - mean_x) * (y - mean_y);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let at = |k: u64| mean_y + slope * (x(now_epoch) + k as f64 - mean_x);
    let crossing_steps = (1..=steps.max(1)).find(|&k| op.holds(at(k), threshold));
    let value = at(crossing_steps.unwrap_or(steps.max(1)));
    let count = series.iter().map(|p| p.2).sum();
    value.is_finite().then_some(Projection {
        last,
        value,
        crossing_steps,
        crossing_ns: None,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_print() {
        for (text, shown) in [
            ("p95(duration) > 4s over 5m", "p95(duration) > 4000ms over 5m"),
            ("count == 0 over 15m", "count == 0 over 15m"),
            ("error_rate >= 5% over 10m", "error_rate >= 5% over 10m"),
            ("sum(cost) > $20 over 1h", "sum(cost) > $20 over 1h"),
            ("anomaly score > 0.9", "anomaly score > 0.9 for 5m"),
            ("slo 99% under 4s over 30d", "slo 99% under 4s over 30d"),
            ("3 failures in a row", "3 failures in a row"),
            ("5 denials per actor within 10m", "5 denials per actor within 10m"),
            (
                "forecast p95(duration) > 4s within 30m",
                "forecast p95(duration) > 4000ms within 30m",
            ),
            ("forecast error_rate >= 5% within 1h", "forecast error_rate >= 5% within 1h"),
            ("forecast avg(cost) > $0.5 within 7d", "forecast avg(cost) > $0.5 within 7d"),
            (
                "forecast min(score:helpfulness) < 0.6 within 1m",
                "forecast min(score:helpfulness) < 0.6 within 1m",
            ),
        ] {
            let c: Condition = text.parse().expect(text);
            assert_eq!(c.to_string(), shown);
            assert_eq!(c.to_string().parse::<Condition>().expect(shown), c);
        }
        for bad in ["p97(duration) > 1s over 5m", "count > x over 5m", "slo 120% ok over 30d", ""] {
            assert!(bad.parse::<Condition>().is_err(), "{bad}");
        }
        for (bad, why) in [
            ("forecast count > 5 within 30m", "bucket width"),
            ("forecast sum(cost) > $1 within 30m", "bucket width"),
            ("forecast p95(duration) == 4s within 30m", ">, >=, < or <="),
            ("forecast p95(duration) > 4s within 59s", "1m to 7d"),
            ("forecast p95(duration) > 4s within 8d", "1m to 7d"),
            ("forecast p95(duration) > 4s within soon", "duration"),
            ("forecast p95(duration) > 4s over 30m", "not a condition"),
            ("forecast p95(duration) > -1s within 30m", "duration"),
        ] {
            let e = bad.parse::<Condition>().expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let Ok(Condition::Forecast(f)) = "forecast p95(duration) > 4s within 7d".parse() else {
            panic!("a 7-day horizon parses")
        };
        assert_eq!(f.history(), Duration::from_secs(14 * 86_400));
    }

    #[test]
    fn loop_conditions_parse_print_and_explain_a_bad_count() {
        for (text, of) in [
            ("3 same tool calls in a thread", Repeat::ToolCalls),
            ("2 same llm requests in a thread", Repeat::LlmRequests),
            ("10000   same tool errors in a thread", Repeat::ToolErrors),
        ] {
            let c: Condition = text.parse().expect(text);
            let Condition::Loop { of: parsed, count } = c else { panic!("{text}: {c:?}") };
            assert_eq!(parsed, of);
            assert_eq!(c.to_string(), text.split_whitespace().collect::<Vec<_>>().join(" "));
            assert_eq!(c.to_string().parse::<Condition>(), Ok(c));
            assert!(count >= 2);
        }
        for (bad, why) in [
            ("0 same tool calls in a thread", "0 is not a loop: count at least 2 identical tool"),
            ("1 same llm requests in a thread", "1 is not a loop: count at least 2 identical llm"),
            ("10001 same tool calls in a thread", "not a count from 1 to 10000"),
            ("x same tool calls in a thread", "not a count"),
            ("-3 same tool calls in a thread", "not a count"),
            ("3 same tool results in a thread", "`tool calls`, `llm requests` or `tool errors`"),
            ("3 same in a thread", "`tool calls`, `llm requests` or `tool errors`"),
            ("3 same tool calls in a run", "not a condition"),
        ] {
            assert_refused(bad, why, "3 same tool calls in a thread");
        }
    }

    /// `bad` does not parse, and the error says `why` and shows the grammar (`example`).
    fn assert_refused(bad: &str, why: &str, example: &str) {
        let e = bad.parse::<Condition>().expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.contains(example), "the grammar is shown: {e}");
    }

    #[test]
    fn stalled_conditions_parse_print_and_explain_a_bad_quiet_time() {
        for (text, shown, secs) in [
            ("no event for 10m while running", "no event for 10m while running", 600),
            ("no events for 600s while running", "no event for 10m while running", 600),
            ("no   event for 1m   while running", "no event for 1m while running", 60),
            ("no event for 90s while running", "no event for 90s while running", 90),
            ("no event for 7d while running", "no event for 7d while running", 7 * 86_400),
        ] {
            let c: Condition = text.parse().expect(text);
            assert_eq!(c, Condition::Stalled { after: Duration::from_secs(secs) }, "{text}");
            assert_eq!(c.to_string(), shown);
            assert_eq!(c.to_string().parse::<Condition>(), Ok(c.clone()));
            assert_eq!(c.statistic(), None);
        }
        for (bad, why) in [
            ("no event for 59s while running", "1m to 7d"),
            ("no event for 8d while running", "1m to 7d"),
            ("no event for 0s while running", "1m to 7d"),
            ("no event for soon while running", "duration"),
            ("no event for 10m", "`while running`"),
            ("no event for 10m while paused", "`while running`"),
            ("no event for 10m while running now", "`while running`"),
            ("no event 10m while running", "not a condition"),
        ] {
            assert_refused(bad, why, "no event for 10m while running");
        }
    }

    #[test]
    fn a_rising_series_crosses_where_its_line_does_and_a_flat_one_never() {
        // Rises by 10 a bucket from 1000 at epoch 100: 1590 at 159, so 2000 at epoch 200.
        let rising: Vec<(u64, f64, u64)> =
            (100..160).map(|e| (e, 1000.0 + 10.0 * (e - 100) as f64, 3)).collect();
        let p = project(&rising, 159, 60, Comparison::Gt, 2000.0).expect("enough points");
        assert_eq!(p.crossing_steps, Some(42), "{p:?}"); // 1000 + 10·101 = 2010 > 2000
        assert!((p.value - 2010.0).abs() < 1e-6 && p.last == 1590.0 && p.count == 180, "{p:?}");
        assert_eq!(
            project(&rising, 159, 30, Comparison::Gt, 2000.0).expect("p").crossing_steps,
            None
        );
        // Falling below a floor, with gaps in the series.
        let falling: Vec<(u64, f64, u64)> =
            (0..60).filter(|e| e % 3 != 0).map(|e| (e, 100.0 - e as f64, 1)).collect();
        let p = project(&falling, 59, 30, Comparison::Lt, 30.0).expect("p");
        assert_eq!(p.crossing_steps, Some(12), "{p:?}"); // 100 − 71 = 29 < 30
        let flat: Vec<(u64, f64, u64)> =
            (0..60).map(|e| (e, if e % 2 == 0 { 990.0 } else { 1010.0 }, 1)).collect();
        for op in [Comparison::Gt, Comparison::Ge] {
            let p = project(&flat, 59, 30, op, 1100.0).expect("p");
            assert_eq!(p.crossing_steps, None, "{p:?}");
            assert!((p.value - 1000.0).abs() < 15.0, "{p:?}");
        }
        assert!(project(&flat[..MIN_FORECAST_BUCKETS - 1], 59, 30, Comparison::Gt, 0.0).is_none());
        assert!(project(&[], 0, 30, Comparison::Gt, 0.0).is_none());
    }

    #[test]
    fn a_windows_series_holds_each_buckets_statistic() {
        let s = 1_000_000_000u64;
        let Ok(Condition::Forecast(f)) = "forecast p95(duration) > 4s within 30m".parse() else {
            panic!()
        };
        // 1-minute buckets over the hour of history; bucket i holds 1..=100 ms plus 100·i.
        let mut w = Window::new(f.history(), true);
        for i in 0..60u64 {
            for v in 1..=100u64 {
                let t = 3600 * s + i * 60 * s + v;
                assert!(w.add(t, t, (v + 100 * i) as f64, false));
            }
        }
        let now = 3600 * s + 59 * 60 * s + 30 * s;
        let series = w.series(now, f.stat);
        assert_eq!(series.len(), 60);
        for (i, &(_, p95, n)) in series.iter().enumerate() {
            let want = 95.0 + 100.0 * i as f64;
            assert!((p95 - want).abs() <= want * 0.03, "bucket {i}: {p95} vs {want}");
            assert_eq!(n, 100);
        }
        // Rising by 100 ms a minute from ~5995 ms now: past 7 s in about 10 minutes.
        let Ok(Condition::Forecast(f)) = "forecast p95(duration) > 7s within 30m".parse() else {
            panic!()
        };
        let p = w.forecast(now, &f).expect("a projection");
        let minutes = p.crossing_ns.expect("crosses") as f64 / 60e9;
        assert!((8.0..=14.0).contains(&minutes), "{minutes} min: {p:?}");
    }

    #[test]
    fn burn_rate_thresholds_follow_the_workbook() {
        let Ok(Condition::Slo(slo)) = "slo 99.9% ok over 30d".parse() else { panic!() };
        assert!((slo.page_burn_rate() - 14.4).abs() < 1e-9);
        assert!((slo.ticket_burn_rate() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn windows_slide_and_percentiles_are_close() {
        let s = 1_000_000_000u64;
        let mut w = Window::new(Duration::from_secs(60), true);
        for i in 0..1000u64 {
            assert!(w.add(100 * s + i, 100 * s + i, (i + 1) as f64, false));
        }
        let sum = w.summary(100 * s + 1000);
        let p95 = sum
            .statistic(
                "p95(duration) > 1 over 1m"
                    .parse::<Condition>()
                    .map(|c| match c {
                        Condition::Threshold(t) => t.stat,
                        _ => Statistic::Count,
                    })
                    .expect("stat"),
            )
            .expect("p95");
        assert!((p95 - 950.0).abs() < 950.0 * 0.03, "{p95}");
        assert_eq!(sum.count, 1000);
        // A minute later the window is empty, and old observations are refused.
        assert!(w.is_empty_at(161 * s));
        assert!(!w.add(90 * s, 161 * s, 1.0, false));
        assert_eq!(w.summary(161 * s).statistic(Statistic::Count), Some(0.0));
    }
}
