//! `mission-ctl` with `--tenant`, and the dashboard it serves with `--tenant-token`, over a
//! store two tenants share: the same thread ids, agent, operation and model names. Every
//! content string a tenant records carries that tenant's marker; whatever a command prints for
//! one tenant (standard output and standard error) must hold nothing of the other tenant — its
//! marker, its name, its thread ids — and a command that writes (`erase --tenant`) must leave
//! the other tenant's data alone and be audited under its own tenant.
//!
//! [`SURFACES`] is the one list the suite iterates; `every_tenant_option_is_in_the_suite`
//! fails when a subcommand takes `--tenant` (or `--tenant-token`) without an entry in it. (The
//! library's surfaces — the scoped `Store`, MCP, the dashboard inside an agent and over a
//! store, change notifications, the audit trail — are in `mission-sdk/tests/tenant_isolation.rs`.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mission_core::{
    Backpressure, Decision, EventBody, Level, LlmUsage, LogRecord, PermissionDecision, Pipeline,
    SpanId, SpanKind, Symbol, Text, ThreadContext, ThreadId,
};
use mission_store::{ParquetSink, Store, StoreConfig};

const TENANTS: [&str; 2] = ["acme-corp", "globex-inc"];
/// Every content string of tenant `t` contains `MARKERS[t]`.
const MARKERS: [&str; 2] = ["qx-zero-mark", "qx-one-mark"];
/// A viewer token of each tenant, for the dashboard.
const TOKENS: [&str; 2] = ["acme-viewer-0123456789", "globex-viewer-0123456789"];
const AGENT: &str = "support-bot";
const OPERATION: &str = "web_search";
const MODEL: &str = "gpt-4.1";
const SHARED_THREADS: usize = 3;
/// How long anything may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// A store both tenants write, through one pipeline that stays open for the follow-up changes.
struct World {
    root: PathBuf,
    pipeline: Option<Pipeline>,
    shared: Vec<ThreadId>,
    /// Thread ids only tenant `t` used.
    own: [Vec<ThreadId>; 2],
}

impl World {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("mission-ctl-iso-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(StoreConfig::at(&root)).expect("sink"))
            .start()
            .expect("start");
        let mut world = World {
            root,
            pipeline: Some(pipeline),
            shared: (0..SHARED_THREADS).map(|_| ThreadId::generate()).collect(),
            own: [Vec::new(), Vec::new()],
        };
        for t in 0..2 {
            for _ in 0..2 {
                let id = ThreadId::generate();
                world.own[t].push(id);
                world.record_thread(t, id);
            }
        }
        for n in 0..SHARED_THREADS {
            for t in [1, 0] {
                world.record_thread(t, world.shared[n]);
            }
        }
        for t in 0..2 {
            world.record_run(t);
        }
        world.flush();
        world
    }

    /// A directive run of tenant `t` in the first shared thread, as an agent records it, whose
    /// runner and action carry the tenant's marker.
    fn record_run(&self, t: usize) {
        let ctx = Self::ctx(t, self.shared[0]);
        let mut event = ctx.event(
            Symbol::intern("mission.directive.run"),
            SpanId::NONE,
            EventBody::Log(LogRecord {
                level: Level::Info,
                target: Symbol::intern("mission.directives"),
                message: Text::new("run 1 of held (manual): approved"),
            }),
        );
        let actions = format!(
            r#"[{{"action":"pause_thread","target":"{}","outcome":"done","detail":"{} check"}}]"#,
            self.shared[0], MARKERS[t]
        );
        for (k, v) in [
            ("mission.directive", "held".to_owned()),
            ("mission.run.id", "1".to_owned()),
            ("mission.run.trigger", "manual".to_owned()),
            ("mission.run.by", format!("{} operator", MARKERS[t])),
            ("mission.run.outcome", "approved".to_owned()),
            ("mission.run.actions", actions),
        ] {
            event.attributes.set(Symbol::intern(k), v.as_str());
        }
        self.pipeline().recorder().record(event);
        // And an incident of its, named by a cause carrying the marker.
        let mut incident = ctx.event(
            Symbol::intern("mission.incident"),
            SpanId::NONE,
            EventBody::Log(LogRecord {
                level: Level::Info,
                target: Symbol::intern("mission.directives"),
                message: Text::new("incident closed"),
            }),
        );
        for (k, v) in [
            ("mission.incident.id", format!("{:016x}", 0xabc0 + t)),
            ("mission.incident.state", "closed".to_owned()),
            ("mission.incident.cause", format!("model={}", MARKERS[t])),
            ("mission.incident.members", "[]".to_owned()),
            ("mission.incident.resolution", format!("{} restarted", MARKERS[t])),
        ] {
            incident.attributes.set(Symbol::intern(k), v.as_str());
        }
        self.pipeline().recorder().record(incident);
    }

    fn pipeline(&self) -> &Pipeline {
        self.pipeline.as_ref().expect("the pipeline runs")
    }

    fn flush(&self) {
        self.pipeline().flush().expect("flush");
    }

    fn root(&self) -> &str {
        self.root.to_str().expect("utf-8 path")
    }

    fn ctx(t: usize, thread: ThreadId) -> ThreadContext {
        ThreadContext {
            tenant: Symbol::intern(TENANTS[t]),
            agent: Symbol::intern(AGENT),
            thread_id: thread,
        }
    }

