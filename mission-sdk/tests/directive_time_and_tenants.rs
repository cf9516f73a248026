//! Directives on event time and per tenant, driven deterministically: events and wall-clock
//! ticks are handed to the directive sink directly, in the order a slow machine would deliver
//! them, so nothing here depends on the machine's speed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mission_core::{
    Event, EventBody, LlmUsage, Sink, SpanEnd, SpanKind, Status, Symbol, Timestamp,
};
use mission_sdk::directives::{
    Alert, AlertState, DirectiveError, DirectiveSet, DirectiveSink, Directives, IDLE_AFTER, Permit,
};

const SECOND: u64 = 1_000_000_000;

fn span(tenant: &str, kind: SpanKind, name: &str, model: &str, end: u64, took: Duration) -> Event {
    let duration_ns = took.as_nanos() as u64;
    let mut e = Event::new(
        Symbol::intern(name),
        EventBody::Span(SpanEnd {
            kind,
            duration_ns,
            llm: LlmUsage { model: Symbol::intern(model), ..LlmUsage::default() },
            ..SpanEnd::default()
        }),
    );
    e.time = Timestamp(end - duration_ns);
    e.tenant = Symbol::intern(tenant);
    e.agent = Symbol::intern("support-bot");
    e
}

fn failed_tool_call(tenant: &str, tool: &str, end: u64) -> Event {
    let mut e = span(tenant, SpanKind::ToolCall, tool, "", end, Duration::from_millis(5));
    if let EventBody::Span(s) = &mut e.body {
        s.status = Status::Error;
    }
    e
}

struct Engine {
    directives: Directives,
    sink: DirectiveSink,
    alerts: Arc<Mutex<Vec<Alert>>>,
}

fn engine(toml: &str) -> Engine {
    let set = DirectiveSet::from_toml_str(toml, "test").expect("directives parse");
    let directives = Directives::new(set).expect("directives compile");
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let keep = alerts.clone();
    directives
        .register_callback("keep", move |a: &Alert| keep.lock().expect("lock").push(a.clone()));
    let sink = directives.sink();
    Engine { directives, sink, alerts }
}

/// One directive named `name` on `when`, over the events `filter` matches, calling `keep`.
fn watching(name: &str, when: &str, filter: &str) -> Engine {
    engine(&format!(
        "[[directive]]\nname = \"{name}\"\nwhen = \"{when}\"\nwhere = {{ {filter} }}\n\
         then = [{{ action = \"callback\", name = \"keep\" }}]\n"
    ))
}

impl Engine {
    fn consume(&mut self, batch: &[Event]) {
        self.sink.consume(batch).expect("consume");
    }

    fn tick(&mut self, wall: u64) {
        self.sink.tick(Timestamp(wall)).expect("tick");
    }

    fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().expect("lock").clone()
    }
}

const SLOW_MODEL: &str = r#"
    [[directive]]
    name = "llm-slow"
    when = "p95(duration) > 10s over 5m"
    where = { kind = "llm_call" }
    group_by = ["model"]
    min_events = 20
    then = [{ action = "callback", name = "keep" }]
"#;

/// The quick start on a slow machine: an hour of simulated LLM calls (ending now) is recorded
/// in a few seconds of wall time, and the pipeline's wall-clock ticks come between batches.
/// Before event time, the first tick moved the clock to the wall clock, every simulated event
/// was behind it and dropped, and the slowed model's directive never fired.
#[test]
fn simulated_time_fires_on_its_own_clock_whatever_the_ticks_say() {
    let mut e = engine(SLOW_MODEL);
    let wall = Timestamp::now().0;
    let start = wall - 3600 * SECOND;
    // A tick before the first event (building the pipeline takes a while in debug).
    e.tick(wall);
    let mut batch = Vec::new();
    for i in 0..720u64 {
        let end = start + i * 5 * SECOND;
        // The last quarter: claude-sonnet-4 is twenty times slower.
        let slow = i >= 540;
        for (model, took) in [("gpt-4.1", 1), ("claude-sonnet-4", if slow { 20 } else { 1 })] {
            batch.push(span(
                "acme",
                SpanKind::LlmCall,
                "chat",
                model,
                end,
                Duration::from_secs(took),
            ));
        }
        if batch.len() >= 16 {
            e.consume(&batch);
            batch.clear();
            // The wall clock moves on a little between batches; events keep arriving.
            e.tick(wall + i * SECOND / 100);
        }
    }
    e.consume(&batch);
    let alerts = e.alerts();
    let fired: Vec<&Alert> = alerts.iter().filter(|a| a.state == AlertState::Firing).collect();
    assert_eq!(fired.len(), 1, "{alerts:?}");
    let a = fired[0];
    assert_eq!(a.group, [("model".to_owned(), "claude-sonnet-4".to_owned())]);
    // Stamped with the simulated time: after the slowdown began, never the wall clock.
    assert!(a.time.0 > start + 2700 * SECOND && a.time.0 <= start + 3600 * SECOND, "{a:?}");
    let status = &e.directives.list()[0];
    assert_eq!(status.late_events, 0);
    assert_eq!(e.directives.stats().late_events, 0);
}

