"""`keyplane.client("kms", ...)`: a drop-in for boto3's KMS client, backed by an in-process engine.

Methods, parameter names (CamelCase keyword arguments), response dictionaries (with
`ResponseMetadata`), paginators and error classes are boto3's for every operation the engine
supports; code written for boto3 switches by changing how the client is made. Differences:

- There is no network and no credentials: `endpoint_url`, `aws_access_key_id` and the other
  connection arguments are checked for type and otherwise ignored. Calls run as the account's root
  principal, or as `principal=` (an IAM principal ARN), against key policies and grants.
- `GrantTokens` are accepted and ignored: grants take effect at once in the engine.
- `DryRun` runs the call on the engine's dry-run handle (`Engine.dry_run()`): the real call's
  authorization and parameter checks, then `DryRunOperationException` ("The request would have
  succeeded, but the DryRun option is set.") where it would have succeeded, with nothing changed
  (CreateGrant, RetireGrant, RevokeGrant stop before their store commit) and the dry run audited
  with that code. `DryRunModifiers=["IGNORE_CIPHERTEXT"]` on Decrypt and ReEncrypt checks only
  the authorization for KeyId (SourceKeyId, DestinationKeyId), without a valid ciphertext.
- Parameters for features keyplane does not have (custom key stores, Nitro Enclaves recipients,
  service principals, `SourceArn` grant constraints) raise `UnsupportedOperationException`.
- Blob parameters also accept `memoryview`.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any

from . import _keyplane
from ._model import METHODS, OPERATIONS, PAGINATORS
from ._validate import validate
from .exceptions import (
    ERROR_CLASSES,
    ClientError,
    KeyplaneError,
    OperationNotPageableError,
    _engine_error,
    _response_metadata,
)
from .paginate import Paginator

if TYPE_CHECKING:
    from ._api import Engine

__all__ = ["client", "KMSClient", "ClientExceptions", "DEFAULT_ACCOUNT_ID", "default_engine"]

#: The account keys belong to when neither `account_id` nor `KEYPLANE_ACCOUNT_ID` says otherwise.
DEFAULT_ACCOUNT_ID = "111122223333"

# Parameters the engine has no counterpart for; giving them raises UnsupportedOperationException.
_UNSUPPORTED = {
    "Recipient": "Nitro Enclaves recipients",
    "GranteeServicePrincipal": "service principals",
    "RetiringServicePrincipal": "service principals",
}
# Operations that return secrets, and take `secret=True` to return them as SecretBytes.
_SECRET_OPERATIONS = {"Decrypt", "GenerateDataKey", "GenerateDataKeyPair", "DeriveSharedSecret"}
# Operations whose DryRunModifiers may say IGNORE_CIPHERTEXT, with the members naming their keys.
_IGNORE_CIPHERTEXT_KEYS = {
    "Decrypt": ("KeyId",),
    "ReEncrypt": ("SourceKeyId", "DestinationKeyId"),
}
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_KWARG_NAMES: dict[str, str] = {}


def _kwarg(member: str) -> str:
    name = _KWARG_NAMES.get(member)
    if name is None:
        name = _KWARG_NAMES[member] = _SNAKE.sub("_", member).lower()
    return name


_ENGINES: dict[tuple[str, str, str], _keyplane.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def default_engine(
    region_name: str,
    account_id: str,
    store: str | None = None,
    home: str | None = None,
) -> _keyplane.Engine:
    """The process's shared engine for a region, account and store (made on first use), so that
    clients made alike see the same keys, as clients of the service do. The store is `store` (an
    address), else `home` (a data directory), else `KEYPLANE_STORE`, else `KEYPLANE_HOME`; with
    none of them, the engine is in memory."""
    address = _keyplane.resolve_store(store=store, home=home)
    with _ENGINES_LOCK:
        engine = _ENGINES.get((region_name, account_id, address))
        if engine is None:
            engine = _ENGINES[(region_name, account_id, address)] = _keyplane.Engine(
                region=region_name, account_id=account_id, store=address
            )
        return engine


class ClientExceptions:
    """`client.exceptions`: the error classes by code, and `ClientError`, as botocore's."""

    ClientError = ClientError

    def __init__(self) -> None:
        for code, cls in ERROR_CLASSES.items():
            setattr(self, code, cls)

    def from_code(self, error_code: str) -> type:
        cls = ERROR_CLASSES.get(error_code)
        return cls if cls is not None else ClientError

    def __getattr__(self, name: str) -> Any:
        # Only reached for names __init__ did not set; declared so that type checkers accept
        # `client.exceptions.NotFoundException` and the other classes set per code.
        raise AttributeError(f"no error class for '{name}'")


