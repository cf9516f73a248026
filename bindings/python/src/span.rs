//! `Thread` and `Span`: guards that time an operation and record one event when they end.

use std::sync::Arc;

use mission_core::fingerprint;
use mission_core::{
    AttrValue, Decision, Event, EventBody, LazySymbol, Level, LlmUsage, LogRecord,
    PermissionDecision, SpanEnd, SpanId, SpanKind, Status, Symbol, Text, ThreadContext, ThreadId,
    Timestamp,
};
use mission_sdk::threads::{
    Budget, Charge, NewThread, Stop, ThreadCommand, ThreadHandle, ThreadState,
};
use mission_store::USER_ID_ATTRIBUTE;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyType};

use crate::errors;
use crate::instance::Core;

/// A Python value as an attribute value: str, int, float or bool.
pub(crate) fn attr_value(key: &str, value: &Bound<'_, PyAny>) -> PyResult<AttrValue> {
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(AttrValue::Bool(b.is_true()));
    }
    if let Ok(i) = value.cast::<PyInt>() {
        return i
            .extract::<i64>()
            .map(AttrValue::Int)
            .or_else(|_| Ok(AttrValue::from(i.str()?.to_cow()?.as_ref())));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(AttrValue::Float(f.value()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(AttrValue::from(s.to_cow()?.as_ref()));
    }
    Err(PyTypeError::new_err(format!(
        "attribute {key:?} must be str, int, float or bool, not {}",
        value.get_type().name()?
    )))
}

/// A token count argument: an `int` (never a `bool`, which Python counts as one) from 0 to
/// `u32::MAX`; a `TypeError` or `ValueError` naming the argument otherwise.
pub(crate) fn count(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not {}",
            value.get_type().name()?
        )));
    }
    let out_of_range =
        || PyValueError::new_err(format!("{name} must be between 0 and {}, not {value}", u32::MAX));
    let n: i128 = value.extract().map_err(|_| out_of_range())?;
    u32::try_from(n).map_err(|_| out_of_range())
}

/// Each `name=value` of a `**fields` dict as an attribute (names must be str; values str,
/// int, float or bool).
pub(crate) fn each_field(
    fields: Option<&Bound<'_, PyDict>>,
    mut set: impl FnMut(&str, AttrValue),
) -> PyResult<()> {
    for (k, v) in fields.into_iter().flat_map(|f| f.iter()) {
        let key =
            k.cast::<PyString>().map_err(|_| PyTypeError::new_err("field names must be str"))?;
        let key = key.to_cow()?;
        set(&key, attr_value(&key, &v)?);
    }
    Ok(())
}

/// A log level by name, or a `ValueError` naming the argument.
pub(crate) fn level_of(level: &str) -> PyResult<Level> {
    level.parse().map_err(|_| {
        PyValueError::new_err(format!(
            "level must be one of trace, debug, info, warn, error, not {level:?}"
        ))
    })
}

/// A timed operation: an LLM call, a tool call, a step, a retrieval. Records one event when
/// it ends (`end()`, the end of a `with` block, or when it is garbage-collected unended); an
/// exception leaving the `with` block marks it failed with the exception's type and message
/// and is re-raised unchanged.
#[pyclass(module = "mission_control._native")]
pub struct Span {
    core: Arc<Core>,
    ctx: ThreadContext,
    event: Option<Event>,
    span_id: SpanId,
    token: Option<Py<PyAny>>,
    /// Of an LLM call's input tokens, how many were written to the provider's cache (priced
    /// at the cache-creation price; not a typed field of the event, an attribute).
    cache_creation: u32,
    /// The thread's place in the registry: an LLM call charges its budget when it ends, and
    /// calls are refused when the thread must stop.
    thread: Option<ThreadHandle>,
    /// For a thread's root span: whether the thread is a child (its root span then carries
    /// what its subtree used). Ending the root span ends the thread in the registry.
    root_of: Option<RootOf>,
}

/// What a thread's root span knows of its thread.
#[derive(Clone, Copy, Debug)]
struct RootOf {
    child: bool,
}

impl Span {
    fn start(
        core: Arc<Core>,
        ctx: ThreadContext,
        kind: SpanKind,
        name: Symbol,
        parent: SpanId,
        thread: Option<ThreadHandle>,
    ) -> PyResult<Self> {
        if core.is_closed() {
            return Err(errors::shut_down());
        }
        let span_id = SpanId::generate();
        let mut event =
            ctx.event(name, span_id, EventBody::Span(SpanEnd { kind, ..SpanEnd::default() }));
        event.parent_span_id = parent;
        Ok(Self {
            core,
            ctx,
            event: Some(event),
            span_id,
            token: None,
            cache_creation: 0,
            thread,
            root_of: None,
        })
    }

    fn span_mut(&mut self) -> Option<&mut SpanEnd> {
        match self.event.as_mut().map(|e| &mut e.body) {
            Some(EventBody::Span(s)) => Some(s),
            _ => None,
        }
    }

    fn usage_mut(&mut self) -> Option<&mut LlmUsage> {
        self.span_mut().filter(|s| s.kind == SpanKind::LlmCall).map(|s| &mut s.llm)
    }

    fn set(&mut self, key: &str, value: AttrValue) {
        if let Some(event) = self.event.as_mut() {
            event.attributes.set(Symbol::intern(key), value);
        }
    }