/// An event older than its window at the watermark is late: counted, per directive and in
/// total, and not added; one inside the window behind the watermark is added.
#[test]
fn late_events_are_counted_not_dropped_silently() {
    let mut e = watching("busy", "count > 1 over 5m", r#"kind = "tool_call""#);
    let t = 1_700_000_000 * SECOND;
    let call = |end: u64| span("acme", SpanKind::ToolCall, "search", "", end, Duration::ZERO);
    // Watched whole from t - 10m.
    e.consume(&[call(t - 600 * SECOND)]);
    e.consume(&[call(t)]);
    // 4 minutes behind the watermark: within the 5-minute window, added.
    e.consume(&[call(t - 240 * SECOND)]);
    // 6 minutes behind: late.
    e.consume(&[call(t - 360 * SECOND)]);
    assert_eq!(e.directives.list()[0].late_events, 1);
    assert_eq!(e.directives.stats().late_events, 1);
    // Two in the window when the next bucket is judged: t and t - 4m.
    e.consume(&[call(t + 10 * SECOND)]);
    assert_eq!(e.alerts().len(), 1, "the in-window late arrival counted: {:?}", e.alerts());
}

/// The wall clock moves a directive's clock only when nothing arrives for [`IDLE_AFTER`], and
/// then by the wall time passed since the quiet began, from the last event's time.
#[test]
fn the_wall_clock_only_moves_time_when_no_event_arrives() {
    let mut e = watching("heartbeat-silent", "count == 0 over 1m", r#"operation = "heartbeat""#);
    let wall = 1_800_000_000 * SECOND;
    let sim = wall - 86_400 * SECOND;
    let beat = |end: u64| span("acme", SpanKind::Custom, "heartbeat", "", end, Duration::ZERO);
    e.tick(wall);
    e.consume(&[beat(sim)]);
    // Events keep arriving between ticks: the ticks do not move the clock, however late.
    for i in 1..=30u64 {
        e.consume(&[beat(sim + i * SECOND)]);
        e.tick(wall + i * 10 * SECOND);
    }
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
    // Quiet, but for less than IDLE_AFTER: nothing moves.
    let quiet = wall + 300 * SECOND;
    let idle = IDLE_AFTER.as_nanos() as u64;
    e.tick(quiet);
    e.tick(quiet + idle / 2);
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
    // Quiet for 61s: the clock is the last heartbeat plus 61s, not the wall clock.
    e.tick(quiet + 61 * SECOND);
    let alerts = e.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].state, AlertState::Firing);
    assert_eq!(alerts[0].time.0, sim + 30 * SECOND + 61 * SECOND);
    // A heartbeat resolves it, at its own time.
    e.consume(&[beat(sim + 95 * SECOND)]);
    e.tick(quiet + 62 * SECOND);
    e.consume(&[beat(sim + 96 * SECOND)]);
    let alerts = e.alerts();
    assert_eq!(alerts.last().map(|a| a.state), Some(AlertState::Resolved), "{alerts:?}");
}

/// Before its first event a directive's clock follows the wall clock (silence is seen with no
/// events at all), and it never runs past the wall clock while idle.
#[test]
fn before_any_event_the_clock_follows_the_wall_clock() {
    let mut e = watching("heartbeat-silent", "count == 0 over 1m", r#"operation = "heartbeat""#);
    let wall = 1_800_000_000 * SECOND;
    e.tick(wall);
    e.tick(wall + 59 * SECOND);
    assert!(e.alerts().is_empty());
    e.tick(wall + 61 * SECOND);
    let alerts = e.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].time.0, wall + 61 * SECOND);
}

