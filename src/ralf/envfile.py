"""The one env-file format ralf reads and writes: ``KEY=value`` lines as systemd's ``EnvironmentFile=`` reads them.

The secrets directory's ``<service>.env`` files, the files ralf generates and the ``*.env`` files the
roles install as a unit's ``EnvironmentFile=`` all use it; the roles read and write it through the
``ralf_env`` filter plugin (``ansible/roles/ralf_secrets/filter_plugins``), which loads this module, so
Python and Ansible cannot disagree.

Reading follows systemd's parser (``src/basic/env-file.c``): blank lines and lines starting with ``#``
or ``;`` are comments; whitespace around the key and an unquoted value is dropped; ``'...'`` is
literal; in ``"..."`` a backslash escapes ``"``, ``\\``, `````` ` `````` and ``$`` (before any other
character it stays); outside quotes a backslash keeps the next character; a backslash-newline joins
lines; ``#`` after a value is part of it. One addition for files written for a shell: ``export KEY=``.

Writing: a value of plain characters stays bare, anything else goes in double quotes with those four
characters escaped — read back the same by systemd, by a POSIX shell's ``.``, and by :func:`parse`. A
newline (or CR, or NUL) cannot be written: it would end the line and could start a new key, so it is
refused with :class:`EnvFileError` naming the key, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["EnvFileError", "parse", "read", "quote", "line", "render", "FilterModule"]

_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDS_ESCAPE = '"\\`$'  # systemd's SHELL_NEED_ESCAPE; a POSIX shell's double quotes escape the same
_FORBIDDEN = "\n\r\0"


class EnvFileError(ValueError):
    """A key or value the format cannot hold, or a file that cannot be read (message names no value)."""


def parse(text: str) -> dict[str, str]:
    """The assignments in env-file text, as systemd's ``EnvironmentFile=`` would see them (last one wins)."""
    out: dict[str, str] = {}
    key: list[str] = []
    value: list[str] = []
    state = "pre_key"
    trailing = -1  # where unquoted trailing whitespace starts in ``value`` (-1: none)

    def push() -> None:
        k = "".join(key).strip()
        if k.startswith("export ") or k.startswith("export\t"):
            k = k[len("export"):].strip()
        if _KEY.fullmatch(k):
            out[k] = "".join(value)

    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif not c.isspace():
                state, key, value = "key", [c], []
        elif state == "key":
            if c == "\n":
                state = "pre_key"
            elif c == "=":
                state = "pre_value"
            else:
                key.append(c)
        elif state == "pre_value":
            if c == "\n":
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "escape"
            elif c not in " \t":
                state, trailing = "value", -1
                value.append(c)
        elif state == "value":
            if c == "\n":
                if trailing >= 0:
                    del value[trailing:]
                push()
                state = "pre_key"
            elif c == "\\":
                state, trailing = "escape", -1
            else:
                if c not in " \t":
                    trailing = -1
                elif trailing < 0:
                    trailing = len(value)
                value.append(c)
        elif state == "escape":
            state = "value"
            if c != "\n":
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in _NEEDS_ESCAPE:
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "comment" and c == "\n":
            state = "pre_key"
    if state == "value" and trailing >= 0:
        del value[trailing:]
    if state not in ("pre_key", "key", "comment"):
        push()
    return out


def read(path: str | os.PathLike[str]) -> dict[str, str]:
    """The assignments in the file at ``path`` (UTF-8); OSError and UnicodeDecodeError pass through."""
    return parse(Path(path).read_text(encoding="utf-8"))


def quote(value: str, key: str = "value") -> str:
    """``value`` as it is written after ``KEY=``: bare when plain, else double-quoted and escaped."""
    value = str(value)
    if any(c in value for c in _FORBIDDEN):
        raise EnvFileError(f"{key} holds a line break or NUL, which an env file cannot hold")
    if _PLAIN.fullmatch(value):
        return value
    return '"' + "".join("\\" + c if c in _NEEDS_ESCAPE else c for c in value) + '"'


def line(key: str, value: str) -> str:
    """One ``KEY=value`` line (without the newline); a key that is not a shell name is refused."""
    if not _KEY.fullmatch(key):
        raise EnvFileError(f"{key!r} is not a valid environment variable name")
    return f"{key}={quote(value, key)}"


def render(values: dict[str, str], header: str = "") -> str:
    """A whole file: an optional ``# header`` comment, then one line per key."""
    head = "".join(f"# {h}\n" if h else "#\n" for h in header.splitlines()) if header else ""
    return head + "".join(line(k, v) + "\n" for k, v in values.items())


class FilterModule:
    """Ansible's view of this module (loaded by the ``ralf_env`` filter plugin): the same reader and writer."""

    def filters(self) -> dict[str, object]:
        return {"ralf_env_parse": parse, "ralf_env_quote": quote}
