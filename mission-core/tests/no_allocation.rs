//! Recording a span whose name was seen before allocates nothing: checked with a counting
//! global allocator (its own test binary, so nothing else shares the allocator).

use mission_core::testing::{CountingAllocator, allocations};
use mission_core::{LazySymbol, LlmUsage, Pipeline, SpanKind, Symbol, ThreadContext};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

static CHAT: LazySymbol = LazySymbol::new("chat");

#[test]
fn recording_spans_allocates_nothing_once_warm() {
    let pipeline = Pipeline::builder().start().expect("start");
    let recorder = pipeline.recorder();
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let model = Symbol::intern("gpt-4o-mini");
    let record = |i: u32| {
        let mut span = recorder.start_span(&thread, SpanKind::LlmCall, CHAT.get(), None);
        span.set_llm_usage(LlmUsage {
            model,
            input_tokens: i,
            output_tokens: 2,
            ..LlmUsage::default()
        });
        span.end();
        let child =
            recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
        drop(child);
    };
    // The first event registers this thread's ring and interns the names.
    record(0);
    let before = allocations();
    for i in 1..=2_000 {
        record(i);
    }
    let after = allocations();
    assert_eq!(after - before, 0, "recording allocated {} times", after - before);
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.recorded, 4_002);
}
