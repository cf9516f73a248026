//! The servers of Mission Control: the MCP server (`mcp`: agents and people ask Mission
//! Control about itself, over stdio or streamable HTTP) and the live dashboard (`dashboard`:
//! threads, latency, cost, anomalies and logs in a browser), both over a store on disk or
//! inside a running agent ([`Live`]), and both on one [`auth`] module: bearer tokens, roles,
//! tenant scopes and `Host` checks.
//!
//! It is a separate crate because it is what listens on a socket: its dependencies (rmcp,
//! axum) and its attack surface are of their own, and an agent that only records compiles none
//! of it. It reads through `mission-store` (tenant-scoped where data is read) and changes
//! directives and policies through `mission-govern`; `mission-sdk` starts its servers from
//! `MissionControl` (`serve_mcp`, `serve_dashboard`), and `mission-ctl` over a store. The
//! thread comparison both servers and `mission-ctl diff` answer with is `diff`.
//! The report on a period that `mission-ctl report` prints and the dashboard serves as a
//! print-ready page is [`report`] (always built).
//!
//! # Quick example
//!
//! ```
//! # #[cfg(feature = "dashboard")] {
//! use mission_serve::auth::Role;
//! use mission_serve::dashboard::{DashboardConfig, serve_store};
//!
//! // The dashboard over a store on disk, for one tenant's viewers only.
//! let root = std::env::temp_dir().join(format!("mission-serve-lib-{}", std::process::id()));
//! let config = DashboardConfig::loopback(0).with_role_token("acme-viewer-token-01", Role::Viewer, Some("acme"));
//! let server = serve_store(&root, config)?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! server.shutdown();
//! # }
//! # Ok::<(), mission_serve::Error>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `mcp` | no | `mcp::MissionMcp`, its tools, resources and prompts; the stdio transport (rmcp, schemars) |
//! | `mcp-http` | no | `mcp::http`: the MCP server over streamable HTTP (axum) |
//! | `dashboard` | no | `dashboard`: the dashboard's page, JSON API and event stream (axum); needs neither rmcp nor schemars |
//! | `otlp-receiver` | no | `otlp::serve`: the OTLP/HTTP receiver (protobuf and JSON, gzip) and OTLP/gRPC beside it (`with_grpc_addr`), recording into the host's pipeline (axum; tonic's server and opentelemetry-proto's services; tonic-types for `RetryInfo`) |
//! | `models` | no | the dashboard's latency forecast band (`mission-ml`'s Holt-Winters) |
//!
//! The [`auth`] module is always built: both servers use it.
//!
//! # Untrusted input
//!
//! Every request is authenticated before it reads anything (tokens compared in constant time);
//! a tenant-scoped request opens the store scoped to its tenant, so no id or filter reaches
//! another tenant's data. Every tool and route validates its input and bounds its output
//! (rows, bytes, queues); a non-loopback address without a token is refused.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

pub mod advice;
pub mod auth;
#[cfg(feature = "dashboard")]
pub mod dashboard;
#[cfg(any(feature = "mcp", feature = "dashboard"))]
pub mod diff;
mod error;
pub mod graph;
mod histogram;
#[cfg(any(feature = "mcp", feature = "dashboard"))]
pub mod lineage;
#[cfg(any(feature = "mcp-http", feature = "dashboard", feature = "otlp-receiver"))]
mod listen;
mod live;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(feature = "otlp-receiver")]
pub mod otlp;
pub mod report;

pub use error::{Error, Result};
pub use live::{HealthFn, Live};
