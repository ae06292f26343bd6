"""Custom key stores through the boto3-shaped client: an HSM key store on a SoftHSMv2 token (made
in a temporary directory, named to the engine as the CLI's --pkcs11-token does), and an external
key store behind `keyplane xks-proxy` (the CLI binary, KEYPLANE_CLI, over TLS with its
self-signed CA). The six operations, CreateKey's Origin/CustomKeyStoreId/XksKeyId, GenerateRandom's
CustomKeyStoreId, and keys used and refused as the service's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import keyplane

PIN = "1234567890"
CLUSTER = "cluster-pythonsofthsm"
WRONG_PIN_CLUSTER = "cluster-pythonwrongpin"
ANCHOR = "-----BEGIN CERTIFICATE-----\nc29mdGhzbQ==\n-----END CERTIFICATE-----\n"
EXTERNAL_KEY = "python-external-key"


def softhsm_token(work: Path, label: str) -> dict[str, str]:
    """A SoftHSMv2 token labelled `label` in `work`, made by scripts/lib/softhsm.sh (the one
    definition of a test token, which the scripts, the C and Rust tests and tests/serve use too;
    KEYPLANE_SOFTHSM names it, else its place in the source tree): SOFTHSM2_CONF and
    SOFTHSM_MODULE."""
    script = os.environ.get("KEYPLANE_SOFTHSM") or str(
        Path(__file__).resolve().parents[2] / "scripts" / "lib" / "softhsm.sh"
    )
    made = subprocess.run(
        [script, "token", str(work), label, PIN], check=True, capture_output=True, text=True
    )
    return {k: v for k, _, v in (line.partition("=") for line in made.stdout.splitlines())}


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSMv2 token in a temporary directory; SOFTHSM2_CONF set for the module, which
    reads it at C_Initialize."""
    work = tmp_path_factory.mktemp("softhsm")
    # Two tokens: a module keeps one login per token for the whole process, so the wrong-PIN
    # test needs a token no other store of this process has logged in to.
    made = softhsm_token(work, "python")
    softhsm_token(work, "python-wrong-pin")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = made["SOFTHSM2_CONF"]
    module = made["SOFTHSM_MODULE"]
    yield {CLUSTER: f"{module}:python", WRONG_PIN_CLUSTER: f"{module}:python-wrong-pin"}
    if old is None:
        del os.environ["SOFTHSM2_CONF"]
    else:
        os.environ["SOFTHSM2_CONF"] = old


def cli() -> str:
    path = os.environ.get("KEYPLANE_CLI") or shutil.which("keyplane")
    assert path, "set KEYPLANE_CLI to the keyplane binary (scripts/test-python builds it)"
    return path


