//! The security regression suite: one test per attack, named after the attack it stops. Each
//! counts the attempts it makes and checks every one is refused the right way, and prints
//! `assurance: attack <name>: tried N, rejected N` (run with `-- --nocapture`; the totals are
//! summed by `scripts/test-assurance`). The nonce test prints the number of (key, version, salt,
//! nonce) tuples it checked instead.
//!
//! Attacks that need an XKS proxy live beside the proxy, in `server/tests/xks_store.rs` (this
//! crate cannot depend on the server crate): `xks_store_outer_layer_swapped_to_another_external_key`
//! (a double-encrypted blob with another external key's wrapping, relabelled to another key, or
//! downgraded to one layer), `xks_store_proxy_answers_with_a_wrong_cdiv` and
//! `xks_store_proxy_answers_another_keys_ciphertext` (a hostile proxy); and in
//! `server/tests/xks_attacks.rs` for the proxy itself. The one here needs no proxy:
//! `double_encryption_claimed_for_a_keyplane_held_key`.
//!
//! Sizes: `KEYPLANE_NONCE_THREADS` (default 16) threads and `KEYPLANE_NONCE_MESSAGES` (default
//! 400,000) messages for the nonce test.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use keyplane_testkit::{
    child_test, ctx, decrypt, fork_round, fork_verdicts, new_key, new_key_of, Attack,
};

use keyplane::audit::{verify, AuditConfig, AuditLog, Verdict};
use keyplane::ciphertext::{self, HEADER_LEN};
use keyplane::key::{GrantOperation, MacAlgorithm, SigningAlgorithm};
use keyplane::{
    Caller, CreateGrantRequest, CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest,
    EncryptionContext, Engine, GenerateDataKeyRequest, GenerateMacRequest, KeySpec, KeyUsage,
    ReEncryptRequest, SignRequest, VerifyMacRequest, VerifyRequest,
};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
/// A principal of another account: the default key policy (the key's account) does not cover
/// her, so only grants give her anything.
const EVE: &str = "arn:aws:iam::444455556666:user/eve";

fn engine() -> Engine {
    Engine::builder().worker_threads(2).build().unwrap()
}

fn seal(
    engine: &Engine,
    key: &str,
    plaintext: &[u8],
    context: Option<&EncryptionContext>,
) -> Vec<u8> {
    let mut request = EncryptRequest::new(key, plaintext);
    request.encryption_context = context;
    engine.encrypt(&request).unwrap().ciphertext_blob
}

const BAD_CIPHERTEXT: &[&str] = &["InvalidCiphertextException"];

// ---- the ciphertext --------------------------------------------------------------------------

#[test]
fn ciphertext_tampering_is_detected() {
    let mut attack = Attack::new("ciphertext tampering (every bit of every byte)");
    let engine = engine();
    let key = new_key(&engine);
    let context = ctx(&[("tenant", "42"), ("purpose", "test")]);
    for len in [1usize, 17, 100] {
        let plaintext: Vec<u8> = (0..len as u8).collect();
        for context in [None, Some(&context)] {
            let blob = seal(&engine, &key, &plaintext, context);
            let mut changed = blob.clone();
            for byte in 0..blob.len() {
                for bit in 0..8 {
                    changed[byte] ^= 1 << bit;
                    attack.refused(
                        decrypt(&engine, &changed, context),
                        BAD_CIPHERTEXT,
                        "a bit flip",
                    );
                    changed[byte] ^= 1 << bit;
                }
            }
            assert_eq!(decrypt(&engine, &blob, context).unwrap(), plaintext);
        }
    }
}

#[test]
fn double_encryption_claimed_for_a_keyplane_held_key() {
    // A blob that claims the external key store construction (algorithm 2, a "wrapped secret"
    // the proxy would unwrap) for a key whose material keyplane holds: never opened under either
    // construction, whatever the wrapping says.
    let mut attack = Attack::new("double encryption claimed for a keyplane-held key");
    let engine = engine();
    let key = new_key(&engine);
    let blob = seal(&engine, &key, b"a keyplane-held secret", None);
    let (header, rest) = blob.split_at(HEADER_LEN);
    for wrapped_len in [1usize, 32, 60, 255] {
        let mut forged = header.to_vec();
        forged[1] = ciphertext::ALGORITHM_XKS_DOUBLE_ENCRYPTION;
        forged.push(wrapped_len as u8);
        forged.extend(std::iter::repeat_n(0x41, wrapped_len));
        forged.extend_from_slice(rest);
        attack.refused(
            decrypt(&engine, &forged, None),
            BAD_CIPHERTEXT,
            "a keyplane-held key's blob declared double-encrypted",
        );
    }
    assert_eq!(
        decrypt(&engine, &blob, None).unwrap(),
        b"a keyplane-held secret"
    );
}

#[test]
fn forged_wrapping_lengths_cannot_make_a_blob_claim_more_plaintext_than_it_carries() {
    // The C ABI sizes a decryption's output from the blob's own framing
    // (`ciphertext::plaintext_len_of`, behind `kp_blob_plaintext_len` and
    // `kp_decrypt_batch_sizes`): a blob whose length byte claims a wrapping longer than the blob,
    // none at all, or whose total is past the largest blob, must be no blob (no size, no panic,
    // no underflow), and every size it does give is what the blob's body holds.
    let mut attack = Attack::new("forged wrapping length in a double-encrypted blob's framing");
    let mut blob = vec![0u8; ciphertext::double_encrypted_blob_len(5, 40)];
    blob[0] = ciphertext::FORMAT_VERSION;
    blob[1] = ciphertext::ALGORITHM_XKS_DOUBLE_ENCRYPTION;
    for claimed in 0..=255u8 {
        blob[HEADER_LEN] = claimed;
        let size = ciphertext::plaintext_len_of(&blob);
        let fits = claimed != 0 && usize::from(claimed) < 40 + 5;
        if fits {
            // A shorter claim moves bytes from the body into the wrapping, never the reverse.
            assert_eq!(
                size,
                Some(5 + 40 - usize::from(claimed)),
                "claimed {claimed}"
            );
        } else {
            attack.judged(size.is_none(), "a wrapping length past the blob");
        }
    }
    for len in [0, 1, HEADER_LEN, HEADER_LEN + 1] {
        attack.judged(
            ciphertext::plaintext_len_of(&blob[..len.min(blob.len())]).is_none(),
            "a truncated double-encrypted blob",
        );
    }
    let mut long = vec![0u8; ciphertext::MAX_ANY_BLOB_LEN + 1];
    long[0] = ciphertext::FORMAT_VERSION;
    long[1] = ciphertext::ALGORITHM_XKS_DOUBLE_ENCRYPTION;
    long[HEADER_LEN] = 255;
    attack.judged(
        ciphertext::plaintext_len_of(&long).is_none(),
        "a blob longer than the largest",
    );
}

