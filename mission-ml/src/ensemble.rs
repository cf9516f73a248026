//! The default detector: novelty scored by its rarity in the series, one alert per incident.
//!
//! [`Ensemble`] asks of every point "how new is this, and how rarely does this series produce
//! something this new?". Three kinds of newness, each a number in 0..=1:
//!
//! - **Spatial novelty**: the value leaves the range seen so far by more than
//!   [`Settings::spatial_margin`] of that range (a new extreme; the range is learned online,
//!   never the series' future minimum and maximum).
//! - **Context novelty** (the idea of the Contextual Anomaly Detector, CAD OSE): the value is
//!   quantized into [`Settings::bins`] bins whose width is learned from the first points, and
//!   the sequences of the last 1..=[`Settings::orders`] bins are looked up in a fixed-size
//!   hashed set of every sequence seen before. The share of sequences that are new, weighted
//!   by how rare newness has been in this series (`-log10` of its running rate), is the score.
//! - **Residual tails**: the residual against a fast exponentially weighted level and the
//!   step from the previous point, each scored by its SPOT tail probability
//!   ([`crate::detectors::Spot`]).
//!
//! A spatial novelty is graded by how improbable it is: about `2 / (n + 1)` for a new extreme
//! after `n` points, and `e` times less for each tenth of the range beyond the margin, so a
//! new extreme after 100 points is worth less than one after 10 000, and a far one more than
//! a near one.
//!
//! The largest of the three is then multiplied by its **rarity**: the share of this series'
//! earlier points that scored at least about as high (a 64-bin histogram with slow
//! forgetting; "about": within a tenth, so scores that creep up, as a trend's do, are not each
//! the first of their kind), on a log scale. A score that this series produces every day is
//! not news; the first of its kind is. The scale is **calibrated to the history's length**:
//! the rarest score `n` points can show is one in `n`, so full weight needs
//! `min(rarity_decades, log10 n)` decades, and the first of its kind scores the same in a
//! 400-point series as in a 20 000-point one. This is what makes one threshold work across
//! quiet and noisy, short and long series, the role Numenta's "anomaly likelihood" plays for
//! HTM.
//!
//! **Warm-up**: nothing is scored for the first [`Settings::warmup`] points (40), and the
//! spatial margin is wide at first (an extra `5 / n` of the range), so early points are
//! judged against wide bands rather than not at all: an anomaly after NAB's probation of a
//! 400-point series is scored.
//!
//! **One alert per incident**: a point's score counts only if it is higher than every score of
//! the last [`Settings::suppress`] sampling intervals (measured with the timestamps, so gaps
//! end a suppression); otherwise it is zeroed. The rule needs no threshold, so it suppresses
//! the same way whatever threshold a consumer (or NAB's sweep) applies, and a stronger event
//! still re-alerts. **Escalation**: inside the window, a point that deviates from the level
//! before the incident by more than 1.5 times the incident's largest deviation so far (and
//! scores at least half the incident's score) counts again, with the incident's score: a
//! larger second incident a few hours after the first is not swallowed by it.
//!
//! **Two operating points.** Novelty scores sit in the upper part of `0..=1` and are what a
//! benchmark threshold selects. Below them, scaled by [`Settings::sensitive_weight`], lies the
//! score of [`crate::detectors::Sensitive`] (residual tails, a CUSUM for level shifts and a
//! likelihood of recent scores, with incident suppression), which finds moderate sustained
//! shifts — a run of +2.4 σ over tens of points — in otherwise clean series. A point is an
//! alarm (`is_anomaly`) when its novelty score reaches [`Settings::alert_at`] (a conservative
//! paging level) or the sensitive detector raises an alarm.
//!
//! Cost: about 170–280 ns per point (NAB, release build); state under 4 KB per series (3 776 B
//! measured, 3 856 B during the first 200 points): a 2 KiB bit set of contexts, a 512 B
//! histogram, 128 B of suppression buckets, and the sensitive detector, whose level, step
//! statistics and two SPOTs (each keeping only the five largest of its 200 calibration
//! points) serve both tiers. All serde-serialisable, and a restored detector resumes with
//! identical scores.
//!
//! Input rules: a NaN or infinite value is skipped (scored 0, state unchanged). A time that
//! does not increase (duplicate or out of order) counts as one typical interval; a long gap
//! counts as at most 1 000 intervals.

