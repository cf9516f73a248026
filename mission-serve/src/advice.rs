//! Recommendations computed from the store: what to change to spend less or fail less, with
//! the numbers behind each one. The dashboard (`/api/recommendations`), the MCP tool
//! `recommendations` and `mission-ctl report` all answer with [`recommend`].
//!
//! | kind | when | saving or impact |
//! |---|---|---|
//! | `prompt_cache` | a model read less than [`LOW_CACHE_HIT_RATE`] of its input tokens from the provider's prompt cache (cached input tokens, `gen_ai_usage_cache_read_input_tokens`) | the input tokens a 50 % hit rate would have read from cache |
//! | `model_right_sizing` | the same agent and operation (span name) called two models, the cheaper one with a quality signal as good (error rate within [`QUALITY_MARGIN`], and mean score within it when both have scores) | dollars: the expensive model's calls at the cheaper model's cost per call |
//! | `slow_tool` | a tool's p95 is at least [`SLOW_TOOL_MS`] (the [`TOP`] slowest) | its p95 and the time spent in it |
//! | `failing_tool` | a tool failed at least [`FAILING_TOOL_RATE`] of its calls (at least 3 failures; the [`TOP`] most failing) | its failures and most frequent error |
//! | `budget_burn` | threads passed their budget's warning share or used it up (`mission.budget.warning` / `mission.budget.exceeded`) | the threads that warned and were stopped, per agent and resource |
//!
//! Everything is bounded: groups ([`MAX_GROUPS`]), samples per tool ([`MAX_SAMPLES`]), score
//! joins ([`MAX_JOIN`]) and rows read ([`MAX_ROWS`]); what a bound cut off sets `truncated`.
//! Tenant scoping is the caller's: pass a query of a store opened for the principal's tenant.

use std::collections::{HashMap, HashSet};

use mission_core::thread::{attr as budget_attr, event as budget_event};
use mission_store::schema::col;
use mission_store::{EventRow, Query};
use serde_json::{Value, json};

/// A model whose cached share of input tokens is below this gets a `prompt_cache` advice.
pub const LOW_CACHE_HIT_RATE: f64 = 0.5;
/// Input tokens a model needs over the window before its hit rate is judged.
pub const MIN_CACHE_INPUT_TOKENS: i64 = 10_000;
/// Calls each side of a comparison (or a tool) needs before it is judged.
pub const MIN_CALLS: u64 = 5;
/// How much worse (error rate, absolute; mean score, absolute) the cheaper model may be and
/// still count as "similar quality".
pub const QUALITY_MARGIN: f64 = 0.05;
/// A right-sizing must save at least this share of what the dearer model cost (and a cent).
pub const MIN_SAVING_SHARE: f64 = 0.1;
/// Scores each side needs before the mean score is part of the quality signal.
pub const MIN_SCORES: u64 = 3;
/// A tool whose p95 is at least this many milliseconds is slow.
pub const SLOW_TOOL_MS: f64 = 1_000.0;
/// A tool failing at least this share of its calls is failing.
pub const FAILING_TOOL_RATE: f64 = 0.1;
/// Recommendations of the tool kinds at most.
pub const TOP: usize = 3;
/// Groups (models, operations, tools, budget subjects) tracked at most.
pub const MAX_GROUPS: usize = 10_000;
/// Durations kept per tool for its p95 (the first ones).
pub const MAX_SAMPLES: usize = 10_000;
/// Spans and threads remembered to join scores to models, at most.
pub const MAX_JOIN: usize = 200_000;
/// Rows read at most.
pub const MAX_ROWS: u64 = 5_000_000;
/// Characters of an error message a recommendation quotes at most.
pub const MAX_QUOTE_CHARS: usize = 200;
/// Recommendations returned at most.
pub const MAX_RECOMMENDATIONS: usize = 50;

/// The columns [`recommend`] reads.
pub const COLUMNS: &[&str] = &[
    col::TIME,
    col::KIND,
    col::AGENT,
    col::THREAD_ID,
    col::SPAN_ID,
    col::NAME,
    col::DURATION_NS,
    col::STATUS,
    col::ERROR_MESSAGE,
    col::MODEL,
    col::INPUT_TOKENS,
    col::OUTPUT_TOKENS,
    col::CACHED_INPUT_TOKENS,
    col::COST,
    col::SCORE_VALUE,
    col::ATTRIBUTES,
];

