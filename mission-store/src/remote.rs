//! A store root on object storage: [`RemoteRoot`] (`s3://bucket/prefix`, `gs://…`, `az://…`,
//! `file:///…`), the client it builds, and the one process-wide runtime that runs the client's
//! calls for the synchronous store.
//!
//! The client is the [`object_store`] crate (the one DataFusion registers too): retries with
//! backoff, each cloud's standard credential chain. Credentials come **only** from each cloud's
//! standard environment — `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` for S3 (an S3-compatible server on
//! `http://` needs the last two); `GOOGLE_SERVICE_ACCOUNT*` for GCS; `AZURE_STORAGE_*` for
//! Azure — or from options a program sets explicitly with [`RemoteRoot::with_option`]. They
//! are never written into a URL, an error, a log line, `Debug` or `Display`.
//!
//! ```no_run
//! # #[cfg(feature = "s3")] {
//! use mission_store::{RemoteRoot, Store};
//!
//! // Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an
//! // S3-compatible server).
//! let store = Store::open("s3://observability/mission-data")?;
//! println!("{} files", store.files().len());
//!
//! // Or with settings made in code (they win over the environment).
//! let root = RemoteRoot::parse("s3://observability/mission-data")?
//!     .with_option("aws_endpoint", "http://127.0.0.1:9000")?
//!     .with_option("aws_allow_http", "true")?;
//! let store = Store::open_remote(root)?;
//! println!("{} files at {}", store.files().len(), store.root().display());
//! # }
//! # Ok::<(), mission_store::Error>(())
//! ```

use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

pub(crate) use crate::remote_url::redact_url;
use crate::{Error, Result};

/// The object storage service of a [`RemoteRoot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `s3://bucket/prefix` (also `s3a://`): Amazon S3 or an S3-compatible server (feature `s3`).
    S3,
    /// `gs://bucket/prefix`: Google Cloud Storage (feature `gcs`).
    Gcs,
    /// `az://container/prefix`: Azure Blob Storage (feature `azure`).
    Azure,
    /// `file:///absolute/path`: a local directory through the same object interface.
    File,
}

impl Scheme {
    /// The feature of `mission-store` that builds support for it.
    pub fn feature(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gcs",
            Scheme::Azure => "azure",
            Scheme::File => "object-store",
        }
    }

    fn built(self) -> bool {
        match self {
            Scheme::S3 => cfg!(feature = "s3"),
            Scheme::Gcs => cfg!(feature = "gcs"),
            Scheme::Azure => cfg!(feature = "azure"),
            Scheme::File => true,
        }
    }
}

/// A store root on object storage: where (scheme, bucket, prefix) and how to reach it.
///
/// Parsing checks the URL and that this build supports its scheme; the client is built on
/// first use (once, shared by clones), from the cloud's standard environment plus the options
/// set with [`with_option`](Self::with_option). `Display` is the URL; `Debug` shows the URL and
/// the names of the options set, never their values.
#[derive(Clone)]
pub struct RemoteRoot {
    url: String,
    scheme: Scheme,
    bucket: String,
    prefix: ObjectPath,
    options: Vec<(String, String)>,
    store: Arc<OnceLock<Arc<dyn ObjectStore>>>,
}

