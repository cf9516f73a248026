//! A process that panics delivers what it recorded, even if `MissionControl` is never dropped.

use std::process::Command;

#[test]
fn a_panic_flushes_everything_recorded_to_the_store() {
    let exe = std::env::current_exe().expect("test binary");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let bin = profile_dir.join("examples").join("panicking_agent");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--quiet", "-p", "mission-sdk", "--example", "panicking_agent"])
            .status()
            .expect("cargo build");
        assert!(ok.success());
    }
    let root = std::env::temp_dir().join(format!("mission-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let output = Command::new(&bin).arg(&root).arg("250").output().expect("run");
    assert!(!output.status.success(), "the agent must have panicked");
    assert!(String::from_utf8_lossy(&output.stderr).contains("the agent crashed"));
    let store = mission_sdk::Store::open(&root).expect("open");
    assert!(
        store.open_report().leftovers.is_empty(),
        "files were finalized, not left half-written"
    );
    assert_eq!(store.query().count().expect("count"), 500, "250 threads × (tool call + run)");
    let _ = std::fs::remove_dir_all(&root);
}
