//! The data plane's view of the keys: an immutable snapshot that the control plane replaces on
//! every change and that data-plane calls read without a lock.
//!
//! The snapshot's maps are persistent (structurally shared) hash array mapped tries from `imbl`:
//! a change makes a new snapshot that copies only the path to the changed entry (at most seven
//! nodes of 32 slots; about four at a million keys) and shares every other node with the previous
//! one. With a `std` `HashMap` each change copied the whole map, so CreateKey cost grew linearly
//! with the number of keys (docs/performance.md, "Many keys"). Why `imbl`'s `HashMap`:
//! - it is maintained, and its trie keeps a lookup to a few pointer hops with no lock, so the
//!   data plane stays lock-free behind `arc_swap` (`benches/keyring.rs` measures it against
//!   `std`'s `HashMap` at 1 k to 1 M keys: ~4 ns more per lookup of a key in cache, up to ~45 ns
//!   more for a cold key at 1 M keys; a change costs 6.7 us where copying a `std` map of 1 M
//!   keys cost 78 ms; docs/performance.md, "Many keys");
//! - an `OrdMap` (B-tree) compares whole keys at every level, where the trie looks at 5 bits of
//!   the hash per level;
//! - per-key publication (one `ArcSwap` per key in a fixed table) would need a concurrent map
//!   for inserts and removals, with a lock or epochs on the data plane's path.
//!
//! `imbl` is MPL-2.0 (file-level copyleft; used unmodified as a dependency).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use uuid::Uuid;

use super::external_key::ExternalKey;
use super::primitive::KeyPrimitive;
use super::session::{DecryptKeys, EncryptSession};
use super::slot_cache::SlotCache;
use crate::access::authorize::KeyAccess;
use crate::access::Action;
use crate::error::{Error, Result};
use crate::key::identifier::{ArnScope, KeyReference};
use crate::key::state::{self, KeyOperation};
use crate::key::{KeySpec, KeyState, KeyUsage};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::messages;

/// One version of a key's material with its derived-key caches.
pub(crate) struct VersionEntry {
    pub(crate) version: u32,
    pub(crate) material_id: String,
    /// The material the engine derives from (empty for a key in a custom key store).
    pub(crate) material: LockedBytes,
    pub(crate) primitive: KeyPrimitive,
    /// A key in a custom key store: its backing key and the live connection that derives with it.
    pub(crate) external: Option<ExternalKey>,
    pub(crate) encrypt_sessions: SlotCache<EncryptSession>,
    pub(crate) decrypt_keys: SlotCache<DecryptKeys>,
}

impl VersionEntry {
    /// A version of a key of `spec` and `usage`; fails if the material does not fit them.
    pub(crate) fn new(
        spec: KeySpec,
        usage: KeyUsage,
        version: u32,
        material_id: String,
        material: LockedBytes,
        policy: LockPolicy,
    ) -> Result<Self> {
        Ok(VersionEntry {
            version,
            material_id,
            primitive: KeyPrimitive::new(spec, usage, &material, policy)?,
            material,
            external: None,
            encrypt_sessions: SlotCache::default(),
            decrypt_keys: SlotCache::default(),
        })
    }

    /// A version of a SYMMETRIC_DEFAULT key held in a custom key store, usable while
    /// `external.connection` is live. Its caches start empty: a reconnection derives afresh.
    pub(crate) fn external(
        version: u32,
        material_id: String,
        material: Option<LockedBytes>,
        external: ExternalKey,
        policy: LockPolicy,
    ) -> Result<Self> {
        let material = match material {
            Some(material) => material,
            None => LockedBytes::copy_from(&[], policy)?,
        };
        Ok(VersionEntry {
            version,
            material_id,
            material,
            primitive: KeyPrimitive::Symmetric,
            external: Some(external),
            encrypt_sessions: SlotCache::default(),
            decrypt_keys: SlotCache::default(),
        })
    }

    /// Whether this version is of a key in an external key store: its data goes through the
    /// double encryption of [`super::xks`] instead of the session cache.
    pub(crate) fn double_encrypted(&self) -> Option<&ExternalKey> {
        self.external
            .as_ref()
            .filter(|e| e.connection.encrypts_blobs())
    }

    /// The AES-256-GCM key of `salt` for this version of key `key_id`: HKDF of the material, or,
    /// for a key in a custom key store, HKDF of the backing key's salt key (computed in the HSM).
    /// Derived into `reuse`'s locked slot when there is one (a cache's evicted key).
    pub(crate) fn derive(
        &self,
        key_id: &Uuid,
        salt: &[u8; crate::ciphertext::SALT_LEN],
        policy: LockPolicy,
        reuse: Option<crate::crypto::aes_gcm::AesGcmKey>,
    ) -> Result<crate::crypto::aes_gcm::AesGcmKey> {
        match &self.external {
            None => super::session::derive_key(
                &self.material,
                key_id,
                self.version,
                salt,
                policy,
                reuse,
            ),
            Some(external) => super::session::derive_external_key(
                external,
                key_id,
                self.version,
                salt,
                policy,
                reuse,
            ),
        }
    }
}

