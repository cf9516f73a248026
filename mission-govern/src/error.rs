//! The errors of governance: loading policies, redaction rules and compliance packs, erasing.

use std::path::PathBuf;

/// What can go wrong loading governance settings or erasing data. Directives have their own
/// error, [`DirectiveError`](crate::directives::DirectiveError); the audit trail its
/// [`AuditError`](crate::audit::AuditError).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or value is invalid.
    #[error("invalid configuration in {origin}: {message}")]
    Config {
        /// The file, setting or operation.
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be read or rewritten.
    #[error(transparent)]
    Store(#[from] mission_store::Error),
    /// The audit trail could not be opened or appended to.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// Events were erased, but the audit record of the erasure could not be appended.
    #[error("{events} events were erased, but the audit record failed: {source}")]
    ErasedUnaudited {
        /// The events erased.
        events: u64,
        /// Why the record failed.
        #[source]
        source: crate::audit::AuditError,
    },
}

/// The result type of governance.
pub type Result<T, E = Error> = std::result::Result<T, E>;
