//! A sink failure is never counted as a delivery: events the Parquet sink accepted and then
//! could not write are counted failed, not delivered, in the shutdown report and in health.

use mission_core::Timestamp;
use mission_store::StoreConfig;

use crate::{TempDir, thread_events, write};

/// The partition directory cannot be made (a file is in its way, as "File name too long" did
/// for a 300-character tenant): the shutdown used to report every event delivered, 0 failed.
#[test]
fn events_lost_at_shutdown_are_failed_not_delivered() {
    let dir = TempDir::new("lost-at-shutdown");
    let now = Timestamp::now().0 - 60_000_000_000;
    std::fs::create_dir_all(dir.0.join("events")).expect("dir");
    std::fs::write(dir.0.join("events").join("tenant=blocked"), b"in the way").expect("write");
    let events: Vec<_> = thread_events("blocked", "a", now)
        .into_iter()
        .chain(thread_events("fine", "a", now))
        .collect();
    let report = write(StoreConfig::at(&dir.0), events);
    let parquet = &report.sinks[0];
    assert_eq!((parquet.events, parquet.failed_events), (5, 5), "{parquet:?}");
    assert!(parquet.errors >= 1);
    assert_eq!(report.accounting.recorded, 10);
}
