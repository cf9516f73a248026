//! Writes a store with the simulated workload and prints, as JSON, what was recorded: the
//! fixture the Python tests read with pyarrow, DuckDB and Polars.
//!
//! Run: `cargo run -p mission-examples --example store_fixture -- <store-dir> [threads] [hours]`
//! (`hours`: the simulated time the threads start in, ending ten minutes ago; 1 by default).
//! `--advice` also plants the recommendations' and the audit browser's data in `tenant-0`
//! (`mission_examples::advice`): the printed counts are the simulated workload's (its threads are
//! listed under `threads` too).

use std::time::Duration;

use mission_core::{Backpressure, Pipeline};
use mission_examples::{Workload, simulate};
use mission_store::{ParquetSink, Store, StoreConfig};

fn main() {
    let advice = std::env::args().any(|a| a == "--advice");
    let mut args = std::env::args().skip(1).filter(|a| a != "--advice");
    let Some(root) = args.next() else {
        eprintln!("usage: store_fixture <store-dir> [threads] [hours]");
        std::process::exit(2);
    };
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(300);
    let hours: u64 = args.next().and_then(|h| h.parse().ok()).unwrap_or(1);
    let run = || -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        // Small row groups, so readers meet several row groups and files.
        let config = StoreConfig::at(&root).with_row_group_rows(1_000);
        let pipeline = Pipeline::builder()
            .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
            .with_sink(ParquetSink::new(config)?)
            .start()?;
        let workload = Workload {
            threads,
            tenants: 2,
            span_of_time_ns: hours * 3_600 * 1_000_000_000,
            ..Workload::default()
        };
        let summary = simulate(&pipeline.recorder(), &workload);
        if advice {
            mission_examples::advice::plant_advice(&pipeline.recorder(), "tenant-0");
            mission_examples::advice::plant_audit(std::path::Path::new(&root), "tenant-0")?;
        }
        let report = pipeline.shutdown();
        let store = Store::open(&root)?;
        let per_thread: serde_json::Map<String, serde_json::Value> = store
            .threads(store.query())?
            .into_iter()
            .map(|t| {
                let value = serde_json::json!({
                    "tenant": t.tenant, "agent": t.agent, "spans": t.spans, "llm_calls": t.llm_calls,
                    "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
                    "cost_usd": t.cost_usd, "errors": t.errors,
                });
                (t.thread_id, value)
            })
            .collect();
        Ok(serde_json::json!({
            "events": summary.events,
            "delivered": report.accounting.delivered,
            "agent_steps": summary.agent_steps,
            "llm_calls": summary.llm_calls,
            "tool_calls": summary.tool_calls,
            "retrievals": summary.retrievals,
            "logs": summary.logs,
            "permissions": summary.permissions,
            "denials": summary.denials,
            "errors": summary.errors,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cost_usd": summary.cost_usd,
            "files": store.files().len(),
            "threads": per_thread,
        }))
    };
    match run() {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
