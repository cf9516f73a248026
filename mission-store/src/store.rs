//! [`Store`]: a store on disk, opened for reading, retention and erasure.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::{Array, BooleanArray, MapArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use mission_core::Timestamp;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::WriterProperties;

use crate::layout::{Partition, TEMP_SUFFIX};
use crate::query::Query;
use crate::schema::{self, col};
use crate::sink::RetentionPolicy;
use crate::wal;
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

pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io("stat", &path, e))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

impl Store {
    /// Opens the store at `root` (which need not exist yet: it is then empty).
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
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
            if !name.ends_with(".parquet") || name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            match Partition::from_path(&root, &path) {
                Some(partition) => {
                    let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    files.push(StoreFile { path, partition, bytes });
                }
                None => report.misplaced.push(path),
            }
        }
        Ok(Self { root, files, report, progress: None, scope: None, skipped: Default::default() })
    }

    /// Opens the store at `root` seeing only `tenant`'s partitions, or every tenant's for
    /// `None` (the same as [`open`](Self::open)); see [`scoped`](Self::scoped).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_scoped(root: impl AsRef<Path>, tenant: Option<&str>) -> Result<Self> {
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
    /// [`tenant`](Query::tenant) filter can only narrow it further. Scoping a scoped store to
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

    /// Recovers what writers that are no longer running left behind (see [`wal`]): rebuilds
    /// the files of their write-ahead log segments, exactly once, deletes temporary files whose
    /// rows were in a segment, and moves what cannot be recovered under `<root>/quarantine/`.
    /// Files of running writers are left alone, so this is safe beside live writers. Every
    /// [`ParquetSink`](crate::ParquetSink) does this when it starts; then the store is opened
    /// again.
    ///
    /// # Errors
    /// I/O or Parquet errors writing a recovered file or moving a leftover (what was done
    /// before stays done; running it again continues).
    pub fn recover(&mut self) -> Result<wal::Recovery> {
        let props = crate::sink::writer_properties(&crate::StoreConfig::default())?;
        let report = wal::recover(&self.root, &props)?;
        self.reopen()?;
        Ok(report)
    }

    /// Deletes the temporary files killed writers left behind; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if one cannot be removed.
    pub fn remove_leftovers(&mut self) -> Result<usize> {
        let n = self.report.leftovers.len();
        for path in self.report.leftovers.drain(..) {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        Ok(n)
    }

    /// Reads every file once (the time column only) and reports files, events, leftovers of
    /// killed writers and files that cannot be read.
    ///
    /// # Errors
    /// I/O errors reading a file that could be opened.
    pub fn check(&self) -> Result<StoreCheck> {
        let mut iter = self.query().columns(&[col::TIME]).iter()?;
        let mut events = 0;
        for batch in iter.by_ref() {
            events += batch?.num_rows() as u64;
        }
        Ok(StoreCheck {
            files: self.files.len(),
            bytes: self.files.iter().map(|f| f.bytes).sum(),
            events,
            leftovers: self.report.leftovers.clone(),
            misplaced: self.report.misplaced.clone(),
            unreadable: iter.stats().skipped.clone(),
            wal: self.report.wal.iter().map(|p| wal::inspect(p)).collect(),
            in_progress: self.report.in_progress,
            quarantined: self.report.quarantined.clone(),
        })
    }

    /// A query over every event in the store.
    pub fn query(&self) -> Query<'_> {
        Query::new(self)
    }

    /// Deletes partitions whose hour ended more than `max_age` before `now`; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed or removed.
    pub fn apply_retention(&mut self, max_age: Duration, now: Timestamp) -> Result<usize> {
        self.apply_retention_policy(&RetentionPolicy::all(max_age), now)
    }

    /// Deletes partitions whose hour ended longer before `now` than their tenant's maximum
    /// age in `policy`; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed or removed.
    pub fn apply_retention_policy(
        &mut self,
        policy: &RetentionPolicy,
        now: Timestamp,
    ) -> Result<usize> {
        let n = expire_partitions_in(&self.root, policy, now, self.scope.as_deref())?;
        self.reopen()?;
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
                let file = File::open(&f.path).map_err(|e| Error::io("open", &f.path, e))?;
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

    /// Rewrites every file holding events of `thread_id` (32 hex digits) without them,
    /// atomically per file; returns how many events were erased.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed id; I/O or Parquet errors of a rewrite (the file is
    /// then left as it was).
    pub fn erase_thread(&mut self, thread_id: &str) -> Result<u64> {
        thread_id
            .parse::<mission_core::ThreadId>()
            .map_err(|e| Error::Invalid { what: "thread_id", reason: e.to_string() })?;
        let id = thread_id.to_owned();
        self.erase_where(move |batch| {
            let threads = string_column(batch, col::THREAD_ID)?;
            Ok(BooleanArray::from_iter(
                (0..batch.num_rows()).map(|i| Some(threads.is_valid(i) && threads.value(i) == id)),
            ))
        })
    }

    /// Rewrites every file holding events whose attribute `key` equals `value` (for example a
    /// user id, for an erasure request) without them; returns how many events were erased.
    ///
    /// # Errors
    /// I/O or Parquet errors of a rewrite (the file is then left as it was).
    pub fn erase_attribute(&mut self, key: &str, value: &str) -> Result<u64> {
        self.erase_attribute_in(None, key, value)
    }

    /// [`erase_attribute`](Self::erase_attribute) within one tenant's partitions only (`None`:
    /// every tenant), for an erasure request made by a tenant's administrator.
    ///
    /// # Errors
    /// I/O or Parquet errors of a rewrite (the file is then left as it was).
    pub fn erase_attribute_in(
        &mut self,
        tenant: Option<&str>,
        key: &str,
        value: &str,
    ) -> Result<u64> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let tenant = tenant.map(str::to_owned);
        self.erase_where_in(tenant.as_deref(), move |batch| attribute_matches(batch, &key, &value))
    }

    /// Lists the files again, keeping the progress callback and the scope.
    fn reopen(&mut self) -> Result<()> {
        let progress = self.progress.take();
        let skipped = self.skipped.clone();
        *self = Store::open_scoped(&self.root, self.scope.as_deref())?;
        self.progress = progress;
        self.skipped = skipped;
        Ok(())
    }

    fn erase_where(
        &mut self,
        matches: impl Fn(&RecordBatch) -> Result<BooleanArray>,
    ) -> Result<u64> {
        self.erase_where_in(None, matches)
    }

    fn erase_where_in(
        &mut self,
        tenant: Option<&str>,
        matches: impl Fn(&RecordBatch) -> Result<BooleanArray>,
    ) -> Result<u64> {
        let mut erased = 0;
        for file in &self.files {
            if tenant.is_some_and(|t| file.partition.tenant != t) {
                continue;
            }
            erased += rewrite_without(&file.path, &matches)?;
        }
        self.reopen()?;
        Ok(erased)
    }
}

