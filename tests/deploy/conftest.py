"""Fixtures for deploy tests: a seeded FakeSemaphore on 127.0.0.1, a client, a journal, offline probes."""

from __future__ import annotations

import pytest

from ralf.triage.checks import CheckOutcome

PROJECT = "RALF Bootstrap"
PORTAL_FAIL = "portal: FAIL at nginx/TLS — certificate expired 3 days ago"


class OfflineProbes:
    """First checks that never touch the network; records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def run(self, name: str, target: str | None = None) -> CheckOutcome:
        self.calls.append((name, target))
        return CheckOutcome(name, True, f"{name} fine (offline probe)")


@pytest.fixture
def fake(default_catalog):
    from doubles.semaphore import FakeSemaphore

    with FakeSemaphore(version="2.16") as srv:
        pid = srv.add_project(PROJECT)
        for t in default_catalog.templates:
            srv.insert("templates", pid, name=t.name, app="bash", playbook="run.sh")
        for t in default_catalog.templates:
            srv.script(t.name, "success", 0.1, log=[f"working on {t.name}"])
        srv.project_id = pid
        yield srv


@pytest.fixture
def client(fake):
    from ralf.semaphore.client import SemaphoreClient

    c = SemaphoreClient(fake.url, token=fake.token, retries=3, backoff=0.02)
    yield c
    c.close()


@pytest.fixture
def journal(tmp_path):
    from ralf.journal import Journal

    j = Journal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


@pytest.fixture
def probes():
    return OfflineProbes()


@pytest.fixture
def env(fake, tmp_path):
    """Environment for CLI runs: a state directory of the test's own, the default platform's Semaphore at the fake.

    Runs pass --no-checks, which keeps the first checks from probing the default platform's 10.x addresses.
    """
    return {"RALF_STATE_DIR": str(tmp_path / "state"), "SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": fake.token}


@pytest.fixture
def platform_args(repo_root):
    """``--platform`` naming the repository's (the user's) platform file."""
    return ["--platform", str(repo_root / "platform.yaml")]


@pytest.fixture
def local_stub(monkeypatch):
    """The local executor replaced by one that records the templates it runs (``used``) and succeeds, except
    the templates named in ``fail``, which fail as a Smoke of portal at nginx/TLS would."""
    import ralf.deploy
    from ralf.deploy.results import FAILED, SUCCEEDED, StepOutcome

    state: dict = {"used": [], "fail": set()}

    class StubLocal:
        name = "local"

        def __init__(self, platform, **kw):
            pass

        def prepare(self, plan):
            pass

        def run_step(self, step, ctx):
            state["used"].append(step.template)
            if step.template in state["fail"]:
                smoke = [{"service": "portal", "status": "FAIL", "failed_layer": "nginx/TLS",
                          "diagnosis": PORTAL_FAIL, "cert_days_left": -3}]
                return StepOutcome(FAILED, message="smoke failed: portal", log=[PORTAL_FAIL], smoke=smoke)
            return StepOutcome(SUCCEEDED)

    monkeypatch.setattr(ralf.deploy, "LocalExecutor", StubLocal)
    return state
