//! The generation witness: a small file beside the database recording the highest generation the
//! store is known to have committed.
//!
//! The database's own generation counter is authenticated by the root key, so it cannot be edited
//! upwards; but a whole database file copied back from an older backup carries an authentic, older
//! counter. The witness catches that: it is rewritten after every commit (temporary file, fsync,
//! rename), so it is never ahead of what the database durably holds, and a database whose
//! generation is below it has been rolled back.
//!
//! ```text
//! keyplane-generation-witness 1
//! store <store id, 32 hex digits>
//! generation <decimal>
//! check <first 16 bytes of SHA-256 of the three lines above, hex>
//! ```

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{digest, SHA256};
use keyplane::{Error, Result};

use crate::errors;
use crate::layout::with_suffix;

const HEADER: &str = "keyplane-generation-witness 1";
const MAX_WITNESS_BYTES: u64 = 4096;

/// What the witness says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Witness {
    pub store_id: [u8; 16],
    pub generation: u64,
}

impl Witness {
    fn encode(&self) -> String {
        let body = format!(
            "{HEADER}\nstore {}\ngeneration {}\n",
            hex(&self.store_id),
            self.generation
        );
        let check = hex(&digest(&SHA256, body.as_bytes()).as_ref()[..16]);
        format!("{body}check {check}\n")
    }

    fn decode(text: &str) -> Option<Witness> {
        let mut lines = text.lines();
        let header = lines.next()?;
        let store = lines.next()?.strip_prefix("store ")?;
        let generation = lines.next()?.strip_prefix("generation ")?;
        let check = lines.next()?.strip_prefix("check ")?;
        if header != HEADER || lines.next().is_some() {
            return None;
        }
        let witness = Witness {
            store_id: unhex(store)?.try_into().ok()?,
            generation: generation.parse().ok()?,
        };
        (witness.encode().lines().nth(3)? == format!("check {check}")).then_some(witness)
    }
}

/// Reads the witness at `path`: `None` if there is none.
pub fn read(path: &Path) -> Result<Option<Witness>> {
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(errors::io("read the generation witness", path, e)),
    };
    if len > MAX_WITNESS_BYTES {
        return Err(damaged(path));
    }
    let text = fs::read(path).map_err(|e| errors::io("read the generation witness", path, e))?;
    let text = String::from_utf8(text).map_err(|_| damaged(path))?;
    Witness::decode(&text)
        .map(Some)
        .ok_or_else(|| damaged(path))
}

fn damaged(path: &Path) -> Error {
    Error::Store(format!(
        "the generation witness {} is damaged, so a rollback of the store cannot be ruled out; \
         if the store is the one you expect, accept it with `keyplane store restore --adopt`",
        path.display()
    ))
}

/// Replaces the witness at `path` (temporary file, fsync, rename).
pub fn write(path: &Path, witness: &Witness) -> Result<()> {
    crate::files::replace_file(path, &temp_path(path), witness.encode().as_bytes())
}

/// A temporary file of this process for one write of the witness at `path`: `.tmp.PID.N`, a new
/// N for every write, so that two store handles in one process writing at once never share one
/// (a shared file's rename failed for the loser, and interleaved writes damaged the witness).
fn temp_path(path: &Path) -> PathBuf {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    with_suffix(path, &format!(".tmp.{}.{n}", std::process::id()))
}

/// Removes temporary witness files left by processes that no longer run (killed mid-write).
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('.').next())
        else {
            continue;
        };
        let running = pid
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !running {
            let _ = fs::remove_file(entry.path());
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        assert_eq!(read(&path).unwrap(), None);
        let w = Witness {
            store_id: [0xab; 16],
            generation: 42,
        };
        write(&path, &w).unwrap();
        assert_eq!(read(&path).unwrap(), Some(w));
        let text = fs::read_to_string(&path).unwrap();
        for (from, to) in [("generation 42", "generation 43"), ("abab", "abac")] {
            fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let err = read(&path).unwrap_err();
            assert!(err.message().contains("damaged"), "{err}");
        }
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert!(read(&path).is_err(), "a truncated witness is refused");
    }

    #[test]
    fn writers_in_one_process_at_once_never_damage_the_witness() {
        // Two store handles in one process (two nodes of a fleet benchmark, two engines of a
        // server) commit at once: each records its generation. They once shared one temporary
        // file, so one's rename could fail (the other had moved it) and interleaved writes
        // could leave a damaged witness, which refuses every later commit.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let path = &path;
                s.spawn(move || {
                    for g in 0..50 {
                        let w = Witness {
                            store_id: [7; 16],
                            generation: t * 1000 + g,
                        };
                        write(path, &w).unwrap();
                    }
                });
            }
        });
        assert!(read(&path).unwrap().is_some());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let dead = with_suffix(&path, ".tmp.999999999");
        let dead_n = with_suffix(&path, ".tmp.999999999.3");
        let live = with_suffix(&path, &format!(".tmp.{}", std::process::id()));
        let live_n = with_suffix(&path, &format!(".tmp.{}.7", std::process::id()));
        for f in [&dead, &dead_n, &live, &live_n] {
            fs::write(f, "x").unwrap();
        }
        remove_stale_temporaries(&path);
        assert!(!dead.exists() && !dead_n.exists());
        assert!(live.exists() && live_n.exists());
    }
}
