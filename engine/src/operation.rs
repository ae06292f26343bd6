//! The operations the engine records, one table: each one's name (as audit records and the
//! service spell it) and its properties — read-only (the record's `readOnly`), cryptographic
//! (GetKeyLastUsage reports its successes), and whether naming an integrated service's
//! `alias/aws/<service>` creates that service's managed key (see `control/managed.rs`).
//!
//! Policy actions are [`crate::access::Action`]: nearly one per operation, but ReEncrypt is
//! authorised as two actions (`kms:ReEncryptFrom`, `kms:ReEncryptTo`), and the engine's own
//! events (DeleteExpiredKeyMaterial) are no one's action.

macro_rules! operations {
    ($($variant:ident { read_only: $ro:literal, cryptographic: $crypto:literal, managed: $managed:literal }),+ $(,)?) => {
        /// An operation the engine runs and records.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation { $($variant),+ }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),+];

            /// The name audit records and the service use.
            pub const fn name(self) -> &'static str {
                match self { $(Operation::$variant => stringify!($variant)),+ }
            }

            /// Whether it only reads (an audit record's `readOnly`).
            pub const fn is_read_only(self) -> bool {
                match self { $(Operation::$variant => $ro),+ }
            }

            /// Whether its successes are uses of a key that GetKeyLastUsage reports.
            pub const fn is_cryptographic(self) -> bool {
                match self { $(Operation::$variant => $crypto),+ }
            }

            /// Whether naming `alias/aws/<service>` creates that service's managed key.
            pub const fn creates_managed_keys(self) -> bool {
                match self { $(Operation::$variant => $managed),+ }
            }
        }
    };
}

operations! {
    CancelKeyDeletion { read_only: false, cryptographic: false, managed: false },
    ConnectCustomKeyStore { read_only: false, cryptographic: false, managed: false },
    CreateAlias { read_only: false, cryptographic: false, managed: false },
    CreateCustomKeyStore { read_only: false, cryptographic: false, managed: false },
    CreateGrant { read_only: false, cryptographic: false, managed: false },
    CreateKey { read_only: false, cryptographic: false, managed: false },
    Decrypt { read_only: false, cryptographic: true, managed: false },
    DeleteAlias { read_only: false, cryptographic: false, managed: false },
    DeleteCustomKeyStore { read_only: false, cryptographic: false, managed: false },
    DeleteExpiredKeyMaterial { read_only: false, cryptographic: false, managed: false },
    DeleteImportedKeyMaterial { read_only: false, cryptographic: false, managed: false },
    DeriveSharedSecret { read_only: false, cryptographic: true, managed: false },
    DescribeCustomKeyStores { read_only: true, cryptographic: false, managed: false },
    DescribeKey { read_only: true, cryptographic: false, managed: false },
    DisableKey { read_only: false, cryptographic: false, managed: false },
    DisableKeyRotation { read_only: false, cryptographic: false, managed: false },
    DisconnectCustomKeyStore { read_only: false, cryptographic: false, managed: false },
    EnableKey { read_only: false, cryptographic: false, managed: false },
    EnableKeyRotation { read_only: false, cryptographic: false, managed: false },
    Encrypt { read_only: false, cryptographic: true, managed: true },
    GenerateDataKey { read_only: false, cryptographic: true, managed: true },
    GenerateDataKeyPair { read_only: false, cryptographic: true, managed: false },
    GenerateDataKeyPairWithoutPlaintext { read_only: false, cryptographic: true, managed: false },
    GenerateDataKeyWithoutPlaintext { read_only: false, cryptographic: true, managed: true },
    GenerateMac { read_only: false, cryptographic: true, managed: false },
    GenerateRandom { read_only: false, cryptographic: false, managed: false },
    GetKeyLastUsage { read_only: true, cryptographic: false, managed: false },
    GetKeyPolicy { read_only: true, cryptographic: false, managed: false },
    GetKeyRotationStatus { read_only: true, cryptographic: false, managed: false },
    GetParametersForImport { read_only: true, cryptographic: false, managed: false },
    GetPublicKey { read_only: true, cryptographic: false, managed: false },
    ImportKeyMaterial { read_only: false, cryptographic: false, managed: false },
    ListAliases { read_only: true, cryptographic: false, managed: false },
    ListGrants { read_only: true, cryptographic: false, managed: false },
    ListKeyPolicies { read_only: true, cryptographic: false, managed: false },
    ListKeyRotations { read_only: true, cryptographic: false, managed: false },
    ListKeys { read_only: true, cryptographic: false, managed: false },
    ListResourceTags { read_only: true, cryptographic: false, managed: false },
    ListRetirableGrants { read_only: true, cryptographic: false, managed: false },
    PutKeyPolicy { read_only: false, cryptographic: false, managed: false },
    ReEncrypt { read_only: false, cryptographic: true, managed: true },
    ReplicateKey { read_only: false, cryptographic: false, managed: false },
    RetireGrant { read_only: false, cryptographic: false, managed: false },
    RevokeGrant { read_only: false, cryptographic: false, managed: false },
    RotateKeyOnDemand { read_only: false, cryptographic: false, managed: false },
    ScheduleKeyDeletion { read_only: false, cryptographic: false, managed: false },
    Sign { read_only: false, cryptographic: true, managed: false },
    TagResource { read_only: false, cryptographic: false, managed: false },
    UntagResource { read_only: false, cryptographic: false, managed: false },
    UpdateAlias { read_only: false, cryptographic: false, managed: false },
    UpdateCustomKeyStore { read_only: false, cryptographic: false, managed: false },
    UpdateKeyDescription { read_only: false, cryptographic: false, managed: false },
    UpdatePrimaryRegion { read_only: false, cryptographic: false, managed: false },
    Verify { read_only: true, cryptographic: true, managed: false },
    VerifyMac { read_only: true, cryptographic: true, managed: false },
}

