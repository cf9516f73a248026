//! Python directive callbacks: what a directive's `{ action = "callback", name = ".." }` calls
//! when the function registered under that name is Python.
//!
//! The directives engine calls callbacks on the pipeline thread. A Python function cannot run
//! there without the interpreter lock, and waiting for it would stall the pipeline behind
//! whatever Python is doing; so the Rust callback registered for a Python function only queues
//! the alert (bounded; a full queue drops and counts), and one worker thread per instance takes
//! the lock, calls the function with a dict, and counts what happened. An exception is caught
//! and counted (its text kept); nothing crosses back into Rust as a panic. The worker waits for
//! work without the lock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use mission_sdk::directives::Alert;
use pyo3::prelude::*;

/// Alerts waiting for Python, at most; more are dropped and counted.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(String, Alert)>,
    /// Alerts queued, ever.
    queued: u64,
    /// Alerts taken off the queue and finished (called, failed or skipped).
    finished: u64,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    functions: Mutex<HashMap<String, Py<PyAny>>>,
    queue: Mutex<Queue>,
    changed: Condvar,
    run: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    worker: OnceLock<std::thread::ThreadId>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn functions(&self) -> MutexGuard<'_, HashMap<String, Py<PyAny>>> {
        self.functions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The Python callbacks of one instance and the thread that calls them.
#[derive(Default)]
pub(crate) struct Callbacks {
    shared: Arc<Shared>,
    started: Mutex<bool>,
}

/// What the Python callbacks did, as `directive_stats()["python_callbacks"]` shows it.
#[derive(serde::Serialize)]
pub(crate) struct CallbackStats {
    /// Registered functions.
    registered: usize,
    /// Calls that returned.
    run: u64,
    /// Calls that raised (the exception is caught).
    failed: u64,
    /// Alerts dropped: the queue was full, or the interpreter was shutting down.
    dropped: u64,
    /// Alerts waiting.
    queued: usize,
    /// The last exception raised by a callback, as text.
    last_error: Option<String>,
}

impl Callbacks {
    /// Keeps `function` under `name` and returns the Rust callback that queues alerts for it.
    /// Starts the worker thread on first use.
    pub(crate) fn register(
        &self,
        name: &str,
        function: Py<PyAny>,
    ) -> std::io::Result<impl Fn(&Alert) + Send + Sync + 'static> {
        self.start()?;
        self.shared.functions().insert(name.to_owned(), function);
        Ok(self.queuer(name))
    }

    /// The Rust callback that queues alerts for the Python function named `name`.
    pub(crate) fn queuer(&self, name: &str) -> impl Fn(&Alert) + Send + Sync + 'static {
        let shared = self.shared.clone();
        let name = name.to_owned();
        move |alert: &Alert| {
            let mut queue = shared.queue();
            if queue.stopping || queue.jobs.len() >= QUEUE_CAPACITY {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            queue.jobs.push_back((name.clone(), alert.clone()));
            queue.queued += 1;
            drop(queue);
            shared.changed.notify_all();
        }
    }

    /// Forgets the function under `name`; returns whether there was one.
    pub(crate) fn unregister(&self, name: &str) -> bool {
        self.shared.functions().remove(name).is_some()
    }

    /// The registered functions, for a forked child's new instance.
    pub(crate) fn functions(&self, py: Python<'_>) -> Vec<(String, Py<PyAny>)> {
        self.shared.functions().iter().map(|(k, f)| (k.clone(), f.clone_ref(py))).collect()
    }

    fn start(&self) -> std::io::Result<()> {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if !*started {
            let shared = self.shared.clone();
            let handle = std::thread::Builder::new()
                .name("mission-py-callbacks".into())
                .spawn(move || work(&shared))?;
            let _ = self.shared.worker.set(handle.thread().id());
            *started = true;
        }
        Ok(())
    }

    /// Waits (call it without the interpreter lock) until every alert queued so far was
    /// handed to Python, at most `timeout`; returns whether it got there. Returns at once on
    /// the worker thread itself (a callback that flushes).
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        if self.shared.worker.get() == Some(&std::thread::current().id()) {
            return true;
        }
        let deadline = crate::live::deadline_after(timeout);
        let mut queue = self.shared.queue();
        let target = queue.queued;
        while queue.finished < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .shared
                .changed
                .wait_timeout(queue, left)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        true
    }

    /// Lets the worker finish what is queued (at most `timeout`, without the interpreter
    /// lock), then stops it; later alerts are dropped and counted.
    pub(crate) fn stop(&self, timeout: Duration) {
        let _ = self.wait_idle(timeout);
        self.shared.queue().stopping = true;
        self.shared.changed.notify_all();
    }

    pub(crate) fn stats(&self) -> CallbackStats {
        let s = &self.shared;
        CallbackStats {
            registered: s.functions().len(),
            run: s.run.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            queued: s.queue().jobs.len(),
            last_error: s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        // `try_lock`: in a forked child the parent's worker may have held the lock at the fork.
        if let Ok(mut queue) = self.shared.queue.try_lock() {
            queue.stopping = true;
        }
        self.shared.changed.notify_all();
    }
}

/// The worker: takes alerts off the queue and calls the Python functions.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.queue();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break Some(job);
                }
                if queue.stopping {
                    break None;
                }
                queue = shared.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some((name, alert)) = job else { return };
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Python::try_attach(|py| call(py, shared, &name, &alert))
        }));
        match called {
            Ok(Some(())) => {}
            // The interpreter is shutting down: nothing more can be called.
            Ok(None) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some("a panic while calling the callback (caught)".into());
            }
        }
        shared.queue().finished += 1;
        shared.changed.notify_all();
    }
}

fn call(py: Python<'_>, shared: &Shared, name: &str, alert: &Alert) {
    let Some(function) = shared.functions().get(name).map(|f| f.clone_ref(py)) else {
        // Unregistered since the alert was queued.
        return;
    };
    let result = alert_dict(py, alert).and_then(|dict| function.call1(py, (dict,)));
    match result {
        Ok(_) => {
            shared.run.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let text = format!("{name}: {e}");
            *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        }
    }
}

/// The alert as a dict: its fields, `group` as a dict, `time_ns` the event time.
pub(crate) fn alert_dict<'py>(py: Python<'py>, alert: &Alert) -> PyResult<Bound<'py, PyAny>> {
    let mut value = serde_json::to_value(alert)
        .map_err(|e| crate::errors::InternalError::new_err(e.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        let group: serde_json::Map<String, serde_json::Value> =
            alert.group.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        object.insert("group".into(), group.into());
        if let Some(time) = object.remove("time") {
            object.insert("time_ns".into(), time);
        }
    }
    crate::json::to_python(py, &value)
}
