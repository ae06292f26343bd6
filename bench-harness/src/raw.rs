//! The baselines: plain aws-lc-rs loops on one thread doing the same primitive on the same
//! messages as a point, with none of the engine's work (key resolution, authorisation, derived
//! keys, the blob header, per-item results). The ceiling for one core.
//!
//! - encrypt: `LessSafeKey::seal_in_place_separate_tag`, AES-256-GCM, counter nonces, the encoded
//!   encryption context as AAD, one output `Vec` (ciphertext ‖ tag) per message, a batch's worth
//!   of them alive at once as the engine's batch results are (with `--into`: into one
//!   preallocated buffer per message, as `encrypt_batch_into`);
//! - decrypt: `open_in_place` of a copy of each ciphertext (the engine also returns a fresh
//!   plaintext per message); re-encrypt: open with one key, seal with another;
//! - generate-data-key: 32 random bytes per key, drawn 4 KiB at a time (as the engine does), each
//!   sealed as above;
//! - sign / verify: the aws-lc-rs key pair's `sign`, or a parsed public key's `verify_sig`;
//! - generate-mac / verify-mac: `hmac::sign` / `hmac::verify`;
//! - envelope: a random data key, wrapped (sealed) under a master key; the payload sealed under the
//!   data key; the data key unwrapped; the payload opened.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey, UnparsedPublicKey};
use keyplane::{KeySpec, MacAlgorithm, SigningAlgorithm};

use crate::workload::{BatchFn, Inputs, Workload};
use crate::BenchError;

/// An AES-256-GCM key; nonces are a per-closure prefix and a counter, so no two closures (or
/// repeats) of one run reuse a nonce.
struct AeadKey {
    key: LessSafeKey,
    next_prefix: AtomicU32,
}

impl AeadKey {
    fn new() -> Result<Self, BenchError> {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw).map_err(|_| internal("random key"))?;
        Ok(AeadKey {
            key: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| internal("key"))?,
            ),
            next_prefix: AtomicU32::new(0),
        })
    }

    fn sealer(&self) -> Sealer<'_> {
        Sealer {
            key: &self.key,
            prefix: self.next_prefix.fetch_add(1, Ordering::Relaxed),
            counter: 0,
        }
    }
}

/// Seals under an [`AeadKey`] with counter nonces.
struct Sealer<'k> {
    key: &'k LessSafeKey,
    prefix: u32,
    counter: u64,
}

impl Sealer<'_> {
    fn nonce(&mut self) -> (Nonce, [u8; 12]) {
        self.counter += 1;
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.prefix.to_be_bytes());
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        (Nonce::assume_unique_for_key(n), n)
    }

    /// ciphertext ‖ tag in a new `Vec`.
    fn seal(&mut self, aad: &[u8], m: &[u8]) -> Result<(Vec<u8>, [u8; 12]), String> {
        let (nonce, bytes) = self.nonce();
        let mut out = Vec::with_capacity(m.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(m);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out)
            .map_err(|_| "seal failed")?;
        out.extend_from_slice(tag.as_ref());
        Ok((out, bytes))
    }

    /// ciphertext ‖ tag into `out` (at least `m.len() + 16` bytes).
    fn seal_into(&mut self, aad: &[u8], m: &[u8], out: &mut [u8]) -> Result<(), String> {
        let (nonce, _) = self.nonce();
        let (body, rest) = out.split_at_mut(m.len());
        body.copy_from_slice(m);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), body)
            .map_err(|_| "seal failed")?;
        rest[..AES_256_GCM.tag_len()].copy_from_slice(tag.as_ref());
        Ok(())
    }
}

