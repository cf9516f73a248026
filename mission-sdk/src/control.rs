//! [`MissionControl`]: the embedded observability of one agent process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mission_core::{
    AttrValue, Decision, Event, EventBody, Health, Level, LogRecord, PermissionDecision, Pipeline,
    Recorder, Score, ShutdownReport, Sink, StatsReader, StatsSink, StatsSnapshot, Symbol, Text,
    ThreadId,
};
use mission_store::Store;

use crate::inflight::{
    IN_FLIGHT_FILE, InFlight, InFlightReport, InFlightSpan, Watchdog, describe, write_atomically,
};
use crate::price::PriceTable;
use crate::{Agent, MissionConfig, ResolvedConfig, Result, install};
use mission_core::{EventFilter, LiveHub, Subscription};

/// Builds a [`MissionControl`]. Settings made here win over `MISSION_*` environment variables,
/// which win over a configuration file, which wins over the defaults.
#[must_use]
pub struct MissionControlBuilder {
    code: MissionConfig,
    file: Option<PathBuf>,
    sinks: Vec<Box<dyn Sink>>,
    prices: Option<PriceTable>,
    use_environment: bool,
    flush_on_panic: bool,
    sampling: Option<crate::SamplingConfig>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::OtlpConfig>,
    #[cfg(feature = "models")]
    models: Option<crate::ModelConfig>,
    directives: Vec<crate::DirectiveSet>,
    policy: Option<crate::PolicySet>,
    redaction: Option<crate::RedactionConfig>,
    compliance: Vec<crate::compliance::AppliedPack>,
    redaction_key: Option<String>,
    #[cfg(feature = "s3")]
    upload: Option<mission_store::Result<mission_store::RemoteRoot>>,
}

