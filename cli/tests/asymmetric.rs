//! Asymmetric keys, HMAC keys and key agreement through the command line: sign and verify with the
//! signature checked by independent implementations (RustCrypto `p256`, and `openssl` when it is
//! installed) using the key from get-public-key; HMAC generate and verify; ECDH against a peer
//! key made with RustCrypto; data key pairs whose private key matches their public key. JSON in the
//! service's shapes.

mod common;

use common::*;
use p256::ecdsa::signature::{DigestVerifier, Verifier};
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};

fn b64d(text: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("a base64 string"))
        .unwrap()
}

/// `command` followed by `more`: one command's arguments, given again with an option added.
fn with<'a>(command: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [command, more].concat()
}

fn openssl_available() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn an_ecdsa_signature_made_by_keyplane_verifies_with_rustcrypto_and_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let created = json(
        d,
        &[
            "key",
            "create",
            "--key-spec",
            "ECC_NIST_P256",
            "--key-usage",
            "SIGN_VERIFY",
        ],
        b"",
    );
    assert_eq!(
        created["KeyMetadata"]["SigningAlgorithms"][0],
        "ECDSA_SHA_256"
    );
    let key = key_id(&created);
    let message = b"the quarterly numbers, final".to_vec();
    std::fs::write(d.join("msg"), &message).unwrap();

    // Sign: JSON in the service's shape, and a raw file.
    let sign_msg = [
        "sign",
        "--key-id",
        &key,
        "--signing-algorithm",
        "ECDSA_SHA_256",
        "--in",
        "msg",
    ];
    let signed = json(d, &sign_msg, b"");
    assert_shape(
        &signed,
        "operations",
        "Sign",
        &["KeyId", "Signature", "SigningAlgorithm"],
    );
    ok(d, &with(&sign_msg, &["--out", "msg.sig"]), b"");
    let signature = std::fs::read(d.join("msg.sig")).unwrap();

    // The public key, DER and PEM.
    let public = json(d, &["get-public-key", &key], b"");
    assert_shape(
        &public,
        "operations",
        "GetPublicKey",
        &[
            "KeyId",
            "PublicKey",
            "KeySpec",
            "KeyUsage",
            "SigningAlgorithms",
        ],
    );
    assert_eq!(public["KeySpec"], "ECC_NIST_P256");
    let der = b64d(&public["PublicKey"]);
    ok(
        d,
        &[
            "get-public-key",
            &key,
            "--out",
            "pub.der",
            "--format",
            "der",
        ],
        b"",
    );
    assert_eq!(std::fs::read(d.join("pub.der")).unwrap(), der);
    let pem = String::from_utf8(ok(d, &["get-public-key", &key], b"")).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    std::fs::write(d.join("pub.pem"), &pem).unwrap();

    // RustCrypto: both signatures, over the message.
    let verifying = VerifyingKey::from_public_key_der(&der).unwrap();
    for sig in [b64d(&signed["Signature"]), signature.clone()] {
        let sig = DerSignature::try_from(sig.as_slice()).unwrap();
        verifying
            .verify(&message, &sig)
            .expect("RustCrypto verifies");
        assert!(verifying.verify(b"another message", &sig).is_err());
    }

    // openssl, from the PEM file.
    if openssl_available() {
        let out = std::process::Command::new("openssl")
            .current_dir(d)
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "msg.sig",
                "msg",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "openssl: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        report("sign/verify: an engine ECDSA P-256 signature verified by RustCrypto p256 and by openssl");
    } else {
        report("sign/verify: openssl is not installed; verified by RustCrypto p256 only");
    }

    // keyplane's own Verify: valid, and a flipped bit refused with exit 1.
    let verify_msg = [&["verify"], &sign_msg[1..], &["--signature"]].concat();
    let verified = json(d, &with(&verify_msg, &["msg.sig"]), b"");
    assert_shape(
        &verified,
        "operations",
        "Verify",
        &["KeyId", "SignatureValid", "SigningAlgorithm"],
    );
    assert_eq!(verified["SignatureValid"], true);
    let mut bad = signature.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(d.join("bad.sig"), &bad).unwrap();
    let refused = run(d, &with(&verify_msg, &["bad.sig"]));
    assert!(fails(&refused, 1, "flipped bit").contains("KMSInvalidSignatureException"));
    // A base64 signature file is read as well.
    std::fs::write(d.join("sig.b64"), signed["Signature"].as_str().unwrap()).unwrap();
    ok(d, &with(&verify_msg, &["sig.b64"]), b"");

    // DIGEST: the SHA-256 of the message, signed; RustCrypto verifies it over the message.
    let digest = Sha256::digest(&message);
    std::fs::write(d.join("msg.sha256"), digest).unwrap();
    let by_digest = json(
        d,
        &[
            "sign",
            "--key-id",
            &key,
            "--signing-algorithm",
            "ECDSA_SHA_256",
            "--message-type",
            "DIGEST",
            "--in",
            "msg.sha256",
        ],
        b"",
    );
    let sig = DerSignature::try_from(b64d(&by_digest["Signature"]).as_slice()).unwrap();
    verifying
        .verify_digest(Sha256::new_with_prefix(&message), &sig)
        .expect("the DIGEST signature verifies over the message");

    // Wrong usage and wrong algorithm.
    let symmetric = create_key(d, &[]);
    let mut under_symmetric = sign_msg;
    under_symmetric[2] = &symmetric;
    let wrong = run(d, &under_symmetric);
    assert!(fails(&wrong, 1, "symmetric key").contains("InvalidKeyUsageException"));
    let mut unknown_algorithm = sign_msg;
    unknown_algorithm[4] = "NOT_AN_ALGORITHM";
    let wrong = run(d, &unknown_algorithm);
    fails(&wrong, 2, "unknown algorithm");
}

