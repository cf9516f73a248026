//! Directives: automation written as data. A directive is *when* a condition over the live
//! stream holds, *then* actions run; or, with a [`schedule`](DirectiveSpec::schedule) (a
//! 5-field UTC cron expression, [`Schedule`]) instead of a condition, actions that run each
//! time it is due, judged on the wall clock's ticks.
//!
//! - [`DirectiveSet`] reads directives from TOML or JSON ([`DirectiveSet::from_file`]) or a
//!   shipped preset ([`DirectiveSet::preset`]: [`PRESETS`]), validated on load with errors that
//!   name the line and the field.
//! - [`Directives`] is the handle (`Clone + Send + Sync`): add, remove, enable and disable
//!   directives at run time, list them with their state, [acknowledge](Directives::acknowledge)
//!   a firing incident, register Rust callbacks by name, ask [`permit`](Directives::permit)
//!   before a tool call, read the log level and sampling rate directives set (which
//!   `MissionControl` applies: [`log_enabled`](Directives::log_enabled), and the sampling
//!   wrapper's rate).
//! - [`DirectiveSink`] ([`Directives::sink`]) is the [`Sink`] that runs them on the pipeline
//!   thread; what it derives (alerts, delivery outcomes, breaker changes) re-enters the stream
//!   as `mission.*` log events.
//!
//! ```
//! use mission_govern::directives::{DirectiveSet, Directives, Permit};
//! let set = DirectiveSet::from_toml_str(r#"
//!     [[directive]]
//!     name = "tool-failing"
//!     when = "3 failures in a row"
//!     where = { kind = "tool_call" }
//!     group_by = ["operation"]
//!     then = [{ action = "alert" }, { action = "open_breaker", cool_down = "30s" }]
//! "#, "inline")?;
//! let directives = Directives::new(set)?;
//! let pipeline = mission_core::Pipeline::builder().with_sink(directives.sink()).start()?;
//! assert_eq!(directives.permit("search_web"), Permit::Allow);
//! # drop(pipeline);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time and memory
//!
//! Windows run on event time. Each directive has its own clock, the watermark of its windows:
//! the newest end time of the events it watches (so replayed, simulated or delayed events
//! drive windows exactly as live ones do, however fast or slow the machine). The wall clock
//! (the pipeline's tick, every 250 ms) moves it only when no event it watches arrived for
//! [`IDLE_AFTER`]: then on by the wall time passed since the quiet began, never past the wall
//! clock — so `count == 0 over 15m` fires with no events at all, and a window drains once
//! the stream stops. Before a directive's first event its clock follows the wall clock; the
//! first event's time replaces it (a replay of last week starts last week).
//!
//! **Allowed lateness** is the window itself: an event behind the watermark is added to its
//! window as long as the window ending at the watermark still covers its time (up to `5m`
//! behind for `over 5m`; 6h for an SLO, `within` for denials). An older event is *late*: it
//! is not added, and it is counted — per directive in [`DirectiveStatus::late_events`], in
//! total in [`DirectiveStats::late_events`] (health shows both); never dropped silently.
//!
//! # Tenants
//!
//! Incidents, windows and circuit breakers are per tenant: the tenant is part of every group
//! key (whatever `group_by` says), an incident keeps the tenant of its events, and a breaker
//! a firing opens denies that tenant's calls only ([`Directives::permit_for`]). A directive
//! with `across_tenants = true` ([`DirectiveSpec::across_tenants`]) watches every tenant's
//! events together instead: its incidents have no tenant, so only principals of every tenant
//! (not scoped to one) see and acknowledge them, and its breakers apply to every tenant.
//!
//! # Memory
//!
//! A statistics window is [`BUCKETS`] buckets (a `forecast` condition's covers twice its
//! horizon, and its trend is a closed-form least-squares line over those buckets); a percentile
//! keeps a sparse log histogram per bucket (at most [`HISTOGRAM_BINS`] bins, ~2% error); an SLO
//! keeps four count-only windows (1h, 5m, 6h, 30m); a stalled-thread condition keeps one
//! time per running thread (freed when the thread's root span ends or it leaves the thread
//! registry, [`Directives::with_threads`], which it scans once per evaluation: a 60th of its
//! quiet time); a directive tracks at most
//! [`MAX_GROUPS`] groups. Webhooks go through one worker thread with a queue of
//! [`QUEUE_CAPACITY`]; a full queue drops and counts.
//!
//! # Untrusted input
//!
//! Directive files are validated before anything runs: unknown fields, bad conditions, bad
//! URLs and inconsistent actions are refused with the line and field. Callbacks run on the
//! pipeline thread, after the engine's lock is released; a panicking callback is caught and
//! counted.

mod action;
mod breaker;
mod condition;
mod engine;
mod incident;
mod schedule;
mod spec;
mod webhook;
mod workflow;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use mission_core::{Event, Level, Sink, SinkContext, SinkError, Timestamp};

