//! Compliance packs: what a regime asks of agent telemetry — redaction, retention and audit —
//! written as data, readable and shareable like directives.
//!
//! Three packs ship ([`PACKS`]: `soc2`, `hipaa`, `pci`; the TOML files are in
//! `mission-govern/src/compliance/packs/`), and a pack of your own is a TOML or JSON file of the
//! same shape. A pack applies to every tenant or to one
//! (`MissionControlBuilder::with_compliance` (mission-sdk),
//! `MISSION_COMPLIANCE=hipaa` or `hipaa@clinic-a`), and it only ever tightens:
//!
//! - **redaction**: each detector the pack turns on is on for its tenants (whatever the
//!   redaction file says); content capture is on only if both allow it; the pack's own patterns
//!   are added. Redaction needs a key: from the redaction file, or `MISSION_REDACTION_KEY`.
//! - **retention**: its tenants' events are kept at most the pack's `retention` (the shorter of
//!   that and any retention already configured).
//! - **audit**: the audit trail is synced per record; with `audit_access`, allowed permission
//!   decisions are audited too, not only denials. The trail itself is never deleted by
//!   retention (`min_audit_retention` documents how long the regime wants it kept).
//!
//! Applying a pack is itself an audit record (`compliance`), so the trail says which rules
//! were in force from when.
//!
//! ```
//! use mission_govern::compliance::CompliancePack;
//! let hipaa = CompliancePack::preset("hipaa")?;
//! assert!(hipaa.audit.audit_access);
//! assert!(!hipaa.redaction.capture_content);
//! assert_eq!(hipaa.retention, std::time::Duration::from_secs(90 * 86_400));
//! # Ok::<(), mission_govern::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mission_store::RetentionPolicy;

use crate::audit::SyncPolicy;
use crate::redact::{RedactionConfig, RedactionOverride, RedactionRules};
use crate::{Error, Result};

/// The names of the packs [`CompliancePack::preset`] knows.
pub const PACKS: &[&str] = &["soc2", "hipaa", "pci"];

/// A compliance regime's requirements on telemetry, as data.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompliancePack {
    /// Short name (`hipaa`).
    pub name: String,
    /// What the pack does, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// The clauses each setting answers, for an auditor.
    #[serde(default)]
    pub references: Vec<String>,
    /// Most time an event of the pack's tenants is kept.
    #[serde(with = "mission_core::duration_text")]
    pub retention: Duration,
    /// Detectors that must be on, and whether content may be captured.
    #[serde(default)]
    pub redaction: RedactionRules,
    /// What the audit trail must do.
    #[serde(default)]
    pub audit: AuditRequirements,
    /// A budget every thread of the pack's tenants runs under (`[budget]`: turns, tokens,
    /// cost_usd, wall_time_s, context_tokens, warn_share, hard): it narrows the budgets the
    /// configuration and the code give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::threads::Budget>,
}

/// A pack's audit requirements.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditRequirements {
    /// When records must reach stable storage.
    pub sync: SyncPolicy,
    /// Audit allowed permission decisions too (every access), not only denials.
    pub audit_access: bool,
    /// How long the regime wants the audit trail kept. Mission Control never deletes it;
    /// this documents the obligation for whoever archives the store.
    #[serde(with = "mission_core::duration_text::option")]
    pub min_audit_retention: Option<Duration>,
}

impl Default for AuditRequirements {
    fn default() -> Self {
        Self { sync: SyncPolicy::EveryRecord, audit_access: false, min_audit_retention: None }
    }
}

impl CompliancePack {
    /// A pack shipped with Mission Control: one of [`PACKS`].
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn preset(name: &str) -> Result<Self> {
        let text = match name {
            "soc2" => include_str!("packs/soc2.toml"),
            "hipaa" => include_str!("packs/hipaa.toml"),
            "pci" => include_str!("packs/pci.toml"),
            other => {
                return Err(Error::Config {
                    origin: "compliance pack".into(),
                    message: format!(
                        "unknown pack {other:?}: expected one of {}",
                        PACKS.join(", ")
                    ),
                });
            }
        };
        Self::from_toml_str(text, &format!("compliance pack {name}"))
    }

