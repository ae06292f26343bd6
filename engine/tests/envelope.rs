//! Envelope encryption in the Encryption SDK's format: round trips through every keyring and
//! suite, streaming in odd chunk sizes, limits, commitment policy, release rules, and the
//! property that every single-byte mutation and every truncation of a valid message fails with a
//! typed error. Interoperability with the Python SDK and its CLI: scripts/test-envelope.

use std::io::{Read, Write};
use std::sync::Arc;

use keyplane::envelope::{
    self, AlgorithmSuite, CommitmentPolicy, Decryptor, Encryptor, EnvelopeConfig, Keyring,
    KmsKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding, SignedRelease,
};
use keyplane::{CreateKeyRequest, EncryptionContext, Engine, Error, ErrorKind};

fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("test-ns", name, &[byte; 32]).unwrap())
}

fn rsa_pkcs8() -> Vec<u8> {
    use aws_lc_rs::encoding::AsDer;
    let key =
        aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    key.as_der().unwrap().as_ref().to_vec()
}

fn context() -> EncryptionContext {
    [("purpose", "test"), ("tenant", "t-1"), ("ünïcode", "välue")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config(suite: AlgorithmSuite, frame_length: u32) -> EnvelopeConfig {
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    EnvelopeConfig {
        suite,
        frame_length,
        commitment_policy: policy,
        window_frames: 4,
        ..EnvelopeConfig::default()
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn every_suite_round_trips_at_frame_boundaries() {
    let kr = aes("k", 1);
    for suite in AlgorithmSuite::ALL {
        let cfg = config(suite, 64);
        for len in [0, 1, 63, 64, 65, 128, 255, 256, 257, 1000] {
            let pt = data(len);
            let msg = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), &pt)
                .unwrap();
            assert_eq!(msg[0], suite.message_version());
            assert_eq!(
                u16::from_be_bytes([
                    msg[1 + (msg[0] == 1) as usize],
                    msg[2 + (msg[0] == 1) as usize]
                ]),
                suite.id()
            );
            let out = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &msg).unwrap();
            assert_eq!(&out.plaintext[..], &pt[..], "{suite} len {len}");
            for (k, v) in context() {
                assert_eq!(out.header.encryption_context.get(&k), Some(&v));
            }
            assert_eq!(
                out.header
                    .encryption_context
                    .contains_key("aws-crypto-public-key"),
                suite.is_signed()
            );
        }
    }
}

#[test]
fn streaming_writes_and_reads_in_odd_chunks_match_one_shot() {
    let kr = aes("k", 2);
    let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 100);
    let pt = data(10_007);
    let mut enc = Encryptor::new(Vec::new(), std::slice::from_ref(&kr), &cfg, &context()).unwrap();
    let mut at = 0;
    for (i, step) in [1usize, 7, 399, 400, 401, 1, 3000, 99]
        .iter()
        .cycle()
        .enumerate()
    {
        if at >= pt.len() || i > 10_000 {
            break;
        }
        let end = (at + step).min(pt.len());
        enc.write_all(&pt[at..end]).unwrap();
        at = end;
    }
    let msg = enc.finish().unwrap();
    // 100 full frames and a final frame of 7 bytes: sequence numbers 1..=101.
    let mut dec = Decryptor::new(msg.as_slice(), std::slice::from_ref(&kr), &cfg).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 33];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, pt);
    let one_shot = envelope::decrypt_message(&[kr], &cfg, &msg).unwrap();
    assert_eq!(&one_shot.plaintext[..], &pt[..]);
}

#[test]
fn kms_keyring_records_the_key_arn_and_binds_the_context() {
    let engine = Engine::in_memory().unwrap();
    let key = engine.create_key(CreateKeyRequest::default()).unwrap();
    engine.create_alias("alias/envelope", &key.key_id).unwrap();
    let kr: Arc<dyn Keyring> = Arc::new(KmsKeyring::new(&engine, "alias/envelope").unwrap());
    let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096);
    let msg = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), b"kms data")
        .unwrap();
    let out = envelope::decrypt_message(&[kr], &cfg, &msg).unwrap();
    assert_eq!(&out.plaintext[..], b"kms data");
    let edk = &out.header.encrypted_data_keys[0];
    assert_eq!(edk.provider_id, "aws-kms");
    assert_eq!(edk.provider_info, key.arn.as_bytes());
    // The EDK is a Decrypt-able ciphertext blob bound to the message's context.
    let ctx = out.header.encryption_context.clone();
    let mut req = keyplane::DecryptRequest::new(&edk.ciphertext);
    req.encryption_context = Some(&ctx);
    assert_eq!(engine.decrypt(&req).unwrap().plaintext.len(), 32);
    let req = keyplane::DecryptRequest::new(&edk.ciphertext);
    assert!(engine.decrypt(&req).is_err(), "context is bound to the EDK");
    // Discovery decrypts it too; another key's strict keyring does not.
    let discovery: Arc<dyn Keyring> = Arc::new(KmsKeyring::discovery(&engine));
    envelope::decrypt_message(&[discovery], &cfg, &msg).unwrap();
    let other = engine.create_key(CreateKeyRequest::default()).unwrap();
    let other: Arc<dyn Keyring> = Arc::new(KmsKeyring::new(&engine, &other.key_id).unwrap());
    let err = envelope::decrypt_message(&[other], &cfg, &msg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IncorrectKey, "{err}");
}

