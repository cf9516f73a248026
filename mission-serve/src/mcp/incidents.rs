//! The incident tools: `list_incidents` (any role, inside an agent running directives: the
//! incidents open now and the latest closed, with their members, resolution and narrative)
//! and `similar_incidents` (any role, inside an agent or over a store: past incidents with the
//! same cause and what resolved them, from memory and from the store's `mission.incident`
//! events). A token scoped to one tenant sees its tenant's incidents only.

use mission_govern::directives::{Incident, IncidentState};
use mission_store::EventRow;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tools::Answer;
use super::{MissionMcp, internal, invalid, scope_of};

/// Most incidents `similar_incidents` returns.
const MAX_SIMILAR: usize = 10;
/// Most `mission.incident` events `similar_incidents` reads from the store.
const MAX_STORED: usize = 10_000;

/// Input of `list_incidents`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentsInput {
    /// Only `open` or `closed` incidents.
    #[serde(default)]
    pub state: Option<String>,
}

/// Input of `similar_incidents`: one of `cause`, `incident_id` or `anomaly_id`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarInput {
    /// A cause signature, as incidents and anomalies name it (`model=claude-sonnet-4`,
    /// `operation=search_web`).
    #[serde(default)]
    pub cause: Option<String>,
    /// An incident's id (16 hex digits): past incidents like it.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// An anomaly's id (16 hex digits, from list_anomalies): past incidents like the one it
    /// joined.
    #[serde(default)]
    pub anomaly_id: Option<String>,
}

/// Incidents.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Incidents {
    /// Each: id, tenant, cause, state, opened, updated, closed, members (kind, source, id,
    /// time, summary, verdict), resolution, narrative.
    pub incidents: Vec<serde_json::Value>,
}

/// Past incidents like a cause.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Similar {
    /// The cause searched for.
    pub cause: String,
    /// Closed incidents, best first: `likeness` (1 the same cause, 0.7 the same value under
    /// another key, 0.5 the same key), then the incident with its resolution and narrative.
    pub incidents: Vec<serde_json::Value>,
}

impl MissionMcp {
    /// The incidents in the agent's memory, of `scope`.
    fn live_incidents(&self, scope: Option<&str>) -> Vec<Incident> {
        self.source
            .live
            .as_ref()
            .and_then(|l| l.directives.as_ref())
            .map(|d| d.incidents_for(scope))
            .unwrap_or_default()
    }
}

fn line(i: &Incident) -> String {
    format!(
        "incident {} ({:?}) on {}: {} member(s){}{}",
        i.id,
        i.state,
        i.cause,
        i.members.len(),
        if i.resolution.is_empty() {
            String::new()
        } else {
            format!("; resolved by {}", i.resolution)
        },
        i.narrative.as_deref().map(|n| format!("; narrative: {n}")).unwrap_or_default()
    )
}

#[tool_router(router = incident_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Incidents open now and the latest closed.
    #[tool(
        name = "list_incidents",
        description = "Incidents in this agent: anomalies, directive firings, acknowledgements and remedies of one tenant sharing one cause (one incident when several streams alarm on one cause), open now or recently closed, newest first: id, cause, members, resolution (the last remedy that worked or the acknowledgement's note) and the host analyser's narrative. Optionally state = open or closed. A token scoped to one tenant sees its tenant's incidents only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Incidents>()
    )]
    pub(crate) async fn list_incidents(
        &self,
        Parameters(input): Parameters<IncidentsInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Incidents>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let state = match input.state.as_deref() {
            None => None,
            Some("open") => Some(IncidentState::Open),
            Some("closed") => Some(IncidentState::Closed),
            Some(other) => {
                return Err(invalid(format!(
                    "state {:?}: expected open or closed",
                    other.chars().take(32).collect::<String>()
                )));
            }
        };
        let list: Vec<Incident> = self
            .live_incidents(scope.as_deref())
            .into_iter()
            .filter(|i| state.is_none_or(|s| i.state == s))
            .collect();
        let mut text = format!("{} incident(s)", list.len());
        for i in &list {
            text.push('\n');
            text.push_str(&line(i));
        }
        let incidents = list.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect();
        Ok(Answer { value: Incidents { incidents }, text })
    }

    /// Past incidents with the same cause, and what resolved them.
    #[tool(
        name = "similar_incidents",
        description = "Past (closed) incidents like a cause, an incident or an anomaly, best first: each with how alike its cause is (1 the same cause, 0.7 the same value under another key, 0.5 the same key), its members, what resolved it and the host analyser's narrative. Give one of cause (e.g. model=claude-sonnet-4, operation=search_web), incident_id or anomaly_id. Reads the agent's memory and the store's recorded incidents. A token scoped to one tenant sees its tenant's incidents only.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Similar>()
    )]
    pub(crate) async fn similar_incidents(
        &self,
        Parameters(input): Parameters<SimilarInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Similar>, ErrorData> {
        let scope = scope_of(&context.extensions);
        let live = self.live_incidents(scope.as_deref());
        let given = [&input.cause, &input.incident_id, &input.anomaly_id];
        if given.iter().filter(|g| g.is_some()).count() != 1 {
            return Err(invalid("give exactly one of cause, incident_id or anomaly_id"));
        }
        let scope_for_store = scope.clone();
        let stored = self
            .blocking(move |source| {
                if source.root.is_none() {
                    return Ok(Vec::new());
                }
                let store = source.store(scope_for_store.as_deref())?;
                let mut out = Vec::new();
                let query = store.query().name(mission_govern::directives::INCIDENT_EVENT);
                for batch in query.batches().map_err(internal)? {
                    for row in EventRow::from_batch(&batch).map_err(internal)? {
                        if out.len() >= MAX_STORED {
                            break;
                        }
                        if let Some(i) = mission_govern::directives::incident_from_attributes(
                            &row.tenant,
                            &row.attributes,
                        ) {
                            out.push(i);
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        let find = |pred: &dyn Fn(&Incident) -> bool| {
            live.iter()
                .chain(stored.iter())
                .find(|i| pred(i))
                .map(|i| (i.id.clone(), i.cause.clone()))
        };
        let (exclude, cause) = if let Some(cause) = &input.cause {
            (None, cause.clone())
        } else if let Some(id) = &input.incident_id {
            let (id, cause) = find(&|i| i.id == *id)
                .ok_or_else(|| invalid(format!("no incident {id:?} (see list_incidents)")))?;
            (Some(id), cause)
        } else {
            let id = input.anomaly_id.clone().unwrap_or_default().to_ascii_lowercase();
            let (incident, cause) = find(&|i| i.has_member(&id)).ok_or_else(|| {
                invalid(format!(
                    "anomaly {id:?} joined no incident this server knows; give its cause"
                ))
            })?;
            (Some(incident), cause)
        };
        let closed: Vec<Incident> = live
            .into_iter()
            .chain(stored)
            .filter(|i| i.state == IncidentState::Closed && Some(&i.id) != exclude.as_ref())
            .collect();
        let ranked = mission_govern::directives::similar_incidents(&cause, closed, MAX_SIMILAR);
        let mut text = format!("{} past incident(s) like {cause}", ranked.len());
        let incidents = ranked
            .iter()
            .map(|(likeness, i)| {
                text.push_str(&format!("\n{likeness:.1} {}", line(i)));
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["likeness"] = serde_json::json!(likeness);
                v
            })
            .collect();
        Ok(Answer { value: Similar { cause, incidents }, text })
    }
}
