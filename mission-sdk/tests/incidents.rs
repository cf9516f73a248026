//! Incident memory (issue 22): alarms of one tenant on one cause make one incident; it closes
//! once nothing fires and it stayed quiet, with what resolved it; past incidents are found by
//! cause; acknowledgements' verdicts grade detectors; the host's analyser narrates an incident.
//! The grouping tests drive the directive sink with fabricated times (no sleeps); the analyser
//! and model tests run a whole agent and wait on conditions with deadlines.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mission_core::anomaly::attr;
use mission_core::{AnomalyEvent, Event, EventBody, Sink, SpanId, Symbol, Timestamp};
use mission_sdk::directives::{
    AckVerdict, DirectiveSet, Directives, IncidentState, MemberKind, RemedyOutcome,
    similar_incidents,
};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
/// 2026-01-05 10:00:00 UTC.
const T0: u64 = 1_767_607_200 * SECOND;

/// An anomaly of `tenant` on `metric` at `time`, whose single cause is `cause`.
fn anomaly(tenant: &str, metric: &str, cause: &str, score: f64, time: u64) -> Event {
    let mut e = Event::new(
        Symbol::intern(metric),
        EventBody::Anomaly(AnomalyEvent {
            detector: Symbol::intern("ewma"),
            score,
            value: 9.0,
            expected: 1.0,
            ..Default::default()
        }),
    );
    e.time = Timestamp(time);
    e.tenant = Symbol::intern(tenant);
    e.span_id = SpanId::generate();
    e.attributes.set(Symbol::intern(attr::CAUSE), cause);
    e.attributes.set(Symbol::intern(attr::OPERATION), "chat");
    e
}

const WATCH: &str = r#"
[[directive]]
name = "chat-latency"
when = "anomaly score > 0.9 for 5m"
where = { metric = "chat.latency" }
then = [{ action = "alert" }, { action = "fallback", name = "cheaper-model" }]
"#;

fn directives(toml: &str) -> (Directives, mission_sdk::DirectiveSink) {
    let d = Directives::new(DirectiveSet::from_toml_str(toml, "test").expect("toml")).expect("d");
    d.register_remedy("cheaper-model", |_| RemedyOutcome::Applied);
    let sink = d.sink();
    (d, sink)
}

#[test]
fn two_streams_alarming_on_one_cause_make_one_incident_that_closes_with_its_resolution() {
    let (d, mut sink) = directives(WATCH);
    sink.tick(Timestamp(T0)).unwrap();
    let claude = "model=claude-sonnet-4";
    sink.consume(&[
        anomaly("acme", "chat.latency", claude, 0.97, T0 + MINUTE),
        anomaly("acme", "chat.error_rate", claude, 0.95, T0 + 2 * MINUTE),
        // The same cause in another tenant, and another cause: incidents of their own.
        anomaly("globex", "chat.latency", claude, 0.97, T0 + MINUTE),
        anomaly("acme", "search.latency", "tool=web_search", 0.93, T0 + MINUTE),
    ])
    .unwrap();
    let acme = d.incidents_for(Some("acme"));
    assert_eq!(acme.len(), 2, "{acme:#?}");
    let one = acme.iter().find(|i| i.cause == claude).expect("claude's incident");
    let kinds: Vec<MemberKind> = one.members.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [MemberKind::Anomaly, MemberKind::Firing, MemberKind::Anomaly, MemberKind::Remedy],
        "both streams, the directive's firing and (once it ran) its remedy: {one:#?}"
    );
    assert_eq!(d.incidents_for(Some("globex")).len(), 1);
    let key = one.members[1].id.clone();
    d.acknowledge_with(
        &key,
        "jo",
        "switched to the fallback",
        Some("acme"),
        Some(AckVerdict::TruePositive),
    )
    .unwrap();

    // Still firing: open however long it is quiet. Once resolved (the hold passed) and quiet
    // for 10 minutes, it closes with the remedy that worked.
    // (The wall clock moves the directive's clock once no event came for a second: the tick
    // at 3 minutes starts the quiet, the one at 10 passes the 5-minute hold.)
    sink.tick(Timestamp(T0 + 3 * MINUTE)).unwrap();
    sink.tick(Timestamp(T0 + 10 * MINUTE)).unwrap();
    sink.tick(Timestamp(T0 + 15 * MINUTE)).unwrap();
    let open = d.incidents_for(Some("acme")).into_iter().find(|i| i.cause == claude).unwrap();
    assert_eq!(open.state, IncidentState::Open, "resolved 5 minutes ago: {open:#?}");
    assert!(open.members.iter().any(|m| m.kind == MemberKind::Resolved), "{open:#?}");
    sink.tick(Timestamp(T0 + 21 * MINUTE)).unwrap();
    let closed = d.incidents_for(Some("acme")).into_iter().find(|i| i.cause == claude).unwrap();
    assert_eq!(closed.state, IncidentState::Closed, "{closed:#?}");
    assert!(closed.resolution.contains("fallback done"), "{}", closed.resolution);
    let ack = closed.members.iter().find(|m| m.kind == MemberKind::Acknowledgement).unwrap();
    assert_eq!(ack.verdict, Some(AckVerdict::TruePositive));

    // A new alarm on the same cause later: a new incident, and the closed one is its past.
    sink.consume(&[anomaly("acme", "chat.latency", claude, 0.99, T0 + 60 * MINUTE)]).unwrap();
    let past: Vec<_> = d
        .incidents_for(Some("acme"))
        .into_iter()
        .filter(|i| i.state == IncidentState::Closed)
        .collect();
    let ranked = similar_incidents(claude, past.clone(), 10);
    assert_eq!(ranked[0].0, 1.0);
    assert_eq!(ranked[0].1.id, closed.id);
    assert!(ranked.iter().all(|(_, i)| i.tenant == "acme"));
    assert!(similar_incidents("provider=claude-sonnet-4", past, 10)[0].0 < 1.0);
}

