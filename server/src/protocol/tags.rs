//! Tags: TagResource, UntagResource, ListResourceTags.

use keyplane::Engine;

use super::json::{Input, Out};
use super::members::list_page;
use super::reply::Fault;

pub(super) fn tag_resource(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.tag_resource(input.req("KeyId"), input.tags("Tags")?)?;
    Ok(Out::new())
}

pub(super) fn untag_resource(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let keys = input.strings("TagKeys")?.unwrap_or_default();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    engine.untag_resource(input.req("KeyId"), &keys)?;
    Ok(Out::new())
}

pub(super) fn list_resource_tags(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page =
        engine.list_resource_tags(input.req("KeyId"), input.u32("Limit")?, input.str("Marker"))?;
    Ok(list_page("Tags", &page, |o, t| {
        o.str("TagKey", &t.tag_key).str("TagValue", &t.tag_value);
    }))
}
