//! Export of Mission Control: what leaves the process. OTLP to an OpenTelemetry Collector or
//! any backend that speaks it (`otlp::OtlpSink`: traces, logs and the GenAI client
//! metrics with the GenAI semantic conventions), directive webhooks over HTTP
//! (`webhooks::HttpTransport`) and HTTPS for both ([`tls`]).
//!
//! It is a separate crate because it is where the network clients are (opentelemetry-otlp,
//! tonic, reqwest, rustls): an agent that records to Parquet only compiles none of them, and
//! each transport is a feature, like `opentelemetry-otlp`'s. It depends on `mission-core` (the
//! `Sink` it implements) and, for webhooks, on `mission-govern`, whose
//! `mission_govern::WebhookTransport` it implements; `mission-sdk` installs
//! both.
//!
//! # Quick example
//!
//! ```
//! # #[cfg(feature = "otlp")] {
//! use mission_export::otlp::{OtlpConfig, OtlpSink};
//!
//! // Spans to a collector on loopback; nothing needs to listen until the first batch.
//! let config = OtlpConfig::http("http://127.0.0.1:4318").with_logs(false).with_metrics(false);
//! let sink = OtlpSink::new(config)?;
//! assert_eq!(sink.stats_reader().stats().exported, 0);
//! // Give it to a pipeline: `Pipeline::builder().with_sink(sink)`.
//! # }
//! # Ok::<(), mission_export::Error>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `otlp` | no | `otlp::OtlpSink`: OTLP/HTTP (protobuf) and OTLP/gRPC export |
//! | `webhooks` | no | `webhooks::HttpTransport`: directive webhooks over HTTP |
//! | `tls` | no | `https://` endpoints for both (rustls, `ring`, the system's roots plus a CA file) |
//!
//! `mission-sdk` turns on what its own `otlp`, `webhooks` and `tls` features ask for. Without
//! `tls` an `https://` endpoint is refused with a typed error when it is configured.
//!
//! # Untrusted input
//!
//! Endpoints, headers and CA files are checked when configured, with errors naming the
//! setting; every queue is bounded and counts what it drops.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

mod env;
mod error;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod tls;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use env::otel_exporter_switch;
pub use error::{Error, Result};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpHealth, OtlpProtocol, OtlpSink, OtlpStats, OtlpStatsReader};
