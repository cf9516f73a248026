//! What the recorder and the pipeline report: exact event [`Accounting`], each sink's
//! [`SinkHealth`] (kept live in a `SinkStatus` the pipeline thread updates), buffer fill,
//! [`Health`], [`ShutdownReport`] and [`FlushError`].
//!
//! A module of its own so the [`Recorder`](crate::Recorder) (which reads health) and the
//! [`Pipeline`](crate::Pipeline) (which writes it) both depend on it and not on each other.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use crate::config::Backpressure;
use crate::sync::lock;

/// Exact counts of what happened to every event handed to [`Recorder::record`](crate::Recorder::record).
///
/// `recorded == delivered + dropped + in_flight` holds in every snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Accounting {
    /// Every event handed to `record`.
    pub recorded: u64,
    /// Events handed to every sink.
    pub delivered: u64,
    /// Events not kept: the sum of the four reasons below.
    pub dropped: u64,
    /// Events in a buffer or being handed to sinks right now.
    pub in_flight: u64,
    /// Dropped because the thread's buffer was full (`DropNewest`).
    pub dropped_buffer_full: u64,
    /// Dropped after waiting the configured time for room (`Block`).
    pub dropped_block_timeout: u64,
    /// Dropped because the recorder had been shut down.
    pub dropped_after_shutdown: u64,
    /// Dropped because they were recorded while their OS thread's locals were being destroyed
    /// (for example from another thread-local's destructor).
    pub dropped_thread_exit: u64,
}

/// Why a [`flush`](crate::Pipeline::flush) did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlushError {
    /// Not everything was delivered within the timeout.
    Timeout(Duration),
    /// The pipeline was shut down.
    Closed,
    /// `flush` was called from a sink, on the pipeline thread itself (it would wait forever).
    OnPipelineThread,
    /// Everything was delivered, but these sinks failed to flush: `(sink, error)`.
    Sinks(Vec<(String, String)>),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Timeout(d) => write!(f, "flush did not complete within {d:?}"),
            FlushError::Closed => f.write_str("the pipeline is shut down"),
            FlushError::OnPipelineThread => f.write_str(
                "flush was called on the pipeline thread (from a sink); it would deadlock",
            ),
            FlushError::Sinks(failures) => {
                f.write_str("sinks failed to flush:")?;
                for (sink, error) in failures {
                    write!(f, " {sink}: {error};")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for FlushError {}

/// The state of one sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    /// Its last call succeeded.
    Ok,
    /// Its last call returned an error; it keeps receiving batches.
    Failing,
    /// It panicked and receives nothing more.
    Disabled,
}

/// Health of one sink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SinkHealth {
    /// The sink's name.
    pub name: String,
    /// Its state.
    pub state: SinkState,
    /// Batches it took without error.
    pub batches: u64,
    /// Events delivered: in those batches, less those the sink lost afterwards (a buffering
    /// sink reports them with [`SinkError::with_lost_events`](crate::SinkError::with_lost_events)).
    pub events: u64,
    /// Calls that returned an error (consume, flush or shutdown).
    pub errors: u64,
    /// Events in batches whose `consume` failed, and events the sink accepted and lost later.
    pub failed_events: u64,
    /// Panics caught.
    pub panics: u64,
    /// Events not handed to it because it was disabled.
    pub skipped_events: u64,
    /// The last error or panic message.
    pub last_error: Option<String>,
}

/// Counters one sink's slot updates and health reads.
pub(crate) struct SinkStatus {
    pub(crate) name: String,
    pub(crate) state: AtomicU8,
    pub(crate) batches: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) failed_events: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) skipped_events: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl SinkStatus {
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            state: AtomicU8::new(0),
            batches: AtomicU64::new(0),
            events: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed_events: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            skipped_events: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Moves `n` events the sink accepted (and lost since) from delivered to failed.
    pub(crate) fn lost(&self, n: u64) {
        if n == 0 {
            return;
        }
        let _ = self
            .events
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(n)));
        Self::add(&self.failed_events, n);
    }

    pub(crate) fn fail(&self, message: String) {
        Self::add(&self.errors, 1);
        if self.state.load(Ordering::Relaxed) != 2 {
            self.state.store(1, Ordering::Relaxed);
        }
        *lock(&self.last_error) = Some(message);
    }

    pub(crate) fn panicked(&self, message: String) {
        Self::add(&self.panics, 1);
        self.state.store(2, Ordering::Relaxed);
        *lock(&self.last_error) = Some(format!("panicked: {message}"));
    }

    pub(crate) fn snapshot(&self) -> SinkHealth {
        SinkHealth {
            name: self.name.clone(),
            state: match self.state.load(Ordering::Relaxed) {
                0 => SinkState::Ok,
                1 => SinkState::Failing,
                _ => SinkState::Disabled,
            },
            batches: self.batches.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            failed_events: self.failed_events.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            skipped_events: self.skipped_events.load(Ordering::Relaxed),
            last_error: lock(&self.last_error).clone(),
        }
    }
}

/// Fill of the recorder's buffers.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BufferHealth {
    /// Threads with a buffer of their own.
    pub producers: usize,
    /// Total capacity of those buffers, in events.
    pub capacity: u64,
    /// Events waiting in buffers.
    pub fill: u64,
    /// The backpressure policy in force.
    pub backpressure: Backpressure,
}

/// A snapshot of the recorder and pipeline, cheap enough to take at any time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Health {
    /// Exact event counts.
    pub accounting: Accounting,
    /// Buffer fill.
    pub buffer: BufferHealth,
    /// One entry per sink, in registration order.
    pub sinks: Vec<SinkHealth>,
    /// Whether the pipeline thread is running.
    pub pipeline_running: bool,
    /// Time since the pipeline last finished a pass over the buffers: a stuck sink shows here.
    pub pipeline_lag: Duration,
}

impl Health {
    /// True when the pipeline runs, no sink is failing or disabled and nothing was dropped.
    pub fn is_healthy(&self) -> bool {
        self.pipeline_running
            && self.accounting.dropped == 0
            && self.sinks.iter().all(|s| s.state == SinkState::Ok)
    }
}

/// What [`Pipeline::shutdown`](crate::Pipeline::shutdown) reports: the final counts and every sink's health.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShutdownReport {
    /// Exact event counts at shutdown.
    pub accounting: Accounting,
    /// Every sink's final health.
    pub sinks: Vec<SinkHealth>,
}
