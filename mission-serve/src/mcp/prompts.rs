//! Prompts: templates that gather the right tools' output for a model to reason over.

use std::fmt::Write as _;

use arrow::array::{Array, Int64Array, StringArray, TimestampNanosecondArray};
use mission_core::Timestamp;
use mission_store::OperationStat;
use mission_store::schema::col;
use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};

use super::tools::{GetThreadInput, Group, StatsInput, stats_rows, thread_page, thread_text};
use super::{Source, internal, invalid};

/// The prompts' names.
pub(crate) const NAMES: [&str; 2] = ["diagnose_thread", "why_slow"];

/// Slowest spans listed by `why_slow`.
const SLOWEST: usize = 10;

pub(crate) fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "diagnose_thread",
            Some(
                "Diagnose one agent thread: what failed first, why, where time and money went, and what to change.",
            ),
            Some(vec![
                PromptArgument::new("thread_id")
                    .with_description("The thread id (32 hex digits)")
                    .with_required(true),
            ]),
        ),
        Prompt::new(
            "why_slow",
            Some(
                "Explain why an operation (an LLM call's `chat`, or a tool's name) is slow: latency now against the window before, by model and agent, with the slowest spans.",
            ),
            Some(vec![
                PromptArgument::new("operation")
                    .with_description("The operation: `chat` for LLM calls, or a tool's name")
                    .with_required(true),
                PromptArgument::new("since_minutes")
                    .with_description("The window, ending now, in minutes (default 60)"),
            ]),
        ),
    ]
}

fn argument<'a>(arguments: Option<&'a JsonObject>, name: &str) -> Option<&'a serde_json::Value> {
    arguments.and_then(|a| a.get(name))
}

fn text_argument(arguments: Option<&JsonObject>, name: &str) -> Result<String, ErrorData> {
    match argument(arguments, name) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => {
            Err(invalid(format!("argument {name} must be a non-empty string, not {other}")))
        }
        None => Err(invalid(format!("argument {name} is required"))),
    }
}

pub(crate) fn get(
    source: &Source,
    name: &str,
    arguments: Option<&JsonObject>,
    scope: Option<&str>,
) -> Result<GetPromptResult, ErrorData> {
    match name {
        "diagnose_thread" => diagnose_thread(source, text_argument(arguments, "thread_id")?, scope),
        "why_slow" => {
            let minutes = match argument(arguments, "since_minutes") {
                None => 60,
                // Prompt arguments travel as strings; accept numbers too.
                Some(serde_json::Value::String(s)) => s.parse().map_err(|_| {
                    invalid(format!("since_minutes must be a whole number, not {s:?}"))
                })?,
                Some(serde_json::Value::Number(n)) => n.as_u64().ok_or_else(|| {
                    invalid(format!("since_minutes must be a whole number, not {n}"))
                })?,
                Some(other) => {
                    return Err(invalid(format!("since_minutes must be a number, not {other}")));
                }
            };
            if minutes == 0 || minutes > 60 * 24 * 366 {
                return Err(invalid("since_minutes must be between 1 and 527040"));
            }
            why_slow(source, text_argument(arguments, "operation")?, minutes, scope)
        }
        other => Err(invalid(format!("no prompt {other:?}: expected one of {NAMES:?}"))),
    }
}

fn diagnose_thread(
    source: &Source,
    thread_id: String,
    scope: Option<&str>,
) -> Result<GetPromptResult, ErrorData> {
    let page = thread_page(source, GetThreadInput { thread_id, limit: None, cursor: None }, scope)?;
    let text = format!(
        "You are investigating one run of an AI agent, recorded by Mission Control. Below is \
         thread {id}: its spans in tree order (indented by depth) with duration, status, model, \
         tokens, cost and error message, and the logs and permission decisions inside each span.\n\n\
         {tree}\n\n\
         Answer, citing span names:\n\
         1. Did the run fail? Which span failed first, and with what error?\n\
         2. The likely root cause: an upstream or tool failure, a permission denial, a model \
         behaviour (retries, long outputs), or the agent's own logic?\n\
         3. Where did the time go (the slowest spans) and the money (the most expensive LLM calls)?\n\
         4. One or two concrete changes that would have avoided the failure or the cost.\n\
         If the thread is longer than shown, call get_thread with the cursor; search_events with \
         this thread_id finds its logs by text.",
        id = page.thread_id,
        tree = thread_text(&page),
    );
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Diagnose thread {}", page.thread_id)))
}

