//! Multi-Region keys on two SQLite stores, one per Region, each sealed under its own root key,
//! and two processes that share nothing but the store directories: the primary key's Region in
//! this process, the replica's Region in a child process (this test binary again). A ciphertext
//! made under the primary decrypts under the replica in the other process, also after a
//! rotation; disabling the replica affects only its Region; deletion of a primary with replicas
//! waits in PendingReplicaDeletion.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use common::*;
use keyplane::store::KeyStore;
use keyplane::{Engine, KeyState, ReplicateKeyRequest};
use keyplane_testkit::{child_test, hex, succeeded, unhex};

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const CHILD_OWN: &str = "KEYPLANE_MRK_OWN_DIR";
const CHILD_PEER: &str = "KEYPLANE_MRK_PEER_DIR";
const CHILD_ACTION: &str = "KEYPLANE_MRK_ACTION";

/// The engine of `region` on the store in `own`, given the store of `peer_region` in `peer`.
fn region_engine(region: &str, own: &Path, peer_region: &str, peer: &Path) -> Engine {
    Engine::builder()
        .region(region)
        .worker_threads(1)
        .store(open(own))
        .region_store(peer_region, open(peer) as Arc<dyn KeyStore>)
        .build()
        .expect("engine of the Region")
}

/// Runs `action` in a new process as the engine of eu-west-1 (own store `west`, peer `east`).
fn in_west_process(west: &Path, east: &Path, action: &str) -> String {
    let out = succeeded(
        child_test("west_process")
            .env(CHILD_OWN, west)
            .env(CHILD_PEER, east)
            .env(CHILD_ACTION, action),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.find("OUT ").map(|at| l[at + 4..].to_owned()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "the replica Region's process of the multi-Region test"]
fn west_process() {
    let (Ok(own), Ok(peer)) = (std::env::var(CHILD_OWN), std::env::var(CHILD_PEER)) else {
        return;
    };
    let engine = region_engine(WEST, Path::new(&own), EAST, Path::new(&peer));
    let action = std::env::var(CHILD_ACTION).unwrap();
    let parts: Vec<&str> = action.split(' ').collect();
    let out = match parts.as_slice() {
        ["describe", key] => {
            let md = engine.describe_key(key).unwrap();
            let c = md.multi_region_configuration.unwrap();
            format!(
                "{} {} {} {}",
                md.key_state,
                c.multi_region_key_type,
                c.primary_key.region,
                c.replica_keys
                    .iter()
                    .map(|k| k.region.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        ["decrypt", blob] => match decrypt(&engine, &unhex(blob)) {
            Ok(plaintext) => String::from_utf8(plaintext).unwrap(),
            Err(e) => e.code().to_owned(),
        },
        ["encrypt", key] => match engine.encrypt(&keyplane::EncryptRequest::new(key, b"west")) {
            Ok(r) => hex(&r.ciphertext_blob),
            Err(e) => e.code().to_owned(),
        },
        ["disable", key] => {
            engine.disable_key(key).unwrap();
            String::new()
        }
        ["rotate", key] => match engine.rotate_key_on_demand(key) {
            Ok(_) => "rotated".into(),
            Err(e) => e.code().to_owned(),
        },
        other => panic!("unknown action {other:?}"),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\nOUT {out}").unwrap();
}

#[test]
fn a_replica_in_another_process_and_store_decrypts_what_the_primary_encrypts() {
    let east_dir = tempfile::tempdir().unwrap();
    let west_dir = tempfile::tempdir().unwrap();
    let (east_path, west_path) = (east_dir.path(), west_dir.path());
    drop((init(east_path), init(west_path)));
    // The two stores have different root keys.
    assert_ne!(
        std::fs::read(east_path.join("root.key")).unwrap(),
        std::fs::read(west_path.join("root.key")).unwrap()
    );
    let east = region_engine(EAST, east_path, WEST, west_path);
    let key = east
        .create_key(keyplane::CreateKeyRequest {
            multi_region: Some(true),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    assert!(key.starts_with("mrk-"));
    east.replicate_key(ReplicateKeyRequest {
        key_id: key.clone(),
        replica_region: WEST.into(),
        ..Default::default()
    })
    .unwrap();
    let west = |action: &str| in_west_process(west_path, east_path, action);
    assert_eq!(
        west(&format!("describe {key}")),
        format!("Enabled REPLICA {EAST} {WEST}")
    );

    let first = encrypt(&east, &key, b"sealed in us-east-1");
    assert_eq!(
        west(&format!("decrypt {}", hex(&first))),
        "sealed in us-east-1"
    );
    // And back: the replica encrypts, the primary decrypts.
    let from_west = unhex(&west(&format!("encrypt {key}")));
    assert_eq!(decrypt(&east, &from_west).unwrap(), b"west");

    // A rotation on the primary reaches the replica's store, sealed under its root key.
    east.rotate_key_on_demand(&key).unwrap();
    let second = encrypt(&east, &key, b"after the rotation");
    assert_eq!(
        west(&format!("decrypt {}", hex(&second))),
        "after the rotation"
    );
    assert_eq!(
        west(&format!("decrypt {}", hex(&first))),
        "sealed in us-east-1"
    );
    assert_eq!(
        west(&format!("rotate {key}")),
        "UnsupportedOperationException"
    );

    // Disabling the replica affects only its Region.
    west(&format!("disable {key}"));
    assert_eq!(west(&format!("encrypt {key}")), "DisabledException");
    east.run_due_tasks().unwrap();
    let third = encrypt(&east, &key, b"east still works");
    assert_eq!(decrypt(&east, &third).unwrap(), b"east still works");
    assert_eq!(
        west(&format!("describe {key}")),
        format!("Disabled REPLICA {EAST} {WEST}")
    );

    // The primary waits for its replica; the replica's store is not touched by the schedule.
    let scheduled = east.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(scheduled.key_state, KeyState::PendingReplicaDeletion);
    assert_eq!(scheduled.deletion_date, None);
    assert_eq!(
        west(&format!("describe {key}")),
        format!("Disabled REPLICA {EAST} {WEST}")
    );

    // The stores reopened in a fresh engine still know the key's Regions.
    drop(east);
    let reopened = region_engine(EAST, east_path, WEST, west_path);
    let md = reopened.describe_key(&key).unwrap();
    assert_eq!(md.key_state, KeyState::PendingReplicaDeletion);
    let config = md.multi_region_configuration.unwrap();
    assert_eq!(config.replica_keys.len(), 1);
    assert_eq!(config.replica_keys[0].region, WEST);
}

fn oaep_wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
    let key =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_der).unwrap()).unwrap();
    let mut out = vec![0u8; key.ciphertext_size()];
    key.encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
        .unwrap()
        .to_vec()
}

fn import(engine: &Engine, key: &str, material: &[u8]) -> keyplane::Result<String> {
    let params = engine.get_parameters_for_import(
        key,
        keyplane::WrappingAlgorithm::RsaesOaepSha256,
        keyplane::WrappingKeySpec::Rsa2048,
    )?;
    let wrapped = oaep_wrap(&params.public_key, material);
    engine
        .import_key_material(&keyplane::ImportKeyMaterialRequest {
            key_id: key,
            import_token: &params.import_token,
            encrypted_key_material: &wrapped,
            expiration_model: Some(keyplane::ExpirationModel::KeyMaterialDoesNotExpire),
            ..Default::default()
        })
        .map(|r| r.key_material_id)
}

#[test]
fn an_imported_multi_region_key_takes_the_same_material_in_each_sqlite_store() {
    let east_dir = tempfile::tempdir().unwrap();
    let west_dir = tempfile::tempdir().unwrap();
    let (east_path, west_path) = (east_dir.path(), west_dir.path());
    drop((init(east_path), init(west_path)));
    let east = region_engine(EAST, east_path, WEST, west_path);
    let west = region_engine(WEST, west_path, EAST, east_path);
    let key = east
        .create_key(keyplane::CreateKeyRequest {
            multi_region: Some(true),
            origin: Some(keyplane::Origin::External),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    east.replicate_key(ReplicateKeyRequest {
        key_id: key.clone(),
        replica_region: WEST.into(),
        ..Default::default()
    })
    .unwrap();
    let material = [7u8; 32];
    let id = import(&east, &key, &material).unwrap();
    let wrong = import(&west, &key, &[8u8; 32]).unwrap_err();
    assert_eq!(wrong.code(), "IncorrectKeyMaterialException");
    assert_eq!(import(&west, &key, &material).unwrap(), id);
    let blob = encrypt(&east, &key, b"imported in both Regions");
    west.run_due_tasks().unwrap();
    assert_eq!(decrypt(&west, &blob).unwrap(), b"imported in both Regions");
    // A restart of the replica's Region keeps its material, sealed under its own root key.
    drop(west);
    let west = region_engine(WEST, west_path, EAST, east_path);
    assert_eq!(decrypt(&west, &blob).unwrap(), b"imported in both Regions");
}
