//! The OTLP receiver (`MissionControl::serve_otlp`) with real OTLP bodies built with
//! `opentelemetry-proto`'s messages, over a real socket: protobuf and JSON, gzip, bad input,
//! tokens and tenants, backpressure, and our own exporter sending to it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mission_core::{Event, EventBody, FnSink, RecorderConfig, SpanKind, Status};
use mission_sdk::{EventFilter, MissionControl, OtlpConfig, OtlpReceiverConfig};
use mission_store::EventRow;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status as OtlpStatus,
};
use prost::Message as _;

/// The same receiver over OTLP/gRPC.
#[path = "otlp_receiver/grpc.rs"]
mod grpc;
#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const T0: u64 = 1_780_000_000_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}
fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}
fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource { attributes: attrs, ..Resource::default() })
}

fn span(id: u8, parent: Option<u8>, name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| vec![0, 0, 0, 0, 0, 0, 0, p]).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: T0 + u64::from(id) * 1_000,
        end_time_unix_nano: T0 + u64::from(id) * 1_000 + 5_000_000,
        attributes,
        ..Span::default()
    }
}

/// An agent run with the GenAI conventions of several versions: a root `invoke_agent` naming
/// the agent, an LLM call with the older names, a tool call that failed, an unknown attribute.
fn genai_spans(resource_attrs: Vec<KeyValue>) -> ExportTraceServiceRequest {
    let mut tool = span(
        3,
        Some(1),
        "execute_tool lookup_order",
        vec![s("gen_ai.operation.name", "execute_tool"), s("gen_ai.tool.name", "lookup_order")],
    );
    tool.status = Some(OtlpStatus { code: 2, message: "order service timed out".into() });
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(resource_attrs),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(
                        1,
                        None,
                        "invoke_agent support-bot",
                        vec![
                            s("gen_ai.operation.name", "invoke_agent"),
                            s("gen_ai.agent.name", "support-bot"),
                        ],
                    ),
                    span(
                        2,
                        Some(1),
                        "chat gpt-4o-mini",
                        vec![
                            s("gen_ai.operation.name", "chat"),
                            s("gen_ai.system", "openai"),
                            s("gen_ai.request.model", "gpt-4o-mini"),
                            i("gen_ai.usage.prompt_tokens", 812),
                            i("gen_ai.usage.completion_tokens", 64),
                            i("gen_ai.usage.cache_read_input_tokens", 512),
                            s("app.region", "eu-west-1"),
                        ],
                    ),
                    tool,
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// One HTTP/1.1 request over a fresh connection; the status, headers (lowercase) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    HalfPost::begin(addr, path, headers, body.len()).finish(body)
}

/// A POST whose head (with its `Content-Length`) is sent, its body not yet.
struct HalfPost(TcpStream);

impl HalfPost {
    fn begin(addr: SocketAddr, path: &str, headers: &[(&str, &str)], length: usize) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {length}\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        Self(stream)
    }

    /// Sends the body and reads the answer.
    fn finish(mut self, body: &[u8]) -> Answer {
        // A server may answer (413) before reading everything: a failed write is then fine.
        let _ = self.0.write_all(body);
        read_answer(self.0)
    }
}

fn read_answer(mut stream: TcpStream) -> Answer {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked") {
        body = dechunk(&body);
    }
    Answer { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
    out
}

const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

fn control(dir: &TempDir) -> MissionControl {
    MissionControl::builder()
        .with_store_root(&dir.0)
        .with_tenant("home")
        .ignore_environment()
        .without_models()
        .build()
        .expect("control")
}

fn rows(control: &MissionControl) -> Vec<EventRow> {
    control.flush().expect("flush");
    let store = control.store().expect("a store").expect("open");
    let batches = store.query().batches().expect("query");
    let mut rows: Vec<EventRow> =
        batches.iter().flat_map(|b| EventRow::from_batch(b).expect("rows")).collect();
    rows.sort_by_key(|r| (r.time_ns, r.span_id));
    rows
}

