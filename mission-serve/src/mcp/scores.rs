//! The score tool: `list_scores`, evaluation scores and feedback given to threads and spans,
//! with the mean of each score name over the listing.

use std::fmt::Write as _;

use mission_store::ScoreRow;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tools::{Answer, Page, Paging, check_thread_id, table};
use super::{MissionMcp, internal, invalid};

/// Input of `list_scores`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListScoresInput {
    /// Only scores with this name (`helpfulness`).
    #[serde(default)]
    pub name: Option<String>,
    /// Only scores of this thread (32 lowercase hex digits).
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Only scores of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only scores from this source: `human`, `llm` or `rule`.
    #[serde(default)]
    pub source: Option<String>,
    /// Only scores given in the last this many minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Rows per page (1–200, default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One score, as `list_scores` and `get_thread` show it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ScoreEntry {
    /// When it was given (RFC 3339 UTC).
    pub time: String,
    /// The agent of the thread it scores.
    pub agent: String,
    /// The thread it scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The span it scores (absent: the thread as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The score's name.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its comment (`[content omitted]` unless the tenant captures content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who gave it: `human`, `llm` or `rule`.
    pub source: String,
}

impl From<ScoreRow> for ScoreEntry {
    fn from(s: ScoreRow) -> Self {
        Self {
            time: super::format::rfc3339(s.time_ns),
            agent: s.agent,
            thread_id: s.thread_id,
            span_id: s.span_id,
            name: s.name,
            value: s.value,
            label: s.label,
            comment: s.comment,
            source: s.source,
        }
    }
}

/// A page of scores, with per-name means over every score that matched.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScorePage {
    /// The scores, newest first, and the paging fields.
    #[serde(flatten)]
    pub page: Page,
    /// Per score name over every matching score (not only this page): count, mean, min, max.
    pub summary: Vec<serde_json::Value>,
}

/// One line per score for the model.
pub(crate) fn scores_text(scores: &[ScoreEntry]) -> String {
    let mut text = String::new();
    for s in scores {
        let _ = write!(text, "\n- {} = {} ({})", s.name, s.value, s.source);
        if let Some(l) = &s.label {
            let _ = write!(text, " {l}");
        }
        if let Some(span) = &s.span_id {
            let _ = write!(text, " on span {span}");
        }
        if let Some(c) = &s.comment {
            let _ = write!(text, ": {c}");
        }
    }
    text
}

#[tool_router(router = score_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Evaluation scores and feedback, newest first.
    #[tool(
        name = "list_scores",
        description = "Evaluation scores and user feedback given to threads and spans (thread.score / span.score / score_thread), newest first: time, agent, thread, span, name, value, label, comment and source (human|llm|rule), with count, mean, min and max per score name over all matches. Filters: name, thread_id, agent, source, since_minutes. Paginated.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ScorePage>()
    )]
    pub(crate) async fn list_scores(
        &self,
        Parameters(input): Parameters<ListScoresInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<ScorePage>, ErrorData> {
        let paging = Paging::parse(input.limit, 50, input.cursor.as_deref(), input.since_minutes)?;
        if let Some(t) = &input.thread_id {
            check_thread_id(t)?;
        }
        if let Some(s) = &input.source
            && s.parse::<mission_core::ScoreSource>().is_err()
        {
            return Err(invalid(format!("source must be human, llm or rule, not {s:?}")));
        }
        let (page, summary) = self
            .scoped_page_with(&context, paging, move |store, from, until| {
                let mut q = store.query().time_range(from, until);
                if let Some(a) = &input.agent {
                    q = q.agent(a);
                }
                if let Some(n) = &input.name {
                    q = q.name(n);
                }
                if let Some(t) = &input.thread_id {
                    q = q.thread(t);
                }
                let mut scores = store.scores(q).map_err(internal)?;
                if let Some(s) = &input.source {
                    scores.retain(|r| r.source.eq_ignore_ascii_case(s));
                }
                let summary = mission_store::summarize_scores(&scores)
                    .into_iter()
                    .map(|s| serde_json::to_value(s).unwrap_or_default())
                    .collect();
                let rows = scores
                    .into_iter()
                    .map(|s| serde_json::to_value(ScoreEntry::from(s)).unwrap_or_default())
                    .collect();
                Ok((rows, summary))
            })
            .await?;
        let answer = ScorePage { page, summary };
        let mut text = table(
            "scores",
            &answer.page,
            &["name", "value", "label", "source", "agent", "thread_id", "span_id"],
        );
        for s in &answer.summary {
            let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
            let _ = write!(
                text,
                "\n{}: mean {:.3} over {} (min {:.3}, max {:.3})",
                s["name"].as_str().unwrap_or(""),
                f("mean"),
                s["count"],
                f("min"),
                f("max")
            );
        }
        Ok(Answer { value: answer, text })
    }
}