pub use action::{
    ALERT_EVENT, ATTR_ALERT_ACKNOWLEDGED_BY, ATTR_ALERT_DETECTOR, ATTR_ALERT_GROUP,
    ATTR_ALERT_NOTE, ATTR_ALERT_SEVERITY, ATTR_ALERT_STATE, ATTR_ALERT_THREAD_ID,
    ATTR_ALERT_THRESHOLD, ATTR_ALERT_VALUE, ATTR_ALERT_VERDICT, ATTR_BREAKER_STATE,
    ATTR_BREAKER_TOOL, ATTR_DEDUP_KEY, ATTR_DELIVERY_ATTEMPTS, ATTR_DELIVERY_OUTCOME,
    ATTR_DELIVERY_STATUS, ATTR_DIRECTIVE, ATTR_SCHEDULE_MISSED, Alert, AlertState, BREAKER_EVENT,
    DELIVERY_EVENT, DIRECTIVES_TARGET,
};
pub use breaker::{BreakerClock, BreakerState, BreakerStatus, Denial, MAX_BREAKERS, Permit};
pub use condition::{
    Aggregation, BUCKETS, Comparison, Condition, Field, ForecastThreshold, HISTOGRAM_BINS,
    MAX_FORECAST_HORIZON, MAX_STALL, MIN_FORECAST_BUCKETS, MIN_FORECAST_HORIZON, MIN_STALL, Repeat,
    Slo, SloGood, Statistic, Threshold,
};
pub use engine::{IDLE_AFTER, LOOP_QUIET, MAX_GROUPS, MAX_LOOP_CALLS, MAX_MISSED_COUNTED};
pub use incident::{
    ATTR_INCIDENT_CAUSE, ATTR_INCIDENT_ID, ATTR_INCIDENT_MEMBERS, ATTR_INCIDENT_NARRATIVE,
    ATTR_INCIDENT_OPENED, ATTR_INCIDENT_RESOLUTION, ATTR_INCIDENT_STATE, INCIDENT_EVENT, Incident,
    IncidentState, JOIN, MAX_CLOSED_INCIDENTS, MAX_MEMBERS, MAX_OPEN_INCIDENTS, Member, MemberKind,
    QUIET, Verdict as AckVerdict, from_attributes as incident_from_attributes, likeness,
    similar as similar_incidents,
};
pub use schedule::{CronField, Schedule, ScheduleError};
pub use spec::{
    ATTR_MCP_SERVER, ActionSpec, ApprovalSpec, BurnAlerts, DirectiveSet, DirectiveSpec, Filter,
    GroupField, GuardSpec, KindName, MAX_ACTION_DURATION, MAX_APPROVAL_WINDOW, MAX_GUARD_ATTEMPTS,
    MAX_MIN_EVENTS, PRESETS, REMEDY_ACTIONS, Severity, WebhookFormat, WebhookSpec,
};
pub use webhook::{
    DELIVERY_HEADER, MAX_BACKOFF, NoTransport, PostOutcome, QUEUE_CAPACITY, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, WebhookRequest, WebhookTransport, sign,
};

pub use workflow::{
    APPROVAL_EVENT, ATTR_APPROVAL_CONFIDENCE, ATTR_APPROVAL_DEADLINE, ATTR_APPROVAL_DECIDED_BY,
    ATTR_APPROVAL_ID, ATTR_APPROVAL_STATE, ATTR_RUN_ACTIONS, ATTR_RUN_BY, ATTR_RUN_ID,
    ATTR_RUN_OUTCOME, ATTR_RUN_TRIGGER, ActionOutcome, Approval, ApprovalState,
    MAX_DECIDED_APPROVALS, MAX_NOTE_CHARS, MAX_PENDING_APPROVALS, MAX_REMEDY_TARGETS, MAX_RUNS,
    Outcome, RUN_EVENT, Remedy, RemedyOutcome, RemedyRequest, Run, RunOutcome, Trigger, Verdict,
};

use engine::{Directive, Engine};

/// What can go wrong loading or changing directives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectiveError {
    /// A directive file, text or value is invalid.
    #[error("invalid directives in {origin}: {message}")]
    Invalid {
        /// The file, preset or directive.
        origin: String,
        /// What is wrong, naming the line (for files) and the field.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No preset has that name.
    #[error(
        "unknown directive preset {0:?}: expected one of slo-basic, cost-guard, tool-circuit-breaker, self-care"
    )]
    UnknownPreset(String),
    /// A directive of that name exists already.
    #[error("a directive named {0:?} already exists")]
    Duplicate(String),
    /// No directive has that name.
    #[error("no directive named {0:?}")]
    NotFound(String),
    /// No open firing has that dedup key (or belongs to a directive of that name).
    #[error("no firing incident {0:?}: give a dedup key or directive name from the firing list")]
    NotFiring(String),
    /// No approval has that id (for this principal's tenant).
    #[error("no approval {0}: give an id from the approval list")]
    NoApproval(u64),
    /// The approval was decided already, or expired.
    #[error("approval {id} is {state}: only a pending approval can be decided")]
    Decided {
        /// The approval.
        id: u64,
        /// `approved`, `rejected` or `expired`.
        state: &'static str,
    },
    /// The principal may not do this (a tenant-scoped principal running a directive across
    /// tenants; a disabled directive).
    #[error("not allowed: {0}")]
    NotAllowed(String),
}

/// The directives' result type.
pub type Result<T, E = DirectiveError> = std::result::Result<T, E>;

/// What [`Directives::on_incident`] calls with each new incident.
pub type IncidentHook = Arc<dyn Fn(&Incident) + Send + Sync>;

/// A Rust callback a directive calls by name, with the firing or the resolve.
pub type Callback = Arc<dyn Fn(&Alert) + Send + Sync>;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    events: AtomicU64,
    late_events: AtomicU64,
    groups_dropped: AtomicU64,
    fired: AtomicU64,
    resolved: AtomicU64,
    acknowledged: AtomicU64,
    callbacks_run: AtomicU64,
    callbacks_missing: AtomicU64,
    callbacks_panicked: AtomicU64,
    webhooks_queued: AtomicU64,
    webhooks_delivered: AtomicU64,
    webhooks_failed: AtomicU64,
    webhook_retries: AtomicU64,
    webhooks_dropped: AtomicU64,
    breakers_opened: AtomicU64,
    loop_calls_evicted: AtomicU64,
    threads_controlled: AtomicU64,
    thread_controls_failed: AtomicU64,
    runs_manual: AtomicU64,
    approvals_proposed: AtomicU64,
    approvals_approved: AtomicU64,
    approvals_rejected: AtomicU64,
    approvals_expired: AtomicU64,
    approvals_refused: AtomicU64,
    remedies_attempted: AtomicU64,
    remedies_failed: AtomicU64,
    remedies_missing: AtomicU64,
    remedies_rate_limited: AtomicU64,
    remedies_gave_up: AtomicU64,
    remedy_targets_evicted: AtomicU64,
    analysers_panicked: AtomicU64,
    pub(crate) incidents_dropped: AtomicU64,
    pub(crate) derived: AtomicU64,
}

