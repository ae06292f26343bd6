//! Everything the store does with its root key: wrapping key material, and authenticating the
//! records, the generation counter and the root key's check value.
//!
//! Two AES-256-GCM keys are derived from the root key with HKDF-SHA256, salted with the store's id:
//! one wraps key material, the other authenticates everything else. Both live, expanded, in locked
//! memory (`keyplane::sealing::SealingKey`, which draws every nonce itself). Every nonce is 96 random bits; a store makes
//! far fewer than 2^32 seals per root key, where random nonces stay safe.
//!
//! Wrapped key material (one copy):
//!
//! ```text
//! 0x01 ‖ nonce (12) ‖ AES-256-GCM ciphertext (as long as the material) ‖ tag (16)
//! AAD = "keyplane-sqlite material v1" ‖ key id (16) ‖ version (u32 BE) ‖ key spec
//! ```
//!
//! (each AAD part is prefixed with its length as a `u32`), so a copy moved onto another key,
//! version or key spec fails to unwrap. A store secret (see the secrets module) is wrapped the same
//! way under the same key, with `AAD = "keyplane-sqlite secret v1" ‖ name`. An authentication seal is `nonce (12) ‖ tag (16)` of
//! AES-256-GCM over no plaintext with the authenticated bytes as AAD.

use aws_lc_rs::digest::{digest, SHA256};

use keyplane::sealing::{constant_time_eq, MacKey, SealingKey, NONCE_LEN, TAG_LEN};
use keyplane::LockedBytes;
use keyplane::{Error, KeySpec, LockPolicy, Result};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::root_key::RootKey;

/// The domain prefix of a PostgreSQL store's key derivation salt (see
/// [`StoreKeys::derive_postgres`]).
pub const POSTGRES_DOMAIN: &[u8] = b"keyplane-postgres store v1 ";

/// The wrapped-material format byte.
const WRAP_FORMAT: u8 = 0x01;
/// Bytes a wrapped copy adds to the material.
pub const WRAP_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Bytes in an authentication seal.
pub const SEAL_LEN: usize = NONCE_LEN + TAG_LEN;
/// Bytes of SHA-256 kept as a copy's checksum.
pub const CHECKSUM_LEN: usize = 16;
/// Largest key material the store wraps (the largest private key a KMS key spec has is far less).
pub const MAX_MATERIAL_BYTES: usize = 64 * 1024;

/// What an authentication seal covers; each purpose is a distinct AAD prefix.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    RootCheck,
    Generation,
    KeyRecord,
    AliasRecord,
    Contents,
    ChangeLog,
    /// A PostgreSQL store's key record row (id, generation that wrote it, record).
    PgKeyRow,
    /// A PostgreSQL store's alias row.
    PgAliasRow,
    /// A PostgreSQL store's secret row (name, generation, value MAC).
    PgSecretRow,
    /// A PostgreSQL store's change-log row.
    PgChangeRow,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::RootCheck => b"keyplane-sqlite root-check v1",
            Purpose::Generation => b"keyplane-sqlite generation v1",
            Purpose::KeyRecord => b"keyplane-sqlite key-record v1",
            Purpose::AliasRecord => b"keyplane-sqlite alias-record v1",
            Purpose::Contents => b"keyplane-sqlite contents v1",
            Purpose::ChangeLog => b"keyplane-sqlite change-log v1",
            Purpose::PgKeyRow => b"keyplane-postgres key-row v1",
            Purpose::PgAliasRow => b"keyplane-postgres alias-row v1",
            Purpose::PgSecretRow => b"keyplane-postgres secret-row v1",
            Purpose::PgChangeRow => b"keyplane-postgres change-row v1",
        }
    }
}

/// Which key version a wrapped copy belongs to: all of it is bound as associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaterialSlot {
    pub key_id: Uuid,
    pub version: u32,
    pub key_spec: KeySpec,
}

impl MaterialSlot {
    /// The slot of every version whose material a store keeps for `records`, in order: none for
    /// a key in an HSM key store (its material stays in the HSM; an external key store's key has
    /// keyplane-held material, kept as any key's), and none for imported material that expired or
    /// was deleted (it has no copies, by design).
    pub fn stored_by<'r, I>(records: I) -> impl Iterator<Item = MaterialSlot> + use<'r, I>
    where
        I: IntoIterator<Item = &'r keyplane::key::KeyRecord>,
    {
        records
            .into_iter()
            .filter(|record| record.keeps_material())
            .flat_map(|record| {
                (record.versions.iter())
                    .filter(|v| v.has_material())
                    .map(|version| MaterialSlot {
                        key_id: record.id,
                        version: version.version,
                        key_spec: record.key_spec,
                    })
            })
    }

