//! The control tools, inside a running agent: `live_threads` (any role, within its tenant: the
//! threads running now with their tree, state and budget use) and `control_thread` (operator:
//! pause, resume or cancel a running thread; a tenant-scoped token in its own tenant only). The
//! change is recorded in the thread and appended to the audit trail by the agent (its control
//! sink), so it is audited the same way whoever makes it. A server over a store on disk has no
//! running threads and lists neither tool.

use mission_core::{ThreadId, Timestamp};
use mission_govern::threads::{ThreadCommand, ThreadRegistry, ThreadSnapshot, ThreadState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::directives::actor_of;
use super::tools::Answer;
use super::{MissionMcp, Role, invalid, require, scope_of};

/// Most threads `live_threads` returns.
const MAX_LIVE_ROWS: usize = 500;

/// Input of `live_threads`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveThreadsInput {
    /// Only the children of this thread (32 hex digits).
    #[serde(default)]
    pub parent_thread_id: Option<String>,
    /// At most this many (default 100, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Threads running now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LiveThreads {
    /// Each with its tenant, agent, parent, depth, state (and who set it), budget and use.
    pub threads: Vec<ThreadSnapshot>,
}

/// What to do to a thread.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Stop for good (its children too).
    Cancel,
    /// Make `should_stop` true until resumed.
    Pause,
    /// Go on after a pause.
    Resume,
}

impl From<Command> for ThreadCommand {
    fn from(c: Command) -> Self {
        match c {
            Command::Cancel => ThreadCommand::Cancel,
            Command::Pause => ThreadCommand::Pause,
            Command::Resume => ThreadCommand::Resume,
        }
    }
}

/// Input of `control_thread`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlThreadInput {
    /// The running thread (32 hex digits), as `live_threads` or `list_threads` shows it.
    pub thread_id: String,
    /// `cancel`, `pause` or `resume`.
    pub command: Command,
    /// Why (kept in the thread's record and the audit trail; up to 512 bytes).
    #[serde(default)]
    pub reason: Option<String>,
    /// The thread's tenant, when a token of every tenant names an id two tenants share.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// What `control_thread` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Controlled {
    /// The thread.
    pub thread_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its state now.
    pub state: ThreadState,
    /// Who, as recorded.
    pub by: String,
}

impl MissionMcp {
    pub(super) fn running_threads(&self) -> Result<&std::sync::Arc<ThreadRegistry>, ErrorData> {
        self.source.live.as_ref().and_then(|l| l.threads.as_ref()).ok_or_else(|| {
            invalid(
                "threads are controlled inside a running agent; this server reads a store on disk",
            )
        })
    }
}

pub(super) fn parse_id(id: &str) -> Result<ThreadId, ErrorData> {
    id.parse::<ThreadId>().map_err(|_| {
        invalid(format!(
            "thread_id must be 32 hex digits, not {:?}",
            id.chars().take(64).collect::<String>()
        ))
    })
}

#[tool_router(router = control_router, vis = "pub(crate)")]
impl MissionMcp {
    /// The threads running now in this agent.
    #[tool(
        name = "live_threads",
        description = "Threads running now in this agent: tenant, agent, parent thread and depth (subagents are child threads), state (running, paused, cancelled, and who set it), budget and what the thread and its children used (turns, tokens, cost_usd, wall_time_s). Optionally only the children of parent_thread_id. A token scoped to one tenant sees its tenant's threads only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<LiveThreads>()
    )]
    pub(crate) async fn live_threads(
        &self,
        Parameters(input): Parameters<LiveThreadsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<LiveThreads>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let registry = self.running_threads()?;
        let limit = input.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_LIVE_ROWS {
            return Err(invalid(format!("limit must be between 1 and {MAX_LIVE_ROWS}")));
        }
        let parent = input.parent_thread_id.as_deref().map(parse_id).transpose()?;
        let threads = registry.list(scope.as_deref(), parent, limit, Timestamp::now().0);
        let mut text = format!("{} running thread(s)\n", threads.len());
        for t in &threads {
            text.push_str(&format!(
                "{} {} {}{} tokens={} cost=${:.4}\n",
                t.thread_id,
                t.agent,
                t.state.as_str(),
                t.parent_thread_id.as_deref().map(|p| format!(" child of {p}")).unwrap_or_default(),
                t.used.tokens,
                t.used.cost_usd
            ));
        }
        Ok(Answer { value: LiveThreads { threads }, text })
    }

    /// Pauses, resumes or cancels a running thread (operator).
    #[tool(
        name = "control_thread",
        description = "Pauses, resumes or cancels a thread running in this agent (its children too): the agent's code sees it through should_stop() and its guarded calls are refused; the change is recorded in the thread and in the audit trail with the reason. A cancelled thread cannot be resumed. Needs an operator or admin token; a token scoped to one tenant controls its tenant's threads only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Controlled>()
    )]
    pub(crate) async fn control_thread(
        &self,
        Parameters(input): Parameters<ControlThreadInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Controlled>, ErrorData> {
        let access = require(&context.extensions, Role::Operator)?;
        let registry = self.running_threads()?;
        let id = parse_id(&input.thread_id)?;
        let reason = input.reason.unwrap_or_default();
        if reason.len() > mission_govern::threads::MAX_REASON_BYTES {
            return Err(invalid("reason is limited to 512 bytes"));
        }
        let by = actor_of(&access);
        let (tenant, state) = registry
            .control_scoped(
                access.tenant.as_deref(),
                input.tenant.as_deref(),
                id,
                input.command.into(),
                &by,
                &reason,
            )
            .map_err(|e| invalid(e.to_string()))?;
        let text = format!("thread {} is {} (by {by})", input.thread_id, state.as_str());
        Ok(Answer { value: Controlled { thread_id: input.thread_id, tenant, state, by }, text })
    }
}
