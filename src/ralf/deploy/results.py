"""What executing a plan produces: one :class:`StepOutcome` per executed step and a :class:`RunReport`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ralf.serial import Record
from ralf.states import Result

SUCCEEDED, FAILED, STOPPED, NOT_RUN = Result.SUCCEEDED, Result.FAILED, Result.STOPPED, Result.NOT_RUN


@dataclass
class StepOutcome:
    """What an executor reports for one step."""

    result: Result  # succeeded | failed | stopped
    task_id: int | None = None
    task_url: str | None = None
    message: str = ""
    error: str | None = None  # the executor's own error (no log line), fed to triage
    log: list[str] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: stop the whole run
    smoke: list[dict] = field(default_factory=list)  # per-service smoke results, when known


@dataclass
class StepContext:
    """Hooks an executor calls while a step runs (the orchestrator streams, journals and reports)."""

    index: int
    total: int
    run_id: int
    timeout: float
    on_line: Callable[[str], None] = lambda line: None
    on_status: Callable[[str], None] = lambda status: None
    on_task: Callable[[int, str | None], None] = lambda task_id, url: None
    #: a resumed step's earlier attempts, newest first, ``{"run_id", "task_id", "result", "message"}`` each:
    #: their tasks may have gone on after ralf lost sight of them
    earlier: list[dict] = field(default_factory=list)
    wants_log: bool = True  # False (--no-log): an executor need not fetch the log of a step that succeeds


@dataclass
class StepReport(Record):
    json_fields = ("index=number", "template", "kind", "result", "duration", "task_id", "task_url", "message",
                   "from_run", "triage")

    index: int
    step: Any
    result: Result = NOT_RUN
    duration: float | None = None
    task_id: int | None = None
    task_url: str | None = None
    message: str = ""
    from_run: int | None = None
    triage: Any = None

    @property
    def number(self) -> int:
        """The step's number as people count (1-based)."""
        return self.index + 1

    @property
    def template(self) -> str:
        return str(self.step.template)

    @property
    def kind(self) -> str:
        return str(self.step.kind)

    def json_shape(self, data: dict) -> dict:
        data["duration"] = None if self.duration is None else round(self.duration, 3)
        return data


@dataclass
class RunReport(Record):
    json_fields = ("run_id", "result", "exit_code", "executor", "resumed_from", "plan", "steps", "triage")

    run_id: int
    plan: Any
    executor: str
    steps: list[StepReport]
    result: Result = Result.RUNNING  # then succeeded | failed | stopped | interrupted
    resumed_from: int | None = None
    platform_source: str | None = None  # the platform file, for the commands the summary suggests

    @property
    def ok(self) -> bool:
        return all(s.result == SUCCEEDED for s in self.steps)

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        return 130 if self.result == Result.INTERRUPTED else 1

    @property
    def failed_step(self) -> StepReport | None:
        return next((s for s in self.steps if s.result in (FAILED, STOPPED)), None)

    @property
    def triage(self) -> Any:
        """The failed step's triage (None when no step failed)."""
        f = self.failed_step
        return f.triage if f is not None else None
