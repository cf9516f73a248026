//! `mission-ctl runs` and `mission-ctl incidents` over a store: the directives' run history —
//! each firing, scheduled firing, run by hand and retry the agent recorded as a
//! `mission.directive.run` event, with who started it, its outcome and what each action did —
//! and the incidents recorded as `mission.incident` events, each in its latest state.

use std::collections::BTreeMap;
use std::io::Write;

use mission_store::{EventRow, Store};

use crate::{Error, Window, utc, write_table};

/// The run event's name.
const RUN_EVENT: &str = "mission.directive.run";

/// One run, as the store has it (its last recorded state).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRow {
    /// When it started (ns since the Unix epoch).
    pub time_ns: i64,
    /// Whose (empty for a directive across tenants).
    pub tenant: String,
    /// The directive.
    pub directive: String,
    /// The run's id in the agent that recorded it.
    pub run_id: i64,
    /// `event`, `schedule`, `manual` or `retry`.
    pub trigger: String,
    /// Who started it.
    pub by: String,
    /// Its outcome (`ok`, `failed`, `pending_approval`, `approved`, `rejected`, `expired`,
    /// `rate_limited`, `gave_up`).
    pub outcome: String,
    /// Each action with its target and outcome (as recorded: a JSON array).
    pub actions: serde_json::Value,
    /// The thread it was about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

/// Outcomes a later record of the same run replaces.
fn provisional(outcome: &str) -> bool {
    matches!(outcome, "running" | "pending_approval")
}

fn run_row(row: &EventRow) -> Option<RunRow> {
    let attr = |key: &str| row.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Some(RunRow {
        time_ns: row.time_ns,
        tenant: row.tenant.clone(),
        directive: attr("mission.directive")?,
        run_id: attr("mission.run.id")?.parse().ok()?,
        trigger: attr("mission.run.trigger").unwrap_or_default(),
        by: attr("mission.run.by").unwrap_or_default(),
        outcome: attr("mission.run.outcome").unwrap_or_default(),
        actions: attr("mission.run.actions")
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default(),
        thread_id: attr("mission.alert.thread_id"),
    })
}

/// The runs in `window` (of `tenant` when given, of `directive` when given), newest first, at
/// most `limit`: one row per run, its final outcome when one was recorded.
///
/// # Errors
/// The store cannot be read.
pub fn runs(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    directive: Option<&str>,
    limit: usize,
) -> Result<Vec<RunRow>, Error> {
    let mut by_run: BTreeMap<(String, String, i64, i64), RunRow> = BTreeMap::new();
    for batch in window.query(store, tenant).name(RUN_EVENT).batches()? {
        for row in EventRow::from_batch(&batch)? {
            let Some(run) = run_row(&row) else { continue };
            if directive.is_some_and(|d| d != run.directive) {
                continue;
            }
            let key = (run.tenant.clone(), run.directive.clone(), run.run_id, run.time_ns);
            match by_run.get(&key) {
                Some(kept) if !provisional(&kept.outcome) => {}
                _ => {
                    by_run.insert(key, run);
                }
            }
        }
    }
    let mut list: Vec<RunRow> = by_run.into_values().collect();
    list.sort_by_key(|r| std::cmp::Reverse((r.time_ns, r.run_id)));
    list.truncate(limit);
    Ok(list)
}

/// Prints [`runs`] as a table or JSON.
///
/// # Errors
/// The store cannot be read, or `out` cannot be written.
pub fn run_runs(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    directive: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let list = runs(store, window, tenant, directive, 1000)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&list)?)?;
        return Ok(());
    }
    let header: Vec<String> =
        ["time", "tenant", "directive", "run", "trigger", "by", "outcome", "actions"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let actions: Vec<String> = r
                .actions
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        a["action"].as_str().unwrap_or("?"),
                        a["outcome"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            vec![
                utc(r.time_ns),
                r.tenant.clone(),
                r.directive.clone(),
                r.run_id.to_string(),
                r.trigger.clone(),
                r.by.clone(),
                r.outcome.clone(),
                actions.join(", "),
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    Ok(())
}

/// One incident as the store has it (its last recorded state: `open`, `narrated` or
/// `closed`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    /// When it was last recorded (ns since the Unix epoch).
    pub time_ns: i64,
    /// The recorded state: `open`, `narrated` or `closed`.
    pub recorded: String,
    /// The incident (id, tenant, cause, members, resolution, narrative).
    #[serde(flatten)]
    pub incident: mission_sdk::directives::Incident,
}

/// The incidents recorded in `window` (of `tenant` when given), newest first, at most
/// `limit`: one row per incident, its latest state.
///
/// # Errors
/// The store cannot be read.
pub fn incidents(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    limit: usize,
) -> Result<Vec<IncidentRow>, Error> {
    let query = window.query(store, tenant).name(mission_sdk::directives::INCIDENT_EVENT);
    let mut latest: BTreeMap<(String, String), IncidentRow> = BTreeMap::new();
    for batch in query.batches()? {
        for row in EventRow::from_batch(&batch)? {
            let Some(incident) =
                mission_sdk::directives::incident_from_attributes(&row.tenant, &row.attributes)
            else {
                continue;
            };
            let state = row
                .attributes
                .iter()
                .find(|(k, _)| k == mission_sdk::directives::ATTR_INCIDENT_STATE)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let key = (incident.tenant.clone(), incident.id.clone());
            let newer = latest.get(&key).is_none_or(|kept| {
                (row.time_ns, state == "closed") >= (kept.time_ns, kept.recorded == "closed")
            });
            if newer {
                latest.insert(key, IncidentRow { time_ns: row.time_ns, recorded: state, incident });
            }
        }
    }
    let mut list: Vec<IncidentRow> = latest.into_values().collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.time_ns));
    list.truncate(limit);
    Ok(list)
}

/// Prints [`incidents`] as a table or JSON.
///
/// # Errors
/// The store cannot be read, or `out` cannot be written.
pub fn run_incidents(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let list = incidents(store, window, tenant, 1000)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&list)?)?;
        return Ok(());
    }
    let header: Vec<String> =
        ["time", "tenant", "incident", "state", "cause", "members", "resolution", "narrative"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let i = &r.incident;
            vec![
                utc(r.time_ns),
                i.tenant.clone(),
                i.id.clone(),
                r.recorded.clone(),
                i.cause.clone(),
                i.members.len().to_string(),
                i.resolution.clone(),
                i.narrative.clone().unwrap_or_default(),
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    Ok(())
}