    /// Records the event; false if it had ended already. An LLM call charges its thread's
    /// budget (and every ancestor's); a root span ends its thread in the registry, stamped
    /// with its state and what it used (as the Rust SDK's `Thread` does when dropped).
    fn finish(&mut self) -> bool {
        let Some(mut event) = self.event.take() else { return false };
        let end = Timestamp::now();
        if let EventBody::Span(span) = &mut event.body {
            span.duration_ns = end.0.saturating_sub(event.time.0);
            let usage = &mut span.llm;
            if span.kind == SpanKind::LlmCall {
                if usage.cost_usd == 0.0
                    && !usage.model.is_empty()
                    && let Some(cost) = self.core.cost(usage, self.cache_creation)
                {
                    usage.cost_usd = cost;
                }
                if let Some(h) = self.thread {
                    let charge = Charge {
                        turns: 1,
                        tokens: u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
                        cost_usd: usage.cost_usd,
                        context_tokens: u64::from(usage.input_tokens),
                    };
                    self.core.threads.charge(h, charge, end.0);
                }
            }
        }
        if let (Some(root), Some(h)) = (self.root_of, self.thread) {
            end_thread(&self.core, h, root, end.0, &mut event);
        }
        self.core.recorder.record(event);
        true
    }

    /// Records the event and leaves the context the span was entered in (`with`), if any.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.finish();
        if let Some(token) = self.token.take() {
            crate::ctxvar::reset(py, token.bind(py))?;
        }
        Ok(())
    }

    fn child(&self, kind: SpanKind, name: Symbol) -> PyResult<Span> {
        Span::start(self.core.clone(), self.ctx, kind, name, self.span_id, self.thread)
    }

    /// Refuses a new call when the thread must not make one: it (or an ancestor) was
    /// cancelled or is paused (`ThreadStopped`), or a hard budget is used up
    /// (`BudgetExceeded`). A soft budget only tells (`should_stop`).
    fn guard(&self) -> PyResult<()> {
        let Some(h) = self.thread else { return Ok(()) };
        let thread_id = self.ctx.thread_id.to_string();
        let refusal = match self.core.threads.poll(h, Timestamp::now().0) {
            None | Some(Stop::Budget { hard: false, .. }) => return Ok(()),
            Some(Stop::Budget { owner, resource, used, limit, .. }) => {
                mission_sdk::Error::BudgetExceeded {
                    thread_id,
                    owner_id: owner.to_string(),
                    resource: resource.as_str(),
                    used,
                    limit,
                }
            }
            Some(Stop::Cancelled { thread_id: by_thread, by, reason }) => {
                mission_sdk::Error::ThreadStopped {
                    thread_id,
                    reason: format!("thread {by_thread} was cancelled by {by}: {reason}"),
                }
            }
            Some(Stop::Paused { thread_id: by_thread }) => mission_sdk::Error::ThreadStopped {
                thread_id,
                reason: format!("thread {by_thread} is paused"),
            },
        };
        Err(errors::sdk(refusal))
    }
}

/// Ends the thread `h` in the registry and stamps its root span's `event`: its state (with who
/// set it and why) when it is not running, and what it and its children used when it has a
/// budget or a parent.
fn end_thread(core: &Core, h: ThreadHandle, root: RootOf, now_ns: u64, event: &mut Event) {
    use mission_core::thread::attr;
    let Some(done) = core.threads.deregister(h, now_ns) else { return };
    let mut set = |key: &str, value: AttrValue| event.attributes.set(Symbol::intern(key), value);
    if done.state != ThreadState::Running {
        set(attr::STATE, AttrValue::from(done.state.as_str()));
        if let Some((by, reason)) = &done.change {
            set(attr::STATE_BY, AttrValue::from(by.as_str()));
            set(attr::STATE_REASON, AttrValue::from(reason.as_str()));
        }
    }
    if done.budget.is_some() || root.child {
        let int = |n: u64| AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
        set(attr::USED_TURNS, int(done.used.turns));
        set(attr::USED_TOKENS, int(done.used.tokens));
        set(attr::USED_COST_USD, AttrValue::Float(done.used.cost_usd));
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish();
    }
}

fn llm_span(parent: &Span, model: &str, provider: Option<&str>) -> PyResult<Span> {
    static CHAT: LazySymbol = LazySymbol::new("chat");
    parent.guard()?;
    let mut span = parent.child(SpanKind::LlmCall, CHAT.get())?;
    if let Some(usage) = span.usage_mut() {
        usage.model = Symbol::intern(model);
        usage.provider = provider.map_or(Symbol::EMPTY, Symbol::intern);
    }
    Ok(span)
}

fn tool_span(parent: &Span, name: &str, arguments: Option<&Bound<'_, PyAny>>) -> PyResult<Span> {
    parent.guard()?;
    let mut span = parent.child(SpanKind::ToolCall, Symbol::intern(name))?;
    if let Some(arguments) = arguments.filter(|a| !a.is_none()) {
        let py = arguments.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("default", py.eval(c"str", None, None)?)?;
        let text = py.import("json")?.call_method("dumps", (arguments,), Some(&kwargs))?;
        let size = text.len()?;
        span.set("gen_ai.tool.call.arguments.size", AttrValue::Int(size as i64));
        // Their fingerprint (not content: kept with capture off), for loop directives.
        let hash = fingerprint::fingerprint(text.cast::<PyString>()?.to_cow()?.as_bytes());
        span.set(fingerprint::attr::TOOL_ARGS_HASH, AttrValue::string(&fingerprint::hex(hash)));
    }
    Ok(span)
}