/// What the directives did, counted since they were created.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirectiveStats {
    /// Events looked at (their own `mission.*` events excluded).
    pub events: u64,
    /// Late events: older than their window at the directive's watermark (see "Time and
    /// memory" in the module docs), counted and not added.
    pub late_events: u64,
    /// Events of groups past [`MAX_GROUPS`], ignored.
    pub groups_dropped: u64,
    /// Firings.
    pub fired: u64,
    /// Resolves.
    pub resolved: u64,
    /// Firing incidents acknowledged ([`Directives::acknowledge`]).
    pub acknowledged: u64,
    /// Callbacks called.
    pub callbacks_run: u64,
    /// Callbacks named by a directive but not registered.
    pub callbacks_missing: u64,
    /// Callbacks that panicked (caught).
    pub callbacks_panicked: u64,
    /// Webhook deliveries made (queued or dropped).
    pub webhooks_queued: u64,
    /// Deliveries that got a 2xx.
    pub webhooks_delivered: u64,
    /// Deliveries that failed for good (a 4xx, or retries exhausted).
    pub webhooks_failed: u64,
    /// Retries made.
    pub webhook_retries: u64,
    /// Deliveries dropped because the queue was full (or no pipeline ran the sink).
    pub webhooks_dropped: u64,
    /// Circuit breakers opened by directives.
    pub breakers_opened: u64,
    /// Calls a loop condition forgot because their thread's group already counted
    /// [`MAX_LOOP_CALLS`] distinct ones (the least recently seen gives way).
    pub loop_calls_evicted: u64,
    /// Threads a `cancel_thread` or `pause_thread` action paused or cancelled.
    pub threads_controlled: u64,
    /// Thread actions that did nothing: no registry ([`Directives::with_threads`]), a firing
    /// naming no thread, or a thread no longer running in the firing's tenant.
    pub thread_controls_failed: u64,
    /// Directives run by hand ([`Directives::run`]).
    pub runs_manual: u64,
    /// Approvals proposed (remedies held for a person).
    pub approvals_proposed: u64,
    /// Approvals approved.
    pub approvals_approved: u64,
    /// Approvals rejected.
    pub approvals_rejected: u64,
    /// Approvals nobody decided in time.
    pub approvals_expired: u64,
    /// Proposals refused because [`MAX_PENDING_APPROVALS`] waited already (their remedies
    /// did not run).
    pub approvals_refused: u64,
    /// Remedy attempts the guard let through.
    pub remedies_attempted: u64,
    /// Host remedies that failed or panicked.
    pub remedies_failed: u64,
    /// Host remedies named by a directive but not registered ([`Directives::register_remedy`]).
    pub remedies_missing: u64,
    /// Remedies the guard held back: the same target was tried less than `guard.every` ago.
    pub remedies_rate_limited: u64,
    /// Targets the guard gave up on after `guard.max_attempts` attempts without improvement.
    pub remedies_gave_up: u64,
    /// Remedy targets the guard forgot to stay within [`MAX_REMEDY_TARGETS`].
    pub remedy_targets_evicted: u64,
    /// Incidents not opened because [`MAX_OPEN_INCIDENTS`] were open.
    pub incidents_dropped: u64,
    /// Analyser hooks ([`Directives::on_incident`]) that panicked (caught).
    pub analysers_panicked: u64,
    /// Every event the directives recorded (alerts, breaker changes, delivery outcomes, runs,
    /// approvals, and the incidents anomalies open even with no directive loaded): what the
    /// recorder's accounting shows beyond what the agent recorded.
    pub derived_events: u64,
}

/// One firing incident of a directive.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FiringGroup {
    /// Its dedup key.
    pub dedup_key: String,
    /// Its group.
    pub group: Vec<(String, String)>,
    /// Since when (stream time).
    pub since: Timestamp,
    /// The latest value.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// The incident's tenant; empty for a directive across tenants (or an ungrouped one
    /// before any event).
    pub tenant: String,
    /// Who acknowledged it, when and why; `None` while nobody has.
    pub acknowledged: Option<Acknowledgement>,
}

/// Who acknowledged a firing incident ([`Directives::acknowledge`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledgement {
    /// Who: a person, or `mcp:<role>` over MCP.
    pub by: String,
    /// What they said (may be empty).
    pub note: String,
    /// When (wall clock, or the stream's clock when that is later).
    pub time: Timestamp,
}

/// A directive and its state, as [`Directives::list`] shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DirectiveStatus {
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// The condition, as text.
    pub condition: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Groups tracked.
    pub groups: usize,
    /// Events of groups past [`MAX_GROUPS`], ignored.
    pub groups_dropped: u64,
    /// Late events: older than their window at this directive's watermark, counted and not
    /// added (see "Time and memory" in the module docs).
    pub late_events: u64,
    /// Whether it watches every tenant's events together ([`DirectiveSpec::across_tenants`]).
    pub across_tenants: bool,
    /// The incidents firing now.
    pub firing: Vec<FiringGroup>,
}

