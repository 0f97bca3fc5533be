"""The lab's process supervisor: start/stop/is-active per unit, pid files, readiness, no strays."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pytest
from ports import free_port

from ralf.lab import paths, supervisor
from ralf.lab.supervisor import LabError

pytestmark = pytest.mark.slow  # starts and stops real processes (the lab's units)

def write_unit(name: str, argv: list, ready=None, **extra) -> None:
    paths.units_dir().mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, **({"ready": ready} if ready else {}), **extra}
    (paths.units_dir() / f"{name}.json").write_text(json.dumps(spec))


def web_unit(name: str, port: int) -> None:
    write_unit(name, [sys.executable, "-m", "ralf.lab.web", "--name", name, "--host", "127.0.0.1",
                      "--port", port], ready=["127.0.0.1", port])


def test_start_is_idempotent_and_stop_ends_the_process(state):
    port = free_port()
    web_unit("t-web", port)
    assert not supervisor.is_active("t-web")
    assert supervisor.start("t-web") == "started"
    pid = supervisor.main_pid("t-web")
    assert pid and supervisor.listening("127.0.0.1", port)
    assert supervisor.start("t-web") == "running"
    assert supervisor.main_pid("t-web") == pid
    assert supervisor.stop("t-web") == "stopped"
    assert not supervisor.is_active("t-web")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
    assert not supervisor.listening("127.0.0.1", port)
    assert supervisor.stop("t-web") == "inactive"


def test_recycled_pid_is_not_mistaken_for_the_unit(state):
    web_unit("t-web", free_port())
    paths.run_dir().mkdir(parents=True)
    # our own pid, but with a start time that is not ours: a pid reused by another process
    (paths.run_dir() / "t-web.pid").write_text(f"{os.getpid()} 1\n")
    assert not supervisor.is_active("t-web")
    assert supervisor.stop("t-web") == "inactive"  # and it must not signal us


def test_a_unit_that_dies_reports_its_log(state):
    write_unit("t-bad", [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"],
               ready=["127.0.0.1", free_port()])
    with pytest.raises(LabError) as e:
        supervisor.start("t-bad")
    assert "boom: bad config" in str(e.value) and "t-bad" in str(e.value)
    assert not supervisor.is_active("t-bad")


def test_a_busy_port_is_reported_not_fought_over(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        web_unit("t-web", s.getsockname()[1])
        with pytest.raises(LabError, match="already in use"):
            supervisor.start("t-web")


def test_missing_unit_and_bad_names(state):
    with pytest.raises(LabError, match="not installed"):
        supervisor.start("nope")
    with pytest.raises(Exception, match="invalid unit name"):
        supervisor.start("../etc")


def test_stop_all_kills_the_whole_process_group(state):
    # a unit whose main process has a child: both must go
    marker = str(state / "child-marker")
    write_unit("t-tree", [sys.executable, "-c",
                          f"import subprocess,time,sys; subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)','{marker}']); time.sleep(60)"])
    assert supervisor.start("t-tree") == "started"
    deadline = time.monotonic() + 5
    child = []
    while not child and time.monotonic() < deadline:
        child = [p for p in os.listdir("/proc") if p.isdigit() and marker.encode() in _cmdline(p)]
        time.sleep(0.05)
    assert child
    assert supervisor.stop_all() == {"t-tree": "stopped"}
    time.sleep(0.2)
    alive = [p for p in child if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split(") ")[1][0] != "Z"]
    assert alive == []


def test_hung_app_stays_active_but_stops_listening(state):
    port = free_port()
    web_unit("t-web", port)
    supervisor.start("t-web")
    import signal

    assert supervisor.send_signal("t-web", signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while supervisor.listening("127.0.0.1", port, 0.2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.is_active("t-web")
    assert not supervisor.listening("127.0.0.1", port)
    supervisor.stop("t-web")


def _cmdline(pid: str) -> bytes:
    """A process's command line; empty when it ended between the listing of /proc and this read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def test_the_lab_app_binds_without_a_name_lookup(monkeypatch):
    """The lab sends nothing to the resolver: HTTPServer's getfqdn() on bind is not called."""
    import socket

    import httpx

    from ralf.lab.web import make_server

    def no_dns(*a, **kw):
        raise AssertionError(f"name lookup {a!r}")

    monkeypatch.setattr(socket, "getfqdn", no_dns)
    monkeypatch.setattr(socket, "gethostbyaddr", no_dns)
    server = make_server("t", "127.0.0.1", 0)
    try:
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
        r = httpx.get(f"http://127.0.0.1:{server.server_port}/health", timeout=5)
        assert (r.status_code, r.text, server.server_name) == (200, "ok\n", "127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
