//! Forecasting with prediction intervals: online Holt-Winters, i.e. the additive
//! exponential-smoothing state-space model ETS(A,Ad,A) — a level, a damped trend and an additive
//! seasonal cycle of a known period — updated one point at a time.
//!
//! | item | what |
//! |---|---|
//! | [`HoltWinters`] | the online model: [`observe`](HoltWinters::observe) a point, [`forecast`](HoltWinters::forecast) any horizon with intervals, [`time_to_cross`](HoltWinters::time_to_cross) a threshold; also a [`Detector`] scoring each point against its one-step interval |
//! | [`HoltWinters::fit`] | batch fitting on a whole training series: the smoothing parameters are chosen by Nelder–Mead on the in-sample one-step squared error |
//! | [`Smoothing`] | the four parameters α (level), β (trend), γ (season), φ (damping) |
//!
//! # The model
//!
//! With one-step error `e = y − (ℓ + φb + s)`, where `s` is the seasonal term of the current
//! phase, each point updates (error-correction form, Hyndman et al., *Forecasting with
//! Exponential Smoothing*, 2008, ch. 2):
//!
//! ```text
//! ℓ ← ℓ + φb + αe        b ← φb + βe        s ← s + γe
//! ```
//!
//! and the h-step forecast is `ℓ + (φ + φ² + … + φʰ)·b + s(phase + h)`. Memory is O(period):
//! one seasonal term per phase, plus the first two cycles buffered until the model is
//! initialised from them.
//!
//! # Prediction intervals
//!
//! The interval for horizon `h` is `mean ± z·σ_h`, with the analytical variance of the additive
//! model (Hyndman et al. 2008, Table 6.1, class 1):
//!
//! ```text
//! σ_h² = σ² · (1 + Σ_{j=1}^{h−1} c_j²),   c_j = α + β(φ + … + φʲ) + γ·[j mod m = 0]
//! ```
//!
//! where σ² is an exponentially weighted mean of the squared one-step errors (the plain mean
//! over the last [`error_window`](HoltWinters::with_error_window) points' worth). We use the
//! analytical form rather than empirical per-horizon error quantiles because it needs no
//! per-horizon memory, is defined for any horizon from the first forecast on, and is exact for
//! the model's Gaussian errors; its weakness is heavy-tailed or autocorrelated errors, where it
//! is too narrow — the tests check the nominal coverage on a noisy seasonal series.
//!
//! # Input rules
//!
//! A NaN or infinite value is skipped (state unchanged); so is a point whose update would
//! overflow the state. As a [`Detector`], a point whose time is not after the previous one is
//! skipped; with [`with_step`](HoltWinters::with_step) set, a gap of `k` missing steps advances
//! the model `k` times along its own forecast (at most four cycles' worth), otherwise times only
//! order points. Nothing panics.
//!
//! # Examples
//!
//! "Latency will cross the SLO in ~40 minutes":
//!
//! ```
//! use mission_ml::forecast::{HoltWinters, Smoothing};
//!
//! // p95 latency sampled once a minute, rising by 2 ms a minute around an hourly cycle. The
//! // trend is not damped (φ = 1): we assume the rise goes on at its current rate.
//! let mut model = HoltWinters::new(60).with_smoothing(Smoothing::default().with_phi(1.0));
//! for minute in 0..300 {
//!     let cycle = 5.0 * (minute as f64 * std::f64::consts::TAU / 60.0).sin();
//!     model.observe(200.0 + 2.0 * minute as f64 + cycle);
//! }
//! let slo_ms = 870.0; // ~70 ms above the last value
//! let crossing = model.time_to_cross(slo_ms, 120).expect("crosses within two hours");
//! assert!((30..=45).contains(&crossing.steps), "{crossing:?}"); // ~40 minutes
//! assert!(crossing.confidence > 0.9);
//! ```

use serde::{Deserialize, Serialize};

use crate::{Detector, Score};

