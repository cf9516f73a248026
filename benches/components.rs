//! Where the time of one recorded span goes: the pieces of `record_span/mission_control`
//! measured one by one, so the distance to the floor is visible.
//!
//! * `clock_read`: one `Timestamp::now()` (a time-stamp-counter read plus scaling); a span
//!   needs two. `std_instant_now` is the OS clock for comparison.
//! * `span_id`: generating one span id.
//! * `build_event`: making a 128-byte span event (includes one clock read).
//! * `push_event`: moving a ready event into this thread's ring while the pipeline drains it
//!   on the other core (includes cloning the prototype).
//!
//! Run: `cargo bench -p mission-benches --bench components`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mission_benches::{CHUNK, time_chunked};
use mission_core::{EventBody, Pipeline, SpanEnd, SpanId, Symbol, ThreadContext, Timestamp};

fn components(c: &mut Criterion) {
    let mut group = c.benchmark_group("components");
    group.bench_function("clock_read", |b| b.iter(|| black_box(Timestamp::now())));
    group.bench_function("std_instant_now", |b| b.iter(|| black_box(std::time::Instant::now())));
    group.bench_function("span_id", |b| b.iter(|| black_box(SpanId::generate())));
    let thread = ThreadContext::new(Symbol::intern("bench"), Symbol::intern("bench-agent"));
    let name = Symbol::intern("chat");
    group.bench_function("build_event", |b| {
        b.iter(|| {
            black_box(thread.event(name, SpanId::generate(), EventBody::Span(SpanEnd::default())))
        })
    });
    let pipeline =
        Pipeline::builder().with_ring_capacity(2 * CHUNK as usize).start().expect("start");
    let recorder = pipeline.recorder();
    let prototype = thread.event(name, SpanId::generate(), EventBody::Span(SpanEnd::default()));
    group.bench_function("push_event", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || {
                    recorder.record(prototype.clone());
                },
                || {
                    let _ = recorder.flush();
                },
            )
        })
    });
    group.finish();
    assert_eq!(pipeline.shutdown().accounting.dropped, 0);
}

criterion_group!(benches, components);
criterion_main!(benches);
