#!/usr/bin/env bash
# Install Debian packages for ralf without starting or enabling their system services.
#
#   bash scripts/apt-install.sh [APT-GET OPTION...] PACKAGE...     (e.g. --no-install-recommends)
#
# Debian's nginx (and postgresql) packages start and enable a system service when installed: a system nginx
# on port 80 on a normal machine. ralf's lab and tests run their own nginx and PostgreSQL processes, so the
# install runs behind a policy-rc.d that refuses to start those two (unless the machine has its own), and
# their services are disabled afterwards; other packages' services (lxc's) behave as usual. Services already installed are
# left exactly as they were.
set -euo pipefail
(($#)) || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

POLICY="${RALF_POLICY_RC_D:-/usr/sbin/policy-rc.d}"  # overridable for the test of this script
ours=0
if [ ! -e "$POLICY" ]; then
  # policy-rc.d gets the service name first: 101 forbids the action, 0 allows it (other services start as usual)
  printf '#!/bin/sh\n# written by ralf scripts/apt-install.sh during an install; removed after it\ncase "$1" in nginx|postgresql*) exit 101 ;; esac\nexit 0\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ours=1
fi
cleanup() { if [ "$ours" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "$@" >/dev/null

for pkg in "$@"; do
  case "$pkg" in
    nginx|nginx-*) unit=nginx ;;
    postgresql|postgresql-*) unit=postgresql ;;
    *) continue ;;
  esac
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    $SUDO update-rc.d "$unit" disable >/dev/null 2>&1 || true
  fi
done
