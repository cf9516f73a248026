//! In-flight spans: work that hangs is visible before it ends.
//!
//! Every SDK span registers when it starts and deregisters when it ends, in a sharded table
//! (one uncontended lock each way, no allocation once the table has grown to the peak number of
//! open spans). A watchdog thread looks at the table periodically: spans open longer than the
//! configured threshold are reported by [`MissionControl::in_flight`](crate::MissionControl::in_flight),
//! counted in [`InFlightReport`], announced once each in the live stream (and so the store) as a
//! `warn` log record, and written to `<store>/in-flight.json` (atomically), so a process that dies
//! leaves a record of what was in flight.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use mission_core::{
    AttrValue, Event, EventBody, Level, LogRecord, Recorder, SpanId, SpanKind, Symbol, Text,
    ThreadId, Timestamp,
};

const SHARDS: usize = 16;
/// Most spans tracked at once; beyond it spans are not tracked (and counted).
const MAX_TRACKED: usize = 1 << 20;

/// A span that has started and not ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OpenSpan {
    pub tenant: Symbol,
    pub agent: Symbol,
    pub thread_id: ThreadId,
    pub span_id: SpanId,
    pub name: Symbol,
    pub kind: SpanKind,
    pub start: Timestamp,
}

/// A span open longer than the threshold.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InFlightSpan {
    /// The agent.
    pub agent: String,
    /// The thread (32 hex digits).
    pub thread_id: String,
    /// The span (16 hex digits).
    pub span_id: String,
    /// The span's name.
    pub name: String,
    /// Its kind (`llm_call`, `tool_call`, …).
    pub kind: String,
    /// When it started, nanoseconds since the epoch.
    pub start_ns: u64,
    /// How long it has been open, in milliseconds, when observed.
    pub age_ms: u64,
}

/// What the watchdog saw last.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct InFlightReport {
    /// Spans open now (any age).
    pub open: u64,
    /// Spans open longer than the threshold.
    pub overdue: u64,
    /// Spans that could not be tracked because the table was full.
    pub untracked: u64,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<OpenSpan>>,
    free: Vec<u32>,
}

/// The table of open spans.
pub(crate) struct InFlight {
    shards: [Mutex<Shard>; SHARDS],
    open: AtomicU64,
    untracked: AtomicU64,
}

