//! Redaction: personal data and secrets are replaced before events leave the process.
//!
//! A [`Redactor`] finds e-mail addresses, phone numbers, payment card numbers (Luhn-checked),
//! API keys and tokens of common providers, IP addresses and user-defined token patterns in
//! free text, and replaces each with a stable keyed token: `[email:3f9a2c1b]` is the first 8
//! hex digits of HMAC-SHA256(key, value). The same value always gives the same token (so
//! "the same customer" can still be followed across events), and without the key a token
//! cannot be reversed or confirmed by guessing.
//!
//! [`Redactor::redact_event`] covers every free-text field of an [`Event`]: the log message,
//! the span error message, the permission actor and resource, a score's label and comment,
//! and string attribute values. A score's comment is content: like attributes holding prompt or
//! completion content, unless a tenant sets `capture_content` it is replaced by
//! [`CONTENT_OMITTED`]. Unless a tenant sets `capture_content`, attributes holding prompt or
//! completion content are replaced by [`CONTENT_OMITTED`]: the keys of [`CONTENT_KEYS`] — one table covering the
//! OpenTelemetry GenAI conventions (`gen_ai.input.messages`, `gen_ai.prompt.*`...),
//! OpenInference (`input.value`, `llm.input_messages.*`...), OpenLLMetry
//! (`traceloop.entity.input`...), Langfuse (`langfuse.observation.input`...) and Logfire /
//! Pydantic AI (`all_messages_events`, `pydantic_ai.all_messages`...) — and any key ending in
//! `.content`.
//!
//! Content omission runs even when no redaction is configured: `MissionControl` then puts a
//! redactor with every detector off in front of its sinks
//! ([`RedactionConfig::content_only`]), and tenants opt in to content with
//! `MissionControlBuilder::with_content_capture` (mission-sdk),
//! `MISSION_CAPTURE_CONTENT` or a configuration's `capture_content` (compliance packs that turn
//! content off still win).
//!
//! [`RedactingSink`] puts a redactor in front of other sinks (the store, OTLP export), with
//! counters readable from any thread.
//!
//! # What is detected
//!
//! | label | what | how |
//! |---|---|---|
//! | `email` | `local@domain.tld` | domain with a dot and an alphabetic top-level label of 2+ letters |
//! | `phone` | `+44 20 7946 0958`, `(555) 123-4567`, `06 12 34 56 78` | a leading `+` (7–15 digits), or 9–15 digits with separators (space, `-`, `.`, parentheses); ISO dates, times and bare digit runs (ids, timestamps) are left alone |
//! | `card` | 13–19 digits, optionally grouped by spaces or dashes | Luhn-valid and starting with 2–6 (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay), so nanosecond timestamps are not cards |
//! | `openai_key`, `anthropic_key`, `aws_key`, `github_token`, `slack_token`, `google_key`, `stripe_key` | `sk-…`, `sk-proj-…`, `sk-ant-…`, `AKIA…`/`ASIA…`, `ghp_…`/`github_pat_…`, `xox[bpars]-…`, `AIza…`, `sk_live_…`/`rk_live_…` (and `_test_`) | the provider's prefix at a word start and a body of the provider's alphabet and length |
//! | `jwt` | `eyJ….….…` | three base64url segments |
//! | `token` | the token after `Bearer ` | case-insensitive `bearer`, then 8+ token characters; the word `Bearer` stays |
//! | `ip` | IPv4 and IPv6 addresses | dotted quads of 0–255; IPv6 as parsed by the standard library, with a digit |
//! | yours | [`TokenPattern`]: a prefix and a body of letters, digits, `_` and `-` | no regular expressions, so scanning stays linear |
//!
//! Matches that overlap are merged into one replacement, so no part of a found value survives.
//!
//! # Configuration
//!
//! ```
//! use mission_govern::redact::{RedactionConfig, Redactor};
//!
//! let config: RedactionConfig = toml::from_str(r#"
//!     key = "a secret of at least 16 bytes"
//!     [default]
//!     ip_addresses = false
//!     [[default.patterns]]
//!     label = "ticket"
//!     prefix = "TCK-"
//!     [tenants.research]
//!     capture_content = true
//! "#)?;
//! let redactor = Redactor::new(config)?;
//! let (text, n) = redactor.redact_str("acme", "mail jo@example.com about TCK-12345");
//! assert_eq!(n, 2);
//! assert!(text.starts_with("mail [email:") && !text.contains("TCK-12345"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cost
//!
//! Scanning is linear in the text (a few passes over the bytes) and allocates nothing when
//! nothing is found; [`RedactingSink`] forwards a batch without copying it when no event in it
//! needs a change.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, KeyInit, Mac};
use mission_core::{AttrValue, Event, EventBody, Sink, SinkContext, SinkError, Symbol, Text};
use sha2::Sha256;