#[test]
fn raw_rsa_every_padding_and_multiple_keyrings() {
    let pkcs8 = rsa_pkcs8();
    for padding in RsaPadding::ALL {
        let rsa: Arc<dyn Keyring> = Arc::new(
            RawRsaKeyring::with_private_key("rsa-ns", "rsa-key", padding, &pkcs8).unwrap(),
        );
        let kr = aes("k", 3);
        let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 512);
        let pt = data(3000);
        let msg =
            envelope::encrypt_message(&[rsa.clone(), kr.clone()], &cfg, &context(), &pt).unwrap();
        for alone in [rsa.clone(), kr] {
            let out = envelope::decrypt_message(&[alone], &cfg, &msg).unwrap();
            assert_eq!(&out.plaintext[..], &pt[..], "{padding:?}");
            assert_eq!(out.header.encrypted_data_keys.len(), 2);
        }
    }
}

#[test]
fn a_wrong_key_is_incorrect_key_and_no_plaintext() {
    let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 64);
    let msg = envelope::encrypt_message(&[aes("k", 4)], &cfg, &context(), b"secret").unwrap();
    for wrong in [aes("k", 5), aes("other-name", 4)] {
        let err = envelope::decrypt_message(&[wrong], &cfg, &msg).unwrap_err();
        assert_eq!(err.code(), "IncorrectKeyException", "{err}");
    }
}

#[test]
fn commitment_policy_is_enforced_both_ways() {
    let kr = aes("k", 6);
    let v1 = config(AlgorithmSuite::Aes256GcmHkdfSha256, 64);
    let msg =
        envelope::encrypt_message(std::slice::from_ref(&kr), &v1, &context(), b"legacy").unwrap();
    let strict = EnvelopeConfig::default();
    let err = envelope::decrypt_message(std::slice::from_ref(&kr), &strict, &msg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCiphertext);
    assert!(
        err.message().contains("REQUIRE_ENCRYPT_REQUIRE_DECRYPT"),
        "{err}"
    );
    let allow = EnvelopeConfig {
        commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
        ..EnvelopeConfig::default()
    };
    envelope::decrypt_message(std::slice::from_ref(&kr), &allow, &msg).unwrap();
    // Encrypting: v1 suites only under FORBID_ENCRYPT, v2 only under REQUIRE_ENCRYPT.
    let bad = EnvelopeConfig {
        suite: AlgorithmSuite::Aes256GcmHkdfSha256,
        ..EnvelopeConfig::default()
    };
    let err =
        envelope::encrypt_message(std::slice::from_ref(&kr), &bad, &context(), b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let bad = EnvelopeConfig {
        commitment_policy: CommitmentPolicy::ForbidEncryptAllowDecrypt,
        ..EnvelopeConfig::default()
    };
    assert!(envelope::encrypt_message(&[kr], &bad, &context(), b"x").is_err());
}

#[test]
fn max_encrypted_data_keys_on_encrypt_and_decrypt() {
    let two = [aes("a", 7), aes("b", 8)];
    let mut cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 64);
    let msg = envelope::encrypt_message(&two, &cfg, &context(), b"x").unwrap();
    cfg.max_encrypted_data_keys = Some(1);
    let err = envelope::encrypt_message(&two, &cfg, &context(), b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    let err = envelope::decrypt_message(&two, &cfg, &msg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    cfg.max_encrypted_data_keys = Some(2);
    envelope::decrypt_message(&two, &cfg, &msg).unwrap();
}

#[test]
fn reserved_context_keys_are_refused() {
    let mut ctx = context();
    ctx.insert("aws-crypto-public-key".into(), "AAAA".into());
    let err = envelope::encrypt_message(&[aes("k", 1)], &EnvelopeConfig::default(), &ctx, b"x")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
}

fn typed(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::InvalidCiphertext
            | ErrorKind::InvalidSignature
            | ErrorKind::IncorrectKey
            | ErrorKind::LimitExceeded
    )
}

/// Every single-byte change (xor 0x01 and xor 0x80) and every truncation of small messages in
/// each suite fails, with a typed error, and yields no plaintext through `decrypt_message`.
#[test]
fn every_mutation_and_truncation_fails_typed() {
    let kr = aes("k", 9);
    for suite in AlgorithmSuite::ALL {
        let cfg = EnvelopeConfig {
            commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
            ..config(suite, 16)
        };
        let enc_cfg = config(suite, 16);
        let ctx: EncryptionContext = [("k".to_string(), "v".to_string())].into_iter().collect();
        let msg = envelope::encrypt_message(std::slice::from_ref(&kr), &enc_cfg, &ctx, &data(40))
            .unwrap();
        envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &msg).unwrap();
        for i in 0..msg.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = msg.clone();
                m[i] ^= bit;
                match envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &m) {
                    Ok(_) => panic!("{suite}: flipping byte {i} by {bit:#x} still decrypted"),
                    Err(e) => assert!(typed(&e), "{suite}: byte {i}: untyped {e}"),
                }
            }
        }
        for len in 0..msg.len() {
            let e = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &msg[..len])
                .unwrap_err();
            assert!(typed(&e), "{suite}: truncated to {len}: {e}");
        }
        let mut longer = msg.clone();
        longer.push(0);
        let e = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &longer).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{e}");
    }
}

