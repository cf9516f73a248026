//! OTLP/gRPC into the receiver: the OpenTelemetry SDK's own tonic exporters (spans, logs,
//! metrics) as the producer, and a plain tonic client for what no exporter sends (truncated
//! messages, oversized ones, no token, a flood).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mission_sdk::{MissionControl, OtlpReceiverConfig};
use opentelemetry::KeyValue as OtelKeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::Code;
use tonic_types::StatusExt as _;

use super::temp_dir::TempDir;
use super::{
    Gate, HalfPost, PROTOBUF, control, genai_spans, held_pipeline, rows, s, until_in_flight,
    until_throttled,
};

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const TOKEN: &str = "acme-token-0000000001";

fn loopback_grpc(config: OtlpReceiverConfig) -> OtlpReceiverConfig {
    config.with_grpc_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn metadata(token: &str) -> tonic::metadata::MetadataMap {
    let mut map = tonic::metadata::MetadataMap::new();
    map.insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    map
}

/// One unary OTLP call of any message (a raw one included) to `path`, with a token or none,
/// optionally gzip-compressed.
async fn call<M: prost::Message + Send + Sync + 'static>(
    channel: tonic::transport::Channel,
    message: M,
    token: Option<&str>,
    gzip: bool,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    if gzip {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready().await.map_err(|e| tonic::Status::unknown(e.to_string()))?;
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        *request.metadata_mut() = metadata(token);
    }
    let codec = tonic_prost::ProstCodec::<M, ExportTraceServiceResponse>::default();
    grpc.unary(request, http::uri::PathAndQuery::from_static(TRACES), codec)
        .await
        .map(tonic::Response::into_inner)
}

async fn connect(endpoint: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// A request whose field 1 (`resource_spans`) holds bytes of our choosing: what a sender with
/// a broken encoder, or a connection cut short, would produce.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSpans {
    #[prost(bytes = "vec", repeated, tag = "1")]
    resource_spans: Vec<Vec<u8>>,
}

