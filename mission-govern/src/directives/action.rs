//! What a firing produces: the [`Alert`] every action receives, and the `mission.alert` event.

use mission_core::{
    AttrValue, Event, EventBody, LazySymbol, Level, LogRecord, Symbol, Text, ThreadId, Timestamp,
};

use super::spec::Severity;

/// Name of the log event an alert records: [`EventBody::Log`] at warn or error.
pub const ALERT_EVENT: &str = "mission.alert";
/// Name of the log event recording a webhook delivery's outcome.
pub const DELIVERY_EVENT: &str = "mission.webhook.delivery";
/// Name of the log event recording a circuit breaker opening or closing.
pub const BREAKER_EVENT: &str = "mission.breaker";
/// The `target` of every event the directives engine records.
pub const DIRECTIVES_TARGET: &str = "mission.directives";

/// Attribute: the directive's name.
pub const ATTR_DIRECTIVE: &str = "mission.directive";
/// Attribute: `firing`, `acknowledged` or `resolved`.
pub const ATTR_ALERT_STATE: &str = "mission.alert.state";
/// Attribute: the incident's dedup key (`<directive>` or `<directive>:<group>`).
pub const ATTR_DEDUP_KEY: &str = "mission.alert.dedup_key";
/// Attribute: the observed value (statistic, score, burn rate or count).
pub const ATTR_ALERT_VALUE: &str = "mission.alert.value";
/// Attribute: the threshold it was compared with.
pub const ATTR_ALERT_THRESHOLD: &str = "mission.alert.threshold";
/// Attribute: `info`, `warning`, `error` or `critical`.
pub const ATTR_ALERT_SEVERITY: &str = "mission.alert.severity";
/// Attribute: the incident's group, `field=value,…` (absent when ungrouped).
pub const ATTR_ALERT_GROUP: &str = "mission.alert.group";
/// Attribute: a webhook delivery's outcome: `delivered`, `failed` or `dropped`.
pub const ATTR_DELIVERY_OUTCOME: &str = "mission.webhook.outcome";
/// Attribute: the last HTTP status of a delivery (0 when none came back).
pub const ATTR_DELIVERY_STATUS: &str = "mission.webhook.status";
/// Attribute: how many attempts a delivery took.
pub const ATTR_DELIVERY_ATTEMPTS: &str = "mission.webhook.attempts";
/// Attribute: who acknowledged a firing incident (on an `acknowledged` alert).
pub const ATTR_ALERT_ACKNOWLEDGED_BY: &str = "mission.alert.acknowledged_by";
/// Attribute: the note left with an acknowledgement (absent when none).
pub const ATTR_ALERT_NOTE: &str = "mission.alert.note";
/// Attribute: the thread a loop condition's incident is about (32 hex digits; absent for
/// other conditions). Not the alert event's own thread id, so sampling never holds an alert
/// back with its thread.
pub const ATTR_ALERT_THREAD_ID: &str = "mission.alert.thread_id";
/// Attribute: on a scheduled directive's firing, how many earlier due times passed without
/// a firing of their own (no tick came): 0 when none did.
pub const ATTR_SCHEDULE_MISSED: &str = "mission.schedule.missed";
/// Attribute: an acknowledgement's verdict on what fired: `true_positive` or
/// `false_positive` (absent when none was given).
pub const ATTR_ALERT_VERDICT: &str = "mission.alert.verdict";
/// Attribute: on an acknowledgement with a verdict of an anomaly condition's firing, the
/// detector of the anomaly that fired it (what the verdict grades).
pub const ATTR_ALERT_DETECTOR: &str = "mission.anomaly.detector";
/// Attribute: the breaker's tool.
pub const ATTR_BREAKER_TOOL: &str = "mission.breaker.tool";
/// Attribute: the breaker's new state: `open` or `closed`.
pub const ATTR_BREAKER_STATE: &str = "mission.breaker.state";

pub(crate) struct Keys {
    pub alert: LazySymbol,
    pub delivery: LazySymbol,
    pub breaker: LazySymbol,
    pub target: LazySymbol,
    pub directive: LazySymbol,
    pub state: LazySymbol,
    pub dedup_key: LazySymbol,
    pub value: LazySymbol,
    pub threshold: LazySymbol,
    pub severity: LazySymbol,
    pub group: LazySymbol,
    pub outcome: LazySymbol,
    pub status: LazySymbol,
    pub attempts: LazySymbol,
    pub tool: LazySymbol,
    pub breaker_state: LazySymbol,
    pub acknowledged_by: LazySymbol,
    pub note: LazySymbol,
    pub thread_id: LazySymbol,
    pub missed: LazySymbol,
}

