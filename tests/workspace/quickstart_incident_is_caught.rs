use std::time::Duration;

use mission_core::{AttrValue, Backpressure, Event, EventBody, RecorderConfig};
use mission_examples::{Incident, Workload, simulate};
use mission_sdk::models::attr;
use mission_sdk::{EventFilter, MissionControl};

fn text<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
    event.attributes.iter().find(|a| a.key.as_str() == key).and_then(|a| match &a.value {
        AttrValue::Str(s) => Some(s.as_str()),
        _ => None,
    })
}

/// The quick start's run on the SDK's defaults: the planted slowdown of one model is caught
/// during the run, in the slowed model's streams, with that model as the top cause.
#[test]
fn the_quickstart_incident_is_caught_with_its_cause() {
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_recorder_config(
            RecorderConfig::default()
                .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) }),
        )
        .build()
        .expect("build");
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 10_000);
    let incident = Incident::slow_model();
    let summary = simulate(
        control.recorder(),
        &Workload { threads: 6_000, incident: Some(incident.clone()), ..Workload::default() },
    );
    control.flush().expect("flush");
    let started = summary.incident_started.expect("an incident was planted");
    let mut anomalies = Vec::new();
    while let Some(e) = live.try_recv() {
        anomalies.push(e);
    }
    let in_slowed_streams: Vec<&Event> = anomalies
        .iter()
        .filter(|e| e.name.as_str() == "latency_ms" && text(e, attr::MODEL) == Some(incident.model))
        .collect();
    let caught: Vec<&&Event> = in_slowed_streams.iter().filter(|e| e.time.0 >= started).collect();
    // Nine (tenant, agent) streams call the model; most of them page, each about once.
    assert!(caught.len() >= 5, "caught in {} streams: {anomalies:#?}", caught.len());
    assert!(caught.len() <= 18, "{} alarms: one incident should not page per call", caught.len());
    let first = caught.iter().map(|e| e.time.0).min().unwrap();
    assert!(
        first - started < 10 * 60_000_000_000,
        "first alarm {} s late",
        (first - started) / 1_000_000_000
    );
    let blamed = caught
        .iter()
        .filter(|e| text(e, attr::CAUSE) == Some(&format!("model={}", incident.model)))
        .count();
    assert!(
        blamed * 10 >= caught.len() * 8,
        "{blamed} of {} blame the model: {caught:#?}",
        caught.len()
    );
    for e in &caught {
        let EventBody::Anomaly(a) = &e.body else { panic!("not an anomaly") };
        assert!(a.value > a.expected, "{a:?}");
    }
    // Before the incident, over 72 streams and ~45 000 points: a handful of alarms at most.
    let before = anomalies.iter().filter(|e| e.time.0 < started).count();
    assert!(before <= 8, "{before} alarms before the incident: {anomalies:#?}");
}
