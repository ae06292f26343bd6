//! `commit_at` under concurrency: of the stores that commit at one generation exactly one wins,
//! the others get `Conflict`; read-modify-write cycles from several threads and stores lose no
//! update; afterwards every store loads what the database and the model hold.

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use keyplane::store::{KeyStore, StoreChange};
use keyplane::Error;

#[test]
fn exactly_one_of_many_commits_at_one_generation_wins() {
    let Some(db) = TestDb::new() else { return };
    let first = db.init();
    let stores: Vec<_> = (0..6).map(|_| db.open()).collect();
    for round in 0..5u64 {
        let g = first.generation().unwrap();
        let barrier = Arc::new(Barrier::new(stores.len()));
        let outcomes: Vec<keyplane::Result<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .map(|store| {
                    let barrier = barrier.clone();
                    s.spawn(move || {
                        let k = key_record();
                        barrier.wait();
                        store.commit_at(g, &[StoreChange::PutKey(&k)])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().copied())
            .collect();
        assert_eq!(wins, vec![g + 1], "round {round}: {outcomes:?}");
        for o in &outcomes {
            if let Err(e) = o {
                assert!(matches!(e, Error::Conflict(_)), "{e}");
                assert_eq!(e.kind().code(), "ConflictException");
            }
        }
        assert_eq!(first.load().unwrap().keys.len() as u64, round + 1);
    }
}

/// The counter a key's description holds.
fn counter(store: &dyn KeyStore, id: &uuid::Uuid) -> u64 {
    store
        .load_key(id)
        .unwrap()
        .unwrap()
        .description
        .parse()
        .unwrap()
}

#[test]
fn two_hundred_concurrent_read_modify_writes_lose_nothing() {
    let Some(db) = TestDb::new() else { return };
    let first = db.init();
    let mut keys = Vec::new();
    for b in 0..5 {
        let mut k = key_record();
        k.description = "0".into();
        put_key(first.as_ref(), &k, b);
        keys.push(k.id);
    }
    let stores: Vec<_> = (0..4).map(|_| db.open()).collect();
    let per_thread = 50;
    let conflicts: usize = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(t, store)| {
                let keys = keys.clone();
                s.spawn(move || {
                    let mut conflicts = 0;
                    let mut rng = (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    for _ in 0..per_thread {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let id = keys[(rng % keys.len() as u64) as usize];
                        loop {
                            let g = store.generation().unwrap();
                            let mut record = store.load_key(&id).unwrap().unwrap();
                            let n: u64 = record.description.parse().unwrap();
                            record.description = (n + 1).to_string();
                            match store.commit_at(g, &[StoreChange::PutKey(&record)]) {
                                Ok(_) => break,
                                Err(Error::Conflict(_)) => conflicts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    report(&format!(
        "postgres: 200 read-modify-writes from 4 stores, {conflicts} conflicts retried"
    ));
    let total: u64 = keys.iter().map(|id| counter(first.as_ref(), id)).sum();
    assert_eq!(total, 200, "no update lost");
    let reference = first.load().unwrap();
    assert_eq!(reference.generation, 5 + 200);
    for store in &stores {
        let c = store.load().unwrap();
        assert_eq!(c.generation, reference.generation);
        let mut a = c.keys.clone();
        let mut b = reference.keys.clone();
        a.sort_by_key(|k| k.id);
        b.sort_by_key(|k| k.id);
        assert_eq!(a, b);
        assert_eq!(c.materials.len(), 5);
    }
    assert!(first.verify(false).unwrap().is_pristine());
}

#[test]
fn an_alias_never_points_at_a_key_deleted_meanwhile() {
    let Some(db) = TestDb::new() else { return };
    let a = db.init();
    let b = db.open();
    let k = create_key(a.as_ref(), 1);
    b.commit(&[StoreChange::DeleteKey(k.id)]).unwrap();
    // `a` has not caught up, and its plain commit (no generation check) still cannot point an
    // alias at the deleted key.
    let (e, text) = err_text(a.commit(&[StoreChange::PutAlias(&alias("alias/x", k.id))]));
    assert!(matches!(e, Error::Conflict(_)), "{text}");
    assert!(a.load().unwrap().aliases.is_empty());
}

/// A regression: threads sharing one store, some committing and some reading. A read whose
/// snapshot began just before another thread's commit sees the older generation, which is no
/// rollback (the node's witness was once compared as it stood after the read, and refused it).
#[test]
fn threads_sharing_one_store_read_and_commit_without_false_rollbacks() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let k = create_key(store.as_ref(), 1);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (commits, reads) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        store.commit(&[StoreChange::PutKey(&k)]).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let (store, stop, k) = (&store, &stop, &k);
        let readers: Vec<_> = (0..3)
            .map(|i| {
                s.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        match i {
                            0 => drop(store.generation().unwrap()),
                            1 => drop(store.load_key(&k.id).unwrap()),
                            _ => drop(store.changes_since(1).unwrap()),
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let c: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
        let r: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
        (c, r)
    });
    report(&format!(
        "postgres: one store, 2 writer and 3 reader threads: {commits} commits, {reads} reads"
    ));
    assert!(commits > 10 && reads > 10);
    assert_eq!(store.generation().unwrap(), 1 + commits);
}