fn open(key: &LessSafeKey, nonce: [u8; 12], aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, String> {
    let mut buf = ct.to_vec();
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| "open failed")?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// Many bare AES-256-GCM keys, one aws-lc-rs `LessSafeKey` each (its expanded key and GHASH
/// table in aws-lc's own allocation): `many-keys`' ceiling for a cold key. A seal under one of
/// them, picked among many, costs what the hardware charges for a key whose cipher context is
/// out of cache, with none of the engine's work.
pub(crate) struct ManyAeadKeys {
    keys: Vec<LessSafeKey>,
    counter: u64,
}

impl ManyAeadKeys {
    pub(crate) fn new() -> Self {
        ManyAeadKeys {
            keys: Vec::new(),
            counter: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Adds keys until there are `n`. Their bytes are random: each key's context is its own.
    pub(crate) fn grow_to(&mut self, n: usize) -> Result<(), BenchError> {
        self.keys.reserve(n.saturating_sub(self.keys.len()));
        let mut raw = [0u8; 32];
        while self.keys.len() < n {
            rand::fill(&mut raw).map_err(|_| internal("random key"))?;
            let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| internal("key"))?;
            self.keys.push(LessSafeKey::new(key));
        }
        Ok(())
    }

    /// Seals `m` under key `k` into `out` (at least `m.len() + 16` bytes), as [`Sealer`] does,
    /// with one counter for the set (so no nonce repeats under any key).
    pub(crate) fn seal_into(
        &mut self,
        k: usize,
        m: &[u8],
        out: &mut [u8],
    ) -> Result<(), BenchError> {
        let key = self.keys.get(k).ok_or_else(|| internal("key index"))?;
        let mut sealer = Sealer {
            key,
            prefix: 0,
            counter: self.counter,
        };
        let sealed = sealer.seal_into(&[], m, out);
        self.counter = sealer.counter;
        sealed.map_err(|_| internal("seal"))
    }
}

/// The outputs of one batch's worth of operations, kept alive together and dropped together
/// before the next batch's are made, as a caller drops the engine's batch results before its next
/// call (so the baseline pays the same allocation, allocator and cache traffic).
struct Held<T> {
    items: Vec<T>,
    batch: usize,
}

impl<T> Held<T> {
    fn new(batch: usize) -> Self {
        Held {
            items: Vec::with_capacity(batch),
            batch: batch.max(1),
        }
    }

    fn keep(&mut self, make: impl FnOnce() -> Result<T, String>) -> Result<(), String> {
        if self.items.len() == self.batch {
            self.items.clear();
        }
        self.items.push(make()?);
        Ok(())
    }
}

fn internal(what: &str) -> BenchError {
    BenchError::Setup(format!("raw baseline: {what} failed"))
}

enum Signer {
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair, &'static sig::RsaSignatureEncoding),
}

impl Signer {
    fn new(spec: KeySpec, algorithm: SigningAlgorithm) -> Result<Self, BenchError> {
        let ecdsa = |alg| {
            sig::EcdsaKeyPair::generate(alg)
                .map(Signer::Ecdsa)
                .map_err(|_| internal("ECDSA key generation"))
        };
        let padding: &'static sig::RsaSignatureEncoding = match algorithm {
            SigningAlgorithm::RsassaPkcs1V15Sha256 => &sig::RSA_PKCS1_SHA256,
            _ => &sig::RSA_PSS_SHA256,
        };
        let rsa = |size| {
            sig::RsaKeyPair::generate(size)
                .map(|k| Signer::Rsa(k, padding))
                .map_err(|_| internal("RSA key generation"))
        };
        use aws_lc_rs::rsa::KeySize;
        match spec {
            KeySpec::EccNistP256 => ecdsa(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
            KeySpec::EccNistP384 => ecdsa(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
            KeySpec::EccNistP521 => ecdsa(&sig::ECDSA_P521_SHA512_ASN1_SIGNING),
            KeySpec::EccSecgP256k1 => ecdsa(&sig::ECDSA_P256K1_SHA256_ASN1_SIGNING),
            KeySpec::EccNistEdwards25519 => sig::Ed25519KeyPair::generate()
                .map(Signer::Ed25519)
                .map_err(|_| internal("Ed25519 key generation")),
            KeySpec::Rsa2048 => rsa(KeySize::Rsa2048),
            KeySpec::Rsa3072 => rsa(KeySize::Rsa3072),
            KeySpec::Rsa4096 => rsa(KeySize::Rsa4096),
            other => Err(BenchError::Usage(format!(
                "{other} is not a signing key spec"
            ))),
        }
    }

    fn sign(&self, rng: &SystemRandom, m: &[u8]) -> Result<Vec<u8>, String> {
        Ok(match self {
            Signer::Ecdsa(pair) => pair.sign(rng, m).map_err(|_| "sign")?.as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.sign(m).as_ref().to_vec(),
            Signer::Rsa(pair, padding) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(*padding, rng, m, &mut out).map_err(|_| "sign")?;
                out
            }
        })
    }

    /// The public key, parsed once (as the engine caches its verifier).
    fn verifier(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
    ) -> Result<ParsedPublicKey, BenchError> {
        let alg: &'static dyn sig::VerificationAlgorithm = match (spec, algorithm) {
            (KeySpec::EccNistP256, _) => &sig::ECDSA_P256_SHA256_ASN1,
            (KeySpec::EccNistP384, _) => &sig::ECDSA_P384_SHA384_ASN1,
            (KeySpec::EccNistP521, _) => &sig::ECDSA_P521_SHA512_ASN1,
            (KeySpec::EccSecgP256k1, _) => &sig::ECDSA_P256K1_SHA256_ASN1,
            (KeySpec::EccNistEdwards25519, _) => &sig::ED25519,
            (_, SigningAlgorithm::RsassaPkcs1V15Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
            _ => &sig::RSA_PSS_2048_8192_SHA256,
        };
        let der = match self {
            Signer::Ecdsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Signer::Ed25519(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Signer::Rsa(pair, _) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| internal("public key encoding"))?;
        UnparsedPublicKey::new(alg, der)
            .parse()
            .map_err(|_| internal("public key parsing"))
    }
}

fn hmac_algorithm(alg: MacAlgorithm) -> hmac::Algorithm {
    match alg {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    }
}

/// What a baseline needs, made once per point (keys, and the ciphertexts, signatures or tags the
/// opening and verifying loops consume); each measured closure borrows it.
pub struct RawState<'i> {
    inputs: &'i Inputs,
    aad: Vec<u8>,
    into: bool,
    rng: SystemRandom,
    key: AeadKey,
    /// Re-encrypt's destination key.
    other: AeadKey,
    signer: Option<Signer>,
    verifier: Option<ParsedPublicKey>,
    hmac_key: Option<hmac::Key>,
    /// (ciphertext ‖ tag, nonce) per message (decrypt, re-encrypt).
    sealed: Vec<(Vec<u8>, [u8; 12])>,
    /// Signatures or tags per message (verify, verify-mac).
    tags: Vec<Vec<u8>>,
}

impl std::fmt::Debug for RawState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawState")
            .field("workload", &self.inputs.workload)
            .finish()
    }
}

