//! [`Fanout`]: the sinks a wrapping sink (sampling, redaction) hands its events to.

use mission_core::{Event, Sink, SinkContext, SinkError};

/// Sinks behind a wrapper: each call goes to every one of them, in order; a failure of one is
/// reported (the first, named) without keeping the others from being called.
pub(crate) struct Fanout(Vec<Box<dyn Sink>>);

impl Fanout {
    pub(crate) fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Self(sinks)
    }

    pub(crate) fn start(&mut self, context: &SinkContext) {
        for sink in &mut self.0 {
            sink.start(context);
        }
    }

    /// Hands `events` to every sink.
    pub(crate) fn consume(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.each(|sink| sink.consume(events))
    }

    /// Calls `f` on every sink; the first error, prefixed with its sink's name.
    pub(crate) fn each(
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
