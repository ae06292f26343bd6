"""keyplane's envelope messages against the AWS Encryption SDK for Python and aws-encryption-cli:
messages made by `keyplane encrypt-file` decrypt there and messages made there decrypt with
`keyplane decrypt-file`, for every suite keyplane supports, with raw AES and raw RSA keyrings
(every padding), framed with several frame lengths and (reading) non-framed, with an encryption
context; and through `keyplane serve` with the SDK's KMS master key provider and the CLI's
default aws-kms provider. scripts/test-envelope runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import aws_encryption_sdk
import pytest
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from conftest import Keys, Served, keyplane
from keyplane_esdk_test_providers import AES_NAMESPACE, RSA_NAMESPACE, aes_provider, rsa_provider

CONTEXT = {"purpose": "interop", "tenant": "t-1"}
SIZES = [0, 1, 4095, 4096, 4097, 70_001]
PADDINGS = [
    "RSA_PKCS1",
    "RSA_OAEP_SHA1_MGF1",
    "RSA_OAEP_SHA256_MGF1",
    "RSA_OAEP_SHA384_MGF1",
    "RSA_OAEP_SHA512_MGF1",
]
SUITES = {
    0x0078: Algorithm.AES_256_GCM_IV12_TAG16,
    0x0178: Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
    0x0378: Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    0x0478: Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    0x0578: Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}
CLI_BIN = Path(os.environ.get("ESDK_VENV_BIN", "")) / "aws-encryption-cli"


def policy_for(suite: int) -> CommitmentPolicy:
    if suite in (0x0478, 0x0578):
        return CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    return CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT


def policy_name(suite: int) -> str:
    return policy_for(suite).name


def plaintext(size: int) -> bytes:
    return os.urandom(size)


def context_args() -> list[str]:
    out: list[str] = []
    for k, v in CONTEXT.items():
        out += ["--context", f"{k}={v}"]
    return out


def kp_encrypt(tmp: Path, data: bytes, keyring: list[str], suite: int, frame: int = 4096) -> bytes:
    (tmp / "plain").write_bytes(data)
    keyplane(
        "encrypt-file",
        "--in",
        str(tmp / "plain"),
        "--out",
        str(tmp / "msg"),
        "--suite",
        f"0x{suite:04x}",
        "--frame-length",
        str(frame),
        "--commitment-policy",
        policy_name(suite),
        *keyring,
        *context_args(),
    )
    return (tmp / "msg").read_bytes()


def kp_decrypt(
    tmp: Path, message: bytes, keyring: list[str], ok: bool = True, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp / "in.msg").write_bytes(message)
    out = tmp / "out"
    if out.exists():
        out.unlink()
    return keyplane(
        "decrypt-file",
        "--in",
        str(tmp / "in.msg"),
        "--out",
        str(out),
        "--commitment-policy",
        "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
        *keyring,
        *(extra or []),
        ok=ok,
    )


def aes_args(keys: Keys) -> list[str]:
    return ["--raw-aes", f"{AES_NAMESPACE},aes-key,{keys.aes_path}"]


def rsa_args(keys: Keys, padding: str, public: bool = False) -> list[str]:
    path = keys.rsa_public_path if public else keys.rsa_path
    return ["--raw-rsa", f"{RSA_NAMESPACE},rsa-key,{padding},{path}"]


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("size", SIZES)
def test_keyplane_to_sdk_raw_aes(keys: Keys, tmp_path: Path, suite: int, size: int) -> None:
    data = plaintext(size)
    message = kp_encrypt(tmp_path, data, aes_args(keys), suite, frame=4096)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy_for(suite))
    pt, header = client.decrypt(source=message, key_provider=aes_provider(keys.aes, "aes-key"))
    assert pt == data
    assert header.algorithm == SUITES[suite]
    for k, v in CONTEXT.items():
        assert header.encryption_context[k] == v
    assert ("aws-crypto-public-key" in header.encryption_context) == (suite in (0x0378, 0x0578))


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("frame", [0, 128, 4096])
def test_sdk_to_keyplane_raw_aes_framed_and_non_framed(
    keys: Keys, tmp_path: Path, suite: int, frame: int
) -> None:
    data = plaintext(10_000)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy_for(suite))
    message, _ = client.encrypt(
        source=data,
        key_provider=aes_provider(keys.aes, "aes-key"),
        encryption_context=CONTEXT,
        algorithm=SUITES[suite],
        frame_length=frame,
    )
    kp_decrypt(tmp_path, message, aes_args(keys), extra=context_args())
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize("padding", PADDINGS)
def test_raw_rsa_both_ways_every_padding(keys: Keys, tmp_path: Path, padding: str) -> None:
    data = plaintext(9000)
    provider = rsa_provider(keys.rsa_pem, padding, "rsa-key")
    client = aws_encryption_sdk.EncryptionSDKClient()
    # keyplane (wrapping with the public key alone) -> SDK
    message = kp_encrypt(tmp_path, data, rsa_args(keys, padding, public=True), 0x0578)
    pt, header = client.decrypt(source=message, key_provider=provider)
    assert pt == data
    assert header.encrypted_data_keys.pop().key_provider.provider_id == RSA_NAMESPACE
    # SDK -> keyplane
    message, _ = client.encrypt(source=data, key_provider=provider, encryption_context=CONTEXT)
    kp_decrypt(tmp_path, message, rsa_args(keys, padding))
    assert (tmp_path / "out").read_bytes() == data
    # A different padding does not unwrap it: IncorrectKeyException, no output left behind.
    other = "RSA_OAEP_SHA256_MGF1" if padding != "RSA_OAEP_SHA256_MGF1" else "RSA_OAEP_SHA1_MGF1"
    run = kp_decrypt(tmp_path, message, rsa_args(keys, other), ok=False)
    assert run.returncode != 0 and "IncorrectKeyException" in run.stderr
    assert not (tmp_path / "out").exists()


def test_several_keyrings_each_decrypts(keys: Keys, tmp_path: Path) -> None:
    data = plaintext(5000)
    message = kp_encrypt(
        tmp_path, data, aes_args(keys) + rsa_args(keys, "RSA_OAEP_SHA256_MGF1"), 0x0478
    )
    client = aws_encryption_sdk.EncryptionSDKClient()
    for provider in (
        aes_provider(keys.aes, "aes-key"),
        rsa_provider(keys.rsa_pem, "RSA_OAEP_SHA256_MGF1", "rsa-key"),
    ):
        pt, header = client.decrypt(source=message, key_provider=provider)
        assert pt == data and len(header.encrypted_data_keys) == 2
    both = aes_provider(keys.aes, "aes-key")
    both.add_master_key_provider(rsa_provider(keys.rsa_pem, "RSA_OAEP_SHA256_MGF1", "rsa-key"))
    message, _ = client.encrypt(source=data, key_provider=both)
    kp_decrypt(tmp_path, message, rsa_args(keys, "RSA_OAEP_SHA256_MGF1"))
    assert (tmp_path / "out").read_bytes() == data


def test_tampered_sdk_message_is_refused_with_no_output(keys: Keys, tmp_path: Path) -> None:
    data = plaintext(20_000)
    client = aws_encryption_sdk.EncryptionSDKClient()
    message, _ = client.encrypt(
        source=data, key_provider=aes_provider(keys.aes, "aes-key"), frame_length=1024
    )
    for at in (len(message) // 2, len(message) - 1):
        bad = bytearray(message)
        bad[at] ^= 1
        run = kp_decrypt(tmp_path, bytes(bad), aes_args(keys), ok=False)
        assert run.returncode != 0
        assert (
            "InvalidCiphertextException" in run.stderr
            or "KMSInvalidSignatureException" in run.stderr
        )
        assert not (tmp_path / "out").exists()
    run = kp_decrypt(tmp_path, message[:-200], aes_args(keys), ok=False)
    assert "InvalidCiphertextException" in run.stderr and "truncated" in run.stderr


def test_required_context_on_decrypt(keys: Keys, tmp_path: Path) -> None:
    message = kp_encrypt(tmp_path, b"abc", aes_args(keys), 0x0478)
    run = kp_decrypt(
        tmp_path, message, aes_args(keys), ok=False, extra=["--context", "purpose=other"]
    )
    assert run.returncode != 0 and "purpose=other" in run.stderr


def test_stdin_to_stdout(keys: Keys) -> None:
    data = plaintext(12_345)
    sealed = subprocess.run(
        [os.environ.get("KEYPLANE_CLI", "keyplane"), "encrypt-file", *aes_args(keys)],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    client = aws_encryption_sdk.EncryptionSDKClient()
    pt, _ = client.decrypt(source=sealed, key_provider=aes_provider(keys.aes, "aes-key"))
    assert pt == data
    opened = subprocess.run(
        [os.environ.get("KEYPLANE_CLI", "keyplane"), "decrypt-file", *aes_args(keys)],
        input=sealed,
        capture_output=True,
        check=True,
    ).stdout
    assert opened == data


def cli_env(keys: Keys) -> dict[str, str]:
    env = dict(os.environ)
    env["KEYPLANE_ESDK_AES_KEY"] = str(keys.aes_path)
    return env


def test_aws_encryption_cli_raw_aes_both_ways(keys: Keys, tmp_path: Path) -> None:
    data = plaintext(100_000)
    (tmp_path / "plain").write_bytes(data)
    wrapping = ["--wrapping-keys", "provider=keyplane-raw-aes", "key=aes-key"]
    subprocess.run(
        [
            str(CLI_BIN),
            "--encrypt",
            "-i",
            str(tmp_path / "plain"),
            "-o",
            str(tmp_path / "cli.msg"),
            *wrapping,
            "-S",
            "--encryption-context",
            "purpose=interop",
        ],
        check=True,
        env=cli_env(keys),
    )
    kp_decrypt(
        tmp_path,
        (tmp_path / "cli.msg").read_bytes(),
        aes_args(keys),
        extra=["--context", "purpose=interop"],
    )
    assert (tmp_path / "out").read_bytes() == data
    message = kp_encrypt(tmp_path, data, aes_args(keys), 0x0578)
    (tmp_path / "kp.msg").write_bytes(message)
    subprocess.run(
        [
            str(CLI_BIN),
            "--decrypt",
            "-i",
            str(tmp_path / "kp.msg"),
            "-o",
            str(tmp_path / "cli.out"),
            *wrapping,
            "-S",
            "--encryption-context",
            "purpose=interop",
        ],
        check=True,
        env=cli_env(keys),
    )
    assert (tmp_path / "cli.out").read_bytes() == data


def test_kms_through_keyplane_serve(served: Served, tmp_path: Path) -> None:
    import botocore.session

    data = plaintext(300_000)
    (tmp_path / "plain").write_bytes(data)
    key = ["--key-id", served.key_arn]
    keyplane(
        "encrypt-file",
        "--in",
        str(tmp_path / "plain"),
        "--out",
        str(tmp_path / "kp.msg"),
        *key,
        *context_args(),
        data_dir=served.data_dir,
    )
    # The SDK's strict KMS provider, its botocore client pointed at keyplane serve.
    old = dict(os.environ)
    os.environ.update(served.env)
    try:
        provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
            key_ids=[served.key_arn], botocore_session=botocore.session.Session()
        )
        client = aws_encryption_sdk.EncryptionSDKClient()
        pt, header = client.decrypt(
            source=(tmp_path / "kp.msg").read_bytes(), key_provider=provider
        )
        assert pt == data
        edk = header.encrypted_data_keys.pop()
        assert edk.key_provider.provider_id == "aws-kms"
        assert edk.key_provider.key_info == served.key_arn.encode()
        sdk_msg, _ = client.encrypt(source=data, key_provider=provider, encryption_context=CONTEXT)
    finally:
        os.environ.clear()
        os.environ.update(old)
    (tmp_path / "sdk.msg").write_bytes(sdk_msg)
    keyplane(
        "decrypt-file",
        "--in",
        str(tmp_path / "sdk.msg"),
        "--out",
        str(tmp_path / "sdk.out"),
        *key,
        *context_args(),
        data_dir=served.data_dir,
    )
    assert (tmp_path / "sdk.out").read_bytes() == data
    # aws-encryption-cli with its default aws-kms provider, both ways.
    wrapping = ["--wrapping-keys", f"key={served.key_arn}"]
    subprocess.run(
        [
            str(CLI_BIN),
            "--decrypt",
            "-i",
            str(tmp_path / "kp.msg"),
            "-o",
            str(tmp_path / "cli.out"),
            *wrapping,
            "-S",
        ],
        check=True,
        env=served.env,
    )
    assert (tmp_path / "cli.out").read_bytes() == data
    subprocess.run(
        [
            str(CLI_BIN),
            "--encrypt",
            "-i",
            str(tmp_path / "plain"),
            "-o",
            str(tmp_path / "cli.msg"),
            *wrapping,
            "-S",
            "--encryption-context",
            "via=cli",
        ],
        check=True,
        env=served.env,
    )
    keyplane(
        "decrypt-file",
        "--discovery",
        "--in",
        str(tmp_path / "cli.msg"),
        "--out",
        str(tmp_path / "cli2.out"),
        "--context",
        "via=cli",
        data_dir=served.data_dir,
    )
    assert (tmp_path / "cli2.out").read_bytes() == data


def test_signed_message_with_a_bad_signature_leaves_no_output_file(
    keys: Keys, tmp_path: Path
) -> None:
    # decrypt-file --out streams a signed message's frames as they authenticate and removes the
    # file when the signature fails at the end; on standard output nothing is released.
    data = plaintext(50_000)
    message = bytearray(kp_encrypt(tmp_path, data, aes_args(keys), 0x0578, frame=1024))
    message[-1] ^= 1
    run = kp_decrypt(tmp_path, bytes(message), aes_args(keys), ok=False)
    assert "KMSInvalidSignatureException" in run.stderr
    assert not (tmp_path / "out").exists()
    piped = subprocess.run(
        [os.environ.get("KEYPLANE_CLI", "keyplane"), "decrypt-file", *aes_args(keys)],
        input=bytes(message),
        capture_output=True,
    )
    assert piped.returncode != 0 and piped.stdout == b""
