//! OTLP requests made into our events: spans through the one mapping the Python bridge uses
//! ([`semconv::span_event`]), log records with their trace context, scores sent as the GenAI
//! `gen_ai.evaluation.result` event, and every metric data point as a metric event.

use std::collections::HashMap;

use mission_core::semconv::{self, ForeignSpan, ForeignValue, Meaning, Value};
use mission_core::{
    AttrValue, Event, EventBody, Level, LlmUsage, LogRecord, MetricKind, MetricPoint, Score,
    ScoreSource, SpanId, Status, Symbol, Text, ThreadId, Timestamp,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Prices an LLM call: the usage and its cache-written input tokens; `None` when the model has
/// no price.
pub type PriceFn = dyn Fn(&LlmUsage, u32) -> Option<f64> + Send + Sync;

/// The resource attribute naming the tenant (what our exporter sends); obeyed only for a
/// sender allowed every tenant.
pub const TENANT_ATTRIBUTE: &str = "mission.tenant";

/// The agent of data whose resource has no `service.name` (OpenTelemetry's own default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// What one request becomes.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    pub events: Vec<Event>,
    /// Items refused (an invalid id, a tenant the token may not send for).
    pub rejected: i64,
    /// Why, for the answer's `partial_success` (the first reason, with the count of others).
    pub message: Option<String>,
}

impl Mapped {
    fn reject(&mut self, count: usize, why: impl FnOnce() -> String) {
        if count == 0 {
            return;
        }
        self.rejected = self.rejected.saturating_add(i64::try_from(count).unwrap_or(i64::MAX));
        if self.message.is_none() {
            self.message = Some(why());
        }
    }
}

/// Who is sending, and how to price.
pub(crate) struct Mapper<'a> {
    /// The tenant of data that names none (the host's tenant).
    pub default_tenant: Symbol,
    /// The sender's token's tenant; `None`: every tenant (a resource may choose).
    pub scope: Option<&'a str>,
    pub price: &'a PriceFn,
}

/// The non-empty text of attribute `key`.
fn text_attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) if !s.is_empty() => {
            Some(s.as_str())
        }
        _ => None,
    })
}

/// The tenant `named` (a `mission.tenant` attribute) may be, for this sender: any with a token
/// of every tenant, only the token's own otherwise; `None` named, `otherwise`.
fn tenant_named(
    mapper: &Mapper<'_>,
    named: Option<&str>,
    otherwise: Symbol,
    what: &str,
) -> Result<Symbol, String> {
    match (mapper.scope, named) {
        (_, None) => Ok(otherwise),
        (None, Some(named)) => Ok(Symbol::intern(named)),
        (Some(scope), Some(named)) if named == scope => Ok(Symbol::intern(scope)),
        (Some(scope), Some(named)) => Err(format!(
            "{what} names tenant {named:?}, and this token may send for {scope:?} only"
        )),
    }
}

/// A resource's tenant and agent, or why its items are refused.
fn resource_context(
    mapper: &Mapper<'_>,
    resource: Option<&Resource>,
) -> Result<(Symbol, Symbol), String> {
    let attrs = resource.map_or(&[][..], |r| &r.attributes[..]);
    let agent = Symbol::intern(text_attribute(attrs, "service.name").unwrap_or(UNKNOWN_SERVICE));
    let otherwise = mapper.scope.map_or(mapper.default_tenant, Symbol::intern);
    let tenant =
        tenant_named(mapper, text_attribute(attrs, TENANT_ATTRIBUTE), otherwise, "the resource")?;
    Ok((tenant, agent))
}

/// An item's tenant: its own `mission.tenant` attribute (what our exporter sends for an event
/// of another tenant than its resource's), under the resource's rules, else the resource's.
fn item_tenant(
    mapper: &Mapper<'_>,
    attributes: &[KeyValue],
    resource_tenant: Symbol,
) -> Result<Symbol, String> {
    tenant_named(mapper, text_attribute(attributes, TENANT_ATTRIBUTE), resource_tenant, "an item")
}

