//! Where files live: `<root>/events/tenant=<t>/date=<YYYY-MM-DD>/hour=<HH>/part-<seq>-<id>.parquet`.

use std::fs;
use std::path::{Path, PathBuf};

use mission_core::Timestamp;

use crate::{Error, Result};

/// Suffix of files being written; readers never see them (they also start with a dot).
pub const TEMP_SUFFIX: &str = ".tmp";

/// Longest encoded tenant in a directory name, in bytes (file systems refuse names over 255).
/// A longer one is cut and given a hash of the whole name (`<prefix>~<16 hex digits>`; `~`
/// never appears in an encoded name), and the full name is kept in the directory's
/// [`TENANT_NAME_FILE`], so readers still see the tenant as it was recorded.
pub const MAX_TENANT_SEGMENT: usize = 128;

/// In a tenant directory whose name was shortened: the tenant's full name, as UTF-8.
pub const TENANT_NAME_FILE: &str = ".tenant";

/// Whether a file named `name` is a finalized events file, the only kind readers read (and
/// the uploader uploads): `….parquet`, not hidden (temporaries start with a dot), not `_…`.
pub(crate) fn is_finalized_name(name: &str) -> bool {
    name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_')
}

/// A partition: one tenant, one UTC hour.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// The tenant, as written in the path (decoded).
    pub tenant: String,
    /// Days since the Unix epoch.
    pub day: i64,
    /// Hour of the day, 0–23.
    pub hour: u8,
}

impl Partition {
    /// The partition an event at `time` of `tenant` belongs to.
    pub fn of(tenant: &str, time: Timestamp) -> Self {
        let secs = (time.0 / 1_000_000_000) as i64;
        Self {
            tenant: tenant.to_owned(),
            day: secs.div_euclid(86_400),
            hour: (secs.rem_euclid(86_400) / 3600) as u8,
        }
    }

    /// Start of the hour, nanoseconds since the epoch.
    pub fn start_ns(&self) -> i128 {
        (self.day as i128 * 86_400 + self.hour as i128 * 3600) * 1_000_000_000
    }

    /// End of the hour (exclusive), nanoseconds since the epoch.
    pub fn end_ns(&self) -> i128 {
        self.start_ns() + 3_600_000_000_000
    }

    /// `YYYY-MM-DD` of the partition's day.
    pub fn date(&self) -> String {
        let (y, m, d) = civil_from_days(self.day);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The partition's directory under `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        self.tenant_dir(root)
            .join(format!("date={}", self.date()))
            .join(format!("hour={:02}", self.hour))
    }

    /// The tenant's directory under `root`: `events/tenant=<segment>`, the segment
    /// length-limited by [`tenant_segment`].
    pub fn tenant_dir(&self, root: &Path) -> PathBuf {
        root.join("events").join(format!("tenant={}", tenant_segment(&self.tenant)))
    }

    /// Writes the tenant's full name into its directory when the directory's name had to be
    /// shortened (a no-op otherwise, or when it is there already), so readers map the
    /// directory back to the tenant. Written to a temporary name and renamed.
    ///
    /// # Errors
    /// The I/O error.
    pub fn write_tenant_name(&self, root: &Path) -> std::io::Result<()> {
        if !is_shortened(&tenant_segment(&self.tenant)) {
            return Ok(());
        }
        let dir = self.tenant_dir(root);
        let path = dir.join(TENANT_NAME_FILE);
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)?;
        let temp = dir.join(format!("{TENANT_NAME_FILE}-{}{TEMP_SUFFIX}", std::process::id()));
        std::fs::write(&temp, self.tenant.as_bytes())?;
        std::fs::rename(&temp, &path)
    }

    /// Parses the partition from a file path under `root` (`None` if it is not laid out so).
    pub fn from_path(root: &Path, file: &Path) -> Option<Self> {
        let relative = file.strip_prefix(root).ok()?.to_str()?;
        Self::from_relative(relative, |segment| {
            let dir = root.join("events").join(format!("tenant={segment}"));
            std::fs::read_to_string(dir.join(TENANT_NAME_FILE)).ok()
        })
    }

    /// Parses the partition from a path relative to the root (`events/tenant=…/date=…/hour=…/…`,
    /// `/`-separated, as an object key under a remote root); `tenant_name` gives the full name
    /// of a shortened tenant segment (the content of its [`TENANT_NAME_FILE`]).
    pub(crate) fn from_relative(
        relative: &str,
        tenant_name: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let mut parts = relative.split('/').filter(|p| !p.is_empty());
        if parts.next()? != "events" {
            return None;
        }
        let segment = parts.next()?.strip_prefix("tenant=")?;
        let tenant = if is_shortened(segment) {
            let name = tenant_name(segment)?;
            (tenant_segment(&name) == segment).then_some(name)?
        } else {
            decode_segment(segment)?
        };
        let date = parts.next()?.strip_prefix("date=")?;
        let hour: u8 = parts.next()?.strip_prefix("hour=")?.parse().ok().filter(|h| *h < 24)?;
        let mut fields = date.split('-');
        let y: i64 = fields.next()?.parse().ok()?;
        let m: u32 = fields.next()?.parse().ok()?;
        let d: u32 = fields.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        Some(Self { tenant, day: days_from_civil(y, m, d), hour })
    }
}

