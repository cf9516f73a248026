//! Convenience queries built on [`Query`](crate::Query): one thread as a span tree, one
//! summary row per thread, and per-operation latency statistics.

use std::collections::HashMap;

use arrow::array::{
    Array, DictionaryArray, Float64Array, Int64Array, MapArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::Int32Type;
use hdrhistogram::Histogram;

use crate::schema::col;
use crate::{Error, Query, Result, Store};

/// Typed access to the columns of a result batch.
struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn get<T: 'static>(&self, name: &str) -> Result<&'a T> {
        self.batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>()).ok_or_else(
            || Error::Invalid {
                what: "column",
                reason: format!("{name} missing or of another type"),
            },
        )
    }

    fn text(&self, name: &str) -> Result<TextColumn<'a>> {
        let column = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| Error::Invalid { what: "column", reason: format!("{name} missing") })?;
        if let Some(d) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
            let values = d.values().as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                Error::Invalid { what: "column", reason: format!("{name} is not text") }
            })?;
            return Ok(TextColumn::Dict(d, values));
        }
        Ok(TextColumn::Plain(self.get::<StringArray>(name)?))
    }
}

impl<'a> Columns<'a> {
    /// The attributes column, as `Map<Utf8, Utf8>`.
    fn attributes(&self) -> Result<AttributeColumn<'a>> {
        let map = self.get::<MapArray>(col::ATTRIBUTES)?;
        let (Some(keys), Some(values)) = (
            map.keys().as_any().downcast_ref::<StringArray>(),
            map.values().as_any().downcast_ref::<StringArray>(),
        ) else {
            return Err(Error::Invalid {
                what: "column",
                reason: "attributes is not Map<Utf8, Utf8>".into(),
            });
        };
        Ok(AttributeColumn { map, keys, values })
    }
}

/// The attributes of each row.
struct AttributeColumn<'a> {
    map: &'a MapArray,
    keys: &'a StringArray,
    values: &'a StringArray,
}

impl<'a> AttributeColumn<'a> {
    /// The (key, value) pairs of `row`, values that are null left out.
    fn entries(&self, row: usize) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let range = if self.map.is_valid(row) {
            let offsets = self.map.value_offsets();
            offsets[row] as usize..offsets[row + 1] as usize
        } else {
            0..0
        };
        let (keys, values) = (self.keys, self.values);
        range.filter(move |&j| values.is_valid(j)).map(move |j| (keys.value(j), values.value(j)))
    }
}

enum TextColumn<'a> {
    Dict(&'a DictionaryArray<Int32Type>, &'a StringArray),
    Plain(&'a StringArray),
}

