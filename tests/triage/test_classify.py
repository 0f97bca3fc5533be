"""Triage classification from real-looking log excerpts (tests/triage/logs/*.txt, expectations in `#!` lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ralf.errors import RalfError
from ralf.planner import Step
from ralf.triage import classify, triage
from ralf.triage.checks import CheckOutcome
from ralf.triage.rules import classify_lines, parse_rules

LOGS = sorted((Path(__file__).parent / "logs").glob("*.txt"))


def load_case(path: Path) -> tuple[dict[str, str], list[str]]:
    expect: dict[str, str] = {}
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("#! "):
            key, _, value = raw[3:].partition(":")
            expect[key.strip()] = value.strip()
        else:
            lines.append(raw)
    return expect, lines


def step_for(catalog, name: str) -> Step:
    t = catalog.template(name)
    return Step(t.name, t.kind, t.stacks, t.target, "test")


def test_there_are_log_cases():
    assert len(LOGS) >= 10


@pytest.mark.parametrize("path", LOGS, ids=[p.stem for p in LOGS])
def test_log_is_classified_as_expected(path, default_catalog):
    expect, lines = load_case(path)
    step = step_for(default_catalog, expect["step"])
    assert step.kind == expect["kind"]
    t = classify(lines, step, default_catalog, rerun="ralf deploy --resume 7")
    assert t.category == expect["category"], (t.rule, t.evidence)
    assert t.cause == expect["cause"]
    for key in ("service", "stack", "host", "layer"):
        if key in expect:
            assert getattr(t, key) == expect[key], key
    if "next contains" in expect:
        assert expect["next contains"] in t.next_action
    assert "?" not in t.summary.replace("?t=", ""), t.summary
    if "checks" in expect:
        from ralf.triage import _checks_for

        assert _checks_for(t, step) == expect["checks"].split()


def test_ansible_next_action_matches_the_runbook(default_catalog):
    _, lines = load_case(Path(__file__).parent / "logs" / "ansible_unreachable.txt")
    t = classify(lines, step_for(default_catalog, "RALF Automation Apply"), default_catalog)
    assert t.next_action.startswith("ansible failed on n8n")
    assert "`ralf deploy n8n` reruns RALF N8N Apply" in t.next_action


def test_phase1_service_is_rerun_through_phase1_config_apply(default_catalog):
    lines = ["TASK [gitea : restart]", 'fatal: [gitea]: FAILED! => {"msg": "x"}']
    t = classify(lines, step_for(default_catalog, "RALF Phase1 Config Apply"), default_catalog)
    assert t.service == "gitea"
    assert "RALF Phase1 Config Apply" in t.next_action


def test_smoke_rules_do_not_classify_an_apply_step_and_vice_versa(default_catalog):
    smoke_line = ["[smoke] n8n: FAIL at app port — connection refused"]
    t = classify(smoke_line, step_for(default_catalog, "RALF Automation Apply"), default_catalog)
    assert t.category == "unknown"
    ansible_line = ['fatal: [n8n]: FAILED! => {"msg": "x"}']
    t = classify(ansible_line, step_for(default_catalog, "RALF Automation Smoke"), default_catalog)
    assert t.category == "smoke"  # unclassified smoke failure, not an ansible one


def test_executor_error_is_classified_as_semaphore(default_catalog):
    err = "Semaphore at https://10.10.40.10 did not answer POST /api/project/1/tasks: connection failed (refused)"
    t = classify([], step_for(default_catalog, "RALF Vault Apply"), default_catalog, error=err)
    assert (t.category, t.cause) == ("semaphore", "unreachable")
    assert "041-semaphore-config" in t.next_action
    auth = "Semaphore GET /api/project/1/tasks/4 answered 401: not authenticated"
    t = classify([], step_for(default_catalog, "RALF Vault Apply"), default_catalog, error=auth)
    assert (t.category, t.cause) == ("semaphore", "auth")


def test_task_stuck_in_queue_is_no_runner(default_catalog):
    t = classify(["Task 3 added to queue"], step_for(default_catalog, "RALF Vault Apply"), default_catalog,
                 error="task never left the queue (status waiting): no runner picked it up")
    assert (t.category, t.cause) == ("semaphore", "no runner")


def test_ansi_escapes_are_ignored(default_catalog):
    lines = ["\x1b[0;31mfatal: [vaultwarden]: FAILED! => {}\x1b[0m"]
    t = classify(lines, step_for(default_catalog, "RALF Vault Apply"), default_catalog)
    assert t.category == "ansible" and t.service == "vaultwarden"


def test_first_checks_run_through_probes(default_catalog):
    calls = []

    class FakeProbes:
        def run(self, name, target=None):
            calls.append((name, target))
            return CheckOutcome(name, name != "minio", f"{name} probed")

    _, lines = load_case(Path(__file__).parent / "logs" / "tofu_minio_down.txt")
    t = triage(lines, step_for(default_catalog, "RALF Vault Apply"), default_catalog, probes=FakeProbes())
    assert calls == [("minio", "vaultwarden"), ("proxmox", "vaultwarden")]
    assert [c.ok for c in t.checks] == [False, True]
    assert any("FAIL minio" in line for line in t.lines())
    t2 = triage(lines, step_for(default_catalog, "RALF Vault Apply"), default_catalog, probes=FakeProbes(),
                run_checks=False)
    assert t2.checks == []


def test_broken_rules_are_one_clear_error():
    with pytest.raises(RalfError, match="category"):
        parse_rules({"rules": [{"id": "x", "category": "nope", "patterns": ["a"]}]})
    with pytest.raises(RalfError, match="bad pattern"):
        parse_rules({"rules": [{"id": "x", "category": "tofu", "patterns": ["("]}]})
    with pytest.raises(RalfError, match="rules"):
        parse_rules([1, 2])


def test_custom_rules_are_data():
    rules = parse_rules({"rules": [{"id": "disk", "category": "ansible", "cause": "disk full",
                                    "patterns": ["No space left on device"]}]})
    m = classify_lines(["write failed: No space left on device"], rules=rules)
    assert m is not None and m.rule.cause == "disk full"
    assert classify_lines(["all good"], rules=rules) is None


def test_evidence_never_keeps_a_secret(default_catalog):
    lines = ['fatal: [n8n]: FAILED! => {"msg": "login failed", "cmd": "psql password=Sup3rS3cret token: abc123"}']
    t = classify(lines, step_for(default_catalog, "RALF Automation Apply"), default_catalog)
    assert t.category == "ansible"
    assert "Sup3rS3cret" not in t.evidence and "abc123" not in t.evidence
    assert "password=***" in t.evidence
