//! The XKS `requestMetadata.kmsRequestId` of every proxy request is the audit record id
//! (`requestID`) of the keyplane call that caused it: for single calls, batches, and calls that
//! a network front end bound to its own request id (`keyplane serve` answers with that id as
//! `x-amzn-RequestId`). A recording external key store stands for the proxy: it keeps the
//! metadata of each Encrypt and Decrypt it is asked, and wraps with a reversible toy (the double
//! encryption's cryptography is tested against the real proxy in `server/tests/xks_store.rs`).

#[path = "support/audit_log.rs"]
mod audit_log;
#[path = "support/external_key.rs"]
mod external_key;

use std::path::Path;
use std::sync::{Arc, Mutex};

use keyplane::access::RequestOrigin;
use keyplane::custom_key_store::{
    BackingKeyId, ConnectFailure, Connection, CustomKeyStoreBackend, CustomKeyStoreRecord,
    CustomKeyStoreType,
};
use keyplane::LockedBytes;
use keyplane::{DecryptRequest, EncryptRequest, Engine, SecretBytes};
use serde_json::Value;
use uuid::Uuid;

/// Every requestMetadata the proxy was sent, as JSON.
type Seen = Arc<Mutex<Vec<Value>>>;

struct RecordingProxy {
    seen: Seen,
}

struct RecordingConnection {
    seen: Seen,
}

impl CustomKeyStoreBackend for RecordingProxy {
    fn check_definition(&self, _store: &CustomKeyStoreRecord) -> keyplane::Result<()> {
        Ok(())
    }

    fn connect(
        &self,
        _store: &CustomKeyStoreRecord,
        _secret: &LockedBytes,
    ) -> Result<Arc<dyn Connection>, ConnectFailure> {
        Ok(Arc::new(RecordingConnection {
            seen: Arc::clone(&self.seen),
        }))
    }

    fn describe(&self) -> String {
        "recording XKS proxy".into()
    }
}

impl RecordingConnection {
    fn note(&self, metadata: &str) {
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::from_str(metadata).unwrap());
    }
}

impl Connection for RecordingConnection {
    fn create_backing_key(&self, _key_id: &Uuid) -> keyplane::Result<BackingKeyId> {
        Err(keyplane::Error::UnsupportedOperation(
            "XKS keys are named".into(),
        ))
    }

    fn check_backing_key(&self, _backing_key: &str) -> keyplane::Result<()> {
        Ok(())
    }

    fn salt_key(&self, _backing_key: &str, _salt: &[u8; 32]) -> keyplane::Result<LockedBytes> {
        Err(keyplane::Error::UnsupportedOperation(
            "an XKS proxy has no salt keys".into(),
        ))
    }

    fn random(&self, _out: &mut [u8]) -> keyplane::Result<()> {
        Err(keyplane::Error::UnsupportedOperation("no random".into()))
    }

    fn health(&self) -> Result<(), ConnectFailure> {
        Ok(())
    }

    fn encrypts_blobs(&self) -> bool {
        true
    }

    fn external_encrypt(
        &self,
        _backing_key: &str,
        plaintext: &[u8],
        _aad: &[u8],
        request_metadata: &str,
    ) -> keyplane::Result<Vec<u8>> {
        self.note(request_metadata);
        Ok(plaintext.iter().map(|b| b ^ 0x5a).collect())
    }

    fn external_decrypt(
        &self,
        _backing_key: &str,
        ciphertext: &[u8],
        _aad: &[u8],
        request_metadata: &str,
    ) -> keyplane::Result<SecretBytes> {
        self.note(request_metadata);
        Ok(SecretBytes::from_vec(
            ciphertext.iter().map(|b| b ^ 0x5a).collect(),
        ))
    }
}

fn audited_engine(path: &Path, seen: &Seen) -> Engine {
    audit_log::audited(Engine::builder().worker_threads(2), path)
        .custom_key_store_backend(
            CustomKeyStoreType::ExternalKeyStore,
            Arc::new(RecordingProxy {
                seen: Arc::clone(seen),
            }),
        )
        .build()
        .unwrap()
}

#[test]
fn kms_request_id_is_the_audit_record_id_of_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let seen: Seen = Arc::default();
    let engine = audited_engine(&log, &seen);
    let key = external_key::external_key(&engine, "recording");

    // A single Encrypt and Decrypt, a batch of three, and a call bound to a front end's id.
    let blob = engine
        .encrypt(&EncryptRequest::new(&key, b"one"))
        .unwrap()
        .ciphertext_blob;
    engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
    let items: Vec<EncryptRequest<'_>> = (0..3)
        .map(|_| EncryptRequest::new(&key, b"batched"))
        .collect();
    for result in engine.encrypt_batch(&items) {
        result.unwrap();
    }
    let front_end_id = "0f3e1b1c-6a7d-4e2b-9a55-0123456789ab";
    engine
        .with_origin(RequestOrigin {
            request_id: Some(front_end_id.into()),
            ..Default::default()
        })
        .encrypt(&EncryptRequest::new(&key, b"through serve"))
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1 + 1 + 3 + 1, "{seen:?}");
    let records = audit_log::records(&log);
    let record_of = |id: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["requestID"].as_str() == Some(id))
            .collect()
    };
    for metadata in &seen {
        let id = metadata["kmsRequestId"].as_str().unwrap();
        let matching = record_of(id);
        assert_eq!(
            matching.len(),
            1,
            "kmsRequestId {id} names no single audit record"
        );
        assert_eq!(
            matching[0]["eventName"], metadata["kmsOperation"],
            "{metadata} traced to {}",
            matching[0]
        );
    }
    let ids: Vec<&str> = seen
        .iter()
        .map(|m| m["kmsRequestId"].as_str().unwrap())
        .collect();
    // One id per call: the batch's three proxy requests share its record's; the rest differ.
    assert_eq!(ids[2], ids[3]);
    assert_eq!(ids[3], ids[4]);
    let mut distinct = vec![ids[0], ids[1], ids[2], ids[5]];
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    assert_eq!(ids[5], front_end_id);
}