/// The smoothing parameters of [`HoltWinters`].
///
/// Admissible values (checked when set; values outside are clamped): `0 < α ≤ 1`,
/// `0 ≤ β ≤ α`, `0 ≤ γ ≤ 1 − α`, `0 < φ ≤ 1`. β is the trend weight in error-correction form
/// (Holt's β* times α).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Smoothing {
    /// Weight of a one-step error in the level.
    pub alpha: f64,
    /// Weight of a one-step error in the trend.
    pub beta: f64,
    /// Weight of a one-step error in the seasonal term of its phase.
    pub gamma: f64,
    /// Damping of the trend per step (1 = a straight line, below 1 the trend fades out).
    pub phi: f64,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl Smoothing {
    /// Sets [`alpha`](Self::alpha).
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets [`beta`](Self::beta).
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets [`gamma`](Self::gamma).
    pub fn with_gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    /// Sets [`phi`](Self::phi).
    pub fn with_phi(mut self, phi: f64) -> Self {
        self.phi = phi;
        self
    }
}

impl Default for Smoothing {
    /// α = 0.2, β = 0.01, γ = 0.1, φ = 0.98: a slow level, a slower trend that flattens over
    /// about fifty steps, and a seasonal cycle that adapts over about ten cycles.
    fn default() -> Self {
        Self { alpha: 0.2, beta: 0.01, gamma: 0.1, phi: 0.98 }
    }
}

impl Smoothing {
    /// Parameters α, β, γ and φ (clamped to the admissible values where they are used).
    pub fn new(alpha: f64, beta: f64, gamma: f64, phi: f64) -> Self {
        Self { alpha, beta, gamma, phi }
    }

    /// The nearest admissible parameters (NaN replaced by the default).
    fn admissible(self) -> Self {
        let d = Self::default();
        let pick = |x: f64, default: f64| if x.is_finite() { x } else { default };
        let alpha = pick(self.alpha, d.alpha).clamp(1e-4, 1.0);
        let beta = pick(self.beta, d.beta).clamp(0.0, alpha);
        let gamma = pick(self.gamma, d.gamma).clamp(0.0, 1.0 - alpha);
        let phi = pick(self.phi, d.phi).clamp(1e-3, 1.0);
        Self { alpha, beta, gamma, phi }
    }
}

/// One step of a forecast: the expected value and the prediction interval around it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The expected value.
    pub mean: f64,
    /// The lower edge of the prediction interval.
    pub lower: f64,
    /// The upper edge of the prediction interval.
    pub upper: f64,
}

/// When a forecast first crosses a threshold, from [`HoltWinters::time_to_cross`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    /// Steps ahead at which the forecast mean first reaches the threshold (1 = the next point).
    pub steps: usize,
    /// The largest probability, over the steps from `steps` to the horizon, that the value at
    /// that step is past the threshold (Gaussian errors): a lower bound on the probability that
    /// the series crosses within the horizon.
    pub confidence: f64,
}

/// Settings of [`HoltWinters::fit`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct FitOptions {
    /// Whether the trend is damped (φ fitted in [0.8, 0.98]); otherwise φ = 1.
    pub damped: bool,
    /// Whether the model has a trend at all (otherwise β = 0).
    pub trend: bool,
    /// Fit on the last `tail` points only (all points when `None`).
    pub tail: Option<usize>,
    /// Most evaluations of the in-sample error per fit.
    pub max_evaluations: usize,
    /// The criterion: 1 = mean squared one-step error; `h` > 1 = mean squared error over
    /// horizons 1..=h (the trace of the in-sample forecast error covariance, Hyndman et al.
    /// 2008 §5.2), which suits forecasts far ahead better: on smooth series the one-step error
    /// favours α ≈ 1, and with it seasonal terms that hardly adapt.
    pub horizon: usize,
    /// With `horizon` > 1, the multi-step errors are taken from every `stride`-th point
    /// (cost O(n·horizon/stride) per evaluation).
    pub stride: usize,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl FitOptions {
    /// Sets [`damped`](Self::damped).
    pub fn with_damped(mut self, damped: bool) -> Self {
        self.damped = damped;
        self
    }

    /// Sets [`trend`](Self::trend).
    pub fn with_trend(mut self, trend: bool) -> Self {
        self.trend = trend;
        self
    }

    /// Sets [`tail`](Self::tail).
    pub fn with_tail(mut self, tail: Option<usize>) -> Self {
        self.tail = tail;
        self
    }

    /// Sets [`max_evaluations`](Self::max_evaluations).
    pub fn with_max_evaluations(mut self, max_evaluations: usize) -> Self {
        self.max_evaluations = max_evaluations;
        self
    }

    /// Sets [`horizon`](Self::horizon).
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.horizon = horizon;
        self
    }

    /// Sets [`stride`](Self::stride).
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
}

