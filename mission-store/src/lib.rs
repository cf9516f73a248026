//! Mission Control's storage: events as Hive-partitioned, zstd-compressed Parquet that DuckDB,
//! pyarrow, Polars, DataFusion and Spark read as they are — the storage *is* the analytics
//! format, with no database to run — and the query side that reads it back.
//!
//! It is a separate crate because it is a leaf with heavy dependencies (arrow, parquet) that an
//! agent linking only the recorder should not pay for; it depends on `mission-core` for the
//! event model and the [`Sink`](mission_core::Sink) trait, and on nothing else of ours. It is
//! the only crate of the workspace that opens Parquet: like arrow-rs's `parquet` crate, it reads
//! what it writes — one decoder ([`EventRow`]), one schema-version check
//! ([`check_schema_version`], applied by [`EventFile`] and every query) — and every other crate
//! (the command-line `tail`, the dashboard, the MCP server, Python) asks it.
//!
//! The source is split the same way: `write/` (the sink, its config, encoding, the write-ahead
//! log and recovery, retention, erasure, atomic replace) and `read/` (listing, decoding,
//! queries, following, views); the public paths are the re-exports below.
//!
//! # Quick example
//!
//! ```
//! use mission_core::{Pipeline, SpanKind, Symbol, ThreadContext};
//! use mission_store::{ParquetSink, Store, StoreConfig};
//!
//! let root = std::env::temp_dir().join(format!("mission-store-doc-{}", std::process::id()));
//! let pipeline = Pipeline::builder().with_sink(ParquetSink::new(StoreConfig::at(&root))?).start()?;
//! let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
//! let recorder = pipeline.recorder();
//! let span = recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
//! span.end_with_error("upstream returned 503");
//! pipeline.shutdown(); // finalizes every file
//!
//! let store = Store::open(&root)?;
//! let failed = store.query().kind("tool_call").status("error").count()?;
//! assert_eq!(failed, 1);
//! let view = store.thread(&thread.thread_id.to_string())?;
//! assert_eq!(view.roots[0].name, "web_search");
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same files from DuckDB, with nothing else running:
//!
//! ```sql
//! SELECT name, count(*), median(duration_ns) / 1e6 AS p50_ms
//! FROM read_parquet('mission-data/events/**/*.parquet', hive_partitioning = true)
//! WHERE duration_ns IS NOT NULL GROUP BY name;
//! ```
//!
//! # The entry types
//!
//! | type | what it is |
//! |---|---|
//! | [`ParquetSink`], [`StoreConfig`], [`RetentionPolicy`] | the sink that writes files: row groups, rotation, atomic finalize, retention (configs `#[non_exhaustive]`, built with `with_*` methods) |
//! | [`Store`] | a store on disk: listing, leftovers of killed writers, retention, erasure |
//! | [`Query`], [`QueryIter`], [`QueryStats`] | filters, projection, limit; pruning by path and statistics |
//! | [`EventFile`], [`EventRow`] | one file opened (schema version checked) and its rows decoded; [`EventRow::from_batch`] decodes a query's batches |
//! | [`Follower`], [`Polled`] | a store followed as it grows: new finalized files and their rows, tenant-scoped, each once |
//! | [`ThreadView`], [`ThreadSummary`], [`OperationStat`] | one thread as a span tree; one row per thread; latency by operation |
//! | [`schema`] | the versioned Arrow schema and its column names |
//! | [`wal`], [`Recovery`] | the write-ahead log of open files, and recovery after a crash |
//! | [`atomic`] | atomic, durable replace of the small files we rewrite |
//! | [`compact`], [`CompactOptions`], [`CompactionReport`] | merging a partition's small files while writers write and readers read ([`Store::compact`]) |
//! | [`layout`] | partition paths |
//! | `RemoteRoot`, `remote` (feature `object-store`) | a store root on object storage (`s3://`, `gs://`, `az://`, `file://`): [`Store::open`] takes the URL |
//! | `Uploader`, `upload_pending`, `upload` (feature `object-store`) | the write side: a local store's finalized files uploaded to object storage exactly once, the local directory as the bounded spill |
//!
//! # Layout and schema
//!
//! `<root>/events/tenant=<t>/date=<YYYY-MM-DD>/hour=<HH>/part-<seq>-<id>.parquet`. A file is
//! written under a hidden `.…tmp` name and renamed when complete, so readers never see half a
//! file; while it is open, its rows are also in a write-ahead log segment beside it, so a
//! writer killed mid-file loses nothing it had drained: the next writer to start (or
//! [`Store::recover`]) rebuilds the file from the segment, exactly once (see [`wal`]).
//! [`Store::open`] reports such leftovers and never reads them. Rows are sorted by thread then time within each row group; times and ids are
//! delta-encoded; low-cardinality text is dictionary-encoded; row groups and pages carry
//! statistics. See [`schema`] for the columns and why attributes are a map.
//!
//! # Untrusted input
//!
//! Stores are read defensively: a corrupt, foreign or newer-schema file is skipped and reported
//! in [`QueryStats::skipped`] and [`Store::skipped_files`] (which every view — threads, stats,
//! cost, anomalies — fills too), never a panic and never a reason to lose the other files;
//! callers must pass the list on with the answer, never present a partial answer as whole. Tenant
//! names are percent-encoded in paths, so no tenant can escape its directory.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `crash-points` | no | testing only: named points in the write path (finalize, rename, recovery) where an armed process aborts, for the crash harness; costs nothing when off |
//! | `object-store` | no | store roots given as URLs (`file:///…` here; the cloud schemes with the features below): `RemoteRoot`, listing, ranged reads, retention, through the `object_store` crate and a small process-wide tokio runtime |
//! | `s3` | no | `s3://bucket/prefix` (Amazon S3 and S3-compatible servers), credentials from the AWS_* environment (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` for a local server) |
//! | `gcs` | no | `gs://bucket/prefix` (Google Cloud Storage), credentials from the GOOGLE_* environment |
//! | `azure` | no | `az://container/prefix` (Azure Blob Storage), credentials from the AZURE_* environment |
//!
//! # A store on object storage
//!
//! With `s3` (or `gcs`, `azure`, `object-store`), every reader takes a URL where it takes a
//! directory: `Store::open("s3://bucket/mission-data")`. Listing lists `<prefix>/events/` (a
//! scoped store only `<prefix>/events/tenant=<t>/`), pruned by tenant, date and hour as on
//! disk; a file is read with ranged GETs — the footer's last 8 bytes, then exactly its
//! metadata, then whole column chunks of the row groups and columns the query reads, never a
//! whole file it does not need ([`QueryStats::bytes_read`] counts them). A damaged object is
//! skipped and reported like a damaged file. Retention deletes expired objects. Erasure is a
//! rewrite job there: each object holding matching events is downloaded, rewritten without
//! them and put back under its key (atomically per object). Compaction and recovery rewrite
//! files in place and answer [`Error::NeedsLocalRoot`] (run them where the store is written,
//! before upload).
//!
//! Writing goes through a local directory: the sink writes there as always, and an
//! `Uploader` (module `upload`) puts each finalized file into the bucket exactly once, keeping
//! the directory as a bounded spill while the bucket is unreachable. Credentials come only from each cloud's
//! standard environment or options set in code, and never appear in errors, `Debug` or
//! `Display`.
//!
//! Parquet is built with zstd only.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

