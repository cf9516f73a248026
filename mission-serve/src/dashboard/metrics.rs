//! `GET /metrics`: the dashboard's numbers for Prometheus, in the OpenMetrics 1.0 text format.
//!
//! Two sources: the health report the overview shows (`Shared::health`: the recorder's
//! accounting with drops by reason, buffers, sinks, spans in flight, OTLP export, sampling,
//! the models, the directives and the OTLP receivers inside an agent; files and bytes over a
//! store), and a running latency histogram per operation ([`Latency`], fed with every span the
//! dashboard sees arrive, so its counters only grow, as Prometheus expects of a histogram).
//!
//! A principal of one tenant gets what the health report keeps for it (its tenant's events,
//! each sink's state, its spans in flight) and its own tenant's operations only; process-wide
//! counters are left out, as in the overview.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::row::Row;

/// Upper bounds of the latency buckets, in ns (the `+Inf` bucket follows): 5 ms to 5 min.
pub(crate) const BUCKETS_NS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
];

/// Series (tenant, kind, name) the latency histograms keep at most; spans of further
/// operations are counted under the name `(other)` of their tenant and kind.
pub(crate) const MAX_OPERATION_SERIES: usize = 2_000;

/// The name spans of operations past [`MAX_OPERATION_SERIES`] are counted under.
pub(crate) const OTHER: &str = "(other)";

/// One operation's spans: counts per bucket (not cumulative), count, sum and errors.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct OperationLatency {
    /// Spans per bucket of [`BUCKETS_NS`], the last one past every bound.
    pub buckets: [u64; BUCKETS_NS.len() + 1],
    pub count: u64,
    pub sum_seconds: f64,
    pub errors: u64,
}

/// Running latency histograms per (tenant, kind, name), bounded by [`MAX_OPERATION_SERIES`].
#[derive(Debug, Default)]
pub(crate) struct Latency {
    series: HashMap<(String, String, String), OperationLatency>,
}

impl Latency {
    /// Counts `row` when it is a span.
    pub(crate) fn record(&mut self, row: &Row) {
        let Some(duration) = row.duration_ns else { return };
        let mut key = (row.tenant.clone(), row.kind.clone(), row.name.clone());
        if !self.series.contains_key(&key) && self.series.len() >= MAX_OPERATION_SERIES {
            key.2 = OTHER.to_owned();
            // Past the bound every new tenant's operations share one series, so the map stays
            // within MAX_OPERATION_SERIES plus one `(other)` series per tenant already seen.
            if !self.series.contains_key(&key) {
                key.0 = OTHER.to_owned();
            }
        }
        let op = self.series.entry(key).or_default();
        let ns = u64::try_from(duration).unwrap_or(0);
        let bucket = BUCKETS_NS.iter().position(|b| ns <= *b).unwrap_or(BUCKETS_NS.len());
        op.buckets[bucket] += 1;
        op.count += 1;
        op.sum_seconds += ns as f64 / 1e9;
        op.errors += u64::from(row.is_error());
    }

