"""Fixtures of the Encryption SDK interoperability suite: the keyplane CLI under test
(KEYPLANE_CLI), wrapping keys on disk, and a `keyplane serve` with a key and a credential for the
KMS master key provider."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CLI = os.environ.get("KEYPLANE_CLI", "keyplane")
PRINCIPAL = "arn:aws:iam::111122223333:user/alice"


def keyplane(
    *argv: str, data_dir: Path | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [CLI]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    cmd += list(argv)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if ok and run.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr.strip()}")
    return run


@dataclass
class Keys:
    dir: Path
    aes: bytes
    aes_path: Path
    rsa_pem: bytes
    rsa_path: Path
    rsa_public_path: Path


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    aes = os.urandom(32)
    (d / "aes.key").write_bytes(aes)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (d / "rsa.pem").write_bytes(pem)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (d / "rsa.pub.pem").write_bytes(public)
    return Keys(d, aes, d / "aes.key", pem, d / "rsa.pem", d / "rsa.pub.pem")


@dataclass
class Served:
    data_dir: Path
    key_arn: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("store") / "kp"
    keyplane("store", "init", data_dir=data_dir)
    meta = json.loads(keyplane("--json", "key", "create", data_dir=data_dir).stdout)
    arn = meta["KeyMetadata"]["Arn"]
    cred = json.loads(
        keyplane(
            "--json", "credentials", "create", "--principal", PRINCIPAL, data_dir=data_dir
        ).stdout
    )
    cmd = [
        CLI,
        "--json",
        "--data-dir",
        str(data_dir),
        "serve",
        "--tls-self-signed",
        "--listen",
        "127.0.0.1:0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
    )
    url = cert = ""
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"keyplane serve exited (rc {proc.poll()})")
        event = json.loads(line)
        if event.get("event") == "tls":
            cert = event["certificate"]
        elif event.get("event") == "listening":
            url = event["url"]
        elif event.get("event") == "ready":
            break
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL_KMS=url,
        AWS_CA_BUNDLE=str(Path(cert).resolve()),
        AWS_ACCESS_KEY_ID=cred["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=cred["SecretAccessKey"],
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield Served(data_dir, arn, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
