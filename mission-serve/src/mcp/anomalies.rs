//! The anomaly tools: `list_anomalies`, and `explain_anomaly`, which returns a *context pack*
//! (the anomaly, its ranked causes, the operation's numbers before and during it, the exemplar
//! thread and the slowest threads of the window) meant to be handed to a model for a narrative
//! root-cause analysis.

use std::fmt::Write as _;

use mission_core::Timestamp;
use mission_store::{AnomalyRow, GroupBy, OperationStat, Store};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::format::{ms_text, normalize, rfc3339};
use super::tools::{Answer, Page, Paging, ThreadPage, table, thread_page};
use super::{MissionMcp, internal, invalid, scope_of};
use mission_core::anomaly::attr;

/// Input of `list_anomalies`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAnomaliesInput {
    /// Only anomalies of the last this many minutes.
    #[serde(default)]
    pub since_minutes: Option<u64>,
    /// Only anomalies of this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only this metric: `latency_ms`, `error_rate`, `tokens`, `cost_usd`, or a metric's name.
    #[serde(default)]
    pub metric: Option<String>,
    /// Only anomalies scored at least this (0–1).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// Rows per page (1–200, default 20).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Input of `explain_anomaly`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainAnomalyInput {
    /// The anomaly's id (16 hex digits), from `list_anomalies`.
    pub id: String,
}

/// One row of `list_anomalies`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AnomalySummary {
    /// The anomaly's id, for `explain_anomaly`.
    pub id: String,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// The agent.
    pub agent: String,
    /// The metric.
    pub metric: String,
    /// The operation (span name) or metric it was found on.
    pub operation: String,
    /// For LLM calls, the model whose series raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `up` or `down`.
    pub direction: String,
    /// The observed value.
    pub value: f64,
    /// What was expected.
    pub expected: f64,
    /// Score in 0–1.
    pub score: f64,
    /// The detector (`ensemble`, `leak`).
    pub detector: String,
    /// The top cause, `dimension=value`, when one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl From<&AnomalyRow> for AnomalySummary {
    fn from(a: &AnomalyRow) -> Self {
        let get = |k: &str| a.attributes.get(k).cloned();
        Self {
            id: a.id.clone(),
            time: rfc3339(a.time_ns),
            agent: a.agent.clone(),
            metric: a.metric.clone(),
            operation: get(attr::OPERATION).unwrap_or_default(),
            model: get(attr::MODEL),
            direction: get(attr::DIRECTION).unwrap_or_default(),
            value: a.value,
            expected: a.expected,
            score: a.score,
            detector: a.detector.clone(),
            cause: get(attr::CAUSE),
        }
    }
}

/// The operation's numbers over one window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WindowStats {
    /// Start, RFC 3339 UTC.
    pub from: String,
    /// End (exclusive), RFC 3339 UTC.
    pub to: String,
    /// One row per model (per operation for spans without one): count, errors, latency
    /// percentiles (`p50_ms`, … in milliseconds), tokens, cost.
    pub rows: Vec<serde_json::Value>,
}

/// Everything `explain_anomaly` knows about one anomaly.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextPack {
    /// One paragraph saying what happened.
    pub summary: String,
    /// The anomaly as stored (all its attributes).
    pub anomaly: serde_json::Value,
    /// Causes ranked by the share of the change they explain: dimension, value,
    /// contribution, lift (anomalous mean over baseline mean), support (share of the
    /// anomalous window).
    pub causes: Vec<serde_json::Value>,
    /// The operation before the anomaly (four times the anomalous window, at least 15 min).
    pub baseline: Option<WindowStats>,
    /// The operation during the anomalous window.
    pub during: Option<WindowStats>,
    /// The thread of the span that raised the alarm, when the store has it (first 50 spans).
    pub exemplar: Option<ThreadPage>,
    /// The agent's slowest threads of the anomalous window (at most 5): thread id, start,
    /// duration, spans, LLM calls, tokens, cost, errors.
    pub threads: Vec<serde_json::Value>,
    /// What to do with this pack.
    pub instructions: String,
    /// The incident the anomaly joined, inside an agent that keeps incidents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The root-cause narrative the host's analyser gave that incident, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
}

