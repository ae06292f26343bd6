"""The AWS Encryption SDK for Python (aws-encryption-sdk from PyPI) with a strict KMS master key
provider whose botocore clients reach keyplane through `AWS_ENDPOINT_URL_KMS` and trust it through
`AWS_CA_BUNDLE`: a 50 MB file encrypted (one GenerateDataKey) and decrypted (one Decrypt), compared
by SHA-256, and both calls found in the audit log by the request ids the clients were answered with.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from conftest import CA, MOTO, REGION, URL, audit_for, env, make_client

SIZE = 50 * 1024 * 1024


def test_encrypt_and_decrypt_50_mb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_arn = make_client("ALICE").create_key(Description="encryption sdk")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", URL)
    if isinstance(CA, str):
        monkeypatch.setenv("AWS_CA_BUNDLE", CA)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env("KP_ALICE_KEY"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env("KP_ALICE_SECRET"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    calls: list[tuple[str, str]] = []

    def seen(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        assert http_response.status_code == 200, parsed
        calls.append((model.name, parsed["ResponseMetadata"]["RequestId"]))

    session = botocore.session.Session()
    session.register("after-call.kms", seen)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=session
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )

    source = tmp_path / "plain.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(SIZE // len(block)):
            chunk = bytes([i & 0xFF]) + block[1:]
            digest.update(chunk)
            f.write(chunk)
    sealed = tmp_path / "sealed.bin"
    with open(source, "rb") as fin, open(sealed, "wb") as fout:
        with client.stream(
            mode="e", source=fin, key_provider=provider, encryption_context={"file": "plain.bin"}
        ) as encryptor:
            for piece in encryptor:
                fout.write(piece)
    source.unlink()
    assert sealed.stat().st_size > SIZE

    opened = hashlib.sha256()
    with open(sealed, "rb") as fin:
        with client.stream(mode="d", source=fin, key_provider=provider) as decryptor:
            for piece in decryptor:
                opened.update(piece)
            assert decryptor.header.encryption_context["file"] == "plain.bin"
    assert opened.hexdigest() == digest.hexdigest()
    assert [name for name, _ in calls] == ["GenerateDataKey", "Decrypt"], calls

    if MOTO:
        pytest.fail("the audit log is keyplane's")
    for name, request_id in calls:
        found = audit_for(request_id)
        assert len(found) == 1 and found[0]["eventName"] == name, (name, request_id, found)
        assert "AwsEncryptionSdkPython" in str(found[0]["_origin"].get("userAgent")), found[0][
            "_origin"
        ]
        assert found[0]["_origin"].get("accessKeyId") == env("KP_ALICE_KEY"), found[0]["_origin"]
        assert key_arn in [res["ARN"] for res in found[0]["resources"]], found[0]["resources"]
