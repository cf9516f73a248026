//! The Arrow schema of stored events (version [`SCHEMA_VERSION`]).
//!
//! One row per event. Column names follow the OpenTelemetry GenAI semantic conventions where
//! one exists (`gen_ai.request.model` → `gen_ai_request_model`); the rest use Mission
//! Control's vocabulary. Columns that do not apply to an event's kind are null, which Parquet
//! stores in a few bits. Low-cardinality strings are dictionary-encoded.
//!
//! The tenant is not a column of the file: it is the Hive partition key in the path
//! (`tenant=<t>/`), which DuckDB (`hive_partitioning = true`), pyarrow (`partitioning =
//! "hive"`) and Polars (`hive_partitioning = True`) turn into a column, as does [`Store`](crate::Store).
//!
//! **Attributes** are a `Map<Utf8, Utf8>` column rather than a JSON string: DuckDB reads it as
//! a native `MAP` (`attributes['user.id']`), pyarrow as a `MapArray` (`pc.map_lookup`), and
//! Polars as a list of key/value structs, all without parsing text per row; keys repeat and
//! compress to almost nothing. Values are written as text (`42`, `0.5`, `true`).
//!
//! **Ids**: `thread_id` is the 32-hex-digit W3C trace id as text (what people paste from a
//! trace viewer; dictionary-encoded, it costs about a byte a row); `span_id` and
//! `parent_span_id` are the 64-bit ids as unsigned integers, which delta-encode to about a
//! byte a row (format them with `printf('%016x', span_id)` in DuckDB for the W3C form).
//!
//! **Versions**: a new version only appends columns, so the columns of an older version are a
//! prefix of this one's. Readers ([`Query`](crate::Query), [`EventFile`](crate::EventFile), the
//! write-ahead log's recovery) accept every older version's columns and read the columns it
//! lacks as nulls ([`pad_to_current`]).
//!
//! | version | adds |
//! |---|---|
//! | 1 | spans, logs, metrics, permissions, anomalies, attributes |
//! | 2 | scores: `score_source`, `gen_ai_evaluation_score_value`, `gen_ai_evaluation_score_label`, `gen_ai_evaluation_explanation` |

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 2;
/// How many leading columns of [`events_schema`] each version wrote (index: version - 1).
pub const COLUMNS_BY_VERSION: [usize; 2] = [35, 39];
/// Parquet key-value metadata: the schema version.
pub const META_SCHEMA_VERSION: &str = "mission.schema_version";
/// Parquet key-value metadata: the Mission Control version that wrote the file.
pub const META_WRITER_VERSION: &str = "mission.writer_version";
/// Parquet key-value metadata: the recorder's accounting (JSON) when the file was closed.
pub const META_ACCOUNTING: &str = "mission.accounting";
/// Parquet key-value metadata: events this sink could not write (JSON counters).
pub const META_SINK_COUNTERS: &str = "mission.sink_counters";

