//! Governance building blocks: redaction before events leave the process, policy decisions
//! recorded as queryable events, and the hash-chained audit trail.

use mission_core::testing::{CountingAllocator, allocations};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use mission_core::{
    AttrValue, Backpressure, Decision, EventBody, Level, LogRecord, PermissionDecision, Pipeline,
    SpanEnd, Status, Symbol, Text, ThreadContext,
};
use mission_store::{ParquetSink, Store, StoreConfig};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[path = "../../mission-sdk/tests/support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

/// Every cell of every batch that has a text form (not the time zone-stamped time), as
/// `column=value` joined by ` | `, one string per row.
fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let columns: Vec<(&str, ArrayFormatter<'_>)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .filter_map(|(f, c)| {
                ArrayFormatter::try_new(c.as_ref(), &options)
                    .ok()
                    .map(|fmt| (f.name().as_str(), fmt))
            })
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> =
                columns.iter().map(|(name, fmt)| format!("{name}={}", fmt.value(row))).collect();
            rows.push(cells.join(" | "));
        }
    }
    rows
}

#[path = "../../mission-sdk/tests/support/secrets.rs"]
mod secrets;

mod redaction {
    use super::secrets::{api_key, card, email, luhn_invalid_run};
    use super::*;
    use mission_govern::redact::{
        CONTENT_OMITTED, RedactingSink, RedactionConfig, RedactionOverride, Redactor,
    };
    use proptest::prelude::*;

    const KEY: &str = "governance-test-key-0123456789";

    fn redactor() -> Redactor {
        Redactor::new(RedactionConfig::with_key(KEY)).expect("redactor")
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 .,;:!?()#/=_-]{0,40}"
    }

    fn letters() -> impl Strategy<Value = String> {
        "[a-zA-Z .,;:!?()]{0,40}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_card_survives(pre in text(), card in card(), post in text()) {
            let input = format!("{pre} {card} {post}");
            let (out, n) = redactor().redact_str("acme", &input);
            prop_assert!(n >= 1);
            prop_assert!(!out.contains(&card), "{input} -> {out}");
        }

        #[test]
        fn no_email_survives(pre in text(), email in email(), post in text()) {
            let input = format!("{pre} {email} {post}");
            let (out, _) = redactor().redact_str("acme", &input);
            prop_assert!(!out.contains(&email), "{input} -> {out}");
        }

        #[test]
        fn no_api_key_survives(pre in text(), (shown, secret) in api_key(), post in text()) {
            let input = format!("{pre} {shown} {post}");
            let (out, _) = redactor().redact_str("acme", &input);
            prop_assert!(!out.contains(&secret), "{input} -> {out}");
        }

        #[test]
        fn luhn_invalid_runs_are_kept(pre in letters(), run in luhn_invalid_run(), post in letters()) {
            let input = format!("{pre} {run} {post}");
            let (out, _) = redactor().redact_str("acme", &input);
            prop_assert!(out.contains(&run), "{input} -> {out}");
            prop_assert!(!out.contains("[card:") && !out.contains("[phone:"), "{input} -> {out}");
        }

