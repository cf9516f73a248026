//! Compaction: [`Store::compact`] merges a partition's small files into larger ones while
//! writers write and readers read.
//!
//! # Protocol
//!
//! Every writer finalizes its own files (`part-<seq>-<writer>.parquet`), so a fleet of
//! processes writing one store leaves many small files. Compaction merges the finalized files
//! of one partition (one tenant, one hour: never across tenants or partitions):
//!
//! 1. it takes the store's compaction lock (`<root>/writers/.compaction.lock`: one compactor
//!    at a time) and a writer lock of its own, so recovery by a starting writer leaves its
//!    temporary file alone;
//! 2. it writes the merged file under a temporary name (`.compact-<seq>-<id>.parquet.tmp`),
//!    the inputs' rows one input after the other, and lists in the footer
//!    ([`META_COMPACTED_FROM`]) each input's name and the rows it occupies
//!    ([`CompactedSource`]); it `fsync`s the file;
//! 3. it renames it to `compact-<seq>-<id>.parquet` and `fsync`s the directory;
//! 4. it deletes the inputs.
//!
//! Readers stay exact at every step:
//!
//! - a listing ([`Store::open`]) that sees a merged file *and* files it replaces (between 3 and
//!   4, or after a kill there) drops the replaced files
//!   ([`OpenReport::replaced`](crate::OpenReport::replaced)): no row is read twice;
//! - a reader that listed an input before step 4 and finds it gone reads that input's rows
//!   from the merged file that lists it (its row range, nothing else): no row is missed. The
//!   same holds for a [`Follower`](crate::Follower), which reads of a merged file only the rows
//!   of inputs it has not delivered yet.
//!
//! A kill at any point leaves a readable store with exact counts: before the rename, the
//! inputs are intact and the temporary file is removed by the next recovery; after it, the
//! listing drops the leftover inputs and the next compaction (or erasure) deletes them.
//!
//! Only finalized files are merged, never one whose write-ahead log segment still exists (a
//! writer killed between its rename and the segment's deletion: recovery must see the file
//! first). Unreadable files are left where they are and reported.
//!
//! # Metadata
//!
//! The merged file carries the current schema version and, for every other key the inputs
//! carry (audit anchors, the recorder's accounting, the sink's counters, …), the value of the
//! most recently finalized input that has it — so the audit verifier finds the newest anchor
//! and the accounting is the latest snapshot. The per-writer latest metadata of every input
//! (each writer's accounting is a running total) is kept whole under
//! [`META_COMPACTED_WRITERS`].
//!
//! # Cost
//!
//! Each merged file is read once and written once (zstd); re-merging a merged file that is
//! still under the target size rewrites it, so the default [`CompactOptions::min_files`] keeps
//! a partition from being rewritten for every new small file. A merged file lists at most
//! [`MAX_SOURCES_PER_FILE`] inputs (transitively), which bounds its footer.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;

use crate::crash_points::{self, Point};
use crate::layout::TEMP_SUFFIX;
use crate::read::decode::check_schema_version;
use crate::read::store::{SkippedFile, StoreFile};
use crate::schema::{self, events_schema};
use crate::write::atomic::sync_dir;
use crate::write::config::writer_properties;
use crate::write::wal::{self, COMPACTION_LOCK, StoreLock, WriterLock};
use crate::{Error, Result, Store, StoreConfig};

/// Name prefix of merged files (`compact-<seq>-<compactor>.parquet`).
pub const COMPACT_PREFIX: &str = "compact-";

/// Parquet key-value metadata of a merged file: the files it replaces, as a JSON array of
/// [`CompactedSource`] (including, with their rows' new place, the inputs of merged inputs).
pub const META_COMPACTED_FROM: &str = "mission.compacted_from";

/// Parquet key-value metadata of a merged file: per writer id, the metadata of that writer's
/// most recently finalized input (JSON object: writer → `{"finalized_ns", "metadata"}`).
pub const META_COMPACTED_WRITERS: &str = "mission.compacted_writers";

