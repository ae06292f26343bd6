//! Propagation and cold-load cost do not grow with the number of keys, shown without timing: the
//! store's traffic is counted by a proxy between it and PostgreSQL that parses the wire protocol
//! (statements the client sends: Query and Execute messages; rows the server returns: DataRow
//! messages). With 20,000 keys loaded by the bulk path:
//!
//! - one change reaches a follower (the store's `changes_since`, and an engine catching up) as a
//!   delta of one key, reading a handful of rows, not 20,000;
//! - a cold `load` issues as many statements with 20,000 keys as with ten (O(1) queries), while it
//!   does read every row (the counter is checked against the rows it must read);
//! - the bulk path itself: rows sealed and logged as single commits (verify is pristine, material
//!   round-trips, a follower's delta over a bulk load names every key), a key already stored or
//!   material that does not match its records refuses the whole load.
//!
//! Runs against the server of scripts/test-postgres (KEYPLANE_TEST_POSTGRES).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{err_text, key_record, material, report, with_state, TestDb};
use keyplane::key::KeyRecord;
use keyplane::store::{KeyStore, StoreChange, StoredMaterial};
use keyplane::LockedBytes;
use keyplane::{Engine, Error, KeyState, LockPolicy};
use keyplane_postgres::{PgOptions, PostgresKeyStore};

/// What the proxy counted.
#[derive(Default)]
struct Counts {
    /// Query ('Q') and Execute ('E') messages from the client.
    statements: AtomicU64,
    /// DataRow ('D') messages from the server.
    rows: AtomicU64,
}

impl Counts {
    fn now(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::SeqCst),
            self.rows.load(Ordering::SeqCst),
        )
    }
}

/// Copies `from` to `to`, counting messages of the `tags` kinds before forwarding them (so a
/// count is complete by the time the other side has the bytes). The client's first message (the
/// startup message) has no tag byte; with sslmode=disable every later one, and every one from
/// the server, has.
fn pump(mut from: TcpStream, mut to: TcpStream, untagged_first: bool, tags: &[u8], n: &AtomicU64) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first = untagged_first;
    loop {
        let got = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(got) => got,
        };
        pending.extend_from_slice(&chunk[..got]);
        let mut at = 0;
        loop {
            let rest = &pending[at..];
            if first {
                if rest.len() < 4 {
                    break;
                }
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                if rest.len() < len {
                    break;
                }
                at += len;
                first = false;
                continue;
            }
            if rest.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            if rest.len() < 1 + len {
                break;
            }
            if tags.contains(&rest[0]) {
                n.fetch_add(1, Ordering::SeqCst);
            }
            at += 1 + len;
        }
        pending.drain(..at);
        if to.write_all(&chunk[..got]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A counting proxy to `upstream` (host:port); returns its port.
fn proxy(upstream: String, counts: Arc<Counts>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = Arc::clone(&counts);
            std::thread::spawn(move || pump(client, server, true, b"QE", &up.statements));
            let down = Arc::clone(&counts);
            std::thread::spawn(move || pump(s2, c2, false, b"D", &down.rows));
        }
    });
    port
}

/// The test database's address through a new counting proxy.
fn through_proxy(db: &TestDb) -> (String, Arc<Counts>) {
    let (head, tail) = db.url.split_once('@').expect("user@host in the address");
    let (host_port, name) = tail.split_once('/').expect("a database in the address");
    let counts = Arc::new(Counts::default());
    let port = proxy(host_port.to_owned(), Arc::clone(&counts));
    (
        format!("{head}@127.0.0.1:{port}/{name}?sslmode=disable"),
        counts,
    )
}

fn open(db: &TestDb, url: &str) -> Arc<PostgresKeyStore> {
    Arc::new(PostgresKeyStore::open(url, db.provider(), PgOptions::default()).expect("open"))
}

/// `n` new keys as the engine makes them, each with material (byte `i % 251`).
fn batch(n: usize) -> (Vec<KeyRecord>, Vec<StoredMaterial>) {
    let records: Vec<KeyRecord> = (0..n).map(|_| key_record()).collect();
    let materials = records
        .iter()
        .enumerate()
        .map(|(i, r)| StoredMaterial {
            key_id: r.id,
            version: r.versions[0].version,
            material: material((i % 251) as u8),
        })
        .collect();
    (records, materials)
}

const KEYS: usize = 20_000;

