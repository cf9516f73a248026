//! Decoding: the one place an events file is opened and its schema version checked
//! ([`EventFile`], [`check_schema_version`]), and the one decoder from a stored batch back to
//! owned rows ([`EventRow`]).
//!
//! ```
//! use mission_core::{Pipeline, SpanKind, Symbol, ThreadContext};
//! use mission_store::{EventFile, ParquetSink, Store, StoreConfig};
//!
//! let root = std::env::temp_dir().join(format!("mission-decode-doc-{}", std::process::id()));
//! let pipeline = Pipeline::builder().with_sink(ParquetSink::new(StoreConfig::at(&root))?).start()?;
//! let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
//! let recorder = pipeline.recorder();
//! let span = recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
//! span.end_with_error("upstream returned 503");
//! pipeline.shutdown();
//!
//! let store = Store::open(&root)?;
//! let file = EventFile::open(&store.files()[0])?; // checks the schema version
//! assert_eq!(file.num_rows(), 1);
//! let rows = file.rows(None)?.collect::<Result<Vec<_>, _>>()?;
//! assert_eq!((rows[0].tenant.as_str(), rows[0].name.as_str()), ("acme", "web_search"));
//! assert_eq!(rows[0].status.as_deref(), Some("error"));
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, MapArray, RecordBatch, StringArray,
    UInt64Array,
};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;

use crate::read::source::Source;
use crate::read::store::StoreFile;
use crate::schema::{self, col};
use crate::{Error, Result};

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

/// Checks a file's metadata: a Mission Control events file, of a schema version this build
/// reads. This is the one schema-version check: every reader of the store goes through it.
///
/// # Errors
/// [`Error::Foreign`] without (or with an unreadable) `mission.schema_version`;
/// [`Error::NewerSchema`] for a version newer than [`SCHEMA_VERSION`](schema::SCHEMA_VERSION).
pub fn check_schema_version(path: &Path, metadata: &ParquetMetaData) -> Result<()> {
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

/// One stored event, owned: every column of the events schema, decoded (a column the batch
/// lacks, or a null, is `None`; the non-null columns `kind`, `agent` and `name` are empty
/// then). Text is as stored: nothing is trimmed or dropped.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EventRow {
    /// When it happened (a span: when it started), ns since the Unix epoch (0 if missing).
    pub time_ns: i64,
    /// The tenant: from the partition path for [`EventFile`], from the `tenant` column of a
    /// query's batch for [`EventRow::from_batch`].
    pub tenant: String,
    /// `llm_call`, `tool_call`, `agent_step`, `retrieval`, `custom`, `log`, `metric`,
    /// `permission`, `anomaly`, `score`.
    pub kind: String,
    /// The agent's name.
    pub agent: String,
    /// The thread, 32 hex digits; `None` outside a thread.
    pub thread_id: Option<String>,
    /// A span's own id, or the span another event happened in.
    pub span_id: Option<u64>,
    /// A span's parent (`None`: a root).
    pub parent_span_id: Option<u64>,
    /// The span, metric or action name.
    pub name: String,
    /// A span's duration.
    pub duration_ns: Option<i64>,
    /// A span's status: `ok`, `error`, `unset`.
    pub status: Option<String>,
    /// A failed span's error message.
    pub error_message: Option<String>,
    /// The GenAI operation (`chat`, `execute_tool`, …).
    pub operation: Option<String>,
    /// The LLM provider.
    pub provider: Option<String>,
    /// The requested model.
    pub model: Option<String>,
    /// Input tokens of an LLM call.
    pub input_tokens: Option<i64>,
    /// Output tokens of an LLM call.
    pub output_tokens: Option<i64>,
    /// Cached input tokens of an LLM call.
    pub cached_input_tokens: Option<i64>,
    /// Reasoning tokens of an LLM call.
    pub reasoning_tokens: Option<i64>,
    /// Cost of an LLM call in US dollars.
    pub cost_usd: Option<f64>,
    /// A log record's level: `trace` … `error`.
    pub level: Option<String>,
    /// A log record's target.
    pub log_target: Option<String>,
    /// A log record's message.
    pub message: Option<String>,
    /// A metric's kind: `gauge`, `counter`, `histogram`.
    pub metric_kind: Option<String>,
    /// A metric's (or an anomaly's observed) value.
    pub value: Option<f64>,
    /// A metric's unit.
    pub unit: Option<String>,
    /// A permission decision's actor.
    pub actor: Option<String>,
    /// A permission decision's action.
    pub action: Option<String>,
    /// A permission decision's resource.
    pub resource: Option<String>,
    /// A permission decision: `allow` or `deny`.
    pub decision: Option<String>,
    /// The policy that decided.
    pub policy: Option<String>,
    /// The detector that raised an anomaly.
    pub detector: Option<String>,
    /// An anomaly's score.
    pub score: Option<f64>,
    /// An anomaly's expected value.
    pub expected: Option<f64>,
    /// The lower bound of an anomaly's expected band.
    pub lower: Option<f64>,
    /// The upper bound of an anomaly's expected band.
    pub upper: Option<f64>,
    /// Attribute values as text (as the store keeps them), in recorded order.
    pub attributes: Vec<(String, String)>,
    /// Who gave a score: `human`, `llm`, `rule` (version 2).
    pub score_source: Option<String>,
    /// A score's value.
    pub score_value: Option<f64>,
    /// A score's label.
    pub score_label: Option<String>,
    /// A score's comment (its explanation).
    pub score_comment: Option<String>,
}

