//! A store on object storage (feature `s3`), against the real loopback S3 server
//! (`mission-s3-server`, s3s-fs): a store written locally by the sink and uploaded gives the
//! same answers from the bucket as from the disk; pruning fetches fewer bytes and never whole
//! files; a scoped store lists only its tenant's prefix; a damaged object is skipped and
//! reported; retention deletes expired objects; rewriting operations say they need a local
//! root; wrong credentials are a clear error.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mission_core::Timestamp;
use mission_store::{CompactOptions, Error, GroupBy, RemoteRoot, Store, StoreConfig};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::s3_server::S3Server;
use crate::{TempDir, half_past_last_hour, thread_events, write};

const HOUR: u64 = 3_600_000_000_000;

/// Runs object_store calls of the test on a runtime of its own.
pub fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Uploads every file under `<local>/events/` to `<root>/events/…` (what the uploader does
/// for finalized files), returning how many.
fn upload(local: &Path, root: &RemoteRoot) -> usize {
    let store = root.object_store().expect("client");
    let mut files = Vec::new();
    walk(&local.join("events"), &mut files);
    for file in &files {
        let relative = file.strip_prefix(local).expect("under root").to_str().expect("utf-8");
        put(&store, &key(root, relative), std::fs::read(file).expect("read"));
    }
    files.len()
}

fn put(store: &Arc<dyn ObjectStore>, key: &ObjectPath, bytes: Vec<u8>) {
    run(store.put(key, PutPayload::from(bytes))).expect("put");
}

fn key(root: &RemoteRoot, relative: &str) -> ObjectPath {
    let prefix = root.prefix().as_ref();
    ObjectPath::parse(format!("{prefix}/{relative}")).expect("key")
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

/// Two tenants, three threads each, spread over three hours (so time filters prune).
fn write_store(dir: &TempDir) -> Vec<String> {
    let base = half_past_last_hour() - 2 * HOUR;
    let mut events = Vec::new();
    let mut threads = Vec::new();
    for tenant in ["acme", "globex"] {
        for hour in 0..3u64 {
            let thread = thread_events(tenant, "support-bot", base + hour * HOUR);
            threads.push(thread[0].thread_id.to_string());
            events.extend(thread);
        }
    }
    write(StoreConfig::at(&dir.0), events);
    threads
}

#[test]
fn the_loopback_server_answers_like_s3() {
    let server = S3Server::start("mission-basic");
    let root = server.remote_root("data");
    let store = root.object_store().expect("client");
    put(&store, &key(&root, "events/tenant=a/date=2026-01-01/hour=00/x.parquet"), b"x".to_vec());
    // A HEAD of a "directory" key is a 404 as on S3 (s3s-fs alone answers 500).
    let head = run(store.head(&key(&root, "events/tenant=a")));
    assert!(matches!(head, Err(object_store::Error::NotFound { .. })), "{head:?}");
    // The object is a file under the server's root.
    let file =
        server.root.join("mission-basic/data/events/tenant=a/date=2026-01-01/hour=00/x.parquet");
    assert_eq!(std::fs::read(&file).expect("object file"), b"x");
    // An empty store opens (nothing under events/ of another prefix).
    let empty = Store::open_remote(server.remote_root("nothing-here")).expect("open");
    assert!(empty.files().is_empty() && empty.is_remote());
}

#[test]
fn queries_threads_and_stats_are_the_same_locally_and_from_the_bucket() {
    let server = S3Server::start("mission-same");
    let dir = TempDir::new("remote-same");
    let threads = write_store(&dir);
    let root = server.remote_root("stores/one");
    let uploaded = upload(&dir.0, &root);
    assert!(uploaded >= 6, "one file per tenant and hour at least: {uploaded}");

    let local = Store::open(&dir.0).expect("open local");
    let remote = Store::open_remote(root.clone()).expect("open remote");
    assert_eq!(remote.root(), Path::new("s3://mission-same/stores/one"));
    assert_eq!(remote.files().len(), local.files().len());
    for (l, r) in local.files().iter().zip(remote.files()) {
        assert_eq!((&l.partition, l.bytes), (&r.partition, r.bytes));
        assert!(
            r.is_remote()
                && r.path
                    .to_string_lossy()
                    .starts_with("s3://mission-same/stores/one/events/tenant=")
        );
    }

    assert_eq!(remote.query().count().expect("count"), local.query().count().expect("count"));
    assert_eq!(
        remote.query().kind("tool_call").status("error").count().expect("count"),
        local.query().kind("tool_call").status("error").count().expect("count"),
    );
    assert_eq!(
        remote.query().batches().expect("batches"),
        local.query().batches().expect("batches"),
        "every column of every row, in the same order"
    );
    let window = (Timestamp(half_past_last_hour() - HOUR), Timestamp(half_past_last_hour()));
    assert_eq!(
        remote.query().time_range(window.0, window.1).tenant("acme").batches().expect("q"),
        local.query().time_range(window.0, window.1).tenant("acme").batches().expect("q"),
    );
    assert_eq!(
        remote.threads(remote.query()).expect("t"),
        local.threads(local.query()).expect("t")
    );
    for id in &threads {
        let (r, l) = (remote.thread(id).expect("thread"), local.thread(id).expect("thread"));
        assert_eq!(r, l);
        assert_eq!(r.event_count, 5);
    }
    let groups = [GroupBy::Tenant, GroupBy::Operation];
    assert_eq!(
        remote.operation_stats(remote.query(), &groups).expect("stats"),
        local.operation_stats(local.query(), &groups).expect("stats"),
    );
    assert_eq!(
        remote.cost_report(remote.query(), &[GroupBy::Model]).expect("cost"),
        local.cost_report(local.query(), &[GroupBy::Model]).expect("cost"),
    );
    let (rc, lc) = (remote.check().expect("check"), local.check().expect("check"));
    assert_eq!((rc.files, rc.bytes, rc.events), (lc.files, lc.bytes, lc.events));
    assert!(rc.healthy(), "{rc:?}");
    let versions = remote.file_metadata("mission.schema_version").expect("metadata");
    assert_eq!(versions.len(), remote.files().len());
    assert!(versions.iter().all(|(_, v)| v.is_some()));
    assert!(remote.skipped_files().is_empty());

    // A URL root opens the same store through Store::open, with credentials from the
    // environment: here it is not set, so it must be refused, not silently empty.
    // (The environment case is covered by the mission-ctl test, in a process of its own.)
}

#[test]
fn a_scoped_store_on_the_bucket_lists_and_reads_only_its_tenant() {
    let server = S3Server::start("mission-scope");
    let dir = TempDir::new("remote-scope");
    write_store(&dir);
    let root = server.remote_root("scoped");
    upload(&dir.0, &root);
    let all = Store::open_remote(root.clone()).expect("open");
    let acme = Store::open_remote(root.clone()).expect("open").scoped("acme");
    assert_eq!(acme.scope(), Some("acme"));
    assert!(!acme.files().is_empty());
    assert!(acme.files().iter().all(|f| f.partition.tenant == "acme"));
    assert_eq!(acme.files().len() * 2, all.files().len());
    assert_eq!(acme.query().count().expect("count"), 15);
    assert_eq!(acme.query().tenant("globex").count().expect("count"), 0);
    assert!(acme.threads(acme.query()).expect("threads").iter().all(|t| t.tenant == "acme"));
    // Scoped at listing time: open_scoped on a URL lists only events/tenant=acme/ (the
    // listing itself is scoped, so a tenant never even sees another's object names).
    let globex_only = acme.clone().scoped("globex");
    assert!(globex_only.files().is_empty());
}

/// Like [`write_store`], with `threads` threads per tenant and hour (files bigger than the
/// footer fetch, so downloading a whole file would show).
fn write_big_store(dir: &TempDir, threads: u64) {
    let base = half_past_last_hour() - 2 * HOUR;
    let mut events = Vec::new();
    for tenant in ["acme", "globex"] {
        for hour in 0..3u64 {
            for i in 0..threads {
                events.extend(thread_events(tenant, "support-bot", base + hour * HOUR + i * 1_000));
            }
        }
    }
    write(StoreConfig::at(&dir.0), events);
}

#[test]
fn pruning_and_projection_fetch_fewer_bytes_and_never_whole_files() {
    let server = S3Server::start("mission-prune");
    let dir = TempDir::new("remote-prune");
    let per_partition = 600;
    write_big_store(&dir, per_partition);
    let root = server.remote_root("prune");
    upload(&dir.0, &root);
    let store = Store::open_remote(root).expect("open");
    let total: u64 = store.files().iter().map(|f| f.bytes).sum();
    let events = 6 * per_partition as usize * 5;

    let mut all = store.query().iter().expect("query");
    let all_rows: usize = all.by_ref().map(|b| b.expect("batch").num_rows()).sum();
    let all_bytes = all.stats().bytes_read;
    assert_eq!(all_rows, events);
    assert!(all_bytes > 0 && all_bytes <= total, "{all_bytes} of {total}: fetched twice");
    assert_eq!(mission_store::remote::cache_evictions(), 0);

    // One tenant, one hour: only that partition's footer and chunks.
    let middle = half_past_last_hour() - HOUR;
    let window = (Timestamp(middle - 60_000_000_000), Timestamp(middle + 60_000_000_000));
    let mut one = store.query().tenant("acme").time_range(window.0, window.1).iter().expect("q");
    let one_rows: usize = one.by_ref().map(|b| b.expect("batch").num_rows()).sum();
    let stats = one.stats().clone();
    assert_eq!(one_rows, per_partition as usize * 5);
    assert_eq!((stats.files_opened, stats.files_total), (1, 6), "{stats:?}");
    assert!(stats.bytes_read * 4 < all_bytes, "pruned {} vs all {all_bytes}", stats.bytes_read);

    // One column: footers plus that column's chunks, far less than the files.
    let mut narrow = store.query().columns(&["time"]).iter().expect("q");
    let narrow_rows: usize = narrow.by_ref().map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(narrow_rows, events);
    let narrow_bytes = narrow.stats().bytes_read;
    assert!(narrow_bytes * 2 < all_bytes, "one column {narrow_bytes} vs all columns {all_bytes}");
    assert!(narrow_bytes * 2 < total, "{narrow_bytes} of {total}: whole files were downloaded");
    // The process-wide counter moves with them; a query pruned by path fetches nothing.
    let before = mission_store::remote::bytes_fetched();
    assert_eq!(store.query().tenant("nobody").count().expect("count"), 0);
    assert_eq!(mission_store::remote::bytes_fetched(), before, "pruned by path: nothing fetched");
    let thread = store.query().tenant("acme").limit(1).batches().expect("q");
    assert_eq!(thread.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(mission_store::remote::bytes_fetched() > before);
}

#[test]
fn a_damaged_object_is_skipped_and_reported_like_a_damaged_file() {
    let server = S3Server::start("mission-damaged");
    let dir = TempDir::new("remote-damaged");
    write_store(&dir);
    let root = server.remote_root("damaged");
    upload(&dir.0, &root);
    let store = root.object_store().expect("client");
    let partition = Store::open(&dir.0).expect("open").files()[0].partition.clone();
    let relative = format!(
        "events/tenant={}/date={}/hour={:02}/part-999-damaged.parquet",
        partition.tenant,
        partition.date(),
        partition.hour
    );
    put(&store, &key(&root, &relative), b"PAR1 this is not parquet at all PAR1".to_vec());
    let remote = Store::open_remote(root.clone()).expect("open");
    let mut iter = remote.query().iter().expect("query");
    let rows: usize = iter.by_ref().map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 30, "the other objects are all read");
    let skipped = &iter.stats().skipped;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].0.to_string_lossy().ends_with("part-999-damaged.parquet"), "{skipped:?}");
    assert!(skipped[0].0.to_string_lossy().starts_with("s3://mission-damaged/damaged/"));
    assert!(skipped[0].1.starts_with("unreadable"), "{skipped:?}");
    assert_eq!(remote.skipped_files().len(), 1);
    let check = remote.check().expect("check");
    assert_eq!(check.unreadable.len(), 1);
    assert!(!check.healthy());
}