impl<'i> RawState<'i> {
    pub fn new(inputs: &'i Inputs, spec: KeySpec, into: bool) -> Result<Self, BenchError> {
        let aad = keyplane::context::encode(inputs.context.as_ref())
            .map_err(|e| BenchError::Setup(format!("encoding the context: {e}")))?;
        let mut state = RawState {
            inputs,
            aad,
            into,
            rng: SystemRandom::new(),
            key: AeadKey::new()?,
            other: AeadKey::new()?,
            signer: None,
            verifier: None,
            hmac_key: None,
            sealed: Vec::new(),
            tags: Vec::new(),
        };
        let msgs = &inputs.messages;
        match inputs.workload {
            Workload::Decrypt | Workload::ReEncrypt => {
                let mut sealer = state.key.sealer();
                state.sealed = msgs
                    .iter()
                    .map(|m| sealer.seal(&state.aad, m))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(BenchError::Setup)?;
            }
            Workload::Sign | Workload::Verify => {
                let algorithm = inputs.signing_algorithm.expect("a signing spec");
                let signer = Signer::new(spec, algorithm)?;
                if inputs.workload == Workload::Verify {
                    state.tags = msgs
                        .iter()
                        .map(|m| signer.sign(&state.rng, m))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(BenchError::Setup)?;
                    state.verifier = Some(signer.verifier(spec, algorithm)?);
                }
                state.signer = Some(signer);
            }
            Workload::GenerateMac | Workload::VerifyMac => {
                let algorithm = hmac_algorithm(inputs.mac_algorithm.expect("an HMAC spec"));
                let key = hmac::Key::generate(algorithm, &state.rng)
                    .map_err(|_| internal("HMAC key generation"))?;
                if inputs.workload == Workload::VerifyMac {
                    state.tags = msgs
                        .iter()
                        .map(|m| hmac::sign(&key, m).as_ref().to_vec())
                        .collect();
                }
                state.hmac_key = Some(key);
            }
            _ => {}
        }
        Ok(state)
    }

