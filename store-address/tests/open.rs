//! Opening stores by address: created when missing (unless open only), reopened by a new engine
//! with the same keys, and each way of failing a typed error naming what was tried.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use keyplane::{CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, LockPolicy};
use keyplane_sqlite::root_key::{CallbackProvider, RootKey};
use keyplane_sqlite::{StoreOptions, DB_FILE, ROOT_KEY_FILE, SCHEMA_VERSION};
use keyplane_store_address::{
    open, ErrorKind, OpenError, OpenOptions, RootKeySource, StoreAddress,
};

fn options(root_key: Option<RootKeySource>) -> OpenOptions {
    OpenOptions {
        root_key,
        store: StoreOptions {
            lock_policy: LockPolicy::Warn,
            ..StoreOptions::default()
        },
        ..OpenOptions::default()
    }
}

fn key_file(dir: &Path) -> Option<RootKeySource> {
    Some(RootKeySource::KeyFile(dir.join(ROOT_KEY_FILE)))
}

fn builder() -> keyplane::EngineBuilder {
    Engine::builder().lock_policy(LockPolicy::Warn)
}

/// Creates a store in `dir` with one key and returns the key id and a ciphertext under it.
fn make_store_with_key(dir: &Path) -> (String, Vec<u8>) {
    let opened = open(&StoreAddress::data_dir(dir), options(key_file(dir))).unwrap();
    assert!(opened.created());
    let engine = opened.engine(builder()).unwrap();
    let key = engine
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let ciphertext = engine
        .encrypt(&EncryptRequest::new(&key, b"kept across restarts"))
        .unwrap()
        .ciphertext_blob;
    (key, ciphertext)
}

fn open_err(dir: &Path, options: OpenOptions) -> OpenError {
    let opened = open(&StoreAddress::data_dir(dir), options);
    match opened.and_then(|o| o.engine(builder()).map(|_| ())) {
        Ok(()) => panic!("opening {} succeeded", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn a_missing_store_is_created_with_a_private_key_file_and_reopened_with_its_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (key, ciphertext) = make_store_with_key(&dir);
    let mode = std::fs::metadata(dir.join(ROOT_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(dir.join("audit/audit-signing-key.der").is_file());
    let logs = keyplane::audit::list_logs(&dir.join("audit")).unwrap();
    assert_eq!(logs.len(), 1, "one segment, written by this process");
    assert!(!logs[0].legacy && logs[0].path.is_file());

    let mut again = options(key_file(&dir));
    again.open_only = true;
    let opened = open(&StoreAddress::data_dir(&dir), again).unwrap();
    assert!(!opened.created());
    let engine = opened.engine(builder()).unwrap();
    let plain = engine
        .decrypt(&DecryptRequest {
            key_id: Some(&key),
            ..DecryptRequest::new(&ciphertext)
        })
        .unwrap();
    assert_eq!(plain.plaintext.expose(), b"kept across restarts");
    let log = engine.audit_log().unwrap().to_path_buf();
    drop(engine);
    let public_key = std::fs::read(dir.join("audit/audit-signing-key.der")).unwrap();
    let report = keyplane::audit::verify_directory(&log, &public_key).unwrap();
    assert_eq!(
        report.verdict(),
        keyplane::audit::Verdict::Intact,
        "{report:?}"
    );
}

#[test]
fn open_only_refuses_a_missing_store_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("absent");
    let mut o = options(key_file(&dir));
    o.open_only = true;
    let err = open_err(&dir, o);
    assert_eq!(err.kind(), ErrorKind::StoreMissing, "{err}");
    assert!(err.message().contains(&dir.display().to_string()), "{err}");
    assert!(!dir.exists());
}

#[test]
fn a_wrong_or_missing_root_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    make_store_with_key(&dir);

    let other = CallbackProvider::new("the test's secret manager", || {
        RootKey::from_base64(
            b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
            "test",
            LockPolicy::Warn,
        )
    });
    let err = open_err(
        &dir,
        options(Some(RootKeySource::Provider(Arc::new(other)))),
    );
    assert_eq!(err.kind(), ErrorKind::WrongRootKey, "{err}");
    assert!(err.message().contains("the test's secret manager"), "{err}");

    let err = open_err(
        &dir,
        options(Some(RootKeySource::KeyFile(tmp.path().join("nope")))),
    );
    assert_eq!(err.kind(), ErrorKind::RootKeyMissing, "{err}");
    assert!(err.message().contains("nope"), "{err}");

    let err = open_err(
        &dir,
        options(Some(RootKeySource::EnvVar(
            "KEYPLANE_TEST_UNSET_ROOT_KEY_VAR".into(),
        ))),
    );
    assert_eq!(err.kind(), ErrorKind::RootKeyMissing, "{err}");
    assert!(err.message().contains("KEYPLANE_TEST_UNSET_ROOT_KEY_VAR"));

    std::fs::set_permissions(dir.join(ROOT_KEY_FILE), PermissionsExt::from_mode(0o644)).unwrap();
    let err = open_err(&dir, options(key_file(&dir)));
    assert_eq!(err.kind(), ErrorKind::RootKeyPermissions, "{err}");
}

#[test]
fn a_newer_schema_and_a_damaged_file_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    make_store_with_key(&dir);
    let db = dir.join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[60..64].copy_from_slice(&(SCHEMA_VERSION + 1).to_be_bytes());
    std::fs::write(&db, &bytes).unwrap();
    let err = open_err(&dir, options(key_file(&dir)));
    assert_eq!(err.kind(), ErrorKind::NewerSchema, "{err}");

    std::fs::write(
        &db,
        b"this is not a database at all, not even close........",
    )
    .unwrap();
    let err = open_err(&dir, options(key_file(&dir)));
    assert_eq!(err.kind(), ErrorKind::Damaged, "{err}");
}

#[test]
fn two_long_lived_writers_of_one_data_directory_audit_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (key, _) = make_store_with_key(&dir);
    // Two engines held open at once (a C service and a Python worker, say): neither waits for
    // the other, each writes a segment of its own, and the directory verifies as one log.
    let first = open(&StoreAddress::data_dir(&dir), options(key_file(&dir)))
        .unwrap()
        .engine(builder())
        .unwrap();
    let second = open(&StoreAddress::data_dir(&dir), options(key_file(&dir)))
        .unwrap()
        .engine(builder())
        .unwrap();
    for engine in [&first, &second] {
        engine.encrypt(&EncryptRequest::new(&key, b"x")).unwrap();
    }
    drop(first);
    drop(second);
    let audit = dir.join("audit");
    let public_key = std::fs::read(audit.join("audit-signing-key.der")).unwrap();
    let report = keyplane::audit::verify_directory(&audit, &public_key).unwrap();
    assert_eq!(
        report.segments.len(),
        2,
        "one segment per engine held at once"
    );
    assert_eq!(report.verdict(), keyplane::audit::Verdict::Intact);
}

