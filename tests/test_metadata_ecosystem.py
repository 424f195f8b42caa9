"""Our PNGs read by other tools' rules: InvokeAI 2.x's !fetch, A1111's prompt parser and
infotext fields, InvokeAI 3+'s invokeai_metadata.  The readers below are written from those
tools' documented rules (not their code), small enough to check by eye."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dreamline.format import format_command
from dreamline.outputs import save_image
from dreamline.pngmeta.a1111 import a1111_parameters, grid_parameters, parse_a1111
from dreamline.pngmeta.chunks import read_text_chunks
from dreamline.pngmeta.invokeai import sd_metadata
from dreamline.prompts import split_prompt
from dreamline.repl.fetch import fetch
from dreamline.request import Request

# ---- InvokeAI 2.x: ldm/invoke/args.py metadata_loads + repack_prompt, conditioning.py rules ----

_V2_NEGATIVE = re.compile(r"\[(.*?)\]")
_V2_WEIGHTS = re.compile(r"(?P<prompt>(?:\\:|[^:])+)(?::+(?P<weight>-?\d+(?:\.\d+)?)?\s*|$)")


def invoke2_fetch(metadata: dict[str, Any]) -> dict[str, Any]:
    """What InvokeAI 2.x's !fetch takes from an sd-metadata dict: the prompt list repacked
    (``text:weight`` joined by ',' when several), then its generation rules: ``[...]`` anywhere
    is the negative, every unescaped colon + number is a weight; other keys by their 2.x names."""
    image = metadata["image"]
    entries = image["prompt"]
    if len(entries) > 1:
        prompt = ",".join(f"{entry['prompt']}:{entry['weight']}" for entry in entries)
    else:
        prompt = entries[0]["prompt"]
    negative = " ".join(_V2_NEGATIVE.findall(prompt))
    positive = re.sub(" +", " ", _V2_NEGATIVE.sub(" ", prompt))
    parts = [(match.group("prompt").replace("\\:", ":").strip(" ,"),
              float(match.group("weight") or 1)) for match in _V2_WEIGHTS.finditer(positive)]
    return {"parts": parts, "negative": negative, "seed": image["seed"], "steps": image["steps"],
            "cfg_scale": image["cfg_scale"], "width": image["width"], "height": image["height"],
            "sampler_name": image["sampler"], "init_img": image.get("init_img"),
            "strength": image.get("strength"), "model": metadata.get("model_weights")}


@pytest.mark.parametrize("request_", [
    Request(prompt="a 16:9 photo:2 a moat:1 [blurry, lowres]", steps=30, seed=42, width=512,
            height=448, sampler="k_euler_a"),
    Request(prompt="a castle at dawn [fog] [ugly]", seed=7, init_img="in/fire.png",
            strength=0.6, sampler="k_lms"),
])
def test_sd_metadata_reads_right_by_invokeai2_fetch(request_: Request) -> None:
    run = {"width": request_.width or 512, "height": request_.height or 512,
           "model_name": "sd-1.5", "model_hash": "cc6cb27103"}
    got = invoke2_fetch(sd_metadata(request_, run))
    parts = split_prompt(request_.prompt)
    assert [(text, pytest.approx(weight)) for text, weight in got["parts"]] == \
        [(text, pytest.approx(weight)) for text, weight in parts.positive]
    assert got["negative"] == parts.negative
    assert (got["seed"], got["steps"], got["cfg_scale"], got["sampler_name"]) == \
        (request_.seed, request_.steps, request_.cfg_scale, request_.sampler)
    assert (got["init_img"], got["strength"]) == \
        (request_.init_img, request_.strength if request_.is_img2img else None)
    assert got["model"] == "sd-1.5"


def sd_parsers_reads(metadata: dict[str, Any]) -> dict[str, Any]:
    """sd-parsers' InvokeAI sd-metadata rules: ``sampler`` is required, each prompt item's text
    is split at ``[...]`` into prompts and negative prompts (stripped of ' ,'), the model is
    ``model_weights`` + ``model_hash``."""
    image = dict(metadata["image"])
    prompts: list[str] = []
    negatives: list[str] = []
    for item in image["prompt"]:
        text, index = item["prompt"], 0
        for match in re.finditer(r"\[([^\[]*)\]", text):
            negatives.append(match.group(1).strip(" ,"))
            prompts.append(text[index:match.start()].strip(" ,"))
            index = match.end()
        prompts.append(text[index:].strip(" ,"))
    return {"sampler": image["sampler"], "prompts": [p for p in prompts if p],
            "negatives": [n for n in negatives if n], "seed": image["seed"],
            "steps": image["steps"], "cfg_scale": image["cfg_scale"],
            "model": (metadata.get("model_weights"), metadata.get("model_hash"))}


def test_sd_metadata_reads_right_by_sd_parsers() -> None:
    request = Request(prompt="a castle:2 a moat:1 [blurry, lowres]", steps=30, seed=42,
                      sampler="k_euler_a")
    got = sd_parsers_reads(sd_metadata(request, {"model_name": "sd-1.5", "model_hash": "cc"}))
    assert got == {"sampler": "k_euler_a", "prompts": ["a castle", "a moat"],
                   "negatives": ["blurry, lowres"], "seed": 42, "steps": 30, "cfg_scale": 7.5,
                   "model": ("sd-1.5", "cc")}


# ---- A1111: infotext_utils.parse_generation_parameters, prompt_parser rules ---------------------

_RE_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def a1111_prompt_reads(text: str) -> list[tuple[str, float, bool]]:
    """A1111's reading of a positive prompt: AND splits, each part's trailing ``:weight``,
    then the attention parser (backslash escapes; unescaped ()[] are emphasis).  Returns
    (plain text, weight, emphasised) per part."""
    result = []
    for part in re.split(r"\bAND\b", text):
        match = _RE_WEIGHT.match(part)
        assert match is not None
        body, weight = match.group(1), float(match.group(2) or 1.0)
        plain, emphasised, index = [], False, 0
        while index < len(body):
            if body[index] == "\\" and index + 1 < len(body):
                plain.append(body[index + 1])
                index += 2
                continue
            if body[index] in "()[]":
                emphasised = True
            else:
                plain.append(body[index])
            index += 1
        result.append(("".join(plain).strip(), weight, emphasised))
    return result


@pytest.mark.parametrize("prompt, expected", [
    ("a wide photo 16:9", [("a wide photo 16:9", 1.0, False)]),
    ("a \\(cat\\) [sitting] here", [("a (cat) here", 1.0, False)]),  # [x]: our negative
    # (our "(cat)" is emphasis, written as A1111's: tests/test_a1111_emphasis.py)
    ("salt AND pepper", [("salt and pepper", 1.0, False)]),
    ("a cat:3 a dog 4:3:1", [("a cat", 0.75, False), ("a dog 4:3:1", 0.25, False)]),
])
def test_a1111_reads_our_prompt_text_literally(prompt: str, expected: list) -> None:
    text = a1111_parameters(Request(prompt=prompt, seed=1), {"width": 64, "height": 64})
    parts = a1111_prompt_reads(parse_a1111(text).prompt)
    assert [(t.lower(), pytest.approx(w), e) for t, w, e in parts] == \
        [(t, pytest.approx(w), e) for t, w, e in expected]


@pytest.mark.parametrize("sampler, karras, label, schedule", [
    ("k_dpm_2", False, "DPM2", "Uniform"), ("k_dpm_2_a", False, "DPM2 a", "Uniform"),
    ("k_dpm_2", True, "DPM2 Karras", "Karras"), ("k_euler", False, "Euler", "Uniform"),
    ("ddim", False, "DDIM", None),
])
def test_a1111_schedule_type_is_written(sampler: str, karras: bool, label: str,
                                        schedule: str | None) -> None:
    fields = parse_a1111(a1111_parameters(Request(prompt="x", seed=1, sampler=sampler,
                                                  karras=karras), {})).fields
    assert fields["Sampler"] == label and fields.get("Schedule type") == schedule


def test_v_prediction_is_recorded() -> None:
    run = {"width": 64, "height": 64, "prediction_type": "v_prediction"}
    request = Request(prompt="x", seed=1)
    assert sd_metadata(request, run)["image"]["prediction_type"] == "v_prediction"
    assert "Prediction type: v_prediction" in a1111_parameters(request, run)


def test_grid_parameters_are_the_first_images() -> None:
    request = Request(prompt="a fox", seed=3)
    assert grid_parameters((request, {"width": 8, "height": 8})) == \
        a1111_parameters(request, {"width": 8, "height": 8})


# ---- InvokeAI 3.x+: invokeai_metadata ---------------------------------------------------------

def test_invokeai_metadata_is_written_for_current_invokeai(tmp_path: Path) -> None:
    request = Request(prompt="a moat:1 a wall:3 [fog]", steps=12, seed=9, sampler="k_dpm_2_a",
                      karras=True, init_img="in.png", strength=0.5)
    run = {"width": 320, "height": 256, "model_name": "sd-1.5", "model_hash": "abc"}
    path = save_image(tmp_path, 1, 9, Image.new("RGB", (8, 8)), format_command(request),
                      sd_metadata(request, run), a1111_parameters(request, run))
    data = json.loads(read_text_chunks(path)["invokeai_metadata"])
    assert data["positive_prompt"] == '("a moat", "a wall").blend(0.25, 0.75)'
    assert data["negative_prompt"] == "fog"
    assert (data["scheduler"], data["steps"], data["seed"], data["cfg_scale"]) == \
        ("kdpm_2_a_k", 12, 9, 7.5)
    assert (data["width"], data["height"], data["strength"], data["init_image"]) == \
        (320, 256, 0.5, "in.png")
    assert data["generation_mode"] == "img2img" and data["model"]["name"] == "sd-1.5"
    # our own reader still prefers the exact Dream command
    assert fetch(path).command == format_command(request)


def test_embeddings_used_are_in_sd_metadata_and_ti_hashes() -> None:
    run = {"width": 64, "height": 64, "embeddings": (("shiny", "0123456789ab"),)}
    request = Request(prompt="a <shiny> fox", seed=1)
    image = sd_metadata(request, run)["image"]
    # an extra key InvokeAI 2.x did not have (it recorded no embeddings); its !fetch skips it
    assert image["embeddings"] == [{"name": "shiny", "hash": "0123456789ab"}]
    assert image["prompt"] == [{"prompt": "a <shiny> fox", "weight": 1.0}]
    assert parse_a1111(a1111_parameters(request, run)).fields["TI hashes"] == \
        "shiny: 0123456789ab"
    assert "embeddings" not in sd_metadata(request, {"width": 64, "height": 64})["image"]
