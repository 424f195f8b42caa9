"""Throughput of a --from_file run on Ray with 1 and then 2 workers (images per minute).

Runs the real CLI (``dreamline --from_file F --ray --ray_workers N``) as a subprocess, once per
worker count, each into a fresh output folder, on the tests' tiny model written to a temporary
folder (``--model tiny``, the default) or on a model of yours (``--models_file models.yaml
--model NAME``).  Each run starts its own local Ray (``--ray_cpus`` cores per worker) unless
``--address`` names a cluster.  Wall time includes Ray's start and each worker's model load, so
use enough lines (``--lines``) for the steady state to dominate.  It prints the machine, its load
before and after, and per run: wall seconds, images, images/min and the speed-up over 1 worker.

    .venv/bin/python benchmarks/bench_ray.py --lines 24 --steps 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO, load_line  # type: ignore[import-not-found]


def tiny_models_file(root: Path) -> Path:
    from model_files import (
        build_model_files,  # the tests' tiny SD 1.x topology, on disk
    )

    return build_model_files(root).registry_yaml


def run_once(models_file: Path, model: str | None, prompts: Path, workers: int,
             args: argparse.Namespace) -> tuple[float, int]:
    outdir = Path(tempfile.mkdtemp(prefix=f"bench-ray-{workers}-"))
    command = [sys.executable, "-m", "dreamline.cli", "-o", str(outdir), "-c", str(models_file),
               "--from_file", str(prompts), "--ray", *([args.address] if args.address else []),
               "--ray_workers", str(workers), "--ray_cpus", str(args.ray_cpus)]
    if model is not None:
        command += ["--model", model]
    env = {**os.environ, "OMP_NUM_THREADS": str(int(args.ray_cpus)),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"the run with {workers} worker(s) failed ({result.returncode})")
    return seconds, len(list(outdir.glob("*.png")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ray_cpus", type=float, default=1.0)
    parser.add_argument("--address", help="auto or ray://host:port (default: a local Ray)")
    parser.add_argument("--models_file", type=Path, help="a models.yaml (default: tiny model)")
    parser.add_argument("--model", help="a name in --models_file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        models_file = args.models_file or tiny_models_file(root / "tiny")
        prompts = root / "prompts.txt"
        prompts.write_text("".join(f"a lighthouse at dusk, photo {index} -s {args.steps} "
                                   f"-S {index}\n" for index in range(args.lines)))
        print(load_line("before"))
        base: float | None = None
        for workers in args.workers:
            seconds, images = run_once(models_file, args.model, prompts, workers, args)
            rate = images / seconds * 60
            if base is None:
                base = rate
            print(f"{workers} worker(s): {seconds:.1f}s wall, {images} images, "
                  f"{rate:.1f} images/min, x{rate / base:.2f} vs the first")
        print(load_line("after"))


if __name__ == "__main__":
    main()
