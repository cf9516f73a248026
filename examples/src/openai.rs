//! An agent built on [`async-openai`](async_openai), recorded with a thin wrapper: what an agent
//! author writes once around the client's Chat Completions call so that every call becomes an
//! LLM call with request and response model, tokens by kind (input, cached input, output,
//! reasoning), cost from the SDK's price table, finish reasons and, for a failed call, its
//! error. (Feature `openai`.)
//!
//! ```no_run
//! use async_openai::{Client, config::OpenAIConfig};
//! use async_openai::types::chat::CreateChatCompletionRequestArgs;
//! use mission_sdk::MissionControl;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let control = MissionControl::builder().build()?;
//! // Where the build turns on reqwest's `rustls-no-provider` (the SDK's `tls` feature does),
//! // install a crypto provider before building the client.
//! mission_sdk::tls::install_default_provider();
//! let client = Client::with_config(OpenAIConfig::new().with_api_base("http://127.0.0.1:8080/v1"));
//! let thread = control.agent("support-bot").thread();
//! let request = CreateChatCompletionRequestArgs::default()
//!     .model("gpt-4o-mini")
//!     .messages([async_openai::types::chat::ChatCompletionRequestUserMessage::from("Hi").into()])
//!     .build()?;
//! let call = thread.llm_call(&request.model, mission_examples::openai::PROVIDER);
//! let answer = mission_examples::openai::chat(&client, call, request).await?;
//! # drop(answer);
//! thread.end();
//! # Ok(()) }
//! ```

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    CreateChatCompletionRequest, CreateChatCompletionResponse, FinishReason,
};
use mission_sdk::Span;

/// The provider name the price table knows OpenAI's models by (`gen_ai.provider.name`).
pub const PROVIDER: &str = "openai";

/// Sends `request` through `client` inside `call` (an LLM call the caller started, under the
/// span the call belongs to) and ends `call` with what the answer says: the model that
/// answered, its usage, the response id and the finish reasons. A failed call ends the span
/// failed with the client's error message; the result reaches the caller unchanged.
pub async fn chat<C: Config>(
    client: &Client<C>,
    mut call: Span<'_>,
    request: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    if let Some(max) = request.max_completion_tokens {
        call.set_attribute("gen_ai.request.max_tokens", i64::from(max));
    }
    if let Some(temperature) = request.temperature {
        call.set_attribute("gen_ai.request.temperature", f64::from(temperature));
    }
    let result = client.chat().create(request).await;
    if let Ok(answer) = &result {
        record_answer(&mut call, answer);
    }
    call.instrument(async { result }).await
}

/// Records a Chat Completions answer on an LLM call: the response model and id, the usage
/// (prompt tokens include the cached ones, completion tokens the reasoning ones, as the SDK
/// counts them) and the finish reasons of every choice.
pub fn record_answer(call: &mut Span<'_>, answer: &CreateChatCompletionResponse) {
    call.set_response_model(&answer.model);
    call.set_attribute("gen_ai.response.id", answer.id.as_str());
    if let Some(usage) = &answer.usage {
        call.record_usage(usage.prompt_tokens, usage.completion_tokens);
        if let Some(cached) = usage.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens) {
            call.record_cached_tokens(cached);
        }
        if let Some(reasoning) =
            usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens)
        {
            call.record_reasoning_tokens(reasoning);
        }
    }
    let reasons: Vec<&str> =
        answer.choices.iter().filter_map(|c| c.finish_reason.map(finish_reason)).collect();
    if !reasons.is_empty() {
        call.set_finish_reason(&reasons.join(","));
    }
}

/// The wire name of a finish reason.
fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}
