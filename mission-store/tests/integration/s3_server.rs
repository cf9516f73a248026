//! The loopback S3 server of the object-storage tests: `mission-s3-server` (tests/s3-server,
//! s3s-fs from crates.io) started on a free port with a temporary root, SigV4 keys and one
//! bucket, killed when dropped. Self-contained (std and mission-store only), so another test
//! crate can include it with `#[path]`.
//!
//! The binary is `$MISSION_S3_SERVER` (scripts/test sets it), else `mission-s3-server` beside
//! the test binary's target directory (`<target>/debug/`). A test that cannot find it fails
//! with a message saying how to build it: it never skips silently.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mission_store::RemoteRoot;

/// Access key id the server checks.
pub const ACCESS_KEY: &str = "mission-test-access";
/// Secret key the server checks.
pub const SECRET_KEY: &str = "mission-test-secret-0123456789";

/// A running `mission-s3-server`.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where its objects live (`<root>/<bucket>/<key>`).
    pub root: PathBuf,
    /// The bucket created at start.
    pub bucket: String,
    owns_root: bool,
}

/// The server binary: `$MISSION_S3_SERVER`, else `<target>/debug/mission-s3-server`.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MISSION_S3_SERVER") {
        return PathBuf::from(path);
    }
    // The test binary is <target>/debug/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe.parent().and_then(Path::parent).expect("<target>/debug");
    debug.join("mission-s3-server")
}

impl S3Server {
    /// Starts a server with a fresh temporary root and `bucket`.
    pub fn start(bucket: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "mission-s3-{}-{}",
            std::process::id(),
            mission_core::Timestamp::now().0
        ));
        let mut server = Self::start_on(&root, bucket);
        server.owns_root = true;
        server
    }

    /// Starts a server on an existing root (objects written by an earlier server stay).
    pub fn start_on(root: &Path, bucket: &str) -> Self {
        Self::start_at(root, bucket, "127.0.0.1:0")
    }

    /// Starts a server on an existing root at `addr` (`127.0.0.1:PORT`: the same address as a
    /// killed server, so clients configured for it reach the new one).
    pub fn start_at(root: &Path, bucket: &str, addr: &str) -> Self {
        let binary = server_binary();
        assert!(
            binary.is_file(),
            "the loopback S3 server is not built: {} does not exist. Build it with \
             `cargo build -p mission-s3-server` (scripts/test does) or set MISSION_S3_SERVER \
             to its path",
            binary.display()
        );
        let mut child = Command::new(&binary)
            .args(["--root"])
            .arg(root)
            .args(["--addr", addr, "--bucket", bucket])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        // Explicit wait with a deadline (a debug build on a busy core can be slow to start).
        let line = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("{} printed no 'listening on' line within 60 s", binary.display());
            }
        };
        let Some(endpoint) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!("{} did not start: {line:?} (exit: {status:?})", binary.display());
        };
        Self {
            child,
            endpoint: endpoint.to_owned(),
            root: root.to_path_buf(),
            bucket: bucket.to_owned(),
            owns_root: false,
        }
    }

    /// The store root `s3://<bucket>/<prefix>` on this server, with its endpoint and keys set
    /// explicitly (no process environment: tests run in parallel).
    #[allow(dead_code)]
    pub fn remote_root(&self, prefix: &str) -> RemoteRoot {
        self.remote_root_with_keys(prefix, ACCESS_KEY, SECRET_KEY)
    }

    /// [`remote_root`](Self::remote_root) signing with other keys.
    #[allow(dead_code)]
    pub fn remote_root_with_keys(&self, prefix: &str, access: &str, secret: &str) -> RemoteRoot {
        let url = format!("s3://{}/{prefix}", self.bucket);
        RemoteRoot::parse(&url)
            .and_then(|r| r.with_option("aws_endpoint", &self.endpoint))
            .and_then(|r| r.with_option("aws_allow_http", "true"))
            .and_then(|r| r.with_option("aws_region", "us-east-1"))
            .and_then(|r| r.with_option("aws_access_key_id", access))
            .and_then(|r| r.with_option("aws_secret_access_key", secret))
            .expect("remote root")
    }

    /// The environment a child process (mission-ctl) needs to reach this server.
    #[allow(dead_code)]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }

    /// Kills the server at once (SIGKILL), keeping its root.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
        if self.owns_root {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
