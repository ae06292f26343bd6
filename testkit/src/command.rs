//! Running a tool a test depends on (PostgreSQL's, a client's, a child test process).

use std::process::{Command, Output};

/// Runs `command` to completion and returns its output; panics, with its stderr, when it cannot
/// start or exits unsuccessfully.
#[track_caller]
pub fn succeeded(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} did not start: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// This test binary again, as a child process that runs only the ignored test `entry` (a child
/// entry point: ignored, so a normal run never reports it as a passing test), single-threaded,
/// its output not captured, without backtraces. The caller adds the environment that tells the
/// entry what to do.
pub fn child_test(entry: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            entry,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUST_BACKTRACE", "0");
    command
}
