//! The workloads: what one batch call of each does through the engine, the keys they need, and the
//! inputs prepared (untimed) before a point is measured.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use keyplane::ciphertext::blob_len;
use keyplane::{
    BatchOutputs, CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, EncryptionContext,
    Engine, GenerateDataKeyRequest, GenerateMacRequest, KeySpec, KeyUsage, MacAlgorithm,
    MessageType, ReEncryptRequest, SignRequest, SigningAlgorithm, VerifyMacRequest, VerifyRequest,
    WrittenItems,
};
use serde::{Deserialize, Serialize};

use crate::kept_rooms::KeptRooms;
use crate::BenchError;

/// RSA signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum RsaPadding {
    /// RSASSA-PSS with SHA-256
    Pss,
    /// RSASSA-PKCS1-v1_5 with SHA-256
    Pkcs1,
}

/// The largest message Sign (RAW) and GenerateMac take.
pub const MAX_SIGN_OR_MAC_MESSAGE: usize = 4096;
/// The data key size of the generate-data-key workload (AES_256).
pub const DATA_KEY_BYTES: usize = 32;

/// One kind of request the harness measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    Sign,
    Verify,
    GenerateMac,
    VerifyMac,
    /// Per item: GenerateDataKey, AES-256-GCM of the payload under the plaintext data key (in
    /// the caller), Decrypt of the encrypted data key, and opening the payload again.
    Envelope,
}

/// Which family of keys a workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Symmetric,
    Signing,
    Mac,
}

impl Workload {
    /// Every workload, in the order `all` runs them.
    pub const ALL: [Workload; 9] = [
        Workload::Encrypt,
        Workload::Decrypt,
        Workload::ReEncrypt,
        Workload::GenerateDataKey,
        Workload::Sign,
        Workload::Verify,
        Workload::GenerateMac,
        Workload::VerifyMac,
        Workload::Envelope,
    ];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Encrypt => "encrypt",
            Workload::Decrypt => "decrypt",
            Workload::ReEncrypt => "re-encrypt",
            Workload::GenerateDataKey => "generate-data-key",
            Workload::Sign => "sign",
            Workload::Verify => "verify",
            Workload::GenerateMac => "generate-mac",
            Workload::VerifyMac => "verify-mac",
            Workload::Envelope => "envelope",
        }
    }

    /// Parses the command-line spelling (also with underscores, or the service's operation name).
    pub fn parse(s: &str) -> Result<Workload, String> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        let found = Workload::ALL
            .into_iter()
            .find(|w| w.name() == t || w.name().replace('-', "") == t.replace('-', ""));
        found.ok_or_else(|| {
            format!(
                "unknown workload '{s}'; expected one of: {}, all",
                Workload::ALL.map(|w| w.name()).join(", ")
            )
        })
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Workload::Sign | Workload::Verify => KeyFamily::Signing,
            Workload::GenerateMac | Workload::VerifyMac => KeyFamily::Mac,
            _ => KeyFamily::Symmetric,
        }
    }

    /// Whether the message size is a parameter (GenerateDataKey makes 32-byte keys whatever
    /// `--size` says).
    pub fn uses_size(self) -> bool {
        self != Workload::GenerateDataKey
    }

    /// Whether the engine's plaintext limit applies to the message size.
    pub fn size_is_plaintext(self) -> bool {
        matches!(
            self,
            Workload::Encrypt | Workload::Decrypt | Workload::ReEncrypt
        )
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The signing algorithm the harness uses for a signing key spec.
pub fn signing_algorithm(spec: KeySpec, padding: RsaPadding) -> Option<SigningAlgorithm> {
    Some(match spec {
        KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => SigningAlgorithm::EcdsaSha256,
        KeySpec::EccNistP384 => SigningAlgorithm::EcdsaSha384,
        KeySpec::EccNistP521 => SigningAlgorithm::EcdsaSha512,
        KeySpec::EccNistEdwards25519 => SigningAlgorithm::Ed25519Sha512,
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => match padding {
            RsaPadding::Pss => SigningAlgorithm::RsassaPssSha256,
            RsaPadding::Pkcs1 => SigningAlgorithm::RsassaPkcs1V15Sha256,
        },
        _ => return None,
    })
}

/// The MAC algorithm of an HMAC key spec.
pub fn mac_algorithm(spec: KeySpec) -> Option<MacAlgorithm> {
    Some(match spec {
        KeySpec::Hmac224 => MacAlgorithm::HmacSha224,
        KeySpec::Hmac256 => MacAlgorithm::HmacSha256,
        KeySpec::Hmac384 => MacAlgorithm::HmacSha384,
        KeySpec::Hmac512 => MacAlgorithm::HmacSha512,
        _ => return None,
    })
}

/// The alias of the benchmark key of `spec` (reused from run to run in a durable store).
pub fn alias_for(spec: KeySpec) -> String {
    format!(
        "alias/keyplane-bench/{}",
        spec.as_str().to_ascii_lowercase()
    )
}

/// The destination key of the re-encrypt workload.
pub const REENCRYPT_DESTINATION_ALIAS: &str = "alias/keyplane-bench/symmetric-destination";

/// Makes sure `alias` names an enabled key of `spec`, creating both if the alias is missing.
pub fn ensure_key(engine: &Engine, alias: &str, spec: KeySpec) -> Result<(), BenchError> {
    match engine.describe_key(alias) {
        Ok(meta) => {
            if meta.key_spec != spec || !meta.enabled {
                return Err(BenchError::Setup(format!(
                    "{alias} exists in this store but is a {} key{}; the harness needs an \
                     enabled {spec} key there (delete or repoint the alias)",
                    meta.key_spec,
                    if meta.enabled { "" } else { " (disabled)" }
                )));
            }
            Ok(())
        }
        Err(keyplane::Error::NotFound(_)) => {
            let usage = match spec {
                KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                    KeyUsage::GenerateVerifyMac
                }
                KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
                _ => KeyUsage::SignVerify,
            };
            let key = engine
                .create_key(CreateKeyRequest {
                    description: Some("keyplane-bench: benchmark key".into()),
                    key_spec: Some(spec),
                    key_usage: Some(usage),
                    ..Default::default()
                })
                .map_err(|e| BenchError::Setup(format!("creating a {spec} key: {e}")))?;
            engine
                .create_alias(alias, &key.key_id)
                .map_err(|e| BenchError::Setup(format!("creating {alias}: {e}")))
        }
        Err(e) => Err(BenchError::Setup(format!("looking up {alias}: {e}"))),
    }
}

