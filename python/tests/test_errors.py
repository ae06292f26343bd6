"""Error classes and codes: every engine error is raised as `client.exceptions.<Code>`, with
botocore's `.response` and `.operation_name`; parameter errors are ParamValidationError. With
botocore installed they are botocore's classes (ClientError subclasses); without, keyplane's."""

from __future__ import annotations

import importlib.util
import pickle
from typing import Any

import pytest
from conftest import ALICE

import keyplane
from keyplane import _keyplane, exceptions
from keyplane._model import ERROR_CODES

HAVE_BOTOCORE = importlib.util.find_spec("botocore") is not None


def raised(kms: Any, code: str, method: str, **kwargs: Any) -> Any:
    """Calls `method` and checks it raises `code` as botocore would."""
    operation = keyplane._model.METHODS[method]
    with pytest.raises(getattr(kms.exceptions, code)) as info:
        getattr(kms, method)(**kwargs)
    e = info.value
    assert isinstance(e, keyplane.ClientError) and isinstance(e, keyplane.KeyplaneError)
    assert type(e).__name__ == code and e.code == code
    assert e.response["Error"]["Code"] == code
    assert e.response["Error"]["Message"] == e.message
    # The service's KMSInvalidSignatureException carries no message; every other error says why.
    assert e.message or code == "KMSInvalidSignatureException"
    assert e.operation_name == operation
    assert (
        str(e) == f"An error occurred ({code}) when calling the {operation} operation: {e.message}"
    )
    metadata = e.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] in (400, 500) and len(metadata["RequestId"]) == 36
    assert kms.exceptions.from_code(code) is type(e)
    return e


def test_error_codes(kms: Any, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]

    raised(kms, "NotFoundException", "describe_key", KeyId="alias/missing")
    raised(
        kms,
        "NotFoundException",
        "encrypt",
        KeyId="00000000-0000-0000-0000-000000000000",
        Plaintext=b"x",
    )
    raised(
        kms,
        "InvalidCiphertextException",
        "decrypt",
        CiphertextBlob=blob,
        EncryptionContext={"a": "b"},
    )
    raised(kms, "InvalidCiphertextException", "decrypt", CiphertextBlob=b"not a ciphertext")
    raised(kms, "IncorrectKeyException", "decrypt", CiphertextBlob=blob, KeyId=other)
    raised(
        kms,
        "InvalidKeyUsageException",
        "sign",
        KeyId=key_id,
        Message=b"m",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    raised(kms, "InvalidKeyUsageException", "encrypt", KeyId=signing, Plaintext=b"x")
    raised(
        kms,
        "KMSInvalidSignatureException",
        "verify",
        KeyId=signing,
        Message=b"m",
        Signature=b"\x30\x06\x02\x01\x01\x02\x01\x01",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    raised(
        kms,
        "KMSInvalidMacException",
        "verify_mac",
        KeyId=mac_key,
        Message=b"m",
        Mac=b"\0" * 32,
        MacAlgorithm="HMAC_SHA_256",
    )
    kms.create_alias(AliasName="alias/a", TargetKeyId=key_id)
    raised(kms, "AlreadyExistsException", "create_alias", AliasName="alias/a", TargetKeyId=key_id)
    raised(
        kms, "NotAuthorizedException", "create_alias", AliasName="alias/aws/s3", TargetKeyId=key_id
    )
    e = raised(kms, "NotFoundException", "describe_key", KeyId="arn:aws:s3:::bucket")
    assert e.message == "Invalid keyId 'arn:aws:s3:::bucket'"
    e = raised(kms, "NotFoundException", "enable_key", KeyId="alias/a")
    assert e.message == "Invalid keyId 'alias/a'"
    raised(kms, "InvalidMarkerException", "list_keys", Marker="not-a-marker")
    raised(
        kms,
        "TagException",
        "tag_resource",
        KeyId=key_id,
        Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}],
    )
    raised(kms, "MalformedPolicyDocumentException", "put_key_policy", KeyId=key_id, Policy="{}")
    raised(kms, "InvalidGrantTokenException", "retire_grant", GrantToken="forged")
    raised(kms, "InvalidGrantIdException", "revoke_grant", KeyId=key_id, GrantId="0" * 64)
    raised(kms, "UnsupportedOperationException", "enable_key_rotation", KeyId=signing)
    raised(kms, "ValidationException", "generate_data_key", KeyId=key_id)
    raised(kms, "ValidationException", "create_key", KeySpec="AES_512")
    for _ in range(25):
        kms.rotate_key_on_demand(KeyId=key_id)
    raised(kms, "LimitExceededException", "rotate_key_on_demand", KeyId=key_id)

    kms.disable_key(KeyId=key_id)
    raised(kms, "DisabledException", "encrypt", KeyId=key_id, Plaintext=b"x")
    raised(kms, "DisabledException", "decrypt", CiphertextBlob=blob)
    kms.schedule_key_deletion(KeyId=key_id)
    raised(kms, "KMSInvalidStateException", "encrypt", KeyId=key_id, Plaintext=b"x")
    raised(kms, "KMSInvalidStateException", "schedule_key_deletion", KeyId=key_id)
    raised(kms, "KMSInvalidStateException", "cancel_key_deletion", KeyId=other)


