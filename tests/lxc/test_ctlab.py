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
import time
from pathlib import Path

import network_guard
import pytest

from tests.lxc.conftest import lab_platform, require_lxc

# Real converges take minutes each on 2 cores: well past the suite's default 300 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
NAME = f"e{os.getpid() % 100000}"


def _platform(tmp: Path) -> Path:
    return lab_platform(tmp, "e")


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
    # Phase 1 again (PostgreSQL's pair): its config stack, the postgres role, changes nothing either
    up_again = ralf(env, "lab", "up", "--json", "--platform", str(pf))
    ok(up_again)
    phase1 = json.loads(up_again.stdout)
    configs = [(s["stack"], s["result"], s["changed"]) for s in phase1["steps"] if s.get("type") == "ansible"]
    assert configs and all(r == "succeeded" and c == 0 for _, r, c in configs), phase1["steps"]

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


# ---- Service safety: TLS between the platform's services, and Synapse's public names (issue 19)

IN_CT = """
import sys
from ralf.backends.lxc.node import LxcNode
from ralf.loader import load_platform
r = LxcNode(load_platform(sys.argv[1])).containers.attach(sys.argv[2], sys.argv[3:], timeout=120,
                                                          input_text=sys.stdin.read() or None)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)
"""


def in_ct(env, pf: Path, ct: str, argv: list[str], input_text: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", IN_CT, str(pf), ct, *argv], env=env, input=input_text,
                          capture_output=True, text=True, timeout=180)


REQUEST_TOKEN = """
import json, sys, urllib.error, urllib.request
body = json.dumps({"client_secret": sys.argv[1], "email": sys.argv[2], "send_attempt": 1}).encode()
req = urllib.request.Request("http://172.31.250.110:8008/_matrix/client/v3/account/3pid/email/requestToken",
                             data=body, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=float(sys.argv[3])) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except TimeoutError:
    print("timeout -")
"""

# Run in the mail CT: the messages in argv[2]'s mailbox whose decoded text holds argv[1].
MAILBOX = """
import email, glob, sys
for f in glob.glob(f"/var/mail/vhosts/ctlab.test/{sys.argv[2]}/*/*"):
    m = email.message_from_binary_file(open(f, "rb"))
    parts = [p.get_payload(decode=True) or b"" for p in m.walk() if not p.is_multipart()]
    if any(sys.argv[1].encode() in p for p in parts):
        print(m["From"])
"""


def _synapse_asks_for_a_mail(to: str, timeout: float = 50) -> tuple[str, str, str]:
    """Synapse's own SMTP client sends a validation mail (the add-email flow of its client API):
    its status, its answer, and the client secret the mail's link carries."""
    secret = f"ralftest{os.urandom(6).hex()}"
    r = inside([sys.executable, "-c", REQUEST_TOKEN, secret, to, str(timeout)])
    code, _, body = r.stdout.strip().partition(" ")
    assert code, r.stderr
    return code, body, secret


def _mails_holding(env, pf: Path, user: str, secret: str, wait: float) -> str:
    deadline = time.monotonic() + wait
    while True:
        got = in_ct(env, pf, "11020", ["python3", "-c", MAILBOX, secret, user])
        if got.stdout.strip() or time.monotonic() > deadline:
            return got.stdout.strip()
        time.sleep(2)


def _serve_mail_cert(env, pf: Path, cert: str, key: str) -> None:
    for text, dest in ((cert, "fullchain.pem"), (key, "privkey.pem")):
        put = in_ct(env, pf, "11020", ["sh", "-c", 'umask 077; cat > "$1.new" && mv "$1.new" "$1"', "sh",
                                       f"/etc/ssl/homelab-mail/{dest}"], text)
        assert put.returncode == 0, put.stderr
    assert in_ct(env, pf, "11020", ["systemctl", "restart", "postfix"]).returncode == 0


def test_synapse_mails_through_the_mail_ct_only_with_a_certificate_from_the_platform_ca(lab):
    pf, env, tmp = lab
    from ralf.pki import CA

    code, body, secret = _synapse_asks_for_a_mail("kolja@ctlab.test")
    assert code == "200" and "sid" in json.loads(body), body
    # The mail went Synapse → submission (STARTTLS, verified) → kolja's mailbox in the mail CT.
    assert _mails_holding(env, pf, "kolja", secret, wait=60) == "Matrix <matrix@ctlab.test>"

    # The same mail CT with a certificate from another CA (same names): Synapse's client aborts the
    # handshake (Postfix logs its "unknown ca" alert) and no mail goes out. (Synapse's request then
    # waits on its SMTP client's own timeout; the test does not wait for that.)
    other = CA(tmp / "other-ca" / "ca.pem", tmp / "other-ca" / "ca.key", common_name="not the platform CA")
    other.issue(tmp / "other-ca" / "mail", "mail.ctlab.test", ["172.31.250.120"])
    own = tmp / "state" / "ctlab" / "secrets" / "tls" / "mail"
    _serve_mail_cert(env, pf, (tmp / "other-ca" / "mail" / "cert.pem").read_text(),
                     (tmp / "other-ca" / "mail" / "key.pem").read_text())
    try:
        code, body, secret = _synapse_asks_for_a_mail("ralf@ctlab.test", timeout=15)
        assert code in ("timeout", "500"), body
        log = in_ct(env, pf, "11020", ["journalctl", "-n", "200", "--no-pager"]).stdout
        assert "SSL_accept error from unknown[172.31.250.110]" in log and "alert unknown ca" in log, log[-3000:]
        assert _mails_holding(env, pf, "ralf", secret, wait=0) == ""
    finally:
        _serve_mail_cert(env, pf, (own / "cert.pem").read_text(), (own / "key.pem").read_text())
    code, body, secret = _synapse_asks_for_a_mail("kolja@ctlab.test")
    assert code == "200", body
    assert _mails_holding(env, pf, "kolja", secret, wait=60) == "Matrix <matrix@ctlab.test>"


