//! Prices of models, and the cost of one call computed from its usage.

use std::path::Path;

use mission_core::LlmUsage;

use crate::Result;

/// The most a price may be, in US dollars per million tokens: more is taken for a mistake
/// (prices are per *million* tokens; the dearest models cost hundreds).
pub const MAX_PRICE_PER_MILLION: f64 = 1_000_000.0;

/// The price of one model, in US dollars per million tokens. Build one with
/// [`new`](Self::new) and the `with_*` methods, or load a table from a file
/// ([`PriceTable::from_file`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelPrice {
    /// The provider (`openai`, `anthropic`, …); `*` matches any.
    pub provider: String,
    /// The model name, or a prefix ending in `*` (`gpt-4o-mini*` matches dated snapshots).
    pub model: String,
    /// Input tokens not read from cache.
    pub input_per_million: f64,
    /// Output tokens (reasoning tokens are output tokens and billed as such, once).
    pub output_per_million: f64,
    /// Input tokens read from the provider's cache; defaults to the input price.
    #[serde(default)]
    pub cached_input_per_million: Option<f64>,
    /// Input tokens written to the provider's cache (Anthropic's cache creation, billed above
    /// the input price); defaults to the input price.
    #[serde(default)]
    pub cache_creation_input_per_million: Option<f64>,
    /// The date the price was taken from the provider's page (`YYYY-MM-DD`).
    #[serde(default)]
    pub as_of: Option<String>,
    /// The prices of a request whose input is longer than a threshold, where the provider
    /// bills long prompts at other rates (Anthropic's and Google's 200k-token tier).
    #[serde(default)]
    pub long_context: Option<LongContextPrice>,
}

/// Prices that apply to the whole of a request (every input, cached and output token) whose
/// input tokens — fresh, cached and written to the cache together — are more than
/// `above_input_tokens`, as Anthropic and Google bill long prompts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LongContextPrice {
    /// The most input tokens billed at the ordinary prices (200,000 for Claude Sonnet 4 and
    /// Gemini 2.5 Pro); at least 1.
    pub above_input_tokens: u32,
    /// Input tokens not read from cache.
    pub input_per_million: f64,
    /// Output tokens.
    pub output_per_million: f64,
    /// Input tokens read from the provider's cache; defaults to this tier's input price.
    #[serde(default)]
    pub cached_input_per_million: Option<f64>,
    /// Input tokens written to the provider's cache; defaults to this tier's input price.
    #[serde(default)]
    pub cache_creation_input_per_million: Option<f64>,
}

impl LongContextPrice {
    /// The tier above `above_input_tokens`, at these input and output prices.
    pub fn new(above_input_tokens: u32, input_per_million: f64, output_per_million: f64) -> Self {
        Self {
            above_input_tokens,
            input_per_million,
            output_per_million,
            cached_input_per_million: None,
            cache_creation_input_per_million: None,
        }
    }

    /// Sets [`cached_input_per_million`](Self::cached_input_per_million).
    pub fn with_cached_input_per_million(mut self, price: f64) -> Self {
        self.cached_input_per_million = Some(price);
        self
    }

    /// Sets [`cache_creation_input_per_million`](Self::cache_creation_input_per_million).
    pub fn with_cache_creation_input_per_million(mut self, price: f64) -> Self {
        self.cache_creation_input_per_million = Some(price);
        self
    }
}

/// One tier's prices, per million tokens: input, cached input, cache creation, output.
type Rates = (f64, f64, f64, f64);

