//! Live threads and what controls them: the thread tree (which thread started which), each
//! thread's state (running, paused, cancelled) and its budget (turns, tokens, cost, wall time,
//! context window), shared between the agent's own code, which asks
//! [`should_stop`](ThreadRegistry::poll) before each step, and whoever controls it — an
//! operator over MCP or the dashboard, a directive's action, the budget itself.
//!
//! Control is shared state that producers read, like the directives' circuit breakers: nothing
//! calls into agent code. What control decides re-enters the event stream as log records of
//! target [`mission_core::thread::TARGET`] (state changes, budget warnings and crossings), in
//! the thread they concern, so the store, the audit trail and every surface see it.
//!
//! The registry is a sharded table like the SDK's in-flight spans: registering and
//! deregistering a thread takes one uncontended lock and allocates nothing once the table has
//! grown to the peak number of live threads; a thread is found by (tenant, id) by scanning, which
//! only control actions do. A child's spending is charged to its own budget and to every
//! ancestor's (at most [`MAX_THREAD_DEPTH`] levels), so a
//! subagent cannot spend its parent's money unseen. Wall time is judged lazily, against the `now`
//! a caller passes, so nothing runs a timer.
//!
//! ```
//! use mission_core::{Symbol, ThreadId};
//! use mission_govern::threads::{Budget, Charge, NewThread, ThreadRegistry, Stop};
//!
//! let registry = ThreadRegistry::new();
//! let tenant = Symbol::intern("acme");
//! let parent = registry
//!     .register(NewThread::new(tenant, Symbol::intern("planner"), ThreadId::generate(), 0)
//!         .with_budget(Budget::new().with_tokens(1_000)?))
//!     .expect("room in the table");
//! let child = registry
//!     .register(NewThread::new(tenant, Symbol::intern("researcher"), ThreadId::generate(), 0)
//!         .with_parent(parent))
//!     .expect("room in the table");
//! // The child spends the parent's budget.
//! registry.charge(child, Charge { turns: 1, tokens: 1_200, ..Charge::default() }, 1);
//! assert!(matches!(registry.poll(child, 2), Some(Stop::Budget { .. })));
//! # Ok::<(), mission_govern::Error>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mission_core::thread::{MAX_THREAD_DEPTH, TARGET, attr, event};
use mission_core::{
    AttrValue, EventBody, Level, LogRecord, SpanId, Symbol, Text, ThreadContext, ThreadId,
    WeakRecorder,
};

use crate::{Error, Result};

mod permissions;
pub use permissions::{
    Escalation, EscalationRule, MAX_PERMISSION_NAME_BYTES, MAX_PERMISSION_PATTERNS, MAX_RULE_BYTES,
    Narrowing, PermissionExplanation, PermissionLevel, PermissionSet,
};

const SHARDS: usize = 16;
/// Most threads tracked at once; beyond it threads run untracked (no control, no budget) and
/// are counted in [`ThreadStats::untracked`].
pub const MAX_LIVE_THREADS: usize = 1 << 18;
/// Longest a state change's `by` and `reason` are kept, in bytes.
pub const MAX_REASON_BYTES: usize = 512;
/// Largest cost budget, in USD.
pub const MAX_COST_USD: f64 = 1e9;
/// Longest wall-time budget: a year, in seconds.
pub const MAX_WALL_TIME_S: f64 = 366.0 * 86_400.0;

/// A live thread's state. Completed and failed threads are no longer live: their root span says
/// how they ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThreadState {
    /// Working.
    Running,
    /// Asked to wait: `should_stop` is true until it is resumed.
    Paused,
    /// Asked to stop for good.
    Cancelled,
}

impl ThreadState {
    /// `running`, `paused` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What a controller asks of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadCommand {
    /// Stop for good.
    Cancel,
    /// Wait until resumed.
    Pause,
    /// Go on after a pause.
    Resume,
}

impl std::str::FromStr for ThreadCommand {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cancel" => Ok(Self::Cancel),
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            other => Err(Error::Config {
                origin: "thread command".into(),
                message: format!(
                    "unknown command {:?}: expected cancel, pause or resume",
                    other.chars().take(64).collect::<String>()
                ),
            }),
        }
    }
}

/// What a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// LLM calls.
    Turns,
    /// Input plus output tokens.
    Tokens,
    /// Priced cost, USD.
    CostUsd,
    /// Time since the thread started, seconds.
    WallTimeS,
    /// The largest input (context window) of any one LLM call, tokens.
    ContextTokens,
}

impl Resource {
    /// Every resource, in the order budgets list them.
    pub const ALL: [Resource; 5] =
        [Self::Turns, Self::Tokens, Self::CostUsd, Self::WallTimeS, Self::ContextTokens];

    /// `turns`, `tokens`, `cost_usd`, `wall_time_s` or `context_tokens`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turns => "turns",
            Self::Tokens => "tokens",
            Self::CostUsd => "cost_usd",
            Self::WallTimeS => "wall_time_s",
            Self::ContextTokens => "context_tokens",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// From the fixed-point unit kept in the table to the resource's own unit.
    fn to_unit(self, raw: u64) -> f64 {
        match self {
            Self::CostUsd => raw as f64 / 1e6,
            Self::WallTimeS => raw as f64 / 1e9,
            _ => raw as f64,
        }
    }
}

/// A thread's budget: each limit is optional; a child thread's spending counts against its own
/// budget and every ancestor's. At `warn_share` of a limit a warning is recorded; at the limit
/// the thread is told to stop (`should_stop`), and with `hard` the SDK's guards refuse new calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most LLM calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    /// Most tokens (input plus output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Most cost, USD (0 to 1e9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Longest run, seconds (up to a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time_s: Option<f64>,
    /// Largest input of any one LLM call, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// The share of a limit at which a warning is recorded (above 0, at most 1; default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_share: Option<f64>,
    /// Whether the SDK's guards (`try_llm_call`, `try_tool_call`) refuse calls once a limit is
    /// reached; without it the thread is only told (`should_stop`).
    #[serde(default)]
    pub hard: bool,
}

/// The default warning share.
pub const DEFAULT_WARN_SHARE: f64 = 0.8;

impl Budget {
    /// A budget with no limits (add them with the `with_*` methods).
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits LLM calls.
    ///
    /// # Errors
    /// [`Error::Config`] for 0.
    pub fn with_turns(mut self, turns: u64) -> Result<Self> {
        self.turns = Some(turns);
        self.validate().map(|()| self)
    }

    /// Limits tokens.
    ///
    /// # Errors
    /// [`Error::Config`] for 0.
    pub fn with_tokens(mut self, tokens: u64) -> Result<Self> {
        self.tokens = Some(tokens);
        self.validate().map(|()| self)
    }

    /// Limits cost, in USD.
    ///
    /// # Errors
    /// [`Error::Config`] for a value that is not finite, negative or above [`MAX_COST_USD`].
    pub fn with_cost_usd(mut self, usd: f64) -> Result<Self> {
        self.cost_usd = Some(usd);
        self.validate().map(|()| self)
    }

    /// Limits wall time.
    ///
    /// # Errors
    /// [`Error::Config`] for zero or more than [`MAX_WALL_TIME_S`].
    pub fn with_wall_time(mut self, wall: std::time::Duration) -> Result<Self> {
        self.wall_time_s = Some(wall.as_secs_f64());
        self.validate().map(|()| self)
    }

