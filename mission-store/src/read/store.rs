//! [`Store`]: a store on disk, opened for reading, retention and erasure.

use std::fs;
use std::path::{Path, PathBuf};

use crate::layout::{Partition, TEMP_SUFFIX, walk};
use crate::read::source::{Origin, Source};
use crate::remote_url::looks_like_url;
#[cfg(not(feature = "object-store"))]
use crate::remote_url::redact_url;
use crate::write::{compact, wal};
use crate::{Error, Result};

/// One finalized events file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreFile {
    /// Its path.
    pub path: PathBuf,
    /// Its partition (from the path).
    pub partition: Partition,
    /// Its size in bytes.
    pub bytes: u64,
    /// Only these row ranges `(first, count)` of it, when it is a merged file of which part
    /// was delivered already (a [`Follower`](crate::Follower)'s), or read in place of a
    /// file it replaced; `None`: every row.
    pub(crate) rows: Option<Vec<(u64, u64)>>,
    /// Where its bytes are: the local disk, or an object of a remote root.
    pub(crate) origin: Origin,
}

impl StoreFile {
    /// The row ranges `(first, count)` to read of it, when not all (see
    /// [`Follower`](crate::Follower) and [`compact`](crate::write::compact)).
    pub fn row_ranges(&self) -> Option<&[(u64, u64)]> {
        self.rows.as_deref()
    }

    /// Whether it is an object on object storage (its [`path`](Self::path) is then the
    /// object's URL).
    pub fn is_remote(&self) -> bool {
        self.origin.is_remote()
    }
}

/// What [`Store::open`] found besides readable files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Temporary files of writers that did not finish (a killed process): never read;
    /// [`Store::recover`] deletes those whose rows are in a log segment and quarantines the rest.
    pub leftovers: Vec<PathBuf>,
    /// `.parquet` files outside the partition layout: never read.
    pub misplaced: Vec<PathBuf>,
    /// Write-ahead log segments of writers that did not finish: their rows are not in the
    /// store until [`Store::recover`] (or the next writer to start) rebuilds their files.
    pub wal: Vec<PathBuf>,
    /// Temporary files and log segments of writers that are running: theirs, not leftovers.
    pub in_progress: usize,
    /// Files recovery could not use, moved under `<root>/quarantine/`: never read.
    pub quarantined: Vec<PathBuf>,
    /// Files a merged file replaces that are still there (a compaction between its rename and
    /// its deletes, or killed there): never read, their rows are in the merged file;
    /// [`Store::compact`] and erasure delete them.
    pub replaced: Vec<PathBuf>,
}

/// What [`Store::check`] found: every file read through once.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StoreCheck {
    /// Finalized files.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Events in the readable files.
    pub events: u64,
    /// Temporary files left by writers that did not finish.
    pub leftovers: Vec<PathBuf>,
    /// `.parquet` files outside the partition layout.
    pub misplaced: Vec<PathBuf>,
    /// Files that cannot be read, with the reason (corrupt, foreign, newer schema).
    pub unreadable: Vec<(PathBuf, String)>,
    /// Log segments of writers that did not finish, with the rows recovery will add (not yet
    /// counted in `events`).
    pub wal: Vec<crate::PendingSegment>,
    /// Files of running writers (not a problem).
    pub in_progress: usize,
    /// Files recovery could not use, under `<root>/quarantine/`.
    pub quarantined: Vec<PathBuf>,
}

impl StoreCheck {
    /// Whether nothing is wrong.
    pub fn healthy(&self) -> bool {
        self.leftovers.is_empty()
            && self.misplaced.is_empty()
            && self.unreadable.is_empty()
            && self.wal.is_empty()
            && self.quarantined.is_empty()
    }
}

/// A file a read skipped, and why: every answer computed from a store is only as complete as
/// the files it could read, so every read API reports these (see [`Store::skipped_files`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped (corrupt, foreign, newer schema, …).
    pub reason: String,
    /// The rows it holds, when its footer could be read (`None`: unknown, the file is too
    /// damaged to tell).
    pub rows: Option<u64>,
}

impl std::fmt::Display for SkippedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)?;
        match self.rows {
            Some(rows) => write!(f, " ({rows} rows not read)"),
            None => write!(f, " (rows unknown)"),
        }
    }
}

