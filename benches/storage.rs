//! Storage benchmarks (issue 3), side by side with the alternatives, in one run:
//!
//! 1. **Write throughput**: events per second into closed Parquet files, for a realistic agent
//!    mix and a log-heavy mix — the Parquet sink alone on one core, and end to end (recorder →
//!    pipeline → sink → closed files) — beside a plain arrow-rs writer of a 12-column
//!    trace-like table (random 16-byte trace ids, 8-byte span ids; zstd).
//! 2. **Bytes per event on disk** for the same mixes, beside the same events as JSON Lines,
//!    raw and zstd-compressed.
//! 3. **Query latency** of `thread(id)` and a one-hour `operation_stats` on a generated store
//!    (100 M events by default; `MISSION_BENCH_STORE_EVENTS` changes it), first run after
//!    opening ("cold": our process has nothing cached; the OS page cache may) and repeated
//!    ("warm").
//!
//! Run: `cargo bench -p mission-benches --bench storage`. Prints a Markdown report; results
//! are recorded in `benches/RESULTS.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, FixedSizeBinaryArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use mission_benches::{dir_bytes, generate_store, parquet_pipeline};
use mission_core::{
    Backpressure, Event, EventBody, FnSink, Level, LogRecord, Pipeline, Sink, SpanEnd, SpanId,
    SpanKind, Status, Symbol, Text, ThreadContext, Timestamp,
};
use mission_examples::{Workload, simulate};
use mission_store::{GroupBy, ParquetSink, Store, StoreConfig};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mission-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The realistic agent mix: the quick start's simulated workload, captured.
fn agent_mix(threads: u64) -> Vec<Event> {
    let captured: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink_side = captured.clone();
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(FnSink::new("capture", move |batch: &[Event]| {
            sink_side.lock().expect("lock").extend_from_slice(batch);
            Ok(())
        }))
        .start()
        .expect("start");
    simulate(&pipeline.recorder(), &Workload { threads, tenants: 3, ..Workload::default() });
    pipeline.shutdown();
    let mut events = std::mem::take(&mut *captured.lock().expect("lock"));
    events.sort_by_key(|e| e.time);
    events
}

/// A log-heavy mix: four log records of a few hundred bytes for every span.
fn log_mix(n: usize) -> Vec<Event> {
    let now = Timestamp::now().0 - 3_600_000_000_000;
    let target = Symbol::intern("agent::planner");
    let span_name = Symbol::intern("tool_call");
    let words = [
        "retrying", "upstream", "timeout", "order", "customer", "refund", "search", "result",
        "token", "cache",
    ];
    let mut thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 50 == 0 {
                thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
            }
            let mut e = if i % 5 == 0 {
                thread.event(
                    span_name,
                    SpanId::generate(),
                    EventBody::Span(SpanEnd {
                        kind: SpanKind::ToolCall,
                        duration_ns: 1_000_000 + x % 50_000_000,
                        status: Status::Ok,
                        ..SpanEnd::default()
                    }),
                )
            } else {
                let mut message = String::with_capacity(320);
                while message.len() < 250 {
                    message.push_str(words[(x as usize + message.len()) % words.len()]);
                    message.push(' ');
                    message.push_str(&(x % 10_000 + message.len() as u64).to_string());
                    message.push_str(", ");
                }
                thread.event(
                    target,
                    SpanId::NONE,
                    EventBody::Log(LogRecord {
                        level: if x.is_multiple_of(7) { Level::Warn } else { Level::Info },
                        target,
                        message: Text::from(message),
                    }),
                )
            };
            e.time = Timestamp(now + i as u64 * 20_000);
            e
        })
        .collect()
}

/// Events per second through the sink alone, on this thread (one core), and bytes on disk.
fn sink_alone(events: &[Event], dir: &Path) -> (f64, u64) {
    let mut sink = ParquetSink::new(StoreConfig::at(dir)).expect("sink");
    let start = Instant::now();
    for batch in events.chunks(1024) {
        sink.consume(batch).expect("consume");
    }
    sink.shutdown().expect("shutdown");
    let rate = events.len() as f64 / start.elapsed().as_secs_f64();
    (rate, dir_bytes(dir))
}

/// Events per second end to end: record (one producer) → pipeline → sink → closed files.
fn end_to_end(events: &[Event], dir: &Path) -> f64 {
    let pipeline = parquet_pipeline(dir);
    let recorder = pipeline.recorder();
    let copies: Vec<Event> = events.to_vec();
    let start = Instant::now();
    for e in copies {
        recorder.record(e);
    }
    let report = pipeline.shutdown();
    let elapsed = start.elapsed();
    assert_eq!(report.accounting.dropped, 0);
    assert_eq!(report.sinks[0].errors, 0, "{:?}", report.sinks[0]);
    events.len() as f64 / elapsed.as_secs_f64()
}

/// JSON Lines bytes (raw, zstd level 3) of the same events.
fn json_lines(events: &[Event]) -> (u64, u64) {
    let mut raw = Vec::new();
    for e in events {
        serde_json::to_writer(&mut raw, e).expect("json");
        raw.push(b'\n');
    }
    let compressed = zstd::bulk::compress(&raw, 3).expect("zstd");
    (raw.len() as u64, compressed.len() as u64)
}

