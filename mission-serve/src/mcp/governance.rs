//! The governance tools: `list_permission_decisions` (any role, within its tenant: "what was
//! this agent denied today, and by which rule?"), `get_policy` (operator), `set_policy`
//! (admin for every tenant; the enforcer audits the change) and `erase_subject` (admin; a
//! tenant-scoped token erases in its own tenant only; audited with a digest of the value).

use mission_core::Timestamp;
use mission_store::schema::col;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::directives::{actor_of, audit_seq_for};
use super::tools::{Answer, Page, Paging, row_time, table, text_rows};
use super::{MissionMcp, Role, internal, invalid, require};
use mission_govern::erasure::ErasureReport;
use mission_govern::policy::PolicySet;

/// Input of `list_permission_decisions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionsInput {
    /// Only this actor (exact), e.g. `agent:support-bot`.
    #[serde(default)]
    pub actor: Option<String>,
    /// Only `allow` or only `deny`.
    #[serde(default)]
    pub decision: Option<String>,
    /// Only this action (exact), e.g. `tool.call`.
    #[serde(default)]
    pub action: Option<String>,
    /// Only decisions made by this rule (or `default`).
    #[serde(default)]
    pub rule: Option<String>,
    /// Only the last N minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Rows per page (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The policy in force.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyView {
    /// What a request no rule matches gets: `allow` or `deny`.
    pub default: String,
    /// The rules, in order (deny overrides allow).
    pub rules: Vec<serde_json::Value>,
}

/// Input of `set_policy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPolicyInput {
    /// The whole policy in the policy file format (TOML): `default = "allow"` and
    /// `[[rule]]` tables with name, effect, tenant, actor, action, resource, reason.
    pub toml: String,
}

/// What `set_policy` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyChanged {
    /// Rules in the new policy.
    pub rules: usize,
    /// The rules of the policy it replaced.
    pub replaced_rules: usize,
}

/// Input of `erase_subject`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    /// The attribute that identifies the data subject, e.g. `user.id` or `enduser.id`.
    pub key: String,
    /// Its value for this subject.
    pub value: String,
    /// Only this tenant's data (a tenant-scoped token always erases in its own tenant only).
    #[serde(default)]
    pub tenant: Option<String>,
}

