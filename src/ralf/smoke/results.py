"""What a smoke run returns: one result per check, per service and for the whole target.

Statuses of a check: OK, WARN, FAIL, SKIPPED (an earlier layer failed) and NOT CHECKED (its
transport is not configured; never counted as passed). A service is FAIL when any check failed,
else WARN when any warned or when none of its checks could run (all NOT CHECKED), else OK; its ``failed_layer`` and ``diagnosis`` name the first failing
layer, which is where the runbook's triage starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ralf.serial import Record
from ralf.states import CheckStatus

OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL
SKIPPED, NOT_CHECKED = CheckStatus.SKIPPED, CheckStatus.NOT_CHECKED


@dataclass
class CheckResult(Record):
    json_fields = ("layer", "kind", "name", "endpoint", "status", "detail", "duration_ms", "cert_days_left")
    json_omit_empty = ("cert_days_left",)

    layer: str
    kind: str
    name: str
    endpoint: str
    status: CheckStatus
    detail: str = ""
    duration_ms: int = 0
    cert_days_left: int | None = None


@dataclass
class ServiceResult(Record):
    json_fields = ("name", "group", "status", "failed_layer", "diagnosis", "cert_days_left", "not_checked=not_checked_count",
                   "duration_ms", "checks")

    name: str
    group: str
    checks: list[CheckResult] = field(default_factory=list)
    failed_layer: str | None = None
    diagnosis: str | None = None
    duration_ms: int = 0

    @property
    def status(self) -> CheckStatus:
        statuses = {c.status for c in self.checks}
        if FAIL in statuses:
            return FAIL
        if WARN in statuses:
            return WARN
        if statuses == {NOT_CHECKED}:
            return WARN  # nothing could be checked at all: never report that as passed
        return OK

    @property
    def cert_days_left(self) -> int | None:
        days = [c.cert_days_left for c in self.checks if c.cert_days_left is not None]
        return min(days) if days else None

    @property
    def not_checked(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == NOT_CHECKED]

    @property
    def not_checked_count(self) -> int:
        return len(self.not_checked)


@dataclass
class SmokeReport(Record):
    json_fields = ("target", "ok", "exit_code", "transport", "duration_ms", "summary", "services")

    target: str
    services: list[ServiceResult] = field(default_factory=list)
    duration_ms: int = 0
    transport: str = "none"

    @property
    def ok(self) -> bool:
        return all(s.status != FAIL for s in self.services)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def failed(self) -> list[ServiceResult]:
        return [s for s in self.services if s.status == FAIL]

    def counts(self) -> dict[CheckStatus, int]:
        out = {OK: 0, WARN: 0, FAIL: 0}
        for s in self.services:
            out[s.status] += 1
        return out

    def service(self, name: str) -> ServiceResult:
        return next(s for s in self.services if s.name == name)

    @property
    def summary(self) -> dict[str, int]:
        c = self.counts()
        return {"services": len(self.services), "ok": c[OK], "warn": c[WARN], "fail": c[FAIL]}

    def journal_rows(self) -> list[dict]:
        """One row per service, as the journal keeps smoke results."""
        return [{"service": s.name, "status": s.status, "failed_layer": s.failed_layer, "diagnosis": s.diagnosis,
                 "cert_days_left": s.cert_days_left} for s in self.services]
