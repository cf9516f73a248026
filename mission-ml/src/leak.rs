//! Leak and exhaustion prediction: a robust trend on a sampled resource (memory, disk, open
//! files, queue depth — anything that should not grow without bound) and the time until it
//! reaches a limit, with a confidence — without alarming on the sawtooth of a garbage
//! collector.
//!
//! [`LeakDetector`] keeps the last `window` samples and, each time a point arrives:
//!
//! 1. **Finds drops** — a fall between consecutive samples larger than both eight robust
//!    standard deviations of the sample-to-sample changes (median absolute deviation) and a
//!    fifth of the window's range, as a collection or a restart makes. The lowest point after a
//!    drop is a *floor* (the post-collection level); the value before it a *peak*. The last 32
//!    floors are kept.
//! 2. **Picks the evidence.** If a drop happened within the window (or drops keep coming at
//!    their usual pace: the last one less than two median intervals between drops ago), the
//!    series is a sawtooth and only the floors count: a heap that is collected back to the same
//!    level does not leak, however steep its ramps ([`Evidence::Floors`], at least 4 floors).
//!    Otherwise the raw samples of a full window count ([`Evidence::Trend`]): until the window
//!    has filled, a ramp before the first collection would look like a leak. Choose a window
//!    that spans a few collection cycles.
//! 3. **Fits a robust line** — the Theil–Sen slope (the median of the slopes between every pair
//!    of points, O(n²) on the bounded window; insensitive to up to 29% outliers) — and tests it
//!    with the Mann–Kendall statistic `S = Σ sign(vⱼ − vᵢ)`: the confidence is `Φ(Z)`,
//!    `Z = (S − sign S)/√(n(n−1)(2n+5)/18)` (no tie correction, which errs on the cautious
//!    side). The 95% interval of the slope comes from the order statistics of the pairwise
//!    slopes (Sen 1968), and with it the earliest and latest times to the limit.
//! 4. **Projects** the line from the last sample's time to the limit: for floors, the line plus
//!    the typical height of a ramp (the median peak above the floor line), since the peaks hit
//!    the limit first.
//!
//! An estimate is returned when the trend rises with at least the configured confidence
//! (default 0.9999 — a monitor tests continuously, so a looser level would fire on noise every
//! so often) and, if a horizon is set, the limit is reached within it.
//!
//! # Input rules
//!
//! A NaN or infinite value, or a time not after the previous sample's, is skipped (state
//! unchanged; the current estimate is returned). Gaps need no care: the line is fitted on
//! times, not on sample counts. Nothing panics.
//!
//! # Cost
//!
//! O(window) memory; O(window²) time per sample (window ≤ 1024; 120 points is ~7,000 pairs,
//! tens of microseconds) — meant for a resource sampled every few seconds, not per event.
//!
//! # Examples
//!
//! ```
//! use mission_ml::leak::LeakDetector;
//!
//! const GB: f64 = 1e9;
//! let mut leak = LeakDetector::new(2.0 * GB, 120);
//! let mut last = None;
//! // Resident memory sampled every 10 s, growing by 1 MB a minute from 1 GB.
//! for i in 0..600u64 {
//!     let t = i * 10_000_000_000;
//!     let wobble = if i % 2 == 0 { 3e6 } else { -3e6 };
//!     last = leak.update(t, 1.0 * GB + 1e6 * (i as f64 / 6.0) + wobble);
//! }
//! let estimate = last.expect("a steady leak is reported");
//! // At 100 minutes the heap is at 1.1 GB: 900 MB to go at 1 MB/min is 15 hours.
//! let hours = estimate.time_to_limit.as_secs_f64() / 3600.0;
//! assert!((hours - 15.0).abs() < 0.5, "{hours}");
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::forecast::{normal_cdf, normal_quantile};

/// Floors (post-drop levels) kept for the sawtooth test.
const MAX_FLOORS: usize = 32;
/// Fewest floors for a floor trend.
const MIN_FLOORS: usize = 4;
/// Smallest window.
const MIN_POINTS: usize = 10;

/// Which points an estimate rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// The raw samples of the window (no drops seen in it).
    Trend,
    /// The floors after each drop: the series is a sawtooth and its floors rise.
    Floors,
}

/// A predicted exhaustion, from [`LeakDetector::update`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakEstimate {
    /// Time from the last sample until the projected value reaches the limit (zero if it
    /// already has).
    pub time_to_limit: Duration,
    /// The same at the upper end of the slope's 95% interval.
    pub earliest: Duration,
    /// The same at the lower end of the slope's 95% interval; `None` if that end is not a rise
    /// (the limit may never be reached).
    pub latest: Option<Duration>,
    /// Growth in value units per second (Theil–Sen).
    pub slope: f64,
    /// Confidence that the series rises (Mann–Kendall, one-sided), in [0, 1].
    pub confidence: f64,
    /// The projected value at the last sample's time (for floors: floor line plus ramp height).
    pub projected: f64,
    /// Which points the estimate rests on.
    pub evidence: Evidence,
}

