//! Small file-system steps with a fixed order: write, fsync the file, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use keyplane::{Error, Result};

use crate::errors;

/// Mode bits a secret file must not have: any access by group or others.
pub(crate) const GROUP_OR_WORLD: u32 = 0o077;

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| errors::io("create the data directory", dir, e))
}

/// Flushes a directory's entries (after a create or rename in it) to disk.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| errors::io("fsync the directory", dir, e))
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a new file at `path` with mode 0600 and fsyncs it. With `replace`, an
/// existing file is truncated; without, an existing file is an error.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .map_err(|e| errors::io("create", path, e))?;
    // An existing file keeps its mode through O_TRUNC: make sure it is private.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| errors::io("set mode 0600 on", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| errors::io("write", path, e))
}

/// Replaces `path` atomically with `bytes`: a temporary file beside it is written and fsynced,
/// then renamed over `path`. A crash leaves either the old or the new content, never a mix. The
/// directory is not fsynced: after a power loss the old content may come back.
pub(crate) fn replace_file(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let written = write_private_file(tmp, bytes, true)
        .and_then(|()| fs::rename(tmp, path).map_err(|e| errors::io("rename into place", path, e)));
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

/// Refuses a secret file that group or others may access, or that is not a regular file.
pub(crate) fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(|e| errors::io("read", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::AccessDenied(format!(
            "{what} {} is not a regular file (a symbolic link or a directory is refused)",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & GROUP_OR_WORLD != 0 {
        return Err(Error::AccessDenied(format!(
            "{what} {} has mode {mode:04o}: group or others may access it; refusing to use it \
             (run `chmod 600 {}`)",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private_file(&path, b"x", false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        check_private(&path, "the file").unwrap();
        assert!(
            write_private_file(&path, b"y", false).is_err(),
            "no overwrite"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private(&path, "the file").unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(err.message().contains("chmod 600"), "{err}");
    }

    #[test]
    fn replace_is_all_or_nothing_from_the_reader_s_side() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let tmp = dir.path().join("w.tmp");
        replace_file(&path, &tmp, b"one").unwrap();
        replace_file(&path, &tmp, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!tmp.exists());
    }
}
