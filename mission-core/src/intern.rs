//! String interning: names, attribute keys and other low-cardinality strings become a 4-byte
//! [`Symbol`], so an event carries no heap string for them and recording a span whose name was
//! seen before allocates nothing.
//!
//! The table is process-wide and append-only. Interned strings live for the rest of the
//! process, so both the number of symbols and their total bytes are bounded
//! ([`MAX_SYMBOLS`], [`MAX_SYMBOL_BYTES`]); past either bound, [`Symbol::intern`] returns
//! [`Symbol::OVERFLOW`] and counts it ([`interner_stats`]) rather than grow without limit.
//! High-cardinality values (user ids, messages) belong in [`Text`](crate::Text), not here.
//!
//! Cost: resolving a symbol is two atomic loads; interning a string this OS thread has seen
//! before is one hash lookup in a thread-local cache; a [`LazySymbol`] in a `static` is one
//! atomic load.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock};

use rustc_hash::FxHasher;

use crate::limits::{self, MAX_NAME_BYTES};

/// Most symbols a process can hold (about one million).
pub const MAX_SYMBOLS: usize = 1 << 20;
/// Most bytes all interned strings together may take.
pub const MAX_SYMBOL_BYTES: usize = 64 << 20;

const SEGMENT_BITS: u32 = 12;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
const SEGMENTS: usize = MAX_SYMBOLS / SEGMENT_LEN;
const THREAD_CACHE_MAX: usize = 4096;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A fixed-size block of the resolve table, allocated when the first symbol lands in it.
type Segment = Box<[OnceLock<&'static str>]>;

/// An interned string: 4 bytes, `Copy`, compared and hashed as an integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Symbol(u32);

impl Symbol {
    /// The empty string.
    pub const EMPTY: Symbol = Symbol(0);
    /// Stands for any string interned after the table reached its bounds: `"(overflow)"`.
    pub const OVERFLOW: Symbol = Symbol(1);

    /// Interns `s` (truncated to [`MAX_NAME_BYTES`] with a marker if longer).
    ///
    /// O(1) expected; allocates only the first time the process sees `s`.
    pub fn intern(s: &str) -> Symbol {
        if s.is_empty() {
            return Symbol::EMPTY;
        }
        let hit = THREAD_CACHE
            .try_with(|cache| cache.try_borrow().ok().and_then(|c| c.get(s).copied()))
            .ok()
            .flatten();
        if let Some(sym) = hit {
            return sym;
        }
        let (stored, sym) = interner().intern_slow(s);
        if sym != Symbol::OVERFLOW {
            let _ = THREAD_CACHE.try_with(|cache| {
                if let Ok(mut c) = cache.try_borrow_mut() {
                    if c.len() >= THREAD_CACHE_MAX {
                        c.clear();
                    }
                    c.insert(stored, sym);
                }
            });
        }
        sym
    }

    /// The string this symbol stands for. O(1), no allocation, no lock.
    #[inline]
    pub fn as_str(self) -> &'static str {
        interner().resolve(self)
    }

    /// The raw index (stable for the life of the process only).
    pub const fn index(self) -> u32 {
        self.0
    }

    /// Whether this is the empty string.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol::intern(s)
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Symbol::intern(&s))
    }
}

/// A symbol interned on first use, for `static`s at instrumentation sites:
///
/// ```
/// use mission_core::LazySymbol;
/// static LOOKUP: LazySymbol = LazySymbol::new("lookup_order");
/// assert_eq!(LOOKUP.get().as_str(), "lookup_order");
/// ```
///
/// After the first call, [`get`](LazySymbol::get) is one atomic load.
#[derive(Debug)]
pub struct LazySymbol {
    name: &'static str,
    symbol: AtomicU32,
}

impl LazySymbol {
    /// A symbol for `name`, interned the first time it is used.
    pub const fn new(name: &'static str) -> Self {
        Self { name, symbol: AtomicU32::new(u32::MAX) }
    }

    /// The symbol. O(1), no allocation after the first call.
    #[inline]
    pub fn get(&self) -> Symbol {
        let raw = self.symbol.load(Ordering::Relaxed);
        if raw != u32::MAX {
            return Symbol(raw);
        }
        let sym = Symbol::intern(self.name);
        self.symbol.store(sym.0, Ordering::Relaxed);
        sym
    }
}

/// Counters of the process-wide symbol table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InternerStats {
    /// Symbols interned so far (including the two built-in ones).
    pub symbols: usize,
    /// Bytes of interned strings.
    pub bytes: usize,
    /// Calls that got [`Symbol::OVERFLOW`] because the table was full.
    pub overflows: u64,
    /// Strings truncated to [`MAX_NAME_BYTES`] before interning.
    pub truncated: u64,
}

