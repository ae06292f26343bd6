//! Model-based tests of the key lifecycle.
//!
//! `lifecycle_matches_the_reference_model`: random sequences of CreateKey, CreateAlias,
//! UpdateAlias, DeleteAlias, EnableKey, DisableKey, Enable/DisableKeyRotation, RotateKeyOnDemand,
//! Schedule/CancelKeyDeletion, advancing a `ManualClock`, Encrypt, Decrypt, ReEncrypt,
//! GenerateDataKey and DescribeKey, and for keys with imported material (Origin EXTERNAL)
//! GetParametersForImport, ImportKeyMaterial (new material, re-import, expiring material) and
//! DeleteImportedKeyMaterial, run against an engine and against [`Model`], a small reference
//! of the service's rules: the key state table (`key/state.rs`, the service's "key states"
//! reference), the 7–30 day deletion window, deletions and automatic rotations happening when a
//! control-plane call finds them due (the README's `scheduler_interval` setting: data-plane calls
//! do not run them), on-demand (at most 25) and automatic rotation, aliases and their removal with
//! their key, validation before anything else, the order in which a request's problems are
//! reported, and imported material: a key is PendingImport until all its active material is there,
//! expired or deleted material makes it PendingImport again, only the same material re-imports,
//! new material waits for RotateKeyOnDemand, import tokens are bound to their key and expire after
//! 24 hours. Every result and every error code must agree, step by step; at the end of each case
//! the key and alias lists and every ciphertext are checked again. Failures shrink to a minimal
//! sequence.
//!
//! `a_call_refused_by_validation_runs_no_due_deletion`: fixed sequences for the rule above that
//! random inputs reach only rarely: a call refused by validation runs no due deletion.
//!
//! `concurrent_operations_lose_nothing`: the same kinds of operations from several threads at
//! once on one engine: no panic, no lost key, no internal error, and every ciphertext that was
//! returned decrypts to what was encrypted.
//!
//! Sizes: `KEYPLANE_MODEL_CASES` (default 128) cases of up to `KEYPLANE_MODEL_STEPS` (default 80)
//! steps; `KEYPLANE_CONCURRENCY_CASES` (default 16) cases of 4 threads. Counts are printed as
//! `assurance: ...` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyplane::ciphertext;
use keyplane::clock::DAY_MS;
use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{
    CreateKeyRequest, DecryptRequest, EncryptRequest, EncryptionContext, Engine, ExpirationModel,
    GenerateDataKeyRequest, ImportKeyMaterialRequest, ImportType, KeyState, LockPolicy,
    ManualClock, Origin, ReEncryptRequest, ReplicateKeyRequest, Timestamp, WrappingAlgorithm,
    WrappingKeySpec,
};
use keyplane_testkit::new_key;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use rsa::pkcs8::DecodePublicKey;
use uuid::Uuid;

const START: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- operations ------------------------------------------------------------------------------

/// How a step names a key.
#[derive(Clone, Debug)]
enum KeyRef {
    /// The n-th key created (modulo the number created), by key id.
    Id(usize),
    /// ... by key ARN.
    Arn(usize),
    /// An alias of the pool, by name (it may not exist).
    Alias(usize),
    /// An alias of the pool, by alias ARN.
    AliasArn(usize),
    /// Something that names no key: a fresh key id, a non-identifier, another region's ARN, a
    /// malformed ARN, an empty string.
    Missing(usize),
}

/// The alias names steps use: three valid ones, a reserved one and a malformed one.
const ALIASES: [&str; 5] = [
    "alias/a0",
    "alias/a1",
    "alias/a2",
    "alias/aws/reserved",
    "bad-name",
];
const ARN_PREFIX: &str = "arn:aws:kms:us-east-1:111122223333:";
/// The Region replicas go to.
const WEST: &str = "us-west-2";

fn context(index: u8) -> Option<EncryptionContext> {
    match index % 3 {
        0 => None,
        1 => Some([("tenant".to_string(), "42".to_string())].into()),
        _ => Some([("tenant".to_string(), "43".to_string())].into()),
    }
}

#[derive(Clone, Debug)]
enum Op {
    CreateKey,
    CreateAlias {
        alias: usize,
        target: KeyRef,
        by_arn: bool,
    },
    UpdateAlias {
        alias: usize,
        target: KeyRef,
    },
    DeleteAlias {
        alias: usize,
    },
    Enable(KeyRef),
    Disable(KeyRef),
    EnableRotation(KeyRef, Option<u32>),
    DisableRotation(KeyRef),
    /// `Some(n)`: the n-th multi-Region key instead, where there is one.
    Rotate(KeyRef, Option<usize>),
    ScheduleDeletion(KeyRef, Option<u32>),
    CancelDeletion(KeyRef),
    Advance(i64),
    Encrypt {
        key: KeyRef,
        len: usize,
        context: u8,
        /// `Some(n)`: the n-th multi-Region key instead, where there is one.
        multi_region: Option<usize>,
    },
    Decrypt {
        blob: usize,
        context: u8,
        key: Option<KeyRef>,
    },
    ReEncrypt {
        blob: usize,
        source_context: u8,
        destination: KeyRef,
        destination_context: u8,
    },
    GenerateDataKey {
        key: KeyRef,
        bytes: usize,
        context: u8,
    },
    Describe(KeyRef),
    /// CreateKey with Origin EXTERNAL: a key without material, PendingImport.
    CreateExternalKey,
    /// GetParametersForImport (RSAES_OAEP_SHA_256, RSA_2048); the token is kept for Import.
    /// `Some(n)`: the n-th EXTERNAL key (modulo their number) by key id, where there is one.
    GetParameters(KeyRef, Option<usize>),
    Import {
        /// Which of the tokens fetched so far (modulo their number).
        token: usize,
        /// Which of three materials (32 bytes each).
        material: u8,
        /// Name the key after the token's key (a token is bound to its key).
        other_key: bool,
        /// KEY_MATERIAL_EXPIRES in this many days (366: too far), or DOES_NOT_EXPIRE.
        valid_days: Option<u32>,
        /// NEW_KEY_MATERIAL (true), EXISTING_KEY_MATERIAL (false), or the default.
        new_material: Option<bool>,
    },
    DeleteImported(KeyRef, Option<usize>),
    /// CreateKey with MultiRegion=true: a primary key in this Region (us-east-1).
    CreateMultiRegionKey,
    /// ReplicateKey into us-west-2. `Some(n)`: the n-th multi-Region key, where there is one.
    Replicate(KeyRef, Option<usize>),
    /// EnableKey (true) or DisableKey of the n-th multi-Region key's replica, in us-west-2.
    ReplicaSetEnabled(usize, bool),
    /// Decrypt of a ciphertext in us-west-2 (only a multi-Region key's replica can).
    /// `replicated`: one of a replicated key's ciphertexts, where there is one.
    ReplicaDecrypt {
        blob: usize,
        /// The context to give; `None`: the ciphertext's own.
        context: Option<u8>,
        replicated: bool,
    },
}

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::CreateKey => "CreateKey",
            Op::CreateAlias { .. } => "CreateAlias",
            Op::UpdateAlias { .. } => "UpdateAlias",
            Op::DeleteAlias { .. } => "DeleteAlias",
            Op::Enable(_) => "EnableKey",
            Op::Disable(_) => "DisableKey",
            Op::EnableRotation(..) => "EnableKeyRotation",
            Op::DisableRotation(_) => "DisableKeyRotation",
            Op::Rotate(..) => "RotateKeyOnDemand",
            Op::ScheduleDeletion(..) => "ScheduleKeyDeletion",
            Op::CancelDeletion(_) => "CancelKeyDeletion",
            Op::Advance(_) => "AdvanceClock",
            Op::Encrypt { .. } => "Encrypt",
            Op::Decrypt { .. } => "Decrypt",
            Op::ReEncrypt { .. } => "ReEncrypt",
            Op::GenerateDataKey { .. } => "GenerateDataKey",
            Op::Describe(_) => "DescribeKey",
            Op::CreateExternalKey => "CreateKey(EXTERNAL)",
            Op::GetParameters(..) => "GetParametersForImport",
            Op::Import { .. } => "ImportKeyMaterial",
            Op::DeleteImported(..) => "DeleteImportedKeyMaterial",
            Op::CreateMultiRegionKey => "CreateKey(MultiRegion)",
            Op::Replicate(..) => "ReplicateKey",
            Op::ReplicaSetEnabled(..) => "Enable/DisableKey(replica)",
            Op::ReplicaDecrypt { .. } => "Decrypt(replica)",
        }
    }
}

