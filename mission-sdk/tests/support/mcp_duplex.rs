//! The official Rust MCP client (rmcp) connected to a Mission Control MCP server over an
//! in-memory duplex pipe (the stdio transport's framing).

use mission_sdk::mcp::MissionMcp;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// A client connected to `server`.
pub async fn connect(server: MissionMcp) -> RunningService<RoleClient, ()> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_end).await.expect("client connects")
}

/// A `tools/call` of tool `x` with the object `v` as its arguments (set `.name`).
pub fn args(v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new("x").with_arguments(v.as_object().cloned().unwrap_or_default())
}

/// A tool result's structured content (panics, showing the result, when there is none).
#[allow(dead_code)] // not every test that connects reads tool results
pub fn structured(r: &CallToolResult) -> &Value {
    r.structured_content.as_ref().unwrap_or_else(|| panic!("structured content: {r:?}"))
}

/// A tool result's text content, concatenated.
#[allow(dead_code)]
pub fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect()
}
