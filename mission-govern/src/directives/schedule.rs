//! Schedules: the `schedule` of a directive, a 5-field cron expression in UTC.
//!
//! `minute hour day-of-month month day-of-week`, each field `*`, a value, a range `a-b`, a step
//! `*/n`, `a-b/n` or `a/n` (from `a` to the field's end), or a comma-separated list of these.
//! Months may be named (`jan`–`dec`) and days of the week too (`sun`–`sat`; `0` and `7` are
//! Sunday), in any case. As in cron, when both the day of the month and the day of the week are
//! restricted (neither starts with `*`), a day matching either matches.
//!
//! ```
//! use mission_govern::directives::Schedule;
//! let s: Schedule = "*/5 9-17 * * mon-fri".parse()?;
//! // Monday 2026-12-07 10:02:30 UTC: next due at 10:05.
//! let t = 1_796_637_750 * 1_000_000_000;
//! assert_eq!(s.next_after(t), Some(1_796_637_900 * 1_000_000_000));
//! assert_eq!(s.to_string(), "*/5 9-17 * * mon-fri");
//! # Ok::<(), mission_govern::directives::ScheduleError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use mission_store::layout::civil_from_days;

const NS_PER_MINUTE: u64 = 60_000_000_000;
const MINUTES_PER_DAY: u64 = 24 * 60;
/// How far ahead [`Schedule::next_after`] looks: longer than any gap between two matching days
/// of a valid schedule (a February 29th can be 8 years away).
const SEARCH_DAYS: u64 = 9 * 366;

/// One of the five fields of a cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CronField {
    /// 0–59.
    Minute,
    /// 0–23.
    Hour,
    /// 1–31.
    DayOfMonth,
    /// 1–12 or `jan`–`dec`.
    Month,
    /// 0–7 (0 and 7 are Sunday) or `sun`–`sat`.
    DayOfWeek,
}

impl CronField {
    const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    /// The field's name: `minute`, `hour`, `day of month`, `month`, `day of week`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day of month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day of week",
        }
    }

    const fn range(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            CronField::DayOfWeek => &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            _ => &[],
        }
    }

    /// The value of a number or name of this field.
    fn value(self, text: &str) -> Option<u32> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names().iter().position(|n| *n == lower) {
            let first = if self == CronField::Month { 1 } else { 0 };
            return Some(first + i as u32);
        }
        let v: u32 = text.parse().ok().filter(|_| text.bytes().all(|b| b.is_ascii_digit()))?;
        let (lo, hi) = self.range();
        (lo..=hi).contains(&v).then_some(v)
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a cron expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Not five fields.
    #[error(
        "invalid schedule {text:?}: expected 5 fields (minute hour day-of-month month \
         day-of-week, UTC), e.g. \"*/5 * * * *\"; found {found}"
    )]
    FieldCount {
        /// The expression.
        text: String,
        /// How many fields it has.
        found: usize,
    },
    /// One field is malformed or out of range.
    #[error("invalid schedule {text:?}: the {field} field {part:?} {why}")]
    Field {
        /// The expression.
        text: String,
        /// Which field.
        field: CronField,
        /// The bad part of it.
        part: String,
        /// What is wrong.
        why: String,
    },
    /// The fields are each valid but no time matches them (e.g. `0 0 30 feb *`).
    #[error("invalid schedule {text:?}: no day matches (the day of month is never in the months)")]
    Never {
        /// The expression.
        text: String,
    },
}

/// A 5-field cron schedule in UTC: `minute hour day-of-month month day-of-week`, each field `*`,
/// a value, a range `a-b`, a step (`*/n`, `a-b/n`, `a/n`) or a comma-separated list of these;
/// months and days of the week may be named (`jan`, `mon`; `0` and `7` are Sunday). When both
/// day fields are restricted, a day matching either matches, as in cron.
#[derive(Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day of month (resp. week) is unrestricted (starts with `*`).
    any_day: bool,
    any_weekday: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.text).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The bits of one field's text.