/// One recommendation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct Recommendation {
    /// `prompt_cache`, `model_right_sizing`, `slow_tool`, `failing_tool` or `budget_burn`.
    pub kind: String,
    /// What it is about: a model, `agent/operation`, a tool, `agent/resource`.
    pub subject: String,
    /// The numbers behind it (kind-specific keys).
    pub evidence: Value,
    /// Estimated US dollars saved over the window, when the advice saves money.
    pub saving_usd: Option<f64>,
    /// The impact in words and numbers (time, failures, tokens, threads).
    pub impact: String,
    /// One sentence: what to do and why.
    pub message: String,
}

/// What [`recommend`] found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct Advice {
    /// The recommendations, those that save the most dollars first, then by kind.
    pub recommendations: Vec<Recommendation>,
    /// Rows read.
    pub rows: u64,
    /// Whether a bound cut something off (rows, groups, samples, joins, recommendations).
    pub truncated: bool,
}

#[derive(Default)]
struct ModelSum {
    calls: u64,
    input: i64,
    cached: i64,
    cost: f64,
}

#[derive(Default, Clone)]
struct Quality {
    calls: u64,
    errors: u64,
    cost: f64,
    scores: u64,
    score_sum: f64,
}

#[derive(Default)]
struct ToolSum {
    calls: u64,
    errors: u64,
    total_ns: i64,
    samples: Vec<i64>,
    messages: HashMap<String, u64>,
}

#[derive(Default)]
struct BudgetSum {
    warned: HashSet<String>,
    exceeded: HashSet<String>,
    max_share: f64,
    limit: Option<String>,
}

/// (agent, operation, model).
type QualityKey = (String, String, String);

/// Accumulates rows, then [`finish`](Self::finish)es into recommendations. Feed it every row
/// of the window (any order).
#[derive(Default)]
pub struct Advisor {
    rows: u64,
    truncated: bool,
    models: HashMap<String, ModelSum>,
    quality: HashMap<QualityKey, Quality>,
    span_key: HashMap<u64, QualityKey>,
    thread_keys: HashMap<String, HashSet<QualityKey>>,
    /// (span id, thread id, value) of every score, joined at the end.
    scores: Vec<(u64, Option<String>, f64)>,
    tools: HashMap<String, ToolSum>,
    budgets: HashMap<(String, String), BudgetSum>,
}

fn entry<'m, K: std::hash::Hash + Eq, V: Default>(
    map: &'m mut HashMap<K, V>,
    key: K,
    truncated: &mut bool,
) -> Option<&'m mut V> {
    if !map.contains_key(&key) && map.len() >= MAX_GROUPS {
        *truncated = true;
        return None;
    }
    Some(map.entry(key).or_default())
}

impl Advisor {
    /// An empty advisor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one row.
    pub fn add(&mut self, row: &EventRow) {
        self.rows += 1;
        let error = row.status.as_deref() == Some("error");
        match row.kind.as_str() {
            "llm_call" => self.add_llm(row, error),
            "tool_call" => {
                let Some(t) = entry(&mut self.tools, row.name.clone(), &mut self.truncated) else {
                    return;
                };
                let d = row.duration_ns.unwrap_or(0).max(0);
                t.calls += 1;
                t.total_ns = t.total_ns.saturating_add(d);
                if t.samples.len() < MAX_SAMPLES {
                    t.samples.push(d);
                } else {
                    self.truncated = true;
                }
                if error {
                    t.errors += 1;
                    let m = row.error_message.clone().unwrap_or_default();
                    if t.messages.len() < 100 || t.messages.contains_key(&m) {
                        *t.messages.entry(m).or_default() += 1;
                    }
                }
            }
            "score" => {
                if let Some(v) = row.score_value.filter(|v| v.is_finite()) {
                    if self.scores.len() < MAX_JOIN {
                        self.scores.push((row.span_id.unwrap_or(0), row.thread_id.clone(), v));
                    } else {
                        self.truncated = true;
                    }
                }
            }
            "log"
                if row.name == budget_event::BUDGET_WARNING
                    || row.name == budget_event::BUDGET_EXCEEDED =>
            {
                let resource =
                    row.attribute(budget_attr::BUDGET_RESOURCE).unwrap_or("budget").to_owned();
                let share = row
                    .attribute(budget_attr::BUDGET_SHARE)
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
                let limit = row.attribute(budget_attr::BUDGET_LIMIT).map(str::to_owned);
                let thread = row.thread_id.clone().unwrap_or_default();
                let key = (row.agent.clone(), resource);
                let Some(b) = entry(&mut self.budgets, key, &mut self.truncated) else { return };
                if b.warned.len() + b.exceeded.len() >= MAX_JOIN / 100 {
                    self.truncated = true;
                    return;
                }
                if row.name == budget_event::BUDGET_EXCEEDED {
                    b.exceeded.insert(thread);
                } else {
                    b.warned.insert(thread);
                }
                if share.is_finite() {
                    b.max_share = b.max_share.max(share);
                }
                if limit.is_some() {
                    b.limit = limit;
                }
            }
            _ => {}
        }
    }

