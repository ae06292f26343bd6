//! `process_dir`: the directory goes when the process that made it exits, and a forked child
//! that exits normally (running the `atexit` handlers it inherited) leaves it to its parent.
#![allow(unsafe_code)] // reason: fork and waitpid in the child process under test.

use std::path::Path;

use keyplane_testkit::{child_test, process_dir, succeeded};

const CHILD_ENV: &str = "KEYPLANE_TESTKIT_PROCESS_DIR_CHILD";

#[test]
fn a_process_dir_goes_with_its_process_and_not_with_a_forked_child() {
    let output = succeeded(child_test("process_dir_child_entry").env(CHILD_ENV, "1"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"))
            .to_owned()
    };
    let made = line("made: ");
    assert_eq!(line("after the forked child's exit: "), "kept", "{stdout}");
    assert!(
        !Path::new(&made).exists(),
        "{made} was left behind when its process exited"
    );
}

/// The entry point of the test above (started with `--ignored`); ignored, and idle, in a normal
/// test run.
#[test]
#[ignore = "the child process of a_process_dir_goes_with_its_process_and_not_with_a_forked_child"]
fn process_dir_child_entry() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let dir = process_dir("keyplane-testkit-process-dir");
    std::fs::write(dir.join("token.object"), b"a file in it").unwrap();
    println!("made: {}", dir.display());
    // SAFETY: this process has one thread (`--test-threads=1`, nothing spawned); the child exits
    // at once through `exit`, which runs the atexit handlers it inherited.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        std::process::exit(0);
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let kept = dir.join("token.object").exists();
    println!(
        "after the forked child's exit: {}",
        if kept { "kept" } else { "removed" }
    );
}
