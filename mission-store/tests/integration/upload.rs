//! The write side of a store on object storage (feature `s3`), against the real loopback S3
//! server: the uploader sends every finalized file once and the bucket answers like the disk;
//! the server killed in the middle of a multipart upload and restarted loses nothing and
//! doubles nothing; a full spill drops the oldest files first and counts them; wrong
//! credentials are a clear error that loses nothing local; settings are range-checked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mission_core::{Event, Symbol};
use mission_store::upload::{UploadConfig, Uploader, upload_pending};
use mission_store::{Error, Store, StoreConfig};
use object_store::ObjectStoreExt as _;
use object_store::path::Path as ObjectPath;

use crate::s3_server::{ACCESS_KEY, S3Server};
use crate::{TempDir, half_past_last_hour, thread_events, write};

/// The store's finalized files under `root` (what readers read).
fn local_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "parquet")
                && !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("events"), &mut out);
    out.sort();
    out
}

/// `threads` threads of tenant `acme` in one hour, each root span carrying `noise` bytes of
/// hard-to-compress attribute text (so files are as big as the test needs).
fn events(threads: u64, noise: usize, seed: u64) -> Vec<Event> {
    let base = half_past_last_hour();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for i in 0..threads {
        let mut thread = thread_events("acme", "support-bot", base + i * 1_000);
        let mut left = noise;
        let mut key = 0;
        while left > 0 {
            let n = left.min(4000);
            let text: String =
                (0..n).map(|_| char::from(b"0123456789abcdef"[(next() & 15) as usize])).collect();
            thread[0].attributes.set(Symbol::intern(&format!("noise.{key}")), text);
            left -= n;
            key += 1;
        }
        out.extend(thread);
    }
    out
}

