//! Recording spans: [`ThreadContext`] says whose thread it is, [`ActiveSpan`] times one
//! operation and records it when it ends (or is dropped).

use crate::{
    AttrValue, Event, EventBody, LlmUsage, Recorder, SpanEnd, SpanId, SpanKind, Status, Symbol,
    ThreadId, Timestamp,
};

/// Whose thread events belong to: tenant, agent and thread id. `Copy`, 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadContext {
    /// The tenant.
    pub tenant: Symbol,
    /// The agent.
    pub agent: Symbol,
    /// The thread.
    pub thread_id: ThreadId,
}

impl ThreadContext {
    /// A new thread (fresh id) of `agent` for `tenant`.
    pub fn new(tenant: Symbol, agent: Symbol) -> Self {
        Self { tenant, agent, thread_id: ThreadId::generate() }
    }

    /// An event of this thread, stamped now.
    pub fn event(&self, name: Symbol, span_id: SpanId, body: EventBody) -> Event {
        let mut event = Event::new(name, body);
        event.tenant = self.tenant;
        event.agent = self.agent;
        event.thread_id = self.thread_id;
        event.span_id = span_id;
        event
    }
}

/// A span being timed. Record it with [`end`](Self::end) (or [`end_with_error`](Self::end_with_error));
/// dropping it records it too, so an early return or `?` still leaves a record.
///
/// Cost: starting reads the clock and makes an id; ending reads the clock and moves the event
/// into this thread's buffer. No allocation unless attributes beyond four or copied strings
/// are added.
#[must_use = "a span is recorded when it ends; bind it to a variable"]
pub struct ActiveSpan<'r> {
    recorder: &'r Recorder,
    event: Option<Event>,
}

impl Recorder {
    /// Starts a span of `kind` named `name` in `thread`, under `parent` (or as a root).
    #[inline]
    pub fn start_span(
        &self,
        thread: &ThreadContext,
        kind: SpanKind,
        name: Symbol,
        parent: Option<SpanId>,
    ) -> ActiveSpan<'_> {
        let mut event = thread.event(
            name,
            SpanId::generate(),
            EventBody::Span(SpanEnd { kind, ..SpanEnd::default() }),
        );
        event.parent_span_id = parent.unwrap_or(SpanId::NONE);
        ActiveSpan { recorder: self, event: Some(event) }
    }

    /// Starts a span that began at `start` (for operations timed elsewhere, or replayed).
    pub fn start_span_at(
        &self,
        thread: &ThreadContext,
        kind: SpanKind,
        name: Symbol,
        parent: Option<SpanId>,
        start: Timestamp,
    ) -> ActiveSpan<'_> {
        let mut span = self.start_span(thread, kind, name, parent);
        if let Some(event) = span.event.as_mut() {
            event.time = start;
        }
        span
    }
}

impl ActiveSpan<'_> {
    /// This span's id (the parent to give child spans).
    pub fn span_id(&self) -> SpanId {
        self.event.as_ref().map_or(SpanId::NONE, |e| e.span_id)
    }

    /// The thread this span belongs to.
    pub fn thread_id(&self) -> ThreadId {
        self.event.as_ref().map_or(ThreadId::default(), |e| e.thread_id)
    }

    /// When it started.
    pub fn start_time(&self) -> Timestamp {
        self.event.as_ref().map_or(Timestamp(0), |e| e.time)
    }

    fn span_mut(&mut self) -> Option<&mut SpanEnd> {
        match self.event.as_mut().map(|e| &mut e.body) {
            Some(EventBody::Span(span)) => Some(span),
            _ => None,
        }
    }

    /// Sets an attribute (see [`Attributes::set`](crate::Attributes::set) for the bounds).
    pub fn set_attribute(&mut self, key: Symbol, value: impl Into<AttrValue>) -> &mut Self {
        if let Some(event) = self.event.as_mut() {
            event.attributes.set(key, value);
        }
        self
    }

    /// Sets the model usage of an LLM call.
    pub fn set_llm_usage(&mut self, usage: LlmUsage) -> &mut Self {
        if let Some(span) = self.span_mut() {
            span.llm = usage;
        }
        self
    }

    /// Mutable access to the model usage.
    pub fn llm_usage_mut(&mut self) -> Option<&mut LlmUsage> {
        self.span_mut().map(|s| &mut s.llm)
    }

    /// Sets the status it will end with (see [`end_with_error`](Self::end_with_error) for a
    /// message).
    pub fn set_status(&mut self, status: Status) -> &mut Self {
        if let Some(span) = self.span_mut() {
            span.status = status;
        }
        self
    }

    /// Marks the span failed with `message` (it records when it ends).
    pub fn set_error(&mut self, message: &str) -> &mut Self {
        if let Some(span) = self.span_mut() {
            span.set_error(message);
        }
        self
    }

    /// Ends the span now and records it.
    #[inline]
    pub fn end(mut self) {
        self.finish(Timestamp::now());
    }

    /// Ends the span with an error status carrying `message`.
    pub fn end_with_error(mut self, message: &str) {
        if let Some(span) = self.span_mut() {
            span.set_error(message);
        }
        self.finish(Timestamp::now());
    }

    /// Ends the span at `end` (for spans whose timing was measured elsewhere).
    pub fn end_at(mut self, end: Timestamp) {
        self.finish(end);
    }

    /// Ends the span at `end` with an error status carrying `message`.
    pub fn end_at_with_error(mut self, end: Timestamp, message: &str) {
        if let Some(span) = self.span_mut() {
            span.set_error(message);
        }
        self.finish(end);
    }

    #[inline]
    fn finish(&mut self, end: Timestamp) {
        if let Some(mut event) = self.event.take() {
            if let EventBody::Span(span) = &mut event.body {
                span.duration_ns = end.0.saturating_sub(event.time.0);
            }
            self.recorder.record(event);
        }
    }
}

impl Drop for ActiveSpan<'_> {
    fn drop(&mut self) {
        if self.event.is_some() {
            if std::thread::panicking()
                && let Some(span) = self.span_mut()
            {
                span.set_error("panicked");
            }
            self.finish(Timestamp::now());
        }
    }
}