/// Offsets of the regular frames of an unsigned v2 message with an AES keyring and `ctx`.
fn frame_span(msg: &[u8], frame_length: usize) -> (usize, usize) {
    let header = envelope::header::read_header(
        &mut &msg[..],
        envelope::header::HeaderLimits {
            max_encrypted_data_keys: None,
        },
    )
    .unwrap()
    .1;
    let body = header.len() + 16;
    (body, 4 + 12 + frame_length + 16)
}

#[test]
fn reordered_dropped_or_duplicated_frames_are_rejected() {
    let kr = aes("k", 10);
    let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 32);
    let msg = envelope::encrypt_message(
        std::slice::from_ref(&kr),
        &cfg,
        &context(),
        &data(32 * 3 + 5),
    )
    .unwrap();
    let (body, size) = frame_span(&msg, 32);
    let frame = |i: usize| msg[body + i * size..body + (i + 1) * size].to_vec();
    let tail = msg[body + 3 * size..].to_vec();
    let head = msg[..body].to_vec();
    let variants: Vec<Vec<Vec<u8>>> = vec![
        vec![frame(1), frame(0), frame(2)],
        vec![frame(0), frame(2)],
        vec![frame(0), frame(0), frame(1), frame(2)],
        vec![frame(0), frame(1), frame(2), frame(2)],
    ];
    for (n, frames) in variants.into_iter().enumerate() {
        let mut m = head.clone();
        frames.iter().for_each(|f| m.extend_from_slice(f));
        m.extend_from_slice(&tail);
        let e = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &m).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "variant {n}: {e}");
    }
    // Cut after a whole frame: truncated, and a stream reader gets the authentic frames first.
    let cut = &msg[..body + 2 * size];
    let mut dec = Decryptor::new(cut, &[kr], &cfg).unwrap();
    let mut out = Vec::new();
    let e = dec.read_to_end(&mut out).unwrap_err();
    assert_eq!(
        envelope::error_from_io(e).kind(),
        ErrorKind::InvalidCiphertext
    );
}

#[test]
fn signed_release_rule_holds_plaintext_until_the_signature_verifies() {
    let kr = aes("k", 11);
    let mut cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 16);
    cfg.window_frames = 1;
    let pt = data(200);
    let mut msg =
        envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), &pt).unwrap();
    let last = msg.len() - 1;
    msg[last] ^= 1; // the signature's last byte
    let mut dec = Decryptor::new(msg.as_slice(), std::slice::from_ref(&kr), &cfg).unwrap();
    let mut buf = [0u8; 64];
    let e = dec.read(&mut buf).unwrap_err();
    assert_eq!(
        envelope::error_from_io(e).kind(),
        ErrorKind::InvalidSignature
    );
    // PerFrame: authenticated frames are released, the signature fails the stream at the end.
    cfg.signed_release = SignedRelease::PerFrame;
    let mut dec = Decryptor::new(msg.as_slice(), std::slice::from_ref(&kr), &cfg).unwrap();
    assert_eq!(dec.read(&mut buf).unwrap(), 16);
    let mut rest = Vec::new();
    let e = dec.read_to_end(&mut rest).unwrap_err();
    assert_eq!(
        envelope::error_from_io(e).kind(),
        ErrorKind::InvalidSignature
    );
    // The hold is bounded.
    cfg.signed_release = SignedRelease::AfterSignature;
    cfg.max_buffered_plaintext = 100;
    let good = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), &pt).unwrap();
    let e = envelope::decrypt_message(&[kr], &cfg, &good).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
}

