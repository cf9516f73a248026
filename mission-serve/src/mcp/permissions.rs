//! The permission-flow tool, inside a running agent: `explain_permission` (any role, within its
//! tenant) shows a running thread's permission lineage — root first, each level's permission
//! set, whether it allows an action on a resource and which level narrowed it — and the
//! thread's last permission decisions from the store (with the escalations and the ancestors
//! that narrowed them). A server over a store on disk has no running threads and lists no such
//! tool.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::control::parse_id;
use super::tools::Answer;
use super::{MissionMcp, access_of, internal, invalid};
use crate::lineage::{FlowError, PermissionFlow, flow};

/// Input of `explain_permission`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainPermissionInput {
    /// The running thread (32 hex digits), as `live_threads` shows it.
    pub thread_id: String,
    /// The action asked about, e.g. `tool_call` or `tool.call`.
    pub action: String,
    /// The resource asked about, e.g. `refund_payment`.
    pub resource: String,
    /// The thread's tenant, when a token of every tenant names an id two tenants share.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Longest action or resource asked about, in bytes.
const MAX_REQUEST_BYTES: usize = 1024;

#[tool_router(router = permission_router, vis = "pub(crate)")]
impl MissionMcp {
    /// A running thread's permission lineage and the decision for one request.
    #[tool(
        name = "explain_permission",
        description = "Why a running thread may or may not do an action on a resource: its permission lineage from the root thread down (each level's permission set of allow patterns `action:resource`; a child holds only the intersection of its own and every ancestor's), whether each level allows the request, which level narrowed it and the escalation's severity; plus the thread's last permission decisions from the store (allow/deny, rule, the ancestor that narrowed it, escalation). A token scoped to one tenant sees its tenant's threads only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<PermissionFlow>()
    )]
    pub(crate) async fn explain_permission(
        &self,
        Parameters(input): Parameters<ExplainPermissionInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<PermissionFlow>, ErrorData> {
        let scope = access_of(&context.extensions).tenant;
        let registry = self.running_threads()?.clone();
        let id = parse_id(&input.thread_id)?;
        if input.action.len() > MAX_REQUEST_BYTES || input.resource.len() > MAX_REQUEST_BYTES {
            return Err(invalid(format!(
                "action and resource are limited to {MAX_REQUEST_BYTES} bytes"
            )));
        }
        let answer = self
            .blocking(move |source| {
                let store = match &source.root {
                    Some(_) => Some(source.store(scope.as_deref())?),
                    None => None,
                };
                let request = Some((input.action.as_str(), input.resource.as_str()));
                flow(
                    Some(&registry),
                    store.as_ref(),
                    scope.as_deref(),
                    input.tenant.as_deref(),
                    id,
                    request,
                )
                .map_err(|e| match e {
                    FlowError::Ambiguous(_) => invalid(e.to_string()),
                    FlowError::Store(_) => internal(e),
                })
            })
            .await?;
        let text = describe(&answer);
        Ok(Answer { value: answer, text })
    }
}

/// The flow in a few lines.
fn describe(flow: &PermissionFlow) -> String {
    let mut text = String::new();
    match &flow.explanation {
        None => text.push_str(&format!(
            "thread {} is not running here: no lineage to show\n",
            flow.thread_id
        )),
        Some(x) => {
            for level in &x.chain {
                let set = level.permissions.as_ref().map_or_else(
                    || "no permissions of its own".to_owned(),
                    |p| format!("allows [{}]", p.allow().join(", ")),
                );
                let verdict = match level.allows {
                    Some(true) => " → allows",
                    Some(false) => " → does not allow",
                    None => "",
                };
                text.push_str(&format!(
                    "{}depth {} {} ({}): {set}{verdict}\n",
                    "  ".repeat(usize::from(level.depth)),
                    level.depth,
                    level.thread_id,
                    level.agent
                ));
            }
            match (&x.narrowed_by, x.escalation) {
                (Some(n), Some(severity)) => text.push_str(&format!(
                    "denied: an escalation ({}), narrowed by thread {} at depth {} ({})\n",
                    severity.as_str(),
                    n.thread_id,
                    n.depth,
                    n.rule
                )),
                _ => text.push_str("allowed by the lineage (the policy decides too)\n"),
            }
        }
    }
    text.push_str(&format!("{} recent decision(s)\n", flow.recent.len()));
    for d in &flow.recent {
        text.push_str(&format!(
            "{} {} {} {}: {} by {}{}\n",
            d.time_unix_ms,
            d.actor,
            d.action,
            d.resource,
            d.decision,
            d.rule,
            d.escalation.as_deref().map(|s| format!(" (escalation: {s})")).unwrap_or_default()
        ));
    }
    text
}
