//! `mission-ctl compact`: merges a store's small files ([`Store::compact`]), once from the
//! command line or on a schedule inside `mission-ctl serve` ([`Scheduled`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mission_store::{CompactOptions, CompactionReport, Store};

use crate::Error;

/// Range of `--target-file-mb`.
pub const TARGET_FILE_MB_RANGE: std::ops::RangeInclusive<u64> = 1..=4096;

/// Range of `--compact-every` (besides `0` / `off`).
pub const COMPACT_EVERY_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(7 * 86_400);

/// The arguments of `mission-ctl compact` (also the options of `serve`'s scheduled runs).
#[derive(Clone, Debug, clap::Args)]
pub struct CompactArgs {
    /// Only files finalized at least this long ago (e.g. `10m`; `0` for every file).
    #[arg(long, default_value = "0s", value_parser = parse_age)]
    pub older_than: Duration,
    /// Merged files grow up to about this many MiB (1..=4096); larger files are left alone.
    #[arg(long, default_value_t = 128, value_parser = parse_target_mb)]
    pub target_file_mb: u64,
    /// Compact a partition only when it holds at least this many small files (2..=4096).
    #[arg(long, default_value_t = 8, value_parser = parse_min_files)]
    pub min_files: usize,
    /// Only this tenant's partitions.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl Default for CompactArgs {
    fn default() -> Self {
        Self { older_than: Duration::ZERO, target_file_mb: 128, min_files: 8, tenant: None }
    }
}

impl CompactArgs {
    /// The store's options for these arguments.
    ///
    /// # Errors
    /// A setting out of range (as [`CompactOptions::validate`]).
    pub fn options(&self) -> Result<CompactOptions, Error> {
        let options = CompactOptions::default()
            .with_older_than(self.older_than)
            .with_target_file_bytes(self.target_file_mb.saturating_mul(1 << 20))
            .with_min_files(self.min_files)
            .with_tenant(self.tenant.clone());
        options.validate()?;
        Ok(options)
    }
}

fn parse_age(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = crate::parse_duration(text)?;
    if !mission_store::compact::OLDER_THAN_RANGE.contains(&d) {
        return Err(format!("{text:?}: at most 366 days"));
    }
    Ok(d)
}

fn parse_target_mb(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|n| TARGET_FILE_MB_RANGE.contains(n))
        .ok_or_else(|| format!("{text:?}: expected an integer in {TARGET_FILE_MB_RANGE:?}"))
}

fn parse_min_files(text: &str) -> Result<usize, String> {
    let range = mission_store::compact::MIN_FILES_RANGE;
    text.trim()
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{text:?}: expected an integer in {range:?}"))
}

/// Parses `--compact-every`: a duration in [`COMPACT_EVERY_RANGE`], or `0` / `off` (no
/// scheduled compaction: `None`).
///
/// # Errors
/// A message naming the text and the range.
pub fn parse_compact_every(text: &str) -> Result<CompactEvery, String> {
    let trimmed = text.trim();
    if trimmed == "0" || trimmed.eq_ignore_ascii_case("off") {
        return Ok(CompactEvery(None));
    }
    let d = crate::parse_duration(trimmed)?;
    if !COMPACT_EVERY_RANGE.contains(&d) {
        return Err(format!("{text:?}: expected 0/off or a duration from 1s to 7d"));
    }
    Ok(CompactEvery(Some(d)))
}

/// How often `serve` compacts its store (`None`: never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactEvery(pub Option<Duration>);

/// One line saying what a compaction did.
pub fn describe(report: &CompactionReport) -> String {
    let mut line = format!(
        "compacted {} files into {} in {} partitions ({} rows, {:.1} MB read, {:.1} MB written)",
        report.files_merged,
        report.files_written,
        report.partitions,
        report.rows,
        report.bytes_read as f64 / 1e6,
        report.bytes_written as f64 / 1e6,
    );
    if report.leftovers_removed > 0 {
        line += &format!(
            "; {} leftovers of an interrupted compaction deleted",
            report.leftovers_removed
        );
    }
    if report.in_use > 0 {
        line += &format!("; {} files awaiting recovery left alone", report.in_use);
    }
    if !report.unreadable.is_empty() {
        line += &format!("; {} unreadable files left alone", report.unreadable.len());
    }
    line
}

