//! The directive tools, inside a running agent: `list_directives` (any role; a tenant-scoped
//! token sees its tenant's firing incidents only), `acknowledge_alert` (operator; a
//! tenant-scoped token for its tenant's incidents only), and, for tokens that see every
//! tenant, `set_directive_enabled` (operator) and `add_directive` / `remove_directive`
//! (admin). Every change and acknowledgement is appended to the audit trail when the agent
//! has a store. A server over a store on disk has no running directives and says so.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tools::Answer;
use super::{Access, MissionMcp, Role, internal, invalid, require};
use mission_govern::directives::{DirectiveSet, DirectiveStatus, Directives};

/// Input of `set_directive_enabled`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnabledInput {
    /// The directive's name.
    pub name: String,
    /// Whether it should run.
    pub enabled: bool,
}

/// Input of `add_directive`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDirectiveInput {
    /// One or more directives in the directive file format (TOML), e.g.
    /// `[[directive]]\nname = "slow-llm"\nwhen = "p95(duration) > 4s over 5m"\nwhere = { kind = "llm_call" }`.
    pub toml: String,
}

/// Input of `acknowledge_alert`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeInput {
    /// The firing incident's dedup key, as `list_directives` shows it (`tool-failing:operation=search_web`),
    /// or a directive's name for every incident of it firing now.
    pub incident: String,
    /// Why, or what is being done about it (kept with the acknowledgement and in the audit
    /// trail; up to 1,024 characters).
    #[serde(default)]
    pub note: Option<String>,
    /// Was it a real problem? `true_positive` or `false_positive`: kept with the incident, and
    /// for an anomaly condition counted for the detector that fired it (`model_stats`).
    #[serde(default)]
    pub verdict: Option<String>,
}

/// What `acknowledge_alert` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Acknowledged {
    /// The dedup keys of the incidents acknowledged now (an incident acknowledged before is
    /// not repeated).
    pub dedup_keys: Vec<String>,
    /// Who acknowledged them, as recorded.
    pub by: String,
    /// The audit record's sequence number, when the agent keeps an audit trail: its place in
    /// the whole trail for a principal of every tenant, its place among its tenant's records
    /// for a token scoped to one tenant (so that it tells nothing of other tenants' activity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
}

/// Input of `remove_directive`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveDirectiveInput {
    /// The directive's name.
    pub name: String,
}

/// The directives and their state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DirectiveList {
    /// Every directive: name, description, condition, enabled, groups tracked, incidents
    /// firing now.
    pub directives: Vec<serde_json::Value>,
}

/// What a change did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Changed {
    /// The directives changed.
    pub names: Vec<String>,
    /// What happened to them: `enabled`, `disabled`, `added`, `removed`.
    pub change: String,
    /// The audit record's sequence number, when the agent keeps an audit trail: its place in
    /// the whole trail for a principal of every tenant, its place among its tenant's records
    /// for a token scoped to one tenant (so that it tells nothing of other tenants' activity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
}

impl MissionMcp {
    /// The running directives, or an error saying this server has none.
    pub(super) fn running_directives(&self) -> Result<Directives, ErrorData> {
        self.source.live.as_ref().and_then(|l| l.directives.clone()).ok_or_else(|| {
            invalid("directives run inside an agent; this server reads a store on disk")
        })
    }

    /// Refuses tokens below `role` or scoped to one tenant (directives span tenants).
    fn may_change(
        &self,
        context: &RequestContext<RoleServer>,
        role: Role,
    ) -> Result<Access, ErrorData> {
        let access = require(&context.extensions, role)?;
        if let Some(tenant) = &access.tenant {
            return Err(invalid(format!(
                "directives apply across tenants: changing them needs a token for every tenant, \
                 not one scoped to {tenant}"
            )));
        }
        Ok(access)
    }

    /// Appends a directive change to the audit trail, if the agent keeps one.
    fn audit_change(&self, access: &Access, detail: serde_json::Value) -> Option<u64> {
        let audit = self.source.live.as_ref()?.audit.as_ref()?;
        let tenant = access.tenant.as_deref().unwrap_or("*");
        audit
            .append(
                mission_govern::audit::kind::DIRECTIVE_CHANGE,
                &actor_of(access),
                tenant,
                detail,
            )
            .ok()
            .and_then(|r| audit_seq_for(audit, access, r.seq))
    }
}

