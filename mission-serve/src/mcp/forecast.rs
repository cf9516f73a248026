//! The `forecast` tool (feature `models`): when will a statistic of an operation cross a
//! threshold? "p95 of `chat` on claude-sonnet-4 crosses 4 s in about 40 min (80 % interval
//! 25–70 min); now 2.1 s."
//!
//! The tenant's spans of the operation (optionally one model, agent or attribute) over the
//! history (default twice the horizon, at least an hour) are cut into [`BUCKETS`] buckets
//! ending now; each bucket's statistic (a latency percentile, mean or maximum from a bounded
//! histogram, or tokens per minute, or US dollars per hour) makes the series. Holt's linear
//! trend (`mission_ml::forecast::HoltWinters`, fitted to the series, trend not damped: a rise is
//! assumed to go on at its rate) forecasts it over the horizon with an 80 % prediction
//! interval; the crossing is where the forecast's mean reaches the threshold, and the interval
//! is where its edges do. Buckets before the first span are left out; an empty bucket after it
//! keeps the previous bucket's latency (it has none of its own) and counts as no tokens and
//! no cost.
//!
//! The store is read as the request's tenant scope may see it, like every tool.

use std::fmt::Write as _;
use std::time::Duration;

use mission_core::Timestamp;
use mission_core::duration_text;
use mission_ml::forecast::{FitOptions, Forecast, HoltWinters};
use mission_store::schema::col;
use mission_store::{EventRow, Store};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::format::rfc3339;
use super::tools::Answer;
use super::{MissionMcp, internal, invalid, scope_of};
use crate::histogram::Histogram;

/// Buckets of the series (its points).
pub const BUCKETS: usize = 60;
/// Buckets with spans the series needs before a forecast is made.
pub const MIN_BUCKETS: usize = 8;
/// Shortest and longest horizon.
pub const HORIZON_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(7 * 86_400));
/// Longest history, in minutes (14 days).
pub const MAX_HISTORY_MINUTES: u64 = 14 * 24 * 60;
/// Shortest history, in minutes.
pub const MIN_HISTORY_MINUTES: u64 = 10;
/// Nominal coverage of the prediction interval.
pub const CONFIDENCE: f64 = 0.8;
/// Most forecast points an answer lists (the band is thinned to this).
const MAX_BAND_POINTS: usize = 60;
/// Most steps forecast (a horizon far beyond the history's bucket width is cut here).
const MAX_STEPS: usize = 10_000;

/// What `forecast` forecasts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForecastStatistic {
    /// Median duration (ms).
    P50,
    /// 90th percentile duration (ms).
    P90,
    /// 95th percentile duration (ms).
    #[default]
    P95,
    /// 99th percentile duration (ms).
    P99,
    /// Mean duration (ms).
    Avg,
    /// Longest duration (ms).
    Max,
    /// Input plus output tokens per minute.
    #[serde(alias = "tokens")]
    TokensPerMinute,
    /// US dollars per hour.
    #[serde(alias = "cost")]
    CostPerHour,
}

impl ForecastStatistic {
    fn as_str(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P95 => "p95",
            Self::P99 => "p99",
            Self::Avg => "avg",
            Self::Max => "max",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::CostPerHour => "cost_per_hour",
        }
    }

    fn is_duration(self) -> bool {
        !matches!(self, Self::TokensPerMinute | Self::CostPerHour)
    }

    fn unit(self) -> &'static str {
        match self {
            Self::TokensPerMinute => "tokens/min",
            Self::CostPerHour => "usd/h",
            _ => "ms",
        }
    }

    /// A value as answers carry it: US dollars to 6 significant digits, else to 3 decimals.
    fn rounded(self, v: f64) -> f64 {
        if self == Self::CostPerHour { super::format::usd(v) } else { round_to(v, 3) }
    }

    /// The value in words: `2.1 s`, `850 ms`, `12000 tokens/min`, `$1.25/h`.
    fn text(self, v: f64) -> String {
        match self {
            Self::TokensPerMinute => format!("{v:.0} tokens/min"),
            Self::CostPerHour => format!("${}/h", super::format::usd(v)),
            _ if v >= 1000.0 => format!("{} s", round_to(v / 1000.0, 2)),
            _ => format!("{} ms", round_to(v, 1)),
        }
    }
}

