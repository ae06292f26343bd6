//! `Engine::encrypt_into` and `Engine::decrypt_into`, the single calls that write into the
//! caller's buffer (issue 14): what they write opens with (and equals what is written by) the
//! allocating calls, their audit records are the allocating calls' records, a too-short buffer is
//! `OutputTooSmall` with nothing written, and a failed call leaves no plaintext (nor ciphertext)
//! behind: for symmetric keys, RSA keys and keys in an external key store.

#[path = "support/audit_log.rs"]
mod audit_log;
#[path = "support/external_key.rs"]
mod external_key;

use std::sync::Arc;

use external_key::ToyProxy;
use keyplane::ciphertext::{blob_len, max_blob_len};
use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::{
    Caller, DecryptRequest, EncryptRequest, EncryptionAlgorithm, EncryptionContext, Engine,
    ErrorKind, IntoError, KeySpec, KeyUsage,
};
use keyplane_testkit::{new_key, new_key_of};
use serde_json::Value;

const EVE: &str = "arn:aws:iam::444455556666:user/eve";

fn context() -> EncryptionContext {
    let mut context = EncryptionContext::new();
    context.insert("tenant".into(), "42".into());
    context
}

fn symmetric_key(engine: &Engine) -> String {
    new_key(engine)
}

fn kind(error: &IntoError) -> ErrorKind {
    match error {
        IntoError::Failed(e) => e.kind(),
        IntoError::OutputTooSmall { needed } => panic!("too small ({needed}), not a failure"),
    }
}

#[test]
fn what_encrypt_into_writes_decrypts_and_decrypt_into_answers_as_decrypt() {
    let engine = Engine::in_memory().unwrap();
    let key = symmetric_key(&engine);
    let context = context();
    let plaintext = b"sixteen bytes!!!";
    let request = EncryptRequest::new(&key, plaintext).with_context(&context);

    // Exactly blob_len bytes, the rest of a larger buffer untouched.
    let mut out = vec![0xAAu8; blob_len(plaintext.len()) + 7];
    let sealed = engine.encrypt_into(&request, &mut out).unwrap();
    let allocated = engine.encrypt(&request).unwrap();
    assert_eq!(sealed.len, blob_len(plaintext.len()));
    assert_eq!(sealed.key_id, allocated.key_id);
    assert_eq!(sealed.encryption_algorithm, allocated.encryption_algorithm);
    assert!(out[sealed.len..].iter().all(|&b| b == 0xAA));
    let blob = &out[..sealed.len];
    let opened = engine
        .decrypt(&DecryptRequest::new(blob).with_context(&context))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), plaintext);

    // Decrypt into a buffer: the allocating call's answer, field for field.
    let request = DecryptRequest::new(&allocated.ciphertext_blob).with_context(&context);
    let mut plain = [0u8; 16];
    let into = engine.decrypt_into(&request, &mut plain).unwrap();
    let response = engine.decrypt(&request).unwrap();
    assert_eq!(&plain[..into.len], response.plaintext.expose());
    assert_eq!(into.key_id, response.key_id);
    assert_eq!(into.encryption_algorithm, response.encryption_algorithm);
    assert_eq!(into.key_material_id, response.key_material_id);
    // Naming the key, by alias too.
    engine.create_alias("alias/into", &key).unwrap();
    let named = request.with_key_id("alias/into");
    assert_eq!(engine.decrypt_into(&named, &mut plain).unwrap().len, 16);
    let other = symmetric_key(&engine);
    let wrong = request.with_key_id(&other);
    assert_eq!(
        kind(&engine.decrypt_into(&wrong, &mut plain).unwrap_err()),
        ErrorKind::IncorrectKey
    );
}

#[test]
fn a_too_short_buffer_is_output_too_small_with_nothing_written() {
    let engine = Engine::in_memory().unwrap();
    let key = symmetric_key(&engine);
    let plaintext = [7u8; 100];
    let request = EncryptRequest::new(&key, &plaintext);
    let needed = blob_len(plaintext.len());
    let mut out = vec![0xAAu8; needed - 1];
    assert_eq!(
        engine.encrypt_into(&request, &mut out).unwrap_err(),
        IntoError::OutputTooSmall { needed }
    );
    assert!(out.iter().all(|&b| b == 0xAA), "nothing written");

    let blob = engine.encrypt(&request).unwrap().ciphertext_blob;
    let mut plain = vec![0xAAu8; plaintext.len() - 1];
    assert_eq!(
        engine
            .decrypt_into(&DecryptRequest::new(&blob), &mut plain)
            .unwrap_err(),
        IntoError::OutputTooSmall {
            needed: plaintext.len()
        }
    );
    assert!(plain.iter().all(|&b| b == 0xAA), "nothing written");
    // As an engine error, it is a ValidationException.
    let as_error: keyplane::Error = IntoError::OutputTooSmall { needed: 5 }.into();
    assert_eq!(as_error.kind(), ErrorKind::Validation);
}

