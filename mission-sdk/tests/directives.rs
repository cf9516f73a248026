//! Directives end to end: a real pipeline, real HTTP receivers on loopback, synthetic time where
//! windows are long.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use mission_core::{
    AttrValue, Decision, Event, EventBody, FnSink, PermissionDecision, Pipeline, Recorder,
    SpanKind, Symbol, Text, ThreadContext, Timestamp,
};
use mission_sdk::directives::{
    ATTR_ALERT_ACKNOWLEDGED_BY, ATTR_ALERT_NOTE, ATTR_ALERT_STATE, ATTR_ALERT_THREAD_ID,
    ATTR_ALERT_THRESHOLD, ATTR_ALERT_VALUE, ATTR_DEDUP_KEY, ATTR_DELIVERY_ATTEMPTS,
    ATTR_DELIVERY_OUTCOME, Alert, AlertState, BreakerClock, BreakerState, Condition,
    DirectiveError, DirectiveSet, DirectiveSpec, Directives, PRESETS, Permit,
};
use mission_sdk::webhooks::HttpTransport;

const SECOND: u64 = 1_000_000_000;

struct Harness {
    pipeline: Pipeline,
    directives: Directives,
    seen: Arc<Mutex<Vec<Event>>>,
    thread: ThreadContext,
}

fn harness(toml: &str) -> Harness {
    harness_with_clock(toml, BreakerClock::system())
}

/// A harness whose breakers measure their cool-downs on `clock`.
fn harness_with_clock(toml: &str, clock: BreakerClock) -> Harness {
    let set = DirectiveSet::from_toml_str(toml, "test").expect("directives parse");
    let directives = Directives::with_transport(set, clock, HttpTransport::shared())
        .expect("directives compile");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let pipeline = Pipeline::builder()
        .with_sink(directives.sink())
        .with_sink(FnSink::new("seen", move |batch: &[Event]| {
            keep.lock()
                .expect("lock")
                .extend(batch.iter().filter(|e| e.name.as_str().starts_with("mission.")).cloned());
            Ok(())
        }))
        .start()
        .expect("pipeline");
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    Harness { pipeline, directives, seen, thread }
}

#[derive(Debug, Clone)]
struct Seen {
    state: String,
    dedup_key: String,
    value: f64,
    threshold: f64,
    time: u64,
}

fn text_attr(e: &Event, key: &str) -> String {
    match e.attributes.get(Symbol::intern(key)) {
        Some(AttrValue::Str(s)) => s.as_str().to_owned(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn num_attr(e: &Event, key: &str) -> f64 {
    match e.attributes.get(Symbol::intern(key)) {
        Some(AttrValue::Float(f)) => *f,
        Some(AttrValue::Int(i)) => *i as f64,
        _ => f64::NAN,
    }
}

impl Harness {
    fn recorder(&self) -> Recorder {
        self.pipeline.recorder()
    }

    fn alerts(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e.name.as_str() == "mission.alert")
            .map(|e| Seen {
                state: text_attr(e, ATTR_ALERT_STATE),
                dedup_key: text_attr(e, ATTR_DEDUP_KEY),
                value: num_attr(e, ATTR_ALERT_VALUE),
                threshold: num_attr(e, ATTR_ALERT_THRESHOLD),
                time: e.time.0,
            })
            .collect()
    }

    fn events_named(&self, name: &str) -> Vec<Event> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e.name.as_str() == name)
            .cloned()
            .collect()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Harness) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let _ = self.pipeline.flush();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", self.alerts());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tool_call(&self, name: &str, ok: bool) {
        let recorder = self.recorder();
        let span =
            recorder.start_span(&self.thread, SpanKind::ToolCall, Symbol::intern(name), None);
        if ok { span.end() } else { span.end_with_error("boom") }
    }

    fn span_at(&self, kind: SpanKind, name: &str, start: u64, duration: Duration, ok: bool) {
        let recorder = self.recorder();
        let span = recorder.start_span_at(
            &self.thread,
            kind,
            Symbol::intern(name),
            None,
            Timestamp(start),
        );
        let end = Timestamp(start + duration.as_nanos() as u64);
        if ok { span.end_at(end) } else { span.end_at_with_error(end, "boom") }
    }
}

fn now() -> u64 {
    Timestamp::now().0
}

// ---------------------------------------------------------------------------------------------
// Loading and validation

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mission-directives-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn malformed_files_name_the_line_and_the_field() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "bad-condition.toml",
            "[[directive]]\nname = \"slow\"\nwhen = \"p97(duration) > 4s over 5m\"\n",
            &["bad-condition.toml", "line 3", "when", "p97"],
        ),
        (
            "unknown-field.toml",
            "[[directive]]\nname = \"slow\"\nwhen = \"count > 3 over 1m\"\n\nthreshold = 4\n",
            &["line 5", "threshold"],
        ),
        (
            "bad-kind.toml",
            "[[directive]]\nname = \"slow\"\nwhen = \"count > 3 over 1m\"\nwhere = { kind = \"llm\" }\n",
            &["line 4", "kind", "llm"],
        ),
        (
            "duplicate.toml",
            "[[directive]]\nname = \"a\"\nwhen = \"count > 3 over 1m\"\n\n[[directive]]\nname = \"a\"\nwhen = \"count > 3 over 1m\"\n",
            &["line 6", "name", "already"],
        ),
        (
            "pagerduty.toml",
            "[[directive]]\nname = \"pd\"\nwhen = \"count > 3 over 1m\"\nthen = [{ action = \"webhook\", url = \"https://events.pagerduty.com/v2/enqueue\", format = \"pagerduty\" }]\n",
            &["line 2", "routing_key", "then[0]"],
        ),
        (
            "breaker.toml",
            "[[directive]]\nname = \"br\"\nwhen = \"3 failures in a row\"\nthen = [{ action = \"open_breaker\" }]\n",
            &["then[0].tool"],
        ),
        (
            "bad-action.json",
            "{\n  \"directive\": [\n    {\n      \"name\": \"x\",\n      \"when\": \"count > 1 over 1m\",\n      \"then\": [{ \"action\": \"page_everyone\" }]\n    }\n  ]\n}\n",
            &["bad-action.json", "line 6", "page_everyone"],
        ),
    ];
    for (file, text, expected) in cases {
        let path = write_temp(file, text);
        let err = DirectiveSet::from_file(&path).expect_err(file).to_string();
        for want in *expected {
            assert!(err.contains(want), "{file}: {want:?} missing from: {err}");
        }
    }
    let missing = DirectiveSet::from_file("/nonexistent/directives.toml").expect_err("missing");
    assert!(matches!(missing, DirectiveError::Io { .. }));
}

#[test]
fn presets_parse_and_compile() {
    for name in PRESETS {
        let set = DirectiveSet::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!set.is_empty(), "{name}");
        Directives::new(set).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(matches!(DirectiveSet::preset("nope"), Err(DirectiveError::UnknownPreset(_))));
    let json = r#"{"directive": [{"name": "j", "when": "error_rate > 5% over 10m"}]}"#;
    let set = DirectiveSet::from_json_str(json, "inline").expect("json");
    assert_eq!(set.directives()[0].trigger(), "error_rate > 5% over 10m");
}