#[test]
fn protobuf_genai_spans_are_stored_with_typed_fields() {
    let dir = TempDir::new("otlp-recv-proto");
    let control = control(&dir);
    let receiver = control.serve_otlp(OtlpReceiverConfig::loopback(0)).expect("serve");
    let body = genai_spans(vec![s("service.name", "checkout-service")]).encode_to_vec();
    let answer = post(receiver.local_addr(), "/v1/traces", &[PROTOBUF], &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/x-protobuf"));
    let response = ExportTraceServiceResponse::decode(&answer.body[..]).expect("a response");
    assert!(response.partial_success.is_none());

    let rows = rows(&control);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert!(rows.iter().all(|r| r.thread_id.as_deref() == Some(trace) && r.tenant == "home"));
    // The root names the agent; its children take it (not the service's name).
    assert!(rows.iter().all(|r| r.agent == "support-bot"), "{rows:#?}");
    let (root, chat, tool) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(
        (root.kind.as_str(), root.name.as_str(), root.parent_span_id),
        ("agent_step", "invoke_agent", None)
    );
    assert_eq!(
        (chat.kind.as_str(), chat.name.as_str(), chat.parent_span_id),
        ("llm_call", "chat", Some(1))
    );
    assert_eq!(chat.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(chat.provider.as_deref(), Some("openai"));
    assert_eq!(
        (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens),
        (Some(812), Some(512), Some(64))
    );
    // Priced by the built-in table: 300 fresh + 512 cached input, 64 output.
    let expected = (300.0 * 0.15 + 512.0 * 0.075 + 64.0 * 0.60) / 1e6;
    assert!((chat.cost_usd.expect("cost") - expected).abs() < 1e-12, "{:?}", chat.cost_usd);
    assert_eq!(chat.attribute("app.region"), Some("eu-west-1"));
    assert_eq!(chat.duration_ns, Some(5_000_000));
    assert_eq!((tool.kind.as_str(), tool.name.as_str()), ("tool_call", "lookup_order"));
    assert_eq!(tool.status.as_deref(), Some("error"));
    assert_eq!(tool.error_message.as_deref(), Some("order service timed out"));
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.spans, stats.malformed), (1, 3, 0));
    assert_eq!(control.health_report().otlp_receivers[0].spans, 3);
}

