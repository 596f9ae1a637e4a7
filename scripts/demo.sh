#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the main job: `accel demo` (extra arguments are passed on).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
venv="${ACCEL_VENV:-$here/.venv}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$here"
exec "$venv/bin/accel" demo "$@"