#[test]
fn xks_proxy_secret_with_an_embedded_nul_or_foreign_bytes() {
    // A C caller passes XksProxyAuthenticationCredential.RawSecretAccessKey as bytes and a
    // length: an embedded NUL (a C string cut short, or a length past its terminator), bytes
    // outside the model's alphabet, or a length past the model's 64 are refused with the
    // service's ValidationException before anything is stored or sent, and the message never
    // echoes the secret.
    let mut attack = Attack::new("XKS proxy secret with an embedded NUL or foreign bytes");
    let engine = engine();
    let good = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";
    let mut forged: Vec<Vec<u8>> = Vec::new();
    let mut nul = good.as_bytes().to_vec();
    nul[20] = 0;
    forged.push(nul);
    let mut terminated = good.as_bytes().to_vec();
    terminated.push(0);
    forged.push(terminated);
    let mut past = good.as_bytes().to_vec();
    past.extend_from_slice(b"\0garbage-after-the-terminator");
    forged.push(past);
    forged.push(format!("{good}\n").into_bytes());
    forged.push(vec![0xff; 48]);
    forged.push("A".repeat(65).into_bytes());
    for secret in forged {
        let shown = String::from_utf8_lossy(&secret[..20]).into_owned();
        let result = engine.create_custom_key_store(keyplane::CreateCustomKeyStoreRequest {
            custom_key_store_name: "attack".into(),
            custom_key_store_type: Some(keyplane::CustomKeyStoreType::ExternalKeyStore),
            xks_proxy_uri_endpoint: Some("https://proxy.example".into()),
            xks_proxy_uri_path: Some("/kms/xks/v1".into()),
            xks_proxy_authentication_credential: Some(keyplane::XksProxyCredential {
                access_key_id: "AKIAI2SFODNN7EXAMPLE".into(),
                raw_secret_access_key: keyplane::SecretBytes::from_vec(secret),
            }),
            ..Default::default()
        });
        if let Err(e) = &result {
            assert!(
                !e.to_string().contains(&shown),
                "the message echoes the secret: {e}"
            );
        }
        attack.refused(result, &["ValidationException"], "a malformed proxy secret");
    }
    assert!(engine
        .describe_custom_key_stores(None, None, None, None)
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn key_id_substitution_is_detected() {
    let mut attack = Attack::new("key id substitution");
    let engine = engine();
    let victim = new_key(&engine);
    let other = new_key(&engine);
    let blob = seal(&engine, &victim, b"the victim's secret", None);
    // The attacker can use `other`, not `victim`: a grant on `other` only.
    engine
        .create_grant(CreateGrantRequest {
            key_id: other.clone(),
            grantee_principal: EVE.into(),
            retiring_principal: None,
            operations: vec![GrantOperation::Decrypt],
            constraints: None,
            name: None,
        })
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let mut ids: Vec<[u8; 16]> = vec![*uuid::Uuid::parse_str(&other).unwrap().as_bytes()];
    ids.push(*uuid::Uuid::new_v4().as_bytes());
    ids.push([0; 16]);
    for id in ids {
        let mut forged = blob.clone();
        forged[2..18].copy_from_slice(&id);
        attack.refused(
            decrypt(&eve, &forged, None),
            BAD_CIPHERTEXT,
            "a blob re-labelled",
        );
        attack.refused(
            decrypt(&engine, &forged, None),
            BAD_CIPHERTEXT,
            "a blob re-labelled",
        );
    }
    // Eve cannot read the victim's blob as it is either.
    attack.refused(
        decrypt(&eve, &blob, None),
        &["AccessDeniedException"],
        "another key's blob",
    );
}

#[test]
fn key_version_substitution_is_detected() {
    let mut attack = Attack::new("key version substitution");
    let engine = engine();
    let key = new_key(&engine);
    let mut blobs = vec![seal(&engine, &key, b"version 1", None)];
    for v in 2..=4 {
        engine.rotate_key_on_demand(&key).unwrap();
        blobs.push(seal(&engine, &key, format!("version {v}").as_bytes(), None));
    }
    for (i, blob) in blobs.iter().enumerate() {
        let own = i as u32 + 1;
        assert_eq!(ciphertext::parse(blob).unwrap().key_version, own);
        for version in [0, 1, 2, 3, 4, 5, u32::MAX] {
            if version == own {
                continue;
            }
            let mut forged = blob.clone();
            forged[18..22].copy_from_slice(&version.to_be_bytes());
            attack.refused(
                decrypt(&engine, &forged, None),
                BAD_CIPHERTEXT,
                "a blob re-versioned",
            );
        }
        assert_eq!(
            decrypt(&engine, blob, None).unwrap(),
            format!("version {own}").as_bytes()
        );
    }
}

#[test]
fn encryption_context_swap_is_detected() {
    let mut attack = Attack::new("encryption context swap");
    let engine = engine();
    let key = new_key(&engine);
    let original = ctx(&[("tenant", "42"), ("ab", "c")]);
    let blob = seal(&engine, &key, b"tenant 42's data", Some(&original));
    let swaps = [
        ctx(&[("tenant", "43"), ("ab", "c")]),
        ctx(&[("tenant", "42")]),
        ctx(&[("tenant", "42"), ("ab", "c"), ("extra", "")]),
        ctx(&[("tenant", "42"), ("a", "bc")]),
        ctx(&[("Tenant", "42"), ("ab", "c")]),
        ctx(&[("tenant", "42 "), ("ab", "c")]),
        ctx(&[("tenant42", ""), ("ab", "c")]),
        EncryptionContext::new(),
    ];
    for swapped in &swaps {
        attack.refused(
            decrypt(&engine, &blob, Some(swapped)),
            BAD_CIPHERTEXT,
            "another context",
        );
    }
    attack.refused(decrypt(&engine, &blob, None), BAD_CIPHERTEXT, "no context");
    // And the other way: a blob made without a context does not open with one.
    let plain = seal(&engine, &key, b"no context", None);
    attack.refused(
        decrypt(&engine, &plain, Some(&original)),
        BAD_CIPHERTEXT,
        "an added context",
    );
    // ReEncrypt checks the source context the same way.
    let mut request = ReEncryptRequest::new(&blob, &key);
    request.source_encryption_context = Some(&swaps[0]);
    attack.refused(
        engine.re_encrypt(&request),
        BAD_CIPHERTEXT,
        "ReEncrypt with another context",
    );
    assert_eq!(
        decrypt(&engine, &blob, Some(&original)).unwrap(),
        b"tenant 42's data"
    );
}

#[test]
fn a_ciphertext_moved_to_another_key_is_detected() {
    let mut attack = Attack::new("ciphertext moved to another key");
    let engine = engine();
    let a = new_key(&engine);
    let b = new_key(&engine);
    engine.create_alias("alias/b", &b).unwrap();
    let blob_a = seal(&engine, &a, b"belongs to a", None);
    let blob_b = seal(&engine, &b, b"belongs to b", None);
    // The body and tag of a's blob under b's header.
    let mut moved = blob_b[..HEADER_LEN].to_vec();
    moved.extend_from_slice(&blob_a[HEADER_LEN..]);
    attack.refused(
        decrypt(&engine, &moved, None),
        BAD_CIPHERTEXT,
        "a's body under b's header",
    );
    // Naming the wrong key.
    for named in [
        b.clone(),
        "alias/b".into(),
        engine.key_arn(&uuid::Uuid::parse_str(&b).unwrap()),
    ] {
        let request = DecryptRequest::new(&blob_a).with_key_id(&named);
        attack.refused(
            engine.decrypt(&request),
            &["IncorrectKeyException"],
            "Decrypt naming b",
        );
        let mut re = ReEncryptRequest::new(&blob_a, &b);
        re.source_key_id = Some(&named);
        attack.refused(
            engine.re_encrypt(&re),
            &["IncorrectKeyException"],
            "ReEncrypt naming b",
        );
    }
    // A data key's blob, too.
    let data_key = engine
        .generate_data_key(&GenerateDataKeyRequest::new(&a, DataKeySpec::Aes256))
        .unwrap();
    let request = DecryptRequest::new(&data_key.ciphertext_blob).with_key_id(&b);
    attack.refused(
        engine.decrypt(&request),
        &["IncorrectKeyException"],
        "a data key under b",
    );
    // A blob of another engine (another key store) names a key this one does not have.
    let other_engine = self::engine();
    let foreign = seal(&other_engine, &new_key(&other_engine), b"elsewhere", None);
    attack.refused(
        decrypt(&engine, &foreign, None),
        BAD_CIPHERTEXT,
        "another engine's blob",
    );
    // A deleted key's blobs never open again.
    let doomed = new_key(&engine);
    let orphan = seal(&engine, &doomed, b"orphan", None);
    let clock = Arc::new(keyplane::ManualClock::starting_now());
    let timed = Engine::builder()
        .clock(Arc::clone(&clock) as Arc<dyn keyplane::Clock>)
        .build()
        .unwrap();
    let gone = new_key(&timed);
    let gone_blob = seal(&timed, &gone, b"gone", None);
    timed.schedule_key_deletion(&gone, Some(7)).unwrap();
    clock.advance_days(8);
    timed.run_due_tasks().unwrap();
    attack.refused(
        decrypt(&timed, &gone_blob, None),
        BAD_CIPHERTEXT,
        "a deleted key's blob",
    );
    assert_eq!(decrypt(&engine, &orphan, None).unwrap(), b"orphan");
}

// ---- nonces and wear-out ---------------------------------------------------------------------

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (key id, key version, salt, nonce) of a blob: what must never repeat.
fn nonce_of(blob: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(&blob[2..66]);
    out
}

#[test]
fn nonce_reuse_under_heavy_parallel_load_never_happens() {
    let threads = env_number("KEYPLANE_NONCE_THREADS", 16);
    let messages = env_number("KEYPLANE_NONCE_MESSAGES", 400_000);
    // A small derived-key limit makes sessions roll over constantly, in every thread.
    let engine = Engine::builder()
        .worker_threads(4)
        .messages_per_derived_key(997)
        .build()
        .unwrap();
    let keys: Vec<String> = (0..3).map(|_| new_key(&engine)).collect();
    engine.rotate_key_on_demand(&keys[0]).unwrap();
    let per_thread = messages.div_ceil(threads);
    let started = Instant::now();
    let collected: Vec<Vec<[u8; 64]>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, keys) = (&engine, &keys);
                scope.spawn(move || {
                    let mut seen = Vec::with_capacity(per_thread);
                    let plaintext = [t as u8; 24];
                    let mut i = 0;
                    while seen.len() < per_thread {
                        let key = &keys[(t + i) % keys.len()];
                        match i % 4 {
                            // Batches large enough to spread over the pool.
                            0 => {
                                let n = 300.min(per_thread - seen.len());
                                let requests = vec![EncryptRequest::new(key, &plaintext); n];
                                for blob in engine.encrypt_batch(&requests) {
                                    seen.push(nonce_of(&blob.unwrap()));
                                }
                            }
                            1 => {
                                let request = GenerateDataKeyRequest::new(key, DataKeySpec::Aes256);
                                let n = 64.min(per_thread - seen.len());
                                for k in engine.generate_data_key_batch(&vec![request; n]) {
                                    seen.push(nonce_of(&k.unwrap().ciphertext_blob));
                                }
                            }
                            2 => {
                                let blob = seal(engine, key, &plaintext, None);
                                seen.push(nonce_of(&blob));
                                let moved = engine
                                    .re_encrypt(&ReEncryptRequest::new(&blob, &keys[0]))
                                    .unwrap();
                                seen.push(nonce_of(&moved.ciphertext_blob));
                            }
                            _ => seen.push(nonce_of(&seal(engine, key, &plaintext, None))),
                        }
                        i += 1;
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = collected.iter().map(Vec::len).sum();
    let mut unique = HashSet::with_capacity(total);
    let mut duplicates = 0u64;
    for nonce in collected.iter().flatten() {
        if !unique.insert(*nonce) {
            duplicates += 1;
        }
    }
    let salts: HashSet<&[u8]> = collected.iter().flatten().map(|n| &n[20..52]).collect();
    println!(
        "assurance: nonces checked: {total} (key, version, salt, nonce) tuples from {threads} \
         threads, {} salts, {duplicates} duplicates, in {:.1} s",
        salts.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(duplicates, 0, "a (salt, nonce) pair was used twice");
}

#[test]
fn key_wear_out_past_the_documented_bound_is_prevented() {
    let mut attack = Attack::new("key wear-out past the documented bound");
    // The documented bound: 2^32 messages per derived key, and never more than configured.
    assert_eq!(
        keyplane::EngineConfig::default().messages_per_derived_key,
        1u64 << 32
    );
    assert_eq!(
        keyplane::dataplane::MAX_MESSAGES_PER_DERIVED_KEY,
        1u64 << 32
    );
    let zero = Engine::builder().messages_per_derived_key(0).build();
    attack.refused(zero, &["ValidationException"], "a derived-key limit of 0");
    for limit in [1u64, 7, 100] {
        let engine = Engine::builder()
            .worker_threads(2)
            .messages_per_derived_key(limit)
            .build()
            .unwrap();
        let key = new_key(&engine);
        let blobs: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (engine, key) = (&engine, &key);
                    scope.spawn(move || {
                        let requests = vec![EncryptRequest::new(key, b"wear"); 250];
                        engine
                            .encrypt_batch(&requests)
                            .into_iter()
                            .map(|r| r.unwrap().into_vec())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut per_salt: HashMap<Vec<u8>, Vec<u64>> = HashMap::new();
        for blob in &blobs {
            let parsed = ciphertext::parse(blob).unwrap();
            let counter = u64::from_be_bytes(parsed.nonce[4..].try_into().unwrap());
            assert_eq!(&parsed.nonce[..4], &[0; 4]);
            per_salt
                .entry(parsed.salt.to_vec())
                .or_default()
                .push(counter);
        }
        for counters in per_salt.values_mut() {
            // No derived key encrypts more than the limit, and its counters never repeat.
            attack.judged(
                counters.len() as u64 <= limit,
                "a derived key over its limit",
            );
            counters.sort_unstable();
            counters.dedup();
            attack.judged(
                counters.iter().all(|&c| c < limit),
                "a counter past the limit",
            );
        }
        let used: usize = per_salt.values().map(Vec::len).sum();
        assert_eq!(used, blobs.len(), "a counter repeated under one salt");
        assert!(per_salt.len() as u64 >= blobs.len() as u64 / limit);
        // Every blob still decrypts.
        for blob in blobs.iter().step_by(37) {
            assert_eq!(decrypt(&engine, blob, None).unwrap(), b"wear");
        }
    }
}

// ---- recycled output buffers (issue 14) ------------------------------------------------------

/// The allocating batch calls hand out buffers that earlier results gave back. Attack: read one
/// caller's plaintext through a later result that lands in the same buffer: a shorter plaintext
/// of the same size class, a ciphertext, or a "zeroed" secret, on the thread that dropped the
/// plaintexts and on a helper thread that did not.
#[test]
fn a_recycled_buffer_never_shows_an_earlier_result() {
    const SECRET: u8 = 0x5a;
    let engine = engine();
    let key = new_key(&engine);
    // 4,096 and 3,900 bytes round to the same class of kept buffers, and so does the blob of
    // 3,900: the ciphertexts take the buffers the plaintexts gave back.
    let secrets = vec![vec![SECRET; 4_096]; 64];
    let shorter = vec![vec![0x11u8; 3_900]; 64];
    let seal_all = |messages: &[Vec<u8>]| -> Vec<Vec<u8>> {
        let requests: Vec<EncryptRequest<'_>> = messages
            .iter()
            .map(|m| EncryptRequest::new(&key, m))
            .collect();
        engine
            .encrypt_batch(&requests)
            .into_iter()
            .map(|r| r.unwrap().into_vec())
            .collect()
    };
    let open_all = |blobs: &[Vec<u8>]| -> Vec<keyplane::SecretBytes> {
        let requests: Vec<DecryptRequest<'_>> =
            blobs.iter().map(|b| DecryptRequest::new(b)).collect();
        engine
            .decrypt_batch(&requests)
            .into_iter()
            .map(Result::unwrap)
            .collect()
    };
    let (secret_blobs, shorter_blobs) = (seal_all(&secrets), seal_all(&shorter));
    let mut attack = Attack::new("recycled buffers");
    for round in 0..4 {
        let opened = open_all(&secret_blobs);
        assert!(opened.iter().all(|p| p.expose() == &secrets[0][..]));
        drop(opened); // every plaintext buffer goes back to its pool

        for plaintext in open_all(&shorter_blobs) {
            let exact = plaintext.expose() == &shorter[0][..];
            attack.judged(
                exact,
                &format!("round {round}: a shorter plaintext in a kept buffer"),
            );
        }
        drop(open_all(&secret_blobs));
        for zeroed in (0..64).map(|_| keyplane::SecretBytes::zeroed(4_096)) {
            let zero = zeroed.expose().iter().all(|&b| b == 0);
            attack.judged(
                zero,
                &format!("round {round}: SecretBytes::zeroed in a kept buffer"),
            );
        }
        drop(open_all(&secret_blobs));
        let requests: Vec<EncryptRequest<'_>> = shorter
            .iter()
            .map(|m| EncryptRequest::new(&key, m))
            .collect();
        for blob in engine.encrypt_batch(&requests) {
            let blob = blob.unwrap();
            let clean = blob.len() == ciphertext::blob_len(3_900)
                && !blob.windows(64).any(|w| w.iter().all(|&b| b == SECRET))
                && engine
                    .decrypt(&DecryptRequest::new(&blob))
                    .is_ok_and(|d| d.plaintext.expose() == &shorter[0][..]);
            attack.judged(
                clean,
                &format!("round {round}: a ciphertext in a kept buffer"),
            );
        }
    }
}

// ---- The kept buffers across fork ------------------------------------------------------------

/// Forks in `a_forked_child_neither_reads_nor_waits_on_its_parents_kept_buffers`, one a round.
const POOL_FORK_ROUNDS: usize = 64;
const POOL_FORK_ENV: &str = "KEYPLANE_POOL_FORK_CHILD";
const POOL_FORK_MARK: &str = "POOLFORK ";
/// What a forked child's exit status says, by code (0: every result was what it should be).
const POOL_FORK_VERDICTS: [&str; 5] = [
    "clean",
    "a shorter plaintext in a kept buffer was not exactly itself",
    "SecretBytes::zeroed in a kept buffer was not all zeros",
    "a ciphertext in a kept buffer held the parent's plaintext or did not open",
    "the child panicked",
];

/// A copy of the process made by `fork` inherits the pool of kept buffers: the shared shelves,
/// the forking thread's stash, plaintexts the parent still holds (which the child drops into its
/// own pool), and any shelf another thread held locked at the instant of the fork, whose holder
/// does not exist in the child. Attack: fork while another thread opens and drops plaintexts as
/// fast as it can, then in the child read the parent's plaintexts through the child's own
/// results (a shorter plaintext, `SecretBytes::zeroed`, a ciphertext), or hang the child on a
/// lock no thread will release. A child that has not exited 30 s after its fork counts as hung.
///
/// The hang is caught here only by chance: the other thread holds a shelf's lock for a few
/// nanoseconds per buffer, and with blocking locks in the pool 200 forks did not land in one in
/// two runs. The unit test `a_class_in_use_is_passed_by_without_waiting` (`recycled_buffers.rs`) holds a lock
/// and checks that the pool passes it by, which is what a child sees of a lock held at the fork.
#[test]
fn a_forked_child_neither_reads_nor_waits_on_its_parents_kept_buffers() {
    let mut attack = Attack::new("a forked child and its parent's kept buffers");
    judge_fork_rounds(
        &mut attack,
        "pool_fork_child_entry",
        POOL_FORK_ENV,
        POOL_FORK_MARK,
        POOL_FORK_ROUNDS,
        POOL_FORK_VERDICTS[0],
    );
}

/// Runs the fork scenario `entry` in a child test process (with `env` set) and judges the
/// verdict it printed after `mark` for each of its `rounds` forks: only `clean` passes.
fn judge_fork_rounds(
    attack: &mut Attack,
    entry: &str,
    env: &str,
    mark: &str,
    rounds: usize,
    clean: &str,
) {
    let verdicts = fork_verdicts(child_test(entry).env(env, "1"), mark, rounds);
    for (round, verdict) in verdicts.iter().enumerate() {
        attack.judged(verdict == clean, &format!("fork {round}: {verdict}"));
    }
}

/// Forks `rounds` times while another thread runs `other` without pause. Before each fork this
/// thread runs `prepare(round)`, and waits a little (varied, to move the instant of the fork
/// against the other thread's loop); the child runs `checks` on what `prepare` gave
/// ([`fork_round`]). Prints each round's verdict after `mark`.
fn fork_rounds_beside<T>(
    other: impl Fn() + Sync,
    rounds: usize,
    mark: &str,
    verdicts: &[&str],
    mut prepare: impl FnMut(usize) -> T,
    checks: impl Fn(T) -> u8,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                other();
            }
        });
        // Stops the other thread however this one leaves the scope (a failed assertion too).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        for round in 0..rounds {
            let prepared = prepare(round);
            std::thread::sleep(std::time::Duration::from_micros(37 * (round % 8) as u64));
            let verdict = fork_round(verdicts, || checks(prepared));
            println!("{mark}{verdict}");
            std::io::stdout().flush().unwrap();
        }
    });
}

/// The entry point of the kept buffers' fork scenario (started by the test above with
/// `--ignored`); ignored, and idle, in a normal test run.
#[test]
#[ignore = "the kept buffers' fork scenario, started by its test"]
fn pool_fork_child_entry() {
    if std::env::var(POOL_FORK_ENV).is_err() {
        return;
    }
    let engine = engine();
    let key = new_key(&engine);
    let scenario = PoolForkScenario::new(&engine, &key);
    fork_rounds_beside(
        // The other thread opens and drops plaintexts, so that at the instant of a fork it is
        // often inside the pool, holding a shelf's lock.
        || drop(scenario.open_secrets()),
        POOL_FORK_ROUNDS,
        POOL_FORK_MARK,
        &POOL_FORK_VERDICTS,
        // Three batches of the parent's plaintexts, held across the fork: the child drops one
        // before each of its three kinds of result.
        |_| [(); 3].map(|()| scenario.open_secrets()),
        |held| scenario.child_checks(held),
    );
}

/// The scenario's messages and blobs: 64 plaintexts of 4,096 bytes (the secrets) and 64 of 3,900,
/// which fall in the same class of kept buffers, as does the blob of 3,900.
struct PoolForkScenario<'e> {
    engine: &'e Engine,
    key: &'e str,
    secret_blobs: Vec<Vec<u8>>,
    shorter: Vec<u8>,
    shorter_blobs: Vec<Vec<u8>>,
}

const POOL_FORK_SECRET: u8 = 0x5a;

impl<'e> PoolForkScenario<'e> {
    fn new(engine: &'e Engine, key: &'e str) -> Self {
        let seal_all = |message: &[u8]| -> Vec<Vec<u8>> {
            let requests = vec![EncryptRequest::new(key, message); 64];
            engine
                .encrypt_batch(&requests)
                .into_iter()
                .map(|r| r.unwrap().into_vec())
                .collect()
        };
        let shorter = vec![0x11u8; 3_900];
        PoolForkScenario {
            engine,
            key,
            secret_blobs: seal_all(&[POOL_FORK_SECRET; 4_096]),
            shorter_blobs: seal_all(&shorter),
            shorter,
        }
    }

    fn open(&self, blobs: &[Vec<u8>]) -> Vec<keyplane::Result<keyplane::SecretBytes>> {
        let requests: Vec<DecryptRequest<'_>> =
            blobs.iter().map(|b| DecryptRequest::new(b)).collect();
        self.engine.decrypt_batch(&requests)
    }

    fn open_secrets(&self) -> Vec<keyplane::SecretBytes> {
        let opened: Vec<_> = self
            .open(&self.secret_blobs)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(opened
            .iter()
            .all(|p| p.expose() == &[POOL_FORK_SECRET; 4_096][..]));
        opened
    }

    /// In the forked child: drops the parent's plaintexts a batch at a time, and after each
    /// checks one kind of result in the buffers they gave back. The code of the first failure
    /// (an index into [`POOL_FORK_VERDICTS`]), or 0.
    fn child_checks(&self, held: [Vec<keyplane::SecretBytes>; 3]) -> u8 {
        let [first, second, third] = held;
        drop(first);
        let exact = self
            .open(&self.shorter_blobs)
            .iter()
            .all(|p| p.as_ref().is_ok_and(|p| p.expose() == &self.shorter[..]));
        if !exact {
            return 1;
        }
        drop(second);
        let zeroed = (0..64)
            .map(|_| keyplane::SecretBytes::zeroed(4_096))
            .collect::<Vec<_>>();
        if !zeroed.iter().all(|z| z.expose().iter().all(|&b| b == 0)) {
            return 2;
        }
        drop(third);
        let requests = vec![EncryptRequest::new(self.key, &self.shorter); 64];
        let clean = self.engine.encrypt_batch(&requests).iter().all(|blob| {
            blob.as_ref().is_ok_and(|blob| {
                blob.len() == ciphertext::blob_len(self.shorter.len())
                    && !blob
                        .windows(64)
                        .any(|w| w.iter().all(|&b| b == POOL_FORK_SECRET))
                    && self
                        .engine
                        .decrypt(&DecryptRequest::new(blob))
                        .is_ok_and(|d| d.plaintext.expose() == &self.shorter[..])
            })
        });
        if !clean {
            return 3;
        }
        0
    }
}

// ---- The control lock across fork ---------------------------------------------------------------

const CONTROL_FORK_ENV: &str = "KEYPLANE_CONTROL_FORK_CHILD";
const CONTROL_FORK_MARK: &str = "CONTROLFORK ";
const CONTROL_FORK_ROUNDS: usize = 24;
/// What a forked child of an in-memory engine whose control lock another thread takes without
/// pause saw, by its exit code: the first two are both right, by the instant of the fork.
const CONTROL_FORK_VERDICTS: [&str; 5] = [
    "CreateKey served (the lock was free at the fork), Encrypt served",
    "CreateKey refused at once naming the fork (a parent's thread held the lock), Encrypt served",
    "CreateKey failed otherwise",
    "Encrypt failed",
    "panicked",
];

/// An engine on the in-memory store may use its control plane in a copy made by `fork` (the
/// copy's store is its own), but the copy has only the thread that forked: a control lock that
/// another of the parent's threads held at that instant is never let go. The child's CreateKey
/// must be served, or refused at once naming the fork, never wait for ever; its data plane
/// serves it either way.
#[test]
fn a_forked_child_is_told_its_control_lock_was_held_by_its_parent() {
    let verdicts = fork_verdicts(
        child_test("control_fork_child_entry").env(CONTROL_FORK_ENV, "1"),
        CONTROL_FORK_MARK,
        CONTROL_FORK_ROUNDS,
    );
    judge_lock_forks(
        "a forked child and its parent's control lock",
        &verdicts,
        &CONTROL_FORK_VERDICTS,
    );
}

/// Judges the rounds of a lock's fork scenario whose verdicts list two right answers first (the
/// lock was free at the fork and taken; a parent's thread held it and it was refused at once):
/// every round must give one of them, and some round the second, since the other thread holds
/// the lock most of the time (or the test tried nothing).
fn judge_lock_forks(attack: &'static str, verdicts: &[String], listed: &[&str]) {
    let mut attack = Attack::new(attack);
    for (round, verdict) in verdicts.iter().enumerate() {
        attack.judged(
            listed[..2].contains(&verdict.as_str()),
            &format!("fork {round}: {verdict}"),
        );
    }
    let held = verdicts.iter().filter(|v| **v == listed[1]).count();
    assert!(held > 0, "no fork caught the lock held: {verdicts:?}");
}

/// The entry point of the control lock's fork scenario (started by the test above with
/// `--ignored`); ignored, and idle, in a normal test run.
#[test]
#[ignore = "the control lock's fork scenario, started by its test"]
fn control_fork_child_entry() {
    if std::env::var(CONTROL_FORK_ENV).is_err() {
        return;
    }
    let engine = engine();
    let key = new_key(&engine);
    let busy = new_key(&engine);
    fork_rounds_beside(
        // Another thread changes a key without pause: the control lock is held most of the time.
        || {
            engine
                .update_key_description(&busy, "changed again")
                .unwrap();
        },
        CONTROL_FORK_ROUNDS,
        CONTROL_FORK_MARK,
        &CONTROL_FORK_VERDICTS,
        |_| (),
        |()| {
            let served = match engine.create_key(CreateKeyRequest::default()) {
                Ok(_) => 0,
                Err(e)
                    if e.kind() == keyplane::ErrorKind::Internal
                        && e.message().contains("fork") =>
                {
                    1
                }
                Err(_) => return 2,
            };
            if engine.encrypt(&EncryptRequest::new(&key, b"mine")).is_err() {
                return 3;
            }
            served
        },
    );
}

// ---- A process lock across fork ----------------------------------------------------------------