/// Most files (inputs and, transitively, their inputs) one merged file lists.
pub const MAX_SOURCES_PER_FILE: usize = 4096;

/// Range of [`CompactOptions::target_file_bytes`]: 1 MiB to 4 GiB.
pub const TARGET_FILE_BYTES_RANGE: RangeInclusive<u64> = (1 << 20)..=(4 << 30);

/// Range of [`CompactOptions::min_files`].
pub const MIN_FILES_RANGE: RangeInclusive<usize> = 2..=MAX_SOURCES_PER_FILE;

/// Range of [`CompactOptions::older_than`]: up to 366 days.
pub const OLDER_THAN_RANGE: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(366 * 86_400);

/// One file a merged file replaces, and where its rows are in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompactedSource {
    /// The replaced file's name (in the merged file's directory).
    pub file: String,
    /// Index of its first row in the merged file.
    pub first_row: u64,
    /// How many rows it had.
    pub rows: u64,
}

/// What [`Store::compact`] merges (built with the `with_*` methods from [`Default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactOptions {
    /// Only files finalized at least this long ago (default 0: every finalized file).
    pub older_than: Duration,
    /// Merged files grow up to about this size; files already this large are left alone
    /// (default 128 MiB, the sink's own maximum file size).
    pub target_file_bytes: u64,
    /// A partition is compacted only when it holds at least this many small files (default 8).
    pub min_files: usize,
    /// Only this tenant's partitions (`None`: every tenant's).
    pub tenant: Option<String>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            older_than: Duration::ZERO,
            target_file_bytes: 128 << 20,
            min_files: 8,
            tenant: None,
        }
    }
}

impl CompactOptions {
    /// Sets [`older_than`](Self::older_than).
    pub fn with_older_than(mut self, older_than: Duration) -> Self {
        self.older_than = older_than;
        self
    }

    /// Sets [`target_file_bytes`](Self::target_file_bytes).
    pub fn with_target_file_bytes(mut self, bytes: u64) -> Self {
        self.target_file_bytes = bytes;
        self
    }

    /// Sets [`min_files`](Self::min_files).
    pub fn with_min_files(mut self, n: usize) -> Self {
        self.min_files = n;
        self
    }

    /// Sets [`tenant`](Self::tenant).
    pub fn with_tenant(mut self, tenant: Option<String>) -> Self {
        self.tenant = tenant;
        self
    }

    /// Checks every setting against its range.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting out of range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &'static str, reason: String| Err(Error::Invalid { what, reason });
        if !OLDER_THAN_RANGE.contains(&self.older_than) {
            return invalid("older_than", format!("{:?} is over 366 days", self.older_than));
        }
        if !TARGET_FILE_BYTES_RANGE.contains(&self.target_file_bytes) {
            return invalid(
                "target_file_bytes",
                format!("{} is not within 1 MiB..=4 GiB", self.target_file_bytes),
            );
        }
        if !MIN_FILES_RANGE.contains(&self.min_files) {
            return invalid(
                "min_files",
                format!("{} is not within {MIN_FILES_RANGE:?}", self.min_files),
            );
        }
        Ok(())
    }
}

/// What [`Store::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Partitions in which files were merged.
    pub partitions: usize,
    /// Small files merged (and deleted).
    pub files_merged: usize,
    /// Merged files written.
    pub files_written: usize,
    /// Rows in the merged files.
    pub rows: u64,
    /// Bytes of the merged inputs.
    pub bytes_read: u64,
    /// Bytes of the merged files.
    pub bytes_written: u64,
    /// Files an earlier, interrupted compaction had merged but not deleted, deleted now.
    pub leftovers_removed: usize,
    /// Finalized files left alone because their writer's log segment is still beside them
    /// (recovery must see them first).
    pub in_use: usize,
    /// Files that could not be read, left where they are.
    pub unreadable: Vec<SkippedFile>,
}

