use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mission_core::{FnSink, Pipeline, SinkError, SinkState};

use crate::numbered;

#[test]
fn panicking_and_failing_sinks_do_not_stop_the_others() {
    let good = Arc::new(AtomicU64::new(0));
    let good_counter = good.clone();
    let mut calls = 0u64;
    let pipeline = Pipeline::builder()
        .with_batch_size(10)
        .with_sink(FnSink::new("panics", |batch: &[mission_core::Event]| {
            if batch.iter().any(|e| e.span_id.0 == 50) {
                panic!("boom on event 50");
            }
            Ok(())
        }))
        .with_sink(FnSink::new("errors", move |_batch: &[mission_core::Event]| {
            calls += 1;
            if calls.is_multiple_of(2) { Err(SinkError::new("disk on fire")) } else { Ok(()) }
        }))
        .with_sink(FnSink::new("good", move |batch: &[mission_core::Event]| {
            good_counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Ok(())
        }))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for n in 0..1_000 {
        recorder.record(numbered(0, n));
        if n % 100 == 0 {
            pipeline.flush().ok();
        }
    }
    let _ = pipeline.flush();
    let health = pipeline.health();
    let panics = &health.sinks[0];
    assert_eq!(panics.state, SinkState::Disabled);
    assert_eq!(panics.panics, 1);
    assert!(panics.last_error.as_deref().unwrap_or("").contains("boom on event 50"));
    assert!(panics.skipped_events > 0);
    assert_eq!(panics.events + panics.skipped_events, 1_000);
    let errors = &health.sinks[1];
    assert!(errors.errors > 0);
    assert_eq!(errors.last_error.as_deref(), Some("disk on fire"));
    assert_eq!(errors.events + errors.failed_events, 1_000);
    assert_eq!(health.sinks[2].state, SinkState::Ok);
    assert!(!health.is_healthy());
    let report = pipeline.shutdown();
    assert_eq!(good.load(Ordering::Relaxed), 1_000);
    assert_eq!(report.accounting.delivered, 1_000);
    // The recorder still works for a new pipeline in the same process.
    let again = Pipeline::builder().start().expect("start");
    assert!(again.recorder().record(numbered(1, 1)));
    assert_eq!(again.shutdown().accounting.delivered, 1);
}

#[test]
fn a_failing_flush_is_reported() {
    struct Stubborn;
    impl mission_core::Sink for Stubborn {
        fn name(&self) -> &str {
            "stubborn"
        }
        fn consume(&mut self, _batch: &[mission_core::Event]) -> Result<(), SinkError> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Err(SinkError::new("cannot fsync"))
        }
    }
    let pipeline = Pipeline::builder().with_sink(Stubborn).start().expect("start");
    pipeline.recorder().record(numbered(0, 0));
    let err = pipeline.flush().unwrap_err();
    assert!(err.to_string().contains("stubborn: cannot fsync"), "{err}");
    assert_eq!(pipeline.health().accounting.delivered, 1);
}