fn log_event(
    core: &Core,
    ctx: &ThreadContext,
    span_id: SpanId,
    level: &str,
    message: &str,
    fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    if core.is_closed() {
        return Err(errors::shut_down());
    }
    let level = level_of(level)?;
    if !core.log_enabled(level) {
        return Ok(());
    }
    static LOG: LazySymbol = LazySymbol::new("log");
    static TARGET: LazySymbol = LazySymbol::new("python");
    let mut event = ctx.event(
        LOG.get(),
        span_id,
        EventBody::Log(LogRecord { level, target: TARGET.get(), message: Text::new(message) }),
    );
    each_field(fields, |key, value| {
        event.attributes.set(Symbol::intern(key), value);
    })?;
    core.recorder.record(event);
    Ok(())
}

#[pymethods]
impl Span {
    /// This span's id (16 hex digits).
    #[getter]
    fn span_id(&self) -> String {
        self.span_id.to_string()
    }

    /// The thread's id (32 hex digits).
    #[getter]
    fn thread_id(&self) -> String {
        self.ctx.thread_id.to_string()
    }

    /// The W3C `traceparent` naming this span, for a downstream call.
    #[getter]
    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.ctx.thread_id, self.span_id)
    }

    /// Whether it has ended (and been recorded).
    #[getter]
    fn ended(&self) -> bool {
        self.event.is_none()
    }

    /// Token usage of an LLM call (input includes cached and cache-creation tokens, output
    /// includes reasoning tokens, as OpenAI reports them; Anthropic's `input_tokens` excludes
    /// both cache kinds, add them). Its cost is computed when it ends.
    #[pyo3(signature = (input_tokens, output_tokens, cached_input_tokens=None, reasoning_tokens=None, cache_creation_input_tokens=None))]
    fn record_usage(
        &mut self,
        input_tokens: &Bound<'_, PyAny>,
        output_tokens: &Bound<'_, PyAny>,
        cached_input_tokens: Option<&Bound<'_, PyAny>>,
        reasoning_tokens: Option<&Bound<'_, PyAny>>,
        cache_creation_input_tokens: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let optional =
            |name: &str, v: Option<&Bound<'_, PyAny>>| v.map_or(Ok(0), |v| count(name, v));
        let values = (
            count("input_tokens", input_tokens)?,
            count("output_tokens", output_tokens)?,
            optional("cached_input_tokens", cached_input_tokens)?,
            optional("reasoning_tokens", reasoning_tokens)?,
        );
        let created = optional("cache_creation_input_tokens", cache_creation_input_tokens)?;
        match self.usage_mut() {
            Some(usage) => {
                (
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_input_tokens,
                    usage.reasoning_tokens,
                ) = values;
            }
            None => {
                return Err(PyValueError::new_err(
                    "record_usage is for LLM calls (thread.llm_call)",
                ));
            }
        }
        self.cache_creation = created;
        if created > 0 {
            let key = "gen_ai.usage.cache_creation.input_tokens";
            self.set(key, AttrValue::Int(i64::from(created)));
        }
        Ok(())
    }

    /// Sets an LLM call's model once it is known (`gen_ai.request.model`): for calls whose
    /// model is decided after they start. The cost is priced from the model set last, when
    /// the span ends. An empty `model` is ignored; a `ValueError` on a span that is not an LLM
    /// call.
    fn set_model(&mut self, model: &str) -> PyResult<()> {
        if self.event.is_none() {
            return Ok(());
        }
        let Some(usage) = self.usage_mut() else {
            return Err(PyValueError::new_err("set_model is for LLM calls (thread.llm_call)"));
        };
        if !model.is_empty() {
            usage.model = Symbol::intern(model);
        }
        Ok(())
    }

    /// The model that answered (`gen_ai.response.model`, often a dated snapshot of the one
    /// asked for); when no model was given, it is also the one the call is priced by (the
    /// Responses API names the model only in its answer).
    fn set_response_model(&mut self, model: &str) -> PyResult<()> {
        if self.event.is_none() || model.is_empty() {
            return Ok(());
        }
        let Some(usage) = self.usage_mut() else {
            return Err(PyValueError::new_err(
                "set_response_model is for LLM calls (thread.llm_call)",
            ));
        };
        if usage.model.is_empty() {
            usage.model = Symbol::intern(model);
        }
        self.set("gen_ai.response.model", AttrValue::from(model));
        Ok(())
    }

    /// Ends an LLM call with what its answer said, in one call (what the client
    /// instrumentation does after every call): the model that answered and the answer's id
    /// (a str each, else ignored), the usage (as `record_usage` takes it, set when any count
    /// is given; a count that is not an int from 0 to 2³²−1 is 0) and the finish reasons (a
    /// str, else ignored). Then it records, as `end()` does. Never raises for an odd answer:
    /// recording must not fail the caller's call.
    #[pyo3(signature = (response_model=None, response_id=None, input_tokens=None, output_tokens=None, cached_input_tokens=None, reasoning_tokens=None, finish_reasons=None))]
    #[allow(clippy::too_many_arguments)]
    fn end_llm_call(
        &mut self,
        py: Python<'_>,
        response_model: Option<&Bound<'_, PyAny>>,
        response_id: Option<&Bound<'_, PyAny>>,
        input_tokens: Option<&Bound<'_, PyAny>>,
        output_tokens: Option<&Bound<'_, PyAny>>,
        cached_input_tokens: Option<&Bound<'_, PyAny>>,
        reasoning_tokens: Option<&Bound<'_, PyAny>>,
        finish_reasons: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if self.event.is_none() {
            return Ok(());
        }
        let text = |v: Option<&Bound<'_, PyAny>>| -> Option<String> {
            let s = v?.cast::<PyString>().ok()?.to_cow().ok()?;
            (!s.is_empty()).then(|| s.into_owned())
        };
        let lenient = |v: Option<&Bound<'_, PyAny>>| -> u32 {
            v.filter(|v| !v.is_instance_of::<PyBool>())
                .and_then(|v| v.extract::<u32>().ok())
                .unwrap_or(0)
        };
        if let Some(model) = text(response_model) {
            if let Some(usage) = self.usage_mut()
                && usage.model.is_empty()
            {
                usage.model = Symbol::intern(&model);
            }
            self.set("gen_ai.response.model", AttrValue::from(model));
        }
        if let Some(id) = text(response_id) {
            self.set("gen_ai.response.id", AttrValue::from(id));
        }
        let counts = [input_tokens, output_tokens, cached_input_tokens, reasoning_tokens];
        let values = (
            lenient(input_tokens),
            lenient(output_tokens),
            lenient(cached_input_tokens),
            lenient(reasoning_tokens),
        );
        if counts.iter().any(Option::is_some)
            && let Some(usage) = self.usage_mut()
        {
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.reasoning_tokens,
            ) = values;
        }
        if let Some(reasons) = text(finish_reasons) {
            self.set("gen_ai.response.finish_reasons", AttrValue::from(reasons));
        }
        self.close(py)
    }

    /// Why the model stopped (`gen_ai.response.finish_reasons`).
    fn set_finish_reason(&mut self, reason: &str) {
        self.set("gen_ai.response.finish_reasons", AttrValue::from(reason));
    }

    /// Marks the first streamed token now (`gen_ai.server.time_to_first_token`, seconds).
    fn first_token(&mut self) {
        let start = self.event.as_ref().map_or(Timestamp::now(), |e| e.time);
        let elapsed = Timestamp::now().saturating_duration_since(start).as_secs_f64();
        self.set("gen_ai.server.time_to_first_token", AttrValue::Float(elapsed));
    }

    /// A tool call's result: its size (bytes, items — your unit) and any attributes.
    #[pyo3(signature = (size=None, **attributes))]
    fn set_result(
        &mut self,
        size: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if let Some(size) = size {
            if size.is_instance_of::<PyBool>() {
                return Err(PyTypeError::new_err("size must be an int, not bool"));
            }
            let size: i64 = size.extract()?;
            if size < 0 {
                return Err(PyValueError::new_err(format!("size must be at least 0, not {size}")));
            }
            self.set("gen_ai.tool.call.result.size", AttrValue::Int(size));
        }
        each_field(attributes, |key, value| self.set(key, value))
    }

    /// The provider's id of this tool call (`gen_ai.tool.call.id`).
    fn set_call_id(&mut self, call_id: &str) {
        self.set("gen_ai.tool.call.id", AttrValue::from(call_id));
    }

    /// Sets an attribute (str, int, float or bool).
    fn set_attribute(&mut self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = attr_value(key, value)?;
        self.set(key, value);
        Ok(())
    }

    /// Marks it failed with `message`.
    fn set_error(&mut self, message: &str) {
        if let Some(span) = self.span_mut() {
            span.set_error(message);
        }
    }

    /// Marks it succeeded.
    fn set_ok(&mut self) {
        if let Some(span) = self.span_mut() {
            span.status = Status::Ok;
        }
    }

    /// Starts a child LLM call (the model may be set later with `set_model`).
    #[pyo3(signature = (model="", provider=None))]
    fn llm_call(&self, model: &str, provider: Option<&str>) -> PyResult<Span> {
        llm_span(self, model, provider)
    }

    /// Starts a child tool call named after the tool; `arguments` (any JSON-able value) is
    /// measured and fingerprinted (`mission.tool.args_hash`, for loop directives), not stored.
    #[pyo3(signature = (name, arguments=None))]
    fn tool_call(&self, name: &str, arguments: Option<&Bound<'_, PyAny>>) -> PyResult<Span> {
        tool_span(self, name, arguments)
    }

    /// Starts a child step.
    fn step(&self, name: &str) -> PyResult<Span> {
        self.child(SpanKind::AgentStep, Symbol::intern(name))
    }

    /// Starts a child retrieval.
    fn retrieval(&self, name: &str) -> PyResult<Span> {
        self.child(SpanKind::Retrieval, Symbol::intern(name))
    }

    /// Records a log record inside this span.
    #[pyo3(signature = (level, message, **fields))]
    fn log(&self, level: &str, message: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        log_event(&self.core, &self.ctx, self.span_id, level, message, fields)
    }

    /// Scores this span: `name` (`helpfulness`), a finite `value`, an optional `label` and
    /// `comment` (content: omitted unless the tenant captures content) and who gave it
    /// (`source`: `human`, `llm` or `rule`). Exported over OTLP as `gen_ai.evaluation.result`.
    /// Returns whether the event was accepted. Raises `ValueError` for a value that is not
    /// finite, an empty name or an unknown source.
    #[pyo3(signature = (name, value, *, label=None, comment=None, source="human"))]
    fn score(
        &self,
        name: &str,
        value: f64,
        label: Option<&str>,
        comment: Option<&str>,
        source: &str,
    ) -> PyResult<bool> {
        let args = crate::score::ScoreArgs { name, value, label, comment, source };
        crate::score::record(&self.core, &self.ctx, self.span_id, &args)
    }

    /// Ends it now. Raises `ShutdownError` if its instance was shut down (the event is then
    /// counted as dropped after shutdown).
    fn end(&mut self) -> PyResult<()> {
        self.finish();
        if self.core.is_closed() { Err(errors::shut_down()) } else { Ok(()) }
    }

    fn __enter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let token = crate::ctxvar::set(slf.py(), slf.as_any())?;
        slf.borrow_mut().token = Some(token.unbind());
        Ok(slf)
    }

    #[pyo3(signature = (exc_type=None, exc=None, _traceback=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(t) = exc_type {
            let type_name = t.qualname()?.to_string();
            let message =
                exc.map(|e| e.str().map(|s| s.to_string())).transpose()?.unwrap_or_default();
            if let Some(span) = self.span_mut() {
                span.set_error(&if message.is_empty() {
                    type_name.clone()
                } else {
                    format!("{type_name}: {message}")
                });
            }
            self.set("error.type", AttrValue::from(type_name.as_str()));
        }
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let name = self.event.as_ref().map_or("<ended>", |e| e.name.as_str());
        format!("Span({name}, span_id={}, thread_id={})", self.span_id, self.ctx.thread_id)
    }
}

