"""The Pythonic API: Engine, Key objects, snake_case keywords, and batch methods that return one
entry per item, the error object in place of an item that failed."""

from __future__ import annotations

import datetime
import os

import pytest
from conftest import ALICE

import keyplane
from keyplane import exceptions


def test_keys_and_aliases(engine: keyplane.Engine) -> None:
    key = engine.create_key(description="orders", tags={"team": "payments"}, alias="alias/orders")
    assert key.key_spec == "SYMMETRIC_DEFAULT" and key.state == "Enabled" and key.enabled
    assert key.arn.endswith(key.key_id) and isinstance(key.creation_date, datetime.datetime)
    assert engine.key("alias/orders") == key
    assert engine.aliases() == {"alias/orders": key.key_id}
    assert key.aliases == ["alias/orders"] and key.tags == {"team": "payments"}
    key.tag(env="prod")
    key.untag("team")
    assert key.tags == {"env": "prod"}
    key.set_description("orders v2")
    assert key.description == "orders v2"
    key.disable()
    assert key.state == "Disabled"
    with pytest.raises(exceptions.DisabledException) as info:
        key.encrypt(b"x")
    assert info.value.operation_name == "Encrypt"
    key.enable()
    date = key.schedule_deletion(7)
    assert key.state == "PendingDeletion" and date > key.creation_date
    key.cancel_deletion()
    assert key.state == "Disabled"
    assert [k.key_id for k in engine.keys()] == [key.key_id]


