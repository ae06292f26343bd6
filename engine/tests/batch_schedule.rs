//! Batches split across the worker pool (the calling thread and helpers claiming jobs cut by
//! estimated cost) give the same answers, in the same order, as one thread: items of mixed sizes
//! and keys, refused items in every job, failures from key state, and the audit record's counts.

use keyplane::ciphertext;
use keyplane::{
    DecryptRequest, EncryptRequest, Engine, KeySpec, KeyUsage, SignRequest, SigningAlgorithm,
    VerifyRequest,
};
use keyplane_testkit::new_key_of;

fn engine(threads: usize) -> Engine {
    Engine::builder().worker_threads(threads).build().unwrap()
}

/// Item `i`'s plaintext: sizes from 1 byte to 4 KiB, so jobs cut by cost hold different counts;
/// every 97th is empty (refused by validation).
fn plaintext(i: usize) -> Vec<u8> {
    if i % 97 == 13 {
        return Vec::new();
    }
    let len = [1, 64, 700, 4096, 33][i % 5];
    let mut m = format!("item {i} ").into_bytes();
    m.resize(len, (i % 251) as u8);
    m
}

#[test]
fn split_batches_answer_item_by_item_in_order() {
    for threads in [1, 2, 4, 8] {
        let engine = engine(threads);
        let keys: Vec<String> = (0..3)
            .map(|_| new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt))
            .collect();
        let disabled = new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        engine.disable_key(&disabled).unwrap();
        let n = 3000;
        let messages: Vec<Vec<u8>> = (0..n).map(plaintext).collect();
        let key_of = |i: usize| {
            if i % 211 == 7 {
                &disabled
            } else {
                &keys[i % 3]
            }
        };
        let requests: Vec<EncryptRequest<'_>> = (0..n)
            .map(|i| EncryptRequest::new(key_of(i), &messages[i]))
            .collect();

        let mut buffers: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| vec![0xAA; ciphertext::blob_len(m.len())])
            .collect();
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(|b| b.as_mut_slice()).collect();
        let written = engine.encrypt_batch_into(&requests, &mut outputs);
        let blobs = engine.encrypt_batch(&requests);
        assert_eq!(written.len(), n);
        assert_eq!(blobs.len(), n);

        let mut decrypts = Vec::new();
        for i in 0..n {
            let refused = messages[i].is_empty();
            let disabled_key = key_of(i) == &disabled;
            // Read in place, as callers of the public type do.
            match (written.get(i).expect("a result per item"), &blobs[i]) {
                (Ok(len), Ok(blob)) => {
                    assert!(!refused && !disabled_key, "item {i} ({threads} threads)");
                    assert_eq!(len, blob.len(), "item {i}");
                    decrypts.push((i, buffers[i][..len].to_vec()));
                    decrypts.push((i, blob.to_vec()));
                }
                (Err(a), Err(b)) => {
                    assert!(refused || disabled_key, "item {i}: {a:?}");
                    assert_eq!(a.code(), b.code(), "item {i}");
                    let want = if refused {
                        "ValidationException"
                    } else {
                        "DisabledException"
                    };
                    assert_eq!(a.code(), want, "item {i}");
                    if refused {
                        assert!(buffers[i].iter().all(|b| *b == 0), "item {i} not cleared");
                    }
                }
                (a, b) => panic!("item {i}: into {a:?}, allocating {:?}", b.as_ref().err()),
            }
        }

        // Each blob opens to its own item's plaintext, through a split decrypt batch too.
        let requests: Vec<DecryptRequest<'_>> = decrypts
            .iter()
            .map(|(_, b)| DecryptRequest::new(b))
            .collect();
        let mut plain: Vec<Vec<u8>> = decrypts.iter().map(|(_, b)| vec![0; b.len()]).collect();
        let mut outputs: Vec<&mut [u8]> = plain.iter_mut().map(|b| b.as_mut_slice()).collect();
        let opened = engine.decrypt_batch_into(&requests, &mut outputs);
        for ((k, (i, _)), result) in decrypts.iter().enumerate().zip(opened.iter()) {
            let len = result.unwrap_or_else(|e| panic!("item {i}: {e:?}"));
            assert_eq!(
                plain[k][..len],
                messages[*i][..],
                "item {i} ({threads} threads)"
            );
        }
    }
}

#[test]
fn split_signature_batches_sign_each_item_with_its_own_message() {
    // 20 µs an item: even small batches are split across every thread.
    let engine = engine(4);
    let key = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let messages: Vec<Vec<u8>> = (0..64)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    let requests: Vec<SignRequest<'_>> = messages
        .iter()
        .map(|m| SignRequest::new(&key, m, SigningAlgorithm::EcdsaSha256))
        .collect();
    let signatures = engine.sign_batch(&requests);
    for (i, signature) in signatures.iter().enumerate() {
        let signature = signature.as_ref().unwrap();
        for (j, message) in [(i, &messages[i]), ((i + 1) % 64, &messages[(i + 1) % 64])] {
            let verified = engine.verify(&VerifyRequest {
                key_id: &key,
                message,
                message_type: keyplane::MessageType::Raw,
                signature,
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
            });
            assert_eq!(
                verified.is_ok(),
                i == j,
                "signature {i} against message {j}"
            );
        }
    }
}
