//! `protocol`: the generalisation protocol of the default detector, in one command.
//!
//! ```text
//! cargo run --release -p mission-eval --bin protocol -- [--nab DIR] [--merlion DIR] [--out DIR] [--no-write]
//! ```
//!
//! Prints, for the default detector and (as a reference) a plain EWMA z-score:
//!
//! 1. the **in-sample** NAB score (the threshold chosen on all of NAB, as NAB's scoreboard
//!    does);
//! 2. **leave one category out** on NAB: the detector's settings (from a small grid around the
//!    defaults) and the threshold chosen on six categories, the seventh scored; per category,
//!    the mean and the pooled score;
//! 3. **NAB's threshold unchanged** on corpora the defaults were not chosen on: Merlion's
//!    synthetic series, NAB cut into short series (360–720 points) and NAB resampled to hourly
//!    means, beside each corpus' own best threshold (an oracle no user has).
//!
//! Writes NAB-format results (`OUT/<corpus>/<detector>/<category>/<detector>_<file>.csv`) and
//! `OUT/summary.json`. Exit code 2 for bad arguments, 1 when data cannot be read or results
//! cannot be written.

use std::path::PathBuf;
use std::process::ExitCode;

use mission_eval::nab::{self, Corpus, Results};
use mission_eval::protocol::{self, Fixed, Loco};
use mission_ml::detectors::EwStats;
use mission_ml::ensemble::{Ensemble, Settings};
use mission_ml::{Detector, Score};

const USAGE: &str = "\
usage: protocol [--nab DIR] [--merlion DIR] [--out DIR] [--no-write]

  --nab DIR      NAB in its layout (default: ../shared/datasets/nab)
  --merlion DIR  Merlion's synthetic series (default: ../shared/datasets/merlion-synthetic)
  --out DIR      where results go (default: target/protocol)
  --no-write     score only, write no files
  -h, --help     this text";

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets");

struct Args {
    nab: PathBuf,
    merlion: PathBuf,
    out: PathBuf,
    write: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        nab: PathBuf::from(SHARED).join("nab"),
        merlion: PathBuf::from(SHARED).join("merlion-synthetic"),
        out: PathBuf::from("target/protocol"),
        write: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--nab" => args.nab = PathBuf::from(value()?),
            "--merlion" => args.merlion = PathBuf::from(value()?),
            "--out" => args.out = PathBuf::from(value()?),
            "--no-write" => args.write = false,
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    mission_eval::command("protocol", USAGE, parse_args, run)
}

/// The candidate settings leave-one-category-out chooses from: the defaults first, then one
/// step down and up for each of the parameters that matter most.
fn grid() -> Vec<(String, Settings)> {
    let d = Settings::default();
    let mut out = vec![("defaults".to_owned(), d.clone())];
    for f in [0.5, 2.0] {
        out.push((format!("suppress x{f}"), d.clone().with_suppress(d.suppress * f)));
        out.push((format!("tail_decades x{f}"), d.clone().with_tail_decades(d.tail_decades * f)));
        out.push((
            format!("rarity_decades x{f}"),
            d.clone().with_rarity_decades(d.rarity_decades * f),
        ));
        out.push((
            format!("novelty_decades x{f}"),
            d.clone().with_novelty_decades(d.novelty_decades * f),
        ));
    }
    out
}

/// The reference: a plain exponentially weighted z-score, the detector most monitoring
/// systems ship (level and mean absolute deviation with a memory of 50 points), its score
/// `z / (1 + z)` (order kept, so every threshold NAB's sweep tries is a z threshold).
#[derive(Clone)]
struct EwmaZ {
    stats: EwStats,
}

impl Detector for EwmaZ {
    fn update(&mut self, _time_ns: u64, value: f64) -> Score {
        if !value.is_finite() {
            return Score { score: 0.0, is_anomaly: false, expected: 0.0, lower: 0.0, upper: 0.0 };
        }
        let z = if self.stats.count() >= 10 { self.stats.z(value) } else { 0.0 };
        let expected = self.stats.mean();
        self.stats.push(value);
        Score {
            score: z / (1.0 + z),
            is_anomaly: z > 6.0,
            expected,
            lower: expected,
            upper: expected,
        }
    }
}

fn ewma_z() -> Box<dyn Detector + Send> {
    Box::new(EwmaZ { stats: EwStats::new(0.02) })
}

struct Detectors {
    name: &'static str,
    factory: fn() -> Box<dyn Detector + Send>,
}

const DETECTORS: [Detectors; 2] = [
    Detectors { name: "default", factory: mission_ml::default_detector },
    Detectors { name: "ewma-z", factory: ewma_z },
];

fn standard(scores: &[nab::ProfileScore]) -> &nab::ProfileScore {
    &scores[0]
}

fn show(score: Option<f64>) -> String {
    score.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}"))
}

