"""The journal: runs, steps, per-service smoke results, status per service, and no secrets."""

from __future__ import annotations

import pytest

from ralf.journal import Journal
from ralf.planner import build_plan


def finish(j, run_id, idx, result, **kw):
    j.update_step(run_id, idx, result=result, finished_at=kw.pop("at", "2026-11-27T08:00:00+00:00"),
                  duration=kw.pop("duration", 1.5), **kw)


def test_default_path_follows_ralf_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    with Journal() as j:
        assert j.path == tmp_path / "state" / "journal.sqlite3"
    assert (tmp_path / "state" / "journal.sqlite3").stat().st_mode & 0o077 == 0


def test_runs_and_steps_round_trip(journal, default_catalog):
    plan = build_plan(default_catalog, "n8n")
    rid = journal.start_run(plan, executor="semaphore", request_args={"request": "n8n"})
    finish(journal, rid, 0, "succeeded", task_id=41, task_url="http://x/project/1/templates/3?t=41")
    finish(journal, rid, 1, "failed", task_id=42, triage={"category": "smoke", "next_action": "do x"})
    journal.finish_run(rid, "failed")
    run = journal.run(rid)
    assert run["request"] == "n8n" and run["pattern"] == "service" and run["fingerprint"] == plan.fingerprint()
    assert run["request_args"] == {"request": "n8n"}
    assert [s["result"] for s in run["steps"]] == ["succeeded", "failed"]
    assert run["steps"][1]["triage"]["category"] == "smoke"
    assert run["steps"][0]["stacks"] == ["044-n8n-lxc", "045-n8n-config"]
    recent = journal.recent_runs(5)
    assert recent[0]["id"] == rid and recent[0]["failed_step"] == "RALF Automation Smoke"
    assert recent[0]["steps_succeeded"] == 1 and recent[0]["steps_total"] == 2
    assert journal.latest_run(unfinished_only=True)["id"] == rid
    assert journal.run(9999) is None


def test_service_status_in_runbook_order(journal, default_catalog):
    rows = journal.service_status(default_catalog)
    expected = [s for g in default_catalog.group_names for s in default_catalog.services_of(g)]
    assert [r["service"] for r in rows] == expected
    assert all(r["last_apply"] is None and r["last_smoke"] is None for r in rows)

    plan = build_plan(default_catalog)  # standard order: vault apply+smoke, automation apply fails
    rid = journal.start_run(plan, executor="semaphore")
    finish(journal, rid, 0, "succeeded", at="2026-11-27T08:00:00+00:00")
    finish(journal, rid, 1, "succeeded", at="2026-11-27T08:01:00+00:00")
    finish(journal, rid, 2, "failed", at="2026-11-27T08:02:00+00:00")
    journal.finish_run(rid, "failed")
    by = {r["service"]: r for r in journal.service_status(default_catalog)}
    assert by["vaultwarden"]["group"] == "vault"
    assert by["vaultwarden"]["last_apply"] == {"result": "succeeded", "at": "2026-11-27T08:00:00+00:00",
                                               "run_id": rid, "template": "RALF Vault Apply"}
    assert by["vaultwarden"]["last_smoke"]["result"] == "succeeded"
    assert by["vaultwarden"]["last_smoke"]["template"] == "RALF Vault Smoke"
    assert by["n8n"]["last_apply"]["result"] == "failed"
    assert by["n8n"]["last_smoke"] is None
    assert by["exo"]["last_apply"] is None

    # a later per-service smoke result wins over the older group step, with its diagnosis
    plan2 = build_plan(default_catalog, "communication")
    rid2 = journal.start_run(plan2, executor="local")
    finish(journal, rid2, 1, "failed", at="2026-11-27T09:00:00+00:00")
    journal.record_smoke(rid2, 1, "mail", "FAIL", failed_layer="service in CT", diagnosis="mail: FAIL at service in CT",
                         at="2026-11-27T09:00:00+00:00")
    journal.record_smoke(rid2, 1, "synapse", "OK", cert_days_left=60, at="2026-11-27T09:00:00+00:00")
    by = {r["service"]: r for r in journal.service_status(default_catalog)}
    assert by["mail"]["last_smoke"]["result"] == "failed"
    assert by["mail"]["last_smoke"]["diagnosis"] == "mail: FAIL at service in CT"
    assert by["synapse"]["last_smoke"]["result"] == "succeeded"
    assert by["synapse"]["last_smoke"]["cert_days_left"] == 60
    assert by["synapse"]["last_apply"] is None  # the apply step of run 2 never ran


def test_carried_over_steps_do_not_count_as_new_applies(journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    rid = journal.start_run(plan, executor="semaphore")
    finish(journal, rid, 0, "succeeded", at="2026-11-27T08:00:00+00:00")
    rid2 = journal.start_run(plan, executor="semaphore", resumed_from=rid)
    finish(journal, rid2, 0, "succeeded", from_run=rid, at="2026-11-27T08:00:00+00:00")
    by = {r["service"]: r for r in journal.service_status(default_catalog)}
    assert by["vaultwarden"]["last_apply"]["run_id"] == rid


def test_journal_holds_no_secret_columns(journal):
    cols = set()
    for table in ("runs", "steps", "smoke_results"):
        cols |= {r[1] for r in journal.db.execute(f"PRAGMA table_info({table})")}
    assert not {c for c in cols if any(w in c for w in ("token", "password", "secret"))}


def test_unopenable_journal_is_one_clear_error(tmp_path):
    import pytest

    from ralf.errors import RalfError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RalfError, match="cannot open the journal"):
        Journal(blocker / "journal.sqlite3")
    bad = tmp_path / "bad.sqlite3"
    bad.write_text("not a database" * 100)
    with pytest.raises(RalfError, match="cannot open the journal"):
        Journal(bad)


