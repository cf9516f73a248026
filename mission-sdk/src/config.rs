//! [`MissionConfig`]: every setting of an embedded Mission Control, from code, a file or the
//! environment — in that order of precedence.

use mission_core::{Backpressure, Level, RecorderConfig, duration_text};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// Settings of an embedded Mission Control. Every field is optional: what is unset falls back
/// to the environment (`MISSION_*`), then to the default. Deserialises from TOML or JSON.
///
/// ```
/// let config: mission_sdk::MissionConfig = toml::from_str(r#"
///     tenant = "acme"
///     store_root = "/var/lib/mission"
///     [recorder]
///     ring_capacity = 16384
/// "#)?;
/// assert_eq!(config.tenant.as_deref(), Some("acme"));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MissionConfig {
    /// The tenant events belong to (`MISSION_TENANT`; default `default`).
    pub tenant: Option<String>,
    /// The service name exported with events (`MISSION_SERVICE_NAME`; default `mission-agent`).
    pub service_name: Option<String>,
    /// Whether to write a Parquet store (`MISSION_STORE=on|off`; default on).
    pub store: Option<bool>,
    /// Where the store lives (`MISSION_STORE_ROOT`; default `./mission-data`).
    pub store_root: Option<PathBuf>,
    /// Upload the store's finalized files to this object-storage root, e.g.
    /// `s3://bucket/prefix` (`MISSION_STORE_UPLOAD`; default: no upload; needs the `s3`
    /// feature). See [`with_store_upload`](crate::MissionControlBuilder::with_store_upload).
    pub store_upload: Option<String>,
    /// Whether anomaly detection and memory sampling run (`MISSION_MODELS=on|off`; default on
    /// when the `models` feature is built).
    pub models: Option<bool>,
    /// Directive files to load, TOML or JSON, or preset names written `preset:<name>`
    /// (`MISSION_DIRECTIVES`, comma-separated; default none).
    pub directives: Option<Vec<PathBuf>>,
    /// A policy file, TOML or JSON, for [`permit`](crate::MissionControl::permit)
    /// (`MISSION_POLICY_FILE`; default: allow everything).
    pub policy_file: Option<PathBuf>,
    /// A redaction file, TOML or JSON (`MISSION_REDACTION_FILE`; default: no redaction).
    pub redaction_file: Option<PathBuf>,
    /// Recorder buffers and backpressure (`MISSION_RING_CAPACITY`, `MISSION_BACKPRESSURE` =
    /// `drop_newest` or `block:<duration>`).
    pub recorder: Option<RecorderConfig>,
    /// A price table file, TOML or JSON (`MISSION_PRICES_FILE`; default: built-in prices).
    pub prices_file: Option<PathBuf>,
    /// A learned model baseline to warm-start new anomaly streams from
    /// (`MISSION_MODEL_BASELINE`; default none); see `ModelConfig::baseline`.
    pub model_baseline: Option<PathBuf>,
    /// Spans open longer than this are reported in flight (`MISSION_IN_FLIGHT_AFTER`;
    /// default 30s).
    #[serde(with = "mission_core::duration_text::option")]
    pub in_flight_after: Option<Duration>,
    /// Most time events are kept in the store (`MISSION_RETENTION`, e.g. `30d`; default: for
    /// ever). Compliance packs can shorten it per tenant. Retention deletes what is older, so
    /// less than [`MIN_RETENTION`] (`0s` deletes the whole store) is refused unless
    /// `allow_short_retention` confirms it; the store refuses less than 1 s in any case
    /// ([`mission_store::RETENTION_RANGE`]).
    #[serde(with = "mission_core::duration_text::option")]
    pub retention: Option<Duration>,
    /// Confirms a `retention` below [`MIN_RETENTION`] (`MISSION_ALLOW_SHORT_RETENTION=on`;
    /// default off).
    pub allow_short_retention: Option<bool>,
    /// Compliance packs to apply: `soc2`, `hipaa`, `pci` or a pack file, each for every tenant
    /// or written `NAME@TENANT` for one (`MISSION_COMPLIANCE`, comma-separated; default none).
    pub compliance: Option<Vec<String>>,
    /// The least severe log level recorded (`MISSION_LOG_LEVEL` = `trace`, `debug`, `info`,
    /// `warn` or `error`; default `trace`: every log record). A firing directive with
    /// `set_log_level` records more verbose levels while it fires.
    pub log_level: Option<Level>,
    /// Tenants whose prompt and completion content is kept (`MISSION_CAPTURE_CONTENT`,
    /// comma-separated; `*` for every tenant). Default none: content attributes (see
    /// [`redact::is_content_key`](crate::redact::is_content_key)) are replaced by
    /// `[content omitted]` before anything is stored, exported, streamed or aggregated.
    pub capture_content: Option<Vec<String>>,
    /// OTLP export (`MISSION_OTLP_ENDPOINT`, `MISSION_OTLP_PROTOCOL`, `MISSION_OTLP_SPILL_DIR`
    /// and the standard
    /// `OTEL_{TRACES,LOGS,METRICS}_EXPORTER=none`); see [`OtlpSettings`].
    pub otlp: Option<OtlpSettings>,
    /// Budgets of new threads (`[budget.default]`, `[budget.agent.NAME]`); see
    /// [`BudgetSettings`].
    pub budget: Option<BudgetSettings>,
}

