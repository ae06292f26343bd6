//! Multi-Region keys: two (or three) Regions, each an engine on its own store, given the other
//! Regions' stores. ReplicateKey, the write-through of shared properties (rotation on the primary
//! reaching the replica), independent properties (disable in one Region only), deletion waiting
//! for replicas (PendingReplicaDeletion), UpdatePrimaryRegion, imported multi-Region keys, and
//! the operations the service refuses, with its exceptions.

#[path = "support/outcome.rs"]
mod outcome;
use outcome::code;
use std::sync::Arc;

use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{
    CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, ExpirationModel,
    ImportKeyMaterialRequest, KeySpec, KeyState, KeyUsage, LockPolicy, ManualClock,
    MultiRegionKeyType, Origin, ReplicateKeyRequest, Tag, WrappingAlgorithm, WrappingKeySpec,
};
use keyplane_testkit::new_key;
use rsa::pkcs8::DecodePublicKey;

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const SOUTH: &str = "ap-southeast-2";

struct Regions {
    clock: Arc<ManualClock>,
    stores: Vec<(&'static str, Arc<MemoryKeyStore>)>,
}

impl Regions {
    fn new(regions: &[&'static str]) -> Regions {
        Regions {
            clock: Arc::new(ManualClock::starting_now()),
            stores: regions
                .iter()
                .map(|r| (*r, Arc::new(MemoryKeyStore::new(LockPolicy::Require))))
                .collect(),
        }
    }

    fn store(&self, region: &str) -> Arc<MemoryKeyStore> {
        self.stores
            .iter()
            .find(|(r, _)| *r == region)
            .map(|(_, s)| Arc::clone(s))
            .unwrap()
    }

    /// The engine of `region`: its own store, and every other Region's as a peer.
    fn engine(&self, region: &str) -> Engine {
        self.builder(region).build().unwrap()
    }

    fn builder(&self, region: &str) -> keyplane::EngineBuilder {
        let mut builder = Engine::builder()
            .region(region)
            .clock(self.clock.clone())
            .store(self.store(region));
        for (peer, store) in &self.stores {
            if *peer != region {
                builder = builder.region_store(peer, Arc::clone(store) as Arc<dyn KeyStore>);
            }
        }
        builder
    }
}

fn mrk(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest {
            multi_region: Some(true),
            description: Some("primary".into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
}

fn replicate(engine: &Engine, key: &str, region: &str) -> keyplane::ReplicateKeyResponse {
    engine
        .replicate_key(ReplicateKeyRequest {
            key_id: key.into(),
            replica_region: region.into(),
            ..Default::default()
        })
        .unwrap()
}

/// A change another Region's engine wrote to this engine's store reaches its data plane at its
/// next control-plane call or scheduler tick, as any change by another engine sharing a store
/// (`docs/multi-region.md`); the data-plane helpers take that step first.
fn catch_up(engine: &Engine) {
    engine.run_due_tasks().unwrap();
}

fn seal(engine: &Engine, key: &str, plaintext: &[u8]) -> Vec<u8> {
    catch_up(engine);
    engine
        .encrypt(&EncryptRequest::new(key, plaintext))
        .unwrap()
        .ciphertext_blob
}

fn open(engine: &Engine, blob: &[u8]) -> keyplane::Result<Vec<u8>> {
    catch_up(engine);
    engine
        .decrypt(&DecryptRequest::new(blob))
        .map(|r| r.plaintext.expose().to_vec())
}

fn regions_of(engine: &Engine, key: &str) -> (MultiRegionKeyType, String, Vec<String>) {
    let md = engine.describe_key(key).unwrap();
    assert!(md.multi_region);
    let c = md.multi_region_configuration.unwrap();
    (
        c.multi_region_key_type,
        c.primary_key.region,
        c.replica_keys.into_iter().map(|k| k.region).collect(),
    )
}

#[test]
fn a_replica_has_the_same_id_and_material_and_decrypts_what_the_primary_encrypts() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = mrk(&east);
    assert!(key.starts_with("mrk-") && key.len() == 36, "{key}");
    let md = east.describe_key(&key).unwrap();
    assert_eq!(md.arn, format!("arn:aws:kms:{EAST}:111122223333:key/{key}"));
    assert_eq!(
        regions_of(&east, &key),
        (MultiRegionKeyType::Primary, EAST.into(), vec![])
    );
    let json = serde_json::to_value(&md).unwrap();
    assert_eq!(json["MultiRegion"], true);
    assert_eq!(
        json["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );
    assert_eq!(
        json["MultiRegionConfiguration"]["PrimaryKey"]["Arn"],
        md.arn.as_str()
    );

    let response = east
        .replicate_key(ReplicateKeyRequest {
            key_id: key.clone(),
            replica_region: WEST.into(),
            description: Some("replica".into()),
            tags: vec![Tag {
                tag_key: "team".into(),
                tag_value: "west".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    let replica = &response.replica_key_metadata;
    assert_eq!(replica.key_id, key);
    assert_eq!(
        replica.arn,
        format!("arn:aws:kms:{WEST}:111122223333:key/{key}")
    );
    assert_eq!(replica.key_state, KeyState::Enabled);
    assert_eq!(replica.description, "replica");
    assert_eq!(response.replica_tags.len(), 1);
    assert!(response.replica_policy.contains("kms:*"));

    // The other Region's engine sees the replica through its store.
    let md = west.describe_key(&key).unwrap();
    assert_eq!(md.key_state, KeyState::Enabled);
    assert_eq!(md.description, "replica");
    assert_eq!(
        regions_of(&west, &key),
        (MultiRegionKeyType::Replica, EAST.into(), vec![WEST.into()])
    );
    assert_eq!(
        regions_of(&east, &key),
        (MultiRegionKeyType::Primary, EAST.into(), vec![WEST.into()])
    );
    // The replica's ARN works in its Region; the id and ARN forms name the same key.
    west.describe_key(&md.arn).unwrap();
    assert_eq!(
        code(west.describe_key(&format!("arn:aws:kms:{EAST}:111122223333:key/{key}"))),
        "NotFoundException"
    );

    for (from, to) in [(&east, &west), (&west, &east)] {
        let blob = seal(from, &key, b"across Regions");
        assert_eq!(open(to, &blob).unwrap(), b"across Regions");
    }
    // Tags, description and policy are the replica's own.
    assert!(east
        .list_resource_tags(&key, None, None)
        .unwrap()
        .items
        .is_empty());
    assert_eq!(east.describe_key(&key).unwrap().description, "primary");
}

#[test]
fn rotation_on_the_primary_reaches_the_replica_and_the_replica_cannot_rotate() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = mrk(&east);
    replicate(&east, &key, WEST);
    let before = seal(&east, &key, b"version 1");

    east.rotate_key_on_demand(&key).unwrap();
    let after = seal(&east, &key, b"version 2");
    assert_eq!(open(&west, &after).unwrap(), b"version 2");
    assert_eq!(open(&west, &before).unwrap(), b"version 1");
    let from_west = seal(&west, &key, b"west uses version 2");
    assert_eq!(open(&east, &from_west).unwrap(), b"west uses version 2");
    assert_eq!(
        east.describe_key(&key).unwrap().current_key_material_id,
        west.describe_key(&key).unwrap().current_key_material_id
    );

    // Without a control-plane call, the replica's data plane has the new version within the
    // scheduler interval.
    east.rotate_key_on_demand(&key).unwrap();
    let blob = east
        .encrypt(&EncryptRequest::new(&key, b"version 3"))
        .unwrap()
        .ciphertext_blob;
    let ticking = regions
        .builder(WEST)
        .scheduler_interval(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    east.rotate_key_on_demand(&key).unwrap();
    let newest = east
        .encrypt(&EncryptRequest::new(&key, b"version 4"))
        .unwrap()
        .ciphertext_blob;
    loop {
        match ticking.decrypt(&DecryptRequest::new(&newest)) {
            Ok(r) => {
                assert_eq!(r.plaintext.expose(), b"version 4");
                break;
            }
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(e.code(), "InvalidCiphertextException");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("the replica Region never picked up the rotation: {e}"),
        }
    }
    assert_eq!(open(&west, &blob).unwrap(), b"version 3");

    // Automatic rotation: its settings are shared; the primary's Region rotates.
    east.enable_key_rotation(&key, Some(90)).unwrap();
    let status = west.get_key_rotation_status(&key).unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(90));
    regions.clock.advance_days(91);
    west.run_due_tasks().unwrap();
    assert_eq!(
        west.list_key_rotations(&key, None, None)
            .unwrap()
            .items
            .len(),
        3
    );
    east.run_due_tasks().unwrap();
    let rotated = seal(&east, &key, b"version 5");
    assert_eq!(open(&west, &rotated).unwrap(), b"version 5");
    assert_eq!(
        west.list_key_rotations(&key, None, None)
            .unwrap()
            .items
            .len(),
        4
    );

    // Shared properties change only on the primary key.
    for result in [
        west.enable_key_rotation(&key, None),
        west.disable_key_rotation(&key),
        west.rotate_key_on_demand(&key).map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.code(), "UnsupportedOperationException");
        assert!(e.message().contains("replica"), "{e}");
    }
    east.disable_key_rotation(&key).unwrap();
    assert!(
        !west
            .get_key_rotation_status(&key)
            .unwrap()
            .key_rotation_enabled
    );
}

#[test]
fn disabling_the_key_in_one_region_leaves_the_other_working() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = mrk(&east);
    replicate(&east, &key, WEST);
    east.disable_key(&key).unwrap();
    assert_eq!(
        code(east.encrypt(&EncryptRequest::new(&key, b"x"))),
        "DisabledException"
    );
    let blob = seal(&west, &key, b"still works in the west");
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    assert_eq!(code(open(&east, &blob)), "DisabledException");
    west.disable_key(&key).unwrap();
    east.enable_key(&key).unwrap();
    assert_eq!(open(&east, &blob).unwrap(), b"still works in the west");
    assert_eq!(code(open(&west, &blob)), "DisabledException");
    // A rotation on the primary keeps the replica's own (disabled) state.
    east.rotate_key_on_demand(&key).unwrap();
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::Disabled
    );
    // Aliases are per Region.
    west.create_alias("alias/west-only", &key).unwrap();
    assert_eq!(
        code(east.encrypt(&EncryptRequest::new("alias/west-only", b"x"))),
        "NotFoundException"
    );
}

#[test]
fn a_primary_with_replicas_waits_in_pending_replica_deletion() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = mrk(&east);
    replicate(&east, &key, WEST);

    let scheduled = east.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(scheduled.key_state, KeyState::PendingReplicaDeletion);
    assert_eq!(scheduled.deletion_date, None);
    assert_eq!(scheduled.pending_window_in_days, 7);
    let json = serde_json::to_value(&scheduled).unwrap();
    assert!(json.get("DeletionDate").is_none());
    let md = east.describe_key(&key).unwrap();
    assert_eq!(md.key_state, KeyState::PendingReplicaDeletion);
    assert_eq!(md.deletion_date, None);
    assert_eq!(md.pending_deletion_window_in_days, Some(7));
    assert_eq!(
        code(east.encrypt(&EncryptRequest::new(&key, b"x"))),
        "KMSInvalidStateException"
    );
    // It can be cancelled, and scheduled again.
    east.cancel_key_deletion(&key).unwrap();
    assert_eq!(
        east.describe_key(&key).unwrap().key_state,
        KeyState::Disabled
    );
    east.schedule_key_deletion(&key, Some(7)).unwrap();

    // Time passes: the primary waits as long as its replica exists.
    regions.clock.advance_days(40);
    east.run_due_tasks().unwrap();
    assert_eq!(
        east.describe_key(&key).unwrap().key_state,
        KeyState::PendingReplicaDeletion
    );
    let blob = seal(&west, &key, b"the replica still works");

    // The replica is deleted after its own waiting period; then the primary's begins.
    let replica = west.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(replica.key_state, KeyState::PendingDeletion);
    assert!(replica.deletion_date.is_some());
    regions.clock.advance_days(8);
    west.run_due_tasks().unwrap();
    assert_eq!(code(west.describe_key(&key)), "NotFoundException");
    assert_eq!(code(open(&west, &blob)), "InvalidCiphertextException");
    let md = east.describe_key(&key).unwrap();
    assert_eq!(md.key_state, KeyState::PendingDeletion);
    let now = keyplane::Clock::now(regions.clock.as_ref());
    assert_eq!(md.deletion_date, Some(now.plus_days(7)));
    assert_eq!(regions_of(&east, &key).2, Vec::<String>::new());
    regions.clock.advance_days(8);
    east.run_due_tasks().unwrap();
    assert_eq!(code(east.describe_key(&key)), "NotFoundException");
}

#[test]
fn update_primary_region_swaps_the_roles() {
    let regions = Regions::new(&[EAST, WEST, SOUTH]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let south = regions.engine(SOUTH);
    let key = mrk(&east);
    replicate(&east, &key, WEST);
    replicate(&east, &key, SOUTH);
    for engine in [&east, &west, &south] {
        assert_eq!(
            regions_of(engine, &key).2,
            vec![SOUTH.to_string(), WEST.into()]
        );
    }

    east.update_primary_region(&key, WEST).unwrap();
    assert_eq!(
        regions_of(&west, &key),
        (
            MultiRegionKeyType::Primary,
            WEST.into(),
            vec![SOUTH.into(), EAST.into()]
        )
    );
    assert_eq!(regions_of(&east, &key).0, MultiRegionKeyType::Replica);
    assert_eq!(regions_of(&east, &key).1, WEST);
    assert_eq!(regions_of(&south, &key).1, WEST);
    assert_eq!(regions_of(&south, &key).0, MultiRegionKeyType::Replica);

    // The old primary is now a replica; the new one rotates, and its material reaches both.
    assert_eq!(
        code(east.rotate_key_on_demand(&key)),
        "UnsupportedOperationException"
    );
    assert_eq!(
        code(east.replicate_key(ReplicateKeyRequest {
            key_id: key.clone(),
            replica_region: "us-west-2".into(),
            ..Default::default()
        })),
        "UnsupportedOperationException"
    );
    west.rotate_key_on_demand(&key).unwrap();
    let blob = seal(&west, &key, b"new primary");
    assert_eq!(open(&east, &blob).unwrap(), b"new primary");
    assert_eq!(open(&south, &blob).unwrap(), b"new primary");
    // And back.
    west.update_primary_region(&key, EAST).unwrap();
    assert_eq!(regions_of(&east, &key).0, MultiRegionKeyType::Primary);
    assert_eq!(regions_of(&south, &key).1, EAST);
}

#[test]
fn refused_operations_get_the_service_exceptions() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let single = new_key(&east);
    let key = mrk(&east);
    let request = |key: &str, region: &str| ReplicateKeyRequest {
        key_id: key.into(),
        replica_region: region.into(),
        ..Default::default()
    };

    let e = east.replicate_key(request(&single, WEST)).unwrap_err();
    assert_eq!(e.code(), "UnsupportedOperationException");
    assert!(e.message().contains("not a multi-Region key"), "{e}");
    assert_eq!(
        code(east.replicate_key(request(&key, EAST))),
        "AlreadyExistsException"
    );
    assert_eq!(
        code(east.replicate_key(request(&key, "us-west-2"))),
        "UnsupportedOperationException"
    );
    assert_eq!(
        code(east.replicate_key(request(&key, "moon"))),
        "ValidationException"
    );
    assert_eq!(
        code(east.replicate_key(request("alias/nope", WEST))),
        "NotFoundException"
    );
    replicate(&east, &key, WEST);
    assert_eq!(
        code(east.replicate_key(request(&key, WEST))),
        "AlreadyExistsException"
    );
    assert_eq!(
        code(west.replicate_key(request(&key, "us-west-2"))),
        "UnsupportedOperationException"
    );

    assert_eq!(
        code(east.update_primary_region(&key, "us-west-2")),
        "NotFoundException"
    );
    assert_eq!(
        code(east.update_primary_region(&key, EAST)),
        "UnsupportedOperationException"
    );
    assert_eq!(
        code(east.update_primary_region(&single, WEST)),
        "UnsupportedOperationException"
    );
    assert_eq!(
        code(west.update_primary_region(&key, WEST)),
        "UnsupportedOperationException"
    );
    assert_eq!(
        code(east.update_primary_region(&key, "x")),
        "ValidationException"
    );

    // A replica pending deletion cannot become the primary; a primary pending replica deletion
    // cannot be replicated.
    west.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(
        code(east.update_primary_region(&key, WEST)),
        "KMSInvalidStateException"
    );
    west.cancel_key_deletion(&key).unwrap();
    east.schedule_key_deletion(&key, None).unwrap();
    assert_eq!(
        code(east.replicate_key(request(&key, SOUTH))),
        "KMSInvalidStateException"
    );

    // The 128 bits of an mrk id in the single-Region form name no key, and the other way round.
    let uuid = uuid::Uuid::parse_str(&key["mrk-".len()..]).unwrap();
    assert_eq!(
        code(east.describe_key(&uuid.hyphenated().to_string())),
        "NotFoundException"
    );
    let single_uuid = uuid::Uuid::parse_str(&single).unwrap();
    assert_eq!(
        code(east.describe_key(&format!("mrk-{}", single_uuid.simple()))),
        "NotFoundException"
    );
    // A peer Region's store is not this engine's own.
    let store = regions.store(WEST);
    assert_eq!(
        code(
            Engine::builder()
                .region(WEST)
                .region_store(WEST, store)
                .build()
        ),
        "ValidationException"
    );
}

#[test]
fn multi_region_keys_of_every_kind_replicate() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let hmac = east
        .create_key(CreateKeyRequest {
            multi_region: Some(true),
            key_spec: Some(KeySpec::Hmac256),
            key_usage: Some(KeyUsage::GenerateVerifyMac),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    replicate(&east, &hmac, WEST);
    let md = west.describe_key(&hmac).unwrap();
    assert_eq!(
        (md.key_spec, md.key_usage),
        (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac)
    );
    let mac = east
        .generate_mac(&keyplane::GenerateMacRequest {
            key_id: &hmac,
            message: b"message",
            mac_algorithm: keyplane::MacAlgorithm::HmacSha256,
        })
        .unwrap();
    let again = west
        .generate_mac(&keyplane::GenerateMacRequest {
            key_id: &hmac,
            message: b"message",
            mac_algorithm: keyplane::MacAlgorithm::HmacSha256,
        })
        .unwrap();
    assert_eq!(mac.mac, again.mac);
}

// ---- imported multi-Region keys ------------------------------------------------------------------

fn wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPublicKey::from_public_key_der(public_der).unwrap();
    key.encrypt(
        &mut rand_core::OsRng,
        rsa::Oaep::new::<sha2::Sha256>(),
        material,
    )
    .unwrap()
}

fn import(engine: &Engine, key: &str, material: &[u8]) -> keyplane::Result<String> {
    let params = engine.get_parameters_for_import(
        key,
        WrappingAlgorithm::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )?;
    let wrapped = wrap(&params.public_key, material);
    engine
        .import_key_material(&ImportKeyMaterialRequest {
            key_id: key,
            import_token: &params.import_token,
            encrypted_key_material: &wrapped,
            expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
            ..Default::default()
        })
        .map(|r| r.key_material_id)
}

#[test]
fn imported_multi_region_keys_take_the_same_material_in_every_region() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = east
        .create_key(CreateKeyRequest {
            multi_region: Some(true),
            origin: Some(Origin::External),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let replica = replicate(&east, &key, WEST);
    assert_eq!(
        replica.replica_key_metadata.key_state,
        KeyState::PendingImport
    );
    assert_eq!(replica.replica_key_metadata.origin, Origin::External);
    let material = [0x5a; 32];
    // The replica takes material only after the primary has it.
    assert_eq!(
        code(import(&west, &key, &material)),
        "UnsupportedOperationException"
    );
    let id = import(&east, &key, &material).unwrap();
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::PendingImport
    );
    // Different material is refused, and nothing changes.
    assert_eq!(
        code(import(&west, &key, &[0x11; 32])),
        "IncorrectKeyMaterialException"
    );
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::PendingImport
    );
    assert_eq!(import(&west, &key, &material).unwrap(), id);
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    let blob = seal(&east, &key, b"imported");
    assert_eq!(open(&west, &blob).unwrap(), b"imported");
    // Deleting the imported material in one Region leaves the other's.
    west.delete_imported_key_material(&key, None).unwrap();
    assert_eq!(
        west.describe_key(&key).unwrap().key_state,
        KeyState::PendingImport
    );
    assert_eq!(open(&east, &blob).unwrap(), b"imported");
}

#[test]
fn policies_see_the_multi_region_condition_keys() {
    let regions = Regions::new(&[EAST, WEST]);
    let east = regions.engine(EAST);
    let west = regions.engine(WEST);
    let key = mrk(&east);
    replicate(&east, &key, WEST);
    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    // The same policy in both Regions: Alice may not encrypt under a replica, nor under any
    // multi-Region key when kms:MultiRegion is tested.
    let policy = |condition: serde_json::Value| {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                 "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:Encrypt",
                 "Resource": "*", "Condition": condition},
            ]
        })
        .to_string()
    };
    let replica_only =
        policy(serde_json::json!({"StringEquals": {"kms:MultiRegionKeyType": "REPLICA"}}));
    east.put_key_policy(&key, &replica_only, None, false)
        .unwrap();
    west.put_key_policy(&key, &replica_only, None, false)
        .unwrap();
    let alice = |e: &Engine| e.for_caller(keyplane::Caller::new(ALICE).unwrap());
    catch_up(&west);
    assert!(alice(&east)
        .encrypt(&EncryptRequest::new(&key, b"x"))
        .is_ok());
    assert_eq!(
        code(alice(&west).encrypt(&EncryptRequest::new(&key, b"x"))),
        "AccessDeniedException"
    );
    let multi = policy(serde_json::json!({"Bool": {"kms:MultiRegion": "true"}}));
    east.put_key_policy(&key, &multi, None, false).unwrap();
    assert_eq!(
        code(alice(&east).encrypt(&EncryptRequest::new(&key, b"x"))),
        "AccessDeniedException"
    );
    let single = east.create_key(CreateKeyRequest {
        policy: Some(multi),
        ..Default::default()
    });
    let single = single.unwrap().key_id;
    assert!(alice(&east)
        .encrypt(&EncryptRequest::new(&single, b"x"))
        .is_ok());
    // After the swap the east key is the replica, and the replica-only statement applies there.
    east.put_key_policy(&key, &replica_only, None, false)
        .unwrap();
    east.update_primary_region(&key, WEST).unwrap();
    catch_up(&west);
    assert_eq!(
        code(alice(&east).encrypt(&EncryptRequest::new(&key, b"x"))),
        "AccessDeniedException"
    );
    assert!(alice(&west)
        .encrypt(&EncryptRequest::new(&key, b"x"))
        .is_ok());
}