#[test]
fn parallel_pool_output_equals_single_thread_decrypt() {
    let kr = aes("k", 12);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap(),
    );
    let cfg = EnvelopeConfig {
        pool: Some(pool),
        window_frames: 64,
        frame_length: 1000,
        ..EnvelopeConfig::default()
    };
    let pt = data(1_000_000 + 17);
    let msg = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), &pt).unwrap();
    let single = EnvelopeConfig {
        pool: Some(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
        )),
        window_frames: 1,
        ..EnvelopeConfig::default()
    };
    let out = envelope::decrypt_message(std::slice::from_ref(&kr), &single, &msg).unwrap();
    assert!(out.plaintext[..] == pt[..]);
    // The frames are cut into jobs that the calling thread and the pool's workers share: a
    // tampered frame in the middle fails the whole message, with its own sequence number, and
    // releases nothing, whichever thread opened it.
    let (body, size) = frame_span(&msg, 1000);
    let mut bad = msg.clone();
    bad[body + 517 * size + 100] ^= 1;
    let mut plaintext = b"kept?".to_vec();
    let e = envelope::decrypt_message_into(&[kr], &cfg, &bad, &mut plaintext).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidCiphertext);
    assert!(e.message().starts_with("frame 518 "), "{}", e.message());
    assert!(plaintext.is_empty());
}

#[test]
fn frame_length_is_validated() {
    for bad in [0u32, 1 << 31] {
        let cfg = EnvelopeConfig {
            frame_length: bad,
            ..EnvelopeConfig::default()
        };
        let e = envelope::encrypt_message(&[aes("k", 1)], &cfg, &context(), b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
    }
}

#[test]
fn an_exact_multiple_of_the_frame_ends_with_an_empty_final_frame() {
    // The Python SDK rejects a final frame as long as the frame length, and writes whole frames
    // and an empty final frame; so does keyplane.
    let kr = aes("k", 13);
    let cfg = config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 32);
    let msg =
        envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), &data(64)).unwrap();
    let (body, size) = frame_span(&msg, 32);
    let final_frame = &msg[body + 2 * size..];
    assert_eq!(final_frame.len(), 4 + 4 + 12 + 4 + 16);
    assert_eq!(&final_frame[..8], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3]);
    assert_eq!(&final_frame[20..24], &[0, 0, 0, 0]);
    let out = envelope::decrypt_message(&[kr], &cfg, &msg).unwrap();
    assert_eq!(&out.plaintext[..], &data(64)[..]);
}

mod caching {
    use super::*;
    use keyplane::envelope::{CacheLimits, DataKeyCache};
    use std::collections::HashSet;
    use std::time::Duration;

    fn cached(limits: CacheLimits, suite: AlgorithmSuite) -> (EnvelopeConfig, Arc<DataKeyCache>) {
        let cache = Arc::new(DataKeyCache::new(limits).unwrap());
        let cfg = EnvelopeConfig {
            cache: Some(cache.clone()),
            ..config(suite, 64)
        };
        (cfg, cache)
    }

    fn edk_of(msg: &[u8], kr: &Arc<dyn Keyring>, cfg: &EnvelopeConfig) -> Vec<u8> {
        let plain = EnvelopeConfig {
            cache: None,
            ..cfg.clone()
        };
        let out = envelope::decrypt_message(std::slice::from_ref(kr), &plain, msg).unwrap();
        out.header.encrypted_data_keys[0].ciphertext.clone()
    }

