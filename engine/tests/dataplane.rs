//! Data plane: Encrypt, Decrypt, ReEncrypt, GenerateDataKey (with and without plaintext) and
//! GenerateRandom, single and batched; tampering, encryption context binding, key states,
//! rotation, and the derived-key wear-out bound.

#[path = "support/outcome.rs"]
mod outcome;
use outcome::code;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use keyplane::ciphertext::{self, OVERHEAD};
use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, EncryptionAlgorithm,
    EncryptionContext, Engine, GenerateDataKeyRequest, ManualClock, Origin, ReEncryptRequest,
    SecretBytes,
};
use keyplane_testkit::ctx;
use keyplane_testkit::new_key;

// ---- helpers ------------------------------------------------------------------------------------

fn arn(engine: &Engine, key: &str) -> String {
    engine.describe_key(key).expect("describe").arn
}

fn seal(engine: &Engine, key: &str, plaintext: &[u8]) -> Vec<u8> {
    engine
        .encrypt(&EncryptRequest::new(key, plaintext))
        .expect("encrypt")
        .ciphertext_blob
}

fn open(engine: &Engine, blob: &[u8]) -> keyplane::Result<Vec<u8>> {
    engine
        .decrypt(&DecryptRequest::new(blob))
        .map(|r| r.plaintext.expose().to_vec())
}

/// A distinct message for item `i`.
fn message(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!("message {i}:").into_bytes();
    m.resize(len.max(m.len()), (i % 251) as u8);
    m
}

/// The material id of the version a key encrypts with now.
fn current_material(engine: &Engine, key: &str) -> String {
    engine
        .describe_key(key)
        .unwrap()
        .current_key_material_id
        .unwrap()
}

// ---- Encrypt and Decrypt ------------------------------------------------------------------------

#[test]
fn encrypt_decrypt_round_trips_at_every_size_boundary() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let key_arn = arn(&engine, &key);
    let material = current_material(&engine, &key);
    for len in [1, 2, 15, 16, 17, 255, 1000, 4095, 4096] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, &plaintext))
            .unwrap();
        assert_eq!(sealed.key_id, key_arn);
        assert_eq!(
            sealed.encryption_algorithm,
            EncryptionAlgorithm::SymmetricDefault
        );
        assert_eq!(sealed.ciphertext_blob.len(), len + OVERHEAD);
        // The plaintext does not appear in the blob.
        if len >= 16 {
            assert!(!sealed
                .ciphertext_blob
                .windows(16)
                .any(|w| w == &plaintext[..16]));
        }
        let parsed = ciphertext::parse(&sealed.ciphertext_blob).unwrap();
        assert_eq!(parsed.key_id.hyphenated().to_string(), key);
        assert_eq!(parsed.key_version, 1);
        assert_eq!(
            ciphertext::key_id_of(&sealed.ciphertext_blob).unwrap(),
            parsed.key_id
        );

        let opened = engine
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), plaintext.as_slice());
        assert_eq!(opened.plaintext.len(), len);
        assert_eq!(opened.key_id, key_arn);
        assert_eq!(
            opened.encryption_algorithm,
            EncryptionAlgorithm::SymmetricDefault
        );
        assert_eq!(opened.key_material_id, material);
    }
}

#[test]
fn encrypting_the_same_plaintext_twice_gives_different_blobs() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let a = seal(&engine, &key, b"same");
    let b = seal(&engine, &key, b"same");
    assert_ne!(a, b);
    assert_eq!(open(&engine, &a).unwrap(), b"same");
    assert_eq!(open(&engine, &b).unwrap(), b"same");
}

#[test]
fn plaintext_must_be_1_to_4096_bytes() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new(&key, b""))),
        "ValidationException"
    );
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new(&key, &[0u8; 4097]))),
        "ValidationException"
    );
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new(&key, &vec![1u8; 100_000]))),
        "ValidationException"
    );
    assert!(engine
        .encrypt(&EncryptRequest::new(&key, &[0u8; 4096]))
        .is_ok());
    assert_eq!(
        engine.config().max_plaintext_bytes,
        4096,
        "the service's limit is the default"
    );
}

#[test]
fn non_symmetric_algorithms_are_refused() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let blob = seal(&engine, &key, b"x");
    for algorithm in [
        EncryptionAlgorithm::RsaesOaepSha1,
        EncryptionAlgorithm::RsaesOaepSha256,
        EncryptionAlgorithm::Sm2Pke,
    ] {
        let mut request = EncryptRequest::new(&key, b"x");
        request.encryption_algorithm = algorithm;
        assert_eq!(code(engine.encrypt(&request)), "InvalidKeyUsageException");
        let mut request = DecryptRequest::new(&blob);
        request.encryption_algorithm = Some(algorithm);
        assert_eq!(code(engine.decrypt(&request)), "InvalidKeyUsageException");
    }
    let mut request = DecryptRequest::new(&blob);
    request.encryption_algorithm = Some(EncryptionAlgorithm::SymmetricDefault);
    assert_eq!(engine.decrypt(&request).unwrap().plaintext.expose(), b"x");
}

#[test]
fn decrypt_with_a_key_id_checks_that_it_is_the_encrypting_key() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let other = new_key(&engine);
    engine.create_alias("alias/mine", &key).unwrap();
    engine.create_alias("alias/theirs", &other).unwrap();
    let blob = seal(&engine, &key, b"who made me");

    for given in [
        key.clone(),
        arn(&engine, &key),
        "alias/mine".to_owned(),
        "arn:aws:kms:us-east-1:111122223333:alias/mine".to_owned(),
    ] {
        let opened = engine
            .decrypt(&DecryptRequest::new(&blob).with_key_id(&given))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), b"who made me", "{given}");
    }
    for given in [
        other.clone(),
        arn(&engine, &other),
        "alias/theirs".to_owned(),
    ] {
        assert_eq!(
            code(engine.decrypt(&DecryptRequest::new(&blob).with_key_id(&given))),
            "IncorrectKeyException",
            "{given}"
        );
    }
    // A named key that does not exist.
    assert_eq!(
        code(engine.decrypt(&DecryptRequest::new(&blob).with_key_id("alias/nobody"))),
        "NotFoundException"
    );
}

