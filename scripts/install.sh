#!/usr/bin/env bash
# Set up (or refresh) dreamline's virtual environment in .venv; safe to run again.
#
# The venv is isolated (no system site-packages), so a dependency that pyproject.toml forgets to
# declare fails here, not on a user's machine.  torch is installed first, on its own, so that you
# choose the build: TORCH_SPEC (default torch==2.13.0) from pip's indexes, or from TORCH_INDEX_URL
# if set (https://download.pytorch.org/whl/cpu for a CPU-only build on Linux, .../whl/cu124 for a
# CUDA one).  A torch already in .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=${1:-}

if [ -x .venv/bin/python ] && .venv/bin/python -c \
    "import sys; sys.exit(sys.prefix != sys.base_prefix and 'system-site-packages = true' in open(sys.prefix + '/pyvenv.cfg').read())"; then
  :
else
  # A .venv from an older dreamline saw the system's packages: make it anew, isolated.
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  torch_spec=${TORCH_SPEC:-torch==2.13.0}
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    .venv/bin/pip install -q --index-url "$TORCH_INDEX_URL" "$torch_spec"
  else
    .venv/bin/pip install -q "$torch_spec"
  fi
fi
.venv/bin/pip install -q -e ".${extras:+[$extras]}"
.venv/bin/python -c "import torch, dreamline; print('dreamline', dreamline.__version__, 'with torch', torch.__version__)"