fn run(args: &Args) -> Result<(), nab::Error> {
    let nab_corpus = Corpus::load(&args.nab)?;
    let merlion = protocol::merlion_corpus(&args.merlion)?;
    let short = protocol::short_corpus(&nab_corpus);
    let hourly = protocol::hourly_corpus(&nab_corpus, 200);
    let corpora = [
        ("nab", &nab_corpus),
        ("merlion", &merlion),
        ("nab-short", &short),
        ("nab-hourly", &hourly),
    ];
    for (name, c) in corpora {
        println!(
            "{name:<10} {:>4} series, {:>7} points, {:>4} windows, categories: {}",
            c.series().len(),
            c.points(),
            c.windows(),
            protocol::categories(c).join(" ")
        );
    }
    let mut summary = serde_json::Map::new();
    let mut brief: Vec<String> = Vec::new();

    // 1. In-sample, and the threshold carried to the other corpora.
    println!("\n1. in-sample NAB (threshold chosen on all of NAB)");
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "detector", "standard", "low FP", "low FN", "threshold", "ns/point"
    );
    let mut thresholds = Vec::new();
    for d in &DETECTORS {
        let results = nab::run(&nab_corpus, d.name, d.factory);
        let scores = nab::evaluate(&nab_corpus, &results);
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>10.4} {:>10.1}",
            d.name,
            show(scores[0].normalized),
            show(scores.get(1).and_then(|s| s.normalized)),
            show(scores.get(2).and_then(|s| s.normalized)),
            standard(&scores).threshold,
            results.ns_per_point()
        );
        thresholds.push(standard(&scores).threshold);
        if d.name == "default" {
            brief.push(format!("NAB {}", show(scores[0].normalized)));
        }
        summary.insert(
            format!("in_sample/{}", d.name),
            serde_json::json!({
                "ns_per_point": results.ns_per_point(),
                "profiles": scores.iter().map(|s| (s.profile.name.clone(), s.normalized)).collect::<Vec<_>>(),
                "threshold": standard(&scores).threshold,
            }),
        );
        if args.write {
            results.write_nab_csvs(&nab_corpus, &args.out.join("nab"))?;
        }
    }

    // 2. Leave one category out.
    let grid = grid();
    let candidates: Vec<Results> = grid
        .iter()
        .map(|(name, settings)| {
            let settings = settings.clone();
            nab::run(&nab_corpus, name.clone(), move || -> Box<dyn Detector + Send> {
                Box::new(Ensemble::with_settings(settings.clone()))
            })
        })
        .collect();
    let in_sample = nab::evaluate(&nab_corpus, &candidates[0]);
    println!(
        "\n2. leave one category out on NAB ({} candidate settings; settings and threshold \
         chosen on the other six)",
        grid.len()
    );
    println!("{:<24} {:>10} {:>10}  chosen", "held out", "in-sample", "held-out");
    let mut locos: Vec<Loco> = Vec::new();
    for profile in nab_corpus.profiles() {
        let loco = protocol::leave_one_category_out(&nab_corpus, &candidates, &profile.name)?;
        if profile.name == "standard" {
            for f in &loco.folds {
                let (c, r) = protocol::subset(&nab_corpus, &candidates[0], |s| {
                    protocol::category(s) == f.category
                });
                let own = nab::score(&c, &r, profile, standard(&in_sample).threshold);
                println!(
                    "{:<24} {:>10} {:>10}  {} at {:.4}",
                    f.category,
                    show(own.normalized),
                    show(f.score.normalized),
                    grid[f.candidate].0,
                    f.threshold
                );
            }
        }
        locos.push(loco);
    }
    println!("{:<24} {:>10} {:>10} {:>10}", "profile", "in-sample", "LOCO pooled", "LOCO mean");
    for (loco, s) in locos.iter().zip(&in_sample) {
        println!(
            "{:<24} {:>10} {:>10.2} {:>10.2}",
            loco.profile,
            show(s.normalized),
            loco.pooled,
            loco.mean
        );
    }
    brief.push(format!("LOCO pooled {:.2}", locos[0].pooled));
    summary.insert("loco".into(), serde_json::to_value(&locos).unwrap_or_default());

    // 3. NAB's threshold on other corpora.
    println!("\n3. NAB's standard threshold, unchanged, on other corpora (standard profile)");
    println!(
        "{:<10} {:<10} {:>10} {:>10} {:>6} {:>6} {:>6} {:>12}",
        "corpus", "detector", "fixed", "oracle", "TP", "FP", "FN", "oracle thr."
    );
    for (name, corpus) in [("merlion", &merlion), ("nab-short", &short), ("nab-hourly", &hourly)] {
        for (d, &threshold) in DETECTORS.iter().zip(&thresholds) {
            let results = nab::run(corpus, d.name, d.factory);
            let Fixed { fixed, oracle } =
                protocol::fixed_threshold(corpus, &results, "standard", threshold)?;
            println!(
                "{:<10} {:<10} {:>10} {:>10} {:>6} {:>6} {:>6} {:>12.4}",
                name,
                d.name,
                show(fixed.normalized),
                show(oracle.normalized),
                fixed.true_positives,
                fixed.false_positives,
                fixed.false_negatives,
                oracle.threshold
            );
            if d.name == "default" {
                brief.push(format!("{name} fixed {}", show(fixed.normalized)));
            }
            summary.insert(
                format!("fixed/{name}/{}", d.name),
                serde_json::json!({
                    "threshold": threshold,
                    "fixed": fixed.normalized,
                    "oracle": oracle.normalized,
                    "oracle_threshold": oracle.threshold,
                    "tp": fixed.true_positives, "fp": fixed.false_positives, "fn": fixed.false_negatives,
                }),
            );
            if args.write {
                results.write_nab_csvs(corpus, &args.out.join(name))?;
            }
        }
    }

    println!("\nsummary (default detector, standard profile): {}", brief.join(", "));
    if args.write {
        std::fs::create_dir_all(&args.out)
            .map_err(|source| nab::Error::Io { path: args.out.clone(), source })?;
        let path = args.out.join("summary.json");
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n";
        std::fs::write(&path, text)
            .map_err(|source| nab::Error::Io { path: path.clone(), source })?;
        println!("\nresults: {} (summary.json and NAB-format CSVs per corpus)", args.out.display());
    }
    Ok(())
}
