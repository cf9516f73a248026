//! The `health` tool's and `mission://health` resource's answer, read by both.

use rmcp::ErrorData;

use super::{Source, internal};

/// The health of the agent (when inside one) and of its store, as a principal of `scope` may
/// see it: for one tenant, the agent's the SDK's `TenantHealth` and that tenant's
/// files only, without the store's path or file paths (unreadable files are named relative to
/// the store).
pub(crate) fn health(source: &Source, scope: Option<&str>) -> Result<serde_json::Value, ErrorData> {
    let agent = source.live.as_ref().map(|l| (l.health)(scope));
    let store = match &source.root {
        Some(root) if mission_store::store_exists(root) && scope.is_some() => {
            let check = source.store(scope)?.check().map_err(internal)?;
            let relative =
                |p: &std::path::Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
            serde_json::json!({
                "files": check.files,
                "bytes": check.bytes,
                "events": check.events,
                "leftovers": check.leftovers.len(),
                "unreadable": check.unreadable.iter().map(|(p, r)| format!("{}: {}", relative(p), r.replace(&root.display().to_string(), "<store>"))).collect::<Vec<_>>(),
            })
        }
        Some(_) if scope.is_some() => {
            serde_json::json!({ "files": 0, "bytes": 0, "events": 0, "leftovers": 0, "unreadable": [] })
        }
        Some(root) if mission_store::store_exists(root) => {
            let check = source.store(None)?.check().map_err(internal)?;
            serde_json::json!({
                "root": mission_store::redact_url(&root.display().to_string()),
                "files": check.files,
                "bytes": check.bytes,
                "events": check.events,
                "leftovers": check.leftovers.len(),
                "unreadable": check.unreadable.iter().map(|(p, r)| format!("{}: {r}", p.display())).collect::<Vec<_>>(),
            })
        }
        Some(root) => {
            serde_json::json!({ "root": root.display().to_string(), "files": 0, "bytes": 0, "events": 0, "leftovers": 0, "unreadable": [] })
        }
        None => serde_json::Value::Null,
    };
    Ok(serde_json::json!({ "agent": agent, "store": store }))
}
