#!/usr/bin/env bash
# Idempotent set-up for accel on Debian 12 (bookworm) or Debian 13 (trixie).
# Installs the Debian scientific stack (DOLFINx, petsc4py, mpi4py), creates a venv that sees it,
# and installs the Python dependencies and accel itself (editable) into that venv.
#
#   scripts/setup.sh            # venv in ./.venv
#   ACCEL_VENV=/path scripts/setup.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ACCEL_VENV:-$here/.venv}"
log() { printf '[accel setup] %s\n' "$*" >&2; }

if [ ! -r /etc/os-release ]; then
  log "cannot read /etc/os-release: this script supports Debian 12/13 only; see README 'Other systems' (conda-forge)."
  exit 3
fi
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
  debian:12) debver=12 ;;
  debian:13) debver=13 ;;
  *)
    log "unsupported system '${PRETTY_NAME:-unknown}'. Supported: Debian 12 and 13."
    log "Elsewhere use conda-forge: see README section 'Other systems'."
    exit 3 ;;
esac
log "Debian $debver detected"

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi

debs="python3-dolfinx python3-petsc4py python3-mpi4py python3-venv python3-dev petsc-dev python3-gmsh"
missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq $missing >/dev/null
else
  log "Debian packages already installed"
fi

syspy=/usr/bin/python3
if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv (with system site packages, so it sees Debian's DOLFINx and petsc4py)"
  "$syspy" -m venv --system-site-packages "$venv"
fi
py="$venv/bin/python"

# numpy must match the ABI Debian's petsc4py was built against.
if [ "$debver" = 12 ]; then
  numpy_pin="numpy==1.26.4"      # 1.24 (Debian's) is too old for onnx's ml_dtypes; 2.x breaks petsc4py
else
  numpy_pin=""                   # Debian 13 ships numpy 2.x: keep the system one, never downgrade
fi

stamp="$venv/.accel-setup-stamp"
want="$(sha256sum "$here/pyproject.toml" "$here/scripts/setup.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "Python packages up to date"
else
  log "installing Python packages (torch CPU wheel, onnxruntime, onnx, pluggy, ...)"
  "$py" -m pip install -q --upgrade pip >/dev/null
  # Install accel with its pinned deps; the constraint keeps pip from replacing the system numpy on Debian 13.
  cons="$(mktemp)"
  if [ -n "$numpy_pin" ]; then echo "$numpy_pin" > "$cons"; else
    echo "numpy==$("$syspy" -c 'import numpy; print(numpy.__version__)')" > "$cons"; fi
  "$py" -m pip install -q -c "$cons" $numpy_pin -e "$here[dev]"
  rm -f "$cons"
  echo "$want" > "$stamp"
fi

"$py" - <<'PY'
import numpy, petsc4py, mpi4py, dolfinx, onnxruntime, torch
from petsc4py import PETSc
print(f"[accel setup] ok: numpy {numpy.__version__}, petsc4py {petsc4py.__version__}, "
      f"dolfinx {dolfinx.__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}")
PY
