#!/usr/bin/env bash
# The README's second command: install what the tests need, then run them with only loopback networking.
#
#   bash scripts/test.sh [PYTEST ARGS...]
#
# Installs, only when missing: nginx, PostgreSQL, Chromium and iproute2 (apt-get; as root also lxc and
# debootstrap, then the real-container lab's CT template and package cache), and ralf with its test
# extras (pip, into this checkout's .venv; ralf alone, without extras, into .venv-plain). Then runs
# `python -m pytest -q`
# inside a network namespace where only loopback is up (as root, with unshare), so no test can reach a real
# network. RALF_REQUIRE_NETNS=1 (set by CI) refuses to run the tests without that namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v git >/dev/null 2>&1 || need+=(git)
if [ "$(id -u)" -eq 0 ]; then  # real LXC containers (the real-container lab, the roles' converge tests)
  command -v lxc-start >/dev/null 2>&1 || need+=(lxc)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
fi
if ((${#need[@]})); then
  echo "test.sh: installing ${need[*]} (apt-get; their system services are not started or enabled)"
  bash scripts/apt-install.sh --no-install-recommends "${need[@]}"
fi

# One install location for both README commands: this checkout's .venv (never the global Python).
[ -x .venv/bin/python ] || python3 -m venv .venv
PY=.venv/bin/python
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
# A plain install as the Semaphore host has it (`pip install ralf`, no extras): tests run its `ralf smoke`.
[ -x .venv-plain/bin/python ] || python3 -m venv .venv-plain
.venv-plain/bin/python -m pip install -q --disable-pip-version-check -e .
BIN="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")"
export PATH="$BIN:$PATH"   # ralf and ansible-playbook from the same Python as the tests

# What the containers need comes from the package registries now, while there is network (the CT
# template and a cache of Debian packages, wheels and npm tarballs); the tests then run from it.
if [ "$(id -u)" -eq 0 ] && command -v lxc-start >/dev/null 2>&1; then
  echo "test.sh: preparing the real-container lab (CT template and package cache; cached after the first run)"
  ralf lab prepare --real
  [ "${RALF_REQUIRE_NETNS:-0}" = "1" ] && export RALF_REQUIRE_LXC=1   # CI: real containers must run, never skip
fi

if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && exec "$0" -m pytest -q -p no:cacheprovider "$@"' "$PY" "$@"
elif [ "${RALF_REQUIRE_NETNS:-0}" = "1" ]; then
  echo "test.sh: cannot create a loopback-only network namespace (needs root and unshare)" >&2
  exit 1
else
  echo "test.sh: not root: running without a network namespace (the tests still only use 127.0.0.1)" >&2
  exec "$PY" -m pytest -q -p no:cacheprovider "$@"
fi
