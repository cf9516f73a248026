//! Benchmark: OTLP ingest into closed Parquet files, per core (issue 18).
//!
//! A load generator (this process) sends batches of 512 spans with GenAI attributes over
//! loopback to the OTLP receiver running in a child process (this same program, started
//! with `MISSION_INGEST_CHILD`: `MissionControl` with a store and `serve_otlp`, as
//! `mission-ctl serve` runs it, without models), over OTLP/HTTP protobuf and over OTLP/gRPC.
//! The clock stops when the child has exited: every acknowledged span recorded, written and
//! its Parquet file closed. The child's CPU seconds (user + system, from the kernel's
//! accounting of waited-for children) give spans per core-second, so "per core" does not
//! depend on how many cores the receiver happened to use. Every stored row is counted back
//! from the files' footers.
//!
//! The generator sends pre-encoded requests (HTTP: the body bytes; gRPC: the request's
//! `resource_spans` as pre-encoded bytes fields), so its own cost is low, but it runs on the
//! same 2 cores: the wall-clock rate is a floor, the per-core rate is the figure.
//!
//! Run: `cargo bench -p mission-benches --bench ingest` (optionally `-- http` or `-- grpc`;
//! `INGEST_SPANS`, default 1,048,576 per protocol, and `INGEST_SENDERS`, default 4).
//! Results: `benches/RESULTS.md`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mission_sdk::{MissionControl, OtlpReceiverConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

const BATCH: usize = 512;
/// Distinct pre-encoded batches the senders cycle through.
const DISTINCT: usize = 64;
const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// 512 LLM calls of an agent, 8 per trace, with the GenAI attributes a model call carries.
fn batch(n: usize) -> ExportTraceServiceRequest {
    let t0 = 1_780_000_000_000_000_000_u64 + n as u64 * 1_000_000_000;
    let spans = (0..BATCH)
        .map(|i| {
            let mut trace_id = [0_u8; 16];
            trace_id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            trace_id[8..].copy_from_slice(&((i / 8) as u64 + 1).to_be_bytes());
            let start = t0 + i as u64 * 1_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: ((n * BATCH + i) as u64 + 1).to_be_bytes().to_vec(),
                name: "chat gpt-4o-mini".into(),
                kind: 3,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 350_000_000,
                attributes: vec![
                    kv("gen_ai.operation.name", any_value::Value::StringValue("chat".into())),
                    kv("gen_ai.provider.name", any_value::Value::StringValue("openai".into())),
                    kv("gen_ai.request.model", any_value::Value::StringValue("gpt-4o-mini".into())),
                    kv(
                        "gen_ai.response.model",
                        any_value::Value::StringValue("gpt-4o-mini-2024-07-18".into()),
                    ),
                    kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(800 + i as i64)),
                    kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(64)),
                    kv("gen_ai.request.temperature", any_value::Value::DoubleValue(0.2)),
                ],
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue("bench-agent".into())),
                    kv("gen_ai.agent.name", any_value::Value::StringValue("support-bot".into())),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

/// A trace request whose `resource_spans` are already encoded: the gRPC client only copies.
#[derive(Clone, PartialEq, prost::Message)]
struct PreEncoded {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    resource_spans: Vec<bytes::Bytes>,
}

/// The receiver, in the child process, until its stdin closes.
fn child(store: &str) {
    let control = MissionControl::builder()
        .with_store_root(store)
        .ignore_environment()
        .without_models()
        .build()
        .expect("control");
    let receiver = control
        .serve_otlp(
            OtlpReceiverConfig::loopback(0).with_grpc_addr(SocketAddr::from(([127, 0, 0, 1], 0))),
        )
        .expect("serve");
    println!("{} {}", receiver.local_addr(), receiver.grpc_local_addr().expect("gRPC"));
    std::io::stdout().flush().expect("stdout");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    let stats = receiver.stats();
    receiver.shutdown();
    let report = control.shutdown();
    println!(
        "spans={} throttled={} recorded={} dropped={}",
        stats.spans, stats.throttled, report.accounting.recorded, report.accounting.dropped
    );
}

/// This process's own CPU seconds and those of its waited-for children (`/proc/self/stat`).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // After the state: utime, stime, cutime, cstime are fields 14..=17 (indices 11..=14 here).
    let tick = clock_ticks();
    ((fields[10] + fields[11]) as f64 / tick, (fields[12] + fields[13]) as f64 / tick)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn parquet_rows(dir: &Path) -> u64 {
    let mut rows = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rows += parquet_rows(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).expect("open");
            let reader =
                parquet::file::reader::SerializedFileReader::new(file).expect("a closed file");
            rows += parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows()
                as u64;
        }
    }
    rows
}

/// Sends `count` pre-encoded bodies over one keep-alive HTTP/1.1 connection; returns how
/// many 429s it had to retry.
fn http_sender(addr: SocketAddr, bodies: &[Vec<u8>], first: usize, count: usize) -> u64 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut throttled = 0;
    let mut sent = 0;
    while sent < count {
        let body = &bodies[(first + sent) % bodies.len()];
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body).expect("write");
        let mut status = String::new();
        reader.read_line(&mut status).expect("status");
        let code: u16 =
            status.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("an HTTP status");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().expect("length");
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).expect("body");
        match code {
            200 => sent += 1,
            429 => {
                throttled += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            other => panic!("HTTP {other}: {}", String::from_utf8_lossy(&answer)),
        }
    }
    throttled
}