/// The encryption context every symmetric request carries (unless `--no-context`).
pub fn bench_context() -> EncryptionContext {
    [("tenant", "acme-corp"), ("purpose", "benchmark")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `count` distinct messages of `len` bytes.
pub fn messages(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            (0..len)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
                .collect()
        })
        .collect()
}

/// One batch call (or, for baselines, one chunk of a loop): returns how many operations it did.
/// Where an encrypt or decrypt point puts its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outputs {
    /// The allocating batch calls: one vector per item (`encrypt_batch`).
    Allocated,
    /// Caller buffers, one per item (`encrypt_batch_into`).
    Into,
    /// One buffer the caller keeps from batch to batch (`encrypt_batch_to`).
    Kept,
}

pub type BatchFn<'a> = Box<dyn FnMut() -> Result<u64, String> + 'a>;

/// Fails with the first failed item of a batch, so that no point measures a batch of errors.
fn check<T>(results: &[keyplane::Result<T>], what: &str) -> Result<u64, String> {
    if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
        return Err(format!("{what}: item {i} of {} failed: {e}", results.len()));
    }
    Ok(results.len() as u64)
}

/// As [`check`], for a batch into caller buffers (read in place, as a caller would).
fn check_written(results: &WrittenItems, what: &str) -> Result<u64, String> {
    if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
        return Err(format!("{what}: item {i} of {} failed: {e}", results.len()));
    }
    Ok(results.len() as u64)
}

