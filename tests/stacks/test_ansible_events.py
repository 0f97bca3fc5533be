"""Ansible results as data: the ``ralf_events`` callback's JSON lines, read from a real capture and a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ralf.stacks.ansible_events import (
    CALLBACK,
    EVENTS_ENV,
    PLUGIN_DIR,
    HostRecap,
    PlaybookEvents,
    TaskProblem,
    callback_env,
    parse_events,
    read_events,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "ansible"
CAPTURE = DATA / "mixed-run.events.jsonl"


def test_the_captured_run_reads_as_its_recap_failures_and_unreachable_hosts():
    ev = read_events(CAPTURE)
    assert ev.recap == [
        HostRecap("a", ok=3, changed=2, unreachable=0, failed=1, skipped=1, rescued=1, ignored=1),
        HostRecap("b", ok=3, changed=2, unreachable=0, failed=1, skipped=0, rescued=1, ignored=1),
        HostRecap("d", ok=0, changed=0, unreachable=1, failed=0, skipped=0, rescued=0, ignored=0),
    ]
    assert ev.failed_hosts == ["a", "b"] and ev.unreachable_hosts == ["d"] and ev.changed == 4
    # the ignored failure and the rescued one come first in the stream; the failure that counted is named
    assert ev.first_failure("a") == TaskProblem("a", "fails inside block", "block boom")
    assert [f.task for f in ev.failures if f.host == "a"] == ["ignored failure", "fails inside block", "boom"]
    assert ev.failures[0].ignored and not ev.failures[2].ignored
    no_log = next(f for f in ev.failures if f.task == "secret fails")
    assert "s3cr3t" not in no_log.msg and "no_log" in no_log.msg  # Ansible censors before callbacks see it
    assert ev.unreachable == [TaskProblem("d", "write the file", ev.unreachable[0].msg)]
    assert "Connection refused" in ev.unreachable[0].msg


def test_a_host_unreachable_and_failed_is_not_worth_a_retry():
    ev = parse_events('{"event": "stats", "hosts": {"h": {"unreachable": 1, "failed": 1}, "g": {"unreachable": 2}}}')
    assert ev.failed_hosts == ["h"] and ev.unreachable_hosts == ["g"]


def test_no_stats_means_no_recap_and_a_torn_last_line_is_skipped():
    text = CAPTURE.read_text().splitlines()
    torn = "\n".join(text[:3] + [text[3][:25]])  # the run was killed while writing its fourth event
    ev = parse_events(torn)
    assert ev.recap is None and ev.changed is None and ev.failed_hosts == [] and len(ev.failures) == 2
    assert read_events(DATA / "no-such-file.jsonl") == PlaybookEvents()


def test_unknown_events_and_odd_values_do_not_break_the_reader():
    ev = parse_events('{"event": "playbook_start"}\n[1, 2]\n'
                      '{"event": "stats", "hosts": {"h": {"ok": "3", "changed": true, "failed": 1}, "x": 5}}\n')
    assert ev.recap == [HostRecap("h", ok=0, changed=0, failed=1)]


def test_callback_env_keeps_the_users_callbacks():
    env = callback_env({"ANSIBLE_CALLBACKS_ENABLED": "profile_tasks", "ANSIBLE_CALLBACK_PLUGINS": "/mine"},
                       Path("/run/x.jsonl"))
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == f"profile_tasks,{CALLBACK}"
    assert env["ANSIBLE_CALLBACK_PLUGINS"] == f"{PLUGIN_DIR}{os.pathsep}/mine"
    assert env[EVENTS_ENV] == "/run/x.jsonl"
    again = callback_env(env, Path("/run/y.jsonl"))
    assert again["ANSIBLE_CALLBACKS_ENABLED"] == f"profile_tasks,{CALLBACK}"


@pytest.mark.slow
def test_the_capture_is_what_the_callback_writes_in_a_real_run(tmp_path):
    """The data file stays honest: the same playbook, run for real, gives the same events."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text((DATA / "mixed-run.inventory.ini").read_text().replace("{python}", sys.executable))
    events = tmp_path / "events.jsonl"
    env = callback_env(dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path / "home"),
                            ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp")), events)
    binary = Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(binary), "-i", str(inventory), "-e", f"out_dir={tmp_path}",
                           str(DATA / "mixed-run.playbook.yml")], env=env, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == 4, proc.stderr  # failed hosts and an unreachable one
    assert "PLAY RECAP" in proc.stdout  # the human output is still there for the operator
    real, captured = read_events(events), read_events(CAPTURE)
    assert real.recap == captured.recap
    # hosts report in the order their workers finish: compare each host's own sequence
    assert sorted((f.host, f.task, f.msg, f.ignored) for f in real.failures) == sorted(
        (f.host, f.task, f.msg, f.ignored) for f in captured.failures)
    for host in ("a", "b"):
        assert [f.task for f in real.failures if f.host == host] == [
            f.task for f in captured.failures if f.host == host]
    assert [(u.host, u.task) for u in real.unreachable] == [(u.host, u.task) for u in captured.unreachable]
