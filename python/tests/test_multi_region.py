"""Multi-Region keys through the boto3-compatible client: two Regions, each an engine on its own
durable store and given the other's (`Engine(region_stores=...)`): create_key(MultiRegion=True),
replicate_key, describe_key's MultiRegionConfiguration in both Regions, a ciphertext of the
primary decrypted by the replica's Region in another Python process, update_primary_region, and
the service's errors. Responses are checked against the service's model."""

from __future__ import annotations

import gc
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import CheckedClient, run_python

import keyplane
from keyplane.exceptions import KeyplaneError

EAST, WEST = "us-east-1", "eu-west-1"


def _engines(tmp_path: Path) -> tuple[keyplane.Engine, keyplane.Engine, Path, Path]:
    east_dir, west_dir = tmp_path / "east", tmp_path / "west"
    # Each Region's store, with its own root key file.
    for home in (east_dir, west_dir):
        first = keyplane.Engine(home=str(home), audit=False)
        del first
        gc.collect()
    east = keyplane.Engine(
        region=EAST, home=str(east_dir), audit=False, region_stores={WEST: f"sqlite:{west_dir}"}
    )
    west = keyplane.Engine(
        region=WEST, home=str(west_dir), audit=False, region_stores={EAST: f"sqlite:{east_dir}"}
    )
    return east, west, east_dir, west_dir


def _code(error: pytest.ExceptionInfo[Any]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_replicate_describe_decrypt_elsewhere_and_swap(tmp_path: Path) -> None:
    east_engine, west_engine, east_dir, west_dir = _engines(tmp_path)
    east = CheckedClient(keyplane.client("kms", region_name=EAST, engine=east_engine))
    west = CheckedClient(keyplane.client("kms", region_name=WEST, engine=west_engine))

    meta = east.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]
    key = meta["KeyId"]
    assert key.startswith("mrk-") and len(key) == 36
    assert meta["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": meta["Arn"], "Region": EAST},
        "ReplicaKeys": [],
    }

    replicated = east.replicate_key(
        KeyId=key,
        ReplicaRegion=WEST,
        Description="replica",
        Tags=[{"TagKey": "region", "TagValue": "west"}],
    )
    replica = replicated["ReplicaKeyMetadata"]
    assert replica["KeyId"] == key and replica["KeyState"] == "Enabled"
    assert replica["Arn"] == f"arn:aws:kms:{WEST}:111122223333:key/{key}"
    assert replicated["ReplicaTags"] == [{"TagKey": "region", "TagValue": "west"}]

    seen = west.describe_key(KeyId=key)["KeyMetadata"]
    assert seen["Description"] == "replica"
    assert seen["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert seen["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == EAST
    assert east.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"][
        "ReplicaKeys"
    ] == [{"Arn": replica["Arn"], "Region": WEST}]

    # Rotate on the primary, then a fresh process of the replica's Region decrypts.
    east.rotate_key_on_demand(KeyId=key)
    blob = east.encrypt(KeyId=key, Plaintext=b"across Regions")["CiphertextBlob"]
    (tmp_path / "blob").write_bytes(blob)
    script = textwrap.dedent(
        f"""
        import keyplane
        engine = keyplane.Engine(region={WEST!r}, home={str(west_dir)!r}, audit=False,
                                 region_stores={{{EAST!r}: {f"sqlite:{east_dir}"!r}}})
        kms = keyplane.client("kms", region_name={WEST!r}, engine=engine)
        blob = open({str(tmp_path / "blob")!r}, "rb").read()
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across Regions"
        print("decrypted")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    run_python(script, env, "decrypted")

    # The service's errors.
    with pytest.raises(KeyplaneError) as refused:
        east.replicate_key(KeyId=key, ReplicaRegion=WEST)
    assert _code(refused) == "AlreadyExistsException"
    with pytest.raises(KeyplaneError) as refused:
        west.rotate_key_on_demand(KeyId=key)
    assert _code(refused) == "UnsupportedOperationException"
    with pytest.raises(KeyplaneError) as refused:
        east.update_primary_region(KeyId=key, PrimaryRegion="ap-south-1")
    assert _code(refused) == "NotFoundException"
    single = east.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(KeyplaneError) as refused:
        east.replicate_key(KeyId=single, ReplicaRegion=WEST)
    assert _code(refused) == "UnsupportedOperationException"

    # The swap, seen from both Regions.
    east.update_primary_region(KeyId=key, PrimaryRegion=WEST)
    assert (
        west.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"][
            "MultiRegionKeyType"
        ]
        == "PRIMARY"
    )
    assert (
        east.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]["PrimaryKey"][
            "Region"
        ]
        == WEST
    )
    west.rotate_key_on_demand(KeyId=key)


def test_a_bad_region_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyplaneError):
        keyplane.Engine(region_stores={WEST: "memory:"})
    with pytest.raises(KeyplaneError):
        keyplane.Engine(region_stores={WEST: f"sqlite:{tmp_path / 'missing'}"})