#[test]
fn refusals_are_the_allocating_calls_and_leave_no_plaintext() {
    let engine = Engine::in_memory().unwrap();
    let key = symmetric_key(&engine);
    let context = context();
    let plaintext = [9u8; 32];
    let blob = engine
        .encrypt(&EncryptRequest::new(&key, &plaintext).with_context(&context))
        .unwrap()
        .ciphertext_blob;
    let mut out = [0xAAu8; 200];

    // Validation, as Encrypt answers it.
    let empty = EncryptRequest::new(&key, &[]);
    assert_eq!(
        kind(&engine.encrypt_into(&empty, &mut out).unwrap_err()),
        engine.encrypt(&empty).unwrap_err().kind()
    );
    // A disabled key: refused, nothing written.
    engine.disable_key(&key).unwrap();
    let request = EncryptRequest::new(&key, &plaintext);
    assert_eq!(
        kind(&engine.encrypt_into(&request, &mut out).unwrap_err()),
        ErrorKind::Disabled
    );
    assert!(out.iter().all(|&b| b == 0xAA));
    let opening = DecryptRequest::new(&blob).with_context(&context);
    assert_eq!(
        kind(&engine.decrypt_into(&opening, &mut out).unwrap_err()),
        ErrorKind::Disabled
    );
    assert!(
        out[32..].iter().all(|&b| b == 0xAA),
        "only the plaintext's room is touched"
    );
    assert!(out[..32].iter().all(|&b| b == 0 || b == 0xAA));
    engine.enable_key(&key).unwrap();

    // A tampered blob and a wrong context: InvalidCiphertext, and the plaintext's room zeroed.
    for (what, blob, context) in [
        ("tampered", tampered(&blob), Some(&context)),
        ("wrong context", blob.clone(), None),
    ] {
        let mut out = [0xAAu8; 32];
        let mut request = DecryptRequest::new(&blob);
        request.encryption_context = context;
        let error = engine.decrypt_into(&request, &mut out).unwrap_err();
        assert_eq!(kind(&error), ErrorKind::InvalidCiphertext, "{what}");
        assert_eq!(out, [0u8; 32], "{what}: no plaintext is left");
    }

    // Another account's caller: AccessDenied, nothing written or left.
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let mut out = [0xAAu8; 200];
    assert_eq!(
        kind(&eve.encrypt_into(&request, &mut out).unwrap_err()),
        ErrorKind::AccessDenied
    );
    assert_eq!(
        kind(&eve.decrypt_into(&opening, &mut out).unwrap_err()),
        ErrorKind::AccessDenied
    );
    assert!(out[..32].iter().all(|&b| b == 0 || b == 0xAA));
    assert!(out[32..].iter().all(|&b| b == 0xAA));

    // A dry run answers DryRunOperation, and takes back what the real call wrote.
    let dry = engine.dry_run();
    let mut out = [0xAAu8; 32];
    assert_eq!(
        kind(&dry.decrypt_into(&opening, &mut out).unwrap_err()),
        ErrorKind::DryRunOperation
    );
    assert_eq!(out, [0u8; 32], "a dry run leaves no plaintext");
    let mut out = vec![0xAAu8; blob_len(32)];
    assert_eq!(
        kind(&dry.encrypt_into(&request, &mut out).unwrap_err()),
        ErrorKind::DryRunOperation
    );
    assert!(out.iter().all(|&b| b == 0), "nor a ciphertext");
}

fn tampered(blob: &[u8]) -> Vec<u8> {
    let mut blob = blob.to_vec();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    blob
}

