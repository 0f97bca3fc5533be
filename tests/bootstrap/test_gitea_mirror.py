"""The repository mirror in Gitea through the API seam, against the Gitea double (HTTPS on 127.0.0.1).

Requests are asserted exactly; each refusal Gitea documents ends in one message with the fix.
"""

from __future__ import annotations

import pytest
from doubles.gitea import FakeGitea
from local_tls import local_tls

from ralf.gitea.api import GiteaApi, GiteaError
from ralf.gitea.mirror import DESCRIPTION, duration_seconds, ensure_mirror, sync_mirror
from ralf.model import Mirror
from ralf.pki import CA

SOURCE = "https://git.operator.example/ralf/RALF.git"
ONE, TWO = "1" * 40, "2" * 40
REPO = "/api/v1/repos/ralf/RALF"


@pytest.fixture
def tls(tmp_path):
    return local_tls(tmp_path, "test platform CA")


@pytest.fixture
def gitea(tls):
    with FakeGitea(tls=tls[1], users={"ralf": "pw", "dev": "devpw"}, admins={"ralf"}) as srv:
        srv.remotes[SOURCE] = {"main": ONE}
        yield srv


def api(gitea, tls, user="ralf", password="pw") -> GiteaApi:
    return GiteaApi(gitea.url, user, password, ca_file=tls[0])


def mirror(gitea, **kw) -> Mirror:
    return Mirror(url=gitea.url, source_url=kw.pop("source_url", SOURCE), **kw)


def test_duration_seconds_reads_gitea_and_platform_spellings():
    assert duration_seconds("10m0s") == duration_seconds("10m") == 600
    assert duration_seconds("8h0m0s") == 8 * 3600 and duration_seconds("1h30m") == 5400
    assert duration_seconds("0s") == duration_seconds("0") == 0


def test_missing_mirror_is_migrated_then_left_alone(gitea, tls):
    m = mirror(gitea)
    with api(gitea, tls) as a:
        first = ensure_mirror(a, m, "main")
        assert first.changed and first.head == ONE
        assert gitea.requests == [
            ("GET", REPO, None),
            ("POST", "/api/v1/repos/migrate", {"clone_addr": SOURCE, "repo_owner": "ralf", "repo_name": "RALF",
                                               "mirror": True, "mirror_interval": "10m", "private": True,
                                               "service": "git", "description": DESCRIPTION}),
            ("GET", f"{REPO}/branches/main", None)]
        gitea.requests.clear()
        again = ensure_mirror(a, m, "main")
    assert not again.changed and gitea.writes() == []
    assert "ralf/RALF mirrors https://git.operator.example/ralf/RALF.git every 10m0s: nothing to change" in again.lines


def test_a_changed_interval_is_patched(gitea, tls):
    with api(gitea, tls) as a:
        ensure_mirror(a, mirror(gitea), "main")
        gitea.requests.clear()
        r = ensure_mirror(a, mirror(gitea, interval="1h"), "main")
    assert r.changed and gitea.writes() == [("PATCH", REPO, {"mirror_interval": "1h"})]
    assert "ralf/RALF: interval 10m0s → 1h" in r.lines


def test_a_repository_that_is_no_mirror_or_mirrors_another_source_is_not_touched(gitea, tls):
    gitea.repos[("ralf", "RALF")] = {"id": 9, "mirror": False, "interval": 0, "private": True, "description": "",
                                     "original_url": ""}
    with api(gitea, tls) as a, pytest.raises(GiteaError, match="exists in Gitea but is not a mirror"):
        ensure_mirror(a, mirror(gitea), "main")
    gitea.repos[("ralf", "RALF")].update(mirror=True, original_url="https://elsewhere.example/x.git")
    with api(gitea, tls) as a, pytest.raises(GiteaError, match="mirrors https://elsewhere.example/x.git, not"):
        ensure_mirror(a, mirror(gitea), "main")
    assert gitea.writes() == []


def test_gitea_refusals_end_in_one_message_with_the_fix(gitea, tls):
    with api(gitea, tls) as a, pytest.raises(GiteaError) as e:
        ensure_mirror(a, mirror(gitea, source_url="https://unreachable.example/r.git"), "main")
    assert e.value.status == 422 and "ALLOW_LOCALNETWORKS" in str(e.value) and "Migration failed" in str(e.value)
    with api(gitea, tls, password="wrong") as a, pytest.raises(GiteaError) as e:
        ensure_mirror(a, mirror(gitea), "main")
    assert e.value.status == 401 and "wrong" not in str(e.value)
    with api(gitea, tls, user="dev", password="devpw") as a, pytest.raises(GiteaError) as e:
        ensure_mirror(a, mirror(gitea), "main")  # not an admin, and the mirror would belong to ralf
    assert e.value.status == 403 and "must be an admin or own 'ralf'" in str(e.value)
    with api(gitea, tls) as a, pytest.raises(GiteaError, match="has no branch trunk: push it"):
        ensure_mirror(a, mirror(gitea), "trunk")


def test_tls_is_verified_against_the_platform_ca(gitea, tmp_path):
    other = CA(tmp_path / "other" / "ca.pem", tmp_path / "other" / "ca.key")
    other.ensure()
    with GiteaApi(gitea.url, "ralf", "pw", ca_file=str(other.cert_file)) as a, pytest.raises(GiteaError) as e:
        a.repo("ralf", "RALF")
    assert "its TLS certificate is not trusted" in str(e.value) and gitea.requests == []


def test_sync_queues_a_fetch_and_waits_until_the_branch_moves(gitea, tls):
    with api(gitea, tls) as a:
        ensure_mirror(a, mirror(gitea), "main")
        gitea.remotes[SOURCE]["main"] = TWO
        gitea.requests.clear()
        before, after = sync_mirror(a, mirror(gitea), "main", wait=10, poll=0.02)
    assert (before, after) == (ONE, TWO)
    assert gitea.writes() == [("POST", f"{REPO}/mirror-sync", None)]


def test_sync_of_a_repository_that_is_not_a_mirror_says_so(gitea, tls):
    gitea.repos[("ralf", "RALF")] = {"id": 9, "mirror": False, "interval": 0, "private": True, "description": "",
                                     "original_url": ""}
    with api(gitea, tls) as a, pytest.raises(GiteaError, match="is not a mirror in Gitea .*`ralf bootstrap` makes"):
        sync_mirror(a, mirror(gitea), "main", wait=0.1, poll=0.02)