    fn aad(&self) -> Vec<u8> {
        aad(
            b"keyplane-sqlite material v1",
            &[
                self.key_id.as_bytes(),
                &self.version.to_be_bytes(),
                self.key_spec.as_str().as_bytes(),
            ],
        )
    }

    /// The material of this slot, as the engine takes it from a store.
    pub fn holding(self, material: LockedBytes) -> keyplane::store::StoredMaterial {
        keyplane::store::StoredMaterial {
            key_id: self.key_id,
            version: self.version,
            material,
        }
    }
}

/// Why a stored copy of key material cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Damage {
    /// The copy's row is gone.
    Missing,
    /// The bytes do not match the copy's checksum: damaged at rest.
    Checksum,
    /// Too short, too long or of an unknown format.
    Malformed,
    /// The checksum matches but the root key does not authenticate it: the copy was moved from
    /// another key, version or store, or tampered with.
    Authentication,
    /// Authentic, but of an older value than the store records (a store secret's copy put back
    /// from an earlier state).
    Stale,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Damage::Missing => "missing",
            Damage::Checksum => "checksum mismatch (bytes damaged at rest)",
            Damage::Malformed => "malformed",
            Damage::Authentication => {
                "fails authentication under the root key (moved from another key or version, or tampered with)"
            }
            Damage::Stale => "holds an older value than the store records (replayed from an earlier state)",
        })
    }
}

/// Bytes of a contents element and of a store secret's value MAC (HMAC-SHA-256).
pub const MAC_LEN: usize = 32;

/// The keys derived from one root key for one store.
pub struct StoreKeys {
    wrap: SealingKey,
    auth: SealingKey,
    /// HMAC-SHA-256 key of the contents digest's elements and of store secret value MACs.
    mac: MacKey,
    lock_policy: LockPolicy,
}

impl StoreKeys {
    /// Derives the wrapping and authentication keys of store `store_id` from `root`.
    pub fn derive(root: &RootKey, store_id: &[u8], lock_policy: LockPolicy) -> Result<Self> {
        Self::derive_salted(root, store_id, lock_policy)
    }

    /// The keys of a PostgreSQL store `store_id` under `root`: HKDF salted with
    /// [`POSTGRES_DOMAIN`] ‖ store id instead of the bare store id, so that no seal, wrapped copy
    /// or digest of one kind of store opens in the other even under the same root key.
    pub fn derive_postgres(
        root: &RootKey,
        store_id: &[u8],
        lock_policy: LockPolicy,
    ) -> Result<Self> {
        let mut salt = POSTGRES_DOMAIN.to_vec();
        salt.extend_from_slice(store_id);
        Self::derive_salted(root, &salt, lock_policy)
    }

    fn derive_salted(root: &RootKey, store_id: &[u8], lock_policy: LockPolicy) -> Result<Self> {
        Ok(StoreKeys {
            wrap: SealingKey::derive(
                root.locked(),
                store_id,
                b"keyplane-sqlite v1 key material wrapping",
                lock_policy,
            )?,
            auth: SealingKey::derive(
                root.locked(),
                store_id,
                b"keyplane-sqlite v1 record authentication",
                lock_policy,
            )?,
            mac: MacKey::derive(
                root.locked(),
                store_id,
                b"keyplane-sqlite v1 contents digest",
                lock_policy,
            )?,
            lock_policy,
        })
    }

    /// HMAC-SHA-256 of `label ‖ parts` under the contents key: a pseudo-random function only the
    /// root key's holder can evaluate.
    fn prf(&self, label: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; MAC_LEN]>> {
        self.mac.mac(&aad(label, parts))
    }

    /// The MAC of one row's content as a commit left it, kept in the change log (see the
    /// change_log module): a different label from the digest's elements, which are never stored.
    pub(crate) fn row_mac(&self, parts: &[&[u8]]) -> Result<Vec<u8>> {
        Ok(self
            .prf(b"keyplane-sqlite change-log row v1", parts)?
            .to_vec())
    }

    /// The element of one record in the contents digest (see the contents module): never stored.
    pub fn element(&self, label: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; MAC_LEN]>> {
        self.prf(label, parts)
    }

