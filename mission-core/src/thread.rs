//! What control events say about threads: the attribute keys and event names of thread trees,
//! thread states and budgets, which the SDK writes and the MCP tools, the dashboard,
//! `mission-ctl` and any reader of the store rely on.
//!
//! A child thread (a subagent) is a thread of its own — its own id — whose root span and whose
//! `mission.thread.start` log name its parent with [`attr::PARENT_ID`] and
//! [`attr::PARENT_SPAN_ID`]. State changes and budget crossings are log records of target
//! [`TARGET`] in the thread they concern. A plain thread (no parent, no budget, never paused or
//! cancelled) records none of them.

/// The log target of control events.
pub const TARGET: &str = "mission.control";

/// Event names (the `name` column) of control log records.
pub mod event {
    /// A child thread started (recorded when it starts, so the tree shows while it runs).
    pub const START: &str = "mission.thread.start";
    /// A thread's state changed (paused, resumed, cancelled).
    pub const STATE: &str = "mission.thread.state";
    /// A budget passed its warning share.
    pub const BUDGET_WARNING: &str = "mission.budget.warning";
    /// A budget was used up: the thread is told to stop.
    pub const BUDGET_EXCEEDED: &str = "mission.budget.exceeded";
}

/// Attribute keys of control events and of the root spans of child threads.
pub mod attr {
    /// The parent thread's id (32 hex digits).
    pub const PARENT_ID: &str = "mission.thread.parent_id";
    /// The parent's span the child was started from (16 hex digits).
    pub const PARENT_SPAN_ID: &str = "mission.thread.parent_span_id";
    /// Depth in the tree: 1 for a child of a root thread.
    pub const DEPTH: &str = "mission.thread.depth";
    /// The thread's state: `running`, `paused`, `cancelled` (on state events and, when not
    /// running, on the root span).
    pub const STATE: &str = "mission.thread.state";
    /// Who set the state: `code`, `operator:<who>` or `directive:<name>`.
    pub const STATE_BY: &str = "mission.thread.state.by";
    /// Why the state was set.
    pub const STATE_REASON: &str = "mission.thread.state.reason";
    /// The resource a budget event is about: `turns`, `tokens`, `cost_usd`, `wall_time_s` or
    /// `context_tokens`.
    pub const BUDGET_RESOURCE: &str = "mission.budget.resource";
    /// The budget's limit, in the resource's unit.
    pub const BUDGET_LIMIT: &str = "mission.budget.limit";
    /// What was used when the event was recorded.
    pub const BUDGET_USED: &str = "mission.budget.used";
    /// `used / limit`.
    pub const BUDGET_SHARE: &str = "mission.budget.share";
    /// The thread whose budget it is (this thread or an ancestor; 32 hex digits).
    pub const BUDGET_OWNER_ID: &str = "mission.budget.owner_id";
    /// On the root span of a thread with a budget or a parent: LLM calls it and its children
    /// made.
    pub const USED_TURNS: &str = "mission.budget.used.turns";
    /// … tokens they used.
    pub const USED_TOKENS: &str = "mission.budget.used.tokens";
    /// … what they cost, USD.
    pub const USED_COST_USD: &str = "mission.budget.used.cost_usd";
    /// On a permission decision a thread's lineage narrowed: the thread (itself or an
    /// ancestor; 32 hex digits) whose permissions do not include the request.
    pub const PERMISSION_NARROWED_BY: &str = "mission.permission.narrowed_by";
    /// … that thread's depth in the tree (0 for a root).
    pub const PERMISSION_ANCESTOR_DEPTH: &str = "mission.permission.ancestor_depth";
    /// … its permission set, by name or by its allow patterns.
    pub const PERMISSION_LINEAGE_RULE: &str = "mission.permission.lineage_rule";
    /// … the escalation's severity: `info`, `warning`, `error` or `critical`.
    pub const PERMISSION_ESCALATION: &str = "mission.permission.escalation";
}

/// Deepest a thread tree may go; a child deeper than this is refused a parent link.
pub const MAX_THREAD_DEPTH: u8 = 16;
