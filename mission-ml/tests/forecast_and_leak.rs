//! Forecasting and leak prediction on series with a known answer.

use std::time::Duration;

use mission_ml::Detector;
use mission_ml::forecast::{FitOptions, Forecast, HoltWinters, Smoothing};
use mission_ml::leak::{Evidence, LeakDetector};

/// A seeded generator (SplitMix64) with Gaussian draws (Box–Muller): reproducible noise without
/// a dependency.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const MB: f64 = 1e6;
const SECOND: u64 = 1_000_000_000;

mod forecaster {
    use super::*;

    fn seasonal_trend(t: usize) -> f64 {
        100.0 + 0.5 * t as f64 + 10.0 * (std::f64::consts::TAU * t as f64 / 24.0).sin()
    }

    #[test]
    fn recovers_a_known_seasonal_trend_series() {
        let mut noise = Noise(1);
        let series: Vec<f64> =
            (0..480).map(|t| seasonal_trend(t) + 0.5 * noise.gaussian()).collect();

        // Online, with an undamped trend.
        let mut online = HoltWinters::new(24).with_smoothing(Smoothing::default().with_phi(1.0));
        for &y in &series {
            assert!(online.observe(y));
        }
        // Batch fit, parameters chosen by Nelder–Mead.
        let fitted = HoltWinters::fit(&series, 24, &FitOptions::default().with_damped(false))
            .expect("enough points");

        for model in [&online, &fitted] {
            let forecast = model.forecast(48);
            assert_eq!(forecast.len(), 48);
            let errors: Vec<f64> = forecast
                .iter()
                .enumerate()
                .map(|(h, f)| (f.mean - seasonal_trend(480 + h)).abs())
                .collect();
            let mean_error = errors.iter().sum::<f64>() / errors.len() as f64;
            let worst = errors.iter().copied().fold(0.0, f64::max);
            assert!(mean_error < 1.0 && worst < 2.5, "mean {mean_error}, worst {worst}");
            for f in &forecast {
                assert!(f.lower < f.mean && f.mean < f.upper);
            }
        }
    }

    #[test]
    fn multi_step_fit_also_recovers_it() {
        let mut noise = Noise(2);
        let series: Vec<f64> =
            (0..480).map(|t| seasonal_trend(t) + 0.5 * noise.gaussian()).collect();
        let options = FitOptions::default().with_damped(false).with_horizon(24).with_stride(3);
        let model = HoltWinters::fit(&series, 24, &options).expect("enough points");
        for (h, f) in model.forecast(48).iter().enumerate() {
            assert!((f.mean - seasonal_trend(480 + h)).abs() < 2.5, "h={h}: {f:?}");
        }
    }

    /// Data drawn from the model itself (ETS(A,Ad,A) with known parameters and Gaussian
    /// innovations): the 95% intervals should hold ~95% of the points that follow.
    #[test]
    fn intervals_cover_the_nominal_share() {
        let truth = Smoothing::new(0.3, 0.02, 0.1, 0.95);
        let (period, sigma) = (24, 4.0);
        let mut noise = Noise(3);
        let (mut level, mut trend) = (200.0, 0.0);
        let mut seasonal: Vec<f64> = (0..period)
            .map(|i| 30.0 * (std::f64::consts::TAU * i as f64 / period as f64).sin())
            .collect();
        let series: Vec<f64> = (0..12_000)
            .map(|t| {
                let e = sigma * noise.gaussian();
                let s = seasonal[t % period];
                let y = level + truth.phi * trend + s + e;
                level += truth.phi * trend + truth.alpha * e;
                trend = truth.phi * trend + truth.beta * e;
                seasonal[t % period] = s + truth.gamma * e;
                y
            })
            .collect();

        let mut model = HoltWinters::new(period).with_smoothing(truth);
        let (mut inside, mut total) = ([0usize; 2], [0usize; 2]);
        for (t, &y) in series.iter().enumerate() {
            model.observe(y);
            if t >= 1_000 && t % 37 == 0 && t + 24 < series.len() {
                for (h, f) in model.forecast(24).iter().enumerate() {
                    let bucket = usize::from(h >= 12);
                    total[bucket] += 1;
                    inside[bucket] +=
                        usize::from(f.lower <= series[t + 1 + h] && series[t + 1 + h] <= f.upper);
                }
            }
        }
        for bucket in 0..2 {
            let coverage = inside[bucket] as f64 / total[bucket] as f64;
            assert!(
                (0.92..=0.98).contains(&coverage),
                "horizons {}: coverage {coverage}",
                bucket * 12 + 1
            );
        }
    }

