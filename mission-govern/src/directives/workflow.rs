//! Directives as workflows: every firing, scheduled firing or run by hand is a [`Run`] (kept in
//! a ring of [`MAX_RUNS`] and recorded as a `mission.directive.run` event); remedies a
//! directive holds for a person are [`Approval`]s (at most [`MAX_PENDING_APPROVALS`] waiting);
//! the runaway guard remembers each remedy target's attempts (at most [`MAX_REMEDY_TARGETS`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mission_core::{
    AttrValue, Event, EventBody, LazySymbol, Level, LogRecord, Symbol, Text, ThreadId, Timestamp,
};

use super::action::{Alert, KEYS};

/// Runs kept in memory ([`Directives::runs_for`](super::Directives::runs_for)); older ones are
/// in the store, as `mission.directive.run` events.
pub const MAX_RUNS: usize = 1024;
/// Approvals waiting at once; a proposal past it is refused (its run's outcome says so) and
/// counted in [`DirectiveStats::approvals_refused`](super::DirectiveStats::approvals_refused).
pub const MAX_PENDING_APPROVALS: usize = 256;
/// Decided or expired approvals kept in memory besides the pending ones.
pub const MAX_DECIDED_APPROVALS: usize = 256;
/// Remedy targets the runaway guard remembers; past it the one attempted longest ago is
/// forgotten, counted in
/// [`DirectiveStats::remedy_targets_evicted`](super::DirectiveStats::remedy_targets_evicted).
pub const MAX_REMEDY_TARGETS: usize = 1024;
/// Longest note or name kept with a decision, in characters.
pub const MAX_NOTE_CHARS: usize = 1024;

/// Name of the log event recording a run (target `mission.directives`).
pub const RUN_EVENT: &str = "mission.directive.run";
/// Name of the log event recording an approval's change.
pub const APPROVAL_EVENT: &str = "mission.approval";
/// Attribute: the run's id.
pub const ATTR_RUN_ID: &str = "mission.run.id";
/// Attribute: what started the run: `event`, `schedule`, `manual` or `retry`.
pub const ATTR_RUN_TRIGGER: &str = "mission.run.trigger";
/// Attribute: who started it (`directive:<name>` for its own trigger, the person otherwise).
pub const ATTR_RUN_BY: &str = "mission.run.by";
/// Attribute: the run's outcome ([`RunOutcome::as_str`]).
pub const ATTR_RUN_OUTCOME: &str = "mission.run.outcome";
/// Attribute: the run's actions, a JSON array of `{action, target, outcome, detail}`.
pub const ATTR_RUN_ACTIONS: &str = "mission.run.actions";
/// Attribute: the approval's id.
pub const ATTR_APPROVAL_ID: &str = "mission.approval.id";
/// Attribute: `pending`, `approved`, `rejected` or `expired`.
pub const ATTR_APPROVAL_STATE: &str = "mission.approval.state";
/// Attribute: the approval's deadline (ns since the Unix epoch).
pub const ATTR_APPROVAL_DEADLINE: &str = "mission.approval.deadline";
/// Attribute: the proposal's confidence (0 to 1), when known.
pub const ATTR_APPROVAL_CONFIDENCE: &str = "mission.approval.confidence";
/// Attribute: who decided.
pub const ATTR_APPROVAL_DECIDED_BY: &str = "mission.approval.decided_by";

pub(crate) struct WorkflowKeys {
    run: LazySymbol,
    approval: LazySymbol,
    run_id: LazySymbol,
    trigger: LazySymbol,
    by: LazySymbol,
    outcome: LazySymbol,
    actions: LazySymbol,
    approval_id: LazySymbol,
    approval_state: LazySymbol,
    deadline: LazySymbol,
    confidence: LazySymbol,
    decided_by: LazySymbol,
}

static WKEYS: WorkflowKeys = WorkflowKeys {
    run: LazySymbol::new(RUN_EVENT),
    approval: LazySymbol::new(APPROVAL_EVENT),
    run_id: LazySymbol::new(ATTR_RUN_ID),
    trigger: LazySymbol::new(ATTR_RUN_TRIGGER),
    by: LazySymbol::new(ATTR_RUN_BY),
    outcome: LazySymbol::new(ATTR_RUN_OUTCOME),
    actions: LazySymbol::new(ATTR_RUN_ACTIONS),
    approval_id: LazySymbol::new(ATTR_APPROVAL_ID),
    approval_state: LazySymbol::new(ATTR_APPROVAL_STATE),
    deadline: LazySymbol::new(ATTR_APPROVAL_DEADLINE),
    confidence: LazySymbol::new(ATTR_APPROVAL_CONFIDENCE),
    decided_by: LazySymbol::new(ATTR_APPROVAL_DECIDED_BY),
};

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Its condition started to hold.
    Event,
    /// Its schedule was due.
    Schedule,
    /// A person ran it ([`Directives::run`](super::Directives::run)).
    Manual,
    /// The runaway guard tried its remedies again while the incident kept firing.
    Retry,
}

