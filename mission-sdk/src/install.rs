//! What [`MissionControlBuilder::build`](crate::MissionControlBuilder::build) does, one
//! component at a time, in the pipeline's order: the settings, then each part (prices,
//! directives, audit trail, compliance packs, redaction, policy), then the sinks (statistics,
//! live hub, directives; the store and OTLP export behind sampling; the models; the user's),
//! the pipeline with redaction in front of every sink, and what watches it (policy enforcer,
//! in-flight watchdog).

use std::path::PathBuf;
use std::sync::Arc;

use mission_core::{Pipeline, Sink};
use mission_govern::audit::AuditLog;
use mission_govern::compliance::{self, AppliedPack};
use mission_govern::directives::{BreakerClock, DirectiveSet, Directives, WebhookTransport};
use mission_govern::policy::{Effect, PolicyEnforcer, PolicySet};
use mission_govern::redact::{RedactingTransform, RedactionConfig, RedactionStatsReader, Redactor};
use mission_store::{ParquetSink, RetentionPolicy, StoreConfig};

use crate::price::PriceTable;
use crate::{Error, MissionConfig, ResolvedConfig, Result};

/// A configuration problem of `origin`.
fn invalid(origin: &str) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Config { origin: origin.into(), message }
}

/// The settings in force: code and file first, then the environment for what they left unset;
/// checked against their ranges.
pub(crate) fn settings(
    code: MissionConfig,
    file: Option<&PathBuf>,
    use_environment: bool,
) -> Result<ResolvedConfig> {
    let env = if use_environment {
        MissionConfig::from_env_with(|k| std::env::var(k).ok())?
    } else {
        MissionConfig::default()
    };
    let mut code = code;
    if let Some(file) = file {
        code = code.or(MissionConfig::from_file(file)?);
    }
    let config = code.resolve(env);
    config.validate().map_err(invalid("configuration"))?;
    Ok(config)
}

/// The price table: code's (checked), else the configured file's, else the built-in one.
pub(crate) fn prices(code: Option<PriceTable>, config: &ResolvedConfig) -> Result<PriceTable> {
    match (code, &config.prices_file) {
        (Some(p), _) => {
            p.validate().map_err(invalid("with_price_table"))?;
            Ok(p)
        }
        (None, Some(file)) => PriceTable::from_file(file),
        (None, None) => Ok(PriceTable::default_prices()),
    }
}

/// The directives of code and of the configured files and presets, with webhooks posted by
/// [`webhook_transport`].
pub(crate) fn directives(code: Vec<DirectiveSet>, config: &ResolvedConfig) -> Result<Directives> {
    let mut set = DirectiveSet::new();
    for code_set in code {
        set.extend(code_set)?;
    }
    for source in &config.directives {
        let text = source.to_string_lossy();
        set.extend(match text.strip_prefix("preset:") {
            Some(name) => DirectiveSet::preset(name)?,
            None => DirectiveSet::from_file(source)?,
        })?;
    }
    Ok(Directives::with_transport(set, BreakerClock::system(), webhook_transport())?)
}

/// What directive webhooks are posted with: HTTP with the `webhooks` feature, else nothing
/// (every delivery fails, counted and recorded, saying so).
fn webhook_transport() -> Arc<dyn WebhookTransport> {
    #[cfg(feature = "webhooks")]
    return mission_export::webhooks::HttpTransport::shared();
    #[cfg(not(feature = "webhooks"))]
    Arc::new(mission_govern::directives::NoTransport)
}

/// The audit trail, beside the store; `None` without a store.
pub(crate) fn audit(config: &ResolvedConfig) -> Result<Option<Arc<AuditLog>>> {
    match &config.store_root {
        Some(root) => Ok(Some(Arc::new(AuditLog::open(root)?))),
        None => Ok(None),
    }
}

/// The compliance packs of code and configuration; they need the audit trail.
pub(crate) fn compliance_packs(
    code: Vec<AppliedPack>,
    config: &ResolvedConfig,
    has_audit: bool,
) -> Result<Vec<AppliedPack>> {
    let mut packs = code;
    for spec in &config.compliance {
        packs.push(AppliedPack::parse(spec)?);
    }
    if !packs.is_empty() && !has_audit {
        return Err(Error::Config {
            origin: "compliance pack".into(),
            message: "compliance packs need the store (their audit trail lives there)".into(),
        });
    }
    Ok(packs)
}

