"""benchmarks/gpu.sh runs end to end with --cpu (the tiny model) and writes its table to $OUT.

It asserts the table's shape and the pixel agreement, never a speed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 600  # only so a hung run cannot block the suite; no timing is asserted


def run_script(tmp_path: Path, *args: str, python: str = sys.executable
               ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": python, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=HANG_GUARD_S,
                          check=False)


def table_rows(text: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ("txt2img", "img2img"):
            rows[(cells[0], cells[1])] = cells
    return rows


def test_gpu_sh_cpu_writes_the_table(tmp_path: Path) -> None:
    done = run_script(tmp_path, "--cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    written = (tmp_path / "gpu-bench.md").read_text(encoding="utf-8")
    assert written.strip() in done.stdout
    header = next(line for line in written.splitlines() if line.startswith("| mode "))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "mode", "contender", "s/image", "it/s", "ratio to diffusers (time)", "peak RSS MiB",
        "growth MiB", "max px diff", "mean px diff", "note"]
    rows = table_rows(written)
    assert sorted(rows) == sorted((mode, name) for mode in ("txt2img", "img2img")
                                  for name in ("dreamline", "diffusers", "diffusers+compile"))
    for mode in ("txt2img", "img2img"):
        ours, theirs = rows[(mode, "dreamline")], rows[(mode, "diffusers")]
        assert float(ours[2]) > 0 and float(ours[3]) > 0 and float(ours[4]) > 0
        assert theirs[4] == "1.000"
        assert ours[7] == "0" and ours[8] == "0.000"  # the same pixels as diffusers
        assert rows[(mode, "diffusers+compile")][-1] == "skipped (--cpu)"
    assert written.startswith("tiny 64x64 on device cpu")


def test_gpu_sh_without_a_gpu_says_so_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: gpu.sh would run the whole benchmark")
    done = run_script(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bench_gpu: this torch ({torch.__version__}) sees no CUDA GPU; use --cpu to run it "
        f"on the CPU"]


def test_gpu_sh_without_torch_says_so_and_installs_nothing(tmp_path: Path) -> None:
    done = run_script(tmp_path, "--cpu", python="/bin/false")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gpu.sh: /bin/false has no torch, diffusers and transformers (tried $PYTHON, "
        ".venv/bin/python, python3); run scripts/install.sh or set PYTHON"]
