//! Webhook bodies (signed JSON, Slack, PagerDuty Events v2) and the delivery worker: one thread
//! with a bounded queue, so a slow or dead endpoint never blocks the pipeline (a full queue
//! drops the delivery and counts it). The POST itself goes through a [`WebhookTransport`]
//! (`mission-export`'s HTTP client in `mission-sdk`): this crate opens no connection.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use mission_core::{AttrValue, Event, EventBody, Level, LogRecord, Symbol, Text, WeakRecorder};

use super::action::{Alert, AlertState, KEYS, group_text, rfc3339};
use super::spec::{WebhookFormat, WebhookSpec};
use super::{Counters, DirectiveError};

/// Header carrying `sha256=<hex HMAC-SHA256 of the exact body>`.
pub const SIGNATURE_HEADER: &str = "X-Mission-Signature";
/// Header carrying the Unix time (seconds) the body was made; the body's `sent_at` has the same
/// value and is covered by the signature, so a receiver rejects old or replayed deliveries.
pub const TIMESTAMP_HEADER: &str = "X-Mission-Timestamp";
/// Header carrying an id that stays the same across retries of one delivery.
pub const DELIVERY_HEADER: &str = "X-Mission-Delivery";
/// Deliveries waiting at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 1024;
/// The longest wait between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as [`SIGNATURE_HEADER`] carries it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + bytes.len() * 2);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// What one POST of a webhook delivery is: the transport sends exactly this.
#[derive(Debug)]
#[non_exhaustive]
pub struct WebhookRequest<'a> {
    /// Where to POST.
    pub url: &'a str,
    /// The JSON body, exactly as signed.
    pub body: &'a [u8],
    /// Headers to send (content type, timestamp, delivery id, signature).
    pub headers: &'a [(String, String)],
    /// How long the attempt may take.
    pub timeout: Duration,
    /// Extra CA certificates (PEM) to trust, as [`WebhookTransport::load_ca`] returned them.
    pub ca: Option<&'a Arc<[u8]>>,
}

/// What one attempt of a delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// Accepted, with the HTTP status.
    Delivered(u16),
    /// Failed in a way a later attempt may not (HTTP 429 or 5xx, a connection error): the
    /// status (0: none) and why.
    Retry(u16, String),
    /// Failed for good (another status, a certificate not trusted): the status and why.
    Fail(u16, String),
}

/// How webhook deliveries reach the network. The directives build the bodies, sign them,
/// queue, retry with backoff and count; a transport only makes one POST. `mission-export`'s
/// `webhooks` feature has the HTTP one (`mission_export::webhooks::HttpTransport`), which
/// `mission-sdk` installs; [`NoTransport`] fails every delivery.
pub trait WebhookTransport: Send + Sync + 'static {
    /// Checks a webhook's `url` when its directive loads (e.g. refuses `https://` without
    /// TLS). The default accepts every URL.
    ///
    /// # Errors
    /// Why the URL cannot be used.
    fn check_url(&self, url: &str) -> Result<(), String> {
        let _ = url;
        Ok(())
    }

    /// Reads and checks a webhook's `ca_file` when its directive loads.
    ///
    /// # Errors
    /// Why the file cannot be used, naming it.
    fn load_ca(&self, path: &Path) -> Result<Arc<[u8]>, String>;

    /// Makes one attempt of `request`. Called on the delivery thread only.
    fn post(&self, request: &WebhookRequest<'_>) -> PostOutcome;
}

/// The transport of directives built without one: loading works, every delivery fails (and
/// is counted and recorded as failed) saying so.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTransport;

impl WebhookTransport for NoTransport {
    fn load_ca(&self, path: &Path) -> Result<Arc<[u8]>, String> {
        std::fs::read(path).map(Arc::from).map_err(|e| format!("CA file {}: {e}", path.display()))
    }

    fn post(&self, _: &WebhookRequest<'_>) -> PostOutcome {
        PostOutcome::Fail(
            0,
            "no webhook transport: mission-sdk was built without the `webhooks` feature".into(),
        )
    }
}

/// A webhook with its secrets read.
#[derive(Clone, Debug)]
pub(crate) struct Webhook {
    pub spec: WebhookSpec,
    secret: Option<String>,
    routing_key: Option<String>,
    /// The CA file's certificates, read when the directive was loaded.
    ca: Option<Arc<[u8]>>,
}

fn from_env(var: &str, field: &str) -> Result<String, DirectiveError> {
    std::env::var(var).map_err(|_| DirectiveError::Invalid {
        origin: format!("environment variable {var}"),
        message: format!("field `{field}`: {var} is not set"),
    })
}

