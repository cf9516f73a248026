//! What the servers a Python instance runs (dashboards, OTLP receivers) share: the access a
//! caller configures (tokens, allowed hosts), and the slot that the instance and the Python
//! handle both hold, so either can stop the server once.

use std::sync::{Arc, Mutex};

/// One running server, shared by its handle and its instance; `None` once stopped.
pub(crate) type Slot<T> = Arc<Mutex<Option<T>>>;

/// A server's settings that take bearer tokens and extra `Host` values.
pub(crate) trait Access: Sized {
    /// Accepts `token` for every tenant.
    fn token(self, token: &str) -> Self;
    /// Accepts `token` for `tenant` only.
    fn tenant_token(self, token: &str, tenant: &str) -> Self;
    /// Also accepts this `Host` header value.
    fn allowed_host(self, host: &str) -> Self;
}

impl Access for mission_sdk::DashboardConfig {
    fn token(self, token: &str) -> Self {
        self.with_token(token)
    }
    fn tenant_token(self, token: &str, tenant: &str) -> Self {
        self.with_tenant_token(token, tenant)
    }
    fn allowed_host(self, host: &str) -> Self {
        self.with_allowed_host(host)
    }
}

impl Access for mission_sdk::OtlpReceiverConfig {
    fn token(self, token: &str) -> Self {
        self.with_token(token)
    }
    fn tenant_token(self, token: &str, tenant: &str) -> Self {
        self.with_tenant_token(token, tenant)
    }
    fn allowed_host(self, host: &str) -> Self {
        self.with_allowed_host(host)
    }
}

/// `config` with the caller's `(token, tenant or None)` pairs and allowed hosts.
pub(crate) fn with_access<C: Access>(
    mut config: C,
    tokens: Option<Vec<(String, Option<String>)>>,
    allowed_hosts: Option<Vec<String>>,
) -> C {
    for (token, tenant) in tokens.unwrap_or_default() {
        config = match tenant {
            Some(t) => config.tenant_token(&token, &t),
            None => config.token(&token),
        };
    }
    for h in allowed_hosts.unwrap_or_default() {
        config = config.allowed_host(&h);
    }
    config
}

/// Keeps `server` among the instance's `running` ones (forgetting the closed ones, so the list
/// is as long as the servers running) and returns the slot its handle shares.
pub(crate) fn keep<T>(running: &Mutex<Vec<Slot<T>>>, server: T) -> Slot<T> {
    let slot = Arc::new(Mutex::new(Some(server)));
    let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
    running.retain(|s| !is_closed(s));
    running.push(slot.clone());
    slot
}

/// Takes the server out of `slot`, if it still runs, and shuts it down; returns whether it ran.
pub(crate) fn stop<T>(slot: &Slot<T>, shutdown: impl FnOnce(T)) -> bool {
    let server = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    server.map(shutdown).is_some()
}

/// Whether the server in `slot` was stopped.
pub(crate) fn is_closed<T>(slot: &Slot<T>) -> bool {
    slot.lock().unwrap_or_else(|p| p.into_inner()).is_none()
}
