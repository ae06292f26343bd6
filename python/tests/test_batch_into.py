"""Batch calls into a caller's bytearray (`encrypt_many_into`, `decrypt_many_into` and the native
`encrypt_batch_into`, `decrypt_batch_into`): memoryviews of one kept buffer, item by item the same
results and errors as the allocating batch calls; and the allocating calls on their kept
buffers (the same results call after call, from many threads)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import keyplane
from keyplane import exceptions


def same(into: Any, allocating: Any) -> bool:
    """Whether a result of an `_into` call equals the allocating call's: the same bytes, or an
    error of the same class and message."""
    if isinstance(allocating, Exception):
        return type(into) is type(allocating) and str(into) == str(allocating)
    return isinstance(into, memoryview) and bytes(into) == allocating


def test_round_trips_with_the_allocating_calls(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    plaintexts = [bytes([i]) * (1 + i * 37) for i in range(50)]
    out = bytearray()
    views = key.encrypt_many_into(plaintexts, out, context={"t": "1"})
    assert all(isinstance(v, memoryview) and v.obj is out for v in views)
    blobs = [bytes(v) for v in views]
    assert keyplane.ok(key.decrypt_many(blobs, context={"t": "1"})) == plaintexts

    blobs = keyplane.ok(key.encrypt_many(plaintexts, context={"t": "1"}))
    plain = bytearray()
    opened = key.decrypt_many_into(blobs, plain, context={"t": "1"})
    assert [bytes(v) for v in keyplane.ok(opened)] == plaintexts
    # The plaintexts lie back to back: each takes its exact length.
    assert len(plain) == sum(len(p) for p in plaintexts)
    assert bytes(plain) == b"".join(plaintexts)
    assert engine.encrypt_batch_into is not None and engine.decrypt_batch_into is not None


def test_item_by_item_the_same_results_and_errors(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    native = engine.native
    limit = native.max_plaintext_bytes
    plaintexts = [b"a", b"", b"c" * limit, b"d" * (limit + 1), bytearray(b"e"), memoryview(b"f")]
    contexts = [{"n": str(i)} for i in range(len(plaintexts))]
    allocating = native.encrypt_batch(
        key_id=key.key_id, plaintexts=plaintexts, encryption_contexts=contexts
    )
    out = bytearray()
    into = native.encrypt_batch_into(
        key_id=key.key_id, plaintexts=plaintexts, out=out, encryption_contexts=contexts
    )
    assert len(into) == len(allocating)
    for a, b in zip(into, allocating):
        if isinstance(b, Exception):
            assert same(a, b)
        else:
            # Fresh nonces: the blobs differ, their plaintexts do not.
            assert isinstance(a, memoryview) and len(a) == len(b)
    assert isinstance(into[1], exceptions.ValidationException)
    assert isinstance(into[3], exceptions.ValidationException)
    # Each item takes the longest blob its plaintext can make (82 bytes of framing, 256 for a key
    # in an external key store); what is refused takes no room.
    assert len(out) == sum(len(p) + 338 for i, p in enumerate(plaintexts) if i not in (1, 3))

    blobs = [bytes(v) for v in into if isinstance(v, memoryview)]
    good = [c for c, v in zip(contexts, into) if isinstance(v, memoryview)]
    tampered = bytearray(blobs[0])
    tampered[-1] ^= 1
    cases = blobs + [bytes(tampered), b"garbage", blobs[0][:40], b"x" * 2_000_000, blobs[1]]
    case_contexts = good + [good[0], None, good[0], None, {"wrong": "context"}]
    expected = native.decrypt_batch(ciphertext_blobs=cases, encryption_contexts=case_contexts)
    plain = bytearray()
    got = native.decrypt_batch_into(
        ciphertext_blobs=cases, out=plain, encryption_contexts=case_contexts
    )
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert same(a, b), (a, b)
    assert sum(isinstance(g, Exception) for g in got) == 5
    assert [bytes(v) for v in got[: len(blobs)]] == [
        bytes(p) for p in (b"a", b"c" * limit, b"e", b"f")
    ]

    # One shared context, the wrong key named: the same errors.
    other = engine.create_key()
    for kwargs in ({"encryption_context": {"n": "0"}}, {"key_id": other.key_id}):
        expected = native.decrypt_batch(ciphertext_blobs=blobs, **kwargs)
        got = native.decrypt_batch_into(ciphertext_blobs=blobs, out=plain, **kwargs)
        assert all(same(a, b) for a, b in zip(got, expected))
    # A key that does not exist fails every item as the allocating call does.
    missing = "11111111-2222-3333-4444-555555555555"
    expected = native.encrypt_batch(key_id=missing, plaintexts=[b"x", b"y"])
    got = native.encrypt_batch_into(key_id=missing, plaintexts=[b"x", b"y"], out=out)
    assert all(same(a, b) for a, b in zip(got, expected))
    assert isinstance(got[0], exceptions.NotFoundException)


def test_rsa_keys(engine: keyplane.Engine) -> None:
    native = engine.native
    key = engine.create_key(key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    algorithm = "RSAES_OAEP_SHA_256"
    plaintexts = [b"one", b"two" * 10, b"x" * 400]
    out = bytearray()
    sealed = native.encrypt_batch_into(
        key_id=key.key_id, plaintexts=plaintexts, out=out, encryption_algorithm=algorithm
    )
    expected = native.encrypt_batch(
        key_id=key.key_id, plaintexts=plaintexts, encryption_algorithm=algorithm
    )
    assert [type(s) for s in sealed] == [memoryview, memoryview, type(expected[2])]
    assert str(sealed[2]) == str(expected[2])
    blobs = [bytes(s) for s in sealed[:2]]
    assert all(len(b) == 256 for b in blobs)
    plain = bytearray()
    opened = native.decrypt_batch_into(
        ciphertext_blobs=blobs, out=plain, key_id=key.key_id, encryption_algorithm=algorithm
    )
    assert [bytes(v) for v in keyplane.ok(opened)] == plaintexts[:2]
    # Without the algorithm: the allocating call's error.
    expected = native.decrypt_batch(ciphertext_blobs=blobs, key_id=key.key_id)
    got = native.decrypt_batch_into(ciphertext_blobs=blobs, out=plain, key_id=key.key_id)
    assert all(same(a, b) for a, b in zip(got, expected))


def test_a_buffer_with_live_views_is_not_grown(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    out = bytearray()
    views = key.encrypt_many_into([b"a" * 10] * 4, out)
    size = len(out)
    with pytest.raises(BufferError, match="memoryviews of it are alive") as refused:
        key.encrypt_many_into([b"b" * 1000] * 4, out)
    assert isinstance(refused.value.__cause__, BufferError)
    assert len(out) == size and all(len(bytes(v)) == 10 + 82 for v in views)
    # What fits needs no growth: the views then show the new call's bytes.
    again = key.encrypt_many_into([b"c" * 10] * 4, out)
    assert len(out) == size and views[0].tobytes() == again[0].tobytes()
    del views, again
    grown = key.encrypt_many_into([b"b" * 1000] * 4, out)
    assert len(out) == 4 * (1000 + 338) and len(grown) == 4
    # A larger buffer is used as it is, never shrunk.
    del grown
    big = bytearray(100_000)
    keyplane.ok(key.encrypt_many_into([b"d"], big))
    assert len(big) == 100_000


def test_wrong_inputs_are_type_and_validation_errors(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    native: Any = engine.native
    for out in (b"", memoryview(bytearray(10)), None, [0] * 10, "x"):
        with pytest.raises(TypeError, match="out must be a bytearray"):
            native.encrypt_batch_into(key_id=key.key_id, plaintexts=[b"a"], out=out)
        with pytest.raises(TypeError, match="out must be a bytearray"):
            native.decrypt_batch_into(ciphertext_blobs=[b"a"], out=out)
    out = bytearray()
    with pytest.raises(TypeError, match="single bytes-like"):
        native.encrypt_batch_into(key_id=key.key_id, plaintexts=b"abc", out=out)
    with pytest.raises(TypeError, match="plaintexts must be bytes"):
        native.encrypt_batch_into(key_id=key.key_id, plaintexts=[b"a", 3], out=out)
    with pytest.raises(TypeError, match="ciphertext_blobs must be bytes"):
        native.decrypt_batch_into(ciphertext_blobs=["text"], out=out)
    with pytest.raises(exceptions.ValidationException):
        native.encrypt_batch_into(
            key_id=key.key_id, plaintexts=[b"a"], out=out, encryption_contexts=[]
        )
    with pytest.raises(exceptions.ValidationException):
        native.encrypt_batch_into(
            key_id=key.key_id, plaintexts=[b"a"], out=out, encryption_algorithm="NOPE"
        )
    with pytest.raises(TypeError):
        native.encrypt_batch_into(key_id=key.key_id, plaintexts=[b"a"])
    assert out == bytearray()
    assert native.encrypt_batch_into(key_id=key.key_id, plaintexts=[], out=out) == []


def test_kept_buffers_give_the_same_results_call_after_call(engine: keyplane.Engine) -> None:
    key = engine.create_key()
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for round in range(20):
                size = [1, 100, 5000, 4096][(seed + round) % 4]
                plaintexts = [bytes([seed, round, i]) * size for i in range(30)]
                blobs = engine.encrypt_many(key.key_id, plaintexts)
                expected = [p if len(p) <= 4096 else None for p in plaintexts]
                assert [
                    b if isinstance(b, bytes) else None
                    for b in engine.decrypt_many([b for b in blobs if isinstance(b, bytes)])
                ] == [p for p in expected if p is not None]
                secrets = engine.decrypt_many_secret([b for b in blobs if isinstance(b, bytes)])
                assert [bytes(s) for s in keyplane.ok(secrets)] == [
                    p for p in expected if p is not None
                ]
                out = bytearray()
                opened = engine.decrypt_many_into([b for b in blobs if isinstance(b, bytes)], out)
                assert [bytes(v) for v in keyplane.ok(opened)] == [
                    p for p in expected if p is not None
                ]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