/// An attribute value the mapping can read: the proto's own text or scalar, or `rendered`
/// (a list, a map) when the value is not a scalar.
fn foreign<'v>(
    value: Option<&'v AnyValue>,
    rendered: &'v Option<String>,
) -> Option<ForeignValue<'v>> {
    use any_value::Value as V;
    if let Some(text) = rendered {
        return Some(ForeignValue::Text(text));
    }
    Some(match value?.value.as_ref()? {
        V::StringValue(s) => ForeignValue::Scalar(Value::Str(s)),
        V::BoolValue(b) => ForeignValue::Scalar(Value::Bool(*b)),
        V::IntValue(n) => ForeignValue::Scalar(Value::Int(*n)),
        V::DoubleValue(f) => ForeignValue::Scalar(Value::Float(*f)),
        // A string-table index exists only in profiles, never in these signals.
        V::ArrayValue(_) | V::KvlistValue(_) | V::BytesValue(_) | V::StringValueStrindex(_) => {
            return None;
        }
    })
}

/// The text of a value that is not a scalar: JSON for lists and maps, base64 for bytes.
fn render(value: Option<&AnyValue>) -> Option<String> {
    use any_value::Value as V;
    match value?.value.as_ref()? {
        V::ArrayValue(_) | V::KvlistValue(_) => Some(json(value?, 0).to_string()),
        V::BytesValue(b) => Some(base64(b)),
        _ => None,
    }
}

fn json(value: &AnyValue, depth: usize) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    if depth > 16 {
        return J::String("…".into());
    }
    match &value.value {
        None | Some(V::StringValueStrindex(_)) => J::Null,
        Some(V::StringValue(s)) => J::String(s.clone()),
        Some(V::BoolValue(b)) => J::Bool(*b),
        Some(V::IntValue(n)) => J::from(*n),
        Some(V::DoubleValue(f)) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Some(V::BytesValue(b)) => J::String(base64(b)),
        Some(V::ArrayValue(a)) => J::Array(a.values.iter().map(|v| json(v, depth + 1)).collect()),
        Some(V::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (kv.key.clone(), kv.value.as_ref().map_or(J::Null, |v| json(v, depth + 1)))
                })
                .collect(),
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn thread_id(bytes: &[u8]) -> Option<ThreadId> {
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    let id = ThreadId(u128::from_be_bytes(bytes));
    (!id.is_zero()).then_some(id)
}

fn span_id(bytes: &[u8]) -> Option<SpanId> {
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    let id = SpanId(u64::from_be_bytes(bytes));
    (id != SpanId::NONE).then_some(id)
}

/// Attributes ready for the mapping: rendered texts for the values that are not scalars.
fn prepared(attributes: &[KeyValue]) -> Vec<Option<String>> {
    attributes.iter().map(|kv| render(kv.value.as_ref())).collect()
}

fn pairs<'v>(
    attributes: &'v [KeyValue],
    rendered: &'v [Option<String>],
) -> impl Iterator<Item = (&'v str, ForeignValue<'v>)> {
    attributes
        .iter()
        .zip(rendered)
        .filter_map(|(kv, r)| Some((kv.key.as_str(), foreign(kv.value.as_ref(), r)?)))
}

/// The agent an attribute list names, if any (`gen_ai.agent.name` and the other conventions).
fn named_agent(attributes: &[KeyValue]) -> Option<&str> {
    semconv::keys_for(Meaning::AgentName).find_map(|key| text_attribute(attributes, key))
}