#[test]
fn json_gzip_logs_and_metrics_are_received() {
    let dir = TempDir::new("otlp-recv-json");
    let control = control(&dir);
    let receiver = control.serve_otlp(OtlpReceiverConfig::loopback(0)).expect("serve");
    let addr = receiver.local_addr();
    // OTLP/JSON as the specification writes it: hex ids, 64-bit integers as strings.
    let traces = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"ts-agent"}}}}]}},
        "scopeSpans":[{{"scope":{{"name":"@opentelemetry/instrumentation"}},"spans":[{{
          "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
          "name":"chat claude-sonnet-4","kind":3,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",
          "attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},
                        {{"key":"gen_ai.provider.name","value":{{"stringValue":"anthropic"}}}},
                        {{"key":"gen_ai.request.model","value":{{"stringValue":"claude-sonnet-4"}}}},
                        {{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"1000"}}}},
                        {{"key":"gen_ai.usage.output_tokens","value":{{"intValue":100}}}},
                        {{"key":"tags","value":{{"arrayValue":{{"values":[{{"stringValue":"a"}},{{"intValue":"2"}}]}}}}}}],
          "status":{{"code":1}}}}]}}]}}]}}"#,
        start = T0,
        end = T0 + 2_000_000_000,
    );
    let answer =
        post(addr, "/v1/traces", &[JSON, ("Content-Encoding", "gzip")], &gzip(traces.as_bytes()));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.text(), "{}");

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(vec![s("service.name", "ts-agent")]),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: T0 + 1,
                    severity_number: 13,
                    severity_text: "WARN".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("retrying".into())),
                    }),
                    attributes: vec![i("attempt", 2)],
                    trace_id: TRACE.to_vec(),
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, 9],
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let answer = post(
        addr,
        "/v1/logs",
        &[PROTOBUF, ("Content-Encoding", "gzip")],
        &gzip(&logs.encode_to_vec()),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());

    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(vec![s("service.name", "ts-agent")]),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    unit: "{item}".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![
                            NumberDataPoint {
                                time_unix_nano: T0 + 2,
                                value: Some(number_data_point::Value::AsInt(7)),
                                ..NumberDataPoint::default()
                            },
                            NumberDataPoint {
                                time_unix_nano: T0 + 3,
                                value: Some(number_data_point::Value::AsDouble(7.5)),
                                ..NumberDataPoint::default()
                            },
                        ],
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    let answer = post(addr, "/v1/metrics", &[PROTOBUF], &metrics.encode_to_vec());
    assert_eq!(answer.status, 200, "{}", answer.text());

    let rows = rows(&control);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let chat = rows.iter().find(|r| r.kind == "llm_call").expect("the span");
    assert_eq!(
        (chat.agent.as_str(), chat.model.as_deref(), chat.input_tokens),
        ("ts-agent", Some("claude-sonnet-4"), Some(1000))
    );
    assert_eq!(chat.thread_id.as_deref(), Some("5b8efff798038103d269b633813fc60c"));
    assert_eq!(chat.parent_span_id, Some(0xeee1_9b7e_c3c1_b173));
    assert_eq!(chat.status.as_deref(), Some("ok"));
    assert!(chat.cost_usd.is_some_and(|c| c > 0.0));
    assert_eq!(chat.attribute("tags"), Some(r#"["a",2]"#));
    let log = rows.iter().find(|r| r.kind == "log").expect("the log");
    assert_eq!((log.level.as_deref(), log.message.as_deref()), (Some("warn"), Some("retrying")));
    assert_eq!(log.thread_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(log.span_id, Some(9));
    assert_eq!(log.attribute("attempt"), Some("2"));
    let points: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == "metric")
        .map(|r| (r.name.as_str(), r.value, r.unit.as_deref()))
        .collect();
    assert_eq!(
        points,
        [("queue.depth", Some(7.0), Some("{item}")), ("queue.depth", Some(7.5), Some("{item}"))]
    );
}

#[test]
fn bad_input_is_refused_with_its_reason_and_counted() {
    let dir = TempDir::new("otlp-recv-bad");
    let control = control(&dir);
    let receiver = control
        .serve_otlp(OtlpReceiverConfig::loopback(0).with_max_body_bytes(64 * 1024))
        .expect("serve");
    let addr = receiver.local_addr();
    let good = genai_spans(vec![]).encode_to_vec();

    let truncated = post(addr, "/v1/traces", &[PROTOBUF], &good[..good.len() - 7]);
    assert_eq!(truncated.status, 400);
    assert!(truncated.text().contains("not valid protobuf"), "{}", truncated.text());

    let wrong_type = post(addr, "/v1/traces", &[("Content-Type", "text/plain")], &good);
    assert_eq!(wrong_type.status, 415);

    // A span name that is not UTF-8 (field 5 of the span).
    let mut bad_utf8 = genai_spans(vec![]);
    bad_utf8.resource_spans[0].scope_spans[0].spans[0].name = "NAME".into();
    let mut bytes = bad_utf8.encode_to_vec();
    let at = bytes.windows(4).position(|w| w == b"NAME").expect("the name");
    bytes[at] = 0xff;
    let invalid = post(addr, "/v1/traces", &[PROTOBUF], &bytes);
    assert_eq!(invalid.status, 400, "{}", invalid.text());
    let json_invalid = post(addr, "/v1/traces", &[JSON], b"{\"resourceSpans\": [\xff]}");
    assert_eq!(json_invalid.status, 400);
    let json_bad_id = post(
        addr,
        "/v1/traces",
        &[JSON],
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
    );
    assert_eq!(json_bad_id.status, 400);
    assert!(
        json_bad_id.text().contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        "{}",
        json_bad_id.text()
    );

    let huge = vec![b'x'; 10 << 20];
    let too_large = post(addr, "/v1/traces", &[PROTOBUF], &huge);
    assert_eq!(too_large.status, 413);
    // Small compressed, large decompressed.
    let bomb = post(
        addr,
        "/v1/traces",
        &[PROTOBUF, ("Content-Encoding", "gzip")],
        &gzip(&vec![0_u8; 1 << 20]),
    );
    assert_eq!(bomb.status, 413, "{}", bomb.text());
    let brotli = post(addr, "/v1/traces", &[PROTOBUF, ("Content-Encoding", "br")], &good);
    assert_eq!(brotli.status, 415);

    // A span without ids is refused alone, the OTLP way.
    let mut partial = genai_spans(vec![]);
    partial.resource_spans[0].scope_spans[0].spans[2].trace_id.clear();
    let answer = post(addr, "/v1/traces", &[PROTOBUF], &partial.encode_to_vec());
    assert_eq!(answer.status, 200);
    let response = ExportTraceServiceResponse::decode(&answer.body[..]).expect("response");
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("trace id"), "{}", partial.error_message);

    // Still serving.
    assert_eq!(post(addr, "/v1/traces", &[PROTOBUF], &good).status, 200);
    let stats = receiver.stats();
    assert_eq!((stats.malformed, stats.unsupported, stats.too_large), (4, 2, 2), "{stats:?}");
    assert_eq!((stats.rejected_items, stats.spans), (1, 5));
    assert!(stats.last_error.is_some());
    assert_eq!(rows(&control).len(), 5);
}

