//! Named points in the write path where a process can be made to die on purpose, so the crash
//! harness (`tests/integration/a_killed_writer_loses_nothing_acknowledged.rs`) hits finalize,
//! rename and recovery deliberately instead of by the chance of a SIGKILL's timing.
//!
//! Only with the `crash-points` feature (enabled by the `crash_writer` example and the tests):
//! [`arm`] chooses one point and the how-many-th time it aborts the process there
//! (`std::process::abort`, which, like SIGKILL, runs no destructors and flushes nothing).
//! Without the feature, [`reach`] is an empty inline function: no cost, no way to arm.

/// A point in the write path where an armed process aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Finalize: the temporary file is complete and synced, not yet renamed into place.
    FinalizeBeforeRename,
    /// Finalize: the file is renamed into place (and its directory synced), its log segment
    /// not yet deleted.
    FinalizeBeforeLogDelete,
    /// Recovery: a dead writer's segment is rebuilt into a complete, synced temporary file,
    /// not yet renamed into place.
    RecoveryBeforeRename,
    /// Recovery: the file a dead writer's segment stands for is in place (rebuilt now, or
    /// finalized before the writer died), the segment not yet deleted.
    RecoveryBeforeLogDelete,
    /// Compaction: the merged file is complete and synced, not yet renamed into place.
    CompactBeforeRename,
    /// Compaction: the merged file is in place (and its directory synced), the files it
    /// replaces not yet deleted.
    CompactBeforeDelete,
}

#[cfg(feature = "crash-points")]
pub use armed::{arm, reach};

#[cfg(not(feature = "crash-points"))]
/// Does nothing: the `crash-points` feature is off.
#[inline(always)]
pub(crate) fn reach(_point: Point) {}

#[cfg(feature = "crash-points")]
mod armed {
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    use super::Point;

    impl Point {
        /// Every point, in the order of the write path.
        pub const ALL: [Point; 6] = [
            Point::FinalizeBeforeRename,
            Point::FinalizeBeforeLogDelete,
            Point::RecoveryBeforeRename,
            Point::RecoveryBeforeLogDelete,
            Point::CompactBeforeRename,
            Point::CompactBeforeDelete,
        ];

        /// The point's name, as [`arm`] reads it.
        pub fn name(self) -> &'static str {
            match self {
                Point::FinalizeBeforeRename => "finalize-before-rename",
                Point::FinalizeBeforeLogDelete => "finalize-before-log-delete",
                Point::RecoveryBeforeRename => "recovery-before-rename",
                Point::RecoveryBeforeLogDelete => "recovery-before-log-delete",
                Point::CompactBeforeRename => "compact-before-rename",
                Point::CompactBeforeDelete => "compact-before-delete",
            }
        }

        fn code(self) -> u8 {
            self as u8 + 1
        }
    }

    /// The armed point's code (0: none).
    static ARMED: AtomicU8 = AtomicU8::new(0);
    /// How many more times the armed point may be reached before the process aborts.
    static REMAINING: AtomicU64 = AtomicU64::new(0);

    /// Arms the point `spec` names, as `<point>:<n>`: the process aborts the `n`-th time
    /// (from 1) it reaches that point. Replaces any earlier arming.
    ///
    /// # Errors
    ///
    /// A description of what is wrong with `spec` (unknown point, missing or zero count);
    /// nothing is armed then.
    pub fn arm(spec: &str) -> Result<Point, String> {
        let (point, count) = parse(spec)?;
        REMAINING.store(count, Ordering::SeqCst);
        ARMED.store(point.code(), Ordering::SeqCst);
        Ok(point)
    }

    /// Reads `<point>:<n>`.
    fn parse(spec: &str) -> Result<(Point, u64), String> {
        let (name, count) = spec
            .split_once(':')
            .ok_or_else(|| format!("crash point {spec:?}: expected <point>:<count>"))?;
        let point = Point::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Point::ALL.iter().map(|p| p.name()).collect();
            format!("crash point {name:?}: unknown (known: {})", known.join(", "))
        })?;
        let count: u64 = count
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("crash point count {count:?}: expected an integer >= 1"))?;
        Ok((point, count))
    }

    /// Aborts the process if `point` is armed and this is the chosen time it is reached.
    #[inline]
    pub fn reach(point: Point) {
        if ARMED.load(Ordering::Relaxed) == point.code()
            && REMAINING.fetch_sub(1, Ordering::SeqCst) == 1
        {
            std::process::abort();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn specs_are_parsed_and_bad_ones_say_what_is_wrong() {
            // `parse`, not `arm`: other tests of this process finalize files.
            for point in Point::ALL {
                assert_eq!(parse(&format!("{}:3", point.name())), Ok((point, 3)));
            }
            assert!(parse("finalize-before-rename").unwrap_err().contains("<point>:<count>"));
            assert!(parse("nowhere:1").unwrap_err().contains("unknown"));
            assert!(parse("finalize-before-rename:0").unwrap_err().contains(">= 1"));
            assert!(parse("finalize-before-rename:x").unwrap_err().contains("integer"));
        }
    }
}
