use std::time::Duration;

use mission_core::{Backpressure, Pipeline, StatsSink};
use mission_examples::{Workload, simulate};

#[test]
fn stats_and_accounting_match_the_simulated_workload() {
    let stats = StatsSink::new();
    let reader = stats.reader();
    let pipeline = Pipeline::builder()
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(30) })
        .with_sink(stats)
        .start()
        .expect("start");
    let summary = simulate(&pipeline.recorder(), &Workload { threads: 500, ..Workload::default() });
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.recorded, summary.events);
    assert_eq!(report.accounting.delivered, summary.events);
    assert_eq!(report.accounting.dropped, 0);

    let snapshot = reader.snapshot();
    assert_eq!(snapshot.usage.llm_calls, summary.llm_calls);
    assert_eq!(snapshot.usage.input_tokens, summary.input_tokens);
    assert_eq!(snapshot.usage.output_tokens, summary.output_tokens);
    assert!((snapshot.usage.cost_usd - summary.cost_usd).abs() < 1e-6);
    let spans: u64 = snapshot.operations.iter().map(|o| o.all_time.count).sum();
    assert_eq!(
        spans,
        summary.agent_steps + summary.llm_calls + summary.tool_calls + summary.retrievals
    );
    let errors: u64 = snapshot.operations.iter().map(|o| o.all_time.errors).sum();
    assert_eq!(errors, summary.errors);
    let count =
        |kind: &str| snapshot.events_by_kind.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
    assert_eq!(count("log"), summary.logs);
    assert_eq!(count("permission"), summary.permissions);
    assert!(summary.denials > 0 && summary.errors > 0, "the workload exercises failures");
}

#[test]
fn the_same_seed_gives_the_same_workload() {
    let run = || {
        let pipeline = Pipeline::builder().start().expect("start");
        let summary = simulate(
            &pipeline.recorder(),
            &Workload { threads: 50, seed: 7, ..Workload::default() },
        );
        drop(pipeline);
        summary
    };
    assert_eq!(run(), run());
}