#[test]
fn huge_names_and_attribute_values_are_truncated_counted_and_bounded() {
    use mission_core::limits::{
        MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES, MAX_NAME_BYTES, TRUNCATION_MARKER,
    };
    let dir = TempDir::new("otlp-recv-huge");
    let control = control(&dir);
    let receiver = control.serve_otlp(OtlpReceiverConfig::loopback(0)).expect("serve");
    let addr = receiver.local_addr();
    // One span with a 1 MiB name, a 1 MiB attribute value under a 1 KiB key, and far more
    // attributes than an event keeps: 3 MiB of protobuf, under the 8 MiB default limit.
    let mut attributes = vec![s("app.blob", &"v".repeat(1 << 20)), s(&"k".repeat(1024), "x")];
    attributes.extend((0..200).map(|n| i(&format!("app.n{n}"), n)));
    let mut huge = span(1, None, &"n".repeat(1 << 20), attributes);
    huge.trace_id = vec![7; 16];
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(vec![s("service.name", &"s".repeat(1 << 20))]),
            scope_spans: vec![ScopeSpans { spans: vec![huge], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    };
    let body = request.encode_to_vec();
    assert!(body.len() > 3 << 20, "{}", body.len());
    let answer = post(addr, "/v1/traces", &[PROTOBUF], &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Still serving, and the next request is stored as sent.
    assert_eq!(
        post(addr, "/v1/traces", &[PROTOBUF], &genai_spans(vec![]).encode_to_vec()).status,
        200
    );
    assert_eq!(receiver.stats().spans, 4);
    let rows = rows(&control);
    assert_eq!(rows.len(), 4);
    let row = rows.iter().find(|r| r.thread_id.as_deref() == Some(&"07".repeat(16))).expect("row");
    assert!(
        row.name.len() <= MAX_NAME_BYTES && row.name.ends_with(TRUNCATION_MARKER),
        "{}",
        row.name.len()
    );
    assert!(
        row.agent.len() <= MAX_NAME_BYTES && row.agent.ends_with(TRUNCATION_MARKER),
        "{}",
        row.agent.len()
    );
    assert!(row.attributes.len() <= MAX_ATTRIBUTES, "{}", row.attributes.len());
    for (key, value) in &row.attributes {
        assert!(key.len() <= MAX_NAME_BYTES, "{}", key.len());
        assert!(value.len() <= MAX_ATTRIBUTE_VALUE_BYTES, "{key}: {}", value.len());
    }
    let blob = row.attributes.iter().find(|(k, _)| k == "app.blob").expect("the blob, cut");
    assert!(blob.1.starts_with("vvv") && blob.1.ends_with(TRUNCATION_MARKER));
}

#[test]
fn settings_are_range_checked_and_tokens_map_to_tenants() {
    let dir = TempDir::new("otlp-recv-tokens");
    let control = control(&dir);
    let public = OtlpReceiverConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)));
    let err = control.serve_otlp(public).expect_err("no token off loopback");
    assert!(err.to_string().contains("without a bearer token"), "{err}");
    for bad in [
        OtlpReceiverConfig::loopback(0).with_max_body_bytes(10),
        OtlpReceiverConfig::loopback(0).with_queue_capacity(0),
        OtlpReceiverConfig::loopback(0).with_retry_after(Duration::ZERO),
    ] {
        let err = control.serve_otlp(bad).expect_err("out of range");
        assert!(err.to_string().contains("is outside"), "{err}");
    }

    let all = "every-tenant-token-0001";
    let acme = "acme-only-token-000001";
    let receiver = control
        .serve_otlp(OtlpReceiverConfig::loopback(0).with_token(all).with_tenant_token(acme, "acme"))
        .expect("serve");
    let addr = receiver.local_addr();
    let body = genai_spans(vec![]).encode_to_vec();
    assert_eq!(post(addr, "/v1/traces", &[PROTOBUF], &body).status, 401);
    assert_eq!(
        post(
            addr,
            "/v1/traces",
            &[PROTOBUF, ("Authorization", "Bearer not-a-token-at-all")],
            &body
        )
        .status,
        401
    );

    let bearer = |t: &str| format!("Bearer {t}");
    // A tenant token's data is its tenant's.
    let ok = post(addr, "/v1/traces", &[PROTOBUF, ("Authorization", &bearer(acme))], &body);
    assert_eq!(ok.status, 200);
    // It may not send for another tenant.
    let other = genai_spans(vec![s("mission.tenant", "globex")]).encode_to_vec();
    let refused = post(addr, "/v1/traces", &[PROTOBUF, ("Authorization", &bearer(acme))], &other);
    let partial = ExportTraceServiceResponse::decode(&refused.body[..])
        .expect("response")
        .partial_success
        .expect("refused");
    assert_eq!(partial.rejected_spans, 3);
    assert!(partial.error_message.contains("globex"), "{}", partial.error_message);
    // Nor name it on one span (what our exporter sends for an event of another tenant than its
    // resource's): that span is refused, the others are the token's tenant's.
    let mut one = genai_spans(vec![]);
    one.resource_spans[0].scope_spans[0].spans[2].attributes.push(s("mission.tenant", "globex"));
    let refused = post(
        addr,
        "/v1/traces",
        &[PROTOBUF, ("Authorization", &bearer(acme))],
        &one.encode_to_vec(),
    );
    let partial = ExportTraceServiceResponse::decode(&refused.body[..])
        .expect("response")
        .partial_success
        .expect("refused");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("globex"), "{}", partial.error_message);
    // A token for every tenant lets the resource choose, else the host's tenant.
    assert_eq!(
        post(addr, "/v1/traces", &[PROTOBUF, ("Authorization", &bearer(all))], &other).status,
        200
    );
    assert_eq!(
        post(addr, "/v1/traces", &[PROTOBUF, ("Authorization", &bearer(all))], &body).status,
        200
    );

    let mut tenants: Vec<String> = rows(&control).into_iter().map(|r| r.tenant).collect();
    tenants.sort();
    tenants.dedup();
    assert_eq!(tenants, ["acme", "globex", "home"]);
    assert_eq!(receiver.stats().unauthorized, 2);
}

