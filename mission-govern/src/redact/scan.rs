//! The scanners behind [`Redactor`](super::Redactor): one function per kind of value, each
//! finding the next match at or after a position. Every one works on bytes and matches ASCII
//! only, so match bounds are always on character boundaries; none allocates.

use std::net::Ipv6Addr;

use super::{RedactionRules, TokenPattern};

#[derive(Clone, Copy, Debug)]
pub(super) struct Found<'r> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) label: &'r str,
}

type Scanner = fn(&[u8], usize) -> Option<(usize, usize, &'static str)>;

fn scanners(rules: &RedactionRules) -> impl Iterator<Item = Scanner> + '_ {
    [
        (rules.secrets, find_secret as Scanner),
        (rules.emails, find_email),
        (rules.cards, find_card),
        (rules.ip_addresses, find_ipv6),
        (rules.ip_addresses, find_ipv4),
        (rules.phones, find_phone),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| f)
}

pub(super) fn any_match(rules: &RedactionRules, text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 4 {
        return false;
    }
    rules.patterns.iter().any(|p| find_pattern(p, b, 0).is_some())
        || scanners(rules).any(|f| f(b, 0).is_some())
}

/// Every match, sorted, with overlapping ones merged.
pub(super) fn find_all<'r>(rules: &'r RedactionRules, text: &str, out: &mut Vec<Found<'r>>) {
    let b = text.as_bytes();
    if b.len() < 4 {
        return;
    }
    for p in &rules.patterns {
        let mut from = 0;
        while let Some((start, end)) = find_pattern(p, b, from) {
            out.push(Found { start, end, label: &p.label });
            from = end;
        }
    }
    for f in scanners(rules) {
        let mut from = 0;
        while let Some((start, end, label)) = f(b, from) {
            out.push(Found { start, end, label });
            from = end.max(start + 1);
        }
    }
    if out.len() > 1 {
        // Earliest first, longest first; the stable sort keeps scanner priority on ties.
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut merged = 0;
        for i in 1..out.len() {
            if out[i].start < out[merged].end {
                out[merged].end = out[merged].end.max(out[i].end);
            } else {
                merged += 1;
                out[merged] = out[i];
            }
        }
        out.truncate(merged + 1);
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether position `i` starts a word (nothing, or a non-word byte, before it).
fn word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !is_word(b[i - 1])
}

fn run(b: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    b[from.min(b.len())..].iter().take_while(|c| ok(**c)).count()
}

fn find_pattern(p: &TokenPattern, b: &[u8], from: usize) -> Option<(usize, usize)> {
    let prefix = p.prefix.as_bytes();
    let mut i = from;
    while i + prefix.len() <= b.len() {
        if b[i..].starts_with(prefix) && word_start(b, i) {
            let body = run(b, i + prefix.len(), |c| is_word(c) || c == b'-');
            if body >= p.min_len.max(1) {
                return Some((i, i + prefix.len() + body));
            }
        }
        i += 1;
    }
    None
}

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// A provider's key: prefix, the alphabet of its body, and the body's length bounds.
struct KeyFormat {
    prefix: &'static [u8],
    body: fn(u8) -> bool,
    min: usize,
    max: usize,
    label: &'static str,
}

const KEY_FORMATS: &[KeyFormat] = &[
    KeyFormat {
        prefix: b"sk-ant-",
        body: key_char,
        min: 20,
        max: usize::MAX,
        label: "anthropic_key",
    },
    KeyFormat {
        prefix: b"sk-proj-",
        body: key_char,
        min: 20,
        max: usize::MAX,
        label: "openai_key",
    },
    KeyFormat { prefix: b"sk-", body: key_char, min: 20, max: usize::MAX, label: "openai_key" },
    KeyFormat { prefix: b"AKIA", body: upper_digit, min: 16, max: 16, label: "aws_key" },
    KeyFormat { prefix: b"ASIA", body: upper_digit, min: 16, max: 16, label: "aws_key" },
    KeyFormat {
        prefix: b"github_pat_",
        body: is_word,
        min: 22,
        max: usize::MAX,
        label: "github_token",
    },
    KeyFormat { prefix: b"ghp_", body: alnum, min: 30, max: 255, label: "github_token" },
    KeyFormat { prefix: b"gho_", body: alnum, min: 30, max: 255, label: "github_token" },
    KeyFormat { prefix: b"ghu_", body: alnum, min: 30, max: 255, label: "github_token" },
    KeyFormat { prefix: b"ghs_", body: alnum, min: 30, max: 255, label: "github_token" },
    KeyFormat { prefix: b"ghr_", body: alnum, min: 30, max: 255, label: "github_token" },
    KeyFormat {
        prefix: b"xoxb-",
        body: alnum_dash,
        min: 10,
        max: usize::MAX,
        label: "slack_token",
    },
    KeyFormat {
        prefix: b"xoxp-",
        body: alnum_dash,
        min: 10,
        max: usize::MAX,
        label: "slack_token",
    },
    KeyFormat {
        prefix: b"xoxa-",
        body: alnum_dash,
        min: 10,
        max: usize::MAX,
        label: "slack_token",
    },
    KeyFormat {
        prefix: b"xoxr-",
        body: alnum_dash,
        min: 10,
        max: usize::MAX,
        label: "slack_token",
    },
    KeyFormat {
        prefix: b"xoxs-",
        body: alnum_dash,
        min: 10,
        max: usize::MAX,
        label: "slack_token",
    },
    KeyFormat { prefix: b"AIza", body: key_char, min: 30, max: 64, label: "google_key" },
    KeyFormat { prefix: b"sk_live_", body: alnum, min: 10, max: usize::MAX, label: "stripe_key" },
    KeyFormat { prefix: b"rk_live_", body: alnum, min: 10, max: usize::MAX, label: "stripe_key" },
    KeyFormat { prefix: b"sk_test_", body: alnum, min: 10, max: usize::MAX, label: "stripe_key" },
    KeyFormat { prefix: b"rk_test_", body: alnum, min: 10, max: usize::MAX, label: "stripe_key" },
];

fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
}

fn find_secret(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    for i in from..b.len() {
        if !matches!(b[i], b's' | b'r' | b'A' | b'g' | b'x' | b'e' | b'B' | b'b')
            || !word_start(b, i)
        {
            continue;
        }
        if let Some(found) = secret_at(b, i) {
            return Some(found);
        }
    }
    None
}

fn secret_at(b: &[u8], i: usize) -> Option<(usize, usize, &'static str)> {
    let rest = &b[i..];
    for k in KEY_FORMATS {
        if rest.starts_with(k.prefix) {
            let body = run(b, i + k.prefix.len(), k.body);
            let end = i + k.prefix.len() + body;
            let bounded = end == b.len() || !is_word(b[end]);
            if body >= k.min && body <= k.max && bounded {
                return Some((i, end, k.label));
            }
        }
    }
    // JWT: header.payload.signature, each base64url; the header is JSON, so starts `eyJ`.
    if rest.starts_with(b"eyJ") {
        let h = run(b, i, base64url);
        if h >= 10 && b.get(i + h) == Some(&b'.') {
            let p = run(b, i + h + 1, base64url);
            if p >= 2 && b.get(i + h + 1 + p) == Some(&b'.') {
                let s = run(b, i + h + p + 2, base64url);
                return Some((i, i + h + p + 2 + s, "jwt"));
            }
        }
    }
    if rest.len() > 7 && rest[..6].eq_ignore_ascii_case(b"bearer") {
        let spaces = run(b, i + 6, |c| c == b' ' || c == b'\t');
        if spaces > 0 {
            let start = i + 6 + spaces;
            let t = run(b, start, token_char);
            if t >= 8 {
                return Some((start, start + t, "token"));
            }
        }
    }
    None
}

fn email_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}
fn email_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

fn find_email(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    let mut i = from;
    while let Some(off) = b.get(i..)?.iter().position(|c| *c == b'@') {
        let at = i + off;
        i = at + 1;
        let mut start = at;
        while start > from && email_local(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        if start == at {
            continue;
        }
        let mut end = at + 1 + run(b, at + 1, email_domain);
        // Shorten the domain until it ends in an alphabetic label of 2+ letters.
        loop {
            while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
                end -= 1;
            }
            let domain = &b[at + 1..end];
            let Some(dot) = domain.iter().rposition(|c| *c == b'.') else { break };
            let tld = &domain[dot + 1..];
            if dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
                return Some((start, end, "email"));
            }
            end = at + 1 + dot;
        }
    }
    None
}

pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Most digit groups looked at in one run (a run of single digits cannot make a card past
/// 19 groups, so this bounds the work without missing one).
const MAX_CARD_GROUPS: usize = 64;

fn find_card(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    let mut i = from;
    while i < b.len() {
        if !b[i].is_ascii_digit() || !word_start(b, i) {
            i += 1;
            continue;
        }
        // Digit groups separated by one space or dash.
        let mut groups: [(usize, usize); MAX_CARD_GROUPS] = [(0, 0); MAX_CARD_GROUPS];
        let mut n = 0;
        let mut j = i;
        loop {
            let len = run(b, j, |c| c.is_ascii_digit());
            if n < MAX_CARD_GROUPS {
                groups[n] = (j, j + len);
                n += 1;
            }
            j += len;
            if n < MAX_CARD_GROUPS
                && j + 1 < b.len()
                && matches!(b[j], b' ' | b'-')
                && b[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        let run_end = j;
        let end_ok = run_end == b.len() || !is_word(b[run_end]);
        for first in 0..n {
            let mut best = None;
            let mut digits = [0u8; 19];
            let mut count = 0;
            for (last, (s, e)) in groups[first..n].iter().enumerate().map(|(k, g)| (first + k, g)) {
                if count + (e - s) > 19 {
                    break;
                }
                for (d, c) in digits[count..].iter_mut().zip(&b[*s..*e]) {
                    *d = c - b'0';
                }
                count += e - s;
                let bounded = last + 1 < n || end_ok;
                if count >= 13 && (2..=6).contains(&digits[0]) && bounded && luhn(&digits[..count])
                {
                    best = Some(last);
                }
            }
            if let Some(last) = best {
                return Some((groups[first].0, groups[last].1, "card"));
            }
        }
        i = run_end.max(i + 1);
    }
    None
}

fn find_ipv4(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    for i in from..b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (is_word(b[i - 1]) || b[i - 1] == b'.')) {
            continue;
        }
        let mut j = i;
        let mut octets = 0;
        while octets < 4 {
            let len = run(b, j, |c| c.is_ascii_digit());
            if len == 0 || len > 3 {
                break;
            }
            let value = b[j..j + len].iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
            if value > 255 {
                break;
            }
            j += len;
            octets += 1;
            if octets < 4 {
                if b.get(j) != Some(&b'.') {
                    break;
                }
                j += 1;
            }
        }
        if octets == 4 {
            let after_ok = j == b.len()
                || !(is_word(b[j])
                    || (b[j] == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)));
            if after_ok {
                return Some((i, j, "ip"));
            }
        }
    }
    None
}

fn find_ipv6(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    let v6 = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = from;
    while i < b.len() {
        if !v6(b[i]) || (i > 0 && v6(b[i - 1])) {
            i += 1;
            continue;
        }
        let len = run(b, i, v6);
        let next = i + len;
        // `user:2001:db8::1`: a single `:` after a word separates, it is not part of it.
        let glued = i > 0 && is_word(b[i - 1]);
        let start = if glued && b[i] == b':' && b.get(i + 1) != Some(&b':') { i + 1 } else { i };
        let mut end = next;
        // The longest IPv6 text is 45 bytes (with an embedded IPv4 address).
        if (start > i || !glued) && end - start <= 45 && (end == b.len() || !is_word(b[end])) {
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            if end > start + 1 && b[end - 1] == b':' && b[end - 2] != b':' {
                end -= 1;
            }
            let candidate = &b[start..end];
            let colons = candidate.iter().filter(|c| **c == b':').count();
            // A digit too: words of hex letters (`Add::add`) are paths, not addresses.
            if colons >= 2
                && candidate.iter().any(u8::is_ascii_digit)
                && std::str::from_utf8(candidate).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
            {
                return Some((start, end, "ip"));
            }
        }
        i = next.max(i + 1);
    }
    None
}

fn phone_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

fn find_phone(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        let next_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
        let starts = (c.is_ascii_digit() || ((c == b'+' || c == b'(') && next_digit))
            && (i == 0 || !(is_word(b[i - 1]) || matches!(b[i - 1], b'.' | b'+' | b'-' | b'/')));
        if !starts {
            i += 1;
            continue;
        }
        let plus = c == b'+';
        let mut j = if c.is_ascii_digit() { i } else { i + 1 };
        let mut digits = 0;
        let mut groups = 0;
        let mut first_group = 0;
        let mut first_sep = 0u8;
        let mut all_dots = true;
        let end = loop {
            let len = run(b, j, |c| c.is_ascii_digit());
            if groups == 0 {
                first_group = len;
            }
            groups += 1;
            digits += len;
            j += len;
            let seps = run(b, j, phone_sep).min(3);
            if seps > 0 && b.get(j + seps).is_some_and(u8::is_ascii_digit) && digits <= 15 {
                if groups == 1 {
                    first_sep = b[j];
                }
                all_dots &= b[j..j + seps].iter().all(|c| *c == b'.');
                j += seps;
            } else {
                break j;
            }
        };
        let after_ok = end == b.len()
            || !(is_word(b[end])
                || b[end] == b':'
                || (matches!(b[end], b'.' | b',')
                    && b.get(end + 1).is_some_and(u8::is_ascii_digit)));
        let count_ok = if plus { (7..=15).contains(&digits) } else { (9..=15).contains(&digits) };
        let shaped = plus || groups >= 2;
        let date_like = !plus && first_group == 4 && matches!(first_sep, b'-' | b'.' | b'/');
        let ip_like = all_dots && groups == 4;
        let decimal_like = !plus && groups == 2 && first_sep == b'.';
        if after_ok && count_ok && shaped && !date_like && !ip_like && !decimal_like {
            return Some((i, end, "phone"));
        }
        i = end.max(i + 1);
    }
    None
}
