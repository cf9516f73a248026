//! The OpenTelemetry environment variables export honours besides its own settings.

/// What an `OTEL_{TRACES,LOGS,METRICS}_EXPORTER` value says about OTLP export: `Some(false)`
/// for `none`, `Some(true)` for a list naming `otlp`, `None` for exporters we do not have.
///
/// ```
/// use mission_export::otel_exporter_switch;
/// assert_eq!(otel_exporter_switch(" None "), Some(false));
/// assert_eq!(otel_exporter_switch("console, otlp"), Some(true));
/// assert_eq!(otel_exporter_switch("zipkin"), None);
/// ```
pub fn otel_exporter_switch(value: &str) -> Option<bool> {
    let value = value.trim().to_ascii_lowercase();
    if value == "none" {
        Some(false)
    } else {
        value.split(',').map(str::trim).any(|v| v == "otlp").then_some(true)
    }
}