/// Redaction as configured (code, else the configured file), with the compliance packs' rules;
/// with neither, prompt and completion content is still omitted for tenants not capturing it.
pub(crate) fn redaction(
    code: Option<RedactionConfig>,
    key: Option<String>,
    use_environment: bool,
    packs: &[AppliedPack],
    config: &ResolvedConfig,
) -> Result<Option<RedactionConfig>> {
    let redaction = match (code, &config.redaction_file) {
        (Some(r), _) => Some(r),
        (None, Some(file)) => Some(RedactionConfig::from_file(file)?),
        (None, None) => None,
    };
    let key = key
        .or_else(|| use_environment.then(|| std::env::var("MISSION_REDACTION_KEY").ok()).flatten());
    Ok(compliance::apply_redaction(redaction, packs, key, &config.capture_content)?)
}

/// The policy: code's, else the configured file's, else allow everything.
pub(crate) fn policy(code: Option<PolicySet>, config: &ResolvedConfig) -> Result<PolicySet> {
    Ok(match (code, &config.policy_file) {
        (Some(p), _) => p,
        (None, Some(file)) => PolicySet::from_file(file)?,
        (None, None) => PolicySet::with_default(Effect::Allow),
    })
}

/// The Parquet store, when there is one, with the compliance packs' retention; each data file
/// anchors the audit chain's head as it stood when written.
pub(crate) fn store(
    config: &ResolvedConfig,
    packs: &[AppliedPack],
    audit: Option<&Arc<AuditLog>>,
    keeping: &mut Vec<Box<dyn Sink>>,
) -> Result<()> {
    let Some(root) = &config.store_root else { return Ok(()) };
    let mut retention = RetentionPolicy::default().with_default(config.retention);
    compliance::apply_retention(&mut retention, packs);
    let store_config = StoreConfig::at(root)
        .with_retention(retention.default)
        .with_tenant_retention(retention.tenants);
    let mut sink = ParquetSink::new(store_config)?;
    if let Some(audit) = audit {
        let audit = Arc::downgrade(audit);
        sink = sink.with_file_metadata(Arc::new(move || {
            audit
                .upgrade()
                .map(|a| mission_govern::audit::anchor_metadata(&a.head()))
                .unwrap_or_default()
        }));
    }
    keeping.push(Box::new(sink));
    Ok(())
}

/// The store's uploader (`with_store_upload`): it needs the store's directory.
#[cfg(feature = "s3")]
pub(crate) fn uploader(
    root: mission_store::Result<mission_store::RemoteRoot>,
    origin: &str,
    config: &ResolvedConfig,
) -> Result<mission_store::Uploader> {
    let origin = || origin.to_owned();
    let Some(local) = &config.store_root else {
        return Err(crate::Error::Config {
            origin: origin(),
            message: "uploading needs the store (it is turned off)".into(),
        });
    };
    let remote =
        root.map_err(|e| crate::Error::Config { origin: origin(), message: e.to_string() })?;
    mission_store::Uploader::start(mission_store::UploadConfig::new(local, remote))
        .map_err(|e| crate::Error::Config { origin: origin(), message: e.to_string() })
}

/// OTLP export: code's configuration, else an endpoint from the file or
/// `MISSION_OTLP_ENDPOINT`; the signal switches code left unset come from the file, then
/// `OTEL_*_EXPORTER`. Service name and tenant are this instance's.
#[cfg(feature = "otlp")]
pub(crate) fn otlp(
    code: Option<crate::OtlpConfig>,
    use_environment: bool,
    config: &ResolvedConfig,
    keeping: &mut Vec<Box<dyn Sink>>,
) -> Result<Option<crate::OtlpStatsReader>> {
    let settings = &config.otlp;
    let configured = match code {
        Some(otlp) => Some(otlp),
        None => settings.to_otlp_config(use_environment)?,
    };
    let Some(otlp) = configured else { return Ok(None) };
    // Ignoring the environment, a signal nothing decided is on.
    let decide = |code: Option<bool>, file: Option<bool>| {
        code.or(file).or((!use_environment).then_some(true))
    };
    let mut otlp = otlp;
    otlp.service_name.clone_from(&config.service_name);
    otlp.tenant.clone_from(&config.tenant);
    otlp.traces = decide(otlp.traces, settings.traces);
    otlp.logs = decide(otlp.logs, settings.logs);
    otlp.metrics = decide(otlp.metrics, settings.metrics);
    settings.fill_spill(&mut otlp);
    let sink = crate::OtlpSink::new(otlp)?;
    let stats = sink.stats_reader();
    keeping.push(Box::new(sink));
    Ok(Some(stats))
}

