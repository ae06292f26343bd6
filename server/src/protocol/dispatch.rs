//! The dispatch table: every operation the endpoint serves, by the model's name, with its
//! handler; and the model's operations it does not serve, with why. Tests check the table
//! against the engine's actions and the vendored service model.

use keyplane::Engine;

use super::json::{Input, Out};
use super::reply::Fault;
use super::{
    aliases, asymmetric, custom_key_stores, dataplane, grants, import, keys, mac, policies,
    rotation, tags,
};

/// A handler: one request's members in, the response's members out. Runs on a blocking thread,
/// or on the async worker when [`Operation::runs_inline`].
pub type Handler = fn(&Engine, &Input) -> Result<Out, Fault>;

/// One served operation.
#[derive(Debug)]
pub struct Operation {
    /// The model's name (`X-Amz-Target: TrentService.<name>`).
    pub name: &'static str,
    pub handler: Handler,
}

macro_rules! table {
    ($($name:literal => $handler:path),+ $(,)?) => {
        /// Every served operation.
        pub static OPERATIONS: &[Operation] = &[
            $(Operation { name: $name, handler: $handler }),+
        ];
    };
}

table! {
    "CancelKeyDeletion" => keys::cancel_key_deletion,
    "ConnectCustomKeyStore" => custom_key_stores::connect_custom_key_store,
    "CreateCustomKeyStore" => custom_key_stores::create_custom_key_store,
    "DeleteCustomKeyStore" => custom_key_stores::delete_custom_key_store,
    "DescribeCustomKeyStores" => custom_key_stores::describe_custom_key_stores,
    "DisconnectCustomKeyStore" => custom_key_stores::disconnect_custom_key_store,
    "UpdateCustomKeyStore" => custom_key_stores::update_custom_key_store,
    "CreateAlias" => aliases::create_alias,
    "CreateGrant" => grants::create_grant,
    "CreateKey" => keys::create_key,
    "Decrypt" => dataplane::decrypt,
    "DeleteAlias" => aliases::delete_alias,
    "DeleteImportedKeyMaterial" => import::delete_imported_key_material,
    "DeriveSharedSecret" => asymmetric::derive_shared_secret,
    "DescribeKey" => keys::describe_key,
    "DisableKey" => keys::disable_key,
    "DisableKeyRotation" => rotation::disable_key_rotation,
    "EnableKey" => keys::enable_key,
    "EnableKeyRotation" => rotation::enable_key_rotation,
    "Encrypt" => dataplane::encrypt,
    "GenerateDataKey" => dataplane::generate_data_key,
    "GenerateDataKeyPair" => asymmetric::generate_data_key_pair,
    "GenerateDataKeyPairWithoutPlaintext" => asymmetric::generate_data_key_pair_without_plaintext,
    "GenerateDataKeyWithoutPlaintext" => dataplane::generate_data_key_without_plaintext,
    "GenerateMac" => mac::generate_mac,
    "GenerateRandom" => dataplane::generate_random,
    "GetKeyLastUsage" => keys::get_key_last_usage,
    "GetKeyPolicy" => policies::get_key_policy,
    "GetKeyRotationStatus" => rotation::get_key_rotation_status,
    "GetParametersForImport" => import::get_parameters_for_import,
    "GetPublicKey" => asymmetric::get_public_key,
    "ImportKeyMaterial" => import::import_key_material,
    "ListAliases" => aliases::list_aliases,
    "ListGrants" => grants::list_grants,
    "ListKeyPolicies" => policies::list_key_policies,
    "ListKeyRotations" => rotation::list_key_rotations,
    "ListKeys" => keys::list_keys,
    "ListResourceTags" => tags::list_resource_tags,
    "ListRetirableGrants" => grants::list_retirable_grants,
    "PutKeyPolicy" => policies::put_key_policy,
    "ReEncrypt" => dataplane::re_encrypt,
    "ReplicateKey" => keys::replicate_key,
    "RetireGrant" => grants::retire_grant,
    "RevokeGrant" => grants::revoke_grant,
    "RotateKeyOnDemand" => rotation::rotate_key_on_demand,
    "ScheduleKeyDeletion" => keys::schedule_key_deletion,
    "Sign" => asymmetric::sign,
    "TagResource" => tags::tag_resource,
    "UntagResource" => tags::untag_resource,
    "UpdateAlias" => aliases::update_alias,
    "UpdateKeyDescription" => keys::update_key_description,
    "UpdatePrimaryRegion" => keys::update_primary_region,
    "Verify" => asymmetric::verify,
    "VerifyMac" => mac::verify_mac,
}

/// The operations whose call, on a key in memory, is CPU work of microseconds (symmetric
/// cryptography, an ECDSA or RSA signature) and writes nothing to the store: they may run on the
/// async worker when the engine says its calls do not block ([`Engine::calls_may_block`]). Every
/// other operation (the control plane writes the store; key-pair generation can take long) runs
/// on a blocking thread.
const CPU_ONLY: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

impl Operation {
    /// Whether this operation's call may run on the async worker on `engine`: a
    /// [`CPU_ONLY`] operation on an engine whose calls do not block.
    pub fn runs_inline(&self, engine: &Engine) -> bool {
        CPU_ONLY.contains(&self.name) && !engine.calls_may_block()
    }
}

/// The model's operations that are not served, with why. A request for one is answered
/// UnsupportedOperationException with this reason.
pub static NOT_SERVED: &[(&str, &str)] = &[];

/// The served operation named `name`.
pub fn find(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name)
}

/// The reason an operation of the model is not served.
pub fn not_served(name: &str) -> Option<(&'static str, &'static str)> {
    NOT_SERVED.iter().copied().find(|(op, _)| *op == name)
}
