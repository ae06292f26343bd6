"""Importing key material through the boto3-compatible client: get_parameters_for_import,
import_key_material, delete_imported_key_material. Material is wrapped with `cryptography` (OAEP,
and RSA-AES key wrap with `aes_key_wrap_with_padding`, as the service documents), and the
imported keys' results are checked against `cryptography` and `hmac` with the same raw keys."""

from __future__ import annotations

import datetime
import gc
import hashlib
import hmac
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import check_response, home_env, run_python
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

import keyplane
from keyplane.exceptions import (
    IncorrectKeyMaterialException,
    InvalidCiphertextException,
    InvalidImportTokenException,
    KMSInvalidStateException,
    ParamValidationError,
    UnsupportedOperationException,
)

# ValidTo may be at most 365 days ahead; whole seconds, as the response carries them.
FUTURE = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(
    days=30
)


def _oaep(sha256: bool) -> padding.OAEP:
    h = hashes.SHA256() if sha256 else hashes.SHA1()
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)


def wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wraps `material` as a user would with `cryptography`."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    sha256 = algorithm.endswith("SHA_256")
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, _oaep(sha256))
    aes = os.urandom(32)
    return public.encrypt(aes, _oaep(sha256)) + aes_key_wrap_with_padding(aes, material)


def import_material(
    kms: Any,
    key_id: str,
    material: bytes,
    algorithm: str = "RSA_AES_KEY_WRAP_SHA_256",
    **terms: Any,
) -> dict[str, Any]:
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )
    check_response("GetParametersForImport", params)
    if not terms:
        terms = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    response = kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
        **terms,
    )
    check_response("ImportKeyMaterial", response)
    return response


def external(kms: Any, **args: Any) -> str:
    key: str = kms.create_key(Origin="EXTERNAL", **args)["KeyMetadata"]["KeyId"]
    return key


