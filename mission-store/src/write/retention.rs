//! Retention: how long events are kept ([`RetentionPolicy`]) and the deletion of expired
//! partitions, by the sink once a minute and by [`Store::apply_retention`].

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mission_core::Timestamp;

use crate::layout::{Partition, walk};
use crate::{Error, Result, Store};

/// How long events are kept: a default and per-tenant overrides. A partition is deleted once
/// its hour ended longer ago than its tenant's maximum age; a tenant with no maximum (and no
/// default) is kept for ever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Every tenant's maximum age unless overridden; `None` keeps them.
    pub default: Option<Duration>,
    /// Per-tenant maximum ages.
    pub tenants: BTreeMap<String, Duration>,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl RetentionPolicy {
    /// Sets [`default`](Self::default).
    pub fn with_default(mut self, default: Option<Duration>) -> Self {
        self.default = default;
        self
    }

    /// Sets [`tenants`](Self::tenants).
    pub fn with_tenants(mut self, tenants: BTreeMap<String, Duration>) -> Self {
        self.tenants = tenants;
        self
    }
}

impl RetentionPolicy {
    /// One maximum age for every tenant.
    pub fn all(max_age: Duration) -> Self {
        Self { default: Some(max_age), tenants: BTreeMap::new() }
    }

    /// `tenant`'s maximum age, if it has one.
    pub fn max_age(&self, tenant: &str) -> Option<Duration> {
        self.tenants.get(tenant).copied().or(self.default)
    }

    /// Whether this policy deletes nothing.
    pub fn keeps_everything(&self) -> bool {
        self.default.is_none() && self.tenants.is_empty()
    }
}

impl Store {
    /// Deletes partitions whose hour ended more than `max_age` before `now`; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed or removed.
    pub fn apply_retention(&mut self, max_age: Duration, now: Timestamp) -> Result<usize> {
        self.apply_retention_policy(&RetentionPolicy::all(max_age), now)
    }

    /// Deletes partitions whose hour ended longer before `now` than their tenant's maximum
    /// age in `policy`; returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] if a directory cannot be listed or removed.
    pub fn apply_retention_policy(
        &mut self,
        policy: &RetentionPolicy,
        now: Timestamp,
    ) -> Result<usize> {
        #[cfg(feature = "object-store")]
        if let Some(remote) = self.remote() {
            let n = expire_remote(remote, policy, now, self.scope())?;
            self.reopen()?;
            return Ok(n);
        }
        let n = expire_partitions_in(self.root(), policy, now, self.scope())?;
        self.reopen()?;
        Ok(n)
    }
}

/// Deletes the partition directories under `root` whose hour ended before `now - max_age`.
pub(crate) fn expire_partitions(
    root: &Path,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Result<usize> {
    expire_partitions_in(root, policy, now, None)
}

/// [`expire_partitions`] within `tenant`'s partitions only (`None`: every tenant).
fn expire_partitions_in(
    root: &Path,
    policy: &RetentionPolicy,
    now: Timestamp,
    tenant: Option<&str>,
) -> Result<usize> {
    let mut paths = Vec::new();
    walk(&root.join("events"), &mut paths)?;
    let mut dirs: Vec<(PathBuf, Partition)> = paths
        .iter()
        .filter_map(|p| Partition::from_path(root, p).map(|part| (part.dir(root), part)))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut removed = 0;
    for (dir, partition) in dirs {
        if tenant.is_some_and(|t| partition.tenant != t) {
            continue;
        }
        let Some(max_age) = policy.max_age(&partition.tenant) else { continue };
        let cutoff = now.0 as i128 - max_age.as_nanos() as i128;
        if partition.end_ns() <= cutoff {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("remove expired partition", &dir, e))?;
            removed += 1;
            // Remove the date and tenant directories once empty.
            let mut parent = dir.parent();
            while let Some(p) = parent {
                if p == root.join("events") || fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
    }
    Ok(removed)
}

/// Retention on object storage: deletes every object of the expired partitions (a scoped
/// store lists its tenant's prefix only); returns how many partitions were removed. Objects
/// that are not partition files (a shortened tenant's name file) stay.
#[cfg(feature = "object-store")]
fn expire_remote(
    remote: &crate::RemoteRoot,
    policy: &RetentionPolicy,
    now: Timestamp,
    tenant: Option<&str>,
) -> Result<usize> {
    let under = match tenant {
        Some(t) => format!("events/tenant={}/", crate::layout::tenant_segment(t)),
        None => "events/".to_owned(),
    };
    let objects = remote.list(&under)?;
    let mut names = std::collections::HashMap::new();
    for object in &objects {
        let Some(relative) = remote.relative(&object.location) else { continue };
        if let Some(dir) = relative.strip_suffix(&format!("/{}", crate::layout::TENANT_NAME_FILE))
            && let Some(segment) = dir.strip_prefix("events/tenant=")
            && let Some(bytes) = remote.read_small(&object.location)?
            && let Ok(name) = String::from_utf8(bytes.to_vec())
        {
            names.insert(segment.to_owned(), name);
        }
    }
    let mut expired = std::collections::BTreeSet::new();
    let mut doomed = Vec::new();
    for object in objects {
        let Some(relative) = remote.relative(&object.location) else { continue };
        let Some(partition) =
            Partition::from_relative(relative, |segment| names.get(segment).cloned())
        else {
            continue;
        };
        if tenant.is_some_and(|t| partition.tenant != t) {
            continue;
        }
        let Some(max_age) = policy.max_age(&partition.tenant) else { continue };
        let cutoff = now.0 as i128 - max_age.as_nanos() as i128;
        if partition.end_ns() <= cutoff {
            expired.insert(partition);
            doomed.push(object.location);
        }
    }
    remote.delete(doomed)?;
    Ok(expired.len())
}
