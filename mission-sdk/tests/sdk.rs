//! The agent API end to end: guards, cost, parentage, trace context, live hub.

use std::time::Duration;

use mission_sdk::{
    AttrValue, Decision, Event, EventBody, EventFilter, Level, MissionControl, ModelPrice,
    PriceTable, SpanKind, Status,
};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

fn control(dir: &TempDir) -> MissionControl {
    MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .build()
        .expect("build")
}

/// An instance pricing `gpt-test*` of `openai` at $2/M input, $0.5/M cached input, $8/M output.
fn priced_control(dir: &TempDir, as_of: Option<&str>) -> MissionControl {
    let prices = PriceTable {
        prices: vec![{
            let price =
                ModelPrice::new("openai", "gpt-test*", 2.0, 8.0).with_cached_input_per_million(0.5);
            match as_of {
                Some(date) => price.with_as_of(date),
                None => price,
            }
        }],
    };
    MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_price_table(prices)
        .build()
        .expect("build")
}

fn drain(sub: &mission_sdk::Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = sub.recv_timeout(Duration::from_millis(200)) {
        out.push(e);
    }
    out
}

fn span_named<'a>(events: &'a [Event], name: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.name.as_str() == name)
        .unwrap_or_else(|| panic!("no event {name}: {events:#?}"))
}

#[test]
fn spans_nest_under_the_thread_with_genai_names() {
    let dir = TempDir::new("nest");
    let control = control(&dir);
    let sub = control.subscribe(EventFilter::all(), 1000);
    let agent = control.agent("support-bot");
    let thread = agent.thread();
    {
        let step = thread.step("plan");
        let mut call = step.llm_call("gpt-4o-mini", "openai");
        call.record_usage(100, 10).set_finish_reason("stop");
        call.end();
        step.tool_call("web_search").end();
        step.retrieval("vector_search").end();
    }
    let thread_id = thread.id();
    thread.end();
    control.flush().expect("flush");
    let events = drain(&sub);
    assert_eq!(events.len(), 5);
    let root = span_named(&events, "invoke_agent");
    let step = span_named(&events, "plan");
    let chat = span_named(&events, "chat");
    let tool = span_named(&events, "web_search");
    let retrieval = span_named(&events, "vector_search");
    assert!(root.parent_span_id.is_none());
    assert_eq!(step.parent_span_id, root.span_id);
    for child in [chat, tool, retrieval] {
        assert_eq!(child.parent_span_id, step.span_id);
    }
    for e in &events {
        assert_eq!(e.thread_id, thread_id);
        assert_eq!(e.tenant.as_str(), "acme");
        assert_eq!(e.agent.as_str(), "support-bot");
    }
    assert_eq!(chat.as_span().map(|s| s.kind), Some(SpanKind::LlmCall));
    assert_eq!(tool.as_span().map(|s| s.kind), Some(SpanKind::ToolCall));
    assert_eq!(chat.as_span().map(|s| s.llm.model.as_str()), Some("gpt-4o-mini"));
    assert_eq!(
        chat.attributes.get(mission_sdk::core::Symbol::intern("gen_ai.response.finish_reasons")),
        Some(&AttrValue::string("stop"))
    );
    // Everything is in the store too.
    let store = control.store().expect("store").expect("open");
    assert_eq!(store.thread(&thread_id.to_string()).expect("thread").event_count, 5);
}

fn lookup(order: u32) -> Result<u32, String> {
    if order == 0 { Err("no such order".into()) } else { Ok(order) }
}

fn handle(control: &MissionControl, order: u32) -> Result<u32, String> {
    let thread = control.agent("billing").thread();
    let mut tool = thread.tool_call("lookup_order");
    let found = tool.check(lookup(order))?; // early return: both guards still record
    Ok(found)
}

