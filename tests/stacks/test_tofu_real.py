"""The version check, the destroy guard and adopting a running platform, with the real engine.

No provider can be downloaded here, so the LXC module is stood in for by a module of the same
variables (the real ``variables.tf``, validations included) whose one resource is Terraform's
built-in ``terraform_data``: the arguments bpg/proxmox cannot update in place (node, CT id,
storage) are its ``triggers_replace``, the rest its ``input``. Everything else — the root module
ralf renders (``moved`` blocks included), the command lines, the saved plan and its ``show -json``
— is the real thing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ralf import tofu_config
from ralf.loader import load_platform
from ralf.secrets import init_secrets
from ralf.stacks import run_stacks

REPO = Path(__file__).resolve().parents[2]
ENGINE = shutil.which("tofu") or shutil.which("terraform")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ENGINE is None, reason="needs a tofu or terraform binary"),
]
STACK = "020-postgres-lxc"
STAND_IN = "terraform_data"

PLATFORM = """\
version: 1
name: realtofu
network: {{cidr: 127.0.0.0/8}}
proxmox: {{api_url: "https://127.0.0.1:1/api2/json", node: pve, lxc_template: "local:vztmpl/x.tar.zst"}}
state_backend: {{endpoint: "http://127.0.0.1:1", bucket: tofu-state, local_state_stacks: [{stack}]}}
secrets: {{dir: {secrets}}}
groups:
  - {{name: phase1, word: Phase1, phase1: true}}
services:
  postgres:
    word: PostgreSQL
    group: phase1
    ip: 127.0.0.10
    hostname: postgres.test
    ct_id: {ct_id}
    size: {{cores: 2, memory_mb: 4096, disk_gb: 32}}
    stacks: [{stack}]
"""

STAND_IN_MAIN = """\
resource "terraform_data" "this" {
  triggers_replace = [var.node_name, var.vm_id, var.datastore_id]
  input = {
    hostname = var.hostname
    tags     = var.tags
    cores    = var.cores
    memory   = var.memory_mb
    nesting  = var.nesting
  }
}
"""
STAND_IN_OUTPUTS = """\
output "vm_id" { value = var.vm_id }
output "ipv4_address" { value = var.ipv4_address }
"""

# The original RALF's 020-postgres-lxc, in its shape: one resource named after the service.
ORIGINAL = """\
resource "terraform_data" "postgres" {
  triggers_replace = ["pve", 2010, "local-lvm"]
  input = {
    hostname = "postgres"
    tags     = []
    cores    = 2
    memory   = 4096
    nesting  = true
  }
}
"""


@pytest.fixture
def engine_env(tmp_path, monkeypatch, state):
    monkeypatch.setenv("PVE_TOKEN_ID", "t@pve!x")
    monkeypatch.setenv("PVE_TOKEN_SECRET", "unused-secret")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    (tmp_path / "none.tfrc").write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "none.tfrc"))
    return tmp_path


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A repo root whose tofu/modules/lxc is the provider-free stand-in; ralf renders against it."""
    root = tmp_path / "repo"
    mod = root / tofu_config.MODULE_DIR
    mod.mkdir(parents=True)
    shutil.copy(REPO / tofu_config.MODULE_DIR / "variables.tf", mod / "variables.tf")
    (mod / "main.tf").write_text(STAND_IN_MAIN)
    (mod / "outputs.tf").write_text(STAND_IN_OUTPUTS)

    def render(platform, stack_name, repo_root):
        doc = json.loads(tofu_config.render_stack(platform, stack_name, root)["main.tf.json"])
        del doc["provider"], doc["terraform"]["required_providers"]
        doc["moved"] = [{k: v.replace(tofu_config.CONTAINER_TYPE, STAND_IN) for k, v in m.items()}
                        for m in doc["moved"]]
        return {"main.tf.json": json.dumps(doc, indent=2)}

    monkeypatch.setattr("ralf.stacks.tofu.root_module", render)
    return root


def _platform(tmp_path, ct_id=2010):
    path = tmp_path / "platform.yaml"
    path.write_text(PLATFORM.format(secrets=tmp_path / "secrets", stack=STACK, ct_id=ct_id))
    p = load_platform(path)
    init_secrets(p)
    return p


