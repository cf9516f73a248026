//! The relationship graph: who calls what, built from the recorded events of a window and the
//! host's registered artefacts. One builder for the dashboard (`GET /api/graph`), the MCP tool
//! `relationship_graph` and `mission-ctl graph`, so the three answer alike.
//!
//! Nodes are named `kind:name`:
//!
//! | kind | from |
//! |---|---|
//! | `agent` | every span's agent; a handoff's target; a child thread's parent and child |
//! | `tool` | tool-call spans (their name) |
//! | `model` | LLM-call spans (their model) |
//! | `mcp_server` | a tool call's `mcp.server.name` |
//! | `directive` | a directive's alerts (`mission.alert` with `mission.directive`) |
//! | `rule` | the rule (`policy`) of a denied permission decision |
//! | anything else | artefacts the host registered ([`mission_core::artefacts`]) |
//!
//! Edges, each with `calls`, `errors`, `cost_usd` and `p95_ms` (spans only; from a log-linear
//! histogram, within about 6 %):
//!
//! | kind | from → to | counts |
//! |---|---|---|
//! | `calls_tool` | agent → tool | tool calls |
//! | `uses_model` | agent → model | LLM calls (with their cost) |
//! | `served_by` | tool → mcp_server | tool calls served by that MCP server |
//! | `child_thread` | agent → agent | child threads (`mission.thread.parent_id`) started by a thread of the parent agent |
//! | `handoff` | agent → agent | handoff spans (`openai_agents.handoff.from` / `.to`) |
//! | `denied_by` | agent → rule | permission denials |
//! | `alerted` | directive → agent | firing alerts of the directive about the agent |
//! | `relation` | any → any | relations the host registered (`label` says which) |
//!
//! Bounded: the answer keeps the `limit` (at most [`MAX_NODES`]) busiest nodes and the
//! [`MAX_EDGES`] busiest edges between them; what it cuts is counted (`nodes_cut`,
//! `edges_cut`) and `truncated` is true. While scanning, at most [`MAX_TRACKED`] nodes, edges
//! and threads are tracked; what does not fit is counted the same way.

use std::collections::HashMap;

use mission_core::Timestamp;
use mission_core::artefacts::ArtefactSnapshot;
use mission_store::schema::col;
use mission_store::{EventRow, Store};
use serde::Serialize;

use crate::histogram::Histogram;

/// Most nodes an answer holds (and the largest `limit`).
pub const MAX_NODES: usize = 10_000;
/// Most edges an answer holds.
pub const MAX_EDGES: usize = 50_000;
/// Most nodes, edges and threads tracked while scanning.
pub const MAX_TRACKED: usize = 200_000;
/// Most rows one graph reads from a store; a scan that reaches it stops, `truncated`.
pub const MAX_SCAN_ROWS: u64 = 2_000_000;

/// The store columns the builder reads.
pub const COLUMNS: &[&str] = &[
    col::TIME,
    col::KIND,
    col::TENANT,
    col::AGENT,
    col::THREAD_ID,
    col::SPAN_ID,
    col::PARENT_SPAN_ID,
    col::NAME,
    col::DURATION_NS,
    col::STATUS,
    col::MODEL,
    col::COST,
    col::PERMISSION_DECISION,
    col::PERMISSION_POLICY,
    col::ATTRIBUTES,
];

/// Attribute naming the MCP server a tool call went to.
pub use mission_govern::directives::ATTR_MCP_SERVER;
/// Attributes of a handoff span (the OpenAI Agents integration's).
pub const ATTR_HANDOFF_FROM: &str = "openai_agents.handoff.from";
/// See [`ATTR_HANDOFF_FROM`].
pub const ATTR_HANDOFF_TO: &str = "openai_agents.handoff.to";

