//! The detectors, each online and O(1) per point, that the default ensemble
//! ([`crate::ensemble`]) is built from.
//!
//! | detector | finds | how |
//! |---|---|---|
//! | [`RobustBaseline`] | spikes and dips | exponentially weighted level and mean absolute deviation (a robust scale) |
//! | [`Spot`] | extreme values at a chosen risk | peaks over threshold with a generalized Pareto tail (SPOT, Siffer et al., KDD 2017), fitted by the method of moments on running sums |
//! | [`Cusum`] | level shifts | two-sided CUSUM of standardized residuals |
//! | [`SeasonalBaseline`] | departures from a daily/weekly cycle | a per-phase level for a known period, residuals scored robustly |
//! | [`Sensitive`] | moderate sustained shifts in clean series | residual tails + level shift + a likelihood of the recent scores against their own history, with alarm suppression until calm |
//! | [`Ensemble`](crate::ensemble::Ensemble) (the default, in [`crate::ensemble`]) | new extremes, new value sequences, extreme residuals; one alert per incident | novelty scored by its rarity in the series, suppression by a running maximum, and [`Sensitive`] below it |
//!
//! Input rules, the same for every detector in this module: a NaN or infinite value is skipped (scored 0, state
//! unchanged); times are used only to order points, so duplicate or out-of-order times are
//! scored as the next point, and a long gap is treated like any other step.

use serde::{Deserialize, Serialize};

use crate::{Detector, Score};

fn skipped(expected: f64, lower: f64, upper: f64) -> Score {
    Score { score: 0.0, is_anomaly: false, expected, lower, upper }
}

/// An exponentially weighted mean and mean absolute deviation: a location and a robust scale
/// that follow slow drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EwStats {
    alpha: f64,
    mean: f64,
    mad: f64,
    n: u64,
}

impl EwStats {
    /// Statistics with smoothing `alpha` (the weight of each new point; 1/alpha points of
    /// memory).
    pub fn new(alpha: f64) -> Self {
        Self { alpha: alpha.clamp(1e-6, 1.0), mean: 0.0, mad: 0.0, n: 0 }
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The mean absolute deviation (≈ 0.8 standard deviations for Gaussian data).
    pub fn mad(&self) -> f64 {
        self.mad
    }

    /// Points seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Adds a point. The first points use a plain average, so early estimates are not biased
    /// toward the first value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let a = self.alpha.max(1.0 / self.n as f64);
        let deviation = (x - self.mean).abs();
        if self.n == 1 {
            self.mean = x;
            return;
        }
        self.mean += a * (x - self.mean);
        self.mad += a * (deviation - self.mad);
    }

    /// `|x - mean|` in units of the scale, with a floor on the scale so a flat series does not
    /// turn every change into infinity.
    pub fn z(&self, x: f64) -> f64 {
        (x - self.mean).abs() / self.floor_scale()
    }

    fn floor_scale(&self) -> f64 {
        self.mad.max(1e-6 * self.mean.abs().max(1e-3))
    }
}

/// Spikes and dips against an exponentially weighted level and robust scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustBaseline {
    stats: EwStats,
    threshold: f64,
    warmup: u64,
}

impl Default for RobustBaseline {
    fn default() -> Self {
        Self::new(0.02, 6.0)
    }
}

impl RobustBaseline {
    /// Smoothing `alpha`; an alarm when a point is more than `threshold` deviations away.
    pub fn new(alpha: f64, threshold: f64) -> Self {
        Self { stats: EwStats::new(alpha), threshold, warmup: 30 }
    }
}

impl Detector for RobustBaseline {
    fn update(&mut self, _time_ns: u64, value: f64) -> Score {
        let scale = self.stats.floor_scale();
        let (m, band) = (self.stats.mean(), self.threshold * scale);
        if !value.is_finite() {
            return skipped(m, m - band, m + band);
        }
        let z = self.stats.z(value);
        let ready = self.stats.count() >= self.warmup;
        self.stats.push(value);
        Score {
            score: if ready { (z / (2.0 * self.threshold)).min(1.0) } else { 0.0 },
            is_anomaly: ready && z > self.threshold,
            expected: m,
            lower: m - band,
            upper: m + band,
        }
    }
}