const PROCESS_LOCK_FORK_ENV: &str = "KEYPLANE_PROCESS_LOCK_FORK_CHILD";
const PROCESS_LOCK_FORK_MARK: &str = "PROCESSLOCKFORK ";
const PROCESS_LOCK_FORK_ROUNDS: usize = 24;
/// What a forked child whose parent's other thread takes a [`keyplane::fork::ProcessLock`]
/// without pause saw, by its exit code: the first two are both right, by the instant of the fork.
const PROCESS_LOCK_FORK_VERDICTS: [&str; 5] = [
    "taken (free at the fork), and taken again after it was let go",
    "refused at once with HeldAtFork (a parent's thread held it), as every later try",
    "refused once, then taken",
    "taken, then refused",
    "panicked",
];

/// Process-wide state a copy made by `fork` reaches on its own (a PKCS#11 module's table in
/// `keyplane-pkcs11`, which an engine started in the copy connects through) sits behind a
/// [`keyplane::fork::ProcessLock`]: a lock that another of the parent's threads held at the fork
/// must be refused at once in the copy, never waited for (a `std::sync::Mutex` there waits for
/// ever), and one that was free must be the copy's to take.
#[test]
fn a_forked_child_is_told_a_process_lock_was_held_by_its_parent() {
    let verdicts = fork_verdicts(
        child_test("process_lock_fork_child_entry").env(PROCESS_LOCK_FORK_ENV, "1"),
        PROCESS_LOCK_FORK_MARK,
        PROCESS_LOCK_FORK_ROUNDS,
    );
    judge_lock_forks(
        "a forked child and its parent's process lock",
        &verdicts,
        &PROCESS_LOCK_FORK_VERDICTS,
    );
}

/// The entry point of the process lock's fork scenario (started by the test above with
/// `--ignored`); ignored, and idle, in a normal test run.
#[test]
#[ignore = "the process lock's fork scenario, started by its test"]
fn process_lock_fork_child_entry() {
    if std::env::var(PROCESS_LOCK_FORK_ENV).is_err() {
        return;
    }
    use keyplane::fork::{HeldAtFork, ProcessLock};
    static LOCK: ProcessLock<u64> = ProcessLock::new(0);
    fork_rounds_beside(
        // Another thread holds the lock for a while, lets go and takes it again at once.
        || {
            let mut held = LOCK.lock().unwrap();
            *held += 1;
            std::thread::sleep(std::time::Duration::from_micros(200));
        },
        PROCESS_LOCK_FORK_ROUNDS,
        PROCESS_LOCK_FORK_MARK,
        &PROCESS_LOCK_FORK_VERDICTS,
        |_| (),
        |()| {
            let first = LOCK.lock().map(|mut held| *held += 1);
            let second = LOCK.lock().map(|mut held| *held += 1);
            match (first, second) {
                (Ok(()), Ok(())) => 0,
                (Err(HeldAtFork), Err(HeldAtFork)) => 1,
                (Err(_), Ok(())) => 2,
                (Ok(()), Err(_)) => 3,
            }
        },
    );
}

// ---- The audit log across fork ----------------------------------------------------------------

const AUDIT_FORK_ENV: &str = "KEYPLANE_AUDIT_FORK_CHILD";
const AUDIT_FORK_MARK: &str = "AUDITFORK ";
const AUDIT_FORK_ROUNDS: usize = 3;
/// What a forked child of an audited engine saw, by its exit code.
const AUDIT_FORK_VERDICTS: [&str; 5] = [
    "refused at once with AuditUnavailable, and let go of the engine",
    "Encrypt was not refused with AuditUnavailable naming the fork",
    "CreateKey was not refused with AuditUnavailable",
    "an Encrypt batch was not refused item by item with AuditUnavailable",
    "panicked",
];

#[test]
fn a_forked_child_neither_waits_on_nor_writes_its_parents_audit_log() {
    // Before the fix every call of the child waited for ever on the parent's writer thread,
    // which a copy made by fork does not have (Python's multiprocessing, a prefork server).
    let mut attack = Attack::new("a forked child and its parent's audit log");
    judge_fork_rounds(
        &mut attack,
        "audit_fork_child_entry",
        AUDIT_FORK_ENV,
        AUDIT_FORK_MARK,
        AUDIT_FORK_ROUNDS,
        AUDIT_FORK_VERDICTS[0],
    );
}

/// The entry point of the audit log's fork scenario (started by the test above with
/// `--ignored`); ignored, and idle, in a normal test run. Each round forks from an audited
/// engine that has just recorded requests; after the rounds, the parent's log must verify and
/// hold only the parent's records.
#[test]
#[ignore = "the audit log's fork scenario, started by its test"]
fn audit_fork_child_entry() {
    if std::env::var(AUDIT_FORK_ENV).is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (signing_key, public) = keyplane_testkit::audit_signing_key();
    let engine = Engine::builder()
        .worker_threads(2)
        .audit(AuditConfig::new(&path), signing_key)
        .build()
        .unwrap();
    let key = new_key(&engine);
    // The child takes the engine out and drops it: dropping must not wait either.
    let held = std::sync::Mutex::new(Some(engine));
    let refused = |result: Result<(), keyplane::Error>| {
        result.is_err_and(|e| e.kind() == keyplane::ErrorKind::AuditUnavailable)
    };
    let mut parent_calls = 1; // CreateKey
    for _ in 0..AUDIT_FORK_ROUNDS {
        {
            let guard = held.lock().unwrap();
            let engine = guard.as_ref().unwrap();
            seal(engine, &key, b"the parent's", None);
            parent_calls += 1;
        }
        let verdict = fork_round(&AUDIT_FORK_VERDICTS, || {
            let engine = held.lock().unwrap().take().unwrap();
            let encrypt = engine.encrypt(&EncryptRequest::new(&key, b"the child's"));
            let named_fork = encrypt
                .as_ref()
                .is_err_and(|e| e.message().contains("fork"));
            if !refused(encrypt.map(|_| ())) || !named_fork {
                return 1;
            }
            if !refused(engine.create_key(CreateKeyRequest::default()).map(|_| ())) {
                return 2;
            }
            let batch = engine.encrypt_batch(&vec![EncryptRequest::new(&key, b"x"); 300]);
            if !batch.into_iter().all(|item| refused(item.map(|_| ()))) {
                return 3;
            }
            drop(engine);
            0
        });
        println!("{AUDIT_FORK_MARK}{verdict}");
        std::io::stdout().flush().unwrap();
    }
    let engine = held.into_inner().unwrap().unwrap();
    seal(&engine, &key, b"the parent's, after", None);
    parent_calls += 1;
    drop(engine);
    let report = verify(&path, &public).unwrap();
    assert_eq!(report.verdict(), Verdict::Intact, "{report:?}");
    assert_eq!(
        report.records, parent_calls,
        "only the parent's requests are recorded"
    );
}

// ---- A thread's working HMAC context across fork --------------------------------------------

/// Forks in `a_forked_child_macs_in_contexts_of_its_own`, one a round.
const MAC_FORK_ROUNDS: usize = 32;
const MAC_FORK_ENV: &str = "KEYPLANE_MAC_FORK_CHILD";
const MAC_FORK_MARK: &str = "MACFORK ";
/// What a forked child's exit status says, by code (0: every MAC was what it should be).
const MAC_FORK_VERDICTS: [&str; 4] = [
    "clean",
    "a single MAC differed from RustCrypto's HMAC-SHA-256 of the imported material",
    "a MAC of a batch differed from RustCrypto's HMAC-SHA-256 of the imported material",
    "the child panicked",
];
/// The messages each forked child MACs in one batch (the first also alone).
const MAC_FORK_MESSAGES: usize = 300;

/// Each thread keeps its working HMAC context from one chunk of MACs to the next (wiped while it
/// waits), and a copy made by `fork` inherits them all: the forking thread's, its helpers', and
/// the one another thread was using at the instant of the fork, keyed with that thread's key,
/// in a child where that thread does not exist. Attack: fork while another thread computes MACs
/// under another key without pause (single and in batches spread over the pool), just after the
/// forking thread computed one; in the child, MAC under a key whose material the test imported,
/// alone and in a batch of 300, and compare every MAC with RustCrypto's HMAC of that material.
/// The child must exit within 30 s (a context or slot left half-taken at the fork would hang or
/// corrupt it). Whether its key memory is locked again is
/// `a_forked_child_uses_fresh_sessions_and_locks_its_key_memory_again`'s to check: under
/// AddressSanitizer, where this scenario runs too, `mlock` does nothing.
#[test]
fn a_forked_child_macs_in_contexts_of_its_own() {
    let mut attack = Attack::new("a forked child and its parent's working HMAC contexts");
    judge_fork_rounds(
        &mut attack,
        "mac_fork_child_entry",
        MAC_FORK_ENV,
        MAC_FORK_MARK,
        MAC_FORK_ROUNDS,
        MAC_FORK_VERDICTS[0],
    );
}

/// The entry point of the HMAC contexts' fork scenario (started by the test above with
/// `--ignored`); ignored, and idle, in a normal test run.
#[test]
#[ignore = "the HMAC contexts' fork scenario, started by its test"]
fn mac_fork_child_entry() {
    use hmac::Mac as _;
    if std::env::var(MAC_FORK_ENV).is_err() {
        return;
    }
    let engine = engine();
    // A key whose material the test knows, imported as a user's tool would wrap it.
    let material: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let known = engine
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::Hmac256),
            key_usage: Some(KeyUsage::GenerateVerifyMac),
            origin: Some(keyplane::Origin::External),
            ..CreateKeyRequest::default()
        })
        .unwrap()
        .key_id;
    let params = engine
        .get_parameters_for_import(
            &known,
            keyplane::WrappingAlgorithm::RsaesOaepSha256,
            keyplane::WrappingKeySpec::Rsa2048,
        )
        .unwrap();
    let wrapped = oaep_wrap(&params.public_key, &material);
    engine
        .import_key_material(&import_request(&known, &params.import_token, &wrapped))
        .unwrap();
    let other = new_key_of(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let messages: Vec<Vec<u8>> = (0..MAC_FORK_MESSAGES)
        .map(|i| format!("message {i:04} for the forked child").into_bytes())
        .collect();
    let expected: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&material).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        })
        .collect();
    let mac_of = |key: &str, message: &[u8]| {
        engine.generate_mac(&GenerateMacRequest {
            key_id: key,
            message,
            mac_algorithm: MacAlgorithm::HmacSha256,
        })
    };
    let other_batch: Vec<GenerateMacRequest<'_>> = messages
        .iter()
        .map(|m| GenerateMacRequest {
            key_id: &other,
            message: m,
            mac_algorithm: MacAlgorithm::HmacSha256,
        })
        .collect();
    fork_rounds_beside(
        // The other thread MACs under the other key, so that at the instant of a fork its
        // context (or a helper's) is often keyed and in use.
        || {
            mac_of(&other, b"the other thread's message").unwrap();
            assert!(engine
                .generate_mac_batch(&other_batch)
                .iter()
                .all(Result::is_ok));
        },
        MAC_FORK_ROUNDS,
        MAC_FORK_MARK,
        &MAC_FORK_VERDICTS,
        // This thread's own context last held the other key's state before it was wiped.
        |_| mac_of(&other, b"the forking thread's message").unwrap(),
        |_| {
            if !mac_of(&known, &messages[0]).is_ok_and(|r| r.mac == expected[0]) {
                return 1;
            }
            let requests: Vec<GenerateMacRequest<'_>> = messages
                .iter()
                .map(|m| GenerateMacRequest {
                    key_id: &known,
                    message: m,
                    mac_algorithm: MacAlgorithm::HmacSha256,
                })
                .collect();
            let macs = engine.generate_mac_batch(&requests);
            let all_right = macs.len() == expected.len()
                && macs
                    .iter()
                    .zip(&expected)
                    .all(|(mac, expected)| mac.as_ref().is_ok_and(|mac| mac[..] == expected[..]));
            if all_right {
                0
            } else {
                2
            }
        },
    );
}

// ---- MACs and signatures ---------------------------------------------------------------------

#[test]
fn mac_forgery_by_bit_flips_is_rejected() {
    let mut attack = Attack::new("MAC forgery by bit flips");
    let engine = engine();
    let message = b"pay 100 to alice, reference 0042";
    for (spec, algorithm) in [
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224),
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512),
    ] {
        let create = |engine: &Engine| new_key_of(engine, spec, KeyUsage::GenerateVerifyMac);
        let key = create(&engine);
        let mac = engine
            .generate_mac(&GenerateMacRequest {
                key_id: &key,
                message,
                mac_algorithm: algorithm,
            })
            .unwrap()
            .mac;
        let verify = |message: &[u8], mac: &[u8]| {
            engine.verify_mac(&VerifyMacRequest {
                key_id: &key,
                message,
                mac,
                mac_algorithm: algorithm,
            })
        };
        verify(message, &mac).unwrap();
        let invalid = &["KMSInvalidMacException"];
        let mut forged = mac.clone();
        for bit in 0..mac.len() * 8 {
            forged[bit / 8] ^= 1 << (bit % 8);
            attack.refused(verify(message, &forged), invalid, "a MAC bit flip");
            forged[bit / 8] ^= 1 << (bit % 8);
        }
        let mut changed = message.to_vec();
        for bit in 0..message.len() * 8 {
            changed[bit / 8] ^= 1 << (bit % 8);
            attack.refused(verify(&changed, &mac), invalid, "a message bit flip");
            changed[bit / 8] ^= 1 << (bit % 8);
        }
        for len in 0..mac.len() {
            attack.refused(
                verify(message, &mac[..len]),
                &["KMSInvalidMacException", "ValidationException"],
                "a truncated MAC",
            );
        }
        let mut longer = mac.clone();
        longer.push(0);
        attack.refused(verify(message, &longer), invalid, "an extended MAC");
        let other = create(&engine);
        let other_mac = engine
            .generate_mac(&GenerateMacRequest {
                key_id: &other,
                message,
                mac_algorithm: algorithm,
            })
            .unwrap()
            .mac;
        attack.refused(verify(message, &other_mac), invalid, "another key's MAC");
    }
}

#[test]
fn signature_forgery_by_bit_flips_is_rejected() {
    let mut attack = Attack::new("signature forgery by bit flips");
    let engine = engine();
    let message = b"release build 1.2.3, sha256 of the artefact";
    for (spec, algorithm) in [
        (KeySpec::EccNistP256, SigningAlgorithm::EcdsaSha256),
        (
            KeySpec::EccNistEdwards25519,
            SigningAlgorithm::Ed25519Sha512,
        ),
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPssSha256),
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha256),
    ] {
        let key = new_key_of(&engine, spec, KeyUsage::SignVerify);
        let signature = engine
            .sign(&SignRequest::new(&key, message, algorithm))
            .unwrap()
            .signature;
        let verify = |message: &[u8], signature: &[u8]| {
            engine.verify(&VerifyRequest {
                key_id: &key,
                message,
                message_type: keyplane::MessageType::Raw,
                signature,
                signing_algorithm: algorithm,
            })
        };
        verify(message, &signature).unwrap();
        let invalid = &["KMSInvalidSignatureException"];
        let mut forged = signature.clone();
        for bit in 0..signature.len() * 8 {
            forged[bit / 8] ^= 1 << (bit % 8);
            attack.refused(verify(message, &forged), invalid, "a signature bit flip");
            forged[bit / 8] ^= 1 << (bit % 8);
        }
        let mut changed = message.to_vec();
        for bit in 0..changed.len() * 8 {
            changed[bit / 8] ^= 1 << (bit % 8);
            attack.refused(verify(&changed, &signature), invalid, "a message bit flip");
            changed[bit / 8] ^= 1 << (bit % 8);
        }
        attack.refused(
            verify(message, &[]),
            &["KMSInvalidSignatureException", "ValidationException"],
            "an empty signature",
        );
    }
}

#[test]
fn verify_mac_timing_attack_is_prevented_by_a_full_length_constant_time_compare() {
    let mut attack = Attack::new("VerifyMac timing (early-exit compare)");
    // The compare the engine uses: aws-lc's CRYPTO_memcmp, which reads every byte.
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/crypto/hmac.rs"),
    )
    .unwrap();
    let verify_fn = &source[source.find("pub fn verify(").expect("HmacKey::verify")..];
    let verify_fn = &verify_fn[..verify_fn.find("\n    }\n").unwrap()];
    assert!(
        verify_fn.contains("constant_time_eq(&expected[..len], mac)"),
        "HmacKey::verify no longer compares with constant_time_eq:\n{verify_fn}"
    );
    assert!(
        !verify_fn.contains("== mac") && !verify_fn.contains("mac =="),
        "HmacKey::verify compares with =="
    );
    let ct = &source[source.find("pub fn constant_time_eq(").unwrap()..];
    assert!(ct[..ct.find("\n}\n").unwrap()].contains("CRYPTO_memcmp"));
    // constant_time_eq itself: equal only when every byte and the length agree.
    use keyplane::sealing::constant_time_eq;
    let a: Vec<u8> = (0..64).collect();
    assert!(constant_time_eq(&a, &a.clone()));
    for i in 0..a.len() {
        let mut b = a.clone();
        b[i] ^= 0x80;
        attack.judged(!constant_time_eq(&a, &b), "a difference at one position");
    }
    attack.judged(!constant_time_eq(&a, &a[..63]), "a shorter string");
    attack.judged(!constant_time_eq(&a[..0], &a[..1]), "an empty string");

    // Behaviourally: VerifyMac compares the whole MAC, so a MAC right in all but its last byte
    // is refused like one wrong in its first; time both (printed, not asserted: the HMAC
    // computation dominates a single compare).
    let engine = engine();
    let key = new_key_of(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let message = b"timing";
    let mac = engine
        .generate_mac(&GenerateMacRequest {
            key_id: &key,
            message,
            mac_algorithm: MacAlgorithm::HmacSha256,
        })
        .unwrap()
        .mac;
    let mut timings = BTreeMap::new();
    for position in [0usize, 31] {
        let mut wrong = mac.clone();
        wrong[position] ^= 1;
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let start = Instant::now();
            let result = engine.verify_mac(&VerifyMacRequest {
                key_id: &key,
                message,
                mac: &wrong,
                mac_algorithm: MacAlgorithm::HmacSha256,
            });
            samples.push(start.elapsed().as_nanos());
            assert!(result.is_err());
        }
        attack.judged(true, "a MAC wrong in one byte");
        samples.sort_unstable();
        timings.insert(position, samples[samples.len() / 2]);
    }
    println!(
        "assurance: VerifyMac median time with the first / last byte wrong: {} / {} ns",
        timings[&0], timings[&31]
    );
}

