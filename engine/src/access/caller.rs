//! Callers: who is making a request.
//!
//! The embedding program makes a [`Caller`] once per principal and binds it to an engine handle
//! with [`crate::Engine::for_caller`]; every call made through that handle is authorised and
//! audited as that principal. An engine fresh from its builder acts as the account's root
//! principal, the default administrator of a plain embedded setup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A principal making requests: an IAM-style ARN, its account, and optional attributes.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// Process-unique id, so that cached decisions compare an integer, not a string.
    id: u64,
    principal: String,
    account: String,
    attributes: BTreeMap<String, String>,
}

impl Caller {
    /// A caller for `principal_arn`: `arn:aws:iam::<account>:root`, `...:user/<name>`,
    /// `...:role/<name>`, or `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub fn new(principal_arn: &str) -> Result<Caller> {
        let account = parse_principal(principal_arn)?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Caller {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            principal: principal_arn.to_owned(),
            account: account.to_owned(),
            attributes: BTreeMap::new(),
        })
    }

    /// The account's root principal: full control under the default key policy.
    pub fn account_root(account: &str) -> Result<Caller> {
        Caller::new(&format!("arn:aws:iam::{account}:root"))
    }

    /// The same caller, calling through an integrated service's endpoint
    /// (`<service>.<region>.amazonaws.com`): sets `kms:ViaService` for key policies.
    pub fn via_service(self, endpoint: &str) -> Caller {
        self.with_attribute("kms:ViaService", endpoint)
    }

    /// The same caller with an attribute added. Attributes named by a condition key answer that
    /// key in key policies: `kms:ViaService`, `aws:SourceIp`, `aws:PrincipalTag/<tag>` (see
    /// [`Caller::via_service`], [`Caller::with_source_ip`], [`Caller::with_principal_tag`]);
    /// other attributes are only recorded.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Caller {
        self.attributes.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The same caller with principal tag `tag` = `value`, which key policies test as
    /// `aws:PrincipalTag/<tag>` (tag keys compare without regard to case).
    pub fn with_principal_tag(self, tag: &str, value: &str) -> Caller {
        self.with_attribute(&format!("aws:PrincipalTag/{tag}"), value)
    }

    /// The same caller, calling from network address `address`: sets `aws:SourceIp` for key
    /// policies. An in-process call has no source address; an endpoint that serves the engine
    /// over a network (or a binding in front of one) sets it per connection.
    pub fn with_source_ip(self, address: std::net::IpAddr) -> Caller {
        self.with_attribute("aws:SourceIp", &address.to_string())
    }

    /// The value of attribute `name`, compared without regard to ASCII case (condition key
    /// names are case-insensitive). Does not allocate.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `aws:PrincipalType`: `Account` for the root, `User` for an IAM user, `AssumedRole` for a
    /// role or a role session.
    pub fn principal_type(&self) -> Option<&'static str> {
        let resource = self.principal.splitn(6, ':').nth(5)?;
        if resource == "root" {
            Some("Account")
        } else if resource.starts_with("user/") {
            Some("User")
        } else if resource.starts_with("role/") || resource.starts_with("assumed-role/") {
            Some("AssumedRole")
        } else {
            None
        }
    }

    /// `aws:username`: an IAM user's name; other principals have none.
    pub fn user_name(&self) -> Option<&str> {
        self.principal.splitn(6, ':').nth(5)?.strip_prefix("user/")
    }

    /// The principal's ARN.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The principal's account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The caller's attributes.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Checks a principal ARN and returns its account.
fn parse_principal(arn: &str) -> Result<&str> {
    let invalid = || {
        Error::Validation(format!(
            "'{arn}' is not a principal ARN (arn:aws:iam::<account>:root|user/<name>|role/<name> \
             or arn:aws:sts::<account>:assumed-role/<role>/<session>)"
        ))
    };
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = fields[..] else {
        return Err(invalid());
    };
    let resource_ok = match service {
        "iam" => {
            resource == "root"
                || resource
                    .strip_prefix("user/")
                    .or_else(|| resource.strip_prefix("role/"))
                    .is_some_and(|name| !name.is_empty())
        }
        "sts" => resource
            .strip_prefix("assumed-role/")
            .is_some_and(|rest| rest.split('/').count() == 2 && !rest.ends_with('/')),
        _ => false,
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if prefix != "arn" || partition != "aws" || !region.is_empty() || !account_ok || !resource_ok {
        return Err(invalid());
    }
    if arn.len() > 2048 || arn.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_forms() {
        for ok in [
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:role/app",
            "arn:aws:sts::111122223333:assumed-role/app/session-1",
        ] {
            let caller = Caller::new(ok).unwrap();
            assert_eq!(caller.account(), "111122223333");
            assert_eq!(caller.principal(), ok);
        }
        for bad in [
            "",
            "alice",
            "arn:aws:iam::1111:root",
            "arn:aws:iam::111122223333:group/x",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:s3:::bucket",
            "arn:aws:sts::111122223333:assumed-role/app",
        ] {
            assert_eq!(
                Caller::new(bad).unwrap_err().code(),
                "ValidationException",
                "{bad}"
            );
        }
    }

    #[test]
    fn callers_have_distinct_ids() {
        let a = Caller::new("arn:aws:iam::111122223333:user/a").unwrap();
        let b = Caller::new("arn:aws:iam::111122223333:user/a").unwrap();
        assert_ne!(a.id(), b.id());
    }
}