#[test]
fn encryption_context_must_match_exactly() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let context = ctx(&[("tenant", "acme"), ("purpose", "billing")]);
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"bound").with_context(&context))
        .unwrap()
        .ciphertext_blob;

    // The same context, built in another order, decrypts.
    let same = ctx(&[("purpose", "billing"), ("tenant", "acme")]);
    let opened = engine
        .decrypt(&DecryptRequest::new(&sealed).with_context(&same))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), b"bound");

    let wrong = [
        (
            "a key differs",
            ctx(&[("tenant", "acme"), ("purpose2", "billing")]),
        ),
        (
            "a value differs",
            ctx(&[("tenant", "acme"), ("purpose", "billinG")]),
        ),
        (
            "key case differs",
            ctx(&[("Tenant", "acme"), ("purpose", "billing")]),
        ),
        (
            "value case differs",
            ctx(&[("tenant", "ACME"), ("purpose", "billing")]),
        ),
        (
            "one pair more",
            ctx(&[("tenant", "acme"), ("purpose", "billing"), ("x", "y")]),
        ),
        ("one pair less", ctx(&[("tenant", "acme")])),
        ("empty", ctx(&[])),
        (
            "key and value swapped",
            ctx(&[("acme", "tenant"), ("purpose", "billing")]),
        ),
        (
            "bytes moved between key and value",
            ctx(&[("tenan", "tacme"), ("purpose", "billing")]),
        ),
    ];
    for (why, context) in &wrong {
        assert_eq!(
            code(engine.decrypt(&DecryptRequest::new(&sealed).with_context(context))),
            "InvalidCiphertextException",
            "{why}"
        );
    }
    // Context at encrypt, none at decrypt.
    assert_eq!(
        code(engine.decrypt(&DecryptRequest::new(&sealed))),
        "InvalidCiphertextException"
    );
    // No context at encrypt, one at decrypt.
    let plain = seal(&engine, &key, b"unbound");
    assert_eq!(
        code(engine.decrypt(&DecryptRequest::new(&plain).with_context(&context))),
        "InvalidCiphertextException"
    );
    // No context and an empty one are the same (as in the service).
    let empty = ctx(&[]);
    assert_eq!(
        engine
            .decrypt(&DecryptRequest::new(&plain).with_context(&empty))
            .unwrap()
            .plaintext
            .expose(),
        b"unbound"
    );
    // Nothing above damaged the blob.
    assert_eq!(
        engine
            .decrypt(&DecryptRequest::new(&sealed).with_context(&context))
            .unwrap()
            .plaintext
            .expose(),
        b"bound"
    );
}

#[test]
fn context_mismatches_are_caught_item_by_item_in_a_batch() {
    // A batch sees many contexts; each item must be checked against its own.
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let contexts: Vec<EncryptionContext> = (0..200)
        .map(|i| ctx(&[("item", &i.to_string()), ("batch", "b")]))
        .collect();
    let messages: Vec<Vec<u8>> = (0..200).map(|i| message(i, 20)).collect();
    let requests: Vec<EncryptRequest<'_>> = messages
        .iter()
        .zip(&contexts)
        .map(|(m, c)| EncryptRequest::new(&key, m).with_context(c))
        .collect();
    let blobs: Vec<Vec<u8>> = engine
        .encrypt_batch(&requests)
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    // Even items get their own context, odd ones their neighbour's.
    let decrypts: Vec<DecryptRequest<'_>> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let c = if i % 2 == 0 {
                &contexts[i]
            } else {
                &contexts[i - 1]
            };
            DecryptRequest::new(b).with_context(c)
        })
        .collect();
    for (i, result) in engine.decrypt_batch(&decrypts).into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(result.unwrap().expose(), messages[i].as_slice(), "item {i}");
        } else {
            assert_eq!(code(result), "InvalidCiphertextException", "item {i}");
        }
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    // Three versions, so that flipping either low bit of the version (3) names a version that
    // exists (2 or 1).
    engine.rotate_key_on_demand(&key).unwrap();
    engine.rotate_key_on_demand(&key).unwrap();
    let context = ctx(&[("k", "v")]);
    let blob = engine
        .encrypt(&EncryptRequest::new(&key, b"sixteen byte msg").with_context(&context))
        .unwrap()
        .ciphertext_blob;
    assert_eq!(ciphertext::parse(&blob).unwrap().key_version, 3);
    let mut flipped = Vec::with_capacity(blob.len() * 8);
    for byte in 0..blob.len() {
        for bit in 0..8 {
            let mut b = blob.clone();
            b[byte] ^= 1 << bit;
            flipped.push(b);
        }
    }
    assert_eq!(flipped.len(), (16 + OVERHEAD) * 8);
    for (i, b) in flipped.iter().enumerate() {
        let result = engine.decrypt(&DecryptRequest::new(b).with_context(&context));
        assert_eq!(
            code(result),
            "InvalidCiphertextException",
            "bit {} of byte {}",
            i % 8,
            i / 8
        );
    }
    // The same through the batch path (large enough for the worker pool).
    let requests: Vec<DecryptRequest<'_>> = flipped
        .iter()
        .map(|b| DecryptRequest::new(b).with_context(&context))
        .collect();
    for (i, result) in engine.decrypt_batch(&requests).into_iter().enumerate() {
        assert_eq!(
            code(result),
            "InvalidCiphertextException",
            "batch: bit {} of byte {}",
            i % 8,
            i / 8
        );
    }
    // The original still decrypts.
    assert_eq!(
        engine
            .decrypt(&DecryptRequest::new(&blob).with_context(&context))
            .unwrap()
            .plaintext
            .expose(),
        b"sixteen byte msg"
    );
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let blob = seal(&engine, &key, b"a message of some length");
    for len in 0..blob.len() {
        // Nothing at all breaks the model's length constraint (ValidationException, as the
        // service answers); any other truncation is an invalid ciphertext.
        let expected = if len == 0 {
            "ValidationException"
        } else {
            "InvalidCiphertextException"
        };
        assert_eq!(
            code(open(&engine, &blob[..len])),
            expected,
            "truncated to {len}"
        );
    }
    for extra in 1..=16usize {
        for fill in [0u8, 0xff] {
            let mut b = blob.clone();
            b.extend(std::iter::repeat_n(fill, extra));
            assert_eq!(
                code(open(&engine, &b)),
                "InvalidCiphertextException",
                "extended by {extra} bytes of {fill:#x}"
            );
        }
        // Bytes moved from the body into a longer tag position also fail.
        let mut b = blob.clone();
        b.extend_from_slice(&blob[blob.len() - extra..]);
        assert_eq!(code(open(&engine, &b)), "InvalidCiphertextException");
    }
    // Far too long: over the model's 6144 bytes, ValidationException as the service answers.
    let mut huge = blob.clone();
    huge.resize(10_000, 0);
    assert_eq!(code(open(&engine, &huge)), "ValidationException");
    assert_eq!(open(&engine, &blob).unwrap(), b"a message of some length");
}