const TOOL_FAILING: &str = r#"
    [[directive]]
    name = "tool-failing"
    when = "3 failures in a row"
    where = { kind = "tool_call" }
    group_by = ["operation"]
    then = [{ action = "callback", name = "keep" }, { action = "open_breaker", cool_down = "10m" }]
"#;

/// `fail tenant-0 web_search 4` then `fail tenant-1 web_search 1`: the incident stays
/// tenant-0's, tenant-1 cannot see or acknowledge it, and tenant-1's single failure opens no
/// breaker for anyone while tenant-0's breaker denies tenant-0 only.
#[test]
fn incidents_and_breakers_stay_with_their_tenant() {
    let mut e = engine(TOOL_FAILING);
    let t = 1_700_000_000 * SECOND;
    for i in 0..4 {
        e.consume(&[failed_tool_call("tenant-0", "web_search", t + i * SECOND)]);
    }
    e.consume(&[failed_tool_call("tenant-1", "web_search", t + 10 * SECOND)]);

    let d = &e.directives;
    // Listing: tenant-0 sees its incident, tenant-1 sees none.
    let zero = &d.list_for(Some("tenant-0"))[0];
    assert_eq!(zero.firing.len(), 1, "{zero:?}");
    assert_eq!(zero.firing[0].tenant, "tenant-0");
    assert_eq!(zero.firing[0].dedup_key, "tool-failing:operation=web_search");
    assert!(d.list_for(Some("tenant-1"))[0].firing.is_empty());
    // Acknowledging: tenant-1's operator cannot; tenant-0's can.
    let err = d
        .acknowledge_in("tool-failing:operation=web_search", "op-1", "", Some("tenant-1"))
        .expect_err("not tenant-1's");
    assert!(matches!(err, DirectiveError::NotFiring(_)), "{err}");
    assert!(d.list()[0].firing[0].acknowledged.is_none());
    let acked = d
        .acknowledge_in("tool-failing", "op-0", "looking", Some("tenant-0"))
        .expect("tenant-0's own");
    assert_eq!((acked.len(), acked[0].tenant.as_str()), (1, "tenant-0"));
    // Breakers: per (tenant, tool).
    assert!(!d.permit_for("tenant-0", "web_search").is_allowed());
    assert_eq!(d.permit_for("tenant-1", "web_search"), Permit::Allow);
    assert_eq!(d.breakers_for("tenant-1"), []);
    assert_eq!(d.breakers()[0].tenant, "tenant-0");
}

/// The other way round: tenant-1's failures trip tenant-1's breaker, never tenant-0's.
#[test]
fn one_tenants_failures_never_deny_another_tenant() {
    let mut e = engine(TOOL_FAILING);
    let t = 1_700_000_000 * SECOND;
    e.consume(&[failed_tool_call("tenant-0", "web_search", t)]);
    for i in 1..=3 {
        e.consume(&[failed_tool_call("tenant-1", "web_search", t + i * SECOND)]);
    }
    let d = &e.directives;
    assert_eq!(d.permit_for("tenant-0", "web_search"), Permit::Allow);
    assert!(!d.permit_for("tenant-1", "web_search").is_allowed());
    let alerts = e.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].tenant, "tenant-1");
}

