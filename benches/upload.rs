//! Upload throughput to the loopback S3 server (issue 19): how fast `mission_store::upload`
//! puts a store's finalized files into a bucket, beside what a hand-written copier does with
//! the same client, and (if a Python with pyarrow is given) pyarrow's `S3FileSystem`.
//!
//! Two sets of files, both under `<set>/events/…` in the store's layout:
//! - `small`: a real store written by the sink (`ParquetSink`, the simulated agent workload of
//!   `mission-examples`, write-ahead log off, `row_group_rows` 4,096 and `max_file_bytes`
//!   256 KiB so the files are a few hundred KB each), until it holds `MISSION_BENCH_SMALL_FILES`
//!   files (default 300). Each is one `PUT`.
//! - `large`: `MISSION_BENCH_LARGE_FILES` (default 8) synthetic Parquet files of 64 MiB each
//!   (one binary column of pseudo-random bytes, uncompressed, so the bytes are as
//!   incompressible as zstd output): above the uploader's default multipart threshold (16 MiB),
//!   so each goes up in 8 MiB parts. Synthetic because the sink writes real data far slower
//!   than the upload runs (the bytes sent are the same kind: opaque file contents).
//!
//! Three ways, each on the same files, into a fresh prefix of the same bucket:
//! - `uploader`: `upload_pending` on default settings (it deletes each local file once the
//!   bucket acknowledged it, so it runs on a hard-linked copy of the set, made untimed).
//! - `put loop`: read each whole file and `put` it with the same `object_store` client, one
//!   after the other (no multipart): what a hand-written copier does.
//! - `pyarrow`: `benches/upload_pyarrow.py` with `$MISSION_BENCH_PYTHON` (a Python with
//!   pyarrow): `pyarrow.fs.copy_files` on its defaults (threads on), timed inside the script
//!   around the copy only (interpreter start and imports excluded). Not run if the variable is
//!   unset.
//!
//! After every upload the prefix is listed: the objects (keys and sizes) must be exactly the
//! local files, or the bench fails. Every way runs `MISSION_BENCH_RUNS` times (default 3),
//! interleaved (run 1 of each way, then run 2, …); the table gives the median and the range.
//! The files are read from the page cache (written or read just before) on every side.
//!
//! The server is `mission-s3-server` (tests/s3-server, s3s-fs), built in release:
//! `cargo build --release -p mission-s3-server`; the bench finds it beside its own target
//! directory (`<target>/release/`) or at `$MISSION_S3_SERVER`.
//!
//! Run: `cargo bench -p mission-benches --features upload --bench upload` (prints a Markdown
//! table for `benches/RESULTS.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BinaryArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use futures_util::TryStreamExt as _;
use mission_core::{Backpressure, Pipeline};
use mission_examples::{Workload, simulate};
use mission_store::layout::TENANT_NAME_FILE;
use mission_store::upload::{UploadConfig, upload_pending};
use mission_store::{ParquetSink, StoreConfig};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

const BUCKET: &str = "bench";
// The tests' harness of the loopback S3 server (its binary: `$MISSION_S3_SERVER`, else beside
// this bench's target directory; build it with `cargo build --release -p mission-s3-server`).
#[allow(dead_code)]
#[path = "../mission-store/tests/integration/s3_server.rs"]
mod s3_server;
use s3_server::{ACCESS_KEY, S3Server, SECRET_KEY};

const LARGE_FILE_BYTES: usize = 64 << 20;

fn env_number(name: &str, range: std::ops::RangeInclusive<usize>, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => match v.parse() {
            Ok(n) if range.contains(&n) => n,
            _ => panic!("{name}={v:?} is not a number in {range:?}"),
        },
        Err(_) => default,
    }
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A set's files, as the uploader sees them (complete Parquet files and tenant name files):
/// key relative to the set's root (`events/…`) → size. Anything else (a temporary file of a
/// writer still running) is left out.
fn local_files(root: &Path) -> BTreeMap<String, u64> {
    let mut files = Vec::new();
    walk(&root.join("events"), &mut files);
    files
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            name == TENANT_NAME_FILE || (name.ends_with(".parquet") && !name.starts_with('.'))
        })
        .filter_map(|p| {
            // A writer still running renames and deletes files meanwhile.
            let bytes = std::fs::metadata(&p).ok()?.len();
            let rel = p.strip_prefix(root).expect("under root");
            let key: Vec<&str> =
                rel.components().map(|c| c.as_os_str().to_str().expect("utf-8")).collect();
            Some((key.join("/"), bytes))
        })
        .collect()
}

/// Parquet files among `files`.
fn parquet(files: &BTreeMap<String, u64>) -> impl Iterator<Item = u64> + '_ {
    files.iter().filter(|(k, _)| k.ends_with(".parquet")).map(|(_, b)| *b)
}

