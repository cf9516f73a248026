//! Flushing on panic: a process that panics still delivers what it recorded.
//!
//! One process-wide panic hook (installed once, chained before the previous hook) flushes every
//! live [`MissionControl`](crate::MissionControl) for at most two seconds. It holds only weak
//! handles, so it keeps nothing alive and its list never outgrows the live instances.

use std::sync::{Mutex, Once};
use std::time::Duration;

use mission_core::WeakRecorder;

static RECORDERS: Mutex<Vec<WeakRecorder>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Registers `recorder` to be flushed if any thread panics.
pub(crate) fn flush_on_panic(recorder: WeakRecorder) {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let live: Vec<_> = match RECORDERS.try_lock() {
                Ok(list) => list.iter().filter_map(WeakRecorder::upgrade).collect(),
                Err(_) => Vec::new(),
            };
            for recorder in live {
                // From a sink (the pipeline thread) this refuses instead of deadlocking.
                let _ = recorder.flush_timeout(Duration::from_secs(2));
            }
        }));
    });
    let mut list = RECORDERS.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|w| w.upgrade().is_some_and(|r| !r.is_closed()));
    list.push(recorder);
}
