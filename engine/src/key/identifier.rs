//! Key identifiers: a key id, a key ARN, an alias name or an alias ARN, accepted everywhere a key
//! is named.

use uuid::Uuid;

use crate::error::{Error, Result};

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
    /// Checks and stores the region and account.
    pub fn new(region: &str, account: &str) -> Result<Self> {
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
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

    /// The ARN of key `id`.
    pub fn key_arn(&self, id: &Uuid) -> String {
        format!("{}key/{}", self.prefix, id.hyphenated())
    }

    /// The ARN of alias `name` (`alias/...`).
    pub fn alias_arn(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Parses any key identifier. ARNs of another region or account name nothing here.
    pub fn parse<'a>(&self, identifier: &'a str) -> Result<KeyReference<'a>> {
        if identifier.is_empty() || identifier.len() > 2048 {
            return Err(Error::Validation(
                "a key identifier must be 1 to 2048 characters".into(),
            ));
        }
        if let Some(rest) = identifier.strip_prefix("arn:") {
            let resource = self.strip_scope(rest, identifier)?;
            if let Some(id) = resource.strip_prefix("key/") {
                return parse_key_id(id).map(KeyReference::Key);
            }
            if resource.starts_with(ALIAS_PREFIX) {
                return Ok(KeyReference::Alias(resource));
            }
            return Err(Error::InvalidArn(format!(
                "'{identifier}' is neither a key ARN (…:key/<id>) nor an alias ARN (…:alias/<name>)"
            )));
        }
        if identifier.starts_with(ALIAS_PREFIX) {
            return Ok(KeyReference::Alias(identifier));
        }
        parse_key_id(identifier).map(KeyReference::Key)
    }

    fn strip_scope<'a>(&self, rest: &'a str, whole: &str) -> Result<&'a str> {
        let mut parts = rest.splitn(5, ':');
        let (partition, service, region, account, resource) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next(),
        );
        let resource = resource.ok_or_else(|| {
            Error::InvalidArn(format!(
                "'{whole}' is not an ARN of the form arn:aws:kms:<region>:<account>:<resource>"
            ))
        })?;
        if partition != "aws" || service != "kms" {
            return Err(Error::InvalidArn(format!(
                "'{whole}' is not a KMS ARN (expected arn:aws:kms:…)"
            )));
        }
        if region != self.region || account != self.account {
            return Err(Error::NotFound(format!(
                "'{whole}' names region '{region}' and account '{account}', but this engine serves \
                 region '{}' and account '{}'",
                self.region, self.account
            )));
        }
        Ok(resource)
    }
}

/// Parses a key id (a UUID in its hyphenated form).
pub fn parse_key_id(id: &str) -> Result<Uuid> {
    if id.len() != 36 {
        return Err(Error::NotFound(format!(
            "'{id}' is not a key id, key ARN, alias name or alias ARN"
        )));
    }
    Uuid::try_parse(id).map_err(|_| {
        Error::NotFound(format!(
            "'{id}' is not a key id, key ARN, alias name or alias ARN"
        ))
    })
}

/// Checks an alias name for CreateAlias / UpdateAlias.
pub fn validate_alias_name(name: &str) -> Result<()> {
    let Some(rest) = name.strip_prefix(ALIAS_PREFIX) else {
        return Err(Error::InvalidAliasName(format!(
            "alias name '{name}' must start with 'alias/'"
        )));
    };
    if rest.is_empty() || name.len() > 256 {
        return Err(Error::InvalidAliasName(format!(
            "alias name '{name}' must be 'alias/' followed by 1 to 250 characters"
        )));
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    {
        return Err(Error::InvalidAliasName(format!(
            "alias name '{name}' may contain only letters, digits, '/', '_' and '-' after 'alias/'"
        )));
    }
    if name.starts_with(RESERVED_ALIAS_PREFIX) {
        return Err(Error::InvalidAliasName(format!(
            "alias names starting with '{RESERVED_ALIAS_PREFIX}' are reserved for keys that \
             integrated services manage"
        )));
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
    fn foreign_and_malformed_arns_are_refused() {
        let s = scope();
        let id = Uuid::new_v4();
        let other_region = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        assert_eq!(
            s.parse(&other_region).unwrap_err().code(),
            "NotFoundException"
        );
        assert_eq!(
            s.parse("arn:aws:s3:::bucket/x").unwrap_err().code(),
            "InvalidArnException"
        );
        assert_eq!(
            s.parse("arn:aws:kms").unwrap_err().code(),
            "InvalidArnException"
        );
        assert_eq!(
            s.parse("not-a-key").unwrap_err().code(),
            "NotFoundException"
        );
        assert_eq!(s.parse("").unwrap_err().code(), "ValidationException");
    }

    #[test]
    fn alias_names_are_checked() {
        assert!(validate_alias_name("alias/my-app/prod_1").is_ok());
        for bad in [
            "my-app",
            "alias/",
            "alias/aws/s3",
            "alias/sp ace",
            "alias/ü",
        ] {
            assert_eq!(
                validate_alias_name(bad).unwrap_err().code(),
                "InvalidAliasNameException",
                "{bad}"
            );
        }
    }
}
