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
}

/// The result type of the servers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