// ---------------------------------------------------------------------------------------------
// Thresholds, silence, dedup and resolve

#[test]
fn threshold_fires_once_per_incident_and_resolves() {
    let h = harness(
        r#"
        [[directive]]
        name = "slow-tools"
        when = "p95(duration) > 100ms over 1m"
        where = { kind = "tool_call" }
        group_by = ["operation"]
        "#,
    );
    let t0 = now();
    // 90 seconds of slow calls, one a second, then 90 seconds of fast ones (synthetic time).
    for i in 0..90 {
        h.span_at(
            SpanKind::ToolCall,
            "search_web",
            t0 + i * SECOND,
            Duration::from_millis(500),
            true,
        );
    }
    for i in 90..180 {
        h.span_at(
            SpanKind::ToolCall,
            "search_web",
            t0 + i * SECOND,
            Duration::from_millis(5),
            true,
        );
    }
    h.wait_for("fire and resolve", Duration::from_secs(10), |h| h.alerts().len() >= 2);
    let alerts = h.alerts();
    assert_eq!(alerts.len(), 2, "one firing, one resolve: {alerts:?}");
    assert_eq!(alerts[0].state, "firing");
    assert_eq!(alerts[1].state, "resolved");
    assert_eq!(alerts[0].dedup_key, "slow-tools:operation=search_web");
    assert_eq!(alerts[0].dedup_key, alerts[1].dedup_key);
    assert!((alerts[0].value - 500.0).abs() < 25.0, "{alerts:?}");
    assert_eq!(alerts[0].threshold, 100.0);
    // Judged only once a whole window was watched; resolved once the slow calls left p95.
    assert!(alerts[0].time >= t0 + 60 * SECOND && alerts[0].time <= t0 + 62 * SECOND, "{alerts:?}");
    assert!(alerts[1].time > t0 + 90 * SECOND && alerts[1].time <= t0 + 150 * SECOND);
    let status = h.directives.list();
    assert!(status[0].firing.is_empty());
    assert_eq!(h.directives.stats().fired, 1);
}

#[test]
fn silence_fires_on_tick_without_events_and_resolves() {
    let h = harness(
        r#"
        [[directive]]
        name = "heartbeat-silent"
        when = "count == 0 over 2s"
        where = { operation = "heartbeat" }
        "#,
    );
    let started = Instant::now();
    h.wait_for("silence", Duration::from_secs(8), |h| !h.alerts().is_empty());
    assert!(started.elapsed() >= Duration::from_secs(2), "judged before a whole window");
    assert_eq!(h.alerts()[0].state, "firing");
    assert_eq!(h.alerts()[0].dedup_key, "heartbeat-silent");
    h.span_at(SpanKind::Custom, "heartbeat", now(), Duration::from_millis(1), true);
    h.wait_for("resolve", Duration::from_secs(5), |h| h.alerts().len() >= 2);
    assert_eq!(h.alerts()[1].state, "resolved");
    // The long form parses too.
    assert!("count == 0 over 15m".parse::<Condition>().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

#[test]
fn failing_tool_is_denied_then_half_open_after_the_cool_down() {
    // The breakers' time moves only when the test says so: no sleeps, and a slow machine
    // cannot turn a denial into a trial.
    let clock = BreakerClock::manual();
    let h = harness_with_clock(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "3 failures in a row"
        where = { kind = "tool_call" }
        group_by = ["operation"]
        severity = "error"
        then = [{ action = "alert" }, { action = "open_breaker", cool_down = "30s" }]
        "#,
        clock.clone(),
    );
    let d = &h.directives;
    assert_eq!(d.permit("search_web"), Permit::Allow);
    h.tool_call("search_web", false);
    h.tool_call("search_web", false);
    let _ = h.pipeline.flush();
    assert_eq!(d.permit("search_web"), Permit::Allow, "two failures are not three");
    h.tool_call("search_web", false);
    h.wait_for("breaker open", Duration::from_secs(5), |h| {
        !h.directives.permit("search_web").is_allowed()
    });
    let Permit::Deny(denial) = d.permit("search_web") else { panic!("denied") };
    assert!(denial.reason.contains("3 times in a row"), "{denial}");
    assert_eq!(denial.directive, "tool-failing");
    assert_eq!(denial.retry_after, Duration::from_secs(30), "the clock has not moved");
    assert_eq!(d.permit("read_file"), Permit::Allow, "other tools are not affected");
    assert_eq!(d.breakers()[0].state, BreakerState::Open);

    // Just before the end of the cool-down it is still denied.
    assert!(clock.advance(Duration::from_secs(30) - Duration::from_millis(1)));
    let Permit::Deny(denial) = d.permit("search_web") else { panic!("still denied") };
    assert_eq!(denial.retry_after, Duration::from_millis(1));

    // After the cool-down: one trial; a failing trial re-opens.
    clock.advance(Duration::from_millis(1));
    assert_eq!(d.permit("search_web"), Permit::Trial);
    assert!(!d.permit("search_web").is_allowed(), "one trial at a time");
    h.tool_call("search_web", false);
    h.wait_for("re-open", Duration::from_secs(5), |h| h.directives.breakers()[0].opened == 2);
    assert!(!d.permit("search_web").is_allowed());
    assert_eq!(d.breakers()[0].state, BreakerState::Open);

    // A successful trial closes it, and the incident resolves.
    clock.advance(Duration::from_secs(30));
    assert_eq!(d.permit("search_web"), Permit::Trial);
    h.tool_call("search_web", true);
    h.wait_for("closed", Duration::from_secs(5), |h| {
        h.directives.permit("search_web") == Permit::Allow
    });
    h.wait_for("resolve", Duration::from_secs(5), |h| h.alerts().len() == 2);
    assert_eq!(h.alerts()[1].state, "resolved");
    let states: Vec<String> = h
        .events_named("mission.breaker")
        .iter()
        .map(|e| text_attr(e, "mission.breaker.state"))
        .collect();
    assert_eq!(states, ["open", "open", "closed"]);
}

// ---------------------------------------------------------------------------------------------
// Webhooks, received by a real HTTP server on loopback

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A plain HTTP/1.1 server: answers each request with the next status of `statuses` (then 200).
fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
    receiver_with(statuses, None)
}

/// The same receiver over HTTPS, serving the test certificate in `tests/tls/` (signed by the
/// test CA `tests/tls/ca.pem`, which nothing trusts unless told to).
fn tls_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let (url, received) = receiver_with(vec![], Some(Arc::new(config)));
    (url.replacen("http://", "https://", 1), received)
}

fn test_ca_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/ca.pem")
}

fn receiver_with(
    statuses: Vec<u16>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let status = match &tls {
                None => serve_one(stream, &keep, &mut statuses),
                Some(config) => {
                    // A client that rejects the certificate hangs up during the handshake:
                    // nothing is received, and the next connection is served.
                    let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                        continue;
                    };
                    serve_one(rustls::StreamOwned::new(connection, stream), &keep, &mut statuses)
                }
            };
            let _ = status;
        }
    });
    (format!("http://{addr}/hook"), received)
}

