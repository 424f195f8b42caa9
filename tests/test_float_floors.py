"""Float switches that are "off" at 0 have a lower bound when on: a value between 0 and it was
accepted but did nothing (--tome 1e-30 merged no token; -v 1e-30 gave the seed's own image).
The bound is in the error and in -h."""

from __future__ import annotations

import pytest

from dreamline.helptext import format_help
from dreamline.parse import parse_line
from dreamline.request import Request, RequestError


@pytest.mark.parametrize("line, message", [
    ("a --tome 1e-30", "--tome: 1e-30 is out of range; expected 0 (off), or a merge ratio from "
                       "0.01 to 0.75"),
    ("a --tome 0.009", "--tome: 0.009 is out of range; expected 0 (off), or a merge ratio from "
                       "0.01 to 0.75"),
    ("a -v 1e-30", "-v/--variation_amount: 1e-30 is out of range; expected 0 (off), or a value "
                   "from 0.01 to 1"),
    ("a -v 0.005", "-v/--variation_amount: 0.005 is out of range; expected 0 (off), or a value "
                   "from 0.01 to 1"),
])
def test_a_value_that_does_nothing_is_refused_naming_the_bound(line: str, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_line(line, Request())
    assert str(caught.value) == message


@pytest.mark.parametrize("line, field, value", [
    ("a --tome 0", "tome", 0.0), ("a --tome 0.01", "tome", 0.01),
    ("a --tome 0.75", "tome", 0.75), ("a -v 0", "variation_amount", 0.0),
    ("a -v 0.01", "variation_amount", 0.01), ("a -v 1", "variation_amount", 1.0),
])
def test_off_and_the_bounds_themselves_are_accepted(line: str, field: str,
                                                    value: float) -> None:
    assert getattr(parse_line(line, Request()).request, field) == value


def test_help_gives_the_bounds() -> None:
    assert "0 (off), or a merge ratio from 0.01 to 0.75" in format_help("generation")
    assert "0 (off), or a value from 0.01 to 1" in format_help("variations").replace(
        "\n" + " " * 34, " ")
