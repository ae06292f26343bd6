//! `Engine::encrypt_batch_one_key`: many small plaintexts under one key and one context, the key
//! resolved and the caller authorised once per batch (issue 14). What it writes opens with the
//! ordinary Decrypt under that key and no other; a key that is missing, disabled or denied to
//! the caller refuses the whole batch; one audit record names the key and the count; and nothing
//! about one batch's authorization outlives it (a key disabled, a grant revoked or an alias moved
//! between two batches is seen by the second).

#[path = "support/audit_log.rs"]
mod audit_log;

use keyplane::ciphertext::{blob_len, key_id_of};
use keyplane::{
    Caller, CreateGrantRequest, DecryptRequest, EncryptionContext, Engine, ErrorKind,
    GrantOperation,
};
use keyplane_testkit::new_key;
use serde_json::Value;

const EVE: &str = "arn:aws:iam::444455556666:user/eve";

fn context() -> EncryptionContext {
    let mut context = EncryptionContext::new();
    context.insert("tenant".into(), "7".into());
    context
}

/// `n` distinct plaintexts of `len` bytes.
fn plaintexts(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..len).map(|j| (i * 31 + j) as u8).collect())
        .collect()
}

/// Runs a one-key batch into fresh buffers of `blob_len`; the results and the buffers.
fn batch(
    engine: &Engine,
    key_id: &str,
    context: Option<&EncryptionContext>,
    plaintexts: &[Vec<u8>],
) -> (Vec<keyplane::Result<usize>>, Vec<Vec<u8>>) {
    let items: Vec<&[u8]> = plaintexts.iter().map(Vec::as_slice).collect();
    let mut buffers: Vec<Vec<u8>> = plaintexts
        .iter()
        .map(|p| vec![0u8; blob_len(p.len().max(1))])
        .collect();
    let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
    let results = engine
        .encrypt_batch_one_key(key_id, context, &items, &mut outputs)
        .into_results();
    (results, buffers)
}

fn kinds(results: &[keyplane::Result<usize>]) -> Vec<Option<ErrorKind>> {
    results
        .iter()
        .map(|r| r.as_ref().err().map(keyplane::Error::kind))
        .collect()
}

#[test]
fn every_blob_opens_with_decrypt_under_the_batch_key_small_and_large_batches() {
    let engine = Engine::builder().worker_threads(4).build().unwrap();
    let key = new_key(&engine);
    let other = new_key(&engine);
    engine.create_alias("alias/one", &key).unwrap();
    let context = context();
    // 8 items run on the calling thread; 3000 spread over the pool.
    for n in [8, 3000] {
        let messages = plaintexts(n, 64);
        let (results, buffers) = batch(&engine, "alias/one", Some(&context), &messages);
        for (i, (result, blob)) in results.iter().zip(&buffers).enumerate() {
            assert_eq!(*result.as_ref().unwrap(), blob_len(64), "item {i}");
            assert_eq!(key_id_of(blob).unwrap().to_string(), key, "item {i}");
            let opened = engine
                .decrypt(
                    &DecryptRequest::new(blob)
                        .with_context(&context)
                        .with_key_id(&key),
                )
                .unwrap();
            assert_eq!(opened.plaintext.expose(), messages[i].as_slice());
            // Under no other key, and not without the batch's context.
            let wrong_key = DecryptRequest::new(blob)
                .with_context(&context)
                .with_key_id(&other);
            assert_eq!(
                engine.decrypt(&wrong_key).unwrap_err().kind(),
                ErrorKind::IncorrectKey
            );
            assert_eq!(
                engine
                    .decrypt(&DecryptRequest::new(blob))
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidCiphertext
            );
        }
    }
}

#[test]
fn items_fail_on_their_own_for_their_plaintext_or_buffer() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let mut messages = plaintexts(4, 32);
    messages[1].clear();
    messages[2] = vec![1u8; 4097];
    let (results, buffers) = batch(&engine, &key, None, &messages);
    assert_eq!(
        kinds(&results),
        [
            None,
            Some(ErrorKind::Validation),
            Some(ErrorKind::Validation),
            None
        ]
    );
    assert!(buffers[1].iter().chain(&buffers[2]).all(|&b| b == 0));
    // A buffer one byte short; an item without a buffer.
    let items: Vec<&[u8]> = vec![b"first", b"second", b"third"];
    let mut short = vec![0u8; blob_len(6) - 1];
    let mut fine = vec![0u8; blob_len(5)];
    let mut outputs: Vec<&mut [u8]> = vec![&mut fine, &mut short];
    let results = engine
        .encrypt_batch_one_key(&key, None, &items, &mut outputs)
        .into_results();
    assert_eq!(
        kinds(&results),
        [
            None,
            Some(ErrorKind::Validation),
            Some(ErrorKind::Validation)
        ]
    );
}

