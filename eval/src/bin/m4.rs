//! The M4 Hourly benchmark: 414 series, forecast 48 hours ahead, scored with sMAPE and MASE
//! exactly as the M4 competition defines them, beside seasonal naive (computed here as a check)
//! and the published anchors from `M4_evaluation_and_ranks.json`.
//!
//! ```text
//! cargo run --release -p mission-eval --bin m4 -- [--data ../shared/datasets/m4-hourly] [--validate [--experiment]] [--method NAME]
//! ```
//!
//! `--validate` scores the last 48 points of each training series instead of the test set (the
//! test file is not read): the split on which the procedure was chosen. `--experiment` (with
//! `--validate`) is that choice: every candidate and combination scored on the validation split
//! (see [`experiment`]). `--method` runs one component of the procedure alone (for ablation);
//! the default is the procedure itself. OWA is the M4 definition: the mean of sMAPE and MASE
//! relative to the published Naive2.

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
    let mut experiment = false;
    let mut method = Method::Procedure;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().ok_or("--data needs a folder")?.into(),
            "--validate" => validate = true,
            "--experiment" => experiment = true,
            "--method" => {
                let name = args.next().ok_or("--method needs a name")?;
                method = Method::parse(&name)
                    .ok_or_else(|| format!("unknown method {name}; one of {}", Method::NAMES))?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: m4 [--data DIR] [--validate [--experiment]] [--method {}]",
                    Method::NAMES
                );
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

    if experiment {
        if !validate {
            return Err("--experiment runs on the validation split only (add --validate)".into());
        }
        return experiment::run(&train, &test);
    }

    let mut ours = Scores::default();
    let mut naive = Scores::default();
    let started = Instant::now();
    let forecasts = method.forecast_all(&train);
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
    // OWA: the mean of sMAPE and MASE relative to the published Naive2 (M4's overall measure).
    let naive2 = anchors.as_ref().ok().and_then(|a| {
        a.rows.iter().find(|r| r.0 == NAIVE2_LABEL).map(|&(_, smape, mase)| (smape, mase))
    });
    let owa = |smape: f64, mase: f64| {
        naive2.map_or_else(
            || "n/a".to_owned(),
            |(s2, m2)| format!("{:.3}", 0.5 * (smape / s2 + mase / m2)),
        )
    };
    println!("{:<44} {:>8} {:>8} {:>8}", "", "sMAPE", "MASE", "OWA");
    let mut rows = vec![
        ("ours".to_owned(), ours.smape(), ours.mase()),
        ("seasonal naive (m=24), computed here".to_owned(), naive.smape(), naive.mase()),
    ];
    match &anchors {
        Ok(a) => rows.extend(a.rows.iter().cloned()),
        Err(e) => println!("(published anchors unavailable: {e})"),
    }
    for (name, smape, mase) in &rows {
        println!("{:<44} {:>8.3} {:>8.3} {:>8}", name, smape, mase, owa(*smape, *mase));
    }
    println!();
    println!(
        "time: {:.2} s for {n} series, {:.2} ms per series (fit + forecast, release build, one thread)",
        elapsed.as_secs_f64(),
        1e3 * elapsed.as_secs_f64() / n as f64
    );
    println!("target MASE <= 0.80: {}", if ours.mase() <= 0.80 { "met" } else { "missed" });
    Ok(())
}

/// One forecasting procedure, applied to every series alike.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    /// The benchmark's procedure: a weighted mean of [`Method::Daily`], [`Method::DailyLog`],
    /// [`Method::WeeklyLog`], [`Method::DailyLinear`] and [`Method::Global`], each weighted
    /// by the inverse square of its absolute error on the last 48 training points when fitted
    /// (or, for the global model, trained) on the points before them; then each refitted on
    /// the whole training series. Chosen with `--experiment` on the validation split.
    Procedure,
    /// The previous procedure (until 2026-12-07): per series the best of [`Method::Daily`],
    /// [`Method::Weekly`] and [`Method::Mean`] on the last 48 training points.
    HwSelect,
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
    /// [`Method::Daily`] on the logarithm of the series (when all values are positive).
    DailyLog,
    /// [`Method::Weekly`] on the logarithm of the series (when all values are positive).
    WeeklyLog,
    /// [`Method::Daily`] with an undamped trend.
    DailyLinear,
    /// The global linear autoregression ([`global`]), 504 lags, trained on every series.
    Global,
}

/// The global model of [`Method::Global`] and [`Method::Procedure`].
const GLOBAL: global::Options = global::Options { lags: 504, lambda: 0.1, stride: 2 };