/// What the data plane needs of one key.
pub(crate) struct KeyEntry {
    pub(crate) id: Uuid,
    pub(crate) arn: String,
    pub(crate) state: KeyState,
    pub(crate) spec: KeySpec,
    pub(crate) usage: KeyUsage,
    /// Index `v - 1` holds version `v`; the last one encrypts.
    pub(crate) versions: Vec<Arc<VersionEntry>>,
    /// The last of `versions`, held here too: a cold key's Encrypt, GenerateMac or Sign reads
    /// the entry and then the version, without the `versions` buffer (a dependent cache miss,
    /// and at a million keys a page of its own) between them. Set by [`KeyEntry::new`].
    current: Option<Arc<VersionEntry>>,
    /// The key policy and grants, in the entry itself: built for this entry alone, and read by
    /// every call that uses the key, so a cold key's call does not wait for one more
    /// allocation's lines after the entry's.
    pub(crate) access: KeyAccess,
}

impl KeyEntry {
    /// The entry of key `id`, `arn`, whose versions are `versions` (index `v - 1` holds version
    /// `v`).
    pub(crate) fn new(
        id: Uuid,
        arn: String,
        state: KeyState,
        spec: KeySpec,
        usage: KeyUsage,
        versions: Vec<Arc<VersionEntry>>,
        access: KeyAccess,
    ) -> KeyEntry {
        KeyEntry {
            id,
            arn,
            state,
            spec,
            usage,
            current: versions.last().cloned(),
            versions,
            access,
        }
    }

    /// Checks that the key's state allows use now and that its usage is `usage`, the one
    /// `operation` needs.
    pub(crate) fn check_usage(&self, usage: KeyUsage, operation: Action) -> Result<()> {
        state::check(KeyOperation::Cryptographic, self.state, &self.arn)?;
        if self.usage != usage {
            return Err(messages::wrong_key_usage(&self.arn, self.usage, operation));
        }
        Ok(())
    }

    /// Checks that the key may be used for symmetric encryption and decryption right now.
    pub(crate) fn check_encrypt_decrypt(&self, operation: Action) -> Result<()> {
        self.check_usage(KeyUsage::EncryptDecrypt, operation)?;
        self.check_symmetric()
    }

    /// Checks that the key is a symmetric (SYMMETRIC_DEFAULT) key, for a caller that has checked
    /// its state and usage.
    pub(crate) fn check_symmetric(&self) -> Result<()> {
        if self.spec != KeySpec::SymmetricDefault {
            return Err(Error::InvalidKeyUsage(format!(
                "{} is a {} key; this operation needs a symmetric (SYMMETRIC_DEFAULT) key",
                self.arn, self.spec
            )));
        }
        Ok(())
    }

    /// The version that encrypts new data.
    pub(crate) fn current(&self) -> Result<&Arc<VersionEntry>> {
        self.current
            .as_ref()
            .ok_or_else(|| Error::InvalidState(format!("{} has no key material", self.arn)))
    }

    /// Version `v`, if the key has it.
    pub(crate) fn version(&self, v: u32) -> Option<&Arc<VersionEntry>> {
        let index = usize::try_from(v).ok()?.checked_sub(1)?;
        self.versions.get(index)
    }
}

/// Key ids are random (v4) UUIDs generated by the engine, so their first eight bytes are already
/// a good hash. Lookups with attacker-chosen ids only probe; they never insert.
#[derive(Default, Debug)]
pub struct KeyIdHasher(u64);

impl Hasher for KeyIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// A persistent map by key id: cloning it is O(1), a change to a clone O(log n).
pub(crate) type KeyMap<V> = imbl::GenericHashMap<
    Uuid,
    V,
    BuildHasherDefault<KeyIdHasher>,
    imbl::shared_ptr::DefaultSharedPtr,
>;

/// A persistent map by alias name. Alias names are chosen by callers, so they are hashed with
/// `std`'s keyed SipHash: a caller cannot aim names at one trie node.
pub(crate) type AliasMap =
    imbl::GenericHashMap<String, Uuid, RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// An immutable snapshot of every key and alias. Cloning one is O(1): the clone shares every
/// node with the original until one of them changes.
#[derive(Default, Clone)]
pub(crate) struct Keyring {
    pub(crate) keys: KeyMap<Arc<KeyEntry>>,
    pub(crate) aliases: AliasMap,
}

impl Keyring {
    /// Finds the key the KeyId of `operation` names (key id, key ARN, alias name or alias ARN, as
    /// the identifier table allows for the operation).
    pub(crate) fn resolve(
        &self,
        scope: &ArnScope,
        identifier: &str,
        operation: Action,
    ) -> Result<&Arc<KeyEntry>> {
        let id = match scope.parse_for(identifier, operation)? {
            KeyReference::Key(id) => id,
            KeyReference::Alias(name) => *self
                .aliases
                .get(name)
                .ok_or_else(|| messages::alias_not_found(&scope.alias_arn(name)))?,
        };
        self.keys
            .get(&id)
            .ok_or_else(|| messages::key_does_not_exist(&scope.key_arn(&id)))
    }
}
