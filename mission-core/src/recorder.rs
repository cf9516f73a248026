//! The [`Recorder`]: where agent threads put events.
//!
//! Each OS thread that records gets a bounded single-producer ring of its own (registered on
//! its first event), so producers never contend with each other and recording is a handful of
//! stores. One pipeline thread drains every ring (see [`Pipeline`](crate::Pipeline)). Threads
//! past [`RecorderConfig::max_producers`], and threads being torn down, share one bounded
//! queue instead. Every event is accounted for: `recorded == delivered + dropped + in_flight`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::config::{Backpressure, RecorderConfig};
use crate::control::Control;
use crate::event::Event;
use crate::health::{Accounting, SinkStatus};
use crate::ring::{self, Consumer, Producer, RingShared};
use crate::sync::Arc as RingArc;
use crate::sync::lock;

/// A cheap, cloneable handle that records events. `Send + Sync`; share it or clone it.
///
/// ```
/// use mission_core::{Event, EventBody, LogRecord, Pipeline, Symbol};
/// let pipeline = Pipeline::builder().start()?;
/// let recorder = pipeline.recorder();
/// recorder.record(Event::new(Symbol::intern("hello"), EventBody::Log(LogRecord::default())));
/// let report = pipeline.shutdown();
/// assert_eq!(report.accounting.delivered, 1);
/// # Ok::<(), mission_core::StartError>(())
/// ```
#[derive(Clone)]
pub struct Recorder {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.shared.id)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A [`Recorder`] that does not keep it alive; [`upgrade`](Self::upgrade) while it exists.
#[derive(Clone, Debug)]
pub struct WeakRecorder {
    shared: std::sync::Weak<Shared>,
}

impl WeakRecorder {
    /// The recorder, if it still exists.
    pub fn upgrade(&self) -> Option<Recorder> {
        self.shared.upgrade().map(|shared| Recorder { shared })
    }
}

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: RecorderConfig,
    /// Read on every `record`: kept on a cache line of its own, away from the counters the
    /// pipeline thread writes.
    pub(crate) closed: CachePadded<AtomicBool>,
    pub(crate) registry: Mutex<Registry>,
    /// Set when `registry.pending` has consumers for the pipeline to adopt.
    pub(crate) has_pending: AtomicBool,
    pub(crate) shared_queue: Mutex<SharedQueue>,
    /// Events handed to every sink; written only by the pipeline thread.
    pub(crate) delivered: CachePadded<AtomicU64>,
    pub(crate) dropped_after_shutdown: AtomicU64,
    pub(crate) dropped_thread_exit: AtomicU64,
    pub(crate) pipeline_thread: OnceLock<Thread>,
    pub(crate) control: Mutex<mpsc::Sender<Control>>,
    pub(crate) sinks: Mutex<Vec<Arc<SinkStatus>>>,
    /// When the pipeline last finished a pass over the buffers (ns since the epoch).
    pub(crate) last_pass_ns: AtomicU64,
    pub(crate) running: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) rings: Vec<RingArc<RingShared<Event>>>,
    pub(crate) pending: Vec<Consumer<Event>>,
    /// Totals of rings whose producer exited and that were drained and removed.
    pub(crate) retired_accepted: u64,
    pub(crate) retired_dropped_full: u64,
    pub(crate) retired_dropped_timeout: u64,
}

#[derive(Default)]
pub(crate) struct SharedQueue {
    pub(crate) queue: VecDeque<Event>,
    pub(crate) accepted: u64,
    pub(crate) dropped_full: u64,
    pub(crate) dropped_timeout: u64,
}