#[test]
fn a_blob_from_another_engine_or_a_forged_header_is_invalid() {
    let engine = Engine::in_memory().unwrap();
    let other_engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let other = new_key(&other_engine);
    let foreign = seal(&other_engine, &other, b"elsewhere");
    assert_eq!(code(open(&engine, &foreign)), "InvalidCiphertextException");

    // A blob whose key id is rewritten to a key that does exist here still fails.
    let mine = seal(&engine, &key, b"mine");
    let mut forged = foreign.clone();
    forged[2..18].copy_from_slice(&mine[2..18]);
    assert_eq!(code(open(&engine, &forged)), "InvalidCiphertextException");
    // A version that does not exist.
    let mut future = mine.clone();
    future[18..22].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(code(open(&engine, &future)), "InvalidCiphertextException");
}

// ---- key states ---------------------------------------------------------------------------------

#[test]
fn data_plane_calls_on_keys_that_are_not_enabled() {
    let engine = Engine::in_memory().unwrap();
    let good = new_key(&engine);
    let disabled = new_key(&engine);
    let pending_deletion = new_key(&engine);
    let pending_import = engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let disabled_blob = seal(&engine, &disabled, b"d");
    let deletion_blob = seal(&engine, &pending_deletion, b"p");
    let good_blob = seal(&engine, &good, b"g");
    engine.disable_key(&disabled).unwrap();
    engine
        .schedule_key_deletion(&pending_deletion, None)
        .unwrap();

    let cases = [
        (&disabled, Some(&disabled_blob), "DisabledException"),
        (
            &pending_deletion,
            Some(&deletion_blob),
            "KMSInvalidStateException",
        ),
        (&pending_import, None, "KMSInvalidStateException"),
    ];
    for (key, blob, expected) in cases {
        let spec = GenerateDataKeyRequest::new(key, DataKeySpec::Aes256);
        assert_eq!(
            code(engine.encrypt(&EncryptRequest::new(key, b"x"))),
            expected
        );
        assert_eq!(code(engine.generate_data_key(&spec)), expected);
        assert_eq!(
            code(engine.generate_data_key_without_plaintext(&spec)),
            expected
        );
        assert_eq!(
            code(
                engine
                    .encrypt_batch(&[EncryptRequest::new(key, b"x")])
                    .remove(0)
            ),
            expected
        );
        assert_eq!(
            code(engine.generate_data_key_batch(&[spec]).remove(0)),
            expected
        );
        assert_eq!(
            code(
                engine
                    .generate_data_key_without_plaintext_batch(&[spec])
                    .remove(0)
            ),
            expected
        );
        // As the destination of ReEncrypt.
        assert_eq!(
            code(engine.re_encrypt(&ReEncryptRequest::new(&good_blob, key))),
            expected
        );
        if let Some(blob) = blob {
            assert_eq!(code(open(&engine, blob)), expected);
            assert_eq!(
                code(engine.decrypt_batch(&[DecryptRequest::new(blob)]).remove(0)),
                expected
            );
            // As the source of ReEncrypt.
            assert_eq!(
                code(engine.re_encrypt(&ReEncryptRequest::new(blob, &good))),
                expected
            );
            assert_eq!(
                code(
                    engine
                        .re_encrypt_batch(&[ReEncryptRequest::new(blob, &good)])
                        .remove(0)
                ),
                expected
            );
        }
    }
    // After re-enabling and cancelling, the old ciphertexts work again.
    engine.enable_key(&disabled).unwrap();
    engine.cancel_key_deletion(&pending_deletion).unwrap();
    engine.enable_key(&pending_deletion).unwrap();
    assert_eq!(open(&engine, &disabled_blob).unwrap(), b"d");
    assert_eq!(open(&engine, &deletion_blob).unwrap(), b"p");
}

#[test]
fn unknown_keys_are_not_found() {
    let engine = Engine::in_memory().unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new(&unknown, b"x"))),
        "NotFoundException"
    );
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new("alias/none", b"x"))),
        "NotFoundException"
    );
    assert_eq!(
        code(engine.generate_data_key(&GenerateDataKeyRequest::new(&unknown, DataKeySpec::Aes128))),
        "NotFoundException"
    );
}

// ---- rotation -----------------------------------------------------------------------------------

#[test]
fn ciphertexts_from_before_each_rotation_still_decrypt() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let mut materials = vec![current_material(&engine, &key)];
    let mut blobs = Vec::new();
    for round in 0..3u32 {
        let plaintext = format!("before rotation {}", round + 1);
        let blob = seal(&engine, &key, plaintext.as_bytes());
        assert_eq!(ciphertext::parse(&blob).unwrap().key_version, round + 1);
        blobs.push((blob, plaintext));
        engine.rotate_key_on_demand(&key).unwrap();
        materials.push(current_material(&engine, &key));
    }
    let newest = seal(&engine, &key, b"after all rotations");
    assert_eq!(ciphertext::parse(&newest).unwrap().key_version, 4);
    let opened = engine.decrypt(&DecryptRequest::new(&newest)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"after all rotations");
    assert_eq!(opened.key_material_id, materials[3]);
    for (version, (blob, plaintext)) in blobs.iter().enumerate() {
        let opened = engine.decrypt(&DecryptRequest::new(blob)).unwrap();
        assert_eq!(opened.plaintext.expose(), plaintext.as_bytes());
        assert_eq!(opened.key_material_id, materials[version]);
    }
    // A batch decrypts old and new together.
    let requests: Vec<DecryptRequest<'_>> = blobs
        .iter()
        .map(|(b, _)| DecryptRequest::new(b))
        .chain([DecryptRequest::new(&newest)])
        .collect();
    let results = engine.decrypt_batch(&requests);
    assert_eq!(results.len(), 4);
    for (result, (_, plaintext)) in results.iter().zip(&blobs) {
        assert_eq!(result.as_ref().unwrap().expose(), plaintext.as_bytes());
    }
    // A ciphertext of version 2 with its version field set to 3 does not decrypt.
    let mut relabelled = blobs[1].0.clone();
    relabelled[18..22].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        code(open(&engine, &relabelled)),
        "InvalidCiphertextException"
    );
}

