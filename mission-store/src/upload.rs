//! The write side of a store on object storage: finalized files of a local store, uploaded to
//! a [`RemoteRoot`] exactly once, while the local directory is the bounded spill that holds
//! them until the bucket takes them.
//!
//! A writer (the [`ParquetSink`](crate::ParquetSink), `mission-ctl serve`, an agent) writes its
//! store into a local directory as always: files are written under hidden temporary names,
//! renamed into place when complete, and covered by the write-ahead log while open. The
//! uploader only ever sees complete files — the same rule every reader follows — and puts each
//! one at the same relative key under the remote root (`<prefix>/events/tenant=…/date=…/
//! hour=…/part-….parquet`), so the bucket is a store that [`Store::open`](crate::Store::open)
//! on the URL, `mission-ctl`, DuckDB and Spark read in place.
//!
//! # Exactly once
//!
//! - An object appears whole or not at all: a small file is one `PUT`; a large one is a
//!   multipart upload, which the bucket makes visible only when it is completed (an
//!   interrupted one is aborted, and never listed).
//! - A file's key is its relative path, and file names are unique (a writer id in every
//!   name), so uploading a file again writes the same bytes to the same key: a retry after a
//!   failure, or after this process was killed between the upload and the local delete, never
//!   doubles a row in the bucket.
//! - The local file is deleted only after the bucket acknowledged the whole object (with
//!   [`UploadConfig::with_keep_local`], it is kept and remembered instead).
//! - At start, a backlog file already in the bucket with the same size is not sent again.
//!
//! # While the bucket is unreachable
//!
//! Files wait in the local directory, and each pass retries from the oldest, with a growing
//! pause between failed passes (up to [`UploadConfig::max_backoff`]). The directory is bounded
//! by [`UploadConfig::max_spill_bytes`]: when the waiting files pass it, the oldest are
//! deleted first and counted in [`UploadStats::files_dropped`] / `events_dropped`. A refused
//! credential is a clear error in [`UploadStats::last_error`] (never the secret), and nothing
//! local is lost to it.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "object-store")] {
//! use mission_store::RemoteRoot;
//! use mission_store::upload::{UploadConfig, upload_pending};
//!
//! let local = std::env::temp_dir().join(format!("mission-upload-doc-{}", std::process::id()));
//! let bucket = std::env::temp_dir().join(format!("mission-bucket-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&bucket)?;
//! let remote = RemoteRoot::parse(&format!("file://{}", bucket.display()))?;
//! let stats = upload_pending(&UploadConfig::new(&local, remote))?;
//! assert_eq!(stats.files_uploaded, 0); // nothing written yet
//! # std::fs::remove_dir_all(&bucket)?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fs;
use std::io::Read as _;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use crate::layout::TENANT_NAME_FILE;
use crate::remote::{RemoteRoot, block_on, remote_error};
use crate::{Error, Result};

/// The range of [`UploadConfig::max_spill_bytes`]: 1 MiB to 64 TiB.
pub const MAX_SPILL_BYTES_RANGE: RangeInclusive<u64> = (1 << 20)..=(1 << 46);
/// The range of [`UploadConfig::part_size`]: 5 MiB (S3's smallest part) to 1 GiB.
pub const PART_SIZE_RANGE: RangeInclusive<usize> = (5 << 20)..=(1 << 30);
/// The range of [`UploadConfig::multipart_threshold`]: 5 MiB to 5 GiB (S3's largest `PUT`).
pub const MULTIPART_THRESHOLD_RANGE: RangeInclusive<u64> = (5 << 20)..=(5 << 30);
/// The range of [`UploadConfig::interval`] and [`UploadConfig::max_backoff`]: 1 ms to 1 h.
pub const INTERVAL_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3600);