// ---- policies and grants ---------------------------------------------------------------------

#[test]
fn policy_bypass_through_aliases_and_arns_is_refused() {
    let mut attack = Attack::new("policy bypass through aliases and ARNs");
    let engine = engine();
    let key = new_key(&engine);
    let arn = engine.key_arn(&uuid::Uuid::parse_str(&key).unwrap());
    engine.create_alias("alias/orders", &key).unwrap();
    engine.create_alias("alias/orders-2", &key).unwrap();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": ALICE},
             "Action": ["kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"], "Resource": arn},
        ]
    });
    engine
        .put_key_policy(&key, &policy.to_string(), None, false)
        .unwrap();
    let alice = engine.for_caller(Caller::new(ALICE).unwrap());
    let blob = seal(&engine, &key, b"orders", None);
    let names = [
        key.clone(),
        arn.clone(),
        "alias/orders".to_string(),
        "alias/orders-2".to_string(),
        "arn:aws:kms:us-east-1:111122223333:alias/orders".to_string(),
    ];
    let denied = &["AccessDeniedException"];
    attack.refused(
        decrypt(&alice, &blob, None),
        denied,
        "Decrypt without naming the key",
    );
    for name in &names {
        let request = DecryptRequest::new(&blob).with_key_id(name);
        attack.refused(alice.decrypt(&request), denied, "Decrypt by another name");
        let batch = alice.decrypt_batch(&[request; 3]);
        for item in batch {
            attack.refused(item, denied, "a batch Decrypt by another name");
        }
        attack.refused(
            alice.generate_data_key(&GenerateDataKeyRequest::new(name, DataKeySpec::Aes256)),
            denied,
            "GenerateDataKey by another name",
        );
        attack.refused(
            alice.generate_data_key_without_plaintext(&GenerateDataKeyRequest::new(
                name,
                DataKeySpec::Aes128,
            )),
            denied,
            "GenerateDataKeyWithoutPlaintext by another name",
        );
        attack.refused(
            alice.re_encrypt(&ReEncryptRequest::new(&blob, name)),
            denied,
            "ReEncrypt by another name",
        );
        // What the Deny leaves alone still works by every name.
        alice
            .encrypt(&EncryptRequest::new(name, b"allowed"))
            .unwrap();
    }
    // Names that look alike do not reach the key at all.
    for name in [
        "ALIAS/orders",
        "alias/Orders",
        "arn:aws:kms:eu-west-1:111122223333:alias/orders",
        "arn:aws:kms:us-east-1:444455556666:alias/orders",
    ] {
        attack.refused(
            alice.encrypt(&EncryptRequest::new(name, b"x")),
            &["NotFoundException"],
            "a look-alike name",
        );
    }
    // Another account's principal, under the default policy, by every name.
    let eve = engine.for_caller(Caller::new("arn:aws:iam::444455556666:user/eve").unwrap());
    let other = new_key(&engine);
    engine.create_alias("alias/other", &other).unwrap();
    let other_arn = engine.key_arn(&uuid::Uuid::parse_str(&other).unwrap());
    for name in [other.as_str(), &other_arn, "alias/other"] {
        attack.refused(
            eve.encrypt(&EncryptRequest::new(name, b"x")),
            denied,
            "another account's caller",
        );
    }
}

#[test]
fn a_grant_does_not_follow_an_alias_swap() {
    let mut attack = Attack::new("grant reused through an alias swap");
    let engine = engine();
    let a = new_key(&engine);
    let b = new_key(&engine);
    // Only the root may use either key through their policies; Eve (another account) has a grant on `a` only.
    let grant = engine
        .create_grant(CreateGrantRequest {
            key_id: a.clone(),
            grantee_principal: EVE.into(),
            retiring_principal: None,
            operations: vec![
                GrantOperation::Encrypt,
                GrantOperation::Decrypt,
                GrantOperation::GenerateDataKey,
            ],
            constraints: None,
            name: None,
        })
        .unwrap();
    engine.create_alias("alias/app", &a).unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let blob_a = eve
        .encrypt(&EncryptRequest::new("alias/app", b"through the grant"))
        .unwrap()
        .ciphertext_blob;
    let blob_b = seal(&engine, &b, b"b's secret", None);
    let denied = &["AccessDeniedException"];
    engine.update_alias("alias/app", &b).unwrap();
    attack.refused(
        eve.encrypt(&EncryptRequest::new("alias/app", b"x")),
        denied,
        "Encrypt through the swapped alias",
    );
    let requests = vec![EncryptRequest::new("alias/app", b"x"); 100];
    for item in eve.encrypt_batch(&requests) {
        attack.refused(item, denied, "a batch Encrypt through the swapped alias");
    }
    attack.refused(
        eve.generate_data_key(&GenerateDataKeyRequest::new(
            "alias/app",
            DataKeySpec::Aes256,
        )),
        denied,
        "GenerateDataKey through the swapped alias",
    );
    attack.refused(decrypt(&eve, &blob_b, None), denied, "Decrypt of b's blob");
    attack.refused(
        eve.decrypt(&DecryptRequest::new(&blob_b).with_key_id("alias/app")),
        denied,
        "Decrypt of b's blob through the alias",
    );
    // The grant still works on `a` by its id, until revoked; then not at all.
    assert_eq!(decrypt(&eve, &blob_a, None).unwrap(), b"through the grant");
    engine.revoke_grant(&a, &grant.grant_id).unwrap();
    attack.refused(
        decrypt(&eve, &blob_a, None),
        denied,
        "Decrypt after the grant was revoked",
    );
    attack.refused(
        eve.encrypt(&EncryptRequest::new(&a, b"x")),
        denied,
        "Encrypt after the grant was revoked",
    );
}

/// Each item of a batch is resolved and authorised against its own identifier. A chunk reuses
/// the previous item's key only for the same text (by address within the batch, else by bytes),
/// so an item naming a key the caller may not use is refused even right after items naming an
/// allowed key by an identifier of the same length: in runs and one by one, with each identifier
/// its own string or one string shared by a run. And every blob of a batch names its own key.
#[test]
fn a_batch_item_does_not_borrow_the_key_of_the_item_before_it() {
    let mut attack = Attack::new("batch item borrowing the previous item's key");
    let engine = engine();
    let a = new_key(&engine);
    let b = new_key(&engine);
    assert_eq!(a.len(), b.len());
    engine
        .create_grant(grant(&a, EVE, &[GrantOperation::Encrypt], None))
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let denied = &["AccessDeniedException"];
    // Items 0-199: every fifth names b; 200-399: runs of 25 of each.
    let names_b = |i: usize| if i < 200 { i % 5 == 4 } else { i % 50 >= 25 };
    let name = |i: usize| if names_b(i) { &b } else { &a };
    let owned: Vec<String> = (0..400).map(|i| name(i).clone()).collect();
    let each_its_own: Vec<EncryptRequest<'_>> = owned
        .iter()
        .map(|id| EncryptRequest::new(id, b"x"))
        .collect();
    let shared: Vec<EncryptRequest<'_>> = (0..400)
        .map(|i| EncryptRequest::new(name(i), b"x"))
        .collect();
    for requests in [&each_its_own, &shared] {
        for (i, result) in eve.encrypt_batch(requests).into_iter().enumerate() {
            if names_b(i) {
                attack.refused(result, denied, "an item naming b among items naming a");
            } else {
                let blob = result.unwrap();
                assert_eq!(ciphertext::key_id_of(&blob).unwrap().to_string(), a);
            }
        }
        for (i, result) in engine.encrypt_batch(requests).into_iter().enumerate() {
            let named = ciphertext::key_id_of(&result.unwrap()).unwrap().to_string();
            attack.judged(
                &named == name(i),
                "a blob of the batch under its own item's key",
            );
        }
    }
}

// ---- the audit log ---------------------------------------------------------------------------

#[test]
fn audit_log_tampering_is_detected() {
    let mut attack = Attack::new("audit log tampering");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (signing_key, public) = keyplane_testkit::audit_signing_key();
    {
        let mut config = AuditConfig::new(&path);
        config.digest_every_records = 5;
        config.digest_every = std::time::Duration::ZERO;
        let engine = Engine::builder()
            .audit(config, signing_key)
            .build()
            .unwrap();
        let key = new_key(&engine);
        for i in 0..12 {
            let blob = seal(&engine, &key, format!("message {i}").as_bytes(), None);
            decrypt(&engine, &blob, None).unwrap();
        }
        let _ = engine.describe_key("alias/missing");
    }
    let genuine = std::fs::read_to_string(&path).unwrap();
    assert_eq!(verify(&path, &public).unwrap().verdict(), Verdict::Intact);
    let lines: Vec<String> = genuine.lines().map(str::to_string).collect();
    let records: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("{\"seq\":"))
        .collect();
    let digests: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("{\"auditDigest\""))
        .collect();
    assert!(records.len() >= 20 && digests.len() >= 4);

    let check = |attack: &mut Attack, tampered: Vec<String>, what: &str| {
        let text = tampered.join("\n") + "\n";
        std::fs::write(&path, text).unwrap();
        let report = verify(&path, &public).unwrap();
        attack.judged(report.verdict() == Verdict::Tampered, what);
    };
    let mid = records[records.len() / 2];
    let mut edit = lines.clone();
    edit[mid] = if edit[mid].contains("\"eventName\":\"Decrypt\"") {
        edit[mid].replacen("\"eventName\":\"Decrypt\"", "\"eventName\":\"Encrypt\"", 1)
    } else {
        edit[mid].replacen("\"eventName\":\"", "\"eventName\":\"Re", 1)
    };
    assert_ne!(edit[mid], lines[mid]);
    check(&mut attack, edit, "a record's operation changed");
    let mut edit = lines.clone();
    edit[mid] = edit[mid].replacen("111122223333", "111122223334", 1);
    check(&mut attack, edit, "a record's account changed");
    let mut edit = lines.clone();
    edit.remove(mid);
    check(&mut attack, edit, "a record deleted");
    let mut edit = lines.clone();
    edit.swap(records[2], records[3]);
    check(&mut attack, edit, "two records swapped");
    let mut edit = lines.clone();
    let copy = edit[records[1]].clone();
    edit.insert(records[4], copy);
    check(&mut attack, edit, "a record replayed");
    let mut edit = lines.clone();
    edit.remove(digests[1]);
    check(&mut attack, edit, "a digest removed");
    let mut edit = lines.clone();
    edit[digests[0]] = edit[digests[0]].replacen("\"auditDigest\"", "\"auditDigest\" ", 1);
    check(&mut attack, edit, "a digest altered");
    let mut edit = lines.clone();
    edit[records[0]] = edit[records[0]].replacen("{\"seq\":1,", "{\"seq\":1 ,", 1);
    check(&mut attack, edit, "whitespace in a record");
    std::fs::write(&path, &genuine).unwrap();
    assert_eq!(verify(&path, &public).unwrap().verdict(), Verdict::Intact);
}

/// A forged line shaped like a digest whose `,"signature":"` member ends the line (found by the
/// `audit_verify` fuzz target; `fuzz/regressions/audit_verify/`) must be reported as tampering by
/// `verify`, and refused by `AuditLog::open`, not crash either.
#[test]
fn audit_log_forged_digest_line_does_not_crash_the_verifier() {
    let mut attack = Attack::new("audit log forged digest line");
    let dir = tempfile::tempdir().unwrap();
    let (signing_key, public) = keyplane_testkit::audit_signing_key();
    for (name, text) in [
        (
            "alone",
            "{\"auditDigest\":1,\"signature\":\"}\n".to_string(),
        ),
        (
            "after a record",
            format!(
                "{{\"seq\":1,\"chain\":\"{}\"}}\n{{\"auditDigest\":1,\"signature\":\"}}\n",
                "0".repeat(64)
            ),
        ),
    ] {
        let path = dir.path().join(format!("{}.log", name.replace(' ', "-")));
        std::fs::write(&path, &text).unwrap();
        let verified = std::panic::catch_unwind(|| verify(&path, &public).map(|r| r.verdict()));
        let verdict = match verified {
            Ok(Ok(Verdict::Tampered)) => Ok(()),
            Ok(other) => Err(format!("{other:?}")),
            Err(_) => Err("panicked".to_owned()),
        };
        attack.attempt(&format!("verify ({name})"), verdict);
        let opened = std::panic::catch_unwind(|| {
            AuditLog::open(AuditConfig::new(&path), &signing_key).map(|log| log.close())
        });
        let verdict = match opened {
            Ok(Err(_)) => Ok(()),
            Ok(Ok(_)) => Err("accepted the log".to_owned()),
            Err(_) => Err("panicked".to_owned()),
        };
        attack.attempt(&format!("AuditLog::open ({name})"), verdict);
    }
}

// ==== Issue 15, finding 1: nonce reuse in a clone of the process ==========================
//
// A copy of the process memory continues the cached derived-key sessions, and so their (salt,
// counter) sequences, unless the engine detects the copy. The old check compared PIDs, which a
// copy can share: a child forked into a new PID namespace by a parent that is PID 1 in its own
// (a container's entry point) is PID 1 too. Two blobs under one (derived key, nonce) give the
// XOR of their plaintexts, and leak GCM's hash key. Each scenario runs in a child process (this
// binary again, with `CLONE_CHILD_ENV` set), which forks; parent and child of that fork encrypt
// the same number of equal-length messages under the same key and compare what they produced.

use std::io::{Read as _, Write as _};
use std::os::fd::FromRawFd as _;
use std::process::Output;

const CLONE_CHILD_ENV: &str = "KEYPLANE_CLONE_CHILD";
const CLONE_MARK: &str = "CLONE ";
/// Messages each side of the fork encrypts.
const CLONE_MESSAGES: usize = 16;
const CLONE_PLAINTEXT: usize = 16;

/// Runs this binary's `clone_child_entry` in `mode`; returns its `CLONE` marks.
fn clone_child(mode: &str) -> (Output, Vec<String>) {
    let output = child_test("clone_child_entry")
        .env(CLONE_CHILD_ENV, mode)
        .output()
        .unwrap();
    let marks = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            l.find(CLONE_MARK)
                .map(|at| l[at + CLONE_MARK.len()..].trim().to_string())
        })
        .collect();
    (output, marks)
}

fn describe_output(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The value of `name=` in a mark line.
fn mark_value<'m>(marks: &'m [String], name: &str) -> Option<&'m str> {
    let prefix = format!("{name}=");
    marks
        .iter()
        .flat_map(|m| m.split_whitespace())
        .find_map(|field| field.strip_prefix(prefix.as_str()))
}

/// The entry point of the clone scenarios' child processes (run by `clone_child` with
/// `--ignored`); ignored, and idle, in a normal test run, so it is never reported as a passing
/// test.
#[test]
#[ignore = "the clone scenarios' child process, started by clone_child"]
fn clone_child_entry() {
    let Ok(mode) = std::env::var(CLONE_CHILD_ENV) else {
        return;
    };
    match mode.as_str() {
        "fork" => clone_scenario(false),
        "same-pid" => {
            // SAFETY: unshare and fork on this single-test child process; the forked process
            // runs the scenario and _exits, this one only waits for it.
            unsafe {
                assert_eq!(
                    libc::unshare(libc::CLONE_NEWPID),
                    0,
                    "unshare(CLONE_NEWPID) failed ({}): this test needs root (CI runs as root)",
                    std::io::Error::last_os_error()
                );
                let pid = libc::fork();
                assert!(pid >= 0, "fork failed");
                if pid == 0 {
                    // PID 1 of a new PID namespace, like a container's entry point.
                    clone_scenario(true);
                    libc::_exit(0);
                }
                let mut status = 0;
                assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the namespace's first process failed: status {status}"
                );
            }
        }
        other => panic!("unknown clone child mode {other}"),
    }
}

