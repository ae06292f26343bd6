//! The per-node rollback witness: the highest generation this node has seen the database at, in
//! memory and (when the node has a data directory) in a witness file there, in the SQLite store's
//! format. The database's generation counter is sealed under the root key, so it cannot be set
//! back by hand; but a whole database restored from an older dump (or a standby promoted after
//! losing acknowledged commits) carries an authentic, older counter: that is a rollback, and the
//! witness reports it instead of letting the node silently undo what it had seen.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use keyplane::{Error, Result};
use keyplane_sqlite::witness::{self, Witness};

/// The witness of one store on this node.
#[derive(Debug)]
pub(crate) struct NodeWitness {
    store_id: [u8; 16],
    seen: AtomicU64,
    file: Option<PathBuf>,
    written: Mutex<u64>,
}

impl NodeWitness {
    /// The witness of store `store_id`, read from `dir` if given.
    pub fn open(store_id: [u8; 16], dir: Option<PathBuf>) -> Result<Self> {
        let file = dir.map(|d| {
            let hex: String = store_id.iter().map(|b| format!("{b:02x}")).collect();
            d.join(format!("postgres-{hex}.witness"))
        });
        let mut seen = 0;
        if let Some(path) = &file {
            if let Some(w) = witness::read(path)? {
                if w.store_id != store_id {
                    return Err(Error::Store(format!(
                        "the generation witness {} belongs to another store",
                        path.display()
                    )));
                }
                seen = w.generation;
            }
        }
        Ok(NodeWitness {
            store_id,
            seen: AtomicU64::new(seen),
            file,
            written: Mutex::new(seen),
        })
    }

    /// The highest generation seen.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Records that the database is at `generation`, read in a snapshot (or a commit) that began
    /// after the witness stood at `floor`; refuses a generation below `floor`. (Comparing with
    /// the witness as it is now would take a snapshot that began just before another thread's
    /// commit for a rollback.)
    pub fn observe(&self, generation: u64, floor: u64, db: &str) -> Result<()> {
        self.seen.fetch_max(generation, Ordering::SeqCst);
        let seen = floor;
        if generation < seen {
            return Err(Error::Store(format!(
                "rollback detected: the key store {db} is at generation {generation} but this \
                 node has seen generation {seen}{}: the database was restored from an older copy \
                 or a standby that had not received {} acknowledged commits was promoted, which \
                 would silently undo them; restore the lost commits, or accept the database as it \
                 is by removing the witness",
                self.file
                    .as_ref()
                    .map(|f| format!(" (witness {})", f.display()))
                    .unwrap_or_default(),
                seen - generation
            )));
        }
        if let Some(path) = &self.file {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            if generation > *written {
                witness::write(
                    path,
                    &Witness {
                        store_id: self.store_id,
                        generation,
                    },
                )?;
                *written = generation;
            }
        }
        Ok(())
    }
}
