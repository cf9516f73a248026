use std::sync::{Arc, Mutex};

use mission_core::{Event, EventBody, FnSink, Pipeline, SinkState, Text, Transform};

use crate::numbered;

/// Rewrites every log message to `redacted`; panics on event 7 when `fail` is set.
struct Rewrite {
    fail: bool,
}

impl Transform for Rewrite {
    fn name(&self) -> &str {
        "rewrite"
    }

    fn apply(&mut self, batch: &mut [Event]) {
        for event in batch {
            if self.fail && event.span_id.0 == 7 {
                panic!("cannot rewrite event 7");
            }
            if let EventBody::Log(log) = &mut event.body {
                log.message = Text::new("redacted");
            }
        }
    }
}

type Seen = Arc<Mutex<Vec<String>>>;

/// A sink keeping the log messages it is given.
fn collector(name: &str) -> (impl mission_core::Sink, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let sink = FnSink::new(name, move |batch: &[Event]| {
        let mut seen = keep.lock().expect("lock");
        for e in batch {
            if let EventBody::Log(log) = &e.body {
                seen.push(log.message.as_str().to_owned());
            }
        }
        Ok(())
    });
    (sink, seen)
}

#[test]
fn every_sink_sees_the_transformed_events_even_one_added_later() {
    let (first, seen_first) = collector("first");
    let pipeline = Pipeline::builder()
        .with_transform(Rewrite { fail: false })
        .with_sink(first)
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for n in 0..10 {
        recorder.record(numbered(0, n));
    }
    pipeline.flush().expect("flush");
    let (later, seen_later) = collector("later");
    pipeline.add_sink(later).expect("add");
    for n in 10..20 {
        recorder.record(numbered(0, n));
    }
    pipeline.flush().expect("flush");
    let first = seen_first.lock().expect("lock").clone();
    let later = seen_later.lock().expect("lock").clone();
    assert_eq!(first.len(), 20);
    assert_eq!(later.len(), 10);
    assert!(first.iter().chain(&later).all(|m| m == "redacted"), "{first:?} {later:?}");
    let health = pipeline.health();
    let names: Vec<&str> = health.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["rewrite", "first", "later"], "each keeps its own health entry");
    assert_eq!(health.sinks[0].events, 20);
}

#[test]
fn a_panicking_transform_fails_closed_and_says_so() {
    let (sink, seen) = collector("sink");
    let pipeline = Pipeline::builder()
        .with_batch_size(4)
        .with_transform(Rewrite { fail: true })
        .with_sink(sink)
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for n in 0..4 {
        recorder.record(numbered(0, n));
    }
    pipeline.flush().expect("flush");
    for n in 4..12 {
        recorder.record(numbered(0, n));
    }
    let _ = pipeline.flush();
    let seen = seen.lock().expect("lock").clone();
    // The first batch (0..4) went through; nothing after the panic reached the sink, so no
    // event that was not rewritten ever did.
    assert_eq!(seen, vec!["redacted"; 4]);
    let health = pipeline.health();
    let t = &health.sinks[0];
    assert_eq!(t.state, SinkState::Disabled, "{t:?}");
    assert_eq!(t.skipped_events, 8, "{t:?}");
    assert!(t.last_error.as_deref().unwrap_or("").contains("event 7"), "{t:?}");
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.recorded, 12);
    assert_eq!(report.accounting.delivered + report.accounting.dropped, 12);
}
