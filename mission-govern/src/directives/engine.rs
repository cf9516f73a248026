//! The engine: compiled directives, their groups and windows, and what a firing or a resolve
//! does. Runs on the pipeline thread behind one mutex (the handle takes it briefly to change
//! or list directives).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mission_core::fingerprint::{self, attr as fingerprint_attr};
use mission_core::{
    AttrValue, Decision, Event, EventBody, EventKind, LazySymbol, Level, LogRecord, SpanId,
    SpanKind, Symbol, Text, ThreadId, Timestamp, WeakRecorder,
};

use super::action::{Alert, AlertState, KEYS, group_text, is_own};
use super::breaker::Transition;
use super::condition::{
    Condition, Field, ForecastThreshold, Repeat, SloGood, Statistic, Threshold, Window,
    format_value, human,
};
use super::incident::{Change, IncidentBook, Member, MemberKind, Verdict as AckVerdict};
use super::spec::{ActionSpec, BurnAlerts, DirectiveSpec, GroupField, GuardSpec};
use super::webhook::{Webhook, WebhookTransport, Worker, delivery_event};
use super::workflow::{
    ActionOutcome, Approval, ApprovalState, Approvals, Guard, MAX_PENDING_APPROVALS, Outcome,
    RemedyRequest, Run, RunOutcome, Runs, Trigger, Verdict, bounded,
};
use super::{Acknowledgement, Counters, DirectiveError, DirectiveStatus, FiringGroup, Shared};

/// Most incident groups one directive tracks; past it, groups with nothing to say are
/// forgotten, and if none is, the new group's events are counted in `groups_dropped`.
pub const MAX_GROUPS: usize = 1000;

/// How long no event a directive watches may arrive before the wall clock moves that
/// directive's clock on (see "Time and memory" in the [module docs](super)).
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Most distinct calls a loop condition counts per thread (`3 same tool calls in a thread`);
/// past it the least recently seen is forgotten, counted in
/// [`DirectiveStats::loop_calls_evicted`](super::DirectiveStats::loop_calls_evicted).
pub const MAX_LOOP_CALLS: usize = 64;

/// A loop incident resolves when its thread's root span ends, or when no call of the kind it
/// counts came from that thread for this long (its counts then start again).
pub const LOOP_QUIET: Duration = Duration::from_secs(15 * 60);

/// Most missed runs a scheduled directive counts in one catch-up (see [`Alert::missed`]).
pub const MAX_MISSED_COUNTED: u64 = 100_000;

/// SLO windows: 1h and 5m (page), 6h and 30m (ticket).
const SLO_WINDOWS: [Duration; 4] = [
    Duration::from_secs(3600),
    Duration::from_secs(300),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(1800),
];

enum Compiled {
    Alert(Level),
    Callback(String),
    Webhook(Box<Webhook>),
    SetLogLevel(Level),
    SetSampling(f64),
    Remedy(RemedyOp),
}

impl Compiled {
    /// The action's name, as in the directive file.
    fn name(&self) -> &'static str {
        match self {
            Compiled::Alert(_) => "alert",
            Compiled::Callback(_) => "callback",
            Compiled::Webhook(_) => "webhook",
            Compiled::SetLogLevel(_) => "set_log_level",
            Compiled::SetSampling(_) => "set_sampling",
            Compiled::Remedy(op) => op.action(),
        }
    }
}

/// A remedy: an action the runaway guard limits and an approval may hold.
#[derive(Clone)]
pub(crate) enum RemedyOp {
    Breaker { tool: Option<String>, cool_down: Duration },
    Thread { command: crate::threads::ThreadCommand, reason: Option<String> },
    Host { action: &'static str, name: String },
    Budget(crate::threads::Budget),
}

impl RemedyOp {
    fn action(&self) -> &'static str {
        match self {
            RemedyOp::Breaker { .. } => "open_breaker",
            RemedyOp::Thread { command: crate::threads::ThreadCommand::Pause, .. } => {
                "pause_thread"
            }
            RemedyOp::Thread { .. } => "cancel_thread",
            RemedyOp::Host { action, .. } => action,
            RemedyOp::Budget(_) => "set_budget",
        }
    }

    /// What it acts on for `alert`: a tool, a thread, an operation.
    fn target(&self, alert: &Alert) -> String {
        match self {
            RemedyOp::Breaker { tool, .. } => {
                tool.clone().unwrap_or_else(|| alert.operation.clone())
            }
            RemedyOp::Thread { .. } | RemedyOp::Budget(_) => {
                alert.thread_id.map(|t| t.to_string()).unwrap_or_default()
            }
            RemedyOp::Host { .. } => alert.operation.clone(),
        }
    }
}

/// Remedies held by a pending approval, run when it is approved.
pub(crate) struct Held {
    directive: String,
    guard: GuardSpec,
    alert: Alert,
    ops: Vec<(usize, RemedyOp)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DefaultKinds {
    Spans,
    Metrics,
    Anomalies,
    Permissions,
    Scores,
    /// Every event (a stalled-thread condition: any event of a thread is activity).
    Any,
}

struct CompiledFilter {
    tenant: Option<Symbol>,
    agent: Option<Symbol>,
    operation: Option<Symbol>,
    model: Option<Symbol>,
    metric: Option<Symbol>,
    kind: Option<EventKind>,
    default: DefaultKinds,
    /// For `…(score:NAME)`: only scores of this name are measured.
    score_name: Option<Symbol>,
    attributes: Vec<(Symbol, String)>,
}

impl CompiledFilter {
    fn matches(&self, e: &Event) -> bool {
        let kind = e.kind();
        let kind_ok = match self.kind {
            Some(k) => k == kind,
            None => match self.default {
                DefaultKinds::Spans => matches!(kind, EventKind::Span(_)),
                DefaultKinds::Metrics => kind == EventKind::Metric,
                DefaultKinds::Anomalies => kind == EventKind::Anomaly,
                DefaultKinds::Permissions => kind == EventKind::Permission,
                DefaultKinds::Scores => kind == EventKind::Score,
                DefaultKinds::Any => true,
            },
        };
        kind_ok
            && self.score_name.is_none_or(|n| n == e.name && kind == EventKind::Score)
            && self.tenant.is_none_or(|t| t == e.tenant)
            && self.agent.is_none_or(|a| a == e.agent)
            && self.operation.is_none_or(|o| o == e.name)
            && self.metric.is_none_or(|m| m == e.name)
            && self.model.is_none_or(|m| e.as_span().is_some_and(|s| s.llm.model == m))
            && self.attributes.iter().all(|(k, v)| {
                e.attributes.get(*k).is_some_and(|a| match a {
                    AttrValue::Str(s) => s.as_str() == v,
                    other => other.to_string() == *v,
                })
            })
    }
}

enum GroupData {
    Window(Window),
    Slo(Box<[Window; 4]>),
    Anomaly {
        last: Option<u64>,
        score: f64,
        /// The cause signature and detector of the last anomaly that counted.
        cause: Symbol,
        detector: Symbol,
    },
    Streak(u32),
    Denials(VecDeque<u64>),
    Loop(Repeats),
    /// A thread watched for stalls: the time of its last event (or its start).
    Quiet(Quiet),
    /// A scheduled directive's one group: nothing to count.
    Scheduled,
}

/// One thread's calls for a loop condition: how often each fingerprint was seen.
#[derive(Default)]
struct Repeats {
    /// (fingerprint, times seen, when last seen as a sequence number), at most
    /// [`MAX_LOOP_CALLS`].
    seen: Vec<(u64, u32, u64)>,
    /// The sequence number of the last call.
    sequence: u64,
    /// The stream time of the last call.
    last: u64,
}

impl Repeats {
    /// Counts one more call of fingerprint `hash` at `t`; returns whether another fingerprint
    /// was forgotten to make room.
    fn add(&mut self, hash: u64, t: u64) -> bool {
        self.sequence += 1;
        self.last = self.last.max(t);
        if let Some(entry) = self.seen.iter_mut().find(|e| e.0 == hash) {
            entry.1 = entry.1.saturating_add(1);
            entry.2 = self.sequence;
            return false;
        }
        let mut evicted = false;
        if self.seen.len() >= MAX_LOOP_CALLS
            && let Some(oldest) = (0..self.seen.len()).min_by_key(|&i| self.seen[i].2)
        {
            self.seen.swap_remove(oldest);
            evicted = true;
        }
        self.seen.push((hash, 1, self.sequence));
        evicted
    }