/// A floor: the lowest value after a drop, and the peak just before it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Floor {
    time_ns: u64,
    value: f64,
    peak: f64,
}

/// Predicts when a monotone resource reaches its limit; see the [module docs](self).
///
/// O(window) memory, O(window²) per sample; the state round-trips through serde.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakDetector {
    limit: f64,
    window: usize,
    min_confidence: f64,
    horizon_ns: Option<u64>,
    /// The last `window` samples, oldest first.
    points: VecDeque<(u64, f64)>,
    /// The last floors, oldest first.
    floors: VecDeque<Floor>,
    /// Whether the previous sample ended a drop (a drop over several samples is one floor).
    falling: bool,
}

impl LeakDetector {
    /// A detector for a resource whose limit is `limit` (same units as the samples; NaN means
    /// no limit), fitting the last `window` samples (clamped to 10..=1024).
    pub fn new(limit: f64, window: usize) -> Self {
        let window = window.clamp(MIN_POINTS, 1024);
        Self {
            limit: if limit.is_nan() { f64::INFINITY } else { limit },
            window,
            min_confidence: 0.9999,
            horizon_ns: None,
            points: VecDeque::with_capacity(window),
            floors: VecDeque::with_capacity(MAX_FLOORS),
            falling: false,
        }
    }

    /// Sets the confidence an upward trend needs before it is reported (default 0.9999),
    /// clamped to [0.5, 1 − 1e-9].
    pub fn with_min_confidence(mut self, confidence: f64) -> Self {
        self.min_confidence =
            if confidence.is_finite() { confidence.clamp(0.5, 1.0 - 1e-9) } else { 0.9999 };
        self
    }