impl ModelPrice {
    /// `model` of `provider` (`*` for any; a model ending in `*` is a prefix) at these input
    /// and output prices; cached and cache-creation input at the input price until set.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        input_per_million: f64,
        output_per_million: f64,
    ) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            input_per_million,
            output_per_million,
            cached_input_per_million: None,
            cache_creation_input_per_million: None,
            as_of: None,
            long_context: None,
        }
    }

    /// Sets [`cached_input_per_million`](Self::cached_input_per_million).
    pub fn with_cached_input_per_million(mut self, price: f64) -> Self {
        self.cached_input_per_million = Some(price);
        self
    }

    /// Sets [`cache_creation_input_per_million`](Self::cache_creation_input_per_million).
    pub fn with_cache_creation_input_per_million(mut self, price: f64) -> Self {
        self.cache_creation_input_per_million = Some(price);
        self
    }

    /// Sets [`as_of`](Self::as_of).
    pub fn with_as_of(mut self, date: impl Into<String>) -> Self {
        self.as_of = Some(date.into());
        self
    }

    /// Sets [`long_context`](Self::long_context).
    pub fn with_long_context(mut self, tier: LongContextPrice) -> Self {
        self.long_context = Some(tier);
        self
    }

    /// Checks every price is a finite number from 0 to [`MAX_PRICE_PER_MILLION`], and a
    /// long-context tier's threshold is at least 1.
    ///
    /// # Errors
    /// A message naming the model and the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let long = self.long_context.as_ref();
        if long.is_some_and(|l| l.above_input_tokens == 0) {
            return Err(format!(
                "model {:?} of provider {:?}: field `long_context.above_input_tokens` is 0; it \
                 is the most input tokens billed at the ordinary prices, at least 1",
                self.model.chars().take(128).collect::<String>(),
                self.provider.chars().take(128).collect::<String>(),
            ));
        }
        let prices = [
            ("input_per_million", Some(self.input_per_million)),
            ("output_per_million", Some(self.output_per_million)),
            ("cached_input_per_million", self.cached_input_per_million),
            ("cache_creation_input_per_million", self.cache_creation_input_per_million),
            ("long_context.input_per_million", long.map(|l| l.input_per_million)),
            ("long_context.output_per_million", long.map(|l| l.output_per_million)),
            (
                "long_context.cached_input_per_million",
                long.and_then(|l| l.cached_input_per_million),
            ),
            (
                "long_context.cache_creation_input_per_million",
                long.and_then(|l| l.cache_creation_input_per_million),
            ),
        ];
        for (field, price) in prices {
            if let Some(v) = price
                && !(v.is_finite() && (0.0..=MAX_PRICE_PER_MILLION).contains(&v))
            {
                return Err(format!(
                    "model {:?} of provider {:?}: field `{field}` is {v}; a price is a number \
                     from 0 to {MAX_PRICE_PER_MILLION} US dollars per million tokens",
                    self.model.chars().take(128).collect::<String>(),
                    self.provider.chars().take(128).collect::<String>(),
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, provider: &str, model: &str) -> bool {
        let provider_ok = self.provider == "*" || self.provider.eq_ignore_ascii_case(provider);
        let model_ok = match self.model.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => self.model == model,
        };
        provider_ok && model_ok
    }

    /// The cost of `usage` at this price. Cached input tokens are part of `input_tokens` and
    /// billed at the cached price; reasoning tokens are part of `output_tokens` and billed once.
    pub fn cost(&self, usage: &LlmUsage) -> f64 {
        self.cost_with_cache_creation(usage, 0)
    }

    /// The cost of `usage` of which `cache_creation_tokens` input tokens were written to the
    /// provider's cache: those are part of `input_tokens` (like cached ones) and billed at the
    /// cache-creation price. A request with more input tokens than the long-context tier's
    /// threshold is billed wholly at that tier's prices. Cached plus cache-creation tokens are
    /// capped at `input_tokens`, so bad input never makes a cost negative. O(1), no allocation.
    pub fn cost_with_cache_creation(&self, usage: &LlmUsage, cache_creation_tokens: u32) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let created = cache_creation_tokens.min(usage.input_tokens - cached);
        let fresh = usage.input_tokens - cached - created;
        let (input, cached_price, created_price, output) = self.rates(usage.input_tokens);
        (f64::from(fresh) * input
            + f64::from(cached) * cached_price
            + f64::from(created) * created_price
            + f64::from(usage.output_tokens) * output)
            / 1e6
    }

    /// The prices of a request with `input_tokens` input tokens: the long-context tier's above
    /// its threshold, the ordinary ones otherwise.
    fn rates(&self, input_tokens: u32) -> Rates {
        match &self.long_context {
            Some(l) if input_tokens > l.above_input_tokens => (
                l.input_per_million,
                l.cached_input_per_million.unwrap_or(l.input_per_million),
                l.cache_creation_input_per_million.unwrap_or(l.input_per_million),
                l.output_per_million,
            ),
            _ => (
                self.input_per_million,
                self.cached_input_per_million.unwrap_or(self.input_per_million),
                self.cache_creation_input_per_million.unwrap_or(self.input_per_million),
                self.output_per_million,
            ),
        }
    }
}

