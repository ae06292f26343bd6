//! `Engine::encrypt_batch_to` and `decrypt_batch_to`: every item's output in one buffer the
//! caller keeps. They answer item by item as the allocating batch calls do (successes and each
//! error), reuse the buffer from call to call, and cannot be made to allocate for items they
//! refuse.

use keyplane::{
    BatchOutputs, DecryptRequest, EncryptRequest, EncryptionAlgorithm, Engine, KeySpec, KeyUsage,
};
use keyplane_testkit::new_key_of;

/// Requests naming every kind of key and failure: symmetric keys (two, by id and by alias), an
/// RSA key with OAEP, a disabled key, a key that does not exist, an empty plaintext and one over
/// the limit.
struct Mix {
    engine: Engine,
    keys: Vec<String>,
    messages: Vec<Vec<u8>>,
}

impl Mix {
    fn new(threads: usize) -> Mix {
        let engine = Engine::builder().worker_threads(threads).build().unwrap();
        let a = new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        let b = new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        engine.create_alias("alias/batch-b", &b).unwrap();
        let rsa = new_key_of(&engine, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        let disabled = new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        engine.disable_key(&disabled).unwrap();
        let missing = "1234abcd-12ab-34cd-56ef-1234567890ab".to_owned();
        let messages = (0..600)
            .map(|i| match i % 50 {
                17 => Vec::new(),
                29 => vec![1u8; 5000],
                _ => vec![(i % 251) as u8; [1, 64, 1000, 4096, 190][i % 5]],
            })
            .collect();
        Mix {
            engine,
            keys: vec![a, "alias/batch-b".into(), rsa, disabled, missing],
            messages,
        }
    }

    fn requests(&self) -> Vec<EncryptRequest<'_>> {
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let which = if i % 37 == 3 {
                    3
                } else if i % 41 == 5 {
                    4
                } else {
                    i % 3
                };
                let mut r = EncryptRequest::new(&self.keys[which], m);
                if which == 2 {
                    r.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
                    r.plaintext = &m[..m.len().min(190)];
                }
                r
            })
            .collect()
    }
}

#[test]
fn outputs_answer_item_by_item_as_the_allocating_calls_do() {
    for threads in [1, 4] {
        let mix = Mix::new(threads);
        let requests = mix.requests();
        let mut out = BatchOutputs::new();
        mix.engine.encrypt_batch_to(&requests, &mut out);
        let allocated = mix.engine.encrypt_batch(&requests);
        assert_eq!(out.len(), requests.len());
        let mut decrypts = Vec::new();
        let mut ok = 0;
        for (i, (ours, theirs)) in out.iter().zip(&allocated).enumerate() {
            match (ours, theirs) {
                (Ok(blob), Ok(other)) => {
                    ok += 1;
                    assert_eq!(blob.len(), other.len(), "item {i}");
                    assert_ne!(blob, &other[..], "item {i}: a fresh nonce or salt per blob");
                    let mut d = DecryptRequest::new(blob);
                    if i % 3 == 2 {
                        d.key_id = Some(&mix.keys[2]);
                        d.encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha256);
                    }
                    decrypts.push((i, d));
                }
                (Err(e), Err(f)) => assert_eq!(e.code(), f.code(), "item {i}: {e} / {f}"),
                (a, b) => panic!(
                    "item {i}: {:?} / {:?}",
                    a.map(<[u8]>::len),
                    b.as_ref().map(|b| b.len())
                ),
            }
        }
        assert!(ok > 450 && ok < 600, "{ok} of 600 succeeded");

        let requests: Vec<DecryptRequest<'_>> = decrypts.iter().map(|(_, d)| *d).collect();
        let mut plain = BatchOutputs::new();
        mix.engine.decrypt_batch_to(&requests, &mut plain);
        assert_eq!(plain.len(), requests.len());
        for ((i, _), got) in decrypts.iter().zip(plain.iter()) {
            let sent = mix.requests()[*i].plaintext;
            assert_eq!(got.unwrap(), sent, "item {i} round-trips");
        }
    }
}

#[test]
fn a_tampered_or_foreign_blob_fails_alone_and_the_rest_decrypt() {
    let mix = Mix::new(2);
    let messages: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 100 + i]).collect();
    let requests: Vec<EncryptRequest<'_>> = messages
        .iter()
        .map(|m| EncryptRequest::new(&mix.keys[0], m))
        .collect();
    let mut out = BatchOutputs::new();
    mix.engine.encrypt_batch_to(&requests, &mut out);
    let mut blobs: Vec<Vec<u8>> = out.iter().map(|b| b.unwrap().to_vec()).collect();
    let last = blobs[7].len() - 1;
    blobs[7][last] ^= 1;
    blobs[9].truncate(20);
    let decrypts: Vec<DecryptRequest<'_>> = blobs.iter().map(|b| DecryptRequest::new(b)).collect();
    let mut plain = BatchOutputs::new();
    mix.engine.decrypt_batch_to(&decrypts, &mut plain);
    for (i, got) in plain.iter().enumerate() {
        match i {
            7 | 9 => assert_eq!(got.unwrap_err().code(), "InvalidCiphertextException"),
            _ => assert_eq!(got.unwrap(), &messages[i][..], "item {i}"),
        }
    }
}