impl TextColumn<'_> {
    fn value(&self, row: usize) -> Option<&str> {
        match self {
            TextColumn::Dict(d, values) => {
                let keys = d.keys();
                keys.is_valid(row).then(|| values.value(keys.value(row) as usize))
            }
            TextColumn::Plain(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

fn opt_i64(a: &Int64Array, row: usize) -> Option<i64> {
    a.is_valid(row).then(|| a.value(row))
}

fn opt_f64(a: &Float64Array, row: usize) -> Option<f64> {
    a.is_valid(row).then(|| a.value(row))
}

/// One anomaly event, as [`Store::anomalies`] reads it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AnomalyRow {
    /// The anomaly's id: its span id, 16 hex digits.
    pub id: String,
    /// When, ns since the Unix epoch.
    pub time_ns: i64,
    /// Its tenant.
    pub tenant: String,
    /// The agent whose stream it was found in.
    pub agent: String,
    /// The metric (`latency_ms`, `error_rate`, `tokens`, `cost_usd`, or a metric's name).
    pub metric: String,
    /// The detector that found it (`ensemble`, `leak`).
    pub detector: String,
    /// Anomaly score in `0..=1`.
    pub score: f64,
    /// The observed value.
    pub value: f64,
    /// What the model expected.
    pub expected: f64,
    /// Lower edge of the expected band.
    pub lower: f64,
    /// Upper edge of the expected band.
    pub upper: f64,
    /// Its attributes (operation, direction, cause, exemplar, …), sorted by key.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One span of a thread, with its children and the other events (logs, decisions) inside it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SpanNode {
    /// Span id (hex).
    pub span_id: String,
    /// Name.
    pub name: String,
    /// Kind (`llm_call`, `tool_call`, …).
    pub kind: String,
    /// Start, nanoseconds since the epoch.
    pub start_ns: i64,
    /// Duration in nanoseconds.
    pub duration_ns: i64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    /// The error message, if any.
    pub error_message: Option<String>,
    /// Model, for LLM calls.
    pub model: Option<String>,
    /// Input tokens, for LLM calls.
    pub input_tokens: Option<i64>,
    /// Output tokens, for LLM calls.
    pub output_tokens: Option<i64>,
    /// Cost in US dollars, for LLM calls.
    pub cost_usd: Option<f64>,
    /// Child spans, by start time.
    pub children: Vec<SpanNode>,
    /// Non-span events recorded inside this span: `(time_ns, kind, text)`.
    pub events: Vec<(i64, String, String)>,
}

/// One thread: its events (ordered by time) and its spans as a tree.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ThreadView {
    /// The thread id.
    pub thread_id: String,
    /// Root spans (normally one), by start time.
    pub roots: Vec<SpanNode>,
    /// Events that belong to no stored span, `(time_ns, kind, text)`.
    pub loose_events: Vec<(i64, String, String)>,
    /// Events in the thread.
    pub event_count: usize,
    /// The thread's scores and feedback (also listed, as text, among the events of the span
    /// they score), oldest first.
    pub scores: Vec<crate::ScoreRow>,
}

/// One row per thread.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ThreadSummary {
    /// The thread id.
    pub thread_id: String,
    /// The tenant.
    pub tenant: String,
    /// The agent.
    pub agent: String,
    /// First event, nanoseconds since the epoch.
    pub start_ns: i64,
    /// From the first event's start to the last event's end, in nanoseconds.
    pub duration_ns: i64,
    /// Spans.
    pub spans: u64,
    /// LLM calls.
    pub llm_calls: u64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Spans that ended with an error.
    pub errors: u64,
}

/// How to group [`Store::operation_stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By span name (the operation).
    Operation,
    /// By agent.
    Agent,
    /// By model (LLM calls).
    Model,
    /// By tenant.
    Tenant,
    /// By end user: the `user.id` attribute set on any event of the thread (usually its root
    /// span); threads without one count under `""`.
    User,
}

/// The attribute naming a thread's end user (OpenTelemetry's `user.id`).
pub const USER_ID_ATTRIBUTE: &str = "user.id";

impl std::str::FromStr for GroupBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "operation" => GroupBy::Operation,
            "agent" => GroupBy::Agent,
            "model" => GroupBy::Model,
            "tenant" => GroupBy::Tenant,
            "user" => GroupBy::User,
            other => {
                return Err(Error::Invalid {
                    what: "group",
                    reason: format!("{other:?}: expected operation, agent, model, tenant or user"),
                });
            }
        })
    }
}

/// Tokens and cost of one group of LLM calls over a window.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CostRow {
    /// The group's values, in the order of the `group_by` asked for.
    pub group: Vec<String>,
    /// LLM calls.
    pub llm_calls: u64,
    /// Threads with at least one of those calls.
    pub threads: u64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Of which read from the provider's cache.
    pub cached_input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

/// The grouping columns of one batch, resolved once.
struct GroupKeys<'a> {
    name: TextColumn<'a>,
    agent: TextColumn<'a>,
    model: TextColumn<'a>,
    tenant: &'a StringArray,
    thread: &'a StringArray,
    users: &'a HashMap<String, String>,
}

impl<'a> GroupKeys<'a> {
    fn new(c: &Columns<'a>, users: &'a HashMap<String, String>) -> Result<Self> {
        Ok(Self {
            name: c.text(col::NAME)?,
            agent: c.text(col::AGENT)?,
            model: c.text(col::MODEL)?,
            tenant: c.get::<StringArray>(col::TENANT)?,
            thread: c.get::<StringArray>(col::THREAD_ID)?,
            users,
        })
    }

