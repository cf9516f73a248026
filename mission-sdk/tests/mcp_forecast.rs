//! The MCP `forecast` tool (feature `models`) with the official Rust MCP client over a real
//! store: two hours of planted `chat` calls whose p95 on claude-sonnet-4 rises by 20 ms a
//! minute (3.4 s now) are forecast to cross 4 s in about 30 minutes; gpt-4.1's flat p95 is not
//! expected to cross within the horizon; bad arguments are tool errors that say what to pass.
//! (That a tenant's forecast reads only its tenant's spans is in `tenant_isolation.rs`.)

use mission_sdk::core::{LlmUsage, Symbol, ThreadContext, ThreadId, Timestamp};
use mission_sdk::mcp::MissionMcp;
use mission_sdk::{MissionControl, SpanKind};
use serde_json::{Value, json};

#[path = "support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;
#[path = "support/mcp_duplex.rs"]
mod mcp_duplex;
use mcp_duplex::{args, connect, structured, text};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
const HISTORY_MINUTES: u64 = 120;

/// The p95 (ms) of claude-sonnet-4's `chat` calls `m` minutes into the history: 1 s two hours
/// ago, 3.4 s now, so 4 s in 30 minutes if the rise goes on.
fn rising(m: u64) -> f64 {
    1000.0 + 20.0 * m as f64
}

/// gpt-4.1's: about 2 s, wobbling by up to 10 %.
fn flat(m: u64) -> f64 {
    2000.0 * [1.0, 1.1, 0.95, 0.9, 1.05][(m % 5) as usize]
}

