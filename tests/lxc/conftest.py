"""Real LXC containers for tests: a node of the test's own (its own namespace, no route out).

These tests need root, LXC and the Debian CT template in the cache (``ralf lab prepare --real``
builds it; CI does so in its install phase, with network, before the tests run without one).
Where that is missing they skip with the reason — unless ``RALF_REQUIRE_LXC=1`` (CI), where a
missing prerequisite is a failure, so real-container coverage can never silently vanish.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("RALF_LXC_CACHE", "/var/cache/ralf/lxc"))


def lxc_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("lxc-start", "lxc-attach", "nsenter", "unshare", "ip", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (CACHE / "rootfs" / "debian-12" / "usr" / "bin" / "python3").exists():
        return f"no Debian 12 CT template in {CACHE} (run `ralf lab prepare --real` with network first)"
    return None


def require_lxc() -> None:
    why = lxc_missing()
    if why is None:
        return
    if os.environ.get("RALF_REQUIRE_LXC") == "1":
        pytest.fail(f"real LXC containers required here (RALF_REQUIRE_LXC=1): {why}")
    pytest.skip(f"real LXC containers: {why}")


REPO = Path(__file__).resolve().parents[2]


def lab_platform(tmp: Path, prefix: str) -> Path:
    """The real-container lab's platform file, made this test's own: its namespace, bridge, LXC path, stacks."""
    tag = f"{prefix}{os.getpid() % 100000}"
    text = (REPO / "examples" / "ctlab" / "platform.yaml").read_text()
    text = text.replace("name: ctlab ", f"name: {tag} ").replace("bridge: ralfct0", f"bridge: r{tag}")
    text = text.replace("  cache_dir: /var/cache/ralf/lxc", f"  cache_dir: /var/cache/ralf/lxc\n  lxc_path: {tmp}/lxc")
    text = text.replace("stacks_dir: ../../stacks", f"stacks_dir: {REPO}/stacks")
    p = tmp / "platform.yaml"
    p.write_text(text)
    return p
