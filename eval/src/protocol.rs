//! The generalisation protocol: how well a detector's one parameter set holds up on data it
//! was not tuned on, scored with NAB's rules ([`crate::nab`]).
//!
//! Three ways of leaving data out, each a function here and a section of the `protocol`
//! command's report:
//!
//! - **Leave one category out** ([`leave_one_category_out`]): for each of the corpus'
//!   categories (the first path component of a series' name: NAB's seven), every parameter —
//!   the detector's settings from a candidate list *and* the threshold — is chosen on the other
//!   categories, and the held-out one is scored with that choice. The held-out scores are
//!   reported per category and pooled (their raw scores summed and normalized over the whole
//!   corpus, so the pooled figure is comparable with the in-sample score).
//! - **A fixed threshold on other corpora** ([`fixed_threshold`]): the threshold the detector
//!   earned on NAB, applied unchanged to a corpus it has never seen. One threshold should mean
//!   one tail probability on any series; this is what a user who sets it once gets.
//! - **Other corpora**: [`merlion_corpus`] reads Salesforce Merlion's labelled synthetic
//!   series; [`short_corpus`] cuts NAB into short series (360–720 points, one window each after
//!   the probation), the length of many production metric exports, where a long warm-up
//!   misses what NAB never shows; [`hourly_corpus`] resamples NAB to hourly means (daily
//!   cycles of 24 points, incidents a few points long).
//!
//! ```
//! use mission_eval::nab::{Corpus, Profile, Series, Window};
//! use mission_eval::protocol;
//!
//! let series = |name: &str| {
//!     let times: Vec<u64> = (0..400).map(|i| i * 60_000_000_000).collect();
//!     let values: Vec<f64> = (0..400).map(|i| if i == 300 { 9.0 } else { (i % 7) as f64 }).collect();
//!     Series::new(name, times, values, vec![Window { start: 295, end: 310 }])
//! };
//! let corpus = Corpus::from_series(vec![series("a/x.csv")?, series("b/y.csv")?], Profile::nab());
//! assert_eq!(protocol::categories(&corpus), ["a", "b"]);
//! # Ok::<(), mission_eval::nab::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::nab::{self, Corpus, Error, Profile, ProfileScore, Result, Results, Series, Window};

/// The category of a series: the first component of its name (`realKnownCause`).
pub fn category(series: &Series) -> &str {
    series.name().split('/').next().unwrap_or("")
}

/// The corpus' categories, sorted.
pub fn categories(corpus: &Corpus) -> Vec<String> {
    let set: BTreeSet<&str> = corpus.series().iter().map(category).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The series of `corpus` (and their scores in `results`) for which `keep` holds.
pub fn subset(
    corpus: &Corpus,
    results: &Results,
    keep: impl Fn(&Series) -> bool,
) -> (Corpus, Results) {
    let (series, scores): (Vec<Series>, Vec<Vec<f64>>) = corpus
        .series()
        .iter()
        .zip(results.scores())
        .filter(|(s, _)| keep(s))
        .map(|(s, r)| (s.clone(), r.clone()))
        .unzip();
    (
        Corpus::from_series(series, corpus.profiles().to_vec()),
        Results::from_scores(results.detector(), scores),
    )
}

/// One held-out category of [`leave_one_category_out`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeldOut {
    /// The category scored.
    pub category: String,
    /// The candidate chosen on the other categories (its index in the candidate list).
    pub candidate: usize,
    /// The threshold chosen on the other categories.
    pub threshold: f64,
    /// The held-out category's score at that choice.
    pub score: ProfileScore,
}

/// The result of [`leave_one_category_out`] for one profile.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Loco {
    /// The profile.
    pub profile: String,
    /// One entry per category.
    pub folds: Vec<HeldOut>,
    /// Mean of the folds' normalized scores (folds without a scored window left out).
    pub mean: f64,
    /// The folds' raw scores summed and normalized over the whole corpus.
    pub pooled: f64,
}