#[test]
fn the_buffer_is_reused_from_call_to_call_and_grows_only_when_it_must() {
    let mix = Mix::new(2);
    let small: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 64]).collect();
    let large: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 4096]).collect();
    let mut out = BatchOutputs::new();
    let run = |out: &mut BatchOutputs, ms: &[Vec<u8>]| {
        let rs: Vec<EncryptRequest<'_>> = ms
            .iter()
            .map(|m| EncryptRequest::new(&mix.keys[0], m))
            .collect();
        mix.engine.encrypt_batch_to(&rs, out);
        assert!(out.iter().all(|r| r.is_ok()));
    };
    run(&mut out, &large);
    let sized = out.capacity();
    assert!(sized >= 100 * 4096);
    run(&mut out, &small);
    assert_eq!(out.capacity(), sized, "a smaller batch keeps the buffer");
    run(&mut out, &large);
    assert_eq!(out.capacity(), sized, "the same batch again fits");
    out.clear();
    assert!(out.is_empty());
    assert_eq!(out.capacity(), sized, "clear keeps the memory, zeroed");
}

/// A caller cannot make the engine allocate room for what it refuses: plaintexts over the limit,
/// ciphertexts longer than any blob, and keys that do not exist get no room.
#[test]
fn refused_items_get_no_room() {
    let mix = Mix::new(1);
    let huge = vec![0u8; 64 << 20];
    let requests = vec![
        EncryptRequest::new(&mix.keys[0], &huge),
        EncryptRequest::new("alias/no-such-alias", &huge[..4096]),
        EncryptRequest::new(&mix.keys[4], &huge[..4096]),
    ];
    let mut out = BatchOutputs::new();
    mix.engine.encrypt_batch_to(&requests, &mut out);
    assert!(out.iter().all(|r| r.is_err()));
    assert_eq!(out.capacity(), 0);
    let decrypts = vec![DecryptRequest::new(&huge)];
    mix.engine.decrypt_batch_to(&decrypts, &mut out);
    assert_eq!(
        out.get(0).unwrap().unwrap_err().code(),
        "ValidationException"
    );
    assert_eq!(out.capacity(), 0);
}

/// GenerateMac into kept outputs: each MAC equals the allocating call's (HMAC is deterministic),
/// for every algorithm's length; refused items fail alone with the allocating call's error.
#[test]
fn macs_into_kept_outputs_equal_the_allocating_calls() {
    use keyplane::{GenerateMacRequest, MacAlgorithm};
    let engine = Engine::builder().worker_threads(3).build().unwrap();
    let keys = [
        (
            new_key_of(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
            MacAlgorithm::HmacSha256,
        ),
        (
            new_key_of(&engine, KeySpec::Hmac512, KeyUsage::GenerateVerifyMac),
            MacAlgorithm::HmacSha512,
        ),
        (
            new_key_of(&engine, KeySpec::Hmac224, KeyUsage::GenerateVerifyMac),
            MacAlgorithm::HmacSha224,
        ),
    ];
    let messages: Vec<Vec<u8>> = (0..500)
        .map(|i| {
            if i % 61 == 7 {
                Vec::new()
            } else {
                vec![i as u8; 1 + i % 300]
            }
        })
        .collect();
    let requests: Vec<GenerateMacRequest<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (k, a) = &keys[i % 3];
            // Every 50th asks for an algorithm its key does not have.
            let mac_algorithm = if i % 50 == 9 {
                MacAlgorithm::HmacSha384
            } else {
                *a
            };
            GenerateMacRequest {
                key_id: k,
                message: m,
                mac_algorithm,
            }
        })
        .collect();
    let mut out = BatchOutputs::new();
    engine.generate_mac_batch_to(&requests, &mut out);
    let allocated = engine.generate_mac_batch(&requests);
    assert_eq!(out.len(), requests.len());
    let mut ok = 0;
    for (i, (ours, theirs)) in out.iter().zip(&allocated).enumerate() {
        match (ours, theirs) {
            (Ok(mac), Ok(other)) => {
                ok += 1;
                assert_eq!(mac, &other[..], "item {i}");
            }
            (Err(e), Err(f)) => assert_eq!(e.code(), f.code(), "item {i}"),
            (a, b) => panic!(
                "item {i}: {:?} / {:?}",
                a.map(<[u8]>::len),
                b.as_ref().map(|mac| mac.len())
            ),
        }
    }
    assert!(ok > 450 && ok < 500, "{ok} of 500");
}