/// Sampling in front of the sinks that keep data (`keeping`), when it is on (a firing
/// `set_sampling` directive raises the rate while it fires); else they join `sinks` as they
/// are.
pub(crate) fn sampling(
    code: Option<crate::SamplingConfig>,
    keeping: Vec<Box<dyn Sink>>,
    directives: &Directives,
    sinks: &mut Vec<Box<dyn Sink>>,
) -> Option<crate::SamplingStatsReader> {
    match code {
        Some(sampling) => {
            let sink =
                crate::SamplingSink::new(sampling, keeping).with_directives(directives.clone());
            let stats = sink.stats_reader();
            sinks.push(Box::new(sink));
            Some(stats)
        }
        None => {
            sinks.extend(keeping);
            None
        }
    }
}

/// The anomaly models, when they are on; their state is kept under the store root unless
/// configured elsewhere. A baseline to warm-start from (code's, else the configuration's) is
/// checked here, so a missing or damaged one is an error of `build`.
#[cfg(feature = "models")]
pub(crate) fn models(
    code: Option<crate::ModelConfig>,
    config: &ResolvedConfig,
    sinks: &mut Vec<Box<dyn Sink>>,
) -> Result<Option<crate::ModelStatsReader>> {
    if !config.models {
        return Ok(None);
    }
    let mut models = code.unwrap_or_default();
    if models.state_file.is_none() {
        models.state_file =
            config.store_root.as_ref().map(|r| r.join(crate::control::MODEL_STATE_FILE));
    }
    if models.baseline.is_none() {
        models.baseline.clone_from(&config.model_baseline);
    }
    if let Some(path) = &models.baseline {
        crate::ModelBaseline::read(path).map_err(|e| crate::Error::Config {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let sink = crate::ModelSink::new(models, &config.tenant, &config.service_name);
    let stats = sink.stats_reader();
    sinks.push(Box::new(sink));
    Ok(Some(stats))
}

/// Starts the pipeline: redaction changes each batch before every sink sees it (one added to
/// the pipeline later too), and each sink keeps its own health entry.
pub(crate) fn pipeline(
    config: &ResolvedConfig,
    redaction: Option<RedactionConfig>,
    sinks: Vec<Box<dyn Sink>>,
) -> Result<(Pipeline, Option<RedactionStatsReader>)> {
    let mut builder = Pipeline::builder().with_config(config.recorder.clone());
    let redaction_stats = match redaction {
        Some(redaction) => {
            let transform = RedactingTransform::new(Redactor::new(redaction)?);
            let stats = transform.stats_reader();
            builder = builder.with_transform(transform);
            Some(stats)
        }
        None => None,
    };
    for sink in sinks {
        builder = builder.with_boxed_sink(sink);
    }
    Ok((builder.start()?, redaction_stats))
}

/// The policy enforcer, auditing denials (and, for packs that ask, allowed access) in the
/// trail, which says which compliance packs were in force from when.
pub(crate) fn enforcer(
    policy: PolicySet,
    pipeline: &Pipeline,
    audit: Option<&Arc<AuditLog>>,
    packs: &[AppliedPack],
) -> Result<PolicyEnforcer> {
    let mut enforcer = PolicyEnforcer::new(policy, &pipeline.recorder());
    let Some(audit) = audit else { return Ok(enforcer) };
    enforcer = enforcer.with_audit_log(audit.clone());
    for tenant in compliance::audited_access(packs) {
        enforcer = enforcer.with_audited_access(tenant);
    }
    for applied in packs {
        let pack = &applied.pack;
        let detail = serde_json::json!({
            "pack": pack.name,
            "retention": mission_core::duration_text::format(pack.retention),
            "audit_access": pack.audit.audit_access,
            "redaction": pack.redaction,
            "references": pack.references,
        });
        let tenant = applied.tenant.as_deref().unwrap_or("*");
        audit.append(mission_govern::audit::kind::COMPLIANCE, "mission-control", tenant, detail)?;
    }
    Ok(enforcer)
}
