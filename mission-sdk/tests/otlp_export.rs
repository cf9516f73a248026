//! OTLP export checked against a real, independent receiver: Elastic's mockotlpserver (Node),
//! installed by the test command into `tests/otlp/node_modules`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mission_sdk::{MissionControl, OtlpConfig, OtlpSink};
use serde_json::Value;

struct Receiver {
    child: Child,
    http: String,
    grpc: String,
    spans: Arc<Mutex<Vec<Value>>>,
    logs: Arc<Mutex<Vec<Value>>>,
    metrics: Arc<Mutex<Vec<Value>>>,
    /// With [`Receiver::start_tls`]: the same receiver over TLS, and the headers of each
    /// OTLP/HTTP request that came that way.
    https: String,
    grpcs: String,
    tls_requests: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start(http_port: u16, grpc_port: u16) -> Self {
        Self::start_with(http_port, grpc_port, false)
    }

    /// A receiver also listening over TLS with the test certificate in `tests/tls/`.
    fn start_tls() -> Self {
        Self::start_with(0, 0, true)
    }

    fn start_with(http_port: u16, grpc_port: u16, tls: bool) -> Self {
        let script =
            std::env::var("MISSION_OTLP_RECEIVER").map(PathBuf::from).unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/otlp/receiver.js")
            });
        assert!(
            script.with_file_name("node_modules").exists(),
            "the OTLP receiver is not installed: run `npm ci` in tests/otlp (./scripts/test does)"
        );
        let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
        let tls_args =
            if tls { vec![certs.join("server.pem"), certs.join("server.key")] } else { vec![] };
        let mut child = Command::new("node")
            .arg(&script)
            .arg(http_port.to_string())
            .arg(grpc_port.to_string())
            .args(&tls_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed to run the OTLP receiver");
        let stdout = child.stdout.take().expect("stdout");
        let spans: Arc<Mutex<Vec<Value>>> = Arc::default();
        let logs: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sink = spans.clone();
        let log_sink = logs.clone();
        let metrics: Arc<Mutex<Vec<Value>>> = Arc::default();
        let metric_sink = metrics.clone();
        let tls_requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let tls_sink = tls_requests.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                if let Some(ready) = v.get("ready") {
                    let _ = ready_tx.send(ready.clone());
                } else if let Some(request) = v.get("tls_request") {
                    tls_sink.lock().expect("lock").push(request.clone());
                } else if v.get("log").is_some() {
                    log_sink.lock().expect("lock").push(v);
                } else if v.get("metric").is_some() {
                    metric_sink.lock().expect("lock").push(v);
                } else {
                    sink.lock().expect("lock").push(v);
                }
            }
        });
        let ready =
            ready_rx.recv_timeout(Duration::from_secs(30)).expect("the receiver did not start");
        let url = |k: &str| ready[k].as_str().unwrap_or("").trim_end_matches('/').to_owned();
        Self {
            child,
            http: url("http"),
            grpc: url("grpc"),
            spans,
            logs,
            metrics,
            https: url("https"),
            grpcs: url("grpcs"),
            tls_requests,
        }
    }

    fn port(url: &str) -> u16 {
        url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        Self::wait(&self.spans, n)
    }

    fn wait_for_logs(&self, n: usize) -> Vec<Value> {
        Self::wait(&self.logs, n)
    }

    fn wait(received: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = received.lock().expect("lock").clone();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_store(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mission-otlp-{name}-{}", std::process::id()))
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["span"]["attributes"][key]
}

/// An OTLP integer as the receiver prints it: a number, a decimal string, or a protobuf.js
/// `Long` object (`{low, high}`).
fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .or_else(|| Some((v["high"].as_i64()? << 32) | (v["low"].as_i64()? & 0xFFFF_FFFF)))
        .unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["span"]["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn record_workload(control: &MissionControl) -> String {
    let thread = control.agent("support-bot").thread();
    {
        let mut call = thread.llm_call("gpt-4o-mini", "openai");
        call.record_usage(812, 64).record_cached_tokens(512);
    }
    {
        let mut tool = thread.tool_call("web_search");
        tool.set_call_id("call_1").set_error("upstream returned 503");
    }
    let id = thread.id().to_string();
    thread.end();
    id
}

fn check_workload(spans: &[Value], thread_id: &str) {
    let root = by_name(spans, "invoke_agent support-bot");
    let chat = by_name(spans, "chat gpt-4o-mini");
    let tool = by_name(spans, "execute_tool web_search");
    let root_id = root["span"]["spanId"].as_str().expect("span id");
    for s in [root, chat, tool] {
        assert_eq!(s["span"]["traceId"], thread_id, "the thread id is the trace id");
        assert_eq!(attr(s, "gen_ai.agent.name"), "support-bot");
        assert_eq!(attr(s, "gen_ai.conversation.id"), thread_id);
        assert_eq!(s["resource"]["service.name"], "otlp-test");
        assert_eq!(s["resource"]["mission.tenant"], "acme");
        assert_eq!(s["scope"]["name"], "mission-control");
    }
    assert!(
        root["span"]
            .get("parentSpanId")
            .is_none_or(|p| p.as_str().is_none_or(|p| p.is_empty() || p == "0000000000000000"))
    );
    assert_eq!(chat["span"]["parentSpanId"], root_id);
    assert_eq!(tool["span"]["parentSpanId"], root_id);
    assert_eq!(attr(root, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attr(chat, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(chat, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(chat, "gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(attr(chat, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(int(attr(chat, "gen_ai.usage.input_tokens")), 812);
    assert_eq!(int(attr(chat, "gen_ai.usage.output_tokens")), 64);
    assert_eq!(int(attr(chat, "gen_ai.usage.cache_read.input_tokens")), 512);
    // Built-in price of gpt-4o-mini: 300 × $0.15/M + 512 × $0.075/M + 64 × $0.60/M.
    let cost = attr(chat, "gen_ai.usage.cost").as_f64().expect("cost");
    assert!((cost - (300.0 * 0.15 + 512.0 * 0.075 + 64.0 * 0.60) / 1e6).abs() < 1e-12, "{cost}");
    assert_eq!(chat["span"]["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(attr(tool, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(attr(tool, "gen_ai.tool.name"), "web_search");
    assert_eq!(attr(tool, "gen_ai.tool.call.id"), "call_1");
    assert_eq!(attr(tool, "error.type"), "error");
    assert_eq!(tool["span"]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(tool["span"]["status"]["message"], "upstream returned 503");
}

fn control_with(otlp: OtlpSink, store: &PathBuf) -> MissionControl {
    MissionControl::builder()
        .ignore_environment()
        .with_tenant("acme")
        .with_store_root(store)
        .with_sink(otlp)
        .build()
        .expect("build")
}

fn config(endpoint: OtlpConfig) -> OtlpConfig {
    endpoint
        .with_service_name("otlp-test")
        .with_tenant("acme")
        .with_batch_delay(Duration::from_millis(50))
}

#[test]
fn exports_genai_spans_over_http_protobuf() {
    let receiver = Receiver::start(0, 0);
    let store = temp_store("http");
    let otlp = OtlpSink::new(config(OtlpConfig::http(&receiver.http))).expect("exporter");
    let stats = otlp.stats_reader();
    let control = control_with(otlp, &store);
    let thread_id = record_workload(&control);
    control.flush().expect("flush waits for the export");
    let spans = receiver.wait_for(3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    check_workload(&spans, &thread_id);
    let s = stats.stats();
    assert_eq!(
        (s.accepted, s.exported, s.queued, s.dropped_queue_full, s.dropped_retry_expired),
        (3, 3, 0, 0, 0)
    );
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn exports_genai_spans_over_grpc() {
    let receiver = Receiver::start(0, 0);
    let store = temp_store("grpc");
    let otlp = OtlpSink::new(config(OtlpConfig::grpc(&receiver.grpc))).expect("exporter");
    let control = control_with(otlp, &store);
    let thread_id = record_workload(&control);
    control.flush().expect("flush");
    let spans = receiver.wait_for(3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    check_workload(&spans, &thread_id);
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

fn test_ca_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tls/ca.pem")
}

#[test]
fn exports_over_https_and_grpc_with_tls_trusting_the_configured_ca() {
    let receiver = Receiver::start_tls();
    for (name, endpoint) in
        [("https", OtlpConfig::http(&receiver.https)), ("grpcs", OtlpConfig::grpc(&receiver.grpcs))]
    {
        let before = receiver.spans.lock().expect("lock").len();
        let store = temp_store(name);
        let endpoint = endpoint.with_ca_file(test_ca_file()).with_header("x-api-key", "k-123");
        let otlp = OtlpSink::new(config(endpoint)).expect("exporter");
        let stats = otlp.stats_reader();
        let control = control_with(otlp, &store);
        let thread_id = record_workload(&control);
        control.flush().expect("flush waits for the export");
        let spans = receiver.wait_for(before + 3);
        assert_eq!(spans.len(), before + 3, "{name}: {spans:#?}");
        check_workload(&spans[before..], &thread_id);
        let s = stats.stats();
        assert_eq!((s.accepted, s.exported, s.failed_requests), (3, 3, 0), "{name}: {s:?}");
        drop(control);
        let _ = std::fs::remove_dir_all(&store);
    }
    // The OTLP/HTTP requests came over TLS with the configured header.
    let requests = receiver.tls_requests.lock().expect("lock").clone();
    let traces: Vec<&Value> = requests
        .iter()
        .filter(|r| r["line"].as_str().is_some_and(|l| l.starts_with("POST /v1/traces")))
        .collect();
    assert!(!traces.is_empty(), "{requests:#?}");
    for r in traces {
        assert_eq!(r["headers"]["x-api-key"], "k-123", "{r:#}");
        assert_eq!(r["headers"]["content-type"], "application/x-protobuf", "{r:#}");
    }
}

#[test]
fn an_untrusted_certificate_is_a_counted_failure_not_an_export() {
    let receiver = Receiver::start_tls();
    let store = temp_store("untrusted");
    // Only the system's roots: the test CA is not among them.
    let otlp = OtlpSink::new(
        config(OtlpConfig::http(&receiver.https))
            .with_retry_window(Duration::from_millis(300))
            .with_flush_timeout(Duration::from_secs(2)),
    )
    .expect("exporter");
    let stats = otlp.stats_reader();
    let control = control_with(otlp, &store);
    record_workload(&control);
    let _ = control.flush();
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = stats.stats();
        if s.dropped_retry_expired == 3 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((s.accepted, s.exported, s.dropped_retry_expired), (3, 0, 3), "{s:?}");
    assert!(s.failed_requests >= 1, "{s:?}");
    let why = s.last_error.clone().unwrap_or_default();
    assert!(why.contains("certificate") || why.contains("UnknownIssuer"), "{why}");
    assert!(receiver.spans.lock().expect("lock").is_empty(), "nothing got past the handshake");
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn tls_settings_are_checked_when_the_exporter_is_made() {
    let missing = OtlpSink::new(OtlpConfig::http("https://127.0.0.1:9").with_ca_file("/no/ca.pem"));
    let Err(err) = missing.map(|_| ()) else { panic!("a missing CA file is an error") };
    let err = err.to_string();
    assert!(err.contains("/no/ca.pem"), "{err}");
    let plain = OtlpSink::new(OtlpConfig::http("http://127.0.0.1:9").with_ca_file(test_ca_file()));
    let Err(err) = plain.map(|_| ()) else { panic!("a CA file for http:// is an error") };
    let err = err.to_string();
    assert!(err.contains("https://"), "{err}");
    let header = OtlpSink::new(OtlpConfig::grpc("http://127.0.0.1:9").with_header("bad name", "v"));
    let Err(err) = header.map(|_| ()) else { panic!("a bad header name is an error") };
    let err = err.to_string();
    assert!(err.contains("bad name"), "{err}");
}

#[test]
fn nothing_is_lost_across_a_receiver_restart_within_the_retry_window() {
    let first = Receiver::start(0, 0);
    let port = Receiver::port(&first.http);
    let store = temp_store("restart");
    let otlp = OtlpSink::new(config(
        OtlpConfig::http(&first.http).with_retry_window(Duration::from_secs(60)),
    ))
    .expect("exporter");
    let stats = otlp.stats_reader();
    let control = control_with(otlp, &store);
    record_workload(&control);
    control.flush().expect("flush");
    assert_eq!(first.wait_for(3).len(), 3);
    drop(first); // the backend goes away

    let ids: Vec<String> = (0..4).map(|_| record_workload(&control)).collect();
    // Let the exporter fail a few times against the missing backend.
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.stats().failed_requests < 2 {
        assert!(
            Instant::now() < deadline,
            "the exporter never tried the missing backend: {:?}",
            stats.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!stats.stats().backend_up);
    let second = Receiver::start(port, 0); // back on the same port
    control.flush().expect("flush after the backend returns");
    let spans = second.wait_for(12);
    assert_eq!(spans.len(), 12, "every span recorded while the backend was down arrives");
    for id in &ids {
        assert_eq!(spans.iter().filter(|s| s["span"]["traceId"] == id.as_str()).count(), 3);
    }
    let s = stats.stats();
    assert_eq!((s.exported, s.dropped_queue_full, s.dropped_retry_expired), (15, 0, 0), "{s:?}");
    assert!(s.failed_requests >= 2 && s.backend_up);
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn the_builder_wires_export_with_this_instance_s_service_and_tenant() {
    let receiver = Receiver::start(0, 0);
    let store = temp_store("builder");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_service_name("otlp-test")
        .with_tenant("acme")
        .with_store_root(&store)
        .with_otlp(OtlpConfig::http(&receiver.http).with_batch_delay(Duration::from_millis(50)))
        .build()
        .expect("build");
    let thread_id = record_workload(&control);
    control.flush().expect("flush");
    check_workload(&receiver.wait_for(3), &thread_id);
    let stats = control.otlp_stats().expect("export is on");
    assert_eq!((stats.exported, stats.queued), (3, 0));
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

fn check_logs(protocol_config: OtlpConfig, receiver: &Receiver, name: &str) {
    let store = temp_store(name);
    let otlp = OtlpSink::new(config(protocol_config)).expect("exporter");
    let stats = otlp.stats_reader();
    let control = control_with(otlp, &store);
    let thread = control.agent("support-bot").thread();
    let tool = thread.tool_call("web_search");
    tool.log(mission_sdk::Level::Warn, "retrying web_search");
    let (thread_id, span_id) = (thread.id().to_string(), tool.span_id().to_string());
    tool.end();
    thread.end();
    control.log(
        mission_sdk::Level::Info,
        "outside any thread",
        &[("attempt", mission_sdk::AttrValue::Int(2))],
    );
    control.flush().expect("flush");
    let logs = receiver.wait_for_logs(2);
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let inside =
        logs.iter().find(|l| l["log"]["body"] == "retrying web_search").expect("log in span");
    assert_eq!(inside["log"]["traceId"], thread_id.as_str());
    assert_eq!(inside["log"]["spanId"], span_id.as_str());
    assert_eq!(inside["log"]["severityText"], "warn");
    assert_eq!(inside["log"]["attributes"]["gen_ai.agent.name"], "support-bot");
    assert_eq!(inside["resource"]["service.name"], "otlp-test");
    let outside = logs.iter().find(|l| l["log"]["body"] == "outside any thread").expect("log");
    assert_eq!(int(&outside["log"]["attributes"]["attempt"]), 2);
    let s = stats.log_stats();
    assert_eq!((s.accepted, s.exported, s.queued), (2, 2, 0), "{s:?}");
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn exports_log_records_with_trace_context_over_http_and_grpc() {
    let receiver = Receiver::start(0, 0);
    check_logs(OtlpConfig::http(&receiver.http), &receiver, "logs-http");
    let receiver = Receiver::start(0, 0);
    check_logs(OtlpConfig::grpc(&receiver.grpc), &receiver, "logs-grpc");
}

fn check_metrics(protocol_config: OtlpConfig, receiver: &Receiver, name: &str) {
    let store = temp_store(name);
    let otlp = OtlpSink::new(config(protocol_config)).expect("exporter");
    let control = control_with(otlp, &store);
    record_workload(&control);
    control.flush().expect("flush exports the metrics too");
    let deadline = Instant::now() + Duration::from_secs(20);
    let named = |n: &str| {
        receiver.metrics.lock().expect("lock").iter().find(|m| m["metric"]["name"] == n).cloned()
    };
    while (named("gen_ai.client.token.usage").is_none()
        || named("gen_ai.client.operation.duration").is_none())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let tokens = named("gen_ai.client.token.usage").expect("token usage metric");
    assert_eq!(tokens["metric"]["unit"], "{token}");
    assert_eq!(tokens["resource"]["service.name"], "otlp-test");
    let points = tokens["metric"]["histogram"]["dataPoints"].as_array().expect("points").clone();
    let point = |kind: &str| {
        points
            .iter()
            .find(|p| p["attributes"]["gen_ai.token.type"] == kind)
            .cloned()
            .expect("data point")
    };
    for (kind, sum) in [("input", 812.0), ("output", 64.0)] {
        let p = point(kind);
        assert_eq!(int(&p["count"]), 1);
        assert_eq!(p["sum"].as_f64(), Some(sum));
        assert_eq!(p["attributes"]["gen_ai.request.model"], "gpt-4o-mini");
        assert_eq!(p["attributes"]["gen_ai.provider.name"], "openai");
        assert_eq!(p["attributes"]["gen_ai.operation.name"], "chat");
    }
    let duration = named("gen_ai.client.operation.duration").expect("duration metric");
    assert_eq!(duration["metric"]["unit"], "s");
    assert_eq!(int(&duration["metric"]["histogram"]["dataPoints"][0]["count"]), 1);
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn exports_genai_metrics_over_http_and_grpc() {
    let receiver = Receiver::start(0, 0);
    check_metrics(OtlpConfig::http(&receiver.http), &receiver, "metrics-http");
    let receiver = Receiver::start(0, 0);
    check_metrics(OtlpConfig::grpc(&receiver.grpc), &receiver, "metrics-grpc");
}

#[test]
fn a_bad_endpoint_is_a_typed_error() {
    let err = OtlpSink::new(OtlpConfig::http("localhost:4318")).unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
}

#[test]
fn exports_anomalies_as_warn_log_records() {
    let receiver = Receiver::start(0, 0);
    let store = temp_store("anomaly-log");
    let otlp = OtlpSink::new(config(OtlpConfig::http(&receiver.http))).expect("exporter");
    let control = control_with(otlp, &store);
    let mut event = mission_sdk::Event::new(
        mission_core::Symbol::intern("latency_ms"),
        mission_sdk::EventBody::Anomaly(mission_core::AnomalyEvent {
            detector: mission_core::Symbol::intern("ensemble"),
            score: 0.9,
            value: 7200.0,
            expected: 2400.0,
            lower: 1500.0,
            upper: 3900.0,
        }),
    );
    event.agent = mission_core::Symbol::intern("support-bot");
    event.span_id = mission_sdk::SpanId::generate();
    event.attributes.set(mission_core::Symbol::intern("mission.anomaly.cause"), "model=gpt-4.1");
    let id = event.span_id.to_string();
    control.recorder().record(event);
    control.flush().expect("flush");
    let logs = receiver.wait_for_logs(1);
    let log = &logs[0]["log"];
    assert_eq!(log["severityText"], "warn", "{log:#?}");
    assert!(log["body"].as_str().unwrap().starts_with("anomaly in latency_ms: 7200"), "{log:#?}");
    assert_eq!(log["attributes"]["mission.anomaly.id"], id.as_str());
    assert_eq!(log["attributes"]["mission.anomaly.cause"], "model=gpt-4.1");
    assert_eq!(log["attributes"]["mission.anomaly.expected"], 2400.0);
    assert_eq!(log["attributes"]["gen_ai.agent.name"], "support-bot");
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

#[path = "support/http_request.rs"]
mod http_request;
/// Redaction before export, checked on what the receiver got: generated card numbers, e-mail
/// addresses and API keys put into span attributes, an error message and a log message never
/// reach it; the stable replacement tokens do.
#[path = "support/secrets.rs"]
mod secrets;

mod redacted_export {
    use super::secrets::{api_key, card, email};
    use super::*;
    use mission_sdk::redact::{RedactionConfig, Redactor};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    const KEY: &str = "otlp-redaction-test-key-0123456789";

    fn received_for(receiver: &Receiver, thread_id: &str) -> (Vec<Value>, Vec<Value>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mine = |all: &Mutex<Vec<Value>>, k: &str| -> Vec<Value> {
                let all = all.lock().expect("lock");
                all.iter().filter(|v| v[k]["traceId"] == thread_id).cloned().collect()
            };
            let (spans, logs) = (mine(&receiver.spans, "span"), mine(&receiver.logs, "log"));
            if (spans.len() >= 2 && !logs.is_empty()) || Instant::now() > deadline {
                return (spans, logs);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn no_generated_secret_reaches_the_otlp_receiver() {
        let receiver = Receiver::start(0, 0);
        let store = temp_store("redacted");
        let control = MissionControl::builder()
            .ignore_environment()
            .with_service_name("otlp-test")
            .with_tenant("acme")
            .with_store_root(&store)
            .without_models()
            .with_redaction(RedactionConfig::with_key(KEY))
            .with_otlp(OtlpConfig::http(&receiver.http).with_batch_delay(Duration::from_millis(20)))
            .build()
            .expect("build");
        let redactor = Redactor::new(RedactionConfig::with_key(KEY)).expect("redactor");
        let token = |value: &str| {
            let (replaced, n) = redactor.redact_str("acme", value);
            assert!(n > 0, "the redactor finds {value:?}");
            replaced.into_owned()
        };
        let mut runner =
            TestRunner::new(Config { cases: 8, failure_persistence: None, ..Config::default() });
        let result = runner.run(&(card(), email(), api_key()), |(card, email, (key, secret))| {
            let thread = control.agent("billing").thread();
            let id = thread.id().to_string();
            {
                let mut tool = thread.tool_call("charge");
                tool.set_attribute("customer.card", card.as_str())
                    .set_attribute("customer.email", email.as_str())
                    .set_attribute("api.key", key.as_str())
                    .set_error(&format!("upstream rejected {key}"));
                tool.log(
                    mission_sdk::Level::Warn,
                    &format!("charge {card} for {email} with {key}"),
                );
            }
            thread.end();
            control.flush().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (spans, logs) = received_for(&receiver, &id);
            prop_assert_eq!((spans.len(), logs.len()), (2, 1));
            let everything = serde_json::to_string(&(&spans, &logs)).expect("json");
            for s in [&card, &email, &secret] {
                prop_assert!(!everything.contains(s.as_str()), "{} reached the receiver", s);
            }
            let tool = spans
                .iter()
                .find(|s| s["span"]["name"] == "execute_tool charge")
                .ok_or_else(|| TestCaseError::fail("no tool span"))?;
            prop_assert_eq!(attr(tool, "customer.card"), &token(&card));
            prop_assert_eq!(attr(tool, "customer.email"), &token(&email));
            prop_assert_eq!(attr(tool, "api.key"), &token(&key));
            prop_assert_eq!(
                &tool["span"]["status"]["message"],
                &token(&format!("upstream rejected {key}"))
            );
            prop_assert_eq!(
                &logs[0]["log"]["body"],
                &token(&format!("charge {card} for {email} with {key}"))
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let stats = control.redaction_stats().expect("redaction is on");
        assert!(stats.events_redacted >= 8 * 2, "{stats:?}");
        drop(control);
        let _ = std::fs::remove_dir_all(&store);
    }
}

/// Export against a receiver that answers like real backends do: 405 for a signal it does not
/// take (Arize Phoenix takes only traces), 400, 413 above a size, 429 and 503 with `Retry-After`
/// (seconds or an HTTP date), a
/// partial success, a backend that keeps failing. A small HTTP/1.1 server on loopback that
/// decodes each OTLP/protobuf request (the `opentelemetry-proto` messages) and answers from a
/// script.
mod picky_backends {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message;

    /// One request the receiver got.
    #[derive(Clone, Debug)]
    struct Received {
        path: String,
        at: Instant,
        /// Spans or log records in the body (0 for metrics).
        items: usize,
        /// The trace ids of the spans.
        trace_ids: Vec<String>,
    }

    /// What to answer: status, extra headers, body.
    type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);
    /// The script: (path, how many requests to that path came before, items in the request)
    /// → the answer.
    type Script = dyn Fn(&str, usize, usize) -> Reply + Send + Sync;

    struct Picky {
        url: String,
        received: Arc<Mutex<Vec<Received>>>,
    }

    impl Picky {
        fn start(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
            Self::start_sized(move |path, before, _| script(path, before))
        }

        /// A receiver whose answers may depend on the size of each request, too.
        fn start_sized(
            script: impl Fn(&str, usize, usize) -> Reply + Send + Sync + 'static,
        ) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            let received: Arc<Mutex<Vec<Received>>> = Arc::default();
            let script: Arc<Script> = Arc::new(script);
            let log = received.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (log, script) = (log.clone(), script.clone());
                    std::thread::spawn(move || serve(stream, &log, &*script));
                }
            });
            Self { url, received }
        }

        fn requests(&self, path: &str) -> Vec<Received> {
            self.received.lock().expect("lock").iter().filter(|r| r.path == path).cloned().collect()
        }
    }

    /// Serves the requests of one connection (keep-alive) until the client closes it.
    fn serve(mut stream: TcpStream, log: &Mutex<Vec<Received>>, script: &Script) {
        let mut buffer = Vec::new();
        loop {
            let Some((head, body)) = http_request::read_request(&mut stream, &mut buffer) else {
                return;
            };
            let path = http_request::path(&head);
            let (items, trace_ids) = match path.as_str() {
                "/v1/traces" => {
                    let request = ExportTraceServiceRequest::decode(body.as_slice())
                        .expect("an OTLP trace request");
                    let spans: Vec<_> = request
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .flat_map(|s| &s.spans)
                        .collect();
                    let ids = spans
                        .iter()
                        .map(|s| s.trace_id.iter().map(|b| format!("{b:02x}")).collect())
                        .collect();
                    (spans.len(), ids)
                }
                "/v1/logs" => {
                    let request = ExportLogsServiceRequest::decode(body.as_slice())
                        .expect("an OTLP logs request");
                    let n = request
                        .resource_logs
                        .iter()
                        .flat_map(|r| &r.scope_logs)
                        .map(|s| s.log_records.len())
                        .sum();
                    (n, Vec::new())
                }
                _ => (0, Vec::new()),
            };
            let before = {
                let mut log = log.lock().expect("lock");
                let before = log.iter().filter(|r| r.path == path).count();
                log.push(Received { path: path.clone(), at: Instant::now(), items, trace_ids });
                before
            };
            let (status, headers, body) = script(&path, before, items);
            let mut answer = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                answer.push_str(&format!("{k}: {v}\r\n"));
            }
            answer.push_str("\r\n");
            if stream.write_all(answer.as_bytes()).and_then(|()| stream.write_all(&body)).is_err() {
                return;
            }
        }
    }

    fn reason(status: u16) -> &'static str {
        match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            405 => "Method Not Allowed",
            413 => "Payload Too Large",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Whatever",
        }
    }

    fn ok() -> Reply {
        (200, Vec::new(), Vec::new())
    }

    fn text(status: u16, text: &str) -> Reply {
        (status, Vec::new(), text.as_bytes().to_vec())
    }

    /// An instance exporting to `config`'s endpoint through the builder (so its health report
    /// shows export), and a reader of its OTLP health that outlives it.
    fn control(config: OtlpConfig, name: &str) -> (MissionControl, Stats, PathBuf) {
        let store = temp_store(name);
        let control = MissionControl::builder()
            .ignore_environment()
            .with_service_name("otlp-test")
            .with_tenant("acme")
            .with_store_root(&store)
            .without_models()
            .with_otlp(super::config(config))
            .build()
            .expect("build");
        let stats = Stats(control.otlp_stats_reader().expect("export is on"));
        (control, stats, store)
    }

    struct Stats(mission_sdk::OtlpStatsReader);

    impl Stats {
        fn stats(&self) -> mission_sdk::OtlpStats {
            self.0.stats()
        }
        fn log_stats(&self) -> mission_sdk::OtlpStats {
            self.0.log_stats()
        }
        fn metric_stats(&self) -> mission_sdk::OtlpStats {
            self.0.metric_stats()
        }
    }

    /// Waits until `done` holds (or a generous deadline passes) and returns what it saw last.
    fn wait_until<T>(mut read: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = read();
            if done(&value) || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_backend_that_takes_only_traces_neither_fails_nor_holds_flush() {
        // Phoenix: traces accepted, 405 on /v1/logs and /v1/metrics.
        let picky = Picky::start(|path, _| match path {
            "/v1/traces" => ok(),
            _ => text(405, "Method Not Allowed"),
        });
        let flush_timeout = Duration::from_secs(30);
        let (control, stats, store) =
            control(OtlpConfig::http(&picky.url).with_flush_timeout(flush_timeout), "phoenix");
        let thread_id = record_workload(&control);
        control.log(mission_sdk::Level::Info, "one log line", &[]);
        let started = Instant::now();
        control.flush().expect("a 405 on logs and metrics does not fail the flush of traces");
        assert!(started.elapsed() < flush_timeout, "flush waited {:?}", started.elapsed());
        let traces = picky.requests("/v1/traces");
        assert_eq!(traces.iter().map(|r| r.items).sum::<usize>(), 3);
        assert!(traces.iter().flat_map(|r| &r.trace_ids).all(|id| *id == thread_id));
        // The log batch was refused once and not retried; the metrics export too.
        assert_eq!(picky.requests("/v1/logs").len(), 1);
        let logs = stats.log_stats();
        assert_eq!((logs.accepted, logs.exported, logs.rejected, logs.queued), (1, 0, 1, 0));
        let why = logs.last_rejection.clone().unwrap_or_default();
        assert!(why.contains("405") && why.contains("Method Not Allowed"), "{why}");
        let metrics = stats.metric_stats();
        assert!(metrics.rejected > 0 && metrics.exported == 0, "{metrics:?}");
        // Health says so at once: traces fine, logs and metrics rejected.
        let health = control.health_report();
        let otlp = health.otlp.clone().expect("export is on");
        assert!(!health.healthy && !otlp.healthy, "{otlp:#?}");
        assert!(otlp.traces.healthy && otlp.traces.backend_up, "{otlp:#?}");
        assert!(!otlp.logs.healthy && !otlp.logs.backend_up, "{otlp:#?}");
        assert!(!otlp.metrics.healthy, "{otlp:#?}");
        let started = Instant::now();
        control.shutdown();
        assert!(started.elapsed() < flush_timeout, "shutdown took {:?}", started.elapsed());
        let _ = std::fs::remove_dir_all(&store);
    }

    #[test]
    fn signals_switched_off_are_not_sent_and_health_is_ok() {
        let picky = Picky::start(|path, _| match path {
            "/v1/traces" => ok(),
            _ => text(405, "Method Not Allowed"),
        });
        let config = OtlpConfig::http(&picky.url).with_logs(false).with_metrics(false);
        let (control, stats, store) = control(config, "traces-only");
        record_workload(&control);
        control.log(mission_sdk::Level::Info, "one log line", &[]);
        control.flush().expect("flush");
        assert_eq!(picky.requests("/v1/traces").iter().map(|r| r.items).sum::<usize>(), 3);
        let health = control.health_report();
        let otlp = health.otlp.clone().expect("export is on");
        assert!(otlp.healthy, "{otlp:#?}");
        assert!(!otlp.logs.enabled && !otlp.metrics.enabled && otlp.traces.enabled);
        assert_eq!((stats.log_stats().accepted, stats.metric_stats().accepted), (0, 0));
        control.shutdown();
        assert!(picky.requests("/v1/logs").is_empty() && picky.requests("/v1/metrics").is_empty());
        let _ = std::fs::remove_dir_all(&store);
        // The standard variables switch signals off when code leaves them unset.
        let env = |k: &str| (k == "OTEL_LOGS_EXPORTER").then(|| "none".to_owned());
        assert_eq!(OtlpConfig::http("http://x:4318").signals_with(env), [true, false, true]);
        let code = OtlpConfig::http("http://x:4318").with_logs(true);
        assert_eq!(code.signals_with(env), [true, true, true], "code wins");
    }

    #[test]
    fn a_configuration_file_switches_signals_off() {
        let picky = Picky::start(|path, _| match path {
            "/v1/traces" => ok(),
            _ => text(405, "Method Not Allowed"),
        });
        let store = temp_store("config-file");
        std::fs::create_dir_all(&store).expect("dir");
        let file = store.join("mission.toml");
        let toml = format!("[otlp]\nendpoint = \"{}\"\nlogs = false\nmetrics = false\n", picky.url);
        std::fs::write(&file, toml).expect("write");
        let control = MissionControl::builder()
            .ignore_environment()
            .with_store_root(store.join("data"))
            .without_models()
            .with_config_file(&file)
            .build()
            .expect("build");
        record_workload(&control);
        control.log(mission_sdk::Level::Info, "one log line", &[]);
        control.flush().expect("flush");
        let otlp = control.health_report().otlp.expect("the file turned export on");
        assert!(otlp.healthy && !otlp.logs.enabled && !otlp.metrics.enabled, "{otlp:#?}");
        assert_eq!(otlp.traces.exported, 3, "{otlp:#?}");
        control.shutdown();
        assert_eq!(picky.requests("/v1/traces").iter().map(|r| r.items).sum::<usize>(), 3);
        assert!(picky.requests("/v1/logs").is_empty() && picky.requests("/v1/metrics").is_empty());
        let _ = std::fs::remove_dir_all(&store);
    }

    #[test]
    fn settings_out_of_their_range_are_errors_naming_the_field() {
        let base = || OtlpConfig::http("http://127.0.0.1:9");
        for (field, config) in [
            ("queue_capacity", base().with_queue_capacity(0)),
            ("batch_size", base().with_batch_size(70_000)),
            ("timeout", base().with_timeout(Duration::ZERO)),
            ("flush_timeout", base().with_flush_timeout(Duration::from_secs(3600))),
            ("metrics_interval", base().with_metrics_interval(Duration::ZERO)),
            ("retry_window", base().with_retry_window(Duration::from_secs(90_000))),
            ("batch_delay", base().with_batch_delay(Duration::from_secs(61))),
        ] {
            let Err(err) = OtlpSink::new(config).map(|_| ()) else { panic!("{field} is checked") };
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn a_400_or_403_rejects_that_batch_for_good() {
        for status in [400, 403] {
            let picky = Picky::start(move |path, before| match (path, before) {
                ("/v1/traces", 0) => text(status, "no"),
                _ => ok(),
            });
            let config = OtlpConfig::http(&picky.url).with_logs(false).with_metrics(false);
            let (control, stats, store) = control(config, &format!("status-{status}"));
            let first = record_workload(&control);
            control.flush().expect("a rejected batch is counted, not a flush failure");
            let second = record_workload(&control);
            control.flush().expect("flush");
            let traces = picky.requests("/v1/traces");
            // The refused batch was not sent again: the next request carries the next thread.
            assert_eq!(traces.len(), 2, "{status}: {traces:#?}");
            assert!(traces[0].trace_ids.iter().all(|id| *id == first), "{status}");
            assert!(traces[1].trace_ids.iter().all(|id| *id == second), "{status}");
            let s = stats.stats();
            assert_eq!((s.accepted, s.exported, s.rejected, s.queued), (6, 3, 3, 0), "{s:?}");
            assert_eq!(s.failed_requests, 1, "{s:?}");
            let why = s.last_rejection.clone().unwrap_or_default();
            assert!(why.starts_with(&format!("HTTP {status}")), "{why}");
            assert!(s.backend_up && s.healthy, "the backend took the next batch: {s:?}");
            control.shutdown();
            let _ = std::fs::remove_dir_all(&store);
        }
    }

    #[test]
    fn a_413_splits_the_batch_down_to_single_items() {
        // Up to `limit` spans per request are taken; a larger request is answered 413.
        for (limit, exported, rejected) in [(1, 3, 0), (0, 0, 3)] {
            let picky = Picky::start_sized(move |path, _, items| match path {
                "/v1/traces" if items > limit => text(413, "request too large"),
                _ => ok(),
            });
            let config = OtlpConfig::http(&picky.url).with_logs(false).with_metrics(false);
            let (control, stats, store) = control(config, &format!("split-{limit}"));
            record_workload(&control);
            control.flush().expect("a split or rejected batch is not a flush failure");
            // 3 spans → 413; then 1 and 2; the 2 → 413, then 1 and 1.
            let sizes: Vec<usize> = picky.requests("/v1/traces").iter().map(|r| r.items).collect();
            assert_eq!(sizes, [3, 1, 2, 1, 1], "limit {limit}");
            let s = stats.stats();
            assert_eq!(
                (s.accepted, s.exported, s.rejected, s.queued, s.split_requests),
                (3, exported, rejected, 0, 2),
                "limit {limit}: {s:?}"
            );
            if rejected > 0 {
                // Each single span still too large is rejected with the status.
                assert_eq!(s.failed_requests, 2 + 3, "{s:?}");
                let why = s.last_rejection.clone().unwrap_or_default();
                assert!(why.starts_with("HTTP 413 Payload Too Large"), "{why}");
            } else {
                assert!(s.backend_up && s.healthy && s.last_rejection.is_none(), "{s:?}");
            }
            control.shutdown();
            let _ = std::fs::remove_dir_all(&store);
        }
    }

    #[test]
    fn retry_after_on_429_and_503_is_honoured() {
        // Seconds, or an HTTP date (RFC 9110) 3 s ahead, which is over 2 s once truncated to
        // whole seconds.
        let retry_after = |as_date: bool| {
            if as_date {
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3))
            } else {
                "2".to_owned()
            }
        };
        for (status, as_date) in [(429, false), (503, false), (429, true)] {
            let picky = Picky::start(move |path, before| match (path, before) {
                ("/v1/traces", 0) => {
                    (status, vec![("retry-after", retry_after(as_date))], Vec::new())
                }
                _ => ok(),
            });
            let config = OtlpConfig::http(&picky.url).with_logs(false).with_metrics(false);
            let (control, stats, store) = control(config, &format!("retry-after-{status}"));
            record_workload(&control);
            // The backend said "later": flush does not wait for it.
            let pending = control.flush();
            assert!(pending.is_err(), "{status}: the batch is still pending");
            let s = wait_until(|| stats.stats(), |s| s.exported == 3);
            assert_eq!((s.exported, s.rejected, s.throttled_requests), (3, 0, 1), "{s:?}");
            let traces = picky.requests("/v1/traces");
            assert_eq!(traces.len(), 2, "{traces:#?}");
            let waited = traces[1].at - traces[0].at;
            assert!(waited >= Duration::from_millis(1950), "{status}: retried after {waited:?}");
            control.shutdown();
            let _ = std::fs::remove_dir_all(&store);
        }
    }

    #[test]
    fn a_partial_success_is_counted_and_shown_in_health() {
        let picky = Picky::start(|path, _| match path {
            "/v1/traces" => {
                let body = ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: 1,
                        error_message: "span name too long".into(),
                    }),
                }
                .encode_to_vec();
                (200, Vec::new(), body)
            }
            _ => ok(),
        });
        let config = OtlpConfig::http(&picky.url).with_logs(false).with_metrics(false);
        let (control, stats, store) = control(config, "partial");
        record_workload(&control);
        control.flush().expect("flush");
        let s = stats.stats();
        assert_eq!(
            (s.accepted, s.exported, s.rejected, s.partial_successes),
            (3, 2, 1, 1),
            "{s:?}"
        );
        let otlp = control.health_report().otlp.expect("export is on");
        let why = otlp.traces.last_rejection.clone().unwrap_or_default();
        assert!(why.contains("1 of 3 spans rejected: span name too long"), "{why}");
        control.shutdown();
        let _ = std::fs::remove_dir_all(&store);
    }

    #[test]
    fn a_failing_backend_holds_neither_flush_nor_shutdown_and_health_says_so() {
        let picky = Picky::start(|_, _| text(503, "down for maintenance"));
        let flush_timeout = Duration::from_secs(30);
        let config = OtlpConfig::http(&picky.url)
            .with_logs(false)
            .with_metrics(false)
            .with_flush_timeout(flush_timeout)
            .with_retry_window(Duration::from_secs(600));
        let (control, stats, store) = control(config, "failing");
        assert!(control.health_report().healthy, "nothing failed yet");
        record_workload(&control);
        let started = Instant::now();
        let err = control.flush().expect_err("the spans are still pending");
        assert!(started.elapsed() < flush_timeout, "flush waited {:?}", started.elapsed());
        assert!(err.to_string().contains("503"), "{err}");
        // Degraded as soon as the first export failed.
        let otlp = control.health_report().otlp.expect("export is on");
        assert!(!otlp.healthy && !otlp.traces.backend_up, "{otlp:#?}");
        assert_eq!((otlp.traces.queued, otlp.traces.dropped_retry_expired), (3, 0));
        let started = Instant::now();
        control.shutdown();
        assert!(started.elapsed() < flush_timeout, "shutdown took {:?}", started.elapsed());
        let s = stats.stats();
        assert_eq!((s.exported, s.dropped_at_shutdown, s.queued), (0, 3, 0), "{s:?}");
        let _ = std::fs::remove_dir_all(&store);
    }
}

/// Scores go out as the GenAI evaluation event `gen_ai.evaluation.result` (a log record with
/// that event name), parented to the span they score; a comment only where content is captured.
#[test]
fn exports_scores_as_genai_evaluation_events() {
    use mission_sdk::{Score, ScoreSource};
    let receiver = Receiver::start(0, 0);
    let store = temp_store("scores");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_tenant("acme")
        .with_store_root(&store)
        .with_content_capture(["acme"])
        .with_otlp(config(OtlpConfig::http(&receiver.http)))
        .build()
        .expect("build");
    let mut thread = control.agent("support-bot").thread();
    let root = thread.root().span_id().to_string();
    let judged = Score::new(0.25)
        .expect("finite")
        .with_label("partly")
        .with_comment("missed the refund policy")
        .with_source(ScoreSource::Llm);
    thread.score("helpfulness", judged).expect("score");
    let id = thread.id();
    let thread_id = id.to_string();
    thread.end();
    // A late score, by id, after the thread ended.
    control.score_thread(id, "thumbs", Score::new(1.0).expect("finite")).expect("score");
    control.flush().expect("flush");
    let logs = receiver.wait_for_logs(2);
    let events: Vec<&Value> = logs
        .iter()
        .map(|l| &l["log"])
        // mockotlpserver's OTLP protos predate the `event_name` field: the attribute carries it.
        .filter(|l| l["attributes"]["event.name"] == "gen_ai.evaluation.result")
        .collect();
    assert_eq!(events.len(), 2, "{logs:#?}");
    let judged = events
        .iter()
        .find(|l| l["attributes"]["gen_ai.evaluation.name"] == "helpfulness")
        .expect("helpfulness");
    assert_eq!(judged["attributes"]["gen_ai.evaluation.score.value"], 0.25, "{judged:#?}");
    assert_eq!(judged["attributes"]["gen_ai.evaluation.score.label"], "partly");
    assert_eq!(judged["attributes"]["gen_ai.evaluation.explanation"], "missed the refund policy");
    assert_eq!(judged["attributes"]["mission.score.source"], "llm");
    assert_eq!(judged["attributes"]["gen_ai.agent.name"], "support-bot");
    assert_eq!(judged["traceId"], thread_id.as_str());
    assert_eq!(judged["spanId"], root.as_str(), "parented to the span it scores");
    let thumbs = events
        .iter()
        .find(|l| l["attributes"]["gen_ai.evaluation.name"] == "thumbs")
        .expect("thumbs");
    assert_eq!(thumbs["attributes"]["gen_ai.evaluation.score.value"], 1.0);
    assert!(thumbs["attributes"].get("gen_ai.evaluation.explanation").is_none());
    assert_eq!(thumbs["traceId"], thread_id.as_str());
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}

/// The value of a sum's data point (with `attributes` among its attributes) in the latest
/// export of metric `name`.
fn latest_sum(receiver: &Receiver, name: &str, attributes: &[(&str, &str)]) -> Option<i64> {
    let metrics = receiver.metrics.lock().expect("lock").clone();
    let metric = metrics.iter().rev().find(|m| m["metric"]["name"] == name)?;
    let data = &metric["metric"];
    let points = data["sum"]["dataPoints"].as_array().or(data["gauge"]["dataPoints"].as_array())?;
    let point =
        points.iter().find(|p| attributes.iter().all(|(k, v)| p["attributes"][*k] == *v))?;
    Some(int(point.get("asInt").unwrap_or(&point["asDouble"])))
}

#[test]
fn the_metric_exporter_sends_the_recorders_accounting() {
    let receiver = Receiver::start(0, 0);
    let store = temp_store("accounting");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_tenant("acme")
        .with_store_root(&store)
        .with_otlp(
            config(OtlpConfig::http(&receiver.http))
                .with_metrics_interval(Duration::from_millis(200)),
        )
        .without_models()
        .build()
        .expect("build");
    record_workload(&control);
    control.flush().expect("flush");
    let health = control.health();
    let recorded = i64::try_from(health.accounting.recorded).expect("count");
    assert!(recorded > 0);
    // Exports repeat every 200 ms with the totals; wait for one carrying these numbers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while latest_sum(&receiver, "mission.events.recorded", &[]) != Some(recorded) {
        assert!(Instant::now() < deadline, "no export carried recorded = {recorded}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = i64::try_from(health.accounting.delivered).expect("count");
    let sum = |name: &str, attrs: &[(&str, &str)]| latest_sum(&receiver, name, attrs);
    assert_eq!(sum("mission.events.delivered", &[]), Some(delivered));
    assert_eq!(sum("mission.events.dropped", &[("reason", "buffer_full")]), Some(0));
    assert_eq!(sum("mission.events.in_flight", &[]), Some(0));
    let parquet = health.sinks.iter().find(|s| s.name == "parquet").expect("parquet sink");
    let events = i64::try_from(parquet.events).expect("count");
    assert_eq!(sum("mission.sink.events", &[("sink", "parquet")]), Some(events));
    assert_eq!(sum("mission.sink.healthy", &[("sink", "parquet")]), Some(1));
    assert_eq!(sum("mission.sink.errors", &[("sink", "parquet")]), Some(0));
    let exported = sum("mission.otlp.exported", &[("signal", "traces")]).expect("exported");
    assert!(exported > 0, "the spans of the workload were exported");
    assert_eq!(sum("mission.otlp.dropped", &[("signal", "traces")]), Some(0));
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
}