    /// A step, an LLM call by a user, a failing tool call, a log line and a denial of tenant
    /// `t` in `thread`.
    fn record_thread(&self, t: usize, thread: ThreadId) {
        let ctx = Self::ctx(t, thread);
        let recorder = self.pipeline().recorder();
        let step =
            recorder.start_span(&ctx, SpanKind::AgentStep, Symbol::intern("handle_request"), None);
        let mut llm = recorder.start_span(
            &ctx,
            SpanKind::LlmCall,
            Symbol::intern("chat"),
            Some(step.span_id()),
        );
        llm.set_llm_usage(LlmUsage {
            model: Symbol::intern(MODEL),
            provider: Symbol::intern("openai"),
            input_tokens: 100 + t as u32,
            output_tokens: 10,
            cost_usd: 0.001,
            ..LlmUsage::default()
        });
        llm.set_attribute(Symbol::intern("user.id"), user(t).as_str());
        llm.end();
        let tool = recorder.start_span(
            &ctx,
            SpanKind::ToolCall,
            Symbol::intern(OPERATION),
            Some(step.span_id()),
        );
        tool.end_with_error(&format!("{} upstream error", MARKERS[t]));
        step.end();
        self.record_change(t, thread, "log line");
        recorder.record(ctx.event(
            Symbol::intern("tool.call"),
            SpanId::NONE,
            EventBody::Permission(PermissionDecision {
                actor: Text::new(&format!("agent:{AGENT}")),
                action: Symbol::intern("tool.call"),
                resource: Text::new(&format!("{} resource", MARKERS[t])),
                decision: Decision::Deny,
                policy: Symbol::intern("no-refunds"),
            }),
        ));
    }

    /// A warning of tenant `t` in `thread` whose message carries its marker and `what`.
    fn record_change(&self, t: usize, thread: ThreadId, what: &str) {
        let ctx = Self::ctx(t, thread);
        self.pipeline().recorder().record(ctx.event(
            Symbol::intern("log"),
            SpanId::NONE,
            EventBody::Log(LogRecord {
                level: Level::Warn,
                target: Symbol::intern("agent::tools"),
                message: Text::new(&format!("{} {what}", MARKERS[t])),
            }),
        ));
    }

    /// Events of tenant `t` in the store.
    fn count(&self, t: usize) -> u64 {
        Store::open_scoped(&self.root, Some(TENANTS[t]))
            .expect("open")
            .query()
            .count()
            .expect("count")
    }

