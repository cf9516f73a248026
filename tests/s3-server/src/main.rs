//! A loopback S3-compatible server for Mission Control's tests (issue 19).
//!
//! It is the `s3s-fs` crate (an S3 service over a directory, from crates.io) behind a small
//! command line and one correction:
//!
//! - every object is a file under `--root DIR/<bucket>/<key>`, written to a temporary name and
//!   renamed when complete, so a server killed with `kill -9` and started again on the same root
//!   keeps every object it acknowledged (and nothing half-written);
//! - with `--access-key` and `--secret-key`, every request's AWS Signature V4 is checked (a
//!   wrong key is a 403 `SignatureDoesNotMatch` / `InvalidAccessKeyId`, as on S3);
//! - `--bucket NAME` creates the bucket (a directory) at start;
//! - once the socket is bound it prints exactly one line, `listening on http://ADDR`, on stdout
//!   and flushes it, so a test started with `--addr 127.0.0.1:0` reads the port from it;
//! - s3s-fs answers `500` to a `HEAD` (or `GET`) of a key that names a "directory" (a prefix
//!   other objects live under, such as `events/tenant=a`); S3 answers `404` there, and clients
//!   (Spark's S3A, pyarrow) that probe a prefix with `HEAD` trip over a 500. This server answers
//!   `404 NoSuchKey` for those.
//!
//! # Known limits
//!
//! - s3s-fs keeps an object's metadata in a file named after the base64 of bucket and key, at
//!   the top of the root; a file name is at most 255 bytes, so keys longer than about 150 bytes
//!   cannot be written (the server answers 500). Mission Control's keys
//!   (`events/tenant=<t>/date=<d>/hour=<h>/part-<seq>-<uuid>.parquet`) are about 90 bytes
//!   for short tenant names.
//! - Path-style requests only (`http://127.0.0.1:PORT/bucket/key`); object_store uses them when
//!   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` is unset.
//! - No fsync: an acknowledged object survives the process being killed, not the machine
//!   losing power. It is a test server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::net::TcpListener;

/// A loopback S3-compatible server (s3s-fs) for tests: objects are files under --root.
#[derive(Debug, Parser)]
#[command(name = "mission-s3-server")]
struct Options {
    /// Directory that holds the buckets (created if missing); one directory per bucket.
    #[arg(long)]
    root: PathBuf,
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Access key id that requests must be signed with (with --secret-key).
    #[arg(long, requires = "secret_key")]
    access_key: Option<String>,
    /// Secret access key that requests must be signed with (with --access-key).
    #[arg(long, requires = "access_key")]
    secret_key: Option<String>,
    /// A bucket to create at start (repeatable).
    #[arg(long)]
    bucket: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let options = Options::parse();
    match run(options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mission-s3-server: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Checks a bucket name against S3's rules (3 to 63 lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit).
fn check_bucket_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let edges = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && valid_chars
        && edges(name.as_bytes().first())
        && edges(name.as_bytes().last())
    {
        Ok(())
    } else {
        Err(format!(
            "bucket name {name:?} is not valid: S3 bucket names are 3 to 63 lowercase letters, \
             digits, '-' and '.', starting and ending with a letter or digit"
        ))
    }
}

fn run(options: Options) -> Result<(), String> {
    for bucket in &options.bucket {
        check_bucket_name(bucket)?;
    }
    std::fs::create_dir_all(&options.root)
        .map_err(|e| format!("cannot create root {}: {e}", options.root.display()))?;
    for bucket in &options.bucket {
        let dir = options.root.join(bucket);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create bucket directory {}: {e}", dir.display()))?;
    }
    let root = options
        .root
        .canonicalize()
        .map_err(|e| format!("cannot resolve root {}: {e}", options.root.display()))?;
    let fs = s3s_fs::FileSystem::new(&root)
        .map_err(|e| format!("cannot serve root {}: {e:?}", root.display()))?;
    let mut builder = S3ServiceBuilder::new(fs);
    if let (Some(access), Some(secret)) = (options.access_key, options.secret_key) {
        builder.set_auth(SimpleAuth::from_single(access, secret));
    }
    let service = builder.build();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(options.addr, service, Arc::new(root)))
}

