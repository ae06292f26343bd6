"""The Pythonic API: `Engine`, `Key` objects, snake_case keyword arguments, and batch methods
that take and return lists.

Batch methods (`encrypt_many`, `decrypt_many`, `re_encrypt_many`, `generate_data_keys`,
`sign_many`, `verify_many`, `mac_many`, `verify_mac_many`, `random_many`) run with the GIL
released, spread over the engine's worker threads, and return one entry per item, in order: the
result, or the `KeyplaneError` for an item that failed (the other items are unaffected).
`encrypt_many_into` and `decrypt_many_into` write every output into one `bytearray` the caller
keeps from call to call and return a `memoryview` of it per item: no copy, no allocation per
item, for large items at the speed of the Rust `*_batch_into` calls. Verify
entries are `True`, `False` (the signature or MAC does not match) or the error. `keyplane.ok(...)`
raises the first error of a batch, or returns the results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import (
    Any,
    Callable,
    Optional,
    TypeVar,
    Union,
)

from . import _keyplane, envelope, exceptions, stream
from ._keyplane import SecretBytes
from .exceptions import KeyplaneError

__all__ = ["Engine", "Key", "DataKey", "DataKeyPair", "ok", "Buffer"]

#: Bytes-like inputs: read in place when `bytes`, copied once (and zeroed after) otherwise.
Buffer = Union[bytes, bytearray, memoryview]
Context = Optional[Mapping[str, str]]
T = TypeVar("T")


def ok(results: Sequence[T | KeyplaneError]) -> list[T]:
    """The results of a batch, or its first error raised."""
    out: list[T] = []
    for item in results:
        if isinstance(item, KeyplaneError):
            raise item
        out.append(item)
    return out


def _ctx(context: Context) -> dict[str, str] | None:
    return dict(context) if context is not None else None


class DataKey:
    """A data key: `plaintext` (SecretBytes, zeroed when closed or collected) and its
    `ciphertext` (to store beside the data). Use as a context manager to close the plaintext."""

    __slots__ = ("plaintext", "ciphertext", "key_id")

    def __init__(self, plaintext: SecretBytes, ciphertext: bytes, key_id: str | None) -> None:
        self.plaintext = plaintext
        self.ciphertext = ciphertext
        self.key_id = key_id

    def close(self) -> None:
        self.plaintext.close()

    def __enter__(self) -> DataKey:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r}, ciphertext=<{len(self.ciphertext)} bytes>)"


class DataKeyPair:
    """A data key pair: `public_key` (DER SubjectPublicKeyInfo), `private_key` (PKCS#8 DER as
    SecretBytes, or None without plaintext) and `private_key_ciphertext`."""

    __slots__ = ("public_key", "private_key", "private_key_ciphertext", "key_pair_spec", "key_id")

    def __init__(self, response: dict[str, Any]) -> None:
        self.public_key: bytes = response["PublicKey"]
        self.private_key: SecretBytes | None = response.get("PrivateKeyPlaintext")
        self.private_key_ciphertext: bytes = response["PrivateKeyCiphertextBlob"]
        self.key_pair_spec: str = response["KeyPairSpec"]
        self.key_id: str = response["KeyId"]

    def close(self) -> None:
        if self.private_key is not None:
            self.private_key.close()

    def __enter__(self) -> DataKeyPair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataKeyPair(key_pair_spec={self.key_pair_spec!r}, key_id={self.key_id!r})"


class Engine:
    """A keyplane engine: keys, aliases, policies and grants, with single and batch calls.

    `Engine()` starts an engine on the durable store named by `store` (an address: `sqlite:PATH`
    or `memory:`), else `home` (a data directory, as the CLI's), else `KEYPLANE_STORE`, else
    `KEYPLANE_HOME`; only with none of them is the key store in memory (keys gone at exit). A
    missing store is created (root key file `root.key`, mode 0600) unless `open_only=True`. The
    root key comes from `root_key_file`, `root_key_env`, `passphrase` (argon2id) or `root_key` (a
    callable returning its 32 bytes, for a secret manager or HSM), else as the CLI finds it
    (`KEYPLANE_ROOT_KEY_FILE`, `KEYPLANE_ROOT_KEY`, the data directory's `root.key`). Requests are
    recorded in the data directory's audit log (`keyplane audit verify` checks it) unless
    `audit=False`; `audit_log`, `audit_durability` ("synced" or "queued") and
    `audit_digest_interval_ms` adjust it. On a durable store the engine looks for other processes'
    changes every `scheduler_interval_ms` (0: the default, 1000), so that their rotations,
    disables and policy changes reach its data plane within that interval. A store that cannot be
    opened raises the service's exception for it (AccessDeniedException for a wrong or missing
    root key, NotFoundException for a missing store with `open_only`, KMSInternalException for a
    read-only, damaged or newer-schema store), with a message naming what was tried. `region` and
    `account_id` are what key ARNs carry (`account_id` defaults to `KEYPLANE_ACCOUNT_ID`, else
    111122223333);
    `worker_threads` sizes the batch pool (0: one per core); `max_plaintext_bytes` is Encrypt's
    limit (4096, as the service, up to 1 MiB); `lock_policy` is "require" (key memory must be
    locked) or "warn"; `rate_quotas` maps operation families (`symmetric_crypto`,
    `asymmetric_crypto`, `data_key_pair`, `control_plane`) to requests per second, over which calls
    fail with ThrottlingException; `principal` makes the engine call as that IAM principal ARN.
    `region_stores` maps other Regions to their existing stores (`{"eu-west-1":
    "sqlite:/srv/keyplane-eu"}`, each opened with its own `root.key`) for multi-Region keys:
    `replicate_key` creates replicas there and shared changes are written there
    (docs/multi-region.md). `max_staleness_ms` (0: off) bounds how long the engine serves keys
    from a view it could not confirm with its store: past it, data-plane calls raise
    KeyUnavailableException until the store answers again (fail closed); it needs a
    `scheduler_interval_ms` shorter than it (docs/store.md, "Sharing a store").
    `pkcs11_tokens` names the PKCS#11 tokens of HSM key stores as the
    CLI's `--pkcs11-token` does: a `CloudHsmClusterId` to `MODULE:TOKEN_LABEL`, as in
    `{"cluster-softhsmtoken": "/usr/lib/softhsm/libsofthsm2.so:label"}`. `xks_ca_bundle` is the
    CA bundle that external key store proxies' certificates must chain to (else the platform's),
    `xks_timeout_ms` the budget of one proxy call (the XKS spec's 250 ms by default); see
    docs/custom-key-stores.md and docs/xks.md.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str | None = None,
        worker_threads: int = 0,
        max_plaintext_bytes: int = 4096,
        max_keys: int = 100_000,
        lock_policy: str = "require",
        rate_quotas: Mapping[str, int] | None = None,
        principal: str | None = None,
        store: str | None = None,
        home: str | None = None,
        root_key_file: str | None = None,
        root_key_env: str | None = None,
        passphrase: bytes | None = None,
        root_key: Callable[[], bytes | bytearray] | None = None,
        open_only: bool = False,
        audit: bool = True,
        audit_log: str | None = None,
        audit_durability: str = "synced",
        audit_digest_interval_ms: int = 0,
        scheduler_interval_ms: int = 0,
        region_stores: Mapping[str, str] | None = None,
        max_staleness_ms: int = 0,
        pkcs11_tokens: Mapping[str, str] | None = None,
        xks_ca_bundle: str | None = None,
        xks_timeout_ms: int | None = None,
    ) -> None:
        self._native = _keyplane.Engine(
            region=region,
            account_id=account_id or os.environ.get("KEYPLANE_ACCOUNT_ID") or "111122223333",
            worker_threads=worker_threads,
            max_plaintext_bytes=max_plaintext_bytes,
            max_keys=max_keys,
            lock_policy=lock_policy,
            rate_quotas=rate_quotas,
            principal=principal,
            store=store,
            home=home,
            root_key_file=root_key_file,
            root_key_env=root_key_env,
            passphrase=passphrase,
            root_key=root_key,
            open_only=open_only,
            audit=audit,
            audit_log=audit_log,
            audit_durability=audit_durability,
            audit_digest_interval_ms=audit_digest_interval_ms,
            scheduler_interval_ms=scheduler_interval_ms,
            region_stores=dict(region_stores) if region_stores else None,
            max_staleness_ms=max_staleness_ms,
            pkcs11_tokens=dict(pkcs11_tokens) if pkcs11_tokens else None,
            xks_ca_bundle=xks_ca_bundle,
            xks_timeout_ms=xks_timeout_ms,
        )

    @classmethod
    def _wrap(cls, native: _keyplane.Engine) -> Engine:
        engine = cls.__new__(cls)
        engine._native = native
        return engine

    @property
    def native(self) -> _keyplane.Engine:
        """The native handle (what `keyplane.client(engine=...)` uses)."""
        return self._native

    @property
    def region(self) -> str:
        return self._native.region

    @property
    def account_id(self) -> str:
        return self._native.account_id

    @property
    def principal(self) -> str:
        return self._native.principal

    @property
    def worker_threads(self) -> int:
        return self._native.worker_threads

    def as_principal(self, principal: str, *, via_service: str | None = None) -> Engine:
        """The same engine, calling as `principal` (optionally through an integrated service's
        endpoint, which key policies see as `kms:ViaService`)."""
        return Engine._wrap(self._native.for_principal(principal, via_service=via_service))

    def client(self, **kwargs: Any) -> Any:
        """A boto3-compatible KMS client on this engine (`keyplane.client(engine=self, ...)`)."""
        from .client import client

        return client("kms", engine=self, **kwargs)

    def __repr__(self) -> str:
        return f"keyplane.{self._native!r}"

    # ---- keys ------------------------------------------------------------------------------

    def create_key(
        self,
        *,
        description: str = "",
        key_spec: str = "SYMMETRIC_DEFAULT",
        key_usage: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: str | None = None,
        alias: str | None = None,
    ) -> Key:
        """Creates a key (and an alias for it, if given)."""
        response = self._native.create_key(
            description=description,
            key_spec=key_spec,
            key_usage=key_usage,
            tags=[{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()],
            policy=policy,
        )
        key = Key(self, response["KeyMetadata"])
        if alias is not None:
            self._native.create_alias(alias_name=alias, target_key_id=key.key_id)
        return key

    def key(self, key_id: str) -> Key:
        """The key named by a key id, key ARN, alias name or alias ARN."""
        return Key(self, self._native.describe_key(key_id=key_id)["KeyMetadata"])

    def keys(self) -> Iterator[Key]:
        """Every key."""
        marker: str | None = None
        while True:
            page = self._native.list_keys(limit=1000, marker=marker)
            for entry in page["Keys"]:
                yield self.key(entry["KeyId"])
            if not page["Truncated"]:
                return
            marker = page["NextMarker"]

    def aliases(self) -> dict[str, str]:
        """Alias name -> target key id, for every alias that names a key (the integrated
        services' predefined `alias/aws/...` aliases name none until their key is first used)."""
        out: dict[str, str] = {}
        marker: str | None = None
        while True:
            page = self._native.list_aliases(limit=100, marker=marker)
            out.update(
                {a["AliasName"]: a["TargetKeyId"] for a in page["Aliases"] if "TargetKeyId" in a}
            )
            if not page["Truncated"]:
                return out
            marker = page["NextMarker"]

    # ---- single calls ----------------------------------------------------------------------

    def encrypt(self, key_id: str, plaintext: Buffer, *, context: Context = None) -> bytes:
        """Encrypts under a symmetric key; returns the ciphertext blob."""
        blob: bytes = self._native.encrypt(
            key_id=key_id, plaintext=plaintext, encryption_context=_ctx(context)
        )["CiphertextBlob"]
        return blob

    def decrypt(
        self, ciphertext: Buffer, *, context: Context = None, key_id: str | None = None
    ) -> bytes:
        """Decrypts a ciphertext blob; returns the plaintext."""
        plaintext: bytes = self._native.decrypt(
            ciphertext_blob=ciphertext, encryption_context=_ctx(context), key_id=key_id
        )["Plaintext"]
        return plaintext

    def decrypt_secret(
        self, ciphertext: Buffer, *, context: Context = None, key_id: str | None = None
    ) -> SecretBytes:
        """Decrypts a ciphertext blob; returns the plaintext as SecretBytes."""
        plaintext: SecretBytes = self._native.decrypt(
            ciphertext_blob=ciphertext,
            encryption_context=_ctx(context),
            key_id=key_id,
            secret=True,
        )["Plaintext"]
        return plaintext

    def re_encrypt(
        self,
        ciphertext: Buffer,
        destination_key_id: str,
        *,
        source_context: Context = None,
        destination_context: Context = None,
    ) -> bytes:
        """Decrypts and encrypts again under another key or context, inside the engine."""
        blob: bytes = self._native.re_encrypt(
            ciphertext_blob=ciphertext,
            destination_key_id=destination_key_id,
            source_encryption_context=_ctx(source_context),
            destination_encryption_context=_ctx(destination_context),
        )["CiphertextBlob"]
        return blob

    def generate_data_key(
        self,
        key_id: str,
        *,
        key_spec: str | None = "AES_256",
        number_of_bytes: int | None = None,
        context: Context = None,
    ) -> DataKey:
        """A new data key: plaintext (SecretBytes) and ciphertext."""
        r = self._native.generate_data_key(
            key_id=key_id,
            encryption_context=_ctx(context),
            key_spec=None if number_of_bytes is not None else key_spec,
            number_of_bytes=number_of_bytes,
            secret=True,
        )
        return DataKey(r["Plaintext"], r["CiphertextBlob"], r["KeyId"])

    def generate_data_key_pair(
        self, key_id: str, key_pair_spec: str, *, context: Context = None, plaintext: bool = True
    ) -> DataKeyPair:
        """A new key pair whose private key is encrypted under `key_id` (and returned as
        SecretBytes unless `plaintext=False`)."""
        if plaintext:
            r = self._native.generate_data_key_pair(
                key_id=key_id,
                key_pair_spec=key_pair_spec,
                encryption_context=_ctx(context),
                secret=True,
            )
        else:
            r = self._native.generate_data_key_pair_without_plaintext(
                key_id=key_id, key_pair_spec=key_pair_spec, encryption_context=_ctx(context)
            )
        return DataKeyPair(r)

    # Envelope encryption (keyplane.envelope, keyplane.stream): this engine's keys as the
    # Encryption SDK's KMS keyrings, beside any raw keyrings.

    def encrypt_message(
        self,
        plaintext: Buffer,
        *,
        key_id: str | None = None,
        key_ids: Sequence[str] = (),
        keyrings: Sequence[envelope.Keyring] = (),
        encryption_context: Mapping[str, str] | None = None,
        frame_length: int = 4096,
        algorithm: str | None = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
    ) -> bytes:
        """An AWS Encryption SDK message of `plaintext` under `key_id` / `key_ids` (this engine's
        keys) and `keyrings` (see `keyplane.envelope.encrypt_message`)."""
        return envelope.encrypt_message(
            plaintext,
            engine=self,
            key_id=key_id,
            key_ids=key_ids,
            keyrings=keyrings,
            encryption_context=encryption_context,
            frame_length=frame_length,
            algorithm=algorithm,
            commitment_policy=commitment_policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
        )

    def decrypt_message(
        self,
        message: Buffer,
        *,
        key_id: str | None = None,
        key_ids: Sequence[str] = (),
        keyrings: Sequence[envelope.Keyring] = (),
        discovery: bool = False,
        encryption_context: Mapping[str, str] | None = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
        max_buffered_plaintext: int | None = None,
    ) -> envelope.DecryptedMessage:
        """`(plaintext, encryption_context)` of a whole message (see
        `keyplane.envelope.decrypt_message`); `discovery=True` tries every key of this engine."""
        return envelope.decrypt_message(
            message,
            engine=self,
            key_id=key_id,
            key_ids=key_ids,
            keyrings=keyrings,
            discovery=discovery,
            encryption_context=encryption_context,
            commitment_policy=commitment_policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
            max_buffered_plaintext=max_buffered_plaintext,
        )

    def open_encrypting(
        self,
        dest: Any,
        *,
        key_id: str | None = None,
        key_ids: Sequence[str] = (),
        keyrings: Sequence[envelope.Keyring] = (),
        encryption_context: Mapping[str, str] | None = None,
        frame_length: int = 4096,
        algorithm: str | None = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
    ) -> _keyplane.EnvelopeWriter:
        """A writer encrypting into a message written to `dest` (see
        `keyplane.stream.open_encrypting`)."""
        return stream.open_encrypting(
            dest,
            engine=self,
            key_id=key_id,
            key_ids=key_ids,
            keyrings=keyrings,
            encryption_context=encryption_context,
            frame_length=frame_length,
            algorithm=algorithm,
            commitment_policy=commitment_policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
        )

    def open_decrypting(
        self,
        src: Any,
        *,
        key_id: str | None = None,
        key_ids: Sequence[str] = (),
        keyrings: Sequence[envelope.Keyring] = (),
        discovery: bool = False,
        encryption_context: Mapping[str, str] | None = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
        max_buffered_plaintext: int | None = None,
        signed_release: str = "after_signature",
    ) -> _keyplane.EnvelopeReader:
        """A reader of the plaintext of the message in `src` (see
        `keyplane.stream.open_decrypting`)."""
        return stream.open_decrypting(
            src,
            engine=self,
            key_id=key_id,
            key_ids=key_ids,
            keyrings=keyrings,
            discovery=discovery,
            encryption_context=encryption_context,
            commitment_policy=commitment_policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
            max_buffered_plaintext=max_buffered_plaintext,
            signed_release=signed_release,
        )

    def random(self, number_of_bytes: int) -> bytes:
        """Random bytes (1 to 1024)."""
        data: bytes = self._native.generate_random(number_of_bytes=number_of_bytes)["Plaintext"]
        return data

    def sign(self, key_id: str, message: Buffer, algorithm: str, *, digest: bool = False) -> bytes:
        """Signs a message (or, with `digest=True`, its digest)."""
        signature: bytes = self._native.sign(
            key_id=key_id,
            message=message,
            signing_algorithm=algorithm,
            message_type="DIGEST" if digest else "RAW",
        )["Signature"]
        return signature

    def verify(
        self,
        key_id: str,
        message: Buffer,
        signature: Buffer,
        algorithm: str,
        *,
        digest: bool = False,
    ) -> bool:
        """Whether a signature is valid (False, not an exception, when it is not)."""
        try:
            self._native.verify(
                key_id=key_id,
                message=message,
                signature=signature,
                signing_algorithm=algorithm,
                message_type="DIGEST" if digest else "RAW",
            )
        except exceptions.KMSInvalidSignatureException:
            return False
        return True

    def public_key(self, key_id: str) -> bytes:
        """The public key of an asymmetric key (DER SubjectPublicKeyInfo)."""
        der: bytes = self._native.get_public_key(key_id=key_id)["PublicKey"]
        return der

    def mac(self, key_id: str, message: Buffer, algorithm: str) -> bytes:
        """An HMAC of a message."""
        mac: bytes = self._native.generate_mac(
            key_id=key_id, message=message, mac_algorithm=algorithm
        )["Mac"]
        return mac

    def verify_mac(self, key_id: str, message: Buffer, mac: Buffer, algorithm: str) -> bool:
        """Whether an HMAC is valid (False, not an exception, when it is not)."""
        try:
            self._native.verify_mac(
                key_id=key_id, message=message, mac=mac, mac_algorithm=algorithm
            )
        except exceptions.KMSInvalidMacException:
            return False
        return True

    def derive_shared_secret(self, key_id: str, public_key: Buffer) -> SecretBytes:
        """ECDH with a KEY_AGREEMENT key and a peer's public key (DER SubjectPublicKeyInfo)."""
        secret: SecretBytes = self._native.derive_shared_secret(
            key_id=key_id, key_agreement_algorithm="ECDH", public_key=public_key, secret=True
        )["SharedSecret"]
        return secret

    # ---- batches ---------------------------------------------------------------------------

    def encrypt_many(
        self,
        key_id: str,
        plaintexts: Sequence[Buffer],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[bytes | KeyplaneError]:
        """Encrypts every plaintext under one key (one context for all, or one per item)."""
        return self._native.encrypt_batch(
            key_id=key_id,
            plaintexts=plaintexts,
            encryption_context=_ctx(context),
            encryption_contexts=None if contexts is None else [_ctx(c) for c in contexts],
        )

    def decrypt_many(
        self,
        ciphertexts: Sequence[Buffer],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        key_id: str | None = None,
    ) -> list[bytes | KeyplaneError]:
        """Decrypts every ciphertext."""
        return self._native.decrypt_batch(
            ciphertext_blobs=ciphertexts,
            encryption_context=_ctx(context),
            encryption_contexts=None if contexts is None else [_ctx(c) for c in contexts],
            key_id=key_id,
        )

    def encrypt_many_into(
        self,
        key_id: str,
        plaintexts: Sequence[Buffer],
        out: bytearray,
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[memoryview | KeyplaneError]:
        """Encrypts every plaintext under one key straight into `out`, a bytearray kept from call
        to call: one memoryview of `out` per ciphertext (or the error), no copy and no allocation
        per item. `out` grows when the batch needs more room (each item takes its plaintext's
        length plus 338 bytes), which raises BufferError while memoryviews of it are alive. The
        views show what this call wrote until the next call with the same `out` overwrites it:
        keep `bytes(view)` of what must outlive that, and do not use `out` from another thread
        during the call."""
        return self._native.encrypt_batch_into(
            key_id=key_id,
            plaintexts=plaintexts,
            out=out,
            encryption_context=_ctx(context),
            encryption_contexts=None if contexts is None else [_ctx(c) for c in contexts],
        )

    def decrypt_many_into(
        self,
        ciphertexts: Sequence[Buffer],
        out: bytearray,
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        key_id: str | None = None,
    ) -> list[memoryview | KeyplaneError]:
        """Decrypts every ciphertext straight into `out`, as `encrypt_many_into` encrypts: one
        memoryview of `out` per plaintext (or the error). The plaintexts are then in memory the
        caller owns: zero `out` when done with them (`out[:] = bytes(len(out))`, or
        `ctypes.memset`); a failed item leaves no plaintext behind."""
        return self._native.decrypt_batch_into(
            ciphertext_blobs=ciphertexts,
            out=out,
            encryption_context=_ctx(context),
            encryption_contexts=None if contexts is None else [_ctx(c) for c in contexts],
            key_id=key_id,
        )

    def decrypt_many_secret(
        self,
        ciphertexts: Sequence[Buffer],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        key_id: str | None = None,
    ) -> list[SecretBytes | KeyplaneError]:
        """Decrypts every ciphertext; plaintexts as SecretBytes."""
        return self._native.decrypt_batch(
            ciphertext_blobs=ciphertexts,
            encryption_context=_ctx(context),
            encryption_contexts=None if contexts is None else [_ctx(c) for c in contexts],
            key_id=key_id,
            secret=True,
        )

    def re_encrypt_many(
        self,
        ciphertexts: Sequence[Buffer],
        destination_key_id: str,
        *,
        source_context: Context = None,
        destination_context: Context = None,
    ) -> list[bytes | KeyplaneError]:
        """Re-encrypts every ciphertext under `destination_key_id`."""
        return self._native.re_encrypt_batch(
            ciphertext_blobs=ciphertexts,
            destination_key_id=destination_key_id,
            source_encryption_context=_ctx(source_context),
            destination_encryption_context=_ctx(destination_context),
        )

    def generate_data_keys(
        self,
        key_id: str,
        count: int,
        *,
        key_spec: str | None = "AES_256",
        number_of_bytes: int | None = None,
        context: Context = None,
    ) -> list[DataKey | KeyplaneError]:
        """`count` data keys under one key."""
        results = self._native.generate_data_key_batch(
            key_id=key_id,
            count=count,
            key_spec=None if number_of_bytes is not None else key_spec,
            number_of_bytes=number_of_bytes,
            encryption_context=_ctx(context),
        )
        return [r if isinstance(r, KeyplaneError) else DataKey(r[0], r[1], None) for r in results]

    def sign_many(
        self, key_id: str, messages: Sequence[Buffer], algorithm: str, *, digest: bool = False
    ) -> list[bytes | KeyplaneError]:
        """Signs every message with one key."""
        return self._native.sign_batch(
            key_id=key_id,
            messages=messages,
            signing_algorithm=algorithm,
            message_type="DIGEST" if digest else "RAW",
        )

    def verify_many(
        self,
        key_id: str,
        messages: Sequence[Buffer],
        signatures: Sequence[Buffer],
        algorithm: str,
        *,
        digest: bool = False,
    ) -> list[bool | KeyplaneError]:
        """Verifies every (message, signature) pair: True, False, or the error."""
        return self._native.verify_batch(
            key_id=key_id,
            messages=messages,
            signatures=signatures,
            signing_algorithm=algorithm,
            message_type="DIGEST" if digest else "RAW",
        )

    def mac_many(
        self, key_id: str, messages: Sequence[Buffer], algorithm: str
    ) -> list[bytes | KeyplaneError]:
        """HMACs of every message with one key."""
        return self._native.generate_mac_batch(
            key_id=key_id, messages=messages, mac_algorithm=algorithm
        )

    def verify_mac_many(
        self, key_id: str, messages: Sequence[Buffer], macs: Sequence[Buffer], algorithm: str
    ) -> list[bool | KeyplaneError]:
        """Verifies every (message, MAC) pair: True, False, or the error."""
        return self._native.verify_mac_batch(
            key_id=key_id, messages=messages, macs=macs, mac_algorithm=algorithm
        )

    def random_many(self, sizes: Sequence[int]) -> list[bytes | KeyplaneError]:
        """Random byte strings of the given sizes (1 to 1024 each)."""
        return self._native.generate_random_batch(sizes=list(sizes))

    # The names the brief for this package used; the same methods.
    encrypt_batch = encrypt_many
    decrypt_batch = decrypt_many
    encrypt_batch_into = encrypt_many_into
    decrypt_batch_into = decrypt_many_into


class Key:
    """A key of an engine: its metadata (DescribeKey's `KeyMetadata`) and the calls that use it.
    Metadata is a snapshot; `refresh()` reads it again."""

    def __init__(self, engine: Engine, metadata: dict[str, Any]) -> None:
        self.engine = engine
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"Key({self.key_id!r}, {self.key_spec}, {self.state})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other.arn == self.arn

    def __hash__(self) -> int:
        return hash(self.arn)

    @property
    def key_id(self) -> str:
        key_id: str = self.metadata["KeyId"]
        return key_id

    @property
    def arn(self) -> str:
        arn: str = self.metadata["Arn"]
        return arn

    @property
    def key_spec(self) -> str:
        spec: str = self.metadata["KeySpec"]
        return spec

    @property
    def key_usage(self) -> str:
        usage: str = self.metadata["KeyUsage"]
        return usage

    @property
    def state(self) -> str:
        state: str = self.metadata["KeyState"]
        return state

    @property
    def enabled(self) -> bool:
        return bool(self.metadata["Enabled"])

    @property
    def description(self) -> str:
        description: str = self.metadata["Description"]
        return description

    @property
    def creation_date(self) -> datetime:
        created: datetime = self.metadata["CreationDate"]
        return created

    def refresh(self) -> Key:
        """Reads the metadata again."""
        self.metadata = self.engine.native.describe_key(key_id=self.key_id)["KeyMetadata"]
        return self

    # ---- lifecycle -------------------------------------------------------------------------

    def enable(self) -> None:
        self.engine.native.enable_key(key_id=self.key_id)
        self.refresh()

    def disable(self) -> None:
        self.engine.native.disable_key(key_id=self.key_id)
        self.refresh()

    def schedule_deletion(self, pending_window_in_days: int = 30) -> datetime:
        """Schedules deletion; returns the deletion date."""
        r = self.engine.native.schedule_key_deletion(
            key_id=self.key_id, pending_window_in_days=pending_window_in_days
        )
        self.refresh()
        date: datetime = r["DeletionDate"]
        return date

    def cancel_deletion(self) -> None:
        self.engine.native.cancel_key_deletion(key_id=self.key_id)
        self.refresh()

    def set_description(self, description: str) -> None:
        self.engine.native.update_key_description(key_id=self.key_id, description=description)
        self.refresh()

    def add_alias(self, alias_name: str) -> None:
        self.engine.native.create_alias(alias_name=alias_name, target_key_id=self.key_id)

    @property
    def aliases(self) -> list[str]:
        page = self.engine.native.list_aliases(key_id=self.key_id, limit=100)
        return [a["AliasName"] for a in page["Aliases"]]

    @property
    def tags(self) -> dict[str, str]:
        page = self.engine.native.list_resource_tags(key_id=self.key_id)
        return {t["TagKey"]: t["TagValue"] for t in page["Tags"]}

    def tag(self, **tags: str) -> None:
        self.engine.native.tag_resource(
            key_id=self.key_id, tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
        )

    def untag(self, *tag_keys: str) -> None:
        self.engine.native.untag_resource(key_id=self.key_id, tag_keys=list(tag_keys))

    def enable_rotation(self, rotation_period_in_days: int | None = None) -> None:
        self.engine.native.enable_key_rotation(
            key_id=self.key_id, rotation_period_in_days=rotation_period_in_days
        )

    def disable_rotation(self) -> None:
        self.engine.native.disable_key_rotation(key_id=self.key_id)

    def rotate(self) -> None:
        """Rotates now: new material encrypts; older material keeps decrypting."""
        self.engine.native.rotate_key_on_demand(key_id=self.key_id)
        self.refresh()

    @property
    def policy(self) -> str:
        policy: str = self.engine.native.get_key_policy(key_id=self.key_id)["Policy"]
        return policy

    def set_policy(self, policy: str, *, bypass_policy_lockout_safety_check: bool = False) -> None:
        self.engine.native.put_key_policy(
            key_id=self.key_id,
            policy=policy,
            bypass_policy_lockout_safety_check=bypass_policy_lockout_safety_check,
        )

    def grant(
        self,
        grantee_principal: str,
        operations: Sequence[str],
        *,
        retiring_principal: str | None = None,
        name: str | None = None,
        context_subset: Context = None,
        context_equals: Context = None,
    ) -> str:
        """Creates a grant; returns its id."""
        constraints: dict[str, dict[str, str]] = {}
        if context_subset is not None:
            constraints["EncryptionContextSubset"] = dict(context_subset)
        if context_equals is not None:
            constraints["EncryptionContextEquals"] = dict(context_equals)
        r = self.engine.native.create_grant(
            key_id=self.key_id,
            grantee_principal=grantee_principal,
            operations=list(operations),
            retiring_principal=retiring_principal,
            constraints=constraints or None,
            name=name,
        )
        grant_id: str = r["GrantId"]
        return grant_id

    def revoke_grant(self, grant_id: str) -> None:
        self.engine.native.revoke_grant(key_id=self.key_id, grant_id=grant_id)

    # ---- use -------------------------------------------------------------------------------

    def _algorithm(self, member: str, given: str | None) -> str:
        if given is not None:
            return given
        algorithms = self.metadata.get(member) or []
        if not algorithms:
            raise ValueError(f"{self.key_spec} {self.key_usage} key {self.key_id} has no {member}")
        algorithm: str = algorithms[0]
        return algorithm

    def encrypt(self, plaintext: Buffer, *, context: Context = None) -> bytes:
        return self.engine.encrypt(self.key_id, plaintext, context=context)

    def decrypt(self, ciphertext: Buffer, *, context: Context = None) -> bytes:
        return self.engine.decrypt(ciphertext, context=context, key_id=self.key_id)

    def encrypt_many(
        self,
        plaintexts: Sequence[Buffer],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[bytes | KeyplaneError]:
        return self.engine.encrypt_many(self.key_id, plaintexts, context=context, contexts=contexts)

    def decrypt_many(
        self,
        ciphertexts: Sequence[Buffer],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[bytes | KeyplaneError]:
        return self.engine.decrypt_many(
            ciphertexts, context=context, contexts=contexts, key_id=self.key_id
        )

    def encrypt_many_into(
        self,
        plaintexts: Sequence[Buffer],
        out: bytearray,
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[memoryview | KeyplaneError]:
        return self.engine.encrypt_many_into(
            self.key_id, plaintexts, out, context=context, contexts=contexts
        )

    def decrypt_many_into(
        self,
        ciphertexts: Sequence[Buffer],
        out: bytearray,
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[memoryview | KeyplaneError]:
        return self.engine.decrypt_many_into(
            ciphertexts, out, context=context, contexts=contexts, key_id=self.key_id
        )

    def generate_data_key(self, *, key_spec: str = "AES_256", context: Context = None) -> DataKey:
        return self.engine.generate_data_key(self.key_id, key_spec=key_spec, context=context)

    def generate_data_keys(
        self, count: int, *, key_spec: str = "AES_256", context: Context = None
    ) -> list[DataKey | KeyplaneError]:
        return self.engine.generate_data_keys(
            self.key_id, count, key_spec=key_spec, context=context
        )

    def public_key(self) -> bytes:
        return self.engine.public_key(self.key_id)

    def sign(self, message: Buffer, algorithm: str | None = None, *, digest: bool = False) -> bytes:
        return self.engine.sign(
            self.key_id, message, self._algorithm("SigningAlgorithms", algorithm), digest=digest
        )

    def verify(
        self,
        message: Buffer,
        signature: Buffer,
        algorithm: str | None = None,
        *,
        digest: bool = False,
    ) -> bool:
        return self.engine.verify(
            self.key_id,
            message,
            signature,
            self._algorithm("SigningAlgorithms", algorithm),
            digest=digest,
        )

    def sign_many(
        self, messages: Sequence[Buffer], algorithm: str | None = None, *, digest: bool = False
    ) -> list[bytes | KeyplaneError]:
        return self.engine.sign_many(
            self.key_id, messages, self._algorithm("SigningAlgorithms", algorithm), digest=digest
        )

    def verify_many(
        self,
        messages: Sequence[Buffer],
        signatures: Sequence[Buffer],
        algorithm: str | None = None,
        *,
        digest: bool = False,
    ) -> list[bool | KeyplaneError]:
        return self.engine.verify_many(
            self.key_id,
            messages,
            signatures,
            self._algorithm("SigningAlgorithms", algorithm),
            digest=digest,
        )

    def mac(self, message: Buffer) -> bytes:
        return self.engine.mac(self.key_id, message, self._algorithm("MacAlgorithms", None))

    def verify_mac(self, message: Buffer, mac: Buffer) -> bool:
        return self.engine.verify_mac(
            self.key_id, message, mac, self._algorithm("MacAlgorithms", None)
        )

    def mac_many(self, messages: Sequence[Buffer]) -> list[bytes | KeyplaneError]:
        return self.engine.mac_many(self.key_id, messages, self._algorithm("MacAlgorithms", None))

    def verify_mac_many(
        self, messages: Sequence[Buffer], macs: Sequence[Buffer]
    ) -> list[bool | KeyplaneError]:
        return self.engine.verify_mac_many(
            self.key_id, messages, macs, self._algorithm("MacAlgorithms", None)
        )

    def derive_shared_secret(self, public_key: Buffer) -> SecretBytes:
        return self.engine.derive_shared_secret(self.key_id, public_key)