/// A store of events on disk: `<root>/events/tenant=<t>/date=<d>/hour=<h>/*.parquet`.
///
/// Opening lists the finalized files (a listing, not a read); queries open only the files and
/// row groups that can match. Files a killed writer left behind are reported, never read.
///
/// A store may be [scoped](Self::scoped) to one tenant: it then lists only that tenant's
/// partitions, so every query, view, listing, check, erasure and retention pass of it reads or
/// changes that tenant's files and nothing else, whatever filters the caller adds. This is how
/// a tenant-scoped principal reads (the MCP server, the dashboard, `mission-ctl --tenant`,
/// Python's `query(tenant=)`): the scope is applied where the files are listed, not to each
/// answer.
///
/// Every read through a `Store` (queries, [`threads`](Self::threads),
/// [`thread`](Self::thread), [`operation_stats`](Self::operation_stats),
/// [`cost_report`](Self::cost_report), [`anomalies`](Self::anomalies), [`check`](Self::check))
/// records the files it had to skip in the store's read log, so a caller asks
/// [`skipped_files`](Self::skipped_files) after computing an answer and never presents a
/// partial answer as a whole one. Clones share the log; open a store per request to keep
/// requests apart.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    files: Vec<StoreFile>,
    report: OpenReport,
    progress: Option<ProgressHook>,
    scope: Option<String>,
    skipped: std::sync::Arc<std::sync::Mutex<Vec<SkippedFile>>>,
    /// The root on object storage, when it is one (`root` is then its URL).
    #[cfg(feature = "object-store")]
    remote: Option<crate::remote::RemoteRoot>,
}

