"""`ralf deploy` through Semaphore refuses when Semaphore's repository would run another commit than the operator's.

A bare repository in tmp_path stands for the repository Semaphore's project points at (the platform's
Gitea); the operator's checkout is a clone of it. Real git on both sides.
"""

from __future__ import annotations

import subprocess

import pytest
from local_tls import local_tls

GIT_ENV = {"GIT_AUTHOR_NAME": "op", "GIT_AUTHOR_EMAIL": "op@example.test", "GIT_COMMITTER_NAME": "op",
           "GIT_COMMITTER_EMAIL": "op@example.test"}


def git(cwd, *args) -> str:
    import os

    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


@pytest.fixture
def repos(tmp_path, fake):
    bare = tmp_path / "gitea" / "ralf.git"
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare", "-b", "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / "README").write_text("one\n")
    git(work, "add", "README")
    git(work, "commit", "-q", "-m", "one")
    git(work, "push", "-q", "origin", "main")
    fake.insert("repositories", fake.project_id, name="RALF Local", git_url=f"file://{bare}", git_branch="main",
                ssh_key_id=0)
    return bare, work


@pytest.fixture
def cli_env(fake, tmp_path):
    return {"RALF_STATE_DIR": str(tmp_path / "state"), "SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": fake.token}


def deploy(run_cli, repo_root, work, cli_env, *extra):
    return run_cli("--platform", str(repo_root / "platform.yaml"), "deploy", "n8n", "--no-checks",
                   "--repo", str(work), *extra, env=cli_env)


def test_unpushed_commit_is_refused_with_both_ids_and_the_fix(run_cli, repo_root, repos, cli_env, fake):
    bare, work = repos
    pushed = git(work, "rev-parse", "HEAD")
    (work / "README").write_text("two\n")
    git(work, "commit", "-q", "-am", "two")
    mine = git(work, "rev-parse", "HEAD")
    code, out, err = deploy(run_cli, repo_root, work, cli_env)
    assert code == 1
    assert (f"Semaphore would run {pushed} (main at file://{bare}), but your HEAD is {mine}; "
            "push your commit: `git push <remote> HEAD:main`") in err
    assert "Traceback" not in err and fake.tasks == {}

    git(work, "push", "-q", "origin", "main")
    code, out, err = deploy(run_cli, repo_root, work, cli_env)
    assert code == 0, err
    assert f"commit check: Semaphore will run {mine[:12]} (main at file://{bare}), your HEAD" in err
    assert len(fake.tasks) == 2  # RALF N8N Apply, RALF Automation Smoke


def test_a_checkout_behind_is_told_to_pull_and_the_check_can_be_skipped(run_cli, repo_root, repos, cli_env, fake):
    bare, work = repos
    old = git(work, "rev-parse", "HEAD")
    (work / "README").write_text("two\n")
    git(work, "commit", "-q", "-am", "two")
    git(work, "push", "-q", "origin", "main")
    git(work, "reset", "-q", "--hard", old)
    code, out, err = deploy(run_cli, repo_root, work, cli_env)
    assert code == 1 and "your checkout is behind: `git pull`" in err and old in err
    code, out, err = deploy(run_cli, repo_root, work, cli_env, "--no-commit-check")
    assert code == 0, err
    assert len(fake.tasks) == 2


def test_a_repository_only_the_semaphore_host_can_read_is_reported_not_guessed(run_cli, repo_root, repos, cli_env,
                                                                                 fake):
    bare, work = repos
    repo = fake.find("repositories", fake.project_id, "RALF Local")[0]
    fake.edit("repositories", repo["id"], git_url="file:///opt/ralf/repo")
    code, out, err = deploy(run_cli, repo_root, work, cli_env)
    assert code == 0, err
    assert "Semaphore runs file:///opt/ralf/repo (main), a path on the Semaphore host" in err


# ---------------------------------------------------------------------- the repository is the mirror in Gitea

GITEA_USER, GITEA_PASSWORD = "ralf", "gitea-admin-password"


@pytest.fixture
def gitea_tls(tmp_path):
    return local_tls(tmp_path / "gitea", "test platform CA")


