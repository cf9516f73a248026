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
    OtlpConfig {
        service_name: "otlp-test".into(),
        tenant: "acme".into(),
        batch_delay: Duration::from_millis(50),
        ..endpoint
    }
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
    let otlp = OtlpSink::new(OtlpConfig {
        retry_window: Duration::from_millis(300),
        flush_timeout: Duration::from_secs(2),
        ..config(OtlpConfig::http(&receiver.https))
    })
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
    let otlp = OtlpSink::new(config(OtlpConfig {
        retry_window: Duration::from_secs(60),
        ..OtlpConfig::http(&first.http)
    }))
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
        .with_otlp(OtlpConfig {
            batch_delay: Duration::from_millis(50),
            ..OtlpConfig::http(&receiver.http)
        })
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
            .with_otlp(OtlpConfig {
                batch_delay: Duration::from_millis(20),
                ..OtlpConfig::http(&receiver.http)
            })
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