fn check_outputs(out: &BatchOutputs, what: &str) -> Result<u64, String> {
    if let Some((i, Err(e))) = out.iter().enumerate().find(|(_, r)| r.is_err()) {
        return Err(format!("{what}: item {i} of {} failed: {e}", out.len()));
    }
    Ok(out.len() as u64)
}

/// What a point needs, made before timing: messages, and the ciphertexts, signatures or MACs
/// that the decrypting and verifying workloads consume.
#[derive(Debug)]
pub struct Inputs {
    pub workload: Workload,
    pub alias: String,
    pub size: usize,
    pub batch: usize,
    pub signing_algorithm: Option<SigningAlgorithm>,
    pub mac_algorithm: Option<MacAlgorithm>,
    pub context: Option<EncryptionContext>,
    pub messages: Vec<Vec<u8>>,
    /// Ciphertext blobs (decrypt, re-encrypt), signatures (verify) or MACs (verify-mac).
    pub prepared: Vec<Vec<u8>>,
}

impl Inputs {
    /// Prepares a point's inputs with `setup` (an engine on the same store as the measured ones).
    pub fn prepare(
        setup: &Engine,
        workload: Workload,
        spec: KeySpec,
        size: usize,
        batch: usize,
        context: Option<EncryptionContext>,
        padding: RsaPadding,
    ) -> Result<Inputs, BenchError> {
        let alias = alias_for(spec);
        let signing_algorithm = signing_algorithm(spec, padding);
        let mac_algorithm = mac_algorithm(spec);
        let msg_len = if workload.uses_size() {
            size
        } else {
            DATA_KEY_BYTES
        };
        let messages = messages(batch, msg_len);
        let mut inputs = Inputs {
            workload,
            alias,
            size: msg_len,
            batch,
            signing_algorithm,
            mac_algorithm,
            context,
            messages,
            prepared: Vec::new(),
        };
        let failed = |e: String| BenchError::Setup(format!("preparing {workload} inputs: {e}"));
        match workload {
            Workload::Decrypt | Workload::ReEncrypt => {
                let requests: Vec<_> = inputs.encrypt_requests();
                let blobs = setup.encrypt_batch(&requests);
                check(&blobs, "encrypt").map_err(failed)?;
                inputs.prepared = blobs
                    .into_iter()
                    .map(|b| b.expect("checked").into_vec())
                    .collect();
            }
            Workload::Verify => {
                let algorithm = inputs.signing_algorithm.expect("a signing spec");
                let requests: Vec<_> = inputs
                    .messages
                    .iter()
                    .map(|m| SignRequest::new(&inputs.alias, m, algorithm))
                    .collect();
                let signatures = setup.sign_batch(&requests);
                check(&signatures, "sign").map_err(failed)?;
                inputs.prepared = signatures
                    .into_iter()
                    .map(|s| s.expect("checked"))
                    .collect();
            }
            Workload::VerifyMac => {
                let requests = inputs.mac_requests();
                let macs = setup.generate_mac_batch(&requests);
                check(&macs, "generate-mac").map_err(failed)?;
                inputs.prepared = macs
                    .into_iter()
                    .map(|s| s.expect("checked").to_vec())
                    .collect();
            }
            _ => {}
        }
        Ok(inputs)
    }

