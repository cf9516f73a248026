//! Issue 7: the per-point cost of every detector in `mission-ml` and of the default ensemble,
//! and the memory each keeps per tracked series.
//!
//! * Time: each iteration is one point fed to a detector already warmed up on 10 000 points,
//!   reported per element (`Throughput::Elements(1)`). `baseline/feed` is the loop alone
//!   (fetching the next point), the floor under every other figure.
//! * Data: NAB `realKnownCause/machine_temperature_system_failure.csv` (22 695 points, every
//!   5 minutes), read at run time from `$MISSION_NAB_DIR` or `/work/shared/datasets/nab`, and
//!   looped (times keep increasing from lap to lap). When the file is absent a synthetic noisy
//!   daily cycle of the same length and spacing is used; the bench prints which.
//! * Memory: a counting global allocator measures the heap live after constructing and
//!   warming up N independent detectors (10 000 points each), divided by N, plus
//!   `size_of` of the detector. Requested sizes: the system allocator's per-block overhead
//!   (8–16 B per allocation on glibc) is not included. The `serde_json` length of one warmed
//!   detector's state is printed beside it, and so are the allocations per point after
//!   warm-up (the hot path should not allocate).
//!
//! Seasonal models use a period of 288 points (one day at 5 minutes). The leak detector is
//! measured with the window the SDK's memory sampler uses (720) and with the 120 of its docs.
//!
//! Run: `cargo bench -p mission-benches --bench detectors`.

// The counting allocator below implements `GlobalAlloc`, which is an unsafe trait; every
// `unsafe` block forwards to `System` unchanged and has a `// SAFETY:` comment.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mission_ml::Detector;
use mission_ml::Ensemble;
use mission_ml::detectors::{Cusum, EwStats, RobustBaseline, SeasonalBaseline, Sensitive, Spot};
use mission_ml::forecast::HoltWinters;
use mission_ml::leak::LeakDetector;

/// Heap bytes live (requested sizes) and allocations made, over the whole process.
static LIVE: AtomicI64 = AtomicI64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting. One relaxed atomic add per allocation and per free; the
/// measured update paths of the O(1) detectors do not allocate (see the `allocs/point` column).
struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (hence by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Points every detector sees before it is timed or its memory is counted.
const WARMUP: usize = 10_000;
/// Points per day at the series' 5-minute spacing.
const DAY: usize = 288;
const STEP_NS: u64 = 300_000_000_000;

/// The series fed to every detector.
struct Series {
    source: String,
    times: Vec<u64>,
    values: Vec<f64>,
    /// What a lap adds to the times, so they keep increasing when the series is looped.
    lap_ns: u64,
}

impl Series {
    fn load() -> Series {
        let dir = std::env::var_os("MISSION_NAB_DIR")
            .map_or_else(|| PathBuf::from("/work/shared/datasets/nab"), PathBuf::from);
        let path = dir.join("data/realKnownCause/machine_temperature_system_failure.csv");
        match std::fs::read_to_string(&path).ok().and_then(|text| parse_csv(&text)) {
            Some((times, values)) => Series::new(
                format!("NAB {} ({} points)", path.display(), times.len()),
                times,
                values,
            ),
            None => Series::synthetic(),
        }
    }

    /// A noisy daily cycle (5-minute points, 22 695 of them, as the NAB series), with a
    /// deterministic pseudo-random noise.
    fn synthetic() -> Series {
        let n = 22_695;
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut noise = move || {
            // xorshift64*, mapped to [-1, 1).
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        };
        let times = (0..n as u64).map(|i| 1_386_000_000_000_000_000 + i * STEP_NS).collect();
        let values = (0..n)
            .map(|i| {
                let phase = (i % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
                80.0 + 8.0 * phase.sin() + 2.0 * noise()
            })
            .collect();
        Series::new(format!("synthetic noisy daily cycle ({n} points)"), times, values)
    }

    fn new(source: String, times: Vec<u64>, values: Vec<f64>) -> Series {
        let lap_ns = times.last().unwrap_or(&0) - times.first().unwrap_or(&0) + STEP_NS;
        Series { source, times, values, lap_ns }
    }

    fn cursor(&self) -> Cursor<'_> {
        Cursor { series: self, at: 0, offset: 0 }
    }
}

/// Reads `timestamp,value` lines (`YYYY-MM-DD HH:MM:SS`, UTC); `None` if any line is malformed.
fn parse_csv(text: &str) -> Option<(Vec<u64>, Vec<f64>)> {
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (stamp, value) = line.split_once(',')?;
        let (date, clock) = stamp.trim().split_once(' ')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>());
        let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
        let mut c = clock.split(':').map(|x| x.parse::<i64>());
        let (h, min, s) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
        let seconds = days_from_civil(y, m, day) * 86_400 + h * 3_600 + min * 60 + s;
        times.push(u64::try_from(seconds).ok()? * 1_000_000_000);
        values.push(value.trim().parse().ok()?);
    }
    (times.len() > WARMUP).then_some((times, values))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The next point of the looped series.