impl Trigger {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Event => "event",
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
        }
    }
}

/// How a run ended (so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Its actions are still being carried out (callbacks and thread controls run right after
    /// the engine's lock is released).
    Running,
    /// Every action did what it should.
    Ok,
    /// An action failed (see its [`ActionOutcome`]).
    Failed,
    /// Its remedies wait for a person ([`Approval`]).
    PendingApproval,
    /// An operator approved its remedies and they ran.
    Approved,
    /// An operator rejected its remedies: they did not run.
    Rejected,
    /// Nobody decided in time: its remedies did not run.
    Expired,
    /// Its remedies were not run: one ran on the same target less than the guard's `every`
    /// ago.
    RateLimited,
    /// Its remedies ran `max_attempts` times without improvement: the guard gave up.
    GaveUp,
}

impl RunOutcome {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::PendingApproval => "pending_approval",
            RunOutcome::Approved => "approved",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Expired => "expired",
            RunOutcome::RateLimited => "rate_limited",
            RunOutcome::GaveUp => "gave_up",
        }
    }
}

/// What one action of a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not carried out yet.
    Pending,
    /// Done (an alert recorded, a breaker opened, a thread cancelled, a callback called, a
    /// host remedy applied).
    Done,
    /// Handed to the webhook worker (its delivery is recorded on its own).
    Queued,
    /// Held for a person: part of the run's [`Approval`].
    Proposed,
    /// Not run: the guard's rate limit.
    RateLimited,
    /// Not run: the guard gave up on this target.
    GaveUp,
    /// Not run because an operator rejected it, or nobody decided in time.
    Skipped,
    /// It failed ([`ActionOutcome::detail`] says why).
    Failed,
}

/// One action of a [`Run`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ActionOutcome {
    /// The action (`alert`, `cancel_thread`, `fallback`, ...).
    pub action: &'static str,
    /// What it acted on (a tool, a thread, a callback's name; empty for an alert).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// What it did.
    pub outcome: Outcome,
    /// Why it failed or was not run, or the guard's attempt (`attempt 2 of 3`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One run of a directive: a firing, a scheduled firing, a run by hand or a retry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Run {
    /// Its id, unique in this process (increasing).
    pub id: u64,
    /// The directive.
    pub directive: String,
    /// What started it.
    pub trigger: Trigger,
    /// Who: `directive:<name>` for its own condition or schedule, the person for a run by
    /// hand, the approver once approved.
    pub by: String,
    /// Whose: the tenant of the incident (empty for a directive across tenants).
    pub tenant: String,
    /// The incident's dedup key.
    pub dedup_key: String,
    /// The incident's summary.
    pub summary: String,
    /// The thread it is about, for a loop condition or a run by hand naming one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<ThreadId>,
    /// When it started (the directive's clock).
    pub started: Timestamp,
    /// How it ended so far.
    pub outcome: RunOutcome,
    /// Each action and what it did.
    pub actions: Vec<ActionOutcome>,
    /// The approval its remedies wait for (or waited for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<u64>,
}

impl Run {
    /// The outcome its actions add up to, once none is pending.
    pub(crate) fn settle(&mut self) {
        if self.actions.iter().any(|a| a.outcome == Outcome::Pending) {
            self.outcome = RunOutcome::Running;
            return;
        }
        let any = |o: Outcome| self.actions.iter().any(|a| a.outcome == o);
        self.outcome = match self.outcome {
            RunOutcome::Rejected | RunOutcome::Expired => self.outcome,
            _ if any(Outcome::Proposed) => RunOutcome::PendingApproval,
            _ if any(Outcome::GaveUp) => RunOutcome::GaveUp,
            _ if any(Outcome::Failed) => RunOutcome::Failed,
            _ if any(Outcome::RateLimited) => RunOutcome::RateLimited,
            _ if self.approval.is_some() => RunOutcome::Approved,
            _ => RunOutcome::Ok,
        };
    }

