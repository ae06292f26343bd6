//! Sign-in, sessions, CSRF tokens and the sign-in rate limit.
//!
//! A session is made only by a sign-in whose access key id and secret access key the credential
//! store accepts ([`crate::auth::CredentialStore::check_secret`], constant time, the same store and
//! principal mapping SigV4 uses). Its id is 256 random bits, sent only in the session cookie and
//! kept here only as its SHA-256 (a memory dump or a timing probe of the map gives no usable id).
//! It ends at sign-out, after [`Timeouts::idle`] without a request, or [`Timeouts::absolute`]
//! after sign-in, whichever comes first. Each session has its own CSRF token (256 random bits),
//! which every POST must carry and which is compared in constant time.
//!
//! Sign-in attempts are limited per source address and per access key id: after
//! [`SignInLimit::attempts`] failures within [`SignInLimit::window`], further attempts from that
//! address, or for that key, are refused (429) until the window passes, whether or not their
//! secret is right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use keyplane::sealing::constant_time_eq;

/// How long a session lives.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in, however active.
    pub absolute: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: Duration::from_secs(15 * 60),
            absolute: Duration::from_secs(8 * 60 * 60),
        }
    }
}

/// The sign-in rate limit.
#[derive(Clone, Copy, Debug)]
pub struct SignInLimit {
    /// Failed attempts allowed per address, and per access key id, within the window.
    pub attempts: u32,
    pub window: Duration,
}

impl Default for SignInLimit {
    fn default() -> Self {
        SignInLimit {
            attempts: 5,
            window: Duration::from_secs(5 * 60),
        }
    }
}

/// One signed-in principal.
#[derive(Clone)]
pub struct Session {
    pub principal: String,
    pub access_key_id: String,
    /// The CSRF token every POST of this session carries (hex).
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .field("access_key_id", &self.access_key_id)
            .field("csrf", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The token for this session's forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), presented.as_bytes())
    }
}

/// The sessions of one console, in memory.
#[derive(Debug)]
pub struct Sessions {
    timeouts: Timeouts,
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

/// Most sessions at once; past it, the oldest is ended.
const MAX_SESSIONS: usize = 10_000;

fn random_hex() -> keyplane::Result<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    keyplane::sealing::fill_random(&mut bytes[..])?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn hash(id: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, id.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Sessions {
    pub fn new(timeouts: Timeouts) -> Sessions {
        Sessions {
            timeouts,
            by_hash: Mutex::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `principal`: its id (for the cookie) and the session.
    pub fn create(
        &self,
        principal: &str,
        access_key_id: &str,
    ) -> keyplane::Result<(String, Session)> {
        let id = random_hex()?;
        let now = Instant::now();
        let session = Session {
            principal: principal.to_owned(),
            access_key_id: access_key_id.to_owned(),
            csrf: random_hex()?,
            created: now,
            last_seen: now,
        };
        let mut map = self.map();
        let timeouts = self.timeouts;
        map.retain(|_, s| live(s, now, timeouts));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(hash(&id), session.clone());
        Ok((id, session))
    }

    /// The live session whose id is `id`, its idle clock restarted; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Session> {
        if id.len() != 64 {
            return None;
        }
        let key = hash(id);
        let now = Instant::now();
        let mut map = self.map();
        let session = map.get_mut(&key)?;
        if !live(session, now, self.timeouts) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends the session `id` (sign-out).
    pub fn destroy(&self, id: &str) {
        self.map().remove(&hash(id));
    }

    /// Sessions held now (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(s: &Session, now: Instant, t: Timeouts) -> bool {
    now.duration_since(s.last_seen) < t.idle && now.duration_since(s.created) < t.absolute
}

/// Failed sign-ins by address and by access key id.
#[derive(Debug)]
pub struct Limiter {
    limit: SignInLimit,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Most addresses and key ids tracked at once (the oldest windows go first past it).
const MAX_TRACKED: usize = 100_000;

impl Limiter {
    pub fn new(limit: SignInLimit) -> Limiter {
        Limiter {
            limit,
            failures: Mutex::default(),
        }
    }

    fn names(address: IpAddr, access_key_id: &str) -> [String; 2] {
        [
            format!("ip:{address}"),
            format!(
                "key:{}",
                access_key_id.chars().take(128).collect::<String>()
            ),
        ]
    }

    /// Whether an attempt from `address` for `access_key_id` may be checked now.
    pub fn allowed(&self, address: IpAddr, access_key_id: &str) -> bool {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::names(address, access_key_id).iter().all(|name| {
            map.get(name).is_none_or(|(start, count)| {
                now.duration_since(*start) >= self.limit.window || *count < self.limit.attempts
            })
        })
    }

    /// Counts a failed attempt.
    pub fn failed(&self, address: IpAddr, access_key_id: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            let window = self.limit.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        for name in Self::names(address, access_key_id) {
            let entry = map.entry(name).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.limit.window {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_idle_and_absolute_and_end_at_sign_out() {
        let sessions = Sessions::new(Timeouts {
            idle: Duration::from_millis(200),
            absolute: Duration::from_millis(500),
        });
        let (id, s) = sessions
            .create("arn:aws:iam::111122223333:root", "AKIA")
            .unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(s.csrf().len(), 64);
        assert_ne!(s.csrf(), id);
        assert!(s.csrf_matches(s.csrf()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&id));
        // Kept alive by use until the absolute limit.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(120));
            assert!(sessions.get(&id).is_some());
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(sessions.get(&id).is_none(), "absolute expiry");
        let (id, _) = sessions
            .create("arn:aws:iam::111122223333:root", "AKIA")
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(sessions.get(&id).is_none(), "idle expiry");
        let (id, _) = sessions
            .create("arn:aws:iam::111122223333:root", "AKIA")
            .unwrap();
        sessions.destroy(&id);
        assert!(sessions.get(&id).is_none());
        assert!(!format!("{:?}", sessions.create("p", "k").unwrap().1).contains(&id));
    }

    #[test]
    fn the_limiter_counts_failures_by_address_and_by_key() {
        let limiter = Limiter::new(SignInLimit {
            attempts: 2,
            window: Duration::from_millis(300),
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        limiter.failed(a, "K1");
        assert!(limiter.allowed(a, "K1"));
        limiter.failed(a, "K2");
        assert!(!limiter.allowed(a, "K3"), "two failures from a");
        assert!(limiter.allowed(b, "K1"), "one failure for K1 so far");
        limiter.failed(b, "K1");
        assert!(!limiter.allowed(b, "K1"), "two failures for K1");
        assert!(limiter.allowed(b, "K4"));
        std::thread::sleep(Duration::from_millis(350));
        assert!(limiter.allowed(a, "K1"));
    }
}
