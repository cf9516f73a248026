//! [`Query`]: filters, projection and limit over a [`Store`], pruned by partition path and
//! row-group statistics before anything is read.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use mission_core::Timestamp;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;

use crate::read::decode::{attribute_matches, check_schema_version, string_column};
use crate::read::source::Source;
use crate::read::store::{SkippedFile, Store, StoreCheck, StoreFile};
use crate::schema::{col, events_schema};
use crate::write::wal;
use crate::{Error, Result};

/// What a query read, and what it could skip without reading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Files in the store.
    pub files_total: usize,
    /// Files whose partition could match (the others were pruned by path).
    pub files_opened: usize,
    /// Row groups in the opened files.
    pub row_groups_total: usize,
    /// Row groups actually read (the others were pruned by statistics).
    pub row_groups_read: usize,
    /// Rows read and filtered.
    pub rows_scanned: u64,
    /// Rows returned.
    pub rows_returned: u64,
    /// Bytes read from the files: local reads, or the ranged GETs of a store on object
    /// storage (footers and the column chunks of the row groups read; never whole files).
    pub bytes_read: u64,
    /// Files skipped, with the reason (corrupt, foreign, newer schema); also recorded in
    /// [`Store::skipped_files`], with their row counts, for the views built on queries.
    pub skipped: Vec<(PathBuf, String)>,
}

/// A query over a store. Build it with the filter methods, then run it with
/// [`batches`](Self::batches), [`iter`](Self::iter) or [`count`](Self::count).
///
/// Every filter is an equality or a time range, combined with AND. Results carry the requested
/// columns (all by default) plus `tenant`, from the partition path.
#[derive(Clone, Debug)]
#[must_use]
pub struct Query<'s> {
    store: &'s Store,
    from: Option<i64>,
    to: Option<i64>,
    tenant: Option<String>,
    agent: Option<String>,
    thread: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    status: Option<String>,
    attributes: Vec<(String, String)>,
    columns: Option<Vec<String>>,
    limit: Option<u64>,
    batch_size: usize,
}

