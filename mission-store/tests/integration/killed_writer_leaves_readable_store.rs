use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mission_store::Store;

use crate::TempDir;

/// The `crash_writer` example binary, built if needed.
fn crash_writer() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile_dir.join("examples").join("crash_writer");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "mission-store", "--example", "crash_writer"])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

#[test]
fn sigkill_mid_stream_leaves_finalized_files_intact() {
    let dir = TempDir::new("sigkill");
    let mut child = Command::new(crash_writer())
        .arg(&dir.0)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn writer");
    // Wait until the writer has finalized a few files and has another one open, then kill it
    // without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (files, open) = Store::open(&dir.0)
            .map(|s| (s.files().len(), s.open_report().leftovers.len()))
            .unwrap_or((0, 0));
        if files >= 3 && open > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the writer finalized no files");
        assert!(child.try_wait().expect("wait").is_none(), "the writer exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let mut store = Store::open(&dir.0).expect("the store opens cleanly");
    assert!(store.files().len() >= 3);
    let mut iter = store.query().iter().expect("query");
    let rows: usize =
        iter.by_ref().map(|b| b.expect("every finalized file reads").num_rows()).sum();
    assert!(rows > 0);
    assert!(iter.stats().skipped.is_empty(), "{:?}", iter.stats().skipped);
    // The writer keeps a file open at all times, so the kill leaves its temporary file behind:
    // reported, never read, and removable.
    let leftovers = store.open_report().leftovers.clone();
    assert!(!leftovers.is_empty(), "a killed writer leaves its open file");
    assert!(leftovers.iter().all(|p| p.to_string_lossy().ends_with(".tmp")));
    assert_eq!(store.remove_leftovers().expect("remove"), leftovers.len());
    assert!(Store::open(&dir.0).expect("open").open_report().leftovers.is_empty());
}