impl Default for FitOptions {
    /// A damped trend, the whole series, 400 evaluations, one-step errors.
    fn default() -> Self {
        Self { damped: true, trend: true, tail: None, max_evaluations: 400, horizon: 1, stride: 1 }
    }
}

/// Online additive Holt-Winters (ETS(A,Ad,A)) with prediction intervals; see the
/// [module docs](self) for the model, the intervals and the input rules.
///
/// O(period) memory, O(1) per point (O(period) once, when the first two cycles are in); the
/// state round-trips through serde.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoltWinters {
    /// Points per seasonal cycle (1 = no seasonality).
    period: usize,
    smoothing: Smoothing,
    /// Nominal coverage of the prediction intervals.
    confidence: f64,
    /// The expected spacing of points, for [`Detector::update`] gap filling.
    step_ns: Option<u64>,
    /// Points' worth of memory of the one-step error variance.
    error_window: u64,
    /// The first points, until there are enough to initialise the state.
    warmup: Vec<f64>,
    ready: bool,
    level: f64,
    trend: f64,
    /// The seasonal term of each phase.
    seasonal: Vec<f64>,
    /// The phase of the next point.
    phase: usize,
    /// Exponentially weighted mean squared one-step error, and how many errors it has seen.
    sigma2: f64,
    errors: u64,
    observations: u64,
    last_time_ns: Option<u64>,
    last_value: Option<f64>,
}

impl HoltWinters {
    /// A model with a seasonal cycle of `period` points (0 or 1: no seasonality; at most
    /// [`MAX_PERIOD`]) and default
    /// [`Smoothing`], 95% intervals. Forecasts start once two cycles (at least 3 points) have
    /// been observed.
    pub fn new(period: usize) -> Self {
        let period = period.clamp(1, MAX_PERIOD);
        Self {
            period,
            smoothing: Smoothing {
                gamma: if period > 1 { 0.1 } else { 0.0 },
                ..Smoothing::default()
            },
            confidence: 0.95,
            step_ns: None,
            error_window: default_error_window(period),
            warmup: Vec::with_capacity(warmup_len(period)),
            ready: false,
            level: 0.0,
            trend: 0.0,
            seasonal: vec![0.0; period],
            phase: 0,
            sigma2: 0.0,
            errors: 0,
            observations: 0,
            last_time_ns: None,
            last_value: None,
        }
    }

    /// Sets the smoothing parameters (clamped to the admissible region; γ is 0 without
    /// seasonality).
    pub fn with_smoothing(mut self, smoothing: Smoothing) -> Self {
        let mut s = smoothing.admissible();
        if self.period == 1 {
            s.gamma = 0.0;
        }
        self.smoothing = s;
        self
    }