/// A store with the last two hours of `chat` calls of both models: ten a minute each, every
/// duration within 2 % below the minute's p95, 100 input and 20 output tokens, $0.001.
fn planted(dir: &TempDir) {
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&dir.0)
        .with_tenant("acme")
        .without_models()
        .build()
        .expect("build");
    let recorder = control.recorder();
    let ctx = ThreadContext {
        tenant: Symbol::intern("acme"),
        agent: Symbol::intern("support-bot"),
        thread_id: ThreadId::generate(),
    };
    let start = Timestamp::now().0 - HISTORY_MINUTES * MINUTE;
    for m in 0..HISTORY_MINUTES {
        for (model, p95) in [("claude-sonnet-4", rising(m)), ("gpt-4.1", flat(m))] {
            for j in 0..10u64 {
                let begin = start + m * MINUTE + j * 6 * SECOND;
                let took = p95 * (0.98 + 0.02 * j as f64 / 9.0);
                let mut span = recorder.start_span_at(
                    &ctx,
                    SpanKind::LlmCall,
                    Symbol::intern("chat"),
                    None,
                    Timestamp(begin),
                );
                span.set_llm_usage(LlmUsage {
                    model: Symbol::intern(model),
                    provider: Symbol::intern("test"),
                    input_tokens: 100,
                    output_tokens: 20,
                    cost_usd: 0.001,
                    ..LlmUsage::default()
                });
                span.end_at(Timestamp(begin + (took * 1e6) as u64));
            }
        }
        if m % 20 == 0 {
            control.flush().expect("flush");
        }
    }
    let report = control.shutdown();
    assert_eq!(report.accounting.dropped, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rising_p95_is_forecast_to_cross_and_a_flat_one_is_not() {
    let dir = TempDir::new("mcp-forecast");
    planted(&dir);
    let client = connect(MissionMcp::new(&dir.0)).await;
    let peer = client.peer();
    let listed = peer.list_all_tools().await.expect("tools");
    assert!(listed.iter().any(|t| t.name == "forecast"), "forecast is listed over a store");
    let forecast = |v: Value| {
        let mut p = args(v);
        p.name = "forecast".into();
        peer.call_tool(p)
    };
    let ask = |model: &str| {
        json!({"operation": "chat", "model": model, "statistic": "p95", "threshold": "4s",
               "horizon": "1h", "since_minutes": HISTORY_MINUTES})
    };

    let rising = forecast(ask("claude-sonnet-4")).await.expect("an answer");
    assert_ne!(rising.is_error, Some(true), "{rising:?}");
    let a = structured(&rising);
    assert_eq!(a["status"], "crossing", "{a}");
    assert_eq!(a["direction"], "up", "{a}");
    assert_eq!((a["unit"].as_str(), a["threshold"].as_f64()), (Some("ms"), Some(4000.0)));
    assert_eq!(a["buckets_with_data"], 60, "{a}");
    // The first call began as the history did, a moment before the question was asked.
    let spans = a["spans"].as_u64().expect("spans");
    assert!((1190..=1200).contains(&spans), "only claude-sonnet-4's calls: {a}");
    assert_eq!(a["bucket_seconds"], 120.0, "{a}");
    let now = a["now"].as_f64().expect("now");
    assert!((3200.0..3600.0).contains(&now), "now {now} ms: {a}");
    // The line reaches 4 s in 30 minutes; the buckets' p95 are read from a histogram kept to
    // within ~3 %, and the model learns the trend from noisy steps: 30 ± 12 minutes.
    let crossing = &a["crossing"];
    let minutes = crossing["minutes"].as_f64().expect("minutes");
    assert!((18.0..=42.0).contains(&minutes), "crossing in {minutes} min: {a}");
    let earliest = crossing["earliest_minutes"].as_f64().expect("earliest");
    assert!(earliest <= minutes, "{crossing}");
    if let Some(latest) = crossing["latest_minutes"].as_f64() {
        assert!(latest >= minutes, "{crossing}");
    }
    let band = a["forecast"].as_array().expect("band");
    assert_eq!(band.len(), 30, "a point per 2-minute bucket of the hour: {a}");
    assert!(
        band.iter().all(|f| f["lower"].as_f64() <= f["mean"].as_f64()
            && f["mean"].as_f64() <= f["upper"].as_f64())
    );
    assert!(band[29]["mean"].as_f64().expect("mean") > 4000.0, "{a}");
    let words = text(&rising);
    assert!(
        words.starts_with("p95 of `chat` on claude-sonnet-4 crosses 4 s in about ")
            && words.contains("(80 % interval ")
            && words.contains("; now 3."),
        "{words}"
    );

    let steady = forecast(ask("gpt-4.1")).await.expect("an answer");
    let a = structured(&steady);
    assert_eq!(a["status"], "not_expected", "{a}");
    assert!(a.get("crossing").is_none(), "{a}");
    let now = a["now"].as_f64().expect("now");
    assert!((1700.0..2300.0).contains(&now), "{a}");
    let words = text(&steady);
    assert!(
        words.starts_with("p95 of `chat` on gpt-4.1 is not expected to cross 4 s within 60 min"),
        "{words}"
    );

    // Rates: 10 calls a minute of each model, 120 tokens and $0.001 each.
    let cost = forecast(json!({"operation": "chat", "statistic": "cost", "threshold": "$5",
                               "since_minutes": HISTORY_MINUTES}))
    .await
    .expect("an answer");
    let a = structured(&cost);
    assert_eq!((a["status"].as_str(), a["unit"].as_str()), (Some("not_expected"), Some("usd/h")));
    let per_hour = a["now"].as_f64().expect("now");
    // 20 calls a minute at $0.001, but the history starts a moment after the first call (the
    // question comes after the planting): a call or two fewer in the last bucket.
    assert!((per_hour - 1.2).abs() < 0.1, "{a}");
    let tokens = forecast(json!({"operation": "chat", "statistic": "tokens_per_minute",
                                 "threshold": 1000, "horizon": "30m",
                                 "since_minutes": HISTORY_MINUTES}))
    .await
    .expect("an answer");
    let a = structured(&tokens);
    assert_eq!(a["direction"], "down", "2400 tokens a minute now, asked about 1000: {a}");
    assert!((a["now"].as_f64().expect("now") - 2400.0).abs() < 200.0, "{a}");

    // Nothing to learn from.
    let none = forecast(json!({"operation": "embed", "threshold": "1s"})).await.expect("answer");
    let a = structured(&none);
    assert_eq!((a["status"].as_str(), a["spans"].as_u64()), (Some("insufficient_data"), Some(0)));
    assert!(text(&none).starts_with("Not enough data to forecast p95 of `embed`"), "{a}");

    // Bad arguments: a tool result with isError that says what to pass.
    for (bad, says) in [
        (json!({"operation": "chat", "threshold": "soon"}), "threshold \"soon\" is not a duration"),
        (json!({"operation": "chat", "threshold": -4}), "threshold \"-4\" is not a duration"),
        (json!({"operation": "chat", "threshold": "4s", "horizon": "8d"}), "horizon \"8d\""),
        (json!({"operation": "chat", "threshold": "4s", "horizon": "30s"}), "from 1m to 7d"),
        (json!({"operation": "chat", "threshold": "4s", "since_minutes": 5}), "since_minutes"),
        (json!({"operation": " ", "threshold": "4s"}), "operation must name"),
        (json!({"operation": "chat", "threshold": "4s", "attribute": "tier"}), "key=value"),
        (json!({"operation": "chat", "threshold": "x", "statistic": "cost"}), "US dollars"),
        (json!({"operation": "chat", "threshold": "4s", "statistic": "p97"}), "p97"),
        (json!({"operation": "chat"}), "threshold"),
    ] {
        let r = forecast(bad.clone()).await.expect("a tool result");
        assert_eq!(r.is_error, Some(true), "{bad}: {r:?}");
        assert!(text(&r).contains(says), "{bad}: {}", text(&r));
    }
    let _ = client.cancel().await;
}
