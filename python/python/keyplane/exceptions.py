"""Exceptions: botocore-compatible client errors, one class per error code.

Every error the engine reports is raised as an instance of the class named by its code
(`NotFoundException`, `DisabledException`, `KMSInvalidStateException`, ...), a subclass of
`KeyplaneError`, which subclasses `ClientError`. When botocore is installed, `ClientError` *is*
`botocore.exceptions.ClientError`, so existing `except ClientError` clauses catch keyplane's errors;
otherwise it is a class of the same shape defined here. Each error carries botocore's attributes:
`.response['Error']['Code']`, `.response['Error']['Message']`, `.response['ResponseMetadata']` and
`.operation_name`.

Client-side parameter errors raise `ParamValidationError` (botocore's when installed).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

__all__ = [
    "HAVE_BOTOCORE",
    "ClientError",
    "ParamValidationError",
    "OperationNotPageableError",
    "PaginationError",
    "KeyplaneError",
]


class _ClientError(Exception):
    """botocore.exceptions.ClientError's shape, for when botocore is not installed."""

    MSG_TEMPLATE = (
        "An error occurred ({error_code}) when calling the {operation_name} "
        "operation{retry_info}: {error_message}"
    )

    def __init__(self, error_response: dict[str, Any], operation_name: str) -> None:
        retry_info = self._get_retry_info(error_response)
        error = error_response.get("Error", {})
        msg = self.MSG_TEMPLATE.format(
            error_code=error.get("Code", "Unknown"),
            error_message=error.get("Message", "Unknown"),
            operation_name=operation_name,
            retry_info=retry_info,
        )
        super().__init__(msg)
        self.response = error_response
        self.operation_name = operation_name

    def _get_retry_info(self, response: dict[str, Any]) -> str:
        retry_info = ""
        if "ResponseMetadata" in response:
            metadata = response["ResponseMetadata"]
            if metadata.get("MaxAttemptsReached", False) and "RetryAttempts" in metadata:
                retry_info = f" (reached max retries: {metadata['RetryAttempts']})"
        return retry_info

    def __reduce__(self) -> Any:
        return _ClientError, (self.response, self.operation_name)


class _BotoCoreError(Exception):
    """botocore.exceptions.BotoCoreError's shape: a message template filled from keywords."""

    fmt = "An unspecified error occurred"

    def __init__(self, **kwargs: Any) -> None:
        msg = self.fmt.format(**kwargs)
        Exception.__init__(self, msg)
        self.kwargs = kwargs


class _ParamValidationError(_BotoCoreError):
    fmt = "Parameter validation failed:\n{report}"


class _OperationNotPageableError(_BotoCoreError):
    fmt = "Operation cannot be paginated: {operation_name}"


class _PaginationError(_BotoCoreError):
    fmt = "Error during pagination: {message}"


if TYPE_CHECKING:
    HAVE_BOTOCORE: bool
    ClientError = _ClientError
    ParamValidationError = _ParamValidationError
    OperationNotPageableError = _OperationNotPageableError
    PaginationError = _PaginationError
else:
    try:
        from botocore.exceptions import (
            ClientError,
            OperationNotPageableError,
            PaginationError,
            ParamValidationError,
        )

        HAVE_BOTOCORE = True
    except ImportError:
        HAVE_BOTOCORE = False
        ClientError = _ClientError
        ParamValidationError = _ParamValidationError
        OperationNotPageableError = _OperationNotPageableError
        PaginationError = _PaginationError
    for _cls in (ClientError, ParamValidationError, OperationNotPageableError, PaginationError):
        if _cls.__module__ == __name__:
            _cls.__name__ = _cls.__qualname__ = _cls.__name__.lstrip("_")

# The HTTP status the service answers each error with (400 unless listed).
_HTTP_STATUS = {
    "KMSInternalException": 500,
    "KeyUnavailableException": 500,
    "DependencyTimeoutException": 503,
}


