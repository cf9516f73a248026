//! Writes events into a store forever, finalizing a file every few hundred KiB: the victim of
//! the SIGKILL crash-safety test (`tests/integration/killed_writer_leaves_readable_store.rs`).
//!
//! Run: `cargo run -p mission-store --example crash_writer -- <store-dir>`.

use std::time::Duration;

use mission_core::{Backpressure, Pipeline, SpanKind, Symbol, ThreadContext};
use mission_store::{ParquetSink, StoreConfig};

fn main() {
    let Some(root) = std::env::args().nth(1) else {
        eprintln!("usage: crash_writer <store-dir>");
        std::process::exit(2);
    };
    let config =
        StoreConfig { row_group_rows: 200, max_file_bytes: 32 * 1024, ..StoreConfig::at(root) };
    let sink = match ParquetSink::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let Ok(pipeline) = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(5) })
        .with_sink(sink)
        .start()
    else {
        std::process::exit(1);
    };
    let recorder = pipeline.recorder();
    let name = Symbol::intern("tool");
    loop {
        let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("crash-agent"));
        for _ in 0..50 {
            recorder.start_span(&thread, SpanKind::ToolCall, name, None).end();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
