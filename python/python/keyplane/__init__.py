"""keyplane: an in-process key management engine with AWS KMS semantics.

Two interfaces over one engine:

- `keyplane.client("kms", region_name=...)`: a drop-in for boto3's KMS client (same methods,
  parameters, responses, paginators and error classes).
- `keyplane.Engine()`: a Pythonic API with `Key` objects and batch methods (`encrypt_many`,
  `decrypt_many`, `generate_data_keys`, `sign_many`, `verify_many`, `mac_many`, ...) that run with
  the GIL released on the engine's worker threads.

Secrets (plaintext data keys, private keys, shared secrets) come as `SecretBytes`, zeroed when
closed or collected, in the Pythonic API, and with `client(..., secret_bytes=True)`.

Envelope encryption in the AWS Encryption SDK's message format: `keyplane.encrypt_message` /
`decrypt_message` (module `keyplane.envelope`) with keyplane keys and `RawAesKeyring` /
`RawRsaKeyring`, and file-like streams in `keyplane.stream`.
"""

from . import envelope, exceptions, stream
from ._api import Buffer, DataKey, DataKeyPair, Engine, Key, ok
from ._keyplane import SecretBytes, __version__, fips_mode
from .client import DEFAULT_ACCOUNT_ID, KMSClient, client, default_engine
from .envelope import (
    DecryptedMessage,
    KmsKeyring,
    RawAesKeyring,
    RawRsaKeyring,
    decrypt_message,
    encrypt_message,
)
from .exceptions import ClientError, KeyplaneError, ParamValidationError

__all__ = [
    "__version__",
    "Buffer",
    "ClientError",
    "DataKey",
    "DataKeyPair",
    "DecryptedMessage",
    "DEFAULT_ACCOUNT_ID",
    "Engine",
    "Key",
    "KeyplaneError",
    "KMSClient",
    "KmsKeyring",
    "ParamValidationError",
    "RawAesKeyring",
    "RawRsaKeyring",
    "SecretBytes",
    "client",
    "decrypt_message",
    "default_engine",
    "encrypt_message",
    "envelope",
    "exceptions",
    "fips_mode",
    "ok",
    "stream",
]