    /// The series `scope` may see (`None`: every tenant's), sorted by tenant, kind and name.
    pub(crate) fn snapshot(
        &self,
        scope: Option<&str>,
    ) -> Vec<((String, String, String), OperationLatency)> {
        let mut out: Vec<_> = self
            .series
            .iter()
            .filter(|((tenant, _, _), _)| scope.is_none_or(|s| s == tenant))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The content type of an OpenMetrics text exposition.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

struct Family {
    name: String,
    kind: Type,
    help: String,
    /// Rendered sample lines (each ending in a newline).
    samples: String,
}

/// An OpenMetrics text exposition being built: families in the order first added, each with
/// its samples together, label values escaped, `# EOF` at the end.
#[derive(Default)]
pub(crate) struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

/// A label value escaped for the text format: backslash, double quote and line feed.
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `name` made a valid metric name part: `[a-zA-Z0-9_]`, anything else an underscore.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// A number as the text format writes it (`+Inf`, `-Inf`, `NaN`; floats with a decimal point).
pub(crate) fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape_label(v))).collect();
    format!("{{{}}}", inner.join(","))
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Type, help: &str) -> Option<&mut Family> {
        let name = sanitize(name);
        let at = match self.index.get(&name) {
            Some(&at) => at,
            None => {
                self.families.push(Family {
                    name: name.clone(),
                    kind,
                    help: help.to_owned(),
                    samples: String::new(),
                });
                self.index.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let family = &mut self.families[at];
        // A name already used for another type is not used again (the format forbids it).
        (family.kind == kind).then_some(family)
    }

    /// A counter sample (`{name}_total`); `name` without `_total`.
    pub(crate) fn counter(&mut self, name: &str, help: &str, pairs: &[(&str, &str)], v: f64) {
        if let Some(f) = self.family(name, Type::Counter, help) {
            let _ = writeln!(f.samples, "{}_total{} {}", f.name, labels(pairs), number(v.max(0.0)));
        }
    }

    /// A gauge sample.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, pairs: &[(&str, &str)], v: f64) {
        if let Some(f) = self.family(name, Type::Gauge, help) {
            let _ = writeln!(f.samples, "{}{} {}", f.name, labels(pairs), number(v));
        }
    }

    /// A histogram's samples: cumulative `_bucket`s with `le` (seconds, `+Inf` last),
    /// `_count` and `_sum`.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        pairs: &[(&str, &str)],
        op: &OperationLatency,
    ) {
        let Some(f) = self.family(name, Type::Histogram, help) else { return };
        let mut cumulative = 0u64;
        for (i, n) in op.buckets.iter().enumerate() {
            cumulative += n;
            let le =
                BUCKETS_NS.get(i).map_or_else(|| "+Inf".to_owned(), |b| number(*b as f64 / 1e9));
            let mut with_le = pairs.to_vec();
            with_le.push(("le", &le));
            let _ = writeln!(f.samples, "{}_bucket{} {cumulative}", f.name, labels(&with_le));
        }
        let _ = writeln!(f.samples, "{}_count{} {}", f.name, labels(pairs), op.count);
        let _ = writeln!(f.samples, "{}_sum{} {}", f.name, labels(pairs), number(op.sum_seconds));
    }

    /// The exposition's text, ending in `# EOF`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            let help = f.help.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"");
            let _ = writeln!(out, "# HELP {} {help}", f.name);
            out.push_str(&f.samples);
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Fields of the health report that are levels, not running totals.
const GAUGE_FIELDS: &[&str] = &[
    "queued",
    "spill_queued",
    "spill_queued_spans",
    "spill_bytes",
    "streams",
    "memory_bytes",
    "saved_streams",
    "in_flight",
    "open",
    "overdue",
];

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Every number and flag of a section of the health report (`object`), as
/// `mission_{section}_{field}`: flags and [`GAUGE_FIELDS`] as gauges, other numbers as counters.
fn section(out: &mut Exposition, prefix: &str, what: &str, object: &Value, pairs: &[(&str, &str)]) {
    let Some(fields) = object.as_object() else { return };
    for (key, value) in fields {
        let Some(v) = as_f64(value) else { continue };
        let key = key.strip_suffix("_total").unwrap_or(key);
        let name = format!("{prefix}_{key}");
        let help = format!("{what}: {key} (see the health report)");
        if value.is_boolean() || GAUGE_FIELDS.contains(&key) {
            out.gauge(&name, &help, pairs, v);
        } else {
            out.counter(&name, &help, pairs, v);
        }
    }
}

/// The fields of `object` named in `fields` (field, metric name, help) as gauges.
fn gauges(out: &mut Exposition, object: &Value, fields: &[(&str, &str, &str)]) {
    for (field, name, help) in fields {
        if let Some(v) = object.get(*field).and_then(as_f64) {
            out.gauge(name, help, &[], v);
        }
    }
}