/// One run or conversation of an agent: a root span (`invoke_agent`) and the spans under it.
/// `with control.thread(...) as thread:` makes it current, so nested spans find their parent
/// through `contextvars`.
#[pyclass(frozen, module = "mission_control._native")]
pub struct Thread {
    core: Arc<Core>,
    ctx: ThreadContext,
    root: Py<Span>,
    /// Its place in the registry (`None`: the table had no room; it runs uncontrolled).
    handle: Option<ThreadHandle>,
    /// Its depth in the thread tree (0 for a root thread).
    depth: u8,
}

/// A child thread's parent: its thread and span (what the store shows), the child's depth, and
/// the parent's place in this process's registry (`None` for a parent in another process).
#[derive(Clone, Copy, Debug)]
struct Link {
    parent: (ThreadId, SpanId),
    depth: u8,
    registry: Option<ThreadHandle>,
}

/// How a thread starts: its agent, user, id or the caller's `traceparent`, and, for a child,
/// its parent and budget.
#[derive(Default)]
pub(crate) struct Start<'a> {
    pub(crate) agent: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) thread_id: Option<&'a str>,
    pub(crate) traceparent: Option<&'a str>,
    pub(crate) budget: Option<Budget>,
    /// A child of the thread named by `traceparent` (in another process), with what its
    /// budget had left (a W3C `baggage` header), instead of a continuation of it.
    pub(crate) child: bool,
    pub(crate) baggage: Option<&'a str>,
    /// What the thread may do (its children get at most as much).
    pub(crate) permissions: Option<Arc<mission_sdk::threads::PermissionSet>>,
}