#[test]
fn automatic_rotation_makes_new_ciphertexts_use_the_new_version() {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder().clock(clock.clone()).build().unwrap();
    let key = new_key(&engine);
    let old = seal(&engine, &key, b"old");
    engine.enable_key_rotation(&key, Some(90)).unwrap();
    clock.advance_days(90);
    engine.run_due_tasks().unwrap();
    let new = seal(&engine, &key, b"new");
    assert_eq!(ciphertext::parse(&old).unwrap().key_version, 1);
    assert_eq!(ciphertext::parse(&new).unwrap().key_version, 2);
    assert_eq!(open(&engine, &old).unwrap(), b"old");
    assert_eq!(open(&engine, &new).unwrap(), b"new");
}

// ---- batches ------------------------------------------------------------------------------------

/// What each item of a mixed batch is.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Good,
    UnknownKey,
    DisabledKey,
    EmptyPlaintext,
    TooLong,
}

fn mixed_encrypt_batch(size: usize) {
    let engine = Engine::in_memory().unwrap();
    let good = new_key(&engine);
    let alias_target = new_key(&engine);
    engine.create_alias("alias/batch", &alias_target).unwrap();
    let disabled = new_key(&engine);
    engine.disable_key(&disabled).unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    let kinds = [
        Kind::Good,
        Kind::UnknownKey,
        Kind::Good,
        Kind::DisabledKey,
        Kind::EmptyPlaintext,
        Kind::Good,
        Kind::TooLong,
    ];
    let messages: Vec<Vec<u8>> = (0..size).map(|i| message(i, 1 + i % 300)).collect();
    let too_long = vec![0u8; 4097];
    let items: Vec<(Kind, &str, &[u8])> = (0..size)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            let key = match (kind, i % 3) {
                (Kind::UnknownKey, _) => unknown.as_str(),
                (Kind::DisabledKey, _) => disabled.as_str(),
                (_, 0) => "alias/batch",
                _ => good.as_str(),
            };
            let plaintext: &[u8] = match kind {
                Kind::EmptyPlaintext => b"",
                Kind::TooLong => &too_long,
                _ => &messages[i],
            };
            (kind, key, plaintext)
        })
        .collect();
    let requests: Vec<EncryptRequest<'_>> = items
        .iter()
        .map(|(_, key, pt)| EncryptRequest::new(key, pt))
        .collect();
    let results = engine.encrypt_batch(&requests);
    assert_eq!(results.len(), size);
    let mut good_blobs = Vec::new();
    for (i, (result, (kind, key, _))) in results.into_iter().zip(&items).enumerate() {
        match kind {
            Kind::Good => {
                let blob = result.unwrap_or_else(|e| panic!("item {i}: {e}"));
                let expected_key = if *key == "alias/batch" {
                    &alias_target
                } else {
                    &good
                };
                assert_eq!(
                    ciphertext::key_id_of(&blob).unwrap().to_string(),
                    *expected_key,
                    "item {i}"
                );
                good_blobs.push((i, blob));
            }
            Kind::UnknownKey => assert_eq!(code(result), "NotFoundException", "item {i}"),
            Kind::DisabledKey => assert_eq!(code(result), "DisabledException", "item {i}"),
            Kind::EmptyPlaintext | Kind::TooLong => {
                assert_eq!(code(result), "ValidationException", "item {i}")
            }
        }
    }
    // Decrypt them all back in one batch, in order.
    let requests: Vec<DecryptRequest<'_>> = good_blobs
        .iter()
        .map(|(_, b)| DecryptRequest::new(b))
        .collect();
    for ((i, _), result) in good_blobs.iter().zip(engine.decrypt_batch(&requests)) {
        assert_eq!(
            result.unwrap().expose(),
            messages[*i].as_slice(),
            "item {i}"
        );
    }
}

#[test]
fn mixed_encrypt_batch_small() {
    mixed_encrypt_batch(21);
}

#[test]
fn mixed_encrypt_batch_on_the_worker_pool() {
    mixed_encrypt_batch(1400);
}

#[derive(Clone, Copy, Debug)]
enum DecryptKind {
    Good,
    Tampered,
    DisabledKey,
    WrongContext,
    WrongKeyId,
    Garbage,
}

fn mixed_decrypt_batch(size: usize) {
    let engine = Engine::in_memory().unwrap();
    let good = new_key(&engine);
    let other = new_key(&engine);
    let disabled = new_key(&engine);
    let context = ctx(&[("purpose", "batch")]);
    let wrong_context = ctx(&[("purpose", "other")]);
    let kinds = [
        DecryptKind::Good,
        DecryptKind::Tampered,
        DecryptKind::Good,
        DecryptKind::DisabledKey,
        DecryptKind::WrongContext,
        DecryptKind::Good,
        DecryptKind::WrongKeyId,
        DecryptKind::Garbage,
    ];
    let messages: Vec<Vec<u8>> = (0..size).map(|i| message(i, 10 + i % 50)).collect();
    let encrypts: Vec<EncryptRequest<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let key = match kinds[i % kinds.len()] {
                DecryptKind::DisabledKey => &disabled,
                _ => &good,
            };
            EncryptRequest::new(key, m).with_context(&context)
        })
        .collect();
    let mut blobs: Vec<Vec<u8>> = engine
        .encrypt_batch(&encrypts)
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    engine.disable_key(&disabled).unwrap();
    for (i, blob) in blobs.iter_mut().enumerate() {
        match kinds[i % kinds.len()] {
            DecryptKind::Tampered => {
                let at = i % blob.len();
                blob[at] ^= 0x10;
            }
            DecryptKind::Garbage => blob.truncate(i % OVERHEAD),
            _ => {}
        }
    }
    let requests: Vec<DecryptRequest<'_>> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| match kinds[i % kinds.len()] {
            DecryptKind::WrongContext => DecryptRequest::new(b).with_context(&wrong_context),
            DecryptKind::WrongKeyId => DecryptRequest::new(b)
                .with_context(&context)
                .with_key_id(&other),
            DecryptKind::Good if i % 2 == 0 => DecryptRequest::new(b)
                .with_context(&context)
                .with_key_id(&good),
            _ => DecryptRequest::new(b).with_context(&context),
        })
        .collect();
    let results = engine.decrypt_batch(&requests);
    assert_eq!(results.len(), size);
    for (i, result) in results.into_iter().enumerate() {
        let kind = kinds[i % kinds.len()];
        match kind {
            DecryptKind::Good => assert_eq!(
                result.unwrap_or_else(|e| panic!("item {i}: {e}")).expose(),
                messages[i].as_slice()
            ),
            DecryptKind::Tampered | DecryptKind::WrongContext | DecryptKind::Garbage => {
                assert_eq!(
                    code(result),
                    "InvalidCiphertextException",
                    "item {i} {kind:?}"
                )
            }
            DecryptKind::DisabledKey => assert_eq!(code(result), "DisabledException", "item {i}"),
            DecryptKind::WrongKeyId => {
                assert_eq!(code(result), "IncorrectKeyException", "item {i}")
            }
        }
    }
}