/// Warms a session, forks (into a new PID namespace when `new_namespace`), and has both sides
/// encrypt; prints what the fork's child reused and how much of its key memory it holds locked.
fn clone_scenario(new_namespace: bool) {
    let engine = Engine::builder().worker_threads(1).build().unwrap();
    let key = new_key(&engine);
    let before: Vec<Vec<u8>> = (0..4).map(|_| seal(&engine, &key, b"warm", None)).collect();
    let encrypt_all = |label: &str| -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..CLONE_MESSAGES {
            let plaintext = format!("{label}{i:03}");
            assert_eq!(plaintext.len(), CLONE_PLAINTEXT);
            out.extend(seal(&engine, &key, plaintext.as_bytes(), None));
        }
        out
    };
    let blob_len = ciphertext::blob_len(CLONE_PLAINTEXT);
    let mut fds = [0i32; 2];
    // SAFETY: unshare, pipe and fork on this process, whose only other thread (the test harness's
    // main thread) waits; the child runs engine calls on this thread, writes to the pipe, _exits.
    unsafe {
        if new_namespace {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWPID),
                0,
                "unshare(CLONE_NEWPID) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::close(fds[0]);
            let locked_kib_before = keyplane::process_locked_kib().unwrap_or(0);
            let blobs = encrypt_all("child secret ");
            let locked_kib_after = keyplane::process_locked_kib().unwrap_or(0);
            let mut message = Vec::new();
            message.extend(u64::from(std::process::id()).to_le_bytes());
            message.extend(locked_kib_before.to_le_bytes());
            message.extend(locked_kib_after.to_le_bytes());
            let locked_bytes = keyplane::locked_memory_stats().locked_bytes as u64;
            message.extend(locked_bytes.to_le_bytes());
            message.extend(blobs);
            let written = libc::write(fds[1], message.as_ptr().cast(), message.len());
            libc::_exit(if written == message.len() as isize {
                0
            } else {
                1
            });
        }
        libc::close(fds[1]);
        let ours = encrypt_all("parent known ");
        let mut from_child = vec![0u8; 32 + CLONE_MESSAGES * blob_len];
        std::fs::File::from_raw_fd(fds[0])
            .read_exact(&mut from_child)
            .unwrap();
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let field = |i: usize| u64::from_le_bytes(from_child[i * 8..i * 8 + 8].try_into().unwrap());
        let child_blobs = &from_child[32..];
        // Every (salt, nonce) the parent used, before and after the fork.
        let parent_nonces: HashSet<&[u8]> = before
            .iter()
            .map(|b| &b[22..HEADER_LEN])
            .chain(ours.chunks(blob_len).map(|b| &b[22..HEADER_LEN]))
            .collect();
        let mut reuse = String::new();
        let mut recovered = 0;
        for child in child_blobs.chunks(blob_len) {
            let reused = parent_nonces.contains(&child[22..HEADER_LEN]);
            reuse.push(if reused { '1' } else { '0' });
            // The attack: with the parent's plaintext known, the keystream the parent used under
            // the same (salt, nonce) decrypts the child's message.
            let parent = ours
                .chunks(blob_len)
                .enumerate()
                .find(|(_, p)| p[22..HEADER_LEN] == child[22..HEADER_LEN]);
            if let Some((j, parent)) = parent {
                let known = format!("parent known {j:03}");
                let keystream = parent[HEADER_LEN..HEADER_LEN + CLONE_PLAINTEXT]
                    .iter()
                    .zip(known.as_bytes())
                    .map(|(c, p)| c ^ p);
                let guess: Vec<u8> = child[HEADER_LEN..HEADER_LEN + CLONE_PLAINTEXT]
                    .iter()
                    .zip(keystream)
                    .map(|(c, k)| c ^ k)
                    .collect();
                if guess.starts_with(b"child secret ") {
                    recovered += 1;
                }
            }
        }
        println!(
            "{CLONE_MARK}parent_pid={} child_pid={} reuse={reuse} recovered={recovered} \
             child_locked_kib_before={} child_locked_kib_after={} child_locked_bytes={}",
            std::process::id(),
            field(0),
            field(1),
            field(2),
            field(3)
        );
        std::io::stdout().flush().unwrap();
    }
}

/// Judges the (salt, nonce) reuse a clone scenario reported.
fn judge_clone_reuse(attack: &mut Attack, marks: &[String], output: &Output) {
    let reuse = mark_value(marks, "reuse").unwrap_or_else(|| {
        panic!(
            "no result from the clone child: {}",
            describe_output(output)
        )
    });
    assert_eq!(reuse.len(), CLONE_MESSAGES, "{}", describe_output(output));
    let recovered = mark_value(marks, "recovered").unwrap_or("?");
    for (i, reused) in reuse.chars().enumerate() {
        attack.judged(
            reused == '0',
            &format!(
                "the child's message {i} reused a (salt, nonce) of its parent's (the attacker \
                 recovered {recovered} of {CLONE_MESSAGES} child plaintexts from the parent's \
                 known ones): the child continued the parent's derived-key session"
            ),
        );
    }
}

#[test]
fn nonce_reuse_in_a_forked_child_with_the_same_pid_is_prevented() {
    let mut attack = Attack::new("nonce reuse in a forked child with the same PID (PID namespace)");
    let (output, marks) = clone_child("same-pid");
    assert!(output.status.success(), "{}", describe_output(&output));
    let (parent, child) = (
        mark_value(&marks, "parent_pid"),
        mark_value(&marks, "child_pid"),
    );
    assert!(
        parent.is_some() && parent == child,
        "the scenario must give parent and child the same PID (both PID 1 of their namespace): \
         parent {parent:?}, child {child:?}"
    );
    judge_clone_reuse(&mut attack, &marks, &output);
}

#[test]
fn a_forked_child_uses_fresh_sessions_and_locks_its_key_memory_again() {
    let mut attack = Attack::new("nonce reuse or unlocked key memory in a forked child");
    let (output, marks) = clone_child("fork");
    assert!(output.status.success(), "{}", describe_output(&output));
    judge_clone_reuse(&mut attack, &marks, &output);
    let number = |name: &str| -> u64 {
        mark_value(&marks, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no {name} from the clone child: {}",
                    describe_output(&output)
                )
            })
    };
    let (after_kib, locked_bytes) = (
        number("child_locked_kib_after"),
        number("child_locked_bytes"),
    );
    println!(
        "assurance: forked child locked {after_kib} KiB after its first call (inherited before \
         it: {} KiB; key memory it holds: {} KiB)",
        number("child_locked_kib_before"),
        locked_bytes / 1024
    );
    assert!(locked_bytes > 0, "the parent held no locked key memory");
    attack.judged(
        after_kib * 1024 >= locked_bytes,
        &format!(
            "the forked child holds {locked_bytes} bytes of key memory but only {after_kib} KiB \
             are locked (mlock is not inherited across fork)"
        ),
    );
}

#[test]
fn nonce_reuse_after_an_announced_snapshot_restore_is_prevented() {
    // A snapshot restore cannot be detected (docs/ciphertext-format.md): the process announces
    // it, and every session made before must then be dropped, on every thread.
    let mut attack = Attack::new("nonce reuse after an announced snapshot restore");
    let engine = engine();
    let key = new_key(&engine);
    let salt = |blob: &[u8]| blob[22..22 + ciphertext::SALT_LEN].to_vec();
    let before: HashSet<Vec<u8>> = (0..8)
        .map(|_| salt(&seal(&engine, &key, b"before", None)))
        .chain(
            engine
                .encrypt_batch(&vec![EncryptRequest::new(&key, b"before"); 512])
                .into_iter()
                .map(|b| salt(&b.unwrap())),
        )
        .collect();
    keyplane::fork::after_snapshot_restore();
    let after: Vec<Vec<u8>> = (0..8)
        .map(|_| salt(&seal(&engine, &key, b"after", None)))
        .chain(
            engine
                .encrypt_batch(&vec![EncryptRequest::new(&key, b"after"); 512])
                .into_iter()
                .map(|b| salt(&b.unwrap())),
        )
        .collect();
    for (i, s) in after.iter().enumerate() {
        attack.judged(
            !before.contains(s),
            &format!("message {i} after the restore continued a session made before it"),
        );
    }
}
// ---- finding 5 of issue 15: batch audit records name every key -------------------------------
//
// A batch's record once named only its first request's key: a Decrypt batch without KeyIds named
// none, a mixed-key batch one, and GetKeyLastUsage moved only for that one. Each batch below runs
// on the worker pool (more than 64 items) over several keys, and its record must name every key
// in `resources` and `additionalEventData.keys` with the right item and error counts, and
// GetKeyLastUsage of every key that a succeeding item used must point at that record.

/// The last record of the log at `path` for `event`.
fn last_record(path: &std::path::Path, event: &str) -> serde_json::Value {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["eventName"] == event)
        .unwrap_or_else(|| panic!("no {event} record"))
}

/// Checks that `record` names exactly `expected` (key id → (items, failed items)) and that
/// GetKeyLastUsage of each key with a succeeding item is this record.
fn check_batch_record(
    attack: &mut Attack,
    engine: &Engine,
    record: &serde_json::Value,
    expected: &BTreeMap<String, (u64, u64)>,
) {
    let event = record["eventName"].as_str().unwrap();
    let arn_of = |id: &str| engine.describe_key(id).unwrap().arn;
    let resources: HashSet<String> = record["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ARN"].as_str().unwrap().to_owned())
        .collect();
    let counted: HashMap<String, (u64, u64)> = record["additionalEventData"]["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    (
                        k["ARN"].as_str().unwrap().to_owned(),
                        (
                            k["itemCount"].as_u64().unwrap(),
                            k["errorCount"].as_u64().unwrap(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        resources.len(),
        expected.len(),
        "{event} batch: resources {resources:?}"
    );
    for (id, &(items, failed)) in expected {
        let arn = arn_of(id);
        attack.judged(
            resources.contains(&arn),
            &format!("{event} batch record without key {arn} in resources"),
        );
        attack.judged(
            counted.get(&arn) == Some(&(items, failed)),
            &format!(
                "{event} batch record counting {:?} items (and failures) for {arn}, not \
                 {items} ({failed})",
                counted.get(&arn)
            ),
        );
        let usage = engine.get_key_last_usage(id).unwrap().key_last_usage;
        let is_this_record = usage.as_ref().is_some_and(|u| {
            u.operation == event && u.cloud_trail_event_id == record["eventID"].as_str().unwrap()
        });
        attack.judged(
            is_this_record == (items > failed),
            &format!("{event} batch: GetKeyLastUsage of {arn} is {usage:?}"),
        );
    }
}

#[test]
fn a_batch_that_hides_what_it_touched_decrypt_without_key_ids() {
    let mut attack = Attack::new("a batch that hides what it touched (Decrypt, no KeyIds)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = keyplane_testkit::audited_engine(&path);
    let keys: Vec<String> = (0..4).map(|_| new_key(&engine)).collect();
    let right = ctx(&[("tenant", "a")]);
    let wrong = ctx(&[("tenant", "b")]);
    // Keys 0..3 decrypt 30, 40 and 50 items, interleaved; key 3 one item that fails (wrong
    // context), so it is named but its last usage stays its Encrypt.
    let mut blobs = Vec::new();
    for i in 0..120usize {
        let key = match i % 12 {
            0..=2 => 0,
            3..=6 => 1,
            _ => 2,
        };
        blobs.push((key, seal(&engine, &keys[key], b"item", Some(&right))));
    }
    blobs.insert(7, (3, seal(&engine, &keys[3], b"item", Some(&right))));
    let requests: Vec<DecryptRequest<'_>> = blobs
        .iter()
        .map(|(key, blob)| {
            let context = if *key == 3 { &wrong } else { &right };
            DecryptRequest::new(blob).with_context(context)
        })
        .collect();
    let results = engine.decrypt_batch(&requests);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    let expected: BTreeMap<String, (u64, u64)> = [
        (keys[0].clone(), (30, 0)),
        (keys[1].clone(), (40, 0)),
        (keys[2].clone(), (50, 0)),
        (keys[3].clone(), (1, 1)),
    ]
    .into();
    check_batch_record(
        &mut attack,
        &engine,
        &last_record(&path, "Decrypt"),
        &expected,
    );
}

#[test]
fn a_batch_that_hides_what_it_touched_mixed_key_encrypt() {
    let mut attack = Attack::new("a batch that hides what it touched (Encrypt, mixed keys)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = keyplane_testkit::audited_engine(&path);
    let keys: Vec<String> = (0..3).map(|_| new_key(&engine)).collect();
    engine.create_alias("alias/first", &keys[0]).unwrap();
    let arn = engine.describe_key(&keys[2]).unwrap().arn;
    // The same keys by alias, id and ARN; a missing alias fails without naming a key.
    let names = [
        "alias/first",
        keys[1].as_str(),
        arn.as_str(),
        "alias/missing",
    ];
    let requests: Vec<EncryptRequest<'_>> = (0..100)
        .map(|i| EncryptRequest::new(names[i % 4], b"item"))
        .collect();
    let results = engine.encrypt_batch(&requests);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 25);
    let expected: BTreeMap<String, (u64, u64)> = [
        (keys[0].clone(), (25, 0)),
        (keys[1].clone(), (25, 0)),
        (keys[2].clone(), (25, 0)),
    ]
    .into();
    check_batch_record(
        &mut attack,
        &engine,
        &last_record(&path, "Encrypt"),
        &expected,
    );
}

#[test]
fn a_batch_that_hides_what_it_touched_re_encrypt() {
    let mut attack = Attack::new("a batch that hides what it touched (ReEncrypt)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = keyplane_testkit::audited_engine(&path);
    let sources: Vec<String> = (0..2).map(|_| new_key(&engine)).collect();
    let destinations: Vec<String> = (0..2).map(|_| new_key(&engine)).collect();
    let blobs: Vec<Vec<u8>> = (0..80)
        .map(|i| seal(&engine, &sources[i % 2], b"item", None))
        .collect();
    // Item i goes from source i % 2 to destination (i / 2) % 2: each key has 40 items.
    let requests: Vec<ReEncryptRequest<'_>> = blobs
        .iter()
        .enumerate()
        .map(|(i, blob)| ReEncryptRequest::new(blob, &destinations[(i / 2) % 2]))
        .collect();
    let results = engine.re_encrypt_batch(&requests);
    assert!(results.iter().all(|r| r.is_ok()));
    let expected: BTreeMap<String, (u64, u64)> = sources
        .iter()
        .chain(&destinations)
        .map(|k| (k.clone(), (40, 0)))
        .collect();
    check_batch_record(
        &mut attack,
        &engine,
        &last_record(&path, "ReEncrypt"),
        &expected,
    );
}

// ==== issue 15, findings 3, 4 and 7: condition keys, grant constraints, separated duties =======
// (policy engineer's section: keep additions of other findings outside it)

const BOB: &str = "arn:aws:iam::111122223333:user/bob";

fn grant(
    key: &str,
    grantee: &str,
    operations: &[GrantOperation],
    constraints: Option<keyplane::key::GrantConstraints>,
) -> CreateGrantRequest {
    CreateGrantRequest {
        key_id: key.to_string(),
        grantee_principal: grantee.to_string(),
        retiring_principal: None,
        operations: operations.to_vec(),
        constraints,
        name: None,
    }
}

fn context_equals(pairs: &[(&str, &str)]) -> Option<keyplane::key::GrantConstraints> {
    Some(keyplane::key::GrantConstraints {
        encryption_context_equals: Some(ctx(pairs)),
        encryption_context_subset: None,
    })
}

/// The default policy's root statement plus `statement`.
fn root_and(statement: serde_json::Value) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            statement,
        ]
    })
    .to_string()
}

#[test]
fn a_deny_on_kms_grantee_principal_stops_create_grant() {
    let mut attack = Attack::new("CreateGrant to a grantee a kms:GranteePrincipal Deny names");
    let engine = engine();
    let key = new_key(&engine);
    let policy = root_and(serde_json::json!({
        "Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*",
        "Condition": {"StringEquals": {"kms:GranteePrincipal": EVE}}
    }));
    engine.put_key_policy(&key, &policy, None, false).unwrap();
    for operations in [
        &[GrantOperation::Decrypt][..],
        &[GrantOperation::Encrypt, GrantOperation::Decrypt],
        &[GrantOperation::DescribeKey],
    ] {
        attack.refused(
            engine.create_grant(grant(&key, EVE, operations, None)),
            &["AccessDeniedException"],
            "a grant to the denied grantee",
        );
    }
    // The Deny names one grantee only.
    engine
        .create_grant(grant(&key, BOB, &[GrantOperation::Decrypt], None))
        .unwrap();
}

#[test]
fn a_deny_on_aws_principal_tag_stops_decrypt() {
    let mut attack = Attack::new("Decrypt by a principal whose tag an aws:PrincipalTag Deny names");
    let engine = engine();
    let key = new_key(&engine);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": [ALICE, BOB]},
             "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/department": "contractors"}}},
        ]
    })
    .to_string();
    engine.put_key_policy(&key, &policy, None, false).unwrap();
    let blob = seal(&engine, &key, b"payroll", None);
    // Set as a plain attribute named by the condition key (what the C ABI's
    // kp_caller_add_attribute does), in the tag key's case or another.
    for tag in ["aws:PrincipalTag/department", "aws:PrincipalTag/Department"] {
        let alice = engine.for_caller(
            Caller::new(ALICE)
                .unwrap()
                .with_attribute(tag, "contractors"),
        );
        attack.refused(
            decrypt(&alice, &blob, None),
            &["AccessDeniedException"],
            "Decrypt by a tagged principal",
        );
        alice.encrypt(&EncryptRequest::new(&key, b"x")).unwrap();
    }
    // Another tag value, and an untagged principal, are not denied.
    let bob = engine.for_caller(
        Caller::new(BOB)
            .unwrap()
            .with_attribute("aws:PrincipalTag/department", "payroll"),
    );
    assert_eq!(decrypt(&bob, &blob, None).unwrap(), b"payroll");
    let plain = engine.for_caller(Caller::new(BOB).unwrap());
    assert_eq!(decrypt(&plain, &blob, None).unwrap(), b"payroll");
}

#[test]
fn a_policy_with_a_condition_key_the_engine_cannot_evaluate_is_refused() {
    let mut attack = Attack::new("a key policy statement on a condition key never supplied");
    let engine = engine();
    let key = new_key(&engine);
    for (effect, condition_key) in [
        ("Deny", "aws:SecureTransport"),
        ("Deny", "kms:RecipientAttestation:ImageSha384"),
        ("Deny", "aws:CalledVia"),
        ("Deny", "aws:SourceVpce"),
        ("Allow", "aws:userid"),
        ("Allow", "kms:NoSuchKey"),
    ] {
        let policy = root_and(serde_json::json!({
            "Effect": effect, "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {condition_key: "x"}}
        }));
        let refused = engine.put_key_policy(&key, &policy, None, false);
        if let Err(e) = &refused {
            assert!(
                e.to_string().contains(condition_key),
                "the refusal names the key: {e}"
            );
        }
        attack.refused(
            refused,
            &["MalformedPolicyDocumentException"],
            "PutKeyPolicy with an unsupported condition key",
        );
        attack.refused(
            engine.create_key(CreateKeyRequest {
                policy: Some(policy),
                ..CreateKeyRequest::default()
            }),
            &["MalformedPolicyDocumentException"],
            "CreateKey with an unsupported condition key",
        );
    }
}

