//! Attribution finds a planted cause.

use mission_ml::attribution::{Observation, attribute};

/// Latency of LLM calls over three models, two agents and two tenants; in the anomalous window
/// one model's latency triples.
fn window(tripled: Option<&str>, seed: u64) -> Vec<Observation> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let models = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"];
    (0..3000)
        .map(|i| {
            let model = models[i % 3];
            let agent = if next() < 0.5 { "support-bot" } else { "research-agent" };
            let tenant = if next() < 0.7 { "acme" } else { "globex" };
            let base = match model {
                "gpt-4o" => 1.6,
                "claude-3-5-haiku" => 1.1,
                _ => 0.9,
            };
            let latency =
                base * (0.8 + 0.4 * next()) * if Some(model) == tripled { 3.0 } else { 1.0 };
            Observation::new(
                vec![
                    ("model".into(), model.into()),
                    ("agent".into(), agent.into()),
                    ("tenant".into(), tenant.into()),
                ],
                latency,
            )
        })
        .collect()
}

#[test]
fn a_tripled_model_latency_is_the_top_cause() {
    let causes = attribute(&window(None, 1), &window(Some("claude-3-5-haiku"), 2), 5);
    let top = &causes[0];
    assert_eq!(
        (top.dimension.as_str(), top.value.as_str()),
        ("model", "claude-3-5-haiku"),
        "{causes:#?}"
    );
    assert!(top.contribution > 0.9, "{causes:#?}");
    assert!((top.lift - 3.0).abs() < 0.2, "{causes:#?}");
    assert!((top.support - 1.0 / 3.0).abs() < 0.01);
    // The agents and tenants share the change in proportion to their traffic: none stands out.
    for c in causes.iter().filter(|c| c.dimension != "model") {
        assert!(c.lift < 1.9 && c.lift > 1.3, "{c:?}");
    }
}

#[test]
fn no_change_and_empty_windows_give_no_blame() {
    assert!(attribute(&[], &window(None, 3), 5).is_empty());
    let same = attribute(&window(None, 4), &window(None, 4), 5);
    assert!(same.iter().all(|c| c.contribution == 0.0 || c.contribution.is_finite()));
    let nan = vec![Observation::new(vec![("model".into(), "x".into())], f64::NAN)];
    assert!(attribute(&nan, &nan, 5).is_empty());
}

#[test]
fn a_value_every_observation_has_is_not_a_cause() {
    let row = |model: &str, v: f64| {
        Observation::new(vec![("status".into(), "ok".into()), ("model".into(), model.into())], v)
    };
    let baseline: Vec<_> = (0..100).map(|i| row(if i % 2 == 0 { "a" } else { "b" }, 1.0)).collect();
    let anomalous: Vec<_> = (0..100)
        .map(|i| row(if i % 2 == 0 { "a" } else { "b" }, if i % 2 == 0 { 4.0 } else { 1.0 }))
        .collect();
    let causes = attribute(&baseline, &anomalous, 5);
    assert!(causes.iter().all(|c| c.dimension != "status"), "{causes:#?}");
    assert_eq!((causes[0].dimension.as_str(), causes[0].value.as_str()), ("model", "a"));
}

/// Calls of one stream: `status` is `unset` on nine in ten, `error` on the rest; `provider` is
/// the same everywhere. `slow` multiplies every latency (a uniform slowdown).
fn stream(slow: f64, seed: u64) -> Vec<Observation> {
    (0..1000u64)
        .map(|i| {
            let jitter = ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 100) as f64 / 100.0;
            let status = if i % 10 == 0 { "error" } else { "unset" };
            Observation::new(
                vec![("status".into(), status.into()), ("provider".into(), "openai".into())],
                slow * (1.0 + jitter),
            )
        })
        .collect()
}

#[test]
fn a_uniform_slowdown_names_no_single_cause() {
    // Everything three times slower: `status=unset` carries nine tenths of the change by being
    // nine tenths of the calls, and `provider=openai` is constant; neither is a cause.
    let causes = attribute(&stream(1.0, 1), &stream(3.0, 2), 3);
    assert!(causes.is_empty(), "{causes:#?}");
}

#[test]
fn status_is_named_when_it_is_what_changed() {
    // Errors become slow (time-outs): the error calls carry the change.
    let baseline = stream(1.0, 1);
    let anomalous: Vec<Observation> = stream(1.0, 2)
        .into_iter()
        .map(|mut o| {
            if o.dimensions[0].1 == "error" {
                o.value *= 20.0;
            }
            o
        })
        .collect();
    let causes = attribute(&baseline, &anomalous, 3);
    assert_eq!(
        (causes[0].dimension.as_str(), causes[0].value.as_str()),
        ("status", "error"),
        "{causes:#?}"
    );
    assert!(causes.iter().all(|c| c.value != "unset" && c.dimension != "provider"), "{causes:#?}");
}

#[test]
fn a_dimension_constant_within_the_stream_is_never_named() {
    // A per-model stream: `model` has one value in both windows, whatever changed.
    let per_model = |slow: f64| -> Vec<Observation> {
        (0..500)
            .map(|i| {
                Observation::new(
                    vec![
                        ("model".into(), "gpt-4o-mini".into()),
                        ("tool".into(), if i % 2 == 0 { "search" } else { "fetch" }.into()),
                    ],
                    if i % 2 == 0 { slow } else { 1.0 },
                )
            })
            .collect()
    };
    let causes = attribute(&per_model(1.0), &per_model(4.0), 3);
    assert!(causes.iter().all(|c| c.dimension != "model"), "{causes:#?}");
    assert_eq!((causes[0].dimension.as_str(), causes[0].value.as_str()), ("tool", "search"));
}