    /// The most times one fingerprint was seen.
    fn most(&self) -> u32 {
        self.seen.iter().map(|e| e.1).max().unwrap_or(0)
    }
}

/// One thread watched by a stalled-thread condition.
#[derive(Clone, Copy, Default)]
struct Quiet {
    /// The stream time of its last event, or its start as the registry tells it.
    last: u64,
    /// Whether the thread registry listed it at its last scan (then, once it is gone from the
    /// registry, the thread is over even if its root span never came).
    registered: bool,
    /// Whether the registry says it is paused or cancelled (not running: never stalled).
    held: bool,
}

/// Whether `e` ends its thread: the thread's root span (not a bare tool or LLM call).
fn is_thread_end(e: &Event) -> bool {
    e.thread_id != ThreadId::default()
        && e.parent_span_id == SpanId::NONE
        && e.as_span().is_some_and(|s| !matches!(s.kind, SpanKind::ToolCall | SpanKind::LlmCall))
}

/// The group key of one thread of `tenant` (loop and stalled-thread conditions).
fn thread_key(tenant: &str, thread: ThreadId) -> String {
    format!("tenant={tenant},thread={thread}")
}

/// The group labels of one thread of `tenant` (loop and stalled-thread conditions).
fn thread_labels(tenant: Symbol, thread: ThreadId) -> Vec<(String, String)> {
    vec![
        ("tenant".to_owned(), tenant.as_str().to_owned()),
        ("thread".to_owned(), thread.to_string()),
    ]
}

/// What an event is to a loop condition.
enum LoopEvent {
    /// A call it counts, with its fingerprint.
    Call(u64),
    /// The end of the thread's root span: the thread is over.
    ThreadEnd,
    /// Nothing it counts.
    Other,
}

static TOOL_ARGS_HASH: LazySymbol = LazySymbol::new(fingerprint_attr::TOOL_ARGS_HASH);
static LLM_REQUEST_HASH: LazySymbol = LazySymbol::new(fingerprint_attr::LLM_REQUEST_HASH);

/// What `e` is to a loop condition counting `of`. A tool call is the same when its tool and
/// its arguments' fingerprint are; an LLM request when its request fingerprint is; a tool error
/// when its tool and its error message are. Events of no thread are not counted.
fn loop_event(of: Repeat, e: &Event) -> LoopEvent {
    let Some(span) = e.as_span() else { return LoopEvent::Other };
    if e.thread_id == ThreadId::default() {
        return LoopEvent::Other;
    }
    if is_thread_end(e) {
        return LoopEvent::ThreadEnd;
    }
    let hash_attr = |key: &LazySymbol| match e.attributes.get(key.get()) {
        Some(AttrValue::Str(text)) => fingerprint::parse_hex(text.as_str()),
        _ => None,
    };
    let tool = e.name.as_str().as_bytes();
    let hash = match of {
        Repeat::ToolCalls if span.kind == SpanKind::ToolCall => hash_attr(&TOOL_ARGS_HASH)
            .map(|args| fingerprint::fingerprint_parts([tool, &args.to_le_bytes()[..]])),
        Repeat::LlmRequests if span.kind == SpanKind::LlmCall => hash_attr(&LLM_REQUEST_HASH),
        Repeat::ToolErrors if span.kind == SpanKind::ToolCall && span.status.is_error() => {
            Some(fingerprint::fingerprint_parts([tool, span.error_message.as_str().as_bytes()]))
        }
        _ => None,
    };
    hash.map_or(LoopEvent::Other, LoopEvent::Call)
}

struct Firing {
    since: u64,
    value: f64,
    threshold: f64,
    acknowledged: Option<Acknowledgement>,
}

/// A group's key: its tenant (empty for a directive across tenants) and its labels as text.
type GroupKey = (Symbol, String);

struct Group {
    labels: Vec<(String, String)>,
    tenant: Symbol,
    agent: Symbol,
    operation: Symbol,
    /// The thread of a loop or stalled-thread condition's group (none for other conditions).
    thread: ThreadId,
    firing: Option<Firing>,
    data: GroupData,
}

/// One directive, ready to run.
pub(crate) struct Directive {
    pub spec: DirectiveSpec,
    actions: Vec<Compiled>,
    filter: CompiledFilter,
    groups: HashMap<GroupKey, Group>,
    added_at: Option<u64>,
    last_eval: u64,
    eval_every: u64,
    groups_dropped: u64,
    /// This directive's clock, the watermark of its windows (stream time, ns): the newest
    /// time of the events it watches, moved on by the wall clock only while none arrive.
    clock: u64,
    /// The newest time of an event it watched; `None` before the first.
    event_time: Option<u64>,
    /// Whether an event it watches arrived since the last tick.
    arrived: bool,
    /// The wall time of the last tick that saw an event arrive: when the quiet began.
    quiet_since: Option<u64>,
    /// Events older than their window at the watermark: counted, not added.
    late_events: u64,
    /// A scheduled directive's next due time (wall clock, ns); set on its first tick.
    next_due: Option<u64>,
}

impl Directive {
    pub fn compile(
        spec: DirectiveSpec,
        transport: &dyn WebhookTransport,
    ) -> Result<Self, DirectiveError> {
        spec.validate()
            .map_err(|message| DirectiveError::Invalid { origin: spec.name.clone(), message })?;
        let mut actions = Vec::new();
        for action in spec.actions() {
            actions.push(match action {
                ActionSpec::Alert { level } => {
                    Compiled::Alert(level.unwrap_or(spec.severity.level()))
                }
                ActionSpec::Callback { name } => Compiled::Callback(name),
                ActionSpec::Webhook(w) => Compiled::Webhook(Box::new(Webhook::new(w, transport)?)),
                ActionSpec::OpenBreaker { tool, cool_down } => {
                    Compiled::Remedy(RemedyOp::Breaker { tool, cool_down })
                }
                ActionSpec::SetLogLevel { level } => Compiled::SetLogLevel(level),
                ActionSpec::SetSampling { rate } => Compiled::SetSampling(rate),
                ActionSpec::CancelThread { reason } => Compiled::Remedy(RemedyOp::Thread {
                    command: crate::threads::ThreadCommand::Cancel,
                    reason,
                }),
                ActionSpec::PauseThread { reason } => Compiled::Remedy(RemedyOp::Thread {
                    command: crate::threads::ThreadCommand::Pause,
                    reason,
                }),
                ActionSpec::Fallback { name } => {
                    Compiled::Remedy(RemedyOp::Host { action: "fallback", name })
                }
                ActionSpec::ResetConnection { name } => {
                    Compiled::Remedy(RemedyOp::Host { action: "reset_connection", name })
                }
                ActionSpec::SetBudget { budget } => Compiled::Remedy(RemedyOp::Budget(budget)),
            });
        }
        let f = &spec.filter;
        let sym = |s: &Option<String>| s.as_deref().map(Symbol::intern);
        let statistic = spec.when.as_ref().and_then(Condition::statistic);
        let default = match spec.when {
            Some(Condition::Anomaly { .. }) => DefaultKinds::Anomalies,
            Some(Condition::RepeatedDenials { .. }) => DefaultKinds::Permissions,
            Some(Condition::Stalled { .. }) => DefaultKinds::Any,
            _ => match statistic.and_then(Statistic::field) {
                Some(Field::Value) => DefaultKinds::Metrics,
                Some(Field::Score(_)) => DefaultKinds::Scores,
                _ => DefaultKinds::Spans,
            },
        };
        let filter = CompiledFilter {
            tenant: sym(&f.tenant),
            agent: sym(&f.agent),
            operation: sym(&f.operation),
            model: sym(&f.model),
            metric: sym(&f.metric),
            kind: f.kind.map(|k| k.0),
            default,
            score_name: match statistic.and_then(Statistic::field) {
                Some(Field::Score(name)) => Some(name),
                _ => None,
            },
            attributes: f.attributes.iter().map(|(k, v)| (Symbol::intern(k), v.clone())).collect(),
        };
        let width = |d: Duration| (d.as_nanos() / super::condition::BUCKETS as u128).max(1) as u64;
        let eval_every = match spec.when {
            Some(Condition::Threshold(t)) => width(t.over),
            Some(Condition::Forecast(f)) => width(f.history()),
            Some(Condition::Slo(_)) => width(SLO_WINDOWS[1]),
            Some(Condition::Anomaly { hold, .. }) => width(hold),
            Some(Condition::RepeatedDenials { within, .. }) => width(within),
            Some(Condition::Loop { .. }) => width(LOOP_QUIET),
            Some(Condition::Stalled { after }) => width(after),
            Some(Condition::ConsecutiveFailures { .. }) | None => u64::MAX,
        };
        let mut d = Self {
            spec,
            actions,
            filter,
            groups: HashMap::new(),
            added_at: None,
            last_eval: 0,
            eval_every,
            groups_dropped: 0,
            clock: 0,
            event_time: None,
            arrived: false,
            quiet_since: None,
            late_events: 0,
            next_due: None,
        };
        d.reset();
        Ok(d)
    }

    /// Forgets every group; an ungrouped directive gets its one group back (so silence is seen
    /// with no events at all).
    fn reset(&mut self) {
        self.groups.clear();
        self.added_at = None;
        self.next_due = None;
        if self.spec.group_by.is_empty()
            && !matches!(
                self.spec.when,
                Some(
                    Condition::RepeatedDenials { .. }
                        | Condition::Loop { .. }
                        | Condition::Stalled { .. }
                )
            )
        {
            let data = self.new_data();
            self.groups.insert(
                self.placeholder_key(),
                Group {
                    labels: Vec::new(),
                    tenant: self.filter.tenant.unwrap_or(Symbol::EMPTY),
                    agent: Symbol::EMPTY,
                    operation: self.filter.operation.unwrap_or(Symbol::EMPTY),
                    thread: ThreadId::default(),
                    firing: None,
                    data,
                },
            );
        }
    }

    /// The key of the ungrouped directive's group that watches before any event arrived (so
    /// silence is seen): the filter's tenant, or none.
    fn placeholder_key(&self) -> GroupKey {
        (self.filter.tenant.unwrap_or(Symbol::EMPTY), String::new())
    }

    /// The tenant part of an event's group key: none for a directive across tenants.
    fn tenant_of(&self, e: &Event) -> Symbol {
        if self.spec.across_tenants { Symbol::EMPTY } else { e.tenant }
    }

    fn new_data(&self) -> GroupData {
        let Some(when) = &self.spec.when else { return GroupData::Scheduled };
        match *when {
            Condition::Threshold(t) => {
                GroupData::Window(Window::new(t.over, t.stat.is_percentile()))
            }
            Condition::Forecast(f) => {
                GroupData::Window(Window::new(f.history(), f.stat.is_percentile()))
            }
            Condition::Slo(_) => {
                GroupData::Slo(Box::new(SLO_WINDOWS.map(|w| Window::new(w, false))))
            }
            Condition::Anomaly { .. } => GroupData::Anomaly {
                last: None,
                score: 0.0,
                cause: Symbol::EMPTY,
                detector: Symbol::EMPTY,
            },
            Condition::ConsecutiveFailures { .. } => GroupData::Streak(0),
            Condition::RepeatedDenials { .. } => GroupData::Denials(VecDeque::new()),
            Condition::Loop { .. } => GroupData::Loop(Repeats::default()),
            Condition::Stalled { .. } => GroupData::Quiet(Quiet::default()),
        }
    }

