"""Which stacks a run covers: ``ONLY_STACKS`` / ``START_AT`` / ``AUTO_APPLY`` and their flags.

This is the contract Semaphore environments rely on (all values are strings):

- ``ONLY_STACKS``: an ordered whitelist, space- or comma-separated; stacks run in the order given.
  An unknown name is an error listing the valid ones.
- ``START_AT``: keep stacks whose name sorts at or after it (``"000"`` keeps everything). It must
  look like a stack prefix (digits, optionally followed by the rest of a stack name).
- ``AUTO_APPLY``: ``"1"`` applies; anything else plans (tofu plan, ansible --syntax-check).

A selection that ends up empty fails before anything runs (``ralf stacks list`` still lists every stack,
none selected). Errors name where a value came from: the variable, or the flag that set it. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ralf import settings
from ralf.catalog import Catalog, Stack
from ralf.errors import UsageError

START_AT = re.compile(r"^[0-9]+(-[a-z0-9-]*)?$")


ONLY_ENV, START_ENV = "ONLY_STACKS", "START_AT"
ONLY_FLAG, START_FLAG = "--only", "--start-at"


@dataclass(frozen=True)
class Selection:
    only: list[str] | None = None
    start_at: str | None = None
    apply: bool = False
    only_source: str = ONLY_ENV  # where ``only`` came from: ONLY_STACKS or --only
    start_source: str = START_ENV  # where ``start_at`` came from: START_AT or --start-at

    def describe(self) -> str:
        parts = [f"mode={'apply' if self.apply else 'plan'}"]
        if self.only:
            parts.append(f"{self.only_source}={' '.join(self.only)}")
        if self.start_at:
            parts.append(f"{self.start_source}={self.start_at}")
        return " ".join(parts)


def parse_only(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``"a b,c"`` (or several such strings) → ``["a", "b", "c"]``; nothing → None (no whitelist)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    names = [n for item in items for n in re.split(r"[\s,]+", item.strip()) if n]
    return names or None


def parse_start_at(value: str | None, source: str = START_ENV) -> str | None:
    if value is None or value.strip() == "":
        return None
    v = value.strip()
    if not START_AT.match(v):
        raise UsageError(f"{source}={value!r} is not a stack prefix; expected digits such as 000 or 042")
    return v


def parse_auto_apply(value: str | None) -> bool:
    return (value or "").strip() == "1"


def selection_from_env(environ: Mapping[str, str]) -> Selection:
    """The selection Semaphore's environment sets (``ONLY_STACKS``, ``START_AT``, ``AUTO_APPLY``)."""
    return Selection(
        only=parse_only(settings.get("ONLY_STACKS", environ)),
        start_at=parse_start_at(settings.get("START_AT", environ)),
        apply=parse_auto_apply(settings.get("AUTO_APPLY", environ)),
    )


def resolve_selection(
    environ: Mapping[str, str],
    only: str | list[str] | tuple[str, ...] | None = None,
    start_at: str | None = None,
    apply: bool | None = None,
) -> Selection:
    """Flags win; each setting without a flag comes from the environment (and says which it was)."""
    only_flag, start_flag = bool(only), start_at is not None
    return Selection(
        only=parse_only(only) if only_flag else parse_only(settings.get(ONLY_ENV, environ)),
        start_at=parse_start_at(start_at, START_FLAG) if start_flag else parse_start_at(settings.get(START_ENV, environ)),
        apply=apply if apply is not None else parse_auto_apply(settings.get("AUTO_APPLY", environ)),
        only_source=ONLY_FLAG if only_flag else ONLY_ENV,
        start_source=START_FLAG if start_flag else START_ENV,
    )


def select_stacks(catalog: Catalog, only: list[str] | None, start_at: str | None, *,
                  only_source: str = ONLY_ENV, start_source: str = START_ENV,
                  allow_empty: bool = False) -> list[Stack]:
    """The stacks to run, in run order; unknown names and an empty result raise :class:`UsageError`.

    ``only_source`` / ``start_source`` name where the values came from (the variable or the flag) in
    errors. ``allow_empty`` returns ``[]`` instead of failing (a listing; see :func:`empty_selection`).
    """
    start = parse_start_at(start_at, start_source)
    index = catalog.stack_index
    if only:
        unknown = [n for n in only if n not in index]
        if unknown:
            raise UsageError(
                f"unknown stack{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {only_source}; "
                f"valid stacks: {', '.join(index)}"
            )
        seen: set[str] = set()
        ordered = []
        for n in only:
            if n not in seen:
                seen.add(n)
                ordered.append(index[n])
    else:
        ordered = list(catalog.stacks)
    chosen = [s for s in ordered if start is None or s.name >= start]
    if not chosen and not allow_empty:
        raise UsageError(f"{empty_selection(only, start, only_source, start_source)}; nothing to run")
    return chosen


def empty_selection(only: list[str] | None, start_at: str | None, only_source: str = ONLY_ENV,
                    start_source: str = START_ENV) -> str:
    """``no stacks selected (…)``, naming the settings that left nothing."""
    what = []
    if only:
        what.append(f"{only_source}={' '.join(only)}")
    if start_at:
        what.append(f"{start_source}={start_at}")
    return f"no stacks selected ({', '.join(what) or 'the platform has no stacks'})"