    /// Limits the input tokens of any one LLM call.
    ///
    /// # Errors
    /// [`Error::Config`] for 0.
    pub fn with_context_tokens(mut self, tokens: u64) -> Result<Self> {
        self.context_tokens = Some(tokens);
        self.validate().map(|()| self)
    }

    /// Sets the warning share.
    ///
    /// # Errors
    /// [`Error::Config`] outside (0, 1].
    pub fn with_warn_share(mut self, share: f64) -> Result<Self> {
        self.warn_share = Some(share);
        self.validate().map(|()| self)
    }

    /// Makes the limits hard: the SDK's guards refuse calls once one is reached.
    pub fn hard(mut self) -> Self {
        self.hard = true;
        self
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.limits().iter().any(|l| *l != u64::MAX)
    }

    /// The narrower of two budgets, limit by limit (the hard flag if either is hard).
    pub fn narrowed(&self, other: &Budget) -> Budget {
        fn min_u(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        fn min_f(a: Option<f64>, b: Option<f64>) -> Option<f64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Budget {
            turns: min_u(self.turns, other.turns),
            tokens: min_u(self.tokens, other.tokens),
            cost_usd: min_f(self.cost_usd, other.cost_usd),
            wall_time_s: min_f(self.wall_time_s, other.wall_time_s),
            context_tokens: min_u(self.context_tokens, other.context_tokens),
            warn_share: min_f(self.warn_share, other.warn_share),
            hard: self.hard || other.hard,
        }
    }

    /// Checks every value's range.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| {
            Err(Error::Config { origin: "budget".into(), message: format!("{field}: {why}") })
        };
        for (field, value) in [
            ("turns", self.turns),
            ("tokens", self.tokens),
            ("context_tokens", self.context_tokens),
        ] {
            if value == Some(0) {
                return bad(field, "must be at least 1".into());
            }
        }
        if let Some(usd) = self.cost_usd
            && !(usd.is_finite() && (0.0..=MAX_COST_USD).contains(&usd))
        {
            return bad("cost_usd", format!("{usd} is not between 0 and {MAX_COST_USD}"));
        }
        if let Some(s) = self.wall_time_s
            && !(s.is_finite() && s > 0.0 && s <= MAX_WALL_TIME_S)
        {
            return bad("wall_time_s", format!("{s} is not above 0 and at most {MAX_WALL_TIME_S}"));
        }
        if let Some(share) = self.warn_share
            && !(share.is_finite() && share > 0.0 && share <= 1.0)
        {
            return bad("warn_share", format!("{share} is not above 0 and at most 1"));
        }
        Ok(())
    }

    /// The limits in the table's fixed-point units (`u64::MAX`: none).
    fn limits(&self) -> [u64; 5] {
        let none = u64::MAX;
        [
            self.turns.unwrap_or(none),
            self.tokens.unwrap_or(none),
            self.cost_usd.map_or(none, |u| (u * 1e6).round() as u64),
            self.wall_time_s.map_or(none, |s| (s * 1e9).round() as u64),
            self.context_tokens.unwrap_or(none),
        ]
    }

    /// This budget less what was used: what a child in another process may still spend.
    pub fn remaining(&self, used: &Usage) -> Budget {
        Budget {
            turns: self.turns.map(|l| l.saturating_sub(used.turns).max(1)),
            tokens: self.tokens.map(|l| l.saturating_sub(used.tokens).max(1)),
            cost_usd: self.cost_usd.map(|l| (l - used.cost_usd).max(0.0)),
            wall_time_s: self.wall_time_s.map(|l| (l - used.wall_time_s).max(1e-3)),
            context_tokens: self.context_tokens,
            warn_share: self.warn_share,
            hard: self.hard,
        }
    }

    /// The W3C `baggage` member carrying this budget to another process:
    /// `mission.budget=tokens:1000|cost_usd:0.5|turns:10|wall_s:60|context:8000|warn:0.8|hard:1`
    /// (`|` between parts: `;` starts a member's properties in W3C baggage).
    pub fn to_baggage(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.turns {
            parts.push(format!("turns:{v}"));
        }
        if let Some(v) = self.tokens {
            parts.push(format!("tokens:{v}"));
        }
        if let Some(v) = self.cost_usd {
            parts.push(format!("cost_usd:{v}"));
        }
        if let Some(v) = self.wall_time_s {
            parts.push(format!("wall_s:{v}"));
        }
        if let Some(v) = self.context_tokens {
            parts.push(format!("context:{v}"));
        }
        if let Some(v) = self.warn_share {
            parts.push(format!("warn:{v}"));
        }
        if self.hard {
            parts.push("hard:1".into());
        }
        format!("{BAGGAGE_KEY}={}", parts.join("|"))
    }

    /// The budget in a W3C `baggage` header (other members are ignored); `Ok(None)` when it
    /// carries none.
    ///
    /// # Errors
    /// [`Error::Config`] naming the part that is not understood or out of range.
    pub fn from_baggage(header: &str) -> Result<Option<Budget>> {
        let bad = |why: String| Error::Config { origin: "baggage".into(), message: why };
        // `key=value;properties` members, comma-separated; ours is the value.
        let Some(value) = header.split(',').find_map(|member| {
            let (key, rest) = member.split_once('=')?;
            (key.trim() == BAGGAGE_KEY).then(|| rest.split(';').next().unwrap_or("").trim())
        }) else {
            return Ok(None);
        };
        // Propagators may percent-encode the separators.
        let value =
            value.replace("%7C", "|").replace("%7c", "|").replace("%3A", ":").replace("%3a", ":");
        let mut budget = Budget::new();
        for part in value.split('|').filter(|p| !p.trim().is_empty()) {
            let (name, v) =
                part.split_once(':').ok_or_else(|| bad(format!("{part:?} is not name:value")))?;
            let int = || {
                v.trim().parse::<u64>().map_err(|_| bad(format!("{name}: {v:?} is not a count")))
            };
            let float = || {
                v.trim().parse::<f64>().map_err(|_| bad(format!("{name}: {v:?} is not a number")))
            };
            match name.trim() {
                "turns" => budget.turns = Some(int()?),
                "tokens" => budget.tokens = Some(int()?),
                "cost_usd" => budget.cost_usd = Some(float()?),
                "wall_s" => budget.wall_time_s = Some(float()?),
                "context" => budget.context_tokens = Some(int()?),
                "warn" => budget.warn_share = Some(float()?),
                "hard" => budget.hard = v.trim() == "1",
                other => {
                    return Err(bad(format!(
                        "unknown budget part {:?}",
                        other.chars().take(32).collect::<String>()
                    )));
                }
            }
        }
        budget.validate()?;
        Ok(Some(budget))
    }
}

/// The `baggage` key a budget travels under.
pub const BAGGAGE_KEY: &str = "mission.budget";

/// What a thread (and its subtree) has used.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Usage {
    /// LLM calls.
    pub turns: u64,
    /// Tokens.
    pub tokens: u64,
    /// Cost, USD.
    pub cost_usd: f64,
    /// Seconds since the thread started (at the time asked).
    pub wall_time_s: f64,
    /// The largest input of one LLM call.
    pub context_tokens: u64,
}

/// What one LLM call (or a host's own accounting) spends.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Charge {
    /// LLM calls (1 per call).
    pub turns: u64,
    /// Tokens (input plus output).
    pub tokens: u64,
    /// Cost, USD.
    pub cost_usd: f64,
    /// The call's input tokens (its context-window use).
    pub context_tokens: u64,
}

