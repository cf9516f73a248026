//! SQL over the store, with Apache DataFusion (feature `sql`).
//!
//! [`SqlEngine`] answers read-only SQL over one [`Store`]: a table `events` (every column of
//! [`events_schema`] plus the Hive partitions `tenant`, `date`
//! and `hour` as columns) and views over it:
//!
//! | view | rows |
//! |---|---|
//! | `spans` | every span (`kind` in `agent_step`, `llm_call`, `tool_call`, `retrieval`, `custom`) |
//! | `llm_calls`, `tool_calls` | spans of that kind |
//! | `logs`, `metrics`, `decisions`, `anomalies`, `scores` | log lines, metric points, permission decisions, anomalies, evaluation scores |
//! | `threads` | one row per thread: agent, start, end, spans, errors, LLM and tool calls, tokens, cost |
//!
//! The column names are the stored ones (the same in DuckDB, Spark and pyarrow), so a query
//! moves between engines unchanged.
//!
//! # Tenant scope
//!
//! The engine reads exactly the files of the [`Store`] it is built from: for a
//! [scoped](Store::scoped) store, that tenant's partitions only. The scope is the table
//! provider's file list, not a rewrite of the query text, so no SQL reaches another tenant's
//! rows: there is no other table, no file or URL table (`SELECT * FROM 'path'` is refused), no
//! `information_schema` and no way to register one (DDL is refused).
//!
//! # Read-only, bounded
//!
//! Only queries run: DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY`) and statements (`SET`) are
//! refused with [`SqlError::Forbidden`]. Every answer is bounded by [`SqlLimits`]: rows and
//! bytes (an answer cut there says so, [`SqlAnswer::truncated`]), time
//! ([`SqlError::Timeout`]) and the memory of sorts, joins and aggregations
//! ([`SqlError::Execution`] when exceeded, never an out-of-memory process).
//!
//! # Damaged files
//!
//! Each file's footer is read and its schema version checked before the query, as every other
//! read of the store does: a corrupt, foreign or newer file is left out and reported in
//! [`SqlAnswer::skipped`] (and [`Store::skipped_files`]). A file whose footer is sound but a
//! page inside is damaged makes the query fail with an error naming the file.
//!
//! # Example
//!
//! ```
//! use mission_core::{Pipeline, SpanKind, Symbol, ThreadContext};
//! use mission_store::sql::{SqlEngine, SqlLimits};
//! use mission_store::{ParquetSink, Store, StoreConfig};
//!
//! let root = std::env::temp_dir().join(format!("mission-sql-doc-{}", std::process::id()));
//! let pipeline = Pipeline::builder().with_sink(ParquetSink::new(StoreConfig::at(&root))?).start()?;
//! let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
//! let recorder = pipeline.recorder();
//! let span = recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
//! span.end_with_error("upstream returned 503");
//! pipeline.shutdown();
//!
//! let engine = SqlEngine::new(Store::open(&root)?, SqlLimits::default())?;
//! let answer = engine.query("SELECT tenant, name, status FROM tool_calls")?;
//! assert_eq!(answer.rows(), 1);
//! assert!(answer.to_table()?.contains("web_search"));
//! assert!(engine.query("DROP VIEW spans").is_err());
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures_util::StreamExt;

use crate::schema::{col, events_schema};
use crate::{EventFile, SkippedFile, Store, StoreFile};

