//! The SDK's own sinks, which `MissionControl` installs in the pipeline (see
//! [`MissionControlBuilder::build`](crate::MissionControlBuilder::build) for the order):
//!
//! | sink | what it does |
//! |---|---|
//! | [`sampling::SamplingSink`] | keeps whole threads (errors and slow ones always) in front of the store and OTLP export |
//! | `control::ControlSink` | appends budgets exceeded and thread state changes to the audit trail, off the agent's threads |
//! | `anomaly::ModelSink` | anomaly detection per stream with its likely cause, memory sampling and leak prediction (feature `models`) |
//!
//! The other sinks live with their role: statistics and the live hub in `mission-core`, the
//! Parquet store in `mission-store`, directives and redaction in `mission-govern`, OTLP export
//! in `mission-export`.

#[cfg(feature = "models")]
pub mod anomaly;
pub(crate) mod control;
pub mod sampling;