#[test]
fn guards_record_on_early_return_and_on_panic() {
    let dir = TempDir::new("guards");
    let control = control(&dir);
    let sub = control
        .subscribe(EventFilter { kinds: vec!["tool_call".into()], ..EventFilter::default() }, 100);
    assert_eq!(handle(&control, 7), Ok(7));
    assert_eq!(handle(&control, 0), Err("no such order".into()));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let thread = control.agent("billing").thread();
        let _tool = thread.tool_call("explode");
        panic!("tool blew up");
    }));
    assert!(panicked.is_err());
    control.flush().expect("flush");
    let tools = drain(&sub);
    assert_eq!(tools.len(), 3);
    let status = |e: &Event| e.as_span().map(|s| (s.status, s.error_message.to_string()));
    assert_eq!(status(&tools[0]), Some((Status::Unset, String::new())));
    assert_eq!(status(&tools[1]), Some((Status::Error, "no such order".into())));
    assert_eq!(status(&tools[2]), Some((Status::Error, "panicked".into())));
    assert_eq!(
        control.stats().events_by_kind.iter().find(|(k, _)| k == "agent_step").map(|(_, n)| *n),
        Some(3)
    );
}

#[test]
fn cost_matches_a_fixed_table_including_cached_tokens() {
    let dir = TempDir::new("cost");
    let control = priced_control(&dir, Some("2026-11-24"));
    let thread = control.agent("a").thread();
    {
        let mut call = thread.llm_call("gpt-test-1", "openai");
        // 10,000 input of which 4,000 cached; 2,000 output of which 500 reasoning.
        call.record_usage(10_000, 2_000).record_cached_tokens(4_000).record_reasoning_tokens(500);
    }
    {
        let mut unpriced = thread.llm_call("mystery-model", "nobody");
        unpriced.record_usage(1_000, 1_000);
    }
    thread.end();
    control.flush().expect("flush");
    // By hand: 6,000 × $2/M + 4,000 × $0.5/M + 2,000 × $8/M = 0.012 + 0.002 + 0.016 = $0.030.
    let stats = control.stats();
    let model = stats.models.iter().find(|m| m.model == "gpt-test-1").expect("model");
    assert!((model.usage.cost_usd - 0.030).abs() < 1e-12, "{}", model.usage.cost_usd);
    assert_eq!(model.usage.cached_input_tokens, 4_000);
    assert_eq!(model.usage.reasoning_tokens, 500);
    assert_eq!(
        stats.models.iter().find(|m| m.model == "mystery-model").map(|m| m.usage.cost_usd),
        Some(0.0)
    );
    assert!((stats.usage.cost_usd - 0.030).abs() < 1e-12);
}

#[test]
fn a_model_set_after_the_call_started_prices_it() {
    let dir = TempDir::new("set-model");
    let control = priced_control(&dir, None);
    let sub = control.subscribe(EventFilter::all(), 1000);
    let thread = control.agent("a").thread();
    {
        // The Responses API names the model only in its answer.
        let mut call = thread.llm_call("", "openai");
        call.set_response_model("gpt-test-2026-01-01");
        call.record_usage(812, 64).record_cached_tokens(512);
    }
    {
        // Asked for one model, then told which snapshot answered.
        let mut call = thread.llm_call("unknown-yet", "openai");
        call.set_model("gpt-test-1").set_response_model("gpt-test-1-0613");
        call.record_usage(1_000, 0);
    }
    {
        let mut tool = thread.tool_call("search");
        tool.set_model("gpt-test-1").set_response_model("gpt-test-1");
    }
    thread.end();
    control.flush().expect("flush");
    let events = drain(&sub);
    let calls: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Span(s) if s.kind == SpanKind::LlmCall => Some((e, s)),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2, "{events:#?}");
    let (first, usage) = (calls[0].0, calls[0].1.llm);
    assert_eq!(usage.model.as_str(), "gpt-test-2026-01-01");
    // 300 × $2/M + 512 × $0.5/M + 64 × $8/M = 0.0006 + 0.000256 + 0.000512.
    assert!((usage.cost_usd - 0.001368).abs() < 1e-12, "{}", usage.cost_usd);
    assert_eq!(
        first.attributes.get(mission_sdk::core::Symbol::intern("gen_ai.response.model")),
        Some(&AttrValue::string("gpt-test-2026-01-01"))
    );
    let (second, usage) = (calls[1].0, calls[1].1.llm);
    assert_eq!(usage.model.as_str(), "gpt-test-1");
    assert!((usage.cost_usd - 0.002).abs() < 1e-12, "{}", usage.cost_usd);
    assert_eq!(
        second.attributes.get(mission_sdk::core::Symbol::intern("gen_ai.response.model")),
        Some(&AttrValue::string("gpt-test-1-0613"))
    );
    let tool = span_named(&events, "search");
    assert!(matches!(&tool.body, EventBody::Span(s) if s.llm.model.is_empty()));
}

