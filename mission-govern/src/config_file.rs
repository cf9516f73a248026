//! Reading settings files: TOML, or JSON when the name ends in `.json` (policies, redaction
//! rules, compliance packs; `mission-sdk` reads its configuration and price files with it too).

use std::path::Path;

use crate::{Error, Result};

/// Reads a TOML file, or JSON when the name ends in `.json`.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field if it does not
/// parse.
pub fn read_toml_or_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.into(), source: e })?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| Error::Config { origin: path.display().to_string(), message })
}
