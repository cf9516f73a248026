//! The crash harness: a writer process (`examples/crash_writer.rs`) is killed with SIGKILL at
//! 50 moments chosen by a seeded generator — while it starts and recovers the previous kill's
//! leftovers, while it appends to its log, writes row groups, finalizes and renames files —
//! and after every kill the store must open, `doctor` (`Store::check`) must tell the truth,
//! and in the end every event acknowledged by a returned `flush()` is there exactly once.
//!
//! The child's stdout is the clock: it prints `ready`, `accepted <seq> <ns>`, `appended <n>
//! <ns>` and `flushed <seq>` lines, and the harness kills it after a chosen number of lines
//! (or, for kills during start-up and recovery, a chosen few milliseconds after spawning it).
//!
//! What is lost on a kill, and why it is bounded:
//! - **By position (no timing):** every event the pipeline reported *appended* (delivered to
//!   the Parquet sink, whose `consume` appends it to the write-ahead log before returning) is
//!   stored after the kill: the log's bytes are in the page cache, which a kill -9 does not
//!   touch. So what a kill can lose is only what the pipeline had not yet drained from the
//!   recorder's ring.
//! - **In time:** that is the pipeline's drain lag: `drain_interval` (1 ms) plus one pass of
//!   the sink (encode, log append, sometimes a row group, a finalize or the log's periodic
//!   `fsync`). The writer stamps each step with wall-clock time, so the harness measures, per
//!   kill, the age of the oldest accepted-but-lost event, and over every step the lag from
//!   accepted to appended. The assertion on it ([`loss_bound`]: 3 s, or
//!   `MISSION_CRASH_LOSS_BOUND_MS`) is a generous margin for a loaded 2-core debug machine; the
//!   issue's 1 s default is checked against a release build
//!   (`MISSION_CRASH_WRITER=<release crash_writer> MISSION_CRASH_LOSS_BOUND_MS=1000`, see
//!   `benches/RESULTS.md`). A power loss adds `wal_sync_interval` (500 ms) to it; a kill -9
//!   does not, since the page cache survives.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::{Array, UInt64Array};
use mission_store::Store;
use mission_store::schema::col;

use crate::TempDir;

/// The `crash_writer` example binary, built now (a no-op when it is up to date: a binary left
/// by an earlier build of other sources would test the wrong writer) — or, when
/// `MISSION_CRASH_WRITER` names one, that binary as it is (e.g. a release build, to measure
/// the loss window at the speed users run).
pub(crate) fn crash_writer() -> PathBuf {
    if let Some(bin) = std::env::var_os("MISSION_CRASH_WRITER") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "MISSION_CRASH_WRITER={}: not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("test binary");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile_dir.join("examples").join("crash_writer");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "mission-store", "--example", "crash_writer"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("cargo build").success());
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// A small deterministic generator (xorshift64*), so every run kills at the same moments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What one run of the writer said before it was killed.
#[derive(Debug, Default)]
struct Run {
    /// Highest sequence acknowledged by a returned flush.
    flushed: u64,
    /// Per step: the highest sequence accepted, and the writer's wall-clock time (ns) taken
    /// just before the step's first event was recorded.
    accepted: Vec<(u128, u64)>,
    /// The pipeline's reports: events `1..=n` appended to the sink (the log), seen at (ns).
    appended: Vec<(u128, u64)>,
    /// Wall-clock time (ns) just after the SIGKILL was sent.
    killed_at: Option<u128>,
}

/// Wall-clock nanoseconds since the Unix epoch: the clock the writer stamps its lines with.
fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// The loss bound the harness asserts: 3 s (a margin for a loaded 2-core machine running a
/// debug build), or `MISSION_CRASH_LOSS_BOUND_MS` milliseconds (1..=60,000).
fn loss_bound() -> Duration {
    match std::env::var("MISSION_CRASH_LOSS_BOUND_MS") {
        Err(_) => Duration::from_secs(3),
        Ok(ms) => {
            let ms: u64 =
                ms.parse().ok().filter(|ms| (1..=60_000).contains(ms)).unwrap_or_else(|| {
                    panic!("MISSION_CRASH_LOSS_BOUND_MS={ms}: expected milliseconds in 1..=60000")
                });
            Duration::from_millis(ms)
        }
    }
}

/// Milliseconds between two wall-clock stamps (0 if `to` is not after `from`).
fn ms_between(from: u128, to: u128) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

/// Lines of the child's stdout, read on a thread so the harness can wait with a deadline.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn note(run: &mut Run, line: &str) {
    let mut words = line.split(' ');
    let (Some(what), Some(n)) = (words.next(), words.next().and_then(|n| n.parse().ok())) else {
        return;
    };
    let mut at = || words.next().and_then(|t| t.parse::<u128>().ok()).expect("a time stamp");
    match what {
        "accepted" => run.accepted.push((at(), n)),
        "appended" => run.appended.push((at(), n)),
        "flushed" => run.flushed = run.flushed.max(n),
        _ => {}
    }
}

