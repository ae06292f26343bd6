//! Several engines sharing one key store (issue 19, the engine half): no lost update, a bounded
//! retry that ends in ConflictException, incremental following of changes made elsewhere,
//! push wake-ups and the staleness bound.
//!
//! The model-based part (`support/shared_store_model.rs`) is shared with the SQLite store's
//! tests. Sizes: `KEYPLANE_SHARED_STEPS` (default 150) operations per engine.

#[path = "support/shared_store_model.rs"]
mod shared_store_model;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keyplane::store::{KeyStore, MemoryKeyStore, StoreChange, StoreContents};
use keyplane::{CreateKeyRequest, Engine, ErrorKind, LockPolicy, Tag};

fn steps() -> usize {
    std::env::var("KEYPLANE_SHARED_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn engine_on(store: &Arc<dyn KeyStore>) -> Engine {
    Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .store(Arc::clone(store))
        .build()
        .unwrap()
}

fn memory_store() -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::new(LockPolicy::Warn))
}

#[test]
fn two_engines_on_one_memory_store_agree_with_the_model() {
    let store = memory_store();
    let engines = [engine_on(&store), engine_on(&store)];
    let counts = shared_store_model::check(&engines, &store, steps(), 0x5eed_0002);
    println!(
        "assurance: 2 engines, {} operations, {} ended in ConflictException",
        counts.operations, counts.conflicts
    );
}

#[test]
fn three_engines_on_one_memory_store_agree_with_the_model() {
    for seed in 0..3u64 {
        let store = memory_store();
        let engines = [engine_on(&store), engine_on(&store), engine_on(&store)];
        let counts = shared_store_model::check(&engines, &store, steps(), 0x5eed_0003 + seed);
        println!(
            "assurance: 3 engines, seed {seed}, {} operations, {} ended in ConflictException",
            counts.operations, counts.conflicts
        );
    }
}

#[test]
fn concurrent_tags_from_three_engines_on_one_key_are_all_kept() {
    let store = memory_store();
    let engines = [engine_on(&store), engine_on(&store), engine_on(&store)];
    let key = engines[0]
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    std::thread::scope(|scope| {
        for (t, engine) in engines.iter().enumerate() {
            let key = key.as_str();
            scope.spawn(move || {
                for n in 0..12 {
                    let tag = Tag {
                        tag_key: format!("e{t}-{n}"),
                        tag_value: "x".into(),
                    };
                    engine.tag_resource(key, vec![tag]).unwrap();
                }
            });
        }
    });
    for engine in &engines {
        let tags = engine.list_resource_tags(&key, None, None).unwrap();
        assert_eq!(tags.items.len(), 36, "a concurrent TagResource was lost");
    }
}

/// A store that answers every compare-and-commit with Conflict, as one that another node keeps
/// changing would, and counts the tries.
struct AlwaysMovesOn {
    inner: MemoryKeyStore,
    tries: AtomicUsize,
}

impl KeyStore for AlwaysMovesOn {
    fn load(&self) -> keyplane::Result<StoreContents> {
        self.inner.load()
    }
    fn commit(&self, changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.inner.commit(changes)
    }
    fn commit_at(&self, expected: u64, _changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        Err(keyplane::messages::store_conflict(expected, expected + 1))
    }
    fn generation(&self) -> keyplane::Result<u64> {
        self.inner.generation()
    }
    fn describe(&self) -> String {
        "always-moves-on".into()
    }
}

#[test]
fn a_store_that_keeps_moving_on_gives_conflict_after_the_retry_limit_and_changes_nothing() {
    let store = Arc::new(AlwaysMovesOn {
        inner: MemoryKeyStore::new(LockPolicy::Warn),
        tries: AtomicUsize::new(0),
    });
    let engine = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .store(Arc::clone(&store) as Arc<dyn KeyStore>)
        .build()
        .unwrap();
    let err = engine.create_key(CreateKeyRequest::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.code(), "ConflictException");
    assert!(
        err.message().contains("kept changing") && err.message().contains("Retry"),
        "{}",
        err.message()
    );
    assert_eq!(
        store.tries.load(Ordering::SeqCst),
        8,
        "tries before giving up"
    );
    assert!(store.inner.load().unwrap().keys.is_empty());
    assert!(engine.list_keys(None, None).unwrap().items.is_empty());
}
