//! Thread diff, shared by the dashboard (`GET /api/diff`), the MCP tool `compare_threads` and
//! `mission-ctl diff`: two recorded threads (say the same agent's good run and bad run), their
//! steps aligned, the differences of each aligned pair, and where the two first diverge.
//!
//! A **step** is a span of the thread; a thread's steps are taken in start order (ties by span
//! id), at most [`MAX_STEPS`] of them (more: `truncated`). The two sequences are aligned on
//! each step's `(kind, name)` by a global alignment (Needleman–Wunsch): a gap costs
//! [`GAP_COST`], a step of the same kind under another name [`RENAME_COST`], a step of another
//! kind [`SUBSTITUTE_COST`], a matching step nothing. It is exact and bounded: `MAX_STEPS²`
//! cells of one byte each.
//!
//! Each aligned pair is compared field by field (see [`Field`]): presence, kind, name, status,
//! error, arguments hash, model, tokens and latency. Tokens and latency differ only past a
//! tolerance ([`TOKEN_TOLERANCE`], [`LATENCY_RATIO`] and [`LATENCY_MIN_MS`]), so two runs that
//! did the same thing are not reported apart for a few milliseconds or tokens of jitter. The
//! **first divergence** is the first pair, in alignment order, with a difference; its field is
//! the first that differs in [`Field`]'s order.
//!
//! # Examples
//!
//! ```
//! use mission_serve::diff::{Step, diff_steps};
//!
//! let step = |name: &str, args: &str| Step {
//!     kind: "tool_call".into(),
//!     name: name.into(),
//!     args_hash: Some(args.into()),
//!     ..Step::default()
//! };
//! let good = vec![step("search", "aa"), step("send_email", "bb")];
//! let bad = vec![step("search", "aa"), step("send_email", "cc")];
//! let diff = diff_steps(&good, &bad, false, false);
//! let first = diff.first_divergence.expect("they diverge");
//! assert_eq!((first.step, first.field.as_str()), (1, "args_hash"));
//! ```

use std::collections::HashMap;

use mission_store::{EventRow, Store};
use serde::Serialize;
use serde_json::{Value, json};

/// Most steps of a thread that are aligned (the first ones in start order; more: `truncated`).
pub const MAX_STEPS: usize = 2_000;
/// The cost of a step one thread has and the other does not.
pub const GAP_COST: u32 = 2;
/// The cost of aligning two steps of the same kind under different names (one tool instead of
/// another).
pub const RENAME_COST: u32 = 3;
/// The cost of aligning two steps of different kinds (never cheaper than two gaps).
pub const SUBSTITUTE_COST: u32 = 4;
/// Token counts differ when they differ by more than this fraction of the larger one.
pub const TOKEN_TOLERANCE: f64 = 0.10;
/// Latencies differ when the longer is at least this many times the shorter …
pub const LATENCY_RATIO: f64 = 2.0;
/// … and they are at least this many milliseconds apart.
pub const LATENCY_MIN_MS: f64 = 10.0;

/// Attributes whose value is a tool call's arguments hash already (the SDK's
/// `set_arguments` fingerprint), looked for first.
const HASH_ATTRIBUTES: [&str; 1] = [mission_core::fingerprint::attr::TOOL_ARGS_HASH];
/// Attributes that carry a tool call's (or a step's) arguments or input as text; the first one
/// present is hashed.
const ARGUMENT_ATTRIBUTES: [&str; 7] = [
    "gen_ai.tool.call.arguments",
    "tool.arguments",
    "tool.input",
    "input.value",
    "arguments",
    "input",
    mission_core::fingerprint::attr::LLM_REQUEST_HASH,
];

/// One step (a span) of a thread.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct Step {
    /// Its place in the thread's steps (start order), from 0.
    pub index: usize,
    /// The span's id (16 hex digits).
    pub span_id: String,
    /// Its parent span's id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Nesting depth (0: a root of the thread).
    pub depth: usize,
    /// `llm_call`, `tool_call`, `agent_step`, `retrieval`, `custom`.
    pub kind: String,
    /// The operation: a tool's name, `chat`, …
    pub name: String,
    /// The agent that recorded it.
    pub agent: String,
    /// Start, ns since the Unix epoch.
    pub start_ns: i64,
    /// Start, ms after the thread's first step started.
    pub offset_ms: f64,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// A failed step's error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hash of its arguments or input (16 hex digits), when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_hash: Option<String>,
    /// An LLM call's model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Input tokens of an LLM call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    /// Output tokens of an LLM call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    /// Cost in US dollars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// The hash of a step's arguments: the recorded fingerprint when there is one (the SDK's
