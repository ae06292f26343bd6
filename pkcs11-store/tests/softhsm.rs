//! HSM key stores on a real PKCS#11 token: SoftHSMv2 (Debian's `softhsm2`), initialised by this
//! test in a temporary directory with its own `SOFTHSM2_CONF`. One token per test (a PKCS#11
//! module is initialised once per process, so every token is made before the first test runs).
//!
//! Run: `cargo test -p keyplane-pkcs11` (needs `softhsm2-util` and `libsofthsm2.so`; `.ci/run`
//! installs them through scripts/test).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use keyplane::custom_key_store::{ConnectionErrorCode, ConnectionState, CustomKeyStoreType};
use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine,
    ErrorKind, KeyState, Origin, SecretBytes,
};
use keyplane_pkcs11::{Pkcs11Backend, Pkcs11Config};
use keyplane_testkit::{child_test, fork_round, fork_verdicts};

const PIN: &str = "1234567890";
const SO_PIN: &str = "so-pin-0987";
const ANCHOR: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
/// One token per test, named by the test.
const TOKENS: &[&str] = &[
    "states",
    "keys",
    "wrongpin",
    "loggedin",
    "destroyed",
    "restart",
    "random",
    "gone",
    "pool",
    "durable",
    "deletion",
    "fork",
    "strictfork",
];
/// The tokens reached through the strict module ([`strict_module`]), not SoftHSMv2's own.
const STRICT_TOKENS: &[&str] = &["strictfork"];

/// The SoftHSMv2 module scripts/lib/softhsm.sh found (set by [`setup`]).
static MODULE: OnceLock<PathBuf> = OnceLock::new();
/// tests/strict_module.c, built by [`setup`]: SoftHSMv2 behind a module that answers a forked
/// child with `CKR_CRYPTOKI_NOT_INITIALIZED` until the child calls `C_Initialize` itself.
static STRICT_MODULE: OnceLock<PathBuf> = OnceLock::new();

fn module() -> PathBuf {
    setup();
    MODULE.get().expect("set by setup").clone()
}

fn strict_module() -> PathBuf {
    setup();
    STRICT_MODULE.get().expect("set by setup").clone()
}

/// The token directory, made once per process with every test's token in it, each by
/// scripts/lib/softhsm.sh (the one definition of a test token, which the scripts, the C, CLI and
/// Python tests and tests/serve use too).
fn setup() -> &'static Path {
    static DIR: OnceLock<&'static Path> = OnceLock::new();
    DIR.get_or_init(|| {
        // Removed when the test process exits (a `TempDir` in a static never is).
        let dir = keyplane_testkit::process_dir("keyplane-softhsm-tokens");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/softhsm.sh");
        let mut conf = None;
        for label in TOKENS {
            let made = Command::new(script)
                .args(["token", dir.to_str().unwrap(), label, PIN, SO_PIN])
                .output()
                .expect("scripts/lib/softhsm.sh runs");
            assert!(made.status.success(), "{made:?}");
            for line in String::from_utf8(made.stdout).unwrap().lines() {
                match line.split_once('=') {
                    Some(("SOFTHSM2_CONF", path)) => conf = Some(PathBuf::from(path)),
                    Some(("SOFTHSM_MODULE", path)) => {
                        let _ = MODULE.set(PathBuf::from(path));
                    }
                    _ => {}
                }
            }
        }
        // Read by the module at C_Initialize, which comes after this.
        std::env::set_var(
            "SOFTHSM2_CONF",
            conf.expect("the script names the configuration"),
        );
        let strict = dir.join("strict-pkcs11.so");
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/strict_module.c");
        let built = Command::new("cc")
            .args([
                "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
            ])
            .arg(&strict)
            .arg(source)
            .arg("-ldl")
            .output()
            .expect("a C compiler (cc) runs");
        assert!(built.status.success(), "{built:?}");
        std::env::set_var(
            "KEYPLANE_STRICT_PKCS11_INNER",
            MODULE.get().expect("the script names the module"),
        );
        let _ = STRICT_MODULE.set(strict);
        dir
    })
}

/// The cluster id configured for token `label` (the model's pattern: letters, 11 to 16).
fn cluster(label: &str) -> String {
    let letters: String = label
        .chars()
        .filter(char::is_ascii_alphabetic)
        .chain(std::iter::repeat('x'))
        .take(11)
        .collect();
    format!("cluster-{letters}")
}

