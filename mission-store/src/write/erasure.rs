//! Erasure: rewriting files without the events of a thread or of an attribute value (a user's
//! erasure request), atomically per file.

use std::fs::{self, File};
use std::path::Path;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::layout::TEMP_SUFFIX;
use crate::read::decode::{EventFile, attribute_matches, string_column};
use crate::schema::{self, col};
use crate::write::compact;
use crate::{Error, Result, Store};

impl Store {
    /// Rewrites every file holding events of `thread_id` (32 hex digits) without them,
    /// atomically per file; returns how many events were erased.
    ///
    /// On object storage it is a rewrite job: each object holding such events is downloaded
    /// to a scratch directory, rewritten without them and put back under its key (a `PUT`
    /// replaces an object atomically, so readers see the old or the new file, never half);
    /// run it again after an interruption. Erase the writer's local directory too (files not
    /// uploaded yet, or kept with `keep_local`), or they bring the events back.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed id; I/O, Parquet or object-storage errors of a
    /// rewrite (the file or object is then left as it was).
    pub fn erase_thread(&mut self, thread_id: &str) -> Result<u64> {
        thread_id
            .parse::<mission_core::ThreadId>()
            .map_err(|e| Error::Invalid { what: "thread_id", reason: e.to_string() })?;
        let id = thread_id.to_owned();
        self.erase_where(move |batch| {
            let threads = string_column(batch, col::THREAD_ID)?;
            Ok(BooleanArray::from_iter(
                (0..batch.num_rows()).map(|i| Some(threads.is_valid(i) && threads.value(i) == id)),
            ))
        })
    }

    /// Rewrites every file holding events whose attribute `key` equals `value` (for example a
    /// user id, for an erasure request) without them; returns how many events were erased.
    ///
    /// # Errors
    /// I/O or Parquet errors of a rewrite (the file is then left as it was).
    pub fn erase_attribute(&mut self, key: &str, value: &str) -> Result<u64> {
        self.erase_attribute_in(None, key, value)
    }

    /// [`erase_attribute`](Self::erase_attribute) within one tenant's partitions only (`None`:
    /// every tenant), for an erasure request made by a tenant's administrator.
    ///
    /// # Errors
    /// I/O or Parquet errors of a rewrite (the file is then left as it was).
    pub fn erase_attribute_in(
        &mut self,
        tenant: Option<&str>,
        key: &str,
        value: &str,
    ) -> Result<u64> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let tenant = tenant.map(str::to_owned);
        self.erase_where_in(tenant.as_deref(), move |batch| attribute_matches(batch, &key, &value))
    }

    fn erase_where(
        &mut self,
        matches: impl Fn(&RecordBatch) -> Result<BooleanArray>,
    ) -> Result<u64> {
        self.erase_where_in(None, matches)
    }

    fn erase_where_in(
        &mut self,
        tenant: Option<&str>,
        matches: impl Fn(&RecordBatch) -> Result<BooleanArray>,
    ) -> Result<u64> {
        #[cfg(feature = "object-store")]
        if self.is_remote() {
            return self.erase_remote(tenant, &matches);
        }
        self.require_local("erasure")?;
        // No compaction meanwhile (it could merge a file's old rows after this rewrote it):
        // wait for one that runs. Inputs of an interrupted compaction hold the same rows as its
        // merged file, which is what is listed and rewritten: they go first, so no copy of an
        // erased row survives.
        let _no_compaction = crate::write::wal::StoreLock::acquire(
            self.root(),
            crate::write::wal::COMPACTION_LOCK,
            true,
        )?;
        self.reopen()?;
        self.remove_replaced()?;
        let mut erased = 0;
        for file in self.files() {
            if tenant.is_some_and(|t| file.partition.tenant != t) {
                continue;
            }
            erased += rewrite_without(&file.path, &matches)?;
        }
        self.reopen()?;
        Ok(erased)
    }

    /// Erasure on object storage: download, rewrite, put back, one object at a time.
    #[cfg(feature = "object-store")]
    fn erase_remote(
        &mut self,
        tenant: Option<&str>,
        matches: &dyn Fn(&RecordBatch) -> Result<BooleanArray>,
    ) -> Result<u64> {
        self.reopen()?;
        let scratch = std::env::temp_dir().join(format!(
            "mission-erase-{}-{}",
            std::process::id(),
            mission_core::Timestamp::now().0
        ));
        fs::create_dir_all(&scratch).map_err(|e| Error::io("create", &scratch, e))?;
        let job = || -> Result<u64> {
            let mut erased = 0;
            for (i, file) in self.files().iter().enumerate() {
                if tenant.is_some_and(|t| file.partition.tenant != t) {
                    continue;
                }
                let Some((remote, key)) = file.origin.remote.clone() else { continue };
                let local = scratch.join(format!("{i}.parquet"));
                remote.download(&key, &local)?;
                let removed = rewrite_without(&local, matches)?;
                if removed > 0 {
                    remote.upload_file(&key, &local)?;
                    erased += removed;
                }
                let _ = fs::remove_file(&local);
            }
            Ok(erased)
        };
        let result = job();
        let _ = fs::remove_dir_all(&scratch);
        self.reopen()?;
        result
    }
}