    /// Reports only exhaustion expected within `horizon` (default: any time).
    pub fn with_horizon(mut self, horizon: Duration) -> Self {
        self.horizon_ns = Some(u64::try_from(horizon.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// The limit.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no sample has been taken yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Takes the next sample (time in ns since the Unix epoch) and returns the exhaustion
    /// estimate if the resource is growing toward its limit (see the [module docs](self)).
    /// O(window²).
    pub fn update(&mut self, time_ns: u64, value: f64) -> Option<LeakEstimate> {
        let last = self.points.back().copied();
        if !value.is_finite() || last.is_some_and(|(t, _)| time_ns <= t) {
            return self.estimate();
        }
        if let Some((_, previous)) = last {
            if self.is_drop(previous, value) {
                if self.falling {
                    if let Some(floor) = self.floors.back_mut() {
                        floor.time_ns = time_ns;
                        floor.value = value;
                    }
                } else {
                    if self.floors.len() == MAX_FLOORS {
                        self.floors.pop_front();
                    }
                    self.floors.push_back(Floor { time_ns, value, peak: previous });
                }
                self.falling = true;
            } else {
                self.falling = false;
            }
        }
        if self.points.len() == self.window {
            self.points.pop_front();
        }
        self.points.push_back((time_ns, value));
        self.estimate()
    }

    /// Whether `previous → value` is a drop: larger than eight robust standard deviations of the
    /// window's sample-to-sample changes and than a fifth of its range.
    fn is_drop(&self, previous: f64, value: f64) -> bool {
        let fall = previous - value;
        if fall <= 1e-12 * previous.abs() || self.points.len() < 4 {
            return false;
        }
        let mut diffs: Vec<f64> =
            self.points.iter().zip(self.points.iter().skip(1)).map(|(a, b)| b.1 - a.1).collect();
        let centre = median(&mut diffs);
        diffs.iter_mut().for_each(|d| *d = (*d - centre).abs());
        let scale = 1.4826 * median(&mut diffs);
        let (lo, hi) = self
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        fall > 8.0 * scale && fall > 0.2 * (hi - lo)
    }

    /// The current estimate (what the last [`update`](Self::update) returned). O(window²).
    pub fn estimate(&self) -> Option<LeakEstimate> {
        let &(now, _) = self.points.back()?;
        let (oldest, _) = *self.points.front()?;
        let sawtooth =
            self.floors.back().is_some_and(|f| f.time_ns >= oldest || self.collecting(now));
        let (evidence, points): (Evidence, Vec<(u64, f64)>) = if sawtooth {
            (Evidence::Floors, self.floors.iter().map(|f| (f.time_ns, f.value)).collect())
        } else {
            (Evidence::Trend, self.points.iter().copied().collect())
        };
        // A ramp before the first collection looks like a leak: the raw trend needs a full
        // window (which should span a few collection cycles).
        if points.len() < if sawtooth { MIN_FLOORS } else { self.window } {
            return None;
        }
        let t0 = points[0].0;
        let seconds = |t: u64| t.saturating_sub(t0) as f64 * 1e-9;
        let xy: Vec<(f64, f64)> = points.iter().map(|&(t, v)| (seconds(t), v)).collect();
        let fit = theil_sen(&xy)?;
        if fit.slope <= 0.0 || fit.confidence < self.min_confidence {
            return None;
        }
        let line = |t: f64| fit.intercept + fit.slope * t;
        let mut projected = line(seconds(now));
        if sawtooth {
            let mut heights: Vec<f64> =
                self.floors.iter().map(|f| f.peak - line(seconds(f.time_ns))).collect();
            projected += median(&mut heights).max(0.0);
        }
        let remaining = (self.limit - projected).max(0.0);
        let duration =
            |slope: f64| Duration::try_from_secs_f64(remaining / slope).unwrap_or(Duration::MAX);
        let time_to_limit = duration(fit.slope);
        if self.horizon_ns.is_some_and(|h| time_to_limit.as_nanos() > u128::from(h)) {
            return None;
        }
        Some(LeakEstimate {
            time_to_limit,
            earliest: duration(fit.upper.max(fit.slope)),
            latest: (fit.lower > 0.0).then(|| duration(fit.lower)),
            slope: fit.slope,
            confidence: fit.confidence,
            projected,
            evidence,
        })
    }
}

impl LeakDetector {
    /// Whether drops are still coming at their usual pace: the last floor is less than twice
    /// the median interval between floors old (for cycles longer than the window).
    fn collecting(&self, now: u64) -> bool {
        let (Some(last), true) = (self.floors.back(), self.floors.len() >= 2) else { return false };
        let mut gaps: Vec<f64> = self
            .floors
            .iter()
            .zip(self.floors.iter().skip(1))
            .map(|(a, b)| b.time_ns.saturating_sub(a.time_ns) as f64)
            .collect();
        now.saturating_sub(last.time_ns) as f64 <= 2.0 * median(&mut gaps)
    }
}

/// A Theil–Sen line with its Mann–Kendall confidence and the 95% interval of the slope.
struct SenFit {
    slope: f64,
    intercept: f64,
    lower: f64,
    upper: f64,
    confidence: f64,
}

/// Fits `(t, v)` points with increasing `t`; `None` with fewer than two distinct times.
fn theil_sen(xy: &[(f64, f64)]) -> Option<SenFit> {
    let n = xy.len();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    let mut s: i64 = 0;
    for (i, &(ti, vi)) in xy.iter().enumerate() {
        for &(tj, vj) in &xy[i + 1..] {
            if tj > ti {
                slopes.push((vj - vi) / (tj - ti));
            }
            s += match vj.total_cmp(&vi) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let nf = n as f64;
    let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let z = if s == 0 { 0.0 } else { (s as f64 - (s.signum() as f64)) / var_s.sqrt() };
    let m = slopes.len();
    let c = normal_quantile(0.975) * var_s.sqrt();
    let lower_rank = (((m as f64 - c) / 2.0).floor().max(0.0) as usize).min(m - 1);
    let upper_rank = (((m as f64 + c) / 2.0).ceil() as usize).min(m - 1);
    let slope = median(&mut slopes);
    let lower = *slopes.select_nth_unstable_by(lower_rank, f64::total_cmp).1;
    let upper = *slopes.select_nth_unstable_by(upper_rank, f64::total_cmp).1;
    let mut offsets: Vec<f64> = xy.iter().map(|&(t, v)| v - slope * t).collect();
    let intercept = median(&mut offsets);
    Some(SenFit { slope, intercept, lower, upper, confidence: normal_cdf(z) })
}

/// The median (mean of the middle two for an even count; 0 for none). Reorders `values`.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (left, &mut mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return mid;
    }
    let below = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + mid) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let mut xy: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
        xy[7].1 = 1e6;
        let fit = theil_sen(&xy).expect("fit");
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!((fit.intercept - 1.0).abs() < 1e-9);
        assert!(fit.confidence > 0.999);
        assert!(fit.lower <= 2.0 && fit.upper >= 2.0);
    }

    #[test]
    fn flat_series_has_no_confidence() {
        let xy: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 5.0)).collect();
        let fit = theil_sen(&xy).expect("fit");
        assert_eq!(fit.slope, 0.0);
        assert!((fit.confidence - 0.5).abs() < 1e-6);
    }
}
