//! NAB's files: the directory walk, `timestamp,value` CSVs, label windows in JSON, and
//! timestamps (`YYYY-MM-DD HH:MM:SS`, UTC) to and from ns since the epoch.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{Result, Window, format_error, io_error};

pub(super) fn collect_csv_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let file_name = entry.file_name();
        if file_name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_dir() {
            collect_csv_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Option<Vec<&str>> =
                relative.components().map(|c| c.as_os_str().to_str()).collect();
            let name = parts.ok_or_else(|| format_error(&path, None, "file name is not UTF-8"))?;
            out.push(name.join("/"));
        }
    }
    Ok(())
}

pub(super) type Limits = Vec<(u64, u64)>;

pub(super) fn load_windows(path: &Path) -> Result<BTreeMap<String, Limits>> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format_error(path, Some(e.line()), e.to_string()))?;
    let object = json
        .as_object()
        .ok_or_else(|| format_error(path, None, "not an object of file -> windows"))?;
    let mut labels = BTreeMap::new();
    for (name, windows) in object {
        let bad = || format_error(path, None, format!("`{name}`: expected [[start, end], ..]"));
        let list = windows.as_array().ok_or_else(bad)?;
        let mut limits = Vec::with_capacity(list.len());
        for w in list {
            let pair = w.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
            let time = |v: &serde_json::Value| -> Result<u64> {
                let s = v.as_str().ok_or_else(bad)?;
                parse_timestamp(s).map_err(|m| format_error(path, None, format!("`{name}`: {m}")))
            };
            limits.push((time(&pair[0])?, time(&pair[1])?));
        }
        labels.insert(name.clone(), limits);
    }
    Ok(labels)
}

/// Places windows given by times on point indices; see "Untrusted input" in [`super`].
pub(super) fn place_windows(times: &[u64], mut limits: Limits) -> Result<Vec<Window>, String> {
    limits.sort_unstable();
    let mut windows = Vec::with_capacity(limits.len());
    let mut from = 0;
    let mut previous_end: Option<u64> = None;
    for (start_t, end_t) in limits {
        let shown = || format!("[{}, {}]", format_timestamp(start_t), format_timestamp(end_t));
        if start_t > end_t {
            return Err(format!("window {} ends before it starts", shown()));
        }
        if previous_end.is_some_and(|e| start_t <= e) {
            return Err(format!("window {} overlaps the window before it", shown()));
        }
        previous_end = Some(end_t);
        let start = from + times[from..].iter().position(|&t| t >= start_t).unwrap_or(times.len());
        let end = match times.get(start..).and_then(|rest| rest.iter().position(|&t| t >= end_t)) {
            Some(k) if times[start + k] == end_t => start + k,
            Some(k) => (start + k).wrapping_sub(1),
            None => times.len().wrapping_sub(1),
        };
        if start >= times.len() || end == usize::MAX || end < start {
            return Err(format!("window {} holds no point of the series", shown()));
        }
        windows.push(Window { start, end });
        from = end + 1;
    }
    Ok(windows)
}

pub(super) fn read_series_csv(path: &Path) -> Result<(Vec<u64>, Vec<f64>)> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).unwrap_or("");
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let (Some(time_col), Some(value_col)) = (column("timestamp"), column("value")) else {
        return Err(format_error(path, Some(1), "header must name `timestamp` and `value`"));
    };
    let rows = text.len() / 24;
    let (mut times, mut values) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(time), Some(value)) = (fields.get(time_col), fields.get(value_col)) else {
            return Err(format_error(path, Some(line_no), "too few fields"));
        };
        let time = parse_timestamp(time).map_err(|m| format_error(path, Some(line_no), m))?;
        let value = if value.is_empty() {
            f64::NAN
        } else {
            value.parse::<f64>().map_err(|_| {
                format_error(path, Some(line_no), format!("value `{value}` is not a number"))
            })?
        };
        times.push(time);
        values.push(value);
    }
    Ok((times, values))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fffffffff]` (or with `T`), UTC, to ns since the epoch.
fn parse_timestamp(s: &str) -> Result<u64, String> {
    let bad = || format!("timestamp `{s}` is not YYYY-MM-DD HH:MM:SS");
    let b = s.trim().as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let part = b.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut nanos = 0u64;
    if b.len() > 19 {
        let fraction = &b[20..];
        if b[19] != b'.' || fraction.is_empty() || fraction.len() > 9 {
            return Err(bad());
        }
        let value = u64::from(digits(20..b.len())?);
        nanos = value * 10u64.pow(9 - fraction.len() as u32);
    }
    let days = days_from_civil(i64::from(year), month, day);
    if !(1..=12).contains(&month) || civil_from_days(days) != (i64::from(year), month, day) {
        return Err(format!("timestamp `{s}` is not a valid date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("timestamp `{s}` is not a valid time"));
    }
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|ns| ns.checked_add(nanos))
        .ok_or_else(|| format!("timestamp `{s}` is before 1970 or after 2554"))
}

/// Formats ns since the epoch as NAB does: `YYYY-MM-DD HH:MM:SS`, with a fraction only when
/// there is one.
pub(super) fn format_timestamp(ns: u64) -> String {
    let seconds = ns / 1_000_000_000;
    let fraction = ns % 1_000_000_000;
    let (y, m, d) = civil_from_days((seconds / 86_400) as i64);
    let s = seconds % 86_400;
    let mut out = format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if fraction != 0 {
        let digits = format!(".{fraction:09}");
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ns = parse_timestamp("2014-04-10 07:15:00.000000").unwrap();
        assert_eq!(ns, 1_397_114_100 * 1_000_000_000);
        assert_eq!(format_timestamp(ns), "2014-04-10 07:15:00");
        assert_eq!(parse_timestamp("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            format_timestamp(parse_timestamp("2000-02-29 23:59:59.5").unwrap()),
            "2000-02-29 23:59:59.5"
        );
        for bad in [
            "2014-02-30 00:00:00",
            "2014-13-01 00:00:00",
            "1969-12-31 23:59:59",
            "2014-04-10",
            "2014-04-10 07:15:0x",
            "2014-04-10 24:00:00",
            "2014-04-10 07:15:00.",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_are_placed_by_time() {
        let times = [10, 20, 20, 30, 40, 50];
        assert_eq!(place_windows(&times, vec![(20, 30)]).unwrap(), [Window { start: 1, end: 3 }]);
        assert_eq!(place_windows(&times, vec![(15, 45)]).unwrap(), [Window { start: 1, end: 4 }]);
        assert_eq!(place_windows(&times, vec![(45, 99)]).unwrap(), [Window { start: 5, end: 5 }]);
        assert!(place_windows(&times, vec![(41, 49)]).is_err());
        assert!(place_windows(&times, vec![(60, 70)]).is_err());
        assert!(place_windows(&times, vec![(10, 30), (30, 40)]).is_err());
        assert!(place_windows(&times, vec![(30, 20)]).is_err());
    }
}