use serde::{Deserialize, Serialize};

use crate::detectors::{Sensitive, tail_score};
use crate::{Detector, Score};

/// The default detector: the [`Ensemble`] with its default settings.
pub fn default_detector() -> Box<dyn Detector + Send> {
    Box::new(Ensemble::default())
}

/// The detector the SDK runs on per-call agent metrics: the default [`Ensemble`] that pages
/// on sustained shifts only ([`Ensemble::for_calls`]) — a model three times slower is a level
/// shift of about two deviations on the log scale even when calls vary by a factor of two,
/// while one slow call among thousands is not an incident.
pub fn agent_detector() -> Box<dyn Detector + Send> {
    Box::new(Ensemble::default().for_calls())
}

/// The parameters of [`Ensemble`]: one set for every series. The defaults were chosen on the
/// Numenta Anomaly Benchmark (one global set, as every NAB entrant does) and checked on
/// Merlion's synthetic series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Settings {
    /// Smoothing of the fast level the residuals are taken against (0.1: about 10 points of
    /// memory, so a level change shows for a few points only).
    pub level_alpha: f64,
    /// Risk of the SPOT tails of the residual and of the step (1e-4: a tail event is about
    /// one point in ten thousand).
    pub spot_risk: f64,
    /// Decades of tail probability that make a residual score 1 (7.5: a one-in-30-million
    /// residual is as new as a new extreme).
    pub tail_decades: f64,
    /// Margin beyond the range seen so far, as a share of that range, for a spatial novelty
    /// (0.05: small enough to catch a new extreme, large enough to ignore noise at the edge).
    pub spatial_margin: f64,
    /// Quantization bins over the range of the first 50 points (8, three bits, as CAD OSE uses);
    /// when the range grows past twice this many bins, the bins are widened and the context
    /// memory restarts.
    pub bins: f64,
    /// Longest context, in points (4).
    pub orders: usize,
    /// Forgetting of the running rate of new contexts (0.001: about a thousand points).
    pub novelty_alpha: f64,
    /// Decades of novelty rarity for a context score of 1 (2: novelty in a series where
    /// one point in a hundred is new scores fully).
    pub novelty_decades: f64,
    /// Decades of rarity (share of earlier points scoring as high) for full weight (4).
    pub rarity_decades: f64,
    /// Forgetting of the rarity histogram per point (0.0002: about 5 000 points).
    pub rarity_forget: f64,
    /// Points learned before anything is scored (40; the spatial margin is widened for the
    /// first few hundred points instead, see the module documentation).
    pub warmup: u64,
    /// Sampling intervals after a score during which only a higher score counts (20: an hour
    /// and forty minutes at five-minute sampling).
    pub suppress: f64,
    /// Novelty score at which a point is an alarm (0.9: the paging level; NAB's sweep picks its
    /// own threshold on `score`, about 0.49).
    pub alert_at: f64,
    /// Weight of the sensitive detector's score in the lower part of the range (0.4, below
    /// every novelty threshold worth using).
    pub sensitive_weight: f64,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl Settings {
    /// Sets [`level_alpha`](Self::level_alpha).
    pub fn with_level_alpha(mut self, level_alpha: f64) -> Self {
        self.level_alpha = level_alpha;
        self
    }

    /// Sets [`spot_risk`](Self::spot_risk).
    pub fn with_spot_risk(mut self, spot_risk: f64) -> Self {
        self.spot_risk = spot_risk;
        self
    }

    /// Sets [`tail_decades`](Self::tail_decades).
    pub fn with_tail_decades(mut self, tail_decades: f64) -> Self {
        self.tail_decades = tail_decades;
        self
    }

    /// Sets [`spatial_margin`](Self::spatial_margin).
    pub fn with_spatial_margin(mut self, spatial_margin: f64) -> Self {
        self.spatial_margin = spatial_margin;
        self
    }

    /// Sets [`bins`](Self::bins).
    pub fn with_bins(mut self, bins: f64) -> Self {
        self.bins = bins;
        self
    }

    /// Sets [`orders`](Self::orders).
    pub fn with_orders(mut self, orders: usize) -> Self {
        self.orders = orders;
        self
    }

    /// Sets [`novelty_alpha`](Self::novelty_alpha).
    pub fn with_novelty_alpha(mut self, novelty_alpha: f64) -> Self {
        self.novelty_alpha = novelty_alpha;
        self
    }

    /// Sets [`novelty_decades`](Self::novelty_decades).
    pub fn with_novelty_decades(mut self, novelty_decades: f64) -> Self {
        self.novelty_decades = novelty_decades;
        self
    }

    /// Sets [`rarity_decades`](Self::rarity_decades).
    pub fn with_rarity_decades(mut self, rarity_decades: f64) -> Self {
        self.rarity_decades = rarity_decades;
        self
    }

    /// Sets [`rarity_forget`](Self::rarity_forget).
    pub fn with_rarity_forget(mut self, rarity_forget: f64) -> Self {
        self.rarity_forget = rarity_forget;
        self
    }

    /// Sets [`warmup`](Self::warmup).
    pub fn with_warmup(mut self, warmup: u64) -> Self {
        self.warmup = warmup;
        self
    }

    /// Sets [`suppress`](Self::suppress).
    pub fn with_suppress(mut self, suppress: f64) -> Self {
        self.suppress = suppress;
        self
    }

    /// Sets [`alert_at`](Self::alert_at).
    pub fn with_alert_at(mut self, alert_at: f64) -> Self {
        self.alert_at = alert_at;
        self
    }

    /// Sets [`sensitive_weight`](Self::sensitive_weight).
    pub fn with_sensitive_weight(mut self, sensitive_weight: f64) -> Self {
        self.sensitive_weight = sensitive_weight;
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            level_alpha: 0.1,
            spot_risk: 1e-4,
            tail_decades: 7.5,
            spatial_margin: 0.05,
            bins: 8.0,
            orders: 4,
            novelty_alpha: 0.001,
            novelty_decades: 2.0,
            rarity_decades: 4.0,
            rarity_forget: 0.0002,
            warmup: 40,
            suppress: 20.0,
            alert_at: 0.9,
            sensitive_weight: 0.4,
        }
    }
}

