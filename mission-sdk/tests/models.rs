//! The models sink inside a real `MissionControl`: a planted incident is caught with its cause,
//! the anomaly reaches the live stream and the store, streams stay bounded, memory is sampled.

use std::path::PathBuf;
use std::time::Duration;

use mission_core::{LlmUsage, Recorder, Status, Symbol, ThreadContext, Timestamp};
use mission_sdk::models::{MEMORY_METRIC, attr};
use mission_sdk::{
    AttrValue, Event, EventBody, EventFilter, MissionControl, ModelConfig, SpanKind,
};

fn temp_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("mission-models-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        median * (sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).exp()
    }
}

const MODELS: [(&str, f64); 3] =
    [("gpt-4o-mini", 900.0), ("claude-sonnet-4", 2400.0), ("gpt-4.1", 1800.0)];

/// Records `calls` LLM calls named `chat` one every 10 s of simulated time; from call `from`
/// on, `slow`'s latency is tripled. Returns the time the incident started. (The default
/// detector learns a series over its first 250 or so points before it pages on a level
/// shift; each model here has 400 before the incident.)
fn record_calls(recorder: &Recorder, calls: u64, from: u64, slow: &str) -> u64 {
    let start = Timestamp::now().0 - (calls + 60) * 10_000_000_000;
    record_calls_from(recorder, start, calls, from, slow, 7)
}

/// The same from `start`, with noise seed `seed`.
fn record_calls_from(
    recorder: &Recorder,
    start: u64,
    calls: u64,
    from: u64,
    slow: &str,
    seed: u64,
) -> u64 {
    let mut rng = Rng(seed);
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let chat = Symbol::intern("chat");
    for i in 0..calls {
        let (model, median) = MODELS[(i % 3) as usize];
        let factor = if i >= from && model == slow { 3.0 } else { 1.0 };
        let t = start + i * 10_000_000_000;
        let mut call = recorder.start_span_at(&thread, SpanKind::LlmCall, chat, None, Timestamp(t));
        call.set_llm_usage(LlmUsage {
            model: Symbol::intern(model),
            provider: Symbol::intern("p"),
            input_tokens: 800,
            output_tokens: 100,
            cost_usd: 0.001,
            ..LlmUsage::default()
        });
        let ms = rng.lognormal(median, 0.25) * factor;
        call.end_at(Timestamp(t + (ms * 1e6) as u64));
    }
    start.saturating_add(from.saturating_mul(10_000_000_000))
}

fn str_attr<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
    event.attributes.iter().find(|a| a.key.as_str() == key).and_then(|a| match &a.value {
        AttrValue::Str(s) => Some(s.as_str()),
        _ => None,
    })
}

fn drain(live: &mission_sdk::Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = live.try_recv() {
        out.push(e);
    }
    out
}