    /// Sets the nominal coverage of the prediction intervals (default 0.95), clamped to
    /// [0.5, 0.9999].
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = if confidence.is_finite() { confidence.clamp(0.5, 0.9999) } else { 0.95 };
        self
    }

    /// Sets the expected spacing of points in nanoseconds, so [`Detector::update`] can tell a
    /// gap: each missing step advances the model along its own forecast.
    pub fn with_step(mut self, step_ns: u64) -> Self {
        self.step_ns = (step_ns > 0).then_some(step_ns);
        self
    }

    /// Sets how many points' worth of one-step errors the interval width remembers (default
    /// ten cycles, at least 200 points).
    pub fn with_error_window(mut self, points: u64) -> Self {
        self.error_window = points.max(2);
        self
    }

    /// Points per seasonal cycle (1 when there is no seasonality).
    pub fn period(&self) -> usize {
        self.period
    }

    /// The smoothing parameters in use.
    pub fn smoothing(&self) -> Smoothing {
        self.smoothing
    }

    /// Whether the model has seen enough points to forecast.
    pub fn is_ready(&self) -> bool {
        self.ready && self.is_consistent()
    }

    /// Whether the state holds together (it may not if it was deserialised from a state edited
    /// by hand). A model whose state does not neither learns nor forecasts.
    fn is_consistent(&self) -> bool {
        (1..=MAX_PERIOD).contains(&self.period)
            && self.seasonal.len() == self.period
            && self.phase < self.period
            && self.error_window > 0
    }

    /// Points accepted so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// The standard deviation of the one-step errors (0 before the first forecast).
    pub fn residual_sd(&self) -> f64 {
        self.sigma2.sqrt()
    }

    /// Takes the next point of the series. Returns `false` (and changes nothing) for a NaN or
    /// infinite value or one whose update would overflow the state. O(1); O(period) once, at
    /// initialisation.
    pub fn observe(&mut self, value: f64) -> bool {
        if !value.is_finite() || !self.is_consistent() {
            return false;
        }
        if !self.ready {
            self.warmup.push(value);
            if self.warmup.len() >= warmup_len(self.period) {
                let buffered = std::mem::take(&mut self.warmup);
                let (level, trend, seasonal) = initial_state(&buffered, self.period, true);
                if !(level.is_finite()
                    && trend.is_finite()
                    && seasonal.iter().all(|s| s.is_finite()))
                {
                    // Values so large their means overflow: start the warm-up again.
                    return false;
                }
                (self.level, self.trend, self.seasonal) = (level, trend, seasonal);
                self.ready = true;
                for &y in &buffered {
                    self.step(y);
                }
            }
        } else if !self.step(value) {
            return false;
        }
        self.observations += 1;
        self.last_value = Some(value);
        true
    }

    /// One recursion; `false` (state unchanged) if it would overflow.
    fn step(&mut self, y: f64) -> bool {
        let Smoothing { alpha, beta, gamma, phi } = self.smoothing;
        let Some(&s) = self.seasonal.get(self.phase) else { return false };
        let e = y - (self.level + phi * self.trend + s);
        let level = self.level + phi * self.trend + alpha * e;
        let trend = phi * self.trend + beta * e;
        let season = s + gamma * e;
        let w = (1.0 / (self.errors + 1) as f64).max(1.0 / self.error_window as f64);
        let sigma2 = self.sigma2 + w * (e * e - self.sigma2);
        if !(level.is_finite() && trend.is_finite() && season.is_finite() && sigma2.is_finite()) {
            return false;
        }
        (self.level, self.trend, self.seasonal[self.phase], self.sigma2) =
            (level, trend, season, sigma2);
        self.errors += 1;
        self.phase = (self.phase + 1) % self.seasonal.len();
        true
    }

    /// The seasonal term `h` steps ahead (0 for a state whose cycle was emptied by hand).
    fn seasonal_term(&self, h: usize) -> f64 {
        let m = self.seasonal.len().max(1);
        self.seasonal.get((self.phase + h - 1) % m).copied().unwrap_or(0.0)
    }

    /// Advances the model one step along its own forecast (a missing point).
    fn skip_step(&mut self) {
        let phi = self.smoothing.phi;
        self.level += phi * self.trend;
        self.trend *= phi;
        self.phase = (self.phase + 1) % self.seasonal.len().max(1);
    }

    /// The forecast for the next `horizon` points, each with its prediction interval at the
    /// configured confidence. Empty until [`is_ready`](Self::is_ready). O(horizon).
    pub fn forecast(&self, horizon: usize) -> Vec<Forecast> {
        if !self.is_ready() {
            return Vec::new();
        }
        let z = normal_quantile(0.5 + self.confidence / 2.0);
        self.paths(horizon)
            .map(|(mean, sd)| Forecast { mean, lower: mean - z * sd, upper: mean + z * sd })
            .collect()
    }

    /// `forecast(1)`'s only element, without the allocation (the [`Detector`] path).
    fn one_step(&self) -> Option<Forecast> {
        if !self.is_ready() {
            return None;
        }
        let z = normal_quantile(0.5 + self.confidence / 2.0);
        self.paths(1).next().map(|(mean, sd)| Forecast {
            mean,
            lower: mean - z * sd,
            upper: mean + z * sd,
        })
    }

    /// Mean and standard deviation for h = 1, 2, … horizon.
    fn paths(&self, horizon: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        let Smoothing { alpha, beta, gamma, phi } = self.smoothing;
        let (mut phi_h, mut phi_pow, mut sum_c2) = (0.0, 1.0, 0.0);
        (1..=horizon).map(move |h| {
            // c_{h−1} enters the variance of step h; phi_h is φ + … + φ^(h−1) here.
            if h > 1 {
                let j = h - 1;
                let seasonal = if self.period > 1 && j % self.period == 0 { gamma } else { 0.0 };
                let c = alpha + beta * phi_h + seasonal;
                sum_c2 += c * c;
            }
            phi_pow *= phi;
            phi_h += phi_pow;
            let mean = self.level + phi_h * self.trend + self.seasonal_term(h);
            (mean, (self.sigma2 * (1.0 + sum_c2)).sqrt())
        })
    }

    /// When the forecast first crosses `threshold` within `horizon` steps: upwards if the
    /// threshold is above the last observed value, downwards if below. `None` if the forecast
    /// mean does not reach it within the horizon, or before [`is_ready`](Self::is_ready).
    /// Multiply [`Crossing::steps`] by the sampling interval for a time. O(horizon).
    ///
    /// # Examples
    ///
    /// ```
    /// use mission_ml::forecast::{HoltWinters, Smoothing};
    ///
    /// let mut model = HoltWinters::new(1); // no seasonality, damped trend (φ = 0.98)
    /// for i in 0..200 {
    ///     model.observe(100.0 + i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 });
    /// }
    /// // The series is at ~300 and rising by 1 a step: a straight line would reach 320 in 20
    /// // steps. The damped trend fades (it adds at most φ/(1 − φ) = 49 times itself), so the
    /// // forecast gets there later, and never reaches 400.
    /// let crossing = model.time_to_cross(320.0, 100).expect("within 100 steps");
    /// assert!(crossing.steps > 20, "{crossing:?}");
    /// assert!(model.time_to_cross(400.0, 1000).is_none());
    /// ```
    pub fn time_to_cross(&self, threshold: f64, horizon: usize) -> Option<Crossing> {
        let last = self.last_value?;
        if !self.is_ready() || !threshold.is_finite() {
            return None;
        }
        let up = threshold >= last;
        let past = |x: f64| if up { x >= threshold } else { x <= threshold };
        let mut first = None;
        let mut confidence: f64 = 0.0;
        for (h, (mean, sd)) in self.paths(horizon).enumerate() {
            if first.is_none() && past(mean) {
                first = Some(h + 1);
            }
            if first.is_some() {
                let z = if up { mean - threshold } else { threshold - mean };
                let p = if sd > 0.0 {
                    normal_cdf(z / sd)
                } else if z >= 0.0 {
                    1.0
                } else {
                    0.0
                };
                confidence = confidence.max(p);
            }
        }
        first.map(|steps| Crossing { steps, confidence })
    }

    /// Fits a model to a whole training series: the state is initialised from its first cycles,
    /// the smoothing parameters minimise the in-sample mean squared one-step error (Nelder–Mead
    /// over a transform that keeps them admissible), and the returned model has observed the
    /// series — ready to [`forecast`](Self::forecast) what follows it, with σ² the in-sample
    /// mean squared error. NaN and infinite values are skipped.
    ///
    /// Returns `None` if fewer than two cycles (at least 3 points) of finite values remain.
    /// Cost: O(n) per evaluation, at most [`FitOptions::max_evaluations`] evaluations.
    ///
    /// # Examples
    ///
    /// ```
    /// use mission_ml::forecast::{FitOptions, HoltWinters};
    ///
    /// let series: Vec<f64> = (0..240).map(|t| 50.0 + 0.1 * t as f64 + [0.0, 5.0, 10.0, 5.0][t % 4]).collect();
    /// let model = HoltWinters::fit(&series, 4, &FitOptions::default()).expect("enough points");
    /// let next = model.forecast(4);
    /// assert!((next[2].mean - (50.0 + 24.2 + 10.0)).abs() < 1.0, "{next:?}");
    /// ```
    pub fn fit(series: &[f64], period: usize, options: &FitOptions) -> Option<Self> {
        let period = period.clamp(1, MAX_PERIOD);
        let mut y: Vec<f64> = series.iter().copied().filter(|v| v.is_finite()).collect();
        if let Some(tail) = options.tail {
            let tail = tail.max(warmup_len(period));
            if y.len() > tail {
                y.drain(..y.len() - tail);
            }
        }
        if y.len() < warmup_len(period) {
            return None;
        }
        let init = initial_state(&y, period, options.trend);
        let to_smoothing = |z: &[f64]| {
            let alpha = 1e-4 + (1.0 - 2e-4) * sigmoid(z[0]);
            let beta = if options.trend { alpha * sigmoid(z[1]) } else { 0.0 };
            let gamma = if period > 1 { (1.0 - alpha) * sigmoid(z[2]) } else { 0.0 };
            let phi = if !options.trend {
                1.0
            } else if options.damped {
                0.8 + 0.18 * sigmoid(z[3])
            } else {
                1.0
            };
            Smoothing { alpha, beta, gamma, phi }
        };
        let (horizon, stride) = (options.horizon.max(1), options.stride.max(1));
        let objective =
            |z: &[f64]| in_sample_mse(&y, period, &init, to_smoothing(z), horizon, stride);
        // Start from a slow model (α 0.1, β 0.01·α, γ 0.05·(1−α), φ 0.95).
        let start = [logit(0.1), logit(0.1), logit(0.05), logit(0.85)];
        let best = nelder_mead(objective, &start, 1.0, options.max_evaluations.max(10));
        let smoothing = to_smoothing(&best);
        let mut model = Self::new(period).with_error_window(y.len() as u64);
        model.smoothing = smoothing;
        (model.level, model.trend, model.seasonal) = init;
        model.ready = true;
        for &v in &y {
            if model.step(v) {
                model.observations += 1;
                model.last_value = Some(v);
            }
        }
        model.warmup = Vec::new();
        model.error_window = default_error_window(period);
        Some(model)
    }
}