def _response_metadata(status: int = 200) -> dict[str, Any]:
    """ResponseMetadata as botocore shapes it (no HTTP exchange takes place)."""
    request_id = str(uuid.uuid4())
    return {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": {
            "x-amzn-requestid": request_id,
            "content-type": "application/x-amz-json-1.1",
        },
        "RetryAttempts": 0,
    }


class KeyplaneError(ClientError):
    """Base of every engine error keyplane raises or returns (one subclass per error code)."""

    code = "Unknown"

    def __init__(self, error_response: dict[str, Any], operation_name: str) -> None:
        super().__init__(error_response, operation_name)

    @property
    def message(self) -> str:
        """The error's message, without the code and operation."""
        message: str = self.response.get("Error", {}).get("Message", "")
        return message

    def _set_operation(self, operation_name: str) -> None:
        """Names the operation that failed (and rebuilds the message, as botocore words it)."""
        if self.operation_name == operation_name:
            return
        self.operation_name = operation_name
        error = self.response.get("Error", {})
        self.args = (
            ClientError.MSG_TEMPLATE.format(
                error_code=error.get("Code", "Unknown"),
                error_message=error.get("Message", "Unknown"),
                operation_name=operation_name,
                retry_info="",
            ),
        )

    def __reduce__(self) -> Any:
        return type(self), (self.response, self.operation_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class AccessDeniedException(KeyplaneError):
    code = "AccessDeniedException"


class AlreadyExistsException(KeyplaneError):
    code = "AlreadyExistsException"


class CloudHsmClusterInUseException(KeyplaneError):
    code = "CloudHsmClusterInUseException"


class CloudHsmClusterInvalidConfigurationException(KeyplaneError):
    code = "CloudHsmClusterInvalidConfigurationException"


class CloudHsmClusterNotActiveException(KeyplaneError):
    code = "CloudHsmClusterNotActiveException"


class CloudHsmClusterNotFoundException(KeyplaneError):
    code = "CloudHsmClusterNotFoundException"


class CloudHsmClusterNotRelatedException(KeyplaneError):
    code = "CloudHsmClusterNotRelatedException"


class ConflictException(KeyplaneError):
    code = "ConflictException"


class CustomKeyStoreHasCMKsException(KeyplaneError):
    code = "CustomKeyStoreHasCMKsException"


class CustomKeyStoreInvalidStateException(KeyplaneError):
    code = "CustomKeyStoreInvalidStateException"


class CustomKeyStoreNameInUseException(KeyplaneError):
    code = "CustomKeyStoreNameInUseException"


class CustomKeyStoreNotFoundException(KeyplaneError):
    code = "CustomKeyStoreNotFoundException"


class DependencyTimeoutException(KeyplaneError):
    code = "DependencyTimeoutException"


class DisabledException(KeyplaneError):
    code = "DisabledException"


class DryRunOperationException(KeyplaneError):
    code = "DryRunOperationException"


class ExpiredImportTokenException(KeyplaneError):
    code = "ExpiredImportTokenException"


class IncorrectKeyException(KeyplaneError):
    code = "IncorrectKeyException"


class IncorrectKeyMaterialException(KeyplaneError):
    code = "IncorrectKeyMaterialException"


class IncorrectTrustAnchorException(KeyplaneError):
    code = "IncorrectTrustAnchorException"


class InvalidAliasNameException(KeyplaneError):
    code = "InvalidAliasNameException"


class InvalidArnException(KeyplaneError):
    code = "InvalidArnException"


class InvalidCiphertextException(KeyplaneError):
    code = "InvalidCiphertextException"


class InvalidGrantIdException(KeyplaneError):
    code = "InvalidGrantIdException"


class InvalidGrantTokenException(KeyplaneError):
    code = "InvalidGrantTokenException"


class InvalidImportTokenException(KeyplaneError):
    code = "InvalidImportTokenException"


class InvalidKeyUsageException(KeyplaneError):
    code = "InvalidKeyUsageException"


class InvalidMarkerException(KeyplaneError):
    code = "InvalidMarkerException"


class KMSInternalException(KeyplaneError):
    code = "KMSInternalException"


class KMSInvalidMacException(KeyplaneError):
    code = "KMSInvalidMacException"


class KMSInvalidSignatureException(KeyplaneError):
    code = "KMSInvalidSignatureException"


class KMSInvalidStateException(KeyplaneError):
    code = "KMSInvalidStateException"


class KeyUnavailableException(KeyplaneError):
    code = "KeyUnavailableException"


class LimitExceededException(KeyplaneError):
    code = "LimitExceededException"


class MalformedPolicyDocumentException(KeyplaneError):
    code = "MalformedPolicyDocumentException"


class NotAuthorizedException(KeyplaneError):
    # Not in the service model's error shapes, but what the service answers for an
    # `alias/aws/` alias name.
    code = "NotAuthorizedException"


class NotFoundException(KeyplaneError):
    code = "NotFoundException"


class TagException(KeyplaneError):
    code = "TagException"


class ThrottlingException(KeyplaneError):
    code = "ThrottlingException"


class UnsupportedOperationException(KeyplaneError):
    code = "UnsupportedOperationException"


class ValidationException(KeyplaneError):
    code = "ValidationException"


class XksKeyAlreadyInUseException(KeyplaneError):
    code = "XksKeyAlreadyInUseException"


class XksKeyInvalidConfigurationException(KeyplaneError):
    code = "XksKeyInvalidConfigurationException"


class XksKeyNotFoundException(KeyplaneError):
    code = "XksKeyNotFoundException"


class XksProxyIncorrectAuthenticationCredentialException(KeyplaneError):
    code = "XksProxyIncorrectAuthenticationCredentialException"


class XksProxyInvalidConfigurationException(KeyplaneError):
    code = "XksProxyInvalidConfigurationException"


class XksProxyInvalidResponseException(KeyplaneError):
    code = "XksProxyInvalidResponseException"


class XksProxyUriEndpointInUseException(KeyplaneError):
    code = "XksProxyUriEndpointInUseException"


class XksProxyUriInUseException(KeyplaneError):
    code = "XksProxyUriInUseException"


class XksProxyUriUnreachableException(KeyplaneError):
    code = "XksProxyUriUnreachableException"


class XksProxyVpcEndpointServiceInUseException(KeyplaneError):
    code = "XksProxyVpcEndpointServiceInUseException"


class XksProxyVpcEndpointServiceInvalidConfigurationException(KeyplaneError):
    code = "XksProxyVpcEndpointServiceInvalidConfigurationException"


class XksProxyVpcEndpointServiceNotFoundException(KeyplaneError):
    code = "XksProxyVpcEndpointServiceNotFoundException"


_BY_CODE: dict[str, type[KeyplaneError]] = {
    cls.code: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, KeyplaneError) and cls is not KeyplaneError
}

#: Every error class, by code.
ERROR_CLASSES: dict[str, type[KeyplaneError]] = dict(sorted(_BY_CODE.items()))


def from_code(code: str) -> type[KeyplaneError]:
    """The class for an error code (`KeyplaneError` for a code the service does not model)."""
    return _BY_CODE.get(code, KeyplaneError)


def _engine_error(code: str, message: str, operation_name: str | None = None) -> KeyplaneError:
    """Builds the exception for an engine error (called by the native module)."""
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": _response_metadata(_HTTP_STATUS.get(code, 400)),
    }
    cls = _BY_CODE.get(code)
    if cls is None:
        # A code the service does not model: still a KeyplaneError, with the code it reported.
        cls = type(code, (KeyplaneError,), {"code": code, "__module__": __name__})
        _BY_CODE[code] = cls
    return cls(response, operation_name or "keyplane")


__all__ += list(ERROR_CLASSES)