        #[test]
        fn redacting_twice_changes_nothing(pre in text(), email in email(), card in card()) {
            let r = redactor();
            let input = format!("{pre} {email} {card}");
            let once = r.redact_str("acme", &input).0.into_owned();
            let (twice, n) = r.redact_str("acme", &once);
            prop_assert_eq!(n, 0);
            prop_assert_eq!(twice.as_ref(), once.as_str());
        }
    }

    #[test]
    fn same_value_same_token_different_key_different_token() {
        let a = redactor();
        let (x, _) = a.redact_str("acme", "from jo@example.com");
        let (y, _) = a.redact_str("other", "to jo@example.com, again");
        let token = a.token("email", "jo@example.com");
        assert_eq!(x, format!("from {token}"));
        assert_eq!(y, format!("to {token}, again"));
        assert!(token.starts_with("[email:") && token.len() == "[email:]".len() + 8, "{token}");
        assert!(token[7..15].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a.token("email", "jo@example.org"), token);
        let b = Redactor::new(RedactionConfig::with_key("another-key-0123456789")).expect("b");
        assert_ne!(b.token("email", "jo@example.com"), token);
    }

    #[test]
    fn short_keys_and_bad_patterns_are_refused() {
        let err = Redactor::new(RedactionConfig::with_key("short")).expect_err("short key");
        assert!(err.to_string().contains("key"), "{err}");
        let config: RedactionConfig = toml::from_str(&format!(
            "key = \"{KEY}\"\n[[default.patterns]]\nlabel = \"bad label\"\nprefix = \"T-\"\n"
        ))
        .expect("parses");
        let err = Redactor::new(config).expect_err("bad label");
        assert!(err.to_string().contains("default.patterns[0].label"), "{err}");
        let err = toml::from_str::<RedactionConfig>("key = \"x\"\n[default]\nemail = true\n")
            .expect_err("unknown field");
        assert!(err.to_string().contains("line 3") && err.to_string().contains("email"), "{err}");
    }

    #[test]
    fn every_text_field_of_an_event_is_redacted() {
        let r = redactor();
        let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("bot"));
        let mut log = thread.event(
            Symbol::intern("log"),
            mission_core::SpanId::NONE,
            EventBody::Log(LogRecord {
                level: Level::Info,
                target: Symbol::intern("t"),
                message: Text::new("mail jo@example.com from 10.1.2.3"),
            }),
        );
        log.attributes.set(Symbol::intern("user.email"), "jo@example.com");
        log.attributes.set(Symbol::intern("attempt"), 3i64);
        log.attributes.set(Symbol::intern("gen_ai.prompt"), "my card is 4111 1111 1111 1111");
        log.attributes.set(Symbol::intern("tool.output.content"), "whatever the tool said");
        log.attributes.set(Symbol::intern("plain"), "nothing to see");
        assert!(r.needs_redaction(&log));
        assert_eq!(r.redact_event(&mut log), 5);
        let EventBody::Log(l) = &log.body else { unreachable!() };
        assert!(l.message.starts_with("mail [email:") && l.message.contains("from [ip:"));
        let attr = |k: &str| log.attributes.get(Symbol::intern(k)).cloned();
        assert_eq!(
            attr("user.email"),
            Some(AttrValue::string(&r.token("email", "jo@example.com")))
        );
        assert_eq!(attr("attempt"), Some(AttrValue::Int(3)));
        assert_eq!(attr("gen_ai.prompt"), Some(AttrValue::string(CONTENT_OMITTED)));
        assert_eq!(attr("tool.output.content"), Some(AttrValue::string(CONTENT_OMITTED)));
        assert_eq!(attr("plain"), Some(AttrValue::string("nothing to see")));
        assert!(!r.needs_redaction(&log), "a redacted event needs nothing more");

        let mut span = thread.event(
            Symbol::intern("tool"),
            mission_core::SpanId::generate(),
            EventBody::Span(SpanEnd::default()),
        );
        if let EventBody::Span(s) = &mut span.body {
            s.set_error("auth failed for key sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345");
        }
        assert_eq!(r.redact_event(&mut span), 1);
        assert!(span.as_span().expect("span").error_message.contains("[anthropic_key:"));

        let mut permission = thread.event(
            Symbol::intern("tool.call"),
            mission_core::SpanId::NONE,
            EventBody::Permission(PermissionDecision {
                actor: Text::new("user:jo@example.com"),
                action: Symbol::intern("tool.call"),
                resource: Text::new("call +44 20 7946 0958"),
                decision: Decision::Deny,
                policy: Symbol::intern("p"),
            }),
        );
        assert_eq!(r.redact_event(&mut permission), 2);
        let EventBody::Permission(p) = &permission.body else { unreachable!() };
        assert!(p.actor.starts_with("user:[email:"), "{}", p.actor);
        assert!(p.resource.starts_with("call [phone:"), "{}", p.resource);

        let mut clean = thread.event(
            Symbol::intern("log"),
            mission_core::SpanId::NONE,
            EventBody::Log(LogRecord {
                message: Text::new("all good, id 1741082400000000000"),
                ..Default::default()
            }),
        );
        assert!(!r.needs_redaction(&clean));
        assert_eq!(r.redact_event(&mut clean), 0);
    }

    #[test]
    fn clean_events_pass_without_allocating() {
        use mission_core::{FnSink, Sink};
        let r = redactor();
        let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("bot"));
        let mut events = Vec::new();
        for i in 0..8i64 {
            let mut e = thread.event(
                Symbol::intern("log"),
                mission_core::SpanId::NONE,
                EventBody::Log(LogRecord {
                    message: Text::new("retrying web_search after 250 ms (attempt 2 of 3)"),
                    ..Default::default()
                }),
            );
            e.attributes.set(Symbol::intern("attempt"), i);
            e.attributes.set(Symbol::intern("tool.name"), "web_search");
            e.attributes.set(Symbol::intern("gen_ai.prompt"), CONTENT_OMITTED);
            events.push(e);
        }
        let mut sink = RedactingSink::new(
            r.clone(),
            vec![Box::new(FnSink::new("count", |batch: &[mission_core::Event]| {
                assert_eq!(batch.len(), 8);
                Ok(())
            }))],
        );
        let before = allocations();
        let mut replaced = 0;
        for e in &mut events {
            replaced += r.redact_event(e);
        }
        sink.consume(&events).expect("consume");
        assert_eq!(allocations() - before, 0);
        assert_eq!(replaced, 0);
        assert_eq!(sink.stats_reader().stats().events_redacted, 0);
    }

    #[test]
    fn tenants_override_the_default() {
        let mut config = RedactionConfig::with_key(KEY);
        config.tenants.insert(
            "research".into(),
            RedactionOverride {
                capture_content: Some(true),
                emails: Some(false),
                ..Default::default()
            },
        );
        let r = Redactor::new(config).expect("redactor");
        let event = |tenant: &str| {
            let mut e = ThreadContext::new(Symbol::intern(tenant), Symbol::intern("bot")).event(
                Symbol::intern("chat"),
                mission_core::SpanId::generate(),
                EventBody::Span(SpanEnd::default()),
            );
            e.attributes.set(Symbol::intern("gen_ai.completion"), "reply to jo@example.com");
            e
        };
        let mut research = event("research");
        assert_eq!(r.redact_event(&mut research), 0);
        let mut acme = event("acme");
        assert_eq!(r.redact_event(&mut acme), 1);
        assert_eq!(
            acme.attributes.get(Symbol::intern("gen_ai.completion")),
            Some(&AttrValue::string(CONTENT_OMITTED))
        );
    }

    #[test]
    fn redacting_sink_leaves_no_secret_in_parquet() {
        let dir = TempDir::new("redact-parquet");
        let store = ParquetSink::new(StoreConfig::at(&dir.0)).expect("sink");
        let sink = RedactingSink::new(redactor(), vec![Box::new(store)]);
        let stats = sink.stats_reader();
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(sink)
            .start()
            .expect("start");
        let recorder = pipeline.recorder();
        let secrets = [
            "jo.doe+billing@example.co.uk",
            "4539 1488 0343 6467",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0f",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "192.168.10.77",
            "2001:db8:85a3::8a2e:370:7334",
            "+1 415 555 2671",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ];
        let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
        let mut plain_events = 0;
        for (i, secret) in secrets.iter().enumerate() {
            let mut log = thread.event(
                Symbol::intern("log"),
                mission_core::SpanId::NONE,
                EventBody::Log(LogRecord {
                    level: Level::Warn,
                    target: Symbol::intern("agent"),
                    message: Text::new(&format!("step {i}: saw {secret} in the input")),
                }),
            );
            log.attributes.set(Symbol::intern("tool.argument"), format!("value={secret}"));
            recorder.record(log);
            let mut span = thread.event(
                Symbol::intern("lookup"),
                mission_core::SpanId::generate(),
                EventBody::Span(SpanEnd { status: Status::Error, ..Default::default() }),
            );
            if let EventBody::Span(s) = &mut span.body {
                s.set_error(&format!("rejected {secret}"));
            }
            recorder.record(span);
            recorder.record(thread.event(
                Symbol::intern("tool.call"),
                mission_core::SpanId::NONE,
                EventBody::Permission(PermissionDecision {
                    actor: Text::new(&format!("user:{secret}")),
                    action: Symbol::intern("tool.call"),
                    resource: Text::new(&format!("record {secret}")),
                    decision: Decision::Deny,
                    policy: Symbol::intern("p"),
                }),
            ));
            let mut plain = thread.event(
                Symbol::intern("log"),
                mission_core::SpanId::NONE,
                EventBody::Log(LogRecord {
                    message: Text::new("nothing here"),
                    ..Default::default()
                }),
            );
            plain.attributes.set(Symbol::intern("n"), i as i64);
            recorder.record(plain);
            plain_events += 1;
        }
        let report = pipeline.shutdown();
        assert_eq!(report.accounting.delivered, secrets.len() as u64 * 3 + plain_events);

        let store = Store::open(&dir.0).expect("open");
        let rows = rows_as_text(&store.query().batches().expect("query"));
        assert_eq!(rows.len() as u64, secrets.len() as u64 * 3 + plain_events);
        for row in &rows {
            for secret in secrets {
                assert!(!row.contains(secret), "{secret} survived in {row}");
            }
        }
        let all = rows.join("\n");
        for label in [
            "[email:",
            "[card:",
            "[openai_key:",
            "[aws_key:",
            "[github_token:",
            "[ip:",
            "[phone:",
            "[jwt:",
        ] {
            assert!(all.contains(label), "{label} missing from\n{all}");
        }
        let s = stats.stats();
        assert_eq!(s.events, secrets.len() as u64 * 3 + plain_events);
        assert_eq!(s.events_redacted, secrets.len() as u64 * 3);
        // Each event held the secret twice (log: message + attribute; permission: actor +
        // resource) or once (span error).
        assert_eq!(s.replacements, secrets.len() as u64 * 5);
    }
}