    #[test]
    fn one_step_intervals_cover_white_noise() {
        let mut noise = Noise(4);
        let mut model = HoltWinters::new(12).with_confidence(0.9);
        let (mut inside, mut total) = (0, 0);
        for t in 0..20_000 {
            let y = 50.0 + 5.0 * ((t % 12) as f64) + 3.0 * noise.gaussian();
            if t > 2_000 {
                let next = model.forecast(1)[0];
                total += 1;
                inside += usize::from(next.lower <= y && y <= next.upper);
            }
            model.observe(y);
        }
        let coverage = inside as f64 / total as f64;
        assert!((0.87..=0.93).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn serde_round_trip_resumes_with_identical_forecasts() {
        let mut noise = Noise(5);
        let series: Vec<f64> =
            (0..600).map(|t| seasonal_trend(t) + 2.0 * noise.gaussian()).collect();
        let mut model = HoltWinters::new(24).with_step(60 * SECOND);
        for (t, &y) in series[..300].iter().enumerate() {
            model.update(t as u64 * 60 * SECOND, y);
        }
        let json = serde_json::to_string(&model).expect("serialise");
        let mut resumed: HoltWinters = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(resumed, model);
        for (t, &y) in series.iter().enumerate().skip(300) {
            let (a, b) = (
                model.update(t as u64 * 60 * SECOND, y),
                resumed.update(t as u64 * 60 * SECOND, y),
            );
            assert_eq!(a, b);
        }
        assert_eq!(model.forecast(48), resumed.forecast(48));
        assert_eq!(model.time_to_cross(500.0, 200), resumed.time_to_cross(500.0, 200));
    }

    #[test]
    fn bad_points_are_skipped_without_panic() {
        let mut noise = Noise(6);
        let clean: Vec<f64> = (0..200).map(|t| seasonal_trend(t) + noise.gaussian()).collect();
        let mut reference = HoltWinters::new(24);
        let mut model = HoltWinters::new(24);
        // Nothing to say before the first two cycles.
        assert!(model.forecast(10).is_empty());
        assert_eq!(model.time_to_cross(1e9, 10), None);
        let mut t = 0;
        for &y in &clean {
            t += SECOND;
            reference.update(t, y);
            model.update(t, y);
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let score = model.update(t + 1, bad);
                assert!(!score.is_anomaly && score.score == 0.0);
                assert!(!model.observe(bad));
            }
            // Duplicate and out-of-order times are skipped too.
            let score = model.update(t, y + 1_000.0);
            assert!(!score.is_anomaly);
            model.update(t.saturating_sub(5 * SECOND), -1e6);
        }
        assert_eq!(model.forecast(48), reference.forecast(48));
        assert_eq!(model.observations(), clean.len() as u64);

        // Extreme values must not poison the state.
        let before = model.clone();
        assert!(!model.observe(f64::MAX));
        assert_eq!(model.forecast(5), before.forecast(5));
        assert!(model.forecast(0).is_empty());
        assert!(model.time_to_cross(f64::NAN, 10).is_none());
        for f in model.forecast(1000) {
            assert!(f.mean.is_finite() && f.lower.is_finite() && f.upper.is_finite());
        }
        // A period of 0 means no seasonality; short or empty series fit to nothing.
        let mut flat = HoltWinters::new(0);
        for y in [1.0, 2.0, 3.0, 4.0] {
            flat.observe(y);
        }
        assert_eq!(flat.period(), 1);
        assert_eq!(flat.forecast(3).len(), 3);
        assert!(HoltWinters::fit(&[], 24, &FitOptions::default()).is_none());
        assert!(HoltWinters::fit(&clean[..40], 24, &FitOptions::default()).is_none());
        let with_gaps: Vec<f64> = clean
            .iter()
            .enumerate()
            .map(|(i, &y)| if i % 10 == 3 { f64::NAN } else { y })
            .collect();
        assert!(HoltWinters::fit(&with_gaps, 24, &FitOptions::default()).is_some());
    }

    #[test]
    fn a_state_edited_by_hand_does_not_panic() {
        let mut model = HoltWinters::new(24);
        for t in 0..100 {
            model.observe(seasonal_trend(t));
        }
        let json: serde_json::Value = serde_json::to_value(&model).expect("serialise");
        for field in ["period", "phase", "seasonal", "error_window"] {
            let mut edited = json.clone();
            edited[field] = match field {
                "seasonal" => serde_json::json!([]),
                "phase" => serde_json::json!(99),
                _ => serde_json::json!(0),
            };
            let mut broken: HoltWinters = serde_json::from_value(edited).expect("deserialise");
            assert!(!broken.observe(1.0), "{field}");
            assert!(broken.forecast(5).is_empty(), "{field}");
            assert!(broken.time_to_cross(1e9, 5).is_none(), "{field}");
            assert!(!broken.update(1_000 * SECOND, 1.0).is_anomaly, "{field}");
        }
    }

    #[test]
    fn gaps_advance_along_the_forecast() {
        let mut model = HoltWinters::new(4).with_step(SECOND);
        for t in 0..40u64 {
            model.update(t * SECOND, [10.0, 20.0, 30.0, 20.0][t as usize % 4]);
        }
        let ahead: Vec<Forecast> = model.forecast(3);
        // Skip two points (t = 40, 41): the point at t = 42 is compared with the 3-step forecast.
        let score = model.update(42 * SECOND, 30.0);
        assert!((score.expected - ahead[2].mean).abs() < 1e-9, "{score:?} vs {:?}", ahead[2]);
        assert!(!score.is_anomaly);
    }

    #[test]
    fn a_spike_is_an_anomaly() {
        let mut noise = Noise(7);
        let mut model = HoltWinters::new(24);
        for t in 0..500u64 {
            let score = model.update(t * SECOND, seasonal_trend(t as usize) + noise.gaussian());
            assert!(t < 100 || score.score < 0.99999, "t={t} {score:?}");
        }
        let score = model.update(500 * SECOND, seasonal_trend(500) + 30.0);
        assert!(score.is_anomaly && score.score > 0.999, "{score:?}");
    }
}

mod leak {
    use super::*;

