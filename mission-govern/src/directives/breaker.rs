//! Circuit breakers opened by directives and asked by agents before tool calls.
//!
//! Closed → (a directive fires `open_breaker`) → open: calls are denied until the cool-down
//! passes → half-open: one trial call is allowed; its outcome (the tool's next span in the
//! stream, or [`Directives::report`](super::Directives::report)) closes the breaker on success
//! and re-opens it on failure. A trial whose outcome never comes is given back after another
//! cool-down.
//!
//! Breakers are per tenant and tool: a directive opens the breaker of the incident's tenant,
//! so one tenant's failures never deny another tenant's calls. A directive that spans tenants
//! (`across_tenants = true`) opens a breaker with no tenant, which applies to every tenant.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The time breakers measure their cool-downs in: the machine's monotonic clock
/// ([`BreakerClock::system`], the default), or a clock that moves only when told
/// ([`BreakerClock::manual`] and [`advance`](BreakerClock::advance)) — for tests and
/// simulations that must not depend on how fast the machine runs. Cheap to clone; clones share
/// the time.
#[derive(Clone, Debug)]
pub struct BreakerClock {
    start: Instant,
    /// `None`: the system clock; else nanoseconds advanced since `start`.
    manual: Option<Arc<AtomicU64>>,
}

impl Default for BreakerClock {
    fn default() -> Self {
        Self::system()
    }
}

impl BreakerClock {
    /// The machine's monotonic clock.
    pub fn system() -> Self {
        Self { start: Instant::now(), manual: None }
    }

    /// A clock that stands still until [`advance`](Self::advance)d.
    pub fn manual() -> Self {
        Self { start: Instant::now(), manual: Some(Arc::new(AtomicU64::new(0))) }
    }

    /// Moves a manual clock forward by `by` (saturating at about 584 years); a system clock
    /// ignores it. Returns whether the clock moved.
    pub fn advance(&self, by: Duration) -> bool {
        let Some(nanos) = &self.manual else { return false };
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ =
            nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_add(by)));
        true
    }

    /// The time now.
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(nanos) => {
                let by = Duration::from_nanos(nanos.load(Ordering::Acquire));
                self.start.checked_add(by).unwrap_or(self.start)
            }
        }
    }
}

/// Most (tenant, tool) breakers at once; more are refused and counted.
pub const MAX_BREAKERS: usize = 1024;

/// The answer to [`Directives::permit`](super::Directives::permit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Go ahead: no breaker is open.
    Allow,
    /// Go ahead with one trial call: the breaker is half-open, and the outcome decides whether
    /// it closes or opens again.
    Trial,
    /// Do not call the tool now.
    Deny(Denial),
}

impl Permit {
    /// Whether the call may go ahead (`Allow` or `Trial`).
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Permit::Deny(_))
    }
}

/// Why a call is denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The tool.
    pub tool: String,
    /// The directive that opened the breaker.
    pub directive: String,
    /// What happened, for the agent (and its model) to read.
    pub reason: String,
    /// When asking again may be allowed.
    pub retry_after: Duration,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "circuit breaker for {:?} is open (directive {}): {}; retry after {:?}",
            self.tool, self.directive, self.reason, self.retry_after
        )
    }
}

/// The state of one breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go ahead.
    Closed,
    /// Calls are denied until the cool-down passes.
    Open,
    /// One trial call is allowed.
    HalfOpen,
}

/// One breaker, as [`Directives::breakers`](super::Directives::breakers) lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BreakerStatus {
    /// The tenant whose calls it denies; empty: every tenant's (a directive across tenants).
    pub tenant: String,
    /// The tool.
    pub tool: String,
    /// Its state.
    pub state: BreakerState,
    /// The directive that last opened it.
    pub directive: String,
    /// Why.
    pub reason: String,
    /// How many times it opened (re-opening after a failed trial included).
    pub opened: u64,
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    directive: String,
    reason: String,
    cool_down: Duration,
    since: Instant,
    trial: Option<Instant>,
    opened: u64,
}

/// What an outcome did to a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Closed,
    Reopened,
}

/// A breaker's key: (tenant, tool); the tenant is empty for a breaker of every tenant.
type Key = (String, String);

/// Every breaker.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    map: std::sync::Mutex<HashMap<Key, Breaker>>,
    /// Breakers not closed: `permit` takes no lock while this is zero.
    not_closed: AtomicUsize,
}