/// A candidate input: a finalized file and what its footer says.
struct Input {
    file: StoreFile,
    rows: u64,
    columns: usize,
    finalized: SystemTime,
    metadata: Vec<KeyValue>,
    sources: Vec<CompactedSource>,
}

/// Reads the [`META_COMPACTED_FROM`] list of the merged file at `path` (`None`: not a merged
/// file, or unreadable).
pub(crate) fn read_sources(path: &Path) -> Option<Vec<CompactedSource>> {
    read_sources_and_rows(path).map(|(sources, _)| sources)
}

/// [`read_sources`] of a listed file, local or on object storage (its footer only).
pub(crate) fn read_sources_of(file: &StoreFile) -> Option<Vec<CompactedSource>> {
    let source = crate::read::source::Source::open(file, &Default::default()).ok()?;
    sources_and_rows(SerializedFileReader::new(source).ok()?).map(|(sources, _)| sources)
}

/// [`read_sources`], and how many rows the file holds.
pub(crate) fn read_sources_and_rows(path: &Path) -> Option<(Vec<CompactedSource>, u64)> {
    let file = File::open(path).ok()?;
    sources_and_rows(SerializedFileReader::new(file).ok()?)
}

fn sources_and_rows<R: parquet::file::reader::ChunkReader + 'static>(
    reader: SerializedFileReader<R>,
) -> Option<(Vec<CompactedSource>, u64)> {
    let meta = reader.metadata().file_metadata();
    let value = meta
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == META_COMPACTED_FROM)?
        .value
        .clone()?;
    Some((serde_json::from_str(&value).ok()?, u64::try_from(meta.num_rows()).unwrap_or(0)))
}

/// Whether the file name is a merged file's.
pub(crate) fn is_compacted_name(name: &str) -> bool {
    name.starts_with(COMPACT_PREFIX) && name.ends_with(".parquet")
}

