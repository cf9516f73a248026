//! [`Artefacts`]: what a host registers about its own system for the relationship graph — its
//! artefacts (a database, a queue, a service, a prompt template) and the relations between them
//! and the agents, tools and models the recorded spans name. Bounded: at most
//! [`MAX_ARTEFACTS`] artefacts and [`MAX_RELATIONS`] relations; what does not fit is refused
//! and counted.
//!
//! A node is named `kind:name` (`agent:planner`, `tool:web_search`, `model:gpt-4o`,
//! `datastore:postgres`), the ids the relationship graph uses, so a relation can join a
//! registered artefact to a node built from the spans.
//!
//! ```
//! use mission_core::artefacts::Artefacts;
//!
//! let registry = Artefacts::default();
//! registry.register_artefact("acme", "datastore", "postgres", &[("region", "eu-west-1")])?;
//! registry.register_relation("acme", "agent:billing", "datastore:postgres", "writes")?;
//! let seen = registry.snapshot(Some("acme"));
//! assert_eq!((seen.artefacts.len(), seen.relations.len()), (1, 1));
//! assert!(registry.snapshot(Some("globex")).artefacts.is_empty());
//! # Ok::<(), mission_core::artefacts::InvalidArtefact>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Most artefacts a registry holds.
pub const MAX_ARTEFACTS: usize = 10_000;
/// Most relations a registry holds.
pub const MAX_RELATIONS: usize = 50_000;
/// Most attributes of one artefact.
pub const MAX_ATTRIBUTES: usize = 16;
/// Longest kind (bytes).
pub const MAX_KIND_BYTES: usize = 32;
/// Longest name, label, attribute key or value (bytes).
pub const MAX_TEXT_BYTES: usize = 256;

/// Why a registration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidArtefact(String);

impl std::fmt::Display for InvalidArtefact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidArtefact {}

/// One registered artefact.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Artefact {
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its kind (`datastore`, `service`, … or one of the graph's own: `agent`, `tool`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What the host said about it.
    pub attributes: BTreeMap<String, String>,
}

impl Artefact {
    /// Its node id: `kind:name`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

/// One registered relation between two nodes (`kind:name` ids).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Relation {
    /// The tenant it belongs to.
    pub tenant: String,
    /// From this node.
    pub from: String,
    /// To this node.
    pub to: String,
    /// What the relation is (`reads`, `writes`, `owns`).
    pub label: String,
}

/// What one tenant (or every tenant) may see of a registry, with what it refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArtefactSnapshot {
    /// The artefacts, by id.
    pub artefacts: Vec<Artefact>,
    /// The relations, sorted.
    pub relations: Vec<Relation>,
    /// Registrations refused because the registry was full: the snapshot's tenant's, or every
    /// tenant's for a snapshot of every tenant.
    pub refused: u64,
}

/// Tenants whose refusals are counted apart; further tenants' are counted under `""`.
const MAX_REFUSING_TENANTS: usize = 1_024;

#[derive(Debug, Default)]
struct Inner {
    artefacts: BTreeMap<(String, String, String), BTreeMap<String, String>>,
    relations: std::collections::BTreeSet<Relation>,
    /// Refusals by tenant (bounded by [`MAX_REFUSING_TENANTS`]).
    refused: BTreeMap<String, u64>,
}

impl Inner {
    fn refuse(&mut self, tenant: &str) {
        let key = if self.refused.contains_key(tenant) || self.refused.len() < MAX_REFUSING_TENANTS
        {
            tenant
        } else {
            ""
        };
        *self.refused.entry(key.to_owned()).or_default() += 1;
    }
}

/// The host's artefacts and relations (see the module documentation). Cheap to share behind an
/// `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Artefacts {
    inner: Mutex<Inner>,
}

