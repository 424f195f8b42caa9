"""Grouped help for the prompt line, generated from the switch table so it cannot drift."""

from __future__ import annotations

import textwrap

from dreamline.switches import SWITCHES, UNSUPPORTED, Group, Switch

_NAME_WIDTH = 30
_WIDTH = 100

_USAGE = """\
usage: <prompt words> [switches]
  The prompt is every word before the first switch; quote it if it has words starting with '-'.
  Prompt syntax: 'text:weight' sub-prompts (normalised to sum 1 unless -x), [words] in square
  brackets form the negative prompt, and \\: is a literal colon."""


def _names(switch: Switch) -> str:
    metavar = f" {switch.metavar}" if switch.kind.takes_value else ""
    return ", ".join(name + metavar for name in (*switch.shorts, *switch.aliases, switch.long))


def _describe(switch: Switch) -> str:
    text = switch.help
    if switch.kind.takes_value:
        text += f"; {switch.expected}"
    default = switch.default
    if switch.kind.takes_value and default is not None and default != ():
        text += f" (default {default})"
    return text


def _entry(switch: Switch) -> list[str]:
    names = _names(switch)
    body = textwrap.wrap(_describe(switch), _WIDTH - _NAME_WIDTH - 4) or [""]
    if len(names) > _NAME_WIDTH:
        first = [f"  {names}"]
        rest = body
    else:
        first = [f"  {names:<{_NAME_WIDTH}}  {body[0]}"]
        rest = body[1:]
    return first + [" " * (_NAME_WIDTH + 4) + line for line in rest]


def format_help() -> str:
    """The help shown for '-h' at the prompt: usage, then the switches by group."""
    lines = [_USAGE]
    for group in Group:
        members = [s for s in SWITCHES if s.group is group]
        if not members:
            continue
        lines += ["", f"{group.value}:"]
        for switch in members:
            lines += _entry(switch)
    unsupported = ", ".join(entry.names[0] for entry in UNSUPPORTED)
    lines += ["", *textwrap.wrap(f"Known but not supported (the line is skipped): {unsupported}",
                                 _WIDTH)]
    return "\n".join(lines)