/// Reads one request from `stream`, keeps it, answers the next status.
fn serve_one<S: Read + Write>(
    mut stream: S,
    keep: &Mutex<Vec<Received>>,
    statuses: &mut impl Iterator<Item = u16>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    drop(reader);
    keep.lock().expect("lock").push(Received { headers, body });
    let status = statuses.next().unwrap_or(200);
    write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    stream.flush()
}

/// `sha256=<hex>` of `body` under `secret`, computed here independently of the SDK's `sign`.
fn expected_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn fail_then_recover(h: &Harness, tool: &str) {
    h.tool_call(tool, false);
    h.tool_call(tool, false);
    let _ = h.pipeline.flush();
    h.wait_for("firing", Duration::from_secs(5), |h| {
        h.alerts().iter().any(|a| a.state == "firing")
    });
    h.tool_call(tool, true);
}

#[test]
fn generic_webhook_is_signed_and_carries_firing_then_resolve() {
    let (url, received) = receiver(vec![]);
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        group_by = ["operation"]
        then = [{{ action = "alert" }}, {{ action = "webhook", url = "{url}", secret = "s3cret" }}]
        "#
    ));
    fail_then_recover(&h, "search_web");
    h.wait_for("two deliveries", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_delivered == 2
    });
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.headers["x-mission-signature"], expected_signature(b"s3cret", &r.body));
        let body = r.json();
        assert_eq!(
            r.headers["x-mission-timestamp"],
            body["sent_at"].to_string(),
            "timestamp is signed"
        );
        assert_eq!(body["dedup_key"], "tool-failing:operation=search_web");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    assert_eq!(got[0].json()["state"], "firing");
    assert_eq!(got[1].json()["state"], "resolved");
    assert_eq!(got[0].json()["group"]["operation"], "search_web");
    h.wait_for("delivery events", Duration::from_secs(5), |h| {
        h.events_named("mission.webhook.delivery").len() == 2
    });
    let outcomes: Vec<String> = h
        .events_named("mission.webhook.delivery")
        .iter()
        .map(|e| text_attr(e, ATTR_DELIVERY_OUTCOME))
        .collect();
    assert!(outcomes.iter().all(|o| o == "delivered"), "{outcomes:?}");
}

#[test]
fn https_webhooks_trust_their_ca_file_and_record_an_untrusted_certificate() {
    let (url, received) = tls_receiver();
    let ca = test_ca_file();
    // Two webhooks to one HTTPS receiver: the first trusts the test CA, the second only the
    // system's roots, so its handshake fails (once: a certificate error is not retried).
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        group_by = ["operation"]
        then = [
            {{ action = "alert" }},
            {{ action = "webhook", url = "{url}", secret = "s3cret", ca_file = "{ca}" }},
            {{ action = "webhook", url = "{url}", retries = 2, backoff = "10ms" }},
        ]
        "#,
        ca = ca.display()
    ));
    fail_then_recover(&h, "search_web");
    h.wait_for("four outcomes", Duration::from_secs(15), |h| {
        h.events_named("mission.webhook.delivery").len() == 4
    });
    let stats = h.directives.stats();
    assert_eq!((stats.webhooks_delivered, stats.webhooks_failed), (2, 2), "{stats:?}");
    assert_eq!(stats.webhook_retries, 0, "a certificate error is not retried");
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 2, "only the webhook trusting the CA got through");
    for r in &got {
        assert_eq!(r.headers["x-mission-signature"], expected_signature(b"s3cret", &r.body));
    }
    assert_eq!(got[0].json()["state"], "firing");
    assert_eq!(got[1].json()["state"], "resolved");
    let failures: Vec<String> = h
        .events_named("mission.webhook.delivery")
        .iter()
        .filter(|e| text_attr(e, ATTR_DELIVERY_OUTCOME) == "failed")
        .map(|e| match &e.body {
            mission_core::EventBody::Log(log) => log.message.as_str().to_owned(),
            other => panic!("not a log: {other:?}"),
        })
        .collect();
    assert_eq!(failures.len(), 2);
    for why in &failures {
        assert!(why.contains("certificate"), "the reason names the certificate: {why}");
    }
}

#[test]
fn a_webhook_ca_file_is_checked_when_the_directives_load() {
    let set = DirectiveSet::from_toml_str(
        r#"
        [[directive]]
        name = "x"
        when = "2 failures in a row"
        then = [{ action = "webhook", url = "https://127.0.0.1:9/hook", ca_file = "/no/such/ca.pem" }]
        "#,
        "test",
    )
    .expect("parses");
    let Err(err) = Directives::with_transport(set, BreakerClock::system(), HttpTransport::shared())
    else {
        panic!("a missing CA file is an error")
    };
    let text = err.to_string();
    assert!(text.contains("ca_file") && text.contains("/no/such/ca.pem"), "{text}");
    let refused = DirectiveSet::from_toml_str(
        r#"
        [[directive]]
        name = "x"
        when = "2 failures in a row"
        then = [{ action = "webhook", url = "http://127.0.0.1:9/hook", ca_file = "ca.pem" }]
        "#,
        "test",
    )
    .map(|_| ());
    let Err(err) = refused else { panic!("a CA file on an http:// URL is an error") };
    assert!(err.to_string().contains("ca_file"), "{err}");
}

#[test]
fn pagerduty_and_slack_payloads() {
    let (pd_url, pd) = receiver(vec![]);
    let (slack_url, slack) = receiver(vec![]);
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        description = "a tool keeps failing"
        when = "2 failures in a row"
        group_by = ["operation"]
        severity = "critical"
        then = [
          {{ action = "webhook", url = "{pd_url}", format = "pagerduty", routing_key = "R0UT1NG" }},
          {{ action = "webhook", url = "{slack_url}", format = "slack" }},
          {{ action = "alert" }},
        ]
        "#
    ));
    fail_then_recover(&h, "charge_card");
    h.wait_for("four deliveries", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_delivered == 4
    });
    let pd = pd.lock().expect("lock").clone();
    let (trigger, resolve) = (pd[0].json(), pd[1].json());
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], resolve["dedup_key"]);
    assert_eq!(trigger["dedup_key"], "tool-failing:operation=charge_card");
    let payload = &trigger["payload"];
    assert!(payload["summary"].as_str().expect("summary").contains("charge_card failed 2 times"));
    assert_eq!(payload["source"], "support-bot");
    assert_eq!(payload["severity"], "critical");
    assert!(payload["timestamp"].as_str().expect("timestamp").ends_with('Z'));
    let slack = slack.lock().expect("lock").clone();
    assert_eq!(slack.len(), 2);
    let first = slack[0].json();
    assert!(first["text"].as_str().expect("text").contains("FIRING"));
    assert!(first["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    assert!(slack[1].json()["text"].as_str().expect("text").contains("RESOLVED"));
}

#[test]
fn retries_after_a_500_then_succeeds_with_the_same_delivery_id() {
    let (url, received) = receiver(vec![500, 503]);
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        then = [{{ action = "webhook", url = "{url}", backoff = "20ms", retries = 3, send_resolved = false }}, {{ action = "alert" }}]
        "#
    ));
    h.tool_call("search_web", false);
    h.tool_call("search_web", false);
    h.wait_for("delivery", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_delivered == 1
    });
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.headers["x-mission-delivery"] == got[0].headers["x-mission-delivery"])
    );
    let stats = h.directives.stats();
    assert_eq!((stats.webhook_retries, stats.webhooks_failed), (2, 0));
    h.wait_for("delivery event", Duration::from_secs(5), |h| {
        !h.events_named("mission.webhook.delivery").is_empty()
    });
    let event = &h.events_named("mission.webhook.delivery")[0];
    assert_eq!(num_attr(event, ATTR_DELIVERY_ATTEMPTS), 3.0);

    // A 4xx is not retried.
    let (url, received) = receiver(vec![400]);
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "1 failures in a row"
        then = [{{ action = "webhook", url = "{url}", backoff = "20ms", send_resolved = false }}]
        "#
    ));
    h.tool_call("search_web", false);
    h.wait_for("failure", Duration::from_secs(10), |h| h.directives.stats().webhooks_failed == 1);
    assert_eq!(received.lock().expect("lock").len(), 1);
    assert_eq!(h.directives.stats().webhook_retries, 0);
}

