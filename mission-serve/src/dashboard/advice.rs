//! `GET /api/recommendations`: [`crate::advice::recommend`] over the window, within the
//! principal's tenant (see `API.md`).

use axum::http::Uri;
use mission_core::Timestamp;
use mission_store::Store;
use serde_json::{Value, json};

use super::api::Params;
use super::{ApiError, Shared};

/// The route.
pub(crate) const ROUTE: &str = "/api/recommendations";

/// `GET /api/recommendations?minutes=` (default 1440: a day).
pub(crate) fn recommendations(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Value, ApiError> {
    let p = Params::parse(uri.query());
    let minutes = p.minutes(Some(1440))?.unwrap_or(1440);
    let Some(root) = &shared.root else {
        return Ok(json!({
            "minutes": minutes, "tenant": scope, "recommendations": [], "rows": 0,
            "truncated": false, "unreadable": [], "store": false,
        }));
    };
    // Inside an agent: what was recorded a moment ago reaches the store first.
    shared.flush_for_misses();
    let store = Store::open_scoped(root, scope).map_err(ApiError::internal)?;
    let now = Timestamp::now().0;
    let from = Timestamp(now.saturating_sub(minutes.saturating_mul(60_000_000_000)));
    let query = store.query().time_range(from, Timestamp(now.saturating_add(1_000_000_000)));
    let advice = crate::advice::recommend(query).map_err(ApiError::internal)?;
    let unreadable: Vec<String> = store.skipped_files().iter().map(ToString::to_string).collect();
    Ok(json!({
        "minutes": minutes,
        "tenant": scope,
        "recommendations": advice.recommendations,
        "rows": advice.rows,
        "truncated": advice.truncated,
        "unreadable": unreadable,
        "store": true,
    }))
}