/// Called after each acknowledged part of a multipart upload with the object's key and the
/// number of parts acknowledged so far (progress reporting).
pub type PartObserver = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// How the finalized files of a local store are uploaded (see the [module](self)).
///
/// Built with [`UploadConfig::new`] and the `with_*` methods; every numeric setting is checked
/// against its `*_RANGE` when an upload starts ([`Error::Invalid`] naming it).
#[derive(Clone)]
#[non_exhaustive]
pub struct UploadConfig {
    /// The local store root whose files are uploaded (the writer's root; the spill).
    pub local_root: PathBuf,
    /// Where they go.
    pub remote: RemoteRoot,
    /// Most bytes of files waiting for upload; past it the oldest are dropped, counted
    /// ([`MAX_SPILL_BYTES_RANGE`]; default 10 GiB).
    pub max_spill_bytes: u64,
    /// Files at least this big go up as multipart uploads ([`MULTIPART_THRESHOLD_RANGE`];
    /// default 16 MiB).
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload ([`PART_SIZE_RANGE`]; default 8 MiB).
    pub part_size: usize,
    /// Keep local files after upload (remembered, not sent again); default `false`: the local
    /// file is deleted once the bucket acknowledged it.
    pub keep_local: bool,
    /// Pause between passes of the background [`Uploader`] when all went well
    /// ([`INTERVAL_RANGE`]; default 1 s).
    pub interval: Duration,
    /// Longest pause after failed passes (the pause doubles from `interval` up to this;
    /// [`INTERVAL_RANGE`]; default 30 s).
    pub max_backoff: Duration,
    part_observer: Option<PartObserver>,
}

impl std::fmt::Debug for UploadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadConfig")
            .field("local_root", &self.local_root)
            .field("remote", &self.remote)
            .field("max_spill_bytes", &self.max_spill_bytes)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("keep_local", &self.keep_local)
            .field("interval", &self.interval)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

impl UploadConfig {
    /// Uploads `local_root`'s finalized files to `remote`, with the defaults.
    pub fn new(local_root: impl Into<PathBuf>, remote: RemoteRoot) -> Self {
        Self {
            local_root: local_root.into(),
            remote,
            max_spill_bytes: 10 << 30,
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            keep_local: false,
            interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            part_observer: None,
        }
    }

    /// Sets [`max_spill_bytes`](Self::max_spill_bytes).
    pub fn with_max_spill_bytes(mut self, bytes: u64) -> Self {
        self.max_spill_bytes = bytes;
        self
    }

    /// Sets [`multipart_threshold`](Self::multipart_threshold).
    pub fn with_multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// Sets [`keep_local`](Self::keep_local).
    pub fn with_keep_local(mut self, keep: bool) -> Self {
        self.keep_local = keep;
        self
    }

    /// Sets [`interval`](Self::interval).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`max_backoff`](Self::max_backoff).
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Calls `observer` after each acknowledged part of a multipart upload.
    pub fn with_part_observer(mut self, observer: PartObserver) -> Self {
        self.part_observer = Some(observer);
        self
    }

    /// Checks every setting against its range.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting, its value and its range.
    pub fn validate(&self) -> Result<()> {
        fn check<T: PartialOrd + std::fmt::Debug>(
            what: &'static str,
            value: T,
            range: &RangeInclusive<T>,
        ) -> Result<()> {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(Error::Invalid {
                    what,
                    reason: format!("{value:?} is outside {:?}..={:?}", range.start(), range.end()),
                })
            }
        }
        check("max_spill_bytes", self.max_spill_bytes, &MAX_SPILL_BYTES_RANGE)?;
        check("multipart_threshold", self.multipart_threshold, &MULTIPART_THRESHOLD_RANGE)?;
        check("part_size", self.part_size, &PART_SIZE_RANGE)?;
        check("interval", self.interval, &INTERVAL_RANGE)?;
        check("max_backoff", self.max_backoff, &INTERVAL_RANGE)?;
        Ok(())
    }
}

/// What an upload did: totals since the uploader started (or of one [`upload_pending`] pass).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadStats {
    /// Files the bucket acknowledged.
    pub files_uploaded: u64,
    /// Their bytes.
    pub bytes_uploaded: u64,
    /// Parts acknowledged in multipart uploads.
    pub parts_uploaded: u64,
    /// Files found in the bucket already (same key and size) and not sent again.
    pub files_already_there: u64,
    /// Files waiting in the local directory after the last pass.
    pub files_pending: u64,
    /// Their bytes.
    pub bytes_pending: u64,
    /// Files deleted unsent because the waiting files passed `max_spill_bytes`, oldest first.
    pub files_dropped: u64,
    /// Their bytes.
    pub bytes_dropped: u64,
    /// Events in the dropped files (from their footers; 0 for a file whose footer could not
    /// be read).
    pub events_dropped: u64,
    /// Upload attempts that failed (each retried on a later pass).
    pub failures: u64,
    /// Passes run.
    pub passes: u64,
    /// The last failure, if the last pass failed: what, where and why (never credentials).
    pub last_error: Option<String>,
    /// Whether the last failure was the bucket refusing the credentials.
    pub denied: bool,
}