impl Webhook {
    /// Reads the secrets named by environment variables, checks the URL and reads the CA file
    /// with `transport`.
    pub fn new(
        spec: WebhookSpec,
        transport: &dyn WebhookTransport,
    ) -> Result<Self, DirectiveError> {
        transport.check_url(&spec.url).map_err(|e| DirectiveError::Invalid {
            origin: format!("webhook {}", spec.url),
            message: format!("field `url`: {e}"),
        })?;
        let secret = match (&spec.secret, &spec.secret_env) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(var)) => Some(from_env(var, "secret_env")?),
            _ => None,
        };
        let routing_key = match (&spec.routing_key, &spec.routing_key_env) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(var)) => Some(from_env(var, "routing_key_env")?),
            _ => None,
        };
        let ca = match &spec.ca_file {
            Some(path) => Some(transport.load_ca(path).map_err(|e| DirectiveError::Invalid {
                origin: format!("webhook {}", spec.url),
                message: format!("field `ca_file`: {e}"),
            })?),
            None => None,
        };
        Ok(Self { spec, secret, routing_key, ca })
    }

    /// The delivery of `alert`, or `None` when this webhook skips it (resolves not wanted; an
    /// acknowledgement is never sent: the incident was delivered when it fired).
    pub fn delivery(&self, alert: &Alert, directive: &str, sent_at: u64) -> Option<Box<Delivery>> {
        match alert.state {
            AlertState::Resolved if !self.spec.send_resolved => return None,
            AlertState::Acknowledged => return None,
            _ => {}
        }
        let body = match self.spec.format {
            WebhookFormat::Json => json_body(alert, sent_at),
            WebhookFormat::Slack => slack_body(alert),
            WebhookFormat::Pagerduty => {
                pagerduty_body(alert, self.routing_key.as_deref().unwrap_or_default())
            }
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (TIMESTAMP_HEADER.to_owned(), sent_at.to_string()),
            (
                DELIVERY_HEADER.to_owned(),
                format!("{}:{}:{}", alert.dedup_key, alert.state.as_str(), alert.time.0),
            ),
        ];
        if let Some(secret) = &self.secret {
            headers.push((SIGNATURE_HEADER.to_owned(), sign(secret.as_bytes(), &body)));
        }
        Some(Box::new(Delivery {
            directive: directive.to_owned(),
            dedup_key: alert.dedup_key.clone(),
            tenant: alert.tenant.clone(),
            url: self.spec.url.clone(),
            body,
            headers,
            timeout: self.spec.timeout,
            retries: self.spec.retries,
            backoff: self.spec.backoff,
            ca: self.ca.clone(),
        }))
    }
}

fn json_body(alert: &Alert, sent_at: u64) -> serde_json::Value {
    let group: serde_json::Map<String, serde_json::Value> =
        alert.group.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let mut body = serde_json::json!({
        "version": 1,
        "directive": alert.directive,
        "description": alert.description,
        "state": alert.state.as_str(),
        "dedup_key": alert.dedup_key,
        "severity": alert.severity.as_str(),
        "condition": alert.condition,
        "summary": alert.summary,
        "value": finite(alert.value),
        "threshold": finite(alert.threshold),
        "group": group,
        "tenant": alert.tenant,
        "agent": alert.agent,
        "operation": alert.operation,
        "time": rfc3339(alert.time),
        "sent_at": sent_at,
    });
    // Present only for the conditions that have them: a loop's thread, a schedule's misses.
    if let Some(thread) = alert.thread_id {
        body["thread_id"] = thread.to_string().into();
    }
    if let Some(missed) = alert.missed {
        body["missed"] = missed.into();
    }
    body
}

fn finite(v: f64) -> serde_json::Value {
    if v.is_finite() { v.into() } else { serde_json::Value::Null }
}

fn slack_body(alert: &Alert) -> serde_json::Value {
    let (icon, state) = match alert.state {
        AlertState::Firing => (":rotating_light:", "FIRING"),
        AlertState::Acknowledged => (":eyes:", "ACKNOWLEDGED"),
        AlertState::Resolved => (":white_check_mark:", "RESOLVED"),
    };
    let text = format!("{icon} [{state}] {}: {}", alert.directive, alert.summary);
    let mut context =
        format!("severity {} · dedup key `{}`", alert.severity.as_str(), alert.dedup_key);
    if !alert.group.is_empty() {
        context.push_str(&format!(" · {}", group_text(&alert.group)));
    }
    serde_json::json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": { "type": "plain_text", "text": format!("{state}: {}", alert.directive) }
            },
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": format!("{icon} {}", alert.summary) }
            },
            {
                "type": "context",
                "elements": [ { "type": "mrkdwn", "text": context } ]
            }
        ]
    })
}