class XksProxy:
    def __init__(self, work: Path) -> None:
        data = work / "proxy-data"
        subprocess.run(
            [cli(), "--data-dir", str(data), "store", "init"], check=True, capture_output=True
        )
        self.config_path = work / "xks-proxy.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
        self.proc = subprocess.Popen(
            [cli(), "--json", "--data-dir", str(data), "xks-proxy", "--listen", "127.0.0.1:0"]
            + ["--tls-self-signed", "--credentials", str(self.config_path)]
            + ["--generate-credentials", "--create-key", EXTERNAL_KEY],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.endpoint = self.ca = ""
        for line in self.proc.stdout:
            event = json.loads(line)
            if event.get("event") == "tls":
                cert = Path(str(event["certificate"]))
                self.ca = str(cert if cert.is_absolute() else data / cert)
            elif event.get("event") == "listening":
                self.endpoint = str(event["endpoint"])
            elif event.get("event") == "ready":
                break
        assert self.endpoint.startswith("https://") and self.ca, "xks-proxy did not start"
        self.config = json.loads(self.config_path.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XksProxy]:
    p = XksProxy(tmp_path_factory.mktemp("xks"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def kms(softhsm: dict[str, str], proxy: XksProxy) -> Any:
    engine = keyplane.Engine(
        store="memory:", audit=False, pkcs11_tokens=softhsm, xks_ca_bundle=proxy.ca
    )
    return keyplane.client("kms", engine=engine)


def code(excinfo: pytest.ExceptionInfo[Exception]) -> str:
    error: Any = excinfo.value
    return str(error.response["Error"]["Code"])


def state(kms: Any, store: str) -> str:
    return str(
        kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0][
            "ConnectionState"
        ]
    )


def test_an_hsm_key_store_on_softhsm(kms: Any) -> None:
    store = kms.create_custom_key_store(
        CustomKeyStoreName="python-hsm",
        CloudHsmClusterId=CLUSTER,
        TrustAnchorCertificate=ANCHOR,
        KeyStorePassword=PIN,
    )["CustomKeyStoreId"]
    assert state(kms, store) == "DISCONNECTED"
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert state(kms, store) == "CONNECTED"
    listed = kms.describe_custom_key_stores(CustomKeyStoreName="python-hsm")["CustomKeyStores"]
    assert listed[0]["CloudHsmClusterId"] == CLUSTER and PIN not in repr(listed), listed
    meta = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]
    assert meta["CustomKeyStoreId"] == store and meta["CloudHsmClusterId"] == CLUSTER, meta
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"in the token")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"in the token"
    random = kms.generate_random(NumberOfBytes=24, CustomKeyStoreId=store)["Plaintext"]
    assert len(random) == 24
    with pytest.raises(Exception) as connected:
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert code(connected) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    with pytest.raises(Exception) as refused:
        kms.decrypt(CiphertextBlob=blob)
    assert code(refused) == "KeyUnavailableException"
    with pytest.raises(Exception) as held:
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert code(held) == "CustomKeyStoreHasCMKsException"
    kms.update_custom_key_store(CustomKeyStoreId=store, NewCustomKeyStoreName="python-hsm-2")
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"in the token"


def test_a_wrong_pin_fails_the_connection(softhsm: dict[str, str]) -> None:
    engine = keyplane.Engine(store="memory:", audit=False, pkcs11_tokens=softhsm)
    kms = keyplane.client("kms", engine=engine)
    store = kms.create_custom_key_store(
        CustomKeyStoreName="wrong-pin",
        CloudHsmClusterId=WRONG_PIN_CLUSTER,
        TrustAnchorCertificate=ANCHOR,
        KeyStorePassword="not-the-pin",
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    entry = kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0]
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == (
        "FAILED",
        "INVALID_CREDENTIALS",
    ), entry


def test_an_external_key_store_through_keyplane_xks_proxy(kms: Any, proxy: XksProxy) -> None:
    credential = proxy.config["XksProxyAuthenticationCredential"]
    store = kms.create_custom_key_store(
        CustomKeyStoreName="python-xks",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=proxy.endpoint,
        XksProxyUriPath=proxy.config["XksProxyUriPath"],
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential=credential,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    entry = kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0]
    assert entry["ConnectionState"] == "CONNECTED", entry
    assert entry["XksProxyConfiguration"]["UriEndpoint"] == proxy.endpoint, entry
    assert credential["RawSecretAccessKey"] not in repr(entry)
    with pytest.raises(Exception) as unknown:
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store, XksKeyId="nope")
    assert code(unknown) == "XksKeyNotFoundException"
    meta = kms.create_key(
        Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store, XksKeyId=EXTERNAL_KEY
    )["KeyMetadata"]
    assert meta["XksKeyConfiguration"] == {"Id": EXTERNAL_KEY}, meta
    context = {"purpose": "python"}
    blob = kms.encrypt(
        KeyId=meta["KeyId"], Plaintext=b"behind the proxy", EncryptionContext=context
    )["CiphertextBlob"]
    assert blob[1] == 2
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == (
        b"behind the proxy"
    )
    with pytest.raises(Exception) as no_random:
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId=store)
    assert code(no_random) == "UnsupportedOperationException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    with pytest.raises(Exception) as refused:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert code(refused) == "KeyUnavailableException"
