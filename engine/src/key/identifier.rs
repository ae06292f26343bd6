//! Key identifiers: a key id, a key ARN, an alias name or an alias ARN, and the table of which of
//! them each operation accepts ([`key_id_form`]).

use uuid::Uuid;

use crate::access::Action;
use crate::error::{Error, Result};
use crate::messages;

/// The prefix every alias name starts with.
pub const ALIAS_PREFIX: &str = "alias/";
/// Aliases under this prefix are reserved for keys that integrated services manage.
pub const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";

/// A parsed key reference, before it is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyReference<'a> {
    /// A key id or key ARN.
    Key(Uuid),
    /// An alias name or alias ARN (as the `alias/...` name).
    Alias(&'a str),
}

/// The region and account the engine's ARNs carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnScope {
    pub(crate) region: String,
    pub(crate) account: String,
    /// `arn:aws:kms:<region>:<account>:`
    pub(crate) prefix: String,
}

impl ArnScope {
    /// Whether `region` is a Region name keyplane takes: 1 to 32 characters of `a-z`, `0-9` and
    /// `-`.
    pub fn is_region_name(region: &str) -> bool {
        !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// Checks and stores the region and account.
    pub fn new(region: &str, account: &str) -> Result<Self> {
        if !Self::is_region_name(region) {
            return Err(Error::Validation(format!(
                "region '{region}' must be 1-32 characters of a-z, 0-9 and '-'"
            )));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Validation(format!(
                "account '{account}' must be 12 digits"
            )));
        }
        Ok(ArnScope {
            region: region.to_owned(),
            account: account.to_owned(),
            prefix: format!("arn:aws:kms:{region}:{account}:"),
        })
    }

    /// The ARN of key `id` (`.../key/mrk-...` for a multi-Region key).
    pub fn key_arn(&self, id: &Uuid) -> String {
        let mut arn = String::with_capacity(self.prefix.len() + KEY_PATH_LEN);
        arn.push_str(&self.prefix);
        push_key_path(&mut arn, id);
        arn
    }

    /// The ARN of key `id` in another Region of the same account (a multi-Region key's peers).
    pub fn key_arn_in(&self, region: &str, id: &Uuid) -> String {
        let mut arn = String::with_capacity(
            "arn:aws:kms:".len() + region.len() + 1 + self.account.len() + 1 + KEY_PATH_LEN,
        );
        for part in ["arn:aws:kms:", region, ":", &self.account, ":"] {
            arn.push_str(part);
        }
        push_key_path(&mut arn, id);
        arn
    }

    /// The engine's Region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The ARN of alias `name` (`alias/...`).
    pub fn alias_arn(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Parses any key identifier, with the service's messages: a malformed one is
    /// `Invalid keyId '<identifier>'`, an ARN of another Region `Invalid arn <region>`, and an ARN
    /// of another account names a key or alias that does not exist here.
    pub fn parse<'a>(&self, identifier: &'a str) -> Result<KeyReference<'a>> {
        if identifier.is_empty() || identifier.len() > 2048 {
            // A model constraint (KeyIdType: length 1-2048); the generated validation reports it
            // before the engine sees the request.
            return Err(Error::Validation(
                "a key identifier must be 1 to 2048 characters".into(),
            ));
        }
        if let Some(rest) = identifier.strip_prefix("arn:") {
            let mut parts = rest.splitn(5, ':');
            let (partition, service, region, account, resource) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            if partition != "aws" || service != "kms" || region.is_empty() {
                return Err(messages::invalid_key_id(identifier));
            }
            if region != self.region {
                return Err(messages::invalid_arn_region(region));
            }
            let foreign = account != self.account;
            if let Some(id) = resource.strip_prefix("key/") {
                let id = parse_key_id(id).map_err(|_| messages::invalid_key_id(identifier))?;
                if foreign {
                    return Err(messages::key_does_not_exist(identifier));
                }
                return Ok(KeyReference::Key(id));
            }
            if resource.len() > ALIAS_PREFIX.len() && resource.starts_with(ALIAS_PREFIX) {
                if foreign {
                    return Err(messages::alias_not_found(identifier));
                }
                return Ok(KeyReference::Alias(resource));
            }
            return Err(messages::invalid_key_id(identifier));
        }
        if identifier.starts_with(ALIAS_PREFIX) {
            return Ok(KeyReference::Alias(identifier));
        }
        parse_key_id(identifier).map(KeyReference::Key)
    }

    /// Parses the KeyId of `operation` under its row of [`key_id_form`]: an alias where only a
    /// key id or key ARN is allowed is `Invalid keyId` (NotFoundException), or, as an alias's
    /// target, `Aliases must refer to keys. Not aliases` (ValidationException).
    pub fn parse_for<'a>(
        &self,
        identifier: &'a str,
        operation: Action,
    ) -> Result<KeyReference<'a>> {
        let parsed = self.parse(identifier)?;
        match (parsed, key_id_form(operation)) {
            (KeyReference::Alias(_), KeyIdForm::KeyOnly) => {
                Err(messages::invalid_key_id(identifier))
            }
            (KeyReference::Alias(_), KeyIdForm::AliasTarget) => {
                Err(messages::alias_target_is_alias())
            }
            (parsed, _) => Ok(parsed),
        }
    }
}

