"""Fixtures for the Semaphore tests: the fake server in both generations, clients, the API spec's facts."""

from __future__ import annotations

import pytest
from sem_spec import load_spec
from sem_state import GITEA_LOGIN


@pytest.fixture(autouse=True)
def gitea_login(monkeypatch):
    """The default platform's repository is its mirror in Gitea: seeding creates Semaphore's key with Gitea's
    sign-in, read from the secrets directory (tests/bootstrap reads the real file); here a fixed one."""
    import ralf.semaphore.desired

    monkeypatch.setattr(ralf.semaphore.desired, "_gitea_login", lambda platform: dict(GITEA_LOGIN))
    return GITEA_LOGIN


@pytest.fixture(params=["2.10", "2.16"])
def fake(request):
    from doubles.semaphore import FakeSemaphore

    with FakeSemaphore(request.param) as sem:
        yield sem


@pytest.fixture
def fake216():
    from doubles.semaphore import FakeSemaphore

    with FakeSemaphore("2.16") as sem:
        yield sem


@pytest.fixture
def client(fake):
    from ralf.semaphore.client import SemaphoreClient

    with SemaphoreClient(fake.url, token=fake.token, retries=2, backoff=0.01) as c:
        yield c


@pytest.fixture(scope="session")
def desired(default_catalog):
    from ralf.semaphore.desired import desired_state

    return desired_state(default_catalog)


@pytest.fixture(scope="session")
def api_spec():
    return load_spec()