/// The merged files in `dir` that list `name` among the files they replace, with its entry
/// (newest first: the one to read when an older one was merged again).
pub(crate) fn replacements_of(dir: &Path, name: &str) -> Vec<(PathBuf, CompactedSource)> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(PathBuf, CompactedSource)> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_compacted_name))
        .filter_map(|e| {
            let path = e.path();
            let entry = read_sources(&path)?.into_iter().find(|s| s.file == name)?;
            Some((path, entry))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found
}

impl Store {
    /// Merges each partition's small finalized files into larger ones (see the
    /// [module docs](crate::write::compact) for the protocol that keeps readers exact and a
    /// kill harmless). Returns what it did; the store is listed again afterwards.
    ///
    /// Safe beside live writers (their open files are not finalized yet; their finalized
    /// files never change) and readers, of this process or others. One compaction runs at a
    /// time per store.
    ///
    /// # Errors
    /// [`Error::Invalid`] for options out of range or when another compaction holds the
    /// store's compaction lock; I/O or Parquet errors writing a merged file (what was merged
    /// before stays merged; the inputs of the failed merge are untouched).
    pub fn compact(&mut self, options: &CompactOptions) -> Result<CompactionReport> {
        options.validate()?;
        self.require_local("compaction")?;
        let root = self.root().to_path_buf();
        let _compacting =
            StoreLock::acquire(&root, COMPACTION_LOCK, false).map_err(|_| Error::Invalid {
                what: "compaction",
                reason: format!("another compaction of {} is running", root.display()),
            })?;
        let (id, _lock) = WriterLock::acquire_new(&root)?;
        let mut report = CompactionReport::default();
        self.reopen()?;
        report.leftovers_removed = self.remove_replaced()?;
        let tenant = options.tenant.as_deref().or(self.scope());
        let now = SystemTime::now();
        let mut by_partition: BTreeMap<PathBuf, Vec<StoreFile>> = BTreeMap::new();
        for file in self.files() {
            if tenant.is_some_and(|t| file.partition.tenant != t)
                || file.bytes >= options.target_file_bytes
            {
                continue;
            }
            let Some(dir) = file.path.parent() else { continue };
            if wal::segment_path(&file.path).exists() {
                report.in_use += 1;
                continue;
            }
            by_partition.entry(dir.to_path_buf()).or_default().push(file.clone());
        }
        let props = writer_properties(&StoreConfig::default())?;
        let mut seq = 0u64;
        for (dir, files) in by_partition {
            if files.len() < options.min_files {
                continue;
            }
            let mut inputs = Vec::with_capacity(files.len());
            for file in files {
                match inspect(file, now, options.older_than) {
                    Ok(Some(input)) => inputs.push(input),
                    Ok(None) => {}
                    Err(skipped) => report.unreadable.push(skipped),
                }
            }
            if inputs.len() < options.min_files {
                continue;
            }
            inputs.sort_by(|a, b| (a.finalized, &a.file.path).cmp(&(b.finalized, &b.file.path)));
            let mut merged_here = false;
            for group in groups(inputs, options.target_file_bytes) {
                seq += 1;
                let name = format!("{COMPACT_PREFIX}{seq:08}-{id}.parquet");
                match merge(&dir.join(&name), &group, &props) {
                    Ok(written) => {
                        merged_here = true;
                        report.files_written += 1;
                        report.files_merged += group.len();
                        report.rows += group.iter().map(|i| i.rows).sum::<u64>();
                        report.bytes_read += group.iter().map(|i| i.file.bytes).sum::<u64>();
                        report.bytes_written += written;
                    }
                    Err(MergeError::Unreadable(skipped)) => report.unreadable.push(skipped),
                    Err(MergeError::Store(e)) => {
                        self.reopen()?;
                        return Err(e);
                    }
                }
            }
            report.partitions += usize::from(merged_here);
        }
        self.reopen()?;
        Ok(report)
    }

    /// Deletes the files merged files replace that are still present (an interrupted
    /// compaction's inputs; never read); returns how many. Then lists the store again.
    pub(crate) fn remove_replaced(&mut self) -> Result<usize> {
        let mut removed = 0;
        for path in self.open_report().replaced.clone() {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        if removed > 0 {
            self.reopen()?;
        }
        Ok(removed)
    }
}

/// Reads `file`'s footer: `Ok(None)` if it is too recent, `Err` if it cannot be read.
fn inspect(
    file: StoreFile,
    now: SystemTime,
    older_than: Duration,
) -> std::result::Result<Option<Input>, SkippedFile> {
    let skipped = |file: &StoreFile, reason: String| SkippedFile {
        path: file.path.clone(),
        reason,
        rows: None,
    };
    let finalized = fs::metadata(&file.path)
        .and_then(|m| m.modified())
        .map_err(|e| skipped(&file, format!("unreadable: {e}")))?;
    if now.duration_since(finalized).unwrap_or(Duration::ZERO) < older_than {
        return Ok(None);
    }
    let opened = File::open(&file.path)
        .map_err(|e| e.to_string())
        .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string()));
    let builder = opened.map_err(|reason| skipped(&file, format!("unreadable: {reason}")))?;
    check_schema_version(&file.path, builder.metadata())
        .map_err(|e| skipped(&file, e.to_string()))?;
    if !schema::is_known_layout(builder.schema().fields()) {
        return Err(skipped(&file, "schema does not match the events schema".into()));
    }
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let metadata: Vec<KeyValue> =
        builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let sources = metadata
        .iter()
        .find(|kv| kv.key == META_COMPACTED_FROM)
        .and_then(|kv| kv.value.as_deref())
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let columns = builder.schema().fields().len();
    Ok(Some(Input { file, rows, columns, finalized, metadata, sources }))
}

