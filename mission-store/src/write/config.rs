//! [`StoreConfig`]: how the Parquet sink writes, with the range of every numeric setting, and
//! the Parquet writer settings it implies (shared by the sink, recovery and erasure).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::schema::col;
use crate::write::retention::RetentionPolicy;
use crate::{Error, Result};

/// How the Parquet sink writes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The store's root directory; files go under `<root>/events/`.
    pub root: PathBuf,
    /// Events per row group (each is sorted by thread, then time; [`ROW_GROUP_ROWS_RANGE`]).
    pub row_group_rows: usize,
    /// A file is finalized once it holds about this many bytes ([`MAX_FILE_BYTES_RANGE`]).
    pub max_file_bytes: u64,
    /// A file is finalized once it has been open this long, so readers see data within it.
    #[serde(with = "mission_core::duration_text")]
    pub max_file_age: Duration,
    /// Most files open at once (one per tenant and hour being written); the oldest is
    /// finalized to make room.
    pub max_open_files: usize,
    /// Partitions whose hour ended longer ago than this are deleted (checked once a minute;
    /// [`RETENTION_RANGE`]: 1 s to 100 years).
    #[serde(with = "mission_core::duration_text::option")]
    pub retention: Option<Duration>,
    /// Per-tenant retention, by tenant name: overrides `retention` for that tenant (a
    /// compliance pack, or a customer's contract, can keep one tenant's data shorter or longer;
    /// each in [`RETENTION_RANGE`]).
    #[serde(with = "mission_core::duration_text::map")]
    pub tenant_retention: BTreeMap<String, Duration>,
    /// zstd level ([`ZSTD_LEVEL_RANGE`]: 1–22).
    pub zstd_level: i32,
    /// Keep a write-ahead log of the open files, so a crash loses no drained event (see
    /// [`wal`](crate::wal) for the protocol and its cost). On by default.
    pub wal: bool,
    /// How often the write-ahead log is `fsync`ed (0–60 s; `0s`: after every batch). An event
    /// is safe from a process crash as soon as it is drained, and from a power loss within this
    /// delay plus one pipeline tick (250 ms). Default 500 ms.
    #[serde(with = "mission_core::duration_text")]
    pub wal_sync_interval: Duration,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl StoreConfig {
    /// Sets [`root`](Self::root).
    pub fn with_root(mut self, root: PathBuf) -> Self {
        self.root = root;
        self
    }

    /// Sets [`row_group_rows`](Self::row_group_rows).
    pub fn with_row_group_rows(mut self, row_group_rows: usize) -> Self {
        self.row_group_rows = row_group_rows;
        self
    }

    /// Sets [`max_file_bytes`](Self::max_file_bytes).
    pub fn with_max_file_bytes(mut self, max_file_bytes: u64) -> Self {
        self.max_file_bytes = max_file_bytes;
        self
    }

    /// Sets [`max_file_age`](Self::max_file_age).
    pub fn with_max_file_age(mut self, max_file_age: Duration) -> Self {
        self.max_file_age = max_file_age;
        self
    }

    /// Sets [`max_open_files`](Self::max_open_files).
    pub fn with_max_open_files(mut self, max_open_files: usize) -> Self {
        self.max_open_files = max_open_files;
        self
    }

    /// Sets [`retention`](Self::retention).
    pub fn with_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`tenant_retention`](Self::tenant_retention).
    pub fn with_tenant_retention(mut self, tenant_retention: BTreeMap<String, Duration>) -> Self {
        self.tenant_retention = tenant_retention;
        self
    }

    /// Sets [`zstd_level`](Self::zstd_level).
    pub fn with_zstd_level(mut self, zstd_level: i32) -> Self {
        self.zstd_level = zstd_level;
        self
    }

    /// Sets [`wal`](Self::wal).
    pub fn with_wal(mut self, wal: bool) -> Self {
        self.wal = wal;
        self
    }

    /// Sets [`wal_sync_interval`](Self::wal_sync_interval).
    pub fn with_wal_sync_interval(mut self, wal_sync_interval: Duration) -> Self {
        self.wal_sync_interval = wal_sync_interval;
        self
    }
}

/// The longest [`StoreConfig::wal_sync_interval`].
pub const MAX_WAL_SYNC_INTERVAL: Duration = Duration::from_secs(60);

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("./mission-data"),
            row_group_rows: 128 * 1024,
            max_file_bytes: 128 << 20,
            max_file_age: Duration::from_secs(60),
            max_open_files: 16,
            retention: None,
            tenant_retention: BTreeMap::new(),
            zstd_level: 3,
            wal: true,
            wal_sync_interval: Duration::from_millis(500),
        }
    }
}

