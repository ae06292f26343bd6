"""Every client method against boto3's documented shapes: each response is checked against the
service's model (members, types, required members, enumerations; dates are UTC datetimes, blobs
bytes) and carries botocore's ResponseMetadata."""

from __future__ import annotations

import datetime
import gc
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCOUNT, ALICE, BOB, CheckedClient

import keyplane
from keyplane._model import METHODS, OPERATIONS

COVERED: set[str] = set()


@pytest.fixture
def c(kms: Any) -> Any:
    client = CheckedClient(kms)
    yield client
    COVERED.update(client.seen)


def test_client_has_every_supported_operation_and_no_other(kms: Any) -> None:
    for method, operation in METHODS.items():
        assert callable(getattr(kms, method)), method
        assert operation in OPERATIONS
    assert len(METHODS) == 54
    assert callable(kms.import_key_material)
    assert callable(kms.replicate_key) and callable(kms.update_primary_region)
    assert callable(kms.create_custom_key_store) and callable(kms.describe_custom_key_stores)


def test_keys(c: Any) -> None:
    created = c.create_key(
        Description="orders",
        KeySpec="SYMMETRIC_DEFAULT",
        KeyUsage="ENCRYPT_DECRYPT",
        Tags=[{"TagKey": "team", "TagValue": "payments"}],
    )["KeyMetadata"]
    key_id = created["KeyId"]
    assert created["Arn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key_id}"
    assert created["AWSAccountId"] == ACCOUNT
    assert created["KeyState"] == "Enabled" and created["Enabled"] is True
    assert created["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert created["MultiRegion"] is False
    age = datetime.datetime.now(datetime.timezone.utc) - created["CreationDate"]
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)

    described = c.describe_key(KeyId=created["Arn"])["KeyMetadata"]
    assert described == created
    c.update_key_description(KeyId=key_id, Description="orders v2")
    assert c.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "orders v2"

    c.disable_key(KeyId=key_id)
    assert c.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    c.enable_key(KeyId=key_id)
    assert c.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True

    listed = c.list_keys()
    assert listed["Truncated"] is False and "NextMarker" not in listed
    assert {"KeyId": key_id, "KeyArn": created["Arn"]} in listed["Keys"]

    scheduled = c.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyId"] == created["Arn"]
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    assert scheduled["DeletionDate"] - created["CreationDate"] >= datetime.timedelta(days=7)
    pending = c.describe_key(KeyId=key_id)["KeyMetadata"]
    assert pending["DeletionDate"] == scheduled["DeletionDate"]
    assert pending["PendingDeletionWindowInDays"] == 7
    assert c.cancel_key_deletion(KeyId=key_id)["KeyId"] == created["Arn"]
    assert c.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_key_specs_describe_their_algorithms(c: Any) -> None:
    expected = {
        ("RSA_2048", "ENCRYPT_DECRYPT"): (
            "EncryptionAlgorithms",
            ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        ),
        ("ECC_NIST_P256", "SIGN_VERIFY"): ("SigningAlgorithms", ["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", "KEY_AGREEMENT"): ("KeyAgreementAlgorithms", ["ECDH"]),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"): (
            "SigningAlgorithms",
            ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
        ),
        ("HMAC_256", "GENERATE_VERIFY_MAC"): ("MacAlgorithms", ["HMAC_SHA_256"]),
    }
    for (spec, usage), (member, algorithms) in expected.items():
        metadata = c.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        assert metadata["KeySpec"] == spec
        # The deprecated CustomerMasterKeySpec is absent for specs its enumeration lacks.
        assert metadata.get("CustomerMasterKeySpec") == (None if "EDWARDS" in spec else spec)
        assert metadata[member] == algorithms


def test_aliases(c: Any, key_id: str) -> None:
    other = c.create_key()["KeyMetadata"]["KeyId"]
    c.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    aliases = c.list_aliases()["Aliases"]
    entry = next(a for a in aliases if a["AliasName"] == "alias/orders")
    assert entry["TargetKeyId"] == key_id
    assert entry["AliasArn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/orders"
    assert isinstance(entry["LastUpdatedDate"], datetime.datetime)
    assert c.describe_key(KeyId="alias/orders")["KeyMetadata"]["KeyId"] == key_id
    c.update_alias(AliasName="alias/orders", TargetKeyId=other)
    assert [a["AliasName"] for a in c.list_aliases(KeyId=other)["Aliases"]] == ["alias/orders"]
    assert c.list_aliases(KeyId=key_id)["Aliases"] == []
    c.delete_alias(AliasName="alias/orders")
    # What is left are the integrated services' predefined aliases, without a key until used.
    left = c.list_aliases(Limit=100)["Aliases"]
    assert left and all(a["AliasName"].startswith("alias/aws/") for a in left)
    assert all("TargetKeyId" not in a and "CreationDate" not in a for a in left)


def test_tags(c: Any, key_id: str) -> None:
    c.tag_resource(
        KeyId=key_id, Tags=[{"TagKey": "b", "TagValue": "2"}, {"TagKey": "a", "TagValue": "1"}]
    )
    tags = c.list_resource_tags(KeyId=key_id)
    assert tags["Tags"] == [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]
    assert tags["Truncated"] is False
    c.untag_resource(KeyId=key_id, TagKeys=["a"])
    assert c.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "b", "TagValue": "2"}]