#[test]
fn the_analysers_narrative_is_kept_with_the_incident_and_a_panic_is_counted() {
    let root = std::env::temp_dir().join(format!("mission-incidents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let keep = seen.clone();
    control
        .register_analyser(move |request| {
            keep.lock().unwrap().push(request.context.clone());
            if request.incident.cause.contains("panic") {
                panic!("the host's analyser failed");
            }
            Some(format!("{} explains it", request.incident.cause))
        })
        .expect("analyser");
    let now = Timestamp::now().0;
    for (cause, time) in [("model=claude-sonnet-4", now), ("model=panic", now + 1)] {
        control.recorder().record(anomaly("acme", "chat.latency", cause, 0.97, time));
    }
    control.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while control.analyser_stats().analysed < 2 {
        assert!(Instant::now() < deadline, "{:?}", control.analyser_stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = control.analyser_stats();
    assert_eq!((stats.narrated, stats.panicked, stats.dropped), (1, 1, 0), "{stats:?}");
    let incidents = control.directives().incidents_for(Some("acme"));
    let claude = incidents.iter().find(|i| i.cause == "model=claude-sonnet-4").unwrap();
    assert_eq!(claude.narrative.as_deref(), Some("model=claude-sonnet-4 explains it"));
    let packs = seen.lock().unwrap().clone();
    if cfg!(feature = "mcp") {
        // The context is explain_anomaly's pack of the incident's anomaly, read from the store.
        let pack = packs.iter().find(|p| p["instructions"].is_string()).expect("a pack");
        assert_eq!(pack["anomaly"]["id"], claude.members[0].id, "{packs:?}");
    } else {
        // Without the MCP server's pack builder, the incident itself.
        assert!(packs.iter().any(|p| p["id"] == claude.id.as_str()), "{packs:?}");
    }
    control.flush().unwrap();
    let store = control.store().expect("a store").unwrap();
    let narrated = store.query().name("mission.incident").count().unwrap();
    assert!(narrated >= 3, "two opened and one narrated: {narrated}");
    drop(store);
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn verdicts_grade_the_detector_in_model_stats() {
    let root = std::env::temp_dir().join(format!("mission-verdicts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant("acme")
        .with_directives(
            DirectiveSet::from_toml_str(
                "[[directive]]\nname = \"any-anomaly\"\nwhen = \"anomaly score > 0.9 for 1h\"\n\
                 group_by = [\"operation\"]\n",
                "test",
            )
            .unwrap(),
        )
        .build()
        .expect("build");
    let now = Timestamp::now().0;
    let mut a = anomaly("acme", "chat.latency", "model=x", 0.97, now);
    a.name = Symbol::intern("chat");
    let mut b = anomaly("acme", "search.latency", "model=y", 0.97, now);
    b.name = Symbol::intern("search");
    control.recorder().record(a);
    control.recorder().record(b);
    control.flush().unwrap();
    let directives = control.directives();
    let firing: Vec<String> =
        directives.list()[0].firing.iter().map(|f| f.dedup_key.clone()).collect();
    assert_eq!(firing.len(), 2, "{firing:?}");
    directives
        .acknowledge_with(&firing[0], "jo", "", None, Some(AckVerdict::TruePositive))
        .unwrap();
    directives
        .acknowledge_with(&firing[1], "jo", "", None, Some(AckVerdict::FalsePositive))
        .unwrap();
    control.flush().unwrap();
    let stats = control.model_stats().expect("models run");
    let ewma = stats.detector_quality.iter().find(|q| q.detector == "ewma").expect("graded");
    assert_eq!((ewma.true_positives, ewma.false_positives), (1, 1));
    assert!((ewma.precision - 0.5).abs() < 1e-9);
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}