/// A column of `batch` cast to `to`, `None` if the batch lacks it.
fn cast(batch: &RecordBatch, name: &str, to: &DataType) -> Result<Option<ArrayRef>> {
    let Some(c) = batch.column_by_name(name) else { return Ok(None) };
    if c.data_type() == to {
        return Ok(Some(c.clone()));
    }
    Ok(Some(arrow::compute::cast(c, to)?))
}

fn texts(batch: &RecordBatch, name: &str) -> Result<Option<StringArray>> {
    Ok(cast(batch, name, &DataType::Utf8)?
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned()))
}

fn ints(batch: &RecordBatch, name: &str) -> Result<Option<Int64Array>> {
    Ok(cast(batch, name, &DataType::Int64)?
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned()))
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Option<Float64Array>> {
    Ok(cast(batch, name, &DataType::Float64)?
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned()))
}

fn ids(batch: &RecordBatch, name: &str) -> Result<Option<UInt64Array>> {
    Ok(cast(batch, name, &DataType::UInt64)?
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned()))
}

fn at<A: Array, T>(a: &Option<A>, row: usize, value: impl Fn(&A, usize) -> T) -> Option<T> {
    a.as_ref().filter(|a| a.is_valid(row)).map(|a| value(a, row))
}

impl EventRow {
    /// Decodes every row of `batch` (a batch of an [`EventFile`] or of a
    /// [`Query`](crate::Query), any projection of the events schema).
    ///
    /// # Errors
    /// [`Error::Arrow`] if a column has a type that does not convert to its field's.
    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<EventRow>> {
        let time = ints(batch, col::TIME)?;
        let [tenant, kind, agent, thread, name, status, error, operation, provider, model] = [
            col::TENANT,
            col::KIND,
            col::AGENT,
            col::THREAD_ID,
            col::NAME,
            col::STATUS,
            col::ERROR_MESSAGE,
            col::OPERATION,
            col::PROVIDER,
            col::MODEL,
        ]
        .map(|n| texts(batch, n));
        let [level, target, message, metric_kind, unit, detector] = [
            col::LOG_LEVEL,
            col::LOG_TARGET,
            col::LOG_MESSAGE,
            col::METRIC_KIND,
            col::METRIC_UNIT,
            col::ANOMALY_DETECTOR,
        ]
        .map(|n| texts(batch, n));
        let [actor, action, resource, decision, policy] = [
            col::PERMISSION_ACTOR,
            col::PERMISSION_ACTION,
            col::PERMISSION_RESOURCE,
            col::PERMISSION_DECISION,
            col::PERMISSION_POLICY,
        ]
        .map(|n| texts(batch, n));
        let [duration, input, output, cached, reasoning] = [
            col::DURATION_NS,
            col::INPUT_TOKENS,
            col::OUTPUT_TOKENS,
            col::CACHED_INPUT_TOKENS,
            col::REASONING_TOKENS,
        ]
        .map(|n| ints(batch, n));
        let [cost, value, score, expected, lower, upper] = [
            col::COST,
            col::METRIC_VALUE,
            col::ANOMALY_SCORE,
            col::ANOMALY_EXPECTED,
            col::ANOMALY_LOWER,
            col::ANOMALY_UPPER,
        ]
        .map(|n| floats(batch, n));
        let [score_source, score_label, score_comment] =
            [col::SCORE_SOURCE, col::SCORE_LABEL, col::SCORE_COMMENT].map(|n| texts(batch, n));
        let (score_source, score_label, score_comment) =
            (score_source?, score_label?, score_comment?);
        let score_value = floats(batch, col::SCORE_VALUE)?;
        let (span, parent) = (ids(batch, col::SPAN_ID)?, ids(batch, col::PARENT_SPAN_ID)?);
        let attributes = batch
            .column_by_name(col::ATTRIBUTES)
            .and_then(|c| c.as_any().downcast_ref::<MapArray>());
        let (tenant, kind, agent, thread, name) = (tenant?, kind?, agent?, thread?, name?);
        let (status, error, operation, provider, model) =
            (status?, error?, operation?, provider?, model?);
        let (level, target, message, metric_kind, unit, detector) =
            (level?, target?, message?, metric_kind?, unit?, detector?);
        let (actor, action, resource, decision, policy) =
            (actor?, action?, resource?, decision?, policy?);
        let (duration, input, output, cached, reasoning) =
            (duration?, input?, output?, cached?, reasoning?);
        let (cost, value, score, expected, lower, upper) =
            (cost?, value?, score?, expected?, lower?, upper?);
        let s = |a: &Option<StringArray>, i: usize| at(a, i, |a, i| a.value(i).to_owned());
        let i = |a: &Option<Int64Array>, row: usize| at(a, row, |a, i| a.value(i));
        let f = |a: &Option<Float64Array>, row: usize| at(a, row, |a, i| a.value(i));
        let u = |a: &Option<UInt64Array>, row: usize| at(a, row, |a, i| a.value(i));
        Ok((0..batch.num_rows())
            .map(|r| EventRow {
                time_ns: i(&time, r).unwrap_or(0),
                tenant: s(&tenant, r).unwrap_or_default(),
                kind: s(&kind, r).unwrap_or_default(),
                agent: s(&agent, r).unwrap_or_default(),
                thread_id: s(&thread, r),
                span_id: u(&span, r),
                parent_span_id: u(&parent, r),
                name: s(&name, r).unwrap_or_default(),
                duration_ns: i(&duration, r),
                status: s(&status, r),
                error_message: s(&error, r),
                operation: s(&operation, r),
                provider: s(&provider, r),
                model: s(&model, r),
                input_tokens: i(&input, r),
                output_tokens: i(&output, r),
                cached_input_tokens: i(&cached, r),
                reasoning_tokens: i(&reasoning, r),
                cost_usd: f(&cost, r),
                level: s(&level, r),
                log_target: s(&target, r),
                message: s(&message, r),
                metric_kind: s(&metric_kind, r),
                value: f(&value, r),
                unit: s(&unit, r),
                actor: s(&actor, r),
                action: s(&action, r),
                resource: s(&resource, r),
                decision: s(&decision, r),
                policy: s(&policy, r),
                detector: s(&detector, r),
                score: f(&score, r),
                expected: f(&expected, r),
                lower: f(&lower, r),
                upper: f(&upper, r),
                attributes: attributes.map(|m| map_entries(m, r)).unwrap_or_default(),
                score_source: s(&score_source, r),
                score_value: f(&score_value, r),
                score_label: s(&score_label, r),
                score_comment: s(&score_comment, r),
            })
            .collect())
    }

