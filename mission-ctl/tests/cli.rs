//! `mission-ctl` run as a process: on a store of the simulated workload (values checked
//! against what was recorded), and on a small hand-made store at fixed times whose tables are
//! compared with the snapshots in `tests/snapshots/` (`UPDATE_SNAPSHOTS=1` rewrites them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use mission_core::{Backpressure, Pipeline, Timestamp};
use mission_examples::{Summary, Workload, simulate};
use mission_store::{GroupBy, ParquetSink, Store, StoreConfig};
use serde_json::Value;

/// A store of the simulated workload, written once for all tests.
fn fixture() -> &'static (PathBuf, Summary) {
    static STORE: OnceLock<(PathBuf, Summary)> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("mission-ctl-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
            .start()
            .expect("start");
        let summary =
            simulate(&pipeline.recorder(), &Workload { threads: 120, ..Workload::default() });
        pipeline.shutdown();
        (root, summary)
    })
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn root() -> &'static str {
    fixture().0.to_str().expect("utf-8 path")
}

#[test]
fn threads_json_matches_the_store() {
    let out = json(&ctl(&["threads", root(), "--limit", "1000", "--json"]));
    let store = Store::open(root()).expect("open");
    let expected = store.threads(store.query()).expect("threads");
    let rows = out.as_array().expect("array");
    assert_eq!(rows.len(), 120);
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows[0]["thread_id"], expected[0].thread_id.as_str());
    assert_eq!(rows[0]["spans"], expected[0].spans);
    let errors: u64 = rows.iter().map(|r| r["errors"].as_u64().expect("errors")).sum();
    assert_eq!(errors, fixture().1.errors);
    let table = String::from_utf8(ctl(&["threads", root(), "--agent", "support-bot"]).stdout)
        .expect("utf-8");
    let mut lines = table.lines();
    assert!(lines.next().expect("header").starts_with("thread"), "{table}");
    assert!(lines.next().expect("rule").starts_with("----"));
    assert!(lines.all(|l| l.contains("support-bot")), "{table}");
}