/// Uploads every finalized file waiting in the local store once, oldest first, and returns
/// what it did. Stops at the first failure (the bucket is likely unreachable), reporting it in
/// [`UploadStats::last_error`]; the files stay for the next call. `mission-ctl upload` is this.
///
/// # Errors
/// [`Error::Invalid`] for a setting out of range; [`Error::RemoteRoot`] if the client cannot be
/// configured; [`Error::Io`] if the local store cannot be listed.
pub fn upload_pending(config: &UploadConfig) -> Result<UploadStats> {
    config.validate()?;
    let mut state = State::new(config)?;
    let mut stats = UploadStats::default();
    state.pass(&mut stats)?;
    Ok(stats)
}

/// A background thread that uploads the local store's finalized files as they appear (see the
/// [module](self)). Dropping it stops the thread after its current file; [`Uploader::shutdown`]
/// first gives the waiting files a deadline to go up.
pub struct Uploader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    stats: Mutex<UploadStats>,
    wake: Condvar,
    woken: Mutex<bool>,
    stop: AtomicBool,
    /// Signalled after every pass.
    passed: Condvar,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader").field("stats", &self.stats()).finish()
    }
}

impl Uploader {
    /// Starts the uploader's thread; its first pass runs at once.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a setting out of range; [`Error::RemoteRoot`] if the client
    /// cannot be configured; [`Error::Io`] if the thread cannot be started.
    pub fn start(config: UploadConfig) -> Result<Self> {
        config.validate()?;
        let mut state = State::new(&config)?;
        let shared = Arc::new(Shared {
            stats: Mutex::new(UploadStats::default()),
            wake: Condvar::new(),
            woken: Mutex::new(false),
            stop: AtomicBool::new(false),
            passed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let local_root = config.local_root.clone();
        let thread = std::thread::Builder::new()
            .name("mission-upload".into())
            .spawn(move || {
                let mut pause = config.interval;
                while !worker.stop.load(Ordering::Acquire) {
                    let mut stats = worker.stats.lock().map(|s| s.clone()).unwrap_or_default();
                    if let Err(e) = state.pass(&mut stats) {
                        state.failed(&mut stats, e);
                    }
                    let failed = stats.last_error.is_some();
                    if let Ok(mut shared_stats) = worker.stats.lock() {
                        *shared_stats = stats;
                    }
                    worker.passed.notify_all();
                    pause = if failed {
                        (pause * 2).clamp(config.interval, config.max_backoff)
                    } else {
                        config.interval
                    };
                    let Ok(mut woken) = worker.woken.lock() else { break };
                    let deadline = Instant::now() + pause;
                    while !*woken && !worker.stop.load(Ordering::Acquire) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        woken = match worker.wake.wait_timeout(woken, left) {
                            Ok((guard, _)) => guard,
                            Err(_) => return,
                        };
                    }
                    *woken = false;
                }
            })
            .map_err(|e| Error::io("start the upload thread for", local_root, e))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// What the uploader has done so far.
    pub fn stats(&self) -> UploadStats {
        self.shared.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts the next pass now (after a writer finalized files, say) instead of at the end of
    /// the pause.
    pub fn wake(&self) {
        if let Ok(mut woken) = self.shared.woken.lock() {
            *woken = true;
        }
        self.shared.wake.notify_all();
    }

    /// Runs passes until one ends with nothing waiting and no error, or `timeout` passes, and
    /// returns the stats after the last pass. A pass that started before this call does not
    /// count: files finalized before the call are in the answer.
    pub fn flush(&self, timeout: Duration) -> UploadStats {
        let deadline = Instant::now() + timeout;
        let Ok(mut stats) = self.shared.stats.lock() else { return UploadStats::default() };
        let mut seen = stats.passes;
        let mut fresh = 0;
        loop {
            if stats.passes > seen {
                fresh += stats.passes - seen;
                seen = stats.passes;
                // The second pass after the call surely started after it.
                if fresh >= 2 && stats.files_pending == 0 && stats.last_error.is_none() {
                    return stats.clone();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
                return stats.clone();
            }
            drop(stats);
            self.wake();
            stats = match self.shared.stats.lock() {
                Ok(guard) => guard,
                Err(_) => return UploadStats::default(),
            };
            stats = match self.shared.passed.wait_timeout(stats, left) {
                Ok((guard, _)) => guard,
                Err(_) => return UploadStats::default(),
            };
        }
    }

    /// Gives the waiting files until `timeout` to go up ([`flush`](Self::flush)), stops the
    /// thread and returns the final stats. What did not go up stays in the local directory for
    /// the next uploader.
    pub fn shutdown(mut self, timeout: Duration) -> UploadStats {
        let _ = self.flush(timeout);
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One uploader's memory: the client, and what it already sent or checked.
struct State {
    config: UploadConfig,
    store: Arc<dyn ObjectStore>,
    /// Files sent and kept locally (`keep_local`), and tenant name files sent.
    sent: HashSet<PathBuf>,
    /// Whether the backlog found at start was checked against the bucket.
    backlog_checked: bool,
}

/// A tenant name file: its path and its key relative to the root.
type NameFile = (PathBuf, String);

/// A file waiting for upload.
struct Waiting {
    path: PathBuf,
    relative: String,
    bytes: u64,
    modified: SystemTime,
}

impl State {
    fn new(config: &UploadConfig) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            store: config.remote.object_store()?,
            sent: HashSet::new(),
            backlog_checked: false,
        })
    }

    /// One pass: drop the oldest past the bound, then upload oldest first until done or a
    /// failure. An `Err` is a local failure (listing); a remote failure is in `stats`.
    fn pass(&mut self, stats: &mut UploadStats) -> Result<()> {
        stats.passes += 1;
        stats.last_error = None;
        stats.denied = false;
        let (mut waiting, names) = self.waiting()?;
        // Oldest first: by modification time, then name.
        waiting.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.relative.cmp(&b.relative)));
        let mut total: u64 = waiting.iter().map(|w| w.bytes).sum();
        let mut drop_count = 0;
        while total > self.config.max_spill_bytes && drop_count < waiting.len() {
            let file = &waiting[drop_count];
            let events = footer_rows(&file.path);
            match fs::remove_file(&file.path) {
                Ok(()) => {
                    stats.files_dropped += 1;
                    stats.bytes_dropped += file.bytes;
                    stats.events_dropped += events;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("drop", &file.path, e)),
            }
            total -= file.bytes;
            drop_count += 1;
        }
        waiting.drain(..drop_count);
        stats.files_pending = waiting.len() as u64;
        stats.bytes_pending = total;

        // Tenant name files first, so readers of the bucket map shortened directories.
        for (path, relative) in names {
            if self.sent.contains(&path) {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else { continue };
            if let Err(e) = self.put(&relative, bytes) {
                self.failed(stats, e);
                return Ok(());
            }
            self.sent.insert(path);
        }

        let check_backlog = !self.backlog_checked;
        for file in waiting {
            if check_backlog && self.already_there(&file)? {
                stats.files_already_there += 1;
            } else {
                match self.upload(&file, stats) {
                    Ok(true) => {
                        stats.files_uploaded += 1;
                        stats.bytes_uploaded += file.bytes;
                    }
                    // Gone meanwhile (compacted, or erased): nothing to send.
                    Ok(false) => {
                        stats.files_pending = stats.files_pending.saturating_sub(1);
                        stats.bytes_pending = stats.bytes_pending.saturating_sub(file.bytes);
                        continue;
                    }
                    Err(e) => {
                        self.failed(stats, e);
                        return Ok(());
                    }
                }
            }
            self.done_with(&file)?;
            stats.files_pending = stats.files_pending.saturating_sub(1);
            stats.bytes_pending = stats.bytes_pending.saturating_sub(file.bytes);
        }
        self.backlog_checked = true;
        Ok(())
    }

    fn failed(&self, stats: &mut UploadStats, error: Error) {
        stats.failures += 1;
        stats.denied = matches!(error, Error::Remote { denied: true, .. });
        stats.last_error = Some(error.to_string());
    }

    /// The local file is in the bucket: delete it, or remember it.
    fn done_with(&mut self, file: &Waiting) -> Result<()> {
        if self.config.keep_local {
            self.sent.insert(file.path.clone());
            return Ok(());
        }
        match fs::remove_file(&file.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("delete the uploaded file", &file.path, e)),
        }
    }

    /// The finalized files waiting (not yet sent), and the tenant name files.
    fn waiting(&self) -> Result<(Vec<Waiting>, Vec<NameFile>)> {
        let events = self.config.local_root.join("events");
        let mut files = Vec::new();
        crate::layout::walk(&events, &mut files)?;
        let mut waiting = Vec::new();
        let mut names = Vec::new();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(relative) = relative(&self.config.local_root, &path) else { continue };
            if name == TENANT_NAME_FILE {
                names.push((path, relative));
                continue;
            }
            // What readers read: complete files only (temporary ones are hidden).
            if !crate::layout::is_finalized_name(name) {
                continue;
            }
            if self.sent.contains(&path) {
                continue;
            }
            let Ok(meta) = fs::metadata(&path) else { continue };
            waiting.push(Waiting {
                path,
                relative,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok((waiting, names))
    }

    /// Whether the bucket holds the file already (same key, same size).
    fn already_there(&self, file: &Waiting) -> Result<bool> {
        let key = self.config.remote.key(&file.relative)?;
        let store = Arc::clone(&self.store);
        match block_on(async move { store.head(&key).await })? {
            Ok(meta) => Ok(meta.size == file.bytes),
            Err(_) => Ok(false),
        }
    }

    fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.config.remote.put(&self.config.remote.key(relative)?, bytes)
    }

    /// Uploads one file; `Ok(false)` if it vanished before it could be read.
    fn upload(&self, file: &Waiting, stats: &mut UploadStats) -> Result<bool> {
        let mut local = match fs::File::open(&file.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("open for upload", &file.path, e)),
        };
        if file.bytes < self.config.multipart_threshold {
            let mut bytes = Vec::with_capacity(file.bytes as usize);
            local.read_to_end(&mut bytes).map_err(|e| Error::io("read", &file.path, e))?;
            self.put(&file.relative, bytes)?;
            return Ok(true);
        }
        let key = self.config.remote.key(&file.relative)?;
        let location = self.config.remote.location(&key);
        let store = Arc::clone(&self.store);
        let started = {
            let key = key.clone();
            block_on(async move { store.put_multipart(&key).await })?
        };
        let mut upload =
            started.map_err(|e| remote_error("start a multipart upload", location.clone(), &e))?;
        let mut parts = 0;
        let outcome: Result<()> = (|| {
            loop {
                let mut part = vec![0; self.config.part_size];
                let mut filled = 0;
                while filled < part.len() {
                    let n = local
                        .read(&mut part[filled..])
                        .map_err(|e| Error::io("read", &file.path, e))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                part.truncate(filled);
                let sending = upload.put_part(PutPayload::from(part));
                block_on(sending)?
                    .map_err(|e| remote_error("upload a part of", location.clone(), &e))?;
                parts += 1;
                stats.parts_uploaded += 1;
                if let Some(observer) = &self.config.part_observer {
                    observer(&file.relative, parts);
                }
                if filled < self.config.part_size {
                    break;
                }
            }
            Ok(())
        })();
        let (upload, finished) = match outcome {
            Ok(()) => block_on(async move {
                let done = upload.complete().await;
                (upload, done.map(|_| ()))
            })?,
            Err(e) => {
                // Best effort: the bucket forgets the parts (a bucket lifecycle rule for
                // incomplete multipart uploads catches what an abort cannot reach).
                let _ = block_on(async move { upload.abort().await });
                return Err(e);
            }
        };
        if let Err(e) = finished {
            let mut upload = upload;
            let _ = block_on(async move { upload.abort().await });
            return Err(remote_error("complete the multipart upload of", location, &e));
        }
        Ok(true)
    }
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> =
        rel.components().map(|c| c.as_os_str().to_str()).collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// Rows in an events file, from its footer (0 if it cannot be read).
fn footer_rows(path: &Path) -> u64 {
    crate::EventFile::open_path(path, "")
        .map(|f| f.metadata().file_metadata().num_rows().max(0) as u64)
        .unwrap_or(0)
}