    /// An attribute's value.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The (key, value) pairs of row `i` of a `Map<Utf8, Utf8>` column (null values left out).
fn map_entries(map: &MapArray, i: usize) -> Vec<(String, String)> {
    if !map.is_valid(i) {
        return Vec::new();
    }
    let (Some(keys), Some(values)) = (
        map.keys().as_any().downcast_ref::<StringArray>(),
        map.values().as_any().downcast_ref::<StringArray>(),
    ) else {
        return Vec::new();
    };
    let offsets = map.value_offsets();
    let (Some(&start), Some(&end)) = (offsets.get(i), offsets.get(i + 1)) else {
        return Vec::new();
    };
    (start.max(0) as usize..end.max(0) as usize)
        .filter(|&j| j < keys.len() && values.is_valid(j))
        .map(|j| (keys.value(j).to_owned(), values.value(j).to_owned()))
        .collect()
}

/// One finalized events file, opened for reading: its footer is read and its schema version
/// checked ([`check_schema_version`]) before anything else.
pub struct EventFile {
    path: PathBuf,
    tenant: String,
    builder: ParquetRecordBatchReaderBuilder<Source>,
    /// Only these row ranges (see [`StoreFile::row_ranges`]).
    rows: Option<Vec<(u64, u64)>>,
}

impl std::fmt::Debug for EventFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFile").field("path", &self.path).field("tenant", &self.tenant).finish()
    }
}

