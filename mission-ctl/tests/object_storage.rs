//! `mission-ctl` reads a store on object storage: a store written by the sink, uploaded to the
//! real loopback S3 server (`mission-s3-server`, tests/s3-server), read with
//! `--store s3://bucket/prefix` and the AWS_* environment, gives the answers the local store
//! gives; wrong credentials are a clear error (exit code 3) that does not show the secret.

#![cfg(feature = "s3")]

#[path = "../../mission-store/tests/integration/s3_server.rs"]
mod s3_server;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use mission_core::{Backpressure, Pipeline};
use mission_examples::{Workload, simulate};
use mission_store::{ParquetSink, Store, StoreConfig};
use s3_server::S3Server;
use serde_json::Value;

fn write_store(root: &Path) {
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(StoreConfig::at(root)).expect("sink"))
        .start()
        .expect("start");
    simulate(&pipeline.recorder(), &Workload { threads: 40, ..Workload::default() });
    pipeline.shutdown();
}

/// Uploads the store's finalized files under `prefix` with `mission-ctl upload --keep-local`
/// (the local files stay, for the comparisons), returning how many went up.
fn upload(server: &S3Server, local: &Path, prefix: &str) -> usize {
    let url = format!("s3://{}/{prefix}", server.bucket);
    let local = local.to_str().expect("utf-8");
    let out = ctl(
        server,
        &server.env(),
        &["upload", "--store", local, "--to", &url, "--keep-local", "--json"],
    );
    let stats = json(&out);
    assert_eq!(stats["error"], Value::Null, "{stats}");
    assert_eq!(stats["files_pending"], 0, "{stats}");
    let uploaded = stats["files_uploaded"].as_u64().expect("count") as usize;
    assert_eq!(uploaded, Store::open(local).expect("open").files().len());
    uploaded
}

fn ctl(server: &S3Server, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mission-ctl"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let _ = server;
    command.envs(env.iter().map(|(k, v)| (k, v))).args(args).output().expect("run mission-ctl")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn reading_commands_work_on_a_store_in_a_bucket() {
    let server = S3Server::start("mission-ctl-store");
    let local = std::env::temp_dir().join(format!("mission-ctl-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&local);
    write_store(&local);
    assert!(upload(&server, &local, "prod/data") > 0);
    let url = format!("s3://{}/prod/data", server.bucket);
    let local_arg = local.to_str().expect("utf-8");
    let env = server.env();

    let remote_threads = json(&ctl(&server, &env, &["threads", &url, "--limit", "1000", "--json"]));
    let local_threads =
        json(&ctl(&server, &[], &["threads", local_arg, "--limit", "1000", "--json"]));
    assert_eq!(remote_threads.as_array().expect("array").len(), 40);
    assert_eq!(remote_threads, local_threads);

    let first = remote_threads[0]["thread_id"].as_str().expect("id").to_owned();
    let remote_thread = json(&ctl(&server, &env, &["thread", &url, &first, "--json"]));
    assert_eq!(remote_thread, json(&ctl(&server, &[], &["thread", local_arg, &first, "--json"])));

    let window = ["--since", "7d", "--group-by", "operation,model", "--json"];
    let remote_stats = json(&ctl(&server, &env, &[&["stats", &url][..], &window].concat()));
    let local_stats = json(&ctl(&server, &[], &[&["stats", local_arg][..], &window].concat()));
    assert!(!remote_stats.as_array().expect("array").is_empty());
    assert_eq!(remote_stats, local_stats);

    let cost = ["--since", "7d", "--json"];
    assert_eq!(
        json(&ctl(&server, &env, &[&["cost", &url][..], &cost].concat())),
        json(&ctl(&server, &[], &[&["cost", local_arg][..], &cost].concat())),
    );

    // tail (a Follower over the bucket's listing) prints the same newest events.
    let tail = ["--lines", "20", "--no-follow", "--json"];
    let remote_tail = ctl(&server, &env, &[&["tail", &url][..], &tail].concat());
    let local_tail = ctl(&server, &[], &[&["tail", local_arg][..], &tail].concat());
    assert!(remote_tail.status.success(), "{}", String::from_utf8_lossy(&remote_tail.stderr));
    assert_eq!(String::from_utf8_lossy(&remote_tail.stdout).lines().count(), 20);
    assert_eq!(remote_tail.stdout, local_tail.stdout);

    // Wrong credentials: exit code 3 and a message that says so, without the secret.
    let secret = "not-the-secret-at-all-31337";
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    wrong.push(("AWS_SECRET_ACCESS_KEY", secret.to_owned()));
    let denied = ctl(&server, &wrong, &["threads", &url]);
    assert_eq!(denied.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("access denied") && stderr.contains(&url), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");

    // `upload` with them: exit code 1, the reason, and every local file still there.
    let before = Store::open(&local).expect("open").files().len();
    let refused =
        ctl(&server, &wrong, &["upload", "--store", local_arg, "--to", &format!("{url}-2")]);
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(stdout.contains("access denied") && !stdout.contains(secret), "{stdout}");
    assert_eq!(Store::open(&local).expect("open").files().len(), before);

    // Without --keep-local the local files go once the bucket has them; run again, nothing
    // is sent twice.
    let moved = ctl(
        &server,
        &env,
        &["upload", "--store", local_arg, "--to", &format!("{url}-3"), "--json"],
    );
    assert_eq!(json(&moved)["files_uploaded"], before as u64);
    assert!(Store::open(&local).expect("open").files().is_empty());
    let again = ctl(
        &server,
        &env,
        &["upload", "--store", local_arg, "--to", &format!("{url}-3"), "--json"],
    );
    assert_eq!(json(&again)["files_uploaded"], 0);
    let sql = ctl(
        &server,
        &env,
        &[
            "sql",
            "SELECT count(DISTINCT thread_id) AS n FROM events",
            "--store",
            &format!("{url}-3"),
            "--format",
            "json",
        ],
    );
    assert_eq!(json(&sql)[0]["n"], 40);

    // An unsupported scheme is a clear error too.
    let bad = ctl(&server, &env, &["threads", "ftp://host/x"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not supported"));
    let _ = std::fs::remove_dir_all(&local);
}