    fn add_llm(&mut self, row: &EventRow, error: bool) {
        let model = row.model.clone().unwrap_or_default();
        if model.is_empty() {
            return;
        }
        let cost = row.cost_usd.filter(|c| c.is_finite()).unwrap_or(0.0);
        if let Some(m) = entry(&mut self.models, model.clone(), &mut self.truncated) {
            m.calls += 1;
            m.input = m.input.saturating_add(row.input_tokens.unwrap_or(0).max(0));
            m.cached = m.cached.saturating_add(row.cached_input_tokens.unwrap_or(0).max(0));
            m.cost += cost;
        }
        let key = (row.agent.clone(), row.name.clone(), model);
        if let Some(q) = entry(&mut self.quality, key.clone(), &mut self.truncated) {
            q.calls += 1;
            q.errors += u64::from(error);
            q.cost += cost;
        } else {
            return;
        }
        if self.span_key.len() < MAX_JOIN {
            if let Some(span) = row.span_id.filter(|s| *s != 0) {
                self.span_key.insert(span, key.clone());
            }
        } else {
            self.truncated = true;
        }
        if let Some(thread) = &row.thread_id {
            let full = self.thread_keys.len() >= MAX_JOIN;
            match self.thread_keys.get_mut(thread) {
                Some(keys) => {
                    keys.insert(key);
                }
                None if !full => {
                    self.thread_keys.insert(thread.clone(), HashSet::from([key]));
                }
                None => self.truncated = true,
            }
        }
    }

