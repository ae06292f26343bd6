//! Secret hygiene: what a process holding keys shows of them.
//!
//! - `Debug` of every secret-bearing public type, and `Display` of the errors around them, shows
//!   no secret (raw, hex, decimal list or base64).
//! - A core dump of a process holding keys contains no key bytes: a child process puts known
//!   32-byte patterns into `LockedBytes`, into the material of a symmetric key and of an HMAC key
//!   (handed to an engine through a key store), uses them, and is dumped twice: by the kernel as it
//!   aborts (SIGABRT, `RLIMIT_CORE` raised; needs a plain-file `core_pattern`) and live by `gcore`.
//!   The dump must hold a control pattern kept in ordinary heap memory (so the test can fail) and
//!   none of the others (`MADV_DONTDUMP`).
//! - Locking failure: a child running as `nobody` (no `CAP_IPC_LOCK`), with `RLIMIT_MEMLOCK` 0,
//!   gets `MemoryLock` under `LockPolicy::Require`, and under `LockPolicy::Warn` works with a
//!   warning on stderr and `stats().unlocked_bytes > 0`; and a `Require` engine in a process where
//!   a `Warn` engine left unlocked memory behind still refuses (never a silent fallback).
//! - Fork safety: after `fork`, parent and child never produce the same random bytes or the same
//!   (salt, nonce).
//!
//! The child processes are this test binary run again with `KEYPLANE_HYGIENE_CHILD` set (see
//! `child_process_entry`). The dump and privilege tests need Linux, root (CI runs as root),
//! `setpriv` (util-linux) and `gcore` (gdb); they fail, loudly, where those are missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use keyplane::clock::Timestamp;
use keyplane::key::{
    DataKeyPairSpec, KeyAgreementAlgorithm, KeyRecord, MacAlgorithm, RotationConfig, VersionRecord,
};
use keyplane::less_safe::aes_gcm::AesGcmKey;
use keyplane::less_safe::ecdh::{self, AgreementKey};
use keyplane::less_safe::hmac::HmacKey;
use keyplane::less_safe::rsa_oaep::{self, RsaOaepKey};
use keyplane::less_safe::signature::{self, SigningKey};
use keyplane::store::{KeyStore, MemoryKeyStore, StoreChange};
use keyplane::{locked_memory_stats as stats, LockedBytes};
use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, DeriveSharedSecretRequest, EncryptRequest,
    Engine, GenerateDataKeyPairRequest, GenerateDataKeyRequest, GenerateMacRequest, KeyManager,
    KeySpec, KeyState, KeyUsage, LockPolicy, Origin, SecretBytes, VerifyMacRequest,
};
use keyplane_testkit::{new_key, new_key_of};

const CHILD_ENV: &str = "KEYPLANE_HYGIENE_CHILD";
const MARK: &str = "HYGIENE ";

// ---- how a secret could show -------------------------------------------------------------------

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ways `secret` (at least 12 bytes) could appear in text: its bytes as text, hex in either
/// case, a `[1, 2, 3` decimal list, base64 at each alignment. Any 12-byte window counts, so a
/// secret printed in part is found too.
fn shows(text: &str, secret: &[u8]) -> Option<String> {
    assert!(secret.len() >= 12);
    if let Some(how) = secret.windows(12).find_map(|w| shows_window(text, w)) {
        return Some(how);
    }
    for skip in 0..3 {
        let encoded = STANDARD_NO_PAD.encode(&secret[skip..]);
        if encoded.len() > 16 && text.contains(&encoded[4..16]) {
            return Some("base64".into());
        }
    }
    None
}

/// Whether 12 secret bytes show in `text`: as text, as hex in either case, as a decimal list.
fn shows_window(text: &str, window: &[u8]) -> Option<String> {
    let as_text = String::from_utf8_lossy(window);
    if window.iter().all(|b| b.is_ascii_graphic()) && text.contains(as_text.as_ref()) {
        return Some(format!("raw bytes {as_text}"));
    }
    if text.to_ascii_lowercase().contains(&hex_lower(window)) {
        return Some(format!("hex {}", hex_lower(window)));
    }
    let decimal = window
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    text.contains(&decimal)
        .then(|| format!("decimal list {decimal}"))
}

struct Hygiene {
    checked: u64,
    leaks: Vec<String>,
}