def test_rotation(c: Any, key_id: str) -> None:
    status = c.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False and "RotationPeriodInDays" not in status
    c.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = c.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    assert status["NextRotationDate"] > datetime.datetime.now(datetime.timezone.utc)
    c.disable_key_rotation(KeyId=key_id)
    assert c.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    old = c.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    before = c.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert c.rotate_key_on_demand(KeyId=key_id)["KeyId"].endswith(key_id)
    after = c.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert after != before
    rotations = c.list_key_rotations(KeyId=key_id)
    assert [r["RotationType"] for r in rotations["Rotations"]] == ["ON_DEMAND"]
    assert rotations["Rotations"][0]["KeyMaterialId"] == after
    opened = c.decrypt(CiphertextBlob=old)
    assert opened["Plaintext"] == b"before" and opened["KeyMaterialId"] == before


def test_symmetric_data_plane(c: Any, key_id: str) -> None:
    context = {"tenant": "42"}
    sealed = c.encrypt(KeyId=key_id, Plaintext=b"card 4111", EncryptionContext=context)
    assert sealed["KeyId"].endswith(key_id) and sealed["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    opened = c.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)
    assert opened["Plaintext"] == b"card 4111" and opened["KeyId"] == sealed["KeyId"]

    other = c.create_key()["KeyMetadata"]["KeyId"]
    moved = c.re_encrypt(
        CiphertextBlob=sealed["CiphertextBlob"],
        SourceEncryptionContext=context,
        DestinationKeyId=other,
        DestinationEncryptionContext={"tenant": "43"},
    )
    assert moved["SourceKeyId"].endswith(key_id) and moved["KeyId"].endswith(other)
    assert (
        moved["SourceEncryptionAlgorithm"]
        == moved["DestinationEncryptionAlgorithm"]
        == "SYMMETRIC_DEFAULT"
    )
    assert (
        c.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"tenant": "43"})[
            "Plaintext"
        ]
        == b"card 4111"
    )

    data_key = c.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    assert len(data_key["Plaintext"]) == 32
    assert (
        c.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)["Plaintext"]
        == data_key["Plaintext"]
    )
    assert len(c.generate_data_key(KeyId=key_id, NumberOfBytes=64)["Plaintext"]) == 64
    sealed_only = c.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_128")
    assert len(c.decrypt(CiphertextBlob=sealed_only["CiphertextBlob"])["Plaintext"]) == 16

    random = c.generate_random(NumberOfBytes=48)["Plaintext"]
    assert len(random) == 48 and random != c.generate_random(NumberOfBytes=48)["Plaintext"]


def test_data_key_pairs(c: Any, key_id: str) -> None:
    pair = c.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    assert pair["KeyPairSpec"] == "ECC_NIST_P256" and pair["KeyId"].endswith(key_id)
    assert (
        c.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"]
        == pair["PrivateKeyPlaintext"]
    )
    bare = c.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in bare and bare["PublicKey"][:1] == b"\x30"


def test_asymmetric_data_plane(c: Any) -> None:
    signing = c.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signed = c.sign(KeyId=signing, Message=b"hello", SigningAlgorithm="ECDSA_SHA_256")
    assert signed["SigningAlgorithm"] == "ECDSA_SHA_256"
    verified = c.verify(
        KeyId=signing,
        Message=b"hello",
        Signature=signed["Signature"],
        SigningAlgorithm="ECDSA_SHA_256",
        MessageType="RAW",
    )
    assert verified["SignatureValid"] is True
    public = c.get_public_key(KeyId=signing)
    assert public["KeyUsage"] == "SIGN_VERIFY" and public["SigningAlgorithms"] == ["ECDSA_SHA_256"]

    mac_key = c.create_key(KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]
    mac = c.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_384")
    assert len(mac["Mac"]) == 48 and mac["MacAlgorithm"] == "HMAC_SHA_384"
    assert (
        c.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_384")[
            "MacValid"
        ]
        is True
    )

    agreement = c.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"][
        "KeyId"
    ]
    peer = c.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    peer_public = c.get_public_key(KeyId=peer)["PublicKey"]
    ours = c.derive_shared_secret(
        KeyId=agreement, KeyAgreementAlgorithm="ECDH", PublicKey=peer_public
    )
    theirs = c.derive_shared_secret(
        KeyId=peer,
        KeyAgreementAlgorithm="ECDH",
        PublicKey=c.get_public_key(KeyId=agreement)["PublicKey"],
    )
    assert ours["SharedSecret"] == theirs["SharedSecret"] and len(ours["SharedSecret"]) == 32
    assert ours["KeyOrigin"] == "AWS_KMS" and ours["KeyAgreementAlgorithm"] == "ECDH"


