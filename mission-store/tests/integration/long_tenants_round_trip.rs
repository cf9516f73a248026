//! A tenant whose name is too long for a directory name is stored and read back whole.

use mission_core::Timestamp;
use mission_store::{Store, StoreConfig};

use crate::{TempDir, thread_events, write};

/// A 300-character tenant: the partition directory failed ("File name too long") and every
/// event was lost; now it is written, and a query by that tenant finds its events.
#[test]
fn a_300_character_tenant_is_written_and_queried_by_name() {
    let dir = TempDir::new("long-tenant");
    let now = Timestamp::now().0 - 60_000_000_000;
    let tenant = "t".repeat(300);
    let report = write(StoreConfig::at(&dir.0), thread_events(&tenant, "a", now));
    let parquet = &report.sinks[0];
    assert_eq!((parquet.events, parquet.failed_events), (5, 0), "{parquet:?}");
    let store = Store::open(&dir.0).expect("open");
    assert!(store.open_report().misplaced.is_empty(), "{:?}", store.open_report());
    assert_eq!(store.query().tenant(&tenant).count().expect("count"), 5);
    assert_eq!(store.query().count().expect("count"), 5);
    // Names are bounded when recorded (MAX_NAME_BYTES, with a marker); the tenant reads back
    // as recorded, and the query by the full name above matched it.
    let recorded = mission_core::Symbol::intern(&tenant);
    assert_eq!(store.query().tenant(recorded.as_str()).count().expect("count"), 5);
    assert!(recorded.as_str().starts_with(&tenant[..200]));
}
