"""The one path from ralf's result objects to JSON: :func:`to_data`, and :class:`Record` for dataclasses.

A :class:`Record` dataclass serialises its fields in order, recursively: nested records, enums (their
string), paths (their text), tuples and sets (lists). A class shapes its JSON declaratively:

- ``json_fields``: the names to emit, in order — fields, properties and methods without arguments alike;
  ``"key=attribute"`` emits an attribute under another key. Default: every field.
- ``json_omit_empty``: names left out when their value is None or empty.
- ``json_shape(self, data)``: a hook for what no declaration says (a field that only one kind carries).

``--json`` output, the journal's stored plan and triage, and ``summary.json`` of a stack run all go
through here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any, ClassVar


def to_data(obj: Any) -> Any:
    """JSON-ready data (dicts, lists, strings, numbers, booleans, None) for ``obj``."""
    if obj is None or isinstance(obj, (bool, int, float)) and not isinstance(obj, Enum):
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Record):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_data(v) for v in obj]
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_data(to_dict())
    return str(obj)


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """``obj`` as JSON text (UTF-8 characters kept as they are)."""
    return json.dumps(to_data(obj), indent=indent, ensure_ascii=False)


class Record:
    """Mixin for dataclasses: ``to_dict()`` from the class's declarations (see the module's docstring)."""

    json_fields: ClassVar[tuple[str, ...]] = ()
    json_omit_empty: ClassVar[tuple[str, ...]] = ()

    def json_shape(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def to_dict(self) -> dict[str, Any]:
        names = self.json_fields or tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]
        data: dict[str, Any] = {}
        for name in names:
            key, _, attr = name.partition("=")
            value = getattr(self, attr or key)
            value = to_data(value() if callable(value) and not isinstance(value, type) else value)
            if key in self.json_omit_empty and value in (None, "", [], {}):
                continue
            data[key] = value
        return self.json_shape(data)


__all__ = ["Record", "dumps", "to_data"]
