//! The workflow tools, inside an agent running directives: `run_directive` (operator: run a
//! directive by hand now), `list_directive_runs` (any role: each firing, scheduled firing, run
//! by hand and retry with what its actions did), `list_approvals` (any role: remedies waiting
//! for a person, and the latest decided) and `decide_approval` (operator: approve or reject).
//! A token scoped to one tenant sees, runs and decides for its own tenant only. Every
//! approval's change and every run by hand or with remedies is appended to the audit trail by
//! the agent (its control sink), whoever made it.

use mission_govern::directives::{Approval, ApprovalState, Run, Verdict};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::directives::actor_of;
use super::tools::Answer;
use super::{MissionMcp, Role, invalid, require, scope_of};

/// Most runs `list_directive_runs` returns.
const MAX_RUN_ROWS: usize = 500;

/// Input of `run_directive`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDirectiveInput {
    /// The directive's name, as `list_directives` shows it.
    pub name: String,
    /// The thread its thread actions (cancel_thread, pause_thread) act on (32 hex digits).
    #[serde(default)]
    pub thread_id: Option<String>,
    /// For a token of every tenant: the tenant to run it for (default: the agent's own).
    /// A token scoped to one tenant always runs it for that tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Input of `list_directive_runs`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsInput {
    /// Only this directive's runs.
    #[serde(default)]
    pub directive: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Input of `list_approvals`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsInput {
    /// Only approvals in this state: `pending`, `approved`, `rejected` or `expired`.
    #[serde(default)]
    pub state: Option<String>,
}

/// Input of `decide_approval`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideInput {
    /// The approval's id, as `list_approvals` shows it.
    pub id: u64,
    /// `approve` (the proposed remedies run now) or `reject` (they never run).
    pub decision: String,
    /// Why (kept with the approval and in the audit trail; up to 1,024 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Runs, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Runs {
    /// Each run: id, directive, trigger (event, schedule, manual, retry), who, tenant,
    /// incident, started, outcome, and each action with its target and outcome.
    pub runs: Vec<serde_json::Value>,
}

/// Approvals, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Approvals {
    /// Each approval: id, run, directive, tenant, incident, thread, proposed remedies, reason,
    /// confidence, created, deadline, state, who decided and the note.
    pub approvals: Vec<serde_json::Value>,
}

/// One run.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunDone {
    /// The run, as `list_directive_runs` shows it.
    pub run: serde_json::Value,
}

/// One decided approval.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Decided {
    /// The approval as decided.
    pub approval: serde_json::Value,
    /// Its run, once the remedies ran (or were skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn run_line(r: &Run) -> String {
    let actions: Vec<String> = r
        .actions
        .iter()
        .map(|a| {
            let outcome = serde_json::to_value(a.outcome).unwrap_or_default();
            format!("{} {}", a.action, outcome.as_str().unwrap_or_default())
        })
        .collect();
    format!(
        "run {} of {} ({}, by {}): {} [{}]",
        r.id,
        r.directive,
        r.trigger.as_str(),
        r.by,
        r.outcome.as_str(),
        actions.join(", ")
    )
}

fn approval_line(a: &Approval) -> String {
    format!(
        "approval {} of {} ({}): {} for {}{}",
        a.id,
        a.directive,
        a.state.as_str(),
        a.actions.join(", "),
        a.reason,
        a.confidence.map(|c| format!(" (confidence {c:.2})")).unwrap_or_default()
    )
}

