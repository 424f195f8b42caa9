"""LoRAs: found by name or path, read once, applied to one line only, equal to diffusers+peft,
refused in one line when made for another architecture."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from core_fixtures import SIZE
from diffusers import LMSDiscreteScheduler, StableDiffusionPipeline
from part_files import fresh_model, save_lora

from dreamline.core import Generator
from dreamline.errors import ModelError
from dreamline.models.lora import LoraLibrary
from dreamline.request import Request

PROMPT = "a tree by a river"
STEPS = 4


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _run(gen: Generator, prompt: str = PROMPT, **changes) -> np.ndarray:
    request = Request(prompt=prompt, steps=STEPS, seed=7, width=SIZE, height=SIZE,
                      sampler="k_lms", **changes)
    return _pixels(gen.generate(request)[0].image)


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    save_lora(folder / "kohya.safetensors", "kohya", seed=1)
    save_lora(folder / "peftish.safetensors", "peft", seed=2)
    save_lora(folder / "pickled.pt", "kohya", seed=1)
    save_lora(folder / "sd2.safetensors", "kohya", seed=3, context=1024)
    return folder


def test_lora_changes_the_line_and_only_that_line(loras: Path) -> None:
    library = LoraLibrary(loras)
    gen = Generator(fresh_model(), loras=library)
    before = _run(gen)
    with_tag = _run(gen, f"{PROMPT} <lora:kohya:0.8>")
    assert np.abs(with_tag - before).max() > 3
    assert np.array_equal(_run(gen), before)  # the next line without it: the same pixels
    with_switch = _run(gen, loras=(("kohya", 0.8),))
    assert np.array_equal(with_switch, with_tag)  # the tag is taken out of the CLIP text
    negative = _run(gen, loras=(("kohya", -0.8),))
    assert np.abs(negative - before).max() > 3 and np.abs(negative - with_tag).max() > 3
    both = _run(gen, f"{PROMPT} <lora:kohya:0.8> <lora:peftish:0.5>")
    assert np.abs(both - with_tag).max() > 3
    assert np.array_equal(_run(gen), before)
    assert library.reads == 2  # each file read once, however often it is used


def test_pt_file_is_the_same_lora(loras: Path) -> None:
    gen = Generator(fresh_model(), loras=LoraLibrary(loras))
    a = _run(gen, f"{PROMPT} <lora:kohya:1>")
    b = _run(gen, f"{PROMPT} <lora:{loras / 'pickled.pt'}:1>")
    assert np.array_equal(a, b)


def test_run_info_names_the_loras(loras: Path) -> None:
    gen = Generator(fresh_model(), loras=LoraLibrary(loras))
    image = gen.generate(Request(prompt=f"{PROMPT} <lora:kohya:0.5>", steps=2, seed=1,
                                 width=SIZE, height=SIZE, loras=(("peftish", -1.0),)))[0]
    names = [(name, weight) for name, weight, _hash in image.info.loras]
    assert names == [("kohya", 0.5), ("peftish", -1.0)]
    # A1111's own LoRA hash (its "Lora hashes"): sha256 of the tensor data after the
    # safetensors header, 12 hex digits; computed here from the file format's definition.
    for name, _w, digest in image.info.loras:
        data = (loras / f"{name}.safetensors").read_bytes()
        start = 8 + int.from_bytes(data[:8], "little")
        assert digest == hashlib.sha256(data[start:]).hexdigest()[:12]
    assert image.request.prompt == f"{PROMPT} <lora:kohya:0.5>"


@pytest.mark.parametrize("name, weight", [("kohya", 0.7), ("peftish", -0.6)])
def test_equal_to_diffusers_and_peft(loras: Path, name: str, weight: float) -> None:
    ours = _run(Generator(fresh_model(), loras=LoraLibrary(loras)),
                loras=((name, weight),))
    model = fresh_model()
    pipe = StableDiffusionPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
        unet=model.unet, scheduler=LMSDiscreteScheduler.from_config(model.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(loras / f"{name}.safetensors"), adapter_name="x")
    pipe.set_adapters(["x"], [weight])
    theirs = pipe(PROMPT, height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=7.5,
                  generator=torch.Generator().manual_seed(7)).images[0]
    assert np.abs(ours - _pixels(theirs)).max() <= 1


def test_other_architecture_refused_in_one_line(loras: Path) -> None:
    gen = Generator(fresh_model(), loras=LoraLibrary(loras))
    refusal = r"'sd2'.* is for SD 2\.x; expected a LoRA for this"
    with pytest.raises(ModelError, match=refusal) as info:
        _run(gen, loras=(("sd2", 1.0),))
    assert "\n" not in str(info.value)
    sdxl = loras / "xl.safetensors"
    from safetensors.torch import save_file
    save_file({"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight":
               torch.zeros(4, 768)}, str(sdxl))
    with pytest.raises(ModelError, match="is for SDXL"):
        _run(gen, loras=(("xl", 1.0),))


def test_missing_lora_names_the_folder(loras: Path) -> None:
    gen = Generator(fresh_model(), loras=LoraLibrary(loras))
    with pytest.raises(ModelError, match=r"LoRA 'nope': no .*nope\{\.safetensors"):
        _run(gen, loras=(("nope", 1.0),))


def test_metadata_records_and_fetch_restores(loras: Path, tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    from dreamline.format import format_command
    from dreamline.pngmeta.a1111 import a1111_parameters
    from dreamline.pngmeta.invokeai import sd_metadata
    from dreamline.repl.fetch import read_request

    gen = Generator(fresh_model(), loras=LoraLibrary(loras))
    made = gen.generate(Request(prompt=f"{PROMPT} <lora:kohya:0.5>", steps=2, seed=3,
                                width=SIZE, height=SIZE, loras=(("peftish", -1.0),)))[0]
    digests = {name: digest for name, _w, digest in made.info.loras}
    text = a1111_parameters(made)
    first = text.splitlines()[0]
    assert first == f"{PROMPT} <lora:kohya:0.5> <lora:peftish:-1.0>"
    assert f'Lora hashes: "kohya: {digests["kohya"]}, peftish: {digests["peftish"]}"' in text
    meta = sd_metadata(made)
    assert [entry["name"] for entry in meta["image"]["loras"]] == ["kohya", "peftish"]

    # Our own Dream command round-trips; an A1111 file's tags come back from its prompt.
    dream = tmp_path / "ours.png"
    info = PngInfo()
    info.add_text("Dream", format_command(made.request))
    made.image.save(dream, pnginfo=info)
    assert read_request(dream) == made.request
    a1111 = tmp_path / "a1111.png"
    info = PngInfo()
    info.add_text("parameters", text)
    made.image.save(a1111, pnginfo=info)
    fetched = read_request(a1111)
    assert fetched.all_loras == (("kohya", 0.5), ("peftish", -1.0))
    again = gen.generate(fetched.with_changes(width=SIZE, height=SIZE))[0]
    assert np.array_equal(_pixels(again.image), _pixels(made.image))


def test_runner_finds_loras_beside_the_models_file(tmp_path: Path) -> None:
    from model_files import build_model_files

    from dreamline.models.manager import ModelManager
    from dreamline.repl.runner import ModelGenerators

    files = build_model_files(tmp_path / "models")
    save_lora(files.root / "loras" / "kohya.safetensors", "kohya", seed=1)
    models = ModelManager(models_file=files.registry_yaml, device="cpu", precision="float32",
                          wanted=None, say=lambda _line: None)
    gen = ModelGenerators(models, say=lambda _line: None, models_file=files.registry_yaml)()
    assert gen.loras.folder == files.root / "loras"
    assert gen.loras.get("kohya").path == files.root / "loras" / "kohya.safetensors"


def test_a_lora_of_another_size_is_one_line_naming_a_layer(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A new user's finding: an SD 1.5 LoRA on the demo model printed the libraries' shape dump
    and ended dreamline's line at 'Error(s) in loading state_dict for UNet2DConditionModel:'."""
    from part_files import lora_tensors
    from safetensors.torch import save_file

    wider = {key: (torch.randn(value.shape[0], value.shape[1] * 5)
                   if key.endswith("lora_down.weight") and "attn2_to_k" not in key
                   and "attn2_to_v" not in key else value)
             for key, value in lora_tensors("kohya", seed=3, text=False).items()}
    save_file(wider, str(tmp_path / "wider.safetensors"))
    gen = Generator(fresh_model(), loras=LoraLibrary(tmp_path))
    capfd.readouterr()
    with pytest.raises(ModelError) as info:
        _run(gen, f"{PROMPT} <lora:wider:1>")
    message = str(info.value)
    assert re.search(r"does not fit this model: its layer [\w.]+ is \[4, \d+\] but this "
                     r"model's is \[4, \d+\]; expected a LoRA made for this model's "
                     r"architecture$", message), message
    captured = capfd.readouterr()
    assert "size mismatch" not in captured.out + captured.err  # nothing of the libraries'
    before = _run(Generator(fresh_model()))
    assert np.array_equal(_run(gen), before)  # and the model is as it was
