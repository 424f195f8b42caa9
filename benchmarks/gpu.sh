#!/usr/bin/env bash
# dreamline against diffusers on one GPU, in one prepared run of under 8 minutes:
# SD 1.5-size random float16 weights (nothing is downloaded), 512x512 txt2img and img2img
# (-s 20, img2img -f 0.75, Euler on both sides), contenders dreamline, diffusers (fp16, SDPA) and
# diffusers+compile (its documented torch.compile of the UNet); it/s, seconds per image, peak
# CUDA memory and the pixel agreement with diffusers.  Prints a markdown table and writes it to
# $OUT/gpu-bench.md when OUT is set.  Everything after the flags goes to benchmarks/bench_gpu.py.
#
#   bash benchmarks/gpu.sh            # on a CUDA machine
#   bash benchmarks/gpu.sh --cpu      # tiny model, 64x64, 4 steps, no compile: runs anywhere
#
# Python: $PYTHON if set; else .venv/bin/python (what scripts/install.sh makes) when it has
# torch and diffusers; else python3 when it has them.  Nothing is installed: on a fresh GPU
# machine run `TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 bash scripts/install.sh`
# first (it needs the network once), or point PYTHON at an interpreter with a CUDA torch,
# diffusers, transformers and dreamline's other dependencies.  dreamline itself comes from
# src/ (PYTHONPATH), so it need not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Whether an interpreter has the stack, without importing it (an import costs seconds);
# bench_gpu.py itself says so when CUDA is missing.
has_stack() {
  "$1" -c "import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ('torch', 'diffusers', 'transformers')))" 2>/dev/null
}

if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
elif [ -x .venv/bin/python ] && has_stack .venv/bin/python; then
  python=.venv/bin/python
else
  python=python3
fi
if ! has_stack "$python"; then
  echo "gpu.sh: $python has no torch, diffusers and transformers (tried \$PYTHON," \
       ".venv/bin/python, python3); run scripts/install.sh or set PYTHON" >&2
  exit 2
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" benchmarks/bench_gpu.py "$@"
