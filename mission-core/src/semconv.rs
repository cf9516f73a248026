//! One table of the GenAI attribute conventions in wide use, and the typed fields they map onto.
//!
//! Instrumentation libraries name the same facts differently: the OpenTelemetry GenAI semantic
//! conventions (and their older names), OpenLLMetry (Traceloop), OpenInference (Arize),
//! Logfire / Pydantic AI and Langfuse. [`ATTRIBUTES`] lists every name we read, with what it
//! means and who defined it; [`OPERATIONS`] maps the values naming an operation or a span kind
//! onto a [`SpanKind`]. [`GenAiFields`] reads a span's attributes through both tables and gives
//! back the kind, the [`LlmUsage`] (tokens normalised to our meaning: input includes cached,
//! output includes reasoning), the agent and the tool. The Python OpenTelemetry bridge and the
//! OTLP receiver use it, so a convention added here is understood everywhere: both make their
//! span events with [`span_event`].
//!
//! ```
//! use mission_core::semconv::{GenAiFields, Value};
//! use mission_core::SpanKind;
//!
//! let mut fields = GenAiFields::default();
//! for (key, value) in [
//!     ("openinference.span.kind", Value::Str("LLM")),
//!     ("llm.model_name", Value::Str("gpt-4o-mini")),
//!     ("llm.token_count.prompt", Value::Int(812)),
//!     ("llm.token_count.prompt_details.cache_read", Value::Int(512)),
//!     ("llm.token_count.completion", Value::Int(64)),
//! ] {
//!     assert!(fields.read(key, value));
//! }
//! assert!(!fields.read("app.region", Value::Str("eu")));
//! assert_eq!(fields.kind(), Some(SpanKind::LlmCall));
//! let usage = fields.usage();
//! assert_eq!((usage.input_tokens, usage.cached_input_tokens, usage.output_tokens), (812, 512, 64));
//! ```

use std::collections::HashMap;
use std::sync::OnceLock;

mod foreign;
pub use foreign::{
    ATTRIBUTES_DROPPED, ForeignSpan, ForeignValue, MAX_FOREIGN_ATTRIBUTES, span_event,
};

use crate::{LlmUsage, SpanKind, Symbol};

/// Who defined an attribute name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Convention {
    /// The OpenTelemetry GenAI semantic conventions, current names.
    OtelGenAi,
    /// Names the OpenTelemetry GenAI conventions used before (still emitted by many libraries).
    OtelGenAiDeprecated,
    /// OpenLLMetry (Traceloop's `opentelemetry-instrumentation-*` packages).
    OpenLlmetry,
    /// OpenInference (Arize Phoenix's `openinference-instrumentation-*` packages).
    OpenInference,
    /// Logfire and Pydantic AI.
    Logfire,
    /// Langfuse's OpenTelemetry attributes.
    Langfuse,
    /// Mission Control's own (`mission.kind`, set by its integrations and `tracing` users).
    Mission,
}

/// What an attribute carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Meaning {
    /// The operation or kind of span (`chat`, `execute_tool`, `LLM`, `generation`…), mapped
    /// onto a [`SpanKind`] by [`OPERATIONS`].
    Operation,
    /// The model asked for.
    RequestModel,
    /// The model that answered.
    ResponseModel,
    /// The provider (`openai`, `anthropic`…).
    Provider,
    /// Input tokens, cached ones included.
    InputTokens,
    /// Input tokens not read from nor written to a cache (the cached ones are added to them).
    UncachedInputTokens,
    /// Output tokens, reasoning ones included.
    OutputTokens,
    /// Of the input tokens, those read from the provider's cache.
    CacheReadTokens,
    /// Of the input tokens, those written to the provider's cache.
    CacheCreationTokens,
    /// Of the output tokens, the reasoning ones.
    ReasoningTokens,
    /// The agent's name.
    AgentName,
    /// The tool's name.
    ToolName,
    /// A JSON object of token counts by kind (Langfuse's usage details), read with
    /// [`USAGE_DETAILS`].
    UsageDetails,
    /// The call's cost in US dollars as the sender computed it (used when the price table
    /// does not price the model).
    CostUsd,
}

