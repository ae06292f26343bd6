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
use keyplane_testkit::new_key;

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

/// A memory store that pushes a wake-up to every subscriber after each commit (as PostgreSQL's
/// LISTEN/NOTIFY would) and can be made unreachable.
struct Pushing {
    inner: MemoryKeyStore,
    subscribers: std::sync::Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    unreachable: std::sync::atomic::AtomicBool,
}

impl Pushing {
    fn new() -> Arc<Self> {
        Arc::new(Pushing {
            inner: MemoryKeyStore::new(LockPolicy::Warn),
            subscribers: std::sync::Mutex::new(Vec::new()),
            unreachable: std::sync::atomic::AtomicBool::new(false),
        })
    }
    fn reachable(&self) -> keyplane::Result<()> {
        if self.unreachable.load(Ordering::SeqCst) {
            return Err(keyplane::Error::new(
                ErrorKind::StoreUnreachable,
                "the test store is unreachable",
            ));
        }
        Ok(())
    }
    fn notify(&self) {
        for wake in self.subscribers.lock().unwrap().iter() {
            wake();
        }
    }
}

impl KeyStore for Pushing {
    fn load(&self) -> keyplane::Result<StoreContents> {
        self.reachable()?;
        self.inner.load()
    }
    fn commit(&self, changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.reachable()?;
        let generation = self.inner.commit(changes)?;
        self.notify();
        Ok(generation)
    }
    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.reachable()?;
        let generation = self.inner.commit_at(expected, changes)?;
        self.notify();
        Ok(generation)
    }
    fn changes_since(
        &self,
        generation: u64,
    ) -> keyplane::Result<Option<keyplane::store::StoreDelta>> {
        self.reachable()?;
        self.inner.changes_since(generation)
    }
    fn generation(&self) -> keyplane::Result<u64> {
        self.reachable()?;
        self.inner.generation()
    }
    fn subscribe(&self, wake: Arc<dyn Fn() + Send + Sync>) -> keyplane::Result<bool> {
        self.subscribers.lock().unwrap().push(wake);
        Ok(true)
    }
    fn describe(&self) -> String {
        "pushing".into()
    }
}

fn encrypts(engine: &Engine, key: &str) -> keyplane::Result<Vec<u8>> {
    engine
        .encrypt(&keyplane::EncryptRequest::new(key, b"propagation"))
        .map(|r| r.ciphertext_blob)
}

/// Waits (at most `limit`) until `done` holds; returns how long it took.
fn wait_until(
    limit: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    None
}

#[test]
fn a_disable_on_one_engine_is_refused_on_the_other_once_pushed() {
    let store = Pushing::new();
    let shared: Arc<dyn KeyStore> = Arc::clone(&store) as Arc<dyn KeyStore>;
    // The poll interval is far longer than the test: only the push can make it in time.
    let poll = std::time::Duration::from_secs(3600);
    let build = || {
        Engine::builder()
            .lock_policy(LockPolicy::Warn)
            .store(Arc::clone(&shared))
            .scheduler_interval(poll)
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    assert_eq!(
        store.subscribers.lock().unwrap().len(),
        2,
        "both engines subscribed"
    );
    let mut propagation = Vec::new();
    for _ in 0..20 {
        let key = new_key(&b);
        // A key made on B encrypts on A once pushed.
        wait_until(std::time::Duration::from_secs(10), || {
            encrypts(&a, &key).is_ok()
        })
        .expect("a key made on B never reached A");
        b.disable_key(&key).unwrap();
        let took = wait_until(std::time::Duration::from_secs(10), || {
            encrypts(&a, &key).is_err_and(|e| e.code() == "DisabledException")
        })
        .expect("a disable on B never reached A's data plane");
        propagation.push(took);
    }
    propagation.sort();
    println!(
        "measured: disable on B refused on A after p50 {:?}, max {:?} ({} rounds, pushed; poll \
         {poll:?})",
        propagation[propagation.len() / 2],
        propagation[propagation.len() - 1],
        propagation.len()
    );
}

#[test]
fn an_unreachable_store_is_served_until_the_staleness_bound_then_refused_until_it_answers() {
    let store = Pushing::new();
    let bound = std::time::Duration::from_millis(1000);
    let engine = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .store(Arc::clone(&store) as Arc<dyn KeyStore>)
        .scheduler_interval(std::time::Duration::from_millis(20))
        .max_staleness(bound)
        .build()
        .unwrap();
    let key = new_key(&engine);
    let blob = encrypts(&engine, &key).unwrap();
    // Confirmed at or after `cut` (a follow, now), then the store goes away.
    let cut = std::time::Instant::now();
    engine.run_due_tasks().unwrap();
    store.unreachable.store(true, Ordering::SeqCst);
    // The data plane keeps serving the keys it holds...
    encrypts(&engine, &key).unwrap();
    engine
        .decrypt(&keyplane::DecryptRequest::new(&blob))
        .unwrap();
    // ... while the control plane answers that the store cannot be reached.
    for result in [
        engine.describe_key(&key).map(|_| ()),
        engine.disable_key(&key),
        engine.create_key(CreateKeyRequest::default()).map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnreachable);
        assert_eq!(e.code(), "DependencyTimeoutException");
    }
    // Past the bound, it fails closed, naming the reason.
    wait_until(std::time::Duration::from_secs(10), || {
        encrypts(&engine, &key).is_err()
    })
    .expect("the data plane never failed closed");
    assert!(cut.elapsed() > bound, "failed closed before the bound");
    let e = encrypts(&engine, &key).unwrap_err();
    assert_eq!(e.code(), "KeyUnavailableException");
    assert!(e.message().contains("staleness bound"), "{}", e.message());
    let e = engine
        .decrypt(&keyplane::DecryptRequest::new(&blob))
        .unwrap_err();
    assert_eq!(e.code(), "KeyUnavailableException");
    // The store answers again: the next follow confirms the view and the keys serve again.
    store.unreachable.store(false, Ordering::SeqCst);
    wait_until(std::time::Duration::from_secs(10), || {
        encrypts(&engine, &key).is_ok()
    })
    .expect("the data plane did not resume");
    engine.describe_key(&key).unwrap();
}

