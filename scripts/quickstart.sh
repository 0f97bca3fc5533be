#!/usr/bin/env bash
# The README's first command: set ralf up on a fresh Debian machine and run the main job on the local lab.
#
#   1. installs what is missing: nginx (the lab's TLS proxy) and python3-venv with apt-get, then ralf with
#      Ansible into .venv (skipped when this checkout's ralf is already importable, e.g. `pip install -e .`);
#   2. Phase 1 of the lab (what the bootstrap does before Semaphore exists): ralf deploy phase1;
#   3. the main job: ralf deploy --executor local over the lab, the runbook's standard order, then the summary;
#   4. ralf status, and the same board as one HTML page.
#
# No network is needed beyond the package installs. Lab services listen on 127.0.x.y only and need no root
# at run time; everything they write is under the state directory (RALF_STATE_DIR, else ~/.local/state/ralf).
# RALF_LAB_PLATFORM picks another lab platform file (the tests use a copy on other addresses).
set -euo pipefail
cd "$(dirname "$0")/.."

LAB="${RALF_LAB_PLATFORM:-examples/lab/platform.yaml}"
say() { printf '\n== %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# ---------------------------------------------------------------- 1. what the lab needs
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
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
  say "installing ${need[*]} (apt-get)"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
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
say "Phase 1 of the lab: ralf deploy phase1 --executor local --platform $LAB"
ralf deploy phase1 --executor local --platform "$LAB" --yes --no-log

say "the runbook's standard order: ralf deploy --executor local --platform $LAB"
ralf deploy --executor local --platform "$LAB" --yes

say "the platform at a glance: ralf status --platform $LAB"
BOARD="$("$PY" -c 'from ralf.paths import state_dir; print(state_dir() / "lab" / "status.html")')"
ralf status --platform "$LAB" --html "$BOARD"

echo
echo "The lab is up. Next:"
case "$BIN" in
  "$PWD"/.venv/*) echo "  export PATH=\"$BIN:\$PATH\"   put this ralf on your PATH first" ;;
esac
cat <<EOF_NEXT
  ralf smoke platform --platform $LAB      check it again
  open $BOARD      the status board as a page
  docs/lab-tour.md                          break something, watch it fail, triage, fix, resume
  ralf lab down                             stop the lab
EOF_NEXT