/// One event as the builder reads it (borrowed from a store row or a live one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fact<'a> {
    /// `llm_call`, `tool_call`, …, `log`, `permission`.
    pub kind: &'a str,
    /// The agent that recorded it.
    pub agent: &'a str,
    /// Its thread (32 hex digits), if any.
    pub thread_id: Option<&'a str>,
    /// A span's parent (0: a root).
    pub parent_span_id: u64,
    /// Its name (a tool's name, a log event's name).
    pub name: &'a str,
    /// A span's duration (`None`: not a span).
    pub duration_ns: Option<i64>,
    /// Whether it is a failed span.
    pub error: bool,
    /// An LLM call's model.
    pub model: Option<&'a str>,
    /// An LLM call's cost.
    pub cost_usd: Option<f64>,
    /// A permission decision: `allow` or `deny`.
    pub decision: Option<&'a str>,
    /// A permission decision's rule.
    pub policy: Option<&'a str>,
    /// Its attributes as text.
    pub attributes: &'a [(String, String)],
}

impl<'a> Fact<'a> {
    /// The fact of a store row.
    pub fn of_row(r: &'a EventRow) -> Self {
        Self {
            kind: &r.kind,
            agent: &r.agent,
            thread_id: r.thread_id.as_deref().filter(|t| !t.is_empty()),
            parent_span_id: r.parent_span_id.unwrap_or(0),
            name: &r.name,
            duration_ns: r.duration_ns,
            error: r.duration_ns.is_some() && r.status.as_deref() == Some("error"),
            model: r.model.as_deref().filter(|m| !m.is_empty()),
            cost_usd: r.cost_usd,
            decision: r.decision.as_deref(),
            policy: r.policy.as_deref(),
            attributes: &r.attributes,
        }
    }

    fn attribute(&self, key: &str) -> Option<&'a str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// One node of the answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// `kind:name`.
    pub id: String,
    /// `agent`, `tool`, `model`, `mcp_server`, `directive`, `rule` or a registered kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Calls (or denials, alerts, child threads) on the edges it touches, counted once per edge.
    pub calls: u64,
    /// Errors on the edges it touches.
    pub errors: u64,
    /// Cost of the LLM calls on the edges it touches (US dollars).
    pub cost_usd: f64,
    /// Edges it touches (in the whole graph, before cutting).
    pub degree: u64,
    /// Whether the host registered it.
    pub registered: bool,
    /// What the host said about it (registered nodes).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One edge of the answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// The source node's id.
    pub from: String,
    /// The target node's id.
    pub to: String,
    /// `calls_tool`, `uses_model`, `served_by`, `child_thread`, `handoff`, `denied_by`,
    /// `alerted` or `relation`.
    pub kind: String,
    /// A registered relation's label (empty otherwise).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// How many times: calls, denials, alerts, child threads, handoffs (0 for a registered
    /// relation no event confirmed).
    pub calls: u64,
    /// How many of those failed.
    pub errors: u64,
    /// Their cost (US dollars).
    pub cost_usd: f64,
    /// The 95th percentile of their durations (spans only), ms.
    pub p95_ms: Option<f64>,
}

/// The graph: nodes and edges, busiest first, with what was cut.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Graph {
    /// Nodes, busiest first.
    pub nodes: Vec<Node>,
    /// Edges between kept nodes, busiest first.
    pub edges: Vec<Edge>,
    /// Nodes before cutting.
    pub nodes_total: u64,
    /// Edges before cutting.
    pub edges_total: u64,
    /// Nodes left out (over the limit, or not tracked).
    pub nodes_cut: u64,
    /// Edges left out (an end cut, over [`MAX_EDGES`], or not tracked).
    pub edges_cut: u64,
    /// Child threads whose parent thread is not in the window (no edge drawn).
    pub unresolved_links: u64,
    /// Registrations the host's registry refused (it was full).
    pub registry_refused: u64,
    /// Whether anything was cut or the scan stopped early.
    pub truncated: bool,
}

