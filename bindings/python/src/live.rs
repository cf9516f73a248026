//! `control.subscribe(...)`: the live event stream in Python, on top of the SDK's hub.
//!
//! A [`Subscription`] owns one hub subscription (`mission_core::Subscription`): a bounded queue
//! of its own that the pipeline fills as it drains events. A slow reader loses its own oldest
//! events, counted in `lagged`; it never slows the agent or another subscriber.
//!
//! Reading waits without the interpreter lock, in slices short enough to let Ctrl-C through.
//! `async for` needs a way to wake an event loop without a thread blocked in its executor: the
//! first time it waits, a small thread of the subscription's own starts; it waits (without the
//! lock) until an event is queued or the subscription ends — never taking the event, so the
//! order is the reader's — and then wakes the waiting futures through
//! `loop.call_soon_threadsafe`. It ends with the subscription.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mission_core::{Decision, Event, EventBody, EventFilter, SpanId};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use pyo3::{IntoPyObjectExt, intern};

use crate::errors;

/// Longest wait without looking for signals (Ctrl-C) while a reader blocks.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// `timeout` from now; longer timeouts than about 136 years are cut to that, so a deadline
/// never overflows.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    Instant::now() + timeout.min(Duration::from_secs(u32::MAX.into()))
}

/// Events a subscription keeps by default.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;
/// The most events a subscription may keep.
pub(crate) const MAX_CAPACITY: usize = 1_000_000;

/// An `int` argument (never a `bool`) within `min..=max`; a `TypeError` or `ValueError` naming
/// the argument otherwise.
pub(crate) fn int_in(name: &str, value: &Bound<'_, PyAny>, min: u64, max: u64) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not {}",
            value.get_type().name()?
        )));
    }
    let out_of_range =
        || PyValueError::new_err(format!("{name} must be between {min} and {max}, not {value}"));
    let n: i128 = value.extract().map_err(|_| out_of_range())?;
    u64::try_from(n).ok().filter(|n| (min..=max).contains(n)).ok_or_else(out_of_range)
}

/// A number of seconds (an `int` or `float`, never a `bool`) within `0..=max`; a `TypeError`
/// or `ValueError` naming the argument otherwise.
pub(crate) fn seconds_in(name: &str, value: &Bound<'_, PyAny>, max: f64) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not {}",
            value.get_type().name()?
        )));
    }
    let seconds: f64 = value.extract()?;
    if !(0.0..=max).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "{name} must be between 0 and {max} seconds, not {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Event kinds besides the span kinds.
const OTHER_KINDS: [&str; 5] = ["log", "metric", "permission", "anomaly", "score"];

/// The filter of `subscribe` and `add_sink`: `kind` is a kind name or a list of them.
pub(crate) fn filter(
    kind: Option<&Bound<'_, PyAny>>,
    agent: Option<String>,
    thread_id: Option<String>,
    tenant: Option<String>,
) -> PyResult<EventFilter> {
    let kinds = match kind {
        None => Vec::new(),
        Some(k) if k.is_none() => Vec::new(),
        Some(k) if k.is_instance_of::<PyString>() => vec![k.extract::<String>()?],
        Some(k) => k.extract::<Vec<String>>().map_err(|_| {
            PyTypeError::new_err(
                "kind must be a str or a list of str (llm_call, tool_call, log, …)",
            )
        })?,
    };
    for k in &kinds {
        let known = mission_core::SpanKind::ALL.iter().any(|s| s.as_str() == k)
            || OTHER_KINDS.contains(&k.as_str());
        if !known {
            return Err(PyValueError::new_err(format!(
                "kind {k:?} is not an event kind (agent_step, llm_call, tool_call, retrieval, \
                 custom, log, metric, permission, anomaly, score)"
            )));
        }
    }
    let thread_id = thread_id.map(|t| t.to_ascii_lowercase());
    if let Some(t) = &thread_id
        && t.parse::<mission_core::ThreadId>().is_err()
    {
        return Err(PyValueError::new_err(format!("thread_id must be 32 hex digits, not {t:?}")));
    }
    Ok(EventFilter { agent, kinds, thread_id, tenant })
}

