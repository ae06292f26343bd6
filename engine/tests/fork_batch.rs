//! A child of `fork` has none of its parent's threads: not the batch helpers, not rayon's
//! workers. A large batch in the child must still finish, on the calling thread alone, with
//! answers the parent can open (a process pool that forks after the engine is built, as Python's
//! `multiprocessing` does by default on Linux).

use std::io::Read;
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use keyplane::{DecryptRequest, EncryptRequest, Engine, KeySpec, KeyUsage};
use keyplane_testkit::{child_test, new_key_of};

const CHILD_ENV: &str = "KEYPLANE_FORK_BATCH_CHILD";

#[test]
fn a_forked_child_runs_large_batches_without_its_parents_threads() {
    // The child's output goes to a file, shown if it fails: inherited, its test harness's lines
    // ("test fork_batch_child ... ok", "test result: ok. 1 passed") landed in the parent's log
    // and were counted there as a test of their own.
    let output = tempfile::tempfile().unwrap();
    let mut child = child_test("fork_batch_child")
        .env(CHILD_ENV, "1")
        .stdout(output.try_clone().unwrap())
        .stderr(output.try_clone().unwrap())
        .spawn()
        .expect("the test binary starts");
    let shown = |mut output: std::fs::File| {
        use std::io::Seek;
        let mut text = String::new();
        output.rewind().unwrap();
        output.read_to_string(&mut text).unwrap();
        text
    };
    // A batch waiting for a thread that does not exist never ends: give it a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the forked child's batch did not finish within a minute; its output:\n{}",
                shown(output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the child failed: {status}; its output:\n{}",
        shown(output)
    );
}

#[test]
#[ignore = "run by a_forked_child_runs_large_batches_without_its_parents_threads"]
fn fork_batch_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let engine = Engine::builder().worker_threads(4).build().unwrap();
    let key = new_key_of(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let messages: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; 256]).collect();
    let requests: Vec<EncryptRequest<'_>> = messages
        .iter()
        .map(|m| EncryptRequest::new(&key, m))
        .collect();
    // The helpers and rayon's workers are started and have worked before the fork.
    assert!(engine.encrypt_batch(&requests).iter().all(|r| r.is_ok()));
    let mut fds = [0i32; 2];
    // SAFETY: pipe and fork in this single-test child process; the forked process runs engine
    // calls on its one thread, writes to the pipe and _exits.
    let pid = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::close(fds[0]);
            let blobs = engine.encrypt_batch(&requests);
            let ok = blobs.iter().all(|r| r.is_ok());
            let mut message = vec![u8::from(ok)];
            for blob in blobs.into_iter().flatten().take(3) {
                message.extend(u32::try_from(blob.len()).unwrap().to_le_bytes());
                message.extend_from_slice(&blob);
            }
            let written = libc::write(fds[1], message.as_ptr().cast(), message.len());
            libc::_exit(if written == message.len() as isize {
                0
            } else {
                1
            });
        }
        libc::close(fds[1]);
        pid
    };
    let mut from_child = Vec::new();
    // SAFETY: `fds[0]` is the pipe's read end, owned by this process from here on.
    let mut file = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    file.read_to_end(&mut from_child).unwrap();
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { assert_eq!(libc::waitpid(pid, &mut status, 0), pid) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(
        from_child.first(),
        Some(&1),
        "every item of the child's batch succeeded"
    );
    let mut rest = &from_child[1..];
    let mut opened = 0;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let blob = &rest[4..4 + len];
        let plaintext = engine.decrypt(&DecryptRequest::new(blob)).unwrap();
        assert_eq!(plaintext.plaintext.expose(), &messages[opened][..]);
        opened += 1;
        rest = &rest[4 + len..];
    }
    assert_eq!(opened, 3, "the parent opens the child's blobs");
    // And the parent's own helpers still work.
    assert!(engine.encrypt_batch(&requests).iter().all(|r| r.is_ok()));
}