#[test]
fn a_dead_endpoint_never_blocks_the_pipeline() {
    // A closed port, and a server that accepts connections but never answers.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr: SocketAddr = silent.local_addr().expect("addr");
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "flaky"
        when = "1 failures in a row"
        where = {{ operation = "flaky" }}
        then = [
          {{ action = "webhook", url = "http://{silent_addr}/never", timeout = "300ms", retries = 1, backoff = "10ms" }},
          {{ action = "webhook", url = "http://{closed}/closed", retries = 2, backoff = "10ms" }},
        ]

        [[directive]]
        name = "other"
        when = "2 failures in a row"
        where = {{ operation = "other" }}
        "#
    ));
    for _ in 0..20 {
        h.tool_call("flaky", false);
        h.tool_call("flaky", true);
    }
    h.pipeline.flush().expect("flush is not held up by deliveries");
    // One worker delivers in turn, and each of the 40 deliveries to the silent server takes two
    // 300 ms timeouts: finishing them takes at least 24 s, so the flush returned with most of
    // them still queued (a slow machine only makes that more so).
    let stats = h.directives.stats();
    assert_eq!(stats.webhooks_queued, 80, "{stats:?}");
    assert!(stats.webhooks_failed < 40, "flush waited for the deliveries: {stats:?}");
    // Recording and the other directives carry on.
    h.tool_call("other", false);
    h.tool_call("other", false);
    h.wait_for("other directive", Duration::from_secs(5), |h| {
        h.alerts().iter().any(|a| a.dedup_key == "other")
    });
    assert!(h.alerts().iter().any(|a| a.dedup_key == "other"));
    h.wait_for("failures counted", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_failed >= 2
    });
    let stats = h.directives.stats();
    assert_eq!(stats.webhooks_queued, 80, "{stats:?}");
    assert_eq!(stats.webhooks_delivered, 0);
    assert!(stats.webhook_retries >= 2);
    h.wait_for("failure events", Duration::from_secs(5), |h| {
        h.events_named("mission.webhook.delivery")
            .iter()
            .any(|e| text_attr(e, ATTR_DELIVERY_OUTCOME) == "failed")
    });
    drop(silent);
    // Shutting down does not wait for the queue of dead deliveries.
    let shutting = Instant::now();
    let _ = h.pipeline.shutdown();
    // The dead deliveries still queued would take well over 15 s (see above).
    assert!(shutting.elapsed() < Duration::from_secs(15), "{:?}", shutting.elapsed());
}

// ---------------------------------------------------------------------------------------------
// SLO burn rate, on synthetic time

#[test]
fn fast_burn_pages_within_the_window_and_resolves_afterwards() {
    let h = harness(
        r#"
        [[directive]]
        name = "llm-latency-slo"
        when = "slo 99% under 4s over 30d"
        where = { kind = "llm_call" }
        burn_alerts = "page"
        severity = "critical"
        "#,
    );
    let t0 = now();
    let step = 10 * SECOND;
    let minute = 60 * SECOND;
    let mut t = t0;
    // 20 minutes good, 10 minutes all over 4s, 30 minutes good: one LLM call every 10s.
    let breach = (t0 + 20 * minute, t0 + 30 * minute);
    while t < t0 + 60 * minute {
        let slow = t >= breach.0 && t < breach.1;
        let duration = if slow { Duration::from_secs(5) } else { Duration::from_millis(800) };
        h.span_at(SpanKind::LlmCall, "chat", t, duration, true);
        t += step;
    }
    h.wait_for("page and resolve", Duration::from_secs(10), |h| h.alerts().len() >= 2);
    let alerts = h.alerts();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let (fire, resolve) = (&alerts[0], &alerts[1]);
    assert_eq!(fire.state, "firing");
    assert!((fire.threshold - 14.4).abs() < 1e-9);
    assert!(fire.value > 14.4, "{fire:?}");
    // 1h window: bad/total passes 14.4% about 3.4 minutes into the breach; 5m is at 100%.
    assert!(
        fire.time > breach.0 + 3 * minute && fire.time < breach.0 + 5 * minute,
        "{}",
        (fire.time - breach.0) / SECOND
    );
    // Resolves once the 5-minute window holds only good calls again.
    assert_eq!(resolve.state, "resolved");
    assert!(
        resolve.time > breach.1 + 4 * minute && resolve.time < breach.1 + 6 * minute,
        "{}",
        (resolve.time - breach.1) / SECOND
    );
}

// ---------------------------------------------------------------------------------------------
// Patterns, anomalies, callbacks, the handle

#[test]
fn repeated_denials_to_one_actor() {
    let h = harness(
        r#"
        [[directive]]
        name = "denied"
        when = "3 denials per actor within 1m"
        "#,
    );
    let deny = |actor: &str| {
        let mut event = h.thread.event(
            Symbol::intern("tool.call"),
            mission_core::SpanId::NONE,
            EventBody::Permission(PermissionDecision {
                actor: Text::new(actor),
                action: Symbol::intern("tool.call"),
                resource: Text::new("refund_payment"),
                decision: Decision::Deny,
                policy: Symbol::intern("refunds"),
            }),
        );
        event.time = Timestamp::now();
        h.recorder().record(event);
    };
    deny("alice");
    deny("alice");
    deny("mallory");
    deny("mallory");
    deny("mallory");
    h.wait_for("denials", Duration::from_secs(5), |h| !h.alerts().is_empty());
    let _ = h.pipeline.flush();
    let alerts = h.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].dedup_key, "denied:actor=mallory");
    assert_eq!(alerts[0].value, 3.0);
}

