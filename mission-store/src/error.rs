//! Errors of the store.

use std::path::PathBuf;

/// What can go wrong writing or reading a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read, written, renamed or removed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet library refused to read or write a file.
    #[error("Parquet error in {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The library's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow refused to build or convert a batch.
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A file is not a Mission Control events file (no or foreign schema metadata).
    #[error("{path} is not a Mission Control events file: {reason}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file was written by a newer schema version than this build reads.
    #[error("{path} has schema version {found}; this build reads up to {supported}")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// A store root given as a URL cannot be used: not a URL, a scheme this build does not
    /// support (or whose feature is not built), a missing bucket, a path that is not a valid
    /// object key, an option its cloud does not know. The URL is shown without credentials.
    #[error("store root {url}: {reason}")]
    RemoteRoot {
        /// The root URL (any user name or password in it removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request to object storage failed (after the client's retries): unreachable, denied,
    /// throttled, a missing object.
    #[error("{action} {location}: {reason}")]
    Remote {
        /// What was being done.
        action: &'static str,
        /// The object or prefix, as a URL.
        location: String,
        /// The client's error (never credentials), with a hint for access denied.
        reason: String,
        /// Whether the store refused the credentials (HTTP 401/403): retrying will not help.
        denied: bool,
    },
    /// An operation that rewrites files in place runs on a local store root only.
    #[error(
        "{operation} needs a local store root; {url} is on object storage (run it where the \
         store is written, before upload, or on a local copy)"
    )]
    NeedsLocalRoot {
        /// The operation (`compaction`, `erasure`, `recovery`, …).
        operation: &'static str,
        /// The store's root URL.
        url: String,
    },
    /// A query or setting is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument or setting.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet { path: path.into(), source }
    }
}