impl<'s> Query<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            from: None,
            to: None,
            tenant: None,
            agent: None,
            thread: None,
            kind: None,
            name: None,
            status: None,
            attributes: Vec::new(),
            columns: None,
            limit: None,
            batch_size: 8192,
        }
    }

    /// The time window set by [`time_range`](Self::time_range), in ns since the epoch.
    pub(crate) fn window(&self) -> (Option<i64>, Option<i64>) {
        (self.from, self.to)
    }

    /// The tenant filter, if any.
    pub(crate) fn tenant_filter(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Events with `from <= time < to`.
    pub fn time_range(mut self, from: Timestamp, to: Timestamp) -> Self {
        self.from = Some(i64::try_from(from.0).unwrap_or(i64::MAX));
        self.to = Some(i64::try_from(to.0).unwrap_or(i64::MAX));
        self
    }

    /// Events of one tenant.
    ///
    /// A tenant longer than [`MAX_NAME_BYTES`](mission_core::limits::MAX_NAME_BYTES) matches as
    /// it was recorded: cut the same way.
    pub fn tenant(mut self, tenant: &str) -> Self {
        let recorded = mission_core::limits::truncate_with_marker(
            tenant,
            mission_core::limits::MAX_NAME_BYTES,
        );
        self.tenant = Some(recorded.into_owned());
        self
    }

    /// Events of one agent.
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.to_owned());
        self
    }

    /// Events of one thread (32 lowercase hex digits).
    pub fn thread(mut self, thread_id: &str) -> Self {
        self.thread = Some(thread_id.to_owned());
        self
    }

    /// Events of one kind: `llm_call`, `tool_call`, `agent_step`, `retrieval`, `custom`, `log`,
    /// `metric`, `permission`, `anomaly`.
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.to_owned());
        self
    }

    /// Events with this name (span, metric or action name).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Spans with this status: `ok`, `error`, `unset`.
    pub fn status(mut self, status: &str) -> Self {
        self.status = Some(status.to_owned());
        self
    }

    /// Events whose attribute `key` equals `value` (as text).
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Returns only these columns (and `tenant`).
    pub fn columns(mut self, columns: &[&str]) -> Self {
        self.columns = Some(columns.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    /// Returns at most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Rows per returned batch (default 8192).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Runs the query and collects every batch.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown column; I/O errors listing or reading files. Corrupt,
    /// foreign or newer files are skipped and reported in [`QueryIter::stats`], not errors.
    pub fn batches(self) -> Result<Vec<RecordBatch>> {
        self.iter()?.collect()
    }

    /// Runs the query and counts the matching rows.
    ///
    /// # Errors
    /// As [`batches`](Self::batches).
    pub fn count(self) -> Result<u64> {
        let mut iter = self.columns(&[col::TIME]).iter()?;
        let mut n = 0;
        for batch in iter.by_ref() {
            n += batch?.num_rows() as u64;
        }
        Ok(n)
    }

    /// Runs the query as an iterator of batches (for results too large to hold at once).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown column.
    pub fn iter(self) -> Result<QueryIter<'s>> {
        let schema = events_schema();
        let requested: Vec<usize> = match &self.columns {
            None => (0..schema.fields().len()).collect(),
            Some(names) => names
                .iter()
                .filter(|n| n.as_str() != col::TENANT)
                .map(|n| {
                    schema.index_of(n).map_err(|_| Error::Invalid {
                        what: "column",
                        reason: format!("{n:?} is not a column of the events schema"),
                    })
                })
                .collect::<Result<_>>()?,
        };
        let mut read: Vec<usize> = requested.clone();
        let mut need = |name: &str| {
            if let Ok(i) = schema.index_of(name)
                && !read.contains(&i)
            {
                read.push(i);
            }
        };
        if self.from.is_some() || self.to.is_some() {
            need(col::TIME);
        }
        for (cond, name) in [
            (self.agent.is_some(), col::AGENT),
            (self.thread.is_some(), col::THREAD_ID),
            (self.kind.is_some(), col::KIND),
            (self.name.is_some(), col::NAME),
            (self.status.is_some(), col::STATUS),
            (!self.attributes.is_empty(), col::ATTRIBUTES),
        ] {
            if cond {
                need(name);
            }
        }
        read.sort_unstable();
        let read_schema = Arc::new(schema.project(&read)?);
        let output_positions: Vec<usize> =
            requested.iter().filter_map(|i| read.iter().position(|r| r == i)).collect();
        let mut out_fields: Vec<Field> =
            output_positions.iter().map(|&p| read_schema.field(p).clone()).collect();
        out_fields.push(Field::new(col::TENANT, DataType::Utf8, false));
        let files: Vec<&'s StoreFile> = self
            .store
            .files()
            .iter()
            .filter(|f| self.tenant.as_ref().is_none_or(|t| &f.partition.tenant == t))
            .filter(|f| self.from.is_none_or(|from| f.partition.end_ns() > from as i128))
            .filter(|f| self.to.is_none_or(|to| f.partition.start_ns() < to as i128))
            .collect();
        let stats = QueryStats {
            files_total: self.store.files().len(),
            files_opened: files.len(),
            ..QueryStats::default()
        };
        Ok(QueryIter {
            query: self,
            files,
            next_file: 0,
            current: None,
            read,
            output_positions,
            output_schema: Arc::new(Schema::new(out_fields)),
            stats,
            bytes_read: Arc::default(),
            returned: 0,
            finished: false,
        })
    }

    fn row_group_may_match(&self, rg: &RowGroupMetaData) -> bool {
        let column = |name: &str| {
            let index = events_schema().index_of(name).ok()?;
            rg.column(index).statistics()
        };
        if let Some(Statistics::Int64(s)) = column(col::TIME)
            && let (Some(&min), Some(&max)) = (s.min_opt(), s.max_opt())
            && (self.from.is_some_and(|from| max < from) || self.to.is_some_and(|to| min >= to))
        {
            return false;
        }
        for (value, name) in
            [(&self.thread, col::THREAD_ID), (&self.agent, col::AGENT), (&self.name, col::NAME)]
        {
            let Some(value) = value else { continue };
            if let Some(Statistics::ByteArray(s)) = column(name)
                && let (Some(min), Some(max)) = (s.min_opt(), s.max_opt())
            {
                let v = value.as_bytes();
                if v < min.data() || v > max.data() {
                    return false;
                }
            }
        }
        true
    }

    fn mask(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        let mut masks: Vec<BooleanArray> = Vec::new();
        if self.from.is_some() || self.to.is_some() {
            let time = batch
                .column_by_name(col::TIME)
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
                .ok_or_else(|| Error::Invalid { what: "column", reason: "time missing".into() })?;
            let (from, to) = (self.from.unwrap_or(i64::MIN), self.to.unwrap_or(i64::MAX));
            masks.push(time.iter().map(|t| Some(t.is_some_and(|t| t >= from && t < to))).collect());
        }
        for (value, name) in [
            (&self.agent, col::AGENT),
            (&self.kind, col::KIND),
            (&self.name, col::NAME),
            (&self.status, col::STATUS),
        ] {
            if let Some(value) = value {
                masks.push(dictionary_equals(batch, name, value)?);
            }
        }
        if let Some(thread) = &self.thread {
            let threads = string_column(batch, col::THREAD_ID)?;
            masks.push(
                (0..batch.num_rows())
                    .map(|i| Some(threads.is_valid(i) && threads.value(i) == thread))
                    .collect(),
            );
        }
        for (k, v) in &self.attributes {
            masks.push(attribute_matches(batch, k, v)?);
        }
        let mut combined: Option<BooleanArray> = None;
        for m in masks {
            combined = Some(match combined {
                None => m,
                Some(c) => and(&c, &m)?,
            });
        }
        Ok(combined)
    }
}