    fn key(&self, group_by: &[GroupBy], row: usize) -> Vec<String> {
        group_by
            .iter()
            .map(|g| match g {
                GroupBy::Operation => self.name.value(row).unwrap_or(""),
                GroupBy::Agent => self.agent.value(row).unwrap_or(""),
                GroupBy::Model => self.model.value(row).unwrap_or(""),
                GroupBy::Tenant => self.tenant.value(row),
                GroupBy::User => self
                    .thread
                    .is_valid(row)
                    .then(|| self.users.get(self.thread.value(row)))
                    .flatten()
                    .map_or("", String::as_str),
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Latency and volume of one group of spans over a window.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OperationStat {
    /// The group's values, in the order of the `group_by` asked for.
    pub group: Vec<String>,
    /// Spans.
    pub count: u64,
    /// Spans with an error.
    pub errors: u64,
    /// `errors / count`.
    pub error_rate: f64,
    /// Median duration, ns.
    pub p50_ns: u64,
    /// 95th percentile, ns.
    pub p95_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Longest, ns.
    pub max_ns: u64,
    /// Spans per second over the window.
    pub per_second: f64,
    /// Input + output tokens.
    pub tokens: i64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

/// Most children [`Store::thread_links`] lists.
pub const MAX_LISTED_CHILDREN: usize = 100;

/// Where a thread sits in its tree and how control left it, as [`Store::thread_links`] reads
/// them from the control attributes (`mission.thread.*`) the SDK records.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ThreadLinks {
    /// The parent thread, for a child thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_thread_id: Option<String>,
    /// Its depth in the tree (absent for a root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    /// Its last recorded state change (`paused`, `running`, `cancelled`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Who made that change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_by: Option<String>,
    /// Its children's ids, sorted, at most [`MAX_LISTED_CHILDREN`].
    pub children: Vec<String>,
    /// Whether there were more children than listed.
    pub children_truncated: bool,
}

impl Store {
    /// The tree links and last state of `thread_id`: its parent (from its root span or its
    /// start record), its children (threads whose records name it as parent) and the last
    /// state change recorded in it. A tenant-scoped store sees its tenant's threads only.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn thread_links(&self, thread_id: &str) -> Result<ThreadLinks> {
        use mission_core::thread::attr;
        let mut links = ThreadLinks::default();
        let mut last_state = i64::MIN;
        let own = self.query().thread(thread_id).columns(&[col::TIME, col::ATTRIBUTES]);
        for batch in own.iter()? {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let time = c.get::<TimestampNanosecondArray>(col::TIME)?;
            let attributes = c.attributes()?;
            for row in 0..batch.num_rows() {
                let (mut state, mut by) = (None, None);
                for (k, v) in attributes.entries(row) {
                    match k {
                        attr::PARENT_ID => links.parent_thread_id = Some(v.to_owned()),
                        attr::DEPTH => links.depth = v.parse().ok(),
                        attr::STATE => state = Some(v),
                        attr::STATE_BY => by = Some(v),
                        _ => {}
                    }
                }
                if let Some(state) = state
                    && time.value(row) >= last_state
                {
                    last_state = time.value(row);
                    links.state = Some(state.to_owned());
                    links.state_by = by.map(str::to_owned);
                }
            }
        }
        let children =
            self.query().attribute(attr::PARENT_ID, thread_id).columns(&[col::THREAD_ID]);
        let mut ids = std::collections::BTreeSet::new();
        for batch in children.iter()? {
            let batch = batch?;
            let thread = Columns { batch: &batch }.get::<StringArray>(col::THREAD_ID)?;
            ids.extend(
                (0..batch.num_rows())
                    .filter(|&r| thread.is_valid(r))
                    .map(|r| thread.value(r).to_owned()),
            );
        }
        links.children_truncated = ids.len() > MAX_LISTED_CHILDREN;
        links.children = ids.into_iter().take(MAX_LISTED_CHILDREN).collect();
        Ok(links)
    }
}

impl Store {
    /// Thread id → `user.id`, for the tenant of `query`, when `group_by` asks for users.
    fn users_if(&self, group_by: &[GroupBy], query: &Query<'_>) -> Result<HashMap<String, String>> {
        let mut users = HashMap::new();
        if !group_by.contains(&GroupBy::User) {
            return Ok(users);
        }
        let mut all = self.query().columns(&[col::THREAD_ID, col::ATTRIBUTES]);
        if let Some(tenant) = query.tenant_filter() {
            all = all.tenant(tenant);
        }
        for batch in all.iter()? {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let thread = c.get::<StringArray>(col::THREAD_ID)?;
            let attributes = c.attributes()?;
            for row in 0..batch.num_rows() {
                if !thread.is_valid(row) {
                    continue;
                }
                if let Some((_, user)) =
                    attributes.entries(row).find(|(k, _)| *k == USER_ID_ATTRIBUTE)
                {
                    users.insert(thread.value(row).to_owned(), user.to_owned());
                }
            }
        }
        Ok(users)
    }

    /// Tokens and cost of the LLM calls `query` selects, grouped by `group_by` (by model when
    /// empty), most expensive first.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn cost_report(&self, query: Query<'_>, group_by: &[GroupBy]) -> Result<Vec<CostRow>> {
        let group_by = if group_by.is_empty() { &[GroupBy::Model][..] } else { group_by };
        let users = self.users_if(group_by, &query)?;
        let iter = query
            .kind("llm_call")
            .columns(&[
                col::NAME,
                col::AGENT,
                col::MODEL,
                col::THREAD_ID,
                col::INPUT_TOKENS,
                col::CACHED_INPUT_TOKENS,
                col::OUTPUT_TOKENS,
                col::COST,
            ])
            .iter()?;
        let mut groups: HashMap<Vec<String>, (CostRow, std::collections::HashSet<String>)> =
            HashMap::new();
        for batch in iter {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let input = c.get::<Int64Array>(col::INPUT_TOKENS)?;
            let cached = c.get::<Int64Array>(col::CACHED_INPUT_TOKENS)?;
            let output = c.get::<Int64Array>(col::OUTPUT_TOKENS)?;
            let cost = c.get::<Float64Array>(col::COST)?;
            let keys = GroupKeys::new(&c, &users)?;
            for row in 0..batch.num_rows() {
                let key = keys.key(group_by, row);
                let (acc, threads) = groups.entry(key.clone()).or_insert_with(|| {
                    (CostRow { group: key, ..CostRow::default() }, Default::default())
                });
                acc.llm_calls += 1;
                acc.input_tokens += opt_i64(input, row).unwrap_or(0);
                acc.cached_input_tokens += opt_i64(cached, row).unwrap_or(0);
                acc.output_tokens += opt_i64(output, row).unwrap_or(0);
                acc.cost_usd += opt_f64(cost, row).unwrap_or(0.0);
                if keys.thread.is_valid(row) && !threads.contains(keys.thread.value(row)) {
                    threads.insert(keys.thread.value(row).to_owned());
                }
            }
        }
        let mut out: Vec<CostRow> = groups
            .into_values()
            .map(|(mut row, threads)| {
                row.threads = threads.len() as u64;
                row
            })
            .collect();
        out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.group.cmp(&b.group)));
        Ok(out)
    }

