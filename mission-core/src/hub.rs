//! The live hub: subscribers in the same process receive events as the pipeline drains them.
//!
//! Each subscriber has a bounded queue of its own. A slow subscriber loses its own oldest events
//! (counted in [`Subscription::lagged`], and by tenant in
//! [`Subscription::take_lagged_by_tenant`]); it never slows the pipeline or another subscriber.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::{Event, Sink, SinkError, Symbol};

/// Tenants whose lost events a subscription counts apart; the losses of further tenants are
/// counted together under the empty tenant.
pub const MAX_LAGGED_TENANTS: usize = 1_024;

/// Longer timeouts wait this long (about 136 years), so a deadline never overflows.
const LONGEST_WAIT: Duration = Duration::from_secs(u32::MAX as u64);

use tokio::sync::Notify;

/// Which events a subscriber wants. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this agent's events.
    pub agent: Option<String>,
    /// Only these kinds (`llm_call`, `tool_call`, `log`, …).
    pub kinds: Vec<String>,
    /// Only this thread's events (32 hex digits).
    pub thread_id: Option<String>,
    /// Only this tenant's events: a subscriber scoped to a tenant never sees another's.
    pub tenant: Option<String>,
}

impl EventFilter {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.agent.as_ref().is_none_or(|a| event.agent.as_str() == a)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == event.kind().as_str()))
            && self.thread_id.as_ref().is_none_or(|t| event.thread_id.to_string() == *t)
            && self.tenant.as_ref().is_none_or(|t| event.tenant.as_str() == t)
    }
}

struct Queue {
    filter: EventFilter,
    capacity: usize,
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
    notify: Notify,
    lagged: AtomicU64,
    /// `lagged` by tenant, since the last [`Subscription::take_lagged_by_tenant`].
    lagged_by_tenant: Mutex<HashMap<Symbol, u64>>,
    closed: AtomicBool,
}

impl Queue {
    /// Counts a lost event of `tenant`.
    fn lost(&self, tenant: Symbol) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
        let mut by_tenant = self.lagged_by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        let key = if by_tenant.contains_key(&tenant) || by_tenant.len() < MAX_LAGGED_TENANTS {
            tenant
        } else {
            Symbol::EMPTY
        };
        *by_tenant.entry(key).or_default() += 1;
    }
}

fn lock(q: &Mutex<VecDeque<Event>>) -> MutexGuard<'_, VecDeque<Event>> {
    q.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct HubInner {
    subscribers: Mutex<Vec<Weak<Queue>>>,
    closed: AtomicBool,
}

/// The hub: a [`Sink`] side that the pipeline feeds, and [`subscribe`](LiveHub::subscribe).
#[derive(Clone, Default)]
pub struct LiveHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub").finish_non_exhaustive()
    }
}

impl LiveHub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sink that feeds this hub; add it to the pipeline.
    pub fn sink(&self) -> HubSink {
        HubSink { inner: self.inner.clone() }
    }

    /// A new subscription that keeps at most `capacity` undelivered events.
    pub fn subscribe(&self, filter: EventFilter, capacity: usize) -> Subscription {
        let queue = Arc::new(Queue {
            filter,
            capacity: capacity.max(1),
            events: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            notify: Notify::new(),
            lagged: AtomicU64::new(0),
            lagged_by_tenant: Mutex::default(),
            closed: AtomicBool::new(self.inner.closed.load(Ordering::Acquire)),
        });
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&queue));
        Subscription { queue }
    }

    /// Subscriptions alive now.
    pub fn subscribers(&self) -> usize {
        let subs = self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.iter().filter(|w| w.strong_count() > 0).count()
    }
}

/// The pipeline's side of a [`LiveHub`].
pub struct HubSink {
    inner: Arc<HubInner>,
}