impl Thread {
    /// A new thread (see `Control.thread`).
    pub(crate) fn start(core: Arc<Core>, how: Start<'_>) -> PyResult<Self> {
        let agent = how.agent.map_or(core.service, Symbol::intern);
        if how.baggage.is_some() && !how.child {
            return Err(PyValueError::new_err(
                "baggage is for a child thread: give child=True with traceparent and baggage",
            ));
        }
        let parse_traceparent = |header: &str| {
            mission_sdk::parse_traceparent(header)
                .map_err(|e| PyValueError::new_err(format!("traceparent: {e}")))
        };
        // A budget given here wins over the one the configuration file gives the agent.
        let mut budget = how.budget.or_else(|| core.budgets.for_agent(agent.as_str()));
        let (thread_id, remote_parent, link) = match (how.thread_id, how.traceparent, how.child) {
            (Some(_), Some(_), _) => {
                return Err(PyValueError::new_err("give thread_id or traceparent, not both"));
            }
            (Some(_), None, true) | (None, None, true) => {
                return Err(PyValueError::new_err(
                    "a child thread (child=True) needs the parent's traceparent (and baggage) \
                     from its child_handoff(), and gets an id of its own",
                ));
            }
            (Some(id), None, false) => (
                id.parse::<ThreadId>()
                    .map_err(|e| PyValueError::new_err(format!("thread_id: {e}")))?,
                SpanId::NONE,
                None,
            ),
            (None, Some(header), false) => {
                let (id, parent) = parse_traceparent(header)?;
                (id, parent, None)
            }
            (None, Some(header), true) => {
                let (parent_id, parent_span) = parse_traceparent(header)?;
                let inherited = match how.baggage {
                    Some(b) => Budget::from_baggage(b)
                        .map_err(|e| PyValueError::new_err(format!("baggage: {e}")))?,
                    None => None,
                };
                budget = match (inherited, budget) {
                    (Some(a), Some(b)) => Some(a.narrowed(&b)),
                    (a, b) => a.or(b),
                };
                let link = Link { parent: (parent_id, parent_span), depth: 1, registry: None };
                (ThreadId::generate(), SpanId::NONE, Some(link))
            }
            (None, None, false) => (ThreadId::generate(), SpanId::NONE, None),
        };
        let ctx = ThreadContext { tenant: core.tenant, agent, thread_id };
        Self::start_with(core, ctx, remote_parent, how.user_id, link, budget, how.permissions)
    }