fn key_ref() -> impl Strategy<Value = KeyRef> {
    prop_oneof![
        6 => (0usize..8).prop_map(KeyRef::Id),
        2 => (0usize..8).prop_map(KeyRef::Arn),
        3 => (0usize..5).prop_map(KeyRef::Alias),
        1 => (0usize..4).prop_map(KeyRef::AliasArn),
        1 => (0usize..5).prop_map(KeyRef::Missing),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let window = prop_oneof![Just(None), (5u32..=32).prop_map(Some)];
    let period = prop_oneof![
        Just(None),
        prop::sample::select(vec![89u32, 90, 91, 180, 365, 2560, 2561]).prop_map(Some)
    ];
    let advance = prop::sample::select(vec![
        HOUR_MS,
        DAY_MS,
        6 * DAY_MS,
        7 * DAY_MS,
        8 * DAY_MS,
        30 * DAY_MS,
        31 * DAY_MS,
        91 * DAY_MS,
        366 * DAY_MS,
    ]);
    let len = prop_oneof![8 => 1usize..=64, 1 => Just(0usize), 1 => Just(4096usize), 1 => Just(4097usize)];
    prop_oneof![
        6 => Just(Op::CreateKey),
        3 => (0usize..5, key_ref(), any::<bool>()).prop_map(|(alias, target, by_arn)| Op::CreateAlias { alias, target, by_arn }),
        2 => (0usize..5, key_ref()).prop_map(|(alias, target)| Op::UpdateAlias { alias, target }),
        1 => (0usize..5).prop_map(|alias| Op::DeleteAlias { alias }),
        2 => key_ref().prop_map(Op::Enable),
        2 => key_ref().prop_map(Op::Disable),
        2 => (key_ref(), period).prop_map(|(k, p)| Op::EnableRotation(k, p)),
        1 => key_ref().prop_map(Op::DisableRotation),
        2 => (key_ref(), prop::option::weighted(0.3, 0usize..4)).prop_map(|(k, m)| Op::Rotate(k, m)),
        2 => (key_ref(), window).prop_map(|(k, w)| Op::ScheduleDeletion(k, w)),
        2 => key_ref().prop_map(Op::CancelDeletion),
        2 => advance.prop_map(Op::Advance),
        6 => (key_ref(), len, any::<u8>(), prop::option::weighted(0.25, 0usize..4)).prop_map(|(key, len, context, multi_region)| Op::Encrypt { key, len, context, multi_region }),
        6 => (any::<usize>(), any::<u8>(), prop::option::of(key_ref())).prop_map(|(blob, context, key)| Op::Decrypt { blob, context, key }),
        3 => (any::<usize>(), any::<u8>(), key_ref(), any::<u8>()).prop_map(|(blob, source_context, destination, destination_context)| Op::ReEncrypt { blob, source_context, destination, destination_context }),
        2 => (key_ref(), prop::sample::select(vec![0usize, 1, 16, 32, 1024, 1025]), any::<u8>()).prop_map(|(key, bytes, context)| Op::GenerateDataKey { key, bytes, context }),
        2 => key_ref().prop_map(Op::Describe),
        2 => Just(Op::CreateExternalKey),
        3 => (key_ref(), prop::option::weighted(0.8, 0usize..4)).prop_map(|(k, e)| Op::GetParameters(k, e)),
        5 => (any::<usize>(), 0u8..3, prop::bool::weighted(0.1), prop::sample::select(vec![None, None, Some(1u32), Some(30), Some(366)]), prop::sample::select(vec![None, Some(true), Some(false)]))
            .prop_map(|(token, material, other_key, valid_days, new_material)| Op::Import { token, material, other_key, valid_days, new_material }),
        1 => (key_ref(), prop::option::weighted(0.8, 0usize..4)).prop_map(|(k, e)| Op::DeleteImported(k, e)),
        2 => Just(Op::CreateMultiRegionKey),
        2 => (key_ref(), prop::option::weighted(0.8, 0usize..4)).prop_map(|(k, m)| Op::Replicate(k, m)),
        1 => (0usize..4, any::<bool>()).prop_map(|(n, e)| Op::ReplicaSetEnabled(n, e)),
        4 => (any::<usize>(), prop::option::weighted(0.2, any::<u8>()), prop::bool::weighted(0.8)).prop_map(|(blob, context, replicated)| Op::ReplicaDecrypt { blob, context, replicated }),
    ]
}

// ---- the reference model ---------------------------------------------------------------------

const NOT_FOUND: &str = "NotFoundException";
const INVALID_STATE: &str = "KMSInvalidStateException";
const DISABLED: &str = "DisabledException";
const VALIDATION: &str = "ValidationException";
const INVALID_CIPHERTEXT: &str = "InvalidCiphertextException";
const UNSUPPORTED: &str = "UnsupportedOperationException";
const INCORRECT_MATERIAL: &str = "IncorrectKeyMaterialException";

/// The three materials ImportKeyMaterial steps import.
fn material(which: u8) -> [u8; 32] {
    [0x40 + which; 32]
}

/// Wraps `material` as a user does for RSAES_OAEP_SHA_256, with RustCrypto's `rsa`.
fn wrap(public_key: &[u8], material: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPublicKey::from_public_key_der(public_key).expect("SPKI RSA public key");
    key.encrypt(
        &mut rand_core::OsRng,
        rsa::Oaep::new::<sha2::Sha256>(),
        material,
    )
    .expect("OAEP encrypt")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Enabled,
    Disabled,
    PendingDeletion,
    /// An EXTERNAL key some of whose active material is missing (never imported, expired or
    /// deleted).
    PendingImport,
    /// A multi-Region primary key scheduled for deletion while it has a replica: it waits, with no
    /// deletion date, until the replica is gone (or the deletion is cancelled).
    PendingReplicaDeletion,
    /// Deleted by a control-plane call that found its deletion due.
    Deleted,
}

/// One imported material of an EXTERNAL key.
#[derive(Clone, Debug)]
struct Material {
    /// Which of the three test materials.
    which: u8,
    /// Held now (not expired, not deleted).
    imported: bool,
    valid_to: Option<i64>,
    /// Imported as new material, waiting for RotateKeyOnDemand.
    pending: bool,
}

/// An import token fetched by GetParametersForImport.
#[derive(Clone, Debug)]
struct Token {
    key: usize,
    token: Vec<u8>,
    public_key: Vec<u8>,
    valid_to: i64,
}

#[derive(Clone, Debug)]
struct Key {
    /// The key id as the engine gives it (`mrk-...` for a multi-Region key).
    key_id: String,
    id: Uuid,
    state: State,
    versions: u32,
    deletion_date: Option<i64>,
    /// Automatic rotation: period in days and next date.
    rotation: Option<(u32, i64)>,
    on_demand: u32,
    /// Origin EXTERNAL: its versions are `materials` that are not pending.
    external: bool,
    materials: Vec<Material>,
    multi_region: bool,
    /// The state of its replica in us-west-2 (Enabled or Disabled), if replicated.
    replica: Option<State>,
}

impl Key {
    fn new(key_id: &str, external: bool) -> Key {
        Key {
            key_id: key_id.to_owned(),
            id: Uuid::parse_str(key_id.trim_start_matches("mrk-")).unwrap(),
            multi_region: key_id.starts_with("mrk-"),
            replica: None,
            state: if external {
                State::PendingImport
            } else {
                State::Enabled
            },
            versions: u32::from(!external),
            deletion_date: None,
            rotation: None,
            on_demand: 0,
            external,
            materials: Vec::new(),
        }
    }

    /// An EXTERNAL key holds all of its active (not pending) material.
    fn has_all_material(&self) -> bool {
        !self.external
            || (!self.materials.is_empty()
                && self
                    .materials
                    .iter()
                    .filter(|m| !m.pending)
                    .all(|m| m.imported))
    }

    /// After its material changed: PendingImport while some is missing, Enabled once all is
    /// back (a key pending deletion stays so).
    fn settle(&mut self) {
        if matches!(
            self.state,
            State::PendingDeletion | State::PendingReplicaDeletion | State::Deleted
        ) {
            return;
        }
        if !self.has_all_material() {
            self.state = State::PendingImport;
        } else if self.state == State::PendingImport {
            self.state = State::Enabled;
        }
    }
}

#[derive(Clone, Debug)]
struct Blob {
    bytes: Vec<u8>,
    key: usize,
    plaintext: Vec<u8>,
    context: u8,
}

/// The service's rules, for the operations above, from its documentation.
#[derive(Default)]
struct Model {
    now: i64,
    keys: Vec<Key>,
    aliases: BTreeMap<&'static str, usize>,
    blobs: Vec<Blob>,
    tokens: Vec<Token>,
}

type Expect<T> = Result<T, &'static str>;

impl Model {
    fn key_index(&self, n: usize) -> Option<usize> {
        (!self.keys.is_empty()).then(|| n % self.keys.len())
    }

    /// The identifier a reference is written as.
    fn identifier(&self, r: &KeyRef, engine: &Engine) -> String {
        match r {
            KeyRef::Id(n) => match self.key_index(*n) {
                Some(i) => self.keys[i].key_id.clone(),
                None => "00000000-0000-4000-8000-000000000000".into(),
            },
            KeyRef::Arn(n) => match self.key_index(*n) {
                Some(i) => engine.key_arn(&self.keys[i].id),
                None => format!("{ARN_PREFIX}key/00000000-0000-4000-8000-000000000000"),
            },
            KeyRef::Alias(a) => ALIASES[*a].to_string(),
            KeyRef::AliasArn(a) => format!("{ARN_PREFIX}{}", ALIASES[*a]),
            KeyRef::Missing(m) => match m {
                0 => Uuid::new_v4().hyphenated().to_string(),
                1 => "not-a-key".into(),
                2 => format!(
                    "arn:aws:kms:eu-west-1:111122223333:key/{}",
                    self.keys.first().map_or_else(Uuid::new_v4, |k| k.id)
                ),
                3 => "arn:aws:kms".into(),
                _ => String::new(),
            },
        }
    }

    /// `Some(n)`: the n-th EXTERNAL key by key id, where there is one; else `r`.
    fn external_ref(&self, r: &KeyRef, external: Option<usize>) -> KeyRef {
        let externals: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.keys[i].external)
            .collect();
        match external {
            Some(n) if !externals.is_empty() => KeyRef::Id(externals[n % externals.len()]),
            _ => r.clone(),
        }
    }

    /// `Some(n)`: the n-th multi-Region key by key id, where there is one; else `r`.
    fn multi_region_ref(&self, r: &KeyRef, nth: Option<usize>) -> KeyRef {
        let keys: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.keys[i].multi_region)
            .collect();
        match nth {
            Some(n) if !keys.is_empty() => KeyRef::Id(keys[n % keys.len()]),
            _ => r.clone(),
        }
    }

    /// Which key a reference names, or the error resolving it gives.
    fn resolve(&self, r: &KeyRef) -> Expect<usize> {
        match r {
            KeyRef::Id(n) | KeyRef::Arn(n) => match self.key_index(*n) {
                Some(i) if self.keys[i].state != State::Deleted => Ok(i),
                _ => Err(NOT_FOUND),
            },
            KeyRef::Alias(a) | KeyRef::AliasArn(a) => {
                self.aliases.get(ALIASES[*a]).copied().ok_or(NOT_FOUND)
            }
            KeyRef::Missing(4) => Err(VALIDATION),
            KeyRef::Missing(_) => Err(NOT_FOUND),
        }
    }

    /// As [`Self::resolve`] for the operations whose KeyId is a key id or key ARN only (the
    /// service's model says so for every control-plane operation but DescribeKey): an alias is
    /// NotFoundException.
    fn resolve_key_only(&self, r: &KeyRef) -> Expect<usize> {
        match r {
            KeyRef::Alias(_) | KeyRef::AliasArn(_) => Err(NOT_FOUND),
            _ => self.resolve(r),
        }
    }

    /// The errors an alias target gets from its form alone, before the alias name is looked up:
    /// an alias is ValidationException (`Aliases must refer to keys. Not aliases`), a malformed
    /// identifier or an ARN of another Region NotFoundException, an empty one ValidationException.
    fn alias_target_form(r: &KeyRef) -> Expect<()> {
        match r {
            KeyRef::Alias(a) | KeyRef::AliasArn(a) if ALIASES[*a].starts_with("alias/") => {
                Err(VALIDATION)
            }
            // `bad-name` is no identifier at all: `Invalid keyId`.
            KeyRef::Alias(_) | KeyRef::AliasArn(_) => Err(NOT_FOUND),
            KeyRef::Missing(1..=3) => Err(NOT_FOUND),
            KeyRef::Missing(4) => Err(VALIDATION),
            _ => Ok(()),
        }
    }

    /// Runs the deletions and automatic rotations that are due: what every control-plane call
    /// does first.
    fn run_due(&mut self) {
        let now = self.now;
        for (i, key) in self.keys.iter_mut().enumerate() {
            if key.state == State::PendingDeletion && key.deletion_date.is_some_and(|d| d <= now) {
                key.state = State::Deleted;
                key.deletion_date = None;
                self.aliases.retain(|_, target| *target != i);
            }
        }
        for key in &mut self.keys {
            if let (State::Enabled, Some((period, next))) = (key.state, key.rotation) {
                if next <= now {
                    key.versions += 1;
                    key.rotation = Some((period, now + i64::from(period) * DAY_MS));
                }
            }
        }
        // Imported material whose ValidTo has come is deleted.
        for key in &mut self.keys {
            if key.state == State::Deleted {
                continue;
            }
            let mut expired = false;
            for m in &mut key.materials {
                if m.imported && m.valid_to.is_some_and(|t| t <= now) {
                    m.imported = false;
                    expired = true;
                }
            }
            if expired {
                key.settle();
            }
        }
    }

    /// Cryptographic use: only an Enabled key.
    fn usable(&self, i: usize) -> Expect<()> {
        match self.keys[i].state {
            State::Enabled => Ok(()),
            State::Disabled => Err(DISABLED),
            State::PendingDeletion | State::PendingImport | State::PendingReplicaDeletion => {
                Err(INVALID_STATE)
            }
            State::Deleted => Err(NOT_FOUND),
        }
    }

    /// Rotation settings and on-demand rotation: only an Enabled key.
    fn rotatable(&self, i: usize) -> Expect<()> {
        self.usable(i)
    }

    /// Enable/Disable: Enabled or Disabled.
    fn changeable(&self, i: usize) -> Expect<()> {
        match self.keys[i].state {
            State::Enabled | State::Disabled => Ok(()),
            _ => Err(INVALID_STATE),
        }
    }

    /// Alias targets, deletion scheduling, GetParametersForImport and ImportKeyMaterial: also a
    /// key waiting for its material.
    fn manageable(&self, i: usize) -> Expect<()> {
        match self.keys[i].state {
            State::Enabled | State::Disabled | State::PendingImport => Ok(()),
            _ => Err(INVALID_STATE),
        }
    }

    /// The operations only keys with imported material have.
    fn external(&self, i: usize) -> Expect<()> {
        if self.keys[i].external {
            Ok(())
        } else {
            Err(UNSUPPORTED)
        }
    }

    /// The service model's constraints, checked before anything else: an empty KeyId is too
    /// short.
    fn validated(target: &KeyRef) -> Expect<()> {
        match target {
            KeyRef::Missing(4) => Err(VALIDATION),
            _ => Ok(()),
        }
    }

    /// What a control-plane call naming `target` does before anything else: the service model's
    /// constraints, then (only if they pass) the deletions and rotations that are due. A request
    /// refused by validation never reaches the control plane.
    fn validated_then_due(&mut self, target: &KeyRef) -> Expect<()> {
        Self::validated(target)?;
        self.run_due();
        Ok(())
    }

    /// CreateAlias's and UpdateAlias's name checks: `alias/aws/...` is NotAuthorizedException, a
    /// name without the `alias/` prefix ValidationException.
    fn alias_name_valid(alias: usize) -> Expect<()> {
        match alias {
            3 => Err("NotAuthorizedException"),
            4 => Err(VALIDATION),
            _ => Ok(()),
        }
    }

    /// The source half of Decrypt and ReEncrypt: which blob, or why not.
    fn open(&self, blob: usize, context: u8, expected: Option<Expect<usize>>) -> Expect<usize> {
        if let Some(Err(e)) = expected {
            return Err(e);
        }
        let b = &self.blobs[blob];
        let key = &self.keys[b.key];
        if key.state == State::Deleted {
            return Err(INVALID_CIPHERTEXT);
        }
        if let Some(Ok(named)) = expected {
            if named != b.key {
                return Err("IncorrectKeyException");
            }
        }
        self.usable(b.key)?;
        if self::context(b.context) != self::context(context) {
            return Err(INVALID_CIPHERTEXT);
        }
        Ok(blob)
    }
}

