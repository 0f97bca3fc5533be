"""Reading the fake server's state in tests: the seeded project's id and one object by name."""

from __future__ import annotations

# Gitea's sign-in the seeder puts into Semaphore's key for cloning the mirror (conftest stands it in)
GITEA_LOGIN = {"login": "ralf", "password": "gitea-password-for-semaphore"}


def project_id(fake, name: str = "RALF Bootstrap") -> int:
    return next(p["id"] for p in fake.projects.values() if p["name"] == name)


def one(fake, kind: str, name: str) -> dict:
    """The single object of ``kind`` called ``name`` in the seeded project (fails on none or several)."""
    found = fake.find(kind, project_id(fake), name)
    assert len(found) == 1, (kind, name, found)
    return found[0]
