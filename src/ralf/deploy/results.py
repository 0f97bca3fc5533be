"""What executing a plan produces: one :class:`StepOutcome` per executed step and a :class:`RunReport`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, FAILED, STOPPED, NOT_RUN = "succeeded", "failed", "stopped", "not run"


@dataclass
class StepOutcome:
    """What an executor reports for one step."""

    result: str  # succeeded | failed | stopped
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
class StepReport:
    index: int
    step: Any
    result: str = NOT_RUN
    duration: float | None = None
    task_id: int | None = None
    task_url: str | None = None
    message: str = ""
    from_run: int | None = None
    triage: Any = None

    def to_dict(self) -> dict:
        return {
            "index": self.index + 1,
            "template": self.step.template,
            "kind": self.step.kind,
            "result": self.result,
            "duration": None if self.duration is None else round(self.duration, 3),
            "task_id": self.task_id,
            "task_url": self.task_url,
            "message": self.message,
            "from_run": self.from_run,
            "triage": self.triage.to_dict() if self.triage is not None else None,
        }


@dataclass
class RunReport:
    run_id: int
    plan: Any
    executor: str
    steps: list[StepReport]
    result: str = "running"  # succeeded | failed | stopped | interrupted
    resumed_from: int | None = None
    platform_source: str | None = None  # the platform file, for the commands the summary suggests

    @property
    def ok(self) -> bool:
        return all(s.result == SUCCEEDED for s in self.steps)

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        return 130 if self.result == "interrupted" else 1

    @property
    def failed_step(self) -> StepReport | None:
        return next((s for s in self.steps if s.result in (FAILED, STOPPED)), None)

    def to_dict(self) -> dict:
        f = self.failed_step
        return {
            "run_id": self.run_id,
            "result": self.result,
            "exit_code": self.exit_code,
            "executor": self.executor,
            "resumed_from": self.resumed_from,
            "plan": self.plan.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "triage": f.triage.to_dict() if f is not None and f.triage is not None else None,
        }
