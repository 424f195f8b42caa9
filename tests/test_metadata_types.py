"""A value of the wrong type anywhere in an image's metadata (a number where text goes, a word
where a number goes, a list where an object goes) is the one-line MetadataError naming the
file, and for the usual fields the field and the value, never an internal error."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dreamline.pngmeta.chunks import MetadataError, read_text_chunks
from dreamline.repl.fetch import fetch
from test_metadata_fixtures import png

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"


def refusal(path: Path) -> str:
    with pytest.raises(MetadataError) as caught:
        fetch(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize("image, expected", [
    ({"prompt": 5, "seed": "x"}, "prompt 5 is not text"),
    ({"prompt": [1]}, "prompt entry 1 is not a {prompt, weight} object"),
    ({"prompt": [{"prompt": 7, "weight": 1}]}, "prompt 7 is not text"),
    ({"prompt": [{"prompt": "a", "weight": "x"}]}, "prompt weight 'x' is not a number"),
    ({"prompt": "a", "negative_prompt": 3}, "negative_prompt 3 is not text"),
    ({"prompt": "a", "seed": "x"}, "-S/--seed: 'x' is not a whole number"),
    ({"prompt": "a", "variations": 5}, "variations 5 is not a list"),
    ({"prompt": "a", "variations": [[1, 0.5]]}, "variation [1, 0.5] is not a {seed, weight}"),
    ({"prompt": "a", "seed": 1, "init_img": 5}, "init_img 5 is not a file name"),
])
def test_sd_metadata_of_the_wrong_type(tmp_path: Path, image: dict[str, Any],
                                       expected: str) -> None:
    path = png(tmp_path / "a.png", {"sd-metadata": json.dumps({"image": image})})
    assert expected in refusal(path)


def test_sd_metadata_postprocessing_of_the_wrong_type_and_no_seed_still_fetch(
        tmp_path: Path) -> None:
    image = {"prompt": "a cat", "postprocessing": 5}
    path = png(tmp_path / "a.png", {"sd-metadata": json.dumps({"image": image})})
    assert fetch(path).command.startswith('"a cat"')
    assert " -S " not in fetch(path).command


def comfyui_graph(**sampler_inputs: Any) -> str:
    inputs = {"seed": 1, "steps": 3, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
              "denoise": 1.0, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}
    inputs.update(sampler_inputs)
    return json.dumps({"1": {"class_type": "KSampler", "inputs": inputs},
                       "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
                       "3": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}},
                       "4": {"class_type": "EmptyLatentImage",
                             "inputs": {"width": 512, "height": 512, "batch_size": 1}}})


def test_the_comfyui_graph_here_fetches(tmp_path: Path) -> None:
    assert '"a cat"' in fetch(png(tmp_path / "a.png", {"prompt": comfyui_graph()})).command


@pytest.mark.parametrize("inputs, expected", [
    ({"scheduler": 5}, "schedule 5 is not text"),
    ({"sampler_name": [1]}, "sampler [1] is not text"),
    ({"denoise": []}, "denoise [] is not a number"),
    ({"denoise": "x"}, "denoise 'x' is not a number"),
])
def test_comfyui_values_of_the_wrong_type(tmp_path: Path, inputs: dict[str, Any],
                                          expected: str) -> None:
    path = png(tmp_path / "a.png", {"prompt": comfyui_graph(**inputs)})
    assert f"ComfyUI {expected}" in refusal(path)


@pytest.mark.parametrize("data, expected", [
    ({"prompt": 5, "seed": 1}, "prompt 5 is not text"),
    ({"prompt": "a", "negative_prompt": ["x"]}, "negative prompt ['x'] is not text"),
    ({"prompt": "a", "full_prompt": ["a"], "full_negative_prompt": 5},
     "full_negative_prompt 5 is not a list"),
    ({"prompt": "a", "full_prompt": [5]}, "full_prompt 5 is not text"),
])
def test_json_parameters_of_the_wrong_type(tmp_path: Path, data: dict[str, Any],
                                           expected: str) -> None:
    path = png(tmp_path / "a.png", {"parameters": json.dumps(data)})
    assert expected in refusal(path)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:1]):
            yield from _paths(value, (*prefix, index))


def _replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    changed = copy.deepcopy(obj)
    place = changed
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    return changed


@pytest.mark.parametrize("fixture", [
    "sd-parsers/invokeai_sdmeta1.png", "sd-parsers/img2img_cropped.png",
    "sd-parsers/fooocus1_cropped.png", "sd-parsers/invokeai_imeta1.png",
    "sd-parsers/novelai1_cropped.png", "enslo-sd-metadata/swarmui-upscale.png",
    "enslo-sd-metadata/tensorart.png",
])
def test_every_field_of_a_fixture_with_a_wrong_type_is_fetched_or_refused(
        tmp_path: Path, fixture: str) -> None:
    chunks = read_text_chunks(FIXTURES / fixture)
    tried = 0
    for key, text in chunks.items():
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        for path in _paths(data):
            for wrong in (5, [], "x"):
                changed = dict(chunks, **{key: json.dumps(_replaced(data, path, wrong))})
                try:
                    fetch(png(tmp_path / "f.png", changed))
                except MetadataError:
                    pass
                tried += 1
    assert tried > 10
