//! The Numenta Anomaly Benchmark (NAB v1.1): loading a corpus, running a [`Detector`] over it
//! and scoring the anomaly scores with NAB's rules, written from the rules (not NAB's code).
//!
//! The entry points: [`Corpus::load`] reads a directory in NAB layout, [`run`] feeds every
//! series through a fresh detector, [`evaluate`] finds each profile's best threshold and
//! score, [`score`] scores one threshold and [`Results::write_nab_csvs`] writes the per-file
//! results NAB's own tools read. The `nab` binary of this crate does all of it and prints the
//! scores beside NAB's published scoreboard.
//!
//! ```
//! use mission_eval::nab::{self, Corpus, Profile, Results, Series, Window};
//!
//! // One series of 100 points with one labelled window (indices 50..=59).
//! let times: Vec<u64> = (0..100).map(|i| i * 60_000_000_000).collect();
//! let series = Series::new("demo/a.csv", times, vec![1.0; 100], vec![Window { start: 50, end: 59 }])?;
//! let corpus = Corpus::from_series(vec![series], Profile::nab());
//! // A detector that fires exactly at the window's start is perfect.
//! let mut scores = vec![0.0; 100];
//! scores[50] = 1.0;
//! let results = Results::from_scores("perfect", vec![scores]);
//! let standard = nab::optimize_threshold(&corpus, &results, &corpus.profiles()[0]);
//! assert_eq!(standard.normalized, Some(100.0));
//! # Ok::<(), nab::Error>(())
//! ```
//!
//! # Scoring rules
//!
//! As NAB v1.1 scores (`nab/sweeper.py` and `nab/runner.py` at NAB's `master`, read to
//! understand; the whitepaper, Lavin & Ahmad 2015, "Evaluating Real-time Anomaly Detection
//! Algorithms – the Numenta Anomaly Benchmark", gives the same shape):
//!
//! - **Detection**: a point is a detection when its anomaly score is `>= threshold`. A NaN
//!   score is never a detection. One threshold for the whole corpus per profile.
//! - **Probation**: the first `min(floor(0.15 · n), 0.15 · 5000)` points of a series of `n`
//!   points (at most 750) are not scored: detections there count for nothing, and a window that
//!   lies entirely inside it is neither found nor missed ([`probation_len`]).
//! - **Scaled sigmoid**: `S(x) = 2 / (1 + e^(5x)) − 1` (that is `2·sigmoid(−5x) − 1`), and
//!   exactly `−1` for `x >= 3` ([`scaled_sigmoid`]).
//! - **True positive**: in each window `[a, b]` (point indices, width `w = b − a + 1`) only the
//!   earliest scored detection counts, for `tpWeight · S(−(b − i + 1)/w) / S(−1)`: exactly
//!   `tpWeight` at the window's first point, `0.92 · tpWeight` at 40% of it, and close to 0
//!   at its last (NAB's `+ 1` puts the last point at `−1/w`, not 0: `S(−1/w)/S(−1)`, about
//!   `2.5/w`, 0.25 for a 10-point window). Later detections in the same window count for
//!   nothing.
//! - **False negative**: a scored window with no detection costs `−fnWeight`.
//! - **False positive**: a detection outside every window after the end `b` of the window
//!   before it (width `w`) costs `fpWeight · S((i − b)/(w − 1))`: about `−0.27 · fpWeight`
//!   right after a window of 10 points, `−fpWeight` from three window-widths on; with no
//!   window before it, `−fpWeight`. (NAB divides by zero after a one-point window; here a
//!   one-point window counts as `w − 1 = 1`.)
//! - **Raw score** of a profile: the sum over all series. **Normalized score**:
//!   `100 · (raw − null) / (perfect − null)`, where `null = −fnWeight · windows` (a detector
//!   that never fires) and `perfect = tpWeight · windows` (one detection at each window's
//!   first point) — NAB's `runner.normalize`; windows inside probation are left out of both,
//!   and a window that starts inside probation counts for what a detection at its first
//!   scored point would earn.
//! - **Threshold**: [`optimize_threshold`] sweeps every distinct anomaly score of the corpus
//!   (and "never fires") and keeps the best, the highest threshold on ties. This is exact;
//!   NAB's own optimizer is a hill climb from 0.5 (`nab/optimizer.py`, `twiddle`), which can
//!   stop in a local optimum, so on the same scores this scorer is never below NAB's.
//! - **Counts**: `true_positives` and `false_negatives` count *windows* (found / missed);
//!   `false_positives` counts detections outside windows. (NAB's CSVs count points.)
//!
//! # Untrusted input
//!
//! [`Corpus::load`] never panics on what it reads; it returns an [`Error`] naming the file and
//! line. Documented behaviours rather than errors:
//!
//! - A data file with no entry in the labels is skipped and listed in [`Corpus::unlabeled`]
//!   (NAB skips it too); a label for a file that does not exist is an error.
//! - An empty value field, `NaN` or `inf` is handed to the detector as it is (every detector
//!   documents what it does with non-finite values); any other unparsable value is an error.
//! - Timestamps need not be increasing (NAB's own files repeat some and go back once).
//!   Windows are placed by scanning forward: a window starts at the first point at or after
//!   its start time and ends at the first point at its end time, or at the last point before
//!   it. On NAB's data this is exactly NAB's `timestamps.index(...)` placement.
//! - Windows are sorted by start; overlapping windows, a window ending before it starts or one
//!   that holds no point are errors.
//! - `config/profiles.json` missing: NAB's three profiles ([`Profile::nab`]).

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use mission_ml::Detector;

