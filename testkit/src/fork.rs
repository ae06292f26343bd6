//! One fork of a test scenario, judged: the child runs its checks and exits with a code; the
//! parent waits a bounded time and reads the code as a verdict, or reports a hang. The fork
//! tests of the engine's and the stores' suites share it.
#![allow(unsafe_code)] // reason: fork, waitpid, kill and _exit of the child under test.

use std::time::{Duration, Instant};

/// Forks; the child runs `checks` (a panic is a failure too, the last of `verdicts`) and exits
/// with its code, which the parent, waiting at most 30 s, reads as one of `verdicts`.
pub fn fork_round(verdicts: &[&str], checks: impl FnOnce() -> u8) -> String {
    let panicked = u8::try_from(verdicts.len() - 1).expect("fewer than 256 verdicts");
    // SAFETY: fork of a scenario process (a child test of its own, `child_test`), whose other
    // threads may be in engine calls (the attack). The forked process runs `checks` on its one
    // thread and `_exit`s without unwinding or running destructors; this process only waits
    // for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks)).unwrap_or(panicked);
        // SAFETY: ends the forked process at once, as a child of fork must.
        unsafe { libc::_exit(i32::from(code)) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: polls the child forked above.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            0 => {
                // SAFETY: ends and reaps the child forked above, which did not finish.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return "hung: no exit 30 s after the fork (a lock held at the fork?)".to_owned();
            }
            reaped => {
                assert_eq!(reaped, pid, "waitpid failed");
                break;
            }
        }
    }
    if libc::WIFSIGNALED(status) {
        return format!("killed by signal {}", libc::WTERMSIG(status));
    }
    let code = libc::WEXITSTATUS(status);
    verdicts
        .get(code as usize)
        .map_or_else(|| format!("exit code {code}"), |v| (*v).to_owned())
}

/// Runs `scenario` (a child test process that forks [`fork_round`] after [`fork_round`] and
/// prints each verdict after `mark`, [`crate::child_test`]) and returns the verdicts, checking
/// that it succeeded and printed `rounds` of them (its whole output in the panic otherwise).
pub fn fork_verdicts(
    scenario: &mut std::process::Command,
    mark: &str,
    rounds: usize,
) -> Vec<String> {
    let output = scenario
        .output()
        .unwrap_or_else(|e| panic!("{scenario:?} did not start: {e}"));
    let described = || {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(output.status.success(), "{}", described());
    let verdicts: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.find(mark).map(|at| l[at + mark.len()..].to_owned()))
        .collect();
    assert_eq!(verdicts.len(), rounds, "{}", described());
    verdicts
}
