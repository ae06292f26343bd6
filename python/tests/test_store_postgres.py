"""A PostgreSQL fleet store from Python (issue 19): `Engine(store="postgres://...")` makes keys,
aliases and grants that a second engine (another node, with its own node directory) opened on the
same database sees, and a bad or unreachable address is a typed exception.

Needs the server that `scripts/test-python` starts around this file
(scripts/lib/postgres-cluster.sh, KEYPLANE_TEST_POSTGRES); without it the tests skip, saying why,
except under CI=true, where they fail."""

from __future__ import annotations

import gc
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

import keyplane
from keyplane.exceptions import (
    DependencyTimeoutException,
    DisabledException,
    ValidationException,
)

ROOT_KEY = bytes(range(32))
SERVER = os.environ.get("KEYPLANE_TEST_POSTGRES", "")

if not SERVER:
    MESSAGE = (
        "KEYPLANE_TEST_POSTGRES is not set: these tests need a PostgreSQL server; "
        "run them through scripts/test-python, which starts one"
    )
    if os.environ.get("CI") == "true":
        raise RuntimeError(MESSAGE)
    pytest.skip(MESSAGE, allow_module_level=True)


def _database() -> str:
    """A fresh database on the test server; its address."""
    name = f"kp_py_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    psql = Path(os.environ.get("KEYPLANE_TEST_PG_BIN", "/usr/bin")) / "psql"
    subprocess.run(
        [str(psql), SERVER, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
    )
    return f"{SERVER.rsplit('/', 1)[0]}/{name}"


def _node(
    monkeypatch: pytest.MonkeyPatch, directory: Path, url: str, **kwargs: Any
) -> keyplane.Engine:
    """An engine on `url` whose node directory (rollback witness, audit log) is `directory`."""
    monkeypatch.setenv("KEYPLANE_HOME", str(directory))
    monkeypatch.delenv("KEYPLANE_STORE", raising=False)
    return keyplane.Engine(store=url, root_key=lambda: ROOT_KEY, **kwargs)


def test_a_second_engine_on_the_database_sees_keys_aliases_and_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _database()
    first = _node(monkeypatch, tmp_path / "node-a", url)  # creates the store
    kms = first.client()
    key_id = kms.create_key(Description="fleet")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/fleet-py", TargetKeyId=key_id)
    grant_id = kms.create_grant(
        KeyId=key_id,
        GranteePrincipal="arn:aws:iam::111122223333:role/worker",
        Operations=["Encrypt", "Decrypt"],
    )["GrantId"]
    blob = kms.encrypt(KeyId="alias/fleet-py", Plaintext=b"shared")["CiphertextBlob"]

    second = _node(monkeypatch, tmp_path / "node-b", url, open_only=True)
    other = second.client()
    assert other.describe_key(KeyId="alias/fleet-py")["KeyMetadata"]["Description"] == "fleet"
    aliases = other.list_aliases(KeyId=key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/fleet-py"]
    grants = other.list_grants(KeyId=key_id)["Grants"]
    assert [g["GrantId"] for g in grants] == [grant_id]
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"

    # A disable on the second: the first's control plane follows the store before answering,
    # and its data plane then refuses the key.
    other.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(DisabledException):
        kms.encrypt(KeyId=key_id, Plaintext=b"after")
    del first, second, kms, other
    gc.collect()
    assert (tmp_path / "node-a").is_dir() and (tmp_path / "node-b").is_dir()


def test_a_bad_or_unreachable_address_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationException):
        _node(monkeypatch, tmp_path / "n", "postgres://")
    with pytest.raises(DependencyTimeoutException, match="cannot be reached"):
        _node(monkeypatch, tmp_path / "n", "postgres://nobody@127.0.0.1:1/none", open_only=True)