/// A directive across tenants: one incident for every tenant's events, no tenant on it, so a
/// tenant-scoped principal neither sees nor acknowledges it; its breaker denies everyone.
#[test]
fn a_directive_across_tenants_is_seen_and_touched_by_principals_of_every_tenant_only() {
    let mut e = engine(&TOOL_FAILING.replace(
        "group_by = [\"operation\"]",
        "group_by = [\"operation\"]\n    across_tenants = true",
    ));
    let t = 1_700_000_000 * SECOND;
    e.consume(&[failed_tool_call("tenant-0", "web_search", t)]);
    e.consume(&[failed_tool_call("tenant-1", "web_search", t + SECOND)]);
    e.consume(&[failed_tool_call("tenant-0", "web_search", t + 2 * SECOND)]);
    let d = &e.directives;
    let all = &d.list()[0];
    assert!(all.across_tenants);
    assert_eq!(all.firing.len(), 1, "{all:?}");
    assert_eq!(all.firing[0].tenant, "");
    assert!(d.list_for(Some("tenant-0"))[0].firing.is_empty());
    assert!(d.acknowledge_in("tool-failing", "op-0", "", Some("tenant-0")).is_err());
    assert!(!d.permit_for("tenant-0", "web_search").is_allowed());
    assert!(!d.permit_for("tenant-1", "web_search").is_allowed());
    assert_eq!(d.acknowledge_in("tool-failing", "admin", "", None).expect("unscoped").len(), 1);
    // Grouping by tenant across tenants is a contradiction, refused with the field.
    let err = DirectiveSet::from_toml_str(
        "[[directive]]\nname = \"x\"\nwhen = \"3 failures in a row\"\ngroup_by = [\"tenant\"]\n\
         across_tenants = true\n",
        "inline",
    )
    .expect_err("contradiction");
    assert!(err.to_string().contains("across_tenants"), "{err}");
}

/// At the MissionControl level: its `permit` asks for its own tenant's breaker, so another
/// tenant's failures never deny it; and late events show in its health report.
#[test]
fn mission_control_permits_per_tenant_and_reports_late_events_in_health() {
    let set = DirectiveSet::from_toml_str(
        &format!(
            "{TOOL_FAILING}\n[[directive]]\nname = \"busy\"\nwhen = \"count > 100 over 1m\"\n\
             where = {{ kind = \"tool_call\" }}\n"
        ),
        "test",
    )
    .expect("directives");
    let control = mission_sdk::MissionControl::builder()
        .ignore_environment()
        .without_store()
        .without_models()
        .with_tenant("tenant-0")
        .with_directives(set)
        .build()
        .expect("build");
    let recorder = control.recorder();
    let fail = |tenant: &str, end: u64| {
        let ctx = mission_core::ThreadContext::new(Symbol::intern(tenant), Symbol::intern("bot"));
        let name = Symbol::intern("web_search");
        let span = recorder.start_span_at(&ctx, SpanKind::ToolCall, name, None, Timestamp(end));
        span.end_at_with_error(Timestamp(end), "boom");
    };
    let now = Timestamp::now().0;
    let allowed =
        |c: &mission_sdk::MissionControl| c.permit("bot", "tool.call", "web_search").allowed;
    for i in 0..3 {
        fail("tenant-1", now + i);
    }
    control.flush().expect("flush");
    assert!(allowed(&control), "tenant-1's breaker does not deny tenant-0");
    assert_eq!(control.permit_tool("web_search"), Permit::Allow);
    for i in 0..3 {
        fail("tenant-0", now + 10 + i);
    }
    control.flush().expect("flush");
    assert!(!allowed(&control), "tenant-0's own failures do");
    // Ten minutes behind the 1-minute window's watermark: late, and health says so.
    fail("tenant-0", now - 600 * SECOND);
    control.flush().expect("flush");
    let health = control.health_report();
    assert_eq!(health.directives.late_events, 1, "{:?}", health.directives);
    assert_eq!(control.directives().list()[1].late_events, 1);
}

/// 2026-12-07 10:00:00 UTC, in ns.
const TEN_AM: u64 = 1_796_637_600 * SECOND;

const EVERY_FIVE_MINUTES: &str = r#"
    [[directive]]
    name = "every-5m"
    schedule = "*/5 * * * *"
    then = [{ action = "callback", name = "keep" }]
"#;