fn backend() -> Pkcs11Backend {
    setup();
    let mut config = Pkcs11Config::default();
    for label in TOKENS {
        let module = if STRICT_TOKENS.contains(label) {
            strict_module()
        } else {
            module()
        };
        config = config.with_token(&cluster(label), module, label);
    }
    Pkcs11Backend::new(config)
}

fn engine_on(store: Arc<MemoryKeyStore>) -> Engine {
    Engine::builder()
        .store(store)
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(backend()))
        .build()
        .unwrap()
}

fn create(engine: &Engine, label: &str, pin: &str) -> String {
    engine
        .create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: label.into(),
            cloud_hsm_cluster_id: Some(cluster(label)),
            trust_anchor_certificate: Some(ANCHOR.into()),
            key_store_password: Some(SecretBytes::from_vec(pin.as_bytes().to_vec())),
            ..Default::default()
        })
        .unwrap()
}

fn state(engine: &Engine, id: &str) -> (ConnectionState, Option<ConnectionErrorCode>) {
    let page = engine
        .describe_custom_key_stores(Some(id), None, None, None)
        .unwrap();
    (
        page.items[0].connection_state,
        page.items[0].connection_error_code,
    )
}

fn hsm_key(engine: &Engine, store: &str) -> String {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some(store.into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
}

/// An engine on a fresh in-memory store, with a store on token `label` created and connected
/// and a key in it: the durable store, the engine, the store's id and the key's id.
fn connected_key(label: &str) -> (Arc<MemoryKeyStore>, Engine, String, String) {
    let durable = Arc::new(MemoryKeyStore::default());
    let engine = engine_on(Arc::clone(&durable));
    let store = create(&engine, label, PIN);
    engine.connect_custom_key_store(&store).unwrap();
    let key = hsm_key(&engine, &store);
    (durable, engine, store, key)
}

/// The backing key id the durable store recorded for `key`.
fn backing_id(store: &MemoryKeyStore, key: &str) -> String {
    let id = uuid::Uuid::parse_str(key).unwrap();
    store
        .load()
        .unwrap()
        .keys
        .into_iter()
        .find(|r| r.id == id)
        .and_then(|r| r.custom_key_store)
        .unwrap()
        .backing_key_id
}

#[test]
fn a_store_connects_disconnects_and_is_deleted() {
    let engine = engine_on(Arc::new(MemoryKeyStore::default()));
    let id = create(&engine, "states", PIN);
    assert_eq!(state(&engine, &id).0, ConnectionState::Disconnected);
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state(&engine, &id), (ConnectionState::Connected, None));
    engine.disconnect_custom_key_store(&id).unwrap();
    assert_eq!(state(&engine, &id).0, ConnectionState::Disconnected);
    engine.delete_custom_key_store(&id).unwrap();
    assert_eq!(
        engine
            .describe_custom_key_stores(Some(&id), None, None, None)
            .unwrap_err()
            .kind(),
        ErrorKind::CustomKeyStoreNotFound
    );
    // A cluster id no token is configured as.
    let unknown = engine
        .create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: "unknown".into(),
            cloud_hsm_cluster_id: Some("cluster-nosuchtokenx".into()),
            trust_anchor_certificate: Some(ANCHOR.into()),
            key_store_password: Some(SecretBytes::from_vec(PIN.as_bytes().to_vec())),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::CloudHsmClusterNotFound);
}

#[test]
fn keys_are_made_in_the_token_non_extractable_and_sensitive_and_round_trip() {
    let (durable, engine, store, key) = connected_key("keys");
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.cloud_hsm_cluster_id, Some(cluster("keys")));
    assert_eq!(meta.custom_key_store_id.as_deref(), Some(store.as_str()));

    // Checked in the token, through a connection of our own.
    let admin = backend().open_connection(&cluster("keys"), PIN).unwrap();
    let protection = admin.key_protection(&backing_id(&durable, &key)).unwrap();
    assert!(protection.sensitive, "{protection:?}");
    assert!(!protection.extractable, "{protection:?}");
    assert!(protection.token_object, "{protection:?}");
    assert_eq!(protection.value_len, 32);
    assert_eq!(protection.label, key);

    for size in [1usize, 31, 32, 33, 4096] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, &plaintext))
            .unwrap();
        let opened = engine
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), plaintext.as_slice());
    }
}