def test_policies(c: Any, key_id: str) -> None:
    assert c.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    policy = c.get_key_policy(KeyId=key_id)
    assert policy["PolicyName"] == "default"
    document = json.loads(policy["Policy"])
    # The default policy's account-root statement covers every principal of the account (the
    # engine has no IAM); an explicit Deny takes Decrypt away from Alice.
    document["Statement"].append(
        {
            "Sid": "Alice",
            "Effect": "Deny",
            "Principal": {"AWS": ALICE},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    c.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(document))
    assert "Alice" in c.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    alice = keyplane.client("kms", region_name="eu-west-1", engine=c.kms.engine, principal=ALICE)
    assert alice.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)
    with pytest.raises(alice.exceptions.AccessDeniedException):
        alice.decrypt(CiphertextBlob=c.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"])


ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
ADMIN_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ADMIN},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def test_grants(kms: Any) -> None:
    # A key whose policy names only its administrator role: other principals need grants.
    c = CheckedClient(
        keyplane.client("kms", region_name="eu-west-1", engine=kms.engine, principal=ADMIN)
    )
    key_id = c.create_key(Policy=ADMIN_ONLY_POLICY)["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.AccessDeniedException):
        keyplane.client("kms", region_name="eu-west-1", engine=kms.engine, principal=ALICE).encrypt(
            KeyId=key_id, Plaintext=b"x"
        )
    created = c.create_grant(
        KeyId=key_id,
        GranteePrincipal=ALICE,
        RetiringPrincipal=BOB,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"tenant": "42"}},
        Name="orders-app",
    )
    assert len(created["GrantId"]) == 64 and created["GrantToken"]
    grants = c.list_grants(KeyId=key_id)["Grants"]
    assert len(grants) == 1
    grant = grants[0]
    assert grant["GranteePrincipal"] == ALICE and grant["RetiringPrincipal"] == BOB
    assert grant["Operations"] == ["Encrypt", "Decrypt"] and grant["Name"] == "orders-app"
    assert grant["Constraints"] == {"EncryptionContextSubset": {"tenant": "42"}}
    assert grant["IssuingAccount"] == f"arn:aws:iam::{ACCOUNT}:root"

    alice = keyplane.client("kms", region_name="eu-west-1", engine=c.kms.engine, principal=ALICE)
    blob = alice.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "42"})[
        "CiphertextBlob"
    ]
    with pytest.raises(alice.exceptions.AccessDeniedException):
        alice.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "7"})

    assert c.list_grants(KeyId=key_id, GranteePrincipal=BOB)["Grants"] == []
    assert [g["GrantId"] for g in c.list_retirable_grants(RetiringPrincipal=BOB)["Grants"]] == [
        created["GrantId"]
    ]
    bob = CheckedClient(
        keyplane.client("kms", region_name="eu-west-1", engine=c.kms.engine, principal=BOB)
    )
    bob.retire_grant(GrantToken=created["GrantToken"])
    COVERED.update(bob.seen)
    with pytest.raises(alice.exceptions.AccessDeniedException):
        alice.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "42"})

    second = c.create_grant(KeyId=key_id, GranteePrincipal=ALICE, Operations=["Decrypt"])
    c.revoke_grant(KeyId=key_id, GrantId=second["GrantId"])
    third = c.create_grant(KeyId=key_id, GranteePrincipal=ALICE, Operations=["Decrypt"])
    kms.retire_grant(KeyId=key_id, GrantId=third["GrantId"])  # by the issuing account's root
    assert c.list_grants(KeyId=key_id)["Grants"] == []
    COVERED.update(c.seen)


def test_key_last_usage(c: Any, key_id: str) -> None:
    usage = c.get_key_last_usage(KeyId=key_id)
    assert usage["KeyId"].endswith(key_id)
    assert isinstance(usage["KeyCreationDate"], datetime.datetime)
    # Without an audit log the engine records no usage.
    assert "KeyLastUsage" not in usage


def test_grant_tokens_are_accepted_and_dry_run_answers_as_the_service(c: Any, key_id: str) -> None:
    assert c.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=["token"])["CiphertextBlob"]
    with pytest.raises(c.kms.exceptions.DryRunOperationException) as info:
        c.kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True)
    assert info.value.response["Error"]["Code"] == "DryRunOperationException"
    c.kms.disable_key(KeyId=key_id)
    with pytest.raises(c.kms.exceptions.DisabledException):
        c.kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True)
    with pytest.raises(c.kms.exceptions.DryRunOperationException):
        c.kms.create_grant(
            KeyId=key_id, GranteePrincipal=ALICE, Operations=["Decrypt"], DryRun=True
        )
    assert c.kms.list_grants(KeyId=key_id)["Grants"] == []


