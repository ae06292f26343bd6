//! A custom key store that stops answering never blocks other keys: DescribeCustomKeyStores'
//! health checks and ConnectCustomKeyStore reach the HSM or XKS proxy with the control-plane lock
//! released. The backend here is the software HSM of `support/soft_hsm.rs` behind gates that hold
//! its `connect` and `health` calls for as long as a test wants (a proxy that accepted the
//! connection and never answers); while one is held, CreateKey, Encrypt, Decrypt and
//! DescribeCustomKeyStores of keyplane-held keys complete in another thread. The tests assert
//! ordering (those calls finished while the held call was still held), not timing; with the lock
//! held across the backend call they would wait forever (each waits at most a minute, then
//! releases the gate and fails).
//!
//! The outcome of a call made without the lock is applied only if nothing changed meanwhile: a
//! health failure only to the connection that failed, a connection only to a store still
//! CONNECTING under that attempt.

#[path = "support/soft_hsm.rs"]
mod soft_hsm;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use keyplane::custom_key_store::{
    BackingKeyId, ConnectFailure, Connection, ConnectionErrorCode, ConnectionState,
    CustomKeyStoreBackend, CustomKeyStoreRecord, CustomKeyStoreType,
};
use keyplane::LockedBytes;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine,
    SecretBytes,
};
use keyplane_testkit::new_key;
use soft_hsm::{SoftHsm, ANCHOR, CLUSTER, PIN};
use uuid::Uuid;

/// Long enough for any machine; only reached when a call is blocked.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Held {
    connect: bool,
    health: bool,
    /// The data path: the HSM's salt key (an XKS proxy's Encrypt takes its place).
    salt: bool,
    /// CreateKey in the store: the HSM makes the backing key (an XKS proxy's GetKeyMetadata).
    backing: bool,
    /// What a held health check answers once released.
    health_fails: bool,
}

/// Holds backend calls while closed; says which call arrived.
struct Gate {
    held: Mutex<Held>,
    changed: Condvar,
    arrived: Mutex<Sender<&'static str>>,
}

impl Gate {
    fn new() -> (Arc<Gate>, Receiver<&'static str>) {
        let (tx, rx) = mpsc::channel();
        let gate = Gate {
            held: Mutex::new(Held::default()),
            changed: Condvar::new(),
            arrived: Mutex::new(tx),
        };
        (Arc::new(gate), rx)
    }

    fn set(&self, f: impl FnOnce(&mut Held)) {
        f(&mut self.held.lock().unwrap());
        self.changed.notify_all();
    }

    /// Announces `call`, then waits while it is held.
    fn pass(&self, call: &'static str, held: impl Fn(&Held) -> bool) -> bool {
        let _ = self.arrived.lock().unwrap().send(call);
        let mut state = self.held.lock().unwrap();
        while held(&state) {
            state = self.changed.wait(state).unwrap();
        }
        state.health_fails
    }
}

struct GatedBackend {
    hsm: SoftHsm,
    gate: Arc<Gate>,
}

struct GatedConnection {
    inner: Arc<dyn Connection>,
    gate: Arc<Gate>,
}

impl CustomKeyStoreBackend for GatedBackend {
    fn check_definition(&self, store: &CustomKeyStoreRecord) -> keyplane::Result<()> {
        self.hsm.check_definition(store)
    }

    fn connect(
        &self,
        store: &CustomKeyStoreRecord,
        secret: &LockedBytes,
    ) -> Result<Arc<dyn Connection>, ConnectFailure> {
        self.gate.pass("connect", |h| h.connect);
        let inner = self.hsm.connect(store, secret)?;
        Ok(Arc::new(GatedConnection {
            inner,
            gate: Arc::clone(&self.gate),
        }))
    }

    fn describe(&self) -> String {
        "gated soft HSM".into()
    }
}

impl Connection for GatedConnection {
    fn create_backing_key(&self, key_id: &Uuid) -> keyplane::Result<BackingKeyId> {
        self.gate.pass("backing", |h| h.backing);
        self.inner.create_backing_key(key_id)
    }

    fn check_backing_key(&self, backing_key: &str) -> keyplane::Result<()> {
        self.inner.check_backing_key(backing_key)
    }

    fn salt_key(&self, backing_key: &str, salt: &[u8; 32]) -> keyplane::Result<LockedBytes> {
        self.gate.pass("salt", |h| h.salt);
        self.inner.salt_key(backing_key, salt)
    }

    fn random(&self, out: &mut [u8]) -> keyplane::Result<()> {
        self.inner.random(out)
    }

    fn health(&self) -> Result<(), ConnectFailure> {
        if self.gate.pass("health", |h| h.health) {
            return Err(ConnectFailure::new(
                ConnectionErrorCode::NetworkErrors,
                "the gate said the HSM is gone",
            ));
        }
        self.inner.health()
    }
}

fn engine(gate: &Arc<Gate>) -> Engine {
    Engine::builder()
        .custom_key_store_backend(
            CustomKeyStoreType::AwsCloudhsm,
            Arc::new(GatedBackend {
                hsm: SoftHsm::new(),
                gate: Arc::clone(gate),
            }),
        )
        .build()
        .unwrap()
}