impl std::fmt::Display for RemoteRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl std::fmt::Debug for RemoteRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("RemoteRoot")
            .field("url", &self.url)
            .field("options", &keys)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RemoteRoot {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for RemoteRoot {}

impl RemoteRoot {
    /// Parses a root URL: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
    /// or `file:///absolute/path` (the prefix may be empty).
    ///
    /// # Errors
    /// [`Error::RemoteRoot`] naming the URL (without credentials) and what is wrong: not a URL,
    /// another scheme, a scheme whose feature this build lacks, no bucket, credentials or a
    /// query in the URL, a path that is not a valid object key.
    pub fn parse(url: &str) -> Result<Self> {
        let shown = redact_url(url);
        let bad = |reason: String| Error::RemoteRoot { url: shown.clone(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        let scheme = match parsed.scheme() {
            "s3" | "s3a" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" => Scheme::Azure,
            "file" => Scheme::File,
            other => {
                return Err(bad(format!(
                    "scheme {other:?} is not supported (use s3://, gs://, az:// or file://)"
                )));
            }
        };
        if !scheme.built() {
            return Err(bad(format!(
                "this build has no {scheme:?} support (build mission-store with the `{}` feature)",
                scheme.feature()
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are not accepted (they would end up in \
                            logs); set them in the cloud's standard environment"
                .into()));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a query or fragment is not supported in a store root".into()));
        }
        let (bucket, prefix_text) = if scheme == Scheme::File {
            if parsed.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(
                    bad("a file:// root names a local path (file:///absolute/path)".into()),
                );
            }
            let path =
                parsed.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
            let text = path.to_str().ok_or_else(|| bad("the path is not UTF-8".into()))?;
            (String::new(), text.trim_matches('/').to_owned())
        } else {
            let bucket = parsed.host_str().unwrap_or("").to_owned();
            if bucket.is_empty() {
                return Err(bad("no bucket (expected scheme://bucket/prefix)".into()));
            }
            let path = parsed.path();
            let decoded = percent_decode(path).ok_or_else(|| bad("malformed %-escape".into()))?;
            (bucket, decoded.trim_matches('/').to_owned())
        };
        let prefix = ObjectPath::parse(&prefix_text)
            .map_err(|e| bad(format!("the prefix is not a valid object key: {e}")))?;
        let mut normalized = format!("{}://{bucket}", parsed.scheme());
        if scheme == Scheme::File {
            normalized.push('/');
        }
        if !prefix_text.is_empty() {
            if scheme != Scheme::File {
                normalized.push('/');
            }
            normalized.push_str(&prefix_text);
        }
        Ok(Self {
            url: normalized,
            scheme,
            bucket,
            prefix,
            options: Vec::new(),
            store: Arc::new(OnceLock::new()),
        })
    }

    /// Sets one client option by its object_store name (`aws_endpoint`, `aws_access_key_id`,
    /// `aws_allow_http`, `aws_region`, `google_service_account`, `azure_storage_account_name`,
    /// …); it wins over the environment. The value is never shown (`Debug` lists only names).
    ///
    /// # Errors
    /// [`Error::RemoteRoot`] for a name the scheme's client does not know, or a `file://`
    /// root (which has no options).
    pub fn with_option(mut self, key: &str, value: impl Into<String>) -> Result<Self> {
        let known = match self.scheme {
            #[cfg(feature = "s3")]
            Scheme::S3 => key.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok(),
            #[cfg(feature = "gcs")]
            Scheme::Gcs => key.parse::<object_store::gcp::GoogleConfigKey>().is_ok(),
            #[cfg(feature = "azure")]
            Scheme::Azure => key.parse::<object_store::azure::AzureConfigKey>().is_ok(),
            _ => false,
        };
        if !known {
            return Err(Error::RemoteRoot {
                url: self.url.clone(),
                reason: format!("{key:?} is not an option of the {:?} client", self.scheme),
            });
        }
        self.options.push((key.to_owned(), value.into()));
        self.store = Arc::new(OnceLock::new());
        Ok(self)
    }

    /// Uses `store` as the client instead of building one (a store the program configured
    /// itself, a test double, a wrapper that counts or throttles).
    pub fn with_object_store(mut self, store: Arc<dyn ObjectStore>) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(store);
        self.store = Arc::new(cell);
        self
    }

    /// The root as a URL (`s3://bucket/prefix`), without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The service.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket (S3, GCS) or container (Azure); empty for `file://`.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix of the store's objects (`mission-data` for `s3://b/mission-data`).
    pub fn prefix(&self) -> &ObjectPath {
        &self.prefix
    }

    /// The root as a path-like value for the parts of the store that name files by path
    /// ([`StoreFile::path`](crate::StoreFile::path), skipped-file reports): the URL.
    pub(crate) fn root_path(&self) -> PathBuf {
        PathBuf::from(&self.url)
    }

    /// The key of `relative` (`events/tenant=a/…`) under the prefix.
    pub(crate) fn key(&self, relative: &str) -> Result<ObjectPath> {
        let full = if self.prefix.as_ref().is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix.as_ref())
        };
        ObjectPath::parse(&full).map_err(|e| Error::RemoteRoot {
            url: self.url.clone(),
            reason: format!("{relative:?} is not a valid object key: {e}"),
        })
    }

    /// A key relative to the prefix (`None` if it is not under it).
    pub(crate) fn relative<'a>(&self, key: &'a ObjectPath) -> Option<&'a str> {
        let key = key.as_ref();
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(prefix)?.strip_prefix('/')
    }

    /// The URL of an object, for messages.
    pub(crate) fn location(&self, key: &ObjectPath) -> String {
        match self.scheme {
            Scheme::File => format!("file:///{}", key.as_ref()),
            _ => {
                format!("{}://{}/{}", self.url.split("://").next().unwrap_or(""), self.bucket, key)
            }
        }
    }

    /// The client, built on first use.
    ///
    /// # Errors
    /// [`Error::RemoteRoot`] if the cloud's builder refuses the configuration (a missing
    /// region, a malformed endpoint, …).
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>> {
        if let Some(store) = self.store.get() {
            return Ok(Arc::clone(store));
        }
        let built = self.build()?;
        Ok(Arc::clone(self.store.get_or_init(|| built)))
    }

    fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        #[cfg_attr(
            not(any(feature = "s3", feature = "gcs", feature = "azure")),
            allow(unused_variables)
        )]
        let refused = |e: object_store::Error| Error::RemoteRoot {
            url: self.url.clone(),
            reason: format!("cannot configure the client: {e}"),
        };
        match self.scheme {
            #[cfg(feature = "s3")]
            Scheme::S3 => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&self.bucket)
                    .with_retry(retry_config());
                for (key, value) in &self.options {
                    if let Ok(key) = key.parse() {
                        builder = builder.with_config(key, value);
                    }
                }
                Ok(Arc::new(builder.build().map_err(refused)?))
            }
            #[cfg(feature = "gcs")]
            Scheme::Gcs => {
                let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&self.bucket)
                    .with_retry(retry_config());
                for (key, value) in &self.options {
                    if let Ok(key) = key.parse() {
                        builder = builder.with_config(key, value);
                    }
                }
                Ok(Arc::new(builder.build().map_err(refused)?))
            }
            #[cfg(feature = "azure")]
            Scheme::Azure => {
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&self.bucket)
                    .with_retry(retry_config());
                for (key, value) in &self.options {
                    if let Ok(key) = key.parse() {
                        builder = builder.with_config(key, value);
                    }
                }
                Ok(Arc::new(builder.build().map_err(refused)?))
            }
            Scheme::File => Ok(Arc::new(object_store::local::LocalFileSystem::new())),
            #[allow(unreachable_patterns)]
            _ => Err(Error::RemoteRoot {
                url: self.url.clone(),
                reason: format!("this build has no {:?} support", self.scheme),
            }),
        }
    }

    /// Lists every object under `relative` (a directory-like prefix such as `events/` or
    /// `events/tenant=a/`), in key order.
    pub(crate) fn list(&self, relative: &str) -> Result<Vec<ObjectMeta>> {
        let store = self.object_store()?;
        let prefix = self.key(relative.trim_end_matches('/'))?;
        let location = self.location(&prefix);
        let listed =
            block_on(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await })?;
        let mut objects = match listed {
            Ok(objects) => objects,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(remote_error("list", location, &e)),
        };
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// Reads a whole (small) object: `None` if it does not exist.
    pub(crate) fn read_small(&self, key: &ObjectPath) -> Result<Option<Bytes>> {
        let store = self.object_store()?;
        let location = self.location(key);
        let key = key.clone();
        match block_on(async move { store.get(&key).await?.bytes().await })? {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote_error("read", location, &e)),
        }
    }

    /// Downloads a whole object into the local file `to`.
    pub(crate) fn download(&self, key: &ObjectPath, to: &std::path::Path) -> Result<()> {
        let store = self.object_store()?;
        let location = self.location(key);
        let key = key.clone();
        let bytes = block_on(async move { store.get(&key).await?.bytes().await })?
            .map_err(|e| remote_error("download", location, &e))?;
        std::fs::write(to, &bytes).map_err(|e| Error::io("write", to, e))
    }

    /// Puts the local file `from` at `key` (one `PUT`: the object is replaced atomically).
    pub(crate) fn upload_file(&self, key: &ObjectPath, from: &std::path::Path) -> Result<()> {
        self.put(key, std::fs::read(from).map_err(|e| Error::io("read", from, e))?)
    }

    /// Puts `bytes` at `key` (one `PUT`: the object appears, or is replaced, atomically).
    pub(crate) fn put(&self, key: &ObjectPath, bytes: Vec<u8>) -> Result<()> {
        let store = self.object_store()?;
        let location = self.location(key);
        let key = key.clone();
        block_on(async move { store.put(&key, object_store::PutPayload::from(bytes)).await })?
            .map(|_| ())
            .map_err(|e| remote_error("upload", location, &e))
    }

    /// Deletes objects (a missing one is not an error).
    pub(crate) fn delete(&self, keys: Vec<ObjectPath>) -> Result<()> {
        let store = self.object_store()?;
        for key in keys {
            let location = self.location(&key);
            let store = Arc::clone(&store);
            match block_on(async move { store.delete(&key).await })? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote_error("delete", location, &e)),
            }
        }
        Ok(())
    }
}

