//! `mission-ctl pack`: export → import round trip, a tampered entry or manifest refused with
//! nothing imported, signatures checked against the trusted keys, and the reason to share a
//! baseline at all: an agent warm-started from another's learned baseline pages less on a
//! calm first hour than one that starts cold.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use mission_core::{LlmUsage, Recorder, SpanKind, Symbol, ThreadContext, Timestamp};
use mission_ctl::pack::{
    BASELINE_PATH, EntryKind, ExportArgs, IMPORTED_MANIFEST, ImportArgs, KeygenArgs, PackError,
    run_pack_export, run_pack_import, run_pack_keygen,
};
use mission_examples::Rng;
use mission_sdk::models::attr;
use mission_sdk::{AttrValue, EventFilter, MissionControl, ModelBaseline, ModelConfig};
use serde_json::Value;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mission-ctl-pack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const DIRECTIVES: &str = r#"
[[directive]]
name = "tool-failing"
when = "3 failures in a row"
where = { kind = "tool_call" }
group_by = ["operation"]
then = [{ action = "alert" }]
"#;

const PRICES: &str = r#"
[[price]]
provider = "acme-ai"
model = "acme-large*"
input_per_million = 3.0
output_per_million = 15.0
"#;

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;

/// One calm hour of an agent from `start`: a span every 2 s of event time, spread over a
/// few tools and an LLM call with two models, each with its usual (log-normal) latency and,
/// now and then, a slow call of the kind the agent always has (a cache miss: 1 call in 50,
/// four times slower). Nothing in it is an incident, unless `incident` names spans (by index)
/// during which `lookup_order` is three times slower.
fn calm_hour(recorder: &Recorder, tenant: &str, start: u64, seed: u64) {
    hour(recorder, tenant, start, seed, 0..0);
}

fn hour(recorder: &Recorder, tenant: &str, start: u64, seed: u64, incident: Range<u64>) {
    let mut rng = Rng::new(seed);
    let thread = ThreadContext::new(Symbol::intern(tenant), Symbol::intern("support-bot"));
    let ops: [(SpanKind, &str, &str, f64); 5] = [
        (SpanKind::ToolCall, "search_docs", "", 300.0),
        (SpanKind::ToolCall, "lookup_order", "", 120.0),
        (SpanKind::Retrieval, "kb", "", 80.0),
        (SpanKind::LlmCall, "chat", "acme-large", 1800.0),
        (SpanKind::LlmCall, "chat", "acme-small", 700.0),
    ];
    for i in 0..1800u64 {
        let (kind, name, model, median) = ops[(i % ops.len() as u64) as usize];
        let t = start + i * 2 * SECOND;
        let mut span =
            recorder.start_span_at(&thread, kind, Symbol::intern(name), None, Timestamp(t));
        if kind == SpanKind::LlmCall {
            span.set_llm_usage(LlmUsage {
                model: Symbol::intern(model),
                provider: Symbol::intern("acme-ai"),
                input_tokens: 700 + (rng.uniform() * 200.0) as u32,
                output_tokens: 80 + (rng.uniform() * 40.0) as u32,
                ..LlmUsage::default()
            });
        }
        let mut slow = if rng.uniform() < 0.02 { 4.0 } else { 1.0 };
        if incident.contains(&i) && name == "lookup_order" {
            slow *= 3.0;
        }
        let ms = rng.lognormal(median, 0.3) * slow;
        span.end_at(Timestamp(t + (ms * 1e6) as u64));
    }
}

fn models() -> ModelConfig {
    ModelConfig::default().with_memory_interval(None).with_save_every(None)
}

/// An agent's store whose models learned a calm hour (state saved at shutdown).
fn learned_store(name: &str, tenant: &str) -> PathBuf {
    let store = temp_dir(name);
    let control = MissionControl::builder()
        .ignore_environment()
        .with_tenant(tenant)
        .with_store_root(&store)
        .with_models(models())
        .build()
        .expect("agent");
    calm_hour(control.recorder(), tenant, Timestamp::now().0 - 4 * HOUR, 11);
    control.flush().expect("flush");
    drop(control);
    assert!(store.join(mission_sdk::MODEL_STATE_FILE).is_file(), "no model state saved");
    store
}

/// A directory with a directive file and a price table.
fn files(dir: &Path) -> (PathBuf, PathBuf) {
    let directives = dir.join("guards.toml");
    std::fs::write(&directives, DIRECTIVES).expect("write");
    let prices = dir.join("prices.toml");
    std::fs::write(&prices, PRICES).expect("write");
    (directives, prices)
}

