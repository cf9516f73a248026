use mission_core::{
    Backpressure, Event, EventBody, Pipeline, SpanEnd, SpanKind, StatsConfig, StatsSink, Status,
    Symbol, Timestamp,
};
use proptest::prelude::*;

/// Nearest-rank percentile, the definition hdrhistogram's `value_at_quantile` follows.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn span(duration_ns: u64, error: bool) -> Event {
    let mut e = Event::new(
        Symbol::intern("lookup"),
        EventBody::Span(SpanEnd {
            kind: SpanKind::ToolCall,
            duration_ns,
            status: if error { Status::Error } else { Status::Ok },
            ..SpanEnd::default()
        }),
    );
    e.agent = Symbol::intern("stats-agent");
    e.time = Timestamp(Timestamp::now().0 - duration_ns);
    e
}

fn check(durations: &[u64], sigfig: u8) {
    let sink = StatsSink::try_with_config(StatsConfig::default().with_significant_figures(sigfig))
        .expect("a valid configuration");
    let reader = sink.reader();
    // Block, so the sample is complete however fast the test records.
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: std::time::Duration::from_secs(60) })
        .with_sink(sink)
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for (i, &d) in durations.iter().enumerate() {
        recorder.record(span(d, i % 10 == 0));
    }
    pipeline.shutdown();
    let snapshot = reader.snapshot();
    let op = snapshot.operation("stats-agent", "lookup").expect("operation");
    let mut sorted: Vec<u64> = durations.iter().map(|&d| d.max(1)).collect();
    sorted.sort_unstable();
    let tolerance = 10f64.powi(-(sigfig as i32));
    for (got, q) in [
        (op.all_time.p50_ns, 0.5),
        (op.all_time.p90_ns, 0.9),
        (op.all_time.p95_ns, 0.95),
        (op.all_time.p99_ns, 0.99),
        (op.all_time.max_ns, 1.0),
    ] {
        let want = percentile(&sorted, q) as f64;
        let error = (got as f64 - want).abs() / want;
        assert!(
            error <= tolerance,
            "q={q}: histogram {got}, sorted array {want}, relative error {error}"
        );
    }
    assert_eq!(op.all_time.count, durations.len() as u64);
    assert_eq!(op.all_time.errors, durations.len().div_ceil(10) as u64);
    assert_eq!(op.window.count, durations.len() as u64, "all recent spans are in the window");
}

#[test]
fn percentiles_of_a_heavy_tailed_sample() {
    // Log-normal-ish latencies from 100 µs to several seconds, generated deterministically.
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let durations: Vec<u64> = (0..50_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (100_000.0 * (u * 10.0).exp()) as u64
        })
        .collect();
    check(&durations, 2);
    check(&durations, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn percentiles_of_arbitrary_samples(durations in prop::collection::vec(1u64..10_000_000_000, 1..400)) {
        check(&durations, 3);
    }
}
