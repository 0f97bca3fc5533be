"""The journal: runs, steps, per-service smoke results, status per service, and no secrets."""

from __future__ import annotations

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
