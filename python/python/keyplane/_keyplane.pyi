"""Type stubs for the native module `keyplane._keyplane` (python/src/*.rs); they mirror it exactly
(checked with `python -m mypy.stubtest keyplane._keyplane`). Responses are dictionaries in the
service's shapes; see `keyplane.client` for the boto3-compatible layer over them."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Callable, final

__all__ = [
    "Engine",
    "EnvelopeReader",
    "EnvelopeWriter",
    "KmsKeyring",
    "RawAesKeyring",
    "RawRsaKeyring",
    "SecretBytes",
    "__version__",
    "_error_codes",
    "_secrets_zeroed",
    "decrypt_message",
    "encrypt_message",
    "fips_mode",
    "resolve_store",
]

__version__: str

_Buffer = bytes | bytearray | memoryview
_Context = Mapping[str, str] | None
_Response = dict[str, Any]

def fips_mode() -> bool: ...
def resolve_store(store: str | None = None, home: str | None = None) -> str: ...
def _secrets_zeroed() -> int: ...
def _error_codes() -> list[str]: ...

@final
class SecretBytes:
    """Secret bytes held in Rust memory and zeroed when closed or collected."""

    def __new__(cls, data: _Buffer) -> SecretBytes: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> SecretBytes: ...
    def __exit__(
        self,
        *_exc_info: type[BaseException] | None | BaseException | None | TracebackType | None,
    ) -> bool: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def to_bytearray(self) -> bytearray: ...
    def _address(self) -> int: ...

@final
class Engine:
    """A keyplane engine handle (on a durable store, or in memory)."""

    def __new__(
        cls,
        *,
        region: str = "us-east-1",
        account_id: str = "111122223333",
        worker_threads: int = 0,
        max_plaintext_bytes: int = 4096,
        max_keys: int = 100000,
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
        region_stores: dict[str, str] | None = None,
        max_staleness_ms: int = 0,
        pkcs11_tokens: dict[str, str] | None = None,
        xks_ca_bundle: str | None = None,
        xks_timeout_ms: int | None = None,
    ) -> Engine: ...
    def for_principal(self, principal: str, *, via_service: str | None = None) -> Engine: ...
    def dry_run(self) -> Engine: ...
    def dry_run_authorization(self, operation: str, keys: list[str | None]) -> None: ...
    @property
    def principal(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def worker_threads(self) -> int: ...
    @property
    def max_plaintext_bytes(self) -> int: ...
    def same_engine(self, other: Engine) -> bool: ...
    def run_due_tasks(self) -> None: ...

    # control plane (control.rs)
    def create_key(
        self,
        *,
        policy: str | None = None,
        description: str | None = None,
        key_usage: str | None = None,
        customer_master_key_spec: str | None = None,
        key_spec: str | None = None,
        origin: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
        tags: Sequence[Mapping[str, str]] | None = None,
        multi_region: bool | None = None,
        custom_key_store_id: str | None = None,
        xks_key_id: str | None = None,
    ) -> _Response: ...
    def describe_key(self, *, key_id: str) -> _Response: ...
    def managed_key(self, *, service: str) -> _Response: ...
    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> _Response: ...
    def update_key_description(self, *, key_id: str, description: str) -> None: ...
    def enable_key(self, *, key_id: str) -> None: ...
    def disable_key(self, *, key_id: str) -> None: ...
    def schedule_key_deletion(
        self, *, key_id: str, pending_window_in_days: int | None = None
    ) -> _Response: ...
    def cancel_key_deletion(self, *, key_id: str) -> _Response: ...
    def create_alias(self, *, alias_name: str, target_key_id: str) -> None: ...
    def update_alias(self, *, alias_name: str, target_key_id: str) -> None: ...
    def delete_alias(self, *, alias_name: str) -> None: ...
    def list_aliases(
        self, *, key_id: str | None = None, limit: int | None = None, marker: str | None = None
    ) -> _Response: ...
    def tag_resource(self, *, key_id: str, tags: Sequence[Mapping[str, str]]) -> None: ...
    def untag_resource(self, *, key_id: str, tag_keys: Sequence[str]) -> None: ...
    def list_resource_tags(
        self, *, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> _Response: ...
    def enable_key_rotation(
        self, *, key_id: str, rotation_period_in_days: int | None = None
    ) -> None: ...
    def disable_key_rotation(self, *, key_id: str) -> None: ...
    def get_key_rotation_status(self, *, key_id: str) -> _Response: ...
    def rotate_key_on_demand(self, *, key_id: str) -> _Response: ...
    def get_parameters_for_import(
        self, *, key_id: str, wrapping_algorithm: str, wrapping_key_spec: str
    ) -> _Response: ...
    def import_key_material(
        self,
        *,
        key_id: str,
        import_token: _Buffer,
        encrypted_key_material: _Buffer,
        valid_to: datetime | float | None = None,
        expiration_model: str | None = None,
        import_type: str | None = None,
        key_material_description: str | None = None,
        key_material_id: str | None = None,
    ) -> _Response: ...
    def delete_imported_key_material(
        self, *, key_id: str, key_material_id: str | None = None
    ) -> _Response: ...
    def replicate_key(
        self,
        *,
        key_id: str,
        replica_region: str,
        policy: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
        description: str | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> _Response: ...
    def update_primary_region(self, *, key_id: str, primary_region: str) -> None: ...
    def list_key_rotations(
        self, *, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> _Response: ...
    def put_key_policy(
        self,
        *,
        key_id: str,
        policy: str,
        policy_name: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> None: ...
    def get_key_policy(self, *, key_id: str, policy_name: str | None = None) -> _Response: ...
    def list_key_policies(
        self, *, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> _Response: ...
    def create_grant(
        self,
        *,
        key_id: str,
        operations: Sequence[str],
        grantee_principal: str | None = None,
        retiring_principal: str | None = None,
        constraints: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> _Response: ...
    def list_grants(
        self,
        *,
        key_id: str,
        limit: int | None = None,
        marker: str | None = None,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
    ) -> _Response: ...
    def list_retirable_grants(
        self, *, retiring_principal: str, limit: int | None = None, marker: str | None = None
    ) -> _Response: ...
    def retire_grant(
        self,
        *,
        grant_token: str | None = None,
        key_id: str | None = None,
        grant_id: str | None = None,
    ) -> None: ...
    def revoke_grant(self, *, key_id: str, grant_id: str) -> None: ...
    def get_key_last_usage(self, *, key_id: str) -> _Response: ...

    # data plane, one call at a time (data.rs)
    def encrypt(
        self,
        *,
        key_id: str,
        plaintext: _Buffer,
        encryption_context: _Context = None,
        encryption_algorithm: str | None = None,
    ) -> _Response: ...
    def decrypt(
        self,
        *,
        ciphertext_blob: _Buffer,
        encryption_context: _Context = None,
        key_id: str | None = None,
        encryption_algorithm: str | None = None,
        secret: bool = False,
    ) -> _Response: ...
    def re_encrypt(
        self,
        *,
        ciphertext_blob: _Buffer,
        destination_key_id: str,
        source_encryption_context: _Context = None,
        source_key_id: str | None = None,
        destination_encryption_context: _Context = None,
        source_encryption_algorithm: str | None = None,
        destination_encryption_algorithm: str | None = None,
    ) -> _Response: ...
    def generate_data_key(
        self,
        *,
        key_id: str,
        encryption_context: _Context = None,
        number_of_bytes: int | None = None,
        key_spec: str | None = None,
        secret: bool = False,
    ) -> _Response: ...
    def generate_data_key_without_plaintext(
        self,
        *,
        key_id: str,
        encryption_context: _Context = None,
        key_spec: str | None = None,
        number_of_bytes: int | None = None,
    ) -> _Response: ...
    def generate_data_key_pair(
        self,
        *,
        key_id: str,
        key_pair_spec: str,
        encryption_context: _Context = None,
        secret: bool = False,
    ) -> _Response: ...
    def generate_data_key_pair_without_plaintext(
        self, *, key_id: str, key_pair_spec: str, encryption_context: _Context = None
    ) -> _Response: ...
    def generate_random(
        self, *, number_of_bytes: int | None = None, custom_key_store_id: str | None = None
    ) -> _Response: ...
    def create_custom_key_store(
        self,
        *,
        custom_key_store_name: str,
        cloud_hsm_cluster_id: str | None = None,
        trust_anchor_certificate: str | None = None,
        key_store_password: str | None = None,
        custom_key_store_type: str | None = None,
        xks_proxy_uri_endpoint: str | None = None,
        xks_proxy_uri_path: str | None = None,
        xks_proxy_vpc_endpoint_service_name: str | None = None,
        xks_proxy_vpc_endpoint_service_owner: str | None = None,
        xks_proxy_authentication_credential: dict[str, str] | None = None,
        xks_proxy_connectivity: str | None = None,
    ) -> _Response: ...
    def connect_custom_key_store(self, *, custom_key_store_id: str) -> _Response: ...
    def disconnect_custom_key_store(self, *, custom_key_store_id: str) -> _Response: ...
    def delete_custom_key_store(self, *, custom_key_store_id: str) -> _Response: ...
    def update_custom_key_store(
        self,
        *,
        custom_key_store_id: str,
        new_custom_key_store_name: str | None = None,
        key_store_password: str | None = None,
        cloud_hsm_cluster_id: str | None = None,
        xks_proxy_uri_endpoint: str | None = None,
        xks_proxy_uri_path: str | None = None,
        xks_proxy_vpc_endpoint_service_name: str | None = None,
        xks_proxy_vpc_endpoint_service_owner: str | None = None,
        xks_proxy_authentication_credential: dict[str, str] | None = None,
        xks_proxy_connectivity: str | None = None,
    ) -> _Response: ...
    def describe_custom_key_stores(
        self,
        *,
        custom_key_store_id: str | None = None,
        custom_key_store_name: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> _Response: ...
    def sign(
        self,
        *,
        key_id: str,
        message: _Buffer,
        signing_algorithm: str,
        message_type: str | None = None,
    ) -> _Response: ...
    def verify(
        self,
        *,
        key_id: str,
        message: _Buffer,
        signature: _Buffer,
        signing_algorithm: str,
        message_type: str | None = None,
    ) -> _Response: ...
    def get_public_key(self, *, key_id: str) -> _Response: ...
    def generate_mac(self, *, key_id: str, message: _Buffer, mac_algorithm: str) -> _Response: ...
    def verify_mac(
        self, *, key_id: str, message: _Buffer, mac: _Buffer, mac_algorithm: str
    ) -> _Response: ...
    def derive_shared_secret(
        self,
        *,
        key_id: str,
        key_agreement_algorithm: str,
        public_key: _Buffer,
        secret: bool = False,
    ) -> _Response: ...

    # batches: one entry per item, the result or the exception object (batch.rs)
    def encrypt_batch(
        self,
        *,
        key_id: str,
        plaintexts: Sequence[_Buffer],
        encryption_context: _Context = None,
        encryption_contexts: Sequence[_Context] | None = None,
        encryption_algorithm: str | None = None,
    ) -> list[Any]: ...
    def decrypt_batch(
        self,
        *,
        ciphertext_blobs: Sequence[_Buffer],
        encryption_context: _Context = None,
        encryption_contexts: Sequence[_Context] | None = None,
        key_id: str | None = None,
        encryption_algorithm: str | None = None,
        secret: bool = False,
    ) -> list[Any]: ...
    def encrypt_batch_into(
        self,
        *,
        key_id: str,
        plaintexts: Sequence[_Buffer],
        out: bytearray,
        encryption_context: _Context = None,
        encryption_contexts: Sequence[_Context] | None = None,
        encryption_algorithm: str | None = None,
    ) -> list[Any]: ...
    def decrypt_batch_into(
        self,
        *,
        ciphertext_blobs: Sequence[_Buffer],
        out: bytearray,
        encryption_context: _Context = None,
        encryption_contexts: Sequence[_Context] | None = None,
        key_id: str | None = None,
        encryption_algorithm: str | None = None,
    ) -> list[Any]: ...
    def re_encrypt_batch(
        self,
        *,
        ciphertext_blobs: Sequence[_Buffer],
        destination_key_id: str,
        source_encryption_context: _Context = None,
        destination_encryption_context: _Context = None,
        source_key_id: str | None = None,
    ) -> list[Any]: ...
    def generate_data_key_batch(
        self,
        *,
        key_id: str,
        count: int,
        key_spec: str | None = None,
        number_of_bytes: int | None = None,
        encryption_context: _Context = None,
    ) -> list[tuple[SecretBytes, bytes] | Any]: ...
    def generate_data_key_without_plaintext_batch(
        self,
        *,
        key_id: str,
        count: int,
        key_spec: str | None = None,
        number_of_bytes: int | None = None,
        encryption_context: _Context = None,
    ) -> list[Any]: ...
    def sign_batch(
        self,
        *,
        key_id: str,
        messages: Sequence[_Buffer],
        signing_algorithm: str,
        message_type: str | None = None,
    ) -> list[Any]: ...
    def verify_batch(
        self,
        *,
        key_id: str,
        messages: Sequence[_Buffer],
        signatures: Sequence[_Buffer],
        signing_algorithm: str,
        message_type: str | None = None,
    ) -> list[Any]: ...
    def generate_mac_batch(
        self, *, key_id: str, messages: Sequence[_Buffer], mac_algorithm: str
    ) -> list[Any]: ...
    def verify_mac_batch(
        self,
        *,
        key_id: str,
        messages: Sequence[_Buffer],
        macs: Sequence[_Buffer],
        mac_algorithm: str,
    ) -> list[Any]: ...
    def generate_random_batch(self, *, sizes: Sequence[int]) -> list[Any]: ...

# Envelope encryption (python/src/envelope.rs)

@final
class KmsKeyring:
    """A keyplane key as the Encryption SDK's KMS keyring (no `key_id`: discovery)."""

    def __new__(cls, engine: Engine, key_id: str | None = None) -> KmsKeyring: ...

