"""Byte inputs: bytes, bytearray and memoryview everywhere a blob is taken (bytes read in place,
the others copied once); str and file-like objects through the client, as botocore accepts them;
outputs are always bytes."""

from __future__ import annotations

import io
from typing import Any

import pytest

import keyplane

KINDS = [bytes, bytearray, memoryview]


@pytest.mark.parametrize("kind", KINDS)
def test_client_blob_inputs(kms: Any, key_id: str, kind: Any) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=kind(b"secret"))["CiphertextBlob"]
    assert type(blob) is bytes
    assert kms.decrypt(CiphertextBlob=kind(blob))["Plaintext"] == b"secret"
    assert kms.re_encrypt(CiphertextBlob=kind(blob), DestinationKeyId=key_id)["CiphertextBlob"]
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]
    mac = kms.generate_mac(KeyId=mac_key, Message=kind(b"m"), MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(
        KeyId=mac_key, Message=kind(b"m"), Mac=kind(mac), MacAlgorithm="HMAC_SHA_256"
    )["MacValid"]
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    signature = kms.sign(KeyId=signing, Message=kind(b"m"), SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    assert kms.verify(
        KeyId=signing,
        Message=kind(b"m"),
        Signature=kind(signature),
        SigningAlgorithm="ECDSA_SHA_256",
    )["SignatureValid"]


def test_memoryview_slices_and_non_byte_views(kms: Any, key_id: str) -> None:
    data = bytearray(b"xxsecretxx")
    blob = kms.encrypt(KeyId=key_id, Plaintext=memoryview(data)[2:8])["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    import array

    words = array.array("I", [1, 2])
    blob = kms.encrypt(KeyId=key_id, Plaintext=memoryview(words))["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == words.tobytes()


def test_str_and_file_like_blobs_as_botocore(kms: Any, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext="héllo")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == "héllo".encode()
    blob = kms.encrypt(KeyId=key_id, Plaintext=io.BytesIO(b"from a file"))["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=io.BytesIO(blob))["Plaintext"] == b"from a file"


@pytest.mark.parametrize("kind", KINDS)
def test_pythonic_and_batch_inputs(engine: keyplane.Engine, kind: Any) -> None:
    key = engine.create_key()
    items = [kind(f"item {i}".encode()) for i in range(100)]
    blobs = keyplane.ok(key.encrypt_many(items))
    assert all(type(b) is bytes for b in blobs)
    assert keyplane.ok(engine.decrypt_many([kind(b) for b in blobs])) == [bytes(i) for i in items]
    assert key.decrypt(kind(key.encrypt(kind(b"one")))) == b"one"


def test_bytearray_is_copied_not_aliased(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    data = bytearray(b"before")
    blob = key.encrypt(data)
    data[:] = b"after!"
    assert key.decrypt(blob) == b"before"


def test_wrong_input_types(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
        key.encrypt("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of bytes-like objects"):
        key.encrypt_many(b"not a list")
    with pytest.raises(TypeError):
        key.encrypt_many([b"ok", 3])  # type: ignore[list-item]