pub(crate) fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>()).ok_or_else(
        || Error::Invalid { what: "column", reason: format!("{name} missing or not text") },
    )
}

/// Rows whose attributes map has `key` = `value`.
pub(crate) fn attribute_matches(
    batch: &RecordBatch,
    key: &str,
    value: &str,
) -> Result<BooleanArray> {
    let map = batch
        .column_by_name(col::ATTRIBUTES)
        .and_then(|c| c.as_any().downcast_ref::<MapArray>())
        .ok_or_else(|| Error::Invalid { what: "column", reason: "attributes missing".into() })?;
    let keys = map.keys().as_any().downcast_ref::<StringArray>();
    let values = map.values().as_any().downcast_ref::<StringArray>();
    let (Some(keys), Some(values)) = (keys, values) else {
        return Err(Error::Invalid {
            what: "column",
            reason: "attributes is not Map<Utf8, Utf8>".into(),
        });
    };
    let offsets = map.value_offsets();
    Ok(BooleanArray::from_iter((0..map.len()).map(|row| {
        let hit = map.is_valid(row)
            && (offsets[row] as usize..offsets[row + 1] as usize)
                .any(|j| keys.value(j) == key && values.is_valid(j) && values.value(j) == value);
        Some(hit)
    })))
}

/// Checks a file's metadata: ours, and a version this build reads.
pub(crate) fn check_metadata(path: &Path, metadata: &ParquetMetaData) -> Result<()> {
    let kv = metadata.file_metadata().key_value_metadata();
    let version = kv
        .and_then(|kv| kv.iter().find(|k| k.key == schema::META_SCHEMA_VERSION))
        .and_then(|k| k.value.as_deref())
        .ok_or_else(|| Error::Foreign {
            path: path.into(),
            reason: "no mission.schema_version metadata".into(),
        })?;
    let found: u32 = version.parse().map_err(|_| Error::Foreign {
        path: path.into(),
        reason: format!("schema version {version:?}"),
    })?;
    if found > schema::SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            path: path.into(),
            found,
            supported: schema::SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Rewrites `path` without the rows `matches` selects; returns how many it removed.
fn rewrite_without(
    path: &Path,
    matches: &dyn Fn(&RecordBatch) -> Result<BooleanArray>,
) -> Result<u64> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    check_metadata(path, builder.metadata())?;
    let kv: Vec<KeyValue> =
        builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
    let mut kept = Vec::new();
    let mut removed = 0u64;
    for batch in reader {
        let batch = batch?;
        let hit = matches(&batch)?;
        let n = hit.true_count() as u64;
        removed += n;
        if n == 0 {
            kept.push(batch);
        } else {
            let keep = arrow::compute::not(&hit)?;
            kept.push(filter_record_batch(&batch, &keep)?);
        }
    }
    if removed == 0 {
        return Ok(0);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = path.with_file_name(format!(".{name}.erase{TEMP_SUFFIX}"));
    let write = || -> Result<()> {
        let out = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        let props = WriterProperties::builder()
            .set_compression(
                parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()),
            )
            .set_key_value_metadata(Some(
                kv.into_iter().filter(|k| !k.key.starts_with("ARROW:")).collect(),
            ))
            .build();
        let mut writer = ArrowWriter::try_new(out, schema::events_schema(), Some(props))
            .map_err(|e| Error::parquet(&temp, e))?;
        for batch in &kept {
            writer.write(batch).map_err(|e| Error::parquet(&temp, e))?;
        }
        let out = writer.into_inner().map_err(|e| Error::parquet(&temp, e))?;
        out.sync_all().map_err(|e| Error::io("sync", &temp, e))?;
        fs::rename(&temp, path).map_err(|e| Error::io("rename", &temp, e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(removed)
}

/// Deletes the partition directories under `root` whose hour ended before `now - max_age`.
pub(crate) fn expire_partitions(
    root: &Path,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Result<usize> {
    expire_partitions_in(root, policy, now, None)
}

/// [`expire_partitions`] within `tenant`'s partitions only (`None`: every tenant).
fn expire_partitions_in(
    root: &Path,
    policy: &RetentionPolicy,
    now: Timestamp,
    tenant: Option<&str>,
) -> Result<usize> {
    let mut paths = Vec::new();
    walk(&root.join("events"), &mut paths)?;
    let mut dirs: Vec<(PathBuf, Partition)> = paths
        .iter()
        .filter_map(|p| Partition::from_path(root, p).map(|part| (part.dir(root), part)))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut removed = 0;
    for (dir, partition) in dirs {
        if tenant.is_some_and(|t| partition.tenant != t) {
            continue;
        }
        let Some(max_age) = policy.max_age(&partition.tenant) else { continue };
        let cutoff = now.0 as i128 - max_age.as_nanos() as i128;
        if partition.end_ns() <= cutoff {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("remove expired partition", &dir, e))?;
            removed += 1;
            // Remove the date and tenant directories once empty.
            let mut parent = dir.parent();
            while let Some(p) = parent {
                if p == root.join("events") || fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
    }
    Ok(removed)
}
