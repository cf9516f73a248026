use std::sync::{Arc, Mutex};

use mission_core::{
    AttrValue, DEFAULT_IGNORED_TARGETS, Event, EventBody, FnSink, Level, MissionLayer, Pipeline,
    SpanId, SpanKind, Status, Symbol,
};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

fn capture() -> (Pipeline, Arc<Mutex<Vec<Event>>>) {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink_seen = seen.clone();
    let pipeline = Pipeline::builder()
        .with_sink(FnSink::new("capture", move |batch: &[Event]| {
            sink_seen.lock().expect("lock").extend_from_slice(batch);
            Ok(())
        }))
        .start()
        .expect("start");
    (pipeline, seen)
}

fn by_name<'a>(events: &'a [Event], name: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.name.as_str() == name && e.as_span().is_some())
        .unwrap_or_else(|| panic!("no span named {name}"))
}

#[test]
fn nested_spans_keep_parentage_and_fields() {
    let (pipeline, seen) = capture();
    let subscriber = tracing_subscriber::registry()
        .with(MissionLayer::new(pipeline.recorder()).with_tenant("acme").with_agent("support-bot"));
    tracing::subscriber::with_default(subscriber, || {
        let run = tracing::info_span!("invoke_agent", user_id = "u-42");
        let _run = run.enter();
        {
            let llm = tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = "gpt-4o-mini",
                gen_ai.provider.name = "openai",
                gen_ai.usage.input_tokens = tracing::field::Empty,
                gen_ai.usage.output_tokens = tracing::field::Empty,
                gen_ai.usage.cache_read.input_tokens = 100u64,
                temperature = 0.2,
            );
            let _llm = llm.enter();
            llm.record("gen_ai.usage.input_tokens", 812u64);
            llm.record("gen_ai.usage.output_tokens", 64u64);
            tracing::warn!(attempt = 2, "retrying");
        }
        {
            let tool = tracing::info_span!(
                "tool",
                gen_ai.tool.name = "web_search",
                otel.status_code = "ERROR"
            );
            let _tool = tool.enter();
        }
    });
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.delivered, 4);
    let events = seen.lock().expect("lock");
    let run = by_name(&events, "invoke_agent");
    let llm = by_name(&events, "chat");
    let tool = by_name(&events, "web_search");
    assert_eq!(run.parent_span_id, SpanId::NONE);
    assert_eq!(run.as_span().map(|s| s.kind), Some(SpanKind::AgentStep));
    assert_eq!(run.attributes.get(Symbol::intern("user_id")), Some(&AttrValue::string("u-42")));
    assert_eq!(run.tenant.as_str(), "acme");
    assert_eq!(run.agent.as_str(), "support-bot");
    for child in [llm, tool] {
        assert_eq!(child.parent_span_id, run.span_id);
        assert_eq!(child.thread_id, run.thread_id);
        assert!(child.time >= run.time && child.end_time() <= run.end_time());
    }
    let span = llm.as_span().expect("span");
    assert_eq!(span.kind, SpanKind::LlmCall);
    assert_eq!(span.llm.model.as_str(), "gpt-4o-mini");
    assert_eq!(span.llm.provider.as_str(), "openai");
    assert_eq!(
        (span.llm.input_tokens, span.llm.output_tokens, span.llm.cached_input_tokens),
        (812, 64, 100)
    );
    assert_eq!(llm.attributes.get(Symbol::intern("temperature")), Some(&AttrValue::Float(0.2)));
    let tool_span = tool.as_span().expect("span");
    assert_eq!(tool_span.kind, SpanKind::ToolCall);
    assert_eq!(tool_span.status, Status::Error);
    let log = events.iter().find(|e| e.as_log().is_some()).expect("log");
    assert_eq!(log.span_id, llm.span_id, "a log's parent is the span it happened in");
    assert_eq!(log.thread_id, run.thread_id);
    let body = log.as_log().expect("log");
    assert_eq!(body.level, Level::Warn);
    assert_eq!(body.message.as_str(), "retrying");
    assert_eq!(log.attributes.get(Symbol::intern("attempt")), Some(&AttrValue::Int(2)));
}

