//! [`ParquetSink`]: writes drained events as Hive-partitioned zstd Parquet files.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mission_core::{Event, Sink, SinkContext, SinkError, Symbol, Timestamp};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rustc_hash::FxHashMap;

use crate::crash_points::{self, Point};
use crate::layout::{Partition, TEMP_SUFFIX};
use crate::schema::{self, events_schema};
use crate::write::atomic::sync_dir;
use crate::write::config::{StoreConfig, writer_properties};
use crate::write::encode::encode;
use crate::write::retention::RetentionPolicy;
use crate::write::wal::{self, Recovery, Segment, WriterLock};
use crate::{Error, Result};

/// Extra key-value metadata written into every file as it is finalized (see
/// [`ParquetSink::with_file_metadata`]).
pub type FileMetadataSource = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Counters of what the sink did, also written into every file's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinkCounters {
    /// Events written into finalized files.
    pub events_written: u64,
    /// Files finalized.
    pub files_finalized: u64,
    /// Events lost because their file could not be written (disk full, unwritable root).
    pub events_failed: u64,
    /// Partitions deleted by retention.
    pub partitions_expired: u64,
}

/// One file being written.
struct OpenFile {
    temp: PathBuf,
    finished: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    opened: Instant,
    rows: u64,
}

/// Events of one partition waiting for a row group, its open file, and the file's log segment.
struct PartitionWriter {
    pending: Vec<Event>,
    file: Option<OpenFile>,
    last_used: Instant,
    /// Where the next (or open) file will be finalized: named when its first event arrives, so
    /// its log segment can be created before anything else.
    reserved: Option<PathBuf>,
    /// The log segment of that file, when the write-ahead log is on.
    segment: Option<Segment>,
}

impl PartitionWriter {
    /// Ends the current file's life: its segment is deleted (the file was finalized, or its rows
    /// were counted as lost) and the next file gets a new name.
    fn retire_file(&mut self) {
        if let Some(segment) = self.segment.take() {
            segment.remove();
        }
        self.reserved = None;
    }
}

/// A [`Sink`] that writes events as Parquet under `<root>/events/tenant=<t>/date=<d>/hour=<h>/`.
///
/// Events are buffered per partition and written a row group at a time, sorted by thread then
/// time. A file is written under a hidden temporary name and renamed when complete, so readers
/// (DuckDB, pyarrow, Polars, [`Store`](crate::Store)) never see half a file; it is finalized
/// when it reaches [`StoreConfig::max_file_bytes`], when it is [`StoreConfig::max_file_age`]
/// old, on [`flush`](Sink::flush) and on shutdown. Every file carries the schema version, the
/// writer version, the recorder's accounting and this sink's counters in its metadata.
///
/// ```
/// use mission_core::{Pipeline, SpanKind, Symbol, ThreadContext};
/// use mission_store::{ParquetSink, Store, StoreConfig};
/// let dir = std::env::temp_dir().join(format!("mc-doc-{}", std::process::id()));
/// let pipeline = Pipeline::builder().with_sink(ParquetSink::new(StoreConfig::at(&dir))?).start()?;
/// let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
/// pipeline.recorder().start_span(&thread, SpanKind::ToolCall, Symbol::intern("search"), None).end();
/// pipeline.shutdown();
/// let store = Store::open(&dir)?;
/// assert_eq!(store.query().count()?, 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParquetSink {
    config: StoreConfig,
    props: WriterProperties,
    partitions: HashMap<Partition, PartitionWriter>,
    /// (tenant, hour since the epoch) → partition, so routing an event allocates nothing.
    routes: FxHashMap<(Symbol, u64), Partition>,
    context: Option<SinkContext>,
    counters: SinkCounters,
    /// `counters.events_failed` as last reported to the pipeline with an error.
    failed_reported: u64,
    file_id: String,
    last_retention: Instant,
    retention: RetentionPolicy,
    extra_metadata: Option<FileMetadataSource>,
    recovery: Recovery,
    _lock: WriterLock,
}

