//! NAB scoring: hand-computed cases, the real corpus' baselines, the threshold optimizer,
//! loading bad input and the `nab` binary's exit codes.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use mission_eval::nab::{self, Corpus, Profile, Results, Series, Window};

const NAB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/nab");

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

/// 200 points (probation: the first 30), one window at indices 100..=109.
fn one_window() -> Corpus {
    let times = (0..200).map(|i| 1_400_000_000_000_000_000 + i * 300_000_000_000).collect();
    let series =
        Series::new("cat/one.csv", times, vec![0.0; 200], vec![Window { start: 100, end: 109 }])
            .unwrap();
    Corpus::from_series(vec![series], Profile::nab())
}

/// Scores with 1.0 at `fire` and 0.0 elsewhere, for a 200-point series.
fn firing_at(fire: &[usize]) -> Results {
    let mut scores = vec![0.0; 200];
    for &i in fire {
        scores[i] = 1.0;
    }
    Results::from_scores("test", vec![scores])
}

fn standard_raw(corpus: &Corpus, fire: &[usize]) -> nab::ProfileScore {
    nab::score(corpus, &firing_at(fire), &corpus.profiles()[0], 0.5)
}

mod hand_computed {
    use super::*;

    // S(x) = 2 / (1 + e^(5x)) - 1; S(-1) = 0.9866142981514305.
    // A detection at i in window [100, 109] earns S(-(109 - i + 1) / 10) / S(-1).
    // A false positive at i after it costs 0.11 * S((i - 109) / 9).

