//! Circuit breakers opened by directives and asked by agents before tool calls.
//!
//! Closed → (a directive fires `open_breaker`) → open: calls are denied until the cool-down
//! passes → half-open: one trial call is allowed; its outcome (the tool's next span in the
//! stream, or [`Directives::report`](super::Directives::report)) closes the breaker on success
//! and re-opens it on failure. A trial whose outcome never comes is given back after another
//! cool-down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Most tools with a breaker at once; more are refused and counted.
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

/// Every breaker.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    map: std::sync::Mutex<HashMap<String, Breaker>>,
    /// Breakers not closed: `permit` takes no lock while this is zero.
    not_closed: AtomicUsize,
}

impl Breakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Breaker>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recount(&self, map: &HashMap<String, Breaker>) {
        let n = map.values().filter(|b| b.state != BreakerState::Closed).count();
        self.not_closed.store(n, Ordering::Release);
    }

    /// Opens `tool`'s breaker. Returns false if it was open already, or there are too many.
    pub fn open(&self, tool: &str, directive: &str, reason: &str, cool_down: Duration) -> bool {
        let mut map = self.lock();
        if !map.contains_key(tool) && map.len() >= MAX_BREAKERS {
            // Forget closed breakers before refusing.
            map.retain(|_, b| b.state != BreakerState::Closed);
            if map.len() >= MAX_BREAKERS {
                return false;
            }
        }
        let b = map.entry(tool.to_owned()).or_insert_with(|| Breaker {
            state: BreakerState::Closed,
            directive: String::new(),
            reason: String::new(),
            cool_down,
            since: Instant::now(),
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
            since: Instant::now(),
            trial: None,
            opened: b.opened + 1,
        };
        self.recount(&map);
        true
    }

    /// May `tool` be called now?
    pub fn permit(&self, tool: &str) -> Permit {
        if self.not_closed.load(Ordering::Acquire) == 0 {
            return Permit::Allow;
        }
        let mut map = self.lock();
        let Some(b) = map.get_mut(tool) else { return Permit::Allow };
        let now = Instant::now();
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

    /// The outcome of a call of `tool`: decides a half-open breaker.
    pub fn outcome(&self, tool: &str, success: bool) -> Option<Transition> {
        if self.not_closed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut map = self.lock();
        let b = map.get_mut(tool)?;
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
        b.since = Instant::now();
        b.trial = None;
        self.recount(&map);
        Some(t)
    }

    /// Closes `tool`'s breaker by hand. Returns whether it was not closed.
    pub fn reset(&self, tool: &str) -> bool {
        let mut map = self.lock();
        let was = map.get_mut(tool).map(|b| std::mem::replace(&mut b.state, BreakerState::Closed));
        self.recount(&map);
        was.is_some_and(|s| s != BreakerState::Closed)
    }

    /// Every breaker, sorted by tool.
    pub fn list(&self) -> Vec<BreakerStatus> {
        let map = self.lock();
        let mut v: Vec<BreakerStatus> = map
            .iter()
            .map(|(tool, b)| BreakerStatus {
                tool: tool.clone(),
                state: match b.state {
                    BreakerState::Open if b.since.elapsed() >= b.cool_down => {
                        BreakerState::HalfOpen
                    }
                    s => s,
                },
                directive: b.directive.clone(),
                reason: b.reason.clone(),
                opened: b.opened,
            })
            .collect();
        v.sort_by(|a, b| a.tool.cmp(&b.tool));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_deny_trial_close() {
        let b = Breakers::default();
        assert_eq!(b.permit("search"), Permit::Allow);
        assert!(b.open("search", "d", "3 failures", Duration::from_millis(30)));
        assert!(!b.open("search", "d", "again", Duration::from_millis(30)));
        assert!(!b.permit("search").is_allowed());
        assert_eq!(b.permit("other"), Permit::Allow);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit("search"), Permit::Trial);
        assert!(!b.permit("search").is_allowed(), "one trial at a time");
        assert_eq!(b.outcome("search", false), Some(Transition::Reopened));
        assert!(!b.permit("search").is_allowed());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit("search"), Permit::Trial);
        assert_eq!(b.outcome("search", true), Some(Transition::Closed));
        assert_eq!(b.permit("search"), Permit::Allow);
        assert_eq!(b.list()[0].opened, 2);
    }
}