/// A table of model prices. The first entry that matches a call's provider and model prices
/// it; a call no entry matches costs 0 and is counted in `unpriced` by the stats.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The prices, most specific first.
    #[serde(default, rename = "price")]
    pub prices: Vec<ModelPrice>,
}

impl PriceTable {
    /// An empty table: every call costs 0.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Prices of widely used models, as published by their providers on the date in each
    /// entry. Check them against your contract; load your own with [`from_file`](Self::from_file).
    pub fn default_prices() -> Self {
        let p = |provider: &str, model: &str, input: f64, cached: f64, output: f64| {
            let price = ModelPrice::new(provider, model, input, output)
                .with_cached_input_per_million(cached)
                .with_as_of("2025-06-01");
            // Anthropic bills writing to its cache (5-minute lifetime) at 1.25 times the input
            // price; OpenAI and Google charge nothing extra (and report no such tokens).
            if provider == "anthropic" {
                price.with_cache_creation_input_per_million(input * 1.25)
            } else {
                price
            }
        };
        // Prompts of more than 200k input tokens: Claude Sonnet 4 (its 1M-token context) at
        // $6 input, $0.60 cache read, $7.50 cache write, $22.50 output; Gemini 2.5 Pro at
        // $2.50 input, $0.625 cached, $15 output (the providers' pricing pages, August 2025).
        let sonnet_long = LongContextPrice::new(200_000, 6.00, 22.50)
            .with_cached_input_per_million(0.60)
            .with_cache_creation_input_per_million(7.50);
        let gemini_long =
            LongContextPrice::new(200_000, 2.50, 15.00).with_cached_input_per_million(0.625);
        Self {
            prices: vec![
                p("openai", "gpt-4o-mini*", 0.15, 0.075, 0.60),
                p("openai", "gpt-4o*", 2.50, 1.25, 10.00),
                p("openai", "gpt-4.1-mini*", 0.40, 0.10, 1.60),
                p("openai", "gpt-4.1-nano*", 0.10, 0.025, 0.40),
                p("openai", "gpt-4.1*", 2.00, 0.50, 8.00),
                p("openai", "o3-mini*", 1.10, 0.55, 4.40),
                p("openai", "o4-mini*", 1.10, 0.275, 4.40),
                p("openai", "o3*", 2.00, 0.50, 8.00),
                p("anthropic", "claude-opus-4*", 15.00, 1.50, 75.00),
                p("anthropic", "claude-sonnet-4*", 3.00, 0.30, 15.00)
                    .with_long_context(sonnet_long)
                    .with_as_of("2025-08-12"),
                p("anthropic", "claude-3-5-haiku*", 0.80, 0.08, 4.00),
                p("google", "gemini-2.5-pro*", 1.25, 0.31, 10.00)
                    .with_long_context(gemini_long)
                    .with_as_of("2025-08-12"),
                p("google", "gemini-2.5-flash*", 0.30, 0.075, 2.50),
            ],
        }
    }

