//! The permission-flow view of a thread, shared by the MCP tool `explain_permission` and the
//! dashboard's `GET /api/threads/{id}/permissions`: the thread's permission lineage from the
//! live registry (root first, each level's set and whether it allows the request, and which
//! level narrowed it) and its last permission decisions from the store, within the
//! principal's tenant.

use mission_core::ThreadId;
use mission_govern::threads::{ControlError, PermissionExplanation, ThreadRegistry};
use mission_store::{EventRow, Store};

/// Most recent decisions a view lists.
pub const MAX_RECENT_DECISIONS: usize = 20;

/// A thread's permission flow.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct PermissionFlow {
    /// The thread (32 hex digits).
    pub thread_id: String,
    /// Whether it runs in this agent now (its lineage is known only then).
    pub running: bool,
    /// Its lineage, root first, and the decision for the request asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<PermissionExplanation>,
    /// Its last permission decisions from the store, newest first (at most
    /// [`MAX_RECENT_DECISIONS`]).
    pub recent: Vec<RecentDecision>,
}

/// A recorded permission decision, with its lineage attributes.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct RecentDecision {
    /// When, ms since the Unix epoch.
    pub time_unix_ms: i64,
    /// Who asked.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub resource: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The deciding rule.
    pub rule: String,
    /// The thread (itself or an ancestor) that narrowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrowed_by: Option<String>,
    /// That thread's depth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ancestor_depth: Option<String>,
    /// Its permission set, by name or patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage_rule: Option<String>,
    /// The escalation's severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

impl RecentDecision {
    fn of(row: &EventRow) -> Self {
        use mission_core::thread::attr;
        let get = |key: &str| row.attribute(key).map(str::to_owned);
        Self {
            time_unix_ms: row.time_ns / 1_000_000,
            actor: row.actor.clone().unwrap_or_default(),
            action: row.action.clone().unwrap_or_else(|| row.name.clone()),
            resource: row.resource.clone().unwrap_or_default(),
            decision: row.decision.clone().unwrap_or_default(),
            rule: row.policy.clone().unwrap_or_default(),
            narrowed_by: get(attr::PERMISSION_NARROWED_BY),
            ancestor_depth: get(attr::PERMISSION_ANCESTOR_DEPTH),
            lineage_rule: get(attr::PERMISSION_LINEAGE_RULE),
            escalation: get(attr::PERMISSION_ESCALATION),
        }
    }
}

/// Why a flow could not be shown.
#[derive(Debug)]
pub(crate) enum FlowError {
    /// A principal of every tenant named an id several tenants run, without a tenant.
    Ambiguous(String),
    /// The store could not be read.
    Store(mission_store::Error),
}

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ambiguous(id) => {
                write!(f, "thread {id} runs in several tenants: name the tenant")
            }
            Self::Store(e) => write!(f, "reading the store: {e}"),
        }
    }
}

/// The live part of a flow: the lineage of `thread_id` for a principal scoped to `scope` who
/// named `tenant`, with the decision for `request`; `None` when it does not run here (or runs
/// in another tenant only).
pub(crate) fn lineage(
    registry: Option<&ThreadRegistry>,
    scope: Option<&str>,
    tenant: Option<&str>,
    thread_id: ThreadId,
    request: Option<(&str, &str)>,
) -> Result<Option<PermissionExplanation>, FlowError> {
    let Some(registry) = registry else { return Ok(None) };
    match registry.explain_permission(scope, tenant, thread_id, request) {
        Ok(x) => Ok(Some(x)),
        Err(ControlError::Ambiguous(id)) => Err(FlowError::Ambiguous(id)),
        Err(_) => Ok(None),
    }
}

/// The last permission decisions of `thread_id` in `store` (opened in the principal's scope),
/// of `tenant` only when given; newest first.
pub(crate) fn recent_decisions(
    store: &Store,
    thread_id: ThreadId,
    tenant: Option<&str>,
) -> Result<Vec<RecentDecision>, FlowError> {
    let id = thread_id.to_string();
    let batches =
        store.query().kind("permission").thread(&id).batches().map_err(FlowError::Store)?;
    let mut out = Vec::new();
    for batch in &batches {
        let rows = EventRow::from_batch(batch).map_err(FlowError::Store)?;
        out.extend(
            rows.iter().filter(|r| tenant.is_none_or(|t| r.tenant == t)).map(RecentDecision::of),
        );
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.time_unix_ms));
    out.truncate(MAX_RECENT_DECISIONS);
    Ok(out)
}

/// The whole flow: the lineage (see [`lineage`]) and, from `store` when there is one, the
/// recent decisions of the thread's tenant (the one the lineage found, else the one named).
pub(crate) fn flow(
    registry: Option<&ThreadRegistry>,
    store: Option<&Store>,
    scope: Option<&str>,
    tenant: Option<&str>,
    thread_id: ThreadId,
    request: Option<(&str, &str)>,
) -> Result<PermissionFlow, FlowError> {
    let explanation = lineage(registry, scope, tenant, thread_id, request)?;
    let of = explanation.as_ref().map(|x| x.tenant.as_str()).or(tenant);
    let recent = match store {
        Some(store) => recent_decisions(store, thread_id, of)?,
        None => Vec::new(),
    };
    Ok(PermissionFlow {
        thread_id: thread_id.to_string(),
        running: explanation.is_some(),
        explanation,
        recent,
    })
}