/// The sequence number of audit record `seq` as `access` is told it: the global one for a
/// principal of every tenant, the record's place among its tenant's records for a token scoped
/// to one tenant (the global number would count other tenants' records); `None` if the log
/// cannot be read.
pub(super) fn audit_seq_for(
    audit: &mission_govern::audit::AuditLog,
    access: &Access,
    seq: u64,
) -> Option<u64> {
    match &access.tenant {
        None => Some(seq),
        Some(tenant) => audit.tenant_seq(tenant, seq).ok(),
    }
}

/// Who a request is, as recorded: `mcp:<role>`, or `mcp:<role>@<tenant>` for a scoped token.
pub(super) fn actor_of(access: &Access) -> String {
    match &access.tenant {
        Some(t) => format!("mcp:{}@{t}", access.role.as_str()),
        None => format!("mcp:{}", access.role.as_str()),
    }
}

/// The statuses as JSON rows; a tenant-scoped token sees its tenant's firing incidents only.
fn status_rows(mut list: Vec<DirectiveStatus>, tenant: Option<&str>) -> Vec<serde_json::Value> {
    if let Some(t) = tenant {
        for d in &mut list {
            d.firing.retain(|f| f.tenant == t);
        }
    }
    list.into_iter().map(|d| serde_json::to_value(d).unwrap_or_default()).collect()
}

