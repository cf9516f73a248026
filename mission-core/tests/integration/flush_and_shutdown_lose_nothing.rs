use std::sync::{Arc, Mutex};
use std::time::Duration;

use mission_core::{Event, FlushError, FnSink, Pipeline};

use crate::numbered;

type Seen = Arc<Mutex<Vec<(u64, u64)>>>;

fn recording_sink(
    seen: Seen,
) -> FnSink<impl FnMut(&[Event]) -> Result<(), mission_core::SinkError> + Send> {
    FnSink::new("seen", move |batch: &[Event]| {
        let mut seen = seen.lock().expect("lock");
        seen.extend(batch.iter().map(|e| (e.parent_span_id.0, e.span_id.0)));
        Ok(())
    })
}

#[test]
fn flush_delivers_everything_recorded_before_it() {
    let seen: Seen = Arc::default();
    // A long drain interval: only flush can make the events arrive quickly.
    let pipeline = Pipeline::builder()
        .with_drain_interval(Duration::from_secs(3600))
        .with_sink(recording_sink(seen.clone()))
        .start()
        .expect("start");
    let recorders: Vec<_> = (0..4).map(|_| pipeline.recorder()).collect();
    std::thread::scope(|scope| {
        for (t, recorder) in recorders.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..500 {
                    recorder.record(numbered(t as u32, n));
                }
            });
        }
    });
    for round in 0..5u64 {
        pipeline.recorder().record(numbered(99, round));
        pipeline.flush().expect("flush");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len() as u64, 2_000 + round + 1, "flush returned before delivery");
        assert_eq!(seen.last(), Some(&(99, round)));
    }
    // Per-producer order is preserved.
    let seen = seen.lock().expect("lock").clone();
    for t in 0..4u64 {
        let mine: Vec<u64> = seen.iter().filter(|(p, _)| *p == t).map(|(_, n)| *n).collect();
        assert_eq!(mine, (0..500).collect::<Vec<_>>());
    }
}

#[test]
fn dropping_the_pipeline_delivers_everything() {
    let seen: Seen = Arc::default();
    let pipeline = Pipeline::builder()
        .with_drain_interval(Duration::from_secs(3600))
        .with_sink(recording_sink(seen.clone()))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for n in 0..10_000 {
        recorder.record(numbered(0, n));
    }
    let recorded = recorder.accounting().recorded;
    drop(pipeline);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len() as u64, recorded - recorder.accounting().dropped);
    assert_eq!(recorder.accounting().in_flight, 0);
    assert_eq!(recorder.flush(), Err(FlushError::Closed));
}

#[test]
fn flush_from_a_sink_is_refused_not_deadlocked() {
    let result: Arc<Mutex<Option<Result<(), FlushError>>>> = Arc::default();
    let slot = result.clone();
    let holder: Arc<Mutex<Option<mission_core::Recorder>>> = Arc::default();
    let inner = holder.clone();
    let pipeline = Pipeline::builder()
        .with_sink(FnSink::new("flusher", move |_batch: &[Event]| {
            if let Some(recorder) = inner.lock().expect("lock").as_ref() {
                *slot.lock().expect("lock") = Some(recorder.flush());
            }
            Ok(())
        }))
        .start()
        .expect("start");
    *holder.lock().expect("lock") = Some(pipeline.recorder());
    pipeline.recorder().record(numbered(0, 0));
    pipeline.flush().expect("flush");
    assert_eq!(*result.lock().expect("lock"), Some(Err(FlushError::OnPipelineThread)));
    holder.lock().expect("lock").take();
}

/// A sink that only sends events elsewhere: its `flush` waits for a backend (here, until the
/// test releases it) and its `flush_for_reads` returns at once, as the OTLP exporter does.
struct Exporter {
    consumed: Arc<Mutex<u64>>,
    backend: std::sync::mpsc::Receiver<()>,
}

impl mission_core::Sink for Exporter {
    fn consume(&mut self, batch: &[Event]) -> Result<(), mission_core::SinkError> {
        *self.consumed.lock().expect("lock") += batch.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), mission_core::SinkError> {
        self.backend.recv().map_err(|_| mission_core::SinkError::new("backend gone"))
    }

    fn flush_for_reads(&mut self) -> Result<(), mission_core::SinkError> {
        Ok(())
    }
}

#[test]
fn a_flush_for_reads_delivers_everything_without_waiting_for_an_exporter() {
    let stored: Seen = Arc::default();
    let store = recording_sink(stored.clone());
    let consumed = Arc::new(Mutex::new(0));
    let (release, backend) = std::sync::mpsc::channel();
    let pipeline = Pipeline::builder()
        .with_sink(store)
        .with_sink(Exporter { consumed: consumed.clone(), backend })
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    for n in 0..100 {
        recorder.record(numbered(0, n));
    }
    // The exporter's flush would wait until released: a flush for reads does not call it.
    // (Generous: a flush that waited on the exporter would never return before the release.)
    recorder.flush_for_reads(Duration::from_secs(60)).expect("flushed for reads");
    assert_eq!(stored.lock().expect("lock").len(), 100, "every event reached the store");
    assert_eq!(*consumed.lock().expect("lock"), 100, "and the exporter's queue");
    // A full flush waits for the exporter: it times out while the backend holds.
    let held = recorder.flush_timeout(Duration::from_millis(200));
    assert!(matches!(held, Err(FlushError::Timeout(_))), "{held:?}");
    release.send(()).expect("release");
    release.send(()).expect("release the shutdown's flush too");
    drop(pipeline);
}
