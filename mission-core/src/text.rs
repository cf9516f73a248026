//! [`Text`]: a string value an event carries by value, bounded in size.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::Symbol;
use crate::limits::{MAX_TEXT_BYTES, truncate_with_marker};

/// A string carried by an event: empty, or a shared copy of the caller's string. 16 bytes.
/// Built from a borrowed string it is truncated to a bound with a visible marker, so a caller
/// cannot make one event arbitrarily large.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Option<Arc<str>>);

impl Text {
    /// The empty string (no allocation).
    pub const EMPTY: Text = Text(None);

    /// A copy of `s`, truncated to [`MAX_TEXT_BYTES`](crate::limits::MAX_TEXT_BYTES).
    pub fn new(s: &str) -> Self {
        Self::bounded(s, MAX_TEXT_BYTES)
    }

    /// A copy of `s`, truncated to `max` bytes with a marker.
    pub fn bounded(s: &str, max: usize) -> Self {
        if s.is_empty() {
            return Text(None);
        }
        Text(Some(Arc::from(truncate_with_marker(s, max).as_ref())))
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() <= MAX_TEXT_BYTES && !s.is_empty() {
            Text(Some(Arc::from(s)))
        } else {
            Text::new(&s)
        }
    }
}

impl From<Symbol> for Text {
    fn from(s: Symbol) -> Self {
        Text::new(s.as_str())
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Text::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::TRUNCATION_MARKER;

    #[test]
    fn bounded_and_marked() {
        let t = Text::new(&"a".repeat(MAX_TEXT_BYTES + 10));
        assert!(t.len() <= MAX_TEXT_BYTES);
        assert!(t.ends_with(TRUNCATION_MARKER));
        assert_eq!(Text::new(""), Text::EMPTY);
        assert_eq!(std::mem::size_of::<Text>(), 16);
        assert_eq!(Text::from(String::from("hello")).as_str(), "hello");
    }
}
