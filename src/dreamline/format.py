"""Write a Request as the normalised command line that reproduces it (dream-cli.md section 6).

The order is the reference's: prompt, -s -S -W -H -C, then the img2img part (or just -A), then
the rest.  Everything that differs from Request's defaults is written, so that
``parse_line(format_command(r), Request()).request == r``: the printed command, pasted back at
the prompt, is the same request.
"""

from __future__ import annotations

from typing import Any

from dreamline.lora_tags import format_lora_list
from dreamline.request import Request
from dreamline.switches import BY_FIELD, Kind
from dreamline.words import quote, quote_path

__all__ = ["format_command", "format_number", "quote", "quote_path"]

_DEFAULTS = Request()


def format_number(value: int | float) -> str:
    """Shortest text that reads back exactly: repr ('0.75', '1e-05'), never '0.7500'."""
    return repr(value)


def _short(field: str) -> str:
    """The name the command uses for a field: the first short form, else the long name."""
    switch = BY_FIELD[field]
    return switch.shorts[0] if switch.shorts else switch.long


def _value_text(field: str, value: Any) -> str:
    kind = BY_FIELD[field].kind
    if kind is Kind.VARIATIONS:
        return ",".join(f"{seed}:{format_number(float(weight))}" for seed, weight in value)
    if kind is Kind.LORAS:
        return quote_path(format_lora_list(value))
    if kind is Kind.PATH:
        return quote_path(value)
    if kind is Kind.FLOAT:  # an int in a float field (cfg_scale=5) reads back as 5.0
        return format_number(float(value))
    if kind is Kind.INT:
        return format_number(value)
    return str(value)


def _switch(field: str, value: Any) -> str:
    if BY_FIELD[field].kind is Kind.FLAG:
        return _short(field) if field != "fit" else "--fit"
    return f"{_short(field)} {_value_text(field, value)}"


# Written after the fixed part when they differ from Request's defaults: first those that change
# the image, then those that only change what is done with it.
_TRAILING = ("loras", "karras", "schedule", "invert_mask", "skip_normalize", "seamless",
             "deepcache", "tome",
             "with_variations",
             "variation_amount", "iterations", "grid", "log_tokenization", "save_intermediates",
             "decode_intermediates", "outdir")


def format_command(request: Request) -> str:
    """The normalised, re-runnable command for ``request``.

    Raises ValueError when the seed is not concrete (None): a command without its seed cannot
    reproduce an image, so calling this before the seed is chosen is a programming error.
    """
    r = request
    if r.seed is None:
        raise ValueError("format_command needs a concrete seed; choose it before formatting")
    words = [quote(r.prompt), _switch("steps", r.steps), _switch("seed", r.seed)]
    if r.width is not None:
        words.append(_switch("width", r.width))
    if r.height is not None:
        words.append(_switch("height", r.height))
    words.append(_switch("cfg_scale", r.cfg_scale))
    written = {"prompt", "steps", "seed", "width", "height", "cfg_scale", "sampler"}
    if r.is_img2img:
        words += [_switch("init_img", r.init_img), _switch("sampler", r.sampler)]
        if r.fit:
            words.append(_switch("fit", True))
        if r.init_mask is not None:
            words.append(_switch("init_mask", r.init_mask))
        words.append(_switch("strength", r.strength))
        written |= {"init_img", "fit", "init_mask", "strength"}
    else:
        words.append(_switch("sampler", r.sampler))
    # Without an init image these change nothing, but are kept so the command is the request.
    leftovers = [name for name in ("fit", "strength", "init_mask") if name not in written]
    for name in (*_TRAILING, *leftovers):
        value = getattr(r, name)
        if value != getattr(_DEFAULTS, name):
            words.append(_switch(name, value))
    return " ".join(words)