/// Why a SQL query got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The text is not SQL this engine understands, or names a table, view, column or function
    /// that does not exist (DataFusion's message, which names what was wrong).
    #[error("invalid SQL: {0}")]
    Invalid(String),
    /// The statement would change something (DDL, DML, `COPY`, `SET`, …): only queries run.
    #[error("forbidden: {0} (only read-only queries run here)")]
    Forbidden(String),
    /// The query ran longer than [`SqlLimits::timeout`] and was stopped.
    #[error("the query ran longer than {0:?} and was stopped")]
    Timeout(Duration),
    /// The query failed while running (a damaged page, the memory limit, …).
    #[error("the query failed: {0}")]
    Execution(String),
    /// A limit is out of its range.
    #[error("invalid {what}: {reason}")]
    Setting {
        /// The setting.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The result type of SQL.
pub type SqlResult<T> = std::result::Result<T, SqlError>;

impl From<DataFusionError> for SqlError {
    fn from(error: DataFusionError) -> Self {
        classify(error)
    }
}

fn classify(error: DataFusionError) -> SqlError {
    match error.find_root() {
        DataFusionError::SQL(..) | DataFusionError::Plan(..) | DataFusionError::SchemaError(..) => {
            SqlError::Invalid(error.strip_backtrace())
        }
        DataFusionError::NotImplemented(..) => SqlError::Invalid(error.strip_backtrace()),
        _ => {
            let message = error.strip_backtrace();
            // DataFusion's SQLOptions refusals are plan errors worded "... not supported".
            SqlError::Execution(message)
        }
    }
}

/// The bounds of every answer. Build with [`SqlLimits::default`] and the `with_*` setters,
/// which check their ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlLimits {
    /// Rows returned at most; the answer is cut there and says so (default 10,000; 1 to
    /// 10,000,000).
    pub max_rows: usize,
    /// Bytes of Arrow data returned at most; the answer is cut there and says so (default
    /// 64 MiB; 1 KiB to 4 GiB).
    pub max_bytes: usize,
    /// Wall time of one query (default 30 s; 1 ms to 1 hour).
    pub timeout: Duration,
    /// Memory for sorts, joins and aggregations (default 512 MiB; 16 MiB to 64 GiB).
    pub memory: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_rows: 10_000,
            max_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
            memory: 512 << 20,
        }
    }
}

fn check_range<T: PartialOrd + fmt::Debug>(
    what: &'static str,
    value: T,
    low: T,
    high: T,
) -> SqlResult<T> {
    if value < low || value > high {
        return Err(SqlError::Setting {
            what,
            reason: format!("{value:?} is outside {low:?}..={high:?}"),
        });
    }
    Ok(value)
}

impl SqlLimits {
    /// Sets [`max_rows`](Self::max_rows).
    ///
    /// # Errors
    /// [`SqlError::Setting`] outside 1 to 10,000,000.
    pub fn with_max_rows(mut self, rows: usize) -> SqlResult<Self> {
        self.max_rows = check_range("max_rows", rows, 1, 10_000_000)?;
        Ok(self)
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    ///
    /// # Errors
    /// [`SqlError::Setting`] outside 1 KiB to 4 GiB.
    pub fn with_max_bytes(mut self, bytes: usize) -> SqlResult<Self> {
        self.max_bytes = check_range("max_bytes", bytes, 1 << 10, 4 << 30)?;
        Ok(self)
    }

    /// Sets [`timeout`](Self::timeout).
    ///
    /// # Errors
    /// [`SqlError::Setting`] outside 1 ms to 1 hour.
    pub fn with_timeout(mut self, timeout: Duration) -> SqlResult<Self> {
        self.timeout =
            check_range("timeout", timeout, Duration::from_millis(1), Duration::from_secs(3600))?;
        Ok(self)
    }

    /// Sets [`memory`](Self::memory).
    ///
    /// # Errors
    /// [`SqlError::Setting`] outside 16 MiB to 64 GiB.
    pub fn with_memory(mut self, bytes: usize) -> SqlResult<Self> {
        self.memory = check_range("memory", bytes, 16 << 20, 64 << 30)?;
        Ok(self)
    }
}

/// The answer to one query.
#[derive(Clone, Debug)]
pub struct SqlAnswer {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows, in batches.
    pub batches: Vec<RecordBatch>,
    /// Whether the answer was cut at [`SqlLimits::max_rows`] or [`SqlLimits::max_bytes`]:
    /// more rows matched.
    pub truncated: bool,
    /// How long the query took.
    pub elapsed: Duration,
    /// Files left out because they could not be read: the answer covers the others only.
    pub skipped: Vec<SkippedFile>,
}

impl SqlAnswer {
    /// Rows in the answer.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The answer as a text table (what `mission-ctl sql` prints).
    ///
    /// # Errors
    /// [`SqlError::Execution`] if a value cannot be formatted.
    pub fn to_table(&self) -> SqlResult<String> {
        if self.batches.is_empty() {
            let empty = RecordBatch::new_empty(self.schema.clone());
            return arrow::util::pretty::pretty_format_batches(&[empty])
                .map(|t| t.to_string())
                .map_err(|e| SqlError::Execution(e.to_string()));
        }
        arrow::util::pretty::pretty_format_batches(&self.batches)
            .map(|t| t.to_string())
            .map_err(|e| SqlError::Execution(e.to_string()))
    }