#[tool_router(router = directive_router, vis = "pub(crate)")]
impl MissionMcp {
    /// The running directives and their state.
    #[tool(
        name = "list_directives",
        description = "The agent's directives (automation written as data: when a condition over the live stream holds, then actions): name, description, condition, enabled, groups tracked and the incidents firing now with their dedup keys, tenant and acknowledgement (a token scoped to one tenant sees that tenant's incidents only).",
        output_schema = rmcp::handler::server::tool::schema_for_output::<DirectiveList>()
    )]
    pub(crate) async fn list_directives(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<DirectiveList>, ErrorData> {
        let access = super::access_of(&context.extensions);
        let directives = self.running_directives()?;
        let rows = status_rows(directives.list(), access.tenant.as_deref());
        let mut text = format!("{} directives", rows.len());
        for d in &rows {
            let firing = d["firing"].as_array().map_or(&[][..], Vec::as_slice);
            text.push_str(&format!(
                "\n- {} ({}): when {}; {} firing",
                d["name"].as_str().unwrap_or_default(),
                if d["enabled"] == true { "on" } else { "off" },
                d["condition"].as_str().unwrap_or_default(),
                firing.len()
            ));
            for f in firing {
                let ack = match f["acknowledged"]["by"].as_str() {
                    Some(by) => format!(", acknowledged by {by}"),
                    None => String::new(),
                };
                text.push_str(&format!(
                    "\n  - {} (tenant {}){ack}",
                    f["dedup_key"].as_str().unwrap_or_default(),
                    f["tenant"].as_str().unwrap_or_default()
                ));
            }
        }
        Ok(Answer { value: DirectiveList { directives: rows }, text })
    }

    /// Acknowledges a firing incident (operator).
    #[tool(
        name = "acknowledge_alert",
        description = "Acknowledges a firing incident of a directive: give its dedup key from list_directives (or a directive name for all its firing incidents) and an optional note. It keeps firing and resolves as usual; the acknowledgement is recorded as an alert event (no webhook is sent again) and in the audit trail. Needs an operator or admin token; a token scoped to one tenant acknowledges that tenant's incidents only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Acknowledged>()
    )]
    pub(crate) async fn acknowledge_alert(
        &self,
        Parameters(input): Parameters<AcknowledgeInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Acknowledged>, ErrorData> {
        let access = require(&context.extensions, Role::Operator)?;
        let directives = self.running_directives()?;
        let note = input.note.unwrap_or_default();
        if note.len() > 4096 {
            return Err(invalid("note is limited to 4 KiB"));
        }
        let verdict = input
            .verdict
            .as_deref()
            .map(str::parse::<mission_govern::directives::AckVerdict>)
            .transpose()
            .map_err(invalid)?;
        let by = actor_of(&access);
        let alerts = directives
            .acknowledge_with(&input.incident, &by, &note, access.tenant.as_deref(), verdict)
            .map_err(|e| invalid(e.to_string()))?;
        let dedup_keys: Vec<String> = alerts.iter().map(|a| a.dedup_key.clone()).collect();
        let audit_seq = if dedup_keys.is_empty() {
            None
        } else {
            self.audit_change(
                &access,
                serde_json::json!({
                    "change": "acknowledged",
                    "via": "mcp",
                    "incidents": dedup_keys,
                    "directives": alerts.iter().map(|a| a.directive.as_str()).collect::<Vec<_>>(),
                    "note": note,
                }),
            )
        };
        let text = if dedup_keys.is_empty() {
            format!("{} was acknowledged already", input.incident)
        } else {
            format!("acknowledged {} as {by}", dedup_keys.join(", "))
        };
        Ok(Answer { value: Acknowledged { dedup_keys, by, audit_seq }, text })
    }

    /// Turns a directive on or off (operator).
    #[tool(
        name = "set_directive_enabled",
        description = "Turns a directive on or off (disabling resolves its firing incidents). Needs an operator or admin token for every tenant.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Changed>()
    )]
    pub(crate) async fn set_directive_enabled(
        &self,
        Parameters(input): Parameters<SetEnabledInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Changed>, ErrorData> {
        let access = self.may_change(&context, Role::Operator)?;
        let directives = self.running_directives()?;
        directives.set_enabled(&input.name, input.enabled).map_err(|e| invalid(e.to_string()))?;
        let change = if input.enabled { "enabled" } else { "disabled" };
        let audit_seq = self.audit_change(
            &access,
            serde_json::json!({ "directive": input.name, "change": change, "via": "mcp" }),
        );
        let text = format!("directive {} {change}", input.name);
        Ok(Answer {
            value: Changed { names: vec![input.name], change: change.into(), audit_seq },
            text,
        })
    }

    /// Adds directives (admin).
    #[tool(
        name = "add_directive",
        description = "Adds one or more directives written in the directive file format (TOML: [[directive]] name, when, where, group_by, severity, then). Validated first; errors name the line and field. Needs an admin token for every tenant.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Changed>()
    )]
    pub(crate) async fn add_directive(
        &self,
        Parameters(input): Parameters<AddDirectiveInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Changed>, ErrorData> {
        let access = self.may_change(&context, Role::Admin)?;
        let directives = self.running_directives()?;
        if input.toml.len() > 64 * 1024 {
            return Err(invalid("a directive file over MCP is limited to 64 KiB"));
        }
        let set = DirectiveSet::from_toml_str(&input.toml, "add_directive")
            .map_err(|e| invalid(e.to_string()))?;
        if set.is_empty() {
            return Err(invalid("no [[directive]] in the text"));
        }
        let existing: Vec<String> = directives.list().into_iter().map(|d| d.name).collect();
        if let Some(taken) = set.directives().iter().find(|d| existing.contains(&d.name)) {
            return Err(invalid(format!("a directive named {:?} exists already", taken.name)));
        }
        let mut names = Vec::new();
        for spec in set.directives() {
            directives.add(spec.clone()).map_err(|e| invalid(e.to_string()))?;
            names.push(spec.name.clone());
        }
        let audit_seq = self.audit_change(
            &access,
            serde_json::json!({ "directives": names, "change": "added", "via": "mcp", "text": input.toml }),
        );
        let text = format!("added {}", names.join(", "));
        Ok(Answer { value: Changed { names, change: "added".into(), audit_seq }, text })
    }

    /// Removes a directive (admin).
    #[tool(
        name = "remove_directive",
        description = "Removes a directive (resolving its firing incidents). Needs an admin token for every tenant.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Changed>()
    )]
    pub(crate) async fn remove_directive(
        &self,
        Parameters(input): Parameters<RemoveDirectiveInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Changed>, ErrorData> {
        let access = self.may_change(&context, Role::Admin)?;
        let directives = self.running_directives()?;
        let removed = directives.remove(&input.name).map_err(|e| invalid(e.to_string()))?;
        let condition = serde_json::to_value(&removed).map_err(internal)?;
        let audit_seq = self.audit_change(
            &access,
            serde_json::json!({ "directive": input.name, "change": "removed", "via": "mcp", "spec": condition }),
        );
        let text = format!("removed {}", input.name);
        Ok(Answer {
            value: Changed { names: vec![input.name], change: "removed".into(), audit_seq },
            text,
        })
    }
}