def test_service_status_keeps_the_diagnosis_of_the_same_step_even_when_the_clock_ticked(tmp_path, lab_platform):
    """The per-service smoke row is written a moment before its step finishes; it must still win."""
    from ralf.catalog import Catalog
    from ralf.journal import Journal

    j = Journal(tmp_path / "journal.sqlite3")
    db = j.db
    db.execute("INSERT INTO steps (run_id, idx, template, kind, target, result, finished_at, stacks)"
               " VALUES (1, 0, 'RALF Web Smoke', 'smoke', 'web', 'failed', '2026-11-27T08:00:01', '[]')")
    db.execute("INSERT INTO smoke_results (run_id, idx, service, status, failed_layer, diagnosis, cert_days_left, at)"
               " VALUES (1, 0, 'portal', 'FAIL', 'nginx/TLS', 'portal: FAIL at nginx/TLS — certificate expired 3 days ago',"
               " -3, '2026-11-27T08:00:00')")
    db.commit()
    row = next(r for r in j.service_status(Catalog(lab_platform)) if r["service"] == "portal")
    assert row["last_smoke"]["diagnosis"] == "portal: FAIL at nginx/TLS — certificate expired 3 days ago"
    assert row["last_smoke"]["cert_days_left"] == -3


# ---------------------------------------------------------------- runs whose ralf process died

KILLED_RALF = r"""
import os, signal, sys
from ralf.catalog import Catalog
from ralf.journal import Journal
from ralf.loader import load_platform
from ralf.planner import build_plan

plan = build_plan(Catalog(load_platform(sys.argv[2])), "vault")
j = Journal(sys.argv[1])
rid = j.start_run(plan, executor="semaphore", request_args={"request": "vault", "changed": None,
                                                           "changed_from": None, "repo_root": None})
j.update_step(rid, 0, result="succeeded", finished_at="2026-11-27T08:00:00+00:00", duration=1.0, task_id=7)
j.update_step(rid, 1, result="running", started_at="2026-11-27T08:00:01+00:00", task_id=8)
os.kill(os.getpid(), signal.SIGKILL)  # no finally, no finish_run: like a power cut
"""


@pytest.mark.slow  # starts and kills ralf
def test_a_run_whose_ralf_was_killed_is_interrupted_and_resumes_from_its_step(tmp_path, repo_root, default_catalog):
    import os
    import subprocess
    import sys

    from ralf.deploy import resume_point

    path = tmp_path / "journal.sqlite3"
    p = subprocess.run([sys.executable, "-c", KILLED_RALF, str(path), str(repo_root / "platform.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -9, p.stderr
    with Journal(path) as j:
        [run] = j.recent_runs(5)
        assert run["result"] == "interrupted" and run["finished_at"]
        assert run["owner_pid"] not in (None, os.getpid())
        steps = j.run(run["id"])["steps"]
        assert [s["result"] for s in steps] == ["succeeded", "stopped"]
        assert "ended without finishing" in steps[1]["message"] and "task 8 may still be running" in steps[1]["message"]
        old, plan, start = resume_point(j, None, lambda args: build_plan(default_catalog, args["request"]))
        assert old["id"] == run["id"] and start == 1


def test_a_live_or_foreign_running_run_is_left_running_and_not_resumed(journal, default_catalog):
    import os

    import pytest

    from ralf.deploy import resume_point
    from ralf.errors import UsageError
    from ralf.journal import current_owner, this_host

    plan = build_plan(default_catalog, "vault")
    args = {"request": "vault"}
    me = current_owner()
    live = journal.start_run(plan, executor="semaphore", request_args=args)  # this process: alive
    foreign = journal.start_run(plan, executor="semaphore", request_args=args,
                                owner={"pid": 1, "host": this_host() + "-elsewhere", "start": "x:1"})
    reused = journal.start_run(plan, executor="semaphore", request_args=args,  # our pid, another start: not us
                               owner={"pid": os.getpid(), "host": this_host(), "start": "other-boot:1"})
    legacy = journal.start_run(plan, executor="semaphore", request_args=args, owner={})  # no owner recorded
    for rid in (live, foreign, reused, legacy):
        journal.update_step(rid, 0, result="running")
    results = {r["id"]: r["result"] for r in journal.recent_runs(10)}
    assert results == {live: "running", foreign: "running", reused: "interrupted", legacy: "running"}
    assert journal.run(live)["owner_pid"] == me["pid"] and journal.run(live)["owner_start"] == me["start"]
    build = lambda a: build_plan(default_catalog, a["request"])  # noqa: E731
    with pytest.raises(UsageError, match=f"running on host {this_host()}-elsewhere"):
        resume_point(journal, str(foreign), build)
    with pytest.raises(UsageError, match="still running .ralf pid"):
        resume_point(journal, str(live), build)
    with pytest.raises(UsageError, match="still marked running"):
        resume_point(journal, str(legacy), build)
    assert resume_point(journal, str(reused), build)[2] == 0


def test_an_old_journal_gets_the_owner_columns(tmp_path, default_catalog):
    import sqlite3

    from ralf.journal import SCHEMA

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the schema before owners were recorded: no owner_* columns
    db.execute("INSERT INTO runs (started_at, pattern, fingerprint, executor) VALUES ('2026-01-01', 'A', 'f', 'local')")
    db.commit()
    db.close()
    with Journal(path) as j:
        assert j.recent_runs(5)[0]["result"] == "running" and j.recent_runs(5)[0]["owner_pid"] is None
        rid = j.start_run(build_plan(default_catalog, "vault"), executor="local")
        assert j.run(rid)["owner_host"]
