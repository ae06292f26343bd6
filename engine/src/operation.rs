//! The operations the engine records, one table: each one's name (as audit records and the
//! service spell it) and its properties — read-only (the record's `readOnly`), cryptographic
//! (GetKeyLastUsage reports its successes), and whether naming an integrated service's
//! `alias/aws/<service>` creates that service's managed key (see `control/managed.rs`), and the
//! request-rate quota it is charged to.
//!
//! Policy actions are [`crate::access::Action`]: nearly one per operation, but ReEncrypt is
//! authorised as two actions (`kms:ReEncryptFrom`, `kms:ReEncryptTo`), and the engine's own
//! events (DeleteExpiredKeyMaterial) are no one's action.

use crate::access::QuotaFamily;

macro_rules! operations {
    ($($variant:ident { read_only: $ro:literal, cryptographic: $crypto:literal, managed: $managed:literal, quota: $quota:ident }),+ $(,)?) => {
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

            /// The request-rate quota a request of it is charged to.
            pub const fn quota_family(self) -> QuotaFamily {
                match self { $(Operation::$variant => QuotaFamily::$quota),+ }
            }
        }
    };
}

operations! {
    CancelKeyDeletion { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    ConnectCustomKeyStore { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    CreateAlias { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    CreateCustomKeyStore { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    CreateGrant { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    CreateKey { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    Decrypt { read_only: false, cryptographic: true, managed: false , quota: SymmetricCrypto },
    DeleteAlias { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DeleteCustomKeyStore { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DeleteExpiredKeyMaterial { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DeleteImportedKeyMaterial { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DeriveSharedSecret { read_only: false, cryptographic: true, managed: false , quota: AsymmetricCrypto },
    DescribeCustomKeyStores { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    DescribeKey { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    DisableKey { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DisableKeyRotation { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    DisconnectCustomKeyStore { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    EnableKey { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    EnableKeyRotation { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    Encrypt { read_only: false, cryptographic: true, managed: true , quota: SymmetricCrypto },
    GenerateDataKey { read_only: false, cryptographic: true, managed: true , quota: SymmetricCrypto },
    GenerateDataKeyPair { read_only: false, cryptographic: true, managed: false , quota: DataKeyPair },
    GenerateDataKeyPairWithoutPlaintext { read_only: false, cryptographic: true, managed: false , quota: DataKeyPair },
    GenerateDataKeyWithoutPlaintext { read_only: false, cryptographic: true, managed: true , quota: SymmetricCrypto },
    GenerateMac { read_only: false, cryptographic: true, managed: false , quota: SymmetricCrypto },
    GenerateRandom { read_only: false, cryptographic: false, managed: false , quota: SymmetricCrypto },
    GetKeyLastUsage { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    GetKeyPolicy { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    GetKeyRotationStatus { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    GetParametersForImport { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    GetPublicKey { read_only: true, cryptographic: false, managed: false , quota: AsymmetricCrypto },
    ImportKeyMaterial { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    ListAliases { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListGrants { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListKeyPolicies { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListKeyRotations { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListKeys { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListResourceTags { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    ListRetirableGrants { read_only: true, cryptographic: false, managed: false , quota: ControlPlane },
    PutKeyPolicy { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    ReEncrypt { read_only: false, cryptographic: true, managed: true , quota: SymmetricCrypto },
    ReplicateKey { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    RetireGrant { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    RevokeGrant { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    RotateKeyOnDemand { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    ScheduleKeyDeletion { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    Sign { read_only: false, cryptographic: true, managed: false , quota: AsymmetricCrypto },
    TagResource { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    UntagResource { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    UpdateAlias { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    UpdateCustomKeyStore { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    UpdateKeyDescription { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    UpdatePrimaryRegion { read_only: false, cryptographic: false, managed: false , quota: ControlPlane },
    Verify { read_only: true, cryptographic: true, managed: false , quota: AsymmetricCrypto },
    VerifyMac { read_only: true, cryptographic: true, managed: false , quota: SymmetricCrypto },
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

    /// The service splits its request quotas into cryptographic families and the control
    /// plane: every key use is charged to a cryptographic family, and so are GenerateRandom and
    /// GetPublicKey; data key pairs have their own; nothing else is.
    #[test]
    fn quota_families_follow_the_service() {
        for op in Operation::ALL {
            let n = op.name();
            let family = match n {
                "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
                    QuotaFamily::DataKeyPair
                }
                "Sign" | "Verify" | "DeriveSharedSecret" | "GetPublicKey" => {
                    QuotaFamily::AsymmetricCrypto
                }
                _ if op.is_cryptographic() || n == "GenerateRandom" => QuotaFamily::SymmetricCrypto,
                _ => QuotaFamily::ControlPlane,
            };
            assert_eq!(op.quota_family(), family, "{n}");
        }
    }
}