fn check_text(what: &str, s: &str) -> Result<(), InvalidArtefact> {
    if s.is_empty() || s.len() > MAX_TEXT_BYTES || s.chars().any(char::is_control) {
        return Err(InvalidArtefact(format!(
            "{what} must be 1 to {MAX_TEXT_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_kind(kind: &str) -> Result<(), InvalidArtefact> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(InvalidArtefact(format!(
            "a kind is 1 to {MAX_KIND_BYTES} of a-z, 0-9 and _, not {:?}",
            kind.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// Checks a node id `kind:name`.
fn check_id(what: &str, id: &str) -> Result<(), InvalidArtefact> {
    let Some((kind, name)) = id.split_once(':') else {
        return Err(InvalidArtefact(format!(
            "{what} is a node id `kind:name` (agent:planner, datastore:postgres), not {:?}",
            id.chars().take(40).collect::<String>()
        )));
    };
    check_kind(kind)?;
    check_text(what, name)
}

impl Artefacts {
    /// Registers (or updates the attributes of) the artefact `kind:name` of `tenant`. Returns
    /// `Ok(false)`, counted in [`ArtefactSnapshot::refused`], when the registry is full.
    ///
    /// # Errors
    /// A kind that is not 1–32 of `a-z0-9_`, an empty or over-long name, key or value, or
    /// more than [`MAX_ATTRIBUTES`] attributes.
    pub fn register_artefact(
        &self,
        tenant: &str,
        kind: &str,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Result<bool, InvalidArtefact> {
        check_kind(kind)?;
        check_text("a name", name)?;
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(InvalidArtefact(format!("at most {MAX_ATTRIBUTES} attributes")));
        }
        for (k, v) in attributes {
            check_text("an attribute key", k)?;
            if v.len() > MAX_TEXT_BYTES {
                return Err(InvalidArtefact(format!(
                    "an attribute value is at most {MAX_TEXT_BYTES} bytes"
                )));
            }
        }
        let attributes: BTreeMap<String, String> =
            attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_owned(), kind.to_owned(), name.to_owned());
        if let Some(existing) = inner.artefacts.get_mut(&key) {
            *existing = attributes;
            return Ok(true);
        }
        if inner.artefacts.len() >= MAX_ARTEFACTS {
            inner.refuse(tenant);
            return Ok(false);
        }
        inner.artefacts.insert(key, attributes);
        Ok(true)
    }

    /// Registers the relation `from → to` (node ids `kind:name`) labelled `label`, of `tenant`.
    /// Returns `Ok(false)`, counted, when the registry is full.
    ///
    /// # Errors
    /// An id that is not `kind:name`, or an empty or over-long label.
    pub fn register_relation(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        label: &str,
    ) -> Result<bool, InvalidArtefact> {
        check_id("from", from)?;
        check_id("to", to)?;
        check_text("a label", label)?;
        let relation = Relation {
            tenant: tenant.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            label: label.to_owned(),
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.relations.contains(&relation) {
            return Ok(true);
        }
        if inner.relations.len() >= MAX_RELATIONS {
            inner.refuse(tenant);
            return Ok(false);
        }
        inner.relations.insert(relation);
        Ok(true)
    }

    /// What a principal of `scope` (`None`: every tenant) may see.
    pub fn snapshot(&self, scope: Option<&str>) -> ArtefactSnapshot {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let visible = |tenant: &str| scope.is_none_or(|s| s == tenant);
        ArtefactSnapshot {
            artefacts: inner
                .artefacts
                .iter()
                .filter(|((tenant, _, _), _)| visible(tenant))
                .map(|((tenant, kind, name), attributes)| Artefact {
                    tenant: tenant.clone(),
                    kind: kind.clone(),
                    name: name.clone(),
                    attributes: attributes.clone(),
                })
                .collect(),
            relations: inner.relations.iter().filter(|r| visible(&r.tenant)).cloned().collect(),
            refused: inner.refused.iter().filter(|(t, _)| visible(t)).map(|(_, n)| n).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_checked_bounded_and_scoped() {
        let r = Artefacts::default();
        assert!(r.register_artefact("a", "Bad Kind", "x", &[]).is_err());
        assert!(r.register_artefact("a", "db", "", &[]).is_err());
        assert!(r.register_relation("a", "nokind", "db:x", "reads").is_err());
        assert!(r.register_relation("a", "agent:x", "db:x", "").is_err());
        assert_eq!(r.register_artefact("a", "db", "pg", &[("v", "1")]), Ok(true));
        assert_eq!(r.register_artefact("a", "db", "pg", &[("v", "2")]), Ok(true));
        assert_eq!(r.register_relation("a", "agent:x", "db:pg", "reads"), Ok(true));
        assert_eq!(r.register_relation("a", "agent:x", "db:pg", "reads"), Ok(true));
        let a = r.snapshot(Some("a"));
        assert_eq!(a.artefacts.len(), 1);
        assert_eq!(a.artefacts[0].attributes["v"], "2");
        assert_eq!(a.artefacts[0].id(), "db:pg");
        assert_eq!(a.relations.len(), 1);
        assert_eq!(r.snapshot(Some("b")), ArtefactSnapshot::default());
        for i in 1..MAX_ARTEFACTS {
            assert_eq!(r.register_artefact("b", "db", &format!("n{i}"), &[]), Ok(true));
        }
        assert_eq!(r.register_artefact("b", "db", "one-too-many", &[]), Ok(false));
        assert_eq!(r.register_artefact("a", "db", "refused-too", &[]), Ok(false));
        let all = r.snapshot(None);
        assert_eq!((all.artefacts.len(), all.refused), (MAX_ARTEFACTS, 2));
        // Each tenant is told its own refusals only.
        assert_eq!(r.snapshot(Some("a")).refused, 1);
        assert_eq!(r.snapshot(Some("b")).refused, 1);
        assert_eq!(r.snapshot(Some("c")).refused, 0);
    }
}