fn export(args: &ExportArgs) -> Result<(), PackError> {
    let mut out = Vec::new();
    run_pack_export(args, &mut out).map(drop)
}

fn import(pack: &Path, into: &Path, trust: &[String]) -> Result<(), PackError> {
    let args = ImportArgs {
        pack: pack.to_path_buf(),
        into: into.to_path_buf(),
        trust: trust.to_vec(),
        ..ImportArgs::default()
    };
    run_pack_import(&args, &mut Vec::new()).map(drop)
}

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("under").display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn export_then_import_round_trips_every_entry() {
    let store = learned_store("round-trip-store", "acme");
    let dir = temp_dir("round-trip");
    let (directives, prices) = files(&dir);
    let pack = dir.join("team.pack");
    let mut out = Vec::new();
    let manifest = run_pack_export(
        &ExportArgs {
            out: pack.clone(),
            directives: vec![directives.clone()],
            compliance: vec!["hipaa".into()],
            prices: Some(prices.clone()),
            store: Some(store.clone()),
            source: Some("team-a".into()),
            ..ExportArgs::default()
        },
        &mut out,
    )
    .expect("export");
    assert_eq!(manifest.format_version, mission_ctl::pack::FORMAT_VERSION);
    assert_eq!(manifest.source, "team-a");
    let kinds: Vec<EntryKind> = manifest.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EntryKind::Directives, EntryKind::Compliance, EntryKind::Prices, EntryKind::Baseline]
    );
    assert!(manifest.entries.iter().all(|e| e.sha256.len() == 64), "{manifest:?}");

    let into = dir.join("imported");
    let args = ImportArgs { pack: pack.clone(), into: into.clone(), ..ImportArgs::default() };
    let mut out = Vec::new();
    let report = run_pack_import(&args, &mut out).expect("import");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("signature: none"), "{text}");
    assert!(text.contains("MISSION_MODEL_BASELINE="), "{text}");
    assert_eq!(report.manifest, manifest);
    assert_eq!(
        listing(&into),
        [
            "compliance/hipaa.json",
            "directives/guards.toml",
            "models/baseline.json",
            IMPORTED_MANIFEST,
            "prices.toml"
        ]
    );
    // Byte for byte what was exported, and each readable by an agent.
    assert_eq!(std::fs::read_to_string(into.join("directives/guards.toml")).unwrap(), DIRECTIVES);
    assert_eq!(std::fs::read_to_string(into.join("prices.toml")).unwrap(), PRICES);
    let saved = ModelBaseline::read(&store.join(mission_sdk::MODEL_STATE_FILE)).expect("state");
    let imported = ModelBaseline::read(&into.join(BASELINE_PATH)).expect("baseline");
    assert_eq!(imported.to_json(), saved.to_json());
    assert!(imported.streams() >= 4, "{} streams", imported.streams());
    let hipaa =
        mission_sdk::compliance::CompliancePack::from_file(into.join("compliance/hipaa.json"))
            .expect("compliance pack");
    assert_eq!(hipaa, mission_sdk::compliance::CompliancePack::preset("hipaa").unwrap());
    mission_sdk::DirectiveSet::from_file(into.join("directives/guards.toml")).expect("directives");
    let record: Value =
        serde_json::from_slice(&std::fs::read(into.join(IMPORTED_MANIFEST)).unwrap()).unwrap();
    assert_eq!(record["manifest"]["source"], "team-a");

    // An agent starts with all of it.
    let agent = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_directives_file(into.join("directives/guards.toml"))
        .with_model_baseline(into.join(BASELINE_PATH))
        .build()
        .expect("an agent with the imported files");
    drop(agent);
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrites one field of a pack file.
fn edit(pack: &Path, change: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_slice(&std::fs::read(pack).unwrap()).unwrap();
    change(&mut doc);
    std::fs::write(pack, serde_json::to_vec(&doc).unwrap()).unwrap();
}

