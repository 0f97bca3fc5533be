#!/usr/bin/env bash
# The README's first command: set ralf up on a fresh Debian machine and run the main job on a lab.
#
# Where this machine can run LXC containers (root on Debian, with apt-get), the lab is the
# REAL-CONTAINER lab (examples/ctlab/platform.yaml): PostgreSQL, Synapse and Postfix/Dovecot in
# real LXC containers that ralf makes inside a network namespace of their own (no route out),
# converged by the platform's own Ansible roles and checked by the real smoke:
#   1. installs what is missing: lxc, debootstrap and python3-venv with apt-get, ralf with Ansible in .venv;
#   2. ralf lab up --real: the CT template and package cache (the only step that uses the network:
#      Debian's mirror, PyPI and npm, on the host side), the node, and Phase 1 (PostgreSQL, then its smoke);
#   3. the main job: ralf deploy --executor local, the runbook's standard order, then the summary;
#   4. ralf status, and the same board as one HTML page.
# Elsewhere (not root, not Debian, no LXC), or with RALF_QUICKSTART_LAB=loopback (or RALF_LAB_PLATFORM
# set), it says so and runs the LOOPBACK lab instead (examples/lab/platform.yaml: three small services
# on 127.0.x.y, no root at run time), the same steps with nginx instead of lxc.
#
# Everything the labs write is under the state directory (RALF_STATE_DIR, else ~/.local/state/ralf);
# the real-container lab's CTs under /var/lib/ralf/lxc, its cache under /var/cache/ralf/lxc.
# RALF_LAB_PLATFORM picks another loopback lab platform file (the tests use a copy on other addresses).
set -euo pipefail
cd "$(dirname "$0")/.."

LAB="${RALF_LAB_PLATFORM:-examples/lab/platform.yaml}"
say() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- which lab this machine can run
MODE=real
why=""
if [ "${RALF_QUICKSTART_LAB:-}" = "loopback" ]; then why="RALF_QUICKSTART_LAB=loopback"
elif [ -n "${RALF_LAB_PLATFORM:-}" ]; then why="RALF_LAB_PLATFORM names a loopback lab"
elif [ "$(id -u)" -ne 0 ]; then why="not root (LXC containers and network namespaces need root)"
elif [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then why="not a Debian machine with apt-get"
elif ! unshare --mount --net true 2>/dev/null; then why="this machine cannot make namespaces (unshare failed)"
fi
if [ -n "$why" ]; then
  MODE=loopback
  say "real containers are not possible here ($why): running the LOOPBACK lab instead ($LAB)"
else
  LAB=examples/ctlab/platform.yaml
  say "running the REAL-CONTAINER lab ($LAB): real LXC containers on this machine"
fi

# ---------------------------------------------------------------- 1. what the lab needs
need=()
if [ "$MODE" = real ]; then
  command -v lxc-start >/dev/null 2>&1 || need+=(lxc)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
else
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
fi
here_ralf() {  # is this checkout's ralf (with Ansible) importable by "$1"?
  "$1" - <<'PY' 2>/dev/null
import os, sys
import ralf, ansible  # noqa: F401
sys.exit(0 if os.path.realpath(os.path.dirname(ralf.__file__)) == os.path.realpath("src/ralf") else 1)
PY
}
if here_ralf python3; then
  PY=python3
elif [ -x .venv/bin/python ] && here_ralf .venv/bin/python; then
  PY=.venv/bin/python
else
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
  PY=""
fi
if ((${#need[@]})); then
  say "installing ${need[*]} (apt-get; no system nginx is started or enabled: the lab runs its own)"
  bash scripts/apt-install.sh "${need[@]}"
fi
if [ -z "$PY" ]; then
  say "installing ralf and Ansible into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[ansible]'
  PY=.venv/bin/python
fi
# ralf, ansible-playbook and the lab's `ralf lab unit|port` checks come from the same Python.
BIN="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")"
export PATH="$BIN:$PATH"
command -v ralf >/dev/null || { echo "quickstart: ralf is not on PATH after the install ($BIN)" >&2; exit 1; }

# ---------------------------------------------------------------- 2.-4. the main job on the lab
t0=$SECONDS
if [ "$MODE" = real ]; then
  say "the node and Phase 1 in real containers: ralf lab up --real (first run: CT template and packages)"
  ralf lab up --real
else
  say "Phase 1 of the lab: ralf deploy phase1 --executor local --platform $LAB"
  ralf deploy phase1 --executor local --platform "$LAB" --yes --no-log
fi

say "the runbook's standard order: ralf deploy --executor local --platform $LAB"
ralf deploy --executor local --platform "$LAB" --yes

say "the platform at a glance: ralf status --platform $LAB"
BOARD="$("$PY" -c 'from ralf.paths import state_dir; print(state_dir() / "lab" / "status.html")')"
mkdir -p "$(dirname "$BOARD")"   # the real-container lab keeps its state elsewhere: nothing made this one yet
ralf status --platform "$LAB" --html "$BOARD"

echo
echo "The lab is up ($MODE, $((SECONDS - t0)) s after the installs). Next:"
case "$BIN" in
  "$PWD"/.venv/*) echo "  export PATH=\"$BIN:\$PATH\"   put this ralf on your PATH first" ;;
esac
LAB_FILE="$(realpath "$LAB")"   # absolute: the lines below work from any directory
if [ "$MODE" = real ]; then
cat <<EOF_NEXT
  ralf smoke platform --platform $LAB_FILE      check it again (through lxc-attach and the node's network)
  ralf lab status --real                    CTs, units, certificate days
  ralf lab break --real mail tls            break a layer (unit | tls | app), smoke, deploy, watch triage
  open $BOARD      the status board as a page
  ralf lab down --real                      remove every CT, the namespace and every process
EOF_NEXT
else
cat <<EOF_NEXT
  ralf smoke platform --platform $LAB_FILE      check it again
  open $BOARD      the status board as a page
  docs/lab-tour.md                          break something, watch it fail, triage, fix, resume
  ralf lab down                             stop the lab
EOF_NEXT
fi