use crate::{Error, Result};

mod scan;

use scan::{any_match, find_all};

/// Fewest bytes a redaction key may have.
pub const MIN_KEY_BYTES: usize = 16;

/// What replaces prompt and completion content when a tenant does not capture it.
pub const CONTENT_OMITTED: &str = "[content omitted]";

/// One entry of [`CONTENT_KEYS`]: an attribute key that holds prompt, completion or tool
/// content in some instrumentation convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentKey {
    /// The convention that defines the key (for documentation and tests).
    pub convention: &'static str,
    /// The key.
    pub key: &'static str,
    /// Whether keys under it (`key.` followed by anything, e.g. `gen_ai.prompt.0.content`)
    /// are content too; otherwise only the exact key is.
    pub prefix: bool,
}

const fn exact(convention: &'static str, key: &'static str) -> ContentKey {
    ContentKey { convention, key, prefix: false }
}

const fn tree(convention: &'static str, key: &'static str) -> ContentKey {
    ContentKey { convention, key, prefix: true }
}

/// Attribute keys that hold prompt, completion or tool content, by convention: the one table
/// content omission reads (besides it, any key ending in `.content` is content).
///
/// | convention | keys |
/// |---|---|
/// | OpenTelemetry GenAI (semconv 1.37 and older) | `gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`, `gen_ai.prompt[.*]`, `gen_ai.completion[.*]`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result` |
/// | OpenInference (Arize Phoenix) | `input.value`, `output.value`, `llm.input_messages.*`, `llm.output_messages.*`, `llm.prompts[.*]`, `llm.prompt_template.variables`, `retrieval.documents.*`, `embedding.embeddings.*` |
/// | OpenLLMetry (Traceloop) | `gen_ai.prompt.N.content`, `gen_ai.completion.N.content` (above), `traceloop.entity.input`, `traceloop.entity.output` |
/// | Langfuse | `langfuse.observation.input`, `langfuse.observation.output`, `langfuse.trace.input`, `langfuse.trace.output` |
/// | Logfire / Pydantic AI | `all_messages_events`, `pydantic_ai.all_messages`, `events`, `final_result`, `request_data`, `response_data`, `tool_arguments`, `tool_response` |
///
/// Logfire's `logfire.msg` is the span's formatted title (`Chat Completion with 'gpt-4o'`),
/// not content, and is kept.
pub const CONTENT_KEYS: &[ContentKey] = &[
    // OpenTelemetry GenAI semantic conventions (current names, then the deprecated ones).
    exact("OpenTelemetry GenAI", "gen_ai.input.messages"),
    exact("OpenTelemetry GenAI", "gen_ai.output.messages"),
    exact("OpenTelemetry GenAI", "gen_ai.system_instructions"),
    exact("OpenTelemetry GenAI", "gen_ai.tool.call.arguments"),
    exact("OpenTelemetry GenAI", "gen_ai.tool.call.result"),
    tree("OpenTelemetry GenAI", "gen_ai.prompt"),
    tree("OpenTelemetry GenAI", "gen_ai.completion"),
    // OpenInference.
    exact("OpenInference", "input.value"),
    exact("OpenInference", "output.value"),
    tree("OpenInference", "llm.input_messages"),
    tree("OpenInference", "llm.output_messages"),
    tree("OpenInference", "llm.prompts"),
    exact("OpenInference", "llm.prompt_template.variables"),
    tree("OpenInference", "retrieval.documents"),
    tree("OpenInference", "embedding.embeddings"),
    // OpenLLMetry (its `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` are covered above).
    exact("OpenLLMetry", "traceloop.entity.input"),
    exact("OpenLLMetry", "traceloop.entity.output"),
    // Langfuse.
    exact("Langfuse", "langfuse.observation.input"),
    exact("Langfuse", "langfuse.observation.output"),
    exact("Langfuse", "langfuse.trace.input"),
    exact("Langfuse", "langfuse.trace.output"),
    // Logfire and Pydantic AI (its instrumentation versions 1 and 2+).
    exact("Logfire", "all_messages_events"),
    exact("Logfire", "pydantic_ai.all_messages"),
    exact("Logfire", "events"),
    exact("Logfire", "final_result"),
    exact("Logfire", "request_data"),
    exact("Logfire", "response_data"),
    exact("Logfire", "tool_arguments"),
    exact("Logfire", "tool_response"),
];

