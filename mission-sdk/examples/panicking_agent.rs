//! An agent that records, then panics without ever dropping its `MissionControl` (it is leaked,
//! as a global would be): the panic hook must still deliver everything to the store. Used by
//! `tests/flush_on_panic.rs`.
//!
//! Run: `cargo run -p mission-sdk --example panicking_agent -- <store-dir> <threads>`.

use mission_sdk::MissionControl;

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| "./mission-data".into());
    let threads: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let control: &'static MissionControl = Box::leak(Box::new(
        // Without the models: on a loaded machine the calls' latencies vary enough for an
        // anomaly event, and the test counts exactly what the agent recorded.
        MissionControl::builder().with_store_root(&root).without_models().build().unwrap_or_else(
            |e| {
                eprintln!("error: {e}");
                std::process::exit(1)
            },
        ),
    ));
    let agent = control.agent("doomed-agent");
    for _ in 0..threads {
        let thread = agent.thread();
        thread.tool_call("work").end();
        thread.end();
    }
    panic!("the agent crashed after recording {threads} threads");
}