#[test]
fn the_opentelemetry_sdk_grpc_exporters_deliver_exact_spans_logs_and_metrics() {
    let dir = TempDir::new("otlp-grpc-sdk");
    let control = control(&dir);
    let receiver = control
        .serve_otlp(loopback_grpc(OtlpReceiverConfig::loopback(0)).with_tenant_token(TOKEN, "acme"))
        .expect("serve");
    let endpoint = receiver.grpc_endpoint().expect("gRPC is served");
    assert_ne!(receiver.grpc_local_addr().expect("an address").port(), 0);
    let rt = runtime();
    let _inside = rt.enter(); // tonic's channels are made inside a runtime
    let resource =
        opentelemetry_sdk::Resource::builder().with_service_name("checkout-service").build();

    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .with_metadata(metadata(TOKEN))
        .build()
        .expect("span exporter");
    let traces = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let tracer = traces.tracer("grpc-test");
    let root = tracer
        .span_builder("invoke_agent support-bot")
        .with_attributes([
            OtelKeyValue::new("gen_ai.operation.name", "invoke_agent"),
            OtelKeyValue::new("gen_ai.agent.name", "support-bot"),
        ])
        .start(&tracer);
    let cx = opentelemetry::Context::current_with_span(root);
    let mut chat = tracer
        .span_builder("chat gpt-4o-mini")
        .with_attributes([
            OtelKeyValue::new("gen_ai.operation.name", "chat"),
            OtelKeyValue::new("gen_ai.provider.name", "openai"),
            OtelKeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
            OtelKeyValue::new("gen_ai.usage.input_tokens", 812_i64),
            OtelKeyValue::new("gen_ai.usage.output_tokens", 64_i64),
            OtelKeyValue::new("app.region", "eu-west-1"),
        ])
        .start_with_context(&tracer, &cx);
    let (trace_id, chat_id) = (chat.span_context().trace_id(), chat.span_context().span_id());
    chat.end();
    cx.span().end();
    traces.shutdown().expect("spans exported");

    let logs_exporter = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .with_metadata(metadata(TOKEN))
        .build()
        .expect("log exporter");
    let logs = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_batch_exporter(logs_exporter)
        .with_resource(resource.clone())
        .build();
    let logger = logs.logger("grpc-test");
    let mut record = logger.create_log_record();
    record.set_body("retrying".into());
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.add_attribute("attempt", 2_i64);
    record.set_trace_context(trace_id, chat_id, None);
    logger.emit(record);
    logs.shutdown().expect("logs exported");

    let metrics_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .with_metadata(metadata(TOKEN))
        .build()
        .expect("metric exporter");
    let metrics = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(metrics_exporter)
        .with_resource(resource)
        .build();
    metrics.meter("grpc-test").u64_counter("tokens.used").build().add(876, &[]);
    metrics.shutdown().expect("metrics exported"); // one collection, one export

    let rows = rows(&control);
    let stats = receiver.stats();
    assert_eq!((stats.spans, stats.logs, stats.metric_points), (2, 1, 1), "{stats:?}");
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!(rows.len(), 4, "{rows:#?}");
    // The token's tenant, not the host's.
    assert!(rows.iter().all(|r| r.tenant == "acme"), "{rows:#?}");
    let trace = trace_id.to_string();
    let root = rows.iter().find(|r| r.kind == "agent_step").expect("the root");
    let chat = rows.iter().find(|r| r.kind == "llm_call").expect("the chat");
    assert_eq!((root.name.as_str(), root.parent_span_id), ("invoke_agent", None));
    assert_eq!(chat.parent_span_id, Some(root.span_id.expect("an id")));
    assert_eq!(chat.thread_id.as_deref(), Some(trace.as_str()));
    assert_eq!((root.agent.as_str(), chat.agent.as_str()), ("support-bot", "support-bot"));
    assert_eq!(
        (chat.model.as_deref(), chat.provider.as_deref(), chat.input_tokens, chat.output_tokens),
        (Some("gpt-4o-mini"), Some("openai"), Some(812), Some(64))
    );
    let expected = (812.0 * 0.15 + 64.0 * 0.60) / 1e6;
    assert!((chat.cost_usd.expect("priced") - expected).abs() < 1e-12, "{:?}", chat.cost_usd);
    assert_eq!(chat.attribute("app.region"), Some("eu-west-1"));
    let log = rows.iter().find(|r| r.kind == "log").expect("the log");
    assert_eq!((log.level.as_deref(), log.message.as_deref()), (Some("warn"), Some("retrying")));
    assert_eq!(log.thread_id.as_deref(), Some(trace.as_str()));
    assert_eq!(log.span_id, chat.span_id);
    assert_eq!(log.attribute("attempt"), Some("2"));
    let metric = rows.iter().find(|r| r.kind == "metric").expect("the metric point");
    assert_eq!((metric.name.as_str(), metric.value), ("tokens.used", Some(876.0)));
}

#[test]
fn bad_grpc_input_gets_its_status_is_counted_and_the_receiver_keeps_serving() {
    let dir = TempDir::new("otlp-grpc-bad");
    let control = control(&dir);
    let receiver = control
        .serve_otlp(
            loopback_grpc(OtlpReceiverConfig::loopback(0))
                .with_token(TOKEN)
                .with_max_body_bytes(64 * 1024),
        )
        .expect("serve");
    let rt = runtime();
    let channel = rt.block_on(connect(receiver.grpc_endpoint().expect("gRPC")));
    let send = |message: RawSpans, token: Option<&str>, gzip: bool| {
        rt.block_on(call(channel.clone(), message, token, gzip))
    };
    let good = genai_spans(vec![]);
    let whole = good.resource_spans[0].clone();
    let encoded = prost::Message::encode_to_vec(&whole);

    // No token, and a wrong one: UNAUTHENTICATED, before the message is read.
    let raw = |bytes: Vec<u8>| RawSpans { resource_spans: vec![bytes] };
    for token in [None, Some("not-the-token-00000001")] {
        let status = send(raw(encoded.clone()), token, false).expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    // A resource cut short: INVALID_ARGUMENT with the reason.
    let status =
        send(raw(encoded[..encoded.len() - 7].to_vec()), Some(TOKEN), false).expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("not valid protobuf"), "{status:?}");
    assert!(status.get_details_retry_info().is_none());
    // Larger than the limit, plainly and once inflated: RESOURCE_EXHAUSTED, not to be retried.
    for gzip in [false, true] {
        let status = send(raw(vec![b'x'; 100 * 1024]), Some(TOKEN), gzip).expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.get_details_retry_info().is_none(), "no RetryInfo: {status:?}");
        assert!(status.message().contains("larger than 65536 bytes"), "{status:?}");
    }
    // Still serving: a good request, gzip-compressed, is recorded.
    let ok = rt
        .block_on(call(channel.clone(), good, Some(TOKEN), true))
        .expect("a good request is accepted");
    assert!(ok.partial_success.is_none());
    let stats = receiver.stats();
    assert_eq!(
        (stats.requests, stats.unauthorized, stats.malformed, stats.too_large, stats.spans),
        (6, 2, 1, 2, 3),
        "{stats:?}"
    );
    assert!(stats.last_error.is_some_and(|e| e.contains("larger than")));
    assert_eq!(rows(&control).len(), 3);
}