const INSTRUCTIONS: &str = "Explain the most likely root cause of this anomaly in a few sentences for an on-call engineer. Use the ranked causes (contribution = share of the change explained; lift = how much that value's own mean moved; support = its share of the anomalous window, baseline_support its share before), compare `during` with `baseline`, and cite the exemplar or listed threads by id. When the cause is `no single cause`, no recorded value explains the change: say so rather than pick one. Say what evidence is missing, and suggest one next check. Do not invent data that is not here.";

#[tool_router(router = anomaly_router, vis = "pub(crate)")]
impl MissionMcp {
    /// Anomalies the models found, newest first.
    #[tool(
        name = "list_anomalies",
        description = "Anomalies the streaming models found (latency, error rate, tokens, cost per agent/operation/model; memory leaks), newest first: id, time, agent, metric, operation, model, direction, value vs expected, score and the top attributed cause. Filters: since_minutes, agent, metric, min_score. Paginated. Pass an id to explain_anomaly for the full context.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Page>()
    )]
    pub(crate) async fn list_anomalies(
        &self,
        Parameters(input): Parameters<ListAnomaliesInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<Page>, ErrorData> {
        let paging = Paging::parse(input.limit, 20, input.cursor.as_deref(), input.since_minutes)?;
        if let Some(s) = input.min_score
            && !(0.0..=1.0).contains(&s)
        {
            return Err(invalid(format!("min_score must be between 0 and 1, not {s}")));
        }
        let page = self
            .scoped_page(&context, paging, move |store, from, until| {
                let mut q = store.query().time_range(from, until);
                if let Some(a) = &input.agent {
                    q = q.agent(a);
                }
                if let Some(m) = &input.metric {
                    q = q.name(m);
                }
                Ok(store
                    .anomalies(q)
                    .map_err(internal)?
                    .iter()
                    .filter(|a| input.min_score.is_none_or(|s| a.score >= s))
                    .map(|a| serde_json::to_value(AnomalySummary::from(a)).unwrap_or_default())
                    .collect())
            })
            .await?;
        let text = table(
            "anomalies",
            &page,
            &[
                "id",
                "time",
                "agent",
                "metric",
                "operation",
                "direction",
                "value",
                "expected",
                "cause",
            ],
        );
        Ok(Answer { value: page, text })
    }

    /// The context pack of one anomaly, for a narrative root-cause analysis.
    #[tool(
        name = "explain_anomaly",
        description = "The context pack of one anomaly (id from list_anomalies), for a root-cause analysis: a summary, the anomaly with its attributes, causes ranked by the share of the change they explain (with lift and support), the operation's numbers per model before and during the anomaly, the exemplar thread's spans, the slowest threads of the anomalous window, and instructions for writing the explanation.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ContextPack>()
    )]
    pub(crate) async fn explain_anomaly(
        &self,
        Parameters(input): Parameters<ExplainAnomalyInput>,
        context: RequestContext<RoleServer>,
    ) -> Result<Answer<ContextPack>, ErrorData> {
        let id = input.id.trim().to_ascii_lowercase();
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!("id must be 16 hex digits, not {:?}", input.id)));
        }
        let scope = scope_of(&context.extensions);
        let pack = self.blocking(move |source| explain(source, &id, scope.as_deref())).await?;
        let text = pack_text(&pack);
        Ok(Answer { value: pack, text })
    }
}