    /// The `mission.directive.run` event.
    pub(crate) fn to_event(&self) -> Event {
        let (k, w) = (&KEYS, &WKEYS);
        let mut event = Event::new(
            w.run.get(),
            EventBody::Log(LogRecord {
                level: match self.outcome {
                    RunOutcome::Failed | RunOutcome::GaveUp => Level::Error,
                    RunOutcome::Rejected | RunOutcome::Expired | RunOutcome::RateLimited => {
                        Level::Warn
                    }
                    _ => Level::Info,
                },
                target: k.target.get(),
                message: Text::bounded(
                    &format!(
                        "run {} of {} ({}): {}",
                        self.id,
                        self.directive,
                        self.trigger.as_str(),
                        self.outcome.as_str()
                    ),
                    1024,
                ),
            }),
        );
        event.time = self.started;
        event.tenant = Symbol::intern(&self.tenant);
        let a = &mut event.attributes;
        a.set(k.directive.get(), self.directive.as_str());
        a.set(k.dedup_key.get(), self.dedup_key.as_str());
        a.set(w.run_id.get(), AttrValue::Int(self.id as i64));
        a.set(w.trigger.get(), self.trigger.as_str());
        a.set(w.by.get(), self.by.as_str());
        a.set(w.outcome.get(), self.outcome.as_str());
        let actions = serde_json::to_string(&self.actions).unwrap_or_default();
        a.set(w.actions.get(), Text::bounded(&actions, 4096));
        if let Some(thread) = self.thread_id {
            a.set(k.thread_id.get(), thread.to_string().as_str());
        }
        if let Some(id) = self.approval {
            a.set(w.approval_id.get(), AttrValue::Int(id as i64));
        }
        event
    }
}

/// Where an approval is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for a decision.
    Pending,
    /// Approved: its remedies ran.
    Approved,
    /// Rejected: its remedies did not run.
    Rejected,
    /// Nobody decided before the deadline: its remedies did not run.
    Expired,
}

impl ApprovalState {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Expired => "expired",
        }
    }
}

/// An operator's decision on an [`Approval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Run the proposed remedies.
    Approve,
    /// Do not run them.
    Reject,
}