// ---- running a case ----------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    cases: AtomicU64,
    steps: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
}

/// Results on which engine and model agreed: successes and errors (by code).
static AGREED_OK: AtomicU64 = AtomicU64::new(0);
/// Ciphertexts of a primary key opened by its replica in the other Region, and of those the ones
/// under a version after the first (rotations reach the replica).
static REPLICA_OPENED: AtomicU64 = AtomicU64::new(0);
static REPLICA_OPENED_ROTATED: AtomicU64 = AtomicU64::new(0);
static AGREED_ERRORS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

fn code<T>(r: &keyplane::Result<T>) -> Result<(), &'static str> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code()),
    }
}

fn plaintext(step: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + step * 7) as u8).collect()
}

/// Checks that engine and model agree on an outcome's success or error code.
macro_rules! agree {
    ($step:expr, $op:expr, $engine:expr, $model:expr) => {{
        let engine_code = code(&$engine);
        let model_code = $model.as_ref().map(|_| ()).map_err(|e| *e);
        prop_assert_eq!(
            engine_code,
            model_code,
            "step {} ({:?}): engine {:?}",
            $step,
            $op,
            $engine.as_ref().err()
        );
        match model_code {
            Ok(()) => {
                AGREED_OK.fetch_add(1, Ordering::Relaxed);
            }
            Err(code) => *AGREED_ERRORS.lock().unwrap().entry(code).or_default() += 1,
        }
    }};
}

