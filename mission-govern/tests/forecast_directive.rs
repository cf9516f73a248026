//! The `forecast` condition on the directive engine, driven on event time (events are handed to
//! the directive sink directly, so nothing depends on the machine's speed): a p95 that rises
//! steadily fires *before* it reaches the threshold, about when its trend says it will reach
//! it within the horizon; a flat one never fires; the condition round-trips through a file.

use mission_core::{Event, EventBody, Sink, SpanEnd, SpanKind, Symbol, Timestamp};
use mission_govern::directives::{Alert, AlertState, DirectiveSet, DirectiveSink, Directives};
use std::sync::{Arc, Mutex};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
/// Stream time of minute 0 (any fixed past time: the engine runs on the events' own time).
const START: u64 = 1_700_000_000 * SECOND;

fn chat(end: u64, took_ms: f64) -> Event {
    let duration_ns = (took_ms * 1e6) as u64;
    let mut e = Event::new(
        Symbol::intern("chat"),
        EventBody::Span(SpanEnd { kind: SpanKind::LlmCall, duration_ns, ..SpanEnd::default() }),
    );
    e.time = Timestamp(end - duration_ns);
    e.tenant = Symbol::intern("acme");
    e.agent = Symbol::intern("support-bot");
    e
}

struct Engine {
    _directives: Directives,
    sink: DirectiveSink,
    alerts: Arc<Mutex<Vec<Alert>>>,
}

fn engine(when: &str) -> Engine {
    let toml = format!(
        "[[directive]]\nname = \"chat-slowing\"\nwhen = \"{when}\"\n\
         where = {{ kind = \"llm_call\", operation = \"chat\" }}\n\
         then = [{{ action = \"callback\", name = \"keep\" }}]\n"
    );
    let set = DirectiveSet::from_toml_str(&toml, "test").expect("directives parse");
    let directives = Directives::new(set).expect("directives compile");
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let keep = alerts.clone();
    directives
        .register_callback("keep", move |a: &Alert| keep.lock().expect("lock").push(a.clone()));
    let sink = directives.sink();
    Engine { _directives: directives, sink, alerts }
}

impl Engine {
    /// Minute `m`'s 20 calls, from half of `p95_ms` to `p95_ms`, spread over the minute. Returns
    /// the p95 of the minute's durations (the 19th of 20).
    fn minute(&mut self, m: u64, p95_ms: f64) -> f64 {
        let durations: Vec<f64> =
            (0..20).map(|j| p95_ms * (0.5 + 0.5 * f64::from(j) / 19.0)).collect();
        let batch: Vec<Event> = durations
            .iter()
            .enumerate()
            .map(|(j, &d)| chat(START + m * MINUTE + j as u64 * 3 * SECOND, d))
            .collect();
        self.sink.consume(&batch).expect("consume");
        durations[18]
    }

    fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().expect("lock").clone()
    }
}

/// p95 rises by 40 ms a minute from 1 s: it reaches 4 s at minute 75. With a 30-minute
/// horizon the trend says "4 s within 30 minutes" from minute 45 on; the directive fires then,
/// half an hour before any call is that slow.
#[test]
fn a_rising_p95_fires_before_it_crosses() {
    let mut e = engine("forecast p95(duration) > 4s within 30m");
    let mut fired_at = None;
    let mut slowest_p95 = 0.0f64;
    for m in 0..90u64 {
        let p95 = e.minute(m, 1000.0 + 40.0 * m as f64);
        if fired_at.is_none() {
            slowest_p95 = slowest_p95.max(p95);
        }
        if fired_at.is_none() && !e.alerts().is_empty() {
            fired_at = Some(m);
        }
    }
    let m = fired_at.expect("the rising p95 fired");
    // Each minute's p95 is 97 % of the rising line: it reaches 4 s around minute 78 and the
    // forecast 30 minutes earlier; buckets are judged as the next one starts.
    assert!((44..=52).contains(&m), "fired at minute {m}");
    assert!(slowest_p95 < 4000.0 * 0.9, "fired before the crossing: p95 {slowest_p95} ms");
    let first = &e.alerts()[0];
    assert_eq!(first.state, AlertState::Firing);
    assert_eq!(first.condition, "forecast p95(duration) > 4000ms within 30m");
    assert_eq!(first.threshold, 4000.0);
    assert!(first.value > 4000.0 && first.value < 4500.0, "{first:?}");
    assert!(
        first.summary.starts_with("p95(duration) forecast > 4000ms in about "),
        "{}",
        first.summary
    );
    assert!(first.time.0 >= START + m * MINUTE, "alert time is stream time: {first:?}");
    // It stays firing while the rise goes on: one incident, no resolve.
    assert!(e.alerts().iter().all(|a| a.state == AlertState::Firing), "{:?}", e.alerts());
}

