"""What every stack of one run shares: platform, directories, programs, environment, output sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ralf.model import Platform
from ralf.stacks.process import InterruptGuard, Redactor
from ralf.states import Result


@dataclass
class RunContext:
    platform: Platform
    state_dir: Path
    run_dir: Path
    repo_root: Path
    environ: dict[str, str]
    tofu_binary: str | None = None  # resolved path; None when the run has no tofu stacks
    ansible_binary: str | None = None
    on_output: Callable[[str], None] | None = None
    redact: Redactor = field(default_factory=Redactor)
    guard: InterruptGuard = field(default_factory=lambda: InterruptGuard(grace=60.0))
    ansible_retries: int = 3
    ansible_retry_delay: float = 5.0
    import_retries: int = 3  # import plans while the container is not visible (or still locked) yet
    import_retry_delay: float = 5.0
    allow_destroy: frozenset[str] = frozenset()  # stacks whose plan may delete or replace resources

    def say(self, line: str) -> None:
        if self.on_output is not None:
            self.on_output(line)


@dataclass
class Outcome:
    """How one stack ended, before the runner adds timing and paths."""

    result: Result  # succeeded | failed | interrupted
    changed: int | None = None
    note: str = ""
    commands: list[list[str]] = field(default_factory=list)
