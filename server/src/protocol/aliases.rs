//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use keyplane::Engine;

use super::json::{Input, Out};
use super::members::list_page;
use super::reply::Fault;

pub(super) fn create_alias(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.create_alias(input.req("AliasName"), input.req("TargetKeyId"))?;
    Ok(Out::new())
}

pub(super) fn update_alias(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.update_alias(input.req("AliasName"), input.req("TargetKeyId"))?;
    Ok(Out::new())
}

pub(super) fn delete_alias(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.delete_alias(input.req("AliasName"))?;
    Ok(Out::new())
}

pub(super) fn list_aliases(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page = engine.list_aliases(input.str("KeyId"), input.u32("Limit")?, input.str("Marker"))?;
    Ok(list_page("Aliases", &page, |o, a| {
        o.str("AliasName", &a.alias_name)
            .str("AliasArn", &a.alias_arn)
            .opt("TargetKeyId", a.target_key_id.as_deref())
            .date_opt("CreationDate", a.creation_date)
            .date_opt("LastUpdatedDate", a.last_updated_date);
    }))
}
