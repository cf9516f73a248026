//! `mission-ctl serve` run as a process: it prints where each surface listens, takes an
//! OTLP/HTTP protobuf request from a sender with a tenant's token (and refuses one without),
//! shows it on its dashboard's API while running, stops on SIGTERM after writing what it
//! received, and `mission-ctl query` reads the span back with its GenAI fields typed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// How long a step may take on a loaded machine before the test fails.
const PATIENCE: Duration = Duration::from_secs(120);
const TOKEN: &str = "acme-sender-token-0001";
const TRACE: [u8; 16] = *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36";

/// The server process, killed if the test ends before it stopped.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `mission-ctl serve`: the process, where each surface listens (`OTLP receiver`,
/// `dashboard`, `MCP server`: its URL) and the lines it prints after the start.
struct Serving {
    server: Server,
    urls: BTreeMap<String, String>,
    printed: mpsc::Receiver<String>,
}

impl Serving {
    /// Starts `mission-ctl serve ARGS` and reads its lines up to the one saying it serves.
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`start`](Self::start) with extra environment variables.
    fn start_with_env(args: &[&str], env: &[(&str, String)]) -> Self {
        let mut server = Server(Some(
            Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
                .arg("serve")
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn"),
        ));
        let stdout = server.0.as_mut().expect("running").stdout.take().expect("stdout");
        let (lines, printed) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut urls = BTreeMap::new();
        loop {
            let line = printed.recv_timeout(PATIENCE).expect("serve says where it listens");
            if line.starts_with("serving store ") {
                break;
            }
            if let Some((surface, url)) =
                line.strip_prefix("Mission Control ").and_then(|l| l.split_once(" on "))
            {
                urls.insert(surface.to_owned(), url.to_owned());
            }
        }
        Serving { server, urls, printed }
    }

    /// The address of `surface` (its URL without scheme and path).
    fn addr(&self, surface: &str) -> SocketAddr {
        let url =
            self.urls.get(surface).unwrap_or_else(|| panic!("no {surface} in {:?}", self.urls));
        let addr = url.strip_prefix("http://").and_then(|rest| rest.split('/').next());
        let addr: SocketAddr =
            addr.and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no address in {url}"));
        assert_ne!(addr.port(), 0);
        addr
    }

    /// Sends SIGTERM and waits for a clean exit; the lines printed after the start.
    fn stop(mut self) -> Vec<String> {
        let mut child = self.server.0.take().expect("running");
        let pid = child.id();
        let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(killed.success());
        let (exited, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let status = match exit.recv_timeout(PATIENCE) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("serve did not stop on SIGTERM");
            }
        };
        assert!(status.success(), "serve exited with {status}");
        // Every line up to the end of its output (the reader thread may not have passed the
        // last ones on yet when the process exited).
        let mut lines = Vec::new();
        loop {
            match self.printed.recv_timeout(PATIENCE) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("serve's output did not end"),
            }
        }
    }
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..KeyValue::default()
    }
}

/// One chat span of a TypeScript-like sender, as protobuf.
fn request(start_ns: u64) -> Vec<u8> {
    let span = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        name: "chat gpt-4o-mini".into(),
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + 250_000_000,
        attributes: vec![
            text("gen_ai.operation.name", "chat"),
            text("gen_ai.provider.name", "openai"),
            text("gen_ai.request.model", "gpt-4o-mini"),
            int("gen_ai.usage.input_tokens", 812),
            int("gen_ai.usage.output_tokens", 64),
            text("app.region", "eu"),
        ],
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "ts-agent")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

/// POSTs `body` to `/v1/traces`; the status code and the response body.
fn post(addr: SocketAddr, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n",
        body.len()
    );
    exchange(addr, &head, token, body)
}

/// GETs `path`; the status code and the response body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\n"), token, &[])
}

/// One request (`head`: its request line and headers but `Host`, `Authorization` and
/// `Connection`) on a connection of its own; the status code and the response body.
fn exchange(addr: SocketAddr, head: &str, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{head}Host: {addr}\r\n{auth}Connection: close\r\n\r\n").expect("write head");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, raw[split + 4..].to_vec())
}

