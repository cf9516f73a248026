//! A failure while building keeps its cause: an audit trail that cannot be opened is an
//! `Error::Audit` whose source chain reaches the operating system's error (it used to be an
//! `Error::Config` holding only the message).

use std::error::Error as _;

use mission_sdk::{Error, MissionControl};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

#[test]
fn an_audit_trail_that_cannot_be_opened_keeps_its_io_error() {
    let dir = TempDir::new("audit-blocked");
    // The audit trail's directory is taken by a file.
    std::fs::write(dir.0.join(mission_sdk::audit::AUDIT_DIR), b"not a directory").expect("file");
    let err = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .without_models()
        .with_flush_on_panic(false)
        .build()
        .expect_err("the audit trail cannot be opened");
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
    let mut source = err.source();
    let mut found_io = false;
    while let Some(cause) = source {
        found_io |= cause.downcast_ref::<std::io::Error>().is_some();
        source = cause.source();
    }
    assert!(found_io, "the io::Error is in the source chain: {err}");
    assert!(err.to_string().contains("audit"), "{err}");
}
