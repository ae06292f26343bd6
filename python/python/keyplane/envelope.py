"""Envelope encryption in the AWS Encryption SDK's message format (docs/envelope.md).

A message is encrypted under one or more *keyrings*: keyplane keys (`key_id` / `key_ids`, used as
the SDK's KMS keyring uses a KMS key; they need an `engine`), raw AES wrapping keys
(`RawAesKeyring`) and raw RSA wrapping keys (`RawRsaKeyring`). Messages interoperate with the
Encryption SDKs (`aws-encryption-sdk` for Python decrypts them with the same raw keys, or with its
KMS provider pointed at `keyplane serve`).

    ring = keyplane.RawAesKeyring("my-namespace", "my-key", key_bytes)
    message = keyplane.encrypt_message(b"data", keyrings=[ring], encryption_context={"a": "b"})
    plaintext, context = keyplane.decrypt_message(message, keyrings=[ring])

`keyplane.stream.open_encrypting` / `open_decrypting` stream files of any size. Failures raise the
classes of `keyplane.exceptions`: InvalidCiphertextException (malformed, tampered or truncated
messages), IncorrectKeyException (no keyring unwraps the data key), KMSInvalidSignatureException,
LimitExceededException, ValidationException (bad settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Union

from . import _keyplane
from ._keyplane import KmsKeyring, RawAesKeyring, RawRsaKeyring

if TYPE_CHECKING:
    from ._api import Engine
    from .client import KMSClient

__all__ = [
    "DecryptedMessage",
    "Keyring",
    "KmsKeyring",
    "RawAesKeyring",
    "RawRsaKeyring",
    "decrypt_message",
    "encrypt_message",
    "keyrings",
]

Keyring = Union[KmsKeyring, RawAesKeyring, RawRsaKeyring]
EngineLike = Union["Engine", "KMSClient", _keyplane.Engine]
_Buffer = Union[bytes, bytearray, memoryview]

SUITES = (
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
    "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
    "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
    "AES_256_GCM_IV12_TAG16_NO_KDF",
)
"""The algorithm suites keyplane writes (the first is the default)."""


class DecryptedMessage(NamedTuple):
    """A decrypted message: its plaintext and the header's encryption context (check that it is
    what you expect; the signed suites add `aws-crypto-public-key`)."""

    plaintext: bytes
    encryption_context: dict[str, str]


def native_engine(engine: EngineLike) -> _keyplane.Engine:
    """The native engine handle of a `keyplane.Engine`, a `keyplane.client(...)` or a native one."""
    if isinstance(engine, _keyplane.Engine):
        return engine
    native = getattr(engine, "native", None)  # keyplane.Engine
    if isinstance(native, _keyplane.Engine):
        return native
    native = getattr(engine, "engine", None)  # keyplane.KMSClient
    if isinstance(native, _keyplane.Engine):
        return native
    raise TypeError(
        "engine must be a keyplane.Engine, a keyplane client or a keyplane._keyplane.Engine, "
        f"not {type(engine).__name__}"
    )


def keyrings(
    *,
    engine: EngineLike | None = None,
    key_id: str | None = None,
    key_ids: Sequence[str] = (),
    keyrings: Sequence[Keyring] = (),
    discovery: bool = False,
) -> list[Keyring]:
    """The keyrings of a call, in order: `key_id`, then `key_ids` (keyplane keys of `engine`),
    then `keyrings`, then the discovery keyring of `engine` (decryption only)."""
    if isinstance(key_ids, str):
        raise TypeError("key_ids must be a sequence of key ids, not a single string")
    ids = ([key_id] if key_id is not None else []) + list(key_ids)
    out: list[Keyring] = []
    if ids or discovery:
        if engine is None:
            raise TypeError("key_id, key_ids and discovery need an engine (engine=...)")
        native = native_engine(engine)
        out += [KmsKeyring(native, k) for k in ids]
        out += list(keyrings)
        if discovery:
            out.append(KmsKeyring(native))
        return out
    return list(keyrings)


def encrypt_message(
    plaintext: _Buffer,
    *,
    engine: EngineLike | None = None,
    key_id: str | None = None,
    key_ids: Sequence[str] = (),
    keyrings: Sequence[Keyring] = (),
    encryption_context: Mapping[str, str] | None = None,
    frame_length: int = 4096,
    algorithm: str | None = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
) -> bytes:
    """Encrypts `plaintext` into one message. The first keyring makes the data key; each adds an
    encrypted copy of it. `algorithm`: one of `SUITES` (default the first); a non-committing suite
    implies `commitment_policy="FORBID_ENCRYPT_ALLOW_DECRYPT"` unless one is given."""
    rings = _keyrings(engine, key_id, key_ids, keyrings, False)
    return _keyplane.encrypt_message(
        plaintext,
        keyrings=rings,
        encryption_context=encryption_context,
        frame_length=frame_length,
        algorithm=algorithm,
        commitment_policy=commitment_policy,
        max_encrypted_data_keys=max_encrypted_data_keys,
    )


def decrypt_message(
    message: _Buffer,
    *,
    engine: EngineLike | None = None,
    key_id: str | None = None,
    key_ids: Sequence[str] = (),
    keyrings: Sequence[Keyring] = (),
    discovery: bool = False,
    encryption_context: Mapping[str, str] | None = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
    max_buffered_plaintext: int | None = None,
) -> DecryptedMessage:
    """Decrypts one whole message; nothing is returned unless all of it (and a signed message's
    signature) verified. `encryption_context`: pairs the message's context must have
    (InvalidCiphertextException otherwise)."""
    rings = _keyrings(engine, key_id, key_ids, keyrings, discovery)
    plaintext, context = _keyplane.decrypt_message(
        message,
        keyrings=rings,
        encryption_context=encryption_context,
        commitment_policy=commitment_policy,
        max_encrypted_data_keys=max_encrypted_data_keys,
        max_buffered_plaintext=max_buffered_plaintext,
    )
    return DecryptedMessage(plaintext, context)


def _keyrings(  # for callers whose `keyrings` parameter hides the function (also stream.py)
    engine: EngineLike | None,
    key_id: str | None,
    key_ids: Sequence[str],
    rings: Sequence[Keyring],
    discovery: bool,
) -> list[Keyring]:
    return keyrings(
        engine=engine, key_id=key_id, key_ids=key_ids, keyrings=rings, discovery=discovery
    )
