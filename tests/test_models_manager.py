"""ModelManager: registry, device, load/switch, its own cache, and remembered failures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from model_files import ModelFiles, model_files  # noqa: F401

from dreamline.errors import ModelError
from dreamline.models import loader
from dreamline.models.manager import ModelManager, demo_registry

REPO = Path(__file__).resolve().parents[1]


def manager(models_file: Path | None, lines: list[str], wanted: str | None = None,
            device: str | None = "cpu") -> ModelManager:
    return ModelManager(models_file=models_file, device=device, precision="auto",
                        wanted=wanted, say=lines.append)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every single file the loader reads."""
    seen: list[Path] = []
    real = loader.read_checkpoint

    def counting(path: Path, **options: Any):
        seen.append(path)
        return real(path, **options)

    monkeypatch.setattr(loader, "read_checkpoint", counting)
    return seen


def test_nothing_happens_until_first_use(tmp_path: Path) -> None:
    lines: list[str] = []
    models = manager(None, lines, device=None)
    assert models.label == "demo (not loaded yet)"
    assert models.device_label == "auto"
    assert models.default_cfg() == ("demo", 4.0, "its built-in entry")
    assert models.names() == ["demo"]
    assert lines == [] and len(models.cache) == 0


def test_current_loads_once_and_says_the_device_once(model_files: ModelFiles) -> None:  # noqa: F811
    lines: list[str] = []
    models = manager(model_files.registry_yaml, lines)
    first = models.current()
    assert first.name == "tiny-diffusers" and models.current() is first
    assert models.label == f"tiny-diffusers [{first.short_hash}]"
    assert models.device_label == "cpu float32"
    assert sum(line.startswith(">> device ") for line in lines) == 1
    models.switch("tiny-st")
    assert sum(line.startswith(">> device ") for line in lines) == 1
    assert sum(">> loading model" in line for line in lines) == 2
    again = models.switch("tiny-diffusers")  # from the cache: no loading line
    assert again.unet is first.unet
    assert sum(">> loading model" in line for line in lines) == 2
    described = models.describe()
    assert described[0] == f"models in {model_files.registry_yaml}:"
    assert any(line.startswith("  tiny-diffusers (default, loaded): ") for line in described)


def test_each_manager_has_its_own_cache(model_files: ModelFiles) -> None:  # noqa: F811
    one, two = manager(model_files.registry_yaml, []), manager(model_files.registry_yaml, [])
    assert one.current().unet is not two.current().unet
    one.release()
    assert len(one.cache) == 0 and len(two.cache) == 1


def test_a_failed_switch_keeps_the_current_model_and_is_remembered(
        model_files: ModelFiles, tmp_path: Path, reads: list[Path]) -> None:  # noqa: F811
    lines: list[str] = []
    models = manager(model_files.registry_yaml, lines)
    current = models.current()
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(ModelError) as first:
        models.switch(str(bad))
    assert models.current() is current
    with pytest.raises(ModelError) as second:
        models.switch(str(bad))
    assert str(second.value) == str(first.value)
    assert reads == [bad]  # the second time the file was not read again


def test_a_changed_file_is_tried_again(model_files: ModelFiles, tmp_path: Path,  # noqa: F811
                                       reads: list[Path]) -> None:
    models = manager(model_files.registry_yaml, [])
    bad = tmp_path / "later.safetensors"
    bad.write_bytes(b"\x89PNG" + bytes(100))
    for _ in range(2):
        with pytest.raises(ModelError):
            models.switch(str(bad))
    assert len(reads) == 1
    stat = bad.stat()
    os.utime(bad, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ModelError):
        models.switch(str(bad))
    assert len(reads) == 2


def test_a_fixed_model_loads_after_failing(model_files: ModelFiles,  # noqa: F811
                                           tmp_path: Path) -> None:
    folder = tmp_path / "downloading"
    folder.mkdir()
    models = manager(model_files.registry_yaml, [])
    for _ in range(2):
        with pytest.raises(ModelError, match="without model_index.json"):
            models.switch(str(folder))
    shutil.copytree(model_files.diffusers, folder, dirs_exist_ok=True)  # the download finished
    assert models.switch(str(folder)).name == "downloading"


