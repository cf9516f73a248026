use std::time::Duration;

use mission_core::Timestamp;
use mission_store::{Store, StoreConfig};

use crate::{TempDir, thread_events, write};

const HOUR: u64 = 3_600_000_000_000;

#[test]
fn retention_deletes_only_expired_partitions() {
    let dir = TempDir::new("retention");
    let now = Timestamp::now().0;
    let mut events = thread_events("acme", "a", now - 5 * HOUR);
    events.extend(thread_events("acme", "a", now - 60_000_000_000));
    events.extend(thread_events("other", "a", now - 4 * HOUR));
    write(StoreConfig::at(&dir.0), events);
    let mut store = Store::open(&dir.0).expect("open");
    assert_eq!(store.query().count().expect("count"), 15);
    let removed =
        store.apply_retention(Duration::from_secs(2 * 3600), Timestamp(now)).expect("retention");
    assert_eq!(removed, 2);
    assert_eq!(store.query().count().expect("count"), 5);
    assert_eq!(store.query().tenant("other").count().expect("count"), 0);
    assert!(
        !dir.0.join("events").join("tenant=other").exists(),
        "empty tenant directories are removed"
    );
}

#[test]
fn erasure_rewrites_files_without_the_erased_events() {
    let dir = TempDir::new("erase");
    let now = Timestamp::now().0 - 60_000_000_000;
    let mut events = Vec::new();
    for i in 0..20 {
        events.extend(thread_events("acme", "a", now + i * 10_000_000));
    }
    let victim = events[0].thread_id.to_string();
    write(StoreConfig::at(&dir.0), events);
    let mut store = Store::open(&dir.0).expect("open");
    assert_eq!(store.erase_thread(&victim).expect("erase"), 5);
    assert_eq!(store.query().thread(&victim).count().expect("count"), 0);
    assert_eq!(store.query().count().expect("count"), 95);
    assert!(store.open_report().leftovers.is_empty(), "no temporary file is left behind");
    // Every root span carries user.id = u-42: erasing by attribute removes those rows only.
    assert_eq!(store.erase_attribute("user.id", "u-42").expect("erase"), 19);
    assert_eq!(store.query().count().expect("count"), 76);
    assert_eq!(store.query().kind("agent_step").count().expect("count"), 0);
    assert!(store.erase_thread("not-an-id").is_err());
}