/// Which identifiers an operation's KeyId accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyIdForm {
    /// Key id, key ARN, alias name or alias ARN.
    KeyOrAlias,
    /// Key id or key ARN; an alias is refused with NotFoundException.
    KeyOnly,
    /// The target of an alias (CreateAlias, UpdateAlias): key id or key ARN; an alias is refused
    /// with ValidationException.
    AliasTarget,
}

/// THE table of identifier rules: what the KeyId (or TargetKeyId, SourceKeyId,
/// DestinationKeyId) of each operation accepts. Every key lookup, control plane and data plane,
/// goes through it ([`ArnScope::parse_for`]).
///
/// How each row was decided, from the KeyId documentation of every operation in the service's
/// model (`engine/model/kms-service-2.json`; `engine/tests/service_behaviour.rs` checks the table
/// against it):
/// - the documentation says "use its key ID, key ARN, alias name, or alias ARN": KeyOrAlias
///   (Encrypt, Decrypt, ReEncrypt's SourceKeyId and DestinationKeyId, GenerateDataKey*,
///   GenerateDataKeyPair*, Sign, Verify, GetPublicKey, DeriveSharedSecret, DescribeKey);
/// - it says "Specify the key ID or key ARN of the KMS key" (or, for GetKeyLastUsage, "Alias
///   names are not supported"; for RetireGrant, "The key ARN"): KeyOnly;
/// - GenerateMac and VerifyMac document no identifier forms; they are cryptographic operations,
///   which take aliases like every other one (issue 17: "the cryptographic operations and
///   DescribeKey keep accepting aliases"): KeyOrAlias;
/// - CreateAlias's and UpdateAlias's TargetKeyId say "key ID or key ARN", and the service answers
///   an alias there with a ValidationException: AliasTarget.
///
/// Operations without a KeyId (CreateKey, GenerateRandom, ListKeys, ListRetirableGrants) have
/// no row that matters; they are KeyOnly so that a lookup by mistake never follows an alias.
pub fn key_id_form(operation: Action) -> KeyIdForm {
    use Action as A;
    use KeyIdForm::*;
    match operation {
        A::Encrypt
        | A::Decrypt
        | A::ReEncryptFrom
        | A::ReEncryptTo
        | A::GenerateDataKey
        | A::GenerateDataKeyWithoutPlaintext
        | A::GenerateDataKeyPair
        | A::GenerateDataKeyPairWithoutPlaintext
        | A::Sign
        | A::Verify
        | A::GetPublicKey
        | A::DeriveSharedSecret
        | A::DescribeKey
        | A::GenerateMac
        | A::VerifyMac => KeyOrAlias,
        A::CreateAlias | A::UpdateAlias => AliasTarget,
        A::CancelKeyDeletion
        | A::CreateGrant
        | A::DeleteImportedKeyMaterial
        | A::GetParametersForImport
        | A::ImportKeyMaterial
        | A::DisableKey
        | A::DisableKeyRotation
        | A::EnableKey
        | A::EnableKeyRotation
        | A::GetKeyLastUsage
        | A::GetKeyPolicy
        | A::GetKeyRotationStatus
        | A::ListAliases
        | A::ListGrants
        | A::ListKeyPolicies
        | A::ListKeyRotations
        | A::ListResourceTags
        | A::PutKeyPolicy
        | A::RetireGrant
        | A::RevokeGrant
        | A::RotateKeyOnDemand
        | A::ScheduleKeyDeletion
        | A::TagResource
        | A::UntagResource
        | A::UpdateKeyDescription
        | A::ReplicateKey
        | A::UpdatePrimaryRegion => KeyOnly,
        A::CreateKey
        | A::DeleteAlias
        | A::GenerateRandom
        | A::ListKeys
        | A::ListRetirableGrants
        | A::CreateCustomKeyStore
        | A::ConnectCustomKeyStore
        | A::DisconnectCustomKeyStore
        | A::DeleteCustomKeyStore
        | A::UpdateCustomKeyStore
        | A::DescribeCustomKeyStores => KeyOnly,
    }
}