/// The extra spatial margin, times the number of points seen (5: half the range at 10
/// points, a tenth at 50, nothing to speak of after a few hundred).
const EARLY_MARGIN: f64 = 5.0;
/// Share of the range beyond the margin that makes a new extreme e times rarer (0.1).
const SPATIAL_SCALE: f64 = 0.1;
/// Decades of improbability that make a new extreme score 1 (3.5: the first new extreme in
/// about 6 000 points, or a smaller series' extreme that leaves the range by far).
const SPATIAL_DECADES: f64 = 3.5;
/// Bins below a score whose earlier scores count as "as high" (6 of 64: a score must beat
/// the earlier ones by about a tenth to be the first of its kind, so scores that creep up
/// slowly, as a trend's do, are not news each time).
const RARITY_SLACK: usize = 6;
/// How many times the open incident's largest deviation a point must deviate to count again
/// (1.5).
const ESCALATION: f64 = 1.5;
/// The level-shift CUSUM of [`Ensemble::for_calls`]: drift and threshold in deviations.
const CALLS_DRIFT: f64 = 0.75;
const CALLS_THRESHOLD: f64 = 14.0;
/// Fewest decades of rarity for full weight, however short the history (1.5: one in 32).
const RARITY_FLOOR: f64 = 1.5;
/// Bits of the hashed set of contexts (2^14 bits, 2 KiB).
const TABLE_BITS: u32 = 14;
/// Points whose range sets the first bin width.
const CONTEXT_CALIBRATION: u64 = 50;
/// Points after a (re)start of the context memory before novelty is scored.
const CONTEXT_WARMUP: u64 = 100;
/// Buckets of the suppression window's running maximum.
const BUCKETS: usize = 16;
/// Bins of the rarity histogram.
const RARITY_BINS: usize = 64;