/// Every stored event's span id, counted.
fn stored(root: &std::path::Path) -> BTreeMap<u64, u32> {
    let store = Store::open(root).expect("the store opens");
    let mut iter = store.query().columns(&[col::SPAN_ID]).iter().expect("query");
    let mut seen = BTreeMap::new();
    for batch in iter.by_ref() {
        let batch = batch.expect("every file reads");
        let ids = batch
            .column_by_name(col::SPAN_ID)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .expect("span ids");
        for i in 0..ids.len() {
            *seen.entry(ids.value(i)).or_insert(0) += 1;
        }
    }
    assert!(iter.stats().skipped.is_empty(), "unreadable files: {:?}", iter.stats().skipped);
    seen
}

/// After a kill: the store opens, no finalized file is unreadable, and what `doctor` reports
/// (events in files + rows in the dead writer's log segments) is exactly what recovery yields.
fn doctor_tells_the_truth(root: &std::path::Path) {
    let mut store = Store::open(root).expect("the store opens after a kill");
    let before = store.check().expect("check");
    assert!(before.unreadable.is_empty(), "{:?}", before.unreadable);
    assert_eq!(before.in_progress, 0, "the writer is dead: nothing is in progress");
    assert!(before.wal.iter().all(|s| s.unrecoverable.is_none()), "{:?}", before.wal);
    let promised: u64 = before.events + before.wal.iter().map(|s| s.rows).sum::<u64>();
    let recovery = store.recover().expect("recover");
    assert!(recovery.quarantined.is_empty(), "{:?}", recovery.quarantined);
    let after = store.check().expect("check");
    assert!(after.healthy(), "after recovery: {after:?}");
    assert_eq!(after.events, promised, "doctor promised {promised} events; recovery gave");
    assert_eq!(recovery.rows_recovered, promised - before.events);
}

