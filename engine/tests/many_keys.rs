//! Many keys: control-plane changes do not grow with the number of keys the engine holds.
//!
//! No test here measures time. The scaling probe prints costs for a person to read and is
//! `#[ignore]`d (run it with `--ignored --nocapture`).

use std::time::Instant;

use keyplane::{CreateKeyRequest, EncryptRequest, Engine, LockPolicy};
use keyplane_testkit::new_key;

fn engine(max_keys: usize) -> Engine {
    Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .max_keys(max_keys)
        .build()
        .unwrap()
}

/// Prints CreateKey's cost per key as the engine fills up (a probe, not a test: it asserts
/// nothing about time).
#[test]
#[ignore = "a probe that prints costs; run with --ignored --nocapture"]
fn probe_create_key_cost_as_the_engine_fills() {
    let sizes: Vec<usize> = std::env::var("KEYPLANE_PROBE_SIZES")
        .unwrap_or_else(|_| "1000,4000,16000".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    // KEYPLANE_PROBE_AUDIT=1: with an audit log (synced), to see that the audit adds nothing that
    // grows with the number of keys.
    let audit_dir = tempfile::tempdir().unwrap();
    let mut builder = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .max_keys(*sizes.iter().max().unwrap() + 1000);
    let signing_key;
    if std::env::var("KEYPLANE_PROBE_AUDIT").is_ok_and(|v| v == "1") {
        signing_key =
            keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
        builder = builder.audit(
            keyplane::audit::AuditConfig::new(audit_dir.path().join("audit.log")),
            signing_key,
        );
    }
    let engine = builder.build().unwrap();
    let mut held = 0usize;
    let mut first = String::new();
    for size in sizes {
        while held < size {
            let m = engine.create_key(CreateKeyRequest::default()).unwrap();
            if first.is_empty() {
                first = m.key_id.clone();
            }
            held += 1;
        }
        let started = Instant::now();
        let probe = 200;
        for _ in 0..probe {
            engine.create_key(CreateKeyRequest::default()).unwrap();
        }
        held += probe;
        let create = started.elapsed().as_secs_f64() * 1e6 / probe as f64;
        let started = Instant::now();
        for _ in 0..2000 {
            engine
                .encrypt(&EncryptRequest::new(&first, &[7u8; 64]))
                .unwrap();
        }
        let encrypt = started.elapsed().as_secs_f64() * 1e9 / 2000.0;
        eprintln!("{size:>8} keys: CreateKey {create:8.1} us/key, Encrypt {encrypt:8.0} ns/op");
    }
}

/// The scheduler finds due work through its index of due dates, not a walk of every key: with
/// many keys about, a cancelled deletion is not carried out, a scheduled one is, and a disabled
/// key's due rotation waits until the key is enabled again.
#[test]
fn due_work_among_many_keys_is_done_once_and_only_where_due() {
    use std::sync::Arc;
    use std::time::Duration;

    use keyplane::ManualClock;

    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .clock(clock.clone())
        .build()
        .unwrap();
    let keys: Vec<String> = (0..300).map(|_| new_key(&engine)).collect();
    let (cancelled, deleted, rotated) = (&keys[10], &keys[20], &keys[30]);
    engine.schedule_key_deletion(cancelled, Some(7)).unwrap();
    engine.cancel_key_deletion(cancelled).unwrap();
    engine.schedule_key_deletion(deleted, Some(7)).unwrap();
    engine.enable_key_rotation(rotated, Some(90)).unwrap();
    engine.disable_key(rotated).unwrap();
    let material = |key: &str| engine.describe_key(key).unwrap().current_key_material_id;
    let before = material(rotated);

    clock.advance(Duration::from_secs(8 * 86_400));
    engine.run_due_tasks().unwrap();
    assert_eq!(
        engine.describe_key(deleted).unwrap_err().code(),
        "NotFoundException"
    );
    // A cancelled deletion leaves the key Disabled, as in the service; it is not deleted.
    assert_eq!(
        engine.describe_key(cancelled).unwrap().key_state,
        keyplane::KeyState::Disabled
    );

    clock.advance(Duration::from_secs(90 * 86_400));
    engine.run_due_tasks().unwrap();
    assert_eq!(material(rotated), before, "a disabled key rotated");
    engine.enable_key(rotated).unwrap();
    engine.run_due_tasks().unwrap();
    let after = material(rotated);
    assert_ne!(
        after, before,
        "the due rotation was lost while the key was disabled"
    );
    engine.run_due_tasks().unwrap();
    assert_eq!(material(rotated), after, "the rotation ran twice");
    // Every other key is as it was.
    let page = engine.list_keys(Some(1000), None).unwrap();
    assert_eq!(page.items.len(), 299);
}

/// ListKeys pages from its marker by a range of the key map: every key once, in order, whatever
/// the page size; a marker in another spelling (upper case) pages as the string comparison says.
#[test]
fn list_keys_pages_through_many_keys_from_the_marker() {
    let engine = engine(3000);
    let mut ids: Vec<String> = (0..2500).map(|_| new_key(&engine)).collect();
    ids.sort();
    for limit in [1000u32, 333] {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = engine.list_keys(Some(limit), marker.as_deref()).unwrap();
            seen.extend(page.items.into_iter().map(|k| k.key_id));
            if !page.truncated {
                break;
            }
            marker = page.next_marker;
        }
        assert_eq!(seen, ids);
    }
    let upper = ids[1200].to_uppercase();
    let page = engine.list_keys(Some(1000), Some(&upper)).unwrap();
    let expected: Vec<&String> = ids
        .iter()
        .filter(|id| id.as_str() > upper.as_str())
        .take(1000)
        .collect();
    let got: Vec<&String> = page.items.iter().map(|k| &k.key_id).collect();
    assert_eq!(got, expected);
}

