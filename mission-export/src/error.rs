//! The error of export: a configuration that cannot work, named.

/// What can go wrong setting up export: a setting out of its range, an invalid endpoint or
/// header, a CA file that cannot be used, an exporter that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid, or an exporter could not be built with it.
    #[error("invalid configuration in {origin}: {message}")]
    Config {
        /// The exporter or setting.
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A thread or runtime of an exporter could not be started (the operating system's error).
    #[error("cannot start the {what}: {source}")]
    Start {
        /// Which thread or runtime.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of export.
pub type Result<T, E = Error> = std::result::Result<T, E>;