/// Splits a partition's inputs (oldest first) into groups of at most about `target` bytes and
/// [`MAX_SOURCES_PER_FILE`] listed files; a group of one is left alone.
fn groups(inputs: Vec<Input>, target: u64) -> Vec<Vec<Input>> {
    let mut out: Vec<Vec<Input>> = Vec::new();
    let mut current: Vec<Input> = Vec::new();
    let (mut bytes, mut listed) = (0u64, 0usize);
    for input in inputs {
        let lists = 1 + input.sources.len();
        if !current.is_empty()
            && (bytes + input.file.bytes > target || listed + lists > MAX_SOURCES_PER_FILE)
        {
            out.push(std::mem::take(&mut current));
            (bytes, listed) = (0, 0);
        }
        bytes += input.file.bytes;
        listed += lists;
        current.push(input);
    }
    out.push(current);
    out.retain(|g| g.len() >= 2);
    out
}

enum MergeError {
    /// An input could not be read after all: nothing was merged.
    Unreadable(SkippedFile),
    /// Writing the merged file failed.
    Store(Error),
}

/// Writes `group` as the merged file `finished`, then deletes the inputs; returns its size.
fn merge(
    finished: &Path,
    group: &[Input],
    props: &parquet::file::properties::WriterProperties,
) -> std::result::Result<u64, MergeError> {
    let name = finished.file_name().and_then(|n| n.to_str()).unwrap_or("compact.parquet");
    let temp = finished.with_file_name(format!(".{name}{TEMP_SUFFIX}"));
    let result = write_merged(&temp, finished, group, props);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let bytes = result?;
    if let Some(dir) = finished.parent() {
        sync_dir(dir);
    }
    crash_points::reach(Point::CompactBeforeDelete);
    for input in group {
        match fs::remove_file(&input.file.path) {
            Ok(()) => {}
            // Deleted by another process finishing this compaction's work: fine.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(MergeError::Store(Error::io("remove", &input.file.path, e))),
        }
    }
    if let Some(dir) = finished.parent() {
        sync_dir(dir);
    }
    Ok(bytes)
}

fn write_merged(
    temp: &Path,
    finished: &Path,
    group: &[Input],
    props: &parquet::file::properties::WriterProperties,
) -> std::result::Result<u64, MergeError> {
    let store_err = MergeError::Store;
    let out = File::create(temp).map_err(|e| store_err(Error::io("create", temp, e)))?;
    let mut writer = ArrowWriter::try_new(
        std::io::BufWriter::with_capacity(1 << 20, out),
        events_schema(),
        Some(props.clone()),
    )
    .map_err(|e| store_err(Error::parquet(temp, e)))?;
    let all: Vec<usize> = (0..events_schema().fields().len()).collect();
    let mut sources: Vec<CompactedSource> = Vec::new();
    let mut offset = 0u64;
    for input in group {
        let unreadable = |reason: String| {
            MergeError::Unreadable(SkippedFile {
                path: input.file.path.clone(),
                reason,
                rows: Some(input.rows),
            })
        };
        let reader = File::open(&input.file.path)
            .map_err(|e| e.to_string())
            .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string()))
            .and_then(|b| b.with_batch_size(8192).build().map_err(|e| e.to_string()))
            .map_err(|r| unreadable(format!("unreadable: {r}")))?;
        let mut rows = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(format!("damaged: {e}")))?;
            rows += batch.num_rows() as u64;
            let batch = schema::pad_to_current(batch, &all, input.columns).map_err(store_err)?;
            writer.write(&batch).map_err(|e| store_err(Error::parquet(temp, e)))?;
        }
        if rows != input.rows {
            return Err(unreadable(format!("footer says {} rows, {rows} read", input.rows)));
        }
        let name = input.file.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        sources.push(CompactedSource { file: name.to_owned(), first_row: offset, rows });
        sources.extend(input.sources.iter().map(|s| CompactedSource {
            file: s.file.clone(),
            first_row: offset + s.first_row,
            rows: s.rows,
        }));
        offset += rows;
    }
    for kv in merged_metadata(group, &sources) {
        writer.append_key_value_metadata(kv);
    }
    let buf = writer.into_inner().map_err(|e| store_err(Error::parquet(temp, e)))?;
    let file = buf.into_inner().map_err(|e| store_err(Error::io("write", temp, e.into_error())))?;
    file.sync_all().map_err(|e| store_err(Error::io("sync", temp, e)))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    crash_points::reach(Point::CompactBeforeRename);
    fs::rename(temp, finished).map_err(|e| store_err(Error::io("rename", temp, e)))?;
    Ok(bytes)
}

