//! Policies as data, and every decision made visible.
//!
//! A [`PolicySet`] is a list of rules loaded from TOML or JSON, each saying that an *actor*
//! doing an *action* to a *resource* in a *tenant* is allowed or denied, with `*` and `?`
//! glob patterns:
//!
//! ```toml
//! default = "allow"            # when no rule matches (default: allow)
//!
//! [[rule]]
//! name = "no-refunds-for-bots"
//! tenant = "acme"              # optional, "*" by default
//! effect = "deny"
//! actor = "agent:*"            # optional, "*" by default
//! action = "tool.call"         # optional, "*" by default
//! resource = "refund_*"        # optional, "*" by default
//! reason = "refunds need a person"   # optional, shown in the decision
//! ```
//!
//! **Evaluation is deny-overrides**: if any matching rule denies, the answer is deny (naming
//! the first such rule in file order); otherwise, if any matching rule allows, allow (naming
//! the first); otherwise the set's `default`. The order of rules therefore never changes
//! whether something is allowed, only which rule is named — adding an allow rule can never
//! open what a deny rule closed.
//!
//! A [`PolicyEnforcer`] asks the set and records every decision as a permission event
//! (actor, action, resource, allow/deny, the deciding rule, and the reason as the
//! `permission.reason` attribute), so "what was this agent denied today, and by which rule?"
//! is a store query: `store.query().kind("permission")` with the `permission_*` columns.
//! Given an [`AuditLog`], it also appends every denial and every policy change to the audit
//! trail.
//!
//! ```
//! use mission_govern::policy::PolicySet;
//!
//! let policy = PolicySet::from_toml_str(r#"
//!     [[rule]]
//!     name = "no-refunds-for-bots"
//!     effect = "deny"
//!     actor = "agent:*"
//!     action = "tool.call"
//!     resource = "refund_*"
//! "#)?;
//! let d = policy.decide("acme", "agent:support-bot", "tool.call", "refund_payment");
//! assert!(!d.allowed);
//! assert_eq!(d.rule.as_deref(), Some("no-refunds-for-bots"));
//! assert!(policy.decide("acme", "user:jo", "tool.call", "refund_payment").allowed);
//! # Ok::<(), mission_govern::Error>(())
//! ```
//!
//! # Untrusted input
//!
//! Policy files are validated when loaded: unknown fields, a missing `name` or `effect`, an
//! empty or oversized pattern, control characters and duplicate rule names are errors naming
//! the line and the field. Matching is linear-time backtracking over `*` (no regular
//! expressions), bounded by the pattern length ([`MAX_PATTERN_BYTES`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use mission_core::{EventBody, PermissionDecision, Recorder, SpanId, Symbol, Text, ThreadContext};

use crate::audit::{self, AuditLog};
use crate::{Error, Result};

/// Most bytes of a rule's name.
pub const MAX_NAME_BYTES: usize = 128;
/// Most bytes of a pattern.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Most rules in one set.
pub const MAX_RULES: usize = 10_000;
/// The `policy` recorded when no rule matched and the default decided.
pub const DEFAULT_RULE: &str = "(default)";
/// The attribute key the reason of a recorded decision is stored under.
pub const REASON_ATTRIBUTE: &str = "permission.reason";

/// What a rule (or the default) says.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allow.
    #[default]
    Allow,
    /// Deny.
    Deny,
}

impl Effect {
    /// As the event model's decision.
    pub const fn to_decision(self) -> mission_core::Decision {
        match self {
            Effect::Allow => mission_core::Decision::Allow,
            Effect::Deny => mission_core::Decision::Deny,
        }
    }

