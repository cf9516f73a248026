//! The directive file format: [`DirectiveSet`], [`DirectiveSpec`] and the parts they are made
//! of, validated while they are read so an error names the line and the field.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use mission_core::{EventKind, Level, SpanKind, duration_text};

use super::condition::{Condition, Statistic};
use super::schedule::Schedule;
use super::{DirectiveError, Result};

/// The most [`DirectiveSpec::min_events`] may be.
pub const MAX_MIN_EVENTS: u64 = 1_000_000;

/// The longest a breaker's `cool_down`, a webhook's `timeout` or its `backoff` may be: a day.
pub const MAX_ACTION_DURATION: Duration = Duration::from_secs(86_400);

/// Names of the presets [`DirectiveSet::preset`] knows.
pub const PRESETS: &[&str] = &["slo-basic", "cost-guard", "tool-circuit-breaker", "self-care"];

/// An ordered list of directives with unique names, read from TOML or JSON.
///
/// ```
/// use mission_govern::directives::DirectiveSet;
/// let set = DirectiveSet::from_toml_str(r#"
///     [[directive]]
///     name = "slow-llm"
///     when = "p95(duration) > 4s over 5m"
///     where = { kind = "llm_call" }
///     group_by = ["agent"]
/// "#, "inline")?;
/// assert_eq!(set.directives()[0].name, "slow-llm");
/// # Ok::<(), mission_govern::directives::DirectiveError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DirectiveSet {
    directive: Vec<DirectiveSpec>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectiveFile {
    #[serde(default, alias = "directives")]
    directive: Vec<DirectiveSpec>,
}

impl DirectiveSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads directives from TOML text; `origin` names the text in errors (a file name).
    ///
    /// # Errors
    /// [`DirectiveError::Invalid`] naming `origin`, the line and the field.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let file: DirectiveFile = toml::from_str(text).map_err(|e| invalid(origin, e))?;
        Self::checked(file.directive, text, origin)
    }

    /// Reads directives from JSON text (`{"directive": [...]}`).
    ///
    /// # Errors
    /// [`DirectiveError::Invalid`] naming `origin`, the line and the field.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let file: DirectiveFile = serde_json::from_str(text).map_err(|e| invalid(origin, e))?;
        Self::checked(file.directive, text, origin)
    }

    /// Reads a TOML file, or JSON when the name ends in `.json` (like
    /// `MissionConfig::from_file` in mission-sdk).
    ///
    /// # Errors
    /// [`DirectiveError::Io`] if unreadable; [`DirectiveError::Invalid`] naming the file, line and
    /// field if it does not parse or validate.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| DirectiveError::Io { path: path.into(), source: e })?;
        let origin = path.display().to_string();
        if path.extension().is_some_and(|e| e == "json") {
            Self::from_json_str(&text, &origin)
        } else {
            Self::from_toml_str(&text, &origin)
        }
    }

    /// A preset shipped with Mission Control: one of [`PRESETS`].
    ///
    /// # Errors
    /// [`DirectiveError::UnknownPreset`] for any other name.
    pub fn preset(name: &str) -> Result<Self> {
        let text = match name {
            "slo-basic" => include_str!("presets/slo-basic.toml"),
            "cost-guard" => include_str!("presets/cost-guard.toml"),
            "tool-circuit-breaker" => include_str!("presets/tool-circuit-breaker.toml"),
            "self-care" => include_str!("presets/self-care.toml"),
            other => return Err(DirectiveError::UnknownPreset(other.chars().take(64).collect())),
        };
        Self::from_toml_str(text, &format!("preset {name}"))
    }

    /// The directives, in file order.
    pub fn directives(&self) -> &[DirectiveSpec] {
        &self.directive
    }

    /// How many directives.
    pub fn len(&self) -> usize {
        self.directive.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.directive.is_empty()
    }

    /// Adds a directive.
    ///
    /// # Errors
    /// [`DirectiveError::Duplicate`] if one of that name is in the set;
    /// [`DirectiveError::Invalid`] if it is inconsistent (see [`DirectiveSpec::validate`]).
    pub fn push(&mut self, spec: DirectiveSpec) -> Result<()> {
        if self.directive.iter().any(|d| d.name == spec.name) {
            return Err(DirectiveError::Duplicate(spec.name));
        }
        spec.validate()
            .map_err(|message| DirectiveError::Invalid { origin: spec.name.clone(), message })?;
        self.directive.push(spec);
        Ok(())
    }

    /// Adds every directive of `other` (for example a preset and a file of one's own).
    ///
    /// # Errors
    /// [`DirectiveError::Duplicate`] at the first name both sets have; nothing is added then.
    pub fn extend(&mut self, other: DirectiveSet) -> Result<()> {
        let names: HashSet<&str> = self.directive.iter().map(|d| d.name.as_str()).collect();
        if let Some(d) = other.directive.iter().find(|d| names.contains(d.name.as_str())) {
            return Err(DirectiveError::Duplicate(d.name.clone()));
        }
        self.directive.extend(other.directive);
        Ok(())
    }

    /// Validates each directive and refuses duplicate names. Linear in the number of
    /// directives: names are checked in a set, and the text is searched for a line only to
    /// report an error (once).
    fn checked(directives: Vec<DirectiveSpec>, text: &str, origin: &str) -> Result<Self> {
        let mut names: HashSet<String> = HashSet::with_capacity(directives.len());
        let mut set = Self::new();
        set.directive.reserve(directives.len());
        for spec in directives {
            let at = |message: String| DirectiveError::Invalid {
                origin: origin.to_owned(),
                message: match line_of_name(text, &spec.name) {
                    Some(line) => format!("line {line}, directive {:?}: {message}", spec.name),
                    None => format!("directive {:?}: {message}", spec.name),
                },
            };
            count_work(1);
            if !names.insert(spec.name.clone()) {
                // The second occurrence is the one to fix.
                let second = nth_line_of_name(text, &spec.name, 1);
                return Err(DirectiveError::Invalid {
                    origin: origin.to_owned(),
                    message: format!(
                        "{}field `name`: a directive named {:?} is already defined",
                        second.map(|l| format!("line {l}, ")).unwrap_or_default(),
                        spec.name
                    ),
                });
            }
            spec.validate().map_err(at)?;
            set.directive.push(spec);
        }
        Ok(set)
    }
}