    /// 1 MB a minute from 500 MB toward 2 GB, sampled every 10 s with 5 MB of noise.
    #[test]
    fn planted_linear_leak_is_found_within_ten_percent() {
        let mut noise = Noise(11);
        let mut detector = LeakDetector::new(2_000.0 * MB, 360);
        let mut estimate = None;
        let samples = 720; // two hours
        for i in 0..samples {
            let minutes = i as f64 / 6.0;
            estimate = detector
                .update(i * 10 * SECOND, 500.0 * MB + minutes * MB + 5.0 * MB * noise.gaussian());
        }
        let estimate = estimate.expect("the leak is reported");
        // At 120 minutes: 620 MB used, 1,380 MB to go at 1 MB/min.
        let truth = 1_380.0 * 60.0;
        let got = estimate.time_to_limit.as_secs_f64();
        assert!((got / truth - 1.0).abs() < 0.10, "{got} s vs {truth} s: {estimate:?}");
        assert!((estimate.slope / (MB / 60.0) - 1.0).abs() < 0.10, "{estimate:?}");
        assert_eq!(estimate.evidence, Evidence::Trend);
        assert!(estimate.confidence > 0.9999);
        assert!(estimate.earliest <= estimate.time_to_limit);
        assert!(estimate.latest.is_some_and(|latest| latest >= estimate.time_to_limit));
    }

