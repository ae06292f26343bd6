//! Rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations.

use keyplane::Engine;

use super::json::{Input, Out};
use super::members::list_page;
use super::reply::Fault;

pub(super) fn enable_key_rotation(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.enable_key_rotation(input.req("KeyId"), input.u32("RotationPeriodInDays")?)?;
    Ok(Out::new())
}

pub(super) fn disable_key_rotation(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.disable_key_rotation(input.req("KeyId"))?;
    Ok(Out::new())
}

pub(super) fn get_key_rotation_status(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let s = engine.get_key_rotation_status(input.req("KeyId"))?;
    let mut out = Out::new();
    out.bool("KeyRotationEnabled", s.key_rotation_enabled)
        .str("KeyId", &s.key_id);
    if let Some(days) = s.rotation_period_in_days {
        out.int("RotationPeriodInDays", i64::from(days));
    }
    out.date_opt("NextRotationDate", s.next_rotation_date);
    Ok(out)
}

pub(super) fn rotate_key_on_demand(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let arn = engine.rotate_key_on_demand(input.req("KeyId"))?;
    let mut out = Out::new();
    out.str("KeyId", &arn);
    Ok(out)
}

pub(super) fn list_key_rotations(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let mut page =
        engine.list_key_rotations(input.req("KeyId"), input.u32("Limit")?, input.str("Marker"))?;
    // ROTATIONS_ONLY (the service's default) leaves out material no rotation made current: an
    // EXTERNAL key's first material and material pending rotation.
    if input.str("IncludeKeyMaterial").unwrap_or("ROTATIONS_ONLY") == "ROTATIONS_ONLY" {
        page.items.retain(|r| r.rotation_type.is_some());
    }
    Ok(list_page("Rotations", &page, |o, r| {
        o.str("KeyId", &r.key_id)
            .str("KeyMaterialId", &r.key_material_id)
            .opt(
                "KeyMaterialDescription",
                r.key_material_description.as_deref(),
            )
            .opt("ImportState", r.import_state.map(|s| s.as_str()))
            .opt("KeyMaterialState", r.key_material_state.map(|s| s.as_str()))
            .opt("ExpirationModel", r.expiration_model.map(|e| e.as_str()))
            .date_opt("ValidTo", r.valid_to)
            .date_opt("RotationDate", r.rotation_date)
            .opt("RotationType", r.rotation_type.map(|t| t.as_str()));
    }))
}