def test_custom_key_store_operations_answer_the_services_shapes(c: Any) -> None:
    # An external key store whose proxy is not there: every operation runs (and its response is
    # checked against the model); test_custom_key_stores.py uses real tokens and proxies.
    store = c.create_custom_key_store(
        CustomKeyStoreName="unreachable",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint="https://127.0.0.1:1",
        XksProxyUriPath="/kms/xks/v1",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential={
            "AccessKeyId": "AKIAI2SFODNN7EXAMPLE",
            "RawSecretAccessKey": "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE",
        },
    )["CustomKeyStoreId"]
    c.connect_custom_key_store(CustomKeyStoreId=store)
    entry = c.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0]
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == (
        "FAILED",
        "XKS_PROXY_NOT_REACHABLE",
    ), entry
    c.disconnect_custom_key_store(CustomKeyStoreId=store)
    c.update_custom_key_store(CustomKeyStoreId=store, NewCustomKeyStoreName="renamed")
    c.delete_custom_key_store(CustomKeyStoreId=store)
    assert c.describe_custom_key_stores()["CustomKeyStores"] == []


def test_unsupported_parameters(kms: Any, key_id: str) -> None:
    # Custom key stores are supported (test_custom_key_stores.py): a store id needs its origin,
    # and the store must exist.
    with pytest.raises(kms.exceptions.ValidationException):
        kms.create_key(CustomKeyStoreId="cks-1234567890abcdef0")
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId="cks-1234567890abcdef0")
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.generate_random(
            NumberOfBytes=8, Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}
        )
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")


def test_client_arguments() -> None:
    a = keyplane.client(
        "kms",
        region_name="ap-south-1",
        aws_access_key_id="AKIA",
        aws_secret_access_key="s",
        endpoint_url="http://localhost:4566",
    )
    b = keyplane.client("kms", region_name="ap-south-1")
    key = a.create_key()["KeyMetadata"]
    assert key["Arn"].startswith("arn:aws:kms:ap-south-1:111122223333:key/")
    assert (
        b.describe_key(KeyId=key["KeyId"])["KeyMetadata"] == key
    )  # one engine per region and account
    assert a.meta.region_name == "ap-south-1" and a.meta.endpoint_url == "http://localhost:4566"
    other = keyplane.client("kms", region_name="ap-south-1", account_id="444455556666")
    with pytest.raises(other.exceptions.NotFoundException):
        other.describe_key(KeyId=key["KeyId"])
    with pytest.raises(ValueError):
        keyplane.client("s3")
    with pytest.raises(TypeError):
        keyplane.client("kms", aws_access_key_id=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        keyplane.client("kms", region_name="us-west-2", engine=keyplane.Engine(region="eu-west-1"))


def test_account_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_ACCOUNT_ID", "777788889999")
    kms = keyplane.client("kms", region_name="sa-east-1")
    assert kms.create_key()["KeyMetadata"]["AWSAccountId"] == "777788889999"


def test_import_operations(c: Any) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = c.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = c.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    imported = c.import_key_material(
        KeyId=key,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=public.encrypt(b"k" * 32, oaep),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    deleted = c.delete_imported_key_material(KeyId=key, KeyMaterialId=imported["KeyMaterialId"])
    assert deleted["KeyMaterialId"] == imported["KeyMaterialId"]


def test_multi_region_operations(tmp_path: Path) -> None:
    """replicate_key and update_primary_region through the checked client (the whole story, with
    another process, is test_multi_region.py)."""
    west_dir = tmp_path / "west"
    first = keyplane.Engine(home=str(west_dir), audit=False)
    del first
    gc.collect()
    engine = keyplane.Engine(
        region="eu-west-1", account_id=ACCOUNT, region_stores={"us-west-2": f"sqlite:{west_dir}"}
    )
    client = CheckedClient(keyplane.client("kms", region_name="eu-west-1", engine=engine))
    key = client.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    replica = client.replicate_key(KeyId=key, ReplicaRegion="us-west-2")["ReplicaKeyMetadata"]
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    client.update_primary_region(KeyId=key, PrimaryRegion="us-west-2")
    config = client.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
    assert config["PrimaryKey"]["Region"] == "us-west-2"
    COVERED.update(client.seen)


def test_every_operation_was_called_and_checked() -> None:
    # Runs last in this module (pytest keeps file order): the tests above covered every method.
    assert set(OPERATIONS) == COVERED, sorted(set(OPERATIONS) - COVERED)