/// The symbol table's counters right now.
pub fn interner_stats() -> InternerStats {
    let i = interner();
    InternerStats {
        symbols: i.len.load(Ordering::Acquire) as usize,
        bytes: i.bytes.load(Ordering::Relaxed),
        overflows: i.overflows.load(Ordering::Relaxed),
        truncated: i.truncated.load(Ordering::Relaxed),
    }
}

thread_local! {
    static THREAD_CACHE: RefCell<FxMap<&'static str, Symbol>> = RefCell::new(FxMap::default());
}

struct Interner {
    map: RwLock<FxMap<&'static str, Symbol>>,
    segments: Box<[OnceLock<Segment>]>,
    len: AtomicU32,
    bytes: AtomicUsize,
    overflows: AtomicU64,
    truncated: AtomicU64,
}

fn interner() -> &'static Interner {
    static INTERNER: OnceLock<Interner> = OnceLock::new();
    INTERNER.get_or_init(|| {
        let i = Interner {
            map: RwLock::new(FxMap::default()),
            segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(),
            len: AtomicU32::new(0),
            bytes: AtomicUsize::new(0),
            overflows: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
        };
        i.push("");
        i.push("(overflow)");
        i
    })
}

impl Interner {
    /// Appends `s` to the resolve table (caller holds the map's write lock, or is `init`).
    fn push(&self, s: &'static str) -> Symbol {
        let index = self.len.load(Ordering::Acquire) as usize;
        let segment = self.segments[index >> SEGMENT_BITS]
            .get_or_init(|| (0..SEGMENT_LEN).map(|_| OnceLock::new()).collect());
        let _ = segment[index & (SEGMENT_LEN - 1)].set(s);
        self.len.store(index as u32 + 1, Ordering::Release);
        self.bytes.fetch_add(s.len(), Ordering::Relaxed);
        Symbol(index as u32)
    }

    fn resolve(&self, sym: Symbol) -> &'static str {
        let index = sym.0 as usize;
        self.segments
            .get(index >> SEGMENT_BITS)
            .and_then(OnceLock::get)
            .and_then(|segment| segment[index & (SEGMENT_LEN - 1)].get())
            .copied()
            .unwrap_or("")
    }

    fn intern_slow(&self, s: &str) -> (&'static str, Symbol) {
        let truncated = limits::truncate_with_marker(s, MAX_NAME_BYTES);
        if truncated.len() != s.len() {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let s: &str = &truncated;
        if let Some((&stored, &sym)) = read(&self.map).get_key_value(s) {
            return (stored, sym);
        }
        let mut map = self.map.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((&stored, &sym)) = map.get_key_value(s) {
            return (stored, sym);
        }
        let len = self.len.load(Ordering::Acquire) as usize;
        if len >= MAX_SYMBOLS || self.bytes.load(Ordering::Relaxed) + s.len() > MAX_SYMBOL_BYTES {
            self.overflows.fetch_add(1, Ordering::Relaxed);
            return ("(overflow)", Symbol::OVERFLOW);
        }
        let stored: &'static str = Box::leak(s.to_owned().into_boxed_str());
        let sym = self.push(stored);
        map.insert(stored, sym);
        (stored, sym)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_string_same_symbol() {
        let a = Symbol::intern("llm_call");
        let b = Symbol::intern(&String::from("llm_call"));
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "llm_call");
        assert_ne!(a, Symbol::intern("tool_call"));
        assert_eq!(Symbol::intern(""), Symbol::EMPTY);
        assert_eq!(Symbol::EMPTY.as_str(), "");
        assert_eq!(Symbol::OVERFLOW.as_str(), "(overflow)");
    }

    #[test]
    fn symbols_resolve_from_other_threads() {
        let sym =
            std::thread::spawn(|| Symbol::intern("made-on-another-thread")).join().expect("thread");
        assert_eq!(sym.as_str(), "made-on-another-thread");
        assert_eq!(Symbol::intern("made-on-another-thread"), sym);
    }

    #[test]
    fn long_names_are_truncated_with_marker() {
        let long = "x".repeat(MAX_NAME_BYTES * 3);
        let sym = Symbol::intern(&long);
        assert!(sym.as_str().len() <= MAX_NAME_BYTES);
        assert!(sym.as_str().ends_with(limits::TRUNCATION_MARKER));
        assert!(interner_stats().truncated >= 1);
    }

    #[test]
    fn lazy_symbol() {
        static NAME: LazySymbol = LazySymbol::new("lazy-name");
        assert_eq!(NAME.get(), Symbol::intern("lazy-name"));
        assert_eq!(NAME.get(), NAME.get());
    }
}
