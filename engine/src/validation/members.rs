//! The glue between request types and the table: each data-plane request lists its members as
//! `(model member name, value)`. Members held as Rust enums are valid by construction and are not
//! listed; their strings are checked where they are parsed (each enum's `FromStr`).

use super::{check, check_members, rules, MaxLength, Value};

/// The table's member `$name` of operation `$operation` (model spellings), found when the crate
/// is compiled: a misspelt name fails the build.
macro_rules! member {
    ($operation:ident . $name:literal) => {{
        const MEMBER: &super::Member = rules::$operation.member_named($name);
        MEMBER
    }};
}
use crate::dataplane::{
    DecryptRequest, DeriveSharedSecretRequest, EncryptRequest, GenerateDataKeyPairRequest,
    GenerateDataKeyRequest, GenerateMacRequest, ReEncryptRequest, SignRequest, VerifyMacRequest,
    VerifyRequest,
};
use crate::error::Result;

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(s)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Value::Null, Value::Str)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Blob(b)
    }
}

impl From<u32> for Value<'_> {
    fn from(n: u32) -> Self {
        Value::Int(i64::from(n))
    }
}

impl From<Option<u32>> for Value<'_> {
    fn from(n: Option<u32>) -> Self {
        n.map_or(Value::Null, Value::from)
    }
}

impl From<usize> for Value<'_> {
    fn from(n: usize) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<Option<usize>> for Value<'_> {
    fn from(n: Option<usize>) -> Self {
        n.map_or(Value::Null, Value::from)
    }
}

/// The engine's configured limits that replace the model's (see the module's documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// [`crate::EngineConfig::max_plaintext_bytes`].
    pub(crate) max_plaintext: usize,
}

impl Limits {
    fn plaintext(&self) -> MaxLength {
        MaxLength {
            member: "Plaintext",
            max: self.max_plaintext,
        }
    }

    /// The largest ciphertext blob: the model's 6144, or more when plaintexts may be larger.
    fn ciphertext(&self) -> MaxLength {
        MaxLength {
            member: "CiphertextBlob",
            max: crate::ciphertext::blob_len(self.max_plaintext).max(6144),
        }
    }
}

/// A request the table can check.
pub(crate) trait Validate {
    fn validate(&self, limits: &Limits) -> Result<()>;
}

impl Validate for EncryptRequest<'_> {
    fn validate(&self, limits: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(ENCRYPT."KeyId"), self.key_id.into()),
                (member!(ENCRYPT."Plaintext"), self.plaintext.into()),
            ],
            &[limits.plaintext()],
        )
    }
}

impl Validate for DecryptRequest<'_> {
    fn validate(&self, limits: &Limits) -> Result<()> {
        check_members(
            &[
                (
                    member!(DECRYPT."CiphertextBlob"),
                    self.ciphertext_blob.into(),
                ),
                (member!(DECRYPT."KeyId"), self.key_id.into()),
            ],
            &[limits.ciphertext()],
        )
    }
}

impl Validate for ReEncryptRequest<'_> {
    fn validate(&self, limits: &Limits) -> Result<()> {
        check_members(
            &[
                (
                    member!(RE_ENCRYPT."CiphertextBlob"),
                    self.ciphertext_blob.into(),
                ),
                (member!(RE_ENCRYPT."SourceKeyId"), self.source_key_id.into()),
                (
                    member!(RE_ENCRYPT."DestinationKeyId"),
                    self.destination_key_id.into(),
                ),
            ],
            &[limits.ciphertext()],
        )
    }
}

impl GenerateDataKeyRequest<'_> {
    pub(crate) fn validate_as(&self, without_plaintext: bool) -> Result<()> {
        let operation = if without_plaintext {
            &rules::GENERATE_DATA_KEY_WITHOUT_PLAINTEXT
        } else {
            &rules::GENERATE_DATA_KEY
        };
        check(
            operation,
            &[
                ("KeyId", self.key_id.into()),
                ("NumberOfBytes", self.number_of_bytes.into()),
            ],
            &[],
        )
    }
}

impl GenerateDataKeyPairRequest<'_> {
    pub(crate) fn validate_as(&self, without_plaintext: bool) -> Result<()> {
        let operation = if without_plaintext {
            &rules::GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT
        } else {
            &rules::GENERATE_DATA_KEY_PAIR
        };
        check(operation, &[("KeyId", self.key_id.into())], &[])
    }
}

impl Validate for SignRequest<'_> {
    fn validate(&self, _: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(SIGN."KeyId"), self.key_id.into()),
                (member!(SIGN."Message"), self.message.into()),
            ],
            &[],
        )
    }
}

impl Validate for VerifyRequest<'_> {
    fn validate(&self, _: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(VERIFY."KeyId"), self.key_id.into()),
                (member!(VERIFY."Message"), self.message.into()),
                (member!(VERIFY."Signature"), self.signature.into()),
            ],
            &[],
        )
    }
}

impl Validate for GenerateMacRequest<'_> {
    fn validate(&self, _: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(GENERATE_MAC."KeyId"), self.key_id.into()),
                (member!(GENERATE_MAC."Message"), self.message.into()),
            ],
            &[],
        )
    }
}

impl Validate for VerifyMacRequest<'_> {
    fn validate(&self, _: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(VERIFY_MAC."KeyId"), self.key_id.into()),
                (member!(VERIFY_MAC."Message"), self.message.into()),
                (member!(VERIFY_MAC."Mac"), self.mac.into()),
            ],
            &[],
        )
    }
}

impl Validate for DeriveSharedSecretRequest<'_> {
    fn validate(&self, _: &Limits) -> Result<()> {
        check_members(
            &[
                (member!(DERIVE_SHARED_SECRET."KeyId"), self.key_id.into()),
                (
                    member!(DERIVE_SHARED_SECRET."PublicKey"),
                    self.public_key.into(),
                ),
            ],
            &[],
        )
    }
}

/// GenerateRandom's `NumberOfBytes`.
pub(crate) fn generate_random(number_of_bytes: usize) -> Result<()> {
    check_members(
        &[(
            member!(GENERATE_RANDOM."NumberOfBytes"),
            number_of_bytes.into(),
        )],
        &[],
    )
}

/// The operations whose only member the engine takes is `KeyId`.
pub(crate) fn key_id(action: crate::access::Action, key_id: &str) -> Result<()> {
    super::check_request(action, &[("KeyId", key_id.into())])
}

/// The items of a batch that fail their checks, with their errors (no allocation when none do).
fn refused<R>(requests: &[R], validate: impl Fn(&R) -> Result<()>) -> Vec<(usize, crate::Error)> {
    let mut refused = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        if let Err(e) = validate(request) {
            refused.push((i, e));
        }
    }
    refused
}

/// Puts each refused item's validation error in its place among a batch's results, calling
/// `clear(i)` for each so that a caller buffer never keeps the output of a refused request.
fn overlay<T>(
    results: &mut [Result<T>],
    refused: Vec<(usize, crate::Error)>,
    mut clear: impl FnMut(usize),
) {
    for (i, e) in refused {
        if let Some(slot) = results.get_mut(i) {
            *slot = Err(e);
            clear(i);
        }
    }
}

/// Checks every item of a batch, runs the batch (over all items: their results are
/// independent), and puts each refused item's validation error in its place.
pub(crate) fn batch<R, T>(
    requests: &[R],
    validate: impl Fn(&R) -> Result<()>,
    run: impl FnOnce() -> Vec<Result<T>>,
) -> Vec<Result<T>> {
    let refused = refused(requests, validate);
    let mut results = run();
    overlay(&mut results, refused, |_| {});
    results
}
