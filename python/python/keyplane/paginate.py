"""Paginators, as botocore's: `client.get_paginator("list_keys").paginate(...)` iterates over
pages (full responses); `PaginationConfig` takes `MaxItems`, `PageSize` and `StartingToken`;
`build_full_result()` merges the pages and adds `NextToken` when `MaxItems` stopped early.

Tokens are botocore's: base64 of a JSON object holding the service's `Marker` and, when a page was
cut short by `MaxItems`, `boto_truncate_amount`; a token from botocore works here and vice versa.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, Callable

from .exceptions import PaginationError

__all__ = ["Paginator", "PageIterator"]


def _encode_token(token: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(token).encode("utf-8")).decode("utf-8")


def _decode_token(token: str) -> dict[str, Any]:
    decoded = json.loads(base64.b64decode(token.encode("utf-8")).decode("utf-8"))
    if not isinstance(decoded, dict):
        raise ValueError(f"Bad starting token: {token}")
    return decoded


class PageIterator:
    """The pages of one paginated call."""

    def __init__(
        self,
        method: Callable[..., dict[str, Any]],
        input_token: str,
        output_token: str,
        more_results: str,
        result_key: str,
        limit_key: str,
        max_items: int | None,
        starting_token: str | None,
        page_size: int | None,
        op_kwargs: dict[str, Any],
    ) -> None:
        self._method = method
        self._input_token = [input_token]
        self._output_token = output_token
        self._more_results = more_results
        self._result_key = result_key
        self._limit_key = limit_key
        self._max_items = max_items
        self._starting_token = starting_token
        self._page_size = page_size
        self._op_kwargs = op_kwargs
        self._resume_token: str | None = None
        self._non_aggregate_part: dict[str, Any] = {}

    @property
    def result_keys(self) -> list[str]:
        return [self._result_key]

    @property
    def non_aggregate_part(self) -> dict[str, Any]:
        return self._non_aggregate_part

    @property
    def resume_token(self) -> str | None:
        """The token to continue from, when MaxItems stopped the pagination early."""
        return self._resume_token

    @resume_token.setter
    def resume_token(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise ValueError(f"Bad starting token: {value}")
        if "boto_truncate_amount" in value:
            token_keys = sorted(self._input_token + ["boto_truncate_amount"])
        else:
            token_keys = sorted(self._input_token)
        if sorted(value.keys()) != token_keys:
            raise ValueError(f"Bad starting token: {value}")
        self._resume_token = _encode_token(value)

    def _parse_starting_token(self) -> tuple[dict[str, Any], int]:
        assert self._starting_token is not None
        try:
            token = _decode_token(self._starting_token)
            index = int(token.pop("boto_truncate_amount", 0))
            return token, index
        except (ValueError, TypeError):
            # botocore's older form: the marker, optionally followed by ___<index>.
            parts = self._starting_token.split("___")
            index = 0
            if len(parts) == 2 and parts[1].isdigit():
                index = int(parts[1])
                parts = parts[:1]
            if len(parts) != 1:
                raise ValueError(f"Bad starting token: {self._starting_token}") from None
            return {self._input_token[0]: parts[0] or None}, index

    def _inject_token(self, kwargs: dict[str, Any], token: dict[str, Any]) -> None:
        for name, value in token.items():
            if value is not None and value != "None":
                kwargs[name] = value
            elif name in kwargs:
                del kwargs[name]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        kwargs = dict(self._op_kwargs)
        previous_next_token: dict[str, Any] | None = None
        next_token: dict[str, Any] = {key: None for key in self._input_token}
        starting_truncation = 0
        if self._starting_token is not None:
            next_token, starting_truncation = self._parse_starting_token()
            self._inject_token(kwargs, next_token)
        if self._page_size is not None:
            kwargs[self._limit_key] = self._page_size
        total_items = 0
        first_request = True
        while True:
            response = self._method(**kwargs)
            if first_request:
                if starting_truncation:
                    response[self._result_key] = response.get(self._result_key, [])[
                        starting_truncation:
                    ]
                first_request = False
            else:
                starting_truncation = 0
            current = response.get(self._result_key) or []
            truncate_amount = 0
            if self._max_items is not None:
                truncate_amount = total_items + len(current) - self._max_items
            if truncate_amount > 0:
                keep = len(current) - truncate_amount
                response[self._result_key] = current[:keep]
                next_token["boto_truncate_amount"] = keep + starting_truncation
                self.resume_token = next_token
                yield response
                break
            yield response
            total_items += len(current)
            next_token = self._next_token(response)
            if all(value is None for value in next_token.values()):
                break
            if self._max_items is not None and total_items == self._max_items:
                self.resume_token = next_token
                break
            if previous_next_token is not None and previous_next_token == next_token:
                raise PaginationError(
                    message=f"The same next token was received twice: {next_token}"
                )
            self._inject_token(kwargs, next_token)
            previous_next_token = next_token

    def _next_token(self, response: dict[str, Any]) -> dict[str, Any]:
        if not response.get(self._more_results):
            return {}
        marker = response.get(self._output_token)
        return {self._input_token[0]: marker or None}

    def build_full_result(self) -> dict[str, Any]:
        """Every page's results in one response (`NextToken` when MaxItems stopped early)."""
        complete: dict[str, Any] = {}
        for page in self:
            value = page.get(self._result_key)
            if value is None:
                continue
            if self._result_key in complete:
                complete[self._result_key].extend(value)
            else:
                complete[self._result_key] = list(value)
        complete.update(self._non_aggregate_part)
        if self.resume_token is not None:
            complete["NextToken"] = self.resume_token
        return complete

    def search(self, expression: str) -> Iterator[Any]:
        """Applies a JMESPath expression to every page (needs the `jmespath` package)."""
        import jmespath  # type: ignore[import-untyped, import-not-found, unused-ignore]

        compiled = jmespath.compile(expression)
        for page in self:
            results = compiled.search(page)
            if isinstance(results, list):
                yield from results
            else:
                yield results


class Paginator:
    """A paginator for one list operation of a client."""

    def __init__(
        self, method: Callable[..., dict[str, Any]], config: dict[str, str], operation_name: str
    ) -> None:
        self._method = method
        self._config = config
        self._operation_name = operation_name

    @property
    def result_keys(self) -> list[str]:
        return [self._config["result_key"]]

    def paginate(self, **kwargs: Any) -> PageIterator:
        """Iterates over the pages of the operation called with `kwargs`.

        `PaginationConfig` may hold `MaxItems` (most items in all), `PageSize` (items per call)
        and `StartingToken` (a `NextToken` from an earlier, truncated pagination).
        """
        config = kwargs.pop("PaginationConfig", None) or {}
        max_items = config.get("MaxItems")
        page_size = config.get("PageSize")
        return PageIterator(
            self._method,
            input_token=self._config["input_token"],
            output_token=self._config["output_token"],
            more_results=self._config["more_results"],
            result_key=self._config["result_key"],
            limit_key=self._config["limit_key"],
            max_items=int(max_items) if max_items is not None else None,
            starting_token=config.get("StartingToken"),
            page_size=int(page_size) if page_size is not None else None,
            op_kwargs=kwargs,
        )