    #[test]
    fn many_small_messages_share_one_generate_data_key() {
        let engine = Engine::in_memory().unwrap();
        let key = engine.create_key(CreateKeyRequest::default()).unwrap();
        let kr: Arc<dyn Keyring> = Arc::new(KmsKeyring::new(&engine, &key.key_id).unwrap());
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ] {
            let (cfg, cache) = cached(CacheLimits::with_max_age(Duration::from_secs(60)), suite);
            let msgs: Vec<Vec<u8>> = (0..10)
                .map(|i| {
                    envelope::encrypt_message(
                        std::slice::from_ref(&kr),
                        &cfg,
                        &context(),
                        &data(i * 50),
                    )
                    .unwrap()
                })
                .collect();
            let s = cache.stats();
            assert_eq!((s.encrypt_misses, s.encrypt_hits), (1, 9), "{suite}");
            let edks: HashSet<_> = msgs.iter().map(|m| edk_of(m, &kr, &cfg)).collect();
            assert_eq!(edks.len(), 1);
            // Message ids differ, so every message still has its own derived key and commitment.
            let ids: HashSet<_> = msgs.iter().map(|m| m[1..35].to_vec()).collect();
            assert_eq!(ids.len(), 10);
            for (i, m) in msgs.iter().enumerate() {
                let out = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, m).unwrap();
                assert_eq!(&out.plaintext[..], &data(i * 50)[..]);
            }
            let s = cache.stats();
            assert_eq!((s.decrypt_misses, s.decrypt_hits), (1, 9), "{suite}");
        }
    }

    #[test]
    fn message_byte_and_age_limits_retire_a_data_key() {
        let kr = aes("k", 20);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let distinct = |cfg: &EnvelopeConfig, sizes: &[usize], pause: Duration| {
            let mut edks = HashSet::new();
            for &n in sizes {
                let m =
                    envelope::encrypt_message(std::slice::from_ref(&kr), cfg, &context(), &data(n))
                        .unwrap();
                edks.insert(edk_of(&m, &kr, cfg));
                std::thread::sleep(pause);
            }
            edks.len()
        };
        let mut limits = CacheLimits::with_max_age(Duration::from_secs(60));
        limits.max_messages = 3;
        let (cfg, _) = cached(limits, suite);
        assert_eq!(
            distinct(&cfg, &[1; 10], Duration::ZERO),
            4,
            "ceil(10 / 3) data keys"
        );
        let mut limits = CacheLimits::with_max_age(Duration::from_secs(60));
        limits.max_bytes = 100;
        let (cfg, _) = cached(limits, suite);
        assert_eq!(distinct(&cfg, &[60; 6], Duration::ZERO), 6, "60 + 60 > 100");
        let (cfg, _) = cached(limits, suite);
        assert_eq!(
            distinct(&cfg, &[30; 6], Duration::ZERO),
            2,
            "3 x 30 fit in 100, a 4th not"
        );
        let (cfg, _) = cached(CacheLimits::with_max_age(Duration::from_millis(30)), suite);
        assert_eq!(
            distinct(&cfg, &[1; 3], Duration::from_millis(40)),
            3,
            "expired by age"
        );
        // Another context is another entry.
        let (cfg, cache) = cached(CacheLimits::with_max_age(Duration::from_secs(60)), suite);
        let other: EncryptionContext = [("x".to_string(), "y".to_string())].into();
        envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), b"a").unwrap();
        envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &other, b"a").unwrap();
        assert_eq!(cache.stats().encrypt_misses, 2);
    }

    #[test]
    fn the_no_kdf_suite_and_unknown_lengths_bypass_the_cache() {
        let kr = aes("k", 21);
        let suite = AlgorithmSuite::Aes256GcmNoKdf;
        let (cfg, cache) = cached(CacheLimits::with_max_age(Duration::from_secs(60)), suite);
        let a = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), b"same")
            .unwrap();
        let b = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg, &context(), b"same")
            .unwrap();
        assert_ne!(
            edk_of(&a, &kr, &cfg),
            edk_of(&b, &kr, &cfg),
            "0x0078 reuses no data key"
        );
        assert_eq!(cache.stats().encrypt_hits, 0);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let (cfg, cache) = cached(CacheLimits::with_max_age(Duration::from_secs(60)), suite);
        for _ in 0..2 {
            let mut e =
                Encryptor::new(Vec::new(), std::slice::from_ref(&kr), &cfg, &context()).unwrap();
            e.write_all(b"stream").unwrap();
            e.finish().unwrap();
        }
        assert_eq!(
            cache.stats().encrypt_misses,
            2,
            "a stream of unknown length is not cached"
        );
        let mut e = Encryptor::with_length(
            Vec::new(),
            std::slice::from_ref(&kr),
            &cfg,
            &context(),
            Some(3),
        )
        .unwrap();
        assert!(
            e.write_all(b"four").is_err(),
            "more than the length given is refused"
        );
    }
}