/// `set_arguments` records it, and the store keeps it where it redacts the arguments), else
/// the fingerprint of the first arguments or input attribute kept as recorded (16 hex digits).
pub fn args_hash(attributes: &[(String, String)]) -> Option<String> {
    let get = |key: &str| attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if let Some(hash) = HASH_ATTRIBUTES.iter().find_map(|k| get(k)) {
        return Some(hash.to_owned());
    }
    // Content the store keeps redacted says nothing about the arguments: it is skipped.
    let redacted = |v: &&str| v.starts_with(mission_govern::redact::CONTENT_OMITTED);
    ARGUMENT_ATTRIBUTES.iter().filter_map(|k| get(k)).find(|v| !redacted(v)).map(|v| {
        mission_core::fingerprint::hex(mission_core::fingerprint::fingerprint(v.as_bytes()))
    })
}

/// What a step is made from: a span's fields, however it was read.
#[derive(Clone, Copy, Debug)]
pub struct SpanFacts<'a> {
    /// Start, ns since the Unix epoch.
    pub start_ns: i64,
    /// The span's id.
    pub span_id: u64,
    /// Its parent (0: none).
    pub parent_span_id: u64,
    /// Its kind.
    pub kind: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its agent.
    pub agent: &'a str,
    /// Its duration.
    pub duration_ns: i64,
    /// Its status.
    pub status: Option<&'a str>,
    /// Its error message.
    pub error: Option<&'a str>,
    /// Its model.
    pub model: Option<&'a str>,
    /// Input tokens.
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Cost.
    pub cost_usd: Option<f64>,
    /// Its attributes, as text.
    pub attributes: &'a [(String, String)],
}

impl SpanFacts<'_> {
    /// A stored event's facts, if it is a span.
    pub fn of_event_row(row: &EventRow) -> Option<SpanFacts<'_>> {
        Some(SpanFacts {
            start_ns: row.time_ns,
            span_id: row.span_id.unwrap_or(0),
            parent_span_id: row.parent_span_id.unwrap_or(0),
            kind: &row.kind,
            name: &row.name,
            agent: &row.agent,
            duration_ns: row.duration_ns?,
            status: row.status.as_deref(),
            error: row.error_message.as_deref().filter(|e| !e.is_empty()),
            model: row.model.as_deref().filter(|m| !m.is_empty()),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cost_usd: row.cost_usd,
            attributes: &row.attributes,
        })
    }
}

/// A thread's steps in start order (ties by span id), at most [`MAX_STEPS`]; and whether
/// there were more.
pub fn steps_of<'a>(spans: impl IntoIterator<Item = SpanFacts<'a>>) -> (Vec<Step>, bool) {
    let mut spans: Vec<SpanFacts<'a>> = spans.into_iter().collect();
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let truncated = spans.len() > MAX_STEPS;
    spans.truncate(MAX_STEPS);
    let t0 = spans.first().map_or(0, |s| s.start_ns);
    let parents: HashMap<u64, u64> = spans.iter().map(|s| (s.span_id, s.parent_span_id)).collect();
    let depth = |mut id: u64| {
        let mut d = 0;
        while let Some(&p) = parents.get(&id) {
            if p == 0 || d >= MAX_STEPS || !parents.contains_key(&p) {
                break;
            }
            d += 1;
            id = p;
        }
        d
    };
    let hex = |id: u64| (id != 0).then(|| format!("{id:016x}"));
    let steps = spans
        .iter()
        .enumerate()
        .map(|(index, s)| Step {
            index,
            span_id: hex(s.span_id).unwrap_or_default(),
            parent_id: hex(s.parent_span_id),
            depth: depth(s.span_id),
            kind: s.kind.to_owned(),
            name: s.name.to_owned(),
            agent: s.agent.to_owned(),
            start_ns: s.start_ns,
            offset_ms: s.start_ns.saturating_sub(t0) as f64 / 1e6,
            duration_ms: s.duration_ns.max(0) as f64 / 1e6,
            status: s.status.unwrap_or("unset").to_owned(),
            error: s.error.map(str::to_owned),
            args_hash: args_hash(s.attributes),
            model: s.model.map(str::to_owned),
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost_usd: s.cost_usd,
        })
        .collect();
    (steps, truncated)
}

