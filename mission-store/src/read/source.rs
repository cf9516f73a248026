//! [`Source`]: where the bytes of an events file come from — a local file, or an object on
//! object storage read with ranged GETs — under the one place the store opens a file.
//!
//! Parquet reads through [`ChunkReader`]: the footer first, then only the column chunks of the
//! row groups a query reads. For a local file that is `pread`s; for an object it is ranged GETs
//! (the footer in one, each needed column chunk in one), never the whole object. Both count the
//! bytes they hand out, which [`QueryStats::bytes_read`](crate::QueryStats::bytes_read) reports.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{ChunkReader, Length};

use crate::read::store::StoreFile;
use crate::{Error, Result};

/// Where a listed file lives, beside its [`path`](StoreFile::path): on the local disk, or an
/// object under a [`RemoteRoot`](crate::RemoteRoot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    #[cfg(feature = "object-store")]
    pub(crate) remote: Option<(crate::remote::RemoteRoot, object_store::path::Path)>,
}

impl Origin {
    /// A file on the local disk.
    pub(crate) fn local() -> Self {
        Self::default()
    }

    /// Whether it is an object on object storage.
    pub(crate) fn is_remote(&self) -> bool {
        #[cfg(feature = "object-store")]
        {
            self.remote.is_some()
        }
        #[cfg(not(feature = "object-store"))]
        {
            false
        }
    }
}

/// The bytes of one events file; see the [module](self).
pub(crate) enum Source {
    Local {
        file: File,
        read: Arc<AtomicU64>,
    },
    #[cfg(feature = "object-store")]
    Remote(crate::remote::RemoteObject),
}

impl Source {
    /// Opens a listed file; `read` counts the bytes read from it. A remote object's end (its
    /// footer) is fetched here.
    ///
    /// # Errors
    /// [`Error::Io`] if it is gone (kind `NotFound`, for a local file or an object alike) or
    /// cannot be opened; [`Error::Remote`] if object storage refuses or cannot be reached.
    pub(crate) fn open(file: &StoreFile, read: &Arc<AtomicU64>) -> Result<Self> {
        #[cfg(feature = "object-store")]
        if let Some((root, key)) = &file.origin.remote {
            return crate::remote::RemoteObject::open(root, key.clone(), file.bytes, read.clone())
                .map(Source::Remote);
        }
        Self::open_local(&file.path, read)
    }

    /// Opens a local file.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened.
    pub(crate) fn open_local(path: &Path, read: &Arc<AtomicU64>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Source::Local { file, read: read.clone() })
    }

    /// Tells the source the file's layout once its footer is read, so a remote object
    /// fetches whole column chunks (and nothing of the columns not read).
    pub(crate) fn learn_layout(&self, metadata: &ParquetMetaData) {
        #[cfg(feature = "object-store")]
        if let Source::Remote(object) = self {
            object.learn_layout(metadata);
        }
        let _ = metadata;
    }

    /// Fetches the byte ranges `columns` (leaf indices) of the row groups `groups` will need,
    /// at once, for a remote object (a local file reads them as it goes).
    pub(crate) fn prefetch(&self, metadata: &ParquetMetaData, groups: &[usize], columns: &[usize]) {
        #[cfg(feature = "object-store")]
        if let Source::Remote(object) = self {
            let ranges = groups
                .iter()
                .filter_map(|&g| metadata.row_groups().get(g))
                .flat_map(|g| columns.iter().filter_map(move |&c| g.columns().get(c)))
                .map(|c| {
                    let (start, len) = c.byte_range();
                    start..start.saturating_add(len)
                })
                .collect();
            object.prefetch(ranges);
        }
        let _ = (metadata, groups, columns);
    }

    /// A second handle on the same file (for [`learn_layout`](Self::learn_layout) after the
    /// first is handed to a reader).
    pub(crate) fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            Source::Local { file, read } => {
                Source::Local { file: file.try_clone()?, read: read.clone() }
            }
            #[cfg(feature = "object-store")]
            Source::Remote(object) => Source::Remote(object.clone()),
        })
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local { file, .. } => Length::len(file),
            #[cfg(feature = "object-store")]
            Source::Remote(object) => object.size(),
        }
    }
}

/// A sequential reader of a [`Source`] (page headers, the footer's length).
pub(crate) enum SourceRead {
    Local {
        inner: <File as ChunkReader>::T,
        read: Arc<AtomicU64>,
    },
    #[cfg(feature = "object-store")]
    Remote(crate::remote::RemoteRead),
}

impl Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceRead::Local { inner, read } => {
                let n = inner.read(buf)?;
                read.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            #[cfg(feature = "object-store")]
            SourceRead::Remote(reader) => reader.read(buf),
        }
    }
}

impl ChunkReader for Source {
    type T = SourceRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self {
            Source::Local { file, read } => {
                Ok(SourceRead::Local { inner: file.get_read(start)?, read: read.clone() })
            }
            #[cfg(feature = "object-store")]
            Source::Remote(object) => Ok(SourceRead::Remote(object.reader(start))),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local { file, read } => {
                let bytes = file.get_bytes(start, length)?;
                read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(bytes)
            }
            #[cfg(feature = "object-store")]
            Source::Remote(object) => {
                let end = start.saturating_add(length as u64);
                if end > object.size() {
                    return Err(parquet::errors::ParquetError::EOF(format!(
                        "{length} bytes at {start} past the end of a {}-byte object",
                        object.size()
                    )));
                }
                let bytes = object.bytes(start..end)?;
                if bytes.len() != length {
                    return Err(parquet::errors::ParquetError::EOF(format!(
                        "{} of {length} bytes at {start}",
                        bytes.len()
                    )));
                }
                Ok(bytes)
            }
        }
    }
}
