"""Envelope encryption, as the service's walkthrough does it, with keyplane's boto3-compatible
client: GenerateDataKey gives a data key in plaintext and encrypted under a KMS key; the data is
encrypted locally with the plaintext key (AES-256-GCM, here with `cryptography` when installed),
which is then forgotten; the encrypted data key is stored beside the data. To read, Decrypt turns
the encrypted data key back into the plaintext key.

Then the same with the Pythonic API's batch call: one data key per record, all at once.

    python examples/envelope.py
"""

from __future__ import annotations

import os

import keyplane

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover
    AESGCM = None


def main() -> None:
    kms = keyplane.client("kms", region_name="eu-west-1")  # was: boto3.client("kms", ...)
    key_id = kms.create_key(Description="envelope example")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/envelope-example", TargetKeyId=key_id)
    context = {"purpose": "example", "record": "1"}

    # Encrypt: a data key per object; the plaintext key encrypts locally, then is dropped.
    data_key = kms.generate_data_key(
        KeyId="alias/envelope-example", KeySpec="AES_256", EncryptionContext=context
    )
    document = b"the quarterly numbers"
    if AESGCM is not None:
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(data_key["Plaintext"]).encrypt(nonce, document, None)
    else:  # without cryptography, let the engine seal the (small) document directly
        sealed = kms.encrypt(KeyId=key_id, Plaintext=document, EncryptionContext=context)[
            "CiphertextBlob"
        ]
    stored = {"encrypted_key": data_key["CiphertextBlob"], "data": sealed}
    del data_key

    # Decrypt: the encrypted data key names its KMS key; the context must match.
    plaintext_key = kms.decrypt(CiphertextBlob=stored["encrypted_key"], EncryptionContext=context)[
        "Plaintext"
    ]
    if AESGCM is not None:
        opened = AESGCM(plaintext_key).decrypt(stored["data"][:12], stored["data"][12:], None)
    else:
        opened = kms.decrypt(CiphertextBlob=stored["data"], EncryptionContext=context)["Plaintext"]
    assert opened == document
    arn = kms.describe_key(KeyId="alias/envelope-example")["KeyMetadata"]["Arn"]
    print(f"envelope round trip through {arn}")

    # The Pythonic API: 10,000 records, one data key each, in one batch call without the GIL.
    engine = keyplane.Engine()
    key = engine.create_key(alias="alias/records")
    data_keys = keyplane.ok(key.generate_data_keys(10_000, context={"table": "records"}))
    wrapped = [d.ciphertext for d in data_keys]
    unwrapped = keyplane.ok(engine.decrypt_many_secret(wrapped, context={"table": "records"}))
    assert all(bytes(a.plaintext) == bytes(b) for a, b in zip(data_keys[:100], unwrapped[:100]))
    for secret in unwrapped:
        secret.close()  # zeroed now, not whenever the garbage collector gets to it
    for d in data_keys:
        d.close()
    print(f"{len(data_keys)} data keys generated and unwrapped in two batch calls")


if __name__ == "__main__":
    main()