impl IntoIterator for DirectiveSet {
    type Item = DirectiveSpec;
    type IntoIter = std::vec::IntoIter<DirectiveSpec>;

    fn into_iter(self) -> Self::IntoIter {
        self.directive.into_iter()
    }
}

fn invalid(origin: &str, e: impl fmt::Display) -> DirectiveError {
    DirectiveError::Invalid { origin: origin.to_owned(), message: e.to_string() }
}

fn nth_line_of_name(text: &str, name: &str, nth: usize) -> Option<usize> {
    let quoted = format!("\"{name}\"");
    text.lines()
        .inspect(|_| count_work(1))
        .enumerate()
        .filter(|(_, l)| l.contains("name") && l.contains(&quoted))
        .nth(nth)
        .map(|(i, _)| i + 1)
}

fn line_of_name(text: &str, name: &str) -> Option<usize> {
    nth_line_of_name(text, name, 0)
}

#[cfg(test)]
thread_local! {
    /// Work done while loading directives on this thread: lines of text searched for a
    /// directive's line plus names checked for duplicates. Counted so a test can show loading
    /// is linear without timing it.
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `units` of loading work ([`WORK`]) in tests; nothing otherwise.
#[cfg(test)]
fn count_work(units: u64) {
    WORK.with(|w| w.set(w.get() + units));
}

#[cfg(not(test))]
#[inline(always)]
fn count_work(_units: u64) {}

/// One directive: *when* a condition over the live stream holds (or on a `schedule`), *then*
/// actions run.
///
/// In TOML:
///
/// ```toml
/// [[directive]]
/// name = "tool-failing"                  # unique; letters, digits, '-', '_', '.'
/// description = "A tool failed 3 times in a row"
/// when = "3 failures in a row"           # see Condition for the grammar
/// where = { kind = "tool_call" }         # which events count (see Filter)
/// group_by = ["operation"]               # one incident per tool
/// severity = "error"                     # info, warning (default), error, critical
/// then = [
///   { action = "alert" },
///   { action = "open_breaker", cool_down = "30s" },
/// ]
/// ```
///
/// Or on a schedule (a 5-field cron expression in UTC, see [`Schedule`]) instead of a condition:
///
/// ```toml
/// [[directive]]
/// name = "daily-digest"
/// schedule = "0 9 * * mon-fri"
/// then = [{ action = "callback", name = "digest" }]
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectiveSpec {
    /// Unique name; part of every dedup key.
    pub name: String,
    /// What the directive is for, shown in alerts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether it runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How bad a firing is.
    #[serde(default)]
    pub severity: Severity,
    /// The condition; `None` for a directive on a [`schedule`](Self::schedule) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// When it runs, for a directive with no condition: a 5-field cron expression in UTC
    /// (`schedule = "*/5 * * * *"`). Each time it is due it fires once (callbacks, webhooks
    /// and alerts receive a firing, never a resolve); periods missed while nothing ticked are
    /// counted on that firing ([`Alert::missed`](super::Alert::missed)), not run one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Which events the condition looks at.
    #[serde(default, rename = "where")]
    pub filter: Filter,
    /// One incident per distinct value of these fields (default: one for everything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<GroupField>,
    /// Statistics conditions are judged only once their window holds this many events
    /// (default 0, at most [`MAX_MIN_EVENTS`]; `error_rate > 50%` on one call is rarely an
    /// incident).
    #[serde(default)]
    pub min_events: u64,
    /// For SLO conditions, which burn-rate alert pairs fire (default both).
    #[serde(default)]
    pub burn_alerts: BurnAlerts,
    /// Watch every tenant's events together (default false: the tenant is part of every
    /// group, so each tenant has its own windows, incidents and breakers). Incidents of a
    /// directive across tenants carry no tenant: only principals of every tenant see or
    /// acknowledge them, and the breakers it opens deny the tool to every tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub across_tenants: bool,
    /// The actions (default: one `alert`).
    #[serde(default)]
    pub then: Vec<ActionSpec>,
    /// Wait for a person before the remedies run: each firing (or run by hand) proposes its
    /// remedy actions ([`ActionSpec::is_remedy`]) as a pending
    /// [`Approval`](super::Approval) an operator approves or rejects within `within`; alerts,
    /// callbacks and webhooks still run at once. `None` (the default): remedies run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<ApprovalSpec>,
    /// The runaway guard of this directive's remedies (default: [`GuardSpec::default`]).
    #[serde(default)]
    pub guard: GuardSpec,
}

/// A directive's approval step ([`DirectiveSpec::approve`]).
///
/// ```toml
/// approve = { within = "15m", confidence = 0.8 }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// How long a proposal waits for a decision before it expires (default 15m; 1s to
    /// [`MAX_APPROVAL_WINDOW`]).
    #[serde(default = "default_within", with = "duration_text")]
    pub within: Duration,
    /// The confidence shown with a proposal (0 to 1) when the condition gives none (an
    /// anomaly condition's proposal shows the anomaly's score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl Default for ApprovalSpec {
    fn default() -> Self {
        Self { within: default_within(), confidence: None }
    }
}