async fn grpc_sender(
    endpoint: String,
    bodies: Arc<Vec<PreEncoded>>,
    first: usize,
    count: usize,
) -> u64 {
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut throttled = 0;
    let mut sent = 0;
    while sent < count {
        let request = bodies[(first + sent) % bodies.len()].clone();
        grpc.ready().await.expect("ready");
        let codec = tonic_prost::ProstCodec::<PreEncoded, ExportTraceServiceResponse>::default();
        let answer = grpc
            .unary(
                tonic::Request::new(request),
                http::uri::PathAndQuery::from_static(TRACES),
                codec,
            )
            .await;
        match answer {
            Ok(_) => sent += 1,
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                throttled += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(status) => panic!("gRPC {status:?}"),
        }
    }
    throttled
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Http,
    Grpc,
}

fn run(protocol: Protocol, spans: u64, senders: usize) {
    let name = if protocol == Protocol::Http { "http_protobuf" } else { "grpc" };
    let store: PathBuf =
        std::env::temp_dir().join(format!("mission-ingest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let requests: Vec<ExportTraceServiceRequest> = (0..DISTINCT).map(batch).collect();
    let http_bodies: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
    let grpc_bodies: Arc<Vec<PreEncoded>> = Arc::new(
        requests
            .iter()
            .map(|r| PreEncoded {
                resource_spans: r
                    .resource_spans
                    .iter()
                    .map(|rs| bytes::Bytes::from(rs.encode_to_vec()))
                    .collect(),
            })
            .collect(),
    );
    let body_bytes = http_bodies[0].len();
    let batches = (spans as usize).div_ceil(BATCH);
    let (own0, children0) = cpu_seconds();

    let mut server = Command::new(std::env::current_exe().expect("this program"))
        .env("MISSION_INGEST_CHILD", &store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the receiver");
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("addresses");
    let mut addrs = line.split_whitespace().map(|a| a.parse::<SocketAddr>().expect("address"));
    let (http_addr, grpc_addr) = (addrs.next().expect("http"), addrs.next().expect("grpc"));

    let start = Instant::now();
    let throttled = AtomicU64::new(0);
    let share = |s: usize| batches / senders + usize::from(s < batches % senders);
    match protocol {
        Protocol::Http => std::thread::scope(|scope| {
            let mut first = 0;
            for s in 0..senders {
                let (bodies, throttled, n) = (&http_bodies, &throttled, share(s));
                scope.spawn(move || {
                    throttled.fetch_add(http_sender(http_addr, bodies, first, n), Ordering::Relaxed)
                });
                first += n;
            }
        }),
        Protocol::Grpc => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let mut first = 0;
            let tasks: Vec<_> = (0..senders)
                .map(|s| {
                    let n = share(s);
                    let task = rt.spawn(grpc_sender(
                        format!("http://{grpc_addr}"),
                        grpc_bodies.clone(),
                        first,
                        n,
                    ));
                    first += n;
                    task
                })
                .collect();
            for task in tasks {
                throttled.fetch_add(rt.block_on(task).expect("sender"), Ordering::Relaxed);
            }
        }
    }
    let acknowledged_at = start.elapsed();
    let peak_rss = peak_rss_kib(server.id());
    drop(server.stdin.take()); // the receiver stops: records, writes and closes its files
    let mut summary = String::new();
    out.read_line(&mut summary).expect("summary");
    let status = server.wait().expect("wait");
    let elapsed = start.elapsed();
    assert!(status.success(), "the receiver failed: {status}");
    let (own1, children1) = cpu_seconds();
    let receiver_cpu = children1 - children0;
    let acknowledged = (batches * BATCH) as u64;
    let rows = parquet_rows(&store);
    assert!(rows >= acknowledged, "{rows} rows stored for {acknowledged} acknowledged spans");
    let _ = std::fs::remove_dir_all(&store);
    println!(
        "ingest/{name}: {acknowledged} spans in {batches} requests of {BATCH} ({body_bytes} bytes each), \
         {senders} senders; acknowledged in {:.2} s, all in closed Parquet files after {:.2} s \
         ({rows} rows): {:.0} spans/s wall; receiver CPU {:.2} s = {:.0} spans per core-second; \
         load generator CPU {:.2} s; receiver peak RSS {} MiB; {} throttled answers; receiver: {}",
        acknowledged_at.as_secs_f64(),
        elapsed.as_secs_f64(),
        acknowledged as f64 / elapsed.as_secs_f64(),
        receiver_cpu,
        acknowledged as f64 / receiver_cpu,
        own1 - own0,
        peak_rss / 1024,
        throttled.load(Ordering::Relaxed),
        summary.trim(),
    );
}

fn main() {
    if let Ok(store) = std::env::var("MISSION_INGEST_CHILD") {
        child(&store);
        return;
    }
    let number = |name: &str, default: u64| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let spans = number("INGEST_SPANS", 1 << 20);
    let senders = number("INGEST_SENDERS", 4).clamp(1, 64) as usize;
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |p: &str| args.is_empty() || args.iter().any(|a| p.contains(a.as_str()));
    if wanted("http") {
        run(Protocol::Http, spans, senders);
    }
    if wanted("grpc") {
        run(Protocol::Grpc, spans, senders);
    }
}