/// Rows of a dictionary-encoded text column equal to `value`.
fn dictionary_equals(batch: &RecordBatch, name: &str, value: &str) -> Result<BooleanArray> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Invalid { what: "column", reason: format!("{name} missing") })?;
    if let Some(dict) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        let values = dict.values().as_any().downcast_ref::<StringArray>().ok_or_else(|| {
            Error::Invalid { what: "column", reason: format!("{name} is not text") }
        })?;
        let hits: Vec<bool> =
            (0..values.len()).map(|i| values.is_valid(i) && values.value(i) == value).collect();
        let keys = dict.keys();
        return Ok((0..keys.len())
            .map(|i| {
                Some(keys.is_valid(i) && hits.get(keys.value(i) as usize).copied().unwrap_or(false))
            })
            .collect());
    }
    let strings = string_column(batch, name)?;
    Ok((0..strings.len()).map(|i| Some(strings.is_valid(i) && strings.value(i) == value)).collect())
}

/// How often a reader looks again for the merged file holding a listed file's rows, when the
/// one it found was itself merged (and deleted) before it could open it.
const REPLACEMENT_ATTEMPTS: usize = 8;

/// Opens a listed file; when it is gone because a compaction merged it after the listing, the
/// merged file that holds its rows instead, reading only those (see
/// [`compact`](crate::write::compact)). `Err`: why it cannot be read.
type Opened = (StoreFile, ParquetRecordBatchReaderBuilder<Source>, Source);