/// The longest seasonal cycle, in points (a week of points 0.6 s apart).
pub const MAX_PERIOD: usize = 1 << 20;

fn warmup_len(period: usize) -> usize {
    if period > 1 { 2 * period } else { 3 }
}

fn default_error_window(period: usize) -> u64 {
    (10 * period as u64).max(200)
}

/// Level, trend and seasonal terms before the first point, from the first (up to four) cycles:
/// the trend from the change in cycle means, the seasonal terms from the detrended deviations
/// averaged over the cycles (summing to zero), the level so that the line passes through the
/// first cycle's mean. Without `trend`, the trend is 0.
fn initial_state(y: &[f64], period: usize, trend: bool) -> (f64, f64, Vec<f64>) {
    let m = period;
    let k = (y.len() / m).clamp(1, 4);
    let means: Vec<f64> =
        (0..k).map(|j| y[j * m..(j + 1) * m].iter().sum::<f64>() / m as f64).collect();
    let trend = if k > 1 && trend { (means[k - 1] - means[0]) / ((k - 1) * m) as f64 } else { 0.0 };
    let centre = (m as f64 - 1.0) / 2.0;
    let mut seasonal: Vec<f64> = (0..m)
        .map(|i| {
            (0..k).map(|j| y[j * m + i] - (means[j] + trend * (i as f64 - centre))).sum::<f64>()
                / k as f64
        })
        .collect();
    let mean_season = seasonal.iter().sum::<f64>() / m as f64;
    seasonal.iter_mut().for_each(|s| *s -= mean_season);
    let level = means[0] - trend * (centre + 1.0);
    (level, trend, seasonal)
}