fn default_within() -> Duration {
    Duration::from_secs(15 * 60)
}

/// The longest an approval may wait: a week.
pub const MAX_APPROVAL_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// The most attempts [`GuardSpec::max_attempts`] may allow.
pub const MAX_GUARD_ATTEMPTS: u32 = 100;

/// The runaway guard of a directive's remedies ([`DirectiveSpec::guard`]), per target (a
/// tool, a thread, an operation) and tenant: a remedy runs at most once per `every` on one
/// target, and while its incident keeps firing without moving toward its threshold it is
/// tried again each `every`, at most `max_attempts` times; then it gives up (an error alert
/// says so) until the incident resolves.
///
/// ```toml
/// guard = { every = "5m", max_attempts = 3 }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// The least time between two attempts on one target, on the directive's clock (default
    /// 1m; 1s to a day).
    #[serde(default = "default_every", with = "duration_text")]
    pub every: Duration,
    /// Attempts without improvement before giving up (default 3; 1 to
    /// [`MAX_GUARD_ATTEMPTS`]).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

impl Default for GuardSpec {
    fn default() -> Self {
        Self { every: default_every(), max_attempts: default_attempts() }
    }
}

fn default_every() -> Duration {
    Duration::from_secs(60)
}

fn default_attempts() -> u32 {
    3
}

fn yes() -> bool {
    true
}

impl DirectiveSpec {
    /// A directive named `name` on `when`, enabled, with defaults everywhere else.
    pub fn new(name: &str, when: Condition) -> Self {
        Self { when: Some(when), ..Self::on_schedule(name, None) }
    }

    /// A directive named `name` running on `schedule` (none yet: give `when` or `schedule`
    /// before it is added), enabled, with defaults everywhere else.
    pub fn on_schedule(name: &str, schedule: Option<Schedule>) -> Self {
        Self {
            name: name.to_owned(),
            description: String::new(),
            enabled: true,
            severity: Severity::default(),
            when: None,
            schedule,
            filter: Filter::default(),
            group_by: Vec::new(),
            min_events: 0,
            burn_alerts: BurnAlerts::default(),
            across_tenants: false,
            then: Vec::new(),
            approve: None,
            guard: GuardSpec::default(),
        }
    }