/// A field two aligned steps are compared on, in the order a divergence names the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// One thread has the step, the other does not.
    Presence,
    /// Different kinds of step.
    Kind,
    /// The same kind under another name (another tool).
    Name,
    /// `ok` / `error` / `unset`.
    Status,
    /// The error message.
    Error,
    /// The arguments hash.
    ArgsHash,
    /// The model.
    Model,
    /// Input tokens (past [`TOKEN_TOLERANCE`]).
    InputTokens,
    /// Output tokens (past [`TOKEN_TOLERANCE`]).
    OutputTokens,
    /// Latency (past [`LATENCY_RATIO`] and [`LATENCY_MIN_MS`]).
    Latency,
}

impl Field {
    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Presence => "presence",
            Field::Kind => "kind",
            Field::Name => "name",
            Field::Status => "status",
            Field::Error => "error",
            Field::ArgsHash => "args_hash",
            Field::Model => "model",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::Latency => "latency_ms",
        }
    }
}

/// One field that differs between two aligned steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct FieldDiff {
    /// `presence`, `kind`, `name`, `status`, `error`, `args_hash`, `model`, `input_tokens`,
    /// `output_tokens` or `latency_ms`.
    pub field: String,
    /// Thread A's value (null: absent).
    pub a: Value,
    /// Thread B's value (null: absent).
    pub b: Value,
}

/// Two aligned steps (one of them absent where a thread has a step the other lacks).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct AlignedPair {
    /// Its place in the alignment, from 0.
    pub step: usize,
    /// Thread A's step.
    pub a: Option<Step>,
    /// Thread B's step.
    pub b: Option<Step>,
    /// What differs (empty: the same step, within tolerance).
    pub differences: Vec<FieldDiff>,
}

/// Where two threads first diverge.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct Divergence {
    /// The aligned pair (its `step`).
    pub step: usize,
    /// Thread A's step index there (absent: A has no step there).
    pub a_index: Option<usize>,
    /// Thread B's step index there.
    pub b_index: Option<usize>,
    /// The step's name (A's, else B's).
    pub name: String,
    /// The first field that differs.
    pub field: String,
    /// A's value.
    pub a: Value,
    /// B's value.
    pub b: Value,
}

/// Two threads compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct StepDiff {
    /// Steps of thread A aligned (at most [`MAX_STEPS`]).
    pub steps_a: usize,
    /// Steps of thread B aligned.
    pub steps_b: usize,
    /// The aligned pairs, in order.
    pub pairs: Vec<AlignedPair>,
    /// Pairs with a difference.
    pub differing: usize,
    /// Where they first diverge (absent: no difference).
    pub first_divergence: Option<Divergence>,
    /// Whether a thread had more than [`MAX_STEPS`] steps (the rest are not compared).
    pub truncated: bool,
}

