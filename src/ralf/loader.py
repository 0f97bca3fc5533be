"""Load a platform file: YAML → :class:`ralf.model.Platform`, or one clear line per problem.

Every problem names the file, the place (``services.n8n.ip``, with the YAML line where known) and
what is expected. Nothing here ever lets a traceback reach the operator: broken YAML, wrong types,
an empty file, a missing file or a directory all end in :class:`ralf.errors.PlatformError`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ralf import settings
from ralf.errors import PlatformError

DEFAULT_PLATFORM = "platform.yaml"
MAX_BYTES = 4 * 1024 * 1024  # a platform file is a few kB; /dev/zero is not one
ENV_PLATFORM = "RALF_PLATFORM"

# pydantic inserts the chosen union member into error locations; they are not places in the file.
_UNION_TAGS = {
    "str", "StackRef", "tcp", "http", "https", "tls", "unit", "app_port", "postgres", "smtp", "imaps", "s3",
}


# libyaml's C parser (PyYAML's CSafeLoader) parses 3-4x faster; PyYAML without it falls back to the pure one.
_FastBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (a second value would silently replace the first)", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


class _UniqueKeyLoader(_FastBase):  # type: ignore[misc, valid-type]
    """A safe loader (the C one where available) that rejects duplicate mapping keys (YAML would keep the
    last one silently)."""


class _UniquePureLoader(yaml.SafeLoader):
    """The same in pure Python: a file the fast loader rejects is parsed again with it, so an error reads
    the same (message, line and column) whichever parser is installed."""


for _loader in (_UniqueKeyLoader, _UniquePureLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC inside: for work that only allocates and keeps what it allocates.

    Parsing allocates a node per scalar and keeps them all, and building the models' classes and their
    validator does the same: the cyclic GC would rescan the growing heap again and again (half the time of a
    large file, a tenth of the models'). Nothing built here is garbage until it ends; what it keeps is kept
    for good (the model classes, their validator, the platform), so it joins the oldest generation at once
    (freeze, then unfreeze): the next young collections do not scan it all again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _load_yaml(text: str) -> Any:
    with _gc_paused():
        try:
            return _load_with(_UniqueKeyLoader, text)
        except yaml.YAMLError:
            if _FastBase is yaml.SafeLoader:
                raise
        return _load_with(_UniquePureLoader, text)  # raises the same error, worded the pure way


def _load_with(loader_class: type, text: str) -> Any:
    """``yaml.load(text, Loader=loader_class)``, with the plain part of the document built directly.

    A platform file is maps, lists and plain scalars; PyYAML's constructor spends most of a load on its
    generality (a state machine of generators, a lookup per node). Those nodes are built here the way it builds
    them; a document with anything else (an alias, a merge key, another tag, a duplicate key, a value its
    constructor would refuse) is handed to the constructor whole, so its values and errors stay PyYAML's own.
    """
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _plain(node, set())
        except _NotPlain:
            return loader.construct_document(node)
    finally:
        loader.dispose()


class _NotPlain(Exception):
    """The document holds something only PyYAML's constructor builds."""


_STR, _NULL, _BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("str", "null", "bool", "int", "float"))
_MAP, _SEQ = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALARS = {_INT: _CONSTRUCTOR.construct_yaml_int, _FLOAT: _CONSTRUCTOR.construct_yaml_float}


def _plain(node: yaml.Node, seen: set[int]) -> Any:
    """What SafeConstructor makes of a plain node (map, list, str, null, bool, int, float); else _NotPlain."""
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL and node.value.lower() in _BOOLS:
            return _BOOLS[node.value.lower()]
        if tag in (_INT, _FLOAT):
            try:  # the constructor's own conversion (0x, 0o, 1_000, sexagesimal, .inf); an explicit !!int x fails
                return _SCALARS[tag](node)
            except (ValueError, IndexError):
                raise _NotPlain from None
        raise _NotPlain
    if id(node) in seen:  # an alias: the constructor shares the object (or finds the recursion)
        raise _NotPlain
    seen.add(id(node))
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_plain(item, seen) for item in node.value]
    if tag != _MAP or not isinstance(node, yaml.MappingNode):
        raise _NotPlain
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # a list or map as a key: the constructor's error
            raise _NotPlain
        # most keys and values are plain strings: taken here without a call (a merge key << has a tag of its own)
        key = key_node.value if key_node.tag == _STR else _plain(key_node, seen)
        if key in out:  # the duplicate key's error comes from the constructor
            raise _NotPlain
        out[key] = value_node.value if value_node.tag == _STR and isinstance(value_node, yaml.ScalarNode) \
            else _plain(value_node, seen)
    return out