/// Why a thread should stop.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// It, or an ancestor, was cancelled.
    Cancelled {
        /// The cancelled thread (itself or an ancestor).
        thread_id: ThreadId,
        /// Who cancelled it.
        by: String,
        /// Why.
        reason: String,
    },
    /// It, or an ancestor, is paused.
    Paused {
        /// The paused thread.
        thread_id: ThreadId,
    },
    /// A budget (its own or an ancestor's) is used up.
    Budget {
        /// Whose budget.
        owner: ThreadId,
        /// Which limit.
        resource: Resource,
        /// Used, in the resource's unit.
        used: f64,
        /// The limit.
        limit: f64,
        /// Whether the budget's limits are hard.
        hard: bool,
    },
}

/// Where a registered thread sits in the table. A handle outlives its thread harmlessly: the
/// slot's generation tells a stale handle from the slot's next thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadHandle {
    shard: u8,
    slot: u32,
    generation: u32,
}

/// A thread to register.
#[derive(Clone, Debug)]
pub struct NewThread {
    /// Its tenant.
    pub tenant: Symbol,
    /// Its agent.
    pub agent: Symbol,
    /// Its id.
    pub thread_id: ThreadId,
    /// Its root span (where control events are recorded).
    pub root_span: SpanId,
    /// When it started, ns since the epoch.
    pub started_ns: u64,
    /// The parent thread, when this is a child in this process.
    pub parent: Option<ThreadHandle>,
    /// Its own budget.
    pub budget: Option<Budget>,
    /// Its own permissions (what it may do is these and every ancestor's).
    pub permissions: Option<Arc<PermissionSet>>,
}

impl NewThread {
    /// A root thread with no budget.
    pub fn new(tenant: Symbol, agent: Symbol, thread_id: ThreadId, started_ns: u64) -> Self {
        Self {
            tenant,
            agent,
            thread_id,
            root_span: SpanId::NONE,
            started_ns,
            parent: None,
            budget: None,
            permissions: None,
        }
    }

    /// Its root span.
    pub fn with_root_span(mut self, span: SpanId) -> Self {
        self.root_span = span;
        self
    }

    /// A child of `parent`.
    pub fn with_parent(mut self, parent: ThreadHandle) -> Self {
        self.parent = Some(parent);
        self
    }

    /// With a budget of its own.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// With permissions of its own: it may do what they and every ancestor's allow.
    pub fn with_permissions(mut self, permissions: impl Into<Arc<PermissionSet>>) -> Self {
        self.permissions = Some(permissions.into());
        self
    }
}

/// A live thread as surfaces show it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ThreadSnapshot {
    /// The tenant.
    pub tenant: String,
    /// The agent.
    pub agent: String,
    /// The thread id (32 hex digits).
    pub thread_id: String,
    /// The parent's id, for a child thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_thread_id: Option<String>,
    /// Depth in the tree (0 for a root).
    pub depth: u8,
    /// Its state.
    pub state: ThreadState,
    /// Who set the state, when it is not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_by: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Its own budget, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// What it and its children have used.
    pub used: Usage,
    /// When it started, ms since the Unix epoch.
    pub start_unix_ms: u64,
}

/// A live thread in brief, from [`ThreadRegistry::live_threads`]: what a stalled-thread
/// directive needs, with no allocation per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveThread {
    /// The tenant.
    pub tenant: Symbol,
    /// The agent.
    pub agent: Symbol,
    /// The thread id.
    pub thread_id: ThreadId,
    /// When it started (ns since the Unix epoch, as given to [`NewThread::new`]).
    pub started_ns: u64,
    /// Its own state (an ancestor's pause or cancel is not included).
    pub state: ThreadState,
}

/// The registry's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ThreadStats {
    /// Threads live now.
    pub live: u64,
    /// Threads that could not be tracked because the table was full.
    pub untracked: u64,
    /// Children deeper than the deepest tree allowed, registered without their parent link.
    pub too_deep: u64,
    /// Budget warnings recorded.
    pub budget_warnings: u64,
    /// Budgets exceeded.
    pub budget_exceeded: u64,
    /// State changes made (cancel, pause, resume).
    pub state_changes: u64,
}

/// Why a control command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No live thread of that tenant has that id (it ended, never ran here, or is another
    /// tenant's).
    #[error("no running thread {0} here (it ended, or belongs to another tenant)")]
    NotFound(String),
    /// A principal of every tenant named an id that runs in several tenants.
    #[error("thread {0} runs in several tenants: name the tenant")]
    Ambiguous(String),
    /// The command does not apply to the thread's state (resuming a cancelled thread).
    #[error("thread {thread_id} is {state}: cannot {command}")]
    Refused {
        /// The thread.
        thread_id: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        command: &'static str,
    },
}

#[derive(Clone, Debug)]
struct StateChange {
    by: String,
    reason: String,
}

#[derive(Clone, Debug)]
struct Slot {
    generation: u32,
    live: bool,
    tenant: Symbol,
    agent: Symbol,
    thread_id: ThreadId,
    root_span: SpanId,
    parent: Option<ThreadHandle>,
    parent_id: ThreadId,
    depth: u8,
    started_ns: u64,
    state: ThreadState,
    change: Option<Box<StateChange>>,
    budget: Option<Budget>,
    permissions: Option<Arc<PermissionSet>>,
    limits: [u64; 5],
    warn_permille: u64,
    used: [u64; 5],
    warned: u8,
    exceeded: u8,
}

impl Slot {
    fn vacant() -> Self {
        Self {
            generation: 0,
            live: false,
            tenant: Symbol::EMPTY,
            agent: Symbol::EMPTY,
            thread_id: ThreadId(0),
            root_span: SpanId::NONE,
            parent: None,
            parent_id: ThreadId(0),
            depth: 0,
            started_ns: 0,
            state: ThreadState::Running,
            change: None,
            budget: None,
            permissions: None,
            limits: [u64::MAX; 5],
            warn_permille: 800,
            used: [0; 5],
            warned: 0,
            exceeded: 0,
        }
    }

    fn usage(&self, now_ns: u64) -> Usage {
        Usage {
            turns: self.used[0],
            tokens: self.used[1],
            cost_usd: Resource::CostUsd.to_unit(self.used[2]),
            wall_time_s: Resource::WallTimeS.to_unit(now_ns.saturating_sub(self.started_ns)),
            context_tokens: self.used[4],
        }
    }

    fn snapshot(&self, now_ns: u64) -> ThreadSnapshot {
        ThreadSnapshot {
            tenant: self.tenant.as_str().to_owned(),
            agent: self.agent.as_str().to_owned(),
            thread_id: self.thread_id.to_string(),
            parent_thread_id: (!self.parent_id.is_zero()).then(|| self.parent_id.to_string()),
            depth: self.depth,
            state: self.state,
            state_by: self.change.as_ref().map(|c| c.by.clone()),
            state_reason: self.change.as_ref().map(|c| c.reason.clone()),
            budget: self.budget,
            used: self.usage(now_ns),
            start_unix_ms: self.started_ns / 1_000_000,
        }
    }