fn new_store(engine: &Engine) -> String {
    engine
        .create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: "gated".into(),
            cloud_hsm_cluster_id: Some(CLUSTER.into()),
            trust_anchor_certificate: Some(ANCHOR.into()),
            key_store_password: Some(SecretBytes::from_vec(PIN.as_bytes().to_vec())),
            ..Default::default()
        })
        .unwrap()
}

fn state_of(engine: &Engine, id: &str) -> ConnectionState {
    engine
        .describe_custom_key_stores(Some(id), None, None, None)
        .unwrap()
        .items[0]
        .connection_state
}

/// CreateKey of a key whose material the HSM of `store` holds.
fn hsm_key_request(store: &str) -> CreateKeyRequest {
    CreateKeyRequest {
        origin: Some(keyplane::Origin::AwsCloudhsm),
        custom_key_store_id: Some(store.to_owned()),
        ..Default::default()
    }
}

/// Encrypt and Decrypt of `plaintext` under `key` give it back.
fn assert_round_trip(engine: &Engine, key: &str, plaintext: &[u8]) {
    let blob = engine
        .encrypt(&EncryptRequest::new(key, plaintext))
        .unwrap()
        .ciphertext_blob;
    let plain = engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
    assert_eq!(plain.plaintext.expose(), plaintext);
}

/// `call` with the engine and `id` (a store's or a key's), in a thread of its own (it may wait
/// at the gate).
fn in_thread<T: Send + 'static>(
    engine: &Arc<Engine>,
    id: &str,
    call: impl FnOnce(&Engine, &str) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let engine = Arc::clone(engine);
    let id = id.to_owned();
    thread::spawn(move || call(&engine, &id))
}

/// Waits until the backend call `call` arrived at the gate.
fn wait_for(arrived: &Receiver<&'static str>, call: &str) {
    loop {
        match arrived.recv_timeout(PATIENCE) {
            Ok(c) if c == call => return,
            Ok(_) => {}
            Err(e) => panic!("{call} never reached the backend: {e}"),
        }
    }
}

/// Keyplane-held traffic in another thread (CreateKey, Encrypt and Decrypt under `key`, and
/// DescribeCustomKeyStores of another store when given), which must finish while the gate
/// still holds its call: on failure the gate is opened first, so that nothing stays stuck.
fn traffic_completes_while_held(engine: &Arc<Engine>, gate: &Gate, key: &str, other: Option<&str>) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = {
        let engine = Arc::clone(engine);
        let key = key.to_owned();
        let other = other.map(str::to_owned);
        thread::spawn(move || {
            let made = engine.create_key(CreateKeyRequest::default()).unwrap();
            for id in [key.as_str(), made.key_id.as_str()] {
                assert_round_trip(&engine, id, b"keyplane-held");
            }
            if let Some(other) = other {
                state_of(&engine, &other);
            }
            done_tx.send(()).unwrap();
        })
    };
    match done_rx.recv_timeout(PATIENCE) {
        Ok(()) => worker.join().unwrap(),
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
            gate.set(|h| {
                h.connect = false;
                h.health = false;
                h.salt = false;
                h.backing = false;
            });
            let _ = worker.join();
            panic!("keyplane-held traffic waited for the held custom key store call");
        }
    }
}

#[test]
fn a_health_check_that_never_answers_blocks_no_other_key() {
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let key = new_key(&engine);
    let store = new_store(&engine);
    engine.connect_custom_key_store(&store).unwrap();
    assert_eq!(state_of(&engine, &store), ConnectionState::Connected);

    // The HSM stops answering: DescribeCustomKeyStores waits in its health check.
    gate.set(|h| {
        h.health = true;
        h.health_fails = true;
    });
    let describe = in_thread(&engine, &store, |engine, store| {
        engine
            .describe_custom_key_stores(Some(store), None, None, None)
            .map(|p| {
                (
                    p.items[0].connection_state,
                    p.items[0].connection_error_code,
                )
            })
    });
    wait_for(&arrived, "health");
    traffic_completes_while_held(&engine, &gate, &key, None);
    assert!(
        !describe.is_finished(),
        "the health check returned while held"
    );

    // Released, the failure is applied: the store is FAILED with the backend's code.
    gate.set(|h| h.health = false);
    let (state, code) = describe.join().unwrap().unwrap();
    assert_eq!(state, ConnectionState::Failed);
    assert_eq!(code, Some(ConnectionErrorCode::NetworkErrors));
}

