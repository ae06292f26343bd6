"""Abuse: malformed and mistyped JSON, bodies over the limit, truncated requests, expired, replayed
and wrongly scoped signatures, and 10,000 idle connections while a well-behaved client keeps
being answered, with the server's resident memory measured around them. Each test ends by checking
the server still answers a signed request."""

from __future__ import annotations

import datetime
import json
import os
import resource
import socket
import ssl
import threading
import time
from urllib.parse import urlparse

import pytest
from conftest import CA, MOTO, error_of, make_client, send, signed_request

PARSED = urlparse(os.environ.get("KP_URL", "http://127.0.0.1:1"))
HOST, PORT = PARSED.hostname or "127.0.0.1", PARSED.port or 443
TLS = PARSED.scheme == "https"
IDLE_CONNECTIONS = 10_000


def server_rss_kib() -> int:
    with open(f"/proc/{os.environ['KP_SERVER_PID']}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def still_serves() -> None:
    """A well-behaved signed request on a fresh connection is answered."""
    response = send(signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": 8}'))
    assert response.status_code == 200, response.text
    assert len(response.json()["Plaintext"]) == 12  # base64 of 8 bytes


def connect(timeout: float = 10) -> socket.socket:
    raw = socket.create_connection((HOST, PORT), timeout=timeout)
    if not TLS:
        return raw
    context = ssl.create_default_context(cafile=CA if isinstance(CA, str) else None)
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(raw, server_hostname=HOST)


def raw_request(headers: dict[str, str], body: bytes) -> bytes:
    lines = ["POST / HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_answer(sock: socket.socket, limit: float = 15) -> bytes:
    sock.settimeout(limit)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if _:
            length = [
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(rest) >= length[0]:
                break
    return data


@pytest.fixture()
def key_id() -> str:
    return str(make_client("ALICE").create_key(Description="abuse")["KeyMetadata"]["KeyId"])


def test_malformed_and_mistyped_json(key_id: str) -> None:
    bodies = [
        b"{",
        b"}",
        b"null",
        b'"KeyId"',
        b"\xff\xfe\x00",
        b'{"KeyId": }',
        json.dumps({"KeyId": 7, "Plaintext": "eA=="}).encode(),
        json.dumps({"KeyId": key_id, "Plaintext": ["eA=="]}).encode(),
        json.dumps({"KeyId": key_id, "Plaintext": "eA==", "EncryptionContext": {"a": 1}}).encode(),
        json.dumps({"KeyId": key_id, "Plaintext": "eA==", "EncryptionContext": "a=b"}).encode(),
        json.dumps({"KeyId": key_id, "Plaintext": "eA==", "GrantTokens": "t"}).encode(),
        b'{"KeyId": "' + key_id.encode() + b'", "Plaintext": "eA=="' + b" " * 10 + b",}",
        b"[" * 10_000 + b"]" * 10_000,
    ]
    for body in bodies:
        response = send(signed_request("TrentService.Encrypt", body))
        error = error_of(response)
        assert response.status_code == 400 and error["code"] == "SerializationException", (
            body[:60],
            response.status_code,
            error,
        )
        assert error["message"], body[:60]
    bad_number = send(signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": "eight"}'))
    assert error_of(bad_number)["code"] == "SerializationException"
    still_serves()


def test_body_over_the_limit() -> None:
    # Sent in full: answered 413 with a JSON error, whether or not the server read it all.
    big = b'{"Plaintext": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    prepared = signed_request("TrentService.Encrypt", big)
    headers = dict(prepared.headers)
    headers["Host"] = f"{HOST}:{PORT}"
    headers["Content-Length"] = str(len(big))
    sock = connect()
    message = raw_request(headers, big)
    try:
        for i in range(0, len(message), 65536):
            sock.sendall(message[i : i + 65536])
    except OSError:
        pass  # the server may answer and stop reading before the end
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body.get("__type") and body.get("message"), body
    # Announced but not sent: refused on the header, without waiting for 100 MB.
    sock = connect()
    started = time.monotonic()
    sock.sendall(
        raw_request(
            {
                "Host": f"{HOST}:{PORT}",
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "TrentService.Encrypt",
                "Content-Length": str(100 * 1024 * 1024),
            },
            b"{",
        )
    )
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 10
    still_serves()


def test_truncated_requests() -> None:
    prepared = signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": 8}')
    headers = dict(prepared.headers)
    headers["Host"] = f"{HOST}:{PORT}"
    body = prepared.body if isinstance(prepared.body, bytes) else str(prepared.body).encode()
    for cut in (0, 5, len(body) - 1):
        sock = connect()
        headers["Content-Length"] = str(len(body) + 1000)  # larger than what is sent
        sock.sendall(raw_request(headers, body[:cut]))
        sock.close()
    # Headers cut off in the middle, then close.
    sock = connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
    sock.close()
    # A request line that is no HTTP.
    sock = connect()
    sock.sendall(b"\x16\x03\x01 garbage\r\n\r\n")
    answer = read_answer(sock, 10)
    sock.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100]
    still_serves()


def test_replayed_request_is_refused() -> None:
    prepared = signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": 16}')
    first = send(prepared)
    assert first.status_code == 200, first.text
    replay = send(prepared)  # byte for byte, on a new connection
    error = error_of(replay)
    assert replay.status_code == 400 and error["code"] == "InvalidSignatureException", error
    assert error["message"].startswith("Signature already used"), error
    still_serves()


def test_expired_and_future_signatures() -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    for when, start in (
        (now - datetime.timedelta(minutes=10), "Signature expired:"),
        (now + datetime.timedelta(minutes=10), "Signature not yet current:"),
    ):
        response = send(
            signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": 8}', when=when)
        )
        error = error_of(response)
        assert error["code"] == "InvalidSignatureException" and error["message"].startswith(
            start
        ), error
    still_serves()


def test_signed_for_another_region() -> None:
    response = send(
        signed_request("TrentService.GenerateRandom", b'{"NumberOfBytes": 8}', region="eu-west-1")
    )
    error = error_of(response)
    assert error["code"] == "InvalidSignatureException", error
    assert error["message"] == "Credential should be scoped to a valid region, not 'eu-west-1'.", (
        error
    )
    still_serves()


def open_idle(count: int, into: list[socket.socket]) -> None:
    """Opens up to `count` TCP connections that never send a byte, appending each to `into`."""
    for _ in range(count):
        try:
            s = socket.create_connection((HOST, PORT), timeout=5)
        except OSError as e:
            print(f"idle connections: stopped at {len(into)}: {e}")
            break
        into.append(s)


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed `sock` (nothing was ever sent on it)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_ten_thousand_idle_connections(key_id: str) -> None:
    """10,000 connections opened and left idle while a signed client keeps working: its kept-alive
    connection and fresh ones are answered during the flood and after it; the server's memory
    grows by at most a few KiB per idle connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    wanted = min(IDLE_CONNECTIONS, soft - 256)
    if wanted < IDLE_CONNECTIONS:
        print(
            f"idle connections: the open files limit ({soft}) allows {wanted}, "
            f"not {IDLE_CONNECTIONS}"
        )
    kms = make_client("ALICE")
    assert (
        kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    )  # a kept-alive connection
    before = None if MOTO else server_rss_kib()

    def round_trip(i: int) -> float:
        started = time.monotonic()
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"still here %d" % i)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still here %d" % i
        still_serves()  # and a fresh connection is accepted too
        return time.monotonic() - started

    idle: list[socket.socket] = []
    opener = threading.Thread(target=open_idle, args=(wanted, idle))
    opening = time.monotonic()
    opener.start()
    during: list[float] = []
    try:
        while opener.is_alive():
            during.append(round_trip(len(during)))
            time.sleep(0.1)
        opener.join()
        opened_in = time.monotonic() - opening
        assert len(idle) >= min(wanted, 9_000), f"only {len(idle)} idle connections could be opened"
        after_flood = [round_trip(i) for i in range(20)]
        peak = None if MOTO else server_rss_kib()
        held = sum(1 for s in idle if still_open(s))
    finally:
        opener.join()
        for s in idle:
            s.close()
    time.sleep(1)
    after = None if MOTO else server_rss_kib()
    print(
        f"idle connections: {len(idle)} opened in {opened_in:.1f} s, {held} of them still open "
        f"at the end (the server may close one that sends nothing after its handshake timeout); "
        f"well-behaved client: {len(during)} rounds during the flood (slowest "
        f"{max(during, default=0) * 1000:.0f} ms), 20 after it "
        f"(slowest {max(after_flood) * 1000:.0f} ms); server RSS before {before} KiB, "
        f"with the idle connections {peak} KiB, after closing them {after} KiB"
    )
    assert during, "no round ran while the connections were being opened"
    assert max(during) < 5 and max(after_flood) < 5
    if MOTO:
        pytest.fail("the server's memory is measured for keyplane only")
    assert before is not None and peak is not None and after is not None
    # Bounded: an idle connection may cost a few KiB, never a request body's worth.
    assert peak - before < 40 * len(idle), (before, peak)
    assert after - before < 40 * len(idle), (before, after)
    still_serves()


def test_rss_stays_bounded() -> None:
    """After all of the above the server holds less than 1 GiB."""
    if MOTO:
        pytest.fail("keyplane only")
    rss = server_rss_kib()
    print(f"server RSS at the end of the abuse tests: {rss} KiB")
    assert rss < 1024 * 1024, rss