fn pagerduty_body(alert: &Alert, routing_key: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "routing_key": routing_key,
        "event_action": match alert.state {
            AlertState::Firing => "trigger",
            AlertState::Acknowledged => "acknowledge",
            AlertState::Resolved => "resolve",
        },
        "dedup_key": alert.dedup_key,
    });
    if alert.state == AlertState::Firing {
        let summary: String = alert.summary.chars().take(1024).collect();
        let source = if alert.agent.is_empty() { "mission-control" } else { alert.agent.as_str() };
        body["payload"] = serde_json::json!({
            "summary": summary,
            "source": source,
            "severity": alert.severity.as_str(),
            "timestamp": rfc3339(alert.time),
            "component": alert.operation,
            "group": alert.tenant,
            "class": alert.directive,
            "custom_details": {
                "condition": alert.condition,
                "value": finite(alert.value),
                "threshold": finite(alert.threshold),
                "group": group_text(&alert.group),
                "description": alert.description,
            }
        });
    }
    body
}

/// One POST to make.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    directive: String,
    dedup_key: String,
    tenant: String,
    url: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    ca: Option<Arc<[u8]>>,
}

/// The delivery thread and its queue.
pub(crate) struct Worker {
    queue: Option<SyncSender<Box<Delivery>>>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the delivery thread, posting through `transport`.
    pub fn start(
        counters: Arc<Counters>,
        recorder: WeakRecorder,
        transport: Arc<dyn WebhookTransport>,
    ) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE_CAPACITY);
        let (finished, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread =
            std::thread::Builder::new().name("mission-webhooks".into()).spawn(move || {
                run(jobs, &counters, &recorder, transport.as_ref(), &stopping);
                let _ = finished.send(());
            })?;
        Ok(Self { queue: Some(queue), stop, done, thread: Some(thread) })
    }

    /// Queues a delivery without waiting; `Err` gives it back when the queue is full.
    pub fn send(&self, delivery: Box<Delivery>) -> Result<(), Box<Delivery>> {
        match self.queue.as_ref().map(|q| q.try_send(delivery)) {
            Some(Ok(())) => Ok(()),
            Some(Err(TrySendError::Full(d) | TrySendError::Disconnected(d))) => Err(d),
            None => Ok(()),
        }
    }

    /// Delivers what is queued (without retries) for up to `wait`, then leaves the thread to
    /// finish on its own.
    pub fn stop(&mut self, wait: Duration) {
        self.stop.store(true, Ordering::Release);
        self.queue = None;
        if self.done.recv_timeout(wait).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

fn run(
    jobs: Receiver<Box<Delivery>>,
    counters: &Counters,
    recorder: &WeakRecorder,
    transport: &dyn WebhookTransport,
    stop: &AtomicBool,
) {
    while let Ok(d) = jobs.recv() {
        let mut attempts = 0u32;
        let (outcome, status, why) = loop {
            attempts += 1;
            let request = WebhookRequest {
                url: &d.url,
                body: &d.body,
                headers: &d.headers,
                timeout: d.timeout,
                ca: d.ca.as_ref(),
            };
            match transport.post(&request) {
                PostOutcome::Delivered(status) => break ("delivered", status, String::new()),
                PostOutcome::Fail(status, why) => break ("failed", status, why),
                PostOutcome::Retry(status, why) => {
                    if attempts > d.retries || stop.load(Ordering::Acquire) {
                        break ("failed", status, why);
                    }
                    counters.webhook_retries.fetch_add(1, Ordering::Relaxed);
                    let wait =
                        d.backoff.saturating_mul(1u32 << (attempts - 1).min(16)).min(MAX_BACKOFF);
                    let until = std::time::Instant::now() + wait;
                    while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10).min(wait));
                    }
                }
            }
        };
        let counter = if outcome == "delivered" {
            &counters.webhooks_delivered
        } else {
            &counters.webhooks_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(recorder) = recorder.upgrade()
            && recorder.record(delivery_event(&d, outcome, status, attempts, &why))
        {
            counters.derived.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The `mission.webhook.delivery` event of a delivery's outcome.
pub(crate) fn delivery_event(
    d: &Delivery,
    outcome: &str,
    status: u16,
    attempts: u32,
    why: &str,
) -> Event {
    let k = &KEYS;
    let (level, message) = match outcome {
        "delivered" => (Level::Info, format!("webhook delivered to {}", d.url)),
        _ => (Level::Warn, format!("webhook to {} {outcome}: {why}", d.url)),
    };
    let mut event = Event::new(
        k.delivery.get(),
        EventBody::Log(LogRecord {
            level,
            target: k.target.get(),
            message: Text::bounded(&message, 1024),
        }),
    );
    event.tenant = Symbol::intern(&d.tenant);
    let a = &mut event.attributes;
    a.set(k.directive.get(), d.directive.as_str());
    a.set(k.dedup_key.get(), d.dedup_key.as_str());
    a.set(k.outcome.get(), outcome);
    a.set(k.status.get(), AttrValue::Int(i64::from(status)));
    a.set(k.attempts.get(), AttrValue::Int(i64::from(attempts)));
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
