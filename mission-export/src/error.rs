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
}

/// The result type of export.
pub type Result<T, E = Error> = std::result::Result<T, E>;
