"""Paginators as botocore's: pages, PaginationConfig (MaxItems, PageSize, StartingToken),
build_full_result with NextToken, and tokens in botocore's format."""

from __future__ import annotations

import base64
import importlib.util
import json
from typing import Any

import pytest
from conftest import ALICE, check_response

import keyplane
from keyplane import exceptions
from keyplane._model import PAGINATORS


@pytest.fixture
def keys(kms: Any) -> list[str]:
    ids = sorted(kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7))
    return ids


def test_can_paginate(kms: Any) -> None:
    pageable = {m for m in keyplane._model.METHODS if kms.can_paginate(m)}
    assert pageable == {
        "list_aliases",
        "list_grants",
        "list_key_policies",
        "list_keys",
        "list_resource_tags",
        "list_retirable_grants",
        "list_key_rotations",
        "describe_custom_key_stores",
    }
    assert set(PAGINATORS) == {keyplane._model.METHODS[m] for m in pageable}
    with pytest.raises(exceptions.OperationNotPageableError):
        kms.get_paginator("encrypt")


def test_pages(kms: Any, keys: list[str]) -> None:
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["Keys"]) for p in pages] == [3, 3, 1]
    for page in pages:
        check_response("ListKeys", page)
    assert [p["Truncated"] for p in pages] == [True, True, False]
    assert [k["KeyId"] for p in pages for k in p["Keys"]] == keys


def test_max_items_and_starting_token(kms: Any, keys: list[str]) -> None:
    paginator = kms.get_paginator("list_keys")
    first = paginator.paginate(PaginationConfig={"MaxItems": 4, "PageSize": 3}).build_full_result()
    assert [k["KeyId"] for k in first["Keys"]] == keys[:4]
    token = json.loads(base64.b64decode(first["NextToken"]))
    # botocore's token: the marker of the page that was cut short, and how much of it was used.
    assert token == {"Marker": keys[2], "boto_truncate_amount": 1}
    rest = paginator.paginate(
        PaginationConfig={"StartingToken": first["NextToken"], "PageSize": 3}
    ).build_full_result()
    assert [k["KeyId"] for k in rest["Keys"]] == keys[4:]
    assert "NextToken" not in rest

    on_boundary = paginator.paginate(
        PaginationConfig={"MaxItems": 3, "PageSize": 3}
    ).build_full_result()
    assert json.loads(base64.b64decode(on_boundary["NextToken"])) == {"Marker": keys[2]}
    assert (
        list(paginator.paginate(PaginationConfig={"MaxItems": 3, "PageSize": 3}))[0]["Keys"]
        == on_boundary["Keys"]
    )

    everything = paginator.paginate().build_full_result()
    assert everything == {
        "Keys": [
            {"KeyId": k, "KeyArn": kms.describe_key(KeyId=k)["KeyMetadata"]["Arn"]} for k in keys
        ]
    }

    tiny = paginator.paginate(PaginationConfig={"MaxItems": 1}).build_full_result()
    assert json.loads(base64.b64decode(tiny["NextToken"])) == {
        "Marker": None,
        "boto_truncate_amount": 1,
    }
    assert (
        len(
            paginator.paginate(
                PaginationConfig={"StartingToken": tiny["NextToken"]}
            ).build_full_result()["Keys"]
        )
        == 6
    )


def test_every_paginator(kms: Any, key_id: str) -> None:
    # ListAliases also lists the integrated services' predefined alias/aws/... aliases.
    predefined = len(kms.list_aliases(Limit=100)["Aliases"])
    assert predefined > 0
    for i in range(3):
        kms.create_alias(AliasName=f"alias/p{i}", TargetKeyId=key_id)
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": f"t{i}", "TagValue": "v"}])
        kms.create_grant(
            KeyId=key_id, GranteePrincipal=ALICE, RetiringPrincipal=ALICE, Operations=["Decrypt"]
        )
        kms.rotate_key_on_demand(KeyId=key_id)
    cases = {
        "list_aliases": ({}, "Aliases", 3 + predefined),
        "list_resource_tags": ({"KeyId": key_id}, "Tags", 3),
        "list_grants": ({"KeyId": key_id}, "Grants", 3),
        "list_retirable_grants": ({"RetiringPrincipal": ALICE}, "Grants", 3),
        "list_key_rotations": ({"KeyId": key_id}, "Rotations", 3),
        "list_key_policies": ({"KeyId": key_id}, "PolicyNames", 1),
    }
    for method, (kwargs, result_key, total) in cases.items():
        paginator = kms.get_paginator(method)
        assert paginator.result_keys == [result_key]
        pages = list(paginator.paginate(**kwargs, PaginationConfig={"PageSize": 2}))
        assert sum(len(p[result_key]) for p in pages) == total, method
        for page in pages:
            check_response(keyplane._model.METHODS[method], page)
        full = paginator.paginate(**kwargs, PaginationConfig={"MaxItems": 1}).build_full_result()
        assert len(full[result_key]) == 1
        assert ("NextToken" in full) == (total > 1), method


def test_paginate_validates_parameters(kms: Any) -> None:
    with pytest.raises(keyplane.ParamValidationError):
        list(kms.get_paginator("list_grants").paginate())  # KeyId is required


def test_search(kms: Any, keys: list[str]) -> None:
    if importlib.util.find_spec("jmespath") is None:
        pytest.skip("jmespath is not installed (it comes with botocore)")
    found = list(
        kms.get_paginator("list_keys")
        .paginate(PaginationConfig={"PageSize": 2})
        .search("Keys[].KeyId")
    )
    assert found == keys


@pytest.mark.skipif(
    importlib.util.find_spec("botocore") is None, reason="botocore is not installed"
)
def test_tokens_interoperate_with_botocore(kms: Any, keys: list[str]) -> None:
    from botocore.paginate import TokenDecoder, TokenEncoder

    first = (
        kms.get_paginator("list_keys")
        .paginate(PaginationConfig={"MaxItems": 2, "PageSize": 3})
        .build_full_result()
    )
    assert TokenDecoder().decode(first["NextToken"]) == {"Marker": None, "boto_truncate_amount": 2}
    token = TokenEncoder().encode({"Marker": keys[2]})
    rest = (
        kms.get_paginator("list_keys")
        .paginate(PaginationConfig={"StartingToken": token})
        .build_full_result()
    )
    assert [k["KeyId"] for k in rest["Keys"]] == keys[3:]