/// One attribute name of one convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The attribute's key.
    pub key: &'static str,
    /// What it carries.
    pub meaning: Meaning,
    /// Who defined it.
    pub convention: Convention,
}

const fn m(key: &'static str, meaning: Meaning, convention: Convention) -> Mapping {
    Mapping { key, meaning, convention }
}

use Convention::{
    Langfuse, Logfire, Mission, OpenInference, OpenLlmetry, OtelGenAi, OtelGenAiDeprecated,
};
use Meaning::{
    AgentName, CacheCreationTokens, CacheReadTokens, CostUsd, InputTokens, Operation, OutputTokens,
    Provider, ReasoningTokens, RequestModel, ResponseModel, ToolName, UncachedInputTokens,
    UsageDetails,
};

/// Every attribute name read, with its meaning. When a span carries several names of one
/// meaning, the first in this table wins.
pub const ATTRIBUTES: &[Mapping] = &[
    // OpenTelemetry GenAI, current.
    m("gen_ai.operation.name", Operation, OtelGenAi),
    m("gen_ai.request.model", RequestModel, OtelGenAi),
    m("gen_ai.response.model", ResponseModel, OtelGenAi),
    m("gen_ai.provider.name", Provider, OtelGenAi),
    m("gen_ai.usage.input_tokens", InputTokens, OtelGenAi),
    m("gen_ai.usage.output_tokens", OutputTokens, OtelGenAi),
    m("gen_ai.usage.cache_read.input_tokens", CacheReadTokens, OtelGenAi),
    m("gen_ai.usage.cache_creation.input_tokens", CacheCreationTokens, OtelGenAi),
    m("gen_ai.usage.reasoning.output_tokens", ReasoningTokens, OtelGenAi),
    m("gen_ai.agent.name", AgentName, OtelGenAi),
    m("gen_ai.tool.name", ToolName, OtelGenAi),
    // OpenTelemetry GenAI, older names.
    m("gen_ai.system", Provider, OtelGenAiDeprecated),
    m("gen_ai.usage.prompt_tokens", InputTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.completion_tokens", OutputTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.cached_tokens", CacheReadTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.input_tokens.cached", CacheReadTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.input_tokens.cache_write", CacheCreationTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.reasoning_tokens", ReasoningTokens, OtelGenAiDeprecated),
    m("gen_ai.usage.output_tokens.reasoning", ReasoningTokens, OtelGenAiDeprecated),
    // OpenLLMetry.
    m("llm.request.type", Operation, OpenLlmetry),
    m("traceloop.span.kind", Operation, OpenLlmetry),
    m("gen_ai.usage.cache_read_input_tokens", CacheReadTokens, OpenLlmetry),
    m("gen_ai.usage.cache_creation_input_tokens", CacheCreationTokens, OpenLlmetry),
    m("llm.usage.cache_read_input_tokens", CacheReadTokens, OpenLlmetry),
    m("llm.usage.cache_creation_input_tokens", CacheCreationTokens, OpenLlmetry),
    m("llm.usage.prompt_tokens", InputTokens, OpenLlmetry),
    m("llm.usage.completion_tokens", OutputTokens, OpenLlmetry),
    m("llm.usage.reasoning_tokens", ReasoningTokens, OpenLlmetry),
    // OpenInference.
    m("openinference.span.kind", Operation, OpenInference),
    m("llm.model_name", RequestModel, OpenInference),
    m("llm.request.model_name", RequestModel, OpenInference),
    m("embedding.model_name", RequestModel, OpenInference),
    m("llm.response.model_name", ResponseModel, OpenInference),
    m("llm.provider", Provider, OpenInference),
    m("llm.system", Provider, OpenInference),
    m("llm.token_count.prompt", InputTokens, OpenInference),
    m("llm.token_count.completion", OutputTokens, OpenInference),
    m("llm.token_count.prompt_details.cache_read", CacheReadTokens, OpenInference),
    m("llm.token_count.prompt_details.cache_input", CacheReadTokens, OpenInference),
    m("llm.token_count.prompt_details.cache_write", CacheCreationTokens, OpenInference),
    m("llm.token_count.completion_details.reasoning", ReasoningTokens, OpenInference),
    m("agent.name", AgentName, OpenInference),
    m("tool.name", ToolName, OpenInference),
    // Logfire and Pydantic AI (usage details beside the GenAI names). Logfire's own OpenAI and
    // Anthropic instrumentation (logfire-sdk 5.4, read from its source) writes the OTel GenAI
    // names above, `gen_ai.usage.cache_read.input_tokens` and `..cache_creation..` included, with
    // input counting cache reads and writes as ours does; the `details.*` names come from
    // Pydantic AI's usage details.
    m("gen_ai.usage.details.cache_read_tokens", CacheReadTokens, Logfire),
    m("gen_ai.usage.details.cached_tokens", CacheReadTokens, Logfire),
    m("gen_ai.usage.details.cache_write_tokens", CacheCreationTokens, Logfire),
    m("gen_ai.usage.details.reasoning_tokens", ReasoningTokens, Logfire),
    m("agent_name", AgentName, Logfire),
    // Langfuse.
    m("langfuse.observation.type", Operation, Langfuse),
    m("langfuse.observation.model.name", RequestModel, Langfuse),
    m("langfuse.observation.usage_details", UsageDetails, Langfuse),
    // Ours (`gen_ai.usage.cost` is what our OTLP exporter sends: no convention names a cost).
    m("mission.kind", Operation, Mission),
    m("gen_ai.usage.cost", CostUsd, Mission),
];

/// The keys of a usage-details JSON object ([`Meaning::UsageDetails`]), with their meaning.
/// Langfuse counts each kind apart: its `input` excludes cached tokens.
pub const USAGE_DETAILS: &[(&str, Meaning)] = &[
    ("input", UncachedInputTokens),
    ("prompt_tokens", InputTokens),
    ("input_tokens", InputTokens),
    ("output", OutputTokens),
    ("completion_tokens", OutputTokens),
    ("output_tokens", OutputTokens),
    ("cache_read_input_tokens", CacheReadTokens),
    ("input_cached_tokens", CacheReadTokens),
    ("input_cache_read", CacheReadTokens),
    ("cache_creation_input_tokens", CacheCreationTokens),
    ("input_cache_creation", CacheCreationTokens),
    ("input_cache_write", CacheCreationTokens),
    ("output_reasoning_tokens", ReasoningTokens),
    ("output_reasoning", ReasoningTokens),
    ("reasoning_tokens", ReasoningTokens),
];

/// Values of a [`Meaning::Operation`] attribute (matched ignoring ASCII case) and
/// the kind of span they make. A value not listed decides nothing.
pub const OPERATIONS: &[(&str, SpanKind)] = &[
    // OpenTelemetry GenAI `gen_ai.operation.name`; OpenLLMetry `llm.request.type`.
    ("chat", SpanKind::LlmCall),
    ("text_completion", SpanKind::LlmCall),
    ("completion", SpanKind::LlmCall),
    ("generate_content", SpanKind::LlmCall),
    ("embeddings", SpanKind::LlmCall),
    ("embedding", SpanKind::LlmCall),
    ("rerank", SpanKind::LlmCall),
    ("responses", SpanKind::LlmCall),
    ("execute_tool", SpanKind::ToolCall),
    ("invoke_agent", SpanKind::AgentStep),
    ("create_agent", SpanKind::AgentStep),
    ("invoke_workflow", SpanKind::AgentStep),
    ("retrieval", SpanKind::Retrieval),
    ("retrieve", SpanKind::Retrieval),
    // OpenInference `openinference.span.kind`.
    ("llm", SpanKind::LlmCall),
    ("tool", SpanKind::ToolCall),
    ("agent", SpanKind::AgentStep),
    ("chain", SpanKind::AgentStep),
    ("retriever", SpanKind::Retrieval),
    ("reranker", SpanKind::Retrieval),
    ("guardrail", SpanKind::Custom),
    ("evaluator", SpanKind::Custom),
    ("prompt", SpanKind::Custom),
    // OpenLLMetry `traceloop.span.kind`.
    ("workflow", SpanKind::AgentStep),
    ("task", SpanKind::AgentStep),
    // Langfuse `langfuse.observation.type`.
    ("generation", SpanKind::LlmCall),
    ("span", SpanKind::Custom),
    ("event", SpanKind::Custom),
    // Mission Control's `mission.kind`: the kinds by name.
    ("llm_call", SpanKind::LlmCall),
    ("tool_call", SpanKind::ToolCall),
    ("agent_step", SpanKind::AgentStep),
    ("custom", SpanKind::Custom),
];

fn index() -> &'static HashMap<&'static str, Meaning> {
    static INDEX: OnceLock<HashMap<&'static str, Meaning>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = HashMap::with_capacity(ATTRIBUTES.len());
        for mapping in ATTRIBUTES {
            map.entry(mapping.key).or_insert(mapping.meaning);
        }
        map
    })
}