mod policy {
    use super::*;
    use mission_govern::audit::{self, AuditLog};
    use mission_govern::policy::{DEFAULT_RULE, PolicyEnforcer, PolicySet, REASON_ATTRIBUTE};
    use std::sync::Arc;

    const POLICY: &str = r#"
default = "allow"

[[rule]]
name = "no-refunds-for-bots"
tenant = "acme"
effect = "deny"
actor = "agent:*"
action = "tool.call"
resource = "refund_*"
reason = "refunds need a person"

[[rule]]
name = "bots-read-orders"
effect = "allow"
actor = "agent:*"
resource = "order_?"
"#;

    #[test]
    fn toml_and_json_load_and_decide_the_same() {
        let toml = PolicySet::from_toml_str(POLICY).expect("toml");
        let json = PolicySet::from_json_str(
            r#"{"default": "allow", "rules": [
                {"name": "no-refunds-for-bots", "tenant": "acme", "effect": "deny",
                 "actor": "agent:*", "action": "tool.call", "resource": "refund_*",
                 "reason": "refunds need a person"},
                {"name": "bots-read-orders", "effect": "allow", "actor": "agent:*",
                 "resource": "order_?"}
            ]}"#,
        )
        .expect("json");
        assert_eq!(toml, json);
        let d = toml.decide("acme", "agent:support-bot", "tool.call", "refund_payment");
        assert!(!d.allowed);
        assert_eq!(d.rule.as_deref(), Some("no-refunds-for-bots"));
        assert_eq!(d.reason, "denied by rule `no-refunds-for-bots`: refunds need a person");
        // Other tenants are not concerned by a tenant's rule.
        assert!(toml.decide("globex", "agent:support-bot", "tool.call", "refund_payment").allowed);
        let d = toml.decide("acme", "agent:x", "read", "order_7");
        assert_eq!((d.allowed, d.rule.as_deref()), (true, Some("bots-read-orders")));
        let d = toml.decide("acme", "agent:x", "read", "order_17");
        assert_eq!((d.allowed, d.rule), (true, None));
    }

    #[test]
    fn invalid_policies_name_the_line_and_field() {
        let cases: &[(&str, &[&str])] = &[
            ("[[rule]]\nname = \"a\"\neffect = \"maybe\"\n", &["line 3", "maybe"]),
            ("[[rule]]\nname = \"a\"\neffect = \"deny\"\nactr = \"x\"\n", &["line 4", "actr"]),
            (
                "[[rule]]\nname = \"a\"\neffect = \"deny\"\nactor = \"\"\n",
                &["line 4", "`actor`", "empty"],
            ),
            ("[[rule]]\neffect = \"deny\"\n", &["name"]),
            ("[[rule]]\nname = \"a\"\n", &["effect"]),
            (
                "[[rule]]\nname = \"a\"\neffect = \"deny\"\n\n[[rule]]\nname = \"a\"\neffect = \"allow\"\n",
                &["line 6", "rule 2", "`name`", "duplicate"],
            ),
            ("default = \"sometimes\"\n", &["line 1", "default"]),
        ];
        for (text, needles) in cases {
            let err = PolicySet::from_toml_str(text).expect_err(text).to_string();
            for needle in *needles {
                assert!(err.contains(needle), "{needle:?} not in {err:?} for\n{text}");
            }
        }
        let err = PolicySet::from_json_str(
            "{\"rules\": [{\"name\": \"a\",\n \"effect\": \"deny\",\n \"resource\": \"\"}]}",
        )
        .expect_err("json")
        .to_string();
        assert!(err.contains("line 3") && err.contains("`resource`"), "{err}");
    }

    #[test]
    fn files_are_read_by_extension() {
        let dir = TempDir::new("policy-files");
        let path = dir.0.join("policy.toml");
        std::fs::write(&path, POLICY).expect("write");
        assert_eq!(PolicySet::from_file(&path).expect("load").rules().len(), 2);
        let bad = dir.0.join("policy.json");
        std::fs::write(&bad, "{\"rules\": 3}").expect("write");
        let err = PolicySet::from_file(&bad).expect_err("bad").to_string();
        assert!(err.contains("policy.json") && err.contains("line 1"), "{err}");
        assert!(PolicySet::from_file(dir.0.join("missing.toml")).is_err());
    }

    #[test]
    fn a_denial_is_recorded_with_its_rule_and_queryable() {
        let dir = TempDir::new("policy-store");
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(StoreConfig::at(&dir.0)).expect("sink"))
            .start()
            .expect("start");
        let audit_log = Arc::new(AuditLog::open(&dir.0).expect("audit"));
        let enforcer = PolicyEnforcer::new(
            PolicySet::from_toml_str(POLICY).expect("policy"),
            &pipeline.recorder(),
        )
        .with_audit_log(audit_log.clone());
        let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
        let denied = enforcer.permit_in(
            &thread,
            mission_core::SpanId::NONE,
            "agent:support-bot",
            "tool.call",
            "refund_payment",
        );
        assert!(!denied.allowed);
        let allowed = enforcer.permit("acme", "user:jo", "tool.call", "refund_payment");
        assert!(allowed.allowed);
        pipeline.shutdown();

        let store = Store::open(&dir.0).expect("open");
        let batches = store
            .query()
            .kind("permission")
            .tenant("acme")
            .columns(&[
                "thread_id",
                "permission_actor",
                "permission_action",
                "permission_resource",
                "permission_decision",
                "permission_policy",
                "attributes",
            ])
            .batches()
            .expect("query");
        let rows = rows_as_text(&batches);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let denial =
            rows.iter().find(|r| r.contains("permission_decision=deny")).expect("a denial");
        for needle in [
            "permission_actor=agent:support-bot",
            "permission_action=tool.call",
            "permission_resource=refund_payment",
            "permission_policy=no-refunds-for-bots",
            REASON_ATTRIBUTE,
            "refunds need a person",
            &format!("thread_id={}", thread.thread_id),
        ] {
            assert!(denial.contains(needle), "{needle} not in {denial}");
        }
        let allowance =
            rows.iter().find(|r| r.contains("permission_decision=allow")).expect("allow");
        assert!(allowance.contains(&format!("permission_policy={DEFAULT_RULE}")), "{allowance}");

        // The denial (and only it) is in the audit trail.
        let report = audit::verify(&dir.0).expect("verify");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.records, 1);
        assert_eq!(report.head, audit_log.head());
        let line = std::fs::read_to_string(dir.0.join("audit").join("audit.jsonl")).expect("read");
        assert!(
            line.contains("\"kind\":\"permission_denied\"") && line.contains("no-refunds-for-bots"),
            "{line}"
        );

        enforcer.replace_policy(PolicySet::default(), "admin:jo");
        assert_eq!(audit::verify(&dir.0).expect("verify").records, 2);
        assert_eq!(enforcer.audit_failures(), 0);
    }
}