#[test]
fn grant_constraints_do_not_escape_through_create_grant() {
    let mut attack = Attack::new("grant constraints escaped through CreateGrant");
    let engine = engine();
    let key = new_key(&engine);
    let tenant_a = ctx(&[("tenant", "A")]);
    let tenant_b = ctx(&[("tenant", "B")]);
    let blob_b = seal(&engine, &key, b"tenant B", Some(&tenant_b));
    // Eve (another account: no policy statement) gets Decrypt+CreateGrant for tenant A only, and
    // an unconstrained CreateGrant.
    engine
        .create_grant(grant(
            &key,
            EVE,
            &[GrantOperation::Decrypt, GrantOperation::CreateGrant],
            context_equals(&[("tenant", "A")]),
        ))
        .unwrap();
    engine
        .create_grant(grant(&key, EVE, &[GrantOperation::CreateGrant], None))
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let mallory = "arn:aws:iam::444455556666:user/mallory";
    let denied = &["AccessDeniedException"];
    attack.refused(
        eve.create_grant(grant(&key, mallory, &[GrantOperation::Decrypt], None)),
        denied,
        "an unconstrained Decrypt grant from a tenant-A grant",
    );
    attack.refused(
        eve.create_grant(grant(
            &key,
            mallory,
            &[GrantOperation::Decrypt],
            context_equals(&[("tenant", "B")]),
        )),
        denied,
        "a tenant-B Decrypt grant from a tenant-A grant",
    );
    attack.refused(
        eve.create_grant(grant(
            &key,
            mallory,
            &[GrantOperation::Decrypt],
            Some(keyplane::key::GrantConstraints {
                encryption_context_equals: None,
                encryption_context_subset: Some(tenant_a.clone()),
            }),
        )),
        denied,
        "a looser (subset) Decrypt grant from an exact-context grant",
    );
    attack.refused(
        eve.create_grant(grant(&key, EVE, &[GrantOperation::Decrypt], None)),
        denied,
        "an unconstrained Decrypt grant to herself",
    );
    attack.refused(
        decrypt(&eve, &blob_b, Some(&tenant_b)),
        denied,
        "Decrypt of tenant B data",
    );
    let mallory_engine = engine.for_caller(Caller::new(mallory).unwrap());
    attack.refused(
        decrypt(&mallory_engine, &blob_b, Some(&tenant_b)),
        denied,
        "Decrypt of tenant B data by the would-be grantee",
    );
}

#[test]
fn a_constrained_create_grant_grant_can_create_an_equally_constrained_grant() {
    let engine = engine();
    let key = new_key(&engine);
    let tenant_a = ctx(&[("tenant", "A")]);
    let blob_a = seal(&engine, &key, b"tenant A", Some(&tenant_a));
    engine
        .create_grant(grant(
            &key,
            EVE,
            &[GrantOperation::Decrypt, GrantOperation::CreateGrant],
            context_equals(&[("tenant", "A")]),
        ))
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    let mallory = "arn:aws:iam::444455556666:user/mallory";
    eve.create_grant(grant(
        &key,
        mallory,
        &[GrantOperation::Decrypt],
        context_equals(&[("tenant", "A")]),
    ))
    .expect("a grant as constrained as the one that allows it");
    let mallory_engine = engine.for_caller(Caller::new(mallory).unwrap());
    assert_eq!(
        decrypt(&mallory_engine, &blob_a, Some(&tenant_a)).unwrap(),
        b"tenant A"
    );
    // A subset constraint passes on when the new grant includes its pairs.
    let subset_key = new_key(&engine);
    engine
        .create_grant(grant(
            &subset_key,
            EVE,
            &[GrantOperation::Encrypt, GrantOperation::CreateGrant],
            Some(keyplane::key::GrantConstraints {
                encryption_context_equals: None,
                encryption_context_subset: Some(tenant_a.clone()),
            }),
        ))
        .unwrap();
    eve.create_grant(grant(
        &subset_key,
        mallory,
        &[GrantOperation::Encrypt],
        Some(keyplane::key::GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(ctx(&[("tenant", "A"), ("app", "x")])),
        }),
    ))
    .expect("a subset grant that includes the parent's pairs");
}

#[test]
fn separated_duties_keep_administrators_from_the_data_and_users_from_the_policy() {
    let mut attack =
        Attack::new("administrator uses the key, or user manages it, under separated duties");
    const ADMIN: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
    const USER: &str = "arn:aws:iam::111122223333:role/app";
    let engine = engine();
    let policy = keyplane::policy::templates::separated(&[ADMIN], &[USER]).unwrap();
    let admin = engine.for_caller(Caller::new(ADMIN).unwrap());
    let user = engine.for_caller(Caller::new(USER).unwrap());
    // The lockout check passes for an administrator creating the key with it...
    let key = admin
        .create_key(CreateKeyRequest {
            policy: Some(policy.clone()),
            ..CreateKeyRequest::default()
        })
        .expect("an administrator passes the lockout check")
        .key_id;
    // ...and putting it again; it does not for a user.
    admin.put_key_policy(&key, &policy, None, false).unwrap();
    let denied = &["AccessDeniedException"];
    let blob = user
        .encrypt(&EncryptRequest::new(&key, b"data"))
        .unwrap()
        .ciphertext_blob;
    assert_eq!(decrypt(&user, &blob, None).unwrap(), b"data");
    attack.refused(
        decrypt(&admin, &blob, None),
        denied,
        "Decrypt by an administrator",
    );
    attack.refused(
        admin.encrypt(&EncryptRequest::new(&key, b"x")),
        denied,
        "Encrypt by an administrator",
    );
    attack.refused(
        admin.generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256)),
        denied,
        "GenerateDataKey by an administrator",
    );
    attack.refused(user.disable_key(&key), denied, "DisableKey by a user");
    attack.refused(
        user.put_key_policy(&key, &policy, None, true),
        denied,
        "PutKeyPolicy by a user",
    );
    attack.refused(
        user.schedule_key_deletion(&key, None),
        denied,
        "ScheduleKeyDeletion by a user",
    );
    attack.refused(
        user.create_grant(grant(&key, USER, &[GrantOperation::Decrypt], None)),
        denied,
        "CreateGrant by a user, not for an integrated service",
    );
    // The rest of the account (its root included) has nothing.
    let root = engine.for_caller(Caller::account_root("111122223333").unwrap());
    attack.refused(
        decrypt(&root, &blob, None),
        denied,
        "Decrypt by the account root",
    );
    attack.refused(
        root.disable_key(&key),
        denied,
        "DisableKey by the account root",
    );
    admin.disable_key(&key).unwrap();
}

// ---- importing key material -------------------------------------------------------------------

fn external_key(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(keyplane::Origin::External),
            ..CreateKeyRequest::default()
        })
        .unwrap()
        .key_id
}

/// RSA-OAEP-SHA256 with RustCrypto, as an importer's tool would wrap.
fn oaep_wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_der(public_der)
        .unwrap()
        .encrypt(
            &mut rand_core::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            material,
        )
        .unwrap()
}

fn import_request<'a>(
    key: &'a str,
    token: &'a [u8],
    wrapped: &'a [u8],
) -> keyplane::ImportKeyMaterialRequest<'a> {
    keyplane::ImportKeyMaterialRequest {
        key_id: key,
        import_token: token,
        encrypted_key_material: wrapped,
        expiration_model: Some(keyplane::ExpirationModel::KeyMaterialDoesNotExpire),
        ..Default::default()
    }
}

#[test]
fn an_import_token_moved_to_another_key_altered_or_forged_is_refused() {
    use keyplane::{WrappingAlgorithm as A, WrappingKeySpec as S};
    let mut attack = Attack::new("an import token replayed on another key, altered or forged");
    let engine = engine();
    let victim = external_key(&engine);
    let mine = external_key(&engine);
    let params = engine
        .get_parameters_for_import(&mine, A::RsaesOaepSha256, S::Rsa2048)
        .unwrap();
    let material = [7u8; 32];
    let wrapped = oaep_wrap(&params.public_key, &material);
    // My token, with material wrapped for it, on the victim's key.
    attack.refused(
        engine.import_key_material(&import_request(&victim, &params.import_token, &wrapped)),
        &["InvalidImportTokenException"],
        "another key's import token",
    );
    // Every single-byte change of the token, at a spread of positions.
    for i in (0..params.import_token.len()).step_by(37) {
        let mut token = params.import_token.clone();
        token[i] ^= 0x01;
        attack.refused(
            engine.import_key_material(&import_request(&mine, &token, &wrapped)),
            &["InvalidImportTokenException"],
            "an altered import token",
        );
    }
    // Truncated and extended tokens, and a token of another engine (another import secret).
    let token = &params.import_token;
    for forged in [
        token[..token.len() - 1].to_vec(),
        [token.as_slice(), &[0]].concat(),
        token[..21].to_vec(),
    ] {
        attack.refused(
            engine.import_key_material(&import_request(&mine, &forged, &wrapped)),
            &["InvalidImportTokenException", "ValidationException"],
            "a truncated or extended import token",
        );
    }
    let other = Engine::in_memory().unwrap();
    let other_key = external_key(&other);
    let other_params = other
        .get_parameters_for_import(&other_key, A::RsaesOaepSha256, S::Rsa2048)
        .unwrap();
    attack.refused(
        engine.import_key_material(&import_request(
            &mine,
            &other_params.import_token,
            &oaep_wrap(&other_params.public_key, &material),
        )),
        &["InvalidImportTokenException"],
        "another engine's import token",
    );
    for key in [&victim, &mine] {
        let meta = engine.describe_key(key).unwrap();
        assert_eq!(meta.key_state, keyplane::KeyState::PendingImport);
        assert_eq!(meta.current_key_material_id, None);
    }
}

#[test]
fn substituted_key_material_is_refused_on_reimport_and_new_import() {
    use keyplane::{WrappingAlgorithm as A, WrappingKeySpec as S};
    let mut attack = Attack::new("other key material slipped into an imported key");
    let engine = engine();
    let key = external_key(&engine);
    let params = engine
        .get_parameters_for_import(&key, A::RsaesOaepSha256, S::Rsa2048)
        .unwrap();
    let original = [1u8; 32];
    let imported = engine
        .import_key_material(&import_request(
            &key,
            &params.import_token,
            &oaep_wrap(&params.public_key, &original),
        ))
        .unwrap();
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"under the original"))
        .unwrap()
        .ciphertext_blob;
    engine.delete_imported_key_material(&key, None).unwrap();
    for i in 0..32 {
        let mut other = original;
        other[i] ^= 0x80;
        attack.refused(
            engine.import_key_material(&import_request(
                &key,
                &params.import_token,
                &oaep_wrap(&params.public_key, &other),
            )),
            &["IncorrectKeyMaterialException"],
            "a one-byte change of the original material",
        );
    }
    // Naming the original's id does not make other material acceptable.
    attack.refused(
        engine.import_key_material(&keyplane::ImportKeyMaterialRequest {
            key_material_id: Some(&imported.key_material_id),
            ..import_request(
                &key,
                &params.import_token,
                &oaep_wrap(&params.public_key, &[2u8; 32]),
            )
        }),
        &["IncorrectKeyMaterialException"],
        "other material under the original's id",
    );
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        keyplane::KeyState::PendingImport
    );
    // Flipped bits of the wrapped material are refused as a bad ciphertext.
    let wrapped = oaep_wrap(&params.public_key, &original);
    for i in (0..wrapped.len()).step_by(29) {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x10;
        attack.refused(
            engine.import_key_material(&import_request(&key, &params.import_token, &bad)),
            &["InvalidCiphertextException"],
            "altered wrapped material",
        );
    }
    // The original returns, and so does what it encrypted.
    engine
        .import_key_material(&import_request(&key, &params.import_token, &wrapped))
        .unwrap();
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"under the original");
}

// ---- envelope messages (the Encryption SDK format) ---------------------------------------------

mod envelope_attacks {
    use super::Attack;
    use keyplane::envelope::header::{read_header, HeaderLimits};
    use keyplane::envelope::{self, AlgorithmSuite, EnvelopeConfig, Keyring, RawAesKeyring};
    use keyplane::EncryptionContext;
    use std::sync::Arc;

    const TYPED: &[&str] = &[
        "InvalidCiphertextException",
        "KMSInvalidSignatureException",
        "IncorrectKeyException",
    ];

    fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
        Arc::new(RawAesKeyring::new("attack", name, &[byte; 32]).unwrap())
    }

    fn header_len(msg: &[u8]) -> usize {
        let limits = HeaderLimits {
            max_encrypted_data_keys: None,
        };
        read_header(&mut &msg[..], limits).unwrap().1.len()
    }

    fn cfg(suite: AlgorithmSuite) -> EnvelopeConfig {
        EnvelopeConfig {
            suite,
            frame_length: 64,
            ..EnvelopeConfig::default()
        }
    }

    /// An attacker streams a message to a push decryptor (the C streaming context's engine)
    /// in pieces of any size: a forged frame in the middle of a batch releases nothing of that
    /// batch; a header claiming 2^31 - 1 byte frames makes it buffer only the bytes sent; bytes
    /// after the end are refused when they arrive.
    #[test]
    fn envelope_push_decryptor_releases_only_authenticated_batches_and_buffers_only_what_is_sent() {
        let mut attack =
            Attack::new("envelope: streamed forgery, huge frame claim, trailing bytes (push)");
        let kr = aes("push", 7);
        let keyrings = std::slice::from_ref(&kr);
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let config = EnvelopeConfig {
            window_frames: 4,
            ..cfg(suite)
        };
        let pt: Vec<u8> = (0..64 * 12).map(|i| i as u8).collect();
        let msg =
            envelope::encrypt_message(keyrings, &config, &EncryptionContext::new(), &pt).unwrap();
        let body = header_len(&msg) + 16;
        let frame = 4 + 12 + 64 + 16;
        // Forge the ciphertext of frame 6 (the second of the second batch of four).
        let mut forged = msg.clone();
        forged[body + 5 * frame + 20] ^= 1;
        let mut d = envelope::PushDecryptor::new(keyrings, &config);
        let mut out = Vec::new();
        let result = d.update(&forged, &mut out);
        assert_eq!(out, pt[..4 * 64], "only the first, authenticated batch");
        attack.refused(result, TYPED, "a forged frame in a batch");
        // A header (authenticated: the attacker holds the key) claiming 2^31 - 1 byte frames,
        // then a trickle of bytes: buffered as sent, refused as truncated at the end.
        let huge = EnvelopeConfig {
            frame_length: i32::MAX as u32,
            max_buffered_plaintext: u64::MAX,
            ..config.clone()
        };
        let enc = envelope::Encryptor::new(Vec::new(), keyrings, &huge, &EncryptionContext::new())
            .unwrap();
        let mut claim = enc.get_ref().unwrap().clone();
        claim.extend_from_slice(&[0, 0, 0, 1]);
        claim.extend_from_slice(&envelope::frame::frame_iv(1));
        let mut d = envelope::PushDecryptor::new(keyrings, &huge);
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        d.update(&claim, &mut out).unwrap();
        for _ in 0..1000 {
            d.update(&[0u8; 100], &mut out).unwrap();
        }
        assert!(out.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        attack.refused(d.finish(&mut out), TYPED, "a huge frame never sent whole");
        // Trailing bytes, given after a whole message.
        let mut d = envelope::PushDecryptor::new(keyrings, &config);
        let mut out = Vec::new();
        d.update(&msg, &mut out).unwrap();
        assert_eq!(out, pt);
        attack.refused(d.update(b"x", &mut out), TYPED, "a byte after the end");
    }

    /// A malicious sender wraps a different data key for each recipient so that one message
    /// decrypts to different plaintexts ("invisible salamanders"): the committing suites tie the
    /// header to one data key, so the second recipient refuses the message.
    #[test]
    fn envelope_multi_recipient_key_substitution_is_stopped_by_commitment() {
        let mut attack = Attack::new("envelope: a different data key wrapped for one recipient");
        let (alice, bob) = (aes("alice", 1), aes("bob", 2));
        let context: EncryptionContext = [("k".to_string(), "v".to_string())].into();
        // (Unsigned: in a signed suite Bob's EDK would also need the honest context's public key
        // as its AAD, which a malicious sender has too; the commitment check is the same.)
        {
            let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
            let honest = envelope::encrypt_message(
                &[alice.clone(), bob.clone()],
                &cfg(suite),
                &context,
                b"to alice and bob",
            )
            .unwrap();
            // A second message to Bob alone, under another data key; splice its EDK in for Bob's.
            let other =
                envelope::encrypt_message(std::slice::from_ref(&bob), &cfg(suite), &context, b"x")
                    .unwrap();
            let limits = HeaderLimits {
                max_encrypted_data_keys: None,
            };
            let (mut header, raw) = read_header(&mut &honest[..], limits).unwrap();
            let (other_header, _) = read_header(&mut &other[..], limits).unwrap();
            header.encrypted_data_keys[1] = other_header.encrypted_data_keys[0].clone();
            let mut forged = header.serialize().unwrap();
            forged.extend_from_slice(&honest[raw.len()..]);
            envelope::decrypt_message(std::slice::from_ref(&alice), &cfg(suite), &forged)
                .expect_err("the header changed, so even Alice's header authentication fails");
            let refused =
                envelope::decrypt_message(std::slice::from_ref(&bob), &cfg(suite), &forged);
            match &refused {
                Err(e) => assert!(e.message().contains("commitment"), "{e}"),
                Ok(_) => panic!("Bob decrypted a message committed to another data key"),
            }
            attack.refused(
                refused,
                &["InvalidCiphertextException"],
                "a substituted data key",
            );
        }
    }

    /// Frames moved between messages, reordered, dropped, or a regular frame re-marked final
    /// (truncation disguised as an end): every variant is refused.
    #[test]
    fn envelope_frame_splicing_reordering_and_false_final_frames_are_detected() {
        let mut attack = Attack::new("envelope: frame splice, reorder, drop, false final frame");
        let kr = aes("k", 3);
        let context = EncryptionContext::new();
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let pt = vec![7u8; 64 * 4 + 10];
        let a = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg(suite), &context, &pt)
            .unwrap();
        let b = envelope::encrypt_message(std::slice::from_ref(&kr), &cfg(suite), &context, &pt)
            .unwrap();
        let frame = 4 + 12 + 64 + 16;
        let (ha, hb) = (header_len(&a) + 16, header_len(&b) + 16);
        // Frame 2 of message b in place of frame 2 of message a (same key, same position).
        let mut spliced = a.clone();
        spliced[ha + frame..ha + 2 * frame].copy_from_slice(&b[hb + frame..hb + 2 * frame]);
        attack.refused(
            envelope::decrypt_message(std::slice::from_ref(&kr), &cfg(suite), &spliced),
            TYPED,
            "a frame from another message",
        );
        // Frames 1 and 2 swapped.
        let mut swapped = a.clone();
        let (f1, f2) = (
            a[ha..ha + frame].to_vec(),
            a[ha + frame..ha + 2 * frame].to_vec(),
        );
        swapped[ha..ha + frame].copy_from_slice(&f2);
        swapped[ha + frame..ha + 2 * frame].copy_from_slice(&f1);
        attack.refused(
            envelope::decrypt_message(std::slice::from_ref(&kr), &cfg(suite), &swapped),
            TYPED,
            "two frames swapped",
        );
        // Frame 3 rewritten as a final frame (marker, sequence, IV, length, content, tag).
        let mut fake = a[..ha + 2 * frame].to_vec();
        let f3 = &a[ha + 2 * frame..ha + 3 * frame];
        fake.extend_from_slice(&[0xff; 4]);
        fake.extend_from_slice(&f3[..16]);
        fake.extend_from_slice(&64u32.to_be_bytes());
        fake.extend_from_slice(&f3[16..]);
        attack.refused(
            envelope::decrypt_message(std::slice::from_ref(&kr), &cfg(suite), &fake),
            TYPED,
            "a regular frame re-marked as the final frame",
        );
        // The message cut after any whole frame.
        for frames in 0..4 {
            attack.refused(
                envelope::decrypt_message(
                    std::slice::from_ref(&kr),
                    &cfg(suite),
                    &a[..ha + frames * frame],
                ),
                TYPED,
                "a message cut at a frame boundary",
            );
        }
    }

    /// A signed message downgraded to the unsigned suite (suite id rewritten, footer dropped), or
    /// its signature swapped for another message's: refused.
    #[test]
    fn envelope_signature_stripping_and_swapping_are_detected() {
        let mut attack = Attack::new("envelope: signature stripped, downgraded or swapped");
        let kr = aes("k", 4);
        let context = EncryptionContext::new();
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
        let a =
            envelope::encrypt_message(std::slice::from_ref(&kr), &cfg(suite), &context, b"signed")
                .unwrap();
        let b =
            envelope::encrypt_message(std::slice::from_ref(&kr), &cfg(suite), &context, b"signed")
                .unwrap();
        // Where the footer starts: a DER P-384 signature is 100 to 104 bytes, after its u16 length.
        let sig_len = |m: &[u8]| {
            (100..=110)
                .map(|l| m.len() - l - 2)
                .find(|&i| u16::from_be_bytes([m[i], m[i + 1]]) as usize == m.len() - i - 2)
                .unwrap()
        };
        let (fa, fb) = (sig_len(&a), sig_len(&b));
        let mut downgraded = a[..fa].to_vec();
        downgraded[1..3].copy_from_slice(&0x0478u16.to_be_bytes());
        attack.refused(
            envelope::decrypt_message(
                std::slice::from_ref(&kr),
                &EnvelopeConfig::default(),
                &downgraded,
            ),
            TYPED,
            "suite rewritten to the unsigned one and the footer dropped",
        );
        attack.refused(
            envelope::decrypt_message(
                std::slice::from_ref(&kr),
                &EnvelopeConfig::default(),
                &a[..fa],
            ),
            TYPED,
            "the footer dropped",
        );
        let mut swapped = a[..fa].to_vec();
        swapped.extend_from_slice(&b[fb..]);
        attack.refused(
            envelope::decrypt_message(&[kr], &EnvelopeConfig::default(), &swapped),
            TYPED,
            "another message's signature",
        );
    }
}

