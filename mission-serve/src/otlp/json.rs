//! OTLP/JSON bodies decoded into the protobuf messages, by the OTLP specification's JSON rules:
//! field names in lowerCamelCase (the protobuf names in snake_case are accepted too), trace
//! and span ids as hex (not base64), 64-bit integers as strings or numbers, enums as integers,
//! unknown fields ignored. A value of the wrong type is an error naming where it is
//! (`resourceSpans[0].scopeSpans[1].spans[3].traceId: …`), never a silent zero.
//!
//! Written here rather than taken from `opentelemetry-proto`'s `with-serde` feature: its
//! derived decoding drops a metric's data (the `oneof`) and string-encoded `asInt` values
//! without an error (opentelemetry-rust issue 3527, still so in 0.33).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Map, Value};

/// Why a JSON body could not be read: where, and what was wrong.
pub(crate) type Error = String;
type Result<T> = std::result::Result<T, Error>;

/// One JSON object being read, with its path for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: String) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => {
                Err(format!("{}: expected an object, found {}", path_or_body(&path), kind(other)))
            }
        }
    }

    /// The field named `name` (lowerCamelCase) or its snake_case form; JSON `null` is absent.
    fn get(&self, name: &str) -> Option<&'a Value> {
        let found = match self.map.get(name) {
            Some(v) => Some(v),
            None => self.map.get(&snake(name)),
        };
        found.filter(|v| !v.is_null())
    }

    fn at(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    fn fail<T>(&self, name: &str, what: &str) -> Result<T> {
        Err(format!("{}: {what}", self.at(name)))
    }

    fn string(&self, name: &str) -> Result<String> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => self.fail(name, &format!("expected a string, found {}", kind(other))),
        }
    }

    fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => {
                self.fail(name, &format!("expected true or false, found {}", kind(other)))
            }
        }
    }

    fn u64(&self, name: &str) -> Result<u64> {
        match self.get(name) {
            None => Ok(0),
            Some(v) => unsigned(v).ok_or_else(|| {
                format!(
                    "{}: expected an unsigned integer (a number or a decimal string)",
                    self.at(name)
                )
            }),
        }
    }

    fn i64(&self, name: &str) -> Result<i64> {
        match self.get(name) {
            None => Ok(0),
            Some(v) => signed(v).ok_or_else(|| {
                format!("{}: expected an integer (a number or a decimal string)", self.at(name))
            }),
        }
    }

    fn i32(&self, name: &str) -> Result<i32> {
        let n = self.i64(name)?;
        i32::try_from(n).or_else(|_| self.fail(name, "out of range for a 32-bit integer"))
    }

    fn u32(&self, name: &str) -> Result<u32> {
        let n = self.u64(name)?;
        u32::try_from(n).or_else(|_| self.fail(name, "out of range for a 32-bit integer"))
    }

    fn f64(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => double(v).map(Some).ok_or_else(|| {
                format!(
                    "{}: expected a number (or \"NaN\", \"Infinity\", \"-Infinity\")",
                    self.at(name)
                )
            }),
        }
    }

    /// A trace or span id: hex, of `len` bytes, or empty.
    fn id(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        let text = self.string(name)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        hex(&text, len).ok_or_else(|| {
            format!("{}: expected {} hex digits, found {:?}", self.at(name), len * 2, clip(&text))
        })
    }

    fn objects<T>(&self, name: &str, each: impl Fn(Obj<'a>) -> Result<T>) -> Result<Vec<T>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| each(Obj::new(item, format!("{}[{i}]", self.at(name)))?))
                .collect(),
            Some(other) => self.fail(name, &format!("expected an array, found {}", kind(other))),
        }
    }

    fn object(&self, name: &str) -> Result<Option<Obj<'a>>> {
        self.get(name).map(|v| Obj::new(v, self.at(name))).transpose()
    }

    fn attributes(&self, name: &str) -> Result<Vec<KeyValue>> {
        self.objects(name, |kv| {
            Ok(KeyValue {
                key: kv.string("key")?,
                value: kv.object("value")?.map(|v| any_value(&v)).transpose()?,
                ..KeyValue::default()
            })
        })
    }
}

