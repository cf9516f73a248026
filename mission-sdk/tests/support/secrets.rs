//! Generators of secrets and personal data for the redaction property tests (shared by
//! `governance.rs` and `otlp_export.rs`; each test binary uses part of them).
#![allow(dead_code)]

use proptest::prelude::*;

pub fn luhn_check_digit(body: &[u8]) -> u8 {
    // The digit that makes body + digit Luhn-valid.
    let mut sum = 0u32;
    for (i, d) in body.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - sum % 10) % 10) as u8
}

/// (issuer prefix, total length) of real card brands.
const BRANDS: &[(&str, usize)] = &[
    ("4", 16),
    ("4", 13),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3528", 16),
    ("36", 14),
    ("62", 17),
    ("62", 19),
];

fn digits_to_string(d: &[u8]) -> String {
    d.iter().map(|d| char::from(b'0' + d)).collect()
}

/// A Luhn-valid card number, bare or grouped by fours with spaces or dashes.
pub fn card() -> impl Strategy<Value = String> {
    (0..BRANDS.len(), proptest::collection::vec(0u8..10, 19), 0..3usize).prop_map(
        |(brand, random, grouping)| {
            let (prefix, len) = BRANDS[brand];
            let mut d: Vec<u8> = prefix.bytes().map(|c| c - b'0').collect();
            d.extend_from_slice(&random[..len - 1 - d.len()]);
            d.push(luhn_check_digit(&d));
            let s = digits_to_string(&d);
            match grouping {
                0 => s,
                g => {
                    let sep = if g == 1 { " " } else { "-" };
                    s.as_bytes()
                        .chunks(4)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(sep)
                }
            }
        },
    )
}

/// A digit run of 13–19 digits, starting like a card, that fails the Luhn check.
pub fn luhn_invalid_run() -> impl Strategy<Value = String> {
    (2u8..7, proptest::collection::vec(0u8..10, 11..=17), 1u8..10).prop_map(
        |(first, middle, bump)| {
            let mut d = vec![first];
            d.extend(middle);
            let check = luhn_check_digit(&d);
            d.push((check + bump) % 10);
            digits_to_string(&d)
        },
    )
}

pub fn email() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9._%+-]{0,14}[a-zA-Z0-9])?@[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,2}\\.[a-z]{2,6}"
}

/// An API key or token of a provider format; the second value is the secret part.
pub fn api_key() -> impl Strategy<Value = (String, String)> {
    let plain = prop_oneof![
        "sk-[A-Za-z0-9]{48}",
        "sk-proj-[A-Za-z0-9_-]{40,120}",
        "sk-ant-api03-[A-Za-z0-9_-]{80,95}",
        "AKIA[A-Z0-9]{16}",
        "ASIA[A-Z0-9]{16}",
        "gh[pousr]_[A-Za-z0-9]{36}",
        "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        "xox[bpars]-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
        "AIza[A-Za-z0-9_-]{35}",
        "(sk|rk)_(live|test)_[A-Za-z0-9]{24,99}",
        "eyJ[A-Za-z0-9_-]{10,40}\\.eyJ[A-Za-z0-9_-]{10,80}\\.[A-Za-z0-9_-]{20,60}",
    ]
    .prop_map(|k| (k.clone(), k));
    let bearer = "[A-Za-z0-9._~+/-]{20,60}".prop_map(|t| (format!("Bearer {t}"), t));
    prop_oneof![4 => plain, 1 => bearer]
}
