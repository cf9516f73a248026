//! The feed: what the dashboard has seen arrive, live from the hub or polled from a store.
//!
//! One [`Feed`] per server keeps the live counters (events per tenant, arrivals per second,
//! threads active in the last minute), a bounded ring of the most recent rows (live mode: the
//! events the store may not hold yet) and a bounded broadcast channel every stream client reads
//! from. Nothing in it grows without bound: the ring, the tenants, the active threads and the
//! channel all have caps, and what a slow reader misses is counted, never waited for.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use mission_store::{EventFile, Store, StoreFile};
use tokio::sync::broadcast;

use super::row::Row;
use mission_core::Subscription;

/// Most recent rows the live ring keeps (the events the store may not have yet).
pub(crate) const RING_ROWS: usize = 20_000;
/// Rows a stream client may fall behind before it loses the oldest (counted as `lagged`).
pub(crate) const STREAM_BUFFER: usize = 4_096;
/// Tenants counted separately; events of further tenants are counted under the last one.
const MAX_TENANTS: usize = 1_024;
/// Threads remembered as active at most.
const MAX_ACTIVE_THREADS: usize = 100_000;
/// Store files read per poll at most (the rest wait for the next poll).
const FILES_PER_POLL: usize = 8;
/// Rows one poll streams at most (further rows are counted, and counted as lagged).
const ROWS_PER_POLL: usize = 20_000;
/// Seconds of arrivals the event rate is computed over.
const RATE_SECONDS: u64 = 10;

fn wall_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Arrivals of one tenant.
#[derive(Default)]
struct Counters {
    /// Events counted: streamed or not. A streamed row's place in this count is its
    /// [`Streamed::tenant_seq`].
    events: u64,
    /// Events of this tenant lost before they reached the feed (the hub subscription fell
    /// behind).
    lagged: u64,
    /// Arrivals per wall-clock second, by `second % 16`, with the second they count.
    seconds: [(u64, u64); 16],
}

impl Counters {
    fn add(&mut self, n: u64, now_s: u64) {
        self.events += n;
        let slot = &mut self.seconds[(now_s % 16) as usize];
        if slot.0 != now_s {
            *slot = (now_s, 0);
        }
        slot.1 += n;
    }

    fn recent(&self, now_s: u64) -> u64 {
        self.seconds
            .iter()
            .filter(|(s, _)| *s + RATE_SECONDS > now_s && *s <= now_s)
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Default)]
struct State {
    ring: VecDeque<Arc<Row>>,
    tenants: HashMap<String, Counters>,
    /// Thread id → (tenant, wall second last seen).
    active: HashMap<String, (String, u64)>,
    /// Running latency histograms per operation (`/metrics`).
    latency: super::metrics::Latency,
}

/// The live counters as the overview and the stream's `stats` event show them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct FeedStats {
    pub events_total: u64,
    pub event_rate: f64,
    pub active_threads: u64,
    pub lagged: u64,
}

/// A row as the feed streams it, with its place among its tenant's events.
#[derive(Clone, Debug)]
pub(crate) struct Streamed {
    pub row: Arc<Row>,
    /// The row's place among the events of its tenant the feed counted (1, 2, …; `0` for a
    /// tenant counted in the shared bucket past [`MAX_TENANTS`]): a stream client scoped to
    /// one tenant counts the gaps as the events of its tenant it missed, without learning
    /// anything of the other tenants' rows (see [`MissedOwn`]).
    pub tenant_seq: u64,
}

/// The events of one tenant a stream client missed, from the gaps in
/// [`Streamed::tenant_seq`]: rows the feed counted but did not stream (a store poll's
/// overflow) and rows the client fell too far behind to receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MissedOwn {
    last: Option<u64>,
    /// Events missed so far.
    pub missed: u64,
}

impl MissedOwn {
    /// A row of the client's tenant arrived with `tenant_seq`.
    pub(crate) fn seen(&mut self, tenant_seq: u64) {
        if tenant_seq == 0 {
            return;
        }
        if let Some(last) = self.last {
            self.missed += tenant_seq.saturating_sub(last + 1);
        }
        self.last = Some(self.last.map_or(tenant_seq, |l| l.max(tenant_seq)));
    }
}

/// What the dashboard has seen arrive (see the module docs).
pub(crate) struct Feed {
    state: Mutex<State>,
    tx: broadcast::Sender<Streamed>,
    /// Rows lost before they reached the feed (the hub subscription fell behind, or a store
    /// poll had more than it streams), every tenant's: what a principal of every tenant sees.
    lagged: AtomicU64,
    keep_ring: bool,
}