/// What the attribute `key` carries, if the table knows it.
pub fn meaning(key: &str) -> Option<Meaning> {
    index().get(key).copied()
}

/// The kind of span an operation value names, if any (ignoring ASCII case).
pub fn kind_of_operation(value: &str) -> Option<SpanKind> {
    OPERATIONS.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, kind)| *kind)
}

/// The keys carrying `meaning`, in table order (the agent's name, for a bridge that tracks
/// which agent a span belongs to while it is open).
pub fn keys_for(meaning: Meaning) -> impl Iterator<Item = &'static str> {
    ATTRIBUTES.iter().filter(move |m| m.meaning == meaning).map(|m| m.key)
}

/// An attribute value as the mapping reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Value<'_> {
    /// A token count: a non-negative integer (an integral float or a decimal string too),
    /// saturated at `u32::MAX`; `None` for anything else.
    fn count(self) -> Option<u32> {
        let n: i128 = match self {
            Value::Int(n) => i128::from(n),
            Value::Float(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 => f as i128,
            Value::Str(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        (n >= 0).then(|| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// An amount of money: finite and not negative.
    fn dollars(self) -> Option<f64> {
        let v = match self {
            Value::Float(f) => f,
            Value::Int(n) => n as f64,
            Value::Str(s) => s.trim().parse().ok()?,
            Value::Bool(_) => return None,
        };
        (v.is_finite() && v >= 0.0).then_some(v)
    }

    fn text(self) -> Option<&'static str> {
        match self {
            Value::Str(s) if !s.is_empty() => Some(Symbol::intern(s).as_str()),
            _ => None,
        }
    }
}

/// The typed fields read from one span's attributes, whatever convention named them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GenAiFields {
    operation: Option<SpanKind>,
    request_model: Option<&'static str>,
    response_model: Option<&'static str>,
    provider: Option<&'static str>,
    input: Option<u32>,
    uncached_input: Option<u32>,
    output: Option<u32>,
    cache_read: Option<u32>,
    cache_creation: Option<u32>,
    reasoning: Option<u32>,
    agent: Option<&'static str>,
    tool: Option<&'static str>,
    cost: Option<f64>,
}

fn first<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            if slot.is_none() {
                *slot = Some(v);
            }
            true
        }
        None => false,
    }
}

