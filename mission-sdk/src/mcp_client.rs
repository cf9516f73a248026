//! An agent's own MCP client calls, traced (feature `mcp-client`): [`call_tool`] calls a tool
//! on an MCP server with the official Rust SDK's client (`rmcp`), records the call as a tool
//! span of the agent and hands the server the span's W3C trace context in the request's
//! `params._meta.traceparent` (MCP SEP-414), so a server that continues it (Mission Control's
//! own does) records its work in the same trace, under the agent's span.
//!
//! ```no_run
//! # #[allow(dead_code)]
//! # async fn demo(control: &mission_sdk::MissionControl, peer: &rmcp::Peer<rmcp::RoleClient>) {
//! use rmcp::model::CallToolRequestParams;
//! let thread = control.agent("support-bot").thread();
//! let params = CallToolRequestParams::new("lookup_order")
//!     .with_arguments(serde_json::json!({"id": 42}).as_object().cloned().unwrap_or_default());
//! match mission_sdk::mcp_client::call_tool(&thread, peer, params, None).await {
//!     Ok(answer) => println!("{answer:?}"),
//!     Err(e) => eprintln!("the server did not answer: {e}"),
//! }
//! # }
//! ```

use rmcp::model::{CallToolRequestParams, CallToolResult, RequestParamsMeta};
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleClient};

use crate::agent::{Span, Thread};

/// Where the call's span goes: under a thread's root span or under any span.
pub trait Parent<'c> {
    /// A tool-call span named `tool`, child of this parent.
    fn tool_span(&self, tool: &str) -> Span<'c>;
}

impl<'c> Parent<'c> for Thread<'c> {
    fn tool_span(&self, tool: &str) -> Span<'c> {
        self.tool_call(tool)
    }
}

impl<'c> Parent<'c> for Span<'c> {
    fn tool_span(&self, tool: &str) -> Span<'c> {
        self.tool_call(tool)
    }
}

/// What the span records of an MCP session id: `sha256:` and the first 32 hex digits of its
/// SHA-256 (a session id is a capability; the digest still correlates one session's calls),
/// the same digest Mission Control's MCP server records.
pub fn session_digest(session_id: &str) -> String {
    let mut hex = mission_govern::erasure::sha256_hex(session_id.as_bytes());
    hex.truncate(32);
    format!("sha256:{hex}")
}

/// Calls the tool `params.name` through `peer` as a tool span under `parent`: the span is named
/// after the tool and carries `mcp.method.name = tools/call`, `gen_ai.tool.name`,
/// `gen_ai.operation.name = execute_tool`, `mcp.server.name` (the name the server gave in its
/// initialize answer) and, when `session_id` is given (the
/// `Mcp-Session-Id` of a streamable HTTP session), `mcp.session.id` as its
/// [digest](session_digest). The request carries the span's `traceparent` in `_meta` (any
/// other `_meta` of `params` is kept). A result with `isError` marks the span failed with the
/// result's first text; so does a transport or protocol error, which is returned as is.
///
/// # Errors
/// What [`Peer::call_tool`] returns: the transport failed, the server answered with a JSON-RPC
/// error (an unknown tool), or an unexpected response.
pub async fn call_tool<'c>(
    parent: &impl Parent<'c>,
    peer: &Peer<RoleClient>,
    mut params: CallToolRequestParams,
    session_id: Option<&str>,
) -> Result<CallToolResult, ServiceError> {
    let mut span = parent.tool_span(&params.name);
    span.set_attribute("mcp.method.name", "tools/call")
        .set_attribute("gen_ai.tool.name", params.name.as_ref())
        .set_attribute("gen_ai.operation.name", "execute_tool");
    if let Some(id) = session_id {
        span.set_attribute("mcp.session.id", session_digest(id).as_str());
    }
    // Which server: what its initialize answer named (so directives group by MCP server).
    if let Some(name) =
        peer.peer_info().and_then(|i| i.server_info.as_ref().map(|s| s.name.clone()))
    {
        span.set_attribute(mission_govern::directives::ATTR_MCP_SERVER, name.as_str());
    }
    params.set_traceparent(&span.traceparent());
    let result = peer.call_tool(params).await;
    match &result {
        Ok(r) if r.is_error == Some(true) => {
            let message = r
                .content
                .iter()
                .find_map(|c| c.as_text().map(|t| t.text.clone()))
                .unwrap_or_else(|| "the tool reported an error".into());
            span.set_error(&message);
        }
        Ok(_) => {
            span.set_ok();
        }
        Err(e) => {
            span.set_error(&e.to_string());
        }
    }
    span.end();
    result
}
