//! The M4 Hourly benchmark: 414 series, forecast 48 hours ahead, scored with sMAPE and MASE
//! exactly as the M4 competition defines them, beside seasonal naive (computed here as a check)
//! and the published anchors from `M4_evaluation_and_ranks.json`.
//!
//! ```text
//! cargo run --release -p mission-eval --bin m4 -- [--data ../shared/datasets/m4-hourly] [--validate] [--method NAME]
//! ```
//!
//! `--validate` scores the last 48 points of each training series instead of the test set (the
//! test file is not read): the split on which the procedure was chosen. `--method` runs one
//! component of the procedure alone (for ablation); the default is the procedure itself.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mission_ml::forecast::{FitOptions, HoltWinters};

const HORIZON: usize = 48;
const SEASON: usize = 24;
const WEEK: usize = 168;

fn main() {
    if let Err(message) = run() {
        eprintln!("m4: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut data =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/m4-hourly"));
    let mut validate = false;
    let mut method = Method::Procedure;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().ok_or("--data needs a folder")?.into(),
            "--validate" => validate = true,
            "--method" => {
                let name = args.next().ok_or("--method needs a name")?;
                method = Method::parse(&name)
                    .ok_or_else(|| format!("unknown method {name}; one of {}", Method::NAMES))?;
            }
            "-h" | "--help" => {
                println!("usage: m4 [--data DIR] [--validate] [--method {}]", Method::NAMES);
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut train = read_m4_csv(&data.join("Hourly-train.csv"))?;
    let test = if validate {
        let mut held = Vec::with_capacity(train.len());
        for (id, x) in &mut train {
            if x.len() <= HORIZON + 2 * WEEK {
                return Err(format!("{id}: too short to validate"));
            }
            held.push((id.clone(), x.split_off(x.len() - HORIZON)));
        }
        held
    } else {
        read_m4_csv(&data.join("Hourly-test.csv"))?
    };
    if train.len() != test.len()
        || train.iter().zip(&test).any(|(a, b)| a.0 != b.0 || b.1.len() != HORIZON)
    {
        return Err("train and test series do not match (ids or a horizon other than 48)".into());
    }

    let mut ours = Scores::default();
    let mut naive = Scores::default();
    let started = Instant::now();
    let forecasts: Vec<Vec<f64>> = train.iter().map(|(_, x)| method.forecast(x)).collect();
    let elapsed = started.elapsed();
    for (((_, x), (_, y)), f) in train.iter().zip(&test).zip(&forecasts) {
        ours.add(x, y, f);
        naive.add(x, y, &seasonal_naive(x, SEASON));
    }
    let n = train.len();
    let anchors = read_anchors(&data.join("M4_evaluation_and_ranks.json"));

    println!(
        "M4 Hourly: {n} series, horizon {HORIZON}, season {SEASON}{}",
        if validate {
            " — VALIDATION split (last 48 training points; test file not read)"
        } else {
            ""
        }
    );
    println!("method: {}", method.describe());
    println!();
    println!("{:<44} {:>8} {:>8}", "", "sMAPE", "MASE");
    println!("{:<44} {:>8.3} {:>8.3}", "ours", ours.smape(), ours.mase());
    println!(
        "{:<44} {:>8.3} {:>8.3}",
        "seasonal naive (m=24), computed here",
        naive.smape(),
        naive.mase()
    );
    match &anchors {
        Ok(a) => {
            for (name, smape, mase) in &a.rows {
                println!("{:<44} {:>8.3} {:>8.3}", name, smape, mase);
            }
        }
        Err(e) => println!("(published anchors unavailable: {e})"),
    }
    println!();
    println!(
        "time: {:.2} s for {n} series, {:.2} ms per series (fit + forecast, release build, one thread)",
        elapsed.as_secs_f64(),
        1e3 * elapsed.as_secs_f64() / n as f64
    );
    println!("target MASE <= 0.95: {}", if ours.mase() <= 0.95 { "met" } else { "missed" });
    Ok(())
}

/// One forecasting procedure, applied to every series alike.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    /// The benchmark's procedure: [`Method::Daily`], [`Method::Weekly`] or [`Method::Mean`],
    /// whichever has the smallest absolute error on the last 48 training points when fitted
    /// on the points before them; then refitted on the whole training series.
    Procedure,
    /// Seasonal naive, m = 24.
    SeasonalNaive,
    /// Holt-Winters, damped trend, daily cycle (m = 24), fitted on 1..48-step errors.
    Daily,
    /// Holt-Winters, damped trend, weekly cycle (m = 168), fitted on 1..48-step errors.
    Weekly,
    /// The mean of [`Method::Daily`] and [`Method::Weekly`].
    Mean,
    /// [`Method::Daily`] fitted on one-step errors instead (ablation).
    DailyOneStep,
}

