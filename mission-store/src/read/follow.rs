//! [`Follower`]: a store followed as it grows, like `tail -f` — the finalized files that
//! appeared since the last poll, and their rows.
//!
//! Files are finalized atomically (written under a temporary name, renamed when complete), so
//! a file that appears in the listing is whole and never changes: following is listing the
//! store again and reading the files not seen yet. A follower remembers the paths it has seen,
//! pruned to those still present (retention and erasure remove files) — never the rows — so
//! its memory follows the store's size, however long it runs.
//!
//! ```
//! use mission_core::{Pipeline, SpanKind, Symbol, ThreadContext};
//! use mission_store::{Follower, ParquetSink, StoreConfig};
//!
//! let root = std::env::temp_dir().join(format!("mission-follow-doc-{}", std::process::id()));
//! let mut follower = Follower::new(&root).scoped("acme");
//! assert!(follower.poll_files()?.is_empty()); // nothing yet
//!
//! let pipeline = Pipeline::builder().with_sink(ParquetSink::new(StoreConfig::at(&root))?).start()?;
//! let recorder = pipeline.recorder();
//! for tenant in ["acme", "globex"] {
//!     let thread = ThreadContext::new(Symbol::intern(tenant), Symbol::intern("support-bot"));
//!     let span = recorder.start_span(&thread, SpanKind::ToolCall, Symbol::intern("web_search"), None);
//!     span.end();
//! }
//! pipeline.shutdown();
//!
//! let polled = follower.poll_rows(None)?; // acme's new rows only
//! assert_eq!(polled.rows.len(), 1);
//! assert_eq!(polled.rows[0].tenant, "acme");
//! assert!(follower.poll_rows(None)?.rows.is_empty()); // each file once
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::read::decode::{EventFile, EventRow};
use crate::read::store::{SkippedFile, Store, StoreFile};
use crate::write::compact;

/// The row ranges `(first, count)` of `total` rows not covered by `covered` (possibly
/// overlapping).
fn complement(covered: &[(u64, u64)], total: u64) -> Vec<(u64, u64)> {
    let mut sorted = covered.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0u64;
    for (first, count) in sorted {
        if first > at {
            out.push((at, first - at));
        }
        at = at.max(first.saturating_add(count));
    }
    if total > at {
        out.push((at, total - at));
    }
    out.retain(|r| r.0 < total);
    for r in &mut out {
        r.1 = r.1.min(total - r.0);
    }
    out
}

/// A store followed as it grows (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Follower {
    root: PathBuf,
    tenant: Option<String>,
    seen: HashSet<PathBuf>,
    max_files: usize,
}

/// What [`Follower::poll_rows`] read.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Polled {
    /// The rows of the new files, oldest first (by event time, then in file order).
    pub rows: Vec<EventRow>,
    /// New files that could not be read (corrupt, foreign, newer schema): skipped, not retried.
    pub skipped: Vec<SkippedFile>,
}

impl Follower {
    /// Follows the store at `root` (which need not exist yet). The first poll returns the files
    /// already there; call [`skip_existing`](Self::skip_existing) to start after them.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
            tenant: None,
            seen: HashSet::new(),
            max_files: usize::MAX,
        }
    }

    /// Follows `tenant`'s partitions only (see [`Store::scoped`]).
    pub fn scoped(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// Follows `tenant`'s partitions only, or every tenant's for `None`.
    pub fn scoped_to(mut self, tenant: Option<&str>) -> Self {
        self.tenant = tenant.map(str::to_owned);
        self
    }

    /// Returns at most `n` new files per poll (at least 1); the others wait for the next poll,
    /// oldest first. Unlimited by default.
    pub fn with_max_files(mut self, n: usize) -> Self {
        self.max_files = n.max(1);
        self
    }

    /// The tenant this follower is scoped to; `None` follows every tenant.
    pub fn scope(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Marks every file the store holds now as seen, so polls return only files that appear
    /// later; returns the store as it was opened (scoped), whose files are the backlog.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if a directory cannot be listed.
    pub fn skip_existing(&mut self) -> Result<Store> {
        let store = self.open()?;
        self.seen = store.files().iter().map(|f| f.path.clone()).collect();
        Ok(store)
    }

    fn open(&self) -> Result<Store> {
        Store::open_scoped(&self.root, self.tenant.as_deref())
    }

    /// The finalized files that appeared since the last poll (each returned once), oldest
    /// partition first, then in path order (the order files of a writer were finalized in).
    ///
    /// Cost: one listing of the store.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if a directory cannot be listed.
    pub fn poll_files(&mut self) -> Result<Vec<StoreFile>> {
        let store = self.open()?;
        let present: HashSet<&Path> = store.files().iter().map(|f| f.path.as_path()).collect();
        let mut new: Vec<StoreFile> =
            store.files().iter().filter(|f| !self.seen.contains(&f.path)).cloned().collect();
        // A new merged file holds rows of files this follower may have delivered already:
        // only the rows of the others are new. Decided before forgetting what is gone, since
        // its inputs are gone now.
        let mut sources_of_new: Vec<PathBuf> = Vec::new();
        for file in &mut new {
            let name = file.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(dir) = file.path.parent() else { continue };
            if !compact::is_compacted_name(name) {
                continue;
            }
            let (sources, total) = compact::read_sources_and_rows(&file.path).unwrap_or_default();
            let delivered: Vec<(u64, u64)> = sources
                .iter()
                .filter(|s| self.seen.contains(&dir.join(&s.file)))
                .map(|s| (s.first_row, s.rows))
                .collect();
            sources_of_new.extend(sources.iter().map(|s| dir.join(&s.file)));
            if !delivered.is_empty() {
                file.rows = Some(complement(&delivered, total));
            }
        }
        // Forget files that are gone (retention, erasure, compaction) unless a merged file not
        // delivered yet replaces them: memory follows the store's size.
        let keep: HashSet<PathBuf> = sources_of_new.into_iter().collect();
        self.seen.retain(|p| present.contains(p.as_path()) || keep.contains(p));
        new.sort_by(|a, b| {
            (a.partition.start_ns(), &a.path).cmp(&(b.partition.start_ns(), &b.path))
        });
        new.truncate(self.max_files);
        self.seen.extend(new.iter().map(|f| f.path.clone()));
        // A merged file whose every row was delivered already has nothing new.
        new.retain(|f| f.rows.as_ref().is_none_or(|r| !r.is_empty()));
        Ok(new)
    }

    /// The rows of the files that appeared since the last poll (see
    /// [`poll_files`](Self::poll_files)), decoded, reading only `columns` (`None`: all).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if a directory cannot be listed. A file that cannot be
    /// read is reported in [`Polled::skipped`], not an error.
    pub fn poll_rows(&mut self, columns: Option<&[&str]>) -> Result<Polled> {
        let mut polled = Polled::default();
        for file in self.poll_files()? {
            let start = polled.rows.len();
            let read = EventFile::open(&file).and_then(|f| f.rows(columns)).and_then(|rows| {
                for row in rows {
                    polled.rows.push(row?);
                }
                Ok(())
            });
            if let Err(e) = read {
                // A file damaged inside: what was read of it is dropped, the file reported.
                polled.rows.truncate(start);
                let reason = e.to_string();
                polled.skipped.push(SkippedFile { path: file.path, reason, rows: None });
            }
        }
        polled.rows.sort_by_key(|r| r.time_ns);
        Ok(polled)
    }
}