#[test]
fn parentage_survives_await_in_tokio_tasks() {
    let (pipeline, seen) = capture();
    let subscriber = tracing_subscriber::registry().with(MissionLayer::new(pipeline.recorder()));
    let dispatch = tracing::Dispatch::new(subscriber);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            // Each poll of the task runs with the test's dispatcher, on whichever worker
            // thread tokio picks.
            tasks.push(tokio::spawn(
                async move {
                    async {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        tracing::info!(task = i, "inside");
                        tokio::task::yield_now().await;
                    }
                    .instrument(tracing::info_span!("step", task = i))
                    .await;
                }
                .instrument(tracing::info_span!("root", task = i))
                .with_subscriber(dispatch.clone()),
            ));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    drop(dispatch);
    pipeline.shutdown();
    let events = seen.lock().expect("lock");
    let task_of = |e: &Event| match e.attributes.get(Symbol::intern("task")) {
        Some(AttrValue::Int(i)) => *i,
        other => panic!("no task attribute: {other:?}"),
    };
    for i in 0..8 {
        let root =
            events.iter().find(|e| e.name.as_str() == "root" && task_of(e) == i).expect("root");
        let step =
            events.iter().find(|e| e.name.as_str() == "step" && task_of(e) == i).expect("step");
        let log = events.iter().find(|e| e.as_log().is_some() && task_of(e) == i).expect("log");
        assert_eq!(root.parent_span_id, SpanId::NONE);
        assert_eq!(step.parent_span_id, root.span_id);
        assert_eq!(step.thread_id, root.thread_id);
        assert_eq!(log.span_id, step.span_id);
        assert_eq!(log.thread_id, root.thread_id);
        assert!(step.as_span().expect("span").duration_ns >= 2_000_000, "duration spans the await");
    }
    let roots: std::collections::HashSet<_> =
        events.iter().filter(|e| e.name.as_str() == "root").map(|e| e.thread_id).collect();
    assert_eq!(roots.len(), 8, "each root span starts its own thread");
    assert!(events.iter().all(|e| !matches!(e.body, EventBody::Metric(_))));
}

#[test]
fn exporter_stacks_are_ignored_by_default() {
    let (pipeline, seen) = capture();
    let subscriber = tracing_subscriber::registry()
        .with(MissionLayer::new(pipeline.recorder()).ignore_target("noisy"));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(target: "h2::proto", "poll").in_scope(|| {
            tracing::debug!(target: "hyper::client", "connecting");
        });
        tracing::info!(target: "noisy::module", "ignored too");
        tracing::info!(target: "hyperactive", "not a hyper target: kept");
        tracing::info!("kept");
    });
    pipeline.shutdown();
    let events = seen.lock().expect("lock");
    let messages: Vec<&str> =
        events.iter().filter_map(|e| e.as_log()).map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["not a hyper target: kept", "kept"]);
    assert!(events.iter().all(|e| e.as_span().is_none()));
}

#[test]
fn the_layer_is_told_which_targets_to_ignore_and_names_no_crate_above_it() {
    // The core knows no module path of the crates built on it (it named `mission_sdk::otlp`).
    assert!(DEFAULT_IGNORED_TARGETS.iter().all(|t| !t.starts_with("mission")));
    let (pipeline, seen) = capture();
    let layer = MissionLayer::new(pipeline.recorder())
        .ignore_targets(["my_exporter::otlp", "other_exporter"]);
    let ignored: Vec<&str> = layer.ignored_targets().collect();
    assert_eq!(ignored.len(), DEFAULT_IGNORED_TARGETS.len() + 2);
    assert!(ignored.ends_with(&["my_exporter::otlp", "other_exporter"]));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "my_exporter::otlp::delivery", "the exporter's own: ignored");
        tracing::info!(target: "other_exporter", "ignored too");
        tracing::info!(target: "my_exporter::otlpx", "a sibling module: kept");
        tracing::info!(target: "my_exporter", "its parent: kept");
    });
    pipeline.shutdown();
    let events = seen.lock().expect("lock");
    let messages: Vec<&str> =
        events.iter().filter_map(|e| e.as_log()).map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["a sibling module: kept", "its parent: kept"]);
}