/// Retries: a few, within a minute (object_store's default waits up to 3 minutes, which
/// turns an unreachable bucket into a long hang for a command-line query).
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 4,
        retry_timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    }
}

/// Decodes `%XX` escapes; `None` for a malformed one or non-UTF-8 text.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The store's error for a failed request: denied credentials said so, with where they come
/// from (never their values).
pub(crate) fn remote_error(
    action: &'static str,
    location: String,
    e: &object_store::Error,
) -> Error {
    let mut reason = e.to_string();
    // object_store maps 401/403 to these variants for single-object requests; a listing's
    // failure arrives as a generic error carrying the HTTP status and the service's code.
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "403 Forbidden",
        "401 Unauthorized",
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    ]
    .iter()
    .any(|needle| reason.contains(needle));
    if denied {
        reason.push_str(
            " (access denied: check the credentials in the cloud's environment, e.g. \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        );
    }
    Error::Remote { action, location, reason, denied }
}

/// Bytes fetched from object storage by this process so far (every ranged GET of every
/// store): what a test or a benchmark compares to tell how much a query downloaded.
pub fn bytes_fetched() -> u64 {
    FETCHED.load(Ordering::Relaxed)
}

/// Ranged GETs made by this process so far.
pub fn requests() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

/// Fetched pieces dropped from an open object's bounded cache (at most 64 MiB
/// per object) before its reader was done with them, so far: a read of them fetches again.
/// Non-zero only for row groups whose read columns together pass 64 MiB.
pub fn cache_evictions() -> u64 {
    EVICTED.load(Ordering::Relaxed)
}

