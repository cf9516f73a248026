//! Directive webhooks over HTTP: the [`WebhookTransport`] that posts what `mission-govern`'s
//! delivery worker queues, with a blocking `reqwest` client (the one the OTLP exporter already
//! uses) and HTTPS through [`tls`](crate::tls) (feature `tls`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use mission_govern::directives::{PostOutcome, WebhookRequest, WebhookTransport};

/// Posts webhook deliveries over HTTP(S). One client per distinct set of extra CA
/// certificates, built when first needed (a handful at most: one per CA file the directives
/// name).
#[derive(Default)]
pub struct HttpTransport {
    clients: Mutex<Vec<ClientForCa>>,
}

/// A client and the extra CA certificates it trusts.
type ClientForCa = (Option<Arc<[u8]>>, BuiltClient);

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").finish_non_exhaustive()
    }
}

/// A client, or why it could not be built (reported by every delivery that needs it).
type BuiltClient = Result<reqwest::blocking::Client, String>;

impl HttpTransport {
    /// A transport with no client built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The transport as the directives take it.
    pub fn shared() -> Arc<dyn WebhookTransport> {
        Arc::new(Self::new())
    }

    fn client_for(&self, ca: Option<&Arc<[u8]>>) -> BuiltClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let found = clients.iter().position(|(key, _)| key.as_deref() == ca.map(|c| &**c));
        let index = found.unwrap_or_else(|| {
            clients.push((ca.cloned(), crate::tls::blocking_client(None, ca.map(|c| &**c))));
            clients.len() - 1
        });
        // A reqwest client is a cheap handle on a shared pool.
        clients[index].1.clone()
    }
}

impl WebhookTransport for HttpTransport {
    fn check_url(&self, url: &str) -> Result<(), String> {
        crate::tls::check_scheme(url)
    }

    fn load_ca(&self, path: &Path) -> Result<Arc<[u8]>, String> {
        crate::tls::read_ca_file(path).map(Arc::from)
    }

    fn post(&self, d: &WebhookRequest<'_>) -> PostOutcome {
        let client = match self.client_for(d.ca) {
            Ok(client) => client,
            Err(e) => return PostOutcome::Fail(0, e),
        };
        let mut request = client.post(d.url).timeout(d.timeout).body(d.body.to_vec());
        for (name, value) in d.headers {
            request = request.header(name, value);
        }
        match request.send() {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => PostOutcome::Delivered(status),
                    429 | 500..=599 => PostOutcome::Retry(status, format!("HTTP {status}")),
                    _ => PostOutcome::Fail(status, format!("HTTP {status}")),
                }
            }
            Err(e) => {
                let why = crate::tls::error_with_causes(&e);
                // A bad request or a certificate the client does not trust fails the same
                // way on every retry.
                if e.is_builder() || why.contains("certificate") {
                    PostOutcome::Fail(0, why)
                } else {
                    PostOutcome::Retry(0, why)
                }
            }
        }
    }
}
