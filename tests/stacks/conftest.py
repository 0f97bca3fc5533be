"""Fixtures for the stack runner: a stand-in ``tofu`` (and ``ansible-playbook``) on PATH, test platforms.

The stand-ins record argv, the NAMES of their environment variables and their working directory as
JSON lines, and fail the way the real programs do when a behaviour file asks them to.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from ports import free_port

REPO = Path(__file__).resolve().parents[2]

FAKE = r'''#!{python}
import json, os, sys
RECORD = {record!r}
BEHAVIOUR = {behaviour!r}
NAME = {name!r}
args = sys.argv[1:]
with open(RECORD, "a") as f:
    block = json.load(open("ralf_import.tf.json")) if os.path.exists("ralf_import.tf.json") else None
    f.write(json.dumps({{"prog": NAME, "argv": args, "env": sorted(os.environ), "cwd": os.getcwd(),
                        "import_block": block}}) + "\n")
try:
    b = json.load(open(BEHAVIOUR))
except (OSError, ValueError):
    b = {{}}
'''

# The rest is not passed through str.format (braces are literal).
FAKE_BODY = r'''
cmd = args[0] if args and not args[0].startswith("-") else ""
def say(level, message, **extra):
    # OpenTofu's JSON UI lines (as captured in tests/data/tofu, with OpenTofu's module and version keys)
    print(json.dumps({"@level": level, "@message": message, "@module": "tofu.ui",
                      "@timestamp": "2026-11-28T06:59:18.477366Z", **extra}))
def error(summary, detail=""):
    say("error", "Error: " + summary, type="diagnostic",
        diagnostic={"severity": "error", "summary": summary, "detail": detail})
    sys.exit(1)
if NAME == "ansible-playbook":
    if args == ["--version"]:
        print("ansible-playbook [core %s]" % b.get("ansible_version", "2.18.6"))
        print("  python version = 3.11")
        sys.exit(0)
    counter = RECORD + ".ansible"
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(n + 1))
    down = n < b.get("unreachable_times", 0)
    bad = b.get("failed", False)
    # what ralf's ralf_events callback writes (format: tests/data/ansible/), and the recap a person reads
    events = os.environ.get("RALF_ANSIBLE_EVENTS")
    recap = {"host1": {"ok": 1, "changed": 1, "unreachable": 0, "failed": int(bad), "skipped": 0, "rescued": 0,
                       "ignored": 0},
             "host2": {"ok": 0, "changed": 0, "unreachable": int(down), "failed": 0, "skipped": 0, "rescued": 0,
                       "ignored": 0}}
    if events and "--limit" in args:
        recap = {h: recap[h] for h in args[args.index("--limit") + 1].split(",")}
    if events:
        with open(events, "a") as f:
            if down and "host2" in recap:
                f.write(json.dumps({"event": "unreachable", "host": "host2", "task": "Gathering Facts",
                                    "msg": "Task failed: Failed to connect to the host via ssh"}) + "\n")
            if bad:
                f.write(json.dumps({"event": "failed", "host": "host1", "task": "configure",
                                    "msg": b.get("failed_msg", "boom"), "ignored": False}) + "\n")
            f.write(json.dumps({"event": "stats", "hosts": recap}) + "\n")
    print("PLAY RECAP *********")
    for h, c in recap.items():
        print("%s : ok=%d    changed=%d    unreachable=%d    failed=%d" % (h, c["ok"], c["changed"], c["unreachable"], c["failed"]))
    sys.exit(2 if bad else 4 if down else 0)
if args == ["version", "-json"]:
    print(json.dumps({"terraform_version": b.get("version", "1.10.6"), "platform": "linux_amd64",
                      "provider_selections": {}}))
    sys.exit(0)
if cmd in ("init", "plan", "apply") and "-json" in args:
    say("info", "OpenTofu 1.10.6", tofu="1.10.6", type="version", ui="1.2")
if b.get("echo_secret") and cmd == b["echo_secret"]:
    say("info", "token is " + os.environ.get("TF_VAR_pm_api_token_secret", ""))
    say("info", "aws is " + os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
if b.get("lock") == cmd:
    error("Error acquiring the state lock", "Error message: operation error S3: PutObject, StatusCode: 412\n"
          "Lock Info:\n  ID: 1234\n  Who: other@host")
if b.get("fail") == cmd:
    error("something else broke")
# what OpenTofu plans: one in-place update of the container unless the behaviour file says otherwise
CHANGES = b.get("plan_changes", [{"address": "module.lxc.proxmox_virtual_environment_container.this",
                                   "mode": "managed", "change": {"actions": ["update"]}}])
IMPORT = "ralf_import.tf.json"
if os.path.exists(IMPORT) and "after_import" in b:
    CHANGES = b["after_import"]
def summary(op, changes):
    counts = {"add": 0, "change": 0, "import": 0, "remove": 0, "operation": op}
    for rc in changes:
        for a in rc["change"]["actions"]:
            if a != "no-op":
                counts[{"create": "add", "update": "change", "delete": "remove"}[a]] += 1
        counts["import"] += "importing" in rc["change"]
    words = "%d to add, %d to change, %d to destroy." % (counts["add"], counts["change"], counts["remove"])
    if op == "apply":
        words = "Apply complete! Resources: %d added, %d changed, %d destroyed." % (
            counts["add"], counts["change"], counts["remove"])
    say("info", ("Plan: " if op == "plan" else "") + words, type="change_summary", changes=counts)
if cmd == "init":
    say("info", "Initializing the backend...", message_code="initializing_backend_message", type="init_output")
    if "-backend-config=backend.hcl" in args and not os.path.exists("backend.hcl"):
        error("Failed to read file", 'The file "backend.hcl" could not be read.')
    say("info", "OpenTofu has been successfully initialized!", message_code="output_init_success_message",
        type="init_output")
elif cmd == "plan":
    if os.path.exists(IMPORT):
        block = json.load(open(IMPORT))["import"][0]
        tries = int(open(".import-tries").read()) if os.path.exists(".import-tries") else 0
        open(".import-tries", "w").write(str(tries + 1))
        if b.get("import_error"):
            error(b["import_error"])
        if b.get("import_fails") or tries < b.get("import_missing_times", 0):
            error("Cannot import non-existent remote object",
                  'While attempting to import an existing object to "%s", the provider detected that no object '
                  "exists with the given id. Only pre-existing objects can be imported; check that the id is "
                  "correct and that it is associated with the provider's configured region or endpoint, or use "
                  '"tofu apply" to create a new remote object for this resource.' % block["to"])
        CHANGES = [dict(rc, change=dict(rc["change"], importing={"id": block["id"]}))
                   if rc["address"] == block["to"] else rc for rc in CHANGES]
    out = [a.split("=", 1)[1] for a in args if a.startswith("-out=")]
    if out:
        json.dump({"format_version": "1.2", "resource_changes": CHANGES}, open(out[0], "w"))
    summary("plan", CHANGES)
elif cmd == "show":
    if not os.path.exists(args[-1]):
        error("Failed to read the given file as a state or plan file")
    print(open(args[-1]).read())
elif cmd == "apply":
    planned = json.load(open(args[-1]))["resource_changes"]
    if any("importing" in rc["change"] for rc in planned):
        open(".imported", "w").close()
    elif b.get("already_exists") and not os.path.exists(".imported"):
        error("error creating container: received an HTTP 500 response - Reason: unable to create CT 4020 - "
              "CT 4020 already exists on node 'pve-deploy'")
    summary("apply", planned)
else:
    print("stand-in tofu: unexpected command %r" % args, file=sys.stderr)
    sys.exit(1)
sys.exit(0)
'''


class Fakes:
    def __init__(self, root: Path) -> None:
        self.bin = root / "fakebin"
        self.bin.mkdir()
        self.record = root / "calls.jsonl"
        self.behaviour = root / "behaviour.json"

    def install(self, name: str) -> Path:
        p = self.bin / name
        p.write_text(FAKE.format(python=sys.executable, record=str(self.record),
                                 behaviour=str(self.behaviour), name=name) + FAKE_BODY)
        p.chmod(0o755)
        return p

    def behave(self, **kw) -> None:
        self.behaviour.write_text(json.dumps(kw))

    def calls(self, prog: str | None = None, versions: bool = False) -> list[dict]:
        """Recorded calls; the version questions every run asks first are left out unless ``versions``."""
        if not self.record.exists():
            return []
        rows = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r for r in rows if (prog is None or r["prog"] == prog)
                and (versions or r["argv"] not in (["version", "-json"], ["--version"]))]


@pytest.fixture
def fakes(tmp_path, monkeypatch) -> Fakes:
    f = Fakes(tmp_path)
    f.install("tofu")
    monkeypatch.setenv("PATH", f"{f.bin}{os.pathsep}{os.environ['PATH']}")
    return f


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("RALF_STATE_DIR", str(d))
    monkeypatch.delenv("ONLY_STACKS", raising=False)
    monkeypatch.delenv("START_AT", raising=False)
    monkeypatch.delenv("AUTO_APPLY", raising=False)
    monkeypatch.delenv("PVE_TOKEN_ID", raising=False)
    monkeypatch.delenv("PVE_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("RALF_TOFU", raising=False)
    return d


PVE_SECRET = "pve-secret-Zq81xY"
# what the node's /etc/pve/pve-root-ca.pem looks like to ralf (only its PEM form is checked; tofu is a stand-in)
TEST_CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


@pytest.fixture
def default_copy(tmp_path, state, fakes):
    """The real platform.yaml with secrets and stacks in temp dirs (dummy playbooks, creds in place).

    A stand-in ``ansible-playbook`` is always first on PATH: the default platform's hosts live on
    10.10.x.x and must never be contacted.
    """
    fakes.install("ansible-playbook")
    from ralf.loader import load_platform
    from ralf.secrets import init_secrets

    text = (REPO / "platform.yaml").read_text()
    secrets_dir = tmp_path / "secrets"
    stacks_dir = tmp_path / "stacks"
    assert "dir: /opt/ralf/runtime/secrets" in text and "stacks_dir" not in text
    text = text.replace("dir: /opt/ralf/runtime/secrets", f"dir: {secrets_dir}")
    assert "ca_file: /opt/ralf/runtime/secrets/pve-root-ca.pem" in text
    text = text.replace("ca_file: /opt/ralf/runtime/secrets/", f"ca_file: {secrets_dir}/")
    text += f"\nstacks_dir: {stacks_dir}\n"
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    p = load_platform(path)
    for s in p.services.values():
        for ref in s.stack_refs:
            if ref.type == "ansible":
                (stacks_dir / ref.name).mkdir(parents=True)
                (stacks_dir / ref.name / "playbook.yml").write_text("- hosts: all\n  tasks: []\n")
    init_secrets(p)
    (secrets_dir / "pve.env").write_text(f"PVE_TOKEN_ID=ralf@pve!ralf\nPVE_TOKEN_SECRET={PVE_SECRET}\n")
    (secrets_dir / "pve.env").chmod(0o600)
    (secrets_dir / "ralf_ed25519.pub").write_text("ssh-ed25519 AAAATEST ralf\n")
    (secrets_dir / "pve-root-ca.pem").write_text(TEST_CA_PEM)
    return p


def closed_port() -> int:
    return free_port()  # released at once: nothing listens there


@pytest.fixture
def local_platform(tmp_path, state):
    """A platform whose Ansible stacks are real local playbooks (connection: local) in a temp dir.

    ``make(playbooks)`` takes {stack_name: playbook_yaml}; services are derived from the names.
    """
    from ralf.loader import load_platform

    def make(playbooks: dict[str, str]):
        stacks_dir = tmp_path / "stacks"
        services = {}
        groups = ["phase1", "web"]
        for i, (stack, body) in enumerate(playbooks.items()):
            (stacks_dir / stack).mkdir(parents=True, exist_ok=True)
            (stacks_dir / stack / "playbook.yml").write_text(textwrap.dedent(body))
            svc = stack.split("-")[1]
            services.setdefault(svc, {"stacks": [], "i": i})["stacks"].append(stack)
        lines = [
            "version: 1", "name: test-local", "network: {cidr: 127.0.0.0/8}",
            f"secrets: {{dir: {tmp_path / 'secrets'}}}",
            f"stacks_dir: {stacks_dir}",
            f"ansible: {{connection: local, python_interpreter: {sys.executable}}}",
            "groups:", "  - {name: phase1, word: Phase1, phase1: true}", "  - {name: web, word: Web}",
            "services:",
        ]
        for j, (svc, info) in enumerate(services.items()):
            group = groups[min(j, 1)]
            lines += [
                f"  {svc}:",
                f"    word: W{svc}", f"    group: {group}", f"    ip: 127.0.{10 + j}.10",
                f"    hostname: {svc}.test", f"    stacks: [{', '.join(info['stacks'])}]",
            ]
        if len(services) == 1:  # every group needs a service
            lines += ["  extra:", "    word: Extra", "    group: web", "    ip: 127.0.99.10",
                      "    hostname: extra.test", "    stacks: [099-extra-config]"]
            (stacks_dir / "099-extra-config").mkdir(parents=True, exist_ok=True)
            (stacks_dir / "099-extra-config" / "playbook.yml").write_text(
                "- hosts: extra\n  gather_facts: false\n  tasks: []\n")
        path = tmp_path / "platform.yaml"
        path.write_text("\n".join(lines) + "\n")
        return load_platform(path)

    return make


@pytest.fixture
def dead_port() -> int:
    """A 127.0.0.1 port nothing listens on (for UNREACHABLE hosts)."""
    return closed_port()