#[test]
fn hmacs_generate_and_verify_and_a_flipped_bit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(
        d,
        &[
            "--key-spec",
            "HMAC_256",
            "--key-usage",
            "GENERATE_VERIFY_MAC",
        ],
    );
    let generate_mac = [
        "generate-mac",
        "--key-id",
        &key,
        "--mac-algorithm",
        "HMAC_SHA_256",
    ];
    let mac = json(d, &generate_mac, b"message");
    assert_shape(
        &mac,
        "operations",
        "GenerateMac",
        &["Mac", "MacAlgorithm", "KeyId"],
    );
    let raw = b64d(&mac["Mac"]);
    assert_eq!(raw.len(), 32);
    // The same MAC, raw into a file, twice: HMAC is deterministic.
    ok(d, &with(&generate_mac, &["--out", "m.mac"]), b"message");
    assert_eq!(std::fs::read(d.join("m.mac")).unwrap(), raw);
    let verify_mac = [
        "verify-mac",
        "--key-id",
        &key,
        "--mac-algorithm",
        "HMAC_SHA_256",
        "--mac",
    ];
    let verified = json(d, &with(&verify_mac, &["m.mac"]), b"message");
    assert_shape(
        &verified,
        "operations",
        "VerifyMac",
        &["KeyId", "MacValid", "MacAlgorithm"],
    );
    assert_eq!(verified["MacValid"], true);
    let refused = run_with(d, &with(&verify_mac, &["m.mac"]), b"messagE", &[]);
    assert!(fails(&refused, 1, "other message").contains("KMSInvalidMacException"));
    let mut flipped = raw.clone();
    flipped[0] ^= 0x80;
    std::fs::write(d.join("bad.mac"), flipped).unwrap();
    let refused = run_with(d, &with(&verify_mac, &["bad.mac"]), b"message", &[]);
    fails(&refused, 1, "flipped MAC");
    // HMAC_SHA_512 under an HMAC_256 key is not an algorithm the key allows.
    let mut other_algorithm = generate_mac;
    other_algorithm[4] = "HMAC_SHA_512";
    let wrong = run_with(d, &other_algorithm, b"message", &[]);
    assert_ne!(code(&wrong), 0);
}

