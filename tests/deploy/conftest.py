"""Fixtures for deploy tests: a seeded FakeSemaphore on 127.0.0.1, a client, a journal, offline probes."""

from __future__ import annotations

import pytest

from ralf.triage.checks import CheckOutcome

PROJECT = "RALF Bootstrap"


class OfflineProbes:
    """First checks that never touch the network; records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def run(self, name: str, target: str | None = None) -> CheckOutcome:
        self.calls.append((name, target))
        return CheckOutcome(name, True, f"{name} fine (offline probe)")


@pytest.fixture
def fake(default_catalog):
    from ralf.semaphore.fake import FakeSemaphore

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