static NEXT_FILE_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh 16-hex-digit id (a writer's or a compactor's): process id and clock, hashed with a
/// per-process random key.
pub(crate) fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(Timestamp::now().0);
    format!("{:016x}", h.finish())
}

impl ParquetSink {
    /// A sink writing under `config.root`, which is created if missing.
    ///
    /// # Errors
    /// [`Error::Io`] if the root cannot be created or is not writable;
    /// [`Error::Invalid`] for a setting out of range.
    pub fn new(config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let events_dir = config.root.join("events");
        fs::create_dir_all(&events_dir)
            .map_err(|e| Error::io("create store directory", &events_dir, e))?;
        // Fail now, not at the first row group, if the root is not writable.
        let probe = events_dir.join(format!(".probe-{}{TEMP_SUFFIX}", random_hex()));
        File::create(&probe)
            .map_err(|e| Error::io("write into store directory", &events_dir, e))?;
        let _ = fs::remove_file(&probe);
        let props = writer_properties(&config)?;
        // Lock first, so no other process recovers this writer's files; then recover what
        // writers that are no longer running left behind. The lock also makes the id unique
        // in the store: its file names cannot collide with another writer's.
        let (file_id, lock) = WriterLock::acquire_new(&config.root)?;
        let recovery = wal::recover(&config.root, &props)?;
        Ok(Self {
            retention: config.retention_policy(),
            extra_metadata: None,
            config,
            props,
            partitions: HashMap::new(),
            routes: FxHashMap::default(),
            context: None,
            counters: SinkCounters::default(),
            failed_reported: 0,
            file_id,
            last_retention: Instant::now(),
            recovery,
            _lock: lock,
        })
    }

    /// Adds the key-value pairs `source` returns, when each file is finalized, to that file's
    /// metadata: the SDK anchors its audit chain's head there, so a rewritten audit log no
    /// longer matches what the data files recorded.
    pub fn with_file_metadata(mut self, source: FileMetadataSource) -> Self {
        self.extra_metadata = Some(source);
        self
    }

    /// What the sink did so far.
    pub fn counters(&self) -> SinkCounters {
        self.counters
    }