/// Budgets a configuration file gives new threads: every agent's (`[budget.default]`) and one
/// agent's (`[budget.agent."support-bot"]`, which replaces the default for that agent). A
/// budget given in code (`Agent::thread_with_budget`, `Thread::child_thread_with_budget`) wins
/// over the file's; a child thread's ancestors' budgets apply whatever its own.
///
/// ```
/// let config: mission_sdk::MissionConfig = toml::from_str(r#"
///     [budget.default]
///     cost_usd = 2.0
///     [budget.agent.researcher]
///     tokens = 200000
///     hard = true
/// "#)?;
/// let budget = config.budget.unwrap();
/// assert_eq!(budget.agent["researcher"].tokens, Some(200_000));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    /// Every agent's threads' budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<mission_govern::threads::Budget>,
    /// Per agent, replacing the default.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub agent: std::collections::BTreeMap<String, mission_govern::threads::Budget>,
}

impl BudgetSettings {
    /// Narrows every budget here by `budget` (a compliance pack's): the default becomes the
    /// narrower of the two (or `budget` when there was none), and so does each agent's.
    pub fn narrow(&mut self, budget: &mission_govern::threads::Budget) {
        self.default = Some(self.default.map_or(*budget, |d| d.narrowed(budget)));
        for b in self.agent.values_mut() {
            *b = b.narrowed(budget);
        }
    }

    /// The budget a new thread of `agent` gets from the file, if any.
    pub fn for_agent(&self, agent: &str) -> Option<mission_govern::threads::Budget> {
        self.agent.get(agent).copied().or(self.default)
    }

    /// Whether it gives any thread a budget.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.agent.is_empty()
    }
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl MissionConfig {
    /// Sets [`tenant`](Self::tenant).
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets [`service_name`](Self::service_name).
    pub fn with_service_name(mut self, service_name: impl Into<String>) -> Self {
        self.service_name = Some(service_name.into());
        self
    }

    /// Sets [`store`](Self::store).
    pub fn with_store(mut self, store: bool) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets [`store_root`](Self::store_root).
    pub fn with_store_root(mut self, store_root: PathBuf) -> Self {
        self.store_root = Some(store_root);
        self
    }

    /// Sets [`models`](Self::models).
    pub fn with_models(mut self, models: bool) -> Self {
        self.models = Some(models);
        self
    }

    /// Sets [`directives`](Self::directives).
    pub fn with_directives(mut self, directives: Vec<PathBuf>) -> Self {
        self.directives = Some(directives);
        self
    }

    /// Sets [`policy_file`](Self::policy_file).
    pub fn with_policy_file(mut self, policy_file: PathBuf) -> Self {
        self.policy_file = Some(policy_file);
        self
    }

    /// Sets [`redaction_file`](Self::redaction_file).
    pub fn with_redaction_file(mut self, redaction_file: PathBuf) -> Self {
        self.redaction_file = Some(redaction_file);
        self
    }

    /// Sets [`recorder`](Self::recorder).
    pub fn with_recorder(mut self, recorder: RecorderConfig) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Sets [`prices_file`](Self::prices_file).
    pub fn with_prices_file(mut self, prices_file: PathBuf) -> Self {
        self.prices_file = Some(prices_file);
        self
    }

    /// Sets [`model_baseline`](Self::model_baseline).
    pub fn with_model_baseline(mut self, model_baseline: PathBuf) -> Self {
        self.model_baseline = Some(model_baseline);
        self
    }

    /// Sets [`in_flight_after`](Self::in_flight_after).
    pub fn with_in_flight_after(mut self, in_flight_after: Duration) -> Self {
        self.in_flight_after = Some(in_flight_after);
        self
    }

    /// Sets [`retention`](Self::retention).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Sets [`allow_short_retention`](Self::allow_short_retention).
    pub fn with_allow_short_retention(mut self, allow_short_retention: bool) -> Self {
        self.allow_short_retention = Some(allow_short_retention);
        self
    }

    /// Sets [`compliance`](Self::compliance).
    pub fn with_compliance(mut self, compliance: Vec<String>) -> Self {
        self.compliance = Some(compliance);
        self
    }

    /// Sets [`log_level`](Self::log_level).
    pub fn with_log_level(mut self, log_level: Level) -> Self {
        self.log_level = Some(log_level);
        self
    }

    /// Sets [`capture_content`](Self::capture_content).
    pub fn with_capture_content(mut self, capture_content: Vec<String>) -> Self {
        self.capture_content = Some(capture_content);
        self
    }

    /// Sets [`otlp`](Self::otlp).
    pub fn with_otlp(mut self, otlp: OtlpSettings) -> Self {
        self.otlp = Some(otlp);
        self
    }
}