#[test]
fn threads_continue_and_hand_off_trace_context() {
    let dir = TempDir::new("traceparent");
    let control = control(&dir);
    let sub = control.subscribe(EventFilter::all(), 100);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let thread = control.agent("a").continue_thread(incoming).expect("traceparent");
    assert_eq!(thread.id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let call = thread.tool_call("downstream");
    let outgoing = call.traceparent();
    assert_eq!(outgoing, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", call.span_id()));
    call.end();
    thread.end();
    control.flush().expect("flush");
    let events = drain(&sub);
    let root = span_named(&events, "invoke_agent");
    assert_eq!(
        root.parent_span_id.to_string(),
        "00f067aa0ba902b7",
        "the root continues the caller's span"
    );
    for bad in [
        "",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-xyz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let err = control.agent("a").continue_thread(bad).unwrap_err();
        assert!(err.to_string().contains("traceparent"), "{err}");
    }
}

#[test]
fn logs_and_permissions_are_recorded_with_fields() {
    let dir = TempDir::new("logs");
    let control = control(&dir);
    let sub = control.subscribe(
        EventFilter { kinds: vec!["log".into(), "permission".into()], ..EventFilter::default() },
        100,
    );
    control.log(Level::Warn, "retrying", &[("attempt", AttrValue::Int(2))]);
    control.permission("support-bot", "tool.call", "refund_payment", Decision::Deny, "no-refunds");
    control.flush().expect("flush");
    let events = drain(&sub);
    assert_eq!(events.len(), 2);
    let log = events[0].as_log().expect("log");
    assert_eq!((log.level, log.message.as_str()), (Level::Warn, "retrying"));
    assert_eq!(
        events[0].attributes.get(mission_sdk::core::Symbol::intern("attempt")),
        Some(&AttrValue::Int(2))
    );
    let EventBody::Permission(p) = &events[1].body else { panic!("not a permission") };
    assert_eq!(
        (p.decision, p.resource.as_str(), p.policy.as_str()),
        (Decision::Deny, "refund_payment", "no-refunds")
    );
}

#[test]
fn a_slow_subscriber_loses_only_its_own_oldest_events() {
    let dir = TempDir::new("hub");
    let control = control(&dir);
    // Logs only: the models' memory samples are events too.
    let logs = || EventFilter { kinds: vec!["log".into()], ..EventFilter::default() };
    let slow = control.subscribe(logs(), 10);
    let fast = control.subscribe(logs(), 10_000);
    for i in 0..500 {
        control.log(Level::Info, &format!("event {i}"), &[]);
    }
    control.flush().expect("flush");
    let fast_events = drain(&fast);
    assert_eq!(fast_events.len(), 500, "the fast subscriber misses nothing");
    let messages: Vec<String> =
        fast_events.iter().map(|e| e.as_log().expect("log").message.to_string()).collect();
    assert_eq!(
        messages,
        (0..500).map(|i| format!("event {i}")).collect::<Vec<_>>(),
        "in recording order"
    );
    let slow_events = drain(&slow);
    assert_eq!(slow_events.len(), 10);
    assert_eq!(slow.lagged(), 490);
    assert_eq!(
        slow_events[0].as_log().expect("log").message.as_str(),
        "event 490",
        "it kept the newest"
    );
    assert_eq!(control.health().accounting.dropped, 0, "the pipeline dropped nothing");
}

#[test]
fn spans_work_across_await_and_subscriptions_are_async() {
    let dir = TempDir::new("async");
    let control = control(&dir);
    let sub = control
        .subscribe(EventFilter { kinds: vec!["tool_call".into()], ..EventFilter::default() }, 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let received = runtime.block_on(async {
        let thread = control.agent("async-agent").thread();
        let ok: Result<u32, String> = thread
            .tool_call("slow_api")
            .instrument(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(1)
            })
            .await;
        assert_eq!(ok, Ok(1));
        let failed: Result<u32, String> =
            thread.tool_call("broken_api").instrument(async { Err("503".to_string()) }).await;
        assert!(failed.is_err());
        thread.end();
        let first =
            tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time");
        let second =
            tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time");
        (first, second)
    });
    let (first, second) = (received.0.expect("event"), received.1.expect("event"));
    assert!(first.as_span().expect("span").duration_ns >= 20_000_000, "the span covers the await");
    assert_eq!(second.as_span().map(|s| s.status), Some(Status::Error));
}

#[test]
fn hanging_spans_show_as_in_flight_before_they_end() {
    let dir = TempDir::new("in-flight");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        // Long enough that "nothing is overdue yet" holds however slowly the next lines run.
        .with_in_flight_after(Duration::from_secs(2))
        .build()
        .expect("build");
    let sub =
        control.subscribe(EventFilter { kinds: vec!["log".into()], ..EventFilter::default() }, 100);
    let thread = control.agent("stuck-agent").thread();
    let hanging = thread.tool_call("never_returns");
    let quick = thread.tool_call("quick");
    quick.end();
    assert!(control.in_flight().is_empty(), "nothing is overdue yet");
    // The watchdog looks every 100 ms; on a loaded machine give it time to have looked.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while control.in_flight_report().overdue < 2
        || mission_sdk::read_in_flight_file(&dir.0).map_or(0, |f| f.len()) < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the watchdog never reported: {:?}",
            control.in_flight_report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let overdue = control.in_flight();
    let names: Vec<&str> = overdue.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["invoke_agent", "never_returns"], "oldest first; the ended span is gone");
    assert!(overdue.iter().all(|s| s.age_ms >= 2000 && s.agent == "stuck-agent"));
    assert_eq!(overdue[1].span_id, hanging.span_id().to_string());
    let report = control.in_flight_report();
    assert_eq!((report.open, report.overdue), (2, 2));
    // Announced once each in the live stream (and so in the store), inside the hanging span.
    let notices = drain(&sub);
    assert_eq!(notices.len(), 2, "{notices:#?}");
    let notice =
        notices.iter().find(|e| e.span_id == hanging.span_id()).expect("notice for the tool call");
    assert!(notice.as_log().expect("log").message.contains("never_returns still in flight"));
    // A process that died now would leave this file behind.
    let on_disk = mission_sdk::read_in_flight_file(&dir.0).expect("file");
    assert_eq!(on_disk.len(), 2);
    drop(hanging);
    thread.end();
    assert!(control.in_flight().is_empty());
    assert_eq!(control.in_flight_report().open, 0);
    drop(control);
    assert!(
        mission_sdk::read_in_flight_file(&dir.0).expect("file").is_empty(),
        "a clean stop clears the file"
    );
}

#[test]
fn sampling_keeps_every_interesting_thread_and_counts_what_it_skips() {
    use mission_sdk::{SamplingConfig, SamplingSink};

    let dir = TempDir::new("sampling");
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_sampling(
            SamplingConfig::default().with_rate(0.0).with_slow_span(Duration::from_secs(30)),
        )
        .build()
        .expect("build");
    let agent = control.agent("sampled-agent");
    let mut kept = Vec::new();
    for _ in 0..20 {
        let thread = agent.thread();
        thread.llm_call("gpt-4o-mini", "openai").end();
        thread.end();
    }
    {
        let thread = agent.thread();
        thread.tool_call("flaky").end_with_error_for_test();
        kept.push(thread.id());
        thread.end();
    }
    {
        let thread = agent.thread();
        thread.permission(
            "sampled-agent",
            "tool.call",
            "refund_payment",
            Decision::Deny,
            "no-refunds",
        );
        kept.push(thread.id());
        thread.end();
    }
    {
        // A slow tool call timed elsewhere: a minute long, however fast or slow the machine
        // (and the ordinary calls above stay far below `slow_span` even on a stalled one).
        use mission_sdk::core::{Symbol, ThreadContext, Timestamp};
        let ctx = ThreadContext::new(Symbol::intern("default"), Symbol::intern("sampled-agent"));
        let recorder = control.recorder();
        let name = Symbol::intern("invoke_agent");
        let root = recorder.start_span(&ctx, SpanKind::AgentStep, name, None);
        let parent = Some(root.span_id());
        let slow = recorder.start_span(&ctx, SpanKind::ToolCall, Symbol::intern("slow"), parent);
        let end = Timestamp(slow.start_time().0 + 60_000_000_000);
        slow.end_at(end);
        root.end_at(end);
        kept.push(ctx.thread_id);
    }
    control.flush().expect("flush");
    let sampling = control.sampling_stats().expect("sampling on");
    assert_eq!(
        (
            sampling.kept_error,
            sampling.kept_denial,
            sampling.kept_slow,
            sampling.kept_sampled,
            sampling.skipped_threads
        ),
        (1, 1, 1, 0, 20),
        "{sampling:?}"
    );
    assert_eq!(sampling.skipped_events, 40);
    let store = control.store().expect("store").expect("open");
    let stored: std::collections::HashSet<String> =
        store.threads(store.query()).expect("threads").into_iter().map(|t| t.thread_id).collect();
    let expected: std::collections::HashSet<String> = kept.iter().map(|t| t.to_string()).collect();
    assert_eq!(stored, expected, "the store holds exactly the interesting threads");
    // Statistics see everything, sampled or not.
    assert_eq!(control.stats().usage.llm_calls, 20);

    // The rate is deterministic per thread and close to what was asked.
    let kept_share = (0..10_000)
        .filter(|_| SamplingSink::rate_keeps(0.3, mission_sdk::ThreadId::generate()))
        .count();
    assert!((2_700..=3_300).contains(&kept_share), "{kept_share}");
    let id = mission_sdk::ThreadId::generate();
    assert_eq!(SamplingSink::rate_keeps(0.5, id), SamplingSink::rate_keeps(0.5, id));
    assert!(SamplingSink::rate_keeps(1.0, id) && !SamplingSink::rate_keeps(0.0, id));
}

trait EndWithError {
    fn end_with_error_for_test(self);
}

impl EndWithError for mission_sdk::Span<'_> {
    fn end_with_error_for_test(mut self) {
        self.set_error("boom");
        self.end();
    }
}

