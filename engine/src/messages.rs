//! The service's own error messages, word for word, each built from its values in one place.
//!
//! Code written against the service branches on these texts and people search for them, so they
//! are reproduced exactly (issue 17): capitalisation, quotes and the final full stop included.
//! Every error the engine raises for these situations is built here; the tests in
//! `engine/tests/service_behaviour.rs` assert each one.

use crate::access::Action;
use crate::error::Error;
use crate::key::{KeySpec, KeyState, KeyUsage};

/// Where the service's alias documentation lives, as its messages cite it.
const ALIAS_GUIDE: &str = "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html";

/// A KeyId that is not a well-formed key id, key ARN, alias name or alias ARN, or an alias where
/// the operation takes only a key id or key ARN.
pub fn invalid_key_id(identifier: &str) -> Error {
    Error::NotFound(format!("Invalid keyId '{identifier}'"))
}

/// A key ARN (or alias ARN) of another Region.
pub fn invalid_arn_region(region: &str) -> Error {
    Error::NotFound(format!("Invalid arn {region}"))
}

/// A key that does not exist (named by id or ARN; the message always shows the ARN).
pub fn key_does_not_exist(key_arn: &str) -> Error {
    Error::NotFound(format!("Key '{key_arn}' does not exist"))
}

/// An alias that does not exist.
pub fn alias_not_found(alias_arn: &str) -> Error {
    Error::NotFound(format!("Alias {alias_arn} is not found."))
}

/// An alias name that does not start with `alias/`.
pub fn alias_prefix_missing() -> Error {
    Error::Validation(format!(
        "Alias must start with the prefix \"alias/\". Please see {ALIAS_GUIDE}"
    ))
}

/// An alias name under `alias/aws/`, which only the service's managed keys may have.
pub fn alias_reserved(alias_name: &str) -> Error {
    Error::NotAuthorized(format!(
        "{alias_name}: aliases beginning with alias/aws/ are reserved for AWS managed keys"
    ))
}

/// An alias name that fails the model's constraints on AliasNameType (1-256 characters of
/// `^[a-zA-Z0-9:/_-]+$`), in the generated validation's format. The generated validation
/// (engine/src/validation/) reports it before the engine sees the request; this is the engine's
/// own guard behind it, with the same text.
pub fn alias_name_constraint(alias_name: &str) -> Error {
    let constraint = if alias_name.is_empty() {
        "Member must have length greater than or equal to 1"
    } else if alias_name.len() > 256 {
        "Member must have length less than or equal to 256"
    } else {
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    };
    Error::Validation(format!(
        "1 validation error detected: Value '{alias_name}' at 'aliasName' failed to satisfy \
         constraint: {constraint}"
    ))
}

/// CreateAlias or UpdateAlias with an alias as the target.
pub fn alias_target_is_alias() -> Error {
    Error::Validation("Aliases must refer to keys. Not aliases".into())
}

/// CreateAlias with a name that exists.
pub fn alias_exists(alias_arn: &str) -> Error {
    Error::AlreadyExists(format!("An alias with the name {alias_arn} already exists"))
}

/// CreateKey with a non-symmetric key spec and no key usage.
pub fn key_usage_required() -> Error {
    Error::Validation(
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
            .into(),
    )
}

/// CreateKey with a key usage the key spec does not allow.
pub fn usage_incompatible_with_spec(usage: KeyUsage, spec: KeySpec) -> Error {
    Error::Validation(format!(
        "KeyUsage {usage} is not compatible with KeySpec {spec}"
    ))
}

/// A signing or MAC algorithm that the key spec does not support.
pub fn algorithm_incompatible(algorithm: &str, spec: KeySpec) -> Error {
    Error::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {spec}."
    ))
}

/// A DIGEST message whose length is not the algorithm's hash length.
pub fn digest_length(algorithm: &str) -> Error {
    Error::Validation(format!(
        "Digest is invalid length for algorithm {algorithm}."
    ))
}

/// A key used for an operation its key usage does not allow: `<key ARN> key usage is
/// ENCRYPT_DECRYPT which is not valid for Sign.`
pub fn wrong_key_usage(key_arn: &str, usage: KeyUsage, operation: Action) -> Error {
    let operation = match operation {
        Action::ReEncryptFrom | Action::ReEncryptTo => "ReEncrypt",
        other => other.operation(),
    };
    Error::InvalidKeyUsage(format!(
        "{key_arn} key usage is {usage} which is not valid for {operation}."
    ))
}

/// Decrypt or ReEncrypt naming a key that is not the one that encrypted the ciphertext.
pub fn incorrect_key() -> Error {
    Error::IncorrectKey(
        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
    )
}

