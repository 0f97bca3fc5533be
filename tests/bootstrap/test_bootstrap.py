"""`ralf bootstrap` against a Proxmox API double (HTTPS on 127.0.0.1) and a fake Semaphore, stacks and smoke stubbed.

The seams are asserted exactly: the Proxmox requests in order, the stack runner's selections, the
smokes, and the Semaphore writes (project and templates seeded, one Phase 1 smoke task).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import yaml
from doubles.gitea import FakeGitea
from doubles.proxmox import FakeProxmox
from local_tls import local_tls

from ralf.bootstrap import bootstrap
from ralf.bootstrap.proxmox_api import ProxmoxApi
from ralf.catalog import Catalog
from ralf.deploy import Reporter
from ralf.loader import load_platform
from ralf.smoke.results import CheckResult, ServiceResult, SmokeReport

TOKEN_ID, TOKEN_SECRET = "root@pam!ralf", "fake-token-secret"
TEMPLATE = "ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
PAIRS = [["030-minio-lxc", "031-minio-config"], ["020-postgres-lxc", "021-postgres-config"],
         ["034-gitea-lxc", "035-gitea-config"], ["040-semaphore-lxc", "041-semaphore-config"]]
STEPS = ["RALF MinIO Apply", "RALF MinIO Smoke", "RALF Postgres Apply", "RALF Postgres Smoke", "RALF Gitea Apply",
         "RALF Gitea Smoke", "gitea mirror", "RALF Semaphore Apply", "RALF Semaphore Smoke", "semaphore seed",
         "RALF Phase1 Smoke"]
SOURCE = "https://git.operator.example/ralf/RALF.git"  # the operator's remote, as the fake Gitea knows it
HEAD = "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a"
GITEA_USER, GITEA_PASSWORD = "ralf", "gitea-admin-password"
PREFLIGHT_READS = [
    ("GET", "/api2/json/version"), ("GET", "/api2/json/access/permissions"), ("GET", "/api2/json/nodes"),
    ("GET", "/api2/json/nodes/pve-deploy/storage"), ("GET", "/api2/json/nodes/pve-deploy/network"),
    ("GET", "/api2/json/nodes/pve-deploy/storage/local/content"),
]


class Stacks:
    """The stack runner seam: records each selection, reports ``changed``; may fail one stack."""

    def __init__(self, changed: int = 2, fail: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.changed = changed
        self.fail = fail

    def __call__(self, platform, only, *, apply, on_output, **kw):
        assert apply is True
        self.calls.append(list(only))
        results = []
        for name in only:
            ok = name != self.fail
            on_output(f"[ralf] === {name} ===" if ok else f'fatal: [{name}]: FAILED! => {{"msg": "boom"}}')
            results.append(SimpleNamespace(name=name, result="succeeded" if ok else "failed", note=""))
            if not ok:
                break
        ok = all(r.result == "succeeded" for r in results)
        return SimpleNamespace(ok=ok, results=results, run_dir=Path("/tmp/ralf-run"), interrupted=False,
                               changed=self.changed if ok else None)


class Node:
    """The seam that reaches the Proxmox node over SSH (``pct exec``'s way in): records argv, answers as the node would.

    ``keys`` is root's authorized_keys; ``None`` makes sshd refuse the key (ssh exits 255, "Permission denied").
    """

    def __init__(self, secrets: Path) -> None:
        self.secrets = secrets
        self.calls: list[list[str]] = []
        self.keys: str | None = "ralf's key"  # placeholder: the real .pub once the preflight made it

    def __call__(self, argv, timeout):
        from ralf.transport import ExecResult

        self.calls.append(list(argv))
        if self.keys is None:
            return ExecResult(255, "", "root@10.10.10.10: Permission denied (publickey,password).\n")
        text = self.keys
        if text == "ralf's key":
            text = 'no-pty ssh-rsa AAAAB3Nza other@laptop\n' + (self.secrets / "ralf_ed25519.pub").read_text()
        return ExecResult(0, text, "")

    def argv(self) -> list[str]:
        from ralf.paths import ssh_host_key_options

        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *ssh_host_key_options(),
                "-i", str(self.secrets / "ralf_ed25519"), "root@10.10.10.10", "cat .ssh/authorized_keys"]


class Smokes:
    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self.calls: list[str] = []

    def __call__(self, target, platform):
        self.calls.append(target)
        return SmokeReport(target, [ServiceResult(s, self.catalog.group_of(s), [
            CheckResult("service", "tcp", f"{s}-tcp", "x:1", "OK", "open")]) for s in self.catalog.target(target).services])


@pytest.fixture
def tls(tmp_path):
    return local_tls(tmp_path / "pve", "fake pve CA")


@pytest.fixture
def pve(tls):
    with FakeProxmox(tls=tls[1], token_id=TOKEN_ID, token_secret=TOKEN_SECRET) as srv:
        yield srv


@pytest.fixture
def gitea(tls):
    with FakeGitea(tls=tls[1], users={GITEA_USER: GITEA_PASSWORD}) as srv:
        srv.remotes[SOURCE] = {"main": HEAD}
        yield srv


@pytest.fixture
def sem():
    from doubles.semaphore import FakeSemaphore

    with FakeSemaphore(version="2.16") as srv:
        srv.script("RALF Phase1 Smoke", "success", 0.05, log=["phase1: 4 OK"])
        yield srv


@pytest.fixture
def env(tmp_path, monkeypatch, repo_root, pve, gitea, tls):
    """The default platform pointed at the Proxmox and Gitea doubles; secrets and state in tmp_path."""
    data = yaml.safe_load((repo_root / "platform.yaml").read_text())
    data["proxmox"]["api_url"] = pve.url
    data["mirror"].update(url=gitea.url, source_url=SOURCE, ca_file=str(tls[0]))
    secrets = tmp_path / "secrets"
    data["exec"]["ssh_key_file"] = str(secrets / "ralf_ed25519")
    pfile = tmp_path / "platform.yaml"
    pfile.write_text(yaml.safe_dump(data, sort_keys=False))
    secrets.mkdir(mode=0o700)
    (secrets / "pve.env").write_text(f"PVE_TOKEN_ID={TOKEN_ID}\nPVE_TOKEN_SECRET={TOKEN_SECRET}\n")
    (secrets / "gitea.env").write_text(f"GITEA_ADMIN_USER={GITEA_USER}\nGITEA_ADMIN_PASSWORD={GITEA_PASSWORD}\n")
    monkeypatch.setenv("RALF_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    bin_dir = tmp_path / "bin"  # the preflight only asks that OpenTofu is installed; it never runs here
    bin_dir.mkdir()
    (bin_dir / "tofu").write_text('#!/bin/sh\n[ "$*" = "version -json" ] && echo \'{"terraform_version": "1.10.6"}\'\n')
    (bin_dir / "tofu").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for var in ("PVE_TOKEN_ID", "PVE_TOKEN_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return SimpleNamespace(catalog=Catalog(load_platform(pfile)), secrets=secrets, file=pfile, node=Node(secrets))


@pytest.fixture
def journal(tmp_path):
    from ralf.journal import Journal

    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


def run(env, journal, tls, sem, stacks, smokes, *, resume=None, dry_run=False, verify=None, token=TOKEN_SECRET,
        pve_url=None):
    from ralf.bootstrap.run import BootstrapExecutor
    from ralf.semaphore.client import SemaphoreClient

    url = pve_url or env.catalog.platform.proxmox.api_url
    api = ProxmoxApi(url, TOKEN_ID, token, verify=str(tls[0]) if verify is None else verify)
    ex = BootstrapExecutor(env.catalog.platform, run_stacks=stacks, run_smoke=smokes,
                           make_client=lambda p: SemaphoreClient(sem.url, token=sem.token, retries=2, backoff=0.01),
                           semaphore_options={"poll_min": 0.01, "poll_max": 0.05, "log_settle": 0.0})
    out = io.StringIO()
    try:
        result = bootstrap(env.catalog, journal, dry_run=dry_run, resume=resume, api=api, executor=ex,
                           reporter=Reporter(out, command="ralf bootstrap"), on_output=lambda line: None,
                           node_runner=env.node)
    finally:
        api.close()
    result.output = out.getvalue()
    result.api_sent = api.sent
    return result


MIRROR_READ = [("GET", "/api/v1/repos/ralf/RALF"), ("GET", "/api/v1/repos/ralf/RALF/branches/main")]
MIGRATE = ("POST", "/api/v1/repos/migrate", {
    "clone_addr": SOURCE, "repo_owner": "ralf", "repo_name": "RALF", "mirror": True, "mirror_interval": "10m",
    "private": True, "service": "git",
    "description": "ralf: mirror of the operator's repository; Semaphore's tasks run what it holds"})


def test_empty_node_runs_phase1_pairs_in_binding_order_then_seeds_and_smokes_through_semaphore(
        env, journal, tls, pve, sem, gitea):
    stacks, smokes = Stacks(), Smokes(env.catalog)
    r = run(env, journal, tls, sem, stacks, smokes)

    assert r.exit_code == 0, r.output
    # preflight: read everything, then download the missing template through the API and wait for its task
    upid = next(iter(pve.tasks))
    assert [(m, p) for m, p, _ in pve.requests] == PREFLIGHT_READS + [
        ("GET", "/api2/json/nodes/pve-deploy/aplinfo"), ("POST", "/api2/json/nodes/pve-deploy/aplinfo"),
        ("GET", f"/api2/json/nodes/pve-deploy/tasks/{quote(upid, safe='')}/status")]
    assert pve.writes() == [("POST", "/api2/json/nodes/pve-deploy/aplinfo", {"storage": "local", "template": TEMPLATE})]
    assert f"local:vztmpl/{TEMPLATE}" in pve.content["local"]
    assert (env.secrets / "ralf_ed25519").is_file() and (env.secrets / "ralf_ed25519.pub").is_file()
    made = [f"{name}.env" for name, svc in env.catalog.platform.services.items() if svc.secrets]
    assert sorted(r.preflight.actions) == sorted([f"downloaded the LXC template local:vztmpl/{TEMPLATE}",
                                                  f"made the SSH key pair {env.secrets / 'ralf_ed25519'}",
                                                  f"made the missing secrets in {env.secrets}: {', '.join(made)}"])
    gitea_env = (env.secrets / "gitea.env").read_text()  # a file that was there keeps its values, gains keys
    assert f"GITEA_ADMIN_PASSWORD={GITEA_PASSWORD}\n" in gitea_env and "GITEA_SECRET_KEY=" in gitea_env
    # the node's root holds ralf's key (what `pct exec` logs in with), asked through the seam that reaches the node
    assert env.node.calls == [env.node.argv()]
    access = next(c for c in r.preflight.checks if c.name == "pct exec access")
    assert (access.status, access.detail) == ("ok", "root@10.10.10.10 holds ralf_ed25519.pub: `pct exec` reaches "
                                                    "the CTs on pve-deploy")
    tools = {c.name: c for c in r.preflight.checks if c.name in ("OpenTofu", "Ansible")}
    assert tools["OpenTofu"].status == "ok" and tools["OpenTofu"].detail.endswith("/tofu 1.10.6")
    assert tools["Ansible"].status == "ok" and "ansible-playbook 2." in tools["Ansible"].detail
    # Phase 1 pair by pair, each followed by its smoke; then seeding; then one Phase 1 smoke task in Semaphore
    assert stacks.calls == PAIRS
    assert smokes.calls == ["minio", "postgres", "gitea", "semaphore"]
    assert [s.step.template for s in r.report.steps] == STEPS
    assert all(s.result == "succeeded" for s in r.report.steps)
    # after the Gitea pair: the mirror of the operator's remote is made in Gitea (Gitea clones it before answering)
    assert gitea.requests == [MIRROR_READ[0] + (None,), MIGRATE, MIRROR_READ[1] + (None,)]
    assert gitea.branches[("ralf", "RALF")] == {"main": HEAD}
    assert r.report.steps[6].message == "CHANGED=1"
    pid = next(iter(sem.projects))
    assert sem.projects[pid]["name"] == "RALF Bootstrap"
    # Semaphore's repository is the mirror, cloned with a key holding Gitea's sign-in (sent once, on create)
    repo = next(o for o in sem.objects["repositories"].values() if o["name"] == "RALF Local")
    key = sem.objects["keys"][repo["ssh_key_id"]]
    assert repo["git_url"] == f"{gitea.url}ralf/RALF.git" and repo["git_branch"] == "main"
    assert key["name"] == "RALF Gitea" and key["type"] == "login_password"
    key_posts = [q.body for q in sem.requests if q.method == "POST" and q.path.endswith("/keys")]
    assert [k["login_password"] for k in key_posts] == [{"login": GITEA_USER, "password": GITEA_PASSWORD}]
    assert GITEA_PASSWORD not in r.output
    assert {t["name"] for t in sem.objects["templates"].values()} >= {"RALF Phase1 Smoke", "RALF Phase1 Config Apply"}
    tasks = list(sem.tasks.values())
    assert len(tasks) == 1 and sem.objects["templates"][tasks[0]["template_id"]]["name"] == "RALF Phase1 Smoke"
    run_row = journal.run(r.report.run_id)
    assert run_row["request"] == "bootstrap" and run_row["result"] == "succeeded"
    assert r.note.startswith("bootstrap: ") and "nothing changed" not in r.note

    # a second run on the platform that is now up changes nothing, and says so
    pve.requests.clear()
    gitea.requests.clear()
    key = (env.secrets / "ralf_ed25519").read_bytes()
    stacks2 = Stacks(changed=0)
    r2 = run(env, journal, tls, sem, stacks2, Smokes(env.catalog))
    assert r2.exit_code == 0, r2.output
    assert pve.writes() == [] and [(m, p) for m, p, _ in pve.requests] == PREFLIGHT_READS
    assert (env.secrets / "ralf_ed25519").read_bytes() == key
    assert r2.preflight.actions == []
    assert stacks2.calls == PAIRS
    assert gitea.reads_and_writes() == MIRROR_READ  # the mirror is there with its interval: no write
    assert r2.report.steps[6].message == "CHANGED=0"
    assert r2.report.steps[9].message == "CHANGED=0"
    assert r2.note == "bootstrap: the platform was already up — nothing changed"


def test_failure_in_the_postgres_pair_stops_there_and_resume_continues_from_it(env, journal, tls, pve, sem):
    smokes = Smokes(env.catalog)
    failing = Stacks(fail="021-postgres-config")
    r = run(env, journal, tls, sem, failing, smokes)
    assert r.exit_code == 1
    assert failing.calls == PAIRS[:2]
    assert [s.result for s in r.report.steps] == ["succeeded", "succeeded", "failed"] + ["not run"] * 8
    assert sem.projects == {}  # nothing reached Semaphore
    assert "`ralf bootstrap --resume" in r.output

    fixed = Stacks(changed=1)
    r2 = run(env, journal, tls, sem, fixed, smokes, resume="last")
    assert r2.exit_code == 0, r2.output
    assert fixed.calls == PAIRS[1:]
    assert r2.report.resumed_from == r.report.run_id
    assert [s.result for s in r2.report.steps] == ["succeeded"] * 11
    assert [s.from_run for s in r2.report.steps[:2]] == [r.report.run_id] * 2
    assert len(sem.tasks) == 1

    with pytest.raises(Exception, match="no failed or stopped bootstrap run"):
        run(env, journal, tls, sem, fixed, smokes, resume="last")


def test_dry_run_changes_nothing_and_runs_nothing(env, journal, tls, pve, sem):
    stacks = Stacks()
    r = run(env, journal, tls, sem, stacks, Smokes(env.catalog), dry_run=True)
    assert r.exit_code == 0 and r.report is None
    assert pve.writes() == []
    assert [c.status for c in r.preflight.checks if c.name in ("LXC template", "secrets", "SSH key pair")] == [
        "would", "would", "would"]
    assert not (env.secrets / "postgres.env").exists()
    assert not (env.secrets / "ralf_ed25519").exists()
    assert stacks.calls == [] and sem.requests == [] and journal.recent_runs() == []
    assert [s.template for s in r.plan.steps] == STEPS


def _failed(r) -> dict[str, str]:
    return {c.name: c.detail for c in r.preflight.checks if c.status == "fail"}


def test_preflight_explains_a_rejected_token_and_runs_nothing(env, journal, tls, pve, sem):
    stacks = Stacks()
    r = run(env, journal, tls, sem, stacks, Smokes(env.catalog), token="wrong")
    assert r.exit_code == 1 and r.report is None
    assert _failed(r) == {"API token": "the API rejected the token: GET /version: 401 authentication failure"}
    assert "wrong" not in str(r.preflight.to_dict())
    assert stacks.calls == [] and journal.recent_runs() == []


def test_preflight_names_missing_privileges_node_storage_bridge_and_template(env, journal, tls, pve, sem):
    pve.privileges = {"/": {"Sys.Audit": 1, "Datastore.Audit": 1, "VM.Audit": 1}, "/vms": {"VM.Allocate": 1}}
    pve.storages[1]["content"] = "images"
    pve.bridges = [{"iface": "vmbr1", "type": "bridge", "active": 1}]
    pve.appliances = []
    r = run(env, journal, tls, sem, Stacks(), Smokes(env.catalog))
    failed = _failed(r)
    assert failed["token privileges"].startswith("missing: VM.Config.CPU on /vms, VM.Config.Disk on /vms")
    assert "Datastore.AllocateSpace on /storage/local-lvm" in failed["token privileges"]
    assert "Datastore.AllocateTemplate on /storage/local" in failed["token privileges"]
    assert failed["storage"] == "storage 'local-lvm' does not hold CT volumes (content lacks rootdir)"
    assert failed["bridge"] == "bridge 'vmbr0' not on pve-deploy (bridges: vmbr1)"
    assert failed["LXC template"] == f"local:vztmpl/{TEMPLATE} is missing and not in the appliance index"
    assert pve.writes() == [] and r.report is None


def test_preflight_verifies_tls_and_explains_an_untrusted_certificate(env, journal, tls, pve, sem):
    r = run(env, journal, tls, sem, Stacks(), Smokes(env.catalog), verify=True)  # system store: the double's CA is not in it
    assert "its TLS certificate is not trusted" in _failed(r)["Proxmox API"]
    assert pve.requests == []  # the handshake failed before any request
    ok = run(env, journal, tls, sem, Stacks(), Smokes(env.catalog), dry_run=True)
    api_check = next(c for c in ok.preflight.checks if c.name == "Proxmox API")
    assert api_check.status == "ok" and f"TLS verified against {tls[0]}" in api_check.detail


def test_cli_dry_run_on_the_real_container_lab_says_it_skips_semaphore(run_cli, repo_root, tmp_path):
    code, out, err = run_cli("bootstrap", "--dry-run", "--platform", str(repo_root / "examples/ctlab/platform.yaml"),
                             env={"RALF_SECRETS_DIR": str(tmp_path / "s"), "RALF_STATE_DIR": str(tmp_path / "st")})
    assert code == 0, err
    assert "would bring up the local LXC node (namespace ralf-ctlab, bridge ralfct0)" in out
    assert "no semaphore section: no seeding and no Semaphore smoke" in out
    assert "1. RALF Postgres Apply  stacks 020-postgres-lxc 021-postgres-config" in out
    assert "OpenTofu" not in out  # the LXC node realises the *-lxc stacks itself


def test_cli_preflight_failure_is_one_clear_message(run_cli, env, tmp_path):
    (env.secrets / "pve.env").unlink()
    code, out, err = run_cli("bootstrap", "--platform", str(env.file))
    assert code == 1
    assert "FAIL  API token:" in out and "pve.env" in out and "Traceback" not in out + err
    assert "preflight failed" in out


def test_cli_a_missing_proxmox_ca_file_is_one_clear_message(run_cli, env, tmp_path):
    text = env.file.read_text().replace("ca_file: /opt/ralf/runtime/secrets/pve-root-ca.pem",
                                        f"ca_file: {tmp_path / 'missing-ca.pem'}")
    env.file.write_text(text)
    code, out, err = run_cli("bootstrap", "--dry-run", "--platform", str(env.file))
    assert code == 1 and "Traceback" not in out + err
    assert f"FAIL  Proxmox API: cannot use the CA file {tmp_path / 'missing-ca.pem'} for the Proxmox API" in out


def test_preflight_fails_when_the_node_does_not_hold_ralfs_key_and_says_how_to_install_it(env, journal, tls, pve, sem):
    env.node.keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKey someone@else\n"
    stacks = Stacks()
    r = run(env, journal, tls, sem, stacks, Smokes(env.catalog))
    assert r.exit_code == 1 and stacks.calls == [] and journal.recent_runs() == []
    check = next(c for c in r.preflight.checks if c.name == "pct exec access")
    assert check.status == "fail"
    assert check.detail == "~/.ssh/authorized_keys on root@10.10.10.10 does not hold ralf_ed25519.pub"
    assert check.fix == (f"once: `ssh-copy-id -i {env.secrets / 'ralf_ed25519.pub'} root@10.10.10.10` "
                         "(Proxmox keeps it in /etc/pve/priv/authorized_keys)")
    env.node.keys = None  # sshd refuses the key outright
    r = run(env, journal, tls, sem, stacks, Smokes(env.catalog))
    check = next(c for c in r.preflight.checks if c.name == "pct exec access")
    assert (check.status, check.detail) == ("fail", f"root@10.10.10.10 refuses ralf's key {env.secrets / 'ralf_ed25519'}")
    assert check.fix.startswith("once: `ssh-copy-id -i ")


def test_preflight_checks_each_node_that_holds_a_service(env, journal, tls, pve, sem):
    data = yaml.safe_load(env.file.read_text())
    data["proxmox"]["nodes"] = {"pve-2": {}}
    data["services"]["exo"]["node"] = "pve-2"
    env.file.write_text(yaml.safe_dump(data, sort_keys=False))
    env.catalog = Catalog(load_platform(env.file))
    r = run(env, journal, tls, sem, Stacks(), Smokes(env.catalog))
    failed = _failed(r)
    assert failed["node on pve-2"] == "node 'pve-2' is missing (nodes: pve-deploy)"
    assert failed["pct exec access on pve-2"] == "node pve-2 holds CTs but has no ssh_host"
    assert "node" not in failed and "pct exec access" not in failed  # the default node is fine
    assert r.report is None


def test_preflight_names_a_too_old_opentofu(env, journal, tls, pve, sem, tmp_path):
    (tmp_path / "bin" / "tofu").write_text('#!/bin/sh\necho \'{"terraform_version": "1.6.2"}\'\n')
    r = run(env, journal, tls, sem, Stacks(), Smokes(env.catalog), dry_run=True)
    assert "is version 1.6.2, but ralf's OpenTofu stacks need >= 1.10.0" in _failed(r)["OpenTofu"]
    assert r.exit_code == 1
