#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: small valid and near-valid inputs.

Each target reads its input with `fuzz/targets/common.rs`'s `Input` (bytes front to back; numbers
big-endian; a "short" string is a length byte and that many bytes), so the seeds below spell the
choices out in the same order as the target's `run` reads them. Rerun after changing a target's
input layout:

    python3 fuzz/seeds.py

Files are named seed-<name>; fuzzing adds its own (hash-named) inputs only to a scratch directory
(scripts/test-fuzz), and an input worth keeping, a crash once fixed above all, is copied here by
hand under a descriptive name.
"""

import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def short(data: bytes) -> bytes:
    assert len(data) < 256
    return bytes([len(data)]) + data


def write(target: str, name: str, data: bytes) -> None:
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def blob(body_len: int, version: int = 1, fmt: int = 1, alg: int = 1) -> bytes:
    key_id = bytes.fromhex("1234abcd12ab34cd56ef1234567890ab")
    return (
        bytes([fmt, alg])
        + key_id
        + struct.pack(">I", version)
        + bytes(range(32))
        + b"\x00" * 4
        + struct.pack(">Q", 7)
        + bytes((i * 7) & 0xFF for i in range(body_len))
        + b"\xee" * 16
    )


def ciphertext_parse() -> None:
    for n in (0, 1, 16, 200):
        write("ciphertext_parse", f"valid-{n}", blob(n))
    write("ciphertext_parse", "version-2", blob(4, fmt=2))
    write("ciphertext_parse", "algorithm-0", blob(4, alg=0))
    write("ciphertext_parse", "key-version-max", blob(4, version=0xFFFFFFFF))
    write("ciphertext_parse", "one-short", blob(0)[:-1])
    write("ciphertext_parse", "empty", b"")
    write("ciphertext_parse", "header-only", blob(0)[:66])
    # Algorithm 2 (external key stores): the header, a wrapping length and the wrapping, then the
    # body and tag.
    for wrapped in (1, 60, 255):
        header = blob(0, alg=2)[:66]
        write(
            "ciphertext_parse",
            f"external-{wrapped}",
            header + bytes([wrapped]) + b"\xaa" * wrapped + b"body" + b"\xee" * 16,
        )
    write("ciphertext_parse", "external-no-body", blob(0, alg=2)[:66] + short(b"w") + b"\xee" * 16)


def decrypt() -> None:
    # key choice, context choice, algorithm, garbage key (short), then the blob's mode and fields,
    # then the decrypt_batch_into capacity.
    none_key, no_context = 0, 5
    genuine_untouched = bytes([1, 0, 0, 0, 0])  # mode 1, genuine 0, one flip at 0 by 0
    write(
        "decrypt",
        "genuine-0",
        bytes([none_key, no_context, 0]) + short(b"") + genuine_untouched + b"\xff",
    )
    # genuine 1 was sealed with context 0 ({"tenant": "42"}).
    write(
        "decrypt",
        "genuine-1-context",
        bytes([none_key, 0, 0]) + short(b"") + bytes([1, 1, 0, 0, 0]) + b"\xff",
    )
    write(
        "decrypt",
        "genuine-1-wrong-context",
        bytes([none_key, 1, 0]) + short(b"") + bytes([1, 1, 0, 0, 0]),
    )
    write(
        "decrypt", "genuine-0-by-alias", bytes([4, no_context, 0]) + short(b"") + genuine_untouched
    )
    write(
        "decrypt", "genuine-0-wrong-key", bytes([6, no_context, 0]) + short(b"") + genuine_untouched
    )
    write(
        "decrypt", "genuine-0-hmac-key", bytes([9, no_context, 0]) + short(b"") + genuine_untouched
    )
    write(
        "decrypt",
        "genuine-3-disabled",
        bytes([none_key, no_context, 0]) + short(b"") + bytes([1, 3, 0, 0, 0]),
    )
    write(
        "decrypt",
        "genuine-4-rotated",
        bytes([none_key, 3, 1]) + short(b"") + bytes([1, 4, 0, 0, 0]),
    )
    write(
        "decrypt",
        "flip-tag",
        bytes([none_key, no_context, 0]) + short(b"") + bytes([1, 0, 0, 86, 1]),
    )
    write(
        "decrypt",
        "flip-key-version",
        bytes([none_key, no_context, 0]) + short(b"") + bytes([1, 4, 0, 21, 3]),
    )
    write(
        "decrypt", "truncated", bytes([none_key, no_context, 0]) + short(b"") + bytes([2, 0, 1, 40])
    )
    write(
        "decrypt",
        "extended",
        bytes([none_key, no_context, 0]) + short(b"") + bytes([2, 0, 0]) + short(b"\x00" * 5),
    )
    write("decrypt", "spliced", bytes([none_key, no_context, 0]) + short(b"") + bytes([3, 0, 4]))
    write(
        "decrypt",
        "header-on-garbage",
        bytes([none_key, no_context, 0]) + short(b"") + bytes([4, 2]) + b"\x00" * 40,
    )
    write("decrypt", "raw", bytes([none_key, no_context, 0]) + short(b"") + bytes([0]) + blob(8))
    write(
        "decrypt",
        "garbage-key-id",
        bytes([1, no_context, 0]) + short(b"alias/\xff") + genuine_untouched,
    )
    write(
        "decrypt",
        "rsa-algorithm",
        bytes([none_key, no_context, 2]) + short(b"") + genuine_untouched,
    )


def context_encode() -> None:
    def ctx(pairs):
        out = bytes([len(pairs)])
        for k, v in pairs:
            out += short(k) + short(v)
        return out

    write("context_encode", "empty-empty", ctx([]) + ctx([]))
    write("context_encode", "one-pair", ctx([(b"tenant", b"42")]) + ctx([(b"tenant", b"42")]))
    write("context_encode", "ambiguous-split", ctx([(b"ab", b"c")]) + ctx([(b"a", b"bc")]))
    write(
        "context_encode",
        "order",
        ctx([(b"b", b"2"), (b"a", b"1")]) + ctx([(b"a", b"1"), (b"b", b"2")]),
    )
    write("context_encode", "empty-strings", ctx([(b"", b"")]) + ctx([]))
    write(
        "context_encode",
        "utf8",
        ctx([("ключ".encode(), "значение".encode())]) + ctx([(b"\xff", b"x")]),
    )
    for n in (8180, 8183, 8184, 8200):
        write(
            "context_encode",
            f"big-{n}",
            b"\xff" + short(b"k") + struct.pack(">H", n) + b"\x00" + ctx([]),
        )


POLICIES = {
    "default": {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    },
    "deny-with-condition": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "111122223333"},
                "Action": ["kms:Encrypt", "kms:Decrypt"],
                "Resource": "*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": ["42", "43"]}},
            },
        ],
    },
    "every-operator": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice"]},
                "NotAction": "kms:ScheduleKeyDeletion",
                "NotResource": "arn:aws:kms:*:444455556666:key/*",
                "Condition": {
                    "StringLike": {"kms:RequestAlias": "alias/app-*"},
                    "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["tenant"]},
                    "ArnLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::111122223333:*"},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                    "Null": {"kms:EncryptionContext:tenant": "false"},
                    "StringEqualsIgnoreCase": {"kms:ViaService": "S3.us-east-1.amazonaws.com"},
                },
            }
        ],
    },
    "service-principal": {
        "Statement": {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
    },
}


def key_policy() -> None:
    for name, policy in POLICIES.items():
        write("key_policy", name, b"\x00" + json.dumps(policy).encode())
    write(
        "key_policy",
        "duplicate-member",
        b'\x00{"Statement": [{"Effect": "Deny", "Effect": "Allow", '
        b'"Principal": "*", "Action": "*", "Resource": "*"}]}',
    )
    write("key_policy", "trailing-comma", b'\x00{"Statement": [],}')
    write(
        "key_policy",
        "variable",
        b'\x00{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
        b'"Action": "*", "Resource": "${aws:username}"}]}',
    )
    write("key_policy", "not-json", b"\x00{")
    write(
        "key_policy",
        "structured-a",
        bytes([1, 0, 0, 1, 0, 2, 0, 1, 1, 1, 0]) + short(b"42") + bytes([0, 2]),
    )
    write(
        "key_policy",
        "structured-b",
        bytes([1, 2, 1, 7, 1, 3, 1, 2, 1, 1, 3, 0]) + short(b"alias/*") + bytes([1, 1]),
    )


def audit_verify() -> None:
    write("audit_verify", "empty-file", b"\x00")
    write("audit_verify", "garbage", b'\x00{"seq":1,"chain":"00"}\n')
    write("audit_verify", "genuine", bytes([1, 0, 0, 1, 0]))  # one insert of nothing
    write("audit_verify", "flip", bytes([1, 0, 100, 0, 4]))
    write("audit_verify", "insert", bytes([1, 0, 50, 1]) + short(b'"x":1,'))
    write("audit_verify", "delete", bytes([1, 0, 200, 2, 60]))
    write("audit_verify", "swap-records", bytes([2, 0, 1, 2, 0]))
    write("audit_verify", "drop-digest", bytes([2, 0, 5, 5, 1]))
    write("audit_verify", "duplicate-record", bytes([2, 0, 3, 4, 2]))
    write("audit_verify", "replace-line", bytes([2, 0, 7, 0, 3]) + short(b'{"seq":8}'))
    write("audit_verify", "cut-after-digest", bytes([2, 2, 16, 0, 1, 16, 0, 1, 16, 0, 1]))


def data_keys() -> None:
    # op 0/1: GenerateDataKey(+WithoutPlaintext): spec, number_of_bytes, context, identifier.
    write("data_keys", "aes256-by-id", bytes([0, 1, 0, 3, 0]))
    write("data_keys", "aes128-alias-context", bytes([0, 2, 1, 0, 2]))
    write("data_keys", "bytes-1024", bytes([1, 0, 4]) + struct.pack(">H", 1024) + bytes([2, 1]))
    write("data_keys", "bytes-1025", bytes([0, 0, 4]) + struct.pack(">H", 1025) + bytes([3, 0]))
    write("data_keys", "zero-and-max", bytes([0, 0, 2, 3, 0, 0, 0, 3, 3, 0]))
    write("data_keys", "both-given", bytes([0, 1, 4, 0, 8, 3, 0]))
    write(
        "data_keys",
        "disabled-pending-hmac-rsa",
        bytes([0, 1, 0, 3, 5, 0, 1, 0, 3, 6, 0, 1, 0, 3, 7, 0, 1, 0, 3, 8]),
    )
    write(
        "data_keys",
        "garbage-identifier",
        bytes([0, 1, 0, 3, 19]) + short(b"arn:aws:kms:us-east-1:111122223333:alias/dk-a"),
    )
    # op 2: ReEncrypt: genuine, blob mode, source key?, source context, source algorithm?,
    # destination, context, algorithm.
    write("data_keys", "re-encrypt-genuine", bytes([2, 0, 3, 0, 0, 0, 0, 4, 3, 3]))
    write("data_keys", "re-encrypt-to-rsa", bytes([2, 1, 3, 0, 3, 0, 8, 2, 1]))
    write("data_keys", "re-encrypt-wrong-context", bytes([2, 0, 3, 0, 1, 0, 0, 3, 3]))
    write("data_keys", "re-encrypt-flipped", bytes([2, 0, 0, 10, 1, 0, 0, 0, 0, 3, 3]))
    # op 3: batches.
    write(
        "data_keys",
        "batches",
        bytes([3, 3, 1, 0, 3, 0, 2, 0, 3, 2, 0, 4, 0, 20, 3, 0, 3, 0, 1, 4, 1, 0, 0, 2, 0, 32]),
    )


def ffi_abi() -> None:
    live, real = 1, 2
    full, valid = 4, 2
    # kp_encrypt: engine, plaintext (short bytes, then its buffer choice), key id, context,
    # algorithm, output buffer, length pointer, info pointer.
    enc = bytes([0, live]) + short(b"hello") + bytes([full, real, 0, live, 4, full, valid, valid])
    write("ffi_abi", "encrypt", enc)
    write(
        "ffi_abi", "encrypt-null-everything", bytes([0, 0]) + short(b"") + bytes([0, 0, 0, 0, 0, 0])
    )
    write(
        "ffi_abi",
        "encrypt-absurd-length",
        bytes([0, live]) + short(b"hello") + bytes([2, 1, real, 0, live, 4, 2, 0, valid, valid]),
    )
    write(
        "ffi_abi",
        "encrypt-wrong-handles",
        bytes([0, 3]) + short(b"x") + bytes([full, real, 0, 4, 4, full, valid, valid]),
    )
    write(
        "ffi_abi",
        "encrypt-misaligned-out",
        bytes([0, live]) + short(b"hello") + bytes([full, real, 0, live, 4, full, 1, 3, valid]),
    )
    # kp_decrypt: engine, keep blob / flip, replace?, buffer choice, key id (flag), context,
    # algorithm, out, len, info.
    write(
        "ffi_abi", "decrypt-genuine", bytes([1, live, 0, 1, full, 1, live, 4, full, valid, valid])
    )
    write(
        "ffi_abi",
        "decrypt-flipped",
        bytes([1, live, 1, 20, 1, 1, full, 1, live, 4, full, valid, valid]),
    )
    write(
        "ffi_abi", "decrypt-freed-handle", bytes([1, 6, 0, 1, full, 1, live, 4, full, valid, valid])
    )
    write(
        "ffi_abi",
        "re-encrypt",
        bytes([2, live, 1, full, real, 0, live, 4, real, 1, live, 4, full, valid, valid]),
    )
    write(
        "ffi_abi", "data-key", bytes([3, live, real, 0, live, 3, 1, 2, valid, full, valid, valid])
    )
    write("ffi_abi", "random", bytes([4, live, 1, 0, 32, full]))
    write(
        "ffi_abi",
        "context",
        bytes([5, live, 1]) + short(b"k") + bytes([1]) + short(b"v") + bytes([live, 1]),
    )
    write(
        "ffi_abi",
        "describe-and-fields",
        bytes([6, live, real, 0, valid, 1, live, 2, 2, live, 3, valid, 2, valid]),
    )
    write("ffi_abi", "alias", bytes([7, live, real, 0, real, 0]))
    write(
        "ffi_abi",
        "batch",
        bytes([8, 2])
        + short(b"a")
        + bytes([full, real, 0, 4])
        + short(b"b")
        + bytes([full, real, 1, 4, 1, valid, valid, full, full, live, 1, 4, valid]),
    )
    write("ffi_abi", "secret-buffer", bytes([9, live, 1, 0, 64, valid]))
    write("ffi_abi", "pure", bytes([10, 0, 0, 0x03, 0xE8, 0, 0, 0, 83]))
    write(
        "ffi_abi",
        "last-error",
        bytes([0, 0]) + short(b"") + bytes([0, 0, 0, 0, 0, 0]) + bytes([11, full, valid]),
    )


def store_records() -> None:
    record = {
        "id": "01010101-0101-0101-0101-010101010101",
        "created": 0,
        "description": "fuzz",
        "key_spec": "SYMMETRIC_DEFAULT",
        "key_usage": "ENCRYPT_DECRYPT",
        "origin": "AWS_KMS",
        "key_manager": "CUSTOMER",
        "state": "Enabled",
        "deletion_date": None,
        "pending_window_days": None,
        "tags": [{"TagKey": "k", "TagValue": "v"}],
        "rotation": {"enabled": True, "period_days": 90, "next_rotation": 1000},
        "versions": [{"version": 1, "material_id": "0" * 64, "created": 0, "rotation_type": None}],
        "on_demand_rotations": 0,
        "policy": "{}",
        "grants": [],
    }
    write("store_records", "key-record", b"\x00\x00" + json.dumps(record).encode())
    write(
        "store_records",
        "alias-record",
        b"\x00\x01"
        + json.dumps(
            {"name": "alias/x", "target": record["id"], "created": 0, "updated": 1}
        ).encode(),
    )
    write(
        "store_records",
        "grant-record",
        b"\x00\x02"
        + json.dumps(
            {
                "grant_id": "a" * 64,
                "grant_token": "t",
                "name": None,
                "grantee_principal": "arn:aws:iam::111122223333:user/bob",
                "retiring_principal": None,
                "operations": ["Encrypt", "Decrypt"],
                "constraints": {"EncryptionContextSubset": {"tenant": "42"}},
                "issuing_account": "111122223333",
                "created": 5,
            }
        ).encode(),
    )
    write(
        "store_records",
        "version-record",
        b"\x00\x03"
        + json.dumps(
            {"version": 4294967295, "material_id": "x", "created": -1, "rotation_type": "AUTOMATIC"}
        ).encode(),
    )
    write("store_records", "bad-json", b'\x00\x00{"id": 1}')
    # Structured: one symmetric key, one version numbered 1, its material (32 bytes), no alias.
    sym = (
        bytes([1, 0, 1, 1])
        + struct.pack(">I", 0)
        + short(b"key")
        + bytes([0, 0, 0, 0, 1, 0])
        + bytes([0, 0])
        + bytes([0])
        + bytes([3])
        + bytes([1])
    )
    write("store_records", "one-symmetric-key", sym + bytes([1, 1]) + bytes(range(32)) + bytes([0]))
    write(
        "store_records",
        "random-structure",
        bytes([1, 2, 3, 1, 9, 200, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9]) * 3,
    )


def sigv4_parse() -> None:
    # A selector byte (0: Authorization, 1: X-Amz-Date, 2: X-Amz-Content-SHA256, 3: the tail of a
    # well-formed Authorization for the target's real access key), then the header value.
    sig = "0123456789abcdef" * 4
    good = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/kms/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + sig
    )
    write("sigv4_parse", "botocore-shaped", b"\x00" + good.encode())
    write("sigv4_parse", "no-signature", b"\x00" + good.rsplit(", ", 1)[0].encode())
    write("sigv4_parse", "other-algorithm", b"\x00AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/e")
    write("sigv4_parse", "bearer", b"\x00Bearer eyJhbGciOiJIUzI1NiJ9")
    write(
        "sigv4_parse",
        "four-elements",
        b"\x00AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/kms, "
        b"SignedHeaders=host, Signature=00",
    )
    write("sigv4_parse", "missing-equal", b"\x00AWS4-HMAC-SHA256 Credential AKIA/x")
    write(
        "sigv4_parse",
        "empty-signed-header",
        b"\x00AWS4-HMAC-SHA256 Credential=A/1/2/3/4, "
        b"SignedHeaders=host;;x-amz-date, Signature=" + sig.encode(),
    )
    write(
        "sigv4_parse",
        "utf8",
        "\x00AWS4-HMAC-SHA256 Credential=\u00e9/\u1234/r/kms/aws4_request, "
        "SignedHeaders=host, Signature=".encode(),
    )
    write("sigv4_parse", "amz-date", b"\x0120150830T123600Z")
    write("sigv4_parse", "amz-date-feb-30", b"\x0120150230T123600Z")
    write("sigv4_parse", "http-date", b"\x01Sun, 30 Aug 2015 12:36:00 GMT")
    write(
        "sigv4_parse",
        "content-sha256",
        b"\x02e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
    write(
        "sigv4_parse",
        "real-key-tail",
        b"\x03SignedHeaders=host;x-amz-date, Signature=" + sig.encode(),
    )
    write(
        "sigv4_parse",
        "real-key-unsigned-host",
        b"\x03SignedHeaders=x-amz-date, Signature=" + sig.encode(),
    )


def request_parse() -> None:
    # The selector byte indexes the dispatch table (server/src/protocol/dispatch.rs), in order.
    dispatch = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "server", "src", "protocol", "dispatch.rs"
    )
    with open(dispatch) as f:
        table = f.read()
    names = [
        line.split('"')[1]
        for line in table.splitlines()
        if line.strip().startswith('"') and "=>" in line
    ]

    def op(name: str, body: bytes) -> bytes:
        return bytes([names.index(name)]) + body

    write(
        "request_parse",
        "encrypt",
        op(
            "Encrypt",
            b'{"KeyId": "alias/fuzz", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b"}}',
        ),
    )
    write(
        "request_parse",
        "encrypt-bad-base64",
        op("Encrypt", b'{"KeyId": "alias/fuzz", "Plaintext": "aGVsbG8"}'),
    )
    write("request_parse", "decrypt-short-blob", op("Decrypt", b'{"CiphertextBlob": "AQID"}'))
    write(
        "request_parse",
        "generate-data-key",
        op("GenerateDataKey", b'{"KeyId": "alias/fuzz", "NumberOfBytes": 32}'),
    )
    write(
        "request_parse",
        "generate-random-wrong-type",
        op("GenerateRandom", b'{"NumberOfBytes": "32"}'),
    )
    write(
        "request_parse",
        "create-key-tags",
        op(
            "CreateKey",
            b'{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC", '
            b'"Tags": [{"TagKey": "a"}]}',
        ),
    )
    write(
        "request_parse",
        "create-grant-constraints",
        op(
            "CreateGrant",
            b'{"KeyId": "alias/fuzz", "GranteePrincipal": "arn:aws:iam::111122223333:user/a", '
            b'"Operations": ["Decrypt", 1], '
            b'"Constraints": {"EncryptionContextSubset": {"a": "b"}}}',
        ),
    )
    write("request_parse", "list-keys-empty-body", op("ListKeys", b""))
    write("request_parse", "describe-key-not-object", op("DescribeKey", b"[1, 2]"))
    write("request_parse", "not-served", bytes([len(names)]) + b"{}")
    write("request_parse", "raw-target", bytes([255]) + short(b"TrentService.Nope") + b"{}")
    write("request_parse", "no-target", bytes([255, 0]) + b"{}")


def xks_request() -> None:
    # Selector: bits 0-1 the route (health, metadata, encrypt, decrypt of fuzz-key), bit 2 a path
    # from the input, bit 3 unsigned, bit 4 GET. Bodies from the XKS proxy API spec's examples.
    meta = (
        b'"requestMetadata": {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice", '
        b'"kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/k", "kmsOperation": "Encrypt", '
        b'"kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae", "kmsViaService": "ebs"}'
    )
    health = b'{"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}'
    encrypt = (
        b"{" + meta + b', "additionalAuthenticatedData": "cHJvamVjdD1uaWxl", '
        b'"plaintext": "SGVsbG8gV29ybGQh", "encryptionAlgorithm": "AES_GCM", '
        b'"ciphertextDataIntegrityValueAlgorithm": "SHA_256"}'
    )
    decrypt = (
        b"{" + meta + b', "ciphertext": "ghxkK1txeDNn3q8Y", "ciphertextMetadata": "a3Ax", '
        b'"encryptionAlgorithm": "AES_GCM", "initializationVector": "HMrlRw85cAJUd5Ax", '
        b'"authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ=="}'
    )
    write("xks_request", "health", bytes([0]) + health)
    write("xks_request", "metadata", bytes([1]) + b"{" + meta + b"}")
    write("xks_request", "encrypt", bytes([2]) + encrypt)
    write("xks_request", "decrypt", bytes([3]) + decrypt)
    write("xks_request", "encrypt-bad-base64", bytes([2]) + encrypt.replace(b"SGVs", b"-_-_"))
    iv_16 = decrypt.replace(b"HMrlRw85cAJUd5Ax", b"AAAAAAAAAAAAAAAAAAAAAA==")
    write("xks_request", "decrypt-iv-16", bytes([3]) + iv_16)
    write("xks_request", "unsigned", bytes([8 | 1]) + b"{" + meta + b"}")
    write("xks_request", "get", bytes([16 | 2]) + encrypt)
    path = b"/fuzz/kms/xks/v1/keys/fuzz-key/encrypt"
    write("xks_request", "raw-path-encrypt", bytes([4 | 2, len(path)]) + path + encrypt)
    other = b"/fuzz/kms/xks/v1/keys/../../health"
    write("xks_request", "raw-path-dots", bytes([4, len(other)]) + other + health)
    write("xks_request", "ping", bytes([4 | 8 | 16, 5]) + b"/ping")
    write("xks_request", "not-json", bytes([2]) + b'{"plaintext": ')
    write("xks_request", "empty", b"")


def main() -> None:
    ciphertext_parse()
    decrypt()
    context_encode()
    key_policy()
    audit_verify()
    data_keys()
    ffi_abi()
    store_records()
    sigv4_parse()
    request_parse()
    xks_request()


if __name__ == "__main__":
    main()