    /// The MAC of the value of store secret `name`, kept in its `secrets` row so that a copy of an
    /// older value (replayed) is told from the current one.
    pub fn secret_value_mac(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .prf(
                b"keyplane-sqlite secret value v1",
                &[name.as_bytes(), value],
            )?
            .to_vec())
    }

    /// Whether `mac` is the value MAC of `value` for `name` (constant time).
    pub fn secret_value_matches(&self, name: &str, value: &[u8], mac: &[u8]) -> Result<bool> {
        let expected = self.prf(
            b"keyplane-sqlite secret value v1",
            &[name.as_bytes(), value],
        )?;
        Ok(mac.len() == MAC_LEN && constant_time_eq(expected.as_slice(), mac))
    }

    /// Encrypts and authenticates `plaintext` (the contents digest) for `parts`:
    /// `nonce (12) ‖ ciphertext ‖ tag (16)` under the authentication key.
    pub fn seal_secret(
        &self,
        purpose: Purpose,
        parts: &[&[u8]],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        self.auth.seal(&aad(purpose.label(), parts), plaintext)
    }

    /// Opens what [`seal_secret`](Self::seal_secret) made into `out` (exactly as long as the
    /// plaintext); whether it is authentic.
    pub fn open_secret(
        &self,
        purpose: Purpose,
        parts: &[&[u8]],
        sealed: &[u8],
        out: &mut [u8],
    ) -> bool {
        self.auth
            .open_into(&aad(purpose.label(), parts), sealed, out)
    }

    /// Wraps `material` for `slot` with a fresh nonce.
    pub fn wrap(&self, slot: &MaterialSlot, material: &[u8]) -> Result<Vec<u8>> {
        if material.is_empty() || material.len() > MAX_MATERIAL_BYTES {
            return Err(Error::Validation(format!(
                "key material of {} bytes cannot be stored (1 to {MAX_MATERIAL_BYTES})",
                material.len()
            )));
        }
        self.wrap_with(&slot.aad(), material)
    }

    /// Wraps the store secret `name` with a fresh nonce.
    pub fn wrap_secret(&self, name: &str, secret: &[u8]) -> Result<Vec<u8>> {
        if secret.is_empty() || secret.len() > MAX_MATERIAL_BYTES {
            return Err(Error::Validation(format!(
                "a store secret of {} bytes cannot be stored (1 to {MAX_MATERIAL_BYTES})",
                secret.len()
            )));
        }
        self.wrap_with(&secret_aad(name), secret)
    }

    /// Unwraps one copy of the store secret `name` (as [`unwrap`](Self::unwrap)).
    pub fn unwrap_secret(
        &self,
        name: &str,
        wrapped: &[u8],
    ) -> Result<std::result::Result<LockedBytes, Damage>> {
        self.unwrap_with(&secret_aad(name), wrapped)
    }

    fn wrap_with(&self, aad: &[u8], material: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; material.len() + WRAP_OVERHEAD];
        out[0] = WRAP_FORMAT;
        self.wrap.seal_into(aad, material, &mut out[1..])?;
        Ok(out)
    }

    /// Unwraps one copy into locked memory. `Ok(Err(damage))` when the copy is unusable;
    /// `Err` only when locked memory cannot be had.
    pub fn unwrap(
        &self,
        slot: &MaterialSlot,
        wrapped: &[u8],
    ) -> Result<std::result::Result<LockedBytes, Damage>> {
        self.unwrap_with(&slot.aad(), wrapped)
    }

    fn unwrap_with(
        &self,
        aad: &[u8],
        wrapped: &[u8],
    ) -> Result<std::result::Result<LockedBytes, Damage>> {
        if wrapped.len() <= WRAP_OVERHEAD
            || wrapped.len() > MAX_MATERIAL_BYTES + WRAP_OVERHEAD
            || wrapped[0] != WRAP_FORMAT
        {
            return Ok(Err(Damage::Malformed));
        }
        match self
            .wrap
            .open_locked(aad, &wrapped[1..], self.lock_policy)?
        {
            Some(material) => Ok(Ok(material)),
            None => Ok(Err(Damage::Authentication)),
        }
    }

    /// Judges every copy of one version of key material (`None` where a copy is missing):
    /// the material of the first good copy, and each copy that is not good with what it held
    /// when read. Every copy is judged, so that each damaged one can be repaired. `Err` only
    /// when locked memory cannot be had.
    pub fn judge_version(
        &self,
        slot: MaterialSlot,
        copies: &[Option<StoredCopy>],
    ) -> Result<JudgedVersion> {
        let mut judged = JudgedVersion {
            material: None,
            damaged: Vec::new(),
        };
        for (index, copy) in copies.iter().enumerate() {
            let unwrapped = match StoredCopy::intact(copy.as_ref()) {
                Ok(wrapped) => self.unwrap(&slot, wrapped)?,
                Err(damage) => Err(damage),
            };
            match unwrapped {
                Ok(material) => {
                    judged
                        .material
                        .get_or_insert_with(|| slot.holding(material));
                }
                Err(damage) => judged.damaged.push(DamagedCopy {
                    slot,
                    copy: index,
                    damage,
                    seen: copy.clone(),
                }),
            }
        }
        Ok(judged)
    }

    /// A seal over `parts` for `purpose`.
    pub fn seal(&self, purpose: Purpose, parts: &[&[u8]]) -> Result<Vec<u8>> {
        Ok(self
            .auth
            .authenticate(&aad(purpose.label(), parts))?
            .to_vec())
    }

    /// Whether `seal` authenticates `parts` for `purpose`.
    pub fn check(&self, purpose: Purpose, parts: &[&[u8]], seal: &[u8]) -> bool {
        self.auth.verify(&aad(purpose.label(), parts), seal)
    }

    /// The seal of store `store_id`'s generation counter at `generation` (what stops anyone
    /// without the root key from setting the counter back or forward).
    pub fn seal_generation(&self, store_id: &[u8; 16], generation: u64) -> Result<Vec<u8>> {
        self.seal(Purpose::Generation, &[store_id, &generation.to_be_bytes()])
    }

    /// Whether `seal` is [`Self::seal_generation`] of `generation` for store `store_id`.
    pub fn generation_sealed(&self, store_id: &[u8; 16], generation: u64, seal: &[u8]) -> bool {
        self.check(
            Purpose::Generation,
            &[store_id, &generation.to_be_bytes()],
            seal,
        )
    }

    /// The root check value of store `store_id`: what tells whether a candidate root key is the
    /// store's.
    pub fn seal_root_check(&self, store_id: &[u8; 16]) -> Result<Vec<u8>> {
        self.seal(Purpose::RootCheck, &[store_id])
    }

    /// Whether these keys are the ones whose root check value of store `store_id` is `check`.
    pub fn root_check_matches(&self, store_id: &[u8; 16], check: &[u8]) -> bool {
        self.check(Purpose::RootCheck, &[store_id], check)
    }
}

