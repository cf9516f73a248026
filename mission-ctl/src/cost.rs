//! `mission-ctl cost`: tokens and cost per group of LLM calls over a window.

use std::io::Write;

use mission_store::{CostRow, GroupBy, Store};

use crate::{Error, Window, group_name, write_table};

/// `mission-ctl cost`: tokens and cost of the LLM calls in `window`, of one tenant or all,
/// grouped by `group_by` (by model when empty), most expensive first, with a total row (as a
/// JSON array of rows, without the total, when `json`).
///
/// ```
/// use std::time::Duration;
/// use mission_ctl::{Window, run_cost};
/// let root = std::env::temp_dir().join(format!("mission-ctl-cost-doc-{}", std::process::id()));
/// let store = mission_store::Store::open(&root)?; // an empty store is fine
/// let mut out = Vec::new();
/// run_cost(&store, Window::last(Duration::from_secs(3600)), None, &[], true, &mut out)?;
/// assert_eq!(String::from_utf8(out)?, "[]\n");
/// # Ok::<(), mission_ctl::Error>(())
/// ```
///
/// # Errors
/// Unreadable files, or a failed write.
pub fn run_cost(
    store: &Store,
    window: Window,
    tenant: Option<&str>,
    group_by: &[GroupBy],
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let group_by = if group_by.is_empty() { &[GroupBy::Model][..] } else { group_by };
    let rows = store.cost_report(window.query(store, tenant), group_by)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    let mut header: Vec<String> = group_by.iter().map(|g| group_name(*g).to_owned()).collect();
    header.extend(
        ["llm calls", "threads", "input tokens", "cached", "output tokens", "cost $"]
            .map(String::from),
    );
    let line = |group: Vec<String>, r: &CostRow, threads: String| {
        let mut row = group;
        row.extend([
            r.llm_calls.to_string(),
            threads,
            r.input_tokens.to_string(),
            r.cached_input_tokens.to_string(),
            r.output_tokens.to_string(),
            format!("{:.6}", r.cost_usd),
        ]);
        row
    };
    let mut table: Vec<Vec<String>> =
        rows.iter().map(|r| line(r.group.clone(), r, r.threads.to_string())).collect();
    let total = rows.iter().fold(CostRow::default(), |mut t, r| {
        t.llm_calls += r.llm_calls;
        t.threads += r.threads;
        t.input_tokens += r.input_tokens;
        t.cached_input_tokens += r.cached_input_tokens;
        t.output_tokens += r.output_tokens;
        t.cost_usd += r.cost_usd;
        t
    });
    // A thread has one agent, tenant and user but may call several models (or operations):
    // then the threads of the groups overlap and their sum is not the number of threads.
    let threads_add_up = !group_by.iter().any(|g| matches!(g, GroupBy::Model | GroupBy::Operation));
    let mut label = vec![String::new(); group_by.len()];
    label[0] = "total".into();
    table.push(line(
        label,
        &total,
        if threads_add_up { total.threads.to_string() } else { String::new() },
    ));
    write_table(out, &header, &table)?;
    Ok(())
}