impl Feed {
    /// A feed; `keep_ring` keeps the recent rows (live mode, where the store lags behind).
    pub(crate) fn new(keep_ring: bool) -> Self {
        let (tx, _) = broadcast::channel(STREAM_BUFFER);
        Self { state: Mutex::default(), tx, lagged: AtomicU64::new(0), keep_ring }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new stream reader, from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Streamed> {
        self.tx.subscribe()
    }

    /// Counts `n` events of `tenant` that are not streamed (a store's events at start).
    pub(crate) fn preload(&self, tenant: &str, n: u64) {
        let mut state = self.lock();
        counters(&mut state, tenant).events += n;
    }

    /// Rows arrived: counted, kept in the ring, streamed.
    pub(crate) fn ingest(&self, rows: Vec<Arc<Row>>) {
        if rows.is_empty() {
            return;
        }
        let now_s = wall_seconds();
        let mut streamed = Vec::with_capacity(rows.len());
        {
            let mut state = self.lock();
            for row in &rows {
                let own =
                    state.tenants.contains_key(&row.tenant) || state.tenants.len() < MAX_TENANTS;
                let counter = counters(&mut state, &row.tenant);
                counter.add(1, now_s);
                let tenant_seq = if own { counter.events } else { 0 };
                state.latency.record(row);
                streamed.push(Streamed { row: row.clone(), tenant_seq });
                if let Some(t) = &row.thread_id {
                    if let Some(seen) = state.active.get_mut(t.as_str()) {
                        seen.1 = now_s;
                    } else {
                        if state.active.len() >= MAX_ACTIVE_THREADS {
                            state.active.retain(|_, (_, s)| *s + 60 > now_s);
                        }
                        if state.active.len() < MAX_ACTIVE_THREADS {
                            state.active.insert(t.clone(), (row.tenant.clone(), now_s));
                        }
                    }
                }
                if self.keep_ring {
                    if state.ring.len() == RING_ROWS {
                        state.ring.pop_front();
                    }
                    state.ring.push_back(row.clone());
                }
            }
        }
        for row in streamed {
            // No reader: nobody to send to, which is fine.
            let _ = self.tx.send(row);
        }
    }

    /// Counts rows lost before they reached the feed, of tenants it does not know (a store
    /// poll's overflow: those are counted per tenant as events not streamed, which tenant
    /// stream clients see as gaps).
    pub(crate) fn add_lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` events of `tenant` lost before they reached the feed.
    pub(crate) fn add_lagged_for(&self, tenant: &str, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
        counters(&mut self.lock(), tenant).lagged += n;
    }

    /// The recent rows (live mode), oldest first.
    pub(crate) fn ring(&self) -> Vec<Arc<Row>> {
        self.lock().ring.iter().cloned().collect()
    }

    /// The running latency histograms `scope` may see (`None`: every tenant's).
    pub(crate) fn latency(
        &self,
        scope: Option<&str>,
    ) -> Vec<((String, String, String), super::metrics::OperationLatency)> {
        self.lock().latency.snapshot(scope)
    }

    /// The counters `scope` may see (`None`: every tenant).
    pub(crate) fn stats(&self, scope: Option<&str>) -> FeedStats {
        let now_s = wall_seconds();
        let mut state = self.lock();
        state.active.retain(|_, (_, s)| *s + 60 > now_s);
        let visible = |t: &str| scope.is_none_or(|s| s == t);
        let (events, recent, lagged) = state
            .tenants
            .iter()
            .filter(|(t, _)| visible(t))
            .fold((0, 0, 0), |(e, r, l), (_, c)| (e + c.events, r + c.recent(now_s), l + c.lagged));
        let active = state.active.values().filter(|(t, _)| visible(t)).count();
        FeedStats {
            events_total: events,
            event_rate: recent as f64 / RATE_SECONDS as f64,
            active_threads: active as u64,
            // A tenant's principal: its own tenant's losses only, never a number that moves
            // with another tenant's activity.
            lagged: if scope.is_none() { self.lagged.load(Ordering::Relaxed) } else { lagged },
        }
    }
}

fn counters<'s>(state: &'s mut State, tenant: &str) -> &'s mut Counters {
    if !state.tenants.contains_key(tenant) && state.tenants.len() >= MAX_TENANTS {
        // Past the cap, new tenants are counted together under the empty name.
        return state.tenants.entry(String::new()).or_default();
    }
    state.tenants.entry(tenant.to_owned()).or_default()
}

/// Feeds `feed` from a hub subscription until the hub shuts down.
pub(crate) async fn follow_hub(subscription: Subscription, feed: Arc<Feed>) {
    while let Some(first) = subscription.recv().await {
        let mut rows = vec![Arc::new(Row::from_event(&first))];
        while rows.len() < 1024 {
            match subscription.try_recv() {
                Some(e) => rows.push(Arc::new(Row::from_event(&e))),
                None => break,
            }
        }
        feed.ingest(rows);
        for (tenant, n) in subscription.take_lagged_by_tenant() {
            feed.add_lagged_for(tenant.as_str(), n);
        }
    }
}

/// Follows a store on disk: the files it has not read yet, a few per poll.
pub(crate) struct StorePoller {
    root: PathBuf,
    seen: HashSet<PathBuf>,
}

impl StorePoller {
    /// Starts after what the store holds now: its files are counted (from their footers), not
    /// streamed.
    pub(crate) fn start(root: &Path, feed: &Feed) -> Self {
        let mut seen = HashSet::new();
        if let Ok(store) = Store::open(root) {
            for file in store.files() {
                if let Ok(rows) = footer_rows(file) {
                    feed.preload(&file.partition.tenant, rows);
                }
                seen.insert(file.path.clone());
            }
        }
        Self { root: root.to_path_buf(), seen }
    }

    /// Reads up to [`FILES_PER_POLL`] new files and feeds their rows, oldest first.
    pub(crate) fn poll(&mut self, feed: &Feed) {
        let Ok(store) = Store::open(&self.root) else { return };
        let present: HashSet<&Path> = store.files().iter().map(|f| f.path.as_path()).collect();
        self.seen.retain(|p| present.contains(p.as_path()));
        let mut rows = Vec::new();
        let mut over = 0u64;
        let new: Vec<_> = store
            .files()
            .iter()
            .filter(|f| !self.seen.contains(&f.path))
            .take(FILES_PER_POLL)
            .collect();
        for file in new {
            self.seen.insert(file.path.clone());
            let Ok(read) = read_file(file) else { continue };
            for row in read {
                if rows.len() < ROWS_PER_POLL {
                    rows.push(row);
                } else {
                    // Counted, not streamed.
                    feed.preload(&row.tenant, 1);
                    over += 1;
                }
            }
        }
        feed.add_lagged(over);
        rows.sort_by_key(|r| r.time_ns);
        feed.ingest(rows.into_iter().map(Arc::new).collect());
    }
}

/// Rows in a file, from its footer (the store checks the schema version).
fn footer_rows(file: &StoreFile) -> Result<u64, mission_store::Error> {
    Ok(EventFile::open(file)?.num_rows())
}

/// Every row of one finalized file, with its tenant from the partition path.
fn read_file(file: &StoreFile) -> Result<Vec<Row>, mission_store::Error> {
    EventFile::open(file)?.rows(None)?.map(|row| row.map(Row::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tenant: &str, thread: &str) -> Arc<Row> {
        Arc::new(Row {
            tenant: tenant.into(),
            thread_id: Some(thread.into()),
            kind: "log".into(),
            ..Row::default()
        })
    }

    #[test]
    fn counters_are_scoped_and_the_ring_is_bounded() {
        let feed = Feed::new(true);
        let mut reader = feed.subscribe();
        feed.ingest(vec![row("a", "t1"), row("a", "t1"), row("b", "t2")]);
        assert_eq!(feed.stats(None).events_total, 3);
        assert_eq!(feed.stats(Some("a")).events_total, 2);
        assert_eq!(feed.stats(Some("a")).active_threads, 1);
        assert_eq!(feed.stats(Some("c")).events_total, 0);
        assert!(feed.stats(None).event_rate > 0.0);
        assert_eq!(reader.try_recv().map(|r| r.row.tenant.clone()).ok(), Some("a".into()));
        feed.ingest((0..RING_ROWS + 5).map(|_| row("a", "t3")).collect());
        assert_eq!(feed.ring().len(), RING_ROWS);
        // The reader fell more than its buffer behind: told how many it lost.
        let mut lost = 0;
        loop {
            match reader.try_recv() {
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(n)) => lost += n,
                Err(_) => break,
            }
        }
        assert!(lost > 0);
    }

    #[test]
    fn a_tenant_is_told_its_own_losses_only() {
        let feed = Feed::new(false);
        let mut reader = feed.subscribe();
        feed.add_lagged_for("b", 500);
        feed.add_lagged_for("a", 2);
        assert_eq!(feed.stats(None).lagged, 502, "every tenant's, for a principal of all");
        assert_eq!(feed.stats(Some("a")).lagged, 2, "b's losses do not show to a");
        assert_eq!(feed.stats(Some("c")).lagged, 0);
        // a's rows are numbered among a's only: b's rows in between leave no gap.
        feed.ingest(vec![row("a", "t1"), row("b", "t2"), row("b", "t2"), row("a", "t1")]);
        // Two of a's events counted but not streamed (a store poll's overflow), then one more.
        feed.preload("a", 2);
        feed.ingest(vec![row("b", "t2"), row("a", "t1")]);
        let mut missed = MissedOwn::default();
        let mut seqs = Vec::new();
        while let Ok(s) = reader.try_recv() {
            if s.row.tenant == "a" {
                seqs.push(s.tenant_seq);
                missed.seen(s.tenant_seq);
            }
        }
        assert_eq!(seqs, [1, 2, 5]);
        assert_eq!(missed.missed, 2, "a missed its own two, and nothing of b's");
    }

    #[test]
    fn gaps_in_a_tenants_sequence_count_what_a_client_missed() {
        let mut missed = MissedOwn::default();
        for seq in [7, 8, 12, 12, 13, 0, 20] {
            missed.seen(seq);
        }
        // The first row starts the count; 9-11 and 14-19 were missed; 0 (unnumbered) is ignored.
        assert_eq!(missed.missed, 3 + 6);
    }
}