impl Method {
    const NAMES: &str = "procedure|snaive|daily|weekly|mean|daily-1step";

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "procedure" => Self::Procedure,
            "snaive" => Self::SeasonalNaive,
            "daily" => Self::Daily,
            "weekly" => Self::Weekly,
            "mean" => Self::Mean,
            "daily-1step" => Self::DailyOneStep,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Procedure => {
                "per series, the best on the last 48 training points of {HW m=24, HW m=168, their \
                 mean} (additive Holt-Winters, damped trend, parameters by Nelder-Mead on in-sample \
                 1..48-step squared errors), refitted on the whole training series"
            }
            Self::SeasonalNaive => "seasonal naive (m=24)",
            Self::Daily => "Holt-Winters, damped trend, m=24, fitted on 1..48-step errors",
            Self::Weekly => "Holt-Winters, damped trend, m=168, fitted on 1..48-step errors",
            Self::Mean => "mean of Holt-Winters m=24 and m=168",
            Self::DailyOneStep => "Holt-Winters, damped trend, m=24, fitted on one-step errors",
        }
    }

    /// The 48 forecasts after `x` (negative forecasts set to 0: every M4 hourly series is
    /// positive).
    fn forecast(self, x: &[f64]) -> Vec<f64> {
        let multi_step = FitOptions::default().with_horizon(HORIZON).with_stride(4);
        let f = match self {
            Self::Procedure if x.len() < HORIZON + 2 * WEEK => Self::Daily.forecast(x),
            Self::Procedure => {
                let (fit, held) = x.split_at(x.len() - HORIZON);
                let candidates = [Self::Daily, Self::Weekly, Self::Mean];
                let holdout_error = |m: Self| absolute_error(held, &m.forecast(fit));
                let best = candidates
                    .into_iter()
                    .map(|m| (m, holdout_error(m)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(Self::Daily, |(m, _)| m);
                best.forecast(x)
            }
            Self::SeasonalNaive => seasonal_naive(x, SEASON),
            Self::Daily => holt_winters(x, SEASON, &multi_step),
            Self::Weekly => holt_winters(x, WEEK, &multi_step),
            Self::Mean => {
                let (a, b) = (Self::Daily.forecast(x), Self::Weekly.forecast(x));
                a.iter().zip(&b).map(|(a, b)| (a + b) / 2.0).collect()
            }
            Self::DailyOneStep => holt_winters(x, SEASON, &FitOptions::default()),
        };
        f.into_iter().map(|v| v.max(0.0)).collect()
    }
}

/// Holt-Winters fitted on `x`; seasonal naive if `x` is too short for the cycle.
fn holt_winters(x: &[f64], period: usize, options: &FitOptions) -> Vec<f64> {
    match HoltWinters::fit(x, period, options) {
        Some(model) => model.forecast(HORIZON).iter().map(|f| f.mean).collect(),
        None => seasonal_naive(x, SEASON),
    }
}

fn absolute_error(y: &[f64], f: &[f64]) -> f64 {
    y.iter().zip(f).map(|(y, f)| (y - f).abs()).sum()
}

fn seasonal_naive(x: &[f64], m: usize) -> Vec<f64> {
    let n = x.len();
    (0..HORIZON).map(|h| x[n - m + h % m]).collect()
}

/// Sums of the per-series errors.
#[derive(Default)]
struct Scores {
    smape: f64,
    mase: f64,
    n: usize,
}

impl Scores {
    /// sMAPE = 200/h Σ |y − ŷ| / (|y| + |ŷ|); MASE = mean |y − ŷ| over the in-sample mean
    /// absolute error of the seasonal naive forecast, (1/(n−m)) Σ_{t>m} |x_t − x_{t−m}|, m = 24.
    fn add(&mut self, x: &[f64], y: &[f64], f: &[f64]) {
        let h = y.len() as f64;
        let smape = 200.0 / h
            * y.iter().zip(f).map(|(y, f)| (y - f).abs() / (y.abs() + f.abs())).sum::<f64>();
        let scale = x.windows(SEASON + 1).map(|w| (w[SEASON] - w[0]).abs()).sum::<f64>()
            / (x.len() - SEASON) as f64;
        let mae = y.iter().zip(f).map(|(y, f)| (y - f).abs()).sum::<f64>() / h;
        self.smape += smape;
        self.mase += mae / scale;
        self.n += 1;
    }

    fn smape(&self) -> f64 {
        self.smape / self.n as f64
    }

    fn mase(&self) -> f64 {
        self.mase / self.n as f64
    }
}

/// Reads an M4 CSV: a header row, then per row the quoted series id and its values, with
/// trailing empty cells for shorter series.
fn read_m4_csv(path: &Path) -> Result<Vec<(String, Vec<f64>)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut series = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut cells = line.split(',').map(|c| c.trim().trim_matches('"'));
        let Some(id) = cells.next().filter(|id| !id.is_empty()) else { continue };
        let values = cells
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<f64>().map_err(|e| format!("{}:{}: {c:?}: {e}", path.display(), i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        series.push((id.to_string(), values));
    }
    Ok(series)
}

/// The published hourly figures to print beside ours.
struct Anchors {
    rows: Vec<(String, f64, f64)>,
}

/// Reads the hourly sMAPE and MASE of Naive2, sNaive and the best entry by MASE from the
/// "Point Forecasts-Frequency" table (header rows locate the columns).
fn read_anchors(path: &Path) -> Result<Anchors, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let table =
        json["Point Forecasts-Frequency"].as_array().ok_or("no Point Forecasts-Frequency table")?;
    let cell = |row: &serde_json::Value, i: usize| {
        row.get(i).and_then(|c| c.as_str()).unwrap_or("").to_string()
    };
    let (metrics, periods) =
        (table.first().ok_or("empty table")?, table.get(1).ok_or("short table")?);
    let width = periods.as_array().map_or(0, Vec::len);
    let start = |metric: &str| (0..width).find(|&i| cell(metrics, i) == metric);
    let hourly_after = |from: usize| (from..width).find(|&i| cell(periods, i) == "Hourly");
    let smape_col = start("sMAPE").and_then(hourly_after).ok_or("no sMAPE/Hourly column")?;
    let mase_col = start("MASE").and_then(hourly_after).ok_or("no MASE/Hourly column")?;
    let value = |row: &serde_json::Value, i: usize| cell(row, i).parse::<f64>().ok();
    let mut rows = Vec::new();
    for (name, label) in [("sNaive", "M4 published sNaive"), ("Naive2", "M4 published Naive2")] {
        let row = table.iter().find(|r| cell(r, 0) == name);
        if let Some((s, m)) = row.and_then(|r| Some((value(r, smape_col)?, value(r, mase_col)?))) {
            rows.push((label.to_string(), s, m));
        }
    }
    let best = table
        .iter()
        .skip(2)
        .filter_map(|r| Some((cell(r, 0), value(r, smape_col)?, value(r, mase_col)?)))
        .min_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((id, s, m)) = best {
        rows.push((format!("M4 best hourly entry by MASE (id {id})"), s, m));
    }
    Ok(Anchors { rows })
}
