"""`ralf deploy` through Semaphore refuses when Semaphore's repository would run another commit than the operator's.

A bare repository in tmp_path stands for the repository Semaphore's project points at (the platform's
Gitea); the operator's checkout is a clone of it. Real git on both sides.
"""

from __future__ import annotations

import subprocess

import pytest

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