/// The prefix of a multi-Region key's id.
pub const MRK_PREFIX: &str = "mrk-";

/// The UUID version that marks a multi-Region key's id. Single-Region keys are random (version
/// 4) UUIDs; a multi-Region key is a version 8 ("custom") UUID with 122 random bits, shown as
/// `mrk-` and its 32 lowercase hex digits. So every ARN and key id the engine prints follows from
/// the `Uuid` alone, and one form can never name a key of the other kind.
const MRK_UUID_VERSION: usize = 8;

/// Whether `id` is a multi-Region key's id.
pub fn is_multi_region_id(id: &Uuid) -> bool {
    id.get_version_num() == MRK_UUID_VERSION
}

/// A new, random multi-Region key id.
pub fn new_multi_region_id() -> Result<Uuid> {
    let mut bytes = [0u8; 16];
    crate::crypto::random::fill(&mut bytes)?;
    Ok(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// A key id as the service shows it: the hyphenated UUID, or `mrk-` and 32 lowercase hex digits
/// for a multi-Region key.
pub fn key_id_string(id: &Uuid) -> String {
    let mut shown = String::with_capacity(KEY_ID_LEN);
    push_key_id(&mut shown, id);
    shown
}

/// The longest key id [`key_id_string`] writes (36: a hyphenated UUID, or `mrk-` and 32 digits).
const KEY_ID_LEN: usize = 36;
/// `key/` and a key id: an ARN's resource part.
const KEY_PATH_LEN: usize = "key/".len() + KEY_ID_LEN;

/// Appends [`key_id_string`]'s text to `out`, encoded in place rather than through `fmt`
/// (DescribeKey makes two such strings per call; through `fmt` they were a quarter of its
/// instructions).
fn push_key_id(out: &mut String, id: &Uuid) {
    let mut buffer = [0u8; KEY_ID_LEN];
    if is_multi_region_id(id) {
        out.push_str(MRK_PREFIX);
        out.push_str(id.simple().encode_lower(&mut buffer));
    } else {
        out.push_str(id.hyphenated().encode_lower(&mut buffer));
    }
}

/// Appends `key/` and the key id: what follows an ARN's account.
fn push_key_path(out: &mut String, id: &Uuid) {
    out.push_str("key/");
    push_key_id(out, id);
}

/// Parses a key id: a UUID in its hyphenated form (a single-Region key) or `mrk-` and 32
/// lowercase hex digits (a multi-Region key). A hyphenated UUID that is a multi-Region key's, or
/// an `mrk-` id that is not, is malformed (`Invalid keyId`), so neither form reaches a key of the
/// other kind.
pub fn parse_key_id(id: &str) -> Result<Uuid> {
    if let Some(hex) = id.strip_prefix(MRK_PREFIX) {
        let lower_hex = hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return match Uuid::try_parse(hex) {
            Ok(uuid) if lower_hex && is_multi_region_id(&uuid) => Ok(uuid),
            _ => Err(messages::invalid_key_id(id)),
        };
    }
    if id.len() != 36 {
        return Err(messages::invalid_key_id(id));
    }
    match Uuid::try_parse(id) {
        Ok(uuid) if !is_multi_region_id(&uuid) => Ok(uuid),
        _ => Err(messages::invalid_key_id(id)),
    }
}

/// Checks an alias name for CreateAlias / UpdateAlias, in the service's order: the `alias/`
/// prefix followed by a name (ValidationException), then the reserved `alias/aws/` prefix
/// (NotAuthorizedException), then the model's length and pattern (the generated validation
/// reports those before the engine sees the request; the engine keeps a guard with the same
/// message).
pub fn validate_alias_name(name: &str) -> Result<()> {
    if name.len() <= ALIAS_PREFIX.len() || !name.starts_with(ALIAS_PREFIX) {
        return Err(messages::alias_prefix_missing());
    }
    if name.starts_with(RESERVED_ALIAS_PREFIX) {
        return Err(messages::alias_reserved(name));
    }
    let pattern_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if name.len() > 256 || !pattern_ok {
        return Err(messages::alias_name_constraint(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope::new("eu-west-1", "111122223333").unwrap()
    }

    #[test]
    fn every_identifier_form_parses() {
        let id = Uuid::new_v4();
        let s = scope();
        assert_eq!(s.parse(&id.to_string()).unwrap(), KeyReference::Key(id));
        assert_eq!(s.parse(&s.key_arn(&id)).unwrap(), KeyReference::Key(id));
        assert_eq!(
            s.parse("alias/app").unwrap(),
            KeyReference::Alias("alias/app")
        );
        assert_eq!(
            s.parse(&s.alias_arn("alias/app")).unwrap(),
            KeyReference::Alias("alias/app")
        );
    }

    #[test]
    fn foreign_and_malformed_identifiers_get_the_service_messages() {
        let s = scope();
        let id = Uuid::new_v4();
        let refused = |identifier: &str| {
            let e = s.parse(identifier).unwrap_err();
            (e.code(), e.message().to_owned())
        };
        let other_region = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        assert_eq!(
            refused(&other_region),
            ("NotFoundException", "Invalid arn us-east-1".into())
        );
        let other_account = format!("arn:aws:kms:eu-west-1:444455556666:key/{id}");
        assert_eq!(
            refused(&other_account),
            (
                "NotFoundException",
                format!("Key '{other_account}' does not exist")
            )
        );
        for malformed in [
            "arn:aws:s3:::bucket/x",
            "arn:aws:kms",
            "not-a-key",
            "unknown",
        ] {
            assert_eq!(
                refused(malformed),
                ("NotFoundException", format!("Invalid keyId '{malformed}'"))
            );
        }
        assert_eq!(refused("").0, "ValidationException");
    }

    #[test]
    fn the_table_decides_whether_an_alias_is_accepted() {
        let s = scope();
        let e = s.parse_for("alias/app", Action::EnableKey).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            ("NotFoundException", "Invalid keyId 'alias/app'")
        );
        let e = s.parse_for("alias/app", Action::CreateAlias).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (
                "ValidationException",
                "Aliases must refer to keys. Not aliases"
            )
        );
        assert_eq!(
            s.parse_for("alias/app", Action::Encrypt).unwrap(),
            KeyReference::Alias("alias/app")
        );
    }

    #[test]
    fn arns_and_key_ids_are_what_the_formatting_machinery_writes() {
        let s = scope();
        let single = Uuid::new_v4();
        let multi = new_multi_region_id().unwrap();
        for (id, shown) in [
            (single, single.hyphenated().to_string()),
            (multi, format!("mrk-{}", multi.simple())),
        ] {
            assert_eq!(key_id_string(&id), shown);
            assert_eq!(
                s.key_arn(&id),
                format!("arn:aws:kms:eu-west-1:111122223333:key/{shown}")
            );
            assert_eq!(
                s.key_arn_in("ap-southeast-2", &id),
                format!("arn:aws:kms:ap-southeast-2:111122223333:key/{shown}")
            );
            assert_eq!(s.key_arn(&id), s.key_arn_in(s.region(), &id));
        }
    }

    #[test]
    fn multi_region_ids_show_and_parse_as_mrk() {
        let s = scope();
        let id = new_multi_region_id().unwrap();
        let shown = key_id_string(&id);
        assert!(shown.starts_with("mrk-") && shown.len() == 36, "{shown}");
        assert!(shown[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s.parse(&shown).unwrap(), KeyReference::Key(id));
        assert_eq!(
            s.key_arn(&id),
            format!("arn:aws:kms:eu-west-1:111122223333:key/{shown}")
        );
        assert_eq!(s.parse(&s.key_arn(&id)).unwrap(), KeyReference::Key(id));
        // The other form of the same 128 bits names no key.
        let hyphenated = id.hyphenated().to_string();
        assert_eq!(
            s.parse(&hyphenated).unwrap_err().code(),
            "NotFoundException"
        );
        let single = Uuid::new_v4();
        let disguised = format!("mrk-{}", single.simple());
        assert_eq!(
            s.parse(&disguised).unwrap_err().message(),
            format!("Invalid keyId '{disguised}'")
        );
        let upper = format!("mrk-{}", id.simple().to_string().to_uppercase());
        assert_eq!(s.parse(&upper).unwrap_err().code(), "NotFoundException");
        assert_eq!(key_id_string(&single), single.hyphenated().to_string());
    }

    #[test]
    fn alias_names_are_checked() {
        assert!(validate_alias_name("alias/my-app/prod_1").is_ok());
        assert_eq!(
            validate_alias_name("my-app").unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(
            validate_alias_name("alias/aws/s3").unwrap_err().code(),
            "NotAuthorizedException"
        );
    }
}