/// In-sample mean squared error of the recursions from `init`: one-step errors when
/// `horizon` ≤ 1, else the errors at horizons 1..=`horizon` from every `stride`-th origin
/// (infinite if the state diverges).
fn in_sample_mse(
    y: &[f64],
    period: usize,
    init: &(f64, f64, Vec<f64>),
    s: Smoothing,
    horizon: usize,
    stride: usize,
) -> f64 {
    let (mut level, mut trend) = (init.0, init.1);
    let mut seasonal = init.2.clone();
    let (mut sse, mut count) = (0.0, 0usize);
    let n = y.len();
    for t in 0..n {
        if horizon > 1 && t % stride == 0 {
            let (mut phi_h, mut phi_pow) = (0.0, 1.0);
            for h in 1..=horizon.min(n - t) {
                phi_pow *= s.phi;
                phi_h += phi_pow;
                let e = y[t + h - 1] - (level + phi_h * trend + seasonal[(t + h - 1) % period]);
                sse += e * e;
            }
            count += horizon.min(n - t);
        }
        let i = t % period;
        let e = y[t] - (level + s.phi * trend + seasonal[i]);
        if horizon <= 1 {
            sse += e * e;
            count += 1;
        }
        level += s.phi * trend + s.alpha * e;
        trend = s.phi * trend + s.beta * e;
        seasonal[i] += s.gamma * e;
    }
    let mse = sse / count.max(1) as f64;
    if mse.is_finite() { mse } else { f64::INFINITY }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Minimises `f` from `x0` with the Nelder–Mead simplex (reflection 1, expansion 2,
/// contraction ½, shrink ½), the initial simplex stepping `step` along each axis. Stops after
/// `max_evals` evaluations or when the simplex's values agree to 1e-10 (relative).
fn nelder_mead(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
) -> Vec<f64> {
    let n = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), f(x0)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut evals = n + 1;
    let point = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(a, b)| a + t * (b - a)).collect()
    };
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= 1e-10 * (best.abs() + 1e-300) {
            break;
        }
        let mut centroid = vec![0.0; n];
        for (x, _) in &simplex[..n] {
            centroid.iter_mut().zip(x).for_each(|(c, v)| *c += v / n as f64);
        }
        let reflected = point(&centroid, &simplex[n].0, -1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = point(&centroid, &simplex[n].0, -2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[n] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let (toward, ft) =
                if fr < worst { (reflected, fr) } else { (simplex[n].0.clone(), worst) };
            let contracted = point(&centroid, &toward, 0.5);
            let fc = f(&contracted);
            evals += 1;
            if fc < ft {
                simplex[n] = (contracted, fc);
            } else {
                let anchor = simplex[0].0.clone();
                for entry in simplex.iter_mut().skip(1) {
                    let x = point(&anchor, &entry.0, 0.5);
                    let v = f(&x);
                    *entry = (x, v);
                }
                evals += n;
            }
        }
    }
    simplex
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(x, _)| x)
        .unwrap_or_else(|| x0.to_vec())
}

