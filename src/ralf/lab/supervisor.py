"""A tiny process supervisor: the lab's stand-in for systemd units.

A unit is a JSON spec in ``<lab>/units/<unit>.json`` (``argv``, optional ``env``, ``ready`` = the
``[host, port]`` it listens on once up, ``reload_signal``), written by the lab's playbooks. A running
unit has a pid file ``<lab>/run/<unit>.pid`` holding the pid and the process's start time, so a
recycled pid is never mistaken for the unit. Units run in their own session and outlive the command
that started them, like services do; ``stop`` ends the whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ralf import process
from ralf.errors import RalfError, UsageError
from ralf.lab import paths
from ralf.serial import Record

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# Children started by this process, so that stopping them also reaps them (no zombies in tests).
_children: dict[int, subprocess.Popen] = {}


class LabError(RalfError):
    """A lab unit could not be started, stopped or found."""


@dataclass(frozen=True)
class UnitState(Record):
    json_fields = ("unit", "active", "pid", "listen")

    unit: str
    active: bool
    pid: int | None
    ready: tuple[str, int] | None

    @property
    def listen(self) -> str | None:
        return f"{self.ready[0]}:{self.ready[1]}" if self.ready else None


def _spec_path(unit: str) -> Path:
    if not unit or "/" in unit or unit.startswith("."):
        raise UsageError(f"invalid unit name {unit!r}")
    return paths.units_dir() / f"{unit}.json"


def _pid_path(unit: str) -> Path:
    return paths.run_dir() / f"{unit}.pid"


def load_spec(unit: str) -> dict:
    p = _spec_path(unit)
    try:
        spec = json.loads(p.read_text())
    except FileNotFoundError:
        raise LabError(f"unit {unit} is not installed (no {p}); run `ralf lab up` first") from None
    except (OSError, ValueError) as e:
        raise LabError(f"unit {unit}: cannot read {p}: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("argv"), list) or not spec["argv"]:
        raise LabError(f"unit {unit}: {p} must hold an object with a non-empty argv list")
    return spec


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _read_pid(unit: str) -> int | None:
    try:
        pid_s, start = _pid_path(unit).read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    return pid if _proc_start_time(pid) == start else None


def main_pid(unit: str) -> int | None:
    """The unit's pid when it is running, else None."""
    return _read_pid(unit)


def is_active(unit: str) -> bool:
    return _read_pid(unit) is not None


def _ready_addr(spec: dict) -> tuple[str, int] | None:
    r = spec.get("ready")
    if isinstance(r, (list, tuple)) and len(r) == 2:
        return str(r[0]), int(r[1])
    return None


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _log_tail(unit: str, lines: int = 8) -> str:
    try:
        text = (paths.log_dir() / f"{unit}.log").read_text(errors="replace")
    except OSError:
        return ""
    tail = text.strip().splitlines()[-lines:]
    return ("\n" + "\n".join(f"  | {line}" for line in tail)) if tail else ""


def start(unit: str) -> str:
    """Start the unit unless it runs; returns "started" or "running"."""
    spec = load_spec(unit)
    if is_active(unit):
        return "running"
    ready = _ready_addr(spec)
    if ready and listening(*ready, timeout=0.5):
        raise LabError(f"unit {unit}: {ready[0]}:{ready[1]} is already in use by another process")
    for d in (paths.run_dir(), paths.log_dir()):
        d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
    env["PYTHONUNBUFFERED"] = "1"
    with open(paths.log_dir() / f"{unit}.log", "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {unit}\n".encode())
        log.flush()
        try:
            process.started([str(a) for a in spec["argv"]])
            proc = subprocess.Popen(
                [str(a) for a in spec["argv"]], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, env=env, cwd=str(paths.lab_dir()),
            )
        except OSError as e:
            raise LabError(f"unit {unit}: cannot run {spec['argv'][0]}: {e.strerror}") from None
    _children[proc.pid] = proc
    start_time = None
    while start_time is None and proc.poll() is None:
        start_time = _proc_start_time(proc.pid)
    if start_time is None:
        raise LabError(f"unit {unit} exited at once with code {proc.poll()}{_log_tail(unit)}")
    _pid_path(unit).write_text(f"{proc.pid} {start_time}\n")
    if ready:
        deadline = time.monotonic() + READY_TIMEOUT
        while not listening(*ready, timeout=0.5):
            if proc.poll() is not None:
                _pid_path(unit).unlink(missing_ok=True)
                raise LabError(f"unit {unit} exited with code {proc.returncode} before listening on "
                               f"{ready[0]}:{ready[1]}{_log_tail(unit)}")
            if time.monotonic() > deadline:
                stop(unit)
                raise LabError(f"unit {unit} did not listen on {ready[0]}:{ready[1]} within "
                               f"{READY_TIMEOUT:.0f} s{_log_tail(unit)}")
            time.sleep(0.05)
    return "started"


def _gone(pid: int, start_time: str | None) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return True
    return _proc_start_time(pid) != start_time


def stop(unit: str) -> str:
    """Stop the unit (SIGTERM to its process group, SIGKILL after a grace period); "stopped" or "inactive"."""
    _spec_path(unit)
    pid = _read_pid(unit)
    if pid is None:
        _pid_path(unit).unlink(missing_ok=True)
        return "inactive"
    start_time = _proc_start_time(pid)
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            raise LabError(f"unit {unit}: not allowed to stop pid {pid}") from None
        deadline = time.monotonic() + wait
        while not _gone(pid, start_time) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _gone(pid, start_time):
            break
    child = _children.pop(pid, None)
    if child is not None:
        child.wait(timeout=2)
    _pid_path(unit).unlink(missing_ok=True)
    return "stopped"


def restart(unit: str) -> str:
    stop(unit)
    start(unit)
    return "restarted"


def send_signal(unit: str, sig: int) -> bool:
    """Send ``sig`` to the unit's main process; False when it is not running."""
    pid = _read_pid(unit)
    if pid is None:
        return False
    os.kill(pid, sig)
    return True


def reload(unit: str) -> str:
    """Reload the unit (its ``reload_signal``, e.g. HUP for nginx); restarts units without one."""
    spec = load_spec(unit)
    name = spec.get("reload_signal")
    if not is_active(unit):
        start(unit)
        return "started"
    if not name:
        return restart(unit)
    send_signal(unit, getattr(signal, f"SIG{str(name).upper().removeprefix('SIG')}"))
    return "reloaded"


def known_units() -> list[str]:
    names = {p.stem for p in paths.units_dir().glob("*.json")} if paths.units_dir().is_dir() else set()
    if paths.run_dir().is_dir():
        names |= {p.stem for p in paths.run_dir().glob("*.pid")}
    return sorted(names)


def state(unit: str) -> UnitState:
    try:
        ready = _ready_addr(load_spec(unit))
    except LabError:
        ready = None
    pid = _read_pid(unit)
    return UnitState(unit, pid is not None, pid, ready)


def stop_all() -> dict[str, str]:
    """Stop every unit with a pid file or a spec; returns unit -> "stopped" / "inactive"."""
    out = {}
    for unit in known_units():
        pid = _read_pid(unit)
        if pid is None:
            _pid_path(unit).unlink(missing_ok=True)
            out[unit] = "inactive"
        else:
            out[unit] = stop(unit)
    return out
