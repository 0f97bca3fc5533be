#!/usr/bin/env bash
# The script every ralf template runs. Semaphore executes a "bash" template as
#     bash <playbook> [template arguments...] [extra vars as k=v...]
# inside its checkout of the template's repository. ralf's templates set the playbook to this file and
# the arguments to ONE command line from the platform file (semaphore.apply_command, or
# semaphore.smoke_command with the target filled in), e.g. ["ralf smoke vault"].
# AUTO_APPLY / START_AT / ONLY_STACKS reach the command through the template's Environment.
set -euo pipefail
if [ "$#" -lt 1 ] || [ -z "$1" ]; then
  echo "semaphore-run: no command line given (template arguments are empty)" >&2
  exit 2
fi
command_line=$1
shift  # anything Semaphore appends is available to the command line as "$@"
export PATH="/usr/local/bin:/usr/bin:/bin:${PATH:-}"
export RALF_REPO="${RALF_REPO:-$PWD}"
if [ -z "${RALF_PLATFORM:-}" ] && [ -f "$PWD/platform.yaml" ]; then
  export RALF_PLATFORM="$PWD/platform.yaml"
fi
echo "semaphore-run: $command_line (AUTO_APPLY=${AUTO_APPLY:-} START_AT=${START_AT:-} ONLY_STACKS=${ONLY_STACKS:-})"
exec bash -c "$command_line" semaphore-run "$@"
