//! `control.add_sink(...)`: a Python function (or an object with `write`) that receives batches
//! of events on a worker thread.
//!
//! The pipeline's side is a plain [`Sink`] that only copies matching events into a bounded
//! queue (a full queue drops the newest and counts them): the pipeline thread never waits for
//! Python, and the agent's threads never see the sink at all. One worker thread per sink takes
//! batches off the queue (up to `batch_size` events, or fewer once the oldest waited
//! `max_delay`, or at once when `flush()` asks), takes the interpreter lock, turns the events
//! into dicts and calls the function. An exception is caught and counted with its text; a
//! panic is caught too. Everything is in `control.health()["python_sinks"]`, and events the
//! sink lost (dropped or in a batch that raised) are also reported through the pipeline's own
//! sink health (the sink's entry turns `failing`, `failed_events` counts them) on its next tick.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use mission_core::{Event, EventFilter, Sink, SinkError};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// The most events one batch may hold.
pub(crate) const MAX_BATCH: u64 = 100_000;
/// The most events a sink's queue may hold.
pub(crate) const MAX_QUEUE: u64 = 10_000_000;
/// The most Python sinks one instance runs at a time.
pub(crate) const MAX_SINKS: usize = 64;
/// The longest `max_delay`, in seconds.
pub(crate) const MAX_DELAY_S: f64 = 3600.0;

/// How the sink's worker batches.
#[derive(Clone, Debug)]
pub(crate) struct Batching {
    pub(crate) batch_size: usize,
    pub(crate) max_queue: usize,
    pub(crate) max_delay: Duration,
}

/// What a sink calls: the function (or the object's `write`), and the object's `close`.
type Target = (Py<PyAny>, Option<Py<PyAny>>);

#[derive(Default)]
struct Queue {
    /// Events waiting, with when each was queued.
    events: VecDeque<(Instant, Event)>,
    /// Events queued, ever.
    queued: u64,
    /// Events taken off the queue and finished (delivered, failed or discarded).
    finished: u64,
    /// Deliver without waiting for a full batch until `finished` reaches this (a flush).
    urgent_until: u64,
    stopping: bool,
}

struct Shared {
    name: String,
    filter: EventFilter,
    batching: Batching,
    /// The function (or the object's `write`), and the object's `close` if it has one; taken
    /// (and released under the interpreter lock) when the worker stops.
    target: Mutex<Option<Target>>,
    queue: Mutex<Queue>,
    changed: Condvar,
    batches: AtomicU64,
    delivered: AtomicU64,
    failed_batches: AtomicU64,
    failed_events: AtomicU64,
    dropped: AtomicU64,
    /// Failed and dropped events already reported to the pipeline's sink health.
    reported_lost: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Whether the last call raised.
    last_call_failed: AtomicBool,
    /// Set by `remove` and at shutdown: the pipeline's side ignores further events.
    removed: AtomicBool,
    stopped: AtomicBool,
    worker: OnceLock<std::thread::ThreadId>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }

    /// Waits (call it without the interpreter lock) until every event queued so far was
    /// handed to Python or given up, at most `timeout`; returns whether it got there. Returns
    /// at once on the worker thread itself (a sink that flushes).
    fn wait_idle(&self, timeout: Duration) -> bool {
        if self.worker.get() == Some(&std::thread::current().id()) {
            return true;
        }
        let deadline = crate::live::deadline_after(timeout);
        let mut queue = self.queue();
        let target = queue.queued;
        queue.urgent_until = queue.urgent_until.max(target);
        self.changed.notify_all();
        while queue.finished < target && !self.stopped.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue =
                self.changed.wait_timeout(queue, left).map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        true
    }

    /// Lets the worker finish what is queued (at most `timeout`), then stops it: what is still
    /// queued is discarded and counted as dropped; later events are ignored. Waits (within
    /// the same `timeout`) for the worker to end, so the object's `close()` has run when this
    /// returns (unless a call outlasted it). Returns whether everything queued was delivered.
    fn stop(&self, timeout: Duration) -> bool {
        let deadline = crate::live::deadline_after(timeout);
        self.removed.store(true, Ordering::Release);
        let delivered = self.wait_idle(timeout);
        let mut queue = self.queue();
        queue.stopping = true;
        let left = queue.events.len() as u64;
        queue.events.clear();
        queue.finished += left;
        self.dropped.fetch_add(left, Ordering::Relaxed);
        self.changed.notify_all();
        if self.worker.get() == Some(&std::thread::current().id()) {
            return delivered && left == 0;
        }
        while !self.stopped.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue =
                self.changed.wait_timeout(queue, left).map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        delivered && left == 0
    }
}