/// A threshold: a number, or text (`4s`, `250ms`, `$5`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Amount {
    /// In the statistic's unit (ms, tokens per minute, US dollars per hour).
    Number(f64),
    /// A duration with its unit (`4s`, `250ms`) for durations; `$5` or `5` for cost.
    Text(String),
}

/// Input of `forecast`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastInput {
    /// The operation (span name): `chat`, a tool's name, …
    pub operation: String,
    /// Only spans of this model (`claude-sonnet-4`).
    #[serde(default)]
    pub model: Option<String>,
    /// Only spans of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only spans with this attribute, written `key=value` (`user.tier=free`).
    #[serde(default)]
    pub attribute: Option<String>,
    /// What to forecast: p50, p90, p95 (default), p99, avg or max of the duration (ms);
    /// tokens_per_minute (`tokens`); cost_per_hour (`cost`, US dollars).
    #[serde(default)]
    pub statistic: ForecastStatistic,
    /// The threshold: a duration (`4s`, `250ms`, or a number of ms) for duration statistics;
    /// tokens per minute; US dollars per hour (`$5` or 5).
    pub threshold: Amount,
    /// How far ahead: `30m`, `2h`, `1d` (1 minute to 7 days; default `2h`).
    #[serde(default)]
    pub horizon: Option<String>,
    /// The history the forecast learns from, in minutes (10 to 20160; default twice the
    /// horizon, at least 60).
    #[serde(default)]
    pub since_minutes: Option<u64>,
}

/// What is wrong with a `forecast` input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForecastInputError {
    /// `operation` is empty.
    #[error("operation must name an operation (span name), e.g. \"chat\"")]
    NoOperation,
    /// `threshold` does not read in the statistic's unit.
    #[error("threshold {given:?} is not {expected}")]
    Threshold {
        /// What was given.
        given: String,
        /// What the statistic takes.
        expected: &'static str,
    },
    /// `horizon` does not read as a duration from 1m to 7d.
    #[error("horizon {0:?} is not a duration from 1m to 7d (e.g. \"30m\", \"2h\")")]
    Horizon(String),
    /// `since_minutes` is out of range.
    #[error(
        "since_minutes must be between {MIN_HISTORY_MINUTES} and {MAX_HISTORY_MINUTES}, not {0}"
    )]
    History(u64),
    /// `attribute` is not `key=value`.
    #[error("attribute must be key=value, not {0:?}")]
    Attribute(String),
}

impl From<ForecastInputError> for ErrorData {
    fn from(e: ForecastInputError) -> Self {
        invalid(e.to_string())
    }
}

/// The input, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Question {
    operation: String,
    model: Option<String>,
    agent: Option<String>,
    attribute: Option<(String, String)>,
    statistic: ForecastStatistic,
    threshold: f64,
    horizon: Duration,
    history: Duration,
}

