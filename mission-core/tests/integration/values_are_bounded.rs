use mission_core::limits::{
    MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES, MAX_NAME_BYTES, MAX_TEXT_BYTES, TRUNCATION_MARKER,
};
use mission_core::{AttrValue, Attributes, Symbol, Text};
use proptest::prelude::*;

proptest! {
    #[test]
    fn interning_any_string_never_panics(s in any::<String>(), big in prop::collection::vec(any::<char>(), 0..2_000)) {
        let huge: String = big.into_iter().collect();
        for input in [s.as_str(), huge.as_str(), "", "名前", "🦀🦀🦀"] {
            let sym = Symbol::intern(input);
            let back = sym.as_str();
            prop_assert!(back.len() <= MAX_NAME_BYTES);
            if input.len() <= MAX_NAME_BYTES {
                prop_assert_eq!(back, input);
                prop_assert_eq!(Symbol::intern(input), sym);
            } else {
                prop_assert!(back.ends_with(TRUNCATION_MARKER));
                prop_assert!(input.starts_with(&back[..back.len() - TRUNCATION_MARKER.len()]));
            }
        }
    }

    #[test]
    fn text_is_bounded_and_marked(chars in prop::collection::vec(any::<char>(), 0..40_000)) {
        let s: String = chars.into_iter().collect();
        let t = Text::new(&s);
        prop_assert!(t.len() <= MAX_TEXT_BYTES);
        if s.len() > MAX_TEXT_BYTES {
            prop_assert!(t.ends_with(TRUNCATION_MARKER));
        } else {
            prop_assert_eq!(t.as_str(), s.as_str());
        }
    }

    #[test]
    fn attributes_are_bounded_and_overflow_is_counted(
        entries in prop::collection::vec((any::<String>(), any::<String>()), 0..80),
    ) {
        let mut attrs = Attributes::new();
        let mut distinct = std::collections::HashSet::new();
        let mut refused = 0u32;
        for (k, v) in &entries {
            let key = Symbol::intern(k);
            let fresh = !distinct.contains(&key);
            if !attrs.set(key, AttrValue::string(v)) {
                prop_assert!(fresh && distinct.len() >= MAX_ATTRIBUTES);
                refused += 1;
            } else {
                distinct.insert(key);
            }
        }
        prop_assert!(attrs.len() <= MAX_ATTRIBUTES);
        prop_assert_eq!(attrs.len(), distinct.len());
        prop_assert_eq!(attrs.dropped(), refused.min(255));
        for a in attrs.iter() {
            if let AttrValue::Str(s) = &a.value {
                prop_assert!(s.len() <= MAX_ATTRIBUTE_VALUE_BYTES);
            }
        }
    }
}