struct Cursor<'a> {
    series: &'a Series,
    at: usize,
    offset: u64,
}

impl Cursor<'_> {
    #[inline]
    fn next_point(&mut self) -> (u64, f64) {
        if self.at == self.series.times.len() {
            self.at = 0;
            self.offset += self.series.lap_ns;
        }
        let point = (self.series.times[self.at] + self.offset, self.series.values[self.at]);
        self.at += 1;
        point
    }
}

/// One detector under test: how to make it, feed it one point, and serialise it.
struct Case<D, R> {
    name: &'static str,
    make: fn() -> D,
    step: fn(&mut D, u64, f64) -> R,
    json: Option<fn(&D) -> serde_json::Result<String>>,
    /// Independent detectors whose memory is averaged (fewer for the slow leak detector,
    /// whose memory is fixed by its window once warmed up).
    series_for_memory: usize,
}

/// A row of the memory table.
struct Memory {
    name: &'static str,
    size_of: usize,
    heap_new: f64,
    heap_warm: f64,
    json: Option<usize>,
    allocs_per_point: f64,
    series: usize,
}

fn update<D: Detector>(d: &mut D, time_ns: u64, value: f64) -> mission_ml::Score {
    d.update(time_ns, value)
}

fn measure_memory<D, R>(case: &Case<D, R>, series: &Series) -> Memory {
    let n = case.series_for_memory;
    let mut detectors: Vec<D> = Vec::with_capacity(n);
    let before = LIVE.load(Relaxed);
    detectors.extend((0..n).map(|_| (case.make)()));
    let after_new = LIVE.load(Relaxed);
    for d in &mut detectors {
        let mut cursor = series.cursor();
        for _ in 0..WARMUP {
            let (t, v) = cursor.next_point();
            black_box((case.step)(d, t, v));
        }
    }
    let after_warm = LIVE.load(Relaxed);
    // Allocations per point in steady state, on one warmed detector.
    let mut cursor = series.cursor();
    for _ in 0..WARMUP {
        cursor.next_point();
    }
    let points = if n < 100 { 200 } else { 10_000 };
    let allocs = ALLOCS.load(Relaxed);
    for _ in 0..points {
        let (t, v) = cursor.next_point();
        black_box((case.step)(&mut detectors[0], t, v));
    }
    let allocs_per_point = (ALLOCS.load(Relaxed) - allocs) as f64 / points as f64;
    Memory {
        name: case.name,
        size_of: std::mem::size_of::<D>(),
        heap_new: (after_new - before) as f64 / n as f64,
        heap_warm: (after_warm - before) as f64 / n as f64,
        json: case.json.and_then(|to_json| to_json(&detectors[0]).ok()).map(|s| s.len()),
        series: n,
        allocs_per_point,
    }
}