#[test]
fn memory_addresses_open_no_store() {
    let opened = open(&StoreAddress::Memory, OpenOptions::default()).unwrap();
    assert!(opened.store().is_none());
    let engine = opened.engine(builder()).unwrap();
    assert!(engine.audit_log().is_none());
    assert!(engine.create_key(CreateKeyRequest::default()).is_ok());
}

/// Another process's disable reaches an engine that makes no control-plane call, by default within
/// the default scheduler interval (before, engines from `open` had no scheduler: a long-lived
/// data-plane-only engine never saw it).
#[test]
fn engines_on_a_durable_store_follow_other_processes_by_default() {
    use keyplane_store_address::DEFAULT_SCHEDULER_INTERVAL;
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (key, _) = make_store_with_key(&dir);
    let address = StoreAddress::data_dir(&dir);
    let opened = open(&address, options(key_file(&dir))).unwrap();
    assert_eq!(
        opened.scheduler_interval(),
        Some(DEFAULT_SCHEDULER_INTERVAL)
    );
    let follower = opened.engine(builder()).unwrap();
    follower
        .encrypt(&EncryptRequest::new(&key, b"before"))
        .unwrap();
    // The other "process": its own store handle and engine.
    let other = open(&address, options(key_file(&dir)))
        .unwrap()
        .engine(builder())
        .unwrap();
    other.disable_key(&key).unwrap();
    let changed = Instant::now();
    let bound = DEFAULT_SCHEDULER_INTERVAL + Duration::from_millis(500);
    loop {
        match follower.encrypt(&EncryptRequest::new(&key, b"after")) {
            Err(keyplane::Error::Disabled(_)) => break,
            Ok(_) if changed.elapsed() < bound => std::thread::sleep(Duration::from_millis(10)),
            other => panic!(
                "after {:?} the follower still encrypts: {other:?}",
                changed.elapsed()
            ),
        }
    }
}

#[test]
fn a_passphrase_never_shows_in_debug_output_or_an_open_error() {
    const SECRET: &str = "correct horse battery staple 7f3a";
    // As text, or as the byte list a derived Debug of its buffer would print.
    let bytes = format!("{:?}", SECRET.as_bytes());
    let leaks = |shown: &str| shown.contains(SECRET) || shown.contains(&bytes[1..bytes.len() - 1]);
    let source = RootKeySource::Passphrase(zeroize::Zeroizing::new(SECRET.as_bytes().to_vec()));
    let debug = format!("{source:?}");
    assert!(!leaks(&debug), "{debug}");
    let options = options(Some(source));
    let debug = format!("{options:?}");
    assert!(!leaks(&debug), "{debug}");

    // A wrong passphrase for an existing store: the error says what was tried, not the secret.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    make_store_with_key(&dir);
    let err = open_err(&dir, options);
    let shown = format!("{err} {err:?}");
    assert!(!leaks(&shown), "{shown}");
}
