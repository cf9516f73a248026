//! [`Sink`]: where drained events go.

use std::fmt;

use crate::{Accounting, Event, Recorder};

/// A consumer of the drained event stream: the Parquet writer, the OTLP exporter, the live hub,
/// the stats, the models, a user's plugin.
///
/// Every sink runs on the pipeline thread, never on an agent's thread, and sees every event in
/// the order each producing thread recorded them. Only [`consume`](Sink::consume) is required.
///
/// A sink that returns an error keeps receiving batches; the failure is counted and shown in
/// [`Health`](crate::Health). A sink that panics is isolated: the panic is caught, counted, and
/// the sink is disabled (its state after unwinding cannot be trusted); the other sinks and the
/// recorder carry on, and the events it misses are counted as `skipped_events`.
///
/// ```
/// use mission_core::{Event, Sink, SinkError};
/// struct CountSpans(u64);
/// impl Sink for CountSpans {
///     fn name(&self) -> &str { "count-spans" }
///     fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
///         self.0 += batch.iter().filter(|e| e.as_span().is_some()).count() as u64;
///         Ok(())
///     }
/// }
/// let pipeline = mission_core::Pipeline::builder().with_sink(CountSpans(0)).start()?;
/// assert_eq!(pipeline.health().sinks[0].name, "count-spans");
/// # Ok::<(), mission_core::StartError>(())
/// ```
pub trait Sink: Send + 'static {
    /// A short name for health reports.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Called once on the pipeline thread before the first batch, with what a sink may need
    /// from its pipeline (for example the recorder's accounting, to write into file metadata).
    fn start(&mut self, context: &SinkContext) {
        let _ = context;
    }

    /// Takes one batch of events.
    ///
    /// # Errors
    /// Any failure to handle the batch; it is counted, and the next batch is still delivered.
    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError>;

    /// Called on the pipeline thread about every [`TICK_INTERVAL`], with or without events, for
    /// time-based work (closing files after an age, retention).
    ///
    /// # Errors
    /// Any failure; it is counted like a failed batch.
    fn tick(&mut self, now: crate::Timestamp) -> Result<(), SinkError> {
        let _ = now;
        Ok(())
    }

    /// Makes everything consumed so far durable or visible. Called by
    /// [`Pipeline::flush`](crate::Pipeline::flush) after every earlier event was consumed.
    ///
    /// # Errors
    /// Any failure to flush; it is counted and reported to the caller of `flush`.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Makes everything consumed so far visible to reads of what this sink keeps, for
    /// [`Recorder::flush_for_reads`](crate::Recorder::flush_for_reads): what a query of the
    /// store waits for before it reads. Defaults to [`flush`](Sink::flush). A sink that only
    /// sends events elsewhere (an exporter) returns at once, so that a query never waits on a
    /// slow or failing backend; a sink that wraps others (sampling, redaction) forwards it.
    ///
    /// # Errors
    /// Any failure to flush; it is counted and reported to the caller.
    fn flush_for_reads(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Called once when the pipeline shuts down, after the last batch. Defaults to `flush`.
    ///
    /// # Errors
    /// Any failure to finish; it is counted and shown in the shutdown report.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

/// How often [`Sink::tick`] is called.
pub const TICK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// What a sink is given when it starts: a handle on its pipeline's recorder.
#[derive(Clone, Debug)]
pub struct SinkContext {
    recorder: Recorder,
}

impl SinkContext {
    pub(crate) fn new(recorder: Recorder) -> Self {
        Self { recorder }
    }

    /// The recorder's exact counts right now.
    pub fn accounting(&self) -> Accounting {
        self.recorder.accounting()
    }

    /// The recorder, for sinks that derive new events (they re-enter the stream as new
    /// events, never as calls back into a producer).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

/// A sink's failure: a message, the underlying error where there is one, and how many events
/// the sink had accepted earlier (a buffering sink's `Ok` from `consume`) and has now lost.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    lost_events: u64,
    accepted_events: u64,
}

impl SinkError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None, lost_events: 0, accepted_events: 0 }
    }

    /// An error with a message and the error that caused it.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
            lost_events: 0,
            accepted_events: 0,
        }
    }

    /// Says that `n` events accepted by earlier calls (buffered, not yet written) were lost
    /// with this failure: the pipeline counts them failed instead of delivered, so a sink
    /// failure is never counted as a delivery.
    pub fn with_lost_events(mut self, n: u64) -> Self {
        self.lost_events = n;
        self
    }

    /// Events accepted earlier and lost with this failure.
    pub fn lost_events(&self) -> u64 {
        self.lost_events
    }

    /// Says that, of the batch whose `consume` returned this error, the sink still accepted
    /// `n` events (a failure that touched only part of the batch, or that the sink recovers
    /// from by buffering): the pipeline counts those delivered, the rest failed. Without it, a
    /// failed `consume` fails its whole batch. Events accepted this way and lost later are
    /// reported with [`with_lost_events`](Self::with_lost_events), like any other.
    pub fn with_accepted_events(mut self, n: u64) -> Self {
        self.accepted_events = n;
        self
    }

    /// Events of the failing `consume`'s batch that the sink accepted all the same.
    pub fn accepted_events(&self) -> u64 {
        self.accepted_events
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::with_source("I/O error", e)
    }
}

/// A sink made of a closure: the quickest way to plug in user code.
///
/// ```
/// use mission_core::{FnSink, Pipeline};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// let seen = Arc::new(AtomicU64::new(0));
/// let counter = seen.clone();
/// let pipeline = Pipeline::builder()
///     .with_sink(FnSink::new("counter", move |batch| {
///         counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
///         Ok(())
///     }))
///     .start()?;
/// # drop(pipeline);
/// # Ok::<(), mission_core::StartError>(())
/// ```
pub struct FnSink<F> {
    name: String,
    f: F,
}

impl<F> FnSink<F>
where
    F: FnMut(&[Event]) -> Result<(), SinkError> + Send + 'static,
{
    /// A sink called `name` that runs `f` on every batch.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self { name: name.into(), f }
    }
}

impl<F> Sink for FnSink<F>
where
    F: FnMut(&[Event]) -> Result<(), SinkError> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        (self.f)(batch)
    }
}

/// Changes events in place before any sink sees them, on the pipeline thread: redaction, for
/// one. Added with [`PipelineBuilder::with_transform`](crate::PipelineBuilder::with_transform);
/// it runs on every batch, for sinks added later too, and shows in the pipeline's health under
/// its name like a sink.
///
/// A transform that panics is disabled and every later batch is withheld from the sinks
/// (counted as skipped in its health): it fails closed, because a transform exists to keep
/// something from them.
pub trait Transform: Send + 'static {
    /// A short name for health reports.
    fn name(&self) -> &str;

    /// Changes `batch` in place (values only: the pipeline hands the same events, in the same
    /// order, to every sink).
    fn apply(&mut self, batch: &mut [Event]);
}
