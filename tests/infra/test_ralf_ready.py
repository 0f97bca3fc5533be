"""A role ends only when its app answers: the ``ralf_ready`` wait, run for real on localhost.

It passes (changing nothing) when the URL answers 200, and fails within its deadline naming the
unit and quoting its last journal lines when nothing answers.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _play(tmp_path: Path, ready_vars: str, timeout: float = 120) -> subprocess.CompletedProcess:
    (tmp_path / "roles").symlink_to(REPO / "ansible" / "roles")
    (tmp_path / "play.yml").write_text(textwrap.dedent("""\
        - name: Wait
          hosts: all
          gather_facts: false
          tasks:
            - name: Wait for the app
              ansible.builtin.include_role:
                name: ralf_ready
              vars:
        """) + textwrap.indent(textwrap.dedent(ready_vars), " " * 8))
    ansible = Path(sys.executable).parent / "ansible-playbook"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    return subprocess.run([str(ansible), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", "play.yml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_the_wait_passes_unchanged_when_the_app_answers(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = _play(tmp_path, f"""\
            ralf_ready_unit: demo
            ralf_ready_url: http://127.0.0.1:{server.server_address[1]}/health
            ralf_ready_timeout: 10
            """)
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "changed=0" in r.stdout and "failed=0" in r.stdout


@pytest.mark.parametrize("how", ["url", "port"])
def test_the_wait_fails_naming_the_unit_and_its_journal_when_nothing_answers(tmp_path, how):
    port = free_port()
    target = f"ralf_ready_url: http://127.0.0.1:{port}/health" if how == "url" else f"ralf_ready_port: {port}"
    r = _play(tmp_path, f"""\
        ralf_ready_unit: ralf-never-started
        {target}
        ralf_ready_timeout: 2
        """)
    assert r.returncode != 0
    where = f"http://127.0.0.1:{port}/health" if how == "url" else f"127.0.0.1:{port}"
    assert f"ralf-never-started did not answer on {where} within 2 s" in r.stdout
    assert "Last journal lines of ralf-never-started" in r.stdout


def test_a_hung_app_is_given_up_on_at_the_deadline_not_after_every_try_timed_out(tmp_path):
    # The port accepts (the kernel's backlog) but nothing ever answers, as a SIGSTOPped app: each try
    # waits out its request timeout. Counted tries (20 s / 2 s each plus 5 s per timeout) took 70 s.
    hung = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        r = _play(tmp_path, f"""\
            ralf_ready_unit: ralf-hung
            ralf_ready_url: http://127.0.0.1:{hung.getsockname()[1]}/health
            ralf_ready_timeout: 20
            """, timeout=50)
    finally:
        hung.close()
    assert r.returncode != 0
    assert "ralf-hung did not answer on" in r.stdout and "within 20 s (last try:" in r.stdout, r.stdout[-3000:]
    assert "timed out" in r.stdout