@final
class RawAesKeyring:
    """An AES-128/192/256 wrapping key, copied into locked memory."""

    def __new__(cls, namespace: str, name: str, key: _Buffer) -> RawAesKeyring: ...

@final
class RawRsaKeyring:
    """An RSA wrapping key: a private key wraps and unwraps, a public key only wraps."""

    def __new__(
        cls,
        namespace: str,
        name: str,
        padding: str,
        *,
        private_key: _Buffer | None = None,
        public_key: _Buffer | None = None,
    ) -> RawRsaKeyring: ...

_Keyring = KmsKeyring | RawAesKeyring | RawRsaKeyring

def encrypt_message(
    plaintext: _Buffer,
    *,
    keyrings: Sequence[_Keyring],
    encryption_context: _Context = None,
    frame_length: int = 4096,
    algorithm: str | None = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
) -> bytes: ...
def decrypt_message(
    message: _Buffer,
    *,
    keyrings: Sequence[_Keyring],
    encryption_context: _Context = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
    max_buffered_plaintext: int | None = None,
) -> tuple[bytes, dict[str, str]]: ...

@final
class EnvelopeWriter:
    """Encrypts what is written to it into a message written to `dest`."""

    def __new__(
        cls,
        dest: Any,
        *,
        keyrings: Sequence[_Keyring],
        encryption_context: _Context = None,
        frame_length: int = 4096,
        algorithm: str | None = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
    ) -> EnvelopeWriter: ...
    def write(self, data: _Buffer) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def writable(self) -> bool: ...
    def readable(self) -> bool: ...
    def flush(self) -> None: ...
    def __enter__(self) -> EnvelopeWriter: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class EnvelopeReader:
    """Decrypts the message read from `src`; read() returns authenticated plaintext."""

    def __new__(
        cls,
        src: Any,
        *,
        keyrings: Sequence[_Keyring],
        encryption_context: _Context = None,
        commitment_policy: str | None = None,
        max_encrypted_data_keys: int | None = None,
        max_buffered_plaintext: int | None = None,
        signed_release: str = "after_signature",
    ) -> EnvelopeReader: ...
    def read(self, size: int = -1) -> bytes: ...
    def close(self) -> None: ...
    @property
    def encryption_context(self) -> dict[str, str]: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def readable(self) -> bool: ...
    def writable(self) -> bool: ...
    def __enter__(self) -> EnvelopeReader: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...