/// The anchor: a plain arrow-rs writer of a 12-column trace-like table (zstd), rows per second
/// and bytes per row.
fn plain_arrow(rows: usize, dir: &Path) -> (f64, f64) {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = Timestamp::now().0 as i64;
    let names = [
        "chat",
        "execute_tool web_search",
        "execute_tool lookup_order",
        "invoke_agent support-bot",
    ];
    let mut trace = Vec::with_capacity(rows * 16);
    let (
        mut span,
        mut parent,
        mut start,
        mut end,
        mut dur,
        mut name,
        mut status,
        mut service,
        mut model,
        mut tokens,
    ) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut trace_bytes = [0u8; 16];
    for i in 0..rows {
        if i % 7 == 0 {
            trace_bytes[..8].copy_from_slice(&next().to_le_bytes());
            trace_bytes[8..].copy_from_slice(&next().to_le_bytes());
        }
        trace.extend_from_slice(&trace_bytes);
        span.push(next());
        parent.push(next());
        let s = base + i as i64 * 10_000;
        let d = (next() % 2_000_000_000) as i64;
        start.push(s);
        end.push(s + d);
        dur.push(d);
        name.push(names[i % names.len()]);
        status.push(if next() % 50 == 0 { "error" } else { "ok" });
        service.push("support-bot");
        model.push(if i % 3 == 0 { Some("gpt-4o-mini") } else { None });
        tokens.push(if i % 3 == 0 { Some((next() % 4000) as i64) } else { None });
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::UInt64, false),
        Field::new("parent_span_id", DataType::UInt64, false),
        Field::new("start", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("end", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, true),
        Field::new("tokens", DataType::Int64, true),
        Field::new("kind", DataType::Utf8, false),
    ]));
    let kinds: Vec<&str> =
        name.iter().map(|n| if n.starts_with("chat") { "llm" } else { "tool" }).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(FixedSizeBinaryArray::try_new(16, trace.into(), None).expect("trace ids")),
        Arc::new(UInt64Array::from(span)),
        Arc::new(UInt64Array::from(parent)),
        Arc::new(TimestampNanosecondArray::from(start)),
        Arc::new(TimestampNanosecondArray::from(end)),
        Arc::new(Int64Array::from(dur)),
        Arc::new(StringArray::from(name)),
        Arc::new(StringArray::from(status)),
        Arc::new(StringArray::from(service)),
        Arc::new(StringArray::from(model)),
        Arc::new(Int64Array::from(tokens)),
        Arc::new(StringArray::from(kinds)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let path = dir.join("plain.parquet");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level")))
        .build();
    let started = Instant::now();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).expect("file"), schema, Some(props))
            .expect("writer");
    for chunk in 0..rows.div_ceil(65_536) {
        let offset = chunk * 65_536;
        writer.write(&batch.slice(offset, 65_536.min(rows - offset))).expect("write");
    }
    writer.close().expect("close");
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    (rate, bytes as f64 / rows as f64)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; a plain run of the binary works too.
    let n_mix_threads = 300_000u64; // about 2.1 M events
    println!("## Storage benchmarks\n");
    println!(
        "| mix | events | sink alone, 1 core | end to end | Parquet B/event | JSON Lines B/event | JSON Lines + zstd B/event |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, events) in
        [("agent mix", agent_mix(n_mix_threads)), ("log-heavy mix", log_mix(2_000_000))]
    {
        let a = TempDir::new("alone");
        let (alone, bytes) = sink_alone(&events, &a.0);
        let b = TempDir::new("e2e");
        let e2e = end_to_end(&events, &b.0);
        let (raw, zst) = json_lines(&events);
        let n = events.len() as f64;
        println!(
            "| {label} | {} | {:.2} M/s | {:.2} M/s | {:.1} | {:.1} | {:.1} |",
            events.len(),
            alone / 1e6,
            e2e / 1e6,
            bytes as f64 / n,
            raw as f64 / n,
            zst as f64 / n
        );
    }
    let p = TempDir::new("plain");
    let (rate, per_row) = plain_arrow(2_000_000, &p.0);
    println!(
        "| plain arrow-rs writer, 12-column trace table (anchor) | 2000000 | {:.2} M/s | — | {per_row:.1} | — | — |",
        rate / 1e6
    );

    let n: u64 = std::env::var("MISSION_BENCH_STORE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000_000);
    let dir = TempDir::new("store");
    let (took, probe) = generate_store(&dir.0, n);
    let bytes = dir_bytes(&dir.0);
    println!(
        "\nQuery store: {n} span events over 24 h, written in {:.1} s ({:.2} M/s end to end), {:.2} GB on disk ({:.1} B/event).\n",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64() / 1e6,
        bytes as f64 / 1e9,
        bytes as f64 / n as f64
    );
    println!("| query | cold (first run after open) | warm (median of 5) | rows |");
    println!("|---|---|---|---|");
    let store = Store::open(&dir.0).expect("open");
    let run_thread = || {
        let t = Instant::now();
        let view = store.thread(&probe).expect("thread");
        (t.elapsed(), view.event_count)
    };
    let now = Timestamp::now().0;
    let hour = 3_600_000_000_000u64;
    let run_stats = || {
        let t = Instant::now();
        let rows = store
            .operation_stats(
                store.query().time_range(Timestamp(now - 3 * hour), Timestamp(now - 2 * hour)),
                &[GroupBy::Operation, GroupBy::Model],
            )
            .expect("stats");
        (t.elapsed(), rows.iter().map(|r| r.count as usize).sum::<usize>())
    };
    for (label, f) in [
        ("`thread(id)`", &run_thread as &dyn Fn() -> (Duration, usize)),
        ("one-hour `operation_stats` by operation and model", &run_stats),
    ] {
        let (cold, rows) = f();
        let mut warm: Vec<Duration> = (0..5).map(|_| f().0).collect();
        warm.sort();
        println!("| {label} | {} | {} | {rows} |", ms(cold), ms(warm[2]));
    }
}
