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

from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any, ClassVar

# json and dataclasses are imported where used: `ralf plan` imports this module and needs neither


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
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple: a record, not a list
        to_dict = getattr(obj, "to_dict", None)
        return to_data(to_dict()) if callable(to_dict) else {name: to_data(getattr(obj, name)) for name in obj._fields}
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        return {name: to_data(getattr(obj, name)) for name in _field_names(obj)}
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


def _field_names(obj: Any) -> tuple[str, ...]:
    """A dataclass's fields, or a NamedTuple's, in order."""
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return tuple(obj._fields)
    import dataclasses

    return tuple(f.name for f in dataclasses.fields(obj))


def record(obj: Any, fields: tuple[str, ...] = (), omit_empty: tuple[str, ...] = ()) -> dict[str, Any]:
    """``obj``'s JSON object: ``fields`` in order (default: all of its fields), as :class:`Record` explains.

    For records that cannot take the mixin (a NamedTuple): ``def to_dict(self): return serial.record(self)``.
    """
    data: dict[str, Any] = {}
    for name in fields or _field_names(obj):
        key, _, attr = name.partition("=")
        value = getattr(obj, attr or key)
        value = to_data(value() if callable(value) and not isinstance(value, type) else value)
        if key in omit_empty and value in (None, "", [], {}):
            continue
        data[key] = value
    return data


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """``obj`` as JSON text (UTF-8 characters kept as they are)."""
    import json

    return json.dumps(to_data(obj), indent=indent, ensure_ascii=False)


class Record:
    """Mixin for dataclasses: ``to_dict()`` from the class's declarations (see the module's docstring)."""

    json_fields: ClassVar[tuple[str, ...]] = ()
    json_omit_empty: ClassVar[tuple[str, ...]] = ()

    def json_shape(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def to_dict(self) -> dict[str, Any]:
        return self.json_shape(record(self, self.json_fields, self.json_omit_empty))


__all__ = ["Record", "dumps", "record", "to_data"]