/// What a redactor looks for, for one tenant or as the default. Every detector is on by
/// default; content is not captured by default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionRules {
    /// Keep prompt and completion content attributes (otherwise replaced by
    /// [`CONTENT_OMITTED`]). Default false.
    pub capture_content: bool,
    /// Redact e-mail addresses.
    pub emails: bool,
    /// Redact phone numbers.
    pub phones: bool,
    /// Redact Luhn-valid payment card numbers.
    pub cards: bool,
    /// Redact API keys, JWTs and bearer tokens.
    pub secrets: bool,
    /// Redact IPv4 and IPv6 addresses.
    pub ip_addresses: bool,
    /// Tokens of your own (ticket ids, internal keys).
    pub patterns: Vec<TokenPattern>,
}

impl RedactionRules {
    /// No detector on; content omitted.
    pub fn content_only() -> Self {
        Self {
            capture_content: false,
            emails: false,
            phones: false,
            cards: false,
            secrets: false,
            ip_addresses: false,
            patterns: Vec::new(),
        }
    }
}

impl Default for RedactionRules {
    fn default() -> Self {
        Self {
            capture_content: false,
            emails: true,
            phones: true,
            cards: true,
            secrets: true,
            ip_addresses: true,
            patterns: Vec::new(),
        }
    }
}

/// One tenant's changes to the default [`RedactionRules`]: every field left out keeps the
/// default's value; `patterns`, when given, replaces the default's list.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionOverride {
    /// See [`RedactionRules::capture_content`].
    pub capture_content: Option<bool>,
    /// See [`RedactionRules::emails`].
    pub emails: Option<bool>,
    /// See [`RedactionRules::phones`].
    pub phones: Option<bool>,
    /// See [`RedactionRules::cards`].
    pub cards: Option<bool>,
    /// See [`RedactionRules::secrets`].
    pub secrets: Option<bool>,
    /// See [`RedactionRules::ip_addresses`].
    pub ip_addresses: Option<bool>,
    /// See [`RedactionRules::patterns`].
    pub patterns: Option<Vec<TokenPattern>>,
}

impl RedactionOverride {
    /// `base` with this override's fields applied.
    pub fn apply(&self, base: &RedactionRules) -> RedactionRules {
        RedactionRules {
            capture_content: self.capture_content.unwrap_or(base.capture_content),
            emails: self.emails.unwrap_or(base.emails),
            phones: self.phones.unwrap_or(base.phones),
            cards: self.cards.unwrap_or(base.cards),
            secrets: self.secrets.unwrap_or(base.secrets),
            ip_addresses: self.ip_addresses.unwrap_or(base.ip_addresses),
            patterns: self.patterns.clone().unwrap_or_else(|| base.patterns.clone()),
        }
    }
}

/// A token of your own: `prefix` at the start of a word followed by at least `min_len`
/// letters, digits, `_` or `-` (`TCK-` + `12345`). Replaced by `[label:…]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPattern {
    /// The label in the replacement: ASCII letters, digits and `_`, at most 32 bytes.
    pub label: String,
    /// What the token starts with (case-sensitive, no whitespace, at most 64 bytes).
    pub prefix: String,
    /// Fewest body characters after the prefix (default 4).
    #[serde(default = "default_min_len")]
    pub min_len: usize,
}

fn default_min_len() -> usize {
    4
}

/// A redactor's configuration: the HMAC key, the default rules and per-tenant overrides.
/// Deserialises from TOML or JSON ([`from_file`](Self::from_file)).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedactionConfig {
    /// The secret key of the keyed hash in replacement tokens, at least [`MIN_KEY_BYTES`]
    /// bytes. Keep it out of the store: whoever has it can confirm a guessed value.
    pub key: String,
    /// The rules of every tenant without an override.
    pub default: RedactionRules,
    /// Per-tenant changes to the default rules, by tenant name.
    pub tenants: BTreeMap<String, RedactionOverride>,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl RedactionConfig {
    /// Sets [`default`](Self::default).
    pub fn with_default(mut self, default: RedactionRules) -> Self {
        self.default = default;
        self
    }

    /// Sets [`tenants`](Self::tenants).
    pub fn with_tenants(mut self, tenants: BTreeMap<String, RedactionOverride>) -> Self {
        self.tenants = tenants;
        self
    }
}

