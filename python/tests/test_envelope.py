"""Envelope encryption in the AWS Encryption SDK's message format (keyplane.envelope,
keyplane.stream): round trips in every suite with every keyring kind, interoperability both ways
with the AWS Encryption SDK for Python (raw AES and raw RSA wrapping keys), tampering and
truncation raising typed errors, streaming multi-MB bodies in chunks, and the GIL released while
frames are sealed and opened."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import gil_progress
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import keyplane
from keyplane import exceptions
from keyplane.envelope import SUITES

try:
    import botocore  # noqa: F401
except ImportError:
    # The run without botocore (scripts/test-python) cannot install the Encryption SDK, which
    # needs it: this module runs in the run with botocore, where a missing SDK is an error.
    pytest.skip("aws-encryption-sdk needs botocore", allow_module_level=True)
import aws_encryption_sdk as esdk  # noqa: E402
from aws_encryption_sdk.identifiers import (  # noqa: E402
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey  # noqa: E402
from aws_encryption_sdk.key_providers.raw import RawMasterKey  # noqa: E402

NAMESPACE = "keyplane-test"
KEY_NAME = "wrapping-key-1"
CONTEXT = {"purpose": "test", "tenant": "acme"}
SUITE_IDS = {
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384": 0x0578,
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY": 0x0478,
    "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384": 0x0378,
    "AES_256_GCM_IV12_TAG16_HKDF_SHA256": 0x0178,
    "AES_256_GCM_IV12_TAG16_NO_KDF": 0x0078,
}
COMMITTING = {"AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"}
SIGNED = {
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
    "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
}
RSA_PADDINGS = [
    "RSA_PKCS1",
    "RSA_OAEP_SHA1_MGF1",
    "RSA_OAEP_SHA256_MGF1",
    "RSA_OAEP_SHA384_MGF1",
    "RSA_OAEP_SHA512_MGF1",
]
# Failures a damaged message may raise: each a typed service error, never anything else.
MESSAGE_ERRORS = (
    exceptions.InvalidCiphertextException,
    exceptions.KMSInvalidSignatureException,
    exceptions.IncorrectKeyException,
    exceptions.LimitExceededException,
)


def policy_for(suite: str) -> str:
    return (
        "REQUIRE_ENCRYPT_REQUIRE_DECRYPT" if suite in COMMITTING else "FORBID_ENCRYPT_ALLOW_DECRYPT"
    )


def esdk_algorithm(suite: str) -> Any:
    return next(a for a in Algorithm if a.algorithm_id == SUITE_IDS[suite])


def esdk_client(suite: str) -> Any:
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite in COMMITTING
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    return esdk.EncryptionSDKClient(commitment_policy=policy)


@pytest.fixture(scope="module")
def aes_key() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def rsa_public_pem(rsa_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(rsa_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def ring(aes_key: bytes) -> keyplane.RawAesKeyring:
    return keyplane.RawAesKeyring(NAMESPACE, KEY_NAME, aes_key)


def esdk_aes(key: bytes) -> Any:
    return RawMasterKey(
        provider_id=NAMESPACE,
        key_id=KEY_NAME.encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )


def esdk_rsa(pem: bytes, padding: str) -> Any:
    return RawMasterKey(
        provider_id=NAMESPACE,
        key_id=KEY_NAME.encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=getattr(WrappingAlgorithm, padding),
            wrapping_key=pem,
            wrapping_key_type=EncryptionKeyType.PRIVATE,
        ),
    )


# ---- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_round_trip_each_suite_raw_aes(ring: keyplane.RawAesKeyring, suite: str, size: int) -> None:
    plaintext = os.urandom(size)
    message = keyplane.encrypt_message(
        plaintext, keyrings=[ring], encryption_context=CONTEXT, algorithm=suite
    )
    assert message[0] == (2 if suite in COMMITTING else 1)
    assert (
        int.from_bytes(message[1:3] if suite in COMMITTING else message[2:4], "big")
        == (SUITE_IDS[suite])
    )
    assert size < 16 or plaintext[:16] not in message
    out, context = keyplane.decrypt_message(
        message, keyrings=[ring], commitment_policy=policy_for(suite)
    )
    assert out == plaintext
    for k, v in CONTEXT.items():
        assert context[k] == v
    assert ("aws-crypto-public-key" in context) == (suite in SIGNED)


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_each_suite_kms_key(engine: keyplane.Engine, suite: str) -> None:
    key = engine.create_key()
    plaintext = os.urandom(10_000)
    message = engine.encrypt_message(
        plaintext, key_id=key.key_id, encryption_context=CONTEXT, algorithm=suite
    )
    result = engine.decrypt_message(message, key_id=key.arn, commitment_policy=policy_for(suite))
    assert result.plaintext == plaintext
    assert result.encryption_context["tenant"] == "acme"
    # Discovery tries every keyplane data key of the message.
    found = engine.decrypt_message(message, discovery=True, commitment_policy=policy_for(suite))
    assert found.plaintext == plaintext
    # Another key of the engine is not the one the message names.
    other = engine.create_key()
    with pytest.raises(exceptions.IncorrectKeyException):
        engine.decrypt_message(message, key_id=other.key_id, commitment_policy=policy_for(suite))


def test_kms_keyring_through_a_client_and_module_functions(engine: keyplane.Engine) -> None:
    kms = keyplane.client("kms", region_name="eu-west-1", engine=engine)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    message = keyplane.encrypt_message(b"hello", engine=kms, key_id=key_id)
    assert keyplane.decrypt_message(message, engine=engine.native, key_id=key_id)[0] == b"hello"
    with pytest.raises(TypeError):
        keyplane.encrypt_message(b"hello", key_id=key_id)  # no engine for the key


@pytest.mark.parametrize("padding", RSA_PADDINGS)
def test_round_trip_raw_rsa_each_padding(
    rsa_pem: bytes, rsa_public_pem: bytes, padding: str
) -> None:
    public = keyplane.RawRsaKeyring(NAMESPACE, KEY_NAME, padding, public_key=rsa_public_pem)
    private = keyplane.RawRsaKeyring(NAMESPACE, KEY_NAME, padding, private_key=rsa_pem)
    message = keyplane.encrypt_message(b"rsa wrapped", keyrings=[public])
    assert keyplane.decrypt_message(message, keyrings=[private]).plaintext == b"rsa wrapped"
    # A public key cannot unwrap.
    with pytest.raises(exceptions.IncorrectKeyException):
        keyplane.decrypt_message(message, keyrings=[public])


def test_several_keyrings_each_decrypts(
    engine: keyplane.Engine, ring: keyplane.RawAesKeyring, rsa_pem: bytes
) -> None:
    key = engine.create_key()
    rsa_ring = keyplane.RawRsaKeyring(NAMESPACE, "rsa", "RSA_OAEP_SHA256_MGF1", private_key=rsa_pem)
    message = engine.encrypt_message(b"shared", key_id=key.key_id, keyrings=[ring, rsa_ring])
    assert engine.decrypt_message(message, key_id=key.key_id).plaintext == b"shared"
    assert keyplane.decrypt_message(message, keyrings=[ring]).plaintext == b"shared"
    assert keyplane.decrypt_message(message, keyrings=[rsa_ring]).plaintext == b"shared"
    assert keyplane.decrypt_message(message, keyrings=[rsa_ring]).plaintext == b"shared"


def test_inputs_bytearray_and_memoryview(ring: keyplane.RawAesKeyring, aes_key: bytes) -> None:
    from_array = keyplane.RawAesKeyring(NAMESPACE, KEY_NAME, bytearray(aes_key))
    message = keyplane.encrypt_message(memoryview(b"abc"), keyrings=[from_array])
    assert keyplane.decrypt_message(bytearray(message), keyrings=[ring]).plaintext == b"abc"


# ---- interoperability with the AWS Encryption SDK for Python -----------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_keyplane_to_esdk_raw_aes(ring: keyplane.RawAesKeyring, aes_key: bytes, suite: str) -> None:
    plaintext = os.urandom(3 * 1000 + 17)
    message = keyplane.encrypt_message(
        plaintext, keyrings=[ring], encryption_context=CONTEXT, algorithm=suite, frame_length=1000
    )
    out, header = esdk_client(suite).decrypt(source=message, key_provider=esdk_aes(aes_key))
    assert out == plaintext
    assert header.algorithm.algorithm_id == SUITE_IDS[suite]
    assert header.encryption_context["tenant"] == "acme"


@pytest.mark.parametrize("suite", SUITES)
def test_esdk_to_keyplane_raw_aes(ring: keyplane.RawAesKeyring, aes_key: bytes, suite: str) -> None:
    plaintext = os.urandom(2 * 512 + 100)
    message, _ = esdk_client(suite).encrypt(
        source=plaintext,
        key_provider=esdk_aes(aes_key),
        encryption_context=CONTEXT,
        algorithm=esdk_algorithm(suite),
        frame_length=512,
    )
    out, context = keyplane.decrypt_message(
        message, keyrings=[ring], commitment_policy=policy_for(suite)
    )
    assert out == plaintext
    assert context["purpose"] == "test"


@pytest.mark.parametrize("padding", ["RSA_PKCS1", "RSA_OAEP_SHA1_MGF1", "RSA_OAEP_SHA256_MGF1"])
def test_raw_rsa_interop_both_ways(rsa_pem: bytes, padding: str) -> None:
    ring = keyplane.RawRsaKeyring(NAMESPACE, KEY_NAME, padding, private_key=rsa_pem)
    client = esdk_client("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384")
    message = keyplane.encrypt_message(b"to the sdk", keyrings=[ring], encryption_context=CONTEXT)
    out, _ = client.decrypt(source=message, key_provider=esdk_rsa(rsa_pem, padding))
    assert out == b"to the sdk"
    message, _ = client.encrypt(
        source=b"from the sdk", key_provider=esdk_rsa(rsa_pem, padding), encryption_context=CONTEXT
    )
    assert keyplane.decrypt_message(message, keyrings=[ring]).plaintext == b"from the sdk"


def test_esdk_stream_to_keyplane_stream(ring: keyplane.RawAesKeyring, aes_key: bytes) -> None:
    plaintext = os.urandom(2 * 1024 * 1024 + 333)
    client = esdk_client("AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
    message, _ = client.encrypt(
        source=plaintext,
        key_provider=esdk_aes(aes_key),
        algorithm=esdk_algorithm("AES_256_GCM_HKDF_SHA512_COMMIT_KEY"),
    )
    with keyplane.stream.open_decrypting(io.BytesIO(message), keyrings=[ring]) as reader:
        chunks = []
        while chunk := reader.read(65_536):
            chunks.append(chunk)
    assert b"".join(chunks) == plaintext


# ---- tampering, truncation, wrong keys and bad settings ----------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_tampering_anywhere_raises_typed_errors(ring: keyplane.RawAesKeyring, suite: str) -> None:
    message = keyplane.encrypt_message(
        b"x" * 300, keyrings=[ring], encryption_context=CONTEXT, algorithm=suite, frame_length=128
    )
    policy = policy_for(suite)
    # Every 7th byte and the last 40 (final frame, footer) flipped in turn.
    positions = sorted(set(range(0, len(message), 7)) | set(range(len(message) - 40, len(message))))
    for pos in positions:
        damaged = bytearray(message)
        damaged[pos] ^= 0x01
        with pytest.raises(MESSAGE_ERRORS):
            keyplane.decrypt_message(bytes(damaged), keyrings=[ring], commitment_policy=policy)


def test_tampered_frame_is_invalid_ciphertext(ring: keyplane.RawAesKeyring) -> None:
    message = keyplane.encrypt_message(
        b"y" * 10_000, keyrings=[ring], algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    )
    damaged = bytearray(message)
    damaged[len(message) // 2] ^= 0x80  # inside a regular frame's content
    with pytest.raises(exceptions.InvalidCiphertextException) as info:
        keyplane.decrypt_message(bytes(damaged), keyrings=[ring])
    assert info.value.response["Error"]["Code"] == "InvalidCiphertextException"


@pytest.mark.parametrize("suite", SUITES)
def test_truncation_raises_invalid_ciphertext(ring: keyplane.RawAesKeyring, suite: str) -> None:
    message = keyplane.encrypt_message(
        b"z" * 1000, keyrings=[ring], algorithm=suite, frame_length=100
    )
    for cut in (1, 10, len(message) // 2, len(message) - 1):
        with pytest.raises(exceptions.InvalidCiphertextException):
            keyplane.decrypt_message(
                message[:cut], keyrings=[ring], commitment_policy=policy_for(suite)
            )
    with pytest.raises(exceptions.InvalidCiphertextException):
        keyplane.decrypt_message(
            message + b"\x00", keyrings=[ring], commitment_policy=policy_for(suite)
        )


def test_signature_stripped_or_forged(ring: keyplane.RawAesKeyring) -> None:
    message = keyplane.encrypt_message(b"signed", keyrings=[ring])
    # The footer's DER signature: flip a byte inside the integer r (past the DER prefix).
    sig_len = None
    for n in range(100, 110):
        if int.from_bytes(message[-n - 2 : -n], "big") == n:
            sig_len = n
    assert sig_len is not None
    damaged = bytearray(message)
    damaged[-sig_len + 8] ^= 0x01
    with pytest.raises(
        (exceptions.KMSInvalidSignatureException, exceptions.InvalidCiphertextException)
    ):
        keyplane.decrypt_message(bytes(damaged), keyrings=[ring])
    # Without its footer the message is truncated.
    with pytest.raises(exceptions.InvalidCiphertextException):
        keyplane.decrypt_message(message[: -sig_len - 2], keyrings=[ring])


def test_wrong_key_and_required_context(ring: keyplane.RawAesKeyring) -> None:
    message = keyplane.encrypt_message(b"secret", keyrings=[ring], encryption_context=CONTEXT)
    wrong = keyplane.RawAesKeyring(NAMESPACE, KEY_NAME, os.urandom(32))
    with pytest.raises(exceptions.IncorrectKeyException):
        keyplane.decrypt_message(message, keyrings=[wrong])
    other_name = keyplane.RawAesKeyring(NAMESPACE, "other", os.urandom(32))
    with pytest.raises(exceptions.IncorrectKeyException):
        keyplane.decrypt_message(message, keyrings=[other_name])
    assert (
        keyplane.decrypt_message(
            message, keyrings=[ring], encryption_context={"tenant": "acme"}
        ).plaintext
        == b"secret"
    )
    with pytest.raises(exceptions.InvalidCiphertextException, match="tenant=evil"):
        keyplane.decrypt_message(message, keyrings=[ring], encryption_context={"tenant": "evil"})


def test_non_committing_message_refused_by_default(ring: keyplane.RawAesKeyring) -> None:
    message = keyplane.encrypt_message(
        b"old", keyrings=[ring], algorithm="AES_256_GCM_IV12_TAG16_HKDF_SHA256"
    )
    with pytest.raises(exceptions.InvalidCiphertextException):
        keyplane.decrypt_message(message, keyrings=[ring])
    assert (
        keyplane.decrypt_message(
            message, keyrings=[ring], commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT"
        ).plaintext
        == b"old"
    )


def test_bad_settings_are_validation_errors(ring: keyplane.RawAesKeyring) -> None:
    with pytest.raises(exceptions.ValidationException):
        keyplane.encrypt_message(b"a", keyrings=[ring], frame_length=0)
    with pytest.raises(exceptions.ValidationException):
        keyplane.encrypt_message(b"a", keyrings=[ring], algorithm="AES_128_GCM_IV12_TAG16")
    with pytest.raises(exceptions.ValidationException):
        keyplane.encrypt_message(b"a", keyrings=[ring], encryption_context={"aws-crypto-x": "1"})
    with pytest.raises(exceptions.ValidationException):
        keyplane.encrypt_message(
            b"a",
            keyrings=[ring],
            algorithm="AES_256_GCM_IV12_TAG16_HKDF_SHA256",
            commitment_policy="REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
        )
    with pytest.raises(exceptions.ValidationException):
        keyplane.encrypt_message(b"a", keyrings=[])
    with pytest.raises(exceptions.ValidationException):
        keyplane.RawAesKeyring(NAMESPACE, KEY_NAME, b"short")
    with pytest.raises(exceptions.ValidationException):
        keyplane.RawRsaKeyring(NAMESPACE, KEY_NAME, "RSA_OAEP_MD5", private_key=b"x")
    with pytest.raises(exceptions.ValidationException):
        keyplane.RawRsaKeyring(NAMESPACE, KEY_NAME, "RSA_PKCS1", private_key=b"not a key")
    with pytest.raises(TypeError):
        keyplane.encrypt_message(b"a", keyrings=["not a keyring"])  # type: ignore[list-item]


def test_max_encrypted_data_keys(ring: keyplane.RawAesKeyring, aes_key: bytes) -> None:
    second = keyplane.RawAesKeyring(NAMESPACE, "second", os.urandom(32))
    message = keyplane.encrypt_message(b"two keys", keyrings=[ring, second])
    with pytest.raises(exceptions.LimitExceededException):
        keyplane.decrypt_message(message, keyrings=[ring], max_encrypted_data_keys=1)
    with pytest.raises(exceptions.LimitExceededException):
        keyplane.encrypt_message(b"x", keyrings=[ring, second], max_encrypted_data_keys=1)


# ---- streams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_stream_multi_megabyte_in_chunks(
    ring: keyplane.RawAesKeyring, aes_key: bytes, suite: str
) -> None:
    size = 3 * 1024 * 1024 + 12_345
    plaintext = os.urandom(size)
    sink = io.BytesIO()
    with keyplane.stream.open_encrypting(
        sink, keyrings=[ring], encryption_context=CONTEXT, algorithm=suite
    ) as writer:
        for start in range(0, size, 100_003):  # odd chunks across frame boundaries
            assert writer.write(plaintext[start : start + 100_003]) == len(
                plaintext[start : start + 100_003]
            )
    assert writer.closed
    message = sink.getvalue()
    # The whole-message API and the SDK read what the stream wrote.
    assert (
        keyplane.decrypt_message(message, keyrings=[ring], commitment_policy=policy_for(suite))[0]
        == plaintext
    )
    assert (
        esdk_client(suite).decrypt(source=message, key_provider=esdk_aes(aes_key))[0] == plaintext
    )
    reader = keyplane.stream.open_decrypting(
        io.BytesIO(message), keyrings=[ring], commitment_policy=policy_for(suite)
    )
    assert reader.algorithm == suite
    assert reader.encryption_context["tenant"] == "acme"
    parts = []
    while chunk := reader.read(77_777):
        assert len(chunk) <= 77_777
        parts.append(chunk)
    assert b"".join(parts) == plaintext
    assert reader.read() == b""
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read(1)


def test_stream_to_and_from_files(
    engine: keyplane.Engine, tmp_path: Any, ring: keyplane.RawAesKeyring
) -> None:
    key = engine.create_key()
    plaintext = os.urandom(5 * 1024 * 1024)
    path = tmp_path / "data.enc"
    with open(path, "wb") as f:
        with engine.open_encrypting(f, key_id=key.key_id, keyrings=[ring]) as writer:
            view = memoryview(plaintext)
            for start in range(0, len(plaintext), 1 << 20):
                writer.write(view[start : start + (1 << 20)])
    with open(path, "rb") as f:
        with engine.open_decrypting(f, key_id=key.key_id) as reader:
            assert reader.read() == plaintext
    with open(path, "rb") as f:
        with keyplane.stream.open_decrypting(f, keyrings=[ring]) as reader:
            assert reader.read(10) == plaintext[:10]
            assert reader.read() == plaintext[10:]


def test_stream_reads_its_file_in_large_pieces(ring: keyplane.RawAesKeyring) -> None:
    # Each frame is four exact reads inside the decryptor; a call into Python per read (2,000 for
    # these 512 frames) would cost more than the decryption. The binding reads ahead instead.
    plaintext = os.urandom(2 << 20)
    message = keyplane.encrypt_message(plaintext, keyrings=[ring])

    class Counting(io.BytesIO):
        calls = 0

        def read(self, n: int | None = -1) -> bytes:
            Counting.calls += 1
            return super().read(n)

    with keyplane.stream.open_decrypting(Counting(message), keyrings=[ring]) as reader:
        assert reader.read() == plaintext
    assert 0 < Counting.calls <= len(message) // (32 << 10) + 4, Counting.calls


def test_stream_truncated_fails_the_last_read(ring: keyplane.RawAesKeyring) -> None:
    sink = io.BytesIO()
    with keyplane.stream.open_encrypting(
        sink, keyrings=[ring], algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    ) as writer:
        writer.write(os.urandom(1024 * 1024))
    message = sink.getvalue()
    reader = keyplane.stream.open_decrypting(io.BytesIO(message[:-100]), keyrings=[ring])
    with pytest.raises(exceptions.InvalidCiphertextException):
        while reader.read(4096):
            pass
    # Failed for good.
    with pytest.raises(exceptions.InvalidCiphertextException):
        reader.read(1)


def test_signed_stream_holds_plaintext_until_the_signature(ring: keyplane.RawAesKeyring) -> None:
    # Two windows of frames (256 frames of 4096 bytes each): per-frame release hands out the
    # first before the signature is reached.
    message = keyplane.encrypt_message(b"q" * (2 << 20), keyrings=[ring])
    damaged = bytearray(message)
    damaged[-5] ^= 0x01  # the signature
    reader = keyplane.stream.open_decrypting(io.BytesIO(bytes(damaged)), keyrings=[ring])
    # By default the first read already waits for the signature: nothing is released.
    with pytest.raises(
        (exceptions.KMSInvalidSignatureException, exceptions.InvalidCiphertextException)
    ):
        reader.read(10)
    per_frame = keyplane.stream.open_decrypting(
        io.BytesIO(bytes(damaged)), keyrings=[ring], signed_release="per_frame"
    )
    assert per_frame.read(10) == b"q" * 10
    with pytest.raises(
        (exceptions.KMSInvalidSignatureException, exceptions.InvalidCiphertextException)
    ):
        per_frame.read()


def test_writer_aborted_by_an_exception_leaves_a_truncated_message(
    ring: keyplane.RawAesKeyring,
) -> None:
    sink = io.BytesIO()
    with pytest.raises(RuntimeError):
        with keyplane.stream.open_encrypting(sink, keyrings=[ring]) as writer:
            writer.write(os.urandom(2 * 1024 * 1024))
            raise RuntimeError("caller failed")
    assert writer.closed
    assert len(sink.getvalue()) > 1024 * 1024  # frames were written
    with pytest.raises(exceptions.InvalidCiphertextException):
        keyplane.decrypt_message(sink.getvalue(), keyrings=[ring])
    with pytest.raises(ValueError):
        writer.write(b"more")
    writer.close()  # closing again does nothing


def test_file_errors_propagate_as_the_files_exception(ring: keyplane.RawAesKeyring) -> None:
    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        keyplane.stream.open_encrypting(Full(), keyrings=[ring])

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        keyplane.stream.open_decrypting(Broken(), keyrings=[ring])


def test_bad_stream_settings(ring: keyplane.RawAesKeyring) -> None:
    with pytest.raises(exceptions.ValidationException):
        keyplane.stream.open_decrypting(io.BytesIO(b""), keyrings=[ring], signed_release="never")
    with pytest.raises(exceptions.InvalidCiphertextException):
        keyplane.stream.open_decrypting(io.BytesIO(b""), keyrings=[ring])


# ---- the GIL -----------------------------------------------------------------------------------


@pytest.fixture
def progress() -> Iterator[Callable[[Callable[[], Any]], int]]:
    """How far a counting thread gets during a call, under a 0.5 s switch interval: a call holding
    the GIL (for less than that; 8 MiB of AES-GCM takes milliseconds) lets it make no progress at
    all. Not longer: each time a call that released the GIL takes it back, it waits up to the
    interval for the counting thread to yield, and a streamed write does that frame by frame (at
    5 s this test file spent 85 s here)."""
    with gil_progress(0.5, settle=0.01) as during:
        yield during


def test_the_measure_sees_a_call_that_holds_the_gil(
    progress: Callable[[Callable[[], Any]], int],
) -> None:
    # Far above the sum's time (tens of milliseconds), which a loaded machine can stretch past
    # 0.5 s; as test_gil.py does. The fixture puts the old interval back.
    sys.setswitchinterval(2.0)
    assert progress(lambda: sum(range(3_000_000))) == 0


def test_gil_released_during_envelope_work(
    ring: keyplane.RawAesKeyring, progress: Callable[[Callable[[], Any]], int]
) -> None:
    plaintext = os.urandom(8 * 1024 * 1024)
    box: dict[str, bytes] = {}

    def encrypt() -> None:
        box["m"] = keyplane.encrypt_message(plaintext, keyrings=[ring])

    assert progress(encrypt) > 0
    assert progress(lambda: keyplane.decrypt_message(box["m"], keyrings=[ring])) > 0

    def streamed() -> None:
        with keyplane.stream.open_encrypting(io.BytesIO(), keyrings=[ring]) as writer:
            writer.write(plaintext)

    assert progress(streamed) > 0


# ---- attacks on the binding --------------------------------------------------------------------


def test_attack_file_returning_more_than_asked(ring: keyplane.RawAesKeyring) -> None:
    # A hostile source whose read(n) hands back more than n bytes is refused, not overrun.
    message = keyplane.encrypt_message(b"data", keyrings=[ring])

    class Generous(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return message + b"\x00" * max(n, 0)

    with pytest.raises(ValueError, match="more bytes than asked"):
        keyplane.stream.open_decrypting(Generous(), keyrings=[ring])


def test_attack_huge_read_size_allocates_nothing_up_front(ring: keyplane.RawAesKeyring) -> None:
    # read(2**62) must not reserve 2**62 bytes (an abort); it returns what the message holds.
    message = keyplane.encrypt_message(b"small", keyrings=[ring])
    reader = keyplane.stream.open_decrypting(io.BytesIO(message), keyrings=[ring])
    assert reader.read(2**62) == b"small"


def test_attack_stream_used_as_its_own_file(ring: keyplane.RawAesKeyring) -> None:
    # A writer whose sink writes back into the writer itself: refused, not a deadlock.
    class Loop(io.RawIOBase):
        target: Any = None
        headers = 0

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            if self.target is not None:
                self.target.write(b"again")
            return len(data)

    sink = Loop()
    writer = keyplane.stream.open_encrypting(sink, keyrings=[ring], frame_length=16)
    sink.target = writer
    with pytest.raises(exceptions.ValidationException, match="in use by another thread"):
        writer.write(os.urandom(64 * 1024))
        writer.close()


def test_attack_bytes_like_results_from_read(ring: keyplane.RawAesKeyring) -> None:
    # A source returning bytearray (as some file objects do) is read; a str is a TypeError.
    message = keyplane.encrypt_message(b"data", keyrings=[ring])
    src = io.BytesIO(message)

    class Arrays:
        def read(self, n: int) -> bytearray:
            return bytearray(src.read(n))

    assert keyplane.stream.open_decrypting(Arrays(), keyrings=[ring]).read() == b"data"

    class Text:
        def read(self, n: int) -> str:
            return "x" * n

    with pytest.raises(TypeError):
        keyplane.stream.open_decrypting(Text(), keyrings=[ring])