#[test]
fn retention_on_the_bucket_deletes_expired_objects() {
    let server = S3Server::start("mission-retention");
    let dir = TempDir::new("remote-retention");
    let now = Timestamp::now().0;
    let mut events = thread_events("acme", "bot", now - 3 * 24 * HOUR);
    events.extend(thread_events("globex", "bot", now - 3 * 24 * HOUR));
    events.extend(thread_events("acme", "bot", half_past_last_hour()));
    write(StoreConfig::at(&dir.0), events);
    let root = server.remote_root("retention");
    upload(&dir.0, &root);
    let mut scoped = Store::open_remote(root.clone()).expect("open").scoped("globex");
    assert_eq!(scoped.apply_retention(Duration::from_secs(86_400), Timestamp(now)).expect("r"), 1);
    let mut store = Store::open_remote(root.clone()).expect("open");
    assert_eq!(store.query().count().expect("count"), 10, "acme's old partition is not globex's");
    assert_eq!(store.apply_retention(Duration::from_secs(86_400), Timestamp(now)).expect("r"), 1);
    assert_eq!(store.query().count().expect("count"), 5, "the store is listed again");
    assert!(store.files().iter().all(|f| f.partition.end_ns() > (now - 24 * HOUR) as i128));
    let again = Store::open_remote(root).expect("open");
    assert_eq!(again.files().len(), store.files().len(), "deleted from the bucket");
    // The objects are gone from the server's disk too.
    let mut left = Vec::new();
    walk(&server.root.join("mission-retention/retention/events"), &mut left);
    assert_eq!(left.len(), again.files().len());
}

