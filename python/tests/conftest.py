"""Fixtures and the response-shape check shared by the tests."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import keyplane
from keyplane._model import OPERATIONS, SHAPES

ACCOUNT = "111122223333"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"


@pytest.fixture
def engine() -> keyplane.Engine:
    """A fresh engine (in-memory store) per test."""
    return keyplane.Engine(region="eu-west-1", account_id=ACCOUNT, worker_threads=2)


@pytest.fixture
def kms(engine: keyplane.Engine) -> Any:
    """A boto3-compatible client on the test's engine."""
    return keyplane.client("kms", region_name="eu-west-1", engine=engine)


@pytest.fixture
def key_id(kms: Any) -> str:
    key: str = kms.create_key(Description="test key")["KeyMetadata"]["KeyId"]
    return key


def check_value(value: Any, shape_name: str, path: str, secrets: bool = False) -> None:
    """Asserts that `value` has the type and members the service's model gives `shape_name`."""
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: {type(value)}"
        unknown = set(value) - set(shape["members"])
        assert not unknown, f"{path}: members not in the model: {unknown}"
        for required in shape.get("required", []):
            assert required in value, f"{path}: required member {required} missing"
        for name, member in value.items():
            check_value(member, shape["members"][name], f"{path}.{name}", secrets)
    elif kind == "list":
        assert isinstance(value, list), f"{path}: {type(value)}"
        for i, item in enumerate(value):
            check_value(item, shape["member"], f"{path}[{i}]", secrets)
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: {type(value)}"
        for k, v in value.items():
            check_value(k, shape["key"], path, secrets)
            check_value(v, shape["value"], f"{path}.{k}", secrets)
    elif kind == "string":
        assert isinstance(value, str), f"{path}: {type(value)}"
        if "enum" in shape:
            assert value in shape["enum"], f"{path}: {value!r} not in {shape['enum']}"
    elif kind == "blob":
        if secrets and isinstance(value, keyplane.SecretBytes):
            return
        assert type(value) is bytes, f"{path}: {type(value)}"
    elif kind == "timestamp":
        assert isinstance(value, datetime.datetime), f"{path}: {type(value)}"
        assert value.tzinfo is not None and value.utcoffset() == datetime.timedelta(0), path
    elif kind == "boolean":
        assert type(value) is bool, f"{path}: {type(value)}"
    elif kind == "integer":
        assert type(value) is int, f"{path}: {type(value)}"
    else:  # pragma: no cover
        raise AssertionError(f"{path}: unexpected shape type {kind}")


def check_response(operation: str, response: dict[str, Any], secrets: bool = False) -> None:
    """Asserts a client response matches the operation's output shape, with botocore's
    ResponseMetadata."""
    metadata = response["ResponseMetadata"]
    assert set(metadata) == {"RequestId", "HTTPStatusCode", "HTTPHeaders", "RetryAttempts"}
    assert metadata["HTTPStatusCode"] == 200 and metadata["RetryAttempts"] == 0
    assert len(metadata["RequestId"]) == 36
    assert metadata["HTTPHeaders"]["x-amzn-requestid"] == metadata["RequestId"]
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    output = OPERATIONS[operation]["output"]
    if output is None:
        assert body == {}
    else:
        check_value(body, output, operation, secrets)


@pytest.fixture
def checked(kms: Any) -> Iterator[Any]:
    """The client, with every response checked against the model."""
    yield CheckedClient(kms)


class CheckedClient:
    """Wraps a client so that every call's response is checked against the service's model."""

    def __init__(self, kms: Any, secrets: bool = False) -> None:
        self.kms = kms
        self.secrets = secrets
        self.seen: set = set()

    def __getattr__(self, method: str) -> Any:
        from keyplane._model import METHODS

        target = getattr(self.kms, method)
        if method not in METHODS:
            return target

        def call(**kwargs: Any) -> dict[str, Any]:
            response: dict[str, Any] = target(**kwargs)
            check_response(METHODS[method], response, self.secrets)
            self.seen.add(METHODS[method])
            return response

        return call


class Counter:
    """A thread that counts as fast as the GIL lets it: how far it gets during a call shows whether
    the call released the GIL (the GIL tests of the batch calls and of envelope streams)."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop:
            self.count += 1


@contextmanager
def gil_progress(
    interval: float, settle: float = 0.0
) -> Iterator[Callable[[Callable[[], Any]], int]]:
    """Yields `during(call)`: how far a counting thread gets while `call` runs, under a switch
    interval of `interval` seconds. A call holding the GIL for less than that lets the thread make
    no progress at all. `settle` seconds before each call let the counting thread take the GIL
    under the new interval."""
    counter = Counter()
    old = sys.getswitchinterval()
    counter.thread.start()
    while counter.count == 0:
        pass  # the counting thread is running
    sys.setswitchinterval(interval)

    def during(call: Callable[[], Any]) -> int:
        if settle:
            time.sleep(settle)
        before = counter.count
        call()
        return counter.count - before

    try:
        yield during
    finally:
        counter.stop = True
        counter.thread.join()
        sys.setswitchinterval(old)


def run_python(script: str, env: dict[str, str], printed: str) -> None:
    """Runs `script` in a new interpreter with `env`; it must succeed and print `printed`."""
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert printed in done.stdout


def home_env(home: object) -> dict[str, str]:
    """This process's environment with `KEYPLANE_HOME` naming `home` and no `KEYPLANE_STORE`."""
    env = dict(os.environ, KEYPLANE_HOME=str(home))
    env.pop("KEYPLANE_STORE", None)
    return env