#[test]
fn a_wrong_pin_is_invalid_credentials() {
    let engine = engine_on(Arc::new(MemoryKeyStore::default()));
    let id = create(&engine, "wrongpin", "not-the-pin");
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(
        state(&engine, &id),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::InvalidCredentials)
        )
    );
}

/// The token's login belongs to the process: a second store on a token another store of this
/// process is logged in to gets `CKR_USER_ALREADY_LOGGED_IN` from `C_Login` whatever its PIN, and
/// must still be refused with a wrong one.
#[test]
fn a_wrong_pin_is_refused_while_another_store_holds_the_token_logged_in() {
    let first = engine_on(Arc::new(MemoryKeyStore::default()));
    let good = create(&first, "loggedin", PIN);
    first.connect_custom_key_store(&good).unwrap();
    assert_eq!(state(&first, &good), (ConnectionState::Connected, None));

    let second = engine_on(Arc::new(MemoryKeyStore::default()));
    let wrong = create(&second, "loggedin", "not-the-pin");
    second.connect_custom_key_store(&wrong).unwrap();
    assert_eq!(
        state(&second, &wrong),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::InvalidCredentials)
        ),
        "a wrong PIN connected because the token was already logged in"
    );
    // The right PIN still connects beside the first store.
    let third = engine_on(Arc::new(MemoryKeyStore::default()));
    let right = create(&third, "loggedin", PIN);
    third.connect_custom_key_store(&right).unwrap();
    assert_eq!(state(&third, &right), (ConnectionState::Connected, None));
    let key = hsm_key(&third, &right);
    let sealed = third.encrypt(&EncryptRequest::new(&key, b"x")).unwrap();
    assert_eq!(
        third
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
            .unwrap()
            .plaintext
            .expose(),
        b"x"
    );
}

#[test]
fn a_ciphertext_is_refused_once_its_token_key_is_destroyed() {
    let (durable, engine, store, key) = connected_key("destroyed");
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"only while the key lives"))
        .unwrap()
        .ciphertext_blob;
    let admin = backend()
        .open_connection(&cluster("destroyed"), PIN)
        .unwrap();
    admin
        .destroy_backing_key(&backing_id(&durable, &key))
        .unwrap();
    // Reconnecting drops the derived keys cached from the token.
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    let refused = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::KeyUnavailable, "{refused}");
    assert!(engine.encrypt(&EncryptRequest::new(&key, b"x")).is_err());
}

#[test]
fn a_restarted_engine_reconnects_and_opens_old_ciphertexts() {
    let durable = Arc::new(MemoryKeyStore::default());
    let (store, key, sealed) = {
        let engine = engine_on(Arc::clone(&durable));
        let store = create(&engine, "restart", PIN);
        engine.connect_custom_key_store(&store).unwrap();
        let key = hsm_key(&engine, &store);
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, b"after a restart"))
            .unwrap()
            .ciphertext_blob;
        (store, key, sealed)
    };
    let engine = engine_on(Arc::clone(&durable));
    assert_eq!(state(&engine, &store).0, ConnectionState::Connected);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"after a restart");
}

#[test]
fn generate_random_comes_from_the_token() {
    let engine = engine_on(Arc::new(MemoryKeyStore::default()));
    let store = create(&engine, "random", PIN);
    engine.connect_custom_key_store(&store).unwrap();
    let a = engine
        .generate_random_from_custom_key_store(&store, 1024)
        .unwrap();
    let b = engine
        .generate_random_from_custom_key_store(&store, 1024)
        .unwrap();
    assert_eq!(a.len(), 1024);
    assert_ne!(a, b);
    // Not a constant or a short cycle: every byte value shows up in 2 KiB.
    let distinct: std::collections::BTreeSet<u8> = a.iter().chain(&b).copied().collect();
    assert!(
        distinct.len() > 200,
        "{} distinct byte values",
        distinct.len()
    );
}