/// Context novelty: a fixed-size hashed set of the sequences of quantized values seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Contexts {
    /// Bit set of hashed sequences; a collision makes a new sequence look known (the set fills
    /// slowly: a few thousand distinct sequences in the longest NAB series).
    table: Vec<u64>,
    /// The last bins, oldest first.
    history: Vec<i64>,
    /// Bin width and origin, once calibrated.
    width: f64,
    origin: f64,
    since_reset: u64,
    /// Running rate of new sequences.
    rate: f64,
}

impl Contexts {
    fn new() -> Self {
        Self {
            table: vec![0; 1 << (TABLE_BITS - 6)],
            history: Vec::new(),
            width: 0.0,
            origin: 0.0,
            since_reset: 0,
            rate: 1.0,
        }
    }

    /// Sets a hash's bit; whether it was clear.
    fn insert(&mut self, hash: u64) -> bool {
        let i = (hash >> (64 - TABLE_BITS)) as usize;
        let (word, bit) = (i / 64, i % 64);
        let new = self.table[word] & (1 << bit) == 0;
        self.table[word] |= 1 << bit;
        new
    }

    /// Learns `value` (within the range `lo..=hi` seen so far) and returns its novelty score.
    fn push(&mut self, value: f64, lo: f64, hi: f64, s: &Settings) -> f64 {
        let range = hi - lo;
        if range.is_nan() || range <= 0.0 {
            return 0.0;
        }
        if self.width == 0.0 || range / self.width > 2.0 * s.bins {
            *self = Self { width: range / s.bins, origin: lo, ..Self::new() };
        }
        let bin = ((value - self.origin) / self.width).floor() as i64;
        let orders = s.orders.max(1);
        if self.history.len() == orders {
            self.history.remove(0);
        }
        self.history.push(bin);
        self.since_reset += 1;
        let mut hash: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut new = 0usize;
        for k in 0..self.history.len() {
            let b = self.history[self.history.len() - 1 - k];
            hash ^= (b as u64).wrapping_add((k as u64) << 40);
            hash = hash.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            hash ^= hash >> 31;
            if self.insert(hash) {
                new += 1;
            }
        }
        let share = new as f64 / orders as f64;
        let score = if self.since_reset > CONTEXT_WARMUP {
            (share * -self.rate.max(1e-6).log10() / s.novelty_decades).min(1.0)
        } else {
            0.0
        };
        let a = s.novelty_alpha.max(1.0 / self.since_reset as f64);
        self.rate += a * (share - self.rate);
        score
    }
}

/// The open incident of [`Ensemble`]'s suppression window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Incident {
    /// The level before the incident's highest-scoring point.
    before: f64,
    /// The incident's largest deviation from that level so far.
    peak: f64,
    /// Its highest score.
    score: f64,
}

/// The default detector; see the [module documentation](self).
///
/// ```
/// use mission_ml::Detector;
/// use mission_ml::ensemble::Ensemble;
///
/// let mut d = Ensemble::default();
/// let minute = 60_000_000_000;
/// let mut highest = 0.0_f64;
/// for i in 0..2_000u64 {
///     highest = highest.max(d.update(i * minute, (i % 10) as f64).score);
/// }
/// // A repeating pattern is learned; a new extreme is news, and is alarmed.
/// let spike = d.update(2_000 * minute, 50.0);
/// assert!(highest < 0.4 && spike.score > 0.7 && spike.is_anomaly, "{highest} {spike:?}");
/// // One alert per incident: the next points of the same incident do not score again.
/// assert!(d.update(2_001 * minute, 50.0).score < 0.4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    settings: Settings,
    /// Lowest and highest value seen.
    range: Option<(f64, f64)>,
    contexts: Contexts,
    /// Weighted counts of earlier scores per bin; each new count weighs `1 / (1 - forget)`
    /// times the one before (forgetting without touching every bin).
    rarity: Vec<f64>,
    rarity_total: f64,
    rarity_weight: f64,
    /// Time of the latest point, the typical interval (ns) and a clock in intervals.
    last_time: Option<u64>,
    interval: f64,
    clock: f64,
    /// Maximum score per bucket of the suppression window, and the current bucket.
    buckets: Vec<f64>,
    bucket_at: i64,
    /// The open incident: the level before it and its largest deviation from that level so
    /// far (escalation: a point deviating much more than that counts again).
    #[serde(default)]
    incident: Option<Incident>,
    sensitive: Sensitive,
    n: u64,
}