/// The callback of [`Store::with_progress`].
#[derive(Clone)]
pub(crate) struct ProgressHook(std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl ProgressHook {
    pub(crate) fn call(&self, done: usize, total: usize) {
        (self.0)(done, total);
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Drops from `files` (sorted by path) those a merged file among them replaces, and returns
/// them. Only merged files in a directory holding other files are opened (their footer): once
/// a compaction has deleted its inputs, listing costs no reads.
fn drop_replaced(files: &mut Vec<StoreFile>) -> Vec<PathBuf> {
    let mut per_dir: std::collections::HashMap<&Path, usize> = Default::default();
    for f in files.iter() {
        if let Some(dir) = f.path.parent() {
            *per_dir.entry(dir).or_default() += 1;
        }
    }
    let mut replaced = std::collections::HashSet::new();
    for f in files.iter() {
        let name = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(dir) = f.path.parent() else { continue };
        if !compact::is_compacted_name(name) || per_dir.get(dir).is_none_or(|n| *n < 2) {
            continue;
        }
        for source in compact::read_sources_of(f).unwrap_or_default() {
            replaced.insert(dir.join(source.file));
        }
    }
    if replaced.is_empty() {
        return Vec::new();
    }
    let mut dropped = Vec::new();
    files.retain(|f| {
        let keep = !replaced.contains(&f.path);
        if !keep {
            dropped.push(f.path.clone());
        }
        keep
    });
    dropped
}

impl Store {
    /// Opens the store at `root` (which need not exist yet: it is then empty). A root written
    /// as a URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///…`) is opened on object
    /// storage, as [`open_url`](Self::open_url) does.
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed; for a URL, as
    /// [`open_url`](Self::open_url).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        if let Some(url) = root.as_ref().to_str().filter(|r| looks_like_url(r)) {
            return Self::open_url(url);
        }
        let root = root.as_ref().to_path_buf();
        let mut paths = Vec::new();
        walk(&root.join("events"), &mut paths)?;
        paths.sort();
        let mut files = Vec::new();
        let mut report = OpenReport::default();
        for (writer, (segments, temps)) in wal::leftovers_by_writer(&paths) {
            if !writer.is_empty() && wal::writer_running(&root, &writer) {
                report.in_progress += segments.len() + temps.len();
            } else {
                report.wal.extend(segments);
                report.leftovers.extend(temps);
            }
        }
        walk(&wal::quarantine_dir(&root), &mut report.quarantined)?;
        report.quarantined.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(TEMP_SUFFIX) || name.ends_with(wal::WAL_SUFFIX) {
                continue;
            }
            if !crate::layout::is_finalized_name(name) {
                continue;
            }
            match Partition::from_path(&root, &path) {
                Some(partition) => {
                    let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    files.push(StoreFile {
                        path,
                        partition,
                        bytes,
                        rows: None,
                        origin: Origin::local(),
                    });
                }
                None => report.misplaced.push(path),
            }
        }
        report.replaced = drop_replaced(&mut files);
        Ok(Self::assemble(root, files, report))
    }

    fn assemble(root: PathBuf, files: Vec<StoreFile>, report: OpenReport) -> Self {
        Self {
            root,
            files,
            report,
            progress: None,
            scope: None,
            skipped: Default::default(),
            #[cfg(feature = "object-store")]
            remote: None,
        }
    }

    /// Opens the store whose root is the URL `url` (`s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`, `file:///path`), with credentials from the cloud's standard
    /// environment (see [`RemoteRoot`](crate::RemoteRoot)). Listing lists the objects under
    /// `<prefix>/events/`; queries fetch footers and the column chunks they need with ranged
    /// GETs, never whole files they do not need.
    ///
    /// # Errors
    /// [`Error::RemoteRoot`] for a URL this build cannot open (including any URL when
    /// mission-store is built without the `object-store` feature); [`Error::Remote`] if the
    /// listing fails (unreachable, access denied — `denied` is then true).
    pub fn open_url(url: &str) -> Result<Self> {
        #[cfg(feature = "object-store")]
        {
            Self::open_remote(crate::remote::RemoteRoot::parse(url)?)
        }
        #[cfg(not(feature = "object-store"))]
        {
            Err(Error::RemoteRoot {
                url: redact_url(url),
                reason: "this build has no object storage support (build mission-store with \
                         the `s3`, `gcs`, `azure` or `object-store` feature)"
                    .into(),
            })
        }
    }

    /// Opens the store at a parsed [`RemoteRoot`](crate::RemoteRoot) (which carries any
    /// options set in code).
    ///
    /// # Errors
    /// As [`open_url`](Self::open_url).
    #[cfg(feature = "object-store")]
    pub fn open_remote(remote: crate::remote::RemoteRoot) -> Result<Self> {
        Self::list_remote(remote, None)
    }

    /// Lists a remote store; a scoped one lists only `events/tenant=<t>/`.
    #[cfg(feature = "object-store")]
    fn list_remote(remote: crate::remote::RemoteRoot, scope: Option<&str>) -> Result<Self> {
        let root = remote.root_path();
        let under = match scope {
            Some(t) => format!("events/tenant={}/", crate::layout::tenant_segment(t)),
            None => "events/".to_owned(),
        };
        let objects = remote.list(&under)?;
        // Shortened tenant directories keep the full name in a small object beside them.
        let mut names = std::collections::HashMap::new();
        for object in &objects {
            let Some(relative) = remote.relative(&object.location) else { continue };
            if let Some(dir) =
                relative.strip_suffix(&format!("/{}", crate::layout::TENANT_NAME_FILE))
                && let Some(segment) = dir.strip_prefix("events/tenant=")
                && let Some(bytes) = remote.read_small(&object.location)?
                && let Ok(name) = String::from_utf8(bytes.to_vec())
            {
                names.insert(segment.to_owned(), name);
            }
        }
        let mut files = Vec::new();
        let mut report = OpenReport::default();
        for object in objects {
            let Some(relative) = remote.relative(&object.location) else { continue };
            let path = root.join(relative);
            let name = relative.rsplit('/').next().unwrap_or("");
            if name.ends_with(TEMP_SUFFIX) || name.ends_with(wal::WAL_SUFFIX) {
                continue;
            }
            if !crate::layout::is_finalized_name(name) {
                continue;
            }
            match Partition::from_relative(relative, |segment| names.get(segment).cloned()) {
                Some(partition) => files.push(StoreFile {
                    path,
                    partition,
                    bytes: object.size,
                    rows: None,
                    origin: Origin { remote: Some((remote.clone(), object.location)) },
                }),
                None => report.misplaced.push(path),
            }
        }
        // In path order, as a local store lists them (object keys sort `-` before `/`).
        files.sort_by(|a, b| a.path.cmp(&b.path));
        report.replaced = drop_replaced(&mut files);
        let mut store = Self::assemble(root, files, report);
        store.remote = Some(remote);
        Ok(match scope {
            Some(t) => store.scoped(t),
            None => store,
        })
    }

    /// The root on object storage, when the store is on one.
    #[cfg(feature = "object-store")]
    pub fn remote(&self) -> Option<&crate::remote::RemoteRoot> {
        self.remote.as_ref()
    }

    /// Whether the store's root is on object storage (its [`root`](Self::root) is then the
    /// root's URL).
    pub fn is_remote(&self) -> bool {
        #[cfg(feature = "object-store")]
        {
            self.remote.is_some()
        }
        #[cfg(not(feature = "object-store"))]
        {
            false
        }
    }

    /// Fails with [`Error::NeedsLocalRoot`] for a store on object storage: `operation`
    /// rewrites or moves files in place, which object storage does not do.
    pub(crate) fn require_local(&self, operation: &'static str) -> Result<()> {
        if self.is_remote() {
            return Err(Error::NeedsLocalRoot {
                operation,
                url: self.root.to_string_lossy().into_owned(),
            });
        }
        Ok(())
    }

    /// Opens the store at `root` seeing only `tenant`'s partitions, or every tenant's for
    /// `None` (the same as [`open`](Self::open)); see [`scoped`](Self::scoped).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_scoped(root: impl AsRef<Path>, tenant: Option<&str>) -> Result<Self> {
        #[cfg(feature = "object-store")]
        if let Some(url) = root.as_ref().to_str().filter(|r| looks_like_url(r)) {
            return Self::list_remote(crate::remote::RemoteRoot::parse(url)?, tenant);
        }
        let store = Self::open(root)?;
        Ok(match tenant {
            Some(t) => store.scoped(t),
            None => store,
        })
    }

    /// This store limited to `tenant`'s partitions: its [`files`](Self::files), every
    /// [`query`](Self::query) and view (thread, threads, statistics, cost, anomalies),
    /// [`file_metadata`](Self::file_metadata), [`check`](Self::check), the leftovers it
    /// reports, erasure and retention see that tenant's files only. A query's own
    /// [`tenant`](crate::Query::tenant) filter can only narrow it further. Scoping a scoped store to
    /// another tenant leaves it empty.
    ///
    /// Cost: one pass over the file list; nothing is read.
    pub fn scoped(mut self, tenant: &str) -> Self {
        if self.scope.as_deref().is_some_and(|s| s != tenant) {
            self.files.clear();
            self.report = OpenReport::default();
            return self;
        }
        self.files.retain(|f| f.partition.tenant == tenant);
        let dir = self
            .root
            .join("events")
            .join(format!("tenant={}", crate::layout::tenant_segment(tenant)));
        self.report.leftovers.retain(|p| p.starts_with(&dir));
        self.report.wal.retain(|p| p.starts_with(&dir));
        self.report.replaced.retain(|p| p.starts_with(&dir));
        // A misplaced or quarantined file belongs to no tenant that can be told, and the count of
        // running writers' files is the whole store's: only an unscoped store lists them.
        self.report.misplaced.clear();
        self.report.quarantined.clear();
        self.report.in_progress = 0;
        self.scope = Some(tenant.to_owned());
        self
    }

    /// The tenant this store is [scoped](Self::scoped) to; `None` sees every tenant.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Calls `progress(files_done, files_to_read)` whenever a query of this store (including
    /// [`threads`](Self::threads), [`operation_stats`](Self::operation_stats),
    /// [`cost_report`](Self::cost_report) and [`check`](Self::check)) moves to its next file,
    /// and once more when it has read them all: for a progress bar over a long scan.
    ///
    /// Cost: one call per file; nothing per row.
    pub fn with_progress(
        mut self,
        progress: impl Fn(usize, usize) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(ProgressHook(std::sync::Arc::new(progress)));
        self
    }

    pub(crate) fn progress_hook(&self) -> Option<&ProgressHook> {
        self.progress.as_ref()
    }

    /// The files reads through this store (and its clones) skipped so far, each once, in path
    /// order: non-empty means an answer computed from it is missing those files' rows.
    ///
    /// Cost: a lock and a copy of the (short) list.
    pub fn skipped_files(&self) -> Vec<SkippedFile> {
        self.skipped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records a file a read skipped (once per path).
    pub(crate) fn note_skipped(&self, file: SkippedFile) {
        let mut list = self.skipped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(at) = list.binary_search_by(|f| f.path.cmp(&file.path)) {
            list.insert(at, file);
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The finalized files, in path order.
    pub fn files(&self) -> &[StoreFile] {
        &self.files
    }

    /// Leftovers and misplaced files found when opening.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Deletes the temporary files killed writers left behind; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if one cannot be removed.
    pub fn remove_leftovers(&mut self) -> Result<usize> {
        if self.report.leftovers.is_empty() {
            return Ok(0);
        }
        self.require_local("removing leftovers")?;
        let n = self.report.leftovers.len();
        for path in self.report.leftovers.drain(..) {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        Ok(n)
    }

    /// The finalized files with the value of metadata key `key` in each (`None` where a file
    /// has none), in path order.
    ///
    /// # Errors
    /// I/O or Parquet errors reading a file's footer.
    pub fn file_metadata(&self, key: &str) -> Result<Vec<(PathBuf, Option<String>)>> {
        self.files
            .iter()
            .map(|f| {
                let file = Source::open(f, &Default::default())?;
                let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                    .map_err(|e| Error::parquet(&f.path, e))?;
                let value = parquet::file::reader::FileReader::metadata(&reader)
                    .file_metadata()
                    .key_value_metadata()
                    .and_then(|kv| kv.iter().find(|k| k.key == key))
                    .and_then(|k| k.value.clone());
                Ok((f.path.clone(), value))
            })
            .collect()
    }

    /// Lists the files again, keeping the progress callback and the scope.
    pub(crate) fn reopen(&mut self) -> Result<()> {
        let progress = self.progress.take();
        let skipped = self.skipped.clone();
        #[cfg(feature = "object-store")]
        if let Some(remote) = self.remote.clone() {
            *self = Store::list_remote(remote, self.scope.as_deref())?;
            self.progress = progress;
            self.skipped = skipped;
            return Ok(());
        }
        *self = Store::open_scoped(&self.root, self.scope.as_deref())?;
        self.progress = progress;
        self.skipped = skipped;
        Ok(())
    }
}