/// A sink that holds the pipeline until opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().expect("gate");
        while !*open {
            open = cv.wait(open).expect("gate");
        }
    }
    fn open(&self) {
        *self.0.0.lock().expect("gate") = true;
        self.0.1.notify_all();
    }
}

/// A pipeline held shut: its sink waits for the gate (and then counts the spans it got), its
/// ring holds 64 events and drops the newest past that (so nothing waits in the recorder but
/// the receiver's queue).
fn held_pipeline() -> (MissionControl, Gate, Arc<Mutex<u64>>) {
    let gate = Gate::default();
    let held = gate.clone();
    let spans_seen = Arc::new(Mutex::new(0_u64));
    let seen = spans_seen.clone();
    let control = MissionControl::builder()
        .without_store()
        .ignore_environment()
        .without_models()
        .with_recorder_config(
            RecorderConfig::default()
                .with_ring_capacity(64)
                .with_backpressure(mission_core::Backpressure::DropNewest),
        )
        .with_sink(FnSink::new("gate", move |batch: &[Event]| {
            held.wait();
            *seen.lock().expect("seen") +=
                batch.iter().filter(|e| e.as_span().is_some()).count() as u64;
            Ok(())
        }))
        .build()
        .expect("control");
    (control, gate, spans_seen)
}

