"""The real-container lab end to end, as a user runs it: up, the standard order, again, tour, down.

A copy of examples/ctlab/platform.yaml with a node of its own (name, bridge, CT directory) so a
developer's own lab is never touched; the same roles, stacks and smoke as the real platform, the
packages from the cache that ``ralf lab prepare --real`` filled (CI's install phase).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import network_guard
import pytest

from tests.lxc.conftest import require_lxc

# Real converges take minutes each on 2 cores: well past the suite's default 300 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
NAME = f"e{os.getpid() % 100000}"


def _platform(tmp: Path) -> Path:
    text = (REPO / "examples" / "ctlab" / "platform.yaml").read_text()
    text = text.replace("name: ctlab ", f"name: {NAME} ").replace("bridge: ralfct0", f"bridge: re{os.getpid() % 100000}")
    text = text.replace("  cache_dir: /var/cache/ralf/lxc", f"  cache_dir: /var/cache/ralf/lxc\n  lxc_path: {tmp}/lxc")
    text = text.replace("stacks_dir: ../../stacks", f"stacks_dir: {REPO}/stacks")
    p = tmp / "platform.yaml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_lxc()
    tmp = tmp_path_factory.mktemp("ctlab")
    pf = _platform(tmp)
    network_guard.allow_namespace(f"ralf-{NAME}")  # the node's own namespace, made by `lab up` (before env)
    env = dict(os.environ, RALF_STATE_DIR=str(tmp / "state"), COLUMNS="200", ANSIBLE_NOCOLOR="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    env.pop("RALF_PLATFORM", None)
    yield pf, env, tmp
    ralf(env, "lab", "down", "--platform", str(pf), timeout=300)
    network_guard.forget_namespace(f"ralf-{NAME}")


def ralf(env, *args, timeout=2700) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ralf", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def ok(p: subprocess.CompletedProcess) -> str:
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:]
    return out


def inside(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """A client that is not ralf, run on the host inside the node's namespace."""
    return subprocess.run(["ip", "netns", "exec", f"ralf-{NAME}", *cmd], capture_output=True, text=True,
                          timeout=60, **kw)


STARTTLS = """
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = socket.create_connection(("172.31.250.120", int(sys.argv[2])), timeout=20)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            return line[:3].decode()
reply(); s.sendall(b"EHLO client.test\\r\\n"); reply()
s.sendall(b"STARTTLS\\r\\n"); code = reply()
t = ctx.wrap_socket(s, server_hostname="mail.ctlab.test")
t.sendall(b"EHLO client.test\\r\\n")
print(code, t.recv(3).decode())
"""


def secret(tmp: Path, file: str, key: str) -> str:
    for line in (tmp / "state" / "ctlab" / "secrets" / file).read_text().splitlines():
        k, _, v = line.partition("=")
        if k == key:
            return shlex.split(v)[0] if v else ""
    raise KeyError(key)


def test_up_deploy_again(lab):
    pf, env, tmp = lab
    up = ok(ralf(env, "lab", "up", "--platform", str(pf)))
    assert "real-container lab is up" in up

    first = ok(ralf(env, "deploy", "--executor", "local", "--platform", str(pf), "--yes"))
    # The first smoke after a fresh install passes: each Apply ends only when its app answers.
    for template in ("RALF Automation Apply", "RALF Automation Smoke", "RALF Communication Apply",
                     "RALF Communication Smoke"):
        assert re.search(rf"{template}\s+succeeded", first), template

    again = ok(ralf(env, "deploy", "--executor", "local", "--platform", str(pf), "--yes"))
    applied = re.findall(r"^step \d+/\d+ RALF \w+ Apply succeeded \([^)]*\) — changed=(\d+)$", again, re.M)
    assert applied == ["0", "0"], again[-3000:]  # Automation and Communication Apply: nothing to change

    checked = ralf(env, "smoke", "platform", "--platform", str(pf), "--json")
    ok(checked)
    smoke = json.loads(checked.stdout)  # progress lines go to stderr
    assert smoke["ok"] is True
    layers = {c["kind"] for s in smoke["services"] for c in s["checks"] if c["status"] == "OK"}
    assert {"unit", "tcp", "postgres", "smtp", "imaps", "http", "tls", "app_port", "https"} <= layers