fn field_bits(field: CronField, text: &str, whole: &str) -> Result<u64, ScheduleError> {
    let bad = |part: &str, why: String| ScheduleError::Field {
        text: whole.to_owned(),
        field,
        part: part.to_owned(),
        why,
    };
    let (lo, hi) = field.range();
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step = s
                    .parse::<u32>()
                    .ok()
                    .filter(|n| {
                        (1..=hi.max(1)).contains(n) && s.bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(|| bad(part, format!("has a step that is not 1 to {hi}")))?;
                (r, step)
            }
            None => (part, 1),
        };
        let value = |v: &str| {
            field.value(v).ok_or_else(|| {
                let names = match field.names() {
                    [] => String::new(),
                    n => format!(" or {}–{}", n[0], n[n.len() - 1]),
                };
                bad(part, format!("is not {lo}–{hi}{names}"))
            })
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(bad(part, format!("is a range from {a} down to {b}")));
            }
            (a, b)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        let mut v = from;
        while v <= to {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, ScheduleError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount { text: text.to_owned(), found: fields.len() });
        }
        let mut bits = [0u64; 5];
        for (i, field) in CronField::ALL.into_iter().enumerate() {
            bits[i] = field_bits(field, fields[i], text)?;
        }
        // Sunday is 0 and 7.
        let weekdays = ((bits[4] | (bits[4] >> 7)) & 0x7f) as u8;
        let s = Schedule {
            text: fields.join(" "),
            minutes: bits[0],
            hours: bits[1] as u32,
            days: bits[2] as u32,
            months: bits[3] as u16,
            weekdays,
            any_day: fields[2].starts_with('*'),
            any_weekday: fields[4].starts_with('*'),
        };
        // Unless a day of the week may match instead, some chosen day of the month must exist
        // in some chosen month (February has 29 days at most).
        let longest = |m: u32| [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
        let possible = (1..=12u32)
            .filter(|m| s.months & (1 << m) != 0)
            .any(|m| (1..=longest(m)).any(|d| s.days & (1 << d) != 0));
        if s.any_weekday && !possible {
            return Err(ScheduleError::Never { text: text.to_owned() });
        }
        Ok(s)
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    fn try_from(s: String) -> Result<Self, ScheduleError> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.text
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Schedule {
    /// Whether the day `days` (since the Unix epoch) matches the day fields.
    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil_from_days(days);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7) as u32;
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => by_day || by_weekday,
            _ => by_day && by_weekday,
        }
    }

    /// The first time strictly after `t` (ns since the Unix epoch, UTC) the schedule is due: a
    /// whole minute whose fields all match. `None` if none comes within 9 years (impossible for
    /// a schedule that parsed) or the time would overflow.
    pub fn next_after(&self, t: u64) -> Option<u64> {
        let mut minute = t / NS_PER_MINUTE + 1;
        let end_day = minute / MINUTES_PER_DAY + SEARCH_DAYS;
        while minute / MINUTES_PER_DAY <= end_day {
            let day = minute / MINUTES_PER_DAY;
            if !self.day_matches(day as i64) {
                minute = (day + 1) * MINUTES_PER_DAY;
                continue;
            }
            let of_day = minute % MINUTES_PER_DAY;
            let (hour, min) = (of_day / 60, of_day % 60);
            if self.hours & (1 << hour) == 0 {
                minute = day * MINUTES_PER_DAY + (hour + 1) * 60;
                continue;
            }
            match (min..60).find(|m| self.minutes & (1 << m) != 0) {
                Some(m) => {
                    return minute.checked_sub(min)?.checked_add(m)?.checked_mul(NS_PER_MINUTE);
                }
                None => minute = day * MINUTES_PER_DAY + (hour + 1) * 60,
            }
        }
        None
    }

    /// The due times in `(after, until]` (ns): how many (counting at most `cap`), and the
    /// last one counted.
    pub fn due_between(&self, after: u64, until: u64, cap: u64) -> (u64, Option<u64>) {
        let (mut n, mut last) = (0, None);
        let mut t = after;
        while n < cap {
            match self.next_after(t) {
                Some(next) if next <= until => {
                    n += 1;
                    last = Some(next);
                    t = next;
                }
                _ => break,
            }
        }
        (n, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ns of `y-m-d h:mi:s` UTC.
    fn at(y: i64, m: u32, d: u32, h: u64, mi: u64, s: u64) -> u64 {
        let days = mission_store::layout::days_from_civil(y, m, d) as u64;
        ((days * 24 + h) * 3600 + mi * 60 + s) * 1_000_000_000
    }

    fn next(expr: &str, t: u64) -> u64 {
        expr.parse::<Schedule>().expect(expr).next_after(t).expect("due")
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let t = at(2026, 12, 7, 10, 2, 30); // a Monday
        assert_eq!(next("*/5 * * * *", t), at(2026, 12, 7, 10, 5, 0));
        assert_eq!(next("*/5 * * * *", at(2026, 12, 7, 10, 5, 0)), at(2026, 12, 7, 10, 10, 0));
        assert_eq!(next("* * * * *", t), at(2026, 12, 7, 10, 3, 0));
        assert_eq!(next("0 * * * *", t), at(2026, 12, 7, 11, 0, 0));
        assert_eq!(next("15,45 9-17 * * *", t), at(2026, 12, 7, 10, 15, 0));
        assert_eq!(next("0 9 * * sat,SUN", t), at(2026, 12, 12, 9, 0, 0));
        assert_eq!(next("0 9 * * 0", t), at(2026, 12, 13, 9, 0, 0));
        assert_eq!(next("0 9 * * 7", t), at(2026, 12, 13, 9, 0, 0));
        assert_eq!(next("0 0 1 jan *", t), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(next("0 0 29 feb *", t), at(2028, 2, 29, 0, 0, 0));
        assert_eq!(next("10-20/5 3 * * *", t), at(2026, 12, 8, 3, 10, 0));
        assert_eq!(next("50/5 * * * *", t), at(2026, 12, 7, 10, 50, 0));
        assert_eq!(next("0 0 31 * *", t), at(2026, 12, 31, 0, 0, 0));
        assert_eq!(next("0 0 31 * *", at(2026, 12, 31, 0, 0, 0)), at(2027, 1, 31, 0, 0, 0));
        // Day of month and day of week both restricted: either matches (cron's rule).
        assert_eq!(next("0 0 13 * fri", t), at(2026, 12, 11, 0, 0, 0));
        assert_eq!(next("0 0 8 * fri", t), at(2026, 12, 8, 0, 0, 0));
        // The day of month unrestricted: the day of week alone.
        assert_eq!(
            next("0 12 * * mon-fri", at(2026, 12, 11, 13, 0, 0)),
            at(2026, 12, 14, 12, 0, 0)
        );
        let s: Schedule = "0   9  *  * Mon-Fri".parse().expect("spaces");
        assert_eq!(s.to_string(), "0 9 * * Mon-Fri");
        assert_eq!(s.to_string().parse::<Schedule>(), Ok(s));
        let s: Schedule = "*/5 * * * *".parse().expect("cron");
        let (from, to) = (at(2026, 12, 7, 10, 5, 0), at(2026, 12, 7, 11, 5, 0));
        assert_eq!(s.due_between(from, to, 100), (12, Some(to)));
        assert_eq!(s.due_between(from, to, 5), (5, Some(at(2026, 12, 7, 10, 30, 0))));
        assert_eq!(s.due_between(from, from + 1, 5), (0, None));
    }

    #[test]
    fn errors_name_the_field() {
        for (bad, field, why) in [
            ("60 * * * *", Some(CronField::Minute), "is not 0–59"),
            ("* 24 * * *", Some(CronField::Hour), "is not 0–23"),
            ("* * 0 * *", Some(CronField::DayOfMonth), "is not 1–31"),
            ("* * * 13 *", Some(CronField::Month), "is not 1–12 or jan–dec"),
            ("* * * * 8", Some(CronField::DayOfWeek), "is not 0–7 or sun–sat"),
            ("* * * * funday", Some(CronField::DayOfWeek), "is not 0–7"),
            ("*/0 * * * *", Some(CronField::Minute), "step that is not 1 to 59"),
            ("*/x * * * *", Some(CronField::Minute), "step"),
            ("* 5-2 * * *", Some(CronField::Hour), "from 5 down to 2"),
            ("1,,2 * * * *", Some(CronField::Minute), "\"\""),
            ("-1 * * * *", Some(CronField::Minute), "is not 0–59"),
            ("+1 * * * *", Some(CronField::Minute), "is not 0–59"),
            ("* * * *", None, "expected 5 fields"),
            ("* * * * * *", None, "found 6"),
            ("0 0 30 feb *", None, "no day matches"),
            ("0 0 31 apr,jun *", None, "no day matches"),
        ] {
            let e = bad.parse::<Schedule>().expect_err(bad);
            let text = e.to_string();
            assert!(text.contains(why), "{bad}: {text}");
            match (field, &e) {
                (Some(f), ScheduleError::Field { field, .. }) => assert_eq!(*field, f, "{bad}"),
                (None, ScheduleError::Field { .. }) => panic!("{bad}: {e:?}"),
                (Some(_), _) => panic!("{bad}: {e:?}"),
                _ => {}
            }
            if let Some(f) = field {
                assert!(text.contains(&format!("the {} field", f.as_str())), "{text}");
            }
        }
        // Feb 30 with a weekday given matches on that weekday (either rule).
        assert!("0 0 30 feb mon".parse::<Schedule>().is_ok());
    }
}
