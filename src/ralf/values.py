"""What a platform value is: hostnames (RFC 1123), hosts, systemd unit names, URLs, user names, paths.

Each is an ``Annotated[str, ...]`` type for the pydantic model, so a value that could change the meaning of
a command line, an inventory or a generated OpenTofu file (a space, a newline, a quote, ``${…}``) is
rejected by ``ralf validate`` with the field's name, before anything runs. The code that passes values
on still quotes them (argv elements, ``shlex.quote``, escaped templates): validation is the first wall,
not the only one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler

# What each value may hold, as sets of characters rather than regular expressions: compiling a pattern costs
# ``re`` ~0.3 ms of start-up (the hostname's 1 ms), more than all of a platform file's checks together.
# tests/foundation/test_values.py holds the patterns these follow and compares the two on random text.
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_ALNUM = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ") | _DIGITS
_LABEL = _ALNUM | {"-"}
_PLAIN = _ALNUM | frozenset("_.-")  # a storage, bridge, region or template id part; a key prefix's segment
# systemd.unit(5): ASCII letters, digits, ":", "-", "_", ".", "\", and "@" for instances; at most 255 bytes
_UNIT_FIRST = _ALNUM | frozenset(":_.\\@")
_USER_FIRST = _LOWER | {"_"}
_USER = _LOWER | _DIGITS | frozenset("_.-")
_PATH = _ALNUM | frozenset("_./+-")
_BUCKET_END = _LOWER | _DIGITS
_BUCKET = _BUCKET_END | {".", "-"}
_URL = _ALNUM | frozenset("-._~:/?#[]@!$&'()*+,;=%")  # RFC 3986, nothing else


def _of(v: str, chars: frozenset[str]) -> bool:
    return chars.issuperset(v)


def _shaped(v: str, first: frozenset[str], rest: frozenset[str], most: int) -> bool:
    """1 to ``most`` characters: the first of ``first``, the others of ``rest``."""
    return 0 < len(v) <= most and v[0] in first and _of(v[1:], rest)


def _is_label(v: str) -> bool:
    return 0 < len(v) <= 63 and v[0] in _ALNUM and v[-1] in _ALNUM and _of(v, _LABEL)


def _is_hostname(v: str) -> bool:
    """RFC 1123: dot-separated labels of letters, digits and '-' (not first or last), at most 253 characters
    besides a final dot."""
    name = v[:-1] if v.endswith(".") else v
    return 0 < len(name) <= 253 and all(map(_is_label, name.split(".")))


def _is_bucket(v: str) -> bool:
    return 3 <= len(v) <= 63 and v[0] in _BUCKET_END and v[-1] in _BUCKET_END and _of(v, _BUCKET)


def _no_controls(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newline, tab, …)")
    return v


def _matching(test: Callable[[str], bool], what: str) -> Callable[[str], str]:
    """A validator accepting the values ``test`` accepts; ``what`` says what else was expected."""
    def check(v: str) -> str:
        if not test(v):
            raise ValueError(f"{v!r} is not {what}")
        return v

    return check


hostname = _matching(_is_hostname, "a hostname (RFC 1123: letters, digits and '-', dot-separated labels)")
unit = _matching(lambda v: _shaped(v, _UNIT_FIRST, _UNIT_FIRST | {"-"}, 255), "a systemd unit name (letters, digits, ':', '_', '.', '-', '@', '\\')")
user = _matching(lambda v: _shaped(v, _USER_FIRST, _USER, 32), "a user name (lower-case letters, digits, '_', '.', '-')")
abs_path = _matching(lambda v: v[:1] == "/" and _of(v, _PATH), "an absolute path of plain characters")
word = _matching(lambda v: _shaped(v, _ALNUM, _PLAIN, 63), "a plain identifier (letters, digits, '_', '.', '-')")
bucket = _matching(_is_bucket, "an S3 bucket name (3–63 lower-case letters, digits, '.', '-')")
key_prefix = _matching(lambda v: all(p and _of(p, _PLAIN) for p in v.split("/")), "a key prefix (plain path segments separated by '/')")


def host(v: str) -> str:
    """An IP address or a hostname."""
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if not _is_hostname(v):
        raise ValueError(f"{v!r} is neither an IP address nor a hostname")
    return v


def ip(v: str) -> str:
    """An IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"expected an IP address, got {v!r}") from None
    return v


def url(v: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """An absolute URL with one of ``schemes``, a host and, if given, a port in 1–65535."""
    _no_controls(v)
    if not v or not _of(v, _URL):
        bad = sorted({c for c in v if c not in _URL})
        raise ValueError(f"a URL must not contain {' '.join(map(repr, bad))} (percent-encode it)")
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{v!r} is not a valid URL ({e})") from None
    want = " or ".join(f"{s}://" for s in schemes)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected a {want} URL with a host, such as {schemes[-1]}://10.10.40.10/")
    if port == 0:
        raise ValueError(f"{v!r}: port 0 is not a port (1–65535)")
    host(parts.hostname)
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in a URL (use the secrets directory)")
    return v


def https_url(v: str) -> str:
    return url(v, ("https",))


class AfterValidator:
    """Annotated metadata: the value is validated as its type, then ``fn`` checks it (a ``str`` here, a list or
    a map in the platform model). What pydantic's own AfterValidator does, without inspecting ``fn``'s
    signature again at every field that uses the type (the platform model has dozens): ``fn`` takes the value
    alone."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.fn, handler(source))


Hostname = Annotated[str, AfterValidator(hostname)]
Host = Annotated[str, AfterValidator(host)]
UnitName = Annotated[str, AfterValidator(unit)]
UserName = Annotated[str, AfterValidator(user)]
AbsPath = Annotated[str, AfterValidator(abs_path)]
Word = Annotated[str, AfterValidator(word)]
Bucket = Annotated[str, AfterValidator(bucket)]
KeyPrefix = Annotated[str, AfterValidator(key_prefix)]
Url = Annotated[str, AfterValidator(url)]
HttpsUrl = Annotated[str, AfterValidator(https_url)]
Text = Annotated[str, AfterValidator(_no_controls)]
IpAddress = Annotated[str, AfterValidator(ip)]
