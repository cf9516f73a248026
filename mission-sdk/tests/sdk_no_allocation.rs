//! Recording through the SDK's guards allocates nothing once names were seen: checked with a
//! counting global allocator (its own test binary).

use mission_sdk::MissionControl;
use mission_sdk::core::testing::{CountingAllocator, allocations};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn guards_allocate_nothing_once_warm() {
    let control =
        // The models are left out: what they derive from these spans (anomaly events) would
        // add to the exact count checked at the end.
        MissionControl::builder()
            .ignore_environment()
            .without_store()
            .without_models()
            .build()
            .expect("build");
    let agent = control.agent("support-bot");
    let record = || {
        let thread = agent.thread();
        {
            let mut call = thread.llm_call("gpt-4o-mini", "openai");
            call.record_usage(812, 64).record_cached_tokens(100);
        }
        thread.tool_call("web_search").end();
        thread.end();
    };
    record();
    let before = allocations();
    for _ in 0..1_000 {
        record();
    }
    let after = allocations();
    assert_eq!(after - before, 0, "the SDK allocated {} times for 1,000 threads", after - before);
    assert_eq!(control.shutdown().accounting.recorded, 3_003);
}