fn run_case(ops: &[Op], counts: &Counts) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    // Two Regions, each an engine with its own store and the other's store for replication.
    let east_store = Arc::new(MemoryKeyStore::new(LockPolicy::Warn));
    let west_store = Arc::new(MemoryKeyStore::new(LockPolicy::Warn));
    let engine = Engine::builder()
        .worker_threads(1)
        .clock(Arc::clone(&clock) as Arc<dyn keyplane::Clock>)
        .store(Arc::clone(&east_store) as Arc<dyn KeyStore>)
        .region_store(WEST, Arc::clone(&west_store) as Arc<dyn KeyStore>)
        .build()
        .unwrap();
    let west = Engine::builder()
        .worker_threads(1)
        .region(WEST)
        .clock(Arc::clone(&clock) as Arc<dyn keyplane::Clock>)
        .store(Arc::clone(&west_store) as Arc<dyn KeyStore>)
        .region_store("us-east-1", Arc::clone(&east_store) as Arc<dyn KeyStore>)
        .build()
        .unwrap();
    let mut m = Model {
        now: START,
        ..Model::default()
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::CreateKey => {
                let got = engine.create_key(CreateKeyRequest::default());
                m.run_due();
                let metadata = got.map_err(|e| TestCaseError::fail(format!("CreateKey: {e}")))?;
                prop_assert_eq!(metadata.key_state, KeyState::Enabled);
                m.keys.push(Key::new(&metadata.key_id, false));
            }
            Op::CreateAlias {
                alias,
                target,
                by_arn,
            } => {
                let name = if *by_arn && *alias < 4 {
                    format!("{ARN_PREFIX}{}", ALIASES[*alias])
                } else {
                    ALIASES[*alias].to_string()
                };
                let target_id = m.identifier(target, &engine);
                let got = engine.create_alias(&name, &target_id);
                let want = Model::validated(target)
                    .and_then(|()| Model::alias_name_valid(*alias))
                    .and_then(|()| {
                        Model::alias_target_form(target)?;
                        m.run_due();
                        if m.aliases.contains_key(ALIASES[*alias]) {
                            return Err("AlreadyExistsException");
                        }
                        let k = m.resolve(target)?;
                        m.manageable(k)?;
                        m.aliases.insert(ALIASES[*alias], k);
                        Ok(())
                    });
                agree!(step, op, got, want);
            }
            Op::UpdateAlias { alias, target } => {
                let target_id = m.identifier(target, &engine);
                let got = engine.update_alias(ALIASES[*alias], &target_id);
                let want = Model::validated(target)
                    .and_then(|()| Model::alias_name_valid(*alias))
                    .and_then(|()| {
                        m.run_due();
                        if !m.aliases.contains_key(ALIASES[*alias]) {
                            return Err(NOT_FOUND);
                        }
                        Model::alias_target_form(target)?;
                        let k = m.resolve(target)?;
                        m.manageable(k)?;
                        m.aliases.insert(ALIASES[*alias], k);
                        Ok(())
                    });
                agree!(step, op, got, want);
            }
            Op::DeleteAlias { alias } => {
                let got = engine.delete_alias(ALIASES[*alias]);
                let want = if ALIASES[*alias].starts_with("alias/") {
                    m.run_due();
                    m.aliases
                        .remove(ALIASES[*alias])
                        .map(|_| ())
                        .ok_or(NOT_FOUND)
                } else {
                    Err(VALIDATION)
                };
                agree!(step, op, got, want);
            }
            Op::Enable(r) | Op::Disable(r) => {
                let id = m.identifier(r, &engine);
                let enable = matches!(op, Op::Enable(_));
                let got = if enable {
                    engine.enable_key(&id)
                } else {
                    engine.disable_key(&id)
                };
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    m.changeable(k)?;
                    m.keys[k].state = if enable {
                        State::Enabled
                    } else {
                        State::Disabled
                    };
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::EnableRotation(r, period) => {
                let id = m.identifier(r, &engine);
                let got = engine.enable_key_rotation(&id, *period);
                let days = period.unwrap_or(365);
                let want = if (90..=2560).contains(&days) {
                    m.validated_then_due(r).and_then(|()| {
                        let k = m.resolve_key_only(r)?;
                        m.rotatable(k)?;
                        if m.keys[k].external {
                            return Err(UNSUPPORTED);
                        }
                        m.keys[k].rotation = Some((days, m.now + i64::from(days) * DAY_MS));
                        Ok(())
                    })
                } else {
                    Err(VALIDATION)
                };
                agree!(step, op, got, want);
            }
            Op::DisableRotation(r) => {
                let id = m.identifier(r, &engine);
                let got = engine.disable_key_rotation(&id);
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    m.rotatable(k)?;
                    if m.keys[k].external {
                        return Err(UNSUPPORTED);
                    }
                    m.keys[k].rotation = None;
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::Rotate(r, multi_region) => {
                let r = &m.multi_region_ref(r, *multi_region);
                let id = m.identifier(r, &engine);
                let got = engine.rotate_key_on_demand(&id);
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    m.rotatable(k)?;
                    let key = &mut m.keys[k];
                    if key.external {
                        // RotateKeyOnDemand makes new imported material current; there must be
                        // some, and it must be held.
                        match key.materials.last() {
                            Some(last) if last.pending && last.imported => {}
                            _ => return Err(INVALID_STATE),
                        }
                    }
                    if key.on_demand >= 25 {
                        return Err("LimitExceededException");
                    }
                    if let Some(last) = key.materials.last_mut() {
                        last.pending = false;
                    }
                    key.on_demand += 1;
                    key.versions += 1;
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::ScheduleDeletion(r, window) => {
                let id = m.identifier(r, &engine);
                let got = engine.schedule_key_deletion(&id, *window);
                let days = window.unwrap_or(30);
                let want = if (7..=30).contains(&days) {
                    m.validated_then_due(r).and_then(|()| {
                        let k = m.resolve_key_only(r)?;
                        m.manageable(k)?;
                        let date = m.now + i64::from(days) * DAY_MS;
                        if m.keys[k].replica.is_some() {
                            // A primary with a replica waits for it, with no date yet.
                            m.keys[k].state = State::PendingReplicaDeletion;
                            return Ok(None);
                        }
                        m.keys[k].state = State::PendingDeletion;
                        m.keys[k].deletion_date = Some(date);
                        Ok(Some(date))
                    })
                } else {
                    Err(VALIDATION)
                };
                agree!(step, op, got, want);
                if let (Ok(response), Ok(date)) = (&got, &want) {
                    prop_assert_eq!(response.deletion_date, date.map(Timestamp));
                    prop_assert_eq!(response.pending_window_in_days, days);
                }
            }
            Op::CancelDeletion(r) => {
                let id = m.identifier(r, &engine);
                let got = engine.cancel_key_deletion(&id);
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    if !matches!(
                        m.keys[k].state,
                        State::PendingDeletion | State::PendingReplicaDeletion
                    ) {
                        return Err(INVALID_STATE);
                    }
                    // A key missing some of its material waits for it again.
                    m.keys[k].state = if m.keys[k].has_all_material() {
                        State::Disabled
                    } else {
                        State::PendingImport
                    };
                    m.keys[k].deletion_date = None;
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::Advance(ms) => {
                clock.advance(Duration::from_millis(*ms as u64));
                m.now += ms;
            }
            Op::Encrypt {
                key,
                len,
                context,
                multi_region,
            } => {
                let key = &m.multi_region_ref(key, *multi_region);
                let id = m.identifier(key, &engine);
                let data = plaintext(step, *len);
                let ctx = self::context(*context);
                let mut request = EncryptRequest::new(&id, &data);
                request.encryption_context = ctx.as_ref();
                let got = engine.encrypt(&request);
                // The model's constraints are checked before the key is looked up, as the
                // service does.
                let want = if data.is_empty() || data.len() > 4096 {
                    Err(VALIDATION)
                } else {
                    m.resolve(key).and_then(|k| {
                        m.usable(k)?;
                        Ok(k)
                    })
                };
                agree!(step, op, got, want);
                if let (Ok(sealed), Ok(k)) = (&got, &want) {
                    let parsed = ciphertext::parse(&sealed.ciphertext_blob).unwrap();
                    prop_assert_eq!(parsed.key_id, m.keys[*k].id);
                    prop_assert_eq!(
                        parsed.key_version,
                        m.keys[*k].versions,
                        "encrypts with the newest version"
                    );
                    prop_assert_eq!(&sealed.key_id, &engine.key_arn(&m.keys[*k].id));
                    m.blobs.push(Blob {
                        bytes: sealed.ciphertext_blob.clone(),
                        key: *k,
                        plaintext: data,
                        context: context % 3,
                    });
                }
            }
            Op::Decrypt { blob, context, key } => {
                if m.blobs.is_empty() {
                    continue;
                }
                let b = blob % m.blobs.len();
                let named = key.as_ref().map(|r| m.identifier(r, &engine));
                let ctx = self::context(*context);
                let mut request = DecryptRequest::new(&m.blobs[b].bytes);
                request.encryption_context = ctx.as_ref();
                request.key_id = named.as_deref();
                let got = engine.decrypt(&request);
                let want = m.open(b, *context, key.as_ref().map(|r| m.resolve(r)));
                agree!(step, op, got, want);
                if let Ok(opened) = &got {
                    prop_assert_eq!(opened.plaintext.expose(), &m.blobs[b].plaintext[..]);
                    prop_assert_eq!(&opened.key_id, &engine.key_arn(&m.keys[m.blobs[b].key].id));
                }
            }
            Op::ReEncrypt {
                blob,
                source_context,
                destination,
                destination_context,
            } => {
                if m.blobs.is_empty() {
                    continue;
                }
                let b = blob % m.blobs.len();
                let destination_id = m.identifier(destination, &engine);
                let (sctx, dctx) = (
                    self::context(*source_context),
                    self::context(*destination_context),
                );
                let mut request = ReEncryptRequest::new(&m.blobs[b].bytes, &destination_id);
                request.source_encryption_context = sctx.as_ref();
                request.destination_encryption_context = dctx.as_ref();
                let got = engine.re_encrypt(&request);
                let want = m.resolve(destination).and_then(|d| {
                    m.usable(d)?;
                    m.open(b, *source_context, None)?;
                    Ok(d)
                });
                agree!(step, op, got, want);
                if let (Ok(response), Ok(d)) = (&got, &want) {
                    let parsed = ciphertext::parse(&response.ciphertext_blob).unwrap();
                    prop_assert_eq!(parsed.key_id, m.keys[*d].id);
                    prop_assert_eq!(parsed.key_version, m.keys[*d].versions);
                    let plaintext = m.blobs[b].plaintext.clone();
                    m.blobs.push(Blob {
                        bytes: response.ciphertext_blob.clone(),
                        key: *d,
                        plaintext,
                        context: destination_context % 3,
                    });
                }
            }
            Op::GenerateDataKey {
                key,
                bytes,
                context,
            } => {
                let id = m.identifier(key, &engine);
                let ctx = self::context(*context);
                let request = GenerateDataKeyRequest {
                    key_id: &id,
                    encryption_context: ctx.as_ref(),
                    key_spec: None,
                    number_of_bytes: Some(*bytes),
                };
                let got = engine.generate_data_key(&request);
                let want = if (1..=1024).contains(bytes) {
                    m.resolve(key).and_then(|k| m.usable(k).map(|()| k))
                } else {
                    Err(VALIDATION)
                };
                agree!(step, op, got, want);
                if let (Ok(response), Ok(k)) = (&got, &want) {
                    prop_assert_eq!(response.plaintext.len(), *bytes);
                    m.blobs.push(Blob {
                        bytes: response.ciphertext_blob.clone(),
                        key: *k,
                        plaintext: response.plaintext.expose().to_vec(),
                        context: context % 3,
                    });
                }
            }
            Op::CreateExternalKey => {
                let got = engine.create_key(CreateKeyRequest {
                    origin: Some(Origin::External),
                    ..CreateKeyRequest::default()
                });
                m.run_due();
                let metadata =
                    got.map_err(|e| TestCaseError::fail(format!("CreateKey(EXTERNAL): {e}")))?;
                prop_assert_eq!(metadata.key_state, KeyState::PendingImport);
                m.keys.push(Key::new(&metadata.key_id, true));
            }
            Op::GetParameters(r, external) => {
                let r = &m.external_ref(r, *external);
                let id = m.identifier(r, &engine);
                let got = engine.get_parameters_for_import(
                    &id,
                    WrappingAlgorithm::RsaesOaepSha256,
                    WrappingKeySpec::Rsa2048,
                );
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    m.manageable(k)?;
                    m.external(k)?;
                    Ok(k)
                });
                agree!(step, op, got, want);
                if let (Ok(params), Ok(k)) = (got, want) {
                    let valid_to = m.now + 24 * HOUR_MS;
                    prop_assert_eq!(params.parameters_valid_to, Timestamp(valid_to));
                    prop_assert_eq!(&params.key_id, &engine.key_arn(&m.keys[k].id));
                    m.tokens.push(Token {
                        key: k,
                        token: params.import_token,
                        public_key: params.public_key,
                        valid_to,
                    });
                }
            }
            Op::Import {
                token,
                material: which,
                other_key,
                valid_days,
                new_material,
            } => {
                if m.tokens.is_empty() {
                    continue;
                }
                let t = m.tokens[token % m.tokens.len()].clone();
                let named = if *other_key {
                    (t.key + 1) % m.keys.len()
                } else {
                    t.key
                };
                let id = m.keys[named].key_id.clone();
                let wrapped = wrap(&t.public_key, &self::material(*which));
                let valid_to = valid_days.map(|d| m.now + i64::from(d) * DAY_MS);
                let got = engine.import_key_material(&ImportKeyMaterialRequest {
                    key_id: &id,
                    import_token: &t.token,
                    encrypted_key_material: &wrapped,
                    valid_to: valid_to.map(Timestamp),
                    expiration_model: Some(match valid_days {
                        Some(_) => ExpirationModel::KeyMaterialExpires,
                        None => ExpirationModel::KeyMaterialDoesNotExpire,
                    }),
                    import_type: new_material.map(|new| {
                        if new {
                            ImportType::NewKeyMaterial
                        } else {
                            ImportType::ExistingKeyMaterial
                        }
                    }),
                    key_material_description: None,
                    key_material_id: None,
                });
                let want = if valid_days.is_some_and(|d| d > 365) {
                    // ValidTo at most 365 days away, checked before anything else.
                    Err(VALIDATION)
                } else {
                    m.run_due();
                    (|| {
                        if m.keys[named].state == State::Deleted {
                            return Err(NOT_FOUND);
                        }
                        m.manageable(named)?;
                        m.external(named)?;
                        if t.key != named {
                            return Err("InvalidImportTokenException");
                        }
                        if m.now >= t.valid_to {
                            return Err("ExpiredImportTokenException");
                        }
                        let key = &mut m.keys[named];
                        let new = new_material.unwrap_or(key.materials.is_empty());
                        let existing = key.materials.iter().position(|x| x.which == *which);
                        match (new, existing) {
                            // Re-import of the same material: held again, with the new terms.
                            (false, Some(i)) => {
                                key.materials[i].imported = true;
                                key.materials[i].valid_to = valid_to;
                            }
                            (false, None) if key.materials.is_empty() => return Err(VALIDATION),
                            (false, None) | (true, Some(_)) => return Err(INCORRECT_MATERIAL),
                            (true, None) if key.materials.is_empty() => {
                                key.materials.push(Material {
                                    which: *which,
                                    imported: true,
                                    valid_to,
                                    pending: false,
                                });
                                key.versions = 1;
                            }
                            // New material waits for RotateKeyOnDemand, replacing material that
                            // was already waiting.
                            (true, None) => {
                                if key.materials.last().is_some_and(|x| x.pending) {
                                    key.materials.pop();
                                }
                                key.materials.push(Material {
                                    which: *which,
                                    imported: true,
                                    valid_to,
                                    pending: true,
                                });
                            }
                        }
                        key.settle();
                        Ok(())
                    })()
                };
                agree!(step, op, got, want);
            }
            Op::DeleteImported(r, external) => {
                let r = &m.external_ref(r, *external);
                let id = m.identifier(r, &engine);
                let got = engine.delete_imported_key_material(&id, None);
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    // The state table first: every state but a primary waiting for its replicas'
                    // deletion (as for the other changes of such a key).
                    if m.keys[k].state == State::PendingReplicaDeletion {
                        return Err(INVALID_STATE);
                    }
                    m.external(k)?;
                    let key = &mut m.keys[k];
                    // The current material: the newest that is not pending.
                    let current = key
                        .materials
                        .iter_mut()
                        .rev()
                        .find(|x| !x.pending)
                        .ok_or(INVALID_STATE)?;
                    current.imported = false;
                    key.settle();
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::CreateMultiRegionKey => {
                let got = engine.create_key(CreateKeyRequest {
                    multi_region: Some(true),
                    ..CreateKeyRequest::default()
                });
                m.run_due();
                let metadata =
                    got.map_err(|e| TestCaseError::fail(format!("CreateKey(MultiRegion): {e}")))?;
                prop_assert!(metadata.key_id.starts_with("mrk-"), "{}", metadata.key_id);
                m.keys.push(Key::new(&metadata.key_id, false));
            }
            Op::Replicate(r, nth) => {
                let r = &m.multi_region_ref(r, *nth);
                let id = m.identifier(r, &engine);
                let got = engine.replicate_key(ReplicateKeyRequest {
                    key_id: id.clone(),
                    replica_region: WEST.into(),
                    description: None,
                    policy: None,
                    bypass_policy_lockout_safety_check: false,
                    tags: Vec::new(),
                });
                let want = m.validated_then_due(r).and_then(|()| {
                    let k = m.resolve_key_only(r)?;
                    m.manageable(k)?;
                    if !m.keys[k].multi_region {
                        return Err(UNSUPPORTED);
                    }
                    if m.keys[k].replica.is_some() {
                        return Err("AlreadyExistsException");
                    }
                    m.keys[k].replica = Some(State::Enabled);
                    Ok(())
                });
                agree!(step, op, got, want);
            }
            Op::ReplicaSetEnabled(n, enable) => {
                let replicated: Vec<usize> = (0..m.keys.len())
                    .filter(|&i| m.keys[i].replica.is_some())
                    .collect();
                if replicated.is_empty() {
                    continue;
                }
                let k = replicated[n % replicated.len()];
                let id = m.keys[k].key_id.clone();
                let got = if *enable {
                    west.enable_key(&id)
                } else {
                    west.disable_key(&id)
                };
                // The replica's enabled state is its own: the primary's is not touched.
                m.keys[k].replica = Some(if *enable {
                    State::Enabled
                } else {
                    State::Disabled
                });
                let want: Expect<()> = Ok(());
                agree!(step, op, got, want);
            }
            Op::ReplicaDecrypt {
                blob,
                context,
                replicated,
            } => {
                let of_replicas: Vec<usize> = (0..m.blobs.len())
                    .filter(|&i| m.keys[m.blobs[i].key].replica.is_some())
                    .collect();
                let b = match (*replicated, of_replicas.is_empty(), m.blobs.is_empty()) {
                    (_, _, true) => continue,
                    (true, false, _) => of_replicas[blob % of_replicas.len()],
                    _ => blob % m.blobs.len(),
                };
                // A control-plane call first, so that this Region's engine has read what the
                // primary's Region wrote into its store (a rotation).
                west.list_keys(Some(1), None)
                    .map_err(|e| TestCaseError::fail(format!("ListKeys(west): {e}")))?;
                let ctx = self::context(context.unwrap_or(m.blobs[b].context));
                let mut request = DecryptRequest::new(&m.blobs[b].bytes);
                request.encryption_context = ctx.as_ref();
                let got = west.decrypt(&request);
                let key = &m.keys[m.blobs[b].key];
                let want = match key.replica {
                    None => Err(INVALID_CIPHERTEXT),
                    Some(State::Disabled) => Err(DISABLED),
                    Some(_) if self::context(m.blobs[b].context) != ctx => Err(INVALID_CIPHERTEXT),
                    Some(_) => Ok(()),
                };
                agree!(step, op, got, want);
                if let Ok(opened) = &got {
                    prop_assert_eq!(opened.plaintext.expose(), &m.blobs[b].plaintext[..]);
                    prop_assert!(opened.key_id.contains(":us-west-2:"), "{}", opened.key_id);
                    let version = ciphertext::parse(&m.blobs[b].bytes).unwrap().key_version;
                    REPLICA_OPENED.fetch_add(1, Ordering::Relaxed);
                    if version > 1 {
                        REPLICA_OPENED_ROTATED.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Op::Describe(r) => {
                let id = m.identifier(r, &engine);
                let got = engine.describe_key(&id);
                let want = m.validated_then_due(r).and_then(|()| m.resolve(r));
                agree!(step, op, got, want);
                if let (Ok(metadata), Ok(k)) = (&got, &want) {
                    let key = &m.keys[*k];
                    let state = match key.state {
                        State::Enabled => KeyState::Enabled,
                        State::Disabled => KeyState::Disabled,
                        State::PendingDeletion => KeyState::PendingDeletion,
                        State::PendingImport => KeyState::PendingImport,
                        State::PendingReplicaDeletion => KeyState::PendingReplicaDeletion,
                        State::Deleted => unreachable!("resolve refuses deleted keys"),
                    };
                    prop_assert_eq!(metadata.key_state, state, "step {}", step);
                    prop_assert_eq!(metadata.deletion_date, key.deletion_date.map(Timestamp));
                    prop_assert_eq!(metadata.key_rotation_enabled, key.rotation.is_some());
                    // GetKeyRotationStatus takes a key id or key ARN only.
                    let status = engine.get_key_rotation_status(&metadata.key_id).unwrap();
                    prop_assert_eq!(
                        status.next_rotation_date,
                        key.rotation.map(|r| Timestamp(r.1))
                    );
                    prop_assert_eq!(status.rotation_period_in_days, key.rotation.map(|r| r.0));
                    let rotations = engine
                        .list_key_rotations(&metadata.key_id, Some(1000), None)
                        .unwrap();
                    // An EXTERNAL key lists every material it has had (current, earlier and
                    // pending); another key its rotations.
                    let listed = if key.external {
                        key.materials.len() as u32
                    } else {
                        key.versions - 1
                    };
                    prop_assert_eq!(rotations.items.len() as u32, listed);
                    if key.external {
                        let imported = rotations
                            .items
                            .iter()
                            .filter(|e| e.import_state == Some(keyplane::ImportState::Imported))
                            .count();
                        let held = key.materials.iter().filter(|m| m.imported).count();
                        prop_assert_eq!(imported, held, "materials held");
                    }
                }
            }
        }
        counts.steps.fetch_add(1, Ordering::Relaxed);
        *counts.by_kind.lock().unwrap().entry(op.kind()).or_default() += 1;
    }

    // The end state: every control-plane view and every ciphertext agree with the model.
    let listed: BTreeSet<String> = engine
        .list_keys(Some(1000), None)
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    m.run_due();
    let live: BTreeSet<String> = m
        .keys
        .iter()
        .filter(|k| k.state != State::Deleted)
        .map(|k| k.key_id.clone())
        .collect();
    prop_assert_eq!(listed, live, "ListKeys");
    let aliases: BTreeMap<String, String> = engine
        .list_aliases(None, Some(100), None)
        .unwrap()
        .items
        .into_iter()
        .filter_map(|a| Some((a.alias_name, a.target_key_id?)))
        .collect();
    let model_aliases: BTreeMap<String, String> = m
        .aliases
        .iter()
        .map(|(name, k)| (name.to_string(), m.keys[*k].key_id.clone()))
        .collect();
    prop_assert_eq!(aliases, model_aliases, "ListAliases");
    for (i, b) in m.blobs.iter().enumerate() {
        let ctx = context(b.context);
        let mut request = DecryptRequest::new(&b.bytes);
        request.encryption_context = ctx.as_ref();
        let got = engine.decrypt(&request);
        let want = m.open(i, b.context, None);
        agree!("final", "Decrypt", got, want);
        if let Ok(opened) = got {
            prop_assert_eq!(opened.plaintext.expose(), &b.plaintext[..]);
        }
    }
    counts.cases.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[test]
fn lifecycle_matches_the_reference_model() {
    let cases = env_number("KEYPLANE_MODEL_CASES", 128);
    let max_steps = env_number("KEYPLANE_MODEL_STEPS", 80) as usize;
    let mut config = ProptestConfig::with_cases(cases);
    config.max_shrink_iters = 2048;
    let mut runner = TestRunner::new(config);
    let counts = Counts::default();
    let strategy = prop::collection::vec(op(), 1..=max_steps.max(1));
    let result = runner.run(&strategy, |ops| run_case(&ops, &counts));
    let by_kind = counts.by_kind.lock().unwrap().clone();
    let errors = AGREED_ERRORS.lock().unwrap().clone();
    println!(
        "assurance: model test: {} cases, {} steps (up to {max_steps} per case); agreed: {} \
         successes, {} errors {errors:?}; steps by operation: {by_kind:?}; opened in the \
         replica's Region: {} ciphertexts, {} of them under a rotated version",
        counts.cases.load(Ordering::Relaxed),
        counts.steps.load(Ordering::Relaxed),
        AGREED_OK.load(Ordering::Relaxed),
        errors.values().sum::<u64>(),
        REPLICA_OPENED.load(Ordering::Relaxed),
        REPLICA_OPENED_ROTATED.load(Ordering::Relaxed),
    );
    if let Err(e) = result {
        panic!("the engine and the model disagree: {e}");
    }
}

// ---- concurrency -------------------------------------------------------------------------------

/// One thread's operation; keys are named by index into the keys created so far, or by alias.
#[derive(Clone, Debug)]
enum Concurrent {
    CreateKey,
    CreateAlias(usize, usize),
    UpdateAlias(usize, usize),
    DeleteAlias(usize),
    Enable(usize),
    Disable(usize),
    Rotate(usize),
    EnableRotation(usize),
    ScheduleDeletion(usize),
    CancelDeletion(usize),
    Encrypt {
        key: usize,
        by_alias: bool,
        len: usize,
        context: u8,
    },
    EncryptBatch {
        key: usize,
        items: usize,
    },
    Decrypt(usize),
    ReEncrypt {
        blob: usize,
        destination: usize,
    },
    GenerateDataKey(usize),
    Describe(usize),
}

fn concurrent_op() -> impl Strategy<Value = Concurrent> {
    let k = || 0usize..64;
    prop_oneof![
        1 => Just(Concurrent::CreateKey),
        1 => (0usize..3, k()).prop_map(|(a, k)| Concurrent::CreateAlias(a, k)),
        1 => (0usize..3, k()).prop_map(|(a, k)| Concurrent::UpdateAlias(a, k)),
        1 => (0usize..3).prop_map(Concurrent::DeleteAlias),
        1 => k().prop_map(Concurrent::Enable),
        1 => k().prop_map(Concurrent::Disable),
        1 => k().prop_map(Concurrent::Rotate),
        1 => k().prop_map(Concurrent::EnableRotation),
        1 => k().prop_map(Concurrent::ScheduleDeletion),
        1 => k().prop_map(Concurrent::CancelDeletion),
        6 => (k(), any::<bool>(), 1usize..200, any::<u8>()).prop_map(|(key, by_alias, len, context)| Concurrent::Encrypt { key, by_alias, len, context }),
        1 => (k(), 1usize..200).prop_map(|(key, items)| Concurrent::EncryptBatch { key, items }),
        5 => any::<usize>().prop_map(Concurrent::Decrypt),
        2 => (any::<usize>(), k()).prop_map(|(blob, destination)| Concurrent::ReEncrypt { blob, destination }),
        2 => k().prop_map(Concurrent::GenerateDataKey),
        1 => k().prop_map(Concurrent::Describe),
    ]
}

/// A ciphertext a thread was given, and what it must decrypt to.
struct Sealed {
    blob: Vec<u8>,
    plaintext: Vec<u8>,
    context: Option<EncryptionContext>,
}

/// Errors a call may meet because of what other threads did: a key disabled or pending deletion,
/// an alias not there (yet or any more) or already there, a rotation quota reached.
fn allowed_race(error: &keyplane::Error) -> bool {
    matches!(
        error.code(),
        "DisabledException"
            | "KMSInvalidStateException"
            | "NotFoundException"
            | "AlreadyExistsException"
            | "LimitExceededException"
    )
}

#[track_caller]
fn raced<T>(result: keyplane::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if allowed_race(&e) => None,
        Err(e) => panic!("unexpected error under concurrency: {e}"),
    }
}

fn run_thread(engine: &Engine, keys: &Mutex<Vec<String>>, ops: &[Concurrent]) -> Vec<Sealed> {
    let key = |n: usize| {
        let keys = keys.lock().unwrap();
        keys[n % keys.len()].clone()
    };
    let mut sealed: Vec<Sealed> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Concurrent::CreateKey => {
                let id = engine
                    .create_key(CreateKeyRequest::default())
                    .expect("CreateKey")
                    .key_id;
                keys.lock().unwrap().push(id);
            }
            Concurrent::CreateAlias(a, k) => {
                raced(engine.create_alias(ALIASES[*a], &key(*k)));
            }
            Concurrent::UpdateAlias(a, k) => {
                raced(engine.update_alias(ALIASES[*a], &key(*k)));
            }
            Concurrent::DeleteAlias(a) => {
                raced(engine.delete_alias(ALIASES[*a]));
            }
            Concurrent::Enable(k) => {
                raced(engine.enable_key(&key(*k)));
            }
            Concurrent::Disable(k) => {
                raced(engine.disable_key(&key(*k)));
            }
            Concurrent::Rotate(k) => {
                raced(engine.rotate_key_on_demand(&key(*k)));
            }
            Concurrent::EnableRotation(k) => {
                raced(engine.enable_key_rotation(&key(*k), Some(90)));
            }
            Concurrent::ScheduleDeletion(k) => {
                raced(engine.schedule_key_deletion(&key(*k), Some(7)));
            }
            Concurrent::CancelDeletion(k) => {
                raced(engine.cancel_key_deletion(&key(*k)));
            }
            Concurrent::Encrypt {
                key: k,
                by_alias,
                len,
                context: c,
            } => {
                let id = if *by_alias {
                    ALIASES[k % 3].to_string()
                } else {
                    key(*k)
                };
                let data = plaintext(step, *len);
                let ctx = context(*c);
                let mut request = EncryptRequest::new(&id, &data);
                request.encryption_context = ctx.as_ref();
                if let Some(response) = raced(engine.encrypt(&request)) {
                    sealed.push(Sealed {
                        blob: response.ciphertext_blob,
                        plaintext: data,
                        context: ctx,
                    });
                }
            }
            Concurrent::EncryptBatch { key: k, items } => {
                let id = key(*k);
                let data: Vec<Vec<u8>> = (0..*items)
                    .map(|i| plaintext(step + i, 1 + i % 50))
                    .collect();
                let requests: Vec<EncryptRequest<'_>> =
                    data.iter().map(|d| EncryptRequest::new(&id, d)).collect();
                for (result, d) in engine.encrypt_batch(&requests).into_iter().zip(&data) {
                    if let Some(blob) = raced(result.map(|b| b.into_vec())) {
                        sealed.push(Sealed {
                            blob,
                            plaintext: d.clone(),
                            context: None,
                        });
                    }
                }
            }
            Concurrent::Decrypt(b) => {
                if sealed.is_empty() {
                    continue;
                }
                let s = &sealed[b % sealed.len()];
                let mut request = DecryptRequest::new(&s.blob);
                request.encryption_context = s.context.as_ref();
                if let Some(opened) = raced(engine.decrypt(&request)) {
                    assert_eq!(opened.plaintext.expose(), &s.plaintext[..]);
                }
            }
            Concurrent::ReEncrypt { blob, destination } => {
                if sealed.is_empty() {
                    continue;
                }
                let s = &sealed[blob % sealed.len()];
                let destination = key(*destination);
                let mut request = ReEncryptRequest::new(&s.blob, &destination);
                request.source_encryption_context = s.context.as_ref();
                if let Some(response) = raced(engine.re_encrypt(&request)) {
                    let plaintext = s.plaintext.clone();
                    sealed.push(Sealed {
                        blob: response.ciphertext_blob,
                        plaintext,
                        context: None,
                    });
                }
            }
            Concurrent::GenerateDataKey(k) => {
                let id = key(*k);
                let request = GenerateDataKeyRequest::new(&id, keyplane::DataKeySpec::Aes256);
                if let Some(response) = raced(engine.generate_data_key(&request)) {
                    sealed.push(Sealed {
                        blob: response.ciphertext_blob,
                        plaintext: response.plaintext.expose().to_vec(),
                        context: None,
                    });
                }
            }
            Concurrent::Describe(k) => {
                raced(engine.describe_key(&key(*k)));
            }
        }
    }
    sealed
}

#[test]
fn concurrent_operations_lose_nothing() {
    const THREADS: usize = 4;
    let cases = env_number("KEYPLANE_CONCURRENCY_CASES", 16);
    let mut config = ProptestConfig::with_cases(cases);
    config.max_shrink_iters = 0;
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(prop::collection::vec(concurrent_op(), 20..80), THREADS);
    let (ops_run, blobs_checked, keys_checked) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let result = runner.run(&strategy, |threads| {
        let engine = Engine::builder().worker_threads(2).build().unwrap();
        let keys = Mutex::new((0..4).map(|_| new_key(&engine)).collect::<Vec<_>>());
        let sealed: Vec<Sealed> = std::thread::scope(|scope| {
            let handles: Vec<_> = threads
                .iter()
                .map(|ops| scope.spawn(|| run_thread(&engine, &keys, ops)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a thread panicked"))
                .collect()
        });
        ops_run.fetch_add(
            threads.iter().map(|t| t.len() as u64).sum(),
            Ordering::Relaxed,
        );

        // No lost key: every key any thread created is listed, and nothing else.
        let created: BTreeSet<String> = keys.lock().unwrap().iter().cloned().collect();
        let listed: BTreeSet<String> = engine
            .list_keys(Some(1000), None)
            .unwrap()
            .items
            .into_iter()
            .map(|k| k.key_id)
            .collect();
        prop_assert_eq!(&listed, &created);
        // Every ciphertext decrypts to what was encrypted, once its key can be used again.
        for id in &created {
            let _ = engine.cancel_key_deletion(id);
            engine.enable_key(id).unwrap();
        }
        for s in &sealed {
            let mut request = DecryptRequest::new(&s.blob);
            request.encryption_context = s.context.as_ref();
            let opened = engine
                .decrypt(&request)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(opened.plaintext.expose(), &s.plaintext[..]);
        }
        blobs_checked.fetch_add(sealed.len() as u64, Ordering::Relaxed);
        keys_checked.fetch_add(created.len() as u64, Ordering::Relaxed);
        Ok(())
    });
    println!(
        "assurance: concurrency: {cases} cases x {THREADS} threads, {} operations, {} keys kept, \
         {} ciphertexts decrypted to what was encrypted",
        ops_run.load(Ordering::Relaxed),
        keys_checked.load(Ordering::Relaxed),
        blobs_checked.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("concurrent operations: {e}");
    }
}

// ---- finding: lifecycle_matches_the_reference_model was flaky ---------------------------------
//
// A test bug, not an engine one. The model ran due deletions for Enable/DisableKey,
// Enable/DisableKeyRotation, RotateKeyOnDemand, Schedule/CancelKeyDeletion and DescribeKey before
// checking the request's KeyId, while the engine (like the service, and like the model's own
// alias operations) validates first: a call refused with ValidationException (an empty KeyId)
// never reaches the control plane and deletes nothing. After such a call the model had the key
// deleted (NotFoundException) where the engine still had it pending deletion
// (KMSInvalidStateException). Random inputs meet this only when such a refused call falls after a
// deletion date and before the key's next use, so a run failed now and then (6 runs in 150 at 128
// cases), whatever the machine's load; shrinking always ends on the refused call.

/// Each operation that names its key with an empty KeyId, after a deletion fell due: the refused
/// call must run no deletion, in the engine and in the model alike.
#[test]
fn a_call_refused_by_validation_runs_no_due_deletion() {
    let refused = [
        Op::Enable(KeyRef::Missing(4)),
        Op::Disable(KeyRef::Missing(4)),
        Op::EnableRotation(KeyRef::Missing(4), None),
        Op::DisableRotation(KeyRef::Missing(4)),
        Op::Rotate(KeyRef::Missing(4), None),
        Op::ScheduleDeletion(KeyRef::Missing(4), None),
        Op::CancelDeletion(KeyRef::Missing(4)),
        Op::Describe(KeyRef::Missing(4)),
        Op::UpdateAlias {
            alias: 0,
            target: KeyRef::Missing(4),
        },
        Op::CreateAlias {
            alias: 1,
            target: KeyRef::Missing(4),
            by_arn: false,
        },
    ];
    let counts = Counts::default();
    let mut failures = Vec::new();
    for op in refused {
        let ops = [
            Op::CreateKey,
            Op::CreateAlias {
                alias: 0,
                target: KeyRef::Id(0),
                by_arn: false,
            },
            Op::ScheduleDeletion(KeyRef::Id(0), Some(7)),
            Op::Advance(8 * DAY_MS),
            op.clone(),
            Op::Encrypt {
                key: KeyRef::Id(0),
                len: 1,
                context: 0,
                multi_region: None,
            },
            Op::Encrypt {
                key: KeyRef::Alias(0),
                len: 1,
                context: 0,
                multi_region: None,
            },
            Op::Describe(KeyRef::Id(0)),
        ];
        if let Err(e) = run_case(&ops, &counts) {
            failures.push(format!("after {op:?}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "assurance: model test: refused calls after a due deletion: {} cases agreed",
        counts.cases.load(Ordering::Relaxed)
    );
}