/// Extreme values at a chosen risk: SPOT (Siffer, Fouque, Termier, Largouët, "Anomaly Detection
/// in Streams with Extreme Value Theory", KDD 2017). Above an initial high quantile `t` the
/// excesses follow a generalized Pareto distribution; its parameters are fitted by the method
/// of moments on exponentially weighted running sums of the excesses (O(1) per point), and the
/// alarm threshold is the value exceeded with probability `risk`. Works on the magnitude of a
/// residual (one-sided).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spot {
    risk: f64,
    /// The initial threshold `t` (a high quantile of the calibration points), or `None` while
    /// calibrating.
    t: Option<f64>,
    /// While calibrating: the largest calibration points, ascending (only these decide `t`
    /// and the first peaks, so the rest are not kept).
    calibration: Vec<f64>,
    calibration_size: usize,
    /// Calibration points seen so far.
    #[serde(default)]
    calibration_seen: usize,
    /// Weighted count, sum and sum of squares of the excesses over `t`.
    peaks: f64,
    sum: f64,
    sum_sq: f64,
    /// Weighted count of all points since calibration (for the share of peaks).
    seen: f64,
    forget: f64,
}

impl Spot {
    /// A detector alarming at probability `risk` per point, calibrated on the first
    /// `calibration_size` points.
    pub fn new(risk: f64, calibration_size: usize) -> Self {
        Self {
            risk: risk.clamp(1e-9, 0.5),
            t: None,
            calibration: Vec::new(),
            calibration_size: calibration_size.max(20),
            calibration_seen: 0,
            peaks: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            seen: 0.0,
            forget: 1.0 - 1e-4,
        }
    }

    /// The value exceeded with probability `risk`, once calibrated.
    pub fn threshold(&self) -> Option<f64> {
        let t = self.t?;
        if self.peaks < 5.0 {
            return Some(t * 2.0);
        }
        let mean = self.sum / self.peaks;
        let var = (self.sum_sq / self.peaks - mean * mean).max(1e-12);
        // Method of moments for the GPD: gamma = (1 - mean²/var) / 2, sigma = mean (1 - gamma).
        // gamma is kept ≥ 0 (an exponential tail or heavier): a bounded tail fitted on few
        // peaks would call values past its end impossible.
        let gamma = (0.5 * (1.0 - mean * mean / var)).clamp(0.0, 0.5);
        let sigma = (mean * (1.0 - gamma)).max(1e-12);
        let ratio = self.risk * self.seen / self.peaks;
        let excess = if gamma.abs() < 1e-6 {
            -sigma * ratio.ln()
        } else {
            sigma / gamma * (ratio.powf(-gamma) - 1.0)
        };
        Some(t + excess.max(0.0))
    }

    /// The probability that a value exceeds `x` under the fitted tail (1 below `t`).
    pub fn tail_probability(&self, x: f64) -> f64 {
        let Some(t) = self.t else { return 1.0 };
        if x <= t || self.peaks < 5.0 || self.seen <= 0.0 {
            return 1.0_f64.min(self.peaks.max(1.0) / self.seen.max(1.0));
        }
        let mean = self.sum / self.peaks;
        let var = (self.sum_sq / self.peaks - mean * mean).max(1e-12);
        let gamma = (0.5 * (1.0 - mean * mean / var)).clamp(0.0, 0.5);
        let sigma = (mean * (1.0 - gamma)).max(1e-12);
        let y = x - t;
        let survival = if gamma.abs() < 1e-6 {
            (-y / sigma).exp()
        } else {
            let base = 1.0 + gamma * y / sigma;
            if base <= 0.0 { 0.0 } else { base.powf(-1.0 / gamma) }
        };
        (self.peaks / self.seen) * survival
    }