impl Question {
    pub(crate) fn parse(input: ForecastInput) -> Result<Self, ForecastInputError> {
        if input.operation.trim().is_empty() {
            return Err(ForecastInputError::NoOperation);
        }
        let statistic = input.statistic;
        let expected = if statistic.is_duration() {
            "a duration above zero, e.g. \"4s\", \"250ms\" or a number of ms"
        } else if statistic == ForecastStatistic::CostPerHour {
            "an amount of US dollars per hour above zero, e.g. \"$5\" or 5"
        } else {
            "a number of tokens per minute above zero"
        };
        let bad = |given: String| ForecastInputError::Threshold { given, expected };
        let threshold = match &input.threshold {
            Amount::Number(n) => *n,
            Amount::Text(t) if statistic.is_duration() => {
                duration_text::parse(t).map_err(|_| bad(t.clone()))?.as_secs_f64() * 1000.0
            }
            Amount::Text(t) => {
                let number = if statistic == ForecastStatistic::CostPerHour {
                    t.trim().strip_prefix('$').unwrap_or(t.trim())
                } else {
                    t.trim()
                };
                number.parse::<f64>().map_err(|_| bad(t.clone()))?
            }
        };
        if !threshold.is_finite() || threshold <= 0.0 {
            let given = match input.threshold {
                Amount::Number(n) => n.to_string(),
                Amount::Text(t) => t,
            };
            return Err(bad(given));
        }
        let horizon = match &input.horizon {
            None => Duration::from_secs(7200),
            Some(h) => duration_text::parse(h)
                .ok()
                .filter(|d| (HORIZON_RANGE.0..=HORIZON_RANGE.1).contains(d))
                .ok_or_else(|| ForecastInputError::Horizon(h.clone()))?,
        };
        let minutes = match input.since_minutes {
            Some(m) if !(MIN_HISTORY_MINUTES..=MAX_HISTORY_MINUTES).contains(&m) => {
                return Err(ForecastInputError::History(m));
            }
            Some(m) => m,
            None => (2 * horizon.as_secs() / 60).clamp(60, MAX_HISTORY_MINUTES),
        };
        let attribute = match input.attribute {
            Some(a) => match a.split_once('=') {
                Some((k, v)) if !k.is_empty() => Some((k.to_owned(), v.to_owned())),
                _ => return Err(ForecastInputError::Attribute(a)),
            },
            None => None,
        };
        Ok(Self {
            operation: input.operation,
            model: input.model,
            agent: input.agent,
            attribute,
            statistic,
            threshold,
            horizon,
            history: Duration::from_secs(minutes * 60),
        })
    }
}

/// Where the forecast crosses the threshold.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CrossingAnswer {
    /// Minutes from now until the forecast's mean reaches the threshold.
    pub minutes: f64,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Minutes until the 80 % interval's near edge reaches it (the earliest likely crossing).
    pub earliest_minutes: f64,
    /// Minutes until its far edge does (the latest likely crossing); absent when that is
    /// beyond the horizon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_minutes: Option<f64>,
}

/// One step of the forecast.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ForecastPoint {
    /// The end of the step, RFC 3339 UTC.
    pub time: String,
    /// The expected value, in `unit`.
    pub mean: f64,
    /// The lower edge of the 80 % interval.
    pub lower: f64,
    /// The upper edge of the 80 % interval.
    pub upper: f64,
}

/// The answer of `forecast`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ForecastAnswer {
    /// The answer in one sentence.
    pub summary: String,
    /// `crossing` (the forecast reaches the threshold within the horizon), `not_expected`, or
    /// `insufficient_data` (fewer than 8 buckets with spans).
    pub status: String,
    /// `up` when the threshold is at or above the last bucket's value (when does it rise to
    /// it?), `down` when below (when does it fall to it?); absent without data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The operation.
    pub operation: String,
    /// The model filter, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The agent filter, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The attribute filter, if any (`key=value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// What was forecast.
    pub statistic: String,
    /// Its unit: `ms`, `tokens/min` or `usd/h`.
    pub unit: String,
    /// The threshold, in `unit`.
    pub threshold: f64,
    /// The last bucket's value, in `unit` (absent without data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<f64>,
    /// The horizon, in minutes.
    pub horizon_minutes: f64,
    /// The history the forecast learnt from, in minutes.
    pub history_minutes: f64,
    /// The width of a bucket (a step of the forecast), in seconds.
    pub bucket_seconds: f64,
    /// Buckets of the history that hold spans.
    pub buckets_with_data: usize,
    /// Spans in the history.
    pub spans: u64,
    /// Nominal coverage of the interval (0.8).
    pub confidence: f64,
    /// Where the forecast crosses, when it does within the horizon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossing: Option<CrossingAnswer>,
    /// The forecast over the horizon (at most 60 points).
    pub forecast: Vec<ForecastPoint>,
    /// Files of the store that could not be read and were skipped (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// One bucket: the latency histogram, sum and maximum (ms), tokens and cost.
#[derive(Clone, Default)]
struct Bucket {
    latency: Histogram,
    sum_ms: f64,
    max_ms: f64,
    tokens: f64,
    cost: f64,
}

