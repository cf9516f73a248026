//! The `recommendations` tool: [`crate::advice::recommend`] over the last `since_minutes`,
//! within the principal's tenant.

use std::fmt::Write as _;

use mission_core::Timestamp;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::tools::Answer;
use super::{MissionMcp, internal, invalid, scope_of};
use crate::advice::{Advice, recommend};

/// Longest window: 30 days.
const MAX_MINUTES: u64 = 43_200;

/// Input of `recommendations`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendationsInput {
    /// The window: the last this many minutes (1–43200, default 1440).
    #[serde(default)]
    pub since_minutes: Option<u64>,
}

#[tool_router(router = advice_router, vis = "pub(crate)")]
impl MissionMcp {
    /// What to change to spend less or fail less, from the store.
    #[tool(
        name = "recommendations",
        description = "Recommendations computed from the store over the last since_minutes (default 1440): prompt-cache hit rate per model (cached input tokens), model right-sizing in dollars (same agent and operation served by a cheaper model with a similar error rate and mean score), the slowest and most failing tools, and budget burn (threads that warned or used up their budget). Each: kind, subject, evidence numbers, saving_usd (when it saves money), impact and a sentence.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Advice>()
    )]
    pub(crate) async fn recommendations(
        &self,
        Parameters(input): Parameters<RecommendationsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Advice>, ErrorData> {
        let minutes = input.since_minutes.unwrap_or(1440);
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(invalid(format!(
                "since_minutes must be from 1 to {MAX_MINUTES}, not {minutes}"
            )));
        }
        let scope = scope_of(&context.extensions);
        let advice = self
            .blocking(move |source| {
                let store = source.store(scope.as_deref())?;
                let now = Timestamp::now().0;
                let from = Timestamp(now.saturating_sub(minutes * 60_000_000_000));
                let q =
                    store.query().time_range(from, Timestamp(now.saturating_add(1_000_000_000)));
                recommend(q).map_err(internal)
            })
            .await?;
        let mut text = format!(
            "{} recommendation(s) over the last {minutes} min ({} rows read{})",
            advice.recommendations.len(),
            advice.rows,
            if advice.truncated { ", truncated" } else { "" }
        );
        for r in &advice.recommendations {
            let _ = write!(text, "\n- [{}] {}: {}", r.kind, r.subject, r.message);
        }
        Ok(Answer { value: advice, text })
    }
}
