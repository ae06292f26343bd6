//! Keys managed by an integrated service: created on first use under `alias/aws/<service>`, with a
//! policy the engine sets (use through the service, describe by the account), KeyManager AWS, not
//! changeable, disableable or deletable by customers, rotated automatically every year.

use uuid::Uuid;

use crate::access::Action;
use crate::dataplane::primitive::generate_material;
use crate::engine::Engine;
use crate::error::Error;
use crate::error::{validation, Result};
use crate::key::identifier::{KeyReference, RESERVED_ALIAS_PREFIX};
use crate::key::{
    AliasRecord, KeyManager, KeyMetadata, KeyRecord, KeySpec, KeyState, KeyUsage, Origin,
    RotationConfig, VersionRecord,
};
use crate::store::StoreChange;

/// Days between automatic rotations of a managed key.
pub const MANAGED_KEY_ROTATION_DAYS: u32 = 365;

/// The integrated services whose `alias/aws/<service>` alias every account has from the start
/// (the predefined aliases a new account's ListAliases shows, plus the services that are most
/// often integrated): a fixed list, so that ListAliases answers the same everywhere. Any other
/// service still gets its managed key through [`Engine::managed_key`].
pub const INTEGRATED_SERVICES: &[&str] = &[
    "acm",
    "backup",
    "dynamodb",
    "ebs",
    "elasticfilesystem",
    "es",
    "glue",
    "kinesis",
    "kinesisvideo",
    "lambda",
    "rds",
    "redshift",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "xray",
];

/// The integrated service an alias name (`alias/aws/<service>`) belongs to, if it is one of
/// [`INTEGRATED_SERVICES`].
pub(crate) fn integrated_service(alias_name: &str) -> Option<&'static str> {
    let service = alias_name.strip_prefix(RESERVED_ALIAS_PREFIX)?;
    INTEGRATED_SERVICES.iter().copied().find(|s| *s == service)
}

/// The aliases of [`INTEGRATED_SERVICES`], sorted by name.
pub(crate) fn predefined_aliases() -> impl Iterator<Item = String> {
    INTEGRATED_SERVICES
        .iter()
        .map(|service| format!("{RESERVED_ALIAS_PREFIX}{service}"))
}

fn check_service_name(service: &str) -> Result<()> {
    let ok = !service.is_empty()
        && service.len() <= 64
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(validation!(
            "a service name is 1 to 64 characters of a-z, 0-9 and '-', not '{service}'"
        ));
    }
    Ok(())
}

impl Engine {
    /// The policy of the managed key of `service`: principals of the account may use it through
    /// the service (`kms:ViaService`), and describe it directly; nobody may administer it.
    fn managed_policy(&self, service: &str) -> String {
        let account = &self.inner.config.account_id;
        let region = &self.inner.config.region;
        format!(
            r#"{{"Version":"2012-10-17","Id":"auto-{service}","Statement":[{{"Sid":"Allow access through {service} for all principals in the account that are authorized to use {service}","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:CreateGrant","kms:DescribeKey"],"Resource":"*","Condition":{{"StringEquals":{{"kms:ViaService":"{service}.{region}.amazonaws.com","kms:CallerAccount":"{account}"}}}}}},{{"Sid":"Allow direct access to key metadata to the account","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":["kms:Describe*","kms:Get*","kms:List*"],"Resource":"*"}}]}}"#
        )
    }

    /// Creates the managed key of every integrated service whose `alias/aws/<service>` alias (name
    /// or ARN) is among `identifiers` and has no key yet, as the service does when such an alias
    /// is first used. A caller that may not create it (another account) is left to the lookup,
    /// which then finds no alias; a dry run creates nothing.
    pub(crate) fn ensure_managed_keys(&self, identifiers: &[Option<&str>]) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        // Cheap first: single data-plane calls pass here, and nearly all name other keys.
        for identifier in identifiers
            .iter()
            .flatten()
            .filter(|i| i.contains(RESERVED_ALIAS_PREFIX))
        {
            let Ok(KeyReference::Alias(name)) = self.inner.scope.parse(identifier) else {
                continue;
            };
            let Some(service) = integrated_service(name) else {
                continue;
            };
            if self.inner.data.keyring.load().aliases.contains_key(name) {
                continue;
            }
            match self.managed_key(service) {
                Ok(_) | Err(Error::AccessDenied(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The managed key of an integrated service, created on first use under
    /// `alias/aws/<service>`. Callers reach it through the service: a caller made with
    /// `Caller::via_service("<service>.<region>.amazonaws.com")`.
    pub fn managed_key(&self, service: &str) -> Result<KeyMetadata> {
        self.audited(Action::CreateKey, None, || {
            check_service_name(service)?;
            self.authorize_account(Action::CreateKey)?;
            let alias = format!("{RESERVED_ALIAS_PREFIX}{service}");
            self.control_retrying(|state| {
                if let Some(existing) = state.aliases.get(&alias) {
                    let id = existing.target;
                    return self.metadata(state, &id);
                }
                if state.keys.len() >= self.inner.config.max_keys {
                    return Err(crate::error::Error::LimitExceeded(format!(
                        "this engine already holds its maximum of {} keys",
                        self.inner.config.max_keys
                    )));
                }
                let now = self.inner.clock.now();
                let id = Uuid::new_v4();
                let material = generate_material(
                    KeySpec::SymmetricDefault,
                    KeyUsage::EncryptDecrypt,
                    self.inner.config.lock_policy,
                )?;
                let record = KeyRecord {
                    id,
                    created: now,
                    description: format!(
                        "Default key that protects my {service} data when no other key is defined"
                    ),
                    key_spec: KeySpec::SymmetricDefault,
                    key_usage: KeyUsage::EncryptDecrypt,
                    origin: Origin::AwsKms,
                    key_manager: KeyManager::Aws,
                    state: KeyState::Enabled,
                    deletion_date: None,
                    pending_window_days: None,
                    tags: Vec::new(),
                    rotation: RotationConfig {
                        enabled: true,
                        period_days: MANAGED_KEY_ROTATION_DAYS,
                        next_rotation: Some(now.plus_days(MANAGED_KEY_ROTATION_DAYS)),
                    },
                    versions: vec![VersionRecord {
                        version: 1,
                        material_id: super::key_fields::new_material_id()?,
                        created: now,
                        rotation_type: None,
                        import: None,
                    }],
                    on_demand_rotations: 0,
                    policy: self.managed_policy(service),
                    grants: Vec::new(),
                    multi_region: None,
                    custom_key_store: None,
                };
                self.save_key(state, record, Some((1, material)))?;
                let alias_record = AliasRecord {
                    name: alias.clone(),
                    target: id,
                    created: now,
                    updated: now,
                };
                self.commit(state, &[StoreChange::PutAlias(&alias_record)])?;
                state.put_alias(alias_record);
                self.publish(state, &[], std::slice::from_ref(&alias));
                self.metadata(state, &id)
            })
        })
    }
}
