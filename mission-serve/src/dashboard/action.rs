//! The dashboard's write routes (`POST`): what an operator does from the page. Each needs an
//! operator token (a tenant-scoped one acts in its tenant only), a JSON body sent as
//! `Content-Type: application/json` (which a cross-site form cannot send without a preflight
//! this server never answers), the token in the `Authorization` header rather than the query
//! string, and no `Origin` other than this server's own; a dashboard over a store on disk has
//! nothing running to act on and answers 409.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use serde_json::{Value, json};

use super::{ApiError, Mode, Shared};
use crate::auth::{Access, Role};
use mission_govern::threads::ThreadCommand;

/// Largest body a write route reads.
const MAX_BODY_BYTES: usize = 4096;

/// The write routes, in axum's path syntax (the tenant-isolation suite checks each).
pub(crate) const ACTION_ROUTES: [&str; 1] = ["/api/threads/{id}/control"];

fn error(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, kind, message: message.into() }
}

/// Refuses a write that is not the page's own: wrong content type, a foreign `Origin`, the
/// token in the query string, or a role below operator.
pub(crate) fn check_write(headers: &HeaderMap, uri: &Uri, access: &Access) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a write needs a JSON body sent as Content-Type: application/json",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a write must come from this dashboard's own page (the Origin header names another site)",
            ));
        }
    }
    if uri.query().is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token="))) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a write takes its token in the Authorization header, not the query string",
        ));
    }
    if access.role < Role::Operator {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs an operator or admin token",
        ));
    }
    Ok(())
}

/// `POST /api/threads/{id}/control` with `{"command": "cancel"|"pause"|"resume", "reason":
/// "...", "tenant": "..."}`: pauses, resumes or cancels a running thread.
pub(crate) fn control_thread(
    shared: &Shared,
    access: &Access,
    uri: &Uri,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let thread_id = super::thread_id_in(uri, "/control")?;
    let registry = match (shared.mode, shared.live.as_ref().and_then(|l| l.threads.as_ref())) {
        (Mode::Live, Some(r)) => r,
        _ => {
            return Err(error(
                StatusCode::CONFLICT,
                "conflict",
                "this dashboard reads a store on disk: nothing runs here to control",
            ));
        }
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the body is limited to {MAX_BODY_BYTES} bytes"
        )));
    }
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let command: ThreadCommand = text("command")
        .ok_or_else(|| ApiError::bad_request("command is required: cancel, pause or resume"))?
        .parse()
        .map_err(|e: mission_govern::Error| ApiError::bad_request(e.to_string()))?;
    if let Some(unknown) = input
        .as_object()
        .and_then(|o| o.keys().find(|k| !["command", "reason", "tenant"].contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "unknown field {unknown:?}: expected command, reason, tenant"
        )));
    }
    let reason = text("reason").unwrap_or("");
    if reason.len() > mission_govern::threads::MAX_REASON_BYTES {
        return Err(ApiError::bad_request("reason is limited to 512 bytes"));
    }
    let by = match &access.tenant {
        Some(t) => format!("dashboard:{}@{t}", access.role.as_str()),
        None => format!("dashboard:{}", access.role.as_str()),
    };
    let (tenant, state) = registry
        .control_scoped(access.tenant.as_deref(), text("tenant"), thread_id, command, &by, reason)
        .map_err(|e| match e {
            mission_govern::threads::ControlError::NotFound(_) => {
                ApiError::not_found(e.to_string())
            }
            other => error(StatusCode::CONFLICT, "conflict", other.to_string()),
        })?;
    Ok(
        json!({"thread_id": thread_id.to_string(), "tenant": tenant, "state": state.as_str(), "by": by}),
    )
}
