//! The [`Pipeline`]: one background thread that drains the recorder's buffers in batches and
//! hands each batch to every [`Sink`], off the agent's threads.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Timestamp;
use crate::config::{Backpressure, RecorderConfig};
use crate::control::{Control, Finish};
use crate::event::Event;
use crate::health::{BufferHealth, FlushError, Health, ShutdownReport, SinkStatus};
use crate::recorder::{Recorder, Shared};
use crate::ring::Consumer;
use crate::sink::{Sink, SinkContext};
use crate::sync::lock;

/// The pipeline could not be started: the operating system refused a thread, or a setting is
/// out of its range.
#[derive(Debug)]
pub struct StartError(StartFailure);

#[derive(Debug)]
enum StartFailure {
    Thread(std::io::Error),
    Config(String),
}

impl StartError {
    /// The message of an invalid [`RecorderConfig`](crate::RecorderConfig) (naming the field
    /// and its range), if that is why the pipeline did not start.
    pub fn invalid_config(&self) -> Option<&str> {
        match &self.0 {
            StartFailure::Config(m) => Some(m),
            StartFailure::Thread(_) => None,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StartFailure::Thread(e) => {
                write!(f, "could not start the Mission Control pipeline thread: {e}")
            }
            StartFailure::Config(m) => write!(f, "invalid recorder configuration: {m}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            StartFailure::Thread(e) => Some(e),
            StartFailure::Config(_) => None,
        }
    }
}

/// Builds a [`Pipeline`].
#[must_use]
pub struct PipelineBuilder {
    config: RecorderConfig,
    sinks: Vec<Box<dyn Sink>>,
    transforms: Vec<Box<dyn crate::Transform>>,
}

impl PipelineBuilder {
    /// Uses `config` for the recorder (replacing settings made so far).
    pub fn with_config(mut self, config: RecorderConfig) -> Self {
        self.config = config;
        self
    }

    /// Events each recording thread can buffer.
    pub fn with_ring_capacity(mut self, events: usize) -> Self {
        self.config.ring_capacity = events;
        self
    }

    /// What recording does when a buffer is full.
    pub fn with_backpressure(mut self, policy: Backpressure) -> Self {
        self.config.backpressure = policy;
        self
    }

    /// Most events per batch handed to sinks.
    pub fn with_batch_size(mut self, events: usize) -> Self {
        self.config.batch_size = events.max(1);
        self
    }

    /// How long the pipeline sleeps when idle.
    pub fn with_drain_interval(mut self, interval: Duration) -> Self {
        self.config.drain_interval = interval;
        self
    }