def _bad_value(text: str, e: ValueError) -> str:
    """Where PyYAML's constructor refused a value (its error has no place): the first date-like scalar it
    cannot build."""
    constructor = yaml.constructor.SafeConstructor()
    stack = [yaml.compose(text, Loader=_FastBase)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
            try:
                constructor.construct_yaml_timestamp(node)
            except ValueError as bad:
                mark = node.start_mark
                return (f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {node.value} is not a real "
                        f"date ({bad}); quote it to keep it as text")
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return f"invalid YAML: a value PyYAML cannot build ({e})"


def resolve_platform_path(path: str | os.PathLike | None) -> Path:
    """The platform file to use: the argument, else ``$RALF_PLATFORM``, else ``./platform.yaml``."""
    return Path(path or settings.get(ENV_PLATFORM) or DEFAULT_PLATFORM)


def load_platform(path: str | os.PathLike | None = None):
    """Read, parse and validate a platform file. Raises :class:`PlatformError`."""
    p = resolve_platform_path(path)
    try:
        if p.exists() and not p.is_dir() and not p.is_file():
            raise PlatformError([f"{p}: not a regular file (a device, FIFO or socket); expected a platform YAML file"])
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise PlatformError([f"{p}: larger than {MAX_BYTES // (1024 * 1024)} MiB; not a platform file"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise PlatformError([f"{p}: file not found (pass --platform FILE or set {ENV_PLATFORM})"]) from None
    except IsADirectoryError:
        raise PlatformError([f"{p}: is a directory; expected a platform YAML file"]) from None
    except PermissionError:
        raise PlatformError([f"{p}: permission denied"]) from None
    except UnicodeDecodeError:
        raise PlatformError([f"{p}: not a text file (expected UTF-8 YAML)"]) from None
    except OSError as e:
        raise PlatformError([f"{p}: cannot read ({e.strerror})"]) from None
    platform = parse_platform(text, source=str(p))
    platform._source = p.resolve()
    if "logging" in sys.modules:  # someone logs (-v imports it): keep `logging` off ralf plan's start-up
        import logging

        logging.getLogger(__name__).info("platform %s loaded from %s", platform.name, platform._source)
    return platform


def parse_platform(text: str, source: str = "<platform>"):
    """Parse and validate platform YAML text; ``source`` names it in messages."""
    import pydantic.type_adapter  # noqa: F401 - the library itself loads as in any program, with the GC on

    with _gc_paused():  # ralf's own part: its model classes, their validator, the parse and the checks
        return _parse_platform(text, source)


def _parse_platform(text: str, source: str):
    from pydantic import ValidationError

    from ralf.model import Platform, cross_check

    try:
        data = _load_yaml(text)
    except RecursionError:
        raise PlatformError([f"{source}: nested too deeply to be a platform file"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(e, "problem", None) or str(e)
        raise PlatformError([f"{source}: {where}invalid YAML: {what}"]) from None
    except ValueError as e:  # PyYAML's constructor for a date that is none, e.g. 2024-13-45
        raise PlatformError([f"{source}: {_bad_value(text, e)}"]) from None
    if data is None:
        raise PlatformError([f"{source}: the file is empty; expected a platform mapping (see platform.yaml)"])
    if not isinstance(data, dict):
        raise PlatformError([f"{source}: expected a mapping at the top level, got {type(data).__name__}"])
    try:
        platform = Platform.model_validate(data)
    except RecursionError:
        raise PlatformError([f"{source}: nested too deeply to be a platform file"]) from None
    except ValidationError as e:
        lines = _LineFinder(text)
        problems = []
        for err in e.errors(include_url=False):
            loc = [x for i, x in enumerate(err["loc"]) if not (isinstance(x, str) and x in _UNION_TAGS and i > 0
                                                             and isinstance(err["loc"][i - 1], int))]
            problems.append(_format(source, loc, _expected(dict(err)), lines))
        raise PlatformError(_dedupe(problems)) from None
    found = cross_check(platform)
    if found:
        lines = _LineFinder(text)
        raise PlatformError([_format(source, _split_place(place), msg, lines) for place, msg in found])
    return platform


def _expected(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; unknown keys are not allowed)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown check kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "expected a 'kind' key naming the check kind"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{msg[0].lower()}{msg[1:]} (got {got!r})" if not isinstance(got, (dict, list)) else msg
    return msg


def _format(source: str, loc: list, message: str, lines: _LineFinder) -> str:
    place = _place(loc) or "(top level)"
    line = lines.find(loc)
    at = f" (line {line})" if line else ""
    return f"{source}: {place}{at}: {message}"


def _place(loc: list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _split_place(place: str) -> list:
    loc: list = []
    for part in place.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            loc.append(int(part[1:-1]))
        elif part.startswith("[") and part.endswith("]"):
            loc.append(part[1:-1])
        else:
            loc.append(part)
    return loc


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _LineFinder:
    """Maps a location (keys and indexes) to the 1-based YAML line of the deepest node found."""

    def __init__(self, text: str) -> None:
        try:
            self.root = yaml.compose(text, Loader=_FastBase)
        except yaml.YAMLError:
            self.root = None

    def find(self, loc: list) -> int | None:
        node, line = self.root, None
        for part in loc:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if k.value == str(part):
                        nxt, line = v, k.start_mark.line + 1
                        break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                node = None
        return line
