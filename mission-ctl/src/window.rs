//! Time windows of the commands: `--since`, `--from`, `--to`, and the times they accept.

use std::time::Duration;

use mission_core::Timestamp;
use mission_store::layout::days_from_civil;
use mission_store::{Query, Store};

use crate::{Error, invalid};

/// A time window: events with `from <= time < to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start, inclusive.
    pub from: Timestamp,
    /// End, exclusive.
    pub to: Timestamp,
}

impl Window {
    /// A query of `store` over this window, of one tenant or all.
    pub fn query<'s>(&self, store: &'s Store, tenant: Option<&str>) -> Query<'s> {
        let q = store.query().time_range(self.from, self.to);
        match tenant {
            Some(t) => q.tenant(t),
            None => q,
        }
    }

    /// The last `length`, ending now.
    pub fn last(length: Duration) -> Self {
        let to = Timestamp::now();
        Self { from: Timestamp(to.0.saturating_sub(nanos(length))), to }
    }

    /// Its length.
    pub fn length(&self) -> Duration {
        Duration::from_nanos(self.to.0.saturating_sub(self.from.0))
    }
}

/// The window options of `stats`, `cost` and `report`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct WindowArgs {
    /// The window's length (e.g. 15m, 2h, 7d), ending at --to or now [default: 1h for stats,
    /// 24h for cost and report].
    #[arg(long, value_parser = crate::parse_duration, conflicts_with = "from")]
    pub since: Option<Duration>,
    /// The window's start: an RFC 3339 time (2025-03-04T10:00:00Z), a date (UTC midnight) or
    /// nanoseconds since the epoch.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// The window's end (exclusive), in the same forms as --from [default: now].
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
}

impl WindowArgs {
    /// The window these options name, `default_length` long when neither `--since` nor
    /// `--from` is given.
    ///
    /// # Errors
    /// An invalid-argument error when the window ends before it starts.
    pub fn resolve(&self, default_length: Duration) -> Result<Window, Error> {
        let to = self.to.unwrap_or_else(Timestamp::now);
        let (from, _) = bounds(self.since.or(Some(default_length)), self.from, Some(to))?;
        Ok(Window { from: from.unwrap_or(Timestamp(0)), to })
    }
}

/// `--since`, `--from` and `--to` as optional bounds: `--since` is the length of a window that
/// ends at `--to`, or now. Without `--to`, a window is open-ended (`None`).
pub(crate) fn bounds(
    since: Option<Duration>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), Error> {
    let from = match (from, since) {
        (Some(from), _) => Some(from),
        (None, Some(length)) => {
            let end = to.unwrap_or_else(Timestamp::now);
            Some(Timestamp(end.0.saturating_sub(nanos(length))))
        }
        (None, None) => None,
    };
    if let (Some(f), Some(t)) = (from, to)
        && f.0 >= t.0
    {
        return Err(invalid(
            "window",
            format!("--from ({}) is not before --to ({})", fmt(f), fmt(t)),
        ));
    }
    Ok((from, to))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) use mission_sdk::report::human;

fn fmt(t: Timestamp) -> String {
    crate::utc(i64::try_from(t.0).unwrap_or(i64::MAX))
}

