//! Faults: the store's connections terminated (`pg_terminate_backend`) and the database
//! restarted mid-traffic, a writer SIGKILLed mid-transaction at least 100 times, the database
//! out of reach. Nothing acknowledged is lost, nothing half-applied is visible (every load
//! checks the rows against the sealed contents digest), commits succeed once the database is
//! back, and an unreachable database answers `StoreUnreachable` within the timeouts.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use keyplane::store::KeyStore;
use keyplane::Error;
use keyplane_postgres::{PgOptions, PostgresKeyStore, Timeouts};
use keyplane_testkit::child_test;
use uuid::Uuid;

/// Commits keys until `stop`, recording the ids of the acknowledged ones; every failure must be
/// `StoreUnreachable` (the database out of reach), never a half-applied or damaged store.
fn writer(
    store: Arc<PostgresKeyStore>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<Uuid>>>,
    failures: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut b = 0u8;
        while !stop.load(Ordering::SeqCst) {
            b = b.wrapping_add(1);
            let k = key_record();
            let m = material(b);
            let r = store.commit(&[
                keyplane::store::StoreChange::PutKey(&k),
                keyplane::store::StoreChange::PutMaterial {
                    key_id: k.id,
                    version: 1,
                    material: &m,
                },
            ]);
            match r {
                Ok(_) => {
                    acked.lock().unwrap().insert(k.id);
                }
                Err(Error::StoreUnreachable(m)) => {
                    failures.lock().unwrap().push(m);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("a commit failed with {e:?}, not StoreUnreachable"),
            }
        }
    })
}

fn check_everything_acknowledged_is_there(db: &TestDb, acked: &BTreeSet<Uuid>) -> usize {
    let store = db.open();
    let c = store
        .load()
        .expect("the store loads whole after the faults");
    let ids: BTreeSet<Uuid> = c.keys.iter().map(|k| k.id).collect();
    let missing: Vec<_> = acked.difference(&ids).collect();
    assert!(missing.is_empty(), "acknowledged commits lost: {missing:?}");
    // Nothing half-applied: every stored key has its material.
    assert_eq!(c.materials.len(), c.keys.len());
    assert!(store.verify(false).unwrap().is_pristine());
    // And commits succeed again.
    create_key(store.as_ref(), 9);
    ids.len()
}

#[test]
fn connections_terminated_mid_traffic_lose_nothing_acknowledged() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let (stop, acked, failures) = (Arc::default(), Arc::default(), Arc::default());
    let writers: Vec<_> = (0..3)
        .map(|_| {
            writer(
                store.clone(),
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&failures),
            )
        })
        .collect();
    let mut admin = db.admin();
    let mut terminated = 0i64;
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(60));
        let n: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        terminated += n;
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let stored = check_everything_acknowledged_is_there(&db, &acked);
    report(&format!(
        "postgres faults: {terminated} backends terminated, {} commits acknowledged, {} refused \
         as unreachable, {stored} keys stored",
        acked.len(),
        failures.lock().unwrap().len()
    ));
    assert!(terminated > 0 && !acked.is_empty());
    // The same store object keeps working after its connections were killed.
    create_key(store.as_ref(), 7);
}

/// `pg_ctl` on the test cluster, as its owner.
fn pg_ctl(action: &str) -> Option<()> {
    let data = std::env::var("KEYPLANE_TEST_PG_DATA").ok()?;
    let bin = std::env::var("KEYPLANE_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let run_as = std::env::var("KEYPLANE_TEST_PG_RUN_AS").unwrap_or_default();
    let mut argv: Vec<String> = run_as.split_whitespace().map(str::to_owned).collect();
    argv.push(format!("{bin}/pg_ctl"));
    // The server's output goes to a log beside the data directory: a server started with this
    // process's pipes would hold them open.
    let log = std::path::Path::new(&data).with_extension("restart.log");
    argv.extend(["-D".into(), data, "-w".into(), "-m".into(), "fast".into()]);
    argv.extend(["-l".into(), log.display().to_string(), action.into()]);
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pg_ctl {action} failed (log: {})",
        log.display()
    );
    Some(())
}

fn cluster_control_or_say_why() -> bool {
    if std::env::var("KEYPLANE_TEST_PG_DATA").is_ok() {
        return true;
    }
    let msg = "KEYPLANE_TEST_PG_DATA is not set: this test restarts the database; run it through \
               scripts/test-postgres";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    report(&format!("NOT RUN: {msg}"));
    false
}