    /// What this sink recovered, when it started, from writers of the store that had died
    /// (see [`wal`](crate::wal)).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    fn open_file(&self, finished: PathBuf) -> Result<OpenFile> {
        let temp = wal::temp_path(&finished);
        let file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            events_schema(),
            Some(self.props.clone()),
        )
        .map_err(|e| Error::parquet(&temp, e))?;
        Ok(OpenFile { temp, finished, writer, opened: Instant::now(), rows: 0 })
    }

    /// Writes `partition`'s pending events, [`StoreConfig::row_group_rows`] at a time in arrival
    /// order, each chunk sorted by thread and flushed as its own row group; with `all` false a
    /// partial last chunk stays pending for the next row group.
    ///
    /// Never more than `row_group_rows` per write: Parquet would cut a larger sorted batch into a
    /// full row group and a small rest, and the rest, sorted by (random) thread id, would span the
    /// whole batch's time range, so a time query could not prune it.
    fn write_pending(&mut self, partition: &Partition, all: bool) -> Result<()> {
        let size = self.config.row_group_rows.max(1);
        loop {
            let Some(writer) = self.partitions.get(partition) else { return Ok(()) };
            let pending = writer.pending.len();
            if pending == 0 || (!all && pending < size) {
                return Ok(());
            }
            self.write_row_group(partition, pending.min(size))?;
        }
    }

    /// Writes the first `take` pending events of `partition` as one row group. On a failure
    /// every pending event is counted failed (the file and its log segment are dropped).
    fn write_row_group(&mut self, partition: &Partition, take: usize) -> Result<()> {
        let Some(writer) = self.partitions.get_mut(partition) else { return Ok(()) };
        let take = take.min(writer.pending.len());
        if take == 0 {
            return Ok(());
        }
        let refs: Vec<&Event> = writer.pending[..take].iter().collect();
        let batch = encode(&refs)?;
        let rows = take as u64;
        let all_pending = writer.pending.len() as u64;
        if writer.file.is_none() {
            let reserved = writer.reserved.clone();
            let file = match reserved {
                Some(finished) => self.open_file(finished),
                None => reserve_file(&self.config.root, partition, &self.file_id)
                    .and_then(|finished| self.open_file(finished)),
            };
            let writer = self.partitions.get_mut(partition).ok_or_else(|| Error::Invalid {
                what: "partition",
                reason: "vanished while writing".into(),
            })?;
            match file {
                Ok(f) => writer.file = Some(f),
                Err(e) => {
                    self.counters.events_failed += all_pending;
                    writer.pending.clear();
                    writer.retire_file();
                    return Err(e);
                }
            }
        }
        let writer = self.partitions.get_mut(partition).ok_or_else(|| Error::Invalid {
            what: "partition",
            reason: "vanished while writing".into(),
        })?;
        writer.pending.drain(..take);
        let Some(file) = writer.file.as_mut() else { return Ok(()) };
        let result = file.writer.write(&batch).and_then(|()| file.writer.flush());
        if let Err(e) = result {
            // The file cannot be trusted any more: drop it, and count what it held as lost
            // (with the rest of the pending events, whose log segment goes with it).
            let lost = all_pending + file.rows;
            let temp = file.temp.clone();
            writer.pending.clear();
            writer.file = None;
            writer.retire_file();
            let _ = fs::remove_file(&temp);
            self.counters.events_failed += lost;
            return Err(Error::parquet(temp, e));
        }
        file.rows += rows;
        Ok(())
    }

    /// Writes what is pending and finalizes the partition's file (rename into place).
    fn finalize(&mut self, partition: &Partition) -> Result<()> {
        let write_result = self.write_pending(partition, true);
        let Some(writer) = self.partitions.get_mut(partition) else { return write_result };
        let Some(mut file) = writer.file.take() else {
            // Nothing to finalize (its rows were counted as lost, if any): no segment either.
            writer.retire_file();
            return write_result;
        };
        let metadata = [
            (schema::META_SCHEMA_VERSION, schema::SCHEMA_VERSION.to_string()),
            (schema::META_WRITER_VERSION, env!("CARGO_PKG_VERSION").to_string()),
            (
                schema::META_ACCOUNTING,
                self.context
                    .as_ref()
                    .and_then(|c| serde_json::to_string(&c.accounting()).ok())
                    .unwrap_or_else(|| "null".into()),
            ),
            (schema::META_SINK_COUNTERS, serde_json::to_string(&self.counters).unwrap_or_default()),
        ];
        for (k, v) in metadata {
            file.writer.append_key_value_metadata(KeyValue::new(k.to_string(), v));
        }
        if let Some(source) = &self.extra_metadata {
            for (k, v) in source() {
                file.writer.append_key_value_metadata(KeyValue::new(k, v));
            }
        }
        let rows = file.rows;
        let closed = file
            .writer
            .into_inner()
            .map_err(|e| Error::parquet(&file.temp, e))
            .and_then(|buf| {
                buf.into_inner().map_err(|e| Error::io("write", &file.temp, e.into_error()))
            })
            .and_then(|f| f.sync_all().map_err(|e| Error::io("sync", &file.temp, e)))
            .and_then(|()| {
                crash_points::reach(Point::FinalizeBeforeRename);
                fs::rename(&file.temp, &file.finished)
                    .map_err(|e| Error::io("rename", &file.temp, e))
            });
        match closed {
            Ok(()) => {
                self.counters.events_written += rows;
                self.counters.files_finalized += 1;
                if let Some(dir) = file.finished.parent() {
                    sync_dir(dir);
                }
                crash_points::reach(Point::FinalizeBeforeLogDelete);
                // Only now that the file is in place for good may its log segment go.
                if let Some(writer) = self.partitions.get_mut(partition) {
                    writer.retire_file();
                }
                write_result
            }
            Err(e) => {
                let _ = fs::remove_file(&file.temp);
                self.counters.events_failed += rows;
                if let Some(writer) = self.partitions.get_mut(partition) {
                    writer.retire_file();
                }
                Err(e)
            }
        }
    }

    fn finalize_all(&mut self) -> Result<()> {
        let keys: Vec<Partition> = self.partitions.keys().cloned().collect();
        let mut first_error = None;
        for p in keys {
            if let Err(e) = self.finalize(&p) {
                first_error.get_or_insert(e);
            }
        }
        self.partitions.retain(|_, w| w.file.is_some() || !w.pending.is_empty());
        first_error.map_or(Ok(()), Err)
    }

    /// `fsync`s the log segments that are due (see [`StoreConfig::wal_sync_interval`]).
    fn sync_segments(&mut self) -> Result<()> {
        let interval = self.config.wal_sync_interval;
        let mut first_error = None;
        for writer in self.partitions.values_mut() {
            if let Some(segment) = writer.segment.as_mut()
                && let Err(e) = segment.sync_if_due(interval)
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn apply_retention(&mut self) -> Result<()> {
        if self.retention.keeps_everything() {
            return Ok(());
        }
        let expired = crate::write::retention::expire_partitions(
            &self.config.root,
            &self.retention,
            Timestamp::now(),
        )?;
        self.counters.partitions_expired += expired as u64;
        Ok(())
    }
}

/// Names the next file of `partition` (creating its directory): `part-<seq>-<writer>.parquet`.
fn reserve_file(root: &std::path::Path, partition: &Partition, file_id: &str) -> Result<PathBuf> {
    let dir = partition.dir(root);
    fs::create_dir_all(&dir).map_err(|e| Error::io("create partition directory", &dir, e))?;
    partition
        .write_tenant_name(root)
        .map_err(|e| Error::io("write the tenant name", partition.tenant_dir(root), e))?;
    let seq = NEXT_FILE_SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("part-{seq:08}-{file_id}.parquet")))
}