#[test]
fn serve_records_what_an_otlp_sender_sends_and_writes_it_on_sigterm() {
    let root = std::env::temp_dir().join(format!("mission-ctl-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("root");
    let tokens = root.with_extension("tokens");
    std::fs::write(&tokens, format!("# senders of tenant acme\n{TOKEN}:acme\n")).expect("tokens");
    let store = root.join("data");
    let serving = Serving::start(&[
        "--store",
        store.to_str().expect("utf-8"),
        "--addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--no-dashboard",
        "--no-mcp",
        "--tokens-file",
        tokens.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        serving.urls.keys().collect::<Vec<_>>(),
        ["OTLP receiver", "OTLP/gRPC receiver"],
        "only the receivers"
    );
    let addr = serving.addr("OTLP receiver");
    // `--grpc-addr 127.0.0.1:0`: OTLP/gRPC on a port of its own.
    let grpc = serving.addr("OTLP/gRPC receiver");
    assert_ne!(grpc.port(), addr.port(), "{grpc}");

    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let start_ns = u64::try_from(now).expect("time fits") - 1_000_000_000;
    let body = request(start_ns);
    let (status, _) = post(addr, None, &body);
    assert_eq!(status, 401, "a sender without the token is refused");
    let (status, answer) = post(addr, Some(TOKEN), &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer = ExportTraceServiceResponse::decode(&answer[..]).expect("an OTLP answer");
    assert_eq!(answer.partial_success, None, "nothing refused");

    let rest = serving.stop();
    let summary = rest.iter().find(|l| l.starts_with("stopped:")).expect("a summary");
    assert!(
        summary.contains("received 1 spans") && summary.contains("in 2 requests (1 refused)"),
        "{summary}"
    );

    let thread = TRACE.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let out =
        ctl(&["query", store.to_str().expect("utf-8"), "--thread", &thread, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "exactly the span sent: {rows:?}");
    let row = &rows[0];
    let field = |name: &str| row[name].as_str().unwrap_or_else(|| panic!("no {name} in {row}"));
    assert_eq!(field("kind"), "llm_call");
    assert_eq!(field("name"), "chat");
    assert_eq!(field("tenant"), "acme");
    assert_eq!(field("gen_ai_agent_name"), "ts-agent");
    // The query's JSON gives span ids as decimal integers.
    assert_eq!(field("span_id"), 0x00f0_67aa_0ba9_02b7_u64.to_string());
    assert_eq!(field("gen_ai_provider_name"), "openai");
    assert_eq!(field("gen_ai_request_model"), "gpt-4o-mini");
    assert_eq!(field("gen_ai_usage_input_tokens"), "812");
    assert_eq!(field("gen_ai_usage_output_tokens"), "64");
    assert_eq!(field("duration_ns"), "250000000");
    assert!(field("attributes").contains("app.region"), "{row}");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&tokens);
}

#[cfg(feature = "s3")]
#[path = "../../mission-store/tests/integration/s3_server.rs"]
mod s3_server;

/// `serve --upload-to s3://…`: what a sender sends is written, then uploaded to the bucket
/// (the loopback S3 server) once, and read back from there with SQL.
#[cfg(all(feature = "s3", feature = "sql"))]
#[test]
fn serve_uploads_what_it_writes_to_a_bucket() {
    let server = s3_server::S3Server::start("mission-serve-upload");
    let root = std::env::temp_dir().join(format!("mission-ctl-serve-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = root.join("data");
    let url = format!("s3://{}/served", server.bucket);
    let serving = Serving::start_with_env(
        &[
            "--store",
            store.to_str().expect("utf-8"),
            "--addr",
            "127.0.0.1:0",
            "--no-grpc",
            "--no-dashboard",
            "--no-mcp",
            "--tenant",
            "acme",
            "--upload-to",
            &url,
        ],
        &server.env(),
    );
    let addr = serving.addr("OTLP receiver");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let start_ns = u64::try_from(now).expect("time fits") - 1_000_000_000;
    let (status, answer) = post(addr, None, &request(start_ns));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    serving.stop();

    let local = mission_store::Store::open(&store).expect("open local");
    assert!(local.files().is_empty(), "every file went up");
    let mut sql = Command::new(env!("CARGO_BIN_EXE_mission-ctl"));
    sql.args(["sql", "SELECT count(*) AS n FROM llm_calls WHERE name = 'chat'", "--store", &url])
        .args(["--format", "csv"])
        .envs(server.env());
    let out = sql.output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().collect::<Vec<_>>(), ["n", "1"], "{text}");
    let _ = std::fs::remove_dir_all(&root);
}

/// The dashboard's JSON at `path` with `token`, once it answers 200 with a body holding `want`
/// (the receiver's events reach the store and the live feed in the background).
fn dashboard_json(addr: SocketAddr, path: &str, token: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get(addr, path, Some(token));
        let text = String::from_utf8_lossy(&body);
        if status == 200 && text.contains(want) {
            return serde_json::from_slice(&body).expect("json");
        }
        assert!(Instant::now() < deadline, "GET {path}: {status} {text}");
        std::thread::yield_now();
    }
}

#[test]
fn one_serve_receives_and_shows_on_its_dashboard_and_mcp_server() {
    let store = std::env::temp_dir().join(format!("mission-ctl-serve-all-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let tenant_token = format!("{TOKEN}:acme");
    let serving = Serving::start(&[
        "--store",
        store.to_str().expect("utf-8"),
        "--addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--dashboard-addr",
        "127.0.0.1:0",
        "--mcp-addr",
        "127.0.0.1:0",
        "--tenant-token",
        &tenant_token,
    ]);
    let names: Vec<&String> = serving.urls.keys().collect();
    assert_eq!(names, ["MCP server", "OTLP receiver", "OTLP/gRPC receiver", "dashboard"]);
    assert!(serving.urls["MCP server"].ends_with("/mcp"), "{:?}", serving.urls);
    let (otlp, dashboard, mcp) =
        (serving.addr("OTLP receiver"), serving.addr("dashboard"), serving.addr("MCP server"));
    assert!(otlp.ip().is_loopback() && dashboard.ip().is_loopback() && mcp.ip().is_loopback());

    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let (status, _) = post(otlp, Some(TOKEN), &request(u64::try_from(now).expect("fits")));
    assert_eq!(status, 200);
    // The dashboard and the MCP server take the same token and nothing less.
    assert_eq!(get(dashboard, "/api/overview", None).0, 401);
    let (status, _) = exchange(mcp, "POST /mcp HTTP/1.1\r\nContent-Length: 0\r\n", None, &[]);
    assert_eq!(status, 401);
    let thread = TRACE.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let page = dashboard_json(dashboard, &format!("/api/threads/{thread}"), TOKEN, "gpt-4o-mini");
    let text = page.to_string();
    assert!(text.contains("ts-agent") && text.contains("812"), "{text}");
    // Prometheus scrapes the same dashboard: the received span is in its tenant's latency.
    assert_eq!(get(dashboard, "/metrics", None).0, 401);
    // (The dashboard's feed counts the span as it arrives from the agent's live stream.)
    let deadline = Instant::now() + PATIENCE;
    let latency = "mission_operation_duration_seconds_count{tenant=\"acme\"";
    let metrics = loop {
        let (status, metrics) = get(dashboard, "/metrics", Some(TOKEN));
        let metrics = String::from_utf8(metrics).expect("utf-8");
        assert_eq!(status, 200, "{metrics}");
        assert!(metrics.ends_with("# EOF\n"), "{metrics}");
        if metrics.contains(latency) || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let count = metrics
        .lines()
        .find(|l| l.starts_with(latency))
        .unwrap_or_else(|| panic!("no latency of acme in {metrics}"));
    assert!(count.ends_with(" 1"), "{count}");
    let rest = serving.stop();
    assert!(rest.iter().any(|l| l.starts_with("stopped: received 1 spans")), "{rest:?}");
    let _ = std::fs::remove_dir_all(&store);
}