#[test]
fn the_database_restarted_mid_traffic_loses_nothing_and_unreachable_is_answered_in_time() {
    let Some(db) = TestDb::new() else { return };
    if !cluster_control_or_say_why() {
        return;
    }
    let store = Arc::new(
        PostgresKeyStore::init(
            &db.url,
            db.provider(),
            PgOptions {
                timeouts: Timeouts {
                    connect: Duration::from_secs(2),
                    statement: Duration::from_secs(2),
                    ..Timeouts::default()
                },
                ..PgOptions::default()
            },
        )
        .unwrap(),
    );
    let woken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let w = woken.clone();
    assert!(store
        .subscribe(Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap());
    let (stop, acked, failures) = (Arc::default(), Arc::default(), Arc::default());
    let writers: Vec<_> = (0..2)
        .map(|_| {
            writer(
                store.clone(),
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&failures),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    pg_ctl("restart");
    std::thread::sleep(Duration::from_millis(500));
    // Down: the control plane answers StoreUnreachable within the connect timeout.
    pg_ctl("stop");
    let started = Instant::now();
    let r = store.generation();
    let took = started.elapsed();
    assert!(matches!(r, Err(Error::StoreUnreachable(_))), "{r:?}");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    assert_eq!(
        r.unwrap_err().code(),
        "DependencyTimeoutException",
        "the service's exception for a dependency that timed out"
    );
    pg_ctl("start");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let stored = check_everything_acknowledged_is_there(&db, &acked);
    // The listener reconnected: a commit now wakes the subscriber.
    let before = woken.load(Ordering::SeqCst);
    create_key(store.as_ref(), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while woken.load(Ordering::SeqCst) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        woken.load(Ordering::SeqCst) > before,
        "no wake-up after the restart"
    );
    report(&format!(
        "postgres faults: restart and stop mid-traffic: {} acknowledged, {} refused as \
         unreachable, {stored} stored; unreachable answered in {took:?}",
        acked.len(),
        failures.lock().unwrap().len()
    ));
}

#[test]
fn an_address_nothing_answers_is_unreachable_within_the_connect_timeout() {
    let Some(db) = TestDb::new() else { return };
    let options = PgOptions {
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            statement: Duration::from_secs(1),
            ..Timeouts::default()
        },
        ..PgOptions::default()
    };
    for address in [
        "postgres://postgres@127.0.0.1:1/nothing",
        "postgres://postgres@10.255.255.1:5432/blackhole",
    ] {
        let started = Instant::now();
        let r = PostgresKeyStore::open(address, db.provider(), options.clone());
        let took = started.elapsed();
        assert!(
            matches!(r, Err(Error::StoreUnreachable(_))),
            "{address}: {r:?}"
        );
        assert!(took < Duration::from_secs(3), "{address}: {took:?}");
    }
}

const CHILD: &str = "KEYPLANE_PG_KILL_CHILD";

/// The child of the kill test: commits keys (record, material and alias in one transaction)
/// as fast as it can, printing each acknowledged one. Ignored, and idle, in a normal test run.
#[test]
#[ignore = "the kill test's child process, started by the kill test"]
fn kill_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    let dir = std::env::var("KEYPLANE_PG_KILL_KEYDIR").unwrap();
    let provider: Arc<dyn keyplane_sqlite::root_key::RootKeyProvider> =
        Arc::new(keyplane_sqlite::root_key::KeyFileProvider::new(
            std::path::Path::new(&dir).join("root.key"),
            keyplane::LockPolicy::Require,
        ));
    let store = PostgresKeyStore::open(&url, provider, PgOptions::default()).unwrap();
    let mut out = std::io::stdout();
    for n in 0u32.. {
        let k = key_record();
        let m = material(n as u8);
        let a = alias(&format!("alias/k{}", k.id.simple()), k.id);
        store
            .commit(&[
                keyplane::store::StoreChange::PutKey(&k),
                keyplane::store::StoreChange::PutMaterial {
                    key_id: k.id,
                    version: 1,
                    material: &m,
                },
                keyplane::store::StoreChange::PutAlias(&a),
            ])
            .unwrap();
        use std::io::Write;
        writeln!(out, "ack {}", k.id).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_writer_sigkilled_mid_transaction_a_hundred_times_loses_and_half_applies_nothing() {
    let Some(db) = TestDb::new() else { return };
    let kills: usize = std::env::var("KEYPLANE_PG_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let store = db.init();
    let mut acked = BTreeSet::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..kills {
        let mut child = child_test("kill_child")
            .env(CHILD, &db.url)
            .env("KEYPLANE_PG_KILL_KEYDIR", db.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Let it open the store and commit a few, then kill it at a random moment.
        let wait = Instant::now();
        let acked_yet =
            |l: &Mutex<Vec<String>>| l.lock().unwrap().iter().any(|l| l.starts_with("ack "));
        while !acked_yet(&lines) && wait.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_micros(seed % 40_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for line in lines.lock().unwrap().iter() {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(Uuid::parse_str(id).unwrap());
            }
        }
        if round % 20 == 19 || round + 1 == kills {
            let c = store.load().expect("loads whole after a kill");
            let ids: BTreeSet<Uuid> = c.keys.iter().map(|k| k.id).collect();
            assert!(
                acked.is_subset(&ids),
                "round {round}: acknowledged commits lost"
            );
            // Nothing half-applied: each key has its material and its alias, and nothing else.
            assert_eq!(c.materials.len(), c.keys.len(), "round {round}");
            assert_eq!(c.aliases.len(), c.keys.len(), "round {round}");
        }
    }
    assert!(store.verify(false).unwrap().is_pristine());
    report(&format!(
        "postgres faults: {kills} writers SIGKILLed mid-traffic, {} commits acknowledged, none lost",
        acked.len()
    ));
    assert!(acked.len() >= kills, "the children got to commit");
}
