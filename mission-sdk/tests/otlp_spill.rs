//! The OTLP exporter's disk spill against a real OTLP/HTTP receiver on loopback that the tests
//! stop (connections refused), make answer 503, and start again on the same port: spans
//! exported while it is down wait on disk and arrive in order, exactly once, when it returns;
//! a full spill drops its oldest batches, counted; a new exporter on the same directory
//! replays what was left, skipping a torn tail; bad settings are typed errors.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mission_sdk::{MissionControl, OtlpConfig, OtlpSink, OtlpStats};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

#[path = "support/http_request.rs"]
mod http_request;
#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

const UP: u8 = 0;
const UNAVAILABLE: u8 = 1;
const DOWN: u8 = 2;

/// An OTLP/HTTP traces receiver on a fixed loopback port: up (200, the span names kept in
/// arrival order), unavailable (503) or down (not listening: connections are refused).
struct Receiver {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Names of the spans of every request answered 200, in order.
    names: Arc<Mutex<Vec<String>>>,
    /// Requests to `/v1/traces` answered 503.
    unavailable: Arc<Mutex<u64>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut receiver = Self {
            addr,
            mode: Arc::new(AtomicU8::new(UP)),
            names: Arc::default(),
            unavailable: Arc::default(),
            accepting: None,
        };
        receiver.listen(listener);
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn listen(&mut self, listener: TcpListener) {
        let (mode, names, unavailable) =
            (self.mode.clone(), self.names.clone(), self.unavailable.clone());
        self.accepting = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                if mode.load(Ordering::Acquire) == DOWN {
                    return; // Drops the listener: connections are refused from now on.
                }
                let Ok(stream) = stream else { continue };
                let (mode, names, unavailable) = (mode.clone(), names.clone(), unavailable.clone());
                std::thread::spawn(move || serve(stream, &mode, &names, &unavailable));
            }
        }));
    }

    /// Stops listening; connections open now are closed at their next request.
    fn stop(&mut self) {
        self.mode.store(DOWN, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.accepting.take() {
            t.join().expect("accept thread");
        }
        assert!(TcpStream::connect(self.addr).is_err(), "the port refuses connections");
    }

    /// Listens again on the same port, answering as `mode` says.
    fn restart(&mut self, mode: u8) {
        self.mode.store(mode, Ordering::Release);
        let listener = TcpListener::bind(self.addr).expect("bind the same port again");
        self.listen(listener);
    }

    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::Release);
    }

    fn names(&self) -> Vec<String> {
        self.names.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.accepting.is_some() {
            self.stop();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    mode: &AtomicU8,
    names: &Mutex<Vec<String>>,
    unavailable: &Mutex<u64>,
) {
    let mut buffer = Vec::new();
    while let Some((head, body)) = http_request::read_request(&mut stream, &mut buffer) {
        let status = match mode.load(Ordering::Acquire) {
            DOWN => return, // closes the connection without an answer
            UNAVAILABLE => 503,
            _ => 200,
        };
        if http_request::path(&head) == "/v1/traces" {
            if status == 200 {
                let request =
                    ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP request");
                let mut names = names.lock().expect("lock");
                for span in request
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                {
                    names.push(span.name.clone());
                }
            } else {
                *unavailable.lock().expect("lock") += 1;
            }
        }
        let reason = if status == 200 { "OK" } else { "Service Unavailable" };
        let answer = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n");
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Waits until `done` holds for the span exporter's counters, at most 60 s; returns them.
fn wait_for(control: &MissionControl, what: &str, done: impl Fn(&OtlpStats) -> bool) -> OtlpStats {
    let reader = control.otlp_stats_reader().expect("export is on");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = reader.stats();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn config(url: &str, spill: &Path) -> OtlpConfig {
    OtlpConfig::http(url)
        .with_logs(false)
        .with_metrics(false)
        .with_batch_size(10)
        .with_batch_delay(Duration::from_millis(20))
        .with_flush_timeout(Duration::from_secs(30))
        .with_spill_dir(spill)
}

fn control(config: OtlpConfig, store: &Path) -> MissionControl {
    MissionControl::builder()
        .ignore_environment()
        .with_service_name("spill-test")
        .with_store_root(store)
        .without_models()
        .with_otlp(config)
        .build()
        .expect("build")
}

/// Records tool spans `execute_tool t{from}` .. `t{to - 1}`, in order, in one thread that is
/// left open (its agent span would come at the end).
fn record(control: &MissionControl, from: usize, to: usize) {
    let thread = control.agent("spill-bot").thread();
    for i in from..to {
        drop(thread.tool_call(&format!("t{i:05}")));
    }
    std::mem::forget(thread);
}

fn names(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("execute_tool t{i:05}")).collect()
}

fn tool_spans(receiver: &Receiver) -> Vec<String> {
    receiver.names().into_iter().filter(|n| n.starts_with("execute_tool t")).collect()
}

#[test]
fn spans_exported_while_the_backend_is_down_arrive_in_order_exactly_once() {
    let (store, spill) = (TempDir::new("spill-order-store"), TempDir::new("spill-order"));
    let mut receiver = Receiver::start();
    let control = control(config(&receiver.url(), &spill.0), &store.0);
    record(&control, 0, 5);
    control.flush().expect("the backend is up");
    assert_eq!(tool_spans(&receiver), names(0, 5));

    // Down: connections refused. Everything goes to the spill, in order.
    receiver.stop();
    record(&control, 5, 35);
    assert!(control.flush().is_err(), "the backend is down: flush does not wait for it");
    let s = wait_for(&control, "30 spans spilled", |s| s.spilled == 30 && s.queued == 0);
    assert!(s.spill_queued >= 3 && s.spill_queued_spans == 30 && s.spill_bytes > 0, "{s:#?}");
    assert!(!s.backend_up && s.replayed == 0, "{s:#?}");

    // Back, but answering 503: still spilled, behind the others.
    receiver.restart(UNAVAILABLE);
    record(&control, 35, 45);
    let s = wait_for(&control, "40 spans spilled", |s| s.spilled == 40 && s.queued == 0);
    wait_for(&control, "a replay answered 503", |_| *receiver.unavailable.lock().unwrap() > 0);
    assert_eq!(s.exported, 5, "{s:#?}");

    // Up: a flush waits for the spill to be replayed, oldest first; newer spans follow.
    receiver.set_mode(UP);
    control.flush().expect("the backend is up again");
    assert_eq!(tool_spans(&receiver), names(0, 45));
    record(&control, 45, 50);
    control.flush().expect("the backend is up");
    let s = wait_for(&control, "everything exported", |s| s.exported == 50);
    assert_eq!(tool_spans(&receiver), names(0, 50), "in order, exactly once");
    assert_eq!(
        (s.accepted, s.spilled, s.replayed, s.spill_queued, s.spill_queued_spans, s.spill_bytes),
        (50, 40, 40, 0, 0, 0),
        "{s:#?}"
    );
    assert_eq!(
        (s.dropped_queue_full, s.dropped_spill_full, s.dropped_spill_error, s.spill_torn_records),
        (0, 0, 0, 0)
    );
    assert!(s.backend_up && s.healthy, "{s:#?}");
    // The health report carries the spill's counters too.
    let otlp = control.health_report().otlp.expect("export is on");
    assert_eq!((otlp.traces.spilled, otlp.traces.replayed), (40, 40));
    control.shutdown();
}

#[test]
fn a_full_spill_drops_its_oldest_batches_and_counts_them_exactly() {
    let (store, spill) = (TempDir::new("spill-full-store"), TempDir::new("spill-full"));
    let mut receiver = Receiver::start();
    receiver.stop();
    let config = config(&receiver.url(), &spill.0).with_spill_max_bytes(64 * 1024);
    let control = control(config, &store.0);
    record(&control, 0, 2000);
    let s = wait_for(&control, "every span spilled", |s| s.spilled == 2000 && s.queued == 0);
    assert!(s.dropped_spill_full > 0, "2000 spans do not fit in 64 KiB: {s:#?}");
    assert!(s.spill_bytes <= 64 * 1024, "{s:#?}");
    assert!(!s.healthy, "something was dropped: {s:#?}");
    let kept = s.spill_queued_spans;
    assert_eq!(kept + s.dropped_spill_full, 2000, "{s:#?}");

    receiver.restart(UP);
    let s = wait_for(&control, "the spill replayed", |s| s.spill_queued == 0 && s.queued == 0);
    // The newest survived, in order; the oldest were dropped, exactly as many as counted.
    let dropped = s.dropped_spill_full as usize;
    assert_eq!(tool_spans(&receiver), names(dropped, 2000));
    assert_eq!((s.exported, s.replayed), (kept, kept), "{s:#?}");
    assert_eq!(s.accepted, s.exported + s.dropped_spill_full, "{s:#?}");
    control.shutdown();
}

#[test]
fn a_new_exporter_replays_what_was_left_skipping_a_torn_tail() {
    let (store, spill) = (TempDir::new("spill-restart-store"), TempDir::new("spill-restart"));
    let mut receiver = Receiver::start();
    receiver.stop();
    let first = control(config(&receiver.url(), &spill.0), &store.0);
    record(&first, 0, 20);
    wait_for(&first, "20 spans spilled", |s| s.spilled == 20 && s.queued == 0);
    // A second exporter on the same directory is refused while the first holds it.
    let err = OtlpSink::new(config(&receiver.url(), &spill.0)).expect_err("in use");
    assert!(err.to_string().contains("spill_dir") && err.to_string().contains("in use"), "{err}");
    // Spans still in memory at shutdown are spilled for the next exporter, not dropped.
    record(&first, 20, 23);
    let report = first.shutdown();
    drop(report);

    // A write cut short by a kill: a record header promising more than the file holds.
    let mut segments: Vec<_> = std::fs::read_dir(&spill.0)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spill"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment");
    let mut torn = b"MSP1".to_vec();
    torn.extend_from_slice(&1000u32.to_le_bytes());
    torn.extend_from_slice(&5u32.to_le_bytes());
    torn.extend_from_slice(&[0; 4 + 30]);
    std::fs::OpenOptions::new().append(true).open(last).expect("open").write_all(&torn).expect("w");

    receiver.restart(UP);
    let second = control(config(&receiver.url(), &spill.0), &store.0);
    let s = second.otlp_stats_reader().expect("on").stats();
    assert_eq!((s.spill_recovered, s.spill_torn_records), (23, 1), "{s:#?}");
    second.flush().expect("a flush waits for the leftovers");
    assert_eq!(tool_spans(&receiver), names(0, 23), "leftovers in order, once");
    record(&second, 23, 30);
    second.flush().expect("the backend is up");
    let s = wait_for(&second, "everything exported", |s| s.exported == 30);
    assert_eq!(tool_spans(&receiver), names(0, 30), "leftovers first, in order, once");
    assert_eq!((s.replayed, s.spill_queued, s.accepted), (23, 0, 7), "{s:#?}");
    second.shutdown();
    // Nothing is left for a third exporter.
    let third = OtlpSink::new(config(&receiver.url(), &spill.0)).expect("build");
    assert_eq!(third.stats_reader().stats().spill_recovered, 0);
}

#[test]
fn a_spill_that_can_no_longer_be_written_is_counted_not_silent() {
    let (store, base) = (TempDir::new("spill-gone-store"), TempDir::new("spill-gone"));
    let spill = base.0.join("spill");
    let mut receiver = Receiver::start();
    receiver.stop();
    let config = config(&receiver.url(), &spill).with_spill_max_bytes(64 * 1024);
    let control = control(config, &store.0);
    record(&control, 0, 10);
    wait_for(&control, "10 spans spilled", |s| s.spilled == 10 && s.queued == 0);
    // The directory goes away and a file takes its place: no new segment can be made.
    std::fs::remove_dir_all(&spill).expect("remove");
    std::fs::write(&spill, b"in the way").expect("write");
    record(&control, 10, 500);
    let s = wait_for(&control, "a failed spill write", |s| {
        s.dropped_spill_error > 0 && s.queued == 0 && s.spilled + s.dropped_spill_error >= 500
    });
    let why = s.last_error.clone().unwrap_or_default();
    assert!(why.contains("spill"), "{why}");
    assert!(!s.healthy, "{s:#?}");
    receiver.restart(UP);
    let s = wait_for(&control, "the spill emptied", |s| s.spill_queued == 0 && s.queued == 0);
    // Every span is exported or counted as lost; none vanished.
    assert_eq!(s.accepted, s.exported + s.dropped_spill_error + s.dropped_spill_full, "{s:#?}");
    assert_eq!(tool_spans(&receiver).len() as u64, s.exported, "{s:#?}");
    control.shutdown();
    let _ = std::fs::remove_file(&spill);
}

#[test]
fn spill_settings_are_checked_when_the_exporter_is_made() {
    let dir = TempDir::new("spill-settings");
    let base = || OtlpConfig::http("http://127.0.0.1:9").with_spill_dir(dir.0.join("spill"));
    for bytes in [0, 64 * 1024 - 1, (1 << 40) + 1] {
        let err = OtlpSink::new(base().with_spill_max_bytes(bytes)).expect_err("out of range");
        assert!(err.to_string().contains("spill_max_bytes"), "{bytes}: {err}");
    }
    OtlpSink::new(base().with_spill_max_bytes(64 * 1024)).expect("the smallest spill");
    // A spill directory that cannot be made: a file is in the way.
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let err = OtlpSink::new(base().with_spill_dir(file.join("spill"))).expect_err("not a dir");
    assert!(err.to_string().contains("spill_dir"), "{err}");
    // Off by default: no directory is made.
    let sink = OtlpSink::new(OtlpConfig::http("http://127.0.0.1:9")).expect("build");
    assert_eq!(sink.stats_reader().stats().spilled, 0);
}