impl MissionControlBuilder {
    /// The tenant events belong to.
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        self.code.tenant = Some(tenant.to_owned());
        self
    }

    /// The service name exported with events.
    pub fn with_service_name(mut self, name: &str) -> Self {
        self.code.service_name = Some(name.to_owned());
        self
    }

    /// Where the Parquet store lives (default `./mission-data`).
    pub fn with_store_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.code.store_root = Some(root.into());
        self.code.store = Some(true);
        self
    }

    /// Uploads the store's finalized files to object storage (`s3://bucket/prefix`; `gs://`,
    /// `az://` and `file://` where the store is built with them), each exactly once, from a
    /// background thread; the store directory is the bounded spill while the bucket is
    /// unreachable (see [`mission_store::upload`]). Credentials and endpoint come from the
    /// AWS_* environment. [`upload_stats`](MissionControl::upload_stats) tells what went up;
    /// shutdown gives the last files up to [`UPLOAD_SHUTDOWN_TIMEOUT`] and leaves the rest in
    /// the directory for the next run.
    #[cfg(feature = "s3")]
    pub fn with_store_upload(mut self, url: &str) -> Self {
        self.upload = Some(mission_store::RemoteRoot::parse(url));
        self
    }

    /// [`with_store_upload`](Self::with_store_upload) to a root configured in code (an
    /// endpoint, region or keys set with [`RemoteRoot::with_option`](mission_store::RemoteRoot::with_option)
    /// rather than the environment).
    #[cfg(feature = "s3")]
    pub fn with_store_upload_root(mut self, root: mission_store::RemoteRoot) -> Self {
        self.upload = Some(Ok(root));
        self
    }

    /// Records without writing a store (statistics, live hub and user sinks only).
    pub fn without_store(mut self) -> Self {
        self.code.store = Some(false);
        self
    }

    /// Recorder buffers and backpressure.
    pub fn with_recorder_config(mut self, config: mission_core::RecorderConfig) -> Self {
        self.code.recorder = Some(config);
        self
    }

    /// The price table costs are computed with (default: built-in prices).
    pub fn with_price_table(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Adds a sink of your own (it receives every drained batch).
    pub fn with_sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Reads settings from a TOML or JSON file; code settings still win.
    pub fn with_config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Uses `config` for every setting code has not made yet.
    pub fn with_config(mut self, config: MissionConfig) -> Self {
        self.code = self.code.or(config);
        self
    }

    /// Ignores `MISSION_*` environment variables (for tests and embedders that own all config).
    pub fn ignore_environment(mut self) -> Self {
        self.use_environment = false;
        self
    }

    /// Exports spans over OTLP (see [`OtlpSink`](crate::OtlpSink)); the service name and tenant
    /// are taken from this instance's settings. Without this call, a configuration file's
    /// `[otlp] endpoint` or `MISSION_OTLP_ENDPOINT` (with `MISSION_OTLP_PROTOCOL=http|grpc`,
    /// default http) turns export on. Signals `config` leaves unset (`traces`, `logs`,
    /// `metrics`) are decided by the file's `[otlp]` section, then `OTEL_*_EXPORTER=none`.
    /// A span spill `config` leaves unset comes from `[otlp] spill_dir` / `spill_max_bytes`
    /// or `MISSION_OTLP_SPILL_DIR` / `MISSION_OTLP_SPILL_MAX_BYTES`.
    #[cfg(feature = "otlp")]
    pub fn with_otlp(mut self, config: crate::OtlpConfig) -> Self {
        self.otlp = Some(config);
        self
    }

    /// Samples whole threads before they reach the store and OTLP export (statistics and the
    /// live stream still see everything); see [`SamplingSink`](crate::SamplingSink).
    pub fn with_sampling(mut self, config: crate::SamplingConfig) -> Self {
        self.sampling = Some(config);
        self
    }

    /// Runs anomaly detection and memory sampling with `config` (they run by default, with
    /// [`ModelConfig::default`](crate::ModelConfig::default)); see [`sinks::anomaly`](crate::sinks::anomaly).
    #[cfg(feature = "models")]
    pub fn with_models(mut self, config: crate::ModelConfig) -> Self {
        self.models = Some(config);
        self.code.models = Some(true);
        self
    }

    /// Runs `directives` (see [`directives`](crate::directives)); may be called more than once
    /// ([`build`](Self::build) refuses two directives of the same name).
    pub fn with_directives(mut self, directives: crate::DirectiveSet) -> Self {
        self.directives.push(directives);
        self
    }

    /// Runs the directives of a TOML or JSON file, or of a preset written `preset:<name>`
    /// (read when [`build`](Self::build) runs, which reports a bad file with its line and
    /// field).
    pub fn with_directives_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.directives.get_or_insert_with(Vec::new).push(path.into());
        self
    }

    /// Decides [`permit`](MissionControl::permit) with `policy` (default: allow everything;
    /// `MISSION_POLICY_FILE` or the configuration's `policy_file` load one from a file).
    pub fn with_policy(mut self, policy: crate::PolicySet) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Applies a compliance pack (`soc2`, `hipaa`, `pci` or your own) to every tenant: it
    /// tightens redaction, shortens retention and sets what the audit trail records (see
    /// [`compliance`](crate::compliance)). `MISSION_COMPLIANCE` or the configuration's
    /// `compliance` name packs too. Needs the store (for the audit trail) and a redaction key.
    pub fn with_compliance(mut self, pack: crate::compliance::CompliancePack) -> Self {
        self.compliance.push(crate::compliance::AppliedPack { pack, tenant: None });
        self
    }

    /// The key of the redaction that compliance packs turn on when no redaction configuration
    /// is given (otherwise `MISSION_REDACTION_KEY`); at least 16 bytes, kept out of the store.
    pub fn with_redaction_key(mut self, key: &str) -> Self {
        self.redaction_key = Some(key.to_owned());
        self
    }

    /// Applies a compliance pack to one tenant's events only (see
    /// [`with_compliance`](Self::with_compliance)).
    pub fn with_tenant_compliance(
        mut self,
        tenant: &str,
        pack: crate::compliance::CompliancePack,
    ) -> Self {
        self.compliance
            .push(crate::compliance::AppliedPack { pack, tenant: Some(tenant.to_owned()) });
        self
    }

    /// Redacts every event before any sink sees it (stored, exported, streamed, aggregated):
    /// see [`redact`](crate::redact). `MISSION_REDACTION_FILE` or the configuration's
    /// `redaction_file` load the rules from a file.
    pub fn with_redaction(mut self, config: crate::RedactionConfig) -> Self {
        self.redaction = Some(config);
        self
    }

    /// Warm-starts the anomaly detectors of streams this agent has not learned yet from a
    /// shared baseline (a model state file, e.g. one `mission-ctl pack import` wrote); see
    /// [`ModelConfig::baseline`](crate::ModelConfig::baseline). `MISSION_MODEL_BASELINE` or the
    /// configuration's `model_baseline` do the same. [`build`](Self::build) refuses a missing
    /// or damaged file.
    #[cfg(feature = "models")]
    pub fn with_model_baseline(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.model_baseline = Some(path.into());
        self
    }

    /// Turns anomaly detection and memory sampling off.
    pub fn without_models(mut self) -> Self {
        self.code.models = Some(false);
        self
    }

    /// Keeps prompt and completion content for `tenants` (`"*"`: every tenant). By default it
    /// is omitted (`[content omitted]`) before anything is stored, exported or streamed; see
    /// [`redact`](crate::redact).
    pub fn with_content_capture<S: Into<String>>(
        mut self,
        tenants: impl IntoIterator<Item = S>,
    ) -> Self {
        self.code.capture_content = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// Records log records at `level` and above only (default: every level). While a
    /// directive with `set_log_level` fires, the level it asks for is recorded too.
    pub fn with_log_level(mut self, level: Level) -> Self {
        self.code.log_level = Some(level);
        self
    }

    /// Spans open longer than this are reported in flight (default 30 s).
    pub fn with_in_flight_after(mut self, threshold: std::time::Duration) -> Self {
        self.code.in_flight_after = Some(threshold);
        self
    }

    /// Whether a panic on any thread flushes this instance first (default true).
    pub fn with_flush_on_panic(mut self, enabled: bool) -> Self {
        self.flush_on_panic = enabled;
        self
    }

    /// Starts recording.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid file or environment variable;
    /// [`Error::Store`](crate::Error::Store) if the store root cannot be created or written;
    /// [`Error::Start`](crate::Error::Start) if the pipeline thread cannot start;
    /// [`Error::Audit`](crate::Error::Audit) if the audit trail cannot be opened or written;
    /// [`Error::Spawn`](crate::Error::Spawn) if the in-flight watchdog cannot start.
    pub fn build(self) -> Result<MissionControl> {
        let MissionControlBuilder {
            code,
            file,
            sinks: user_sinks,
            prices,
            use_environment,
            flush_on_panic,
            sampling,
            #[cfg(feature = "otlp")]
            otlp,
            #[cfg(feature = "models")]
            models,
            directives,
            policy,
            redaction,
            compliance,
            redaction_key,
            #[cfg(feature = "s3")]
            upload,
        } = self;
        let mut config = install::settings(code, file.as_ref(), use_environment)?;
        if let Some(sampling) = &sampling {
            sampling.validate().map_err(|message| crate::Error::Config {
                origin: "with_sampling".into(),
                message,
            })?;
        }
        #[cfg(feature = "models")]
        if let Some(models) = &models {
            models.validate().map_err(|message| crate::Error::Config {
                origin: "with_models".into(),
                message,
            })?;
        }
        let prices = install::prices(prices, &config)?;
        let directives = install::directives(directives, &config)?;
        let audit = install::audit(&config)?;
        let packs = install::compliance_packs(compliance, &config, audit.is_some())?;
        // A pack's budget narrows every budget of its tenants' threads: the configuration's
        // here, a budget given in code when the thread starts.
        let mut pack_budget: Option<mission_govern::threads::Budget> = None;
        for applied in &packs {
            let (Some(budget), true) =
                (applied.pack.budget, applied.tenant.as_deref().is_none_or(|t| t == config.tenant))
            else {
                continue;
            };
            config.budget.narrow(&budget);
            pack_budget = Some(pack_budget.map_or(budget, |p| p.narrowed(&budget)));
        }
        let redaction =
            install::redaction(redaction, redaction_key, use_environment, &packs, &config)?;
        let policy = install::policy(policy, &config)?;
        // `None`: no redaction at all, as when every tenant captures content.
        let captures_content =
            redaction.as_ref().is_none_or(|r| r.rules_for(&config.tenant).capture_content);
        // Every sink, in order, behind redaction when it is on (so nothing unredacted is
        // stored, exported, streamed or aggregated); the sinks that keep data go behind
        // sampling, when it is on.
        let stats = StatsSink::new();
        let stats_reader = stats.reader();
        let hub = LiveHub::new();
        let mut sinks: Vec<Box<dyn Sink>> =
            vec![Box::new(stats), Box::new(hub.sink()), Box::new(directives.sink())];
        let control_audit_failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(audit) = &audit {
            sinks.push(Box::new(crate::sinks::control::ControlSink::new(
                audit.clone(),
                control_audit_failed.clone(),
            )));
        }
        let mut keeping: Vec<Box<dyn Sink>> = Vec::new();
        install::store(&config, &packs, audit.as_ref(), &mut keeping)?;
        #[cfg(feature = "otlp")]
        let otlp_stats = install::otlp(otlp, use_environment, &config, &mut keeping)?;
        let sampling_stats = install::sampling(sampling, keeping, &directives, &mut sinks);
        #[cfg(feature = "models")]
        let model_stats = install::models(models, &config, &mut sinks)?;
        sinks.extend(user_sinks);
        let (pipeline, redaction_stats) = install::pipeline(&config, redaction, sinks)?;
        // The OTLP metric exporter sends the recorder's accounting too.
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &otlp_stats {
            otlp.observe_recorder(pipeline.recorder().downgrade());
        }
        let enforcer = install::enforcer(policy, &pipeline, audit.as_ref(), &packs)?;
        let threads = Arc::new(mission_govern::threads::ThreadRegistry::new());
        threads.attach(pipeline.recorder().downgrade());
        // Events the directives record before the pipeline thread started their sink (a run
        // by hand, an approval) are not lost.
        directives.attach(pipeline.recorder().downgrade());
        directives.with_threads(threads.clone());
        let in_flight = Arc::new(InFlight::new());
        let (watchdog, watchdog_thread) = Watchdog::start(
            in_flight.clone(),
            pipeline.recorder(),
            config.in_flight_after,
            config.store_root.as_ref().map(|r| r.join(IN_FLIGHT_FILE)),
        )
        .map_err(|source| crate::Error::Spawn { what: "in-flight watchdog", source })?;
        if flush_on_panic {
            crate::panic_hook::flush_on_panic(pipeline.recorder().downgrade());
        }
        #[cfg(feature = "s3")]
        let uploader = match upload {
            Some(root) => Some(install::uploader(root, "with_store_upload", &config)?),
            None => match &config.store_upload {
                Some(url) => Some(install::uploader(
                    mission_store::RemoteRoot::parse(url),
                    "store_upload (MISSION_STORE_UPLOAD or the file)",
                    &config,
                )?),
                None => None,
            },
        };
        #[cfg(not(feature = "s3"))]
        if let Some(url) = &config.store_upload {
            return Err(crate::Error::Config {
                origin: "store_upload (MISSION_STORE_UPLOAD or the file)".into(),
                message: format!(
                    "uploading the store to {} needs mission-sdk's `s3` feature, not built",
                    mission_store::redact_url(url)
                ),
            });
        }
        let health_sources = HealthSources {
            #[cfg(feature = "otlp-receiver")]
            receivers: Arc::default(),
            recorder: pipeline.recorder().downgrade(),
            in_flight: in_flight.clone(),
            watchdog: watchdog.clone(),
            sampling: sampling_stats.clone(),
            #[cfg(feature = "otlp")]
            otlp: otlp_stats.clone(),
            #[cfg(feature = "models")]
            models: model_stats.clone(),
            store_root: config.store_root.clone(),
            directives: directives.clone(),
            stats: stats_reader.clone(),
        };
        let budgets = Budgets::of(&config.budget);
        Ok(MissionControl {
            budgets,
            pack_budget,
            health_sources,
            recorder: pipeline.recorder(),
            pipeline: Some(pipeline),
            tenant: Symbol::intern(&config.tenant),
            prices,
            stats: stats_reader,
            hub,
            config,
            in_flight,
            threads,
            artefacts: Arc::default(),
            control_audit_failed,
            analyser_counters: Arc::default(),
            watchdog,
            watchdog_thread: Some(watchdog_thread),
            sampling_stats,
            #[cfg(feature = "otlp")]
            otlp_stats,
            #[cfg(feature = "models")]
            model_stats,
            directives,
            audit,
            enforcer: Arc::new(enforcer),
            redaction_stats,
            compliance: packs,
            captures_content,
            #[cfg(feature = "s3")]
            uploader,
        })
    }
}