mod layout;

use layout::{collect_csv_files, format_timestamp, load_windows, place_windows, read_series_csv};

/// The share of each series that is not scored (NAB's `probationaryPercent`).
pub const PROBATIONARY_PERCENT: f64 = 0.15;

/// Probation never exceeds `PROBATIONARY_PERCENT` of this many points (750 points).
pub const PROBATION_CAP_POINTS: usize = 5000;

/// Why a corpus could not be read or results could not be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file was read but its content is not what NAB's layout says.
    Format {
        /// The file.
        path: PathBuf,
        /// The 1-based line, for CSV files.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Values given through the API are inconsistent (e.g. windows out of range).
    Invalid(String),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format { path, line: Some(line), message } => {
                write!(f, "{}:{line}: {message}", path.display())
            }
            Error::Format { path, line: None, message } => {
                write!(f, "{}: {message}", path.display())
            }
            Error::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn format_error(path: &Path, line: Option<usize>, message: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), line, message: message.into() }
}

/// A labelled anomaly window: point indices `start..=end` of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Index of the window's first point.
    pub start: usize,
    /// Index of the window's last point (inclusive).
    pub end: usize,
}

impl Window {
    /// Number of points in the window.
    pub fn width(&self) -> usize {
        self.end - self.start + 1
    }
}

/// One labelled time series of a corpus.
#[derive(Clone, Debug)]
pub struct Series {
    name: String,
    times_ns: Vec<u64>,
    values: Vec<f64>,
    windows: Vec<Window>,
}

impl Series {
    /// A series named `name` (its path relative to the corpus' `data/`, `/`-separated, e.g.
    /// `realKnownCause/nyc_taxi.csv`) with its points and label windows.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if `times_ns` and `values` differ in length, or the windows are not
    /// sorted, disjoint and inside the series.
    pub fn new(
        name: impl Into<String>,
        times_ns: Vec<u64>,
        values: Vec<f64>,
        windows: Vec<Window>,
    ) -> Result<Self> {
        let name = name.into();
        if times_ns.len() != values.len() {
            return Err(Error::Invalid(format!(
                "{name}: {} times but {} values",
                times_ns.len(),
                values.len()
            )));
        }
        let mut next_free = 0;
        for w in &windows {
            if w.start > w.end || w.end >= values.len() || w.start < next_free {
                return Err(Error::Invalid(format!(
                    "{name}: window {}..={} is reversed, overlaps the one before or lies past \
                     the {} points",
                    w.start,
                    w.end,
                    values.len()
                )));
            }
            next_free = w.end + 1;
        }
        Ok(Self { name, times_ns, values, windows })
    }

    /// The series' path relative to the corpus' `data/` directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Point times, ns since the Unix epoch.
    pub fn times_ns(&self) -> &[u64] {
        &self.times_ns
    }

    /// Point values.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The label windows, sorted and disjoint.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no point.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of leading points that are not scored: [`probation_len`] of [`Series::len`].
    pub fn probation(&self) -> usize {
        probation_len(self.len())
    }

