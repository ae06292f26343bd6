//! The background scheduler thread belongs to its engine: it is running while the engine lives
//! and has ended by the time the last handle is dropped (so a C or Python process that frees its
//! engine and exits leaves no thread behind, and nothing leaked).

use std::time::Duration;

use keyplane::{Engine, LockPolicy};

/// Threads of this process named after the scheduler (`comm` holds 15 characters).
fn scheduler_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "keyplane-schedu")
        .count()
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
        scheduler_threads(),
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
    // No waiting: dropping the last handle stops and joins the thread, even an hour from its
    // next run.
    assert_eq!(scheduler_threads(), 0, "the scheduler outlived its engine");
}
