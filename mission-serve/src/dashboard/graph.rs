//! `GET /api/graph`: the relationship graph of a window (see [`crate::graph`]) over the store
//! and the live ring, with the host's registered artefacts inside an agent.

use axum::http::Uri;
use mission_core::Timestamp;
use serde_json::{Value, json};

use super::api::{MAX_MINUTES, Params, Select, scan_noting};
use super::row::Row;
use super::{ApiError, Shared};
use crate::graph::{COLUMNS, Fact, GraphBuilder, MAX_NODES};

/// The route.
pub(crate) const ROUTE: &str = "/api/graph";

/// The window when none is asked for, minutes.
const DEFAULT_MINUTES: u64 = 60;

fn fact(row: &Row) -> Fact<'_> {
    Fact {
        kind: &row.kind,
        agent: &row.agent,
        thread_id: row.thread_id.as_deref(),
        parent_span_id: row.parent_span_id,
        name: &row.name,
        duration_ns: row.duration_ns,
        error: row.is_error(),
        model: row.model.as_deref(),
        cost_usd: row.cost_usd,
        decision: row.decision.as_deref(),
        policy: row.policy.as_deref(),
        attributes: &row.attributes,
    }
}

/// `GET /api/graph?minutes=60&limit=10000`.
pub(crate) fn graph(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = Params::parse(uri.query());
    let minutes = p.minutes(Some(DEFAULT_MINUTES))?.unwrap_or(DEFAULT_MINUTES).min(MAX_MINUTES);
    let limit = p.limit(MAX_NODES as u64, MAX_NODES as u64)?;
    let now = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
    let from_ns = now.saturating_sub((minutes as i64).saturating_mul(60_000_000_000));
    let select = Select {
        from_ns: Some(from_ns),
        to_ns: Some(now.saturating_add(1_000_000_000)),
        scope,
        columns: Some(COLUMNS),
        ..Select::default()
    };
    let mut builder = GraphBuilder::new();
    let mut unreadable = Vec::new();
    if scan_noting(shared, &select, &mut |row| builder.add(&fact(row)), &mut unreadable)? {
        builder.scan_truncated();
    }
    if let Some(artefacts) = shared.live.as_ref().and_then(|l| l.artefacts.as_ref()) {
        builder.add_registered(&artefacts.snapshot(scope));
    }
    let mut value = serde_json::to_value(builder.finish(limit)).map_err(ApiError::internal)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("minutes".into(), minutes.into());
        object.insert("limit".into(), limit.into());
        object.insert("from_ms".into(), (from_ns / 1_000_000).into());
        object.insert("to_ms".into(), (now / 1_000_000).into());
        object.insert("unreadable".into(), json!(unreadable));
    }
    Ok(value)
}