async fn serve(addr: SocketAddr, service: S3Service, root: Arc<PathBuf>) -> Result<(), String> {
    let listener =
        TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{local}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    let connections = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: say so and keep serving.
                eprintln!("mission-s3-server: accept failed: {e}");
                continue;
            }
        };
        let service = service.clone();
        let root = Arc::clone(&root);
        let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
            let service = service.clone();
            let root = Arc::clone(&root);
            async move { answer(&service, &root, request).await }
        });
        let connection = connections.serve_connection(TokioIo::new(socket), handler).into_owned();
        tokio::spawn(async move {
            // A client that hangs up mid-request is its business, not the server's.
            let _ = connection.await;
        });
    }
}

/// Answers one request through s3s-fs, turning its 500 for a `HEAD`/`GET` of a directory key
/// into S3's `404 NoSuchKey`. The request's signature has been checked by then (a 500 comes
/// after authentication), so the correction leaks nothing to an unsigned client.
async fn answer(
    service: &S3Service,
    root: &Path,
    request: Request<Incoming>,
) -> Result<HttpResponse, HttpError> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = service.call(request.map(s3s::Body::from)).await?;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && (method == Method::HEAD || method == Method::GET)
        && names_directory(root, &path)
    {
        return Ok(no_such_key(&method, &path));
    }
    Ok(response)
}

/// Whether a path-style request path (`/bucket/key`) names a directory under the root.
fn names_directory(root: &Path, path: &str) -> bool {
    let Some(decoded) = percent_decode(path) else {
        return false;
    };
    let relative = Path::new(decoded.trim_start_matches('/'));
    // Only plain names: no `..`, no root, so the check never looks outside the root.
    if !relative.components().all(|c| matches!(c, Component::Normal(_)))
        || relative.components().count() < 2
    {
        return false;
    }
    root.join(relative).is_dir()
}

/// Decodes `%XX` escapes of a URL path; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// S3's answer for a missing key: 404, with the XML error body on a `GET` (a `HEAD` has none).
fn no_such_key(method: &Method, path: &str) -> HttpResponse {
    let body = if method == Method::HEAD {
        s3s::Body::empty()
    } else {
        let resource = path.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        s3s::Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
             <Message>The specified key does not exist.</Message>\
             <Resource>{resource}</Resource></Error>"
        ))
    };
    let mut response = HttpResponse::new(body);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(check_bucket_name("mission-test").is_ok());
        assert!(check_bucket_name("a.b-c1").is_ok());
        for bad in ["ab", "Upper", "-lead", "trail-", "under_score", &"x".repeat(64)] {
            let err = check_bucket_name(bad).unwrap_err();
            assert!(err.contains("not valid"), "{bad}: {err}");
        }
    }

    #[test]
    fn percent_decoding_handles_escapes_and_rejects_malformed_ones() {
        assert_eq!(percent_decode("/b/events/tenant%3Da").as_deref(), Some("/b/events/tenant=a"));
        assert_eq!(percent_decode("/b/%zz"), None);
        assert_eq!(percent_decode("/b/%4"), None);
    }

    #[test]
    fn directory_check_stays_inside_the_root() {
        let root = std::env::temp_dir().join(format!("mission-s3-dircheck-{}", std::process::id()));
        std::fs::create_dir_all(root.join("bucket/events/tenant=a")).unwrap();
        assert!(names_directory(&root, "/bucket/events/tenant%3Da"));
        assert!(names_directory(&root, "/bucket/events/"));
        assert!(!names_directory(&root, "/bucket"), "a bucket is not a key");
        assert!(!names_directory(&root, "/bucket/../bucket/events"));
        assert!(!names_directory(&root, "/bucket/missing"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