pub(crate) struct Shared {
    engine: Mutex<Engine>,
    breakers: breaker::Breakers,
    /// The time the breakers' cool-downs are measured in.
    clock: breaker::BreakerClock,
    callbacks: RwLock<HashMap<String, Callback>>,
    /// Host remedies by name (`fallback`, `reset_connection`).
    remedies: RwLock<HashMap<String, Remedy>>,
    /// The host's analyser, handed each new incident.
    analyser: RwLock<Option<IncidentHook>>,
    counters: Arc<Counters>,
    /// 0: no directive sets it; else `Level as u8 + 1`.
    log_level: AtomicU8,
    /// `f64` bits; `u64::MAX`: no directive sets it.
    sampling: AtomicU64,
    sink_started: AtomicBool,
    /// What webhook deliveries are posted with.
    transport: Arc<dyn WebhookTransport>,
    /// The agent's live threads, which `cancel_thread` and `pause_thread` act on.
    threads: RwLock<Option<Arc<crate::threads::ThreadRegistry>>>,
}

/// The handle on a set of running directives. Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Directives {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Directives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directives").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Directives {
    /// Directives ready to run; give [`sink`](Self::sink) to a pipeline. Their webhooks
    /// have no transport ([`NoTransport`]): see [`with_transport`](Self::with_transport).
    ///
    /// # Errors
    /// [`DirectiveError::Invalid`] if a webhook names a secret variable that is not set.
    pub fn new(set: DirectiveSet) -> Result<Self> {
        Self::with_clock(set, BreakerClock::system())
    }

    /// Like [`new`](Self::new), with the breakers' cool-downs measured on `clock` (e.g. a
    /// [`BreakerClock::manual`] a test or simulation advances).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_clock(set: DirectiveSet, clock: BreakerClock) -> Result<Self> {
        Self::with_transport(set, clock, Arc::new(NoTransport))
    }

    /// Like [`with_clock`](Self::with_clock), with webhooks delivered through `transport`
    /// (which also checks their URLs and reads their CA files now, as each directive loads).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`DirectiveError::Invalid`] if `transport` refuses a webhook's
    /// URL or CA file.
    pub fn with_transport(
        set: DirectiveSet,
        clock: BreakerClock,
        transport: Arc<dyn WebhookTransport>,
    ) -> Result<Self> {
        let directives = set
            .into_iter()
            .map(|spec| Directive::compile(spec, transport.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let counters = Arc::new(Counters::default());
        Ok(Self {
            shared: Arc::new(Shared {
                engine: Mutex::new(Engine::new(directives, counters.clone())),
                breakers: breaker::Breakers::default(),
                clock,
                callbacks: RwLock::new(HashMap::new()),
                remedies: RwLock::new(HashMap::new()),
                analyser: RwLock::new(None),
                counters,
                log_level: AtomicU8::new(0),
                sampling: AtomicU64::new(u64::MAX),
                sink_started: AtomicBool::new(false),
                transport,
                threads: RwLock::new(None),
            }),
        })
    }

    /// Lets `cancel_thread` and `pause_thread` actions act on the threads of `registry` (the
    /// SDK wires in its own). A firing acts only on a thread of its own tenant.
    pub fn with_threads(&self, registry: Arc<crate::threads::ThreadRegistry>) {
        *self.shared.threads.write().unwrap_or_else(|p| p.into_inner()) = Some(registry);
    }

    /// Gives the directives the recorder their events go to before their sink starts (the
    /// sink gives it when the pipeline starts it, on the pipeline's thread: a run by hand, an
    /// approval or an acknowledgement made in between would otherwise not be recorded).
    pub fn attach(&self, recorder: mission_core::WeakRecorder) {
        let mut engine = self.engine();
        if engine.recorder.is_none() {
            engine.recorder = Some(recorder);
        }
    }

    /// The sink that runs these directives. Give it to one pipeline
    /// (`Pipeline::builder().with_sink(..)` or `MissionControl::builder().with_sink(..)`).
    pub fn sink(&self) -> DirectiveSink {
        DirectiveSink { shared: self.shared.clone() }
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.shared.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a directive at run time.
    ///
    /// # Errors
    /// [`DirectiveError::Duplicate`] if the name is taken; [`DirectiveError::Invalid`] if it
    /// does not validate.
    pub fn add(&self, spec: DirectiveSpec) -> Result<()> {
        let compiled = Directive::compile(spec, self.shared.transport.as_ref())?;
        let mut engine = self.engine();
        if engine.directives.iter().any(|d| d.spec.name == compiled.spec.name) {
            return Err(DirectiveError::Duplicate(compiled.spec.name));
        }
        engine.directives.push(compiled);
        Ok(())
    }

    /// Removes a directive, resolving its firing incidents; returns its spec.
    ///
    /// # Errors
    /// [`DirectiveError::NotFound`].
    pub fn remove(&self, name: &str) -> Result<DirectiveSpec> {
        let mut engine = self.engine();
        let i = position(&engine, name)?;
        engine.resolve_all(i, &self.shared);
        let spec = engine.directives.remove(i).spec;
        self.run_deferred(engine);
        Ok(spec)
    }

    /// Enables or disables a directive. Disabling resolves its firing incidents and forgets
    /// its windows; enabling starts them afresh.
    ///
    /// # Errors
    /// [`DirectiveError::NotFound`].
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        let mut engine = self.engine();
        let i = position(&engine, name)?;
        if engine.directives[i].spec.enabled != enabled {
            engine.resolve_all(i, &self.shared);
            engine.directives[i].spec.enabled = enabled;
        }
        self.run_deferred(engine);
        Ok(())
    }

    /// Every directive with its state, in the order they were added.
    pub fn list(&self) -> Vec<DirectiveStatus> {
        self.engine().statuses()
    }

    /// [`list`](Self::list) as a principal of `tenant` sees it (`None`: of every tenant): only
    /// that tenant's firing incidents (a directive across tenants shows none).
    pub fn list_for(&self, tenant: Option<&str>) -> Vec<DirectiveStatus> {
        let mut list = self.list();
        if let Some(t) = tenant {
            for d in &mut list {
                d.firing.retain(|f| f.tenant == t);
            }
        }
        list
    }

    /// Acknowledges a firing incident: `incident` is its dedup key (as [`list`](Self::list)
    /// shows it), or a directive's name for every incident of that directive firing now.
    /// `actor` says who, `note` why (may be empty). Each firing becomes acknowledged (shown
    /// in [`list`](Self::list)) and an alert event with state `acknowledged` is recorded;
    /// webhooks and callbacks are not called again (the incident was delivered when it
    /// fired), and it resolves as usual. Returns the alerts recorded, one per incident
    /// acknowledged now: an incident acknowledged before is left as it is.
    ///
    /// ```
    /// use mission_govern::directives::{DirectiveError, DirectiveSet, Directives};
    /// let set = DirectiveSet::from_toml_str(
    ///     "[[directive]]\nname = \"tool-failing\"\nwhen = \"3 failures in a row\"\n",
    ///     "inline",
    /// )?;
    /// let directives = Directives::new(set)?;
    /// // Nothing fires yet.
    /// let err = directives.acknowledge("tool-failing", "jo", "looking").unwrap_err();
    /// assert!(matches!(err, DirectiveError::NotFiring(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DirectiveError::NotFiring`] if no incident of that key or directive fires now.
    pub fn acknowledge(&self, incident: &str, actor: &str, note: &str) -> Result<Vec<Alert>> {
        self.acknowledge_in(incident, actor, note, None)
    }

    /// [`acknowledge`](Self::acknowledge) as a principal of `tenant` (`None`: of every
    /// tenant): only that tenant's incidents match (a tenant-scoped token acknowledges its own
    /// tenant's incidents only, never those of another tenant or of a directive across
    /// tenants).
    ///
    /// # Errors
    /// [`DirectiveError::NotFiring`] if no incident of that key or directive fires now in
    /// `tenant`.
    pub fn acknowledge_in(
        &self,
        incident: &str,
        actor: &str,
        note: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Alert>> {
        self.engine().acknowledge(incident, actor, note, tenant, None, &self.shared)
    }

    /// [`acknowledge_in`](Self::acknowledge_in) with a verdict on what fired (a true or a false
    /// positive): recorded on the acknowledgement's alert event with the anomaly detector that
    /// fired it (for an anomaly condition), where the models' statistics grade detectors, and
    /// kept with the incident.
    ///
    /// # Errors
    /// As [`acknowledge_in`](Self::acknowledge_in).
    pub fn acknowledge_with(
        &self,
        incident: &str,
        actor: &str,
        note: &str,
        tenant: Option<&str>,
        verdict: Option<AckVerdict>,
    ) -> Result<Vec<Alert>> {
        self.engine().acknowledge(incident, actor, note, tenant, verdict, &self.shared)
    }

    /// The incidents in memory — open ones, then the latest closed, newest first — only
    /// `tenant`'s when given. Older closed incidents are in the store (`mission.incident`
    /// events).
    pub fn incidents_for(&self, tenant: Option<&str>) -> Vec<Incident> {
        self.engine().incidents.list(tenant)
    }

    /// How long an incident with nothing firing must stay quiet before it closes (default
    /// [`QUIET`], 10 minutes; 1 second to a day).
    ///
    /// # Errors
    /// [`DirectiveError::Invalid`] naming the range when `quiet` is outside it.
    pub fn set_incident_quiet(&self, quiet: Duration) -> Result<()> {
        if quiet < Duration::from_secs(1) || quiet > Duration::from_secs(86_400) {
            return Err(DirectiveError::Invalid {
                origin: "incident quiet".into(),
                message: format!("{quiet:?} is out of range: expected 1s to 1 day"),
            });
        }
        self.engine().incidents.quiet = quiet;
        Ok(())
    }

    /// Registers the host's analyser: each new incident is handed to it (on the pipeline
    /// thread, after the engine's lock is released: hand long work to a thread of your own);
    /// a narrative given later with [`narrate`](Self::narrate) is kept with the incident.
    /// Mission Control never calls a model provider itself.
    pub fn on_incident(&self, hook: impl Fn(&Incident) + Send + Sync + 'static) {
        *self.shared.analyser.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(hook));
    }

    /// Keeps `narrative` (an analyser's root-cause story) with incident `id` of `tenant`,
    /// recorded as a `mission.incident` event in state `narrated`; returns whether the incident
    /// is still in memory.
    pub fn narrate(&self, tenant: &str, id: &str, narrative: &str) -> bool {
        let mut engine = self.engine();
        let time = Timestamp::now().0;
        match engine.incidents.narrate(tenant, id, narrative, time) {
            Some(event) => {
                engine.record_event(event);
                true
            }
            None => false,
        }
    }

    /// Registers `callback` under `name` (replacing one of that name). Directives with
    /// `{ action = "callback", name = "<name>" }` call it on the pipeline thread when they fire
    /// and when they resolve: keep it short.
    pub fn register_callback(&self, name: &str, callback: impl Fn(&Alert) + Send + Sync + 'static) {
        let mut map = self.shared.callbacks.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_owned(), Arc::new(callback));
    }

    /// Removes a callback; returns whether there was one.
    pub fn unregister_callback(&self, name: &str) -> bool {
        let mut map = self.shared.callbacks.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name).is_some()
    }

    /// May `tool` be called now, by any tenant? Denied while a breaker of `tool` is open for
    /// any tenant; in a process serving several tenants ask [`permit_for`](Self::permit_for).
    /// Without an open breaker this takes no lock (one atomic load).
    pub fn permit(&self, tool: &str) -> Permit {
        self.shared.breakers.permit(None, tool, self.shared.clock.now())
    }

    /// May `tenant` call `tool` now? Ask before each tool call: denied while `tenant`'s breaker
    /// of `tool` (or one a directive across tenants opened) is open; other tenants' breakers do
    /// not matter. Without an open breaker this takes no lock (one atomic load).
    pub fn permit_for(&self, tenant: &str, tool: &str) -> Permit {
        self.shared.breakers.permit(Some(tenant), tool, self.shared.clock.now())
    }

    /// Reports the outcome of `tenant`'s call of `tool` made outside the recorded stream (spans
    /// of the tool report it on their own): decides a half-open breaker.
    pub fn report(&self, tenant: &str, tool: &str, success: bool) {
        let _ = self.shared.breakers.outcome(tenant, tool, success, self.shared.clock.now());
    }

    /// Closes `tool`'s breakers by hand (every tenant's); returns whether one was open or
    /// half-open.
    pub fn reset_breaker(&self, tool: &str) -> bool {
        self.shared.breakers.reset(None, tool)
    }

    /// Closes `tenant`'s breaker of `tool` by hand; returns whether it was open or half-open.
    pub fn reset_breaker_for(&self, tenant: &str, tool: &str) -> bool {
        self.shared.breakers.reset(Some(tenant), tool)
    }

    /// Every breaker a directive opened, with its tenant and state.
    pub fn breakers(&self) -> Vec<BreakerStatus> {
        self.shared.breakers.list(None, self.shared.clock.now())
    }

    /// The breakers a principal of `tenant` sees: its own and those of every tenant.
    pub fn breakers_for(&self, tenant: &str) -> Vec<BreakerStatus> {
        self.shared.breakers.list(Some(tenant), self.shared.clock.now())
    }

    /// Whether a log record at `level` is recorded, given the `configured` least severe level:
    /// it is at or above `configured`, or at or above what a firing `set_log_level` directive
    /// asks for ([`min_log_level`](Self::min_log_level)). A directive only adds verbosity; it
    /// never drops what the configuration records. O(1), no lock, no allocation: one atomic
    /// load, and none when `level` passes `configured`.
    #[inline]
    pub fn log_enabled(&self, level: Level, configured: Level) -> bool {
        level >= configured || self.min_log_level().is_some_and(|min| level >= min)
    }

    /// The most verbose log level a firing `set_log_level` directive asks for, if any.
    #[inline]
    pub fn min_log_level(&self) -> Option<Level> {
        match self.shared.log_level.load(Ordering::Acquire) {
            1 => Some(Level::Trace),
            2 => Some(Level::Debug),
            3 => Some(Level::Info),
            4 => Some(Level::Warn),
            5 => Some(Level::Error),
            _ => None,
        }
    }

    /// The highest sampling rate a firing `set_sampling` directive asks for, if any. O(1), one
    /// atomic load.
    #[inline]
    pub fn sampling_rate(&self) -> Option<f64> {
        match self.shared.sampling.load(Ordering::Acquire) {
            u64::MAX => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    /// What the directives did.
    pub fn stats(&self) -> DirectiveStats {
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DirectiveStats {
            events: l(&c.events),
            late_events: l(&c.late_events),
            groups_dropped: l(&c.groups_dropped),
            fired: l(&c.fired),
            resolved: l(&c.resolved),
            acknowledged: l(&c.acknowledged),
            callbacks_run: l(&c.callbacks_run),
            callbacks_missing: l(&c.callbacks_missing),
            callbacks_panicked: l(&c.callbacks_panicked),
            webhooks_queued: l(&c.webhooks_queued),
            webhooks_delivered: l(&c.webhooks_delivered),
            webhooks_failed: l(&c.webhooks_failed),
            webhook_retries: l(&c.webhook_retries),
            webhooks_dropped: l(&c.webhooks_dropped),
            breakers_opened: l(&c.breakers_opened),
            loop_calls_evicted: l(&c.loop_calls_evicted),
            threads_controlled: l(&c.threads_controlled),
            thread_controls_failed: l(&c.thread_controls_failed),
            runs_manual: l(&c.runs_manual),
            approvals_proposed: l(&c.approvals_proposed),
            approvals_approved: l(&c.approvals_approved),
            approvals_rejected: l(&c.approvals_rejected),
            approvals_expired: l(&c.approvals_expired),
            approvals_refused: l(&c.approvals_refused),
            remedies_attempted: l(&c.remedies_attempted),
            remedies_failed: l(&c.remedies_failed),
            remedies_missing: l(&c.remedies_missing),
            remedies_rate_limited: l(&c.remedies_rate_limited),
            remedies_gave_up: l(&c.remedies_gave_up),
            remedy_targets_evicted: l(&c.remedy_targets_evicted),
            incidents_dropped: l(&c.incidents_dropped),
            analysers_panicked: l(&c.analysers_panicked),
            derived_events: l(&c.derived),
        }
    }

    /// Runs the callbacks a change queued, after releasing the engine.
    fn run_deferred(&self, engine: MutexGuard<'_, Engine>) {
        finish(&self.shared, engine);
    }

    /// Registers a host remedy under `name` (replacing one of that name): directives with
    /// `{ action = "fallback", name = "<name>" }` or `{ action = "reset_connection", name =
    /// "<name>" }` call it when they fire, through the runaway guard (and after an approval
    /// when the directive asks for one). It runs on the pipeline thread (or the approver's)
    /// after the engine's lock is released: keep it short. A panic is caught and counted as
    /// a failure.
    ///
    /// ```
    /// use mission_govern::directives::{DirectiveSet, Directives, RemedyOutcome};
    /// let directives = Directives::new(DirectiveSet::new())?;
    /// directives.register_remedy("cheaper-model", |request| {
    ///     // Switch `request.target` (the failing operation) to a fallback model here.
    ///     assert!(!request.name.is_empty());
    ///     RemedyOutcome::Applied
    /// });
    /// # Ok::<(), mission_govern::directives::DirectiveError>(())
    /// ```
    pub fn register_remedy(
        &self,
        name: &str,
        remedy: impl Fn(&RemedyRequest) -> RemedyOutcome + Send + Sync + 'static,
    ) {
        let mut map = self.shared.remedies.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_owned(), Arc::new(remedy));
    }

    /// Reports how a remedy that answered [`RemedyOutcome::Later`] went: `outcome` is
    /// `Ok(())` when it acted, `Err(why)` when it could not. Its run's action takes the
    /// outcome, and the run is recorded once settled. Returns whether the run is still kept
    /// (the latest [`MAX_RUNS`]).
    pub fn report_remedy(
        &self,
        run_id: u64,
        action_index: usize,
        outcome: std::result::Result<(), String>,
    ) -> bool {
        if outcome.is_err() {
            self.shared.counters.remedies_failed.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = outcome.map_err(|why| workflow::bounded(&why));
        let Some(settled) = slot_outcome(Some((run_id, action_index)), outcome) else {
            return false;
        };
        let mut engine = self.engine();
        let kept = engine.runs.iter().any(|r| r.id == run_id);
        engine.settle(vec![settled]);
        kept
    }

    /// Removes a host remedy; returns whether there was one.
    pub fn unregister_remedy(&self, name: &str) -> bool {
        let mut map = self.shared.remedies.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name).is_some()
    }

    /// Runs directive `name` by hand, now, as if it fired: its actions run (its remedies
    /// through the runaway guard, or held for approval when it asks for one), and the run is
    /// kept and recorded like any other. `by` says who; `tenant` is the principal's tenant
    /// (`None`: of every tenant; then the run is the directive's own tenant's, if its filter
    /// names one): a tenant-scoped principal runs it for its own tenant only, and may not run
    /// a directive across tenants. `thread` names the thread its thread actions act on.
    /// Returns the run, as it stands once its callbacks and thread controls ran.
    ///
    /// ```
    /// use mission_govern::directives::{DirectiveSet, Directives, RunOutcome, Trigger};
    /// let set = DirectiveSet::from_toml_str(
    ///     "[[directive]]\nname = \"digest\"\nschedule = \"0 9 * * *\"\n",
    ///     "inline",
    /// )?;
    /// let directives = Directives::new(set)?;
    /// let run = directives.run("digest", "jo", None, None)?;
    /// assert_eq!((run.trigger, run.outcome), (Trigger::Manual, RunOutcome::Ok));
    /// assert_eq!(directives.runs_for(None, None, 10)[0].id, run.id);
    /// # Ok::<(), mission_govern::directives::DirectiveError>(())
    /// ```
    ///
    /// # Errors
    /// [`DirectiveError::NotFound`]; [`DirectiveError::NotAllowed`] for a disabled directive,
    /// or one across tenants asked by a tenant-scoped principal.
    pub fn run(
        &self,
        name: &str,
        by: &str,
        tenant: Option<&str>,
        thread: Option<mission_core::ThreadId>,
    ) -> Result<Run> {
        let mut engine = self.engine();
        let id = engine.run_by_hand(name, by, tenant, thread, &self.shared)?;
        finish(&self.shared, engine);
        self.engine()
            .runs
            .iter()
            .rev()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| DirectiveError::NotFound(name.chars().take(128).collect()))
    }

    /// The latest runs, newest first, at most `limit`: of `directive` when given, and only
    /// `tenant`'s when given (a principal of every tenant passes `None`; runs of a directive
    /// across tenants show to those only).
    pub fn runs_for(
        &self,
        tenant: Option<&str>,
        directive: Option<&str>,
        limit: usize,
    ) -> Vec<Run> {
        self.engine()
            .runs
            .iter()
            .rev()
            .filter(|r| tenant.is_none_or(|t| r.tenant == t))
            .filter(|r| directive.is_none_or(|d| r.directive == d))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Pending and recently decided approvals, newest first: only `tenant`'s when given.
    /// Approvals past their deadline show as expired from the next tick.
    pub fn approvals_for(&self, tenant: Option<&str>) -> Vec<Approval> {
        self.engine()
            .approvals
            .list
            .iter()
            .rev()
            .filter(|a| tenant.is_none_or(|t| a.tenant == t))
            .cloned()
            .collect()
    }

    /// Decides approval `id`: approved, its remedies run now (through the runaway guard);
    /// rejected, they never run. `by` says who, `note` why. Only an approval of `tenant` is
    /// found when given (a tenant-scoped principal decides its own tenant's only). Returns
    /// the approval as decided.
    ///
    /// # Errors
    /// [`DirectiveError::NoApproval`] if no approval has that id (in `tenant`);
    /// [`DirectiveError::Decided`] if it was decided already or is past its deadline.
    pub fn decide(
        &self,
        id: u64,
        verdict: Verdict,
        by: &str,
        note: &str,
        tenant: Option<&str>,
    ) -> Result<Approval> {
        let mut engine = self.engine();
        let decided = engine.decide(id, verdict, by, note, tenant, &self.shared);
        finish(&self.shared, engine);
        decided
    }
}

