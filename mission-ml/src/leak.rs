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
//!    of points; insensitive to up to 29% outliers) — and tests it
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
//! O(window) memory; O(window^1.5) expected time per sample (window ≤ 1024): the slope's order
//! statistics come from a sampled bracket of the pairwise slopes, not from all n(n−1)/2 of
//! them (see `select_slopes`; windows under 64 points use every pair, as fast there). At the
//! SDK's 720 points that is ~30 k slopes instead of 259 k (0.6 ms per sample against 6.2 ms
//! for every pair, back to back on a shared 2-core VM; `benches/RESULTS.md`, 2026-12-07) —
//! meant for a resource sampled every few seconds, not per event.
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
/// O(window) memory, O(window^1.5) expected per sample; the state round-trips through serde.
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
    /// O(window^1.5) expected.
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

    /// The current estimate (what the last [`update`](Self::update) returned). O(window^1.5)
    /// expected.
    pub fn estimate(&self) -> Option<LeakEstimate> {
        self.estimate_with(theil_sen)
    }

    /// [`estimate`](Self::estimate) with the line fitted by `fit`.
    fn estimate_with(&self, fit: fn(&[(f64, f64)]) -> Option<SenFit>) -> Option<LeakEstimate> {
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
        let fit = fit(&xy)?;
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
#[derive(Debug, PartialEq)]
struct SenFit {
    slope: f64,
    intercept: f64,
    lower: f64,
    upper: f64,
    confidence: f64,
}

/// Fits `(t, v)` points with increasing `t`; `None` with fewer than two distinct times.
///
/// The same fit as [`theil_sen_pairs`] (which it falls back to for small or unusual inputs),
/// without materialising the n(n−1)/2 pairwise slopes: the Mann–Kendall `S` comes from two
/// inversion counts (O(n log n)), and the four order statistics of the slopes it needs (the
/// interval's ends and the one or two middle ones) from a bracket located on a sample of 4n
/// pairs, whose slopes are then enumerated alone (see [`select_slopes`]).
fn theil_sen(xy: &[(f64, f64)]) -> Option<SenFit> {
    let n = xy.len();
    let increasing = xy.windows(2).all(|w| w[1].0 > w[0].0);
    if n < FAST_FIT_MIN || !increasing {
        return theil_sen_pairs(xy);
    }
    let m = n * (n - 1) / 2;
    let (t, v): (Vec<f64>, Vec<f64>) = xy.iter().copied().unzip();
    // S = #(vⱼ > vᵢ) − #(vⱼ < vᵢ) over i < j.
    let (mut keys, mut buf) = (v.clone(), vec![0.0; n]);
    let at_most = count_inversions(&mut keys, &mut buf, true);
    keys.copy_from_slice(&v);
    let below = count_inversions(&mut keys, &mut buf, false);
    let s = (m as u64 - at_most) as i64 - below as i64;
    let ranks = SenRanks::new(n, m, s);
    let mut wanted = vec![ranks.lower, ranks.upper, m / 2];
    if m.is_multiple_of(2) {
        wanted.push(m / 2 - 1);
    }
    // The bracket drawn from the sample missed (rare), or rounding made a rank ambiguous.
    let Some(values) = select_slopes(&t, &v, &wanted) else { return theil_sen_pairs(xy) };
    let slope = if m.is_multiple_of(2) { (values[3] + values[2]) / 2.0 } else { values[2] };
    Some(ranks.fit(xy, slope, values[0], values[1]))
}

/// Below this many points the pairwise fit is as fast as the selection.
const FAST_FIT_MIN: usize = 64;

/// The Mann–Kendall variance and `z`, and the ranks of the 95% interval's ends among `m` slopes.
struct SenRanks {
    lower: usize,
    upper: usize,
    z: f64,
}

impl SenRanks {
    fn new(n: usize, m: usize, s: i64) -> Self {
        let nf = n as f64;
        let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
        let z = if s == 0 { 0.0 } else { (s as f64 - (s.signum() as f64)) / var_s.sqrt() };
        let c = normal_quantile(0.975) * var_s.sqrt();
        let lower = (((m as f64 - c) / 2.0).floor().max(0.0) as usize).min(m - 1);
        let upper = (((m as f64 + c) / 2.0).ceil() as usize).min(m - 1);
        Self { lower, upper, z }
    }

    /// The fit with this slope (the intercept is the median offset).
    fn fit(&self, xy: &[(f64, f64)], slope: f64, lower: f64, upper: f64) -> SenFit {
        let mut offsets: Vec<f64> = xy.iter().map(|&(t, v)| v - slope * t).collect();
        let intercept = median(&mut offsets);
        SenFit { slope, intercept, lower, upper, confidence: normal_cdf(self.z) }
    }
}

/// The reference fit: every pairwise slope, O(n²) time and memory.
fn theil_sen_pairs(xy: &[(f64, f64)]) -> Option<SenFit> {
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
    let ranks = SenRanks::new(n, slopes.len(), s);
    let slope = median(&mut slopes);
    let lower = *slopes.select_nth_unstable_by(ranks.lower, f64::total_cmp).1;
    let upper = *slopes.select_nth_unstable_by(ranks.upper, f64::total_cmp).1;
    Some(ranks.fit(xy, slope, lower, upper))
}

/// Pairs `i < j` with `keys[j] < keys[i]` (`ties`: `≤`), by merge sort; sorts `keys`.
fn count_inversions(keys: &mut [f64], buf: &mut [f64], ties: bool) -> u64 {
    let n = keys.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count = {
        let (left, right) = keys.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        count_inversions(left, bl, ties) + count_inversions(right, br, ties)
    };
    buf[..n].copy_from_slice(keys);
    let (left, right) = buf[..n].split_at(mid);
    let (mut i, mut j) = (0, 0);
    for slot in keys.iter_mut() {
        let take_right = j < right.len()
            && (i == left.len() || {
                let order = right[j].total_cmp(&left[i]);
                order.is_lt() || (ties && order.is_eq())
            });
        if take_right {
            count += (left.len() - i) as u64;
            *slot = right[j];
            j += 1;
        } else {
            *slot = left[i];
            i += 1;
        }
    }
    count
}

/// The slopes `(vⱼ − vᵢ)/(tⱼ − tᵢ)`, i < j, of `rank` in sorted order (0-based), for each of
/// `ranks`, with `t` strictly increasing. `None` when the bracket drawn from the sample misses
/// a rank (the caller then falls back to every pair).
///
/// A sample of 4n pairs (deterministic) locates, for each rank, a bracket `(lo, hi]` of slope
/// values that holds it with high probability (±4 standard deviations of the sample quantile);
/// overlapping brackets merge. For each bracket, the slopes at most `lo` are counted and the
/// ones inside enumerated, both in O(n log n + inside) with the dual order: a pair's slope is
/// at most `s` exactly when `vⱼ − s·tⱼ ≤ vᵢ − s·tᵢ`. Inside a bracket are O(n^1.5) pairs (the
/// interval spans ~n^1.5 ranks, and so does the sampling error), against n²/2 in all.
fn select_slopes(t: &[f64], v: &[f64], ranks: &[usize]) -> Option<Vec<f64>> {
    let n = t.len();
    let m = n * (n - 1) / 2;
    // A deterministic xorshift: the sample decides speed, not the result.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ n as u64;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (((state >> 11) as u128 * bound as u128) >> 53) as usize
    };
    let r = (4 * n).min(m);
    let mut sample: Vec<f64> = (0..r)
        .map(|_| {
            let (a, b) = (next(n), next(n - 1));
            let (i, j) = if b >= a { (a, b + 1) } else { (b, a) };
            (v[j] - v[i]) / (t[j] - t[i])
        })
        .collect();
    // The sample's order statistics at the brackets' ends: positions a < b per rank.
    let rf = r as f64;
    let ends: Vec<(f64, f64)> = ranks
        .iter()
        .map(|&k| {
            let p = (k as f64 + 0.5) / m as f64;
            let spread = 4.0 * (rf * p * (1.0 - p)).sqrt() + 2.0;
            ((p * rf - spread).floor(), (p * rf + spread).ceil())
        })
        .collect();
    let mut positions: Vec<usize> = ends
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|&x| x >= 0.0 && x < rf)
        .map(|x| x as usize)
        .collect();
    let values = select_ascending(&mut sample, &mut positions);
    let at = |x: f64, outside: f64| {
        if x < 0.0 || x >= rf {
            return Some(outside);
        }
        positions.binary_search(&(x as usize)).ok().map(|i| values[i])
    };
    let mut brackets: Vec<(f64, f64, Vec<usize>)> = Vec::new();
    for (slot, &(a, b)) in ends.iter().enumerate() {
        let (lo, hi) = (at(a, f64::NEG_INFINITY)?, at(b, f64::INFINITY)?);
        match brackets.iter_mut().find(|(l, h, _)| lo <= *h && *l <= hi) {
            Some(bracket) => {
                bracket.0 = bracket.0.min(lo);
                bracket.1 = bracket.1.max(hi);
                bracket.2.push(slot);
            }
            None => brackets.push((lo, hi, vec![slot])),
        }
    }
    let mut out = vec![f64::NAN; ranks.len()];
    let mut inside = Vec::new();
    for (lo, hi, slots) in brackets {
        if lo >= hi {
            return None;
        }
        let below = count_at_most(t, v, lo, m);
        inside.clear();
        enumerate_between(t, v, lo, hi, &mut inside);
        let mut local: Vec<usize> = Vec::with_capacity(slots.len());
        for &slot in &slots {
            let k = ranks[slot].checked_sub(below as usize).filter(|&k| k < inside.len())?;
            local.push(k);
        }
        let mut wanted = local.clone();
        let values = select_ascending(&mut inside, &mut wanted);
        for (&slot, k) in slots.iter().zip(&local) {
            let value = values[wanted.binary_search(k).ok()?];
            // Pairs within rounding of a bracket's end may be misfiled; the value must be
            // clear of both ends for its rank to be exact.
            if value <= lo || value >= hi {
                return None;
            }
            out[slot] = value;
        }
    }
    Some(out)
}