    /// A garbage-collected heap: ramps of 20–40 samples from ~500 MB to ~800 MB, each collected
    /// back to the same floor (sometimes over two samples).
    fn sawtooth(floor_rise_per_cycle: f64, cycles: usize, seed: u64) -> Vec<(u64, f64)> {
        let mut noise = Noise(seed);
        let mut points = Vec::new();
        let mut t = 0;
        for cycle in 0..cycles {
            let floor = 500.0 * MB + floor_rise_per_cycle * cycle as f64;
            let length = 20 + (noise.uniform() * 20.0) as usize;
            for k in 0..length {
                let ramp = 300.0 * MB * k as f64 / length as f64;
                points.push((t, floor + ramp + 2.0 * MB * noise.gaussian()));
                t += 10 * SECOND;
            }
            if cycle % 3 == 0 {
                // A collection caught half-way by the sampler.
                points.push((t, floor + 150.0 * MB));
                t += 10 * SECOND;
            }
        }
        points
    }

    #[test]
    fn sawtooth_with_flat_floors_does_not_fire() {
        for seed in 20..25 {
            let mut detector = LeakDetector::new(2_000.0 * MB, 120);
            for (t, v) in sawtooth(0.0, 150, seed) {
                let estimate = detector.update(t, v);
                assert!(estimate.is_none(), "seed {seed}, t={} s: {estimate:?}", t / SECOND);
            }
        }
    }

    /// Collection cycles longer than the window: the first ramps look like a leak (the detector
    /// cannot know better yet), but once drops have come at a steady pace it stays quiet.
    #[test]
    fn long_cycles_are_quiet_once_drops_are_seen() {
        let mut noise = Noise(60);
        let mut detector = LeakDetector::new(2_000.0 * MB, 30);
        let mut t = 0;
        for cycle in 0..40 {
            let length = 60 + (noise.uniform() * 20.0) as usize;
            for k in 0..length {
                let estimate = detector.update(
                    t,
                    500.0 * MB
                        + 300.0 * MB * k as f64 / length as f64
                        + 2.0 * MB * noise.gaussian(),
                );
                assert!(cycle < 3 || estimate.is_none(), "cycle {cycle}: {estimate:?}");
                t += 10 * SECOND;
            }
        }
    }

    #[test]
    fn sawtooth_with_rising_floors_fires() {
        // Floors rise 5 MB a cycle (~300 s): ~1 MB a minute.
        let points = sawtooth(5.0 * MB, 60, 30);
        let mut detector = LeakDetector::new(2_000.0 * MB, 120);
        let mut first = None;
        let mut last = None;
        for &(t, v) in &points {
            if let Some(estimate) = detector.update(t, v) {
                first.get_or_insert(t);
                last = Some((t, estimate));
            }
        }
        let first = first.expect("rising floors are a leak");
        assert!(first < 30 * 300 * SECOND, "first alarm after {} s", first / SECOND);
        let (t, estimate) = last.expect("still reported at the end");
        assert_eq!(estimate.evidence, Evidence::Floors);
        // Truth: peaks at floor + 300 MB, floors at 500 MB + 5 MB per cycle of 30.5 samples on
        // average (a third of the cycles have an extra sample).
        let seconds_per_cycle = t as f64 * 1e-9 / 60.0;
        let slope = 5.0 * MB / seconds_per_cycle;
        let peak_now = 500.0 * MB + 5.0 * MB * 60.0 + 300.0 * MB;
        let truth = (2_000.0 * MB - peak_now) / slope;
        let got = estimate.time_to_limit.as_secs_f64();
        assert!((got / truth - 1.0).abs() < 0.2, "{got} s vs {truth} s: {estimate:?}");
    }

    #[test]
    fn flat_noise_does_not_fire() {
        let mut noise = Noise(40);
        let mut detector = LeakDetector::new(2_000.0 * MB, 120);
        for i in 0..5_000 {
            let estimate =
                detector.update(i * 10 * SECOND, 800.0 * MB + 20.0 * MB * noise.gaussian());
            assert!(estimate.is_none(), "sample {i}: {estimate:?}");
        }
    }