    /// Adds a sink; sinks receive batches in the order they were added.
    pub fn with_sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Adds a boxed sink.
    pub fn with_boxed_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Adds a transform: it changes each batch before every sink sees it (transforms run in
    /// the order they were added). See [`Transform`](crate::Transform).
    pub fn with_transform(mut self, transform: impl crate::Transform) -> Self {
        self.transforms.push(Box::new(transform));
        self
    }

    /// Starts the pipeline thread.
    ///
    /// # Errors
    /// [`StartError`] if the operating system refuses to start a thread, or if a setting of
    /// the [`RecorderConfig`](crate::RecorderConfig) is out of its range
    /// ([`RecorderConfig::validate`](crate::RecorderConfig::validate)).
    pub fn start(self) -> Result<Pipeline, StartError> {
        self.config.validate().map_err(|m| StartError(StartFailure::Config(m)))?;
        let mut config = self.config;
        config.batch_size = config.batch_size.max(1);
        config.max_producers = config.max_producers.max(1);
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(config, tx));
        let transforms: Vec<TransformSlot> =
            self.transforms.into_iter().map(|t| TransformSlot::new(&shared, t)).collect();
        let mut slots = Vec::with_capacity(self.sinks.len());
        for sink in self.sinks {
            slots.push(SinkSlot::new(&shared, sink));
        }
        shared.running.store(true, Ordering::Release);
        let worker = Worker {
            shared: shared.clone(),
            consumers: Vec::new(),
            transforms,
            sinks: slots,
            batch: Vec::new(),
            control: rx,
        };
        let thread = std::thread::Builder::new()
            .name("mission-pipeline".into())
            .spawn(move || worker.run())
            .map_err(|e| StartError(StartFailure::Thread(e)))?;
        let _ = shared.pipeline_thread.set(thread.thread().clone());
        Ok(Pipeline { recorder: Recorder { shared }, thread: Some(thread), report: None })
    }
}

/// The owner of the pipeline thread. Hand out [`Recorder`]s with [`recorder`](Self::recorder);
/// [`shutdown`](Self::shutdown) (or dropping this) delivers everything recorded and stops.
///
/// ```
/// use mission_core::{Pipeline, SpanKind, StatsSink, Symbol, ThreadContext};
/// let stats = StatsSink::new();
/// let reader = stats.reader();
/// let pipeline = Pipeline::builder().with_sink(stats).start()?;
/// let recorder = pipeline.recorder();
/// let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
/// let span = recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
/// span.end();
/// pipeline.flush()?;
/// assert_eq!(reader.snapshot().operations[0].all_time.count, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipeline {
    recorder: Recorder,
    thread: Option<JoinHandle<()>>,
    report: Option<ShutdownReport>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline").field("recorder", &self.recorder).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A builder with the default configuration and no sinks.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder {
            config: RecorderConfig::default(),
            sinks: Vec::new(),
            transforms: Vec::new(),
        }
    }

    /// A handle for recording. Clone it freely (it is an `Arc`).
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Adds a sink while running; it receives every batch drained after this call.
    ///
    /// # Errors
    /// [`FlushError::Closed`] if the pipeline was shut down.
    pub fn add_sink(&self, sink: impl Sink) -> Result<(), FlushError> {
        self.recorder.add_sink(Box::new(sink))
    }

    /// Waits until every event recorded before this call has reached every sink, then flushes
    /// every sink. Waits at most [`RecorderConfig::flush_timeout`].
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush(&self) -> Result<(), FlushError> {
        self.recorder.flush()
    }

    /// A health snapshot.
    pub fn health(&self) -> Health {
        self.recorder.health()
    }

    /// Stops accepting events, delivers everything already accepted to every sink, shuts the
    /// sinks down and returns the final counts.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> ShutdownReport {
        if let Some(report) = &self.report {
            return report.clone();
        }
        let shared = &self.recorder.shared;
        shared.closed.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::sync_channel(1);
        let sent = lock(&shared.control).send(Control::Shutdown(tx)).is_ok();
        shared.wake();
        let report = if sent { rx.recv().ok() } else { None };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        shared.running.store(false, Ordering::Release);
        let report = report.unwrap_or_else(|| ShutdownReport {
            accounting: shared.accounting(),
            sinks: lock(&shared.sinks).iter().map(|s| s.snapshot()).collect(),
        });
        self.report = Some(report.clone());
        report
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}

