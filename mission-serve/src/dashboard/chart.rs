//! Numbers for the charts: the latency histogram ([`Histogram`], shared with the MCP
//! `forecast` tool) and the forecast band of a p95 series.

pub(crate) use crate::histogram::Histogram;

/// One step of a forecast band, in ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Band {
    pub t_ms: i64,
    pub mean_ms: f64,
    pub lo_ms: f64,
    pub hi_ms: f64,
}

/// The forecast of a p95 series (`(t_ms, p95_ms)` of the buckets that have spans, oldest
/// first, `bucket_ms` apart) for the next `horizon` buckets: Holt-Winters fitted to the
/// series, with its 95 % prediction interval. Empty with too few points, or without the
/// `models` feature.
#[cfg(feature = "models")]
pub(crate) fn forecast(series: &[(i64, f64)], bucket_ms: i64, horizon: usize) -> Vec<Band> {
    use mission_ml::forecast::{FitOptions, HoltWinters};
    let Some(&(last_t, _)) = series.last() else { return Vec::new() };
    if series.len() < 8 {
        return Vec::new();
    }
    let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
    let options = FitOptions::default().with_max_evaluations(150);
    let Some(model) = HoltWinters::fit(&values, 1, &options) else { return Vec::new() };
    model
        .forecast(horizon)
        .into_iter()
        .zip(1i64..)
        .filter(|(f, _)| f.mean.is_finite() && f.lower.is_finite() && f.upper.is_finite())
        .map(|(f, h)| Band {
            t_ms: last_t.saturating_add(h.saturating_mul(bucket_ms)),
            mean_ms: f.mean.max(0.0),
            lo_ms: f.lower.max(0.0),
            hi_ms: f.upper.max(0.0),
        })
        .collect()
}

/// Without the `models` feature there is no forecaster: no band.
#[cfg(not(feature = "models"))]
pub(crate) fn forecast(_series: &[(i64, f64)], _bucket_ms: i64, _horizon: usize) -> Vec<Band> {
    Vec::new()
}

#[cfg(all(test, feature = "models"))]
mod tests {
    use super::*;

    #[test]
    fn a_steady_series_forecasts_a_band_around_itself() {
        let series: Vec<(i64, f64)> =
            (0..40).map(|i| (i * 10_000, 100.0 + if i % 2 == 0 { 5.0 } else { -5.0 })).collect();
        let band = forecast(&series, 10_000, 6);
        assert_eq!(band.len(), 6);
        assert_eq!(band[0].t_ms, 400_000);
        assert!(band.iter().all(|b| b.lo_ms <= b.mean_ms && b.mean_ms <= b.hi_ms));
        assert!((band[0].mean_ms - 100.0).abs() < 10.0, "{band:?}");
        assert!(forecast(&series[..3], 10_000, 6).is_empty());
    }
}