/// Keys a merged file sets itself rather than taking from an input.
fn is_own_key(key: &str) -> bool {
    key.starts_with("ARROW:")
        || key == schema::META_SCHEMA_VERSION
        || key == schema::META_WRITER_VERSION
        || key == META_COMPACTED_FROM
        || key == META_COMPACTED_WRITERS
        || key == wal::META_RECOVERED_FROM
}

/// The merged file's metadata (see the [module docs](self)).
fn merged_metadata(group: &[Input], sources: &[CompactedSource]) -> Vec<KeyValue> {
    // Latest value of each key (the group is oldest first).
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    // Per writer: (finalized ns, metadata) of its latest file.
    let mut writers: HashMap<String, (u128, serde_json::Map<String, serde_json::Value>)> =
        HashMap::new();
    for input in group {
        let finalized_ns =
            input.finalized.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut own = serde_json::Map::new();
        for kv in &input.metadata {
            let Some(value) = &kv.value else { continue };
            if kv.key == META_COMPACTED_WRITERS {
                let inner: BTreeMap<String, (u128, serde_json::Map<String, serde_json::Value>)> =
                    serde_json::from_str::<serde_json::Value>(value)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .map(|o| {
                            o.into_iter()
                                .filter_map(|(w, v)| {
                                    let ns = v.get("finalized_ns")?.as_u64()?;
                                    let meta = v.get("metadata")?.as_object()?.clone();
                                    Some((w, (u128::from(ns), meta)))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                for (writer, entry) in inner {
                    keep_latest(&mut writers, writer, entry);
                }
            }
            if is_own_key(&kv.key) {
                continue;
            }
            latest.insert(kv.key.clone(), value.clone());
            own.insert(kv.key.clone(), serde_json::Value::String(value.clone()));
        }
        let name = input.file.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !is_compacted_name(name) {
            let writer = wal::writer_of(name).unwrap_or(name).to_owned();
            keep_latest(&mut writers, writer, (finalized_ns, own));
        }
    }
    let writers: serde_json::Map<String, serde_json::Value> = writers
        .into_iter()
        .map(|(w, (ns, meta))| {
            let ns = u64::try_from(ns).unwrap_or(u64::MAX);
            (w, serde_json::json!({"finalized_ns": ns, "metadata": meta}))
        })
        .collect();
    let mut out = vec![
        KeyValue::new(schema::META_SCHEMA_VERSION.into(), schema::SCHEMA_VERSION.to_string()),
        KeyValue::new(schema::META_WRITER_VERSION.into(), env!("CARGO_PKG_VERSION").to_owned()),
        KeyValue::new(
            META_COMPACTED_FROM.into(),
            serde_json::to_string(sources).unwrap_or_else(|_| "[]".into()),
        ),
        KeyValue::new(
            META_COMPACTED_WRITERS.into(),
            serde_json::Value::Object(writers).to_string(),
        ),
    ];
    out.extend(latest.into_iter().map(|(k, v)| KeyValue::new(k, v)));
    out
}

fn keep_latest(
    writers: &mut HashMap<String, (u128, serde_json::Map<String, serde_json::Value>)>,
    writer: String,
    entry: (u128, serde_json::Map<String, serde_json::Value>),
) {
    match writers.get(&writer) {
        Some((ns, _)) if *ns > entry.0 => {}
        _ => {
            writers.insert(writer, entry);
        }
    }
}
