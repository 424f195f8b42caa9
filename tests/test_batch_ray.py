"""--from_file FILE --ray (issue 12): a local Ray started here (2 CPUs, 2 workers, tiny model,
one torch thread each) gives a local run's files, names and pixels; a killed worker's lines are
rerun; Ctrl-C then --resume finishes without redoing a line.  Skipped without the ray extra."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e .[ray])")

import dreamline  # noqa: E402 (after the importorskip)
from dreamline.batch import driver  # noqa: E402 (after the importorskip)
from dreamline.batch.manifest import MANIFEST_NAME, read_records  # noqa: E402 (after the importorskip)
from dreamline.cli import main  # noqa: E402 (after the importorskip)

PICTURE = Path(__file__).resolve().parents[1] / "test-pictures" / "fire-drawing-64.png"
LINES = [
    "a red fox -s 2 -S 42",
    "a cat -s 2 -S 7 -n 2 -g",
    "a dog -s 2 -S -1",  # waits for line 2's last seed
    f"a boat -s 2 -S 9 -I {PICTURE} -f 0.5",
    "a hat -G 0.5",  # bad switch
    "a tree -s 2 -S 11 -I no-such-picture.png",  # missing init image
    "a sun -s 2 -S 12 -I -1 -f 0.6",  # line 4's image
    "!switch tiny-st",  # the workers load the other model
    "a star -s 2 -S 14 -A ddim",
    "!switch no-such-model",  # fails alone
    "a car -s 2 -S 15 -n 2 -v 0.3",
    "a cup -s 2 -S -1",
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    source = str(Path(dreamline.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    try:
        yield
    finally:
        ray.shutdown()


def run(model_files, outdir: Path, prompts: Path, *extra: str) -> int:  # type: ignore[no-untyped-def]
    return main(["-o", str(outdir), "-c", str(model_files.registry_yaml),
                 "--from_file", str(prompts), *extra])


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def normalised(text: str, outdir: Path) -> str:
    return text.replace(str(outdir), "OUT")


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


@pytest.fixture(scope="module")
def local_run(model_files, prompts: Path, tmp_path_factory) -> tuple[Path, int, str]:  # type: ignore[no-untyped-def]
    outdir = tmp_path_factory.mktemp("local")
    status = run(model_files, outdir, prompts)
    return outdir, status, (outdir / "invoke_log.txt").read_text()


def test_ray_run_matches_the_local_run(model_files, prompts: Path, local_run, local_ray,  # type: ignore[no-untyped-def]
                                       tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    local_dir, local_status, local_log = local_run
    capsys.readouterr()
    status = run(model_files, tmp_path, prompts, "--ray", "--ray_workers", "2")
    out, err = capsys.readouterr()
    assert status == local_status == 1
    names = sorted(path.name for path in local_dir.glob("*.png"))
    assert len(names) == 11  # 1 + (2 + grid) + 1 + 1 + 1 + 1 + 2 + 1
    assert sorted(path.name for path in tmp_path.glob("*.png")) == names
    for name in names:
        assert np.array_equal(pixels(tmp_path / name), pixels(local_dir / name)), name
    assert normalised((tmp_path / "invoke_log.txt").read_text(), tmp_path) == \
        normalised(local_log, local_dir)
    failed = [line for line in err.splitlines() if re.match(r"  line \d+:", line)]
    assert [line.split(":")[0].strip() for line in failed] == ["line 5", "line 6", "line 10"]
    assert re.search(r">> worker 1 \(.*\): \d+ line\(s\)", out)
    assert re.search(r">> worker 2 \(.*\): \d+ line\(s\)", out)


def test_a_killed_worker_loses_no_line(model_files, prompts: Path, local_run, local_ray,  # type: ignore[no-untyped-def]
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[object] = []

    def kill_third(ticket) -> None:  # type: ignore[no-untyped-def]
        if len(killed) == 0 and ticket.key == 3:  # line 4, in flight on its worker
            killed.append(ticket.slot.actor)
            ray.kill(ticket.slot.actor, no_restart=True)

    monkeypatch.setattr(driver, "run_on_ray",
                        functools.partial(driver.run_on_ray, on_submit=kill_third))
    status = run(model_files, tmp_path, prompts, "--ray", "--ray_workers", "2")
    assert killed and status == 1
    local_dir = local_run[0]
    names = sorted(path.name for path in local_dir.glob("*.png"))
    assert sorted(path.name for path in tmp_path.glob("*.png")) == names  # each exactly once
    for name in names:
        assert np.array_equal(pixels(tmp_path / name), pixels(local_dir / name)), name


def test_ctrl_c_then_resume_redoes_no_finished_line(model_files, prompts: Path, local_run,  # type: ignore[no-untyped-def]
                                                    local_ray, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt_at_line_9(ticket) -> None:  # type: ignore[no-untyped-def]
        if ticket.request.prompt == "a star":
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(driver, "run_on_ray",
                      functools.partial(driver.run_on_ray, on_submit=interrupt_at_line_9))
        assert run(model_files, tmp_path, prompts, "--ray", "--ray_workers", "2") == 130
    first = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.png")}
    done = [record["line"] for record in read_records(tmp_path / MANIFEST_NAME)]
    assert done == [1, 2, 3, 4, 7]
    status = run(model_files, tmp_path, prompts, "--ray", "--ray_workers", "2", "--resume")
    assert status == 1
    after = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.png")}
    assert {name: after[name] for name in first} == first  # nothing finished was redone
    records = read_records(tmp_path / MANIFEST_NAME)
    assert sorted(record["line"] for record in records) == [1, 2, 3, 4, 7, 9, 11, 12]
    # every image of the local run is there exactly once (later lines got later prefixes)
    local_seeds = sorted(name.split(".", 1)[1] for name in
                         (path.name for path in local_run[0].glob("*.png")))
    assert sorted(name.split(".", 1)[1] for name in after) == local_seeds


def test_without_ray_the_switch_says_how_to_install(model_files, prompts: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "ray" else real(name, *args))
    assert run(model_files, tmp_path, prompts, "--ray") == 2
    assert capsys.readouterr().err.strip() == ("dreamline: error: --ray: Ray is not installed; "
                                               "install the extra with: pip install "
                                               "'dreamline[ray]'")


def test_more_workers_than_the_cluster_has_is_one_line(model_files, prompts: Path, local_ray,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run(model_files, tmp_path, prompts, "--ray", "--ray_workers", "3") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --ray_workers: 3 workers of --ray_cpus 1 need 3 CPUs; the cluster has 2")


def test_loras_and_embeddings_reach_the_workers(model_files, local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A LoRA named from ``loras/`` beside the models file and an ``--embedding_path``
    embedding give a local run's pixels on a worker (a worker once knew neither: the LoRA line
    failed, and the embedding's word was encoded as plain text, silently other pixels)."""
    import torch
    from core_fixtures import SIZE
    from part_files import save_lora

    kit = tmp_path / "kit"
    (kit / "loras").mkdir(parents=True)
    save_lora(kit / "loras" / "kohya.safetensors", "kohya", seed=1)
    width = model_files.parts["text_encoder"].config.hidden_size
    embedding = kit / "toy.pt"  # A1111's textual-inversion layout, one vector
    torch.save({"string_to_token": {"*": 265},
                "string_to_param": {"*": torch.nn.Parameter(
                    torch.randn(1, width, generator=torch.Generator().manual_seed(5)))},
                "name": "toy"}, embedding)
    registry = kit / "models.yaml"
    registry.write_text(f"tiny:\n  path: {model_files.diffusers}\n  width: {SIZE}\n"
                        f"  height: {SIZE}\n  default: true\n")
    prompts = kit / "prompts.txt"
    prompts.write_text("a tree <lora:kohya:0.8> -s 2 -S 3\na toy on a mat -s 2 -S 4\n"
                       "a tree -s 2 -S 3\n")

    def go(outdir: Path, *extra: str) -> int:
        return main(["-o", str(outdir), "-c", str(registry), "--embedding_path", str(embedding),
                     "--from_file", str(prompts), *extra])

    assert go(tmp_path / "local") == 0
    assert go(tmp_path / "ray", "--ray", "--ray_workers", "1") == 0
    names = sorted(path.name for path in (tmp_path / "local").glob("*.png"))
    assert len(names) == 3
    assert sorted(path.name for path in (tmp_path / "ray").glob("*.png")) == names
    for name in names:
        assert np.array_equal(pixels(tmp_path / "ray" / name),
                              pixels(tmp_path / "local" / name)), name
    # the LoRA changed the picture at all: the same seed without it differs
    assert not np.array_equal(pixels(tmp_path / "local" / names[0]),
                              pixels(tmp_path / "local" / names[2]))