    /// Thread ids tenant `t` asks about: the shared ones, one of its own and one of the other
    /// tenant's (a probe: that id is not secret, what was recorded under it is).
    fn probe_threads(&self, t: usize) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.iter().map(ToString::to_string).collect();
        ids.push(self.own[t][0].to_string());
        ids.push(self.own[1 - t][0].to_string());
        ids
    }

    /// Fails when `bytes` (what tenant `t`'s command printed for `what`) holds anything of the
    /// other tenant; `asked` are strings the command itself named.
    fn assert_clean(&self, t: usize, what: &str, bytes: &str, asked: &[String]) {
        let o = 1 - t;
        let mut text = bytes.to_owned();
        for a in asked {
            text = text.replace(a.as_str(), "");
        }
        let mut foreign = vec![MARKERS[o].to_owned(), TENANTS[o].to_owned()];
        foreign.extend(self.own[o].iter().skip(1).map(ToString::to_string));
        for f in foreign {
            assert!(
                !text.contains(&f),
                "{what}: {}'s command printed {f:?} of the other tenant:\n{text}",
                TENANTS[t]
            );
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(p) = self.pipeline.take() {
            p.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A user id of tenant `t` (what `erase` is asked about).
fn user(t: usize) -> String {
    format!("{} user", MARKERS[t])
}

/// `sql --tenant` (with the `sql` feature): everything, every view, and queries that try to
/// reach the other tenant (a filter on its name, its partition directory as a table, an
/// external table, the catalog), in each format. The refused ones exit with 2 and say why.
fn sql(w: &World, t: usize) -> Vec<(String, Vec<String>)> {
    if !cfg!(feature = "sql") {
        return Vec::new();
    }
    let other = TENANTS[1 - t];
    let path = format!("{}/events/tenant={other}/", w.root());
    let mut out = Vec::new();
    for format in ["table", "json", "csv"] {
        for query in
            ["SELECT * FROM events", "SELECT * FROM threads", "SELECT DISTINCT tenant FROM events"]
        {
            let args =
                ["sql", query, "--store", w.root(), "--tenant", TENANTS[t], "--format", format];
            out.push((printed(&args), Vec::new()));
        }
    }
    let filtered = format!("SELECT * FROM events WHERE tenant = '{other}' OR tenant <> ''");
    let args = ["sql", &filtered, "--store", w.root(), "--tenant", TENANTS[t], "--format", "json"];
    out.push((printed(&args), vec![filtered.clone()]));
    for escape in [
        format!("SELECT * FROM '{path}'"),
        format!("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{path}'"),
        "SELECT * FROM information_schema.tables".to_owned(),
    ] {
        let run = ctl(&["sql", &escape, "--store", w.root(), "--tenant", TENANTS[t]]);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(run.status.code(), Some(2), "{escape}: {text}");
        out.push((text, vec![escape, path.clone()]));
    }
    // The same engine over the store uploaded to a bucket: scoping is by listing there.
    #[cfg(feature = "s3")]
    out.extend(sql_on_a_bucket(w, t));
    out
}

#[cfg(feature = "s3")]
#[path = "../../mission-store/tests/integration/s3_server.rs"]
mod s3_server;

/// `sql --tenant` over the store's finalized files uploaded (`mission-ctl upload`) to the
/// loopback S3 server: every view, a filter on the other tenant, and its prefix as a table.
#[cfg(feature = "s3")]
fn sql_on_a_bucket(w: &World, t: usize) -> Vec<(String, Vec<String>)> {
    let server = s3_server::S3Server::start("mission-ctl-iso");
    let url = format!("s3://{}/iso", server.bucket);
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mission-ctl"));
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        let output = command.envs(server.env()).args(args).output().expect("run mission-ctl");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    let (code, text) = run(&["upload", "--store", w.root(), "--to", &url, "--keep-local"]);
    assert_eq!(code, Some(0), "{text}");
    let other = TENANTS[1 - t];
    let filtered = format!("SELECT * FROM events WHERE tenant = '{other}' OR tenant <> ''");
    let mut out = Vec::new();
    for query in ["SELECT * FROM events", "SELECT * FROM threads", filtered.as_str()] {
        let args = ["sql", query, "--store", &url, "--tenant", TENANTS[t], "--format", "json"];
        let (code, text) = run(&args);
        assert_eq!(code, Some(0), "{query}: {text}");
        if query != "SELECT * FROM threads" {
            assert!(text.contains(MARKERS[t]), "the bucket holds this tenant's rows: {text}");
        }
        out.push((text, vec![query.to_owned()]));
    }
    let path = format!("{url}/events/tenant={other}/");
    let escape = format!("SELECT * FROM '{path}'");
    let (code, text) = run(&["sql", &escape, "--store", &url, "--tenant", TENANTS[t]]);
    assert_eq!(code, Some(2), "{escape}: {text}");
    out.push((text, vec![escape, path]));
    out
}

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mission-ctl")).args(args).output().expect("run mission-ctl")
}

/// Standard output and standard error of a run that must succeed.
fn printed(args: &[&str]) -> String {
    let out = ctl(args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mission-ctl {args:?}: {text}");
    text
}

/// What a command prints as text and with `--json`.
fn text_and_json(args: &[&str]) -> Answers {
    vec![(printed(args), Vec::new()), (printed(&[args, &["--json"]].concat()), Vec::new())]
}

/// A process of ours, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints on standard output, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
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
    rx
}

/// Reads `rx` until a line contains `end`; every line read, joined.
fn read_until(rx: &mpsc::Receiver<String>, end: &str, what: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = String::new();
    while !seen.contains(end) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("{what}: no {end:?} in {seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
    seen
}

/// Every answer a surface gave tenant `t`, each with the strings the command named.
type Answers = Vec<(String, Vec<String>)>;

/// One subcommand taking `--tenant` (or `--tenant-token`), and how tenant `t` runs it.
struct Surface {
    name: &'static str,
    ask: fn(&World, usize) -> Answers,
}

const SURFACES: &[Surface] = &[
    Surface { name: "tail", ask: tail },
    Surface {
        name: "threads",
        ask: |w, t| {
            let args = ["threads", w.root(), "--tenant", TENANTS[t], "--limit", "1000"];
            text_and_json(&args)
        },
    },
    Surface {
        name: "thread",
        ask: |w, t| {
            w.probe_threads(t)
                .into_iter()
                .map(|id| {
                    let out = ctl(&["thread", w.root(), &id, "--tenant", TENANTS[t], "--json"]);
                    let text = format!(
                        "{}\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    // The other tenant's own thread is no thread of this tenant's: exit 1.
                    let expected = if id == w.own[1 - t][0].to_string() { 1 } else { 0 };
                    assert_eq!(out.status.code(), Some(expected), "thread {id}: {text}");
                    (text, vec![id])
                })
                .collect()
        },
    },
    Surface {
        name: "stats",
        ask: |w, t| {
            let groups = "operation,model,agent,tenant,user";
            let args =
                ["stats", w.root(), "--tenant", TENANTS[t], "--since", "7d", "--group-by", groups];
            text_and_json(&args)
        },
    },
    Surface {
        name: "cost",
        ask: |w, t| {
            let groups = "model,agent,tenant,user,operation";
            let args =
                ["cost", w.root(), "--tenant", TENANTS[t], "--since", "7d", "--group-by", groups];
            text_and_json(&args)
        },
    },
    Surface {
        name: "report",
        ask: |w, t| {
            let args = ["report", w.root(), "--tenant", TENANTS[t], "--since", "7d"];
            text_and_json(&args)
        },
    },
    Surface {
        name: "diff",
        // Every pair of probes, both ways; a thread with no steps of the tenant's exits 1.
        ask: |w, t| {
            let ids = w.probe_threads(t);
            let mut out = Vec::new();
            for a in &ids {
                for b in &ids {
                    let args = ["diff", w.root(), a, b, "--tenant", TENANTS[t], "--json"];
                    let run = ctl(&args);
                    let text = format!(
                        "{}\n{}",
                        String::from_utf8_lossy(&run.stdout),
                        String::from_utf8_lossy(&run.stderr)
                    );
                    assert!(matches!(run.status.code(), Some(0 | 1)), "diff {a} {b}: {text}");
                    out.push((text, vec![a.clone(), b.clone()]));
                }
            }
            out
        },
    },
    Surface {
        name: "graph",
        // Agents and tools are named alike in both tenants: the graph's content strings (rules,
        // errors) carry the markers the leak check looks for.
        ask: |w, t| {
            ["--json", "--dot"]
                .into_iter()
                .map(|format| {
                    let args = ["graph", w.root(), "--tenant", TENANTS[t], "--since", "7d", format];
                    let text = printed(&args);
                    assert!(text.contains(&format!("agent:{AGENT}")), "graph {format}: {text}");
                    (text, Vec::new())
                })
                .collect()
        },
    },
    Surface {
        name: "export",
        ask: |w, t| {
            ["jsonl", "csv"]
                .into_iter()
                .map(|format| {
                    let args = ["export", w.root(), "--tenant", TENANTS[t], "--format", format];
                    let text = printed(&args);
                    assert!(text.contains(TENANTS[t]), "export --format {format}: {text}");
                    (text, Vec::new())
                })
                .collect()
        },
    },
    Surface {
        name: "query",
        ask: |w, t| {
            let mut out = Vec::new();
            for format in ["json", "csv", "table"] {
                let args = [
                    "query",
                    w.root(),
                    "--tenant",
                    TENANTS[t],
                    "--limit",
                    "100000",
                    "--format",
                    format,
                ];
                out.push((printed(&args), Vec::new()));
            }
            for id in w.probe_threads(t) {
                let args = [
                    "query",
                    w.root(),
                    "--tenant",
                    TENANTS[t],
                    "--thread",
                    &id,
                    "--format",
                    "json",
                ];
                out.push((printed(&args), vec![id]));
            }
            out
        },
    },
    Surface {
        name: "runs",
        ask: |w, t| {
            let args = ["runs", w.root(), "--tenant", TENANTS[t], "--since", "7d"];
            let answers = text_and_json(&args);
            assert!(
                answers.iter().any(|(text, _)| text.contains(MARKERS[t])),
                "the tenant's own run is listed: {answers:?}"
            );
            answers
        },
    },
    Surface {
        name: "incidents",
        ask: |w, t| {
            let args = ["incidents", w.root(), "--tenant", TENANTS[t], "--since", "7d"];
            let answers = text_and_json(&args);
            assert!(
                answers.iter().any(|(text, _)| text.contains(MARKERS[t])),
                "the tenant's own incident is listed: {answers:?}"
            );
            answers
        },
    },
    Surface { name: "control run", ask: |_, t| control(t, "run") },
    Surface { name: "control pause", ask: |_, t| control(t, "pause") },
    Surface { name: "control resume", ask: |_, t| control(t, "resume") },
    Surface { name: "control cancel", ask: |_, t| control(t, "cancel") },
    Surface { name: "sql", ask: sql },
    Surface { name: "pack export", ask: pack_export },
    Surface { name: "pack import", ask: pack_import },
    Surface { name: "erase", ask: erase },
    Surface { name: "compact", ask: compact },
    Surface { name: "dashboard", ask: dashboard },
    Surface { name: "serve", ask: serve },
];

/// `tail --tenant`: the last events, then following the store while both tenants record until
/// the tenant's own last event is printed (new files are read in time order, so the other
/// tenant's earlier events have passed by then).
fn tail(w: &World, t: usize) -> Answers {
    let o = 1 - t;
    let args = ["tail", w.root(), "--tenant", TENANTS[t], "--lines", "100000", "--no-follow"];
    let mut out = text_and_json(&args);
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args(["tail", w.root(), "--tenant", TENANTS[t], "--lines", "1", "--json"])
            .args(["--poll", "50ms"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let rx = lines_of(&mut child);
    // The one last event says `tail` has listed the store: what follows is followed.
    let first = rx.recv_timeout(PATIENCE).expect("tail printed the last event");
    let end = format!("tail end {}", ThreadId::generate());
    w.record_change(o, w.shared[0], "followed");
    w.flush();
    w.record_change(t, w.shared[0], &end);
    w.flush();
    let followed = read_until(&rx, &format!("{} {end}", MARKERS[t]), "tail --tenant");
    out.push((format!("{first}\n{followed}"), Vec::new()));
    out
}

/// `erase --tenant`: a subject of the other tenant is not this tenant's to erase; the other
/// tenant keeps every event, and the audit record is this tenant's.
fn erase(w: &World, t: usize) -> Answers {
    let o = 1 - t;
    let before = w.count(o);
    let attribute = format!("user.id={}", user(o));
    let args =
        ["erase", w.root(), "--attribute", &attribute, "--tenant", TENANTS[t], "--actor", "ops"];
    let text = printed(&[&args[..], &["--json"]].concat());
    assert_eq!(w.count(o), before, "{}'s erase reached {}", TENANTS[t], TENANTS[o]);
    let log = w.root.join("audit").join("audit.jsonl");
    let records = std::fs::read_to_string(&log).expect("the erasure is audited");
    let last: serde_json::Value =
        serde_json::from_str(records.lines().last().expect("a record")).expect("json");
    assert_eq!(last["kind"], "erasure", "{last}");
    assert_eq!(last["tenant"], TENANTS[t], "the erasure is audited under its tenant: {last}");
    vec![(text, vec![attribute, user(o)]), (records_of(&records, t), Vec::new())]
}

/// A learned model baseline in the store (`models/state.json`, the SDK's state file) with a
/// stream of each tenant, named with the tenant's marker.
fn write_baseline(w: &World) {
    let stream = |t: usize| {
        serde_json::json!({
            "tenant": TENANTS[t],
            "agent": format!("{} agent", MARKERS[t]),
            "kind": "llm_call",
            "operation": format!("{} chat", MARKERS[t]),
            "series": [{ "model": format!("{} model", MARKERS[t]), "detectors": [null, null, null, null] }],
        })
    };
    let state = serde_json::json!({ "version": 1, "streams": [stream(0), stream(1)] });
    let dir = w.root.join("models");
    std::fs::create_dir_all(&dir).expect("models dir");
    std::fs::write(dir.join("state.json"), state.to_string()).expect("state file");
}

/// Every entry of a pack, decoded (entries are base64 in the file, so a byte search of the
/// file alone would not see a name).
fn pack_entries(pack: &std::path::Path) -> String {
    use base64::Engine as _;
    let text = std::fs::read_to_string(pack).expect("pack written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("pack is JSON");
    let entries = json["entries"].as_array().expect("entries");
    assert!(!entries.is_empty(), "{text}");
    let decoded: Vec<String> = entries
        .iter()
        .map(|e| {
            let data = e["data"].as_str().expect("data");
            let bytes = base64::engine::general_purpose::STANDARD.decode(data).expect("base64");
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    format!("{text}\n{}", decoded.join("\n"))
}

/// `pack export --tenant`: the pack holds this tenant's baseline only (the manifest, and every
/// entry decoded), and it does hold it.
fn pack_export(w: &World, t: usize) -> Answers {
    write_baseline(w);
    let out = w.root.join(format!("export-{t}.pack"));
    let out_s = out.to_string_lossy().into_owned();
    let args = ["pack", "export", "--store", w.root(), "--tenant", TENANTS[t], "--out", &out_s];
    let text = printed(&[&args[..], &["--json"]].concat());
    let entries = pack_entries(&out);
    assert!(entries.contains(MARKERS[t]), "{}'s own baseline is in its pack", TENANTS[t]);
    let _ = std::fs::remove_file(&out);
    vec![(text, Vec::new()), (entries, Vec::new())]
}

/// `pack import --tenant` of a pack carrying both tenants' baselines: only this tenant's are
/// imported (every file written, read back), and they are.
fn pack_import(w: &World, t: usize) -> Answers {
    write_baseline(w);
    let pack = w.root.join(format!("both-{t}.pack"));
    let pack_s = pack.to_string_lossy().into_owned();
    printed(&["pack", "export", "--store", w.root(), "--out", &pack_s]);
    assert!(pack_entries(&pack).contains(MARKERS[1 - t]), "the pack carries both tenants");
    let into = w.root.join(format!("imported-{t}"));
    let into_s = into.to_string_lossy().into_owned();
    let args = ["pack", "import", &pack_s, "--into", &into_s, "--tenant", TENANTS[t]];
    let text = printed(&[&args[..], &["--json"]].concat());
    let mut written = String::new();
    let mut dirs = vec![into.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("imported dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                written.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    assert!(written.contains(MARKERS[t]), "{}'s own baseline was imported", TENANTS[t]);
    let _ = std::fs::remove_dir_all(&into);
    let _ = std::fs::remove_file(&pack);
    vec![(text, Vec::new()), (written, Vec::new())]
}

/// `compact --tenant`: only this tenant's partitions are merged; the other tenant's files stay
/// as they were, and every count stays.
fn compact(w: &World, t: usize) -> Answers {
    let o = 1 - t;
    let (theirs, mine) = (w.count(o), w.count(t));
    let files = |tenant: usize| -> Vec<PathBuf> {
        Store::open_scoped(&w.root, Some(TENANTS[tenant]))
            .expect("open")
            .files()
            .iter()
            .map(|f| f.path.clone())
            .collect()
    };
    let others = files(o);
    let args = ["compact", "--store", w.root(), "--tenant", TENANTS[t], "--min-files", "2"];
    let text = printed(&[&args[..], &["--json"]].concat());
    assert_eq!(files(o), others, "{}'s compaction touched {}'s files", TENANTS[t], TENANTS[o]);
    assert_eq!((w.count(o), w.count(t)), (theirs, mine), "compaction keeps every row");
    vec![(text, Vec::new())]
}

/// The audit records of tenant `t`, as JSON lines.
fn records_of(records: &str, t: usize) -> String {
    records
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|r| r["tenant"] == TENANTS[t])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn http_get(addr: SocketAddr, path: &str, token: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    String::from_utf8_lossy(&raw).into_owned()
}

/// `serve --tenant-token`, a write surface and two read surfaces in one process. Writing:
/// tenant `t`'s token sends OTLP/JSON spans, one of them claiming the other tenant
/// (`mission.tenant`); the claim is refused item by item (`partial_success`), the tenant's own
/// span lands under its own tenant, and the other tenant's view of the receiver's store holds
/// nothing the sender sent. Reading: the other tenant sends a span of its own too, then tenant
/// `t`'s token reads every JSON route of the dashboard and calls the MCP server's tools (over
/// streamable HTTP), asking about both tenants' threads; every byte it gets back is checked.
/// (Its own store: the world's is written by live writers a second writer process must not
/// recover under their feet.)
fn serve(_world: &World, t: usize) -> Answers {
    let o = 1 - t;
    let store = std::env::temp_dir().join(format!(
        "mission-iso-serve-{}-{t}-{}",
        std::process::id(),
        ThreadId::generate()
    ));
    let tokens = [format!("{}:{}", TOKENS[0], TENANTS[0]), format!("{}:{}", TOKENS[1], TENANTS[1])];
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args(["serve", "--store", store.to_str().expect("utf-8"), "--addr", "127.0.0.1:0"])
            .args(["--dashboard-addr", "127.0.0.1:0", "--mcp-addr", "127.0.0.1:0"])
            .args(["--grpc-addr", "127.0.0.1:0"])
            .args(["--tenant-token", &tokens[0], "--tenant-token", &tokens[1]])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let rx = lines_of(&mut child);
    let banner = read_until(&rx, "serving store ", "serve says where it is");
    let addr_of = |surface: &str| -> SocketAddr {
        banner
            .lines()
            .find_map(|l| l.strip_prefix(&format!("Mission Control {surface} on http://")))
            .and_then(|rest| rest.split(['/', ' ']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {surface} in {banner:?}"))
    };
    let (addr, dashboard, mcp) =
        (addr_of("OTLP receiver"), addr_of("dashboard"), addr_of("MCP server"));
    // Now, so the dashboard's and the tools' time windows hold the spans.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let trace = |of: usize| format!("5b8efff798038103d269b633813fc6{of:02}");
    let span = |of: usize, name: &str, id: &str| {
        format!(
            r#"{{"traceId":"{}","spanId":"{id}","name":"{name}","kind":1,"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}"#,
            trace(of),
            now - 2_000_000_000,
            now - 1_000_000_000
        )
    };
    let resource = |extra: &str| {
        format!(
            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{AGENT}"}}}}{extra}]}},"scopeSpans":[{{"scope":{{}},"spans":[SPAN]}}]}}"#
        )
    };
    let claimed = format!("{} claimed", MARKERS[t]);
    let own = format!("{} own", MARKERS[t]);
    let claim =
        format!(r#",{{"key":"mission.tenant","value":{{"stringValue":"{}"}}}}"#, TENANTS[o]);
    let body = format!(
        r#"{{"resourceSpans":[{},{}]}}"#,
        resource(&claim).replace("SPAN", &span(t, &claimed, "00000000000000a1")),
        resource("").replace("SPAN", &span(t, &own, "00000000000000a2"))
    );
    let answer = http_post_json(addr, "/v1/traces", Some(TOKENS[t]), &body);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let rejected = ["\"rejectedSpans\":\"1\"", "\"rejectedSpans\":1"];
    assert!(rejected.iter().any(|r| answer.contains(r)), "one span refused: {answer}");
    let anonymous = http_post_json(addr, "/v1/traces", None, &body);
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let theirs_sent = format!(
        r#"{{"resourceSpans":[{}]}}"#,
        resource("")
            .replace("SPAN", &span(o, &format!("{} theirs", MARKERS[o]), "00000000000000b1"))
    );
    let sent = http_post_json(addr, "/v1/traces", Some(TOKENS[o]), &theirs_sent);
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");

    let mut out = vec![(answer, vec![TENANTS[o].to_owned()])];
    out.extend(serve_dashboard(dashboard, t, &own, &[trace(t), trace(o)]));
    out.extend(serve_mcp(mcp, t, &own, &[trace(t), trace(o)]));

    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let mut printed = vec![banner];
    while let Ok(line) = rx.recv_timeout(PATIENCE) {
        printed.push(line);
    }
    assert!(child.0.wait().expect("wait").success(), "serve: {printed:?}");
    let root = store.to_str().expect("utf-8");
    let theirs = printed_ok(&["query", root, "--tenant", TENANTS[o], "--format", "json"]);
    assert!(
        !theirs.contains(MARKERS[t]),
        "the other tenant holds what {} sent: {theirs}",
        TENANTS[t]
    );
    let mine = printed_ok(&["query", root, "--tenant", TENANTS[t], "--format", "json"]);
    assert!(mine.contains(&own) && !mine.contains(&claimed), "{mine}");
    let _ = std::fs::remove_dir_all(&store);
    // The request named the other tenant itself: an answer echoing that name leaks nothing.
    out.push((printed.join("\n"), Vec::new()));
    out.push((mine, Vec::new()));
    out
}

/// The dashboard of `serve` read with tenant `t`'s token, once its own span `own` shows: every
/// JSON route, and the threads `traces` (its own, then the other tenant's: 404).
fn serve_dashboard(addr: SocketAddr, t: usize, own: &str, traces: &[String]) -> Answers {
    let deadline = Instant::now() + PATIENCE;
    let threads = "/api/threads?minutes=60&limit=500";
    let mut out = Vec::new();
    loop {
        let text = http_get(addr, threads, TOKENS[t]);
        if text.starts_with("HTTP/1.1 200") && text.contains(AGENT) {
            out.push((text, Vec::new()));
            break;
        }
        assert!(Instant::now() < deadline, "the dashboard never showed the span: {text}");
        std::thread::yield_now();
    }
    for path in
        ["/api/overview?minutes=60", "/api/logs?minutes=60&limit=500", "/api/anomalies?minutes=60"]
    {
        let text = http_get(addr, path, TOKENS[t]);
        assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
        out.push((text, Vec::new()));
    }
    for (n, trace) in traces.iter().enumerate() {
        let text = http_get(addr, &format!("/api/threads/{trace}"), TOKENS[t]);
        let (status, holds) = if n == 0 { ("HTTP/1.1 200", own) } else { ("HTTP/1.1 404", "") };
        assert!(text.starts_with(status) && text.contains(holds), "thread {trace}: {text}");
        out.push((text, vec![trace.clone()]));
    }
    out
}

/// The MCP server of `serve` over streamable HTTP with tenant `t`'s token: a session, the
/// tools that read data, `get_thread` of `traces` (its own, holding `own`, then the other
/// tenant's); every raw answer.
fn serve_mcp(addr: SocketAddr, t: usize, own: &str, traces: &[String]) -> Answers {
    let auth = format!("Bearer {}", TOKENS[t]);
    let base = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
    ];
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tenant-isolation","version":"0"}}}"#;
    let opened = http_post(addr, "/mcp", &base, init);
    let session = opened
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("mcp-session-id").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session: {opened}"));
    let headers = [base[0], base[1], base[2], ("Mcp-Session-Id", session.as_str())];
    let done = http_post(
        addr,
        "/mcp",
        &headers,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert!(done.starts_with("HTTP/1.1 202") || done.starts_with("HTTP/1.1 200"), "{done}");
    let mut calls = vec![
        ("list_threads", r#"{"limit":500}"#.to_owned()),
        ("search_events", r#"{"since_minutes":60}"#.to_owned()),
        (
            "operation_stats",
            r#"{"since_minutes":60,"group_by":["operation","agent","tenant"]}"#.to_owned(),
        ),
        ("cost_report", r#"{"since_minutes":60,"group_by":["model","agent","tenant"]}"#.to_owned()),
        ("health", "{}".to_owned()),
        // The `forecast` tool (feature `models`; without it, an unknown tool's error).
        ("forecast", r#"{"operation":"chat","threshold":"1s","since_minutes":60}"#.to_owned()),
    ];
    calls.extend(traces.iter().map(|id| ("get_thread", format!(r#"{{"thread_id":"{id}"}}"#))));
    let mut out = vec![(opened, Vec::new())];
    for (n, (tool, arguments)) in calls.iter().enumerate() {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#,
            n + 1
        );
        let text = http_post(addr, "/mcp", &headers, &call);
        assert!(text.starts_with("HTTP/1.1 200"), "{tool}: {text}");
        out.push((text, traces.to_vec()));
    }
    let own_thread = &out[out.len() - 2].0;
    assert!(own_thread.contains(own), "get_thread of its own thread: {own_thread}");
    out
}

/// A POST of an OTLP/JSON body, with a bearer token if given; the raw answer.
fn http_post_json(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> String {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    http_post(addr, path, &headers, body)
}

/// A POST with `headers`; the raw answer.
fn http_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let headers: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    String::from_utf8_lossy(&raw).into_owned()
}

/// What a command prints on stdout, asserting it succeeded.
fn printed_ok(args: &[&str]) -> String {
    let out = ctl(args);
    assert!(out.status.success(), "mission-ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dashboard --tenant-token`: every JSON route and the event stream with the tenant's token,
/// the stream read while both tenants record until the tenant's own last event arrives.
fn dashboard(w: &World, t: usize) -> Answers {
    let o = 1 - t;
    let tokens = [format!("{}:{}", TOKENS[0], TENANTS[0]), format!("{}:{}", TOKENS[1], TENANTS[1])];
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
            .args(["dashboard", w.root(), "--addr", "127.0.0.1:0"])
            .args(["--tenant-token", &tokens[0], "--tenant-token", &tokens[1]])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let rx = lines_of(&mut child);
    let banner = rx.recv_timeout(PATIENCE).expect("the dashboard says where it is");
    let addr: SocketAddr = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    let mut out = Vec::new();
    let mut paths = vec![
        "/api/overview?minutes=600".to_owned(),
        "/api/threads?minutes=600&limit=500".to_owned(),
        "/api/logs?minutes=600&limit=500".to_owned(),
        "/api/anomalies?minutes=600".to_owned(),
    ];
    paths.extend(w.probe_threads(t).into_iter().map(|id| format!("/api/threads/{id}")));
    let probe = format!("/api/threads/{}", w.own[o][0]);
    for path in paths {
        let named = path.split(['/', '?', '&', '=']).map(str::to_owned).filter(|p| p.len() > 3);
        let text = http_get(addr, &path, TOKENS[t]);
        // The other tenant's own thread is no thread of this tenant's.
        let status = if path == probe { "HTTP/1.1 404" } else { "HTTP/1.1 200" };
        assert!(text.starts_with(status), "GET {path}: {text}");
        out.push((text, named.collect()));
    }
    // The stream: subscribed once the first bytes arrive.
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    write!(
        stream,
        "GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        TOKENS[t]
    )
    .expect("write");
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    let mut read_until = |seen: &mut Vec<u8>, end: &str| {
        let mut buf = [0u8; 8192];
        while !String::from_utf8_lossy(seen).contains(end) {
            assert!(
                Instant::now() < deadline,
                "no {end:?} on the stream: {}",
                String::from_utf8_lossy(seen)
            );
            if let Ok(n) = stream.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
            }
        }
    };
    read_until(&mut seen, "event:");
    let end = format!("stream end {}", ThreadId::generate());
    w.record_change(o, w.shared[0], "streamed");
    w.flush();
    w.record_change(t, w.shared[0], &end);
    w.flush();
    read_until(&mut seen, &format!("{} {end}", MARKERS[t]));
    out.push((String::from_utf8_lossy(&seen).into_owned(), Vec::new()));
    out
}

/// Every surface, for each tenant: nothing of the other tenant in any byte printed.
#[test]
fn a_tenant_option_never_prints_another_tenants_bytes() {
    let world = World::new("every");
    for t in 0..2 {
        for surface in SURFACES {
            for (bytes, asked) in (surface.ask)(&world, t) {
                world.assert_clean(t, surface.name, &bytes, &asked);
            }
        }
    }
}

/// The suite is not vacuous: with `--tenant` a command does print its tenant's data.
#[test]
fn a_tenant_option_prints_the_tenants_own_data() {
    let world = World::new("own");
    for t in 0..2 {
        let id = world.shared[0].to_string();
        let thread = printed(&["thread", world.root(), &id, "--tenant", TENANTS[t], "--json"]);
        assert!(thread.contains(MARKERS[t]), "{thread}");
        let tail = printed(&[
            "tail",
            world.root(),
            "--tenant",
            TENANTS[t],
            "--lines",
            "1000",
            "--no-follow",
        ]);
        assert!(tail.contains(MARKERS[t]), "{tail}");
        assert_eq!(
            tail.lines().filter(|l| l.contains("log line")).count(),
            2 + SHARED_THREADS,
            "{tail}"
        );
    }
    let everyone = printed(&["tail", world.root(), "--lines", "1000", "--no-follow"]);
    assert!(everyone.contains(MARKERS[0]) && everyone.contains(MARKERS[1]), "{everyone}");
}

/// Subcommand names, as `mission-ctl help` lists them (nested ones as `audit verify`).
fn subcommands(prefix: &[&str]) -> Vec<Vec<String>> {
    let help = printed(&[prefix, &["--help"]].concat());
    let listed = help
        .split("Commands:")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    // A name is indented by two spaces; a wrapped description by more.
    for line in listed.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")) {
        let Some(name) = line.split_whitespace().next() else { continue };
        if name == "help" {
            continue;
        }
        let path: Vec<String> =
            prefix.iter().map(|s| (*s).to_owned()).chain([name.to_owned()]).collect();
        let nested: Vec<&str> = path.iter().map(String::as_str).collect();
        let deeper = subcommands(&nested);
        if deeper.is_empty() {
            out.push(path);
        } else {
            out.extend(deeper);
        }
    }
    out
}

/// Every subcommand that takes `--tenant` or `--tenant-token` has an entry in [`SURFACES`].
#[test]
fn every_tenant_option_is_in_the_suite() {
    let all = subcommands(&[]);
    assert!(all.len() >= 10, "{all:?}");
    let scoped: BTreeSet<String> = all
        .iter()
        .filter(|path| {
            let args: Vec<&str> = path.iter().map(String::as_str).chain(["--help"]).collect();
            printed(&args).contains("--tenant")
        })
        .map(|path| path.join(" "))
        .collect();
    let listed: BTreeSet<String> = SURFACES
        .iter()
        .map(|s| s.name.to_owned())
        .filter(|name| cfg!(feature = "sql") || name != "sql")
        .collect();
    assert_eq!(scoped, listed, "a subcommand with --tenant is missing from SURFACES");
}

/// `control … --tenant`: a live agent (its own store, not the world's) runs a thread of each
/// tenant under one shared id, paused with a reason carrying the tenant's marker, and a
/// directive each tenant may run; tenant `t`'s operator token acts in `t` (naming `t`) and is
/// refused naming the other tenant, whose thread stays as it was.
fn control(t: usize, command: &str) -> Answers {
    use mission_sdk::threads::{NewThread, ThreadCommand};
    use mission_sdk::{DashboardConfig, DirectiveSet, Role};
    let o = 1 - t;
    let root = std::env::temp_dir()
        .join(format!("mission-ctl-iso-control-{command}-{t}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let held = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                approve = { within = \"1h\" }\nthen = [{ action = \"pause_thread\" }]\n";
    let agent = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant(TENANTS[0])
        .without_models()
        .with_directives(DirectiveSet::from_toml_str(held, "iso").expect("toml"))
        .build()
        .expect("build");
    let operators = ["acme-operator-0123456789", "globex-operator-0123456789"];
    let mut config = DashboardConfig::loopback(0);
    for (i, token) in operators.iter().enumerate() {
        config = config.with_role_token(token, Role::Operator, Some(TENANTS[i]));
    }
    let server = agent.serve_dashboard(config).expect("dashboard");
    let url = format!("http://{}", server.local_addr());
    let registry = agent.threads();
    let shared = ThreadId::generate();
    for (i, tenant) in TENANTS.iter().enumerate() {
        let new = NewThread::new(Symbol::intern(tenant), Symbol::intern(AGENT), shared, 1);
        registry.register(new).expect("room");
        let reason = format!("{} paused", MARKERS[i]);
        registry.control(tenant, shared, ThreadCommand::Pause, "test", &reason).expect("pause");
    }
    let id = shared.to_string();
    let mut asked: Vec<Vec<&str>> = Vec::new();
    let (own, other) = (["--tenant", TENANTS[t]], ["--tenant", TENANTS[o]]);
    let base = ["control", url.as_str(), "--token", operators[t]];
    let what: Vec<&str> = if command == "run" { vec!["run", "held"] } else { vec![command, &id] };
    for tenant in [own, other] {
        asked.push(base.iter().chain(&what).chain(&tenant).copied().collect());
    }
    let mut out = Vec::new();
    for args in asked {
        let result = ctl(&args);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        let naming_other = args.contains(&TENANTS[o]);
        if naming_other {
            assert_eq!(result.status.code(), Some(1), "{args:?} is refused: {text}");
        } else {
            assert!(result.status.success(), "{args:?}: {text}");
        }
        out.push((text, vec![id.clone()]));
    }
    let state = registry.snapshot(Some(TENANTS[o]), shared, 2).expect("the other's thread").state;
    assert_eq!(state, mission_sdk::ThreadState::Paused, "{command}: the other tenant's thread");
    drop(server);
    drop(agent);
    let _ = std::fs::remove_dir_all(&root);
    out
}