/// The spans of a trace request.
pub(crate) fn traces(mapper: &Mapper<'_>, request: &ExportTraceServiceRequest) -> Mapped {
    let mut out = Mapped::default();
    // A span without an agent of its own takes the nearest ancestor's in this request, as
    // the Python bridge does with open spans.
    let mut agents: HashMap<u64, (u64, Option<&str>)> = HashMap::new();
    for rs in &request.resource_spans {
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            if let Some(id) = span_id(&span.span_id) {
                let parent = span_id(&span.parent_span_id).map_or(0, |p| p.0);
                agents.insert(id.0, (parent, named_agent(&span.attributes)));
            }
        }
    }
    let ancestor_agent = |mut parent: u64| {
        for _ in 0..64 {
            let (next, agent) = agents.get(&parent)?;
            if agent.is_some() {
                return *agent;
            }
            parent = *next;
        }
        None
    };
    for rs in &request.resource_spans {
        let count = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
        let (tenant, service) = match resource_context(mapper, rs.resource.as_ref()) {
            Ok(context) => context,
            Err(why) => {
                out.reject(count, || why);
                continue;
            }
        };
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let (Some(thread), Some(id)) = (thread_id(&span.trace_id), span_id(&span.span_id))
            else {
                out.reject(1, || format!("span {:?}: a trace id of 16 bytes and a span id of 8 bytes, neither zero, are required", clip(&span.name)));
                continue;
            };
            let parent = if span.parent_span_id.is_empty() {
                SpanId::NONE
            } else if let Some(parent) = span_id(&span.parent_span_id) {
                parent
            } else {
                out.reject(1, || {
                    format!("span {:?}: the parent span id is not 8 bytes", clip(&span.name))
                });
                continue;
            };
            let (status, message) = match &span.status {
                Some(s) if s.code == 2 => (Status::Error, s.message.as_str()),
                Some(s) if s.code == 1 => (Status::Ok, ""),
                _ => (Status::Unset, ""),
            };
            let tenant = match item_tenant(mapper, &span.attributes, tenant) {
                Ok(tenant) => tenant,
                Err(why) => {
                    out.reject(1, || format!("span {:?}: {why}", clip(&span.name)));
                    continue;
                }
            };
            let agent = ancestor_agent(parent.0).map_or(service, Symbol::intern);
            let foreign_span = ForeignSpan {
                tenant,
                agent,
                thread_id: thread,
                span_id: id,
                parent_span_id: parent,
                name: &span.name,
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                status,
                error: message,
            };
            let rendered = prepared(&span.attributes);
            let mut event = semconv::span_event(
                &foreign_span,
                pairs(&span.attributes, &rendered).filter(|(key, _)| *key != TENANT_ATTRIBUTE),
                mapper.price,
            );
            if !span.links.is_empty() {
                let links: Vec<String> = span
                    .links
                    .iter()
                    .map(|l| format!("{}-{}", hex(&l.trace_id), hex(&l.span_id)))
                    .collect();
                event
                    .attributes
                    .set(Symbol::intern("mission.links"), AttrValue::from(links.join(",")));
            }
            out.events.push(event);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The severity of an OTLP severity number (1–24), else of its text.
fn level(number: i32, text: &str) -> Level {
    match number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=24 => Level::Error,
        _ => text.parse().unwrap_or(Level::Info),
    }
}