    /// Adds a magnitude; returns its tail probability (before it is learned).
    pub fn push(&mut self, x: f64) -> f64 {
        let Some(t) = self.t else {
            self.calibrate(x);
            return 1.0;
        };
        let p = self.tail_probability(x);
        self.peaks *= self.forget;
        self.sum *= self.forget;
        self.sum_sq *= self.forget;
        self.seen = self.seen * self.forget + 1.0;
        // Extreme points are not learned: they would raise the tail and hide the next ones.
        if x > t && p > self.risk {
            self.learn_peak(x - t);
        }
        p
    }

    /// The initial threshold is the calibration points' 98th percentile, sorted index
    /// `floor(0.98 n) - 1`: the `keep`-th largest. Only the `keep` largest points are kept
    /// (5 of 200: 40 bytes instead of 1.6 KB), which gives exactly the same threshold and
    /// first peaks as sorting all of them.
    fn calibrate(&mut self, x: f64) {
        let n = self.calibration_size;
        let keep = n + 1 - (n as f64 * 0.98) as usize;
        // A state saved by a version that kept every point, in arrival order: its points
        // count as seen, and only the largest are kept.
        if self.calibration_seen < self.calibration.len() {
            self.calibration_seen = self.calibration.len();
            self.calibration.sort_by(f64::total_cmp);
            let extra = self.calibration.len().saturating_sub(keep);
            self.calibration.drain(..extra);
        }
        self.calibration_seen += 1;
        if self.calibration.len() == keep {
            if x.total_cmp(&self.calibration[0]).is_le() {
                return self.finish_calibration(keep);
            }
            self.calibration.remove(0);
        }
        self.calibration.reserve_exact(keep - self.calibration.len());
        let at = self.calibration.partition_point(|v| v.total_cmp(&x).is_le());
        self.calibration.insert(at, x);
        self.finish_calibration(keep);
    }

    /// Sets the initial threshold and learns the first peaks once every calibration point has
    /// been seen.
    fn finish_calibration(&mut self, keep: usize) {
        if self.calibration_seen >= self.calibration_size {
            let top = std::mem::take(&mut self.calibration);
            let t = top[top.len().saturating_sub(keep)];
            self.t = Some(t);
            self.seen = self.calibration_seen as f64;
            for v in top.iter().filter(|v| **v > t) {
                self.learn_peak(v - t);
            }
        }
    }

    fn learn_peak(&mut self, excess: f64) {
        self.peaks += 1.0;
        self.sum += excess;
        self.sum_sq += excess * excess;
    }
}

impl Detector for Spot {
    fn update(&mut self, _time_ns: u64, value: f64) -> Score {
        let upper = self.threshold().unwrap_or(f64::INFINITY);
        if !value.is_finite() {
            return skipped(0.0, f64::NEG_INFINITY, upper);
        }
        let p = self.push(value);
        Score {
            score: tail_score(p),
            is_anomaly: p < self.risk,
            expected: self.t.unwrap_or(0.0),
            lower: f64::NEG_INFINITY,
            upper,
        }
    }
}

/// A tail probability as a 0..1 score: 0 for ordinary values, rising on a log scale to 1 at a
/// one-in-a-billion event.
pub(crate) fn tail_score(p: f64) -> f64 {
    if p >= 1.0 {
        return 0.0;
    }
    (-(p.max(1e-12)).log10() / 9.0).clamp(0.0, 1.0)
}

/// Level shifts: a two-sided CUSUM of residuals standardized by a robust scale; the statistic
/// resets when it raises an alarm, so a shift is reported once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    stats: EwStats,
    drift: f64,
    threshold: f64,
    high: f64,
    low: f64,
    warmup: u64,
    /// After an alarm, move the baseline to the new level (for a raw series; not for
    /// residuals, which return to zero by themselves).
    reanchor: bool,
    /// A fast mean (weight 0.2 per point): where the series is now, which is where the
    /// baseline moves to after an alarm.
    #[serde(default)]
    recent: Option<f64>,
}