/// A p95 that only wobbles around 2 s (±10 %) for three hours is never forecast past 4 s; nor
/// is a rising one before its history holds enough buckets.
#[test]
fn a_flat_p95_never_fires() {
    let mut e = engine("forecast p95(duration) > 4s within 30m");
    for m in 0..180u64 {
        let wobble = [1.0, 1.1, 0.95, 0.9, 1.05][(m % 5) as usize];
        e.minute(m, 2000.0 * wobble);
    }
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());

    // Steep (it crosses 4 s at minute 12), but judged only once 15 one-minute buckets hold
    // values: no alert in the first 14 minutes.
    let mut e = engine("forecast p95(duration) > 4s within 30m");
    for m in 0..14u64 {
        e.minute(m, 1000.0 + 250.0 * m as f64);
    }
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
    for m in 14..20u64 {
        e.minute(m, 1000.0 + 250.0 * m as f64);
    }
    assert!(!e.alerts().is_empty(), "a steep rise fires once the history holds enough buckets");
}

/// A falling rate (`<`) fires the same way; the resolve comes when the trend turns.
#[test]
fn a_falling_statistic_fires_and_resolves_when_the_trend_turns() {
    let mut e = engine("forecast avg(duration) < 500ms within 10m");
    // Twenty-second buckets (history 20m): from 2 s down by 100 ms a minute (500 ms at minute
    // 15: forecast from about minute 5, once 15 buckets hold values), then flat at 1.5 s from
    // minute 12 on, so the history turns flat and the incident resolves.
    for m in 0..60u64 {
        let avg = if m < 12 { 2000.0 - 100.0 * m as f64 } else { 1500.0 };
        e.minute(m, avg / 0.75);
    }
    let alerts = e.alerts();
    let states: Vec<AlertState> = alerts.iter().map(|a| a.state).collect();
    assert_eq!(states.first(), Some(&AlertState::Firing), "{alerts:?}");
    assert_eq!(states.last(), Some(&AlertState::Resolved), "{alerts:?}");
    assert!(alerts.last().expect("resolve").summary.contains("no longer forecast"), "{alerts:?}");
}

#[test]
fn forecast_conditions_load_from_files_and_bad_ones_name_the_field() {
    let toml = "[[directive]]\nname = \"x\"\nwhen = \"forecast p99(duration) >= 2.5s within 2h\"\n";
    let set = DirectiveSet::from_toml_str(toml, "x.toml").expect("parses");
    let when = set.directives()[0].trigger();
    assert_eq!(when, "forecast p99(duration) >= 2500ms within 2h");
    assert_eq!(
        when.parse::<mission_govern::directives::Condition>().ok(),
        set.directives()[0].when.clone()
    );
    let bad = "[[directive]]\nname = \"x\"\nwhen = \"forecast count > 3 within 2h\"\n";
    let e = DirectiveSet::from_toml_str(bad, "x.toml").expect_err("count is refused").to_string();
    assert!(e.contains("when") && e.contains("bucket width"), "{e}");
    let bad = "[[directive]]\nname = \"x\"\nwhen = \"forecast avg(cost) > $1 within 8d\"\n";
    let e = DirectiveSet::from_toml_str(bad, "x.toml").expect_err("8d is refused").to_string();
    assert!(e.contains("1m to 7d"), "{e}");
    // A duration statistic on metric events is refused as for thresholds.
    let bad = "[[directive]]\nname = \"x\"\nwhen = \"forecast p95(duration) > 1s within 1h\"\n\
               where = { kind = \"metric\" }\n";
    let e = DirectiveSet::from_toml_str(bad, "x.toml").expect_err("not measured").to_string();
    assert!(e.contains("not measured on metric events"), "{e}");
}
