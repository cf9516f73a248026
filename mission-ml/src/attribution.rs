//! Root-cause attribution: which dimension values (model, tool, agent, tenant, error type, any
//! attribute) best explain a change of a metric between a baseline window and an anomalous one.
//!
//! The change of the mean is split exactly over the values of each dimension: for a value `g`
//! with share `p` of the observations and mean `m`, its term is `p_anomalous · m_anomalous −
//! p_baseline · m_baseline`, and the terms of one dimension's values add up to the whole change.
//! A value's *contribution* is its term over the change (1.0: it explains all of it), its
//! *lift* how much its own mean moved, and its *support* its share of the anomalous window.
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
    /// Share of the change of the mean this value explains (1.0 = all of it; negative: it
    /// moved against the change).
    pub contribution: f64,
    /// The value's own mean in the anomalous window over its baseline mean.
    pub lift: f64,
    /// The value's share of the anomalous window's observations.
    pub support: f64,
    /// Its mean in the baseline window.
    pub baseline_mean: f64,
    /// Its mean in the anomalous window.
    pub anomalous_mean: f64,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    count: f64,
    sum: f64,
}

fn tally(observations: &[Observation]) -> (HashMap<(&str, &str), Sums>, Sums) {
    let mut groups: HashMap<(&str, &str), Sums> = HashMap::new();
    let mut total = Sums::default();
    for o in observations.iter().filter(|o| o.value.is_finite()) {
        total.count += 1.0;
        total.sum += o.value;
        for (d, v) in &o.dimensions {
            let g = groups.entry((d.as_str(), v.as_str())).or_default();
            g.count += 1.0;
            g.sum += o.value;
        }
    }
    (groups, total)
}

/// The `top` dimension values that best explain the change of the mean from `baseline` to
/// `anomalous`, most explanatory first. Values seen in fewer than 1 % of the anomalous window
/// are left out (too little support to blame), and so are values nine in ten observations of
/// both windows have (they explain about the whole change by being nearly everything, which
/// tells nothing); non-finite values are ignored.
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
            let everywhere = support >= 0.9 && b.count >= 0.9 * base_total.count;
            if support < 0.01 || everywhere {
                return None;
            }
            let mean = |s: Sums| if s.count > 0.0 { s.sum / s.count } else { 0.0 };
            let term = a.sum / anom_total.count - b.sum / base_total.count;
            let contribution = if change.abs() > f64::EPSILON { term / change } else { 0.0 };
            let lift = if mean(b).abs() > f64::EPSILON { mean(a) / mean(b) } else { f64::INFINITY };
            Some(Attribution {
                dimension: key.0.to_owned(),
                value: key.1.to_owned(),
                contribution,
                lift,
                support,
                baseline_mean: mean(b),
                anomalous_mean: mean(a),
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