impl Operation {
    /// The operation named `name`.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| o.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Action;

    /// Every policy action is an operation's, by name (ReEncryptFrom/To are ReEncrypt's), and
    /// every operation but the engine's own events is some action's.
    #[test]
    fn operations_and_actions_name_the_same_service() {
        for action in Action::ALL {
            let name = match action {
                Action::ReEncryptFrom | Action::ReEncryptTo => "ReEncrypt",
                other => other.operation(),
            };
            assert!(Operation::from_name(name).is_some(), "{action:?}");
        }
        for op in Operation::ALL {
            let named = Action::ALL.iter().any(|a| a.operation() == op.name())
                || *op == Operation::ReEncrypt;
            assert_eq!(named, *op != Operation::DeleteExpiredKeyMaterial, "{op:?}");
        }
    }

    /// The properties the table states agree with the service's naming where it tells: reads
    /// are Describe*, Get*, List* and the two verifications; every cryptographic operation is
    /// one a grant can allow (GrantOperation), except ReEncrypt (allowed as its two halves).
    #[test]
    fn properties_agree_with_the_service() {
        for op in Operation::ALL {
            let n = op.name();
            let reads = n.starts_with("Describe")
                || n.starts_with("Get")
                || n.starts_with("List")
                || n.starts_with("Verify");
            assert_eq!(op.is_read_only(), reads, "{n}");
            if op.is_cryptographic() && *op != Operation::ReEncrypt {
                let action = Action::ALL.iter().find(|a| a.operation() == n).unwrap();
                assert!(action.grant_operation().is_some(), "{n}");
            }
            assert!(!op.creates_managed_keys() || op.is_cryptographic(), "{n}");
        }
        assert_eq!(Operation::from_name("Encrypt"), Some(Operation::Encrypt));
        assert_eq!(Operation::from_name("encrypt"), None);
    }
}
