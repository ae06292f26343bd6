"""Durable stores from Python: `home=`/`store=` keep keys across engines and processes, in the same
store (and audit log) as the `keyplane` tool and the C library; each way opening fails is an
exception with a message naming what was tried."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import home_env, run_python

import keyplane
from keyplane import _keyplane
from keyplane.exceptions import (
    AccessDeniedException,
    KMSInternalException,
    NotFoundException,
    ValidationException,
)

ROOT_KEY = bytes(range(32))


def _make_key(kms: Any) -> bytes:
    key_id = kms.create_key(Description="durable")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/durable", TargetKeyId=key_id)
    blob: bytes = kms.encrypt(KeyId="alias/durable", Plaintext=b"kept across restarts")[
        "CiphertextBlob"
    ]
    return blob


def test_home_keeps_keys_for_a_new_engine_and_a_new_process(tmp_path: Path) -> None:
    home = tmp_path / "data"
    engine = keyplane.Engine(home=str(home))
    blob = _make_key(engine.client())
    assert (home / "root.key").stat().st_mode & 0o777 == 0o600
    del engine
    gc.collect()  # frees the engine: its audit log closes and another writer may open it

    again = keyplane.Engine(store=f"sqlite:{home}", open_only=True)
    plain = again.client().decrypt(CiphertextBlob=blob)["Plaintext"]
    assert plain == b"kept across restarts"
    key_id = again.client().describe_key(KeyId="alias/durable")["KeyMetadata"]["KeyId"]
    usage = again.client().get_key_last_usage(KeyId=key_id)
    assert usage["KeyLastUsage"], usage  # the Decrypt just recorded in the audit log
    del again
    gc.collect()

    (tmp_path / "blob").write_bytes(blob)
    script = textwrap.dedent(
        f"""
        import keyplane
        kms = keyplane.client("kms")  # KEYPLANE_HOME names the store
        blob = open({str(tmp_path / "blob")!r}, "rb").read()
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept across restarts"
        print("decrypted")
        """
    )
    run_python(script, home_env(home), "decrypted")


def test_clients_made_alike_share_one_engine_per_store(tmp_path: Path) -> None:
    home = str(tmp_path / "shared")
    a = keyplane.client("kms", home=home)
    b = keyplane.client("kms", store=f"sqlite:{home}")
    assert _keyplane.resolve_store(home=home) == f"sqlite:{home}"
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    assert b.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    with pytest.raises(ValueError):
        keyplane.client("kms", home=home, engine=keyplane.Engine(store="memory:"))


def test_without_a_store_the_engine_is_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_STORE", raising=False)
    monkeypatch.delenv("KEYPLANE_HOME", raising=False)
    assert _keyplane.resolve_store() == "memory:"
    monkeypatch.setenv("KEYPLANE_HOME", "/srv/keys")
    assert _keyplane.resolve_store() == "sqlite:/srv/keys"
    monkeypatch.setenv("KEYPLANE_STORE", "memory:")
    assert _keyplane.resolve_store() == "memory:"


def test_the_root_key_callable_creates_and_reopens_without_a_key_file(tmp_path: Path) -> None:
    home = tmp_path / "callable"
    calls = []

    def root_key() -> bytes:
        calls.append(1)
        return ROOT_KEY

    engine = keyplane.Engine(home=str(home), root_key=root_key)
    blob = _make_key(engine.client())
    assert calls and not (home / "root.key").exists()
    del engine
    gc.collect()
    again = keyplane.Engine(home=str(home), root_key=lambda: bytearray(ROOT_KEY), open_only=True)
    assert again.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept across restarts"
    del again
    gc.collect()

    with pytest.raises(AccessDeniedException, match="root_key callable"):
        keyplane.Engine(home=str(home), root_key=lambda: bytes(32), open_only=True)
    with pytest.raises(AccessDeniedException, match="root_key callable"):
        keyplane.Engine(home=str(home), root_key=lambda: 1 / 0, open_only=True)


def test_each_way_of_failing_to_open_is_a_clear_exception(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(NotFoundException, match="no keyplane store"):
        keyplane.Engine(home=str(missing), open_only=True)
    assert not missing.exists()
    with pytest.raises(ValidationException, match="unknown store scheme"):
        keyplane.Engine(store="mysql://db/keys")
    with pytest.raises(ValidationException):
        keyplane.Engine(store="memory:", home=str(missing))
    with pytest.raises(AccessDeniedException, match="KEYPLANE_TEST_UNSET_VAR"):
        keyplane.Engine(home=str(missing), root_key_env="KEYPLANE_TEST_UNSET_VAR")

    home = tmp_path / "data"
    engine = keyplane.Engine(home=str(home))
    # A second long-lived writer of the same data directory audits beside the first (each
    # process, each engine, writes a segment of its own).
    second = keyplane.Engine(home=str(home))
    assert second.create_key().key_id
    del second
    del engine
    gc.collect()

    other = tmp_path / "other.key"
    other.write_text("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n")
    other.chmod(0o600)
    with pytest.raises(AccessDeniedException, match="other.key"):
        keyplane.Engine(home=str(home), root_key_file=str(other))

    db = home / "keyplane.db"
    header = bytearray(db.read_bytes())
    header[60:64] = (0x7F00).to_bytes(4, "big")
    db.write_bytes(bytes(header))
    with pytest.raises(KMSInternalException, match="newer"):
        keyplane.Engine(home=str(home))


def test_a_staleness_bound_needs_a_scheduler_and_serves_within_it(tmp_path: Path) -> None:
    # In memory there is no scheduler to confirm the view with the store: refused at once.
    with pytest.raises(ValidationException, match="scheduler_interval"):
        keyplane.Engine(max_staleness_ms=1000, audit=False)
    # A durable store is followed every second by default: a 5 s bound serves.
    engine = keyplane.Engine(home=str(tmp_path / "data"), max_staleness_ms=5000)
    kms = keyplane.client("kms", engine=engine)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"fresh")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"fresh"