impl Hygiene {
    fn check(&mut self, what: &str, shown: String, secret: &[u8]) {
        self.checked += 1;
        if let Some(how) = shows(&shown, secret) {
            self.leaks
                .push(format!("{what} shows its secret ({how}): {shown}"));
        }
    }

    /// As `check`, for a secret that shares some bytes with public data shown beside it (a
    /// PKCS#8 private key holds its algorithm identifier and its public key): only the 12-byte
    /// windows of `secret` that are not in `public` count.
    fn check_private(&mut self, what: &str, shown: String, secret: &[u8], public: &[u8]) {
        self.checked += 1;
        let leak = secret
            .windows(12)
            .filter(|w| !public.windows(12).any(|p| p == *w))
            .find_map(|w| shows_window(&shown, w));
        if let Some(how) = leak {
            self.leaks
                .push(format!("{what} shows its secret ({how}): {shown}"));
        }
    }
}

fn pattern(seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut out).unwrap();
    out[0] = seed;
    out
}

fn engine() -> Engine {
    Engine::builder().worker_threads(1).build().unwrap()
}

#[test]
fn debug_of_secret_bearing_types_shows_no_secret() {
    let mut h = Hygiene {
        checked: 0,
        leaks: Vec::new(),
    };
    let secret = pattern(0x11);
    let policy = LockPolicy::Require;

    let locked = LockedBytes::copy_from(&secret, policy).unwrap();
    h.check("LockedBytes", format!("{locked:?}"), &secret);
    let plain = SecretBytes::from_vec(secret.clone());
    h.check("SecretBytes", format!("{plain:?}"), &secret);
    let aes = AesGcmKey::new(&secret, policy).unwrap();
    h.check("AesGcmKey", format!("{aes:?}"), &secret);
    let hmac = HmacKey::new(MacAlgorithm::HmacSha256, &secret, policy).unwrap();
    h.check("HmacKey", format!("{hmac:?}"), &secret);

    // Asymmetric keys: no window of their PKCS#8 (which holds the private key) may show.
    let pkcs8 = signature::generate(KeySpec::EccNistP256, policy).unwrap();
    let signing = SigningKey::from_pkcs8(KeySpec::EccNistP256, &pkcs8).unwrap();
    h.check(
        "SigningKey",
        format!("{signing:?}"),
        pkcs8.expose(keyplane::SecretAccess::granted()),
    );
    let pkcs8 = rsa_oaep::generate(KeySpec::Rsa2048, policy).unwrap();
    let rsa = RsaOaepKey::from_pkcs8(KeySpec::Rsa2048, &pkcs8).unwrap();
    h.check(
        "RsaOaepKey",
        format!("{rsa:?}"),
        pkcs8.expose(keyplane::SecretAccess::granted()),
    );
    let pkcs8 = ecdh::generate(KeySpec::EccNistP256, policy).unwrap();
    let agreement = AgreementKey::from_pkcs8(KeySpec::EccNistP256, &pkcs8).unwrap();
    h.check(
        "AgreementKey",
        format!("{agreement:?}"),
        pkcs8.expose(keyplane::SecretAccess::granted()),
    );

    let engine = engine();
    let key = new_key(&engine);
    let request = EncryptRequest::new(&key, &secret);
    h.check("EncryptRequest", format!("{request:?}"), &secret);
    let blob = engine.encrypt(&request).unwrap().ciphertext_blob;
    let opened = engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
    h.check("DecryptResponse", format!("{opened:?}"), &secret);
    let batch = engine.decrypt_batch(&[DecryptRequest::new(&blob)]);
    h.check("decrypt_batch results", format!("{batch:?}"), &secret);

    let data_key = engine
        .generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256))
        .unwrap();
    let data_key_bytes = data_key.plaintext.expose().to_vec();
    h.check(
        "GenerateDataKeyResponse",
        format!("{data_key:?}"),
        &data_key_bytes,
    );
    let generated =
        engine.generate_data_key_batch(&[GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256)]);
    let generated_bytes = generated[0].as_ref().unwrap().plaintext.expose().to_vec();
    h.check(
        "GeneratedDataKey",
        format!("{generated:?}"),
        &generated_bytes,
    );

    let pair = engine
        .generate_data_key_pair(&GenerateDataKeyPairRequest {
            key_id: &key,
            encryption_context: None,
            key_pair_spec: DataKeyPairSpec::EccNistP256,
        })
        .unwrap();
    let private = pair
        .private_key_plaintext
        .as_ref()
        .unwrap()
        .expose()
        .to_vec();
    h.check_private(
        "GenerateDataKeyPairResponse",
        format!("{pair:?}"),
        &private,
        &pair.public_key,
    );

    let ours = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let theirs = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let peer = engine.get_public_key(&theirs).unwrap().public_key;
    let shared = engine
        .derive_shared_secret(&DeriveSharedSecretRequest {
            key_id: &ours,
            key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
            public_key: &peer,
        })
        .unwrap();
    let shared_bytes = shared.shared_secret.expose().to_vec();
    h.check(
        "DeriveSharedSecretResponse",
        format!("{shared:?}"),
        &shared_bytes,
    );

    let mac_key = new_key_of(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let request = GenerateMacRequest {
        key_id: &mac_key,
        message: &secret,
        mac_algorithm: MacAlgorithm::HmacSha256,
    };
    h.check("GenerateMacRequest", format!("{request:?}"), &secret);
    let mac = engine.generate_mac(&request).unwrap().mac;
    let verify = VerifyMacRequest {
        key_id: &mac_key,
        message: &secret,
        mac: &mac,
        mac_algorithm: MacAlgorithm::HmacSha256,
    };
    h.check("VerifyMacRequest", format!("{verify:?}"), &secret);
    // A failed VerifyMac does not tell the right MAC, in Debug or Display.
    let mut wrong = mac.clone();
    wrong[0] ^= 1;
    let error = engine
        .verify_mac(&VerifyMacRequest {
            mac: &wrong,
            ..verify
        })
        .unwrap_err();
    h.check("VerifyMac error (Display)", error.to_string(), &mac);
    h.check("VerifyMac error (Debug)", format!("{error:?}"), &mac);
    // Neither does a failed Decrypt tell the plaintext, nor an oversized Encrypt echo it.
    let mut tampered = blob.clone();
    tampered[70] ^= 1;
    let error = engine.decrypt(&DecryptRequest::new(&tampered)).unwrap_err();
    h.check("Decrypt error", format!("{error} {error:?}"), &secret);
    let long: Vec<u8> = secret.iter().cycle().take(5000).copied().collect();
    let error = engine
        .encrypt(&EncryptRequest::new(&key, &long))
        .unwrap_err();
    h.check("Encrypt error", format!("{error} {error:?}"), &secret);

    // The engine and its builder, configured with an audit signing key.
    let dir = tempfile::tempdir().unwrap();
    let locked_key =
        keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let audit_key = locked_key
        .expose(keyplane::SecretAccess::granted())
        .to_vec();
    let signer = keyplane::audit::DigestSigner::from_pkcs8(&locked_key).unwrap();
    let builder = Engine::builder().audit(
        keyplane::audit::AuditConfig::new(dir.path().join("audit.log")),
        locked_key,
    );
    h.check("EngineBuilder", format!("{builder:?}"), &audit_key);
    let audited = builder.build().unwrap();
    h.check("Engine", format!("{audited:?}"), &audit_key);
    h.check("DigestSigner", format!("{signer:?}"), &audit_key);

    println!(
        "assurance: secret hygiene: Debug/Display of {} secret-bearing values checked, {} show \
         their secret",
        h.checked,
        h.leaks.len()
    );
    assert!(h.leaks.is_empty(), "{}", h.leaks.join("\n"));
}