#[test]
fn mixed_decrypt_batch_small() {
    mixed_decrypt_batch(30);
}

#[test]
fn mixed_decrypt_batch_on_the_worker_pool() {
    mixed_decrypt_batch(1600);
}

#[test]
fn empty_batches_give_empty_results() {
    let engine = Engine::in_memory().unwrap();
    assert!(engine.encrypt_batch(&[]).is_empty());
    assert!(engine.decrypt_batch(&[]).is_empty());
    assert!(engine.re_encrypt_batch(&[]).is_empty());
    assert!(engine.generate_data_key_batch(&[]).is_empty());
    assert!(engine
        .generate_data_key_without_plaintext_batch(&[])
        .is_empty());
}

#[test]
fn batch_of_many_keys_and_contexts_on_the_worker_pool() {
    let engine = Engine::builder().worker_threads(4).build().unwrap();
    assert_eq!(engine.worker_threads(), 4);
    let keys: Vec<String> = (0..7).map(|_| new_key(&engine)).collect();
    let contexts: Vec<EncryptionContext> = (0..5).map(|i| ctx(&[("c", &i.to_string())])).collect();
    let n = 2000;
    let messages: Vec<Vec<u8>> = (0..n).map(|i| message(i, 64)).collect();
    // Runs of the same key and context, and alternations, so chunks see both.
    let key_of = |i: usize| &keys[if i < n / 2 { i / 100 % 7 } else { i % 7 }];
    let ctx_of = |i: usize| &contexts[if i < n / 2 { i / 50 % 5 } else { i % 5 }];
    let requests: Vec<EncryptRequest<'_>> = (0..n)
        .map(|i| EncryptRequest::new(key_of(i), &messages[i]).with_context(ctx_of(i)))
        .collect();
    let blobs: Vec<Vec<u8>> = engine
        .encrypt_batch(&requests)
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    for (i, blob) in blobs.iter().enumerate() {
        assert_eq!(ciphertext::key_id_of(blob).unwrap().to_string(), *key_of(i));
    }
    let decrypts: Vec<DecryptRequest<'_>> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| DecryptRequest::new(b).with_context(ctx_of(i)))
        .collect();
    for (i, result) in engine.decrypt_batch(&decrypts).into_iter().enumerate() {
        assert_eq!(result.unwrap().expose(), messages[i].as_slice(), "item {i}");
    }
}

// ---- ReEncrypt ----------------------------------------------------------------------------------

#[test]
fn re_encrypt_to_another_key_and_context() {
    let engine = Engine::in_memory().unwrap();
    let source = new_key(&engine);
    let destination = new_key(&engine);
    let source_context = ctx(&[("stage", "one")]);
    let destination_context = ctx(&[("stage", "two")]);
    let blob = engine
        .encrypt(&EncryptRequest::new(&source, b"moving").with_context(&source_context))
        .unwrap()
        .ciphertext_blob;

    let request = ReEncryptRequest {
        source_encryption_context: Some(&source_context),
        destination_encryption_context: Some(&destination_context),
        ..ReEncryptRequest::new(&blob, &destination)
    };
    let moved = engine.re_encrypt(&request).unwrap();
    assert_eq!(moved.source_key_id, arn(&engine, &source));
    assert_eq!(moved.key_id, arn(&engine, &destination));
    assert_eq!(
        moved.source_key_material_id,
        engine
            .describe_key(&source)
            .unwrap()
            .current_key_material_id
            .unwrap()
    );
    assert_eq!(
        moved.destination_key_material_id,
        engine
            .describe_key(&destination)
            .unwrap()
            .current_key_material_id
            .unwrap()
    );
    assert_eq!(
        ciphertext::key_id_of(&moved.ciphertext_blob)
            .unwrap()
            .to_string(),
        destination
    );
    let opened = engine
        .decrypt(&DecryptRequest::new(&moved.ciphertext_blob).with_context(&destination_context))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), b"moving");
    assert_eq!(opened.key_id, arn(&engine, &destination));
    // The new blob is bound to the new context only.
    assert_eq!(
        code(
            engine.decrypt(
                &DecryptRequest::new(&moved.ciphertext_blob).with_context(&source_context)
            )
        ),
        "InvalidCiphertextException"
    );

    // Same key, new context.
    let recontexted = engine
        .re_encrypt(&ReEncryptRequest {
            source_encryption_context: Some(&source_context),
            destination_encryption_context: Some(&destination_context),
            ..ReEncryptRequest::new(&blob, &source)
        })
        .unwrap();
    assert_eq!(
        engine
            .decrypt(
                &DecryptRequest::new(&recontexted.ciphertext_blob)
                    .with_context(&destination_context)
            )
            .unwrap()
            .plaintext
            .expose(),
        b"moving"
    );

    // A wrong or missing source context is an invalid ciphertext.
    let wrong = ctx(&[("stage", "One")]);
    for source_encryption_context in [Some(&wrong), None] {
        assert_eq!(
            code(engine.re_encrypt(&ReEncryptRequest {
                source_encryption_context,
                ..ReEncryptRequest::new(&blob, &destination)
            })),
            "InvalidCiphertextException"
        );
    }
    // A source key id that is not the encrypting key.
    assert_eq!(
        code(engine.re_encrypt(&ReEncryptRequest {
            source_key_id: Some(&destination),
            source_encryption_context: Some(&source_context),
            ..ReEncryptRequest::new(&blob, &destination)
        })),
        "IncorrectKeyException"
    );
    // A tampered blob.
    let mut tampered = blob.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        code(engine.re_encrypt(&ReEncryptRequest {
            source_encryption_context: Some(&source_context),
            ..ReEncryptRequest::new(&tampered, &destination)
        })),
        "InvalidCiphertextException"
    );
    // An unknown destination.
    assert_eq!(
        code(engine.re_encrypt(&ReEncryptRequest {
            source_encryption_context: Some(&source_context),
            ..ReEncryptRequest::new(&blob, "alias/nowhere")
        })),
        "NotFoundException"
    );
}