@pytest.fixture
def mirrored(tmp_path, repo_root, repos, fake, gitea_tls, cli_env):
    """The default platform whose Semaphore repository is the mirror, in a fake Gitea, of the operator's remote."""
    import yaml
    from doubles.gitea import FakeGitea

    bare, work = repos
    source = f"file://{bare}"
    with FakeGitea(tls=gitea_tls[1], users={GITEA_USER: GITEA_PASSWORD}) as gitea:
        gitea.remotes[source] = {"main": git(work, "rev-parse", "HEAD")}
        data = yaml.safe_load((repo_root / "platform.yaml").read_text())
        data["mirror"].update(url=gitea.url, source_url=source, ca_file=str(gitea_tls[0]))
        pfile = tmp_path / "platform.yaml"
        pfile.write_text(yaml.safe_dump(data, sort_keys=False))
        secrets = tmp_path / "secrets"
        secrets.mkdir(mode=0o700)
        (secrets / "gitea.env").write_text(f"GITEA_ADMIN_USER={GITEA_USER}\nGITEA_ADMIN_PASSWORD={GITEA_PASSWORD}\n")
        env = {**cli_env, "RALF_SECRETS_DIR": str(secrets)}
        repo = fake.find("repositories", fake.project_id, "RALF Local")[0]
        fake.edit("repositories", repo["id"], git_url=f"{gitea.url}ralf/RALF.git")
        yield gitea, pfile, env, bare, work


def mdeploy(run_cli, pfile, work, env):
    return run_cli("--platform", str(pfile), "deploy", "n8n", "--no-checks", "--repo", str(work), env=env)


def test_the_mirror_lagging_behind_a_pushed_commit_is_refused_until_mirror_sync(run_cli, mirrored, fake):
    gitea, pfile, env, bare, work = mirrored
    code, out, err = run_cli("--platform", str(pfile), "mirror", "ensure", env=env)
    assert code == 0, err
    assert "made ralf/RALF: a pull mirror of file://" in out
    one = git(work, "rev-parse", "HEAD")
    # a commit pushed to the operator's remote: Gitea has not fetched it yet
    (work / "README").write_text("two\n")
    git(work, "commit", "-q", "-am", "two")
    git(work, "push", "-q", "origin", "main")
    two = git(work, "rev-parse", "HEAD")
    gitea.remotes[f"file://{bare}"]["main"] = two
    gitea.requests.clear()
    code, out, err = mdeploy(run_cli, pfile, work, env)
    assert code == 1 and fake.tasks == {}
    assert (f"Semaphore would run {one} (main of the mirror ralf/RALF in Gitea), but your HEAD is {two}; you pushed "
            f"it to file://{bare}, but the mirror has not fetched it yet: `ralf mirror sync`") in err
    assert gitea.reads_and_writes() == [("GET", "/api/v1/repos/ralf/RALF/branches/main")]

    code, out, err = run_cli("--platform", str(pfile), "mirror", "sync", "--wait", "10", env=env)
    assert code == 0, err
    assert f"main: {one} → {two}" in out
    assert ("POST", "/api/v1/repos/ralf/RALF/mirror-sync", None) in gitea.requests
    code, out, err = mdeploy(run_cli, pfile, work, env)
    assert code == 0, err
    assert f"commit check: Semaphore will run {two[:12]} (main of the mirror ralf/RALF in Gitea), your HEAD" in err
    assert GITEA_PASSWORD not in out + err


def test_an_unpushed_commit_is_told_to_push_then_sync(run_cli, mirrored, fake):
    gitea, pfile, env, bare, work = mirrored
    assert run_cli("--platform", str(pfile), "mirror", "ensure", env=env)[0] == 0
    (work / "README").write_text("local only\n")
    git(work, "commit", "-q", "-am", "local only")
    code, out, err = mdeploy(run_cli, pfile, work, env)
    assert code == 1 and fake.tasks == {}
    assert (f"push your commit to file://{bare} (`git push <remote> HEAD:main`), then `ralf mirror sync` (Gitea "
            f"fetches file://{bare} every 10m by itself)") in err


def test_a_missing_mirror_is_named_with_its_fix(run_cli, mirrored, fake):
    gitea, pfile, env, bare, work = mirrored
    code, out, err = mdeploy(run_cli, pfile, work, env)
    assert code == 1 and "the mirror ralf/RALF in Gitea has no branch main" in err
    code, out, err = run_cli("--platform", str(pfile), "mirror", "status", env=env)
    assert code == 1 and "ralf/RALF does not exist in Gitea: `ralf mirror ensure`" in out