/// What one Python sink did, as `control.health()["python_sinks"]` shows it.
#[derive(serde::Serialize)]
pub(crate) struct SinkStats {
    /// The sink's name.
    name: String,
    /// `ok`, `failing` (its last call raised) or `stopped`.
    state: &'static str,
    /// Calls that returned.
    batches: u64,
    /// Events in those calls.
    delivered: u64,
    /// Calls that raised (the exception is caught).
    failed_batches: u64,
    /// Events in those calls.
    failed_events: u64,
    /// Events dropped: the queue was full, the sink was removed or the instance shut down
    /// before they were delivered, or the interpreter was exiting.
    dropped: u64,
    /// Events waiting.
    queued: usize,
    /// The last exception (or other failure) as text.
    last_error: Option<String>,
}

/// The pipeline's side: copies matching events into the queue, never waits for Python.
struct QueueSink {
    shared: Arc<Shared>,
}

impl Sink for QueueSink {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let s = &self.shared;
        if s.removed.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = Instant::now();
        let mut queued = false;
        let mut dropped = 0;
        {
            let mut queue = s.queue();
            for e in batch.iter().filter(|e| s.filter.matches(e)) {
                if queue.stopping || queue.events.len() >= s.batching.max_queue {
                    dropped += 1;
                    continue;
                }
                queue.events.push_back((now, e.clone()));
                queue.queued += 1;
                queued = true;
            }
        }
        if dropped > 0 {
            s.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if queued {
            s.changed.notify_all();
        }
        Ok(())
    }

    /// Reports the events lost since the last tick (dropped, or in batches that raised) to
    /// the pipeline's sink health.
    fn tick(&mut self, _now: mission_core::Timestamp) -> Result<(), SinkError> {
        let s = &self.shared;
        let lost = s.dropped.load(Ordering::Relaxed) + s.failed_events.load(Ordering::Relaxed);
        let new = lost.saturating_sub(s.reported_lost.swap(lost, Ordering::Relaxed));
        if new == 0 {
            return Ok(());
        }
        let why = s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Err(SinkError::new(format!(
            "the Python sink lost {new} events (dropped or in batches that raised){}",
            why.map(|w| format!("; last error: {w}")).unwrap_or_default()
        ))
        .with_lost_events(new))
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A Python sink added to an instance (`control.add_sink(...)` returns a `SinkHandle`).
#[pyclass(frozen, module = "mission_control._native", name = "SinkHandle")]
pub struct SinkHandle {
    shared: Arc<Shared>,
}

#[pymethods]
impl SinkHandle {
    /// The sink's name (in `health()["python_sinks"]` and, prefixed `python:`, the pipeline's
    /// sinks).
    #[getter]
    fn name(&self) -> &str {
        self.shared.name.strip_prefix("python:").unwrap_or(&self.shared.name)
    }

    /// What the sink did so far (a dict, as in `health()["python_sinks"]`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::json::to_python(py, &stats(&self.shared))
    }

    /// Delivers what is queued (waiting at most `timeout` seconds, without the interpreter
    /// lock), then stops the worker and calls the object's `close()` if it has one; events
    /// after this are ignored. Returns whether everything queued was delivered. Idempotent.
    #[pyo3(signature = (timeout=None))]
    fn remove(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => crate::live::seconds_in("timeout", t, MAX_DELAY_S)?,
            _ => Duration::from_secs(5),
        };
        let shared = self.shared.clone();
        Ok(py.detach(move || shared.stop(timeout)))
    }

