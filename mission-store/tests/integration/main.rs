//! Integration tests of mission-store, compiled into one binary.

mod a_fleet_shares_one_store;
mod a_killed_writer_loses_nothing_acknowledged;
mod bad_input_is_reported_not_fatal;
mod decoded_rows_and_followed_files;
mod events_round_trip;
mod long_tenants_round_trip;
#[cfg(feature = "s3")]
mod object_storage;
mod queries_prune_and_filter;
mod retention_and_erasure;
#[cfg(feature = "s3")]
mod s3_server;
mod scores_round_trip;
mod sink_failures_are_never_delivered;
#[cfg(feature = "sql")]
mod sql;
mod tenant_scope;
#[cfg(feature = "s3")]
mod upload;

use std::path::PathBuf;
use std::time::Duration;

use arrow::array::RecordBatch;
use mission_core::{
    Backpressure, Decision, Event, EventBody, Level, LlmUsage, LogRecord, PermissionDecision,
    Pipeline, SpanKind, Status, Symbol, Text, ThreadContext, Timestamp,
};
use mission_store::{ParquetSink, StoreConfig};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mission-store-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().0
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Half past the last whole hour, ns since the epoch (30 to 90 minutes ago): where a test
/// whose file or partition counts matter places its threads (a few milliseconds long each),
/// so none is cut in two by an hour boundary, whatever the time of day it runs at.
pub fn half_past_last_hour() -> u64 {
    const HOUR: u64 = 3_600_000_000_000;
    (Timestamp::now().0 / HOUR - 1) * HOUR + HOUR / 2
}

/// Writes `events` into a store at `config.root` through a real pipeline.
pub fn write(config: StoreConfig, events: Vec<Event>) -> mission_core::ShutdownReport {
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(ParquetSink::new(config).expect("sink"))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for e in events {
        recorder.record(e);
    }
    pipeline.shutdown()
}

/// One thread with every kind of event, starting at `start`.
pub fn thread_events(tenant: &str, agent: &str, start: u64) -> Vec<Event> {
    let thread = ThreadContext::new(Symbol::intern(tenant), Symbol::intern(agent));
    let root_id = mission_core::SpanId::generate();
    let mut events = Vec::new();
    let span = |kind, name: &str, parent, offset: u64, duration: u64| {
        let id = if parent == mission_core::SpanId::NONE {
            root_id
        } else {
            mission_core::SpanId::generate()
        };
        let mut e = thread.event(
            Symbol::intern(name),
            id,
            EventBody::Span(mission_core::SpanEnd {
                kind,
                duration_ns: duration,
                status: Status::Ok,
                ..Default::default()
            }),
        );
        e.time = Timestamp(start + offset);
        e.parent_span_id = parent;
        e
    };
    let mut root =
        span(SpanKind::AgentStep, "handle_request", mission_core::SpanId::NONE, 0, 5_000_000);
    root.attributes.set(Symbol::intern("user.id"), "u-42");
    let mut llm = span(SpanKind::LlmCall, "chat", root_id, 1_000, 2_000_000);
    if let EventBody::Span(s) = &mut llm.body {
        s.llm = LlmUsage {
            model: Symbol::intern("gpt-4o-mini"),
            provider: Symbol::intern("openai"),
            input_tokens: 812,
            output_tokens: 64,
            cached_input_tokens: 100,
            reasoning_tokens: 7,
            cost_usd: 0.0002,
        };
    }
    let mut tool = span(SpanKind::ToolCall, "web_search", root_id, 2_100_000, 1_000_000);
    if let EventBody::Span(s) = &mut tool.body {
        s.set_error("upstream returned 503");
    }
    tool.attributes.set(Symbol::intern("attempt"), 2i64);
    let mut log = thread.event(
        Symbol::intern("log"),
        tool.span_id,
        EventBody::Log(LogRecord {
            level: Level::Warn,
            target: Symbol::intern("agent::tools"),
            message: Text::new("retrying web_search"),
        }),
    );
    log.time = Timestamp(start + 2_500_000);
    let mut decision = thread.event(
        Symbol::intern("tool.call"),
        root_id,
        EventBody::Permission(PermissionDecision {
            actor: Text::new(agent),
            action: Symbol::intern("tool.call"),
            resource: Text::new("refund_payment"),
            decision: Decision::Deny,
            policy: Symbol::intern("no-refunds"),
        }),
    );
    decision.time = Timestamp(start + 3_000_000);
    events.extend([root, llm, tool, log, decision]);
    events
}

/// Writes `batch` as a Parquet file at `path` with `metadata` (a foreign or damaged store file).
pub fn write_file(path: &std::path::Path, batch: &RecordBatch, metadata: Vec<KeyValue>) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    let file = std::fs::File::create(path).expect("create");
    let props = WriterProperties::builder().set_key_value_metadata(Some(metadata)).build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}