def _original_state(tmp_path, state) -> dict:
    """Apply the original's configuration; its state file goes where ralf keeps this stack's local state."""
    orig = tmp_path / "original"
    orig.mkdir()
    (orig / "main.tf").write_text(ORIGINAL)
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    for argv in ([ENGINE, "init", "-input=false"], [ENGINE, "apply", "-auto-approve", "-input=false"]):
        r = subprocess.run(argv, cwd=orig, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    wd = state / "tofu" / STACK
    wd.mkdir(parents=True)
    shutil.copy(orig / "terraform.tfstate", wd / "terraform.tfstate")
    return json.loads((orig / "terraform.tfstate").read_text())


def _resources(state) -> dict[str, str]:
    """address -> id of what ralf's state now holds."""
    doc = json.loads((state / "tofu" / STACK / "terraform.tfstate").read_text())
    out = {}
    for r in doc["resources"]:
        addr = ".".join(p for p in (r.get("module"), r["type"], r["name"]) if p)
        out[addr] = r["instances"][0]["attributes"]["id"]
    return out


def test_the_version_check_reads_the_real_engine(engine_env):
    from ralf.stacks.versions import TOFU_MIN, check_tofu

    v = check_tofu(ENGINE, {**os.environ, "CHECKPOINT_DISABLE": "1"})
    first = subprocess.run([ENGINE, "version"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "CHECKPOINT_DISABLE": "1"}).stdout.splitlines()[0]
    assert first.endswith("v" + ".".join(map(str, v)))  # the JSON agrees with what a person reads
    assert v >= TOFU_MIN


def test_adopting_an_original_state_destroys_nothing(engine_env, stand_in, state, tmp_path):
    original = _original_state(tmp_path, state)
    before = next(r for r in original["resources"] if r["name"] == "postgres")["instances"][0]["attributes"]["id"]
    p = _platform(tmp_path)
    lines: list[str] = []
    plan = run_stacks(p, STACK, apply=False, tofu_binary=ENGINE, on_output=lines.append)
    assert plan.ok and plan.results[0].note == ""  # nothing to destroy
    assert plan.results[0].changed == 1  # an in-place update (tags, hostname): adopted, not replaced
    result = run_stacks(p, STACK, apply=True, tofu_binary=ENGINE)
    log = result.results[0].log_path.read_text()
    assert result.ok, log
    assert "0 destroyed" in log and "1 changed" in log
    assert _resources(state) == {f"module.lxc.{STAND_IN}.this": before}  # the same object, at ralf's address
    again = run_stacks(p, STACK, apply=True, tofu_binary=ENGINE)
    assert again.ok and again.results[0].changed == 0


def test_without_the_moved_block_the_guard_stops_the_destroy(engine_env, stand_in, state, tmp_path, monkeypatch):
    # what the first Apply on the running platform would have done: 1 to add, 1 to destroy
    original = _original_state(tmp_path, state)
    monkeypatch.setattr(tofu_config, "moved_blocks", lambda *a, **k: [])
    result = run_stacks(_platform(tmp_path), STACK, apply=True, tofu_binary=ENGINE)
    assert result.exit_code == 1
    assert result.results[0].note.startswith(
        f"refused: the plan destroys data (delete {STAND_IN}.postgres: it is no longer in the configuration")
    assert json.loads((state / "tofu" / STACK / "terraform.tfstate").read_text())["serial"] == original["serial"]


def test_the_guard_refuses_a_replacement_and_allows_it_with_the_flag(engine_env, stand_in, state, tmp_path):
    assert run_stacks(_platform(tmp_path), STACK, apply=True, tofu_binary=ENGINE).ok
    first = _resources(state)
    moved_ct = _platform(tmp_path, ct_id=2011)  # a new CT id: bpg/proxmox must replace the container
    refused = run_stacks(moved_ct, STACK, apply=True, tofu_binary=ENGINE)
    assert refused.exit_code == 1
    assert refused.results[0].note.startswith(
        f"refused: the plan destroys data (replace module.lxc.{STAND_IN}.this: a changed argument cannot be "
        "updated in place (forced by: triggers_replace)); nothing was applied.")
    assert _resources(state) == first
    assert not (state / "tofu" / STACK / "ralf.tfplan").exists()
    allowed = run_stacks(moved_ct, STACK, apply=True, tofu_binary=ENGINE, allow_destroy=[STACK])
    assert allowed.ok and allowed.results[0].changed == 2
    assert _resources(state).keys() == first.keys() and _resources(state) != first
