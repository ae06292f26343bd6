//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

use keyplane::{CreateGrantRequest, EncryptionContext, Engine, GrantConstraints, GrantListEntry};
use serde_json::Value;

use super::json::{wrong_type, Input, Out};
use super::members::list_page;
use super::reply::Fault;

fn context_map(name: &str, value: &Value) -> Result<EncryptionContext, Fault> {
    let wanted = "a map of strings to strings";
    let map = value
        .as_object()
        .ok_or_else(|| wrong_type(name, wanted, value))?;
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(wrong_type(name, wanted, other)),
        })
        .collect()
}

fn constraints(input: &Input) -> Result<Option<GrantConstraints>, Fault> {
    let Some(object) = input.object("Constraints") else {
        return Ok(None);
    };
    let mut out = GrantConstraints::default();
    for (name, value) in object {
        match name.as_str() {
            _ if value.is_null() => {}
            "EncryptionContextSubset" => {
                out.encryption_context_subset = Some(context_map(name, value)?)
            }
            "EncryptionContextEquals" => {
                out.encryption_context_equals = Some(context_map(name, value)?)
            }
            "SourceArn" => {
                return Err(keyplane::Error::UnsupportedOperation(
                    "grant constraint SourceArn is not supported by keyplane".into(),
                )
                .into())
            }
            _ => {}
        }
    }
    Ok(Some(out))
}

pub(super) fn create_grant(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let operations = input
        .strings("Operations")?
        .unwrap_or_default()
        .iter()
        .map(|o| keyplane::validation::parse_member(input.operation(), "Operations", o))
        .collect::<keyplane::Result<Vec<_>>>()?;
    let request = CreateGrantRequest {
        key_id: input.req("KeyId").to_owned(),
        grantee_principal: input.req("GranteePrincipal").to_owned(),
        retiring_principal: input.string("RetiringPrincipal"),
        operations,
        constraints: constraints(input)?,
        name: input.string("Name"),
    };
    let r = engine.create_grant(request)?;
    let mut out = Out::new();
    out.str("GrantToken", &r.grant_token)
        .str("GrantId", &r.grant_id);
    Ok(out)
}

fn grant_entry(o: &mut Out, g: &GrantListEntry) {
    let operations: Vec<&str> = g.operations.iter().map(|op| op.as_str()).collect();
    o.str("KeyId", &g.key_id)
        .str("GrantId", &g.grant_id)
        .opt("Name", g.name.as_deref())
        .date("CreationDate", g.creation_date)
        .str("GranteePrincipal", &g.grantee_principal)
        .opt("RetiringPrincipal", g.retiring_principal.as_deref())
        .str("IssuingAccount", &g.issuing_account)
        .strings("Operations", &operations);
    if let Some(c) = &g.constraints {
        o.nested("Constraints", |o| {
            if let Some(subset) = &c.encryption_context_subset {
                o.map("EncryptionContextSubset", subset);
            }
            if let Some(equals) = &c.encryption_context_equals {
                o.map("EncryptionContextEquals", equals);
            }
        });
    }
}

pub(super) fn list_grants(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page = engine.list_grants(
        input.req("KeyId"),
        input.str("GrantId"),
        input.str("GranteePrincipal"),
        input.u32("Limit")?,
        input.str("Marker"),
    )?;
    Ok(list_page("Grants", &page, grant_entry))
}

pub(super) fn list_retirable_grants(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page = engine.list_retirable_grants(
        input.req("RetiringPrincipal"),
        input.u32("Limit")?,
        input.str("Marker"),
    )?;
    Ok(list_page("Grants", &page, grant_entry))
}

pub(super) fn retire_grant(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.retire_grant(
        input.str("GrantToken"),
        input.str("KeyId"),
        input.str("GrantId"),
    )?;
    Ok(Out::new())
}

pub(super) fn revoke_grant(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.revoke_grant(input.req("KeyId"), input.req("GrantId"))?;
    Ok(Out::new())
}
