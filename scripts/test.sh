#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole test suite: Python tests on the real stack, the C driver,
# and the mpirun -n 2 tests. Extra arguments go to pytest (e.g. -k dcdm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
venv="${ACCEL_VENV:-$here/.venv}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
