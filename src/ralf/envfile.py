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

# the reader's pieces (see parse)
_SPACE = re.compile(r"\s*")
_LINE_END = re.compile(r"[^\n]*\n?")
_KEY_PART = re.compile(r"[^=\n]*")
_SINGLE = re.compile(r"'([^']*)'?")  # literal; an unclosed quote runs to the end of the text
_DOUBLE = re.compile(r'"((?:[^"\\]|\\.)*)(?:"|\\?)', re.S)  # a lone backslash at the very end is dropped
# to the end of the line: a backslash keeps the next character (a newline: joins lines); trailing blanks are
# dropped unless escaped; a lone backslash at the very end is dropped
_UNQUOTED = re.compile(r"((?:[^\n\\]|\\.)*?)(?:[ \t]*|\\\Z)(?=\n|\Z)", re.S)
_BACKSLASH = re.compile(r"\\(.)", re.S)  # a backslash and the character it escapes


class EnvFileError(ValueError):
    """A key or value the format cannot hold, or a file that cannot be read (message names no value)."""


def parse(text: str) -> dict[str, str]:
    """The assignments in env-file text, as systemd's ``EnvironmentFile=`` would see them (last one wins)."""
    out: dict[str, str] = {}
    pos, end = 0, len(text)
    while True:
        pos = _skip(_SPACE, text, pos)
        if pos >= end:
            return out
        if text[pos] in "#;":  # a comment, to the end of its line
            pos = _skip(_LINE_END, text, pos)
            continue
        key = _KEY_PART.match(text, pos + 1)  # the first character always belongs to the key, even "="
        assert key is not None
        pos = key.end()
        if pos >= end or text[pos] == "\n":  # no "=": not an assignment
            pos += 1
            continue
        value, pos = _value(text, pos + 1)
        name = (text[key.start() - 1] + key.group()).strip()
        if name.startswith(("export ", "export\t")):
            name = name[len("export"):].strip()
        if _KEY.fullmatch(name):
            out[name] = value


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    m = pattern.match(text, pos)
    assert m is not None  # the pattern matches the empty string too
    return m.end()


def _value(text: str, pos: int) -> tuple[str, int]:
    """The value that starts at ``pos`` (after ``=``) and where its line ends: quoted pieces and blanks between
    them, then at most one unquoted run to the end of the line (in which quotes are plain characters)."""
    parts: list[str] = []
    while pos < len(text):
        c = text[pos]
        if c == "\n":
            return "".join(parts), pos + 1
        if c in " \t":
            pos += 1
            continue
        m = (_SINGLE if c == "'" else _DOUBLE if c == '"' else _UNQUOTED).match(text, pos)
        assert m is not None  # each matches the empty rest too
        if c == "'":
            parts.append(m.group(1))
        elif c == '"':
            parts.append(_BACKSLASH.sub(_double_escaped, m.group(1)))
        else:
            parts.append(_BACKSLASH.sub(lambda e: e.group(1).replace("\n", ""), m.group(1)))
        pos = m.end()
    return "".join(parts), pos


def _double_escaped(m: re.Match[str]) -> str:
    """In double quotes a backslash escapes ``"``, ``\\``, `````` ` `````` and ``$``, joins lines before a
    newline, and stays before any other character."""
    c = m.group(1)
    return c if c in _NEEDS_ESCAPE else "" if c == "\n" else "\\" + c


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
