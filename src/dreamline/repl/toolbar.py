"""The bottom toolbar: which model, on which device, and the defaults a bare prompt gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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
    return " ".join(parts)


def make_toolbar(source: ToolbarSource) -> Callable[[], list[tuple[str, str]]]:
    """A bottom_toolbar callable for PromptSession; it is redrawn with the prompt."""

    def toolbar() -> list[tuple[str, str]]:
        model, device, defaults = source.toolbar_state()
        return [
            ("class:bottom-toolbar.key", " model "), ("", f"{model}  "),
            ("class:bottom-toolbar.key", " device "), ("", f"{device}  "),
            ("class:bottom-toolbar.key", " defaults "), ("", describe_defaults(defaults)),
            ("", "   [Tab] complete  [!help] commands  [Ctrl-D] quit"),
        ]

    return toolbar