def test_single_calls(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    blob = key.encrypt(b"secret", context={"tenant": "1"})
    assert engine.decrypt(blob, context={"tenant": "1"}) == b"secret"
    with pytest.raises(exceptions.InvalidCiphertextException):
        engine.decrypt(blob)
    other = engine.create_key()
    moved = engine.re_encrypt(blob, other.key_id, source_context={"tenant": "1"})
    assert other.decrypt(moved) == b"secret"
    before = key.metadata["CurrentKeyMaterialId"]
    key.rotate()
    assert key.metadata["CurrentKeyMaterialId"] != before
    assert key.decrypt(blob, context={"tenant": "1"}) == b"secret"
    assert len(engine.random(16)) == 16


def test_signing_and_macs(engine: keyplane.Engine) -> None:
    signer = engine.create_key(key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    signature = signer.sign(b"m")
    assert signer.verify(b"m", signature) is True
    assert signer.verify(b"tampered", signature) is False
    import hashlib

    assert signer.verify(hashlib.sha256(b"m").digest(), signature, digest=True) is True
    assert len(signer.public_key()) == 91
    macer = engine.create_key(key_spec="HMAC_512", key_usage="GENERATE_VERIFY_MAC")
    mac = macer.mac(b"m")
    assert macer.verify_mac(b"m", mac) and not macer.verify_mac(b"n", mac)
    with pytest.raises(ValueError, match="MacAlgorithms"):
        signer.mac(b"m")


def test_batches_report_errors_per_item(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    results = key.encrypt_many([b"a", b"", b"c"])
    assert isinstance(results[0], bytes) and isinstance(results[2], bytes)
    error = results[1]
    assert isinstance(error, exceptions.ValidationException)
    assert (
        error.operation_name == "Encrypt"
        and error.response["Error"]["Code"] == "ValidationException"
    )
    with pytest.raises(exceptions.ValidationException):
        keyplane.ok(results)

    blobs = keyplane.ok(key.encrypt_many([b"a", b"b"], contexts=[{"n": "1"}, {"n": "2"}]))
    opened = engine.decrypt_many(blobs + [b"garbage"], contexts=[{"n": "1"}, {"n": "2"}, None])
    assert opened[:2] == [b"a", b"b"] and isinstance(
        opened[2], exceptions.InvalidCiphertextException
    )
    wrong = engine.decrypt_many(blobs, context={"n": "1"})
    assert wrong[0] == b"a" and isinstance(wrong[1], exceptions.InvalidCiphertextException)
    with pytest.raises(exceptions.ValidationException):
        key.encrypt_many([b"a"], contexts=[])

    other = engine.create_key()
    moved = keyplane.ok(engine.re_encrypt_many(blobs[:1], other.key_id, source_context={"n": "1"}))
    assert other.decrypt(moved[0]) == b"a"
    assert engine.encrypt_batch is not None and engine.decrypt_batch is not None


def test_data_key_batches(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    data_keys = keyplane.ok(key.generate_data_keys(100, context={"c": "1"}))
    assert len(data_keys) == 100 and len({bytes(d.plaintext) for d in data_keys}) == 100
    for d in data_keys[:5]:
        assert engine.decrypt(d.ciphertext, context={"c": "1"}) == bytes(d.plaintext)
    assert (
        len(
            bytes(
                keyplane.ok(engine.generate_data_keys(key.key_id, 2, number_of_bytes=7))[
                    0
                ].plaintext
            )
        )
        == 7
    )
    signer = engine.create_key(key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    failed = engine.generate_data_keys(signer.key_id, 3)
    assert all(isinstance(f, exceptions.InvalidKeyUsageException) for f in failed)


def test_sign_verify_and_mac_batches(engine: keyplane.Engine) -> None:
    signer = engine.create_key(key_spec="ECC_NIST_P384", key_usage="SIGN_VERIFY")
    messages = [f"m{i}".encode() for i in range(100)]
    signatures = keyplane.ok(signer.sign_many(messages))
    assert signer.verify_many(messages, signatures) == [True] * 100
    assert signer.verify_many(messages[1:] + messages[:1], signatures)[:3] == [False] * 3
    bad_algorithm = engine.sign_many(signer.key_id, messages[:2], "ECDSA_SHA_256")
    assert all(isinstance(e, keyplane.KeyplaneError) for e in bad_algorithm)
    with pytest.raises(exceptions.ValidationException):
        signer.verify_many(messages, signatures[:5])

    macer = engine.create_key(key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    macs = keyplane.ok(macer.mac_many(messages))
    assert macs == [macer.mac(m) for m in messages]
    assert macer.verify_mac_many(messages, macs) == [True] * 100
    assert macer.verify_mac_many(messages, macs[::-1])[0] is False
    randoms = engine.random_many([1, 16, 0, 2000])
    assert [len(r) for r in randoms[:2]] == [1, 16]
    assert all(isinstance(r, exceptions.ValidationException) for r in randoms[2:])


def test_principals_and_sharing_with_the_client(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    alice = engine.as_principal(ALICE)
    assert alice.principal == ALICE and engine.principal.endswith(":root")
    blob = alice.encrypt(key.key_id, b"x")
    outsider = engine.as_principal("arn:aws:iam::444455556666:user/mallory")
    with pytest.raises(exceptions.AccessDeniedException):
        outsider.decrypt(blob)
    assert all(
        isinstance(r, exceptions.AccessDeniedException)
        for r in outsider.encrypt_many(key.key_id, [b"x"] * 3)
    )
    kms = engine.client()
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert kms.engine.same_engine(engine.native) and not engine.native.same_engine(
        keyplane.Engine().native
    )
    assert keyplane.client("kms", engine=engine, principal=ALICE).engine.principal == ALICE


def test_engine_settings() -> None:
    engine = keyplane.Engine(
        region="eu-central-1", account_id="444455556666", worker_threads=3, lock_policy="warn"
    )
    assert (engine.region, engine.account_id, engine.worker_threads) == (
        "eu-central-1",
        "444455556666",
        3,
    )
    assert engine.native.max_plaintext_bytes == 4096
    with pytest.raises(exceptions.ValidationException):
        keyplane.Engine(lock_policy="maybe")
    with pytest.raises(exceptions.ValidationException):
        keyplane.Engine(account_id="12")
    with pytest.raises(exceptions.ValidationException):
        keyplane.Engine(rate_quotas={"nonsense": 1})
    assert keyplane.__version__
    # On AWS-LC's FIPS module exactly when built so (scripts/test-python's FIPS build sets
    # KEYPLANE_EXPECT_FIPS=1).
    assert keyplane.fips_mode() is (os.environ.get("KEYPLANE_EXPECT_FIPS") == "1")
