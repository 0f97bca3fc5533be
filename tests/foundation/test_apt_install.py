"""scripts/apt-install.sh: packages install without starting or enabling their system services."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_nginx_installs_without_a_system_service(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    policy = tmp_path / "policy-rc.d"
    # apt-get records its arguments and whether service starts were refused while it ran
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "apt-get $* policy=$({policy} nginx start; echo $?),$({policy} lxc-net start; echo $?)"'
        f' >> {log}\n')
    for tool in ("systemctl", "update-rc.d"):  # never the machine's own: the test must not disable anything
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "RALF_POLICY_RC_D": str(policy)}
    p = subprocess.run(["bash", "scripts/apt-install.sh", "--no-install-recommends", "nginx", "git"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("apt-get update")
    assert calls[1].startswith("apt-get install -y -qq --no-install-recommends nginx git policy=101,0")
    assert "systemctl disable --now nginx" in calls and "update-rc.d nginx disable" in calls
    assert not any("git" in c for c in calls if not c.startswith("apt-get"))
    assert not policy.exists()  # the refusal was only for the install


def test_a_machines_own_policy_is_left_alone(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "systemctl", "update-rc.d"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "RALF_POLICY_RC_D": str(policy)}
    p = subprocess.run(["bash", "scripts/apt-install.sh", "nginx"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