def test_clients_that_are_not_ralf_reach_each_service(lab):
    pf, env, tmp = lab
    ca = tmp / "state" / "ctlab" / "secrets" / "ca" / "ca.pem"
    pw = secret(tmp, "postgres.env", "SYNAPSE_DB_PASSWORD")
    q = inside([sys.executable, "-c", (
        "import psycopg,sys; c=psycopg.connect(host='172.31.250.20', user='synapse', dbname='synapse', "
        "password=sys.argv[1], connect_timeout=10); print(c.execute('SELECT 1').fetchone()[0])"), pw])
    assert q.stdout.strip() == "1", q.stderr

    for port in (25, 587):  # SMTP and submission: STARTTLS, certificate verified against the platform CA
        smtp = inside([sys.executable, "-c", STARTTLS, str(ca), str(port)])
        assert smtp.stdout.split() == ["220", "250"], smtp.stdout + smtp.stderr

    versions = inside([sys.executable, "-c", "import urllib.request; print(urllib.request.urlopen("
                       "'http://172.31.250.110:8008/_matrix/client/versions', timeout=20).read().decode())"])
    assert "versions" in json.loads(versions.stdout), versions.stderr


# ----------------------------------------------------------------------------------- n8n

N8N_HTTPS = """
import http.client, json, socket, ssl, sys
ca, method, path, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
class Conn(http.client.HTTPSConnection):
    def connect(self):
        self.sock = ctx.wrap_socket(socket.create_connection(("172.31.250.40", 443), timeout=20),
                                    server_hostname="n8n.ctlab.test")
c = Conn("n8n.ctlab.test", 443, context=ctx)
c.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"""


def n8n(tmp: Path, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One request to n8n through its nginx, the certificate verified against the platform CA."""
    ca = tmp / "state" / "ctlab" / "secrets" / "ca" / "ca.pem"
    p = inside([sys.executable, "-c", N8N_HTTPS, str(ca), method, path, json.dumps(body) if body else ""])
    assert p.returncode == 0, p.stderr[-2000:]
    answer = json.loads(p.stdout)
    return answer["status"], json.loads(answer["body"])


def test_n8n_answers_through_nginx_with_a_certificate_from_the_platform_ca(lab):
    pf, env, tmp = lab
    assert n8n(tmp, "GET", "/healthz") == (200, {"status": "ok"})


def test_n8n_setup_page_is_closed_and_the_owner_logs_in_with_the_secrets(lab):
    # One deploy claimed the owner account through n8n's setup API, from n8n.env.
    pf, env, tmp = lab
    email, password = secret(tmp, "n8n.env", "N8N_OWNER_EMAIL"), secret(tmp, "n8n.env", "N8N_OWNER_PASSWORD")
    status, settings = n8n(tmp, "GET", "/rest/settings")
    assert status == 200 and settings["data"]["userManagement"]["showSetupOnFirstLoad"] is False

    status, claim = n8n(tmp, "POST", "/rest/owner/setup", {"email": "someone@else.test", "firstName": "Some",
                                                           "lastName": "One", "password": "Claim1234567"})
    assert (status, claim.get("message")) == (400, "Instance owner already setup")
    assert "stacktrace" not in claim  # production mode: no stack traces for whoever asks

    status, login = n8n(tmp, "POST", "/rest/login", {"emailOrLdapLoginId": email, "password": password})
    assert status == 200 and login["data"]["email"] == email, login
    status, _ = n8n(tmp, "POST", "/rest/login", {"emailOrLdapLoginId": email, "password": password + "x"})
    assert status == 401


def test_the_tour_on_real_containers(lab):
    pf, env, tmp = lab
    broke = ok(ralf(env, "lab", "break", "mail", "tls", "--platform", str(pf)))
    assert "expired" in broke
    failed = ralf(env, "smoke", "communication", "--platform", str(pf))
    assert failed.returncode == 1 and "certificate has expired" in failed.stdout, failed.stdout[-3000:]
    # The Apply renews a certificate that is due (here: expired) from the platform CA: the fix is a deploy.
    healed = ok(ralf(env, "deploy", "mail", "--executor", "local", "--platform", str(pf), "--yes"))
    assert "issued a certificate for mail" in healed and "deploy succeeded" in healed

    ok(ralf(env, "lab", "break", "mail", "unit", "--platform", str(pf)))
    down = ralf(env, "smoke", "mail", "--platform", str(pf))
    assert down.returncode == 1 and "service in CT" in down.stdout, down.stdout
    ok(ralf(env, "lab", "fix", "mail", "--platform", str(pf)))
    ok(ralf(env, "smoke", "mail", "--platform", str(pf)))


def test_down_leaves_nothing(lab):
    pf, env, tmp = lab
    ok(ralf(env, "lab", "down", "--platform", str(pf), timeout=300))
    assert not Path(f"/run/netns/ralf-{NAME}").exists()
    assert not any((tmp / "lxc").glob("*/config"))
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp / "lxc") not in ps
