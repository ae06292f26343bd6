//! The crash test: a child process creates, rotates and deletes keys and encrypts under them as
//! fast as it can, reporting on stdout each change once the engine has acknowledged it, and is
//! killed with SIGKILL at a random moment. After every kill the store must open, `verify` must
//! find nothing wrong, every key the child reported created (and did not start deleting) must be
//! there and Enabled, and every ciphertext it reported must decrypt to what it encrypted.
//!
//! `KEYPLANE_CRASH_KILLS` sets the number of kills (default 200, the full run);
//! `KEYPLANE_CRASH_SEED` replays a run (the seed is printed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use keyplane::clock::DAY_MS;
use keyplane::store::KeyStore;
use keyplane::{Clock, DecryptRequest, EncryptRequest, Engine, KeyState, ManualClock, Timestamp};
use keyplane_testkit::{child_test, hex, unhex};

const CHILD_DIR: &str = "KEYPLANE_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "KEYPLANE_CRASH_CHILD_SEED";
const CHILD_RUN: &str = "KEYPLANE_CRASH_CHILD_RUN";
/// Keys the child keeps alive before it prefers deleting.
const LIVE_KEYS: usize = 24;

/// xorshift64*: a small, seedable generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The child: runs until it is killed. Without its environment variable it does nothing (it
/// is only ever started by the parent test below, with `--ignored`).
#[test]
#[ignore = "the crash test's child process, started by `the_store_survives_sigkill_at_random_moments`"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let run: i64 = std::env::var(CHILD_RUN).unwrap().parse().unwrap();
    let mut rng = Rng(seed | 1);
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "CRASH {line}").unwrap();
        out.flush().unwrap();
    };
    // Each run's clock starts far past every deletion an earlier run scheduled, so those are due
    // and happen at this run's first control-plane call.
    let clock = Arc::new(ManualClock::new(Timestamp(
        keyplane::SystemClock.now().0 + run * 10_000 * DAY_MS,
    )));
    let store = open(std::path::Path::new(&dir));
    let engine = Engine::builder()
        .worker_threads(1)
        .clock(clock.clone())
        .store(store)
        .build()
        .unwrap();
    engine.run_due_tasks().unwrap();
    let mut live: Vec<String> = engine
        .list_keys(Some(1000), None)
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.key_id)
        .filter(|id| engine.describe_key(id).unwrap().key_state == KeyState::Enabled)
        .collect();
    say("ready".into());
    loop {
        let pick =
            |rng: &mut Rng, live: &Vec<String>| live[rng.below(live.len() as u64) as usize].clone();
        match rng.below(10) {
            0..=2 if live.len() < LIVE_KEYS * 2 => {
                let key = new_key(&engine);
                say(format!("created {key}"));
                live.push(key);
            }
            3..=5 if !live.is_empty() => {
                let key = pick(&mut rng, &live);
                let len = 1 + rng.below(64) as usize;
                let plaintext: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let blob = engine
                    .encrypt(&EncryptRequest::new(&key, &plaintext))
                    .unwrap()
                    .ciphertext_blob;
                say(format!("sealed {key} {} {}", hex(&blob), hex(&plaintext)));
            }
            6 if !live.is_empty() => {
                let key = pick(&mut rng, &live);
                match engine.rotate_key_on_demand(&key) {
                    Ok(_) => say(format!("rotated {key}")),
                    Err(e) if e.code() == "LimitExceededException" => {}
                    Err(e) => panic!("rotate: {e}"),
                }
            }
            7..=8 if live.len() > LIVE_KEYS => {
                let index = rng.below(live.len() as u64) as usize;
                let key = live.swap_remove(index);
                say(format!("deleting {key}"));
                engine.schedule_key_deletion(&key, Some(7)).unwrap();
                clock.advance(Duration::from_millis(8 * DAY_MS as u64));
                engine.run_due_tasks().unwrap();
                say(format!("deleted {key}"));
            }
            _ => {
                engine.run_due_tasks().unwrap();
            }
        }
    }
}

/// What the children reported, accumulated over every run.
#[derive(Default)]
struct Reported {
    created: BTreeSet<String>,
    deleting: BTreeSet<String>,
    sealed: Vec<(String, Vec<u8>, Vec<u8>)>,
    rotations: usize,
}