/// The configuration file's budgets, by agent symbol (no allocation to look one up).
#[derive(Debug, Default)]
pub(crate) struct Budgets {
    default: Option<mission_govern::threads::Budget>,
    agent: std::collections::HashMap<Symbol, mission_govern::threads::Budget>,
}

impl Budgets {
    fn of(settings: &crate::BudgetSettings) -> Self {
        Self {
            default: settings.default,
            agent: settings.agent.iter().map(|(a, b)| (Symbol::intern(a), *b)).collect(),
        }
    }

    /// The budget a new thread of `agent` gets from the file, if any.
    pub(crate) fn for_agent(&self, agent: Symbol) -> Option<mission_govern::threads::Budget> {
        if self.agent.is_empty() {
            return self.default;
        }
        self.agent.get(&agent).copied().or(self.default)
    }
}

/// The action [`MissionControl::permit`] checks circuit breakers for.
pub const TOOL_CALL: &str = "tool.call";

/// Where, under the store root, the models keep their learned state between runs.
#[cfg(feature = "models")]
pub const MODEL_STATE_FILE: &str = "models/state.json";

/// Mission Control embedded in an agent process: records, stores, aggregates and streams what
/// the agent does. `MissionControl::builder().build()` records to `./mission-data` and needs
/// nothing running. Dropping it (or [`shutdown`](Self::shutdown)) delivers everything recorded;
/// so does a panic on any thread (a process-wide hook flushes it), even when the instance is
/// never dropped.
///
/// ```
/// use mission_sdk::MissionControl;
/// let root = std::env::temp_dir().join(format!("mission-sdk-doc-{}", std::process::id()));
/// let control = MissionControl::builder().with_store_root(&root).build()?;
/// let agent = control.agent("support-bot");
/// let thread = agent.thread();
/// {
///     let mut call = thread.llm_call("gpt-4o-mini", "openai");
///     call.record_usage(812, 64);
/// }
/// drop(thread);
/// let report = control.shutdown();
/// assert_eq!(report.accounting.delivered, 2); // the LLM call and the agent's run
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MissionControl {
    health_sources: HealthSources,
    pipeline: Option<Pipeline>,
    recorder: Recorder,
    pub(crate) tenant: Symbol,
    pub(crate) prices: PriceTable,
    stats: StatsReader,
    hub: LiveHub,
    config: ResolvedConfig,
    pub(crate) in_flight: Arc<InFlight>,
    /// Live threads: trees, states, budgets (issue 22's control plane).
    pub(crate) threads: Arc<mission_govern::threads::ThreadRegistry>,
    /// The host's artefacts and relations, for the relationship graph.
    artefacts: Arc<mission_core::artefacts::Artefacts>,
    /// Budgets of new threads from the configuration file, by agent.
    pub(crate) budgets: Budgets,
    /// The compliance packs' budget, which narrows every thread's.
    pub(crate) pack_budget: Option<mission_govern::threads::Budget>,
    /// Control events the audit trail refused.
    control_audit_failed: Arc<std::sync::atomic::AtomicU64>,
    /// What the host's incident analyser did.
    pub(crate) analyser_counters: Arc<crate::analyser::Counters>,
    watchdog: Arc<Watchdog>,
    watchdog_thread: Option<std::thread::JoinHandle<()>>,
    sampling_stats: Option<crate::SamplingStatsReader>,
    #[cfg(feature = "otlp")]
    otlp_stats: Option<crate::OtlpStatsReader>,
    #[cfg(feature = "models")]
    model_stats: Option<crate::ModelStatsReader>,
    directives: crate::Directives,
    audit: Option<Arc<crate::AuditLog>>,
    enforcer: Arc<crate::PolicyEnforcer>,
    redaction_stats: Option<crate::redact::RedactionStatsReader>,
    compliance: Vec<crate::compliance::AppliedPack>,
    captures_content: bool,
    #[cfg(feature = "s3")]
    uploader: Option<mission_store::Uploader>,
}

