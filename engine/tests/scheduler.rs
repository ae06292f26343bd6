//! The background scheduler thread belongs to its engine: it is running while the engine lives
//! and has ended by the time the last handle is dropped (so a C or Python process that frees its
//! engine and exits leaves no thread behind, and nothing leaked).

use std::time::Duration;

use keyplane::audit::{generate_signing_key, verify, AuditConfig, DigestSigner, Verdict};
use keyplane::{Engine, LockPolicy, LockedBytes, SecretAccess};

/// Threads of this process named after the scheduler (`comm` holds 15 characters).
fn scheduler_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "keyplane-schedu")
        .count()
}

/// The count once it has become `expected`, waiting up to 10 s: a new thread names itself after it
/// starts, so right after `build` its name may not show yet (seen on a loaded machine). Not a
/// speed check; a count that never becomes `expected` is returned as it is and fails the test.
fn scheduler_threads_once(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = scheduler_threads();
        if now == expected || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_scheduler_thread_ends_when_its_engine_is_dropped() {
    assert_eq!(scheduler_threads(), 0);
    let engine = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .scheduler_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let handle = engine.clone();
    assert_eq!(
        scheduler_threads_once(1),
        1,
        "one scheduler while the engine lives"
    );
    drop(engine);
    assert_eq!(
        scheduler_threads(),
        1,
        "another handle keeps the engine alive"
    );
    drop(handle);
    // Dropping the last handle stops and joins the thread, even an hour from its next run. The
    // wait is only for /proc: a joined thread's task entry can outlive the join by a moment (the
    // kernel wakes the joiner before it removes the task; seen once on a loaded machine). A thread
    // that was not stopped would still be sleeping an hour from now and fail this.
    assert_eq!(
        scheduler_threads_once(0),
        0,
        "the scheduler outlived its engine"
    );
}

/// The scheduler holds the engine while it runs due tasks. A caller that dropped its last handle
/// during such a run went on while the engine closed later, on the scheduler's thread: a process
/// that then exited tore aws-lc down under the audit writer's final signature (SIGABRT in CI, a
/// `keyplane key create` on PostgreSQL). Now the last handle stops and joins the scheduler first,
/// so when its drop returns the engine is closed: the audit log ends with its final digest. A
/// scheduler that runs every 20 µs makes the drop land in a run in most rounds.
#[test]
fn the_last_handle_closes_the_engine_before_its_drop_returns_even_during_a_scheduler_run() {
    let dir = tempfile::tempdir().unwrap();
    let signing_key = generate_signing_key(LockPolicy::Warn).unwrap();
    let public_key = DigestSigner::from_pkcs8(&signing_key)
        .unwrap()
        .public_key_der()
        .to_vec();
    for round in 0..100 {
        let path = dir.path().join(format!("audit-{round}.log"));
        let key = LockedBytes::copy_from(
            signing_key.expose(SecretAccess::granted()),
            LockPolicy::Warn,
        )
        .unwrap();
        let engine = Engine::builder()
            .lock_policy(LockPolicy::Warn)
            .scheduler_interval(Duration::from_micros(20))
            .audit(AuditConfig::new(&path), key)
            .build()
            .unwrap();
        engine.generate_random(16).unwrap();
        drop(engine);
        let report = verify(&path, &public_key).unwrap();
        assert_eq!(
            report.verdict(),
            Verdict::Intact,
            "round {round}: the engine was still closing after its last handle was dropped: \
             {report:?}"
        );
    }
}