#[test]
fn a_partly_refused_grpc_request_reports_partial_success() {
    let dir = TempDir::new("otlp-grpc-partial");
    let control = control(&dir);
    let receiver = control
        .serve_otlp(loopback_grpc(OtlpReceiverConfig::loopback(0)).with_tenant_token(TOKEN, "acme"))
        .expect("serve");
    let rt = runtime();
    let channel = rt.block_on(connect(receiver.grpc_endpoint().expect("gRPC")));
    // Two resources: one naming another tenant (refused for a tenant token), one naming none.
    let mut request = genai_spans(vec![s("mission.tenant", "globex")]);
    request.resource_spans.extend(genai_spans(vec![]).resource_spans);
    let answer = rt.block_on(call(channel, request, Some(TOKEN), false)).expect("accepted");
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 3, "{partial:?}");
    assert!(!partial.error_message.is_empty());
    let stats = receiver.stats();
    assert_eq!((stats.spans, stats.rejected_items), (3, 3), "{stats:?}");
}

#[test]
fn a_full_pipeline_answers_resource_exhausted_with_retry_info_and_loses_nothing() {
    let (control, gate, spans_seen): (MissionControl, Gate, _) = held_pipeline();
    let receiver = control
        .serve_otlp(
            loopback_grpc(OtlpReceiverConfig::loopback(0))
                .with_queue_capacity(100)
                // Every sender in flight at once: the queue throttles, not `max_in_flight`.
                .with_max_in_flight(150)
                .with_retry_after(Duration::from_secs(2)),
        )
        .expect("serve");
    let rt = runtime();
    let channel = rt.block_on(connect(receiver.grpc_endpoint().expect("gRPC")));
    let request = Arc::new(genai_spans(vec![]));
    // As over HTTP: more spans at once than the held pipeline and the queue can take.
    const SENDERS: u64 = 150;
    let calls: Vec<_> = (0..SENDERS)
        .map(|_| rt.spawn(call(channel.clone(), (*request).clone(), None, false)))
        .collect();
    until_throttled(&receiver, SENDERS, 100);
    gate.open();
    let answers: Vec<Result<ExportTraceServiceResponse, tonic::Status>> =
        calls.into_iter().map(|c| rt.block_on(c).expect("call")).collect();
    let throttled: Vec<&tonic::Status> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(!throttled.is_empty());
    for status in &throttled {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(2)));
        assert!(status.message().contains("queue is full"), "not max_in_flight: {status:?}");
    }
    let acknowledged = answers.iter().filter(|a| a.is_ok()).count() as u64;
    control.flush().expect("flush");
    assert_eq!(*spans_seen.lock().expect("seen"), acknowledged * 3, "every acknowledged span");
    let stats = receiver.stats();
    assert_eq!((stats.spans, stats.throttled), (acknowledged * 3, throttled.len() as u64));
    assert_eq!(control.health().accounting.dropped, 0);
}

