//! An agent built on `async-openai` (a widely used Rust OpenAI client), recorded through the
//! thin wrapper in `mission_examples::openai`, against a fake OpenAI server on loopback: each
//! call lands as an LLM call with request and response model, exact tokens by kind and the
//! exact cost from the SDK's built-in price table, under the span it was made in.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use mission_examples::openai;
use mission_sdk::core::{SpanEnd, Symbol};
use mission_sdk::{
    AttrValue, Event, EventBody, EventFilter, MissionControl, SpanId, SpanKind, Status, ThreadId,
};

#[path = "support/fake_openai.rs"]
mod fake_openai;
use fake_openai::{CACHED, FakeOpenAi, GPT_4O_MINI_SNAPSHOT, INPUT, OUTPUT, REASONING};

fn control() -> MissionControl {
    MissionControl::builder().ignore_environment().without_store().build().expect("build")
}

fn client(server: &FakeOpenAi) -> Client<OpenAIConfig> {
    // reqwest's rustls without a provider (unified in from the SDK's `tls`) panics otherwise.
    mission_sdk::tls::install_default_provider();
    Client::with_config(OpenAIConfig::new().with_api_base(&server.base_url).with_api_key("sk-test"))
}

fn request(model: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessage::from("Weather in Paris?").into()])
        .max_completion_tokens(100u32)
        .build()
        .expect("request")
}

/// The events of `thread` up to its root span's end, which comes last: an explicit wait with a
/// deadline per event, no sleep.
fn thread_events(sub: &mission_sdk::Subscription, thread: ThreadId) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let event = sub
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the thread's root span never arrived: {events:#?}"));
        let root_ended = event.thread_id == thread
            && event.parent_span_id == SpanId::NONE
            && matches!(event.body, EventBody::Span(_));
        if event.thread_id == thread {
            events.push(event);
        }
        if root_ended {
            return events;
        }
    }
}

fn llm_calls(events: &[Event]) -> Vec<(&Event, &SpanEnd)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Span(s) if s.kind == SpanKind::LlmCall => Some((e, s)),
            _ => None,
        })
        .collect()
}

fn attribute(event: &Event, key: &str) -> Option<AttrValue> {
    event.attributes.get(Symbol::intern(key)).cloned()
}

#[tokio::test(flavor = "current_thread")]
async fn a_chat_completion_lands_with_model_tokens_and_cost() {
    let server = FakeOpenAi::start();
    let control = control();
    let sub = control.subscribe(EventFilter::all(), 1_000);
    let client = client(&server);
    let thread = control.agent("support-bot").thread();
    let turn = thread.step("turn");
    let request = request("gpt-4o-mini");
    let call = turn.llm_call(&request.model, openai::PROVIDER);
    let answer = openai::chat(&client, call, request).await.expect("the fake answers");
    assert_eq!(answer.model, GPT_4O_MINI_SNAPSHOT);
    let turn_id = turn.span_id();
    turn.end();
    let thread_id = thread.id();
    thread.end();
    control.flush().expect("flush");

    // What reached the server is what the agent asked for.
    let asked = server.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].0, "/v1/chat/completions");
    assert_eq!(asked[0].1["model"], "gpt-4o-mini");
    assert_eq!(asked[0].1["messages"][0]["content"], "Weather in Paris?");

    let events = thread_events(&sub, thread_id);
    let calls = llm_calls(&events);
    assert_eq!(calls.len(), 1, "{events:#?}");
    let (event, span) = calls[0];
    assert_eq!(event.agent.as_str(), "support-bot");
    assert_eq!(event.parent_span_id, turn_id, "the call is the turn's child");
    assert_ne!(span.status, Status::Error);
    let usage = span.llm;
    assert_eq!(usage.model.as_str(), "gpt-4o-mini");
    assert_eq!(usage.provider.as_str(), "openai");
    assert_eq!(
        (
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens
        ),
        (INPUT, CACHED, OUTPUT, REASONING)
    );
    // The built-in price of gpt-4o-mini ($0.15/M input, $0.075/M cached input, $0.60/M output),
    // by hand: 300 × 0.15 + 512 × 0.075 + 64 × 0.60 = 45 + 38.4 + 38.4 = 121.8 µ$.
    assert!((usage.cost_usd - 0.000_121_8).abs() < 1e-15, "cost {}", usage.cost_usd);
    assert_eq!(
        attribute(event, "gen_ai.response.model"),
        Some(AttrValue::string(GPT_4O_MINI_SNAPSHOT))
    );
    assert_eq!(attribute(event, "gen_ai.response.id"), Some(AttrValue::string("chatcmpl-1")));
    assert_eq!(attribute(event, "gen_ai.response.finish_reasons"), Some(AttrValue::string("stop")));
    assert_eq!(attribute(event, "gen_ai.request.max_tokens"), Some(AttrValue::from(100_i64)));
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_call_fails_with_the_providers_message_and_costs_nothing() {
    let server = FakeOpenAi::start();
    let control = control();
    let sub = control.subscribe(EventFilter::all(), 1_000);
    let client = client(&server);
    let thread = control.agent("support-bot").thread();
    let request = request("fail-400");
    let call = thread.llm_call(&request.model, openai::PROVIDER);
    let error = openai::chat(&client, call, request).await.expect_err("the fake refuses");
    assert!(error.to_string().contains("does not exist"), "{error}");
    let thread_id = thread.id();
    thread.end();
    control.flush().expect("flush");

    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
    let events = thread_events(&sub, thread_id);
    let calls = llm_calls(&events);
    assert_eq!(calls.len(), 1, "{events:#?}");
    let span = calls[0].1;
    assert_eq!(span.status, Status::Error);
    assert!(span.error_message.as_str().contains("does not exist"), "{:?}", span.error_message);
    assert_eq!(span.llm.model.as_str(), "fail-400");
    assert_eq!((span.llm.input_tokens, span.llm.output_tokens), (0, 0));
    assert_eq!(span.llm.cost_usd, 0.0);
}