/// A symmetric ciphertext whose tag does not check out under the key and encryption context.
pub(crate) fn ciphertext_not_authenticated() -> Error {
    Error::InvalidCiphertext(
        "the ciphertext did not authenticate: it was altered, or the encryption context differs \
         from the one it was encrypted with"
            .into(),
    )
}

/// A signature that does not verify: the service's exception carries no message.
pub fn invalid_signature() -> Error {
    Error::InvalidSignature(String::new())
}

/// A key whose state does not allow the operation: `<key ARN> is disabled.`,
/// `<key ARN> is pending deletion.`, ...
pub fn key_state(key_arn: &str, state: KeyState) -> Error {
    let message = |what: &str| format!("{key_arn} is {what}.");
    match state {
        KeyState::Disabled => Error::Disabled(message("disabled")),
        KeyState::PendingDeletion => Error::InvalidState(message("pending deletion")),
        KeyState::PendingImport => Error::InvalidState(message("pending import")),
        KeyState::PendingReplicaDeletion => {
            Error::InvalidState(message("pending replica deletion"))
        }
        KeyState::Unavailable => Error::KeyUnavailable(message("unavailable")),
        KeyState::Creating => Error::InvalidState(message("being created")),
        KeyState::Updating => Error::InvalidState(message("being updated")),
        KeyState::Enabled => Error::InvalidState(message("enabled")),
    }
}

/// A ciphertext blob naming a key this engine does not hold.
pub const CIPHERTEXT_KEY_UNKNOWN: &str =
    "the ciphertext names a key that does not exist in this engine (deleted, or from another key \
     store)";

/// Decrypt (or ReEncrypt) of a blob whose key this engine does not hold.
pub fn ciphertext_key_unknown() -> Error {
    Error::InvalidCiphertext(CIPHERTEXT_KEY_UNKNOWN.into())
}

/// CancelKeyDeletion on a key that is not pending deletion.
pub fn not_pending_deletion(key_arn: &str) -> Error {
    Error::InvalidState(format!("{key_arn} is not pending deletion."))
}

/// A tag key with the reserved `aws:` prefix.
pub fn reserved_tag() -> Error {
    Error::Tag("Tags beginning with aws: are reserved".into())
}

/// A key policy that would lock its author out of PutKeyPolicy.
pub fn policy_lockout() -> Error {
    Error::MalformedPolicyDocument(
        "The new key policy will not allow you to update the key policy in the future.".into(),
    )
}

/// A dry run whose real call would have succeeded (DryRunOperationException).
pub fn dry_run_succeeded() -> Error {
    Error::DryRunOperation("The request would have succeeded, but the DryRun option is set.".into())
}

/// A compare-and-commit refused because the shared key store moved on from the generation the
/// engine's view reflects (the engine catches up and runs the change again).
pub fn store_conflict(expected: u64, current: u64) -> Error {
    Error::Conflict(format!(
        "the key store is at generation {current}, not {expected}: another node changed it"
    ))
}

/// A control-plane change that kept conflicting with changes made elsewhere after every retry.
pub fn store_kept_changing(tries: u32) -> Error {
    Error::Conflict(format!(
        "the key store kept changing while this change was being made ({tries} tries); \
         nothing was changed. Retry the request."
    ))
}

/// A control-plane call (or a follow of the store) in a copy of the process made by `fork`,
/// whose store `store` stays with process `pid`, which built the engine.
pub fn store_of_another_process(store: &str, pid: u32) -> Error {
    Error::Store(format!(
        "the key store {store} is process {pid}'s, which built this engine; this process is a \
         copy of it made by fork, which must not use that store's connections: start an engine \
         in this process for the control plane (this one's data plane still serves the keys it \
         holds)"
    ))
}

/// A control-plane call in a copy of the process made by `fork` while the control lock is held
/// by a thread of the parent, which the copy does not have (it held the lock at the fork).
pub fn control_lock_of_another_process(pid: u32) -> Error {
    Error::Internal(format!(
        "this engine's control plane was locked by a thread of process {pid}, which built the \
         engine, when this process was copied from it by fork, and no thread here will unlock \
         it: start an engine in this process for the control plane (this one's data plane \
         still serves the keys it holds)"
    ))
}

/// A data-plane call refused because this node could not confirm its view with the key store
/// for longer than its staleness bound (fail closed).
pub fn view_too_stale(key_arn: &str, age_ms: u64, bound_ms: u64) -> Error {
    Error::KeyUnavailable(format!(
        "{key_arn} is unavailable: this node has not reached its key store for {age_ms} ms, \
         longer than its staleness bound of {bound_ms} ms."
    ))
}
