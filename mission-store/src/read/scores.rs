//! Scores and feedback as stored: one row per score ([`Store::scores`]) and averages by name
//! ([`Store::score_summary`]).

use std::collections::BTreeMap;

use crate::schema::col;
use crate::{EventRow, Query, Result, Store};

/// One score event, as [`Store::scores`] reads it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScoreRow {
    /// When it was given, ns since the Unix epoch.
    pub time_ns: i64,
    /// Its tenant.
    pub tenant: String,
    /// The agent of the thread it scores.
    pub agent: String,
    /// The thread it scores (32 hex digits).
    pub thread_id: Option<String>,
    /// The span it scores (16 hex digits); `None`: the whole thread, scored from outside.
    pub span_id: Option<String>,
    /// The score's name (`helpfulness`).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its label, if any.
    pub label: Option<String>,
    /// Its comment, if any (omitted unless the tenant captures content).
    pub comment: Option<String>,
    /// Who gave it: `human`, `llm`, `rule`.
    pub source: String,
}

impl ScoreRow {
    fn from_row(row: EventRow) -> Option<Self> {
        Some(ScoreRow {
            time_ns: row.time_ns,
            tenant: row.tenant,
            agent: row.agent,
            thread_id: row.thread_id,
            span_id: row.span_id.map(|s| format!("{s:016x}")),
            name: row.name,
            value: row.score_value?,
            label: row.score_label,
            comment: row.score_comment,
            source: row.score_source.unwrap_or_default(),
        })
    }
}

/// The scores of one name: how many, their mean, lowest and highest.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScoreSummary {
    /// The score's name.
    pub name: String,
    /// How many scores.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

impl Store {
    /// The score events among those `query` selects (every other filter still applies),
    /// newest first.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn scores(&self, query: Query<'_>) -> Result<Vec<ScoreRow>> {
        let query = query.kind("score").columns(&[
            col::TIME,
            col::TENANT,
            col::AGENT,
            col::THREAD_ID,
            col::SPAN_ID,
            col::NAME,
            col::SCORE_SOURCE,
            col::SCORE_VALUE,
            col::SCORE_LABEL,
            col::SCORE_COMMENT,
        ]);
        let mut out = Vec::new();
        for batch in query.iter()? {
            out.extend(EventRow::from_batch(&batch?)?.into_iter().filter_map(ScoreRow::from_row));
        }
        out.sort_by(|a, b| b.time_ns.cmp(&a.time_ns).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Per score name among the events `query` selects: count, mean, min and max, by name.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn score_summary(&self, query: Query<'_>) -> Result<Vec<ScoreSummary>> {
        Ok(summarize(&self.scores(query)?))
    }
}

/// Count, mean, min and max of `scores` per name, by name.
pub fn summarize(scores: &[ScoreRow]) -> Vec<ScoreSummary> {
    let mut by_name: BTreeMap<&str, (u64, f64, f64, f64)> = BTreeMap::new();
    for s in scores {
        let e =
            by_name.entry(s.name.as_str()).or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        e.0 += 1;
        e.1 += s.value;
        e.2 = e.2.min(s.value);
        e.3 = e.3.max(s.value);
    }
    by_name
        .into_iter()
        .map(|(name, (count, sum, min, max))| ScoreSummary {
            name: name.to_owned(),
            count,
            mean: sum / count as f64,
            min,
            max,
        })
        .collect()
}
