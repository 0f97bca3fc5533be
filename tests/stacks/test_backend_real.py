"""The generated S3 backend, checked by a real engine: Terraform (same S3 backend options as OpenTofu)
stores its state in an S3 server (moto) on 127.0.0.1 under ``<prefix>/<stack>/terraform.tfstate``."""

from __future__ import annotations

import json
import shutil

import pytest

from ralf.loader import load_platform
from ralf.secrets import init_secrets
from ralf.stacks import run_stacks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="needs a terraform binary (OpenTofu is not installable here)"),
]

PLATFORM = """\
version: 1
name: s3test
network: {{cidr: 127.0.0.0/8}}
proxmox: {{api_url: "https://127.0.0.1:1/api2/json", node: pve, lxc_template: "local:vztmpl/x.tar.zst"}}
state_backend:
  endpoint: http://127.0.0.1:{port}
  bucket: tofu-state
  key_prefix: ralf
  credentials_file: minio.env
secrets: {{dir: {secrets}}}
groups:
  - {{name: phase1, word: Phase1, phase1: true}}
services:
  minio:
    word: MinIO
    group: phase1
    ip: 127.0.0.10
    hostname: minio.test
    ct_id: 3010
    stacks: [042-demo-lxc]
    secrets: {{MINIO_ROOT_USER: testing, MINIO_ROOT_PASSWORD: "@random"}}
"""


@pytest.fixture
def s3():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield server.get_host_and_port()[1]
    finally:
        server.stop()


def test_state_lands_in_s3_under_the_stack_key(s3, tmp_path, state, monkeypatch):
    import boto3

    path = tmp_path / "platform.yaml"
    path.write_text(PLATFORM.format(port=s3, secrets=tmp_path / "secrets"))
    p = load_platform(path)
    init_secrets(p)
    monkeypatch.setenv("PVE_TOKEN_ID", "t@pve!x")
    monkeypatch.setenv("PVE_TOKEN_SECRET", "unused")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "none.tfrc"))
    (tmp_path / "none.tfrc").write_text("")
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="tofu-state")
    # A provider-free root module: the backend is what is under test, not the Proxmox provider.
    monkeypatch.setattr("ralf.stacks.tofu.root_module",
                        lambda *a: {"main.tf.json": json.dumps({"output": {"answer": {"value": 42}}})})
    result = run_stacks(p, "042-demo-lxc", apply=True, tofu_binary="terraform")
    log = result.results[0].log_path.read_text()
    assert result.ok, log
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="tofu-state").get("Contents", [])]
    assert keys == ["ralf/042-demo-lxc/terraform.tfstate"]  # the lock file was taken and released
    body = json.loads(client.get_object(Bucket="tofu-state", Key=keys[0])["Body"].read())
    assert body["outputs"]["answer"]["value"] == 42
    assert not (state / "tofu" / "042-demo-lxc" / "terraform.tfstate").exists()  # nothing local
    again = run_stacks(p, "042-demo-lxc", apply=True, tofu_binary="terraform")
    assert again.ok and again.results[0].changed == 0
