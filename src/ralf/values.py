"""What a platform value is: hostnames (RFC 1123), hosts, systemd unit names, URLs, user names, paths.

Each is an ``Annotated[str, ...]`` type for the pydantic model, so a value that could change the meaning of
a command line, an inventory or a generated OpenTofu file (a space, a newline, a quote, ``${…}``) is
rejected by ``ralf validate`` with the field's name, before anything runs. The code that passes values
on still quotes them (argv elements, ``shlex.quote``, escaped templates): validation is the first wall,
not the only one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler

# Patterns, compiled by ``re`` on first use (and cached there): a platform file uses only some of them, and
# compiling all at import cost every start-up about a millisecond.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = rf"(?=.{{1,253}}\.?\Z){_LABEL}(?:\.{_LABEL})*\.?\Z"
# systemd.unit(5): ASCII letters, digits, ":", "-", "_", ".", "\", and "@" for instances; at most 255 bytes
UNIT_RE = r"[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,254}\Z"
USER_RE = r"[a-z_][a-z0-9_.-]{0,31}\Z"
ABS_PATH_RE = r"/[A-Za-z0-9_./+-]*\Z"
BUCKET_RE = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z"
WORD_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z"  # a storage, bridge, region or template id part
PREFIX_RE = r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z"


def _no_controls(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newline, tab, …)")
    return v


def _matching(pattern: str, what: str):
    """A validator accepting the values ``pattern`` matches; ``what`` says what else was expected."""
    def check(v: str) -> str:
        if not re.match(pattern, v):
            raise ValueError(f"{v!r} is not {what}")
        return v

    return check


hostname = _matching(HOSTNAME_RE, "a hostname (RFC 1123: letters, digits and '-', dot-separated labels)")
unit = _matching(UNIT_RE, "a systemd unit name (letters, digits, ':', '_', '.', '-', '@', '\\')")
user = _matching(USER_RE, "a user name (lower-case letters, digits, '_', '.', '-')")
abs_path = _matching(ABS_PATH_RE, "an absolute path of plain characters")
word = _matching(WORD_RE, "a plain identifier (letters, digits, '_', '.', '-')")
bucket = _matching(BUCKET_RE, "an S3 bucket name (3–63 lower-case letters, digits, '.', '-')")
key_prefix = _matching(PREFIX_RE, "a key prefix (plain path segments separated by '/')")


def host(v: str) -> str:
    """An IP address or a hostname."""
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if not re.match(HOSTNAME_RE, v):
        raise ValueError(f"{v!r} is neither an IP address nor a hostname")
    return v


def ip(v: str) -> str:
    """An IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"expected an IP address, got {v!r}") from None
    return v


URL_CHARS_RE = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z"  # RFC 3986, nothing else


def url(v: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """An absolute URL with one of ``schemes``, a host and, if given, a port in 1–65535."""
    _no_controls(v)
    if not re.match(URL_CHARS_RE, v):
        bad = sorted({c for c in v if not re.match(URL_CHARS_RE, c)})
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
    """Annotated metadata: the value is a ``str``, then ``fn`` checks it. What pydantic's own AfterValidator
    does, without inspecting ``fn``'s signature again at every field that uses the type (the platform model has
    dozens): ``fn`` takes the value alone."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str], str]) -> None:
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