# ------------------------------------------------------------------ every verdict, with git and Gitea stubbed


MINE, THEIRS = "a" * 40, "b" * 40


class _Repos:
    def __init__(self, url: str) -> None:
        self.url = url

    def list_repositories(self, project_id):
        return [{"name": "R", "git_url": self.url, "git_branch": "main"}]


def _git(heads: dict[str, str | None], behind: bool):
    """git as the check calls it: HEAD is MINE, ``heads`` maps a remote URL to its main, merge-base says ``behind``."""
    from ralf.errors import RalfError

    def run(args, cwd=None):
        if args[0] == "rev-parse":
            return MINE + "\n"
        if args[0] == "ls-remote":
            sha = heads.get(args[1])
            return f"{sha}\trefs/heads/main\n" if sha else ""
        if args[0] == "merge-base":
            if behind:
                return ""
            raise RalfError("not an ancestor")
        raise AssertionError(args)

    return run


@pytest.mark.parametrize(("theirs", "behind", "status", "text"), [
    (MINE, False, "same", f"Semaphore will run {MINE[:12]} (main at https://r.test/x.git), your HEAD"),
    (None, False, "differs", "branch main does not exist at https://r.test/x.git, the repository Semaphore runs; "
                             "push it: `git push <remote> HEAD:main`"),
    (THEIRS, True, "differs", f"Semaphore would run {THEIRS} (main at https://r.test/x.git), but your HEAD is {MINE}; "
                              f"your checkout is behind: `git pull` (or deploy from {THEIRS[:12]})"),
    (THEIRS, False, "differs", f"Semaphore would run {THEIRS} (main at https://r.test/x.git), but your HEAD is "
                               f"{MINE}; push your commit: `git push <remote> HEAD:main` (Gitea mirrors the "
                               "operator's remote), then deploy again"),
], ids=["same", "missing", "behind", "ahead"])
def test_every_verdict_on_a_repository_ralf_can_ask(tmp_path, theirs, behind, status, text):
    from ralf.deploy.commit_check import check_commit

    url = "https://r.test/x.git"
    result = check_commit(_Repos(url), 1, "R", tmp_path, git=_git({url: theirs}, behind))
    assert (result.status, result.message, result.operator) == (status, text, MINE)
    assert result.semaphore == theirs


@pytest.mark.parametrize(("head", "pushed", "behind", "status", "fix"), [
    (MINE, None, False, "same", None),
    (None, None, False, "differs", "the mirror o/n in Gitea has no branch main: push it to https://src.test/n.git "
                                   "(`git push <remote> HEAD:main`), then SYNC"),
    (THEIRS, None, True, "differs", f"your checkout is behind: `git pull` (or deploy from {THEIRS[:12]})"),
    (THEIRS, MINE, False, "differs", "you pushed it to https://src.test/n.git, but the mirror has not fetched it yet: "
                                     "SYNC"),
    (THEIRS, THEIRS, False, "differs", "push your commit to https://src.test/n.git (`git push <remote> HEAD:main`), "
                                       "then SYNC"),
], ids=["same", "missing", "behind", "pushed-not-fetched", "not-pushed"])
def test_every_verdict_on_the_mirror(tmp_path, head, pushed, behind, status, fix):
    from types import SimpleNamespace

    from ralf.deploy.commit_check import check_commit

    mirror = SimpleNamespace(owner="o", name="n", clone_url="https://gitea.test/o/n.git",
                             source_url="https://src.test/n.git", interval="10m")
    gitea = SimpleNamespace(branch=lambda owner, name, branch: None if head is None else {"commit": {"id": head}})
    result = check_commit(_Repos(mirror.clone_url), 1, "R", tmp_path, mirror=mirror, gitea=gitea,
                          git=_git({mirror.source_url: pushed}, behind))
    sync = "`ralf mirror sync` (Gitea fetches https://src.test/n.git every 10m by itself)"
    if status == "same":
        assert result.message == f"Semaphore will run {MINE[:12]} (main of the mirror o/n in Gitea), your HEAD"
    elif head is None:
        assert result.message == fix.replace("SYNC", sync)
    else:
        assert result.message == (f"Semaphore would run {THEIRS} (main of the mirror o/n in Gitea), but your HEAD is "
                                  f"{MINE}; " + fix.replace("SYNC", sync))
    assert result.status == status
