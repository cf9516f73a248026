//! Events → Arrow `RecordBatch` in the [`events_schema`](crate::schema::events_schema) layout.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Builder, Int64Builder, MapBuilder, MapFieldNames,
    RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray, UInt64Builder,
};
use arrow::datatypes::Int32Type;
use mission_core::{AttrValue, Event, EventBody, SpanKind};
use rustc_hash::FxHashMap;

use crate::schema::events_schema;
use crate::{Error, Result};

/// A dictionary column built from `&'static str`s (interned names and fixed labels), keyed by
/// address: no string hashing per row.
#[derive(Default)]
struct StaticDict {
    index: FxHashMap<usize, i32>,
    values: Vec<&'static str>,
    keys: Vec<Option<i32>>,
    /// The last value pushed and its key: rows sorted by thread repeat values in runs.
    last: Option<(usize, i32)>,
}

impl StaticDict {
    fn with_capacity(n: usize) -> Self {
        Self { keys: Vec::with_capacity(n), ..Self::default() }
    }

    #[inline]
    fn push(&mut self, s: &'static str) {
        let id = s.as_ptr() as usize ^ (s.len() << 48);
        if let Some((last, key)) = self.last
            && last == id
        {
            self.keys.push(Some(key));
            return;
        }
        let next = self.values.len() as i32;
        let key = *self.index.entry(id).or_insert_with(|| {
            self.values.push(s);
            next
        });
        self.last = Some((id, key));
        self.keys.push(Some(key));
    }

    #[inline]
    fn push_opt(&mut self, s: Option<&'static str>) {
        match s {
            Some(s) => self.push(s),
            None => self.keys.push(None),
        }
    }

    fn finish(self) -> Result<ArrayRef> {
        let keys = arrow::array::Int32Array::from(self.keys);
        let values = Arc::new(StringArray::from(self.values));
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values)?))
    }
}

/// The 32 lowercase hex digits of a thread id, without the formatting machinery.
#[inline]
fn hex_id(id: u128, out: &mut [u8; 32]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((id >> (124 - 4 * i)) & 0xF) as usize];
    }
    std::str::from_utf8(out).unwrap_or("")
}

