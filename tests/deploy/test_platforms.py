"""One journal, two platforms: the default platform (through the fake Semaphore) and a lab copy (locally),
from one state directory. Each `status`, `history` and `--resume` sees only its own platform's runs; a
smoke run on its own counts; the commands ralf prints work when pasted; a resume after a failed Smoke
restarts at the Apply it checks."""

from __future__ import annotations

import json
import shlex

import pytest
from lab.lab_support import write_test_lab

from ralf.hints import commands_in

from .conftest import PORTAL_FAIL


@pytest.fixture
def default(platform_args):
    return platform_args


@pytest.fixture
def lab(tmp_path):
    return ["--platform", str(write_test_lab(tmp_path / "lab"))]


@pytest.fixture
def local(local_stub):
    return local_stub


def _status(run_cli, platform, env) -> dict[str, dict]:
    code, out, err = run_cli(*platform, "status", "--json", env=env)
    assert code in (0, 1), err
    return {s["service"]: s for s in json.loads(out)["services"]}


def _history(run_cli, platform, env) -> list[int]:
    code, out, err = run_cli(*platform, "history", "--json", env=env)
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def test_each_platform_sees_only_its_own_runs(run_cli, env, fake, default, lab, local):
    # the lab: Phase 1 succeeds (its phase1 smoke must say nothing about the real platform's Phase 1)
    code, out, err = run_cli(*lab, "deploy", "phase1", "--executor", "local", "--no-checks", "--yes", env=env)
    assert code == 0, out + err
    # the lab: the standard order fails at RALF Web Smoke
    local["fail"] = {"RALF Web Smoke"}
    code, out, err = run_cli(*lab, "deploy", "--executor", "local", "--no-checks", env=env)
    assert code == 1 and "step 2/4 RALF Web Smoke failed" in out, out + err
    # the default platform, through Semaphore: n8n's Apply fails
    fake.script("RALF N8N Apply", "error", 0.05, log=['fatal: [n8n]: FAILED! => {"msg": "x"}'])
    code, out, err = run_cli(*default, "deploy", "n8n", "--no-checks", env=env)
    assert code == 1, out + err

    real, mine = _status(run_cli, default, env), _status(run_cli, lab, env)
    assert set(real) & set(mine) == set()
    assert real["minio"]["state"] == "never" and real["postgres"]["state"] == "never"  # lab's phase1 smoke is not theirs
    assert real["n8n"]["state"] == "fail"
    assert mine["store"]["state"] == "ok" and mine["portal"]["state"] == "fail"
    assert mine["portal"]["note"] == PORTAL_FAIL

    assert _history(run_cli, default, env) == [3]
    assert _history(run_cli, lab, env) == [2, 1]
    code, out, _ = run_cli(*default, "history", "--all", env=env)
    assert code == 0 and "ralf-lab" in out and len([ln for ln in out.splitlines() if ln[:1].isdigit()]) == 3

    # --resume without a run picks this platform's failed run; a run id resumes on its own platform file
    code, out, err = run_cli(*default, "deploy", "--resume", "--dry-run", env=env)
    assert code == 0 and "RALF N8N Apply" in out and "RALF Web" not in out, out + err
    code, out, err = run_cli(*lab, "deploy", "--resume", "--dry-run", env=env)
    assert code == 0 and "RALF Web Smoke" in out and "N8N" not in out, out + err
    code, out, err = run_cli("deploy", "--resume", "2", "--dry-run", env={**env, "RALF_PLATFORM": default[1]})
    assert code == 0 and "RALF Web Smoke" in out, out + err
    code, _, err = run_cli(*default, "deploy", "--resume", "2", env=env)
    assert code == 2 and "run 2 was for the platform file" in err and lab[1] in err


def test_a_smoke_run_on_its_own_counts_and_is_never_resumed(run_cli, env, lab, local):
    """`ralf smoke` is journaled for its platform: the board shows its result and time."""
    code, out, err = run_cli(*lab, "deploy", "--executor", "local", "--no-checks", env=env)
    assert code == 0, out + err
    assert _status(run_cli, lab, env)["portal"]["state"] == "ok"

    code, out, err = run_cli(*lab, "smoke", "echo", env=env)  # nothing listens on the test lab's addresses
    assert code == 1 and "FAIL" in out, out + err
    after = _status(run_cli, lab, env)
    assert after["echo"]["state"] == "fail" and after["echo"]["last_smoke"]["template"] == "ralf smoke echo"
    assert after["echo"]["last_smoke"]["age"] < 60
    assert after["portal"]["state"] == "ok"  # the smoke checked echo only
    runs = json.loads(run_cli(*lab, "history", "--json", env=env)[1])
    assert runs[0]["pattern"] == "smoke" and runs[0]["request"] == "echo" and runs[0]["result"] == "failed"

    code, _, err = run_cli(*lab, "deploy", "--resume", env=env)
    assert code == 2 and "no failed or stopped run" in err  # the smoke is not a deploy to resume
    code, _, err = run_cli(*lab, "deploy", "--resume", str(runs[0]["id"]), env=env)
    assert code == 2 and "smoke run on its own" in err


def test_every_printed_command_works_when_pasted(run_cli, env, lab, local):
    local["fail"] = {"RALF Web Smoke"}
    code, out, err = run_cli(*lab, "deploy", "--executor", "local", "--no-checks", env=env)
    assert code == 1
    hints = commands_in(out)
    platform = f"--platform {shlex.quote(lab[1])}"
    assert hints == [f"ralf smoke portal {platform}", f"ralf deploy portal {platform}",
                     f"ralf deploy --resume 1 {platform}"], out

    code, out, err = run_cli(*shlex.split(hints[0])[1:], env=env)  # checks portal for real: it is down
    assert code == 1 and "portal" in out and "unknown target" not in err, out + err

    local["fail"], local["used"] = set(), []
    code, out, err = run_cli(*shlex.split(hints[1])[1:], "--no-checks", env=env)
    assert code == 0 and local["used"] == ["RALF Portal Apply", "RALF Web Smoke"], out + err

    local["used"] = []
    code, out, err = run_cli(*shlex.split(hints[2])[1:], env=env)
    assert code == 0, out + err
    assert "resuming run 1 at step 1" in out
    # the Apply–Smoke pair is the unit: the fix reaches the platform before its Smoke runs again
    assert local["used"] == ["RALF Web Apply", "RALF Web Smoke", "RALF API Apply", "RALF API Smoke"]


def test_only_failed_step_keeps_the_old_resume(run_cli, env, lab, local):
    local["fail"] = {"RALF Web Smoke"}
    assert run_cli(*lab, "deploy", "--executor", "local", "--no-checks", env=env)[0] == 1
    local["fail"], local["used"] = set(), []
    code, out, err = run_cli(*lab, "deploy", "--resume", "--only-failed-step", "--no-checks", env=env)
    assert code == 0, out + err
    assert "resuming run 1 at step 2" in out
    assert local["used"] == ["RALF Web Smoke", "RALF API Apply", "RALF API Smoke"]
    code, _, err = run_cli(*lab, "deploy", "--only-failed-step", env=env)
    assert code == 2 and "--only-failed-step goes with --resume" in err
