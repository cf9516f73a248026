//! `GET /api/threads/{id}/permissions[?action=&resource=&tenant=]`: a thread's permission flow
//! (see [`crate::lineage`]) — its lineage from the live registry, root first, with each level's
//! permission set, and the decision for `action` on `resource` when both are given; and its
//! last permission decisions from the store. A principal scoped to a tenant sees its tenant's
//! threads only; over a store on disk nothing runs, so only the decisions are shown.

use axum::http::Uri;
use serde_json::Value;

use super::api::Params;
use super::{ApiError, Shared};
use crate::lineage::{FlowError, flow};

/// The route, in axum's path syntax.
pub(crate) const ROUTE: &str = "/api/threads/{id}/permissions";

/// Longest `action` or `resource` asked about, in bytes.
const MAX_REQUEST_BYTES: usize = 1024;

/// `GET /api/threads/{id}/permissions`.
pub(crate) fn permissions(
    shared: &Shared,
    scope: Option<&str>,
    uri: &Uri,
) -> Result<Value, ApiError> {
    let thread_id = super::thread_id_in(uri, "/permissions")?;
    let params = Params::parse(uri.query());
    let request = params.get("action").zip(params.get("resource"));
    if request.is_some_and(|(a, r)| a.len() > MAX_REQUEST_BYTES || r.len() > MAX_REQUEST_BYTES) {
        return Err(ApiError::bad_request(format!(
            "action and resource are limited to {MAX_REQUEST_BYTES} bytes"
        )));
    }
    shared.flush_for_misses();
    // A store not written yet has no decisions to show.
    let store =
        shared.root.as_ref().and_then(|root| mission_store::Store::open_scoped(root, scope).ok());
    let registry = shared.live.as_ref().and_then(|l| l.threads.as_deref());
    let answer = flow(registry, store.as_ref(), scope, params.get("tenant"), thread_id, request)
        .map_err(|e| match e {
            FlowError::Ambiguous(_) => ApiError::bad_request(e.to_string()),
            FlowError::Store(_) => ApiError::internal(e),
        })?;
    serde_json::to_value(answer).map_err(ApiError::internal)
}
