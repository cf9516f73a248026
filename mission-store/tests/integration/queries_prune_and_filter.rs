use mission_core::Timestamp;
use mission_store::schema::col;
use mission_store::{Store, StoreConfig};

use crate::{TempDir, half_past_last_hour, thread_events, write};

const MINUTE: u64 = 60_000_000_000;

#[test]
fn a_narrow_time_query_reads_a_small_fraction_of_row_groups() {
    let dir = TempDir::new("prune");
    // Two hours of threads, one every 100 ms (5 events each): 72,000 threads, 360,000 events,
    // starting on an hour three hours ago, so the store is two whole hour partitions of 180,000
    // events whatever the time of day (a start within an hour made the partition holding the
    // queried minute anywhere from 1 to 60 minutes long).
    const HOUR: u64 = 60 * MINUTE;
    let start = (Timestamp::now().0 / HOUR - 3) * HOUR;
    let mut events = Vec::new();
    for i in 0..72_000u64 {
        events.extend(thread_events(
            "acme",
            if i % 2 == 0 { "a" } else { "b" },
            start + i * 100_000_000,
        ));
    }
    let total = events.len() as u64;
    let config = StoreConfig::at(&dir.0).with_row_group_rows(5_000);
    write(config, events);
    let store = Store::open(&dir.0).expect("open");
    assert_eq!(store.query().count().expect("count"), total);

    let from = Timestamp(start + 30 * MINUTE);
    let to = Timestamp(start + 31 * MINUTE);
    let mut iter = store.query().time_range(from, to).iter().expect("query");
    let rows: u64 = iter.by_ref().map(|b| b.expect("batch").num_rows() as u64).sum();
    let stats = iter.stats().clone();
    assert_eq!(rows, 600 * 5, "one minute holds 600 threads of 5 events");
    eprintln!("{stats:?}");
    assert!(
        stats.files_opened <= 2,
        "the hour partitions outside the range are not opened: {stats:?}"
    );
    assert!(stats.row_groups_total >= 30, "the test needs a store of many row groups: {stats:?}");
    assert_eq!(
        stats.row_groups_total,
        180_000 / 5_000,
        "an hour is cut into full row groups of row_group_rows events: {stats:?}"
    );
    assert!(
        stats.row_groups_read <= 3,
        "a one-minute query of a two-hour store read {} of {} row groups",
        stats.row_groups_read,
        stats.row_groups_total
    );
    assert!(stats.skipped.is_empty());
}

#[test]
fn filters_projection_and_limit() {
    let dir = TempDir::new("filters");
    let start = Timestamp::now().0 - 10 * MINUTE;
    let mut events = Vec::new();
    for i in 0..50u64 {
        events.extend(thread_events(
            if i % 5 == 0 { "beta" } else { "acme" },
            if i % 2 == 0 { "a" } else { "b" },
            start + i * 1_000_000_000,
        ));
    }
    let some_thread = events[7].thread_id.to_string();
    write(StoreConfig::at(&dir.0), events);
    let store = Store::open(&dir.0).expect("open");
    let q = || store.query();
    assert_eq!(q().count().expect("all"), 250);
    assert_eq!(q().tenant("beta").count().expect("tenant"), 50);
    assert_eq!(q().agent("a").count().expect("agent"), 125);
    assert_eq!(q().kind("llm_call").count().expect("kind"), 50);
    assert_eq!(q().name("web_search").status("error").count().expect("name+status"), 50);
    assert_eq!(q().thread(&some_thread).count().expect("thread"), 5);
    assert_eq!(q().attribute("user.id", "u-42").count().expect("attr"), 50);
    assert_eq!(
        q().attribute("attempt", "2").kind("tool_call").agent("b").count().expect("and"),
        25
    );
    assert_eq!(q().attribute("user.id", "nobody").count().expect("none"), 0);
    let limited = q().kind("log").limit(7).batches().expect("limit");
    assert_eq!(limited.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
    let projected =
        q().columns(&[col::NAME, col::DURATION_NS]).limit(3).batches().expect("projection");
    let schema = projected[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, [col::NAME, col::DURATION_NS, col::TENANT]);
    let err = q().columns(&["no_such_column"]).batches().unwrap_err();
    assert!(err.to_string().contains("no_such_column"), "{err}");
}

#[test]
fn files_are_finalized_by_age_without_a_flush() {
    use std::time::Duration;

    use mission_core::{Backpressure, Pipeline};
    use mission_store::ParquetSink;

    let dir = TempDir::new("age");
    let config = StoreConfig::at(&dir.0).with_max_file_age(Duration::from_millis(100));
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(config).expect("sink"))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for e in thread_events("acme", "a", Timestamp::now().0 - MINUTE) {
        recorder.record(e);
    }
    // No flush: the sink's tick finalizes the file once it is older than max_file_age.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let store = Store::open(&dir.0).expect("open");
        if store.query().count().expect("count") == 5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the file was never finalized by age");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pipeline.health().accounting.in_flight == 0);
    drop(pipeline);
}

#[test]
fn progress_is_reported_per_file() {
    use std::sync::{Arc, Mutex};
    let dir = TempDir::new("progress");
    let start = half_past_last_hour();
    let mut events = Vec::new();
    for (i, tenant) in ["acme", "beta", "gamma"].iter().enumerate() {
        events.extend(thread_events(tenant, "a", start + i as u64 * 1_000_000));
    }
    write(StoreConfig::at(&dir.0), events);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let store = Store::open(&dir.0)
        .expect("open")
        .with_progress(move |done, total| sink.lock().expect("lock").push((done, total)));
    assert_eq!(store.files().len(), 3);
    assert_eq!(store.threads(store.query()).expect("threads").len(), 3);
    assert_eq!(*seen.lock().expect("lock"), [(0, 3), (1, 3), (2, 3), (3, 3)]);
    seen.lock().expect("lock").clear();
    // Files pruned by their partition are not counted.
    store.query().tenant("beta").count().expect("count");
    assert_eq!(*seen.lock().expect("lock"), [(0, 1), (1, 1)]);
}