#[tool_router(router = forecast_router, vis = "pub(crate)")]
impl MissionMcp {
    /// When a statistic of an operation is forecast to cross a threshold.
    #[tool(
        name = "forecast",
        description = "Forecast when a statistic of an operation crosses a threshold: p50/p90/p95/p99/avg/max of its duration, tokens_per_minute or cost_per_hour, for an operation (span name, e.g. chat), optionally one model, agent or attribute (key=value). threshold: a duration (\"4s\") for durations, a number otherwise; horizon (default 2h, 1m to 7d). Learns from the last since_minutes (default twice the horizon) in 60 buckets with Holt's linear trend and answers with the crossing time and its 80% interval, or that no crossing is expected within the horizon, with the current value and the forecast band.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ForecastAnswer>()
    )]
    pub(crate) async fn forecast(
        &self,
        Parameters(input): Parameters<ForecastInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<ForecastAnswer>, ErrorData> {
        let question = Question::parse(input)?;
        let scope = scope_of(&context.extensions);
        let answer = self
            .blocking(move |source| {
                let store = source.store(scope.as_deref())?;
                answer(&store, &question, Timestamp::now().0)
            })
            .await?;
        let mut text = answer.summary.clone();
        if !answer.unreadable.is_empty() {
            let _ = write!(
                text,
                "\nWARNING: incomplete answer, {} unreadable file(s) of the store were skipped",
                answer.unreadable.len()
            );
        }
        Ok(Answer { value: answer, text })
    }
}

