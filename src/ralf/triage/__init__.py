"""Triage of a failed step: classify it from its log, run the runbook's first checks, say what to do next.

    t = triage(log_lines, step, catalog, probes=Probes(platform))
    t.category, t.cause, t.summary, t.next_action, t.checks

Classification rules are data (``rules.yaml``); see :mod:`ralf.triage.rules`. The first checks
live in :mod:`ralf.triage.checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ralf.serial import Record
from ralf.triage.checks import CheckOutcome, Probes
from ralf.triage.rules import Match, classify_lines, default_rules

__all__ = ["Triage", "triage", "classify", "Probes", "CheckOutcome"]


@dataclass
class Triage(Record):
    json_fields = ("category", "cause", "rule", "summary", "next_action", "evidence", "service", "stack", "host",
                   "layer", "checks")

    category: str
    cause: str
    summary: str
    next_action: str
    rule: str | None = None
    evidence: str | None = None
    service: str | None = None
    stack: str | None = None
    host: str | None = None
    layer: str | None = None
    checks: list[CheckOutcome] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"triage: {self.category} — {self.summary}"]
        if self.evidence:
            out.append(f"  evidence: {self.evidence[:200]}")
        for c in self.checks:
            out.append(f"  check {c.line()}")
        out.append(f"  next: {self.next_action}")
        return out


_SECRETISH = re.compile(r"(?i)\b([\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*)(\s*[=:]\s*|\s+)(\"[^\"]*\"|'[^']*'|\S+)")


def redact(line: str) -> str:
    """Hide values that look like secrets (``password=...``, ``token: ...``) before a line is kept."""
    return _SECRETISH.sub(lambda m: f"{m.group(1)}{m.group(2)}***", line)


class _Fmt(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _service_for_host(catalog: Any, host: str | None) -> str | None:
    if not host or catalog is None:
        return None
    for name, svc in catalog.platform.services.items():
        if host in (name, svc.hostname, svc.ip) or host.split(".")[0] == svc.hostname.split(".")[0]:
            return name
    return None


def _semaphore_config_stack(catalog: Any) -> str:
    if catalog is not None:
        for st in catalog.stacks:
            if st.role == "config" and ("semaphore" in st.service or "semaphore" in st.name):
                return st.name
    return "the Semaphore config stack"


def classify(lines: list[str], step: Any = None, catalog: Any = None, *, rerun: str | None = None,
             error: str | None = None, rules=None) -> Triage:
    """Classify a failed step from its log lines (and the executor's own error, if it had one)."""
    kind = getattr(step, "kind", None)
    all_lines = list(lines) + ([error] if error else [])
    m: Match | None = classify_lines(all_lines, kind=kind, rules=rules if rules is not None else default_rules())
    caps = dict(m.captures) if m else {}
    host = caps.get("host")
    stack = caps.get("stack")
    service = caps.get("service")
    if service and catalog is not None and service not in catalog.platform.services:
        service = _service_for_host(catalog, service) or service
    if not service:
        service = _service_for_host(catalog, host)
    if not service and caps.get("check") and catalog is not None:
        service = _service_for_host(catalog, caps["check"].split("-")[0])
    if not service and stack and catalog is not None and stack in catalog.stack_index:
        service = catalog.stack_index[stack].service
    step_stacks = tuple(getattr(step, "stacks", ()) or ())
    if catalog is not None and not service and step_stacks:
        owners = {catalog.stack_index[s].service for s in step_stacks if s in catalog.stack_index}
        if len(owners) == 1:
            service = owners.pop()
    if catalog is not None and not service and kind == "smoke":
        target = catalog.targets.get(getattr(step, "target", None) or "")
        if target is not None and len(target.services) == 1:
            service = target.services[0]
    if not stack and len(step_stacks) == 1:
        stack = step_stacks[0]

    template = getattr(step, "template", None) or "the step"
    if m is None:
        category = {"smoke": "smoke", "apply": "unknown"}.get(kind or "", "unknown")
        cause = "smoke check failed" if category == "smoke" else "unclassified"
        summary = ("the smoke template failed but its log names no failing service" if category == "smoke"
                   else "no known error pattern in the log")
        smoke_target = getattr(step, "target", None) or "?"
        nxt = ("check in order: the unit inside its CT, then nginx/TLS, then the app port (`ralf smoke "
               + smoke_target + "`); then `{rerun}`" if category == "smoke"
               else "read the step's log above; then `{rerun}`")
        rule_id, evidence = None, None
    else:
        category, cause, summary, nxt = m.rule.category, m.rule.cause, m.rule.summary, m.rule.next
        rule_id, evidence = m.rule.id, redact(m.line)

    f = _Fmt(caps)
    f.update(
        host=host or "?", service=service or "?", stack=stack or "?", layer=caps.get("layer") or "?",
        detail=caps.get("detail") or "?", template=template,
        rerun=rerun or "ralf deploy --resume",
        stack_in=f" in {stack}" if stack else "",
        task_in=f" (task {caps['task']})" if caps.get("task") else "",
        layer_at=f" at layer {caps['layer']}" if caps.get("layer") else "",
        host_or_service=host or service or "the host",
        service_or_host=service or host or "the service",
        service_q=service or "<service>",
        config_stack=_semaphore_config_stack(catalog),
    )
    if catalog is not None:
        ph = catalog.platform.phase1_group
        p1 = catalog.template_name(ph.word, "Config Apply")
        f["phase1_config_apply"] = p1
        f["phase1_config_apply_q"] = f'"{p1}"'
        if service and service in catalog.platform.services:
            f["service_apply"] = (catalog.service_apply(service) if catalog.group_of(service) != catalog.phase1
                                  else p1)
            if catalog.group_of(service) != catalog.phase1:
                f["group_smoke"] = catalog.group_smoke(catalog.group_of(service))
        sb = catalog.platform.state_backend
        if sb is not None:
            f["state_endpoint"], f["state_bucket"] = sb.endpoint, sb.bucket
        if catalog.platform.proxmox is not None:
            f["proxmox_api"] = catalog.platform.proxmox.api_url
    if "service_apply" not in f:
        f["service_apply"] = template
    return Triage(
        category=category, cause=cause, summary=summary.format_map(f), next_action=nxt.format_map(f),
        rule=rule_id, evidence=evidence, service=service, stack=stack, host=host, layer=caps.get("layer"),
    )


def triage(lines: list[str], step: Any = None, catalog: Any = None, *, rerun: str | None = None,
           error: str | None = None, probes: Probes | None = None, run_checks: bool = True) -> Triage:
    """Classify, then run the rule's first checks (when ``run_checks`` and probes are given)."""
    t = classify(lines, step, catalog, rerun=rerun, error=error)
    if not run_checks or probes is None:
        return t
    names = _checks_for(t, step)
    target = t.service or getattr(step, "target", None)
    for name in names:
        t.checks.append(probes.run(name, target))
    return t


def _checks_for(t: Triage, step: Any) -> list[str]:
    rule = next((r for r in default_rules() if r.id == t.rule), None)
    if rule is not None:
        return list(rule.checks)
    if t.category == "smoke":
        return ["smoke"]
    return ["semaphore"]