#[test]
fn rsa_keys_encrypt_and_decrypt_into_buffers_as_the_allocating_calls() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key_of(&engine, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let plaintext = b"a secret for RSA";
    let mut request = EncryptRequest::new(&key, plaintext);
    request.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;

    // The ciphertext is the modulus long; a shorter buffer is too small, nothing written.
    let mut short = [0xAAu8; 255];
    assert_eq!(
        engine.encrypt_into(&request, &mut short).unwrap_err(),
        IntoError::OutputTooSmall { needed: 256 }
    );
    assert!(short.iter().all(|&b| b == 0xAA));
    for room in [256, 512] {
        let mut out = vec![0u8; room];
        let sealed = engine.encrypt_into(&request, &mut out).unwrap();
        assert_eq!(sealed.len, 256);
        assert_eq!(
            sealed.encryption_algorithm,
            EncryptionAlgorithm::RsaesOaepSha256
        );
        let mut opening = DecryptRequest::new(&out[..256]).with_key_id(&key);
        opening.encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha256);
        let response = engine.decrypt(&opening).unwrap();
        assert_eq!(response.plaintext.expose(), plaintext);

        // Decrypt into exactly the plaintext's length: the allocating call's answer.
        let mut plain = [0u8; 16];
        let into = engine.decrypt_into(&opening, &mut plain).unwrap();
        assert_eq!(&plain, plaintext);
        assert_eq!(into.key_id, response.key_id);
        assert_eq!(into.key_material_id, response.key_material_id);
        assert_eq!(
            into.encryption_algorithm,
            EncryptionAlgorithm::RsaesOaepSha256
        );
        let mut short = [0xAAu8; 15];
        assert_eq!(
            engine.decrypt_into(&opening, &mut short).unwrap_err(),
            IntoError::OutputTooSmall { needed: 16 }
        );
        assert!(short.iter().all(|&b| b == 0xAA));
    }
    // A context cannot be bound to an RSA ciphertext: refused as Encrypt refuses it.
    let context = context();
    let with_context = request.with_context(&context);
    let mut out = [0u8; 512];
    assert_eq!(
        kind(&engine.encrypt_into(&with_context, &mut out).unwrap_err()),
        engine.encrypt(&with_context).unwrap_err().kind()
    );
}

// ---- the audit record ---------------------------------------------------------------------------

/// What a record says about its request, without what differs between any two records (ids,
/// times, the chain).
fn about(record: &Value) -> Value {
    let mut record = record.clone();
    let object = record.as_object_mut().unwrap();
    object.retain(|field, _| {
        matches!(
            field.as_str(),
            "eventName"
                | "eventSource"
                | "userIdentity"
                | "requestParameters"
                | "resources"
                | "errorCode"
                | "errorMessage"
                | "readOnly"
                | "recipientAccountId"
                | "awsRegion"
        )
    });
    record
}

#[test]
fn the_audit_record_is_the_allocating_calls() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let engine = audit_log::audited(Engine::builder(), &log).build().unwrap();
    let key = symmetric_key(&engine);
    let context = context();
    let plaintext = [3u8; 48];
    let request = EncryptRequest::new(&key, &plaintext).with_context(&context);
    let blob = engine.encrypt(&request).unwrap().ciphertext_blob;
    let mut out = vec![0u8; blob_len(plaintext.len())];
    engine.encrypt_into(&request, &mut out).unwrap();
    let opening = DecryptRequest::new(&blob).with_context(&context);
    engine.decrypt(&opening).unwrap();
    engine.decrypt_into(&opening, &mut out).unwrap();
    // And refusals: a wrong context.
    let wrong = DecryptRequest::new(&blob);
    engine.decrypt(&wrong).unwrap_err();
    engine.decrypt_into(&wrong, &mut out).unwrap_err();
    drop(engine);

    let records = audit_log::records(&log);
    let data: Vec<&Value> = records
        .iter()
        .filter(|r| matches!(r["eventName"].as_str(), Some("Encrypt" | "Decrypt")))
        .collect();
    assert_eq!(data.len(), 6, "one record per call");
    for pair in data.chunks(2) {
        assert_eq!(about(pair[0]), about(pair[1]));
        assert!(pair[0]["resources"].to_string().contains(&key));
    }
    assert_eq!(data[4]["errorCode"], "InvalidCiphertextException");
}

// ---- a key in an external key store -------------------------------------------------------------