#[test]
fn a_token_that_goes_away_mid_batch_never_answers_wrongly() {
    let (durable, engine, store, key) = connected_key("gone");
    let plaintexts: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 24]).collect();
    let sealed: Vec<Vec<u8>> = plaintexts
        .iter()
        .map(|p| {
            engine
                .encrypt(&EncryptRequest::new(&key, p))
                .unwrap()
                .ciphertext_blob
        })
        .collect();
    // The token's key goes away underneath the engine's own connection, as when an HSM is wiped
    // or replaced: ciphertexts whose salt is cached still open; everything else fails; no item
    // decrypts to other bytes.
    let admin = backend().open_connection(&cluster("gone"), PIN).unwrap();
    admin
        .destroy_backing_key(&backing_id(&durable, &key))
        .unwrap();
    let requests: Vec<DecryptRequest<'_>> = sealed.iter().map(|b| DecryptRequest::new(b)).collect();
    for (result, plaintext) in engine.decrypt_batch(&requests).into_iter().zip(&plaintexts) {
        if let Ok(opened) = result {
            assert_eq!(opened.expose(), plaintext.as_slice());
        }
    }
    let fresh: Vec<EncryptRequest<'_>> = plaintexts
        .iter()
        .map(|p| EncryptRequest::new(&key, p))
        .collect();
    // A new session needs the token; one still cached may encrypt under its derived key, and
    // what it encrypts must open.
    for blob in engine.encrypt_batch(&fresh).into_iter().flatten() {
        assert!(engine.decrypt(&DecryptRequest::new(&blob)).is_ok());
    }
    // Once the cache is gone (a reconnection), every one of them is refused.
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    for result in engine.decrypt_batch(&requests) {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::KeyUnavailable);
    }
}

#[test]
fn batches_use_a_pool_of_sessions() {
    let engine = Engine::builder()
        .worker_threads(4)
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(backend()))
        .build()
        .unwrap();
    let store = create(&engine, "pool", PIN);
    engine.connect_custom_key_store(&store).unwrap();
    let keys: Vec<String> = (0..4).map(|_| hsm_key(&engine, &store)).collect();
    let plaintext = [7u8; 64];
    let requests: Vec<EncryptRequest<'_>> = (0..400)
        .map(|i| EncryptRequest::new(&keys[i % keys.len()], &plaintext))
        .collect();
    let blobs: Vec<Vec<u8>> = engine
        .encrypt_batch(&requests)
        .into_iter()
        .map(|r| r.unwrap().into_vec())
        .collect();
    let opens: Vec<DecryptRequest<'_>> = blobs.iter().map(|b| DecryptRequest::new(b)).collect();
    for opened in engine.decrypt_batch(&opens) {
        assert_eq!(opened.unwrap().expose(), plaintext);
    }
    // A pool of its own, driven from 4 threads at once: it grows past one session, never past
    // its size, and every call gets its answer.
    let pool = Arc::new(backend().open_connection(&cluster("pool"), PIN).unwrap());
    assert!(pool.max_sessions() >= 1);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let pool = Arc::clone(&pool);
            scope.spawn(move || {
                use keyplane::custom_key_store::Connection;
                let mut out = [0u8; 32];
                for _ in 0..200 {
                    pool.random(&mut out).unwrap();
                    assert!(pool.open_sessions() <= pool.max_sessions());
                }
            });
        }
    });
    assert!(pool.open_sessions() >= 1 && pool.open_sessions() <= pool.max_sessions());
}

/// The durable store keeps the definition and the PIN (sealed under its root key): a new engine
/// on the same SQLite store, as after a restart, reconnects the store and opens old ciphertexts;
/// the PIN is not in the database file in the clear.
#[test]
fn a_sqlite_store_keeps_the_definition_and_its_pin_sealed_across_a_restart() {
    use keyplane_sqlite::root_key::KeyFileProvider;
    use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let provider = || {
        Arc::new(KeyFileProvider::new(
            dir.path().join("root.key"),
            keyplane::LockPolicy::Require,
        ))
    };
    SqliteKeyStore::init(dir.path(), provider(), StoreOptions::default()).unwrap();
    let open =
        || Arc::new(SqliteKeyStore::open(dir.path(), provider(), StoreOptions::default()).unwrap());
    let engine_on_sqlite = |store: Arc<SqliteKeyStore>| {
        Engine::builder()
            .store(store)
            .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(backend()))
            .build()
            .unwrap()
    };
    let (store, key, sealed) = {
        let engine = engine_on_sqlite(open());
        let store = create(&engine, "durable", PIN);
        engine.connect_custom_key_store(&store).unwrap();
        let key = hsm_key(&engine, &store);
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, b"kept in sqlite"))
            .unwrap()
            .ciphertext_blob;
        (store, key, sealed)
    };
    let engine = engine_on_sqlite(open());
    assert_eq!(state(&engine, &store), (ConnectionState::Connected, None));
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.custom_key_store_id.as_deref(), Some(store.as_str()));
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"kept in sqlite");
    // Disconnected, renamed, deleted keys aside: the change reaches the next engine too.
    engine.disconnect_custom_key_store(&store).unwrap();
    drop(engine);
    let engine = engine_on_sqlite(open());
    assert_eq!(state(&engine, &store).0, ConnectionState::Disconnected);
    let pin_hex: String = PIN.bytes().map(|b| format!("{b:02x}")).collect();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [PIN.as_bytes(), pin_hex.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the PIN is in the store's files in the clear"
            );
        }
    }
}