/// The checksum kept beside each wrapped copy: the first 16 bytes of its SHA-256.
pub fn checksum(wrapped: &[u8]) -> Vec<u8> {
    digest(&SHA256, wrapped).as_ref()[..CHECKSUM_LEN].to_vec()
}

/// One stored copy of sealed bytes (a version of key material, a store secret), as a store
/// writes and reads it: the bytes and their checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCopy {
    pub wrapped: Vec<u8>,
    pub checksum: Vec<u8>,
}

impl StoredCopy {
    /// A new copy of `material` for `slot`: wrapped under the store keys with a fresh nonce, with
    /// its checksum (the one way a copy of key material is made).
    pub fn sealed(keys: &StoreKeys, slot: &MaterialSlot, material: &[u8]) -> Result<StoredCopy> {
        let wrapped = keys.wrap(slot, material)?;
        let checksum = checksum(&wrapped);
        Ok(StoredCopy { wrapped, checksum })
    }

    /// The sealed bytes of a copy that exists and matches its checksum; else its damage.
    pub fn intact(copy: Option<&StoredCopy>) -> std::result::Result<&[u8], Damage> {
        match copy {
            None => Err(Damage::Missing),
            Some(copy) if checksum(&copy.wrapped) != copy.checksum => Err(Damage::Checksum),
            Some(copy) => Ok(&copy.wrapped),
        }
    }
}

/// What [`StoreKeys::judge_version`] found.
#[derive(Debug)]
pub struct JudgedVersion {
    /// The first good copy's material; `None` when no copy is good (the version is lost).
    pub material: Option<keyplane::store::StoredMaterial>,
    /// Each copy that is not good.
    pub damaged: Vec<DamagedCopy>,
}

/// A damaged copy of key material, and what it held when read (a repair rewrites it only if it
/// still holds that).
#[derive(Debug)]
pub struct DamagedCopy {
    pub slot: MaterialSlot,
    /// 0-based copy index.
    pub copy: usize,
    pub damage: Damage,
    pub seen: Option<StoredCopy>,
}

/// The associated data of the store secret `name`.
fn secret_aad(name: &str) -> Vec<u8> {
    aad(b"keyplane-sqlite secret v1", &[name.as_bytes()])
}