    /// The recommendations of what was added.
    pub fn finish(mut self) -> Advice {
        // Scores join the model of the span they score, else every model of their thread.
        for (span, thread, value) in std::mem::take(&mut self.scores) {
            let keys: Vec<QualityKey> = match self.span_key.get(&span) {
                Some(k) => vec![k.clone()],
                None => thread
                    .and_then(|t| self.thread_keys.get(&t))
                    .map(|ks| ks.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            for k in keys {
                if let Some(q) = self.quality.get_mut(&k) {
                    q.scores += 1;
                    q.score_sum += value;
                }
            }
        }
        let mut out = Vec::new();
        self.right_sizing(&mut out);
        self.prompt_cache(&mut out);
        self.tools(&mut out);
        self.budget(&mut out);
        let order = |k: &str| {
            ["model_right_sizing", "prompt_cache", "failing_tool", "slow_tool", "budget_burn"]
                .iter()
                .position(|x| *x == k)
                .unwrap_or(9)
        };
        out.sort_by(|a, b| {
            b.saving_usd
                .unwrap_or(0.0)
                .total_cmp(&a.saving_usd.unwrap_or(0.0))
                .then_with(|| order(&a.kind).cmp(&order(&b.kind)))
                .then_with(|| a.subject.cmp(&b.subject))
        });
        if out.len() > MAX_RECOMMENDATIONS {
            out.truncate(MAX_RECOMMENDATIONS);
            self.truncated = true;
        }
        Advice { recommendations: out, rows: self.rows, truncated: self.truncated }
    }

    fn right_sizing(&self, out: &mut Vec<Recommendation>) {
        let mut groups: HashMap<(&str, &str), Vec<(&str, &Quality)>> = HashMap::new();
        for ((agent, op, model), q) in &self.quality {
            if q.calls >= MIN_CALLS {
                groups.entry((agent, op)).or_default().push((model, q));
            }
        }
        let per_call = |q: &Quality| q.cost / q.calls as f64;
        let error_rate = |q: &Quality| q.errors as f64 / q.calls as f64;
        let mean = |q: &Quality| (q.scores >= MIN_SCORES).then(|| q.score_sum / q.scores as f64);
        for ((agent, op), mut models) in groups {
            if models.len() < 2 {
                continue;
            }
            models.sort_by(|a, b| per_call(b.1).total_cmp(&per_call(a.1)).then(a.0.cmp(b.0)));
            let (dear_name, dear) = models[0];
            // The cheapest model as good as the dearest one.
            let similar = models[1..].iter().rev().find(|(_, q)| {
                let errors_ok = error_rate(q) <= error_rate(dear) + QUALITY_MARGIN;
                let scores_ok = match (mean(q), mean(dear)) {
                    (Some(c), Some(d)) => c >= d - QUALITY_MARGIN,
                    (None, Some(_)) => false,
                    _ => true,
                };
                errors_ok && scores_ok
            });
            let Some(&(cheap_name, cheap)) = similar else { continue };
            let saving = dear.calls as f64 * (per_call(dear) - per_call(cheap));
            if saving < 0.01 || saving < MIN_SAVING_SHARE * dear.cost {
                continue;
            }
            let signal = match (mean(cheap), mean(dear)) {
                (Some(c), Some(d)) => format!(
                    "mean score {c:.2} vs {d:.2}, error rate {:.1}% vs {:.1}%",
                    error_rate(cheap) * 100.0,
                    error_rate(dear) * 100.0
                ),
                _ => format!(
                    "error rate {:.1}% vs {:.1}% (no scores to compare)",
                    error_rate(cheap) * 100.0,
                    error_rate(dear) * 100.0
                ),
            };
            out.push(Recommendation {
                kind: "model_right_sizing".into(),
                subject: format!("{agent}/{op}"),
                evidence: json!({
                    "agent": agent, "operation": op,
                    "model": dear_name, "calls": dear.calls, "cost_usd": dear.cost,
                    "cost_per_call_usd": per_call(dear), "error_rate": error_rate(dear),
                    "mean_score": mean(dear), "scores": dear.scores,
                    "cheaper_model": cheap_name, "cheaper_calls": cheap.calls,
                    "cheaper_cost_per_call_usd": per_call(cheap),
                    "cheaper_error_rate": error_rate(cheap), "cheaper_mean_score": mean(cheap),
                    "cheaper_scores": cheap.scores,
                }),
                saving_usd: Some(saving),
                impact: format!("${saving:.2} over the window"),
                message: format!(
                    "{agent}/{op} ran {} calls on {dear_name} at ${:.4} a call; {cheap_name} served the same operation at ${:.4} with a similar quality signal ({signal}): moving them would have saved ${saving:.2}.",
                    dear.calls,
                    per_call(dear),
                    per_call(cheap)
                ),
            });
        }
    }

    fn prompt_cache(&self, out: &mut Vec<Recommendation>) {
        for (model, m) in &self.models {
            if m.input < MIN_CACHE_INPUT_TOKENS {
                continue;
            }
            let rate = m.cached as f64 / m.input as f64;
            if rate >= LOW_CACHE_HIT_RATE {
                continue;
            }
            let more = (m.input as f64 * LOW_CACHE_HIT_RATE) as i64 - m.cached;
            out.push(Recommendation {
                kind: "prompt_cache".into(),
                subject: model.clone(),
                evidence: json!({
                    "model": model, "calls": m.calls, "input_tokens": m.input,
                    "cached_input_tokens": m.cached, "hit_rate": rate, "cost_usd": m.cost,
                }),
                saving_usd: None,
                impact: format!(
                    "{more} more input tokens read from cache at a {:.0}% hit rate",
                    LOW_CACHE_HIT_RATE * 100.0
                ),
                message: format!(
                    "{model} read {:.1}% of its {} input tokens from the prompt cache ({} cached over {} calls{}): put the stable part of the prompt (system prompt, tools, documents) first and unchanged so the provider can cache it.",
                    rate * 100.0,
                    m.input,
                    m.cached,
                    m.calls,
                    if m.cached == 0 {
                        "; no call reported cached tokens: caching may be off, or not reported"
                    } else {
                        ""
                    }
                ),
            });
        }
    }

    fn tools(&self, out: &mut Vec<Recommendation>) {
        let p95 = |t: &ToolSum| {
            let mut s = t.samples.clone();
            s.sort_unstable();
            let i = ((s.len() as f64 * 0.95).ceil() as usize).clamp(1, s.len().max(1)) - 1;
            s.get(i).copied().unwrap_or(0) as f64 / 1e6
        };
        let mut slow: Vec<(&String, &ToolSum, f64)> = self
            .tools
            .iter()
            .filter(|(_, t)| t.calls >= MIN_CALLS)
            .map(|(n, t)| (n, t, p95(t)))
            .filter(|x| x.2 >= SLOW_TOOL_MS)
            .collect();
        slow.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
        for (name, t, p) in slow.into_iter().take(TOP) {
            let total_s = t.total_ns as f64 / 1e9;
            out.push(Recommendation {
                kind: "slow_tool".into(),
                subject: name.clone(),
                evidence: json!({"tool": name, "calls": t.calls, "p95_ms": p,
                                 "mean_ms": t.total_ns as f64 / 1e6 / t.calls as f64,
                                 "total_s": total_s}),
                saving_usd: None,
                impact: format!("{total_s:.1} s spent in {} calls", t.calls),
                message: format!(
                    "Tool {name} is slow: p95 {p:.0} ms over {} calls ({total_s:.1} s in all); cache its results, add a timeout or run it in parallel with other steps.",
                    t.calls
                ),
            });
        }
        let mut failing: Vec<(&String, &ToolSum)> = self
            .tools
            .iter()
            .filter(|(_, t)| t.errors >= 3 && t.errors as f64 >= FAILING_TOOL_RATE * t.calls as f64)
            .collect();
        failing.sort_by(|a, b| b.1.errors.cmp(&a.1.errors).then(a.0.cmp(b.0)));
        for (name, t) in failing.into_iter().take(TOP) {
            let rate = t.errors as f64 / t.calls as f64;
            let top = t.messages.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
            let (message, times) = top.map(|(m, n)| (m.as_str(), *n)).unwrap_or(("", 0));
            // Quoted at most this long, so a recommendation stays small whatever the error.
            let message = match message.char_indices().nth(MAX_QUOTE_CHARS) {
                Some((at, _)) => format!("{}…", &message[..at]),
                None => message.to_owned(),
            };
            out.push(Recommendation {
                kind: "failing_tool".into(),
                subject: name.clone(),
                evidence: json!({"tool": name, "calls": t.calls, "errors": t.errors,
                                 "error_rate": rate, "top_error": message,
                                 "top_error_count": times}),
                saving_usd: None,
                impact: format!("{} failed calls ({:.1}%)", t.errors, rate * 100.0),
                message: format!(
                    "Tool {name} failed {} of {} calls ({:.1}%){}: fix the cause or guard it with a retry and a fallback.",
                    t.errors,
                    t.calls,
                    rate * 100.0,
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(", most often with {message:?} ({times}×)")
                    }
                ),
            });
        }
    }

    fn budget(&self, out: &mut Vec<Recommendation>) {
        for ((agent, resource), b) in &self.budgets {
            let (warned, exceeded) = (b.warned.len(), b.exceeded.len());
            out.push(Recommendation {
                kind: "budget_burn".into(),
                subject: format!("{agent}/{resource}"),
                evidence: json!({"agent": agent, "resource": resource,
                                 "threads_warned": warned, "threads_exceeded": exceeded,
                                 "max_share": b.max_share, "limit": b.limit}),
                saving_usd: None,
                impact: format!("{exceeded} threads stopped, {warned} warned"),
                message: format!(
                    "{agent} burned through its {resource} budget{}: {exceeded} threads used it up and were stopped, {warned} passed the warning share (highest {:.0}%); raise the limit if the work needs it, or find what makes those threads long.",
                    b.limit.as_deref().map(|l| format!(" (limit {l})")).unwrap_or_default(),
                    b.max_share * 100.0
                ),
            });
        }
    }
}

/// The recommendations over what `query` selects (set its time range and scope; its columns
/// are set to [`COLUMNS`]).
///
/// # Errors
/// A file cannot be read or decoded.
pub fn recommend(query: Query<'_>) -> mission_store::Result<Advice> {
    let mut advisor = Advisor::new();
    let mut cut = false;
    'batches: for batch in query.columns(COLUMNS).iter()? {
        for row in EventRow::from_batch(&batch?)? {
            if advisor.rows >= MAX_ROWS {
                cut = true;
                break 'batches;
            }
            advisor.add(&row);
        }
    }
    let mut advice = advisor.finish();
    advice.truncated |= cut;
    Ok(advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llm(agent: &str, op: &str, model: &str, cost: f64, error: bool, span: u64) -> EventRow {
        let mut r = EventRow::default();
        r.kind = "llm_call".into();
        r.agent = agent.into();
        r.name = op.into();
        r.model = Some(model.into());
        r.cost_usd = Some(cost);
        r.input_tokens = Some(1_000);
        r.output_tokens = Some(100);
        r.status = Some(if error { "error" } else { "ok" }.into());
        r.span_id = Some(span);
        r.thread_id = Some(format!("{span:032x}"));
        r.duration_ns = Some(1_000_000);
        r
    }

    fn score(span: u64, value: f64) -> EventRow {
        let mut r = EventRow::default();
        r.kind = "score".into();
        r.name = "quality".into();
        r.span_id = Some(span);
        r.score_value = Some(value);
        r
    }

    fn tool(name: &str, ms: i64, error: Option<&str>) -> EventRow {
        let mut r = EventRow::default();
        r.kind = "tool_call".into();
        r.agent = "bot".into();
        r.name = name.into();
        r.duration_ns = Some(ms * 1_000_000);
        r.status = Some(if error.is_some() { "error" } else { "ok" }.into());
        r.error_message = error.map(str::to_owned);
        r
    }

    fn of<'a>(a: &'a Advice, kind: &str) -> Vec<&'a Recommendation> {
        a.recommendations.iter().filter(|r| r.kind == kind).collect()
    }

    #[test]
    fn right_sizing_counts_the_dollars_and_needs_similar_quality() {
        let mut a = Advisor::new();
        for i in 0..10 {
            a.add(&llm("bot", "answer", "big", 0.05, false, 100 + i));
            a.add(&score(100 + i, 0.9));
            a.add(&llm("bot", "answer", "small", 0.01, false, 200 + i));
            a.add(&score(200 + i, 0.88));
        }
        let advice = a.finish();
        let r = of(&advice, "model_right_sizing");
        assert_eq!(r.len(), 1, "{advice:#?}");
        assert_eq!(r[0].subject, "bot/answer");
        // 10 calls × ($0.05 − $0.01).
        assert!((r[0].saving_usd.unwrap() - 0.4).abs() < 1e-9, "{:?}", r[0].saving_usd);
        assert_eq!(r[0].evidence["cheaper_model"], "small");
        assert!(r[0].message.contains("$0.40"), "{}", r[0].message);

        // A cheaper model that scores worse is not advised.
        let mut a = Advisor::new();
        for i in 0..10 {
            a.add(&llm("bot", "answer", "big", 0.05, false, 100 + i));
            a.add(&score(100 + i, 0.9));
            a.add(&llm("bot", "answer", "small", 0.01, false, 200 + i));
            a.add(&score(200 + i, 0.5));
        }
        assert!(of(&a.finish(), "model_right_sizing").is_empty());

        // Nor one that fails more often.
        let mut a = Advisor::new();
        for i in 0..10 {
            a.add(&llm("bot", "answer", "big", 0.05, false, 100 + i));
            a.add(&llm("bot", "answer", "small", 0.01, i < 3, 200 + i));
        }
        assert!(of(&a.finish(), "model_right_sizing").is_empty());
    }

    #[test]
    fn a_low_prompt_cache_hit_rate_is_reported_per_model() {
        let mut a = Advisor::new();
        for i in 0..20 {
            let mut low = llm("bot", "chat", "uncached", 0.01, false, i);
            low.cached_input_tokens = Some(100);
            a.add(&low);
            let mut high = llm("bot", "chat", "cached", 0.01, false, 100 + i);
            high.cached_input_tokens = Some(800);
            a.add(&high);
        }
        let advice = a.finish();
        let r = of(&advice, "prompt_cache");
        assert_eq!(r.len(), 1, "{advice:#?}");
        assert_eq!(r[0].subject, "uncached");
        assert!((r[0].evidence["hit_rate"].as_f64().unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(r[0].evidence["input_tokens"], 20_000);
        assert_eq!(r[0].evidence["cached_input_tokens"], 2_000);
        // 50 % of 20,000 is 10,000: 8,000 more than the 2,000 cached.
        assert!(r[0].impact.starts_with("8000 more"), "{}", r[0].impact);
    }

    #[test]
    fn slow_and_failing_tools_are_ranked() {
        let mut a = Advisor::new();
        for i in 0..20 {
            a.add(&tool("slow_search", 1_500 + i * 10, None));
            a.add(&tool("fast_lookup", 20, None));
            a.add(&tool("flaky_api", 30, (i % 4 == 0).then_some("HTTP 503")));
        }
        let advice = a.finish();
        let slow = of(&advice, "slow_tool");
        assert_eq!(slow.len(), 1, "{advice:#?}");
        assert_eq!(slow[0].subject, "slow_search");
        // The 19th of 20 sorted samples: 1,500 + 18 × 10 ms.
        assert_eq!(slow[0].evidence["p95_ms"], 1_680.0);
        let failing = of(&advice, "failing_tool");
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].subject, "flaky_api");
        assert_eq!(failing[0].evidence["errors"], 5);
        assert_eq!(failing[0].evidence["top_error"], "HTTP 503");
    }

    #[test]
    fn budget_events_are_counted_per_thread() {
        let mut a = Advisor::new();
        let event = |name: &str, thread: u32, share: &str| {
            let mut r = EventRow::default();
            r.kind = "log".into();
            r.agent = "planner".into();
            r.name = name.into();
            r.thread_id = Some(format!("{thread:032x}"));
            r.attributes = vec![
                (budget_attr::BUDGET_RESOURCE.into(), "cost_usd".into()),
                (budget_attr::BUDGET_SHARE.into(), share.into()),
                (budget_attr::BUDGET_LIMIT.into(), "0.5".into()),
            ];
            r
        };
        for t in 0..4 {
            a.add(&event(budget_event::BUDGET_WARNING, t, "0.8"));
        }
        a.add(&event(budget_event::BUDGET_EXCEEDED, 1, "1.02"));
        a.add(&event(budget_event::BUDGET_EXCEEDED, 2, "1.1"));
        a.add(&event(budget_event::BUDGET_EXCEEDED, 2, "1.1"));
        let advice = a.finish();
        let r = of(&advice, "budget_burn");
        assert_eq!(r.len(), 1, "{advice:#?}");
        assert_eq!(r[0].subject, "planner/cost_usd");
        assert_eq!(r[0].evidence["threads_warned"], 4);
        assert_eq!(r[0].evidence["threads_exceeded"], 2);
        assert_eq!(r[0].evidence["max_share"], 1.1);
    }

    #[test]
    fn a_long_error_is_quoted_shortened() {
        let mut a = Advisor::new();
        let long = "e".repeat(5_000);
        for _ in 0..5 {
            a.add(&tool("noisy", 1, Some(&long)));
        }
        let advice = a.finish();
        let quoted = advice.recommendations[0].evidence["top_error"].as_str().expect("quoted");
        assert_eq!(quoted.chars().count(), MAX_QUOTE_CHARS + 1, "200 characters and an ellipsis");
        assert!(advice.recommendations[0].message.len() < 600);
    }

    #[test]
    fn groups_are_bounded() {
        let mut a = Advisor::new();
        for i in 0..(MAX_GROUPS + 5) {
            a.add(&tool(&format!("t{i}"), 1, None));
        }
        let advice = a.finish();
        assert!(advice.truncated);
    }
}