/// A merged file's source list (JSON) after the rows at `removed` (sorted indices) were
/// removed: each source's rows move up by the removed rows before it and shrink by its own.
fn shift_sources(value: &str, removed: &[u64]) -> String {
    let Ok(mut sources) = serde_json::from_str::<Vec<compact::CompactedSource>>(value) else {
        return value.to_owned();
    };
    let before = |row: u64| removed.partition_point(|&r| r < row) as u64;
    for s in &mut sources {
        let end = s.first_row + s.rows;
        let gone = before(end) - before(s.first_row);
        s.first_row -= before(s.first_row);
        s.rows -= gone;
    }
    serde_json::to_string(&sources).unwrap_or_else(|_| value.to_owned())
}

/// Rewrites `path` without the rows `matches` selects; returns how many it removed.
fn rewrite_without(
    path: &Path,
    matches: &dyn Fn(&RecordBatch) -> Result<BooleanArray>,
) -> Result<u64> {
    let file = EventFile::open_path(path, "")?;
    let kv: Vec<KeyValue> =
        file.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let reader = file.batches(None)?;
    let mut kept = Vec::new();
    let mut removed = 0u64;
    // Indices of the removed rows, for a merged file's list of where its inputs' rows are.
    let mut removed_at: Vec<u64> = Vec::new();
    let mut offset = 0u64;
    for batch in reader {
        let batch = batch?;
        let hit = matches(&batch)?;
        let n = hit.true_count() as u64;
        removed += n;
        if n == 0 {
            offset += batch.num_rows() as u64;
            kept.push(batch);
        } else {
            removed_at.extend(
                (0..hit.len())
                    .filter(|&i| hit.is_valid(i) && hit.value(i))
                    .map(|i| offset + i as u64),
            );
            offset += batch.num_rows() as u64;
            let keep = arrow::compute::not(&hit)?;
            kept.push(filter_record_batch(&batch, &keep)?);
        }
    }
    if removed == 0 {
        return Ok(0);
    }
    let kv: Vec<KeyValue> = kv
        .into_iter()
        .map(|mut kv| {
            if kv.key == compact::META_COMPACTED_FROM
                && let Some(value) = &kv.value
            {
                kv.value = Some(shift_sources(value, &removed_at));
            }
            kv
        })
        .collect();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = path.with_file_name(format!(".{name}.erase{TEMP_SUFFIX}"));
    let write = || -> Result<()> {
        let out = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        let props = WriterProperties::builder()
            .set_compression(
                parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()),
            )
            .set_key_value_metadata(Some(
                kv.into_iter().filter(|k| !k.key.starts_with("ARROW:")).collect(),
            ))
            .build();
        let mut writer = ArrowWriter::try_new(out, schema::events_schema(), Some(props))
            .map_err(|e| Error::parquet(&temp, e))?;
        for batch in &kept {
            writer.write(batch).map_err(|e| Error::parquet(&temp, e))?;
        }
        let out = writer.into_inner().map_err(|e| Error::parquet(&temp, e))?;
        out.sync_all().map_err(|e| Error::io("sync", &temp, e))?;
        fs::rename(&temp, path).map_err(|e| Error::io("rename", &temp, e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(removed)
}