    /// Starts the root span and registers the thread (a child also records its parent link
    /// on the root span and in a `mission.thread.start` log, so the tree shows while it runs).
    fn start_with(
        core: Arc<Core>,
        ctx: ThreadContext,
        remote_parent: SpanId,
        user_id: Option<&str>,
        link: Option<Link>,
        budget: Option<Budget>,
        permissions: Option<Arc<mission_sdk::threads::PermissionSet>>,
    ) -> PyResult<Self> {
        static INVOKE_AGENT: LazySymbol = LazySymbol::new("invoke_agent");
        let mut root = Span::start(
            core.clone(),
            ctx,
            SpanKind::AgentStep,
            INVOKE_AGENT.get(),
            remote_parent,
            None,
        )?;
        if let Some(user) = user_id {
            root.set(USER_ID_ATTRIBUTE, AttrValue::from(user));
        }
        let started = root.event.as_ref().map_or(Timestamp::now(), |e| e.time);
        let mut new = NewThread::new(ctx.tenant, ctx.agent, ctx.thread_id, started.0)
            .with_root_span(root.span_id);
        new.parent = link.and_then(|l| l.registry);
        new.budget = match (budget, core.pack_budget) {
            (Some(b), Some(pack)) => Some(b.narrowed(&pack)),
            (b, pack) => b.or(pack),
        };
        if let Some(set) = permissions {
            new = new.with_permissions(set);
        }
        let handle = core.threads.register(new);
        root.thread = handle;
        root.root_of = Some(RootOf { child: link.is_some() });
        let depth = link.map_or(0, |l| l.depth);
        if let Some(link) = link {
            use mission_core::thread::{TARGET, attr, event};
            let parent_id = link.parent.0.to_string();
            let parent_span = link.parent.1.to_string();
            let attributes = [
                (attr::PARENT_ID, AttrValue::from(parent_id.as_str())),
                (attr::PARENT_SPAN_ID, AttrValue::from(parent_span.as_str())),
                (attr::DEPTH, AttrValue::Int(i64::from(depth))),
            ];
            let mut start = ctx.event(
                Symbol::intern(event::START),
                root.span_id,
                EventBody::Log(LogRecord {
                    level: Level::Info,
                    target: Symbol::intern(TARGET),
                    message: Text::from(format!("child thread of {parent_id} started")),
                }),
            );
            for (key, value) in attributes {
                root.set(key, value.clone());
                start.attributes.set(Symbol::intern(key), value);
            }
            core.recorder.record(start);
        }
        let root = Python::attach(|py| Py::new(py, root))?;
        Ok(Self { core, ctx, root, handle, depth })
    }

    /// A new child of this thread run by `agent`, with a budget of its own.
    fn child(
        &self,
        py: Python<'_>,
        agent: Symbol,
        budget: Option<Budget>,
        permissions: Option<Arc<mission_sdk::threads::PermissionSet>>,
    ) -> PyResult<Thread> {
        let link = Link {
            parent: (self.ctx.thread_id, self.root.borrow(py).span_id),
            depth: self.depth.saturating_add(1).min(mission_core::thread::MAX_THREAD_DEPTH),
            registry: self.handle,
        };
        let ctx = ThreadContext { tenant: self.ctx.tenant, agent, thread_id: ThreadId::generate() };
        let budget = budget.or_else(|| self.core.budgets.for_agent(agent.as_str()));
        Self::start_with(
            self.core.clone(),
            ctx,
            SpanId::NONE,
            None,
            Some(link),
            budget,
            permissions,
        )
    }

    fn stop(&self) -> Option<Stop> {
        self.core.threads.poll(self.handle?, Timestamp::now().0)
    }

    fn command(&self, command: ThreadCommand, reason: &str) {
        if let Some(h) = self.handle {
            // A refusal (resuming a cancelled thread) changes nothing, which is what it says.
            let _ = self.core.threads.control_handle(h, command, "code", reason);
        }
    }

    /// The innermost open span of this thread in the current context, else the root.
    fn parent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, Span>> {
        let current = crate::ctxvar::get(py)?;
        if let Ok(span) = current.cast_into::<Span>() {
            let s = span.borrow();
            if s.ctx.thread_id == self.ctx.thread_id && s.event.is_some() {
                drop(s);
                return Ok(span);
            }
        }
        Ok(self.root.bind(py).clone())
    }
}

#[pymethods]
impl Thread {
    /// The thread id (a W3C trace id, 32 hex digits).
    #[getter]
    fn id(&self) -> String {
        self.ctx.thread_id.to_string()
    }