impl std::fmt::Debug for RedactionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactionConfig")
            .field("key", &"(hidden)")
            .field("default", &self.default)
            .field("tenants", &self.tenants)
            .finish()
    }
}

impl RedactionConfig {
    /// What runs when no redaction is configured: no detector on, and prompt and completion
    /// content omitted except for the tenants in `capture` (`*`: every tenant, in which case
    /// nothing needs to run and this is `None`).
    pub fn content_only(capture: &[String]) -> Option<Self> {
        if capture.iter().any(|t| t == "*") {
            return None;
        }
        // The key makes replacement tokens; with every detector off none is ever made, so a
        // per-process random key (never stored) only satisfies the length check.
        use std::hash::{BuildHasher, Hasher};
        let random = |n: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(n);
            h.finish()
        };
        let mut config = Self {
            key: format!("{:016x}{:016x}", random(1), random(2)),
            default: RedactionRules::content_only(),
            tenants: BTreeMap::new(),
        };
        config.capture_content_for(capture);
        Some(config)
    }

    /// Keeps prompt and completion content for the tenants in `capture` (`*`: the default
    /// rules, so every tenant without an override of its own).
    pub fn capture_content_for(&mut self, capture: &[String]) {
        for tenant in capture {
            if tenant == "*" {
                self.default.capture_content = true;
            } else {
                self.tenants.entry(tenant.clone()).or_default().capture_content = Some(true);
            }
        }
    }

    /// The default rules with `key`.
    pub fn with_key(key: impl Into<String>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }

    /// Reads a TOML or JSON (by extension) redaction configuration file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field if it
    /// does not parse.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::config_file::read_toml_or_json(path.as_ref())
    }

    /// The rules that apply to `tenant`.
    pub fn rules_for(&self, tenant: &str) -> RedactionRules {
        match self.tenants.get(tenant) {
            Some(o) => o.apply(&self.default),
            None => self.default.clone(),
        }
    }
}

/// Finds and replaces personal data and secrets in text and events. Cheap to clone (shared).
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<RedactorInner>,
}

struct RedactorInner {
    mac: Hmac<Sha256>,
    default: RedactionRules,
    tenants: HashMap<String, RedactionRules>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("default", &self.inner.default)
            .field("tenants", &self.inner.tenants)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> Error {
    Error::Config { origin: "redaction configuration".into(), message }
}

fn validate_rules(where_: &str, rules: &RedactionRules) -> Result<()> {
    for (i, p) in rules.patterns.iter().enumerate() {
        let at = format!("{where_}.patterns[{i}]");
        if p.label.is_empty()
            || p.label.len() > 32
            || !p.label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(invalid(format!(
                "{at}.label {:?}: expected 1 to 32 ASCII letters, digits or `_`",
                p.label.chars().take(40).collect::<String>()
            )));
        }
        if p.prefix.is_empty() || p.prefix.len() > 64 || p.prefix.chars().any(char::is_whitespace) {
            return Err(invalid(format!("{at}.prefix: expected 1 to 64 bytes without whitespace")));
        }
        if p.min_len > 4096 {
            return Err(invalid(format!("{at}.min_len {}: at most 4096", p.min_len)));
        }
    }
    Ok(())
}