impl EventFile {
    /// Opens one file of a store; its rows get the tenant of its partition.
    ///
    /// Cost: one open and one footer read.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened; [`Error::Parquet`] if its footer cannot be read;
    /// [`Error::Foreign`] or [`Error::NewerSchema`] if it is not an events file this build
    /// reads.
    pub fn open(file: &StoreFile) -> Result<Self> {
        let source = Source::open(file, &Default::default())?;
        let mut opened = Self::from_source(&file.path, &file.partition.tenant, source)?;
        opened.rows = file.row_ranges().map(<[_]>::to_vec);
        Ok(opened)
    }

    /// Opens the events file at `path` (a local file), giving its rows `tenant`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_path(path: &Path, tenant: &str) -> Result<Self> {
        Self::from_source(path, tenant, Source::open_local(path, &Default::default())?)
    }

    fn from_source(path: &Path, tenant: &str, source: Source) -> Result<Self> {
        let handle = source.try_clone().map_err(|e| Error::io("open", path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(source)
            .map_err(|e| Error::parquet(path, e))?;
        handle.learn_layout(builder.metadata());
        check_schema_version(path, builder.metadata())?;
        Ok(Self { path: path.to_path_buf(), tenant: tenant.to_owned(), builder, rows: None })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows it holds, from its footer (those of its [row ranges](StoreFile::row_ranges)
    /// when it was opened with some).
    pub fn num_rows(&self) -> u64 {
        let all = u64::try_from(self.builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        match &self.rows {
            Some(ranges) => crate::read::query::row_selection(ranges, all).row_count() as u64,
            None => all,
        }
    }

    /// Its footer.
    pub fn metadata(&self) -> &Arc<ParquetMetaData> {
        self.builder.metadata()
    }

    /// Its batches, reading only `columns` (every column for `None`; names the file lacks are
    /// left out).
    ///
    /// # Errors
    /// [`Error::Parquet`] if the reader cannot be built.
    pub fn batches(self, columns: Option<&[&str]>) -> Result<EventBatches> {
        let mut builder = self.builder;
        if let Some(columns) = columns {
            let schema = builder.schema().clone();
            let roots = columns.iter().filter_map(|c| schema.index_of(c).ok());
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder = builder.with_projection(mask);
        }
        if let Some(ranges) = &self.rows {
            let all: u64 =
                builder.metadata().row_groups().iter().map(|g| g.num_rows().max(0) as u64).sum();
            builder = builder.with_row_selection(crate::read::query::row_selection(ranges, all));
        }
        let reader = builder.build().map_err(|e| Error::parquet(&self.path, e))?;
        Ok(EventBatches { reader })
    }

    /// Its rows, decoded ([`EventRow`]), with the tenant of the file, reading only `columns`
    /// (see [`batches`](Self::batches)). One batch is decoded at a time.
    ///
    /// # Errors
    /// As [`batches`](Self::batches); each item fails if its batch cannot be read or decoded.
    pub fn rows(self, columns: Option<&[&str]>) -> Result<EventRows> {
        let tenant = self.tenant.clone();
        Ok(EventRows { batches: self.batches(columns)?, tenant, pending: Vec::new().into_iter() })
    }
}

/// The batches of an [`EventFile`].
pub struct EventBatches {
    reader: ParquetRecordBatchReader,
}

impl Iterator for EventBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next().map(|b| b.map_err(Error::from))
    }
}

/// The rows of an [`EventFile`], decoded one batch at a time.
pub struct EventRows {
    batches: EventBatches,
    tenant: String,
    pending: std::vec::IntoIter<EventRow>,
}

impl Iterator for EventRows {
    type Item = Result<EventRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.pending.next() {
                return Some(Ok(row));
            }
            let batch = match self.batches.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            match EventRow::from_batch(&batch) {
                Ok(mut rows) => {
                    for row in &mut rows {
                        row.tenant.clone_from(&self.tenant);
                    }
                    self.pending = rows.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
