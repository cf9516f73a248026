//! The write-ahead log: what makes an accepted event durable before its Parquet file is
//! finalized, and how the next open of the store recovers what a killed writer left.
//!
//! # Design
//!
//! Every Parquet file a [`ParquetSink`](crate::ParquetSink) writes has a companion log segment
//! next to it, `.part-<seq>-<writer>.parquet.wal`: an Arrow IPC *stream* holding exactly the
//! rows of that file, appended (one IPC message per drained batch of the partition, flushed to
//! the operating system at once) as the events are drained, before they are buffered for the
//! next row group. Because the segment and the file cover the same rows, the protocol is
//! short:
//!
//! 1. the first event for a new file creates its segment;
//! 2. each drained batch is appended to the segment; the segment is `fsync`ed at most every
//!    [`StoreConfig::wal_sync_interval`](crate::StoreConfig::wal_sync_interval) (default
//!    500 ms; `0` syncs after every batch);
//! 3. finalizing the file writes the footer, `fsync`s it, renames it into place, `fsync`s the
//!    directory, and only then deletes the segment.
//!
//! Recovery ([`Store::recover`](crate::Store::recover), run by every writer when it starts and
//! by `mission-ctl doctor --recover`) looks at the segments and temporary files of writers that
//! are no longer running:
//!
//! - a segment whose finalized file exists was already finalized (the writer died between
//!   steps 3's rename and delete): the segment is deleted, nothing is written — so no row is
//!   stored twice;
//! - otherwise the segment is read up to its last complete batch and written as the Parquet
//!   file it stood for, under the same name, through a temporary file and a rename, and then
//!   deleted; a kill during recovery leaves the segment, so the next recovery does it again;
//! - the temporary `.tmp` file of a recovered segment is deleted (its rows are in the segment);
//!   a temporary file without a segment (an older writer's, or an interrupted erasure's) and a
//!   segment that cannot be read are moved to `<root>/quarantine/`, reported by
//!   [`Store::open_report`](crate::Store::open_report) and `doctor`, never read.
//!
//! A writer is "running" while it holds an exclusive lock on `<root>/writers/<writer>.lock`
//! (the lock file is created under a temporary name, locked, then renamed, so it never appears
//! unlocked); the operating system releases the lock when the process dies, however it dies.
//! Readers and recovery never touch the files of a running writer.
//!
//! # What it guarantees, and what it costs
//!
//! - **Process crash (`kill -9`, panic, OOM kill):** an event is safe once the pipeline has
//!   drained it (within the recorder's drain interval, milliseconds): the append is a `write`
//!   into the operating system's cache, which survives the process.
//! - **Power loss or kernel crash:** an event is safe once its segment was `fsync`ed: within
//!   `wal_sync_interval` plus one pipeline tick (250 ms) of being drained.
//! - [`flush`](mission_core::Sink::flush) finalizes every open file (`fsync` + rename + directory
//!   `fsync`), so an event acknowledged by a returned flush is durable against both.
//!
//! The cost is encoding every event twice (once into the segment's Arrow batch, once into the
//! Parquet row group) and writing it twice (the segment is uncompressed Arrow, several times the
//! size of the zstd Parquet it becomes), plus one `fsync` per open file every
//! `wal_sync_interval`; `benches/storage.rs` (`wal`) measures it beside a sink without a log
//! (see `benches/RESULTS.md`). Segments live only as long as their file is open
//! ([`max_file_age`](crate::StoreConfig::max_file_age), one minute by default), so the log
//! needs no compaction. The log can be turned off ([`StoreConfig::wal`](crate::StoreConfig::wal))
//! where losing the open files on a crash is acceptable.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::crash_points::{self, Point};
use crate::layout::TEMP_SUFFIX;
use crate::schema::{self, events_schema};
use crate::write::atomic::sync_dir;
use crate::{Error, Result};

/// Suffix of write-ahead log segments (which also start with a dot, like temporary files).
pub const WAL_SUFFIX: &str = ".wal";

/// Metadata key naming the log segment a recovered file was rebuilt from.
pub const META_RECOVERED_FROM: &str = "mission.recovered_from";