impl Redactor {
    /// A redactor for `config`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field if the key is shorter than [`MIN_KEY_BYTES`] or a
    /// [`TokenPattern`] is invalid.
    pub fn new(config: RedactionConfig) -> Result<Self> {
        if config.key.len() < MIN_KEY_BYTES {
            return Err(invalid(format!(
                "key: at least {MIN_KEY_BYTES} bytes are needed (got {})",
                config.key.len()
            )));
        }
        validate_rules("default", &config.default)?;
        let mut tenants = HashMap::new();
        for (tenant, o) in &config.tenants {
            let rules = o.apply(&config.default);
            validate_rules(&format!("tenants.{tenant}"), &rules)?;
            tenants.insert(tenant.clone(), rules);
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(config.key.as_bytes())
            .map_err(|e| invalid(format!("key: {e}")))?;
        Ok(Self { inner: Arc::new(RedactorInner { mac, default: config.default, tenants }) })
    }

    /// The rules applied to `tenant`'s events.
    pub fn rules(&self, tenant: &str) -> &RedactionRules {
        self.inner.tenants.get(tenant).unwrap_or(&self.inner.default)
    }

    /// The replacement token for `value` under `label`: `[label:<8 hex digits>]`.
    pub fn token(&self, label: &str, value: &str) -> String {
        let mut out = String::with_capacity(label.len() + 11);
        self.push_token(&mut out, label, value);
        out
    }

    fn push_token(&self, out: &mut String, label: &str, value: &str) {
        let mut mac = self.inner.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        out.push('[');
        out.push_str(label);
        out.push(':');
        for b in digest.iter().take(4) {
            push_hex(out, *b);
        }
        out.push(']');
    }

    /// `text` with everything `tenant`'s rules find replaced, and how many replacements were
    /// made. Borrows `text` (no allocation) when nothing is found.
    pub fn redact_str<'a>(&self, tenant: &str, text: &'a str) -> (Cow<'a, str>, usize) {
        self.redact_with(self.rules(tenant), text)
    }

    fn redact_with<'a>(&self, rules: &RedactionRules, text: &'a str) -> (Cow<'a, str>, usize) {
        let mut found = Vec::new();
        find_all(rules, text, &mut found);
        if found.is_empty() {
            return (Cow::Borrowed(text), 0);
        }
        let mut out = String::with_capacity(text.len() + found.len() * 8);
        let mut last = 0;
        for m in &found {
            out.push_str(&text[last..m.start]);
            self.push_token(&mut out, m.label, &text[m.start..m.end]);
            last = m.end;
        }
        out.push_str(&text[last..]);
        (Cow::Owned(out), found.len())
    }

    /// Redacts every free-text field of `event` in place by its tenant's rules and returns
    /// how many replacements were made (an omitted content attribute counts as one).
    ///
    /// Fields: log message, span error message, permission actor and resource, string
    /// attribute values. Replaced values stay within the bounds of their field. Allocates only
    /// for what it changes.
    pub fn redact_event(&self, event: &mut Event) -> usize {
        let (replaced, omitted) = self.redact_event_counted(event);
        replaced + omitted
    }

    fn redact_text(&self, rules: &RedactionRules, text: &mut Text) -> usize {
        let (redacted, n) = self.redact_with(rules, text.as_str());
        if let Cow::Owned(s) = redacted {
            *text = Text::from(s);
        }
        n
    }

    /// (replacements in text, content attributes omitted)
    fn redact_event_counted(&self, event: &mut Event) -> (usize, usize) {
        let rules = self.rules(event.tenant.as_str());
        let mut replaced = 0;
        match &mut event.body {
            EventBody::Log(log) => replaced += self.redact_text(rules, &mut log.message),
            EventBody::Span(span) => replaced += self.redact_text(rules, &mut span.error_message),
            EventBody::Permission(p) => {
                replaced += self.redact_text(rules, &mut p.actor);
                replaced += self.redact_text(rules, &mut p.resource);
            }
            EventBody::Metric(_) | EventBody::Anomaly(_) => {}
            EventBody::Score(_) => {}
        }
        let mut omitted = 0;
        if let EventBody::Score(score) = &mut event.body {
            replaced += self.redact_text(rules, &mut score.label);
            // A score's comment is content (a user's words, a judge's reasoning).
            if !rules.capture_content {
                if !score.comment.is_empty() && score.comment.as_str() != CONTENT_OMITTED {
                    score.comment = Text::new(CONTENT_OMITTED);
                    omitted += 1;
                }
            } else {
                replaced += self.redact_text(rules, &mut score.comment);
            }
        }
        let mut changes: Vec<(Symbol, AttrValue)> = Vec::new();
        for a in event.attributes.iter() {
            if !rules.capture_content && is_content_key(a.key.as_str()) {
                if !is_omitted(&a.value) {
                    changes.push((a.key, AttrValue::string(CONTENT_OMITTED)));
                    omitted += 1;
                }
                continue;
            }
            if let AttrValue::Str(s) = &a.value {
                let (redacted, n) = self.redact_with(rules, s.as_str());
                if let Cow::Owned(s) = redacted {
                    changes.push((a.key, AttrValue::string(&s)));
                    replaced += n;
                }
            }
        }
        // `set` replaces a present key's value in place: order and the dropped count stay.
        for (key, value) in changes {
            event.attributes.set(key, value);
        }
        (replaced, omitted)
    }

    /// Whether [`redact_event`](Self::redact_event) would change `event`. No allocation.
    pub fn needs_redaction(&self, event: &Event) -> bool {
        let rules = self.rules(event.tenant.as_str());
        let hit = |t: &Text| any_match(rules, t.as_str());
        let body = match &event.body {
            EventBody::Log(log) => hit(&log.message),
            EventBody::Span(span) => hit(&span.error_message),
            EventBody::Permission(p) => hit(&p.actor) || hit(&p.resource),
            EventBody::Metric(_) | EventBody::Anomaly(_) => false,
            EventBody::Score(score) => {
                hit(&score.label)
                    || if rules.capture_content {
                        hit(&score.comment)
                    } else {
                        !score.comment.is_empty() && score.comment.as_str() != CONTENT_OMITTED
                    }
            }
        };
        body || event.attributes.iter().any(|a| {
            if !rules.capture_content && is_content_key(a.key.as_str()) {
                return !is_omitted(&a.value);
            }
            matches!(&a.value, AttrValue::Str(s) if hit(s))
        })
    }
}

