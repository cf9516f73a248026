//! Mission Control's model evaluation: the public benchmarks `mission-ml`'s models are scored
//! on, as a library ([`nab`]) and two commands.
//!
//! It is a separate crate (`publish = false`) so that `mission-ml` holds models only: an agent
//! linking the detectors compiles no benchmark loader, scorer or report writer, and the
//! benchmark code can grow (new corpora, ablations) without touching the library users build
//! on. It depends on `mission-ml` for the [`Detector`](mission_ml::Detector) trait and the
//! models, and on nothing else of ours.
//!
//! | command | what it scores |
//! |---|---|
//! | `cargo run --release -p mission-eval --bin nab` | the Numenta Anomaly Benchmark v1.1 (our own implementation of its scoring, [`nab`]); `--data DIR` scores any directory in NAB's layout |
//! | `cargo run --release -p mission-eval --bin protocol` | the generalisation protocol ([`protocol`]): in-sample NAB, leave one category out, and NAB's threshold unchanged on Merlion's synthetic series and NAB cut short |
//! | `cargo run --release -p mission-eval --bin m4` | the M4 Hourly forecasting benchmark (sMAPE, MASE), beside seasonal naive and the published anchors |
//!
//! Both read the public datasets in `../shared/datasets/` by default; `benches/RESULTS.md`
//! records their figures.
//!
//! ```
//! use mission_eval::nab::{self, Corpus, Profile, Results, Series, Window};
//!
//! // One series with one labelled window; the default detector runs over it and is scored.
//! let times: Vec<u64> = (0..200).map(|i| i * 60_000_000_000).collect();
//! let series =
//!     Series::new("demo/a.csv", times, vec![1.0; 200], vec![Window { start: 120, end: 129 }])?;
//! let corpus = Corpus::from_series(vec![series], Profile::nab());
//! let results: Results = nab::run(&corpus, "default", mission_ml::default_detector);
//! let scores = nab::evaluate(&corpus, &results);
//! assert_eq!(scores.len(), 3, "NAB's three profiles");
//! # Ok::<(), nab::Error>(())
//! ```
//!
//! # Feature flags
//!
//! None.
#![doc(test(attr(deny(warnings))))]

pub mod nab;
pub mod protocol;

/// The `main` of this crate's commands: parses the arguments (`Ok(None)`: help was asked
/// for), runs, and exits 0, 2 for bad arguments (with the usage) or 1 when `run` fails.
pub fn command<A>(
    name: &str,
    usage: &str,
    parse: impl FnOnce() -> Result<Option<A>, String>,
    run: impl FnOnce(&A) -> Result<(), nab::Error>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{name}: {message}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}
