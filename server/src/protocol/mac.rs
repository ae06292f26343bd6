//! HMAC keys: GenerateMac, VerifyMac.

use keyplane::{Engine, GenerateMacRequest, VerifyMacRequest};

use super::json::{Input, Out};
use super::reply::Fault;

pub(super) fn generate_mac(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = GenerateMacRequest {
        key_id: input.req("KeyId"),
        message: input.req_blob("Message"),
        mac_algorithm: input.required_enum("MacAlgorithm")?,
    };
    let r = engine.generate_mac(&request)?;
    let mut out = Out::new();
    out.blob("Mac", &r.mac)
        .str("MacAlgorithm", r.mac_algorithm.as_str())
        .str("KeyId", &r.key_id);
    Ok(out)
}

pub(super) fn verify_mac(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = VerifyMacRequest {
        key_id: input.req("KeyId"),
        message: input.req_blob("Message"),
        mac: input.req_blob("Mac"),
        mac_algorithm: input.required_enum("MacAlgorithm")?,
    };
    let r = engine.verify_mac(&request)?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .bool("MacValid", r.mac_valid)
        .str("MacAlgorithm", r.mac_algorithm.as_str());
    Ok(out)
}