    #[test]
    fn detection_at_the_window_start_earns_the_full_weight() {
        let s = standard_raw(&one_window(), &[100]);
        assert!(close(s.raw, 1.0), "{}", s.raw);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (1, 0, 0));
        assert_eq!(s.normalized, Some(100.0));
    }

    #[test]
    fn detection_in_the_middle_earns_less() {
        let s = standard_raw(&one_window(), &[104]);
        // S(-0.6) / S(-1) = 0.905148... / 0.986614...
        assert!(close(s.raw, 0.917_428_680_428_407_9), "{}", s.raw);
        assert!(close(s.normalized.unwrap(), 100.0 * (0.917_428_680_428_407_9 + 1.0) / 2.0));
    }

    #[test]
    fn detection_at_the_window_end_earns_about_a_quarter() {
        let s = standard_raw(&one_window(), &[109]);
        // S(-0.1) / S(-1): NAB's `+ 1` keeps the last point at position -1/width.
        assert!(close(s.raw, 0.248_241_549_775_429_92), "{}", s.raw);
    }

    #[test]
    fn a_missed_window_costs_the_fn_weight() {
        let corpus = one_window();
        let results = firing_at(&[]);
        let weights: Vec<f64> =
            corpus.profiles().iter().map(|p| nab::score(&corpus, &results, p, 0.5).raw).collect();
        assert_eq!(weights, [-1.0, -1.0, -2.0]);
        let s = nab::score(&corpus, &results, &corpus.profiles()[0], 0.5);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (0, 0, 1));
        assert_eq!((s.null, s.perfect, s.normalized), (-1.0, 1.0, Some(0.0)));
    }

    #[test]
    fn only_the_earliest_detection_in_a_window_counts() {
        let corpus = one_window();
        let s = standard_raw(&corpus, &[104, 100, 109, 105]);
        assert!(close(s.raw, 1.0), "{}", s.raw);
        assert_eq!((s.true_positives, s.false_positives), (1, 0));
        let s = standard_raw(&corpus, &[104, 109]);
        assert!(close(s.raw, 0.917_428_680_428_407_9), "{}", s.raw);
    }

    #[test]
    fn a_false_positive_before_any_window_costs_the_full_fp_weight() {
        let corpus = one_window();
        let s = standard_raw(&corpus, &[50]);
        assert!(close(s.raw, -0.11 - 1.0), "{}", s.raw);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (0, 1, 1));
        let low_fp = nab::score(&corpus, &firing_at(&[50, 60]), &corpus.profiles()[1], 0.5);
        assert!(close(low_fp.raw, -0.44 - 1.0), "{}", low_fp.raw);
    }

    #[test]
    fn false_positives_after_a_window_cost_more_the_further_they_are() {
        let corpus = one_window();
        let cost = |i: usize| standard_raw(&corpus, &[100, i]).raw - 1.0;
        assert!(close(cost(110), 0.11 * -0.270_847_118_516_721_4), "{}", cost(110));
        assert!(close(cost(118), 0.11 * -0.986_614_298_151_430_3), "{}", cost(118));
        assert!(close(cost(127), 0.11 * -0.999_909_204_262_595_1), "{}", cost(127));
        // (137 - 109) / 9 >= 3: the full cost.
        assert!(close(cost(137), -0.11), "{}", cost(137));
        let s = standard_raw(&corpus, &[100, 110, 137]);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (1, 2, 0));
    }

    #[test]
    fn probation_ignores_early_detections() {
        let corpus = one_window();
        assert_eq!(corpus.series()[0].probation(), 30);
        let s = standard_raw(&corpus, &[0, 10, 29]);
        assert_eq!(s.raw, -1.0);
        assert_eq!(s.false_positives, 0);
        // The first scored point is a false positive.
        let s = standard_raw(&corpus, &[30]);
        assert!(close(s.raw, -1.11), "{}", s.raw);
    }

    #[test]
    fn probation_is_floor_of_15_percent_capped_at_750() {
        assert_eq!(nab::probation_len(0), 0);
        assert_eq!(nab::probation_len(6), 0);
        assert_eq!(nab::probation_len(7), 1);
        assert_eq!(nab::probation_len(4032), 604);
        assert_eq!(nab::probation_len(5000), 750);
        assert_eq!(nab::probation_len(22_695), 750);
    }

    #[test]
    fn windows_inside_probation_are_neither_found_nor_missed() {
        let times = (0..200).map(|i| i * 1_000_000_000).collect();
        let windows = vec![Window { start: 5, end: 9 }, Window { start: 25, end: 40 }];
        let series = Series::new("cat/early.csv", times, vec![0.0; 200], windows).unwrap();
        let corpus = Corpus::from_series(vec![series], Profile::nab());
        let none = standard_raw(&corpus, &[]);
        assert_eq!((none.raw, none.false_negatives), (-1.0, 1));
        // The straddling window's best is a detection at its first scored point, 30.
        let at_30 = 0.950_434_572_747_818; // S(-11/16) / S(-1)
        assert!(close(none.perfect, at_30), "{}", none.perfect);
        let s = standard_raw(&corpus, &[7, 26, 30, 31]);
        assert!(close(s.raw, at_30), "{}", s.raw);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (1, 0, 0));
        assert!(close(s.normalized.unwrap(), 100.0));
    }

    #[test]
    fn the_threshold_is_inclusive_and_nan_never_fires() {
        let corpus = one_window();
        let mut scores = vec![0.0; 200];
        scores[100] = 0.5;
        scores[101] = f64::NAN;
        let results = Results::from_scores("t", vec![scores]);
        let profile = &corpus.profiles()[0];
        assert_eq!(nab::score(&corpus, &results, profile, 0.5).raw, 1.0);
        assert_eq!(nab::score(&corpus, &results, profile, 0.500_000_1).raw, -1.0);
        // NaN is not a detection at any threshold, not even -inf.
        let results = Results::from_scores("t", vec![vec![f64::NAN; 200]]);
        let s = nab::score(&corpus, &results, profile, f64::NEG_INFINITY);
        assert_eq!((s.true_positives, s.false_positives, s.raw), (0, 0, -1.0));
        let best = nab::optimize_threshold(&corpus, &results, profile);
        assert_eq!((best.threshold, best.raw), (f64::INFINITY, -1.0));
    }

    #[test]
    fn the_optimizer_finds_the_best_threshold() {
        let corpus = one_window();
        let mut scores = vec![0.0; 200];
        scores[50] = 0.9; // false positive before the window: -0.11
        scores[104] = 0.8; // true positive: +0.917 and no more missed window
        scores[100] = 0.3; // earlier: +0.083 more ...
        scores[150] = 0.3; // ... but two far false positives: -0.22
        scores[160] = 0.3;
        let results = Results::from_scores("t", vec![scores]);
        let best = nab::optimize_threshold(&corpus, &results, &corpus.profiles()[0]);
        assert_eq!(best.threshold, 0.8);
        assert!(close(best.raw, -0.11 + 0.917_428_680_428_407_9), "{}", best.raw);
        // Nothing but false positives: never firing is best.
        let results = firing_at(&[40, 120, 190]);
        let best = nab::optimize_threshold(&corpus, &results, &corpus.profiles()[0]);
        assert_eq!((best.threshold, best.raw), (f64::INFINITY, -1.0));
    }
}

