//! The `protocol` command end to end on a small corpus written here: NAB's layout with two
//! categories, Merlion's layout with one file; every section is printed and NAB-format
//! results are written; bad arguments exit 2 and unreadable data 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("protocol").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic noise in -0.5..0.5.
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 40) as f64 / (1u64 << 24) as f64 - 0.5
}

/// `n` 5-minute points from 2020-01-01 with a spike at `spike`, as NAB's CSV.
fn nab_csv(n: u64, spike: u64, seed: u64) -> String {
    let mut out = String::from("timestamp,value\n");
    for i in 0..n {
        let minutes = i * 5;
        let (day, hour, minute) = (1 + minutes / 1440, minutes / 60 % 24, minutes % 60);
        let v = 10.0 + noise(i + seed) + if i == spike { 9.0 } else { 0.0 };
        writeln!(out, "2020-01-{day:02} {hour:02}:{minute:02}:00,{v}").unwrap();
    }
    out
}

fn nab_time(i: u64) -> String {
    let minutes = i * 5;
    format!(
        "2020-01-{:02} {:02}:{:02}:00.000000",
        1 + minutes / 1440,
        minutes / 60 % 24,
        minutes % 60
    )
}

fn write_corpora(root: &Path) -> (PathBuf, PathBuf) {
    let nab = root.join("nab");
    let mut labels = serde_json::Map::new();
    for (k, cat) in ["alpha", "beta"].iter().enumerate() {
        std::fs::create_dir_all(nab.join("data").join(cat)).unwrap();
        for j in 0..2u64 {
            let spike = 2_000 + 300 * j;
            let name = format!("{cat}/s{j}.csv");
            std::fs::write(nab.join("data").join(&name), nab_csv(3_000, spike, 97 * k as u64 + j))
                .unwrap();
            labels.insert(name, serde_json::json!([[nab_time(spike - 20), nab_time(spike + 20)]]));
        }
    }
    std::fs::create_dir_all(nab.join("labels")).unwrap();
    std::fs::write(
        nab.join("labels/combined_windows.json"),
        serde_json::Value::Object(labels).to_string(),
    )
    .unwrap();

    let merlion = root.join("merlion");
    std::fs::create_dir_all(&merlion).unwrap();
    let mut csv = String::from("timestamp,horizontal,anomaly\n");
    for i in 0..2_000u64 {
        let spike = (1_500..1_510).contains(&i);
        let v = noise(i) + if spike { 8.0 } else { 0.0 };
        writeln!(csv, "{},{v},{}", i * 300, if spike { "1.0" } else { "0.0" }).unwrap();
    }
    std::fs::write(merlion.join("horizontal_spike_anomaly.csv"), csv).unwrap();
    (nab, merlion)
}

#[test]
fn the_protocol_prints_every_section_and_writes_nab_results() {
    let root = scratch("run");
    let (nab, merlion) = write_corpora(&root);
    let out = root.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_protocol"))
        .args(["--nab", nab.to_str().unwrap(), "--merlion", merlion.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    for section in [
        "1. in-sample NAB",
        "2. leave one category out",
        "3. NAB's standard threshold, unchanged",
        "summary (default detector",
    ] {
        assert!(text.contains(section), "no `{section}` in:\n{text}");
    }
    // Both categories were held out in turn, and every corpus was scored at the fixed threshold.
    assert!(text.lines().any(|l| l.starts_with("alpha ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("beta ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("merlion ") && l.contains("default")), "{text}");
    // NAB-format results per corpus and detector, and the summary.
    let csv = std::fs::read_to_string(out.join("nab/default/alpha/default_s0.csv")).unwrap();
    assert!(csv.starts_with("timestamp,value,anomaly_score,label\n"), "{csv}");
    assert_eq!(csv.lines().count(), 3_001);
    assert!(out.join("merlion/default/spike/default_horizontal_spike_anomaly.csv").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["loco"][0]["folds"].as_array().is_some_and(|f| f.len() == 2), "{summary}");
    assert!(summary["fixed/merlion/default"]["threshold"].is_number(), "{summary}");
}

#[test]
fn bad_arguments_exit_2_and_unreadable_data_1() {
    let protocol = env!("CARGO_BIN_EXE_protocol");
    let status = |args: &[&str]| Command::new(protocol).args(args).output().unwrap().status.code();
    assert_eq!(status(&["--bogus"]), Some(2));
    assert_eq!(status(&["--nab"]), Some(2));
    assert_eq!(status(&["--nab", "/nonexistent/nab", "--no-write"]), Some(1));
    assert_eq!(status(&["--help"]), Some(0));
}
