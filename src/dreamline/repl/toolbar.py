"""The bottom toolbar: which model, on which device, and the defaults a bare prompt gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prompt_toolkit.formatted_text import StyleAndTextTuples

from dreamline.request import Request
from dreamline.switches import Kind, launch_switches


class ToolbarSource(Protocol):
    """What the toolbar reads each time it is drawn (the Session provides it)."""

    def toolbar_state(self) -> tuple[str, str, Request]: ...  # (model, device, defaults)


def describe_defaults(defaults: Request) -> str:
    """The per-line defaults as switches, e.g. '-s 50 -W 512 -H 512 -C 7.5 -A k_lms -f 0.75'.

    Exactly the launch options of the switch table, so a new one shows up here by itself.
    """
    parts: list[str] = []
    for switch in launch_switches():
        value = getattr(defaults, str(switch.field))
        if value is None or value is False:
            continue
        name = switch.shorts[0] if switch.shorts else switch.long
        if switch.kind is Kind.FLAG:
            parts.append(name)
        else:
            parts.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
    if defaults.schedule != "model":  # a model's "DPM++ 2M Karras" default, or a launch one
        parts.append(f"--schedule {defaults.schedule}")
    return " ".join(parts)


Fragments = StyleAndTextTuples
WIDTH = 80  # every toolbar line fits an 80-column terminal
HINTS = "[Tab] complete  [!help] commands  [Ctrl-D] quit"


def _fit(text: str, room: int, *, keep_end: bool = False) -> str:
    """``text`` cut to ``room`` characters with '...' where it was cut (its start, when
    ``keep_end``: a model path's file name and hash are what tell models apart)."""
    if len(text) <= room:
        return text
    if room <= 3:
        return text[:room]
    if keep_end:
        return "..." + text[len(text) - (room - 3):]
    return text[:room - 3] + "..."


def _width(fragments: Fragments) -> int:
    return sum(len(fragment[1]) for fragment in fragments)


def toolbar_lines(model: str, device: str, defaults: Request) -> list[Fragments]:
    """The toolbar as lines of (style, text) fragments, each at most WIDTH characters.

    Line 1: model and device (a long model path loses its start); line 2: the
    defaults; the key hints go after whichever line has room, else on a line of their own.
    """
    key = "class:bottom-toolbar.key"
    device_part = _fit(device, 24)
    room = WIDTH - len(" model ") - 2 - len(" device ") - len(device_part)
    first: Fragments = [(key, " model "), ("", _fit(model, room, keep_end=True) + "  "),
                        (key, " device "), ("", device_part)]
    second: Fragments = [(key, " defaults "),
                         ("", _fit(describe_defaults(defaults), WIDTH - len(" defaults ")))]
    lines = [first, second]
    for line in (second, first):
        if _width(line) + 2 + len(HINTS) <= WIDTH:
            line.append(("", "  " + HINTS))
            return lines
    return [*lines, [("", " " + HINTS)]]


def make_toolbar(source: ToolbarSource) -> Callable[[], Fragments]:
    """A bottom_toolbar callable for PromptSession; it is redrawn with the prompt."""

    def toolbar() -> Fragments:
        model, device, defaults = source.toolbar_state()
        fragments: Fragments = []
        for number, line in enumerate(toolbar_lines(model, device, defaults)):
            if number:
                fragments.append(("", "\n"))
            fragments.extend(line)
        return fragments

    return toolbar
