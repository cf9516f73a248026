//! Issue 15, 6.2: a query never waits on the OTLP exporter.
//!
//! A loopback OTLP/HTTP receiver takes the exporter's first request and holds it open until
//! the test lets it go, and the exporter may wait 120 s for it (`timeout` and `flush_timeout`).
//! Queries through the MCP server (what an agent asks, reading the agent's store) must still
//! answer with what was just recorded, long before that: a query flushes the pipeline only as
//! far as the store ([`Recorder::flush_for_reads`](mission_sdk::core::Recorder::flush_for_reads)).
//!
//! Before, a query flushed every sink: the pipeline thread sat in the exporter's flush for up to
//! `flush_timeout` while the query gave up after its own 5 s, so the next query found the
//! pipeline still stuck and answered without what had been recorded since. The deadlines below
//! are not measurements: a query that waited on the exporter would take 120 s, and the test
//! allows 60 s, which even a very slow machine does not need.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use mission_sdk::mcp::MissionMcp;
use mission_sdk::{MissionControl, OtlpConfig, ThreadId};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

#[path = "support/http_request.rs"]
mod http_request;
#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

/// How long a query may take here: far below the exporter's 120 s.
const DEADLINE: Duration = Duration::from_secs(60);

/// A flag the receiver's connections wait on, and the paths of the requests they hold.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, Vec<String>)>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (bool, Vec<String>)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets every held request (and every later one) be answered.
    fn release(&self) {
        self.lock().0 = true;
        self.changed.notify_all();
    }

    /// Waits until a request to `path` arrived (or the deadline passed); whether one did.
    fn wait_for(&self, path: &str) -> bool {
        let until = Instant::now() + DEADLINE;
        let mut state = self.lock();
        while !state.1.iter().any(|p| p == path) {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        true
    }
}

/// Releases the receiver when the test ends, even by a failed assertion: the exporter's
/// shutdown then finishes at once.
struct ReleaseOnDrop(Arc<Gate>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A receiver that holds every request open until the gate is released, then answers 200.
fn holding_receiver(gate: Arc<Gate>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let gate = gate.clone();
            std::thread::spawn(move || hold(stream, &gate));
        }
    });
    url
}

/// Serves one connection's requests (keep-alive), each held until the gate is released.
fn hold(mut stream: TcpStream, gate: &Gate) {
    let mut buffer = Vec::new();
    while let Some((head, _body)) = http_request::read_request(&mut stream, &mut buffer) {
        let mut state = gate.lock();
        state.1.push(http_request::path(&head));
        gate.changed.notify_all();
        while !state.0 {
            state = gate.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(state);
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// `get_thread` of `thread` through a new MCP server of `control` (its first read flushes),
/// asked on a thread of its own; the answer's text, or `None` if none came within the deadline.
fn get_thread_within_deadline(control: &MissionControl, thread: ThreadId) -> Option<String> {
    let server: MissionMcp = control.mcp_server();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let text = runtime.block_on(async move {
            let (server_end, client_end) = tokio::io::duplex(1 << 20);
            tokio::spawn(async move {
                if let Ok(running) = server.serve(server_end).await {
                    let _ = running.waiting().await;
                }
            });
            let client = ().serve(client_end).await.expect("client connects");
            let arguments = json!({ "thread_id": thread.to_string() });
            let answer = client
                .peer()
                .call_tool(
                    CallToolRequestParams::new("get_thread")
                        .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
                )
                .await
                .expect("get_thread answers");
            let _ = client.cancel().await;
            serde_json::to_string(&answer).expect("json")
        });
        let _ = tx.send(text);
    });
    rx.recv_timeout(DEADLINE).ok()
}

fn record_thread(control: &MissionControl, model: &str) -> ThreadId {
    let thread = control.agent("support-bot").thread();
    {
        let mut call = thread.llm_call(model, "openai");
        call.record_usage(100, 10);
    }
    let id = thread.id();
    thread.end();
    id
}

#[test]
fn a_query_answers_what_was_recorded_while_the_exporter_holds_a_request() {
    let gate = Arc::new(Gate::default());
    let url = holding_receiver(gate.clone());
    let dir = TempDir::new("query-while-exporting");
    let otlp = OtlpConfig::http(&url)
        .with_logs(false)
        .with_metrics(false)
        .with_timeout(Duration::from_secs(120))
        .with_flush_timeout(Duration::from_secs(120))
        .with_retry_window(Duration::from_secs(600));
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .with_otlp(otlp)
        .build()
        .expect("build");
    // Dropped before `control`: a failed assertion does not leave shutdown waiting 120 s.
    let _release = ReleaseOnDrop(gate.clone());

    let first = record_thread(&control, "gpt-4o-mini");
    assert!(gate.wait_for("/v1/traces"), "the exporter sent its first batch");
    let answer = get_thread_within_deadline(&control, first)
        .expect("a query answered while the exporter's request is held open");
    assert!(answer.contains("gpt-4o-mini"), "the query saw the first thread: {answer}");

    // Recorded after that query: the next query finds the pipeline free, not stuck in the
    // exporter's flush, and sees it.
    let second = record_thread(&control, "claude-sonnet-4");
    let answer = get_thread_within_deadline(&control, second)
        .expect("a second query answered while the exporter's request is held open");
    assert!(answer.contains("claude-sonnet-4"), "the query saw the second thread: {answer}");
    assert!(!gate.lock().0, "the exporter's request was held open throughout");

    // Let the receiver answer: an explicit flush waits for export, and it all goes out.
    gate.release();
    control.flush().expect("everything is exported once the receiver answers");
    let otlp = control.health_report().otlp.expect("export is on");
    assert_eq!((otlp.traces.queued, otlp.traces.dropped_retry_expired), (0, 0), "{otlp:#?}");
    control.shutdown();
}
