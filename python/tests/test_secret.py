"""SecretBytes: secrets held in Rust memory, zeroed when closed (or at the end of a `with`) and
when collected."""

from __future__ import annotations

import ctypes
import gc
from typing import Any

import pytest

import keyplane
from keyplane import _keyplane


def memory(secret: keyplane.SecretBytes, length: int) -> bytes:
    return ctypes.string_at(secret._address(), length)


def test_close_zeroes_the_buffer() -> None:
    secret = keyplane.SecretBytes(b"hunter2-hunter2!")
    assert memory(secret, 16) == b"hunter2-hunter2!"
    assert bytes(secret) == b"hunter2-hunter2!" and len(secret) == 16
    secret.close()
    assert secret.closed
    assert memory(secret, 16) == b"\0" * 16
    with pytest.raises(ValueError, match="closed"):
        bytes(secret)
    with pytest.raises(ValueError):
        len(secret)
    secret.close()  # closing twice is fine


def test_context_manager_zeroes_data_keys(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    with key.generate_data_key() as data_key:
        plaintext = data_key.plaintext
        raw = bytes(plaintext)
        assert len(raw) == 32 and memory(plaintext, 32) == raw
        assert engine.decrypt(data_key.ciphertext) == raw
    assert plaintext.closed and memory(plaintext, 32) == b"\0" * 32
    with keyplane.SecretBytes(b"abc") as s:
        assert bytes(s) == b"abc"
    assert s.closed


def test_collection_zeroes() -> None:
    before = _keyplane._secrets_zeroed()
    secrets = [keyplane.SecretBytes(b"x" * 32) for _ in range(10)]
    del secrets
    gc.collect()
    assert _keyplane._secrets_zeroed() - before >= 10


def test_repr_is_redacted_and_bytearray_copies_can_be_wiped() -> None:
    secret = keyplane.SecretBytes(b"hunter2")
    assert repr(secret) == "SecretBytes(7 bytes, redacted)" and "hunter2" not in str(secret)
    copy = secret.to_bytearray()
    assert copy == bytearray(b"hunter2")
    copy[:] = bytes(len(copy))
    secret.close()
    assert repr(secret) == "SecretBytes(closed)"


def test_secrets_through_the_apis(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    assert isinstance(engine.decrypt_secret(key.encrypt(b"p")), keyplane.SecretBytes)
    for item in keyplane.ok(engine.decrypt_many_secret([key.encrypt(b"p")] * 3)):
        assert isinstance(item, keyplane.SecretBytes) and bytes(item) == b"p"
    with engine.generate_data_key_pair(key.key_id, "ECC_NIST_P256") as pair:
        assert pair.private_key is not None and len(pair.private_key) > 100
    agreement = engine.create_key(key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT")
    peer = engine.create_key(key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT")
    with agreement.derive_shared_secret(peer.public_key()) as shared:
        assert len(shared) == 32


def test_client_secret_bytes_mode(engine: keyplane.Engine) -> None:
    kms: Any = keyplane.client("kms", engine=engine, secret_bytes=True)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert isinstance(data_key["Plaintext"], keyplane.SecretBytes)
    opened = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
    assert isinstance(opened, keyplane.SecretBytes) and bytes(opened) == bytes(
        data_key["Plaintext"]
    )
    pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P384")
    assert isinstance(pair["PrivateKeyPlaintext"], keyplane.SecretBytes)
    # Random bytes are not secrets of a key; they stay bytes.
    assert type(kms.generate_random(NumberOfBytes=8)["Plaintext"]) is bytes