/// How long shutdown waits for the last finalized files to go up
/// ([`MissionControlBuilder::with_store_upload`]); what is left stays in the store directory
/// and goes up at the next start.
#[cfg(feature = "s3")]
pub const UPLOAD_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for MissionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MissionControl").field("config", &self.config).finish_non_exhaustive()
    }
}

impl MissionControl {
    /// A builder with every setting unset (defaults, environment and files fill them).
    pub fn builder() -> MissionControlBuilder {
        MissionControlBuilder {
            code: MissionConfig::default(),
            file: None,
            sinks: Vec::new(),
            prices: None,
            use_environment: true,
            flush_on_panic: true,
            sampling: None,
            #[cfg(feature = "otlp")]
            otlp: None,
            #[cfg(feature = "models")]
            models: None,
            directives: Vec::new(),
            policy: None,
            redaction: None,
            compliance: Vec::new(),
            redaction_key: None,
            #[cfg(feature = "s3")]
            upload: None,
        }
    }

    /// An agent: the entry point for threads and spans. Cheap; call it as often as you like.
    pub fn agent(&self, name: &str) -> Agent<'_> {
        Agent::new(self, Symbol::intern(name))
    }

    /// The recorder (for `MissionLayer` or direct use).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Registers one of the host's own artefacts (a database, a queue, a service) as a node
    /// `kind:name` of the relationship graph (the dashboard's Graph page, the MCP tool
    /// `relationship_graph`), in this instance's tenant, with `attributes` shown beside it.
    /// Registering it again replaces its attributes. Returns `Ok(false)` when the registry is
    /// full ([`MAX_ARTEFACTS`](mission_core::artefacts::MAX_ARTEFACTS); counted).
    ///
    /// ```
    /// let control = mission_sdk::MissionControl::builder().without_store().ignore_environment().build()?;
    /// control.register_artefact("datastore", "ledger", &[("engine", "postgres")])?;
    /// control.register_relation("agent:billing", "datastore:ledger", "writes")?;
    /// control.shutdown();
    /// # Ok::<(), mission_sdk::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Artefact`](crate::Error::Artefact): a kind that is not 1–32 of `a-z0-9_`, an
    /// empty or over-long name, too many or over-long attributes.
    pub fn register_artefact(
        &self,
        kind: &str,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Result<bool> {
        self.register_artefact_in(self.tenant.as_str(), kind, name, attributes)
    }

    /// Registers a relation of the relationship graph between two nodes named `kind:name`
    /// (`agent:billing` → `datastore:ledger`, labelled `writes`), in this instance's tenant.
    /// Either end may be a registered artefact or a node the spans make (`agent:…`, `tool:…`,
    /// `model:…`). Returns `Ok(false)` when the registry is full (counted).
    ///
    /// # Errors
    /// [`Error::Artefact`](crate::Error::Artefact): an end that is not `kind:name`, an empty or
    /// over-long label.
    pub fn register_relation(&self, from: &str, to: &str, label: &str) -> Result<bool> {
        self.register_relation_in(self.tenant.as_str(), from, to, label)
    }

    /// [`register_artefact`](Self::register_artefact) in `tenant` (a host serving several
    /// tenants): only principals of that tenant (and of every tenant) see it.
    ///
    /// # Errors
    /// As [`register_artefact`](Self::register_artefact).
    pub fn register_artefact_in(
        &self,
        tenant: &str,
        kind: &str,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Result<bool> {
        Ok(self.artefacts.register_artefact(tenant, kind, name, attributes)?)
    }

    /// [`register_relation`](Self::register_relation) in `tenant`.
    ///
    /// # Errors
    /// As [`register_relation`](Self::register_relation).
    pub fn register_relation_in(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        label: &str,
    ) -> Result<bool> {
        Ok(self.artefacts.register_relation(tenant, from, to, label)?)
    }

    /// The settings in force.
    pub fn config(&self) -> &ResolvedConfig {
        &self.config
    }

    /// Whether prompt and completion content of this instance's tenant is kept: the tenant is
    /// in `capture_content` and no compliance pack turns content off for it. Otherwise
    /// redaction omits it anyway, so instrumentations need not collect it.
    pub fn captures_content(&self) -> bool {
        self.captures_content
    }

    /// The price table costs are computed with.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// Whether a log record at `level` is recorded now: at or above the configured
    /// [`log_level`](crate::MissionConfig::log_level), or at or above what a firing
    /// `set_log_level` directive asks for. O(1), no lock, no allocation (at most one atomic
    /// load).
    #[inline]
    pub fn log_enabled(&self, level: Level) -> bool {
        self.directives.log_enabled(level, self.config.log_level)
    }

    /// Records a log record outside any thread, with `fields` as attributes (unless
    /// [`log_enabled`](Self::log_enabled) says no).
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, AttrValue)]) {
        if !self.log_enabled(level) {
            return;
        }
        let mut event = Event::new(
            Symbol::intern("log"),
            EventBody::Log(LogRecord {
                level,
                target: Symbol::intern("mission"),
                message: Text::new(message),
            }),
        );
        event.tenant = self.tenant;
        for (k, v) in fields {
            event.attributes.set(Symbol::intern(k), v.clone());
        }
        self.recorder.record(event);
    }

    /// Records a permission decision: `actor` asked to do `action` to `resource`; `rule` decided.
    pub fn permission(
        &self,
        actor: &str,
        action: &str,
        resource: &str,
        decision: Decision,
        rule: &str,
    ) {
        let mut event = Event::new(
            Symbol::intern(action),
            EventBody::Permission(PermissionDecision {
                actor: Text::new(actor),
                action: Symbol::intern(action),
                resource: Text::new(resource),
                decision,
                policy: Symbol::intern(rule),
            }),
        );
        event.tenant = self.tenant;
        self.recorder.record(event);
    }

    /// Scores a thread by its id, from anywhere — another process, after the thread ended.
    /// Needs only the pipeline, not the live thread. The score's agent is this instance's
    /// service name; [`Agent::score_thread`](crate::Agent::score_thread) names another.
    ///
    /// ```
    /// use mission_sdk::{MissionControl, Score, ThreadId};
    /// let control = MissionControl::builder().without_store().ignore_environment().build()?;
    /// let id: ThreadId = "4bf92f3577b34da6a3ce929d0e0e4736".parse()?;
    /// control.score_thread(id, "thumbs", Score::new(1.0)?.with_comment("solved it"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Score`](crate::Error::Score) for an empty name.
    pub fn score_thread(&self, thread_id: ThreadId, name: &str, score: Score) -> Result<bool> {
        self.agent(&self.config.service_name).score_thread(thread_id, name, score)
    }

    /// Subscribes to events as they are drained; keeps at most `capacity` undelivered.
    pub fn subscribe(&self, filter: EventFilter, capacity: usize) -> Subscription {
        self.hub.subscribe(filter, capacity)
    }

    /// Spans open longer than the in-flight threshold now, oldest first.
    pub fn in_flight(&self) -> Vec<InFlightSpan> {
        let now = mission_core::Timestamp::now();
        self.in_flight
            .overdue(self.config.in_flight_after, now)
            .iter()
            .map(|o| describe(o, now))
            .collect()
    }

    /// The live threads of this instance: their tree, states and budgets. Share it with
    /// whoever controls threads from outside the agent's code (a directive's action, a server):
    /// [`ThreadRegistry::control`](mission_govern::threads::ThreadRegistry::control) pauses,
    /// resumes or cancels a thread by tenant and id.
    pub fn threads(&self) -> &Arc<mission_govern::threads::ThreadRegistry> {
        &self.threads
    }

    /// Pauses, resumes or cancels the live thread `thread_id` of this instance's tenant, as
    /// `by` (`operator:<name>`, `directive:<name>`) for `reason`; recorded in the thread and
    /// appended to the audit trail.
    ///
    /// # Errors
    /// [`ControlError`](mission_govern::threads::ControlError) for a thread that is not
    /// running here, or a command its state refuses (resuming a cancelled thread).
    pub fn control_thread(
        &self,
        thread_id: ThreadId,
        command: mission_govern::threads::ThreadCommand,
        by: &str,
        reason: &str,
    ) -> std::result::Result<
        mission_govern::threads::ThreadState,
        mission_govern::threads::ControlError,
    > {
        self.threads.control(self.tenant.as_str(), thread_id, command, by, reason)
    }

    /// The budget the compliance packs in force put every thread of this tenant under (it
    /// narrows a budget given in code or by the configuration), if any.
    pub fn pack_budget(&self) -> Option<mission_govern::threads::Budget> {
        self.pack_budget
    }

    /// Control events (budgets exceeded, state changes) the audit trail refused to append.
    pub fn control_audit_failures(&self) -> u64 {
        self.control_audit_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many spans are open, overdue (as of the watchdog's last look) and untracked.
    pub fn in_flight_report(&self) -> InFlightReport {
        self.in_flight.report(self.watchdog.overdue.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The OTLP exporter's counters, when export is on.
    #[cfg(feature = "otlp")]
    pub fn otlp_stats(&self) -> Option<crate::OtlpStats> {
        self.otlp_stats.as_ref().map(|r| r.stats())
    }

    /// A reader of every OTLP signal's counters, usable from any thread and after shutdown,
    /// when export is on.
    #[cfg(feature = "otlp")]
    pub fn otlp_stats_reader(&self) -> Option<crate::OtlpStatsReader> {
        self.otlp_stats.clone()
    }

    /// What sampling kept and skipped, when it is on.
    pub fn sampling_stats(&self) -> Option<crate::SamplingStats> {
        self.sampling_stats.as_ref().map(|r| r.stats())
    }

    /// What the models have done (streams, points, anomalies, memory, leak estimate); `None`
    /// when they are off.
    #[cfg(feature = "models")]
    pub fn model_stats(&self) -> Option<crate::ModelStats> {
        self.model_stats.as_ref().map(crate::ModelStatsReader::stats)
    }

    /// A reader of the models' counters that outlives this instance (for a final count after
    /// [`shutdown`](Self::shutdown)); `None` when the models are off.
    #[cfg(feature = "models")]
    pub fn model_stats_reader(&self) -> Option<crate::ModelStatsReader> {
        self.model_stats.clone()
    }

    /// The running directives: list, add, remove, enable and disable them, register callbacks,
    /// read breakers (see [`directives`](crate::directives)).
    pub fn directives(&self) -> &crate::Directives {
        &self.directives
    }

    /// The audit trail (`<store>/audit/`), where security-relevant changes are appended in a
    /// hash chain that `mission-ctl audit verify` checks; `None` without a store.
    pub fn audit(&self) -> Option<&crate::AuditLog> {
        self.audit.as_deref()
    }

    /// The compliance packs in force, with their tenants.
    pub fn compliance(&self) -> &[crate::compliance::AppliedPack] {
        &self.compliance
    }

    /// Erases every stored event whose attribute `key` equals `value` (a user id, an e-mail's
    /// redaction token, a session), in `tenant`'s data or every tenant's (`None`) — a data
    /// subject's erasure request. Recorded events are flushed to the store first (not waiting
    /// for export), so everything recorded before the call is covered; the store's files are rewritten without the rows, one file
    /// at a time, atomically. The erasure is appended to the audit trail with `actor`, the key,
    /// the count and the SHA-256 of the value (never the value itself), so the requester can
    /// check it was done. Data already exported over OTLP is outside the store's reach.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an empty key or value, or without a store;
    /// [`Error::Store`](crate::Error::Store) if a file cannot be rewritten (it is then left as
    /// it was; files already rewritten stay rewritten, and the call can be repeated).
    pub fn erase_subject(
        &self,
        actor: &str,
        tenant: Option<&str>,
        key: &str,
        value: &str,
    ) -> Result<crate::ErasureReport> {
        self.flush_for_reads()?;
        Ok(crate::erasure::erase_subject(
            self.config.store_root.as_deref(),
            self.audit.as_deref(),
            actor,
            tenant,
            key,
            value,
        )?)
    }

    /// May `actor` do `action` to `resource`? Decided by the policy (rules as data, see
    /// [`policy`](crate::policy)) and, for `tool.call`, by the directives' circuit breakers (an
    /// open breaker denies, naming its directive). Every decision is recorded as a permission
    /// event (who, what, on what, which rule, allow or deny) — so "what was this agent denied
    /// today, and by which rule?" is a query — and every denial is appended to the audit trail.
    pub fn permit(&self, actor: &str, action: &str, resource: &str) -> crate::PolicyDecision {
        let tenant = self.tenant.as_str();
        let decision = self.decide(tenant, actor, action, resource);
        self.enforcer.record_for_tenant(tenant, actor, action, resource, decision)
    }

    /// The policy's answer, or an open circuit breaker's denial of a tool call; not recorded.
    fn decide(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> crate::PolicyDecision {
        if action == TOOL_CALL
            && let crate::Permit::Deny(denial) = self.directives.permit_for(tenant, resource)
        {
            return crate::PolicyDecision::new(
                false,
                Some(format!("directive:{}", denial.directive)),
                denial.reason,
            );
        }
        self.enforcer.policy().decide(tenant, actor, action, resource)
    }

    /// [`permit`](Self::permit) inside `thread`: the policy and the circuit breakers decide,
    /// and so does the thread's permission lineage — what the thread and every ancestor were
    /// given ([`Agent::thread_with_permissions`](crate::Agent::thread_with_permissions),
    /// [`Thread::child_thread_with_permissions`](crate::Thread::child_thread_with_permissions));
    /// a child holds only the intersection. A request some level does not allow is an
    /// escalation: denied, with [`lineage`](crate::PolicyDecision::lineage) naming the nearest
    /// level that narrowed it and [`escalation`](crate::PolicyDecision::escalation) its
    /// severity. The decision is recorded in the thread (under its root span) with the
    /// `mission.permission.*` lineage attributes, and a denial is appended to the audit trail,
    /// as every decision of `permit` is.
    pub fn permit_in_thread(
        &self,
        thread: &crate::Thread<'_>,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> crate::PolicyDecision {
        let ctx = thread.context();
        let mut decision = self.decide(ctx.tenant.as_str(), actor, action, resource);
        if let Some(escalation) = thread.escalation(action, resource) {
            decision = decision.narrowed(escalation);
        }
        self.enforcer.record_in(&ctx, thread.root_span_id(), actor, action, resource, decision)
    }

    /// [`permit_in_thread`](Self::permit_in_thread) for a thread known by its context, root
    /// span and place in the thread registry (for bindings that keep thread objects of their
    /// own, as the Python package does): the policy, open breakers, then the thread's
    /// permission lineage; recorded in the thread (and audited when denied).
    pub fn permit_in_registered_thread(
        &self,
        ctx: &mission_core::ThreadContext,
        root_span: mission_core::SpanId,
        handle: Option<mission_govern::threads::ThreadHandle>,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> crate::PolicyDecision {
        let mut decision = self.decide(ctx.tenant.as_str(), actor, action, resource);
        if let Some(escalation) =
            handle.and_then(|h| self.threads.check_permission(h, action, resource))
        {
            decision = decision.narrowed(escalation);
        }
        self.enforcer.record_in(ctx, root_span, actor, action, resource, decision)
    }

    /// The policy enforcer (replace the policy at run time with
    /// [`replace_policy`](crate::PolicyEnforcer::replace_policy), audited).
    pub fn policy(&self) -> &crate::PolicyEnforcer {
        &self.enforcer
    }

    /// What redaction did, when it is on: configured, from compliance packs, or omitting
    /// prompt and completion content (on unless every tenant captures content: see
    /// [`with_content_capture`](MissionControlBuilder::with_content_capture)).
    pub fn redaction_stats(&self) -> Option<crate::redact::RedactionStats> {
        self.redaction_stats.as_ref().map(|r| r.stats())
    }

    /// Whether `tool` may be called now by this instance's tenant: denied while a directive's
    /// circuit breaker is open for it in this tenant (with the reason and when to retry), a
    /// single trial once its cool-down passed. Other tenants' breakers do not matter.
    pub fn permit_tool(&self, tool: &str) -> crate::Permit {
        self.directives.permit_for(self.tenant.as_str(), tool)
    }

    /// Rolling statistics right now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Health of the recorder, pipeline and sinks.
    pub fn health(&self) -> Health {
        self.recorder.health()
    }

    /// Everything about this instance's health in one report: recorder and sinks, spans in
    /// flight, OTLP export and sampling counters.
    pub fn health_report(&self) -> HealthReport {
        self.health_sources.report()
    }

    /// The MCP server over this instance: its store, live events and health. Serve it over
    /// stdio with [`mcp::serve`](crate::mcp::serve), or over HTTP with
    /// [`serve_mcp`](Self::serve_mcp). Every call it answers is recorded here as a span of the
    /// agent `mission-mcp`.
    #[cfg(feature = "mcp")]
    pub fn mcp_server(&self) -> crate::mcp::MissionMcp {
        crate::mcp::MissionMcp::live(self.config.store_root.clone(), self.live())
    }

    /// Serves the MCP server over streamable HTTP from this process, on a thread of its own,
    /// until the returned handle is dropped or shut down.
    ///
    /// # Errors
    /// [`Error::Serve`](crate::Error::Serve) if the address is not loopback and no bearer
    /// token is configured or a token is too short; [`Error::Bind`](crate::Error::Bind)
    /// (with the operating system's error) if the address cannot be bound.
    #[cfg(feature = "mcp-http")]
    pub fn serve_mcp(&self, config: crate::McpHttpConfig) -> Result<crate::McpHttpServer> {
        Ok(crate::mcp::http::serve(self.mcp_server(), config)?)
    }

    /// Serves the live dashboard (threads, latency, cost, anomalies and logs in a browser) from
    /// this process, on a thread of its own, until the returned handle is dropped or shut down;
    /// see [`dashboard`](crate::dashboard).
    ///
    /// # Errors
    /// [`Error::Serve`](crate::Error::Serve) if the address is not loopback and no bearer
    /// token is configured or a token is too short; [`Error::Bind`](crate::Error::Bind)
    /// (with the operating system's error) if the address cannot be bound.
    #[cfg(feature = "dashboard")]
    pub fn serve_dashboard(
        &self,
        config: crate::DashboardConfig,
    ) -> Result<crate::DashboardServer> {
        Ok(crate::dashboard::serve_live(self.config.store_root.clone(), self.live(), config)?)
    }

    /// Receives OTLP/HTTP (and, with [`OtlpReceiverConfig::with_grpc_addr`](
    /// crate::OtlpReceiverConfig::with_grpc_addr), OTLP/gRPC) traces, logs and metrics from
    /// other processes (any language, any OpenTelemetry SDK) and records them through this instance's pipeline, as if recorded
    /// here: redaction, sampling, the models, directives, statistics, the live stream and the
    /// store all apply; LLM calls are priced by this instance's price table, and data naming
    /// no tenant is this instance's tenant. Serves on threads of its own until the returned
    /// handle is dropped or shut down; see [`receiver`](crate::receiver).
    ///
    /// ```
    /// use mission_sdk::{MissionControl, OtlpReceiverConfig};
    /// let control = MissionControl::builder().without_store().ignore_environment().build()?;
    /// let receiver = control.serve_otlp(OtlpReceiverConfig::loopback(0))?;
    /// assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));
    /// assert_eq!(receiver.grpc_endpoint(), None); // gRPC only when asked for
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Serve`](crate::Error::Serve) for a setting out of range, a non-loopback
    /// address without tokens or a short token; [`Error::Bind`](crate::Error::Bind) (with the
    /// operating system's error) for an address that cannot be bound.
    #[cfg(feature = "otlp-receiver")]
    pub fn serve_otlp(&self, config: crate::OtlpReceiverConfig) -> Result<crate::OtlpReceiver> {
        let prices = self.prices.clone();
        let target = mission_serve::otlp::OtlpTarget {
            recorder: self.recorder.downgrade(),
            tenant: self.tenant,
            price: Arc::new(move |usage: &mission_core::LlmUsage, cache_creation: u32| {
                prices
                    .find(usage.provider.as_str(), usage.model.as_str())
                    .map(|p| p.cost_with_cache_creation(usage, cache_creation))
            }),
        };
        let receiver = mission_serve::otlp::serve(target, config)?;
        let mut readers = self.health_sources.receivers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() >= MAX_RECEIVERS_IN_HEALTH {
            readers.remove(0);
        }
        readers.push(receiver.stats_reader());
        Ok(receiver)
    }

    /// What the servers read from this instance: its recorder, live events, health,
    /// directives, audit trail and policy.
    #[cfg(any(feature = "mcp", feature = "dashboard"))]
    fn live(&self) -> mission_serve::Live {
        let sources = self.health_sources.clone();
        mission_serve::Live {
            recorder: self.recorder.downgrade(),
            hub: self.hub.clone(),
            tenant: self.tenant,
            health: Arc::new(move |scope| sources.report_json(scope)),
            directives: Some(self.directives.clone()),
            audit: self.audit.clone(),
            policy: Some(self.enforcer.clone()),
            threads: Some(self.threads.clone()),
            artefacts: Some(self.artefacts.clone()),
        }
    }

    /// Waits until everything recorded so far reached every sink (files finalized).
    ///
    /// # Errors
    /// [`Error::Flush`](crate::Error::Flush) if it timed out or a sink failed.
    ///
    /// With the models on, what they derive from those events (anomalies) is delivered too:
    /// the first pass waits for the models to score everything, the second delivers what they
    /// recorded.
    pub fn flush(&self) -> Result<()> {
        self.recorder.flush()?;
        #[cfg(feature = "models")]
        if self.model_stats.is_some() {
            self.recorder.flush()?;
        }
        Ok(())
    }

    /// Waits until everything recorded so far is in the store (files finalized), without
    /// waiting for exporters: what a query needs before it reads, and what the MCP server, the
    /// dashboard and Python's `query` call. An OTLP backend that is slow or holds a request
    /// open never holds it; [`flush`](Self::flush) waits for export too.
    ///
    /// # Errors
    /// [`Error::Flush`](crate::Error::Flush) if it timed out or the store failed.
    pub fn flush_for_reads(&self) -> Result<()> {
        let timeout = self.config.recorder.flush_timeout;
        self.recorder.flush_for_reads(timeout)?;
        #[cfg(feature = "models")]
        if self.model_stats.is_some() {
            self.recorder.flush_for_reads(timeout)?;
        }
        Ok(())
    }

    /// The store, opened for queries (after a [`flush_for_reads`](Self::flush_for_reads) or a
    /// [`flush`](Self::flush) it holds everything recorded so far); `None` when running without
    /// a store.
    ///
    /// # Errors
    /// [`Error::Store`](crate::Error::Store) if the directory cannot be listed.
    pub fn store(&self) -> Option<Result<Store>> {
        self.config.store_root.as_ref().map(|root| Ok(Store::open(root)?))
    }

    /// What the store's uploader has done so far (`None` without
    /// [`with_store_upload`](MissionControlBuilder::with_store_upload)).
    #[cfg(feature = "s3")]
    pub fn upload_stats(&self) -> Option<mission_store::UploadStats> {
        self.uploader.as_ref().map(mission_store::Uploader::stats)
    }

    /// Stops recording, delivers everything recorded and returns the final counts.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> ShutdownReport {
        self.watchdog.stop();
        if let Some(thread) = self.watchdog_thread.take() {
            let _ = thread.join();
            // A clean stop: nothing is in flight any more (guards borrow this instance).
            if let Some(root) = &self.config.store_root {
                let _ = write_atomically(&root.join(IN_FLIGHT_FILE), &[]);
            }
        }
        // What the models derive from the last events is recorded before the recorder closes.
        #[cfg(feature = "models")]
        if self.model_stats.is_some() && self.pipeline.is_some() {
            let _ = self.recorder.flush();
        }
        let report = match self.pipeline.take() {
            Some(p) => p.shutdown(),
            None => ShutdownReport { accounting: self.recorder.accounting(), sinks: Vec::new() },
        };
        // Every file is finalized now: the last ones go up (within the deadline).
        #[cfg(feature = "s3")]
        if let Some(uploader) = self.uploader.take() {
            let _ = uploader.shutdown(UPLOAD_SHUTDOWN_TIMEOUT);
        }
        report
    }
}

/// The most OTLP receivers whose counters the health report shows (the latest started).
#[cfg(feature = "otlp-receiver")]
const MAX_RECEIVERS_IN_HEALTH: usize = 8;

/// Everything [`MissionControl::health_report`] reads, cloneable for servers that report it.
#[derive(Clone)]
struct HealthSources {
    #[cfg(feature = "otlp-receiver")]
    receivers: Arc<std::sync::Mutex<Vec<mission_serve::otlp::OtlpReceiverStatsReader>>>,
    recorder: mission_core::WeakRecorder,
    in_flight: Arc<InFlight>,
    watchdog: Arc<Watchdog>,
    sampling: Option<crate::SamplingStatsReader>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::OtlpStatsReader>,
    #[cfg(feature = "models")]
    models: Option<crate::ModelStatsReader>,
    store_root: Option<PathBuf>,
    directives: crate::Directives,
    stats: mission_core::StatsReader,
}

impl HealthSources {
    /// The report as JSON for a principal of `scope`: all of it for `None`, else only what
    /// [`TenantHealth`] keeps.
    #[cfg_attr(not(any(feature = "mcp", feature = "dashboard")), allow(dead_code))]
    fn report_json(&self, scope: Option<&str>) -> serde_json::Value {
        match scope {
            None => serde_json::to_value(self.report()).unwrap_or_default(),
            Some(tenant) => serde_json::to_value(self.tenant_report(tenant)).unwrap_or_default(),
        }
    }

    fn tenant_report(&self, tenant: &str) -> TenantHealth {
        let report = self.report();
        TenantHealth {
            tenant: tenant.to_owned(),
            healthy: report.healthy,
            sinks: report
                .recorder
                .iter()
                .flat_map(|r| &r.sinks)
                .map(|s| TenantSinkHealth { name: s.name.clone(), state: s.state })
                .collect(),
            in_flight_open: self.in_flight.open_of(tenant),
        }
    }

    fn report(&self) -> HealthReport {
        let recorder = self.recorder.upgrade().map(|r| r.health());
        let in_flight =
            self.in_flight.report(self.watchdog.overdue.load(std::sync::atomic::Ordering::Relaxed));
        #[cfg(feature = "otlp")]
        let otlp = self.otlp.as_ref().map(|r| r.health());
        #[cfg(feature = "otlp")]
        let otlp_ok = otlp.as_ref().is_none_or(|h| h.healthy);
        #[cfg(not(feature = "otlp"))]
        let otlp_ok = true;
        HealthReport {
            healthy: recorder.as_ref().is_some_and(Health::is_healthy) && otlp_ok,
            recorder,
            in_flight,
            #[cfg(feature = "otlp")]
            otlp,
            sampling: self.sampling.as_ref().map(|r| r.stats()),
            #[cfg(feature = "models")]
            models: self.models.as_ref().map(crate::ModelStatsReader::stats),
            store_root: self.store_root.clone(),
            directives: self.directives.stats(),
            stats_overflowed: self.stats.snapshot().overflowed,
            #[cfg(feature = "otlp-receiver")]
            otlp_receivers: self
                .receivers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|r| r.stats())
                .collect(),
        }
    }
}

/// The health of one [`MissionControl`], as [`health_report`](MissionControl::health_report)
/// gives it (and the MCP `health` tool and `mission://health` resource show it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct HealthReport {
    /// Recording, every sink and OTLP export are fine, and nothing was dropped.
    pub healthy: bool,
    /// Recorder, buffers and sinks; `None` once the instance has shut down.
    pub recorder: Option<Health>,
    /// Spans open now and overdue.
    pub in_flight: InFlightReport,
    /// OTLP export counters per signal, when export is on.
    #[cfg(feature = "otlp")]
    pub otlp: Option<crate::OtlpHealth>,
    /// What sampling kept and skipped, when it is on.
    pub sampling: Option<crate::SamplingStats>,
    /// What the models did, when they are on.
    #[cfg(feature = "models")]
    pub models: Option<crate::ModelStats>,
    /// Where the store is, when there is one.
    pub store_root: Option<PathBuf>,
    /// What the directives did: late events (behind their window's watermark, counted and not
    /// added), groups dropped past the bound, firings, deliveries.
    pub directives: crate::directives::DirectiveStats,
    /// Spans the rolling statistics merged under `(other)` past their bound
    /// ([`StatsConfig::max_operations`](mission_core::StatsConfig::max_operations)).
    pub stats_overflowed: u64,
    /// What the OTLP receivers this instance serves did (requests by outcome: malformed,
    /// too large, throttled…), the latest started last.
    #[cfg(feature = "otlp-receiver")]
    pub otlp_receivers: Vec<crate::OtlpReceiverStats>,
}

/// The health a principal scoped to one tenant sees ([`MissionControl::health_report`] is for
/// principals of every tenant): whether recording is healthy and each sink's state, and that
/// tenant's own spans in flight. Process-wide counts (events recorded and dropped, buffer
/// fill, exporter counters), sink error texts (which can quote any tenant's data) and the store
/// path are left out: they are every tenant's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TenantHealth {
    /// The tenant this report is for.
    pub tenant: String,
    /// Recording, every sink and OTLP export are fine, and nothing was dropped.
    pub healthy: bool,
    /// Each sink's name and state, without counts or error messages.
    pub sinks: Vec<TenantSinkHealth>,
    /// Spans of this tenant open now.
    pub in_flight_open: u64,
}

/// One sink in a [`TenantHealth`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TenantSinkHealth {
    /// The sink's name.
    pub name: String,
    /// Its state.
    pub state: mission_core::SinkState,
}

impl Drop for MissionControl {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}