#[test]
fn anomalies_fire_and_resolve_after_the_hold() {
    let h = harness(
        r#"
        [[directive]]
        name = "chat-anomaly"
        when = "anomaly score > 0.9 for 500ms"
        where = { metric = "chat" }
        "#,
    );
    for score in [0.5, 0.97] {
        let mut event = h.thread.event(
            Symbol::intern("chat"),
            mission_core::SpanId::NONE,
            EventBody::Anomaly(mission_core::AnomalyEvent {
                score,
                value: 9.0,
                expected: 1.0,
                ..Default::default()
            }),
        );
        event.time = Timestamp::now();
        h.recorder().record(event);
    }
    h.wait_for("anomaly", Duration::from_secs(5), |h| !h.alerts().is_empty());
    assert!((h.alerts()[0].value - 0.97).abs() < 1e-9);
    h.wait_for("resolve", Duration::from_secs(5), |h| h.alerts().len() == 2);
    assert_eq!(h.alerts()[1].state, "resolved");
}

#[test]
fn callbacks_log_level_and_sampling_follow_the_incident() {
    let h = harness(
        r#"
        [[directive]]
        name = "debug-when-failing"
        when = "2 failures in a row"
        then = [
          { action = "callback", name = "page_me" },
          { action = "callback", name = "not_registered" },
          { action = "set_log_level", level = "debug" },
          { action = "set_sampling", rate = 1.0 },
        ]
        "#,
    );
    let calls: Arc<Mutex<Vec<(AlertState, String)>>> = Arc::default();
    let keep = calls.clone();
    h.directives.register_callback("page_me", move |alert: &Alert| {
        keep.lock().expect("lock").push((alert.state, alert.dedup_key.clone()));
    });
    assert_eq!(h.directives.min_log_level(), None);
    h.tool_call("search_web", false);
    h.tool_call("search_web", false);
    h.wait_for("callback", Duration::from_secs(5), |_| !calls.lock().expect("lock").is_empty());
    assert_eq!(h.directives.min_log_level(), Some(mission_core::Level::Debug));
    assert_eq!(h.directives.sampling_rate(), Some(1.0));
    assert!(h.events_named("mission.alert").is_empty(), "no alert action, no alert event");
    h.tool_call("search_web", true);
    h.wait_for("resolve callback", Duration::from_secs(5), |_| {
        calls.lock().expect("lock").len() == 2
    });
    assert_eq!(
        *calls.lock().expect("lock"),
        [
            (AlertState::Firing, "debug-when-failing".to_owned()),
            (AlertState::Resolved, "debug-when-failing".to_owned())
        ]
    );
    assert_eq!(h.directives.min_log_level(), None);
    assert_eq!(h.directives.sampling_rate(), None);
    assert_eq!(h.directives.stats().callbacks_missing, 2);
}