#[test]
fn a_header_claiming_huge_frames_costs_no_memory_and_is_bounded() {
    // A valid header and authentication with a 2^31 - 1 frame length, then a few bytes: the
    // reader fails as truncated without allocating the claimed frame; a frame length over the
    // buffering bound is refused before any frame is read.
    let kr = aes("k", 30);
    let cfg = EnvelopeConfig {
        frame_length: i32::MAX as u32,
        max_buffered_plaintext: u64::MAX,
        ..config(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096)
    };
    let enc = Encryptor::new(Vec::new(), std::slice::from_ref(&kr), &cfg, &context()).unwrap();
    let header = enc.get_ref().unwrap().clone();
    let mut message = header.clone();
    message.extend_from_slice(&[0, 0, 0, 1]);
    message.extend_from_slice(&envelope::frame::frame_iv(1));
    message.extend_from_slice(&[0u8; 100]);
    let started = std::time::Instant::now();
    let e = envelope::decrypt_message(std::slice::from_ref(&kr), &cfg, &message).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{e}");
    assert!(e.message().contains("truncated"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let bounded = EnvelopeConfig {
        max_buffered_plaintext: 1 << 20,
        ..cfg
    };
    let e = envelope::decrypt_message(&[kr], &bounded, &header).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
}

#[test]
fn into_calls_reuse_the_buffer_and_release_nothing_on_failure() {
    let kr = aes("k", 1);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let cfg = config(suite, 64);
        let keyrings = std::slice::from_ref(&kr);
        let mut message = b"stale bytes of an earlier message".to_vec();
        let mut plaintext = b"stale plaintext".to_vec();
        for len in [1000, 10, 0, 640] {
            let pt = data(len);
            envelope::encrypt_message_into(keyrings, &cfg, &context(), &pt, &mut message).unwrap();
            // The one-shot result decrypts with the streaming reader, and the `_into` reader
            // gives exactly the plaintext (the buffer's old contents gone).
            let mut streamed = Vec::new();
            Decryptor::new(&message[..], keyrings, &cfg)
                .unwrap()
                .read_to_end(&mut streamed)
                .unwrap();
            assert_eq!(streamed, pt, "{suite} len {len}");
            let header =
                envelope::decrypt_message_into(keyrings, &cfg, &message, &mut plaintext).unwrap();
            assert_eq!(plaintext, pt, "{suite} len {len}");
            assert_eq!(header.suite, suite);
        }
        // A tampered last frame: the whole call fails and the buffer is left empty, although
        // every earlier frame authenticated.
        let pt = data(640);
        envelope::encrypt_message_into(keyrings, &cfg, &context(), &pt, &mut message).unwrap();
        let mut tampered = message.clone();
        let at = if suite.is_signed() {
            tampered.len() - 120
        } else {
            tampered.len() - 20
        };
        tampered[at] ^= 1;
        let err =
            envelope::decrypt_message_into(keyrings, &cfg, &tampered, &mut plaintext).unwrap_err();
        assert!(typed(&err), "{suite}: {err}");
        assert!(plaintext.is_empty(), "{suite}: plaintext released");
        // A failed encryption (a reserved context key) leaves the message buffer empty too.
        let mut bad = context();
        bad.insert("aws-crypto-x".into(), "y".into());
        assert!(envelope::encrypt_message_into(keyrings, &cfg, &bad, &pt, &mut message).is_err());
        assert!(message.is_empty());
    }
}

// ---- the slice path, the push decryptor and the reader agree ----------------------------------

/// An independent reader of unsigned version 2 messages (suite 0x0478, one raw AES keyring,
/// empty encryption context), written from the format's specification with aws-lc-rs's AEAD API
/// and RustCrypto's HKDF: none of the engine's parsing, key derivation or frame code.
fn reference_open(message: &[u8], wrapping_key: &[u8; 32]) -> Vec<u8> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let at = std::cell::Cell::new(0usize);
    let take = |n: usize| {
        let s = &message[at.get()..at.get() + n];
        at.set(at.get() + n);
        s
    };
    let u16_of = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]) as usize;
    let u32_of = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!(take(1), [2]);
    assert_eq!(take(2), [0x04, 0x78]);
    let message_id = take(32).to_vec();
    assert_eq!(u16_of(take(2)), 0, "empty context");
    assert_eq!(u16_of(take(2)), 1, "one data key");
    let n = u16_of(take(2));
    take(n);
    let n = u16_of(take(2));
    let info = take(n).to_vec();
    let n = u16_of(take(2));
    let wrapped = take(n).to_vec();
    assert_eq!(take(1), [2], "framed");
    let frame_length = u32_of(take(4)) as usize;
    let commitment = take(32).to_vec();
    let header_end = at.get();
    let header_tag = take(16).to_vec();
    let open = |key: &[u8], iv: &[u8], aad: &[u8], ct_tag: &[u8]| -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut buf = ct_tag.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(iv).unwrap();
        let n = key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .expect("authenticates")
            .len();
        buf.truncate(n);
        buf
    };
    let data_key = open(wrapping_key, &info[info.len() - 12..], &[], &wrapped);
    let hkdf = hkdf::Hkdf::<sha2::Sha512>::new(Some(&message_id), &data_key);
    let mut key = [0u8; 32];
    hkdf.expand(b"\x04\x78DERIVEKEY", &mut key).unwrap();
    let mut commit = [0u8; 32];
    hkdf.expand(b"COMMITKEY", &mut commit).unwrap();
    assert_eq!(&commit[..], &commitment[..], "commitment");
    let mut header_ct = Vec::new();
    header_ct.extend_from_slice(&header_tag);
    open(&key, &[0u8; 12], &message[..header_end], &header_ct);
    let mut plaintext = Vec::new();
    let mut expect = 1u32;
    loop {
        let mut sequence = u32_of(take(4));
        let last = sequence == u32::MAX;
        if last {
            sequence = u32_of(take(4));
        }
        assert_eq!(sequence, expect);
        let iv = take(12).to_vec();
        let len = if last {
            u32_of(take(4)) as usize
        } else {
            frame_length
        };
        let mut aad = message_id.clone();
        aad.extend_from_slice(if last {
            b"AWSKMSEncryptionClient Final Frame".as_slice()
        } else {
            b"AWSKMSEncryptionClient Frame".as_slice()
        });
        aad.extend_from_slice(&sequence.to_be_bytes());
        aad.extend_from_slice(&(len as u64).to_be_bytes());
        plaintext.extend_from_slice(&open(&key, &iv, &aad, take(len + 16)));
        expect += 1;
        if last {
            break;
        }
    }
    assert_eq!(at.get(), message.len(), "nothing after the final frame");
    plaintext
}