    /// `allow` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

pub(crate) fn check_pattern(field: &str, value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err(format!("field `{field}`: empty (use \"*\" for anything)"));
    }
    if value.len() > MAX_PATTERN_BYTES {
        return Err(format!("field `{field}`: {} bytes, at most {MAX_PATTERN_BYTES}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("field `{field}`: control characters are not allowed"));
    }
    Ok(())
}

fn check_name(value: &str) -> std::result::Result<(), String> {
    if value.trim().is_empty() {
        return Err("field `name`: empty".into());
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!("field `name`: {} bytes, at most {MAX_NAME_BYTES}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err("field `name`: control characters are not allowed".into());
    }
    Ok(())
}

macro_rules! checked_field {
    ($fn_name:ident, $check:expr) => {
        fn $fn_name<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> std::result::Result<String, D::Error> {
            let s = <String as serde::Deserialize>::deserialize(d)?;
            $check(&s).map_err(serde::de::Error::custom)?;
            Ok(s)
        }
    };
}
checked_field!(de_name, check_name);
checked_field!(de_tenant, |s: &str| check_pattern("tenant", s));
checked_field!(de_actor, |s: &str| check_pattern("actor", s));
checked_field!(de_action, |s: &str| check_pattern("action", s));
checked_field!(de_resource, |s: &str| check_pattern("resource", s));

fn any() -> String {
    "*".into()
}

/// One rule: who (`actor`) doing what (`action`) to what (`resource`) in which `tenant` is
/// allowed or denied. Patterns are globs: `*` is any run of characters, `?` one character,
/// everything else matches itself (case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// A unique name, recorded with every decision the rule makes.
    #[serde(deserialize_with = "de_name")]
    pub name: String,
    /// Tenant pattern (default `*`).
    #[serde(default = "any", deserialize_with = "de_tenant")]
    pub tenant: String,
    /// Allow or deny.
    pub effect: Effect,
    /// Actor pattern (default `*`): `agent:*`, `user:jo`.
    #[serde(default = "any", deserialize_with = "de_actor")]
    pub actor: String,
    /// Action pattern (default `*`): `tool.call`, `file.*`.
    #[serde(default = "any", deserialize_with = "de_action")]
    pub action: String,
    /// Resource pattern (default `*`): `refund_*`.
    #[serde(default = "any", deserialize_with = "de_resource")]
    pub resource: String,
    /// Why, shown in the decisions the rule makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PolicyRule {
    /// A rule named `name` with `effect` that matches everything; narrow it with the
    /// `with_*` methods.
    pub fn new(name: impl Into<String>, effect: Effect) -> Self {
        Self {
            name: name.into(),
            tenant: any(),
            effect,
            actor: any(),
            action: any(),
            resource: any(),
            reason: None,
        }
    }

    /// Only in tenants matching `pattern`.
    pub fn with_tenant(mut self, pattern: impl Into<String>) -> Self {
        self.tenant = pattern.into();
        self
    }

    /// Only for actors matching `pattern`.
    pub fn with_actor(mut self, pattern: impl Into<String>) -> Self {
        self.actor = pattern.into();
        self
    }

    /// Only for actions matching `pattern`.
    pub fn with_action(mut self, pattern: impl Into<String>) -> Self {
        self.action = pattern.into();
        self
    }

    /// Only on resources matching `pattern`.
    pub fn with_resource(mut self, pattern: impl Into<String>) -> Self {
        self.resource = pattern.into();
        self
    }

    /// With a reason shown in its decisions.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn validate(&self) -> std::result::Result<(), String> {
        check_name(&self.name)?;
        check_pattern("tenant", &self.tenant)?;
        check_pattern("actor", &self.actor)?;
        check_pattern("action", &self.action)?;
        check_pattern("resource", &self.resource)?;
        if let Some(r) = &self.reason
            && r.len() > 1024
        {
            return Err(format!("field `reason`: {} bytes, at most 1024", r.len()));
        }
        Ok(())
    }

    /// Whether the rule applies to this request.
    pub fn matches(&self, tenant: &str, actor: &str, action: &str, resource: &str) -> bool {
        glob_match(&self.tenant, tenant)
            && glob_match(&self.action, action)
            && glob_match(&self.actor, actor)
            && glob_match(&self.resource, resource)
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run of characters, `?` exactly one).
///
/// O(pattern × text) in the worst case, O(text) for patterns with one `*`; no allocation.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p = pattern.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and the text position it is currently taken to reach.
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        let c_len = text[ti..].chars().next().map_or(1, char::len_utf8);
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += c_len;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len()
            && text.as_bytes()[ti..].starts_with(&p[pi..pi + pat_char_len(p, pi)])
        {
            let n = pat_char_len(p, pi);
            pi += n;
            ti += n;
        } else if let Some((sp, st)) = star {
            // Let the `*` take one more character.
            let step = text[st..].chars().next().map_or(1, char::len_utf8);
            pi = sp + 1;
            ti = st + step;
            star = Some((sp, st + step));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// Length in bytes of the UTF-8 character starting at `p[i]`.
fn pat_char_len(p: &[u8], i: usize) -> usize {
    match p[i] {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    }
    .min(p.len() - i)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: Effect,
    #[serde(default, rename = "rule", alias = "rules")]
    rules: Vec<PolicyRule>,
}

/// The answer to "may this actor do this action to this resource?".
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyDecision {
    /// Whether it is allowed.
    pub allowed: bool,
    /// The rule that decided, or `None` when no rule matched and the default decided.
    pub rule: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Asked in a thread: the level of its lineage (itself or an ancestor) whose permissions
    /// do not include the request (see [`threads::PermissionSet`](crate::threads::PermissionSet)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::threads::Narrowing>,
    /// Asked in a thread whose lineage does not hold the permission: the escalation's severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<crate::directives::Severity>,
}

impl PolicyDecision {
    /// A decision with no lineage.
    pub fn new(allowed: bool, rule: Option<String>, reason: impl Into<String>) -> Self {
        Self { allowed, rule, reason: reason.into(), lineage: None, escalation: None }
    }

    /// This decision narrowed by a thread's lineage: denied (whatever the policy said), naming
    /// the level that narrowed it, with the escalation's severity. A policy denial keeps its
    /// rule and reason.
    pub fn narrowed(mut self, escalation: crate::threads::Escalation) -> Self {
        if self.allowed {
            let n = &escalation.narrowing;
            self.reason = format!(
                "escalation: thread {} (depth {}) does not hold this permission ({})",
                n.thread_id, n.depth, n.rule
            );
            self.rule = Some(format!("lineage:{}", n.rule));
            self.allowed = false;
        }
        self.lineage = Some(escalation.narrowing);
        self.escalation = Some(escalation.severity);
        self
    }

    /// As the event model's decision.
    pub fn to_decision(&self) -> mission_core::Decision {
        if self.allowed { mission_core::Decision::Allow } else { mission_core::Decision::Deny }
    }
}

/// A validated set of rules with a default effect, evaluated deny-overrides (see the
/// [module documentation](self)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySet {
    default: Effect,
    rules: Vec<PolicyRule>,
}

fn config_error(origin: &str, message: String) -> Error {
    Error::Config { origin: origin.to_owned(), message }
}

/// The line (from 1) of the `nth` (from 0) line of `text` holding `"needle"`.
fn line_of(text: &str, needle: &str, nth: usize) -> Option<usize> {
    let quoted = serde_json::Value::from(needle).to_string();
    text.lines().enumerate().filter(|(_, l)| l.contains(&quoted)).nth(nth).map(|(i, _)| i + 1)
}

impl PolicySet {
    /// A set with no rules: everything gets `default`.
    pub fn with_default(default: Effect) -> Self {
        Self { default, rules: Vec::new() }
    }

    /// A set of `rules` with `default`, validated.
    ///
    /// # Errors
    /// [`Error::Config`] naming the rule and field: an empty or oversized name or pattern,
    /// control characters, a duplicate name, more than [`MAX_RULES`] rules.
    pub fn new(default: Effect, rules: Vec<PolicyRule>) -> Result<Self> {
        Self::validated(default, rules, "policy", None)
    }

    fn validated(
        default: Effect,
        rules: Vec<PolicyRule>,
        origin: &str,
        text: Option<&str>,
    ) -> Result<Self> {
        if rules.len() > MAX_RULES {
            return Err(config_error(
                origin,
                format!("{} rules, at most {MAX_RULES}", rules.len()),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let at = |message: String, nth: usize| {
                let line = text
                    .and_then(|t| line_of(t, &rule.name, nth))
                    .map(|l| format!("line {l}, "))
                    .unwrap_or_default();
                config_error(origin, format!("{line}rule {} (`{}`), {message}", i + 1, rule.name))
            };
            rule.validate().map_err(|m| at(m, 0))?;
            let count = seen.entry(rule.name.as_str()).or_insert((i, 0usize));
            count.1 += 1;
            if count.1 > 1 {
                let first = count.0 + 1;
                return Err(at(
                    format!("field `name`: duplicate, rule {first} has the same name"),
                    count.1 - 1,
                ));
            }
        }
        Ok(Self { default, rules })
    }

    /// Parses and validates a TOML policy.
    ///
    /// # Errors
    /// [`Error::Config`] naming the line and field of the first problem.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::parse(text, false, "policy (TOML)")
    }

    /// Parses and validates a JSON policy (`{"default": "allow", "rules": [{…}]}`; `rule` is
    /// accepted for `rules`).
    ///
    /// # Errors
    /// [`Error::Config`] naming the line and field of the first problem.
    pub fn from_json_str(text: &str) -> Result<Self> {
        Self::parse(text, true, "policy (JSON)")
    }

    /// Reads a TOML policy file, or JSON when the name ends in `.json`.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field of the
    /// first problem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io { path: path.into(), source: e })?;
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&text, json, &path.display().to_string())
    }

    fn parse(text: &str, json: bool, origin: &str) -> Result<Self> {
        let file: PolicyFile = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        }
        .map_err(|message| config_error(origin, message))?;
        Self::validated(file.default, file.rules, origin, Some(text))
    }