    /// The rows as JSON objects, one per row (column name → value; timestamps as RFC 3339
    /// text, maps as objects).
    ///
    /// # Errors
    /// [`SqlError::Execution`] if a column cannot be written as JSON.
    pub fn to_json_rows(&self) -> SqlResult<Vec<serde_json::Map<String, serde_json::Value>>> {
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        writer.write_batches(&batches).map_err(|e| SqlError::Execution(e.to_string()))?;
        writer.finish().map_err(|e| SqlError::Execution(e.to_string()))?;
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&bytes).map_err(|e| SqlError::Execution(e.to_string()))
    }

    /// The answer as CSV with a header line.
    ///
    /// Maps, lists and structs (which CSV cannot hold) are written as their text rendering,
    /// `{user.id: u-42}`.
    ///
    /// # Errors
    /// [`SqlError::Execution`] if a column cannot be written as CSV.
    pub fn to_csv(&self) -> SqlResult<String> {
        let mut out = Vec::new();
        {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            if self.batches.is_empty() {
                writer
                    .write(&flatten_nested(&RecordBatch::new_empty(self.schema.clone()))?)
                    .map_err(|e| SqlError::Execution(e.to_string()))?;
            }
            for batch in &self.batches {
                writer
                    .write(&flatten_nested(batch)?)
                    .map_err(|e| SqlError::Execution(e.to_string()))?;
            }
        }
        String::from_utf8(out).map_err(|e| SqlError::Execution(e.to_string()))
    }

    /// The column names and their types, as `(name, type)`.
    pub fn columns(&self) -> Vec<(String, String)> {
        self.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect()
    }
}

/// `batch` with its nested columns (maps, lists, structs) rendered as text, for CSV.
fn flatten_nested(batch: &RecordBatch) -> SqlResult<RecordBatch> {
    let nested = |t: &DataType| {
        matches!(
            t,
            DataType::Map(..)
                | DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
                | DataType::Struct(_)
        )
    };
    if !batch.schema().fields().iter().any(|f| nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let options = arrow::util::display::FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !nested(field.data_type()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let formatter = arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| SqlError::Execution(e.to_string()))?;
        let text: StringArray = (0..column.len())
            .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
            .collect();
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(text));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| SqlError::Execution(e.to_string()))
}

/// The names of the views every engine has, for help texts and tool descriptions.
pub const VIEWS: [&str; 10] = [
    "spans",
    "llm_calls",
    "tool_calls",
    "logs",
    "metrics",
    "decisions",
    "anomalies",
    "scores",
    "threads",
    "events",
];

const SPAN_KINDS: &str = "('agent_step', 'llm_call', 'tool_call', 'retrieval', 'custom')";

fn view_sql(name: &str) -> String {
    let kind = |k: &str| format!("SELECT * FROM events WHERE kind = '{k}'");
    match name {
        "spans" => format!("SELECT * FROM events WHERE kind IN {SPAN_KINDS}"),
        "llm_calls" => kind("llm_call"),
        "tool_calls" => kind("tool_call"),
        "logs" => kind("log"),
        "metrics" => kind("metric"),
        "decisions" => kind("permission"),
        "anomalies" => kind("anomaly"),
        "scores" => kind("score"),
        _ => format!(
            "SELECT tenant, thread_id, \
               min(CAST(gen_ai_agent_name AS VARCHAR)) AS agent, \
               min(time) AS started, max(time) AS ended, \
               count(*) FILTER (WHERE kind IN {SPAN_KINDS}) AS spans, \
               count(*) FILTER (WHERE kind IN {SPAN_KINDS} AND status = 'error') AS errors, \
               count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls, \
               count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls, \
               sum(gen_ai_usage_input_tokens) AS input_tokens, \
               sum(gen_ai_usage_output_tokens) AS output_tokens, \
               sum(gen_ai_usage_cost) AS cost \
             FROM events WHERE thread_id IS NOT NULL GROUP BY tenant, thread_id"
        ),
    }
}

