//! [`Fanout`]: the sinks a wrapping sink (sampling, redaction) hands its events to.
//!
//! A sink that decides what the sinks behind it see (a sampler keeping whole threads, a
//! redactor) owns a [`Fanout`] of them and hands each batch on; the fan-out is public so such
//! wrappers can be written outside this crate, like `tracing-subscriber`'s layered subscribers.

use crate::{Event, Sink, SinkContext, SinkError};

/// Sinks behind a wrapper: each call goes to every one of them, in order; a failure of one is
/// reported (the first, named) without keeping the others from being called.
///
/// ```
/// use mission_core::{Event, Fanout, FnSink, SinkError};
/// let mut fanout = Fanout::new(vec![
///     Box::new(FnSink::new("a", |_: &[Event]| Ok(()))),
///     Box::new(FnSink::new("b", |_: &[Event]| Err(SinkError::new("full")))),
/// ]);
/// let err = fanout.consume(&[]).unwrap_err();
/// assert_eq!(err.to_string(), "b: full");
/// ```
pub struct Fanout(Vec<Box<dyn Sink>>);

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|s| s.name())).finish()
    }
}

impl Fanout {
    /// The fan-out to `sinks`, called in this order.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Self(sinks)
    }

    /// Starts every sink (see [`Sink::start`]).
    pub fn start(&mut self, context: &SinkContext) {
        for sink in &mut self.0 {
            sink.start(context);
        }
    }

    /// Hands `events` to every sink.
    pub fn consume(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.each(|sink| sink.consume(events))
    }

    /// Calls `f` on every sink; the first error, prefixed with its sink's name.
    pub fn each(
        &mut self,
        f: impl Fn(&mut dyn Sink) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        let mut first_error = None;
        for sink in &mut self.0 {
            if let Err(e) = f(sink.as_mut()) {
                first_error.get_or_insert(SinkError::new(format!("{}: {e}", sink.name())));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
