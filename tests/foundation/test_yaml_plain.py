"""The loader builds plain YAML (maps, lists, plain scalars) itself: the same values as PyYAML's constructor,
and everything else (aliases, merge keys, other tags, errors) from the constructor itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import ralf.loader as loader

PLAIN = [
    "a: 1\n",
    "s: text\nq: 'quoted: 1'\nd: \"2\"\nblock: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
    "ints: [0, -1, +2, 1_000, 0x1F, 0o17, 017, 0b101, 190:20:30, 12345678901234567890]\n",
    "floats: [1.5, -0.5, 1e3, 6.8523015e+5, 190:20:30.15, .inf, -.Inf, .nan, 1_0.5]\n",
    "bools: [yes, No, TRUE, false, on, OFF, y, n]\n",
    "nulls: [~, null, Null, NULL, '', \"\"]\nempty:\nalso: ~\n",
    "k: !!str 123\nn: !!int '42'\nf: !!float '1'\nb: !!bool 'yes'\nz: !!null 'x'\n",
    "1: int key\n1.5: float key\nfalse: bool key\n~: null key\n",
    "nested: {a: [1, {b: [c, {d: e}]}], f: []}\nlist:\n- - x\n  - y\n- {}\n",
    "a: &s text\nb: *s\n",  # an alias of a scalar: the same str either way
    "a: 1\nb: '1'\nc: 1\nd: \"1\"\ne: [1, '1', yes, 'yes', yes]\n",  # plain and quoted, again and again
    "",
    "# only a comment\n",
    "- top\n- level\n- list\n",
    "just a scalar\n",
]

NOT_PLAIN = [
    "base: &b {x: 1}\nother: *b\n",  # an alias: one shared object
    "when: 2024-01-02\nstamp: 2001-12-14t21:59:43.10-05:00\n",  # timestamps
    "data: !!binary aGVsbG8=\n",
    "s: !!set {a, b}\no: !!omap [a: 1, b: 2]\np: !!pairs [a: 1, a: 2]\n",
]

ERRORS = [
    "a: 1\na: 2\n",  # a duplicate key
    "1: x\ntrue: y\n",  # equal keys (True == 1)
    "[a]: 1\n",  # an unhashable key
    "? {a: 1}\n: 2\n",
    "a: !custom x\n",  # an unknown tag
    "a: !!map [1]\n",  # a tag that does not fit the node
    "a: !!str [1]\n",
    "&r {*r: 1}\n",  # recursion in a key
    "base: &b {x: 1, y: 2}\nthis:\n  <<: *b\n  y: 3\n",  # a merge key (the duplicate-key check refuses its tag)
    "= : x\n",  # the value tag
    "k: =\n",
    "a: !!int x\n",
    "a: !!float ''\n",
    "a: !!bool maybe\n",
    "a: 2024-13-45\n",
    "a: [1,\n",
    "--- a\n--- b\n",
]


class _Reference(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader with ralf's duplicate-key rule, and nothing else of ralf's (its resolver is PyYAML's)."""


_Reference.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, loader._construct_mapping)


def _constructor(text: str):
    """What PyYAML makes of ``text`` with ralf's duplicate-key rule, as the loader used it before it built plain
    documents itself: the C loader, and for a YAML error the pure one (its wording)."""
    try:
        return yaml.load(text, Loader=_Reference)  # noqa: S506 - safe loader subclasses
    except yaml.YAMLError:
        return yaml.load(text, Loader=loader._UniquePureLoader)  # noqa: S506


def _outcome(load, text: str):
    try:
        return "value", load(text)
    except Exception as e:  # noqa: BLE001 - the test compares whatever each side raises
        return "error", type(e), str(e)


def _typed(value):
    """A value with the type of every part spelled out: 1 == 1.0 == True, but not for this comparison."""
    if isinstance(value, dict):
        return {(type(k), k): _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, float) and value != value:
        return (float, "nan")
    return (type(value), value)


@pytest.mark.parametrize("text", PLAIN + NOT_PLAIN + ERRORS)
def test_each_document_loads_as_pyyaml_loads_it(text):
    fast, full = _outcome(loader._load_yaml, text), _outcome(_constructor, text)
    if fast[0] == "value" and full[0] == "value":
        assert _typed(fast[1]) == _typed(full[1])
    elif fast[0] == "value" or full[0] == "value":
        pytest.fail(f"one side failed: {fast} vs {full}")
    else:
        assert fast == full


@pytest.mark.parametrize("text", [t for t in PLAIN if t.strip() and not t.startswith("#")])
def test_plain_documents_never_reach_the_constructor(text, monkeypatch):
    def refuse(self, node):
        raise AssertionError("the constructor was asked")

    monkeypatch.setattr(loader._UniqueKeyLoader, "construct_document", refuse)
    loader._load_yaml(text)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_other_documents_are_the_constructors(text, monkeypatch):
    asked = []
    original = loader._UniqueKeyLoader.construct_document

    def spy(self, node):
        asked.append(node)
        return original(self, node)

    monkeypatch.setattr(loader._UniqueKeyLoader, "construct_document", spy)
    loader._load_yaml(text)
    assert asked


def test_an_alias_stays_one_object_and_a_recursive_one_is_built():
    data = loader._load_yaml("base: &b {x: [1]}\nother: *b\n")
    assert data["base"] is data["other"]
    data = loader._load_yaml("r: &r [*r, 1]\n")
    assert data["r"][0] is data["r"] and data["r"][1] == 1


def test_the_repository_platform_files_load_the_same(repo_root: Path):
    files = [repo_root / "platform.yaml", *sorted((repo_root / "examples").glob("*/platform.yaml"))]
    assert len(files) >= 3
    for f in files:
        text = f.read_text()
        assert _typed(loader._load_yaml(text)) == _typed(_constructor(text)), f