    /// The agent's name.
    #[getter]
    fn agent(&self) -> &'static str {
        self.ctx.agent.as_str()
    }

    /// The root span (to set attributes on the whole run, or mark it failed).
    #[getter]
    fn root(&self, py: Python<'_>) -> Py<Span> {
        self.root.clone_ref(py)
    }

    /// The W3C `traceparent` naming the root span, for a downstream call.
    #[getter]
    fn traceparent(&self, py: Python<'_>) -> String {
        self.root.borrow(py).traceparent()
    }

    /// Starts an LLM call under the current span of this thread (or its root).
    #[pyo3(signature = (model="", provider=None))]
    fn llm_call(&self, py: Python<'_>, model: &str, provider: Option<&str>) -> PyResult<Span> {
        llm_span(&self.parent(py)?.borrow(), model, provider)
    }

    /// Starts a tool call under the current span of this thread (or its root); `arguments`
    /// (any JSON-able value) is measured and fingerprinted (`mission.tool.args_hash`), not
    /// stored.
    #[pyo3(signature = (name, arguments=None))]
    fn tool_call(
        &self,
        py: Python<'_>,
        name: &str,
        arguments: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Span> {
        tool_span(&self.parent(py)?.borrow(), name, arguments)
    }

    /// Starts a step under the current span of this thread (or its root).
    fn step(&self, py: Python<'_>, name: &str) -> PyResult<Span> {
        self.parent(py)?.borrow().child(SpanKind::AgentStep, Symbol::intern(name))
    }

    /// Starts a retrieval under the current span of this thread (or its root).
    fn retrieval(&self, py: Python<'_>, name: &str) -> PyResult<Span> {
        self.parent(py)?.borrow().child(SpanKind::Retrieval, Symbol::intern(name))
    }

    /// Records a log record in the current span of this thread (or its root).
    #[pyo3(signature = (level, message, **fields))]
    fn log(
        &self,
        py: Python<'_>,
        level: &str,
        message: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let span_id = self.parent(py)?.borrow().span_id;
        log_event(&self.core, &self.ctx, span_id, level, message, fields)
    }

    /// Records a permission decision: `actor` asked to do `action` to `resource`; `rule`
    /// decided (`allowed` True or False).
    #[pyo3(signature = (actor, action, resource, allowed, rule))]
    fn permission(
        &self,
        py: Python<'_>,
        actor: &str,
        action: &str,
        resource: &str,
        allowed: bool,
        rule: &str,
    ) -> PyResult<()> {
        if self.core.is_closed() {
            return Err(errors::shut_down());
        }
        let span_id = self.parent(py)?.borrow().span_id;
        let event = self.ctx.event(
            Symbol::intern(action),
            span_id,
            EventBody::Permission(PermissionDecision {
                actor: Text::new(actor),
                action: Symbol::intern(action),
                resource: Text::new(resource),
                decision: if allowed { Decision::Allow } else { Decision::Deny },
                policy: Symbol::intern(rule),
            }),
        );
        self.core.recorder.record(event);
        Ok(())
    }

    /// Scores the whole thread (see `Span.score`): `thread.score("helpfulness", 0.9,
    /// label="good", comment="...", source="llm")`. A score can also come later, from another
    /// process, with `control.score_thread(thread_id, ...)`.
    #[pyo3(signature = (name, value, *, label=None, comment=None, source="human"))]
    fn score(
        &self,
        py: Python<'_>,
        name: &str,
        value: f64,
        label: Option<&str>,
        comment: Option<&str>,
        source: &str,
    ) -> PyResult<bool> {
        self.root.borrow(py).score(name, value, label, comment, source)
    }

    /// Sets an attribute on the root span.
    fn set_attribute(&self, py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = attr_value(key, value)?;
        self.root.borrow_mut(py).set(key, value);
        Ok(())
    }

    /// Ends the thread now (its root span records).
    fn end(&self, py: Python<'_>) -> PyResult<()> {
        self.root.borrow_mut(py).end()
    }

    /// Starts a child thread (a subagent) run by `agent` (default: this thread's agent): a
    /// thread of its own, linked to this one in the store (`mission.thread.parent_id`). Its
    /// spending counts against this thread's budget and every ancestor's; pausing or
    /// cancelling this thread reaches it. `budget` (a `mission_control.Budget` or a dict) is
    /// its own, which can only narrow what it may spend. `permissions` (a list of allow
    /// patterns `action:resource`, or a dict with `allow`, `name`, `severity` and
    /// `escalations` — pattern to severity) is what it may do, intersected with this thread's.
    #[pyo3(signature = (agent=None, *, budget=None, permissions=None))]
    fn child_thread(
        &self,
        py: Python<'_>,
        agent: Option<&str>,
        budget: Option<&Bound<'_, PyAny>>,
        permissions: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Thread> {
        let budget = budget.filter(|b| !b.is_none()).map(crate::budget::budget_of).transpose()?;
        let permissions =
            permissions.filter(|p| !p.is_none()).map(permissions_of).transpose()?.map(Arc::new);
        self.child(py, agent.map_or(self.ctx.agent, Symbol::intern), budget, permissions)
    }

    /// May `actor` do `action` on `resource` in this thread? The policy, open circuit
    /// breakers, then the thread's permission lineage (its own set intersected with every
    /// ancestor's): a request the lineage does not allow is an escalation, recorded with the
    /// ancestor that narrowed it and a severity, and audited. Returns a dict: `allowed`,
    /// `rule`, `reason`, and for a narrowed request `lineage` (`thread_id`, `depth`, `rule`)
    /// and `escalation`.
    fn permit<'py>(
        &self,
        py: Python<'py>,
        actor: &str,
        action: &str,
        resource: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let root = self.root.borrow(py).span_id;
        let decision = self.core.with_control(|c| {
            c.permit_in_registered_thread(&self.ctx, root, self.handle, actor, action, resource)
        })?;
        crate::json::to_python(py, &decision)
    }

    /// What a child thread in another process needs: `(traceparent, baggage)`, the
    /// `traceparent` naming this thread's root span and a W3C `baggage` member carrying what is
    /// left of the budgets this thread is under (`None` when it has none). There:
    /// `control.thread(agent, traceparent=tp, baggage=bg, child=True)`.
    fn child_handoff(&self, py: Python<'_>) -> (String, Option<String>) {
        let now = Timestamp::now().0;
        let budget = self.handle.and_then(|h| self.core.threads.remaining(h, now));
        (self.traceparent(py), budget.map(|b| b.to_baggage()))
    }

    /// Whether the thread should stop now: it or an ancestor was cancelled or is paused, or a
    /// budget it is under is used up. Ask it between steps.
    fn should_stop(&self) -> bool {
        self.stop().is_some()
    }

    /// Why the thread should stop (a dict whose `kind` is `cancelled`, `paused` or `budget`),
    /// or `None`.
    fn stop_reason<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.stop().map(|stop| crate::budget::stop_dict(py, &stop)).transpose()
    }

    /// Cancels the thread (and so its children) from its own code; recorded and audited.
    #[pyo3(signature = (reason=""))]
    fn cancel(&self, reason: &str) {
        self.command(ThreadCommand::Cancel, reason);
    }

    /// Pauses the thread (and so its children): `should_stop()` is true, and `llm_call` and
    /// `tool_call` raise `ThreadStopped`, until it is resumed.
    #[pyo3(signature = (reason=""))]
    fn pause(&self, reason: &str) {
        self.command(ThreadCommand::Pause, reason);
    }

    /// Resumes a paused thread (a cancelled one stays cancelled).
    fn resume(&self) {
        self.command(ThreadCommand::Resume, "");
    }

    /// `running`, `paused` or `cancelled` (`running` once it ended).
    #[getter]
    fn state(&self) -> &'static str {
        self.handle
            .and_then(|h| self.core.threads.state(h))
            .unwrap_or(ThreadState::Running)
            .as_str()
    }

    /// What the thread and its children used so far: a dict of `turns`, `tokens`,
    /// `cost_usd`, `wall_time_s` and `context_tokens` (zeros once it ended).
    #[getter]
    fn budget_used<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let now = Timestamp::now().0;
        let used = self.handle.and_then(|h| self.core.threads.usage(h, now)).unwrap_or_default();
        crate::json::to_python(py, &used)
    }

    /// The thread's depth in its tree (0 for a root thread, 1 for its children...).
    #[getter]
    fn depth(&self) -> u8 {
        self.depth
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let root = slf.get().root.bind(slf.py()).clone();
        Span::__enter__(root)?;
        Ok(slf)
    }

    #[pyo3(signature = (exc_type=None, exc=None, traceback=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        exc: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.root.borrow_mut(py).__exit__(py, exc_type, exc, traceback)
    }

    fn __repr__(&self) -> String {
        format!("Thread(agent={}, id={})", self.ctx.agent.as_str(), self.ctx.thread_id)
    }
}