_EXCEPTIONS = ClientExceptions()


class ClientMeta:
    """`client.meta`: what boto3 clients tell about themselves."""

    def __init__(self, region_name: str, endpoint_url: str | None, config: Any) -> None:
        self.region_name = region_name
        self.endpoint_url = endpoint_url or f"https://kms.{region_name}.amazonaws.com"
        self.config = config
        self.partition = "aws"
        self.service_name = "kms"
        self.method_to_api_mapping = dict(METHODS)


class KMSClient:
    """A boto3-compatible KMS client on a keyplane engine (make one with `keyplane.client`)."""

    def __init__(
        self,
        engine: _keyplane.Engine,
        *,
        region_name: str,
        endpoint_url: str | None = None,
        config: Any = None,
        secret_bytes: bool = False,
    ) -> None:
        self._engine = engine
        self._secret_bytes = secret_bytes
        self.meta = ClientMeta(region_name, endpoint_url, config)
        self.exceptions = _EXCEPTIONS

    @property
    def engine(self) -> _keyplane.Engine:
        """The native engine handle this client calls (as its principal)."""
        return self._engine

    def __repr__(self) -> str:
        return f"<keyplane KMS client: {self._engine!r}>"

    def _call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        spec = OPERATIONS[operation]
        params = validate(spec["input"], kwargs)
        try:
            result = self._run(operation, params)
        except KeyplaneError as e:
            e._set_operation(operation)
            raise
        result["ResponseMetadata"] = _response_metadata()
        return result

    def _run(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        params.pop("GrantTokens", None)
        dry_run = params.pop("DryRun", None)
        modifiers = params.pop("DryRunModifiers", None) or []
        for name, feature in _UNSUPPORTED.items():
            if params.get(name) is not None:
                raise _engine_error(
                    "UnsupportedOperationException",
                    f"{name}: keyplane does not support {feature}",
                    operation,
                )
        rotations_only = False
        if operation == "ListKeyRotations":
            # ROTATIONS_ONLY (the default) leaves out material that no rotation made current: an
            # EXTERNAL key's first material and material pending rotation.
            rotations_only = params.pop("IncludeKeyMaterial", "ROTATIONS_ONLY") == "ROTATIONS_ONLY"
        elif operation == "ListRetirableGrants" and "RetiringPrincipal" not in params:
            raise _engine_error(
                "ValidationException", "ListRetirableGrants needs a RetiringPrincipal", operation
            )
        kwargs = {_kwarg(k): v for k, v in params.items()}
        if self._secret_bytes and operation in _SECRET_OPERATIONS:
            kwargs["secret"] = True
        if dry_run:
            # The engine answers every dry run with an error: DryRunOperationException where the
            # real call would have succeeded, or the real call's own error.
            if "IGNORE_CIPHERTEXT" in modifiers and operation in _IGNORE_CIPHERTEXT_KEYS:
                keys = [params.get(member) for member in _IGNORE_CIPHERTEXT_KEYS[operation]]
                self._engine.dry_run_authorization(operation, keys)
            else:
                getattr(self._engine.dry_run(), METHOD_NAMES[operation])(**kwargs)
            raise _engine_error(
                "KMSInternalException", "the engine's dry run returned without an answer", operation
            )
        method = getattr(self._engine, METHOD_NAMES[operation])
        result = method(**kwargs)
        if rotations_only:
            result["Rotations"] = [r for r in result["Rotations"] if "RotationType" in r]
        return result if result is not None else {}

    # ---- botocore's client methods -------------------------------------------------------

    def can_paginate(self, operation_name: str) -> bool:
        """Whether `get_paginator(operation_name)` works (operation_name in snake_case)."""
        return METHODS.get(operation_name) in PAGINATORS

    def get_paginator(self, operation_name: str) -> Paginator:
        """A paginator for a list operation, as botocore's (`list_keys`, `list_aliases`, ...)."""
        operation = METHODS.get(operation_name)
        if operation is None or operation not in PAGINATORS:
            raise OperationNotPageableError(operation_name=operation_name)
        return Paginator(getattr(self, operation_name), PAGINATORS[operation], operation)

    def get_waiter(self, waiter_name: str) -> Any:
        """KMS has no waiters."""
        raise ValueError(f"Waiter does not exist: {waiter_name}")

    @property
    def waiter_names(self) -> list[str]:
        return []

    def close(self) -> None:
        """Nothing to close: there is no connection pool."""

    # ---- the operations --------------------------------------------------------------------

    def cancel_key_deletion(self, **kwargs: Any) -> dict[str, Any]:
        """CancelKeyDeletion: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("CancelKeyDeletion", kwargs)

    def create_alias(self, **kwargs: Any) -> dict[str, Any]:
        """CreateAlias: see the service's API reference; parameters and response as boto3's."""
        return self._call("CreateAlias", kwargs)

    def create_grant(self, **kwargs: Any) -> dict[str, Any]:
        """CreateGrant: see the service's API reference; parameters and response as boto3's."""
        return self._call("CreateGrant", kwargs)

    def create_key(self, **kwargs: Any) -> dict[str, Any]:
        """CreateKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("CreateKey", kwargs)

    def decrypt(self, **kwargs: Any) -> dict[str, Any]:
        """Decrypt: see the service's API reference; parameters and response as boto3's."""
        return self._call("Decrypt", kwargs)

    def delete_alias(self, **kwargs: Any) -> dict[str, Any]:
        """DeleteAlias: see the service's API reference; parameters and response as boto3's."""
        return self._call("DeleteAlias", kwargs)

    def derive_shared_secret(self, **kwargs: Any) -> dict[str, Any]:
        """DeriveSharedSecret: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DeriveSharedSecret", kwargs)

    def describe_key(self, **kwargs: Any) -> dict[str, Any]:
        """DescribeKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("DescribeKey", kwargs)

    def disable_key(self, **kwargs: Any) -> dict[str, Any]:
        """DisableKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("DisableKey", kwargs)

    def disable_key_rotation(self, **kwargs: Any) -> dict[str, Any]:
        """DisableKeyRotation: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DisableKeyRotation", kwargs)

    def enable_key(self, **kwargs: Any) -> dict[str, Any]:
        """EnableKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("EnableKey", kwargs)

    def enable_key_rotation(self, **kwargs: Any) -> dict[str, Any]:
        """EnableKeyRotation: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("EnableKeyRotation", kwargs)

    def encrypt(self, **kwargs: Any) -> dict[str, Any]:
        """Encrypt: see the service's API reference; parameters and response as boto3's."""
        return self._call("Encrypt", kwargs)

    def generate_data_key(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateDataKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("GenerateDataKey", kwargs)

    def generate_data_key_pair(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateDataKeyPair: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("GenerateDataKeyPair", kwargs)

    def generate_data_key_pair_without_plaintext(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateDataKeyPairWithoutPlaintext: see the service's API reference; parameters and
        response as boto3's."""
        return self._call("GenerateDataKeyPairWithoutPlaintext", kwargs)

    def generate_data_key_without_plaintext(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateDataKeyWithoutPlaintext: see the service's API reference; parameters and
        response as boto3's."""
        return self._call("GenerateDataKeyWithoutPlaintext", kwargs)

    def generate_mac(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateMac: see the service's API reference; parameters and response as boto3's."""
        return self._call("GenerateMac", kwargs)

    def connect_custom_key_store(self, **kwargs: Any) -> dict[str, Any]:
        """ConnectCustomKeyStore: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("ConnectCustomKeyStore", kwargs)

    def create_custom_key_store(self, **kwargs: Any) -> dict[str, Any]:
        """CreateCustomKeyStore: an HSM key store on a PKCS#11 token the engine names
        (`Engine(pkcs11_tokens=...)`) or an external key store behind an XKS proxy; parameters
        and response as boto3's."""
        return self._call("CreateCustomKeyStore", kwargs)

    def delete_custom_key_store(self, **kwargs: Any) -> dict[str, Any]:
        """DeleteCustomKeyStore: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DeleteCustomKeyStore", kwargs)

    def describe_custom_key_stores(self, **kwargs: Any) -> dict[str, Any]:
        """DescribeCustomKeyStores: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DescribeCustomKeyStores", kwargs)

    def disconnect_custom_key_store(self, **kwargs: Any) -> dict[str, Any]:
        """DisconnectCustomKeyStore: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DisconnectCustomKeyStore", kwargs)

    def update_custom_key_store(self, **kwargs: Any) -> dict[str, Any]:
        """UpdateCustomKeyStore: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("UpdateCustomKeyStore", kwargs)

    def generate_random(self, **kwargs: Any) -> dict[str, Any]:
        """GenerateRandom: see the service's API reference; parameters and response as boto3's."""
        return self._call("GenerateRandom", kwargs)

    def get_key_last_usage(self, **kwargs: Any) -> dict[str, Any]:
        """GetKeyLastUsage: see the service's API reference; parameters and response as boto3's."""
        return self._call("GetKeyLastUsage", kwargs)

    def get_key_policy(self, **kwargs: Any) -> dict[str, Any]:
        """GetKeyPolicy: see the service's API reference; parameters and response as boto3's."""
        return self._call("GetKeyPolicy", kwargs)

    def get_key_rotation_status(self, **kwargs: Any) -> dict[str, Any]:
        """GetKeyRotationStatus: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("GetKeyRotationStatus", kwargs)

    def get_public_key(self, **kwargs: Any) -> dict[str, Any]:
        """GetPublicKey: see the service's API reference; parameters and response as boto3's."""
        return self._call("GetPublicKey", kwargs)

    def list_aliases(self, **kwargs: Any) -> dict[str, Any]:
        """ListAliases: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListAliases", kwargs)

    def list_grants(self, **kwargs: Any) -> dict[str, Any]:
        """ListGrants: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListGrants", kwargs)

    def list_key_policies(self, **kwargs: Any) -> dict[str, Any]:
        """ListKeyPolicies: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListKeyPolicies", kwargs)

    def get_parameters_for_import(self, **kwargs: Any) -> dict[str, Any]:
        """GetParametersForImport: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("GetParametersForImport", kwargs)

    def import_key_material(self, **kwargs: Any) -> dict[str, Any]:
        """ImportKeyMaterial: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("ImportKeyMaterial", kwargs)

    def delete_imported_key_material(self, **kwargs: Any) -> dict[str, Any]:
        """DeleteImportedKeyMaterial: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("DeleteImportedKeyMaterial", kwargs)

    def replicate_key(self, **kwargs: Any) -> dict[str, Any]:
        """ReplicateKey: a replica of a multi-Region primary key in another Region, whose store the
        engine was given (`Engine(region_stores=...)`); parameters and response as boto3's."""
        return self._call("ReplicateKey", kwargs)

    def update_primary_region(self, **kwargs: Any) -> dict[str, Any]:
        """UpdatePrimaryRegion: the replica in PrimaryRegion becomes the primary key; parameters
        and response as boto3's."""
        return self._call("UpdatePrimaryRegion", kwargs)

    def list_key_rotations(self, **kwargs: Any) -> dict[str, Any]:
        """ListKeyRotations: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListKeyRotations", kwargs)

    def list_keys(self, **kwargs: Any) -> dict[str, Any]:
        """ListKeys: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListKeys", kwargs)

    def list_resource_tags(self, **kwargs: Any) -> dict[str, Any]:
        """ListResourceTags: see the service's API reference; parameters and response as boto3's."""
        return self._call("ListResourceTags", kwargs)

    def list_retirable_grants(self, **kwargs: Any) -> dict[str, Any]:
        """ListRetirableGrants: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("ListRetirableGrants", kwargs)

    def put_key_policy(self, **kwargs: Any) -> dict[str, Any]:
        """PutKeyPolicy: see the service's API reference; parameters and response as boto3's."""
        return self._call("PutKeyPolicy", kwargs)

    def re_encrypt(self, **kwargs: Any) -> dict[str, Any]:
        """ReEncrypt: see the service's API reference; parameters and response as boto3's."""
        return self._call("ReEncrypt", kwargs)

    def retire_grant(self, **kwargs: Any) -> dict[str, Any]:
        """RetireGrant: see the service's API reference; parameters and response as boto3's."""
        return self._call("RetireGrant", kwargs)

    def revoke_grant(self, **kwargs: Any) -> dict[str, Any]:
        """RevokeGrant: see the service's API reference; parameters and response as boto3's."""
        return self._call("RevokeGrant", kwargs)

    def rotate_key_on_demand(self, **kwargs: Any) -> dict[str, Any]:
        """RotateKeyOnDemand: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("RotateKeyOnDemand", kwargs)

    def schedule_key_deletion(self, **kwargs: Any) -> dict[str, Any]:
        """ScheduleKeyDeletion: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("ScheduleKeyDeletion", kwargs)

    def sign(self, **kwargs: Any) -> dict[str, Any]:
        """Sign: see the service's API reference; parameters and response as boto3's."""
        return self._call("Sign", kwargs)

    def tag_resource(self, **kwargs: Any) -> dict[str, Any]:
        """TagResource: see the service's API reference; parameters and response as boto3's."""
        return self._call("TagResource", kwargs)

    def untag_resource(self, **kwargs: Any) -> dict[str, Any]:
        """UntagResource: see the service's API reference; parameters and response as boto3's."""
        return self._call("UntagResource", kwargs)

    def update_alias(self, **kwargs: Any) -> dict[str, Any]:
        """UpdateAlias: see the service's API reference; parameters and response as boto3's."""
        return self._call("UpdateAlias", kwargs)

    def update_key_description(self, **kwargs: Any) -> dict[str, Any]:
        """UpdateKeyDescription: see the service's API reference; parameters and response as
        boto3's."""
        return self._call("UpdateKeyDescription", kwargs)

    def verify(self, **kwargs: Any) -> dict[str, Any]:
        """Verify: see the service's API reference; parameters and response as boto3's."""
        return self._call("Verify", kwargs)

    def verify_mac(self, **kwargs: Any) -> dict[str, Any]:
        """VerifyMac: see the service's API reference; parameters and response as boto3's."""
        return self._call("VerifyMac", kwargs)


METHOD_NAMES: dict[str, str] = {operation: method for method, operation in METHODS.items()}


def _account_id(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate:
            return candidate
    return os.environ.get("KEYPLANE_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID


def _check_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")


def client(
    service_name: str = "kms",
    region_name: str | None = None,
    api_version: str | None = None,
    use_ssl: bool = True,
    verify: None | bool | str = None,
    endpoint_url: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    config: Any = None,
    aws_account_id: str | None = None,
    *,
    account_id: str | None = None,
    principal: str | None = None,
    engine: Engine | _keyplane.Engine | None = None,
    secret_bytes: bool = False,
    home: str | None = None,
    store: str | None = None,
) -> KMSClient:
    """A boto3-compatible KMS client: `keyplane.client("kms", region_name="eu-west-1")`.

    Takes boto3's arguments. The region is `region_name`, else `AWS_REGION`/`AWS_DEFAULT_REGION`,
    else `us-east-1`; the account is `account_id` (or boto3's `aws_account_id`), else
    `KEYPLANE_ACCOUNT_ID`, else 111122223333. Keys live in the durable store `store` (an address,
    `sqlite:PATH`), else `home` (a data directory, as the CLI's `--data-dir`), else
    `KEYPLANE_STORE`, else `KEYPLANE_HOME` (created if missing, root key `root.key` in it, every
    request in its audit log); only with none of them (or `store="memory:"`) is the engine in
    memory. Without `engine`, clients of the same region, account and store share one engine in
    the process. `engine` (a `keyplane.Engine` or its native
    handle) gives the client that engine; `principal` (an IAM principal ARN) makes the client call
    as that principal, against key policies and grants. With `secret_bytes=True`, plaintext data
    keys, private keys, decrypted plaintexts and shared secrets come back as `SecretBytes`, which
    zero their memory when closed or collected, instead of `bytes`.
    """
    if service_name != "kms":
        raise ValueError(f"keyplane provides the 'kms' service only, not '{service_name}'")
    if api_version is not None and api_version != "2014-11-01":
        raise ValueError(f"KMS's API version is 2014-11-01, not {api_version}")
    for name, value in (
        ("region_name", region_name),
        ("endpoint_url", endpoint_url),
        ("aws_access_key_id", aws_access_key_id),
        ("aws_secret_access_key", aws_secret_access_key),
        ("aws_session_token", aws_session_token),
        ("aws_account_id", aws_account_id),
        ("account_id", account_id),
        ("principal", principal),
        ("home", home),
        ("store", store),
    ):
        _check_str(name, value)
    del use_ssl, verify
    native: _keyplane.Engine
    if engine is None:
        region = (
            region_name
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        native = default_engine(
            region, _account_id(account_id, aws_account_id), store=store, home=home
        )
    else:
        if store is not None or home is not None:
            raise ValueError("give engine= or store=/home=, not both")
        native = engine if isinstance(engine, _keyplane.Engine) else engine.native
        region = region_name or native.region
        if region != native.region:
            raise ValueError(
                f"region_name '{region}' differs from the engine's region '{native.region}'"
            )
        wanted = account_id or aws_account_id
        if wanted and wanted != native.account_id:
            raise ValueError(
                f"account '{wanted}' differs from the engine's account '{native.account_id}'"
            )
    if principal is not None:
        native = native.for_principal(principal)
    return KMSClient(
        native,
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        secret_bytes=secret_bytes,
    )
