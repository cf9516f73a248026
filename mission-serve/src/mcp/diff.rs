//! The thread-diff tool: `compare_threads`, two threads' steps aligned and compared, with where
//! they first diverge (see [`crate::diff`]), read within the request's tenant scope.

use std::fmt::Write as _;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tools::{Answer, check_limit, take_bounded};
use super::{MissionMcp, internal, invalid, scope_of};
use crate::diff::{AlignedPair, DiffError, Divergence, ThreadSide, diff_threads};

/// Input of `compare_threads`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareInput {
    /// Thread A (say the good run): 32 lowercase hex digits.
    pub a: String,
    /// Thread B (say the bad run): 32 lowercase hex digits.
    pub b: String,
    /// Aligned pairs listed at most (1–200, default 50); only pairs that differ are listed
    /// unless `all_steps` is set.
    #[serde(default)]
    pub limit: Option<usize>,
    /// List every aligned pair, not only those that differ.
    #[serde(default)]
    pub all_steps: bool,
}

/// Two threads compared.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompareAnswer {
    /// Thread A.
    pub a: ThreadSide,
    /// Thread B.
    pub b: ThreadSide,
    /// Whether no aligned step differs.
    pub identical: bool,
    /// Where they first diverge (absent: nowhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_divergence: Option<Divergence>,
    /// Aligned pairs in all.
    pub aligned: usize,
    /// Aligned pairs that differ.
    pub differing: usize,
    /// The pairs listed (those that differ, or all with `all_steps`), in order.
    pub pairs: Vec<AlignedPair>,
    /// True when pairs were left out (by `limit` or the size bound), or a thread had more
    /// steps than are compared.
    pub truncated: bool,
}

fn error(e: DiffError) -> ErrorData {
    match e {
        DiffError::BadId { .. } => invalid(format!("{e}, as list_threads returns them")),
        DiffError::NotFound { .. } => invalid(format!("{e}: check the id with list_threads")),
        DiffError::Store(e) => internal(e),
    }
}

#[tool_router(router = diff_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Two threads compared step by step, with where they first diverge.
    #[tool(
        name = "compare_threads",
        description = "Compare two threads (e.g. the same agent's good run a and bad run b): their steps (spans, in start order) aligned on kind and name, each aligned pair's differences (presence, kind, name, status, error, args_hash of the arguments, model, input/output tokens past 10 %, latency past 2x and 10 ms), and first_divergence: the first step where they differ, its field and both values. Lists the differing pairs (all with all_steps), up to limit.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<CompareAnswer>()
    )]
    pub(crate) async fn compare_threads(
        &self,
        Parameters(input): Parameters<CompareInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<CompareAnswer>, ErrorData> {
        let limit = check_limit(input.limit, 50)?;
        crate::diff::check_id("a", &input.a).map_err(error)?;
        crate::diff::check_id("b", &input.b).map_err(error)?;
        let scope = scope_of(&context.extensions);
        let diff = self
            .blocking(move |source| {
                let store = source.store(scope.as_deref())?;
                diff_threads(&store, &input.a, &input.b).map_err(error)
            })
            .await?;
        let aligned = diff.diff.pairs.len();
        let listed: Vec<AlignedPair> = diff
            .diff
            .pairs
            .into_iter()
            .filter(|p| input.all_steps || !p.differences.is_empty())
            .collect();
        let candidates = listed.len();
        let (pairs, _, cut) = take_bounded(listed, 0, limit);
        let answer = CompareAnswer {
            identical: diff.identical,
            first_divergence: diff.diff.first_divergence,
            aligned,
            differing: diff.diff.differing,
            truncated: cut || pairs.len() < candidates || diff.diff.truncated,
            pairs,
            a: diff.a,
            b: diff.b,
        };
        let text = compare_text(&answer);
        Ok(Answer { value: answer, text })
    }
}

/// The comparison in a few lines, for the model.
fn compare_text(c: &CompareAnswer) -> String {
    let mut text = String::new();
    for (label, side) in [("a", &c.a), ("b", &c.b)] {
        let _ = writeln!(text, "{label}: {side}");
    }
    match &c.first_divergence {
        None => {
            let _ = write!(text, "identical: {} aligned steps, no difference", c.aligned);
        }
        Some(d) => {
            let _ = write!(
                text,
                "first divergence at step {} ({}): {} a={} b={}; {} of {} aligned steps differ",
                d.step, d.name, d.field, d.a, d.b, c.differing, c.aligned
            );
        }
    }
    for p in &c.pairs {
        let name = p.a.as_ref().or(p.b.as_ref()).map_or("", |s| s.name.as_str());
        let diffs: Vec<String> =
            p.differences.iter().map(|d| format!("{} {}→{}", d.field, d.a, d.b)).collect();
        let _ = write!(text, "\n{} {name}: {}", p.step, diffs.join(", "));
    }
    if c.truncated {
        text.push_str("\n(truncated: more pairs than listed)");
    }
    text
}