/// Assembles the pack; parts the store cannot give are left empty, not failed.
/// The context pack of anomaly `id` (16 lowercase hex digits) as a principal of `scope` sees
/// it, with the narrative of the incident it joined when the agent keeps one.
fn explain(
    source: &super::Source,
    id: &str,
    scope: Option<&str>,
) -> Result<ContextPack, ErrorData> {
    let store = source.store(scope)?;
    let anomaly = store
        .anomalies(store.query())
        .map_err(internal)?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| invalid(format!("no anomaly {id} (see list_anomalies)")))?;
    let exemplar = anomaly.attributes.get(attr::EXEMPLAR_THREAD_ID).and_then(|t| {
        let input =
            super::tools::GetThreadInput { thread_id: t.clone(), limit: Some(50), cursor: None };
        thread_page(source, input, scope).ok()
    });
    let mut pack = context_pack(&store, anomaly, exemplar);
    let incident = source
        .live
        .as_ref()
        .and_then(|l| l.directives.as_ref())
        .and_then(|d| d.incidents_for(scope).into_iter().find(|i| i.has_member(id)));
    if let Some(incident) = incident {
        pack.incident_id = Some(incident.id);
        pack.narrative = incident.narrative;
    }
    Ok(pack)
}

impl MissionMcp {
    /// The context pack `explain_anomaly` answers for anomaly `id` (16 hex digits), as a
    /// principal of `tenant` sees it (`None`: every tenant), as JSON: what a host's analyser
    /// reads to write a root-cause narrative. Runs on the calling thread (it reads the store).
    ///
    /// # Errors
    /// A message when the id is malformed, the anomaly is unknown or the store unreadable.
    pub fn context_pack(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("id must be 16 hex digits, not {id:?}"));
        }
        let pack = explain(&self.source, &id, tenant).map_err(|e| e.message.to_string())?;
        serde_json::to_value(pack).map_err(|e| e.to_string())
    }
}

fn context_pack(store: &Store, anomaly: AnomalyRow, exemplar: Option<ThreadPage>) -> ContextPack {
    let get = |k: &str| anomaly.attributes.get(k).cloned();
    let operation = get(attr::OPERATION).unwrap_or_else(|| anomaly.metric.clone());
    let causes: Vec<serde_json::Value> =
        get(attr::CAUSES).and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
    let end = anomaly.time_ns.saturating_add(1);
    let start = get(attr::WINDOW_START)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&s| s < end)
        .unwrap_or(end - 300_000_000_000);
    let baseline_start = start - (4 * (end - start)).max(900_000_000_000);
    let span_stream = get(attr::SPAN_KIND).is_some();
    let stats = |from: i64, to: i64| -> Option<WindowStats> {
        if !span_stream {
            return None;
        }
        let q = store
            .query()
            .agent(&anomaly.agent)
            .name(&operation)
            .time_range(Timestamp(from.max(0) as u64), Timestamp(to.max(0) as u64));
        let rows: Vec<OperationStat> =
            store.operation_stats(q, &[GroupBy::Operation, GroupBy::Model]).ok()?;
        Some(WindowStats { from: rfc3339(from), to: rfc3339(to), rows: normalized(rows) })
    };
    let baseline = stats(baseline_start, start);
    let during = stats(start, end);
    let mut threads = if span_stream {
        let q = store
            .query()
            .agent(&anomaly.agent)
            .time_range(Timestamp(start.max(0) as u64), Timestamp(end.max(0) as u64));
        store.threads(q).unwrap_or_default()
    } else {
        Vec::new()
    };
    threads.sort_by_key(|t| std::cmp::Reverse(t.duration_ns));
    threads.truncate(5);
    let summary = summary(&anomaly, &operation, causes.first());
    let mut anomaly = serde_json::to_value(&anomaly).unwrap_or_default();
    normalize(&mut anomaly);
    ContextPack {
        summary,
        anomaly,
        causes,
        baseline,
        during,
        exemplar,
        threads: normalized(threads),
        instructions: INSTRUCTIONS.to_owned(),
        incident_id: None,
        narrative: None,
    }
}

/// Rows as JSON in the answers' units.
fn normalized<T: Serialize>(rows: Vec<T>) -> Vec<serde_json::Value> {
    rows.into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            normalize(&mut v);
            v
        })
        .collect()
}

