# The encrypt and decrypt workloads of keyplane-bench, through the keyplane Python package.
#
# Run by `keyplane-bench --compare python` as: python3 -c <this file> THREADS BATCH SIZE SECONDS
# WARMUP_SECONDS REPEATS MAX_PLAINTEXT CONTEXT(0|1) [WORKLOAD(encrypt|decrypt) [MODE(alloc|into)]].
# Prints one JSON line:
#   {"status": "ok", "ops_per_sec": [...], "api": "...", "system_cpu_share": 0.02}
#                                                     one rate per repeat, the call measured, the
#                                                     kernel's share of CPU time while measured
#   {"status": "not-installed", "message": "..."}     `import keyplane` failed
#   {"status": "failed", "message": "..."}            anything else
#
# The package API this expects (the first call shape that works is used, and named in the result):
#   engine = keyplane.Engine(worker_threads=N, max_plaintext_bytes=M)
#   key = engine.create_key()           -> an object with .key_id, a dict with "KeyId", or a str
#   MODE alloc (one bytes object per item):
#     engine.native.encrypt_batch(key_id=.., plaintexts=[bytes, ...], encryption_context={...})
#     or engine.encrypt_many(key_id, [bytes, ...], context={...})
#     or engine.encrypt_batch(key_id=.., plaintexts=[...], encryption_context={...})
#     engine.native.decrypt_batch(ciphertext_blobs=[bytes, ...], encryption_context={...})
#     or engine.decrypt_many([bytes, ...], context={...})
#   MODE into (the harness's --into / --kept-outputs: every output in one bytearray kept from call
#   to call, a memoryview per item; a package without these calls falls back to the above):
#     engine.native.encrypt_batch_into(key_id=.., plaintexts=[...], out=bytearray, ...)
#     engine.native.decrypt_batch_into(ciphertext_blobs=[...], out=bytearray, ...)
#   -> one entry per item: the output, or the exception object
import json
import os
import sys
import time


def emit(**fields):
    print(json.dumps(fields))
    sys.exit(0)


try:
    import keyplane
except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
    emit(status="not-installed", message=f"import keyplane failed: {e}")

threads, batch, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
seconds, warmup, repeats = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
max_plaintext, with_context = int(sys.argv[7]), sys.argv[8] == "1"
workload = sys.argv[9] if len(sys.argv) > 9 else "encrypt"
into = len(sys.argv) > 10 and sys.argv[10] == "into"
context = {"tenant": "acme-corp", "purpose": "benchmark"} if with_context else None

try:
    engine = keyplane.Engine(worker_threads=threads, max_plaintext_bytes=max_plaintext)
except Exception as e:  # noqa: BLE001
    emit(status="failed", message=f"keyplane.Engine(worker_threads=, max_plaintext_bytes=): {e}")

try:
    key = engine.create_key()
except Exception as e:  # noqa: BLE001
    emit(status="failed", message=f"engine.create_key(): {e}")
if isinstance(key, str):
    key_id = key
elif isinstance(key, dict):
    key_id = key.get("KeyId") or key.get("key_id")
else:
    key_id = getattr(key, "key_id", None)
if not key_id:
    emit(status="failed", message=f"engine.create_key() returned no key id: {key!r}")

messages = [bytes((i * 31 ^ j * 7) & 0xFF for j in range(size)) for i in range(batch)]
requests = [
    {"KeyId": key_id, "Plaintext": m, **({"EncryptionContext": context} if context else {})}
    for m in messages
]
native = getattr(engine, "native", None)
# Kept from call to call by the zero-copy calls (as the Rust --into path keeps its buffers).
out_buffer = bytearray()
encrypt_shapes = []
if into and native is not None and hasattr(native, "encrypt_batch_into"):
    encrypt_shapes.append(
        (
            "engine.native.encrypt_batch_into",
            lambda: native.encrypt_batch_into(
                key_id=key_id, plaintexts=messages, encryption_context=context, out=out_buffer
            ),
        )
    )
if native is not None and hasattr(native, "encrypt_batch"):
    encrypt_shapes.append(
        (
            "engine.native.encrypt_batch",
            lambda: native.encrypt_batch(
                key_id=key_id, plaintexts=messages, encryption_context=context
            ),
        )
    )
if hasattr(engine, "encrypt_many"):
    encrypt_shapes.append(
        ("engine.encrypt_many", lambda: engine.encrypt_many(key_id, messages, context=context))
    )
if hasattr(engine, "encrypt_batch"):
    encrypt_shapes.append(
        (
            "engine.encrypt_batch",
            lambda: engine.encrypt_batch(
                key_id=key_id, plaintexts=messages, encryption_context=context
            ),
        )
    )
    encrypt_shapes.append(
        ("engine.encrypt_batch(requests)", lambda: engine.encrypt_batch(requests))
    )


def first_working(shapes):
    """The first (name, call) whose call answers `batch` successful items; emits on failure."""
    errors = []
    for name, shape in shapes:
        try:
            out = shape()
        except TypeError as e:
            errors.append(f"{name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001
            emit(status="failed", message=f"{name} failed: {e}")
        failed = [o for o in out if isinstance(o, Exception)]
        if len(out) != batch or failed:
            emit(status="failed", message=f"{name} returned failed items: {failed[:1]!r}")
        return name, shape
    emit(
        status="failed",
        message=f"no batch {workload} call this script knows: "
        + "; ".join(errors or ["none found"]),
    )


shapes = encrypt_shapes
if workload == "decrypt":
    # The ciphertexts, as bytes, from the first encrypt call that works (not measured).
    _, encrypt = first_working([s for s in encrypt_shapes if not s[0].endswith("_into")])
    blobs = [bytes(b) for b in encrypt()]
    shapes = []
    if into and native is not None and hasattr(native, "decrypt_batch_into"):
        shapes.append(
            (
                "engine.native.decrypt_batch_into",
                lambda: native.decrypt_batch_into(
                    ciphertext_blobs=blobs, encryption_context=context, out=out_buffer
                ),
            )
        )
    if native is not None and hasattr(native, "decrypt_batch"):
        shapes.append(
            (
                "engine.native.decrypt_batch",
                lambda: native.decrypt_batch(ciphertext_blobs=blobs, encryption_context=context),
            )
        )
    if hasattr(engine, "decrypt_many"):
        shapes.append(("engine.decrypt_many", lambda: engine.decrypt_many(blobs, context=context)))
elif workload != "encrypt":
    emit(status="failed", message=f"this script runs encrypt and decrypt, not {workload}")
api, call = first_working(shapes)
end = time.perf_counter() + warmup
while time.perf_counter() < end:
    call()
rates = []
cpu = os.times()
for _ in range(repeats):
    ops = 0
    start = time.perf_counter()
    while True:
        call()
        ops += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    rates.append(ops / elapsed)
after = os.times()
user, system = after.user - cpu.user, after.system - cpu.system
share = system / (user + system) if user + system > 0 else None
emit(status="ok", ops_per_sec=rates, api=api, system_cpu_share=share)
