"""Classification rules (``rules.yaml`` in this package) and the classifier that applies them to a log.

A rule names a category (tofu, ansible, smoke, semaphore), a cause, regular expressions, the
runbook's first checks and a next-action template. The first rule in file order that matches any
line wins; rules of the wrong family for the step are skipped (an apply step is not classified as a
smoke failure and vice versa).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from ralf.errors import RalfError

CATEGORIES = ("tofu", "ansible", "smoke", "semaphore", "unknown")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
STACK_RE = re.compile(r"\b(\d{3}-[a-z0-9][a-z0-9-]*-(?:lxc|config))\b", re.IGNORECASE)
TASK_RE = re.compile(r"^\s*TASK \[(?P<task>[^\]]+)\]")


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    cause: str
    patterns: tuple[re.Pattern, ...]
    checks: tuple[str, ...] = ()
    summary: str = ""
    next: str = ""


@dataclass
class Match:
    """What the classifier found: the rule, the matching line and what it captured around it."""

    rule: Rule
    line: str
    line_no: int
    captures: dict[str, str] = field(default_factory=dict)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def parse_rules(data: object, source: str = "rules.yaml") -> list[Rule]:
    """Validate rule data; a broken rule is one clear error naming it."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RalfError(f"{source}: expected a mapping with a 'rules' list")
    out: list[Rule] = []
    for i, r in enumerate(data["rules"]):
        where = f"{source}: rules[{i}]"
        if not isinstance(r, dict):
            raise RalfError(f"{where}: expected a mapping")
        rid = r.get("id") or f"rule-{i}"
        if r.get("category") not in CATEGORIES:
            raise RalfError(f"{where} ({rid}): category must be one of {', '.join(CATEGORIES)}")
        pats = r.get("patterns") or []
        if not isinstance(pats, list) or not pats:
            raise RalfError(f"{where} ({rid}): expected a non-empty 'patterns' list")
        try:
            compiled = tuple(re.compile(p, re.IGNORECASE) for p in pats)
        except re.error as e:
            raise RalfError(f"{where} ({rid}): bad pattern: {e}") from None
        checks = tuple(r.get("checks") or ())
        bad = [c for c in checks if c not in ("minio", "proxmox", "smoke", "semaphore")]
        if bad:
            raise RalfError(f"{where} ({rid}): unknown checks {bad}")
        out.append(Rule(rid, r["category"], str(r.get("cause") or rid), compiled, checks,
                        str(r.get("summary") or ""), str(r.get("next") or "")))
    return out


@lru_cache(maxsize=1)
def default_rules() -> tuple[Rule, ...]:
    text = resources.files("ralf.triage").joinpath("rules.yaml").read_text(encoding="utf-8")
    return tuple(parse_rules(yaml.safe_load(text)))


def classify_lines(lines: list[str], *, kind: str | None = None, rules=None) -> Match | None:
    """The first rule (in rule order) matching any line; ``kind`` ("apply"/"smoke") skips other families."""
    rules = default_rules() if rules is None else rules
    clean = [strip_ansi(line).rstrip("\n") for line in lines]
    for rule in rules:
        if kind == "smoke" and rule.category in ("tofu", "ansible"):
            continue
        if kind == "apply" and rule.category == "smoke":
            continue
        for no, line in enumerate(clean):
            for pat in rule.patterns:
                m = pat.search(line)
                if m:
                    caps = {k: v for k, v in m.groupdict().items() if v}
                    _context(clean, no, caps)
                    return Match(rule, line.strip(), no, caps)
    return None


def _context(lines: list[str], no: int, caps: dict[str, str]) -> None:
    """Fill in the stack and ansible task nearest before the matching line (runner and ansible headers)."""
    if "stack" not in caps:
        for line in reversed(lines[: no + 1]):
            m = STACK_RE.search(line)
            if m:
                caps["stack"] = m.group(1)
                break
    if "task" not in caps:
        for line in reversed(lines[: no + 1]):
            m = TASK_RE.search(line)
            if m:
                caps["task"] = m.group("task").strip()
                break