/// Runs what `engine` deferred after releasing it, then gives the runs the outcomes.
fn finish(shared: &Shared, mut engine: MutexGuard<'_, Engine>) {
    let deferred = std::mem::take(&mut engine.deferred);
    drop(engine);
    let outcomes = run_callbacks(shared, deferred);
    if !outcomes.is_empty() {
        shared.engine.lock().unwrap_or_else(|p| p.into_inner()).settle(outcomes);
    }
}

fn position(engine: &Engine, name: &str) -> Result<usize> {
    engine
        .directives
        .iter()
        .position(|d| d.spec.name == name)
        .ok_or_else(|| DirectiveError::NotFound(name.chars().take(128).collect()))
}

/// Acts on the registry `Directives::with_threads` gave; an error names what failed.
fn on_thread(
    shared: &Shared,
    act: impl FnOnce(
        &crate::threads::ThreadRegistry,
    ) -> std::result::Result<(), crate::threads::ControlError>,
) -> std::result::Result<(), String> {
    let registry = shared.threads.read().unwrap_or_else(|p| p.into_inner()).clone();
    match registry {
        Some(r) => act(&r).map_err(|e| e.to_string()),
        None => Err("no thread registry (Directives::with_threads)".to_owned()),
    }
}

/// Counts a thread action and gives its run's action the outcome.
fn thread_outcome(
    c: &Counters,
    slot: engine::Slot,
    result: std::result::Result<(), String>,
) -> Option<(u64, usize, Outcome, String)> {
    let counter = if result.is_ok() { &c.threads_controlled } else { &c.thread_controls_failed };
    counter.fetch_add(1, Ordering::Relaxed);
    slot_outcome(slot, result)
}

