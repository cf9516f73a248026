//! `control.serve_dashboard(...)`: the live dashboard (`mission-serve`'s, the one Rust agents
//! serve with `MissionControl::serve_dashboard`) from a Python process.
//!
//! The server runs on a thread of its own; Python keeps a [`Dashboard`] handle with its URL
//! and `close()`. The instance keeps the server too, so it serves until closed or until the
//! instance shuts down, whether or not the handle is kept. Same rules as Rust: loopback unless
//! a token is given, tokens of at least 16 characters, a token scoped to a tenant sees that
//! tenant's rows only.

use mission_sdk::DashboardServer;
use pyo3::prelude::*;

/// One running server, shared by its handle and its instance.
pub(crate) type Slot = crate::servers::Slot<DashboardServer>;

/// Stops the server in `slot` if it still runs; returns whether it did.
pub(crate) fn stop(slot: &Slot) -> bool {
    crate::servers::stop(slot, DashboardServer::shutdown)
}

/// A running dashboard (`control.serve_dashboard(...)` returns it). Open `url` in a browser;
/// `close()` stops it.
#[pyclass(frozen, module = "mission_control._native", name = "DashboardServer")]
pub struct Dashboard {
    pub(crate) slot: Slot,
    pub(crate) addr: std::net::SocketAddr,
}

#[pymethods]
impl Dashboard {
    /// The page's URL, e.g. `http://127.0.0.1:8765/`.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The address it listens on.
    #[getter]
    fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port it listens on (the one picked, when 0 was asked for).
    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether it was closed (or its instance shut down).
    #[getter]
    fn closed(&self) -> bool {
        crate::servers::is_closed(&self.slot)
    }

    /// Stops serving: open streams end, then the server thread ends (without the interpreter
    /// lock). Idempotent.
    fn close(&self, py: Python<'_>) {
        let slot = self.slot.clone();
        py.detach(move || stop(&slot));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py);
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "serving" };
        format!("DashboardServer(url={:?}, {state})", self.url())
    }
}
