//! The key state table: which operation each key state allows, in one place.
//!
//! Every control-plane and data-plane call asks [`check`] before it touches a key. The table
//! follows the service's "key states" reference: a disabled key refuses cryptographic operations
//! with `DisabledException`, a key pending deletion or import refuses them with
//! `KMSInvalidStateException`, an unavailable key with `KeyUnavailableException`.

use super::spec::KeyState;
use crate::error::{Error, Result};
use crate::messages;

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
    /// GetParametersForImport, ImportKeyMaterial.
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    /// ReplicateKey (on the primary key).
    ReplicateKey,
    /// UpdatePrimaryRegion (on the primary key and on the replica that becomes primary).
    UpdatePrimaryRegion,
}

/// Whether `op` is allowed on a key in `state`; the error is the service's
/// ([`crate::messages::key_state`]): `<key ARN> is disabled.`, `<key ARN> is pending deletion.`,
/// and for CancelKeyDeletion `<key ARN> is not pending deletion.`
pub fn check(op: KeyOperation, state: KeyState, key_arn: &str) -> Result<()> {
    use KeyOperation as Op;
    use KeyState as S;
    let refused = || -> Result<()> { Err(messages::key_state(key_arn, state)) };
    match (op, state) {
        (Op::Read, _) => Ok(()),

        (Op::Cryptographic, S::Enabled) => Ok(()),
        (Op::Cryptographic, _) => refused(),

        (Op::EnableKey | Op::DisableKey, S::Enabled | S::Disabled) => Ok(()),
        (Op::EnableKey | Op::DisableKey, _) => refused(),

        (Op::ScheduleKeyDeletion, S::Enabled | S::Disabled | S::PendingImport | S::Unavailable) => {
            Ok(())
        }
        (Op::ScheduleKeyDeletion, _) => refused(),

        // A primary key waiting for its replicas' deletion can be cancelled too.
        (Op::CancelKeyDeletion, S::PendingDeletion | S::PendingReplicaDeletion) => Ok(()),
        (Op::CancelKeyDeletion, _) => Err(messages::not_pending_deletion(key_arn)),

        (
            Op::UpdateMetadata | Op::AliasTarget,
            S::Enabled | S::Disabled | S::PendingImport | S::Unavailable,
        ) => Ok(()),
        // Metadata of a key in any other state cannot change; the error is always
        // KMSInvalidStateException, whatever the state.
        (Op::UpdateMetadata | Op::AliasTarget, _) => Err(Error::InvalidState(
            messages::key_state(key_arn, state).message().to_owned(),
        )),

        (Op::ImportKeyMaterial, S::Enabled | S::Disabled | S::PendingImport) => Ok(()),
        (Op::ImportKeyMaterial, _) => refused(),

        (
            Op::DeleteImportedKeyMaterial,
            S::Enabled | S::Disabled | S::PendingImport | S::PendingDeletion,
        ) => Ok(()),
        (Op::DeleteImportedKeyMaterial, _) => refused(),

        // The service's key state table: a key being created or updated, pending deletion or
        // unavailable cannot be replicated or become (or stop being) the primary key.
        (
            Op::ReplicateKey | Op::UpdatePrimaryRegion,
            S::Enabled | S::Disabled | S::PendingImport,
        ) => Ok(()),
        (Op::ReplicateKey | Op::UpdatePrimaryRegion, _) => refused(),

        (Op::ConfigureRotation | Op::RotateKeyOnDemand, S::Enabled) => Ok(()),
        (Op::ConfigureRotation | Op::RotateKeyOnDemand, _) => refused(),
    }
}

/// As [`check`], naming the key only when `op` is refused: a call that passes (nearly every one)
/// does not format its key's ARN for a message nobody reads.
pub(crate) fn check_naming(
    op: KeyOperation,
    state: KeyState,
    key_arn: impl FnOnce() -> String,
) -> Result<()> {
    match check(op, state, "") {
        Ok(()) => Ok(()),
        Err(_) => check(op, state, &key_arn()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation; the match below stops compiling when one is added and not listed.
    const EVERY_OPERATION: [KeyOperation; 14] = {
        use KeyOperation as Op;
        [
            Op::Cryptographic,
            Op::Read,
            Op::EnableKey,
            Op::DisableKey,
            Op::ScheduleKeyDeletion,
            Op::CancelKeyDeletion,
            Op::UpdateMetadata,
            Op::AliasTarget,
            Op::ConfigureRotation,
            Op::RotateKeyOnDemand,
            Op::ImportKeyMaterial,
            Op::DeleteImportedKeyMaterial,
            Op::ReplicateKey,
            Op::UpdatePrimaryRegion,
        ]
    };

    #[test]
    fn every_operation_is_listed() {
        use KeyOperation as Op;
        for op in EVERY_OPERATION {
            match op {
                Op::Cryptographic
                | Op::Read
                | Op::EnableKey
                | Op::DisableKey
                | Op::ScheduleKeyDeletion
                | Op::CancelKeyDeletion
                | Op::UpdateMetadata
                | Op::AliasTarget
                | Op::ConfigureRotation
                | Op::RotateKeyOnDemand
                | Op::ImportKeyMaterial
                | Op::DeleteImportedKeyMaterial
                | Op::ReplicateKey
                | Op::UpdatePrimaryRegion => {}
            }
        }
        let distinct: std::collections::HashSet<String> =
            EVERY_OPERATION.iter().map(|op| format!("{op:?}")).collect();
        assert_eq!(distinct.len(), EVERY_OPERATION.len());
    }

    #[test]
    fn check_naming_answers_as_check_and_names_the_key_only_when_refused() {
        for op in EVERY_OPERATION {
            for state in KeyState::ALL {
                let named = std::cell::Cell::new(false);
                let lazily = check_naming(op, *state, || {
                    named.set(true);
                    "arn:k".to_owned()
                });
                let eagerly = check(op, *state, "arn:k");
                assert_eq!(
                    lazily
                        .as_ref()
                        .map_err(|e| (e.code(), e.message().to_owned())),
                    eagerly
                        .as_ref()
                        .map_err(|e| (e.code(), e.message().to_owned())),
                    "{op:?} in {state}"
                );
                assert_eq!(named.get(), eagerly.is_err(), "{op:?} in {state}");
            }
        }
    }

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
            let pending = matches!(
                state,
                KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
            );
            assert_eq!(r.is_ok(), pending, "{state}");
        }
    }
}
