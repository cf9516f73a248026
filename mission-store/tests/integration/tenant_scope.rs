//! A store scoped to a tenant reads and changes that tenant's partitions only, even where
//! another tenant's events share its thread ids, agent, operation and model names.

use mission_core::{ThreadId, Timestamp};
use mission_store::{GroupBy, Store, StoreConfig};

use crate::{TempDir, thread_events, write};

/// Two tenants, each with a thread under the same id, plus a thread of its own.
fn two_tenants(dir: &TempDir) -> (String, String, String) {
    let now = Timestamp::now().0 - 60_000_000_000;
    let shared = ThreadId::generate();
    let mut events = Vec::new();
    let mut own = Vec::new();
    for (i, tenant) in ["acme", "globex"].into_iter().enumerate() {
        let mut continued = thread_events(tenant, "support-bot", now + i as u64 * 1_000);
        for e in &mut continued {
            e.thread_id = shared;
        }
        events.extend(continued);
        let alone = thread_events(tenant, "support-bot", now + 10_000_000);
        own.push(alone[0].thread_id.to_string());
        events.extend(alone);
    }
    write(StoreConfig::at(&dir.0), events);
    (shared.to_string(), own[0].clone(), own[1].clone())
}

#[test]
fn a_scoped_store_reads_only_its_tenant() {
    let dir = TempDir::new("scope-read");
    let (shared, acme_own, globex_own) = two_tenants(&dir);
    let all = Store::open(&dir.0).expect("open");
    assert_eq!(all.scope(), None);
    assert_eq!(all.thread(&shared).expect("thread").event_count, 10, "unscoped sees both");

    let acme = Store::open_scoped(&dir.0, Some("acme")).expect("open");
    assert_eq!(acme.scope(), Some("acme"));
    assert!(acme.files().iter().all(|f| f.partition.tenant == "acme"));
    assert_eq!(acme.thread(&shared).expect("thread").event_count, 5, "only acme's half");
    assert_eq!(acme.thread(&globex_own).expect("thread").event_count, 0);
    assert_eq!(acme.query().count().expect("count"), 10);
    assert_eq!(acme.query().tenant("globex").count().expect("count"), 0, "a filter only narrows");
    let tenants = |batches: Vec<arrow::array::RecordBatch>| -> Vec<String> {
        let mut out = Vec::new();
        for b in &batches {
            let c = b.column_by_name("tenant").expect("tenant");
            let c = c.as_any().downcast_ref::<arrow::array::StringArray>().expect("text");
            out.extend(c.iter().flatten().map(str::to_owned));
        }
        out
    };
    assert!(tenants(acme.query().batches().expect("batches")).iter().all(|t| t == "acme"));
    let threads = acme.threads(acme.query()).expect("threads");
    assert_eq!(threads.len(), 2);
    assert!(threads.iter().all(|t| t.tenant == "acme"));
    assert!(threads.iter().any(|t| t.thread_id == acme_own));
    let cost = acme.cost_report(acme.query(), &[GroupBy::Tenant]).expect("cost");
    assert_eq!(cost.len(), 1);
    assert_eq!(cost[0].group, vec!["acme".to_owned()]);
    let stats = acme.operation_stats(acme.query(), &[GroupBy::Tenant]).expect("stats");
    assert!(stats.iter().all(|s| s.group == vec!["acme".to_owned()]), "{stats:?}");
    let metadata = acme.file_metadata("mission.schema_version").expect("metadata");
    assert_eq!(metadata.len(), acme.files().len());
    assert!(metadata.iter().all(|(p, _)| p.to_string_lossy().contains("tenant=acme")));
    assert_eq!(acme.check().expect("check").events, 10);
    let nobody = acme.clone().scoped("globex");
    assert!(nobody.files().is_empty(), "scoping a scoped store to another tenant empties it");
}

#[test]
fn a_scoped_store_changes_only_its_tenant() {
    let dir = TempDir::new("scope-write");
    let (shared, _, globex_own) = two_tenants(&dir);
    let mut acme = Store::open_scoped(&dir.0, Some("acme")).expect("open");
    assert_eq!(acme.erase_thread(&shared).expect("erase"), 5, "acme's half only");
    assert_eq!(acme.erase_thread(&globex_own).expect("erase"), 0);
    assert_eq!(acme.erase_attribute("user.id", "u-42").expect("erase"), 1);
    assert_eq!(acme.scope(), Some("acme"), "the scope survives the rewrite");
    let all = Store::open(&dir.0).expect("open");
    assert_eq!(all.thread(&shared).expect("thread").event_count, 5, "globex's half is intact");
    assert_eq!(all.query().tenant("globex").count().expect("count"), 10);
    let removed = acme
        .apply_retention(
            std::time::Duration::from_secs(1),
            Timestamp(Timestamp::now().0 + 7_200_000_000_000),
        )
        .expect("retention");
    assert!(removed >= 1);
    let all = Store::open(&dir.0).expect("open");
    assert_eq!(all.query().tenant("acme").count().expect("count"), 0);
    assert_eq!(
        all.query().tenant("globex").count().expect("count"),
        10,
        "retention stayed in scope"
    );
}