// ---- multi-Region keys -------------------------------------------------------------------------

const MRK_EAST: &str = "us-east-1";
const MRK_WEST: &str = "eu-west-1";

/// Two Regions: the engines of us-east-1 and eu-west-1, each on its own store and given the
/// other's; returns them and the west store.
fn two_regions() -> (
    Engine,
    Engine,
    Arc<keyplane::store::MemoryKeyStore>,
    Arc<keyplane::store::MemoryKeyStore>,
) {
    use keyplane::store::{KeyStore, MemoryKeyStore};
    let east_store = Arc::new(MemoryKeyStore::new(keyplane::LockPolicy::Require));
    let west_store = Arc::new(MemoryKeyStore::new(keyplane::LockPolicy::Require));
    let east = Engine::builder()
        .region(MRK_EAST)
        .store(east_store.clone())
        .region_store(MRK_WEST, west_store.clone() as Arc<dyn KeyStore>)
        .build()
        .unwrap();
    let west = Engine::builder()
        .region(MRK_WEST)
        .store(west_store.clone())
        .region_store(MRK_EAST, east_store.clone() as Arc<dyn KeyStore>)
        .build()
        .unwrap();
    (east, west, east_store, west_store)
}

fn new_mrk(engine: &Engine, policy: Option<String>) -> String {
    engine
        .create_key(CreateKeyRequest {
            multi_region: Some(true),
            policy,
            ..Default::default()
        })
        .unwrap()
        .key_id
}

fn replicate_to(engine: &Engine, key: &str, region: &str) -> keyplane::Result<()> {
    engine
        .replicate_key(keyplane::ReplicateKeyRequest {
            key_id: key.into(),
            replica_region: region.into(),
            ..Default::default()
        })
        .map(|_| ())
}

#[test]
fn a_replica_cannot_rotate_re_replicate_or_promote_itself() {
    let mut attack = Attack::new("a replica changing shared properties itself");
    let (east, west, _, west_store) = two_regions();
    let key = new_mrk(&east, None);
    replicate_to(&east, &key, MRK_WEST).unwrap();
    let rotations = |e: &Engine| e.list_key_rotations(&key, None, None).unwrap().items.len();
    let before = (rotations(&west), west.describe_key(&key).unwrap());
    let unsupported = &["UnsupportedOperationException"];
    attack.refused(
        west.rotate_key_on_demand(&key),
        unsupported,
        "RotateKeyOnDemand on a replica",
    );
    attack.refused(
        west.enable_key_rotation(&key, None),
        unsupported,
        "EnableKeyRotation on a replica",
    );
    attack.refused(
        west.disable_key_rotation(&key),
        unsupported,
        "DisableKeyRotation on a replica",
    );
    attack.refused(
        replicate_to(&west, &key, "ap-south-1"),
        unsupported,
        "ReplicateKey of a replica",
    );
    attack.refused(
        replicate_to(&west, &key, MRK_EAST),
        unsupported,
        "ReplicateKey of a replica back into the primary's Region",
    );
    attack.refused(
        west.update_primary_region(&key, MRK_WEST),
        unsupported,
        "UpdatePrimaryRegion called on the replica itself",
    );
    let generation = keyplane::store::KeyStore::generation(west_store.as_ref()).unwrap();
    assert_eq!((rotations(&west), west.describe_key(&key).unwrap()), before);
    assert_eq!(
        keyplane::store::KeyStore::generation(west_store.as_ref()).unwrap(),
        generation
    );
    assert_eq!(
        west.describe_key(&key)
            .unwrap()
            .multi_region_configuration
            .unwrap()
            .primary_key
            .region,
        MRK_EAST
    );
}

#[test]
fn replicate_key_without_permission_on_the_primary_writes_nothing_to_the_other_store() {
    use keyplane::store::KeyStore;
    let mut attack = Attack::new("ReplicateKey without permission on the primary key");
    let (east, _west, _, west_store) = two_regions();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": ALICE},
             "Action": "kms:ReplicateKey", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ReplicateKey",
             "Resource": "*", "Condition": {"StringEquals": {"kms:ReplicaRegion": "ap-south-1"}}},
        ]
    });
    let key = new_mrk(&east, Some(policy.to_string()));
    let single = new_key(&east);
    let generation = west_store.generation().unwrap();
    let denied = &["AccessDeniedException"];
    let alice = east.for_caller(Caller::new(ALICE).unwrap());
    let eve = east.for_caller(Caller::new(EVE).unwrap());
    let arn = east.describe_key(&key).unwrap().arn;
    for name in [key.as_str(), arn.as_str()] {
        attack.refused(
            replicate_to(&alice, name, MRK_WEST),
            denied,
            "ReplicateKey denied by the primary's policy",
        );
        attack.refused(
            replicate_to(&eve, name, MRK_WEST),
            denied,
            "ReplicateKey from another account",
        );
    }
    attack.refused(
        replicate_to(&east, &key, "ap-south-1"),
        &["AccessDeniedException"],
        "ReplicateKey into a Region the policy denies",
    );
    attack.refused(
        replicate_to(&east, &single, MRK_WEST),
        &["UnsupportedOperationException"],
        "ReplicateKey of a single-Region key",
    );
    attack.refused(
        east.dry_run().replicate_key(keyplane::ReplicateKeyRequest {
            key_id: key.clone(),
            replica_region: MRK_WEST.into(),
            ..Default::default()
        }),
        &["DryRunOperationException"],
        "a dry-run ReplicateKey",
    );
    assert_eq!(
        west_store.generation().unwrap(),
        generation,
        "the west store was written"
    );
    assert!(west_store.load().unwrap().keys.is_empty());
    assert!(east
        .describe_key(&key)
        .unwrap()
        .multi_region_configuration
        .unwrap()
        .replica_keys
        .is_empty());
}

#[test]
fn update_primary_region_needs_permission_on_the_replica_too() {
    let mut attack = Attack::new("UpdatePrimaryRegion without permission on the replica key");
    let (east, west, _, _) = two_regions();
    let key = new_mrk(&east, None);
    replicate_to(&east, &key, MRK_WEST).unwrap();
    let deny_alice = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": ALICE},
             "Action": "kms:UpdatePrimaryRegion", "Resource": "*"},
        ]
    });
    west.put_key_policy(&key, &deny_alice.to_string(), None, false)
        .unwrap();
    let alice = east.for_caller(Caller::new(ALICE).unwrap());
    attack.refused(
        alice.update_primary_region(&key, MRK_WEST),
        &["AccessDeniedException"],
        "UpdatePrimaryRegion denied by the replica's own policy",
    );
    let eve = east.for_caller(Caller::new(EVE).unwrap());
    attack.refused(
        eve.update_primary_region(&key, MRK_WEST),
        &["AccessDeniedException"],
        "UpdatePrimaryRegion from another account",
    );
    for engine in [&east, &west] {
        let config = engine
            .describe_key(&key)
            .unwrap()
            .multi_region_configuration
            .unwrap();
        assert_eq!(config.primary_key.region, MRK_EAST);
    }
}

#[test]
fn an_mrk_id_never_names_a_single_region_key_nor_the_reverse() {
    let mut attack = Attack::new("key id form substitution between mrk- and UUID ids");
    let engine = engine();
    let single = new_key(&engine);
    let multi = new_mrk(&engine, None);
    let single_uuid = uuid::Uuid::parse_str(&single).unwrap();
    let multi_uuid = uuid::Uuid::parse_str(&multi["mrk-".len()..]).unwrap();
    let blob = seal(&engine, &single, b"single", None);
    for disguised in [
        format!("mrk-{}", single_uuid.simple()),
        format!(
            "arn:aws:kms:us-east-1:111122223333:key/mrk-{}",
            single_uuid.simple()
        ),
        multi_uuid.hyphenated().to_string(),
        format!(
            "arn:aws:kms:us-east-1:111122223333:key/{}",
            multi_uuid.hyphenated()
        ),
        format!("mrk-{}", multi_uuid.simple().to_string().to_uppercase()),
        format!("MRK-{}", multi_uuid.simple()),
    ] {
        attack.refused(
            engine.describe_key(&disguised),
            &["NotFoundException"],
            "DescribeKey by a disguised id",
        );
        attack.refused(
            engine.encrypt(&EncryptRequest::new(&disguised, b"x")),
            &["NotFoundException"],
            "Encrypt by a disguised id",
        );
        attack.refused(
            engine.decrypt(&DecryptRequest::new(&blob).with_key_id(&disguised)),
            &["NotFoundException", "IncorrectKeyException"],
            "Decrypt naming a disguised id",
        );
    }
}

// ---- many keys --------------------------------------------------------------------------------

/// Keys with the same policy document share one parsed policy (to keep a million keys in memory);
/// nothing key-specific may travel with it. A grant on one key, the decision cached for a caller
/// on one key, and a policy changed on one key must not reach another key of the same document.
#[test]
fn shared_parsed_policies_do_not_carry_access_between_keys() {
    let mut attack = Attack::new("access carried between keys that share a parsed policy");
    let engine = engine();
    let keys: Vec<String> = (0..8).map(|_| new_key(&engine)).collect();
    let granted = &keys[0];
    engine
        .create_grant(CreateGrantRequest {
            key_id: granted.clone(),
            grantee_principal: EVE.into(),
            retiring_principal: None,
            operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
            constraints: None,
            name: None,
        })
        .unwrap();
    let eve = engine.for_caller(Caller::new(EVE).unwrap());
    // Eve's allowed call on the granted key goes first, so that any decision cache is warm.
    let blob = seal(&eve, granted, b"eve may", None);
    assert_eq!(decrypt(&eve, &blob, None).unwrap(), b"eve may");
    for key in &keys[1..] {
        for _ in 0..3 {
            attack.refused(
                eve.encrypt(&EncryptRequest::new(key, b"eve may not")),
                &["AccessDeniedException"],
                "Encrypt under a key of the same policy document without a grant",
            );
        }
        let theirs = seal(&engine, key, b"not eve's", None);
        attack.refused(
            decrypt(&eve, &theirs, None),
            &["AccessDeniedException"],
            "Decrypt under a key of the same policy document without a grant",
        );
    }
    // A policy that denies the account on one key leaves the others (same old document) alone,
    // and the others' shared policy does not reach the changed key.
    let denied = &keys[1];
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:PutKeyPolicy","kms:DescribeKey"],"Resource":"*"}]}"#;
    engine.put_key_policy(denied, deny, None, false).unwrap();
    attack.refused(
        engine.encrypt(&EncryptRequest::new(denied, b"x")),
        &["AccessDeniedException"],
        "Encrypt under a key whose policy changed, by the old shared policy",
    );
    for key in &keys[2..] {
        seal(&engine, key, b"still allowed", None);
    }
}

// ---- custom key stores ------------------------------------------------------------------------

#[path = "support/soft_hsm.rs"]
mod soft_hsm;

mod custom_key_stores {
    use super::soft_hsm::{engine_on, SoftHsm, ANCHOR, CLUSTER, OTHER_CLUSTER, PIN};
    use super::*;
    use keyplane::store::{KeyStore, MemoryKeyStore, StoreChange};
    use keyplane::{CreateCustomKeyStoreRequest, Origin, SecretBytes};

    /// A connected store on `cluster` and a key in it.
    fn store_and_key(engine: &Engine, name: &str, cluster: &str) -> (String, String) {
        let store = engine
            .create_custom_key_store(CreateCustomKeyStoreRequest {
                custom_key_store_name: name.into(),
                cloud_hsm_cluster_id: Some(cluster.into()),
                trust_anchor_certificate: Some(ANCHOR.into()),
                key_store_password: Some(SecretBytes::from_vec(PIN.as_bytes().to_vec())),
                ..Default::default()
            })
            .unwrap();
        engine.connect_custom_key_store(&store).unwrap();
        let key = engine
            .create_key(CreateKeyRequest {
                origin: Some(Origin::AwsCloudhsm),
                custom_key_store_id: Some(store.clone()),
                ..Default::default()
            })
            .unwrap()
            .key_id;
        (store, key)
    }

    const HSM_FORK_ENV: &str = "KEYPLANE_HSM_FORK_CHILD";
    const HSM_FORK_MARK: &str = "HSMFORK ";
    const HSM_FORK_ROUNDS: usize = 4;
    /// What a forked child of an engine with a connected HSM store saw, by its exit code.
    const HSM_FORK_VERDICTS: [&str; 8] = [
        "refused at once, naming the fork, and never reached the parent's connection",
        "Encrypt under the HSM key was not refused with KeyUnavailable naming the fork",
        "Encrypt under a keyplane-held key failed",
        "CreateKey in the store was not refused with CustomKeyStoreInvalidState naming the fork",
        "GenerateRandom from the store was not refused with CustomKeyStoreInvalidState naming \
         the fork",
        "DescribeCustomKeyStores or DisconnectCustomKeyStore failed",
        "the child called, or closed, the parent's connection",
        "panicked",
    ];

    /// A PKCS#11 session (or an XKS proxy's TLS stream) is its process's: a copy made by fork
    /// must neither send on it nor close it. The child's Encrypt under an HSM key, CreateKey in
    /// the store and GenerateRandom from it are refused; DescribeCustomKeyStores asks no health
    /// of it; its DisconnectCustomKeyStore (the in-memory store is the child's own) drops the
    /// connection without closing it; a keyplane-held key still serves the child.
    #[test]
    fn a_forked_child_uses_no_hsm_connection_of_its_parents() {
        let mut attack = Attack::new("a forked child and its parent's HSM connection");
        judge_fork_rounds(
            &mut attack,
            "custom_key_stores::hsm_fork_child_entry",
            HSM_FORK_ENV,
            HSM_FORK_MARK,
            HSM_FORK_ROUNDS,
            HSM_FORK_VERDICTS[0],
        );
    }