/// ScheduleKeyDeletion's waiting period over, the key is deleted and its token key destroyed.
#[test]
fn a_deleted_key_destroys_its_token_key() {
    let durable = Arc::new(MemoryKeyStore::default());
    let clock = Arc::new(keyplane::ManualClock::starting_now());
    let engine = Engine::builder()
        .store(durable.clone())
        .clock(clock.clone())
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(backend()))
        .build()
        .unwrap();
    let store = create(&engine, "deletion", PIN);
    engine.connect_custom_key_store(&store).unwrap();
    let key = hsm_key(&engine, &store);
    let backing = backing_id(&durable, &key);
    let admin = backend()
        .open_connection(&cluster("deletion"), PIN)
        .unwrap();
    assert!(admin.key_protection(&backing).is_ok());
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    clock.advance_days(8);
    engine.run_due_tasks().unwrap();
    assert_eq!(
        admin.key_protection(&backing).unwrap_err().kind(),
        ErrorKind::KeyUnavailable,
        "the token key is gone"
    );
}

const FORK_ENV: &str = "KEYPLANE_PKCS11_FORK_CHILD";
const FORK_MARK: &str = "PKCS11FORK ";
const FORK_ROUNDS: usize = 3;
/// What an engine started in a forked child, on the parent's token, saw, by its exit code.
const FORK_VERDICTS: [&str; 6] = [
    "connected with a session of its own, sealed and opened",
    "the parent's engine was not refused with KeyUnavailable naming the fork",
    "the child's engine did not connect",
    "the child's Encrypt under the HSM key failed",
    "the child's engine did not open the parent's ciphertext",
    "panicked",
];

/// A copy made by `fork` (a prefork server, Python's `multiprocessing`) that starts an engine of
/// its own on the parent's token: the parent's engine is refused in the copy, the copy's own
/// connects a session of its own, seals, and opens the parent's ciphertext, and the parent's
/// session opens it again after each child. The copy calls `C_Initialize` again, as PKCS#11 asks;
/// SoftHSMv2 kept its parent's initialisation and answers `CKR_CRYPTOKI_ALREADY_INITIALIZED`.
#[test]
fn an_engine_started_in_a_forked_child_has_its_own_pkcs11_session() {
    fork_scenario_on("fork");
}

/// As above, through a module that answers a child `CKR_CRYPTOKI_NOT_INITIALIZED` until it calls
/// `C_Initialize` itself (tests/strict_module.c, in front of SoftHSMv2), as PKCS#11 allows. When
/// the copy used its parent's initialisation, its engine did not connect (docs/assurance.md,
/// finding 10).
#[test]
fn an_engine_started_in_a_forked_child_initialises_a_strict_module_again() {
    fork_scenario_on("strictfork");
}

fn fork_scenario_on(label: &str) {
    let verdicts = fork_verdicts(
        child_test("pkcs11_fork_scenario").env(FORK_ENV, label),
        FORK_MARK,
        FORK_ROUNDS,
    );
    for (round, verdict) in verdicts.iter().enumerate() {
        assert_eq!(verdict, FORK_VERDICTS[0], "{label}: fork {round}");
    }
}

