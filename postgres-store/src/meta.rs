//! The one-row `keyplane_meta` table: the store's id, its root key's kind, parameters and check
//! value, the generation counter with its seal, the sealed contents digest, and how far back the
//! change log reaches (`log_floor`).

use keyplane::{Error, Result};
use keyplane_sqlite::contents::Digest;
use keyplane_sqlite::sealing::StoreKeys;
use postgres::GenericClient;

use crate::errors;

/// The meta row.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub store_id: [u8; 16],
    pub root_kind: String,
    pub root_params: String,
    pub root_check: Vec<u8>,
    pub generation: u64,
    pub generation_seal: Vec<u8>,
    pub contents: Vec<u8>,
    pub log_floor: u64,
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads the meta row (`FOR UPDATE` when `lock`: the commit's serialisation point). `None` when
/// the database holds no store.
pub(crate) fn read(client: &mut impl GenericClient, lock: bool, db: &str) -> Result<Option<Meta>> {
    let sql = if lock {
        "SELECT store_id, root_kind, root_params, root_check, generation, generation_seal, \
         contents, log_floor FROM keyplane_meta WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT store_id, root_kind, root_params, root_check, generation, generation_seal, \
         contents, log_floor FROM keyplane_meta WHERE id = 1"
    };
    let Some(row) = client
        .query_opt(sql, &[])
        .map_err(|e| errors::pg("read the store's generation", db, e))?
    else {
        return Ok(None);
    };
    let id: Vec<u8> = row.get(0);
    Ok(Some(Meta {
        store_id: id
            .try_into()
            .map_err(|_| Error::Store(format!("the store id in {db} is damaged (not 16 bytes)")))?,
        root_kind: row.get(1),
        root_params: row.get(2),
        root_check: row.get(3),
        generation: to_u64(row.get(4)),
        generation_seal: row.get(5),
        contents: row.get(6),
        log_floor: to_u64(row.get(7)),
    }))
}

/// The meta row, which must exist.
pub(crate) fn read_existing(client: &mut impl GenericClient, lock: bool, db: &str) -> Result<Meta> {
    read(client, lock, db)?.ok_or_else(|| {
        Error::Store(format!(
            "the key store {db} has lost its meta row (keyplane_meta): it was edited outside \
             keyplane; restore it from a backup"
        ))
    })
}

impl Meta {
    pub fn root_accepts(&self, keys: &StoreKeys) -> bool {
        keys.root_check_matches(&self.store_id, &self.root_check)
    }

    /// Refuses a generation counter the root key does not authenticate (edited: set back or
    /// forward by someone without the root key).
    pub fn check_generation(&self, keys: &StoreKeys, db: &str) -> Result<()> {
        if keys.generation_sealed(&self.store_id, self.generation, &self.generation_seal) {
            return Ok(());
        }
        Err(Error::Store(format!(
            "the generation counter of the key store {db} ({}) fails its root-key check: it was \
             edited outside keyplane (set back or forward); restore the database from a backup",
            self.generation
        )))
    }

    /// The sealed contents digest, opened.
    pub fn digest(&self, keys: &StoreKeys, db: &str) -> Result<Digest> {
        Digest::open(keys, &self.store_id, self.generation, &self.contents).ok_or_else(|| {
            Error::Store(format!(
                "the contents digest of the key store {db} fails its root-key check for \
                 generation {}: the meta row was edited outside keyplane; restore the database \
                 from a backup",
                self.generation
            ))
        })
    }
}

/// Writes the meta row's generation, its seal and the contents digest sealed with it.
pub(crate) fn advance(
    client: &mut impl GenericClient,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    generation: u64,
    digest: &Digest,
    db: &str,
) -> Result<()> {
    let seal = keys.seal_generation(store_id, generation)?;
    let contents = digest.seal(keys, store_id, generation)?;
    client
        .execute(
            "UPDATE keyplane_meta SET generation = $1, generation_seal = $2, contents = $3 \
             WHERE id = 1",
            &[&to_i64(generation), &seal, &contents],
        )
        .map_err(|e| errors::pg("advance the generation", db, e))?;
    Ok(())
}