def test_access_denied(kms: Any, key_id: str) -> None:
    alice = keyplane.client("kms", region_name="eu-west-1", engine=kms.engine, principal=ALICE)
    assert alice.encrypt(KeyId=key_id, Plaintext=b"x")  # the default policy covers the account
    outsider = keyplane.client(
        "kms",
        region_name="eu-west-1",
        engine=kms.engine,
        principal="arn:aws:iam::444455556666:user/mallory",
    )
    raised(outsider, "AccessDeniedException", "encrypt", KeyId=key_id, Plaintext=b"x")
    raised(outsider, "AccessDeniedException", "generate_random", NumberOfBytes=8)


def test_limit_exceeded_and_throttling() -> None:
    engine = keyplane.Engine(max_keys=1, rate_quotas={"symmetric_crypto": 5})
    kms = engine.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    raised(kms, "LimitExceededException", "create_key")
    with pytest.raises(keyplane.ClientError) as info:
        for _ in range(100):
            kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert isinstance(info.value, kms.exceptions.ThrottlingException)
    # A batch over the quota fails item by item, each a ThrottlingException object.
    results = engine.encrypt_many(key_id, [b"x"] * 50)
    assert all(isinstance(r, exceptions.ThrottlingException) for r in results)
    assert results[0].operation_name == "Encrypt"


def test_parameter_validation(kms: Any) -> None:
    with pytest.raises(keyplane.ParamValidationError) as info:
        kms.encrypt(Plaintext=b"x", Bogus=1)
    report = str(info.value)
    assert report.startswith("Parameter validation failed:\n")
    assert 'Missing required parameter in input: "KeyId"' in report
    assert (
        'Unknown parameter in input: "Bogus", must be one of: KeyId, Plaintext, EncryptionContext'
        in report
    )
    with pytest.raises(keyplane.ParamValidationError) as info:
        kms.list_keys(Limit=0)
    assert "Invalid value for parameter Limit, value: 0, valid min value: 1" in str(info.value)
    with pytest.raises(keyplane.ParamValidationError) as info:
        kms.describe_key(KeyId="")
    assert "Invalid length for parameter KeyId, value: 0, valid min length: 1" in str(info.value)
    with pytest.raises(keyplane.ParamValidationError) as info:
        kms.tag_resource(KeyId="k", Tags=[{"TagKey": "a"}])
    assert 'Missing required parameter in Tags[0]: "TagValue"' in str(info.value)
    with pytest.raises(keyplane.ParamValidationError) as info:
        kms.encrypt(KeyId="k", Plaintext=12)
    assert "Invalid type for parameter Plaintext" in str(info.value)
    with pytest.raises(keyplane.ParamValidationError):
        kms.list_keys(Limit=True)


def test_every_modelled_error_has_a_class(kms: Any) -> None:
    for code in list(ERROR_CODES) + [
        "AccessDeniedException",
        "NotAuthorizedException",
        "ThrottlingException",
        "ValidationException",
    ]:
        cls = getattr(kms.exceptions, code)
        assert issubclass(cls, keyplane.KeyplaneError) and issubclass(
            cls, kms.exceptions.ClientError
        )
        assert getattr(exceptions, code) is cls and cls.code == code
    assert kms.exceptions.from_code("SomethingElse") is kms.exceptions.ClientError


def test_every_engine_error_kind_has_a_class() -> None:
    # The engine's own list (keyplane::ErrorKind::ALL), not a copy: a new engine error whose code
    # has no class here fails this test.
    codes = _keyplane._error_codes()
    assert "NotFoundException" in codes and "DryRunOperationException" in codes
    for code in codes:
        cls = exceptions.from_code(code)
        assert cls is not exceptions.KeyplaneError and issubclass(cls, exceptions.KeyplaneError), (
            code
        )
        assert cls.code == code and getattr(exceptions, code) is cls
        assert exceptions.ERROR_CLASSES[code] is cls
        assert code in ERROR_CODES or code in (
            "AccessDeniedException",
            "NotAuthorizedException",
            "ThrottlingException",
            "ValidationException",
        )


def test_errors_pickle(kms: Any) -> None:
    with pytest.raises(kms.exceptions.NotFoundException) as info:
        kms.describe_key(KeyId="alias/nope")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is kms.exceptions.NotFoundException
    assert copy.response["Error"] == info.value.response["Error"]


@pytest.mark.skipif(not HAVE_BOTOCORE, reason="botocore is not installed")
def test_errors_are_botocore_client_errors(kms: Any) -> None:
    import botocore.exceptions

    assert exceptions.HAVE_BOTOCORE
    assert keyplane.ClientError is botocore.exceptions.ClientError
    assert keyplane.ParamValidationError is botocore.exceptions.ParamValidationError
    try:
        kms.describe_key(KeyId="alias/nope")
    except botocore.exceptions.ClientError as e:  # an existing boto3 except clause
        assert e.response["Error"]["Code"] == "NotFoundException"
        assert e.operation_name == "DescribeKey"
    else:  # pragma: no cover
        pytest.fail("no error")
    with pytest.raises(botocore.exceptions.ParamValidationError):
        kms.describe_key()
    with pytest.raises(botocore.exceptions.OperationNotPageableError):
        kms.get_paginator("encrypt")


@pytest.mark.skipif(HAVE_BOTOCORE, reason="botocore is installed")
def test_errors_without_botocore(kms: Any) -> None:
    assert not exceptions.HAVE_BOTOCORE
    assert keyplane.ClientError.__module__ == "keyplane.exceptions"
    assert keyplane.ClientError.__name__ == "ClientError"
    with pytest.raises(keyplane.ClientError) as info:
        kms.describe_key(KeyId="alias/nope")
    assert info.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(keyplane.ParamValidationError):
        kms.describe_key()
    with pytest.raises(exceptions.OperationNotPageableError):
        kms.get_paginator("encrypt")
