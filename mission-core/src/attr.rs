//! Typed attributes: a bounded set of `key = value` pairs on every event.

use std::fmt;

use crate::limits::{MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES};
use crate::{Symbol, Text};

/// An attribute value: string, integer, float or boolean (OpenTelemetry's scalar types).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string, bounded to [`MAX_ATTRIBUTE_VALUE_BYTES`].
    Str(Text),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Default for AttrValue {
    fn default() -> Self {
        AttrValue::Bool(false)
    }
}

impl AttrValue {
    /// A string value copied from `s`, truncated with a marker if longer than
    /// [`MAX_ATTRIBUTE_VALUE_BYTES`].
    pub fn string(s: &str) -> Self {
        AttrValue::Str(Text::bounded(s, MAX_ATTRIBUTE_VALUE_BYTES))
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::string(s)
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::string(&s)
    }
}
impl From<Text> for AttrValue {
    fn from(s: Text) -> Self {
        AttrValue::Str(s)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<u32> for AttrValue {
    fn from(v: u32) -> Self {
        AttrValue::Int(v.into())
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(s) => serializer.serialize_str(s),
            AttrValue::Int(v) => serializer.serialize_i64(*v),
            AttrValue::Float(v) => serializer.serialize_f64(*v),
            AttrValue::Bool(v) => serializer.serialize_bool(*v),
        }
    }
}

/// One attribute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attribute {
    /// The interned key.
    pub key: Symbol,
    /// The value.
    pub value: AttrValue,
}

/// Up to [`MAX_ATTRIBUTES`] attributes; past the bound they are counted in
/// [`dropped`](Self::dropped), never lost silently. Setting a key that is already present
/// replaces its value.
///
/// 8 bytes when empty (an event without attributes allocates nothing); the first attribute
/// allocates the list.
#[derive(Clone, Default, PartialEq)]
pub struct Attributes(Option<Box<AttributeList>>);

#[derive(Clone, Default, PartialEq)]
struct AttributeList {
    items: Vec<Attribute>,
    dropped: u32,
}

impl Attributes {
    /// An empty set. No allocation.
    pub const fn new() -> Self {
        Self(None)
    }

    /// Number of attributes held.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.items.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Attributes refused because the set was full.
    pub fn dropped(&self) -> u32 {
        self.0.as_ref().map_or(0, |l| l.dropped)
    }

    /// Sets `key` to `value`, replacing an existing value for the same key. Returns false (and
    /// counts it) when the set already holds [`MAX_ATTRIBUTES`] other keys.
    pub fn set(&mut self, key: Symbol, value: impl Into<AttrValue>) -> bool {
        let value = value.into();
        let list = self.0.get_or_insert_with(|| {
            Box::new(AttributeList { items: Vec::with_capacity(4), dropped: 0 })
        });
        if let Some(existing) = list.items.iter_mut().find(|a| a.key == key) {
            existing.value = value;
            true
        } else if list.items.len() < MAX_ATTRIBUTES {
            list.items.push(Attribute { key, value });
            true
        } else {
            list.dropped = list.dropped.saturating_add(1);
            false
        }
    }

    /// The value for `key`, if set.
    pub fn get(&self, key: Symbol) -> Option<&AttrValue> {
        self.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    /// The attributes in the order they were first set.
    pub fn iter(&self) -> std::slice::Iter<'_, Attribute> {
        self.0.as_ref().map_or(&[][..], |l| &l.items[..]).iter()
    }

    /// Removes every attribute.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for a in self.iter() {
            map.entry(&a.key.as_str(), &a.value);
        }
        if self.dropped() > 0 {
            map.entry(&"(dropped)", &self.dropped());
        }
        map.finish()
    }
}

impl serde::Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for a in self.iter() {
            map.serialize_entry(a.key.as_str(), &a.value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replace_spill_and_bound() {
        let mut attrs = Attributes::new();
        assert!(attrs.is_empty());
        for i in 0..MAX_ATTRIBUTES {
            assert!(attrs.set(Symbol::intern(&format!("k{i}")), i as i64));
        }
        assert_eq!(attrs.len(), MAX_ATTRIBUTES);
        assert!(!attrs.set(Symbol::intern("one-too-many"), true));
        assert_eq!(attrs.dropped(), 1);
        assert!(attrs.set(Symbol::intern("k0"), "replaced"));
        assert_eq!(attrs.get(Symbol::intern("k0")), Some(&AttrValue::string("replaced")));
        assert_eq!(attrs.get(Symbol::intern("k31")), Some(&AttrValue::Int(31)));
        assert_eq!(attrs.len(), MAX_ATTRIBUTES);
        attrs.clear();
        assert!(attrs.is_empty());
    }
}
