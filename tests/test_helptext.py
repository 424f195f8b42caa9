"""-h fits an 80-column terminal: every topic's every line, long help wrapped under a hanging
indent (never cut), and the short screen still one screen."""

from __future__ import annotations

import pytest

from dreamline.helptext import SHORT_SCREEN_LINES, format_help
from dreamline.request import Request
from dreamline.switches import HELP_TOPICS, SWITCHES

TOPICS = ("", *HELP_TOPICS)


def _joined(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("model_fields", [(), ("cfg_scale",)])
@pytest.mark.parametrize("topic", TOPICS)
def test_every_line_of_every_topic_fits_80_columns(topic: str, model_fields: tuple[str]) -> None:
    defaults = Request(cfg_scale=12.5, steps=1000, strength=0.3333333333333333)
    lines = format_help(topic, defaults, model_fields).splitlines()
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, too_long


def test_long_help_is_wrapped_under_a_hanging_indent_not_cut() -> None:
    text = format_help("all")
    for switch in SWITCHES:
        assert _joined(switch.help) in _joined(text), switch.long
    for line in format_help("generation").splitlines()[1:]:
        # a switch's first line starts at column 2, its wrapped help at column 34
        assert line.startswith("  -") or line.startswith(" " * 34) and line[34] != " ", line


def test_the_short_screen_keeps_every_brief_whole_and_fits_one_screen() -> None:
    text = format_help()
    assert len(text.splitlines()) <= SHORT_SCREEN_LINES
    for switch in SWITCHES:
        if switch.common:
            assert _joined(switch.brief) in _joined(text), switch.long
    for topic in (topic for topic in HELP_TOPICS if topic != "all"):
        assert f"-h {topic} (" in text  # a topic and its count are never split across lines
