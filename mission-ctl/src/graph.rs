//! `mission-ctl graph`: the relationship graph of a window (agents, tools, models, MCP servers,
//! directives, rules) as a table of edges, JSON (the dashboard's `/api/graph`) or Graphviz DOT.

use std::io::Write;

use mission_sdk::graph::{Graph, GraphBuilder, MAX_NODES};
use mission_store::Store;

use crate::{Error, Window, invalid, write_table};

/// How `mission-ctl graph` prints the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    /// One row per edge, busiest first.
    Table,
    /// The JSON of the dashboard's `GET /api/graph`.
    Json,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// The relationship graph of `store` over `window`, with the `limit` busiest nodes.
///
/// # Errors
/// A `limit` out of 1–10000, unreadable files.
pub fn graph(store: &Store, window: Window, limit: usize) -> Result<(Graph, Vec<String>), Error> {
    if !(1..=MAX_NODES).contains(&limit) {
        return Err(invalid("--limit", format!("must be from 1 to {MAX_NODES}, not {limit}")));
    }
    let mut builder = GraphBuilder::new();
    let unreadable = builder.add_store(store, window.from, window.to)?;
    Ok((builder.finish(limit), unreadable))
}

/// A DOT string literal.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` quoted for DOT without its closing quote, so more can follow inside the string.
fn open_quoted(text: &str) -> String {
    let mut quoted = dot_str(text);
    quoted.pop();
    quoted
}

/// `mission-ctl graph`: prints the graph of `store` over `window` as `format`.
///
/// ```
/// use std::time::Duration;
/// use mission_ctl::{GraphFormat, Window, run_graph};
/// let root = std::env::temp_dir().join(format!("mission-ctl-graph-doc-{}", std::process::id()));
/// let store = mission_store::Store::open(&root)?; // an empty store is fine
/// let mut out = Vec::new();
/// run_graph(&store, Window::last(Duration::from_secs(3600)), 100, GraphFormat::Dot, &mut out)?;
/// assert!(String::from_utf8(out)?.starts_with("digraph mission {"));
/// # Ok::<(), mission_ctl::Error>(())
/// ```
///
/// # Errors
/// As [`graph`], or a failed write.
pub fn run_graph(
    store: &Store,
    window: Window,
    limit: usize,
    format: GraphFormat,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let (graph, unreadable) = graph(store, window, limit)?;
    match format {
        GraphFormat::Json => {
            let mut value = serde_json::to_value(&graph)?;
            if let Some(object) = value.as_object_mut() {
                let ms = |t: mission_core::Timestamp| t.0 / 1_000_000;
                object.insert("minutes".into(), (window.length().as_secs() / 60).into());
                object.insert("limit".into(), limit.into());
                object.insert("from_ms".into(), ms(window.from).into());
                object.insert("to_ms".into(), ms(window.to).into());
                object.insert("unreadable".into(), unreadable.into());
            }
            writeln!(out, "{value}")?;
        }
        GraphFormat::Dot => {
            writeln!(out, "digraph mission {{")?;
            writeln!(out, "  rankdir=LR;")?;
            for n in &graph.nodes {
                let shape = match n.kind.as_str() {
                    "agent" => "box",
                    "tool" => "ellipse",
                    "model" => "hexagon",
                    "mcp_server" => "component",
                    "directive" => "diamond",
                    "rule" => "octagon",
                    _ => "cylinder",
                };
                // The label has two lines: the name, then the kind (DOT's `\n` escape).
                writeln!(
                    out,
                    "  {} [label={}\\n{}, shape={shape}];",
                    dot_str(&n.id),
                    open_quoted(&n.name),
                    &dot_str(&n.kind)[1..]
                )?;
            }
            for e in &graph.edges {
                let mut label = format!("{} {}", e.kind, e.calls);
                if e.errors > 0 {
                    label.push_str(&format!(" ({} err)", e.errors));
                }
                if !e.label.is_empty() {
                    label = format!("{} ({})", e.label, e.kind);
                }
                writeln!(
                    out,
                    "  {} -> {} [label={}];",
                    dot_str(&e.from),
                    dot_str(&e.to),
                    dot_str(&label)
                )?;
            }
            if graph.truncated {
                writeln!(
                    out,
                    "  // truncated: {} nodes and {} edges cut",
                    graph.nodes_cut, graph.edges_cut
                )?;
            }
            writeln!(out, "}}")?;
        }
        GraphFormat::Table => {
            let header: Vec<String> = ["from", "kind", "to", "calls", "errors", "cost $", "p95 ms"]
                .map(String::from)
                .to_vec();
            let rows: Vec<Vec<String>> = graph
                .edges
                .iter()
                .map(|e| {
                    let kind = if e.label.is_empty() {
                        e.kind.clone()
                    } else {
                        format!("{} ({})", e.kind, e.label)
                    };
                    vec![
                        e.from.clone(),
                        kind,
                        e.to.clone(),
                        e.calls.to_string(),
                        e.errors.to_string(),
                        format!("{:.6}", e.cost_usd),
                        e.p95_ms.map_or_else(|| "-".into(), |p| format!("{p:.1}")),
                    ]
                })
                .collect();
            write_table(out, &header, &rows)?;
            writeln!(out, "{} nodes, {} edges", graph.nodes.len(), graph.edges.len())?;
            if graph.truncated {
                writeln!(
                    out,
                    "truncated: {} nodes and {} edges cut (raise --limit, up to {MAX_NODES})",
                    graph.nodes_cut, graph.edges_cut
                )?;
            }
        }
    }
    Ok(())
}