    /// Checks what the types alone cannot: the name, and that the actions fit the condition.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name.is_empty()
            || self.name.len() > 128
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "field `name`: {:?} must be 1 to 128 letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        match (&self.when, &self.schedule) {
            (None, None) => {
                return Err("field `when`: a directive needs `when` (a condition) or `schedule` \
                            (a cron expression, e.g. \"*/5 * * * *\")"
                    .into());
            }
            (Some(_), Some(_)) => {
                return Err(
                    "field `schedule`: a directive has `when` or `schedule`, not both".into()
                );
            }
            (None, Some(_)) => {
                if !self.group_by.is_empty() {
                    return Err("field `group_by`: a scheduled directive has no groups".into());
                }
                if let Some(i) = self.then.iter().position(|a| {
                    matches!(a, ActionSpec::SetLogLevel { .. } | ActionSpec::SetSampling { .. })
                }) {
                    return Err(format!(
                        "field `then[{i}]`: set_log_level and set_sampling last while an \
                         incident fires; a scheduled directive fires and never resolves"
                    ));
                }
            }
            (Some(_), None) => {}
        }
        if let (Some(stat), Some(kind)) =
            (self.when.as_ref().and_then(Condition::statistic), self.filter.kind)
        {
            let span = matches!(kind.0, EventKind::Span(_));
            if let Statistic::Aggregate(_, field) = stat {
                let ok = match field {
                    super::condition::Field::Duration
                    | super::condition::Field::Cost
                    | super::condition::Field::Tokens => span,
                    super::condition::Field::Value => {
                        matches!(kind.0, EventKind::Metric | EventKind::Anomaly)
                    }
                    super::condition::Field::Score(_) => kind.0 == EventKind::Score,
                };
                if !ok {
                    return Err(format!(
                        "field `when`: {} is not measured on {} events (field `where.kind`)",
                        stat, kind.0
                    ));
                }
            }
        }
        if self.across_tenants
            && (self.group_by.contains(&GroupField::Tenant) || self.filter.tenant.is_some())
        {
            return Err("field `across_tenants`: a directive across tenants cannot group by \
                        tenant or filter on one (`group_by`, `where.tenant`)"
                .into());
        }
        if self.min_events > MAX_MIN_EVENTS {
            return Err(format!(
                "field `min_events`: {} is out of range: expected 0 to {MAX_MIN_EVENTS}",
                self.min_events
            ));
        }
        if matches!(self.when, Some(Condition::RepeatedDenials { .. })) && !self.group_by.is_empty()
        {
            return Err("field `group_by`: denials are grouped by actor already".into());
        }
        if matches!(self.when, Some(Condition::Loop { .. } | Condition::Stalled { .. }))
            && !self.group_by.is_empty()
        {
            return Err("field `group_by`: loops and stalled threads are grouped by tenant and \
                        thread already"
                .into());
        }
        if let Some(a) = &self.approve {
            if a.within < Duration::from_secs(1) || a.within > MAX_APPROVAL_WINDOW {
                return Err(format!(
                    "field `approve.within`: {} is out of range: expected 1s to {}",
                    duration_text::format(a.within),
                    duration_text::format(MAX_APPROVAL_WINDOW)
                ));
            }
            if let Some(c) = a.confidence
                && !(0.0..=1.0).contains(&c)
            {
                return Err(format!("field `approve.confidence`: {c} is not between 0 and 1"));
            }
            if !self.then.iter().any(ActionSpec::is_remedy) {
                return Err(
                    "field `approve`: the directive has no remedy to approve (cancel_thread, \
                            pause_thread, open_breaker, fallback or reset_connection)"
                        .into(),
                );
            }
        }
        let g = &self.guard;
        if g.every < Duration::from_secs(1) || g.every > MAX_ACTION_DURATION {
            return Err(format!(
                "field `guard.every`: {} is out of range: expected 1s to {}",
                duration_text::format(g.every),
                duration_text::format(MAX_ACTION_DURATION)
            ));
        }
        if g.max_attempts == 0 || g.max_attempts > MAX_GUARD_ATTEMPTS {
            return Err(format!(
                "field `guard.max_attempts`: {} is out of range: expected 1 to {MAX_GUARD_ATTEMPTS}",
                g.max_attempts
            ));
        }
        for (i, action) in self.then.iter().enumerate() {
            action.validate().map_err(|m| format!("field `then[{i}]`: {m}"))?;
            if let ActionSpec::OpenBreaker { tool: None, .. } = action
                && !self.group_by.contains(&GroupField::Operation)
                && self.filter.operation.is_none()
            {
                return Err(format!(
                    "field `then[{i}].tool`: open_breaker needs a `tool`, or `group_by` with \
                     \"operation\", or `where.operation`"
                ));
            }
        }
        Ok(())
    }

    /// What starts it, as text: the condition, or `schedule <cron>`.
    pub fn trigger(&self) -> String {
        match (&self.when, &self.schedule) {
            (Some(when), _) => when.to_string(),
            (None, Some(schedule)) => format!("schedule {schedule}"),
            (None, None) => String::new(),
        }
    }

    /// The actions, with the default (`alert`) when none were given.
    pub fn actions(&self) -> Vec<ActionSpec> {
        if self.then.is_empty() {
            vec![ActionSpec::Alert { level: None }]
        } else {
            self.then.clone()
        }
    }
}

