"""The aws CLI (awscli from PyPI, in the suite's virtual environment) against `keyplane serve`, with
`--endpoint-url`, `--ca-bundle` and credentials from environment variables."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import CA, REGION, URL, env

AWS = str(Path(sys.executable).parent / "aws")


def aws(*argv: str, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [AWS, "kms", *argv, "--endpoint-url", URL, "--output", "json"]
    if isinstance(CA, str):
        cmd += ["--ca-bundle", CA]
    run_env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=env("KP_ALICE_KEY"),
        AWS_SECRET_ACCESS_KEY=env("KP_ALICE_SECRET"),
        AWS_DEFAULT_REGION=REGION,
        AWS_MAX_ATTEMPTS="1",
    )
    run = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=120)
    if expect_ok:
        assert run.returncode == 0, f"{' '.join(argv)}: exit {run.returncode}: {run.stderr}"
    return run


def out(*argv: str) -> dict[str, Any]:
    return dict(json.loads(aws(*argv).stdout))


def test_create_encrypt_decrypt(tmp_path: Path) -> None:
    key = out("create-key", "--description", "aws cli")["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["Arn"].endswith(key["KeyId"])
    plaintext = bytes(range(256)) * 8 + b"\x00\xff\n\r"
    (tmp_path / "plain.bin").write_bytes(plaintext)
    sealed = out(
        "encrypt",
        "--key-id",
        key["KeyId"],
        "--plaintext",
        f"fileb://{tmp_path / 'plain.bin'}",
        "--encryption-context",
        "purpose=cli",
    )
    assert sealed["KeyId"] == key["Arn"]
    (tmp_path / "sealed.bin").write_bytes(base64.b64decode(sealed["CiphertextBlob"]))
    opened = out(
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{tmp_path / 'sealed.bin'}",
        "--encryption-context",
        "purpose=cli",
    )
    assert base64.b64decode(opened["Plaintext"]) == plaintext  # byte for byte
    wrong = aws(
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{tmp_path / 'sealed.bin'}",
        "--encryption-context",
        "purpose=other",
        expect_ok=False,
    )
    assert wrong.returncode != 0 and "InvalidCiphertextException" in wrong.stderr


def test_list_keys_paginates() -> None:
    mine = [
        out("create-key", "--description", f"cli page {i}")["KeyMetadata"]["KeyId"]
        for i in range(5)
    ]
    # --page-size 2: the CLI follows NextMarker itself and prints every key once.
    listed = [k["KeyId"] for k in out("list-keys", "--page-size", "2")["Keys"]]
    assert len(listed) == len(set(listed)) and set(mine) <= set(listed)
    # --max-items 2: one page of two and a token to go on from.
    first = out("list-keys", "--max-items", "2")
    assert len(first["Keys"]) == 2 and first.get("NextToken")
    rest: list[str] = [
        k["KeyId"]
        for k in out("list-keys", "--starting-token", first["NextToken"], "--page-size", "2")[
            "Keys"
        ]
    ]
    assert not set(rest) & {k["KeyId"] for k in first["Keys"]}
    assert sorted(rest + [k["KeyId"] for k in first["Keys"]]) == sorted(listed)


def test_sign_verify(tmp_path: Path) -> None:
    key = out("create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")[
        "KeyMetadata"
    ]
    (tmp_path / "message.txt").write_bytes(b"release v1.2.3")
    signed = out(
        "sign",
        "--key-id",
        key["KeyId"],
        "--message",
        f"fileb://{tmp_path / 'message.txt'}",
        "--message-type",
        "RAW",
        "--signing-algorithm",
        "ECDSA_SHA_256",
    )
    (tmp_path / "signature.bin").write_bytes(base64.b64decode(signed["Signature"]))
    verified = out(
        "verify",
        "--key-id",
        key["KeyId"],
        "--message",
        f"fileb://{tmp_path / 'message.txt'}",
        "--message-type",
        "RAW",
        "--signing-algorithm",
        "ECDSA_SHA_256",
        "--signature",
        f"fileb://{tmp_path / 'signature.bin'}",
    )
    assert verified["SignatureValid"] is True
    (tmp_path / "other.txt").write_bytes(b"release v6.6.6")
    forged = aws(
        "verify",
        "--key-id",
        key["KeyId"],
        "--message",
        f"fileb://{tmp_path / 'other.txt'}",
        "--message-type",
        "RAW",
        "--signing-algorithm",
        "ECDSA_SHA_256",
        "--signature",
        f"fileb://{tmp_path / 'signature.bin'}",
        expect_ok=False,
    )
    assert forged.returncode != 0 and "KMSInvalidSignatureException" in forged.stderr