static EVICTED: AtomicU64 = AtomicU64::new(0);
static FETCHED: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The process-wide runtime that runs object_store's calls for the synchronous store: two
/// worker threads, started on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mission-object-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Remote {
            action: "start",
            location: "the object storage runtime".into(),
            reason: e.clone(),
            denied: false,
        })
}

/// Runs `future` on the process-wide runtime and waits for it. It is spawned there and
/// awaited through a channel, so this works from any thread, including one of another
/// runtime (where `block_on` would panic).
pub(crate) fn block_on<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T> {
    let runtime = runtime()?;
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv().map_err(|_| Error::Remote {
        action: "run",
        location: "the object storage runtime".into(),
        reason: "the request's task stopped before answering".into(),
        denied: false,
    })
}

/// The largest single GET: a column chunk bigger than this is fetched in pieces.
const MAX_FETCH: u64 = 8 * 1024 * 1024;
/// Most bytes an open object keeps fetched (the column chunks being decoded); older pieces
/// are dropped first and fetched again if needed.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Piece size for sequential reads outside known column chunks.
const READ_PIECE: u64 = 64 * 1024;

/// One object opened for reading: ranged GETs, the file's column chunk boundaries once its
/// footer is known (so a read inside a chunk fetches the rest of that chunk at once and no
/// byte of a column the query does not read), and a small bounded cache of what was fetched.
#[derive(Clone)]
pub(crate) struct RemoteObject(Arc<ObjectInner>);

