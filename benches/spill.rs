//! The OTLP exporter's disk spill (issue 19): how fast spans go to the spill while the backend
//! is down (write rate), and how fast they come back out to a backend that returns (replay
//! rate), in spans per second.
//!
//! Each iteration records `SPANS` tool spans through a `MissionControl` exporting over
//! OTLP/HTTP (batches of 512) to a loopback port:
//! - `spill_write`: the port refuses connections; timed from the first span recorded until the
//!   exporter counts every span `spilled` (encoding, framing, CRC, the write of each segment).
//! - `spill_replay`: the spans are spilled first (not timed), then a receiver answering 200
//!   starts on the port and a flush starts the replay at once; timed until every span is
//!   `replayed` (reading, checking, decoding and sending each batch, one request at a time).
//!
//! Run: `cargo bench -p mission-benches --bench spill` (`-- --quick` for a smoke run).
//! Results: `benches/RESULTS.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mission_sdk::{MissionControl, OtlpConfig, OtlpStats};

const SPANS: usize = 20_000;

/// A loopback address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr")
}

/// An OTLP/HTTP receiver on `addr` answering every request 200, until the process ends.
fn receive(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).expect("bind");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
}

fn serve(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0);
        while buffer.len() < end + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + length);
        if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

fn control(addr: SocketAddr, spill: &Path, store: &Path) -> MissionControl {
    let otlp = OtlpConfig::http(&format!("http://{addr}"))
        .with_logs(false)
        .with_metrics(false)
        .with_batch_size(512)
        .with_batch_delay(Duration::from_millis(5))
        .with_flush_timeout(Duration::from_secs(60))
        .with_spill_dir(spill);
    // Blocking backpressure: every span reaches the exporter, none is dropped by the recorder.
    let mut recorder = mission_core::RecorderConfig::default();
    recorder.backpressure = mission_core::Backpressure::Block { timeout: Duration::from_secs(60) };
    MissionControl::builder()
        .ignore_environment()
        .with_recorder_config(recorder)
        .without_store()
        .with_store_root(store)
        .without_models()
        .with_otlp(otlp)
        .build()
        .expect("build")
}

fn wait_for(control: &MissionControl, done: impl Fn(&OtlpStats) -> bool) {
    let reader = control.otlp_stats_reader().expect("export is on");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&reader.stats()) {
        assert!(Instant::now() < deadline, "stuck: {:#?}", reader.stats());
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn record(control: &MissionControl) {
    let thread = control.agent("bench-bot").thread();
    for i in 0..SPANS {
        drop(thread.tool_call(if i % 2 == 0 { "web_search" } else { "read_file" }));
    }
    std::mem::forget(thread);
    control.flush_for_reads().expect("the pipeline drains");
    let accepted = control.otlp_stats_reader().expect("on").stats().accepted;
    assert_eq!(accepted, SPANS as u64, "every span reached the exporter");
}

fn fresh(name: &str, n: &mut u64) -> (PathBuf, PathBuf) {
    *n += 1;
    let base =
        std::env::temp_dir().join(format!("mission-bench-spill-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    (base.join("spill"), base.join("store"))
}

fn spill(c: &mut Criterion) {
    let mut group = c.benchmark_group("otlp_spill");
    group.sample_size(10).throughput(Throughput::Elements(SPANS as u64));
    let mut n = 0;
    group.bench_function("spill_write", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (spill, store) = fresh("write", &mut n);
                let control = control(free_addr(), &spill, &store);
                let started = Instant::now();
                record(&control);
                wait_for(&control, |s| s.spilled == SPANS as u64 && s.queued == 0);
                total += started.elapsed();
                control.shutdown();
                let _ = std::fs::remove_dir_all(spill.parent().expect("base"));
            }
            total
        });
    });
    group.bench_function("spill_replay", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (spill, store) = fresh("replay", &mut n);
                let addr = free_addr();
                let control = control(addr, &spill, &store);
                record(&control);
                wait_for(&control, |s| s.spilled == SPANS as u64 && s.queued == 0);
                let started = Instant::now();
                receive(addr);
                // A flush tries the spill at once (no backoff left to wait out) and returns
                // when it is empty.
                control.flush().expect("the backend is up");
                wait_for(&control, |s| s.replayed == SPANS as u64 && s.spill_queued == 0);
                total += started.elapsed();
                control.shutdown();
                let _ = std::fs::remove_dir_all(spill.parent().expect("base"));
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, spill);
criterion_main!(benches);