    /// Budget crossings not reported yet, given what is used now (wall time at `now_ns`).
    fn crossings(&mut self, now_ns: u64, out: &mut Vec<Crossing>) {
        if self.budget.is_none() {
            return;
        }
        let mut used = self.used;
        used[Resource::WallTimeS.index()] = now_ns.saturating_sub(self.started_ns);
        for resource in Resource::ALL {
            let i = resource.index();
            let limit = self.limits[i];
            if limit == u64::MAX {
                continue;
            }
            let bit = 1u8 << i;
            let exceeded = used[i] >= limit;
            let warn =
                u128::from(used[i]) * 1000 >= u128::from(limit) * u128::from(self.warn_permille);
            let kind = if exceeded && self.exceeded & bit == 0 {
                self.exceeded |= bit;
                self.warned |= bit;
                CrossingKind::Exceeded
            } else if warn && !exceeded && self.warned & bit == 0 {
                self.warned |= bit;
                CrossingKind::Warning
            } else {
                continue;
            };
            out.push(Crossing {
                kind,
                tenant: self.tenant,
                agent: self.agent,
                owner: self.thread_id,
                owner_span: self.root_span,
                resource,
                used: resource.to_unit(used[i]),
                limit: resource.to_unit(limit),
            });
        }
    }

    fn stop(&self) -> Option<Stop> {
        match self.state {
            ThreadState::Cancelled => {
                let change = self.change.as_deref();
                return Some(Stop::Cancelled {
                    thread_id: self.thread_id,
                    by: change.map_or_else(|| "code".into(), |c| c.by.clone()),
                    reason: change.map_or_else(String::new, |c| c.reason.clone()),
                });
            }
            ThreadState::Paused => return Some(Stop::Paused { thread_id: self.thread_id }),
            ThreadState::Running => {}
        }
        if self.exceeded == 0 {
            return None;
        }
        let resource = Resource::ALL.into_iter().find(|r| self.exceeded & (1 << r.index()) != 0)?;
        let i = resource.index();
        Some(Stop::Budget {
            owner: self.thread_id,
            resource,
            used: resource.to_unit(self.used[i]),
            limit: resource.to_unit(self.limits[i]),
            hard: self.budget.is_some_and(|b| b.hard),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrossingKind {
    Warning,
    Exceeded,
}

#[derive(Clone, Copy, Debug)]
struct Crossing {
    kind: CrossingKind,
    tenant: Symbol,
    agent: Symbol,
    owner: ThreadId,
    owner_span: SpanId,
    resource: Resource,
    used: f64,
    limit: f64,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// How a thread ended, from [`ThreadRegistry::deregister`]: what its root span is stamped with.
#[derive(Clone, Debug, PartialEq)]
pub struct Final {
    /// Its state when it ended (`Running` if nobody paused or cancelled it).
    pub state: ThreadState,
    /// Who set that state, and why.
    pub change: Option<(String, String)>,
    /// Its budget, if it had one.
    pub budget: Option<Budget>,
    /// What it and its children used.
    pub used: Usage,
}

/// The table of live threads. Share it (`Arc`) between the SDK, the directives and the servers.
pub struct ThreadRegistry {
    shards: [Mutex<Shard>; SHARDS],
    live: AtomicU64,
    untracked: AtomicU64,
    too_deep: AtomicU64,
    warnings: AtomicU64,
    exceeded: AtomicU64,
    state_changes: AtomicU64,
    recorder: Mutex<Option<WeakRecorder>>,
}

impl std::fmt::Debug for ThreadRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadRegistry").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Default for ThreadRegistry {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_REASON_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl ThreadRegistry {
    /// An empty registry. Its control events are recorded once [`attach`](Self::attach)ed to a
    /// recorder.
    pub fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            live: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            too_deep: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            exceeded: AtomicU64::new(0),
            state_changes: AtomicU64::new(0),
            recorder: Mutex::new(None),
        }
    }

    /// Records control events (state changes, budget warnings and crossings) through
    /// `recorder` from now on.
    pub fn attach(&self, recorder: WeakRecorder) {
        *self.recorder.lock().unwrap_or_else(|p| p.into_inner()) = Some(recorder);
    }

    fn with_slot<T>(&self, h: ThreadHandle, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let mut shard = lock(self.shards.get(usize::from(h.shard))?);
        let slot = shard.slots.get_mut(h.slot as usize)?;
        (slot.live && slot.generation == h.generation).then(|| f(slot))
    }

    /// Registers a live thread; `None` when the table is full (the thread runs uncontrolled and
    /// is counted). A child deeper than the deepest tree allowed loses its parent link (counted).
    /// Allocates nothing once the table has grown to the peak number of live threads, unless the
    /// thread has a budget or a parent... which allocate nothing either.
    pub fn register(&self, thread: NewThread) -> Option<ThreadHandle> {
        let (mut parent, mut parent_id, mut depth) = (None, ThreadId(0), 0u8);
        if let Some(p) = thread.parent
            && let Some((id, d)) = self.with_slot(p, |s| (s.thread_id, s.depth))
        {
            if d < MAX_THREAD_DEPTH {
                (parent, parent_id, depth) = (Some(p), id, d + 1);
            } else {
                self.too_deep.fetch_add(1, Ordering::Relaxed);
            }
        }
        let budget = thread.budget.filter(Budget::is_limited);
        let shard_index = mission_core::shard::local(SHARDS as u8);
        let mut shard = lock(&self.shards[usize::from(shard_index)]);
        let index = match shard.free.pop() {
            Some(i) => i,
            None => {
                if self.live.load(Ordering::Relaxed) as usize >= MAX_LIVE_THREADS {
                    self.untracked.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                shard.slots.push(Slot::vacant());
                u32::try_from(shard.slots.len() - 1).ok()?
            }
        };
        let slot = &mut shard.slots[index as usize];
        let generation = slot.generation.wrapping_add(1);
        *slot = Slot {
            generation,
            live: true,
            tenant: thread.tenant,
            agent: thread.agent,
            thread_id: thread.thread_id,
            root_span: thread.root_span,
            parent,
            parent_id,
            depth,
            started_ns: thread.started_ns,
            limits: budget.map_or([u64::MAX; 5], |b| b.limits()),
            warn_permille: budget
                .and_then(|b| b.warn_share)
                .map_or(800, |s| (s * 1000.0).round() as u64),
            budget,
            permissions: thread.permissions,
            ..Slot::vacant()
        };
        self.live.fetch_add(1, Ordering::Relaxed);
        Some(ThreadHandle { shard: shard_index, slot: index, generation })
    }

    /// The thread ended: frees its slot and says how it ended. `None` for a stale handle.
    pub fn deregister(&self, h: ThreadHandle, now_ns: u64) -> Option<Final> {
        let mut shard = lock(self.shards.get(usize::from(h.shard))?);
        let slot = shard.slots.get_mut(h.slot as usize)?;
        if !(slot.live && slot.generation == h.generation) {
            return None;
        }
        slot.live = false;
        slot.permissions = None;
        let done = Final {
            state: slot.state,
            change: slot.change.take().map(|c| (c.by, c.reason)),
            budget: slot.budget,
            used: slot.usage(now_ns),
        };
        shard.free.push(h.slot);
        self.live.fetch_sub(1, Ordering::Relaxed);
        Some(done)
    }

    /// Charges `charge` to the thread and every ancestor; records the budget warnings and
    /// crossings it causes (once per limit per thread).
    pub fn charge(&self, h: ThreadHandle, charge: Charge, now_ns: u64) {
        let cost = (charge.cost_usd.max(0.0) * 1e6).round() as u64;
        let mut crossings = Vec::new();
        let mut at = Some(h);
        for _ in 0..=MAX_THREAD_DEPTH {
            let Some(handle) = at else { break };
            at = self
                .with_slot(handle, |s| {
                    s.used[0] = s.used[0].saturating_add(charge.turns);
                    s.used[1] = s.used[1].saturating_add(charge.tokens);
                    s.used[2] = s.used[2].saturating_add(cost);
                    s.used[4] = s.used[4].max(charge.context_tokens);
                    s.crossings(now_ns, &mut crossings);
                    s.parent
                })
                .flatten();
        }
        self.report(&crossings);
    }

    /// Whether the thread should stop, and why: it or an ancestor is cancelled or paused, or a
    /// budget (its own or an ancestor's) is used up — wall time judged at `now_ns`. `None` for a
    /// thread that may go on, and for a stale handle.
    pub fn poll(&self, h: ThreadHandle, now_ns: u64) -> Option<Stop> {
        let mut crossings = Vec::new();
        let mut stop = None;
        let mut at = Some(h);
        for _ in 0..=MAX_THREAD_DEPTH {
            let Some(handle) = at else { break };
            at = self
                .with_slot(handle, |s| {
                    s.crossings(now_ns, &mut crossings);
                    if stop.is_none() {
                        stop = s.stop();
                    }
                    s.parent
                })
                .flatten();
        }
        self.report(&crossings);
        stop
    }

    /// What the thread and its children have used.
    pub fn usage(&self, h: ThreadHandle, now_ns: u64) -> Option<Usage> {
        self.with_slot(h, |s| s.usage(now_ns))
    }

    /// The thread's state.
    pub fn state(&self, h: ThreadHandle) -> Option<ThreadState> {
        self.with_slot(h, |s| s.state)
    }

    /// The budget a child in another process may still spend: the narrowest remaining of this
    /// thread's and its ancestors' budgets. `None` when none of them has a budget.
    pub fn remaining(&self, h: ThreadHandle, now_ns: u64) -> Option<Budget> {
        let mut out: Option<Budget> = None;
        let mut at = Some(h);
        for _ in 0..=MAX_THREAD_DEPTH {
            let Some(handle) = at else { break };
            at = self
                .with_slot(handle, |s| {
                    if let Some(b) = &s.budget {
                        let left = b.remaining(&s.usage(now_ns));
                        out = Some(out.map_or(left, |o| o.narrowed(&left)));
                    }
                    s.parent
                })
                .flatten();
        }
        out
    }

    /// Applies `command` to the thread behind `h` (the agent's own code); `by` says who.
    ///
    /// # Errors
    /// [`ControlError`] for a thread that ended, or a command its state refuses.
    pub fn control_handle(
        &self,
        h: ThreadHandle,
        command: ThreadCommand,
        by: &str,
        reason: &str,
    ) -> Result<ThreadState, ControlError> {
        let applied = self
            .with_slot(h, |s| apply(s, command, by, reason))
            .ok_or_else(|| ControlError::NotFound("(ended)".into()))??;
        self.announce(&applied);
        Ok(applied.state)
    }

    /// Applies `command` to the live thread `thread_id` of `tenant` (an operator over MCP or the
    /// dashboard, a directive's action); `by` says who (`operator:<name>`,
    /// `directive:<name>`). The same id in another tenant is another thread, never touched.
    ///
    /// # Errors
    /// [`ControlError::NotFound`] when no live thread of `tenant` has that id;
    /// [`ControlError::Refused`] when its state refuses the command.
    pub fn control(
        &self,
        tenant: &str,
        thread_id: ThreadId,
        command: ThreadCommand,
        by: &str,
        reason: &str,
    ) -> Result<ThreadState, ControlError> {
        let applied = self
            .on_live(tenant, thread_id, |slot| apply(slot, command, by, reason))
            .ok_or_else(|| ControlError::NotFound(thread_id.to_string()))??;
        self.announce(&applied);
        Ok(applied.state)
    }

    /// Runs `f` on `tenant`'s live thread `thread_id` under its shard's lock; `None` when there
    /// is none.
    fn on_live<T>(
        &self,
        tenant: &str,
        thread_id: ThreadId,
        f: impl FnOnce(&mut Slot) -> T,
    ) -> Option<T> {
        for shard in &self.shards {
            let mut shard = lock(shard);
            if let Some(slot) = shard
                .slots
                .iter_mut()
                .find(|s| s.live && s.thread_id == thread_id && s.tenant.as_str() == tenant)
            {
                return Some(f(slot));
            }
        }
        None
    }

    /// Narrows the budget of `tenant`'s live thread `thread_id` by `budget` (a directive's
    /// `set_budget`): each limit becomes the smaller of the two, `hard` sticks. What it already
    /// used counts: a limit now below it stops the thread at its next check. Returns the
    /// thread's budget now.
    ///
    /// # Errors
    /// [`ControlError::NotFound`] when no live thread of `tenant` has that id.
    pub fn narrow_budget(
        &self,
        tenant: &str,
        thread_id: ThreadId,
        budget: &Budget,
    ) -> Result<Budget, ControlError> {
        self.on_live(tenant, thread_id, |slot| {
            let narrowed = slot.budget.map_or(*budget, |b| b.narrowed(budget));
            slot.limits = narrowed.limits();
            slot.warn_permille = narrowed.warn_share.map_or(800, |s| (s * 1000.0).round() as u64);
            slot.budget = Some(narrowed);
            narrowed
        })
        .ok_or_else(|| ControlError::NotFound(thread_id.to_string()))
    }

    /// Applies `command` for a principal whose tenant scope is `scope` (`None`: every tenant)
    /// and who may name the thread's `tenant`: a scoped principal acts in its own tenant only
    /// (naming another finds nothing); one of every tenant acts in the tenant it names, or in
    /// the only tenant running that id. Returns the tenant and the new state.
    ///
    /// # Errors
    /// As [`control`](Self::control); [`ControlError::Ambiguous`] when a principal of every
    /// tenant names an id several tenants run without naming the tenant.
    pub fn control_scoped(
        &self,
        scope: Option<&str>,
        tenant: Option<&str>,
        thread_id: ThreadId,
        command: ThreadCommand,
        by: &str,
        reason: &str,
    ) -> Result<(String, ThreadState), ControlError> {
        let tenant = self.resolve_tenant(scope, tenant, thread_id)?;
        let state = self.control(&tenant, thread_id, command, by, reason)?;
        Ok((tenant, state))
    }

    /// The tenant a principal whose scope is `scope` (`None`: every tenant) means when it names
    /// `thread_id` and, perhaps, a `tenant`: its own for a scoped principal (naming another
    /// finds nothing); for one of every tenant, the tenant named, or the only one running the id.
    fn resolve_tenant(
        &self,
        scope: Option<&str>,
        tenant: Option<&str>,
        thread_id: ThreadId,
    ) -> Result<String, ControlError> {
        match (scope, tenant) {
            (Some(mine), Some(named)) if mine != named => {
                Err(ControlError::NotFound(thread_id.to_string()))
            }
            (Some(mine), _) | (None, Some(mine)) => Ok(mine.to_owned()),
            (None, None) => {
                let mut found = self.list_by_id(thread_id);
                match found.len() {
                    0 => Err(ControlError::NotFound(thread_id.to_string())),
                    1 => Ok(found.remove(0)),
                    _ => Err(ControlError::Ambiguous(thread_id.to_string())),
                }
            }
        }
    }

    /// The live thread `thread_id` of `tenant`, if any.
    fn find(&self, tenant: &str, thread_id: ThreadId) -> Option<ThreadHandle> {
        self.shards.iter().enumerate().find_map(|(shard_index, shard)| {
            let shard = lock(shard);
            let (index, slot) =
                shard.slots.iter().enumerate().find(|(_, s)| {
                    s.live && s.thread_id == thread_id && s.tenant.as_str() == tenant
                })?;
            Some(ThreadHandle {
                shard: shard_index as u8,
                slot: index as u32,
                generation: slot.generation,
            })
        })
    }

    /// Whether the thread's lineage allows `action` on `resource`: `None` when every level with
    /// permissions (the thread and its ancestors, at most [`MAX_THREAD_DEPTH`] levels) allows
    /// it, or for a stale handle; else the escalation, naming the nearest level that narrowed
    /// it. Allocates only for an escalation; a thread without permissions in its lineage costs
    /// one lock per level.
    pub fn check_permission(
        &self,
        h: ThreadHandle,
        action: &str,
        resource: &str,
    ) -> Option<Escalation> {
        let mut found = None;
        let mut at = Some(h);
        for _ in 0..=MAX_THREAD_DEPTH {
            let Some(handle) = at else { break };
            at = self
                .with_slot(handle, |s| {
                    found = s
                        .permissions
                        .as_ref()
                        .and_then(|set| set.escalation(s.thread_id, s.depth, action, resource));
                    s.parent
                })
                .flatten();
            if found.is_some() {
                break;
            }
        }
        found
    }

    /// The permission lineage of the live thread `thread_id`, root first, for a principal whose
    /// scope is `scope` and who may name the thread's `tenant` (as
    /// [`control_scoped`](Self::control_scoped)), and, given a `request` (action, resource),
    /// the decision of each level and which one narrowed it.
    ///
    /// # Errors
    /// [`ControlError::NotFound`] when no live thread of the tenant has that id;
    /// [`ControlError::Ambiguous`] as for [`control_scoped`](Self::control_scoped).
    pub fn explain_permission(
        &self,
        scope: Option<&str>,
        tenant: Option<&str>,
        thread_id: ThreadId,
        request: Option<(&str, &str)>,
    ) -> Result<PermissionExplanation, ControlError> {
        let tenant = self.resolve_tenant(scope, tenant, thread_id)?;
        let h = self
            .find(&tenant, thread_id)
            .ok_or_else(|| ControlError::NotFound(thread_id.to_string()))?;
        let mut chain = Vec::new();
        let mut at = Some(h);
        for _ in 0..=MAX_THREAD_DEPTH {
            let Some(handle) = at else { break };
            at = self
                .with_slot(handle, |s| {
                    let set = s.permissions.as_deref();
                    let matched = request.zip(set).and_then(|((a, r), p)| p.matching(a, r));
                    chain.push(PermissionLevel {
                        thread_id: s.thread_id.to_string(),
                        agent: s.agent.as_str().to_owned(),
                        depth: s.depth,
                        permissions: set.cloned(),
                        allows: request.and(set).map(|_| matched.is_some()),
                        matched: matched.map(str::to_owned),
                    });
                    s.parent
                })
                .flatten();
        }
        chain.reverse();
        let escalation = request.and_then(|(a, r)| self.check_permission(h, a, r));
        Ok(PermissionExplanation {
            tenant,
            thread_id: thread_id.to_string(),
            chain,
            action: request.map(|(a, _)| a.to_owned()),
            resource: request.map(|(_, r)| r.to_owned()),
            allowed: request.map(|_| escalation.is_none()),
            escalation: escalation.as_ref().map(|e| e.severity),
            narrowed_by: escalation.map(|e| e.narrowing),
        })
    }

    /// The live thread `thread_id`, of `tenant` (`None`: any tenant, for an admin).
    pub fn snapshot(
        &self,
        tenant: Option<&str>,
        thread_id: ThreadId,
        now_ns: u64,
    ) -> Option<ThreadSnapshot> {
        self.shards.iter().find_map(|shard| {
            lock(shard)
                .slots
                .iter()
                .find(|s| {
                    s.live
                        && s.thread_id == thread_id
                        && tenant.is_none_or(|t| s.tenant.as_str() == t)
                })
                .map(|s| s.snapshot(now_ns))
        })
    }

    /// Live threads of `tenant` (`None`: every tenant), at most `limit`, children of
    /// `parent` only when given.
    pub fn list(
        &self,
        tenant: Option<&str>,
        parent: Option<ThreadId>,
        limit: usize,
        now_ns: u64,
    ) -> Vec<ThreadSnapshot> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for s in lock(shard).slots.iter().filter(|s| {
                s.live
                    && tenant.is_none_or(|t| s.tenant.as_str() == t)
                    && parent.is_none_or(|p| s.parent_id == p)
            }) {
                if out.len() >= limit {
                    return out;
                }
                out.push(s.snapshot(now_ns));
            }
        }
        out
    }

    /// The tenants that have a live thread `thread_id` (for a principal of every tenant naming
    /// an id, to know whether it is ambiguous).
    pub fn list_by_id(&self, thread_id: ThreadId) -> Vec<String> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for s in lock(shard).slots.iter().filter(|s| s.live && s.thread_id == thread_id) {
                out.push(s.tenant.as_str().to_owned());
            }
        }
        out
    }

    /// Every live thread in brief, each shard locked in turn (briefly: one copy per thread).
    /// For periodic scans off the agents' threads, such as a stalled-thread directive's.
    pub fn live_threads(&self) -> Vec<LiveThread> {
        let mut out = Vec::with_capacity(self.live.load(Ordering::Relaxed) as usize);
        for shard in &self.shards {
            out.extend(lock(shard).slots.iter().filter(|s| s.live).map(|s| LiveThread {
                tenant: s.tenant,
                agent: s.agent,
                thread_id: s.thread_id,
                started_ns: s.started_ns,
                state: s.state,
            }));
        }
        out
    }

    /// The registry's counters.
    pub fn stats(&self) -> ThreadStats {
        ThreadStats {
            live: self.live.load(Ordering::Relaxed),
            untracked: self.untracked.load(Ordering::Relaxed),
            too_deep: self.too_deep.load(Ordering::Relaxed),
            budget_warnings: self.warnings.load(Ordering::Relaxed),
            budget_exceeded: self.exceeded.load(Ordering::Relaxed),
            state_changes: self.state_changes.load(Ordering::Relaxed),
        }
    }

    fn recorder(&self) -> Option<mission_core::Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.upgrade()
    }

    fn report(&self, crossings: &[Crossing]) {
        if crossings.is_empty() {
            return;
        }
        let recorder = self.recorder();
        for c in crossings {
            let (name, level, counter) = match c.kind {
                CrossingKind::Warning => (event::BUDGET_WARNING, Level::Warn, &self.warnings),
                CrossingKind::Exceeded => (event::BUDGET_EXCEEDED, Level::Error, &self.exceeded),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let Some(recorder) = &recorder else { continue };
            let verb = if c.kind == CrossingKind::Warning { "nears" } else { "reached" };
            let message = format!(
                "budget {verb} its {} limit: {} of {}",
                c.resource.as_str(),
                c.used,
                c.limit
            );
            let ctx = ThreadContext { tenant: c.tenant, agent: c.agent, thread_id: c.owner };
            let mut e = ctx.event(
                Symbol::intern(name),
                c.owner_span,
                EventBody::Log(LogRecord {
                    level,
                    target: Symbol::intern(TARGET),
                    message: Text::from(message),
                }),
            );
            let share = if c.limit > 0.0 { c.used / c.limit } else { 1.0 };
            e.attributes.set(Symbol::intern(attr::BUDGET_RESOURCE), c.resource.as_str());
            e.attributes.set(Symbol::intern(attr::BUDGET_LIMIT), c.limit);
            e.attributes.set(Symbol::intern(attr::BUDGET_USED), c.used);
            e.attributes.set(Symbol::intern(attr::BUDGET_SHARE), share);
            e.attributes.set(Symbol::intern(attr::BUDGET_OWNER_ID), c.owner.to_string());
            recorder.record(e);
        }
    }

    fn announce(&self, applied: &Applied) {
        self.state_changes.fetch_add(1, Ordering::Relaxed);
        let Some(recorder) = self.recorder() else { return };
        let ctx = ThreadContext {
            tenant: applied.tenant,
            agent: applied.agent,
            thread_id: applied.thread_id,
        };
        let message = format!(
            "thread {} by {}{}",
            applied.state.as_str(),
            applied.by,
            if applied.reason.is_empty() { String::new() } else { format!(": {}", applied.reason) }
        );
        let mut e = ctx.event(
            Symbol::intern(event::STATE),
            applied.root_span,
            EventBody::Log(LogRecord {
                level: if applied.state == ThreadState::Cancelled {
                    Level::Warn
                } else {
                    Level::Info
                },
                target: Symbol::intern(TARGET),
                message: Text::from(message),
            }),
        );
        e.attributes.set(Symbol::intern(attr::STATE), applied.state.as_str());
        e.attributes.set(Symbol::intern(attr::STATE_BY), AttrValue::from(applied.by.as_str()));
        e.attributes
            .set(Symbol::intern(attr::STATE_REASON), AttrValue::from(applied.reason.as_str()));
        recorder.record(e);
    }
}

