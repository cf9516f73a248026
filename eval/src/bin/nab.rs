//! `nab`: runs a mission-ml detector over the Numenta Anomaly Benchmark (or any directory in
//! NAB's layout), scores it with NAB's rules and prints the scores beside NAB's published
//! scoreboard.
//!
//! ```text
//! cargo run --release -p mission-eval --bin nab -- [--data DIR] [--out DIR] [--detector NAME] [--no-write]
//! ```
//!
//! Writes `OUT/<detector>/<category>/<detector>_<file>.csv` (NAB's results format) and
//! `OUT/<detector>/summary.json` (per profile: threshold, raw and normalized score, TP/FP/FN,
//! per-file scores; the detector's ns per point). Exit code 2 for bad arguments, 1 when the
//! data cannot be read or the results cannot be written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mission_eval::nab::{self, Corpus, ProfileScore, Published, Results};

const USAGE: &str = "\
usage: nab [--data DIR] [--out DIR] [--detector NAME] [--no-write]

  --data DIR       a corpus in NAB layout: DIR/data/**/*.csv, DIR/labels/combined_windows.json,
                   optional DIR/config/profiles.json and DIR/results/final_results.json
                   (default: the NAB copy in ../shared/datasets/nab)
  --out DIR        where results go (default: target/nab)
  --detector NAME  the detector to run (default: default); known: default
  --no-write       score only, write no files
  -h, --help       this text";

/// Detectors the runner knows, by name.
fn detector_factory(name: &str) -> Option<fn() -> Box<dyn mission_ml::Detector + Send>> {
    match name {
        "default" => Some(mission_ml::default_detector),
        _ => None,
    }
}

struct Args {
    data: PathBuf,
    out: PathBuf,
    detector: String,
    write: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/nab")),
        out: PathBuf::from("target/nab"),
        detector: "default".to_owned(),
        write: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--data" => args.data = PathBuf::from(value()?),
            "--out" => args.out = PathBuf::from(value()?),
            "--detector" => args.detector = value()?,
            "--no-write" if inline.is_none() => args.write = false,
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if detector_factory(&args.detector).is_none() {
        return Err(format!("unknown detector `{}` (known: default)", args.detector));
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    mission_eval::command("nab", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<(), nab::Error> {
    let corpus = Corpus::load(&args.data)?;
    let shown = std::fs::canonicalize(&args.data).unwrap_or_else(|_| args.data.clone());
    for name in corpus.unlabeled() {
        eprintln!("nab: warning: {name} has no labels; skipped");
    }
    let probation: usize = corpus.series().iter().map(|s| s.probation()).sum();
    println!(
        "corpus {}: {} files, {} points ({} in probation), {} windows",
        shown.display(),
        corpus.series().len(),
        corpus.points(),
        probation,
        corpus.windows()
    );

    let factory = detector_factory(&args.detector).unwrap_or(mission_ml::default_detector);
    let results = nab::run(&corpus, args.detector.clone(), factory);
    println!(
        "detector `{}`: {:.1} ns/point ({} points in {:.1} ms, update() only)",
        args.detector,
        results.ns_per_point(),
        results.points(),
        results.detector_time().as_secs_f64() * 1e3
    );

    let started = std::time::Instant::now();
    let scores = nab::evaluate(&corpus, &results);
    let scoring_ms = started.elapsed().as_secs_f64() * 1e3;
    println!();
    println!(
        "{:<20} {:>10} {:>9} {:>8} {:>8} {:>8} {:>5} {:>6} {:>5}",
        "profile", "threshold", "raw", "null", "perfect", "score", "TP", "FP", "FN"
    );
    for s in &scores {
        println!(
            "{:<20} {:>10} {:>9.3} {:>8.2} {:>8.2} {:>8} {:>5} {:>6} {:>5}",
            s.profile.name,
            if s.threshold.is_finite() { format!("{:.6}", s.threshold) } else { "never".into() },
            s.raw,
            s.null,
            s.perfect,
            s.normalized.map_or("-".into(), |n| format!("{n:.2}")),
            s.true_positives,
            s.false_positives,
            s.false_negatives
        );
    }
    println!(
        "(best threshold per profile, exact search over every distinct score: {scoring_ms:.1} ms; \
         TP/FN count windows, FP detections)"
    );
    print_scoreboard(&shown, &args.detector, &corpus, &scores);

    if args.write {
        let dir = results.write_nab_csvs(&corpus, &args.out)?;
        let summary = dir.join("summary.json");
        std::fs::write(&summary, summary_json(args, &corpus, &results, &scores))
            .map_err(|source| nab::Error::Io { path: summary.clone(), source })?;
        println!(
            "\nresults: {} (summary.json, {} CSV files)",
            dir.display(),
            corpus.series().len()
        );
    }
    Ok(())
}

/// Prints our normalized scores ranked among the published ones, if the corpus has them.
fn print_scoreboard(data: &Path, detector: &str, corpus: &Corpus, scores: &[ProfileScore]) {
    let path = data.join("results").join("final_results.json");
    let published = match nab::load_published(&path) {
        Ok(board) => board,
        Err(e) => {
            println!("\n(no published scoreboard: {e})");
            return;
        }
    };
    let ours = Published {
        detector: format!("{detector} (mission-ml, ours)"),
        scores: scores
            .iter()
            .filter_map(|s| Some((s.profile.name.clone(), s.normalized?)))
            .collect(),
    };
    let mut board = published;
    board.push(ours);
    let first = corpus.profiles().first().map_or("standard", |p| p.name.as_str());
    let rank = |p: &Published| p.score(first).unwrap_or(f64::NEG_INFINITY);
    board.sort_by(|a, b| rank(b).total_cmp(&rank(a)));

    println!("\nnormalized NAB score (published: {})", path.display());
    print!("{:<32}", "detector");
    for p in corpus.profiles() {
        print!(" {:>19}", p.name);
    }
    println!();
    for line in &board {
        print!("{:<32}", line.detector);
        for p in corpus.profiles() {
            match line.score(&p.name) {
                Some(s) => print!(" {s:>19.2}"),
                None => print!(" {:>19}", "-"),
            }
        }
        println!();
    }
}

fn summary_json(
    args: &Args,
    corpus: &Corpus,
    results: &Results,
    scores: &[ProfileScore],
) -> String {
    let profiles: serde_json::Map<String, serde_json::Value> = scores
        .iter()
        .map(|s| (s.profile.name.clone(), serde_json::to_value(s).unwrap_or_default()))
        .collect();
    let summary = serde_json::json!({
        "detector": args.detector,
        "data": std::fs::canonicalize(&args.data).unwrap_or_else(|_| args.data.clone()).display().to_string(),
        "files": corpus.series().len(),
        "points": corpus.points(),
        "windows": corpus.windows(),
        "unlabeled_files": corpus.unlabeled(),
        "ns_per_point": results.ns_per_point(),
        "detector_seconds": results.detector_time().as_secs_f64(),
        "profiles": profiles,
    });
    serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"
}