fn path_or_body(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unsigned(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn signed(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn double(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.trim().parse().ok(),
        },
        _ => None,
    }
}

fn hex(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

fn any_value(obj: &Obj<'_>) -> Result<AnyValue> {
    use any_value::Value as V;
    let value = if let Some(v) = obj.get("stringValue") {
        match v {
            Value::String(s) => Some(V::StringValue(s.clone())),
            other => {
                return obj
                    .fail("stringValue", &format!("expected a string, found {}", kind(other)));
            }
        }
    } else if obj.get("boolValue").is_some() {
        Some(V::BoolValue(obj.bool("boolValue")?))
    } else if obj.get("intValue").is_some() {
        Some(V::IntValue(obj.i64("intValue")?))
    } else if obj.get("doubleValue").is_some() {
        obj.f64("doubleValue")?.map(V::DoubleValue)
    } else if let Some(array) = obj.object("arrayValue")? {
        Some(V::ArrayValue(ArrayValue { values: array.objects("values", |v| any_value(&v))? }))
    } else if let Some(list) = obj.object("kvlistValue")? {
        Some(V::KvlistValue(KeyValueList { values: list.attributes("values")? }))
    } else if obj.get("bytesValue").is_some() {
        // Kept as the base64 text it is sent as: bytes become text in the store anyway.
        Some(V::StringValue(obj.string("bytesValue")?))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn resource(obj: &Obj<'_>) -> Result<Option<Resource>> {
    obj.object("resource")?
        .map(|r| Ok(Resource { attributes: r.attributes("attributes")?, ..Resource::default() }))
        .transpose()
}

fn scope(obj: &Obj<'_>) -> Result<Option<InstrumentationScope>> {
    obj.object("scope")?
        .map(|s| {
            Ok(InstrumentationScope {
                name: s.string("name")?,
                version: s.string("version")?,
                attributes: s.attributes("attributes")?,
                ..InstrumentationScope::default()
            })
        })
        .transpose()
}

fn root(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| format!("body: not JSON: {e}"))
}

/// A trace export request.
pub(crate) fn traces(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let value = root(body)?;
    let top = Obj::new(&value, String::new())?;
    Ok(ExportTraceServiceRequest {
        resource_spans: top.objects("resourceSpans", |rs| {
            Ok(ResourceSpans {
                resource: resource(&rs)?,
                scope_spans: rs.objects("scopeSpans", |ss| {
                    Ok(ScopeSpans {
                        scope: scope(&ss)?,
                        spans: ss.objects("spans", |s| span(&s))?,
                        ..ScopeSpans::default()
                    })
                })?,
                ..ResourceSpans::default()
            })
        })?,
    })
}

fn span(s: &Obj<'_>) -> Result<Span> {
    Ok(Span {
        trace_id: s.id("traceId", 16)?,
        span_id: s.id("spanId", 8)?,
        parent_span_id: s.id("parentSpanId", 8)?,
        trace_state: s.string("traceState")?,
        flags: s.u32("flags")?,
        name: s.string("name")?,
        kind: s.i32("kind")?,
        start_time_unix_nano: s.u64("startTimeUnixNano")?,
        end_time_unix_nano: s.u64("endTimeUnixNano")?,
        attributes: s.attributes("attributes")?,
        dropped_attributes_count: s.u32("droppedAttributesCount")?,
        links: s.objects("links", |l| {
            Ok(span::Link {
                trace_id: l.id("traceId", 16)?,
                span_id: l.id("spanId", 8)?,
                attributes: l.attributes("attributes")?,
                ..span::Link::default()
            })
        })?,
        status: s
            .object("status")?
            .map(|st| {
                Ok::<_, Error>(Status { code: st.i32("code")?, message: st.string("message")? })
            })
            .transpose()?,
        ..Span::default()
    })
}

/// A logs export request.
pub(crate) fn logs(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let value = root(body)?;
    let top = Obj::new(&value, String::new())?;
    Ok(ExportLogsServiceRequest {
        resource_logs: top.objects("resourceLogs", |rl| {
            Ok(ResourceLogs {
                resource: resource(&rl)?,
                scope_logs: rl.objects("scopeLogs", |sl| {
                    Ok(ScopeLogs {
                        scope: scope(&sl)?,
                        log_records: sl.objects("logRecords", |r| {
                            Ok(LogRecord {
                                time_unix_nano: r.u64("timeUnixNano")?,
                                observed_time_unix_nano: r.u64("observedTimeUnixNano")?,
                                severity_number: r.i32("severityNumber")?,
                                severity_text: r.string("severityText")?,
                                body: r.object("body")?.map(|b| any_value(&b)).transpose()?,
                                attributes: r.attributes("attributes")?,
                                dropped_attributes_count: r.u32("droppedAttributesCount")?,
                                flags: r.u32("flags")?,
                                trace_id: r.id("traceId", 16)?,
                                span_id: r.id("spanId", 8)?,
                                event_name: r.string("eventName")?,
                            })
                        })?,
                        ..ScopeLogs::default()
                    })
                })?,
                ..ResourceLogs::default()
            })
        })?,
    })
}

/// A metrics export request.
pub(crate) fn metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    let value = root(body)?;
    let top = Obj::new(&value, String::new())?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: top.objects("resourceMetrics", |rm| {
            Ok(ResourceMetrics {
                resource: resource(&rm)?,
                scope_metrics: rm.objects("scopeMetrics", |sm| {
                    Ok(ScopeMetrics {
                        scope: scope(&sm)?,
                        metrics: sm.objects("metrics", |m| metric(&m))?,
                        ..ScopeMetrics::default()
                    })
                })?,
                ..ResourceMetrics::default()
            })
        })?,
    })
}

