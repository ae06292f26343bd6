"""Cross-checks with an independent implementation (`cryptography`): signatures made through the
client verify with GetPublicKey's key; ECDH shared secrets match; RSA-OAEP ciphertexts made by
`cryptography` decrypt through the client; data keys work with AESGCM; data key pairs load."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def public_key(kms: Any, key_id: str) -> Any:
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_3072"])
@pytest.mark.parametrize("scheme", ["PSS", "PKCS1_V1_5"])
@pytest.mark.parametrize("bits", ["256", "384", "512"])
def test_rsa_signatures_verify_with_cryptography(
    kms: Any, spec: str, scheme: str, bits: str
) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    algorithm = f"RSASSA_{scheme}_SHA_{bits}"
    message = os.urandom(100)
    signature = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=algorithm)["Signature"]
    key = public_key(kms, key_id)
    assert isinstance(key, rsa.RSAPublicKey)
    h = HASHES[bits]()
    pad = (
        padding.PSS(mgf=padding.MGF1(HASHES[bits]()), salt_length=h.digest_size)
        if scheme == "PSS"
        else padding.PKCS1v15()
    )
    key.verify(signature, message, pad, HASHES[bits]())
    with pytest.raises(InvalidSignature):
        key.verify(signature, message + b"!", pad, HASHES[bits]())
    # And a DIGEST-mode signature of the same message verifies as a prehashed one.
    digest = hashlib.new(f"sha{bits}", message).digest()
    signed = kms.sign(
        KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )["Signature"]
    key.verify(signed, digest, pad, utils.Prehashed(HASHES[bits]()))


@pytest.mark.parametrize(
    "spec,algorithm,curve",
    [
        ("ECC_NIST_P256", "ECDSA_SHA_256", ec.SECP256R1),
        ("ECC_NIST_P384", "ECDSA_SHA_384", ec.SECP384R1),
        ("ECC_NIST_P521", "ECDSA_SHA_512", ec.SECP521R1),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", ec.SECP256K1),
    ],
)
def test_ecdsa_signatures_verify_with_cryptography(
    kms: Any, spec: str, algorithm: str, curve: Any
) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    key = public_key(kms, key_id)
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
    hash_cls = HASHES[algorithm[-3:]]
    for message in (b"hello", os.urandom(4096)):
        signature = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=algorithm)["Signature"]
        key.verify(signature, message, ec.ECDSA(hash_cls()))  # DER-encoded, as the service's
    # A signature made by cryptography's key would not verify under this key: Verify refuses it.
    other = ec.generate_private_key(curve()).sign(b"hello", ec.ECDSA(hash_cls()))
    with pytest.raises(kms.exceptions.KMSInvalidSignatureException):
        kms.verify(KeyId=key_id, Message=b"hello", Signature=other, SigningAlgorithm=algorithm)


def test_ed25519_signatures_verify_with_cryptography(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    key = public_key(kms, key_id)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    signature = kms.sign(KeyId=key_id, Message=b"edwards", SigningAlgorithm="ED25519_SHA_512")[
        "Signature"
    ]
    key.verify(signature, b"edwards")


def test_signatures_made_by_cryptography_verify_through_the_client(kms: Any) -> None:
    # GenerateDataKeyPair hands out a private key; signatures made with it by cryptography verify
    # against its public key, and the pair loads in cryptography.
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = serialization.load_der_public_key(pair["PublicKey"])
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    public.verify(private.sign(b"m", ec.ECDSA(hashes.SHA256())), b"m", ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr, call-arg, arg-type]
    rsa_pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="RSA_2048")
    rsa_private = serialization.load_der_private_key(rsa_pair["PrivateKeyPlaintext"], password=None)
    assert isinstance(rsa_private, rsa.RSAPrivateKey) and rsa_private.key_size == 2048


@pytest.mark.parametrize(
    "spec,curve",
    [
        ("ECC_NIST_P256", ec.SECP256R1),
        ("ECC_NIST_P384", ec.SECP384R1),
        ("ECC_NIST_P521", ec.SECP521R1),
    ],
)
def test_ecdh_matches_cryptography(kms: Any, spec: str, curve: Any) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    peer = ec.generate_private_key(curve())
    peer_der = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ours = kms.derive_shared_secret(KeyId=key_id, KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)[
        "SharedSecret"
    ]
    theirs = peer.exchange(ec.ECDH(), public_key(kms, key_id))
    assert ours == theirs


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_4096"])
@pytest.mark.parametrize(
    "algorithm,hash_cls", [("RSAES_OAEP_SHA_1", hashes.SHA1), ("RSAES_OAEP_SHA_256", hashes.SHA256)]
)
def test_rsa_oaep_from_cryptography_decrypts_through_the_client(
    kms: Any, spec: str, algorithm: str, hash_cls: Any
) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    key = public_key(kms, key_id)
    message = os.urandom(64)
    ciphertext = key.encrypt(
        message, padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
    )
    opened = kms.decrypt(CiphertextBlob=ciphertext, KeyId=key_id, EncryptionAlgorithm=algorithm)
    assert opened["Plaintext"] == message and opened["EncryptionAlgorithm"] == algorithm
    # And the client's OAEP ciphertexts decrypt through the client (cryptography has no private
    # key).
    sealed = kms.encrypt(KeyId=key_id, Plaintext=message, EncryptionAlgorithm=algorithm)[
        "CiphertextBlob"
    ]
    assert len(sealed) == key.key_size // 8
    assert (
        kms.decrypt(CiphertextBlob=sealed, KeyId=key_id, EncryptionAlgorithm=algorithm)["Plaintext"]
        == message
    )


def test_data_keys_work_with_aesgcm(kms: Any, key_id: str) -> None:
    data_key = kms.generate_data_key(
        KeyId=key_id, KeySpec="AES_256", EncryptionContext={"file": "a"}
    )
    nonce = os.urandom(12)
    sealed = AESGCM(data_key["Plaintext"]).encrypt(nonce, b"file contents", b"aad")
    recovered = kms.decrypt(
        CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext={"file": "a"}
    )["Plaintext"]
    assert AESGCM(recovered).decrypt(nonce, sealed, b"aad") == b"file contents"


@pytest.mark.parametrize(
    "spec,algorithm,length",
    [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ],
)
def test_hmac_lengths_and_agreement(kms: Any, spec: str, algorithm: str, length: int) -> None:
    # The engine has no ImportKeyMaterial, so no HMAC key is known outside it and `hmac` cannot
    # recompute a MAC; what can be checked: the digest size, determinism, and VerifyMac.
    key_id = kms.create_key(KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = kms.generate_mac(KeyId=key_id, Message=b"message", MacAlgorithm=algorithm)["Mac"]
    assert len(mac) == length
    assert kms.generate_mac(KeyId=key_id, Message=b"message", MacAlgorithm=algorithm)["Mac"] == mac
    assert kms.generate_mac(KeyId=key_id, Message=b"message!", MacAlgorithm=algorithm)["Mac"] != mac
    with pytest.raises(kms.exceptions.KMSInvalidMacException):
        kms.verify_mac(
            KeyId=key_id,
            Message=b"message",
            Mac=bytes(b ^ 1 for b in mac[:1]) + mac[1:],
            MacAlgorithm=algorithm,
        )
