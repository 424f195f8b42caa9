"""Mistakes in compel's .blend()/.and() are one line naming the text and what was expected,
said when the line is parsed (before any model runs), not an internal error from compel."""

from __future__ import annotations

import pytest
from core_fixtures import tiny_model

from dreamline.compel_methods import check_methods
from dreamline.core.conditioning import TextEncoder
from dreamline.errors import DreamlineError
from dreamline.parse import parse_line
from dreamline.request import Request, RequestError


def error_of(line: str) -> str:
    with pytest.raises(RequestError) as caught:
        parse_line(line, Request())
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("line, expected", [
    ("'(\"a cat\", \"a dog\").blend(0.7)'",
     "2 prompts but 1 weight; expected one weight per prompt"),
    ("'(\"a\", \"b\").blend(1, 2, 3)'", "2 prompts but 3 weights; expected one weight per"),
    ("'(\"a\", \"b\").and(1)'", "2 prompts but 1 weight; expected one weight per prompt"),
    ("'(\"a\", \"b\").add(1, 2, 3)'", "2 prompts but 3 weights"),
    ("'(\"a, b\", \"c\").blend(1)'", "2 prompts but 1 weight"),
    ("'(\"a cat\", \"a dog\").blend(a, b)'", "weight 'a' is not a number; expected weights "
                                             "are numbers"),
    ("'(\"a\", \"b\").and(x, y)'", "weight 'x' is not a number"),
    ("'(\"a\", \"b\").blend(0.7, 0.3'", "has no closing ')'; expected .blend(weights)"),
    ("'(\"a\", \"b\").blend(1, 2).and(1)'", "chains two compel methods"),
    ("'(\"a\", \"b\").blend(0, 0)'", "the weights add up to zero; expected a non-zero total"),
    ("'(\"a\", \"b\").blend(1, -1)'", "the weights add up to zero"),
    ("'a [(\"x\", \"y\").blend(1)]'", "2 prompts but 1 weight"),
    # unquoted prompts: compel would read the whole as plain text
    ("'(a, b).blend(1, 2)'", "only when each is in double quotes; expected (\"a\", \"b\")"
                             ".blend(1, 2), with the whole prompt in single quotes"),
    ('("a cat", "a dog").blend(0.7, 0.3) -s 2', "expected (\"a cat\", \"a dog\").blend(0.7, "
                                               "0.3)"),
    ("'(\"a cat\", a dog).and()'", "expected (\"a cat\", \"a dog\").and()"),
    ("'(\"cat face\" \"fox\").blend(0.7, 0.3)'", "the quoted prompts are not separated by "
                                                "commas; expected (\"a\", \"b\").blend(0.7, 0.3)"),
])
def test_a_compel_method_mistake_is_one_line_at_parse_time(line: str, expected: str) -> None:
    message = error_of(line)
    assert message.startswith("prompt: ")
    assert expected in message


def test_the_message_names_the_bad_text() -> None:
    assert "'(\"a cat\", \"a dog\").blend(0.7)'" in error_of("'(\"a cat\", \"a dog\").blend(0.7)'")


@pytest.mark.parametrize("text", [
    '("a cat", "a dog").blend(0.7, 0.3)',
    '("a cat", "a dog").blend()',
    '("a", "b").blend(1, 2, no_normalize)',
    '("a", "b").blend(0, 0, no_normalize)',
    '("a", "b").and()',
    '("a", "b").and(1, .5)',
    '(cat).blend(1)',  # one prompt needs no quotes
    '("a (b) c", "d").blend(1,2)',
    "a cat.blend(1)",  # no group before it: compel reads it as plain text
    "don't panic, 16:9 (cat:1.2)",
])
def test_good_compel_syntax_and_plain_text_pass(text: str) -> None:
    check_methods(text)
    parse_line(f"'{text}'" if "'" not in text else text, Request())


@pytest.fixture(scope="module")
def text() -> TextEncoder:
    model = tiny_model()
    return TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                       lambda _line: None)


@pytest.mark.parametrize("prompt", [
    '("a cat", "a dog").blend(0.7)',
    '("a cat", "a dog").blend(a, b)',
    '("a", "b").and(1)',
    '("a", "b").blend(1, 2).and(1)',
])
def test_the_encoder_turns_what_compel_refuses_into_one_line(text: TextEncoder,
                                                             prompt: str) -> None:
    with pytest.raises(DreamlineError, match=r"^prompt: compel cannot read") as info:
        text.conditioning(prompt)
    assert "\n" not in str(info.value)


def test_a1111_nesting_is_one_group_and_deep_real_nesting_is_refused() -> None:
    from dreamline.prompt_syntax import to_compel

    # ((((((((((cat)))))))))) is one group weighted 1.1 ** 10, not ten nested ones
    flat = to_compel("(" * 20 + "cat" + ")" * 20)
    assert flat.startswith("(cat)") and float(flat[5:]) == pytest.approx(1.1 ** 20, rel=1e-11)
    parse_line("(" * 20 + "cat" + ")" * 20, Request())
    parse_line("(a " * 8 + "cat" + ")" * 8, Request())  # 8 real levels: allowed
    message = error_of("(a " * 9 + "cat" + ")" * 9)
    assert message.startswith("prompt: weighting groups nested 9 deep in '(a (a (a ")
    assert "expected at most 8 levels" in message
