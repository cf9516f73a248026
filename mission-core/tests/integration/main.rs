//! Integration tests of mission-core, compiled into one binary.

mod drops_are_counted_exactly;
mod failing_sinks_are_isolated;
mod flush_and_shutdown_lose_nothing;
mod layer_records_tracing_spans;
mod stats_match_sorted_arrays;
mod transforms_run_before_every_sink;
mod values_are_bounded;

use mission_core::{Event, EventBody, LogRecord, Symbol, Text};

/// A log event whose message carries `n`, for ordering checks.
pub fn numbered(producer: u32, n: u64) -> Event {
    let mut e = Event::new(
        Symbol::intern("numbered"),
        EventBody::Log(LogRecord { message: Text::new("n"), ..LogRecord::default() }),
    );
    e.span_id = mission_core::SpanId(n);
    e.parent_span_id = mission_core::SpanId(producer as u64);
    e
}
