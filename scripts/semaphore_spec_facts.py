#!/usr/bin/env python3
"""Extract the facts ralf's tests need from Semaphore's API spec into data kept in this repository.

    python scripts/semaphore_spec_facts.py [SPEC] [--out FILE] [--check]

SPEC defaults to ../shared/semaphore/api-docs.yml (Swagger 2.0, the server's own spec); FILE to
tests/semaphore/semaphore-api-facts.json. The facts are every endpoint with its methods and request body
schema, and the definitions those schemas use, reduced to what validating a request body needs (type,
properties, items, $ref, enum, minimum, allOf, x-nullable). With --check nothing is written: exit 1 when
FILE differs from what SPEC gives (CI runs this whenever the spec is there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO.parent / "shared" / "semaphore" / "api-docs.yml"
DEFAULT_OUT = REPO / "tests" / "semaphore" / "semaphore-api-facts.json"
SCHEMA_KEYS = ("type", "properties", "items", "$ref", "enum", "minimum", "allOf", "x-nullable")
METHODS = ("get", "post", "put", "patch", "delete")


def reduce_schema(schema: object) -> object:
    """A schema with only the keys body validation reads, recursively."""
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key in SCHEMA_KEYS:
        if key not in schema:
            continue
        value = schema[key]
        if key == "properties":
            value = {name: reduce_schema(sub) for name, sub in value.items()}
        elif key == "items":
            value = reduce_schema(value)
        elif key == "allOf":
            value = [reduce_schema(part) for part in value]
        out[key] = value
    return out


def facts(spec: dict) -> dict:
    """Endpoints (path → method → body schema or null) and the definitions, from a Swagger 2.0 spec."""
    paths: dict = {}
    for template, ops in spec.get("paths", {}).items():
        for method in METHODS:
            op = ops.get(method) if isinstance(ops, dict) else None
            if op is None:
                continue
            body = next((p["schema"] for p in op.get("parameters", []) if p.get("in") == "body"), None)
            paths.setdefault(template, {})[method] = {"body": reduce_schema(body) if body is not None else None}
    return {
        "source": "api-docs.yml",
        "version": str(spec.get("info", {}).get("version", "")),
        "base_path": spec.get("basePath", ""),
        "paths": paths,
        "definitions": {name: reduce_schema(d) for name, d in spec.get("definitions", {}).items()},
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when they differ")
    args = ap.parse_args(argv)
    try:
        spec = yaml.safe_load(args.spec.read_text(encoding="utf-8"))
    except OSError as e:
        print(f"{args.spec}: cannot read ({e.strerror or e})", file=sys.stderr)
        return 2
    except yaml.YAMLError as e:
        print(f"{args.spec}: not YAML ({e})", file=sys.stderr)
        return 2
    text = render(facts(spec))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date with {args.spec}: run python scripts/semaphore_spec_facts.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out} matches {args.spec}")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes) from {args.spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
