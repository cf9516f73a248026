//! Recording through the SDK's guards allocates nothing once names were seen: checked with a
//! counting global allocator (its own test binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mission_sdk::MissionControl;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls made on the current thread.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn guards_allocate_nothing_once_warm() {
    let control =
        // The allocator counts every thread: the models' worker (which allocates by design,
        // off the agent's threads) is left out.
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
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..1_000 {
        record();
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "the SDK allocated {} times for 1,000 threads", after - before);
    assert_eq!(control.shutdown().accounting.recorded, 3_003);
}