impl std::str::FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" | "approved" => Ok(Verdict::Approve),
            "reject" | "rejected" => Ok(Verdict::Reject),
            other => Err(format!(
                "unknown decision {:?}: expected approve or reject",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Remedies a directive proposed, waiting for (or decided by) a person.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Approval {
    /// Its id, unique in this process.
    pub id: u64,
    /// The run that proposed it.
    pub run_id: u64,
    /// The directive.
    pub directive: String,
    /// Whose incident (empty for a directive across tenants).
    pub tenant: String,
    /// The incident's dedup key.
    pub dedup_key: String,
    /// The thread it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<ThreadId>,
    /// The remedies proposed (`cancel_thread`, `fallback`, ...).
    pub actions: Vec<&'static str>,
    /// Why: the incident's summary.
    pub reason: String,
    /// How sure the directive is (0 to 1): an anomaly's score, else the directive's
    /// `approve.confidence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// When it was proposed (wall clock, as the pipeline's ticks give it).
    pub created: Timestamp,
    /// When it expires.
    pub deadline: Timestamp,
    /// Where it is.
    pub state: ApprovalState,
    /// Who decided (empty while pending or once expired).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub decided_by: String,
    /// The decider's note.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// When it was decided or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided: Option<Timestamp>,
}

impl Approval {
    /// The `mission.approval` event of its current state, at `time`.
    pub(crate) fn to_event(&self, time: Timestamp) -> Event {
        let (k, w) = (&KEYS, &WKEYS);
        let message = match self.state {
            ApprovalState::Pending => format!(
                "{} proposes {} and waits for approval {}: {}",
                self.directive,
                self.actions.join(", "),
                self.id,
                self.reason
            ),
            ApprovalState::Expired => {
                format!("approval {} of {} expired: nothing ran", self.id, self.directive)
            }
            state => format!(
                "approval {} of {} {} by {}{}",
                self.id,
                self.directive,
                state.as_str(),
                self.decided_by,
                if self.note.is_empty() { String::new() } else { format!(" ({})", self.note) }
            ),
        };
        let mut event = Event::new(
            w.approval.get(),
            EventBody::Log(LogRecord {
                level: if self.state == ApprovalState::Pending { Level::Warn } else { Level::Info },
                target: k.target.get(),
                message: Text::bounded(&message, 1024),
            }),
        );
        event.time = time;
        event.tenant = Symbol::intern(&self.tenant);
        let a = &mut event.attributes;
        a.set(k.directive.get(), self.directive.as_str());
        a.set(k.dedup_key.get(), self.dedup_key.as_str());
        a.set(w.approval_id.get(), AttrValue::Int(self.id as i64));
        a.set(w.run_id.get(), AttrValue::Int(self.run_id as i64));
        a.set(w.approval_state.get(), self.state.as_str());
        a.set(w.deadline.get(), AttrValue::Int(self.deadline.0 as i64));
        if let Some(c) = self.confidence {
            a.set(w.confidence.get(), AttrValue::Float(c));
        }
        if !self.decided_by.is_empty() {
            a.set(w.decided_by.get(), self.decided_by.as_str());
        }
        if !self.note.is_empty() {
            a.set(k.note.get(), self.note.as_str());
        }
        if let Some(thread) = self.thread_id {
            a.set(k.thread_id.get(), thread.to_string().as_str());
        }
        event
    }
}

/// What a host remedy is asked to do ([`Directives::register_remedy`](super::Directives::register_remedy)).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RemedyRequest {
    /// `fallback` or `reset_connection`.
    pub action: &'static str,
    /// The remedy's name in the directive.
    pub name: String,
    /// What to act on: the incident's operation (a tool, a model call, a provider).
    pub target: String,
    /// The incident's tenant: act on this tenant only.
    pub tenant: String,
    /// Which attempt this is on this target (1 for the first).
    pub attempt: u32,
    /// The run it belongs to and the action's place in it: what
    /// [`Directives::report_remedy`](super::Directives::report_remedy) names when the remedy
    /// answered [`RemedyOutcome::Later`].
    pub run_id: u64,
    /// See [`run_id`](Self::run_id).
    pub action_index: usize,
    /// The firing that asks for it.
    pub alert: Alert,
}

/// What a host remedy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemedyOutcome {
    /// It acted.
    Applied,
    /// It could not act, and why.
    Failed(String),
    /// It acts elsewhere (a queue, another thread, another runtime) and reports how it went
    /// with [`Directives::report_remedy`](super::Directives::report_remedy); until then the
    /// run's action is pending.
    Later,
}

/// A host remedy: called on the pipeline thread (or the approver's), after the engine's lock
/// is released; keep it short.
pub type Remedy = Arc<dyn Fn(&RemedyRequest) -> RemedyOutcome + Send + Sync>;

/// The ring of recent runs.
#[derive(Default)]
pub(crate) struct Runs {
    ring: VecDeque<Run>,
    next: u64,
}