/// One process-wide runtime for DataFusion's execution, started on first use.
fn runtime() -> SqlResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("mission-sql")
                // Time for the query timeout; I/O for a remote store's client.
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| SqlError::Execution(format!("cannot start the SQL runtime: {e}")))
}

/// Read-only SQL over one store (see the [module guide](self)).
pub struct SqlEngine {
    context: SessionContext,
    limits: SqlLimits,
    skipped: Vec<SkippedFile>,
    store: Store,
}

impl fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlEngine")
            .field("root", &self.store.root())
            .field("scope", &self.store.scope())
            .field("files", &self.store.files().len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl SqlEngine {
    /// An engine over `store`'s files (its scope included), bounded by `limits`. Reads every
    /// file's footer once to leave out damaged ones (see the [module guide](self)).
    ///
    /// # Errors
    /// [`SqlError::Execution`] if the engine cannot start.
    pub fn new(store: Store, limits: SqlLimits) -> SqlResult<Self> {
        let mut files = Vec::with_capacity(store.files().len());
        let mut skipped = Vec::new();
        for file in store.files() {
            match EventFile::open(file) {
                Ok(_) => files.push(file.clone()),
                Err(e) => {
                    let skip =
                        SkippedFile { path: file.path.clone(), reason: e.to_string(), rows: None };
                    store.note_skipped(skip.clone());
                    skipped.push(skip);
                }
            }
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory, 1.0)
            .build_arc()
            .map_err(|e| SqlError::Execution(e.strip_backtrace()))?;
        let mut config =
            SessionConfig::new().with_information_schema(false).with_target_partitions(
                std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
            );
        config.options_mut().execution.parquet.pushdown_filters = true;
        let context = SessionContext::new_with_config_rt(config, runtime);
        let objects = object_store_url(&store, &context)?;
        context
            .register_table("events", Arc::new(EventsTable::new(files, objects)))
            .map_err(SqlError::from)?;
        let engine = Self { context, limits, skipped, store };
        for view in VIEWS.iter().filter(|v| **v != "events") {
            let plan = engine.block_on(async {
                engine.context.sql(&view_sql(view)).await?.into_optimized_plan()
            })?;
            let table = datafusion::datasource::ViewTable::new(plan, Some(view_sql(view)));
            engine.context.register_table(*view, Arc::new(table)).map_err(SqlError::from)?;
        }
        Ok(engine)
    }

    /// The store it reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Its limits.
    pub fn limits(&self) -> &SqlLimits {
        &self.limits
    }

    fn block_on<T>(
        &self,
        future: impl Future<Output = Result<T, DataFusionError>> + Send,
    ) -> SqlResult<T>
    where
        T: Send,
    {
        let runtime = runtime()?;
        let result = match tokio::runtime::Handle::try_current() {
            // Called from inside a runtime (an async server): run on ours from a scoped thread
            // so the caller's runtime is not blocked from within.
            Ok(_) => std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(future))
                    .join()
                    .unwrap_or_else(|_| Err(DataFusionError::Internal("the query panicked".into())))
            }),
            Err(_) => runtime.block_on(future),
        };
        result.map_err(SqlError::from)
    }

    /// Runs one read-only query.
    ///
    /// # Errors
    /// [`SqlError::Invalid`] for SQL that does not parse or plan (naming what was wrong),
    /// [`SqlError::Forbidden`] for anything but a query, [`SqlError::Timeout`] past
    /// [`SqlLimits::timeout`], [`SqlError::Execution`] for a failure while running.
    pub fn query(&self, sql: &str) -> SqlResult<SqlAnswer> {
        let started = Instant::now();
        forbid_statements(sql)?;
        let limits = self.limits.clone();
        let context = &self.context;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async move {
            let frame = match context.sql_with_options(sql, options).await {
                Ok(frame) => frame,
                Err(e) => return Ok(Err(refusal_or(e))),
            };
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let work = async {
                let mut stream = frame.execute_stream().await?;
                let (mut batches, mut rows, mut bytes, mut truncated) =
                    (Vec::new(), 0usize, 0usize, false);
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    let room = limits.max_rows - rows;
                    let batch = if batch.num_rows() > room {
                        truncated = true;
                        batch.slice(0, room)
                    } else {
                        batch
                    };
                    let size = batch.get_array_memory_size();
                    if bytes + size > limits.max_bytes && !batches.is_empty() {
                        truncated = true;
                        break;
                    }
                    bytes += size;
                    rows += batch.num_rows();
                    if batch.num_rows() > 0 {
                        batches.push(batch);
                    }
                    if truncated || rows >= limits.max_rows {
                        // One more row would say whether the answer is whole.
                        if !truncated {
                            truncated = next_has_rows(&mut stream).await?;
                        }
                        break;
                    }
                }
                Ok::<_, DataFusionError>((batches, truncated))
            };
            match tokio::time::timeout(limits.timeout, work).await {
                Ok(done) => Ok(done
                    .map(|(batches, truncated)| (schema, batches, truncated))
                    .map_err(SqlError::from)),
                Err(_) => Ok(Err(SqlError::Timeout(limits.timeout))),
            }
        };
        let (schema, batches, truncated) = self.block_on(run)??;
        Ok(SqlAnswer {
            schema,
            batches,
            truncated,
            elapsed: started.elapsed(),
            skipped: self.skipped.clone(),
        })
    }
}

