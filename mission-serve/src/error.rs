//! The error of the servers.

/// What can go wrong starting a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A server could not start, or its settings were refused (no token on a public address,
    /// a short token, an address that cannot be bound).
    #[error("cannot serve on {addr}: {message}")]
    Serve {
        /// The address asked for.
        addr: String,
        /// Why not.
        message: String,
    },
    /// The operating system refused a server its socket, runtime or thread (the address is in use,
    /// no permission, out of file descriptors).
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of the servers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