#[test]
fn over_long_blobs_are_invalid_ciphertexts_for_every_operation() {
    // A blob with a real header whose body is longer than any plaintext this engine encrypts
    // (4096 bytes) must be refused as an invalid ciphertext, never crash the call or its batch.
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let good = seal(&engine, &key, b"well formed");
    let mut long = good.clone();
    long.resize(OVERHEAD + 5000, 0x42);
    assert_eq!(code(open(&engine, &long)), "InvalidCiphertextException");
    assert_eq!(
        code(
            engine
                .decrypt_batch(&[DecryptRequest::new(&long)])
                .remove(0)
        ),
        "InvalidCiphertextException"
    );
    let single = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.re_encrypt(&ReEncryptRequest::new(&long, &key))
    }));
    match single {
        Ok(result) => assert_eq!(code(result), "InvalidCiphertextException"),
        Err(_) => panic!("ReEncrypt of a {}-byte blob panicked", long.len()),
    }
    let requests = [
        ReEncryptRequest::new(&good, &key),
        ReEncryptRequest::new(&long, &key),
        ReEncryptRequest::new(&good, &key),
    ];
    let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.re_encrypt_batch(&requests)
    }))
    .unwrap_or_else(|_| panic!("a ReEncrypt batch with one over-long blob panicked"));
    let mut batch = batch.into_iter();
    assert_eq!(
        open(&engine, &batch.next().unwrap().unwrap()).unwrap(),
        b"well formed"
    );
    assert_eq!(code(batch.next().unwrap()), "InvalidCiphertextException");
    assert_eq!(
        open(&engine, &batch.next().unwrap().unwrap()).unwrap(),
        b"well formed"
    );
}

#[test]
fn re_encrypt_batch_on_the_worker_pool() {
    let engine = Engine::in_memory().unwrap();
    let source = new_key(&engine);
    let destination = new_key(&engine);
    let messages: Vec<Vec<u8>> = (0..1000).map(|i| message(i, 40)).collect();
    let blobs: Vec<Vec<u8>> = engine
        .encrypt_batch(
            &messages
                .iter()
                .map(|m| EncryptRequest::new(&source, m))
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    let mut inputs = blobs.clone();
    for blob in inputs.iter_mut().skip(3).step_by(10) {
        blob[70] ^= 4;
    }
    let requests: Vec<ReEncryptRequest<'_>> = inputs
        .iter()
        .map(|b| ReEncryptRequest::new(b, &destination))
        .collect();
    let results = engine.re_encrypt_batch(&requests);
    assert_eq!(results.len(), 1000);
    for (i, result) in results.into_iter().enumerate() {
        if i % 10 == 3 {
            assert_eq!(code(result), "InvalidCiphertextException", "item {i}");
        } else {
            let blob = result.unwrap();
            assert_eq!(
                ciphertext::key_id_of(&blob).unwrap().to_string(),
                destination
            );
            assert_eq!(open(&engine, &blob).unwrap(), messages[i], "item {i}");
        }
    }
}

// ---- GenerateDataKey ----------------------------------------------------------------------------

#[test]
fn generate_data_key_by_spec_or_number_of_bytes() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let key_arn = arn(&engine, &key);
    let material = current_material(&engine, &key);
    let context = ctx(&[("file", "report.pdf")]);
    let mut seen = HashSet::new();
    for (spec, bytes, len) in [
        (Some(DataKeySpec::Aes128), None, 16),
        (Some(DataKeySpec::Aes256), None, 32),
        (None, Some(1), 1),
        (None, Some(64), 64),
        (None, Some(1024), 1024),
    ] {
        let request = GenerateDataKeyRequest {
            key_id: &key,
            encryption_context: Some(&context),
            key_spec: spec,
            number_of_bytes: bytes,
        };
        let generated = engine.generate_data_key(&request).unwrap();
        assert_eq!(generated.plaintext.len(), len);
        assert_eq!(generated.ciphertext_blob.len(), len + OVERHEAD);
        assert_eq!(generated.key_id, key_arn);
        assert_eq!(generated.key_material_id, material);
        if len >= 16 {
            assert!(seen.insert(generated.plaintext.expose().to_vec()));
            assert!(generated.plaintext.expose().iter().any(|&b| b != 0));
        }
        let opened = engine
            .decrypt(&DecryptRequest::new(&generated.ciphertext_blob).with_context(&context))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), generated.plaintext.expose());
        // The data key is bound to the context.
        assert_eq!(
            code(engine.decrypt(&DecryptRequest::new(&generated.ciphertext_blob))),
            "InvalidCiphertextException"
        );

        let without = engine
            .generate_data_key_without_plaintext(&request)
            .unwrap();
        assert_eq!(without.ciphertext_blob.len(), len + OVERHEAD);
        assert_eq!(without.key_id, key_arn);
        assert_eq!(without.key_material_id, material);
        let opened = engine
            .decrypt(&DecryptRequest::new(&without.ciphertext_blob).with_context(&context))
            .unwrap();
        assert_eq!(opened.plaintext.len(), len);
        if len >= 16 {
            assert!(seen.insert(opened.plaintext.expose().to_vec()));
        }
    }
}

