//! A root key in a file: standard base64 of 32 bytes and a newline, mode 0600.
//!
//! The file is created on first use (store init) and refused whenever group or others may access
//! it. Rotation writes the new key to `<file>.next`, and only once the store has committed the
//! rotation overwrites the old file with zeroes and renames `<file>.next` over it. A crash between
//! the two leaves a store that only `<file>.next` opens: [`KeyFileProvider::open`] then finishes
//! the rename. An exclusive lock on `<file>.lock` keeps a rotation and that recovery apart.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use keyplane::{Error, LockPolicy, Result};
use rustix::fs::{flock, FlockOperation};
use zeroize::Zeroizing;

use super::{NewRootKey, RootKey, RootKeyProvider, RAW_KIND};
use crate::{errors, files};

/// Longest key file read (a key file is 45 bytes; anything much longer is not one).
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// A root key kept in a file.
pub struct KeyFileProvider {
    path: PathBuf,
    lock_policy: LockPolicy,
    /// The lock held from `create_next` to `commit_next`/`abandon_next`.
    rotation_lock: Mutex<Option<File>>,
}

impl KeyFileProvider {
    /// A provider for the key file at `path` (created by `create` if missing).
    pub fn new(path: impl Into<PathBuf>, lock_policy: LockPolicy) -> Self {
        KeyFileProvider {
            path: path.into(),
            lock_policy,
            rotation_lock: Mutex::new(None),
        }
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a rotation keeps the new key until the store has committed it.
    pub fn next_path(&self) -> PathBuf {
        suffixed(&self.path, ".next")
    }

    fn lock_path(&self) -> PathBuf {
        suffixed(&self.path, ".lock")
    }

    /// Takes the exclusive lock that orders rotations and rotation recovery.
    fn lock(&self) -> Result<File> {
        let path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| errors::io("open the key file lock", &path, e))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| errors::io("lock", &path, e.into()))?;
        Ok(file)
    }

    /// The key in `path`, or `None` if there is no such file.
    /// The file is opened once, without following a symbolic link, and the descriptor read is the
    /// one checked (no check-then-open race).
    fn read(&self, path: &Path) -> Result<Option<RootKey>> {
        let Some(file) = files::open_private(path, "root key file")? else {
            return Ok(None);
        };
        let mut text = Zeroizing::new(Vec::with_capacity(64));
        file.take(MAX_KEY_FILE_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| errors::io("read the root key file", path, e))?;
        let source = format!("root key file {}", path.display());
        RootKey::from_base64(&text, &source, self.lock_policy).map(Some)
    }

    /// Writes a new key file at `path` with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600. With
    /// `replace_stale`, a regular file already there (a rotation abandoned by a crash) is removed
    /// first; a symbolic link or anything else there is refused, never followed.
    fn write(&self, path: &Path, key: &RootKey, replace_stale: bool) -> Result<()> {
        let mut text = Zeroizing::new(key.to_base64().as_bytes().to_vec());
        text.push(b'\n');
        if replace_stale {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_file() => fs::remove_file(path)
                    .map_err(|e| errors::io("remove the stale key file", path, e))?,
                Ok(_) => {
                    return Err(Error::AccessDenied(format!(
                        "{} is a symbolic link or not a regular file; refusing to write a root                          key there (remove it)",
                        path.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(errors::io("read", path, e)),
            }
        }
        files::write_private_file(path, &text, false)?;
        files::fsync_dir(files::parent_dir(path))
    }

    /// Makes `<file>.next` the key file: zeroes the old key's bytes, renames, fsyncs the directory.
    fn promote_next(&self) -> Result<()> {
        let next = self.next_path();
        let old = OpenOptions::new()
            .write(true)
            .custom_flags(files::no_follow())
            .open(&self.path);
        if let Ok(mut old) = old.and_then(|f| match f.metadata() {
            Ok(m) if m.file_type().is_file() => Ok(f),
            Ok(_) => Err(std::io::Error::other("not a regular file")),
            Err(e) => Err(e),
        }) {
            let len = old.metadata().map(|m| m.len()).unwrap_or(0);
            let zeros = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
            old.write_all(&zeros)
                .and_then(|()| old.sync_all())
                .map_err(|e| errors::io("overwrite the retired root key file", &self.path, e))?;
        }
        fs::rename(&next, &self.path)
            .map_err(|e| errors::io("move the new root key into place at", &self.path, e))?;
        files::fsync_dir(files::parent_dir(&self.path))
    }

    fn rotation_slot(&self) -> Result<std::sync::MutexGuard<'_, Option<File>>> {
        self.rotation_lock
            .lock()
            .map_err(|_| Error::Internal("key file rotation lock poisoned".into()))
    }
}

impl std::fmt::Debug for KeyFileProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileProvider")
            .field("path", &self.path)
            .finish()
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl RootKeyProvider for KeyFileProvider {
    fn kind(&self) -> &str {
        RAW_KIND
    }

    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    fn create(&self) -> Result<NewRootKey> {
        let _lock = self.lock()?;
        if let Some(key) = self.read(&self.path)? {
            return Ok(NewRootKey {
                key,
                params: String::new(),
            });
        }
        let key = RootKey::generate(self.lock_policy)?;
        self.write(&self.path, &key, false)?;
        Ok(NewRootKey {
            key,
            params: String::new(),
        })
    }

    fn open(&self, _params: &str, accept: &dyn Fn(&RootKey) -> bool) -> Result<RootKey> {
        if let Some(key) = self.read(&self.path)? {
            if accept(&key) {
                return Ok(key);
            }
        }
        // The key file is missing, malformed or wrong: perhaps a rotation committed and crashed
        // before moving the new key into place. Look again under the lock.
        let _lock = self.lock()?;
        let current = match self.read(&self.path) {
            Ok(Some(key)) if accept(&key) => return Ok(key),
            other => other,
        };
        if let Some(next) = self.read(&self.next_path())? {
            if accept(&next) {
                self.promote_next()?;
                return Ok(next);
            }
        }
        match current {
            Ok(Some(_)) => Err(Error::AccessDenied(format!(
                "the root key in {} does not open this store (a wrong key file, or the store \
                 was created with another root key)",
                self.path.display()
            ))),
            Ok(None) => Err(Error::AccessDenied(format!(
                "no root key file at {}: this store's root key is missing (give the right one \
                 with --root-key-file)",
                self.path.display()
            ))),
            Err(e) => Err(e),
        }
    }

    fn create_next(&self) -> Result<NewRootKey> {
        let lock = self.lock()?;
        let key = RootKey::generate(self.lock_policy)?;
        self.write(&self.next_path(), &key, true)?;
        *self.rotation_slot()? = Some(lock);
        Ok(NewRootKey {
            key,
            params: String::new(),
        })
    }

    fn commit_next(&self) -> Result<()> {
        let mut slot = self.rotation_slot()?;
        let promoted = self.promote_next();
        *slot = None;
        promoted
    }

    fn abandon_next(&self) {
        if let Ok(mut slot) = self.rotation_slot() {
            let _ = fs::remove_file(self.next_path());
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn same(a: &RootKey, b: &RootKey) -> bool {
        a.locked().expose(keyplane::SecretAccess::granted())
            == b.locked().expose(keyplane::SecretAccess::granted())
    }

    #[test]
    fn created_on_first_use_with_mode_0600_and_read_back_after() {
        let dir = tempfile::tempdir().unwrap();
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        let first = provider.create().unwrap();
        let mode = fs::metadata(provider.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(provider.path()).unwrap();
        assert_eq!(text.trim().len(), 44, "base64 of 32 bytes");
        let again = provider.create().unwrap();
        assert!(
            same(&first.key, &again.key),
            "an existing key file is used, not replaced"
        );
        let opened = provider.open("", &|k| same(k, &first.key)).unwrap();
        assert!(same(&opened, &first.key));
    }

    #[test]
    fn group_or_world_readable_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        provider.create().unwrap();
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(provider.path(), fs::Permissions::from_mode(mode)).unwrap();
            let err = provider.open("", &|_| true).unwrap_err();
            assert_eq!(err.code(), "AccessDeniedException", "mode {mode:o}");
            assert!(err.message().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn a_wrong_key_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        provider.create().unwrap();
        let err = provider.open("", &|_| false).unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(err.message().contains("root.key"), "{err}");
    }

    #[test]
    fn a_committed_rotation_interrupted_before_the_rename_is_finished_by_open() {
        let dir = tempfile::tempdir().unwrap();
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        let old = provider.create().unwrap().key;
        let new = provider.create_next().unwrap().key;
        // The process dies here: the store was committed under `new`, the rename never happened.
        drop(provider);
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        let opened = provider.open("", &|k| same(k, &new)).unwrap();
        assert!(same(&opened, &new));
        assert!(!provider.next_path().exists());
        let reread = provider.open("", &|k| same(k, &new)).unwrap();
        assert!(same(&reread, &new));
        assert!(
            provider.open("", &|k| same(k, &old)).is_err(),
            "the old key is retired"
        );
    }

    #[test]
    fn commit_next_retires_the_old_key_and_abandon_next_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let provider = KeyFileProvider::new(dir.path().join("root.key"), LockPolicy::Require);
        let old = provider.create().unwrap().key;
        provider.create_next().unwrap();
        provider.abandon_next();
        assert!(!provider.next_path().exists());
        assert!(provider.open("", &|k| same(k, &old)).is_ok());
        let new = provider.create_next().unwrap().key;
        provider.commit_next().unwrap();
        assert!(provider.open("", &|k| same(k, &new)).is_ok());
        assert!(provider.open("", &|k| same(k, &old)).is_err());
    }
}