/// The health report (what `/api/overview` shows as `health`) as metrics.
pub(crate) fn health_metrics(out: &mut Exposition, health: &Value) {
    let num = |v: &Value| as_f64(v);
    if let Some(v) = health.get("healthy").and_then(num) {
        out.gauge("mission_healthy", "1 while recording, every sink and export are fine", &[], v);
    }
    if let Some(v) = health.get("recorded").and_then(num) {
        out.counter("mission_events_recorded", "Events recorded", &[], v);
    }
    if let Some(v) = health.get("lagged").and_then(num) {
        out.counter(
            "mission_dashboard_lagged_events",
            "Events the dashboard's feed missed (its subscription fell behind)",
            &[],
            v,
        );
    }
    let recorder = health.get("recorder").filter(|r| r.is_object());
    if let Some(a) = recorder.and_then(|r| r.get("accounting")) {
        if let Some(v) = a.get("delivered").and_then(num) {
            out.counter("mission_events_delivered", "Events handed to every sink", &[], v);
        }
        if let Some(v) = a.get("in_flight").and_then(num) {
            out.gauge("mission_events_in_flight", "Events in a buffer or in delivery now", &[], v);
        }
        for reason in ["buffer_full", "block_timeout", "after_shutdown", "thread_exit"] {
            if let Some(v) = a.get(format!("dropped_{reason}")).and_then(num) {
                let help = "Events dropped, by reason (their sum is what health() calls dropped)";
                out.counter("mission_events_dropped", help, &[("reason", reason)], v);
            }
        }
    }
    if let Some(r) = recorder {
        if let Some(b) = r.get("buffer") {
            gauges(
                out,
                b,
                &[
                    ("capacity", "mission_buffer_capacity_events", "Events each buffer holds"),
                    ("fill", "mission_buffer_fill_events", "Events in the buffers now"),
                    ("producers", "mission_buffer_producers", "Threads recording"),
                ],
            );
        }
        if let Some(v) = r.get("pipeline_running").and_then(num) {
            out.gauge("mission_pipeline_running", "1 while the pipeline thread runs", &[], v);
        }
        if let Some(lag) = r.get("pipeline_lag") {
            let secs = lag.get("secs").and_then(num).unwrap_or(0.0);
            let nanos = lag.get("nanos").and_then(num).unwrap_or(0.0);
            let help = "Time since the pipeline last finished a pass over the buffers";
            out.gauge("mission_pipeline_lag_seconds", help, &[], secs + nanos / 1e9);
        }
    }
    // Sinks: the full report's (with counters), or a tenant's (states only).
    let sinks = recorder.and_then(|r| r.get("sinks")).or_else(|| health.get("sinks"));
    for sink in sinks.and_then(Value::as_array).into_iter().flatten() {
        let name = sink.get("name").and_then(Value::as_str).unwrap_or("");
        let state = sink.get("state").and_then(Value::as_str).unwrap_or("");
        for s in ["ok", "failing", "disabled"] {
            let help = "1 for the sink's state now (ok, failing, disabled), 0 for the others";
            let v = f64::from(u8::from(state == s));
            out.gauge("mission_sink_state", help, &[("sink", name), ("state", s)], v);
        }
        for (field, help) in [
            ("batches", "Batches the sink took without error"),
            ("events", "Events delivered to the sink"),
            ("errors", "Calls of the sink that returned an error"),
            ("failed_events", "Events in batches the sink failed, or lost later"),
            ("panics", "Panics of the sink caught"),
            ("skipped_events", "Events not handed to the sink because it was disabled"),
        ] {
            if let Some(v) = sink.get(field).and_then(num) {
                out.counter(&format!("mission_sink_{field}"), help, &[("sink", name)], v);
            }
        }
    }
    if let Some(f) = health.get("in_flight") {
        section(out, "mission_spans", "Spans in flight", f, &[]);
    }
    if let Some(v) = health.get("in_flight_open").and_then(num) {
        out.gauge("mission_spans_open", "Spans in flight: open (see the health report)", &[], v);
    }
    if let Some(otlp) = health.get("otlp").filter(|o| o.is_object()) {
        for signal in ["traces", "logs", "metrics"] {
            if let Some(s) = otlp.get(signal) {
                section(out, "mission_otlp", "OTLP export", s, &[("signal", signal)]);
            }
        }
    }
    for (field, prefix, what) in [
        ("sampling", "mission_sampling", "Sampling"),
        ("models", "mission_models", "The models"),
        ("directives", "mission_directives", "The directives"),
    ] {
        if let Some(s) = health.get(field) {
            section(out, prefix, what, s, &[]);
        }
    }
    if let Some(v) = health.get("stats_overflowed").and_then(num) {
        let help = "Spans the rolling statistics merged under (other) past their bound";
        out.counter("mission_stats_overflowed_spans", help, &[], v);
    }
    let receivers = health.get("otlp_receivers").and_then(Value::as_array);
    for (i, r) in receivers.into_iter().flatten().enumerate() {
        let index = i.to_string();
        section(out, "mission_otlp_receiver", "OTLP receiver", r, &[("receiver", &index)]);
    }
    gauges(
        out,
        health,
        &[
            ("files", "mission_store_files", "Files in the store"),
            ("bytes", "mission_store_bytes", "Bytes of the store's files"),
            ("leftovers", "mission_store_leftover_files", "Unfinished files left in the store"),
        ],
    );
}