    fn status(&self) -> DirectiveStatus {
        let mut firing: Vec<FiringGroup> = self
            .groups
            .iter()
            .filter_map(|((_, key), g)| {
                g.firing.as_ref().map(|f| FiringGroup {
                    dedup_key: dedup_key(&self.spec.name, key),
                    group: g.labels.clone(),
                    since: Timestamp(f.since),
                    value: f.value,
                    threshold: f.threshold,
                    tenant: g.tenant.as_str().to_owned(),
                    acknowledged: f.acknowledged.clone(),
                })
            })
            .collect();
        firing.sort_by(|a, b| (&a.dedup_key, &a.tenant).cmp(&(&b.dedup_key, &b.tenant)));
        DirectiveStatus {
            name: self.spec.name.clone(),
            description: self.spec.description.clone(),
            condition: self.spec.trigger(),
            enabled: self.spec.enabled,
            groups: self.groups.len(),
            groups_dropped: self.groups_dropped,
            late_events: self.late_events,
            across_tenants: self.spec.across_tenants,
            firing,
        }
    }
}

fn dedup_key(directive: &str, group: &str) -> String {
    if group.is_empty() {
        directive.to_owned()
    } else {
        let mut key = format!("{directive}:{group}");
        if key.len() > 250 {
            let mut end = 250;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            key.truncate(end);
        }
        key
    }
}

/// A run's action whose outcome a [`Deferred`] gives: (run id, action index).
pub(crate) type Slot = Option<(u64, usize)>;

/// Something to do after the engine's lock is released.
pub(crate) enum Deferred {
    /// Call a registered callback with the alert.
    Callback { callback: String, alert: Box<Alert>, slot: Slot },
    /// Pause or cancel the firing's thread (in the firing's tenant).
    Thread {
        tenant: String,
        thread_id: mission_core::ThreadId,
        command: crate::threads::ThreadCommand,
        by: String,
        reason: String,
        slot: Slot,
    },
    /// Call a host remedy.
    Remedy { request: Box<RemedyRequest>, slot: Slot },
    /// Narrow the firing's thread's budget (in the firing's tenant).
    Budget {
        tenant: String,
        thread_id: mission_core::ThreadId,
        budget: crate::threads::Budget,
        slot: Slot,
    },
    /// Hand a new incident to the host's analyser.
    Analyse(Box<super::Incident>),
}

/// Every directive and what firing needs.
pub(crate) struct Engine {
    pub directives: Vec<Directive>,
    now: u64,
    pub recorder: Option<WeakRecorder>,
    pub worker: Option<Worker>,
    log_levels: BTreeMap<String, Level>,
    sampling: BTreeMap<String, f64>,
    pub deferred: Vec<Deferred>,
    counters: Arc<Counters>,
    /// Recent runs.
    pub runs: Runs,
    /// Pending and recently decided approvals.
    pub approvals: Approvals,
    /// What each pending approval would run.
    held: HashMap<u64, Held>,
    /// The runaway guard.
    guard: Guard,
    /// The wall clock of the last tick (ns; 0 before the first).
    wall: u64,
    /// Open and recently closed incidents.
    pub incidents: IncidentBook,
}

impl Engine {
    pub fn new(directives: Vec<Directive>, counters: Arc<Counters>) -> Self {
        Self {
            counters,
            directives,
            now: 0,
            recorder: None,
            worker: None,
            log_levels: BTreeMap::new(),
            sampling: BTreeMap::new(),
            deferred: Vec::new(),
            runs: Runs::default(),
            approvals: Approvals::default(),
            held: HashMap::new(),
            guard: Guard::default(),
            wall: 0,
            incidents: IncidentBook::default(),
        }
    }