/// The values of `values` at sorted positions `positions` (sorted and deduplicated here), each
/// selection on the part right of the previous one. Reorders `values`.
fn select_ascending(values: &mut [f64], positions: &mut Vec<usize>) -> Vec<f64> {
    positions.sort_unstable();
    positions.dedup();
    let mut start = 0;
    positions
        .iter()
        .map(|&p| {
            let value = *values[start..].select_nth_unstable_by(p - start, f64::total_cmp).1;
            start = p + 1;
            value
        })
        .collect()
}

/// The keys `vᵢ − s·tᵢ` of the dual order (±∞: the index order, ascending or descending).
fn dual_keys(t: &[f64], v: &[f64], s: f64) -> Vec<f64> {
    if s == f64::NEG_INFINITY {
        (0..t.len()).map(|i| i as f64).collect()
    } else if s == f64::INFINITY {
        (0..t.len()).map(|i| -(i as f64)).collect()
    } else {
        t.iter().zip(v).map(|(t, v)| v - s * t).collect()
    }
}

/// Pairs i < j whose slope is at most `s` (of `m` pairs in all).
fn count_at_most(t: &[f64], v: &[f64], s: f64, m: usize) -> u64 {
    if s == f64::NEG_INFINITY {
        return 0;
    }
    if s == f64::INFINITY {
        return m as u64;
    }
    let mut keys = dual_keys(t, v, s);
    let mut buf = vec![0.0; keys.len()];
    count_inversions(&mut keys, &mut buf, true)
}