#[test]
fn propagation_and_cold_load_do_not_grow_with_the_number_of_keys() {
    let Some(db) = TestDb::new() else { return };
    let leader = db.init();
    for _ in 0..10 {
        common::create_key(leader.as_ref(), 7);
    }
    let (url, counts) = through_proxy(&db);
    let follower = open(&db, &url);

    // A cold load among ten keys: its statements and rows.
    let (s0, r0) = counts.now();
    let small = follower.load().unwrap();
    let (s1, r1) = counts.now();
    assert_eq!(small.keys.len(), 10);
    let small_statements = s1 - s0;
    assert!(
        r1 - r0 >= 30,
        "ten keys and twenty copies read: {}",
        r1 - r0
    );

    // 20,000 more keys in two bulk commits.
    let mut loaded = Vec::new();
    for _ in 0..2 {
        let (records, materials) = batch(KEYS / 2);
        leader.bulk_insert_keys(&records, &materials).unwrap();
        loaded.push((records, materials));
    }

    // A follower at the generation before the bulk loads would get every loaded key as its
    // delta; a follower at the current generation gets only what changes next.
    let (s0, r0) = counts.now();
    let large = follower.load().unwrap();
    let (s1, r1) = counts.now();
    assert_eq!(large.keys.len(), KEYS + 10);
    assert_eq!(large.materials.len(), KEYS + 10);
    assert_eq!(
        s1 - s0,
        small_statements,
        "a cold load issues the same statements whatever the number of keys"
    );
    assert!(
        r1 - r0 >= (3 * KEYS) as u64,
        "the counter sees every key row and both copies of its material: {}",
        r1 - r0
    );
    report(&format!(
        "cold load: {small_statements} statements with 10 keys and with {} keys ({} rows read)",
        KEYS + 10,
        r1 - r0
    ));

    // One change among 20,010 keys: a delta of one key, a few rows read.
    let target = &loaded[1].0[1234];
    let before = large.generation;
    leader
        .commit(&[StoreChange::PutKey(&with_state(target, KeyState::Disabled))])
        .unwrap();
    let (s0, r0) = counts.now();
    let delta = follower.changes_since(before).unwrap().expect("a delta");
    let (s1, r1) = counts.now();
    assert_eq!(delta.keys.len(), 1, "one key changed");
    assert_eq!(delta.keys[0].0, target.id);
    assert_eq!(
        delta.keys[0].1.as_ref().map(|r| r.state),
        Some(KeyState::Disabled)
    );
    assert_eq!(delta.materials.len(), 1, "that key's one version");
    assert!(delta.aliases.is_empty());
    assert!(
        r1 - r0 <= 10,
        "one change among {} keys reads {} rows",
        KEYS + 10,
        r1 - r0
    );
    assert!(s1 - s0 <= 12, "and issues {} statements", s1 - s0);
    report(&format!(
        "changes_since one change among {} keys: {} statements, {} rows",
        KEYS + 10,
        s1 - s0,
        r1 - r0
    ));

    // An engine following through the proxy catches up on a change with a delta too: it loads
    // every key once (at build), then one change costs a few rows.
    let engine = Engine::builder()
        .store(Arc::clone(&follower) as Arc<dyn KeyStore>)
        .lock_policy(LockPolicy::Require)
        .worker_threads(1)
        .max_keys(100_000)
        .build()
        .unwrap();
    let other = &loaded[0].0[42];
    leader
        .commit(&[StoreChange::PutKey(&with_state(other, KeyState::Disabled))])
        .unwrap();
    let (s0, r0) = counts.now();
    let described = engine.describe_key(&other.id.to_string()).unwrap();
    let (s1, r1) = counts.now();
    assert!(!described.enabled, "the follower sees the change");
    assert!(
        r1 - r0 <= 12,
        "an engine among {} keys caught up on one change reading {} rows ({} statements)",
        KEYS + 10,
        r1 - r0,
        s1 - s0
    );
}

#[test]
fn bulk_load_is_sealed_logged_and_all_or_nothing() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let first = common::create_key(store.as_ref(), 1);
    let follower = db.open();
    let seen = follower.generation().unwrap();

    let (records, materials) = batch(300);
    let generation = store.bulk_insert_keys(&records, &materials).unwrap();
    assert_eq!(generation, seen + 1, "one bulk load is one commit");
    let report = store.verify(false).unwrap();
    assert!(report.is_pristine(), "{:?}", report.problems);
    assert_eq!(report.keys, 301);

    // A reader gets every record and every material byte back.
    let contents = db.open().load().unwrap();
    assert_eq!(contents.keys.len(), 301);
    for (i, r) in records.iter().enumerate().step_by(37) {
        let got = contents.keys.iter().find(|k| k.id == r.id).expect("loaded");
        assert_eq!(got, r);
        let m = contents
            .materials
            .iter()
            .find(|m| m.key_id == r.id)
            .expect("material");
        assert_eq!(
            m.material.expose(keyplane::SecretAccess::granted()),
            &[(i % 251) as u8; 32][..]
        );
    }
    // A follower's delta names every loaded key with its material (the change log has them).
    let delta = follower.changes_since(seen).unwrap().expect("a delta");
    assert_eq!(delta.keys.len(), 300);
    assert_eq!(delta.materials.len(), 300);

    // A key already stored refuses the whole load; nothing is written.
    let (mut again, mut again_m) = batch(3);
    again.push(first.clone());
    again_m.push(StoredMaterial {
        key_id: first.id,
        version: first.versions[0].version,
        material: material(9),
    });
    let (e, text) = err_text(store.bulk_insert_keys(&again, &again_m));
    assert!(matches!(e, Error::AlreadyExists(_)), "{text}");
    assert_eq!(store.generation().unwrap(), generation);

    // Material must match the records exactly: missing, extra or doubled is refused.
    let (recs, mut mats) = batch(2);
    mats.pop();
    let (e, text) = err_text(store.bulk_insert_keys(&recs, &mats));
    assert!(matches!(e, Error::Validation(_)), "{text}");
    assert!(text.contains("has no material"), "{text}");
    let (recs, mut mats) = batch(2);
    mats.push(StoredMaterial {
        key_id: recs[0].id,
        version: 99,
        material: LockedBytes::copy_from(&[1; 32], LockPolicy::Require).unwrap(),
    });
    let (e, text) = err_text(store.bulk_insert_keys(&recs, &mats));
    assert!(matches!(e, Error::Validation(_)), "{text}");
    let (mut recs, mats) = batch(1);
    recs.push(recs[0].clone());
    let (e, text) = err_text(store.bulk_insert_keys(&recs, &mats));
    assert!(
        matches!(e, Error::Validation(_)) && text.contains("twice"),
        "{text}"
    );
    let (e, _) = err_text(store.bulk_insert_keys(&[], &[]));
    assert!(matches!(e, Error::Validation(_)));
    assert_eq!(
        store.generation().unwrap(),
        generation,
        "nothing was written"
    );
    assert!(store.verify(false).unwrap().is_pristine());
}
