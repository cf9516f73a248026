//! The control sink: appends the control events the thread registry records — budgets
//! exceeded, threads paused, resumed or cancelled — and those of the directives' workflows —
//! approvals proposed, decided or expired; runs by hand or with remedies — to the audit trail,
//! on the pipeline thread, so no agent thread ever waits for the trail's fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mission_core::thread::{TARGET, attr, event};
use mission_core::{Event, EventBody, Sink, SinkError};
use mission_govern::audit::{AuditLog, kind};
use mission_govern::directives::{
    APPROVAL_EVENT, ATTR_APPROVAL_DECIDED_BY, ATTR_APPROVAL_ID, ATTR_APPROVAL_STATE,
    ATTR_DIRECTIVE, ATTR_RUN_ACTIONS, ATTR_RUN_BY, ATTR_RUN_ID, ATTR_RUN_OUTCOME, ATTR_RUN_TRIGGER,
    DIRECTIVES_TARGET, REMEDY_ACTIONS, RUN_EVENT,
};

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

impl ControlSink {
    /// Audits an approval's change, and a run by hand or with remedies.
    fn workflow(&self, e: &Event, message: &str) {
        let (audit_kind, actor, detail) = match e.name.as_str() {
            APPROVAL_EVENT => {
                let by = text(e, ATTR_APPROVAL_DECIDED_BY);
                let actor = if by.is_empty() {
                    format!("directive:{}", text(e, ATTR_DIRECTIVE))
                } else {
                    by
                };
                let detail = serde_json::json!({
                    "approval_id": text(e, ATTR_APPROVAL_ID),
                    "state": text(e, ATTR_APPROVAL_STATE),
                    "directive": text(e, ATTR_DIRECTIVE),
                    "message": message,
                });
                (kind::APPROVAL, actor, detail)
            }
            RUN_EVENT => {
                let actions = text(e, ATTR_RUN_ACTIONS);
                let trigger = text(e, ATTR_RUN_TRIGGER);
                let remedy = REMEDY_ACTIONS.iter().any(|r| actions.contains(&format!("\"{r}\"")));
                if trigger != "manual" && !remedy {
                    return;
                }
                let detail = serde_json::json!({
                    "run_id": text(e, ATTR_RUN_ID),
                    "directive": text(e, ATTR_DIRECTIVE),
                    "trigger": trigger,
                    "outcome": text(e, ATTR_RUN_OUTCOME),
                    "actions": serde_json::from_str::<serde_json::Value>(&actions).unwrap_or_default(),
                });
                (kind::DIRECTIVE_RUN, text(e, ATTR_RUN_BY), detail)
            }
            _ => return,
        };
        if self.audit.append(audit_kind, &actor, e.tenant.as_str(), detail).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Sink for ControlSink {
    fn name(&self) -> &str {
        "control-audit"
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        for e in batch {
            let EventBody::Log(log) = &e.body else { continue };
            if log.target.as_str() == DIRECTIVES_TARGET {
                self.workflow(e, log.message.as_str());
                continue;
            }
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
