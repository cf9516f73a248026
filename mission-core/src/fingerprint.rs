//! Fingerprints: a 64-bit FNV-1a hash of a call's canonical text (a tool call's arguments as
//! JSON, an LLM request's model and messages), so repeated calls can be told apart from new
//! ones without keeping what they said. A fingerprint is not content: it is kept when content
//! capture is off, and directives count repeats of it (`3 same tool calls in a thread`).
//!
//! The hash is rendered as 16 lowercase hex digits in the attributes of [`attr`].
//!
//! ```
//! use mission_core::fingerprint::{fingerprint, hex, parse_hex};
//! let h = fingerprint(br#"{"query":"weather in Paris"}"#);
//! assert_eq!(hex(h).len(), 16);
//! assert_eq!(parse_hex(&hex(h)), Some(h));
//! assert_ne!(h, fingerprint(br#"{"query":"weather in Rome"}"#));
//! ```

/// Most bytes of input a fingerprint reads: longer input is hashed on its first 1 MiB (so a
/// huge argument costs a bounded time on the agent's thread).
pub const MAX_FINGERPRINT_INPUT: usize = 1 << 20;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Attribute keys of fingerprints (values: 16 lowercase hex digits).
pub mod attr {
    /// On a tool call: the fingerprint of its arguments (their JSON text).
    pub const TOOL_ARGS_HASH: &str = "mission.tool.args_hash";
    /// On an LLM call: the fingerprint of its canonical request (model and messages).
    pub const LLM_REQUEST_HASH: &str = "mission.llm.request_hash";
}

/// FNV-1a 64 of `bytes` (of their first [`MAX_FINGERPRINT_INPUT`] bytes).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    fold(OFFSET, bytes)
}

/// The fingerprint of several parts together, each followed by its length so that parts
/// cannot run into each other (`("ab", "c")` and `("a", "bc")` differ). Each part is read up
/// to [`MAX_FINGERPRINT_INPUT`] bytes.
pub fn fingerprint_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    parts.into_iter().fold(OFFSET, |h, part| {
        let len = part.len().min(MAX_FINGERPRINT_INPUT) as u64;
        fold(fold(h, part), &len.to_le_bytes())
    })
}

fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in &bytes[..bytes.len().min(MAX_FINGERPRINT_INPUT)] {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// A fingerprint as attributes carry it: 16 lowercase hex digits.
pub fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// A fingerprint read back from [`hex`] text; `None` unless it is 16 hex digits.
pub fn parse_hex(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_64_reference_values() {
        // Test vectors of the FNV reference (draft-eastlake-fnv).
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fingerprint(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(hex(fingerprint(b"a")), "af63dc4c8601ec8c");
        assert_eq!(hex(1), "0000000000000001");
        assert_eq!(parse_hex("af63dc4c8601ec8c"), Some(0xaf63_dc4c_8601_ec8c));
        for bad in
            ["", "af63dc4c8601ec8", "af63dc4c8601ec8cc", "zf63dc4c8601ec8c", "+f63dc4c8601ec8c"]
        {
            assert_eq!(parse_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn input_is_capped_and_parts_do_not_run_together() {
        let big = vec![b'x'; MAX_FINGERPRINT_INPUT + 10];
        assert_eq!(fingerprint(&big), fingerprint(&big[..MAX_FINGERPRINT_INPUT]));
        let ab_c = fingerprint_parts([&b"ab"[..], b"c"]);
        assert_ne!(ab_c, fingerprint_parts([&b"a"[..], b"bc"]));
        assert_eq!(ab_c, fingerprint_parts([&b"ab"[..], b"c"]));
    }
}