    /// Carries out what the incident book asks: records its events, and hands a new incident
    /// to the analyser (after the lock is released).
    fn incident_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Record(event) => self.record(event),
                Change::Opened(incident) => self.deferred.push(Deferred::Analyse(incident)),
            }
        }
    }

    /// `member` joins an incident of `tenant` on `cause`.
    fn join_incident(&mut self, tenant: &str, cause: &str, member: Member, firing: Option<bool>) {
        let mut changes = Vec::new();
        let (wall, dropped) = (self.wall_now(), self.incidents.dropped);
        self.incidents.join(tenant, cause, member, firing, wall, &mut changes);
        if self.incidents.dropped > dropped {
            self.counters.incidents_dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.incident_changes(changes);
    }

    /// The cause signature of directive `i`'s incident `alert`: its last anomaly's cause for
    /// an anomaly condition, else its operation (else the directive); and that anomaly's
    /// detector.
    fn incident_cause(&self, i: usize, alert: &Alert) -> (String, Symbol) {
        let d = &self.directives[i];
        let group = d.groups.iter().find(|(k, g)| {
            g.tenant.as_str() == alert.tenant && dedup_key(&d.spec.name, &k.1) == alert.dedup_key
        });
        if let Some((_, g)) = group
            && let GroupData::Anomaly { cause, detector, .. } = &g.data
            && *cause != Symbol::EMPTY
        {
            return (cause.as_str().to_owned(), *detector);
        }
        let cause = if alert.operation.is_empty() {
            format!("directive={}", alert.directive)
        } else {
            format!("operation={}", alert.operation)
        };
        (cause, Symbol::EMPTY)
    }

    /// The wall clock as the last tick gave it (the system's before the first tick): what
    /// approvals' deadlines are judged on.
    fn wall_now(&self) -> u64 {
        if self.wall == 0 { Timestamp::now().0 } else { self.wall }
    }

    /// Records `event` (counted as derived).
    pub fn record_event(&self, event: Event) {
        self.record(event);
    }

    fn record(&self, event: Event) {
        if let Some(r) = self.recorder.as_ref().and_then(WeakRecorder::upgrade)
            && r.record(event)
        {
            self.counters.derived.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A tick of the wall clock (`wall`, ns): moves the clock of each directive that watched
    /// no event for [`IDLE_AFTER`] on by the wall time passed since its quiet began, never past
    /// `wall` (before its first event, the directive's clock simply follows the wall clock).
    /// While events arrive, only their time moves a directive's clock.
    ///
    /// A scheduled directive fires when `wall` reaches its next due time (the first due time
    /// at or after its first tick): once, whatever number of due times passed since the last
    /// tick, the others counted as missed on that firing.
    pub fn tick(&mut self, wall: u64, shared: &Shared) {
        self.wall = self.wall.max(wall);
        self.expire_approvals(shared);
        let mut changes = Vec::new();
        self.incidents.tick(self.wall, &mut changes);
        self.incident_changes(changes);
        let idle_after = IDLE_AFTER.as_nanos() as u64;
        for i in 0..self.directives.len() {
            let d = &mut self.directives[i];
            if !d.spec.enabled {
                continue;
            }
            if let Some(schedule) = &d.spec.schedule {
                let due = *d.next_due.get_or_insert_with(|| {
                    schedule.next_after(wall.saturating_sub(1)).unwrap_or(u64::MAX)
                });
                if wall >= due {
                    let (n, last) =
                        schedule.due_between(due.saturating_sub(1), wall, MAX_MISSED_COUNTED + 1);
                    d.next_due = Some(schedule.next_after(wall).unwrap_or(u64::MAX));
                    // Past the cap, the last due time counted is not the latest: say now.
                    let at = if n > MAX_MISSED_COUNTED { wall } else { last.unwrap_or(due) };
                    self.fire_scheduled(i, at, n.saturating_sub(1), shared);
                }
                continue;
            }
            if std::mem::take(&mut d.arrived) {
                d.quiet_since = Some(wall);
                continue;
            }
            let quiet = *d.quiet_since.get_or_insert(wall);
            let target = match d.event_time {
                None => wall,
                Some(t) => {
                    let idle = wall.saturating_sub(quiet);
                    if idle < idle_after {
                        continue;
                    }
                    t.saturating_add(idle).min(wall)
                }
            };
            self.advance(i, target, shared);
        }
    }

    /// Fires scheduled directive `i` for its due time `due`, with `missed` earlier due times
    /// that had no firing.
    fn fire_scheduled(&mut self, i: usize, due: u64, missed: u64, shared: &Shared) {
        let key = self.directives[i].placeholder_key();
        let d = &mut self.directives[i];
        d.clock = d.clock.max(due);
        let value = missed.saturating_add(1) as f64;
        let Some(mut alert) = self.alert(i, &key, AlertState::Firing, value, 1.0) else { return };
        alert.time = Timestamp(due);
        alert.missed = Some(missed);
        if missed > 0 {
            let more = if missed >= MAX_MISSED_COUNTED { "or more " } else { "" };
            alert.summary.push_str(&format!("; {missed} {more}earlier runs missed"));
        }
        self.dispatch(i, alert, shared);
    }

    /// Moves directive `i`'s clock to `now` (never back) and judges its windows if their
    /// bucket changed.
    fn advance(&mut self, i: usize, now: u64, shared: &Shared) {
        let d = &mut self.directives[i];
        if now <= d.clock {
            return;
        }
        d.clock = now;
        d.added_at.get_or_insert(now);
        let epoch = now / d.eval_every.max(1);
        if d.eval_every == u64::MAX || epoch == d.last_eval {
            return;
        }
        d.last_eval = epoch;
        if matches!(d.spec.when, Some(Condition::Stalled { .. })) {
            self.scan_threads(i, shared);
        }
        let d = &self.directives[i];
        let keys: Vec<GroupKey> = d.groups.keys().cloned().collect();
        for key in keys {
            self.judge(i, &key, shared);
        }
    }

    /// A stalled-thread directive's look at the thread registry (when one is wired in), once
    /// per evaluation: a running thread with no event yet gets a group from its start, a
    /// paused or cancelled one is held (not stalled), and a thread the registry listed before
    /// and no longer does is over (its group retired, resolved if it fired). Threads the
    /// registry never listed (another process's, through ingest) are judged on their events.
    fn scan_threads(&mut self, i: usize, shared: &Shared) {
        let registry = shared.threads.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(registry) = registry else { return };
        let live = registry.live_threads();
        let d = &mut self.directives[i];
        let mut listed = std::collections::HashSet::with_capacity(live.len());
        for t in &live {
            if d.filter.tenant.is_some_and(|x| x != t.tenant)
                || d.filter.agent.is_some_and(|x| x != t.agent)
            {
                continue;
            }
            let tenant = if d.spec.across_tenants { Symbol::EMPTY } else { t.tenant };
            let key = (tenant, thread_key(t.tenant.as_str(), t.thread_id));
            let held = t.state != crate::threads::ThreadState::Running;
            if let Some(g) = d.groups.get_mut(&key) {
                if let GroupData::Quiet(q) = &mut g.data {
                    (q.registered, q.held) = (true, held);
                    q.last = q.last.max(t.started_ns);
                }
            } else if d.groups.len() >= MAX_GROUPS {
                d.groups_dropped += 1;
                shared.counters.groups_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            } else {
                d.groups.insert(
                    key.clone(),
                    Group {
                        labels: thread_labels(t.tenant, t.thread_id),
                        tenant,
                        agent: t.agent,
                        operation: Symbol::EMPTY,
                        thread: t.thread_id,
                        firing: None,
                        data: GroupData::Quiet(Quiet {
                            last: t.started_ns,
                            registered: true,
                            held,
                        }),
                    },
                );
            }
            listed.insert(key);
        }
        let gone: Vec<GroupKey> = d
            .groups
            .iter()
            .filter(|(k, g)| {
                matches!(g.data, GroupData::Quiet(q) if q.registered) && !listed.contains(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.retire(i, &key, shared);
        }
    }

    /// Takes one event of the stream.
    pub fn observe(&mut self, e: &Event, shared: &Shared) {
        if is_own(e) {
            return;
        }
        shared.counters.events.fetch_add(1, Ordering::Relaxed);
        let t = e.end_time().0;
        self.now = self.now.max(t);
        if let EventBody::Anomaly(a) = &e.body {
            let member = Member {
                kind: MemberKind::Anomaly,
                source: format!("{} {}", a.detector.as_str(), e.name.as_str()),
                id: e.span_id.to_string(),
                time: t,
                summary: format!(
                    "{} scored {:.2} (value {}, expected {})",
                    e.name.as_str(),
                    a.score,
                    a.value,
                    a.expected
                ),
                verdict: None,
            };
            self.join_incident(e.tenant.as_str(), &anomaly_cause(e), member, None);
        }
        if let Some(span) = e.as_span() {
            let (tenant, tool) = (e.tenant.as_str(), e.name.as_str());
            let now = shared.clock.now();
            let ok = !span.status.is_error();
            for (owner, transition) in shared.breakers.outcome(tenant, tool, ok, now) {
                match transition {
                    Transition::Closed => self.breaker_event(&owner, tool, "closed", "", t),
                    Transition::Reopened => {
                        self.breaker_event(&owner, tool, "open", "the trial call failed", t)
                    }
                }
            }
        }
        for i in 0..self.directives.len() {
            let d = &mut self.directives[i];
            if !d.spec.enabled || d.spec.when.is_none() || !d.filter.matches(e) {
                continue;
            }
            d.arrived = true;
            if d.event_time.is_none() && t < d.clock {
                // Until its first event, the directive's clock followed the wall clock; the
                // stream's own time (a replay, a simulation) replaces it.
                d.clock = t;
                d.added_at = None;
                d.last_eval = 0;
            }
            d.event_time = Some(d.event_time.map_or(t, |m| m.max(t)));
            self.advance(i, t, shared);
            let d = &mut self.directives[i];
            let now = d.clock;
            d.added_at.get_or_insert(now);
            let Some(when) = d.spec.when.clone() else { continue };
            let key = (d.tenant_of(e), group_key(&d.spec.group_by, &when, e));
            let call = match when {
                Condition::Loop { of, .. } => match loop_event(of, e) {
                    LoopEvent::Call(hash) => Some(hash),
                    LoopEvent::ThreadEnd => {
                        // The thread is over: so is its loop (resolved if it fired).
                        if d.groups.contains_key(&key) {
                            self.retire(i, &key, shared);
                        }
                        continue;
                    }
                    LoopEvent::Other => continue,
                },
                Condition::Stalled { .. } => {
                    if is_thread_end(e) {
                        // The thread is over: it can no longer stall (resolved if it fired).
                        if d.groups.contains_key(&key) {
                            self.retire(i, &key, shared);
                        }
                        continue;
                    }
                    if e.thread_id == ThreadId::default() {
                        continue;
                    }
                    None
                }
                _ => None,
            };
            let per_thread = call.is_some() || matches!(when, Condition::Stalled { .. });
            if !d.groups.contains_key(&key) {
                let placeholder = d.placeholder_key();
                if key.1.is_empty() && d.groups.contains_key(&placeholder) {
                    // The first event of an ungrouped directive, of one tenant: the group that
                    // watched before anything arrived gives way (resolved if it fired).
                    self.retire(i, &placeholder, shared);
                }
                let d = &mut self.directives[i];
                if d.groups.len() >= MAX_GROUPS {
                    d.groups.retain(|_, g| g.firing.is_some() || !is_idle(&g.data, now));
                }
                if d.groups.len() >= MAX_GROUPS {
                    d.groups_dropped += 1;
                    shared.counters.groups_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let labels = group_labels(&d.spec.group_by, &when, e);
                let data = d.new_data();
                d.groups.insert(
                    key.clone(),
                    Group {
                        labels,
                        tenant: key.0,
                        agent: e.agent,
                        operation: e.name,
                        thread: if per_thread { e.thread_id } else { ThreadId::default() },
                        firing: None,
                        data,
                    },
                );
            }
            let d = &mut self.directives[i];
            let Some(g) = d.groups.get_mut(&key) else { continue };
            g.agent = e.agent;
            g.operation = e.name;
            let mut late = false;
            let judge_now = match (&mut g.data, &when) {
                (GroupData::Window(w), Condition::Threshold(Threshold { stat, .. }))
                | (GroupData::Window(w), Condition::Forecast(ForecastThreshold { stat, .. })) => {
                    late = !w.add(t, now, measure(e, *stat), is_error(e));
                    false
                }
                (GroupData::Slo(windows), Condition::Slo(slo)) => {
                    let bad = is_error(e)
                        || match slo.good {
                            SloGood::Under(limit) => {
                                e.as_span().is_some_and(|s| s.duration_ns > limit.as_nanos() as u64)
                            }
                            SloGood::Ok => false,
                        };
                    // Late when no window still covers it (the longest is 6h).
                    late = true;
                    for w in windows.iter_mut() {
                        late &= !w.add(t, now, 0.0, bad);
                    }
                    false
                }
                (
                    GroupData::Anomaly { last, score, cause, detector },
                    Condition::Anomaly { op, score: level, .. },
                ) => {
                    if let EventBody::Anomaly(a) = &e.body
                        && op.holds(a.score, *level)
                    {
                        *last = Some(t.max(last.unwrap_or(0)));
                        *score = a.score;
                        *cause = Symbol::intern(&anomaly_cause(e));
                        *detector = a.detector;
                        true
                    } else {
                        false
                    }
                }
                (GroupData::Streak(n), Condition::ConsecutiveFailures { .. }) => {
                    *n = if is_error(e) { n.saturating_add(1) } else { 0 };
                    true
                }
                (GroupData::Denials(times), Condition::RepeatedDenials { count, within }) => {
                    if let EventBody::Permission(p) = &e.body
                        && p.decision == Decision::Deny
                    {
                        if t < now.saturating_sub(within.as_nanos() as u64) {
                            late = true;
                            false
                        } else {
                            times.push_back(t);
                            while times.len() > *count as usize {
                                times.pop_front();
                            }
                            true
                        }
                    } else {
                        false
                    }
                }
                (GroupData::Quiet(quiet), Condition::Stalled { .. }) => {
                    quiet.last = quiet.last.max(t);
                    true
                }
                (GroupData::Loop(repeats), Condition::Loop { .. }) => {
                    if let Some(hash) = call
                        && repeats.add(hash, t)
                    {
                        shared.counters.loop_calls_evicted.fetch_add(1, Ordering::Relaxed);
                    }
                    true
                }
                _ => false,
            };
            if late {
                d.late_events += 1;
                shared.counters.late_events.fetch_add(1, Ordering::Relaxed);
            }
            if judge_now {
                self.judge(i, &key, shared);
            }
        }
    }

    /// Forgets group `key` of directive `i`, resolving it first if it fires.
    fn retire(&mut self, i: usize, key: &GroupKey, shared: &Shared) {
        let firing = self.directives[i].groups.get(key).and_then(|g| g.firing.as_ref());
        if let Some((value, threshold)) = firing.map(|f| (f.value, f.threshold)) {
            self.transition(i, key, AlertState::Resolved, value, threshold, shared);
        }
        self.directives[i].groups.remove(key);
    }
    /// Whether the condition holds for one group now, and the firing or resolve that follows.
    fn judge(&mut self, i: usize, key: &GroupKey, shared: &Shared) {
        let d = &mut self.directives[i];
        let now = d.clock;
        let added = d.added_at.unwrap_or(now);
        let min_events = d.spec.min_events;
        let burn = d.spec.burn_alerts;
        let Some(g) = d.groups.get_mut(key) else { return };
        let Some(when) = &d.spec.when else { return };
        let verdict: Option<(bool, f64, f64)> = match (&mut g.data, when) {
            (GroupData::Window(w), Condition::Threshold(t)) => {
                // A window is judged once it was watched whole.
                if now.saturating_sub(added) < t.over.as_nanos() as u64 {
                    None
                } else {
                    let s = w.summary(now);
                    let v = match t.stat {
                        // The window's length over its failures (unbounded with none).
                        Statistic::Mtbf if s.errors == 0 => Some(f64::INFINITY),
                        Statistic::Mtbf => Some(t.over.as_secs_f64() * 1000.0 / s.errors as f64),
                        stat => s.statistic(stat),
                    };
                    match v {
                        Some(v) if s.count >= min_events => {
                            Some((t.op.holds(v, t.value), v, t.value))
                        }
                        Some(v) => Some((false, v, t.value)),
                        None => Some((false, f64::NAN, t.value)),
                    }
                }
            }
            (GroupData::Window(w), Condition::Forecast(f)) => {
                // Judged once a quarter of the history holds values (MIN_FORECAST_BUCKETS).
                match w.forecast(now, f) {
                    Some(p) if p.count >= min_events => {
                        Some((p.crossing_steps.is_some(), p.value, f.value))
                    }
                    Some(p) => Some((false, p.value, f.value)),
                    None => Some((false, f64::NAN, f.value)),
                }
            }
            (GroupData::Slo(w), Condition::Slo(slo)) => {
                let budget = 1.0 - slo.objective;
                let rate = |w: &Window| {
                    let s = w.summary(now);
                    if s.count == 0 { 0.0 } else { s.errors as f64 / s.count as f64 / budget }
                };
                let r: Vec<f64> = w.iter().map(rate).collect();
                let (page, ticket) = (slo.page_burn_rate(), slo.ticket_burn_rate());
                let page_on = burn != BurnAlerts::Ticket && r[0] > page && r[1] > page;
                let ticket_on = burn != BurnAlerts::Page && r[2] > ticket && r[3] > ticket;
                Some(if page_on {
                    (true, r[0], page)
                } else if ticket_on {
                    (true, r[2], ticket)
                } else if burn == BurnAlerts::Ticket {
                    (false, r[2], ticket)
                } else {
                    (false, r[0], page)
                })
            }
            (
                GroupData::Anomaly { last, score, .. },
                Condition::Anomaly { score: level, hold, .. },
            ) => {
                let on = last.is_some_and(|l| now.saturating_sub(l) < hold.as_nanos() as u64);
                Some((on, *score, *level))
            }
            (GroupData::Streak(n), Condition::ConsecutiveFailures { count }) => {
                Some((*n >= *count, f64::from(*n), f64::from(*count)))
            }
            (GroupData::Denials(times), Condition::RepeatedDenials { count, within }) => {
                let cutoff = now.saturating_sub(within.as_nanos() as u64);
                while times.front().is_some_and(|&t| t < cutoff) {
                    times.pop_front();
                }
                Some((times.len() >= *count as usize, times.len() as f64, f64::from(*count)))
            }
            (GroupData::Loop(repeats), Condition::Loop { count, .. }) => {
                if now.saturating_sub(repeats.last) >= LOOP_QUIET.as_nanos() as u64 {
                    // Quiet for long enough: the loop is over, and counting starts again.
                    repeats.seen.clear();
                }
                let most = repeats.most();
                Some((most >= *count, f64::from(most), f64::from(*count)))
            }
            (GroupData::Quiet(quiet), Condition::Stalled { after }) => {
                let silent = now.saturating_sub(quiet.last);
                let stalled = !quiet.held && silent >= after.as_nanos() as u64;
                Some((stalled, silent as f64 / 1e9, after.as_secs_f64()))
            }
            _ => None,
        };
        let Some((holds, value, threshold)) = verdict else { return };
        match (&mut g.firing, holds) {
            (None, true) => {
                g.firing = Some(Firing { since: now, value, threshold, acknowledged: None });
                self.transition(i, key, AlertState::Firing, value, threshold, shared);
            }
            (Some(f), true) => {
                f.value = value;
                self.retry(i, key, value, threshold, shared);
            }
            (Some(_), false) => {
                g.firing = None;
                self.transition(i, key, AlertState::Resolved, value, threshold, shared);
            }
            (None, false) => {}
        }
    }

    fn alert(
        &self,
        i: usize,
        key: &GroupKey,
        state: AlertState,
        value: f64,
        threshold: f64,
    ) -> Option<Alert> {
        let d = &self.directives[i];
        let g = d.groups.get(key)?;
        // An acknowledgement describes the incident as it fires.
        let shown = if state == AlertState::Resolved { state } else { AlertState::Firing };
        let mut summary = if let Some(when) = &d.spec.when {
            match (when, shown) {
                (Condition::Threshold(t), s) => format!(
                    "{} = {} {}{} {} over {}",
                    t.stat,
                    shown_value(t.stat, value),
                    if s == AlertState::Resolved { "no longer " } else { "" },
                    t.op.as_str(),
                    format_value(t.stat, t.value),
                    human(t.over)
                ),
                (Condition::Forecast(f), AlertState::Firing) => {
                    let projection = match &g.data {
                        GroupData::Window(w) => w.forecast(d.clock, f),
                        _ => None,
                    };
                    let eta = projection
                        .and_then(|p| p.crossing_ns)
                        .map_or_else(|| human(f.within), |ns| about(Duration::from_nanos(ns)));
                    let last = projection.map(|p| p.last).unwrap_or(f64::NAN);
                    format!(
                        "{} forecast {} {} in about {eta} (trend at {}; now {})",
                        f.stat,
                        f.op.as_str(),
                        format_value(f.stat, f.value),
                        shown_value(f.stat, value),
                        shown_value(f.stat, last),
                    )
                }
                (Condition::Forecast(f), _) => format!(
                    "{} no longer forecast {} {} within {} (trend at {})",
                    f.stat,
                    f.op.as_str(),
                    format_value(f.stat, f.value),
                    human(f.within),
                    shown_value(f.stat, value),
                ),
                (Condition::Slo(_), AlertState::Firing) => {
                    format!(
                        "error budget burning {value:.1}x (alert above {threshold:.1}x) for {when}"
                    )
                }
                (Condition::Slo(_), _) => {
                    format!("error budget burn back to {value:.1}x for {when}")
                }
                (Condition::Anomaly { .. }, AlertState::Firing) => {
                    format!("anomaly on {} scored {value:.3} ({when})", g.operation.as_str())
                }
                (Condition::Anomaly { .. }, _) => {
                    format!("no anomaly on {} ({when})", g.operation.as_str())
                }
                (Condition::ConsecutiveFailures { .. }, AlertState::Firing) => {
                    format!("{} failed {value} times in a row", g.operation.as_str())
                }
                (Condition::ConsecutiveFailures { .. }, _) => {
                    format!("{} succeeded again", g.operation.as_str())
                }
                (Condition::RepeatedDenials { within, .. }, _) => format!(
                    "permission denied {value} times within {} (alert at {threshold})",
                    human(*within)
                ),
                (Condition::Loop { of, .. }, AlertState::Firing) => {
                    let what = match of {
                        Repeat::ToolCalls => {
                            format!("called {} with the same arguments", g.operation.as_str())
                        }
                        Repeat::LlmRequests => "sent the same LLM request".to_owned(),
                        Repeat::ToolErrors => {
                            format!("got the same error from {}", g.operation.as_str())
                        }
                    };
                    format!("thread {} {what} {value} times (alert at {threshold})", g.thread)
                }
                (Condition::Loop { .. }, _) => format!("thread {} is no longer looping", g.thread),
                (Condition::Stalled { after }, AlertState::Firing) => format!(
                    "thread {} recorded no event for {} while running (alert at {})",
                    g.thread,
                    about(Duration::from_secs_f64(value.max(0.0))),
                    human(*after)
                ),
                (Condition::Stalled { .. }, _) => {
                    format!("thread {} is no longer stalled", g.thread)
                }
            }
        } else {
            format!("{} is due ({} UTC)", d.spec.name, d.spec.trigger())
        };
        if !g.labels.is_empty() {
            summary.push_str(&format!(" [{}]", group_text(&g.labels)));
        }
        let operation = g
            .labels
            .iter()
            .find(|(k, _)| k == "operation")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| g.operation.as_str().to_owned());
        Some(Alert {
            directive: d.spec.name.clone(),
            description: d.spec.description.clone(),
            state,
            dedup_key: dedup_key(&d.spec.name, &key.1),
            severity: d.spec.severity,
            condition: d.spec.trigger(),
            group: g.labels.clone(),
            value,
            threshold,
            summary,
            tenant: g.tenant.as_str().to_owned(),
            agent: g.agent.as_str().to_owned(),
            operation,
            thread_id: (g.thread != ThreadId::default()).then_some(g.thread),
            missed: None,
            time: Timestamp(d.clock),
        })
    }

    fn transition(
        &mut self,
        i: usize,
        key: &GroupKey,
        state: AlertState,
        value: f64,
        threshold: f64,
        shared: &Shared,
    ) {
        let Some(alert) = self.alert(i, key, state, value, threshold) else { return };
        self.dispatch(i, alert, shared);
    }

    /// Runs directive `i`'s actions on `alert` (a firing or a resolve), counted.
    fn dispatch(&mut self, i: usize, alert: Alert, shared: &Shared) {
        let trigger = if alert.missed.is_some() { Trigger::Schedule } else { Trigger::Event };
        let by = format!("directive:{}", self.directives[i].spec.name);
        self.dispatch_as(i, alert, trigger, by, shared);
    }

    /// Runs directive `i`'s actions on `alert`; a firing is a [`Run`] (started by `trigger`,
    /// `by` whom), whose id is returned.
    fn dispatch_as(
        &mut self,
        i: usize,
        alert: Alert,
        trigger: Trigger,
        by: String,
        shared: &Shared,
    ) -> Option<u64> {
        let state = alert.state;
        let c = &shared.counters;
        match (state, trigger) {
            (AlertState::Firing, Trigger::Manual) => c.runs_manual.fetch_add(1, Ordering::Relaxed),
            (AlertState::Firing, _) => c.fired.fetch_add(1, Ordering::Relaxed),
            (AlertState::Resolved, _) => c.resolved.fetch_add(1, Ordering::Relaxed),
            (AlertState::Acknowledged, _) => 0, // counted by `acknowledge`
        };
        let firing = state == AlertState::Firing;
        let d = &self.directives[i];
        let mut run = firing.then(|| Run {
            id: self.runs.next_id(),
            directive: d.spec.name.clone(),
            trigger,
            by,
            tenant: alert.tenant.clone(),
            dedup_key: alert.dedup_key.clone(),
            summary: alert.summary.clone(),
            thread_id: alert.thread_id,
            started: alert.time,
            outcome: RunOutcome::Running,
            actions: Vec::with_capacity(d.actions.len()),
            approval: None,
        });
        let run_id = run.as_ref().map(|r| r.id);
        let sent_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut deliveries = Vec::new();
        let mut remedies = Vec::new();
        let mut levels = Vec::new();
        let mut rates = Vec::new();
        for (n, action) in d.actions.iter().enumerate() {
            let slot = run_id.map(|id| (id, n));
            let mut outcome = (Outcome::Done, String::new());
            match action {
                Compiled::Alert(level) => self.record(alert.to_event(*level)),
                Compiled::Callback(name) => {
                    self.deferred.push(Deferred::Callback {
                        callback: name.clone(),
                        alert: Box::new(alert.clone()),
                        slot,
                    });
                    outcome = (Outcome::Pending, name.clone());
                }
                Compiled::Remedy(op) if firing => {
                    outcome = (Outcome::Pending, op.target(&alert));
                    remedies.push((n, op.clone()));
                }
                Compiled::Remedy(_) => {}
                Compiled::Webhook(w) => {
                    outcome.0 = Outcome::Queued;
                    deliveries.extend(w.delivery(&alert, &d.spec.name, sent_at).map(|x| (n, x)))
                }
                Compiled::SetLogLevel(level) => levels.push(*level),
                Compiled::SetSampling(rate) => rates.push(*rate),
            }
            if let Some(run) = run.as_mut() {
                let (outcome, target) = outcome;
                run.actions.push(ActionOutcome {
                    action: action.name(),
                    target,
                    outcome,
                    detail: String::new(),
                });
            }
        }
        let (name, guard, approve) = (d.spec.name.clone(), d.spec.guard, d.spec.approve);
        let confidence = match d.spec.when {
            Some(Condition::Anomaly { .. }) => Some(alert.value.clamp(0.0, 1.0)),
            _ => approve.and_then(|a| a.confidence),
        };
        if state == AlertState::Resolved {
            let targets: Vec<String> = d
                .actions
                .iter()
                .filter_map(|a| match a {
                    Compiled::Remedy(op) => Some(op.target(&alert)),
                    _ => None,
                })
                .collect();
            if !targets.is_empty() {
                self.guard.resolved(Symbol::intern(&alert.tenant), &name, &targets);
            }
        }
        for (n, delivery) in deliveries {
            c.webhooks_queued.fetch_add(1, Ordering::Relaxed);
            let refused = match &self.worker {
                Some(w) => w.send(delivery).err(),
                None => Some(delivery),
            };
            if let Some(d) = refused {
                c.webhooks_dropped.fetch_add(1, Ordering::Relaxed);
                self.record(delivery_event(&d, "dropped", 0, 0, "the delivery queue is full"));
                if let Some(a) = run.as_mut().and_then(|r| r.actions.get_mut(n)) {
                    (a.outcome, a.detail) = (Outcome::Failed, "the delivery queue is full".into());
                }
            }
        }
        if trigger != Trigger::Manual && state != AlertState::Acknowledged {
            let (cause, _) = self.incident_cause(i, &alert);
            let firing = state == AlertState::Firing;
            let member = Member {
                kind: if firing { MemberKind::Firing } else { MemberKind::Resolved },
                source: name.clone(),
                id: alert.dedup_key.clone(),
                time: alert.time.0,
                summary: alert.summary.clone(),
                verdict: None,
            };
            self.join_incident(&alert.tenant, &cause, member, Some(firing));
        }
        if let Some(mut run) = run {
            match approve {
                Some(spec) if !remedies.is_empty() => {
                    self.propose(&mut run, spec.within, confidence, guard, &alert, remedies, shared)
                }
                _ => self.apply_remedies(&mut run, &name, guard, &alert, remedies, shared),
            }
            self.keep(run);
        }
        self.set_levels(state, &alert.dedup_key, &levels, &rates, shared);
        run_id
    }

    /// Sets or clears what a firing's `set_log_level` and `set_sampling` ask for.
    fn set_levels(
        &mut self,
        state: AlertState,
        dedup_key: &str,
        levels: &[Level],
        rates: &[f64],
        shared: &Shared,
    ) {
        let firing = state == AlertState::Firing;
        for level in levels {
            if firing {
                self.log_levels.insert(dedup_key.to_owned(), *level);
            } else {
                self.log_levels.remove(dedup_key);
            }
        }
        for rate in rates {
            if firing {
                self.sampling.insert(dedup_key.to_owned(), *rate);
            } else {
                self.sampling.remove(dedup_key);
            }
        }
        let level = self.log_levels.values().min().map_or(0, |l| *l as u8 + 1);
        shared.log_level.store(level, Ordering::Release);
        let rate = self
            .sampling
            .values()
            .copied()
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        shared.sampling.store(rate.map_or(u64::MAX, f64::to_bits), Ordering::Release);
    }

    /// Keeps `run` in the ring, recording it once settled (else when its deferred actions
    /// report: [`settle`](Self::settle)).
    fn keep(&mut self, mut run: Run) {
        run.settle();
        if run.outcome != RunOutcome::Running {
            self.record(run.to_event());
            self.remedies_join(&run);
        }
        self.runs.push(run);
    }

    /// A settled run's remedies join the incident of its firing.
    fn remedies_join(&mut self, run: &Run) {
        let wall = self.wall_now();
        for a in run.actions.iter().filter(|a| super::REMEDY_ACTIONS.contains(&a.action)) {
            let outcome = serde_json::to_value(a.outcome).unwrap_or_default();
            let mut summary = format!("{} {}", a.action, outcome.as_str().unwrap_or_default());
            if !a.target.is_empty() {
                summary.push_str(&format!(" on {}", a.target));
            }
            if !a.detail.is_empty() {
                summary.push_str(&format!(" ({})", a.detail));
            }
            let member = Member {
                kind: MemberKind::Remedy,
                source: run.directive.clone(),
                id: String::new(),
                time: run.started.0,
                summary,
                verdict: None,
            };
            self.incidents.follow(&run.tenant, &run.dedup_key, member, wall);
        }
    }

    /// Runs `ops` of `run` through the runaway guard: on the target's first attempt, or
    /// `guard.every` after its last, each is carried out (thread controls and host remedies
    /// after the lock is released); otherwise it is rate-limited, or skipped once the guard
    /// gave up.
    fn apply_remedies(
        &mut self,
        run: &mut Run,
        directive: &str,
        guard: GuardSpec,
        alert: &Alert,
        ops: Vec<(usize, RemedyOp)>,
        shared: &Shared,
    ) {
        let c = &shared.counters;
        let now = alert.time.0;
        let every = guard.every.as_nanos() as u64;
        let tenant = Symbol::intern(&alert.tenant);
        for (n, op) in ops {
            let target = op.target(alert);
            let key = (tenant, directive.to_owned(), op.action(), target.clone());
            let (attempts, evicted) = self.guard.entry(key);
            if evicted {
                c.remedy_targets_evicted.fetch_add(1, Ordering::Relaxed);
            }
            let set = |run: &mut Run, outcome: Outcome, detail: String| {
                if let Some(a) = run.actions.get_mut(n) {
                    (a.outcome, a.detail) = (outcome, detail);
                }
            };
            if attempts.gave_up {
                set(run, Outcome::GaveUp, format!("gave up after {} attempts", attempts.count));
                continue;
            }
            if attempts.last_at != 0 && now.saturating_sub(attempts.last_at) < every {
                c.remedies_rate_limited.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_nanos(every - now.saturating_sub(attempts.last_at));
                set(run, Outcome::RateLimited, format!("next attempt in {}", about(wait)));
                continue;
            }
            attempts.count += 1;
            attempts.last_at = now.max(1);
            attempts.value = alert.value;
            let attempt = attempts.count;
            c.remedies_attempted.fetch_add(1, Ordering::Relaxed);
            let detail = format!("attempt {attempt} of {}", guard.max_attempts);
            let slot = Some((run.id, n));
            match op {
                RemedyOp::Breaker { cool_down, .. } => {
                    let opened = shared.breakers.open(
                        &alert.tenant,
                        &target,
                        &alert.directive,
                        &alert.summary,
                        cool_down,
                        shared.clock.now(),
                    );
                    if opened {
                        c.breakers_opened.fetch_add(1, Ordering::Relaxed);
                        self.breaker_event(&alert.tenant, &target, "open", &alert.summary, now);
                        set(run, Outcome::Done, detail);
                    } else {
                        set(run, Outcome::Done, format!("{detail}; already open"));
                    }
                }
                RemedyOp::Thread { command, reason } => match alert.thread_id {
                    Some(thread_id) => {
                        set(run, Outcome::Pending, detail);
                        self.deferred.push(Deferred::Thread {
                            tenant: alert.tenant.clone(),
                            thread_id,
                            command,
                            by: format!("directive:{directive}"),
                            reason: reason.unwrap_or_else(|| alert.summary.clone()),
                            slot,
                        });
                    }
                    None => {
                        c.thread_controls_failed.fetch_add(1, Ordering::Relaxed);
                        set(run, Outcome::Failed, "the firing names no thread".into());
                    }
                },
                RemedyOp::Budget(budget) => match alert.thread_id {
                    Some(thread_id) => {
                        set(run, Outcome::Pending, detail);
                        self.deferred.push(Deferred::Budget {
                            tenant: alert.tenant.clone(),
                            thread_id,
                            budget,
                            slot,
                        });
                    }
                    None => {
                        c.thread_controls_failed.fetch_add(1, Ordering::Relaxed);
                        set(run, Outcome::Failed, "the firing names no thread".into());
                    }
                },
                RemedyOp::Host { action, name } => {
                    set(run, Outcome::Pending, detail);
                    self.deferred.push(Deferred::Remedy {
                        request: Box::new(RemedyRequest {
                            action,
                            name,
                            target,
                            tenant: alert.tenant.clone(),
                            attempt,
                            run_id: run.id,
                            action_index: n,
                            alert: alert.clone(),
                        }),
                        slot,
                    });
                }
            }
        }
    }

    /// Holds `ops` for a person: a pending [`Approval`] (refused, and the remedies failed,
    /// when [`MAX_PENDING_APPROVALS`] wait already).
    #[allow(clippy::too_many_arguments)]
    fn propose(
        &mut self,
        run: &mut Run,
        within: Duration,
        confidence: Option<f64>,
        guard: GuardSpec,
        alert: &Alert,
        ops: Vec<(usize, RemedyOp)>,
        shared: &Shared,
    ) {
        let c = &shared.counters;
        if self.approvals.pending() >= MAX_PENDING_APPROVALS {
            c.approvals_refused.fetch_add(1, Ordering::Relaxed);
            for (n, _) in &ops {
                if let Some(a) = run.actions.get_mut(*n) {
                    a.outcome = Outcome::Failed;
                    a.detail = format!("{MAX_PENDING_APPROVALS} approvals wait already");
                }
            }
            return;
        }
        let created = self.wall_now();
        let id = self.approvals.next_id();
        let approval = Approval {
            id,
            run_id: run.id,
            directive: run.directive.clone(),
            tenant: run.tenant.clone(),
            dedup_key: run.dedup_key.clone(),
            thread_id: run.thread_id,
            actions: ops.iter().map(|(_, op)| op.action()).collect(),
            reason: alert.summary.clone(),
            confidence,
            created: Timestamp(created),
            deadline: Timestamp(created.saturating_add(within.as_nanos() as u64)),
            state: ApprovalState::Pending,
            decided_by: String::new(),
            note: String::new(),
            decided: None,
        };
        c.approvals_proposed.fetch_add(1, Ordering::Relaxed);
        self.record(approval.to_event(Timestamp(created)));
        for (n, _) in &ops {
            if let Some(a) = run.actions.get_mut(*n) {
                a.outcome = Outcome::Proposed;
                a.detail = format!("approval {id}");
            }
        }
        run.approval = Some(id);
        self.approvals.push(approval);
        let held = Held { directive: run.directive.clone(), guard, alert: alert.clone(), ops };
        self.held.insert(id, held);
    }

    /// An operator's decision on approval `id` (only one of `tenant`'s when given): approved,
    /// its remedies run through the guard; rejected, they do not. Returns the approval as
    /// decided.
    pub fn decide(
        &mut self,
        id: u64,
        verdict: Verdict,
        by: &str,
        note: &str,
        tenant: Option<&str>,
        shared: &Shared,
    ) -> Result<Approval, DirectiveError> {
        let wall = self.wall_now();
        let Some(approval) =
            self.approvals.get_mut(id).filter(|a| tenant.is_none_or(|t| a.tenant == t))
        else {
            return Err(DirectiveError::NoApproval(id));
        };
        if approval.state == ApprovalState::Pending && wall > approval.deadline.0 {
            self.expire(id, wall, shared);
            return Err(DirectiveError::Decided { id, state: ApprovalState::Expired.as_str() });
        }
        if approval.state != ApprovalState::Pending {
            return Err(DirectiveError::Decided { id, state: approval.state.as_str() });
        }
        approval.state = match verdict {
            Verdict::Approve => ApprovalState::Approved,
            Verdict::Reject => ApprovalState::Rejected,
        };
        approval.decided_by = bounded(by);
        approval.note = bounded(note);
        approval.decided = Some(Timestamp(wall));
        let (decided, run_id) = (approval.clone(), approval.run_id);
        self.record(decided.to_event(Timestamp(wall)));
        let held = self.held.remove(&id);
        let mut run = self.runs.get_mut(run_id).map(|r| std::mem::replace(r, placeholder(r.id)));
        let c = &shared.counters;
        match verdict {
            Verdict::Approve => {
                c.approvals_approved.fetch_add(1, Ordering::Relaxed);
                if let (Some(held), Some(run)) = (held, run.as_mut()) {
                    let mut alert = held.alert;
                    // The guard's clock: the directive's, or the decision's when later.
                    alert.time = Timestamp(alert.time.0.max(self.clock_of(&held.directive)));
                    self.apply_remedies(run, &held.directive, held.guard, &alert, held.ops, shared);
                }
            }
            Verdict::Reject => {
                c.approvals_rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(run) = run.as_mut() {
                    skip(run, RunOutcome::Rejected, &format!("rejected by {}", decided.decided_by));
                }
            }
        }
        if let Some(run) = run {
            self.put_back(run);
        }
        Ok(decided)
    }

    /// The clock of the directive named `name` (0 if it is gone).
    fn clock_of(&self, name: &str) -> u64 {
        self.directives.iter().find(|d| d.spec.name == name).map_or(0, |d| d.clock)
    }

    /// Puts a run taken out of the ring back, recording it once settled.
    fn put_back(&mut self, mut run: Run) {
        run.settle();
        if run.outcome != RunOutcome::Running {
            self.record(run.to_event());
            self.remedies_join(&run);
        }
        if let Some(slot) = self.runs.get_mut(run.id) {
            *slot = run;
        }
    }

    /// Expires every pending approval past its deadline on the wall clock.
    fn expire_approvals(&mut self, shared: &Shared) {
        let wall = self.wall;
        let due: Vec<u64> = self
            .approvals
            .list
            .iter()
            .filter(|a| a.state == ApprovalState::Pending && wall > a.deadline.0)
            .map(|a| a.id)
            .collect();
        for id in due {
            self.expire(id, wall, shared);
        }
    }

    fn expire(&mut self, id: u64, wall: u64, shared: &Shared) {
        let Some(approval) = self.approvals.get_mut(id) else { return };
        approval.state = ApprovalState::Expired;
        approval.decided = Some(Timestamp(wall));
        let (event, run_id) = (approval.to_event(Timestamp(wall)), approval.run_id);
        shared.counters.approvals_expired.fetch_add(1, Ordering::Relaxed);
        self.record(event);
        self.held.remove(&id);
        if let Some(run) = self.runs.get_mut(run_id) {
            let mut run = std::mem::replace(run, placeholder(run_id));
            skip(&mut run, RunOutcome::Expired, "nobody decided in time");
            self.put_back(run);
        }
    }

    /// While incident `key` of directive `i` keeps firing (now at `value`), tries its remedies
    /// again once each `guard.every` unless it moved toward `threshold` since the last
    /// attempt; after `guard.max_attempts` attempts without improvement the guard gives up
    /// (an error alert says so). A directive that waits for approval never retries on its own.
    fn retry(&mut self, i: usize, key: &GroupKey, value: f64, threshold: f64, shared: &Shared) {
        let d = &self.directives[i];
        if d.spec.approve.is_some() || !d.actions.iter().any(|a| matches!(a, Compiled::Remedy(_))) {
            return;
        }
        let (now, guard, name) = (d.clock, d.spec.guard, d.spec.name.clone());
        let every = guard.every.as_nanos() as u64;
        let Some(mut alert) = self.alert(i, key, AlertState::Firing, value, threshold) else {
            return;
        };
        let tenant = Symbol::intern(&alert.tenant);
        let distance = |v: f64| (v - threshold).abs();
        let mut again = Vec::new();
        let mut gave_up = Vec::new();
        for (n, action) in self.directives[i].actions.iter().enumerate() {
            let Compiled::Remedy(op) = action else { continue };
            let key = (tenant, name.clone(), op.action(), op.target(&alert));
            let Some(a) = self.guard.targets.get_mut(&key) else { continue };
            if a.gave_up || a.count == 0 || now.saturating_sub(a.last_at) < every {
                continue;
            }
            if distance(value) < distance(a.value) {
                // Improving: the last attempt works; wait another period.
                (a.value, a.last_at, a.count) = (value, now, 0);
            } else if a.count >= guard.max_attempts {
                a.gave_up = true;
                gave_up.push((n, op.action(), key.3, a.count));
            } else {
                again.push((n, op.clone()));
            }
        }
        if again.is_empty() && gave_up.is_empty() {
            return;
        }
        alert.summary = format!("{} (still firing)", alert.summary);
        let mut run = Run {
            id: self.runs.next_id(),
            directive: name.clone(),
            trigger: Trigger::Retry,
            by: format!("directive:{name}"),
            tenant: alert.tenant.clone(),
            dedup_key: alert.dedup_key.clone(),
            summary: alert.summary.clone(),
            thread_id: alert.thread_id,
            started: alert.time,
            outcome: RunOutcome::Running,
            actions: Vec::new(),
            approval: None,
        };
        let c = &shared.counters;
        for (_, action, target, attempts) in gave_up {
            c.remedies_gave_up.fetch_add(1, Ordering::Relaxed);
            run.actions.push(ActionOutcome {
                action,
                target: target.clone(),
                outcome: Outcome::GaveUp,
                detail: format!("{attempts} attempts without improvement"),
            });
            let mut notice = alert.clone();
            notice.summary = format!(
                "{action} on {target} gave up after {attempts} attempts without improvement: {}",
                alert.summary
            );
            self.record(notice.to_event(Level::Error));
        }
        let ops: Vec<(usize, RemedyOp)> = again
            .into_iter()
            .map(|(_, op)| {
                run.actions.push(ActionOutcome {
                    action: op.action(),
                    target: op.target(&alert),
                    outcome: Outcome::Pending,
                    detail: String::new(),
                });
                (run.actions.len() - 1, op)
            })
            .collect();
        self.apply_remedies(&mut run, &name, guard, &alert, ops, shared);
        self.keep(run);
    }

    /// Runs directive `name` by hand, as if its condition fired (for `tenant` when given, else
    /// the directive's own), about `thread` when given; returns the run's id.
    pub fn run_by_hand(
        &mut self,
        name: &str,
        by: &str,
        tenant: Option<&str>,
        thread: Option<ThreadId>,
        shared: &Shared,
    ) -> Result<u64, DirectiveError> {
        let i = self
            .directives
            .iter()
            .position(|d| d.spec.name == name)
            .ok_or_else(|| DirectiveError::NotFound(name.chars().take(128).collect()))?;
        let d = &self.directives[i];
        if tenant.is_some() && d.spec.across_tenants {
            return Err(DirectiveError::NotAllowed(format!(
                "{name} watches every tenant: only a principal of every tenant runs it"
            )));
        }
        if !d.spec.enabled {
            return Err(DirectiveError::NotAllowed(format!("{name} is disabled")));
        }
        let by = bounded(by);
        let time = Timestamp(d.clock.max(self.wall_now()));
        let alert = Alert {
            directive: d.spec.name.clone(),
            description: d.spec.description.clone(),
            state: AlertState::Firing,
            dedup_key: format!("{}:manual", d.spec.name),
            severity: d.spec.severity,
            condition: d.spec.trigger(),
            group: Vec::new(),
            value: 0.0,
            threshold: 0.0,
            summary: format!("{} run by hand by {by}", d.spec.name),
            tenant: tenant.map_or_else(
                || d.filter.tenant.map(|t| t.as_str().to_owned()).unwrap_or_default(),
                str::to_owned,
            ),
            agent: String::new(),
            operation: d.filter.operation.map(|o| o.as_str().to_owned()).unwrap_or_default(),
            thread_id: thread,
            missed: None,
            time,
        };
        let id = self.dispatch_as(i, alert, Trigger::Manual, by, shared);
        Ok(id.unwrap_or_default())
    }

    /// The outcomes of deferred actions: each fills its run's action; runs that settle are
    /// recorded.
    pub fn settle(&mut self, outcomes: Vec<(u64, usize, Outcome, String)>) {
        let mut touched: Vec<u64> = Vec::new();
        for (id, n, outcome, detail) in outcomes {
            let Some(run) = self.runs.get_mut(id) else { continue };
            if let Some(a) = run.actions.get_mut(n) {
                a.outcome = outcome;
                if !detail.is_empty() {
                    a.detail = if a.detail.is_empty() {
                        detail
                    } else {
                        format!("{}; {detail}", a.detail)
                    };
                }
            }
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        for id in touched {
            let Some(run) = self.runs.get_mut(id) else { continue };
            let before = run.outcome;
            run.settle();
            if run.outcome != RunOutcome::Running && before == RunOutcome::Running {
                let event = run.to_event();
                let run = run.clone();
                self.record(event);
                self.remedies_join(&run);
            }
        }
    }

    /// Records a breaker's change at stream time `time`, as an event of the breaker's tenant
    /// (none: every tenant's).
    fn breaker_event(&self, tenant: &str, tool: &str, state: &str, why: &str, time: u64) {
        let k = &KEYS;
        let level = if state == "open" { Level::Warn } else { Level::Info };
        let mut event = Event::new(
            k.breaker.get(),
            EventBody::Log(LogRecord {
                level,
                target: k.target.get(),
                message: Text::bounded(&format!("circuit breaker for {tool} {state}: {why}"), 1024),
            }),
        );
        event.time = Timestamp(time);
        event.tenant = Symbol::intern(tenant);
        event.attributes.set(k.tool.get(), tool);
        event.attributes.set(k.breaker_state.get(), state);
        self.record(event);
    }

    /// Acknowledges the open firings named by `incident` (a dedup key, or a directive name for
    /// every firing of that directive), only those of `tenant` when given: each is marked and
    /// an `acknowledged` alert event is recorded (no webhook, no callback). Returns the alerts
    /// recorded; a firing acknowledged before is left as it is.
    pub fn acknowledge(
        &mut self,
        incident: &str,
        by: &str,
        note: &str,
        tenant: Option<&str>,
        verdict: Option<AckVerdict>,
        shared: &Shared,
    ) -> Result<Vec<Alert>, DirectiveError> {
        let mut matched = Vec::new();
        for (i, d) in self.directives.iter().enumerate() {
            let whole = d.spec.name == incident;
            for (key, g) in &d.groups {
                if g.firing.is_some()
                    && (whole || dedup_key(&d.spec.name, &key.1) == incident)
                    && tenant.is_none_or(|t| g.tenant.as_str() == t)
                {
                    matched.push((i, key.clone()));
                }
            }
        }
        if matched.is_empty() {
            let what: String = incident.chars().take(128).collect();
            return Err(DirectiveError::NotFiring(match tenant {
                Some(t) => format!("{what} (of tenant {t})"),
                None => what,
            }));
        }
        matched.sort();
        let time = Timestamp(Timestamp::now().0.max(self.now));
        let by: String = by.chars().take(256).collect();
        let note: String = note.chars().take(1024).collect();
        let mut alerts = Vec::new();
        for (i, key) in matched {
            let Some(firing) =
                self.directives[i].groups.get_mut(&key).and_then(|g| g.firing.as_mut())
            else {
                continue;
            };
            if firing.acknowledged.is_some() {
                continue;
            }
            firing.acknowledged =
                Some(Acknowledgement { by: by.clone(), note: note.clone(), time });
            let (value, threshold) = (firing.value, firing.threshold);
            let Some(mut alert) = self.alert(i, &key, AlertState::Acknowledged, value, threshold)
            else {
                continue;
            };
            alert.time = time;
            alert.summary = if note.is_empty() {
                format!("acknowledged by {by}: {}", alert.summary)
            } else {
                format!("acknowledged by {by} ({note}): {}", alert.summary)
            };
            shared.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
            let k = &KEYS;
            let mut event = alert.to_event(Level::Info);
            event.attributes.set(k.acknowledged_by.get(), by.as_str());
            if !note.is_empty() {
                event.attributes.set(k.note.get(), note.as_str());
            }
            let (_, detector) = self.incident_cause(i, &alert);
            if let Some(v) = verdict {
                event.attributes.set(Symbol::intern(super::ATTR_ALERT_VERDICT), v.as_str());
                if detector != Symbol::EMPTY {
                    event
                        .attributes
                        .set(Symbol::intern(super::ATTR_ALERT_DETECTOR), detector.as_str());
                }
            }
            self.record(event);
            let member = Member {
                kind: MemberKind::Acknowledgement,
                source: by.clone(),
                id: String::new(),
                // On the incident's clock (event time), which a replay's wall time is not.
                time: self.directives[i].clock,
                summary: if note.is_empty() {
                    format!("acknowledged by {by}")
                } else {
                    format!("acknowledged by {by}: {note}")
                },
                verdict,
            };
            let wall = self.wall_now();
            self.incidents.follow(&alert.tenant, &alert.dedup_key, member, wall);
            alerts.push(alert);
        }
        Ok(alerts)
    }

    /// Resolves every firing group of directive `i` (disabled or removed).
    pub fn resolve_all(&mut self, i: usize, shared: &Shared) {
        let keys: Vec<(GroupKey, f64, f64)> = self.directives[i]
            .groups
            .iter()
            .filter_map(|(k, g)| g.firing.as_ref().map(|f| (k.clone(), f.value, f.threshold)))
            .collect();
        for (key, value, threshold) in keys {
            self.transition(i, &key, AlertState::Resolved, value, threshold, shared);
            if let Some(g) = self.directives[i].groups.get_mut(&key) {
                g.firing = None;
            }
        }
        self.directives[i].reset();
    }

    pub fn statuses(&self) -> Vec<DirectiveStatus> {
        self.directives.iter().map(Directive::status).collect()
    }
}

/// An empty run standing in the ring while its original is worked on (under the engine's lock:
/// it is put back before the lock is released, so no reader ever sees it).
fn placeholder(id: u64) -> Run {
    Run {
        id,
        directive: String::new(),
        trigger: Trigger::Event,
        by: String::new(),
        tenant: String::new(),
        dedup_key: String::new(),
        summary: String::new(),
        thread_id: None,
        started: Timestamp(0),
        outcome: RunOutcome::Running,
        actions: Vec::new(),
        approval: None,
    }
}

/// Marks a run's proposed remedies as not run, ending it with `outcome`.
fn skip(run: &mut Run, outcome: RunOutcome, why: &str) {
    for a in &mut run.actions {
        if a.outcome == Outcome::Proposed {
            (a.outcome, a.detail) = (Outcome::Skipped, why.to_owned());
        }
    }
    run.outcome = outcome;
}

/// A measured value in the statistic's unit, `none` when there is none.
fn shown_value(stat: Statistic, value: f64) -> String {
    if value.is_finite() { format_value(stat, value) } else { "none".into() }
}

/// A time ahead, rounded to the minute from 10 minutes on (`about 40m`), else to the second.
fn about(d: Duration) -> String {
    let s = d.as_secs().max(1);
    let rounded = if s >= 600 { (s + 30) / 60 * 60 } else { s };
    human(Duration::from_secs(rounded))
}

/// A failed span, or a denied permission decision (so `error_rate` over permission events is
/// the denial rate).
fn is_error(e: &Event) -> bool {
    match &e.body {
        EventBody::Span(s) => s.status.is_error(),
        EventBody::Permission(p) => p.decision == Decision::Deny,
        _ => false,
    }
}

fn measure(e: &Event, stat: Statistic) -> f64 {
    let Some(field) = stat.field() else { return 0.0 };
    match (&e.body, field) {
        (EventBody::Span(s), Field::Duration) => s.duration_ns as f64 / 1e6,
        (EventBody::Span(s), Field::Cost) => s.llm.cost_usd,
        (EventBody::Span(s), Field::Tokens) => {
            f64::from(s.llm.input_tokens) + f64::from(s.llm.output_tokens)
        }
        (EventBody::Metric(m), Field::Value) => m.value,
        (EventBody::Anomaly(a), Field::Value) => a.value,
        (EventBody::Score(s), Field::Score(name)) if e.name == name => s.value,
        _ => 0.0,
    }
}

fn is_idle(data: &GroupData, now: u64) -> bool {
    match data {
        GroupData::Window(w) => w.is_empty_at(now),
        GroupData::Slo(w) => w[2].is_empty_at(now),
        GroupData::Anomaly { last, .. } => last.is_none(),
        GroupData::Streak(n) => *n == 0,
        GroupData::Denials(t) => t.is_empty(),
        GroupData::Loop(r) => {
            r.seen.is_empty() || now.saturating_sub(r.last) >= LOOP_QUIET.as_nanos() as u64
        }
        // Freed when its thread ends (root span, or gone from the registry), never as idle:
        // a quiet thread is what the condition watches.
        GroupData::Quiet(_) => false,
        GroupData::Scheduled => true,
    }
}

fn field_value(field: GroupField, e: &Event) -> &str {
    match field {
        GroupField::Tenant => e.tenant.as_str(),
        GroupField::Agent => e.agent.as_str(),
        GroupField::Operation => e.name.as_str(),
        GroupField::Model => e.as_span().map_or("", |s| s.llm.model.as_str()),
        GroupField::Provider => e.as_span().map_or("", |s| s.llm.provider.as_str()),
        GroupField::Kind => e.kind().as_str(),
        GroupField::McpServer => match e.attributes.get(MCP_SERVER.get()) {
            Some(AttrValue::Str(s)) => s.as_str(),
            _ => "",
        },
    }
}

static MCP_SERVER: LazySymbol = LazySymbol::new(super::spec::ATTR_MCP_SERVER);

fn group_labels(by: &[GroupField], when: &Condition, e: &Event) -> Vec<(String, String)> {
    if let (Condition::RepeatedDenials { .. }, EventBody::Permission(p)) = (when, &e.body) {
        return vec![("actor".to_owned(), p.actor.as_str().to_owned())];
    }
    if let Condition::Loop { .. } | Condition::Stalled { .. } = when {
        // The tenant too, so a thread id shared by two tenants is two incidents whatever the
        // directive's scope, and the thread an alert names can be found (and stopped).
        return thread_labels(e.tenant, e.thread_id);
    }
    by.iter().map(|f| (f.as_str().to_owned(), field_value(*f, e).to_owned())).collect()
}

fn group_key(by: &[GroupField], when: &Condition, e: &Event) -> String {
    if let (Condition::RepeatedDenials { .. }, EventBody::Permission(p)) = (when, &e.body) {
        let actor: String = p.actor.as_str().chars().take(128).collect();
        return format!("actor={actor}");
    }
    if let Condition::Loop { .. } | Condition::Stalled { .. } = when {
        return thread_key(e.tenant.as_str(), e.thread_id);
    }
    if by.is_empty() {
        return String::new();
    }
    let labels: Vec<(String, String)> =
        by.iter().map(|f| (f.as_str().to_owned(), field_value(*f, e).to_owned())).collect();
    group_text(&labels)
}

/// The cause signature of an anomaly event: its single cause (`model=claude-sonnet-4`), else
/// its operation (`operation=chat`).
pub(crate) fn anomaly_cause(e: &Event) -> String {
    use mission_core::anomaly::attr;
    let text = |key: &str| match e.attributes.get(Symbol::intern(key)) {
        Some(AttrValue::Str(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    match text(attr::CAUSE) {
        Some(cause) if cause != attr::NO_SINGLE_CAUSE && cause.contains('=') => cause,
        _ => format!(
            "operation={}",
            text(attr::OPERATION).unwrap_or_else(|| e.name.as_str().to_owned())
        ),
    }
}