fn hex_span(id: SpanId) -> Option<String> {
    (id != SpanId::NONE).then(|| id.to_string())
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// One event as a Python dict: `time_ns`, `kind`, `tenant`, `agent`, `thread_id`, `span_id`,
/// `parent_span_id`, `name`, `attributes` (a dict), and the fields of its kind.
pub(crate) fn event_dict<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "time_ns"), e.time.0)?;
    d.set_item(intern!(py, "kind"), e.kind().as_str())?;
    d.set_item(intern!(py, "tenant"), e.tenant.as_str())?;
    d.set_item(intern!(py, "agent"), e.agent.as_str())?;
    d.set_item(
        intern!(py, "thread_id"),
        (!e.thread_id.is_zero()).then(|| e.thread_id.to_string()),
    )?;
    d.set_item(intern!(py, "span_id"), hex_span(e.span_id))?;
    d.set_item(intern!(py, "parent_span_id"), hex_span(e.parent_span_id))?;
    d.set_item(intern!(py, "name"), e.name.as_str())?;
    match &e.body {
        EventBody::Span(s) => {
            d.set_item(intern!(py, "duration_ns"), s.duration_ns)?;
            d.set_item(intern!(py, "status"), s.status.as_str())?;
            d.set_item(intern!(py, "error"), non_empty(s.error_message.as_str()))?;
            if !s.llm.is_empty() {
                let u = &s.llm;
                d.set_item(intern!(py, "model"), non_empty(u.model.as_str()))?;
                d.set_item(intern!(py, "provider"), non_empty(u.provider.as_str()))?;
                d.set_item(intern!(py, "input_tokens"), u.input_tokens)?;
                d.set_item(intern!(py, "output_tokens"), u.output_tokens)?;
                d.set_item(intern!(py, "cached_input_tokens"), u.cached_input_tokens)?;
                d.set_item(intern!(py, "reasoning_tokens"), u.reasoning_tokens)?;
                d.set_item(intern!(py, "cost_usd"), u.cost_usd)?;
            }
        }
        EventBody::Log(l) => {
            d.set_item(intern!(py, "level"), l.level.as_str())?;
            d.set_item(intern!(py, "target"), l.target.as_str())?;
            d.set_item(intern!(py, "message"), l.message.as_str())?;
        }
        EventBody::Metric(m) => {
            let kind = match m.kind {
                mission_core::MetricKind::Gauge => "gauge",
                mission_core::MetricKind::Counter => "counter",
                mission_core::MetricKind::Histogram => "histogram",
            };
            d.set_item(intern!(py, "metric_kind"), kind)?;
            d.set_item(intern!(py, "value"), m.value)?;
            d.set_item(intern!(py, "unit"), non_empty(m.unit.as_str()))?;
        }
        EventBody::Permission(p) => {
            d.set_item(intern!(py, "actor"), p.actor.as_str())?;
            d.set_item(intern!(py, "action"), p.action.as_str())?;
            d.set_item(intern!(py, "resource"), p.resource.as_str())?;
            let decision = match p.decision {
                Decision::Allow => "allow",
                Decision::Deny => "deny",
            };
            d.set_item(intern!(py, "decision"), decision)?;
            d.set_item(intern!(py, "policy"), p.policy.as_str())?;
        }
        EventBody::Anomaly(a) => {
            d.set_item(intern!(py, "detector"), a.detector.as_str())?;
            d.set_item(intern!(py, "score"), a.score)?;
            d.set_item(intern!(py, "value"), a.value)?;
            d.set_item(intern!(py, "expected"), a.expected)?;
            d.set_item(intern!(py, "lower"), a.lower)?;
            d.set_item(intern!(py, "upper"), a.upper)?;
        }
        EventBody::Score(s) => {
            d.set_item(intern!(py, "value"), s.value)?;
            d.set_item(intern!(py, "label"), non_empty(s.label.as_str()))?;
            d.set_item(intern!(py, "comment"), non_empty(s.comment.as_str()))?;
            d.set_item(intern!(py, "source"), s.source.as_str())?;
        }
    }
    let attributes = PyDict::new(py);
    for a in e.attributes.iter() {
        let value = match &a.value {
            mission_core::AttrValue::Str(s) => s.as_str().into_bound_py_any(py)?,
            mission_core::AttrValue::Int(i) => i.into_bound_py_any(py)?,
            mission_core::AttrValue::Float(f) => f.into_bound_py_any(py)?,
            mission_core::AttrValue::Bool(b) => b.into_bound_py_any(py)?,
        };
        attributes.set_item(a.key.as_str(), value)?;
    }
    d.set_item(intern!(py, "attributes"), attributes)?;
    Ok(d)
}

/// One waiting `async` read: its event loop, its future, and what wakes the future.
struct Armed {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    callback: Py<PyAny>,
}

/// Futures waiting for the next event, and the thread that wakes them.
#[derive(Default)]
struct Wakers {
    /// The waiting reads: the waker calls `loop.call_soon_threadsafe(callback)` for each.
    armed: Vec<Armed>,
    started: bool,
    stop: bool,
}

struct Shared {
    sub: mission_core::Subscription,
    wakers: Mutex<Wakers>,
    changed: Condvar,
}

impl Shared {
    fn wakers(&self) -> MutexGuard<'_, Wakers> {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing more will be read: closed (or the instance shut down) and drained.
    fn ended(&self) -> bool {
        self.sub.is_closed() && self.sub.pending() == 0
    }
}

