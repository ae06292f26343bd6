//! A copy of the process made by `fork` (Python's `multiprocessing` on Linux, a prefork server)
//! with an engine on an SQLite store: the store's connection and file locks stay the parent's
//! (SQLite: do not carry a connection across fork), and its scheduler thread, which holds the
//! control lock on every run, does not come with the copy. The copy's control plane is refused at
//! once; its data plane serves the keys it holds; the parent's store stays whole.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use keyplane::{CreateKeyRequest, Engine, ErrorKind};
use keyplane_testkit::{child_test, fork_round, fork_verdicts};

const ENV: &str = "KEYPLANE_SQLITE_FORK_DIR";
const MARK: &str = "SQLITEFORK ";
const ROUNDS: usize = 16;
/// What a forked child saw, by its exit code.
const VERDICTS: [&str; 5] = [
    "control plane refused at once, data plane served",
    "CreateKey was not refused with a Store error naming the fork",
    "Encrypt failed",
    "Decrypt of the parent's blob failed",
    "panicked",
];

#[test]
fn a_forked_child_uses_no_store_connection_of_its_parents() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let verdicts = fork_verdicts(
        child_test("fork_scenario").env(ENV, dir.path()),
        MARK,
        ROUNDS,
    );
    for (round, verdict) in verdicts.iter().enumerate() {
        assert_eq!(verdict, VERDICTS[0], "fork {round}");
    }
    // The parent's store afterwards: whole, with the parent's keys and none of the children's.
    let check: String = sql(dir.path())
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let engine = engine(&open(dir.path()));
    let keys = engine.list_keys(None, None).unwrap().items.len();
    assert_eq!(keys, 2, "the parent's two keys");
}

/// The scenario, in a process of its own (started by the test above with `--ignored`; ignored,
/// and idle, in a normal run): an engine following its store every 5 ms forks `ROUNDS` times.
#[test]
#[ignore = "the fork scenario, started by its test"]
fn fork_scenario() {
    let Ok(dir) = std::env::var(ENV) else {
        return;
    };
    let store = open(Path::new(&dir));
    let engine = Engine::builder()
        .worker_threads(1)
        .store(store)
        .scheduler_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    let key = new_key(&engine);
    let blob = encrypt(&engine, &key, b"the parent's");
    for round in 0..ROUNDS {
        // Varied, so that some forks land while the scheduler runs.
        std::thread::sleep(Duration::from_micros(700 * (round % 9) as u64));
        let verdict = fork_round(&VERDICTS, || {
            let refused = engine
                .create_key(CreateKeyRequest::default())
                .is_err_and(|e| e.kind() == ErrorKind::Store && e.message().contains("fork"));
            if !refused {
                return 1;
            }
            let Ok(mine) = engine.encrypt(&keyplane::EncryptRequest::new(&key, b"mine")) else {
                return 2;
            };
            let theirs = decrypt(&engine, &blob);
            if !matches!(theirs, Ok(p) if p == b"the parent's") || mine.ciphertext_blob.is_empty() {
                return 3;
            }
            0
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{MARK}{verdict}").unwrap();
        stdout.flush().unwrap();
    }
    // The parent's control plane carries on.
    new_key(&engine);
}