impl Shared {
    pub(crate) fn new(config: RecorderConfig, control: mpsc::Sender<Control>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config,
            closed: CachePadded::new(AtomicBool::new(false)),
            registry: Mutex::new(Registry::default()),
            has_pending: AtomicBool::new(false),
            shared_queue: Mutex::new(SharedQueue::default()),
            delivered: CachePadded::new(AtomicU64::new(0)),
            dropped_after_shutdown: AtomicU64::new(0),
            dropped_thread_exit: AtomicU64::new(0),
            pipeline_thread: OnceLock::new(),
            control: Mutex::new(control),
            sinks: Mutex::new(Vec::new()),
            last_pass_ns: AtomicU64::new(0),
            running: AtomicBool::new(false),
        }
    }

    /// Wakes the pipeline thread (cheap when it is not parked).
    #[inline]
    pub(crate) fn wake(&self) {
        if let Some(thread) = self.pipeline_thread.get() {
            thread.unpark();
        }
    }

    fn count_after_shutdown(&self) {
        self.dropped_after_shutdown.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn accounting(&self) -> Accounting {
        // Read `delivered` first: it only grows and never passes what was accepted, so the
        // difference below is never negative.
        let delivered = self.delivered.load(Ordering::Acquire);
        let (mut accepted, mut full, mut timeout) = {
            let registry = lock(&self.registry);
            let mut totals = (
                registry.retired_accepted,
                registry.retired_dropped_full,
                registry.retired_dropped_timeout,
            );
            for ring in &registry.rings {
                totals.0 += ring.accepted();
                totals.1 += ring.dropped_full();
                totals.2 += ring.dropped_timeout();
            }
            totals
        };
        {
            let queue = lock(&self.shared_queue);
            accepted += queue.accepted;
            full += queue.dropped_full;
            timeout += queue.dropped_timeout;
        }
        let after_shutdown = self.dropped_after_shutdown.load(Ordering::Acquire);
        let thread_exit = self.dropped_thread_exit.load(Ordering::Acquire);
        let dropped = full + timeout + after_shutdown + thread_exit;
        Accounting {
            recorded: accepted + dropped,
            delivered,
            dropped,
            in_flight: accepted.saturating_sub(delivered),
            dropped_buffer_full: full,
            dropped_block_timeout: timeout,
            dropped_after_shutdown: after_shutdown,
            dropped_thread_exit: thread_exit,
        }
    }

    /// Events sitting in buffers (accepted, not yet taken by the pipeline) and their capacity.
    pub(crate) fn buffer_fill(&self) -> (usize, u64, u64) {
        let (producers, mut fill, capacity) = {
            let registry = lock(&self.registry);
            let mut fill = 0;
            let mut capacity = 0;
            for ring in &registry.rings {
                fill += ring.accepted().saturating_sub(ring.taken());
                capacity += ring.capacity();
            }
            (registry.rings.len(), fill, capacity)
        };
        fill += lock(&self.shared_queue).queue.len() as u64;
        (producers, fill, capacity)
    }

    fn register_producer(self: &Arc<Self>) -> Option<Producer<Event>> {
        let mut registry = lock(&self.registry);
        if registry.rings.len() >= self.config.max_producers {
            return None;
        }
        let (producer, consumer) = ring::ring(self.config.ring_capacity);
        registry.rings.push(producer.shared().clone());
        registry.pending.push(consumer);
        self.has_pending.store(true, Ordering::Release);
        Some(producer)
    }

    /// The slow path for threads without a ring of their own.
    fn record_shared(&self, event: Event) -> bool {
        let deadline = match self.config.backpressure {
            Backpressure::DropNewest => None,
            Backpressure::Block { timeout } => Some(Instant::now() + timeout),
        };
        let mut backoff = Backoff::default();
        let mut event = Some(event);
        loop {
            {
                let mut queue = lock(&self.shared_queue);
                if queue.queue.len() < self.config.shared_capacity {
                    if let Some(event) = event.take() {
                        queue.queue.push_back(event);
                    }
                    queue.accepted += 1;
                    return true;
                }
                match deadline {
                    None => {
                        queue.dropped_full += 1;
                        drop(queue);
                        self.wake();
                        return false;
                    }
                    Some(deadline) if Instant::now() >= deadline => {
                        queue.dropped_timeout += 1;
                        return false;
                    }
                    Some(_) => {}
                }
            }
            self.wake();
            if self.closed.load(Ordering::Acquire) {
                self.count_after_shutdown();
                return false;
            }
            backoff.wait();
        }
    }
}