struct Applied {
    tenant: Symbol,
    agent: Symbol,
    thread_id: ThreadId,
    root_span: SpanId,
    state: ThreadState,
    by: String,
    reason: String,
}

fn apply(
    s: &mut Slot,
    command: ThreadCommand,
    by: &str,
    reason: &str,
) -> Result<Applied, ControlError> {
    let next = match (s.state, command) {
        (ThreadState::Cancelled, ThreadCommand::Pause | ThreadCommand::Resume) => {
            return Err(ControlError::Refused {
                thread_id: s.thread_id.to_string(),
                state: s.state.as_str(),
                command: if command == ThreadCommand::Pause { "pause" } else { "resume" },
            });
        }
        (_, ThreadCommand::Cancel) => ThreadState::Cancelled,
        (_, ThreadCommand::Pause) => ThreadState::Paused,
        (_, ThreadCommand::Resume) => ThreadState::Running,
    };
    let (by, reason) = (cut(by), cut(reason));
    s.state = next;
    s.change = (next != ThreadState::Running)
        .then(|| Box::new(StateChange { by: by.clone(), reason: reason.clone() }));
    Ok(Applied {
        tenant: s.tenant,
        agent: s.agent,
        thread_id: s.thread_id,
        root_span: s.root_span,
        state: next,
        by,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Symbol {
        Symbol::intern(name)
    }

    fn root(registry: &ThreadRegistry, t: &str, budget: Option<Budget>) -> ThreadHandle {
        let mut new = NewThread::new(tenant(t), tenant("agent"), ThreadId::generate(), 0);
        new.budget = budget;
        registry.register(new).expect("room")
    }

    fn child(
        registry: &ThreadRegistry,
        parent: ThreadHandle,
        budget: Option<Budget>,
    ) -> ThreadHandle {
        let mut new = NewThread::new(tenant("acme"), tenant("agent"), ThreadId::generate(), 0)
            .with_parent(parent);
        new.budget = budget;
        registry.register(new).expect("room")
    }

    #[test]
    fn a_stale_handle_cannot_touch_the_slots_next_thread() {
        let registry = ThreadRegistry::new();
        let old = root(&registry, "acme", None);
        registry.deregister(old, 1).expect("live");
        let new = root(&registry, "acme", None);
        assert_eq!((old.shard, old.slot), (new.shard, new.slot), "the slot is reused");
        assert!(registry.control_handle(old, ThreadCommand::Cancel, "code", "").is_err());
        assert_eq!(registry.state(new), Some(ThreadState::Running));
        assert!(registry.deregister(old, 2).is_none());
        assert_eq!(registry.stats().live, 1);
    }

    #[test]
    fn a_childs_spend_counts_against_every_ancestor() {
        let registry = ThreadRegistry::new();
        let grand = root(&registry, "acme", Some(Budget::new().with_tokens(1_000).unwrap()));
        let parent = child(&registry, grand, None);
        let kid = child(&registry, parent, Some(Budget::new().with_tokens(10_000).unwrap()));
        registry.charge(kid, Charge { turns: 1, tokens: 600, ..Charge::default() }, 1);
        registry.charge(parent, Charge { turns: 1, tokens: 300, ..Charge::default() }, 1);
        assert_eq!(registry.usage(grand, 1).unwrap().tokens, 900);
        assert_eq!(registry.usage(parent, 1).unwrap().tokens, 900);
        assert_eq!(registry.usage(kid, 1).unwrap().tokens, 600);
        assert_eq!(registry.poll(kid, 1), None);
        registry.charge(kid, Charge { turns: 1, tokens: 100, ..Charge::default() }, 1);
        match registry.poll(kid, 1) {
            Some(Stop::Budget { resource: Resource::Tokens, used, limit, .. }) => {
                assert_eq!((used, limit), (1_000.0, 1_000.0));
            }
            other => panic!("expected the grandparent's budget to stop the child: {other:?}"),
        }
        let stats = registry.stats();
        assert_eq!((stats.budget_warnings, stats.budget_exceeded), (1, 1), "once each");
    }

    #[test]
    fn wall_time_is_judged_on_the_given_now() {
        let registry = ThreadRegistry::new();
        let wall = Budget::new().with_wall_time(std::time::Duration::from_secs(10)).unwrap();
        let h = registry
            .register(
                NewThread::new(tenant("acme"), tenant("a"), ThreadId::generate(), 1_000_000_000)
                    .with_budget(wall),
            )
            .unwrap();
        assert_eq!(registry.poll(h, 8_000_000_000), None, "7 s: warned, not stopped");
        assert_eq!(registry.stats().budget_warnings, 0, "7 s is below 80 %");
        assert_eq!(registry.poll(h, 10_000_000_000), None, "9 s: warned");
        assert_eq!(registry.stats().budget_warnings, 1);
        assert!(matches!(
            registry.poll(h, 11_000_000_000),
            Some(Stop::Budget { resource: Resource::WallTimeS, .. })
        ));
    }

    #[test]
    fn cancel_reaches_children_and_a_cancelled_thread_cannot_resume() {
        let registry = ThreadRegistry::new();
        let parent = root(&registry, "acme", None);
        let kid = child(&registry, parent, None);
        registry.control_handle(parent, ThreadCommand::Pause, "operator:ann", "look").unwrap();
        assert!(matches!(registry.poll(kid, 0), Some(Stop::Paused { .. })));
        registry.control_handle(parent, ThreadCommand::Resume, "operator:ann", "").unwrap();
        assert_eq!(registry.poll(kid, 0), None);
        registry.control_handle(parent, ThreadCommand::Cancel, "operator:ann", "loop").unwrap();
        match registry.poll(kid, 0) {
            Some(Stop::Cancelled { by, reason, .. }) => {
                assert_eq!((by.as_str(), reason.as_str()), ("operator:ann", "loop"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            registry.control_handle(parent, ThreadCommand::Resume, "x", ""),
            Err(ControlError::Refused { .. })
        ));
    }

    #[test]
    fn control_by_id_never_crosses_tenants() {
        let registry = ThreadRegistry::new();
        let id = ThreadId::generate();
        let mine = registry.register(NewThread::new(tenant("acme"), tenant("a"), id, 0)).unwrap();
        let theirs =
            registry.register(NewThread::new(tenant("globex"), tenant("a"), id, 0)).unwrap();
        registry.control("globex", id, ThreadCommand::Cancel, "operator:x", "").unwrap();
        assert_eq!(registry.state(mine), Some(ThreadState::Running));
        assert_eq!(registry.state(theirs), Some(ThreadState::Cancelled));
        assert!(matches!(
            registry.control("initech", id, ThreadCommand::Cancel, "x", ""),
            Err(ControlError::NotFound(_))
        ));
        assert_eq!(registry.list(Some("acme"), None, 10, 0).len(), 1);
        assert!(registry.snapshot(Some("initech"), id, 0).is_none());
    }

    #[test]
    fn budgets_check_their_ranges_and_travel_in_baggage() {
        assert!(Budget::new().with_tokens(0).is_err());
        assert!(Budget::new().with_cost_usd(f64::NAN).is_err());
        assert!(Budget::new().with_cost_usd(-1.0).is_err());
        assert!(Budget::new().with_warn_share(1.5).is_err());
        assert!(Budget::new().with_wall_time(std::time::Duration::ZERO).is_err());
        let b = Budget::new()
            .with_tokens(500)
            .unwrap()
            .with_cost_usd(0.25)
            .unwrap()
            .with_turns(3)
            .unwrap()
            .hard();
        let header = format!("other=1,{}", b.to_baggage());
        assert_eq!(Budget::from_baggage(&header).unwrap(), Some(b));
        assert_eq!(Budget::from_baggage("other=1").unwrap(), None);
        let err = Budget::from_baggage("mission.budget=tokens:lots").unwrap_err().to_string();
        assert!(err.contains("tokens"), "{err}");
        assert!(Budget::from_baggage("mission.budget=spoons:3").is_err());
    }

    #[test]
    fn a_childs_permissions_are_the_intersection_of_its_lineage() {
        use crate::directives::Severity;
        let registry = ThreadRegistry::new();
        let id = |h: ThreadHandle| registry.with_slot(h, |s| s.thread_id.to_string()).unwrap();
        let new = |parent: Option<ThreadHandle>, set: Option<PermissionSet>| {
            let mut n = NewThread::new(tenant("acme"), tenant("a"), ThreadId::generate(), 0);
            n.parent = parent;
            n.permissions = set.map(Arc::new);
            registry.register(n).expect("room")
        };
        let root = new(None, Some(PermissionSet::new(["tool_call:search_*", "read"]).unwrap()));
        let plain = new(Some(root), None);
        let kid = new(
            Some(plain),
            Some(
                PermissionSet::new(["tool_call:*", "read"])
                    .unwrap()
                    .named("kid-tools")
                    .unwrap()
                    .with_escalation("read:secret*", Severity::Critical)
                    .unwrap(),
            ),
        );
        assert!(registry.check_permission(kid, "tool_call", "search_web").is_none());
        // Wider than the root: the root narrows it.
        let e = registry.check_permission(kid, "tool_call", "refund").expect("narrowed");
        assert_eq!((e.narrowing.thread_id.clone(), e.narrowing.depth), (id(root), 0));
        assert_eq!(e.narrowing.rule, "allow [tool_call:search_*, read]");
        assert_eq!(e.severity, Severity::Warning);
        // Outside its own set: itself, with its own severity.
        let e = registry.check_permission(kid, "write", "x").expect("narrowed");
        assert_eq!((e.narrowing.depth, e.narrowing.rule.as_str()), (2, "kid-tools"));
        // The explanation shows the chain root first, and who narrowed.
        let x = registry
            .explain_permission(Some("acme"), None, kid_id(&registry, kid), Some(("write", "x")))
            .unwrap();
        assert_eq!(x.chain.len(), 3);
        assert_eq!(x.chain[0].thread_id, id(root));
        assert_eq!(
            x.chain.iter().map(|l| l.allows).collect::<Vec<_>>(),
            [Some(false), None, Some(false)]
        );
        assert_eq!((x.allowed, x.narrowed_by.unwrap().depth), (Some(false), 2));
        // Another tenant never sees it.
        assert!(matches!(
            registry.explain_permission(Some("globex"), None, kid_id(&registry, kid), None),
            Err(ControlError::NotFound(_))
        ));
        // A thread without permissions anywhere narrows nothing.
        let free = new(None, None);
        assert!(registry.check_permission(free, "anything", "at all").is_none());
        registry.deregister(kid, 0).unwrap();
        assert!(registry.check_permission(kid, "write", "x").is_none(), "stale handle");
    }

    fn kid_id(registry: &ThreadRegistry, h: ThreadHandle) -> ThreadId {
        registry.with_slot(h, |s| s.thread_id).unwrap()
    }

    #[test]
    fn depth_is_bounded() {
        let registry = ThreadRegistry::new();
        let mut at = root(&registry, "acme", None);
        for _ in 0..MAX_THREAD_DEPTH {
            at = child(&registry, at, None);
        }
        let deepest = child(&registry, at, None);
        assert_eq!(registry.stats().too_deep, 1);
        // Registered, but as a root: its spending stops at itself.
        registry.charge(deepest, Charge { tokens: 5, ..Charge::default() }, 0);
        assert_eq!(registry.usage(at, 0).unwrap().tokens, 0);
    }

    proptest::proptest! {
        /// A random tree of charges: every thread's `used` is the sum of its subtree's charges.
        #[test]
        fn used_is_the_sum_of_the_subtree(parents in proptest::collection::vec(0usize..1000, 1..24),
                                         charges in proptest::collection::vec((0usize..1000, 1u64..500), 0..60)) {
            let registry = ThreadRegistry::new();
            let mut handles = vec![root(&registry, "acme", None)];
            let mut parent_of = vec![None];
            for p in parents {
                let p = p % handles.len();
                handles.push(child(&registry, handles[p], None));
                parent_of.push(Some(p));
            }
            let mut direct = vec![0u64; handles.len()];
            for (who, tokens) in charges {
                let who = who % handles.len();
                registry.charge(handles[who], Charge { tokens, ..Charge::default() }, 0);
                direct[who] += tokens;
            }
            for (i, handle) in handles.iter().enumerate() {
                // The sum over i's subtree: every node whose ancestor chain passes through i.
                let mut sum = 0;
                for (j, d) in direct.iter().enumerate() {
                    let mut at = Some(j);
                    while let Some(k) = at {
                        if k == i { sum += d; break; }
                        at = parent_of[k];
                    }
                }
                proptest::prop_assert_eq!(registry.usage(*handle, 0).unwrap().tokens, sum);
            }
        }
    }
}