/// The audit signing key comes back from `generate_signing_key` in locked memory: its `Debug`
/// must show no byte of it.
#[test]
fn debug_of_the_generated_audit_signing_key_shows_no_secret() {
    let key = keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let shown = format!("{key:?}");
    assert!(
        shows(&shown, key.expose(keyplane::SecretAccess::granted())).is_none(),
        "Debug of generate_signing_key's result prints the private key: {}...",
        &shown[..shown.len().min(80)]
    );
}

// ---- child processes ---------------------------------------------------------------------------

/// What runs this test binary as a child: its one child entry point, alone, output not captured.
const CHILD_ARGS: [&str; 5] = [
    "--exact",
    "child_process_entry",
    "--ignored",
    "--nocapture",
    "--test-threads=1",
];

/// Runs this test binary again as a child in `mode`; `prepare` adjusts the command.
fn child(mode: &str, prepare: impl FnOnce(&mut Command)) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args(CHILD_ARGS)
        .env(CHILD_ENV, mode)
        .env("RUST_BACKTRACE", "0");
    prepare(&mut command);
    command
}

/// The `HYGIENE key=value` marks a child printed (the test harness may print before them on the
/// same line).
fn marks(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        .filter_map(|l| {
            l.find(MARK)
                .map(|at| l[at + MARK.len()..].trim().to_string())
        })
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Fills a new locked buffer straight from hex text, without a copy of the bytes anywhere else.
fn locked_from_hex(text: &str) -> LockedBytes {
    let mut locked = LockedBytes::zeroed(text.len() / 2, LockPolicy::Require).unwrap();
    for (i, byte) in locked
        .expose_mut(keyplane::SecretAccess::granted())
        .iter_mut()
        .enumerate()
    {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    locked
}

/// The engine's in-memory store holding given keys and material, for the dump tests: the engine
/// gets key material whose bytes the test knows through `KeyStore::load`, the path a durable store
/// takes (the store keeps its copies in locked memory; `materials` are zeroed when dropped).
fn known_store(keys: &[KeyRecord], materials: &[(uuid::Uuid, LockedBytes)]) -> MemoryKeyStore {
    let store = MemoryKeyStore::new(LockPolicy::Require);
    let mut changes: Vec<StoreChange<'_>> = keys.iter().map(StoreChange::PutKey).collect();
    changes.extend(
        materials
            .iter()
            .map(|(key_id, material)| StoreChange::PutMaterial {
                key_id: *key_id,
                version: 1,
                material,
            }),
    );
    store.commit(&changes).unwrap();
    store
}

fn record(id: uuid::Uuid, spec: KeySpec, usage: KeyUsage) -> KeyRecord {
    KeyRecord {
        id,
        created: Timestamp(0),
        description: String::new(),
        key_spec: spec,
        key_usage: usage,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Customer,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        tags: Vec::new(),
        rotation: RotationConfig {
            enabled: false,
            period_days: 365,
            next_rotation: None,
        },
        versions: vec![VersionRecord {
            version: 1,
            material_id: "0".repeat(64),
            created: Timestamp(0),
            rotation_type: None,
            import: None,
        }],
        on_demand_rotations: 0,
        policy: keyplane::policy::default_policy("111122223333"),
        grants: Vec::new(),
        multi_region: None,
        custom_key_store: None,
    }
}

/// What a dump child holds: patterns in locked memory and in engine keys, a control pattern in
/// the heap. Returns what must stay alive.
fn hold_secrets() -> (LockedBytes, Engine, Vec<u8>) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let locked = locked_from_hex(&var("KEYPLANE_PATTERN_LOCKED"));
    let symmetric = uuid::Uuid::new_v4();
    let hmac = uuid::Uuid::new_v4();
    let store = known_store(
        &[
            record(
                symmetric,
                KeySpec::SymmetricDefault,
                KeyUsage::EncryptDecrypt,
            ),
            record(hmac, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
        ],
        &[
            (
                symmetric,
                locked_from_hex(&var("KEYPLANE_PATTERN_SYMMETRIC")),
            ),
            (hmac, locked_from_hex(&var("KEYPLANE_PATTERN_HMAC"))),
        ],
    );
    let engine = Engine::builder()
        .worker_threads(1)
        .store(Arc::new(store))
        .build()
        .unwrap();
    let (symmetric, hmac) = (symmetric.to_string(), hmac.to_string());
    for i in 0..50u8 {
        let blob = engine
            .encrypt(&EncryptRequest::new(&symmetric, &[i; 40]))
            .unwrap()
            .ciphertext_blob;
        engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
        let mac = engine
            .generate_mac(&GenerateMacRequest {
                key_id: &hmac,
                message: &[i; 40],
                mac_algorithm: MacAlgorithm::HmacSha256,
            })
            .unwrap()
            .mac;
        engine
            .verify_mac(&VerifyMacRequest {
                key_id: &hmac,
                message: &[i; 40],
                mac: &mac,
                mac_algorithm: MacAlgorithm::HmacSha256,
            })
            .unwrap();
    }
    let control = hex_decode(&var("KEYPLANE_PATTERN_CONTROL"));
    (locked, engine, std::hint::black_box(control))
}

/// The entry point of every child process (run by `child` with `--ignored`); ignored, and idle, in
/// a normal test run, so it is never reported as a passing test.
#[test]
#[ignore = "the child process of the hygiene tests; does nothing on its own"]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    match mode.as_str() {
        "dump-abort" => {
            let held = hold_secrets();
            // SAFETY: plain system calls on this process.
            unsafe {
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_CORE, &unlimited), 0);
                libc::prctl(libc::PR_SET_DUMPABLE, 1);
            }
            println!("{MARK}ABORTING");
            std::io::stdout().flush().unwrap();
            std::hint::black_box(&held);
            std::process::abort();
        }
        "dump-live" => {
            let held = hold_secrets();
            println!("{MARK}READY");
            std::io::stdout().flush().unwrap();
            let mut rest = Vec::new();
            std::io::stdin().read_to_end(&mut rest).unwrap();
            std::hint::black_box(&held);
        }
        "mlock-require" | "mlock-warn" | "mlock-mixed" => mlock_child(&mode),
        "fork" => fork_child(),
        other => panic!("unknown child mode {other}"),
    }
}