/// Column names, in schema order.
pub mod col {
    #![allow(missing_docs)]
    pub const TIME: &str = "time";
    pub const KIND: &str = "kind";
    pub const AGENT: &str = "gen_ai_agent_name";
    pub const THREAD_ID: &str = "thread_id";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const NAME: &str = "name";
    pub const DURATION_NS: &str = "duration_ns";
    pub const STATUS: &str = "status";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const OPERATION: &str = "gen_ai_operation_name";
    pub const PROVIDER: &str = "gen_ai_provider_name";
    pub const MODEL: &str = "gen_ai_request_model";
    pub const INPUT_TOKENS: &str = "gen_ai_usage_input_tokens";
    pub const OUTPUT_TOKENS: &str = "gen_ai_usage_output_tokens";
    pub const CACHED_INPUT_TOKENS: &str = "gen_ai_usage_cache_read_input_tokens";
    pub const REASONING_TOKENS: &str = "gen_ai_usage_reasoning_output_tokens";
    pub const COST: &str = "gen_ai_usage_cost";
    pub const LOG_LEVEL: &str = "log_level";
    pub const LOG_TARGET: &str = "log_target";
    pub const LOG_MESSAGE: &str = "log_message";
    pub const METRIC_KIND: &str = "metric_kind";
    pub const METRIC_VALUE: &str = "metric_value";
    pub const METRIC_UNIT: &str = "metric_unit";
    pub const PERMISSION_ACTOR: &str = "permission_actor";
    pub const PERMISSION_ACTION: &str = "permission_action";
    pub const PERMISSION_RESOURCE: &str = "permission_resource";
    pub const PERMISSION_DECISION: &str = "permission_decision";
    pub const PERMISSION_POLICY: &str = "permission_policy";
    pub const ANOMALY_DETECTOR: &str = "anomaly_detector";
    pub const ANOMALY_SCORE: &str = "anomaly_score";
    pub const ANOMALY_EXPECTED: &str = "anomaly_expected";
    pub const ANOMALY_LOWER: &str = "anomaly_lower";
    pub const ANOMALY_UPPER: &str = "anomaly_upper";
    pub const ATTRIBUTES: &str = "attributes";
    // Version 2.
    pub const SCORE_SOURCE: &str = "score_source";
    pub const SCORE_VALUE: &str = "gen_ai_evaluation_score_value";
    pub const SCORE_LABEL: &str = "gen_ai_evaluation_score_label";
    pub const SCORE_COMMENT: &str = "gen_ai_evaluation_explanation";
    /// Added by readers from the partition path, never stored in a file.
    pub const TENANT: &str = "tenant";
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The `Map<Utf8, Utf8>` type of the attributes column.
pub fn attributes_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The schema of stored events (files hold exactly these columns).
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use col::*;
            let f64n = |n| Field::new(n, DataType::Float64, true);
            let i64n = |n| Field::new(n, DataType::Int64, true);
            let dictn = |n| Field::new(n, dict(), true);
            let textn = |n| Field::new(n, DataType::Utf8, true);
            Arc::new(Schema::new(vec![
                Field::new(
                    TIME,
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                    false,
                ),
                Field::new(KIND, dict(), false),
                Field::new(AGENT, dict(), false),
                Field::new(THREAD_ID, DataType::Utf8, true),
                Field::new(SPAN_ID, DataType::UInt64, true),
                Field::new(PARENT_SPAN_ID, DataType::UInt64, true),
                Field::new(NAME, dict(), false),
                i64n(DURATION_NS),
                dictn(STATUS),
                textn(ERROR_MESSAGE),
                dictn(OPERATION),
                dictn(PROVIDER),
                dictn(MODEL),
                i64n(INPUT_TOKENS),
                i64n(OUTPUT_TOKENS),
                i64n(CACHED_INPUT_TOKENS),
                i64n(REASONING_TOKENS),
                f64n(COST),
                dictn(LOG_LEVEL),
                dictn(LOG_TARGET),
                textn(LOG_MESSAGE),
                dictn(METRIC_KIND),
                f64n(METRIC_VALUE),
                dictn(METRIC_UNIT),
                textn(PERMISSION_ACTOR),
                dictn(PERMISSION_ACTION),
                textn(PERMISSION_RESOURCE),
                dictn(PERMISSION_DECISION),
                dictn(PERMISSION_POLICY),
                dictn(ANOMALY_DETECTOR),
                f64n(ANOMALY_SCORE),
                f64n(ANOMALY_EXPECTED),
                f64n(ANOMALY_LOWER),
                f64n(ANOMALY_UPPER),
                Field::new(ATTRIBUTES, attributes_type(), true),
                dictn(SCORE_SOURCE),
                f64n(SCORE_VALUE),
                textn(SCORE_LABEL),
                textn(SCORE_COMMENT),
            ]))
        })
        .clone()
}

/// Whether `fields` are the columns of this or an older schema version (a prefix of
/// [`events_schema`] of a length in [`COLUMNS_BY_VERSION`]).
pub fn is_known_layout(fields: &arrow::datatypes::Fields) -> bool {
    let current = events_schema();
    COLUMNS_BY_VERSION.contains(&fields.len())
        && fields.iter().zip(current.fields().iter()).all(|(a, b)| a == b)
}

/// A batch read from a file of an older version, with the columns `read` (indices into
/// [`events_schema`], ascending) of which the file has only the first `file_columns`:
/// the missing ones are added as nulls, in place. A batch with every column is returned as is.
///
/// # Errors
/// [`Error::Arrow`](crate::Error::Arrow) if the columns do not fit the schema.
pub fn pad_to_current(
    batch: arrow::array::RecordBatch,
    read: &[usize],
    file_columns: usize,
) -> crate::Result<arrow::array::RecordBatch> {
    if read.iter().all(|&i| i < file_columns) {
        return Ok(batch);
    }
    let current = events_schema();
    let rows = batch.num_rows();
    let mut present = batch.columns().iter();
    let mut fields = Vec::with_capacity(read.len());
    let mut columns = Vec::with_capacity(read.len());
    for &i in read {
        let field = current.field(i);
        let column = match (i < file_columns).then(|| present.next()).flatten() {
            Some(c) => c.clone(),
            None => arrow::array::new_null_array(field.data_type(), rows),
        };
        fields.push(field.clone());
        columns.push(column);
    }
    Ok(arrow::array::RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}