#[derive(Debug)]
struct NodeAcc {
    kind: String,
    name: String,
    registered: bool,
    attributes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct EdgeAcc {
    calls: u64,
    errors: u64,
    cost: f64,
    durations: Option<Histogram>,
}

type EdgeKey = (String, String, &'static str, String);

/// Builds a [`Graph`] from facts (see the module documentation).
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: HashMap<String, NodeAcc>,
    edges: HashMap<EdgeKey, EdgeAcc>,
    /// Each thread's agent (its root span's, else the first seen).
    thread_agent: HashMap<String, (String, bool)>,
    /// Child thread → (parent thread, child agent).
    child_links: HashMap<String, (String, String)>,
    untracked_nodes: u64,
    untracked_edges: u64,
    untracked_threads: u64,
    registry_refused: u64,
    scan_truncated: bool,
}

fn node_id(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that the scan feeding it stopped early (the answer says `truncated`).
    pub fn scan_truncated(&mut self) {
        self.scan_truncated = true;
    }

    fn node(&mut self, kind: &str, name: &str) -> Option<String> {
        let id = node_id(kind, name);
        if self.nodes.contains_key(&id) {
            return Some(id);
        }
        if self.nodes.len() >= MAX_TRACKED {
            self.untracked_nodes += 1;
            return None;
        }
        self.nodes.insert(
            id.clone(),
            NodeAcc {
                kind: kind.to_owned(),
                name: name.to_owned(),
                registered: false,
                attributes: Default::default(),
            },
        );
        Some(id)
    }

    fn edge(
        &mut self,
        from: (&str, &str),
        to: (&str, &str),
        kind: &'static str,
        label: &str,
    ) -> Option<&mut EdgeAcc> {
        let (Some(from), Some(to)) = (self.node(from.0, from.1), self.node(to.0, to.1)) else {
            self.untracked_edges += 1;
            return None;
        };
        let key = (from, to, kind, label.to_owned());
        if !self.edges.contains_key(&key) {
            if self.edges.len() >= MAX_TRACKED {
                self.untracked_edges += 1;
                return None;
            }
            self.edges.insert(key.clone(), EdgeAcc::default());
        }
        self.edges.get_mut(&key)
    }

    fn count(
        &mut self,
        from: (&str, &str),
        to: (&str, &str),
        kind: &'static str,
        fact: Option<&Fact<'_>>,
    ) {
        let Some(edge) = self.edge(from, to, kind, "") else { return };
        edge.calls += 1;
        if let Some(f) = fact {
            edge.errors += u64::from(f.error);
            edge.cost += f.cost_usd.filter(|c| c.is_finite()).unwrap_or(0.0);
            if let Some(d) = f.duration_ns {
                edge.durations.get_or_insert_with(Histogram::default).record(d);
            }
        }
    }

    /// Adds one event.
    pub fn add(&mut self, f: &Fact<'_>) {
        let agent = f.agent;
        if let Some(thread) = f.thread_id
            && !agent.is_empty()
        {
            let root = f.duration_ns.is_some() && f.parent_span_id == 0;
            let room = self.thread_agent.len() < MAX_TRACKED;
            match self.thread_agent.get_mut(thread) {
                Some(known) if root && !known.1 => *known = (agent.to_owned(), true),
                Some(_) => {}
                None if room => {
                    self.thread_agent.insert(thread.to_owned(), (agent.to_owned(), root));
                }
                None => self.untracked_threads += 1,
            }
            if let Some(parent) = f.attribute(mission_core::thread::attr::PARENT_ID)
                && parent != thread
                && !self.child_links.contains_key(thread)
            {
                if self.child_links.len() < MAX_TRACKED {
                    self.child_links
                        .insert(thread.to_owned(), (parent.to_owned(), agent.to_owned()));
                } else {
                    self.untracked_threads += 1;
                }
            }
        }
        if agent.is_empty() {
            return;
        }
        match f.kind {
            "tool_call" => {
                self.count(("agent", agent), ("tool", f.name), "calls_tool", Some(f));
                if let Some(server) = f.attribute(ATTR_MCP_SERVER) {
                    self.count(("tool", f.name), ("mcp_server", server), "served_by", Some(f));
                }
            }
            "llm_call" => {
                if let Some(model) = f.model {
                    self.count(("agent", agent), ("model", model), "uses_model", Some(f));
                } else {
                    self.node("agent", agent);
                }
            }
            "permission" if f.decision == Some("deny") => {
                let rule = f.policy.filter(|p| !p.is_empty()).unwrap_or("(no rule)");
                self.count(("agent", agent), ("rule", rule), "denied_by", None);
            }
            "log" if f.name == mission_govern::directives::ALERT_EVENT => {
                let state = f.attribute(mission_govern::directives::ATTR_ALERT_STATE);
                if let Some(directive) = f.attribute(mission_govern::directives::ATTR_DIRECTIVE)
                    && state.is_none_or(|s| s == "firing")
                {
                    self.count(("directive", directive), ("agent", agent), "alerted", None);
                }
            }
            _ if f.duration_ns.is_some() => {
                if let Some(to) = f.attribute(ATTR_HANDOFF_TO) {
                    let from = f.attribute(ATTR_HANDOFF_FROM).unwrap_or(agent);
                    self.count(("agent", from), ("agent", to), "handoff", Some(f));
                } else {
                    self.node("agent", agent);
                }
            }
            _ => {}
        }
    }

    /// Adds the host's registered artefacts and relations (already scoped).
    pub fn add_registered(&mut self, registered: &ArtefactSnapshot) {
        self.registry_refused = registered.refused;
        for a in &registered.artefacts {
            if let Some(id) = self.node(&a.kind, &a.name)
                && let Some(node) = self.nodes.get_mut(&id)
            {
                node.registered = true;
                node.attributes.clone_from(&a.attributes);
            }
        }
        for r in &registered.relations {
            let (Some(from), Some(to)) = (r.from.split_once(':'), r.to.split_once(':')) else {
                continue;
            };
            self.edge(from, to, "relation", &r.label);
        }
    }

    /// Adds every event of `store` from `from` to `to` (exclusive); stops after
    /// [`MAX_SCAN_ROWS`] rows (`truncated`). Returns the files it could not read.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn add_store(
        &mut self,
        store: &Store,
        from: Timestamp,
        to: Timestamp,
    ) -> mission_store::Result<Vec<String>> {
        let q = store.query().time_range(from, to).columns(COLUMNS);
        let mut rows = 0u64;
        for batch in q.iter()? {
            let batch = batch?;
            for row in EventRow::from_batch(&batch)? {
                rows += 1;
                if rows > MAX_SCAN_ROWS {
                    self.scan_truncated = true;
                    return Ok(store.skipped_files().iter().map(ToString::to_string).collect());
                }
                self.add(&Fact::of_row(&row));
            }
        }
        Ok(store.skipped_files().iter().map(ToString::to_string).collect())
    }