/// A scheduled directive fires on the wall clock its ticks give: at each due time reached,
/// once, with the due times a gap skipped counted as missed rather than run one by one.
#[test]
fn a_cron_directive_fires_on_schedule_under_a_controllable_clock() {
    let mut e = engine(EVERY_FIVE_MINUTES);
    let fired = |e: &Engine| -> Vec<(u64, Option<u64>)> {
        e.alerts().iter().map(|a| (a.time.0, a.missed)).collect()
    };
    // The first tick sets the first due time: 10:00.
    e.tick(TEN_AM - 30 * SECOND);
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
    e.tick(TEN_AM);
    assert_eq!(fired(&e), [(TEN_AM, Some(0))]);
    let a = &e.alerts()[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.directive, "every-5m");
    assert_eq!(a.condition, "schedule */5 * * * *");
    // Not again until 10:05: not at 10:01, nor at 10:04:59.
    e.tick(TEN_AM + 60 * SECOND);
    e.tick(TEN_AM + 299 * SECOND);
    assert_eq!(e.alerts().len(), 1, "{:?}", e.alerts());
    // Events neither fire it nor move it.
    e.consume(&[failed_tool_call("acme", "search", TEN_AM + 299 * SECOND)]);
    assert_eq!(e.alerts().len(), 1);
    e.tick(TEN_AM + 300 * SECOND);
    assert_eq!(fired(&e), [(TEN_AM, Some(0)), (TEN_AM + 300 * SECOND, Some(0))]);
    // No tick for an hour: one firing at 11:05, the 11 due times before it missed.
    let eleven_oh_five = TEN_AM + 3900 * SECOND;
    e.tick(eleven_oh_five);
    let alerts = e.alerts();
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert_eq!((alerts[2].time.0, alerts[2].missed), (eleven_oh_five, Some(11)));
    assert!(alerts[2].summary.contains("11 earlier runs missed"), "{}", alerts[2].summary);
    assert_eq!(alerts[2].value, 12.0);
    e.tick(eleven_oh_five + SECOND);
    e.tick(eleven_oh_five + 299 * SECOND);
    assert_eq!(e.alerts().len(), 3);
    e.tick(eleven_oh_five + 300 * SECOND);
    assert_eq!(e.alerts().len(), 4);
    assert_eq!(e.alerts()[3].missed, Some(0));
    // It fires and never resolves: no incident stays open.
    let status = &e.directives.list()[0];
    assert_eq!(status.condition, "schedule */5 * * * *");
    assert!(status.firing.is_empty(), "{status:?}");
    assert!(e.alerts().iter().all(|a| a.state == AlertState::Firing));
    assert_eq!(e.directives.stats().fired, 4);
    // Disabled, it does not fire; enabled again, it starts afresh from its next due time
    // (what passed while it was off is not "missed").
    e.directives.set_enabled("every-5m", false).expect("disable");
    e.tick(eleven_oh_five + 600 * SECOND);
    assert_eq!(e.alerts().len(), 4);
    e.directives.set_enabled("every-5m", true).expect("enable");
    e.tick(eleven_oh_five + 7200 * SECOND + 30 * SECOND);
    assert_eq!(e.alerts().len(), 4);
    e.tick(eleven_oh_five + 7500 * SECOND);
    assert_eq!(e.alerts().len(), 5);
    assert_eq!(e.alerts()[4].missed, Some(0));
}

#[test]
fn a_directive_needs_when_or_schedule_and_a_bad_schedule_names_its_field() {
    let load = |toml: &str| DirectiveSet::from_toml_str(toml, "test.toml").map(drop);
    assert!(load(EVERY_FIVE_MINUTES).is_ok());
    let neither = "[[directive]]\nname = \"x\"\n";
    let e = load(neither).expect_err("neither").to_string();
    assert!(e.contains("needs `when` (a condition) or `schedule`"), "{e}");
    let both =
        "[[directive]]\nname = \"x\"\nwhen = \"3 failures in a row\"\nschedule = \"* * * * *\"\n";
    let e = load(both).expect_err("both").to_string();
    assert!(e.contains("`when` or `schedule`, not both"), "{e}");
    let bad = "[[directive]]\nname = \"x\"\nschedule = \"*/5 25 * * *\"\n";
    let e = load(bad).expect_err("hour 25").to_string();
    assert!(e.contains("the hour field \"25\" is not 0–23") && e.contains("line 3"), "{e}");
    let short = "[[directive]]\nname = \"x\"\nschedule = \"*/5 * * *\"\n";
    let e = load(short).expect_err("4 fields").to_string();
    assert!(e.contains("expected 5 fields"), "{e}");
    let lasting = "[[directive]]\nname = \"x\"\nschedule = \"0 * * * *\"\n\
                   then = [{ action = \"set_sampling\", rate = 1.0 }]\n";
    let e = load(lasting).expect_err("set_sampling").to_string();
    assert!(e.contains("then[0]") && e.contains("never resolves"), "{e}");
}