/// Where a registered span sits in the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    shard: u8,
    slot: u32,
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl InFlight {
    pub(crate) fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            open: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    pub(crate) fn register(&self, span: OpenSpan) -> Option<Ticket> {
        if self.open.load(Ordering::Relaxed) as usize >= MAX_TRACKED {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let shard = mission_core::shard::local(SHARDS as u8);
        let mut s = lock(&self.shards[shard as usize]);
        let slot = match s.free.pop() {
            Some(slot) => {
                s.slots[slot as usize] = Some(span);
                slot
            }
            None => {
                s.slots.push(Some(span));
                (s.slots.len() - 1) as u32
            }
        };
        drop(s);
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Ticket { shard, slot })
    }

    pub(crate) fn deregister(&self, ticket: Ticket) {
        let mut s = lock(&self.shards[ticket.shard as usize]);
        if let Some(entry) = s.slots.get_mut(ticket.slot as usize)
            && entry.take().is_some()
        {
            s.free.push(ticket.slot);
            drop(s);
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Spans open longer than `threshold` at `now`, oldest first.
    pub(crate) fn overdue(&self, threshold: Duration, now: Timestamp) -> Vec<OpenSpan> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let s = lock(shard);
            out.extend(
                s.slots
                    .iter()
                    .flatten()
                    .filter(|o| now.saturating_duration_since(o.start) >= threshold)
                    .copied(),
            );
        }
        out.sort_by_key(|o| o.start);
        out
    }

    /// Spans of `tenant` open now (a scan of the table: for a tenant's health report).
    pub(crate) fn open_of(&self, tenant: &str) -> u64 {
        let mut n = 0;
        for shard in &self.shards {
            let s = lock(shard);
            n += s.slots.iter().flatten().filter(|o| o.tenant.as_str() == tenant).count() as u64;
        }
        n
    }

    pub(crate) fn report(&self, overdue: u64) -> InFlightReport {
        InFlightReport {
            open: self.open.load(Ordering::Relaxed),
            overdue,
            untracked: self.untracked.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn describe(o: &OpenSpan, now: Timestamp) -> InFlightSpan {
    InFlightSpan {
        agent: o.agent.as_str().to_owned(),
        thread_id: o.thread_id.to_string(),
        span_id: o.span_id.to_string(),
        name: o.name.as_str().to_owned(),
        kind: o.kind.as_str().to_owned(),
        start_ns: o.start.0,
        age_ms: now.saturating_duration_since(o.start).as_millis() as u64,
    }
}

/// The watchdog thread's shared state.
pub(crate) struct Watchdog {
    stop: Mutex<bool>,
    wake: Condvar,
    pub(crate) overdue: AtomicU64,
    running: AtomicBool,
}

impl Watchdog {
    /// Starts the watchdog: every `threshold / 2` (100 ms to 5 s) it reports overdue spans.
    pub(crate) fn start(
        table: Arc<InFlight>,
        recorder: Recorder,
        threshold: Duration,
        file: Option<PathBuf>,
    ) -> std::io::Result<(Arc<Watchdog>, std::thread::JoinHandle<()>)> {
        let dog = Arc::new(Watchdog {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            overdue: AtomicU64::new(0),
            running: AtomicBool::new(true),
        });
        let me = dog.clone();
        let period = (threshold / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let handle =
            std::thread::Builder::new().name("mission-inflight".into()).spawn(move || {
                let mut announced: Vec<SpanId> = Vec::new();
                let mut last_written: Option<Vec<SpanId>> = None;
                loop {
                    {
                        let stop = me.stop.lock().unwrap_or_else(|p| p.into_inner());
                        if *stop {
                            break;
                        }
                        let (stop, _) =
                            me.wake.wait_timeout(stop, period).unwrap_or_else(|p| p.into_inner());
                        if *stop {
                            break;
                        }
                    }
                    let now = Timestamp::now();
                    let overdue = table.overdue(threshold, now);
                    me.overdue.store(overdue.len() as u64, Ordering::Relaxed);
                    announced.retain(|id| overdue.iter().any(|o| o.span_id == *id));
                    for o in &overdue {
                        if !announced.contains(&o.span_id) && announced.len() < 10_000 {
                            announced.push(o.span_id);
                            recorder.record(announcement(o, now));
                        }
                    }
                    if let Some(file) = &file {
                        let ids: Vec<SpanId> = overdue.iter().map(|o| o.span_id).collect();
                        if last_written.as_ref() != Some(&ids) {
                            let spans: Vec<InFlightSpan> =
                                overdue.iter().map(|o| describe(o, now)).collect();
                            if write_atomically(file, &spans).is_ok() {
                                last_written = Some(ids);
                            }
                        }
                    }
                }
                me.running.store(false, Ordering::Release);
            })?;
        Ok((dog, handle))
    }

    pub(crate) fn stop(&self) {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// The `warn` log record announcing an overdue span, inside that span.
fn announcement(o: &OpenSpan, now: Timestamp) -> Event {
    let age = now.saturating_duration_since(o.start);
    let mut e = Event::new(
        Symbol::intern("in_flight"),
        EventBody::Log(LogRecord {
            level: Level::Warn,
            target: Symbol::intern("mission.in_flight"),
            message: Text::from(format!(
                "{} {} still in flight after {:.1}s",
                o.kind.as_str(),
                o.name.as_str(),
                age.as_secs_f64()
            )),
        }),
    );
    e.tenant = o.tenant;
    e.agent = o.agent;
    e.thread_id = o.thread_id;
    e.span_id = o.span_id;
    e.attributes
        .set(Symbol::intern("mission.in_flight.age_ms"), AttrValue::Int(age.as_millis() as i64));
    e.attributes
        .set(Symbol::intern("mission.in_flight.start_ns"), AttrValue::Int(o.start.0 as i64));
    e
}

/// Writes `spans` as JSON to `path`, atomically and durably
/// ([`mission_store::atomic::replace_file`]: a crash leaves the old file or the new, never a
/// torn one).
pub(crate) fn write_atomically(path: &Path, spans: &[InFlightSpan]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(spans).map_err(std::io::Error::other)?;
    mission_store::atomic::replace_file(path, &json)
}

/// Reads what a (possibly dead) process left in `<store>/in-flight.json`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the file exists but cannot be read;
/// [`Error::Parse`](crate::Error::Parse) if it is not the expected JSON.
pub fn read_in_flight_file(store_root: &Path) -> crate::Result<Vec<InFlightSpan>> {
    let path = store_root.join(IN_FLIGHT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| crate::Error::Parse { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(crate::Error::Io { path, source: e }),
    }
}

/// The file, under the store root, listing spans in flight longer than the threshold.
pub const IN_FLIGHT_FILE: &str = "in-flight.json";