    /// The entry point of the HSM connection's fork scenario (started by the test above with
    /// `--ignored`); ignored, and idle, in a normal test run.
    #[test]
    #[ignore = "the HSM connection's fork scenario, started by its test"]
    fn hsm_fork_child_entry() {
        if std::env::var(HSM_FORK_ENV).is_err() {
            return;
        }
        let hsm = SoftHsm::new();
        let engine = engine_on(Arc::new(MemoryKeyStore::default()), &hsm);
        fn refused<T>(result: Result<T, keyplane::Error>, kind: keyplane::ErrorKind) -> bool {
            result.is_err_and(|e| e.kind() == kind && e.message().contains("fork"))
        }
        let (store, key) = store_and_key(&engine, "a", CLUSTER);
        let local = new_key(&engine);
        for _ in 0..HSM_FORK_ROUNDS {
            seal(&engine, &key, b"the parent's", None);
            let verdict = fork_round(&HSM_FORK_VERDICTS, || {
                let touched = hsm.touched(CLUSTER);
                if !refused(
                    engine.encrypt(&EncryptRequest::new(&key, b"mine")),
                    keyplane::ErrorKind::KeyUnavailable,
                ) {
                    return 1;
                }
                if engine
                    .encrypt(&EncryptRequest::new(&local, b"mine"))
                    .is_err()
                {
                    return 2;
                }
                let in_store = engine.create_key(CreateKeyRequest {
                    origin: Some(Origin::AwsCloudhsm),
                    custom_key_store_id: Some(store.clone()),
                    ..Default::default()
                });
                if !refused(in_store, keyplane::ErrorKind::CustomKeyStoreInvalidState) {
                    return 3;
                }
                let random = engine.generate_random_from_custom_key_store(&store, 16);
                if !refused(random, keyplane::ErrorKind::CustomKeyStoreInvalidState) {
                    return 4;
                }
                if engine
                    .describe_custom_key_stores(None, None, None, None)
                    .is_err()
                    || engine.disconnect_custom_key_store(&store).is_err()
                {
                    return 5;
                }
                if hsm.touched(CLUSTER) != touched {
                    return 6;
                }
                0
            });
            println!("{HSM_FORK_MARK}{verdict}");
            std::io::stdout().flush().unwrap();
        }
    }

    /// A ciphertext of an HSM key whose header is rewritten to name a key of another store (and
    /// the other way round, and to a keyplane-held key): the derived key differs, the tag fails.
    #[test]
    fn a_custom_key_store_ciphertext_with_its_key_swapped_is_refused() {
        let mut attack = Attack::new("custom key store ciphertext key swap");
        let hsm = SoftHsm::new();
        let engine = engine_on(Arc::new(MemoryKeyStore::default()), &hsm);
        let (_, a) = store_and_key(&engine, "a", CLUSTER);
        let (_, b) = store_and_key(&engine, "b", OTHER_CLUSTER);
        let local = new_key(&engine);
        for (from, to) in [(&a, &b), (&b, &a), (&a, &local), (&local, &a)] {
            let mut blob = seal(&engine, from, b"moved", None);
            let to_id = uuid::Uuid::parse_str(to).unwrap();
            blob[2..18].copy_from_slice(to_id.as_bytes());
            attack.refused(
                engine.decrypt(&DecryptRequest::new(&blob)),
                &["InvalidCiphertextException"],
                "a blob re-addressed to another key",
            );
        }
    }

    /// Someone with write access to the key store's records moves an HSM key to another store
    /// (whose token happens to hold a backing key with the same id): the derivation binds the
    /// store and the backing key, so the key's ciphertexts refuse to open.
    #[test]
    fn an_hsm_key_moved_to_another_store_opens_nothing() {
        let mut attack = Attack::new("custom key store record moved to another store");
        let hsm = SoftHsm::new();
        let durable = Arc::new(MemoryKeyStore::default());
        let (blob, key, other_store) = {
            let engine = engine_on(Arc::clone(&durable), &hsm);
            let (_, key) = store_and_key(&engine, "a", CLUSTER);
            let (other_store, _) = store_and_key(&engine, "b", OTHER_CLUSTER);
            (seal(&engine, &key, b"bound", None), key, other_store)
        };
        let id = uuid::Uuid::parse_str(&key).unwrap();
        let mut record = durable
            .load()
            .unwrap()
            .keys
            .into_iter()
            .find(|r| r.id == id)
            .unwrap();
        let placement = record.custom_key_store.as_mut().unwrap();
        placement.store_id = other_store;
        durable.commit(&[StoreChange::PutKey(&record)]).unwrap();
        let engine = engine_on(Arc::clone(&durable), &hsm);
        attack.refused(
            engine.decrypt(&DecryptRequest::new(&blob)),
            &["InvalidCiphertextException"],
            "a ciphertext of a key moved to another store",
        );
    }

    /// The backing key in the token is replaced by another key under the same id (an HSM
    /// administrator's swap): every ciphertext is refused, none opens to other bytes.
    #[test]
    fn a_replaced_backing_key_opens_nothing() {
        let mut attack = Attack::new("custom key store backing key replaced");
        let hsm = SoftHsm::new();
        let engine = engine_on(Arc::new(MemoryKeyStore::default()), &hsm);
        let (store, key) = store_and_key(&engine, "a", CLUSTER);
        let blobs: Vec<Vec<u8>> = (0..16u8)
            .map(|i| seal(&engine, &key, &[i; 8], None))
            .collect();
        hsm.replace_key(CLUSTER, &format!("{:016x}", 1));
        engine.disconnect_custom_key_store(&store).unwrap();
        engine.connect_custom_key_store(&store).unwrap();
        for blob in &blobs {
            attack.refused(
                engine.decrypt(&DecryptRequest::new(blob)),
                &["InvalidCiphertextException"],
                "a ciphertext under a replaced backing key",
            );
        }
    }
}

// ---- engines sharing a store (issue 19) -----------------------------------------------------

/// A store shared by two engines where a change of the other node lands exactly between this
/// node's checks and its commit: `race` runs (once) inside the first compare-and-commit, before
/// it reaches the store.
struct RacedStore {
    inner: Arc<keyplane::store::MemoryKeyStore>,
    race: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl keyplane::store::KeyStore for RacedStore {
    fn load(&self) -> keyplane::Result<keyplane::store::StoreContents> {
        self.inner.load()
    }
    fn commit(&self, changes: &[keyplane::store::StoreChange<'_>]) -> keyplane::Result<u64> {
        self.run_race();
        self.inner.commit(changes)
    }
    fn commit_at(
        &self,
        expected: u64,
        changes: &[keyplane::store::StoreChange<'_>],
    ) -> keyplane::Result<u64> {
        self.run_race();
        self.inner.commit_at(expected, changes)
    }
    fn changes_since(
        &self,
        generation: u64,
    ) -> keyplane::Result<Option<keyplane::store::StoreDelta>> {
        self.inner.changes_since(generation)
    }
    fn generation(&self) -> keyplane::Result<u64> {
        self.inner.generation()
    }
    fn describe(&self) -> String {
        "raced".into()
    }
}

impl RacedStore {
    fn run_race(&self) {
        let race = self.race.lock().unwrap().take();
        if let Some(race) = race {
            race();
        }
    }
}

/// Node A on the store itself, node B on the same store through [`RacedStore`].
fn two_nodes() -> (Engine, Engine, Arc<RacedStore>) {
    let inner = Arc::new(keyplane::store::MemoryKeyStore::default());
    let a = Engine::builder()
        .worker_threads(2)
        .store(Arc::clone(&inner) as Arc<dyn keyplane::store::KeyStore>)
        .build()
        .unwrap();
    let raced = Arc::new(RacedStore {
        inner,
        race: std::sync::Mutex::new(None),
    });
    let b = Engine::builder()
        .worker_threads(2)
        .store(Arc::clone(&raced) as Arc<dyn keyplane::store::KeyStore>)
        .build()
        .unwrap();
    (a, b, raced)
}

#[test]
fn a_disable_lost_to_a_concurrent_update_on_another_node_is_prevented() {
    let mut attack = Attack::new("a disable lost to a concurrent update on another node");
    let (a, b, raced) = two_nodes();
    for round in 0..8 {
        let key = new_key(&a);
        // B checks and builds its TagResource from the Enabled record; A's DisableKey commits
        // in between. Written blindly, B's record would put the key back to Enabled.
        let (disabler, target) = (a.clone(), key.clone());
        *raced.race.lock().unwrap() =
            Some(Box::new(move || disabler.disable_key(&target).unwrap()));
        let tag = keyplane::key::Tag {
            tag_key: format!("round{round}"),
            tag_value: "x".into(),
        };
        b.tag_resource(&key, vec![tag]).unwrap();
        assert!(raced.race.lock().unwrap().is_none(), "the race did not run");
        for (node, engine) in [("A", &a), ("B", &b)] {
            let metadata = engine.describe_key(&key).unwrap();
            assert_eq!(
                metadata.key_state,
                keyplane::KeyState::Disabled,
                "on {node}"
            );
            let tags = engine.list_resource_tags(&key, None, None).unwrap();
            assert_eq!(tags.items.len(), 1, "B's tag on {node}");
            attack.refused(
                engine.encrypt(&EncryptRequest::new(&key, b"after the disable")),
                &["DisabledException"],
                "Encrypt under a key disabled on another node during an update",
            );
        }
    }
}

#[test]
fn a_self_widening_grant_raced_from_two_nodes_is_refused() {
    let mut attack = Attack::new("a self-widening grant raced from two nodes");
    let (a, b, raced) = two_nodes();
    let eve_on_b = b.for_caller(Caller::new(EVE).unwrap());
    for _ in 0..8 {
        let key = new_key(&a);
        let held = a
            .create_grant(grant(
                &key,
                EVE,
                &[GrantOperation::CreateGrant, GrantOperation::Encrypt],
                None,
            ))
            .unwrap();
        // Eve, on B, uses her grant to give herself another; A revokes her grant in between.
        // Written blindly, B's record would bring the revoked grant back with the new one.
        let (revoker, target, id) = (a.clone(), key.clone(), held.grant_id.clone());
        *raced.race.lock().unwrap() = Some(Box::new(move || {
            revoker.revoke_grant(&target, &id).unwrap()
        }));
        attack.refused(
            eve_on_b.create_grant(grant(&key, EVE, &[GrantOperation::Encrypt], None)),
            &["AccessDeniedException"],
            "CreateGrant through a grant revoked on another node meanwhile",
        );
        assert!(raced.race.lock().unwrap().is_none(), "the race did not run");
        for engine in [&a, &b] {
            let grants = engine.list_grants(&key, None, None, None, None).unwrap();
            assert!(grants.items.is_empty(), "a revoked grant came back");
            attack.refused(
                engine
                    .for_caller(Caller::new(EVE).unwrap())
                    .encrypt(&EncryptRequest::new(&key, b"x")),
                &["AccessDeniedException"],
                "Encrypt through the revoked grant",
            );
        }
    }
}

/// A shared store that can hang (each call waits `HANG` and then fails, as a database that does
/// not answer until the connect timeout), counting the generation reads made of it.
struct Hanging {
    inner: keyplane::store::MemoryKeyStore,
    hung: std::sync::atomic::AtomicBool,
    reads: std::sync::atomic::AtomicUsize,
}

const HANG: std::time::Duration = std::time::Duration::from_millis(300);

impl Hanging {
    fn answer(&self) -> keyplane::Result<()> {
        use std::sync::atomic::Ordering;
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.hung.load(Ordering::SeqCst) {
            std::thread::sleep(HANG);
            return Err(keyplane::Error::new(
                keyplane::ErrorKind::StoreUnreachable,
                "the test store does not answer",
            ));
        }
        Ok(())
    }
}

impl keyplane::store::KeyStore for Hanging {
    fn load(&self) -> keyplane::Result<keyplane::store::StoreContents> {
        self.answer()?;
        self.inner.load()
    }
    fn commit(&self, changes: &[keyplane::store::StoreChange<'_>]) -> keyplane::Result<u64> {
        self.answer()?;
        self.inner.commit(changes)
    }
    fn commit_at(
        &self,
        expected: u64,
        changes: &[keyplane::store::StoreChange<'_>],
    ) -> keyplane::Result<u64> {
        self.answer()?;
        self.inner.commit_at(expected, changes)
    }
    fn changes_since(
        &self,
        generation: u64,
    ) -> keyplane::Result<Option<keyplane::store::StoreDelta>> {
        self.answer()?;
        self.inner.changes_since(generation)
    }
    fn generation(&self) -> keyplane::Result<u64> {
        self.answer()?;
        self.inner.generation()
    }
    fn describe(&self) -> String {
        "hanging".into()
    }
}

/// A node sharing its store follows it before answering NotFound (read-your-writes across
/// nodes). An attacker who floods a node with unknown key ids while its database does not answer
/// must not make each request wait for the store (holding the node's control-plane lock), nor
/// reach the database once per request: past the scheduler's confirmation window the node
/// answers NotFound at once.
#[test]
fn unknown_key_ids_flooded_at_a_node_whose_store_hangs() {
    use std::sync::atomic::Ordering;
    let mut attack = Attack::new("flood unknown key ids at a node whose store hangs");
    let store = Arc::new(Hanging {
        inner: keyplane::store::MemoryKeyStore::new(keyplane::LockPolicy::Warn),
        hung: false.into(),
        reads: 0.into(),
    });
    let every = std::time::Duration::from_millis(20);
    let engine = Engine::builder()
        .worker_threads(1)
        .store(Arc::clone(&store) as Arc<dyn keyplane::store::KeyStore>)
        .scheduler_interval(every)
        .build()
        .unwrap();
    let key = new_key(&engine);
    // While the store answers, an unknown id costs one follow (a generation read).
    let before = store.reads.load(Ordering::SeqCst);
    attack.refused(
        engine.encrypt(&EncryptRequest::new(
            "8d3f0c2a-0000-4000-8000-000000000001",
            b"x",
        )),
        &["NotFoundException"],
        "an unknown key id, store answering",
    );
    assert!(store.reads.load(Ordering::SeqCst) > before);
    // The store hangs; past twice the interval plus a second without an answer...
    store.hung.store(true, Ordering::SeqCst);
    std::thread::sleep(every * 2 + std::time::Duration::from_millis(1300));
    let started = Instant::now();
    for i in 0..50 {
        let id = format!("8d3f0c2a-0000-4000-8000-{i:012}");
        let encrypted = engine.encrypt(&EncryptRequest::new(&id, b"x"));
        attack.refused(encrypted, &["NotFoundException"], "an unknown key id");
        let by_alias = engine.encrypt(&EncryptRequest::new("alias/nowhere", b"x"));
        attack.refused(by_alias, &["NotFoundException"], "an unknown alias");
    }
    let took = started.elapsed();
    // ...100 unknown names answer at once: without the rule each would wait HANG (30 s).
    assert!(
        took < HANG,
        "100 unknown-key requests took {took:?} with the store hanging"
    );
    // The key the node holds is still served (no staleness bound configured).
    engine
        .encrypt(&EncryptRequest::new(&key, b"held"))
        .expect("the held key is served");
}

/// A dry run answers DryRunOperationException and counts as no use of the key, and the audit log
/// records it as a dry run: so a dry-run batch must leave nothing its items computed. A caller
/// who may decrypt would otherwise read the plaintexts from their buffers after a call the log
/// shows as a dry run (a decryption hidden from the trail), and would find ciphertexts of a call
/// that "changed nothing".
#[test]
fn a_dry_run_batch_into_buffers_hands_out_plaintext_the_log_calls_a_dry_run() {
    let mut attack =
        Attack::new("a dry-run batch that leaves its plaintexts in the caller's buffers");
    let engine = engine();
    let key = new_key(&engine);
    let secret = [0x5Au8; 48];
    let blobs: Vec<Vec<u8>> = (0..300)
        .map(|_| {
            engine
                .encrypt(&EncryptRequest::new(&key, &secret))
                .unwrap()
                .ciphertext_blob
                .to_vec()
        })
        .collect();
    let dry = engine.dry_run();
    // Small (on the calling thread) and large (shared with the pool) batches.
    for n in [3usize, 300] {
        let requests: Vec<DecryptRequest<'_>> =
            blobs[..n].iter().map(|b| DecryptRequest::new(b)).collect();
        let mut buffers = vec![vec![0u8; 64]; n];
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
        let results = dry.decrypt_batch_into(&requests, &mut outputs);
        left_nothing(&mut attack, results, &buffers, "a dry-run decrypt");

        let plaintexts: Vec<&[u8]> = vec![&secret[..]; n];
        let encrypts: Vec<EncryptRequest<'_>> = plaintexts
            .iter()
            .map(|p| EncryptRequest::new(&key, p))
            .collect();
        let mut buffers = vec![vec![0u8; ciphertext::blob_len(secret.len())]; n];
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
        let results = dry.encrypt_batch_into(&encrypts, &mut outputs);
        left_nothing(&mut attack, results, &buffers, "a dry-run encrypt");
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
        let results = dry.encrypt_batch_one_key(&key, None, &plaintexts, &mut outputs);
        left_nothing(&mut attack, results, &buffers, "a dry-run one-key encrypt");

        // Kept outputs: every item answers the dry run (that their buffer holds none of the
        // plaintexts is checked inside the engine, `batch_outputs`' tests).
        let mut kept = keyplane::BatchOutputs::new();
        dry.decrypt_batch_to(&requests, &mut kept);
        assert_eq!(kept.len(), n);
        for item in kept.iter() {
            attack.refused(
                item.map(<[u8]>::to_vec).map_err(Clone::clone),
                &["DryRunOperationException"],
                "a dry-run decrypt into kept outputs",
            );
        }
    }
}

/// Every item of a dry-run batch answered the dry run, and the caller's `buffers` hold nothing
/// the items computed.
fn left_nothing(
    attack: &mut Attack,
    results: keyplane::WrittenItems,
    buffers: &[Vec<u8>],
    what: &str,
) {
    assert_eq!(results.len(), buffers.len());
    for result in results.into_results() {
        attack.refused(result, &["DryRunOperationException"], what);
    }
    assert!(
        buffers.iter().all(|b| b.iter().all(|&x| x == 0)),
        "{what}, {} items: the caller's buffers keep what the items computed",
        buffers.len()
    );
}
