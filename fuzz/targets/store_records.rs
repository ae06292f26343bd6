//! Fuzz target `store_records`: the engine's side of a key store's record decoding.
//!
//! Every durable store keeps the engine's `KeyRecord`, `AliasRecord` and `GrantRecord` as JSON
//! (serde) and hands them back, with material, through `KeyStore::load`. Half the inputs are JSON
//! for those records: whatever deserialises must serialise back to the same record. The other half
//! describe a whole store's contents (keys of any spec, state and version numbering, aliases that
//! may dangle, material of any length, policies that may not parse): an engine must start from
//! it, or refuse it with an error, and then serve, rotate and reload (as when another process
//! changed the store) without panicking. A store whose contents the engine cannot use makes keys
//! Unavailable or calls fail; it never brings the process down.
//!
//! The durable store's own decoding (`keyplane-sqlite`: sealed rows, wrapped material) is private
//! to that crate and not fuzzed here; see docs/assurance.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keyplane::clock::Timestamp;
use keyplane::key::{AliasRecord, GrantRecord, KeyRecord, RotationConfig, VersionRecord};
use keyplane::store::{KeyStore, StoreChange, StoreContents, StoredMaterial};
use keyplane::LockedBytes;
use keyplane::{
    CreateKeyRequest, EncryptRequest, Engine, KeyManager, KeySpec, KeyState, KeyUsage, LockPolicy,
    Origin,
};
use uuid::Uuid;

use crate::common::Input;

/// What a fuzzed store holds: records and material, handed out on every load.
struct Contents {
    keys: Vec<KeyRecord>,
    aliases: Vec<AliasRecord>,
    materials: Vec<(Uuid, u32, Vec<u8>)>,
}

/// A store whose contents come from the input. Commits are accepted and forgotten; the generation
/// moves when the test says so, to make engines reload.
struct FuzzStore {
    contents: Mutex<Contents>,
    generation: AtomicU64,
}

impl KeyStore for FuzzStore {
    fn load(&self) -> keyplane::Result<StoreContents> {
        let contents = self
            .contents
            .lock()
            .map_err(|_| keyplane::Error::Store("poisoned".into()))?;
        let mut materials = Vec::new();
        for (key_id, version, bytes) in &contents.materials {
            materials.push(StoredMaterial {
                key_id: *key_id,
                version: *version,
                material: LockedBytes::copy_from(bytes, LockPolicy::Require)?,
            });
        }
        Ok(StoreContents {
            keys: contents.keys.clone(),
            aliases: contents.aliases.clone(),
            materials,
            custom_key_stores: Vec::new(),
            generation: self.generation.load(Ordering::SeqCst),
        })
    }

