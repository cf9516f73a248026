//! Spans timed elsewhere (the OpenTelemetry bridge, framework integrations): their attributes
//! are read through the one convention table, [`mission_core::semconv`], so every GenAI
//! convention in wide use lands on the typed fields (model, provider, tokens by kind, agent,
//! tool) and is priced like a native call.

use mission_core::semconv::{self, GenAiFields, Meaning, Value};
use mission_core::{
    AttrValue, EventBody, LazySymbol, SpanEnd, SpanId, SpanKind, Status, Symbol, ThreadContext,
    ThreadId, Timestamp,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::instance::Core;

/// The most attributes kept per bridged span besides the typed fields; past it, the rest are
/// counted in `mission.bridge.attributes_dropped`.
pub(crate) const MAX_BRIDGED_ATTRIBUTES: usize = 32;

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

/// Records one bridged span.
pub(crate) fn record(
    core: &Core,
    span: Bridged<'_>,
    attributes: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let thread_id: ThreadId = id("trace_id", span.trace_id)?;
    let span_id: SpanId = id("span_id", span.span_id)?;
    let parent = span.parent_span_id.map(|p| id::<SpanId>("parent_span_id", p)).transpose()?;
    let mut fields = GenAiFields::default();
    let mut kept: Vec<(String, AttrValue)> = Vec::new();
    let mut dropped = 0_i64;
    let mut operation: Option<String> = None;
    for (k, v) in attributes.into_iter().flat_map(|a| a.iter()) {
        let Ok(key) = k.cast::<PyString>() else { continue };
        let key = key.to_cow()?;
        let (value, attr) = if let Ok(b) = v.cast::<PyBool>() {
            (Some(Value::Bool(b.is_true())), AttrValue::Bool(b.is_true()))
        } else if let Ok(i) = v.cast::<PyInt>() {
            match i.extract::<i64>() {
                Ok(n) => (Some(Value::Int(n)), AttrValue::Int(n)),
                Err(_) => (None, AttrValue::from(i.str()?.to_cow()?.as_ref())),
            }
        } else if let Ok(f) = v.cast::<PyFloat>() {
            (Some(Value::Float(f.value())), AttrValue::Float(f.value()))
        } else if let Ok(s) = v.cast::<PyString>() {
            let s = s.to_cow()?;
            if key == "gen_ai.operation.name" || key == "llm.request.type" {
                operation.get_or_insert_with(|| s.to_string());
            }
            if fields.read(&key, Value::Str(&s)) {
                continue;
            }
            (None, AttrValue::from(s.as_ref()))
        } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            let parts: Vec<String> = v
                .try_iter()?
                .map(|p| p.and_then(|p| p.str().map(|s| s.to_string())))
                .collect::<PyResult<_>>()?;
            (None, AttrValue::from(parts.join(",").as_str()))
        } else {
            continue;
        };
        if let Some(value) = value
            && fields.read(&key, value)
        {
            continue;
        }
        if kept.len() < MAX_BRIDGED_ATTRIBUTES {
            kept.push((key.into_owned(), attr));
        } else {
            dropped += 1;
        }
    }
    let kind = fields.kind().unwrap_or(SpanKind::Custom);
    let mut end = SpanEnd {
        kind,
        duration_ns: span.end_ns.saturating_sub(span.start_ns),
        ..SpanEnd::default()
    };
    if let Some(message) = span.error {
        end.set_error(message);
    } else if span.ok {
        end.status = Status::Ok;
    }
    static CHAT: LazySymbol = LazySymbol::new("chat");
    let name = match kind {
        SpanKind::LlmCall => {
            end.llm = fields.usage();
            if !end.llm.model.is_empty()
                && let Some(cost) =
                    core.cost(&end.llm, fields.cache_creation_input_tokens().unwrap_or(0))
            {
                end.llm.cost_usd = cost;
            }
            operation
                .filter(|op| semconv::kind_of_operation(op) == Some(SpanKind::LlmCall))
                .map_or(CHAT.get(), |op| Symbol::intern(&op))
        }
        SpanKind::ToolCall => {
            fields.tool().map_or_else(|| Symbol::intern(span.name), Symbol::intern)
        }
        _ => Symbol::intern(span.name),
    };
    let agent = fields.agent().or(span.agent).map_or(core.service, Symbol::intern);
    let ctx = ThreadContext { tenant: core.tenant, agent, thread_id };
    let mut event = ctx.event(name, span_id, EventBody::Span(end));
    event.time = Timestamp(span.start_ns);
    if let Some(parent) = parent {
        event.parent_span_id = parent;
    }
    if kind == SpanKind::LlmCall {
        if let Some(model) = fields.response_model() {
            event.attributes.set(Symbol::intern("gen_ai.response.model"), AttrValue::from(model));
        }
        if let Some(n) = fields.cache_creation_input_tokens() {
            event.attributes.set(
                Symbol::intern("gen_ai.usage.cache_creation.input_tokens"),
                AttrValue::Int(i64::from(n)),
            );
        }
    }
    if let Some(tool) = fields.tool().filter(|_| kind == SpanKind::ToolCall) {
        event.attributes.set(Symbol::intern("gen_ai.tool.name"), AttrValue::from(tool));
    }
    for (key, value) in kept {
        event.attributes.set(Symbol::intern(&key), value);
    }
    if dropped > 0 {
        event.attributes.set(Symbol::intern("mission.bridge.attributes_dropped"), dropped);
    }
    core.recorder.record(event);
    Ok(())
}