    /// The graph: the `limit` busiest nodes (at most [`MAX_NODES`]) and the busiest edges
    /// between them.
    pub fn finish(mut self, limit: usize) -> Graph {
        let limit = limit.clamp(1, MAX_NODES);
        let mut unresolved = 0u64;
        let mut links: HashMap<(String, String), u64> = HashMap::new();
        for (parent, child_agent) in std::mem::take(&mut self.child_links).into_values() {
            match self.thread_agent.get(&parent) {
                Some((parent_agent, _)) => {
                    *links.entry((parent_agent.clone(), child_agent)).or_default() += 1;
                }
                None => unresolved += 1,
            }
        }
        for ((parent, child), n) in links {
            if let Some(edge) = self.edge(("agent", &parent), ("agent", &child), "child_thread", "")
            {
                edge.calls += n;
            }
        }
        // Each node's numbers from the edges it touches.
        let mut stats: HashMap<&str, (u64, u64, f64, u64)> = HashMap::new();
        for ((from, to, _, _), e) in &self.edges {
            let ends: &[&str] = if from == to { &[from] } else { &[from, to] };
            for end in ends {
                let s = stats.entry(end).or_default();
                s.0 += e.calls;
                s.1 += e.errors;
                s.2 += e.cost;
                s.3 += 1;
            }
        }
        let mut nodes: Vec<Node> = self
            .nodes
            .iter()
            .map(|(id, n)| {
                let (calls, errors, cost_usd, degree) =
                    stats.get(id.as_str()).copied().unwrap_or_default();
                Node {
                    id: id.clone(),
                    kind: n.kind.clone(),
                    name: n.name.clone(),
                    calls,
                    errors,
                    cost_usd,
                    degree,
                    registered: n.registered,
                    attributes: n.attributes.clone(),
                }
            })
            .collect();
        nodes.sort_by(|a, b| {
            b.calls.cmp(&a.calls).then(b.degree.cmp(&a.degree)).then_with(|| a.id.cmp(&b.id))
        });
        let nodes_total = nodes.len() as u64 + self.untracked_nodes;
        let kept_nodes = nodes.len().min(limit);
        nodes.truncate(kept_nodes);
        let kept: std::collections::HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let mut edges: Vec<Edge> = self
            .edges
            .iter()
            .filter(|((from, to, _, _), _)| {
                kept.contains(from.as_str()) && kept.contains(to.as_str())
            })
            .map(|((from, to, kind, label), e)| Edge {
                from: from.clone(),
                to: to.clone(),
                kind: (*kind).to_owned(),
                label: label.clone(),
                calls: e.calls,
                errors: e.errors,
                cost_usd: e.cost,
                p95_ms: e.durations.as_ref().filter(|h| h.count() > 0).map(|h| h.quantile_ms(0.95)),
            })
            .collect();
        edges.sort_by(|a, b| {
            b.calls.cmp(&a.calls).then_with(|| {
                (&a.from, &a.to, &a.kind, &a.label).cmp(&(&b.from, &b.to, &b.kind, &b.label))
            })
        });
        edges.truncate(MAX_EDGES);
        let edges_total = self.edges.len() as u64 + self.untracked_edges;
        let nodes_cut = nodes_total - nodes.len() as u64;
        let edges_cut = edges_total - edges.len() as u64;
        Graph {
            truncated: self.scan_truncated
                || nodes_cut > 0
                || edges_cut > 0
                || self.untracked_threads > 0,
            nodes,
            edges,
            nodes_total,
            edges_total,
            nodes_cut,
            edges_cut,
            unresolved_links: unresolved,
            registry_refused: self.registry_refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mission_core::artefacts::Artefacts;

    fn span<'a>(
        kind: &'a str,
        agent: &'a str,
        thread: &'a str,
        name: &'a str,
        ms: i64,
        error: bool,
    ) -> Fact<'a> {
        Fact {
            kind,
            agent,
            thread_id: Some(thread),
            parent_span_id: 1,
            name,
            duration_ns: Some(ms * 1_000_000),
            error,
            ..Fact::default()
        }
    }

