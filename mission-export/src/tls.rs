//! HTTPS for what Mission Control sends out: directive webhooks and OTLP export (HTTP and gRPC).
//!
//! With the `tls` feature (on by default in mission-sdk) connections to `https://` endpoints use rustls with
//! the `ring` crypto provider. Server certificates are checked against the operating system's
//! roots plus, where one is configured, a CA file of your own (PEM; a private collector's or
//! a test receiver's self-signed certificate): `OtlpConfig::ca_file`,
//! `MISSION_OTLP_CA_FILE` / `OTEL_EXPORTER_OTLP_CERTIFICATE`, and a webhook's `ca_file` field.
//! Without the feature an `https://` endpoint is refused with a typed error when it is
//! configured, never at send time.
//!
//! rustls needs one process-wide crypto provider. The SDK installs `ring` the first time it
//! builds a client, unless the application installed one of its own first (then that one is
//! used). [`install_default_provider`] does the same for code that builds clients of its own
//! (`reqwest` with rustls) in a process that links Mission Control.

use std::path::Path;

/// Whether this build can open `https://` connections (the `tls` feature).
pub const ENABLED: bool = cfg!(feature = "tls");

/// Installs `ring` as the process's rustls crypto provider unless one is installed already.
///
/// Idempotent and cheap after the first call. Called by the SDK before it builds an HTTP or
/// gRPC client; call it yourself before building a rustls-backed `reqwest` client elsewhere in
/// the process. A no-op without the `tls` feature.
pub fn install_default_provider() {
    #[cfg(feature = "tls")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                // An error means another thread installed one meanwhile: that one is used.
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
        });
    }
}

/// `Err` with the reason when `url` is `https://` and this build has no TLS.
pub fn check_scheme(url: &str) -> Result<(), String> {
    if !ENABLED && url.trim_start().to_ascii_lowercase().starts_with("https://") {
        return Err(format!(
            "{url:?} is an https:// URL but this build has no TLS (the `tls` feature of mission-sdk or mission-export)"
        ));
    }
    Ok(())
}

/// The PEM certificates in `path`, checked: readable, and at least one certificate.
///
/// # Errors
/// The reason, naming the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    let begins = text.matches("-----BEGIN CERTIFICATE-----").count();
    let ends = text.matches("-----END CERTIFICATE-----").count();
    if begins == 0 || begins != ends {
        return Err(format!(
            "CA file {}: expected PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            path.display()
        ));
    }
    if !ENABLED {
        return Err(format!(
            "CA file {}: this build has no TLS (the `tls` feature of mission-sdk or mission-export)",
            path.display()
        ));
    }
    Ok(pem)
}

/// `e` followed by each cause its message does not already include
/// (`error sending request ...: invalid peer certificate: UnknownIssuer`): a client's own
/// message rarely says why a connection failed.
#[cfg(any(feature = "webhooks", feature = "otlp"))]
pub(crate) fn error_with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A blocking `reqwest` client with `timeout`, trusting the system's roots plus `ca_pem`.
#[cfg(any(feature = "webhooks", feature = "otlp"))]
pub(crate) fn blocking_client(
    timeout: Option<std::time::Duration>,
    ca_pem: Option<&[u8]>,
) -> Result<reqwest::blocking::Client, String> {
    install_default_provider();
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    #[cfg(feature = "tls")]
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("cannot read the CA certificates: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    #[cfg(not(feature = "tls"))]
    if ca_pem.is_some() {
        return Err(
            "a CA file needs TLS (the `tls` feature of mission-sdk or mission-export)".into()
        );
    }
    builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_pem_certificates() {
        let dir = std::env::temp_dir().join(format!("mission-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = read_ca_file(&dir.join("nope.pem")).unwrap_err();
        assert!(missing.contains("nope.pem"), "{missing}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = read_ca_file(&junk).unwrap_err();
        assert!(err.contains("expected PEM certificates"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn https_needs_the_feature() {
        assert!(check_scheme("http://127.0.0.1:1/").is_ok());
        assert_eq!(check_scheme("https://example.com/").is_ok(), ENABLED);
    }
}