    /// Reads a pack from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming `origin`, the line and the field.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let pack: Self = toml::from_str(text)
            .map_err(|e| Error::Config { origin: origin.into(), message: e.to_string() })?;
        pack.checked(origin)
    }

    /// Reads a pack file, TOML or JSON (by extension).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let pack: Self = crate::config_file::read_toml_or_json(path.as_ref())?;
        pack.checked(&path.as_ref().display().to_string())
    }

    /// A shipped pack by name, or a pack file when `spec` is a path (has a `/` or ends in
    /// `.toml` or `.json`).
    ///
    /// # Errors
    /// As [`preset`](Self::preset) and [`from_file`](Self::from_file).
    pub fn load(spec: &str) -> Result<Self> {
        if spec.contains('/') || spec.ends_with(".toml") || spec.ends_with(".json") {
            Self::from_file(spec)
        } else {
            Self::preset(spec)
        }
    }

    fn checked(self, origin: &str) -> Result<Self> {
        let bad = |message: String| Error::Config { origin: origin.into(), message };
        if self.name.trim().is_empty() {
            return Err(bad("`name` is empty".into()));
        }
        if self.retention.is_zero() {
            return Err(bad("`retention` must be longer than zero".into()));
        }
        if let Some(budget) = &self.budget {
            budget.validate().map_err(|e| bad(format!("budget: {e}")))?;
        }
        // The patterns go through the redactor's own validation.
        let probe = RedactionConfig {
            key: "k".repeat(crate::redact::MIN_KEY_BYTES),
            default: self.redaction.clone(),
            tenants: BTreeMap::new(),
        };
        crate::redact::Redactor::new(probe).map_err(|e| bad(format!("redaction: {e}")))?;
        Ok(self)
    }
}

/// A pack and the tenant it applies to (`None`: every tenant).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AppliedPack {
    /// The pack.
    pub pack: CompliancePack,
    /// Its tenant, or every tenant.
    pub tenant: Option<String>,
}

impl AppliedPack {
    /// Parses `NAME` (every tenant) or `NAME@TENANT`, where NAME is a pack name or file.
    ///
    /// # Errors
    /// As [`CompliancePack::load`]; [`Error::Config`] for an empty tenant.
    pub fn parse(spec: &str) -> Result<Self> {
        let (name, tenant) = match spec.rsplit_once('@') {
            Some((name, tenant)) if tenant.trim().is_empty() => {
                return Err(Error::Config {
                    origin: "compliance pack".into(),
                    message: format!("{name:?}: empty tenant after '@'"),
                });
            }
            Some((name, tenant)) => (name.trim(), Some(tenant.trim().to_owned())),
            None => (spec.trim(), None),
        };
        Ok(Self { pack: CompliancePack::load(name)?, tenant })
    }

    fn covers(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }
}

/// The stricter of two sets of rules: a detector on in either is on, content is captured only
/// if both allow it, and the patterns of both apply.
pub fn stricter(a: &RedactionRules, b: &RedactionRules) -> RedactionRules {
    let mut patterns = a.patterns.clone();
    for p in &b.patterns {
        if !patterns.contains(p) {
            patterns.push(p.clone());
        }
    }
    RedactionRules {
        capture_content: a.capture_content && b.capture_content,
        emails: a.emails || b.emails,
        phones: a.phones || b.phones,
        cards: a.cards || b.cards,
        secrets: a.secrets || b.secrets,
        ip_addresses: a.ip_addresses || b.ip_addresses,
        patterns,
    }
}

fn as_override(rules: RedactionRules) -> RedactionOverride {
    RedactionOverride {
        capture_content: Some(rules.capture_content),
        emails: Some(rules.emails),
        phones: Some(rules.phones),
        cards: Some(rules.cards),
        secrets: Some(rules.secrets),
        ip_addresses: Some(rules.ip_addresses),
        patterns: Some(rules.patterns),
    }
}

/// `config` tightened by every pack. Without a configuration, one is made with `key` (and
/// rules that redact nothing for tenants no pack covers).
///
/// # Errors
/// [`Error::Config`] if packs need redaction and there is neither a configuration nor a key.
pub fn apply_redaction(
    config: Option<RedactionConfig>,
    packs: &[AppliedPack],
    key: Option<String>,
    capture_content: &[String],
) -> Result<Option<RedactionConfig>> {
    let config = config.map(|mut c| {
        c.capture_content_for(capture_content);
        c
    });
    if packs.is_empty() {
        return Ok(config.or_else(|| RedactionConfig::content_only(capture_content)));
    }
    let mut config = match config {
        Some(c) => c,
        None => {
            let Some(key) = key else {
                let names: Vec<&str> = packs.iter().map(|p| p.pack.name.as_str()).collect();
                return Err(Error::Config {
                    origin: format!("compliance pack {}", names.join(", ")),
                    message: "redaction needs a key: set MISSION_REDACTION_KEY (at least 16 \
                              bytes) or give a redaction file"
                        .into(),
                });
            };
            // Tenants no pack covers keep what they had: no redaction, content only where
            // captured.
            let mut config = RedactionConfig {
                key,
                default: RedactionRules::content_only(),
                tenants: BTreeMap::new(),
            };
            config.capture_content_for(capture_content);
            config
        }
    };
    for applied in packs {
        match &applied.tenant {
            None => {
                config.default = stricter(&config.default, &applied.pack.redaction);
                for o in config.tenants.values_mut() {
                    let rules = o.apply(&config.default);
                    *o = as_override(stricter(&rules, &applied.pack.redaction));
                }
            }
            Some(tenant) => {
                let rules = stricter(&config.rules_for(tenant), &applied.pack.redaction);
                config.tenants.insert(tenant.clone(), as_override(rules));
            }
        }
    }
    Ok(Some(config))
}