/// `mission-ctl compact`: compacts the store at `root` once and prints what it did (JSON with
/// `json`).
///
/// # Errors
/// Options out of range, another compaction running, or an I/O or Parquet error.
pub fn run_compact(
    root: &Path,
    args: &CompactArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<CompactionReport, Error> {
    let options = args.options()?;
    let mut store = Store::open(root)?;
    let report = store.compact(&options)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", describe(&report))?;
        for skipped in &report.unreadable {
            writeln!(out, "  left alone {skipped}")?;
        }
    }
    Ok(report)
}

/// What scheduled compactions did so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleStats {
    /// Compactions run.
    pub runs: u64,
    /// Runs that failed (the last error is kept).
    pub failures: u64,
    /// The last run's report.
    pub last: Option<CompactionReport>,
    /// The last failure's message.
    pub last_error: Option<String>,
}

/// Compaction on a schedule, on a thread of its own: every `every`, [`Store::compact`] of the
/// store. Stopped (the run in progress finishes first) when dropped or [`stop`](Self::stop)ped.
pub struct Scheduled {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<(Mutex<ScheduleStats>, Condvar)>,
}

impl Scheduled {
    /// Starts compacting the store at `root` every `every` (the first run after one period),
    /// calling `on_run` with each run's result.
    ///
    /// # Errors
    /// The operating system's error when the thread cannot be started.
    pub fn start(
        root: PathBuf,
        every: Duration,
        options: CompactOptions,
        on_run: impl Fn(&Result<CompactionReport, String>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let stats: Arc<(Mutex<ScheduleStats>, Condvar)> = Arc::default();
        let shared = stats.clone();
        let thread =
            std::thread::Builder::new().name("mission-compact".into()).spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let result = Store::open(&root)
                        .and_then(|mut s| s.compact(&options))
                        .map_err(|e| e.to_string());
                    on_run(&result);
                    let (lock, changed) = &*shared;
                    let mut stats = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    stats.runs += 1;
                    match result {
                        Ok(report) => stats.last = Some(report),
                        Err(e) => {
                            stats.failures += 1;
                            stats.last_error = Some(e);
                        }
                    }
                    changed.notify_all();
                }
            })?;
        Ok(Self { stop: Some(stop), thread: Some(thread), stats })
    }

    /// What the runs did so far.
    pub fn stats(&self) -> ScheduleStats {
        self.stats.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until at least `runs` runs are done or `timeout` passes; returns the stats then.
    pub fn wait_for_runs(&self, runs: u64, timeout: Duration) -> ScheduleStats {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.stats;
        let mut stats = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while stats.runs < runs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stats = changed
                .wait_timeout(stats, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        stats.clone()
    }

    /// Stops the schedule, waiting for a run in progress to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Scheduled {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_range_checked() {
        assert_eq!(parse_compact_every("off"), Ok(CompactEvery(None)));
        assert_eq!(parse_compact_every("0"), Ok(CompactEvery(None)));
        assert_eq!(parse_compact_every("10m"), Ok(CompactEvery(Some(Duration::from_secs(600)))));
        for bad in ["8d", "500ms", "soon", ""] {
            assert!(parse_compact_every(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("400d").is_err());
        assert!(parse_target_mb("0").is_err() && parse_target_mb("4097").is_err());
        assert_eq!(parse_target_mb("64"), Ok(64));
        assert!(parse_min_files("1").is_err() && parse_min_files("x").is_err());
        assert_eq!(parse_min_files("2"), Ok(2));
    }

    #[test]
    fn a_schedule_runs_and_stops() {
        let root =
            std::env::temp_dir().join(format!("mission-ctl-schedule-{}", std::process::id()));
        let (tx, rx) = mpsc::channel();
        let scheduled = Scheduled::start(
            root.clone(),
            Duration::from_secs(1),
            CompactOptions::default(),
            move |r| {
                let _ = tx.send(r.is_ok());
            },
        )
        .expect("the schedule's thread");
        // Explicit waits: for the run's callback, then for its stats.
        assert_eq!(rx.recv_timeout(Duration::from_secs(120)), Ok(true));
        let stats = scheduled.wait_for_runs(1, Duration::from_secs(120));
        assert!(stats.runs >= 1 && stats.failures == 0, "{stats:?}");
        assert_eq!(stats.last.map(|r| r.files_merged), Some(0), "an empty store");
        scheduled.stop();
        let _ = std::fs::remove_dir_all(&root);
    }
}
