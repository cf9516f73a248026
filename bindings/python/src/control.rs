//! `Control`: one embedded Mission Control instance, as Python sees it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mission_core::{Event, EventBody, LogRecord, MetricKind, MetricPoint, Symbol, Text};
use mission_sdk::{McpHttpConfig, MissionConfig, MissionControl};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors;
use crate::instance::Core;
use crate::json::to_python;
use crate::query::{QueryFilters, QueryResult};
use crate::span::{Start, Thread, each_field, level_of};

/// The settings an instance was made with, kept to make it again in a forked child.
#[derive(Clone, Debug, Default)]
struct Settings {
    variables: HashMap<&'static str, String>,
    otlp: Option<OtlpSettings>,
    config_file: Option<PathBuf>,
    /// The redaction key compliance packs use when no redaction file is given.
    redaction_key: Option<String>,
}

/// `otlp_endpoint` and what goes with it.
#[derive(Clone, Debug, Default)]
struct OtlpSettings {
    endpoint: String,
    protocol: String,
    headers: Vec<(String, String)>,
    ca_file: Option<PathBuf>,
}

/// Python argument → the `MISSION_*` variable whose parser checks it.
const ARGUMENTS: [(&str, &str); 21] = [
    ("store", "MISSION_STORE_ROOT"),
    ("use_store", "MISSION_STORE"),
    ("service", "MISSION_SERVICE_NAME"),
    ("tenant", "MISSION_TENANT"),
    ("ring_capacity", "MISSION_RING_CAPACITY"),
    ("backpressure", "MISSION_BACKPRESSURE"),
    ("prices_file", "MISSION_PRICES_FILE"),
    ("models", "MISSION_MODELS"),
    ("directives", "MISSION_DIRECTIVES"),
    ("policy_file", "MISSION_POLICY_FILE"),
    ("redaction_file", "MISSION_REDACTION_FILE"),
    ("log_level", "MISSION_LOG_LEVEL"),
    ("compliance", "MISSION_COMPLIANCE"),
    ("capture_content", "MISSION_CAPTURE_CONTENT"),
    ("otlp_traces", "OTEL_TRACES_EXPORTER"),
    ("otlp_logs", "OTEL_LOGS_EXPORTER"),
    ("otlp_metrics", "OTEL_METRICS_EXPORTER"),
    ("otlp_spill_dir", "MISSION_OTLP_SPILL_DIR"),
    ("otlp_spill_max_bytes", "MISSION_OTLP_SPILL_MAX_BYTES"),
    ("store_upload", "MISSION_STORE_UPLOAD"),
    ("model_baseline", "MISSION_MODEL_BASELINE"),
];

impl Settings {
    fn build(&self) -> PyResult<MissionControl> {
        let from_arguments = MissionConfig::from_env_with(|k| self.variables.get(k).cloned())
            .map_err(|e| match e {
                // Name the Python argument, not the variable its value was parsed as.
                mission_sdk::Error::Config { origin, message } => {
                    let argument = ARGUMENTS
                        .iter()
                        .find(|(_, var)| origin.ends_with(var))
                        .map_or(origin, |(arg, _)| format!("argument {arg}"));
                    errors::ConfigError::new_err(format!("invalid {argument}: {message}"))
                }
                other => errors::sdk(other),
            })?;
        let mut builder =
            MissionControl::builder().with_config(from_arguments).with_flush_on_panic(false);
        if let Some(file) = &self.config_file {
            builder = builder.with_config_file(file);
        }
        if let Some(key) = &self.redaction_key {
            builder = builder.with_redaction_key(key);
        }
        if let Some(otlp) = &self.otlp {
            let mut config = match otlp.protocol.as_str() {
                "http" | "http/protobuf" => mission_sdk::OtlpConfig::http(&otlp.endpoint),
                "grpc" => mission_sdk::OtlpConfig::grpc(&otlp.endpoint),
                other => {
                    return Err(PyValueError::new_err(format!(
                        "otlp_protocol must be \"http\" or \"grpc\", not {other:?}"
                    )));
                }
            };
            config.headers = otlp.headers.clone();
            // Like MISSION_OTLP_ENDPOINT, an endpoint given in code takes its CA from the
            // environment when the call does not name one.
            config.ca_file =
                otlp.ca_file.clone().or_else(mission_sdk::OtlpConfig::ca_file_from_env);
            builder = builder.with_otlp(config);
        }
        builder.build().map_err(|e| match e {
            // Starting reads files only: the policy, redaction, directive, price and
            // configuration files. One that cannot be read is a setting to fix.
            mission_sdk::Error::Io { .. } => errors::ConfigError::new_err(e.to_string()),
            other => errors::sdk(other),
        })
    }
}

/// One embedded Mission Control instance. Make it with `mission_control.init()`.
#[pyclass(frozen, subclass, module = "mission_control._native")]
pub struct Control {
    core: RwLock<Arc<Core>>,
    settings: Settings,
}

impl Control {
    pub(crate) fn core(&self) -> Arc<Core> {
        self.core.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn open_core(&self) -> PyResult<Arc<Core>> {
        let core = self.core();
        if core.is_closed() {
            return Err(errors::shut_down());
        }
        Ok(core)
    }

    /// Decides an approval of this instance's tenant.
    fn decide<'py>(
        &self,
        py: Python<'py>,
        id: u64,
        verdict: mission_sdk::directives::Verdict,
        by: &str,
        note: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let tenant = core.tenant.as_str();
        let approval = py
            .detach(|| core.directives.decide(id, verdict, by, note, Some(tenant)))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_python(py, &approval)
    }
}

/// `TypeError` naming `what` unless `value` is callable.
fn must_be_callable(value: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if value.is_callable() {
        return Ok(());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{what} must be callable, not {}",
        value.get_type().name()?
    )))
}

fn set_fields(event: &mut Event, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    each_field(fields, |key, value| {
        event.attributes.set(Symbol::intern(key), value);
    })
}

