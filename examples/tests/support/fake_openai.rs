//! A fake OpenAI Chat Completions server on loopback for the tests: plain HTTP/1.1 on a thread
//! of its own, one request per connection (`Connection: close`). Every chat answer carries the
//! same known usage (the one bindings/python/tests/fake_llm.py answers with), so a test can
//! assert exact tokens and cost:
//! - the answer names the dated snapshot of the model asked for (`gpt-4o-mini` →
//!   `gpt-4o-mini-2024-07-18`), or the model itself;
//! - a model named `fail-400` gets a 400 with OpenAI's error body (400 is not retried by the
//!   clients, so one request is one call);
//! - every request is kept as (path, JSON body) in [`FakeOpenAi::requests`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Input tokens of every answer, of which [`CACHED`] were read from the provider's cache.
pub const INPUT: u32 = 812;
/// Cached input tokens of every answer.
pub const CACHED: u32 = 512;
/// Output tokens of every answer, of which [`REASONING`] were reasoning.
pub const OUTPUT: u32 = 64;
/// Reasoning tokens of every answer.
pub const REASONING: u32 = 16;
/// The snapshot that answers for `gpt-4o-mini`.
pub const GPT_4O_MINI_SNAPSHOT: &str = "gpt-4o-mini-2024-07-18";

/// Largest request body the fake reads (bytes).
const MAX_BODY: usize = 1 << 20;

/// What was asked: (path, JSON body).
type Requests = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// The running server; stops when dropped.
pub struct FakeOpenAi {
    /// `http://127.0.0.1:PORT/v1`, the base URL a client is given.
    pub base_url: String,
    requests: Requests,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FakeOpenAi {
    /// Starts the server on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let requests = Requests::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &requests);
                    }
                }
            })
        };
        Self { base_url: format!("http://{addr}/v1"), requests, stop, addr, thread: Some(thread) }
    }

    /// Every request so far, as (path, JSON body).
    pub fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from `stream` and answers it.
fn serve(stream: TcpStream, requests: &Requests) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0).min(MAX_BODY);
                }
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Ok(mut r) = requests.lock() {
        r.push((path.clone(), json.clone()));
    }
    let (status, answer) = respond(&path, &json);
    let payload = answer.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        payload.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(payload.as_bytes()));
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// The status line's code and reason, and the JSON answer.
fn respond(path: &str, body: &serde_json::Value) -> (&'static str, serde_json::Value) {
    let model = body["model"].as_str().unwrap_or("");
    if path != "/v1/chat/completions" {
        return ("404 Not Found", error("unknown path", "invalid_request_error", "not_found"));
    }
    if model == "fail-400" {
        return (
            "400 Bad Request",
            error(
                "The model `fail-400` does not exist",
                "invalid_request_error",
                "model_not_found",
            ),
        );
    }
    let answered_by = if model == "gpt-4o-mini" { GPT_4O_MINI_SNAPSHOT } else { model };
    let answer = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": answered_by,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Sunny in Paris."},
            "finish_reason": "stop",
            "logprobs": null,
        }],
        "usage": {
            "prompt_tokens": INPUT,
            "completion_tokens": OUTPUT,
            "total_tokens": INPUT + OUTPUT,
            "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": REASONING, "audio_tokens": 0},
        },
    });
    ("200 OK", answer)
}

fn error(message: &str, kind: &str, code: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}