#[tool_router(router = workflow_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Runs a directive by hand (operator).
    #[tool(
        name = "run_directive",
        description = "Runs a directive by hand now, as if its condition fired: its alerts, callbacks and webhooks run, and its remedies (cancel_thread, pause_thread, open_breaker, fallback, reset_connection) run through the runaway guard, or wait for approval when the directive asks for one. Give thread_id for its thread actions. Returns the run (see list_directive_runs). Needs an operator or admin token; a token scoped to one tenant runs it for its tenant only, and cannot run a directive across tenants.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RunDone>()
    )]
    pub(crate) async fn run_directive(
        &self,
        Parameters(input): Parameters<RunDirectiveInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<RunDone>, ErrorData> {
        let access = require(&context.extensions, Role::Operator)?;
        let directives = self.running_directives()?;
        let thread = match input.thread_id.as_deref() {
            Some(id) => Some(id.parse::<mission_core::ThreadId>().map_err(|_| {
                invalid(format!(
                    "thread_id must be 32 hex digits, not {:?}",
                    id.chars().take(64).collect::<String>()
                ))
            })?),
            None => None,
        };
        let tenant = match (&access.tenant, input.tenant.as_deref()) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(invalid(format!(
                    "this token is scoped to tenant {own}: it runs directives for {own} only"
                )));
            }
            (Some(own), _) => Some(own.as_str()),
            (None, Some(asked)) => Some(asked),
            // The agent's own tenant, where its threads run.
            (None, None) => self.source.live.as_ref().map(|l| l.tenant.as_str()),
        };
        let by = actor_of(&access);
        let run =
            directives.run(&input.name, &by, tenant, thread).map_err(|e| invalid(e.to_string()))?;
        let text = run_line(&run);
        Ok(Answer { value: RunDone { run: json(&run) }, text })
    }

    /// The latest runs of the directives.
    #[tool(
        name = "list_directive_runs",
        description = "The directives' latest runs, newest first: each firing, scheduled firing, run by hand and retry by the runaway guard, with who started it, the incident, its outcome (ok, failed, pending_approval, approved, rejected, expired, rate_limited, gave_up) and what each action did. Optionally one directive's only. A token scoped to one tenant sees its tenant's runs only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Runs>()
    )]
    pub(crate) async fn list_directive_runs(
        &self,
        Parameters(input): Parameters<RunsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Runs>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let directives = self.running_directives()?;
        let limit = input.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_RUN_ROWS {
            return Err(invalid(format!("limit must be between 1 and {MAX_RUN_ROWS}")));
        }
        let runs = directives.runs_for(scope.as_deref(), input.directive.as_deref(), limit);
        let mut text = format!("{} run(s)", runs.len());
        for r in &runs {
            text.push('\n');
            text.push_str(&run_line(r));
        }
        Ok(Answer { value: Runs { runs: runs.iter().map(json).collect() }, text })
    }

    /// Remedies waiting for a person, and the latest decided.
    #[tool(
        name = "list_approvals",
        description = "Remedies directives proposed and hold for a person: id, directive, incident, thread, the remedies proposed, the reason and confidence, the deadline and the state (pending, approved, rejected, expired), newest first; optionally one state only. A token scoped to one tenant sees its tenant's approvals only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Approvals>()
    )]
    pub(crate) async fn list_approvals(
        &self,
        Parameters(input): Parameters<ApprovalsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Approvals>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let directives = self.running_directives()?;
        let state = match input.state.as_deref() {
            None => None,
            Some(s) => Some(
                [
                    ApprovalState::Pending,
                    ApprovalState::Approved,
                    ApprovalState::Rejected,
                    ApprovalState::Expired,
                ]
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| {
                    invalid(format!(
                        "state {:?}: expected pending, approved, rejected or expired",
                        s.chars().take(32).collect::<String>()
                    ))
                })?,
            ),
        };
        let approvals: Vec<Approval> = directives
            .approvals_for(scope.as_deref())
            .into_iter()
            .filter(|a| state.is_none_or(|s| a.state == s))
            .collect();
        let mut text = format!("{} approval(s)", approvals.len());
        for a in &approvals {
            text.push('\n');
            text.push_str(&approval_line(a));
        }
        Ok(Answer { value: Approvals { approvals: approvals.iter().map(json).collect() }, text })
    }

    /// Approves or rejects proposed remedies (operator).
    #[tool(
        name = "decide_approval",
        description = "Approves or rejects the remedies a directive proposed (list_approvals): approved, they run now through the runaway guard; rejected, they never run. Only a pending approval before its deadline can be decided. Recorded with who decided and the note, and in the audit trail. Needs an operator or admin token; a token scoped to one tenant decides its tenant's approvals only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Decided>()
    )]
    pub(crate) async fn decide_approval(
        &self,
        Parameters(input): Parameters<DecideInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Decided>, ErrorData> {
        let access = require(&context.extensions, Role::Operator)?;
        let directives = self.running_directives()?;
        let verdict: Verdict = input.decision.parse().map_err(invalid)?;
        let note = input.note.unwrap_or_default();
        if note.chars().count() > mission_govern::directives::MAX_NOTE_CHARS {
            return Err(invalid("note is limited to 1,024 characters"));
        }
        let by = actor_of(&access);
        let tenant = access.tenant.as_deref();
        let approval = directives
            .decide(input.id, verdict, &by, &note, tenant)
            .map_err(|e| invalid(e.to_string()))?;
        let run = directives
            .runs_for(tenant, Some(&approval.directive), mission_govern::directives::MAX_RUNS)
            .into_iter()
            .find(|r| r.id == approval.run_id);
        let mut text = approval_line(&approval);
        if let Some(r) = &run {
            text.push('\n');
            text.push_str(&run_line(r));
        }
        Ok(Answer {
            value: Decided { approval: json(&approval), run: run.as_ref().map(json) },
            text,
        })
    }
}