#[pymethods]
impl Control {
    /// Starts an instance. Every argument is optional; unset ones come from `MISSION_*`
    /// environment variables, then a configuration file, then the defaults (a store in
    /// `./mission-data`, nothing to run beside it).
    #[new]
    #[pyo3(signature = (*, store=None, use_store=None, service=None, tenant=None, ring_capacity=None, backpressure=None, prices_file=None, config_file=None, otlp_endpoint=None, otlp_protocol=None, otlp_headers=None, otlp_ca_file=None, models=None, directives=None, policy_file=None, redaction_file=None, log_level=None, compliance=None, redaction_key=None, capture_content=None, otlp_traces=None, otlp_logs=None, otlp_metrics=None, otlp_spill_dir=None, otlp_spill_max_bytes=None, store_upload=None, model_baseline=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: Option<PathBuf>,
        use_store: Option<bool>,
        service: Option<String>,
        tenant: Option<String>,
        ring_capacity: Option<u64>,
        backpressure: Option<String>,
        prices_file: Option<PathBuf>,
        config_file: Option<PathBuf>,
        otlp_endpoint: Option<String>,
        otlp_protocol: Option<String>,
        otlp_headers: Option<HashMap<String, String>>,
        otlp_ca_file: Option<PathBuf>,
        models: Option<bool>,
        directives: Option<Vec<String>>,
        policy_file: Option<PathBuf>,
        redaction_file: Option<PathBuf>,
        log_level: Option<String>,
        compliance: Option<Vec<String>>,
        redaction_key: Option<String>,
        capture_content: Option<Vec<String>>,
        otlp_traces: Option<bool>,
        otlp_logs: Option<bool>,
        otlp_metrics: Option<bool>,
        otlp_spill_dir: Option<PathBuf>,
        otlp_spill_max_bytes: Option<u64>,
        store_upload: Option<String>,
        model_baseline: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut variables = HashMap::new();
        let mut put = |key: &'static str, value: Option<String>| {
            if let Some(v) = value {
                variables.insert(key, v);
            }
        };
        put("MISSION_STORE_ROOT", store.as_ref().map(|p| p.display().to_string()));
        put("MISSION_STORE", use_store.map(|on| if on { "on" } else { "off" }.to_owned()));
        put("MISSION_SERVICE_NAME", service);
        put("MISSION_TENANT", tenant);
        put("MISSION_RING_CAPACITY", ring_capacity.map(|n| n.to_string()));
        put("MISSION_BACKPRESSURE", backpressure);
        put("MISSION_PRICES_FILE", prices_file.map(|p| p.display().to_string()));
        put("MISSION_MODELS", models.map(|on| if on { "on" } else { "off" }.to_owned()));
        put("MISSION_DIRECTIVES", directives.map(|d| d.join(",")));
        put("MISSION_POLICY_FILE", policy_file.map(|p| p.display().to_string()));
        put("MISSION_REDACTION_FILE", redaction_file.map(|p| p.display().to_string()));
        put("MISSION_LOG_LEVEL", log_level);
        put("MISSION_COMPLIANCE", compliance.map(|c| c.join(",")));
        put("MISSION_CAPTURE_CONTENT", capture_content.map(|c| c.join(",")));
        // A signal switch is what the standard OTEL_*_EXPORTER variable would say.
        let exporter = |on: Option<bool>| on.map(|on| if on { "otlp" } else { "none" }.to_owned());
        put("OTEL_TRACES_EXPORTER", exporter(otlp_traces));
        put("OTEL_LOGS_EXPORTER", exporter(otlp_logs));
        put("OTEL_METRICS_EXPORTER", exporter(otlp_metrics));
        // The span spill, checked as its MISSION_* variables are.
        put("MISSION_OTLP_SPILL_DIR", otlp_spill_dir.map(|p| p.display().to_string()));
        put("MISSION_OTLP_SPILL_MAX_BYTES", otlp_spill_max_bytes.map(|n| n.to_string()));
        // The store's upload to object storage (`s3://bucket/prefix`).
        put("MISSION_STORE_UPLOAD", store_upload);
        // A learned baseline (`mission-ctl pack import`) new anomaly streams warm-start from.
        put("MISSION_MODEL_BASELINE", model_baseline.map(|p| p.display().to_string()));
        // Code and environment: arguments win, MISSION_* fill the rest.
        for (_, var) in ARGUMENTS {
            if !variables.contains_key(var)
                && let Ok(v) = std::env::var(var)
            {
                variables.insert(var, v);
            }
        }
        if otlp_endpoint.is_none() && (otlp_headers.is_some() || otlp_ca_file.is_some()) {
            return Err(PyValueError::new_err("otlp_headers and otlp_ca_file need otlp_endpoint"));
        }
        let otlp = otlp_endpoint.map(|endpoint| {
            let mut headers: Vec<(String, String)> =
                otlp_headers.unwrap_or_default().into_iter().collect();
            headers.sort();
            OtlpSettings {
                endpoint,
                protocol: otlp_protocol.unwrap_or_else(|| "http".into()),
                headers,
                ca_file: otlp_ca_file,
            }
        });
        let settings = Settings { variables, otlp, config_file, redaction_key };
        let control = py.detach(|| settings.build())?;
        Ok(Self { core: RwLock::new(Core::new(control)), settings })
    }

    /// A new thread (one run or conversation) of `agent` (default: the service name).
    /// `thread_id` resumes a conversation; `traceparent` continues a caller's trace. `budget`
    /// (a `mission_control.Budget` or a dict) limits what it may spend. With `child=True`,
    /// `traceparent` and `baggage` are what a parent thread in another process gave
    /// (`thread.child_handoff()`): the thread is a child of that one, with an id of its own,
    /// spending at most what the parent's budget had left. `permissions` (a list of allow
    /// patterns `action:resource`, or a dict with `allow`, `name`, `severity`, `escalations`)
    /// is what it may do; its children get at most as much (`thread.permit(...)` checks).
    #[pyo3(signature = (agent=None, *, user_id=None, thread_id=None, traceparent=None, budget=None, baggage=None, child=false, permissions=None))]
    #[allow(clippy::too_many_arguments)]
    fn thread(
        &self,
        agent: Option<&str>,
        user_id: Option<&str>,
        thread_id: Option<&str>,
        traceparent: Option<&str>,
        budget: Option<&Bound<'_, PyAny>>,
        baggage: Option<&str>,
        child: bool,
        permissions: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Thread> {
        let core = self.open_core()?;
        let budget = budget.filter(|b| !b.is_none()).map(crate::budget::budget_of).transpose()?;
        let permissions = permissions
            .filter(|p| !p.is_none())
            .map(crate::span::permissions_of)
            .transpose()?
            .map(Arc::new);
        let how =
            Start { agent, user_id, thread_id, traceparent, budget, child, baggage, permissions };
        Thread::start(core, how)
    }

    /// Pauses, resumes or cancels the live thread `thread_id` of this instance's tenant
    /// (`command`: `cancel`, `pause` or `resume`), as `by` (`operator:<name>`), for `reason`;
    /// recorded in the thread and audited. Returns its new state (`running`, `paused`,
    /// `cancelled`). Raises `ValueError` for an unknown command, a thread not running here,
    /// or a command its state refuses (resuming a cancelled thread).
    #[pyo3(signature = (thread_id, command, *, by="operator", reason=""))]
    fn control_thread(
        &self,
        thread_id: &str,
        command: &str,
        by: &str,
        reason: &str,
    ) -> PyResult<&'static str> {
        let id = thread_id
            .parse::<mission_core::ThreadId>()
            .map_err(|e| PyValueError::new_err(format!("thread_id: {e}")))?;
        let command = command
            .parse::<mission_sdk::threads::ThreadCommand>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let state =
            self.open_core()?.with_control(|c| c.control_thread(id, command, by, reason))?;
        state.map(|s| s.as_str()).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Scores a thread by its id, from anywhere — another process, after the thread ended (a
    /// user's feedback, an offline evaluation). `span_id` (16 hex digits) scores one span of
    /// it; `agent` defaults to the service name. See `Span.score` for the other arguments.
    #[pyo3(signature = (thread_id, name, value, *, label=None, comment=None, source="human", span_id=None, agent=None))]
    #[allow(clippy::too_many_arguments)]
    fn score_thread(
        &self,
        thread_id: &str,
        name: &str,
        value: f64,
        label: Option<&str>,
        comment: Option<&str>,
        source: &str,
        span_id: Option<&str>,
        agent: Option<&str>,
    ) -> PyResult<bool> {
        let core = self.open_core()?;
        let thread_id = thread_id
            .parse::<mission_core::ThreadId>()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("thread_id: {e}")))?;
        let span_id = match span_id {
            Some(s) => s
                .parse::<mission_core::SpanId>()
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("span_id: {e}")))?,
            None => mission_core::SpanId::NONE,
        };
        let ctx = mission_core::ThreadContext {
            tenant: core.tenant,
            agent: agent.map_or(core.service, Symbol::intern),
            thread_id,
        };
        let args = crate::score::ScoreArgs { name, value, label, comment, source };
        crate::score::record(&core, &ctx, span_id, &args)
    }

    /// Registers one of the host's own artefacts (a database, a queue, a service) as the node
    /// `kind:name` of the relationship graph (the dashboard's Graph page, the MCP tool
    /// `relationship_graph`), in this instance's tenant or `tenant`, with `attributes` (a dict
    /// of strings) shown beside it. False when the registry is full (counted). ValueError for a
    /// kind that is not 1-32 of a-z, 0-9 and _, or an empty or over-long name or attribute.
    #[pyo3(signature = (kind, name, attributes=None, *, tenant=None))]
    fn register_artefact(
        &self,
        kind: &str,
        name: &str,
        attributes: Option<std::collections::BTreeMap<String, String>>,
        tenant: Option<&str>,
    ) -> PyResult<bool> {
        let core = self.open_core()?;
        let attributes = attributes.unwrap_or_default();
        let pairs: Vec<(&str, &str)> =
            attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let tenant = tenant.map_or(core.tenant, Symbol::intern);
        core.with_control(|c| c.register_artefact_in(tenant.as_str(), kind, name, &pairs))?
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// Registers the relation `source` → `target` (node ids `kind:name`: `agent:billing`,
    /// `datastore:ledger`) labelled `label`, in this instance's tenant or `tenant`. False when
    /// the registry is full (counted). ValueError for an id that is not `kind:name` or an
    /// empty label.
    #[pyo3(signature = (source, target, label, *, tenant=None))]
    fn register_relation(
        &self,
        source: &str,
        target: &str,
        label: &str,
        tenant: Option<&str>,
    ) -> PyResult<bool> {
        let core = self.open_core()?;
        let tenant = tenant.map_or(core.tenant, Symbol::intern);
        core.with_control(|c| c.register_relation_in(tenant.as_str(), source, target, label))?
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// Records a log record outside any thread, with `fields` as attributes.
    #[pyo3(signature = (level, message, **fields))]
    fn log(&self, level: &str, message: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let core = self.open_core()?;
        let level = level_of(level)?;
        if !core.log_enabled(level) {
            return Ok(());
        }
        let mut event = Event::new(
            Symbol::intern("log"),
            EventBody::Log(LogRecord {
                level,
                target: Symbol::intern("python"),
                message: Text::new(message),
            }),
        );
        event.tenant = core.tenant;
        event.agent = core.service;
        set_fields(&mut event, fields)?;
        core.recorder.record(event);
        Ok(())
    }

    /// May `actor` do `action` to `resource`? Decided by the policy and, for `tool.call`, the
    /// directives' circuit breakers; recorded as a permission event, denials audited. Returns
    /// a dict: `allowed`, `rule`, `reason`.
    fn permit<'py>(
        &self,
        py: Python<'py>,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let decision = self.open_core()?.with_control(|c| c.permit(actor, action, resource))?;
        to_python(py, &decision)
    }

    /// Erases every stored event whose attribute `key` equals `value` (a data subject's
    /// erasure request), in `tenant`'s data or every tenant's, after flushing; appended to the
    /// audit trail as `actor` with the SHA-256 of the value. Returns a dict: `tenant`, `key`,
    /// `value_sha256`, `events`, `audit_seq`.
    #[pyo3(signature = (actor, key, value, *, tenant=None))]
    fn erase_subject<'py>(
        &self,
        py: Python<'py>,
        actor: &str,
        key: &str,
        value: &str,
        tenant: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let report =
            py.detach(|| core.with_control(|c| c.erase_subject(actor, tenant, key, value)))?;
        let report = report.map_err(errors::sdk)?;
        to_python(py, &report)
    }

    /// The compliance packs in force: a list of dicts (`pack` with name, description,
    /// references, retention, redaction, audit; `tenant` or None for every tenant).
    fn compliance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let packs = self.open_core()?.with_control(|c| c.compliance().to_vec())?;
        to_python(py, &packs)
    }

    /// The directives and their state (a list of dicts: name, condition, enabled, firing).
    fn directives<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = self.open_core()?.with_control(|c| c.directives().list())?;
        to_python(py, &list)
    }

    /// Registers `callback` under `name` (replacing one of that name): directives with
    /// `{ action = "callback", name = "<name>" }` call it with a dict describing the firing
    /// or the resolve. It runs on a thread of its own, never on the recording path; an
    /// exception it raises is caught and counted (`directive_stats()`).
    fn register_callback(&self, name: &str, callback: Bound<'_, PyAny>) -> PyResult<()> {
        must_be_callable(&callback, "callback")?;
        let core = self.open_core()?;
        let queue = core
            .callbacks
            .register(name, callback.unbind())
            .map_err(|e| errors::InternalError::new_err(format!("cannot start a thread: {e}")))?;
        core.directives.register_callback(name, queue);
        Ok(())
    }

    /// Removes the callback registered under `name`; returns whether there was one.
    fn unregister_callback(&self, name: &str) -> PyResult<bool> {
        let core = self.open_core()?;
        let known = core.callbacks.unregister(name);
        Ok(core.directives.unregister_callback(name) || known)
    }

    /// Acknowledges a firing incident: `incident` is its dedup key (from `directives()`), or a
    /// directive's name for all its firing incidents. Records an alert event with state
    /// `acknowledged` (no webhook or callback is called again); returns the alerts recorded
    /// (a list of dicts; empty if they were acknowledged already). `verdict` (`true_positive`
    /// or `false_positive`) grades the anomaly detector that fired it and is kept with the
    /// incident. Raises `ValueError` when nothing by that name fires, or for another verdict.
    #[pyo3(signature = (incident, actor, note="", *, verdict=None))]
    fn acknowledge<'py>(
        &self,
        py: Python<'py>,
        incident: &str,
        actor: &str,
        note: &str,
        verdict: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let verdict = verdict
            .map(str::parse::<mission_sdk::directives::AckVerdict>)
            .transpose()
            .map_err(PyValueError::new_err)?;
        let alerts = py
            .detach(|| core.directives.acknowledge_with(incident, actor, note, None, verdict))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let list = pyo3::types::PyList::empty(py);
        for alert in &alerts {
            list.append(crate::callbacks::alert_dict(py, alert)?)?;
        }
        Ok(list.into_any())
    }

    /// Registers a Python remedy under `name`: directives with `{ action = "fallback", name =
    /// "<name>" }` or `{ action = "reset_connection", name = "<name>" }` call
    /// `remedy(request)` — a dict: action, name, target (the failing operation), tenant,
    /// attempt, run_id, action_index, alert — on a thread of its own (a queue of 64; a full
    /// queue fails the attempt), through the runaway guard and after approval when the
    /// directive asks. It returns `None` or `True` when it acted, `False` or a reason (a
    /// string) when it could not; an exception is a failure with its text. The outcome goes
    /// into the directive's run (`directive_runs()`).
    fn register_remedy(&self, name: &str, remedy: Bound<'_, PyAny>) -> PyResult<()> {
        must_be_callable(&remedy, "remedy")?;
        let function = remedy.unbind();
        let core = self.open_core()?;
        let directives = core.directives.clone();
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<mission_sdk::directives::RemedyRequest>(64);
        std::thread::Builder::new()
            .name("mission-remedy".into())
            .spawn(move || {
                for request in receiver {
                    let result = Python::attach(|py| {
                        let arg = to_python(py, &request).map_err(|e| e.to_string())?;
                        match function.bind(py).call1((arg,)) {
                            Ok(answer) if answer.is_none() => Ok(()),
                            Ok(answer) => match answer.extract::<bool>() {
                                Ok(true) => Ok(()),
                                Ok(false) => Err("the remedy returned False".to_owned()),
                                Err(_) => match answer.extract::<String>() {
                                    Ok(reason) => Err(reason),
                                    Err(_) => Ok(()),
                                },
                            },
                            Err(e) => Err(format!("the remedy raised {e}")),
                        }
                    });
                    directives.report_remedy(request.run_id, request.action_index, result);
                }
                Python::attach(|_| drop(function));
            })
            .map_err(|e| errors::InternalError::new_err(format!("cannot start a thread: {e}")))?;
        core.directives.register_remedy(name, move |request| {
            match sender.try_send(request.clone()) {
                Ok(()) => mission_sdk::directives::RemedyOutcome::Later,
                Err(_) => mission_sdk::directives::RemedyOutcome::Failed(
                    "the Python remedy's queue is full".into(),
                ),
            }
        });
        Ok(())
    }

    /// Incidents of this instance's tenant in memory — open ones, then the latest closed,
    /// newest first (a list of dicts: id, cause, state, opened, updated, closed, members,
    /// resolution, narrative). Anomalies, directive firings, acknowledgements and remedies on
    /// one cause are one incident.
    fn incidents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        to_python(py, &core.directives.incidents_for(Some(core.tenant.as_str())))
    }

    /// Registers the host's incident analyser: `analyser(request)` is called on a worker
    /// thread with a dict `{"incident": {...}, "context": {...}}` (the context pack
    /// `explain_anomaly` gives for the incident's first anomaly) for each new incident, and the
    /// string it returns (or `None`) is kept with the incident as its narrative. An exception
    /// is caught and counted (`analyser_stats()`).
    fn register_analyser(&self, analyser: Bound<'_, PyAny>) -> PyResult<()> {
        must_be_callable(&analyser, "analyser")?;
        let function = analyser.unbind();
        let core = self.open_core()?;
        core.with_control(|c| {
            c.register_analyser(move |request| {
                Python::attach(|py| {
                    let value = serde_json::json!({
                        "incident": request.incident,
                        "context": request.context,
                    });
                    let arg = to_python(py, &value).ok()?;
                    match function.bind(py).call1((arg,)) {
                        Ok(answer) if answer.is_none() => None,
                        Ok(answer) => answer.extract::<String>().ok(),
                        Err(e) => {
                            // Counted as a panic by the worker.
                            std::panic::resume_unwind(Box::new(e.to_string()))
                        }
                    }
                })
            })
        })?
        .map_err(|e| errors::InternalError::new_err(e.to_string()))
    }

    /// What the incident analyser did (a dict: analysed, narrated, dropped, panicked).
    fn analyser_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.open_core()?.with_control(|c| c.analyser_stats())?;
        to_python(py, &stats)
    }

    /// Runs the directive `name` by hand now, as if it fired, in this instance's tenant: its
    /// alerts, callbacks and webhooks run, and its remedies run through the runaway guard (or
    /// wait for approval when the directive asks for one). `thread_id` (32 hex digits) names
    /// the thread its thread actions act on. Returns the run (a dict: id, directive, trigger,
    /// by, outcome, actions, approval). Raises `ValueError` for an unknown or disabled
    /// directive, or a bad thread id.
    #[pyo3(signature = (name, *, by="python", thread_id=None))]
    fn run_directive<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        by: &str,
        thread_id: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let thread = thread_id
            .map(|id| {
                id.parse::<mission_core::ThreadId>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "thread_id must be 32 hex digits, not {:?}",
                        id.chars().take(64).collect::<String>()
                    ))
                })
            })
            .transpose()?;
        let core = self.open_core()?;
        let tenant = core.tenant.as_str();
        let run = py
            .detach(|| core.directives.run(name, by, Some(tenant), thread))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_python(py, &run)
    }

    /// The directives' latest runs in this instance's tenant, newest first (a list of dicts:
    /// id, directive, trigger — event, schedule, manual or retry —, by, outcome and each
    /// action with its target and outcome); only `directive`'s when given; at most `limit`.
    #[pyo3(signature = (*, directive=None, limit=50))]
    fn directive_runs<'py>(
        &self,
        py: Python<'py>,
        directive: Option<&str>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let runs = core.directives.runs_for(Some(core.tenant.as_str()), directive, limit);
        to_python(py, &runs)
    }

    /// Remedies directives proposed and hold for a person, pending first then the latest
    /// decided, in this instance's tenant (a list of dicts: id, directive, actions, reason,
    /// confidence, created, deadline, state, decided_by, note, thread_id).
    fn approvals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let mut list = core.directives.approvals_for(Some(core.tenant.as_str()));
        list.sort_by_key(|a| a.state != mission_sdk::directives::ApprovalState::Pending);
        to_python(py, &list)
    }

    /// Approves the pending approval `approval_id`: its remedies run now (through the runaway
    /// guard). `by` and `note` are recorded and audited. Returns the approval as decided.
    /// Raises `ValueError` if there is no such approval in this tenant, or it was decided or
    /// expired already.
    #[pyo3(signature = (approval_id, *, by="python", note=""))]
    fn approve<'py>(
        &self,
        py: Python<'py>,
        approval_id: u64,
        by: &str,
        note: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.decide(py, approval_id, mission_sdk::directives::Verdict::Approve, by, note)
    }

    /// Rejects the pending approval `approval_id`: its remedies never run. As `approve`.
    #[pyo3(signature = (approval_id, *, by="python", note=""))]
    fn reject<'py>(
        &self,
        py: Python<'py>,
        approval_id: u64,
        by: &str,
        note: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.decide(py, approval_id, mission_sdk::directives::Verdict::Reject, by, note)
    }

    /// What the directives did (firings, resolves, acknowledgements, webhooks, callbacks) and,
    /// under `python_callbacks`, what the Python callbacks did (run, failed, dropped,
    /// last_error). A dict.
    fn directive_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core();
        let mut value = serde_json::to_value(core.directives.stats())
            .map_err(|e| errors::InternalError::new_err(e.to_string()))?;
        value["python_callbacks"] = serde_json::to_value(core.callbacks.stats())
            .map_err(|e| errors::InternalError::new_err(e.to_string()))?;
        to_python(py, &value)
    }

    /// Records a counter metric: `name` went up by `value` (default 1).
    #[pyo3(signature = (name, value=1.0))]
    fn record(&self, name: &str, value: f64) -> PyResult<()> {
        let core = self.core();
        if core.is_closed() {
            return Err(errors::shut_down());
        }
        if !value.is_finite() {
            return Err(PyValueError::new_err(format!(
                "value must be a finite number, not {value}"
            )));
        }
        let mut event = Event::new(
            Symbol::intern(name),
            EventBody::Metric(MetricPoint {
                kind: MetricKind::Counter,
                value,
                unit: Symbol::EMPTY,
            }),
        );
        event.tenant = core.tenant;
        event.agent = core.service;
        core.recorder.record(event);
        Ok(())
    }

    /// Waits until everything recorded so far is stored and exported, the Python callbacks
    /// of the directives it fired have run, and the Python sinks were handed it (default
    /// timeout 10 s).
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let core = self.open_core()?;
        let timeout = seconds("timeout", timeout.unwrap_or(10.0))?;
        py.detach(|| {
            let started = std::time::Instant::now();
            core.recorder.flush_timeout(timeout)?;
            let left = timeout.saturating_sub(started.elapsed());
            let callbacks = core.callbacks.wait_idle(left);
            let left = timeout.saturating_sub(started.elapsed());
            if callbacks && core.sinks.wait_idle(left) {
                Ok(())
            } else {
                Err(mission_core::FlushError::Timeout(timeout))
            }
        })
        .map_err(|e| errors::FlushError::new_err(e.to_string()))
    }

    /// Rolling statistics: per-operation latency, tokens, cost, errors (a dict).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let snapshot = self.open_core()?.with_control(|c| c.stats())?;
        to_python(py, &snapshot)
    }

    /// Health: exact event accounting, drops by reason, buffers, sinks, exporter (a dict);
    /// under `python_sinks`, what each sink added with `add_sink` did (batches, delivered,
    /// failed_batches, failed_events, dropped, queued, last_error).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.open_core()?;
        let report = core.with_control(|c| c.health_report())?;
        let mut value = serde_json::to_value(report)
            .map_err(|e| errors::InternalError::new_err(e.to_string()))?;
        if let Some(object) = value.as_object_mut() {
            let sinks = serde_json::to_value(core.sinks.stats())
                .map_err(|e| errors::InternalError::new_err(e.to_string()))?;
            object.insert("python_sinks".into(), sinks);
        }
        to_python(py, &value)
    }

    /// Events matching the filters, as an Arrow stream (`mission_control.Control.query` turns
    /// it into a `pyarrow.Table`). Flushes to the store first, so what was just recorded is
    /// included, without waiting for export.
    #[pyo3(signature = (*, thread_id=None, agent=None, kind=None, name=None, status=None, tenant=None, since_ns=None, until_ns=None, columns=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn _query_stream(
        &self,
        py: Python<'_>,
        thread_id: Option<String>,
        agent: Option<String>,
        kind: Option<String>,
        name: Option<String>,
        status: Option<String>,
        tenant: Option<String>,
        since_ns: Option<u64>,
        until_ns: Option<u64>,
        columns: Option<Vec<String>>,
        limit: Option<u64>,
    ) -> PyResult<QueryResult> {
        let core = self.open_core()?;
        let Some(root) = core.store_root.clone() else {
            return Err(errors::StoreError::new_err(
                "this instance keeps no store (use_store=False)",
            ));
        };
        let filters = QueryFilters {
            thread_id,
            agent,
            kind,
            name,
            status,
            tenant,
            since_ns,
            until_ns,
            columns,
            limit,
        };
        py.detach(|| {
            // Only what the store needs: a query never waits on an export backend.
            let _ = core.recorder.flush_for_reads(Duration::from_secs(10));
            QueryResult::run(&root, &filters)
        })
    }

    /// Read-only SQL over the store (Apache DataFusion), as an Arrow stream
    /// (`mission_control.Control.sql` turns it into a `pyarrow.Table`). Flushes to the store
    /// first, without waiting for export.
    #[pyo3(signature = (query, *, tenant=None, max_rows=10_000, timeout_s=60.0, store=None))]
    fn _sql_stream(
        &self,
        py: Python<'_>,
        query: String,
        tenant: Option<String>,
        max_rows: usize,
        timeout_s: f64,
        store: Option<String>,
    ) -> PyResult<QueryResult> {
        let core = self.open_core()?;
        // Another store (a bucket this instance uploads to, say) instead of this instance's.
        let other = store.map(PathBuf::from);
        let Some(root) = other.clone().or_else(|| core.store_root.clone()) else {
            return Err(errors::StoreError::new_err(
                "this instance keeps no store (use_store=False)",
            ));
        };
        if !timeout_s.is_finite() || !(0.001..=3600.0).contains(&timeout_s) {
            return Err(PyValueError::new_err(format!(
                "timeout must be 0.001 to 3600 seconds, not {timeout_s}"
            )));
        }
        let limits = mission_store::sql::SqlLimits::default()
            .with_max_rows(max_rows)
            .and_then(|l| l.with_timeout(Duration::from_secs_f64(timeout_s)))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.detach(|| {
            if other.is_none() {
                let _ = core.recorder.flush_for_reads(Duration::from_secs(10));
            }
            QueryResult::sql(&root, &query, tenant.as_deref(), limits)
        })
    }

    /// Serves the MCP server over streamable HTTP from this process; returns its URL. `tokens`
    /// are `(token, tenant or None)` pairs; a non-loopback `host` needs at least one.
    #[pyo3(signature = (host="127.0.0.1", port=0, tokens=None))]
    fn serve_mcp(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        tokens: Option<Vec<(String, Option<String>)>>,
    ) -> PyResult<String> {
        let core = self.open_core()?;
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            PyValueError::new_err(format!("host must be an IP address, not {host:?}"))
        })?;
        let mut config = McpHttpConfig::new(std::net::SocketAddr::new(ip, port));
        for (token, tenant) in tokens.unwrap_or_default() {
            config = match tenant {
                Some(t) => config.with_tenant_token(&token, &t),
                None => config.with_token(&token),
            };
        }
        let server =
            py.detach(|| core.with_control(|c| c.serve_mcp(config)))?.map_err(errors::sdk)?;
        let url = server.url();
        *core.mcp.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
        Ok(url)
    }

    /// A live subscription (the Python `control.subscribe` wraps it): events as the pipeline
    /// drains them, filtered by kind (a name or a list), agent, thread and tenant; at most
    /// `capacity` kept waiting, older ones dropped and counted in `lagged`.
    #[pyo3(signature = (*, kind=None, agent=None, thread_id=None, tenant=None, capacity=None))]
    fn _subscribe(
        &self,
        kind: Option<&Bound<'_, PyAny>>,
        agent: Option<String>,
        thread_id: Option<String>,
        tenant: Option<String>,
        capacity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<crate::live::Subscription> {
        let capacity = match capacity {
            Some(c) if !c.is_none() => {
                crate::live::int_in("capacity", c, 1, crate::live::MAX_CAPACITY as u64)? as usize
            }
            _ => crate::live::DEFAULT_CAPACITY,
        };
        let filter = crate::live::filter(kind, agent, thread_id, tenant)?;
        let core = self.open_core()?;
        let sub = core.with_control(|c| c.subscribe(filter, capacity))?;
        Ok(crate::live::Subscription::new(sub))
    }

    /// Adds a Python sink (the Python `control.add_sink` wraps it): `write` is called with a
    /// list of event dicts on a worker thread, `close` (if given) once when the sink stops.
    #[pyo3(signature = (write, close=None, *, name, kind=None, agent=None, thread_id=None, tenant=None, batch_size, max_queue, max_delay))]
    #[allow(clippy::too_many_arguments)]
    fn _add_sink(
        &self,
        write: Bound<'_, PyAny>,
        close: Option<Bound<'_, PyAny>>,
        name: &str,
        kind: Option<&Bound<'_, PyAny>>,
        agent: Option<String>,
        thread_id: Option<String>,
        tenant: Option<String>,
        batch_size: &Bound<'_, PyAny>,
        max_queue: &Bound<'_, PyAny>,
        max_delay: &Bound<'_, PyAny>,
    ) -> PyResult<crate::sink::SinkHandle> {
        use crate::sink::{MAX_BATCH, MAX_DELAY_S, MAX_QUEUE};
        if !write.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "sink must be callable or have a write(batch) method, not {}",
                write.get_type().name()?
            )));
        }
        let batching = crate::sink::Batching {
            batch_size: crate::live::int_in("batch_size", batch_size, 1, MAX_BATCH)? as usize,
            max_queue: crate::live::int_in("max_queue", max_queue, 1, MAX_QUEUE)? as usize,
            max_delay: crate::live::seconds_in("max_delay", max_delay, MAX_DELAY_S)?,
        };
        if name.trim().is_empty() {
            return Err(PyValueError::new_err("name must not be empty"));
        }
        let filter = crate::live::filter(kind, agent, thread_id, tenant)?;
        let core = self.open_core()?;
        let (sink, handle) = core
            .sinks
            .add(name, write.unbind(), close.map(Bound::unbind), filter, batching)
            .map_err(errors::ConfigError::new_err)?;
        let added = core.with_control(|c| c.recorder().add_sink(Box::new(sink)))?;
        if added.is_err() {
            // The pipeline has stopped: the instance is shutting down.
            handle.stop_now();
            return Err(errors::shut_down());
        }
        Ok(handle)
    }

    /// Serves the live dashboard from this process (the Python `control.serve_dashboard`
    /// wraps it); returns the running server. `tokens` are `(token, tenant or None)` pairs.
    #[pyo3(signature = (host="127.0.0.1", port=None, tokens=None, allowed_hosts=None))]
    fn _serve_dashboard(
        &self,
        py: Python<'_>,
        host: &str,
        port: Option<&Bound<'_, PyAny>>,
        tokens: Option<Vec<(String, Option<String>)>>,
        allowed_hosts: Option<Vec<String>>,
    ) -> PyResult<crate::dashboard::Dashboard> {
        let config = mission_sdk::DashboardConfig::new(socket_addr(host, port)?);
        let config = crate::servers::with_access(config, tokens, allowed_hosts);
        let core = self.open_core()?;
        let server =
            py.detach(|| core.with_control(|c| c.serve_dashboard(config)))?.map_err(errors::sdk)?;
        let addr = server.local_addr();
        let slot = crate::servers::keep(&core.dashboards, server);
        Ok(crate::dashboard::Dashboard { slot, addr })
    }

    /// Serves OTLP/HTTP (traces, logs, metrics; protobuf or JSON; gzip) into this instance,
    /// and OTLP/gRPC on `grpc_port` of the same host when it is given (the Python
    /// `control.serve_otlp` wraps it); returns the running receiver. `tokens` are
    /// `(token, tenant or None)` pairs.
    #[pyo3(signature = (host="127.0.0.1", port=None, tokens=None, allowed_hosts=None, max_body_bytes=None, queue_capacity=None, grpc_port=None, max_in_flight=None))]
    #[allow(clippy::too_many_arguments)]
    fn _serve_otlp(
        &self,
        py: Python<'_>,
        host: &str,
        port: Option<&Bound<'_, PyAny>>,
        tokens: Option<Vec<(String, Option<String>)>>,
        allowed_hosts: Option<Vec<String>>,
        max_body_bytes: Option<&Bound<'_, PyAny>>,
        queue_capacity: Option<&Bound<'_, PyAny>>,
        grpc_port: Option<&Bound<'_, PyAny>>,
        max_in_flight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<crate::receiver::OtlpReceiver> {
        use mission_sdk::receiver::{
            MAX_BODY_BYTES_RANGE, MAX_IN_FLIGHT_RANGE, QUEUE_CAPACITY_RANGE,
        };
        let addr = socket_addr(host, port)?;
        let mut config = mission_sdk::OtlpReceiverConfig::new(addr);
        if let Some(grpc) = grpc_port.filter(|p| !p.is_none()) {
            let grpc = crate::live::int_in("grpc_port", grpc, 0, u16::MAX.into())? as u16;
            config = config.with_grpc_addr(std::net::SocketAddr::new(addr.ip(), grpc));
        }
        let mut config = crate::servers::with_access(config, tokens, allowed_hosts);
        let in_range = |name,
                        value: Option<&Bound<'_, PyAny>>,
                        range: &std::ops::RangeInclusive<usize>| {
            value
                .filter(|v| !v.is_none())
                .map(|v| crate::live::int_in(name, v, *range.start() as u64, *range.end() as u64))
                .transpose()
        };
        if let Some(bytes) = in_range("max_body_bytes", max_body_bytes, &MAX_BODY_BYTES_RANGE)? {
            config = config.with_max_body_bytes(bytes as usize);
        }
        if let Some(events) = in_range("queue_capacity", queue_capacity, &QUEUE_CAPACITY_RANGE)? {
            config = config.with_queue_capacity(events as usize);
        }
        if let Some(requests) = in_range("max_in_flight", max_in_flight, &MAX_IN_FLIGHT_RANGE)? {
            config = config.with_max_in_flight(requests as usize);
        }
        let core = self.open_core()?;
        let receiver =
            py.detach(|| core.with_control(|c| c.serve_otlp(config)))?.map_err(errors::sdk)?;
        let (addr, grpc_addr) = (receiver.local_addr(), receiver.grpc_local_addr());
        let stats = receiver.stats_reader();
        let slot = crate::servers::keep(&core.receivers, receiver);
        Ok(crate::receiver::OtlpReceiver { slot, stats, addr, grpc_addr })
    }

    /// Stops recording, delivers everything recorded and returns the final counts (a dict).
    /// Later calls (and calls on its threads) raise `ShutdownError`.
    fn shutdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core();
        core.closed.store(true, Ordering::Release);
        let report = py.detach(|| {
            // Receivers first: what they acknowledged reaches the recorder before it stops.
            let receivers =
                std::mem::take(&mut *core.receivers.lock().unwrap_or_else(|p| p.into_inner()));
            for slot in &receivers {
                crate::receiver::stop(slot);
            }
            if let Some(server) = core.mcp.lock().unwrap_or_else(|p| p.into_inner()).take() {
                server.shutdown();
            }
            let dashboards =
                std::mem::take(&mut *core.dashboards.lock().unwrap_or_else(|p| p.into_inner()));
            for slot in &dashboards {
                crate::dashboard::stop(slot);
            }
            let report = core
                .control
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map(MissionControl::shutdown);
            // The last alerts' callbacks run, then the callback thread stops; the Python sinks
            // get what the pipeline delivered last, then stop.
            core.callbacks.stop(Duration::from_secs(5));
            core.sinks.stop(Duration::from_secs(5));
            report
        });
        match report {
            Some(report) => {
                let models = core.models.as_ref().map(mission_sdk::ModelStatsReader::stats);
                to_python(
                    py,
                    &serde_json::json!({
                        "accounting": report.accounting,
                        "sinks": report.sinks,
                        "models": models,
                        "directives": core.directives.stats(),
                    }),
                )
            }
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Whether `shutdown()` was called.
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.core().is_closed()
    }

    /// The store's root directory, or None.
    #[getter]
    fn store_root(&self) -> Option<String> {
        self.core().store_root.as_ref().map(|p| p.display().to_string())
    }

    /// The service name.
    #[getter]
    fn service(&self) -> &'static str {
        self.core().service.as_str()
    }

    /// The tenant.
    #[getter]
    fn tenant(&self) -> &'static str {
        self.core().tenant.as_str()
    }

    /// Whether prompt and completion content of this instance's tenant is kept
    /// (`capture_content`); otherwise instrumentations need not collect it, it would be
    /// omitted anyway.
    #[getter]
    fn captures_content(&self) -> bool {
        self.core().captures_content
    }

    /// Records a span timed elsewhere (the OpenTelemetry bridge, framework integrations):
    /// times in ns since the Unix epoch, ids as W3C hex. Its kind, model, provider, tokens by
    /// kind, agent and tool are read from `attributes` through the one convention table
    /// (`mission_core::semconv`: OpenTelemetry GenAI old and new, OpenLLMetry, OpenInference,
    /// Logfire, Langfuse), and LLM calls are priced; the other attributes are kept (at most
    /// 32). `agent` is the agent of the nearest ancestor that named one (the span's own wins;
    /// else the service); `ok` marks a span the source reported successful (an `error` wins).
    #[pyo3(signature = (*, trace_id, span_id, parent_span_id, name, start_ns, end_ns, agent=None, error=None, ok=false, attributes=None))]
    #[allow(clippy::too_many_arguments)]
    fn _record_span(
        &self,
        trace_id: &str,
        span_id: &str,
        parent_span_id: Option<&str>,
        name: &str,
        start_ns: u64,
        end_ns: u64,
        agent: Option<&str>,
        error: Option<&str>,
        ok: bool,
        attributes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let core = self.open_core()?;
        let span = crate::bridge::Bridged {
            trace_id,
            span_id,
            parent_span_id,
            name,
            start_ns,
            end_ns,
            agent,
            error,
            ok,
        };
        crate::bridge::record(&core, span, attributes)
    }

    /// Called before `os.fork()`: delivers what is buffered, so neither process loses or
    /// duplicates it.
    fn _before_fork(&self, py: Python<'_>) {
        let core = self.core();
        if !core.is_closed() {
            let _ = py.detach(|| core.recorder.flush_timeout(Duration::from_secs(5)));
        }
    }

    /// Called in the child after `os.fork()`: the parent's pipeline thread does not exist
    /// here, so this process gets an instance of its own (new buffers, new files) and leaves
    /// the inherited one untouched.
    fn _after_fork_in_child(&self, py: Python<'_>) -> PyResult<()> {
        let old = self.core();
        old.abandoned.store(true, Ordering::Release);
        if old.is_closed() {
            return Ok(());
        }
        let control = self.settings.build()?;
        let core = Core::new(control);
        // The parent's callbacks, again, with a callback thread of this process's own.
        for (name, function) in old.callbacks.functions(py) {
            let queue = core.callbacks.register(&name, function).map_err(|e| {
                errors::InternalError::new_err(format!("cannot start a thread: {e}"))
            })?;
            core.directives.register_callback(&name, queue);
        }
        *self.core.write().unwrap_or_else(|p| p.into_inner()) = core;
        Ok(())
    }
}

pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, not {value}"
        ))
    })
}

/// Panics inside Rust, for the test that no panic aborts the interpreter.
#[pyfunction]
pub(crate) fn _panic_for_test() {
    panic!("deliberate panic for a test");
}

/// The address of a server a Python caller asked for: `host` an IP address, `port` an int in
/// 0..=65535 (`None`: 0, a free port).
fn socket_addr(host: &str, port: Option<&Bound<'_, PyAny>>) -> PyResult<std::net::SocketAddr> {
    let port = match port {
        Some(p) if !p.is_none() => crate::live::int_in("port", p, 0, u16::MAX.into())? as u16,
        _ => 0,
    };
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| PyValueError::new_err(format!("host must be an IP address, not {host:?}")))?;
    Ok(std::net::SocketAddr::new(ip, port))
}