    /// Loads a table from a TOML (`[[price]]` entries) or JSON (`{"price": [...]}`) file.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be read; [`Error::Config`](crate::Error::Config) naming the file and the
    /// offending field if it does not parse, or naming the model and field of a price that is
    /// negative, not a number, infinite or above [`MAX_PRICE_PER_MILLION`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let table: Self = crate::config::read_toml_or_json(path)?;
        table.validate().map_err(|message| crate::Error::Config {
            origin: path.display().to_string(),
            message,
        })?;
        Ok(table)
    }

    /// Checks every entry ([`ModelPrice::validate`]).
    ///
    /// # Errors
    /// The first entry's message, naming the model and the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.prices.iter().try_for_each(ModelPrice::validate)
    }

    /// The price for `provider` and `model`, if any.
    pub fn find(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        self.prices.iter().find(|p| p.matches(provider, model))
    }

    /// The cost of `usage`; `None` when no entry prices the call.
    pub fn cost(&self, usage: &LlmUsage) -> Option<f64> {
        self.find(usage.provider.as_str(), usage.model.as_str()).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use mission_core::Symbol;

    use super::*;

    fn usage(
        provider: &str,
        model: &str,
        input: u32,
        cached: u32,
        output: u32,
        reasoning: u32,
    ) -> LlmUsage {
        LlmUsage {
            provider: Symbol::intern(provider),
            model: Symbol::intern(model),
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
            reasoning_tokens: reasoning,
            ..LlmUsage::default()
        }
    }

    #[test]
    fn cached_and_reasoning_tokens_are_counted_once() {
        let table = PriceTable {
            prices: vec![
                ModelPrice::new("openai", "gpt-x*", 2.0, 8.0).with_cached_input_per_million(0.5),
            ],
        };
        // 1,000,000 input of which 400,000 cached; 100,000 output of which 60,000 reasoning.
        let cost = table.cost(&usage("openai", "gpt-x-2025", 1_000_000, 400_000, 100_000, 60_000));
        let expected = 600_000.0 * 2.0 / 1e6 + 400_000.0 * 0.5 / 1e6 + 100_000.0 * 8.0 / 1e6;
        assert_eq!(cost, Some(expected));
        assert_eq!(expected, 2.2);
        assert_eq!(table.cost(&usage("anthropic", "gpt-x", 1, 0, 1, 0)), None);
        // More cached tokens than input tokens is bad input: capped, never negative.
        let capped = table.cost(&usage("openai", "gpt-x", 100, 500, 0, 0)).unwrap_or(-1.0);
        assert!((capped - 100.0 * 0.5 / 1e6).abs() < 1e-15);
    }

    #[test]
    fn cache_creation_tokens_are_billed_at_their_price() {
        let table = PriceTable::default_prices();
        // Anthropic reports 100 fresh, 2,000 read from and 1,000 written to the cache; we count
        // all 3,100 as input tokens. Sonnet 4: $3 input, $0.30 cache read, $3.75 cache write.
        let u = usage("anthropic", "claude-sonnet-4-20250514", 3_100, 2_000, 50, 0);
        let price = table.find("anthropic", "claude-sonnet-4-20250514").expect("priced");
        let cost = price.cost_with_cache_creation(&u, 1_000);
        let expected = (100.0 * 3.0 + 2_000.0 * 0.30 + 1_000.0 * 3.75 + 50.0 * 15.0) / 1e6;
        assert!((cost - expected).abs() < 1e-15, "{cost} != {expected}");
        // Without the cache-creation price, the same tokens cost the input price.
        assert!(
            (price.cost(&u) - (1_100.0 * 3.0 + 2_000.0 * 0.30 + 50.0 * 15.0) / 1e6).abs() < 1e-15
        );
        // OpenAI has no cache-creation price: such tokens cost the input price.
        let openai = table.find("openai", "gpt-4o-mini").expect("priced");
        let u = usage("openai", "gpt-4o-mini", 1_000, 0, 0, 0);
        assert!((openai.cost_with_cache_creation(&u, 400) - openai.cost(&u)).abs() < 1e-18);
        // More cached plus created tokens than input tokens: capped, never negative.
        let u = usage("anthropic", "claude-sonnet-4", 100, 80, 0, 0);
        let capped = price.cost_with_cache_creation(&u, 500);
        assert!((capped - (80.0 * 0.30 + 20.0 * 3.75) / 1e6).abs() < 1e-15, "{capped}");
    }

    #[test]
    fn a_long_prompt_is_billed_wholly_at_the_long_context_prices() {
        let table = PriceTable::default_prices();
        let sonnet = table.find("anthropic", "claude-sonnet-4-20250514").expect("priced");
        // 200,000 input tokens: the ordinary tier. 50,000 read from and 10,000 written to the
        // cache, 1,000 output.
        let at = usage("anthropic", "claude-sonnet-4", 200_000, 50_000, 1_000, 0);
        let ordinary = (140_000.0 * 3.0 + 50_000.0 * 0.30 + 10_000.0 * 3.75 + 1_000.0 * 15.0) / 1e6;
        assert!((sonnet.cost_with_cache_creation(&at, 10_000) - ordinary).abs() < 1e-12);
        // One token more: every token at the long-context prices.
        let above = usage("anthropic", "claude-sonnet-4", 200_001, 50_000, 1_000, 0);
        let long = (140_001.0 * 6.0 + 50_000.0 * 0.60 + 10_000.0 * 7.50 + 1_000.0 * 22.50) / 1e6;
        let cost = sonnet.cost_with_cache_creation(&above, 10_000);
        assert!((cost - long).abs() < 1e-12, "{cost} != {long}");
        let gemini = table.find("google", "gemini-2.5-pro").expect("priced");
        let u = usage("google", "gemini-2.5-pro", 300_000, 100_000, 2_000, 0);
        let expected = (200_000.0 * 2.50 + 100_000.0 * 0.625 + 2_000.0 * 15.0) / 1e6;
        assert!((gemini.cost(&u) - expected).abs() < 1e-12);
        // A model without a tier: the same prices at any length.
        let mini = table.find("openai", "gpt-4o-mini").expect("priced");
        let long_prompt = usage("openai", "gpt-4o-mini", 1_000_000, 0, 0, 0);
        assert!((mini.cost(&long_prompt) - 0.15).abs() < 1e-12);
    }

    #[test]
    fn a_long_context_tier_is_checked_and_read_from_files() {
        let toml = r#"
            [[price]]
            provider = "anthropic"
            model = "claude-x*"
            input_per_million = 3.0
            output_per_million = 15.0
            long_context = { above_input_tokens = 200000, input_per_million = 6.0, output_per_million = 22.5 }
        "#;
        let table: PriceTable = toml::from_str(toml).expect("parses");
        let tier = table.prices[0].long_context.as_ref().expect("tier");
        assert_eq!((tier.above_input_tokens, tier.input_per_million), (200_000, 6.0));
        assert!(table.validate().is_ok());
        let zero = ModelPrice::new("a", "m", 1.0, 1.0)
            .with_long_context(LongContextPrice::new(0, 1.0, 1.0));
        let err = zero.validate().expect_err("0 is refused");
        assert!(err.contains("long_context.above_input_tokens"), "{err}");
        let nan = ModelPrice::new("a", "m", 1.0, 1.0).with_long_context(LongContextPrice::new(
            10,
            1.0,
            f64::NAN,
        ));
        let err = nan.validate().expect_err("NaN is refused");
        assert!(err.contains("long_context.output_per_million"), "{err}");
    }

    #[test]
    fn the_issues_example_costs_what_gpt_4o_bills() {
        // Issue 17: 812 input tokens of which 512 read from the cache, and 64 output tokens, on
        // gpt-4o ($2.50 input, $1.25 cached input, $10 output per million): $0.00203. Pricing
        // every input token at the input price would give $0.00267 (+31.5 %).
        let table = PriceTable::default_prices();
        let cost = table.cost(&usage("openai", "gpt-4o-2024-08-06", 812, 512, 64, 0));
        assert!(cost.is_some_and(|c| (c - 0.00203).abs() < 1e-15), "{cost:?}");
        let uncached = table.cost(&usage("openai", "gpt-4o", 812, 0, 64, 0));
        assert!(uncached.is_some_and(|c| (c - 0.00267).abs() < 1e-15), "{uncached:?}");
        // gpt-4o-mini is not priced as gpt-4o (its entry comes first).
        let mini = table.cost(&usage("openai", "gpt-4o-mini", 812, 512, 64, 0));
        assert!(mini.is_some_and(|c| (c - 0.000_121_8).abs() < 1e-15), "{mini:?}");
    }

    #[test]
    fn a_cache_creation_price_loads_from_a_file_and_is_checked() {
        let dir = std::env::temp_dir().join(format!("mission-prices-cc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("prices.toml");
        let entry = |cc: &str| {
            format!(
                "[[price]]\nprovider = \"acme\"\nmodel = \"m1\"\ninput_per_million = 1.0\n\
                 output_per_million = 2.0\ncache_creation_input_per_million = {cc}\n"
            )
        };
        std::fs::write(&path, entry("1.25")).expect("write");
        let table = PriceTable::from_file(&path).expect("loads");
        let price = table.find("acme", "m1").expect("priced");
        let cost =
            price.cost_with_cache_creation(&usage("acme", "m1", 1_000_000, 0, 0, 0), 400_000);
        assert!((cost - (600_000.0 * 1.0 + 400_000.0 * 1.25) / 1e6).abs() < 1e-12, "{cost}");
        std::fs::write(&path, entry("-1.0")).expect("write");
        let err = PriceTable::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("m1") && err.contains("cache_creation_input_per_million"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_default_table_prices_common_models() {
        let table = PriceTable::default_prices();
        let c = table.cost(&usage("openai", "gpt-4o-mini-2024-07-18", 1_000_000, 0, 1_000_000, 0));
        assert_eq!(c, Some(0.75));
        assert!(table.find("openai", "gpt-4o").is_some_and(|p| p.model == "gpt-4o*"));
        assert!(table.find("anthropic", "claude-sonnet-4-20250514").is_some());
    }

    #[test]
    fn tables_load_from_toml_and_json_with_clear_errors() {
        let dir = std::env::temp_dir().join(format!("mission-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let toml_path = dir.join("prices.toml");
        std::fs::write(&toml_path, "[[price]]\nprovider = \"acme\"\nmodel = \"m1\"\ninput_per_million = 1.0\noutput_per_million = 2.0\n").expect("write");
        let t = PriceTable::from_file(&toml_path).expect("toml");
        assert_eq!(t.cost(&usage("acme", "m1", 1_000_000, 0, 1_000_000, 0)), Some(3.0));
        let json_path = dir.join("prices.json");
        std::fs::write(
            &json_path,
            r#"{"price": [{"provider": "acme", "model": "m1", "input_per_milion": 1}]}"#,
        )
        .expect("write");
        let err = PriceTable::from_file(&json_path).unwrap_err().to_string();
        assert!(err.contains("prices.json") && err.contains("input_per_milion"), "{err}");
        // Negative, not a number, infinite and absurd prices are refused, naming model and field.
        for (field, value) in [
            ("input_per_million", "-1.0"),
            ("output_per_million", "nan"),
            ("input_per_million", "inf"),
            ("output_per_million", "1e308"),
            ("cached_input_per_million", "-0.5"),
        ] {
            let mut entry = vec![
                ("input_per_million", "1.0"),
                ("output_per_million", "2.0"),
                ("cached_input_per_million", "0.5"),
            ];
            for e in &mut entry {
                if e.0 == field {
                    e.1 = value;
                }
            }
            let body: String = entry.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            std::fs::write(
                &toml_path,
                format!("[[price]]\nprovider = \"acme\"\nmodel = \"m9\"\n{body}"),
            )
            .expect("write");
            let err = PriceTable::from_file(&toml_path).expect_err(value).to_string();
            assert!(err.contains("\"m9\"") && err.contains(field), "{field}={value}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