impl Detector for HoltWinters {
    /// Scores the point against the one-step prediction interval (before learning it): the
    /// score is the two-sided Gaussian probability of an error smaller than this one, an alarm
    /// outside the interval. Skipped points (see the [module docs](self)) score 0.
    fn update(&mut self, time_ns: u64, value: f64) -> Score {
        let skipped = |f: Option<Forecast>| {
            let f = f.unwrap_or(Forecast {
                mean: value,
                lower: f64::NEG_INFINITY,
                upper: f64::INFINITY,
            });
            Score {
                score: 0.0,
                is_anomaly: false,
                expected: f.mean,
                lower: f.lower,
                upper: f.upper,
            }
        };
        if !value.is_finite() || self.last_time_ns.is_some_and(|last| time_ns <= last) {
            return skipped(self.one_step());
        }
        if let (Some(step), Some(last), true) = (self.step_ns, self.last_time_ns, self.is_ready()) {
            let missing = ((time_ns - last).saturating_add(step / 2) / step).saturating_sub(1);
            for _ in 0..missing.min(4 * self.period as u64 + 4) {
                self.skip_step();
            }
        }
        self.last_time_ns = Some(time_ns);
        let next = self.one_step();
        let sd = self.residual_sd();
        if !self.observe(value) {
            return skipped(next);
        }
        let Some(f) = next else { return skipped(None) };
        let z = if sd > 0.0 { (value - f.mean).abs() / sd } else { 0.0 };
        Score {
            score: 2.0 * normal_cdf(z) - 1.0,
            is_anomaly: value < f.lower || value > f.upper,
            expected: f.mean,
            lower: f.lower,
            upper: f.upper,
        }
    }
}