/// `label ‖ (u32 len ‖ part)*`: an injective encoding of the authenticated parts.
fn aad(label: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(label.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    out.extend_from_slice(label);
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(store_id: &[u8]) -> StoreKeys {
        let root =
            RootKey::from_locked(LockedBytes::copy_from(&[7u8; 32], LockPolicy::Require).unwrap())
                .unwrap();
        StoreKeys::derive(&root, store_id, LockPolicy::Require).unwrap()
    }

    fn slot(version: u32) -> MaterialSlot {
        MaterialSlot {
            key_id: Uuid::from_bytes([1; 16]),
            version,
            key_spec: KeySpec::SymmetricDefault,
        }
    }

    #[test]
    fn wrapped_material_round_trips_and_every_bit_is_authenticated() {
        let keys = keys(b"store-a");
        let wrapped = keys.wrap(&slot(1), &[0x42; 32]).unwrap();
        assert_eq!(wrapped.len(), 32 + WRAP_OVERHEAD);
        assert!(
            !wrapped.windows(32).any(|w| w == [0x42; 32]),
            "material is not in clear"
        );
        let material = keys.unwrap(&slot(1), &wrapped).unwrap().unwrap();
        assert_eq!(
            material.expose(keyplane::SecretAccess::granted()),
            &[0x42; 32]
        );
        for i in 1..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                keys.unwrap(&slot(1), &bad).unwrap().err(),
                Some(Damage::Authentication),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_copy_moved_to_another_key_version_spec_or_store_fails_to_unwrap() {
        let keys_a = keys(b"store-a");
        let wrapped = keys_a.wrap(&slot(1), &[9; 32]).unwrap();
        let other_key = MaterialSlot {
            key_id: Uuid::from_bytes([2; 16]),
            ..slot(1)
        };
        let other_spec = MaterialSlot {
            key_spec: KeySpec::Hmac256,
            ..slot(1)
        };
        for moved in [slot(2), other_key, other_spec] {
            assert_eq!(
                keys_a.unwrap(&moved, &wrapped).unwrap().err(),
                Some(Damage::Authentication)
            );
        }
        let keys_b = keys(b"store-b");
        assert_eq!(
            keys_b.unwrap(&slot(1), &wrapped).unwrap().err(),
            Some(Damage::Authentication)
        );
    }

    #[test]
    fn a_secret_is_bound_to_its_name_and_store_and_apart_from_key_material() {
        let keys_a = keys(b"store-a");
        let wrapped = keys_a.wrap_secret("audit", &[5; 121]).unwrap();
        assert_eq!(
            keys_a
                .unwrap_secret("audit", &wrapped)
                .unwrap()
                .unwrap()
                .expose(keyplane::SecretAccess::granted()),
            &[5; 121]
        );
        assert_eq!(
            keys_a.unwrap_secret("audit2", &wrapped).unwrap().err(),
            Some(Damage::Authentication)
        );
        assert_eq!(
            keys(b"store-b")
                .unwrap_secret("audit", &wrapped)
                .unwrap()
                .err(),
            Some(Damage::Authentication)
        );
        // A wrapped key version is no secret, and a secret no key version.
        let material = keys_a.wrap(&slot(1), &[5; 32]).unwrap();
        assert!(keys_a.unwrap_secret("audit", &material).unwrap().is_err());
        assert!(keys_a.unwrap(&slot(1), &wrapped).unwrap().is_err());
        assert!(keys_a.wrap_secret("audit", &[]).is_err());
    }

    #[test]
    fn malformed_copies_are_reported_as_such() {
        let keys = keys(b"s");
        let wrapped = keys.wrap(&slot(1), &[1; 32]).unwrap();
        let mut wrong_format = wrapped.clone();
        wrong_format[0] = 0x02;
        for bad in [Vec::new(), wrapped[..WRAP_OVERHEAD].to_vec(), wrong_format] {
            assert_eq!(
                keys.unwrap(&slot(1), &bad).unwrap().err(),
                Some(Damage::Malformed)
            );
        }
    }

    #[test]
    fn seals_bind_purpose_and_every_part() {
        let keys = keys(b"s");
        let seal = keys
            .seal(Purpose::Generation, &[b"id", &7u64.to_be_bytes()])
            .unwrap();
        assert!(keys.check(Purpose::Generation, &[b"id", &7u64.to_be_bytes()], &seal));
        assert!(!keys.check(Purpose::Generation, &[b"id", &8u64.to_be_bytes()], &seal));
        assert!(!keys.check(Purpose::RootCheck, &[b"id", &7u64.to_be_bytes()], &seal));
        assert!(!keys.check(
            Purpose::Generation,
            &[b"i", b"d", &7u64.to_be_bytes()],
            &seal
        ));
        assert!(!keys.check(
            Purpose::Generation,
            &[b"id", &7u64.to_be_bytes()],
            &seal[1..]
        ));
    }
}
