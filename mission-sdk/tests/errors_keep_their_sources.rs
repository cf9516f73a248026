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

#[test]
fn a_damaged_in_flight_file_is_a_parse_error_with_the_json_error() {
    let dir = TempDir::new("in-flight-damaged");
    std::fs::write(dir.0.join(mission_sdk::IN_FLIGHT_FILE), b"{ not json").expect("file");
    let err = mission_sdk::read_in_flight_file(&dir.0).expect_err("not the expected JSON");
    let Error::Parse { path, .. } = &err else { panic!("a parse error: {err:?}") };
    assert_eq!(path, &dir.0.join(mission_sdk::IN_FLIGHT_FILE));
    let source = err.source().expect("a source");
    assert!(source.downcast_ref::<serde_json::Error>().is_some(), "{source:?}");
}

#[cfg(feature = "dashboard")]
#[test]
fn a_dashboard_on_a_taken_port_keeps_the_operating_systems_error() {
    // A port already bound, without SO_REUSEPORT: binding it again is refused.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = TempDir::new("dashboard-taken");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .without_models()
        .with_flush_on_panic(false)
        .build()
        .expect("build");
    let err = control
        .serve_dashboard(mission_sdk::DashboardConfig::loopback(port))
        .expect_err("the port is taken");
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
    let io = err.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("io source");
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse, "{io}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    let _ = control.shutdown();
}