struct ObjectInner {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    location: String,
    size: u64,
    chunks: OnceLock<Vec<Range<u64>>>,
    cache: Mutex<Vec<(u64, Bytes)>>,
    fetched: Arc<AtomicU64>,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteObject")
            .field("location", &self.0.location)
            .field("size", &self.0.size)
            .finish()
    }
}

impl RemoteObject {
    /// Opens `key` (of `size` bytes, from a listing) and fetches its end (the footer).
    /// `fetched` counts the bytes downloaded.
    pub(crate) fn open(
        root: &RemoteRoot,
        key: ObjectPath,
        size: u64,
        fetched: Arc<AtomicU64>,
    ) -> Result<Self> {
        let object = Self(Arc::new(ObjectInner {
            store: root.object_store()?,
            location: root.location(&key),
            key,
            size,
            chunks: OnceLock::new(),
            cache: Mutex::new(Vec::new()),
            fetched,
        }));
        // The footer: its last 8 bytes (the metadata's length and the magic), then exactly
        // the metadata. Two small GETs, and not one byte of a column chunk.
        let tail = size.saturating_sub(8)..size;
        let fetched = object.fetch_exact(tail.clone()).and_then(|tail_bytes| {
            let length = tail_bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            match length.map(u64::from) {
                // A damaged length is parquet's to report, when it reads the footer.
                Some(length) if length <= tail.start => {
                    object.fetch_exact(tail.start - length..tail.start).map(|_| ())
                }
                _ => Ok(()),
            }
        });
        fetched.map_err(|e| match e {
            // Gone since the listing (retention, another reader's delete): the same error a
            // local file that vanished gives, so callers treat both alike.
            FetchError::Store(object_store::Error::NotFound { .. }) => Error::io(
                "open",
                &object.0.location,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            ),
            FetchError::Store(e) => remote_error("read", object.0.location.clone(), &e),
            FetchError::Runtime(e) => e,
        })?;
        Ok(object)
    }

    pub(crate) fn size(&self) -> u64 {
        self.0.size
    }

    /// Tells the object its column chunks' byte ranges (from its footer).
    pub(crate) fn learn_layout(&self, metadata: &parquet::file::metadata::ParquetMetaData) {
        let mut chunks: Vec<Range<u64>> = metadata
            .row_groups()
            .iter()
            .flat_map(|g| g.columns().iter())
            .map(|c| {
                let (start, len) = c.byte_range();
                start..start.saturating_add(len)
            })
            .collect();
        chunks.sort_by_key(|r| r.start);
        let _ = self.0.chunks.set(chunks);
    }