/// A tiny deterministic generator of chunk sizes.
fn chunker(seed: u64, max: usize) -> impl FnMut() -> usize {
    let mut state = seed | 1;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + (state >> 33) as usize % max
    }
}

/// Feeds `message` to a push decryptor in chunks from `sizes`; the plaintext and the result.
fn push_decrypt(
    keyrings: &[Arc<dyn Keyring>],
    cfg: &EnvelopeConfig,
    message: &[u8],
    sizes: &mut impl FnMut() -> usize,
) -> (Vec<u8>, Result<(), Error>) {
    let mut d = envelope::PushDecryptor::new(keyrings, cfg);
    let mut out = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let end = (at + sizes()).min(message.len());
        if let Err(e) = d.update(&message[at..end], &mut out) {
            return (out, Err(e));
        }
        at = end;
    }
    let result = d.finish(&mut out);
    (out, result)
}

/// The same message through the one-shot slice path, the push decryptor in random pieces and
/// the streaming reader in odd reads, for sizes around the frame length (0 bytes, one frame,
/// multiples), frame lengths from 1 byte and several window sizes: all give the plaintext, and
/// for suite 0x0478 so does an independent reader.
#[test]
fn slice_push_and_reader_paths_agree_with_an_independent_reader() {
    let wrapping = [44u8; 32];
    let kr: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("test-ns", "ref", &wrapping).unwrap());
    let keyrings = std::slice::from_ref(&kr);
    let empty = EncryptionContext::new();
    let mut plaintext = b"stale".to_vec();
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha256,
    ] {
        for fl in [1usize, 7, 64, 4096] {
            for window in [1usize, 3, 256] {
                let cfg = EnvelopeConfig {
                    window_frames: window,
                    ..config(suite, fl as u32)
                };
                let sizes = [0, 1, fl - 1, fl, fl + 1, 2 * fl, 3 * fl + 5, 7 * fl, 10_000];
                for len in sizes {
                    let pt = data(len);
                    let msg = envelope::encrypt_message(keyrings, &cfg, &empty, &pt).unwrap();
                    let what = format!("{suite} frame {fl} window {window} len {len}");
                    envelope::decrypt_message_into(keyrings, &cfg, &msg, &mut plaintext)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(plaintext, pt, "slice path, {what}");
                    let mut sizes = chunker(len as u64 ^ fl as u64, 2 * fl + 50);
                    let (pushed, result) = push_decrypt(keyrings, &cfg, &msg, &mut sizes);
                    result.unwrap_or_else(|e| panic!("push, {what}: {e}"));
                    assert_eq!(pushed, pt, "push path, {what}");
                    let mut reader = Decryptor::new(&msg[..], keyrings, &cfg).unwrap();
                    let (mut read, mut buf) = (Vec::new(), [0u8; 13]);
                    loop {
                        let n = reader.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        read.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(read, pt, "reader, {what}");
                    if suite == AlgorithmSuite::Aes256GcmHkdfSha512CommitKey {
                        assert_eq!(reference_open(&msg, &wrapping), pt, "reference, {what}");
                    }
                }
            }
        }
    }
}