// ---- core dumps --------------------------------------------------------------------------------

struct Patterns {
    locked: Vec<u8>,
    symmetric: Vec<u8>,
    hmac: Vec<u8>,
    control: Vec<u8>,
}

impl Patterns {
    fn new() -> Self {
        Patterns {
            locked: pattern(0xA1),
            symmetric: pattern(0xB2),
            hmac: pattern(0xC3),
            control: pattern(0xD4),
        }
    }

    fn apply(&self, command: &mut Command) {
        command
            .env("KEYPLANE_PATTERN_LOCKED", hex_lower(&self.locked))
            .env("KEYPLANE_PATTERN_SYMMETRIC", hex_lower(&self.symmetric))
            .env("KEYPLANE_PATTERN_HMAC", hex_lower(&self.hmac))
            .env("KEYPLANE_PATTERN_CONTROL", hex_lower(&self.control));
    }

    /// Scans a dump: how often each pattern occurs.
    fn scan(&self, core: &Path) -> [usize; 4] {
        let bytes = std::fs::read(core).unwrap();
        let patterns = [&self.locked, &self.symmetric, &self.hmac, &self.control];
        let mut found = [0usize; 4];
        let mut first = [false; 256];
        for p in patterns {
            first[p[0] as usize] = true;
        }
        for i in 0..bytes.len().saturating_sub(31) {
            if !first[bytes[i] as usize] {
                continue;
            }
            for (n, p) in patterns.iter().enumerate() {
                if bytes[i..i + 32] == p[..] {
                    found[n] += 1;
                }
            }
        }
        found
    }
}