    /// The anomaly events among those `query` selects, newest first.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn anomalies(&self, query: Query<'_>) -> Result<Vec<AnomalyRow>> {
        let query = query.kind("anomaly").columns(&[
            col::TIME,
            col::TENANT,
            col::AGENT,
            col::NAME,
            col::SPAN_ID,
            col::ANOMALY_DETECTOR,
            col::ANOMALY_SCORE,
            col::METRIC_VALUE,
            col::ANOMALY_EXPECTED,
            col::ANOMALY_LOWER,
            col::ANOMALY_UPPER,
            col::ATTRIBUTES,
        ]);
        let mut out = Vec::new();
        for batch in query.iter()? {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let time = c.get::<TimestampNanosecondArray>(col::TIME)?;
            let tenant = c.text(col::TENANT)?;
            let agent = c.text(col::AGENT)?;
            let name = c.text(col::NAME)?;
            let span = c.get::<UInt64Array>(col::SPAN_ID)?;
            let detector = c.text(col::ANOMALY_DETECTOR)?;
            let [score, value, expected, lower, upper] = [
                col::ANOMALY_SCORE,
                col::METRIC_VALUE,
                col::ANOMALY_EXPECTED,
                col::ANOMALY_LOWER,
                col::ANOMALY_UPPER,
            ]
            .map(|n| c.get::<Float64Array>(n));
            let (score, value, expected, lower, upper) =
                (score?, value?, expected?, lower?, upper?);
            let attributes = c.attributes()?;
            for row in 0..batch.num_rows() {
                let f = |a: &Float64Array| opt_f64(a, row).unwrap_or(f64::NAN);
                out.push(AnomalyRow {
                    id: format!("{:016x}", if span.is_valid(row) { span.value(row) } else { 0 }),
                    time_ns: time.value(row),
                    tenant: tenant.value(row).unwrap_or("").to_owned(),
                    agent: agent.value(row).unwrap_or("").to_owned(),
                    metric: name.value(row).unwrap_or("").to_owned(),
                    detector: detector.value(row).unwrap_or("").to_owned(),
                    score: f(score),
                    value: f(value),
                    expected: f(expected),
                    lower: f(lower),
                    upper: f(upper),
                    attributes: attributes
                        .entries(row)
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| b.time_ns.cmp(&a.time_ns).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Every event of thread `thread_id`, as a span tree.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn thread(&self, thread_id: &str) -> Result<ThreadView> {
        let batches = self.query().thread(thread_id).batches()?;
        let mut nodes: Vec<(Option<u64>, u64, SpanNode)> = Vec::new();
        let mut others: Vec<(Option<u64>, (i64, String, String))> = Vec::new();
        let mut scores = Vec::new();
        let mut count = 0;
        for batch in &batches {
            let c = Columns { batch };
            let time = c.get::<TimestampNanosecondArray>(col::TIME)?;
            let kind = c.text(col::KIND)?;
            let name = c.text(col::NAME)?;
            let span = c.get::<UInt64Array>(col::SPAN_ID)?;
            let parent = c.get::<UInt64Array>(col::PARENT_SPAN_ID)?;
            let duration = c.get::<Int64Array>(col::DURATION_NS)?;
            let status = c.text(col::STATUS)?;
            let error = c.text(col::ERROR_MESSAGE)?;
            let model = c.text(col::MODEL)?;
            let input = c.get::<Int64Array>(col::INPUT_TOKENS)?;
            let output = c.get::<Int64Array>(col::OUTPUT_TOKENS)?;
            let cost = c.get::<Float64Array>(col::COST)?;
            let message = c.text(col::LOG_MESSAGE)?;
            let action = c.text(col::PERMISSION_ACTION)?;
            let decision = c.text(col::PERMISSION_DECISION)?;
            let resource = c.text(col::PERMISSION_RESOURCE)?;
            let tenant = c.text(col::TENANT)?;
            let agent = c.text(col::AGENT)?;
            let score_value = c.get::<Float64Array>(col::SCORE_VALUE)?;
            let score_label = c.text(col::SCORE_LABEL)?;
            let score_comment = c.text(col::SCORE_COMMENT)?;
            let score_source = c.text(col::SCORE_SOURCE)?;
            for row in 0..batch.num_rows() {
                count += 1;
                let span_id = span.is_valid(row).then(|| span.value(row));
                let kind_name = kind.value(row).unwrap_or("").to_owned();
                if duration.is_valid(row) {
                    let node = SpanNode {
                        span_id: format!("{:016x}", span_id.unwrap_or(0)),
                        name: name.value(row).unwrap_or("").to_owned(),
                        kind: kind_name,
                        start_ns: time.value(row),
                        duration_ns: duration.value(row),
                        status: status.value(row).unwrap_or("unset").to_owned(),
                        error_message: error.value(row).map(str::to_owned),
                        model: model.value(row).map(str::to_owned),
                        input_tokens: opt_i64(input, row),
                        output_tokens: opt_i64(output, row),
                        cost_usd: opt_f64(cost, row),
                        children: Vec::new(),
                        events: Vec::new(),
                    };
                    let parent_id = parent.is_valid(row).then(|| parent.value(row));
                    nodes.push((parent_id, span_id.unwrap_or(0), node));
                } else {
                    let text = match kind_name.as_str() {
                        "log" => message.value(row).unwrap_or("").to_owned(),
                        "permission" => format!(
                            "{} {} {}",
                            decision.value(row).unwrap_or(""),
                            action.value(row).unwrap_or(""),
                            resource.value(row).unwrap_or("")
                        ),
                        "score" => {
                            let value = opt_f64(score_value, row).unwrap_or(f64::NAN);
                            let label = score_label.value(row);
                            scores.push(crate::ScoreRow {
                                time_ns: time.value(row),
                                tenant: tenant.value(row).unwrap_or("").to_owned(),
                                agent: agent.value(row).unwrap_or("").to_owned(),
                                thread_id: Some(thread_id.to_owned()),
                                span_id: span_id.map(|s| format!("{s:016x}")),
                                name: name.value(row).unwrap_or("").to_owned(),
                                value,
                                label: label.map(str::to_owned),
                                comment: score_comment.value(row).map(str::to_owned),
                                source: score_source.value(row).unwrap_or("").to_owned(),
                            });
                            match label {
                                Some(l) => {
                                    format!("{} = {value} ({l})", name.value(row).unwrap_or(""))
                                }
                                None => format!("{} = {value}", name.value(row).unwrap_or("")),
                            }
                        }
                        _ => name.value(row).unwrap_or("").to_owned(),
                    };
                    others.push((span_id, (time.value(row), kind_name, text)));
                }
            }
        }
        nodes.sort_by_key(|(_, _, n)| n.start_ns);
        others.sort_by_key(|(_, e)| e.0);
        let ids: HashMap<u64, usize> =
            nodes.iter().enumerate().map(|(i, (_, id, _))| (*id, i)).collect();
        let mut loose = Vec::new();
        for (span_id, event) in others {
            match span_id.and_then(|id| ids.get(&id)) {
                Some(&i) => nodes[i].2.events.push(event),
                None => loose.push(event),
            }
        }
        // Attach children to parents, deepest first (children start after their parents).
        let parent_index: Vec<Option<usize>> =
            nodes.iter().map(|(p, _, _)| p.and_then(|p| ids.get(&p).copied())).collect();
        let mut slots: Vec<Option<SpanNode>> = nodes.into_iter().map(|(_, _, n)| Some(n)).collect();
        for i in (0..slots.len()).rev() {
            if let Some(p) = parent_index[i].filter(|&p| p != i)
                && let Some(child) = slots[i].take()
            {
                if let Some(parent) = slots[p].as_mut() {
                    parent.children.insert(0, child);
                } else {
                    slots[i] = Some(child);
                }
            }
        }
        Ok(ThreadView {
            thread_id: thread_id.to_owned(),
            roots: slots.into_iter().flatten().collect(),
            loose_events: loose,
            event_count: count,
            scores: {
                scores.sort_by_key(|s: &crate::ScoreRow| s.time_ns);
                scores
            },
        })
    }

    /// One summary row per thread among the events `query` selects, newest first.
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn threads(&self, query: Query<'_>) -> Result<Vec<ThreadSummary>> {
        let iter = query
            .columns(&[
                col::TIME,
                col::AGENT,
                col::THREAD_ID,
                col::DURATION_NS,
                col::STATUS,
                col::KIND,
                col::INPUT_TOKENS,
                col::OUTPUT_TOKENS,
                col::COST,
            ])
            .iter()?;
        let mut threads: HashMap<String, (ThreadSummary, i64)> = HashMap::new();
        for batch in iter {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let time = c.get::<TimestampNanosecondArray>(col::TIME)?;
            let agent = c.text(col::AGENT)?;
            let thread = c.get::<StringArray>(col::THREAD_ID)?;
            let tenant = c.get::<StringArray>(col::TENANT)?;
            let duration = c.get::<Int64Array>(col::DURATION_NS)?;
            let status = c.text(col::STATUS)?;
            let kind = c.text(col::KIND)?;
            let input = c.get::<Int64Array>(col::INPUT_TOKENS)?;
            let output = c.get::<Int64Array>(col::OUTPUT_TOKENS)?;
            let cost = c.get::<Float64Array>(col::COST)?;
            for row in 0..batch.num_rows() {
                if !thread.is_valid(row) {
                    continue;
                }
                let start = time.value(row);
                let end = start + opt_i64(duration, row).unwrap_or(0);
                let (s, last_end) =
                    threads.entry(thread.value(row).to_owned()).or_insert_with(|| {
                        (
                            ThreadSummary {
                                thread_id: thread.value(row).to_owned(),
                                tenant: tenant.value(row).to_owned(),
                                agent: agent.value(row).unwrap_or("").to_owned(),
                                start_ns: start,
                                ..ThreadSummary::default()
                            },
                            end,
                        )
                    });
                s.start_ns = s.start_ns.min(start);
                *last_end = (*last_end).max(end);
                if duration.is_valid(row) {
                    s.spans += 1;
                    if status.value(row) == Some("error") {
                        s.errors += 1;
                    }
                }
                if kind.value(row) == Some("llm_call") {
                    s.llm_calls += 1;
                }
                s.input_tokens += opt_i64(input, row).unwrap_or(0);
                s.output_tokens += opt_i64(output, row).unwrap_or(0);
                s.cost_usd += opt_f64(cost, row).unwrap_or(0.0);
            }
        }
        let mut out: Vec<ThreadSummary> = threads
            .into_values()
            .map(|(mut s, end)| {
                s.duration_ns = end - s.start_ns;
                s
            })
            .collect();
        out.sort_by(|a, b| b.start_ns.cmp(&a.start_ns).then(a.thread_id.cmp(&b.thread_id)));
        Ok(out)
    }

    /// Latency percentiles, error rate, throughput, tokens and cost of the spans `query` selects
    /// (give it a [`time_range`](Query::time_range): throughput is per second of that window),
    /// grouped by `group_by` (by operation when empty).
    ///
    /// # Errors
    /// As [`Query::batches`].
    pub fn operation_stats(
        &self,
        query: Query<'_>,
        group_by: &[GroupBy],
    ) -> Result<Vec<OperationStat>> {
        let group_by = if group_by.is_empty() { &[GroupBy::Operation][..] } else { group_by };
        let users = self.users_if(group_by, &query)?;
        let window = query.window();
        let iter = query
            .columns(&[
                col::TIME,
                col::NAME,
                col::AGENT,
                col::MODEL,
                col::THREAD_ID,
                col::DURATION_NS,
                col::STATUS,
                col::INPUT_TOKENS,
                col::OUTPUT_TOKENS,
                col::COST,
            ])
            .iter()?;
        struct Acc {
            histogram: Histogram<u64>,
            errors: u64,
            tokens: i64,
            cost: f64,
        }
        let mut groups: HashMap<Vec<String>, Acc> = HashMap::new();
        let mut seen = (i64::MAX, i64::MIN);
        for batch in iter {
            let batch = batch?;
            let c = Columns { batch: &batch };
            let time = c.get::<TimestampNanosecondArray>(col::TIME)?;
            let duration = c.get::<Int64Array>(col::DURATION_NS)?;
            let status = c.text(col::STATUS)?;
            let input = c.get::<Int64Array>(col::INPUT_TOKENS)?;
            let output = c.get::<Int64Array>(col::OUTPUT_TOKENS)?;
            let cost = c.get::<Float64Array>(col::COST)?;
            let keys = GroupKeys::new(&c, &users)?;
            for row in 0..batch.num_rows() {
                if !duration.is_valid(row) {
                    continue;
                }
                seen.0 = seen.0.min(time.value(row));
                seen.1 = seen.1.max(time.value(row));
                let key = keys.key(group_by, row);
                let acc = groups.entry(key).or_insert_with(|| Acc {
                    histogram: Histogram::new(3).unwrap_or_else(|_| {
                        Histogram::new(2).expect("2 significant figures are valid")
                    }),
                    errors: 0,
                    tokens: 0,
                    cost: 0.0,
                });
                let _ = acc.histogram.record(duration.value(row).max(1) as u64);
                acc.errors += u64::from(status.value(row) == Some("error"));
                acc.tokens += opt_i64(input, row).unwrap_or(0) + opt_i64(output, row).unwrap_or(0);
                acc.cost += opt_f64(cost, row).unwrap_or(0.0);
            }
        }
        let (from, to) = match window {
            (Some(from), Some(to)) => (from, to),
            (from, to) => (from.unwrap_or(seen.0), to.unwrap_or(seen.1)),
        };
        let seconds = (to.saturating_sub(from) as f64 / 1e9).max(1e-9);
        let mut out: Vec<OperationStat> = groups
            .into_iter()
            .map(|(group, a)| OperationStat {
                group,
                count: a.histogram.len(),
                errors: a.errors,
                error_rate: a.errors as f64 / a.histogram.len().max(1) as f64,
                p50_ns: a.histogram.value_at_quantile(0.5),
                p95_ns: a.histogram.value_at_quantile(0.95),
                p99_ns: a.histogram.value_at_quantile(0.99),
                max_ns: a.histogram.max(),
                per_second: a.histogram.len() as f64 / seconds,
                tokens: a.tokens,
                cost_usd: a.cost,
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }
}
