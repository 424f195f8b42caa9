"""The bottom toolbar: which model, on which device, and the defaults a bare prompt gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dreamline.request import Request


class ToolbarSource(Protocol):
    """What the toolbar reads each time it is drawn (the Session provides it)."""

    def toolbar_state(self) -> tuple[str, str, Request]: ...  # (model, device, defaults)


def describe_defaults(defaults: Request) -> str:
    """The per-line defaults as switches, e.g. '-s 50 -W 512 -H 512 -C 7.5 -A k_lms -f 0.75'."""
    parts = [f"-s {defaults.steps}"]
    if defaults.width is not None:
        parts.append(f"-W {defaults.width}")
    if defaults.height is not None:
        parts.append(f"-H {defaults.height}")
    parts.append(f"-C {defaults.cfg_scale:g}")
    parts.append(f"-A {defaults.sampler}")
    parts.append(f"-f {defaults.strength:g}")
    if defaults.grid:
        parts.append("-g")
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