/// The directory of writer lock files.
pub(crate) fn writers_dir(root: &Path) -> PathBuf {
    root.join("writers")
}

/// The directory unrecoverable leftovers are moved to.
pub(crate) fn quarantine_dir(root: &Path) -> PathBuf {
    root.join("quarantine")
}

/// The log segment of the finalized file at `finished`.
pub(crate) fn segment_path(finished: &Path) -> PathBuf {
    let name = finished.file_name().and_then(|n| n.to_str()).unwrap_or("part.parquet");
    finished.with_file_name(format!(".{name}{WAL_SUFFIX}"))
}

/// The temporary file of the finalized file at `finished`.
pub(crate) fn temp_path(finished: &Path) -> PathBuf {
    let name = finished.file_name().and_then(|n| n.to_str()).unwrap_or("part.parquet");
    finished.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
}

/// The writer id in a file name of ours (`[.]part-<seq>-<writer>.parquet[...]`, or a
/// compactor's `[.]compact-<seq>-<compactor>.parquet[...]`).
pub(crate) fn writer_of(name: &str) -> Option<&str> {
    let base = name.strip_prefix('.').unwrap_or(name);
    let rest = base
        .strip_prefix("part-")
        .or_else(|| base.strip_prefix(crate::write::compact::COMPACT_PREFIX))?;
    let (_, rest) = rest.split_once('-')?;
    let (id, _) = rest.split_once(".parquet")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

/// Whether `path` is a compactor's temporary file (`.compact-….parquet.tmp`).
fn is_compaction_temp(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.starts_with(&format!(".{}", crate::write::compact::COMPACT_PREFIX))
            && n.ends_with(TEMP_SUFFIX)
    })
}

/// Lock file (under `<root>/writers/`) held while recovering.
pub(crate) const RECOVERY_LOCK: &str = ".recovery.lock";
/// Lock file (under `<root>/writers/`) held while compacting.
pub(crate) const COMPACTION_LOCK: &str = ".compaction.lock";

/// An exclusive lock on a store-wide lock file under `<root>/writers/` (released when dropped
/// or when the process dies). The file itself stays: removing it would let two processes lock
/// two different files of the same name.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Locks `<root>/writers/<name>`, waiting for it when `wait`, else `Ok(None)` if held.
    pub(crate) fn try_acquire(root: &Path, name: &str, wait: bool) -> Result<Option<Self>> {
        let dir = writers_dir(root);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create writers directory", &dir, e))?;
        let path = dir.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        if wait {
            file.lock().map_err(|e| Error::io("lock", &path, e))?;
            return Ok(Some(Self { _file: file }));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }

    /// Locks `<root>/writers/<name>`, waiting for it.
    pub(crate) fn acquire(root: &Path, name: &str, wait: bool) -> Result<Self> {
        Self::try_acquire(root, name, wait)?.ok_or_else(|| Error::Invalid {
            what: "store lock",
            reason: format!("{name} is held by another process"),
        })
    }
}

/// Whether the writer `id` of the store at `root` is running (holds its lock). A writer
/// without a lock file is not; an error other than "held" counts as running, so nothing is
/// touched that might be in use.
pub(crate) fn writer_running(root: &Path, id: &str) -> bool {
    let path = writers_dir(root).join(format!("{id}.lock"));
    match File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => true,
        Ok(file) => file.try_lock().is_err(),
    }
}

/// The running writer's lock: held for the sink's life, released by the OS when it dies.
#[derive(Debug)]
pub(crate) struct WriterLock {
    path: PathBuf,
    _file: File,
}