/// Parses a time for `--from`/`--to`: RFC 3339 (`2025-03-04T10:00:00Z`,
/// `2025-03-04T12:00:00.250+02:00`), a date (`2025-03-04`, midnight UTC) or nanoseconds since
/// the epoch (`1741082400000000000`).
///
/// # Errors
/// A message naming the text and the accepted forms.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    let err = || {
        format!(
            "{text:?}: expected an RFC 3339 time (2025-03-04T10:00:00Z), a date (2025-03-04, \
             UTC) or nanoseconds since the epoch"
        )
    };
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Timestamp).map_err(|_| err());
    }
    let number = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        s.parse::<i64>().map_err(|_| err())
    };
    let (date, rest) = match (t.get(..10), t.get(10..)) {
        (Some(d), Some(r)) => (d, r),
        _ => return Err(err()),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else { return Err(err()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(err());
    }
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(err()),
    };
    if !(1..=days_in_month).contains(&d) {
        return Err(err());
    }
    let days = days_from_civil(y, m as u32, d as u32);
    let mut seconds = days * 86_400;
    let mut nanos = 0i64;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(err)?;
        // The zone: Z, or ±HH:MM after the clock time.
        let (clock, offset) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else {
            let at = rest
                .rfind(['+', '-'])
                .ok_or_else(|| format!("{text:?}: give a zone, such as Z for UTC or +02:00"))?;
            let (clock, zone) = rest.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':').ok_or_else(err)?;
            let (h, m) = (number(h)?, number(m)?);
            if h > 23 || m > 59 {
                return Err(err());
            }
            (clock, sign * (h * 3600 + m * 60))
        };
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (clock, None),
        };
        let fields: Vec<&str> = hms.split(':').collect();
        let (h, mi, s) = match fields[..] {
            [h, mi] => (number(h)?, number(mi)?, 0),
            [h, mi, s] => (number(h)?, number(mi)?, number(s)?),
            _ => return Err(err()),
        };
        if h > 23 || mi > 59 || s > 60 {
            return Err(err());
        }
        if let Some(f) = fraction {
            if f.len() > 9 {
                return Err(err());
            }
            nanos = number(f)? * 10i64.pow(9 - f.len() as u32);
        }
        seconds += h * 3600 + mi * 60 + s - offset;
    }
    let ns = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).map(Timestamp).map_err(|_| format!("{text:?}: before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_741_082_400_000_000_000; // 2025-03-04T10:00:00Z

    #[test]
    fn times_parse_in_every_form() {
        assert_eq!(parse_time("2025-03-04T10:00:00Z"), Ok(Timestamp(T)));
        assert_eq!(parse_time("2025-03-04t10:00z"), Ok(Timestamp(T)));
        assert_eq!(parse_time("2025-03-04 12:00:00+02:00"), Ok(Timestamp(T)));
        assert_eq!(parse_time("2025-03-04T09:30:00-00:30"), Ok(Timestamp(T)));
        assert_eq!(parse_time("2025-03-04T10:00:00.25Z"), Ok(Timestamp(T + 250_000_000)));
        assert_eq!(parse_time("2025-03-04T10:00:00.000000001Z"), Ok(Timestamp(T + 1)));
        assert_eq!(parse_time("2025-03-04"), Ok(Timestamp(T - 10 * 3_600_000_000_000)));
        assert_eq!(parse_time(&T.to_string()), Ok(Timestamp(T)));
        assert_eq!(crate::utc(T as i64), "2025-03-04T10:00:00.000Z");
    }

    #[test]
    fn bad_times_are_errors_not_panics() {
        for bad in [
            "",
            "soon",
            "2025-03-04T10:00:00",
            "2025-02-29",
            "2025-13-01",
            "2025-03-04T24:00:00Z",
            "2025-03-04T10:00:00.1234567890Z",
            "2025-03-04T10:00:00+0200",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
            "2025-03-04T10:ééZ",
            "2025-3-4",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_time("2024-02-29").is_ok());
    }

    #[test]
    fn windows_end_at_to_or_now() {
        let hour = Duration::from_secs(3600);
        let w = WindowArgs { to: Some(Timestamp(T)), ..WindowArgs::default() }
            .resolve(hour)
            .expect("window");
        assert_eq!(w, Window { from: Timestamp(T - 3_600_000_000_000), to: Timestamp(T) });
        let w = WindowArgs { from: Some(Timestamp(T)), ..WindowArgs::default() }
            .resolve(hour)
            .expect("window");
        assert_eq!(w.from, Timestamp(T));
        assert!(w.to.0 > T);
        let w = WindowArgs::default().resolve(hour).expect("window");
        assert_eq!(w.length(), hour);
        let backwards = WindowArgs {
            from: Some(Timestamp(T)),
            to: Some(Timestamp(T - 1)),
            ..WindowArgs::default()
        };
        assert!(backwards.resolve(hour).is_err());
        assert_eq!(bounds(None, None, None).expect("bounds"), (None, None));
    }
}
