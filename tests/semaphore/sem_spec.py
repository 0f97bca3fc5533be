"""A small Swagger 2.0 body validator for the Semaphore API spec.

The spec's facts (endpoints, methods, body schemas, definitions) are data in this directory,
``semaphore-api-facts.json``, generated from ``../shared/semaphore/api-docs.yml`` by
``scripts/semaphore_spec_facts.py``; no test needs a file outside the repository.

Only what request bodies need: ``type``, ``properties``, ``items``, ``$ref``, ``enum``, ``minimum``,
``allOf``; ``null`` is accepted only where the spec says ``x-nullable: true``. Unknown properties are
reported too: a field the spec does not name is a field the server may silently drop.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FACTS_PATH = Path(__file__).resolve().parent / "semaphore-api-facts.json"

TYPES = {"integer": int, "boolean": bool, "string": str, "array": list, "object": dict, "number": (int, float)}


def load_spec() -> dict:
    return json.loads(FACTS_PATH.read_text(encoding="utf-8"))


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["definitions"][name]
    return schema


def validate(spec: dict, schema: dict, value, where: str = "body") -> list[str]:
    schema = _resolve(spec, schema)
    problems: list[str] = []
    if "allOf" in schema:
        merged: dict = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(_resolve(spec, part).get("properties", {}))
        schema = merged
    if value is None:
        if not schema.get("x-nullable"):
            problems.append(f"{where}: null where the spec has no x-nullable")
        return problems
    typ = schema.get("type")
    if typ:
        py = TYPES[typ]
        if (isinstance(value, bool) and typ in ("integer", "number")) or not isinstance(value, py):
            return [f"{where}: expected {typ}, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        problems.append(f"{where}: {value} below minimum {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k, v in value.items():
            if k not in props:
                problems.append(f"{where}.{k}: not in the spec")
            else:
                problems += validate(spec, props[k], v, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            problems += validate(spec, schema["items"], v, f"{where}[{i}]")
    return problems


def body_schema(spec: dict, method: str, path: str) -> dict | None:
    """The body schema the spec gives for ``method path`` (path as sent, with /api and real ids)."""
    rel = path[len("/api"):] if path.startswith("/api") else path
    for template, ops in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template.rstrip("/"))) + "/?$"
        if re.match(pattern, rel):
            op = ops.get(method.lower())
            if op is None:
                continue
            return op["body"] if op["body"] is not None else {}
    return None