/// The answer to `q` over `store` (already scoped to the request's tenant) at `now_ns`.
pub(crate) fn answer(
    store: &Store,
    q: &Question,
    now_ns: u64,
) -> Result<ForecastAnswer, ErrorData> {
    let history_ns = q.history.as_nanos() as u64;
    let width_ns = (history_ns / BUCKETS as u64).max(1);
    let start_ns = now_ns.saturating_sub(width_ns * BUCKETS as u64);
    let (buckets, spans) = read_buckets(store, q, start_ns, now_ns, width_ns)?;
    let series = series(&buckets, q.statistic, width_ns);
    let minutes = |steps: usize| round_to(steps as f64 * width_ns as f64 / 60e9, 1);
    let steps = ((q.horizon.as_nanos() as u64).div_ceil(width_ns) as usize).clamp(1, MAX_STEPS);
    let with_data = buckets.iter().filter(|b| b.latency.count() > 0).count();
    let mut a = ForecastAnswer {
        summary: String::new(),
        status: "insufficient_data".into(),
        direction: None,
        operation: q.operation.clone(),
        model: q.model.clone(),
        agent: q.agent.clone(),
        attribute: q.attribute.as_ref().map(|(k, v)| format!("{k}={v}")),
        statistic: q.statistic.as_str().into(),
        unit: q.statistic.unit().into(),
        threshold: q.threshold,
        now: series.last().map(|&v| q.statistic.rounded(v)),
        horizon_minutes: round_to(q.horizon.as_secs_f64() / 60.0, 1),
        history_minutes: round_to(q.history.as_secs_f64() / 60.0, 1),
        bucket_seconds: round_to(width_ns as f64 / 1e9, 3),
        buckets_with_data: with_data,
        spans,
        confidence: CONFIDENCE,
        crossing: None,
        forecast: Vec::new(),
        unreadable: store.skipped_files().iter().map(ToString::to_string).collect(),
    };
    let what = subject(q);
    let threshold = q.statistic.text(q.threshold);
    let horizon = duration_words(q.horizon.as_secs_f64() / 60.0);
    let model = (with_data >= MIN_BUCKETS)
        .then(|| {
            let options = FitOptions::default().with_damped(false).with_max_evaluations(200);
            HoltWinters::fit(&series, 1, &options).map(|m| m.with_confidence(CONFIDENCE))
        })
        .flatten();
    let (Some(model), Some(&last)) = (model, series.last()) else {
        a.summary = format!(
            "Not enough data to forecast {what}: {with_data} of the last {} buckets of {} hold spans; a forecast needs {MIN_BUCKETS}.",
            BUCKETS,
            duration_words(width_ns as f64 / 60e9),
        );
        return Ok(a);
    };
    let path = model.forecast(steps);
    let step_every = steps.div_ceil(MAX_BAND_POINTS).max(1);
    a.forecast = path
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % step_every == 0 || i + 1 == steps)
        .map(|(i, f)| ForecastPoint {
            time: rfc3339(step_time(now_ns, width_ns, i + 1)),
            mean: q.statistic.rounded(f.mean),
            lower: q.statistic.rounded(f.lower),
            upper: q.statistic.rounded(f.upper),
        })
        .collect();
    // As `HoltWinters::time_to_cross`: upwards to a threshold at or above the last value,
    // downwards to one below it.
    let up = q.threshold >= last;
    a.direction = Some(if up { "up" } else { "down" }.into());
    let past = |x: f64| if up { x >= q.threshold } else { x <= q.threshold };
    let (crosses, cross) = if up { ("crosses", "cross") } else { ("falls below", "fall below") };
    let now_text = q.statistic.text(last);
    let crossing = crossing(&path, up, past);
    a.summary = match crossing {
        Some((mean, earliest, latest)) => {
            a.status = "crossing".into();
            a.crossing = Some(CrossingAnswer {
                minutes: minutes(mean),
                time: rfc3339(step_time(now_ns, width_ns, mean)),
                earliest_minutes: minutes(earliest),
                latest_minutes: latest.map(minutes),
            });
            let early = duration_words(minutes(earliest));
            let interval = match latest.map(|l| duration_words(minutes(l))) {
                // `25–70 min` rather than `25 min–70 min`.
                Some(late) => match (early.rsplit_once(' '), late.rsplit_once(' ')) {
                    (Some((n, unit)), Some((_, same))) if unit == same => format!("{n}–{late}"),
                    _ => format!("{early}–{late}"),
                },
                None => format!("{early} to beyond {horizon}"),
            };
            format!(
                "{what} {crosses} {threshold} in about {} (80 % interval {interval}); now {now_text}.",
                duration_words(minutes(mean)),
            )
        }
        None => {
            a.status = "not_expected".into();
            let end = path.last().map_or(last, |f| f.mean);
            let mut s = format!(
                "{what} is not expected to {cross} {threshold} within {horizon}; now {now_text}, forecast {} at the horizon",
                q.statistic.text(end)
            );
            if let Some(e) = path.iter().position(|f| past(if up { f.upper } else { f.lower })) {
                let _ = write!(
                    s,
                    " (the 80 % interval reaches it in about {})",
                    duration_words(minutes(e + 1))
                );
            }
            s.push('.');
            s
        }
    };
    Ok(a)
}

/// The steps (1-based) at which the forecast's mean, its interval's near edge and its far
/// edge first reach the threshold; `None` when the mean does not within the path.
fn crossing(
    path: &[Forecast],
    up: bool,
    past: impl Fn(f64) -> bool,
) -> Option<(usize, usize, Option<usize>)> {
    let first = |edge: &dyn Fn(&Forecast) -> f64| path.iter().position(|f| past(edge(f)));
    let mean = first(&|f| f.mean)?;
    let near = first(&|f| if up { f.upper } else { f.lower }).unwrap_or(mean).min(mean);
    let far = first(&|f| if up { f.lower } else { f.upper });
    Some((mean + 1, near + 1, far.map(|s| s + 1)))
}

/// The end of forecast step `k` (ns).
fn step_time(now_ns: u64, width_ns: u64, k: usize) -> i64 {
    i64::try_from(now_ns.saturating_add(width_ns.saturating_mul(k as u64))).unwrap_or(i64::MAX)
}

