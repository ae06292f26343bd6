//! The tally of one attack: every attempt must be refused, and the CI summary sums the
//! `assurance: attack` lines each tally prints when it ends.

use keyplane::ErrorKind;

use crate::report;

/// Counts the attempts of one attack; each must be refused. When the tally ends (outside a
/// panic) it requires at least one attempt and reports `assurance: attack NAME: tried N,
/// rejected N`.
pub struct Attack {
    name: &'static str,
    tried: u64,
    rejected: u64,
}

impl Attack {
    pub fn new(name: &'static str) -> Self {
        Attack {
            name,
            tried: 0,
            rejected: 0,
        }
    }

    /// One attempt, judged by `verdict`: `Ok` when it was refused as it must be, otherwise
    /// what was wrong (which fails the test).
    #[track_caller]
    pub fn attempt(&mut self, what: &str, verdict: Result<(), String>) {
        self.tried += 1;
        if let Err(why) = verdict {
            match what {
                "" => panic!("{}: {why}", self.name),
                _ => panic!("{}: {what}: {why}", self.name),
            }
        }
        self.rejected += 1;
    }

    /// One attempt judged by the caller.
    #[track_caller]
    pub fn judged(&mut self, rejected: bool, what: &str) {
        let verdict = match rejected {
            true => Ok(()),
            false => Err("was not detected".to_owned()),
        };
        self.attempt(what, verdict);
    }

    /// One attempt, which must fail with one of the service exceptions `codes`.
    #[track_caller]
    pub fn refused<T>(&mut self, result: keyplane::Result<T>, codes: &[&str], what: &str) {
        let verdict = match result {
            Ok(_) => Err("was accepted".to_owned()),
            Err(e) if codes.contains(&e.code()) => Ok(()),
            Err(e) => Err(format!(
                "failed with {} ({e}), expected one of {codes:?}",
                e.code()
            )),
        };
        self.attempt(what, verdict);
    }

    /// One attempt, which must fail in any way (and so yield nothing).
    #[track_caller]
    pub fn refused_any<T: std::fmt::Debug>(&mut self, result: keyplane::Result<T>, what: &str) {
        let verdict = match result {
            Ok(v) => Err(format!("succeeded: {v:?}")),
            Err(_) => Ok(()),
        };
        self.attempt(what, verdict);
    }

    /// One attempt, which a store must refuse: a `Store` error whose message says every one of
    /// `words`.
    #[track_caller]
    pub fn refused_by_store<T>(&mut self, result: keyplane::Result<T>, words: &[&str], what: &str) {
        let verdict = match result {
            Ok(_) => Err("was accepted".to_owned()),
            Err(e) if e.kind() != ErrorKind::Store => {
                Err(format!("failed with {e:?}, expected a Store error"))
            }
            Err(e) => match words.iter().find(|w| !e.message().contains(**w)) {
                Some(w) => Err(format!("the error does not say '{w}': {e}")),
                None => Ok(()),
            },
        };
        self.attempt(what, verdict);
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.tried > 0, "{}: nothing was tried", self.name);
            report(&format!(
                "assurance: attack {}: tried {}, rejected {}",
                self.name, self.tried, self.rejected
            ));
        }
    }
}