fn judge_dump(kind: &str, patterns: &Patterns, core: &Path) {
    let size = std::fs::metadata(core).unwrap().len();
    let [locked, symmetric, hmac, control] = patterns.scan(core);
    println!(
        "assurance: {kind} core dump ({size} bytes): control pattern found {control} times; key \
         patterns found: LockedBytes {locked}, symmetric key material {symmetric}, HMAC key \
         material {hmac}"
    );
    assert!(
        control > 0,
        "{kind}: the control pattern (ordinary heap) is not in the dump: the dump is unusable, so \
         this test cannot tell anything"
    );
    let mut leaks = Vec::new();
    for (name, count) in [
        ("the LockedBytes pattern", locked),
        ("the symmetric key's material", symmetric),
        ("the HMAC key's material", hmac),
    ] {
        if count > 0 {
            leaks.push(format!("{name} ({count} copies)"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{kind} core dump holds key bytes: {}",
        leaks.join(", ")
    );
}

/// Where the kernel writes a core for a process with `cwd`, per `core_pattern`.
fn expected_core_dir(cwd: &Path) -> PathBuf {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .expect("/proc/sys/kernel/core_pattern: this test needs Linux");
    let pattern = pattern.trim();
    assert!(
        !pattern.starts_with('|'),
        "core_pattern pipes cores to '{pattern}', so this test cannot read the kernel's dump. Set \
         a plain pattern as root (echo core > /proc/sys/kernel/core_pattern) to run it; the gcore \
         test covers live dumps meanwhile"
    );
    // An absolute pattern names its directory; a relative one is under the process's cwd.
    match Path::new(pattern).parent() {
        Some(dir) if pattern.starts_with('/') => dir.to_path_buf(),
        Some(dir) => cwd.join(dir),
        None => cwd.to_path_buf(),
    }
}

#[test]
fn core_dump_of_an_aborting_child_holds_no_key_bytes() {
    let patterns = Patterns::new();
    let dir = tempfile::tempdir().unwrap();
    let core_dir = expected_core_dir(dir.path());
    let started = std::time::SystemTime::now();
    let process = child("dump-abort", |c| {
        patterns.apply(c);
        c.current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    })
    .spawn()
    .unwrap();
    let pid = process.id().to_string();
    let output = process.wait_with_output().unwrap();
    assert!(
        marks(&output.stdout).contains(&"ABORTING".to_string()),
        "the child did not get as far as aborting: {}",
        describe(&output)
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&output)
    );
    assert!(
        output.status.core_dumped(),
        "the kernel wrote no core dump (RLIMIT_CORE, core_pattern, a read-only directory?): {}",
        describe(&output)
    );
    // The newest file written since the child started, one naming its pid if any does.
    let mut written: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&core_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            (modified >= started && e.path().is_file()).then(|| (modified, e.path()))
        })
        .collect();
    written.sort();
    let core = written
        .iter()
        .rev()
        .find(|(_, p)| p.file_name().unwrap().to_string_lossy().contains(&pid))
        .or(written.last())
        .unwrap_or_else(|| panic!("no core file in {}", core_dir.display()))
        .1
        .clone();
    judge_dump("kernel (SIGABRT)", &patterns, &core);
    if core_dir != dir.path() {
        let _ = std::fs::remove_file(&core);
    }
}