impl Runs {
    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn push(&mut self, run: Run) {
        if self.ring.len() >= MAX_RUNS {
            self.ring.pop_front();
        }
        self.ring.push_back(run);
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Run> {
        let first = self.ring.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        self.ring.get_mut(i).filter(|r| r.id == id)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Run> {
        self.ring.iter()
    }
}

/// The approvals: pending ones and the latest decided.
#[derive(Default)]
pub(crate) struct Approvals {
    pub list: VecDeque<Approval>,
    next: u64,
}

impl Approvals {
    pub fn pending(&self) -> usize {
        self.list.iter().filter(|a| a.state == ApprovalState::Pending).count()
    }

    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Adds a pending approval, forgetting the oldest decided ones past
    /// [`MAX_DECIDED_APPROVALS`].
    pub fn push(&mut self, approval: Approval) {
        self.list.push_back(approval);
        let mut decided = self.list.len() - self.pending();
        while decided > MAX_DECIDED_APPROVALS {
            match self.list.iter().position(|a| a.state != ApprovalState::Pending) {
                Some(i) => {
                    self.list.remove(i);
                    decided -= 1;
                }
                None => break,
            }
        }
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Approval> {
        self.list.iter_mut().find(|a| a.id == id)
    }
}

/// The runaway guard's memory of one remedy target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempts {
    /// The directive's clock at the last attempt.
    pub last_at: u64,
    /// Attempts since the incident last improved or resolved.
    pub count: u32,
    /// The incident's value at the last attempt.
    pub value: f64,
    /// Whether the guard gave up (until the incident resolves).
    pub gave_up: bool,
}

/// (tenant, directive, action, target).
pub(crate) type GuardKey = (Symbol, String, &'static str, String);

/// The runaway guard: attempts per remedy target, bounded.
#[derive(Default)]
pub(crate) struct Guard {
    pub targets: HashMap<GuardKey, Attempts>,
}

impl Guard {
    /// The entry of `key`, making room (forgetting the target attempted longest ago) when full;
    /// returns whether one was forgotten.
    pub fn entry(&mut self, key: GuardKey) -> (&mut Attempts, bool) {
        let mut evicted = false;
        if !self.targets.contains_key(&key) && self.targets.len() >= MAX_REMEDY_TARGETS {
            if let Some(oldest) =
                self.targets.iter().min_by_key(|(_, a)| a.last_at).map(|(k, _)| k.clone())
            {
                self.targets.remove(&oldest);
            }
            evicted = true;
        }
        let entry = self.targets.entry(key).or_insert(Attempts {
            last_at: 0,
            count: 0,
            value: f64::NAN,
            gave_up: false,
        });
        (entry, evicted)
    }

    /// The incident `dedup_key` of `directive` in `tenant` resolved: its targets start again
    /// (their last attempt still rate-limits the next).
    pub fn resolved(&mut self, tenant: Symbol, directive: &str, targets: &[String]) {
        for (key, a) in self.targets.iter_mut() {
            if key.0 == tenant && key.1 == directive && targets.contains(&key.3) {
                a.count = 0;
                a.gave_up = false;
            }
        }
    }
}

/// Keeps at most [`MAX_NOTE_CHARS`] characters.
pub(crate) fn bounded(text: &str) -> String {
    text.chars().take(MAX_NOTE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64) -> Run {
        Run {
            id,
            directive: "d".into(),
            trigger: Trigger::Event,
            by: String::new(),
            tenant: String::new(),
            dedup_key: "d".into(),
            summary: String::new(),
            thread_id: None,
            started: Timestamp(0),
            outcome: RunOutcome::Running,
            actions: Vec::new(),
            approval: None,
        }
    }

    #[test]
    fn the_run_ring_is_bounded_and_finds_by_id() {
        let mut runs = Runs::default();
        for _ in 0..MAX_RUNS + 10 {
            let id = runs.next_id();
            runs.push(run(id));
        }
        assert_eq!(runs.iter().count(), MAX_RUNS);
        assert!(runs.get_mut(5).is_none(), "evicted");
        assert_eq!(runs.get_mut(MAX_RUNS as u64 + 10).map(|r| r.id), Some(MAX_RUNS as u64 + 10));
        assert!(runs.get_mut(u64::MAX).is_none());
    }

    #[test]
    fn a_run_settles_on_what_its_actions_did() {
        let mut r = run(1);
        let action = |outcome| ActionOutcome {
            action: "alert",
            target: String::new(),
            outcome,
            detail: String::new(),
        };
        r.actions = vec![action(Outcome::Done), action(Outcome::Pending)];
        r.settle();
        assert_eq!(r.outcome, RunOutcome::Running);
        r.actions[1].outcome = Outcome::Failed;
        r.settle();
        assert_eq!(r.outcome, RunOutcome::Failed);
        r.actions[1].outcome = Outcome::Proposed;
        r.settle();
        assert_eq!(r.outcome, RunOutcome::PendingApproval);
        r.actions[1].outcome = Outcome::RateLimited;
        r.settle();
        assert_eq!(r.outcome, RunOutcome::RateLimited);
    }

    #[test]
    fn the_guard_forgets_the_oldest_target_when_full() {
        let mut guard = Guard::default();
        for i in 0..MAX_REMEDY_TARGETS {
            let (a, evicted) = guard.entry((Symbol::EMPTY, "d".into(), "fallback", i.to_string()));
            a.last_at = 10 + i as u64;
            assert!(!evicted);
        }
        let (_, evicted) = guard.entry((Symbol::EMPTY, "d".into(), "fallback", "new".into()));
        assert!(evicted);
        assert_eq!(guard.targets.len(), MAX_REMEDY_TARGETS);
        assert!(!guard.targets.keys().any(|k| k.3 == "0"), "the oldest went");
    }

    #[test]
    fn verdicts_parse_with_a_clear_error() {
        assert_eq!("approve".parse::<Verdict>(), Ok(Verdict::Approve));
        assert_eq!("reject".parse::<Verdict>(), Ok(Verdict::Reject));
        assert!("maybe".parse::<Verdict>().unwrap_err().contains("approve or reject"));
    }
}