@pytest.mark.parametrize(
    "algorithm",
    [
        "RSAES_OAEP_SHA_1",
        "RSAES_OAEP_SHA_256",
        "RSA_AES_KEY_WRAP_SHA_1",
        "RSA_AES_KEY_WRAP_SHA_256",
    ],
)
def test_symmetric_material_imports_with_each_wrapping_algorithm(kms: Any, algorithm: str) -> None:
    key = external(kms)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    material = os.urandom(32)
    imported = import_material(kms, key, material, algorithm, ValidTo=FUTURE)
    described = kms.describe_key(KeyId=key)
    check_response("DescribeKey", described)
    meta = described["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["Origin"] == "EXTERNAL"
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert meta["ValidTo"] == FUTURE
    assert meta["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"byok")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"byok"


def test_reimport_takes_the_same_material_only(kms: Any) -> None:
    key = external(kms)
    material = os.urandom(32)
    first = import_material(kms, key, material)
    blob = kms.encrypt(KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    deleted = kms.delete_imported_key_material(KeyId=key)
    check_response("DeleteImportedKeyMaterial", deleted)
    assert deleted["KeyMaterialId"] == first["KeyMaterialId"]
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(KMSInvalidStateException):
        kms.decrypt(CiphertextBlob=blob)
    with pytest.raises(IncorrectKeyMaterialException):
        import_material(kms, key, os.urandom(32))
    again = import_material(kms, key, material, "RSAES_OAEP_SHA_256")
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_hmac_of_the_imported_key_equals_pythons_hmac(kms: Any) -> None:
    for spec, algorithm, digest in [
        ("HMAC_256", "HMAC_SHA_256", hashlib.sha256),
        ("HMAC_384", "HMAC_SHA_384", hashlib.sha384),
        ("HMAC_512", "HMAC_SHA_512", hashlib.sha512),
    ]:
        key = external(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
        material = os.urandom(64)
        import_material(kms, key, material)
        mac = kms.generate_mac(KeyId=key, Message=b"message", MacAlgorithm=algorithm)["Mac"]
        assert mac == hmac.new(material, b"message", digest).digest(), spec


def test_ecc_and_rsa_signatures_verify_with_the_public_half_cryptography_computes(kms: Any) -> None:
    ec_private = ec.generate_private_key(ec.SECP384R1())
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pkcs8 = serialization.PrivateFormat.PKCS8
    der = serialization.Encoding.DER
    none = serialization.NoEncryption()

    ec_key = external(kms, KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")
    import_material(kms, ec_key, ec_private.private_bytes(der, pkcs8, none))
    signature = kms.sign(KeyId=ec_key, Message=b"doc", SigningAlgorithm="ECDSA_SHA_384")[
        "Signature"
    ]
    ec_private.public_key().verify(signature, b"doc", ec.ECDSA(hashes.SHA384()))
    public = kms.get_public_key(KeyId=ec_key)["PublicKey"]
    assert public == ec_private.public_key().public_bytes(
        der, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    rsa_key = external(kms, KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")
    import_material(
        kms, rsa_key, rsa_private.private_bytes(der, pkcs8, none), "RSA_AES_KEY_WRAP_SHA_1"
    )
    signature = kms.sign(KeyId=rsa_key, Message=b"doc", SigningAlgorithm="RSASSA_PSS_SHA_256")[
        "Signature"
    ]
    rsa_private.public_key().verify(
        signature,
        b"doc",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    # The wrong curve is the wrong material.
    p256 = external(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with pytest.raises(IncorrectKeyMaterialException):
        import_material(kms, p256, ec_private.private_bytes(der, pkcs8, none))


def test_bad_tokens_and_material_raise_the_services_exceptions(kms: Any) -> None:
    key = external(kms)
    other = external(kms)
    params = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072"
    )
    other_params = kms.get_parameters_for_import(
        KeyId=other, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072"
    )
    wrapped = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    terms = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    with pytest.raises(InvalidImportTokenException) as e:
        kms.import_key_material(
            KeyId=key,
            ImportToken=other_params["ImportToken"],
            EncryptedKeyMaterial=wrapped,
            **terms,
        )
    assert e.value.response["Error"]["Code"] == "InvalidImportTokenException"
    tampered = bytearray(wrapped)
    tampered[5] ^= 1
    with pytest.raises(InvalidCiphertextException):
        kms.import_key_material(
            KeyId=key,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=bytes(tampered),
            **terms,
        )
    with pytest.raises(IncorrectKeyMaterialException):
        kms.import_key_material(
            KeyId=key,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(16)),
            **terms,
        )
    for algorithm, spec in [("RSAES_PKCS1_V1_5", "RSA_2048"), ("SM2PKE", "SM2")]:
        with pytest.raises(UnsupportedOperationException):
            kms.get_parameters_for_import(
                KeyId=key, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
            )
    with pytest.raises(ParamValidationError):
        kms.import_key_material(
            KeyId=key, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, ValidTo=[]
        )
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_new_material_rotates_on_demand_and_list_key_rotations_shows_it(kms: Any) -> None:
    key = external(kms)
    first = import_material(kms, key, os.urandom(32))["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"old")["CiphertextBlob"]
    second = import_material(
        kms,
        key,
        os.urandom(32),
        ImportType="NEW_KEY_MATERIAL",
        KeyMaterialDescription="second",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )["KeyMaterialId"]
    everything = kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    check_response("ListKeyRotations", everything)
    states = [(r["KeyMaterialId"], r["KeyMaterialState"]) for r in everything["Rotations"]]
    assert states == [(first, "CURRENT"), (second, "PENDING_ROTATION")]
    assert everything["Rotations"][1]["KeyMaterialDescription"] == "second"
    assert kms.list_key_rotations(KeyId=key)["Rotations"] == []
    kms.rotate_key_on_demand(KeyId=key)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["CurrentKeyMaterialId"] == second
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert [r["KeyMaterialId"] for r in rotations] == [second]
    assert rotations[0]["RotationType"] == "ON_DEMAND"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old"


def test_parameters_from_before_a_restart_import_in_another_process(tmp_path: Path) -> None:
    home = tmp_path / "data"
    engine = keyplane.Engine(home=str(home))
    kms = engine.client()
    key = external(kms)
    params = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_4096"
    )
    del kms, engine
    gc.collect()
    material = os.urandom(32)
    (tmp_path / "token").write_bytes(params["ImportToken"])
    (tmp_path / "wrapped").write_bytes(
        wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material)
    )
    valid_to = FUTURE + datetime.timedelta(days=1)
    VALID_TO = valid_to.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: N806 (the script's constant)
    script = textwrap.dedent(
        f"""
        import keyplane
        kms = keyplane.client("kms")  # KEYPLANE_HOME names the store
        kms.import_key_material(
            KeyId={key!r},
            ImportToken=open({str(tmp_path / "token")!r}, "rb").read(),
            EncryptedKeyMaterial=open({str(tmp_path / "wrapped")!r}, "rb").read(),
            ValidTo={VALID_TO!r},
        )
        blob = kms.encrypt(KeyId={key!r}, Plaintext=b"across processes")["CiphertextBlob"]
        open({str(tmp_path / "blob")!r}, "wb").write(blob)
        print("imported")
        """
    )
    run_python(script, home_env(home), "imported")
    again = keyplane.Engine(store=f"sqlite:{home}", open_only=True).client()
    meta = again.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["ValidTo"] == valid_to
    blob = (tmp_path / "blob").read_bytes()
    assert again.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across processes"