/// Waits until all `senders` requests reached `receiver` and one was throttled; then the
/// queue holds at most `capacity` events.
fn until_throttled(receiver: &mission_sdk::OtlpReceiver, senders: u64, capacity: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = receiver.stats();
        if stats.requests == senders && stats.throttled > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never throttled: {stats:?}");
        std::thread::yield_now();
    }
    let queued = receiver.stats().queued;
    assert!(queued <= capacity, "the queue is bounded: {queued}");
}

#[test]
fn a_full_pipeline_answers_429_and_loses_nothing_it_acknowledged() {
    let (control, gate, spans_seen) = held_pipeline();
    let receiver = control
        .serve_otlp(
            OtlpReceiverConfig::loopback(0)
                .with_queue_capacity(100)
                // Every sender in flight at once: the queue throttles, not `max_in_flight`.
                .with_max_in_flight(150)
                .with_retry_after(Duration::from_secs(2)),
        )
        .expect("serve");
    let addr = receiver.local_addr();
    let body = Arc::new(genai_spans(vec![]).encode_to_vec());
    // A fixed number of senders at once, more spans than the held pipeline can take (the batch
    // in the gated sink and the ring, at most 64 each, plus the queue's 100: 228 spans, 76
    // requests of 3): some are throttled whatever the machine's speed. The gate opens once
    // every request reached the receiver and one was throttled.
    const SENDERS: u64 = 150;
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || post(addr, "/v1/traces", &[PROTOBUF], &body))
        })
        .collect();
    until_throttled(&receiver, SENDERS, 100);
    gate.open();
    let answers: Vec<Answer> = senders.into_iter().map(|s| s.join().expect("sender")).collect();
    let throttled: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(!throttled.is_empty());
    assert!(throttled.iter().all(|a| a.header("retry-after") == Some("2")));
    assert!(throttled.iter().all(|a| a.text().contains("queue is full")), "not max_in_flight");
    let acknowledged = answers.iter().filter(|a| a.status == 200).count() as u64;
    assert_eq!(acknowledged + throttled.len() as u64, answers.len() as u64, "only 200 and 429");
    control.flush().expect("flush");
    assert_eq!(
        *spans_seen.lock().expect("seen"),
        acknowledged * 3,
        "every acknowledged span delivered, no other"
    );
    assert_eq!(receiver.stats().spans, acknowledged * 3);
    assert_eq!(control.health().accounting.dropped, 0);
}

/// Waits until `receiver` is answering `n` requests.
fn until_in_flight(receiver: &mission_sdk::OtlpReceiver, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.stats().in_flight != n {
        assert!(Instant::now() < deadline, "never {n} in flight: {:?}", receiver.stats());
        std::thread::yield_now();
    }
}