#[test]
fn gcore_of_a_live_child_holds_no_key_bytes() {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("gcore").is_file()))
        .unwrap_or(false);
    assert!(
        on_path,
        "gcore (gdb) is needed to dump a live child: apt-get install gdb"
    );
    let patterns = Patterns::new();
    let dir = tempfile::tempdir().unwrap();
    let mut process = child("dump-live", |c| {
        patterns.apply(c);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
    })
    .spawn()
    .unwrap();
    let pid = process.id();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the child exited before it was ready"
        );
        if line.trim().ends_with(&format!("{MARK}READY")) {
            break;
        }
    }
    let prefix = dir.path().join("core");
    let dumped = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .unwrap();
    drop(process.stdin.take());
    let status = process.wait().unwrap();
    assert!(
        dumped.status.success(),
        "gcore failed (ptrace not permitted?): {}",
        describe(&dumped)
    );
    assert!(status.success(), "the child failed: {status:?}");
    judge_dump(
        "gcore (live)",
        &patterns,
        &dir.path().join(format!("core.{pid}")),
    );
}

// ---- locking failure ---------------------------------------------------------------------------

/// In the child: check it really cannot lock, then exercise `mode`.
fn mlock_child(mode: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    // SAFETY: plain system calls on this process.
    let (uid, limit) = unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero), 0);
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit);
        (libc::getuid(), limit.rlim_cur)
    };
    const CAP_IPC_LOCK: u64 = 1 << 14;
    assert!(uid != 0, "the child runs as root");
    assert_eq!(cap_eff & CAP_IPC_LOCK, 0, "the child has CAP_IPC_LOCK");
    assert_eq!(limit, 0, "RLIMIT_MEMLOCK is not 0");
    println!("{MARK}uid={uid} cap_ipc_lock=no memlock={limit}");
    let round_trip = |engine: &Engine| -> keyplane::Result<()> {
        let key = engine.create_key(CreateKeyRequest::default())?.key_id;
        let blob = engine
            .encrypt(&EncryptRequest::new(&key, b"unlocked"))?
            .ciphertext_blob;
        let opened = engine.decrypt(&DecryptRequest::new(&blob))?;
        assert_eq!(opened.plaintext.expose(), b"unlocked");
        Ok(())
    };
    let build = |policy| {
        Engine::builder()
            .worker_threads(1)
            .lock_policy(policy)
            .build()
    };
    let outcome = |r: keyplane::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(keyplane::Error::MemoryLock(_)) => "MemoryLock".to_string(),
        Err(e) => format!("other:{e}"),
    };
    match mode {
        "mlock-require" => {
            let result = build(LockPolicy::Require).and_then(|e| round_trip(&e));
            println!("{MARK}require={}", outcome(result));
            let direct = LockedBytes::zeroed(32, LockPolicy::Require).map(|_| ());
            println!("{MARK}require_locked_bytes={}", outcome(direct));
            println!("{MARK}unlocked_bytes={}", stats().unlocked_bytes);
        }
        "mlock-warn" => {
            let result = build(LockPolicy::Warn).and_then(|e| round_trip(&e));
            println!("{MARK}warn={}", outcome(result));
            println!("{MARK}unlocked_bytes={}", stats().unlocked_bytes);
            println!("{MARK}locked_bytes={}", stats().locked_bytes);
        }
        _ => {
            // A Warn engine first (it leaves unlocked regions in the process-wide pool), then a
            // Require engine, which must still refuse.
            let warn = build(LockPolicy::Warn).and_then(|e| round_trip(&e));
            println!("{MARK}warn={}", outcome(warn));
            let require = build(LockPolicy::Require).and_then(|e| round_trip(&e));
            println!("{MARK}require_after_warn={}", outcome(require));
            let direct = LockedBytes::zeroed(32, LockPolicy::Require).map(|_| ());
            println!("{MARK}require_locked_bytes_after_warn={}", outcome(direct));
        }
    }
}

