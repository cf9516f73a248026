//! [`Row`]: one event as the dashboard handles it, from the live stream ([`Row::from_event`]) or
//! from the store (a [`EventRow`] the store decoded, through `From`), and its JSON renderings
//! (the rows of the API).

use std::hash::{Hash, Hasher};

use mission_core::{Decision, Event, EventBody};
use mission_store::EventRow;
use serde_json::{Value, json};

use mission_core::anomaly::attr;
use mission_govern::directives::{
    ALERT_EVENT, ATTR_ALERT_SEVERITY, ATTR_ALERT_STATE, ATTR_DIRECTIVE,
};

/// One event, owned, with the fields the dashboard shows (absent ones `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Row {
    /// When it happened (a span: when it started), ns since the Unix epoch.
    pub time_ns: i64,
    /// `llm_call`, `tool_call`, …, `log`, `metric`, `permission`, `anomaly`.
    pub kind: String,
    pub tenant: String,
    pub agent: String,
    /// 32 hex digits; `None` outside a thread.
    pub thread_id: Option<String>,
    /// A span's own id, or the span another event happened in (0: none).
    pub span_id: u64,
    /// A span's parent (0: a root).
    pub parent_span_id: u64,
    pub name: String,
    /// Set for spans only.
    pub duration_ns: Option<i64>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub level: Option<String>,
    pub message: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub decision: Option<String>,
    pub policy: Option<String>,
    pub score: Option<f64>,
    pub value: Option<f64>,
    pub expected: Option<f64>,
    /// A score's label.
    pub label: Option<String>,
    /// A score's source: `human`, `llm`, `rule`.
    pub source: Option<String>,
    /// Attribute values as text (as the store keeps them), in recorded order.
    pub attributes: Vec<(String, String)>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `{:016x}` of a span id, `None` for 0.
pub(crate) fn hex_span(id: u64) -> Option<String> {
    (id != 0).then(|| format!("{id:016x}"))
}

impl Row {
    /// The row of a live event.
    pub(crate) fn from_event(e: &Event) -> Self {
        let mut row = Row {
            time_ns: to_i64(e.time.0),
            kind: e.kind().as_str().to_owned(),
            tenant: e.tenant.as_str().to_owned(),
            agent: e.agent.as_str().to_owned(),
            thread_id: (!e.thread_id.is_zero()).then(|| e.thread_id.to_string()),
            span_id: e.span_id.0,
            parent_span_id: e.parent_span_id.0,
            name: e.name.as_str().to_owned(),
            attributes: e
                .attributes
                .iter()
                .map(|a| (a.key.as_str().to_owned(), a.value.to_string()))
                .collect(),
            ..Row::default()
        };
        match &e.body {
            EventBody::Span(s) => {
                row.duration_ns = Some(to_i64(s.duration_ns));
                row.status = Some(s.status.as_str().to_owned());
                row.error = non_empty(s.error_message.as_str());
                if !s.llm.is_empty() {
                    row.model = non_empty(s.llm.model.as_str());
                    row.input_tokens = Some(s.llm.input_tokens.into());
                    row.output_tokens = Some(s.llm.output_tokens.into());
                    row.cost_usd = Some(s.llm.cost_usd);
                }
            }
            EventBody::Log(l) => {
                row.level = Some(l.level.as_str().to_owned());
                row.message = Some(l.message.as_str().to_owned());
            }
            EventBody::Metric(m) => row.value = Some(m.value),
            EventBody::Permission(p) => {
                row.actor = Some(p.actor.as_str().to_owned());
                row.action = Some(p.action.as_str().to_owned());
                row.resource = Some(p.resource.as_str().to_owned());
                row.decision = Some(
                    match p.decision {
                        Decision::Allow => "allow",
                        Decision::Deny => "deny",
                    }
                    .to_owned(),
                );
                row.policy = Some(p.policy.as_str().to_owned());
            }
            EventBody::Anomaly(a) => {
                row.score = Some(a.score);
                row.value = Some(a.value);
                row.expected = Some(a.expected);
            }
            EventBody::Score(sc) => {
                row.value = Some(sc.value);
                row.label = non_empty(sc.label.as_str());
                row.message = non_empty(sc.comment.as_str());
                row.source = Some(sc.source.as_str().to_owned());
            }
        }
        row
    }

    /// Whether this is a span (it has a duration).
    pub(crate) fn is_span(&self) -> bool {
        self.duration_ns.is_some()
    }

    /// Whether this is a span that failed.
    pub(crate) fn is_error(&self) -> bool {
        self.is_span() && self.status.as_deref() == Some("error")
    }