/// Spin, then yield, then sleep briefly: how a blocked producer waits for room.
#[derive(Default)]
struct Backoff {
    step: u32,
}

impl Backoff {
    fn wait(&mut self) {
        self.step += 1;
        if self.step <= 32 {
            std::hint::spin_loop();
        } else if self.step <= 64 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// This OS thread's rings, one per recorder it has recorded into (usually one).
struct ThreadProducers {
    entries: Vec<ProducerEntry>,
}

struct ProducerEntry {
    shared: Arc<Shared>,
    producer: Producer<Event>,
    half: u64,
}

thread_local! {
    static PRODUCERS: RefCell<ThreadProducers> = const { RefCell::new(ThreadProducers { entries: Vec::new() }) };
}

impl ProducerEntry {
    #[inline]
    fn push(&mut self, event: Event) -> bool {
        match self.producer.push(event) {
            Ok(()) => {
                // Once per `capacity` events (the producer's view of the fill only grows between
                // refreshes), nudge the pipeline so a busy thread's ring is drained early.
                if self.producer.len_upper_bound() == self.half {
                    self.shared.wake();
                }
                true
            }
            Err(event) => self.push_full(event),
        }
    }

    #[cold]
    fn push_full(&mut self, mut event: Event) -> bool {
        self.shared.wake();
        let timeout = match self.shared.config.backpressure {
            Backpressure::DropNewest => {
                self.producer.count_dropped_full();
                return false;
            }
            Backpressure::Block { timeout } => timeout,
        };
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::default();
        loop {
            backoff.wait();
            match self.producer.push(event) {
                Ok(()) => return true,
                Err(back) => event = back,
            }
            if self.shared.closed.load(Ordering::Acquire) {
                self.shared.count_after_shutdown();
                return false;
            }
            if Instant::now() >= deadline {
                self.producer.count_dropped_timeout();
                return false;
            }
            self.shared.wake();
        }
    }
}

impl ThreadProducers {
    /// [`push`](Self::push) that never waits and never counts a drop: `Ok(Err(event))` gives
    /// the event back when the ring is full; `Err(event)` when this thread cannot have a ring.
    #[allow(clippy::result_large_err)]
    fn try_push(&mut self, shared: &Arc<Shared>, event: Event) -> Result<Result<(), Event>, Event> {
        let index = match self.entries.iter().position(|e| Arc::ptr_eq(&e.shared, shared)) {
            Some(index) => index,
            None => {
                self.entries.retain(|e| !e.shared.closed.load(Ordering::Acquire));
                let Some(producer) = shared.register_producer() else {
                    return Err(event);
                };
                let half = (producer.shared().capacity() / 2).max(1);
                self.entries.push(ProducerEntry { shared: shared.clone(), producer, half });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        match entry.producer.push(event) {
            Ok(()) => {
                if entry.producer.len_upper_bound() == entry.half {
                    entry.shared.wake();
                }
                Ok(Ok(()))
            }
            Err(event) => {
                entry.shared.wake();
                Ok(Err(event))
            }
        }
    }

    /// Records into this thread's ring for `shared`; gives the event back when this thread
    /// cannot have a ring (too many producers).
    // Handing the event back by value (not boxed) keeps the hot path allocation-free.
    #[allow(clippy::result_large_err)]
    #[inline]
    fn push(&mut self, shared: &Arc<Shared>, event: Event) -> Result<bool, Event> {
        // Comparing the pointers reads no shared memory.
        if let Some(first) = self.entries.first_mut()
            && Arc::ptr_eq(&first.shared, shared)
        {
            return Ok(first.push(event));
        }
        self.push_slow(shared, event)
    }

    #[cold]
    #[allow(clippy::result_large_err)]
    fn push_slow(&mut self, shared: &Arc<Shared>, event: Event) -> Result<bool, Event> {
        if let Some(index) = self.entries.iter().position(|e| Arc::ptr_eq(&e.shared, shared)) {
            self.entries.swap(0, index);
            return Ok(self.entries[0].push(event));
        }
        // Forget rings of recorders that were shut down.
        self.entries.retain(|e| !e.shared.closed.load(Ordering::Acquire));
        let Some(producer) = shared.register_producer() else {
            return Err(event);
        };
        let half = (producer.shared().capacity() / 2).max(1);
        self.entries.insert(0, ProducerEntry { shared: shared.clone(), producer, half });
        Ok(self.entries[0].push(event))
    }
}

impl Recorder {
    /// Records `event`. Never blocks under `DropNewest`, never panics, never allocates in the
    /// common case (this thread already has its ring): O(1), a few stores.
    ///
    /// Returns `true` if the event was accepted, `false` if it was dropped (and counted).
    #[inline]
    // The event travels by value (never boxed) so recording allocates nothing.
    #[allow(clippy::result_large_err)]
    pub fn record(&self, event: Event) -> bool {
        if self.shared.closed.load(Ordering::Relaxed) {
            self.shared.count_after_shutdown();
            return false;
        }
        let shared = &self.shared;
        let pushed = PRODUCERS.try_with(move |producers| match producers.try_borrow_mut() {
            Ok(mut producers) => producers.push(shared, event),
            Err(_) => Err(event),
        });
        match pushed {
            Ok(Ok(accepted)) => accepted,
            // No ring for this thread (too many producers): the shared queue.
            Ok(Err(event)) => shared.record_shared(event),
            // This thread's locals are being destroyed, and the event with them: count it.
            Err(_) => {
                shared.dropped_thread_exit.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records `event` if there is room now, else gives it back, counting nothing: for a
    /// caller that holds events it has promised to deliver (the OTLP receiver acknowledges a
    /// request only once every event of it was accepted) and waits or refuses new work
    /// instead of dropping. Never blocks, whatever the [`Backpressure`]. After shutdown every
    /// event comes back ([`is_closed`](Self::is_closed) tells).
    ///
    /// # Errors
    /// The event, when this thread's buffer is full or the recorder is closed.
    #[allow(clippy::result_large_err)]
    pub fn try_record(&self, event: Event) -> Result<(), Event> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(event);
        }
        // The event stays in `slot` unless this thread's ring took it.
        let mut slot = Some(event);
        let pushed = PRODUCERS
            .try_with(|producers| {
                let mut producers = producers.try_borrow_mut().ok()?;
                let event = slot.take()?;
                Some(producers.try_push(shared, event))
            })
            .ok()
            .flatten();
        let event = match (pushed, slot) {
            (Some(Ok(result)), _) => return result,
            // No ring for this thread (too many producers), or its locals are going away:
            // the shared queue.
            (Some(Err(event)), _) | (None, Some(event)) => event,
            // The closure took the event only to return `Some`.
            (None, None) => return Ok(()),
        };
        let mut queue = lock(&shared.shared_queue);
        if queue.queue.len() < shared.config.shared_capacity {
            queue.queue.push_back(event);
            queue.accepted += 1;
            drop(queue);
            Ok(())
        } else {
            drop(queue);
            shared.wake();
            Err(event)
        }
    }

    /// A handle that does not keep the recorder alive (for process-wide hooks).
    pub fn downgrade(&self) -> WeakRecorder {
        WeakRecorder { shared: Arc::downgrade(&self.shared) }
    }

    /// Exact counts of what happened to every recorded event, right now.
    pub fn accounting(&self) -> Accounting {
        self.shared.accounting()
    }

    /// Whether the recorder was shut down (further events are dropped and counted).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The configuration this recorder runs with.
    pub fn config(&self) -> &RecorderConfig {
        &self.shared.config
    }
}
