//! [`Live`]: what the MCP server and the dashboard read from an agent they run inside.

use std::sync::Arc;

use mission_core::{LiveHub, Symbol, WeakRecorder};

/// The agent's health report as JSON for a principal of one tenant (`Some`) or of every tenant
/// (`None`); see [`Live::health`].
pub type HealthFn = Arc<dyn Fn(Option<&str>) -> serde_json::Value + Send + Sync>;

/// What the servers need from a running agent (`mission-sdk` builds it in
/// `MissionControl::mcp_server` and `MissionControl::serve_dashboard`).
#[derive(Clone)]
pub struct Live {
    /// Where MCP calls are recorded, and what is flushed before reading the store.
    pub recorder: WeakRecorder,
    /// Live events, for change notifications.
    pub hub: LiveHub,
    /// The tenant MCP spans are recorded under.
    pub tenant: Symbol,
    /// The agent's health report as JSON, for a principal of one tenant (`Some`: only what
    /// the SDK's `TenantHealth` keeps) or of every tenant (`None`: all of it).
    pub health: HealthFn,
    /// The agent's running directives (the directive tools change them).
    pub directives: Option<mission_govern::directives::Directives>,
    /// The agent's audit trail, where directive changes made over MCP are appended.
    pub audit: Option<Arc<mission_govern::audit::AuditLog>>,
    /// The agent's policy enforcer (`get_policy`, `set_policy`).
    pub policy: Option<Arc<mission_govern::policy::PolicyEnforcer>>,
    /// The agent's live threads (`live_threads`, `control_thread`, the live part of
    /// `get_thread`).
    pub threads: Option<Arc<mission_govern::threads::ThreadRegistry>>,
    /// The host's registered artefacts and relations (the relationship graph's own nodes).
    pub artefacts: Option<Arc<mission_core::artefacts::Artefacts>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("tenant", &self.tenant.as_str()).finish_non_exhaustive()
    }
}