#[test]
fn generate_data_key_needs_exactly_one_valid_size() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let cases = [
        (Some(DataKeySpec::Aes256), Some(32)),
        (None, None),
        (None, Some(0)),
        (None, Some(1025)),
        (None, Some(usize::MAX)),
    ];
    for (key_spec, number_of_bytes) in cases {
        let request = GenerateDataKeyRequest {
            key_id: &key,
            encryption_context: None,
            key_spec,
            number_of_bytes,
        };
        assert_eq!(
            code(engine.generate_data_key(&request)),
            "ValidationException",
            "{key_spec:?} {number_of_bytes:?}"
        );
        assert_eq!(
            code(engine.generate_data_key_without_plaintext(&request)),
            "ValidationException"
        );
        assert_eq!(
            code(engine.generate_data_key_batch(&[request]).remove(0)),
            "ValidationException"
        );
        assert_eq!(
            code(
                engine
                    .generate_data_key_without_plaintext_batch(&[request])
                    .remove(0)
            ),
            "ValidationException"
        );
    }
}

#[test]
fn generate_data_key_batches_give_distinct_keys_that_decrypt() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let disabled = new_key(&engine);
    engine.disable_key(&disabled).unwrap();
    let context = ctx(&[("batch", "dk")]);
    let n = 1200;
    let requests: Vec<GenerateDataKeyRequest<'_>> = (0..n)
        .map(|i| {
            let mut r =
                GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256).with_context(&context);
            if i % 7 == 0 {
                r.key_spec = None;
                r.number_of_bytes = Some(1 + i % 1024);
            }
            if i % 97 == 5 {
                r.key_id = &disabled;
            }
            r
        })
        .collect();
    let results = engine.generate_data_key_batch(&requests);
    assert_eq!(results.len(), n);
    let mut seen = HashSet::new();
    let mut ok = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        if i % 97 == 5 {
            assert_eq!(code(result), "DisabledException", "item {i}");
            continue;
        }
        let generated = result.unwrap();
        let len = if i % 7 == 0 { 1 + i % 1024 } else { 32 };
        assert_eq!(generated.plaintext.len(), len, "item {i}");
        if len >= 16 {
            assert!(
                seen.insert(generated.plaintext.expose().to_vec()),
                "item {i}: a data key repeats"
            );
        }
        ok.push((i, generated));
    }
    let decrypts: Vec<DecryptRequest<'_>> = ok
        .iter()
        .map(|(_, g)| DecryptRequest::new(&g.ciphertext_blob).with_context(&context))
        .collect();
    for ((i, generated), opened) in ok.iter().zip(engine.decrypt_batch(&decrypts)) {
        assert_eq!(
            opened.unwrap().expose(),
            generated.plaintext.expose(),
            "item {i}"
        );
    }

    let blobs = engine.generate_data_key_without_plaintext_batch(&requests);
    let mut seen_blobs = HashSet::new();
    for (i, result) in blobs.iter().enumerate() {
        if i % 97 == 5 {
            assert_eq!(code(result.clone()), "DisabledException");
            continue;
        }
        let blob = result.as_ref().unwrap();
        let opened = engine
            .decrypt(&DecryptRequest::new(blob).with_context(&context))
            .unwrap();
        let len = if i % 7 == 0 { 1 + i % 1024 } else { 32 };
        assert_eq!(opened.plaintext.len(), len);
        if len >= 16 {
            assert!(seen_blobs.insert(opened.plaintext.expose().to_vec()));
            assert!(!seen.contains(opened.plaintext.expose()));
        }
    }
}

// ---- GenerateRandom -----------------------------------------------------------------------------

#[test]
fn generate_random_is_1_to_1024_bytes_and_random() {
    let engine = Engine::in_memory().unwrap();
    for n in [1, 2, 32, 1023, 1024] {
        assert_eq!(engine.generate_random(n).unwrap().len(), n);
    }
    assert_eq!(code(engine.generate_random(0)), "ValidationException");
    assert_eq!(code(engine.generate_random(1025)), "ValidationException");
    let a = engine.generate_random(32).unwrap();
    let b = engine.generate_random(32).unwrap();
    assert_ne!(a, b);
    // Roughly balanced bits over 8 KiB (mean 32768 ones, sd 128).
    let bits: u32 = (0..8)
        .flat_map(|_| engine.generate_random(1024).unwrap())
        .map(|b| b.count_ones())
        .sum();
    assert!(
        (31_768..=33_768).contains(&bits),
        "{bits} ones in 65536 bits"
    );
}

// ---- key wear-out -------------------------------------------------------------------------------

#[test]
fn default_derived_key_limit_is_2_pow_32() {
    assert_eq!(
        keyplane::dataplane::MAX_MESSAGES_PER_DERIVED_KEY,
        1u64 << 32
    );
    let engine = Engine::in_memory().unwrap();
    assert_eq!(engine.config().messages_per_derived_key, 1u64 << 32);
    assert_eq!(
        keyplane::EngineConfig::default().messages_per_derived_key,
        1u64 << 32
    );
}

/// Checks a set of blobs of one key: no (salt, nonce) pair twice, no salt on more than `limit`
/// messages. Returns the number of distinct salts.
fn check_wear(blobs: &[Vec<u8>], limit: usize) -> usize {
    let mut pairs = HashSet::new();
    let mut per_salt: HashMap<[u8; 32], usize> = HashMap::new();
    for blob in blobs {
        let parsed = ciphertext::parse(blob).unwrap();
        assert!(
            pairs.insert((*parsed.salt, *parsed.nonce)),
            "a (salt, nonce) pair repeats"
        );
        let uses = per_salt.entry(*parsed.salt).or_default();
        *uses += 1;
        assert!(
            *uses <= limit,
            "a salt (derived key) encrypted more than {limit} messages"
        );
    }
    per_salt.len()
}

#[test]
fn derived_keys_are_replaced_after_their_message_limit() {
    let engine = Engine::builder()
        .messages_per_derived_key(4)
        .build()
        .unwrap();
    assert_eq!(engine.config().messages_per_derived_key, 4);
    let key = new_key(&engine);
    let messages: Vec<Vec<u8>> = (0..40).map(|i| message(i, 24)).collect();
    let blobs: Vec<Vec<u8>> = messages.iter().map(|m| seal(&engine, &key, m)).collect();
    let salts = check_wear(&blobs, 4);
    assert!(
        salts >= 10,
        "40 messages at 4 per derived key need 10 salts, got {salts}"
    );
    for (blob, m) in blobs.iter().zip(&messages) {
        assert_eq!(open(&engine, blob).unwrap(), *m);
    }

    // The same bound holds for a batch spread over the worker pool, and across single calls and
    // batches together.
    let batch_messages: Vec<Vec<u8>> = (0..1000).map(|i| message(i, 16)).collect();
    let requests: Vec<EncryptRequest<'_>> = batch_messages
        .iter()
        .map(|m| EncryptRequest::new(&key, m))
        .collect();
    let batch: Vec<Vec<u8>> = engine
        .encrypt_batch(&requests)
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    let all: Vec<Vec<u8>> = blobs.iter().chain(&batch).cloned().collect();
    assert!(check_wear(&all, 4) >= 260);
    let decrypts: Vec<DecryptRequest<'_>> = batch.iter().map(|b| DecryptRequest::new(b)).collect();
    for (i, result) in engine.decrypt_batch(&decrypts).into_iter().enumerate() {
        assert_eq!(result.unwrap().expose(), batch_messages[i].as_slice());
    }
}

