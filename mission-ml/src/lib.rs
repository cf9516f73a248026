//! Mission Control's intelligence: streaming anomaly detection, forecasting, leak prediction
//! and root-cause attribution, in-process, per metric, as points arrive.
//!
//! It is a separate crate because it is pure computation on numbers: it depends on nothing of
//! ours (not even `mission-core`) and on no I/O, so the SDK's anomaly sink, the dashboard's
//! forecasts and the benchmark harness (the workspace's `eval/` crate) all use the same models,
//! and a model can be tested and scored without a pipeline.
//!
//! Every detector implements [`Detector`]: one `update(time, value)` per point, O(1) or
//! O(log n) memory per series, state that round-trips through serde (so a restart resumes
//! where it left off), and a [`Score`] with the value expected, a band and whether the point
//! is anomalous.
//!
//! | module | what |
//! |---|---|
//! | [`detectors`] | robust baselines, SPOT extreme values, CUSUM level shifts, seasonal baselines, a sensitive shift detector |
//! | [`ensemble`] | the default [`ensemble::Ensemble`]: novelty (new extremes, new value sequences, extreme residuals) weighed by its rarity in the series, one alert per incident |
//! | [`forecast`] | Holt-Winters / ETS forecasts with prediction intervals ("latency crosses the SLO in ~40 min") |
//! | [`leak`] | robust trend (Theil–Sen) to a limit: time to exhaustion, quiet on sawtooth GC patterns |
//! | [`attribution`] | which dimension values explain a change between a baseline and an anomalous window |
//!
//! The models are scored on public benchmarks by the workspace's `eval/` crate (`mission-eval`,
//! not published): `cargo run --release -p mission-eval --bin nab` (the Numenta Anomaly
//! Benchmark) and `--bin m4` (M4 Hourly forecasting); `benches/RESULTS.md` has the figures.
//!
//! ```
//! use mission_ml::{Detector, Score};
//!
//! /// A toy detector: anything above a fixed limit is anomalous.
//! struct Limit(f64);
//! impl Detector for Limit {
//!     fn update(&mut self, _time_ns: u64, value: f64) -> Score {
//!         let over = value > self.0;
//!         Score { score: if over { 1.0 } else { 0.0 }, is_anomaly: over, expected: 0.0, lower: f64::NEG_INFINITY, upper: self.0 }
//!     }
//! }
//! let mut d = Limit(10.0);
//! assert!(!d.update(0, 3.0).is_anomaly);
//! assert!(d.update(1, 12.0).is_anomaly);
//!
//! // The default detector: the ensemble, its state saved and restored across restarts.
//! let mut ensemble = mission_ml::default_detector();
//! for t in 0..300 {
//!     ensemble.update(t * 60_000_000_000, 100.0 + (t % 7) as f64);
//! }
//! let state = ensemble.state().expect("the ensemble saves its state");
//! assert!(mission_ml::restore_detector(state).is_some());
//! ```
//!
//! # Feature flags
//!
//! None.

/// What a detector says about one point.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// How anomalous, from 0 (normal) to 1 (certainly anomalous).
    pub score: f64,
    /// Whether this point raises an alarm.
    pub is_anomaly: bool,
    /// The value the detector expected.
    pub expected: f64,
    /// The lower edge of the normal band.
    pub lower: f64,
    /// The upper edge of the normal band.
    pub upper: f64,
}

/// An online detector over one series.
pub trait Detector {
    /// Takes the next point (time in ns since the Unix epoch) and scores it. Points should
    /// come in time order; each detector documents what it does with NaN, infinities,
    /// duplicate or out-of-order times and long gaps — never a panic.
    fn update(&mut self, time_ns: u64, value: f64) -> Score;

    /// The detector's learned state as JSON, for persisting across restarts (`None`: this
    /// detector keeps none worth saving). [`restore_detector`] turns the default detectors'
    /// states back into detectors.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A detector from a [`Detector::state`] of the default ensemble (from [`default_detector`]
/// or [`agent_detector`]); `None` if `state` is not one (a state from another version that no
/// longer parses is simply not restored: the series learns again).
pub fn restore_detector(state: serde_json::Value) -> Option<Box<dyn Detector + Send>> {
    let ensemble: ensemble::Ensemble = serde_json::from_value(state).ok()?;
    Some(Box::new(ensemble))
}

pub mod attribution;
pub mod detectors;
pub mod ensemble;
pub mod forecast;
pub mod leak;

pub use ensemble::{Ensemble, agent_detector, default_detector};