    /// Whether point `index` lies inside a window (the `label` column of NAB's results).
    pub fn is_labelled(&self, index: usize) -> bool {
        let k = self.windows.partition_point(|w| w.end < index);
        self.windows.get(k).is_some_and(|w| w.start <= index)
    }
}

/// The points of a series of `n` points that NAB does not score:
/// `min(floor(0.15 · n), 0.15 · 5000)`.
///
/// ```
/// assert_eq!(mission_eval::nab::probation_len(1000), 150);
/// assert_eq!(mission_eval::nab::probation_len(22_695), 750);
/// ```
pub fn probation_len(n: usize) -> usize {
    let share = (PROBATIONARY_PERCENT * n as f64).floor();
    let cap = PROBATIONARY_PERCENT * PROBATION_CAP_POINTS as f64;
    share.min(cap) as usize
}

/// NAB's scaled sigmoid of a relative position `x`: `2 / (1 + e^(5x)) − 1`, and `−1` for
/// `x >= 3`. Positive left of a window's end, negative right of it.
///
/// ```
/// use mission_eval::nab::scaled_sigmoid;
/// assert!((scaled_sigmoid(-1.0) - 0.986_614_298_2).abs() < 1e-9);
/// assert_eq!(scaled_sigmoid(0.0), 0.0);
/// assert_eq!(scaled_sigmoid(3.0), -1.0);
/// ```
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 { -1.0 } else { 2.0 / (1.0 + (5.0 * x).exp()) - 1.0 }
}

/// A NAB application profile: the weights of the cost matrix.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`, or a custom name.
    pub name: String,
    /// Credit for a window found at its first point.
    pub tp_weight: f64,
    /// Cost of a missed window.
    pub fn_weight: f64,
    /// Cost of a false positive far from any window.
    pub fp_weight: f64,
    /// Read from the file for completeness; NAB's score does not use it.
    pub tn_weight: f64,
}

impl Profile {
    /// NAB's three profiles (`config/profiles.json` of NAB v1.1), `standard` first.
    pub fn nab() -> Vec<Profile> {
        let p = |name: &str, fn_weight, fp_weight| Profile {
            name: name.to_owned(),
            tp_weight: 1.0,
            fn_weight,
            fp_weight,
            tn_weight: 1.0,
        };
        vec![
            p("standard", 1.0, 0.11),
            p("reward_low_FP_rate", 1.0, 0.22),
            p("reward_low_FN_rate", 2.0, 0.11),
        ]
    }

    /// Reads profiles in NAB's format:
    /// `{"name": {"CostMatrix": {"tpWeight": .., "fnWeight": .., "fpWeight": .., "tnWeight": ..}}}`
    /// (`tnWeight` optional). `standard` comes first, then NAB's other two, then the rest by
    /// name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read, [`Error::Format`] if it is not that shape or a
    /// weight is negative or not finite.
    pub fn load(path: &Path) -> Result<Vec<Profile>> {
        let text = fs::read_to_string(path).map_err(io_error(path))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format_error(path, Some(e.line()), e.to_string()))?;
        let object = json.as_object().ok_or_else(|| format_error(path, None, "not an object"))?;
        let mut profiles = Vec::with_capacity(object.len());
        for (name, entry) in object {
            let matrix = entry.get("CostMatrix").and_then(|m| m.as_object()).ok_or_else(|| {
                format_error(path, None, format!("profile `{name}` has no CostMatrix object"))
            })?;
            let weight = |key: &str, default: Option<f64>| -> Result<f64> {
                let value = match matrix.get(key) {
                    Some(v) => v.as_f64(),
                    None => default,
                };
                match value {
                    Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
                    _ => Err(format_error(
                        path,
                        None,
                        format!("profile `{name}`: {key} must be a number >= 0"),
                    )),
                }
            };
            profiles.push(Profile {
                name: name.clone(),
                tp_weight: weight("tpWeight", None)?,
                fn_weight: weight("fnWeight", None)?,
                fp_weight: weight("fpWeight", None)?,
                tn_weight: weight("tnWeight", Some(1.0))?,
            });
        }
        let rank = |name: &str| match name {
            "standard" => 0,
            "reward_low_FP_rate" => 1,
            "reward_low_FN_rate" => 2,
            _ => 3,
        };
        profiles.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
        Ok(profiles)
    }
}

