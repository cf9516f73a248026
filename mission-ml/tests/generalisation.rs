//! The default detector's mechanisms that decide whether it holds up beyond NAB: a short
//! warm-up (an anomaly soon after the start is scored, not silenced), escalation (a larger
//! second incident counts again inside the suppression window) and scores that mean the same
//! on short and long series. The corpus-level figures are the `protocol` command's
//! (mission-eval); these are the mechanisms, each on a series where it could fail.

use mission_ml::{Detector, Ensemble};

const HOUR: u64 = 3_600_000_000_000;
/// About NAB's threshold for the default detector (the `protocol` command prints it).
const THRESHOLD: f64 = 0.45;

/// Deterministic noise in -0.5..0.5.
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 10_000) as f64 / 10_000.0 - 0.5
}

/// An hourly series with a daily cycle and noise, plus `spikes` (index, height).
fn scores(len: u64, spikes: &[(u64, f64)]) -> Vec<f64> {
    let mut d = Ensemble::default();
    (0..len)
        .map(|i| {
            let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
            let spike = spikes.iter().find(|s| s.0 == i).map_or(0.0, |s| s.1);
            d.update(i * HOUR, 10.0 + 3.0 * day.sin() + noise(i) + spike).score
        })
        .collect()
}

fn max_except(scores: &[f64], except: &[u64]) -> f64 {
    scores
        .iter()
        .enumerate()
        .filter(|(i, _)| !except.contains(&(*i as u64)))
        .map(|(_, s)| *s)
        .fold(0.0, f64::max)
}

#[test]
fn an_anomaly_soon_after_the_start_is_scored() {
    // Point 80 of a 400-point series: after NAB's probation (60 points) and before the old
    // warm-up of 150, which scored nothing there.
    let s = scores(400, &[(80, 8.0)]);
    assert!(s[80] >= 0.9, "spike at 80 scored {}", s[80]);
    let rest = max_except(&s, &[80]);
    assert!(rest < THRESHOLD, "calm points score up to {rest}");
}

#[test]
fn a_larger_second_incident_counts_again() {
    // Twelve hours apart, inside the suppression window (20 intervals).
    let s = scores(500, &[(300, 6.0), (312, 12.0)]);
    assert!(s[300] >= 0.9 && s[312] >= 0.9, "first {}, second {}", s[300], s[312]);
    // The same size again is the same incident: one alert.
    let s = scores(500, &[(300, 6.0), (312, 6.0)]);
    assert!(s[300] >= 0.9 && s[312] < THRESHOLD, "first {}, repeat {}", s[300], s[312]);
}

#[test]
fn calm_series_cross_the_threshold_equally_rarely_whatever_their_length() {
    // One threshold, one tail probability: on calm series of any length, at most one point in
    // a few thousand crosses it (a chance new sequence of noise does, now and then).
    for len in [300, 700, 5_000] {
        let s = scores(len, &[]);
        let above = s.iter().filter(|&&x| x >= THRESHOLD).count();
        assert!(above as u64 <= len / 2_500, "{len} calm points: {above} above {THRESHOLD}");
    }
    // And a spike near the end of each is well above it, whatever the length.
    for len in [300u64, 700, 5_000] {
        let at = len - 20;
        let s = scores(len, &[(at, 8.0)]);
        assert!(s[at as usize] >= 0.7, "{len}: spike scored {}", s[at as usize]);
    }
}
