//! Query results as an Arrow C stream: pyarrow, Polars and DuckDB read them without a copy.

use std::path::Path;

use arrow::array::{RecordBatch, RecordBatchIterator};
use arrow::ffi_stream::FFI_ArrowArrayStream;
use mission_core::Timestamp;
use mission_store::Store;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors;

/// The filters of `Control.query`.
pub(crate) struct QueryFilters {
    pub(crate) thread_id: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) since_ns: Option<u64>,
    pub(crate) until_ns: Option<u64>,
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) limit: Option<u64>,
}

/// Query results, readable as an Arrow stream (`__arrow_c_stream__`) as often as a reader
/// asks (DuckDB asks once for the schema, then for the data); each read shares the same
/// buffers.
#[pyclass(frozen, module = "mission_control._native")]
pub struct QueryResult {
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    rows: usize,
    unreadable: Vec<String>,
    truncated: bool,
}

impl QueryResult {
    pub(crate) fn run(root: &Path, f: &QueryFilters) -> PyResult<Self> {
        if let Some(id) = &f.thread_id {
            id.parse::<mission_core::ThreadId>()
                .map_err(|e| PyValueError::new_err(format!("thread_id: {e}")))?;
        }
        if !root.exists() {
            return Err(errors::StoreError::new_err(format!("no store at {}", root.display())));
        }
        // A tenant scopes the store itself: only that tenant's partitions are listed.
        let store = Store::open_scoped(root, f.tenant.as_deref()).map_err(errors::store)?;
        let mut q = store.query();
        for (value, set) in [
            (&f.thread_id, mission_store::Query::thread as fn(_, &str) -> _),
            (&f.agent, mission_store::Query::agent),
            (&f.kind, mission_store::Query::kind),
            (&f.name, mission_store::Query::name),
            (&f.status, mission_store::Query::status),
        ] {
            if let Some(v) = value {
                q = set(q, v);
            }
        }
        if f.since_ns.is_some() || f.until_ns.is_some() {
            q = q.time_range(
                Timestamp(f.since_ns.unwrap_or(0)),
                Timestamp(f.until_ns.unwrap_or(i64::MAX as u64)),
            );
        }
        if let Some(columns) = &f.columns {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            q = q.columns(&columns);
        }
        if let Some(n) = f.limit {
            q = q.limit(n);
        }
        let iter = q.iter().map_err(errors::store)?;
        let schema = iter.schema();
        let batches: Vec<RecordBatch> = iter.collect::<Result<_, _>>().map_err(errors::store)?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let unreadable = store.skipped_files().iter().map(ToString::to_string).collect();
        Ok(Self { schema, batches, rows, unreadable, truncated: false })
    }

    /// Runs read-only SQL over the store at `root` (scoped to `tenant` when given).
    pub(crate) fn sql(
        root: &Path,
        sql: &str,
        tenant: Option<&str>,
        limits: mission_store::sql::SqlLimits,
    ) -> PyResult<Self> {
        if !mission_store::store_exists(root) {
            return Err(errors::StoreError::new_err(format!("no store at {}", root.display())));
        }
        let store = Store::open_scoped(root, tenant).map_err(errors::store)?;
        let engine = mission_store::sql::SqlEngine::new(store, limits).map_err(errors::sql)?;
        let answer = engine.query(sql).map_err(errors::sql)?;
        let rows = answer.rows();
        let unreadable = answer.skipped.iter().map(ToString::to_string).collect();
        Ok(Self {
            schema: answer.schema,
            batches: answer.batches,
            rows,
            unreadable,
            truncated: answer.truncated,
        })
    }
}

#[pymethods]
impl QueryResult {
    /// Rows in the result.
    fn __len__(&self) -> usize {
        self.rows
    }

    /// Store files the query could not read and skipped (path, reason, rows): when not empty,
    /// the result is incomplete (`Control.query` warns with `UnreadableDataWarning`).
    #[getter]
    fn unreadable(&self) -> Vec<String> {
        self.unreadable.clone()
    }

    /// Whether more rows matched than were returned (`Control.sql`'s `max_rows`).
    #[getter]
    fn truncated(&self) -> bool {
        self.truncated
    }

    /// The Arrow PyCapsule stream interface: hands the batches over without copying them.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The requested schema is a hint a producer may ignore; ours is fixed.
        let _ = requested_schema;
        let batches = self.batches.clone();
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}
