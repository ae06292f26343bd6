"""GIL release: a Python thread keeps counting while a batch (or a call on large input, or slow
asymmetric work) runs in the engine. Assertions are on progress counts, not on timing.

The switch interval is raised for each measurement, so a call that holds the GIL lets the
counting thread make no progress at all (checked with `sum(range(...))`, which holds it), while a
call that releases it lets the thread count throughout."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import gil_progress

import keyplane


@pytest.fixture
def progress() -> Iterator[Callable[[Callable[[], Any]], int]]:
    with gil_progress(0.2) as during:
        yield during


def test_the_measure_sees_a_call_that_holds_the_gil(
    progress: Callable[[Callable[[], Any]], int],
) -> None:
    # A GIL-holding call longer than the switch interval is interrupted and the counter runs: on a
    # loaded machine the sum took longer than 0.2 s and counted. Raise the interval far above the
    # call's time, then hand the GIL to the counting thread once (sleep) so that its next wait
    # already uses the new interval.
    old = sys.getswitchinterval()
    sys.setswitchinterval(2.0)
    try:
        time.sleep(0.01)
        assert progress(lambda: sum(range(1_000_000))) == 0
    finally:
        sys.setswitchinterval(old)


def test_batches_release_the_gil(progress: Callable[[Callable[[], Any]], int]) -> None:
    engine = keyplane.Engine(worker_threads=2)
    key = engine.create_key()
    plaintexts = [b"x" * 64] * 100_000
    counted = progress(lambda: engine.encrypt_many(key.key_id, plaintexts))
    assert counted > 1000
    blobs = engine.encrypt_many(key.key_id, plaintexts[:50_000])
    assert progress(lambda: engine.decrypt_many(blobs)) > 1000
    assert progress(lambda: engine.generate_data_keys(key.key_id, 50_000)) > 1000
    signing = engine.create_key(key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    assert progress(lambda: signing.sign_many([b"m"] * 200, "RSASSA_PSS_SHA_256")) > 1000


def test_large_inputs_and_slow_calls_release_the_gil(
    progress: Callable[[Callable[[], Any]], int],
) -> None:
    engine = keyplane.Engine(max_plaintext_bytes=1 << 20)
    key = engine.create_key()
    big = b"x" * (1 << 20)
    blob = key.encrypt(big)

    def counts_during_20(call: Callable[[], Any]) -> bool:
        # Up to ten rounds of 20 calls of 1 MiB, each result dropped, until one lets the
        # counting thread count. With both CPUs busy, one round (~10 ms) ended before the
        # scheduler ran that thread at all, in three runs of four; 200 calls in one go made the
        # unloaded run wait out the 0.2 s switch interval at every call (80 s in CI).
        def round_of_20() -> None:
            for _ in range(20):
                call()

        return any(progress(round_of_20) > 1000 for _ in range(10))

    assert counts_during_20(lambda: key.encrypt(big))
    assert counts_during_20(lambda: engine.decrypt(blob))
    # RSA-4096 key generation (CreateKey) runs without the GIL.
    assert progress(lambda: engine.create_key(key_spec="RSA_4096", key_usage="SIGN_VERIFY")) > 1000
