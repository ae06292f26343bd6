//! How long a cache line takes to pass from one core to another: two threads, pinned to the first
//! two CPUs this process may use, hand one atomic counter back and forth.
//!
//! On a virtual machine the host may move the guest's CPUs between cores that share a last-level
//! cache and cores that do not, and a batch split across two threads hands lines between them
//! (the post, the jobs claimed, the counts the helper writes and the caller reads). On this
//! project's 2-core EPYC VMs a hand-off took 26–34 ns in some spells and 145–200 ns in others,
//! and 64-byte batches of 256 on two threads ran at ~12 and ~10 M/s with them
//! (docs/performance.md). A sweep with two-thread points measures it before and after, so that
//! its table says which machine it ran on.

#![allow(unsafe_code)] // reason: sched_getaffinity and sched_setaffinity through libc.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Hand-offs timed per measurement (each a one-way pass of the line).
const HAND_OFFS: u64 = 400_000;

/// The hand-off time measured before a sweep's points and after them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CoreHandOff {
    /// The two CPUs (as the kernel numbers them).
    pub cpus: [usize; 2],
    pub before_ns: f64,
    pub after_ns: f64,
}

impl CoreHandOff {
    /// The table's line.
    pub fn text(&self) -> String {
        format!(
            "cache-line hand-off between CPUs {} and {}: {:.0} ns before the points, {:.0} ns after",
            self.cpus[0], self.cpus[1], self.before_ns, self.after_ns
        )
    }
}

/// The first two CPUs this process may run on, if it may run on two.
pub fn two_cpus() -> Option<[usize; 2]> {
    // SAFETY: `set` is a plain bit set the kernel fills; its size is passed with it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid 0 is this thread, whose mask the process's threads inherit.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return None;
    }
    let mut cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) });
    Some([cpus.next()?, cpus.next()?])
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> bool {
    // SAFETY: a zeroed set, one bit set below CPU_SETSIZE (`cpu` came from `two_cpus`), passed
    // with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Nanoseconds per one-way hand-off between `cpus`, from two new threads (the caller's thread
/// keeps its affinity); `None` if a thread could not be pinned.
pub fn measure(cpus: [usize; 2]) -> Option<f64> {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Line(AtomicU64::new(0));
    let line = &line.0;
    // Set by a thread that could not pin itself, so that the other stops waiting for it.
    let failed = AtomicBool::new(false);
    let failed = &failed;
    // Waits until the line holds `n`; false if the other thread gave up.
    let wait_for = move |n: u64| loop {
        if line.load(Ordering::Acquire) == n {
            return true;
        }
        if failed.load(Ordering::Relaxed) {
            return false;
        }
        std::hint::spin_loop();
    };
    std::thread::scope(|s| {
        let answerer = s.spawn(move || {
            if !pin(cpus[1]) {
                failed.store(true, Ordering::Relaxed);
                return false;
            }
            for i in 0..HAND_OFFS / 2 {
                if !wait_for(2 * i + 1) {
                    return false;
                }
                line.store(2 * i + 2, Ordering::Release);
            }
            true
        });
        let timer = s.spawn(move || {
            if !pin(cpus[0]) {
                failed.store(true, Ordering::Relaxed);
                return None;
            }
            let started = Instant::now();
            for i in 0..HAND_OFFS / 2 {
                line.store(2 * i + 1, Ordering::Release);
                if !wait_for(2 * i + 2) {
                    return None;
                }
            }
            Some(started.elapsed().as_secs_f64() * 1e9 / HAND_OFFS as f64)
        });
        let timed = timer.join().ok().flatten();
        let answered = answerer.join().unwrap_or(false);
        timed.filter(|_| answered)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_off_between_two_cpus_takes_a_positive_time() {
        let may_use = std::thread::available_parallelism().map_or(1, |n| n.get());
        let Some(cpus) = two_cpus() else {
            assert!(
                may_use < 2,
                "{may_use} CPUs, yet two_cpus found fewer than two"
            );
            return;
        };
        assert_ne!(cpus[0], cpus[1]);
        let ns = measure(cpus).expect("both threads pinned");
        assert!(ns > 0.0 && ns < 1e6, "{ns} ns per hand-off");
    }
}
