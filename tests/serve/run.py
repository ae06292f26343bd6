"""Drives the client suite against `keyplane serve` (scripts/test-serve runs it).

On a fresh data directory: `keyplane store init`, a credential for Alice (the account's user, who
administers keys under the default key policy) created before the server starts and one for Bob
(another account's user, allowed nothing by the default key policy) created while it runs, so the
running server must pick it up within its one-second bound. Then `keyplane serve --json
--tls-self-signed --listen 127.0.0.1:0`, whose startup lines give the URL and the certificate the
clients trust. The clients: pytest on tests/serve (boto3, the aws CLI, the AWS Encryption SDK, then
the abuse tests last), the AWS SDK for Rust program and the AWS SDK for JavaScript script. Then
SIGTERM (exit 0 and a `stopped` line), `keyplane audit verify`, and the audit records must carry
the network fields (source address, user agent, access key id, TLS version).

`--moto` points the same clients at moto's server instead (plain HTTP, any credentials): a way to
debug a client test apart from keyplane; keyplane-only checks (access control, signature refusals,
the audit log) fail there, and are reported as such.

Prints one line per check and ends with "serve: N passed, M failed".
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACCOUNT = "111122223333"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = "arn:aws:iam::444455556666:user/bob"
REGION = "us-east-1"
# The Region of the second store `keyplane serve` is given (`--region-store`).
REPLICA_REGION = "eu-west-1"

passed = 0
failed = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for the server and the idle-connection test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """A `keyplane serve` (or moto) process and what its startup said."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.cert = ""
        self.events: list[dict[str, object]] = []
        self.stderr_path = ""
        self.admin_url = ""

    def read_event(self, deadline: float) -> dict[str, object]:
        assert self.proc is not None and self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited before ready (rc {self.proc.poll()})")
            line = line.strip()
            if not line:
                continue
            event = json.loads(line)
            self.events.append(event)
            return event
        raise RuntimeError("server not ready in time")


def cli(
    args: argparse.Namespace, *argv: str, check_rc: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [args.cli, "--data-dir", str(args.data_dir), *argv]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check_rc and run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr.strip()}")
    return run


def create_credential(args: argparse.Namespace, principal: str) -> dict[str, str]:
    out = cli(args, "--json", "credentials", "create", "--principal", principal).stdout
    cred = json.loads(out)
    ok = (
        cred.get("Principal") == principal
        and cred.get("Status") == "Active"
        and len(cred.get("AccessKeyId", "")) == 20
        and cred["AccessKeyId"].startswith("AKIA")
        and len(cred.get("SecretAccessKey", "")) == 40
        and isinstance(cred.get("CreateDate"), (int, float))
    )
    check(
        f"credentials create --principal {principal}", ok, "" if ok else f"got keys {sorted(cred)}"
    )
    return cred


# The HSM key store of test_boto3.py's custom key store test: a SoftHSMv2 token in the work
# directory, named to `keyplane serve` as this cluster.
HSM_CLUSTER = "cluster-softhsmserve"
HSM_PIN = "1234567890"


