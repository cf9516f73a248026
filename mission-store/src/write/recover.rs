//! [`Store::recover`]: rebuilding the files of writers that did not finish (see [`wal`]).

use crate::write::config::writer_properties;
use crate::write::wal;
use crate::{Result, Store, StoreConfig};

impl Store {
    /// Recovers what writers that are no longer running left behind (see [`wal`]): rebuilds
    /// the files of their write-ahead log segments, exactly once, deletes temporary files whose
    /// rows were in a segment, and moves what cannot be recovered under `<root>/quarantine/`.
    /// Files of running writers are left alone, so this is safe beside live writers. Every
    /// [`ParquetSink`](crate::ParquetSink) does this when it starts; then the store is opened
    /// again.
    ///
    /// # Errors
    /// [`Error::NeedsLocalRoot`](crate::Error::NeedsLocalRoot) on object storage (writers'
    /// logs are local; a writer recovers its own before it uploads);
    /// I/O or Parquet errors writing a recovered file or moving a leftover (what was done
    /// before stays done; running it again continues).
    pub fn recover(&mut self) -> Result<wal::Recovery> {
        self.require_local("recovery of a writer's log")?;
        let props = writer_properties(&StoreConfig::default())?;
        let report = wal::recover(self.root(), &props)?;
        self.reopen()?;
        Ok(report)
    }
}
