"""Grouped help for the prompt line, generated from the switch table so it cannot drift.

``-h`` shows one short screen (the common switches and the groups, at most 24 lines);
``-h all`` every switch; ``-h <group>`` one group.  Defaults are the session's own (a launch
option or the model's default -C), not just Request's built-in ones.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection

from dreamline.request import Request, RequestError
from dreamline.switches import HELP_TOPICS, SWITCHES, UNSUPPORTED, Group, Kind, Switch

_NAME_WIDTH = 30
WIDTH = 80  # every line of every help screen fits an 80-column terminal
SHORT_SCREEN_LINES = 24

_USAGE = ("usage: <prompt words> [switches]",
          "The prompt is every word before the first switch; quote it if it has words starting "
          "with '-'.  Prompt syntax: 'text:weight' sub-prompts (normalised to sum 1 unless -x), "
          "[words] in square brackets form the negative prompt (or --negative_prompt TEXT), and "
          "\\: is a literal colon.")

_SHORT_USAGE = ("usage: <prompt words> [switches]     e.g.  a red fox in the snow -s 30 -S 42",
                "Quote the prompt if it has words starting with '-'; [words] form the negative "
                "prompt.")


def _wrap(text: str, indent: int, first: str = "") -> list[str]:
    """``text`` wrapped at WIDTH after ``first``, later lines indented by ``indent`` spaces;
    words joined by a no-break space (U+00A0) stay on one line."""
    lines = textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=" " * indent,
                          break_on_hyphens=False, break_long_words=False) or [first.rstrip()]
    return [line.replace("\N{NO-BREAK SPACE}", " ") for line in lines]


def _usage(paragraphs: tuple[str, ...]) -> list[str]:
    return [paragraphs[0], *[line for text in paragraphs[1:] for line in _wrap(text, 2, "  ")]]


def _names(switch: Switch) -> str:
    metavar = f" {switch.metavar}" if switch.metavar else ""
    return ", ".join(name + metavar for name in (*switch.shorts, *switch.aliases, switch.long))


def _default(switch: Switch, defaults: Request, model_fields: Collection[str]) -> str:
    """' (default 50)', ' (model default 4)' or '' when the switch has no default to show."""
    if switch.field is None or not switch.kind.takes_value:
        return ""
    value = getattr(defaults, switch.field)
    if value is None or value == ():
        return ""
    shown = repr(value) if isinstance(value, float) else str(value)
    shown = shown[:-2] if shown.endswith(".0") else shown  # 4.0 -> 4, as the toolbar shows it
    if switch.field in model_fields:
        return f" (model default {shown})"
    return f" (default {shown})"


def _describe(switch: Switch, defaults: Request, model_fields: Collection[str],
              multiple: int | None = None) -> str:
    text = switch.help
    if multiple is not None and switch.field in ("width", "height"):
        text = text.replace("the model's multiple", f"a multiple of {multiple} (this model's)")
    if switch.kind.takes_value or switch.kind is Kind.HELP:
        text += f"; {switch.expected}"
    return text + _default(switch, defaults, model_fields)


def _entry(switch: Switch, defaults: Request, model_fields: Collection[str],
           multiple: int | None = None) -> list[str]:
    """The switch's names, then its help wrapped under a hanging indent (its own line first
    when the names are too long to share one)."""
    names = _names(switch)
    text = _describe(switch, defaults, model_fields, multiple)
    indent = _NAME_WIDTH + 4
    if len(names) > _NAME_WIDTH:
        return [*_wrap(names, 6, "  "), *_wrap(text, indent, " " * indent)]
    return _wrap(text, indent, f"  {names:<{_NAME_WIDTH}}  ")


def _group(group: Group, defaults: Request, model_fields: Collection[str],
           multiple: int | None = None) -> list[str]:
    lines = [f"{group.value}:"]
    for switch in SWITCHES:
        if switch.group is group:
            lines += _entry(switch, defaults, model_fields, multiple)
    return lines


def _short_screen(defaults: Request, model_fields: Collection[str]) -> list[str]:
    lines = [*_usage(_SHORT_USAGE), "", "Common switches:"]
    common = [switch for switch in SWITCHES if switch.common]
    names = {switch: " ".join(filter(None, ((switch.shorts or (switch.long,))[0],
                                            switch.metavar)))
             for switch in common}
    width = max(len(text) for text in names.values())
    for switch in common:  # a long brief wraps under its own column, never cut
        text = switch.brief + _default(switch, defaults, model_fields)
        lines += _wrap(text, width + 4, f"  {names[switch]:<{width}}  ")
    topics: list[str] = []
    for group in Group:
        count = sum(1 for switch in SWITCHES if switch.group is group)
        unit = "" if topics else (" switch" if count == 1 else " switches")
        topics.append(f"-h {group.topic} ({count}{unit})".replace(" ", "\N{NO-BREAK SPACE}"))
    return [*lines, "", *_wrap("More: -h all shows every switch, -h <group> one group: "
                               + ", ".join(topics), 2)]


def format_help(topic: str = "", defaults: Request | None = None,
                model_fields: Collection[str] = (), size_multiple: int | None = None) -> str:
    """The help shown for '-h [topic]' at the prompt.

    ``topic``: "" for the short screen (at most 24 lines), "all" for every switch, or a group's
    topic word (generation, img2img, variations, prompt, output, other).  ``defaults``: the
    session's current defaults (Request's own when None); ``model_fields``: the Request fields
    whose default comes from the model (e.g. {"cfg_scale"}), shown as "(model default 4)";
    ``size_multiple``: the loaded model's size multiple, named in -W/-H's help (None: unknown).
    Raises RequestError for an unknown topic.  Lines are at most WIDTH (80) characters.
    """
    shown = defaults if defaults is not None else Request()
    topic = topic.strip().lower()  # a keyword: "ALL" is "all"
    if topic == "":
        return "\n".join(_short_screen(shown, model_fields))
    if topic not in HELP_TOPICS:
        raise RequestError(f"-h/--help: {topic!r} is not a help topic; expected "
                           f"{', '.join(HELP_TOPICS)}")
    if topic != "all":
        group = next(group for group in Group if group.topic == topic)
        return "\n".join(_group(group, shown, model_fields, size_multiple))
    lines = _usage(_USAGE)
    for group in Group:
        lines += ["", *_group(group, shown, model_fields, size_multiple)]
    unsupported = ", ".join(entry.names[0] for entry in UNSUPPORTED)
    lines += ["", *_wrap(f"Known but not supported (the line is skipped): {unsupported}", 2)]
    return "\n".join(lines)