mod audit_trail {
    use super::*;
    use mission_govern::audit::{
        self, AuditConfig, AuditError, AuditHead, AuditLog, AuditProblemKind, GENESIS_HASH,
        SyncPolicy,
    };
    use serde_json::json;

    fn write_records(root: &Path, n: u64) -> AuditHead {
        let log = AuditLog::open(root).expect("open");
        for i in 0..n {
            log.append(
                if i % 2 == 0 { audit::kind::PERMISSION_DENIED } else { audit::kind::ERASURE },
                &format!("agent:{i}"),
                "acme",
                json!({"i": i, "rule": "no-refunds", "nested": {"b": 1.5, "a": [true, null]}}),
            )
            .expect("append");
        }
        log.head()
    }

    fn active(root: &Path) -> PathBuf {
        root.join("audit").join("audit.jsonl")
    }

    fn lines(root: &Path) -> Vec<String> {
        std::fs::read_to_string(active(root)).expect("read").lines().map(str::to_owned).collect()
    }

    fn write_lines(root: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(active(root), text).expect("write");
    }

    fn problem(root: &Path) -> audit::AuditProblem {
        let report = audit::verify(root).expect("verify");
        report.problem.expect("a problem")
    }

    #[test]
    fn a_chain_verifies_and_reopening_continues_it() {
        let dir = TempDir::new("audit-chain");
        let empty = AuditLog::open(&dir.0).expect("open");
        assert_eq!(empty.head(), AuditHead { seq: 0, hash: GENESIS_HASH.into() });
        drop(empty);
        let head = write_records(&dir.0, 5);
        assert_eq!(head.seq, 5);
        let log = AuditLog::open(&dir.0).expect("reopen");
        assert_eq!(log.head(), head);
        let sixth =
            log.append("admin_action", "admin:jo", "*", json!("rotated keys")).expect("append");
        assert_eq!((sixth.seq, sixth.prev_hash.as_str()), (6, head.hash.as_str()));
        let report = audit::verify(&dir.0).expect("verify");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.records, 6);
        assert_eq!(report.head, log.head());
        let first: audit::AuditRecord = serde_json::from_str(&lines(&dir.0)[0]).expect("record");
        assert_eq!(first.prev_hash, GENESIS_HASH);
        assert_eq!(first.seq, 1);
    }

    #[test]
    fn an_edited_record_is_found_at_its_line() {
        let dir = TempDir::new("audit-edit");
        write_records(&dir.0, 6);
        let mut l = lines(&dir.0);
        assert!(l[2].contains("agent:2"));
        l[2] = l[2].replace("agent:2", "agent:X");
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line, p.seq), (AuditProblemKind::HashMismatch, 3, Some(3)), "{p}");
        let report = audit::verify(&dir.0).expect("verify");
        assert_eq!(report.records, 2);
    }

    #[test]
    fn an_edited_and_rehashed_record_breaks_the_next_link() {
        let dir = TempDir::new("audit-rehash");
        write_records(&dir.0, 5);
        let mut l = lines(&dir.0);
        let mut record: audit::AuditRecord = serde_json::from_str(&l[1]).expect("record");
        record.actor = "agent:innocent".into();
        record.hash = record.compute_hash();
        l[1] = record.to_line();
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line, p.seq), (AuditProblemKind::BrokenLink, 3, Some(3)), "{p}");
    }

    #[test]
    fn a_deleted_record_is_found_where_it_was() {
        let dir = TempDir::new("audit-delete");
        write_records(&dir.0, 6);
        let mut l = lines(&dir.0);
        l.remove(3);
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line, p.seq), (AuditProblemKind::MissingRecord, 4, Some(5)), "{p}");
        assert!(p.message.contains("expected seq 4"), "{p}");

        // The first record removed.
        let mut l = lines(&dir.0);
        l.remove(0);
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line, p.seq), (AuditProblemKind::MissingRecord, 1, Some(2)), "{p}");
    }

    #[test]
    fn swapped_records_are_reported_as_reordered() {
        let dir = TempDir::new("audit-swap");
        write_records(&dir.0, 6);
        let mut l = lines(&dir.0);
        l.swap(1, 2);
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line, p.seq), (AuditProblemKind::Reordered, 2, Some(3)), "{p}");
        assert!(p.message.contains("seq 2 appears later, at line 3"), "{p}");
    }

    #[test]
    fn a_truncated_last_line_is_reported_and_blocks_appending() {
        let dir = TempDir::new("audit-truncate");
        write_records(&dir.0, 4);
        let text = std::fs::read(active(&dir.0)).expect("read");
        std::fs::write(active(&dir.0), &text[..text.len() - 20]).expect("write");
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line), (AuditProblemKind::TruncatedLine, 4), "{p}");
        assert_eq!(audit::verify(&dir.0).expect("verify").records, 3);
        match AuditLog::open(&dir.0) {
            Err(AuditError::Damaged(p)) => assert_eq!(p.kind, AuditProblemKind::TruncatedLine),
            other => panic!("expected a damaged log, got {other:?}"),
        }
        // A line that is not a record.
        let mut l: Vec<String> = lines(&dir.0)[..3].to_vec();
        l.insert(1, "{not json".into());
        write_lines(&dir.0, &l);
        let p = problem(&dir.0);
        assert_eq!((p.kind, p.line), (AuditProblemKind::Malformed, 2), "{p}");
    }

    #[test]
    fn rotation_keeps_one_chain_across_files() {
        let dir = TempDir::new("audit-rotate");
        let config =
            AuditConfig::default().with_max_file_bytes(1024).with_sync(SyncPolicy::OnRotate);
        let log = AuditLog::open_with(&dir.0, config).expect("open");
        for i in 0..40 {
            log.append("admin_action", "admin:jo", "acme", json!({"i": i})).expect("append");
        }
        log.sync().expect("sync");
        let head = log.head();
        drop(log);
        let report = audit::verify(&dir.0).expect("verify");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.records, 40);
        assert_eq!(report.head, head);
        assert!(report.files.len() >= 3, "{:?}", report.files);
        assert!(report.files[0].ends_with("audit.000001.jsonl"));
        // Reopening continues from the newest file, past further rotations.
        let log = AuditLog::open_with(&dir.0, config).expect("reopen");
        assert_eq!(log.head(), head);
        for _ in 0..20 {
            log.append("admin_action", "admin:jo", "acme", json!(null)).expect("append");
        }
        drop(log);
        assert_eq!(audit::verify(&dir.0).expect("verify").records, 60);
        // A whole rotated file removed is a gap at the start of the next file.
        let second = dir.0.join("audit").join("audit.000002.jsonl");
        std::fs::remove_file(&second).expect("remove");
        let p = problem(&dir.0);
        assert_eq!(p.kind, AuditProblemKind::MissingRecord, "{p}");
        assert!(p.file.ends_with("audit.000003.jsonl") && p.line == 1, "{p}");
    }

    #[test]
    fn no_log_and_bad_input_are_errors() {
        let dir = TempDir::new("audit-none");
        assert!(matches!(audit::verify(&dir.0), Err(AuditError::NotFound { .. })));
        let log = AuditLog::open(&dir.0).expect("open");
        let huge = "x".repeat(audit::MAX_DETAIL_BYTES + 1);
        assert!(matches!(
            log.append("admin_action", "a", "t", json!(huge)),
            Err(AuditError::Invalid { field: "detail", .. })
        ));
        assert!(matches!(
            log.append("", "a", "t", json!(null)),
            Err(AuditError::Invalid { field: "kind", .. })
        ));
        assert_eq!(log.head().seq, 0);
    }
}