#[test]
fn a_missing_disabled_or_denied_key_refuses_the_whole_batch() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let messages = plaintexts(5, 16);
    let every = |kind| vec![Some(kind); 5];

    let (results, buffers) = batch(&engine, "alias/missing", None, &messages);
    assert_eq!(kinds(&results), every(ErrorKind::NotFound));
    let missing = uuid::Uuid::new_v4().to_string();
    let (results, _) = batch(&engine, &missing, None, &messages);
    assert_eq!(kinds(&results), every(ErrorKind::NotFound));
    assert!(buffers.iter().flatten().all(|&b| b == 0), "nothing written");

    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let (results, buffers) = batch(&eve, &key, None, &messages);
    assert_eq!(kinds(&results), every(ErrorKind::AccessDenied));
    assert!(buffers.iter().flatten().all(|&b| b == 0), "nothing written");

    engine.disable_key(&key).unwrap();
    let (results, buffers) = batch(&engine, &key, None, &messages);
    assert_eq!(kinds(&results), every(ErrorKind::Disabled));
    assert!(buffers.iter().flatten().all(|&b| b == 0), "nothing written");

    // Keys that cannot encrypt symmetric blobs: an HMAC key, an RSA key.
    for (spec, usage) in [
        (
            keyplane::KeySpec::Hmac256,
            keyplane::KeyUsage::GenerateVerifyMac,
        ),
        (
            keyplane::KeySpec::Rsa2048,
            keyplane::KeyUsage::EncryptDecrypt,
        ),
    ] {
        let key = engine
            .create_key(keyplane::CreateKeyRequest {
                key_spec: Some(spec),
                key_usage: Some(usage),
                ..Default::default()
            })
            .unwrap()
            .key_id;
        let (results, _) = batch(&engine, &key, None, &messages);
        assert_eq!(
            kinds(&results),
            every(ErrorKind::InvalidKeyUsage),
            "{spec:?}"
        );
    }
}

#[test]
fn no_authorization_outlives_its_batch() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let messages = plaintexts(3, 16);

    // Disabled between two batches: the second is refused.
    assert!(batch(&engine, &key, None, &messages)
        .0
        .iter()
        .all(Result::is_ok));
    engine.disable_key(&key).unwrap();
    assert!(batch(&engine, &key, None, &messages)
        .0
        .iter()
        .all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Disabled)));
    engine.enable_key(&key).unwrap();

    // Another account's caller, allowed by a grant, then not once it is revoked.
    let grant = engine
        .create_grant(CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: EVE.into(),
            retiring_principal: None,
            operations: vec![GrantOperation::Encrypt],
            constraints: None,
            name: None,
        })
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let key_arn = engine.describe_key(&key).unwrap().arn;
    assert!(batch(&eve, &key_arn, None, &messages)
        .0
        .iter()
        .all(Result::is_ok));
    engine.revoke_grant(&key, &grant.grant_id).unwrap();
    assert!(batch(&eve, &key_arn, None, &messages).0.iter().all(|r| r
        .as_ref()
        .is_err_and(|e| e.kind() == ErrorKind::AccessDenied)));

    // An alias moved between two batches: each batch seals under the key it names then.
    let second = new_key(&engine);
    engine.create_alias("alias/moving", &key).unwrap();
    let (_, first_blobs) = batch(&engine, "alias/moving", None, &messages);
    engine.update_alias("alias/moving", &second).unwrap();
    let (_, second_blobs) = batch(&engine, "alias/moving", None, &messages);
    for (a, b) in first_blobs.iter().zip(&second_blobs) {
        assert_eq!(key_id_of(a).unwrap().to_string(), key);
        assert_eq!(key_id_of(b).unwrap().to_string(), second);
    }
}

#[test]
fn one_audit_record_names_the_key_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let engine = audit_log::audited(Engine::builder(), &log).build().unwrap();
    let key = new_key(&engine);
    let arn = engine.describe_key(&key).unwrap().arn;
    let mut messages = plaintexts(6, 16);
    messages[3].clear();
    batch(&engine, &key, Some(&context()), &messages);
    engine.disable_key(&key).unwrap();
    batch(&engine, &key, None, &messages[..2]);
    drop(engine);

    let records = audit_log::records(&log);
    let batches: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventName"] == "Encrypt")
        .collect();
    assert_eq!(batches.len(), 2, "one record per batch");
    let (sealed, refused) = (batches[0], batches[1]);
    assert_eq!(sealed["requestParameters"]["keyId"], key.as_str());
    assert_eq!(sealed["requestParameters"]["itemCount"], 6);
    assert!(sealed["resources"].to_string().contains(&arn));
    let data = &sealed["additionalEventData"];
    assert_eq!(data["itemCount"], 6);
    assert_eq!(data["errorCounts"]["ValidationException"], 1);
    assert!(sealed.get("errorCode").is_none_or(Value::is_null));
    let keys = data["keys"].as_array().expect("the batch's keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["ARN"], arn.as_str());
    assert_eq!(keys[0]["itemCount"], 5, "the items that reached the key");

    assert_eq!(refused["errorCode"], "DisabledException");
    assert_eq!(refused["additionalEventData"]["itemCount"], 2);
    assert!(refused["resources"].to_string().contains(&arn));
}