/// The alignment: pairs of indexes into `a` and `b` (`None`: a gap), in order. Exact
/// Needleman–Wunsch over `(kind, name)`; ties prefer a pair over a gap, and a gap in B over
/// one in A.
pub fn align(a: &[Step], b: &[Step]) -> Vec<(Option<usize>, Option<usize>)> {
    let (a, b) = (&a[..a.len().min(MAX_STEPS)], &b[..b.len().min(MAX_STEPS)]);
    let (n, m) = (a.len(), b.len());
    let cost = |x: &Step, y: &Step| {
        if x.kind != y.kind {
            SUBSTITUTE_COST
        } else if x.name != y.name {
            RENAME_COST
        } else {
            0
        }
    };
    // Directions, one byte a cell: 0 diagonal, 1 up (A's step alone), 2 left (B's alone).
    let width = m + 1;
    let mut dir = vec![0u8; (n + 1) * width];
    let mut prev: Vec<u32> = (0..=m as u32).map(|j| j * GAP_COST).collect();
    for cell in dir.iter_mut().take(width).skip(1) {
        *cell = 2;
    }
    let mut row = vec![0u32; m + 1];
    for i in 1..=n {
        row[0] = i as u32 * GAP_COST;
        dir[i * width] = 1;
        for j in 1..=m {
            let diag = prev[j - 1] + cost(&a[i - 1], &b[j - 1]);
            let up = prev[j] + GAP_COST;
            let left = row[j - 1] + GAP_COST;
            let (best, d) = if diag <= up && diag <= left {
                (diag, 0)
            } else if up <= left {
                (up, 1)
            } else {
                (left, 2)
            };
            row[j] = best;
            dir[i * width + j] = d;
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let (mut i, mut j) = (n, m);
    let mut out = Vec::with_capacity(n.max(m));
    while i > 0 || j > 0 {
        match dir[i * width + j] {
            0 if i > 0 && j > 0 => {
                out.push((Some(i - 1), Some(j - 1)));
                i -= 1;
                j -= 1;
            }
            1 if i > 0 => {
                out.push((Some(i - 1), None));
                i -= 1;
            }
            _ if j > 0 => {
                out.push((None, Some(j - 1)));
                j -= 1;
            }
            _ => {
                out.push((Some(i - 1), None));
                i -= 1;
            }
        }
    }
    out.reverse();
    out
}

fn tokens_differ(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => {
            // In f64: counts read from a store may be anything an i64 holds.
            let (x, y) = (x as f64, y as f64);
            (x - y).abs() > TOKEN_TOLERANCE * x.abs().max(y.abs())
        }
        (None, None) => false,
        _ => true,
    }
}

fn latency_differs(a: f64, b: f64) -> bool {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    hi - lo >= LATENCY_MIN_MS && hi >= LATENCY_RATIO * lo
}

/// The fields in which `a` and `b` differ, in [`Field`]'s order.
pub fn compare(a: &Step, b: &Step) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let mut push = |field: Field, x: Value, y: Value| {
        out.push(FieldDiff { field: field.as_str().to_owned(), a: x, b: y });
    };
    if a.kind != b.kind {
        push(Field::Kind, json!(a.kind), json!(b.kind));
    }
    if a.name != b.name {
        push(Field::Name, json!(a.name), json!(b.name));
    }
    if a.status != b.status {
        push(Field::Status, json!(a.status), json!(b.status));
    }
    if a.error != b.error {
        push(Field::Error, json!(a.error), json!(b.error));
    }
    if a.args_hash != b.args_hash {
        push(Field::ArgsHash, json!(a.args_hash), json!(b.args_hash));
    }
    if a.model != b.model {
        push(Field::Model, json!(a.model), json!(b.model));
    }
    if tokens_differ(a.input_tokens, b.input_tokens) {
        push(Field::InputTokens, json!(a.input_tokens), json!(b.input_tokens));
    }
    if tokens_differ(a.output_tokens, b.output_tokens) {
        push(Field::OutputTokens, json!(a.output_tokens), json!(b.output_tokens));
    }
    if latency_differs(a.duration_ms, b.duration_ms) {
        push(Field::Latency, json!(a.duration_ms), json!(b.duration_ms));
    }
    out
}

/// Aligns and compares two threads' steps (as [`steps_of`] gives them; `truncated_*`: whether
/// either had more).
pub fn diff_steps(a: &[Step], b: &[Step], truncated_a: bool, truncated_b: bool) -> StepDiff {
    let alignment = align(a, b);
    let mut pairs = Vec::with_capacity(alignment.len());
    let mut first_divergence = None;
    let mut differing = 0;
    for (step, (i, j)) in alignment.into_iter().enumerate() {
        let (x, y) = (i.map(|i| &a[i]), j.map(|j| &b[j]));
        let differences = match (x, y) {
            (Some(x), Some(y)) => compare(x, y),
            (Some(x), None) => vec![FieldDiff {
                field: Field::Presence.as_str().into(),
                a: json!(x.name),
                b: Value::Null,
            }],
            (None, Some(y)) => vec![FieldDiff {
                field: Field::Presence.as_str().into(),
                a: Value::Null,
                b: json!(y.name),
            }],
            (None, None) => Vec::new(),
        };
        if let Some(d) = differences.first() {
            differing += 1;
            if first_divergence.is_none() {
                first_divergence = Some(Divergence {
                    step,
                    a_index: i,
                    b_index: j,
                    name: x.or(y).map(|s| s.name.clone()).unwrap_or_default(),
                    field: d.field.clone(),
                    a: d.a.clone(),
                    b: d.b.clone(),
                });
            }
        }
        pairs.push(AlignedPair { step, a: x.cloned(), b: y.cloned(), differences });
    }
    StepDiff {
        steps_a: a.len().min(MAX_STEPS),
        steps_b: b.len().min(MAX_STEPS),
        pairs,
        differing,
        first_divergence,
        truncated: truncated_a || truncated_b,
    }
}

