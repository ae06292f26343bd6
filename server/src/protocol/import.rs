//! Importing key material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

use keyplane::{Engine, ImportKeyMaterialRequest};

use super::json::{Input, Out};
use super::reply::Fault;

pub(super) fn get_parameters_for_import(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.get_parameters_for_import(
        input.req("KeyId"),
        input.required_enum("WrappingAlgorithm")?,
        input.required_enum("WrappingKeySpec")?,
    )?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .blob("ImportToken", &r.import_token)
        .blob("PublicKey", &r.public_key)
        .date("ParametersValidTo", r.parameters_valid_to);
    Ok(out)
}

pub(super) fn import_key_material(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.import_key_material(&ImportKeyMaterialRequest {
        key_id: input.req("KeyId"),
        import_token: input.req_blob("ImportToken"),
        encrypted_key_material: input.req_blob("EncryptedKeyMaterial"),
        valid_to: input.timestamp("ValidTo")?,
        expiration_model: input.enum_value("ExpirationModel")?,
        import_type: input.enum_value("ImportType")?,
        key_material_description: input.str("KeyMaterialDescription"),
        key_material_id: input.str("KeyMaterialId"),
    })?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .str("KeyMaterialId", &r.key_material_id);
    Ok(out)
}

pub(super) fn delete_imported_key_material(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.delete_imported_key_material(input.req("KeyId"), input.str("KeyMaterialId"))?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .str("KeyMaterialId", &r.key_material_id);
    Ok(out)
}