#[test]
fn rewriting_operations_say_they_need_a_local_root() {
    let server = S3Server::start("mission-local-only");
    let dir = TempDir::new("remote-local-only");
    let threads = write_store(&dir);
    let root = server.remote_root("x");
    upload(&dir.0, &root);
    let mut store = Store::open_remote(root).expect("open");
    assert!(!threads.is_empty());
    let errors = [
        store.compact(&CompactOptions::default()).map(|_| ()).unwrap_err(),
        store.recover().map(|_| ()).unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, Error::NeedsLocalRoot { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("needs a local store root") && text.contains("s3://mission-local-only/x"),
            "{text}"
        );
    }
    assert_eq!(store.query().count().expect("count"), 30, "nothing was changed");
}

#[test]
fn erasure_on_the_bucket_rewrites_the_objects_that_hold_the_events() {
    let server = S3Server::start("mission-erase");
    let dir = TempDir::new("remote-erase");
    let threads = write_store(&dir);
    let root = server.remote_root("x");
    let uploaded = upload(&dir.0, &root);
    let mut store = Store::open_remote(root.clone()).expect("open");
    // One thread: its five events go, from the one object that held them.
    assert_eq!(store.erase_thread(&threads[0]).expect("erase"), 5);
    let reopened = Store::open_remote(root.clone()).expect("open");
    assert_eq!(reopened.files().len(), uploaded);
    assert_eq!(reopened.query().count().expect("count"), 25);
    assert!(reopened.thread(&threads[0]).expect("thread").roots.is_empty());
    assert!(!reopened.thread(&threads[1]).expect("thread").roots.is_empty());
    // An attribute within one tenant: acme's remaining root spans carry user.id = u-42.
    let erased = store.erase_attribute_in(Some("acme"), "user.id", "u-42").expect("erase");
    assert_eq!(erased, 2, "acme's two remaining threads' roots");
    let reopened = Store::open_remote(root).expect("open");
    assert_eq!(reopened.query().count().expect("count"), 23);
    let globex = reopened.clone().scoped("globex");
    assert_eq!(globex.query().count().expect("count"), 15, "another tenant's rows are untouched");
    assert!(reopened.skipped_files().is_empty());
    // Nothing is left in the scratch directory.
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("mission-erase-{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let server = S3Server::start("mission-denied");
    let secret = "definitely-not-the-secret-4711";
    let root = server.remote_root_with_keys("x", crate::s3_server::ACCESS_KEY, secret);
    let err = Store::open_remote(root.clone()).unwrap_err();
    assert!(matches!(err, Error::Remote { denied: true, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("access denied") && text.contains("s3://mission-denied/x"), "{text}");
    assert!(!text.contains(secret) && !format!("{err:?}").contains(secret), "{text}");
    assert!(!format!("{root:?} {root}").contains(secret));
    let unknown = server.remote_root_with_keys("x", "nobody", secret);
    let err = Store::open_remote(unknown).unwrap_err();
    assert!(matches!(err, Error::Remote { denied: true, .. }), "{err:?}");
}

#[test]
fn the_server_killed_and_restarted_keeps_what_it_acknowledged() {
    let mut server = S3Server::start("mission-restart");
    let dir = TempDir::new("remote-restart");
    write_store(&dir);
    let uploaded = upload(&dir.0, &server.remote_root("kept"));
    let before = Store::open_remote(server.remote_root("kept")).expect("open").query().count();
    server.kill(); // SIGKILL: no chance to flush anything
    let err = Store::open_remote(server.remote_root("kept")).unwrap_err();
    assert!(matches!(err, Error::Remote { denied: false, .. }), "{err:?}");
    let restarted = S3Server::start_on(&server.root, "mission-restart");
    let store = Store::open_remote(restarted.remote_root("kept")).expect("open");
    assert_eq!(store.files().len(), uploaded);
    assert_eq!(store.query().count().expect("count"), before.expect("count"));
    assert!(store.skipped_files().is_empty());
}

#[test]
fn a_file_url_root_reads_the_local_store_through_the_same_path() {
    let dir = TempDir::new("remote-file-url");
    let threads = write_store(&dir);
    let url = format!("file://{}", dir.0.display());
    let through_url = Store::open(&url).expect("open");
    let local = Store::open(&dir.0).expect("open");
    assert!(through_url.is_remote());
    assert_eq!(through_url.files().len(), local.files().len());
    assert_eq!(
        through_url.query().batches().expect("batches"),
        local.query().batches().expect("batches")
    );
    assert_eq!(through_url.thread(&threads[0]).expect("t"), local.thread(&threads[0]).expect("t"));
    let scoped = Store::open_scoped(&url, Some("globex")).expect("open");
    assert!(scoped.files().iter().all(|f| f.partition.tenant == "globex"));
    assert_eq!(scoped.query().count().expect("count"), 15);
}

/// SQL on the bucket (DataFusion through the store's own client): the same answers as on the
/// local copy, for every view and for a query pruned to one tenant and hour; a scoped engine
/// sees its tenant only.
#[cfg(feature = "sql")]
#[test]
fn sql_on_the_bucket_answers_like_the_local_store() {
    use mission_store::sql::{SqlEngine, SqlLimits};
    let server = S3Server::start("mission-sql");
    let dir = TempDir::new("remote-sql");
    write_store(&dir);
    let root = server.remote_root("sql");
    upload(&dir.0, &root);
    let local =
        SqlEngine::new(Store::open(&dir.0).expect("local"), SqlLimits::default()).expect("engine");
    let remote =
        SqlEngine::new(Store::open_remote(root.clone()).expect("remote"), SqlLimits::default())
            .expect("engine");
    for query in [
        "SELECT count(*) AS n FROM events",
        "SELECT tenant, count(*) AS n, sum(gen_ai_usage_cost) AS cost FROM llm_calls GROUP BY tenant ORDER BY tenant",
        "SELECT tenant, thread_id, spans, errors FROM threads ORDER BY tenant, thread_id",
        "SELECT name, hour, count(*) AS n FROM spans GROUP BY name, hour ORDER BY name, hour",
    ] {
        let l = local.query(query).expect("local").to_json_rows().expect("json");
        let r = remote
            .query(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .to_json_rows()
            .expect("json");
        assert_eq!(l, r, "{query}");
        assert!(!r.is_empty());
    }
    let scoped = SqlEngine::new(
        Store::open_remote(root.clone()).expect("remote").scoped("acme"),
        SqlLimits::default(),
    )
    .expect("engine");
    let tenants = scoped
        .query("SELECT DISTINCT tenant FROM events")
        .expect("tenants")
        .to_json_rows()
        .expect("json");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0]["tenant"], "acme");

    // One tenant's last hour (a partition filter: the other files are not read), the same
    // answer from the bucket as from the disk.
    let hour = local
        .query("SELECT max(hour) AS h FROM events")
        .expect("hour")
        .to_json_rows()
        .expect("json")[0]["h"]
        .clone();
    let one = format!(
        "SELECT sum(duration_ns) AS d, count(*) AS n FROM events WHERE tenant = 'globex' AND hour = {hour}"
    );
    let l = local.query(&one).expect("local").to_json_rows().expect("json");
    let r = remote.query(&one).expect("remote").to_json_rows().expect("json");
    assert_eq!(l, r);
    assert!(r[0]["n"].as_i64().unwrap_or(0) > 0, "{r:?}");
}
