//! Errors of the SDK.

use std::path::PathBuf;

/// What can go wrong building or running Mission Control.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file or value is invalid.
    #[error("invalid configuration in {origin}: {message}")]
    Config {
        /// The file or environment variable.
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
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] mission_store::Error),
    /// The pipeline thread could not be started.
    #[error(transparent)]
    Start(#[from] mission_core::StartError),
    /// A server (MCP over HTTP) could not start, or its settings were refused.
    #[error("cannot serve on {addr}: {message}")]
    Serve {
        /// The address asked for.
        addr: String,
        /// Why not.
        message: String,
    },
    /// The operating system refused a server its socket, runtime or thread (the address is in use,
    /// no permission).
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file the SDK wrote for itself (the in-flight spans) is not what it wrote: damaged, or
    /// written by something else.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the JSON parser found.
        #[source]
        source: serde_json::Error,
    },
    /// A directive could not be loaded or applied (an unknown preset, a duplicate name).
    #[error(transparent)]
    Directive(mission_govern::directives::DirectiveError),
    /// An exporter could not be built.
    #[error(transparent)]
    Export(mission_export::Error),
    /// A score was refused (a value that is not finite, an empty name, an unknown source).
    #[error(transparent)]
    Score(#[from] mission_core::InvalidScore),
    /// An artefact or relation registration was refused (a malformed kind, id or label).
    #[error(transparent)]
    Artefact(#[from] mission_core::artefacts::InvalidArtefact),
    /// A flush did not complete.
    #[error(transparent)]
    Flush(#[from] mission_core::FlushError),
    /// The audit trail could not be opened or appended to.
    #[error(transparent)]
    Audit(#[from] mission_govern::audit::AuditError),
    /// Governance failed otherwise (e.g. data erased but its audit record not written).
    #[error(transparent)]
    Govern(mission_govern::Error),
    /// A hard budget is used up: the guard refused a new call (see
    /// [`Thread::try_llm_call`](crate::Thread::try_llm_call)).
    #[error(
        "thread {thread_id} is over budget: {resource} used {used} of {limit} (the budget of thread {owner_id})"
    )]
    BudgetExceeded {
        /// The thread that asked.
        thread_id: String,
        /// The thread whose budget it is (itself or an ancestor).
        owner_id: String,
        /// Which limit: `turns`, `tokens`, `cost_usd`, `wall_time_s`, `context_tokens`.
        resource: &'static str,
        /// What was used.
        used: f64,
        /// The limit.
        limit: f64,
    },
    /// The thread (or an ancestor) was cancelled or is paused: the guard refused a new call.
    #[error("thread {thread_id} must stop: {reason}")]
    ThreadStopped {
        /// The thread that asked.
        thread_id: String,
        /// Who stopped it and why.
        reason: String,
    },
    /// A thread of this instance could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<mission_govern::Error> for Error {
    fn from(e: mission_govern::Error) -> Self {
        match e {
            mission_govern::Error::Config { origin, message } => Error::Config { origin, message },
            mission_govern::Error::Io { path, source } => Error::Io { path, source },
            mission_govern::Error::Store(e) => Error::Store(e),
            mission_govern::Error::Audit(e) => Error::Audit(e),
            other => Error::Govern(other),
        }
    }
}

impl From<mission_govern::directives::DirectiveError> for Error {
    fn from(e: mission_govern::directives::DirectiveError) -> Self {
        use mission_govern::directives::DirectiveError;
        match e {
            DirectiveError::Io { path, source } => Error::Io { path, source },
            DirectiveError::Invalid { origin, message } => Error::Config { origin, message },
            other => Error::Directive(other),
        }
    }
}

impl From<mission_export::Error> for Error {
    fn from(e: mission_export::Error) -> Self {
        match e {
            mission_export::Error::Config { origin, message } => Error::Config { origin, message },
            mission_export::Error::Start { what, source } => Error::Spawn { what, source },
            other => Error::Export(other),
        }
    }
}

#[cfg(any(feature = "mcp", feature = "dashboard", feature = "otlp-receiver"))]
impl From<mission_serve::Error> for Error {
    fn from(e: mission_serve::Error) -> Self {
        match e {
            mission_serve::Error::Serve { addr, message } => Error::Serve { addr, message },
            mission_serve::Error::Bind { addr, source } => Error::Bind { addr, source },
            other => Error::Serve { addr: String::new(), message: other.to_string() },
        }
    }
}
