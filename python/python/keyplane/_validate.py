"""Client-side parameter validation, as botocore does it before sending a request.

Checks unknown and missing parameters, types and minimums against the service's model, and
reports every problem at once in a `ParamValidationError` with botocore's wording. Blobs may be
`bytes`, `bytearray`, `memoryview`, `str` (encoded as UTF-8, as botocore does) or a file-like object
(read whole); the validated parameters come back with `str` and file-like blobs turned into bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._model import SHAPES
from .exceptions import ParamValidationError

_TYPES = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "list": (list, tuple),
    "map": (dict,),
    "structure": (dict,),
}
_VALID_TYPES = {
    "string": [str(str)],
    "integer": [str(int)],
    "boolean": [str(bool)],
    "list": [str(list), str(tuple)],
    "map": [str(dict)],
    "structure": [str(dict)],
    "blob": [str(bytes), str(bytearray), str(memoryview), "file-like object"],
    "timestamp": [str(datetime), "timestamp string"],
}


class _Report:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, message: str) -> None:
        self.errors.append(message)


def _invalid_type(report: _Report, name: str, value: Any, kind: str) -> None:
    report.add(
        f"Invalid type for parameter {name}, value: {value!r}, type: {type(value)}, "
        f"valid types: {', '.join(_VALID_TYPES[kind])}"
    )


def _check(value: Any, shape_name: str, name: str, report: _Report) -> Any:
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "blob":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if hasattr(value, "read"):
            data = value.read()
            return data.encode("utf-8") if isinstance(data, str) else data
        _invalid_type(report, name, value, kind)
        return value
    if kind == "timestamp":
        # As botocore: a datetime, epoch seconds, or an ISO 8601 string (naive times are UTC).
        if isinstance(value, datetime):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
        _invalid_type(report, name, value, kind)
        return value
    if kind == "integer" and isinstance(value, bool):
        _invalid_type(report, name, value, kind)
        return value
    if not isinstance(value, _TYPES[kind]):
        _invalid_type(report, name, value, kind)
        return value
    return _check_contents(value, shape, shape_name, name, report)


def _check_contents(
    value: Any, shape: dict[str, Any], shape_name: str, name: str, report: _Report
) -> Any:
    kind = shape["type"]
    minimum = shape.get("min")
    if kind == "string" and minimum is not None and len(value) < minimum:
        report.add(
            f"Invalid length for parameter {name}, value: {len(value)}, valid min length: {minimum}"
        )
    elif kind == "integer" and minimum is not None and value < minimum:
        report.add(
            f"Invalid value for parameter {name}, value: {value}, valid min value: {minimum}"
        )
    elif kind == "list":
        if minimum is not None and len(value) < minimum:
            report.add(
                f"Invalid length for parameter {name}, value: {len(value)}, "
                f"valid min length: {minimum}"
            )
        return [
            _check(item, shape["member"], f"{name}[{i}]", report) for i, item in enumerate(value)
        ]
    elif kind == "map":
        return {
            _check(k, shape["key"], name, report): _check(v, shape["value"], f"{name}.{k}", report)
            for k, v in value.items()
        }
    elif kind == "structure":
        return _check_structure(value, shape_name, name, report)
    return value


def _check_structure(
    params: Mapping[str, Any], shape_name: str, name: str, report: _Report
) -> dict[str, Any]:
    shape = SHAPES[shape_name]
    members: dict[str, str] = shape["members"]
    for required in shape.get("required", []):
        if required not in params:
            report.add(f'Missing required parameter in {name}: "{required}"')
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in members:
            report.add(
                f'Unknown parameter in {name}: "{key}", must be one of: {", ".join(members)}'
            )
            continue
        out[key] = _check(value, members[key], f"{name}.{key}" if name != "input" else key, report)
    return out


def validate(input_shape: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validates `params` against `input_shape`; returns them with blobs as bytes."""
    report = _Report()
    checked = _check_structure(params, input_shape, "input", report)
    if report.errors:
        raise ParamValidationError(report="\n".join(report.errors))
    return checked