#[test]
fn a_tampered_entry_is_a_digest_error_and_nothing_is_imported() {
    let dir = temp_dir("tampered");
    let (directives, prices) = files(&dir);
    let pack = dir.join("team.pack");
    let args = ExportArgs {
        out: pack.clone(),
        directives: vec![directives],
        prices: Some(prices),
        ..ExportArgs::default()
    };
    export(&args).expect("export");
    // A price changed in the pack: still valid TOML, still a valid table — only the digest
    // tells.
    let b64 = base64::engine::general_purpose::STANDARD;
    edit(&pack, |doc| {
        let entry = doc["entries"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["path"] == "prices.toml")
            .unwrap();
        let text = String::from_utf8(b64.decode(entry["data"].as_str().unwrap()).unwrap()).unwrap();
        let cheaper = text.replace("15.0", "1.50");
        assert_ne!(text, cheaper);
        entry["data"] = b64.encode(cheaper).into();
    });
    let into = dir.join("imported");
    let err = import(&pack, &into, &[]).expect_err("a tampered pack is refused");
    assert!(
        matches!(&err, PackError::Digest { path, .. } if path == "prices.toml")
            || matches!(&err, PackError::Size { path, .. } if path == "prices.toml"),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 1);
    assert!(listing(&into).is_empty(), "imported despite the error: {:?}", listing(&into));

    // The same with a byte-for-byte equal length change: the digest, not the size, catches it.
    export(&args).expect("export");
    edit(&pack, |doc| {
        let entry = &mut doc["entries"][0];
        let mut bytes = b64.decode(entry["data"].as_str().unwrap()).unwrap();
        let at = bytes.iter().position(|b| *b == b'3').unwrap();
        bytes[at] = b'9';
        entry["data"] = b64.encode(bytes).into();
    });
    let err = import(&pack, &into, &[]).expect_err("refused");
    assert!(matches!(&err, PackError::Digest { .. }), "{err:?}");
    assert!(listing(&into).is_empty());

    // An entry dropped, one added, a damaged file: typed errors, nothing written.
    export(&args).expect("export");
    edit(&pack, |doc| {
        doc["entries"].as_array_mut().unwrap().pop();
    });
    assert!(matches!(import(&pack, &into, &[]), Err(PackError::Missing(_))));
    export(&args).expect("export");
    edit(&pack, |doc| {
        let extra = serde_json::json!({"path": "directives/extra.toml", "data": ""});
        doc["entries"].as_array_mut().unwrap().push(extra);
    });
    assert!(matches!(import(&pack, &into, &[]), Err(PackError::Unlisted(_))));
    std::fs::write(&pack, b"{\"format\": \"mission-control-pack\", \"manif").unwrap();
    assert!(matches!(import(&pack, &into, &[]), Err(PackError::Malformed(_))));
    assert!(listing(&into).is_empty());

    // From the command line: exit code 1, said on stderr.
    export(&args).expect("export");
    edit(&pack, |doc| {
        let entry = &mut doc["entries"][0];
        let text = String::from_utf8(b64.decode(entry["data"].as_str().unwrap()).unwrap()).unwrap();
        entry["data"] = b64.encode(text.replace("3 failures", "9 failures")).into();
    });
    let run = Command::new(env!("CARGO_BIN_EXE_mission-ctl"))
        .args(["pack", "import"])
        .arg(&pack)
        .arg("--into")
        .arg(&into)
        .output()
        .expect("run mission-ctl");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SHA-256") && stderr.contains("nothing was imported"), "{stderr}");
    assert!(listing(&into).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_signed_pack_is_verified_and_a_wrong_key_or_a_changed_manifest_is_refused() {
    let dir = temp_dir("signed");
    let (directives, _) = files(&dir);
    let key = dir.join("team.key");
    let public =
        run_pack_keygen(&KeygenArgs { out: key.clone() }, &mut Vec::new()).expect("keygen");
    let other = dir.join("other.key");
    let other_public =
        run_pack_keygen(&KeygenArgs { out: other.clone() }, &mut Vec::new()).expect("keygen");
    assert_ne!(public, other_public);
    // Never overwrites a key.
    assert!(matches!(
        run_pack_keygen(&KeygenArgs { out: key.clone() }, &mut Vec::new()),
        Err(PackError::Io { .. })
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secret key is readable by others: {mode:o}");
    }

    let pack = dir.join("signed.pack");
    let args = ExportArgs {
        out: pack.clone(),
        directives: vec![directives.clone()],
        sign: Some(key.clone()),
        ..ExportArgs::default()
    };
    export(&args).expect("signed export");
    let into = dir.join("imported");

    // The right key, as hex or as the .pub file keygen wrote.
    let pub_file = dir.join("team.key.pub").display().to_string();
    for trust in [public.clone(), pub_file] {
        let args = ImportArgs {
            pack: pack.clone(),
            into: into.clone(),
            trust: vec![trust],
            ..ImportArgs::default()
        };
        let report = run_pack_import(&args, &mut Vec::new()).expect("verified import");
        assert!(report.trusted);
        assert_eq!(report.signer.as_deref(), Some(public.as_str()));
        std::fs::remove_dir_all(&into).unwrap();
    }

    // The wrong key: refused, nothing imported.
    let err =
        import(&pack, &into, std::slice::from_ref(&other_public)).expect_err("untrusted signer");
    assert!(matches!(&err, PackError::Untrusted { signer } if *signer == public), "{err:?}");
    assert!(listing(&into).is_empty());

    // Signed by the other key while the team's is trusted: refused too.
    export(&ExportArgs { sign: Some(other.clone()), ..args.clone() }).expect("export");
    assert!(matches!(
        import(&pack, &into, std::slice::from_ref(&public)),
        Err(PackError::Untrusted { .. })
    ));

    // A manifest changed after signing (its digest edited to match a changed entry): the
    // signature no longer verifies, even with no --trust.
    export(&args).expect("export");
    edit(&pack, |doc| {
        let manifest = doc["manifest"].as_str().unwrap();
        let manifest = manifest.replacen("\"source\":\"", "\"source\":\"x", 1);
        assert_ne!(manifest, doc["manifest"].as_str().unwrap());
        doc["manifest"] = manifest.into();
    });
    for trust in [vec![], vec![public.clone()]] {
        let err = import(&pack, &into, &trust).expect_err("changed manifest");
        assert!(matches!(&err, PackError::BadSignature { .. }), "{err:?}");
    }
    // The signature itself damaged.
    export(&args).expect("export");
    edit(&pack, |doc| {
        let value = doc["signature"]["value"].as_str().unwrap().to_owned();
        let flipped = if value.starts_with('0') { "1" } else { "0" };
        doc["signature"]["value"] = format!("{flipped}{}", &value[1..]).into();
    });
    assert!(matches!(
        import(&pack, &into, std::slice::from_ref(&public)),
        Err(PackError::BadSignature { .. })
    ));

    // An unsigned pack when a signature is asked for.
    export(&ExportArgs { sign: None, ..args.clone() }).expect("export");
    assert!(matches!(
        import(&pack, &into, std::slice::from_ref(&public)),
        Err(PackError::Unsigned)
    ));
    assert!(listing(&into).is_empty());
    // A bad --trust is a usage error (exit code 2), not a verification failure.
    let err = import(&pack, &into, &["not-a-key".into()]).expect_err("bad key");
    assert!(matches!(err, PackError::Key { .. }) && err.exit_code() == 2, "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_with_a_tenant_keeps_that_tenants_baselines_only() {
    // Two tenants' agents wrote one store; the pack carries both, import keeps one.
    let store = learned_store("tenants-store", "acme");
    let other = learned_store("tenants-other", "globex");
    let merged = {
        let a = std::fs::read(store.join(mission_sdk::MODEL_STATE_FILE)).unwrap();
        let b = std::fs::read(other.join(mission_sdk::MODEL_STATE_FILE)).unwrap();
        let mut a: Value = serde_json::from_slice(&a).unwrap();
        let b: Value = serde_json::from_slice(&b).unwrap();
        let more = b["streams"].as_array().unwrap().clone();
        a["streams"].as_array_mut().unwrap().extend(more);
        serde_json::to_vec(&a).unwrap()
    };
    let dir = temp_dir("tenants");
    let state = dir.join("state.json");
    std::fs::write(&state, merged).unwrap();
    let all = ModelBaseline::read(&state).unwrap();
    assert_eq!(all.tenants(), ["acme", "globex"]);
    let pack = dir.join("both.pack");
    export(&ExportArgs { out: pack.clone(), baseline: Some(state), ..ExportArgs::default() })
        .expect("export");
    let into = dir.join("acme");
    let args = ImportArgs {
        pack: pack.clone(),
        into: into.clone(),
        tenant: Some("acme".into()),
        ..ImportArgs::default()
    };
    let report = run_pack_import(&args, &mut Vec::new()).expect("import");
    let imported = ModelBaseline::read(&into.join(BASELINE_PATH)).unwrap();
    assert_eq!(imported.tenants(), ["acme"]);
    assert_eq!(report.baseline_streams, imported.streams());
    assert_eq!(report.baseline_streams + report.skipped_streams, all.streams());
    assert!(report.skipped_streams > 0);
    for d in [store, other, dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// What an agent of tenant `acme` (its own new store) makes of an hour, warm-started from
/// `baseline` or cold: its model counters and the operations its anomalies name.
fn first_hour(
    name: &str,
    baseline: Option<&Path>,
    start: u64,
    incident: Range<u64>,
) -> (mission_sdk::ModelStats, Vec<String>) {
    let store = temp_dir(name);
    let mut builder = MissionControl::builder()
        .ignore_environment()
        .with_tenant("acme")
        .with_store_root(&store)
        .with_models(models());
    if let Some(path) = baseline {
        builder = builder.with_model_baseline(path);
    }
    let control = builder.build().expect("agent");
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    hour(control.recorder(), "acme", start, 29, incident);
    control.flush().expect("flush");
    let stats = control.model_stats().expect("models on");
    let mut operations = Vec::new();
    while let Some(e) = live.try_recv() {
        let op = e.attributes.iter().find(|a| a.key.as_str() == attr::OPERATION);
        operations.push(match op.map(|a| &a.value) {
            Some(AttrValue::Str(s)) => s.as_str().to_owned(),
            _ => String::new(),
        });
    }
    drop(control);
    let _ = std::fs::remove_dir_all(&store);
    (stats, operations)
}

/// Team A's agent learned a calm hour and shares its baseline as a signed pack; team B
/// imports it. Returns the imported baseline's path (and the directories to remove).
fn shared_baseline(name: &str) -> (PathBuf, [PathBuf; 2]) {
    let learned = learned_store(&format!("{name}-learned"), "acme");
    let dir = temp_dir(name);
    let key = dir.join("a.key");
    let public = run_pack_keygen(&KeygenArgs { out: key.clone() }, &mut Vec::new()).unwrap();
    let pack = dir.join("a.pack");
    export(&ExportArgs {
        out: pack.clone(),
        store: Some(learned.clone()),
        tenant: Some("acme".into()),
        sign: Some(key),
        ..ExportArgs::default()
    })
    .expect("export");
    let into = dir.join("shared");
    import(&pack, &into, &[public]).expect("import");
    (into.join(BASELINE_PATH), [learned, dir])
}

/// The calm first hour: a warm start raises no more false alarms than a cold one (on these
/// detectors, which stay silent while they learn, a cold start raises none either: the
/// measured numbers are in the commit message), and at most 2.
#[test]
fn a_warm_started_agent_raises_no_more_false_alarms_than_a_cold_start_on_a_calm_hour() {
    let (baseline, dirs) = shared_baseline("warm-calm");
    let start = Timestamp::now().0 - 3 * HOUR;
    let (warm, warm_ops) = first_hour("warm-calm-agent", Some(&baseline), start, 0..0);
    let (cold, cold_ops) = first_hour("cold-calm-agent", None, start, 0..0);
    eprintln!("calm first hour: warm {warm:?} {warm_ops:?}\ncold {cold:?} {cold_ops:?}");
    assert_eq!(warm.restored_streams, 0, "a new agent has no state of its own");
    assert_eq!(warm.baseline_streams, 4, "{warm:?}");
    assert_eq!((cold.baseline_streams, warm.points), (0, cold.points));
    assert!(warm.anomalies <= cold.anomalies, "warm {warm_ops:?}, cold {cold_ops:?}");
    assert!(warm.anomalies <= 2, "false alarms of the warm start: {warm_ops:?}");
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// What sharing buys: in its first minutes a new agent is blind on a cold start (its
/// detectors are still learning), and pages on a tripled tool latency when warm-started.
#[test]
fn a_warm_started_agent_catches_an_incident_in_its_first_minutes_that_a_cold_start_misses() {
    let (baseline, dirs) = shared_baseline("warm-incident");
    let start = Timestamp::now().0 - 3 * HOUR;
    // From minute 5 to minute 15: lookup_order's 30th to 90th calls.
    let incident = 150..450;
    let (warm, warm_ops) = first_hour("warm-inc-agent", Some(&baseline), start, incident.clone());
    let (cold, cold_ops) = first_hour("cold-inc-agent", None, start, incident);
    eprintln!("incident in the first hour: warm {warm_ops:?}, cold {cold_ops:?}");
    assert!(warm_ops.iter().any(|op| op == "lookup_order"), "warm missed it: {warm:?}");
    assert!(warm_ops.iter().all(|op| op == "lookup_order"), "warm paged elsewhere: {warm_ops:?}");
    assert!(!cold_ops.iter().any(|op| op == "lookup_order"), "cold caught it: {cold:?}");
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