    /// The bytes `range`, from the cache or one GET; a GET for a range inside a known column
    /// chunk fetches up to that chunk's end (at most [`MAX_FETCH`]).
    pub(crate) fn bytes(&self, range: Range<u64>) -> parquet::errors::Result<Bytes> {
        if let Some(hit) = self.cached(&range) {
            return Ok(hit);
        }
        let mut end = range.end;
        if let Some(chunk) = self.0.chunks.get().and_then(|chunks| {
            chunks.iter().find(|c| c.start <= range.start && range.start < c.end)
        }) {
            end = end.max(chunk.end.min(range.start.saturating_add(MAX_FETCH)));
        }
        let fetch = range.start..end.min(self.0.size).max(range.end);
        let fetched = self.fetch_exact(fetch.clone()).map_err(|e| {
            parquet::errors::ParquetError::External(Box::new(match e {
                FetchError::Store(e) => remote_error("read", self.0.location.clone(), &e),
                FetchError::Runtime(e) => e,
            }))
        })?;
        let len = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        Ok(fetched.slice(0..len.min(fetched.len())))
    }

    /// Where a sequential read from `at` should stop its next fetch: the end of the column
    /// chunk it is in (at most [`MAX_FETCH`] on), else [`READ_PIECE`] (or `wanted`) on, never
    /// past the object's end.
    fn piece_end(&self, at: u64, wanted: u64) -> u64 {
        let chunk = self
            .0
            .chunks
            .get()
            .and_then(|chunks| chunks.iter().find(|c| c.start <= at && at < c.end));
        let end = match chunk {
            Some(chunk) => chunk.end.min(at.saturating_add(MAX_FETCH)),
            None => at.saturating_add(READ_PIECE.max(wanted)),
        };
        end.min(self.0.size)
    }