#[tool_router(router = governance_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Permission decisions, newest first.
    #[tool(
        name = "list_permission_decisions",
        description = "Permission decisions the agent's permit() checks recorded (who, what action, on what resource, allow or deny, which rule), newest first; filter by actor, decision (allow/deny), action, rule and since_minutes. Answers questions such as 'what was this agent denied today, and by which rule?'. A token scoped to one tenant sees that tenant's decisions only. Paginated.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn list_permission_decisions(
        &self,
        Parameters(input): Parameters<DecisionsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let paging = Paging::parse(input.limit, 50, input.cursor.as_deref(), input.since_minutes)?;
        if let Some(d) = &input.decision
            && d != "allow"
            && d != "deny"
        {
            return Err(invalid(format!("decision must be allow or deny, not {d:?}")));
        }
        let page = self
            .scoped_page(&context, paging, move |store, from, until| {
                decisions(store, &input, from, until)
            })
            .await?;
        let mut text = table(
            "permission decisions",
            &page,
            &[
                col::TIME,
                col::PERMISSION_ACTOR,
                col::PERMISSION_ACTION,
                col::PERMISSION_RESOURCE,
                col::PERMISSION_DECISION,
                col::PERMISSION_POLICY,
            ],
        );
        let mut by_rule = std::collections::BTreeMap::<String, usize>::new();
        for row in &page.rows {
            if row[col::PERMISSION_DECISION] == "deny" {
                let rule = row[col::PERMISSION_POLICY].as_str().unwrap_or("?").to_owned();
                *by_rule.entry(rule).or_default() += 1;
            }
        }
        if !by_rule.is_empty() {
            let parts: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            text.push_str(&format!("\ndenials on this page by rule: {}", parts.join(", ")));
        }
        Ok(Answer { value: page, text })
    }

    /// The policy in force (operator).
    #[tool(
        name = "get_policy",
        description = "The agent's permission policy: the default effect and the rules (name, effect, tenant, actor, action and resource glob patterns, reason), in order. Needs an operator or admin token; a token scoped to one tenant sees only the rules that can apply to that tenant.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<PolicyView>()
    )]
    pub(crate) async fn get_policy(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<PolicyView>, ErrorData> {
        let access = require(&context.extensions, Role::Operator)?;
        let policy = self.running_policy()?.policy();
        // A tenant-scoped token sees the rules that can apply to its tenant (their tenant
        // pattern matches it, `*` included), never another tenant's.
        let visible: Vec<&mission_govern::policy::PolicyRule> = policy
            .rules()
            .iter()
            .filter(|r| {
                access
                    .tenant
                    .as_deref()
                    .is_none_or(|t| mission_govern::policy::glob_match(&r.tenant, t))
            })
            .collect();
        let rules: Vec<serde_json::Value> =
            visible.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
        let mut text =
            format!("default {}; {} rules", policy.default_effect().as_str(), rules.len());
        for r in visible {
            text.push_str(&format!(
                "\n- {} {}: tenant {} actor {} action {} resource {}",
                r.name,
                r.effect.as_str(),
                r.tenant,
                r.actor,
                r.action,
                r.resource
            ));
        }
        let value = PolicyView { default: policy.default_effect().as_str().into(), rules };
        Ok(Answer { value, text })
    }

    /// Replaces the policy (admin for every tenant).
    #[tool(
        name = "set_policy",
        description = "Replaces the agent's permission policy with one written in the policy file format (TOML: default = \"allow\"|\"deny\", then [[rule]] tables with name, effect, tenant, actor, action, resource, reason). Validated first (errors name the line and field); the change is appended to the audit trail. Needs an admin token for every tenant.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<PolicyChanged>()
    )]
    pub(crate) async fn set_policy(
        &self,
        Parameters(input): Parameters<SetPolicyInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<PolicyChanged>, ErrorData> {
        let access = require(&context.extensions, Role::Admin)?;
        if let Some(tenant) = &access.tenant {
            return Err(invalid(format!(
                "a policy applies across tenants: replacing it needs a token for every tenant, \
                 not one scoped to {tenant}"
            )));
        }
        if input.toml.len() > 64 * 1024 {
            return Err(invalid("a policy over MCP is limited to 64 KiB"));
        }
        let enforcer = self.running_policy()?;
        let policy = PolicySet::from_toml_str(&input.toml).map_err(|e| invalid(e.to_string()))?;
        let rules = policy.rules().len();
        let old = enforcer.replace_policy(policy, &actor_of(&access));
        let value = PolicyChanged { rules, replaced_rules: old.rules().len() };
        let text = format!("policy replaced: {rules} rules (was {})", value.replaced_rules);
        Ok(Answer { value, text })
    }

    /// Erases a data subject's events (admin).
    #[tool(
        name = "erase_subject",
        description = "Erases every stored event whose attribute `key` equals `value` (a data subject's erasure request, e.g. key user.id), after flushing what the agent recorded. The erasure is appended to the audit trail with the SHA-256 of the value, never the value. Needs an admin token; a token scoped to one tenant erases in that tenant only. Data already exported elsewhere (OTLP) is not reached.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ErasureReport>()
    )]
    pub(crate) async fn erase_subject(
        &self,
        Parameters(input): Parameters<EraseInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<ErasureReport>, ErrorData> {
        let access = require(&context.extensions, Role::Admin)?;
        let tenant = match (&access.tenant, input.tenant) {
            (Some(own), Some(asked)) if *own != asked => {
                return Err(invalid(format!(
                    "this token is scoped to tenant {own}: it cannot erase in {asked}"
                )));
            }
            (Some(own), _) => Some(own.clone()),
            (None, asked) => asked,
        };
        let Some(live) = self.source.live.clone() else {
            return Err(invalid(
                "erasure runs inside the agent that writes the store (or with `mission-ctl \
                 erase` while no agent writes it); this server only reads a store",
            ));
        };
        let actor = actor_of(&access);
        let report = self
            .blocking(move |source| {
                let audit = live.audit.as_deref();
                if let Some(recorder) = live.recorder.upgrade() {
                    // The store only: an export backend's trouble does not hold an erasure.
                    recorder
                        .flush_for_reads(std::time::Duration::from_secs(30))
                        .map_err(internal)?;
                }
                let mut report = mission_govern::erasure::erase_subject(
                    source.root.as_deref(),
                    audit,
                    &actor,
                    tenant.as_deref(),
                    &input.key,
                    &input.value,
                )
                .map_err(|e| invalid(e.to_string()))?;
                // A scoped principal is told the record's place among its tenant's records.
                report.audit_seq = report
                    .audit_seq
                    .zip(audit)
                    .and_then(|(seq, audit)| audit_seq_for(audit, &access, seq));
                Ok(report)
            })
            .await?;
        let text = format!(
            "erased {} events with {} = (sha256 {}) in {}{}",
            report.events,
            report.key,
            &report.value_sha256[..12],
            report.tenant.as_deref().unwrap_or("every tenant"),
            report.audit_seq.map(|s| format!("; audit record {s}")).unwrap_or_default()
        );
        Ok(Answer { value: report, text })
    }
}

impl MissionMcp {
    /// The running agent's policy enforcer, or an error saying this server has none.
    fn running_policy(
        &self,
    ) -> Result<std::sync::Arc<mission_govern::policy::PolicyEnforcer>, ErrorData> {
        self.source.live.as_ref().and_then(|l| l.policy.clone()).ok_or_else(|| {
            invalid("the policy is enforced inside an agent; this server reads a store on disk")
        })
    }
}

/// Permission events matching `input` from `from` to `until`, newest first.
fn decisions(
    store: &mission_store::Store,
    input: &DecisionsInput,
    from: Timestamp,
    until: Timestamp,
) -> Result<Vec<serde_json::Value>, ErrorData> {
    let columns = [
        col::TIME,
        col::TENANT,
        col::AGENT,
        col::THREAD_ID,
        col::PERMISSION_ACTOR,
        col::PERMISSION_ACTION,
        col::PERMISSION_RESOURCE,
        col::PERMISSION_DECISION,
        col::PERMISSION_POLICY,
    ];
    let q = store.query().kind("permission").columns(&columns).time_range(from, until);
    let wanted = [
        (col::PERMISSION_ACTOR, &input.actor),
        (col::PERMISSION_DECISION, &input.decision),
        (col::PERMISSION_ACTION, &input.action),
        (col::PERMISSION_POLICY, &input.rule),
    ];
    let mut rows = Vec::new();
    for batch in q.iter().map_err(|e| invalid(e.to_string()))? {
        let batch = batch.map_err(internal)?;
        for obj in text_rows(&batch) {
            let keep = wanted.iter().all(|(name, want)| {
                want.as_deref().is_none_or(|w| obj.get(*name).and_then(|v| v.as_str()) == Some(w))
            });
            if keep {
                rows.push(serde_json::Value::Object(obj));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(row_time(r)));
    Ok(rows)
}
