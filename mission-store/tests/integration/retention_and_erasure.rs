use std::time::Duration;

use mission_core::Timestamp;
use mission_store::{ParquetSink, RetentionPolicy, Store, StoreConfig};

use crate::{TempDir, half_past_last_hour, thread_events, write};

const HOUR: u64 = 3_600_000_000_000;

#[test]
fn retention_deletes_only_expired_partitions() {
    let dir = TempDir::new("retention");
    let now = half_past_last_hour();
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

#[test]
fn per_tenant_retention_overrides_the_default() {
    let dir = TempDir::new("tenant-retention");
    let now = half_past_last_hour();
    let mut events = thread_events("acme", "a", now - 5 * HOUR);
    events.extend(thread_events("other", "a", now - 5 * HOUR));
    events.extend(thread_events("strict", "a", now - 2 * HOUR));
    write(StoreConfig::at(&dir.0), events);
    let mut store = Store::open(&dir.0).expect("open");
    // Keep everything by default, 24 h for `acme`, 1 h for `strict`: only `strict` loses data.
    let policy = RetentionPolicy::default().with_tenants(
        [
            ("acme".to_owned(), Duration::from_secs(24 * 3600)),
            ("strict".to_owned(), Duration::from_secs(3600)),
        ]
        .into(),
    );
    assert_eq!(store.apply_retention_policy(&policy, Timestamp(now)).expect("retention"), 1);
    assert_eq!(store.query().tenant("strict").count().expect("count"), 0);
    assert_eq!(store.query().tenant("acme").count().expect("count"), 5);
    assert_eq!(store.query().tenant("other").count().expect("count"), 5);
    // A 3 h default now expires `other` (5 h old) but not `acme`, whose own 24 h wins.
    let policy = policy.with_default(Some(Duration::from_secs(3 * 3600)));
    assert_eq!(store.apply_retention_policy(&policy, Timestamp(now)).expect("retention"), 1);
    assert_eq!(store.query().tenant("other").count().expect("count"), 0);
    assert_eq!(store.query().tenant("acme").count().expect("count"), 5);
}

#[test]
fn tenant_retention_reads_from_config_text() {
    let config: StoreConfig = serde_json::from_value(serde_json::json!({
        "root": "/tmp/x", "retention": "30d", "tenant_retention": {"hipaa-clinic": "2190d"}
    }))
    .expect("config");
    let policy = config.retention_policy();
    assert_eq!(policy.max_age("hipaa-clinic"), Some(Duration::from_secs(2190 * 86_400)));
    assert_eq!(policy.max_age("anyone"), Some(Duration::from_secs(30 * 86_400)));
    let err = serde_json::from_value::<StoreConfig>(
        serde_json::json!({"tenant_retention": {"a": "soon"}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("soon"), "{err}");
}

#[test]
fn erasure_can_be_limited_to_one_tenant() {
    let dir = TempDir::new("erase-tenant");
    let now = Timestamp::now().0 - 60_000_000_000;
    let mut events = thread_events("acme", "a", now);
    events.extend(thread_events("other", "a", now + 1_000));
    write(StoreConfig::at(&dir.0), events);
    let mut store = Store::open(&dir.0).expect("open");
    assert_eq!(store.erase_attribute_in(Some("acme"), "user.id", "u-42").expect("erase"), 1);
    assert_eq!(store.query().attribute("user.id", "u-42").count().expect("count"), 1);
    assert_eq!(store.query().tenant("other").attribute("user.id", "u-42").count().expect("n"), 1);
}

#[test]
fn files_carry_extra_metadata_through_erasure() {
    let dir = TempDir::new("file-metadata");
    let now = half_past_last_hour();
    let source: mission_store::FileMetadataSource =
        std::sync::Arc::new(|| vec![("mission.audit.head".to_owned(), "{\"seq\":7}".to_owned())]);
    let sink = ParquetSink::new(StoreConfig::at(&dir.0)).expect("sink").with_file_metadata(source);
    let pipeline = mission_core::Pipeline::builder().with_sink(sink).start().expect("pipeline");
    let recorder = pipeline.recorder();
    for e in thread_events("acme", "a", now) {
        recorder.record(e);
    }
    pipeline.shutdown();
    let mut store = Store::open(&dir.0).expect("open");
    let anchors = store.file_metadata("mission.audit.head").expect("metadata");
    assert_eq!(anchors.len(), 1);
    assert_eq!(anchors[0].1.as_deref(), Some("{\"seq\":7}"));
    assert_eq!(store.file_metadata("absent").expect("metadata")[0].1, None);
    store.erase_attribute("user.id", "u-42").expect("erase");
    let anchors = store.file_metadata("mission.audit.head").expect("metadata");
    assert_eq!(anchors[0].1.as_deref(), Some("{\"seq\":7}"), "a rewrite keeps the anchor");
}