    fn encrypt_requests(&self) -> Vec<EncryptRequest<'_>> {
        self.messages
            .iter()
            .map(|m| {
                let r = EncryptRequest::new(&self.alias, m);
                match &self.context {
                    Some(c) => r.with_context(c),
                    None => r,
                }
            })
            .collect()
    }

    fn decrypt_requests<'a>(&'a self, blobs: &'a [Vec<u8>]) -> Vec<DecryptRequest<'a>> {
        blobs
            .iter()
            .map(|b| {
                let r = DecryptRequest::new(b);
                match &self.context {
                    Some(c) => r.with_context(c),
                    None => r,
                }
            })
            .collect()
    }

    fn mac_requests(&self) -> Vec<GenerateMacRequest<'_>> {
        let mac_algorithm = self.mac_algorithm.expect("an HMAC spec");
        self.messages
            .iter()
            .map(|m| GenerateMacRequest {
                key_id: &self.alias,
                message: m,
                mac_algorithm,
            })
            .collect()
    }

    /// The room an item needs in an `--into` point's output buffer.
    pub fn into_room(&self) -> usize {
        match self.workload {
            Workload::Decrypt => self.size,
            _ => blob_len(self.size),
        }
    }

    /// A closure that runs one batch call of the workload on `engine` (each caller thread makes
    /// its own: request vectors and output buffers are per caller). With `outputs` `Into`, its
    /// output buffer is a list of rooms leased from `rooms` for the closure's life, kept from call
    /// to call as a caller keeps its buffers ([`KeptRooms`]); with none free, every call fails
    /// rather than measure another way of passing buffers.
    pub fn batch_fn<'a, 'b>(
        &'a self,
        engine: &'a Engine,
        outputs: Outputs,
        rooms: Option<&'a KeptRooms<'b>>,
    ) -> BatchFn<'a> {
        let lease = match outputs {
            Outputs::Into => rooms.and_then(|r| r.lease(self.batch)),
            _ => None,
        };
        if outputs == Outputs::Into
            && matches!(self.workload, Workload::Encrypt | Workload::Decrypt)
            && lease.is_none()
        {
            let batch = self.batch;
            return Box::new(move || {
                Err(format!(
                    "no kept output buffer of {batch} rooms is free for this caller"
                ))
            });
        }
        match self.workload {
            Workload::Encrypt if outputs == Outputs::Kept => {
                let requests = self.encrypt_requests();
                let mut out = BatchOutputs::new();
                Box::new(move || {
                    engine.encrypt_batch_to(&requests, &mut out);
                    check_outputs(&out, "encrypt_batch_to")
                })
            }
            Workload::Decrypt if outputs == Outputs::Kept => {
                let requests = self.decrypt_requests(&self.prepared);
                let mut out = BatchOutputs::new();
                Box::new(move || {
                    engine.decrypt_batch_to(&requests, &mut out);
                    check_outputs(&out, "decrypt_batch_to")
                })
            }
            Workload::Encrypt if outputs == Outputs::Into => {
                let requests = self.encrypt_requests();
                let mut lease = lease.expect("leased above");
                Box::new(move || {
                    check_written(
                        &engine.encrypt_batch_into(&requests, &mut lease.list),
                        "encrypt_batch_into",
                    )
                })
            }
            Workload::Encrypt => {
                let requests = self.encrypt_requests();
                Box::new(move || check(&engine.encrypt_batch(&requests), "encrypt_batch"))
            }
            Workload::Decrypt if outputs == Outputs::Into => {
                let requests = self.decrypt_requests(&self.prepared);
                let mut lease = lease.expect("leased above");
                Box::new(move || {
                    check_written(
                        &engine.decrypt_batch_into(&requests, &mut lease.list),
                        "decrypt_batch_into",
                    )
                })
            }
            Workload::Decrypt => {
                let requests = self.decrypt_requests(&self.prepared);
                Box::new(move || check(&engine.decrypt_batch(&requests), "decrypt_batch"))
            }
            Workload::ReEncrypt => {
                let requests: Vec<ReEncryptRequest<'_>> = self
                    .prepared
                    .iter()
                    .map(|b| {
                        let mut r = ReEncryptRequest::new(b, REENCRYPT_DESTINATION_ALIAS);
                        r.source_encryption_context = self.context.as_ref();
                        r.destination_encryption_context = self.context.as_ref();
                        r
                    })
                    .collect();
                Box::new(move || check(&engine.re_encrypt_batch(&requests), "re_encrypt_batch"))
            }
            Workload::GenerateDataKey => {
                let requests = self.data_key_requests();
                Box::new(move || {
                    check(
                        &engine.generate_data_key_batch(&requests),
                        "generate_data_key_batch",
                    )
                })
            }
            Workload::Sign => {
                let algorithm = self.signing_algorithm.expect("a signing spec");
                let requests: Vec<_> = self
                    .messages
                    .iter()
                    .map(|m| SignRequest::new(&self.alias, m, algorithm))
                    .collect();
                Box::new(move || check(&engine.sign_batch(&requests), "sign_batch"))
            }
            Workload::Verify => {
                let algorithm = self.signing_algorithm.expect("a signing spec");
                let requests: Vec<_> = self
                    .messages
                    .iter()
                    .zip(&self.prepared)
                    .map(|(m, s)| VerifyRequest {
                        key_id: &self.alias,
                        message: m,
                        message_type: MessageType::Raw,
                        signature: s,
                        signing_algorithm: algorithm,
                    })
                    .collect();
                Box::new(move || check(&engine.verify_batch(&requests), "verify_batch"))
            }
            Workload::GenerateMac if outputs == Outputs::Kept => {
                let requests = self.mac_requests();
                let mut out = BatchOutputs::new();
                Box::new(move || {
                    engine.generate_mac_batch_to(&requests, &mut out);
                    check_outputs(&out, "generate_mac_batch_to")
                })
            }
            Workload::GenerateMac => {
                let requests = self.mac_requests();
                Box::new(move || check(&engine.generate_mac_batch(&requests), "generate_mac_batch"))
            }
            Workload::VerifyMac => {
                let mac_algorithm = self.mac_algorithm.expect("an HMAC spec");
                let requests: Vec<_> = self
                    .messages
                    .iter()
                    .zip(&self.prepared)
                    .map(|(m, mac)| VerifyMacRequest {
                        key_id: &self.alias,
                        message: m,
                        mac,
                        mac_algorithm,
                    })
                    .collect();
                Box::new(move || check(&engine.verify_mac_batch(&requests), "verify_mac_batch"))
            }
            Workload::Envelope => {
                let requests = self.data_key_requests();
                let messages = &self.messages;
                let context = self.context.as_ref();
                Box::new(move || envelope_batch(engine, &requests, messages, context))
            }
        }
    }

    fn data_key_requests(&self) -> Vec<GenerateDataKeyRequest<'_>> {
        (0..self.batch)
            .map(|_| {
                let r = GenerateDataKeyRequest::new(&self.alias, DataKeySpec::Aes256);
                match &self.context {
                    Some(c) => r.with_context(c),
                    None => r,
                }
            })
            .collect()
    }
}