fn is_omitted(value: &AttrValue) -> bool {
    matches!(value, AttrValue::Str(s) if s.as_str() == CONTENT_OMITTED)
}

/// Whether attribute `key` holds prompt, completion or tool content: a key of
/// [`CONTENT_KEYS`] (or under a prefix one), or any key ending in `.content`. No allocation.
pub fn is_content_key(key: &str) -> bool {
    key.ends_with(".content")
        || CONTENT_KEYS.iter().any(|k| match key.strip_prefix(k.key) {
            Some("") => true,
            Some(rest) => k.prefix && rest.starts_with('.'),
            None => false,
        })
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

// ---------------------------------------------------------------------------------------------

/// What a [`RedactingSink`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedactionStats {
    /// Events seen.
    pub events: u64,
    /// Events with at least one change.
    pub events_redacted: u64,
    /// Values replaced by a token.
    pub replacements: u64,
    /// Content attributes replaced by [`CONTENT_OMITTED`].
    pub content_omitted: u64,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    events_redacted: AtomicU64,
    replacements: AtomicU64,
    content_omitted: AtomicU64,
}

/// Reads a [`RedactingSink`]'s counters from any thread.
#[derive(Clone, Default)]
pub struct RedactionStatsReader {
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RedactionStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RedactionStatsReader").field(&self.stats()).finish()
    }
}

impl RedactionStatsReader {
    /// The counters now.
    pub fn stats(&self) -> RedactionStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedactionStats {
            events: l(&c.events),
            events_redacted: l(&c.events_redacted),
            replacements: l(&c.replacements),
            content_omitted: l(&c.content_omitted),
        }
    }
}

/// A [`Sink`] that redacts every event before handing it to the sinks it wraps.
///
/// A batch in which no event needs a change is forwarded as it is; otherwise it is copied
/// once into a reused buffer and the copies are redacted (the producers' events are never
/// changed, so sinks outside this wrapper, such as statistics, still see them).
pub struct RedactingSink {
    redactor: Redactor,
    inner: mission_core::Fanout,
    out: Vec<Event>,
    reader: RedactionStatsReader,
}

impl RedactingSink {
    /// Redacts events for `inner` sinks.
    pub fn new(redactor: Redactor, inner: Vec<Box<dyn Sink>>) -> Self {
        Self {
            redactor,
            inner: mission_core::Fanout::new(inner),
            out: Vec::new(),
            reader: RedactionStatsReader::default(),
        }
    }

    /// A reader of the counters.
    pub fn stats_reader(&self) -> RedactionStatsReader {
        self.reader.clone()
    }
}

impl Sink for RedactingSink {
    fn name(&self) -> &str {
        "redaction"
    }

    fn start(&mut self, context: &SinkContext) {
        self.inner.start(context);
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let c = &self.reader.counters;
        c.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let first = batch.iter().position(|e| self.redactor.needs_redaction(e));
        let Self { redactor, inner, out, .. } = self;
        let events: &[Event] = match first {
            None => batch,
            Some(first) => {
                out.clear();
                out.extend_from_slice(batch);
                redact_counted(redactor, c, &mut out[first..]);
                out
            }
        };
        let result = inner.consume(events);
        // Let go of the copies' strings now; the buffer's capacity is kept.
        out.clear();
        result
    }