/// Every single-byte change and every truncation of a message fails with a typed error through
/// the push decryptor (in random pieces) and the streaming reader as through the one-shot call;
/// what the push decryptor released before failing is whole frames of the real plaintext that
/// lie wholly before the change (and nothing for a signed message).
#[test]
fn push_and_reader_paths_fail_typed_on_every_mutation_and_truncation() {
    let kr = aes("k", 12);
    let keyrings = std::slice::from_ref(&kr);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384,
    ] {
        let cfg = EnvelopeConfig {
            commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
            window_frames: 2,
            ..config(suite, 16)
        };
        let enc_cfg = config(suite, 16);
        let pt = data(90);
        let msg = envelope::encrypt_message(keyrings, &enc_cfg, &context(), &pt).unwrap();
        let body = envelope::header::read_header(
            &mut &msg[..],
            envelope::header::HeaderLimits {
                max_encrypted_data_keys: None,
            },
        )
        .unwrap()
        .1
        .len();
        let mut sizes = chunker(suite.id() as u64, 40);
        let mut check = |m: &[u8], changed_at: usize, what: &str| {
            let (out, result) = push_decrypt(keyrings, &cfg, m, &mut sizes);
            let e = result.expect_err(what);
            assert!(typed(&e), "{suite}: push, {what}: untyped {e}");
            let whole_before = changed_at.saturating_sub(body) / (4 + 12 + 16 + 16);
            // A byte after a whole message: all of it authenticated (and verified) and may have
            // been released before the extra byte arrived in a later piece.
            let whole = changed_at >= msg.len();
            assert!(
                whole || (out.len() <= 16 * whole_before && out.len() % 16 == 0),
                "{suite}: push, {what}: {} bytes released",
                out.len()
            );
            assert_eq!(out[..], pt[..out.len()], "{suite}: push, {what}");
            if suite.is_signed() && !whole {
                assert!(
                    out.is_empty(),
                    "{suite}: push, {what}: signed plaintext released"
                );
            }
            let read = Decryptor::new(m, keyrings, &cfg).and_then(|mut r| {
                let mut all = Vec::new();
                r.read_all(&mut all)
            });
            let e = read.expect_err(what);
            assert!(typed(&e), "{suite}: reader, {what}: untyped {e}");
        };
        for i in 0..msg.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = msg.clone();
                m[i] ^= bit;
                check(&m, i, &format!("byte {i} ^ {bit:#x}"));
            }
        }
        for len in 0..msg.len() {
            check(&msg[..len], len, &format!("truncated to {len}"));
        }
        let mut longer = msg.clone();
        longer.push(0);
        check(&longer, msg.len(), "one byte more");
    }
}

/// The push decryptor's contract: no header before it is all here, a signed message's plaintext
/// only at the end, trailing bytes refused when given, a message cut short refused at finish,
/// held plaintext bounded, and a failure repeated by every later call.
#[test]
fn push_decryptor_release_rule_limits_and_failure_are_sticky() {
    let kr = aes("k", 13);
    let keyrings = std::slice::from_ref(&kr);
    let pt = data(5000);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let cfg = EnvelopeConfig {
            window_frames: 2,
            ..config(suite, 100)
        };
        let msg = envelope::encrypt_message(keyrings, &cfg, &context(), &pt).unwrap();
        let mut d = envelope::PushDecryptor::new(keyrings, &cfg);
        let mut out = Vec::new();
        d.update(&msg[..10], &mut out).unwrap();
        assert!(d.header().is_none());
        d.update(&msg[10..msg.len() - 1], &mut out).unwrap();
        assert_eq!(d.header().map(|h| h.suite), Some(suite));
        if suite.is_signed() {
            assert!(out.is_empty(), "signed plaintext before the signature");
        } else {
            assert_eq!(out[..], pt[..out.len()]);
            assert!(
                out.len() >= 4900,
                "frames released as they come: {}",
                out.len()
            );
        }
        assert!(!d.is_finished());
        d.update(&msg[msg.len() - 1..], &mut out).unwrap();
        assert!(d.is_finished());
        assert_eq!(out, pt);
        let e = d.update(&[0], &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{e}");
        assert_eq!(d.finish(&mut out).unwrap_err(), e, "a failure is sticky");
        // Cut short: refused at finish as truncated.
        let mut d = envelope::PushDecryptor::new(keyrings, &cfg);
        let mut out = Vec::new();
        d.update(&msg[..msg.len() - 3], &mut out).unwrap();
        let e = d.finish(&mut out).unwrap_err();
        assert!(e.message().contains("truncated"), "{e}");
        // Held plaintext over the bound.
        let small = EnvelopeConfig {
            max_buffered_plaintext: 1000,
            ..cfg.clone()
        };
        let (out, result) = push_decrypt(keyrings, &small, &msg, &mut chunker(5, 700));
        if suite.is_signed() {
            assert_eq!(result.unwrap_err().kind(), ErrorKind::LimitExceeded);
            assert!(out.is_empty());
        } else {
            result.unwrap();
            assert_eq!(out, pt);
        }
    }
}
