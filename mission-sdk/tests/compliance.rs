//! Compliance packs, erasure by subject and the audit trail's anchors in the data files, through
//! `MissionControl` and a real store on disk.

use std::path::PathBuf;

use mission_sdk::audit::{self, AuditProblemKind};
use mission_sdk::compliance::CompliancePack;
use mission_sdk::core::{LogRecord, Symbol, Text, ThreadContext};
use mission_sdk::{EventBody, Level, MissionControl, PolicySet, SpanId};

fn temp_root(name: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("mission-compliance-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

const KEY: &str = "a-redaction-key-of-some-length";

fn audit_kinds(root: &std::path::Path) -> Vec<(String, String, serde_json::Value)> {
    let text = std::fs::read_to_string(root.join("audit").join("audit.jsonl")).expect("audit log");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("record");
            (
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["tenant"].as_str().unwrap_or_default().to_owned(),
                v["detail"].clone(),
            )
        })
        .collect()
}

/// Logs `message` under `tenant` through the recorder (one MissionControl serves one tenant
/// through its agent API; a multi-tenant gateway records like this).
fn log_as(control: &MissionControl, tenant: &str, message: &str) {
    let thread = ThreadContext::new(Symbol::intern(tenant), Symbol::intern("gateway"));
    let body = EventBody::Log(LogRecord {
        level: Level::Info,
        target: Symbol::intern("gateway"),
        message: Text::new(message),
    });
    control.recorder().record(thread.event(Symbol::intern("log"), SpanId::NONE, body));
}

