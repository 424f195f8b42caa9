"""Other tools' PNGs (tests/fixtures/metadata, see its README) fetched into dream commands.

Every fixture either becomes a command that parses, with notes naming what it cannot replay, or
a refusal naming the reason.  Samplers dreamline's table may not have yet (DPM++, UniPC, LCM)
are expected either way: refused by name while the table lacks them, fetched once it has them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from dreamline.parse import parse_line
from dreamline.pngmeta.chunks import MetadataError
from dreamline.pngmeta.readers.common import find_sampler
from dreamline.repl.fetch import fetch, read_prompt
from dreamline.request import Request

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
NO_METADATA = "has no generation metadata"

# file -> (words the command holds, or None for a refusal; words of the notes or the refusal)
EXPECTED: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...]]] = {
    "enslo-sd-metadata/comfyui-anima.png": (None, ("SamplerCustomAdvanced",)),
    "enslo-sd-metadata/comfyui-comfy-image-saver.png": (
        ("-s 20 -W 1024 -H 1024 -C 5.0 -A k_euler_a --karras",), ("above 2^32-1", "clip skip 2")),
    "enslo-sd-metadata/comfyui-comfyroll.png": (None, ("DF_Text_Box",)),
    "enslo-sd-metadata/comfyui-group-nodes.png": (
        ("hatsune miku, テスト, [bad quality", "-s 20 -W 1024 -H 1024 -C 5.0 -A k_euler_a"), ()),
    "enslo-sd-metadata/comfyui-hires.png": (
        ("-s 20 -W 1024 -H 1024",), ("second sampler pass (hires fix / refiner) at denoise 0.3",)),
    "enslo-sd-metadata/comfyui-low-denoise.png": (
        ("-s 40 -W 1024 -H 1024 -C 5.0 -A k_euler_a --karras",
         "(pixel art, dithering, pixelated, sprite art, 8-bit:1.2)",  # ComfyUI's emphasis, kept
         "(worst quality, bad quality:1.2)"),
        ("denoise 0.8 on an empty latent",)),
    "enslo-sd-metadata/comfyui-rgthree.png": (("-A k_euler_a --karras",), ("clip skip 2",)),
    "enslo-sd-metadata/comfyui-save-image-extended.png": (("-A k_euler_a --karras",), ()),
    "enslo-sd-metadata/comfyui-saveimage-plus.png": (("-A k_euler_a --karras",), ()),
    "enslo-sd-metadata/comfyui-saveimagewithmetadata.png": (("-A k_euler_a --karras",), ()),
    "enslo-sd-metadata/comfyui-upscale.png": (("-A k_euler_a --karras",), ()),
    "enslo-sd-metadata/comfyui.png": (("-s 20 -W 1024 -H 1024 -C 5.0 -A k_euler_a --karras",), ()),
    "enslo-sd-metadata/empty.png": (None, (NO_METADATA,)),
    "enslo-sd-metadata/forge-classic-adetailer.png": (
        ("-s 24 -S 4179307297 -W 1024 -H 1024 -C 4.0 -A k_euler_a", "[bad quality"),
        ("ADetailer",)),
    "enslo-sd-metadata/forge-neo-adetailer.png": (("-S 4179307297",), ("ADetailer",)),
    "enslo-sd-metadata/forge-neo-hires.png": (("-S 449383496 -W 1024 -H 1024 -C 6.0",),
                                              ("clip skip 2", "hires fix")),
    "enslo-sd-metadata/forge-neo.png": (("-S 4179307297 -W 1024 -H 1024 -C 6.0 -A k_euler_a",),
                                        ("clip skip 2",)),
    "enslo-sd-metadata/forge.png": ((("-s 25 -S 747066619 -W 1024 -H 1024 -C 5.0 -A k_euler "
                                     "--karras"),), ()),
    "enslo-sd-metadata/gimp-en.png": (None, (NO_METADATA,)),
    "enslo-sd-metadata/gimp.png": (None, (NO_METADATA,)),
    "enslo-sd-metadata/invokeai-en.png": ((("-s 24 -S 1860920704 -W 1024 -H 1024 -C 6.0 -A "
                                           "k_euler_a"),), ("sdxl model",)),
    "enslo-sd-metadata/invokeai.png": (("#テスト [bad quality", "-S 3951921344"), ("sdxl",)),
    "enslo-sd-metadata/krea2.png": (None, ("ResolutionSelector",)),
    "enslo-sd-metadata/novelai-curated.png": (
        ("-s 23 -S 2156638429 -W 1024 -H 1024 -C 5.0 -A k_euler_a --karras", "no text, feet,"),
        ("-0.8::feet::", "NovelAI Diffusion V4.5")),
    "enslo-sd-metadata/novelai-full-3char.png": (("-S 1702945580",), ("character prompts",)),
    "enslo-sd-metadata/novelai-full.png": (("-W 832 -H 1216",), ()),
    "enslo-sd-metadata/novelai-ref.png": (("-S 949223552",), ()),
    "enslo-sd-metadata/sd-next-en.png": (("-s 20 -S 2251068289 -W 1024 -H 1024 -C 6.0 -A k_lms",),
                                         ("no sampler recorded",)),
    "enslo-sd-metadata/sd-next-hires.png": (("-A ddim",), ("exponential schedule does not "
                                                           "apply to ddim", "hires fix")),
    "enslo-sd-metadata/sd-next.png": (("-S 2427651458", "-A ddim"),
                                      ("exponential schedule does not apply to ddim",)),
    "enslo-sd-metadata/stability-matrix-hires.png": (("-S 2073041550 -W 1024 -H 1024",),
                                                     ("second sampler pass",)),
    "enslo-sd-metadata/stability-matrix-upscale.png": (("-S 963022979",), ()),
    "enslo-sd-metadata/stability-matrix.png": ((("-s 20 -S 395309383 -W 1024 -H 1024 -C 5.0 -A "
                                                "k_euler_a --karras"),), ()),
    "enslo-sd-metadata/swarmui-hires.png": (("-S 733776228 -W 768 -H 768 -C 7.0",),
                                            (("second sampler pass (hires fix / refiner) from "
                                             "step 14 of 20"),)),
    "enslo-sd-metadata/swarmui-upscale.png": (("-S 1741309074 -W 1536 -H 1536",),
                                              ("init image is not recorded",)),
    "enslo-sd-metadata/swarmui.png": ((("-s 20 -S 2083100758 -W 1024 -H 1024 -C 7.0 -A k_euler_a "
                                       "--karras"),), ()),
    "enslo-sd-metadata/tensorart.png": (("-s 25 -S 3036459311 -W 1024 -H 1024 -C 7.0",), ()),
    "sd-parsers/automatic1111_stealth.png": (None, (NO_METADATA,)),
    "sd-parsers/invokeai_dream1.png": (
        ("low contrast [rendering, glowing eyes, skinny]", ("-s 50 -S 2980747362 -W 512 -H 768 "
         "-C 5 -A k_lms")), ("-G (face restoration)", "-U (upscaling)")),
    "sd-parsers/invokeai_imeta1.png": (("-s 35 -S 3293022630 -W 1024 -H 1024 -C 8.0 -A k_euler",
                                        "[(grainy:1.1), photo", "(noisy:1.21)"),  # compel's +
                                       ("ipAdapters",)),
    "sd-parsers/invokeai_sdmeta1.png": (
        ("[rendering, glowing eyes, skinny]", "-s 50 -S 2980747362 -W 512 -H 768 -C 5.0 -A k_lms"),
        (("holds switches dreamline does not run (-G (face restoration), -cf (face "
         "restoration), -U (upscaling)); the command is built from its sd-metadata"),
         "not replayed (dreamline does not run them): codeformer, esrgan")),
    "sd-parsers/noisy_latents_3_subjects_cropped.png": (None, ("LatentComposite",)),
    "sd-parsers/night_evening_day_morning_cropped.png": (None, ("ConditioningCombine",)),
    "sd-parsers/novelai1_cropped.png": (("-s 50 -S 2253955223 -C 10.0 -A k_euler_a",),
                                        ("strength 0.4", "size not recorded")),
}
# file -> the sampler it names, fetched when dreamline's table has it, else refused by name
BY_SAMPLER: dict[str, tuple[str, tuple[str, ...]]] = {
    "enslo-sd-metadata/easy-reforge.png": ("LCM", ("hires fix",)),
    "enslo-sd-metadata/forge-classic-en.png": ("DPM++ 2M", ("-S 1239240392",)),
    "enslo-sd-metadata/forge-classic-hires.png": ("DPM++ 2M", ("hires fix",)),
    "enslo-sd-metadata/forge-classic.png": ("DPM++ 2M", ()),
    "enslo-sd-metadata/huggingface-space-upscale.png": ("DPM++ 2M Karras", ("upscaling",)),
    "enslo-sd-metadata/huggingface-space.png": ("DPM++ 2M Karras", ("-S 443800072",)),
    "enslo-sd-metadata/reforge-hires.png": ("DPM++ 2M", ("hires fix",)),
    "enslo-sd-metadata/reforge.png": ("DPM++ 2M", ("-S 270740395",)),
    "enslo-sd-metadata/ruined-fooocus.png": ("dpmpp_2m_sde_gpu", ("-S 2020047614",)),
    "enslo-sd-metadata/sd-webui-hires.png": ("DPM++ 2M", ("hires fix",)),
    "enslo-sd-metadata/sd-webui.png": ("DPM++ 2M", ("-S 3782896554 -W 1024 -H 1024 -C 7.0",)),
    "sd-parsers/automatic1111_cropped.png": ("UniPC", ("-s 15 -S 235284042 -W 512 -H 400",)),
    "sd-parsers/fooocus1_cropped.png": ("dpmpp_2m_sde_gpu", ()),
    "sd-parsers/img2img_cropped.png": ("sample_dpmpp_2m", ("-I example.png", "-f 0.87")),
    "sd-parsers/unclip_2pass_cropped.png": ("uni_pc_bh2", ()),
}


def test_every_fixture_has_an_expectation() -> None:
    files = {str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.png")}
    assert files == set(EXPECTED) | set(BY_SAMPLER)


def _check(path: Path, words: tuple[str, ...] | None, notes: tuple[str, ...]) -> None:
    if words is None:
        with pytest.raises(MetadataError) as refused:
            fetch(path)
        message = str(refused.value)
        assert message.startswith(str(path)) and "\n" not in message
        for word in notes:
            assert word in message
        return
    fetched = fetch(path)
    parse_line(fetched.command, Request())  # runnable as it stands
    for word in words:
        assert word in fetched.command
    text = "\n".join(fetched.notes)
    for word in notes:
        assert word in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fetches_or_is_refused_with_its_reason(name: str) -> None:
    words, notes = EXPECTED[name]
    _check(FIXTURES / name, words, notes)


@pytest.mark.parametrize("name", sorted(BY_SAMPLER))
def test_fixture_with_a_newer_sampler(name: str) -> None:
    label, words = BY_SAMPLER[name]
    found = find_sampler(label)
    if found is None:
        _check(FIXTURES / name, None, (f"sampler {label!r} has no dreamline equivalent",))
    else:
        _check(FIXTURES / name, (f"-A {found[0]}", *[w for w in words if w.startswith("-")]),
               tuple(w for w in words if not w.startswith("-")))


# ---- single rules, on small hand-made files ------------------------------------------------------

def png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def a1111(tmp_path: Path, settings: str, prompt: str = "a lake") -> Path:
    return png(tmp_path / "a.png", {"parameters": f"{prompt}\n{settings}"})


def test_cfg_scale_with_a_capital_s(tmp_path: Path) -> None:
    path = a1111(tmp_path, "Steps: 20, Sampler: Euler, CFG Scale: 8.5, Seed: 5, Size: 64x64")
    assert "-C 8.5" in fetch(path).command


def test_a_missing_sampler_is_said(tmp_path: Path) -> None:
    fetched = fetch(a1111(tmp_path, "Steps: 20, CFG scale: 7, Seed: 5, Size: 64x64"))
    assert "-A k_lms" in fetched.command
    assert any("no sampler recorded" in note for note in fetched.notes)


def test_a_seed_above_2_to_the_32_is_said_and_left_out(tmp_path: Path) -> None:
    fetched = fetch(a1111(tmp_path, "Steps: 20, Sampler: Euler, CFG scale: 7, "
                                    "Seed: 38802053347333, Size: 64x64"))
    assert " -S " not in fetched.command
    assert any("seed 38802053347333 is above 2^32-1" in note for note in fetched.notes)


def test_schedule_type_automatic_is_the_samplers_default(tmp_path: Path) -> None:
    dpm2 = fetch(a1111(tmp_path, "Steps: 9, Sampler: DPM2, Schedule type: Automatic, "
                                 "CFG scale: 7, Seed: 1, Size: 64x64")).command
    euler = fetch(png(tmp_path / "e.png", {"parameters": "x\nSteps: 9, Sampler: Euler, "
                  "Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 64x64"}))
    assert "-A k_dpm_2 --karras" in dpm2 and "--karras" not in euler.command
    # Euler's default is the model's own sigmas, which dreamline runs: nothing to say about it
    assert not [note for note in euler.notes if "schedule" in note]


def test_what_cannot_be_replayed_is_one_note(tmp_path: Path) -> None:
    fetched = fetch(a1111(tmp_path, "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, "
                          "Size: 64x64, Clip skip: 2, Hires upscale: 2, Hires steps: 5, "
                          "Refiner: x, ADetailer model: face.pt",
                          prompt="a (lake:1.3) <lora:wet:0.8>"))
    assert '"a (lake:1.3) <lora:wet:0.8>"' in fetched.command  # emphasis and LoRA tags run
    replay = [note for note in fetched.notes if "not replayed" in note]
    assert len(replay) == 1
    for what in ("clip skip 2", "hires fix", "refiner", "ADetailer"):
        assert what in replay[0]
    assert not [note for note in fetched.notes if "prompt syntax" in note]


def test_a1111_and_becomes_weighted_sub_prompts(tmp_path: Path) -> None:
    path = a1111(tmp_path, "Steps: 5, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64",
                 prompt="a cat :1.5 AND a dog")
    assert parse_line(fetch(path).command, Request()).request.prompt == "a cat:1.5 a dog:1"


def test_json_parameters_are_not_called_a1111(tmp_path: Path) -> None:
    path = png(tmp_path / "f.png", {"parameters": json.dumps({
        "Prompt": "a boat", "Negative": "fog", "steps": 12, "cfg": 6, "width": 320,
        "height": 256, "seed": 44, "sampler_name": "euler_ancestral", "scheduler": "karras",
        "software": "RuinedFooocus"})})
    assert fetch(path).command == '"a boat [fog]" -s 12 -S 44 -W 320 -H 256 -C 6.0 ' \
                                  '-A k_euler_a --karras'


def test_comfyui_img2img_graph(tmp_path: Path) -> None:
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sketch.png"}},
        "2": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["4", 2]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": ["8", 0], "steps": 20, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 0.6, "positive": ["5", 0], "negative": ["6", 0],
            "latent_image": ["2", 0], "model": ["4", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.ckpt"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a (tree:1.2)", "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "blur", "clip": ["4", 1]}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "8": {"class_type": "PrimitiveNode", "inputs": {"value": 1234}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["7", 0]}},
    }
    fetched = fetch(png(tmp_path / "c.png", {"prompt": json.dumps(graph)}))
    assert fetched.command == '"a (tree:1.2) [blur]" -s 20 -S 1234 -C 7.0 -I sketch.png ' \
                              '-A k_euler -f 0.6'  # ComfyUI's emphasis, in our syntax
    assert not any("(tree:1.2)" in note for note in fetched.notes)


def test_a_graph_that_cannot_be_traced_is_a_clear_refusal(tmp_path: Path) -> None:
    graph = {"1": {"class_type": "SamplerCustom", "inputs": {}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(MetadataError, match=r"c\.png: ComfyUI graph cannot be traced: the image "
                                            r"comes from a SamplerCustom node"):
        fetch(png(tmp_path / "c.png", {"prompt": json.dumps(graph)}))


def test_invokeai2_placeholder_dream_is_not_a_prompt(tmp_path: Path) -> None:
    meta = {"model_weights": "m", "app_id": "invoke-ai/InvokeAI", "image": {
        "prompt": [{"prompt": "a hill [mist]", "weight": 1.0}], "seed": 3, "steps": 9,
        "cfg_scale": 7.5, "width": 512, "height": 512, "sampler": "k_heun", "variations": []}}
    path = png(tmp_path / "p.png", {"Dream": "<too lazy to implement>",
                                    "sd-metadata": json.dumps(meta)})
    assert read_prompt(path) == "a hill [mist]"
    assert "-A k_heun" in fetch(path).command


def test_fooocus_full_prompt_is_what_ran(tmp_path: Path) -> None:
    path = png(tmp_path / "f.png", {"parameters": json.dumps({
        "prompt": "a fish", "negative_prompt": "", "full_prompt": ["cinematic a fish", "4k"],
        "full_negative_prompt": ["blurry"], "styles": "['Fooocus V2']", "steps": 30,
        "guidance_scale": 4, "resolution": "(768, 1280)", "seed": "17", "sampler": "euler",
        "scheduler": "karras", "refiner_model": "None", "refiner_switch": 0.5,
        "version": "Fooocus v2.4.3"})})
    fetched = fetch(path)
    assert fetched.command == '"cinematic a fish, 4k [blurry]" -s 30 -S 17 -W 768 -H 1280 ' \
                              '-C 4.0 -A k_euler --karras'
    assert any("full prompt" in note for note in fetched.notes)
    assert not any("not replayed" in note for note in fetched.notes)  # no refiner, styles ran


def test_fractional_steps_are_refused_not_truncated(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"steps '7\.5' is not a whole number"):
        fetch(a1111(tmp_path, "Steps: 7.5, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"))


def test_json_parameters_are_shown_as_json() -> None:
    from dreamline.repl.fetch import read_metadata

    found = read_metadata(FIXTURES / "enslo-sd-metadata/swarmui.png")
    assert found["parameters"]["sui_image_params"]["seed"] == 2083100758


def test_invokeai2_old_variation_syntax_falls_back_to_sd_metadata(tmp_path: Path) -> None:
    meta = {"model_weights": "m", "app_id": "invoke-ai/InvokeAI", "image": {
        "prompt": [{"prompt": "a hill", "weight": 1.0}], "seed": 3, "steps": 9,
        "cfg_scale": 7.5, "width": 512, "height": 512, "sampler": "k_lms",
        "variations": [{"seed": 11, "weight": 0.1}, {"seed": 12, "weight": 0.2}]}}
    path = png(tmp_path / "v.png", {"Dream": '"a hill" -s 9 -S 3 -V 11,0.1;12,0.2',
                                    "sd-metadata": json.dumps(meta)})
    fetched = fetch(path)
    assert "-V 11:0.1,12:0.2" in fetched.command
    assert any("sd-metadata" in note and "-V" in note for note in fetched.notes)


@pytest.mark.parametrize("chunks, named", [
    ({"invokeai_metadata": "{broken"}, "its invokeai_metadata chunk is not valid JSON"),
    ({"Software": "NovelAI", "Comment": "{broken"}, "its NovelAI Comment chunk is not valid JSON"),
    ({"parameters": "{\"prompt\": "}, "its parameters chunk is not valid JSON"),
])
def test_broken_json_chunks_are_refused_naming_the_chunk(tmp_path: Path, chunks: dict[str, str],
                                                         named: str) -> None:
    with pytest.raises(MetadataError, match=named):
        fetch(png(tmp_path / "broken.png", chunks))