/// `policy` tightened by every pack: each covered tenant keeps events at most the pack's
/// retention.
pub fn apply_retention(policy: &mut RetentionPolicy, packs: &[AppliedPack]) {
    let shorter = |a: Option<Duration>, b: Duration| Some(a.map_or(b, |a| a.min(b)));
    for applied in packs {
        let keep = applied.pack.retention;
        match &applied.tenant {
            None => {
                policy.default = shorter(policy.default, keep);
                for d in policy.tenants.values_mut() {
                    *d = (*d).min(keep);
                }
            }
            Some(tenant) => {
                let now = shorter(policy.max_age(tenant), keep).unwrap_or(keep);
                policy.tenants.insert(tenant.clone(), now);
            }
        }
    }
}

/// The tenants whose allowed decisions must be audited (`*` for every tenant).
pub fn audited_access(packs: &[AppliedPack]) -> Vec<String> {
    packs
        .iter()
        .filter(|p| p.pack.audit.audit_access)
        .map(|p| p.tenant.clone().unwrap_or_else(|| "*".into()))
        .collect()
}

/// Whether any pack covers `tenant`.
pub fn covers(packs: &[AppliedPack], tenant: &str) -> bool {
    packs.iter().any(|p| p.covers(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_pack_loads_and_tightens() {
        for name in PACKS {
            let pack = CompliancePack::preset(name).expect(name);
            assert_eq!(pack.name, *name);
            assert!(!pack.redaction.capture_content, "{name}: content off");
            assert!(pack.redaction.cards && pack.redaction.secrets, "{name}");
            assert_eq!(pack.audit.sync, SyncPolicy::EveryRecord);
            assert!(!pack.references.is_empty());
        }
        assert!(CompliancePack::preset("gdpr").unwrap_err().to_string().contains("soc2, hipaa"));
    }

    #[test]
    fn malformed_packs_name_line_and_field() {
        let err = CompliancePack::from_toml_str(
            "name = \"x\"\nretention = \"90d\"\n[redaction]\nemail = true\n",
            "my-pack.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("my-pack.toml") && err.contains("line 4") && err.contains("email"));
        let err = CompliancePack::from_toml_str("name = \"x\"\nretention = \"0s\"\n", "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention"), "{err}");
        let err = CompliancePack::from_toml_str(
            "name = \"x\"\nretention = \"1d\"\n[redaction]\npatterns = [{label = \"bad label\", prefix = \"X\"}]\n",
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("redaction"), "{err}");
    }

    #[test]
    fn a_tenant_pack_tightens_only_that_tenant() {
        let packs = vec![AppliedPack::parse("hipaa@clinic").expect("pack")];
        let config =
            apply_redaction(None, &packs, Some("k".repeat(32)), &[]).expect("ok").expect("on");
        assert!(config.rules_for("clinic").emails && config.rules_for("clinic").phones);
        assert!(!config.rules_for("clinic").capture_content);
        assert_eq!(config.rules_for("clinic").patterns.len(), 1, "the MRN pattern");
        assert!(!config.rules_for("retail").emails, "other tenants are untouched");
        assert!(!config.rules_for("retail").capture_content, "content is off by default");
        // Opting in keeps content for a tenant no pack covers; the pack still wins for its own.
        let capture = ["retail".to_owned(), "clinic".to_owned()];
        let opted =
            apply_redaction(None, &packs, Some("k".repeat(32)), &capture).expect("ok").expect("on");
        assert!(opted.rules_for("retail").capture_content);
        assert!(!opted.rules_for("clinic").capture_content, "hipaa keeps content off");

        let mut policy = RetentionPolicy::all(Duration::from_secs(30 * 86_400));
        apply_retention(&mut policy, &packs);
        assert_eq!(policy.max_age("clinic"), Some(Duration::from_secs(30 * 86_400)), "shorter");
        let mut policy = RetentionPolicy::default();
        apply_retention(&mut policy, &packs);
        assert_eq!(policy.max_age("clinic"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(policy.max_age("retail"), None);
        assert_eq!(audited_access(&packs), vec!["clinic".to_owned()]);
    }

    #[test]
    fn an_all_tenant_pack_tightens_existing_overrides() {
        let mut existing = RedactionConfig::with_key("k".repeat(32));
        existing.default.emails = false;
        existing.tenants.insert(
            "lab".into(),
            RedactionOverride { capture_content: Some(true), ..RedactionOverride::default() },
        );
        let packs = vec![AppliedPack::parse("pci").expect("pack")];
        let config = apply_redaction(Some(existing), &packs, None, &[]).expect("ok").expect("on");
        assert!(config.rules_for("anyone").emails);
        assert!(!config.rules_for("lab").capture_content, "the pack turns content off");
        let err = apply_redaction(None, &packs, None, &[]).unwrap_err().to_string();
        assert!(err.contains("MISSION_REDACTION_KEY"), "{err}");
        assert!(AppliedPack::parse("pci@").is_err());
    }
}