fn summary(a: &AnomalyRow, operation: &str, top: Option<&serde_json::Value>) -> String {
    let get = |k: &str| a.attributes.get(k).map(String::as_str);
    let when = rfc3339(a.time_ns);
    let what = match (get(attr::SPAN_KIND), get(attr::MODEL)) {
        (Some(kind), Some(model)) => format!("{} of {operation} ({kind}, model {model})", a.metric),
        (Some(kind), None) => format!("{} of {operation} ({kind})", a.metric),
        _ => a.metric.clone(),
    };
    let mut s = if a.detector == "leak" {
        let eta =
            get(attr::TIME_TO_LIMIT_S).and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::NAN);
        format!(
            "At {when}, {what} of agent {} was {:.0} and rising toward its limit of {}: about {:.1} h to go at the current rate.",
            a.agent,
            a.value,
            get(attr::LIMIT).unwrap_or("?"),
            eta / 3600.0
        )
    } else {
        format!(
            "At {when}, {what} of agent {} was {} ({} than expected: {}, normal band {} to {}; score {:.2}).",
            a.agent,
            number(a.value),
            if get(attr::DIRECTION) == Some("down") { "lower" } else { "higher" },
            number(a.expected),
            number(a.lower),
            number(a.upper),
            a.score
        )
    };
    if let Some(top) = top {
        let f = |k: &str| top.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        let text = |k: &str| top.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
        let _ = write!(
            s,
            " Top cause: {}={} explains {:.0}% of the change (its mean went from {} to {}, ×{:.2}; {:.0}% of the anomalous window).",
            text("dimension"),
            text("value"),
            100.0 * f("contribution"),
            number(f("baseline_mean")),
            number(f("anomalous_mean")),
            f("lift"),
            100.0 * f("support")
        );
    }
    s
}

fn number(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.3}") }
}

/// The pack as Markdown for the model.
fn pack_text(pack: &ContextPack) -> String {
    let mut t = format!("# Anomaly\n{}\n", pack.summary);
    if !pack.causes.is_empty() {
        t.push_str("\n## Causes (share of the change explained)\n");
        for c in &pack.causes {
            let f = |k: &str| c.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
            let s = |k: &str| c.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
            let _ = writeln!(
                t,
                "- {}={}: {:.0}% (lift ×{:.2}, support {:.0}%)",
                s("dimension"),
                s("value"),
                100.0 * f("contribution"),
                f("lift"),
                100.0 * f("support")
            );
        }
    }
    for (title, w) in [("Baseline", &pack.baseline), ("During", &pack.during)] {
        if let Some(w) = w {
            let _ = writeln!(t, "\n## {title}");
            for r in &w.rows {
                let _ = writeln!(
                    t,
                    "- {}: {} calls, {} errors, p50 {}, p95 {}",
                    r.get("group").map(ToString::to_string).unwrap_or_default(),
                    r.get("count").and_then(serde_json::Value::as_u64).unwrap_or(0),
                    r.get("errors").and_then(serde_json::Value::as_u64).unwrap_or(0),
                    ms_text(r.get("p50_ms").and_then(serde_json::Value::as_f64).unwrap_or(0.0)),
                    ms_text(r.get("p95_ms").and_then(serde_json::Value::as_f64).unwrap_or(0.0)),
                );
            }
        }
    }
    if let Some(e) = &pack.exemplar {
        let _ = writeln!(
            t,
            "\n## Exemplar thread {} ({} spans, {} errors)",
            e.thread_id, e.spans_total, e.errors
        );
    }
    if !pack.threads.is_empty() {
        t.push_str("\n## Slowest threads of the window\n");
        for th in &pack.threads {
            let n = |k: &str| th.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            let _ = writeln!(
                t,
                "- {}: {}, {} spans, {} errors",
                th.get("thread_id").and_then(serde_json::Value::as_str).unwrap_or("?"),
                ms_text(n("duration_ms")),
                n("spans"),
                n("errors")
            );
        }
    }
    let _ = write!(t, "\n{}", pack.instructions);
    t
}