/// How bad a firing is (PagerDuty's severities).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs a look (the default).
    #[default]
    Warning,
    /// Something is broken.
    Error,
    /// Page someone.
    Critical,
}

impl Severity {
    /// The lowercase name, as PagerDuty spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// The log level of the alert event: `Warn` up to warning, `Error` above.
    pub const fn level(self) -> Level {
        match self {
            Severity::Info | Severity::Warning => Level::Warn,
            Severity::Error | Severity::Critical => Level::Error,
        }
    }
}

/// Which multi-window burn-rate alert pairs of an SLO condition fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BurnAlerts {
    /// Only the fast burn: 2% of the budget in 1 hour (1h and 5m windows).
    Page,
    /// Only the slow burn: 5% of the budget in 6 hours (6h and 30m windows).
    Ticket,
    /// Either (the default).
    #[default]
    Both,
}

/// Which events a condition looks at. Every field given must match; a string matches exactly.
/// Mission Control's own alert and delivery events never match.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// The tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The operation: the span name (`search_web`, `chat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The event kind: `llm_call`, `tool_call`, `agent_step`, `retrieval`, `custom`, `log`,
    /// `metric`, `permission`, `anomaly`. Unset: spans of every kind (metric points for
    /// `value` statistics, anomalies for anomaly conditions, permission decisions for denials,
    /// events of every kind for a stalled-thread condition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<KindName>,
    /// The model of an LLM call (`gen_ai.request.model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The metric name of a metric point or an anomaly (the event's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Attributes that must be present with these values (compared as text).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// An [`EventKind`] read from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KindName(pub EventKind);

impl FromStr for KindName {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(kind) = SpanKind::ALL.iter().find(|k| k.as_str() == s) {
            return Ok(KindName(EventKind::Span(*kind)));
        }
        Ok(KindName(match s {
            "log" => EventKind::Log,
            "metric" => EventKind::Metric,
            "permission" => EventKind::Permission,
            "anomaly" => EventKind::Anomaly,
            "score" => EventKind::Score,
            _ => {
                return Err(format!(
                    "unknown kind {s:?}: expected llm_call, tool_call, agent_step, retrieval, \
                     custom, log, metric, permission, anomaly or score"
                ));
            }
        }))
    }
}

impl TryFrom<String> for KindName {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<KindName> for String {
    fn from(k: KindName) -> String {
        k.0.as_str().to_owned()
    }
}

/// The attribute naming the MCP server a tool call went to (what its initialize answer named;
/// the SDK's MCP client records it): what [`GroupField::McpServer`] groups by.
pub const ATTR_MCP_SERVER: &str = "mcp.server.name";

/// A field incidents are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupField {
    /// The tenant.
    Tenant,
    /// The agent.
    Agent,
    /// The operation (span or metric name).
    Operation,
    /// The model of an LLM call.
    Model,
    /// The provider of an LLM call (`gen_ai.provider.name`: `openai`, `anthropic`, …).
    Provider,
    /// The event kind.
    Kind,
    /// The MCP server a tool call went to ([`ATTR_MCP_SERVER`]; empty for other calls).
    McpServer,
}

impl GroupField {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupField::Tenant => "tenant",
            GroupField::Agent => "agent",
            GroupField::Operation => "operation",
            GroupField::Model => "model",
            GroupField::Provider => "provider",
            GroupField::Kind => "kind",
            GroupField::McpServer => "mcp_server",
        }
    }
}

