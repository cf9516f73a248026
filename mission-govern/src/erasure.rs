//! Erasure by data subject: the store's rows whose attribute matches are rewritten away, and
//! the erasure is appended to the audit trail (with a digest of the value, never the value).

use std::path::Path;

use mission_store::Store;

use crate::audit::AuditLog;
use crate::{Error, Result};

/// What `MissionControl::erase_subject` (mission-sdk) did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ErasureReport {
    /// The tenant whose data was searched (`None`: every tenant).
    pub tenant: Option<String>,
    /// The attribute key.
    pub key: String,
    /// SHA-256 of the value, lowercase hex: what the audit trail keeps instead of the value.
    pub value_sha256: String,
    /// Events erased.
    pub events: u64,
    /// The audit record's `seq`. The MCP server tells a principal scoped to one tenant the
    /// record's place among that tenant's records instead ([`AuditLog::tenant_seq`]).
    pub audit_seq: Option<u64>,
}

/// Erases the rows of `root`'s store whose attribute `key` is `value` (in `tenant`'s
/// partitions, or every tenant's) and appends the erasure to `audit`. Inside an agent use
/// `MissionControl::erase_subject` (mission-sdk), which flushes
/// first; `mission-ctl erase` calls this over a store no agent is writing.
///
/// # Errors
/// [`Error::Config`] for an empty key or value or no store (`root` is `None`);
/// [`Error::ErasedUnaudited`] when the audit record cannot be written (the events are erased
/// then; it says how many);
/// [`Error::Store`] if a file cannot be rewritten (it is left as it was).
pub fn erase_subject(
    root: Option<&Path>,
    audit: Option<&AuditLog>,
    actor: &str,
    tenant: Option<&str>,
    key: &str,
    value: &str,
) -> Result<ErasureReport> {
    let bad =
        |message: &str| Error::Config { origin: "erase_subject".into(), message: message.into() };
    if key.is_empty() || value.is_empty() {
        return Err(bad("the attribute key and value must not be empty"));
    }
    let Some(root) = root else {
        return Err(bad("running without a store: nothing to erase"));
    };
    let mut store = Store::open_scoped(root, tenant)?;
    let events = store.erase_attribute(key, value)?;
    let value_sha256 = sha256_hex(value.as_bytes());
    let mut report = ErasureReport {
        tenant: tenant.map(str::to_owned),
        key: key.to_owned(),
        value_sha256,
        events,
        audit_seq: None,
    };
    if let Some(audit) = audit {
        let detail = serde_json::json!({
            "key": report.key, "value_sha256": report.value_sha256, "events": events,
        });
        let record = audit
            .append(crate::audit::kind::ERASURE, actor, tenant.unwrap_or("*"), detail)
            .map_err(|source| Error::ErasedUnaudited { events, source })?;
        report.audit_seq = Some(record.seq);
    }
    Ok(report)
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits: what is kept of a value that must not be
/// kept (an erased subject's id in the audit trail, an MCP session id in a span).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
