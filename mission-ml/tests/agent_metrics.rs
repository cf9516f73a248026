//! The detectors on the series an agent produces: per-call latencies are log-normal (the SDK
//! scores `ln(1 + ms)`), so a model that becomes three times slower is a level shift of
//! ln 3 ≈ 1.1 — 4.4 σ when calls vary by ±25 %, 1.8 σ when they vary by a factor of 1.8 (σ =
//! 0.6, as LLM latencies do). The default detector must catch the first within a few calls;
//! the SDK's [`agent_detector`] must also catch the second, and both must stay quiet on clean
//! traffic.

use mission_ml::{Detector, agent_detector, default_detector};

/// xorshift64* and Box–Muller: reproducible normal noise without a dependency.
struct Noise(u64);
impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const STEP_NS: u64 = 30_000_000_000;

/// Log-latencies of a model with a 2.4 s median and spread `sigma`, `factor` times slower
/// from `from` on.
fn latencies_with(sigma: f64, seed: u64, n: u64, from: u64, factor: f64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| {
            let f = if i >= from { factor } else { 1.0 };
            (2400.0 * (sigma * noise.normal()).exp() * f).ln_1p()
        })
        .collect()
}

fn latencies(seed: u64, n: u64, from: u64, factor: f64) -> Vec<f64> {
    latencies_with(0.25, seed, n, from, factor)
}

fn alarms(series: &[f64]) -> Vec<usize> {
    alarms_of(default_detector(), series)
}

fn alarms_of(mut d: Box<dyn Detector + Send>, series: &[f64]) -> Vec<usize> {
    series
        .iter()
        .enumerate()
        .filter(|&(i, &v)| d.update(i as u64 * STEP_NS, v).is_anomaly)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_model_three_times_slower_is_caught_within_ten_calls() {
    for seed in 1..=5 {
        let found = alarms(&latencies(seed, 600, 400, 3.0));
        assert!(found.iter().filter(|&&i| i < 400).count() <= 1, "seed {seed}: {found:?}");
        assert!(
            found.iter().any(|&i| (400..410).contains(&i)),
            "seed {seed}: the slowdown at 400 was not caught within 10 calls: {found:?}"
        );
    }
}

#[test]
fn a_model_three_times_faster_is_caught_too() {
    for seed in 1..=5 {
        let found = alarms(&latencies(seed, 600, 400, 1.0 / 3.0));
        assert!(found.iter().any(|&i| (400..410).contains(&i)), "seed {seed}: {found:?}");
    }
}

#[test]
fn clean_traffic_stays_quiet() {
    for seed in 1..=5 {
        let found = alarms(&latencies(seed, 3000, u64::MAX, 1.0));
        assert!(
            found.len() <= 2,
            "seed {seed}: {} alarms on clean traffic: {found:?}",
            found.len()
        );
    }
}

#[test]
fn the_band_after_warm_up_is_close_to_the_noise() {
    let series = latencies(3, 500, u64::MAX, 1.0);
    let mut d = default_detector();
    let mut last = None;
    for (i, &v) in series.iter().enumerate() {
        last = Some(d.update(i as u64 * STEP_NS, v));
    }
    let s = last.unwrap();
    let centre = 2401f64.ln();
    assert!((s.expected - centre).abs() < 0.2, "{s:?}");
    // σ = 0.25: a band of a few σ either side, not ten.
    assert!(s.upper - s.lower < 8.0 * 0.25 * 2.0, "{s:?}");
    assert!(s.lower < centre && centre < s.upper, "{s:?}");
}

#[test]
fn the_agent_detector_catches_a_model_three_times_slower_in_noisy_traffic() {
    for seed in 1..=5 {
        let found = alarms_of(agent_detector(), &latencies_with(0.6, seed, 600, 400, 3.0));
        assert!(found.iter().filter(|&&i| i < 400).count() <= 1, "seed {seed}: {found:?}");
        assert!(
            found.iter().any(|&i| (400..420).contains(&i)),
            "seed {seed}: the slowdown at 400 was not caught within 20 calls: {found:?}"
        );
        // One incident, not an alarm per call: a few alarms at most while it lasts.
        assert!(found.iter().filter(|&&i| i >= 400).count() <= 4, "seed {seed}: {found:?}");
    }
}

#[test]
fn the_agent_detector_stays_quiet_on_noisy_clean_traffic() {
    for seed in 1..=5 {
        let found = alarms_of(agent_detector(), &latencies_with(0.6, seed, 3000, u64::MAX, 1.0));
        assert!(found.len() <= 2, "seed {seed}: {} alarms: {found:?}", found.len());
    }
}

#[test]
fn a_saved_state_restores_a_detector_that_resumes_with_identical_scores() {
    let series = latencies_with(0.6, 9, 800, 500, 3.0);
    let mut original = agent_detector();
    for (i, &v) in series[..400].iter().enumerate() {
        original.update(i as u64 * STEP_NS, v);
    }
    let state = original.state().expect("the ensemble saves its state");
    let mut restored = mission_ml::restore_detector(state).expect("restores");
    for (i, &v) in series.iter().enumerate().skip(400) {
        let t = i as u64 * STEP_NS;
        assert_eq!(original.update(t, v), restored.update(t, v), "point {i}");
    }
    assert!(mission_ml::restore_detector(serde_json::json!({"not": "a detector"})).is_none());
}