/// One envelope batch: data keys from the engine, payloads sealed locally under them, then the
/// data keys decrypted by the engine and the payloads opened (and checked) locally.
fn envelope_batch(
    engine: &Engine,
    requests: &[GenerateDataKeyRequest<'_>],
    payloads: &[Vec<u8>],
    context: Option<&EncryptionContext>,
) -> Result<u64, String> {
    let keys = engine.generate_data_key_batch(requests);
    check(&keys, "generate_data_key_batch")?;
    let mut sealed = Vec::with_capacity(keys.len());
    for (key, payload) in keys.iter().zip(payloads) {
        let key = key.as_ref().expect("checked");
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key.plaintext.expose()).map_err(|_| "data key length")?,
        );
        let mut buf = Vec::with_capacity(payload.len() + AES_256_GCM.tag_len());
        buf.extend_from_slice(payload);
        // A data key seals one payload, so a fixed nonce is unique for it.
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        )
        .map_err(|_| "local seal failed")?;
        sealed.push(buf);
    }
    let decrypts: Vec<DecryptRequest<'_>> = keys
        .iter()
        .map(|k| {
            let r = DecryptRequest::new(&k.as_ref().expect("checked").ciphertext_blob);
            match context {
                Some(c) => r.with_context(c),
                None => r,
            }
        })
        .collect();
    let opened_keys = engine.decrypt_batch(&decrypts);
    check(&opened_keys, "decrypt_batch (data keys)")?;
    for ((key, mut buf), payload) in opened_keys.iter().zip(sealed).zip(payloads) {
        let key = key.as_ref().expect("checked");
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| "data key length")?,
        );
        let n = aead
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                &mut buf,
            )
            .map_err(|_| "a payload did not open under its decrypted data key")?
            .len();
        if n != payload.len() {
            return Err("an opened payload has the wrong length".into());
        }
    }
    Ok(requests.len() as u64)
}