impl GenAiFields {
    /// Reads one attribute. True if the table knows its key and the value fits (it is then a
    /// typed field and need not be kept as an attribute); false otherwise (keep it as given).
    /// Of several keys with one meaning, the first read wins.
    pub fn read(&mut self, key: &str, value: Value<'_>) -> bool {
        match meaning(key) {
            Some(UsageDetails) => match value {
                Value::Str(json) => self.read_usage_details(json),
                _ => false,
            },
            Some(meaning) => self.set(meaning, value),
            None => false,
        }
    }

    fn set(&mut self, meaning: Meaning, value: Value<'_>) -> bool {
        match meaning {
            Operation => match value {
                Value::Str(s) => {
                    if let Some(kind) = kind_of_operation(s) {
                        first(&mut self.operation, Some(kind));
                    }
                    true
                }
                _ => false,
            },
            RequestModel => first(&mut self.request_model, value.text()),
            ResponseModel => first(&mut self.response_model, value.text()),
            Provider => first(&mut self.provider, value.text()),
            InputTokens => first(&mut self.input, value.count()),
            UncachedInputTokens => first(&mut self.uncached_input, value.count()),
            OutputTokens => first(&mut self.output, value.count()),
            CacheReadTokens => first(&mut self.cache_read, value.count()),
            CacheCreationTokens => first(&mut self.cache_creation, value.count()),
            ReasoningTokens => first(&mut self.reasoning, value.count()),
            AgentName => first(&mut self.agent, value.text()),
            ToolName => first(&mut self.tool, value.text()),
            CostUsd => first(&mut self.cost, value.dollars()),
            UsageDetails => false,
        }
    }