/// An engine whose external key store's proxy wraps the 32-byte secret into 40 bytes, and a key
/// in that store.
fn engine_with_external_key() -> (Engine, String) {
    let engine = Engine::builder()
        .custom_key_store_backend(
            CustomKeyStoreType::ExternalKeyStore,
            Arc::new(ToyProxy {
                padding: 8,
                ..ToyProxy::default()
            }),
        )
        .build()
        .unwrap();
    let key = external_key::external_key(&engine, "toy");
    (engine, key)
}

#[test]
fn a_key_in_an_external_key_store_writes_its_longer_blob_when_it_fits() {
    let (engine, key) = engine_with_external_key();
    let plaintext = [5u8; 64];
    let request = EncryptRequest::new(&key, &plaintext);
    let needed = engine.encrypt(&request).unwrap().ciphertext_blob.len();
    assert!(blob_len(64) < needed && needed < max_blob_len(64));

    // The keyplane blob's length is too short: known once the proxy answered, nothing written.
    let mut out = vec![0xAAu8; blob_len(64)];
    assert_eq!(
        engine.encrypt_into(&request, &mut out).unwrap_err(),
        IntoError::OutputTooSmall { needed }
    );
    assert!(out.iter().all(|&b| b == 0xAA));
    // Exactly the blob's length, and the bound that always suffices.
    for room in [needed, max_blob_len(64)] {
        let mut out = vec![0u8; room];
        let sealed = engine.encrypt_into(&request, &mut out).unwrap();
        assert_eq!(sealed.len, needed);
        let blob = &out[..needed];
        let mut plain = [0xAAu8; 64];
        let opened = engine
            .decrypt_into(&DecryptRequest::new(blob), &mut plain)
            .unwrap();
        assert_eq!((opened.len, plain), (64, plaintext));
        let mut short = [0xAAu8; 63];
        assert_eq!(
            engine
                .decrypt_into(&DecryptRequest::new(blob), &mut short)
                .unwrap_err(),
            IntoError::OutputTooSmall { needed: 64 }
        );
        let mut plain = [0xAAu8; 64];
        let error = engine
            .decrypt_into(&DecryptRequest::new(&tampered(blob)), &mut plain)
            .unwrap_err();
        assert_eq!(kind(&error), ErrorKind::InvalidCiphertext);
        assert_eq!(plain, [0u8; 64]);
    }
}

/// A batch alternating a key in an external key store (whose blob's header is longer: the
/// proxy's wrapping follows it) with a key keyplane holds, under one context and then under
/// two, in runs and one by one: the associated data each item is sealed with is its own header
/// and context, whatever the item before it sealed with, so every blob opens alone and only
/// with its own context.
#[test]
fn a_batch_mixing_header_lengths_and_contexts_seals_each_item_with_its_own() {
    let (engine, external) = engine_with_external_key();
    let held = symmetric_key(&engine);
    let first = context();
    let mut second = EncryptionContext::new();
    second.insert("other".into(), "context".into());
    let messages: Vec<[u8; 64]> = (0..24u8).map(|i| [i; 64]).collect();
    // Items 0-7 alternate the keys under one context; 8-15 alternate both; 16-23 are runs.
    let key_of = |i: usize| {
        if (i < 16 && i % 2 == 0) || (16..20).contains(&i) {
            &external
        } else {
            &held
        }
    };
    let context_of = |i: usize| {
        if ((8..16).contains(&i) && i % 4 < 2) || i >= 22 {
            &second
        } else {
            &first
        }
    };
    let requests: Vec<EncryptRequest<'_>> = (0..24)
        .map(|i| EncryptRequest::new(key_of(i), &messages[i]).with_context(context_of(i)))
        .collect();
    let blobs = engine.encrypt_batch(&requests);
    for (i, blob) in blobs.iter().enumerate() {
        let blob = blob.as_ref().unwrap();
        if key_of(i) == &external {
            assert!(blob.len() > blob_len(64), "item {i}");
        } else {
            assert_eq!(blob.len(), blob_len(64), "item {i}");
        }
        let opened = engine
            .decrypt(&DecryptRequest::new(blob).with_context(context_of(i)))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), &messages[i][..], "item {i}");
        let wrong = if std::ptr::eq(context_of(i), &first) {
            &second
        } else {
            &first
        };
        let refused = engine
            .decrypt(&DecryptRequest::new(blob).with_context(wrong))
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidCiphertext, "item {i}");
    }
}
