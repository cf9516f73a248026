//! Governance for Mission Control: who may do what ([`policy`]), what happened to whom
//! ([`audit`]), what must never be kept ([`redact`]), what a regime asks ([`compliance`]),
//! forgetting a data subject ([`erasure`]) and rules as data that turn what is observed into
//! action ([`directives`]: alerts, webhooks, circuit breakers, log level and sampling changes).
//!
//! It is a separate crate because these are the rules an organisation writes and audits, and
//! they change for reasons of their own: a compliance reviewer reads this crate without the
//! exporters, servers or SDK around it. It sits above `mission-core` (events, sinks) and
//! `mission-store` (the audit anchors in Parquet files, erasure by rewriting files) and opens
//! no network connection: directive webhooks are posted through a [`WebhookTransport`]
//! (`mission-export` has the HTTP one; `mission-sdk` wires it in).
//!
//! # Quick example
//!
//! ```
//! use mission_govern::directives::{DirectiveSet, Directives, Permit};
//! use mission_govern::policy::PolicySet;
//!
//! // A policy: rules as data, first match wins.
//! let policy = PolicySet::from_toml_str(r#"
//!     [[rule]]
//!     name = "no-refunds-for-bots"
//!     effect = "deny"
//!     actor = "agent:*"
//!     action = "tool.call"
//!     resource = "refund_*"
//! "#)?;
//! assert!(!policy.decide("acme", "agent:support-bot", "tool.call", "refund_payment").allowed);
//!
//! // Directives: run them as a sink of the pipeline (`directives.sink()`).
//! let set = DirectiveSet::preset("tool-circuit-breaker")?;
//! let directives = Directives::new(set)?;
//! assert!(matches!(directives.permit_for("acme", "web_search"), Permit::Allow));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The entry types
//!
//! | type | what it is |
//! |---|---|
//! | [`PolicySet`](policy::PolicySet), [`PolicyEnforcer`](policy::PolicyEnforcer) | permission rules; decisions recorded as events, denials audited |
//! | [`AuditLog`](audit::AuditLog) | the hash-chained audit trail beside the store, anchored in every data file |
//! | [`RedactionConfig`](redact::RedactionConfig), [`Redactor`](redact::Redactor), [`RedactingTransform`](redact::RedactingTransform) | redaction and content omission before any sink sees an event |
//! | [`CompliancePack`](compliance::CompliancePack) | SOC 2, HIPAA, PCI (or your own) as data: redaction, retention, audit |
//! | [`erase_subject`](erasure::erase_subject) | a data subject's erasure, audited with a digest of the value |
//! | [`DirectiveSet`](directives::DirectiveSet), [`Directives`](directives::Directives) | rules as data over the event stream, and their running state |
//! | [`ThreadRegistry`](threads::ThreadRegistry), [`Budget`](threads::Budget) | live threads: the tree, their state (paused, cancelled) and budgets |
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `schemars` | no | `JsonSchema` on the reports the MCP server returns (`mission-serve`'s `mcp` turns it on) |
//!
//! # Untrusted input
//!
//! Policy, redaction, compliance and directive files are validated when loaded: unknown
//! fields, bad patterns and out-of-range values are errors naming the file, line and field.
//! Matching is linear in the text (no regular expressions over input); every structure that
//! grows with input (groups, breakers, queues) is bounded and counts what it drops.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

pub mod audit;
pub mod compliance;
pub mod config_file;
pub mod directives;
pub mod erasure;
mod error;
pub mod policy;
pub mod redact;
pub mod threads;

pub use directives::WebhookTransport;
pub use error::{Error, Result};