/// Runs an mlock child as `nobody`, without capabilities; the test binary is copied where
/// `nobody` can run it.
fn run_unprivileged(mode: &str) -> (Vec<String>, Output) {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        uid, 0,
        "this test runs a child as another user: it needs root (CI runs as root)"
    );
    let setpriv = Command::new("setpriv").arg("--version").output();
    assert!(
        setpriv.is_ok_and(|o| o.status.success()),
        "setpriv (util-linux) is needed to run a child without CAP_IPC_LOCK"
    );
    // A copy of this binary that `nobody` can reach and run (the build directory may not be).
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("hygiene-child");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = || {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ])
            .arg(&exe)
            .args(CHILD_ARGS)
            .env(CHILD_ENV, mode)
            .current_dir("/")
            .output()
            .unwrap()
    };
    // While the copy was being written, another test of this binary may have forked a child
    // that holds the copy's write descriptor until it execs (or exits): executing the copy then
    // fails with ETXTBSY ("Text file busy"), for a moment. Try again, a few times.
    let mut output = run();
    for _ in 0..20 {
        if !String::from_utf8_lossy(&output.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        output = run();
    }
    assert!(
        output.status.success(),
        "the child failed: {}",
        describe(&output)
    );
    (marks(&output.stdout), output)
}

#[test]
fn locking_failure_under_require_is_a_memory_lock_error() {
    let (marks, output) = run_unprivileged("mlock-require");
    println!("assurance: mlock refused, LockPolicy::Require: {marks:?}");
    assert!(
        marks.contains(&"require=MemoryLock".to_string()),
        "{}",
        describe(&output)
    );
    assert!(
        marks.contains(&"require_locked_bytes=MemoryLock".to_string()),
        "{}",
        describe(&output)
    );
    assert!(
        marks.contains(&"unlocked_bytes=0".to_string()),
        "{}",
        describe(&output)
    );
}

#[test]
fn locking_failure_under_warn_works_and_says_so() {
    let (marks, output) = run_unprivileged("mlock-warn");
    println!("assurance: mlock refused, LockPolicy::Warn: {marks:?}");
    assert!(
        marks.contains(&"warn=ok".to_string()),
        "{}",
        describe(&output)
    );
    assert!(
        !marks.contains(&"unlocked_bytes=0".to_string()),
        "unlocked memory is not counted: {}",
        describe(&output)
    );
    assert!(
        marks.contains(&"locked_bytes=0".to_string()),
        "{}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("keyplane: warning: mlock"),
        "no warning on stderr: {}",
        describe(&output)
    );
}

