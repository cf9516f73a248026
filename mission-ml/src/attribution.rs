//! Root-cause attribution: which dimension values (model, tool, agent, tenant, error type, any
//! attribute) best explain a change of a metric between a baseline window and an anomalous one.
//!
//! The change of the mean is split exactly over the values of each dimension: for a value `g`
//! with share `p` of the observations and mean `m`, measured from the baseline's overall mean
//! `c`, its term is `p_anomalous · (m_anomalous − c) − p_baseline · (m_baseline − c)`, and the
//! terms of one dimension's values add up to the whole change. A value's *contribution* is its
//! term over the change (1.0: it explains all of it; above 1 when other values moved the other
//! way), its *lift* how much its own mean moved, and its *support* its share of the anomalous
//! window. Only values that are what changed are named (see [`attribute`]).
//!
//! ```
//! use mission_ml::attribution::{Observation, attribute};
//! let row = |model: &str, latency: f64| Observation::new(vec![("model".into(), model.into())], latency);
//! let baseline: Vec<_> = (0..100).map(|i| row(if i % 2 == 0 { "a" } else { "b" }, 1.0)).collect();
//! let anomalous: Vec<_> = (0..100).map(|i| row(if i % 2 == 0 { "a" } else { "b" }, if i % 2 == 0 { 3.0 } else { 1.0 })).collect();
//! let causes = attribute(&baseline, &anomalous, 3);
//! assert_eq!((causes[0].dimension.as_str(), causes[0].value.as_str()), ("model", "a"));
//! assert!((causes[0].contribution - 1.0).abs() < 1e-9);
//! ```

use std::collections::HashMap;

/// One observation: its dimension values and the metric's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// (dimension, value) pairs: `("model", "gpt-4o")`, `("tool", "web_search")`, …
    pub dimensions: Vec<(String, String)>,
    /// The metric: a latency, 1.0 for an error and 0.0 for a success, a cost, …
    pub value: f64,
}

impl Observation {
    /// An observation.
    pub fn new(dimensions: Vec<(String, String)>, value: f64) -> Self {
        Self { dimensions, value }
    }
}

/// One candidate cause.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attribution {
    /// The dimension (`model`).
    pub dimension: String,
    /// Its value (`gpt-4o`).
    pub value: String,
    /// Share of the change of the mean this value explains (1.0 = all of it; above 1 when
    /// other values moved against the change).
    pub contribution: f64,
    /// The value's own mean in the anomalous window over its baseline mean.
    pub lift: f64,
    /// The value's share of the anomalous window's observations.
    pub support: f64,
    /// Its share of the baseline window's observations (a value named because there are more
    /// of its calls has `support` well above this).
    #[serde(default)]
    pub baseline_support: f64,
    /// Its mean in the baseline window.
    pub baseline_mean: f64,
    /// Its mean in the anomalous window.
    pub anomalous_mean: f64,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    count: f64,
    sum: f64,
    sum_sq: f64,
}

impl Sums {
    fn mean(self) -> f64 {
        if self.count > 0.0 { self.sum / self.count } else { 0.0 }
    }

    fn variance(self) -> f64 {
        if self.count < 2.0 {
            return 0.0;
        }
        let m = self.mean();
        ((self.sum_sq - self.count * m * m) / (self.count - 1.0)).max(0.0)
    }
}

/// How many standard errors a value's own change must be for it to be blamed (1.5).
pub const MIN_Z: f64 = 1.5;

/// Whether a value is what changed: `a`/`b` its sums in the anomalous/baseline window,
/// `ra`/`rb` the rest's (every other observation). Either its own mean moved by [`MIN_Z`]
/// standard errors in the direction of `change` while the rest moved less than half as much
/// (a slowdown everywhere is no value's doing), or its share of the calls grew by [`MIN_Z`]
/// binomial standard errors while it is worse than the rest (more calls going to a slow
/// model). A value that is (nearly) everything has no rest to differ from, and tells nothing.
fn is_what_changed(a: Sums, b: Sums, ra: Sums, rb: Sums, change: f64) -> bool {
    let direction = if change >= 0.0 { 1.0 } else { -1.0 };
    let se2 = |s: Sums| s.variance() / s.count.max(1.0);
    let has_rest = ra.count >= MIN_COUNT && rb.count >= MIN_COUNT;
    let own = direction * (a.mean() - b.mean());
    let rest = if has_rest { direction * (ra.mean() - rb.mean()) } else { 0.0 };
    let se = (se2(a) + se2(b)).sqrt().max(1e-12 * b.mean().abs());
    let moved = has_rest && b.count >= 2.0 && own > MIN_Z * se && own - rest >= 0.5 * own;
    let (na, nb) = (a.count + ra.count, b.count + rb.count);
    let (pa, pb) = (a.count / na.max(1.0), b.count / nb.max(1.0));
    let p = pb.clamp(0.01, 0.99);
    let grew = has_rest
        && pa - pb > MIN_Z * (p * (1.0 - p) / na.max(1.0)).sqrt()
        && direction * (a.mean() - ra.mean()) > 0.0;
    moved || grew
}