#[test]
fn a_tenant_pack_redacts_audits_access_and_is_itself_audited() {
    let root = temp_root("hipaa");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_tenant("clinic")
        .with_store_root(&root)
        .with_redaction(mission_sdk::RedactionConfig::with_key(KEY).with_default(
            mission_sdk::redact::RedactionRules {
                emails: false,
                capture_content: true,
                ..Default::default()
            },
        ))
        .with_tenant_compliance("clinic", CompliancePack::preset("hipaa").unwrap())
        .with_policy(PolicySet::from_toml_str("default = \"allow\"").unwrap())
        .build()
        .unwrap();
    assert_eq!(control.compliance().len(), 1);
    log_as(&control, "clinic", "patient jane@example.org, MRN-0012345");
    log_as(&control, "retail", "customer bob@example.org");
    assert!(control.permit("triage-bot", "tool.call", "ehr_lookup").allowed);
    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let messages = |tenant: &str| -> String {
        let batches = store.query().tenant(tenant).kind("log").batches().unwrap();
        format!("{batches:?}")
    };
    let clinic = messages("clinic");
    assert!(!clinic.contains("jane@example.org"), "{clinic}");
    assert!(!clinic.contains("MRN-0012345"), "the pack's own pattern applies: {clinic}");
    assert!(clinic.contains("[email:") && clinic.contains("[mrn:"), "{clinic}");
    assert!(messages("retail").contains("bob@example.org"), "retail is not covered");
    drop(store);
    drop(control);

    let records = audit_kinds(&root);
    let compliance = records.iter().find(|r| r.0 == audit::kind::COMPLIANCE).expect("recorded");
    assert_eq!(compliance.1, "clinic");
    assert_eq!(compliance.2["pack"], "hipaa");
    assert_eq!(compliance.2["retention"], "7776000s");
    let granted =
        records.iter().find(|r| r.0 == audit::kind::PERMISSION_GRANTED).expect("access audited");
    assert_eq!(granted.2["resource"], "ehr_lookup");
    let report = audit::verify(&root).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn packs_need_a_key_and_a_store_and_name_bad_specs() {
    let no_key = MissionControl::builder()
        .ignore_environment()
        .with_store_root(temp_root("nokey"))
        .with_compliance(CompliancePack::preset("pci").unwrap())
        .build()
        .expect_err("refused");
    assert!(no_key.to_string().contains("MISSION_REDACTION_KEY"), "{no_key}");
    let no_store = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_redaction(mission_sdk::RedactionConfig::with_key(KEY))
        .with_compliance(CompliancePack::preset("soc2").unwrap())
        .build()
        .expect_err("refused");
    assert!(no_store.to_string().contains("store"), "{no_store}");
    let config = mission_sdk::MissionConfig::default().with_compliance(vec!["sox".into()]);
    let unknown = MissionControl::builder()
        .ignore_environment()
        .with_config(config)
        .with_store_root(temp_root("unknown"))
        .build()
        .expect_err("refused");
    assert!(unknown.to_string().contains("unknown pack \"sox\""), "{unknown}");
}

#[test]
fn erase_subject_removes_the_rows_and_audits_a_digest_not_the_value() {
    let root = temp_root("erase");
    let control =
        MissionControl::builder().ignore_environment().with_store_root(&root).build().unwrap();
    let agent = control.agent("support");
    for user in ["u-1", "u-2", "u-1"] {
        let mut thread = agent.thread();
        thread.root().set_attribute("user.id", user);
        thread.tool_call("lookup").end();
        thread.end();
    }
    let empty = control.erase_subject("dpo@acme", None, "user.id", "").unwrap_err().to_string();
    assert!(empty.contains("erase_subject: the attribute key and value must not be empty"));
    // Unflushed events are covered: erase_subject flushes first.
    let report = control.erase_subject("dpo@acme", Some("default"), "user.id", "u-1").unwrap();
    assert_eq!(report.events, 2);
    assert!(report.audit_seq.is_some());
    let store = control.store().unwrap().unwrap();
    assert_eq!(store.query().attribute("user.id", "u-1").count().unwrap(), 0);
    assert_eq!(store.query().attribute("user.id", "u-2").count().unwrap(), 1);
    drop(store);
    drop(control);
    let records = audit_kinds(&root);
    let erasure = records.iter().find(|r| r.0 == audit::kind::ERASURE).expect("audited");
    assert_eq!(erasure.2["events"], 2);
    assert_eq!(erasure.2["key"], "user.id");
    let log = std::fs::read_to_string(root.join("audit").join("audit.jsonl")).unwrap();
    assert!(!log.contains("u-1"), "the value itself is not in the trail");
    assert_eq!(erasure.2["value_sha256"].as_str().map(str::len), Some(64));
    let _ = std::fs::remove_dir_all(&root);
}

/// Rewrites the audit log as a forger would: same records but one changed, every hash
/// recomputed, so the chain alone checks out.
fn forge(root: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = root.join("audit").join("audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut prev = audit::GENESIS_HASH.to_owned();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        edit(&mut v);
        v["prev_hash"] = prev.clone().into();
        let mut record: audit::AuditRecord = serde_json::from_value(v).unwrap();
        record.hash = record.compute_hash();
        prev = record.hash.clone();
        out.push_str(record.to_line().trim_end());
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
}

#[test]
fn data_files_anchor_the_chain_so_a_rehashed_or_shortened_log_is_caught() {
    let root = temp_root("anchor");
    let policy = PolicySet::from_toml_str(
        "default = \"allow\"\n[[rule]]\nname = \"no-refunds\"\neffect = \"deny\"\naction = \"refund\"\n",
    )
    .unwrap();
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_policy(policy)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(!control.permit("bot", "refund", "order-1").allowed);
    }
    control.agent("a").thread().end();
    drop(control); // finalizes the data file, anchoring seq 3
    let report = audit::verify(&root).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert!(report.anchors_checked >= 1, "{report:?}");
    assert_eq!(report.head.seq, 3);

    // Same records, one actor changed, every hash recomputed: the chain checks out, the
    // anchor does not.
    let pristine = std::fs::read_to_string(root.join("audit").join("audit.jsonl")).unwrap();
    forge(&root, |v| {
        if v["seq"] == 2 {
            v["actor"] = "someone-else".into();
        }
    });
    let problem = audit::verify(&root).unwrap().problem.expect("caught");
    assert_eq!(problem.kind, AuditProblemKind::AnchorMismatch, "{problem}");
    assert_eq!(problem.seq, Some(3));

    // The last record cut off (the rest intact): the anchor names a seq past the end.
    let kept: String = pristine.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(root.join("audit").join("audit.jsonl"), kept).unwrap();
    let problem = audit::verify(&root).unwrap().problem.expect("caught");
    assert_eq!(problem.kind, AuditProblemKind::MissingTail, "{problem}");
    assert_eq!(problem.seq, Some(3));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn captures_content_says_whether_the_tenants_content_is_kept() {
    let root = temp_root("captures");
    let captures = |tenant: &str, capture: &[&str], hipaa: bool| {
        let mut builder = MissionControl::builder()
            .ignore_environment()
            .with_tenant(tenant)
            .with_store_root(&root)
            .without_models()
            .with_content_capture(capture.iter().copied());
        if hipaa {
            builder = builder
                .with_tenant_compliance(tenant, CompliancePack::preset("hipaa").unwrap())
                .with_redaction_key(KEY);
        }
        let control = builder.build().unwrap();
        let captures = control.captures_content();
        control.shutdown();
        captures
    };
    assert!(!captures("acme", &[], false), "content is off by default");
    assert!(captures("acme", &["acme"], false));
    assert!(!captures("acme", &["retail"], false));
    assert!(captures("acme", &["*"], false));
    assert!(!captures("clinic", &["clinic"], true), "hipaa keeps content off");
    assert!(!captures("clinic", &["*"], true), "hipaa keeps content off");
    let _ = std::fs::remove_dir_all(&root);
}

/// A pack's `[budget]` puts every thread of its tenant under it: a plain thread gets it, a
/// budget in code is narrowed by it; a bad budget in a pack is refused naming it.
#[test]
fn a_packs_budget_narrows_every_thread() {
    let pack = CompliancePack::from_toml_str(
        "name = \"spend-cap\"\nretention = \"30d\"\n[budget]\ntokens = 1000\nhard = true\n",
        "test pack",
    )
    .expect("a pack");
    let root = temp_root("pack-budget");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_redaction_key(KEY)
        .with_compliance(pack)
        .build()
        .expect("build");
    assert_eq!(control.pack_budget().and_then(|b| b.tokens), Some(1000));
    let agent = control.agent("researcher");
    let spend = |thread: &mission_sdk::Thread<'_>, tokens: u32| {
        let mut call = thread.llm_call("gpt-4o-mini", "openai");
        call.record_usage(tokens / 2, tokens - tokens / 2);
    };
    let plain = agent.thread();
    spend(&plain, 900);
    assert!(!plain.should_stop());
    spend(&plain, 200);
    assert!(plain.should_stop(), "the pack's 1,000 tokens hold for a thread without a budget");
    let generous =
        agent.thread_with_budget(mission_sdk::Budget::new().with_tokens(50_000).unwrap());
    spend(&generous, 1_200);
    assert!(generous.should_stop(), "a budget in code is narrowed by the pack's");
    assert!(
        matches!(
            generous.try_llm_call("gpt-4o-mini", "openai"),
            Err(mission_sdk::Error::BudgetExceeded { .. })
        ),
        "the pack's budget is hard"
    );
    drop((plain, generous));
    drop(control);
    let bad = CompliancePack::from_toml_str(
        "name = \"x\"\nretention = \"30d\"\n[budget]\ncost_usd = -1.0\n",
        "bad pack",
    )
    .expect_err("refused");
    assert!(bad.to_string().contains("budget"), "{bad}");
    let _ = std::fs::remove_dir_all(&root);
}