fn stat_line(s: &OperationStat) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    format!(
        "{}: {} spans, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, error rate {:.1} %",
        if s.group.is_empty() { "all".to_owned() } else { s.group.join("/") },
        s.count,
        ms(s.p50_ns),
        ms(s.p95_ns),
        ms(s.p99_ns),
        ms(s.max_ns),
        s.error_rate * 100.0
    )
}

fn why_slow(
    source: &Source,
    operation: String,
    minutes: u64,
    scope: Option<&str>,
) -> Result<GetPromptResult, ErrorData> {
    let store = source.store(scope)?;
    let now = Timestamp::now().0;
    let window = minutes * 60_000_000_000;
    let (from, to) = (Timestamp(now.saturating_sub(window)), Timestamp(now + 1));
    let before = Timestamp(from.0.saturating_sub(window));
    let input = |group_by| StatsInput {
        since_minutes: None,
        group_by,
        agent: None,
        operation: Some(operation.clone()),
    };
    let current = stats_rows(&store, from, to, &input(vec![Group::Operation]))?;
    if current.is_empty() {
        return Err(invalid(format!(
            "no spans named {operation:?} in the last {minutes} minutes (operation_stats lists the operations)"
        )));
    }
    let baseline = stats_rows(&store, before, from, &input(vec![Group::Operation]))?;
    let by_model = stats_rows(&store, from, to, &input(vec![Group::Model, Group::Agent]))?;
    // The slowest spans of the window, with their threads.
    let q = store.query().name(&operation).time_range(from, to).columns(&[
        col::TIME,
        col::THREAD_ID,
        col::DURATION_NS,
        col::STATUS,
    ]);
    let mut slowest: Vec<(i64, String, String)> = Vec::new();
    for batch in q.iter().map_err(internal)? {
        let batch = batch.map_err(internal)?;
        let (Some(thread), Some(duration), Some(_time)) = (
            batch
                .column_by_name(col::THREAD_ID)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            batch
                .column_by_name(col::DURATION_NS)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
            batch
                .column_by_name(col::TIME)
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>()),
        ) else {
            continue;
        };
        let status = arrow::compute::cast(
            batch.column_by_name(col::STATUS).ok_or_else(|| internal("no status column"))?,
            &arrow::datatypes::DataType::Utf8,
        )
        .map_err(internal)?;
        let status = status.as_any().downcast_ref::<StringArray>();
        for row in 0..batch.num_rows() {
            if !duration.is_valid(row) || !thread.is_valid(row) {
                continue;
            }
            let s = status.filter(|s| s.is_valid(row)).map_or("unset", |s| s.value(row));
            slowest.push((duration.value(row), thread.value(row).to_owned(), s.to_owned()));
            if slowest.len() > 4 * SLOWEST {
                slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
                slowest.truncate(SLOWEST);
            }
        }
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    slowest.truncate(SLOWEST);
    let mut text = format!(
        "You are investigating why the operation `{operation}` of an AI agent is slow, from \
         Mission Control's records.\n\nLast {minutes} minutes: {}\n",
        current.iter().map(stat_line).collect::<Vec<_>>().join("; ")
    );
    let _ = writeln!(
        text,
        "The {minutes} minutes before (baseline): {}",
        if baseline.is_empty() {
            "no spans".to_owned()
        } else {
            baseline.iter().map(stat_line).collect::<Vec<_>>().join("; ")
        }
    );
    let _ = writeln!(text, "\nBy model / agent in the last {minutes} minutes:");
    for s in &by_model {
        let _ = writeln!(text, "- {}", stat_line(s));
    }
    let _ = writeln!(text, "\nSlowest spans (duration, thread, status):");
    for (ns, thread, status) in &slowest {
        let _ = writeln!(text, "- {:.1} ms  {thread}  {status}", *ns as f64 / 1e6);
    }
    text.push_str(
        "\nExplain: is it slower than the baseline, and is it the typical call (p50) or the tail \
         (p95/p99)? Is it concentrated on one model, agent or on failing calls (errors and \
         retries)? Call get_thread on one or two of the slowest threads to see what surrounds \
         the slow spans, then say what most likely causes the slowness and what to try first.",
    );
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Why is {operation} slow over the last {minutes} minutes?")))
}