    /// When it ended (a span: start + duration).
    pub(crate) fn end_ns(&self) -> i64 {
        self.time_ns.saturating_add(self.duration_ns.unwrap_or(0).max(0))
    }

    /// Whether this is a directive's alert (a `mission.alert` log record).
    pub(crate) fn is_alert(&self) -> bool {
        self.kind == "log" && self.name == ALERT_EVENT
    }

    /// An attribute's value.
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Identifies the event whichever way it was read (live or from the store), to count an
    /// event seen both ways once.
    pub(crate) fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.time_ns, self.span_id, &self.kind, &self.thread_id, &self.name).hash(&mut h);
        h.finish()
    }

    /// The log record's level as a number (trace 0 … error 4).
    pub(crate) fn level_rank(&self) -> u8 {
        self.level.as_deref().map_or(2, level_rank)
    }

    fn attributes_json(&self) -> Value {
        Value::Object(
            self.attributes.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
        )
    }

    /// A score as a thread view and the overview list it.
    pub(crate) fn score_json(&self) -> Value {
        json!({
            "time_ms": self.time_ns / 1_000_000,
            "name": self.name,
            "value": self.value,
            "label": self.label,
            "comment": self.message,
            "source": self.source,
            "agent": self.agent,
            "thread_id": self.thread_id,
            "span_id": hex_span(self.span_id),
        })
    }

    /// A span as the stream's `span` event and a thread view's span row carry it.
    pub(crate) fn span_json(&self) -> Value {
        json!({
            "ts_ns": self.time_ns,
            "start_ns": self.time_ns,
            "end_ns": self.end_ns(),
            "thread_id": self.thread_id,
            "span_id": hex_span(self.span_id),
            "parent_id": hex_span(self.parent_span_id),
            "tenant": self.tenant,
            "agent": self.agent,
            "kind": self.kind,
            "name": self.name,
            "duration_ms": self.duration_ns.unwrap_or(0) as f64 / 1e6,
            "status": self.status.as_deref().unwrap_or("unset"),
            "model": self.model,
            "input_tokens": self.input_tokens.unwrap_or(0),
            "output_tokens": self.output_tokens.unwrap_or(0),
            "cost_usd": self.cost_usd.unwrap_or(0.0),
            "error": self.error,
            "attributes": self.attributes_json(),
        })
    }

    /// A log record as an `/api/logs` row.
    pub(crate) fn log_json(&self) -> Value {
        json!({
            "ts_ns": self.time_ns,
            "level": self.level.as_deref().unwrap_or("info"),
            "tenant": self.tenant,
            "agent": self.agent,
            "thread_id": self.thread_id,
            "span_id": hex_span(self.span_id),
            "name": self.name,
            "message": self.message.as_deref().unwrap_or(""),
            "attributes": self.attributes_json(),
        })
    }

    /// A permission decision as a thread view's row (with its thread).
    pub(crate) fn permission_json(&self) -> Value {
        json!({
            "ts_ns": self.time_ns,
            "thread_id": self.thread_id,
            "span_id": hex_span(self.span_id),
            "tenant": self.tenant,
            "agent": self.agent,
            "actor": self.actor.as_deref().unwrap_or(""),
            "action": self.action.as_deref().unwrap_or(&self.name),
            "resource": self.resource.as_deref().unwrap_or(""),
            "decision": self.decision.as_deref().unwrap_or(""),
            "rule": self.policy.as_deref().unwrap_or(""),
        })
    }

    /// An anomaly as an `/api/anomalies` row.
    pub(crate) fn anomaly_json(&self) -> Value {
        let get = |k: &str| self.attribute(k).map(str::to_owned);
        let operation = get(attr::OPERATION).unwrap_or_else(|| self.name.clone());
        let direction = get(attr::DIRECTION).unwrap_or_default();
        let cause = get(attr::CAUSE);
        let contribution = get(attr::CAUSE_CONTRIBUTION).and_then(|c| c.parse::<f64>().ok());
        let model = get(attr::MODEL);
        let (value, expected) = (self.value.unwrap_or(f64::NAN), self.expected.unwrap_or(f64::NAN));
        let mut summary = format!(
            "{} {} of {}{} {} ({} vs {} expected)",
            self.agent,
            self.name,
            operation,
            model.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
            if direction == "down" { "fell" } else { "rose" },
            short(value),
            short(expected),
        );
        if let Some(c) = &cause {
            summary.push_str(&format!("; likely cause {c}"));
        }
        let finite = |x: f64| x.is_finite().then_some(x);
        json!({
            "id": hex_span(self.span_id),
            "ts_ns": self.time_ns,
            "tenant": self.tenant,
            "agent": self.agent,
            "operation": operation,
            "model": model,
            "metric": self.name,
            "score": finite(self.score.unwrap_or(f64::NAN)),
            "value": finite(value),
            "expected": finite(expected),
            "direction": direction,
            "cause": cause,
            "cause_contribution": contribution.and_then(finite),
            "summary": summary,
            "thread_id": get(attr::EXEMPLAR_THREAD_ID),
        })
    }

    /// A directive's alert as an `/api/anomalies` alert row.
    pub(crate) fn alert_json(&self) -> Value {
        json!({
            "ts_ns": self.time_ns,
            "directive": self.attribute(ATTR_DIRECTIVE).unwrap_or(""),
            "state": self.attribute(ATTR_ALERT_STATE).unwrap_or("firing"),
            "severity": self.attribute(ATTR_ALERT_SEVERITY).unwrap_or("warning"),
            "message": self.message.as_deref().unwrap_or(""),
            "tenant": self.tenant,
            "agent": self.agent,
        })
    }
}