mod real_corpus {
    use super::*;

    static CORPUS: LazyLock<Corpus> =
        LazyLock::new(|| Corpus::load(NAB_DIR).expect("the NAB dataset in ../shared/datasets/nab"));

    fn scores_where(corpus: &Corpus, f: impl Fn(&Series, usize) -> f64) -> Results {
        let scores =
            corpus.series().iter().map(|s| (0..s.len()).map(|i| f(s, i)).collect()).collect();
        Results::from_scores("synthetic", scores)
    }

    #[test]
    fn the_corpus_is_nab_v1_1() {
        let corpus = &*CORPUS;
        assert_eq!(corpus.series().len(), 58);
        assert_eq!(corpus.points(), 365_558);
        assert_eq!(corpus.windows(), 116);
        assert!(corpus.unlabeled().is_empty());
        let names: Vec<&str> = corpus.profiles().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]);
        assert_eq!(corpus.profiles(), Profile::nab());
        let taxi =
            corpus.series().iter().find(|s| s.name() == "realKnownCause/nyc_taxi.csv").unwrap();
        assert_eq!((taxi.len(), taxi.windows().len(), taxi.probation()), (10_320, 5, 750));
        // Windows lie after probation everywhere, so perfect = tpWeight * windows as NAB says.
        for s in corpus.series() {
            assert!(s.windows().iter().all(|w| w.start >= s.probation()), "{}", s.name());
        }
    }

    #[test]
    fn the_perfect_detector_scores_100_and_the_null_detector_0() {
        let corpus = &*CORPUS;
        let perfect = scores_where(corpus, |s, i| {
            f64::from(u8::from(s.windows().iter().any(|w| w.start == i)))
        });
        let null = scores_where(corpus, |_, _| 0.0);
        for profile in corpus.profiles() {
            let p = nab::optimize_threshold(corpus, &perfect, profile);
            assert!(close(p.normalized.unwrap(), 100.0), "{}: {:?}", profile.name, p.normalized);
            assert_eq!((p.true_positives, p.false_positives, p.false_negatives), (116, 0, 0));
            assert!(close(p.perfect, 116.0 * profile.tp_weight));
            // NAB's published null scores (config/thresholds.json): -116, -116, -232.
            assert!(close(p.null, -116.0 * profile.fn_weight));
            let n = nab::optimize_threshold(corpus, &null, profile);
            assert_eq!(n.normalized, Some(0.0), "{}", profile.name);
            assert_eq!(n.threshold, f64::INFINITY);
            let fixed = nab::score(corpus, &null, profile, 0.5);
            assert_eq!((fixed.raw, fixed.normalized), (-116.0 * profile.fn_weight, Some(0.0)));
        }
    }

    #[test]
    fn normalization_reproduces_the_published_scoreboard() {
        // config/thresholds.json holds NAB's raw scores, results/final_results.json the
        // normalized ones. (thresholds.json is stale for htmjava, knncad, random, twitterADVec
        // and windowedGaussian, whose raw scores there do not give their published ones.)
        let read = |path: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{NAB_DIR}/{path}")).unwrap())
                .unwrap()
        };
        let (raw, published) = (read("config/thresholds.json"), read("results/final_results.json"));
        let corpus = &*CORPUS;
        let null = scores_where(corpus, |_, _| 0.0);
        let detectors = [
            "ARTime",
            "numenta",
            "contextOSE",
            "numentaTM",
            "earthgeckoSkyline",
            "relativeEntropy",
            "randomCutForest",
            "skyline",
            "expose",
            "null",
        ];
        for profile in corpus.profiles() {
            let base = nab::score(corpus, &null, profile, 0.5);
            for detector in detectors {
                let raw = raw[detector][&profile.name]["score"].as_f64().unwrap();
                let expected = published[detector][&profile.name].as_f64().unwrap();
                let ours = 100.0 * (raw - base.null) / (base.perfect - base.null);
                assert!(
                    (ours - expected).abs() < 1e-6,
                    "{detector} {}: {ours} != {expected}",
                    profile.name
                );
            }
        }
    }

    #[test]
    fn a_detector_that_fires_everywhere_scores_clearly_negative() {
        let corpus = &*CORPUS;
        let always = scores_where(corpus, |_, _| 1.0);
        for profile in corpus.profiles() {
            let s = nab::score(corpus, &always, profile, 0.5);
            assert_eq!((s.true_positives, s.false_negatives), (116, 0));
            assert!(s.false_positives > 250_000, "{}", s.false_positives);
            assert!(s.normalized.unwrap() < -5_000.0, "{}: {:?}", profile.name, s.normalized);
        }
    }

    #[test]
    fn the_optimizer_is_never_worse_than_a_grid_of_thresholds() {
        let corpus = &*CORPUS;
        // A noisy detector: mostly below 0.6, a rare false alarm up to 1.0, and above 0.5 in
        // the first 20 points of each window; in steps of 1/64 so that many points tie.
        let noisy = scores_where(corpus, |s, i| {
            let mut h = (i as u64 ^ (s.len() as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
            let u = (h % 1000) as f64 / 1000.0;
            let alarm = (h >> 20) % 1000 < 2;
            let near = s.windows().iter().any(|w| i >= w.start && i < w.start + 20);
            let score = match (near, alarm) {
                (true, _) => 0.5 + 0.5 * u,
                (false, true) => 0.7 + 0.3 * u,
                (false, false) => 0.6 * u,
            };
            (score * 64.0).round() / 64.0
        });
        for profile in corpus.profiles() {
            let best = nab::optimize_threshold(corpus, &noisy, profile);
            let again = nab::score(corpus, &noisy, profile, best.threshold);
            assert_eq!(again.raw, best.raw);
            for step in 0..=20 {
                let t = f64::from(step) / 20.0;
                let s = nab::score(corpus, &noisy, profile, t);
                assert!(
                    best.raw >= s.raw - 1e-9,
                    "{}: {t} gives {} > {}",
                    profile.name,
                    s.raw,
                    best.raw
                );
            }
            assert!(best.raw >= nab::score(corpus, &noisy, profile, f64::INFINITY).raw);
            assert!(best.normalized.unwrap() > 0.0, "{}: {:?}", profile.name, best.normalized);
        }
    }

    #[test]
    fn a_detector_runs_over_every_point_from_a_fresh_state() {
        /// Scores each point by how many points its detector has seen.
        struct Counter(f64);
        impl mission_ml::Detector for Counter {
            fn update(&mut self, _time_ns: u64, _value: f64) -> mission_ml::Score {
                self.0 += 1.0;
                mission_ml::Score { score: self.0, ..Default::default() }
            }
        }
        let corpus = &*CORPUS;
        let results = nab::run(corpus, "counter", || Box::new(Counter(0.0)));
        assert_eq!(results.points(), corpus.points());
        for (s, scores) in corpus.series().iter().zip(results.scores()) {
            assert_eq!(scores.len(), s.len());
            assert_eq!(scores.last().copied(), Some(s.len() as f64), "{}", s.name());
        }
        assert!(results.ns_per_point() > 0.0);
    }
}

mod files {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nab_scoring").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A NAB-layout directory with one file of `rows` 5-minute points from
    /// 2020-01-01 00:00:00 and the given labels.
    fn corpus_dir(name: &str, csv: &str, labels: &str) -> PathBuf {
        let dir = scratch(name);
        std::fs::create_dir_all(dir.join("data/cat")).unwrap();
        std::fs::create_dir_all(dir.join("labels")).unwrap();
        std::fs::write(dir.join("data/cat/a.csv"), csv).unwrap();
        std::fs::write(dir.join("labels/combined_windows.json"), labels).unwrap();
        dir
    }

    fn csv_rows(rows: usize) -> String {
        let mut csv = String::from("timestamp,value\n");
        for i in 0..rows {
            let minutes = i * 5;
            csv += &format!(
                "2020-01-{:02} {:02}:{:02}:00,{}\n",
                1 + minutes / 1440,
                minutes / 60 % 24,
                minutes % 60,
                i % 7
            );
        }
        csv
    }

    const LABELS: &str =
        r#"{"cat/a.csv": [["2020-01-01 10:00:00.000000", "2020-01-01 10:45:00.000000"]]}"#;

    #[test]
    fn a_small_corpus_loads_and_writes_nab_results() {
        let dir = corpus_dir("small", &csv_rows(200), LABELS);
        std::fs::write(dir.join("data/cat/unlabeled.csv"), csv_rows(10)).unwrap();
        let corpus = Corpus::load(&dir).unwrap();
        assert_eq!(corpus.unlabeled(), ["cat/unlabeled.csv"]);
        assert_eq!(corpus.profiles(), Profile::nab());
        let series = &corpus.series()[0];
        assert_eq!(series.windows(), [Window { start: 120, end: 129 }]);

        let results = nab::run(&corpus, "probe", mission_ml::default_detector);
        let out = dir.join("out");
        let written = results.write_nab_csvs(&corpus, &out).unwrap();
        assert_eq!(written, out.join("probe"));
        let text = std::fs::read_to_string(out.join("probe/cat/probe_a.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 201);
        assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
        assert!(lines[1].starts_with("2020-01-01 00:00:00,0,"), "{}", lines[1]);
        let labels: Vec<&str> = lines[1..].iter().map(|l| l.rsplit(',').next().unwrap()).collect();
        assert_eq!(labels.iter().filter(|l| **l == "1").count(), 10);
        assert_eq!((labels[119], labels[120], labels[129], labels[130]), ("0", "1", "1", "0"));
    }

    #[test]
    fn nan_and_empty_values_reach_the_detector() {
        let mut csv = csv_rows(200);
        csv = csv.replacen(",3\n", ",NaN\n", 1).replacen(",4\n", ",\n", 1);
        let corpus = Corpus::load(corpus_dir("nan", &csv, LABELS)).unwrap();
        let values = corpus.series()[0].values();
        assert!(values[3].is_nan() && values[4].is_nan());
    }

    fn load_error(name: &str, csv: &str, labels: &str) -> String {
        match Corpus::load(corpus_dir(name, csv, labels)) {
            Ok(_) => panic!("{name}: loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let rows = csv_rows(200);
        let e = load_error(
            "malformed",
            &rows.replacen("2020-01-01 00:10:00,2", "2020-01-01 00:10:00", 1),
            LABELS,
        );
        assert!(e.ends_with("a.csv:4: too few fields"), "{e}");
        let e = load_error("value", &rows.replacen(",2\n", ",two\n", 1), LABELS);
        assert!(e.ends_with("a.csv:4: value `two` is not a number"), "{e}");
        let e = load_error(
            "time",
            &rows.replacen("2020-01-01 00:10:00", "2020-01-01 0:10:00", 1),
            LABELS,
        );
        assert!(e.contains("a.csv:4: timestamp"), "{e}");
        let e = load_error("header", &rows.replacen("timestamp,value", "time,value", 1), LABELS);
        assert!(e.contains("a.csv:1: header"), "{e}");
        let e = load_error("missing", &rows, r#"{"cat/a.csv": [], "cat/b.csv": []}"#);
        assert!(e.contains("`cat/b.csv`"), "{e}");
        let overlap = r#"{"cat/a.csv": [["2020-01-01 10:00:00", "2020-01-01 11:00:00"], ["2020-01-01 10:30:00", "2020-01-01 12:00:00"]]}"#;
        assert!(load_error("overlap", &rows, overlap).contains("overlaps"));
        let outside = r#"{"cat/a.csv": [["2021-01-01 10:00:00", "2021-01-01 11:00:00"]]}"#;
        assert!(load_error("outside", &rows, outside).contains("holds no point"));
        assert!(load_error("json", &rows, "{").contains("combined_windows.json"));

        let empty = scratch("no_data");
        assert!(matches!(Corpus::load(&empty), Err(nab::Error::Io { .. })));
        let dir = corpus_dir("no_labels", &rows, LABELS);
        std::fs::remove_file(dir.join("labels/combined_windows.json")).unwrap();
        let e = Corpus::load(&dir).unwrap_err();
        assert!(e.to_string().contains("combined_windows.json"), "{e}");
    }

    #[test]
    fn custom_profiles_are_read() {
        let dir = corpus_dir("profiles", &csv_rows(200), LABELS);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        let profiles = r#"{"mine": {"CostMatrix": {"tpWeight": 2.0, "fnWeight": 0.5, "fpWeight": 0.01}},
                          "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}"#;
        std::fs::write(dir.join("config/profiles.json"), profiles).unwrap();
        let corpus = Corpus::load(&dir).unwrap();
        let names: Vec<&str> = corpus.profiles().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["standard", "mine"]);
        let mine = corpus.profile("mine").unwrap();
        assert_eq!(
            (mine.tp_weight, mine.fn_weight, mine.fp_weight, mine.tn_weight),
            (2.0, 0.5, 0.01, 1.0)
        );

        std::fs::write(
            dir.join("config/profiles.json"),
            r#"{"x": {"CostMatrix": {"tpWeight": -1}}}"#,
        )
        .unwrap();
        assert!(Corpus::load(&dir).unwrap_err().to_string().contains("tpWeight"));
    }

    #[test]
    fn the_binary_exits_2_on_bad_arguments_and_1_on_unreadable_data() {
        let nab = env!("CARGO_BIN_EXE_nab");
        let status = |args: &[&str]| std::process::Command::new(nab).args(args).output().unwrap();
        assert_eq!(status(&["--bogus"]).status.code(), Some(2));
        assert_eq!(status(&["--detector", "nope"]).status.code(), Some(2));
        assert_eq!(status(&["--data"]).status.code(), Some(2));
        let missing = status(&["--data", "/nonexistent/nab"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/nab/data"));

        let dir = corpus_dir("binary", &csv_rows(200), LABELS);
        let out = dir.join("out");
        let ok = status(&["--data", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(
            stdout.contains("reward_low_FN_rate") && stdout.contains("no published scoreboard"),
            "{stdout}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("default/summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["points"], 200);
        assert!(summary["profiles"]["standard"]["normalized"].is_number(), "{summary}");
        assert!(out.join("default/cat/default_a.csv").exists());
    }
}