impl Default for Ensemble {
    fn default() -> Self {
        Self::with_settings(Settings::default())
    }
}

impl Ensemble {
    /// A detector with the given parameters.
    pub fn with_settings(settings: Settings) -> Self {
        Self {
            range: None,
            contexts: Contexts::new(),
            rarity: vec![0.0; RARITY_BINS],
            rarity_total: 0.0,
            rarity_weight: 1.0,
            last_time: None,
            interval: 0.0,
            clock: 0.0,
            buckets: vec![0.0; BUCKETS],
            bucket_at: 0,
            incident: None,
            sensitive: Sensitive::default()
                .with_residuals(settings.level_alpha, settings.spot_risk),
            n: 0,
            settings,
        }
    }

    /// The same, whose sensitive tier also alarms on a sustained level shift of about two
    /// deviations (see [`Sensitive::with_level_shift`]): for series without short cycles.
    pub fn with_level_shift(mut self) -> Self {
        self.sensitive = self.sensitive.with_level_shift();
        self
    }

    /// The detector for per-call agent metrics (latency, tokens, cost of each call): a level
    /// shift alarms ([`Ensemble::with_level_shift`]), and *only* sustained shifts do — one slow
    /// call or one long answer scores (its novelty is in [`Score::score`]) but pages no one,
    /// since single calls far in the tail are part of any model's normal traffic.
    pub fn for_calls(mut self) -> Self {
        self.sensitive =
            self.sensitive.with_level_shift_at(CALLS_DRIFT, CALLS_THRESHOLD).sustained_only();
        self
    }

    /// The parameters.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Advances the clock (in typical sampling intervals) to `time_ns`.
    fn tick(&mut self, time_ns: u64) {
        let dt = match self.last_time {
            Some(t) if time_ns > t => (time_ns - t) as f64,
            Some(_) => 0.0,
            None => {
                self.last_time = Some(time_ns);
                return;
            }
        };
        if dt == 0.0 {
            self.clock += 1.0;
            return;
        }
        self.last_time = Some(time_ns);
        self.interval = if self.interval == 0.0 {
            dt
        } else {
            self.interval + 0.05 * (dt.min(10.0 * self.interval) - self.interval)
        };
        self.clock += (dt / self.interval).min(1000.0);
    }

    /// The newness of a point: the largest of its residual-tail, spatial and context scores.
    /// `tail_p` is the tail probability of the point's residual and step, from the sensitive
    /// tier, which keeps the level, the step statistics and their SPOTs for both.
    fn novelty(&mut self, value: f64, tail_p: f64) -> f64 {
        let s = &self.settings;
        let tail = tail_score(tail_p) * 9.0 / s.tail_decades;

        let (lo, hi) = self.range.unwrap_or((value, value));
        let spatial = if self.n > s.warmup && hi > lo {
            let excess = (value - hi).max(lo - value) / (hi - lo);
            // Wide bands early: with few points seen, the range is still growing.
            let margin = s.spatial_margin + EARLY_MARGIN / self.n as f64;
            if excess > margin {
                // The chance of a new extreme after n points is about 2 / (n + 1); each tenth
                // of the range beyond the margin makes it e times less likely.
                let decades = (0.5 * (self.n as f64 + 1.0)).log10()
                    + (excess - margin) / (SPATIAL_SCALE * std::f64::consts::LN_10);
                (decades / SPATIAL_DECADES).min(1.0)
            } else {
                0.0
            }
        } else {
            0.0
        };
        let (lo, hi) = (lo.min(value), hi.max(value));
        self.range = Some((lo, hi));

        let context =
            if self.n >= CONTEXT_CALIBRATION { self.contexts.push(value, lo, hi, s) } else { 0.0 };
        tail.max(spatial).max(context).min(1.0)
    }