PG_VERIFY_FULL = """
import psycopg, sys
try:
    c = psycopg.connect(host="172.31.250.20", user="postgres", dbname="postgres", password=sys.argv[1],
                        sslmode=sys.argv[3] if len(sys.argv) > 3 else "verify-full", sslrootcert=sys.argv[2],
                        connect_timeout=10)
except psycopg.OperationalError as e:
    print("refused:", e)
else:
    # Who talks to PostgreSQL over TLS right now (Synapse keeps a pool open, n8n pings its own), and
    # who without (a role name with "-plain").
    rows = c.execute("SELECT DISTINCT a.usename || CASE WHEN s.ssl THEN '' ELSE '-plain' END FROM pg_stat_ssl s "
                     "JOIN pg_stat_activity a USING (pid) WHERE a.usename IS NOT NULL").fetchall()
    print("verified", *sorted(r[0] for r in rows))
"""


def test_postgres_serves_a_certificate_from_the_platform_ca_and_synapse_and_n8n_use_tls(lab):
    pf, env, tmp = lab
    from ralf.pki import CA

    ca = tmp / "state" / "ctlab" / "secrets" / "ca" / "ca.pem"
    pw = secret(tmp, "postgres.env", "POSTGRES_ADMIN_PASSWORD")
    good = inside([sys.executable, "-c", PG_VERIFY_FULL, pw, str(ca)])
    words = good.stdout.split()
    assert words[:1] == ["verified"] and {"synapse", "n8n", "postgres"} <= set(words), good.stdout + good.stderr
    assert not [w for w in words if w.endswith("-plain")], good.stdout  # nobody talks to PostgreSQL in the clear
    n8n_env = in_ct(env, pf, "4030", ["cat", "/etc/n8n/n8n.env"]).stdout
    assert "DB_POSTGRESDB_SSL_REJECT_UNAUTHORIZED=true" in n8n_env and "DB_POSTGRESDB_SSL_CA_FILE=" in n8n_env
    n8n_ca = in_ct(env, pf, "4030", ["cat", "/etc/n8n/postgres-ca.pem"]).stdout
    assert n8n_ca == ca.read_text().rstrip()  # n8n verifies against the platform CA itself
    journal = in_ct(env, pf, "4030", ["journalctl", "-u", "n8n", "--no-pager"]).stdout
    assert "DB_POSTGRESDB_SSL_CA_FILE contained leading or trailing whitespace" not in journal
    other = CA(tmp / "pg-other-ca" / "ca.pem", tmp / "pg-other-ca" / "ca.key", common_name="not the platform CA")
    other.ensure()
    refused = inside([sys.executable, "-c", PG_VERIFY_FULL, pw, str(other.cert_file)])
    assert refused.stdout.startswith("refused:") and "certificate verify failed" in refused.stdout, refused.stdout
    # the platform network reaches PostgreSQL over TLS only (hostssl): plain text is refused by pg_hba
    plain = inside([sys.executable, "-c", PG_VERIFY_FULL, pw, str(ca), "disable"])
    assert plain.stdout.startswith("refused:") and "no encryption" in plain.stdout, plain.stdout + plain.stderr
    conf = in_ct(env, pf, "11010", ["cat", "/etc/matrix-synapse/conf.d/ralf.yaml"])
    assert "sslmode: verify-full" in conf.stdout, conf.stderr


HTTPS_GET = """
import http.client, json, socket, ssl, sys
ca, name, path = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca) if ca != "-" else ssl.create_default_context()
class Conn(http.client.HTTPSConnection):
    def connect(self):
        raw = socket.create_connection(("172.31.250.110", 443), timeout=20)
        self.sock = ctx.wrap_socket(raw, server_hostname=name)
c = Conn(name, 443, context=ctx)
try:
    c.request("GET", path)
    r = c.getresponse()
    print(json.dumps({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                      "body": r.read().decode()}))
except ssl.SSLCertVerificationError as e:
    print(json.dumps({"error": e.verify_message}))
"""


def _https(ca: str, name: str, path: str) -> dict:
    r = inside([sys.executable, "-c", HTTPS_GET, ca, name, path])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_synapse_public_names_answer_over_tls_verified_against_the_platform_ca(lab):
    pf, env, tmp = lab
    ca = str(tmp / "state" / "ctlab" / "secrets" / "ca" / "ca.pem")
    server = _https(ca, "ctlab.test", "/.well-known/matrix/server")
    assert server["status"] == 200 and server["headers"]["content-type"] == "application/json"
    assert json.loads(server["body"]) == {"m.server": "matrix.ctlab.test:443"}
    client = _https(ca, "ctlab.test", "/.well-known/matrix/client")
    assert client["status"] == 200 and client["headers"]["content-type"] == "application/json"
    assert client["headers"]["access-control-allow-origin"] == "*"
    assert json.loads(client["body"]) == {"m.homeserver": {"base_url": "https://matrix.ctlab.test"}}
    # The base URL the client is sent to: Synapse behind nginx, same certificate, same CA.
    versions = _https(ca, "matrix.ctlab.test", "/_matrix/client/versions")
    assert versions["status"] == 200 and "versions" in json.loads(versions["body"])
    assert _https(ca, "matrix.ctlab.test", "/")["status"] == 404  # only the Matrix paths are proxied
    # Trusted because of the platform CA, not by accident: the system store alone refuses it.
    untrusted = _https("-", "ctlab.test", "/.well-known/matrix/server")
    assert "certificate" in untrusted.get("error", ""), untrusted


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