    /// The effect when no rule matches.
    pub fn default_effect(&self) -> Effect {
        self.default
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// Decides whether `actor` may do `action` to `resource` in `tenant`: deny if any
    /// matching rule denies, else allow if any matching rule allows, else the default.
    ///
    /// O(rules × pattern length); allocates only the decision's strings.
    pub fn decide(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> PolicyDecision {
        let mut first_allow = None;
        for rule in &self.rules {
            if !rule.matches(tenant, actor, action, resource) {
                continue;
            }
            match rule.effect {
                Effect::Deny => return Self::by_rule(false, rule),
                Effect::Allow => {
                    first_allow.get_or_insert(rule);
                }
            }
        }
        match first_allow {
            Some(rule) => Self::by_rule(true, rule),
            None => PolicyDecision::new(
                self.default == Effect::Allow,
                None,
                format!("no rule matched; the default is {}", self.default.as_str()),
            ),
        }
    }

    fn by_rule(allowed: bool, rule: &PolicyRule) -> PolicyDecision {
        let verb = if allowed { "allowed" } else { "denied" };
        let reason = match &rule.reason {
            Some(why) => format!("{verb} by rule `{}`: {why}", rule.name),
            None => format!("{verb} by rule `{}`", rule.name),
        };
        PolicyDecision::new(allowed, Some(rule.name.clone()), reason)
    }
}

/// Asks a [`PolicySet`] and records every decision as a permission event; optionally
/// appends denials and policy changes to an [`AuditLog`]. Share it behind an `Arc`.
pub struct PolicyEnforcer {
    policy: RwLock<Arc<PolicySet>>,
    recorder: Recorder,
    audit: Option<Arc<AuditLog>>,
    audit_failures: AtomicU64,
    /// Tenants whose allowed decisions are audited too (`*`: every tenant).
    audit_allowed: Vec<String>,
}

impl std::fmt::Debug for PolicyEnforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEnforcer")
            .field("policy", &self.policy())
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl PolicyEnforcer {
    /// Enforces `policy`, recording decisions through `recorder`.
    pub fn new(policy: PolicySet, recorder: &Recorder) -> Self {
        Self {
            policy: RwLock::new(Arc::new(policy)),
            recorder: recorder.clone(),
            audit: None,
            audit_failures: AtomicU64::new(0),
            audit_allowed: Vec::new(),
        }
    }

    /// Also appends *allowed* decisions of `tenant` (`*`: every tenant) to the audit log, for
    /// regimes that log every access (HIPAA §164.312(b), PCI DSS 10.2); compliance packs set
    /// this.
    pub fn with_audited_access(mut self, tenant: impl Into<String>) -> Self {
        self.audit_allowed.push(tenant.into());
        self
    }

    /// Also appends every denial and policy change to `log`.
    pub fn with_audit_log(mut self, log: Arc<AuditLog>) -> Self {
        self.audit = Some(log);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<PolicySet> {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `policy` in force and returns the one it replaces; with an audit log, appends a
    /// `policy_change` record naming `changed_by`.
    pub fn replace_policy(&self, policy: PolicySet, changed_by: &str) -> Arc<PolicySet> {
        let rules: Vec<&str> = policy.rules().iter().map(|r| r.name.as_str()).collect();
        let detail = serde_json::json!({
            "default": policy.default_effect().as_str(),
            "rules": rules,
        });
        let old = std::mem::replace(
            &mut *self.policy.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(policy),
        );
        self.audit(audit::kind::POLICY_CHANGE, changed_by, "*", detail);
        old
    }

    /// Appends to the audit log, if any; failures are counted, never returned.
    fn audit(&self, kind: &str, actor: &str, tenant: &str, detail: serde_json::Value) {
        if let Some(log) = &self.audit
            && log.append(kind, actor, tenant, detail).is_err()
        {
            self.audit_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Audit records that could not be written.
    pub fn audit_failures(&self) -> u64 {
        self.audit_failures.load(Ordering::Relaxed)
    }

    /// Decides whether `actor` may do `action` to `resource` in `tenant`, and records the
    /// decision (outside any thread). Never fails: a decision that cannot be recorded is
    /// counted by the recorder like any dropped event.
    pub fn permit(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> PolicyDecision {
        let decision = self.policy().decide(tenant, actor, action, resource);
        self.record_for_tenant(tenant, actor, action, resource, decision)
    }

    /// Records `decision` (made here or elsewhere, e.g. by an open circuit breaker) outside any
    /// thread, under `tenant`: as a permission event, and a denial in the audit trail.
    pub fn record_for_tenant(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        resource: &str,
        decision: PolicyDecision,
    ) -> PolicyDecision {
        let ctx = ThreadContext {
            tenant: Symbol::intern(tenant),
            agent: Symbol::EMPTY,
            thread_id: mission_core::ThreadId::default(),
        };
        self.record_decision(&ctx, SpanId::NONE, tenant, actor, action, resource, decision)
    }

    /// Records `decision` (made here or elsewhere: by the policy and a thread's permission
    /// lineage, see [`PolicyDecision::narrowed`]) inside `thread` under `span`: as a permission
    /// event with the lineage attributes when it has a lineage, and a denial in the audit trail.
    pub fn record_in(
        &self,
        thread: &ThreadContext,
        span: SpanId,
        actor: &str,
        action: &str,
        resource: &str,
        decision: PolicyDecision,
    ) -> PolicyDecision {
        let tenant = thread.tenant.as_str();
        self.record_decision(thread, span, tenant, actor, action, resource, decision)
    }

    /// Like [`permit`](Self::permit), recorded inside `thread` under `span` (the tenant is the
    /// thread's).
    pub fn permit_in(
        &self,
        thread: &ThreadContext,
        span: SpanId,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> PolicyDecision {
        let decision = self.policy().decide(thread.tenant.as_str(), actor, action, resource);
        self.record_in(thread, span, actor, action, resource, decision)
    }

    /// Records `decision` (made here or elsewhere, e.g. by an open circuit breaker) as a
    /// permission event, and a denial in the audit trail.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_decision(
        &self,
        ctx: &ThreadContext,
        span: SpanId,
        tenant: &str,
        actor: &str,
        action: &str,
        resource: &str,
        decision: PolicyDecision,
    ) -> PolicyDecision {
        let action_symbol = Symbol::intern(action);
        let rule = decision.rule.as_deref().unwrap_or(DEFAULT_RULE);
        let mut event = ctx.event(
            action_symbol,
            span,
            EventBody::Permission(PermissionDecision {
                actor: Text::new(actor),
                action: action_symbol,
                resource: Text::new(resource),
                decision: decision.to_decision(),
                policy: Symbol::intern(rule),
            }),
        );
        event.attributes.set(Symbol::intern(REASON_ATTRIBUTE), decision.reason.as_str());
        if let Some(n) = &decision.lineage {
            use mission_core::thread::attr;
            event
                .attributes
                .set(Symbol::intern(attr::PERMISSION_NARROWED_BY), n.thread_id.as_str());
            event
                .attributes
                .set(Symbol::intern(attr::PERMISSION_ANCESTOR_DEPTH), i64::from(n.depth));
            event.attributes.set(Symbol::intern(attr::PERMISSION_LINEAGE_RULE), n.rule.as_str());
        }
        if let Some(severity) = decision.escalation {
            let key = Symbol::intern(mission_core::thread::attr::PERMISSION_ESCALATION);
            event.attributes.set(key, severity.as_str());
        }
        self.recorder.record(event);
        let audited = !decision.allowed
            || self.audit_allowed.iter().any(|t| t == "*" || t.as_str() == tenant);
        if audited {
            let mut detail = serde_json::json!({
                "action": action,
                "resource": resource,
                "rule": decision.rule,
                "reason": decision.reason,
                "thread_id": ctx.thread_id.to_string(),
            });
            if let (Some(n), Some(object)) = (&decision.lineage, detail.as_object_mut()) {
                object.insert("lineage".into(), serde_json::json!(n));
                object.insert("escalation".into(), serde_json::json!(decision.escalation));
            }
            self.audit(
                if decision.allowed {
                    audit::kind::PERMISSION_GRANTED
                } else {
                    audit::kind::PERMISSION_DENIED
                },
                actor,
                tenant,
                detail,
            );
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*", "", true),
            ("refund_*", "refund_payment", true),
            ("refund_*", "refunds", false),
            ("agent:*", "agent:", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("*.call", "tool.call", true),
            ("*a*b*c", "xxaxxbxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("é*", "été", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**", "anything", true),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn deny_overrides_and_default() {
        let set = PolicySet::new(
            Effect::Deny,
            vec![
                PolicyRule::new("bots-may-call-tools", Effect::Allow)
                    .with_actor("agent:*")
                    .with_action("tool.call"),
                PolicyRule::new("no-refunds", Effect::Deny).with_resource("refund_*"),
            ],
        )
        .expect("valid");
        let d = set.decide("acme", "agent:x", "tool.call", "refund_1");
        assert!(!d.allowed);
        assert_eq!(d.rule.as_deref(), Some("no-refunds"));
        let d = set.decide("acme", "agent:x", "tool.call", "lookup");
        assert!(d.allowed);
        assert_eq!(d.rule.as_deref(), Some("bots-may-call-tools"));
        let d = set.decide("acme", "user:jo", "file.write", "x");
        assert!(!d.allowed);
        assert_eq!(d.rule, None);
    }
}