#[test]
fn sigkill_at_fifty_moments_loses_nothing_acknowledged_and_duplicates_nothing() {
    const KILLS: u64 = 50;
    // An accepted event is stored once the pipeline drained it (milliseconds); the default
    // margin covers a loaded 2-core machine, far above the 500 ms log sync interval.
    let bound = loss_bound();
    let dir = TempDir::new("crash-harness");
    let bin = crash_writer();
    let mut rng = Rng(0x005E_ED0F_C4A5_4E55);
    let mut runs: Vec<Run> = Vec::new();
    // Per kill: (events accepted but lost, age in ms at the kill of the oldest of them).
    let mut lost_per_kill: Vec<(u64, f64)> = Vec::new();
    for run_index in 0..KILLS {
        let kind = rng.below(10);
        let mut child = Command::new(&bin);
        child.arg(&dir.0).arg(run_index.to_string());
        if kind == 2 {
            // Never flushed, one file never finalized: only the log keeps these events.
            child.arg("--no-flush");
        }
        let mut child =
            child.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn writer");
        let rx = lines(&mut child);
        let mut run = Run::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        match kind {
            // During start-up, which recovers the previous run's leftovers.
            0 | 1 => std::thread::sleep(Duration::from_millis(rng.below(40))),
            // After the writer has run unflushed for a while (the loss-bound check bites here).
            2 => {
                let until = Instant::now() + bound + Duration::from_millis(500);
                while Instant::now() < until {
                    let line = rx.recv_timeout(Duration::from_secs(60)).expect("writer output");
                    note(&mut run, &line);
                }
            }
            // After a chosen number of steps: appending, row groups, finalize, rename.
            _ => {
                let steps = 1 + rng.below(40);
                let mut seen = 0;
                while seen < steps {
                    let line = rx
                        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        .expect("the writer stalled");
                    note(&mut run, &line);
                    seen += 1;
                }
            }
        }
        child.kill().expect("SIGKILL");
        run.killed_at = Some(now_ns());
        child.wait().expect("reap");
        // Lines written before the kill are still in the pipe: read them all.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
            note(&mut run, &line);
        }
        // Every other kill the harness recovers (checking doctor first); otherwise the next
        // writer recovers when it starts, and may itself be killed doing it.
        if run_index % 2 == 1 || run_index == KILLS - 1 {
            doctor_tells_the_truth(&dir.0);
        } else {
            let store = Store::open(&dir.0).expect("the store opens after a kill");
            assert!(store.open_report().quarantined.is_empty());
        }
        runs.push(run);
    }

    let seen = stored(&dir.0);
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicates.is_empty(), "events stored more than once: {duplicates:?}");
    let mut lags: Vec<f64> = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let index = index as u64;
        let present: Vec<u64> =
            seen.range(index << 32..(index + 1) << 32).map(|(id, _)| id & 0xFFFF_FFFF).collect();
        let highest = present.last().copied().unwrap_or(0);
        // One writer thread, one partition: what survives is a prefix of what was recorded.
        assert_eq!(present.len() as u64, highest, "run {index}: a gap in 1..={highest}");
        assert!(
            highest >= run.flushed,
            "run {index}: flushed {} but only {highest} stored",
            run.flushed
        );
        // By position: everything the pipeline reported appended to the log survived.
        let appended = run.appended.iter().map(|(_, n)| *n).max().unwrap_or(0);
        assert!(
            highest >= appended,
            "run {index}: the pipeline reported {appended} appended to the log, {highest} stored"
        );
        // In time: the oldest accepted event that was lost (`highest + 1`, the stored events
        // being a prefix) was accepted at or after its step's stamp, no later than `bound`
        // before the kill.
        let killed = run.killed_at.expect("killed");
        let accepted = run.accepted.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let lost = accepted.saturating_sub(highest);
        let age = run
            .accepted
            .iter()
            .find(|(_, n)| *n > highest)
            .map_or(0.0, |(at, _)| ms_between(*at, killed));
        assert!(
            lost == 0 || age <= bound.as_secs_f64() * 1e3,
            "run {index}: event {} was accepted {age:.1} ms before the kill (bound {bound:?}) \
             and lost; {highest} stored",
            highest + 1
        );
        lost_per_kill.push((lost, age));
        // Every step the pipeline reported appended while the writer lived: its lag.
        for (at, seq) in &run.accepted {
            if let Some((appended_at, _)) = run.appended.iter().find(|(_, n)| n >= seq) {
                lags.push(ms_between(*at, *appended_at));
            }
        }
    }
    let max_lost = lost_per_kill.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let max_age = lost_per_kill.iter().map(|(_, age)| *age).fold(0.0, f64::max);
    let kills_with_loss = lost_per_kill.iter().filter(|(n, _)| *n > 0).count();
    lags.sort_by(f64::total_cmp);
    let quantile = |q: f64| lags.get(((lags.len() as f64 - 1.0) * q) as usize).copied();
    println!(
        "crash harness: {KILLS} kills ({kills_with_loss} lost accepted events); per kill, max \
         {max_lost} events lost, the oldest accepted {max_age:.1} ms before the kill (bound \
         {bound:?}); accepted -> appended to the log over {} steps: median {:.1} ms, p99 {:.1} \
         ms, max {:.1} ms; total stored {}",
        lags.len(),
        quantile(0.5).unwrap_or(0.0),
        quantile(0.99).unwrap_or(0.0),
        quantile(1.0).unwrap_or(0.0),
        seen.len()
    );
    assert!(!lags.is_empty(), "no step was reported appended: nothing was measured");
}

/// How a process that called `std::process::abort` ends: killed by SIGABRT.
#[cfg(unix)]
const SIGABRT: i32 = 6;

/// Starts writer run `run` on `root` with `args`; returns it and its stdout's lines.
#[cfg(unix)]
fn spawn_writer(
    bin: &std::path::Path,
    root: &std::path::Path,
    run: usize,
    args: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(bin)
        .arg(root)
        .arg(run.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let rx = lines(&mut child);
    (child, rx)
}

/// Runs the writer with `args` until it exits by itself (an armed crash point), at most a
/// minute; returns how it ended and what it printed.
#[cfg(unix)]
fn run_to_its_end(
    bin: &std::path::Path,
    root: &std::path::Path,
    run: usize,
    args: &[&str],
) -> (std::process::ExitStatus, Vec<String>) {
    let (mut child, rx) = spawn_writer(bin, root, run, args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => out.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("run {run} {args:?}: still running after a minute (point never reached)");
            }
        }
    }
    (child.wait().expect("reap"), out)
}

/// The highest sequence a writer's output says a returned flush acknowledged.
#[cfg(unix)]
fn flushed_in(lines: &[String]) -> u64 {
    let mut run = Run::default();
    for line in lines {
        note(&mut run, line);
    }
    run.flushed
}