impl Sink for HubSink {
    fn name(&self) -> &str {
        "live-hub"
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let queues: Vec<Arc<Queue>> = {
            let mut subs = self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            subs.retain(|w| w.strong_count() > 0);
            subs.iter().filter_map(Weak::upgrade).collect()
        };
        for q in queues {
            let mut pushed = false;
            {
                let mut events = lock(&q.events);
                // Under the queue's lock, so nothing is queued after `close` emptied it.
                if q.closed.load(Ordering::Acquire) {
                    continue;
                }
                for e in batch.iter().filter(|e| q.filter.matches(e)) {
                    if events.len() == q.capacity
                        && let Some(lost) = events.pop_front()
                    {
                        q.lost(lost.tenant);
                    }
                    events.push_back(e.clone());
                    pushed = true;
                }
            }
            if pushed {
                q.ready.notify_all();
                q.notify.notify_one();
            }
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.inner.closed.store(true, Ordering::Release);
        let subs = self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for q in subs.iter().filter_map(Weak::upgrade) {
            q.closed.store(true, Ordering::Release);
            q.ready.notify_all();
            q.notify.notify_one();
        }
        Ok(())
    }
}

/// One subscriber's stream of events.
pub struct Subscription {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("lagged", &self.lagged()).finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        lock(&self.queue.events).pop_front()
    }