    fn tick(&mut self, now: mission_core::Timestamp) -> Result<(), SinkError> {
        self.inner.each(|s| s.tick(now))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.each(|s| s.flush())
    }

    fn flush_for_reads(&mut self) -> Result<(), SinkError> {
        self.inner.each(|s| s.flush_for_reads())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.inner.each(|s| s.shutdown())
    }
}

/// A [`Transform`](mission_core::Transform) that redacts every event in place before any sink
/// of the pipeline sees it, sinks added while running included: what
/// `MissionControl` (mission-sdk) runs. Each sink keeps its own health entry (a
/// [`RedactingSink`] shows as one sink), and if redaction ever panicked, nothing unredacted
/// would reach a sink: the pipeline withholds the batches and reports it.
pub struct RedactingTransform {
    redactor: Redactor,
    reader: RedactionStatsReader,
}

impl RedactingTransform {
    /// Redacts with `redactor`.
    pub fn new(redactor: Redactor) -> Self {
        Self { redactor, reader: RedactionStatsReader::default() }
    }

    /// A reader of the counters.
    pub fn stats_reader(&self) -> RedactionStatsReader {
        self.reader.clone()
    }
}

impl mission_core::Transform for RedactingTransform {
    fn name(&self) -> &str {
        "redaction"
    }

    fn apply(&mut self, batch: &mut [Event]) {
        let c = &self.reader.counters;
        c.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(first) = batch.iter().position(|e| self.redactor.needs_redaction(e)) {
            redact_counted(&self.redactor, c, &mut batch[first..]);
        }
    }
}