/// Appends the slopes of the pairs in `(lo, hi]`: a pair (i < j) is above `lo` when `i` comes
/// first in the `lo` order (keys ascending, ties by index descending) and at most `hi` when `j`
/// comes first in the `hi` order — the inversions between the two orders, enumerated by merge
/// sort.
fn enumerate_between(t: &[f64], v: &[f64], lo: f64, hi: f64, out: &mut Vec<f64>) {
    let n = t.len();
    let order = |s: f64| {
        let keys = dual_keys(t, v, s);
        let mut idx: Vec<u32> = (0..n as u32).collect();
        idx.sort_unstable_by(|&a, &b| {
            keys[a as usize].total_cmp(&keys[b as usize]).then(b.cmp(&a))
        });
        idx
    };
    let (by_lo, by_hi) = (order(lo), order(hi));
    let mut position = vec![0u32; n];
    for (p, &i) in by_hi.iter().enumerate() {
        position[i as usize] = p as u32;
    }
    let mut seq: Vec<u32> = by_lo.iter().map(|&i| position[i as usize]).collect();
    let mut buf = vec![0u32; n];
    let slope = |a: u32, b: u32| {
        let (i, j) =
            (by_hi[a as usize].min(by_hi[b as usize]), by_hi[a as usize].max(by_hi[b as usize]));
        (v[j as usize] - v[i as usize]) / (t[j as usize] - t[i as usize])
    };
    enumerate_inversions(&mut seq, &mut buf, &mut |a, b| out.push(slope(a, b)));
}