fn open_listed(listed: &StoreFile, read: &Arc<AtomicU64>) -> std::result::Result<Opened, String> {
    let open = |file: &StoreFile| {
        let source = Source::open(file, read).map_err(|e| match e {
            Error::Io { source, .. } => (source.kind(), source.to_string()),
            other => (std::io::ErrorKind::Other, other.to_string()),
        })?;
        let handle = source.try_clone().map_err(|e| (e.kind(), e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(source)
            .map_err(|e| (std::io::ErrorKind::Other, e.to_string()))?;
        handle.learn_layout(builder.metadata());
        Ok((builder, handle))
    };
    let unreadable = |reason: String| format!("unreadable: {reason}");
    match open(listed) {
        Ok((b, handle)) => return Ok((listed.clone(), b, handle)),
        Err((std::io::ErrorKind::NotFound, _)) => {}
        Err((_, reason)) => return Err(unreadable(reason)),
    }
    let (Some(dir), Some(name)) =
        (listed.path.parent(), listed.path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(unreadable("no such file".into()));
    };
    // Compaction runs on local roots only: an object that vanished was deleted.
    if listed.is_remote() {
        return Err("removed while reading (by retention or another process)".into());
    }
    for _ in 0..REPLACEMENT_ATTEMPTS {
        let candidates = crate::write::compact::replacements_of(dir, name);
        if candidates.is_empty() {
            break;
        }
        for (path, source) in candidates {
            let file = StoreFile {
                path,
                partition: listed.partition.clone(),
                bytes: listed.bytes,
                rows: Some(vec![(source.first_row, source.rows)]),
                origin: listed.origin.clone(),
            };
            match open(&file) {
                Ok((b, handle)) => return Ok((file, b, handle)),
                Err((std::io::ErrorKind::NotFound, _)) => continue,
                Err((_, reason)) => return Err(unreadable(reason)),
            }
        }
    }
    Err("removed while reading (by retention or erasure; no merged file holds its rows)".into())
}

/// The selection of `ranges` (`(first, count)`, possibly unsorted or overlapping) among
/// `total` rows.
pub(crate) fn row_selection(ranges: &[(u64, u64)], total: u64) -> RowSelection {
    let mut sorted: Vec<(u64, u64)> = ranges.iter().copied().filter(|r| r.1 > 0).collect();
    sorted.sort_unstable();
    let mut selectors = Vec::new();
    let mut at = 0u64;
    for (first, count) in sorted {
        let first = first.min(total);
        let end = first.saturating_add(count).min(total);
        if end <= at {
            continue;
        }
        let start = first.max(at);
        if start > at {
            selectors.push(RowSelector::skip((start - at) as usize));
        }
        selectors.push(RowSelector::select((end - start) as usize));
        at = end;
    }
    if total > at {
        selectors.push(RowSelector::skip((total - at) as usize));
    }
    selectors.into()
}

/// The running query: an iterator of `RecordBatch`es.
pub struct QueryIter<'s> {
    query: Query<'s>,
    files: Vec<&'s StoreFile>,
    next_file: usize,
    /// The open file: its reader, tenant, entry and how many columns it has (fewer than the
    /// schema for an older version).
    current: Option<(ParquetRecordBatchReader, ArrayRef, StoreFile, usize)>,
    read: Vec<usize>,
    output_positions: Vec<usize>,
    output_schema: SchemaRef,
    stats: QueryStats,
    /// Bytes read from the files so far (shared with their sources).
    bytes_read: Arc<AtomicU64>,
    returned: u64,
    finished: bool,
}

impl QueryIter<'_> {
    /// What has been read and skipped so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> &QueryStats {
        &self.stats
    }

    /// The schema of the batches this query returns.
    pub fn schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Records a skipped file in the stats and in the store's read log.
    fn skip(&mut self, file: &StoreFile, reason: String, rows: Option<u64>) {
        self.query.store.note_skipped(SkippedFile {
            path: file.path.clone(),
            reason: reason.clone(),
            rows,
        });
        self.stats.skipped.push((file.path.clone(), reason));
    }

    fn open_next(&mut self) -> Result<bool> {
        let progress = self.query.store.progress_hook();
        while self.next_file < self.files.len() {
            if let Some(p) = progress {
                p.call(self.next_file, self.files.len());
            }
            let listed = self.files[self.next_file];
            self.next_file += 1;
            let opened = open_listed(listed, &self.bytes_read);
            self.stats.bytes_read = self.bytes_read.load(Ordering::Relaxed);
            let (file, builder, handle) = match opened {
                Ok(opened) => opened,
                Err(reason) => {
                    self.skip(listed, reason, None);
                    continue;
                }
            };
            let file = &file;
            let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).ok();
            if let Err(e) = check_schema_version(&file.path, builder.metadata()) {
                self.skip(file, e.to_string(), rows);
                continue;
            }
            if !crate::schema::is_known_layout(builder.schema().fields()) {
                self.skip(file, "schema does not match the events schema".into(), rows);
                continue;
            }
            let file_columns = builder.schema().fields().len();
            let groups = builder.metadata().row_groups();
            self.stats.row_groups_total += groups.len();
            let metadata = Arc::clone(builder.metadata());
            let leaves: Vec<usize> = {
                let schema = builder.parquet_schema();
                (0..schema.num_columns())
                    .filter(|&leaf| {
                        let root = schema.get_column_root_idx(leaf);
                        root < file_columns && self.read.contains(&root)
                    })
                    .collect()
            };
            let builder = match file.row_ranges() {
                // Rows of a file that was merged while this query ran: that file's rows only,
                // every row group (the selection counts rows from the file's start).
                Some(ranges) => {
                    self.stats.row_groups_read += groups.len();
                    let total: u64 = groups.iter().map(|g| g.num_rows().max(0) as u64).sum();
                    builder.with_row_selection(row_selection(ranges, total))
                }
                None => {
                    let selected: Vec<usize> = (0..groups.len())
                        .filter(|&i| self.query.row_group_may_match(&groups[i]))
                        .collect();
                    self.stats.row_groups_read += selected.len();
                    if selected.is_empty() {
                        continue;
                    }
                    // On object storage, the chunks to read in as few GETs as can be.
                    handle.prefetch(&metadata, &selected, &leaves);
                    builder.with_row_groups(selected)
                }
            };
            let mask = ProjectionMask::roots(
                builder.parquet_schema(),
                self.read.iter().copied().filter(|&i| i < file_columns),
            );
            let reader = builder
                .with_projection(mask)
                .with_batch_size(self.query.batch_size)
                .build()
                .map_err(|e| Error::parquet(&file.path, e))?;
            let tenant: ArrayRef = Arc::new(StringArray::from(vec![file.partition.tenant.clone()]));
            self.current = Some((reader, tenant, file.clone(), file_columns));
            return Ok(true);
        }
        if let Some(p) = progress
            && !self.finished
        {
            self.finished = true;
            p.call(self.files.len(), self.files.len());
        }
        Ok(false)
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let batch = self.next_batch_inner();
        self.stats.bytes_read = self.bytes_read.load(Ordering::Relaxed);
        batch
    }

    fn next_batch_inner(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.query.limit.is_some_and(|l| self.returned >= l) {
                return Ok(None);
            }
            if self.current.is_none() && !self.open_next()? {
                return Ok(None);
            }
            let Some((reader, tenant, file, file_columns)) = self.current.as_mut() else {
                return Ok(None);
            };
            let file_columns = *file_columns;
            let Some(batch) = reader.next() else {
                self.current = None;
                continue;
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    // Damaged inside (a page that does not decode): the rest of the file is
                    // skipped and reported, like a file whose footer cannot be read.
                    let file = file.clone();
                    self.current = None;
                    self.skip(&file, format!("damaged: {e}"), None);
                    continue;
                }
            };
            self.stats.rows_scanned += batch.num_rows() as u64;
            let batch = crate::schema::pad_to_current(batch, &self.read, file_columns)?;
            let batch = match self.query.mask(&batch)? {
                Some(mask) => filter_record_batch(&batch, &mask)?,
                None => batch,
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let mut batch = batch;
            if let Some(limit) = self.query.limit {
                let room = (limit - self.returned) as usize;
                if batch.num_rows() > room {
                    batch = batch.slice(0, room);
                }
            }
            let tenant_value = tenant
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.value(0).to_owned())
                .unwrap_or_default();
            let mut columns: Vec<ArrayRef> =
                self.output_positions.iter().map(|&p| batch.column(p).clone()).collect();
            columns.push(Arc::new(StringArray::from(vec![tenant_value; batch.num_rows()])));
            let out = RecordBatch::try_new(self.output_schema.clone(), columns)?;
            self.returned += out.num_rows() as u64;
            self.stats.rows_returned += out.num_rows() as u64;
            return Ok(Some(out));
        }
    }
}

impl Iterator for QueryIter<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

impl Store {
    /// A query over every event in the store.
    pub fn query(&self) -> Query<'_> {
        Query::new(self)
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
        let report = self.open_report();
        Ok(StoreCheck {
            files: self.files().len(),
            bytes: self.files().iter().map(|f| f.bytes).sum(),
            events,
            leftovers: report.leftovers.clone(),
            misplaced: report.misplaced.clone(),
            unreadable: iter.stats().skipped.clone(),
            wal: report.wal.iter().map(|p| wal::inspect(p)).collect(),
            in_progress: report.in_progress,
            quarantined: report.quarantined.clone(),
        })
    }
}
