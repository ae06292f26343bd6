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

/// `O_NOFOLLOW`: opening a path whose last component is a symbolic link fails (`ELOOP`).
pub(crate) fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Writes `bytes` to a new file at `path` with mode 0600 and fsyncs it. With `replace`, an
/// existing file is truncated; without, an existing file is an error (`O_EXCL`). Never follows a
/// symbolic link at `path` (`O_NOFOLLOW`): someone able to plant one cannot redirect the write.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600).custom_flags(no_follow());
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

/// Opens the secret file `path` for reading, or `None` if there is none, and checks the file
/// opened (`fstat` on its descriptor, so nothing can be swapped in between the check and the read):
/// a symbolic link (refused by `O_NOFOLLOW`), anything but a regular file, or a file group or
/// others may access is refused.
pub(crate) fn open_private(path: &Path, what: &str) -> Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted at `path` must not hang the open (it is refused below).
        .custom_flags(no_follow() | rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::AccessDenied(format!(
                "{what} {} is a symbolic link; refusing to follow it (point the option at the                  file itself)",
                path.display()
            )))
        }
        Err(e) => return Err(errors::io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| errors::io("read", path, e))?;
    check_private_metadata(&meta, path, what)?;
    Ok(Some(file))
}

/// Refuses a secret file that group or others may access, or that is not a regular file.
fn check_private_metadata(meta: &fs::Metadata, path: &Path, what: &str) -> Result<()> {
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
        assert!(open_private(&path, "the file").unwrap().is_some());
        assert!(
            write_private_file(&path, b"y", false).is_err(),
            "no overwrite"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = open_private(&path, "the file").unwrap_err();
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