/// Percent-encodes everything but `[A-Za-z0-9._-]`, as Hive partition readers decode it.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%00".to_owned() } else { out }
}

/// A tenant's directory segment: [`encode_segment`], cut to [`MAX_TENANT_SEGMENT`] bytes with
/// `~` and a hash of the whole name when longer. Never a path separator, `.` or `..`.
pub fn tenant_segment(tenant: &str) -> String {
    let encoded = encode_segment(tenant);
    if encoded.len() <= MAX_TENANT_SEGMENT {
        return encoded;
    }
    let mut cut = MAX_TENANT_SEGMENT - 17;
    // Never split a `%XX` escape.
    while encoded.as_bytes()[cut - 2..cut].contains(&b'%') {
        cut -= 1;
    }
    format!("{}~{:016x}", &encoded[..cut], fnv1a(tenant.as_bytes()))
}

fn is_shortened(segment: &str) -> bool {
    segment.contains('~')
}

/// FNV-1a, 64 bits: stable across builds and platforms (a directory name must not change).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

/// Reverses [`encode_segment`].
pub fn decode_segment(s: &str) -> Option<String> {
    if s == "%00" {
        return Some(String::new());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a (year, month, day).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every file under `dir`, recursively (nothing if `dir` does not exist).
pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io("stat", &path, e))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for day in [-1000, 0, 1, 59, 365, 10_957, 19_000, 20_781, 60_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
    }

    #[test]
    fn partition_paths_round_trip() {
        let root = Path::new("/data");
        let t = Timestamp(1_764_000_000_000_000_000);
        for tenant in ["acme", "team/α b", "", ".hidden", "a=b%c", "..", "../../etc"] {
            let p = Partition::of(tenant, t);
            let file = p.dir(root).join("part-1-x.parquet");
            assert_eq!(Partition::from_path(root, &file), Some(p.clone()), "{tenant}");
            assert!(p.start_ns() <= t.0 as i128 && (t.0 as i128) < p.end_ns());
        }
    }

    /// A 300-character tenant made a directory name the file system refused; now the name is
    /// cut with a hash, and the full name kept beside it reads back as the same tenant.
    #[test]
    fn long_tenants_get_short_directories_and_read_back_whole() {
        let root = std::env::temp_dir().join(format!("mission-layout-{}", std::process::id()));
        let t = Timestamp(1_700_000_000_000_000_000);
        let long_a = "a".repeat(300);
        let long_b = format!("{}b", "a".repeat(299));
        let wide = "é/".repeat(150);
        for tenant in [&long_a, &long_b, &wide] {
            let p = Partition::of(tenant, t);
            let segment = tenant_segment(tenant);
            assert!(segment.len() <= MAX_TENANT_SEGMENT, "{segment}");
            assert!(!segment.contains('/') && segment != "." && segment != "..");
            p.write_tenant_name(&root).expect("tenant name");
            let file = p.dir(&root).join("part-1-x.parquet");
            assert_eq!(Partition::from_path(&root, &file), Some(p), "{tenant}");
        }
        assert_ne!(tenant_segment(&long_a), tenant_segment(&long_b), "same prefix, other hash");
        // A shortened directory without its name file is not taken for any tenant.
        let orphan =
            root.join("events").join(format!("tenant={}", tenant_segment(&"z".repeat(300))));
        assert_eq!(
            Partition::from_path(&root, &orphan.join("date=2023-11-14/hour=22/p.parquet")),
            None
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
