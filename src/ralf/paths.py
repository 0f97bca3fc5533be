"""Where ralf keeps its state: runs, logs, the journal, locks, tofu work directories, the lab.

``$RALF_STATE_DIR`` wins; else ``$XDG_STATE_HOME/ralf``; else ``~/.local/state/ralf``.
"""

from __future__ import annotations

from pathlib import Path


def state_dir() -> Path:
    from ralf import settings

    explicit = settings.get("RALF_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = settings.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "ralf"


def known_hosts() -> Path:
    """The one known_hosts file for every SSH connection ralf makes (Ansible, ssh/pct transports).

    Host keys are recorded on first contact (``StrictHostKeyChecking=accept-new``) and checked ever after;
    a backend that knows the keys in advance records them here and connects with ``yes``.
    """
    return state_dir() / "known_hosts"


def ssh_host_key_options(strict: str = "accept-new") -> list[str]:
    """ssh ``-o`` options that check host keys against :func:`known_hosts`."""
    return ["-o", f"UserKnownHostsFile={known_hosts()}", "-o", f"StrictHostKeyChecking={strict}"]