/// A labelled corpus: NAB's 58 series, or any directory in NAB's layout.
#[derive(Clone, Debug)]
pub struct Corpus {
    root: Option<PathBuf>,
    series: Vec<Series>,
    profiles: Vec<Profile>,
    unlabeled: Vec<String>,
}

impl Corpus {
    /// Reads a directory in NAB's layout: `dir/data/**/*.csv` (columns `timestamp,value`,
    /// timestamps `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC), `dir/labels/combined_windows.json`
    /// (`{"category/file.csv": [["start", "end"], ..]}`) and, if present,
    /// `dir/config/profiles.json` (else [`Profile::nab`]). Series come sorted by name. Data
    /// files without labels are skipped and listed in [`Corpus::unlabeled`]. About 0.1 s for
    /// NAB's 365,558 points in a release build.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for a missing or unreadable file or directory, [`Error::Format`] for
    /// content that does not parse; see the module's "Untrusted input".
    pub fn load(dir: impl AsRef<Path>) -> Result<Corpus> {
        let dir = dir.as_ref();
        let data_dir = dir.join("data");
        let mut files = Vec::new();
        collect_csv_files(&data_dir, &data_dir, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(format_error(&data_dir, None, "no .csv files"));
        }

        let labels_path = dir.join("labels").join("combined_windows.json");
        let mut labels = load_windows(&labels_path)?;
        for name in labels.keys() {
            if files.binary_search(name).is_err() {
                return Err(format_error(
                    &labels_path,
                    None,
                    format!("labels name `{name}`, which is not in {}", data_dir.display()),
                ));
            }
        }

        let profiles_path = dir.join("config").join("profiles.json");
        let profiles =
            if profiles_path.exists() { Profile::load(&profiles_path)? } else { Profile::nab() };

        let mut series = Vec::with_capacity(files.len());
        let mut unlabeled = Vec::new();
        for name in files {
            let Some(limits) = labels.remove(&name) else {
                unlabeled.push(name);
                continue;
            };
            let path = data_dir.join(&name);
            let (times_ns, values) = read_series_csv(&path)?;
            let windows = place_windows(&times_ns, limits).map_err(|message| {
                format_error(&labels_path, None, format!("`{name}`: {message}"))
            })?;
            series.push(Series::new(name, times_ns, values, windows)?);
        }
        Ok(Corpus { root: Some(dir.to_path_buf()), series, profiles, unlabeled })
    }

    /// A corpus built in memory (tests, other data sources).
    pub fn from_series(series: Vec<Series>, profiles: Vec<Profile>) -> Corpus {
        Corpus { root: None, series, profiles, unlabeled: Vec::new() }
    }

    /// The directory the corpus was loaded from, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The labelled series, sorted by name when loaded.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The profiles to score with.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Data files that had no labels and were skipped.
    pub fn unlabeled(&self) -> &[String] {
        &self.unlabeled
    }

    /// Total number of points.
    pub fn points(&self) -> usize {
        self.series.iter().map(Series::len).sum()
    }

    /// Total number of label windows.
    pub fn windows(&self) -> usize {
        self.series.iter().map(|s| s.windows.len()).sum()
    }
}

/// A detector's anomaly scores for every point of a corpus.
#[derive(Clone, Debug)]
pub struct Results {
    detector: String,
    scores: Vec<Vec<f64>>,
    detector_time: Duration,
}

impl Results {
    /// Scores computed elsewhere: `scores[k][i]` for point `i` of series `k` of the corpus.
    /// A score missing for a point counts as no detection.
    pub fn from_scores(detector: impl Into<String>, scores: Vec<Vec<f64>>) -> Results {
        Results { detector: detector.into(), scores, detector_time: Duration::ZERO }
    }

    /// The detector's name.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// The anomaly scores, per series of the corpus.
    pub fn scores(&self) -> &[Vec<f64>] {
        &self.scores
    }

    /// Time spent inside `Detector::update`, summed over all series (zero for
    /// [`Results::from_scores`]).
    pub fn detector_time(&self) -> Duration {
        self.detector_time
    }

    /// Number of scored points.
    pub fn points(&self) -> usize {
        self.scores.iter().map(Vec::len).sum()
    }

    /// Mean detector time per point, in ns (no I/O, no scoring).
    pub fn ns_per_point(&self) -> f64 {
        self.detector_time.as_nanos() as f64 / self.points().max(1) as f64
    }