/// A stored event as the dashboard shows it: the store decodes, this only picks and renames
/// (a score's value, label, comment and source share the columns a metric and a log use here),
/// and reads as absent what [`Row::from_event`] leaves absent (an empty thread id, error
/// message or model; span id 0).
impl From<EventRow> for Row {
    fn from(e: EventRow) -> Self {
        let present = |s: Option<String>| s.filter(|s| !s.is_empty());
        Row {
            time_ns: e.time_ns,
            kind: e.kind,
            tenant: e.tenant,
            agent: e.agent,
            thread_id: present(e.thread_id),
            span_id: e.span_id.unwrap_or(0),
            parent_span_id: e.parent_span_id.unwrap_or(0),
            name: e.name,
            duration_ns: e.duration_ns,
            status: e.status,
            error: present(e.error_message),
            model: present(e.model),
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cost_usd: e.cost_usd,
            level: e.level,
            message: e.message.or(e.score_comment),
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            decision: e.decision,
            policy: e.policy,
            score: e.score,
            value: e.value.or(e.score_value),
            expected: e.expected,
            label: e.score_label,
            source: e.score_source,
            attributes: e.attributes,
        }
    }
}

/// `trace` 0 … `error` 4 (unknown: info).
pub(crate) fn level_rank(level: &str) -> u8 {
    match level {
        "trace" => 0,
        "debug" => 1,
        "warn" | "warning" => 3,
        "error" => 4,
        _ => 2,
    }
}

/// A number with a few significant digits, for summaries.
fn short(x: f64) -> String {
    if !x.is_finite() {
        "?".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The event name a row goes out under on the stream, if it goes out at all.
pub(crate) fn stream_name(row: &Row) -> Option<&'static str> {
    if row.is_span() {
        Some("span")
    } else if row.is_alert() {
        Some("alert")
    } else {
        match row.kind.as_str() {
            "log" => Some("log"),
            "anomaly" => Some("anomaly"),
            "permission" => Some("permission"),
            _ => None,
        }
    }
}

/// A row's stream payload.
pub(crate) fn stream_json(row: &Row, name: &str) -> Value {
    match name {
        "span" => row.span_json(),
        "alert" => row.alert_json(),
        "anomaly" => row.anomaly_json(),
        "permission" => row.permission_json(),
        _ => row.log_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mission_core::{Level, LogRecord, SpanEnd, SpanKind, Status, Symbol, Text};

    #[test]
    fn live_rows_carry_what_the_api_shows() {
        let mut e = Event::new(
            Symbol::intern("web_search"),
            EventBody::Span(SpanEnd {
                kind: SpanKind::ToolCall,
                status: Status::Error,
                duration_ns: 2_500_000,
                ..SpanEnd::default()
            }),
        );
        e.span_id = mission_core::SpanId(0xab);
        e.thread_id = mission_core::ThreadId(7);
        let row = Row::from_event(&e);
        assert!(row.is_error());
        let j = row.span_json();
        assert_eq!(j["duration_ms"], 2.5);
        assert_eq!(j["span_id"], "00000000000000ab");
        assert_eq!(j["parent_id"], Value::Null);
        assert_eq!(j["thread_id"], "00000000000000000000000000000007");
        assert_eq!(stream_name(&row), Some("span"));

        let log = Event::new(
            Symbol::intern(ALERT_EVENT),
            EventBody::Log(LogRecord {
                level: Level::Warn,
                target: Symbol::intern("x"),
                message: Text::new("slow"),
            }),
        );
        let row = Row::from_event(&log);
        assert_eq!(stream_name(&row), Some("alert"));
        assert_eq!(row.level_rank(), 3);
        assert_eq!(row.thread_id, None);
    }
}
