"""Fixtures for the client tests: the server run.py started, and Alice's and Bob's credentials.

Everything comes from the environment run.py sets (KP_URL, KP_CA, KP_ALICE_KEY, ...); a test run
without it fails at once rather than skipping.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.config import Config

MOTO = os.environ.get("KP_MOTO") == "1"


def env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise RuntimeError(f"{name} is not set: run these tests through tests/serve/run.py")
    return value


URL = env("KP_URL")
CA = os.environ.get("KP_CA") or True  # moto: plain HTTP, nothing to trust
REGION = env("KP_REGION")
ALICE_ARN = env("KP_ALICE_ARN")
BOB_ARN = env("KP_BOB_ARN")
CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=120
)


def make_client(
    who: str = "ALICE", region: str = REGION, secret: str | None = None, **kwargs: Any
) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=URL,
        region_name=region,
        aws_access_key_id=env(f"KP_{who}_KEY"),
        aws_secret_access_key=secret if secret is not None else env(f"KP_{who}_SECRET"),
        verify=CA,
        config=kwargs.pop("config", CONFIG),
        **kwargs,
    )


@pytest.fixture(scope="session")
def kms() -> Any:
    """Alice's client (the account's user: administers every key under the default policy)."""
    return make_client("ALICE")


@pytest.fixture(scope="session")
def bob() -> Any:
    """Bob's client (another account's user: the default key policy allows him nothing)."""
    return make_client("BOB")


@pytest.fixture()
def key_id(kms: Any) -> Iterator[str]:
    key = kms.create_key(Description="serve test")["KeyMetadata"]
    yield key["KeyId"]


def signed_request(
    target: str,
    body: bytes,
    *,
    who: str = "ALICE",
    region: str = REGION,
    secret: str | None = None,
    when: datetime.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> botocore.awsrequest.AWSPreparedRequest:
    """A JSON 1.1 request signed with botocore's own SigV4 signer, optionally at another time."""
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=URL + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            **(headers or {}),
        },
    )
    credentials = botocore.credentials.Credentials(
        env(f"KP_{who}_KEY"), secret if secret is not None else env(f"KP_{who}_SECRET")
    )
    signer = botocore.auth.SigV4Auth(credentials, "kms", region)
    if when is None:
        signer.add_auth(request)
    else:
        # SigV4Auth stamps the time from botocore.auth.get_current_datetime (naive UTC).
        naive = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
            signer.add_auth(request)
    return request.prepare()


def send(
    prepared: botocore.awsrequest.AWSPreparedRequest, session: requests.Session | None = None
) -> requests.Response:
    """Sends a prepared request byte for byte as signed."""
    http = session or requests.Session()
    return http.post(
        prepared.url, data=prepared.body, headers=dict(prepared.headers), verify=CA, timeout=60
    )


def error_of(response: requests.Response) -> dict[str, str]:
    """`{"code", "message", "status"}` of a JSON 1.1 error answer, as botocore reads it."""
    body = response.json()
    code = str(body.get("__type", "")).split("#")[-1]
    message = body.get("message", body.get("Message", ""))
    return {"code": code, "message": message, "status": response.status_code}


def audit_records() -> list[dict[str, Any]]:
    """Every record of the data directory's audit logs (keyplane only)."""
    records = []
    for path in sorted(
        glob.glob(os.path.join(env("KP_DATA_DIR"), "audit", "**", "*.log"), recursive=True)
    ):
        with open(path, encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.startswith('{"seq":')]
    return records


def audit_for(request_id: str) -> list[dict[str, Any]]:
    """The audit records naming `request_id`: its own record, or the coalesced batch it went in,
    each with `_origin` set to what was recorded of that request (sourceIPAddress, userAgent,
    accessKeyId)."""
    found = []
    for r in audit_records():
        if r.get("requestID") == request_id:
            r["_origin"] = {
                "sourceIPAddress": r.get("sourceIPAddress"),
                "userAgent": r.get("userAgent"),
                "accessKeyId": r.get("userIdentity", {}).get("accessKeyId"),
            }
            found.append(r)
            continue
        for item in (r.get("additionalEventData") or {}).get("requests", []):
            if item.get("requestID") == request_id:
                r["_origin"] = item
                found.append(r)
    return found