#[cfg(feature = "crash-points")]
#[doc(hidden)]
pub mod crash_points;
#[cfg(not(feature = "crash-points"))]
mod crash_points;
mod error;
pub mod layout;
mod read;
#[cfg(feature = "object-store")]
pub mod remote;
mod remote_url;
pub mod schema;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "object-store")]
pub mod upload;
mod write;

pub use error::{Error, Result};
pub use read::decode::{self, EventBatches, EventFile, EventRow, EventRows, check_schema_version};
pub use read::follow::{self, Follower, Polled};
pub use read::query::{Query, QueryIter, QueryStats};
pub use read::scores::{ScoreRow, ScoreSummary, summarize as summarize_scores};
pub use read::store::{OpenReport, SkippedFile, Store, StoreCheck, StoreFile};
pub use read::views::{
    AnomalyRow, CostRow, GroupBy, MAX_LISTED_CHILDREN, OperationStat, SpanNode, ThreadLinks,
    ThreadSummary, ThreadView, USER_ID_ATTRIBUTE,
};
#[cfg(feature = "object-store")]
pub use remote::{RemoteRoot, Scheme};
pub use remote_url::{is_url_root, redact_url, store_exists};
#[cfg(feature = "object-store")]
pub use upload::{UploadConfig, UploadStats, Uploader, upload_pending};
pub use write::compact::{
    COMPACT_PREFIX, CompactOptions, CompactedSource, CompactionReport, META_COMPACTED_FROM,
    META_COMPACTED_WRITERS,
};
pub use write::config::{
    MAX_FILE_AGE_RANGE, MAX_FILE_BYTES_RANGE, MAX_OPEN_FILES_RANGE, MAX_WAL_SYNC_INTERVAL,
    RETENTION_RANGE, ROW_GROUP_ROWS_RANGE, StoreConfig, ZSTD_LEVEL_RANGE,
};
pub use write::encode::encode;
pub use write::retention::RetentionPolicy;
pub use write::sink::{FileMetadataSource, ParquetSink, SinkCounters};
pub use write::wal::{PendingSegment, Recovery};
pub use write::{atomic, compact, wal};
