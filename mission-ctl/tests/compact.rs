//! `mission-ctl compact` and `serve --compact-every` run as processes over a store of small
//! files: the files are merged, the row count is exact, bad flags are exit code 2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mission_core::{
    Backpressure, EventBody, Level, LogRecord, Pipeline, SpanId, Symbol, Text, ThreadContext,
};
use mission_store::{ParquetSink, Store, StoreConfig};

/// How long a step may take on a loaded machine before the test fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mission-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server process, killed if the test ends before it stopped.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

/// Writes `files` small files of `rows` events each (one flush each) of tenant `acme`.
fn small_files(root: &Path, files: u64, rows: u64) -> u64 {
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(StoreConfig::at(root)).expect("sink"))
        .start()
        .expect("pipeline");
    let recorder = pipeline.recorder();
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("fleet-agent"));
    let name = Symbol::intern("numbered");
    let mut seq = 0;
    for _ in 0..files {
        for _ in 0..rows {
            seq += 1;
            recorder.record(thread.event(
                name,
                SpanId(seq),
                EventBody::Log(LogRecord {
                    level: Level::Info,
                    target: name,
                    message: Text::new("small file"),
                }),
            ));
        }
        pipeline.flush().expect("flush");
    }
    pipeline.shutdown();
    seq
}

#[test]
fn compact_merges_small_files_and_checks_its_flags() {
    let dir = TempDir::new("compact");
    let n = small_files(&dir.0, 6, 20);
    let store = dir.0.to_str().expect("utf-8");
    assert!(Store::open(&dir.0).expect("open").files().len() >= 6);
    let out = ctl(&["compact", "--store", store, "--min-files", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(report["files_merged"].as_u64().is_some_and(|m| m >= 6), "{report}");
    assert_eq!(report["rows"], n);
    let opened = Store::open(&dir.0).expect("open");
    assert_eq!(opened.files().len(), 1);
    assert_eq!(opened.query().count().expect("count"), n);
    for bad in [
        &["--target-file-mb", "0"][..],
        &["--target-file-mb", "5000"],
        &["--min-files", "1"],
        &["--older-than", "soon"],
    ] {
        let out = ctl(&[&["compact", "--store", store][..], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = ctl(&["serve", "--store", store, "--compact-every", "9d"]);
    assert_eq!(out.status.code(), Some(2), "--compact-every is range-checked");
}

#[test]
fn serve_compacts_on_its_schedule() {
    let dir = TempDir::new("serve-compact");
    let n = small_files(&dir.0, 10, 10);
    let store = dir.0.to_str().expect("utf-8");
    let mut server = Server(Some(
        Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args([
                "serve",
                "--store",
                store,
                "--addr",
                "127.0.0.1:0",
                "--no-grpc",
                "--no-dashboard",
                "--no-mcp",
                "--compact-every",
                "1s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    ));
    let child = server.0.as_mut().expect("running");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (lines, printed) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // An explicit wait for the scheduled run's report line (on stderr).
    let compacted = loop {
        let line = printed.recv_timeout(PATIENCE).expect("serve compacts within its schedule");
        if line.starts_with("compacted ") {
            break line;
        }
    };
    assert!(compacted.starts_with("compacted 10 files into 1"), "{compacted}");
    let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let mut child = server.0.take().expect("running");
    let (exited, exit) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let status = exit.recv_timeout(PATIENCE).expect("serve stops on SIGTERM").expect("wait");
    assert!(status.success(), "serve exited with {status}");
    let opened = Store::open(&dir.0).expect("open");
    assert_eq!(opened.query().count().expect("count"), n, "every row once");
}