impl Method {
    const NAMES: &str = "procedure|hw-select|snaive|daily|weekly|mean|daily-1step|daily-log|weekly-log|daily-linear|global";

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "procedure" => Self::Procedure,
            "hw-select" => Self::HwSelect,
            "snaive" => Self::SeasonalNaive,
            "daily" => Self::Daily,
            "weekly" => Self::Weekly,
            "mean" => Self::Mean,
            "daily-1step" => Self::DailyOneStep,
            "daily-log" => Self::DailyLog,
            "weekly-log" => Self::WeeklyLog,
            "daily-linear" => Self::DailyLinear,
            "global" => Self::Global,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Procedure => {
                "weighted mean of {HW m=24, HW m=24 on logs, HW m=168 on logs, HW m=24 undamped \
                 trend, global linear AR(504)}, weights 1/(absolute error on the last 48 training \
                 points when fitted without them)^2, each refitted on the whole training series \
                 (HW: additive, damped trend unless said, parameters by Nelder-Mead on in-sample \
                 1..48-step squared errors; AR: one ridge regression per horizon on windows of \
                 all 414 series, each centred and scaled by its mean absolute daily change)"
            }
            Self::HwSelect => {
                "per series, the best on the last 48 training points of {HW m=24, HW m=168, their \
                 mean} (additive Holt-Winters, damped trend, parameters by Nelder-Mead on in-sample \
                 1..48-step squared errors), refitted on the whole training series"
            }
            Self::SeasonalNaive => "seasonal naive (m=24)",
            Self::Daily => "Holt-Winters, damped trend, m=24, fitted on 1..48-step errors",
            Self::Weekly => "Holt-Winters, damped trend, m=168, fitted on 1..48-step errors",
            Self::Mean => "mean of Holt-Winters m=24 and m=168",
            Self::DailyOneStep => "Holt-Winters, damped trend, m=24, fitted on one-step errors",
            Self::DailyLog => "Holt-Winters, damped trend, m=24, on the logarithm",
            Self::WeeklyLog => "Holt-Winters, damped trend, m=168, on the logarithm",
            Self::DailyLinear => "Holt-Winters, undamped trend, m=24, fitted on 1..48-step errors",
            Self::Global => "global linear AR(504), direct per horizon, ridge 0.1",
        }
    }

    /// The 48 forecasts after each series (the global model is trained on all of them).
    fn forecast_all(self, train: &[(String, Vec<f64>)]) -> Vec<Vec<f64>> {
        let full: Vec<&[f64]> = train.iter().map(|(_, x)| x.as_slice()).collect();
        match self {
            Self::Global => {
                let model = global::train(&full, GLOBAL);
                full.iter().map(|x| global::forecast(&model, x, GLOBAL)).collect()
            }
            Self::Procedure => {
                let inner: Vec<&[f64]> =
                    full.iter().map(|x| &x[..x.len().saturating_sub(HORIZON)]).collect();
                let (model_inner, model_full) =
                    (global::train(&inner, GLOBAL), global::train(&full, GLOBAL));
                full.iter()
                    .map(|x| {
                        if x.len() < 2 * HORIZON + GLOBAL.lags.max(2 * WEEK) {
                            return Self::Daily.forecast(x);
                        }
                        let (fit, held) = x.split_at(x.len() - HORIZON);
                        let local =
                            [Self::Daily, Self::DailyLog, Self::WeeklyLog, Self::DailyLinear];
                        let mut weighted = vec![0.0; HORIZON];
                        let mut total = 0.0;
                        let candidates = local
                            .iter()
                            .map(|m| (m.forecast(fit), m.forecast(x)))
                            .chain(std::iter::once((
                                global::forecast(&model_inner, fit, GLOBAL),
                                global::forecast(&model_full, x, GLOBAL),
                            )));
                        for (held_out, forecast) in candidates {
                            let error = absolute_error(held, &held_out);
                            let w = 1.0 / (error * error).max(1e-300);
                            weighted.iter_mut().zip(&forecast).for_each(|(a, f)| *a += w * f);
                            total += w;
                        }
                        weighted.iter().map(|a| (a / total).max(0.0)).collect()
                    })
                    .collect()
            }
            _ => full.iter().map(|x| self.forecast(x)).collect(),
        }
    }

    /// The 48 forecasts after `x` for a method of one series at a time (negative forecasts
    /// set to 0: every M4 hourly series is positive).
    fn forecast(self, x: &[f64]) -> Vec<f64> {
        let multi_step = FitOptions::default().with_horizon(HORIZON).with_stride(4);
        let f = match self {
            Self::Procedure | Self::Global => {
                return self.forecast_all(&[(String::new(), x.to_vec())]).remove(0);
            }
            Self::HwSelect if x.len() < HORIZON + 2 * WEEK => Self::Daily.forecast(x),
            Self::HwSelect => {
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
            Self::DailyLog => holt_winters_log(x, SEASON, &multi_step),
            Self::WeeklyLog => holt_winters_log(x, WEEK, &multi_step),
            Self::DailyLinear => holt_winters(x, SEASON, &multi_step.with_damped(false)),
        };
        f.into_iter().map(|v| v.max(0.0)).collect()
    }
}