/// One side of a diff: the thread and its numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct ThreadSide {
    /// The thread (32 hex digits).
    pub thread_id: String,
    /// The agent of its first root step.
    pub agent: String,
    /// Its steps (spans) in all.
    pub steps: usize,
    /// Its failed steps.
    pub errors: usize,
    /// From its first step's start to its last step's end, ms.
    pub duration_ms: f64,
    /// Input plus output tokens.
    pub tokens: i64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl ThreadSide {
    /// The summary of a thread's steps.
    pub fn of(thread_id: &str, steps: &[Step], total: usize) -> Self {
        let start = steps.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = steps
            .iter()
            .map(|s| s.start_ns.saturating_add((s.duration_ms * 1e6) as i64))
            .max()
            .unwrap_or(0);
        Self {
            thread_id: thread_id.to_owned(),
            agent: steps
                .iter()
                .find(|s| s.parent_id.is_none())
                .or(steps.first())
                .map(|s| s.agent.clone())
                .unwrap_or_default(),
            steps: total,
            errors: steps.iter().filter(|s| s.status == "error").count(),
            duration_ms: end.saturating_sub(start) as f64 / 1e6,
            tokens: steps
                .iter()
                .map(|s| s.input_tokens.unwrap_or(0).saturating_add(s.output_tokens.unwrap_or(0)))
                .fold(0i64, i64::saturating_add),
            cost_usd: steps.iter().filter_map(|s| s.cost_usd).sum(),
        }
    }
}

/// `thread <id> (<agent>), 7 steps, 1 errors, 1466.0 ms, 2640 tokens, $0.000504`.
impl std::fmt::Display for ThreadSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "thread {} ({}), {} steps, {} errors, {:.1} ms, {} tokens, ${:.6}",
            self.thread_id,
            self.agent,
            self.steps,
            self.errors,
            self.duration_ms,
            self.tokens,
            self.cost_usd
        )
    }
}

/// Two threads compared: both sides and their aligned steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct ThreadDiff {
    /// Thread A.
    pub a: ThreadSide,
    /// Thread B.
    pub b: ThreadSide,
    /// Whether no aligned pair differs.
    pub identical: bool,
    /// The steps, aligned and compared.
    #[serde(flatten)]
    pub diff: StepDiff,
}

/// Why two threads could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A thread id is not 32 lowercase hex digits (`which`: `a` or `b`).
    #[error("{which} must be a thread id, 32 lowercase hex digits, not {given:?}")]
    BadId {
        /// `a` or `b`.
        which: &'static str,
        /// What was given (at most 40 characters).
        given: String,
    },
    /// No such thread (none of its spans is visible in this scope).
    #[error("no thread {id} ({which}) with recorded steps")]
    NotFound {
        /// `a` or `b`.
        which: &'static str,
        /// The id.
        id: String,
    },
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(#[from] mission_store::Error),
}

/// Checks a thread id argument.
///
/// # Errors
/// [`DiffError::BadId`] unless it is 32 lowercase hex digits.
pub fn check_id(which: &'static str, id: &str) -> Result<(), DiffError> {
    let ok = id.len() == 32
        && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && id.bytes().any(|b| b != b'0');
    if ok && id.parse::<mission_core::ThreadId>().is_ok() {
        Ok(())
    } else {
        Err(DiffError::BadId { which, given: id.chars().take(40).collect() })
    }
}

/// The steps of `thread_id` in `store` (opened in the principal's scope), and how many it has.
///
/// # Errors
/// The store could not be read.
pub fn load_steps(store: &Store, thread_id: &str) -> Result<(Vec<Step>, usize), DiffError> {
    // Only the first MAX_STEPS spans (by start, then span id) are kept while reading, so a huge
    // thread costs a bounded heap, not all its rows.
    struct First(EventRow);
    impl First {
        fn key(&self) -> (i64, u64) {
            (self.0.time_ns, self.0.span_id.unwrap_or(0))
        }
    }
    impl PartialEq for First {
        fn eq(&self, other: &Self) -> bool {
            self.key() == other.key()
        }
    }
    impl Eq for First {}
    impl PartialOrd for First {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for First {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.key().cmp(&other.key())
        }
    }
    let mut first = std::collections::BinaryHeap::with_capacity(MAX_STEPS + 1);
    let mut total = 0;
    for batch in store.query().thread(thread_id).iter()? {
        for row in EventRow::from_batch(&batch?)?.into_iter().filter(|r| r.duration_ns.is_some()) {
            total += 1;
            first.push(First(row));
            if first.len() > MAX_STEPS {
                first.pop();
            }
        }
    }
    let rows: Vec<EventRow> = first.into_iter().map(|f| f.0).collect();
    let (steps, _) = steps_of(rows.iter().filter_map(SpanFacts::of_event_row));
    Ok((steps, total))
}