fn tally(observations: &[Observation]) -> (HashMap<(&str, &str), Sums>, Sums) {
    let mut groups: HashMap<(&str, &str), Sums> = HashMap::new();
    let mut total = Sums::default();
    for o in observations.iter().filter(|o| o.value.is_finite()) {
        total.count += 1.0;
        total.sum += o.value;
        total.sum_sq += o.value * o.value;
        for (d, v) in &o.dimensions {
            let g = groups.entry((d.as_str(), v.as_str())).or_default();
            g.count += 1.0;
            g.sum += o.value;
            g.sum_sq += o.value * o.value;
        }
    }
    (groups, total)
}

/// The fewest observations of a value in the anomalous window for it to be blamed (3: one
/// slow call of one user is not a cause).
pub const MIN_COUNT: f64 = 3.0;

/// The `top` dimension values that best explain the change of the mean from `baseline` to
/// `anomalous`, most explanatory first; empty when no single value does (the change is spread
/// over the traffic). Left out, so that a cause is only named when it is what changed:
///
/// - a dimension with one value in every observation of both windows (constant within the
///   stream: a per-model stream cannot be caused by its model, or by another one);
/// - values seen in fewer than 1 % of the anomalous window (too little support to blame);
/// - values seen fewer than [`MIN_COUNT`] times in the anomalous window;
/// - values that are not what changed: neither did their own mean move (by [`MIN_Z`]
///   standard errors) at least twice as much as the rest's, nor did their share of the calls
///   grow significantly while they are worse than the rest. `status=unset` on nine calls in
///   ten of a stream that slowed down everywhere explains nine tenths of the change by being
///   nine tenths of the calls, which tells nothing; and one slow call is chance, not cause;
/// - values that moved against the change (a contribution of zero or less).
///
/// Non-finite values are ignored.
pub fn attribute(
    baseline: &[Observation],
    anomalous: &[Observation],
    top: usize,
) -> Vec<Attribution> {
    let (base, base_total) = tally(baseline);
    let (anom, anom_total) = tally(anomalous);
    if base_total.count == 0.0 || anom_total.count == 0.0 {
        return Vec::new();
    }
    let change = anom_total.sum / anom_total.count - base_total.sum / base_total.count;
    let mut keys: Vec<(&str, &str)> = anom.keys().chain(base.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out: Vec<Attribution> = keys
        .into_iter()
        .filter_map(|key| {
            let a = anom.get(&key).copied().unwrap_or_default();
            let b = base.get(&key).copied().unwrap_or_default();
            let support = a.count / anom_total.count;
            let constant = a.count == anom_total.count && b.count == base_total.count;
            if support < 0.01 || constant {
                return None;
            }
            // Measured from the baseline's mean, so that the split does not depend on where
            // the scale's zero lies (on a log scale a value's share of the calls would weigh
            // its absolute level, not its change).
            let center = base_total.mean();
            let term = (a.sum - a.count * center) / anom_total.count
                - (b.sum - b.count * center) / base_total.count;
            let contribution = if change.abs() > f64::EPSILON { term / change } else { 0.0 };
            let rest = |total: Sums, g: Sums| Sums {
                count: total.count - g.count,
                sum: total.sum - g.sum,
                sum_sq: total.sum_sq - g.sum_sq,
            };
            let (ra, rb) = (rest(anom_total, a), rest(base_total, b));
            if contribution <= 0.0 || a.count < MIN_COUNT || !is_what_changed(a, b, ra, rb, change)
            {
                return None;
            }
            let lift =
                if b.mean().abs() > f64::EPSILON { a.mean() / b.mean() } else { f64::INFINITY };
            Some(Attribution {
                dimension: key.0.to_owned(),
                value: key.1.to_owned(),
                contribution,
                lift,
                support,
                baseline_support: b.count / base_total.count,
                baseline_mean: b.mean(),
                anomalous_mean: a.mean(),
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.contribution
            .total_cmp(&x.contribution)
            .then(y.lift.total_cmp(&x.lift))
            .then_with(|| (&x.dimension, &x.value).cmp(&(&y.dimension, &y.value)))
    });
    out.truncate(top);
    out
}