#[test]
fn sampling_settings_out_of_range_are_refused_naming_field_and_range() {
    use mission_sdk::SamplingConfig;
    let dir = TempDir::new("sampling-ranges");
    let build = |sampling: SamplingConfig| {
        MissionControl::builder()
            .ignore_environment()
            .with_store_root(&dir.0)
            .with_sampling(sampling)
            .build()
    };
    assert_eq!(SamplingConfig::default().validate(), Ok(()));
    drop(build(SamplingConfig::default()).expect("the defaults pass"));
    let cases = [
        (SamplingConfig::default().with_rate(1.5), "rate", "0 to 1"),
        (SamplingConfig::default().with_rate(f64::NAN), "rate", "0 to 1"),
        (SamplingConfig::default().with_slow_span(Duration::ZERO), "slow_span", "1us to 86400s"),
        (SamplingConfig::default().with_max_wait(Duration::ZERO), "max_wait", "1ms"),
        (SamplingConfig::default().with_max_buffered_events(0), "max_buffered_events", "16777216"),
    ];
    for (sampling, field, range) in cases {
        let err = build(sampling).expect_err(field).to_string();
        assert!(
            err.contains("with_sampling")
                && err.contains(&format!("`{field}`"))
                && err.contains(range),
            "{err}"
        );
    }
}