#[test]
fn max_in_flight_is_shared_by_http_and_grpc() {
    let dir = TempDir::new("otlp-grpc-in-flight");
    let control = control(&dir);
    let receiver = control
        .serve_otlp(loopback_grpc(OtlpReceiverConfig::loopback(0)).with_max_in_flight(1))
        .expect("serve");
    let body = prost::Message::encode_to_vec(&genai_spans(vec![]));
    // An HTTP request whose body is held back holds the one permit.
    let held = HalfPost::begin(receiver.local_addr(), "/v1/traces", &[PROTOBUF], body.len());
    until_in_flight(&receiver, 1);
    let rt = runtime();
    let channel = rt.block_on(connect(receiver.grpc_endpoint().expect("gRPC")));
    let status = rt
        .block_on(call(channel.clone(), genai_spans(vec![]), None, false))
        .expect_err("throttled");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    assert_eq!(status.get_details_error_info().expect("ErrorInfo").reason, "THROTTLED");
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.throttled, stats.in_flight), (1, 1, 1), "{stats:?}");
    assert_eq!(held.finish(&body).status, 200);
    // The permit is back: gRPC is answered.
    rt.block_on(call(channel, genai_spans(vec![]), None, false)).expect("exported");
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.spans, stats.in_flight), (3, 6, 0), "{stats:?}");
    assert_eq!(rows(&control).len(), 6);
}

#[test]
fn grpc_off_loopback_needs_tokens() {
    let config = OtlpReceiverConfig::loopback(0).with_grpc_addr(SocketAddr::from(([0; 4], 0)));
    let err = config.check().expect_err("no tokens");
    assert!(err.to_string().contains("gRPC"), "{err}");
    assert!(config.with_token(TOKEN).check().is_ok());
}

/// The exporter's disk spill on the gRPC path: an agent exporting over OTLP/gRPC to our
/// receiver, which is shut down (connections refused) and started again on the same port.
/// What the agent records meanwhile waits on disk and arrives once, in order, when it is back.
#[test]
fn spans_spilled_while_the_grpc_receiver_is_down_arrive_once_when_it_returns() {
    let (backend_dir, agent_dir, spill) = (
        TempDir::new("grpc-spill-backend"),
        TempDir::new("grpc-spill-agent"),
        TempDir::new("grpc-spill"),
    );
    let backend = control(&backend_dir);
    let receiver =
        backend.serve_otlp(loopback_grpc(OtlpReceiverConfig::loopback(0))).expect("serve");
    let grpc = receiver.grpc_local_addr().expect("gRPC is served");
    let agent = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&agent_dir.0)
        .without_models()
        .with_otlp(
            mission_sdk::OtlpConfig::grpc(&format!("http://{grpc}"))
                .with_logs(false)
                .with_metrics(false)
                .with_batch_size(10)
                .with_batch_delay(Duration::from_millis(20))
                .with_flush_timeout(Duration::from_secs(60))
                .with_spill_dir(&spill.0),
        )
        .build()
        .expect("agent");
    let record = |from: usize, to: usize| {
        let thread = agent.agent("spill-bot").thread();
        for i in from..to {
            drop(thread.tool_call(&format!("t{i:05}")));
        }
        std::mem::forget(thread);
    };
    let stats = agent.otlp_stats_reader().expect("export is on");
    let wait_for = |what: &str, done: &dyn Fn(&mission_sdk::OtlpStats) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let s = stats.stats();
            if done(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {s:#?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    record(0, 5);
    agent.flush().expect("the receiver is up");

    receiver.shutdown();
    record(5, 35);
    let s = wait_for("30 spans spilled", &|s| s.spilled == 30 && s.queued == 0);
    assert!(!s.backend_up && s.replayed == 0, "{s:#?}");

    let again = backend
        .serve_otlp(OtlpReceiverConfig::loopback(0).with_grpc_addr(grpc))
        .expect("the same gRPC port again");
    agent.flush().expect("the receiver is back");
    let s = wait_for("everything exported", &|s| s.exported == 35);
    assert_eq!((s.spilled, s.replayed, s.spill_queued_spans), (30, 30, 0), "{s:#?}");
    agent.shutdown();
    again.shutdown();

    let names: Vec<String> = rows(&backend)
        .into_iter()
        .filter(|r| r.kind == "tool_call")
        .filter_map(|r| r.name.rsplit(' ').next().map(str::to_owned))
        .collect();
    let want: Vec<String> = (0..35).map(|i| format!("t{i:05}")).collect();
    assert_eq!(names, want, "each span once, in the order recorded");
    backend.shutdown();
}
