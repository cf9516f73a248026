//! A small log-linear latency histogram: bounded memory whatever a window holds. Used by the
//! dashboard's charts and the MCP `forecast` tool.

/// Sub-buckets per power of two: values are kept to within 1/16 (about 6 %) of themselves.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped to 2^44 ns (about 4.9 hours).
const MAX_BITS: u32 = 44;

/// A log-linear histogram of durations in ns: counts in at most 660 buckets, grown on demand.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    counts: Vec<u32>,
    total: u64,
}

fn index(v: u64) -> usize {
    let v = v.clamp(1, (1 << MAX_BITS) - 1);
    let msb = 63 - v.leading_zeros();
    if msb < SUB_BITS {
        return v as usize;
    }
    let shift = msb - SUB_BITS;
    (((shift + 1) as u64) << SUB_BITS) as usize + ((v >> shift) & (SUB - 1)) as usize
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i >> SUB_BITS) - 1;
    let low = (SUB + (i & (SUB - 1))) << shift;
    low + (1u64 << shift) / 2
}

impl Histogram {
    /// Counts one duration.
    pub(crate) fn record(&mut self, ns: i64) {
        let i = index(u64::try_from(ns).unwrap_or(0));
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
    }

    /// Durations counted.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0–1) in ms; 0 when empty.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return value(i) as f64 / 1e6;
            }
        }
        value(self.counts.len().saturating_sub(1)) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_precision() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(ms * 1_000_000);
        }
        assert_eq!(h.count(), 100);
        for (q, want) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = h.quantile_ms(q);
            assert!((got - want).abs() / want < 0.07, "q{q}: {got} vs {want}");
        }
        let mut small = Histogram::default();
        small.record(3);
        small.record(-5);
        assert_eq!(small.quantile_ms(1.0), 3e-6);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
        for v in [1u64, 15, 16, 17, 1000, 123_456_789, u64::MAX] {
            let i = index(v);
            assert!(i < 700, "{v} → {i}");
            let mid = value(i) as f64;
            let v = v.min((1 << MAX_BITS) - 1) as f64;
            assert!((mid - v).abs() / v <= 1.0 / 16.0 + 1e-9, "{v} → {mid}");
        }
    }
}