def softhsm_env(work: Path) -> dict[str, str]:
    """A fresh SoftHSMv2 token under `work` (made by scripts/lib/softhsm.sh, the one definition
    of a test token); the environment that names it to keyplane."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "softhsm.sh"
    init = subprocess.run(
        [str(script), "token", str(work / "softhsm"), "serve", HSM_PIN],
        capture_output=True,
        text=True,
    )
    check("SoftHSMv2 token for the custom key store test", init.returncode == 0, init.stderr)
    made = {k: v for k, _, v in (line.partition("=") for line in init.stdout.splitlines())}
    module = made["SOFTHSM_MODULE"]
    return {
        "SOFTHSM2_CONF": made["SOFTHSM2_CONF"],
        "KEYPLANE_PKCS11_TOKENS": f"{HSM_CLUSTER}={module}:serve",
    }


def start_xks_proxy(args: argparse.Namespace, work: Path) -> tuple[Server, dict[str, str]]:
    """`keyplane xks-proxy` on its own store with a self-signed certificate, generated credentials
    and one external key (test_boto3.py's external key store test); the environment that names it
    to `keyplane serve` (its CA bundle) and to the test (its endpoint and configuration file)."""
    data = work / "xks-proxy-data"
    init = subprocess.run(
        [args.cli, "--data-dir", str(data), "store", "init"], capture_output=True, text=True
    )
    check("store init of the XKS proxy's store", init.returncode == 0, init.stderr)
    config = work / "xks-proxy.json"
    proxy = Server()
    proxy.stderr_path = str(work / "xks-proxy.stderr")
    stderr = open(proxy.stderr_path, "w")  # noqa: SIM115
    proxy.proc = subprocess.Popen(
        [args.cli, "--json", "--data-dir", str(data), "xks-proxy", "--listen", "127.0.0.1:0"]
        + ["--tls-self-signed", "--credentials", str(config), "--generate-credentials"]
        + ["--create-key", XKS_KEY_ID],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
    )
    deadline = time.monotonic() + 60
    while True:
        event = proxy.read_event(deadline)
        if event.get("event") == "tls":
            proxy.cert = str(event["certificate"])
            if not os.path.isabs(proxy.cert):
                proxy.cert = str(data / proxy.cert)
        elif event.get("event") == "listening":
            proxy.url = str(event["endpoint"])
        elif event.get("event") == "ready":
            break
    check("xks-proxy --tls-self-signed: listening and ready", proxy.url.startswith("https://"))
    return proxy, {
        "KEYPLANE_XKS_CA_BUNDLE": proxy.cert,
        "KP_XKS_ENDPOINT": proxy.url,
        "KP_XKS_CONFIG": str(config),
        "KP_XKS_KEY_ID": XKS_KEY_ID,
    }


#: The external key `keyplane xks-proxy` holds for test_boto3.py.
XKS_KEY_ID = "boto3-external-key"


def start_keyplane(
    args: argparse.Namespace, log_dir: Path, xks_env: dict[str, str] | None = None
) -> Server:
    server = Server()
    server.stderr_path = str(log_dir / "server.stderr")
    cmd = [
        args.cli,
        "--json",
        "--data-dir",
        str(args.data_dir),
        "serve",
        "--tls-self-signed",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        # Multi-Region keys: the replica Region's store (test_boto3.py's multi-Region test).
        "--region-store",
        f"{REPLICA_REGION}=sqlite:{args.replica_dir}",
    ]
    # Not a with block: the server writes to it until it is stopped.
    stderr = open(server.stderr_path, "w")  # noqa: SIM115
    server.proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
        env=dict(os.environ, **softhsm_env(log_dir), **(xks_env or {})),
    )
    deadline = time.monotonic() + 60
    while True:
        event = server.read_event(deadline)
        kind = event.get("event")
        if kind == "tls":
            server.cert = str(event["certificate"])
        elif kind == "listening":
            server.url = str(event["url"])
        elif kind == "admin":
            server.admin_url = str(event["url"])
        elif kind == "ready":
            break
    ok = server.url.startswith("https://127.0.0.1:") and os.path.isfile(server.cert)
    check("serve --json --tls-self-signed: tls, listening and ready lines", ok, server.url)
    fingerprint = next(
        (e.get("fingerprint_sha256") for e in server.events if e.get("event") == "tls"), ""
    )
    check(
        "self-signed certificate fingerprint printed",
        isinstance(fingerprint, str) and len(fingerprint.replace(":", "")) == 64,
    )
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(args: argparse.Namespace, log_dir: Path) -> Server:
    server = Server()
    port = free_port()
    server.stderr_path = str(log_dir / "moto.stderr")
    moto = str(Path(sys.executable).parent / "moto_server")
    stderr = open(server.stderr_path, "w")  # noqa: SIM115 (as above)
    server.proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    server.url = f"http://127.0.0.1:{port}"
    check("moto_server started", True, server.url)
    return server


def run_pytest(
    args: argparse.Namespace,
    env: dict[str, str],
    label: str,
    files: list[str],
    log_dir: Path,
    extra: list[str] | None = None,
) -> None:
    junit = log_dir / f"{label}.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-W",
        "error",
        "-p",
        "no:cacheprovider",
        # A passing test's tmp_path goes when the run ends (scripts/test checks that nothing is
        # left behind); a failing one's is kept for a look.
        "-o",
        "tmp_path_retention_policy=failed",
        "-q",
        "-rfE",
        "--durations=5",
        f"--junitxml={junit}",
        *(extra or []),
        *[str(HERE / f) for f in files],
    ]
    if args.k:
        cmd += ["-k", args.k]
    print(f"\n--> pytest {label}: {' '.join(files)}", flush=True)
    rc = subprocess.run(cmd, env=env, cwd=str(HERE)).returncode
    try:
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        assert suite is not None
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    except Exception as e:  # noqa: BLE001 - a missing report is a failure of its own
        check(f"pytest {label}", False, f"no report ({e}); exit {rc}")
        return
    global passed, failed
    passed += tests - bad - skipped
    failed += bad + skipped  # nothing skipped counts as passed
    print(
        f"pytest {label}: {tests - bad - skipped} passed, {bad} failed, "
        f"{skipped} skipped (counted as failed)",
        flush=True,
    )
    if rc != 0 and bad == 0 and skipped == 0:
        check(f"pytest {label} exit status", False, f"exit {rc}")


def run_program(label: str, cmd: list[str], env: dict[str, str], cwd: str | None = None) -> None:
    """A client program printing `ok NAME` / `FAIL NAME: why` lines; each is one check."""
    print(f"\n--> {label}: {' '.join(cmd)}", flush=True)
    try:
        run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        check(label, False, str(e))
        return
    lines = run.stdout.splitlines()
    seen = 0
    for line in lines:
        if line.startswith("ok "):
            seen += 1
            check(f"{label}: {line[3:].strip()}", True)
        elif line.startswith("FAIL "):
            seen += 1
            check(f"{label}: {line[5:].strip()}", False)
        elif line.strip():
            print(f"     {line}")
    if run.returncode != 0 or seen == 0:
        check(
            f"{label} exit status",
            False,
            f"exit {run.returncode}, {seen} checks; stderr: {run.stderr.strip()[-2000:]}",
        )


def check_health_and_metrics(server: Server) -> None:
    """`GET /health` answers without authentication; the admin listener's metrics count what the
    clients did."""
    context = ssl.create_default_context(cafile=server.cert)
    try:
        with urllib.request.urlopen(server.url + "/health", context=context, timeout=10) as answer:
            body = json.loads(answer.read())
            ok = (
                answer.status == 200
                and body == {"status": "ok"}
                and bool(answer.headers.get("x-amzn-RequestId"))
            )
            check("GET /health without credentials", ok, f"{answer.status} {body}")
    except (OSError, ValueError) as e:
        check("GET /health without credentials", False, str(e))
    if not server.admin_url:
        check("admin listener announced", False)
        return
    try:
        with urllib.request.urlopen(server.admin_url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError as e:
        check("admin GET /metrics", False, str(e))
        return
    counted = [line for line in text.splitlines() if not line.startswith("#") and "Encrypt" in line]
    check(
        "admin GET /metrics counts the clients' Encrypt requests",
        answer.status == 200 and bool(counted),
        f"{len(text.splitlines())} lines",
    )


def stop(server: Server, moto: bool) -> None:
    assert server.proc is not None
    if moto:
        server.proc.kill()
        server.proc.wait()
        return
    server.proc.send_signal(signal.SIGTERM)
    try:
        rc = server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        check("SIGTERM: server exits within 30 s", False)
        return
    assert server.proc.stdout is not None
    rest = [json.loads(line) for line in server.proc.stdout.read().splitlines() if line.strip()]
    stopped = any(e.get("event") == "stopped" for e in rest)
    check(
        "SIGTERM: exit 0 and a stopped line",
        rc == 0 and stopped,
        f"exit {rc}, lines after ready: {rest}",
    )


def audit_records(data_dir: Path) -> list[dict[str, object]]:
    records = []
    for path in sorted(glob.glob(str(data_dir / "audit" / "**" / "*.log"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith('{"seq":'):
                    records.append(json.loads(line))
    return records


def check_audit(args: argparse.Namespace, alice: dict[str, str], bob: dict[str, str]) -> None:
    run = cli(args, "audit", "verify", check_rc=False)
    check(
        "keyplane audit verify after shutdown",
        run.returncode == 0,
        f"exit {run.returncode}: {run.stdout[-500:]}{run.stderr[-500:]}",
    )
    # What `keyplane audit tail` shows, checked against the log files read directly.
    shown = cli(args, "--json", "audit", "tail", "--lines", "1000000", check_rc=False)
    try:
        records = json.loads(shown.stdout)["Records"]
    except (ValueError, KeyError) as e:
        check("keyplane audit tail --json", False, f"{e}: {shown.stderr[-300:]}")
        records = audit_records(args.data_dir)
    in_files = [r for r in audit_records(args.data_dir) if r.get("sourceIPAddress")]
    shown_ids = {str(r.get("eventID")) for r in records}
    check(
        "keyplane audit tail shows every network record of the logs",
        all(str(r.get("eventID")) in shown_ids for r in in_files) and len(in_files) > 0,
        f"{len(records)} shown, {len(in_files)} network records in the files",
    )
    network = [r for r in records if r.get("sourceIPAddress")]
    check(
        "audit: network records present",
        len(network) > 50,
        f"{len(network)} of {len(records)} records",
    )

    def identity(r: dict[str, object]) -> dict[str, object]:
        value = r.get("userIdentity")
        return value if isinstance(value, dict) else {}

    by_alice = [r for r in network if identity(r).get("accessKeyId") == alice["AccessKeyId"]]
    by_bob = [r for r in network if identity(r).get("accessKeyId") == bob["AccessKeyId"]]
    check(
        "audit: Alice's calls carry her access key id and ARN",
        bool(by_alice) and all(identity(r).get("arn") == ALICE for r in by_alice),
        f"{len(by_alice)} records",
    )
    check(
        "audit: Bob's calls (denied and granted) carry his access key id",
        bool(by_bob) and any(r.get("errorCode") == "AccessDeniedException" for r in by_bob),
        f"{len(by_bob)} records",
    )
    check(
        "audit: source address 127.0.0.1",
        all(r.get("sourceIPAddress") == "127.0.0.1" for r in network),
    )
    agents = {str(r.get("userAgent", "")) for r in network}
    for needle, client in (
        ("Boto3/", "boto3"),
        ("aws-cli/", "aws CLI"),
        ("aws-sdk-rust", "AWS SDK for Rust"),
        ("aws-sdk-js", "AWS SDK for JavaScript"),
        ("AwsEncryptionSdkPython", "AWS Encryption SDK"),
    ):
        check(f"audit: user agent of the {client}", any(needle in a for a in agents))
    tls = [r.get("tlsDetails") for r in network]
    check(
        "audit: TLS version on every network record",
        all(isinstance(t, dict) and str(t.get("tlsVersion", "")).startswith("TLSv1.") for t in tls),
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", help="the keyplane binary")
    parser.add_argument("--work", required=True, type=Path, help="a temporary directory")
    parser.add_argument(
        "--rust-client", help="the AWS SDK for Rust program (tests/serve/aws-sdk-rust)"
    )
    parser.add_argument(
        "--js-dir", default=str(HERE / "js"), help="tests/serve/js, with node_modules"
    )
    parser.add_argument("--moto", action="store_true", help="run the clients against moto_server")
    parser.add_argument("-k", help="pytest -k expression (debugging)")
    args = parser.parse_args()
    args.data_dir = args.work / "data"
    args.replica_dir = args.work / "replica-data"
    fd_limit = raise_fd_limit()
    print(f"open files limit (soft): {fd_limit}", flush=True)

    env = dict(os.environ)
    env["KP_REGION"] = REGION
    if args.moto:
        alice = {"AccessKeyId": "AKIAALICEALICEALICE0", "SecretAccessKey": "a" * 40}
        bob = {"AccessKeyId": "AKIABOBBOBBOBBOBBOB0", "SecretAccessKey": "b" * 40}
        server = start_moto(args, args.work)
        xks_proxy = Server()
        env["KP_MOTO"] = "1"
    else:
        cli(args, "store", "init")
        init_replica = subprocess.run(
            [args.cli, "--data-dir", str(args.replica_dir), "store", "init"],
            capture_output=True,
            text=True,
        )
        check(
            f"store init of the {REPLICA_REGION} store",
            init_replica.returncode == 0,
            init_replica.stderr,
        )
        alice = create_credential(args, ALICE)
        xks_proxy, xks_env = start_xks_proxy(args, args.work)
        env.update(xks_env)
        server = start_keyplane(args, args.work, xks_env)
        bob = create_credential(args, BOB)
        time.sleep(1.2)  # a credential made by another process takes effect within one second
        env["KP_DATA_DIR"] = str(args.data_dir)
        env["KP_REPLICA_DATA_DIR"] = str(args.replica_dir)
        env["KP_REPLICA_REGION"] = REPLICA_REGION
        env["KP_CLI"] = args.cli
        env["KP_HSM_CLUSTER"] = HSM_CLUSTER
        env["KP_HSM_PIN"] = HSM_PIN
    assert server.proc is not None
    env.update(
        {
            "KP_URL": server.url,
            "KP_CA": server.cert,
            "KP_SERVER_PID": str(server.proc.pid),
            "KP_ALICE_KEY": alice["AccessKeyId"],
            "KP_ALICE_SECRET": alice["SecretAccessKey"],
            "KP_ALICE_ARN": ALICE,
            "KP_BOB_KEY": bob["AccessKeyId"],
            "KP_BOB_SECRET": bob["SecretAccessKey"],
            "KP_BOB_ARN": BOB,
        }
    )
    # The clients' own configuration comes from nothing on this machine.
    for name in list(env):
        if name.startswith("AWS_"):
            del env[name]
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"

    try:
        run_pytest(
            args,
            env,
            "clients",
            ["test_boto3.py", "test_awscli.py", "test_encryption_sdk.py"],
            args.work,
        )
        sdk_env = dict(
            env,
            AWS_ACCESS_KEY_ID=alice["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=alice["SecretAccessKey"],
            AWS_REGION=REGION,
        )
        if args.rust_client:
            run_program("aws-sdk-rust", [args.rust_client], sdk_env)
        else:
            check("aws-sdk-rust: program given", False)
        if server.cert:
            sdk_env["NODE_EXTRA_CA_CERTS"] = server.cert
        run_program("aws-sdk-js", ["node", "kms.mjs"], sdk_env, cwd=args.js_dir)
        if not args.moto:
            check_health_and_metrics(server)
        run_pytest(args, env, "abuse", ["test_abuse.py"], args.work, ["-s"])
    finally:
        if not args.moto and xks_proxy.proc is not None:
            xks_proxy.proc.terminate()
            xks_proxy.proc.wait()
        if server.proc.poll() is None:
            stop(server, args.moto)
        else:
            check(
                "server still running after the clients",
                False,
                f"exit {server.proc.returncode}; see {server.stderr_path}",
            )
    if not args.moto:
        check_audit(args, alice, bob)
    if failed and server.stderr_path and os.path.exists(server.stderr_path):
        tail = Path(server.stderr_path).read_text(errors="replace")[-3000:]
        print(f"\nserver stderr (last 3000 characters):\n{tail}")
    print(f"\nserve: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