/// Leave-one-category-out: `candidates` are the results of each candidate parameter set on the
/// whole corpus (at least one). For each category, the candidate and threshold with the best
/// score on the *other* categories are chosen, and the category is scored with them.
///
/// # Errors
///
/// [`Error::Invalid`] if there are no candidates or the profile is not the corpus'.
pub fn leave_one_category_out(
    corpus: &Corpus,
    candidates: &[Results],
    profile: &str,
) -> Result<Loco> {
    let profile_of = |c: &Corpus| -> Result<Profile> {
        c.profile(profile)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("the corpus has no profile `{profile}`")))
    };
    let p = profile_of(corpus)?;
    if candidates.is_empty() {
        return Err(Error::Invalid("no candidate results".into()));
    }
    let mut folds = Vec::new();
    for held in categories(corpus) {
        let mut best: Option<(f64, usize, f64)> = None;
        for (k, results) in candidates.iter().enumerate() {
            let (train, train_results) = subset(corpus, results, |s| category(s) != held);
            let s = nab::optimize_threshold(&train, &train_results, &p);
            let normalized = s.normalized.unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(b, _, _)| normalized > b) {
                best = Some((normalized, k, s.threshold));
            }
        }
        let Some((_, candidate, threshold)) = best else { continue };
        let (test, test_results) = subset(corpus, &candidates[candidate], |s| category(s) == held);
        let score = nab::score(&test, &test_results, &p, threshold);
        folds.push(HeldOut { category: held, candidate, threshold, score });
    }
    let scored: Vec<f64> = folds.iter().filter_map(|f| f.score.normalized).collect();
    let mean = scored.iter().sum::<f64>() / scored.len().max(1) as f64;
    let (raw, null, perfect) = folds.iter().fold((0.0, 0.0, 0.0), |(r, n, p), f| {
        (r + f.score.raw, n + f.score.null, p + f.score.perfect)
    });
    let pooled = if perfect > null { 100.0 * (raw - null) / (perfect - null) } else { f64::NAN };
    Ok(Loco { profile: profile.to_owned(), folds, mean, pooled })
}

/// A corpus scored at a threshold chosen elsewhere, beside its own best threshold (which no
/// user gets: it is chosen with the labels).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Fixed {
    /// At the fixed threshold.
    pub fixed: ProfileScore,
    /// At the corpus' own best threshold.
    pub oracle: ProfileScore,
}

/// Scores `results` on `corpus` for `profile` at `threshold`, and at the corpus' own best.
///
/// # Errors
///
/// [`Error::Invalid`] if the profile is not the corpus'.
pub fn fixed_threshold(
    corpus: &Corpus,
    results: &Results,
    profile: &str,
    threshold: f64,
) -> Result<Fixed> {
    let p = corpus
        .profile(profile)
        .ok_or_else(|| Error::Invalid(format!("the corpus has no profile `{profile}`")))?;
    Ok(Fixed {
        fixed: nab::score(corpus, results, p, threshold),
        oracle: nab::optimize_threshold(corpus, results, p),
    })
}

/// Label runs closer than this many points are one window (Merlion labels a trend anomaly
/// as scattered single points; one window per stretch is what a person would mark).
pub const MERLION_MERGE_GAP: usize = 24;

/// Reads Merlion's labelled synthetic series (`*_anomaly.csv` with columns
/// `timestamp,<value>,anomaly`; the timestamp in seconds, `anomaly` 1.0 inside an anomaly)
/// from `dir`. Each run of labelled points is a window (runs closer than
/// [`MERLION_MERGE_GAP`] points are merged). A series is named `<kind>/<file>`, `kind` the
/// anomaly type from the file name (`spike`, `dip`, `level`, `shock`, `trend`), so the
/// categories are the anomaly types. NAB's three profiles.
///
/// # Errors
///
/// [`Error::Io`] if the directory or a file cannot be read, [`Error::Format`] for a line that
/// does not parse.
pub fn merlion_corpus(dir: &Path) -> Result<Corpus> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files: Vec<_> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_anomaly.csv"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Format {
            path: dir.to_path_buf(),
            line: None,
            message: "no *_anomaly.csv files".into(),
        });
    }
    let mut series = Vec::with_capacity(files.len());
    for path in files {
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let (mut times, mut values, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate().skip(1) {
            let bad = |what: &str| Error::Format {
                path: path.clone(),
                line: Some(i + 1),
                message: format!("{what} (expected `seconds,value,label`)"),
            };
            let mut fields = line.split(',');
            let (Some(t), Some(v), Some(l)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(bad("too few fields"));
            };
            let t: f64 = t.trim().parse().map_err(|_| bad("bad timestamp"))?;
            if !(0.0..1e10).contains(&t) {
                return Err(bad("timestamp out of range"));
            }
            times.push((t * 1e9) as u64);
            values.push(v.trim().parse::<f64>().map_err(|_| bad("bad value"))?);
            labels.push(l.trim().parse::<f64>().map_err(|_| bad("bad label"))? > 0.0);
        }
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kind = file.trim_end_matches("_anomaly.csv").rsplit('_').next().unwrap_or("other");
        let windows = label_windows(&labels, MERLION_MERGE_GAP);
        series.push(Series::new(format!("{kind}/{file}"), times, values, windows)?);
    }
    Ok(Corpus::from_series(series, Profile::nab()))
}