def test_a_path_loaded_this_session_is_listed(model_files: ModelFiles,  # noqa: F811
                                              tmp_path: Path) -> None:
    folder = tmp_path / "other-model"
    shutil.copytree(model_files.diffusers, folder)
    models = manager(model_files.registry_yaml, [])
    models.switch(str(folder))
    assert models.names() == ["tiny-diffusers", "tiny-st", "tiny-ckpt", str(folder)]
    assert models.describe()[-1] == f"  {folder} (loaded): loaded by path this session"
    assert models.label.startswith("other-model [")


def test_default_cfg_of_the_shipped_registry_and_an_unreadable_one(tmp_path: Path) -> None:
    shipped = manager(REPO / "configs" / "models.yaml", [])
    assert shipped.default_cfg() == ("demo", 4.0, "its models.yaml entry")
    broken = tmp_path / "models.yaml"
    broken.write_text("a: [unclosed\n", encoding="utf-8")
    models = manager(broken, [])
    assert models.names() == [] and models.default_cfg() is None
    assert models.label == "default (not loaded yet)"
    with pytest.raises(ModelError, match="not valid YAML"):
        models.current()


def test_release_frees_and_the_next_use_loads_again(model_files: ModelFiles) -> None:  # noqa: F811
    lines: list[str] = []
    models = manager(model_files.registry_yaml, lines)
    first = models.current()
    models.release()
    assert models.label == "tiny-diffusers (not loaded yet)"
    assert models.current().unet is not first.unet


def test_the_demo_registry_matches_the_shipped_entry() -> None:
    from dreamline.models.registry import ModelRegistry

    shipped = ModelRegistry.load(REPO / "configs" / "models.yaml").entry("demo")
    builtin = demo_registry().entry("demo")
    assert (builtin.path, builtin.width, builtin.height, builtin.cfg_scale) == \
        (shipped.path, shipped.width, shipped.height, shipped.cfg_scale)


def test_the_demo_model_says_what_it_is(tmp_path: Path) -> None:
    lines: list[str] = []
    model = manager(None, lines).current()
    assert model.name == "demo" and model.dtype == torch.float32
    assert any("small built-in demo model" in line for line in lines)


def test_a_wanted_model_that_fails_is_not_read_again_for_every_line(
        model_files: ModelFiles, tmp_path: Path, reads: list[Path]) -> None:  # noqa: F811
    bad = tmp_path / "half-downloaded.ckpt"
    bad.write_bytes(b"PK\x03\x04" + bytes(64))
    models = manager(model_files.registry_yaml, [], wanted=str(bad))
    messages = []
    for _ in range(3):  # three prompt lines
        with pytest.raises(ModelError) as caught:
            models.current()
        messages.append(str(caught.value))
    assert len(set(messages)) == 1 and str(bad) in messages[0]
    assert reads == [bad]


def test_native_size_is_the_entrys_declared_size_without_loading(tmp_path: Path) -> None:
    from dreamline.models.manager import ModelManager

    manager = ModelManager(models_file=None, device="cpu", precision="float32", wanted=None,
                           say=lambda text: None)
    assert manager.native_size() == ("demo", 32, 32)
    assert manager.label.endswith("(not loaded yet)")


def test_default_sampler_and_models_lines(tmp_path: Path) -> None:
    models_file = tmp_path / "models.yaml"
    models_file.write_text("fast:\n  path: fast\n  sampler: dpmpp_2m\n  scheduler: karras\n"
                           "  cfg_scale: 5\nplain:\n  path: plain\n", encoding="utf-8")
    models = manager(models_file, [])
    assert models.default_sampler() == ("fast", "k_dpmpp_2m", "karras", "its models.yaml entry")
    assert models.describe()[1:] == ["  fast (default): " + str(tmp_path / "fast") +
                                     " [-C 5 -A k_dpmpp_2m --schedule karras]",
                                     "  plain: " + str(tmp_path / "plain")]
    assert manager(models_file, [], wanted="plain").default_sampler() is None
