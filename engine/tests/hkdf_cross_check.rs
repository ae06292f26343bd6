//! `AesGcmKey::derive` (HKDF-SHA256 in aws-lc) cross-checked against an independent
//! implementation, RustCrypto `hkdf` + `sha2`: both must yield the same AES-256 key, shown by
//! sealing one message to identical bytes. The reference itself is first checked against
//! RFC 5869's published test case 1, so the cross-check cannot pass on a broken reference.

use hkdf::Hkdf;
use keyplane::less_safe::aes_gcm::{AesGcmKey, NONCE_LEN, TAG_LEN};
use keyplane::LockPolicy;
use keyplane::LockedBytes;
use sha2::Sha256;

/// RustCrypto HKDF-SHA256 of 32 bytes: the reference derivation.
fn reference_okm(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

fn seal(key: &AesGcmKey, nonce: &[u8; NONCE_LEN], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; pt.len() + TAG_LEN];
    let (ct, tag) = out.split_at_mut(pt.len());
    let tag: &mut [u8; TAG_LEN] = tag.try_into().unwrap();
    key.seal(nonce, aad, pt, ct, tag).unwrap();
    out
}

/// Derives with the engine and builds from the reference OKM; both seal `message` alike.
fn assert_same_key(ikm: &[u8], salt: &[u8], info: &[u8]) {
    let locked_ikm = LockedBytes::copy_from(ikm, LockPolicy::Require).unwrap();
    let derived = AesGcmKey::derive(&locked_ikm, salt, info, LockPolicy::Require).unwrap();
    assert_eq!(derived.key_bits(), 256);
    let reference = AesGcmKey::new(&reference_okm(ikm, salt, info), LockPolicy::Require).unwrap();
    let nonce = [0x24u8; NONCE_LEN];
    let message = b"the same key seals the same bytes, tag included";
    let a = seal(&derived, &nonce, b"aad", message);
    let b = seal(&reference, &nonce, b"aad", message);
    assert_eq!(
        hex::encode(&a),
        hex::encode(&b),
        "ikm {} bytes, salt {} bytes, info {} bytes",
        ikm.len(),
        salt.len(),
        info.len()
    );
    // And a key that differs in one derivation input does not: the comparison discriminates.
    let mut other_info = info.to_vec();
    other_info.push(0);
    let other =
        AesGcmKey::new(&reference_okm(ikm, salt, &other_info), LockPolicy::Require).unwrap();
    assert_ne!(a, seal(&other, &nonce, b"aad", message));
}

/// RFC 5869 appendix A.1 (SHA-256, basic test case): the reference reproduces the published
/// OKM, whose first 32 bytes are what a 32-byte derivation yields.
#[test]
fn reference_matches_rfc5869_test_case_1() {
    let ikm = [0x0bu8; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    let published_okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                         34007208d5b887185865";
    let published_prk = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";

    let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
    assert_eq!(hex::encode(prk), published_prk);
    let mut okm = [0u8; 42];
    hk.expand(&info, &mut okm).unwrap();
    assert_eq!(hex::encode(okm), published_okm);
    assert_eq!(
        hex::encode(reference_okm(&ikm, &salt, &info)),
        published_okm[..64],
        "a 32-byte derivation is the published OKM's prefix"
    );
}

/// The engine's derivation on RFC 5869 test case 1's inputs is the published OKM prefix.
#[test]
fn engine_derive_matches_rfc5869_test_case_1() {
    let ikm = [0x0bu8; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    let published_prefix =
        hex::decode("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf").unwrap();
    let locked_ikm = LockedBytes::copy_from(&ikm, LockPolicy::Require).unwrap();
    let derived = AesGcmKey::derive(&locked_ikm, &salt, &info, LockPolicy::Require).unwrap();
    let published = AesGcmKey::new(&published_prefix, LockPolicy::Require).unwrap();
    let nonce = [0u8; NONCE_LEN];
    assert_eq!(
        seal(&derived, &nonce, b"", b"rfc 5869"),
        seal(&published, &nonce, b"", b"rfc 5869")
    );
}

/// The shapes the engine derives with (32-byte material, 32-byte salt, label ‖ id ‖ version
/// info) and edge cases (empty salt and info, long inputs), over deterministic pseudo-random
/// inputs.
#[test]
fn engine_derive_matches_rustcrypto_hkdf() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                // xorshift64*: deterministic, so a failure reproduces.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    };
    let mut cases = 0;
    for (ikm_len, salt_len, info_len) in [
        (32, 32, 52),
        (32, 32, 0),
        (32, 0, 52),
        (32, 0, 0),
        (16, 13, 10),
        (64, 32, 52),
        (200, 300, 255),
        (1, 1, 1),
    ] {
        for _ in 0..8 {
            let (ikm, salt, info) = (bytes(ikm_len), bytes(salt_len), bytes(info_len));
            assert_same_key(&ikm, &salt, &info);
            cases += 1;
        }
    }
    println!("HKDF-SHA256 cross-check: {cases} derivations identical");
    assert_eq!(cases, 64);
}