impl Default for Cusum {
    fn default() -> Self {
        Self::new(0.005, 0.5, 12.0)
    }
}

impl Cusum {
    /// Baseline smoothing `alpha`; `drift` (in deviations) ignored per point; an alarm when the
    /// accumulated excess passes `threshold` deviations.
    pub fn new(alpha: f64, drift: f64, threshold: f64) -> Self {
        Self {
            stats: EwStats::new(alpha),
            drift,
            threshold,
            high: 0.0,
            low: 0.0,
            warmup: 50,
            reanchor: true,
            recent: None,
        }
    }

    /// The same, over residuals of a faster baseline (a change shows as a run of same-signed
    /// residuals while the baseline catches up; drift and cycles slower than the baseline do
    /// not).
    pub fn on_residuals(alpha: f64, drift: f64, threshold: f64) -> Self {
        Self { reanchor: false, ..Self::new(alpha, drift, threshold) }
    }

    /// The current statistic in units of the threshold (≥ 1 is an alarm).
    pub fn level(&self) -> f64 {
        self.high.max(self.low) / self.threshold
    }
}

impl Detector for Cusum {
    fn update(&mut self, _time_ns: u64, value: f64) -> Score {
        let m = self.stats.mean();
        let s = self.stats.floor_scale();
        if !value.is_finite() {
            return skipped(m, m - self.threshold * s, m + self.threshold * s);
        }
        let ready = self.stats.count() >= self.warmup;
        let r = (value - m) / s;
        self.stats.push(value);
        let recent = self.recent.map_or(value, |f| f + 0.2 * (value - f));
        self.recent = Some(recent);
        if !ready {
            return skipped(m, m - self.threshold * s, m + self.threshold * s);
        }
        self.high = (self.high + r - self.drift).max(0.0);
        self.low = (self.low - r - self.drift).max(0.0);
        let level = self.level();
        let alarm = level >= 1.0;
        if alarm {
            // The shift is reported once: the baseline jumps to the new level.
            self.high = 0.0;
            self.low = 0.0;
            if self.reanchor {
                self.stats.mean = recent;
            }
        }
        Score {
            score: (level / 2.0).min(1.0),
            is_anomaly: alarm,
            expected: m,
            lower: m - self.threshold * s,
            upper: m + self.threshold * s,
        }
    }
}

/// A series with a known cycle (24 points a day, 168 a week): one level per phase of the
/// cycle, and residuals against it scored robustly. O(period) memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeasonalBaseline {
    period: usize,
    phase: usize,
    levels: Vec<f64>,
    seen: Vec<bool>,
    alpha: f64,
    residuals: EwStats,
    threshold: f64,
}

impl SeasonalBaseline {
    /// A cycle of `period` points; per-phase smoothing `alpha`; an alarm beyond `threshold`
    /// residual deviations.
    pub fn new(period: usize, alpha: f64, threshold: f64) -> Self {
        let period = period.max(1);
        Self {
            period,
            phase: 0,
            levels: vec![0.0; period],
            seen: vec![false; period],
            alpha,
            residuals: EwStats::new(0.01),
            threshold,
        }
    }
}

impl Detector for SeasonalBaseline {
    fn update(&mut self, _time_ns: u64, value: f64) -> Score {
        let i = self.phase;
        let expected = self.levels[i];
        let band = self.threshold * self.residuals.floor_scale();
        if !value.is_finite() {
            return skipped(expected, expected - band, expected + band);
        }
        self.phase = (self.phase + 1) % self.period;
        if !self.seen[i] {
            self.seen[i] = true;
            self.levels[i] = value;
            return skipped(value, value, value);
        }
        let residual = value - expected;
        let z = self.residuals.z(residual);
        let ready = self.residuals.count() >= 2 * self.period as u64;
        self.residuals.push(residual);
        self.levels[i] += self.alpha * residual;
        Score {
            score: if ready { (z / (2.0 * self.threshold)).min(1.0) } else { 0.0 },
            is_anomaly: ready && z > self.threshold,
            expected,
            lower: expected - band,
            upper: expected + band,
        }
    }
}