/// Windows from per-point labels: runs of `true`, merged when fewer than `merge_gap` points
/// lie between them.
pub fn label_windows(labels: &[bool], merge_gap: usize) -> Vec<Window> {
    let mut windows: Vec<Window> = Vec::new();
    let mut i = 0;
    while i < labels.len() {
        if !labels[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < labels.len() && labels[i] {
            i += 1;
        }
        match windows.last_mut() {
            Some(w) if start - w.end - 1 < merge_gap => w.end = i - 1,
            _ => windows.push(Window { start, end: i - 1 }),
        }
    }
    windows
}

/// A small deterministic hash (FNV-1a), so the cuts of [`short_corpus`] are the same on every
/// machine.
fn fnv(text: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Cuts `corpus` into short series: for each window, a slice of 360–720 points (the length
/// and the window's place drawn deterministically from the series' name) in which the window
/// starts after NAB's probation and before 70 % of the slice. Windows of the original that
/// fall partly in the slice are clipped to it. A window that cannot be placed so (too wide,
/// or too near the start of its series) is left out. Series are named
/// `<category>/<stem>.w<k>.csv`.
pub fn short_corpus(corpus: &Corpus) -> Corpus {
    let mut out = Vec::new();
    for s in corpus.series() {
        for (k, w) in s.windows().iter().enumerate() {
            let h = fnv(s.name(), k as u64);
            let len = (360 + (h % 361) as usize).min(s.len());
            let probation = nab::probation_len(len);
            let last_start = (len * 7 / 10).min(len.saturating_sub(w.width()));
            if last_start <= probation + 1 {
                continue;
            }
            let offset = probation + 1 + ((h >> 20) as usize % (last_start - probation - 1));
            let Some(from) = w.start.checked_sub(offset) else { continue };
            let to = (from + len).min(s.len());
            let windows: Vec<Window> = s
                .windows()
                .iter()
                .filter(|o| o.end >= from && o.start < to)
                .map(|o| Window { start: o.start.max(from) - from, end: o.end.min(to - 1) - from })
                .collect();
            let stem = s.name().trim_end_matches(".csv");
            let name = format!("{stem}.w{k}.csv");
            let times = s.times_ns()[from..to].to_vec();
            let values = s.values()[from..to].to_vec();
            if let Ok(short) = Series::new(name, times, values, windows) {
                out.push(short);
            }
        }
    }
    Corpus::from_series(out, corpus.profiles().to_vec())
}

/// Resamples `corpus` to hourly means (points grouped by the hour of their time; a window
/// covers every hour that holds one of its points, and windows that come to touch are
/// merged). Series with fewer than `min_points` hours are left out. Hourly service metrics
/// with daily cycles of 24 points are what many exports look like; NAB is mostly sampled
/// every five minutes.
pub fn hourly_corpus(corpus: &Corpus, min_points: usize) -> Corpus {
    const HOUR: u64 = 3_600_000_000_000;
    let mut out = Vec::new();
    for s in corpus.series() {
        let (mut times, mut values, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        let (mut sum, mut count, mut label) = (0.0, 0usize, false);
        let mut hour = None;
        for (i, (&t, &v)) in s.times_ns().iter().zip(s.values()).enumerate() {
            let h = t / HOUR;
            if hour.is_some_and(|current| current != h) && count > 0 {
                times.push(hour.unwrap_or(0) * HOUR);
                values.push(sum / count as f64);
                labels.push(label);
                (sum, count, label) = (0.0, 0, false);
            }
            hour = Some(h);
            if v.is_finite() {
                sum += v;
                count += 1;
            }
            label |= s.is_labelled(i);
        }
        if count > 0 {
            times.push(hour.unwrap_or(0) * HOUR);
            values.push(sum / count as f64);
            labels.push(label);
        }
        if times.len() < min_points {
            continue;
        }
        let windows = label_windows(&labels, 1);
        if let Ok(hourly) = Series::new(s.name(), times, values, windows) {
            out.push(hourly);
        }
    }
    Corpus::from_series(out, corpus.profiles().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_runs_become_windows_and_close_runs_merge() {
        let l = |s: &str| s.chars().map(|c| c == '1').collect::<Vec<_>>();
        assert_eq!(
            label_windows(&l("0110001"), 1),
            [Window { start: 1, end: 2 }, Window { start: 6, end: 6 }]
        );
        assert_eq!(label_windows(&l("0110001"), 4), [Window { start: 1, end: 6 }]);
        assert!(label_windows(&l("000"), 4).is_empty());
    }

    #[test]
    fn short_series_keep_their_window_after_probation() {
        let times: Vec<u64> = (0..5000).map(|i| i * 300_000_000_000).collect();
        let windows = vec![Window { start: 1000, end: 1100 }, Window { start: 4000, end: 4050 }];
        let s = Series::new("c/x.csv", times, vec![0.0; 5000], windows).unwrap();
        let short = short_corpus(&Corpus::from_series(vec![s], Profile::nab()));
        assert_eq!(short.series().len(), 2);
        for s in short.series() {
            assert!((360..=720).contains(&s.len()), "{}", s.len());
            let w = s.windows()[0];
            assert!(w.start > s.probation() && w.start <= s.len() * 7 / 10, "{w:?}");
        }
    }

    #[test]
    fn hourly_means_keep_their_windows() {
        // 5-minute points over 30 hours; a window over hours 10 and 11.
        let times: Vec<u64> = (0..360).map(|i| i * 300_000_000_000).collect();
        let values: Vec<f64> = (0..360).map(|i| (i / 12) as f64).collect();
        let s =
            Series::new("c/x.csv", times, values, vec![Window { start: 125, end: 135 }]).unwrap();
        let hourly = hourly_corpus(&Corpus::from_series(vec![s], Profile::nab()), 10);
        let h = &hourly.series()[0];
        assert_eq!(h.len(), 30);
        assert_eq!(h.values()[7], 7.0);
        assert_eq!(h.windows(), [Window { start: 10, end: 11 }]);
        assert!(hourly_corpus(&hourly, 31).series().is_empty());
    }

    #[test]
    fn the_held_out_category_is_scored_with_parameters_chosen_elsewhere() {
        // Two categories; candidate 0 fires at every window start, candidate 1 never fires.
        let times: Vec<u64> = (0..200).map(|i| i * 60_000_000_000).collect();
        let w = vec![Window { start: 100, end: 109 }];
        let a = Series::new("a/x.csv", times.clone(), vec![0.0; 200], w.clone()).unwrap();
        let b = Series::new("b/y.csv", times, vec![0.0; 200], w).unwrap();
        let corpus = Corpus::from_series(vec![a, b], Profile::nab());
        let mut fire = vec![0.0; 200];
        fire[100] = 1.0;
        let good = Results::from_scores("good", vec![fire.clone(), fire]);
        let silent = Results::from_scores("silent", vec![vec![0.0; 200]; 2]);
        let loco = leave_one_category_out(&corpus, &[silent, good], "standard").unwrap();
        assert_eq!(loco.folds.len(), 2);
        assert!(loco.folds.iter().all(|f| f.candidate == 1), "{loco:?}");
        assert!((loco.pooled - 100.0).abs() < 1e-9 && (loco.mean - 100.0).abs() < 1e-9);
    }
}
