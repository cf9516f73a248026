//! The `relationship_graph` tool: the relationship graph of a window (see [`crate::graph`]),
//! the same JSON as the dashboard's `GET /api/graph`.

use std::fmt::Write as _;

use mission_core::Timestamp;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::tools::Answer;
use super::{MissionMcp, internal, invalid, scope_of};
use crate::graph::{GraphBuilder, MAX_NODES};

/// The longest window, minutes (30 days, as the dashboard's).
const MAX_MINUTES: u64 = 43_200;
/// Nodes when no `limit` is given (a model reads the answer; the dashboard asks for more).
const DEFAULT_LIMIT: usize = 200;
/// Edges the text lists.
const TEXT_EDGES: usize = 30;

/// Input of `relationship_graph`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphInput {
    /// The window: the last this many minutes (1–43200, default 60).
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Most nodes, the busiest kept (1–10000, default 200); what is cut is counted.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[tool_router(router = graph_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Who calls what over a window.
    #[tool(
        name = "relationship_graph",
        description = "The relationship graph of a window: nodes agent:*, tool:*, model:*, mcp_server:*, directive:*, rule:* and the host's registered artefacts; edges calls_tool (agent→tool), uses_model (agent→model), served_by (tool→mcp_server), child_thread and handoff (agent→agent), denied_by (agent→rule: permission denials), alerted (directive→agent) and relation (registered, with a label), each with calls, errors, cost_usd and p95_ms. The busiest `limit` nodes are kept (default 200, at most 10000); nodes_cut, edges_cut and truncated say what was left out. since_minutes: the window (default 60)."
    )]
    pub(crate) async fn relationship_graph(
        &self,
        Parameters(input): Parameters<GraphInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<serde_json::Value>, ErrorData> {
        let minutes = input.since_minutes.unwrap_or(60);
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(invalid(format!(
                "since_minutes must be from 1 to {MAX_MINUTES}, not {minutes}"
            )));
        }
        let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_NODES).contains(&limit) {
            return Err(invalid(format!("limit must be from 1 to {MAX_NODES}, not {limit}")));
        }
        let scope = scope_of(&context.extensions);
        let value = self
            .blocking(move |source| {
                let to = Timestamp::now();
                let from = Timestamp(to.0.saturating_sub(minutes * 60_000_000_000));
                let mut builder = GraphBuilder::new();
                let store = source.store(scope.as_deref())?;
                let unreadable = builder
                    .add_store(&store, from, Timestamp(to.0.saturating_add(1_000_000_000)))
                    .map_err(internal)?;
                if let Some(artefacts) = source.live.as_ref().and_then(|l| l.artefacts.as_ref()) {
                    builder.add_registered(&artefacts.snapshot(scope.as_deref()));
                }
                let mut value = serde_json::to_value(builder.finish(limit)).map_err(internal)?;
                if let Some(object) = value.as_object_mut() {
                    let ms = |t: Timestamp| i64::try_from(t.0 / 1_000_000).unwrap_or(i64::MAX);
                    object.insert("minutes".into(), minutes.into());
                    object.insert("limit".into(), limit.into());
                    object.insert("from_ms".into(), ms(from).into());
                    object.insert("to_ms".into(), ms(to).into());
                    object.insert("unreadable".into(), unreadable.into());
                }
                Ok(value)
            })
            .await?;
        Ok(Answer { text: graph_text(&value), value })
    }
}

/// The graph for the model: counts, then the busiest edges one per line.
fn graph_text(value: &serde_json::Value) -> String {
    let count = |k: &str| value[k].as_array().map_or(0, Vec::len);
    let mut text = format!(
        "{} nodes, {} edges over the last {} min",
        count("nodes"),
        count("edges"),
        value["minutes"]
    );
    if value["truncated"] == true {
        let _ = write!(
            text,
            " (truncated: {} nodes and {} edges cut)",
            value["nodes_cut"], value["edges_cut"]
        );
    }
    for e in value["edges"].as_array().into_iter().flatten().take(TEXT_EDGES) {
        let s = |k: &str| e[k].as_str().unwrap_or("");
        let _ =
            write!(text, "\n- {} -{}-> {}: {} calls", s("from"), s("kind"), s("to"), e["calls"]);
        if e["errors"].as_u64().unwrap_or(0) > 0 {
            let _ = write!(text, ", {} errors", e["errors"]);
        }
        if let Some(c) = e["cost_usd"].as_f64().filter(|c| *c > 0.0) {
            let _ = write!(text, ", {}", super::format::usd_text(c));
        }
        if let Some(p) = e["p95_ms"].as_f64() {
            let _ = write!(text, ", p95 {}", super::format::ms_text(super::format::ms(p * 1e6)));
        }
        if !s("label").is_empty() {
            let _ = write!(text, " ({})", s("label"));
        }
    }
    text
}
