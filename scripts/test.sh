#!/usr/bin/env bash
# Install dreamline with its test and ray extras (if needed) and run the whole test suite on the
# CPU (the Ray tests start a local 2-CPU Ray of their own and shut it down).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test,ray
# PYTHONDONTWRITEBYTECODE: the suite leaves the checkout as it found it (no __pycache__).
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q "$@"