/// What a directive does when it fires (and, where it applies, when it resolves). Tagged by
/// `action`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Records a `mission.alert` log event (firing, then resolved) into the stream.
    Alert {
        /// The log level (default from the directive's severity: warn or error).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<Level>,
    },
    /// Calls the Rust callback registered under `name` (on firing and on resolve).
    Callback {
        /// The name given to [`Directives::register_callback`](super::Directives::register_callback).
        name: String,
    },
    /// POSTs the alert to an HTTP endpoint (on firing and on resolve).
    Webhook(WebhookSpec),
    /// Opens the circuit breaker of a tool: [`Directives::permit`](super::Directives::permit)
    /// denies it until the cool-down passes, then allows one trial call.
    OpenBreaker {
        /// The tool (operation name); default: the incident's operation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool: Option<String>,
        /// How long the breaker stays open before a trial call (default 30s).
        #[serde(default = "default_cool_down", with = "duration_text")]
        cool_down: Duration,
    },
    /// Lowers (or raises) the minimum log level while firing; restored on resolve.
    SetLogLevel {
        /// The level.
        level: Level,
    },
    /// Sets the sampling rate (0 to 1) while firing; restored on resolve.
    SetSampling {
        /// The rate.
        rate: f64,
    },
    /// Cancels the thread the firing names (a loop condition's thread), in the firing's tenant
    /// only: its code sees `should_stop()`, its guarded calls are refused. Needs the agent's
    /// thread registry ([`Directives::with_threads`](super::Directives::with_threads)).
    CancelThread {
        /// Why (kept in the thread's record and the audit trail; default: the alert's summary).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Pauses the thread the firing names, like `cancel_thread` (an operator resumes it).
    PauseThread {
        /// Why (default: the alert's summary).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Switches to a fallback (another model or provider) through the host's remedy
    /// registered under `name` ([`Directives::register_remedy`](super::Directives::register_remedy)),
    /// for the incident's operation.
    Fallback {
        /// The remedy's name.
        name: String,
    },
    /// Resets a flaky connection (a client, a pool, an MCP session) through the host's remedy
    /// registered under `name`, for the incident's operation.
    ResetConnection {
        /// The remedy's name.
        name: String,
    },
    /// Narrows the budget of the thread the firing names (a loop's thread; a run by hand's),
    /// in the firing's tenant: `{ action = "set_budget", budget = { tokens = 20000, hard = true
    /// } }`. Each limit becomes the smaller of the thread's and this one.
    SetBudget {
        /// The budget (see `Budget`: turns, tokens, cost_usd, wall_time_s, context_tokens,
        /// warn_share, hard).
        budget: crate::threads::Budget,
    },
}

/// The names of the remedy actions ([`ActionSpec::is_remedy`]), as directive files spell them.
pub const REMEDY_ACTIONS: [&str; 6] =
    ["cancel_thread", "pause_thread", "open_breaker", "fallback", "reset_connection", "set_budget"];

impl ActionSpec {
    /// Whether this action changes what the agent does (a remedy: `cancel_thread`,
    /// `pause_thread`, `open_breaker`, `fallback`, `reset_connection`, `set_budget`), so the
    /// runaway guard
    /// limits it and [`DirectiveSpec::approve`] holds it for a person. Alerts, callbacks,
    /// webhooks and the log level or sampling a firing raises (undone when it resolves) are
    /// not remedies.
    pub fn is_remedy(&self) -> bool {
        matches!(
            self,
            ActionSpec::CancelThread { .. }
                | ActionSpec::PauseThread { .. }
                | ActionSpec::OpenBreaker { .. }
                | ActionSpec::Fallback { .. }
                | ActionSpec::ResetConnection { .. }
                | ActionSpec::SetBudget { .. }
        )
    }
}

fn default_cool_down() -> Duration {
    Duration::from_secs(30)
}

impl ActionSpec {
    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ActionSpec::Webhook(w) => w.validate(),
            ActionSpec::SetBudget { budget } => {
                budget.validate().map_err(|e| format!("field `budget`: {e}"))?;
                if budget.is_limited() {
                    Ok(())
                } else {
                    Err("field `budget`: give at least one limit (turns, tokens, cost_usd, \
                         wall_time_s, context_tokens)"
                        .into())
                }
            }
            ActionSpec::SetSampling { rate } if !(0.0..=1.0).contains(rate) => {
                Err(format!("field `rate`: {rate} is not between 0 and 1"))
            }
            ActionSpec::Callback { name }
            | ActionSpec::Fallback { name }
            | ActionSpec::ResetConnection { name }
                if name.is_empty() || name.len() > 128 =>
            {
                Err(format!("field `name`: {} bytes: expected 1 to 128", name.len()))
            }
            ActionSpec::CancelThread { reason: Some(r) }
            | ActionSpec::PauseThread { reason: Some(r) }
                if r.len() > crate::threads::MAX_REASON_BYTES =>
            {
                Err(format!(
                    "field `reason`: {} bytes, at most {}",
                    r.len(),
                    crate::threads::MAX_REASON_BYTES
                ))
            }
            ActionSpec::OpenBreaker { cool_down, .. }
                if cool_down.is_zero() || *cool_down > MAX_ACTION_DURATION =>
            {
                Err(format!(
                    "field `cool_down`: {} is out of range: expected more than 0s, up to {}",
                    duration_text::format(*cool_down),
                    duration_text::format(MAX_ACTION_DURATION)
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The body a webhook sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Mission Control's JSON, signed with HMAC-SHA256 when a secret is set (the default).
    #[default]
    Json,
    /// A Slack incoming webhook (`text` and `blocks`).
    Slack,
    /// PagerDuty Events API v2 (`trigger`, then `resolve` with the same `dedup_key`).
    Pagerduty,
}

/// Where and how to POST an alert.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The endpoint, `http://` or `https://`.
    pub url: String,
    /// The body format.
    #[serde(default)]
    pub format: WebhookFormat,
    /// HMAC-SHA256 key: the body is signed in `X-Mission-Signature: sha256=<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The environment variable holding the secret (keeps secrets out of files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// PagerDuty integration (routing) key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// The environment variable holding the routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_env: Option<String>,
    /// Time limit of one attempt (default 5s).
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// Retries after a 5xx, a 429, a timeout or a connection failure (default 3); never after
    /// another 4xx.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry, doubled each time (default 500ms, at most 30s).
    #[serde(default = "default_backoff", with = "duration_text")]
    pub backoff: Duration,
    /// Whether resolves are sent too (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// A PEM file of CA certificates trusted for this `https://` endpoint besides the system's
    /// roots (a private CA or a self-signed receiver); relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_retries() -> u32 {
    3
}

fn default_backoff() -> Duration {
    Duration::from_millis(500)
}

impl WebhookSpec {
    /// A webhook to `url` in `format` with default timeouts and retries.
    pub fn new(url: &str, format: WebhookFormat) -> Self {
        Self {
            url: url.to_owned(),
            format,
            secret: None,
            secret_env: None,
            routing_key: None,
            routing_key_env: None,
            timeout: default_timeout(),
            retries: default_retries(),
            backoff: default_backoff(),
            send_resolved: true,
            ca_file: None,
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"))
            .ok_or_else(|| {
            format!("field `url`: {:?} is not an http:// or https:// URL", self.url)
        })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("field `url`: {:?} has no host", self.url));
        }
        if self.ca_file.is_some() && self.url.starts_with("http://") {
            return Err("field `ca_file`: only an https:// `url` uses a CA file".into());
        }
        for (field, d) in [("timeout", self.timeout), ("backoff", self.backoff)] {
            if (field == "timeout" && d.is_zero()) || d > MAX_ACTION_DURATION {
                return Err(format!(
                    "field `{field}`: {} is out of range: expected more than 0s, up to {}",
                    duration_text::format(d),
                    duration_text::format(MAX_ACTION_DURATION)
                ));
            }
        }
        if self.retries > 20 {
            return Err(format!("field `retries`: {} is more than 20", self.retries));
        }
        if self.secret.is_some() && self.secret_env.is_some() {
            return Err("fields `secret` and `secret_env`: give one, not both".into());
        }
        if self.format == WebhookFormat::Pagerduty
            && self.routing_key.is_none()
            && self.routing_key_env.is_none()
        {
            return Err("field `routing_key`: a pagerduty webhook needs `routing_key` or \
                        `routing_key_env`"
                .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize) -> String {
        let mut text = String::with_capacity(n * 80);
        for i in 0..n {
            text.push_str(&format!(
                "[[directive]]\nname = \"d{i}\"\nwhen = \"3 failures in a row\"\n\n"
            ));
        }
        text
    }

    /// 20,000 directives load (this was quadratic: each directive searched the whole text for
    /// its line, and the whole set for its name), and the error for a duplicate still names
    /// the line of the second occurrence.
    #[test]
    fn twenty_thousand_directives_load_and_a_duplicate_names_its_line() {
        let n = 20_000;
        let mut text = many(n);
        let set = DirectiveSet::from_toml_str(&text, "many.toml").expect("load");
        assert_eq!(set.len(), n);
        assert_eq!(set.directives()[n - 1].name, format!("d{}", n - 1));
        text.push_str("[[directive]]\nname = \"d7\"\nwhen = \"3 failures in a row\"\n");
        let err = DirectiveSet::from_toml_str(&text, "many.toml").expect_err("duplicate");
        let line = 4 * n + 2;
        assert!(err.to_string().contains(&format!("line {line}, field `name`")), "{err}");
        // An invalid directive names its own line.
        let bad = "[[directive]]\nname = \"ok\"\nwhen = \"3 failures in a row\"\n\n\
                   [[directive]]\nname = \"bad\"\nwhen = \"3 failures in a row\"\n\
                   then = [{ action = \"set_sampling\", rate = 2.0 }]\n";
        let err = DirectiveSet::from_toml_str(bad, "bad.toml").expect_err("rate");
        assert!(err.to_string().contains("line 6, directive \"bad\""), "{err}");
    }

    /// Loads `text`, returning the result and the work it took ([`WORK`]).
    fn load_counting(text: &str) -> (Result<DirectiveSet>, u64) {
        WORK.with(|w| w.set(0));
        let loaded = DirectiveSet::from_toml_str(text, "many.toml");
        (loaded, WORK.with(std::cell::Cell::get))
    }

    /// Loading directives is linear work: the lines searched for directives' lines and the
    /// names checked for duplicates grow with the file, not with its square (20,000
    /// directives took minutes when each searched the whole text for its line and the whole
    /// set for its name). Counted, not timed.
    #[test]
    fn loading_directives_takes_work_linear_in_the_file() {
        let (small, large) = (many(2_000), many(20_000));
        let (loaded, small_work) = load_counting(&small);
        assert_eq!(loaded.expect("2,000").len(), 2_000);
        // Every name was checked, so the counter is on the loading path.
        assert!(small_work >= 2_000, "work for 2,000 directives: {small_work}");
        let (loaded, large_work) = load_counting(&large);
        assert_eq!(loaded.expect("20,000").len(), 20_000);
        assert!(
            large_work <= 12 * small_work,
            "ten times the directives took {large_work} units of work, {small_work} for 2,000"
        );
        let lines = large.lines().count() as u64;
        assert!(large_work <= lines, "{large_work} units of work for {lines} lines");
        // A duplicate's line is found in one pass over the text.
        let mut text = large;
        text.push_str("[[directive]]\nname = \"d7\"\nwhen = \"3 failures in a row\"\n");
        let (loaded, work) = load_counting(&text);
        assert!(loaded.expect_err("duplicate").to_string().contains("line 80002,"));
        let lines = text.lines().count() as u64;
        assert!(work <= 2 * lines, "{work} units of work for a duplicate in {lines} lines");
    }

    /// Every numeric field of a directive has a range, and an error names the field.
    #[test]
    fn numeric_fields_are_range_checked() {
        let head = "[[directive]]\nname = \"d\"\nwhen = \"3 failures in a row\"\n";
        for (extra, field) in [
            ("min_events = 1000001\n", "min_events"),
            (
                "then = [{ action = \"open_breaker\", tool = \"t\", cool_down = \"2d\" }]\n",
                "cool_down",
            ),
            (
                "then = [{ action = \"open_breaker\", tool = \"t\", cool_down = \"0s\" }]\n",
                "cool_down",
            ),
            (
                "then = [{ action = \"webhook\", url = \"http://h\", backoff = \"2d\" }]\n",
                "backoff",
            ),
            (
                "then = [{ action = \"webhook\", url = \"http://h\", timeout = \"0s\" }]\n",
                "timeout",
            ),
            ("then = [{ action = \"webhook\", url = \"http://h\", retries = 21 }]\n", "retries"),
            ("then = [{ action = \"set_sampling\", rate = -0.1 }]\n", "rate"),
        ] {
            let err = DirectiveSet::from_toml_str(&format!("{head}{extra}"), "x.toml")
                .expect_err(extra)
                .to_string();
            assert!(err.contains(&format!("`{field}`")), "{extra}: {err}");
        }
        let ok = format!("{head}min_events = 1000000\n");
        assert!(DirectiveSet::from_toml_str(&ok, "x.toml").is_ok());
    }
}