#[test]
fn thread_prints_the_span_tree() {
    let store = Store::open(root()).expect("open");
    let first = store.threads(store.query()).expect("threads").remove(0);
    let tree = ctl(&["thread", root(), &first.thread_id]);
    assert!(tree.status.success());
    let text = String::from_utf8(tree.stdout).expect("utf-8");
    assert!(text.starts_with(&format!("thread {}:", first.thread_id)), "{text}");
    assert!(text.contains("agent_step handle_request +0.0ms"), "{text}");
    assert!(text.contains("llm_call chat"), "{text}");
    let view = json(&ctl(&["thread", root(), &first.thread_id, "--json"]));
    assert_eq!(view["roots"][0]["name"], "handle_request");
    let missing = ctl(&["thread", root(), "0123456789abcdef0123456789abcdef"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn stats_and_query_agree_with_what_was_recorded() {
    let (_, summary) = fixture();
    let stats =
        json(&ctl(&["stats", root(), "--since", "2h", "--group-by", "operation", "--json"]));
    let spans: u64 =
        stats.as_array().expect("array").iter().map(|s| s["count"].as_u64().expect("count")).sum();
    assert_eq!(
        spans,
        summary.agent_steps + summary.llm_calls + summary.tool_calls + summary.retrievals
    );
    let csv = String::from_utf8(
        ctl(&[
            "query",
            root(),
            "--kind",
            "llm_call",
            "--limit",
            "100000",
            "--format",
            "csv",
            "--columns",
            "name,gen_ai_request_model",
        ])
        .stdout,
    )
    .expect("utf-8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("name,gen_ai_request_model,tenant"));
    assert_eq!(lines.count() as u64, summary.llm_calls);
    let errors = json(&ctl(&[
        "query",
        root(),
        "--status",
        "error",
        "--format",
        "json",
        "--limit",
        "100000",
    ]));
    assert_eq!(errors.as_array().expect("array").len() as u64, summary.errors);
    let bad = ctl(&["query", root(), "--columns", "no_such_column"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no_such_column"));
    let bad_duration = ctl(&["stats", root(), "--since", "soon"]);
    assert_eq!(bad_duration.status.code(), Some(2));
}

#[test]
fn doctor_reports_problems_with_an_exit_code() {
    let healthy = json(&ctl(&["doctor", root(), "--json"]));
    assert_eq!(healthy["events"].as_u64(), Some(fixture().1.events));
    // A copy of the store with a corrupt file and a leftover of a killed writer.
    let broken = std::env::temp_dir().join(format!("mission-ctl-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&broken);
    copy_dir(&fixture().0, &broken);
    let some_file = Store::open(&broken).expect("open").files()[0].path.clone();
    let dir = some_file.parent().expect("dir");
    std::fs::write(dir.join("part-bad.parquet"), b"not parquet").expect("write");
    std::fs::write(dir.join(".part-x.parquet.tmp"), b"half").expect("write");
    let out = ctl(&["doctor", broken.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("unreadable") && text.contains("part-bad.parquet"), "{text}");
    assert!(text.contains("leftover") && text.contains("problems found"), "{text}");
    let _ = std::fs::remove_dir_all(&broken);
    assert_eq!(ctl(&["doctor", "/definitely/not/a/store"]).status.code(), Some(3));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cost, report and tail on the simulated workload: exact values.

/// The simulated fixture's window: `simulate` places every thread in the last 70 minutes.
const SINCE: &str = "2h";

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn cost_json_is_the_store_cost_report_and_adds_up_to_what_was_recorded() {
    let (_, summary) = fixture();
    let out = ctl(&["cost", root(), "--since", SINCE, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no progress bar when stderr is not a terminal");
    let store = Store::open(root()).expect("open");
    let now = Timestamp::now().0;
    let window = store.query().time_range(Timestamp(now - 2 * 3_600_000_000_000), Timestamp(now));
    let expected = store.cost_report(window, &[GroupBy::Model]).expect("cost report");
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8").trim_end(),
        serde_json::to_string(&expected).expect("json")
    );
    let rows = expected;
    assert_eq!(rows.len(), 3, "three models");
    assert_eq!(rows.iter().map(|r| r.llm_calls).sum::<u64>(), summary.llm_calls);
    assert_eq!(rows.iter().map(|r| r.input_tokens).sum::<i64>() as u64, summary.input_tokens);
    assert_eq!(rows.iter().map(|r| r.output_tokens).sum::<i64>() as u64, summary.output_tokens);
    assert!(approx(rows.iter().map(|r| r.cost_usd).sum(), summary.cost_usd));

    // By user: every thread has one user and at least one LLM call.
    let by_user = json(&ctl(&["cost", root(), "--since", SINCE, "--group-by", "user", "--json"]));
    let threads: u64 =
        by_user.as_array().expect("array").iter().map(|r| r["threads"].as_u64().expect("n")).sum();
    assert_eq!(threads, 120);
    let table = ctl(&["cost", root(), "--since", SINCE, "--group-by", "tenant,agent"]);
    let text = String::from_utf8(table.stdout).expect("utf-8");
    let total = text.lines().last().expect("total row");
    assert!(total.starts_with("total "), "{text}");
    assert!(total.contains(&format!(" {} ", summary.llm_calls)), "{total}");
    assert!(total.contains(" 120 "), "threads add up by tenant and agent: {total}");

    // Only one tenant.
    let acme = json(&ctl(&["cost", root(), "--since", SINCE, "--tenant", "tenant-0", "--json"]));
    let store_rows = store
        .cost_report(store.query().tenant("tenant-0"), &[GroupBy::Model])
        .expect("cost report");
    assert_eq!(acme.as_array().expect("array").len(), store_rows.len());
    assert_eq!(acme[0]["llm_calls"], store_rows[0].llm_calls);
}

#[test]
fn report_json_volumes_are_what_was_recorded() {
    let (_, s) = fixture();
    let r = json(&ctl(&["report", root(), "--since", SINCE, "--json"]));
    let v = &r["volumes"];
    let n = |key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"));
    assert_eq!(n("events"), s.events);
    assert_eq!(n("threads"), 120);
    assert_eq!(n("spans"), s.agent_steps + s.llm_calls + s.tool_calls + s.retrievals);
    assert_eq!(n("agent_steps"), s.agent_steps);
    assert_eq!(n("llm_calls"), s.llm_calls);
    assert_eq!(n("tool_calls"), s.tool_calls);
    assert_eq!(n("retrievals"), s.retrievals);
    assert_eq!(n("errors"), s.errors);
    assert_eq!(n("logs"), s.logs);
    assert_eq!(v["logs_by_level"]["warn"].as_u64(), Some(s.logs), "simulated logs are warnings");
    assert_eq!(n("permissions"), s.permissions);
    assert_eq!(n("denials"), s.denials);
    assert_eq!(n("input_tokens"), s.input_tokens);
    assert_eq!(n("output_tokens"), s.output_tokens);
    assert!(approx(v["cost_usd"].as_f64().expect("cost"), s.cost_usd));
    let spans = s.agent_steps + s.llm_calls + s.tool_calls + s.retrievals;
    assert!(approx(v["error_rate"].as_f64().expect("rate"), s.errors as f64 / spans as f64));
    let errors: u64 = r["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| o["errors"].as_u64().expect("errors"))
        .sum();
    assert_eq!(errors, s.errors);
    let slowest = r["slowest_threads"].as_array().expect("threads");
    assert_eq!(slowest.len(), 10);
    let durations: Vec<u64> =
        slowest.iter().map(|t| t["duration_ns"].as_u64().expect("duration")).collect();
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "{durations:?}");
    let store = Store::open(root()).expect("open");
    let longest =
        store.threads(store.query()).expect("threads").iter().map(|t| t.duration_ns).max();
    assert_eq!(Some(durations[0] as i64), longest);
    let top = r["top_errors"].as_array().expect("errors");
    assert!(top.iter().any(|e| e["message"] == "upstream returned 503"), "{top:?}");
    // The same command as Markdown (the default).
    let md = String::from_utf8(ctl(&["report", root(), "--since", SINCE]).stdout).expect("utf-8");
    assert!(md.starts_with("# Mission Control report\n"), "{md}");
    assert!(md.contains("| LLM calls "), "{md}");
    // The sixth: recommendations (the simulated calls report no cached tokens: prompt cache).
    assert!(md.contains("## Recommendations\n"), "{md}");
    assert_eq!(assert_tables_are_well_formed(&md), 6, "{md}");
}

/// Every Markdown table has a header, an alignment row, and the same number of cells per row;
/// returns how many tables there are.
fn assert_tables_are_well_formed(md: &str) -> usize {
    let cells = |line: &str| line.replace("\\|", "").matches('|').count();
    let mut tables = 0;
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        tables += 1;
        let width = cells(lines[i]);
        let rule = lines.get(i + 1).expect("alignment row");
        assert!(rule.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')), "{rule}");
        while i < lines.len() && lines[i].starts_with('|') {
            assert!(lines[i].ends_with('|'), "{}", lines[i]);
            assert_eq!(cells(lines[i]), width, "{}", lines[i]);
            i += 1;
        }
        assert!(lines.get(i).is_none_or(|l| l.is_empty()), "a blank line after a table");
    }
    tables
}

fn tail_json(args: &[&str]) -> Vec<Value> {
    let out = ctl(args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn tail_prints_the_newest_events_oldest_first_with_filters() {
    let store = Store::open(root()).expect("open");
    let times = |q: mission_store::Query<'_>| -> Vec<i64> {
        let mut times: Vec<i64> = q
            .columns(&["time"])
            .batches()
            .expect("query")
            .iter()
            .flat_map(|b| {
                let t = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampNanosecondArray>()
                    .expect("time");
                t.values().to_vec()
            })
            .collect();
        times.sort_unstable();
        times
    };
    let all = times(store.query());
    let lines = tail_json(&["tail", root(), "--no-follow", "--lines", "25", "--json"]);
    assert_eq!(lines.len(), 25);
    let got: Vec<i64> = lines.iter().map(|l| l["time_ns"].as_i64().expect("time")).collect();
    assert_eq!(got, all[all.len() - 25..], "the 25 newest, oldest first");

    let lines = tail_json(&[
        "tail",
        root(),
        "--no-follow",
        "-n",
        "7",
        "--json",
        "--kind",
        "llm_call",
        "--agent",
        "support-bot",
    ]);
    let want = times(store.query().kind("llm_call").agent("support-bot"));
    let got: Vec<i64> = lines.iter().map(|l| l["time_ns"].as_i64().expect("time")).collect();
    assert_eq!(got, want[want.len() - 7..]);
    assert!(lines.iter().all(|l| l["kind"] == "llm_call" && l["agent"] == "support-bot"));
    assert!(lines.iter().all(|l| l["model"].is_string() && l["input_tokens"].is_u64()));

    let warnings =
        tail_json(&["tail", root(), "--no-follow", "-n", "1000", "--json", "--level", "warn"]);
    assert_eq!(warnings.len() as u64, fixture().1.logs);
    assert!(warnings.iter().all(|l| l["kind"] == "log" && l["level"] == "warn"));
    assert!(tail_json(&["tail", root(), "--no-follow", "--json", "--level", "error"]).is_empty());

    let thread = store.threads(store.query()).expect("threads").remove(3).thread_id;
    let events = store.query().thread(&thread).count().expect("count") as usize;
    // As printed (first and last four digits), or the digits it ends with.
    let short = format!("{}…{}", &thread[..4], &thread[28..]);
    for filter in [short.as_str(), &thread[26..], &thread] {
        let lines =
            tail_json(&["tail", root(), "--no-follow", "-n", "1000", "--json", "--thread", filter]);
        assert_eq!(lines.len(), events, "{filter}");
        assert!(lines.iter().all(|l| l["thread_id"] == thread.as_str()));
    }
    let tenant =
        tail_json(&["tail", root(), "--no-follow", "-n", "1000", "--json", "--tenant", "tenant-1"]);
    assert!(!tenant.is_empty() && tenant.iter().all(|l| l["tenant"] == "tenant-1"));
    assert!(tail_json(&["tail", root(), "--no-follow", "-n", "0", "--json"]).is_empty());

    let text =
        String::from_utf8(ctl(&["tail", root(), "--no-follow", "-n", "3"]).stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 3);
    assert!(!text.contains('\x1b'), "no colour into a pipe: {text}");
}

#[test]
fn tail_colours_errors_and_warnings_when_asked() {
    let text = String::from_utf8(
        ctl(&["tail", root(), "--no-follow", "-n", "100000", "--color", "always"]).stdout,
    )
    .expect("utf-8");
    let red: Vec<&str> = text.lines().filter(|l| l.starts_with("\x1b[31m")).collect();
    assert_eq!(red.len() as u64, fixture().1.errors, "one red line per failed span");
    assert!(red.iter().all(|l| l.ends_with("\x1b[0m") && l.contains(" error")));
    let yellow = text.lines().filter(|l| l.starts_with("\x1b[33m")).count() as u64;
    assert_eq!(yellow, fixture().1.logs + fixture().1.denials, "warnings and denials");
    let plain = Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
        .args(["tail", root(), "--no-follow", "-n", "100000", "--color", "auto"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains('\x1b'));
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    for args in [
        &["tail", root(), "--no-follow", "-n", "100000", "--json"][..],
        &["query", root(), "--limit", "100000", "--format", "csv"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("read");
        assert!(!first.is_empty());
        // The reader is dropped here, like `| head -1` exiting.
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Kills the child process when dropped, so a failing test leaves nothing running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tail_follows_events_as_their_files_land() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    use mission_core::{SpanKind, Symbol, ThreadContext};

    let root = std::env::temp_dir().join(format!("mission-ctl-follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args(["tail", root.to_str().expect("utf-8"), "--json", "--poll", "50ms"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{what} did not appear within 10 s"));
        serde_json::from_str(&line).expect("json")
    };

    let pipeline = Pipeline::builder()
        .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let record = |names: &[&str]| {
        for name in names {
            recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern(name), None).end();
            std::thread::sleep(Duration::from_millis(2));
        }
        pipeline.flush().expect("flush");
    };
    // The first events may land before or after `tail` first lists the store: either way it
    // prints them once (as existing events or as new ones).
    record(&["first", "second"]);
    assert_eq!(next("the first event")["name"], "first");
    assert_eq!(next("the second event")["name"], "second");
    // `tail` has now listed the store: these can only come from following it.
    record(&["third", "fourth", "fifth"]);
    for name in ["third", "fourth", "fifth"] {
        let event = next(name);
        assert_eq!(event["name"], name);
        assert_eq!(event["thread_id"], thread.thread_id.to_string());
        assert_eq!(event["kind"], "tool_call");
    }
    pipeline.shutdown();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "each event printed once");
    drop(child);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_arguments_are_errors_with_exit_code_2() {
    for args in [
        &["cost", root(), "--since", "soon"][..],
        &["cost", root(), "--group-by", "planet"],
        &["stats", root(), "--group-by", "user,planet"],
        &["report", root(), "--from", "2025-03-05", "--to", "2025-03-04"],
        &["report", root(), "--from", "yesterday"],
        &["report", root(), "--from", "2025-03-04T10:00:00"],
        &["stats", root(), "--since", "1h", "--from", "2025-03-04"],
        &["report", root(), "--format", "pdf"],
        &["thread", root(), "not-a-thread-id"],
        &["threads", root(), "--thread", "xyz"],
        &["tail", root(), "--level", "loud", "--no-follow"],
        &["tail", root(), "--thread", "nothex", "--no-follow"],
        &["tail", root(), "--poll", "0ms"],
        &["tail", root(), "--lines", "-3"],
    ] {
        let out = ctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    for command in ["tail", "cost", "report", "threads", "stats"] {
        assert_eq!(ctl(&[command, "/definitely/not/a/store"]).status.code(), Some(3), "{command}");
    }
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let help = String::from_utf8(ctl(&["--help"]).stdout).expect("utf-8");
    for needle in ["mission-ctl tail", "mission-ctl cost", "mission-ctl report", "Exit codes"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    for command in ["tail", "threads", "thread", "stats", "cost", "report", "doctor"] {
        let help = String::from_utf8(ctl(&[command, "--help"]).stdout).expect("utf-8");
        assert!(help.contains("--json"), "{command} has --json: {help}");
    }
    let help = String::from_utf8(ctl(&["query", "--help"]).stdout).expect("utf-8");
    assert!(help.contains("--format"), "{help}");
}

// ---------------------------------------------------------------------------------------------
// Tables of a hand-made store at fixed times, compared with snapshots.

/// 2025-03-04T10:00:00Z.
const T0: u64 = 1_741_082_400_000_000_000;
const MS: u64 = 1_000_000;
const THREAD_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const THREAD_B: &str = "5ce0a1b2c3d4e5f60718293a4b5c6d7e";
const THREAD_C: &str = "6d0000000000000000000000000000c3";
/// A window holding the whole hand-made store, so its tables do not depend on today's date.
const FROM: &str = "2025-03-04T10:00:00Z";
const TO: &str = "2025-03-04T11:00:00Z";

/// Events of one thread, built with fixed ids and times.
struct Thread {
    context: mission_core::ThreadContext,
    start: u64,
    next_span: u64,
    events: Vec<mission_core::Event>,
}

impl Thread {
    fn new(id: &str, tenant: &str, agent: &str, start: u64) -> Self {
        use mission_core::{Symbol, ThreadContext};
        let thread_id = id.parse().expect("thread id");
        let context = ThreadContext {
            tenant: Symbol::intern(tenant),
            agent: Symbol::intern(agent),
            thread_id,
        };
        Self { context, start, next_span: (start / MS) << 8, events: Vec::new() }
    }

    /// A span `at` ms after the thread's start, `ms` long; returns its id.
    fn span(
        &mut self,
        kind: mission_core::SpanKind,
        name: &str,
        parent: mission_core::SpanId,
        at: u64,
        ms: u64,
        edit: impl FnOnce(&mut mission_core::Event, &mut mission_core::SpanEnd),
    ) -> mission_core::SpanId {
        use mission_core::{EventBody, SpanEnd, SpanId, Status, Symbol};
        self.next_span += 1;
        let id = SpanId(self.next_span);
        let mut end =
            SpanEnd { kind, status: Status::Ok, duration_ns: ms * MS, ..SpanEnd::default() };
        let mut event =
            self.context.event(Symbol::intern(name), id, EventBody::Span(SpanEnd::default()));
        event.time = Timestamp(self.start + at * MS);
        event.parent_span_id = parent;
        edit(&mut event, &mut end);
        event.body = EventBody::Span(end);
        self.events.push(event);
        id
    }

    fn llm(
        &mut self,
        parent: mission_core::SpanId,
        at: u64,
        ms: u64,
        model: &str,
        tokens: (u32, u32),
        cost: f64,
    ) {
        use mission_core::{LlmUsage, SpanKind, Symbol};
        self.span(SpanKind::LlmCall, "chat", parent, at, ms, |_, s| {
            s.llm = LlmUsage {
                model: Symbol::intern(model),
                provider: Symbol::intern("test"),
                input_tokens: tokens.0,
                output_tokens: tokens.1,
                cached_input_tokens: tokens.0 / 10,
                cost_usd: cost,
                ..LlmUsage::default()
            };
        });
    }

    fn other(
        &mut self,
        parent: mission_core::SpanId,
        at: u64,
        name: &str,
        body: mission_core::EventBody,
    ) {
        let mut event = self.context.event(mission_core::Symbol::intern(name), parent, body);
        event.time = Timestamp(self.start + at * MS);
        self.events.push(event);
    }

    fn log(
        &mut self,
        parent: mission_core::SpanId,
        at: u64,
        level: mission_core::Level,
        message: &str,
    ) {
        use mission_core::{EventBody, LogRecord, Symbol, Text};
        let record =
            LogRecord { level, target: Symbol::intern("agent"), message: Text::new(message) };
        self.other(parent, at, "agent", EventBody::Log(record));
    }

    fn permission(&mut self, parent: mission_core::SpanId, at: u64, tool: &str, allow: bool) {
        use mission_core::{Decision, EventBody, PermissionDecision, Symbol, Text};
        let decision = PermissionDecision {
            actor: Text::new(self.context.agent.as_str()),
            action: Symbol::intern("tool.call"),
            resource: Text::new(tool),
            decision: if allow { Decision::Allow } else { Decision::Deny },
            policy: Symbol::intern("default-tool-policy"),
        };
        self.other(parent, at, "tool.call", EventBody::Permission(decision));
    }
}

/// A store of three threads in two tenants on 2025-03-04 between 10:00 and 10:30 UTC.
fn fixed_store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        use mission_core::{
            EventBody, Level, MetricKind, MetricPoint, SpanId, SpanKind, Status, Symbol,
        };
        let root = std::env::temp_dir().join(format!("mission-ctl-fixed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let user = Symbol::intern("user.id");
        let mut events = Vec::new();

        let mut a = Thread::new(THREAD_A, "acme", "support-bot", T0);
        let root_a =
            a.span(SpanKind::AgentStep, "handle_request", SpanId::NONE, 0, 4_200, |e, _| {
                e.attributes.set(user, "u-1");
            });
        a.llm(root_a, 10, 1_200, "gpt-4o-mini", (900, 120), 0.000207);
        a.permission(root_a, 1_300, "lookup_order", true);
        a.span(SpanKind::ToolCall, "lookup_order", root_a, 1_310, 35, |_, _| {});
        a.llm(root_a, 1_400, 2_500, "gpt-4o-mini", (1_500, 200), 0.000345);
        a.log(root_a, 4_100, Level::Info, "answered the customer");
        events.extend(a.events);

        let mut b = Thread::new(THREAD_B, "acme", "research-agent", T0 + 5 * 60_000 * MS);
        let root_b =
            b.span(SpanKind::AgentStep, "handle_request", SpanId::NONE, 0, 9_000, |e, s| {
                e.attributes.set(user, "u-2");
                s.status = Status::Error;
            });
        b.span(SpanKind::Retrieval, "vector_search", root_b, 5, 60, |_, _| {});
        b.llm(root_b, 100, 3_000, "claude-sonnet-4", (2_000, 300), 0.0105);
        b.permission(root_b, 3_200, "web_search", true);
        let search = b.span(SpanKind::ToolCall, "web_search", root_b, 3_210, 420, |_, s| {
            s.set_error("upstream returned 503");
        });
        b.log(search, 3_640, Level::Warn, "web_search failed; retrying with a different plan");
        b.span(SpanKind::LlmCall, "chat", root_b, 3_700, 5_000, |_, s| {
            s.set_error("rate limited | retry later");
            s.llm.model = Symbol::intern("claude-sonnet-4");
            s.llm.input_tokens = 2_500;
            s.llm.output_tokens = 0;
            s.llm.cost_usd = 0.0075;
        });
        b.log(root_b, 8_900, Level::Error, "giving up after 2 attempts");
        events.extend(b.events);

        let mut c = Thread::new(THREAD_C, "globex", "billing-assistant", T0 + 20 * 60_000 * MS);
        let root_c =
            c.span(SpanKind::AgentStep, "handle_request", SpanId::NONE, 0, 2_000, |e, _| {
                e.attributes.set(user, "u-1");
            });
        c.llm(root_c, 10, 1_500, "gpt-4.1", (1_200, 80), 0.00304);
        c.permission(root_c, 1_600, "refund_payment", false);
        c.log(root_c, 1_700, Level::Warn, "refund denied by policy");
        c.other(
            root_c,
            1_800,
            "queue_depth",
            EventBody::Metric(MetricPoint {
                kind: MetricKind::Gauge,
                value: 3.0,
                unit: Symbol::intern("{job}"),
            }),
        );
        events.extend(c.events);

        let pipeline = Pipeline::builder()
            .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
            .start()
            .expect("start");
        let recorder = pipeline.recorder();
        for e in events {
            recorder.record(e);
        }
        pipeline.shutdown();
        root
    })
}

/// Compares `actual` with `tests/snapshots/<name>.txt`; `UPDATE_SNAPSHOTS=1` writes it instead.
fn assert_snapshot(name: &str, actual: &str) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| !v.is_empty()) {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; run with UPDATE_SNAPSHOTS=1 to write it", path.display())
    });
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(e, a)| e != a);
        let line = line.unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output from line {} (UPDATE_SNAPSHOTS=1 rewrites it):\n\
             --- expected\n{expected}--- actual\n{actual}",
            path.display(),
            line + 1
        );
    }
}

/// Runs `mission-ctl <args>` on the hand-made store (put where `STORE` is) and compares its
/// output, headed by the command line, with the snapshot `name`.
fn snapshot(name: &str, args: &[&str]) {
    let store = fixed_store().to_str().expect("utf-8");
    let full: Vec<&str> = args.iter().map(|a| if *a == "STORE" { store } else { a }).collect();
    let out = ctl(&full);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = format!(
        "$ mission-ctl {}\n{}",
        args.join(" "),
        String::from_utf8(out.stdout).expect("utf-8")
    );
    assert_snapshot(name, &text);
}

#[test]
fn tables_match_their_snapshots() {
    snapshot("threads", &["threads", "STORE"]);
    snapshot("thread", &["thread", "STORE", THREAD_B]);
    snapshot("stats", &["stats", "STORE", "--from", FROM, "--to", TO]);
    snapshot(
        "stats-by-agent-and-user",
        &[
            "stats",
            "STORE",
            "--from",
            FROM,
            "--to",
            TO,
            "--group-by",
            "agent,user",
            "--tenant",
            "acme",
        ],
    );
    snapshot("cost", &["cost", "STORE", "--from", FROM, "--to", TO]);
    snapshot(
        "cost-by-user",
        &["cost", "STORE", "--from", FROM, "--to", TO, "--group-by", "tenant,user"],
    );
    snapshot("report", &["report", "STORE", "--to", "2025-03-05", "--since", "24h"]);
    snapshot("tail", &["tail", "STORE", "--no-follow", "--lines", "12", "--color", "never"]);
    snapshot(
        "query",
        &["query", "STORE", "--kind", "tool_call", "--columns", "time,name,status,error_message"],
    );
}

#[test]
fn a_report_of_one_tenant_is_valid_markdown() {
    let store = fixed_store().to_str().expect("utf-8");
    let out = ctl(&["report", store, "--from", FROM, "--to", TO, "--tenant", "acme"]);
    let md = String::from_utf8(out.stdout).expect("utf-8");
    assert!(md.contains("- Tenant: acme"), "{md}");
    assert!(md.contains("rate limited \\| retry later"), "pipes in cells are escaped: {md}");
    assert_eq!(assert_tables_are_well_formed(&md), 5, "{md}");
    let r = json(&ctl(&["report", store, "--from", FROM, "--to", TO, "--format", "json"]));
    assert_eq!(r["volumes"]["threads"], 3);
    assert_eq!(r["volumes"]["metrics"], 1);
    assert_eq!(r["from"], "2025-03-04T10:00:00.000Z");
    let empty = ctl(&["report", store, "--from", "2024-01-01", "--to", "2024-01-02"]);
    let md = String::from_utf8(empty.stdout).expect("utf-8");
    assert!(md.contains("No spans in this period."), "{md}");
    assert_eq!(assert_tables_are_well_formed(&md), 1, "only the volumes: {md}");
}

#[test]
fn unreadable_files_make_every_answer_fail_with_code_4_unless_skipped() {
    // A store written by four writer runs, so it holds at least four files whatever the time
    // of day (the fixture's file count depends on how many hour boundaries its simulated hour
    // crosses: 3 files at 06:14), 3 of them damaged and 2 garbage files added.
    let broken = std::env::temp_dir().join(format!("mission-ctl-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&broken);
    for seed in 1..=4 {
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(StoreConfig::at(&broken)).expect("sink"))
            .start()
            .expect("start");
        simulate(&pipeline.recorder(), &Workload { threads: 30, seed, ..Workload::default() });
        pipeline.shutdown();
    }
    let files: Vec<PathBuf> =
        Store::open(&broken).expect("open").files().iter().map(|f| f.path.clone()).collect();
    assert!(files.len() >= 4, "{} files", files.len());
    let damaged = [&files[0], &files[files.len() / 2], &files[files.len() - 1]];
    for (i, path) in damaged.iter().enumerate() {
        let bytes = std::fs::read(path).expect("read");
        let cut = match i {
            0 => bytes.len() / 2, // the footer is gone
            1 => 10,              // almost nothing left
            _ => bytes.len() - 3, // the magic at the end is cut
        };
        std::fs::write(path, &bytes[..cut]).expect("damage");
    }
    let dir = files[0].parent().expect("dir");
    std::fs::write(dir.join("part-garbage-1.parquet"), b"not parquet at all").expect("write");
    std::fs::write(dir.join("part-garbage-2.parquet"), b"").expect("write");
    let root = broken.to_str().expect("utf-8");
    let commands: [&[&str]; 5] = [
        &["cost", root, "--since", SINCE],
        &["stats", root, "--since", SINCE],
        &["threads", root],
        &["report", root, "--since", SINCE],
        &["query", root, "--limit", "100000000", "--format", "csv"],
    ];
    for args in commands {
        let out = ctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains("warning: the answer is incomplete: "), "{stderr}");
        assert!(stderr.contains("part-garbage-1.parquet") && stderr.contains("--skip-unreadable"));
        // Without a window every file is read: all five are named (a window prunes by hour).
        if args[0] == "threads" || args[0] == "query" {
            assert!(stderr.contains(": 5 unreadable file(s)"), "{stderr}");
            for path in damaged {
                let path = path.display().to_string();
                assert!(stderr.contains(&path), "{args:?} names {path}: {stderr}");
            }
        }
        let mut accepted: Vec<&str> = args.to_vec();
        accepted.push("--skip-unreadable");
        let out = ctl(&accepted);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{accepted:?}: {stderr}");
        assert!(stderr.contains("warning: the answer is incomplete"), "still warned: {stderr}");
        assert!(!out.stdout.is_empty());
    }
    // The intact store answers without a warning.
    let out = ctl(&["cost", root_of_fixture(), "--since", SINCE]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&broken);
}

fn root_of_fixture() -> &'static str {
    root()
}

#[test]
fn doctor_recover_rebuilds_what_a_killed_writer_left() {
    use mission_core::{EventBody, Level, LogRecord, Sink, SpanId, Symbol, Text, ThreadContext};
    let live = std::env::temp_dir().join(format!("mission-ctl-live-{}", std::process::id()));
    let dead = std::env::temp_dir().join(format!("mission-ctl-dead-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&live);
    let _ = std::fs::remove_dir_all(&dead);
    // A writer that has drained 100 events into its open file and log, not finalized. At fixed
    // times (one hour partition, one file), not the clock's: an hour turning while they were
    // made would have put them in two.
    let mut sink = ParquetSink::new(StoreConfig::at(&live)).expect("sink");
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("bot"));
    let events: Vec<_> = (1..=100)
        .map(|i| {
            let mut event = thread.event(
                Symbol::intern("line"),
                SpanId(i),
                EventBody::Log(LogRecord {
                    level: Level::Info,
                    target: Symbol::intern("t"),
                    message: Text::new("hello"),
                }),
            );
            event.time = Timestamp(T0 + i * MS);
            event
        })
        .collect();
    sink.consume(&events).expect("consume");
    // While it runs, its files are in progress, not problems.
    let report = json(&ctl(&["doctor", live.to_str().expect("utf-8"), "--json"]));
    assert!(report["in_progress"].as_u64().expect("in_progress") > 0, "{report}");
    assert_eq!(report["wal"].as_array().map(Vec::len), Some(0), "{report}");
    assert_eq!(report["events"].as_u64(), Some(0));
    // A copy is what a kill leaves: the same files, and no one holding the writer's lock.
    copy_dir(&live, &dead);
    let root = dead.to_str().expect("utf-8");
    let out = ctl(&["doctor", root]);
    assert_eq!(out.status.code(), Some(1), "a dead writer's log is a problem until recovered");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("100 events not yet in the store"), "{text}");
    let out = ctl(&["doctor", root, "--recover"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("recovered 100 events into 1 files"), "{text}");
    assert!(text.contains("healthy"), "{text}");
    assert_eq!(Store::open(&dead).expect("open").query().count().expect("count"), 100);
    // Exactly once: recovering again adds nothing.
    let again = ctl(&["doctor", root, "--recover"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("recovered 0 events"));
    assert_eq!(Store::open(&dead).expect("open").query().count().expect("count"), 100);
    drop(sink);
    assert_eq!(Store::open(&live).expect("open").query().count().expect("count"), 100);
    let _ = std::fs::remove_dir_all(&live);
    let _ = std::fs::remove_dir_all(&dead);
}

/// `sql` (feature `sql`, on by default): the README's queries run, answers equal the query
/// API's, every format, and refusals exit with 2.
#[cfg(feature = "sql")]
#[test]
fn sql_answers_like_the_store_and_refuses_writes() {
    let store = Store::open(root()).expect("open");
    let out = json(&ctl(&[
        "sql",
        "SELECT count(*) AS n FROM tool_calls WHERE status = 'error'",
        "--store",
        root(),
        "--format",
        "json",
    ]));
    let expected = store.query().kind("tool_call").status("error").count().expect("count");
    assert_eq!(out[0]["n"].as_u64(), Some(expected));

    let out = json(&ctl(&[
        "sql",
        "SELECT gen_ai_request_model AS model, sum(gen_ai_usage_cost) AS cost FROM llm_calls GROUP BY 1 ORDER BY 1",
        "--store",
        root(),
        "--format",
        "json",
    ]));
    let report = store.cost_report(store.query(), &[GroupBy::Model]).expect("cost");
    assert_eq!(out.as_array().expect("rows").len(), report.len());
    for row in &report {
        let got = out
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["model"] == row.group[0].as_str())
            .unwrap_or_else(|| panic!("{} missing: {out}", row.group[0]));
        let cost = got["cost"].as_f64().expect("cost");
        assert!(
            (cost - row.cost_usd).abs() < 1e-9 * row.cost_usd.max(1.0),
            "{cost} vs {}",
            row.cost_usd
        );
    }

    // The README's queries, as written there.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let section = readme.split("### SQL over the store").nth(1).expect("the SQL section");
    let block =
        section.split("```sh").nth(1).and_then(|b| b.split("```").next()).expect("sh block");
    let mut ran = 0;
    for command in block.split("cargo run --release -p mission-ctl -- ").skip(1) {
        let command = command.replace("\\\n", " ");
        let query = command.split('"').nth(1).expect("a quoted query");
        let mut args = vec!["sql", query, "--store", root()];
        if command.contains("--format json") {
            args.extend(["--format", "json"]);
        }
        if command.contains("--tenant acme") {
            args.extend(["--tenant", "acme"]);
        }
        let out = ctl(&args);
        assert!(out.status.success(), "{query}: {}", String::from_utf8_lossy(&out.stderr));
        ran += 1;
    }
    assert_eq!(ran, 3, "{block}");

    let csv = ctl(&["sql", "SELECT name FROM spans LIMIT 3", "--store", root(), "--format", "csv"]);
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).expect("utf-8");
    assert_eq!(csv.lines().next(), Some("name"));
    assert_eq!(csv.lines().count(), 4);

    let cut = ctl(&[
        "sql",
        "SELECT * FROM events",
        "--store",
        root(),
        "--max-rows",
        "5",
        "--format",
        "json",
    ]);
    assert!(cut.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&cut.stdout).expect("json").as_array().map(Vec::len),
        Some(5)
    );
    assert!(String::from_utf8_lossy(&cut.stderr).contains("cut at 5 rows"));

    for (query, code) in [
        ("DROP VIEW spans", 2),
        ("COPY (SELECT 1) TO '/tmp/mission-ctl-copy.csv'", 2),
        ("SELECT nope FROM spans", 2),
        ("SELEKT 1", 2),
    ] {
        let out = ctl(&["sql", query, "--store", root()]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
    let out = ctl(&["sql", "SELECT 1", "--store", root(), "--max-rows", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ctl(&["sql", "SELECT 1", "--store", "/no/such/store"]);
    assert_eq!(out.status.code(), Some(3));
}

/// `thread` shows a thread's place in its tree: a parent lists its child threads (and theirs,
/// indented) with their state; a child names its parent; `--json` carries the same as `tree`.
#[test]
fn thread_prints_the_tree() {
    let root = std::env::temp_dir().join(format!("mission-ctl-tree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .build()
        .expect("build");
    let (planner, researcher) = (control.agent("planner"), control.agent("researcher"));
    let parent = planner.thread();
    let child = parent.child_thread(&researcher);
    let grandchild = child.child_thread(&researcher);
    grandchild.cancel("looping");
    let ids = [parent.id(), child.id(), grandchild.id()].map(|id| id.to_string());
    drop((grandchild, child, parent));
    drop(control);
    let store = root.to_str().expect("utf-8");
    let out = ctl(&["thread", store, &ids[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let child_line = text.lines().position(|l| l.contains(&ids[1])).expect("the child is listed");
    let grand_line = text.lines().position(|l| l.contains(&ids[2])).expect("the grandchild too");
    assert!(grand_line > child_line, "{text}");
    let indent = |n: usize| text.lines().nth(n).map(|l| l.len() - l.trim_start().len());
    assert!(
        indent(grand_line) > indent(child_line),
        "the grandchild is indented under the child:\n{text}"
    );
    assert!(text.lines().nth(grand_line).unwrap().contains("[cancelled]"), "{text}");
    let child = json(&ctl(&["thread", store, &ids[1], "--json"]));
    assert_eq!(child["tree"]["parent_thread_id"], ids[0]);
    assert_eq!(child["tree"]["children"], serde_json::json!([ids[2]]));
    let _ = std::fs::remove_dir_all(&root);
}

/// `runs` lists the directives' run history from the store: a run by hand that waited for
/// approval shows its final outcome (approved), once; `--directive`, `--tenant` and `--json`
/// narrow and shape it.
#[test]
fn runs_lists_the_run_history_with_final_outcomes() {
    use mission_sdk::directives::Verdict;
    let root = std::env::temp_dir().join(format!("mission-ctl-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let held = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                approve = { within = \"1h\" }\nthen = [{ action = \"pause_thread\" }]\n\n\
                [[directive]]\nname = \"digest\"\nschedule = \"0 9 * * *\"\n";
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .with_directives(mission_sdk::DirectiveSet::from_toml_str(held, "test").expect("toml"))
        .build()
        .expect("build");
    let thread = control.agent("planner").thread();
    let directives = control.directives();
    directives.run("held", "operator:jo", Some("acme"), Some(thread.id())).expect("run");
    directives.run("digest", "operator:kim", Some("acme"), None).expect("run");
    let approval = directives.approvals_for(None)[0].id;
    directives.decide(approval, Verdict::Approve, "operator:kim", "", None).expect("approve");
    drop(thread);
    drop(control);
    let store = root.to_str().expect("utf-8");
    let all = json(&ctl(&["runs", store, "--json"]));
    let rows = all.as_array().expect("rows");
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["directive"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes.len(), 2, "one row per run: {all}");
    assert!(outcomes.contains(&("held", "approved")), "{all}");
    assert!(outcomes.contains(&("digest", "ok")), "{all}");
    let held_row = rows.iter().find(|r| r["directive"] == "held").unwrap();
    assert_eq!(held_row["trigger"], "manual");
    assert_eq!(held_row["by"], "operator:jo");
    assert_eq!(held_row["actions"][0]["action"], "pause_thread");
    let only = json(&ctl(&["runs", store, "--directive", "digest", "--json"]));
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    let other = json(&ctl(&["runs", store, "--tenant", "globex", "--json"]));
    assert_eq!(other, serde_json::json!([]), "another tenant sees none");
    let out = ctl(&["runs", store]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pause_thread done") && text.contains("approved"), "{text}");
    let _ = std::fs::remove_dir_all(&root);
}

/// `incidents` lists the incidents a real agent recorded, each in its latest state (here:
/// narrated, with both anomalies and the narrative); `--tenant` narrows it.
#[test]
fn incidents_lists_each_incident_in_its_latest_state() {
    use mission_core::{AnomalyEvent, Event, EventBody, SpanId, Symbol, Timestamp};
    let root = std::env::temp_dir().join(format!("mission-ctl-incidents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    for n in 0..2u64 {
        let mut e = Event::new(
            Symbol::intern("chat.latency"),
            EventBody::Anomaly(AnomalyEvent { score: 0.97, ..Default::default() }),
        );
        e.time = Timestamp(Timestamp::now().0 + n);
        e.tenant = Symbol::intern("acme");
        e.span_id = SpanId::generate();
        e.attributes.set(Symbol::intern("mission.anomaly.cause"), "model=claude-sonnet-4");
        control.recorder().record(e);
    }
    control.flush().expect("flush");
    let directives = control.directives();
    let incident = directives.incidents_for(Some("acme")).remove(0);
    assert!(directives.narrate("acme", &incident.id, "the new model is slower"));
    drop(control);
    let store = root.to_str().expect("utf-8");
    let all = json(&ctl(&["incidents", store, "--json"]));
    let rows = all.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "one row per incident: {all}");
    assert_eq!(rows[0]["recorded"], "narrated");
    assert_eq!(rows[0]["state"], "open");
    assert_eq!(rows[0]["cause"], "model=claude-sonnet-4");
    assert_eq!(rows[0]["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["narrative"], "the new model is slower");
    let other = json(&ctl(&["incidents", store, "--tenant", "globex", "--json"]));
    assert_eq!(other, serde_json::json!([]));
    let out = ctl(&["incidents", store]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("the new model is slower"));
    let _ = std::fs::remove_dir_all(&root);
}

/// `control` drives a running agent through its dashboard: a directive run by hand proposes a
/// cancel, `approve` runs it (the thread's code sees it); `pause` and `resume` reach another
/// thread; a viewer's token, another tenant and a bad URL are refused with the reason.
#[test]
fn control_runs_approves_and_pauses_through_the_dashboard() {
    use mission_sdk::{DashboardConfig, DirectiveSet, Role};
    const OPERATOR: &str = "acme-operator-0123456789";
    const VIEWER: &str = "acme-viewer-0123456789";
    let root = std::env::temp_dir().join(format!("mission-ctl-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let held = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                approve = { within = \"1h\" }\nthen = [{ action = \"cancel_thread\" }]\n";
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .with_directives(DirectiveSet::from_toml_str(held, "test").expect("toml"))
        .build()
        .expect("build");
    let config = DashboardConfig::loopback(0)
        .with_role_token(OPERATOR, Role::Operator, Some("acme"))
        .with_role_token(VIEWER, Role::Viewer, Some("acme"));
    let server = control.serve_dashboard(config).expect("dashboard");
    let url = format!("http://{}", server.local_addr());
    let (looping, other) = (control.agent("planner").thread(), control.agent("planner").thread());
    let (looping_id, other_id) = (looping.id().to_string(), other.id().to_string());

    let ran = ctl(&["control", &url, "--token", OPERATOR, "run", "held", "--thread", &looping_id]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(json(&ran)["outcome"], "pending_approval");
    let approval = json(&ran)["approval"].as_u64().expect("an approval");
    assert!(!looping.should_stop());
    let refused = ctl(&["control", &url, "--token", VIEWER, "approve", &approval.to_string()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{refused:?}");
    let approved = ctl(&[
        "control",
        &url,
        "--token",
        OPERATOR,
        "approve",
        &approval.to_string(),
        "--note",
        "loop",
    ]);
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    assert_eq!(json(&approved)["state"], "approved");
    assert!(looping.should_stop(), "the approved cancel reached the thread");

    let paused =
        ctl(&["control", &url, "--token", OPERATOR, "pause", &other_id, "--reason", "look"]);
    assert_eq!(json(&paused)["state"], "paused");
    assert!(other.should_stop());
    let resumed = ctl(&["control", &url, "--token", OPERATOR, "resume", &other_id]);
    assert_eq!(json(&resumed)["state"], "running");
    assert!(!other.should_stop());
    let elsewhere =
        ctl(&["control", &url, "--token", OPERATOR, "cancel", &other_id, "--tenant", "globex"]);
    assert_eq!(elsewhere.status.code(), Some(1), "another tenant's thread is not found");
    assert!(!other.should_stop());
    let bad = ctl(&["control", "ftp://x", "--token", OPERATOR, "resume", &other_id]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    drop((looping, other));
    drop(server);
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn graph_counts_what_was_recorded_as_json_table_and_dot() {
    let (_, summary) = fixture();
    let graph = json(&ctl(&["graph", root(), "--since", "7d", "--json"]));
    let edges = graph["edges"].as_array().expect("edges");
    let sum = |kind: &str, field: &str| -> u64 {
        edges.iter().filter(|e| e["kind"] == kind).map(|e| e[field].as_u64().expect("u64")).sum()
    };
    assert_eq!(sum("calls_tool", "calls"), summary.tool_calls, "{graph}");
    assert_eq!(sum("uses_model", "calls"), summary.llm_calls);
    assert_eq!(sum("denied_by", "calls"), summary.denials);
    let cost: f64 = edges.iter().map(|e| e["cost_usd"].as_f64().expect("cost")).sum();
    assert!(approx(cost, summary.cost_usd), "{cost} vs {}", summary.cost_usd);
    assert_eq!(graph["truncated"], false);
    let ids: std::collections::BTreeSet<&str> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    for e in edges {
        assert!(
            ids.contains(e["from"].as_str().expect("from"))
                && ids.contains(e["to"].as_str().expect("to"))
        );
        assert!(e["p95_ms"].is_null() || e["p95_ms"].as_f64().expect("p95") > 0.0, "{e}");
    }
    // Bounded: two nodes keep at most the edges between them, and say what they cut.
    let small = json(&ctl(&["graph", root(), "--since", "7d", "--json", "--limit", "2"]));
    assert_eq!(small["nodes"].as_array().expect("nodes").len(), 2);
    assert_eq!(small["truncated"], true);
    assert_eq!(small["nodes_cut"].as_u64(), Some(ids.len() as u64 - 2));
    // DOT: one line per node and edge.
    let dot =
        String::from_utf8(ctl(&["graph", root(), "--since", "7d", "--dot"]).stdout).expect("utf-8");
    assert!(dot.starts_with("digraph mission {") && dot.trim_end().ends_with('}'), "{dot}");
    assert_eq!(dot.lines().filter(|l| l.contains(" -> ")).count(), edges.len());
    assert_eq!(dot.lines().filter(|l| l.contains("shape=")).count(), ids.len());
    // A node's label: its name, DOT's line break, its kind.
    assert!(dot.lines().any(|l| l.contains("shape=box") && l.contains("\\nagent\"")), "{dot}");
    // The table: a header, one row per edge, then the counts.
    let table = String::from_utf8(ctl(&["graph", root(), "--since", "7d"]).stdout).expect("utf-8");
    assert!(table.starts_with("from"), "{table}");
    assert!(table.contains(&format!("{} nodes, {} edges", ids.len(), edges.len())), "{table}");
    assert_eq!(ctl(&["graph", root(), "--limit", "0"]).status.code(), Some(2));
    assert_eq!(ctl(&["graph", root(), "--limit", "10001"]).status.code(), Some(2));
}

#[test]
fn export_writes_threads_with_their_spans_as_jsonl_and_csv() {
    let out = ctl(&["export", root(), "--format", "jsonl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = Store::open(root()).expect("open");
    let expected = store.threads(store.query()).expect("threads");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), expected.len());
    for want in &expected {
        let line =
            lines.iter().find(|l| l["thread_id"] == want.thread_id.as_str()).expect("listed");
        let spans = line["spans"].as_array().expect("spans");
        assert_eq!(spans.len() as u64, want.spans, "{}", want.thread_id);
        let errors = spans.iter().filter(|s| s["status"] == "error").count() as u64;
        assert_eq!(errors, want.errors);
        let input: i64 = spans.iter().filter_map(|s| s["input_tokens"].as_i64()).sum();
        assert_eq!(input, want.input_tokens);
    }
    let csv = ctl(&["export", root(), "--format", "csv", "--agent", "support-bot", "--limit", "5"]);
    assert_eq!(csv.status.code(), Some(1), "more than 5 threads: cut short, exit code 1");
    assert!(String::from_utf8_lossy(&csv.stderr).contains("truncated"));
    let text = String::from_utf8(csv.stdout).expect("utf-8");
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert!(rows[0].starts_with("thread_id,tenant,agent,status,"));
    assert!(rows[1..].iter().all(|r| r.contains(",support-bot,")), "{text}");
    for bad in [&["--limit", "0"][..], &["--since", "60d"], &["--format", "xml"]] {
        let mut args = vec!["export", root()];
        args.extend_from_slice(bad);
        assert_eq!(ctl(&args).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn report_prints_a_print_ready_html_page() {
    let out = ctl(&["report", root(), "--since", "30d", "--format", "html"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = String::from_utf8(out.stdout).expect("utf-8");
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("@media print") && html.contains("<h1>Mission Control report</h1>"));
    assert!(html.contains("<h2>Latency by operation</h2>") && html.contains("<table>"));
    assert!(!html.contains("<script"), "self-contained, no script");
    // The same numbers as the Markdown report, in table cells.
    let markdown =
        String::from_utf8(ctl(&["report", root(), "--since", "30d"]).stdout).expect("md");
    let threads = markdown.lines().find(|l| l.starts_with("| threads ")).expect("threads row");
    let n = threads.trim_matches('|').split('|').nth(1).expect("count").trim();
    assert!(html.contains(&format!("<td>threads</td><td class=\"num\">{n}</td>")), "{html}");
}