/// Moderate sustained shifts: residuals of a fast baseline scored by an extreme-value tail, a
/// level-shift statistic, and the likelihood of the recent scores against their own long
/// history (as Numenta's anomaly likelihood does), with alarm suppression: one alert per
/// incident until the scores calm down. It finds a run of +2.4 σ over tens of points in a clean
/// series, but its alarms are too frequent on real, drifting series (38.2 on NAB when it was
/// the default); the default [`Ensemble`](crate::ensemble::Ensemble) uses it as its sensitive tier.
///
/// Per point: three exponentially weighted statistics, a CUSUM step and a SPOT step — a few
/// dozen floating-point operations, O(1) memory (a short ring of the last raw scores).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sensitive {
    level: EwStats,
    diff: EwStats,
    previous: Option<f64>,
    spot: Spot,
    spot_diff: Spot,
    cusum: Cusum,
    /// Optional: a sustained shift too small for the residual CUSUM (which the fast baseline
    /// catches up with within a few points), found by a CUSUM of the raw values against a
    /// slow baseline. Off by default: a series with a cycle shorter than the slow baseline's
    /// memory (a few hundred points) would keep it firing. See [`Sensitive::with_level_shift`].
    #[serde(default)]
    level_shift: Option<Cusum>,
    /// Alarm on sustained shifts only (the CUSUMs), not on a single point's tail: see
    /// [`Sensitive::sustained_only`].
    #[serde(default)]
    sustained_only: bool,
    raw_history: EwStats,
    recent: Vec<f64>,
    recent_at: usize,
    /// Whether an incident is open (an alert was raised and the scores have not calmed yet).
    in_incident: bool,
    /// Points of the open incident so far, and consecutive calm points in it.
    incident_age: u64,
    calm: u64,
    /// Score at or above which a point is an alert.
    pub alert_at: f64,
    /// Raw score below which a point counts as calm.
    pub calm_below: f64,
    /// Consecutive calm points that close an incident.
    pub calm_points: u64,
    /// Longest incident, in points (a lasting change becomes the new normal).
    pub max_incident: u64,
    n: u64,
}

impl Default for Sensitive {
    fn default() -> Self {
        Self {
            level: EwStats::new(0.1),
            diff: EwStats::new(0.01),
            previous: None,
            spot: Spot::new(1e-4, 200),
            spot_diff: Spot::new(1e-4, 200),
            cusum: Cusum::on_residuals(0.01, 1.0, 12.0),
            level_shift: None,
            sustained_only: false,
            raw_history: EwStats::new(0.002),
            recent: vec![0.0; 10],
            recent_at: 0,
            in_incident: false,
            incident_age: 0,
            calm: 0,
            alert_at: 0.5,
            calm_below: 0.3,
            calm_points: 20,
            max_incident: 100,
            n: 0,
        }
    }
}

impl Sensitive {
    /// Also alarms on a sustained level shift of about two deviations or more (a CUSUM of the
    /// raw values, drift 0.5, threshold 12 deviations, against a baseline with a memory of
    /// about 200 points that moves to the new level after an alarm). For series without
    /// short cycles, such as per-call latencies, where a moderate lasting shift matters.
    pub fn with_level_shift(mut self) -> Self {
        self.level_shift = Some(Cusum::default());
        self
    }

    /// Alarms on sustained shifts only: a single point far in the tail (one slow call among
    /// thousands, one long answer) still scores through the ensemble's novelty, but is not an
    /// incident of this tier. For per-call agent metrics.
    pub fn sustained_only(mut self) -> Self {
        self.sustained_only = true;
        self
    }

    /// The level-shift CUSUM ([`Sensitive::with_level_shift`]) with its own `drift` and
    /// `threshold` (in deviations; 0.5 and 12 by default).
    pub fn with_level_shift_at(mut self, drift: f64, threshold: f64) -> Self {
        self.level_shift = Some(Cusum::new(0.005, drift, threshold));
        self
    }