/// A configuration with every setting decided.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ResolvedConfig {
    /// The tenant.
    pub tenant: String,
    /// The service name.
    pub service_name: String,
    /// The store root, or `None` for no store.
    pub store_root: Option<PathBuf>,
    /// The object-storage root the store's files are uploaded to, if any.
    pub store_upload: Option<String>,
    /// Whether the models run.
    pub models: bool,
    /// Directive files (and `preset:<name>`s) to load.
    pub directives: Vec<PathBuf>,
    /// The policy file, if any.
    pub policy_file: Option<PathBuf>,
    /// The redaction file, if any.
    pub redaction_file: Option<PathBuf>,
    /// Recorder settings.
    pub recorder: RecorderConfig,
    /// The price table file, if any.
    pub prices_file: Option<PathBuf>,
    /// The model baseline to warm-start from, if any.
    pub model_baseline: Option<PathBuf>,
    /// Spans open longer than this are in flight.
    pub in_flight_after: Duration,
    /// Most time events are kept (`None`: for ever), before compliance packs.
    pub retention: Option<Duration>,
    /// Whether a retention below [`MIN_RETENTION`] was confirmed.
    pub allow_short_retention: bool,
    /// Compliance packs to apply, as given (`NAME` or `NAME@TENANT`).
    pub compliance: Vec<String>,
    /// The least severe log level recorded (a firing `set_log_level` directive lowers it).
    pub log_level: Level,
    /// Tenants whose prompt and completion content is kept (`*`: every tenant).
    pub capture_content: Vec<String>,
    /// OTLP export settings a file or the environment made (code's `with_otlp` wins).
    pub otlp: OtlpSettings,
    /// Budgets of new threads from the file.
    pub budget: BudgetSettings,
}

/// The safety floor of [`MissionConfig::retention`]: a shorter retention deletes recent data
/// and is refused unless `allow_short_retention` confirms it.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// Reads a TOML file, or JSON when the name ends in `.json` (the one reader of settings files,
/// in `mission-govern`).
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field if it does not
/// parse.
pub(crate) fn read_toml_or_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    Ok(mission_govern::config_file::read_toml_or_json(path)?)
}