    /// Writes NAB's per-file results, `out/<detector>/<category>/<detector>_<file>.csv`, with
    /// columns `timestamp,value,anomaly_score,label` (label 1 inside windows), and returns the
    /// directory `out/<detector>`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if the results do not match the corpus or a name would leave `out`,
    /// [`Error::Io`] if a file cannot be written.
    pub fn write_nab_csvs(&self, corpus: &Corpus, out: &Path) -> Result<PathBuf> {
        let safe = |name: &str| {
            !name.is_empty()
                && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)))
        };
        if !safe(&self.detector) || self.detector.contains(['/', '\\']) {
            return Err(Error::Invalid(format!(
                "detector name `{}` is not a file name",
                self.detector
            )));
        }
        if self.scores.len() != corpus.series.len() {
            return Err(Error::Invalid(format!(
                "results hold {} series, the corpus {}",
                self.scores.len(),
                corpus.series.len()
            )));
        }
        let root = out.join(&self.detector);
        for (series, scores) in corpus.series.iter().zip(&self.scores) {
            if !safe(&series.name) || scores.len() != series.len() {
                return Err(Error::Invalid(format!(
                    "series `{}`: unsafe name or {} scores for {} points",
                    series.name,
                    scores.len(),
                    series.len()
                )));
            }
            let relative = Path::new(&series.name);
            let file = relative.file_name().map(|f| f.to_string_lossy()).unwrap_or_default();
            let dir = match relative.parent() {
                Some(parent) => root.join(parent),
                None => root.clone(),
            };
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            let path = dir.join(format!("{}_{file}", self.detector));
            let write = || -> io::Result<()> {
                let mut w = BufWriter::new(fs::File::create(&path)?);
                writeln!(w, "timestamp,value,anomaly_score,label")?;
                let mut windows = series.windows.iter().peekable();
                for (i, ((&t, &v), &s)) in
                    series.times_ns.iter().zip(&series.values).zip(scores).enumerate()
                {
                    while windows.peek().is_some_and(|w| w.end < i) {
                        windows.next();
                    }
                    let label = u8::from(windows.peek().is_some_and(|w| w.start <= i));
                    writeln!(w, "{},{v},{s},{label}", format_timestamp(t))?;
                }
                w.flush()
            };
            write().map_err(io_error(&path))?;
        }
        Ok(root)
    }
}

/// Runs a fresh detector from `factory` over every series of the corpus, point by point (no
/// look-ahead), and keeps each point's `score` as its anomaly score. Only the time inside
/// `update` is measured.
pub fn run<D: Detector + ?Sized>(
    corpus: &Corpus,
    detector: impl Into<String>,
    mut factory: impl FnMut() -> Box<D>,
) -> Results {
    let mut detector_time = Duration::ZERO;
    let scores = corpus
        .series
        .iter()
        .map(|series| {
            let mut d = factory();
            let mut out = Vec::with_capacity(series.len());
            let started = Instant::now();
            for (&t, &v) in series.times_ns.iter().zip(&series.values) {
                out.push(d.update(t, v).score);
            }
            detector_time += started.elapsed();
            out
        })
        .collect();
    Results { detector: detector.into(), scores, detector_time }
}

/// One series' part of a [`ProfileScore`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileScore {
    /// The series' name.
    pub name: String,
    /// Its raw score at the threshold.
    pub raw: f64,
    /// Windows found.
    pub true_positives: usize,
    /// Detections outside windows.
    pub false_positives: usize,
    /// Windows missed.
    pub false_negatives: usize,
}

/// The score of one detector for one profile at one threshold.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProfileScore {
    /// The profile.
    pub profile: Profile,
    /// A point is a detection when its score is `>= threshold`; `+inf` (JSON `null`) when
    /// never firing scores best.
    pub threshold: f64,
    /// Sum of the files' raw scores.
    pub raw: f64,
    /// Raw score of a detector that never fires.
    pub null: f64,
    /// Raw score of a detector that fires exactly at each window's first scored point.
    pub perfect: f64,
    /// `100 · (raw − null) / (perfect − null)`; `None` when the corpus has no scored window.
    pub normalized: Option<f64>,
    /// Windows found.
    pub true_positives: usize,
    /// Detections outside windows (after probation).
    pub false_positives: usize,
    /// Windows missed.
    pub false_negatives: usize,
    /// Per series, in corpus order.
    pub files: Vec<FileScore>,
}