impl Reported {
    fn take(&mut self, line: &str) {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next()) {
            (Some("created"), Some(key)) => {
                self.created.insert(key.into());
            }
            (Some("deleting"), Some(key)) => {
                self.deleting.insert(key.into());
            }
            (Some("rotated"), Some(_)) => self.rotations += 1,
            (Some("sealed"), Some(key)) => {
                let blob = unhex(parts.next().unwrap());
                let plaintext = unhex(parts.next().unwrap());
                self.sealed.push((key.into(), blob, plaintext));
            }
            _ => {}
        }
    }
}

#[test]
fn the_store_survives_sigkill_at_random_moments() {
    let kills: usize = std::env::var("KEYPLANE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("KEYPLANE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    report(&format!(
        "crash test: {kills} kills (KEYPLANE_CRASH_KILLS), seed {seed} (KEYPLANE_CRASH_SEED)"
    ));
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path()));
    let started = Instant::now();
    let mut reported = Reported::default();
    let (mut ciphertexts_checked, mut keys_checked, mut killed_before_ready) = (0usize, 0usize, 0);
    let mut max_keys = 0usize;

    for run in 0..kills {
        let mut child = child_test("crash_child")
            .env(CHILD_DIR, dir.path())
            .env(CHILD_SEED, rng.next().to_string())
            .env(CHILD_RUN, (run + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test crash_child ... " before the first report on its line.
                if let Some(at) = line.find("CRASH ") {
                    let report = &line[at + "CRASH ".len()..];
                    if report == "ready" {
                        let _ = ready_tx.send(());
                    }
                    lines.push(report.to_owned());
                }
            }
            lines
        });
        // One kill in five lands while the child is still starting (opening the store, loading
        // keys, running due deletions); the rest while it works.
        if rng.below(5) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(25)));
        } else {
            let ready = ready_rx.recv_timeout(Duration::from_secs(60)).is_ok();
            assert!(
                ready || child.try_wait().unwrap().is_none(),
                "the child exited early"
            );
            std::thread::sleep(Duration::from_millis(rng.below(250)));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "run {run} (seed {seed}): the child must have been working until SIGKILL, not {status}"
        );
        let lines = reader.join().unwrap();
        if !lines.iter().any(|l| l == "ready") {
            killed_before_ready += 1;
        }
        for line in &lines {
            reported.take(line);
        }

        // The store opens and verifies, every acknowledged key is there, every ciphertext opens.
        let store = open(dir.path());
        let verify = store.verify(false).unwrap();
        assert!(
            verify.is_pristine(),
            "run {run} (seed {seed}): verify found {verify:#?}"
        );
        let contents = store.load().unwrap();
        let present: BTreeMap<String, KeyState> = contents
            .keys
            .iter()
            .map(|k| (k.id.to_string(), k.state))
            .collect();
        max_keys = max_keys.max(present.len());
        for key in reported.created.difference(&reported.deleting) {
            assert_eq!(
                present.get(key),
                Some(&KeyState::Enabled),
                "run {run} (seed {seed}): key {key} was reported created"
            );
            keys_checked += 1;
        }
        drop(contents);
        let engine = engine(&store);
        let to_check: Vec<_> = reported
            .sealed
            .iter()
            .filter(|(key, _, _)| !reported.deleting.contains(key))
            .collect();
        let requests: Vec<_> = to_check
            .iter()
            .map(|(_, blob, _)| DecryptRequest::new(blob))
            .collect();
        for ((key, _, plaintext), opened) in to_check.iter().zip(engine.decrypt_batch(&requests)) {
            let opened = opened.unwrap_or_else(|e| {
                panic!("run {run} (seed {seed}): a ciphertext under {key} no longer decrypts: {e}")
            });
            assert_eq!(opened.expose(), &plaintext[..]);
            ciphertexts_checked += 1;
        }
        // Forget ciphertexts of deleted keys so the checks stay proportionate to what is live.
        reported
            .sealed
            .retain(|(key, _, _)| !reported.deleting.contains(key));
    }
    let final_verify = open(dir.path()).verify(false).unwrap();
    assert!(final_verify.is_pristine());
    report(&format!(
        "crash test: {kills} SIGKILLs survived ({killed_before_ready} during start-up) in {:.1} s; \
         {} keys reported created, {} deleted, {} rotations; {keys_checked} key presence checks, \
         {ciphertexts_checked} ciphertexts decrypted after kills; at most {max_keys} keys at once; \
         final verify: {} versions, {} copies good, 0 damaged, 0 repairs needed",
        started.elapsed().as_secs_f64(),
        reported.created.len(),
        reported.deleting.len(),
        reported.rotations,
        final_verify.versions,
        final_verify.copies_good,
    ));
}
