//! The data plane under concurrent control-plane changes, and nonce uniqueness across threads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use keyplane::ciphertext;
use keyplane::{DecryptRequest, EncryptRequest, EncryptionContext, Engine};
use keyplane_testkit::new_key;

fn worker_count() -> usize {
    thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(4, 8)
}

/// A blob, the plaintext it was made from, and the key id it was encrypted under.
type Sealed = (Vec<u8>, Vec<u8>, String);

/// A plaintext that names its writer, round and item, so a mix-up cannot go unnoticed.
fn message(worker: usize, round: usize, item: usize) -> Vec<u8> {
    let mut m = format!("w{worker}-r{round}-i{item}-").into_bytes();
    m.resize(24 + item % 90, (worker * 31 + item) as u8);
    m
}

#[test]
fn batches_stay_correct_while_keys_rotate_and_toggle() {
    let engine = Engine::in_memory().unwrap();
    // Rotated on demand (within the service's 25 per key) while in use.
    let rotating: Vec<String> = (0..3).map(|_| new_key(&engine)).collect();
    // Disabled and enabled again and again while in use.
    let toggled: Vec<String> = (0..2).map(|_| new_key(&engine)).collect();
    let keys: Vec<String> = rotating.iter().chain(&toggled).cloned().collect();
    let toggled_ids: HashSet<String> = toggled.iter().cloned().collect();
    let context: EncryptionContext = [("purpose".to_owned(), "stress".to_owned())].into();

    const ROTATIONS_PER_KEY: usize = 20;
    /// Each worker runs at least this many rounds, and on until every rotation is done.
    const MIN_ROUNDS: usize = 30;
    const MAX_ROUNDS: usize = 2000;
    const BATCH: usize = 400;
    let workers = worker_count();
    let stop = AtomicBool::new(false);
    let rotations = AtomicUsize::new(0);
    let rotations_done = AtomicBool::new(false);
    let total_rounds = AtomicUsize::new(0);
    let toggles = AtomicUsize::new(0);
    let disabled_errors = AtomicUsize::new(0);
    // Every blob that encrypted, with its plaintext and key, to check again at the end.
    let sealed: Mutex<Vec<Sealed>> = Mutex::new(Vec::new());
    let started = Instant::now();

    thread::scope(|s| {
        let control = s.spawn(|| {
            let mut counts = vec![0usize; rotating.len()];
            let mut step = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let key = &toggled[step % toggled.len()];
                engine.disable_key(key).unwrap();
                thread::sleep(Duration::from_micros(300));
                engine.enable_key(key).unwrap();
                toggles.fetch_add(1, Ordering::Relaxed);
                let i = step % rotating.len();
                if counts[i] < ROTATIONS_PER_KEY {
                    engine.rotate_key_on_demand(&rotating[i]).unwrap();
                    counts[i] += 1;
                    rotations.fetch_add(1, Ordering::Relaxed);
                } else if counts.iter().all(|&c| c == ROTATIONS_PER_KEY) {
                    rotations_done.store(true, Ordering::Relaxed);
                }
                step += 1;
                thread::sleep(Duration::from_millis(1));
            }
            counts
        });

        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (engine, keys, toggled_ids, context) = (&engine, &keys, &toggled_ids, &context);
                let (sealed, disabled_errors) = (&sealed, &disabled_errors);
                let (rotations_done, total_rounds) = (&rotations_done, &total_rounds);
                s.spawn(move || {
                    for round in 0..MAX_ROUNDS {
                        if round >= MIN_ROUNDS && rotations_done.load(Ordering::Relaxed) {
                            break;
                        }
                        total_rounds.fetch_add(1, Ordering::Relaxed);
                        let messages: Vec<Vec<u8>> =
                            (0..BATCH).map(|i| message(w, round, i)).collect();
                        let key_of = |i: usize| &keys[(i + w + round) % keys.len()];
                        let requests: Vec<EncryptRequest<'_>> = messages
                            .iter()
                            .enumerate()
                            .map(|(i, m)| {
                                let r = EncryptRequest::new(key_of(i), m);
                                if i % 2 == 0 {
                                    r.with_context(context)
                                } else {
                                    r
                                }
                            })
                            .collect();
                        let mut ok = Vec::new();
                        for (i, result) in engine.encrypt_batch(&requests).into_iter().enumerate() {
                            match result {
                                Ok(blob) => {
                                    let parsed = ciphertext::parse(&blob).unwrap();
                                    assert_eq!(parsed.key_id.to_string(), *key_of(i));
                                    ok.push((i, blob.into_vec()));
                                }
                                Err(e) => {
                                    assert_eq!(e.code(), "DisabledException", "encrypt: {e}");
                                    assert!(toggled_ids.contains(key_of(i)), "encrypt: {e}");
                                    disabled_errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        let decrypts: Vec<DecryptRequest<'_>> = ok
                            .iter()
                            .map(|(i, blob)| {
                                let r = DecryptRequest::new(blob);
                                let r = if i % 2 == 0 {
                                    r.with_context(context)
                                } else {
                                    r
                                };
                                if i % 3 == 0 {
                                    r.with_key_id(key_of(*i))
                                } else {
                                    r
                                }
                            })
                            .collect();
                        for ((i, _), result) in ok.iter().zip(engine.decrypt_batch(&decrypts)) {
                            match result {
                                Ok(plaintext) => assert_eq!(
                                    plaintext.expose(),
                                    messages[*i].as_slice(),
                                    "decrypt returned another message"
                                ),
                                Err(e) => {
                                    assert_eq!(e.code(), "DisabledException", "decrypt: {e}");
                                    assert!(toggled_ids.contains(key_of(*i)), "decrypt: {e}");
                                    disabled_errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        // Single calls too, between the batches.
                        let (i, blob) = &ok[round % ok.len()];
                        let single = DecryptRequest::new(blob);
                        let single = if i % 2 == 0 {
                            single.with_context(context)
                        } else {
                            single
                        };
                        match engine.decrypt(&single) {
                            Ok(opened) => {
                                assert_eq!(opened.plaintext.expose(), messages[*i].as_slice())
                            }
                            Err(e) => assert_eq!(e.code(), "DisabledException", "{e}"),
                        }
                        let mut sealed = sealed.lock().unwrap();
                        for (i, blob) in ok {
                            sealed.push((blob, messages[i].clone(), key_of(i).clone()));
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("a worker panicked");
        }
        stop.store(true, Ordering::Relaxed);
        let counts = control.join().expect("the control thread panicked");
        assert!(counts.iter().all(|&c| c <= ROTATIONS_PER_KEY));
    });
    let elapsed = started.elapsed();
    eprintln!(
        "{} rounds, {} rotations, {} toggles, {} disabled errors, {:?}",
        total_rounds.load(Ordering::Relaxed),
        rotations.load(Ordering::Relaxed),
        toggles.load(Ordering::Relaxed),
        disabled_errors.load(Ordering::Relaxed),
        elapsed
    );

    // The control thread really ran alongside.
    assert!(toggles.load(Ordering::Relaxed) > 0);
    assert!(rotations.load(Ordering::Relaxed) > 0);

    // With every key enabled again, everything that encrypted decrypts to what was encrypted,
    // and blobs of the rotated keys carry several versions.
    let sealed = sealed.into_inner().unwrap();
    assert!(rotations_done.load(Ordering::Relaxed));
    assert_eq!(rotations.load(Ordering::Relaxed), 3 * ROTATIONS_PER_KEY);
    let expected_total = total_rounds.load(Ordering::Relaxed) * BATCH;
    assert!(
        sealed.len() <= expected_total
            && sealed.len() + disabled_errors.load(Ordering::Relaxed) >= expected_total,
        "every encrypt item either sealed or failed as disabled"
    );
    let mut versions: HashMap<&str, HashSet<u32>> = HashMap::new();
    let requests: Vec<DecryptRequest<'_>> = sealed
        .iter()
        .map(|(blob, _, key)| {
            versions
                .entry(key.as_str())
                .or_default()
                .insert(ciphertext::parse(blob).unwrap().key_version);
            DecryptRequest::new(blob)
        })
        .collect();
    let with_context: Vec<DecryptRequest<'_>> = sealed
        .iter()
        .map(|(blob, _, _)| DecryptRequest::new(blob).with_context(&context))
        .collect();
    let mut opened = 0;
    for (((_, plaintext, _), plain), bound) in sealed
        .iter()
        .zip(engine.decrypt_batch(&requests))
        .zip(engine.decrypt_batch(&with_context))
    {
        // Exactly one of the two passes opens each blob, with the right plaintext.
        match (plain, bound) {
            (Ok(p), Err(_)) | (Err(_), Ok(p)) => {
                assert_eq!(p.expose(), plaintext.as_slice());
                opened += 1;
            }
            (Ok(_), Ok(_)) => panic!("a blob opened with and without its context"),
            (Err(a), Err(b)) => panic!("a blob no longer decrypts: {a} / {b}"),
        }
    }
    assert_eq!(opened, sealed.len());
    let rotated_versions: usize = rotating
        .iter()
        .map(|k| versions.get(k.as_str()).map_or(0, |v| v.len()))
        .sum();
    assert!(
        rotated_versions > rotating.len(),
        "the rotated keys' blobs should span several versions"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "stress run took {elapsed:?}"
    );
}

/// Encrypts from 8 threads with one key and checks that no (salt, nonce) pair repeats.
fn no_nonce_reuse_across_threads(engine: &Engine, per_thread: usize) -> usize {
    let key = new_key(engine);
    let blobs: Vec<Vec<u8>> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let key = &key;
                s.spawn(move || {
                    let mut blobs = Vec::with_capacity(per_thread * 2);
                    // Single calls...
                    for i in 0..per_thread {
                        let m = message(t, 0, i);
                        blobs.push(
                            engine
                                .encrypt(&EncryptRequest::new(key, &m))
                                .unwrap()
                                .ciphertext_blob,
                        );
                    }
                    // ...and a batch large enough for the worker pool.
                    let messages: Vec<Vec<u8>> =
                        (0..per_thread).map(|i| message(t, 1, i)).collect();
                    let requests: Vec<EncryptRequest<'_>> = messages
                        .iter()
                        .map(|m| EncryptRequest::new(key, m))
                        .collect();
                    blobs.extend(
                        engine
                            .encrypt_batch(&requests)
                            .into_iter()
                            .map(|r| r.unwrap().into_vec()),
                    );
                    blobs
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("encrypting thread panicked"))
            .collect()
    });
    assert_eq!(blobs.len(), 8 * per_thread * 2);
    let mut pairs = HashSet::new();
    let mut salts = HashSet::new();
    for blob in &blobs {
        let parsed = ciphertext::parse(blob).unwrap();
        assert!(
            pairs.insert((*parsed.salt, *parsed.nonce)),
            "a (salt, nonce) pair was used twice"
        );
        salts.insert(*parsed.salt);
    }
    // Everything decrypts.
    let requests: Vec<DecryptRequest<'_>> = blobs.iter().map(|b| DecryptRequest::new(b)).collect();
    for result in engine.decrypt_batch(&requests) {
        result.unwrap();
    }
    salts.len()
}

#[test]
fn eight_threads_one_key_no_salt_nonce_pair_repeats() {
    let engine = Engine::in_memory().unwrap();
    no_nonce_reuse_across_threads(&engine, 500);
}

#[test]
fn eight_threads_one_key_small_derived_key_limit_no_pair_repeats() {
    let engine = Engine::builder()
        .messages_per_derived_key(3)
        .build()
        .unwrap();
    let salts = no_nonce_reuse_across_threads(&engine, 300);
    assert!(
        salts >= 8 * 300 * 2 / 3,
        "{salts} salts for 4800 messages at 3 each"
    );
}
