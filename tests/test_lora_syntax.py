"""<lora:name:weight> prompt tags and --lora name:weight: parsing, validation, round trips."""

import pytest

from dreamline.format import format_command
from dreamline.lora_tags import prompt_loras, strip_lora_tags
from dreamline.parse import parse_line
from dreamline.request import Request, RequestError


def parse(line: str) -> Request:
    return parse_line(line, Request()).request


def test_prompt_tags_are_read_and_kept_in_the_prompt() -> None:
    request = parse("a cat <lora:detail:0.8> on a mat <lora:style:-0.5> <lora:plain> -S 1")
    assert request.prompt == "a cat <lora:detail:0.8> on a mat <lora:style:-0.5> <lora:plain>"
    assert request.all_loras == (("detail", 0.8), ("style", -0.5), ("plain", 1.0))
    assert strip_lora_tags(request.prompt) == "a cat on a mat"


def test_lora_switch_several_and_repeated() -> None:
    request = parse("a cat --lora detail:0.8,style:-1 --lora C:\\x\\y.safetensors:0.5 -S 1")
    assert request.loras == (("detail", 0.8), ("style", -1.0), ("C:\\x\\y.safetensors", 0.5))
    assert parse("a --lora detail").loras == (("detail", 1.0),)


def test_tags_and_switch_together_round_trip() -> None:
    request = parse("a <lora:one:0.25> --lora two:-0.75 -S 3")
    assert request.all_loras == (("one", 0.25), ("two", -0.75))
    command = format_command(request)
    assert "--lora two:-0.75" in command and "<lora:one:0.25>" in command
    assert parse(command) == request


@pytest.mark.parametrize("line, message", [
    ("a <lora:x:lots>", "'lots' is not a LoRA weight"),
    ("a <lora::1>", "names no LoRA"),
    ("a --lora detail:nan", "is not a list of LoRA name:weight pairs"),
    ("a --lora ,", "is not a list of LoRA name:weight pairs"),
    ("a --lora", "--lora: missing its value"),
])
def test_bad_loras_are_one_line(line: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse(line)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_validate_refuses_bad_switch_values() -> None:
    with pytest.raises(RequestError, match="not a LoRA name"):
        Request(prompt="a", loras=(("a,b", 1.0),)).with_changes()
    with pytest.raises(RequestError, match="not a finite number"):
        Request(prompt="a", loras=(("a", float("inf")),)).with_changes()


def test_no_tags_no_loras() -> None:
    assert prompt_loras("a <b> c: 1") == ()
    assert strip_lora_tags("a cat") == "a cat"
