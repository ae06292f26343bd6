//! A root key in an environment variable: standard base64 of 32 bytes (the key file's format, so
//! `KEYPLANE_ROOT_KEY=$(cat root.key)` moves a key file's key into the environment).

use std::os::unix::ffi::OsStringExt;

use keyplane::{Error, LockPolicy, Result};
use zeroize::Zeroizing;

use super::{NewRootKey, RootKey, RootKeyProvider, RAW_KIND};

/// The variable the command-line tool reads when no other root key source is given.
pub const DEFAULT_ROOT_KEY_VAR: &str = "KEYPLANE_ROOT_KEY";

/// A root key read from an environment variable each time it is needed.
#[derive(Debug)]
pub struct EnvVarProvider {
    var: String,
    lock_policy: LockPolicy,
}

impl EnvVarProvider {
    /// A provider reading variable `var`.
    pub fn new(var: impl Into<String>, lock_policy: LockPolicy) -> Self {
        EnvVarProvider {
            var: var.into(),
            lock_policy,
        }
    }

    fn read(&self) -> Result<RootKey> {
        let value = std::env::var_os(&self.var).ok_or_else(|| {
            Error::AccessDenied(format!(
                "environment variable {} is not set; it must hold the root key: 32 bytes in \
                 standard base64 (for a new one: `head -c 32 /dev/urandom | base64`)",
                self.var
            ))
        })?;
        let bytes = Zeroizing::new(value.into_vec());
        RootKey::from_base64(
            &bytes,
            &format!("environment variable {}", self.var),
            self.lock_policy,
        )
    }
}

impl RootKeyProvider for EnvVarProvider {
    fn kind(&self) -> &str {
        RAW_KIND
    }

    fn describe(&self) -> String {
        format!("environment variable {}", self.var)
    }

    fn create(&self) -> Result<NewRootKey> {
        Ok(NewRootKey {
            key: self.read()?,
            params: String::new(),
        })
    }

    fn open(&self, _params: &str, accept: &dyn Fn(&RootKey) -> bool) -> Result<RootKey> {
        let key = self.read()?;
        if accept(&key) {
            Ok(key)
        } else {
            Err(Error::AccessDenied(format!(
                "the root key in environment variable {} does not open this store",
                self.var
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_malformed_and_wrong_keys_are_access_errors_naming_the_variable() {
        let var = "KEYPLANE_TEST_ENV_PROVIDER_UNSET_7f3a";
        let provider = EnvVarProvider::new(var, LockPolicy::Require);
        let err = provider.create().unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(err.message().contains(var), "{err}");

        let var = "KEYPLANE_TEST_ENV_PROVIDER_SET_7f3a";
        std::env::set_var(var, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n");
        let provider = EnvVarProvider::new(var, LockPolicy::Require);
        assert!(provider.open("", &|_| true).is_ok());
        let err = provider.open("", &|_| false).unwrap_err();
        assert!(err.message().contains("does not open"), "{err}");
        std::env::set_var(var, "short");
        assert!(provider.create().unwrap_err().message().contains(var));
        std::env::remove_var(var);
    }
}