    /// A flat JSON object of counts (`{"input": 300, "cache_read_input_tokens": 512}`); true
    /// if it parsed. Unknown keys are ignored.
    fn read_usage_details(&mut self, json: &str) -> bool {
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(json) else {
            return false;
        };
        for (key, value) in &object {
            let Some((_, meaning)) = USAGE_DETAILS.iter().find(|(k, _)| k == key) else {
                continue;
            };
            if let Some(n) = value.as_i64() {
                self.set(*meaning, Value::Int(n));
            }
        }
        true
    }

    /// The kind of span: the one its operation names; else an LLM call when it names a model
    /// or counts tokens; else a tool call when it names a tool; else unknown.
    pub fn kind(&self) -> Option<SpanKind> {
        if let Some(kind) = self.operation {
            return Some(kind);
        }
        let has_usage = [self.input, self.uncached_input, self.output].iter().any(Option::is_some);
        if self.request_model.is_some() || self.response_model.is_some() || has_usage {
            Some(SpanKind::LlmCall)
        } else if self.tool.is_some() {
            Some(SpanKind::ToolCall)
        } else {
            None
        }
    }

    /// The usage in our terms (cost not computed): input includes cached and cache-written
    /// tokens, output includes reasoning ones (each part clamped to its whole); the model is
    /// the one asked for, else the one that answered.
    pub fn usage(&self) -> LlmUsage {
        let cache_read = self.cache_read.unwrap_or(0);
        let input = match (self.input, self.uncached_input) {
            (Some(input), _) => input,
            (None, Some(uncached)) => {
                uncached.saturating_add(cache_read).saturating_add(self.cache_creation.unwrap_or(0))
            }
            (None, None) => 0,
        };
        let output = self.output.unwrap_or(0);
        let sym = |s: Option<&'static str>| s.map_or(Symbol::EMPTY, Symbol::intern);
        LlmUsage {
            model: sym(self.request_model.or(self.response_model)),
            provider: sym(self.provider),
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cache_read.min(input),
            reasoning_tokens: self.reasoning.unwrap_or(0).min(output),
            cost_usd: 0.0,
        }
    }