#[test]
fn a_stale_health_failure_leaves_a_newer_connection_alone() {
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let store = new_store(&engine);
    engine.connect_custom_key_store(&store).unwrap();

    gate.set(|h| {
        h.health = true;
        h.health_fails = true;
    });
    let describe = in_thread(&engine, &store, |engine, store| {
        engine
            .describe_custom_key_stores(Some(store), None, None, None)
            .map(|p| p.items[0].connection_state)
    });
    wait_for(&arrived, "health");
    // Meanwhile the store is disconnected and connected again: a new connection.
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    // The old connection's failure arrives late, and must not fail the new one.
    gate.set(|h| {
        h.health = false;
        h.health_fails = false;
    });
    assert_eq!(
        describe.join().unwrap().unwrap(),
        ConnectionState::Connected
    );
    assert_eq!(state_of(&engine, &store), ConnectionState::Connected);
}

#[test]
fn a_connection_that_never_answers_blocks_no_other_key() {
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let key = new_key(&engine);
    let store = new_store(&engine);

    gate.set(|h| h.connect = true);
    let connect = in_thread(&engine, &store, |engine, store| {
        engine.connect_custom_key_store(store)
    });
    wait_for(&arrived, "connect");
    // Other keys, and DescribeCustomKeyStores itself (CONNECTING meanwhile), go on.
    traffic_completes_while_held(&engine, &gate, &key, Some(&store));
    assert_eq!(state_of(&engine, &store), ConnectionState::Connecting);
    assert!(!connect.is_finished(), "the connection returned while held");

    gate.set(|h| h.connect = false);
    connect.join().unwrap().unwrap();
    assert_eq!(state_of(&engine, &store), ConnectionState::Connected);
    let hsm_key = engine.create_key(hsm_key_request(&store)).unwrap().key_id;
    assert_round_trip(&engine, &hsm_key, b"in the HSM");
}

#[test]
fn a_connection_that_answers_after_a_disconnect_is_dropped() {
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let store = new_store(&engine);

    gate.set(|h| h.connect = true);
    let connect = in_thread(&engine, &store, |engine, store| {
        engine.connect_custom_key_store(store)
    });
    wait_for(&arrived, "connect");
    // Disconnected while it connects: the late connection must not bring the store back.
    engine.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(state_of(&engine, &store), ConnectionState::Disconnected);
    gate.set(|h| h.connect = false);
    connect.join().unwrap().unwrap();
    assert_eq!(state_of(&engine, &store), ConnectionState::Disconnected);
    // And it can be connected again, and deleted once disconnected.
    engine.connect_custom_key_store(&store).unwrap();
    assert_eq!(state_of(&engine, &store), ConnectionState::Connected);
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.delete_custom_key_store(&store).unwrap();
}

#[test]
fn a_data_plane_call_that_never_answers_blocks_no_other_key() {
    // The data path of a key in a custom key store calls its store (HSM: the salt key; XKS: the
    // proxy's Encrypt and Decrypt) from the data plane, which holds no control-plane lock.
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let key = new_key(&engine);
    let store = new_store(&engine);
    engine.connect_custom_key_store(&store).unwrap();
    let hsm_key = engine.create_key(hsm_key_request(&store)).unwrap().key_id;

    gate.set(|h| h.salt = true);
    let held = in_thread(&engine, &hsm_key, |engine, hsm_key| {
        engine
            .encrypt(&EncryptRequest::new(hsm_key, b"in the HSM"))
            .map(|r| r.ciphertext_blob.len())
    });
    wait_for(&arrived, "salt");
    traffic_completes_while_held(&engine, &gate, &key, Some(&store));
    assert!(!held.is_finished(), "the HSM call returned while held");
    gate.set(|h| h.salt = false);
    assert!(held.join().unwrap().is_ok());
}

#[test]
fn a_backing_key_that_never_comes_blocks_no_other_key() {
    // CreateKey in a custom key store makes its backing key in the HSM (or checks it with the XKS
    // proxy) before it takes the control-plane lock to commit.
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let key = new_key(&engine);
    let store = new_store(&engine);
    engine.connect_custom_key_store(&store).unwrap();

    gate.set(|h| h.backing = true);
    let create = in_thread(&engine, &store, |engine, store| {
        engine.create_key(hsm_key_request(store))
    });
    wait_for(&arrived, "backing");
    traffic_completes_while_held(&engine, &gate, &key, Some(&store));
    assert!(!create.is_finished(), "the backing key came while held");
    gate.set(|h| h.backing = false);
    let made = create.join().unwrap().unwrap();
    assert_round_trip(&engine, &made.key_id, b"in the HSM");
}

#[test]
fn a_backing_key_made_through_a_connection_since_dropped_is_not_committed() {
    let (gate, arrived) = Gate::new();
    let engine = Arc::new(engine(&gate));
    let store = new_store(&engine);
    engine.connect_custom_key_store(&store).unwrap();

    gate.set(|h| h.backing = true);
    let create = in_thread(&engine, &store, |engine, store| {
        engine.create_key(hsm_key_request(store))
    });
    wait_for(&arrived, "backing");
    // The store is disconnected and connected again while the HSM makes the key.
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    gate.set(|h| h.backing = false);
    let refused = create
        .join()
        .unwrap()
        .expect_err("made through a dropped connection");
    assert_eq!(refused.code(), "CustomKeyStoreInvalidStateException");
    assert!(engine.list_keys(None, None).unwrap().items.is_empty());
}