pub(crate) static KEYS: Keys = Keys {
    alert: LazySymbol::new(ALERT_EVENT),
    delivery: LazySymbol::new(DELIVERY_EVENT),
    breaker: LazySymbol::new(BREAKER_EVENT),
    target: LazySymbol::new(DIRECTIVES_TARGET),
    directive: LazySymbol::new(ATTR_DIRECTIVE),
    state: LazySymbol::new(ATTR_ALERT_STATE),
    dedup_key: LazySymbol::new(ATTR_DEDUP_KEY),
    value: LazySymbol::new(ATTR_ALERT_VALUE),
    threshold: LazySymbol::new(ATTR_ALERT_THRESHOLD),
    severity: LazySymbol::new(ATTR_ALERT_SEVERITY),
    group: LazySymbol::new(ATTR_ALERT_GROUP),
    outcome: LazySymbol::new(ATTR_DELIVERY_OUTCOME),
    status: LazySymbol::new(ATTR_DELIVERY_STATUS),
    attempts: LazySymbol::new(ATTR_DELIVERY_ATTEMPTS),
    tool: LazySymbol::new(ATTR_BREAKER_TOOL),
    breaker_state: LazySymbol::new(ATTR_BREAKER_STATE),
    acknowledged_by: LazySymbol::new(ATTR_ALERT_ACKNOWLEDGED_BY),
    note: LazySymbol::new(ATTR_ALERT_NOTE),
    thread_id: LazySymbol::new(ATTR_ALERT_THREAD_ID),
    missed: LazySymbol::new(ATTR_SCHEDULE_MISSED),
};

/// Whether an alert starts, acknowledges or ends an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition started to hold.
    Firing,
    /// Someone (an operator) acknowledged the firing incident: it still fires, and resolves
    /// as usual. Recorded as an alert event only: no webhook or callback is called for it.
    Acknowledged,
    /// The condition stopped holding (or the directive was disabled or removed).
    Resolved,
}

impl AlertState {
    /// `firing`, `acknowledged` or `resolved`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One firing or resolve of a directive, as callbacks and webhooks receive it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alert {
    /// The directive.
    pub directive: String,
    /// Its description.
    pub description: String,
    /// Firing, acknowledged or resolved.
    pub state: AlertState,
    /// The same for the firing and the resolve of one incident: `<directive>` or
    /// `<directive>:<field>=<value>,…`.
    pub dedup_key: String,
    /// How bad.
    pub severity: Severity,
    /// The condition, as text.
    pub condition: String,
    /// The incident's group: (field, value) pairs, in `group_by` order.
    pub group: Vec<(String, String)>,
    /// The observed value when it fired (statistic, score, burn rate, count).
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// One line for people: what crossed what.
    pub summary: String,
    /// The tenant of the last event of the incident (empty if none).
    pub tenant: String,
    /// The agent of the last event of the incident (empty if none).
    pub agent: String,
    /// The operation of the incident's group or last event (empty if none).
    pub operation: String,
    /// The thread of a loop condition's incident (`3 same tool calls in a thread`), with
    /// [`tenant`](Self::tenant) (or, for a directive across tenants, the `tenant` of
    /// [`group`](Self::group)) naming whose; `None` for other conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<ThreadId>,
    /// For a scheduled directive's firing: how many earlier due times passed without a firing
    /// of their own (the process was stopped or busy; they are counted, not run). `None` for
    /// a directive on a condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// When (event time: the stream's clock, not the wall clock, when they differ).
    pub time: Timestamp,
}

impl Alert {
    /// The `mission.alert` event for this alert, at `level`.
    pub(crate) fn to_event(&self, level: Level) -> Event {
        let k = &KEYS;
        let mut event = Event::new(
            k.alert.get(),
            EventBody::Log(LogRecord {
                level,
                target: k.target.get(),
                message: Text::bounded(&self.summary, 1024),
            }),
        );
        event.time = self.time;
        event.tenant = Symbol::intern(&self.tenant);
        event.agent = Symbol::intern(&self.agent);
        let a = &mut event.attributes;
        a.set(k.directive.get(), self.directive.as_str());
        a.set(k.state.get(), self.state.as_str());
        a.set(k.dedup_key.get(), self.dedup_key.as_str());
        a.set(k.value.get(), AttrValue::Float(self.value));
        a.set(k.threshold.get(), AttrValue::Float(self.threshold));
        a.set(k.severity.get(), self.severity.as_str());
        if !self.group.is_empty() {
            a.set(k.group.get(), group_text(&self.group).as_str());
        }
        if let Some(thread) = self.thread_id {
            a.set(k.thread_id.get(), thread.to_string().as_str());
        }
        if let Some(missed) = self.missed {
            a.set(k.missed.get(), AttrValue::Int(i64::try_from(missed).unwrap_or(i64::MAX)));
        }
        event
    }
}

/// `field=value,field=value`.
pub(crate) fn group_text(group: &[(String, String)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in group.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Whether the engine recorded `event` itself (so no directive counts it).
pub(crate) fn is_own(event: &Event) -> bool {
    let k = &KEYS;
    matches!(event.body, EventBody::Log(ref log) if log.target == k.target.get())
}

/// RFC 3339 UTC text of a timestamp, to the millisecond.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    let ms = t.0 / 1_000_000;
    let secs = ms / 1000;
    let rem = secs % 86_400;
    let (year, month, day) = mission_store::layout::civil_from_days((secs / 86_400) as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(Timestamp(1_709_210_096_789_000_000)), "2024-02-29T12:34:56.789Z");
    }
}