/// The scenario, in a process of its own, on the token its environment names (started by the
/// tests above with `--ignored`; ignored, and idle, in a normal run).
#[test]
#[ignore = "the PKCS#11 fork scenario, started by its test"]
fn pkcs11_fork_scenario() {
    let Ok(label) = std::env::var(FORK_ENV) else {
        return;
    };
    let (durable, engine, store, key) = connected_key(&label);
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"the parent's"))
        .unwrap()
        .ciphertext_blob;
    for _ in 0..FORK_ROUNDS {
        let verdict = fork_round(&FORK_VERDICTS, || {
            let parents = engine.encrypt(&EncryptRequest::new(&key, b"mine"));
            if !parents.is_err_and(|e| {
                e.kind() == ErrorKind::KeyUnavailable && e.message().contains("fork")
            }) {
                return 1;
            }
            // The durable store is the child's copy: the definition, and that it is connected.
            let mine = engine_on(Arc::clone(&durable));
            if state(&mine, &store).0 != ConnectionState::Connected {
                eprintln!("the child's store: {:?}", state(&mine, &store));
                return 2;
            }
            let Ok(blob) = mine.encrypt(&EncryptRequest::new(&key, b"the child's")) else {
                return 3;
            };
            for (blob, plaintext) in [
                (&sealed, &b"the parent's"[..]),
                (&blob.ciphertext_blob, b"the child's"),
            ] {
                match mine.decrypt(&DecryptRequest::new(blob)) {
                    Ok(opened) if opened.plaintext.expose() == plaintext => {}
                    _ => return 4,
                }
            }
            0
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{FORK_MARK}{verdict}").unwrap();
        stdout.flush().unwrap();
        // The parent's session is whole after its child's.
        let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
        assert_eq!(opened.plaintext.expose(), b"the parent's");
    }
}

const TABLE_FORK_ENV: &str = "KEYPLANE_PKCS11_TABLE_FORK_CHILD";
const TABLE_FORK_MARK: &str = "PKCS11TABLEFORK ";
/// What a child forked while its parent initialised a module saw, by its exit code.
const TABLE_FORK_VERDICTS: [&str; 4] = [
    "refused at once, naming the module table and the fork",
    "connected: the table was free at the fork",
    "refused otherwise",
    "panicked",
];

/// A copy forked while another thread of its parent holds the backend's module table, here
/// initialising a module whose `C_Initialize` takes 400 ms (as a network HSM's may), is refused
/// at once with an error that names the table and the fork, never left waiting for a thread it
/// does not have (docs/assurance.md, finding 12). The parent's connection completes.
#[test]
fn a_child_forked_while_its_parent_initialises_a_module_is_refused_at_once() {
    let verdicts = fork_verdicts(
        child_test("pkcs11_table_fork_scenario").env(TABLE_FORK_ENV, "1"),
        TABLE_FORK_MARK,
        1,
    );
    assert_eq!(verdicts, [TABLE_FORK_VERDICTS[0]]);
}

/// The scenario, in a process of its own (started by the test above with `--ignored`; ignored,
/// and idle, in a normal run). The strict module is not initialised in this process before it.
#[test]
#[ignore = "the PKCS#11 module table's fork scenario, started by its test"]
fn pkcs11_table_fork_scenario() {
    if std::env::var(TABLE_FORK_ENV).is_err() {
        return;
    }
    let backend = backend();
    let inside = setup().join("initialising");
    // Read by tests/strict_module.c at C_Initialize; this process runs this scenario alone.
    std::env::set_var("KEYPLANE_STRICT_PKCS11_INIT_DELAY_MS", "400");
    std::env::set_var("KEYPLANE_STRICT_PKCS11_INIT_SIGNAL", &inside);
    std::thread::scope(|s| {
        let parents = s.spawn(|| {
            backend
                .open_connection(&cluster("strictfork"), PIN)
                .map(drop)
                .map_err(|e| e.message)
        });
        // The other thread is inside C_Initialize, holding the module table.
        while !inside.exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let verdict = fork_round(&TABLE_FORK_VERDICTS, || {
            match backend.open_connection(&cluster("strictfork"), PIN) {
                Err(e) if e.message.contains("module table") && e.message.contains("fork") => 0,
                Ok(_) => 1,
                Err(e) => {
                    eprintln!("the child's connection: {}", e.message);
                    2
                }
            }
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{TABLE_FORK_MARK}{verdict}").unwrap();
        stdout.flush().unwrap();
        parents.join().unwrap().expect("the parent's connection");
    });
}