#[test]
fn locking_failure_under_require_is_never_a_silent_fallback_after_a_warn_engine() {
    let (marks, output) = run_unprivileged("mlock-mixed");
    println!("assurance: mlock refused, Warn then Require in one process: {marks:?}");
    assert!(
        marks.contains(&"warn=ok".to_string()),
        "{}",
        describe(&output)
    );
    assert!(
        marks.contains(&"require_after_warn=MemoryLock".to_string())
            && marks.contains(&"require_locked_bytes_after_warn=MemoryLock".to_string()),
        "a LockPolicy::Require engine got unlocked key memory without an error, once a \
         LockPolicy::Warn engine had left unlocked regions in the process-wide pool: {marks:?}"
    );
}

// ---- fork ----------------------------------------------------------------------------------------

/// In the child: fork, and compare what parent and child draw next.
fn fork_child() {
    let engine = Engine::builder().worker_threads(1).build().unwrap();
    let key = new_key(&engine);
    // Warm every cache a fork would copy: the derived-key session, the random generator.
    engine.encrypt(&EncryptRequest::new(&key, b"warm")).unwrap();
    engine.generate_random(32).unwrap();
    let draw = |engine: &Engine| -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.extend(engine.generate_random(32).unwrap());
            let blob = engine
                .encrypt(&EncryptRequest::new(&key, b"after fork"))
                .unwrap()
                .ciphertext_blob;
            out.extend_from_slice(&blob[22..66]); // salt and nonce
            let data_key = engine
                .generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256))
                .unwrap();
            out.extend_from_slice(data_key.plaintext.expose());
            out.extend_from_slice(&data_key.ciphertext_blob[22..66]);
        }
        out
    };
    let mut fds = [0i32; 2];
    // SAFETY: pipe and fork on this (single-test) process; the child only runs engine calls on
    // this thread, writes to the pipe and _exits.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::close(fds[0]);
            let ours = draw(&engine);
            let written = libc::write(fds[1], ours.as_ptr().cast(), ours.len());
            libc::_exit(if written == ours.len() as isize { 0 } else { 1 });
        }
        libc::close(fds[1]);
        let parent = draw(&engine);
        let mut from_child = vec![0u8; parent.len()];
        let mut file = std::fs::File::from_raw_fd(fds[0]);
        file.read_exact(&mut from_child).unwrap();
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        // 3 rounds of: random (32), blob salt+nonce (44), data key (32), data key salt+nonce (44).
        let round = 32 + 44 + 32 + 44;
        let mut same = [0usize; 4];
        for r in 0..3 {
            let (p, c) = (&parent[r * round..], &from_child[r * round..]);
            for (n, (start, len)) in [(0, 32), (32, 44), (76, 32), (108, 44)].iter().enumerate() {
                if p[*start..start + len] == c[*start..start + len] {
                    same[n] += 1;
                }
            }
        }
        println!(
            "{MARK}same_random={} same_salt_nonce={} same_data_key={} same_data_key_salt_nonce={}",
            same[0], same[1], same[2], same[3]
        );
    }
}

#[test]
fn after_fork_parent_and_child_never_share_random_bytes_or_nonces() {
    let output = child("fork", |_| {}).output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let marks = marks(&output.stdout);
    let line = marks
        .iter()
        .find(|m| m.starts_with("same_random="))
        .unwrap_or_else(|| panic!("no result from the fork child: {}", describe(&output)));
    println!("assurance: fork safety (3 draws each after fork): {line}");
    assert!(
        line.contains("same_random=0 ") && line.contains("same_data_key=0 "),
        "parent and child drew the same random bytes after fork: {line}"
    );
    assert!(
        line.contains("same_salt_nonce=0 ") && line.ends_with("same_data_key_salt_nonce=0"),
        "parent and child encrypted under the same (salt, nonce) after fork: the derived-key \
         session (salt and counter) cached per thread is copied into the child, so both continue \
         the same nonce sequence under the same derived key: {line}"
    );
}

#[test]
fn hex_and_pattern_helpers_agree() {
    let p = pattern(7);
    assert_eq!(hex_decode(&hex_lower(&p)), p);
    let text = format!("{:?}", p);
    assert!(
        shows(&text, &p).is_some(),
        "the detector finds a decimal list"
    );
    assert!(shows(&hex_lower(&p).to_uppercase(), &p).is_some());
    assert!(shows(&STANDARD_NO_PAD.encode(&p), &p).is_some());
    assert!(shows("nothing here", &p).is_none());
}