#[test]
fn requests_past_max_in_flight_are_throttled_before_their_body_is_read() {
    let dir = TempDir::new("otlp-recv-in-flight");
    let control = control(&dir);
    let err = control
        .serve_otlp(OtlpReceiverConfig::loopback(0).with_max_in_flight(0))
        .expect_err("out of range");
    assert!(err.to_string().contains("max_in_flight = 0 is outside 1..=4096"), "{err}");
    let receiver = control
        .serve_otlp(
            OtlpReceiverConfig::loopback(0)
                .with_max_in_flight(1)
                .with_retry_after(Duration::from_secs(3)),
        )
        .expect("serve");
    let addr = receiver.local_addr();
    let body = genai_spans(vec![]).encode_to_vec();
    // The first request's head arrives, its body is held back: it holds the one permit.
    let first = HalfPost::begin(addr, "/v1/traces", &[PROTOBUF], body.len());
    until_in_flight(&receiver, 1);
    let second = post(addr, "/v1/traces", &[PROTOBUF], &body);
    assert_eq!(second.status, 429, "{}", second.text());
    assert_eq!(second.header("retry-after"), Some("3"));
    assert!(second.text().contains("answering 1 requests already"), "{}", second.text());
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.throttled, stats.in_flight), (1, 1, 1), "{stats:?}");
    // The first one's body comes: it is answered and kept.
    let answer = first.finish(&body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.spans, stats.in_flight), (2, 3, 0), "{stats:?}");
    assert_eq!(rows(&control).len(), 3);
    // The permit is back: the next request is answered.
    assert_eq!(post(addr, "/v1/traces", &[PROTOBUF], &body).status, 200);
}

#[test]
fn our_exporter_to_our_receiver_keeps_the_fields_of_our_events() {
    let receiving = MissionControl::builder()
        .without_store()
        .ignore_environment()
        .without_models()
        .with_tenant("elsewhere")
        .build()
        .expect("receiving control");
    let received = receiving.subscribe(EventFilter::all(), 1000);
    let receiver = receiving.serve_otlp(OtlpReceiverConfig::loopback(0)).expect("serve");
    let sending = MissionControl::builder()
        .without_store()
        .ignore_environment()
        .without_models()
        .with_tenant("acme")
        .with_service_name("support-bot")
        .with_otlp(OtlpConfig::http(&receiver.endpoint()).with_metrics(false))
        .build()
        .expect("sending control");
    let sent = sending.subscribe(EventFilter::all(), 1000);
    let agent = sending.agent("support-bot");
    let thread = agent.thread();
    {
        let mut call = thread.llm_call("gpt-4o-mini", "openai");
        call.record_usage(812, 64).record_cached_tokens(512);
    }
    let mut tool = thread.tool_call("lookup_order");
    let failed: Result<u32, String> = Err("order service timed out".into());
    let _ = tool.check(failed);
    tool.end();
    thread.end();
    sending.flush().expect("export");
    receiving.flush().expect("flush");

    let drain = |sub: &mission_sdk::Subscription| {
        let mut events = Vec::new();
        while let Some(e) = sub.try_recv() {
            events.push(e);
        }
        events.sort_by_key(|e| (e.time, e.span_id.0));
        events
    };
    let sent: Vec<Event> = drain(&sent).into_iter().filter(|e| e.as_span().is_some()).collect();
    let received: Vec<Event> =
        drain(&received).into_iter().filter(|e| e.as_span().is_some()).collect();
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert_eq!(received.len(), sent.len(), "{received:#?}");
    for (a, b) in sent.iter().zip(&received) {
        assert_eq!(
            (a.thread_id, a.span_id, a.parent_span_id),
            (b.thread_id, b.span_id, b.parent_span_id)
        );
        assert_eq!(
            (a.tenant, a.agent, a.name, a.time),
            (b.tenant, b.agent, b.name, b.time),
            "{a:#?}\n{b:#?}"
        );
        let (x, y) = (a.as_span().expect("span"), b.as_span().expect("span"));
        assert_eq!((x.kind, x.status, x.duration_ns), (y.kind, y.status, y.duration_ns));
        assert_eq!(x.error_message, y.error_message);
        assert_eq!(x.llm, y.llm);
        let attrs = |e: &Event| {
            let mut v: Vec<(String, String)> = e
                .attributes
                .iter()
                .map(|at| (at.key.as_str().to_owned(), at.value.to_string()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(attrs(a), attrs(b), "{a:#?}\n{b:#?}");
    }
    assert!(
        received.iter().any(|e| e
            .as_span()
            .is_some_and(|s| s.kind == SpanKind::LlmCall && s.llm.cost_usd > 0.0))
    );
    assert!(received.iter().any(|e| e.as_span().is_some_and(|s| s.status == Status::Error)));
    assert!(matches!(received[0].body, EventBody::Span(_)));
}