impl MissionConfig {
    /// Reads a TOML or JSON (by extension) configuration file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Config`] naming the file, line and field if it does
    /// not parse.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let config: Self = read_toml_or_json(path)?;
        if let Some(recorder) = &config.recorder {
            recorder.validate().map_err(|message| Error::Config {
                origin: path.display().to_string(),
                message: format!("[recorder] {message}"),
            })?;
        }
        Ok(config)
    }

    /// Fills every field left unset in `self` from `other`.
    pub fn or(self, other: MissionConfig) -> Self {
        Self {
            tenant: self.tenant.or(other.tenant),
            service_name: self.service_name.or(other.service_name),
            store: self.store.or(other.store),
            store_root: self.store_root.or(other.store_root),
            store_upload: self.store_upload.or(other.store_upload),
            models: self.models.or(other.models),
            directives: self.directives.or(other.directives),
            policy_file: self.policy_file.or(other.policy_file),
            redaction_file: self.redaction_file.or(other.redaction_file),
            recorder: self.recorder.or(other.recorder),
            prices_file: self.prices_file.or(other.prices_file),
            model_baseline: self.model_baseline.or(other.model_baseline),
            in_flight_after: self.in_flight_after.or(other.in_flight_after),
            retention: self.retention.or(other.retention),
            allow_short_retention: self.allow_short_retention.or(other.allow_short_retention),
            compliance: self.compliance.or(other.compliance),
            log_level: self.log_level.or(other.log_level),
            capture_content: self.capture_content.or(other.capture_content),
            otlp: match (self.otlp, other.otlp) {
                (Some(a), Some(b)) => Some(a.or(b)),
                (a, b) => a.or(b),
            },
            budget: self.budget.or(other.budget),
        }
    }

    /// The settings `MISSION_*` variables give, read through `var` (so tests need not touch
    /// the process environment).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is invalid.
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let bad = |name: &str, message: String| Error::Config {
            origin: format!("environment variable {name}"),
            message,
        };
        let mut recorder: Option<RecorderConfig> = None;
        if let Some(v) = var("MISSION_RING_CAPACITY") {
            let range = mission_core::RING_CAPACITY_RANGE;
            let n =
                v.trim().parse::<usize>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    bad(
                        "MISSION_RING_CAPACITY",
                        format!(
                            "field `ring_capacity`: {v:?} is not a number of events from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                })?;
            recorder.get_or_insert_with(RecorderConfig::default).ring_capacity = n;
        }
        if let Some(v) = var("MISSION_BACKPRESSURE") {
            let policy = match v.trim() {
                "drop_newest" => Backpressure::DropNewest,
                other => match other.strip_prefix("block:") {
                    Some(t) => {
                        let timeout =
                            duration_text::parse(t).map_err(|e| bad("MISSION_BACKPRESSURE", e))?;
                        let range = mission_core::BLOCK_TIMEOUT_RANGE;
                        mission_core::check_range("backpressure.timeout", timeout, &range, |d| {
                            duration_text::format(*d)
                        })
                        .map_err(|e| bad("MISSION_BACKPRESSURE", e))?;
                        Backpressure::Block { timeout }
                    }
                    None => {
                        return Err(bad(
                            "MISSION_BACKPRESSURE",
                            format!(
                                "{v:?}: expected drop_newest or block:<duration> (e.g. block:5ms)"
                            ),
                        ));
                    }
                },
            };
            recorder.get_or_insert_with(RecorderConfig::default).backpressure = policy;
        }
        let switch = |name: &str| match var(name).as_deref().map(str::trim) {
            None => Ok(None),
            Some("on" | "true" | "1") => Ok(Some(true)),
            Some("off" | "false" | "0") => Ok(Some(false)),
            Some(other) => Err(bad(name, format!("{other:?}: expected on or off"))),
        };
        let store = switch("MISSION_STORE")?;
        let models = switch("MISSION_MODELS")?;
        let allow_short_retention = switch("MISSION_ALLOW_SHORT_RETENTION")?;
        let in_flight_after = match var("MISSION_IN_FLIGHT_AFTER") {
            Some(v) => {
                Some(duration_text::parse(&v).map_err(|e| bad("MISSION_IN_FLIGHT_AFTER", e))?)
            }
            None => None,
        };
        let log_level = match var("MISSION_LOG_LEVEL") {
            Some(v) => Some(
                v.trim().parse::<Level>().map_err(|e| bad("MISSION_LOG_LEVEL", e.to_string()))?,
            ),
            None => None,
        };
        let mut otlp = OtlpSettings::from_env_with(&var);
        if let Some(v) = var("MISSION_OTLP_SPILL_MAX_BYTES") {
            let range = OTLP_SPILL_BYTES_RANGE;
            let n =
                v.trim().parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    bad(
                        "MISSION_OTLP_SPILL_MAX_BYTES",
                        format!(
                            "field `spill_max_bytes`: {v:?} is not a number of bytes from {} \
                         (64 KiB) to {} (1 TiB)",
                            range.start(),
                            range.end()
                        ),
                    )
                })?;
            otlp.get_or_insert_default().spill_max_bytes = Some(n);
        }
        Ok(Self {
            in_flight_after,
            log_level,
            tenant: var("MISSION_TENANT"),
            service_name: var("MISSION_SERVICE_NAME"),
            store,
            store_root: var("MISSION_STORE_ROOT").map(PathBuf::from),
            store_upload: var("MISSION_STORE_UPLOAD").filter(|v| !v.trim().is_empty()),
            models,
            policy_file: var("MISSION_POLICY_FILE").map(PathBuf::from),
            redaction_file: var("MISSION_REDACTION_FILE").map(PathBuf::from),
            directives: var("MISSION_DIRECTIVES").map(|v| list(&v).map(PathBuf::from).collect()),
            recorder,
            prices_file: var("MISSION_PRICES_FILE").map(PathBuf::from),
            model_baseline: var("MISSION_MODEL_BASELINE").map(PathBuf::from),
            retention: match var("MISSION_RETENTION") {
                Some(v) => Some(duration_text::parse(&v).map_err(|e| bad("MISSION_RETENTION", e))?),
                None => None,
            },
            allow_short_retention,
            compliance: var("MISSION_COMPLIANCE").map(|v| list(&v).map(String::from).collect()),
            capture_content: var("MISSION_CAPTURE_CONTENT")
                .map(|v| list(&v).map(String::from).collect()),
            otlp,
            budget: None,
        })
    }

    /// Decides every setting: `self`, then `env`, then the defaults.
    ///
    /// Ranges are checked by [`ResolvedConfig::validate`] (and where each setting is loaded).
    pub fn resolve(self, env: MissionConfig) -> ResolvedConfig {
        let merged = self.or(env);
        ResolvedConfig {
            tenant: merged.tenant.unwrap_or_else(|| "default".into()),
            service_name: merged.service_name.unwrap_or_else(|| "mission-agent".into()),
            store_root: if merged.store.unwrap_or(true) {
                Some(merged.store_root.unwrap_or_else(|| PathBuf::from("./mission-data")))
            } else {
                None
            },
            store_upload: merged.store_upload,
            models: merged.models.unwrap_or(true),
            directives: merged.directives.unwrap_or_default(),
            policy_file: merged.policy_file,
            redaction_file: merged.redaction_file,
            recorder: merged.recorder.unwrap_or_default(),
            prices_file: merged.prices_file,
            model_baseline: merged.model_baseline,
            in_flight_after: merged.in_flight_after.unwrap_or(Duration::from_secs(30)),
            retention: merged.retention,
            allow_short_retention: merged.allow_short_retention.unwrap_or(false),
            compliance: merged.compliance.unwrap_or_default(),
            log_level: merged.log_level.unwrap_or(Level::Trace),
            capture_content: merged.capture_content.unwrap_or_default(),
            otlp: merged.otlp.unwrap_or_default(),
            budget: merged.budget.unwrap_or_default(),
        }
    }
}

