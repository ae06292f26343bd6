//! Store secrets (the engine's import secret) and custom key stores (definition and secret sealed
//! together, as a secret named `custom-key-store.<id>`, as in the SQLite store): each wrapped
//! under the root key in two copies, with a MAC of its value in the row so that a copy of an
//! older value is told from the current one, the row sealed with its name, the generation that
//! wrote it and that MAC, and each row an element of the contents digest.

use keyplane::LockedBytes;
use keyplane::{Error, Result};
use keyplane_sqlite::contents::{Digest, Part};
use keyplane_sqlite::sealing::{Purpose, StoreKeys};
use postgres::GenericClient;

use crate::errors;
use crate::meta::{to_i64, to_u64};

/// The prefix of a custom key store's secret name.
pub(crate) use keyplane_sqlite::custom_key_stores::PREFIX as CKS_PREFIX;
pub use keyplane_sqlite::MAX_SECRET_NAME;

/// A secret row as stored.
pub(crate) struct SecretRow {
    pub name: String,
    pub generation: u64,
    pub value_mac: Vec<u8>,
    pub seal: Vec<u8>,
    pub copies: [Vec<u8>; 2],
}

impl SecretRow {
    fn parts(&self) -> [Vec<u8>; 3] {
        [
            self.name.clone().into_bytes(),
            self.generation.to_be_bytes().to_vec(),
            self.value_mac.clone(),
        ]
    }

    pub fn add_to(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let p = self.parts();
        digest.add(keys, Part::Secrets, &[&p[0], &p[1], &p[2]])
    }

    fn remove_from(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let p = self.parts();
        digest.remove(keys, Part::Secrets, &[&p[0], &p[1], &p[2]])
    }

    /// The value, from the first copy that unwraps to the value the row's MAC names; which
    /// copies were bad (for repair). An error when the row's seal fails or no copy is good.
    pub fn open(&self, keys: &StoreKeys) -> Result<(LockedBytes, Vec<usize>)> {
        let p = self.parts();
        if !keys.check(Purpose::PgSecretRow, &[&p[0], &p[1], &p[2]], &self.seal) {
            return Err(Error::Store(format!(
                "the store secret '{}' fails its root-key check (edited or moved)",
                self.name
            )));
        }
        let mut good = None;
        let mut bad = Vec::new();
        for (i, copy) in self.copies.iter().enumerate() {
            match keys.unwrap_secret(&self.name, copy)? {
                Ok(value)
                    if keys.secret_value_matches(
                        &self.name,
                        value.expose(keyplane::SecretAccess::granted()),
                        &self.value_mac,
                    )? =>
                {
                    if good.is_none() {
                        good = Some(value);
                    }
                }
                _ => bad.push(i),
            }
        }
        good.map(|g| (g, bad)).ok_or_else(|| {
            Error::Store(format!(
                "no copy of the store secret '{}' can be read (both damaged or replayed)",
                self.name
            ))
        })
    }
}

fn secret_row(row: &postgres::Row) -> SecretRow {
    SecretRow {
        name: row.get(0),
        generation: to_u64(row.get(1)),
        value_mac: row.get(2),
        seal: row.get(3),
        copies: [row.get(4), row.get(5)],
    }
}

const COLUMNS: &str = "name, generation, value_mac, seal, copy0, copy1";

pub(crate) fn read(c: &mut impl GenericClient, name: &str, db: &str) -> Result<Option<SecretRow>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM keyplane_secrets WHERE name = $1"),
        &[&name],
    )
    .map(|r| r.as_ref().map(secret_row))
    .map_err(|e| errors::pg("read a store secret", db, e))
}

pub(crate) fn all(c: &mut impl GenericClient, db: &str) -> Result<Vec<SecretRow>> {
    c.query(
        &format!("SELECT {COLUMNS} FROM keyplane_secrets ORDER BY name"),
        &[],
    )
    .map(|rows| rows.iter().map(secret_row).collect())
    .map_err(|e| errors::pg("read the store secrets", db, e))
}

pub(crate) use keyplane_sqlite::check_secret_name as check_name;

/// Inserts or replaces secret `name` with `value`, written at `generation`.
pub(crate) fn put(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    value: &[u8],
    generation: u64,
    db: &str,
) -> Result<()> {
    check_name(name)?;
    if let Some(old) = read(c, name, db)? {
        old.remove_from(keys, digest)?;
    }
    let value_mac = keys.secret_value_mac(name, value)?;
    let mut row = SecretRow {
        name: name.to_owned(),
        generation,
        value_mac,
        seal: Vec::new(),
        copies: [
            keys.wrap_secret(name, value)?,
            keys.wrap_secret(name, value)?,
        ],
    };
    let p = row.parts();
    row.seal = keys.seal(Purpose::PgSecretRow, &[&p[0], &p[1], &p[2]])?;
    row.add_to(keys, digest)?;
    c.execute(
        "INSERT INTO keyplane_secrets (name, generation, value_mac, seal, copy0, copy1) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
         generation = EXCLUDED.generation, value_mac = EXCLUDED.value_mac, \
         seal = EXCLUDED.seal, copy0 = EXCLUDED.copy0, copy1 = EXCLUDED.copy1",
        &[
            &row.name,
            &to_i64(generation),
            &row.value_mac,
            &row.seal,
            &row.copies[0],
            &row.copies[1],
        ],
    )
    .map(|_| ())
    .map_err(|e| errors::pg("write a store secret", db, e))
}

/// Removes secret `name`.
pub(crate) fn delete(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    db: &str,
) -> Result<()> {
    if let Some(old) = read(c, name, db)? {
        old.remove_from(keys, digest)?;
    }
    c.execute("DELETE FROM keyplane_secrets WHERE name = $1", &[&name])
        .map(|_| ())
        .map_err(|e| errors::pg("delete a store secret", db, e))
}

/// Rewrites the bad copies of a secret from its good value (repair on read), if the row is
/// still the one read.
pub(crate) fn repair(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    row: &SecretRow,
    value: &[u8],
    bad: &[usize],
    db: &str,
) -> Result<()> {
    for &i in bad {
        let column = if i == 0 { "copy0" } else { "copy1" };
        let fresh = keys.wrap_secret(&row.name, value)?;
        c.execute(
            &format!(
                "UPDATE keyplane_secrets SET {column} = $1 WHERE name = $2 AND {column} = $3 \
                 AND value_mac = $4"
            ),
            &[&fresh, &row.name, &row.copies[i], &row.value_mac],
        )
        .map_err(|e| errors::pg("repair a store secret", db, e))?;
    }
    Ok(())
}
