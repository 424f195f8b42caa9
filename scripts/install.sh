#!/usr/bin/env bash
# Set up (or refresh) dreamline's virtual environment in .venv; safe to run again.
#
# The venv sees the system's site-packages, so a torch that is already installed (a CPU build,
# say) is used as it is and never replaced by a multi-GB CUDA build.  Only when no torch is
# importable at all is one installed: TORCH_SPEC (default torch==2.13.0) from PIP's indexes, or
# from TORCH_INDEX_URL if set (e.g. https://download.pytorch.org/whl/cpu for a CPU-only build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=${1:-}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv --system-site-packages .venv
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
