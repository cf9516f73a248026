//! The default detector on the series an agent produces: per-call latencies are log-normal
//! (the SDK scores `ln(1 + ms)`), so a model that becomes three times slower is a level shift
//! of ln 3 ≈ 1.1 on a noise of σ = 0.25 — it must be caught within a few calls, and clean
//! traffic must stay quiet.

use mission_ml::default_detector;

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

/// Log-latencies of a model with a 2.4 s median, `factor` times slower from `from` on.
fn latencies(seed: u64, n: u64, from: u64, factor: f64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| {
            let f = if i >= from { factor } else { 1.0 };
            (2400.0 * (0.25 * noise.normal()).exp() * f).ln_1p()
        })
        .collect()
}

fn alarms(series: &[f64]) -> Vec<usize> {
    let mut d = default_detector();
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
