"""Writes the seed corpus of the fuzz target `envelope_parse` (fuzz/corpus/envelope_parse/):
messages in every suite, framed (keyplane encrypt-file) and non-framed (the AWS Encryption SDK
for Python), under the target's raw AES key (namespace `fuzz`, name `key`, 32 bytes of 0x2a).

Run with the venv of scripts/test-envelope:
    KEYPLANE_CLI=target/debug/keyplane $VENV/bin/python tests/envelope/make_fuzz_seeds.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from keyplane_esdk_test_providers import RawAes, raw_aes

KEY = bytes([0x2A]) * 32
OUT = Path(__file__).resolve().parents[2] / "fuzz" / "corpus" / "envelope_parse"
CLI = os.environ.get("KEYPLANE_CLI", "keyplane")


class Fuzz(RawAes):  # type: ignore[misc]
    provider_id = "fuzz"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        key.write_bytes(KEY)
        for suite in ("0x0078", "0x0178", "0x0378", "0x0478", "0x0578"):
            policy = (
                "FORBID_ENCRYPT_ALLOW_DECRYPT"
                if suite < "0x0478"
                else "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"
            )
            for size in (0, 5, 40):
                plain = Path(tmp) / "plain"
                plain.write_bytes(bytes(range(size)))
                out = OUT / f"keyplane-{suite}-{size}"
                subprocess.run(
                    [
                        CLI,
                        "encrypt-file",
                        "--raw-aes",
                        f"fuzz,key,{key}",
                        "--suite",
                        suite,
                        "--commitment-policy",
                        policy,
                        "--frame-length",
                        "16",
                        "--context",
                        "a=b",
                        "--in",
                        str(plain),
                        "--out",
                        str(out),
                    ],
                    check=True,
                )
    provider = Fuzz()
    provider._key = KEY
    provider.add_master_key(b"key")
    for name, algorithm in (
        ("0x0178", Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA256),
        ("0x0478", Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY),
    ):
        committing = name == "0x0478"
        client = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
            if committing
            else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
        )
        message, _ = client.encrypt(
            source=b"non-framed body", key_provider=provider, algorithm=algorithm, frame_length=0
        )
        (OUT / f"sdk-nonframed-{name}").write_bytes(message)
    assert raw_aes  # the shared helper module is importable
    print(f"wrote {len(list(OUT.iterdir()))} seeds to {OUT}")


if __name__ == "__main__":
    main()
