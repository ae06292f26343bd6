#!/usr/bin/env python3
"""Generates keyplane/_model.json from the service's API model and paginator definitions.

    python tools/generate_model.py ../engine/model/kms-service-2.json \
        ../engine/model/kms-paginators-1.json > python/keyplane/_model.json

(run in python/; engine/model/ holds the service's model, vendored: the engine's validation table
is generated from the same file.)

The output holds, for the operations keyplane supports, their input and output shapes (members,
required members, types, enumerations, minimums and maximums; no documentation), their modelled
errors, and their paginators: the package's only model file at run time, read by keyplane/_model.py
(data, as botocore ships its models). The tests check that the committed file matches the vendored
model on every run.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from typing import Any

# The operations keyplane implements, in order: the list the engine's validation table is generated
# from too.
MODEL_DIR = pathlib.Path(__file__).resolve().parents[2] / "engine" / "model"
SUPPORTED = [
    line
    for line in (MODEL_DIR / "supported-operations.txt").read_text().splitlines()
    if line and not line.startswith("#")
]

KEEP = ("type", "required", "min", "max", "enum", "sensitive")


def xform_name(name: str) -> str:
    """botocore's spelling of an operation as a method name (CreateKey -> create_key)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def generate(service: dict[str, Any], paginators: dict[str, Any]) -> str:
    shapes = service["shapes"]
    used: dict[str, dict[str, Any]] = {}

    def visit(name: str) -> None:
        if name in used:
            return
        shape = shapes[name]
        compact: dict[str, Any] = {k: shape[k] for k in KEEP if k in shape}
        used[name] = compact
        if shape["type"] == "structure":
            compact["members"] = {m: spec["shape"] for m, spec in shape["members"].items()}
            for member in compact["members"].values():
                visit(member)
        elif shape["type"] == "list":
            compact["member"] = shape["member"]["shape"]
            visit(compact["member"])
        elif shape["type"] == "map":
            compact["key"] = shape["key"]["shape"]
            compact["value"] = shape["value"]["shape"]
            visit(compact["key"])
            visit(compact["value"])

    operations: dict[str, Any] = {}
    for name in SUPPORTED:
        op = service["operations"][name]
        entry: dict[str, Any] = {
            "input": op["input"]["shape"] if "input" in op else None,
            "output": op["output"]["shape"] if "output" in op else None,
            "errors": [e["shape"] for e in op.get("errors", [])],
        }
        for io in ("input", "output"):
            if entry[io]:
                visit(entry[io])
        operations[name] = entry

    errors = sorted(n for n, s in shapes.items() if s.get("exception"))
    pages = {n: p for n, p in sorted(paginators["pagination"].items()) if n in operations}
    methods = {xform_name(n): n for n in SUPPORTED}

    model = {
        "api_version": service["metadata"]["apiVersion"],
        "methods": methods,
        "operations": operations,
        "shapes": dict(sorted(used.items())),
        "paginators": pages,
        "error_codes": errors,
    }
    return json.dumps(model, indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    with open(sys.argv[1]) as f:
        service = json.load(f)
    with open(sys.argv[2]) as f:
        paginators = json.load(f)
    sys.stdout.write(generate(service, paginators))


if __name__ == "__main__":
    main()