/// Redacts `events` in place and adds what was done to `c` (`events` itself is counted by the
/// caller, which sees the whole batch).
fn redact_counted(redactor: &Redactor, c: &Counters, events: &mut [Event]) {
    let (mut redacted, mut replaced, mut omitted) = (0u64, 0u64, 0u64);
    for event in events {
        let (r, o) = redactor.redact_event_counted(event);
        if r + o > 0 {
            redacted += 1;
            replaced += r as u64;
            omitted += o as u64;
        }
    }
    c.events_redacted.fetch_add(redacted, Ordering::Relaxed);
    c.replacements.fetch_add(replaced, Ordering::Relaxed);
    c.content_omitted.fetch_add(omitted, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::scan::luhn;
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(RedactionConfig::with_key("0123456789abcdef-test-key")).expect("redactor")
    }

    fn red(text: &str) -> String {
        redactor().redact_str("t", text).0.into_owned()
    }

    #[test]
    fn luhn_known_values() {
        let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(luhn(&d("4111111111111111")));
        assert!(luhn(&d("378282246310005")));
        assert!(!luhn(&d("4111111111111112")));
    }

    #[test]
    fn phones_and_not_phones() {
        for phone in
            ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+14155552671", "06 12 34 56 78"]
        {
            let out = red(&format!("call {phone} now"));
            assert!(out.contains("[phone:"), "{phone}: {out}");
        }
        for plain in [
            "order 1741082400000000000",
            "at 2025-03-04 10:00:00",
            "2025-03-04T10:00:00Z",
            "id 550e8400-e29b-41d4-a716-446655440000",
            "v1.2.3",
            "took 1234567 ns",
            "pi 3.14159265358979",
        ] {
            assert_eq!(red(plain), plain);
        }
    }

    #[test]
    fn ip_addresses() {
        assert!(red("from 10.0.0.12:8080").starts_with("from [ip:"));
        assert!(red("via [2001:db8::8a2e:370:7334]:443").contains("[[ip:"));
        assert!(red("fe80::1 said").starts_with("[ip:"));
        assert_eq!(red("at 10:00:00 and std::fmt"), "at 10:00:00 and std::fmt");
        assert_eq!(red("version 1.2.3.400"), "version 1.2.3.400");
    }

    #[test]
    fn bearer_keeps_the_word() {
        let out = red("Authorization: Bearer abc.def-ghi_jkl");
        assert!(out.starts_with("Authorization: Bearer [token:"), "{out}");
    }

    #[test]
    fn content_keys() {
        assert!(is_content_key("gen_ai.prompt"));
        assert!(is_content_key("gen_ai.prompt.0.role"));
        assert!(is_content_key("message.content"));
        assert!(!is_content_key("gen_ai.prompt_tokens"));
        assert!(!is_content_key("gen_ai.request.model"));
    }

    /// The content keys of `convention` as its instrumentations write them, and keys of the
    /// same convention that are not content.
    fn check_convention(convention: &str, content: &[&str], not_content: &[&str]) {
        assert!(
            CONTENT_KEYS.iter().any(|k| k.convention == convention),
            "{convention} has entries in the table"
        );
        for key in content {
            assert!(is_content_key(key), "{convention}: {key} is content");
        }
        for key in not_content {
            assert!(!is_content_key(key), "{convention}: {key} is not content");
        }
    }

    #[test]
    fn content_keys_of_opentelemetry_genai() {
        check_convention(
            "OpenTelemetry GenAI",
            &[
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                "gen_ai.system_instructions",
                "gen_ai.prompt",
                "gen_ai.completion",
                "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result",
            ],
            &[
                "gen_ai.request.model",
                "gen_ai.usage.input_tokens",
                "gen_ai.tool.call.id",
                "gen_ai.tool.name",
                "gen_ai.input.messages_count",
                "gen_ai.operation.name",
            ],
        );
    }

    #[test]
    fn content_keys_of_openinference() {
        check_convention(
            "OpenInference",
            &[
                "input.value",
                "output.value",
                "llm.input_messages.0.message.role",
                "llm.input_messages.0.message.content",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                "llm.prompts",
                "llm.prompts.0",
                "llm.prompt_template.variables",
                "retrieval.documents.0.document.content",
                "embedding.embeddings.0.embedding.text",
            ],
            &[
                "input.mime_type",
                "output.mime_type",
                "llm.model_name",
                "llm.token_count.prompt",
                "llm.invocation_parameters",
                "openinference.span.kind",
                "input.values",
            ],
        );
    }

    #[test]
    fn content_keys_of_openllmetry() {
        check_convention(
            "OpenLLMetry",
            &[
                "gen_ai.prompt.0.content",
                "gen_ai.prompt.1.role",
                "gen_ai.completion.0.content",
                "gen_ai.completion.0.tool_calls.0.arguments",
                "traceloop.entity.input",
                "traceloop.entity.output",
            ],
            &["traceloop.entity.name", "traceloop.span.kind", "llm.request.type"],
        );
    }

    #[test]
    fn content_keys_of_langfuse() {
        check_convention(
            "Langfuse",
            &[
                "langfuse.observation.input",
                "langfuse.observation.output",
                "langfuse.trace.input",
                "langfuse.trace.output",
            ],
            &["langfuse.observation.type", "langfuse.trace.name", "langfuse.session.id"],
        );
    }

    #[test]
    fn content_keys_of_logfire() {
        check_convention(
            "Logfire",
            &[
                "all_messages_events",
                "pydantic_ai.all_messages",
                "events",
                "final_result",
                "request_data",
                "response_data",
                "tool_arguments",
                "tool_response",
            ],
            &["logfire.msg", "logfire.msg_template", "logfire.span_type", "model_name"],
        );
    }

    #[test]
    fn content_attributes_of_every_convention_are_omitted_from_events() {
        let config = RedactionConfig::content_only(&[]).expect("content is omitted");
        let redactor = Redactor::new(config).expect("redactor");
        // In chunks: an event holds a bounded number of attributes.
        for chunk in CONTENT_KEYS.chunks(8) {
            let mut event = Event::new(Symbol::intern("chat"), EventBody::Log(Default::default()));
            for k in chunk {
                event.attributes.set(Symbol::intern(k.key), "the secret prompt");
            }
            event.attributes.set(Symbol::intern("input.mime_type"), "text/plain");
            redactor.redact_event(&mut event);
            assert_eq!(event.attributes.len(), chunk.len() + 1);
            for a in event.attributes.iter() {
                let kept = a.key.as_str() == "input.mime_type";
                let value = a.value.to_string();
                assert_eq!(value == CONTENT_OMITTED, !kept, "{}: {value}", a.key.as_str());
            }
        }
    }

    #[test]
    fn redaction_is_idempotent() {
        let once = red("mail a.b@example.org card 4111 1111 1111 1111 ip 192.168.1.1");
        assert_eq!(red(&once), once);
    }
}