/// The range of `[otlp] spill_max_bytes` (`MISSION_OTLP_SPILL_MAX_BYTES`): 64 KiB to 1 TiB, as
/// the exporter checks it.
pub const OTLP_SPILL_BYTES_RANGE: std::ops::RangeInclusive<u64> = 64 * 1024..=1 << 40;

/// OTLP export settings of a configuration file (`[otlp]`) or the environment. In code,
/// `MissionControlBuilder::with_otlp` takes a whole `OtlpConfig` (feature `otlp`), whose
/// signal switches still default to these.
///
/// ```
/// let config: mission_sdk::MissionConfig = toml::from_str(r#"
///     [otlp]
///     endpoint = "http://localhost:6006"
///     logs = false
///     metrics = false
/// "#)?;
/// assert_eq!(config.otlp.and_then(|o| o.logs), Some(false));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpSettings {
    /// The collector's base URL (`MISSION_OTLP_ENDPOINT`); export is on when there is one.
    pub endpoint: Option<String>,
    /// `http` (HTTP/protobuf, the default) or `grpc` (`MISSION_OTLP_PROTOCOL`).
    pub protocol: Option<String>,
    /// Export spans (default on; `OTEL_TRACES_EXPORTER=none` turns it off).
    pub traces: Option<bool>,
    /// Export log records (default on; `OTEL_LOGS_EXPORTER=none` turns it off).
    pub logs: Option<bool>,
    /// Export the GenAI metrics (default on; `OTEL_METRICS_EXPORTER=none` turns it off).
    pub metrics: Option<bool>,
    /// A directory where span batches the backend does not take wait on disk and are
    /// replayed in order when it returns (`MISSION_OTLP_SPILL_DIR`; default: no spill). See
    /// `mission_export::otlp::OtlpConfig::spill_dir`.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Most bytes the spill takes; the oldest spilled batches are dropped (counted) past it
    /// (`MISSION_OTLP_SPILL_MAX_BYTES`; default 256 MiB; 64 KiB to 1 TiB).
    pub spill_max_bytes: Option<u64>,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl OtlpSettings {
    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Sets [`protocol`](Self::protocol).
    pub fn with_protocol(mut self, protocol: Option<String>) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets [`traces`](Self::traces).
    pub fn with_traces(mut self, traces: Option<bool>) -> Self {
        self.traces = traces;
        self
    }

    /// Sets [`logs`](Self::logs).
    pub fn with_logs(mut self, logs: Option<bool>) -> Self {
        self.logs = logs;
        self
    }

    /// Sets [`metrics`](Self::metrics).
    pub fn with_metrics(mut self, metrics: Option<bool>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets [`spill_dir`](Self::spill_dir).
    pub fn with_spill_dir(mut self, spill_dir: Option<std::path::PathBuf>) -> Self {
        self.spill_dir = spill_dir;
        self
    }

    /// Sets [`spill_max_bytes`](Self::spill_max_bytes).
    pub fn with_spill_max_bytes(mut self, spill_max_bytes: Option<u64>) -> Self {
        self.spill_max_bytes = spill_max_bytes;
        self
    }
}

impl OtlpSettings {
    /// The exporter configuration these settings describe, `None` without an endpoint. With
    /// `use_environment`, the CA file comes from
    /// [`OtlpConfig::ca_file_from_env`](crate::OtlpConfig::ca_file_from_env).
    ///
    /// # Errors
    /// [`Error::Config`] for a protocol other than `http` or `grpc`.
    #[cfg(feature = "otlp")]
    pub fn to_otlp_config(&self, use_environment: bool) -> Result<Option<crate::OtlpConfig>> {
        let Some(endpoint) = &self.endpoint else { return Ok(None) };
        let mut config = match self.protocol.as_deref().unwrap_or("http") {
            "http" | "http/protobuf" => crate::OtlpConfig::http(endpoint),
            "grpc" => crate::OtlpConfig::grpc(endpoint),
            other => {
                return Err(Error::Config {
                    origin: "OTLP protocol (MISSION_OTLP_PROTOCOL or [otlp] protocol)".into(),
                    message: format!("{other:?}: expected http or grpc"),
                });
            }
        };
        config.traces = self.traces;
        config.logs = self.logs;
        config.metrics = self.metrics;
        self.fill_spill(&mut config);
        // The collector's CA (headers come from OTEL_EXPORTER_OTLP_HEADERS, which the
        // exporter reads itself).
        if use_environment {
            config.ca_file = crate::OtlpConfig::ca_file_from_env();
        }
        Ok(Some(config))
    }

    /// Gives `config` this spill when it has none: [`spill_dir`](Self::spill_dir), and
    /// [`spill_max_bytes`](Self::spill_max_bytes) if set. A spill set in code is kept whole.
    #[cfg(feature = "otlp")]
    pub fn fill_spill(&self, config: &mut crate::OtlpConfig) {
        if config.spill_dir.is_none()
            && let Some(dir) = &self.spill_dir
        {
            config.spill_dir = Some(dir.clone());
            if let Some(max) = self.spill_max_bytes {
                config.spill_max_bytes = max;
            }
        }
    }

    /// Fills every field left unset in `self` from `other`.
    pub fn or(self, other: OtlpSettings) -> Self {
        Self {
            endpoint: self.endpoint.or(other.endpoint),
            protocol: self.protocol.or(other.protocol),
            traces: self.traces.or(other.traces),
            logs: self.logs.or(other.logs),
            metrics: self.metrics.or(other.metrics),
            spill_dir: self.spill_dir.or(other.spill_dir),
            spill_max_bytes: self.spill_max_bytes.or(other.spill_max_bytes),
        }
    }

    /// What the environment (read through `var`) says; `None` when it says nothing. An
    /// `OTEL_*_EXPORTER` of `none` turns the signal off, one listing `otlp` turns it on; other
    /// values name exporters we do not have and are ignored.
    fn from_env_with(var: &impl Fn(&str) -> Option<String>) -> Option<Self> {
        let switch = |name: &str| mission_export::otel_exporter_switch(&var(name)?);
        let settings = Self {
            endpoint: var("MISSION_OTLP_ENDPOINT"),
            protocol: var("MISSION_OTLP_PROTOCOL"),
            traces: switch("OTEL_TRACES_EXPORTER"),
            logs: switch("OTEL_LOGS_EXPORTER"),
            metrics: switch("OTEL_METRICS_EXPORTER"),
            spill_dir: var("MISSION_OTLP_SPILL_DIR").map(std::path::PathBuf::from),
            spill_max_bytes: None,
        };
        (settings != Self::default()).then_some(settings)
    }
}

impl ResolvedConfig {
    /// Checks every setting against its documented range: the recorder's
    /// ([`RecorderConfig::validate`]), `in_flight_after` (1ms to a day), and `retention` no
    /// shorter than [`MIN_RETENTION`] unless `allow_short_retention`.
    ///
    /// # Errors
    /// A message naming the field, its value and the range (or how to confirm).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.recorder.validate().map_err(|m| format!("[recorder] {m}"))?;
        let text = |d: &Duration| duration_text::format(*d);
        let range = Duration::from_millis(1)..=Duration::from_secs(86_400);
        mission_core::check_range("in_flight_after", self.in_flight_after, &range, text)?;
        if let Some(b) = &self.budget.default {
            b.validate().map_err(|e| format!("[budget.default] {e}"))?;
        }
        for (agent, b) in &self.budget.agent {
            b.validate().map_err(|e| format!("[budget.agent.{agent}] {e}"))?;
        }
        if let Some(r) = self.retention
            && r < MIN_RETENTION
            && !self.allow_short_retention
        {
            return Err(format!(
                "field `retention`: {} is below the safety floor of {}; retention deletes every \
                 event older than it ({} deletes the whole store). Confirm with \
                 allow_short_retention = true (MISSION_ALLOW_SHORT_RETENTION=on)",
                text(&r),
                text(&MIN_RETENTION),
                text(&Duration::ZERO)
            ));
        }
        Ok(())
    }
}