/// The log records (and scores) of a logs request.
pub(crate) fn logs(mapper: &Mapper<'_>, request: &ExportLogsServiceRequest) -> Mapped {
    static LOG: mission_core::LazySymbol = mission_core::LazySymbol::new("log");
    let mut out = Mapped::default();
    for rl in &request.resource_logs {
        let count = rl.scope_logs.iter().map(|sl| sl.log_records.len()).sum();
        let (tenant, service) = match resource_context(mapper, rl.resource.as_ref()) {
            Ok(context) => context,
            Err(why) => {
                out.reject(count, || why);
                continue;
            }
        };
        for sl in &rl.scope_logs {
            let target = sl.scope.as_ref().map_or(Symbol::EMPTY, |s| Symbol::intern(&s.name));
            for record in &sl.log_records {
                let time = match record.time_unix_nano {
                    0 => record.observed_time_unix_nano,
                    t => t,
                };
                let attr = |key: &str| record.attributes.iter().find(|kv| kv.key == key);
                let is_score = record.event_name == "gen_ai.evaluation.result"
                    || attr("event.name")
                        .is_some_and(|kv| text_of(kv) == Some("gen_ai.evaluation.result"));
                let mut event = if is_score {
                    match score(record) {
                        Some(event) => event,
                        None => {
                            out.reject(1, || "a gen_ai.evaluation.result event needs gen_ai.evaluation.name and a finite gen_ai.evaluation.score.value".into());
                            continue;
                        }
                    }
                } else {
                    let message = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => Text::new(s),
                        Some(_) => Text::new(
                            &json(record.body.as_ref().unwrap_or(&AnyValue::default()), 0)
                                .to_string(),
                        ),
                        None => Text::EMPTY,
                    };
                    let name = if record.event_name.is_empty() {
                        LOG.get()
                    } else {
                        Symbol::intern(&record.event_name)
                    };
                    Event::new(
                        name,
                        EventBody::Log(LogRecord {
                            level: level(record.severity_number, &record.severity_text),
                            target,
                            message,
                        }),
                    )
                };
                event.time = Timestamp(time);
                event.tenant = match item_tenant(mapper, &record.attributes, tenant) {
                    Ok(tenant) => tenant,
                    Err(why) => {
                        out.reject(1, || format!("a log record: {why}"));
                        continue;
                    }
                };
                event.agent = named_agent(&record.attributes).map_or(service, Symbol::intern);
                if let Some(thread) = thread_id(&record.trace_id) {
                    event.thread_id = thread;
                }
                if let Some(span) = span_id(&record.span_id) {
                    event.span_id = span;
                }
                let consumed = |key: &str| {
                    semconv::keys_for(Meaning::AgentName).any(|k| k == key)
                        || key == TENANT_ATTRIBUTE
                        || (is_score && SCORE_KEYS.contains(&key))
                        || (key == "gen_ai.conversation.id"
                            && event.thread_id != ThreadId::default()
                            && key_is_thread(record, event.thread_id))
                };
                let rendered = prepared(&record.attributes);
                let mut dropped = 0_i64;
                let mut kept = 0;
                for (key, value) in pairs(&record.attributes, &rendered) {
                    if consumed(key) {
                        continue;
                    }
                    if kept < semconv::MAX_FOREIGN_ATTRIBUTES {
                        event.attributes.set(Symbol::intern(key), attr_value(value));
                        kept += 1;
                    } else {
                        dropped += 1;
                    }
                }
                if dropped > 0 {
                    event.attributes.set(Symbol::intern(semconv::ATTRIBUTES_DROPPED), dropped);
                }
                out.events.push(event);
            }
        }
    }
    out
}

fn key_is_thread(
    record: &opentelemetry_proto::tonic::logs::v1::LogRecord,
    thread: ThreadId,
) -> bool {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == "gen_ai.conversation.id")
        .and_then(text_of)
        .and_then(|s| s.parse::<ThreadId>().ok())
        == Some(thread)
}

/// Attributes a score's typed fields carry.
const SCORE_KEYS: &[&str] = &[
    "event.name",
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label",
    "gen_ai.evaluation.explanation",
    "mission.score.source",
];