fn bench_case<D, R>(group: &mut BenchmarkGroup<'_, WallTime>, case: &Case<D, R>, series: &Series) {
    let mut d = (case.make)();
    let mut cursor = series.cursor();
    for _ in 0..WARMUP {
        let (t, v) = cursor.next_point();
        black_box((case.step)(&mut d, t, v));
    }
    group.bench_function(case.name, |b| {
        b.iter(|| {
            let (t, v) = cursor.next_point();
            (case.step)(&mut d, t, v)
        })
    });
}

/// Runs one case (memory, then time) and records its memory row.
macro_rules! case {
    ($group:expr, $rows:expr, $series:expr, $case:expr) => {{
        let case = $case;
        $rows.push(measure_memory(&case, $series));
        bench_case(&mut $group, &case, $series);
    }};
}

fn detectors(c: &mut Criterion) {
    let series = Series::load();
    println!("detectors: data = {}", series.source);
    let mut rows = Vec::new();

    let mut group = c.benchmark_group("detectors");
    group.throughput(Throughput::Elements(1));
    {
        let mut cursor = series.cursor();
        group.bench_function("baseline/feed", |b| b.iter(|| black_box(cursor.next_point())));
    }
    case!(
        group,
        rows,
        &series,
        Case {
            name: "ew_stats/push",
            make: || EwStats::new(0.01),
            step: |d: &mut EwStats, _t, v| d.push(v),
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "robust_baseline/update",
            make: RobustBaseline::default,
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "spot/update",
            make: || Spot::new(1e-4, 200),
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "cusum/update",
            make: Cusum::default,
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "cusum_on_residuals/update",
            make: || Cusum::on_residuals(0.01, 1.0, 12.0),
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "seasonal_baseline_288/update",
            make: || SeasonalBaseline::new(DAY, 0.05, 6.0),
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "sensitive/update",
            make: Sensitive::default,
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "ensemble/update",
            make: Ensemble::default,
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "default_detector/update",
            make: mission_ml::default_detector,
            step: |d: &mut Box<dyn Detector + Send>, t, v| d.update(t, v),
            json: None,
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "holt_winters_288/observe",
            make: || HoltWinters::new(DAY),
            step: |d: &mut HoltWinters, _t, v| d.observe(v),
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    case!(
        group,
        rows,
        &series,
        Case {
            name: "holt_winters_288/update",
            make: || HoltWinters::new(DAY),
            step: update,
            json: Some(serde_json::to_string),
            series_for_memory: 1000,
        }
    );
    group.finish();

    // The leak detector is O(window^1.5) per point (O(window²) before 2026-12-07): fewer
    // samples, and fewer series for memory.
    let mut group = c.benchmark_group("detectors");
    group.throughput(Throughput::Elements(1)).sample_size(10);
    for window in [120, 720] {
        let make: fn() -> LeakDetector = if window == 120 {
            || LeakDetector::new(f64::INFINITY, 120)
        } else {
            || LeakDetector::new(f64::INFINITY, 720)
        };
        case!(
            group,
            rows,
            &series,
            Case {
                name: if window == 120 { "leak_120/update" } else { "leak_720/update" },
                make,
                step: |d: &mut LeakDetector, t, v| d.update(t, v),
                json: Some(serde_json::to_string),
                series_for_memory: 4,
            }
        );
    }
    group.finish();

    println!("\ndetectors: memory per tracked series, after {WARMUP} points ({})", series.source);
    println!(
        "| detector | size_of (B) | heap new (B) | heap warmed (B) | total warmed (B) | serde_json (B) | allocs/point | N |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.3} | {} |",
            r.name,
            r.size_of,
            r.heap_new,
            r.heap_warm,
            r.size_of as f64 + r.heap_warm,
            r.json.map_or_else(|| "n/a".to_owned(), |j| j.to_string()),
            r.allocs_per_point,
            r.series,
        );
    }
}

criterion_group!(benches, detectors);
criterion_main!(benches);
