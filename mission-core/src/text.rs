//! [`Text`]: a string value an event carries by value, bounded in size.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::Symbol;
use crate::limits::{MAX_TEXT_BYTES, truncate_with_marker};

/// A string carried by an event: empty, a `&'static str` (no allocation), or a shared heap
/// string. Built from a borrowed string it is truncated to a bound with a visible marker, so a
/// caller cannot make one event arbitrarily large.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum Text {
    /// The empty string.
    #[default]
    Empty,
    /// A string that lives for the whole process (literals, interned names): no allocation.
    Static(&'static str),
    /// A shared copy of a string from the caller.
    Shared(Arc<str>),
}

impl Text {
    /// A copy of `s`, truncated to [`MAX_TEXT_BYTES`](crate::limits::MAX_TEXT_BYTES).
    pub fn new(s: &str) -> Self {
        Self::bounded(s, MAX_TEXT_BYTES)
    }

    /// A copy of `s`, truncated to `max` bytes with a marker.
    pub fn bounded(s: &str, max: usize) -> Self {
        if s.is_empty() {
            return Text::Empty;
        }
        Text::Shared(Arc::from(truncate_with_marker(s, max).as_ref()))
    }

    /// A static string; no allocation.
    pub const fn from_static(s: &'static str) -> Self {
        Text::Static(s)
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            Text::Empty => "",
            Text::Static(s) => s,
            Text::Shared(s) => s,
        }
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
            Text::Shared(Arc::from(s))
        } else {
            Text::new(&s)
        }
    }
}

impl From<Symbol> for Text {
    fn from(s: Symbol) -> Self {
        if s.is_empty() {
            Text::Empty
        } else {
            Text::Static(s.as_str())
        }
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
        assert_eq!(Text::new(""), Text::Empty);
        assert_eq!(Text::from_static("x").as_str(), "x");
        assert_eq!(Text::from(String::from("hello")).as_str(), "hello");
    }
}
