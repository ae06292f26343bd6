//! Key policies: PutKeyPolicy, GetKeyPolicy, ListKeyPolicies.

use keyplane::Engine;

use super::json::{Input, Out};
use super::reply::Fault;

pub(super) fn put_key_policy(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.put_key_policy(
        input.req("KeyId"),
        input.req("Policy"),
        input.str("PolicyName"),
        input
            .bool("BypassPolicyLockoutSafetyCheck")
            .unwrap_or(false),
    )?;
    Ok(Out::new())
}

pub(super) fn get_key_policy(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let name = input.str("PolicyName");
    let policy = engine.get_key_policy(input.req("KeyId"), name)?;
    let mut out = Out::new();
    out.str("Policy", &policy)
        .str("PolicyName", name.unwrap_or("default"));
    Ok(out)
}

pub(super) fn list_key_policies(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    // The range of Limit is the model's (checked when read); there is one page.
    input.u32("Limit")?;
    if input.has("Marker") {
        return Err(keyplane::Error::InvalidMarker(
            "ListKeyPolicies returns one page; there is no marker to continue from".into(),
        )
        .into());
    }
    let page = engine.list_key_policies(input.req("KeyId"))?;
    let mut out = Out::new();
    out.strings("PolicyNames", &page.items);
    out.opt("NextMarker", page.next_marker.as_deref())
        .bool("Truncated", page.truncated);
    Ok(out)
}