/// The range of [`StoreConfig::row_group_rows`].
pub const ROW_GROUP_ROWS_RANGE: std::ops::RangeInclusive<usize> = 1..=(1 << 24);
/// The range of [`StoreConfig::max_file_bytes`]: 4 KiB to 1 TiB.
pub const MAX_FILE_BYTES_RANGE: std::ops::RangeInclusive<u64> = (1 << 12)..=(1 << 40);
/// The range of [`StoreConfig::max_file_age`]: 1 ms to a day.
pub const MAX_FILE_AGE_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(86_400);
/// The range of [`StoreConfig::max_open_files`].
pub const MAX_OPEN_FILES_RANGE: std::ops::RangeInclusive<usize> = 1..=4096;
/// The range of [`StoreConfig::retention`] and of each [`StoreConfig::tenant_retention`]: 1 s
/// to 100 years (a floor against deleting data by mistake is the application's: mission-sdk
/// refuses less than an hour unless confirmed).
pub const RETENTION_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(100 * 365 * 86_400);
/// The range of [`StoreConfig::zstd_level`].
pub const ZSTD_LEVEL_RANGE: std::ops::RangeInclusive<i32> = 1..=22;

impl StoreConfig {
    /// Checks every numeric setting is within its documented range ([`ROW_GROUP_ROWS_RANGE`],
    /// [`MAX_FILE_BYTES_RANGE`], [`MAX_FILE_AGE_RANGE`], [`MAX_OPEN_FILES_RANGE`],
    /// [`ZSTD_LEVEL_RANGE`], [`RETENTION_RANGE`] for `retention` and every
    /// `tenant_retention`); [`ParquetSink::new`](crate::ParquetSink::new) checks it.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first field out of range, its value and the range.
    pub fn validate(&self) -> Result<()> {
        fn check<T: PartialOrd>(
            field: &'static str,
            value: T,
            range: &std::ops::RangeInclusive<T>,
            show: impl Fn(&T) -> String,
        ) -> Result<()> {
            mission_core::check_range(field, value, range, show)
                .map_err(|reason| Error::Invalid { what: field, reason })
        }
        let count = |n: &usize| n.to_string();
        check("row_group_rows", self.row_group_rows, &ROW_GROUP_ROWS_RANGE, count)?;
        check("max_file_bytes", self.max_file_bytes, &MAX_FILE_BYTES_RANGE, |n| n.to_string())?;
        let text = |d: &Duration| mission_core::duration_text::format(*d);
        check("max_file_age", self.max_file_age, &MAX_FILE_AGE_RANGE, text)?;
        check("max_open_files", self.max_open_files, &MAX_OPEN_FILES_RANGE, count)?;
        check("zstd_level", self.zstd_level, &ZSTD_LEVEL_RANGE, |n| n.to_string())?;
        if let Some(retention) = self.retention {
            check("retention", retention, &RETENTION_RANGE, text)?;
        }
        for (tenant, retention) in &self.tenant_retention {
            check("tenant_retention", *retention, &RETENTION_RANGE, text).map_err(|e| match e {
                Error::Invalid { what, reason } => {
                    Error::Invalid { what, reason: format!("{reason} (tenant {tenant:?})") }
                }
                other => other,
            })?;
        }
        check(
            "wal_sync_interval",
            self.wal_sync_interval,
            &(Duration::ZERO..=MAX_WAL_SYNC_INTERVAL),
            text,
        )
    }

    /// The default configuration with `root` as the store's root.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), ..Self::default() }
    }

    /// The retention this configuration asks for: `retention` and `tenant_retention`.
    pub fn retention_policy(&self) -> RetentionPolicy {
        RetentionPolicy { default: self.retention, tenants: self.tenant_retention.clone() }
    }
}

/// The Parquet writer settings of `config` (shared by the sink and recovery).
pub(crate) fn writer_properties(config: &StoreConfig) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(config.zstd_level)
        .map_err(|e| Error::Invalid { what: "zstd_level", reason: e.to_string() })?;
    let delta = [col::TIME, col::SPAN_ID, col::PARENT_SPAN_ID, col::DURATION_NS];
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(config.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page);
    for name in delta {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(props.build())
}
