"""VAEs given apart: --vae, a models.yaml vae: field, A1111 sidecars; CompVis files (prefixed or
bare keys, .pt/.ckpt/.safetensors) and diffusers vae/ folders; no-VAE checkpoints; metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from model_files import SIZE, compvis_state_dict, save_diffusers, tiny_config_dir
from safetensors.torch import save_file
from tiny_models import tiny_components

from dreamline.core import Generator
from dreamline.errors import ModelError
from dreamline.models.kinds import VAE_PREFIX
from dreamline.models.loader import ModelCache, load_model
from dreamline.models.registry import ModelRegistry
from dreamline.pngmeta.a1111 import a1111_parameters
from dreamline.pngmeta.invokeai import sd_metadata
from dreamline.request import Request


@dataclass
class Files:
    root: Path
    registry: ModelRegistry
    own_vae: dict[str, torch.Tensor]  # the checkpoints' own VAE weights
    other_vae: dict[str, torch.Tensor]  # the separate VAE's weights


def _same(vae: Any, expected: dict[str, torch.Tensor]) -> bool:
    state = vae.state_dict()
    return set(state) == set(expected) and all(torch.equal(state[k], expected[k]) for k in state)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("vae-files")
    parts = tiny_components(seed=0)
    other = tiny_components(seed=5)
    tiny_config_dir(root / "config")
    full = compvis_state_dict(parts)
    save_file(full, str(root / "full.safetensors"))
    save_file(full, str(root / "side.safetensors"))
    no_vae = {k: v for k, v in full.items() if not k.startswith(VAE_PREFIX)}
    save_file(no_vae, str(root / "novae.safetensors"))
    vae_keys = {k: v for k, v in compvis_state_dict(other).items() if k.startswith(VAE_PREFIX)}
    torch.save({k.removeprefix(VAE_PREFIX): v for k, v in vae_keys.items()},
               root / "side.vae.pt")  # bare encoder./decoder. keys, a pickle
    save_file(vae_keys, str(root / "other.vae.safetensors"))  # prefixed keys
    torch.save({"state_dict": vae_keys}, root / "other.ckpt")
    other["vae"].save_pretrained(str(root / "other-folder" / "vae"))
    save_diffusers(root / "tiny-diffusers", parts=parts)
    (root / "models.yaml").write_text(
        "full:\n  path: full.safetensors\n  config: config\n  default: true\n"
        "side:\n  path: side.safetensors\n  config: config\n"
        "novae:\n  path: novae.safetensors\n  config: config\n"
        "novae-with:\n  path: novae.safetensors\n  config: config\n  vae: other.ckpt\n"
        "folder:\n  path: tiny-diffusers\n", encoding="utf-8")
    return Files(root, ModelRegistry.load(root / "models.yaml"),
                 {k: v.clone() for k, v in parts["vae"].state_dict().items()},
                 {k: v.clone() for k, v in other["vae"].state_dict().items()})


def _load(files: Files, name: str, lines: list[str] | None = None, **options: Any) -> Any:
    sink = lines if lines is not None else []
    return load_model(name, registry=files.registry, device="cpu", dtype=torch.float32,
                      report=sink.append, **options)


def test_without_a_vae_the_model_keeps_its_own(files: Files) -> None:
    model = _load(files, "full")
    assert _same(model.vae, files.own_vae) and model.vae_name is None


@pytest.mark.parametrize("given", ["other.vae.safetensors", "other.ckpt", "side.vae.pt",
                                   "other-folder", "other-folder/vae"])
def test_vae_switch_every_format(files: Files, given: str) -> None:
    lines: list[str] = []
    model = _load(files, "full", lines, vae=files.root / given)
    assert _same(model.vae, files.other_vae)
    assert model.vae_name == Path(given).name and len(model.vae_hash) == 10
    assert any("using VAE" in line and "--vae" in line for line in lines)


def test_sidecar_is_used_and_said(files: Files) -> None:
    lines: list[str] = []
    model = _load(files, "side", lines)
    assert _same(model.vae, files.other_vae)
    assert model.vae_name == "side.vae.pt"
    assert any("using VAE side.vae.pt (found beside the checkpoint" in line for line in lines)


def test_sidecar_changes_the_pixels(files: Files) -> None:
    request = Request(prompt="a", steps=2, seed=1, width=SIZE, height=SIZE)
    plain = Generator(_load(files, "full")).generate(request)[0]
    side = Generator(_load(files, "side")).generate(request)[0]
    assert plain.image.tobytes() != side.image.tobytes()
    again = Generator(_load(files, "full")).generate(request)[0]
    assert again.image.tobytes() == plain.image.tobytes()


def test_no_vae_checkpoint_refused_with_how_to_give_one(files: Files) -> None:
    with pytest.raises(ModelError) as info:
        _load(files, "novae")
    text = str(info.value)
    assert "no first_stage_model.* (VAE) keys" in text and "--vae PATH" in text
    assert "\n" not in text


def test_no_vae_checkpoint_loads_with_a_vae(files: Files) -> None:
    assert _same(_load(files, "novae", vae=files.root / "other.vae.safetensors").vae,
                 files.other_vae)
    model = _load(files, "novae-with")  # from the models.yaml entry
    assert _same(model.vae, files.other_vae) and model.vae_name == "other.ckpt"


def test_diffusers_folder_model_with_a_vae_file(files: Files) -> None:
    assert _same(_load(files, "folder").vae, files.own_vae)
    assert _same(_load(files, "folder", vae=files.root / "side.vae.pt").vae, files.other_vae)


def test_cache_tells_vaes_apart(files: Files) -> None:
    cache = ModelCache(4)
    plain = _load(files, "full", cache=cache)
    other = _load(files, "full", cache=cache, vae=files.root / "other.ckpt")
    assert plain.vae is not other.vae and _same(other.vae, files.other_vae)
    assert _load(files, "full", cache=cache).vae is plain.vae  # cached, not loaded again


def test_not_a_vae_is_one_line(files: Files) -> None:
    with pytest.raises(ModelError, match="is not a VAE: no first_stage_model"):
        _load(files, "full", vae=files.root / "novae.safetensors")
    with pytest.raises(ModelError, match="does not exist"):
        _load(files, "full", vae=files.root / "missing.pt")


def test_metadata_names_the_vae(files: Files) -> None:
    model = _load(files, "side")
    made = Generator(model).generate(Request(prompt="a", steps=2, seed=1, width=SIZE,
                                             height=SIZE))[0]
    assert made.info.vae_name == "side.vae.pt"
    assert f"VAE hash: {model.vae_hash}, VAE: side.vae.pt" in a1111_parameters(made)
    assert sd_metadata(made)["image"]["vae"] == {"name": "side.vae.pt", "hash": model.vae_hash}
    plain = Generator(_load(files, "full")).generate(Request(prompt="a", steps=2, seed=1))[0]
    assert "VAE" not in a1111_parameters(plain) and "vae" not in sd_metadata(plain)["image"]


def test_launch_vae_reaches_the_loader(files: Files, tmp_path: Path) -> None:
    from dreamline.cli import build_parser, make_model_manager, settings_from_args
    from dreamline.repl.runner import ModelGenerators

    args = build_parser().parse_args(["--config", str(files.root / "models.yaml"), "--model",
                                      "novae", "--vae", str(files.root / "other.ckpt"),
                                      "-o", str(tmp_path), "--device", "cpu"])
    settings = settings_from_args(args)
    assert settings.vae == files.root / "other.ckpt"
    lines: list[str] = []
    models = make_model_manager(settings, settings.model)
    models.say = lines.append
    generator = ModelGenerators(models, say=lines.append)()
    assert _same(generator.model.vae, files.other_vae)
    assert any("using VAE other.ckpt (--vae" in line for line in lines)