/// A million keys in the in-memory engine: every one is created, listed once, and usable.
/// `#[ignore]`d because it takes minutes in a debug build and about 3.5 GB of memory; run with
/// `cargo test -p keyplane --test many_keys -- --ignored a_million`. It asserts no time.
#[test]
#[ignore = "minutes and ~3.5 GB in a debug build; run with --ignored"]
fn a_million_keys_fit_in_the_in_memory_engine() {
    const KEYS: usize = 1_000_000;
    let engine = engine(KEYS);
    let mut kept = Vec::new();
    for i in 0..KEYS {
        let key = new_key(&engine);
        if i % 1000 == 0 || i == KEYS - 1 {
            kept.push(key);
        }
    }
    assert_eq!(
        engine
            .create_key(CreateKeyRequest::default())
            .unwrap_err()
            .code(),
        "LimitExceededException"
    );
    let mut listed = 0;
    let mut marker: Option<String> = None;
    loop {
        let page = engine.list_keys(Some(1000), marker.as_deref()).unwrap();
        listed += page.items.len();
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(listed, KEYS);
    for key in &kept {
        assert!(engine.describe_key(key).unwrap().enabled);
        let blob = engine
            .encrypt(&EncryptRequest::new(key, b"a million"))
            .unwrap()
            .ciphertext_blob;
        let plain = engine
            .decrypt(&keyplane::DecryptRequest::new(&blob))
            .unwrap()
            .plaintext;
        assert_eq!(plain.expose(), b"a million");
    }
}

/// ListAliases pages from its marker by a range of the alias map (or the key's own aliases):
/// every alias once, in name order, with the predefined `alias/aws/*` names among them as before.
#[test]
fn list_aliases_pages_through_many_aliases_from_the_marker() {
    let engine = engine(1000);
    let keys: Vec<String> = (0..60).map(|_| new_key(&engine)).collect();
    let mut names: Vec<String> = Vec::new();
    for i in 0..400 {
        // Names on both sides of the predefined "alias/aws/...".
        let name = format!("alias/{}{i:03}", if i % 2 == 0 { "a" } else { "b" });
        engine.create_alias(&name, &keys[i % keys.len()]).unwrap();
        names.push(name);
    }
    let mut everything = names.clone();
    everything.extend(
        keyplane::INTEGRATED_SERVICES
            .iter()
            .map(|s| format!("alias/aws/{s}")),
    );
    everything.sort();
    let pages = |key: Option<&str>, limit: u32| {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = engine
                .list_aliases(key, Some(limit), marker.as_deref())
                .unwrap();
            seen.extend(page.items.into_iter().map(|a| a.alias_name));
            if !page.truncated {
                return seen;
            }
            marker = page.next_marker;
        }
    };
    for limit in [100u32, 7, 1] {
        assert_eq!(pages(None, limit), everything);
    }
    let mut of_key: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % keys.len() == 5)
        .map(|(_, n)| n.clone())
        .collect();
    of_key.sort();
    for limit in [100u32, 2] {
        assert_eq!(pages(Some(&keys[5]), limit), of_key);
    }
}