    fn commit(&self, _changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        Ok(self.generation.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn generation(&self) -> keyplane::Result<u64> {
        Ok(self.generation.load(Ordering::SeqCst))
    }

    fn describe(&self) -> String {
        "fuzz".into()
    }
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn key_record(input: &mut Input<'_>, index: u8) -> KeyRecord {
    let id = Uuid::from_bytes([index; 16]);
    let versions: Vec<VersionRecord> = (0..input.below(4))
        .map(|i| VersionRecord {
            version: match input.byte() % 4 {
                0 => input.u32(),
                _ => i as u32 + 1,
            },
            material_id: format!("{:064x}", i),
            created: Timestamp(i64::from(input.u32())),
            rotation_type: None,
            import: None,
        })
        .collect();
    let timestamp = |input: &mut Input<'_>| match input.byte() % 4 {
        0 => None,
        1 => Some(Timestamp(i64::MAX)),
        2 => Some(Timestamp(i64::MIN)),
        _ => Some(Timestamp(i64::from(input.u32()))),
    };
    KeyRecord {
        id,
        created: Timestamp(0),
        description: input.short_string(),
        key_spec: *input.choose(KeySpec::ALL),
        key_usage: *input.choose(KeyUsage::ALL),
        origin: *input.choose(&[Origin::AwsKms, Origin::External, Origin::AwsCloudhsm]),
        key_manager: *input.choose(KeyManager::ALL),
        state: *input.choose(KeyState::ALL),
        deletion_date: timestamp(input),
        pending_window_days: input.flag().then(|| input.u32()),
        tags: Vec::new(),
        rotation: RotationConfig {
            enabled: input.flag(),
            period_days: input.u32(),
            next_rotation: timestamp(input),
        },
        versions,
        on_demand_rotations: u32::from(input.byte()),
        policy: if input.byte() % 4 == 0 {
            input.short_string()
        } else {
            POLICY.to_string()
        },
        grants: Vec::new(),
        multi_region: (input.byte() % 4 == 0).then(|| keyplane::key::MultiRegionRecord {
            primary_region: "us-east-1".to_string(),
            replica_regions: if input.byte() % 2 == 0 {
                vec!["eu-west-1".to_string()]
            } else {
                Vec::new()
            },
        }),
        custom_key_store: (input.byte() % 4 == 0).then(|| keyplane::key::CustomKeyStoreKey {
            store_id: input.short_string(),
            backing_key_id: input.short_string(),
        }),
    }
}

fn contents(input: &mut Input<'_>) -> Contents {
    let keys: Vec<KeyRecord> = (0..=input.below(3))
        .map(|i| key_record(input, i as u8 + 1))
        .collect();
    let mut materials = Vec::new();
    for key in &keys {
        for v in &key.versions {
            if input.byte() % 8 == 0 {
                continue; // lost material: the key becomes Unavailable
            }
            let len = match (key.key_spec, input.byte() % 4) {
                (_, 0) => input.below(70),
                (KeySpec::Hmac224, _) => 28,
                (KeySpec::Hmac384, _) => 48,
                (KeySpec::Hmac512, _) => 64,
                _ => 32,
            };
            materials.push((key.id, v.version, input.bytes(len).to_vec()));
        }
    }
    let aliases = (0..input.below(3))
        .map(|i| AliasRecord {
            name: if input.flag() {
                format!("alias/k{i}")
            } else {
                input.short_string()
            },
            target: keys
                .get(input.below(keys.len() + 1))
                .map_or(Uuid::from_bytes([0xEE; 16]), |k| k.id),
            created: Timestamp(0),
            updated: Timestamp(0),
        })
        .collect();
    Contents {
        keys,
        aliases,
        materials,
    }
}

/// Every call an engine on a fuzzed store must survive.
fn exercise(engine: &Engine, store: &FuzzStore) {
    let ids: Vec<String> = match engine.list_keys(Some(1000), None) {
        Ok(page) => page.items.iter().map(|k| k.key_id.clone()).collect(),
        Err(_) => Vec::new(),
    };
    for id in &ids {
        let _ = engine.describe_key(id);
        let _ = engine.get_key_rotation_status(id);
        let _ = engine.list_key_rotations(id, None, None);
    }
    let _ = engine.list_aliases(None, None, None);
    // Another process changed the store: the engine reloads on its next control-plane call,
    // keeping what it had loaded of unchanged versions.
    store.generation.fetch_add(1, Ordering::SeqCst);
    let _ = engine.run_due_tasks();
    for id in &ids {
        let _ = engine.describe_key(id);
        // Whatever the engine encrypts, it decrypts.
        if let Ok(sealed) = engine.encrypt(&EncryptRequest::new(id, b"payload")) {
            match engine.decrypt(&keyplane::DecryptRequest::new(&sealed.ciphertext_blob)) {
                Ok(opened) => assert_eq!(opened.plaintext.expose(), b"payload"),
                Err(e) => panic!("key {id} encrypted a blob it cannot decrypt: {e}"),
            }
        }
        let _ = engine.rotate_key_on_demand(id);
    }
    let _ = engine.create_key(CreateKeyRequest::default());
}

fn json_round_trip(input: &mut Input<'_>) {
    let which = input.byte() % 4;
    let bytes = input.rest();
    macro_rules! round_trip {
        ($ty:ty) => {
            if let Ok(value) = serde_json::from_slice::<$ty>(bytes) {
                let text = serde_json::to_string(&value).expect("a record serialises");
                let again: $ty = serde_json::from_str(&text).expect("its JSON reads back");
                assert_eq!(value, again, "a record changed through JSON");
            }
        };
    }
    match which {
        0 => round_trip!(KeyRecord),
        1 => round_trip!(AliasRecord),
        2 => round_trip!(GrantRecord),
        _ => round_trip!(VersionRecord),
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte() % 2 == 0 {
        json_round_trip(&mut input);
        return;
    }
    let store = Arc::new(FuzzStore {
        contents: Mutex::new(contents(&mut input)),
        generation: AtomicU64::new(1),
    });
    let built = Engine::builder()
        .worker_threads(1)
        .store(Arc::clone(&store) as Arc<dyn KeyStore>)
        .build();
    if let Ok(engine) = built {
        exercise(&engine, &store);
    }
}
