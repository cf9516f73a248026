//! Atomic file replace: the one way Mission Control rewrites a small file it owns (model state,
//! `in-flight.json`, …), so a crash at any moment leaves either the old contents or the new,
//! never a torn or empty file.
//!
//! The protocol: write the new contents to a unique temporary name in the same directory,
//! `fsync` it, `rename` it over the target (atomic on POSIX file systems), then `fsync` the
//! directory so the rename itself survives a power loss. A temporary file left by a crash
//! between the first and third step starts with a dot and ends in `.tmp`; it is never read.
//!
//! Cost: two `fsync`s per replace (the file's and the directory's), a few milliseconds on a
//! disk, so it is meant for files rewritten at most every few seconds, not per event.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::layout::TEMP_SUFFIX;

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` atomically and durably (see the [module docs](self)),
/// creating its directory if missing.
///
/// # Errors
/// The operating system's error creating, writing, syncing or renaming; `path` then still
/// holds its previous contents (or does not exist), and the temporary file is removed.
pub fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(
        ".{name}.{}-{}{TEMP_SUFFIX}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// `fsync`s a directory, so entries created, renamed or removed in it survive a power loss.
/// Best effort: not every platform can open a directory, and a failure here loses nothing a
/// process crash could (only a power loss could undo the entry change).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("mc-atomic-{}", std::process::id()));
        let path = dir.join("sub").join("state.json");
        replace_file(&path, b"one").expect("first");
        replace_file(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        // A directory in the way: an error, and nothing left behind.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("inner")).expect("dir");
        assert!(replace_file(&blocked, b"x").is_err());
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 2);
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