/// Holt-Winters fitted on the logarithm of `x`, forecasts back on the original scale (the
/// exponential of the mean: a median forecast); on `x` itself if a value is not positive.
fn holt_winters_log(x: &[f64], period: usize, options: &FitOptions) -> Vec<f64> {
    if x.iter().any(|&v| v <= 0.0) {
        return holt_winters(x, period, options);
    }
    let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    match HoltWinters::fit(&logs, period, options) {
        Some(model) => model.forecast(HORIZON).iter().map(|f| f.mean.exp()).collect(),
        None => seasonal_naive(x, SEASON),
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

const NAIVE2_LABEL: &str = "M4 published Naive2";

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
    for (name, label) in [("sNaive", "M4 published sNaive"), ("Naive2", NAIVE2_LABEL)] {
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

/// How [`Method::Procedure`] was chosen (`--validate --experiment`; the test file is not read):
/// each candidate method forecasts the last 48 points of every validation training series and,
/// fitted without them, the 48 before; then every subset of the candidates is scored combined
/// four ways (mean, median, the best on the inner 48, weights 1/error and 1/error²). Prints
/// each candidate's scores and the 40 best combinations by MASE.
///
/// `M4_CANDIDATES` (method names, comma-separated; default below) picks the candidates;
/// `M4_GLOBALS` adds global models as `lags:ridge:stride` (comma-separated).
mod experiment {
    use super::*;

    const CANDIDATES: &str = "daily,weekly,daily-log,weekly-log,daily-linear";

    /// sMAPE and MASE of `forecasts` (one per series).
    fn score(
        train: &[(String, Vec<f64>)],
        test: &[(String, Vec<f64>)],
        forecasts: &[Vec<f64>],
    ) -> (f64, f64) {
        let mut s = Scores::default();
        for (((_, x), (_, y)), f) in train.iter().zip(test).zip(forecasts) {
            s.add(x, y, f);
        }
        (s.smape(), s.mase())
    }

    /// Combines the members' forecasts of series `i` with `weights` (normalised here).
    fn combine(outer: &[Vec<Vec<f64>>], members: &[usize], i: usize, weights: &[f64]) -> Vec<f64> {
        let total: f64 = weights.iter().sum();
        (0..HORIZON)
            .map(|h| {
                members.iter().zip(weights).map(|(&b, w)| w * outer[b][i][h]).sum::<f64>() / total
            })
            .collect()
    }

    pub fn run(train: &[(String, Vec<f64>)], test: &[(String, Vec<f64>)]) -> Result<(), String> {
        let list = std::env::var("M4_CANDIDATES").unwrap_or_else(|_| CANDIDATES.into());
        let methods = list
            .split(',')
            .map(|name| Method::parse(name).ok_or_else(|| format!("unknown method {name}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<String> = list.split(',').map(str::to_owned).collect();
        // outer[b][i]: candidate b's forecast of the held-out 48 of series i; inner_err[b][i]:
        // its absolute error on the 48 before them, fitted without them.
        let mut outer: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut inner_err: Vec<Vec<f64>> = Vec::new();
        let started = Instant::now();
        for m in &methods {
            let mut f = Vec::new();
            let mut e = Vec::new();
            for (_, x) in train {
                let (fit, held) = x.split_at(x.len() - HORIZON);
                f.push(m.forecast(x));
                e.push(absolute_error(held, &m.forecast(fit)));
            }
            outer.push(f);
            inner_err.push(e);
        }
        eprintln!("candidates computed in {:.1} s", started.elapsed().as_secs_f64());
        let globals = std::env::var("M4_GLOBALS").unwrap_or_default();
        for spec in globals.split(',').filter(|s| !s.is_empty()) {
            let p: Vec<usize> = spec.split(':').filter_map(|v| v.parse().ok()).collect();
            let [lags, ridge_per_mille, stride] = p[..] else {
                return Err(format!("M4_GLOBALS: {spec}: want lags:ridge_per_mille:stride"));
            };
            let lags = lags.max(SEASON + 1);
            let o = global::Options { lags, lambda: ridge_per_mille as f64 / 1000.0, stride };
            let full: Vec<&[f64]> = train.iter().map(|(_, x)| x.as_slice()).collect();
            let inner: Vec<&[f64]> = full.iter().map(|x| &x[..x.len() - HORIZON]).collect();
            let (model_full, model_inner) = (global::train(&full, o), global::train(&inner, o));
            outer.push(full.iter().map(|x| global::forecast(&model_full, x, o)).collect());
            inner_err.push(
                full.iter()
                    .map(|x| {
                        let (fit, held) = x.split_at(x.len() - HORIZON);
                        absolute_error(held, &global::forecast(&model_inner, fit, o))
                    })
                    .collect(),
            );
            names.push(format!("ar{spec}"));
        }
        for (b, name) in names.iter().enumerate() {
            let (sm, ma) = score(train, test, &outer[b]);
            println!("candidate {name:<14} sMAPE {sm:8.3} MASE {ma:6.3}");
        }
        let k = names.len();
        let n = train.len();
        let mut rows: Vec<(String, f64, f64)> = Vec::new();
        for mask in 1u32..(1 << k) {
            let members: Vec<usize> = (0..k).filter(|b| mask & (1 << b) != 0).collect();
            let label = members.iter().map(|&b| names[b].as_str()).collect::<Vec<_>>().join("+");
            let mut push = |rule: &str, forecasts: Vec<Vec<f64>>| {
                let (sm, ma) = score(train, test, &forecasts);
                rows.push((format!("{rule}({label})"), sm, ma));
            };
            let equal = vec![1.0; members.len()];
            push("mean", (0..n).map(|i| combine(&outer, &members, i, &equal)).collect());
            if members.len() < 2 {
                continue;
            }
            let median = (0..n)
                .map(|i| {
                    (0..HORIZON)
                        .map(|h| {
                            let mut v: Vec<f64> = members.iter().map(|&b| outer[b][i][h]).collect();
                            median_of(&mut v)
                        })
                        .collect()
                })
                .collect();
            push("median", median);
            let best = |i: usize| {
                members.iter().copied().min_by(|&a, &b| inner_err[a][i].total_cmp(&inner_err[b][i]))
            };
            push(
                "select",
                (0..n).map(|i| best(i).map_or_else(Vec::new, |b| outer[b][i].clone())).collect(),
            );
            for (rule, power) in [("invweight", 1), ("invweight2", 2)] {
                let f = (0..n)
                    .map(|i| {
                        let w: Vec<f64> = members
                            .iter()
                            .map(|&b| inner_err[b][i].max(1e-300).powi(-power))
                            .collect();
                        combine(&outer, &members, i, &w)
                    })
                    .collect();
                push(rule, f);
            }
        }
        rows.sort_by(|a, b| a.2.total_cmp(&b.2));
        for (name, sm, ma) in rows.iter().take(40) {
            println!("{ma:6.3} {sm:8.3} {name}");
        }
        Ok(())
    }

    /// The median (mean of the middle two for an even count). Reorders `v`.
    fn median_of(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let m = v.len();
        if m % 2 == 1 { v[m / 2] } else { (v[m / 2 - 1] + v[m / 2]) / 2.0 }
    }
}

/// A global linear autoregression, direct for each horizon: one ridge regression of the next 48
/// values on the last `lags` values, trained on every window of every series given, each
/// window centred on its mean and divided by its mean absolute daily change (the MASE scale,
/// so the squared loss weighs series as MASE does).
mod global {
    use super::{HORIZON, SEASON};

    /// The model's settings.
    #[derive(Clone, Copy, Debug)]
    pub struct Options {
        /// Values the model looks back on (more than 24).
        pub lags: usize,
        /// Ridge penalty on the normalised lags' coefficients.
        pub lambda: f64,
        /// Step between the training windows' ends.
        pub stride: usize,
    }

    /// A window's normalisation: centred on the mean of its last 24 points, divided by its
    /// mean absolute daily change (floored, for flat windows).
    struct Transform {
        level: f64,
        scale: f64,
    }

    impl Transform {
        fn of(w: &[f64]) -> Self {
            let level = w[w.len() - SEASON..].iter().sum::<f64>() / SEASON as f64;
            let scale = w.windows(SEASON + 1).map(|p| (p[SEASON] - p[0]).abs()).sum::<f64>()
                / (w.len() - SEASON) as f64;
            let spread = w.iter().map(|v| (v - level).abs()).sum::<f64>() / w.len() as f64;
            Self { level, scale: scale.max(1e-3 * spread).max(1e-9 * level.abs()).max(1e-12) }
        }

        fn to(&self, y: f64) -> f64 {
            (y - self.level) / self.scale
        }

        fn from(&self, z: f64) -> f64 {
            self.level + self.scale * z
        }
    }

    /// The features of a window (normalised values and a constant) and its normalisation.
    fn features(w: &[f64], out: &mut Vec<f64>) -> Transform {
        let tr = Transform::of(w);
        out.clear();
        out.extend(w.iter().map(|&v| tr.to(v)));
        out.push(1.0);
        tr
    }

    /// The coefficients (d × 48, row-major by feature), trained on windows of `series`.
    pub fn train(series: &[&[f64]], o: Options) -> Vec<f64> {
        let d = o.lags + 1;
        let mut xtx = vec![0.0; d * d];
        let mut xty = vec![0.0; d * HORIZON];
        let mut z = Vec::with_capacity(d);
        let mut rows = 0usize;
        for x in series {
            if x.len() < o.lags + HORIZON {
                continue;
            }
            let mut t = x.len() - HORIZON;
            loop {
                let tr = features(&x[t - o.lags..t], &mut z);
                for a in 0..d {
                    let za = z[a];
                    let row = &mut xtx[a * d..a * d + a + 1];
                    for (r, zb) in row.iter_mut().zip(&z[..=a]) {
                        *r += za * zb;
                    }
                    let out = &mut xty[a * HORIZON..(a + 1) * HORIZON];
                    for (r, y) in out.iter_mut().zip(&x[t..t + HORIZON]) {
                        *r += za * tr.to(*y);
                    }
                }
                rows += 1;
                if t < o.lags + o.stride.max(1) {
                    break;
                }
                t -= o.stride.max(1);
            }
        }
        // Symmetrise, ridge, Cholesky.
        let n = rows.max(1) as f64;
        for a in 0..d {
            for b in 0..a {
                xtx[b * d + a] = xtx[a * d + b];
            }
        }
        xtx.iter_mut().for_each(|v| *v /= n);
        xty.iter_mut().for_each(|v| *v /= n);
        for a in 0..o.lags {
            xtx[a * d + a] += o.lambda;
        }
        xtx[(d - 1) * d + d - 1] += 1e-9;
        let l = cholesky(&xtx, d);
        let mut coef = vec![0.0; d * HORIZON];
        let mut col = vec![0.0; d];
        for h in 0..HORIZON {
            for a in 0..d {
                col[a] = xty[a * HORIZON + h];
            }
            solve(&l, d, &mut col);
            for a in 0..d {
                coef[a * HORIZON + h] = col[a];
            }
        }
        coef
    }

    /// The 48 values after `x` (seasonal naive if `x` is shorter than the lags).
    pub fn forecast(coef: &[f64], x: &[f64], o: Options) -> Vec<f64> {
        if x.len() < o.lags.max(SEASON) {
            return super::seasonal_naive(x, SEASON.min(x.len()).max(1));
        }
        let d = o.lags + 1;
        let mut z = Vec::with_capacity(d);
        let tr = features(&x[x.len() - o.lags..], &mut z);
        // Forecasts stay within the window's range widened by half of it on each side.
        let (lo, hi) = z[..o.lags]
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let (lo, hi) = (lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo));
        (0..HORIZON)
            .map(|h| {
                let v: f64 = (0..d).map(|a| z[a] * coef[a * HORIZON + h]).sum();
                tr.from(v.clamp(lo, hi)).max(0.0)
            })
            .collect()
    }

    fn cholesky(a: &[f64], d: usize) -> Vec<f64> {
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let mut sum = a[i * d + j];
                for k in 0..j {
                    sum -= l[i * d + k] * l[j * d + k];
                }
                l[i * d + j] = if i == j { sum.max(1e-12).sqrt() } else { sum / l[j * d + j] };
            }
        }
        l
    }

    fn solve(l: &[f64], d: usize, b: &mut [f64]) {
        for i in 0..d {
            let mut sum = b[i];
            for k in 0..i {
                sum -= l[i * d + k] * b[k];
            }
            b[i] = sum / l[i * d + i];
        }
        for i in (0..d).rev() {
            let mut sum = b[i];
            for k in i + 1..d {
                sum -= l[k * d + i] * b[k];
            }
            b[i] = sum / l[i * d + i];
        }
    }
}