/// A real store written by the sink, until it holds `files` Parquet files.
fn small_store(root: &Path, files: usize) {
    let config = StoreConfig::at(root)
        .with_wal(false)
        .with_row_group_rows(4096)
        .with_max_file_bytes(256 << 10);
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(ParquetSink::new(config).expect("sink"))
        .start()
        .expect("pipeline");
    let recorder = pipeline.recorder();
    let mut seed = 0;
    loop {
        seed += 1;
        simulate(&recorder, &Workload { threads: 2_000, seed, ..Workload::default() });
        let done =
            if root.join("events").is_dir() { parquet(&local_files(root)).count() } else { 0 };
        if done >= files {
            break;
        }
        assert!(seed < 10_000, "the store does not grow");
    }
    drop(recorder);
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.dropped, 0);
}

/// `files` synthetic Parquet files of `LARGE_FILE_BYTES` (pseudo-random, uncompressed).
fn large_set(root: &Path, files: usize) {
    let dir = root.join("events/tenant=bench/date=2026-12-07/hour=05");
    std::fs::create_dir_all(&dir).expect("dir");
    let schema = Arc::new(Schema::new(vec![Field::new("payload", DataType::Binary, false)]));
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let value_bytes = 64 << 10;
    for i in 0..files {
        let path = dir.join(format!("part-{:08}-synthetic.parquet", i + 1));
        let file = std::fs::File::create(&path).expect("create");
        let mut writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(props.clone())).expect("writer");
        for _ in 0..LARGE_FILE_BYTES / value_bytes / 64 {
            let values: Vec<Vec<u8>> = (0..64)
                .map(|_| {
                    let mut v = Vec::with_capacity(value_bytes);
                    while v.len() < value_bytes {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        v.extend_from_slice(&state.to_le_bytes());
                    }
                    v
                })
                .collect();
            let array: ArrayRef =
                Arc::new(BinaryArray::from_iter_values(values.iter().map(Vec::as_slice)));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).expect("batch");
            writer.write(&batch).expect("write");
        }
        writer.close().expect("close");
    }
}

/// A hard-linked copy of `from` at `to` (the uploader deletes what it sent).
fn link_copy(from: &Path, to: &Path) {
    let mut files = Vec::new();
    walk(from, &mut files);
    for f in files {
        let target = to.join(f.strip_prefix(from).expect("under"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::hard_link(&f, &target).expect("hard link");
    }
}

/// The objects under `prefix`: key relative to it → size (zero-byte directory markers, which
/// some clients create, are left out; no local file is empty).
fn listing(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> BTreeMap<String, u64> {
    let path = ObjectPath::from(prefix);
    let objects: Vec<_> =
        runtime.block_on(store.list(Some(&path)).try_collect()).expect("list the prefix");
    objects
        .into_iter()
        .filter(|o| o.size > 0)
        .map(|o| {
            let key = o.location.as_ref().strip_prefix(prefix).expect("under prefix");
            (key.trim_start_matches('/').to_owned(), o.size)
        })
        .collect()
}

/// The way being measured.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Uploader,
    PutLoop,
    Pyarrow,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Self::Uploader => "uploader (`upload_pending`, defaults)",
            Self::PutLoop => "`object_store` `put` loop, whole files",
            Self::Pyarrow => "pyarrow `fs.copy_files` (threads on)",
        }
    }
}

struct Context {
    server: S3Server,
    runtime: tokio::runtime::Runtime,
    /// A client of the bucket's root, for listings.
    bucket: Arc<dyn ObjectStore>,
    python: Option<PathBuf>,
    script: PathBuf,
    base: PathBuf,
}