#[test]
fn a_staleness_bound_needs_a_scheduler_shorter_than_it() {
    for builder in [
        Engine::builder().max_staleness(std::time::Duration::from_secs(1)),
        Engine::builder()
            .max_staleness(std::time::Duration::from_secs(1))
            .scheduler_interval(std::time::Duration::from_secs(2)),
    ] {
        let e = builder.lock_policy(LockPolicy::Warn).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    }
}

#[test]
fn a_key_or_alias_made_on_another_engine_is_found_at_once_not_after_the_next_follow() {
    // A store that does not push and engines without a scheduler: nothing but the request
    // itself can make B follow.
    let store = memory_store();
    let (a, b) = (engine_on(&store), engine_on(&store));
    let key = new_key(&a);
    a.create_alias("alias/made-on-a", &key).unwrap();
    // Read-your-writes across engines: B catches up before answering NotFound.
    let blob = encrypts(&b, &key).expect("a key made on A, by id on B");
    encrypts(&b, "alias/made-on-a").expect("an alias made on A, on B");
    let plain = a.decrypt(&keyplane::DecryptRequest::new(&blob)).unwrap();
    assert_eq!(plain.plaintext.expose(), b"propagation");
    // A blob of a key B has never seen decrypts on B.
    let other = new_key(&a);
    let blob = encrypts(&a, &other).unwrap();
    let plain = b.decrypt(&keyplane::DecryptRequest::new(&blob)).unwrap();
    assert_eq!(plain.plaintext.expose(), b"propagation");
    // Batches too (a server coalesces requests into them).
    let third = new_key(&a);
    let batch = b.encrypt_batch(&[
        keyplane::EncryptRequest::new(&key, b"one"),
        keyplane::EncryptRequest::new(&third, b"two"),
    ]);
    assert!(batch.iter().all(Result::is_ok), "{batch:?}");
    // And a batch large enough to be shared between threads, whose unknown key is met by a
    // helper's chunk rather than the calling thread's: the batch runs again once B caught up.
    let shared = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .store(Arc::clone(&store))
        .worker_threads(4)
        .build()
        .unwrap();
    encrypts(&shared, &key).unwrap();
    let fourth = new_key(&a);
    let requests: Vec<_> = (0..4000)
        .map(|i| keyplane::EncryptRequest::new(if i < 3999 { &key } else { &fourth }, b"many"))
        .collect();
    let results = shared.encrypt_batch(&requests);
    assert!(results.iter().all(Result::is_ok), "{:?}", results[3999]);
    // What exists nowhere is still NotFound, the same answer as before.
    let e = encrypts(&b, "alias/made-nowhere").unwrap_err();
    assert_eq!(e.code(), "NotFoundException");
    let e = encrypts(&b, "0b2c6a3e-1111-4222-8333-444455556666").unwrap_err();
    assert_eq!(e.code(), "NotFoundException");
    // A deletion elsewhere is not undone by it: an alias deleted on A is NotFound on B once B
    // follows (the catch-up only adds what B lacks; B's own follow removes).
    a.delete_alias("alias/made-on-a").unwrap();
    b.run_due_tasks().unwrap();
    let e = encrypts(&b, "alias/made-on-a").unwrap_err();
    assert_eq!(e.code(), "NotFoundException");
}