/// Where a scored point lies.
#[derive(Clone, Copy)]
enum Place {
    /// Inside window `k` of the series.
    Inside(usize),
    /// Outside every window, after window `k` (or before all).
    Outside(Option<usize>),
}

/// Calls `f(i, place)` for every scored point (after probation) of `series`, in order.
fn for_each_scored(series: &Series, mut f: impl FnMut(usize, Place)) {
    let windows = &series.windows;
    let mut k = 0;
    for i in series.probation()..series.len() {
        while k < windows.len() && windows[k].end < i {
            k += 1;
        }
        let place = match windows.get(k) {
            Some(w) if w.start <= i => Place::Inside(k),
            _ => Place::Outside(k.checked_sub(1)),
        };
        f(i, place);
    }
}

/// Credit of a detection at `i` inside `w` (`tpWeight` at the window's first point).
fn true_positive_credit(profile: &Profile, w: Window, i: usize) -> f64 {
    let position = -((w.end - i + 1) as f64) / w.width() as f64;
    profile.tp_weight * scaled_sigmoid(position) / scaled_sigmoid(-1.0)
}

/// Cost (negative) of a detection at `i` outside windows, after window `previous`.
fn false_positive_cost(profile: &Profile, previous: Option<Window>, i: usize) -> f64 {
    let position = match previous {
        Some(w) => (i - w.end) as f64 / (w.width() - 1).max(1) as f64,
        None => 3.0,
    };
    profile.fp_weight * scaled_sigmoid(position)
}

/// Whether a window has a scored point (it is not entirely inside probation).
fn is_scored(series: &Series, w: &Window) -> bool {
    w.end >= series.probation()
}

/// The raw scores of a detector that never fires and of the perfect one.
fn baselines(corpus: &Corpus, profile: &Profile) -> (f64, f64) {
    let (mut null, mut perfect) = (0.0, 0.0);
    for series in &corpus.series {
        for w in series.windows.iter().filter(|w| is_scored(series, w)) {
            null -= profile.fn_weight;
            perfect += true_positive_credit(profile, *w, w.start.max(series.probation()));
        }
    }
    (null, perfect)
}

fn normalize(raw: f64, null: f64, perfect: f64) -> Option<f64> {
    (perfect > null).then(|| 100.0 * (raw - null) / (perfect - null))
}

/// Scores `results` for one profile at one threshold (a point is a detection when its score
/// is `>= threshold`). O(points), no allocation beyond the per-file list.
pub fn score(
    corpus: &Corpus,
    results: &Results,
    profile: &Profile,
    threshold: f64,
) -> ProfileScore {
    let mut files = Vec::with_capacity(corpus.series.len());
    let mut earliest: Vec<Option<f64>> = Vec::new();
    for (k, series) in corpus.series.iter().enumerate() {
        let scores = results.scores.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let mut file = FileScore {
            name: series.name.clone(),
            raw: 0.0,
            true_positives: 0,
            false_positives: 0,
            false_negatives: 0,
        };
        earliest.clear();
        earliest.resize(series.windows.len(), None);
        for_each_scored(series, |i, place| {
            if !scores.get(i).is_some_and(|&s| s >= threshold) {
                return;
            }
            match place {
                Place::Inside(w) => {
                    if earliest[w].is_none() {
                        earliest[w] = Some(true_positive_credit(profile, series.windows[w], i));
                    }
                }
                Place::Outside(previous) => {
                    let previous = previous.map(|w| series.windows[w]);
                    file.raw += false_positive_cost(profile, previous, i);
                    file.false_positives += 1;
                }
            }
        });
        for (w, credit) in series.windows.iter().zip(&earliest) {
            match credit {
                Some(credit) => {
                    file.raw += credit;
                    file.true_positives += 1;
                }
                None if is_scored(series, w) => {
                    file.raw -= profile.fn_weight;
                    file.false_negatives += 1;
                }
                None => {}
            }
        }
        files.push(file);
    }
    let (null, perfect) = baselines(corpus, profile);
    let raw = files.iter().map(|f| f.raw).sum();
    ProfileScore {
        profile: profile.clone(),
        threshold,
        raw,
        null,
        perfect,
        normalized: normalize(raw, null, perfect),
        true_positives: files.iter().map(|f| f.true_positives).sum(),
        false_positives: files.iter().map(|f| f.false_positives).sum(),
        false_negatives: files.iter().map(|f| f.false_negatives).sum(),
        files,
    }
}

