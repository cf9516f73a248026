//! Permission lineage (issue 22): a child thread holds only the intersection of its own
//! permissions and every ancestor's; `permit` in a thread names the ancestor that narrowed a
//! decision; a request the thread does not hold is an escalation with a severity, recorded in
//! the store with the lineage attributes, audited, and explained over MCP.

use std::path::{Path, PathBuf};

use mission_sdk::core::thread::attr;
use mission_sdk::directives::Severity;
use mission_sdk::policy::PolicySet;
use mission_sdk::store::EventRow;
use mission_sdk::threads::PermissionSet;
use mission_sdk::{MissionControl, Thread};

fn temp_root(name: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("mission-control-perm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

fn control(root: &Path) -> MissionControl {
    MissionControl::builder().ignore_environment().with_store_root(root).build().expect("build")
}

fn set(patterns: &[&str]) -> PermissionSet {
    PermissionSet::new(patterns.iter().copied()).expect("valid patterns")
}

/// The permission decisions stored for `thread`.
fn decisions(control: &MissionControl, thread: &str) -> Vec<EventRow> {
    control.flush().expect("flush");
    let store = control.store().expect("store").expect("a store");
    let mut rows = Vec::new();
    for batch in store.query().kind("permission").thread(thread).batches().expect("query") {
        rows.extend(EventRow::from_batch(&batch).expect("decode"));
    }
    rows
}

fn permit(thread: &Thread<'_>, resource: &str) -> mission_sdk::PolicyDecision {
    thread.permit("agent:researcher", "tool_call", resource)
}

#[test]
fn a_child_cannot_widen_its_parents_permissions() {
    let root = temp_root("widen");
    let policy = PolicySet::from_toml_str(
        "[[rule]]\nname = \"no-secret-search\"\neffect = \"deny\"\nresource = \"search_secret\"\n",
    )
    .unwrap();
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_policy(policy)
        .build()
        .expect("build");
    let (planner, researcher) = (control.agent("planner"), control.agent("researcher"));
    let parent = planner.thread_with_permissions(set(&["tool_call:search_*"]));
    // The child asks for every tool: it holds only what its parent holds.
    let child = parent.child_thread_with_permissions(&researcher, set(&["tool_call:*"]));
    let grandchild = child.child_thread(&planner);
    let parent_id = parent.id().to_string();

    for thread in [&parent, &child, &grandchild] {
        let d = permit(thread, "search_web");
        assert!(d.allowed, "{d:?}");
        assert_eq!((d.lineage, d.escalation), (None, None));
        let d = permit(thread, "refund_payment");
        assert!(!d.allowed, "the lineage narrows it: {d:?}");
        let n = d.lineage.expect("the narrowing level is named");
        assert_eq!((n.thread_id.as_str(), n.depth), (parent_id.as_str(), 0));
        assert_eq!(n.rule, "allow [tool_call:search_*]");
        assert_eq!(d.escalation, Some(Severity::Warning), "the default severity");
        assert!(d.reason.contains("escalation"), "{}", d.reason);
    }
    // The child narrows further than its parent: `read` is nowhere in its own set.
    let d = child.permit("agent:researcher", "read", "notes");
    assert_eq!(d.lineage.map(|n| (n.thread_id, n.depth)), Some((child.id().to_string(), 1)));
    // The policy still decides inside what the lineage allows.
    let d = permit(&child, "search_secret");
    assert!(!d.allowed);
    assert_eq!(d.rule.as_deref(), Some("no-secret-search"));
    assert_eq!(d.lineage, None, "not an escalation: the lineage holds it");
    // A thread with no permissions in its lineage is decided by the policy alone.
    let free = researcher.thread();
    let d = permit(&free, "refund_payment");
    assert!(d.allowed && d.lineage.is_none(), "{d:?}");
    drop((grandchild, child, parent, free));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_narrowing_ancestor_is_recorded() {
    let root = temp_root("recorded");
    let control = control(&root);
    let parent = control
        .agent("planner")
        .thread_with_permissions(set(&["tool_call:search_*"]).named("planner-tools").unwrap());
    let child = parent.child_thread(&control.agent("researcher"));
    assert!(permit(&child, "search_web").allowed);
    assert!(!permit(&child, "refund_payment").allowed);
    let rows = decisions(&control, &child.id().to_string());
    assert_eq!(rows.len(), 2, "both decisions are recorded in the child: {rows:?}");
    let allowed = rows.iter().find(|r| r.decision.as_deref() == Some("allow")).expect("allow");
    assert_eq!(allowed.attribute(attr::PERMISSION_NARROWED_BY), None);
    assert_eq!(allowed.resource.as_deref(), Some("search_web"));
    let denied = rows.iter().find(|r| r.decision.as_deref() == Some("deny")).expect("deny");
    assert_eq!(denied.resource.as_deref(), Some("refund_payment"));
    let parent_id = parent.id().to_string();
    assert_eq!(denied.attribute(attr::PERMISSION_NARROWED_BY), Some(parent_id.as_str()));
    assert_eq!(denied.attribute(attr::PERMISSION_ANCESTOR_DEPTH), Some("0"));
    assert_eq!(denied.attribute(attr::PERMISSION_LINEAGE_RULE), Some("planner-tools"));
    assert_eq!(denied.attribute(attr::PERMISSION_ESCALATION), Some("warning"));
    assert_eq!(denied.policy.as_deref(), Some("lineage:planner-tools"));
    drop((child, parent));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_escalation_is_recorded_audited_with_severity() {
    let root = temp_root("audited");
    let control = control(&root);
    let tools = set(&["tool_call:search_*"])
        .with_escalation("tool_call:refund_*", Severity::Critical)
        .unwrap()
        .with_severity(Severity::Info);
    let parent = control.agent("planner").thread_with_permissions(tools);
    let child = parent.child_thread_with_permissions(
        &control.agent("researcher"),
        set(&["tool_call:search_*", "tool_call:refund_*"]),
    );
    let d = permit(&child, "refund_payment");
    assert_eq!((d.allowed, d.escalation), (false, Some(Severity::Critical)));
    // Outside both sets: the nearest level (the child's own, default severity) names it.
    let d = permit(&child, "delete_account");
    assert_eq!(d.escalation, Some(Severity::Warning), "{d:?}");
    assert_eq!(d.lineage.map(|n| n.depth), Some(1));
    // Outside the parent's set only, matching no escalation rule: the parent's severity.
    let d = permit(&parent, "lookup");
    assert_eq!(d.escalation, Some(Severity::Info), "{d:?}");
    let child_id = child.id().to_string();
    let rows = decisions(&control, &child_id);
    let mut severities: Vec<_> =
        rows.iter().filter_map(|r| r.attribute(attr::PERMISSION_ESCALATION)).collect();
    severities.sort_unstable();
    assert_eq!(severities, ["critical", "warning"], "{rows:?}");
    drop((child, parent));
    drop(control);
    let mut audit = Vec::new();
    for entry in std::fs::read_dir(root.join("audit")).expect("audit dir") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        audit
            .extend(text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()));
    }
    let denied: Vec<_> = audit.iter().filter(|r| r["kind"] == "permission_denied").collect();
    assert_eq!(denied.len(), 3, "every escalation is audited: {audit:?}");
    let refund = denied.iter().find(|r| r["detail"]["resource"] == "refund_payment").unwrap();
    assert_eq!(refund["detail"]["escalation"], "critical");
    assert_eq!(refund["detail"]["thread_id"], child_id.as_str());
    assert_eq!(refund["detail"]["lineage"]["depth"], 0);
    assert!(mission_sdk::audit::verify(&root).unwrap().is_ok(), "the chain verifies");
    let _ = std::fs::remove_dir_all(&root);
}

/// The README's permission example, as written there (on a temporary store).
#[test]
fn the_readmes_permission_example_runs() -> Result<(), Box<dyn std::error::Error>> {
    let root = temp_root("readme");
    let control = control(&root);
    let planner = control.agent("planner");
    let run = planner.thread_with_permissions(
        PermissionSet::new(["tool_call:search_*"])?
            .with_escalation("tool_call:refund_*", Severity::Critical)?,
    );
    let child = run.child_thread_with_permissions(
        &control.agent("researcher"),
        PermissionSet::new(["tool_call:*"])?,
    );
    let d = child.permit("agent:researcher", "tool_call", "refund_payment");
    assert!(!d.allowed && d.escalation == Some(Severity::Critical));
    assert_eq!(d.lineage.map(|n| (n.thread_id, n.depth)), Some((run.id().to_string(), 0)));
    drop((child, run));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

#[cfg(all(feature = "mcp", feature = "mcp-client"))]
#[path = "support/mcp_duplex.rs"]
mod mcp_duplex;

/// `explain_permission` through the MCP server inside the agent, with the official client.
#[cfg(all(feature = "mcp", feature = "mcp-client"))]
mod over_mcp {
    use super::mcp_duplex::{args, connect};
    use super::*;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn explain_permission_shows_the_chain_and_the_narrowing_level() {
        let root = temp_root("mcp");
        let control = control(&root);
        let parent = control
            .agent("planner")
            .thread_with_permissions(set(&["tool_call:search_*"]).named("planner-tools").unwrap());
        let child = parent
            .child_thread_with_permissions(&control.agent("researcher"), set(&["tool_call:*"]));
        assert!(!permit(&child, "refund_payment").allowed);
        let client = connect(control.mcp_server()).await;
        let ask = |thread: String, resource: &str| {
            let mut p =
                args(json!({"thread_id": thread, "action": "tool_call", "resource": resource}));
            p.name = "explain_permission".into();
            client.peer().call_tool(p)
        };
        let (parent_id, child_id) = (parent.id().to_string(), child.id().to_string());
        let r = ask(child_id.clone(), "refund_payment").await.expect("answered");
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let v = r.structured_content.expect("structured");
        let x = &v["explanation"];
        assert_eq!(v["running"], true);
        let chain: Vec<&str> = x["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["thread_id"].as_str().unwrap())
            .collect();
        assert_eq!(chain, [parent_id.as_str(), child_id.as_str()], "root first: {v}");
        assert_eq!(x["chain"][0]["permissions"]["name"], "planner-tools");
        assert_eq!(x["chain"][0]["allows"], false);
        assert_eq!(x["chain"][1]["allows"], true);
        assert_eq!(x["chain"][1]["matched"], "tool_call:*");
        assert_eq!(x["allowed"], false);
        assert_eq!(x["narrowed_by"]["thread_id"], parent_id.as_str());
        assert_eq!(x["narrowed_by"]["depth"], 0);
        assert_eq!(x["escalation"], "warning");
        // The recorded escalation comes back from the store.
        let recent = v["recent"].as_array().expect("recent");
        assert!(
            recent.iter().any(|d| d["resource"] == "refund_payment"
                && d["decision"] == "deny"
                && d["narrowed_by"] == parent_id.as_str()
                && d["escalation"] == "warning"),
            "{v}"
        );
        let text: String =
            r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
        assert!(text.contains("narrowed by thread"), "{text}");
        // Allowed: nothing narrows it.
        let v = ask(child_id, "search_web").await.unwrap().structured_content.unwrap();
        assert_eq!(v["explanation"]["allowed"], true);
        assert!(v["explanation"].get("narrowed_by").is_none(), "{v}");
        // A thread that does not run here has no lineage.
        let other = mission_sdk::ThreadId::generate().to_string();
        let v = ask(other, "search_web").await.unwrap().structured_content.unwrap();
        assert_eq!(v["running"], false);
        assert!(v.get("explanation").is_none(), "{v}");
        drop((child, parent));
        let _ = std::fs::remove_dir_all(&root);
    }
}