    fn edge<'g>(g: &'g Graph, from: &str, to: &str, kind: &str) -> &'g Edge {
        g.edges
            .iter()
            .find(|e| e.from == from && e.to == to && e.kind == kind)
            .unwrap_or_else(|| panic!("no edge {from} -{kind}-> {to} in {:#?}", g.edges))
    }

    #[test]
    fn a_seeded_topology_gives_its_edges_and_weights() {
        let mut b = GraphBuilder::new();
        let t1 = "0000000000000000000000000000000a";
        let t2 = "0000000000000000000000000000000b";
        // router: 10 LLM calls (1 failed) of 1..10 ms costing 0.01 each, 3 tool calls on crm.
        for i in 1..=10 {
            let mut f = span("llm_call", "router", t1, "chat", i, i == 3);
            f.model = Some("gpt-4o");
            f.cost_usd = Some(0.01);
            b.add(&f);
        }
        let mcp = vec![(ATTR_MCP_SERVER.to_owned(), "crm".to_owned())];
        for _ in 0..3 {
            b.add(&Fact {
                attributes: &mcp,
                ..span("tool_call", "router", t1, "lookup", 5, false)
            });
        }
        // The root span names t1's agent; billing's thread t2 is its child.
        b.add(&Fact { parent_span_id: 0, ..span("agent_step", "router", t1, "run", 50, false) });
        let link = vec![(mission_core::thread::attr::PARENT_ID.to_owned(), t1.to_owned())];
        b.add(&Fact {
            attributes: &link,
            parent_span_id: 0,
            ..span("agent_step", "billing", t2, "run", 20, false)
        });
        b.add(&span("tool_call", "billing", t2, "refund", 7, true));
        // Two denials, a firing and a resolved alert, a handoff.
        for _ in 0..2 {
            b.add(&Fact {
                kind: "permission",
                agent: "billing",
                decision: Some("deny"),
                policy: Some("no-refunds"),
                ..Fact::default()
            });
        }
        b.add(&Fact {
            kind: "permission",
            agent: "billing",
            decision: Some("allow"),
            ..Fact::default()
        });
        let alert =
            vec![(mission_govern::directives::ATTR_DIRECTIVE.to_owned(), "cost-guard".to_owned())];
        let mut resolved = alert.clone();
        resolved
            .push((mission_govern::directives::ATTR_ALERT_STATE.to_owned(), "resolved".to_owned()));
        for attrs in [&alert, &resolved] {
            b.add(&Fact {
                kind: "log",
                agent: "billing",
                name: mission_govern::directives::ALERT_EVENT,
                attributes: attrs,
                ..Fact::default()
            });
        }
        let handoff = vec![(ATTR_HANDOFF_TO.to_owned(), "triage".to_owned())];
        b.add(&Fact { attributes: &handoff, ..span("custom", "router", t1, "handoff", 1, false) });
        // The host's own: a datastore billing writes.
        let registry = Artefacts::default();
        registry
            .register_artefact("acme", "datastore", "ledger", &[("engine", "postgres")])
            .unwrap();
        registry.register_relation("acme", "agent:billing", "datastore:ledger", "writes").unwrap();
        b.add_registered(&registry.snapshot(Some("acme")));

        let g = b.finish(MAX_NODES);
        assert!(!g.truncated, "{g:#?}");
        let model = edge(&g, "agent:router", "model:gpt-4o", "uses_model");
        assert_eq!((model.calls, model.errors), (10, 1));
        assert!((model.cost_usd - 0.1).abs() < 1e-9);
        let p95 = model.p95_ms.expect("spans have a p95");
        assert!((p95 - 10.0).abs() / 10.0 < 0.07, "{p95}");
        assert_eq!(edge(&g, "agent:router", "tool:lookup", "calls_tool").calls, 3);
        assert_eq!(edge(&g, "tool:lookup", "mcp_server:crm", "served_by").calls, 3);
        assert_eq!(edge(&g, "agent:router", "agent:billing", "child_thread").calls, 1);
        assert_eq!(edge(&g, "agent:router", "agent:triage", "handoff").calls, 1);
        let refund = edge(&g, "agent:billing", "tool:refund", "calls_tool");
        assert_eq!((refund.calls, refund.errors), (1, 1));
        assert_eq!(edge(&g, "agent:billing", "rule:no-refunds", "denied_by").calls, 2);
        assert_eq!(edge(&g, "directive:cost-guard", "agent:billing", "alerted").calls, 1);
        let rel = edge(&g, "agent:billing", "datastore:ledger", "relation");
        assert_eq!((rel.label.as_str(), rel.calls), ("writes", 0));
        assert_eq!(g.edges.len(), 9, "{:#?}", g.edges);
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(g.nodes.len(), 10, "{ids:?}");
        let ledger = g.nodes.iter().find(|n| n.id == "datastore:ledger").expect("registered");
        assert!(ledger.registered);
        assert_eq!(ledger.attributes["engine"], "postgres");
        // The busiest first: router touches 10 + 3 + 1 + 1 calls.
        assert_eq!(g.nodes[0].id, "agent:router");
        assert_eq!(g.nodes[0].calls, 15);
        assert_eq!((g.nodes_cut, g.edges_cut, g.unresolved_links), (0, 0, 0));
    }

    #[test]
    fn the_answer_is_bounded_and_says_what_it_cut() {
        let mut b = GraphBuilder::new();
        let names: Vec<String> = (0..50).map(|i| format!("tool-{i:02}")).collect();
        for (i, name) in names.iter().enumerate() {
            for _ in 0..=i {
                b.add(&span("tool_call", "a", "00000000000000000000000000000001", name, 1, false));
            }
        }
        let g = b.finish(11);
        assert_eq!(g.nodes.len(), 11);
        assert_eq!((g.nodes_total, g.nodes_cut), (51, 40));
        assert_eq!(g.edges.len(), 10);
        assert_eq!((g.edges_total, g.edges_cut), (50, 40));
        assert!(g.truncated);
        // The busiest tools are kept.
        assert_eq!(g.edges[0].to, "tool:tool-49");
        assert_eq!(g.edges[0].calls, 50);
        let unresolved = {
            let mut b = GraphBuilder::new();
            let link = vec![(mission_core::thread::attr::PARENT_ID.to_owned(), "f".repeat(32))];
            b.add(&Fact {
                attributes: &link,
                ..span("agent_step", "c", "00000000000000000000000000000002", "run", 1, false)
            });
            b.finish(10)
        };
        assert_eq!(unresolved.unresolved_links, 1);
        assert!(unresolved.edges.is_empty());
    }
}
