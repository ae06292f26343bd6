//! Custom key store definitions and their secrets (PIN, proxy credential), kept as store secrets
//! named `custom-key-store.<id>`: the definition's JSON and the secret sealed together under the
//! root key, in two copies, rotated with the root key, covered by the contents digest, backups
//! and `keyplane store verify` as every store secret is. [`payload`] and [`from_secret`] are the
//! one encoding, which the PostgreSQL store uses too (so a migration between the two carries
//! custom key stores unchanged).

use std::path::Path;

use keyplane::custom_key_store::CustomKeyStoreRecord;
use keyplane::store::StoredCustomKeyStore;
use keyplane::LockedBytes;
use keyplane::{Error, Result};
use rusqlite::Connection;
use zeroize::Zeroizing;

use crate::contents::Digest;
use crate::handle::SqliteKeyStore;
use crate::sealing::StoreKeys;
use crate::{events, secrets};

/// The prefix of custom key stores' secret names.
pub const PREFIX: &str = "custom-key-store.";

/// The secret name of custom key store `id`.
pub fn name(id: &str) -> Result<String> {
    let name = format!("{PREFIX}{id}");
    secrets::check_name(&name)?;
    Ok(name)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    record: CustomKeyStoreRecord,
    /// The store's secret, hex.
    secret: String,
}

fn hex(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

fn unhex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let value = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks(2) {
        out.push(value(pair[0])? << 4 | value(pair[1])?);
    }
    Some(out)
}

/// The sealed value of a custom key store: its definition's JSON and its secret (hex), built by
/// hand around the secret so that no copy of it is left unzeroed.
pub fn payload(record: &CustomKeyStoreRecord, secret: &LockedBytes) -> Result<Zeroizing<Vec<u8>>> {
    let secret_hex = hex(secret.expose(keyplane::SecretAccess::granted()));
    let record_json = serde_json::to_string(record)
        .map_err(|e| Error::Internal(format!("encoding a custom key store: {e}")))?;
    let mut payload = Zeroizing::new(Vec::with_capacity(
        record_json.len() + secret_hex.len() + 32,
    ));
    payload.extend_from_slice(b"{\"record\":");
    payload.extend_from_slice(record_json.as_bytes());
    payload.extend_from_slice(b",\"secret\":\"");
    payload.extend_from_slice(secret_hex.as_bytes());
    payload.extend_from_slice(b"\"}");
    Ok(payload)
}

/// A custom key store from the value of its secret `name`, which must be its own.
pub fn from_secret(
    name: &str,
    value: &LockedBytes,
    policy: keyplane::LockPolicy,
) -> Result<StoredCustomKeyStore> {
    let damaged = || Error::Store(format!("the store secret '{name}' does not parse"));
    let sealed: Sealed = serde_json::from_slice(value.expose(keyplane::SecretAccess::granted()))
        .map_err(|_| damaged())?;
    let secret_hex = Zeroizing::new(sealed.secret);
    let secret = unhex(&secret_hex).ok_or_else(damaged)?;
    if name != format!("{PREFIX}{}", sealed.record.id) {
        return Err(damaged());
    }
    Ok(StoredCustomKeyStore {
        record: sealed.record,
        secret: LockedBytes::copy_from(&secret, policy)?,
    })
}

/// Writes (or replaces) a custom key store's definition and secret in the commit's transaction.
pub(crate) fn put(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    root_epoch: u64,
    record: &CustomKeyStoreRecord,
    secret: &LockedBytes,
    db: &Path,
) -> Result<()> {
    let name = name(&record.id)?;
    let payload = payload(record, secret)?;
    secrets::write_all(conn, keys, digest, &name, root_epoch, &payload, db)?;
    events::record(
        conn,
        keys,
        digest,
        events::SECRET_STORED,
        None,
        &format!("custom key store '{}' stored", record.id),
        db,
    )
}

/// Removes a custom key store's definition and secret in the commit's transaction.
pub(crate) fn delete(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    id: &str,
    db: &Path,
) -> Result<()> {
    if secrets::delete(conn, keys, digest, &name(id)?, db)? {
        events::record(
            conn,
            keys,
            digest,
            events::SECRET_DELETED,
            None,
            &format!("custom key store '{id}' deleted"),
            db,
        )?;
    }
    Ok(())
}

/// Every custom key store the store keeps.
pub(crate) fn load(store: &SqliteKeyStore) -> Result<Vec<StoredCustomKeyStore>> {
    let mut out = Vec::new();
    for name in store.secret_names()? {
        if !name.starts_with(PREFIX) {
            continue;
        }
        let Some(value) = store.get_secret(&name)? else {
            continue;
        };
        out.push(from_secret(&name, &value, store.lock_policy())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap().as_slice(), bytes.as_slice());
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