impl Recorder {
    /// Waits until every event recorded before this call has reached every sink, then flushes
    /// every sink. See [`Pipeline::flush`].
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_timeout(self.shared.config.flush_timeout)
    }

    /// [`flush`](Self::flush) with an explicit timeout.
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush_with(timeout, Finish::Flush)
    }

    /// Waits until every event recorded before this call has reached every sink, then makes
    /// it readable: each sink's [`flush_for_reads`](crate::Sink::flush_for_reads), which
    /// finalizes a store's files but does not wait for an exporter to send. What a query of
    /// the store calls before it reads, so a slow or failing export backend never holds a
    /// query. Waits at most `timeout`.
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush_for_reads(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush_with(timeout, Finish::Reads)
    }

    fn flush_with(&self, timeout: Duration, finish: Finish) -> Result<(), FlushError> {
        let shared = &self.shared;
        if shared.pipeline_thread.get().map(|t| t.id()) == Some(std::thread::current().id()) {
            return Err(FlushError::OnPipelineThread);
        }
        if !shared.running.load(Ordering::Acquire) || shared.closed.load(Ordering::Acquire) {
            return Err(FlushError::Closed);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&shared.control).send(Control::Flush(tx, finish)).map_err(|_| FlushError::Closed)?;
        shared.wake();
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(FlushError::Timeout(timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(FlushError::Closed),
        }
    }

    /// A health snapshot.
    pub fn health(&self) -> Health {
        let shared = &self.shared;
        let (producers, fill, capacity) = shared.buffer_fill();
        let last = shared.last_pass_ns.load(Ordering::Acquire);
        let running = shared.running.load(Ordering::Acquire);
        Health {
            accounting: shared.accounting(),
            buffer: BufferHealth {
                producers,
                capacity,
                fill,
                backpressure: shared.config.backpressure,
            },
            sinks: lock(&shared.sinks).iter().map(|s| s.snapshot()).collect(),
            pipeline_running: running,
            pipeline_lag: if running && last > 0 {
                Timestamp::now().saturating_duration_since(Timestamp(last))
            } else {
                Duration::ZERO
            },
        }
    }

    /// Adds a sink while running. See [`Pipeline::add_sink`].
    ///
    /// # Errors
    /// [`FlushError::Closed`] if the pipeline was shut down.
    pub fn add_sink(&self, sink: Box<dyn Sink>) -> Result<(), FlushError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(FlushError::Closed);
        }
        let status = Arc::new(SinkStatus::new(sink.name().to_owned()));
        lock(&self.shared.control)
            .send(Control::AddSink(sink, status))
            .map_err(|_| FlushError::Closed)?;
        self.shared.wake();
        Ok(())
    }
}

/// A transform with its health entry.
struct TransformSlot {
    transform: Box<dyn crate::Transform>,
    status: Arc<SinkStatus>,
    disabled: bool,
}

impl TransformSlot {
    fn new(shared: &Shared, transform: Box<dyn crate::Transform>) -> Self {
        let status = Arc::new(SinkStatus::new(transform.name().to_owned()));
        lock(&shared.sinks).push(status.clone());
        Self { transform, status, disabled: false }
    }

    /// Applies the transform; `false` when the batch must not reach the sinks (the transform
    /// panicked, now or before: it is counted as skipped).
    fn apply(&mut self, batch: &mut [Event]) -> bool {
        let n = batch.len() as u64;
        if self.disabled {
            SinkStatus::add(&self.status.skipped_events, n);
            return false;
        }
        let transform = &mut self.transform;
        match catch_unwind(AssertUnwindSafe(|| transform.apply(batch))) {
            Ok(()) => {
                SinkStatus::add(&self.status.batches, 1);
                SinkStatus::add(&self.status.events, n);
                true
            }
            Err(panic) => {
                self.disabled = true;
                SinkStatus::add(&self.status.skipped_events, n);
                self.status.panicked(panic_message(&*panic));
                false
            }
        }
    }
}

struct SinkSlot {
    sink: Box<dyn Sink>,
    status: Arc<SinkStatus>,
    disabled: bool,
}

impl SinkSlot {
    fn new(shared: &Shared, sink: Box<dyn Sink>) -> Self {
        let status = Arc::new(SinkStatus::new(sink.name().to_owned()));
        Self::with_status(shared, sink, status)
    }

    fn with_status(shared: &Shared, sink: Box<dyn Sink>, status: Arc<SinkStatus>) -> Self {
        lock(&shared.sinks).push(status.clone());
        Self { sink, status, disabled: false }
    }

