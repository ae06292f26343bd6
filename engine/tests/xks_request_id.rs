//! The XKS `requestMetadata.kmsRequestId` of every proxy request is the audit record id
//! (`requestID`) of the keyplane call that caused it: for single calls, batches, and calls that
//! a network front end bound to its own request id (`keyplane serve` answers with that id as
//! `x-amzn-RequestId`). [`ToyProxy`](external_key::ToyProxy) stands for the proxy: it keeps the
//! metadata of each Encrypt and Decrypt it is asked.

#[path = "support/audit_log.rs"]
mod audit_log;
#[path = "support/external_key.rs"]
mod external_key;

use std::path::Path;
use std::sync::Arc;

use external_key::{Seen, ToyProxy};
use keyplane::access::RequestOrigin;
use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::{DecryptRequest, EncryptRequest, Engine};
use serde_json::Value;

fn audited_engine(path: &Path, seen: &Seen) -> Engine {
    audit_log::audited(Engine::builder().worker_threads(2), path)
        .custom_key_store_backend(
            CustomKeyStoreType::ExternalKeyStore,
            Arc::new(ToyProxy {
                padding: 0,
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