impl Breakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Breaker>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recount(&self, map: &HashMap<Key, Breaker>) {
        let n = map.values().filter(|b| b.state != BreakerState::Closed).count();
        self.not_closed.store(n, Ordering::Release);
    }

    /// Opens `tenant`'s breaker of `tool` (`tenant` empty: every tenant's). Returns false if it
    /// was open already, or there are too many.
    pub fn open(
        &self,
        tenant: &str,
        tool: &str,
        directive: &str,
        reason: &str,
        cool_down: Duration,
        now: Instant,
    ) -> bool {
        let key = (tenant.to_owned(), tool.to_owned());
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= MAX_BREAKERS {
            // Forget closed breakers before refusing.
            map.retain(|_, b| b.state != BreakerState::Closed);
            if map.len() >= MAX_BREAKERS {
                return false;
            }
        }
        let b = map.entry(key).or_insert_with(|| Breaker {
            state: BreakerState::Closed,
            directive: String::new(),
            reason: String::new(),
            cool_down,
            since: now,
            trial: None,
            opened: 0,
        });
        if b.state != BreakerState::Closed {
            return false;
        }
        *b = Breaker {
            state: BreakerState::Open,
            directive: directive.to_owned(),
            reason: reason.to_owned(),
            cool_down,
            since: now,
            trial: None,
            opened: b.opened + 1,
        };
        self.recount(&map);
        true
    }

    /// May `tenant` call `tool` now? Asks its own breaker and the one of every tenant; with
    /// `tenant` `None`, every breaker of `tool` (the strictest answer wins).
    pub fn permit(&self, tenant: Option<&str>, tool: &str, now: Instant) -> Permit {
        if self.not_closed.load(Ordering::Acquire) == 0 {
            return Permit::Allow;
        }
        let mut map = self.lock();
        let mut answer = Permit::Allow;
        for ((t, name), b) in map.iter_mut() {
            if name != tool || tenant.is_some_and(|tenant| !t.is_empty() && t != tenant) {
                continue;
            }
            match Self::permit_one(b, tool, now) {
                deny @ Permit::Deny(_) => return deny,
                Permit::Trial => answer = Permit::Trial,
                Permit::Allow => {}
            }
        }
        answer
    }

    fn permit_one(b: &mut Breaker, tool: &str, now: Instant) -> Permit {
        let deny = |b: &Breaker, retry_after: Duration, why: &str| {
            Permit::Deny(Denial {
                tool: tool.to_owned(),
                directive: b.directive.clone(),
                reason: format!("{}{why}", b.reason),
                retry_after,
            })
        };
        match b.state {
            BreakerState::Closed => Permit::Allow,
            BreakerState::Open => {
                let elapsed = now.duration_since(b.since);
                if elapsed < b.cool_down {
                    return deny(b, b.cool_down - elapsed, "");
                }
                b.state = BreakerState::HalfOpen;
                b.trial = Some(now);
                Permit::Trial
            }
            BreakerState::HalfOpen => match b.trial {
                Some(t) if now.duration_since(t) < b.cool_down => {
                    let wait = b.cool_down - now.duration_since(t);
                    deny(b, wait, " (half-open: a trial call is in progress)")
                }
                _ => {
                    b.trial = Some(now);
                    Permit::Trial
                }
            },
        }
    }

    /// The outcome of `tenant`'s call of `tool`: decides its half-open breaker and the one of
    /// every tenant. Returns each change with the breaker's tenant.
    pub fn outcome(
        &self,
        tenant: &str,
        tool: &str,
        success: bool,
        now: Instant,
    ) -> Vec<(String, Transition)> {
        if self.not_closed.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut map = self.lock();
        let mut changes = Vec::new();
        for owner in [tenant, ""] {
            let key = (owner.to_owned(), tool.to_owned());
            if let Some(b) = map.get_mut(&key)
                && let Some(t) = Self::outcome_one(b, success, now)
            {
                changes.push((owner.to_owned(), t));
            }
            if tenant.is_empty() {
                break;
            }
        }
        self.recount(&map);
        changes
    }

    fn outcome_one(b: &mut Breaker, success: bool, now: Instant) -> Option<Transition> {
        if b.state != BreakerState::HalfOpen {
            return None;
        }
        let t = if success {
            b.state = BreakerState::Closed;
            Transition::Closed
        } else {
            b.state = BreakerState::Open;
            b.opened += 1;
            b.reason = format!(
                "the trial call failed after: {}",
                b.reason.trim_start_matches("the trial call failed after: ")
            );
            Transition::Reopened
        };
        b.since = now;
        b.trial = None;
        Some(t)
    }

    /// Closes `tool`'s breakers by hand: `tenant`'s, or every tenant's with `None`. Returns
    /// whether one was not closed.
    pub fn reset(&self, tenant: Option<&str>, tool: &str) -> bool {
        let mut map = self.lock();
        let mut was_open = false;
        for ((t, name), b) in map.iter_mut() {
            if name == tool && tenant.is_none_or(|tenant| t == tenant) {
                was_open |=
                    std::mem::replace(&mut b.state, BreakerState::Closed) != BreakerState::Closed;
            }
        }
        self.recount(&map);
        was_open
    }

    /// Every breaker (only `tenant`'s and every tenant's, when given), sorted by tool and
    /// tenant.
    pub fn list(&self, tenant: Option<&str>, now: Instant) -> Vec<BreakerStatus> {
        let map = self.lock();
        let mut v: Vec<BreakerStatus> = map
            .iter()
            .filter(|((t, _), _)| tenant.is_none_or(|tenant| t.is_empty() || t == tenant))
            .map(|((tenant, tool), b)| BreakerStatus {
                tenant: tenant.clone(),
                tool: tool.clone(),
                state: match b.state {
                    BreakerState::Open if now.duration_since(b.since) >= b.cool_down => {
                        BreakerState::HalfOpen
                    }
                    s => s,
                },
                directive: b.directive.clone(),
                reason: b.reason.clone(),
                opened: b.opened,
            })
            .collect();
        v.sort_by(|a, b| (&a.tool, &a.tenant).cmp(&(&b.tool, &b.tenant)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_deny_trial_close() {
        let b = Breakers::default();
        let t0 = Instant::now();
        let cool = Duration::from_secs(30);
        let later = |n: u64| t0 + cool * n as u32 + Duration::from_secs(n);
        let permit = |tool: &str, at: Instant| b.permit(Some("acme"), tool, at);
        assert_eq!(permit("search", t0), Permit::Allow);
        assert!(b.open("acme", "search", "d", "3 failures", cool, t0));
        assert!(!b.open("acme", "search", "d", "again", cool, t0));
        assert!(!permit("search", t0).is_allowed());
        assert_eq!(permit("other", t0), Permit::Allow);
        // The cool-down passed: one trial, and one at a time.
        assert_eq!(permit("search", later(1)), Permit::Trial);
        assert!(!permit("search", later(1)).is_allowed(), "one trial at a time");
        let reopened = b.outcome("acme", "search", false, later(1));
        assert_eq!(reopened, [("acme".to_owned(), Transition::Reopened)]);
        assert!(!permit("search", later(1)).is_allowed());
        assert_eq!(permit("search", later(2)), Permit::Trial);
        let closed = b.outcome("acme", "search", true, later(2));
        assert_eq!(closed, [("acme".to_owned(), Transition::Closed)]);
        assert_eq!(permit("search", later(2)), Permit::Allow);
        assert_eq!(b.list(None, later(2))[0].opened, 2);
    }

    #[test]
    fn breakers_are_per_tenant_and_an_untenanted_one_applies_to_all() {
        let b = Breakers::default();
        let t0 = Instant::now();
        let cool = Duration::from_secs(600);
        assert!(b.open("tenant-1", "web_search", "d", "3 failures", cool, t0));
        assert!(!b.permit(Some("tenant-1"), "web_search", t0).is_allowed());
        assert_eq!(b.permit(Some("tenant-0"), "web_search", t0), Permit::Allow);
        assert!(!b.permit(None, "web_search", t0).is_allowed(), "unscoped: any tenant's");
        assert_eq!(b.list(Some("tenant-0"), t0), []);
        assert_eq!(b.list(Some("tenant-1"), t0)[0].tenant, "tenant-1");
        // tenant-0's successes do not decide tenant-1's breaker.
        assert!(b.outcome("tenant-0", "web_search", true, t0 + cool).is_empty());
        // A breaker of every tenant.
        assert!(b.open("", "charge_card", "d", "across", cool, t0));
        assert!(!b.permit(Some("tenant-0"), "charge_card", t0).is_allowed());
        assert!(!b.permit(Some("tenant-1"), "charge_card", t0).is_allowed());
        assert!(b.reset(None, "charge_card"));
        assert_eq!(b.permit(Some("tenant-0"), "charge_card", t0), Permit::Allow);
    }
}
