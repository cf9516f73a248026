//! `GET /api/diff?a=<thread id>&b=<thread id>`: two threads' steps aligned and compared, with
//! where they first diverge (see [`crate::diff`]). Both threads are read within the
//! principal's tenant (another tenant's thread is a 404), from the store and the live ring.

use axum::http::Uri;
use serde_json::Value;

use super::api::{Params, Select, scan};
use super::row::Row;
use super::{ApiError, Shared};
use crate::diff::{DiffError, SpanFacts, Step, check_id, diff_loaded, steps_of};

/// The route, in axum's path syntax.
pub(crate) const ROUTE: &str = "/api/diff";

fn facts(row: &Row) -> Option<SpanFacts<'_>> {
    Some(SpanFacts {
        start_ns: row.time_ns,
        span_id: row.span_id,
        parent_span_id: row.parent_span_id,
        kind: &row.kind,
        name: &row.name,
        agent: &row.agent,
        duration_ns: row.duration_ns?,
        status: row.status.as_deref(),
        error: row.error.as_deref(),
        model: row.model.as_deref(),
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cost_usd: row.cost_usd,
        attributes: &row.attributes,
    })
}

/// The steps of thread `id` as `scope` may see them, and how many there are (0: unknown).
fn steps(shared: &Shared, scope: Option<&str>, id: &str) -> Result<(Vec<Step>, usize), ApiError> {
    let select = Select { scope, thread: Some(id), ..Select::default() };
    let read = |rows: &mut Vec<Row>| {
        scan(shared, &select, &mut |r| {
            if r.is_span() {
                rows.push(r.clone());
            }
        })
    };
    let mut rows = Vec::new();
    read(&mut rows)?;
    if rows.is_empty() && shared.flush_for_misses() {
        read(&mut rows)?;
    }
    let total = rows.len();
    Ok((steps_of(rows.iter().filter_map(facts)).0, total))
}

/// `GET /api/diff`.
pub(crate) fn diff(shared: &Shared, scope: Option<&str>, uri: &Uri) -> Result<Value, ApiError> {
    let p = Params::parse(uri.query());
    let a = p.get("a").unwrap_or("");
    let b = p.get("b").unwrap_or("");
    for (which, id) in [("a", a), ("b", b)] {
        check_id(which, id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let (steps_a, total_a) = steps(shared, scope, a)?;
    let (steps_b, total_b) = steps(shared, scope, b)?;
    for (which, id, total) in [("a", a, total_a), ("b", b, total_b)] {
        if total == 0 {
            let e = DiffError::NotFound { which, id: id.to_owned() };
            return Err(ApiError::not_found(e.to_string()));
        }
    }
    let answer = diff_loaded((a, steps_a, total_a), (b, steps_b, total_b));
    serde_json::to_value(answer).map_err(ApiError::internal)
}
