"""Issue 17, the Python side: the boto3-compatible client says what the engine says, and DryRun
runs the real call's checks.

The parity cases (a missing key, an alias where only key ids are allowed, an empty plaintext, an
algorithm that does not fit the key spec) carry the same codes and exact messages in
engine/tests/service_behaviour.rs and service_messages.rs, cli/tests/service_parity.rs and
tests/c/test_service_messages.c.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from conftest import ALICE

import keyplane

DRY_RUN = (
    "DryRunOperationException",
    "The request would have succeeded, but the DryRun option is set.",
)
MISSING = "11111111-2222-3333-4444-555555555555"
EMPTY_PLAINTEXT = (
    "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
    "Member must have length greater than or equal to 1"
)


def client_error(call: Callable[[], Any]) -> tuple[str, str]:
    """The code and message of the client's error, as botocore's ClientError shows them."""
    with pytest.raises(keyplane.KeyplaneError) as info:
        call()
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def engine_error(call: Callable[[], Any]) -> tuple[str, str]:
    """The code and message of the native engine's error."""
    with pytest.raises(keyplane.KeyplaneError) as info:
        call()
    return info.value.code, info.value.message


def test_the_client_shows_the_engines_codes_and_messages(kms: Any) -> None:
    native = kms.engine
    created = kms.create_key()["KeyMetadata"]
    key_id, arn = created["KeyId"], created["Arn"]
    arn_prefix = arn[: arn.index("key/")]
    ec_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)

    missing = ("NotFoundException", f"Key '{arn_prefix}key/{MISSING}' does not exist")
    assert client_error(lambda: kms.describe_key(KeyId=MISSING)) == missing
    assert engine_error(lambda: native.describe_key(key_id=MISSING)) == missing

    alias = ("NotFoundException", "Invalid keyId 'alias/app'")
    assert client_error(lambda: kms.enable_key(KeyId="alias/app")) == alias
    assert engine_error(lambda: native.enable_key(key_id="alias/app")) == alias

    # The engine's generated validation, in the service's format.
    empty = ("ValidationException", EMPTY_PLAINTEXT)
    assert client_error(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"")) == empty
    assert engine_error(lambda: native.encrypt(key_id=key_id, plaintext=b"")) == empty

    algorithm = (
        "InvalidKeyUsageException",
        "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.",
    )
    assert (
        client_error(lambda: kms.sign(KeyId=ec_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_384"))
        == algorithm
    )
    assert (
        engine_error(
            lambda: native.sign(key_id=ec_key, message=b"m", signing_algorithm="ECDSA_SHA_384")
        )
        == algorithm
    )


def test_dry_run_grant_calls_check_as_the_real_call_and_change_nothing(
    kms: Any, key_id: str
) -> None:
    grant = {"KeyId": key_id, "GranteePrincipal": ALICE, "Operations": ["Decrypt"]}
    assert client_error(lambda: kms.create_grant(**grant, DryRun=True)) == DRY_RUN
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    # The real call's checks: an alias where only key ids are allowed, a missing key.
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    assert client_error(
        lambda: kms.create_grant(**{**grant, "KeyId": "alias/app"}, DryRun=True)
    ) == (
        "NotFoundException",
        "Invalid keyId 'alias/app'",
    )
    assert (
        client_error(lambda: kms.create_grant(**{**grant, "KeyId": MISSING}, DryRun=True))[0]
        == "NotFoundException"
    )
    # Authorization: a principal the key policy does not allow is refused.
    mallory = keyplane.client(
        "kms",
        region_name="eu-west-1",
        engine=kms.engine.for_principal("arn:aws:iam::444455556666:user/mallory"),
    )
    assert (
        client_error(lambda: mallory.create_grant(**grant, DryRun=True))[0]
        == "AccessDeniedException"
    )

    real = kms.create_grant(**grant)
    assert (
        client_error(lambda: kms.revoke_grant(KeyId=key_id, GrantId=real["GrantId"], DryRun=True))
        == DRY_RUN
    )
    assert (
        client_error(lambda: kms.retire_grant(KeyId=key_id, GrantId=real["GrantId"], DryRun=True))
        == DRY_RUN
    )
    assert client_error(lambda: kms.revoke_grant(KeyId=key_id, GrantId="0" * 64, DryRun=True))[
        0
    ] == ("InvalidGrantIdException")
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]] == [real["GrantId"]]


def test_dry_run_data_plane_calls_and_ignore_ciphertext(kms: Any, key_id: str) -> None:
    assert client_error(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True)) == DRY_RUN
    assert (
        client_error(lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", DryRun=True))
        == DRY_RUN
    )
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert client_error(lambda: kms.decrypt(CiphertextBlob=blob, DryRun=True)) == DRY_RUN
    # Without the modifier the ciphertext is checked; with it, only the authorization for KeyId.
    assert client_error(lambda: kms.decrypt(CiphertextBlob=b"garbage", KeyId=key_id, DryRun=True))[
        0
    ] == ("InvalidCiphertextException")
    ignore = {"DryRun": True, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}
    assert (
        client_error(lambda: kms.decrypt(CiphertextBlob=b"garbage", KeyId=key_id, **ignore))
        == DRY_RUN
    )
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    assert (
        client_error(
            lambda: kms.re_encrypt(
                CiphertextBlob=b"garbage", SourceKeyId=key_id, DestinationKeyId=other, **ignore
            )
        )
        == DRY_RUN
    )
    assert client_error(lambda: kms.decrypt(CiphertextBlob=b"garbage", KeyId=MISSING, **ignore))[
        0
    ] == ("NotFoundException")
    mallory = keyplane.client(
        "kms",
        region_name="eu-west-1",
        engine=kms.engine.for_principal("arn:aws:iam::444455556666:user/mallory"),
    )
    assert client_error(lambda: mallory.decrypt(CiphertextBlob=b"garbage", KeyId=key_id, **ignore))[
        0
    ] == ("AccessDeniedException")
    # The real call's state checks: a disabled key is refused, not "would have succeeded".
    kms.disable_key(KeyId=key_id)
    assert (
        client_error(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True))[0]
        == "DisabledException"
    )


def test_predefined_aliases_and_managed_keys_on_first_use(kms: Any) -> None:
    listed = {a["AliasName"]: a for a in kms.list_aliases(Limit=100)["Aliases"]}
    s3 = listed["alias/aws/s3"]
    assert set(s3) == {"AliasName", "AliasArn"}
    assert kms.list_keys()["Keys"] == []
    described = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert described["KeyManager"] == "AWS"
    s3 = next(a for a in kms.list_aliases(Limit=100)["Aliases"] if a["AliasName"] == "alias/aws/s3")
    assert s3["TargetKeyId"] == described["KeyId"] and "CreationDate" in s3
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [described["KeyId"]]