    /// Weighs a score by how rarely this series scored as high before, then learns it.
    fn rarity(&mut self, score: f64) -> f64 {
        let bin = ((score * RARITY_BINS as f64) as usize).min(RARITY_BINS - 1);
        let above: f64 = self.rarity[bin.saturating_sub(RARITY_SLACK)..].iter().sum();
        let p = (above + self.rarity_weight) / (self.rarity_total + self.rarity_weight);
        self.rarity[bin] += self.rarity_weight;
        self.rarity_total += self.rarity_weight;
        self.rarity_weight /= 1.0 - self.settings.rarity_forget;
        if self.rarity_weight > 1e100 {
            let w = self.rarity_weight;
            self.rarity.iter_mut().for_each(|b| *b /= w);
            self.rarity_total /= w;
            self.rarity_weight = 1.0;
        }
        // Calibrated to the history's length: the rarest score a history of n points can show
        // is one in n, so a short history needs fewer decades for full weight.
        let reachable = ((self.rarity_total / self.rarity_weight) + 1.0).log10().max(RARITY_FLOOR);
        score * (-p.log10() / self.settings.rarity_decades.min(reachable)).min(1.0)
    }

    /// Zeroes a score unless it beats every score of the suppression window, or escalates the
    /// open incident: deviates from the level before the incident by more than
    /// [`ESCALATION`] times the incident's largest deviation so far (then it counts with the
    /// incident's score, so it fires at whatever threshold the incident fired).
    fn suppress(&mut self, score: f64, value: f64, level: f64) -> f64 {
        let width = (self.settings.suppress / BUCKETS as f64).max(1e-9);
        let bucket = (self.clock / width).floor() as i64;
        let gone = (bucket - self.bucket_at).clamp(0, BUCKETS as i64);
        for k in 1..=gone {
            self.buckets[(self.bucket_at + k).rem_euclid(BUCKETS as i64) as usize] = 0.0;
        }
        self.bucket_at = self.bucket_at.max(bucket);
        let recent = self.buckets.iter().copied().fold(0.0, f64::max);
        if recent <= 0.0 {
            self.incident = None;
        }
        let slot = &mut self.buckets[bucket.rem_euclid(BUCKETS as i64) as usize];
        *slot = slot.max(score);
        if score > recent {
            // The highest score of the window is the incident's reference.
            match &mut self.incident {
                Some(i) if score < i.score => i.peak = i.peak.max((value - i.before).abs()),
                _ if score > 0.0 => {
                    self.incident =
                        Some(Incident { before: level, peak: (value - level).abs(), score });
                }
                _ => {}
            }
            return score;
        }
        match &mut self.incident {
            Some(i) if (value - i.before).abs() > ESCALATION * i.peak && score >= 0.5 * i.score => {
                i.peak = (value - i.before).abs();
                i.score
            }
            _ => 0.0,
        }
    }
}

impl Detector for Ensemble {
    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self).ok()
    }

    fn update(&mut self, time_ns: u64, value: f64) -> Score {
        let (sensitive, tail_p, level) = self.sensitive.update_shared(time_ns, value);
        if !value.is_finite() {
            return Score { score: 0.0, is_anomaly: false, ..sensitive };
        }
        self.n += 1;
        self.tick(time_ns);
        let novelty = self.novelty(value, tail_p);
        let weighed = self.rarity(novelty);
        let score =
            if self.n > self.settings.warmup { self.suppress(weighed, value, level) } else { 0.0 };
        Score {
            score: score.max(self.settings.sensitive_weight * sensitive.score).clamp(0.0, 1.0),
            is_anomaly: (score >= self.settings.alert_at && !self.sensitive.is_sustained_only())
                || sensitive.is_anomaly,
            ..sensitive
        }
    }
}