    /// Whether the sink was removed or its instance shut down.
    #[getter]
    fn removed(&self) -> bool {
        self.shared.removed.load(Ordering::Acquire)
    }
}

impl SinkHandle {
    /// Stops the worker at once (the sink could not be added).
    pub(crate) fn stop_now(&self) {
        self.shared.stop(Duration::ZERO);
    }
}

fn stats(s: &Shared) -> SinkStats {
    let stopped = s.stopped.load(Ordering::Acquire) || s.removed.load(Ordering::Acquire);
    let last_failed = s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let queued = s.queue().events.len();
    SinkStats {
        name: s.name.strip_prefix("python:").unwrap_or(&s.name).to_owned(),
        state: if stopped {
            "stopped"
        } else if s.failing() {
            "failing"
        } else {
            "ok"
        },
        batches: s.batches.load(Ordering::Relaxed),
        delivered: s.delivered.load(Ordering::Relaxed),
        failed_batches: s.failed_batches.load(Ordering::Relaxed),
        failed_events: s.failed_events.load(Ordering::Relaxed),
        dropped: s.dropped.load(Ordering::Relaxed),
        queued,
        last_error: last_failed,
    }
}

impl Shared {
    /// Whether the last call raised.
    fn failing(&self) -> bool {
        self.last_call_failed.load(Ordering::Relaxed)
    }
}

/// The Python sinks of one instance.
#[derive(Default)]
pub(crate) struct Sinks {
    sinks: Mutex<Vec<Arc<Shared>>>,
}

impl Sinks {
    fn list(&self) -> MutexGuard<'_, Vec<Arc<Shared>>> {
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the worker of a new sink calling `write` (and `close` when it stops); returns
    /// the pipeline's side and the handle.
    pub(crate) fn add(
        &self,
        name: &str,
        write: Py<PyAny>,
        close: Option<Py<PyAny>>,
        filter: EventFilter,
        batching: Batching,
    ) -> Result<(impl Sink, SinkHandle), String> {
        let mut list = self.list();
        list.retain(|s| !s.removed.load(Ordering::Acquire));
        if list.len() >= MAX_SINKS {
            return Err(format!("at most {MAX_SINKS} Python sinks per instance; remove one first"));
        }
        let shared = Arc::new(Shared {
            name: format!("python:{name}"),
            filter,
            batching,
            target: Mutex::new(Some((write, close))),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            batches: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            failed_events: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reported_lost: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_call_failed: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            worker: OnceLock::new(),
        });
        let worker = shared.clone();
        let handle = std::thread::Builder::new()
            .name("mission-py-sink".into())
            .spawn(move || work(&worker))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let _ = shared.worker.set(handle.thread().id());
        list.push(shared.clone());
        Ok((QueueSink { shared: shared.clone() }, SinkHandle { shared }))
    }

    /// Waits (without the interpreter lock) until every sink handed what was queued to
    /// Python, at most `timeout` in all; returns whether they got there.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = crate::live::deadline_after(timeout);
        let sinks = self.list().clone();
        sinks.iter().all(|s| s.wait_idle(deadline.saturating_duration_since(Instant::now())))
    }

    /// Lets every sink deliver what is queued (at most `timeout` in all), then stops them.
    pub(crate) fn stop(&self, timeout: Duration) {
        let deadline = crate::live::deadline_after(timeout);
        let sinks = self.list().clone();
        for s in sinks {
            s.stop(deadline.saturating_duration_since(Instant::now()));
        }
    }

    pub(crate) fn stats(&self) -> Vec<SinkStats> {
        self.list().iter().map(|s| stats(s)).collect()
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        // `try_lock`: in a forked child a worker may have held a lock at the fork.
        if let Ok(list) = self.sinks.try_lock() {
            for s in list.iter() {
                s.removed.store(true, Ordering::Release);
                if let Ok(mut queue) = s.queue.try_lock() {
                    queue.stopping = true;
                }
                s.changed.notify_all();
            }
        }
    }
}

