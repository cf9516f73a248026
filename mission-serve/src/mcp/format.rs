//! How every MCP answer writes numbers and times, so a model reads them without converting:
//!
//! - durations in **milliseconds**, rounded to the microsecond, in fields named `*_ms` (text:
//!   `97.976 ms`);
//! - times as **RFC 3339** UTC with milliseconds (`2026-12-06T08:09:37.123Z`), in fields named
//!   `time`, `start`, `from`, `to`, `since`;
//! - money in **US dollars rounded to 6 significant digits** (`0.000177`, `12.3457`), in fields
//!   named `cost_usd` (text: `$0.000177`); amounts below a picodollar are 0.
//!
//! Store rows (ns since the epoch, unrounded sums) are turned into the rows below here, in one
//! place, so no tool answers in another unit.

/// Milliseconds from nanoseconds, rounded to the microsecond.
pub(crate) fn ms(ns: f64) -> f64 {
    (ns / 1e3).round() / 1e3
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from nanoseconds since the Unix epoch.
pub(crate) fn rfc3339(ns: i64) -> String {
    let millis = ns.div_euclid(1_000_000);
    let secs = millis.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = mission_store::layout::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis.rem_euclid(1000)
    )
}

/// US dollars rounded to 6 significant digits (0 below 1e-12; non-finite values unchanged).
pub(crate) fn usd(x: f64) -> f64 {
    const SIGNIFICANT: i32 = 6;
    const MAX_DECIMALS: i32 = 12;
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // floor(log10(|x|)) is at most 308, so this stays in i32.
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = SIGNIFICANT - 1 - magnitude;
    if decimals > MAX_DECIMALS {
        let factor = 10f64.powi(MAX_DECIMALS);
        return (x * factor).round() / factor;
    }
    if decimals >= 0 {
        // k / 10^d with both exact is the double nearest the decimal: it prints as written.
        let factor = 10f64.powi(decimals);
        (x * factor).round() / factor
    } else {
        let factor = 10f64.powi(-decimals);
        (x / factor).round() * factor
    }
}

/// `$0.000177`: [`usd`] for the text the model reads.
pub(crate) fn usd_text(x: f64) -> String {
    format!("${}", usd(x))
}

/// `97.976 ms`: [`ms`] for the text the model reads (from milliseconds already rounded).
pub(crate) fn ms_text(ms: f64) -> String {
    format!("{ms} ms")
}

/// Keys of times (ns since the epoch when they end in `_ns`, or raw integers): written as RFC
/// 3339 under the key without `_ns`.
const TIME_KEYS: [&str; 9] =
    ["time", "start", "end", "from", "to", "since", "as_of", "first_seen", "last_seen"];

/// Rewrites a JSON answer into these units, recursively: `<time>_ns` (see [`TIME_KEYS`]) and
/// integer `time`/`since`/… become RFC 3339 strings under `<time>`; every other `<name>_ns`
/// becomes `<name>_ms` in milliseconds; `cost_usd` and `*_usd` numbers are rounded with
/// [`usd`]. Idempotent, so an answer may pass through it twice.
pub(crate) fn normalize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let Some(mut v) = map.remove(&key) else { continue };
                let (key, v) = match key.strip_suffix("_ns") {
                    // Only numbers are rewritten (an attribute's text keeps its key).
                    Some(_) if !v.is_number() => (key, v),
                    Some(base) if TIME_KEYS.contains(&base) => (base.to_owned(), time_of(v)),
                    Some(base) => {
                        let ms = v.as_f64().map_or(v, |ns| ms(ns).into());
                        (format!("{base}_ms"), ms)
                    }
                    None if TIME_KEYS.contains(&key.as_str()) => {
                        let v = time_of(v);
                        (key, v)
                    }
                    None if key.ends_with("_usd") => {
                        let v = match v.as_f64() {
                            Some(x) if v.is_f64() => usd(x).into(),
                            _ => v,
                        };
                        (key, v)
                    }
                    None => {
                        normalize(&mut v);
                        (key, v)
                    }
                };
                map.insert(key, v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// An integer of ns since the epoch as RFC 3339; anything else unchanged.
fn time_of(v: serde_json::Value) -> serde_json::Value {
    let ns = v.as_i64().or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)));
    ns.map_or(v, |ns| serde_json::Value::String(rfc3339(ns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_996_800_123_456_789), "2026-11-30T00:00:00.123Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_000 + 3_661_000_000_000),
            "2000-02-29T01:01:01.000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn money_has_six_significant_digits_and_no_float_noise() {
        assert_eq!(usd(0.000_176_999_999_999_999_97).to_string(), "0.000177");
        assert_eq!(usd(12.345_678_9).to_string(), "12.3457");
        assert_eq!(usd(1_234_567.89).to_string(), "1234570");
        assert_eq!(usd(0.000_000_45).to_string(), "0.00000045");
        assert_eq!(usd(0.0), 0.0);
        assert_eq!(usd(1e-15), 0.0);
        assert_eq!(usd_text(0.1 + 0.2), "$0.3");
        for x in [3.0e-7, 0.004_2, 0.123_456_7, 7.0, 99_999.95] {
            let s = usd(x).to_string();
            let digits = s.chars().filter(char::is_ascii_digit).collect::<String>();
            assert!(digits.trim_start_matches('0').trim_end_matches('0').len() <= 6, "{x} -> {s}");
            assert!((usd(x) - x).abs() <= x.abs() * 5e-6, "{x} -> {s}");
        }
    }

    #[test]
    fn durations_are_ms_to_the_microsecond() {
        assert_eq!(ms(97_976_319.0), 97.976);
        assert_eq!(ms_text(ms(1_500.0)), "0.002 ms");
        assert_eq!(ms(0.0), 0.0);
    }

    #[test]
    fn answers_are_normalized_once_and_for_all() {
        let mut v = serde_json::json!({
            "rows": [{"start_ns": 0, "duration_ns": 97_976_319, "p95_ns": 1_500, "cost_usd": 0.000_176_999_999_999_999_97}],
            "firing": [{"since": 0, "acknowledged": {"time": 1_000_000}}],
            "time": "already text", "name": "chat", "count": 3, "label_ns": "text"
        });
        normalize(&mut v);
        let want = serde_json::json!({
            "rows": [{"start": "1970-01-01T00:00:00.000Z", "duration_ms": 97.976, "p95_ms": 0.002, "cost_usd": 0.000177}],
            "firing": [{"since": "1970-01-01T00:00:00.000Z", "acknowledged": {"time": "1970-01-01T00:00:00.001Z"}}],
            "time": "already text", "name": "chat", "count": 3, "label_ns": "text"
        });
        assert_eq!(v, want);
        normalize(&mut v);
        assert_eq!(v, want, "idempotent");
    }
}
