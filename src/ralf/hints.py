"""Commands ralf prints for the user to run next, made complete for the platform in use.

A hint is a ``ralf …`` command in backticks inside a message (triage advice, the deploy summary, the
lab's repair hint). When the platform in use is not the one a bare ``ralf`` would pick (``$RALF_PLATFORM``,
else ``./platform.yaml``), every such command gets ``--platform FILE`` so that it does the same thing
when pasted: ``ralf smoke portal`` on the lab would otherwise check the real platform, or fail with
"unknown target". ``ralf lab …`` commands find the lab platform themselves and get the flag only for
another lab platform.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

_COMMAND = re.compile(r"`(ralf\s[^`]*)`")


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as the user would type it here: relative under the working directory, else absolute."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _same_file(a: str | os.PathLike | None, b: str | os.PathLike | None) -> bool:
    if a is None or b is None:
        return False
    return Path(a).resolve() == Path(b).resolve()


def platform_flag(source: str | os.PathLike | None, *, lab: bool = False) -> str:
    """`` --platform FILE`` when ``source`` is not what a bare command would load, else ``""``.

    ``lab``: for a ``ralf lab`` command, whose default is the lab platform.
    """
    if source is None:
        return ""
    if lab:
        from ralf.lab.control import default_lab_platform

        default: str | os.PathLike = default_lab_platform()
    else:
        from ralf.loader import resolve_platform_path

        default = resolve_platform_path(None)
    if _same_file(source, default):
        return ""
    return f" --platform {shlex.quote(shown_path(source))}"


def command(text: str, source: str | os.PathLike | None) -> str:
    """One ``ralf …`` command line, completed for the platform file ``source``."""
    words = text.split()
    if "--platform" in words or "--real" in words:  # already names its platform (--real: the container lab)
        return text
    return text.rstrip() + platform_flag(source, lab=words[:2] == ["ralf", "lab"])


def complete(message: str, source: str | os.PathLike | None) -> str:
    """Every backticked ``ralf …`` command in ``message`` completed for the platform file ``source``."""
    if source is None or not message:
        return message
    return _COMMAND.sub(lambda m: f"`{command(m.group(1), source)}`", message)


def commands_in(message: str) -> list[str]:
    """The backticked ``ralf …`` commands in ``message``, in order."""
    return _COMMAND.findall(message or "")
