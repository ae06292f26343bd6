//! Root keys (the service's "domain key"): the 256-bit key every stored key version is wrapped
//! under, and the providers that produce it.
//!
//! A store never keeps its root key. It keeps, in clear, only what a provider needs to produce it
//! again (its *kind* and *parameters*: nothing for a raw key, the salt and cost for a passphrase)
//! and a check value that tells whether a candidate is the right key before anything is written.
//!
//! Providers: [`KeyFileProvider`] (a file, created on first use with mode 0600 and refused when
//! group or others may read it), [`EnvVarProvider`] (an environment variable), [`PassphraseProvider`]
//! (argon2id over a passphrase) and [`CallbackProvider`] (any function: an HSM over PKCS#11, an
//! external key manager, a callback from C). Anything else implements [`RootKeyProvider`].

mod callback;
mod env_var;
mod key_file;
mod passphrase;

use base64::Engine as _;
use keyplane::LockedBytes;
use keyplane::{Error, LockPolicy, Result};
use zeroize::Zeroizing;

pub use callback::CallbackProvider;
pub use env_var::{EnvVarProvider, DEFAULT_ROOT_KEY_VAR};
pub use key_file::KeyFileProvider;
pub use passphrase::{Argon2Cost, PassphraseProvider, ARGON2ID_KIND};

/// The provider kind of a raw 256-bit key, whatever holds it (a key file, an environment variable,
/// a callback): such providers are interchangeable for one store.
pub const RAW_KIND: &str = "raw-256";

/// A 256-bit root key in locked memory. No `Clone`; `Debug` shows nothing of it.
pub struct RootKey(LockedBytes);

impl RootKey {
    /// Bytes in a root key.
    pub const LEN: usize = 32;

    /// A new random root key.
    pub fn generate(policy: LockPolicy) -> Result<Self> {
        Ok(RootKey(LockedBytes::random(Self::LEN, policy)?))
    }

    /// Takes 32 bytes of locked memory as a root key.
    pub fn from_locked(bytes: LockedBytes) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::Validation(format!(
                "a root key is {} bytes, not {}",
                Self::LEN,
                bytes.len()
            )));
        }
        Ok(RootKey(bytes))
    }

    /// Decodes a root key written as standard base64 of 32 bytes (surrounding whitespace allowed),
    /// the format of key files and of the environment variable. `source` names where the text came
    /// from, for the error.
    pub fn from_base64(text: &[u8], source: &str, policy: LockPolicy) -> Result<Self> {
        let trimmed = trim_ascii(text);
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .map_err(|_| malformed(source))?,
        );
        if decoded.len() != Self::LEN {
            return Err(malformed(source));
        }
        Ok(RootKey(LockedBytes::copy_from(&decoded, policy)?))
    }

    /// The key as standard base64 (the key-file format), in a buffer zeroed on drop.
    pub(crate) fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .encode(self.0.expose(keyplane::SecretAccess::granted())),
        )
    }

    /// The key bytes, in locked memory.
    pub(crate) fn locked(&self) -> &LockedBytes {
        &self.0
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(redacted)")
    }
}

fn malformed(source: &str) -> Error {
    Error::AccessDenied(format!(
        "{source} does not hold a root key: expected 32 bytes in standard base64 (44 characters), \
         as `head -c 32 /dev/urandom | base64` prints"
    ))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// A new root key and the public parameters that produce it again.
#[derive(Debug)]
pub struct NewRootKey {
    pub key: RootKey,
    /// Non-secret parameters the store keeps beside the key's check value and hands back to
    /// [`RootKeyProvider::open`] (a passphrase's salt and cost; empty for raw keys).
    pub params: String,
}

/// Produces a store's root key. Implementations must never log or print the key.
pub trait RootKeyProvider: Send + Sync {
    /// What kind of key this provider yields; the store records it and refuses to open with a
    /// provider of another kind. Raw 256-bit keys are [`RAW_KIND`]; a passphrase is `argon2id`.
    fn kind(&self) -> &str;

    /// Where the key comes from, for messages ("key file /path", "environment variable X").
    fn describe(&self) -> String;

    /// The root key of a new store: made now, or read if the provider already holds one (a key
    /// file that exists).
    fn create(&self) -> Result<NewRootKey>;

    /// The root key that `params` (as `create` returned them) describe. `accept` tells whether a
    /// candidate opens the store; a provider may try more than one candidate (a key file left by
    /// an interrupted rotation) and must return an error naming its source when none is accepted.
    fn open(&self, params: &str, accept: &dyn Fn(&RootKey) -> bool) -> Result<RootKey>;

    /// A new root key to rotate to (by default, [`RootKeyProvider::create`]). A provider that
    /// replaces its key in place keeps the new one aside until [`RootKeyProvider::commit_next`].
    fn create_next(&self) -> Result<NewRootKey> {
        self.create()
    }

    /// The store has committed a rotation to the key `create_next` returned: from now on `open`
    /// must find that key (the old one is retired).
    fn commit_next(&self) -> Result<()> {
        Ok(())
    }

    /// The rotation did not commit: forget the key `create_next` returned.
    fn abandon_next(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_malformed_input_is_an_access_error() {
        let key = RootKey::generate(LockPolicy::Require).unwrap();
        let text = key.to_base64();
        let back =
            RootKey::from_base64(format!(" {}\n", *text).as_bytes(), "x", LockPolicy::Require)
                .unwrap();
        assert_eq!(
            back.locked().expose(keyplane::SecretAccess::granted()),
            key.locked().expose(keyplane::SecretAccess::granted())
        );
        for bad in [&b""[..], b"not base64!", b"AAAA", &[b'A'; 60][..]] {
            let err = RootKey::from_base64(bad, "the test input", LockPolicy::Require).unwrap_err();
            assert_eq!(err.code(), "AccessDeniedException");
            assert!(err.message().contains("the test input"), "{err}");
        }
    }

    #[test]
    fn debug_shows_nothing_of_the_key() {
        let key = RootKey::from_base64(
            b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
            "x",
            LockPolicy::Require,
        )
        .unwrap();
        assert_eq!(format!("{key:?}"), "RootKey(redacted)");
    }
}