/// Waits for `condition` on the uploader's stats, failing after a generous deadline.
fn wait_for(
    uploader: &Uploader,
    what: &str,
    condition: impl Fn(&mission_store::UploadStats) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = uploader.stats();
        if condition(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {stats:?}");
        uploader.wake();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_uploader_sends_each_finalized_file_once_and_the_bucket_answers_like_the_disk() {
    let server = S3Server::start("mission-upload");
    let dir = TempDir::new("upload-basic");
    let first = events(20, 0, 1);
    let first_count = first.len() as u64;
    write(StoreConfig::at(&dir.0), first);
    let local = Store::open(&dir.0).expect("open local");
    let expected_threads = local.threads(local.query()).expect("threads").len();
    let files = local_files(&dir.0);
    assert!(!files.is_empty());

    let remote = server.remote_root("agents");
    let uploader = Uploader::start(
        UploadConfig::new(&dir.0, remote.clone()).with_interval(Duration::from_millis(20)),
    )
    .expect("start");
    let stats = uploader.flush(Duration::from_secs(120));
    assert_eq!(stats.last_error, None, "{stats:?}");
    assert_eq!(stats.files_uploaded, files.len() as u64, "{stats:?}");
    assert_eq!((stats.files_pending, stats.files_dropped), (0, 0), "{stats:?}");
    assert!(local_files(&dir.0).is_empty(), "uploaded files are deleted locally");

    let bucket = Store::open_remote(remote.clone()).expect("open bucket");
    assert_eq!(bucket.files().len(), files.len());
    assert_eq!(bucket.query().count().expect("count"), first_count);
    assert_eq!(bucket.threads(bucket.query()).expect("threads").len(), expected_threads);

    // A second writer on the same local root: only its files go up, the first ones once.
    let second = events(7, 0, 2);
    let second_count = second.len() as u64;
    write(StoreConfig::at(&dir.0), second);
    let more = local_files(&dir.0).len() as u64;
    let stats = uploader.shutdown(Duration::from_secs(120));
    assert_eq!(stats.last_error, None, "{stats:?}");
    assert_eq!(stats.files_uploaded, files.len() as u64 + more, "{stats:?}");
    let bucket = Store::open_remote(remote).expect("open bucket");
    assert_eq!(bucket.query().count().expect("count"), first_count + second_count);
    assert!(bucket.skipped_files().is_empty());
}

#[test]
fn the_server_killed_mid_multipart_upload_and_restarted_loses_nothing_and_doubles_nothing() {
    let server = Arc::new(Mutex::new(Some(S3Server::start("mission-upload-kill"))));
    let (root, endpoint) = {
        let guard = server.lock().expect("lock");
        let s = guard.as_ref().expect("server");
        (s.root.clone(), s.endpoint.clone())
    };
    let dir = TempDir::new("upload-kill");
    // One file of well over two 5 MiB parts.
    let written = events(2400, 12_000, 7);
    let count = written.len() as u64;
    write(StoreConfig::at(&dir.0), written);
    let files = local_files(&dir.0);
    assert_eq!(files.len(), 1, "{files:?}");
    let original = std::fs::read(&files[0]).expect("read");
    assert!(original.len() > 11 << 20, "the file is {} bytes", original.len());
    let relative = files[0].strip_prefix(&dir.0).expect("under root").to_str().expect("utf-8");
    let relative = relative.to_owned();

    let remote = server.lock().expect("lock").as_ref().expect("server").remote_root("agents");
    // The first acknowledged part kills the server (SIGKILL), before the next part is sent.
    let killer = Arc::clone(&server);
    let observer: mission_store::upload::PartObserver = Arc::new(move |_key, parts| {
        if parts == 1
            && let Some(mut s) = killer.lock().expect("lock").take()
        {
            s.kill();
            std::mem::forget(s); // its root must stay for the restart
        }
    });
    let uploader = Uploader::start(
        UploadConfig::new(&dir.0, remote.clone())
            .with_part_size(5 << 20)
            .with_multipart_threshold(5 << 20)
            .with_interval(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(200))
            .with_part_observer(observer),
    )
    .expect("start");
    wait_for(&uploader, "a failed upload", |s| s.failures >= 1 && s.last_error.is_some());
    let stats = uploader.stats();
    assert_eq!(stats.files_uploaded, 0, "{stats:?}");
    assert!(stats.parts_uploaded >= 1, "{stats:?}");
    assert_eq!(local_files(&dir.0), files, "nothing local is lost while the bucket is down");

    // Restarted on the same address and root: the upload is done again, whole, once.
    let port = endpoint.rsplit(':').next().expect("port").to_owned();
    let restarted = S3Server::start_at(&root, "mission-upload-kill", &format!("127.0.0.1:{port}"));
    let stats = uploader.shutdown(Duration::from_secs(120));
    assert_eq!(stats.last_error, None, "{stats:?}");
    assert_eq!(stats.files_uploaded, 1, "{stats:?}");
    assert!(local_files(&dir.0).is_empty());

    let store = remote.object_store().expect("client");
    let key = ObjectPath::parse(format!("agents/{relative}")).expect("key");
    let got =
        crate::object_storage::run(async { store.get(&key).await.expect("get").bytes().await })
            .expect("bytes");
    assert!(got.as_ref() == original.as_slice(), "the object is the file, byte for byte");
    let bucket = Store::open_remote(restarted.remote_root("agents")).expect("open bucket");
    assert_eq!(bucket.files().len(), 1, "one object, not two");
    assert_eq!(bucket.query().count().expect("count"), count);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_full_spill_drops_the_oldest_files_first_and_counts_them() {
    let mut server = S3Server::start("mission-upload-full");
    let remote = server.remote_root("agents");
    let dir = TempDir::new("upload-full");
    // Three files of about 0.5 MiB, written one after the other, oldest first.
    let mut counts = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (i, seed) in [11u64, 12, 13].into_iter().enumerate() {
        let batch = events(80, 12_000, seed);
        counts.push(batch.len() as u64);
        write(StoreConfig::at(&dir.0), batch);
        let new: Vec<PathBuf> =
            local_files(&dir.0).into_iter().filter(|p| !paths.contains(p)).collect();
        assert_eq!(new.len(), 1, "{new:?}");
        // Ages set explicitly (no reliance on the clock's resolution).
        let file = std::fs::File::options().write(true).open(&new[0]).expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i as u64))
            .expect("set mtime");
        paths.extend(new);
    }
    let sizes: Vec<u64> = paths.iter().map(|p| std::fs::metadata(p).expect("stat").len()).collect();
    let bound = (sizes[1] + sizes[2]).max(1 << 20);
    assert!(sizes.iter().sum::<u64>() > bound, "{sizes:?}");

    server.kill(); // the bucket is unreachable
    let config = UploadConfig::new(&dir.0, remote.clone()).with_max_spill_bytes(bound);
    let stats = upload_pending(&config).expect("pass");
    assert_eq!(stats.files_dropped, 1, "{stats:?}");
    assert_eq!(stats.bytes_dropped, sizes[0], "{stats:?}");
    assert_eq!(stats.events_dropped, counts[0], "{stats:?}");
    assert_eq!(stats.files_uploaded, 0, "{stats:?}");
    assert!(stats.last_error.is_some() && !stats.denied, "{stats:?}");
    assert_eq!((stats.files_pending, stats.bytes_pending), (2, sizes[1] + sizes[2]), "{stats:?}");
    assert_eq!(local_files(&dir.0), paths[1..].to_vec(), "the oldest went, the newer stay");

    let restarted = S3Server::start_on(&server.root, "mission-upload-full");
    let remote = restarted.remote_root("agents");
    let stats = upload_pending(&UploadConfig::new(&dir.0, remote.clone())).expect("pass");
    assert_eq!((stats.files_uploaded, stats.files_dropped), (2, 0), "{stats:?}");
    let bucket = Store::open_remote(remote).expect("open");
    assert_eq!(bucket.query().count().expect("count"), counts[1] + counts[2]);
}

#[test]
fn wrong_credentials_are_a_clear_error_and_lose_nothing_local() {
    let server = S3Server::start("mission-upload-denied");
    let dir = TempDir::new("upload-denied");
    write(StoreConfig::at(&dir.0), events(5, 0, 3));
    let files = local_files(&dir.0);
    let secret = "not-the-secret-at-all-0815";
    let wrong = server.remote_root_with_keys("agents", ACCESS_KEY, secret);
    let stats = upload_pending(&UploadConfig::new(&dir.0, wrong)).expect("pass");
    assert!(stats.denied, "{stats:?}");
    let error = stats.last_error.clone().expect("an error");
    assert!(
        error.contains("access denied") && error.contains("s3://mission-upload-denied/agents"),
        "{error}"
    );
    assert!(!error.contains(secret));
    assert_eq!(stats.files_uploaded, 0);
    assert_eq!(local_files(&dir.0), files, "nothing local is lost");

    let stats =
        upload_pending(&UploadConfig::new(&dir.0, server.remote_root("agents"))).expect("pass");
    assert_eq!((stats.files_uploaded, stats.last_error), (files.len() as u64, None));
}

#[test]
fn a_restarted_uploader_does_not_send_what_the_bucket_has() {
    let server = S3Server::start("mission-upload-again");
    let dir = TempDir::new("upload-again");
    write(StoreConfig::at(&dir.0), events(5, 0, 4));
    let files = local_files(&dir.0);
    let remote = server.remote_root("agents");
    // Kept locally (as after a crash between the upload and the delete).
    let config = UploadConfig::new(&dir.0, remote.clone()).with_keep_local(true);
    let stats = upload_pending(&config).expect("pass");
    assert_eq!(stats.files_uploaded, files.len() as u64);
    assert_eq!(local_files(&dir.0), files);
    let stats = upload_pending(&UploadConfig::new(&dir.0, remote.clone())).expect("pass");
    assert_eq!(
        (stats.files_uploaded, stats.files_already_there),
        (0, files.len() as u64),
        "{stats:?}"
    );
    assert!(local_files(&dir.0).is_empty());
    assert_eq!(Store::open_remote(remote).expect("open").files().len(), files.len());
}

#[test]
fn settings_out_of_range_are_typed_errors_naming_the_setting() {
    let server = S3Server::start("mission-upload-settings");
    let dir = TempDir::new("upload-settings");
    let config = UploadConfig::new(&dir.0, server.remote_root("x"));
    for (bad, name) in [
        (config.clone().with_part_size(1024), "part_size"),
        (config.clone().with_max_spill_bytes(10), "max_spill_bytes"),
        (config.clone().with_multipart_threshold(u64::MAX), "multipart_threshold"),
        (config.clone().with_interval(Duration::ZERO), "interval"),
        (config.clone().with_max_backoff(Duration::from_secs(86_400)), "max_backoff"),
    ] {
        match upload_pending(&bad) {
            Err(Error::Invalid { what, .. }) => assert_eq!(what, name),
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(Uploader::start(bad), Err(Error::Invalid { .. })));
    }
}