/// The standard normal cumulative distribution function (absolute error below 1e-7).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return 0.5;
    }
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev-fitted exponential form of Press et al.,
/// *Numerical Recipes*, §6.2 (fractional error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The standard normal quantile of `p`: the inverse of [`normal_cdf`] (p clamped to
/// [1e-12, 1 − 1e-12]). Acklam's rational approximation (relative error below 1.2e-9) as the
/// start, then Newton steps on [`normal_cdf`] itself, so that `normal_cdf(normal_quantile(p))`
/// is `p` to ~1e-15; about 0.1 µs (the bisection it replaces took 60 `erfc` calls).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    let p = if p.is_finite() { p.clamp(1e-12, 1.0 - 1e-12) } else { 0.5 };
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Newton on normal_cdf (whose error, up to 1e-7, the approximation above does not share).
    for _ in 0..3 {
        let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        if density < 1e-300 {
            break;
        }
        x = (x - (normal_cdf(x) - p) / density).clamp(-8.0, 8.0);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions_match_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-4);
        assert!((normal_quantile(0.5)).abs() < 1e-6);
    }

    /// The closed form plus Newton agrees with the bisection it replaced (the exact inverse of
    /// `normal_cdf` on [-8, 8]) across the range, tails included.
    #[test]
    fn normal_quantile_inverts_normal_cdf() {
        let bisection = |p: f64| {
            let (mut lo, mut hi) = (-8.0_f64, 8.0_f64);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if normal_cdf(mid) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        for p in [
            1e-10,
            1e-6,
            0.001,
            0.01,
            0.02425,
            0.1,
            0.3,
            0.5,
            0.7,
            0.9,
            0.975,
            0.99,
            0.999_9,
            1.0 - 1e-9,
        ] {
            let (fast, slow) = (normal_quantile(p), bisection(p));
            assert!((fast - slow).abs() < 1e-6 * (1.0 + slow.abs()), "p {p}: {fast} vs {slow}");
            assert!((normal_cdf(fast) - p).abs() < 1e-9 * p.min(1.0 - p).max(1e-3), "p {p}");
        }
    }

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let x = nelder_mead(
            |x| (x[0] - 3.0).powi(2) + 2.0 * (x[1] + 1.0).powi(2),
            &[0.0, 0.0],
            1.0,
            500,
        );
        assert!((x[0] - 3.0).abs() < 1e-3 && (x[1] + 1.0).abs() < 1e-3, "{x:?}");
    }

    #[test]
    fn initial_state_recovers_a_clean_cycle() {
        let y: Vec<f64> =
            (0..12).map(|t| 10.0 + 2.0 * t as f64 + [1.0, -1.0, 3.0, -3.0][t % 4]).collect();
        let (level, trend, seasonal) = initial_state(&y, 4, true);
        assert!((trend - 2.0).abs() < 1e-9);
        assert!((level - 8.0).abs() < 1e-9, "{level}");
        for (s, want) in seasonal.iter().zip([1.0, -1.0, 3.0, -3.0]) {
            assert!((s - want).abs() < 1e-9);
        }
    }

    /// The detector scores each point against exactly the interval `forecast(1)` gives before
    /// the point is learnt (the allocation-free path must not drift from it).
    #[test]
    fn detector_interval_is_the_one_step_forecast() {
        let mut m = HoltWinters::new(4).with_confidence(0.9);
        let mut checked = 0;
        for t in 0..200u64 {
            let value = (t % 4) as f64 + if t % 3 == 0 { 0.5 } else { -0.25 };
            let before = m.forecast(1).first().copied();
            let score = m.update(t + 1, value);
            if let Some(f) = before {
                assert_eq!((score.expected, score.lower, score.upper), (f.mean, f.lower, f.upper));
                checked += 1;
            }
        }
        assert!(checked > 150, "{checked}");
        let spike = m.forecast(1)[0];
        assert!(m.update(1_000, spike.upper + 1.0).is_anomaly);
    }

    #[test]
    fn variance_grows_with_the_horizon() {
        let mut m = HoltWinters::new(4);
        for t in 0..100 {
            m.observe((t % 4) as f64 + if t % 3 == 0 { 0.5 } else { -0.25 });
        }
        let f = m.forecast(12);
        assert_eq!(f.len(), 12);
        for w in f.windows(2) {
            assert!(w[1].upper - w[1].lower >= w[0].upper - w[0].lower - 1e-12);
        }
    }
}