#[test]
fn the_handle_adds_disables_lists_and_removes_at_run_time() {
    let h = harness("");
    let d = &h.directives;
    let mut spec = DirectiveSpec::new("runtime", "2 failures in a row".parse().expect("condition"));
    spec.group_by = vec![mission_sdk::directives::GroupField::Operation];
    d.add(spec.clone()).expect("add");
    assert!(matches!(d.add(spec), Err(DirectiveError::Duplicate(_))));
    h.tool_call("search_web", false);
    h.tool_call("search_web", false);
    h.wait_for("firing", Duration::from_secs(5), |h| !h.alerts().is_empty());
    let listed = d.list();
    assert_eq!(listed[0].name, "runtime");
    assert_eq!(listed[0].firing[0].dedup_key, "runtime:operation=search_web");
    d.set_enabled("runtime", false).expect("disable");
    h.wait_for("resolved on disable", Duration::from_secs(5), |h| h.alerts().len() == 2);
    assert!(!d.list()[0].enabled && d.list()[0].firing.is_empty());
    d.set_enabled("runtime", true).expect("enable");
    d.remove("runtime").expect("remove");
    assert!(matches!(d.remove("runtime"), Err(DirectiveError::NotFound(_))));
    assert!(d.list().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Acknowledging a firing incident

#[test]
fn an_acknowledged_incident_is_recorded_not_resent_and_resolves_as_usual() {
    let (url, received) = receiver(vec![]);
    let h = harness(&format!(
        r#"
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        group_by = ["operation"]
        then = [
          {{ action = "alert" }},
          {{ action = "webhook", url = "{url}" }},
          {{ action = "callback", name = "page_me" }},
        ]
        "#
    ));
    let calls: Arc<Mutex<Vec<AlertState>>> = Arc::default();
    let keep = calls.clone();
    h.directives.register_callback("page_me", move |alert: &Alert| {
        keep.lock().expect("lock").push(alert.state);
    });
    let d = &h.directives;
    assert!(matches!(d.acknowledge("tool-failing", "jo", ""), Err(DirectiveError::NotFiring(_))));

    h.tool_call("search_web", false);
    h.tool_call("search_web", false);
    h.wait_for("firing delivered", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_delivered == 1
    });
    let key = "tool-failing:operation=search_web";
    let firing = &d.list()[0].firing[0];
    assert_eq!((firing.dedup_key.as_str(), firing.tenant.as_str()), (key, "acme"));
    assert_eq!(firing.acknowledged, None);

    assert!(matches!(
        d.acknowledge("tool-failing:operation=other", "jo", ""),
        Err(DirectiveError::NotFiring(_))
    ));
    let acked = d.acknowledge(key, "jo@ops", "looking into it").expect("acknowledge");
    assert_eq!(acked.len(), 1);
    assert_eq!((acked[0].state, acked[0].dedup_key.as_str()), (AlertState::Acknowledged, key));
    assert!(
        acked[0].summary.contains("acknowledged by jo@ops (looking into it)"),
        "{}",
        acked[0].summary
    );
    assert!(d.acknowledge("tool-failing", "someone-else", "").expect("again").is_empty(), "once");
    let ack = d.list()[0].firing[0].acknowledged.clone().expect("acknowledged");
    assert_eq!((ack.by.as_str(), ack.note.as_str()), ("jo@ops", "looking into it"));
    h.wait_for("acknowledged alert event", Duration::from_secs(5), |h| {
        h.alerts().iter().any(|a| a.state == "acknowledged")
    });
    let event = h
        .events_named("mission.alert")
        .into_iter()
        .find(|e| text_attr(e, ATTR_ALERT_STATE) == "acknowledged")
        .expect("event");
    assert_eq!(text_attr(&event, ATTR_DEDUP_KEY), key);
    assert_eq!(text_attr(&event, ATTR_ALERT_ACKNOWLEDGED_BY), "jo@ops");
    assert_eq!(text_attr(&event, ATTR_ALERT_NOTE), "looking into it");

    h.tool_call("search_web", true);
    // The resolve's webhook can be delivered before the resolve's alert event has been drained
    // to the harness's sink: wait for both.
    h.wait_for("resolve delivered and recorded", Duration::from_secs(10), |h| {
        h.directives.stats().webhooks_delivered == 2
            && h.alerts().iter().any(|a| a.state == "resolved")
    });
    let states: Vec<String> = h.alerts().into_iter().map(|a| a.state).collect();
    assert_eq!(states, ["firing", "acknowledged", "resolved"]);
    let sent: Vec<serde_json::Value> =
        received.lock().expect("lock").iter().map(|r| r.json()["state"].clone()).collect();
    assert_eq!(sent, ["firing", "resolved"], "the acknowledgement is not sent again");
    assert_eq!(*calls.lock().expect("lock"), [AlertState::Firing, AlertState::Resolved]);
    assert_eq!((d.stats().acknowledged, d.stats().webhooks_queued), (1, 2));
    assert!(d.list()[0].firing.is_empty());
}

// ---------------------------------------------------------------------------------------------
// `set_log_level` and `set_sampling`, applied by MissionControl

fn logged(store: &mission_sdk::Store) -> Vec<String> {
    use mission_sdk::store::schema::col;
    let mut out = Vec::new();
    for batch in
        store.query().kind("log").name("log").columns(&[col::LOG_MESSAGE]).batches().expect("query")
    {
        let column = batch.column_by_name(col::LOG_MESSAGE).expect("column");
        let text = column.as_any().downcast_ref::<arrow::array::StringArray>().expect("strings");
        out.extend(text.iter().flatten().map(str::to_owned));
    }
    out.sort();
    out
}

#[test]
fn a_firing_directive_records_more_logs_and_threads_until_it_resolves() {
    use mission_sdk::{Level, MissionControl, SamplingConfig};
    let root =
        std::env::temp_dir().join(format!("mission-directives-apply-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let set = DirectiveSet::from_toml_str(
        r#"
        [[directive]]
        name = "verbose-while-failing"
        when = "3 failures in a row"
        where = { kind = "tool_call", operation = "flaky" }
        then = [
          { action = "alert" },
          { action = "set_log_level", level = "debug" },
          { action = "set_sampling", rate = 1.0 },
        ]
        "#,
        "test",
    )
    .expect("directives");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .without_models()
        .with_log_level(Level::Warn)
        .with_sampling(SamplingConfig::default().with_rate(0.0))
        .with_directives(set)
        .build()
        .expect("build");
    let agent = control.agent("support-bot");
    // An ordinary thread: its debug log passes the level only while the directive fires, and
    // the thread itself is kept only while it fires (the configured rate keeps none).
    let ordinary = |label: &str| {
        let thread = agent.thread();
        thread.log(Level::Debug, &format!("{label}: thread debug"));
        thread.tool_call("search").end();
        let id = thread.id().to_string();
        thread.end();
        control.log(Level::Debug, &format!("{label}: debug"), &[]);
        control.log(Level::Trace, &format!("{label}: trace"), &[]);
        control.log(Level::Warn, &format!("{label}: warn"), &[]);
        control.flush().expect("flush");
        id
    };
    let before = ordinary("before");
    assert!(!control.log_enabled(Level::Debug) && control.log_enabled(Level::Warn));

    let failing = agent.thread();
    for _ in 0..3 {
        failing.tool_call("flaky").set_error("upstream returned 503");
    }
    failing.end();
    control.flush().expect("flush");
    assert_eq!(control.directives().min_log_level(), Some(Level::Debug));
    assert_eq!(control.directives().sampling_rate(), Some(1.0));
    assert!(control.log_enabled(Level::Debug) && !control.log_enabled(Level::Trace));
    let during = ordinary("during");

    let recovering = agent.thread();
    recovering.tool_call("flaky").end();
    recovering.end();
    control.flush().expect("flush");
    assert_eq!(control.directives().min_log_level(), None, "resolved");
    assert_eq!(control.directives().sampling_rate(), None);
    assert!(!control.log_enabled(Level::Debug));
    let after = ordinary("after");

    let store = control.store().expect("store").expect("open");
    let threads = |id: &str| store.query().thread(id).count().expect("count");
    assert_eq!(threads(&before), 0, "sampled out before the incident");
    assert_eq!(threads(&during), 3, "kept while the directive fires: root, tool call, log");
    assert_eq!(threads(&after), 0, "sampled out again after the resolve");
    assert_eq!(
        logged(&store),
        ["after: warn", "before: warn", "during: debug", "during: thread debug", "during: warn"]
    );
    let sampling = control.sampling_stats().expect("sampling is on");
    assert_eq!((sampling.kept_sampled, sampling.kept_error), (1, 1), "{sampling:?}");
    drop(store);
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_low_average_score_fires_and_other_scores_do_not_count() {
    let h = harness(
        r#"
        [[directive]]
        name = "unhelpful"
        when = "avg(score:helpfulness) < 0.7 over 5m"
        group_by = ["agent"]
        "#,
    );
    let score = |name: &str, value: f64, at: u64| {
        let mut event = h.thread.event(
            Symbol::intern(name),
            mission_core::SpanId::NONE,
            EventBody::Score(mission_core::Score::new(value).expect("finite")),
        );
        event.time = Timestamp(at);
        h.recorder().record(event);
    };
    let t0 = now();
    let minute = 60 * SECOND;
    // Ten minutes of good answers, with very low scores of another name beside them (synthetic
    // time): nothing fires (a window is judged once watched whole, from 5 minutes on).
    for i in 0..10 {
        score("helpfulness", 0.9, t0 + i * minute);
        score("thumbs", -1.0, t0 + i * minute + SECOND);
    }
    // Then bad answers: the window's mean falls under 0.7 once the low ones outweigh the good.
    for i in 10..40 {
        score("helpfulness", 0.2, t0 + i * minute);
    }
    h.wait_for("a firing", Duration::from_secs(10), |h| !h.alerts().is_empty());
    let first = &h.alerts()[0];
    assert_eq!(first.state, "firing", "{first:?}");
    assert!(first.value < 0.7 && first.value > 0.2, "the window's mean: {first:?}");
    assert_eq!(first.threshold, 0.7);
    assert_eq!(first.dedup_key, "unhelpful:agent=support-bot");
    // It fired only after the low scores began (the other name's -1s never counted).
    assert!(first.time >= t0 + 10 * minute, "{first:?}");
    let c: Condition = "avg(score:helpfulness) < -0.5 over 1h".parse().expect("negative threshold");
    assert_eq!(c.to_string(), "avg(score:helpfulness) < -0.5 over 1h");
    assert!("avg(score:) < 1 over 1h".parse::<Condition>().is_err());
    assert!("avg(score:a b) < 1 over 1h".parse::<Condition>().is_err());
}

// ---------------------------------------------------------------------------------------------
// Loops: the same call again and again in one thread

/// An agent of tenant `acme` running loop directives, and what they did.
struct LoopWatch {
    control: mission_sdk::MissionControl,
    /// What the `keep` callback saw.
    alerts: Arc<Mutex<Vec<Alert>>>,
    /// The `mission.alert` events recorded.
    events: Arc<Mutex<Vec<Event>>>,
}

/// `toml`'s directives, every firing and resolve of which may call `keep`.
fn loop_watch(toml: &str) -> LoopWatch {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .without_store()
        .without_models()
        .with_tenant("acme")
        .with_directives(DirectiveSet::from_toml_str(toml, "test").expect("directives"))
        .with_sink(FnSink::new("alerts", move |batch: &[Event]| {
            let alerts = batch.iter().filter(|e| e.name.as_str() == "mission.alert");
            seen.lock().expect("lock").extend(alerts.cloned());
            Ok(())
        }))
        .build()
        .expect("build");
    let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let keep = alerts.clone();
    control
        .directives()
        .register_callback("keep", move |a: &Alert| keep.lock().expect("lock").push(a.clone()));
    LoopWatch { control, alerts, events }
}

/// A directive on `when` that alerts and calls `keep`.
fn loop_directive(name: &str, when: &str) -> String {
    format!(
        "[[directive]]\nname = \"{name}\"\nwhen = \"{when}\"\n\
         then = [{{ action = \"alert\" }}, {{ action = \"callback\", name = \"keep\" }}]\n"
    )
}

impl LoopWatch {
    fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().expect("lock").clone()
    }

    fn flush(&self) {
        self.control.flush().expect("flush");
    }

    /// A tool call of `thread` with these arguments, flushed through the directives.
    fn call(&self, thread: &mission_sdk::Thread<'_>, tool: &str, args: &str) {
        let mut span = thread.tool_call(tool);
        span.set_arguments(args);
        span.end();
        self.flush();
    }
}

#[test]
fn a_planted_tool_loop_is_caught_within_n_calls() {
    let w = loop_watch(&loop_directive("tool-loop", "3 same tool calls in a thread"));
    let agent = w.control.agent("support-bot");
    let thread = agent.thread();
    let args = r#"{"query":"refund policy","page":1}"#;
    w.call(&thread, "search_docs", args);
    w.call(&thread, "search_docs", args);
    assert!(w.alerts().is_empty(), "two identical calls are not a loop yet: {:?}", w.alerts());
    w.call(&thread, "search_docs", args);
    let fired = w.alerts();
    assert_eq!(fired.len(), 1, "the third identical call fires: {fired:?}");
    let a = &fired[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!((a.value, a.threshold), (3.0, 3.0));
    assert_eq!(a.thread_id, Some(thread.id()), "the alert names the looping thread");
    assert_eq!(a.tenant, "acme");
    assert_eq!(a.operation, "search_docs");
    let id = thread.id().to_string();
    assert_eq!(
        a.group,
        [("tenant".to_owned(), "acme".to_owned()), ("thread".to_owned(), id.clone())]
    );
    assert_eq!(a.dedup_key, format!("tool-loop:tenant=acme,thread={id}"));
    assert!(a.summary.contains("search_docs with the same arguments 3 times"), "{}", a.summary);
    // The alert event carries the thread too (as an attribute: the event is not the thread's).
    w.flush();
    let events = w.events.lock().expect("lock").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(text_attr(&events[0], ATTR_ALERT_THREAD_ID), id);
    assert_eq!(events[0].tenant.as_str(), "acme");
    assert!(events[0].thread_id.is_zero());
    // A fourth call keeps the one incident (no second firing).
    w.call(&thread, "search_docs", args);
    assert_eq!(w.alerts().len(), 1);
    let status = &w.control.directives().list()[0];
    assert_eq!(status.firing.len(), 1);
    assert_eq!(status.firing[0].value, 4.0);
    // The thread's end ends the loop: resolved, and its group is forgotten.
    thread.end();
    w.flush();
    let alerts = w.alerts();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].state, AlertState::Resolved);
    assert_eq!(alerts[1].thread_id, alerts[0].thread_id);
    assert_eq!(w.control.directives().list()[0].groups, 0);
}

#[test]
fn different_arguments_do_not_count_as_a_loop() {
    let w = loop_watch(&loop_directive("tool-loop", "3 same tool calls in a thread"));
    let agent = w.control.agent("support-bot");
    let (one, two) = (agent.thread(), agent.thread());
    for page in 0..10 {
        w.call(&one, "search_docs", &format!(r#"{{"query":"refund policy","page":{page}}}"#));
    }
    // The same arguments to two tools, twice each; and twice more in another thread.
    let args = r#"{"query":"refund policy"}"#;
    for _ in 0..2 {
        w.call(&one, "search_docs", args);
        w.call(&one, "search_web", args);
        w.call(&two, "search_docs", args);
    }
    // Tool calls without arguments given are not counted at all.
    for _ in 0..5 {
        one.tool_call("search_docs").end();
    }
    w.flush();
    assert!(w.alerts().is_empty(), "{:?}", w.alerts());
    let status = &w.control.directives().list()[0];
    assert_eq!(status.groups, 2, "one group per thread");
    assert_eq!(w.control.directives().stats().loop_calls_evicted, 0);
    // The third time in one thread is a loop.
    w.call(&two, "search_docs", args);
    assert_eq!(w.alerts().len(), 1);
    assert_eq!(w.alerts()[0].thread_id, Some(two.id()));
}

#[test]
fn repeated_llm_request_and_repeated_tool_error() {
    let w = loop_watch(&format!(
        "{}\n{}",
        loop_directive("llm-loop", "3 same llm requests in a thread"),
        loop_directive("error-loop", "3 same tool errors in a thread")
    ));
    let agent = w.control.agent("support-bot");
    let thread = agent.thread();
    let request = r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}"#;
    let ask = |request: &str| {
        let mut span = thread.llm_call("gpt-4.1", "openai");
        span.set_request(request);
        span.end();
        w.flush();
    };
    ask(request);
    ask(r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hello"}]}"#);
    ask(request);
    assert!(w.alerts().is_empty(), "{:?}", w.alerts());
    ask(request);
    let alerts = w.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].directive, "llm-loop");
    assert_eq!(alerts[0].thread_id, Some(thread.id()));
    assert!(alerts[0].summary.contains("sent the same LLM request 3 times"), "{alerts:?}");

    // Tool errors: the same tool and message, whatever the arguments; another message or tool
    // does not count.
    let fail = |tool: &str, page: u32, message: &str| {
        let mut span = thread.tool_call(tool);
        span.set_arguments(&format!(r#"{{"page":{page}}}"#));
        span.set_error(message);
        span.end();
        w.flush();
    };
    fail("fetch_order", 1, "upstream returned 503");
    fail("fetch_order", 2, "upstream returned 503");
    fail("fetch_order", 3, "timed out after 30s");
    fail("fetch_invoice", 4, "upstream returned 503");
    assert_eq!(w.alerts().len(), 1, "{:?}", w.alerts());
    fail("fetch_order", 5, "upstream returned 503");
    let alerts = w.alerts();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].directive, "error-loop");
    assert_eq!(alerts[1].operation, "fetch_order");
    assert!(alerts[1].summary.contains("the same error from fetch_order 3 times"), "{alerts:?}");
    // A successful call of that tool is no error: nothing else fires.
    w.call(&thread, "fetch_order", r#"{"page":6}"#);
    assert_eq!(w.alerts().len(), 2);
}

#[test]
fn loop_groups_are_bounded_per_thread() {
    let w = loop_watch(&loop_directive("tool-loop", "3 same tool calls in a thread"));
    let agent = w.control.agent("support-bot");
    let thread = agent.thread();
    let looping = r#"{"query":"refund policy"}"#;
    w.call(&thread, "search_docs", looping);
    w.call(&thread, "search_docs", looping);
    // 64 other calls: the thread's table holds MAX_LOOP_CALLS, so the looping call, the least
    // recently seen, is forgotten.
    assert_eq!(mission_sdk::directives::MAX_LOOP_CALLS, 64);
    for page in 0..64 {
        w.call(&thread, "search_docs", &format!(r#"{{"page":{page}}}"#));
    }
    assert_eq!(w.control.directives().stats().loop_calls_evicted, 1);
    // So its next call counts from one again (and forgets the oldest other call).
    w.call(&thread, "search_docs", looping);
    assert!(w.alerts().is_empty(), "{:?}", w.alerts());
    assert_eq!(w.control.directives().stats().loop_calls_evicted, 2);
    w.call(&thread, "search_docs", looping);
    w.call(&thread, "search_docs", looping);
    assert_eq!(w.alerts().len(), 1, "{:?}", w.alerts());
    assert_eq!(w.control.directives().list()[0].groups, 1);
}

/// Two tenants' spans with one thread id: two loop groups, two incidents, each of its tenant.
#[test]
fn the_same_thread_id_in_two_tenants_is_two_loop_groups() {
    use mission_core::fingerprint::{attr::TOOL_ARGS_HASH, fingerprint, hex};
    for across in [false, true] {
        let h = harness(&format!(
            "[[directive]]\nname = \"tool-loop\"\nwhen = \"3 same tool calls in a thread\"\n\
             across_tenants = {across}\n"
        ));
        let shared_id = h.thread.thread_id;
        let acme = h.thread;
        let globex = ThreadContext { tenant: Symbol::intern("globex"), ..acme };
        let args = hex(fingerprint(br#"{"query":"refund policy"}"#));
        let recorder = h.recorder();
        let call = |ctx: &ThreadContext| {
            let mut span =
                recorder.start_span(ctx, SpanKind::ToolCall, Symbol::intern("search"), None);
            span.set_attribute(Symbol::intern(TOOL_ARGS_HASH), args.as_str());
            span.end();
        };
        for ctx in [&acme, &globex, &acme, &globex] {
            call(ctx);
        }
        let _ = h.pipeline.flush();
        assert!(h.alerts().is_empty(), "two calls in each tenant: {:?}", h.alerts());
        call(&acme);
        call(&globex);
        let _ = h.pipeline.flush();
        let _ = h.pipeline.flush();
        let mut keys: Vec<String> = h.alerts().into_iter().map(|a| a.dedup_key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                format!("tool-loop:tenant=acme,thread={shared_id}"),
                format!("tool-loop:tenant=globex,thread={shared_id}")
            ],
            "across_tenants = {across}"
        );
        let status = &h.directives.list()[0];
        assert_eq!(status.groups, 2);
        let mut tenants: Vec<String> = status.firing.iter().map(|f| f.tenant.clone()).collect();
        tenants.sort();
        let expected: Vec<String> =
            if across { vec![String::new(); 2] } else { vec!["acme".into(), "globex".into()] };
        assert_eq!(tenants, expected);
    }
}

/// A loop directive whose action cancels the looping thread: the third identical call fires,
/// and the thread's own code then sees `should_stop()` with the directive named as who; its
/// guarded calls are refused; another thread (same agent, other arguments) runs on.
#[test]
fn a_loop_directive_cancels_the_looping_thread() {
    let toml = "[[directive]]\nname = \"stop-loops\"\nwhen = \"3 same tool calls in a thread\"\n\
                then = [{ action = \"alert\" }, { action = \"cancel_thread\", reason = \"tool loop\" }]\n";
    let w = loop_watch(toml);
    let agent = w.control.agent("support-bot");
    let looping = agent.thread();
    let other = agent.thread();
    let args = r#"{"query":"refund policy"}"#;
    w.call(&looping, "search_docs", args);
    w.call(&other, "search_docs", r#"{"query":"shipping"}"#);
    w.call(&looping, "search_docs", args);
    assert!(!looping.should_stop(), "two identical calls are not a loop");
    w.call(&looping, "search_docs", args);
    match looping.stop_reason() {
        Some(mission_sdk::Stop::Cancelled { by, reason, .. }) => {
            assert_eq!((by.as_str(), reason.as_str()), ("directive:stop-loops", "tool loop"));
        }
        other => panic!("expected the directive to cancel the thread: {other:?}"),
    }
    assert!(looping.try_tool_call("search_docs").is_err(), "its guarded calls are refused");
    assert!(!other.should_stop(), "another thread runs on");
    let stats = w.control.directives().stats();
    assert_eq!((stats.threads_controlled, stats.thread_controls_failed), (1, 0));
}

/// A thread action on a firing that names no thread (failures of a tool, across threads) does
/// nothing and is counted.
#[test]
fn a_thread_action_without_a_thread_is_counted_not_guessed() {
    let toml = "[[directive]]\nname = \"failing\"\nwhen = \"3 failures in a row\"\n\
                then = [{ action = \"pause_thread\" }]\n";
    let w = loop_watch(toml);
    let thread = w.control.agent("support-bot").thread();
    for _ in 0..3 {
        let mut span = thread.tool_call("search_docs");
        span.set_error("upstream 503");
        span.end();
        w.flush();
    }
    assert!(!thread.should_stop());
    let stats = w.control.directives().stats();
    assert!(stats.fired >= 1, "{stats:?}");
    assert_eq!(stats.threads_controlled, 0);
    assert!(stats.thread_controls_failed >= 1, "{stats:?}");
}

/// A loop caught in one tenant's thread cancels that thread only, never the thread of the same
/// id another tenant runs (ids are shared across tenants in multi-tenant agents).
#[test]
fn a_loop_remedy_never_acts_on_another_tenants_thread() {
    use mission_sdk::threads::NewThread;
    let toml = "[[directive]]\nname = \"stop-loops\"\nwhen = \"3 same tool calls in a thread\"\n\
                then = [{ action = \"cancel_thread\" }]\n";
    let w = loop_watch(toml);
    let id = mission_sdk::ThreadId::generate();
    let now = mission_sdk::core::Timestamp::now().0;
    let registry = w.control.threads();
    let theirs = registry
        .register(NewThread::new(
            mission_sdk::core::Symbol::intern("globex"),
            mission_sdk::core::Symbol::intern("support-bot"),
            id,
            now,
        ))
        .expect("room");
    let mine = w.control.agent("support-bot").thread_with_id(id);
    for _ in 0..3 {
        w.call(&mine, "search_docs", r#"{"q":1}"#);
    }
    assert!(mine.should_stop(), "acme's looping thread is cancelled");
    assert_eq!(registry.state(theirs), Some(mission_sdk::ThreadState::Running), "globex's is not");
}