/// The outcome of a run's action (`slot`), if it belongs to a run.
fn slot_outcome(
    slot: engine::Slot,
    result: std::result::Result<(), String>,
) -> Option<(u64, usize, Outcome, String)> {
    let (run, n) = slot?;
    Some(match result {
        Ok(()) => (run, n, Outcome::Done, String::new()),
        Err(why) => (run, n, Outcome::Failed, why),
    })
}

/// Runs deferred actions; returns the outcomes of those that belong to a run.
fn run_callbacks(
    shared: &Shared,
    deferred: Vec<engine::Deferred>,
) -> Vec<(u64, usize, Outcome, String)> {
    let mut outcomes = Vec::new();
    if deferred.is_empty() {
        return outcomes;
    }
    let c = &shared.counters;
    for d in deferred {
        match d {
            engine::Deferred::Thread { tenant, thread_id, command, by, reason, slot } => {
                let result = on_thread(shared, |r| {
                    r.control(&tenant, thread_id, command, &by, &reason).map(drop)
                });
                outcomes.extend(thread_outcome(c, slot, result));
            }
            engine::Deferred::Budget { tenant, thread_id, budget, slot } => {
                let result =
                    on_thread(shared, |r| r.narrow_budget(&tenant, thread_id, &budget).map(drop));
                outcomes.extend(thread_outcome(c, slot, result));
            }
            engine::Deferred::Remedy { request, slot } => {
                let remedy = shared
                    .remedies
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&request.name)
                    .cloned();
                let result = match remedy {
                    None => {
                        c.remedies_missing.fetch_add(1, Ordering::Relaxed);
                        Err(format!("no remedy registered as {:?}", request.name))
                    }
                    Some(remedy) => {
                        match std::panic::catch_unwind(AssertUnwindSafe(|| remedy(&request))) {
                            Ok(RemedyOutcome::Applied) => Ok(()),
                            Ok(RemedyOutcome::Failed(why)) => Err(workflow::bounded(&why)),
                            // Reported later (`report_remedy`): the action stays pending.
                            Ok(RemedyOutcome::Later) => continue,
                            Err(_) => Err("the remedy panicked".to_owned()),
                        }
                    }
                };
                if result.is_err() {
                    c.remedies_failed.fetch_add(1, Ordering::Relaxed);
                }
                outcomes.extend(slot_outcome(slot, result));
            }
            engine::Deferred::Analyse(incident) => {
                let hook = shared.analyser.read().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(hook) = hook
                    && std::panic::catch_unwind(AssertUnwindSafe(|| hook(&incident))).is_err()
                {
                    c.analysers_panicked.fetch_add(1, Ordering::Relaxed);
                }
            }
            engine::Deferred::Callback { callback: name, alert, slot } => {
                let callback =
                    shared.callbacks.read().unwrap_or_else(|p| p.into_inner()).get(&name).cloned();
                let result = match callback {
                    None => {
                        c.callbacks_missing.fetch_add(1, Ordering::Relaxed);
                        Err("not registered".to_owned())
                    }
                    Some(callback) => {
                        c.callbacks_run.fetch_add(1, Ordering::Relaxed);
                        if std::panic::catch_unwind(AssertUnwindSafe(|| callback(&alert))).is_err()
                        {
                            c.callbacks_panicked.fetch_add(1, Ordering::Relaxed);
                            Err("the callback panicked".to_owned())
                        } else {
                            Ok(())
                        }
                    }
                };
                outcomes.extend(slot_outcome(slot, result));
            }
        }
    }
    outcomes
}