    /// Fetches `ranges` (the column chunks a reader is about to read) at once: object_store
    /// merges adjacent ranges into one GET and runs the rest in parallel, so reading a row
    /// group costs one or a few requests instead of one per column. Skipped when they would
    /// not fit the cache; a failure is left for the read itself to report.
    pub(crate) fn prefetch(&self, mut ranges: Vec<Range<u64>>) {
        ranges.retain(|r| !r.is_empty() && r.end <= self.0.size && self.cached(r).is_none());
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        if ranges.is_empty() || total > CACHE_BYTES as u64 / 2 {
            return;
        }
        let store = Arc::clone(&self.0.store);
        let key = self.0.key.clone();
        let wanted = ranges.clone();
        let Ok(Ok(fetched)) = block_on(async move { store.get_ranges(&key, &wanted).await }) else {
            return;
        };
        let mut cache = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (range, bytes) in ranges.iter().zip(fetched) {
            self.0.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            FETCHED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            cache.push((range.start, bytes));
        }
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        let mut total: usize = cache.iter().map(|(_, b)| b.len()).sum();
        while total > CACHE_BYTES && cache.len() > 1 {
            total -= cache.remove(0).1.len();
            EVICTED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn cached(&self, range: &Range<u64>) -> Option<Bytes> {
        let cache = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.iter().rev().find_map(|(start, bytes)| {
            let end = start + bytes.len() as u64;
            (*start <= range.start && range.end <= end)
                .then(|| bytes.slice((range.start - start) as usize..(range.end - start) as usize))
        })
    }

    fn fetch_exact(&self, range: Range<u64>) -> std::result::Result<Bytes, FetchError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let store = Arc::clone(&self.0.store);
        let key = self.0.key.clone();
        let wanted = range.clone();
        let bytes = block_on(async move { store.get_range(&key, wanted).await })
            .map_err(FetchError::Runtime)?
            .map_err(FetchError::Store)?;
        self.0.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        FETCHED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        let mut cache = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.push((range.start, bytes.clone()));
        let mut total: usize = cache.iter().map(|(_, b)| b.len()).sum();
        while total > CACHE_BYTES && cache.len() > 1 {
            total -= cache.remove(0).1.len();
            EVICTED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// A sequential reader from `start` to the end, fetching as it goes.
    pub(crate) fn reader(&self, start: u64) -> RemoteRead {
        RemoteRead { object: self.clone(), at: start, pending: Bytes::new() }
    }
}

enum FetchError {
    Store(object_store::Error),
    Runtime(Error),
}

/// [`RemoteObject::reader`]: reads from a position on, one fetch at a time.
pub(crate) struct RemoteRead {
    object: RemoteObject,
    at: u64,
    pending: Bytes,
}

impl std::io::Read for RemoteRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            let size = self.object.size();
            if self.at >= size || buf.is_empty() {
                return Ok(0);
            }
            let end = self.object.piece_end(self.at, buf.len() as u64);
            self.pending = self.object.bytes(self.at..end).map_err(std::io::Error::other)?;
            self.at += self.pending.len() as u64;
            if self.pending.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        let _ = self.pending.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_scheme_bucket_and_prefix() {
        let root = RemoteRoot::parse("file:///tmp/mission/data/").unwrap();
        assert_eq!(
            (root.scheme(), root.bucket(), root.prefix().as_ref()),
            (Scheme::File, "", "tmp/mission/data")
        );
        assert_eq!(root.url(), "file:///tmp/mission/data");
        assert_eq!(
            root.key("events/x.parquet").unwrap().as_ref(),
            "tmp/mission/data/events/x.parquet"
        );
        #[cfg(feature = "s3")]
        {
            let root = RemoteRoot::parse("s3://bucket/some/prefix/").unwrap();
            assert_eq!(
                (root.scheme(), root.bucket(), root.prefix().as_ref()),
                (Scheme::S3, "bucket", "some/prefix")
            );
            assert_eq!(root.to_string(), "s3://bucket/some/prefix");
            let key = root.key("events/tenant=a%20b/x.parquet").unwrap();
            assert_eq!(root.relative(&key), Some("events/tenant=a%20b/x.parquet"));
            let bare = RemoteRoot::parse("s3://bucket").unwrap();
            assert_eq!(bare.key("events").unwrap().as_ref(), "events");
        }
    }

    #[test]
    fn bad_urls_are_typed_errors_naming_the_url_without_credentials() {
        for (url, wanted) in [
            ("ftp://host/x", "not supported"),
            ("not a url", "not a URL"),
            ("file://host/x", "local path"),
        ] {
            let err = RemoteRoot::parse(url).unwrap_err().to_string();
            assert!(err.contains(wanted), "{url}: {err}");
        }
        #[cfg(feature = "s3")]
        {
            let err = RemoteRoot::parse("s3://AKIA:hunter2@bucket/x").unwrap_err().to_string();
            assert!(err.contains("credentials in the URL") && !err.contains("hunter2"), "{err}");
            let err = RemoteRoot::parse("s3:///x").unwrap_err().to_string();
            assert!(err.contains("no bucket"), "{err}");
            let err = RemoteRoot::parse("s3://b/x?versionId=1").unwrap_err().to_string();
            assert!(err.contains("query"), "{err}");
            let err = RemoteRoot::parse("s3://b/x/../y").map(|r| r.url().to_owned());
            // url normalizes `..` away; what remains must be a valid key.
            assert!(err.is_ok_and(|u| u == "s3://b/y"));
            let root = RemoteRoot::parse("s3://b/x").unwrap();
            let err = root.clone().with_option("aws_not_a_thing", "1").unwrap_err().to_string();
            assert!(err.contains("aws_not_a_thing"), "{err}");
            let with = root.with_option("aws_secret_access_key", "hunter2").unwrap();
            let shown = format!("{with:?} {with}");
            assert!(
                !shown.contains("hunter2") && shown.contains("aws_secret_access_key"),
                "{shown}"
            );
        }
        #[cfg(not(feature = "gcs"))]
        {
            let err = RemoteRoot::parse("gs://b/x").unwrap_err().to_string();
            assert!(err.contains("`gcs` feature"), "{err}");
        }
    }
}
