//! The actions key policies name (`kms:Encrypt`, ...), one per operation.

use crate::key::GrantOperation;

macro_rules! actions {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// An operation as key policies name it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),+ }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The policy action name, `kms:<Operation>`.
            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => concat!("kms:", $name)),+ }
            }

            /// The operation name, as audit records spell it.
            pub fn operation(self) -> &'static str {
                match self { $(Action::$variant => $name),+ }
            }
        }
    };
}

actions! {
    CancelKeyDeletion = "CancelKeyDeletion",
    ConnectCustomKeyStore = "ConnectCustomKeyStore",
    CreateAlias = "CreateAlias",
    CreateCustomKeyStore = "CreateCustomKeyStore",
    CreateGrant = "CreateGrant",
    CreateKey = "CreateKey",
    Decrypt = "Decrypt",
    DeleteAlias = "DeleteAlias",
    DeleteCustomKeyStore = "DeleteCustomKeyStore",
    DeleteImportedKeyMaterial = "DeleteImportedKeyMaterial",
    DeriveSharedSecret = "DeriveSharedSecret",
    DescribeCustomKeyStores = "DescribeCustomKeyStores",
    DescribeKey = "DescribeKey",
    DisableKey = "DisableKey",
    DisableKeyRotation = "DisableKeyRotation",
    DisconnectCustomKeyStore = "DisconnectCustomKeyStore",
    EnableKey = "EnableKey",
    EnableKeyRotation = "EnableKeyRotation",
    Encrypt = "Encrypt",
    GenerateDataKey = "GenerateDataKey",
    GenerateDataKeyPair = "GenerateDataKeyPair",
    GenerateDataKeyPairWithoutPlaintext = "GenerateDataKeyPairWithoutPlaintext",
    GenerateDataKeyWithoutPlaintext = "GenerateDataKeyWithoutPlaintext",
    GenerateMac = "GenerateMac",
    GenerateRandom = "GenerateRandom",
    GetKeyLastUsage = "GetKeyLastUsage",
    GetKeyPolicy = "GetKeyPolicy",
    GetKeyRotationStatus = "GetKeyRotationStatus",
    GetParametersForImport = "GetParametersForImport",
    GetPublicKey = "GetPublicKey",
    ImportKeyMaterial = "ImportKeyMaterial",
    ListAliases = "ListAliases",
    ListGrants = "ListGrants",
    ListKeyPolicies = "ListKeyPolicies",
    ListKeyRotations = "ListKeyRotations",
    ListKeys = "ListKeys",
    ListResourceTags = "ListResourceTags",
    ListRetirableGrants = "ListRetirableGrants",
    PutKeyPolicy = "PutKeyPolicy",
    ReEncryptFrom = "ReEncryptFrom",
    ReEncryptTo = "ReEncryptTo",
    ReplicateKey = "ReplicateKey",
    RetireGrant = "RetireGrant",
    RevokeGrant = "RevokeGrant",
    RotateKeyOnDemand = "RotateKeyOnDemand",
    ScheduleKeyDeletion = "ScheduleKeyDeletion",
    Sign = "Sign",
    TagResource = "TagResource",
    UntagResource = "UntagResource",
    UpdateAlias = "UpdateAlias",
    UpdateCustomKeyStore = "UpdateCustomKeyStore",
    UpdateKeyDescription = "UpdateKeyDescription",
    UpdatePrimaryRegion = "UpdatePrimaryRegion",
    Verify = "Verify",
    VerifyMac = "VerifyMac",
}

impl Action {
    /// The operation this action authorises; ReEncryptFrom and ReEncryptTo are ReEncrypt's.
    pub fn as_operation(self) -> crate::operation::Operation {
        use crate::operation::Operation;
        match self {
            Action::ReEncryptFrom | Action::ReEncryptTo => Operation::ReEncrypt,
            other => Operation::from_name(other.operation())
                .expect("every action names an operation (operation.rs's test)"),
        }
    }

    /// Position in [`Action::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The grant operation that permits this action, if grants can.
    pub fn grant_operation(self) -> Option<GrantOperation> {
        use GrantOperation as G;
        Some(match self {
            Action::Decrypt => G::Decrypt,
            Action::Encrypt => G::Encrypt,
            Action::GenerateDataKey => G::GenerateDataKey,
            Action::GenerateDataKeyWithoutPlaintext => G::GenerateDataKeyWithoutPlaintext,
            Action::ReEncryptFrom => G::ReEncryptFrom,
            Action::ReEncryptTo => G::ReEncryptTo,
            Action::Sign => G::Sign,
            Action::Verify => G::Verify,
            Action::GetPublicKey => G::GetPublicKey,
            Action::CreateGrant => G::CreateGrant,
            Action::RetireGrant => G::RetireGrant,
            Action::DescribeKey => G::DescribeKey,
            Action::GenerateDataKeyPair => G::GenerateDataKeyPair,
            Action::GenerateDataKeyPairWithoutPlaintext => G::GenerateDataKeyPairWithoutPlaintext,
            Action::GenerateMac => G::GenerateMac,
            Action::VerifyMac => G::VerifyMac,
            Action::DeriveSharedSecret => G::DeriveSharedSecret,
            _ => return None,
        })
    }
}