async fn next_has_rows(
    stream: &mut datafusion::physical_plan::SendableRecordBatchStream,
) -> Result<bool, DataFusionError> {
    while let Some(batch) = stream.next().await {
        if batch?.num_rows() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A planning error that is DataFusion refusing a statement under [`SQLOptions`] becomes
/// [`SqlError::Forbidden`]; anything else is classified as usual.
fn refusal_or(error: DataFusionError) -> SqlError {
    let message = error.strip_backtrace();
    if message.contains("not supported")
        && (message.contains("DDL") || message.contains("DML") || message.contains("Statement"))
    {
        return SqlError::Forbidden(message);
    }
    classify(error)
}

/// Refuses, before parsing, the statements that are never queries, with a message naming the
/// statement (DataFusion's own check runs too, on the plan).
fn forbid_statements(sql: &str) -> SqlResult<()> {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    const FORBIDDEN: [&str; 16] = [
        "CREATE", "DROP", "INSERT", "UPDATE", "DELETE", "COPY", "ALTER", "TRUNCATE", "SET",
        "RESET", "ATTACH", "DETACH", "LOAD", "INSTALL", "PREPARE", "EXECUTE",
    ];
    if FORBIDDEN.contains(&first.as_str()) {
        return Err(SqlError::Forbidden(format!("{first} statements")));
    }
    Ok(())
}

/// Where DataFusion reads the store's files: the local file system, or (a store on object
/// storage, feature `object-store`) the store's own client, registered under a URL of its own
/// so DataFusion fetches exactly the byte ranges it needs with the same credentials.
fn object_store_url(store: &Store, context: &SessionContext) -> SqlResult<ObjectStoreUrl> {
    #[cfg(feature = "object-store")]
    if let Some(remote) = store.remote() {
        let client = remote.object_store().map_err(|e| SqlError::Execution(e.to_string()))?;
        let url = url::Url::parse(REMOTE_URL).map_err(|e| SqlError::Execution(e.to_string()))?;
        context.register_object_store(&url, client);
        return Ok(ObjectStoreUrl::parse(REMOTE_URL)?);
    }
    let _ = (store, context);
    Ok(ObjectStoreUrl::local_filesystem())
}

/// The URL a remote store's client is registered under, in the engine's own context.
#[cfg(feature = "object-store")]
const REMOTE_URL: &str = "mission-store://remote/";

/// The path DataFusion reads `file` at: its object key on a remote root, else its local path.
fn location(file: &StoreFile) -> String {
    #[cfg(feature = "object-store")]
    if let Some((_, key)) = &file.origin.remote {
        return key.to_string();
    }
    file.path.to_string_lossy().into_owned()
}

/// The `events` table: exactly the files of one store, with its partitions as columns.
#[derive(Debug)]
struct EventsTable {
    files: Vec<StoreFile>,
    schema: SchemaRef,
    partitions: Vec<FieldRef>,
    objects: ObjectStoreUrl,
}

impl EventsTable {
    fn new(files: Vec<StoreFile>, objects: ObjectStoreUrl) -> Self {
        let partitions: Vec<FieldRef> = vec![
            Arc::new(Field::new(col::TENANT, DataType::Utf8, false)),
            Arc::new(Field::new("date", DataType::Date32, false)),
            Arc::new(Field::new("hour", DataType::Int32, false)),
        ];
        let mut fields: Vec<FieldRef> = events_schema().fields().iter().cloned().collect();
        fields.extend(partitions.iter().cloned());
        Self { files, schema: Arc::new(Schema::new(fields)), partitions, objects }
    }

    /// The partition values of every file, as one batch (one row per file).
    fn partition_batch(&self) -> Result<RecordBatch, DataFusionError> {
        let tenants: ArrayRef = Arc::new(StringArray::from_iter_values(
            self.files.iter().map(|f| f.partition.tenant.as_str()),
        ));
        let days: ArrayRef = Arc::new(Date32Array::from_iter_values(
            self.files.iter().map(|f| i32::try_from(f.partition.day).unwrap_or(i32::MAX)),
        ));
        let hours: ArrayRef = Arc::new(Int32Array::from_iter_values(
            self.files.iter().map(|f| i32::from(f.partition.hour)),
        ));
        let schema = Arc::new(Schema::new(self.partitions.clone()));
        Ok(RecordBatch::try_new(schema, vec![tenants, days, hours])?)
    }

    fn is_partition_filter(&self, expr: &Expr) -> bool {
        let columns = expr.column_refs();
        !columns.is_empty()
            && columns.iter().all(|c| self.partitions.iter().any(|p| p.name() == &c.name))
            && !expr_is_volatile(expr)
    }
}

fn expr_is_volatile(expr: &Expr) -> bool {
    expr.is_volatile()
}

#[async_trait::async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.is_partition_filter(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let (partition_filters, row_filters): (Vec<Expr>, Vec<Expr>) =
            filters.iter().cloned().partition(|f| self.is_partition_filter(f));
        // Partition pruning: the partition filters evaluated on one row per file.
        let mut keep = vec![true; self.files.len()];
        if let Some(predicate) = conjunction(partition_filters) {
            let batch = self.partition_batch()?;
            let df_schema = DFSchema::try_from(batch.schema())?;
            let physical = state.create_physical_expr(predicate, &df_schema)?;
            let value = physical.evaluate(&batch)?.into_array(batch.num_rows())?;
            let mask = value.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                DataFusionError::Internal("a partition filter is not boolean".into())
            })?;
            for (i, k) in keep.iter_mut().enumerate() {
                *k = mask.is_valid(i) && mask.value(i);
            }
        }
        let files: Vec<&StoreFile> =
            self.files.iter().zip(&keep).filter(|(_, k)| **k).map(|(f, _)| f).collect();
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = state.config().target_partitions().clamp(1, files.len());
        let mut file_groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
        for (i, file) in files.iter().enumerate() {
            let partitioned = PartitionedFile::new(location(file), file.bytes)
                .with_partition_values(vec![
                    ScalarValue::Utf8(Some(file.partition.tenant.clone())),
                    ScalarValue::Date32(Some(
                        i32::try_from(file.partition.day).unwrap_or(i32::MAX),
                    )),
                    ScalarValue::Int32(Some(i32::from(file.partition.hour))),
                ]);
            file_groups[i % groups].push(partitioned);
        }
        let table_schema = TableSchema::builder(events_schema())
            .with_table_partition_cols(self.partitions.clone())
            .build();
        let mut source = ParquetSource::new(table_schema)
            .with_table_parquet_options(state.table_options().parquet.clone());
        if let Some(predicate) = conjunction(row_filters) {
            let df_schema = DFSchema::try_from(self.schema.clone())?;
            source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
        }
        let config = FileScanConfigBuilder::new(self.objects.clone(), Arc::new(source))
            .with_file_groups(file_groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