#[test]
fn a_derived_key_limit_of_one_uses_a_fresh_salt_per_message() {
    let engine = Engine::builder()
        .messages_per_derived_key(1)
        .build()
        .unwrap();
    let key = new_key(&engine);
    let blobs: Vec<Vec<u8>> = (0..20)
        .map(|i| seal(&engine, &key, &message(i, 8)))
        .collect();
    assert_eq!(check_wear(&blobs, 1), 20);
}

#[test]
fn with_the_default_limit_nonces_never_repeat_under_a_derived_key() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let blobs: Vec<Vec<u8>> = (0..50)
        .map(|i| seal(&engine, &key, &message(i, 8)))
        .collect();
    check_wear(&blobs, 50);
}

// ---- secrets in Debug output --------------------------------------------------------------------

fn assert_not_shown(shown: &str, secret: &[u8]) {
    assert!(
        !shown.contains(&format!("{secret:?}")),
        "bytes as a list in {shown}"
    );
    assert!(!shown.contains(&hex::encode(secret)), "hex in {shown}");
    assert!(
        !shown.contains(&hex::encode_upper(secret)),
        "upper hex in {shown}"
    );
    // The first few bytes as Debug prints them inside a Vec.
    let head = format!("{:?}", &secret[..4]);
    assert!(
        !shown.contains(&head[1..head.len() - 1]),
        "leading bytes in {shown}"
    );
    if let Ok(text) = std::str::from_utf8(secret) {
        assert!(!shown.contains(text), "text in {shown}");
    }
}

#[test]
fn debug_output_never_shows_plaintext() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let secret = b"TOP-SECRET-PLAINTEXT-hunter2-0123";
    let blob = seal(&engine, &key, secret);
    let opened = engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
    assert_eq!(opened.plaintext.expose(), secret);
    for shown in [format!("{opened:?}"), format!("{opened:#?}")] {
        assert_not_shown(&shown, secret);
        assert!(shown.contains("redacted"), "{shown}");
    }
    assert_not_shown(&format!("{:?}", opened.plaintext), secret);
    let request = EncryptRequest::new(&key, secret);
    assert_not_shown(&format!("{request:?}"), secret);
    assert_not_shown(&format!("{request:#?}"), secret);

    let generated = engine
        .generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256))
        .unwrap();
    let data_key = generated.plaintext.expose().to_vec();
    for shown in [format!("{generated:?}"), format!("{generated:#?}")] {
        assert_not_shown(&shown, &data_key);
    }
    let batch =
        engine.generate_data_key_batch(&[GenerateDataKeyRequest::new(&key, DataKeySpec::Aes128)]);
    let item = batch[0].as_ref().unwrap();
    assert_not_shown(&format!("{batch:?}"), item.plaintext.expose());

    let secret_bytes = SecretBytes::from_vec(secret.to_vec());
    assert_not_shown(&format!("{secret_bytes:?}"), secret);
    assert_not_shown(&format!("{secret_bytes:#?}"), secret);
    let decrypted = engine.decrypt_batch(&[DecryptRequest::new(&blob)]);
    assert_not_shown(&format!("{decrypted:?}"), secret);

    // Errors do not carry plaintext either.
    let context: EncryptionContext = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let e = engine
        .decrypt(&DecryptRequest::new(&blob).with_context(&context))
        .unwrap_err();
    assert_not_shown(&format!("{e:?} {e}"), secret);
}

// ---- issue 13 (keyplane serve): batch calls that answer each item as the single call ---------

/// `decrypt_batch_responses` and `generate_data_key_batch_responses` answer every item with what
/// the single call gives (key ARN, algorithm, key material id), and an item that fails fails
/// alone: the endpoint's coalescing depends on both.
#[test]
fn batch_responses_match_the_single_calls_item_by_item() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let other = new_key(&engine);
    let blobs = [seal(&engine, &key, b"one"), seal(&engine, &other, b"two")];
    let bad = vec![7u8; 80];
    let requests = [
        DecryptRequest::new(&blobs[0]),
        DecryptRequest::new(&bad),
        DecryptRequest::new(&blobs[1]),
    ];
    let batch = engine.decrypt_batch_responses(&requests);
    assert_eq!(batch.len(), 3);
    for i in [0, 2] {
        let single = engine.decrypt(&requests[i]).unwrap();
        let item = batch[i].as_ref().unwrap();
        assert_eq!(item.plaintext.expose(), single.plaintext.expose());
        assert_eq!(item.key_id, single.key_id);
        assert_eq!(item.key_material_id, single.key_material_id);
        assert_eq!(item.encryption_algorithm, single.encryption_algorithm);
    }
    assert_eq!(
        batch[1].as_ref().unwrap_err().code(),
        "InvalidCiphertextException"
    );

    let requests = [
        GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256),
        GenerateDataKeyRequest::new("alias/missing", DataKeySpec::Aes128),
        GenerateDataKeyRequest::new(&other, DataKeySpec::Aes128),
    ];
    let batch = engine.generate_data_key_batch_responses(&requests);
    assert_eq!(batch[1].as_ref().unwrap_err().code(), "NotFoundException");
    for (i, k, len) in [(0, &key, 32), (2, &other, 16)] {
        let single = engine.generate_data_key(&requests[i]).unwrap();
        let item = batch[i].as_ref().unwrap();
        assert_eq!(item.plaintext.expose().len(), len);
        assert_eq!(item.key_id, arn(&engine, k));
        assert_eq!(item.key_material_id, single.key_material_id);
        let opened = engine
            .decrypt(&DecryptRequest::new(&item.ciphertext_blob))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), item.plaintext.expose());
    }
}