impl WriterLock {
    /// Creates and locks `<root>/writers/<id>.lock` for a fresh id, and returns the id: the
    /// lock file is created and locked under a temporary name, then hard-linked to its real
    /// name, which fails if that name exists — so it never appears unlocked, and two writers
    /// (of this process or another) can never share an id, nor so their file names.
    pub(crate) fn acquire_new(root: &Path) -> Result<(String, Self)> {
        let dir = writers_dir(root);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create writers directory", &dir, e))?;
        // A collision of 64-bit random ids is already unlikely; a few tries make it moot.
        let mut last = None;
        for _ in 0..8 {
            let id = crate::write::sink::random_hex();
            let temp = dir.join(format!(".{id}.lock{TEMP_SUFFIX}"));
            let path = dir.join(format!("{id}.lock"));
            let file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
            if let Err(e) = file.lock() {
                let _ = fs::remove_file(&temp);
                return Err(Error::io("lock", &temp, e));
            }
            let linked = fs::hard_link(&temp, &path);
            let _ = fs::remove_file(&temp);
            match linked {
                Ok(()) => return Ok((id, Self { path, _file: file })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::io("link", &path, e)),
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("no free writer id"));
        Err(Error::io("create a writer lock", &dir, e))
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// One open log segment.
pub(crate) struct Segment {
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
    dirty: bool,
    last_sync: Instant,
    created: bool,
}

impl Segment {
    /// Creates the segment of the file that will be finalized at `finished`.
    pub(crate) fn create(finished: &Path) -> Result<Self> {
        let path = segment_path(finished);
        let file = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        let writer =
            StreamWriter::try_new(BufWriter::with_capacity(1 << 16, file), &events_schema())?;
        Ok(Self { path, writer, dirty: true, last_sync: Instant::now(), created: true })
    }

    /// Appends `batch` and hands it to the operating system (safe from a process crash).
    pub(crate) fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        self.writer.get_mut().flush().map_err(|e| Error::io("write", &self.path, e))?;
        self.dirty = true;
        Ok(())
    }

    /// `fsync`s the segment if it changed and `interval` has passed since the last sync.
    pub(crate) fn sync_if_due(&mut self, interval: std::time::Duration) -> Result<()> {
        if !self.dirty || self.last_sync.elapsed() < interval {
            return Ok(());
        }
        self.writer
            .get_mut()
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io("sync", &self.path, e))?;
        if self.created {
            // The segment's directory entry, once.
            if let Some(dir) = self.path.parent() {
                sync_dir(dir);
            }
            self.created = false;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Deletes the segment (its file was finalized, or its rows were counted as lost).
    pub(crate) fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What one log segment of a writer that is not running holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PendingSegment {
    /// The segment.
    pub path: PathBuf,
    /// The finalized file it stands for.
    pub file: PathBuf,
    /// Rows recovery will write: those of its complete batches, or 0 if the file was already
    /// finalized (the segment is then only deleted).
    pub rows: u64,
    /// Why it cannot be recovered (it will be quarantined), if so.
    pub unrecoverable: Option<String>,
}

/// What [`Store::recover`](crate::Store::recover) did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Files rebuilt from log segments.
    pub files_recovered: Vec<PathBuf>,
    /// Rows in them.
    pub rows_recovered: u64,
    /// Segments deleted because their file had already been finalized.
    pub already_finalized: usize,
    /// Temporary files deleted because their rows were in a segment.
    pub temps_removed: usize,
    /// Files moved to `<root>/quarantine/`, with the reason.
    pub quarantined: Vec<(PathBuf, String)>,
    /// Files left alone because their writer is running.
    pub in_use: usize,
}

/// Bytes of a segment's header (the IPC schema message), before its first batch.
fn header_len() -> u64 {
    static LEN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| {
        StreamWriter::try_new(Vec::new(), &events_schema())
            .and_then(StreamWriter::into_inner)
            .map_or(0, |v| v.len() as u64)
    })
}

/// Reads a segment up to its last complete batch. A segment cut short inside its header (a
/// kill right after it was created) holds no batch: it reads as empty.
fn read_segment(path: &Path) -> std::result::Result<Vec<RecordBatch>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let reader = match StreamReader::try_new(BufReader::new(file), None) {
        Ok(r) => r,
        Err(_) if len < header_len() => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    if !schema::is_known_layout(reader.schema().fields()) {
        return Err("schema does not match the events schema".into());
    }
    // A segment of an older version is recovered into this one's layout (nulls for the
    // columns it lacks).
    let file_columns = reader.schema().fields().len();
    let all: Vec<usize> = (0..events_schema().fields().len()).collect();
    // A batch cut short by the kill ends the stream: everything before it is complete.
    reader
        .map_while(std::result::Result::ok)
        .filter(|b| b.num_rows() > 0)
        .map(|b| schema::pad_to_current(b, &all, file_columns).map_err(|e| e.to_string()))
        .collect()
}

/// Inspects the segment at `path` (for `doctor`), without changing anything.
pub(crate) fn inspect(path: &Path) -> PendingSegment {
    let file = finished_of(path);
    if file.exists() {
        return PendingSegment { path: path.into(), file, rows: 0, unrecoverable: None };
    }
    match read_segment(path) {
        Ok(batches) => PendingSegment {
            path: path.into(),
            file,
            rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
            unrecoverable: None,
        },
        Err(reason) => {
            PendingSegment { path: path.into(), file, rows: 0, unrecoverable: Some(reason) }
        }
    }
}

/// The finalized file a segment stands for.
fn finished_of(segment: &Path) -> PathBuf {
    let name = segment.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = name.strip_prefix('.').unwrap_or(name);
    segment.with_file_name(base.strip_suffix(WAL_SUFFIX).unwrap_or(base))
}

/// Writes `batches` as the finalized file `finished` (temporary file, fsync, rename).
fn write_recovered(
    finished: &Path,
    batches: &[RecordBatch],
    props: &WriterProperties,
    metadata: Vec<KeyValue>,
) -> Result<()> {
    let temp = temp_path(finished);
    let write = || -> Result<()> {
        let file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        let mut writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            events_schema(),
            Some(props.clone()),
        )
        .map_err(|e| Error::parquet(&temp, e))?;
        for batch in batches {
            writer.write(batch).map_err(|e| Error::parquet(&temp, e))?;
        }
        for kv in metadata {
            writer.append_key_value_metadata(kv);
        }
        let buf = writer.into_inner().map_err(|e| Error::parquet(&temp, e))?;
        let file = buf.into_inner().map_err(|e| Error::io("write", &temp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("sync", &temp, e))?;
        crash_points::reach(Point::RecoveryBeforeRename);
        fs::rename(&temp, finished).map_err(|e| Error::io("rename", &temp, e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    if let Some(dir) = finished.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Moves `path` under `<root>/quarantine/`, keeping its path below `events/`.
fn quarantine(root: &Path, path: &Path) -> Result<PathBuf> {
    let rel = path.strip_prefix(root.join("events")).unwrap_or(path);
    let rel: PathBuf = rel.iter().filter(|c| *c != "..").collect();
    let to = quarantine_dir(root).join(rel);
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create quarantine directory", dir, e))?;
    }
    fs::rename(path, &to).map_err(|e| Error::io("quarantine", path, e))?;
    Ok(to)
}

/// Leftovers under `root/events` grouped by writer: (segments, temporary files).
pub(crate) type Leftovers = BTreeMap<String, (Vec<PathBuf>, Vec<PathBuf>)>;

/// Sorts `paths` (every file under `events/`) into the leftovers of each writer id; files of
/// ours that name no writer go under `""`.
pub(crate) fn leftovers_by_writer(paths: &[PathBuf]) -> Leftovers {
    let mut out = Leftovers::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with('.') || name.starts_with(".probe-") {
            continue;
        }
        let is_segment = name.ends_with(WAL_SUFFIX);
        if !is_segment && !name.ends_with(TEMP_SUFFIX) {
            continue;
        }
        let entry = out.entry(writer_of(name).unwrap_or("").to_owned()).or_default();
        if is_segment { entry.0.push(path.clone()) } else { entry.1.push(path.clone()) }
    }
    out
}

/// Recovers the leftovers of writers that are not running (see the [module docs](self)).
pub(crate) fn recover(root: &Path, props: &WriterProperties) -> Result<Recovery> {
    // One recovery at a time per store: writers starting together must not rebuild the same
    // dead writer's segment into the same temporary file at once.
    let _recovering = StoreLock::acquire(root, RECOVERY_LOCK, true)?;
    let mut paths = Vec::new();
    crate::layout::walk(&root.join("events"), &mut paths)?;
    let mut report = Recovery::default();
    for (writer, (segments, temps)) in leftovers_by_writer(&paths) {
        if !writer.is_empty() && writer_running(root, &writer) {
            report.in_use += segments.len() + temps.len();
            continue;
        }
        for segment in &segments {
            let finished = finished_of(segment);
            if finished.exists() {
                report.already_finalized += 1;
            } else {
                match read_segment(segment) {
                    Ok(batches) => {
                        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
                        if rows > 0 {
                            let name = segment.file_name().and_then(|n| n.to_str()).unwrap_or("");
                            let metadata = vec![
                                KeyValue::new(
                                    schema::META_SCHEMA_VERSION.to_owned(),
                                    schema::SCHEMA_VERSION.to_string(),
                                ),
                                KeyValue::new(
                                    schema::META_WRITER_VERSION.to_owned(),
                                    env!("CARGO_PKG_VERSION").to_owned(),
                                ),
                                KeyValue::new(META_RECOVERED_FROM.to_owned(), name.to_owned()),
                            ];
                            write_recovered(&finished, &batches, props, metadata)?;
                            report.files_recovered.push(finished.clone());
                            report.rows_recovered += rows;
                        }
                    }
                    Err(reason) => {
                        quarantine(root, segment)?;
                        report.quarantined.push((segment.clone(), reason));
                        continue;
                    }
                }
            }
            crash_points::reach(Point::RecoveryBeforeLogDelete);
            let temp = temp_path(&finished);
            if temp.exists() {
                fs::remove_file(&temp).map_err(|e| Error::io("remove", &temp, e))?;
                report.temps_removed += 1;
            }
            fs::remove_file(segment).map_err(|e| Error::io("remove", segment, e))?;
        }
        for temp in temps.iter().filter(|t| t.exists()) {
            if is_compaction_temp(temp) {
                // A compactor killed before its rename: the rows are still in the files it was
                // merging, which were never deleted.
                fs::remove_file(temp).map_err(|e| Error::io("remove", temp, e))?;
                report.temps_removed += 1;
                continue;
            }
            quarantine(root, temp)?;
            report.quarantined.push((
                temp.clone(),
                "a temporary file without a write-ahead log segment: its rows cannot be read"
                    .into(),
            ));
        }
    }
    // Lock files of writers that are gone (killed, so they could not remove their own).
    if let Ok(entries) = fs::read_dir(writers_dir(root)) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else { continue };
            if !id.starts_with('.') && !writer_running(root, id) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mission_core::{Event, EventBody, Symbol};

    fn batch(n: usize) -> RecordBatch {
        let events: Vec<Event> = (0..n)
            .map(|_| Event::new(Symbol::intern("m"), EventBody::Span(Default::default())))
            .collect();
        let refs: Vec<&Event> = events.iter().collect();
        crate::encode(&refs).expect("encode")
    }

    #[test]
    fn a_cut_segment_reads_up_to_its_last_complete_batch() {
        let dir = std::env::temp_dir().join(format!("mc-wal-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let finished = dir.join("part-00000001-abc.parquet");
        let mut segment = Segment::create(&finished).expect("create");
        segment.append(&batch(3)).expect("append");
        segment.append(&batch(4)).expect("append");
        let path = segment_path(&finished);
        let full = fs::read(&path).expect("read");
        for (cut, rows) in [(full.len(), 7), (full.len() - 10, 3), (header_len() as usize / 2, 0)] {
            fs::write(&path, &full[..cut]).expect("cut");
            let got: usize =
                read_segment(&path).expect("readable").iter().map(|b| b.num_rows()).sum();
            assert_eq!(got, rows, "cut at {cut}");
        }
        fs::write(&path, vec![b'x'; 1 << 16]).expect("garbage");
        assert!(read_segment(&path).is_err());
        fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn writer_ids_are_read_from_file_names() {
        assert_eq!(writer_of(".part-00000001-0a1b.parquet.wal"), Some("0a1b"));
        assert_eq!(writer_of(".part-00000001-0a1b.parquet.tmp"), Some("0a1b"));
        assert_eq!(writer_of("part-00000001-0a1b.parquet"), Some("0a1b"));
        assert_eq!(writer_of(".part-1-../x.parquet.tmp"), None);
        assert_eq!(writer_of(".probe-00.tmp"), None);
    }
}
