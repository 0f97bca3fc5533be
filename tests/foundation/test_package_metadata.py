"""The version is written once (pyproject.toml) and the package declares its types (py.typed)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import ralf

REPO = Path(__file__).resolve().parents[2]


def test_the_version_is_pyprojects_everywhere(run_cli):
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert ralf.__version__ == importlib.metadata.version("ralf") == declared
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"ralf, version {declared}"
    written = [p for p in (REPO / "src").rglob("*.py") if declared in p.read_text(encoding="utf-8")]
    assert written == []  # nowhere in the code: a release changes one line


def test_py_typed_is_shipped_as_declared():
    assert (Path(ralf.__file__).parent / "py.typed").is_file()
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["ralf"]