/// A permission set from Python: a list of allow patterns, or a dict with `allow`, `name`,
/// `severity` (`info`, `warning`, `error`, `critical`) and `escalations` (pattern to
/// severity).
pub(crate) fn permissions_of(
    value: &Bound<'_, PyAny>,
) -> PyResult<mission_sdk::threads::PermissionSet> {
    use mission_sdk::directives::Severity;
    use mission_sdk::threads::PermissionSet;
    fn bad(e: impl std::fmt::Display) -> PyErr {
        PyValueError::new_err(format!("permissions: {e}"))
    }
    let severity = |text: &str| -> PyResult<Severity> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
            PyValueError::new_err(format!(
                "permissions: severity {text:?}: expected info, warning, error or critical"
            ))
        })
    };
    if let Ok(dict) = value.cast::<PyDict>() {
        for key in dict.keys() {
            let key: String = key.extract()?;
            if !["allow", "name", "severity", "escalations"].contains(&key.as_str()) {
                return Err(PyValueError::new_err(format!(
                    "permissions: unknown key {key:?}: expected allow, name, severity, escalations"
                )));
            }
        }
        let allow: Vec<String> = match dict.get_item("allow")? {
            Some(a) => a.extract()?,
            None => Vec::new(),
        };
        let mut set = PermissionSet::new(allow).map_err(bad)?;
        if let Some(name) = dict.get_item("name")? {
            set = set.named(name.extract::<String>()?).map_err(bad)?;
        }
        if let Some(s) = dict.get_item("severity")? {
            set = set.with_severity(severity(&s.extract::<String>()?)?);
        }
        if let Some(rules) = dict.get_item("escalations")? {
            let rules: Vec<(String, String)> = rules.cast::<PyDict>()?.items().extract()?;
            for (pattern, level) in rules {
                set = set.with_escalation(pattern, severity(&level)?).map_err(bad)?;
            }
        }
        return Ok(set);
    }
    let allow: Vec<String> = value.extract().map_err(|_| {
        PyValueError::new_err(
            "permissions: a list of allow patterns (\"action:resource\") or a dict",
        )
    })?;
    PermissionSet::new(allow).map_err(bad)
}
