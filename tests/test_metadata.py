"""PNG metadata: what is written (Dream, sd-metadata, parameters) and reading commands back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, PngImagePlugin

import dreamline
from dreamline.format import format_command
from dreamline.outputs import make_grid, save_grid, save_image
from dreamline.parse import parse_line
from dreamline.pngmeta.a1111 import a1111_parameters, parse_a1111
from dreamline.pngmeta.chunks import MetadataError, read_text_chunks
from dreamline.pngmeta.invokeai import grid_command, grid_metadata, sd_metadata
from dreamline.repl.fetch import read_command, read_metadata, read_prompt
from dreamline.request import Request

TXT2IMG = Request(prompt="a castle:2 a moat:1 [blurry, lowres]", steps=30, seed=42, width=512,
                  height=512, cfg_scale=7.5, sampler="k_euler_a")
IMG2IMG = Request(prompt='a "fire" in a hearth, café', steps=20, seed=1592514025,
                  sampler="k_lms", karras=True, init_img="in dir/fire.png", strength=0.7,
                  fit=True, with_variations=((77, 0.25),))
RUN_TXT = {"sampler": "k_euler_a", "schedule": "model", "width": 512, "height": 512,
           "steps": 30, "steps_run": 30, "start_step": 0, "model_name": "sd-1.5",
           "model_hash": "cc6cb27103"}
RUN_IMG = {"sampler": "k_lms", "schedule": "karras", "width": 384, "height": 320, "steps": 20,
           "steps_run": 14, "start_step": 6, "strength": 0.7, "init_img": "in dir/fire.png",
           "init_hash": "a1b2c3d4", "model_name": "sd-1.5", "model_hash": "cc6cb27103"}


def write_plain_png(path: Path, chunks: dict[str, str] | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in (chunks or {}).items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8), "white").save(path, pnginfo=info)
    return path


def parsed(command: str) -> Request:
    return parse_line(command, Request()).request


# ---- sd-metadata ------------------------------------------------------------------------------

def test_sd_metadata_for_txt2img() -> None:
    data = sd_metadata(TXT2IMG, RUN_TXT)
    assert data == {
        "model": "stable diffusion", "model_weights": "sd-1.5", "model_hash": "cc6cb27103",
        "app_id": "dreamline", "app_version": dreamline.__version__,
        "image": {
            "type": "txt2img",
            "prompt": [{"prompt": "a castle", "weight": 2 / 3},
                       {"prompt": "a moat [blurry, lowres]", "weight": 1 / 3}],
            "seed": 42, "variations": [], "steps": 30, "cfg_scale": 7.5, "width": 512,
            "height": 512, "sampler": "k_euler_a", "schedule": "model", "seamless": False,
            "steps_run": 30, "start_step": 0,
        },
    }


def test_sd_metadata_for_img2img_records_what_ran() -> None:
    image = sd_metadata(IMG2IMG, RUN_IMG, "other-model", "ffff")["image"]
    assert image["type"] == "img2img"
    assert (image["width"], image["height"]) == (384, 320)   # the real size, not the request's
    assert (image["sampler"], image["schedule"]) == ("k_lms", "karras")
    assert image["strength"] == 0.7 and image["fit"] is True
    assert image["init_img"] == "in dir/fire.png" and image["orig_hash"] == "a1b2c3d4"
    assert image["strength_steps"] == 0.7
    assert image["variations"] == [{"seed": 77, "weight": 0.25}]
    assert image["init_mask"] is None and image["steps_run"] == 14
    assert sd_metadata(IMG2IMG, RUN_IMG, "other-model", "ffff")["model_weights"] == "other-model"


def test_sd_metadata_takes_a_generated_image_with_a_dataclass_run_info() -> None:
    @dataclass
    class Info:
        sampler: str = "k_heun"
        schedule: str = "model"
        width: int = 448
        height: int = 512
        model_name: str = "tiny"
        model_hash: str = "0123456789"

    result = SimpleNamespace(request=TXT2IMG, info=Info(), seed=42)
    data = sd_metadata(result)
    assert data["model_weights"] == "tiny" and data["image"]["sampler"] == "k_heun"
    assert data["image"]["width"] == 448
    assert "Sampler: Heun" in a1111_parameters(result)


def test_missing_run_info_falls_back_to_the_request() -> None:
    image = sd_metadata(TXT2IMG, {})["image"]
    assert (image["sampler"], image["schedule"], image["width"]) == ("k_euler_a", "model", 512)


# ---- A1111 parameters ---------------------------------------------------------------------------

def test_a1111_parameters_for_txt2img() -> None:
    assert a1111_parameters(TXT2IMG, RUN_TXT) == (
        "a castle :0.6666666666666666 AND a moat :0.3333333333333333\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: Euler a, Schedule type: Uniform, CFG scale: 7.5, Seed: 42, "
        "Size: 512x512, "
        "Model hash: cc6cb27103, Model: sd-1.5"
    )


def test_a1111_parameters_for_img2img() -> None:
    assert a1111_parameters(IMG2IMG, RUN_IMG) == (
        'a "fire" in a hearth, café\n'
        "Steps: 20, Sampler: LMS Karras, Schedule type: Karras, CFG scale: 7.5, "
        "Seed: 1592514025, Size: 384x320, "
        "Model hash: cc6cb27103, Model: sd-1.5, Denoising strength: 0.7, Variation seed: 77, "
        "Variation seed strength: 0.25"
    )


def test_a1111_values_with_commas_are_quoted() -> None:
    text = a1111_parameters(Request(prompt="x", seed=1, seamless=True), {"width": 64,
                            "height": 64}, "my, model", None)
    assert text.endswith('Model: "my, model", Tiling: True')
    assert parse_a1111(text).fields["Model"] == "my, model"


# ---- writing and reading back -------------------------------------------------------------------

@pytest.mark.parametrize("request_, run", [(TXT2IMG, RUN_TXT), (IMG2IMG, RUN_IMG)])
def test_chunks_round_trip_exactly(tmp_path: Path, request_: Request, run: dict) -> None:
    command = format_command(request_)
    metadata = sd_metadata(request_, run)
    parameters = a1111_parameters(request_, run)
    path = save_image(tmp_path, 1, request_.seed, Image.new("RGB", (16, 16)), command, metadata,
                      parameters)
    chunks = read_text_chunks(path)
    assert chunks["Dream"] == command
    assert json.loads(chunks["sd-metadata"]) == metadata
    assert chunks["parameters"] == parameters
    assert read_command(path) == command
    assert read_metadata(path) == metadata
    assert read_prompt(path) == request_.prompt
    assert parsed(read_command(path)) == request_


def test_non_latin1_text_is_stored_as_itxt_and_read_back(tmp_path: Path) -> None:
    request = Request(prompt="桜の木 ☕ in the rain", seed=3)
    command = format_command(request)
    path = save_image(tmp_path, 1, 3, Image.new("RGB", (8, 8)), command,
                      sd_metadata(request, {}), a1111_parameters(request, {}))
    assert b"iTXt" in path.read_bytes()
    assert read_command(path) == command and read_prompt(path) == request.prompt


def test_grid_reproduces_the_whole_command(tmp_path: Path) -> None:
    request = Request(prompt="a lighthouse", seed=1000, iterations=3, grid=True)
    per_image = [sd_metadata(Request(prompt="a lighthouse", seed=seed), {"width": 8, "height": 8})
                 for seed in (1000, 1001, 1002)]
    command = grid_command(request, 1000, 3)
    grid = save_grid(tmp_path, 4, 1000, make_grid([Image.new("RGB", (8, 8))] * 3), command,
                     grid_metadata(per_image))
    assert grid.name == "000004.1000.grid.png"
    again = parsed(read_command(grid))
    assert (again.seed, again.iterations, again.grid) == (1000, 3, True)
    assert [entry["seed"] for entry in read_metadata(grid)["images"]] == [1000, 1001, 1002]
    assert "image" not in read_metadata(grid)


def test_a_plain_png_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = write_plain_png(tmp_path / "holiday photo.png")
    for reader in (read_command, read_metadata, read_prompt):
        with pytest.raises(MetadataError, match=r"holiday photo\.png: has no generation metadata"):
            reader(path)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"missing\.png': no such file"):
        read_command(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(MetadataError, match=r"notes\.png: not an image"):
        read_command(text)
    broken = write_plain_png(tmp_path / "broken.png", {"sd-metadata": "{not json"})
    with pytest.raises(MetadataError, match=r"broken\.png: its sd-metadata chunk is not valid"):
        read_command(broken)


def test_reference_images_lose_their_grid_comment(tmp_path: Path) -> None:
    dream = '"a tree" -s50 -W512 -H512 -C7.5 -Ak_lms -S1 -g -n 2 # [1, 2]'
    path = write_plain_png(tmp_path / "ref.png", {
        "Dream": dream,
        "sd-metadata": json.dumps({"app_id": "invoke-ai/InvokeAI", "images": []}),
    })
    command = read_command(path)
    assert command == '"a tree" -s50 -W512 -H512 -C7.5 -Ak_lms -S1 -g -n 2'
    assert (parsed(command).seed, parsed(command).iterations) == (1, 2)


def test_sd_metadata_alone_is_converted(tmp_path: Path) -> None:
    meta = {"app_id": "invoke-ai/InvokeAI", "image": {
        "type": "img2img", "prompt": [{"prompt": "a fire", "weight": 1.0}], "seed": 7,
        "variations": [{"seed": 9, "weight": 0.1}], "steps": 10, "cfg_scale": 7.0,
        "width": 384, "height": 384, "sampler": "ddim", "init_image": "fire.png",
        "strength": 0.4}}
    path = write_plain_png(tmp_path / "meta-only.png", {"sd-metadata": json.dumps(meta)})
    assert parsed(read_command(path)) == Request(
        prompt="a fire", steps=10, seed=7, cfg_scale=7.0, width=384, height=384, sampler="ddim",
        init_img="fire.png", strength=0.4, with_variations=((9, 0.1),))


# ---- A1111 images -> dream commands -------------------------------------------------------------

A1111_EXAMPLES = [
    ("a castle on a hill\nNegative prompt: blurry, lowres\nSteps: 20, Sampler: Euler a, "
     "CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: abcdef12, Model: v1-5",
     Request(prompt="a castle on a hill [blurry, lowres]", steps=20, sampler="k_euler_a",
             cfg_scale=7.0, seed=1234, width=512, height=768)),
    ("portrait\nSteps: 30, Sampler: DPM2 a Karras, CFG scale: 8.5, Seed: 7, Size: 640x512",
     Request(prompt="portrait", steps=30, sampler="k_dpm_2_a", karras=True, cfg_scale=8.5,
             seed=7, width=640, height=512)),
    ("a cat :1.2 AND a dog :0.8\nSteps: 25, Sampler: LMS Karras, CFG scale: 7.5, Seed: 99, "
     "Size: 512x512, Variation seed: 555, Variation seed strength: 0.25",
     Request(prompt="a cat:1.2 a dog:0.8", steps=25, sampler="k_lms", karras=True, seed=99,
             width=512, height=512, with_variations=((555, 0.25),))),
    ('photo, 16:9, ratio:1.5 sharp\nSteps: 10, Sampler: DDIM, CFG scale: 5, Seed: 3, '
     'Size: 512x512, Model: "a, b"',
     Request(prompt="photo, 16:9, ratio\\:1.5 sharp", steps=10, sampler="ddim", cfg_scale=5.0,
             seed=3, width=512, height=512)),
    ("[bad] tiles\nSteps: 15, Sampler: Euler, Schedule type: Karras, CFG scale: 6, Seed: 11, "
     "Size: 256x256, Tiling: True",
     Request(prompt="(bad:0.9091) tiles", steps=15, sampler="k_euler", karras=True, cfg_scale=6.0,
             seed=11, width=256, height=256, seamless=True)),
    ("line one\nline two\nNegative prompt: ugly\nextra bad\nSteps: 40, Sampler: Heun, "
     "CFG scale: 9, Seed: 5, Size: 512x512, Denoising strength: 0.6",
     Request(prompt="line one line two [ugly extra bad]", steps=40, sampler="k_heun",
             cfg_scale=9.0, seed=5, width=512, height=512)),
]


@pytest.mark.parametrize("parameters, expected", A1111_EXAMPLES)
def test_a1111_images_become_dream_commands(tmp_path: Path, parameters: str,
                                            expected: Request) -> None:
    path = write_plain_png(tmp_path / "a1111.png", {"parameters": parameters})
    command = read_command(path)
    assert parsed(command) == expected
    assert read_prompt(path) == expected.prompt


@pytest.mark.parametrize("name, sampler, karras", [
    ("Euler a", "k_euler_a", False), ("Euler", "k_euler", False), ("LMS", "k_lms", False),
    ("Heun", "k_heun", False), ("DPM2", "k_dpm_2", False), ("DPM2 a", "k_dpm_2_a", False),
    ("DDIM", "ddim", False), ("PLMS", "plms", False), ("LMS Karras", "k_lms", True),
    ("DPM2 Karras", "k_dpm_2", True), ("DPM2 a Karras", "k_dpm_2_a", True),
])
def test_a1111_sampler_names(tmp_path: Path, name: str, sampler: str, karras: bool) -> None:
    path = write_plain_png(tmp_path / "s.png", {
        "parameters": f"x\nSteps: 5, Sampler: {name}, CFG scale: 7, Seed: 1, Size: 64x64"})
    request = parsed(read_command(path))
    assert (request.sampler, request.karras) == (sampler, karras)


def test_unknown_a1111_sampler_is_a_clear_error(tmp_path: Path) -> None:
    path = write_plain_png(tmp_path / "dpm.png", {
        "parameters": "x\nSteps: 5, Sampler: DPM adaptive, CFG scale: 7, Seed: 1, Size: 64x64"})
    with pytest.raises(MetadataError, match=r"dpm\.png: A1111 sampler 'DPM adaptive'"):
        read_command(path)


@pytest.mark.parametrize("fields, sampler, schedule", [
    ("Sampler: DPM++ 2M Karras", "k_dpmpp_2m", "karras"),
    ("Sampler: DPM++ 2M", "k_dpmpp_2m", "model"),  # before A1111 1.9: no suffix, Uniform
    ("Sampler: DPM++ 2M, Schedule type: Automatic", "k_dpmpp_2m", "karras"),
    ("Sampler: DPM++ 2M SDE, Schedule type: Automatic", "k_dpmpp_2m_sde", "exponential"),
    ("Sampler: DPM++ 2M SDE Exponential", "k_dpmpp_2m_sde", "exponential"),
    ("Sampler: DPM++ 2M, Schedule type: Uniform", "k_dpmpp_2m", "model"),
    ("Sampler: Euler a, Schedule type: Automatic", "k_euler_a", "model"),
    ("Sampler: UniPC, Schedule type: Exponential", "unipc", "exponential"),
    ("Sampler: DPM++ 2S a Karras", "k_dpmpp_2s_a", "karras"),
    ("Sampler: DDPM", "ddpm", "model"),
])
def test_a1111_new_samplers_and_schedule_types(tmp_path: Path, fields: str, sampler: str,
                                                schedule: str) -> None:
    path = write_plain_png(tmp_path / "s.png", {
        "parameters": f"x\nSteps: 5, {fields}, CFG scale: 7, Seed: 1, Size: 64x64"})
    request = parsed(read_command(path))
    assert (request.sampler, request.sigma_schedule) == (sampler, schedule)


def test_a1111_schedule_type_without_an_equivalent_is_said(tmp_path: Path) -> None:
    """Never silently wrong: the command runs the model's own sigmas and a note says so."""
    from dreamline.repl.fetch import fetch

    path = write_plain_png(tmp_path / "ays.png", {
        "parameters": "x\nSteps: 5, Sampler: DPM++ 2M, Schedule type: Align Your Steps, "
                      "CFG scale: 7, Seed: 1, Size: 64x64"})
    fetched = fetch(path)
    assert "--karras" not in fetched.command and "--schedule" not in fetched.command
    assert any("'Align Your Steps' has no dreamline equivalent" in note for note in fetched.notes)


def test_a1111_metadata_is_taken_apart(tmp_path: Path) -> None:
    path = write_plain_png(tmp_path / "a.png", {"parameters": A1111_EXAMPLES[0][0]})
    assert read_metadata(path) == {"parameters": {
        "prompt": "a castle on a hill", "negative_prompt": "blurry, lowres", "Steps": "20",
        "Sampler": "Euler a", "CFG scale": "7", "Seed": "1234", "Size": "512x768",
        "Model hash": "abcdef12", "Model": "v1-5"}}


def test_our_parameters_read_back_as_the_same_request(tmp_path: Path) -> None:
    request = Request(prompt="a moat [fog]", steps=12, seed=8, width=320, height=256,
                      cfg_scale=6.5, sampler="k_dpm_2", karras=True,
                      with_variations=((3, 0.5),))
    text = a1111_parameters(request, {"width": 320, "height": 256})
    path = write_plain_png(tmp_path / "p.png", {"parameters": text})
    assert parsed(read_command(path)) == request
