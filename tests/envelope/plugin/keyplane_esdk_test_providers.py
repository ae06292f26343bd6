"""Raw AES and raw RSA master key providers of the AWS Encryption SDK for Python, for keyplane's
interoperability tests (tests/envelope), and the same providers as aws-encryption-cli plugins
(`--wrapping-keys provider=keyplane-raw-aes key=NAME`), their key files named by the environment
variables KEYPLANE_ESDK_AES_KEY (32 raw bytes) and KEYPLANE_ESDK_RSA_KEY (PKCS#8 PEM).
"""

from __future__ import annotations

import os

from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

AES_NAMESPACE = "keyplane-aes"
RSA_NAMESPACE = "keyplane-rsa"


class RawAes(RawMasterKeyProvider):  # type: ignore[misc]
    """Every key name maps to the one AES wrapping key given."""

    provider_id = AES_NAMESPACE
    _key = b""

    def _get_raw_key(self, key_id: bytes) -> WrappingKey:
        algorithm = {
            16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
            24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
            32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        }[len(self._key)]
        return WrappingKey(
            wrapping_algorithm=algorithm,
            wrapping_key=self._key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )


class RawRsa(RawMasterKeyProvider):  # type: ignore[misc]
    """Every key name maps to the one RSA private key given, with the padding given."""

    provider_id = RSA_NAMESPACE
    _pem = b""
    _padding = "RSA_OAEP_SHA256_MGF1"

    def _get_raw_key(self, key_id: bytes) -> WrappingKey:
        return WrappingKey(
            wrapping_algorithm=getattr(WrappingAlgorithm, self._padding),
            wrapping_key=self._pem,
            wrapping_key_type=EncryptionKeyType.PRIVATE,
        )


def raw_aes(key: bytes) -> RawAes:
    provider = RawAes()
    provider._key = key
    return provider


def raw_rsa(pem: bytes, padding: str) -> RawRsa:
    provider = RawRsa()
    provider._pem = pem
    provider._padding = padding
    return provider


def aes_provider(key: bytes, name: str) -> RawAes:
    provider = raw_aes(key)
    provider.add_master_key(name.encode())
    return provider


def rsa_provider(pem: bytes, padding: str, name: str) -> RawRsa:
    provider = raw_rsa(pem, padding)
    provider.add_master_key(name.encode())
    return provider


def cli_raw_aes(**kwargs: object) -> RawAes:
    with open(os.environ["KEYPLANE_ESDK_AES_KEY"], "rb") as f:
        return raw_aes(f.read())


def cli_raw_rsa(**kwargs: object) -> RawRsa:
    with open(os.environ["KEYPLANE_ESDK_RSA_KEY"], "rb") as f:
        pem = f.read()
    return raw_rsa(pem, os.environ.get("KEYPLANE_ESDK_RSA_PADDING", "RSA_OAEP_SHA256_MGF1"))
