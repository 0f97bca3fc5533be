"""A deploy through the library facade (`ralf.deploy.plan_request` / `plan_resume` / `run`), without the CLI."""

from __future__ import annotations

import io
import signal

import pytest

import ralf.deploy
from ralf.deploy import Reporter
from ralf.deploy.results import SUCCEEDED, StepOutcome
from ralf.errors import UsageError


@pytest.fixture
def semaphore_env(env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_a_request_runs_through_semaphore_and_is_journaled(default_catalog, fake, journal, probes, semaphore_env):
    planned = ralf.deploy.plan_request(default_catalog, "n8n")
    assert [s.template for s in planned.plan.steps] == ["RALF N8N Apply", "RALF Automation Smoke"]
    out = io.StringIO()
    notices: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    report = ralf.deploy.run(default_catalog, planned, journal=journal, probes=probes, commit_check=False,
                             reporter=Reporter(out), notice=notices.append)
    assert report.ok and report.exit_code == 0 and report.executor == "semaphore"
    assert [s.result for s in report.steps] == [SUCCEEDED, SUCCEEDED]
    assert sorted(fake.tasks) == [s.task_id for s in report.steps]  # one Semaphore task per step, in order
    assert "[RALF N8N Apply] working on RALF N8N Apply" in out.getvalue()  # the task's log, streamed
    assert notices == []  # Semaphore is the platform's own choice: nothing to remark
    assert journal.run(report.run_id)["result"] == SUCCEEDED
    assert signal.getsignal(signal.SIGTERM) is before  # SIGTERM handling was the run's only


def test_a_failed_run_resumes_at_its_pair(default_catalog, fake, journal, probes, semaphore_env):
    fake.script("RALF Automation Smoke", "error", 0.05, log=["[smoke] n8n: FAIL at app — HTTP 502"])
    first = ralf.deploy.run(default_catalog, ralf.deploy.plan_request(default_catalog, "n8n"), journal=journal,
                            probes=probes, commit_check=False, reporter=Reporter(io.StringIO()))
    assert first.exit_code == 1 and first.failed_step.step.template == "RALF Automation Smoke"
    assert first.failed_step.triage is not None and probes.calls  # triaged, with the first checks

    fake.script("RALF Automation Smoke", "success", 0.05)
    planned = ralf.deploy.plan_resume(default_catalog, journal)
    assert planned.resume["run"]["id"] == first.run_id and planned.executor == "semaphore"
    assert planned.resume["start_index"] == 0  # a failed Smoke reruns the Apply it checks
    again = ralf.deploy.run(default_catalog, planned, journal=journal, probes=probes, commit_check=False,
                            reporter=Reporter(io.StringIO()))
    assert again.ok and again.resumed_from == first.run_id

    fake.script("RALF Automation Smoke", "error", 0.05)  # fails again: this time resume at the Smoke itself
    third = ralf.deploy.run(default_catalog, ralf.deploy.plan_request(default_catalog, "n8n"), journal=journal,
                            probes=probes, commit_check=False, reporter=Reporter(io.StringIO()))
    planned = ralf.deploy.plan_resume(default_catalog, journal, str(third.run_id), only_failed_step=True)
    assert planned.resume["start_index"] == 1


def test_without_a_semaphore_section_it_runs_locally_and_says_so(lab_platform, local_stub, journal):
    from ralf.catalog import Catalog

    catalog = Catalog(lab_platform)
    notices: list[str] = []
    report = ralf.deploy.run(catalog, ralf.deploy.plan_request(catalog, "web"), journal=journal, checks=False,
                             reporter=Reporter(io.StringIO()), notice=notices.append)
    assert report.ok and report.executor == "local"
    assert local_stub["used"] == ["RALF Web Apply", "RALF Web Smoke"]
    assert notices == ["the platform file has no semaphore section: running locally (--executor local)"]


def test_an_executor_object_is_used_as_given(default_catalog, journal):
    class Recorder:
        name = "recorder"

        def __init__(self) -> None:
            self.steps: list[str] = []

        def prepare(self, plan) -> None:
            pass

        def run_step(self, step, ctx) -> StepOutcome:
            self.steps.append(step.template)
            return StepOutcome(SUCCEEDED)

    ex = Recorder()
    report = ralf.deploy.run(default_catalog, ralf.deploy.plan_request(default_catalog, "vault"), executor=ex,
                             journal=journal, checks=False, reporter=Reporter(io.StringIO()))
    assert report.ok and report.executor == "recorder"
    assert ex.steps == ["RALF Vault Apply", "RALF Vault Smoke"]


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"executor": "ssh"}, "unknown executor 'ssh'"),
    ({"timeout": 0}, "--timeout must be a positive"),
    ({"timeout": float("nan")}, "--timeout must be a positive"),
])
def test_bad_options_are_refused_before_anything_runs(default_catalog, journal, kwargs, problem):
    with pytest.raises(UsageError, match=problem):
        ralf.deploy.run(default_catalog, ralf.deploy.plan_request(default_catalog, "vault"), journal=journal,
                        **kwargs)
    assert journal.recent_runs(10) == []


def test_semaphore_executor_needs_a_semaphore_section(lab_platform, journal):
    from ralf.catalog import Catalog

    catalog = Catalog(lab_platform)
    with pytest.raises(UsageError, match="no semaphore section; use --executor local"):
        ralf.deploy.run(catalog, ralf.deploy.plan_request(catalog, "web"), executor="semaphore", journal=journal)