/// The latency histograms (and errors) of `series` as metrics.
pub(crate) fn latency_metrics(
    out: &mut Exposition,
    series: &[((String, String, String), OperationLatency)],
) {
    for ((tenant, kind, name), op) in series {
        let pairs = [("tenant", tenant.as_str()), ("kind", kind.as_str()), ("name", name.as_str())];
        out.histogram(
            "mission_operation_duration_seconds",
            "Span durations per operation, since the dashboard started",
            &pairs,
            op,
        );
    }
    for ((tenant, kind, name), op) in series {
        let pairs = [("tenant", tenant.as_str()), ("kind", kind.as_str()), ("name", name.as_str())];
        out.counter(
            "mission_operation_errors",
            "Spans that failed per operation, since the dashboard started",
            &pairs,
            op.errors as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(tenant: &str, name: &str, ms: i64, error: bool) -> Row {
        Row {
            tenant: tenant.into(),
            kind: "tool_call".into(),
            name: name.into(),
            duration_ns: Some(ms * 1_000_000),
            status: Some(if error { "error" } else { "ok" }.into()),
            ..Row::default()
        }
    }

    #[test]
    fn label_values_are_escaped_and_the_text_ends_in_eof() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let mut out = Exposition::default();
        out.counter("mission_x", "help\nwith a line", &[("name", "we\"ird\\\nname")], 3.0);
        out.gauge("mission_y", "a gauge", &[], f64::INFINITY);
        let text = out.render();
        assert_eq!(
            text,
            "# TYPE mission_x counter\n# HELP mission_x help\\nwith a line\n\
             mission_x_total{name=\"we\\\"ird\\\\\\nname\"} 3.0\n\
             # TYPE mission_y gauge\n# HELP mission_y a gauge\nmission_y +Inf\n# EOF\n"
        );
        assert_eq!(Exposition::default().render(), "# EOF\n");
        assert_eq!(sanitize("a.b-c"), "a_b_c");
        assert_eq!(number(0.005), "0.005");
        assert_eq!(number(300.0), "300.0");
    }

    #[test]
    fn a_name_keeps_its_first_type_and_families_stay_together() {
        let mut out = Exposition::default();
        out.counter("m_a", "h", &[("k", "1")], 1.0);
        out.gauge("m_b", "h", &[], 2.0);
        out.gauge("m_a", "h", &[], 9.0);
        out.counter("m_a", "h", &[("k", "2")], 2.0);
        let text = out.render();
        assert_eq!(
            text,
            "# TYPE m_a counter\n# HELP m_a h\nm_a_total{k=\"1\"} 1.0\nm_a_total{k=\"2\"} 2.0\n\
             # TYPE m_b gauge\n# HELP m_b h\nm_b 2.0\n# EOF\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_scoped() {
        let mut latency = Latency::default();
        for (tenant, ms, error) in
            [("a", 3, false), ("a", 7, true), ("a", 400_000, false), ("b", 1, false)]
        {
            latency.record(&span(tenant, "web \"search\"", ms, error));
        }
        latency.record(&Row { tenant: "a".into(), kind: "log".into(), ..Row::default() });
        let a = latency.snapshot(Some("a"));
        assert_eq!(a.len(), 1, "b's series is not a's");
        assert_eq!(a[0].1.count, 3);
        assert_eq!(a[0].1.errors, 1);
        assert_eq!(latency.snapshot(None).len(), 2);
        let mut out = Exposition::default();
        latency_metrics(&mut out, &a);
        let text = out.render();
        let labels = "tenant=\"a\",kind=\"tool_call\",name=\"web \\\"search\\\"\"";
        for line in [
            format!("mission_operation_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"),
            format!("mission_operation_duration_seconds_bucket{{{labels},le=\"0.01\"}} 2"),
            format!("mission_operation_duration_seconds_bucket{{{labels},le=\"300.0\"}} 2"),
            format!("mission_operation_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("mission_operation_duration_seconds_count{{{labels}}} 3"),
            format!("mission_operation_duration_seconds_sum{{{labels}}} 400.01"),
            format!("mission_operation_errors_total{{{labels}}} 1.0"),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
        assert!(!text.contains("tenant=\"b\""));
    }

    #[test]
    fn series_past_the_bound_are_counted_as_other() {
        let mut latency = Latency::default();
        for i in 0..MAX_OPERATION_SERIES + 10 {
            latency.record(&span("a", &format!("op{i}"), 1, false));
        }
        let all = latency.snapshot(None);
        assert_eq!(all.len(), MAX_OPERATION_SERIES + 1);
        let other = all.iter().find(|(k, _)| k.2 == OTHER).expect("(other)");
        assert_eq!(other.1.count, 10);
    }

    #[test]
    fn the_health_report_becomes_named_metrics() {
        let health = json!({
            "healthy": true, "recorded": 40, "dropped": 2, "lagged": 1,
            "recorder": {
                "accounting": {"recorded": 40, "delivered": 38, "dropped": 2, "in_flight": 0,
                               "dropped_buffer_full": 2, "dropped_block_timeout": 0,
                               "dropped_after_shutdown": 0, "dropped_thread_exit": 0},
                "buffer": {"capacity": 8192, "fill": 3, "producers": 1},
                "pipeline_running": true,
                "pipeline_lag": {"secs": 1, "nanos": 500_000_000},
                "sinks": [{"name": "parquet", "state": "failing", "batches": 1, "events": 38,
                           "errors": 1, "failed_events": 0, "panics": 0, "skipped_events": 0,
                           "last_error": "disk \"full\""}]
            },
            "in_flight": {"open": 2, "overdue": 0, "untracked": 0},
            "otlp": {"healthy": false, "traces": {"enabled": true, "exported": 5, "queued": 1},
                     "logs": {"enabled": false}, "metrics": {"enabled": true}},
            "directives": {"events": 40, "fired": 1},
            "models": null,
            "otlp_receivers": [{"requests": 3, "in_flight": 0}],
            "stats_overflowed": 0
        });
        let mut out = Exposition::default();
        health_metrics(&mut out, &health);
        let text = out.render();
        for line in [
            "mission_healthy 1.0",
            "mission_events_recorded_total 40.0",
            "mission_events_delivered_total 38.0",
            "mission_events_dropped_total{reason=\"buffer_full\"} 2.0",
            "mission_events_dropped_total{reason=\"thread_exit\"} 0.0",
            "mission_dashboard_lagged_events_total 1.0",
            "mission_buffer_fill_events 3.0",
            "mission_pipeline_lag_seconds 1.5",
            "mission_sink_state{sink=\"parquet\",state=\"failing\"} 1.0",
            "mission_sink_state{sink=\"parquet\",state=\"ok\"} 0.0",
            "mission_sink_errors_total{sink=\"parquet\"} 1.0",
            "mission_spans_open 2.0",
            "mission_spans_untracked_total 0.0",
            "mission_otlp_exported_total{signal=\"traces\"} 5.0",
            "mission_otlp_queued{signal=\"traces\"} 1.0",
            "mission_otlp_enabled{signal=\"logs\"} 0.0",
            "mission_directives_fired_total 1.0",
            "mission_otlp_receiver_requests_total{receiver=\"0\"} 3.0",
            "mission_otlp_receiver_in_flight{receiver=\"0\"} 0.0",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
        // Error texts are not metrics.
        assert!(!text.contains("disk"), "{text}");
        // A tenant's report: states of sinks, its spans in flight, no process-wide numbers.
        let tenant = json!({"tenant": "acme", "healthy": true, "recorded": 7, "lagged": 0,
                            "sinks": [{"name": "parquet", "state": "ok"}], "in_flight_open": 1});
        let mut out = Exposition::default();
        health_metrics(&mut out, &tenant);
        let text = out.render();
        assert!(text.contains("mission_sink_state{sink=\"parquet\",state=\"ok\"} 1.0\n"));
        assert!(text.contains("mission_spans_open 1.0\n"));
        assert!(text.contains("mission_events_recorded_total 7.0\n"));
        assert!(!text.contains("dropped"), "{text}");
    }
}