/// Compares two threads' steps (each `(steps, total)` as [`load_steps`] gives them).
pub fn diff_loaded(a: (&str, Vec<Step>, usize), b: (&str, Vec<Step>, usize)) -> ThreadDiff {
    let diff = diff_steps(&a.1, &b.1, a.2 > MAX_STEPS, b.2 > MAX_STEPS);
    ThreadDiff {
        a: ThreadSide::of(a.0, &a.1, a.2),
        b: ThreadSide::of(b.0, &b.1, b.2),
        identical: diff.first_divergence.is_none(),
        diff,
    }
}

/// Compares threads `a` and `b` of `store` (opened in the principal's scope).
///
/// # Errors
/// A malformed id ([`DiffError::BadId`]), a thread without visible steps
/// ([`DiffError::NotFound`]), or an unreadable store.
pub fn diff_threads(store: &Store, a: &str, b: &str) -> Result<ThreadDiff, DiffError> {
    check_id("a", a)?;
    check_id("b", b)?;
    let (steps_a, total_a) = load_steps(store, a)?;
    if total_a == 0 {
        return Err(DiffError::NotFound { which: "a", id: a.to_owned() });
    }
    let (steps_b, total_b) = load_steps(store, b)?;
    if total_b == 0 {
        return Err(DiffError::NotFound { which: "b", id: b.to_owned() });
    }
    Ok(diff_loaded((a, steps_a, total_a), (b, steps_b, total_b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str, name: &str) -> Step {
        Step {
            kind: kind.into(),
            name: name.into(),
            status: "ok".into(),
            duration_ms: 100.0,
            ..Step::default()
        }
    }

    fn run() -> Vec<Step> {
        let mut chat = step("llm_call", "chat");
        chat.model = Some("gpt-4o-mini".into());
        chat.input_tokens = Some(500);
        chat.output_tokens = Some(50);
        let mut search = step("tool_call", "web_search");
        search.args_hash = Some("00000000000000aa".into());
        let email = step("tool_call", "send_email");
        let mut steps =
            vec![step("agent_step", "handle_request"), chat.clone(), search, chat, email];
        for (i, s) in steps.iter_mut().enumerate() {
            s.index = i;
        }
        steps
    }

    #[test]
    fn identical_threads_do_not_diverge() {
        let d = diff_steps(&run(), &run(), false, false);
        assert_eq!(d.first_divergence, None);
        assert_eq!(d.differing, 0);
        assert_eq!(d.pairs.len(), 5);
        assert!(d.pairs.iter().all(|p| p.a.is_some() && p.b.is_some()));
        // Jitter within tolerance is not a difference.
        let mut b = run();
        b[1].duration_ms = 130.0;
        b[1].input_tokens = Some(520);
        assert_eq!(diff_steps(&run(), &b, false, false).first_divergence, None);
    }

    #[test]
    fn a_planted_divergence_is_found_at_its_step_and_field() {
        let mut b = run();
        b[2].args_hash = Some("00000000000000bb".into());
        b[3].model = Some("gpt-4.1".into());
        let d = diff_steps(&run(), &b, false, false);
        let first = d.first_divergence.expect("diverges");
        assert_eq!((first.step, first.a_index, first.b_index), (2, Some(2), Some(2)));
        assert_eq!(first.field, "args_hash");
        assert_eq!(first.name, "web_search");
        assert_eq!((first.a, first.b), (json!("00000000000000aa"), json!("00000000000000bb")));
        assert_eq!(d.differing, 2);
        assert_eq!(d.pairs[3].differences[0].field, "model");

        // The model first, then latency: each field is found where it was planted.
        let mut b = run();
        b[1].model = Some("claude-sonnet-4".into());
        assert_eq!(diff_steps(&run(), &b, false, false).first_divergence.unwrap().field, "model");
        let mut b = run();
        b[4].duration_ms = 900.0;
        let first = diff_steps(&run(), &b, false, false).first_divergence.unwrap();
        assert_eq!((first.step, first.field.as_str()), (4, "latency_ms"));
        let mut b = run();
        b[3].status = "error".into();
        b[3].error = Some("rate limited".into());
        let first = diff_steps(&run(), &b, false, false).first_divergence.unwrap();
        assert_eq!((first.step, first.field.as_str()), (3, "status"));
        assert_eq!(diff_steps(&run(), &b, false, false).pairs[3].differences.len(), 2);
    }

    #[test]
    fn an_extra_or_missing_step_is_a_gap_and_the_rest_still_aligns() {
        let mut b = run();
        b.insert(2, step("retrieval", "vector_search"));
        let d = diff_steps(&run(), &b, false, false);
        assert_eq!(d.pairs.len(), 6);
        let first = d.first_divergence.expect("diverges");
        assert_eq!((first.step, first.a_index, first.b_index), (2, None, Some(2)));
        assert_eq!(first.field, "presence");
        assert_eq!(d.differing, 1, "{:?}", d.pairs);
        // Missing in B.
        let mut b = run();
        b.remove(4);
        let d = diff_steps(&run(), &b, false, false);
        let first = d.first_divergence.expect("diverges");
        assert_eq!((first.step, first.a_index, first.b_index), (4, Some(4), None));
        // Another tool at the same place is a rename, not two gaps.
        let mut b = run();
        b[4].name = "lookup_order".into();
        let d = diff_steps(&run(), &b, false, false);
        assert_eq!(d.pairs.len(), 5);
        assert_eq!(d.first_divergence.unwrap().field, "name");
    }

    #[test]
    fn alignment_is_bounded() {
        let many: Vec<Step> =
            (0..MAX_STEPS + 50).map(|i| step("tool_call", &format!("t{}", i % 7))).collect();
        let alignment = align(&many, &many[..10]);
        assert_eq!(alignment.iter().filter(|p| p.0.is_some()).count(), MAX_STEPS);
        assert_eq!(alignment.iter().filter(|p| p.1.is_some()).count(), 10);
        let d = diff_steps(&many, &many, true, false);
        assert!(d.truncated);
        assert_eq!(d.steps_a, MAX_STEPS);
        assert!(align(&[], &[]).is_empty());
        assert_eq!(align(&[], &many[..3]), vec![(None, Some(0)), (None, Some(1)), (None, Some(2))]);
    }

    #[test]
    fn steps_follow_start_order_with_depth_and_hashed_arguments() {
        let attrs = vec![("gen_ai.tool.call.arguments".to_owned(), r#"{"q":"refund"}"#.to_owned())];
        let hashed = vec![
            ("gen_ai.tool.call.arguments".to_owned(), "[content omitted]".to_owned()),
            ("mission.tool.args_hash".to_owned(), "00000000000000ff".to_owned()),
        ];
        let redacted = [("input.value".to_owned(), "[content omitted]".to_owned())];
        assert_eq!(args_hash(&redacted), None);
        let none: Vec<(String, String)> = Vec::new();
        let facts = |start, id, parent, name, attributes| SpanFacts {
            start_ns: start,
            span_id: id,
            parent_span_id: parent,
            kind: "tool_call",
            name,
            agent: "bot",
            duration_ns: 5_000_000,
            status: Some("ok"),
            error: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            attributes,
        };
        let (steps, truncated) = steps_of([
            facts(30, 3, 1, "late", &none),
            facts(10, 1, 0, "root", &none),
            facts(20, 2, 1, "search", &attrs),
            facts(20, 4, 2, "hashed", &hashed),
        ]);
        assert!(!truncated);
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["root", "search", "hashed", "late"]);
        assert_eq!(steps.iter().map(|s| s.depth).collect::<Vec<_>>(), [0, 1, 2, 1]);
        assert_eq!(steps[1].args_hash.as_deref().map(str::len), Some(16));
        assert_eq!(steps[2].args_hash.as_deref(), Some("00000000000000ff"));
        assert_eq!(steps[0].args_hash, None);
        assert_eq!(steps[3].offset_ms, 20.0 / 1e6);
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("a", "0123456789abcdef0123456789abcdef").is_ok());
        for bad in
            ["", "xyz", "0123456789ABCDEF0123456789ABCDEF", "00000000000000000000000000000000"]
        {
            assert!(
                matches!(check_id("b", bad), Err(DiffError::BadId { which: "b", .. })),
                "{bad}"
            );
        }
    }
}
