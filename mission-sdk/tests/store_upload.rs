//! An agent's store uploaded to object storage as it is written
//! (`MissionControlBuilder::with_store_upload`), against the real loopback S3 server: what
//! the agent recorded is in the bucket after shutdown, once, and the local directory is empty;
//! a bad URL is a typed configuration error.

#[path = "../../mission-store/tests/integration/s3_server.rs"]
mod s3_server;
#[path = "support/temp_dir.rs"]
mod temp_dir;

use mission_sdk::{Error, MissionControl};
use mission_store::Store;
use s3_server::S3Server;
use temp_dir::TempDir;

#[test]
fn what_an_agent_records_is_in_the_bucket_after_shutdown_once() {
    let server = S3Server::start("mission-sdk-upload");
    let dir = TempDir::new("sdk-upload");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .with_store_upload_root(server.remote_root("agents"))
        .build()
        .expect("build");
    let agent = control.agent("support-bot");
    for i in 0..25 {
        let mut thread = agent.thread();
        thread.root().set_attribute("i", i as i64);
        thread.tool_call("lookup_order").end();
        drop(thread);
    }
    assert!(control.upload_stats().is_some());
    control.shutdown();

    let bucket = Store::open_remote(server.remote_root("agents")).expect("open bucket");
    assert!(!bucket.files().is_empty());
    let spans = bucket.query().kind("agent_step").count().expect("count");
    assert_eq!(spans, 25);
    assert_eq!(bucket.query().kind("tool_call").count().expect("count"), 25);
    let local = Store::open(&dir.0).expect("open local");
    assert!(local.files().is_empty(), "uploaded files leave the local directory");
}

#[test]
fn a_bad_upload_url_is_a_typed_configuration_error() {
    let dir = TempDir::new("sdk-upload-bad");
    let err = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_store_upload("ftp://nowhere/x")
        .build()
        .unwrap_err();
    match err {
        Error::Config { origin, message } => {
            assert_eq!(origin, "with_store_upload");
            assert!(message.contains("ftp://nowhere/x"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_store_upload("s3://bucket/x")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}
