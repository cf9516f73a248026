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
