//! The key state table: which operation each key state allows, in one place.
//!
//! Every control-plane and data-plane call asks [`check`] before it touches a key. The table
//! follows the service's "key states" reference: a disabled key refuses cryptographic operations
//! with `DisabledException`, a key pending deletion or import refuses them with
//! `KMSInvalidStateException`, an unavailable key with `KeyUnavailableException`.

use super::spec::KeyState;
use crate::error::{Error, Result};

/// The operations whose permission depends on the key state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOperation {
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, Sign, Verify, GenerateMac, VerifyMac,
    /// DeriveSharedSecret, GetPublicKey.
    Cryptographic,
    /// DescribeKey, ListResourceTags, GetKeyRotationStatus, ListKeyRotations, DeleteAlias,
    /// GetKeyPolicy, ListAliases.
    Read,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    /// UpdateKeyDescription, TagResource, UntagResource, PutKeyPolicy.
    UpdateMetadata,
    /// CreateAlias, UpdateAlias (as the target key).
    AliasTarget,
    /// EnableKeyRotation, DisableKeyRotation.
    ConfigureRotation,
    RotateKeyOnDemand,
}

/// Whether `op` is allowed on a key in `state`; the error says why not.
pub fn check(op: KeyOperation, state: KeyState, key_arn: &str) -> Result<()> {
    use KeyOperation as Op;
    use KeyState as S;
    let refused = |why: &str| -> Result<()> {
        let msg = format!("{key_arn} is {state}: {why}");
        Err(match state {
            S::Disabled => Error::Disabled(msg),
            S::Unavailable => Error::KeyUnavailable(msg),
            _ => Error::InvalidState(msg),
        })
    };
    match (op, state) {
        (Op::Read, _) => Ok(()),

        (Op::Cryptographic, S::Enabled) => Ok(()),
        (Op::Cryptographic, S::Disabled) => refused("enable it first (EnableKey)"),
        (Op::Cryptographic, S::PendingDeletion) => {
            refused("cancel its deletion (CancelKeyDeletion) and enable it to use it")
        }
        (Op::Cryptographic, S::PendingImport) => refused("it has no key material yet"),
        (Op::Cryptographic, S::Unavailable) => {
            refused("its key material cannot be read from the key store")
        }
        (Op::Cryptographic, _) => refused("it cannot be used in this state"),

        (Op::EnableKey | Op::DisableKey, S::Enabled | S::Disabled) => Ok(()),
        (Op::EnableKey | Op::DisableKey, _) => {
            refused("only an Enabled or Disabled key can be enabled or disabled")
        }

        (Op::ScheduleKeyDeletion, S::Enabled | S::Disabled | S::PendingImport | S::Unavailable) => {
            Ok(())
        }
        (Op::ScheduleKeyDeletion, S::PendingDeletion) => {
            refused("its deletion is already scheduled")
        }
        (Op::ScheduleKeyDeletion, _) => {
            refused("it cannot be scheduled for deletion in this state")
        }

        (Op::CancelKeyDeletion, S::PendingDeletion) => Ok(()),
        (Op::CancelKeyDeletion, _) => Err(Error::InvalidState(format!(
            "{key_arn} is {state}, not PendingDeletion: there is no deletion to cancel"
        ))),

        (
            Op::UpdateMetadata | Op::AliasTarget,
            S::Enabled | S::Disabled | S::PendingImport | S::Unavailable,
        ) => Ok(()),
        (Op::UpdateMetadata | Op::AliasTarget, _) => Err(Error::InvalidState(format!(
            "{key_arn} is {state}: it cannot be changed in this state"
        ))),

        (Op::ConfigureRotation | Op::RotateKeyOnDemand, S::Enabled) => Ok(()),
        (Op::ConfigureRotation | Op::RotateKeyOnDemand, _) => {
            refused("rotation can be configured or started only on an Enabled key")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cryptographic_operations_follow_the_service_table() {
        let code = |s| check(KeyOperation::Cryptographic, s, "k").map_err(|e| e.code());
        assert_eq!(code(KeyState::Enabled), Ok(()));
        assert_eq!(code(KeyState::Disabled), Err("DisabledException"));
        assert_eq!(
            code(KeyState::PendingDeletion),
            Err("KMSInvalidStateException")
        );
        assert_eq!(
            code(KeyState::PendingImport),
            Err("KMSInvalidStateException")
        );
        assert_eq!(code(KeyState::Unavailable), Err("KeyUnavailableException"));
    }

    #[test]
    fn read_is_allowed_in_every_state() {
        for state in KeyState::ALL {
            assert!(check(KeyOperation::Read, *state, "k").is_ok());
        }
    }

    #[test]
    fn cancel_deletion_needs_pending_deletion() {
        for state in KeyState::ALL {
            let r = check(KeyOperation::CancelKeyDeletion, *state, "k");
            assert_eq!(r.is_ok(), *state == KeyState::PendingDeletion, "{state}");
        }
    }
}
