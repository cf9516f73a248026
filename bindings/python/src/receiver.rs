//! `control.serve_otlp(...)`: the OTLP/HTTP receiver (`mission-serve`'s, the one
//! `mission-ctl serve` and Rust agents run) from a Python process, so the agent's subprocesses
//! and services report to it with any OpenTelemetry SDK's standard exporter.
//!
//! The receiver runs on threads of its own; Python keeps an [`OtlpReceiver`] handle with its
//! endpoint, counters and `close()`. The instance keeps the receiver too and stops it before
//! its pipeline on shutdown, so everything acknowledged is recorded. Same rules as Rust:
//! loopback unless tokens are given; a token scoped to a tenant records as that tenant.

use pyo3::prelude::*;

/// One running receiver, shared by its handle and its instance.
pub(crate) type Slot = crate::servers::Slot<mission_sdk::OtlpReceiver>;

/// Stops the receiver in `slot` if it still runs (what it acknowledged is handed to the
/// recorder first); returns whether it did.
pub(crate) fn stop(slot: &Slot) -> bool {
    crate::servers::stop(slot, mission_sdk::OtlpReceiver::shutdown)
}

/// A running OTLP receiver (`control.serve_otlp(...)` returns it). Point an exporter at
/// `endpoint` (`OTEL_EXPORTER_OTLP_ENDPOINT`); `close()` stops it.
#[pyclass(frozen, module = "mission_control._native", name = "OtlpReceiver")]
pub struct OtlpReceiver {
    pub(crate) slot: Slot,
    pub(crate) stats: mission_sdk::receiver::OtlpReceiverStatsReader,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) grpc_addr: Option<std::net::SocketAddr>,
}

#[pymethods]
impl OtlpReceiver {
    /// The base URL senders use, e.g. `http://127.0.0.1:4318` (`/v1/traces`, `/v1/logs` and
    /// `/v1/metrics` below it).
    #[getter]
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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

    /// The OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`, or `None` when gRPC was not
    /// asked for (`grpc_port`).
    #[getter]
    fn grpc_endpoint(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// The port OTLP/gRPC listens on (the one picked, when 0 was asked for), or `None`.
    #[getter]
    fn grpc_port(&self) -> Option<u16> {
        self.grpc_addr.map(|addr| addr.port())
    }

    /// Whether it was closed (or its instance shut down).
    #[getter]
    fn closed(&self) -> bool {
        crate::servers::is_closed(&self.slot)
    }

    /// What it received, exactly: items (spans, log records, metric points) and requests by
    /// outcome (a dict). Still readable after `close()`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::json::to_python(py, &self.stats.stats())
    }

    /// Stops receiving; what it acknowledged is handed to the recorder first (without the
    /// interpreter lock). Idempotent.
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
        let state = if self.closed() { "closed" } else { "receiving" };
        format!("OtlpReceiver(endpoint={:?}, {state})", self.endpoint())
    }
}
