"""A child of `os.fork` (as `multiprocessing` makes on Linux, or a prefork server) with its
parent's engine: an audited engine refuses the child at once with a message that says to start an
engine in the child, instead of leaving it waiting on the parent's audit writer; an engine without
an audit log keeps serving the child's data plane."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keyplane
from keyplane.exceptions import KMSInternalException


def in_forked_child(child: Callable[[], int], timeout: float = 20.0) -> str:
    """Runs `child` in a child of `os.fork` and tells how it ended: its exit code, or "hung"."""
    with warnings.catch_warnings():
        # Python 3.12 warns about forking a process with threads (the engine's); that is the case
        # under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which leaves with os._exit
        code = 99
        try:
            code = child()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return f"exit {os.waitstatus_to_exitcode(status)}"
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def test_an_audited_engine_refuses_a_forked_child_at_once(tmp_path: Path) -> None:
    engine = keyplane.Engine(home=str(tmp_path / "home"), lock_policy="warn")
    key = engine.create_key().key_id
    blob = engine.encrypt(key, b"the parent's")

    def child() -> int:
        for call in (
            lambda: engine.encrypt(key, b"the child's"),
            lambda: engine.decrypt(blob),
            lambda: engine.create_key(),
        ):
            try:
                call()
            except KMSInternalException as e:
                if "fork" not in e.message or "start an engine" not in e.message:
                    return 2
            else:
                return 1
        return 0

    assert in_forked_child(child) == "exit 0"
    # The parent's engine and audit log carry on.
    assert engine.decrypt(engine.encrypt(key, b"after")) == b"after"


def test_an_engine_without_an_audit_log_serves_a_forked_childs_data_plane() -> None:
    engine = keyplane.Engine(lock_policy="warn")
    key = engine.create_key().key_id
    blob = engine.encrypt(key, b"the parent's")

    def child() -> int:
        mine = engine.encrypt(key, b"the child's")
        ok = engine.decrypt(blob) == b"the parent's" and engine.decrypt(mine) == b"the child's"
        return 0 if ok else 1

    assert in_forked_child(child) == "exit 0"


def test_a_forked_child_gets_no_control_plane_on_its_parents_store(tmp_path: Path) -> None:
    # The store's SQLite connection stays the parent's (SQLite: do not carry a connection across
    # fork), as does the scheduler that follows it.
    engine = keyplane.Engine(home=str(tmp_path / "home"), audit=False, lock_policy="warn")
    key = engine.create_key().key_id
    blob = engine.encrypt(key, b"the parent's")

    def child() -> int:
        try:
            engine.create_key()
        except KMSInternalException as e:
            if "fork" not in e.message:
                return 2
        else:
            return 1
        return 0 if engine.decrypt(blob) == b"the parent's" else 3

    assert in_forked_child(child) == "exit 0"
    assert len(list(engine.keys())) == 1