/// The worker: takes batches off the queue and calls Python.
fn work(shared: &Shared) {
    let b = &shared.batching;
    loop {
        let batch: Option<Vec<Event>> = {
            let mut queue = shared.queue();
            loop {
                if queue.stopping {
                    break None;
                }
                if let Some(&(oldest, _)) = queue.events.front() {
                    let urgent = queue.finished < queue.urgent_until;
                    let waited = oldest.elapsed();
                    if urgent || queue.events.len() >= b.batch_size || waited >= b.max_delay {
                        let n = queue.events.len().min(b.batch_size);
                        break Some(queue.events.drain(..n).map(|(_, e)| e).collect());
                    }
                    queue = shared
                        .changed
                        .wait_timeout(queue, b.max_delay - waited)
                        .map_or_else(|p| p.into_inner().0, |r| r.0);
                } else {
                    queue = shared.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            }
        };
        let Some(batch) = batch else { break };
        let n = batch.len() as u64;
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Python::try_attach(|py| call(py, shared, &batch))
        }));
        match called {
            Ok(Some(())) => {}
            // The interpreter is exiting: nothing more can be called.
            Ok(None) => {
                shared.dropped.fetch_add(n, Ordering::Relaxed);
                shared.error("the interpreter was exiting".into());
            }
            Err(_) => {
                shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                shared.failed_events.fetch_add(n, Ordering::Relaxed);
                shared.last_call_failed.store(true, Ordering::Relaxed);
                shared.error("a panic while calling the sink (caught)".into());
            }
        }
        shared.queue().finished += n;
        shared.changed.notify_all();
    }
    // Stopped: the object's `close()`, then the references go, under the interpreter lock.
    let target = shared.target.lock().unwrap_or_else(|p| p.into_inner()).take();
    let mut target = Some(target);
    let attached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Python::try_attach(|py| {
            if let Some(Some((_, Some(close)))) = &target
                && let Err(e) = close.call0(py)
            {
                shared.error(format!("close: {e}"));
            }
            drop(target.take());
        })
    }));
    if !matches!(attached, Ok(Some(()))) {
        // The interpreter is exiting: nothing may be freed.
        std::mem::forget(target);
    }
    {
        let _queue = shared.queue();
        shared.stopped.store(true, Ordering::Release);
    }
    shared.changed.notify_all();
}

fn call(py: Python<'_>, shared: &Shared, batch: &[Event]) {
    let n = batch.len() as u64;
    let write = shared
        .target
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|(w, _)| w.clone_ref(py));
    let Some(write) = write else {
        shared.dropped.fetch_add(n, Ordering::Relaxed);
        return;
    };
    let result = batch
        .iter()
        .map(|e| crate::live::event_dict(py, e))
        .collect::<PyResult<Vec<_>>>()
        .and_then(|dicts| PyList::new(py, dicts))
        .and_then(|list| write.call1(py, (list,)));
    match result {
        Ok(_) => {
            shared.batches.fetch_add(1, Ordering::Relaxed);
            shared.delivered.fetch_add(n, Ordering::Relaxed);
            shared.last_call_failed.store(false, Ordering::Relaxed);
        }
        Err(e) => {
            shared.failed_batches.fetch_add(1, Ordering::Relaxed);
            shared.failed_events.fetch_add(n, Ordering::Relaxed);
            shared.last_call_failed.store(true, Ordering::Relaxed);
            shared.error(format!("{}: {e}", shared.name));
        }
    }
}
