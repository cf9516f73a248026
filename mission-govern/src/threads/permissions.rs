//! Permission lineage: what a thread may do, as allow patterns over `action:resource`, and a
//! child's permissions as the intersection of its own and every ancestor's. A request that
//! some level of the chain does not allow is an *escalation*: the level that narrowed it (the
//! nearest one) is named, with a severity.
//!
//! ```
//! use mission_core::{Symbol, ThreadId};
//! use mission_govern::directives::Severity;
//! use mission_govern::threads::{NewThread, PermissionSet, ThreadRegistry};
//!
//! let registry = ThreadRegistry::new();
//! let tenant = Symbol::intern("acme");
//! let parent = registry
//!     .register(NewThread::new(tenant, Symbol::intern("planner"), ThreadId::generate(), 0)
//!         .with_permissions(PermissionSet::new(["tool_call:search_*"])?))
//!     .expect("room in the table");
//! // The child asks for more than its parent holds: it gets the intersection.
//! let child = registry
//!     .register(NewThread::new(tenant, Symbol::intern("researcher"), ThreadId::generate(), 0)
//!         .with_parent(parent)
//!         .with_permissions(PermissionSet::new(["tool_call:*"])?
//!             .with_escalation("tool_call:refund_*", Severity::Critical)?))
//!     .expect("room in the table");
//! assert!(registry.check_permission(child, "tool_call", "search_web").is_none());
//! let escalation = registry.check_permission(child, "tool_call", "refund_payment").unwrap();
//! assert_eq!(escalation.narrowing.depth, 0, "the parent narrowed it");
//! assert_eq!(escalation.severity, Severity::Warning, "the parent's severity");
//! # Ok::<(), mission_govern::Error>(())
//! ```

use crate::directives::Severity;
use crate::policy::{check_pattern, glob_match};
use crate::{Error, Result};

/// Most patterns (allow and escalation ones together) in one permission set.
pub const MAX_PERMISSION_PATTERNS: usize = 256;
/// Longest name of a permission set, in bytes.
pub const MAX_PERMISSION_NAME_BYTES: usize = 128;
/// Longest `rule` a narrowing names, in bytes (a set without a name is named by its patterns).
pub const MAX_RULE_BYTES: usize = 512;

/// Does `pattern` (`action` glob, optionally `:resource` glob) match the request?
fn pattern_matches(pattern: &str, action: &str, resource: &str) -> bool {
    match pattern.split_once(':') {
        Some((a, r)) => glob_match(a, action) && glob_match(r, resource),
        None => glob_match(pattern, action),
    }
}

fn invalid(message: String) -> Error {
    Error::Config { origin: "permissions".into(), message }
}

/// An escalation's severity for the requests a pattern matches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct EscalationRule {
    /// `action` glob, optionally `:resource` glob.
    pub pattern: String,
    /// The severity of an escalation it matches.
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub severity: Severity,
}

/// What a thread may do: allow patterns `action:resource` (`*` and `?` globs, as in
/// [`policy`](crate::policy); `tool_call:search_*`, `file.read:*`, or an action alone for any
/// resource). A request none of them matches is an escalation, of the severity of the first
/// escalation rule that matches it, else the set's (default `warning`). Validated when built:
/// at most [`MAX_PERMISSION_PATTERNS`] patterns, each non-empty, at most
/// [`MAX_PATTERN_BYTES`](crate::policy::MAX_PATTERN_BYTES) bytes, without control characters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PermissionSet {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    allow: Vec<String>,
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    severity: Severity,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    escalations: Vec<EscalationRule>,
}

impl PermissionSet {
    /// A set allowing what `allow` matches (an empty list allows nothing).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad pattern, or too many patterns.
    pub fn new<I, S>(allow: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut allow_list = Vec::new();
        for pattern in allow {
            if allow_list.len() >= MAX_PERMISSION_PATTERNS {
                return Err(invalid(format!("more than {MAX_PERMISSION_PATTERNS} patterns")));
            }
            let pattern = pattern.into();
            check_pattern("allow", &pattern).map_err(invalid)?;
            allow_list.push(pattern);
        }
        Ok(Self { name: None, allow: allow_list, severity: Severity::Warning, escalations: vec![] })
    }

