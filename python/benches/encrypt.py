"""From Python: keyplane's batch encrypt against a loop over `cryptography`'s AESGCM and against
single keyplane calls, for 64-byte and 16 KiB plaintexts, in one run so the results read as ratios.

    python benches/encrypt.py [--seconds 1.5]

The AESGCM loop is the floor of what a Python program pays per message for AES-256-GCM with a
fresh random nonce and no key management; keyplane's batch additionally derives per-key data keys,
binds the encryption context, writes its ciphertext header, authorises and audits the call, and
spreads the items over its worker threads.

`encrypt_many_into` writes every ciphertext into one bytearray kept from round to round (a
memoryview per item), so its rounds allocate nothing and fault no page in.

Every other case keeps all its ciphertexts until the round ends. For large messages the round's
allocations then dominate: glibc returns freed memory above its trim threshold to the system, so
each round's outputs are fresh pages that fault in (visible as 16 KiB batches running at a fraction
of their in-cache speed; `MALLOC_TRIM_THRESHOLD_` raised to a few hundred MB removes it).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import keyplane

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover
    AESGCM = None


def rate(run: Callable[[], int], seconds: float) -> float:
    """Messages per second of `run` (which returns how many messages it handled)."""
    run()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += run()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    engine = keyplane.Engine(max_plaintext_bytes=16 * 1024)
    key = engine.create_key()
    context = {"bench": "1"}
    print(f"worker threads: {engine.worker_threads}; {args.seconds:.1f} s per measurement")
    print(f"{'size':>8} {'case':<30} {'msgs/s':>12} {'MB/s':>9} {'vs AESGCM':>10}")
    for size, batch in ((64, 10_000), (16 * 1024, 500)):
        items = [os.urandom(size) for _ in range(batch)]
        # The cases close over this iteration's items (B023): each runs before the next iteration.
        cases: dict[str, Callable[[], int]] = {}
        if AESGCM is not None:
            aes = AESGCM(os.urandom(32))

            def loop() -> int:
                # Keeps every ciphertext, as the batch call does (and as a caller storing them
                # would): holding N outputs at once, not reusing one buffer, matters for large N.
                out = [aes.encrypt(os.urandom(12), item, b"bench=1") for item in items]  # noqa: B023
                return len(out)

            cases["cryptography AESGCM loop"] = loop
        cases["keyplane encrypt_many"] = lambda: len(
            keyplane.ok(engine.encrypt_many(key.key_id, items, context=context))  # noqa: B023
        )
        out = bytearray()  # kept from call to call, as a caller of the zero-copy batch keeps it
        cases["keyplane encrypt_many_into"] = lambda: len(
            keyplane.ok(engine.encrypt_many_into(key.key_id, items, out, context=context))  # noqa: B023
        )

        def single() -> int:
            out = [engine.encrypt(key.key_id, item, context=context) for item in items[:2000]]  # noqa: B023
            return len(out)

        cases["keyplane encrypt (single)"] = single
        results = {name: rate(run, args.seconds) for name, run in cases.items()}
        floor = results.get("cryptography AESGCM loop")
        for name, per_second in results.items():
            ratio = f"{per_second / floor:9.2f}x" if floor else "        -"
            print(
                f"{size:>8} {name:<30} {per_second:>12,.0f} {per_second * size / 1e6:>9.1f} {ratio}"
            )


if __name__ == "__main__":
    main()
