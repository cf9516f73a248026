//! The control sink: appends the control events the thread registry records — budgets
//! exceeded, threads paused, resumed or cancelled — to the audit trail, on the pipeline thread,
//! so no agent thread ever waits for the trail's fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mission_core::thread::{TARGET, attr, event};
use mission_core::{Event, EventBody, Sink, SinkError};
use mission_govern::audit::{AuditLog, kind};

/// Appends control events to the audit trail (see the module's docs).
pub(crate) struct ControlSink {
    audit: Arc<AuditLog>,
    failed: Arc<AtomicU64>,
}

impl ControlSink {
    pub(crate) fn new(audit: Arc<AuditLog>, failed: Arc<AtomicU64>) -> Self {
        Self { audit, failed }
    }
}

/// The attribute `key` of `e` as text (empty when absent).
fn text(e: &Event, key: &str) -> String {
    e.attributes.get(mission_core::Symbol::intern(key)).map(ToString::to_string).unwrap_or_default()
}

impl Sink for ControlSink {
    fn name(&self) -> &str {
        "control-audit"
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        for e in batch {
            let EventBody::Log(log) = &e.body else { continue };
            if log.target.as_str() != TARGET {
                continue;
            }
            let (audit_kind, actor) = match e.name.as_str() {
                event::BUDGET_EXCEEDED => (kind::BUDGET_EXCEEDED, "budget".to_owned()),
                event::STATE => (kind::THREAD_CONTROL, text(e, attr::STATE_BY)),
                _ => continue,
            };
            let detail = serde_json::json!({
                "thread_id": e.thread_id.to_string(),
                "agent": e.agent.as_str(),
                "message": log.message.as_str(),
                "state": text(e, attr::STATE),
                "reason": text(e, attr::STATE_REASON),
                "resource": text(e, attr::BUDGET_RESOURCE),
                "used": text(e, attr::BUDGET_USED),
                "limit": text(e, attr::BUDGET_LIMIT),
                "owner_id": text(e, attr::BUDGET_OWNER_ID),
            });
            if self.audit.append(audit_kind, &actor, e.tenant.as_str(), detail).is_err() {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