fn to_sink_error(e: Error) -> SinkError {
    SinkError::with_source("parquet sink", e)
}

impl ParquetSink {
    /// The pipeline's error for `e`, with the events this sink accepted and lost since the last
    /// report: a failure is never counted as a delivery.
    fn sink_error(&mut self, e: Error) -> SinkError {
        let lost = self.counters.events_failed.saturating_sub(self.failed_reported);
        self.failed_reported = self.counters.events_failed;
        to_sink_error(e).with_lost_events(lost)
    }
}

impl Sink for ParquetSink {
    fn name(&self) -> &str {
        "parquet"
    }

    fn start(&mut self, context: &SinkContext) {
        self.context = Some(context.clone());
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let now = Instant::now();
        let mut full = Vec::new();
        let mut first_error = None;
        // What goes into each partition's log: one append per partition per batch, however
        // the batch interleaves partitions (one IPC message, one `write`, one encoding each).
        let mut to_log: Vec<(Partition, Vec<&Event>)> = Vec::new();
        let mut log_index: FxHashMap<(Symbol, u64), usize> = FxHashMap::default();
        // Route each run of events of the same tenant and hour with one lookup.
        let mut run_start = 0;
        while run_start < batch.len() {
            let first = &batch[run_start];
            let hour = first.time.0 / 3_600_000_000_000;
            let run_end = batch[run_start..]
                .iter()
                .position(|e| e.tenant != first.tenant || e.time.0 / 3_600_000_000_000 != hour)
                .map_or(batch.len(), |n| run_start + n);
            if self.routes.len() > 4 * self.config.max_open_files {
                self.routes.clear();
            }
            let partition = self
                .routes
                .entry((first.tenant, hour))
                .or_insert_with(|| Partition::of(first.tenant.as_str(), first.time))
                .clone();
            let writer =
                self.partitions.entry(partition.clone()).or_insert_with(|| PartitionWriter {
                    pending: Vec::with_capacity(self.config.row_group_rows.min(1 << 16)),
                    file: None,
                    last_used: now,
                    reserved: None,
                    segment: None,
                });
            writer.last_used = now;
            if self.config.wal {
                let next = to_log.len();
                let i = *log_index.entry((first.tenant, hour)).or_insert(next);
                if i == next {
                    to_log.push((partition.clone(), Vec::new()));
                }
                to_log[i].1.extend(&batch[run_start..run_end]);
            }
            for event in &batch[run_start..run_end] {
                writer.pending.push(event.clone());
                if writer.pending.len() == self.config.row_group_rows {
                    full.push(partition.clone());
                }
            }
            run_start = run_end;
        }
        for (partition, events) in &to_log {
            let Some(writer) = self.partitions.get_mut(partition) else { continue };
            if let Err(e) = log_ahead(writer, &self.config.root, partition, &self.file_id, events) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.sync_segments() {
            first_error.get_or_insert(e);
        }
        for p in full {
            let result = self.write_pending(&p, false).and_then(|()| {
                let size = self
                    .partitions
                    .get(&p)
                    .and_then(|w| w.file.as_ref())
                    .map_or(0, |f| f.writer.bytes_written());
                if size as u64 >= self.config.max_file_bytes { self.finalize(&p) } else { Ok(()) }
            });
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        // Too many partitions in memory: finalize the least recently used.
        while self.partitions.len() > self.config.max_open_files {
            let Some(oldest) =
                self.partitions.iter().min_by_key(|(_, w)| w.last_used).map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Err(e) = self.finalize(&oldest) {
                first_error.get_or_insert(e);
            }
            self.partitions.remove(&oldest);
        }
        // Every event of the batch is pending (a failed log append or write does not drop it from
        // `pending`): the batch is accepted, and whatever it loses later is reported as lost.
        first_error
            .map_or(Ok(()), |e| Err(self.sink_error(e).with_accepted_events(batch.len() as u64)))
    }

    fn tick(&mut self, _now: Timestamp) -> Result<(), SinkError> {
        let synced = self.sync_segments();
        let max_age = self.config.max_file_age;
        let old: Vec<Partition> = self
            .partitions
            .iter()
            .filter(|(_, w)| {
                w.file.as_ref().is_some_and(|f| f.opened.elapsed() >= max_age)
                    || (!w.pending.is_empty() && w.last_used.elapsed() >= max_age)
            })
            .map(|(p, _)| p.clone())
            .collect();
        let mut first_error = synced.err();
        for p in old {
            if let Err(e) = self.finalize(&p) {
                first_error.get_or_insert(e);
            }
            self.partitions.remove(&p);
        }
        if self.last_retention.elapsed() >= Duration::from_secs(60) {
            self.last_retention = Instant::now();
            if let Err(e) = self.apply_retention() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), |e| Err(self.sink_error(e)))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.finalize_all().map_err(|e| self.sink_error(e))
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let result = self.finalize_all();
        let retention = self.apply_retention();
        result.and(retention).map_err(|e| self.sink_error(e))
    }
}

/// Appends `events` (a drained batch's events of `partition`) to the log segment of its file, creating both the
/// file's name and its segment for the run that starts a file. A failed append deletes the
/// segment: the file's rows are then safe only once it is finalized, and the error is reported.
fn log_ahead(
    writer: &mut PartitionWriter,
    root: &std::path::Path,
    partition: &Partition,
    file_id: &str,
    events: &[&Event],
) -> Result<()> {
    if writer.reserved.is_none() {
        let finished = reserve_file(root, partition, file_id)?;
        writer.segment = Some(Segment::create(&finished)?);
        writer.reserved = Some(finished);
    }
    let Some(segment) = writer.segment.as_mut() else { return Ok(()) };
    let appended = encode(events).and_then(|batch| segment.append(&batch));
    if appended.is_err()
        && let Some(segment) = writer.segment.take()
    {
        segment.remove();
    }
    appended
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        let _ = self.finalize_all();
    }
}