/// Calls `pair(earlier, later)` for every pair where an earlier element of `seq` is larger
/// than a later one (values distinct), sorting `seq`. O(n log n + pairs).
fn enumerate_inversions(seq: &mut [u32], buf: &mut [u32], pair: &mut impl FnMut(u32, u32)) {
    let n = seq.len();
    if n < 2 {
        return;
    }
    let mid = n / 2;
    {
        let (left, right) = seq.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        enumerate_inversions(left, bl, pair);
        enumerate_inversions(right, br, pair);
    }
    buf[..n].copy_from_slice(seq);
    let (left, right) = buf[..n].split_at(mid);
    let (mut i, mut j) = (0, 0);
    for slot in seq.iter_mut() {
        if j < right.len() && (i == left.len() || right[j] < left[i]) {
            for &earlier in &left[i..] {
                pair(earlier, right[j]);
            }
            *slot = right[j];
            j += 1;
        } else {
            *slot = left[i];
            i += 1;
        }
    }
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

    /// A deterministic pseudo-random stream in [-1, 1).
    fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    #[test]
    fn inversion_counts_match_every_pair() {
        let mut r = noise(7);
        for n in [0, 1, 2, 3, 10, 57] {
            // Rounded, so that ties occur.
            let keys: Vec<f64> = (0..n).map(|_| (r() * 4.0).round()).collect();
            for ties in [false, true] {
                let want = (0..n)
                    .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
                    .filter(|&(i, j)| {
                        let order = keys[j].total_cmp(&keys[i]);
                        order.is_lt() || (ties && order.is_eq())
                    })
                    .count() as u64;
                let (mut k, mut buf) = (keys.clone(), vec![0.0; n]);
                assert_eq!(count_inversions(&mut k, &mut buf, ties), want, "n {n} ties {ties}");
            }
        }
    }

    /// The selection-based fit gives exactly the pairwise fit's numbers, on generic data, on data
    /// full of tied slopes (integer values on a regular grid), with outliers, flat, and falling.
    #[test]
    fn fast_fit_equals_the_pairwise_fit() {
        let mut r = noise(42);
        let mut cases: Vec<Vec<(f64, f64)>> = Vec::new();
        for n in [64, 65, 120, 333, 720] {
            let mut t = 0.0;
            cases.push(
                (0..n)
                    .map(|i| {
                        t += 1.0 + r().abs() * 20.0;
                        (t, 1e9 + 1.7e4 * t + 3e6 * r() + if i % 37 == 0 { 5e8 } else { 0.0 })
                    })
                    .collect(),
            );
            cases.push(
                (0..n).map(|i| (10.0 * i as f64, (r() * 3.0).round() + (i / 50) as f64)).collect(),
            );
            cases.push((0..n).map(|i| (i as f64, 5.0)).collect());
            cases.push((0..n).map(|i| (i as f64 * 0.1, -2.0 * i as f64 + r())).collect());
        }
        for (c, xy) in cases.iter().enumerate() {
            let (fast, slow) = (theil_sen(xy).expect("fit"), theil_sen_pairs(xy).expect("fit"));
            assert_eq!(fast, slow, "case {c} ({} points)", xy.len());
        }
        // The fast path really ran on the generic case (it would also pass by falling back).
        let (t, v): (Vec<f64>, Vec<f64>) = cases[16].iter().copied().unzip();
        let m = t.len() * (t.len() - 1) / 2;
        assert!(select_slopes(&t, &v, &[0, m / 2, m - 1]).is_some());
    }

    /// The detector's estimates along a leaking sawtooth and a noisy ramp, with the SDK's window
    /// of 720, equal the ones computed with the pairwise fit at every sample.
    #[test]
    fn estimates_agree_with_the_pairwise_fit() {
        let mut r = noise(3);
        let mut leak = LeakDetector::new(4e9, 720).with_min_confidence(0.9);
        let mut reported = 0;
        for i in 0..1_000u64 {
            let ramp = 1e9 + 2e5 * i as f64 + 2e7 * r();
            let saw = if i < 800 { 0.0 } else { 3e7 * (i % 60) as f64 };
            let t = i * 10_000_000_000 + (r().abs() * 1e9) as u64;
            let fast = leak.update(t, ramp + saw);
            if i % 20 == 0 || i > 980 {
                assert_eq!(fast, leak.estimate_with(theil_sen_pairs), "sample {i}");
            }
            reported += usize::from(fast.is_some());
        }
        assert!(reported > 100, "{reported}");
    }

    #[test]
    fn flat_series_has_no_confidence() {
        let xy: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 5.0)).collect();
        let fit = theil_sen(&xy).expect("fit");
        assert_eq!(fit.slope, 0.0);
        assert!((fit.confidence - 0.5).abs() < 1e-6);
    }
}
