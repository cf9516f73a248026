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

/// What answers a write route.
pub(crate) type Action = fn(&Shared, &Access, &Uri, &Bytes) -> Result<Value, ApiError>;

/// The write routes, in axum's path syntax, and what answers them (the tenant-isolation suite
/// checks each).
pub(crate) const ACTION_ROUTES: [(&str, Action); 3] = [
    ("/api/threads/{id}/control", control_thread),
    ("/api/approvals/{id}", decide_approval),
    ("/api/directives/{name}/run", run_directive),
];

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
    let by = actor(access);
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

/// Who a dashboard principal is, as recorded: `dashboard:<role>`, or `dashboard:<role>@<tenant>`.
fn actor(access: &Access) -> String {
    match &access.tenant {
        Some(t) => format!("dashboard:{}@{t}", access.role.as_str()),
        None => format!("dashboard:{}", access.role.as_str()),
    }
}

/// The running directives, or 409 over a store on disk.
fn directives(shared: &Shared) -> Result<&mission_govern::directives::Directives, ApiError> {
    match (shared.mode, shared.live.as_ref().and_then(|l| l.directives.as_ref())) {
        (Mode::Live, Some(d)) => Ok(d),
        _ => Err(error(
            StatusCode::CONFLICT,
            "conflict",
            "this dashboard reads a store on disk: no directive runs here",
        )),
    }
}

/// The body as a JSON object with only `allowed` keys.
fn body_of(body: &Bytes, allowed: &[&str]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the body is limited to {MAX_BODY_BYTES} bytes"
        )));
    }
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = input else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field {unknown:?}: expected {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

fn directive_error(e: mission_govern::directives::DirectiveError) -> ApiError {
    use mission_govern::directives::DirectiveError as E;
    match e {
        E::NotFound(_) | E::NoApproval(_) => ApiError::not_found(e.to_string()),
        E::NotAllowed(_) => error(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        E::Decided { .. } => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// `POST /api/approvals/{id}` with `{"decision": "approve"|"reject", "note": "..."}`: decides a
/// pending approval of the principal's tenant.
pub(crate) fn decide_approval(
    shared: &Shared,
    access: &Access,
    uri: &Uri,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let raw = uri.path().rsplit('/').next().unwrap_or("");
    let id: u64 = raw.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "an approval id is a number, not {:?}",
            raw.chars().take(40).collect::<String>()
        ))
    })?;
    let directives = directives(shared)?;
    let input = body_of(body, &["decision", "note"])?;
    let verdict: mission_govern::directives::Verdict = input
        .get("decision")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("decision is required: approve or reject"))?
        .parse()
        .map_err(ApiError::bad_request)?;
    let note = input.get("note").and_then(Value::as_str).unwrap_or("");
    if note.chars().count() > mission_govern::directives::MAX_NOTE_CHARS {
        return Err(ApiError::bad_request("note is limited to 1,024 characters"));
    }
    let approval = directives
        .decide(id, verdict, &actor(access), note, access.tenant.as_deref())
        .map_err(directive_error)?;
    Ok(serde_json::to_value(approval).unwrap_or_default())
}

/// `POST /api/directives/{name}/run` with `{"thread_id": "...", "tenant": "..."}` (both
/// optional): runs a directive by hand, in the principal's tenant (an unscoped principal: the
/// named tenant, else the agent's own).
pub(crate) fn run_directive(
    shared: &Shared,
    access: &Access,
    uri: &Uri,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let name = uri.path().trim_end_matches("/run").rsplit('/').next().unwrap_or("");
    let name = percent_decoded(name)?;
    let directives = directives(shared)?;
    let input = body_of(body, &["thread_id", "tenant"])?;
    let thread = match input.get("thread_id").and_then(Value::as_str) {
        Some(id) => Some(id.parse::<mission_core::ThreadId>().map_err(|_| {
            ApiError::bad_request(format!(
                "a thread id is 32 lowercase hex digits, not {:?}",
                id.chars().take(40).collect::<String>()
            ))
        })?),
        None => None,
    };
    let asked = input.get("tenant").and_then(Value::as_str);
    let own = shared.live.as_ref().map(|l| l.tenant.as_str());
    let tenant = match (&access.tenant, asked) {
        (Some(mine), Some(other)) if mine != other => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this token is scoped to tenant {mine}: it runs directives for {mine} only"
                ),
            ));
        }
        (Some(mine), _) => Some(mine.as_str()),
        (None, Some(other)) => Some(other),
        (None, None) => own,
    };
    let run = directives.run(&name, &actor(access), tenant, thread).map_err(directive_error)?;
    Ok(serde_json::to_value(run).unwrap_or_default())
}

/// A path segment with its `%XX` escapes decoded.
fn percent_decoded(segment: &str) -> Result<String, ApiError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(ApiError::bad_request("a bad %-escape in the path"));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("the path is not UTF-8"))
}