/// Uploads `set` (at `dir`, files `files`) one `way` into `prefix`, checks the listing, and
/// returns the time of the upload.
fn measure(
    cx: &Context,
    way: Way,
    dir: &Path,
    files: &BTreeMap<String, u64>,
    prefix: &str,
) -> Duration {
    let parquet_files = parquet(files).count() as u64;
    let parquet_bytes: u64 = parquet(files).sum();
    assert!(parquet_files > 0 && files.values().all(|b| *b > 0), "nothing to upload");
    let elapsed = match way {
        Way::Uploader => {
            let work = cx.base.join(format!("work-{prefix}"));
            link_copy(dir, &work);
            let config = UploadConfig::new(&work, cx.server.remote_root(prefix));
            let started = Instant::now();
            let stats = upload_pending(&config).expect("upload_pending");
            let elapsed = started.elapsed();
            assert_eq!(stats.last_error, None, "{stats:?}");
            assert_eq!(stats.files_uploaded, parquet_files, "{stats:?}");
            assert_eq!(stats.bytes_uploaded, parquet_bytes, "{stats:?}");
            assert_eq!(stats.files_pending, 0, "{stats:?}");
            let _ = std::fs::remove_dir_all(&work);
            elapsed
        }
        Way::PutLoop => {
            let store = cx.server.remote_root(prefix).object_store().expect("client");
            let jobs: Vec<(PathBuf, ObjectPath)> = files
                .keys()
                .map(|key| (dir.join(key), ObjectPath::from(format!("{prefix}/{key}"))))
                .collect();
            let started = Instant::now();
            // One task on the runtime, awaiting each `put` in turn (an async copier's loop).
            cx.runtime
                .block_on(cx.runtime.spawn(async move {
                    for (path, location) in jobs {
                        let bytes = std::fs::read(&path).expect("read");
                        store.put(&location, PutPayload::from(bytes)).await.expect("put");
                    }
                }))
                .expect("the copy task");
            started.elapsed()
        }
        Way::Pyarrow => {
            let python = cx.python.as_ref().expect("a python");
            let out = Command::new(python)
                .arg(&cx.script)
                .args([&cx.server.endpoint, ACCESS_KEY, SECRET_KEY])
                .arg(format!("{BUCKET}/{prefix}/events"))
                .arg(dir.join("events"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run the pyarrow script");
            assert!(out.status.success(), "the pyarrow script failed: {:?}", out.status);
            let seconds: f64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("the script prints its seconds");
            Duration::from_secs_f64(seconds)
        }
    };
    let listed = listing(&cx.runtime, &cx.bucket, prefix);
    assert_eq!(listed.len(), files.len(), "{}: objects listed under {prefix}", way.name());
    assert_eq!(
        listed.values().sum::<u64>(),
        files.values().sum::<u64>(),
        "{}: bytes listed under {prefix}",
        way.name()
    );
    assert_eq!(&listed, files, "{}: keys and sizes under {prefix}", way.name());
    // Untimed: the server's copy goes, so the disk does not fill over the runs.
    let _ = std::fs::remove_dir_all(cx.server.root.join(BUCKET).join(prefix));
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let runs = env_number("MISSION_BENCH_RUNS", 1..=20, 3);
    let small_files = env_number("MISSION_BENCH_SMALL_FILES", 10..=10_000, 300);
    let large_files = env_number("MISSION_BENCH_LARGE_FILES", 1..=64, 8);
    let base = std::env::temp_dir().join(format!("mission-bench-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let server = S3Server::start_on(&base.join("s3"), BUCKET);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bucket = server.remote_root("").object_store().expect("client");
    let python = std::env::var_os("MISSION_BENCH_PYTHON").map(PathBuf::from);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("upload_pyarrow.py");
    let cx = Context { server, runtime, bucket, python, script, base: base.clone() };

    let small = base.join("small");
    let started = Instant::now();
    small_store(&small, small_files);
    let small_keys = local_files(&small);
    let small_setup = started.elapsed();
    let large = base.join("large");
    let started = Instant::now();
    large_set(&large, large_files);
    let large_keys = local_files(&large);
    let large_setup = started.elapsed();
    for (name, set, setup) in
        [("small", &small_keys, small_setup), ("large", &large_keys, large_setup)]
    {
        let sizes: Vec<u64> = parquet(set).collect();
        eprintln!(
            "setup {name}: {} Parquet files ({} tenant name files), {:.1} MB, {:.0}–{:.0} KB each, {:.1} s",
            sizes.len(),
            set.len() - sizes.len(),
            sizes.iter().sum::<u64>() as f64 / 1e6,
            *sizes.iter().min().expect("files") as f64 / 1e3,
            *sizes.iter().max().expect("files") as f64 / 1e3,
            setup.as_secs_f64()
        );
    }

    let mut ways = vec![Way::Uploader, Way::PutLoop];
    if cx.python.is_some() {
        ways.push(Way::Pyarrow);
    } else {
        eprintln!("pyarrow: not run (MISSION_BENCH_PYTHON unset)");
    }
    let sets = [("small", &small, &small_keys), ("large", &large, &large_keys)];
    // (set, way) → seconds of each run.
    let mut times: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for run in 1..=runs {
        for (s, (name, dir, files)) in sets.iter().enumerate() {
            for (w, way) in ways.iter().enumerate() {
                let prefix = format!("{name}-{w}-{run}");
                let t = measure(&cx, *way, dir, files, &prefix).as_secs_f64();
                let bytes = files.values().sum::<u64>() as f64;
                eprintln!(
                    "run {run} {name} {}: {t:.3} s, {:.1} MB/s, {:.0} files/s",
                    way.name(),
                    bytes / t / 1e6,
                    files.len() as f64 / t
                );
                times.entry((s, w)).or_default().push(t);
            }
        }
    }

    println!(
        "| files | way | median time | files/s | MB/s (median) | MB/s range over {runs} runs |"
    );
    println!("|---|---|---|---|---|---|");
    for (s, (name, _, files)) in sets.iter().enumerate() {
        let n = files.len() as f64;
        let bytes = files.values().sum::<u64>() as f64;
        for (w, way) in ways.iter().enumerate() {
            let t = &times[&(s, w)];
            let m = median(t.clone());
            let fastest = t.iter().copied().fold(f64::INFINITY, f64::min);
            let slowest = t.iter().copied().fold(0.0, f64::max);
            println!(
                "| {name}: {} files, {:.1} MB | {} | {m:.2} s | {:.0} | {:.1} | {:.1}–{:.1} |",
                files.len(),
                bytes / 1e6,
                way.name(),
                n / m,
                bytes / m / 1e6,
                bytes / slowest / 1e6,
                bytes / fastest / 1e6,
            );
        }
    }
    drop(cx);
    let _ = std::fs::remove_dir_all(&base);
}