    /// Names the set (what a narrowing it makes records as its rule).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty name, one of more than [`MAX_PERMISSION_NAME_BYTES`]
    /// bytes or with control characters.
    pub fn named(mut self, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.trim().is_empty()
            || name.len() > MAX_PERMISSION_NAME_BYTES
            || name.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "a name is 1 to {MAX_PERMISSION_NAME_BYTES} bytes without control characters"
            )));
        }
        self.name = Some(name);
        Ok(self)
    }

    /// The severity of an escalation no escalation rule matches (default `warning`).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Escalations matching `pattern` are of `severity` (the first matching rule wins).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad pattern, or too many patterns.
    pub fn with_escalation(
        mut self,
        pattern: impl Into<String>,
        severity: Severity,
    ) -> Result<Self> {
        let pattern = pattern.into();
        if self.allow.len() + self.escalations.len() >= MAX_PERMISSION_PATTERNS {
            return Err(invalid(format!("more than {MAX_PERMISSION_PATTERNS} patterns")));
        }
        check_pattern("escalation", &pattern).map_err(invalid)?;
        self.escalations.push(EscalationRule { pattern, severity });
        Ok(self)
    }

    /// Its name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The allow patterns.
    pub fn allow(&self) -> &[String] {
        &self.allow
    }

    /// The severity of an escalation no rule matches.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The escalation rules, in order.
    pub fn escalations(&self) -> &[EscalationRule] {
        &self.escalations
    }

    /// The allow pattern that matches `action` on `resource`, if any. No allocation.
    pub fn matching(&self, action: &str, resource: &str) -> Option<&str> {
        self.allow.iter().map(String::as_str).find(|p| pattern_matches(p, action, resource))
    }

    /// The severity of an escalation to `action` on `resource`.
    pub fn severity_of(&self, action: &str, resource: &str) -> Severity {
        self.escalations
            .iter()
            .find(|e| pattern_matches(&e.pattern, action, resource))
            .map_or(self.severity, |e| e.severity)
    }

    /// The escalation `action` on `resource` is for the thread `thread_id` at `depth` holding
    /// this set, if the set does not allow it (allocates only then).
    pub fn escalation(
        &self,
        thread_id: mission_core::ThreadId,
        depth: u8,
        action: &str,
        resource: &str,
    ) -> Option<Escalation> {
        self.matching(action, resource).is_none().then(|| Escalation {
            narrowing: Narrowing { thread_id: thread_id.to_string(), depth, rule: self.rule() },
            severity: self.severity_of(action, resource),
        })
    }

    /// What a narrowing by this set records as its rule: the name, else `allow [patterns]`
    /// (cut to [`MAX_RULE_BYTES`]).
    pub fn rule(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let mut rule = format!("allow [{}]", self.allow.join(", "));
        if rule.len() > MAX_RULE_BYTES {
            let mut end = MAX_RULE_BYTES - 4;
            while !rule.is_char_boundary(end) {
                end -= 1;
            }
            rule.truncate(end);
            rule.push_str("…]");
        }
        rule
    }
}

/// Which level of a thread's lineage narrowed a permission decision.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Narrowing {
    /// The thread whose permissions do not include the request: the thread itself or an
    /// ancestor (32 hex digits).
    pub thread_id: String,
    /// Its depth in the tree (0 for a root).
    pub depth: u8,
    /// Its permission set, by name or by its allow patterns.
    pub rule: String,
}

/// An attempt to use a permission a thread does not hold: who narrowed it, and how bad it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// The level that narrowed it (the nearest one, from the thread up).
    pub narrowing: Narrowing,
    /// Its severity, as that level's set judges it.
    pub severity: Severity,
}

/// One level of a thread's lineage, as [`PermissionExplanation`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PermissionLevel {
    /// The thread (32 hex digits).
    pub thread_id: String,
    /// Its agent.
    pub agent: String,
    /// Its depth (0 for the root).
    pub depth: u8,
    /// Its own permission set; none: it narrows nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionSet>,
    /// Whether this level allows the request (none without a set or a request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allows: Option<bool>,
    /// The allow pattern that matched the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
}

/// A thread's permission lineage, root first, and the decision for one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PermissionExplanation {
    /// The thread's tenant.
    pub tenant: String,
    /// The thread (32 hex digits).
    pub thread_id: String,
    /// The chain from the root to the thread.
    pub chain: Vec<PermissionLevel>,
    /// The action asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The resource asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Whether the lineage allows it (the policy decides too, when asked through `permit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// The level that narrowed it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrowed_by: Option<Narrowing>,
    /// The escalation's severity, when one narrowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub escalation: Option<Severity>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MAX_PATTERN_BYTES;

    #[test]
    fn patterns_match_action_and_resource() {
        let set = PermissionSet::new(["tool_call:search_*", "file.read"]).unwrap();
        assert_eq!(set.matching("tool_call", "search_web"), Some("tool_call:search_*"));
        assert_eq!(set.matching("tool_call", "refund"), None);
        assert_eq!(set.matching("file.read", "/etc/passwd"), Some("file.read"));
        assert_eq!(set.matching("file.write", "x"), None);
        // A resource may hold `:` itself: only the pattern's first `:` separates.
        let set = PermissionSet::new(["db:table:users"]).unwrap();
        assert_eq!(set.matching("db", "table:users"), Some("db:table:users"));
        assert!(PermissionSet::new(Vec::<String>::new()).unwrap().matching("a", "b").is_none());
    }

    #[test]
    fn sets_are_bounded_and_checked() {
        assert!(PermissionSet::new([""]).is_err());
        assert!(PermissionSet::new(["a\nb"]).is_err());
        assert!(PermissionSet::new(["x".repeat(MAX_PATTERN_BYTES + 1)]).is_err());
        let many: Vec<String> = (0..=MAX_PERMISSION_PATTERNS).map(|i| format!("a{i}")).collect();
        let err = PermissionSet::new(many).unwrap_err().to_string();
        assert!(err.contains("256"), "{err}");
        let full: Vec<String> = (0..MAX_PERMISSION_PATTERNS).map(|i| format!("a{i}")).collect();
        assert!(PermissionSet::new(full).unwrap().with_escalation("b", Severity::Error).is_err());
        assert!(PermissionSet::new(["a"]).unwrap().named("").is_err());
        let long: Vec<String> = (0..200).map(|i| format!("tool_call:pattern_{i}")).collect();
        let rule = PermissionSet::new(long).unwrap().rule();
        assert!(rule.len() <= MAX_RULE_BYTES && rule.ends_with("…]"), "{rule}");
    }

    #[test]
    fn the_first_matching_escalation_rule_sets_the_severity() {
        let set = PermissionSet::new(["read:*"])
            .unwrap()
            .with_severity(Severity::Info)
            .with_escalation("tool_call:refund_*", Severity::Critical)
            .unwrap()
            .with_escalation("tool_call:*", Severity::Error)
            .unwrap();
        assert_eq!(set.severity_of("tool_call", "refund_all"), Severity::Critical);
        assert_eq!(set.severity_of("tool_call", "search"), Severity::Error);
        assert_eq!(set.severity_of("write", "x"), Severity::Info);
    }
}