    /// Runs the sink's `start` hook on the pipeline thread, isolating a panic like any call.
    fn start(&mut self, context: &SinkContext) {
        let sink = &mut self.sink;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| sink.start(context))) {
            self.disabled = true;
            self.status.panicked(panic_message(&*panic));
        }
    }

    fn consume(&mut self, batch: &[Event]) {
        let n = batch.len() as u64;
        if self.disabled {
            SinkStatus::add(&self.status.skipped_events, n);
            return;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| sink.consume(batch))) {
            Ok(Ok(())) => {
                SinkStatus::add(&self.status.batches, 1);
                SinkStatus::add(&self.status.events, n);
                if self.status.state.load(Ordering::Relaxed) == 1 {
                    self.status.state.store(0, Ordering::Relaxed);
                }
            }
            Ok(Err(e)) => {
                let accepted = e.accepted_events().min(n);
                SinkStatus::add(&self.status.events, accepted);
                SinkStatus::add(&self.status.failed_events, n - accepted);
                self.status.lost(e.lost_events());
                self.status.fail(e.to_string());
            }
            Err(panic) => {
                self.disabled = true;
                SinkStatus::add(&self.status.skipped_events, n);
                self.status.panicked(panic_message(&*panic));
            }
        }
    }

    fn tick(&mut self, now: Timestamp) {
        if self.disabled {
            return;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| sink.tick(now))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.status.lost(e.lost_events());
                self.status.fail(e.to_string());
            }
            Err(panic) => {
                self.disabled = true;
                self.status.panicked(panic_message(&*panic));
            }
        }
    }

    /// Runs `flush`, `flush_for_reads` or `shutdown`; returns the error message if it failed.
    fn finish(&mut self, finish: Finish) -> Option<String> {
        if self.disabled {
            return None;
        }
        let sink = &mut self.sink;
        let result = catch_unwind(AssertUnwindSafe(|| match finish {
            Finish::Flush => sink.flush(),
            Finish::Reads => sink.flush_for_reads(),
            Finish::Shutdown => sink.shutdown(),
        }));
        match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                let message = e.to_string();
                self.status.lost(e.lost_events());
                self.status.fail(message.clone());
                Some(message)
            }
            Err(panic) => {
                self.disabled = true;
                let message = panic_message(&*panic);
                self.status.panicked(message.clone());
                Some(format!("panicked: {message}"))
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

struct Worker {
    shared: Arc<Shared>,
    consumers: Vec<Consumer<Event>>,
    transforms: Vec<TransformSlot>,
    sinks: Vec<SinkSlot>,
    batch: Vec<Event>,
    control: mpsc::Receiver<Control>,
}

impl Worker {
    fn run(mut self) {
        let context = SinkContext::new(Recorder { shared: self.shared.clone() });
        for slot in &mut self.sinks {
            slot.start(&context);
        }
        let mut last_tick = std::time::Instant::now();
        loop {
            while let Ok(message) = self.control.try_recv() {
                match message {
                    Control::AddSink(sink, status) => {
                        let mut slot = SinkSlot::with_status(&self.shared, sink, status);
                        slot.start(&context);
                        self.sinks.push(slot);
                    }
                    Control::Flush(reply, finish) => {
                        self.drain_everything();
                        let failures: Vec<(String, String)> = self
                            .sinks
                            .iter_mut()
                            .filter_map(|s| s.finish(finish).map(|e| (s.status.name.clone(), e)))
                            .collect();
                        let result = if failures.is_empty() {
                            Ok(())
                        } else {
                            Err(FlushError::Sinks(failures))
                        };
                        let _ = reply.send(result);
                    }
                    Control::Shutdown(reply) => {
                        // `closed` is already set: producers stop accepting, so this ends.
                        self.drain_everything();
                        for slot in &mut self.sinks {
                            slot.finish(Finish::Shutdown);
                        }
                        self.shared.running.store(false, Ordering::Release);
                        let report = ShutdownReport {
                            accounting: self.shared.accounting(),
                            sinks: self.sinks.iter().map(|s| s.status.snapshot()).collect(),
                        };
                        let _ = reply.send(report);
                        return;
                    }
                }
            }
            let moved = self.drain_pass();
            self.retire_exited_producers();
            if last_tick.elapsed() >= crate::sink::TICK_INTERVAL {
                last_tick = std::time::Instant::now();
                let now = Timestamp::now();
                for slot in &mut self.sinks {
                    slot.tick(now);
                }
            }
            self.shared.last_pass_ns.store(Timestamp::now().0, Ordering::Release);
            if moved == 0 {
                std::thread::park_timeout(self.shared.config.drain_interval);
            }
        }
    }

    fn adopt_new_producers(&mut self) {
        if self.shared.has_pending.swap(false, Ordering::AcqRel) {
            let mut registry = lock(&self.shared.registry);
            self.consumers.append(&mut registry.pending);
        }
    }

    /// One pass over every buffer, taking what each holds now (at most a few batches each).
    fn drain_pass(&mut self) -> usize {
        self.adopt_new_producers();
        let batch_size = self.shared.config.batch_size;
        let mut moved = 0;
        for i in 0..self.consumers.len() {
            let target = self.consumers[i].tail();
            moved += self.drain_consumer(i, target, batch_size);
        }
        moved += self.drain_shared_queue(batch_size, u64::MAX);
        self.dispatch();
        moved
    }

    /// Takes everything accepted before this call from every buffer and delivers it.
    fn drain_everything(&mut self) {
        self.adopt_new_producers();
        let batch_size = self.shared.config.batch_size;
        let targets: Vec<u64> = self.consumers.iter().map(|c| c.tail()).collect();
        for (i, target) in targets.into_iter().enumerate() {
            self.drain_consumer(i, target, batch_size);
        }
        let queued = lock(&self.shared.shared_queue).queue.len() as u64;
        self.drain_shared_queue(batch_size, queued);
        self.dispatch();
    }

    fn drain_consumer(&mut self, index: usize, target: u64, batch_size: usize) -> usize {
        let mut moved = 0;
        while self.consumers[index].head() < target {
            let room = batch_size.saturating_sub(self.batch.len()).max(1);
            let n = self.consumers[index].pop_into(&mut self.batch, room);
            moved += n;
            if self.batch.len() >= batch_size {
                self.dispatch();
            }
            if n == 0 {
                break;
            }
        }
        moved
    }

    fn drain_shared_queue(&mut self, batch_size: usize, mut limit: u64) -> usize {
        let mut moved = 0;
        while limit > 0 {
            let room = batch_size.saturating_sub(self.batch.len()).max(1).min(limit as usize);
            let n = {
                let mut queue = lock(&self.shared.shared_queue);
                let n = room.min(queue.queue.len());
                self.batch.extend(queue.queue.drain(..n));
                n
            };
            if n == 0 {
                break;
            }
            moved += n;
            limit -= n as u64;
            if self.batch.len() >= batch_size {
                self.dispatch();
            }
        }
        moved
    }

    fn dispatch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let passed = self.transforms.iter_mut().all(|t| t.apply(&mut self.batch));
        if passed {
            for slot in &mut self.sinks {
                slot.consume(&self.batch);
            }
        }
        let delivered = self.shared.delivered.load(Ordering::Relaxed) + self.batch.len() as u64;
        self.shared.delivered.store(delivered, Ordering::Release);
        self.batch.clear();
    }

    /// Removes the buffers of threads that exited once they are empty, keeping their counts.
    fn retire_exited_producers(&mut self) {
        let exited = |c: &Consumer<Event>| !c.shared().producer_alive() && c.head() == c.tail();
        if !self.consumers.iter().any(exited) {
            return;
        }
        let mut registry = lock(&self.shared.registry);
        self.consumers.retain(|c| {
            if !exited(c) {
                return true;
            }
            let ring = c.shared();
            registry.retired_accepted += ring.accepted();
            registry.retired_dropped_full += ring.dropped_full();
            registry.retired_dropped_timeout += ring.dropped_timeout();
            registry.rings.retain(|r| !crate::sync::Arc::ptr_eq(r, ring));
            false
        });
    }
}