    /// Waits (blocking this thread) up to `timeout` for the next event; `None` on timeout or
    /// once the hub has shut down and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.wait_while_empty(timeout).pop_front()
    }

    /// The queue, once an event waits in it, the subscription is closed, or `timeout` passed.
    fn wait_while_empty(&self, timeout: Duration) -> MutexGuard<'_, VecDeque<Event>> {
        let deadline = Instant::now() + timeout.min(LONGEST_WAIT);
        let mut events = lock(&self.queue.events);
        loop {
            let now = Instant::now();
            if !events.is_empty() || self.queue.closed.load(Ordering::Acquire) || now >= deadline {
                return events;
            }
            events = self
                .queue
                .ready
                .wait_timeout(events, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits for the next event; `None` once the hub has shut down and the queue is empty.
    pub async fn recv(&self) -> Option<Event> {
        loop {
            let notified = self.queue.notify.notified();
            if let Some(e) = self.try_recv() {
                return Some(e);
            }
            if self.queue.closed.load(Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }

    /// Waits (blocking this thread) up to `timeout` until an event is waiting or the
    /// subscription is closed, without taking the event; returns whether either happened.
    /// For a waker that must not take events out of order from the thread that reads them.
    pub fn wait(&self, timeout: Duration) -> bool {
        !self.wait_while_empty(timeout).is_empty() || self.queue.closed.load(Ordering::Acquire)
    }

    /// Ends this subscription: undelivered events are discarded, nothing more is queued, and
    /// every waiter (`recv`, `recv_timeout`, `wait`) returns at once. Idempotent.
    pub fn close(&self) {
        {
            let mut events = lock(&self.queue.events);
            self.queue.closed.store(true, Ordering::Release);
            events.clear();
            events.shrink_to_fit();
        }
        self.queue.ready.notify_all();
        self.queue.notify.notify_one();
    }

    /// Whether no more events will come: [`close`](Self::close) was called or the hub shut
    /// down. Events queued before the hub shut down can still be received.
    pub fn is_closed(&self) -> bool {
        self.queue.closed.load(Ordering::Acquire)
    }

    /// Events waiting to be received.
    pub fn pending(&self) -> usize {
        lock(&self.queue.events).len()
    }

    /// The most events kept waiting; older ones are dropped (counted in
    /// [`lagged`](Self::lagged)) to make room.
    pub fn capacity(&self) -> usize {
        self.queue.capacity
    }

    /// Events this subscriber lost because it fell more than its capacity behind.
    pub fn lagged(&self) -> u64 {
        self.queue.lagged.load(Ordering::Relaxed)
    }

    /// The events this subscriber lost since the last call, by tenant (past
    /// [`MAX_LAGGED_TENANTS`] tenants, the others' together under the empty tenant): what a
    /// server showing one tenant's principal its losses needs, since [`lagged`](Self::lagged)
    /// counts every tenant's.
    pub fn take_lagged_by_tenant(&self) -> Vec<(Symbol, u64)> {
        let mut by_tenant = self.queue.lagged_by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        by_tenant.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventBody, LogRecord, MetricKind, MetricPoint};

    fn log_of(tenant: &str) -> Event {
        let mut e = Event::new(Symbol::intern("log"), EventBody::Log(LogRecord::default()));
        e.tenant = Symbol::intern(tenant);
        e
    }

    #[test]
    fn lost_events_are_counted_by_tenant_too() {
        let hub = LiveHub::new();
        let mut sink = hub.sink();
        let sub = hub.subscribe(EventFilter::all(), 2);
        let batch: Vec<Event> =
            ["acme", "globex", "globex", "globex", "acme"].iter().map(|t| log_of(t)).collect();
        sink.consume(&batch).expect("consume");
        // Capacity 2: the first three were pushed out, the last two wait.
        assert_eq!(sub.lagged(), 3);
        let mut lost = sub.take_lagged_by_tenant();
        lost.sort();
        let mut expected = vec![(Symbol::intern("acme"), 1), (Symbol::intern("globex"), 2)];
        expected.sort();
        assert_eq!(lost, expected);
        assert!(sub.take_lagged_by_tenant().is_empty(), "taken");
        assert_eq!(sub.lagged(), 3, "the total stays");
    }

    fn metric(tenant: &str, name: &str) -> Event {
        let mut e = Event::new(
            Symbol::intern(name),
            EventBody::Metric(MetricPoint {
                kind: MetricKind::Counter,
                value: 1.0,
                unit: Symbol::EMPTY,
            }),
        );
        e.tenant = Symbol::intern(tenant);
        e
    }

    #[test]
    fn a_tenant_filter_passes_that_tenant_only() {
        let hub = LiveHub::new();
        let acme =
            hub.subscribe(EventFilter { tenant: Some("acme".into()), ..EventFilter::all() }, 8);
        let all = hub.subscribe(EventFilter::all(), 8);
        let mut sink = hub.sink();
        sink.consume(&[metric("acme", "a"), metric("globex", "g"), metric("acme", "b")]).unwrap();
        let names = |s: &Subscription| {
            std::iter::from_fn(|| s.try_recv()).map(|e| e.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(names(&acme), ["a", "b"]);
        assert_eq!(names(&all), ["a", "g", "b"]);
    }

    #[test]
    fn wait_sees_an_event_without_taking_it_and_close_wakes_and_discards() {
        let hub = LiveHub::new();
        let sub = hub.subscribe(EventFilter::all(), 2);
        assert!(!sub.wait(Duration::ZERO));
        let mut sink = hub.sink();
        sink.consume(&[metric("t", "1"), metric("t", "2"), metric("t", "3")]).unwrap();
        assert!(sub.wait(Duration::ZERO));
        assert_eq!((sub.pending(), sub.capacity(), sub.lagged()), (2, 2, 1));
        assert_eq!(sub.try_recv().map(|e| e.name.as_str()), Some("2"));

        let waiter = std::thread::scope(|s| {
            let sub = &sub;
            let handle = s.spawn(move || {
                // Takes "3", then waits until the close below wakes it.
                let first = sub.recv_timeout(Duration::from_secs(3600)).map(|e| e.name.as_str());
                (first, sub.recv_timeout(Duration::from_secs(3600)).is_none())
            });
            while sub.pending() > 0 {
                std::thread::yield_now();
            }
            sub.close();
            handle.join().unwrap()
        });
        assert_eq!(waiter, (Some("3"), true));
        assert!(sub.is_closed());
        sink.consume(&[metric("t", "4")]).unwrap();
        assert_eq!(sub.pending(), 0, "a closed subscription queues nothing");
        assert!(sub.wait(Duration::MAX), "wait returns at once when closed (no overflow)");
        assert!(sub.recv_timeout(Duration::MAX).is_none());
    }
}