    /// The model that answered, when named.
    pub fn response_model(&self) -> Option<&'static str> {
        self.response_model
    }

    /// Of the input tokens, those written to the provider's cache, when counted.
    pub fn cache_creation_input_tokens(&self) -> Option<u32> {
        self.cache_creation
    }

    /// The agent's name, when named.
    pub fn agent(&self) -> Option<&'static str> {
        self.agent
    }

    /// The tool's name, when named.
    pub fn tool(&self) -> Option<&'static str> {
        self.tool
    }

    /// The cost the sender stated (`gen_ai.usage.cost`, US dollars), when it did.
    pub fn cost(&self) -> Option<f64> {
        self.cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, Value<'_>)]) -> GenAiFields {
        let mut fields = GenAiFields::default();
        for (key, value) in pairs {
            fields.read(key, *value);
        }
        fields
    }

    #[test]
    fn every_key_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for mapping in ATTRIBUTES {
            assert!(seen.insert(mapping.key), "{} listed twice", mapping.key);
        }
        let mut values = std::collections::HashSet::new();
        for (value, _) in OPERATIONS {
            assert!(values.insert(value.to_ascii_lowercase()), "{value} listed twice");
        }
    }

    #[test]
    fn openllmetry_cached_tokens_are_part_of_the_input() {
        let fields = read(&[
            ("llm.request.type", Value::Str("chat")),
            ("gen_ai.system", Value::Str("openai")),
            ("gen_ai.request.model", Value::Str("gpt-4o-mini")),
            ("gen_ai.response.model", Value::Str("gpt-4o-mini-2024-07-18")),
            ("gen_ai.usage.input_tokens", Value::Int(812)),
            ("gen_ai.usage.output_tokens", Value::Int(64)),
            ("gen_ai.usage.cache_read_input_tokens", Value::Int(512)),
        ]);
        assert_eq!(fields.kind(), Some(SpanKind::LlmCall));
        let usage = fields.usage();
        assert_eq!(usage.model.as_str(), "gpt-4o-mini");
        assert_eq!(usage.provider.as_str(), "openai");
        assert_eq!(
            (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens),
            (812, 512, 64)
        );
        assert_eq!(fields.response_model(), Some("gpt-4o-mini-2024-07-18"));
    }

    #[test]
    fn old_and_new_names_read_alike() {
        let old = read(&[
            ("gen_ai.usage.prompt_tokens", Value::Int(100)),
            ("gen_ai.usage.completion_tokens", Value::Int(10)),
            ("gen_ai.usage.cached_tokens", Value::Int(40)),
            ("gen_ai.usage.reasoning_tokens", Value::Int(4)),
        ]);
        let new = read(&[
            ("gen_ai.usage.input_tokens", Value::Str("100")),
            ("gen_ai.usage.output_tokens", Value::Float(10.0)),
            ("gen_ai.usage.cache_read.input_tokens", Value::Int(40)),
            ("gen_ai.usage.reasoning.output_tokens", Value::Int(4)),
        ]);
        assert_eq!(old.usage(), new.usage());
        assert_eq!(old.usage().reasoning_tokens, 4);
    }

    #[test]
    fn langfuse_usage_details_add_the_cached_input_back() {
        let fields = read(&[
            ("langfuse.observation.type", Value::Str("generation")),
            ("langfuse.observation.model.name", Value::Str("claude-sonnet-4")),
            (
                "langfuse.observation.usage_details",
                Value::Str(
                    r#"{"input": 300, "output": 64, "cache_read_input_tokens": 512, "total": 876}"#,
                ),
            ),
        ]);
        let usage = fields.usage();
        assert_eq!(fields.kind(), Some(SpanKind::LlmCall));
        assert_eq!(
            (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens),
            (812, 512, 64)
        );
    }

    #[test]
    fn kinds_come_from_every_convention() {
        for (key, value, kind) in [
            ("openinference.span.kind", "TOOL", SpanKind::ToolCall),
            ("openinference.span.kind", "CHAIN", SpanKind::AgentStep),
            ("openinference.span.kind", "RETRIEVER", SpanKind::Retrieval),
            ("traceloop.span.kind", "workflow", SpanKind::AgentStep),
            ("gen_ai.operation.name", "execute_tool", SpanKind::ToolCall),
            ("langfuse.observation.type", "generation", SpanKind::LlmCall),
        ] {
            assert_eq!(read(&[(key, Value::Str(value))]).kind(), Some(kind), "{key}={value}");
        }
        assert_eq!(read(&[("tool.name", Value::Str("search"))]).kind(), Some(SpanKind::ToolCall));
        assert_eq!(read(&[("http.method", Value::Str("GET"))]).kind(), None);
    }

    #[test]
    fn bad_values_are_not_consumed_and_parts_are_clamped() {
        let mut fields = GenAiFields::default();
        assert!(!fields.read("gen_ai.usage.input_tokens", Value::Int(-3)));
        assert!(!fields.read("gen_ai.usage.input_tokens", Value::Str("many")));
        assert!(!fields.read("langfuse.observation.usage_details", Value::Str("{not json")));
        assert!(fields.read("gen_ai.usage.input_tokens", Value::Int(10)));
        assert!(fields.read("gen_ai.usage.cache_read.input_tokens", Value::Int(99)));
        assert!(fields.read("gen_ai.usage.output_tokens", Value::Int(i64::MAX)));
        let usage = fields.usage();
        assert_eq!((usage.input_tokens, usage.cached_input_tokens), (10, 10));
        assert_eq!(usage.output_tokens, u32::MAX);
    }
}