/// Finds the threshold with the best raw score for `profile` and scores it. Exact: every
/// distinct anomaly score of the corpus is tried (and "never fire", threshold `+inf`), in one
/// sweep from the highest score down; on ties the highest threshold wins. O(n log n) in the
/// scored points, about 15 ms for NAB in a release build.
pub fn optimize_threshold(corpus: &Corpus, results: &Results, profile: &Profile) -> ProfileScore {
    /// A scored point that could be a detection: its anomaly score, its global window (or
    /// `u32::MAX` outside windows) and what it adds as a detection.
    struct Candidate {
        score: f64,
        window: u32,
        weight: f64,
    }
    const OUTSIDE: u32 = u32::MAX;
    let mut candidates = Vec::with_capacity(corpus.points());
    let mut window_base = 0usize;
    for (k, series) in corpus.series.iter().enumerate() {
        let scores = results.scores.get(k).map(Vec::as_slice).unwrap_or(&[]);
        for_each_scored(series, |i, place| {
            let Some(&score) = scores.get(i).filter(|s| !s.is_nan()) else { return };
            let (window, weight) = match place {
                Place::Inside(w) => {
                    ((window_base + w) as u32, true_positive_credit(profile, series.windows[w], i))
                }
                Place::Outside(previous) => {
                    (OUTSIDE, false_positive_cost(profile, previous.map(|w| series.windows[w]), i))
                }
            };
            candidates.push(Candidate { score, window, weight });
        });
        window_base += series.windows.len();
    }
    candidates.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));

    let (null, _) = baselines(corpus, profile);
    let mut credit: Vec<Option<f64>> = vec![None; window_base];
    let (mut total, mut best_total, mut best_threshold) = (null, null, f64::INFINITY);
    let mut rest = candidates.as_slice();
    while let Some(first) = rest.first() {
        let threshold = first.score;
        let group = rest.iter().take_while(|c| c.score == threshold).count();
        for c in &rest[..group] {
            if c.window == OUTSIDE {
                total += c.weight;
                continue;
            }
            let slot = &mut credit[c.window as usize];
            match *slot {
                None => total += profile.fn_weight + c.weight,
                Some(old) if c.weight > old => total += c.weight - old,
                Some(_) => continue,
            }
            *slot = Some(c.weight);
        }
        if total > best_total {
            (best_total, best_threshold) = (total, threshold);
        }
        rest = &rest[group..];
    }
    score(corpus, results, profile, best_threshold)
}

/// [`optimize_threshold`] for every profile of the corpus, in the corpus' order.
pub fn evaluate(corpus: &Corpus, results: &Results) -> Vec<ProfileScore> {
    corpus.profiles.iter().map(|p| optimize_threshold(corpus, results, p)).collect()
}

/// One detector's line of a published scoreboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// The detector's name, e.g. `numenta`.
    pub detector: String,
    /// Its normalized score per profile name.
    pub scores: Vec<(String, f64)>,
}

impl Published {
    /// The normalized score for `profile`, if published.
    pub fn score(&self, profile: &str) -> Option<f64> {
        self.scores.iter().find(|(p, _)| p == profile).map(|(_, s)| *s)
    }
}

/// Reads a published scoreboard: `results/final_results.json` of a NAB checkout
/// (`{"detector": {"profile": normalized score}}`), sorted by the `standard` score, best
/// first. Entries that are not numbers are left out.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::Format`] if it is not that shape.
pub fn load_published(path: &Path) -> Result<Vec<Published>> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format_error(path, Some(e.line()), e.to_string()))?;
    let object = json
        .as_object()
        .ok_or_else(|| format_error(path, None, "not an object of detector -> profile -> score"))?;
    let mut board: Vec<Published> = object
        .iter()
        .filter_map(|(detector, profiles)| {
            let scores = profiles
                .as_object()?
                .iter()
                .filter_map(|(p, s)| Some((p.clone(), s.as_f64()?)))
                .collect();
            Some(Published { detector: detector.clone(), scores })
        })
        .collect();
    let standard = |p: &Published| p.score("standard").unwrap_or(f64::NEG_INFINITY);
    board.sort_by(|a, b| standard(b).total_cmp(&standard(a)).then(a.detector.cmp(&b.detector)));
    Ok(board)
}
