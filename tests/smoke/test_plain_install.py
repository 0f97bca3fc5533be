"""A plain install (`pip install ralf`, no extras) runs every check kind: what the Semaphore host has.

``scripts/test.sh`` keeps that install in ``.venv-plain`` (ralf and its runtime dependencies only, nothing
from the test extra); this test runs its ``ralf smoke`` against the test servers, one service per check kind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ralf.smoke.checks import CHECKS

HOST = "127.0.0.1"
PLAIN = Path(__file__).resolve().parents[2] / ".venv-plain" / "bin"


pytestmark = pytest.mark.slow  # runs the plain install's ralf as a program, against real servers

def _plain(*args: str, **kw) -> subprocess.CompletedProcess:
    assert (PLAIN / "ralf").exists(), f"no plain install at {PLAIN.parent}: `bash scripts/test.sh` creates it"
    return subprocess.run([str(PLAIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, **kw)


def test_the_plain_install_has_no_test_extras(tmp_path):
    for module in ("boto3", "moto", "psycopg", "ansible.constants"):
        p = _plain("python", "-c", f"import {module}", cwd=tmp_path)  # not here: the repository has ansible/
        assert p.returncode != 0 and "ModuleNotFoundError" in p.stderr, module


def test_plain_install_runs_every_check_kind(tmp_path, nginx, certs, postgres, s3, smtp_stub, imaps_stub,
                                             open_port):
    units = tmp_path / "units"
    units.mkdir()
    (units / "app").touch()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "minio.env").write_text("MINIO_ROOT_USER=admin\nMINIO_ROOT_PASSWORD=s3cr3t\n")
    checks = {
        "tcp": {"host": HOST, "port": open_port},
        "http": {"url": f"http://{HOST}:{nginx.http_port}/"},
        "https": {"url": f"https://{HOST}:{nginx.ports['good']}/", "ca_file": str(certs.ca)},
        "tls": {"host": HOST, "port": nginx.ports["good"], "server_name": "good.test", "ca_file": str(certs.ca)},
        "unit": {"unit": "app"},
        "app_port": {"port": open_port},
        "postgres": {"host": HOST, "port": postgres},
        "smtp": {"host": HOST, "port": smtp_stub["with_tls"], "ca_file": str(certs.ca)},
        "imaps": {"host": HOST, "port": imaps_stub, "ca_file": str(certs.ca)},
        "s3": {},
    }
    assert set(checks) == set(CHECKS)  # a new check kind must be added here too
    services = {}
    for i, (kind, spec) in enumerate(checks.items(), start=1):
        name = kind.replace("_", "")
        services[name] = {"word": name.capitalize(), "group": "phase1", "ip": f"127.0.1.{i}",
                          "hostname": f"{name}.test", "stacks": [f"{100 + i:03d}-{name}-config"],
                          "checks": [{"kind": kind, **spec}]}
    doc = {"version": 1, "name": "plain-install", "network": {"cidr": "127.0.0.0/8"},
           "secrets": {"dir": str(secrets)},
           "exec": {"transport": "local", "unit_command": f"test -e {units}/{{unit}}"},
           "state_backend": {"endpoint": s3, "bucket": "tofu-state"},
           "groups": [{"name": "phase1", "word": "Phase1", "phase1": True}], "services": services}
    platform = tmp_path / "platform.yaml"
    platform.write_text(yaml.safe_dump(doc, sort_keys=False))

    env = {"PATH": f"{PLAIN}:/usr/bin:/bin", "RALF_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path)}
    p = _plain("ralf", "smoke", "platform", "--platform", str(platform), "--json", env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    report = json.loads(p.stdout)
    got = {c["kind"]: (c["status"], c["detail"]) for s in report["services"] for c in s["checks"]}
    assert set(got) == set(checks)
    assert all(status == "OK" for status, _ in got.values()), got