    #[test]
    fn horizon_and_bad_points() {
        let mut detector =
            LeakDetector::new(2_000.0 * MB, 60).with_horizon(Duration::from_secs(3_600));
        let mut reference = detector.clone();
        for i in 0..200u64 {
            let v = 1_000.0 * MB + i as f64 * MB; // 1 MB every 10 s: ~2.5 h to go at the end
            let t = i * 10 * SECOND;
            assert!(detector.update(t, v).is_none(), "beyond the horizon");
            reference.update(t, v);
            detector.update(t, f64::NAN);
            detector.update(t, v * 10.0);
            detector.update(t / 2, 0.0);
            detector.update(t + 1, f64::NEG_INFINITY);
        }
        assert_eq!(detector, reference);
        // Past the limit already: zero time to go.
        let mut full = LeakDetector::new(10.0, 20).with_min_confidence(0.99);
        let mut last = None;
        for i in 0..30u64 {
            last = full.update(i * SECOND, 5.0 + i as f64);
        }
        assert_eq!(last.map(|e| e.time_to_limit), Some(Duration::ZERO));
    }

    #[test]
    fn serde_round_trip_resumes() {
        let points = sawtooth(5.0 * MB, 30, 50);
        let mut detector = LeakDetector::new(2_000.0 * MB, 120);
        for &(t, v) in &points[..400] {
            detector.update(t, v);
        }
        let json = serde_json::to_string(&detector).expect("serialise");
        let mut resumed: LeakDetector = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(resumed, detector);
        for &(t, v) in &points[400..] {
            assert_eq!(detector.update(t, v), resumed.update(t, v));
        }
        // A state edited by hand (floors in the future, no window) does not panic.
        let mut edited: serde_json::Value = serde_json::from_str(&json).expect("parse");
        edited["window"] = serde_json::json!(0);
        if let Some(floors) = edited["floors"].as_array_mut() {
            floors.iter_mut().for_each(|f| f["time_ns"] = serde_json::json!(u64::MAX));
        }
        let mut broken: LeakDetector = serde_json::from_value(edited).expect("deserialise");
        for &(t, v) in &points[400..500] {
            broken.update(t, v);
        }
    }

    /// Merlion's synthetic `upward_downward` series (a noisy rise, one point every 300 s):
    /// after 2,000 points, the time until it reaches the level it really reaches 300 points
    /// (25 hours) later.
    #[test]
    fn merlion_rise_to_exhaustion() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/datasets/merlion-synthetic/upward_downward.csv"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let points: Vec<(u64, f64)> = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cells = line.split(',');
                let t: u64 = cells.next()?.parse().ok()?;
                Some((t * SECOND, cells.next()?.parse().ok()?))
            })
            .collect();
        assert!(points.len() > 3_000);
        let (now, ahead) = (2_000, 300);
        // The level 300 points on, smoothed over ±25 points so noise does not set the limit.
        let limit =
            points[now + ahead - 25..=now + ahead + 25].iter().map(|p| p.1).sum::<f64>() / 51.0;
        let mut detector = LeakDetector::new(limit, 200);
        let mut estimate = None;
        for &(t, v) in &points[..=now] {
            estimate = detector.update(t, v);
        }
        let estimate = estimate.expect("the rise is reported");
        let truth = (ahead * 300) as f64;
        let got = estimate.time_to_limit.as_secs_f64();
        assert!((got / truth - 1.0).abs() < 0.25, "{got} s vs {truth} s: {estimate:?}");

        // The forecaster (no season, straight trend) agrees on when the level is crossed.
        let mut model = HoltWinters::new(1).with_smoothing(Smoothing::new(0.05, 0.001, 0.0, 1.0));
        for &(_, v) in &points[..=now] {
            model.observe(v);
        }
        let crossing = model.time_to_cross(limit, 1_000).expect("crossed within 1,000 steps");
        assert!((crossing.steps as f64 / ahead as f64 - 1.0).abs() < 0.25, "{crossing:?}");
    }
}