/// Issue 15, section 4: distinct names beyond the statistics' bound are merged and counted, and
/// the count shows in health (`HealthReport::stats_overflowed`, which the MCP `health` tool
/// and `mission://health` resource serialize for an admin). Before the bound, 600,000 agent
/// names took 1.1 GB and nothing said so.
#[test]
fn operations_past_the_statistics_bound_are_counted_in_health() {
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .without_models()
        .with_tenant("acme")
        .build()
        .expect("build");
    let bound = mission_sdk::core::StatsConfig::default().max_operations;
    let agent = control.agent("crawler");
    let thread = agent.thread();
    for i in 0..10 {
        thread.step(&format!("op-{i}")).end();
    }
    control.flush().expect("flush");
    assert_eq!(control.health_report().stats_overflowed, 0, "within the bound");
    // `bound + 76` distinct operations, plus the thread's root span `invoke_agent`: 77 more
    // distinct (agent, operation) pairs than the bound, one span each.
    for i in 10..bound + 76 {
        thread.step(&format!("op-{i}")).end();
    }
    thread.end();
    control.flush().expect("flush");
    let report = control.health_report();
    assert_eq!(report.stats_overflowed, 77);
    let json = serde_json::to_value(&report).expect("serialize");
    assert_eq!(json["stats_overflowed"], 77, "{}", json["stats_overflowed"]);
    assert_eq!(control.stats().overflowed, 77);
}

