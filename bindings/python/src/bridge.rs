//! Spans timed elsewhere (the OpenTelemetry bridge, framework integrations): their attributes
//! are read through the one convention table, [`mission_core::semconv`], so every GenAI
//! convention in wide use lands on the typed fields (model, provider, tokens by kind, agent,
//! tool) and is priced like a native call.

use mission_core::semconv::{self, ForeignSpan, ForeignValue, Meaning, Value};
use mission_core::{SpanId, Status, Symbol, ThreadId};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::instance::Core;

/// The keys naming an agent, in table order (the bridge tracks open spans' agents with them).
#[pyfunction]
pub(crate) fn _semconv_agent_keys() -> Vec<&'static str> {
    semconv::keys_for(Meaning::AgentName).collect()
}

/// What a bridged span is, apart from its attributes.
pub(crate) struct Bridged<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub parent_span_id: Option<&'a str>,
    pub name: &'a str,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The agent of the nearest ancestor that named one (the span's own name for it wins).
    pub agent: Option<&'a str>,
    pub error: Option<&'a str>,
    pub ok: bool,
}

fn id<T: std::str::FromStr>(name: &str, v: &str) -> PyResult<T>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// An attribute value read from Python, owning what it must (a list joined, a large integer
/// as text).
enum Owned {
    Scalar(Value<'static>),
    Str(String),
    /// Not a scalar the table reads (a list joined with commas, an integer past 64 bits).
    Text(String),
}

/// Records one bridged span: its attributes are read here, and the event is made by the one
/// mapping the OTLP receiver uses too ([`semconv::span_event`]).
pub(crate) fn record(
    core: &Core,
    span: Bridged<'_>,
    attributes: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let thread_id: ThreadId = id("trace_id", span.trace_id)?;
    let span_id: SpanId = id("span_id", span.span_id)?;
    let parent = span.parent_span_id.map(|p| id::<SpanId>("parent_span_id", p)).transpose()?;
    let mut read: Vec<(String, Owned)> = Vec::new();
    for (k, v) in attributes.into_iter().flat_map(|a| a.iter()) {
        let Ok(key) = k.cast::<PyString>() else { continue };
        let key = key.to_cow()?.into_owned();
        let value = if let Ok(b) = v.cast::<PyBool>() {
            Owned::Scalar(Value::Bool(b.is_true()))
        } else if let Ok(i) = v.cast::<PyInt>() {
            match i.extract::<i64>() {
                Ok(n) => Owned::Scalar(Value::Int(n)),
                Err(_) => Owned::Text(i.str()?.to_cow()?.into_owned()),
            }
        } else if let Ok(f) = v.cast::<PyFloat>() {
            Owned::Scalar(Value::Float(f.value()))
        } else if let Ok(s) = v.cast::<PyString>() {
            Owned::Str(s.to_cow()?.into_owned())
        } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            let parts: Vec<String> = v
                .try_iter()?
                .map(|p| p.and_then(|p| p.str().map(|s| s.to_string())))
                .collect::<PyResult<_>>()?;
            Owned::Text(parts.join(","))
        } else {
            continue;
        };
        read.push((key, value));
    }
    let status = match (span.error, span.ok) {
        (Some(_), _) => Status::Error,
        (None, true) => Status::Ok,
        (None, false) => Status::Unset,
    };
    let foreign = ForeignSpan {
        tenant: core.tenant,
        agent: span.agent.map_or(core.service, Symbol::intern),
        thread_id,
        span_id,
        parent_span_id: parent.unwrap_or(SpanId::NONE),
        name: span.name,
        start_ns: span.start_ns,
        end_ns: span.end_ns,
        status,
        error: span.error.unwrap_or(""),
    };
    let values = read.iter().map(|(key, value)| {
        let value = match value {
            Owned::Scalar(v) => ForeignValue::Scalar(*v),
            Owned::Str(s) => ForeignValue::Scalar(Value::Str(s)),
            Owned::Text(t) => ForeignValue::Text(t),
        };
        (key.as_str(), value)
    });
    let event = semconv::span_event(&foreign, values, |usage, cache_creation| {
        core.cost(usage, cache_creation)
    });
    core.recorder.record(event);
    Ok(())
}