    /// The same residual statistics with the given level smoothing and SPOT risk (the
    /// ensemble's settings, when it shares this tier's residuals).
    pub(crate) fn with_residuals(mut self, level_alpha: f64, risk: f64) -> Self {
        self.level = EwStats::new(level_alpha);
        self.spot = Spot::new(risk, 200);
        self.spot_diff = Spot::new(risk, 200);
        self
    }

    /// The score, and what the ensemble shares of the work: the tail probability of the
    /// point's residual and step (the smaller of the two SPOTs'), and the level before it (1.0
    /// and the level for a skipped point).
    pub(crate) fn update_shared(&mut self, time_ns: u64, value: f64) -> (Score, f64, f64) {
        let level = self.level.mean();
        let (score, tail_p) = self.update_with(time_ns, value);
        (score, tail_p, level)
    }

    /// Whether it alarms on sustained shifts only ([`Sensitive::sustained_only`]).
    pub(crate) fn is_sustained_only(&self) -> bool {
        self.sustained_only
    }

    fn raw(&mut self, time_ns: u64, value: f64) -> (f64, f64, f64) {
        let expected = self.level.mean();
        let z = if self.level.count() > 1 { self.level.z(value) } else { 0.0 };
        self.level.push(value);
        let step = self.previous.map_or(0.0, |p| value - p);
        self.previous = Some(value);
        let dz = if self.diff.count() > 1 { self.diff.z(step) } else { 0.0 };
        self.diff.push(step);
        let tail_p = self.spot.push(z).min(self.spot_diff.push(dz));
        let tail = tail_score(tail_p);
        let shift = self.cusum.update(time_ns, value - expected);
        let shift = match &mut self.level_shift {
            Some(cusum) => {
                let level = cusum.update(time_ns, value);
                if level.is_anomaly { 1.0 } else { shift.score.max(level.score) }
            }
            None => shift.score,
        };
        if self.sustained_only {
            (shift, expected, tail_p)
        } else {
            (tail.max(shift), expected, tail_p)
        }
    }

    /// [`Detector::update`], and the point's tail probability (1.0 for a skipped point).
    fn update_with(&mut self, time_ns: u64, value: f64) -> (Score, f64) {
        let band = 6.0 * self.level.floor_scale();
        let m = self.level.mean();
        if !value.is_finite() {
            return (skipped(m, m - band, m + band), 1.0);
        }
        self.n += 1;
        let (raw, expected, tail_p) = self.raw(time_ns, value);
        // The likelihood of the recent raw scores against their long history.
        self.recent[self.recent_at] = raw;
        self.recent_at = (self.recent_at + 1) % self.recent.len();
        let short = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let z = if self.raw_history.count() > 100 {
            (short - self.raw_history.mean()) / (1.25 * self.raw_history.mad()).max(1e-3)
        } else {
            0.0
        };
        self.raw_history.push(raw);
        let likelihood =
            if z > 0.0 { 1.0 - 0.5 * (-z / std::f64::consts::SQRT_2).exp().min(1.0) } else { 0.0 };
        let mut score = raw.max(likelihood * raw.max(0.5)).min(1.0);
        if self.n < 150 {
            score = 0.0;
        }
        // One alert per incident: after an alert, scores are damped until the raw scores have
        // been calm for a while (or the incident has lasted long enough to be the new normal).
        if self.in_incident {
            self.incident_age += 1;
            self.calm = if raw < self.calm_below { self.calm + 1 } else { 0 };
            if self.calm >= self.calm_points || self.incident_age >= self.max_incident {
                self.in_incident = false;
            }
            score *= 0.1;
        }
        let alert = score >= self.alert_at;
        if alert {
            self.in_incident = true;
            self.incident_age = 0;
            self.calm = 0;
        }
        (Score { score, is_anomaly: alert, expected, lower: m - band, upper: m + band }, tail_p)
    }
}

impl Detector for Sensitive {
    fn update(&mut self, time_ns: u64, value: f64) -> Score {
        self.update_with(time_ns, value).0
    }
}