fn nonempty(s: &'static str) -> Option<&'static str> {
    if s.is_empty() { None } else { Some(s) }
}

/// Builds one `RecordBatch` from `events`, ordered by thread then time (so a thread's events sit
/// together, which is how they are read and what makes ids and times compress).
///
/// # Errors
/// [`Error::Arrow`] if Arrow rejects a column (it does not for well-formed events).
pub fn encode(events: &[&Event]) -> Result<RecordBatch> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_unstable_by_key(|&i| (events[i].thread_id, events[i].time, events[i].span_id));
    let n = events.len();

    let mut time = Vec::with_capacity(n);
    let mut kind = StaticDict::with_capacity(n);
    let mut agent = StaticDict::with_capacity(n);
    let mut thread = StringBuilder::with_capacity(n, n * 32);
    let mut span = UInt64Builder::with_capacity(n);
    let mut parent = UInt64Builder::with_capacity(n);
    let mut name = StaticDict::with_capacity(n);
    let mut duration = Int64Builder::with_capacity(n);
    let mut status = StaticDict::with_capacity(n);
    let mut error_message = StringBuilder::new();
    let mut operation = StaticDict::with_capacity(n);
    let mut provider = StaticDict::with_capacity(n);
    let mut model = StaticDict::with_capacity(n);
    let mut input_tokens = Int64Builder::with_capacity(n);
    let mut output_tokens = Int64Builder::with_capacity(n);
    let mut cached_tokens = Int64Builder::with_capacity(n);
    let mut reasoning_tokens = Int64Builder::with_capacity(n);
    let mut cost = Float64Builder::with_capacity(n);
    let mut log_level = StaticDict::with_capacity(n);
    let mut log_target = StaticDict::with_capacity(n);
    let mut log_message = StringBuilder::new();
    let mut metric_kind = StaticDict::with_capacity(n);
    let mut metric_value = Float64Builder::with_capacity(n);
    let mut metric_unit = StaticDict::with_capacity(n);
    let mut actor = StringBuilder::new();
    let mut action = StaticDict::with_capacity(n);
    let mut resource = StringBuilder::new();
    let mut decision = StaticDict::with_capacity(n);
    let mut policy = StaticDict::with_capacity(n);
    let mut detector = StaticDict::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut expected = Float64Builder::with_capacity(n);
    let mut lower = Float64Builder::with_capacity(n);
    let mut upper = Float64Builder::with_capacity(n);
    let mut attributes = MapBuilder::new(
        // Arrow 59's builder names the fields `keys`/`values`; the schema (and the Parquet
        // convention every reader expects) says `entries`/`key`/`value`.
        Some(MapFieldNames {
            entry: "entries".to_owned(),
            key: "key".to_owned(),
            value: "value".to_owned(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut score_source = StaticDict::with_capacity(n);
    let mut score_value = Float64Builder::with_capacity(n);
    let mut score_label = StringBuilder::new();
    let mut score_comment = StringBuilder::new();
    let mut hex = [0u8; 32];
    let mut text = String::new();

    for &i in &order {
        let e = events[i];
        time.push(i64::try_from(e.time.0).unwrap_or(i64::MAX));
        kind.push(e.kind().as_str());
        agent.push(e.agent.as_str());
        if e.thread_id.is_zero() {
            thread.append_null();
        } else {
            thread.append_value(hex_id(e.thread_id.0, &mut hex));
        }
        span.append_option(e.span_id.to_option().map(|v| v.get()));
        parent.append_option(e.parent_span_id.to_option().map(|v| v.get()));
        name.push(e.name.as_str());

        // Kind-specific columns: exactly one group is filled, the others get nulls.
        let s = e.as_span();
        duration.append_option(s.map(|s| i64::try_from(s.duration_ns).unwrap_or(i64::MAX)));
        status.push_opt(s.map(|s| s.status.as_str()));
        error_message.append_option(
            s.and_then(|s| (!s.error_message.is_empty()).then(|| s.error_message.as_str())),
        );
        operation.push_opt(s.and_then(|s| s.kind.gen_ai_operation()));
        let llm = s.filter(|s| s.kind == SpanKind::LlmCall || !s.llm.is_empty()).map(|s| &s.llm);
        provider.push_opt(llm.and_then(|l| nonempty(l.provider.as_str())));
        model.push_opt(llm.and_then(|l| nonempty(l.model.as_str())));
        input_tokens.append_option(llm.map(|l| i64::from(l.input_tokens)));
        output_tokens.append_option(llm.map(|l| i64::from(l.output_tokens)));
        cached_tokens.append_option(llm.map(|l| i64::from(l.cached_input_tokens)));
        reasoning_tokens.append_option(llm.map(|l| i64::from(l.reasoning_tokens)));
        cost.append_option(llm.map(|l| l.cost_usd));

        let log = e.as_log();
        log_level.push_opt(log.map(|l| l.level.as_str()));
        log_target.push_opt(log.and_then(|l| nonempty(l.target.as_str())));
        log_message.append_option(log.map(|l| l.message.as_str()));

        match &e.body {
            EventBody::Metric(m) => {
                metric_kind.push(match m.kind {
                    mission_core::MetricKind::Gauge => "gauge",
                    mission_core::MetricKind::Counter => "counter",
                    mission_core::MetricKind::Histogram => "histogram",
                });
                metric_value.append_value(m.value);
                metric_unit.push_opt(nonempty(m.unit.as_str()));
            }
            EventBody::Anomaly(a) => {
                metric_kind.push_opt(None);
                metric_value.append_value(a.value);
                metric_unit.push_opt(None);
            }
            _ => {
                metric_kind.push_opt(None);
                metric_value.append_null();
                metric_unit.push_opt(None);
            }
        }
        if let EventBody::Permission(p) = &e.body {
            actor.append_value(p.actor.as_str());
            action.push(p.action.as_str());
            resource.append_value(p.resource.as_str());
            decision.push(match p.decision {
                mission_core::Decision::Allow => "allow",
                mission_core::Decision::Deny => "deny",
            });
            policy.push_opt(nonempty(p.policy.as_str()));
        } else {
            actor.append_null();
            action.push_opt(None);
            resource.append_null();
            decision.push_opt(None);
            policy.push_opt(None);
        }
        if let EventBody::Anomaly(a) = &e.body {
            detector.push(a.detector.as_str());
            score.append_value(a.score);
            expected.append_value(a.expected);
            lower.append_value(a.lower);
            upper.append_value(a.upper);
        } else {
            detector.push_opt(None);
            score.append_null();
            expected.append_null();
            lower.append_null();
            upper.append_null();
        }
        if let EventBody::Score(sc) = &e.body {
            score_source.push(sc.source.as_str());
            score_value.append_value(sc.value);
            score_label.append_option((!sc.label.is_empty()).then(|| sc.label.as_str()));
            score_comment.append_option((!sc.comment.is_empty()).then(|| sc.comment.as_str()));
        } else {
            score_source.push_opt(None);
            score_value.append_null();
            score_label.append_null();
            score_comment.append_null();
        }
        if e.attributes.is_empty() {
            attributes.append(false)?;
        } else {
            for a in e.attributes.iter() {
                attributes.keys().append_value(a.key.as_str());
                match &a.value {
                    AttrValue::Str(s) => attributes.values().append_value(s.as_str()),
                    other => {
                        text.clear();
                        let _ = write!(text, "{other}");
                        attributes.values().append_value(&text);
                    }
                }
            }
            attributes.append(true)?;
        }
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from(time).with_timezone("UTC")),
        kind.finish()?,
        agent.finish()?,
        Arc::new(thread.finish()),
        Arc::new(span.finish()),
        Arc::new(parent.finish()),
        name.finish()?,
        Arc::new(duration.finish()),
        status.finish()?,
        Arc::new(error_message.finish()),
        operation.finish()?,
        provider.finish()?,
        model.finish()?,
        Arc::new(input_tokens.finish()),
        Arc::new(output_tokens.finish()),
        Arc::new(cached_tokens.finish()),
        Arc::new(reasoning_tokens.finish()),
        Arc::new(cost.finish()),
        log_level.finish()?,
        log_target.finish()?,
        Arc::new(log_message.finish()),
        metric_kind.finish()?,
        Arc::new(metric_value.finish()),
        metric_unit.finish()?,
        Arc::new(actor.finish()),
        action.finish()?,
        Arc::new(resource.finish()),
        decision.finish()?,
        policy.finish()?,
        detector.finish()?,
        Arc::new(score.finish()),
        Arc::new(expected.finish()),
        Arc::new(lower.finish()),
        Arc::new(upper.finish()),
        Arc::new(attributes.finish()),
        score_source.finish()?,
        Arc::new(score_value.finish()),
        Arc::new(score_label.finish()),
        Arc::new(score_comment.finish()),
    ];
    RecordBatch::try_new(events_schema(), columns).map_err(Error::from)
}