fn number_point(p: &Obj<'_>) -> Result<NumberDataPoint> {
    let value = if p.get("asDouble").is_some() {
        p.f64("asDouble")?.map(number_data_point::Value::AsDouble)
    } else if p.get("asInt").is_some() {
        Some(number_data_point::Value::AsInt(p.i64("asInt")?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: p.attributes("attributes")?,
        start_time_unix_nano: p.u64("startTimeUnixNano")?,
        time_unix_nano: p.u64("timeUnixNano")?,
        flags: p.u32("flags")?,
        value,
        ..NumberDataPoint::default()
    })
}

fn metric(m: &Obj<'_>) -> Result<Metric> {
    let data = if let Some(g) = m.object("gauge")? {
        Some(metric::Data::Gauge(Gauge {
            data_points: g.objects("dataPoints", |p| number_point(&p))?,
        }))
    } else if let Some(s) = m.object("sum")? {
        Some(metric::Data::Sum(Sum {
            data_points: s.objects("dataPoints", |p| number_point(&p))?,
            aggregation_temporality: s.i32("aggregationTemporality")?,
            is_monotonic: s.bool("isMonotonic")?,
        }))
    } else if let Some(h) = m.object("histogram")? {
        Some(metric::Data::Histogram(Histogram {
            data_points: h.objects("dataPoints", |p| {
                Ok(HistogramDataPoint {
                    attributes: p.attributes("attributes")?,
                    start_time_unix_nano: p.u64("startTimeUnixNano")?,
                    time_unix_nano: p.u64("timeUnixNano")?,
                    count: p.u64("count")?,
                    sum: p.f64("sum")?,
                    min: p.f64("min")?,
                    max: p.f64("max")?,
                    flags: p.u32("flags")?,
                    ..HistogramDataPoint::default()
                })
            })?,
            aggregation_temporality: h.i32("aggregationTemporality")?,
        }))
    } else if let Some(h) = m.object("exponentialHistogram")? {
        Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: h.objects("dataPoints", |p| {
                Ok(ExponentialHistogramDataPoint {
                    attributes: p.attributes("attributes")?,
                    start_time_unix_nano: p.u64("startTimeUnixNano")?,
                    time_unix_nano: p.u64("timeUnixNano")?,
                    count: p.u64("count")?,
                    sum: p.f64("sum")?,
                    min: p.f64("min")?,
                    max: p.f64("max")?,
                    flags: p.u32("flags")?,
                    ..ExponentialHistogramDataPoint::default()
                })
            })?,
            aggregation_temporality: h.i32("aggregationTemporality")?,
        }))
    } else if let Some(s) = m.object("summary")? {
        Some(metric::Data::Summary(Summary {
            data_points: s.objects("dataPoints", |p| {
                Ok(SummaryDataPoint {
                    attributes: p.attributes("attributes")?,
                    start_time_unix_nano: p.u64("startTimeUnixNano")?,
                    time_unix_nano: p.u64("timeUnixNano")?,
                    count: p.u64("count")?,
                    sum: p.f64("sum")?.unwrap_or(0.0),
                    flags: p.u32("flags")?,
                    ..SummaryDataPoint::default()
                })
            })?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: m.string("name")?,
        description: m.string("description")?,
        unit: m.string("unit")?,
        data,
        ..Metric::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_int64_may_be_strings() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
            "name":"chat","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
            "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"812"}},
                          {"key":"n","value":{"intValue":5}}]}]}]}]}"#;
        let request = traces(body).expect("valid");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 1_000_000_000);
        let ints: Vec<_> = span.attributes.iter().map(|kv| kv.value.clone()).collect();
        assert_eq!(
            ints[0].as_ref().and_then(|v| v.value.clone()),
            Some(any_value::Value::IntValue(812))
        );
    }

    #[test]
    fn errors_name_the_place() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#;
        let err = traces(body).expect_err("bad id");
        assert!(
            err.starts_with("resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex"),
            "{err}"
        );
        let err = metrics(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"seven"}]}}]}]}]}"#)
            .expect_err("bad int");
        assert!(err.contains("dataPoints[0].asInt"), "{err}");
        assert!(traces(b"[1]").is_err());
    }

    #[test]
    fn metric_data_is_never_dropped_silently() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
            {"name":"g","gauge":{"dataPoints":[{"asDouble":1.5}]}},
            {"name":"s","sum":{"isMonotonic":true,"aggregationTemporality":1,"dataPoints":[{"asInt":"7"}]}},
            {"name":"h","histogram":{"dataPoints":[{"count":"3","sum":6.0}]}}]}]}]}"#;
        let request = metrics(body).expect("valid");
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        assert!(metrics.iter().all(|m| m.data.is_some()));
        match &metrics[1].data {
            Some(metric::Data::Sum(s)) => {
                assert_eq!(s.data_points[0].value, Some(number_data_point::Value::AsInt(7)));
            }
            other => panic!("{other:?}"),
        }
    }
}