#[test]
fn a_tripled_model_latency_is_caught_with_the_model_as_its_cause() {
    let root = temp_root("planted");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_models(ModelConfig::default().with_memory_interval(None))
        .build()
        .unwrap();
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    let incident = record_calls(control.recorder(), 1500, 1200, "claude-sonnet-4");
    control.flush().unwrap();

    let anomalies = drain(&live);
    let latency: Vec<&Event> =
        anomalies.iter().filter(|e| e.name.as_str() == "latency_ms").collect();
    let before: Vec<&&Event> = latency.iter().filter(|e| e.time.0 < incident).collect();
    assert!(before.len() <= 2, "false alarms before the incident: {before:#?}");
    let caught = latency.iter().find(|e| e.time.0 >= incident).unwrap_or_else(|| {
        panic!(
            "the incident was not caught; models: {:?}; anomalies: {anomalies:#?}",
            control.model_stats()
        )
    });
    // Within 30 calls (10 of the slow model) of the start.
    assert!(caught.time.0 - incident <= 300_000_000_000, "caught late: {caught:#?}");
    assert_eq!(str_attr(caught, attr::CAUSE), Some("model=claude-sonnet-4"), "{caught:#?}");
    assert_eq!(str_attr(caught, attr::OPERATION), Some("chat"));
    assert_eq!(str_attr(caught, attr::SPAN_KIND), Some("llm_call"));
    assert_eq!(str_attr(caught, attr::DIRECTION), Some("up"));
    assert!(str_attr(caught, attr::EXEMPLAR_THREAD_ID).is_some());
    let EventBody::Anomaly(a) = &caught.body else { panic!("not an anomaly") };
    // Per-call series page on a sustained shift, not on one call outside the band: the call
    // that completes the shift is above what was expected, and need not leave the band.
    assert!(a.value > a.expected && a.score > 0.0 && a.score <= 1.0, "{a:?}");
    assert!(caught.thread_id.is_zero() && !caught.span_id.is_none());

    // Stored like any event, and counted.
    let stats = control.model_stats().unwrap();
    assert_eq!(stats.anomalies, anomalies.len() as u64);
    assert_eq!(stats.dropped_events, 0);
    assert!(stats.points >= 1500 * 3, "{stats:?}");
    let stored = control.store().unwrap().unwrap().query().kind("anomaly").count().unwrap();
    assert_eq!(stored, anomalies.len() as u64);
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_error_burst_raises_an_error_rate_anomaly() {
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_models(
            ModelConfig::default()
                .with_memory_interval(None)
                .with_error_bucket(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    let recorder = control.recorder();
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("billing"));
    let tool = Symbol::intern("refund_payment");
    let mut rng = Rng(11);
    let minutes = 400u64;
    // On a minute boundary, so each simulated minute is one error bucket (buckets are whole
    // minutes since the epoch): which calls share a bucket, hence the rates scored, no longer
    // depends on the second the test runs at (at 49 s and 52 s past the minute one more
    // error-rate anomaly came before the burst).
    const MINUTE: u64 = 60_000_000_000;
    let start = (Timestamp::now().0 / MINUTE - minutes - 10) * MINUTE;
    for minute in 0..minutes {
        // 20 calls a minute; 2 % fail, and 60 % during minutes 300..305.
        let p = if (300..305).contains(&minute) { 0.6 } else { 0.02 };
        for k in 0..20u64 {
            let t = start + minute * 60_000_000_000 + k * 3_000_000_000;
            let mut span =
                recorder.start_span_at(&thread, SpanKind::ToolCall, tool, None, Timestamp(t));
            if rng.uniform() < p {
                span.set_status(Status::Error);
            }
            span.end_at(Timestamp(t + 50_000_000));
        }
    }
    control.flush().unwrap();
    let errors: Vec<Event> =
        drain(&live).into_iter().filter(|e| e.name.as_str() == "error_rate").collect();
    let burst = start + 300 * 60_000_000_000;
    assert!(
        errors.iter().any(|e| e.time.0 >= burst && e.time.0 <= burst + 6 * 60_000_000_000),
        "no error-rate anomaly during the burst: {errors:#?}"
    );
    assert!(errors.iter().filter(|e| e.time.0 < burst).count() <= 2, "{errors:#?}");
    assert!(errors.iter().all(|e| str_attr(e, attr::DIRECTION) == Some("up")));
}

#[test]
fn streams_stay_within_their_bound_and_evictions_are_counted() {
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_models(ModelConfig::default().with_max_streams(16).with_memory_interval(None))
        .build()
        .unwrap();
    let agent = control.agent("crawler");
    for i in 0..200 {
        let thread = agent.thread();
        thread.tool_call(&format!("tool-{i}")).end();
        thread.end();
    }
    control.flush().unwrap();
    let stats = control.model_stats().unwrap();
    assert!(stats.streams <= 16, "{stats:?}");
    // 200 tool streams and the agent run's stream went through 16 slots.
    assert!(stats.evicted_streams >= 201 - 16, "{stats:?}");
    assert!(control.health_report().models.is_some());
}

#[test]
fn models_can_be_turned_off() {
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .without_models()
        .build()
        .unwrap();
    assert!(control.model_stats().is_none());
    assert!(control.health().sinks.iter().all(|s| s.name != "models"));
}

#[cfg(target_os = "linux")]
#[test]
fn process_memory_is_sampled_and_recorded_as_a_metric() {
    let root = temp_root("memory");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_service_name("memory-test")
        .with_models(ModelConfig::default().with_memory_interval(Some(Duration::from_millis(1))))
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while control.model_stats().unwrap().memory_samples < 3 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    control.flush().unwrap();
    let stats = control.model_stats().unwrap();
    assert!(stats.memory_samples >= 3, "{stats:?}");
    assert!(stats.memory_bytes > 1 << 20, "{stats:?}");
    let store = control.store().unwrap().unwrap();
    let samples =
        store.query().kind("metric").name(MEMORY_METRIC).agent("memory-test").count().unwrap();
    assert!(samples >= 3, "{samples} samples stored");
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn learned_state_survives_a_restart_so_a_new_run_pages_at_once() {
    let root = temp_root("restart");
    let config = || ModelConfig::default().with_memory_interval(None);
    let build = || {
        MissionControl::builder()
            .ignore_environment()
            .with_store_root(&root)
            .with_models(config())
            .build()
            .unwrap()
    };
    let hour_ago = Timestamp::now().0 - 4 * 3_600_000_000_000;
    // First run: 1200 calls, 400 per model, nothing wrong.
    let first = build();
    record_calls_from(first.recorder(), hour_ago, 1200, u64::MAX, "", 7);
    first.flush().unwrap();
    let saved_streams = first.model_stats().unwrap().streams;
    drop(first);
    let state = root.join(mission_sdk::MODEL_STATE_FILE);
    assert!(state.is_file(), "no state saved at {}", state.display());
    // The usual error rate of each series (what a bucket's rate is shrunk toward) is saved too.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let calls: Vec<f64> = saved["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["series"].as_array().unwrap().iter())
        .map(|series| series["usual"][1].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(!calls.is_empty() && calls.iter().all(|&c| c > 0.0), "{saved}");

    // Second run, right after: the slowdown starts at its 31st call (the model's 11th), far
    // inside the ~150 points a fresh detector spends learning.
    let second = build();
    let live =
        second.subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    let later = hour_ago + 1300 * 10_000_000_000;
    let incident = record_calls_from(second.recorder(), later, 150, 30, "claude-sonnet-4", 8);
    second.flush().unwrap();
    let stats = second.model_stats().unwrap();
    assert_eq!(stats.restored_streams, saved_streams, "{stats:?}");
    let caught: Vec<Event> = drain(&live)
        .into_iter()
        .filter(|e| e.time.0 >= incident && str_attr(e, attr::MODEL) == Some("claude-sonnet-4"))
        .collect();
    assert!(!caught.is_empty(), "the restored detectors did not page: {stats:?}");
    drop(second);

    // A fresh start (no state) does not know the streams yet and stays quiet on the same run.
    std::fs::remove_file(&state).unwrap();
    let fresh = build();
    let live =
        fresh.subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    record_calls_from(fresh.recorder(), later, 150, 30, "claude-sonnet-4", 8);
    fresh.flush().unwrap();
    assert_eq!(fresh.model_stats().unwrap().restored_streams, 0);
    assert!(drain(&live).is_empty(), "a fresh detector pages only after it has learned");
    drop(fresh);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn model_settings_out_of_range_are_refused_naming_field_and_range() {
    let root = temp_root("model-ranges");
    let build = |models: ModelConfig| {
        MissionControl::builder()
            .ignore_environment()
            .with_store_root(&root)
            .with_models(models)
            .build()
    };
    let quiet = || ModelConfig::default().with_memory_interval(None);
    assert_eq!(ModelConfig::default().validate(), Ok(()));
    drop(build(quiet()).expect("the defaults pass"));
    let cases = [
        (quiet().with_max_streams(0), "max_streams", "1048576"),
        (quiet().with_history(1 << 30), "history", "65536"),
        (quiet().with_error_bucket(Duration::ZERO), "error_bucket", "1s"),
        (quiet().with_queue_batches(0), "queue_batches", "1048576"),
        (quiet().with_memory_interval(Some(Duration::ZERO)), "memory_interval", "1ms"),
        (quiet().with_memory_limit(Some(10)), "memory_limit", "1048576"),
        (quiet().with_leak_horizon(Duration::from_secs(1)), "leak_horizon", "60s to 31536000s"),
        (quiet().with_max_anomalies_per_minute(u32::MAX), "max_anomalies_per_minute", "1000000"),
    ];
    for (models, field, range) in cases {
        let err = build(models).expect_err(field).to_string();
        assert!(
            err.contains("with_models")
                && err.contains(&format!("`{field}`"))
                && err.contains(range),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_drop_in_a_score_is_an_anomaly_of_its_score_series() {
    let root = temp_root("scores");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_models(ModelConfig::default().with_memory_interval(None))
        .build()
        .unwrap();
    let live = control
        .subscribe(EventFilter { kinds: vec!["anomaly".into()], ..EventFilter::all() }, 4096);
    let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let mut rng = Rng(11);
    let (n, from) = (600u64, 450u64);
    let start = Timestamp::now().0 - (n + 60) * 10_000_000_000;
    let helpfulness = Symbol::intern("helpfulness");
    for i in 0..n {
        // Around 0.85 with noise, then around 0.3: answers got worse.
        let level = if i >= from { 0.3 } else { 0.85 };
        let value = level + (rng.uniform() - 0.5) * 0.1;
        let score = mission_sdk::Score::new(value).unwrap();
        let mut event =
            thread.event(helpfulness, mission_sdk::SpanId::NONE, EventBody::Score(score));
        event.time = Timestamp(start + i * 10_000_000_000);
        control.recorder().record(event);
    }
    control.flush().unwrap();
    let incident = start + from * 10_000_000_000;
    let anomalies = drain(&live);
    let on_scores: Vec<&Event> =
        anomalies.iter().filter(|e| e.name.as_str() == "score:helpfulness").collect();
    assert!(on_scores.iter().filter(|e| e.time.0 < incident).count() <= 2, "{on_scores:#?}");
    let caught = on_scores.iter().find(|e| e.time.0 >= incident).unwrap_or_else(|| {
        panic!("the drop was not caught: {:?}; {anomalies:#?}", control.model_stats())
    });
    assert!(caught.time.0 - incident <= 300_000_000_000, "caught late: {caught:#?}");
    let EventBody::Anomaly(a) = &caught.body else { panic!("not an anomaly") };
    assert!(a.value < a.lower, "a drop, below the expected band: {a:?}");
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_state_is_saved_while_the_agent_runs_and_a_bad_baseline_is_a_build_error() {
    let root = temp_root("periodic");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_models(
            ModelConfig::default()
                .with_memory_interval(None)
                .with_save_every(Some(Duration::from_secs(1))),
        )
        .build()
        .unwrap();
    record_calls(control.recorder(), 30, u64::MAX, "");
    control.flush().unwrap();
    let state = root.join(mission_sdk::MODEL_STATE_FILE);
    // Saved by the worker while the agent still runs (not at shutdown).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !state.is_file() || control.model_stats().unwrap().saved_streams == 0 {
        assert!(std::time::Instant::now() < deadline, "no periodic save within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let saved = mission_sdk::ModelBaseline::read(&state).expect("a readable baseline");
    assert_eq!(saved.tenants(), ["acme"]);
    assert!(saved.streams() >= 1);
    drop(control);

    // A baseline that is missing, or not a model state, is refused by build, naming it.
    let missing = root.join("no-such-baseline.json");
    let Err(err) = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_model_baseline(&missing)
        .build()
    else {
        panic!("a missing baseline is an error");
    };
    assert!(err.to_string().contains("no-such-baseline.json"), "{err}");
    let damaged = root.join("damaged.json");
    std::fs::write(&damaged, b"{\"version\": 1, \"streams\": [").unwrap();
    let Err(err) = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_model_baseline(&damaged)
        .build()
    else {
        panic!("a damaged baseline is an error");
    };
    assert!(err.to_string().contains("not a model baseline"), "{err}");
    // The environment names it the same way.
    let config = mission_sdk::MissionConfig::from_env_with(|k| {
        (k == "MISSION_MODEL_BASELINE").then(|| damaged.display().to_string())
    })
    .unwrap();
    assert_eq!(config.model_baseline.as_deref(), Some(damaged.as_path()));
    let _ = std::fs::remove_dir_all(&root);
}
