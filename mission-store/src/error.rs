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