/// `p95 of `chat` on claude-sonnet-4`.
fn subject(q: &Question) -> String {
    let mut s = match q.statistic {
        ForecastStatistic::TokensPerMinute => format!("tokens per minute of `{}`", q.operation),
        ForecastStatistic::CostPerHour => format!("cost per hour of `{}`", q.operation),
        stat => format!("{} of `{}`", stat.as_str(), q.operation),
    };
    if let Some(m) = &q.model {
        let _ = write!(s, " on {m}");
    }
    if let Some(a) = &q.agent {
        let _ = write!(s, " of agent {a}");
    }
    if let Some((k, v)) = &q.attribute {
        let _ = write!(s, " with {k}={v}");
    }
    s
}

/// The spans of `q` from `start_ns` to `now_ns` in [`BUCKETS`] buckets of `width_ns`, and
/// how many there were.
fn read_buckets(
    store: &Store,
    q: &Question,
    start_ns: u64,
    now_ns: u64,
    width_ns: u64,
) -> Result<(Vec<Bucket>, u64), ErrorData> {
    let mut query = store
        .query()
        .name(&q.operation)
        .time_range(Timestamp(start_ns), Timestamp(now_ns.saturating_add(1)))
        .columns(&[
            col::TIME,
            col::DURATION_NS,
            col::MODEL,
            col::INPUT_TOKENS,
            col::OUTPUT_TOKENS,
            col::COST,
        ]);
    if let Some(a) = &q.agent {
        query = query.agent(a);
    }
    if let Some((k, v)) = &q.attribute {
        query = query.attribute(k, v);
    }
    let mut buckets = vec![Bucket::default(); BUCKETS];
    let mut spans = 0u64;
    for batch in query.iter().map_err(internal)? {
        let batch = batch.map_err(internal)?;
        for row in EventRow::from_batch(&batch).map_err(internal)? {
            let Some(duration) = row.duration_ns else { continue };
            if q.model.as_deref().is_some_and(|m| row.model.as_deref() != Some(m)) {
                continue;
            }
            let offset = u64::try_from(row.time_ns).unwrap_or(0).saturating_sub(start_ns);
            let b = &mut buckets[((offset / width_ns) as usize).min(BUCKETS - 1)];
            let ms = duration.max(0) as f64 / 1e6;
            b.latency.record(duration);
            b.sum_ms += ms;
            b.max_ms = b.max_ms.max(ms);
            b.tokens += (row.input_tokens.unwrap_or(0) + row.output_tokens.unwrap_or(0)) as f64;
            b.cost += row.cost_usd.unwrap_or(0.0);
            spans += 1;
        }
    }
    Ok((buckets, spans))
}

/// The statistic of each bucket from the first with spans on (see the module docs for empty
/// buckets).
fn series(buckets: &[Bucket], stat: ForecastStatistic, width_ns: u64) -> Vec<f64> {
    let width_minutes = width_ns as f64 / 60e9;
    let first = buckets.iter().position(|b| b.latency.count() > 0).unwrap_or(buckets.len());
    let mut out: Vec<f64> = Vec::with_capacity(buckets.len() - first);
    for b in &buckets[first..] {
        let n = b.latency.count();
        let v = match stat {
            ForecastStatistic::TokensPerMinute => b.tokens / width_minutes,
            ForecastStatistic::CostPerHour => b.cost / (width_minutes / 60.0),
            _ if n == 0 => out.last().copied().unwrap_or(0.0),
            ForecastStatistic::P50 => b.latency.quantile_ms(0.5),
            ForecastStatistic::P90 => b.latency.quantile_ms(0.9),
            ForecastStatistic::P95 => b.latency.quantile_ms(0.95),
            ForecastStatistic::P99 => b.latency.quantile_ms(0.99),
            ForecastStatistic::Avg => b.sum_ms / n as f64,
            ForecastStatistic::Max => b.max_ms,
        };
        out.push(v);
    }
    out
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// `40 min`, `2 h`, `1.5 h`, `3 d`.
fn duration_words(minutes: f64) -> String {
    if minutes < 120.0 {
        format!("{} min", round_to(minutes, if minutes < 10.0 { 1 } else { 0 }))
    } else if minutes < 2880.0 {
        format!("{} h", round_to(minutes / 60.0, 1))
    } else {
        format!("{} d", round_to(minutes / 1440.0, 1))
    }
}
