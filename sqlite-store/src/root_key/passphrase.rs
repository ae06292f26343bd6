//! A root key derived from a passphrase with argon2id (RFC 9106), a memory-hard function: each
//! guess costs an attacker the same memory and time it costs the store to open.
//!
//! The salt (16 random bytes) and the cost are chosen when the key is created and kept by the
//! store as the provider's parameters, so that opening derives the same key. A wrong passphrase
//! derives another key, which the store's check value refuses before anything is written.

use base64::Engine as _;
use keyplane::LockedBytes;
use keyplane::{Error, LockPolicy, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{NewRootKey, RootKey, RootKeyProvider};

/// The provider kind a passphrase-derived root key is recorded under.
pub const ARGON2ID_KIND: &str = "argon2id";
const SALT_BYTES: usize = 16;
/// The most memory a store's parameters may ask for (4 GiB), so that a damaged or hostile store
/// file cannot make opening it exhaust memory.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommended setting with one lane (this
    /// implementation computes lanes one after another); about a quarter of a second to open.
    fn default() -> Self {
        Argon2Cost {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl Argon2Cost {
    fn check(&self) -> Result<()> {
        let memory_floor = 8 * self.parallelism.max(1);
        if !(memory_floor..=MAX_MEMORY_KIB).contains(&self.memory_kib)
            || !(1..=MAX_ITERATIONS).contains(&self.iterations)
            || !(1..=MAX_PARALLELISM).contains(&self.parallelism)
        {
            return Err(Error::Validation(format!(
                "argon2id cost out of range: memory {} KiB ({memory_floor} to {MAX_MEMORY_KIB}), \
                 iterations {} (1 to {MAX_ITERATIONS}), parallelism {} (1 to {MAX_PARALLELISM})",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        Ok(())
    }
}

/// What the store keeps to derive the key again (nothing secret).
#[derive(Serialize, Deserialize)]
struct Params {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    /// Standard base64.
    salt: String,
}

/// A root key derived from a passphrase.
pub struct PassphraseProvider {
    passphrase: Zeroizing<Vec<u8>>,
    cost: Argon2Cost,
    lock_policy: LockPolicy,
}

impl PassphraseProvider {
    /// A provider for `passphrase` with the default cost for new keys.
    pub fn new(passphrase: Zeroizing<Vec<u8>>, lock_policy: LockPolicy) -> Result<Self> {
        Self::with_cost(passphrase, Argon2Cost::default(), lock_policy)
    }

    /// A provider for `passphrase` that makes new keys at `cost` (opening always uses the cost the
    /// store recorded).
    pub fn with_cost(
        passphrase: Zeroizing<Vec<u8>>,
        cost: Argon2Cost,
        lock_policy: LockPolicy,
    ) -> Result<Self> {
        if passphrase.is_empty() {
            return Err(Error::Validation("the passphrase is empty".into()));
        }
        cost.check()?;
        Ok(PassphraseProvider {
            passphrase,
            cost,
            lock_policy,
        })
    }

    fn derive(&self, cost: Argon2Cost, salt: &[u8]) -> Result<RootKey> {
        let params = argon2::Params::new(
            cost.memory_kib,
            cost.iterations,
            cost.parallelism,
            Some(RootKey::LEN),
        )
        .map_err(|e| Error::Validation(format!("argon2id parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = LockedBytes::zeroed(RootKey::LEN, self.lock_policy)?;
        argon
            .hash_password_into(
                &self.passphrase,
                salt,
                out.expose_mut(keyplane::SecretAccess::granted()),
            )
            .map_err(|e| Error::Internal(format!("argon2id failed: {e}")))?;
        RootKey::from_locked(out)
    }
}

impl std::fmt::Debug for PassphraseProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseProvider")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

fn bad_params(why: &str) -> Error {
    Error::Store(format!(
        "the store's passphrase parameters are damaged ({why}); restore the store from a backup"
    ))
}

impl RootKeyProvider for PassphraseProvider {
    fn kind(&self) -> &str {
        ARGON2ID_KIND
    }

    fn describe(&self) -> String {
        format!(
            "passphrase (argon2id, {} MiB, {} passes)",
            self.cost.memory_kib / 1024,
            self.cost.iterations
        )
    }

    fn create(&self) -> Result<NewRootKey> {
        let mut salt = [0u8; SALT_BYTES];
        keyplane::sealing::fill_random(&mut salt)?;
        let key = self.derive(self.cost, &salt)?;
        let params = Params {
            algorithm: ARGON2ID_KIND.into(),
            version: 0x13,
            memory_kib: self.cost.memory_kib,
            iterations: self.cost.iterations,
            parallelism: self.cost.parallelism,
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
        };
        let params = serde_json::to_string(&params)
            .map_err(|e| Error::Internal(format!("encoding argon2id parameters: {e}")))?;
        Ok(NewRootKey { key, params })
    }

    fn open(&self, params: &str, accept: &dyn Fn(&RootKey) -> bool) -> Result<RootKey> {
        let params: Params =
            serde_json::from_str(params).map_err(|e| bad_params(&e.to_string()))?;
        if params.algorithm != ARGON2ID_KIND || params.version != 0x13 {
            return Err(bad_params("not argon2id version 19"));
        }
        let cost = Argon2Cost {
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
        };
        cost.check().map_err(|e| bad_params(e.message()))?;
        let salt = base64::engine::general_purpose::STANDARD
            .decode(&params.salt)
            .map_err(|_| bad_params("salt is not base64"))?;
        if !(8..=64).contains(&salt.len()) {
            return Err(bad_params("salt length"));
        }
        let key = self.derive(cost, &salt)?;
        if accept(&key) {
            Ok(key)
        } else {
            Err(Error::AccessDenied(
                "wrong passphrase: the key it derives does not open this store".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap enough for an unoptimised test build.
    const TEST_COST: Argon2Cost = Argon2Cost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn provider(passphrase: &str) -> PassphraseProvider {
        PassphraseProvider::with_cost(
            Zeroizing::new(passphrase.as_bytes().to_vec()),
            TEST_COST,
            LockPolicy::Require,
        )
        .unwrap()
    }

    #[test]
    fn the_same_passphrase_and_parameters_derive_the_same_key_and_another_passphrase_does_not() {
        let made = provider("correct horse").create().unwrap();
        let again = provider("correct horse")
            .open(&made.params, &|k| {
                k.locked().expose(keyplane::SecretAccess::granted())
                    == made.key.locked().expose(keyplane::SecretAccess::granted())
            })
            .unwrap();
        assert_eq!(
            again.locked().expose(keyplane::SecretAccess::granted()),
            made.key.locked().expose(keyplane::SecretAccess::granted())
        );
        let err = provider("battery staple")
            .open(&made.params, &|k| {
                k.locked().expose(keyplane::SecretAccess::granted())
                    == made.key.locked().expose(keyplane::SecretAccess::granted())
            })
            .unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(err.message().contains("wrong passphrase"));
    }

    #[test]
    fn each_new_key_gets_its_own_salt() {
        let p = provider("x");
        let a = p.create().unwrap();
        let b = p.create().unwrap();
        assert_ne!(a.params, b.params);
        assert_ne!(
            a.key.locked().expose(keyplane::SecretAccess::granted()),
            b.key.locked().expose(keyplane::SecretAccess::granted())
        );
    }

    #[test]
    fn hostile_or_damaged_parameters_are_refused_before_deriving() {
        let p = provider("x");
        for params in [
            "",
            "{}",
            r#"{"algorithm":"argon2id","version":19,"memory_kib":4294967295,"iterations":3,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}"#,
            r#"{"algorithm":"scrypt","version":19,"memory_kib":64,"iterations":1,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}"#,
            r#"{"algorithm":"argon2id","version":19,"memory_kib":64,"iterations":1,"parallelism":1,"salt":"!"}"#,
        ] {
            let err = p.open(params, &|_| true).unwrap_err();
            assert_eq!(err.code(), "KMSInternalException", "{params}: {err}");
            assert!(err.message().contains("passphrase parameters"), "{err}");
        }
    }

    #[test]
    fn an_empty_passphrase_is_refused() {
        let err =
            PassphraseProvider::new(Zeroizing::new(Vec::new()), LockPolicy::Require).unwrap_err();
        assert_eq!(err.code(), "ValidationException");
    }
}