#[test]
fn ecdh_with_a_rustcrypto_peer_derives_the_same_secret_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(
        d,
        &[
            "--key-spec",
            "ECC_NIST_P256",
            "--key-usage",
            "KEY_AGREEMENT",
        ],
    );
    let peer = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let peer_der = peer.public_key().to_public_key_der().unwrap();
    std::fs::write(d.join("peer.der"), peer_der.as_bytes()).unwrap();
    let derive = ["derive-shared-secret", "--key-id", &key, "--public-key"];
    let derived = json(d, &with(&derive, &["peer.der"]), b"");
    assert_shape(
        &derived,
        "operations",
        "DeriveSharedSecret",
        &[
            "KeyId",
            "SharedSecret",
            "KeyAgreementAlgorithm",
            "KeyOrigin",
        ],
    );
    let ours = p256::PublicKey::from_public_key_der(&b64d(
        &json(d, &["get-public-key", &key], b"")["PublicKey"],
    ))
    .unwrap();
    let theirs = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
    assert_eq!(
        b64d(&derived["SharedSecret"]),
        theirs.raw_secret_bytes().as_slice()
    );
    // The peer key as PEM, the secret raw into a private file.
    let pem = peer
        .public_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    std::fs::write(d.join("peer.pem"), pem).unwrap();
    ok(d, &with(&derive, &["peer.pem", "--out", "shared.bin"]), b"");
    assert_eq!(
        std::fs::read(d.join("shared.bin")).unwrap(),
        theirs.raw_secret_bytes().as_slice()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("shared.bin"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A malformed peer key is refused.
    std::fs::write(d.join("garbage.der"), b"\x30\x03not a key").unwrap();
    let refused = run(d, &with(&derive, &["garbage.der"]));
    assert_ne!(code(&refused), 0, "a malformed peer key is refused");
    assert!(!d.join("shared-garbage.bin").exists());
}

#[test]
fn data_key_pairs_come_with_a_matching_private_key_encrypted_under_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    let pair = json(
        d,
        &[
            "generate-data-key-pair",
            "--key-id",
            &key,
            "--key-pair-spec",
            "ECC_NIST_P256",
            "--context",
            "purpose=signing",
        ],
        b"",
    );
    assert_shape(
        &pair,
        "operations",
        "GenerateDataKeyPair",
        &[
            "PrivateKeyCiphertextBlob",
            "PrivateKeyPlaintext",
            "PublicKey",
            "KeyId",
            "KeyPairSpec",
        ],
    );
    let private = b64d(&pair["PrivateKeyPlaintext"]);
    let secret = p256::SecretKey::from_pkcs8_der(&private).expect("PKCS#8 P-256");
    assert_eq!(
        secret.public_key().to_public_key_der().unwrap().as_bytes(),
        b64d(&pair["PublicKey"]).as_slice()
    );
    // The encrypted private key decrypts, with its context, to the same PKCS#8.
    let opened = ok(
        d,
        &["decrypt", "--context", "purpose=signing"],
        pair["PrivateKeyCiphertextBlob"]
            .as_str()
            .unwrap()
            .as_bytes(),
    );
    assert_eq!(opened, private);

    let without = json(
        d,
        &[
            "generate-data-key-pair-without-plaintext",
            "--key-id",
            &key,
            "--key-pair-spec",
            "ECC_NIST_P256",
        ],
        b"",
    );
    assert_shape(
        &without,
        "operations",
        "GenerateDataKeyPairWithoutPlaintext",
        &[
            "PrivateKeyCiphertextBlob",
            "PublicKey",
            "KeyId",
            "KeyPairSpec",
        ],
    );
    assert!(without.get("PrivateKeyPlaintext").is_none());

    // Files: PEM keys, the private one mode 0600.
    ok(
        d,
        &[
            "generate-data-key-pair",
            "--key-id",
            &key,
            "--key-pair-spec",
            "ECC_NIST_P256",
            "--format",
            "pem",
            "--public-key-out",
            "pair.pub.pem",
            "--private-key-out",
            "pair.key.pem",
            "--private-key-ciphertext-out",
            "pair.key.enc",
        ],
        b"",
    );
    let private_pem = std::fs::read_to_string(d.join("pair.key.pem")).unwrap();
    let secret = p256::SecretKey::from_pkcs8_pem(&private_pem).unwrap();
    let public_pem = std::fs::read_to_string(d.join("pair.pub.pem")).unwrap();
    assert_eq!(
        p256::PublicKey::from_public_key_pem(&public_pem).unwrap(),
        secret.public_key()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("pair.key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read(d.join("pair.key.enc")).unwrap()[0] == 1);
}