#[test]
fn scores_on_threads_spans_and_late_by_id_reach_the_store() {
    use mission_sdk::redact::CONTENT_OMITTED;
    use mission_sdk::{Error, Score, ScoreSource, Store};

    let dir = TempDir::new("scores");
    let control = control(&dir);
    let mut thread = control.agent("support-bot").thread();
    let id = thread.id();
    let root = thread.root().span_id();
    let call_id = {
        let call = thread.llm_call("gpt-4o-mini", "openai");
        let pass = Score::new(1.0).expect("finite").with_label("pass");
        assert!(call.score("correctness", pass.with_source(ScoreSource::Rule)).expect("score"));
        call.span_id()
    };
    let judged = Score::new(0.9).expect("finite").with_comment("the user said thanks");
    assert!(thread.score("helpfulness", judged.clone()).expect("score"));
    assert!(matches!(thread.score("  ", judged), Err(Error::Score(_))), "an empty name");
    assert!(Score::new(f64::NAN).is_err() && Score::new(f64::NEG_INFINITY).is_err());
    thread.end();
    control.shutdown();

    // Later, from another instance (another process would do the same): only the id is needed.
    let later = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .with_service_name("feedback-api")
        .with_content_capture(["acme"])
        .build()
        .expect("build");
    let thumbs = Score::new(-1.0).expect("finite").with_comment("wrong order number");
    assert!(later.score_thread(id, "thumbs", thumbs).expect("score"));
    later.shutdown();

    let store = Store::open(&dir.0).expect("open");
    let scores = store.scores(store.query().thread(&id.to_string())).expect("scores");
    let by_name = |n: &str| scores.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(scores.len(), 3, "{scores:#?}");
    let correctness = by_name("correctness");
    assert_eq!(correctness.span_id, Some(call_id.to_string()));
    assert_eq!((correctness.value, correctness.source.as_str()), (1.0, "rule"));
    assert_eq!(correctness.label.as_deref(), Some("pass"));
    let helpfulness = by_name("helpfulness");
    assert_eq!(helpfulness.span_id, Some(root.to_string()));
    assert_eq!(helpfulness.agent, "support-bot");
    // A comment is content: omitted for a tenant that does not capture content …
    assert_eq!(helpfulness.comment.as_deref(), Some(CONTENT_OMITTED));
    // … and kept for one that does.
    let late = by_name("thumbs");
    assert_eq!((late.value, late.span_id.as_deref()), (-1.0, None));
    assert_eq!(
        (late.agent.as_str(), late.comment.as_deref()),
        ("feedback-api", Some("wrong order number"))
    );
    let view = store.thread(&id.to_string()).expect("thread");
    assert_eq!(view.scores.len(), 3);
}
