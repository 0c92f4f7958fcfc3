//! Atomic file writes with restrictive permissions.
//!
//! The emulator keeps private keys and certificates under its data directory. A crash
//! or a full disk while one of them is being written must never leave a truncated file
//! behind, and a private key must never be readable by other users, not even for the
//! instant between creating the file and changing its mode. [`write_atomic`] gives both
//! guarantees.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File mode for private keys: read/write for the owner only.
pub const MODE_PRIVATE: u32 = 0o600;

/// File mode for certificates and other public material: readable by everyone.
pub const MODE_PUBLIC: u32 = 0o644;

/// Writes `bytes` to `path` so that readers see either the old content or the new
/// content, never a mix, and the new content survives a crash once this returns.
///
/// Creates the parent directories if needed, writes a temporary file in the same
/// directory (created with `mode`, e.g. [`MODE_PRIVATE`] for keys), flushes it to disk,
/// renames it over `path` and flushes the directory entry. On error the temporary file
/// is removed and `path` is left as it was. On platforms without Unix permissions
/// `mode` is ignored.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let tmp_path = dir.join(tmp_name);

    let result = write_synced(&tmp_path, bytes, mode).and_then(|()| {
        fs::rename(&tmp_path, path)?;
        sync_dir(&dir)
    });
    if result.is_err() {
        // Best effort: the temporary file may not exist, or may already be renamed.
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Creates `path` (which must not exist) with `mode`, writes `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options.open(path)?;
    // The process umask may have removed bits from `mode` at creation: set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes a directory's entries (the rename) to disk. A no-op where directories cannot
/// be opened as files.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_content_and_creates_parent_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/file.pem");
        write_atomic(&path, b"hello", MODE_PUBLIC).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn replaces_existing_content_and_leaves_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("file.key");
        write_atomic(&path, b"first", MODE_PRIVATE).unwrap();
        write_atomic(&path, b"second", MODE_PRIVATE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(tmp.path()), vec!["file.key".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn sets_the_requested_mode_exactly() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k");
        let cert = tmp.path().join("c");
        write_atomic(&key, b"k", MODE_PRIVATE).unwrap();
        write_atomic(&cert, b"c", MODE_PUBLIC).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn failed_write_leaves_no_temporary_file_and_keeps_old_content() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory in the way of the rename makes the final step fail.
        let path = tmp.path().join("target");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inner"), b"x").unwrap();
        assert!(write_atomic(&path, b"data", MODE_PUBLIC).is_err());
        assert_eq!(entries(tmp.path()), vec!["target".to_string()]);
        assert!(path.is_dir());
    }

    #[test]
    fn parent_that_is_a_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = write_atomic(&file.join("sub/f"), b"data", MODE_PUBLIC).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
    }
}
