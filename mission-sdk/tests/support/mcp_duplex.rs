//! The official Rust MCP client (rmcp) connected to a Mission Control MCP server over an
//! in-memory duplex pipe (the stdio transport's framing).

use mission_sdk::mcp::MissionMcp;
use rmcp::model::CallToolRequestParams;
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