    /// A loop closure: each call does `chunk` operations, cycling through the point's messages
    /// (the same working set as its batch).
    pub fn batch_fn(&self, chunk: usize) -> BatchFn<'_> {
        self.batch_fn_over(0..self.inputs.messages.len(), chunk)
    }

    /// As [`Self::batch_fn`], cycling through the messages `over` only (all of them if `over` is
    /// empty or out of range), with a batch's worth of results being `over`'s length: one
    /// thread's part of a batch in [`crate::split`].
    pub fn batch_fn_over(&self, over: std::ops::Range<usize>, chunk: usize) -> BatchFn<'_> {
        let msgs = &self.inputs.messages;
        let n = msgs.len();
        let (first, end) = if over.start < over.end && over.end <= n {
            (over.start, over.end)
        } else {
            (0, n)
        };
        let chunk = chunk.max(1);
        let mut at = first;
        let mut next = move || {
            let i = at;
            at = if at + 1 >= end { first } else { at + 1 };
            i
        };
        let n = end - first;
        let aad = &self.aad[..];
        let size = self.inputs.size;
        let tag_len = AES_256_GCM.tag_len();
        match self.inputs.workload {
            Workload::Encrypt if self.into => {
                let mut sealer = self.key.sealer();
                let stride = size + tag_len;
                let mut buffer = vec![0u8; stride * n];
                Box::new(move || {
                    for _ in 0..chunk {
                        let i = next();
                        sealer.seal_into(
                            aad,
                            &msgs[i],
                            &mut buffer[(i - first) * stride..(i - first + 1) * stride],
                        )?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Encrypt => {
                let mut sealer = self.key.sealer();
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        held.keep(|| Ok(sealer.seal(aad, &msgs[next()])?.0))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Decrypt if self.into => {
                let stride = size + tag_len;
                let mut buffer = vec![0u8; stride * n];
                let key = &self.key.key;
                let sealed = &self.sealed;
                Box::new(move || {
                    for _ in 0..chunk {
                        let i = next();
                        let (ct, nonce) = &sealed[i];
                        let buf = &mut buffer[(i - first) * stride..(i - first + 1) * stride];
                        buf.copy_from_slice(ct);
                        key.open_in_place(
                            Nonce::assume_unique_for_key(*nonce),
                            Aad::from(aad),
                            buf,
                        )
                        .map_err(|_| "open failed")?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Decrypt => {
                let key = &self.key.key;
                let sealed = &self.sealed;
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        let (ct, nonce) = &sealed[next()];
                        held.keep(|| open(key, *nonce, aad, ct))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::ReEncrypt => {
                let key = &self.key.key;
                let mut destination = self.other.sealer();
                let sealed = &self.sealed;
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        let (ct, nonce) = &sealed[next()];
                        let plain = open(key, *nonce, aad, ct)?;
                        held.keep(|| Ok(destination.seal(aad, &plain)?.0))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::GenerateDataKey => {
                let mut sealer = self.key.sealer();
                let mut pool = [0u8; 4096];
                let mut used = pool.len();
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        if used + 32 > pool.len() {
                            rand::fill(&mut pool).map_err(|_| "random")?;
                            used = 0;
                        }
                        let key = &pool[used..used + 32];
                        used += 32;
                        held.keep(|| Ok((key.to_vec(), sealer.seal(aad, key)?.0)))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Sign => {
                let signer = self.signer.as_ref().expect("made in new");
                let rng = &self.rng;
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        held.keep(|| signer.sign(rng, &msgs[next()]))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Verify => {
                let verifier = self.verifier.as_ref().expect("made in new");
                let signatures = &self.tags;
                Box::new(move || {
                    for _ in 0..chunk {
                        let i = next();
                        verifier
                            .verify_sig(&msgs[i], &signatures[i])
                            .map_err(|_| "a raw signature did not verify")?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::GenerateMac => {
                let key = self.hmac_key.as_ref().expect("made in new");
                let mut held = Held::new(n);
                Box::new(move || {
                    for _ in 0..chunk {
                        held.keep(|| Ok(hmac::sign(key, &msgs[next()]).as_ref().to_vec()))?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::VerifyMac => {
                let key = self.hmac_key.as_ref().expect("made in new");
                let tags = &self.tags;
                Box::new(move || {
                    for _ in 0..chunk {
                        let i = next();
                        hmac::verify(key, &msgs[i], &tags[i]).map_err(|_| "raw MAC mismatch")?;
                    }
                    Ok(chunk as u64)
                })
            }
            Workload::Envelope => {
                let mut master = self.key.sealer();
                let master_key = &self.key.key;
                let mut pool = [0u8; 4096];
                let mut used = pool.len();
                Box::new(move || {
                    for _ in 0..chunk {
                        if used + 32 > pool.len() {
                            rand::fill(&mut pool).map_err(|_| "random")?;
                            used = 0;
                        }
                        let data_key = pool[used..used + 32].to_vec();
                        used += 32;
                        let (wrapped, wrap_nonce) = master.seal(aad, &data_key)?;
                        let payload = &msgs[next()];
                        let aead = LessSafeKey::new(
                            UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| "key")?,
                        );
                        let mut buf = Vec::with_capacity(payload.len() + tag_len);
                        buf.extend_from_slice(payload);
                        aead.seal_in_place_append_tag(
                            Nonce::assume_unique_for_key([0; 12]),
                            Aad::empty(),
                            &mut buf,
                        )
                        .map_err(|_| "seal")?;
                        let unwrapped = open(master_key, wrap_nonce, aad, &wrapped)?;
                        let aead = LessSafeKey::new(
                            UnboundKey::new(&AES_256_GCM, &unwrapped).map_err(|_| "key")?,
                        );
                        let n = aead
                            .open_in_place(
                                Nonce::assume_unique_for_key([0; 12]),
                                Aad::empty(),
                                &mut buf,
                            )
                            .map_err(|_| "open")?
                            .len();
                        if n != payload.len() {
                            return Err("raw envelope length".into());
                        }
                    }
                    Ok(chunk as u64)
                })
            }
        }
    }
}
