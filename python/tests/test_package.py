"""The package itself: the generated model matches the service's model vendored in the repository
(engine/model/, the engine's validation table is generated from the same file), the stubs match the
native module, and the typed package checks."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

import keyplane
from keyplane import _model

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = HERE.parent.parent / "engine" / "model"


def test_generated_model_matches_the_reference() -> None:
    sys.path.insert(0, str(HERE.parent / "tools"))
    try:
        import generate_model
    finally:
        sys.path.pop(0)
    service = json.loads((REFERENCE / "kms-service-2.json").read_text())
    paginators = json.loads((REFERENCE / "kms-paginators-1.json").read_text())
    committed = _model.MODEL_FILE.read_text(encoding="utf-8")
    assert generate_model.generate(service, paginators) == committed


def test_model_covers_the_client() -> None:
    assert len(_model.OPERATIONS) == 54
    for operation, spec in _model.OPERATIONS.items():
        assert spec["output"] in _model.SHAPES or spec["output"] is None
        assert spec["input"] in _model.SHAPES, operation


def test_py_typed_ships() -> None:
    assert (pathlib.Path(keyplane.__file__).parent / "py.typed").exists()
    assert (pathlib.Path(keyplane.__file__).parent / "_keyplane.pyi").exists()


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_stubs_match_the_native_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "keyplane._keyplane"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