fn text_of(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attr_value(value: ForeignValue<'_>) -> AttrValue {
    match value {
        ForeignValue::Scalar(Value::Str(s)) | ForeignValue::Text(s) => AttrValue::from(s),
        ForeignValue::Scalar(Value::Int(n)) => AttrValue::Int(n),
        ForeignValue::Scalar(Value::Float(f)) => AttrValue::Float(f),
        ForeignValue::Scalar(Value::Bool(b)) => AttrValue::Bool(b),
    }
}

/// A `gen_ai.evaluation.result` event as a score event (`None` without a name or a finite
/// value).
fn score(record: &opentelemetry_proto::tonic::logs::v1::LogRecord) -> Option<Event> {
    let attr = |key: &str| record.attributes.iter().find(|kv| kv.key == key);
    let name = attr("gen_ai.evaluation.name").and_then(text_of).filter(|s| !s.is_empty())?;
    let value = match attr("gen_ai.evaluation.score.value")?.value.as_ref()?.value.as_ref()? {
        any_value::Value::DoubleValue(f) => *f,
        any_value::Value::IntValue(n) => *n as f64,
        _ => return None,
    };
    let mut score = Score::new(value).ok()?;
    if let Some(label) = attr("gen_ai.evaluation.score.label").and_then(text_of) {
        score = score.with_label(label);
    }
    if let Some(comment) = attr("gen_ai.evaluation.explanation").and_then(text_of) {
        score = score.with_comment(comment);
    }
    if let Some(source) =
        attr("mission.score.source").and_then(text_of).and_then(|s| s.parse::<ScoreSource>().ok())
    {
        score = score.with_source(source);
    }
    Some(Event::new(Symbol::intern(name), EventBody::Score(score)))
}

/// Every data point of a metrics request, one metric event each: gauges as gauges, delta
/// monotonic sums as counter increments, other sums as their value at that time (a gauge),
/// histograms and summaries as one histogram event with the mean as the value and `count`,
/// `sum`, `min`, `max` as attributes.
pub(crate) fn metrics(mapper: &Mapper<'_>, request: &ExportMetricsServiceRequest) -> Mapped {
    let mut out = Mapped::default();
    for rm in &request.resource_metrics {
        let count = rm.scope_metrics.iter().flat_map(|sm| &sm.metrics).map(points).sum();
        let (tenant, service) = match resource_context(mapper, rm.resource.as_ref()) {
            Ok(context) => context,
            Err(why) => {
                out.reject(count, || why);
                continue;
            }
        };
        for metric in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
            let name = Symbol::intern(&metric.name);
            let unit = Symbol::intern(&metric.unit);
            let mut push = |kind: MetricKind,
                            value: f64,
                            time: u64,
                            attributes: &[KeyValue],
                            extra: &[(&str, f64)]| {
                let mut event =
                    Event::new(name, EventBody::Metric(MetricPoint { kind, value, unit }));
                event.time = Timestamp(time);
                event.tenant = tenant;
                event.agent = named_agent(attributes).map_or(service, Symbol::intern);
                for (key, v) in extra {
                    event.attributes.set(Symbol::intern(key), AttrValue::Float(*v));
                }
                let rendered = prepared(attributes);
                for (key, value) in
                    pairs(attributes, &rendered).take(semconv::MAX_FOREIGN_ATTRIBUTES)
                {
                    event.attributes.set(Symbol::intern(key), attr_value(value));
                }
                out.events.push(event);
            };
            let number = |v: &Option<number_data_point::Value>| match v {
                Some(number_data_point::Value::AsDouble(f)) => Some(*f),
                Some(number_data_point::Value::AsInt(n)) => Some(*n as f64),
                None => None,
            };
            match &metric.data {
                Some(metric::Data::Gauge(g)) => {
                    for p in &g.data_points {
                        if let Some(v) = number(&p.value) {
                            push(MetricKind::Gauge, v, p.time_unix_nano, &p.attributes, &[]);
                        }
                    }
                }
                Some(metric::Data::Sum(s)) => {
                    // Temporality 1 is delta.
                    let kind = if s.is_monotonic && s.aggregation_temporality == 1 {
                        MetricKind::Counter
                    } else {
                        MetricKind::Gauge
                    };
                    for p in &s.data_points {
                        if let Some(v) = number(&p.value) {
                            push(kind, v, p.time_unix_nano, &p.attributes, &[]);
                        }
                    }
                }
                Some(metric::Data::Histogram(h)) => {
                    for p in &h.data_points {
                        let sum = p.sum.unwrap_or(0.0);
                        let extra = summary_attrs(p.count, sum, p.min, p.max);
                        push(
                            MetricKind::Histogram,
                            mean(sum, p.count),
                            p.time_unix_nano,
                            &p.attributes,
                            &extra,
                        );
                    }
                }
                Some(metric::Data::ExponentialHistogram(h)) => {
                    for p in &h.data_points {
                        let sum = p.sum.unwrap_or(0.0);
                        let extra = summary_attrs(p.count, sum, p.min, p.max);
                        push(
                            MetricKind::Histogram,
                            mean(sum, p.count),
                            p.time_unix_nano,
                            &p.attributes,
                            &extra,
                        );
                    }
                }
                Some(metric::Data::Summary(s)) => {
                    for p in &s.data_points {
                        let extra = summary_attrs(p.count, p.sum, None, None);
                        push(
                            MetricKind::Histogram,
                            mean(p.sum, p.count),
                            p.time_unix_nano,
                            &p.attributes,
                            &extra,
                        );
                    }
                }
                None => {}
            }
        }
    }
    out
}

fn mean(sum: f64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { sum / count as f64 }
}

fn summary_attrs(
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> Vec<(&'static str, f64)> {
    let mut out = vec![("count", count as f64), ("sum", sum)];
    out.extend(min.map(|v| ("min", v)));
    out.extend(max.map(|v| ("max", v)));
    out
}

/// How many events a metric makes.
pub(crate) fn points(metric: &opentelemetry_proto::tonic::metrics::v1::Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