/// The [`Sink`] that runs [`Directives`] on the pipeline thread: made by
/// [`Directives::sink`].
pub struct DirectiveSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DirectiveSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectiveSink").finish_non_exhaustive()
    }
}

impl DirectiveSink {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.shared.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, engine: MutexGuard<'_, Engine>) {
        finish(&self.shared, engine);
    }
}

impl Sink for DirectiveSink {
    fn name(&self) -> &str {
        "directives"
    }

    fn start(&mut self, context: &SinkContext) {
        self.shared.sink_started.store(true, Ordering::Release);
        let recorder = context.recorder().downgrade();
        let mut engine = self.engine();
        engine.recorder = Some(recorder.clone());
        if engine.worker.is_none() {
            let (counters, transport) =
                (self.shared.counters.clone(), self.shared.transport.clone());
            engine.worker = webhook::Worker::start(counters, recorder, transport).ok();
        }
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let mut engine = self.engine();
        for event in batch {
            engine.observe(event, &self.shared);
        }
        self.finish(engine);
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> Result<(), SinkError> {
        let mut engine = self.engine();
        engine.tick(now.0, &self.shared);
        self.finish(engine);
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let worker = self.engine().worker.take();
        if let Some(mut worker) = worker {
            worker.stop(Duration::from_secs(2));
        }
        Ok(())
    }
}