/// A live subscription to this instance's events (`control.subscribe(...)`; the Python class
/// `mission_control.Subscription` wraps it with the iterator protocols).
#[pyclass(frozen, module = "mission_control._native", name = "_Subscription")]
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Subscription {
    pub(crate) fn new(sub: mission_core::Subscription) -> Self {
        Self {
            shared: Arc::new(Shared {
                sub,
                wakers: Mutex::new(Wakers::default()),
                changed: Condvar::new(),
            }),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Never held while Python runs or while waiting, so this cannot block for long; the
        // waker thread sees `stop` under the same lock, so it cannot miss the wake-up.
        self.shared.sub.close();
        self.shared.wakers().stop = true;
        self.shared.changed.notify_all();
    }
}

#[pymethods]
impl Subscription {
    /// The next event (a dict), waiting at most `timeout` seconds (None: until one comes);
    /// None when nothing came in time or the subscription ended (see `closed`). Waits
    /// without the interpreter lock.
    #[pyo3(signature = (timeout=None))]
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => Some(seconds_in("timeout", t, 1e9)?),
            _ => None,
        };
        let deadline = timeout.map(deadline_after);
        loop {
            let slice = deadline.map_or(SIGNAL_SLICE, |d| {
                d.saturating_duration_since(Instant::now()).min(SIGNAL_SLICE)
            });
            let shared = self.shared.clone();
            if let Some(event) = py.detach(move || shared.sub.recv_timeout(slice)) {
                return event_dict(py, &event).map(Some);
            }
            if self.shared.ended() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// The next event if one is waiting (a dict), else None; never waits.
    fn try_next<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.shared.sub.try_recv().map(|e| event_dict(py, &e)).transpose()
    }

    /// Has `loop.call_soon_threadsafe(callback)` called once an event is waiting or the
    /// subscription ends (what `async for` awaits for `future`). Reads whose future is done
    /// (timed out, cancelled) are forgotten here, so the list stays as long as the reads
    /// waiting now however many timed out before.
    fn _arm(
        &self,
        py: Python<'_>,
        event_loop: Py<PyAny>,
        future: Py<PyAny>,
        callback: Py<PyAny>,
    ) -> PyResult<()> {
        let start = {
            // The waker thread never waits for the interpreter lock while holding this one.
            let mut w = self.shared.wakers();
            if w.stop {
                drop(w);
                return event_loop.call_method1(py, "call_soon_threadsafe", (callback,)).map(drop);
            }
            w.armed.retain(|a| {
                !a.future
                    .call_method0(py, "done")
                    .and_then(|d| d.extract::<bool>(py))
                    .unwrap_or(false)
            });
            w.armed.push(Armed { event_loop, future, callback });
            !std::mem::replace(&mut w.started, true)
        };
        self.shared.changed.notify_all();
        if start {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("mission-py-subscription".into())
                .spawn(move || wake(&shared))
                .map_err(|e| {
                    self.shared.wakers().started = false;
                    errors::InternalError::new_err(format!("cannot start a thread: {e}"))
                })?;
        }
        Ok(())
    }

    /// Ends the subscription: undelivered events are discarded, iteration stops, waiters
    /// return. Idempotent.
    fn close(&self) {
        self.shared.sub.close();
        self.shared.wakers().stop = true;
        self.shared.changed.notify_all();
    }

    /// Whether no more events will come: `close()` was called or the instance shut down (events
    /// queued before a shutdown can still be read).
    #[getter]
    fn closed(&self) -> bool {
        self.shared.sub.is_closed()
    }

    /// `async` reads waiting to be woken (for the test that the list stays bounded).
    #[getter]
    fn _armed(&self) -> usize {
        self.shared.wakers().armed.len()
    }

    /// Whether the subscription is closed and every event was read: iteration has ended.
    #[getter]
    fn ended(&self) -> bool {
        self.shared.ended()
    }

    /// Events this subscription lost because it fell more than `capacity` behind.
    #[getter]
    fn lagged(&self) -> u64 {
        self.shared.sub.lagged()
    }

    /// Events waiting to be read.
    #[getter]
    fn pending(&self) -> usize {
        self.shared.sub.pending()
    }

    /// The most events kept waiting; the oldest is dropped (and counted in `lagged`) to make
    /// room.
    #[getter]
    fn capacity(&self) -> usize {
        self.shared.sub.capacity()
    }
}

/// The waker thread: wakes armed futures when an event is waiting or the subscription ends.
fn wake(shared: &Shared) {
    loop {
        {
            let mut w = shared.wakers();
            while w.armed.is_empty() && !w.stop {
                w = shared.changed.wait(w).unwrap_or_else(|p| p.into_inner());
            }
            if w.armed.is_empty() {
                return;
            }
        }
        // An event is waiting, or the subscription ended: never takes the event.
        while !shared.sub.wait(Duration::from_secs(3600)) {}
        let mut armed = Some(std::mem::take(&mut shared.wakers().armed));
        let woken = Python::try_attach(|py| {
            for a in armed.take().unwrap_or_default() {
                // A closed loop refuses; its future is gone with it.
                let _ = a.event_loop.call_method1(py, "call_soon_threadsafe", (a.callback,));
            }
        });
        if woken.is_none() {
            // The interpreter is finalizing: nothing can be woken, and nothing may be freed.
            std::mem::forget(armed);
            return;
        }
        if shared.sub.is_closed() {
            let w = shared.wakers();
            if w.stop && w.armed.is_empty() {
                return;
            }
        }
    }
}