/// What `doctor` promises after a crash, without recovering: (events in files, rows the dead
/// writers' log segments will add), after checking nothing is unreadable or unrecoverable.
#[cfg(unix)]
fn doctors_promise(root: &std::path::Path) -> (u64, u64) {
    let store = Store::open(root).expect("the store opens after a crash");
    assert!(store.open_report().quarantined.is_empty());
    let check = store.check().expect("check");
    assert!(check.unreadable.is_empty(), "{:?}", check.unreadable);
    assert_eq!(check.in_progress, 0, "the writer is dead: nothing is in progress");
    assert!(check.wal.iter().all(|s| s.unrecoverable.is_none()), "{:?}", check.wal);
    (check.events, check.wal.iter().map(|s| s.rows).sum())
}

/// Each crash point of finalize, rename and recovery, armed so the writer aborts exactly there
/// (the n-th time it is reached, for a few n): after each, the store opens, `doctor` tells the
/// truth, the next writer's recovery completes and recovers exactly what doctor promised, and
/// in the end every flushed event is stored exactly once. The points after a rename and before
/// the log segment's deletion are the "died between finalize and cleanup" case: recovering
/// those segments again would duplicate their rows.
#[cfg(unix)]
#[test]
fn a_writer_aborted_at_each_crash_point_loses_nothing_flushed_and_duplicates_nothing() {
    use std::os::unix::process::ExitStatusExt;

    /// Three tenants: three partitions, so three open files and segments at a time.
    const TENANTS: &[&str] = &["--tenants", "3"];
    let dir = TempDir::new("crash-points");
    let root = dir.0.as_path();
    let bin = crash_writer();
    // Per run (the index is the run number in the span ids): the highest flushed sequence.
    let mut flushed: Vec<u64> = Vec::new();
    let cases = [
        ("finalize-before-rename", 1),
        ("finalize-before-rename", 4),
        ("finalize-before-log-delete", 1),
        ("finalize-before-log-delete", 5),
        ("recovery-before-rename", 1),
        ("recovery-before-rename", 3),
        ("recovery-before-log-delete", 1),
        ("recovery-before-log-delete", 2),
    ];
    for (point, n) in cases {
        let armed = format!("{point}:{n}");
        let in_recovery = point.starts_with("recovery");
        if in_recovery {
            // Something to recover: a writer aborted at its first finalize leaves a complete
            // temporary file and segments with rows in every partition.
            let (status, out) = run_to_its_end(
                &bin,
                root,
                flushed.len(),
                &[&["--crash-at", "finalize-before-rename:1"], TENANTS].concat(),
            );
            assert_eq!(status.signal(), Some(SIGABRT), "setup for {armed}: {status:?}");
            flushed.push(flushed_in(&out));
            let check = Store::open(root).expect("open").check().expect("check");
            let to_rebuild = check.wal.iter().filter(|s| s.rows > 0).count();
            assert!(to_rebuild >= n, "{armed}: only {to_rebuild} segments to recover");
        }
        let (status, out) =
            run_to_its_end(&bin, root, flushed.len(), &[&["--crash-at", &armed], TENANTS].concat());
        assert_eq!(
            status.signal(),
            Some(SIGABRT),
            "{armed}: the writer must die at the point, not end with {status:?}"
        );
        assert_eq!(
            out.first().is_some_and(|l| l.starts_with("ready")),
            !in_recovery,
            "{armed}: output {:?}",
            &out[..out.len().min(3)]
        );
        flushed.push(flushed_in(&out));

        // The next writer recovers exactly what doctor promised, then writes and is killed.
        let (events, pending) = doctors_promise(root);
        let run = flushed.len();
        let (mut child, rx) = spawn_writer(&bin, root, run, TENANTS);
        let wait = Duration::from_secs(60);
        let ready = rx.recv_timeout(wait).expect("the next writer starts");
        assert_eq!(ready, format!("ready {pending}"), "after {armed}: {events} events in files");
        let mut next = Run::default();
        while next.flushed == 0 {
            note(&mut next, &rx.recv_timeout(wait).expect("the next writer flushes"));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
            note(&mut next, &line);
        }
        flushed.push(next.flushed);
        doctor_tells_the_truth(root);
    }

    let seen = stored(root);
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicates.is_empty(), "events stored more than once: {duplicates:?}");
    for (run, &flushed) in flushed.iter().enumerate() {
        let run = run as u64;
        let missing: Vec<u64> =
            (1..=flushed).filter(|seq| !seen.contains_key(&(run << 32 | seq))).take(5).collect();
        assert!(missing.is_empty(), "run {run}: flushed {flushed}, missing {missing:?}…");
    }
    assert!(flushed.iter().sum::<u64>() > 0, "nothing was flushed: nothing was checked");
}
