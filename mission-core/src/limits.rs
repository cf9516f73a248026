//! The bounds every recorded value is held to, so no caller can make the recorder's memory grow
//! without limit. A value over its bound is truncated and marked, never dropped silently.

use std::borrow::Cow;

/// Most bytes of an interned name or attribute key.
pub const MAX_NAME_BYTES: usize = 256;
/// Most bytes of a text value (log message, error message, permission resource).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most bytes of a string attribute value.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4 * 1024;
/// Most attributes one event carries; further ones are counted in
/// [`Attributes::dropped`](crate::Attributes::dropped).
pub const MAX_ATTRIBUTES: usize = 32;
/// Most bytes of a score's name (it is interned: keep names few and short).
pub const MAX_SCORE_NAME_BYTES: usize = 128;
/// Most bytes of a score's label.
pub const MAX_SCORE_LABEL_BYTES: usize = 256;
/// Most bytes of a score's comment (its explanation).
pub const MAX_SCORE_COMMENT_BYTES: usize = 4 * 1024;
/// Appended to a truncated string.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// `s` itself if it fits in `max` bytes; otherwise its longest prefix that ends on a character
/// boundary and leaves room for [`TRUNCATION_MARKER`], followed by the marker.
pub fn truncate_with_marker(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARKER.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + TRUNCATION_MARKER.len());
    out.push_str(&s[..cut]);
    out.push_str(TRUNCATION_MARKER);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(100);
        let t = truncate_with_marker(&s, 51);
        assert!(t.len() <= 51);
        assert!(t.ends_with(TRUNCATION_MARKER));
        assert_eq!(truncate_with_marker("short", 10), "short");
    }
}