/// The items of a comma-separated variable, trimmed, empty ones skipped.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_need_nothing() {
        let r = MissionConfig::default().resolve(MissionConfig::default());
        assert_eq!(r.store_root, Some(PathBuf::from("./mission-data")));
        assert_eq!(r.tenant, "default");
        assert_eq!(r.recorder, RecorderConfig::default());
    }

    #[test]
    fn code_beats_environment_which_fills_the_rest() {
        let from_env = MissionConfig::from_env_with(env(&[
            ("MISSION_TENANT", "env-tenant"),
            ("MISSION_STORE_ROOT", "/env/root"),
            ("MISSION_BACKPRESSURE", "block:5ms"),
        ]))
        .expect("env");
        let code = MissionConfig { tenant: Some("code-tenant".into()), ..MissionConfig::default() };
        let r = code.resolve(from_env);
        assert_eq!(r.tenant, "code-tenant");
        assert_eq!(r.store_root, Some(PathBuf::from("/env/root")));
        assert_eq!(
            r.recorder.backpressure,
            Backpressure::Block { timeout: Duration::from_millis(5) }
        );
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let err = MissionConfig::from_env_with(env(&[("MISSION_BACKPRESSURE", "sometimes")]))
            .unwrap_err();
        assert!(err.to_string().contains("MISSION_BACKPRESSURE"), "{err}");
        let err =
            MissionConfig::from_env_with(env(&[("MISSION_RING_CAPACITY", "lots")])).unwrap_err();
        assert!(err.to_string().contains("MISSION_RING_CAPACITY"), "{err}");
        let off = MissionConfig::from_env_with(env(&[("MISSION_STORE", "off")])).expect("env");
        assert_eq!(MissionConfig::default().resolve(off).store_root, None);
        let capture =
            MissionConfig::from_env_with(env(&[("MISSION_CAPTURE_CONTENT", " lab, research ,")]))
                .expect("env");
        assert_eq!(capture.capture_content, Some(vec!["lab".to_owned(), "research".to_owned()]));
        let err = MissionConfig::from_env_with(env(&[("MISSION_LOG_LEVEL", "loud")])).unwrap_err();
        assert!(err.to_string().contains("MISSION_LOG_LEVEL"), "{err}");
        let warn =
            MissionConfig::from_env_with(env(&[("MISSION_LOG_LEVEL", "warn")])).expect("env");
        assert_eq!(MissionConfig::default().resolve(warn).log_level, Level::Warn);
        let all = MissionConfig::default().resolve(MissionConfig::default());
        assert_eq!(all.log_level, Level::Trace, "every log record by default");
    }

    #[test]
    fn otlp_signals_come_from_the_file_or_the_standard_variables() {
        let from_env = MissionConfig::from_env_with(env(&[
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", " NONE "),
            ("OTEL_TRACES_EXPORTER", "otlp,console"),
            ("MISSION_OTLP_ENDPOINT", "http://collector:4318"),
        ]))
        .expect("env");
        let r = MissionConfig::default().resolve(from_env.clone());
        assert_eq!(r.otlp.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(
            (r.otlp.traces, r.otlp.logs, r.otlp.metrics),
            (Some(true), Some(false), Some(false))
        );
        let file: MissionConfig =
            toml::from_str("[otlp]\nendpoint = \"http://phoenix:6006\"\nlogs = true\n")
                .expect("toml");
        let r = file.resolve(from_env);
        assert_eq!(
            r.otlp.endpoint.as_deref(),
            Some("http://phoenix:6006"),
            "the file beats the environment"
        );
        assert_eq!((r.otlp.logs, r.otlp.metrics), (Some(true), Some(false)));
        let other =
            MissionConfig::from_env_with(env(&[("OTEL_TRACES_EXPORTER", "zipkin")])).expect("env");
        assert_eq!(other.otlp, None, "an exporter we do not have is ignored");
        assert!(toml::from_str::<MissionConfig>("[otlp]\nlog = false\n").is_err());
    }

    #[test]
    fn the_otlp_spill_comes_from_the_file_or_the_environment() {
        let from_env = MissionConfig::from_env_with(env(&[
            ("MISSION_OTLP_ENDPOINT", "http://collector:4318"),
            ("MISSION_OTLP_SPILL_DIR", "/var/spool/mission"),
        ]))
        .expect("env");
        for bad in ["1000", "lots", "1099511627777"] {
            let err = MissionConfig::from_env_with(env(&[("MISSION_OTLP_SPILL_MAX_BYTES", bad)]))
                .expect_err("out of range");
            assert!(err.to_string().contains("MISSION_OTLP_SPILL_MAX_BYTES"), "{err}");
        }
        let r = MissionConfig::default().resolve(from_env.clone());
        assert_eq!(r.otlp.spill_dir.as_deref(), Some(std::path::Path::new("/var/spool/mission")));
        let file: MissionConfig =
            toml::from_str("[otlp]\nspill_dir = \"spill\"\nspill_max_bytes = 1048576\n")
                .expect("toml");
        let r = file.resolve(from_env);
        assert_eq!(r.otlp.spill_max_bytes, Some(1_048_576));
        #[cfg(feature = "otlp")]
        {
            let config = r.otlp.to_otlp_config(false).expect("valid").expect("an endpoint");
            assert!(config.spill_dir.is_some());
            assert_eq!(config.spill_max_bytes, 1_048_576);
            // A spill set in code is kept whole.
            let mut code = crate::OtlpConfig::http("http://x:4318").with_spill_dir("mine");
            r.otlp.fill_spill(&mut code);
            assert_eq!(code.spill_dir.as_deref(), Some(std::path::Path::new("mine")));
            assert_eq!(code.spill_max_bytes, 256 * 1024 * 1024);
        }
    }

    #[test]
    fn numeric_settings_are_checked_where_they_are_loaded() {
        // The environment: the variable, the field and the range.
        for bad in ["1000000000", "0", "1"] {
            let err = MissionConfig::from_env_with(env(&[("MISSION_RING_CAPACITY", bad)]))
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("MISSION_RING_CAPACITY")
                    && err.contains("ring_capacity")
                    && err.contains("4194304"),
                "{err}"
            );
        }
        let err = MissionConfig::from_env_with(env(&[("MISSION_BACKPRESSURE", "block:2h")]))
            .expect_err("an hour-long block");
        assert!(err.to_string().contains("backpressure.timeout"), "{err}");
        // A file: the file, the field and the range.
        let dir = std::env::temp_dir().join(format!("mission-ranges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("mission.toml");
        std::fs::write(&path, "[recorder]\nring_capacity = 1000000000\n").expect("write");
        let err = MissionConfig::from_file(&path).expect_err("too big").to_string();
        assert!(err.contains("mission.toml") && err.contains("ring_capacity"), "{err}");
        std::fs::write(&path, "[recorder]\nbatch_size = 0\n").expect("write");
        let err = MissionConfig::from_file(&path).expect_err("zero").to_string();
        assert!(err.contains("batch_size") && err.contains("1 to"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        // Code: the resolved configuration.
        let code = MissionConfig {
            recorder: Some(RecorderConfig::default().with_ring_capacity(1 << 40)),
            ..MissionConfig::default()
        };
        let err = code.resolve(MissionConfig::default()).validate().expect_err("code");
        assert!(err.contains("ring_capacity"), "{err}");
        let code =
            MissionConfig { in_flight_after: Some(Duration::ZERO), ..MissionConfig::default() };
        let err = code.resolve(MissionConfig::default()).validate().expect_err("zero");
        assert!(err.contains("in_flight_after"), "{err}");
        assert!(MissionConfig::default().resolve(MissionConfig::default()).validate().is_ok());
    }

    #[test]
    fn a_short_retention_is_refused_unless_confirmed() {
        for text in ["0s", "59m"] {
            let env_config =
                MissionConfig::from_env_with(env(&[("MISSION_RETENTION", text)])).expect("env");
            let err = MissionConfig::default().resolve(env_config).validate().expect_err(text);
            assert!(err.contains("retention") && err.contains("allow_short_retention"), "{err}");
            let confirmed = MissionConfig::from_env_with(env(&[
                ("MISSION_RETENTION", text),
                ("MISSION_ALLOW_SHORT_RETENTION", "on"),
            ]))
            .expect("env");
            assert!(MissionConfig::default().resolve(confirmed).validate().is_ok());
        }
        let file: MissionConfig =
            toml::from_str("retention = \"0s\"\nallow_short_retention = true").expect("toml");
        assert!(MissionConfig::default().resolve(file).validate().is_ok());
        let day: MissionConfig = toml::from_str("retention = \"1d\"").expect("toml");
        assert!(MissionConfig::default().resolve(day).validate().is_ok());
    }

    #[test]
    fn optional_durations_read_as_text() {
        let c: MissionConfig = toml::from_str("in_flight_after = \"250ms\"").expect("toml");
        assert_eq!(c.in_flight_after, Some(std::time::Duration::from_millis(250)));
        let none: MissionConfig = toml::from_str("").expect("toml");
        assert_eq!(none.in_flight_after, None);
        assert!(toml::from_str::<MissionConfig>("in_flight_after = \"soon\"").is_err());
    }

    #[test]
    fn files_report_line_and_field() {
        let dir = std::env::temp_dir().join(format!("mission-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("mission.toml");
        std::fs::write(&path, "tenant = \"acme\"\n\n[recorder]\nring_capacty = 5\n")
            .expect("write");
        let err = MissionConfig::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("mission.toml") && err.contains("ring_capacty") && err.contains("line 4"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
