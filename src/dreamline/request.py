"""The frozen, validated description of one command: what to generate, never how.

A Request holds only plain Python values (no torch), so the REPL, the formatter and the tests can
build, compare and print it freely.  ``validate()`` checks the whole request once, up front, and
raises a RequestError that quotes the bad value and the allowed range; nothing is ever clamped.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal
from typing import Any

from dreamline import samplers as sampler_table
from dreamline.errors import DreamlineError
from dreamline.lora_tags import LoraTagError, prompt_loras

SAMPLERS: tuple[str, ...] = sampler_table.NAMES
SCHEDULES: tuple[str, ...] = sampler_table.SCHEDULES  # "model", "karras", "exponential"
SEED_MAX = 2**32 - 1
MAX_STEPS = 1000
MAX_SIDE = 8192
CFG_SCALE_RANGE: tuple[float, float] = (0.0, 100.0)  # -C/--cfg_scale, and a model's default -C
CFG_SCALE_EXPECTED = f"a value in [{CFG_SCALE_RANGE[0]:g}, {CFG_SCALE_RANGE[1]:g}]"
TOME_MAX = 0.75  # tomesd's most: 1 - 1/(2*2) tokens merged with its 2x2 strides
# The least --tome that merges something worth it: tomesd merges int(ratio * tokens) tokens, so
# 1e-30 merged none, and below 1% even SD 1.x at 512x512 (4096 tokens) merges under 41.
TOME_MIN = 0.01
# The least -v that makes a visible variation (A1111's step too): 1e-30 gave the seed's image.
VARIATION_MIN = 0.01
DEEPCACHE_EXPECTED = f"a whole number from 1 (off) to {MAX_STEPS}"
TOME_EXPECTED = f"0 (off), or a merge ratio from {TOME_MIN:g} to {TOME_MAX:g}"
VARIATION_EXPECTED = f"0 (off), or a value from {VARIATION_MIN:g} to 1"

# Names of the C0 controls, DEL and the C1 controls, for messages such as "U+001B (ESC)".
_C0 = ("NUL SOH STX ETX EOT ENQ ACK BEL BS TAB LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN "
       "ETB CAN EM SUB ESC FS GS RS US").split()
_C1 = ("PAD HOP BPH NBH IND NEL SSA ESA HTS HTJ VTS PLD PLU RI SS2 SS3 DCS PU1 PU2 STS CCH MW "
       "SPA EPA SOS SGCI SCI CSI ST OSC PM APC").split()


class RequestError(DreamlineError, ValueError):
    """A user's mistake in a request: one line naming the bad value and what was expected."""


@dataclass(frozen=True)
class Request:
    """One command's settings.  ``None`` means "not given": the generator picks the default."""

    prompt: str = ""
    steps: int = 50
    seed: int | None = None
    iterations: int = 1
    width: int | None = None
    height: int | None = None
    cfg_scale: float = 7.5
    sampler: str = "k_lms"
    karras: bool = False  # the short form of schedule="karras"
    schedule: str = "model"  # the sigma schedule type: one of SCHEDULES
    init_img: str | None = None
    strength: float = 0.75
    fit: bool = False
    init_mask: str | None = None
    invert_mask: bool = False
    variation_amount: float = 0.0
    with_variations: tuple[tuple[int, float], ...] = ()
    grid: bool = False
    outdir: str | None = None
    skip_normalize: bool = False
    log_tokenization: bool = False
    save_intermediates: int | None = None
    decode_intermediates: bool = False  # full VAE decodes instead of previews
    seamless: bool = False
    # --lora name:weight pairs (files in the loras/ folder, or paths); the prompt's own
    # <lora:name:weight> tags stay in ``prompt`` and are added to these (see ``all_loras``).
    loras: tuple[tuple[str, float], ...] = ()
    # --dry_run: print the estimate and the command only; nothing is generated or written.
    # Not part of the image: format_command and the metadata never write it.
    dry_run: bool = False
    # Opt-in accelerators that change pixels (core/accelerators.py): the full UNet every
    # ``deepcache`` calls (1: every call, plain); ToMe's token merge ratio (0: off).
    deepcache: int = 1
    tome: float = 0.0

    @property
    def all_loras(self) -> tuple[tuple[str, float], ...]:
        """Every LoRA of this line: the prompt's tags, then --lora's (validated requests only)."""
        return prompt_loras(self.prompt) + self.loras

    @property
    def is_img2img(self) -> bool:
        return self.init_img is not None

    @property
    def sigma_schedule(self) -> str:
        """The schedule type that runs: "karras" when --karras is on, else ``schedule``."""
        return "karras" if self.karras else self.schedule

    def with_changes(self, **changes: Any) -> Request:
        """A validated copy with some fields replaced."""
        return validate(replace(self, **changes))


# Zero-width (non-)joiners are formatting characters that emoji and some scripts need.
_JOINERS = frozenset("\u200c\u200d")


def control_character(text: str) -> str | None:
    """The first control character (C0 including TAB, DEL, or C1) or invisible formatting
    character (Unicode category Cf: bidirectional overrides such as U+202E, zero-width
    characters, a byte-order mark) in ``text``, described as 'U+001B (ESC) at column 7'
    (columns count from 1); None when there is none.  Either kind would be stored unseen in a
    PNG's command, or turn the terminal's text around when echoed."""
    for index, char in enumerate(text):
        code = ord(char)
        if code < 0x20:
            name = _C0[code]
        elif code == 0x7F:
            name = "DEL"
        elif 0x80 <= code <= 0x9F:
            name = _C1[code - 0x80]
        elif unicodedata.category(char) == "Cf" and char not in _JOINERS:
            name = unicodedata.name(char, "formatting character").lower()
        else:
            continue
        return f"U+{code:04X} ({name}) at column {index + 1}"
    return None


def _text(name: str, value: Any, *, path: bool,
          expected: str = "a file or directory path") -> None:
    """Text that a command line can hold: no control characters; a path is not empty or blank
    (``Path("")`` would be the current directory)."""
    if not isinstance(value, str):
        raise RequestError(f"{name}: {value!r} is not text")
    if path and not value.strip():
        shown = f"{value!r} is a blank path" if value else "an empty path"
        raise RequestError(f"{name}: {shown}; expected {expected}")
    found = control_character(value)
    if found is not None:
        raise RequestError(f"{name}: {value!r} has a control character, {found}; expected "
                           "printable text")


def _number(name: str, value: Any, kind: type) -> None:
    is_bool = isinstance(value, bool)
    if kind is int and (is_bool or not isinstance(value, int)):
        raise RequestError(f"{name}: {value!r} is not a whole number")
    if kind is float:
        if is_bool or not isinstance(value, (int, float)):
            raise RequestError(f"{name}: {value!r} is not a number")
        if not math.isfinite(value):
            raise RequestError(f"{name}: {value!r} is not a finite number")


def _in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
              expected: str | None = None) -> None:
    below = value <= low if low_open else value < low
    if below or value > high:
        bracket = "(" if low_open else "["
        shown = expected or f"a value in {bracket}{low:g}, {high:g}]"
        raise RequestError(f"{name}: {value!r} is out of range; expected {shown}")


def _off_or_range(name: str, value: float, low: float, high: float, expected: str) -> None:
    """0 (off), or a value in [low, high]: a value between 0 and ``low`` would be on but do
    nothing (``--tome 1e-30`` merged no token)."""
    if value != 0:
        _in_range(name, value, low, high, expected=expected)


def least_strength(steps: int) -> float:
    """The smallest strength (4 significant digits, rounded up) that runs a step at ``steps``.

    Rounded *up*, so the value is itself accepted: at -s 3 it is 0.3334, not 0.3333.
    """
    exact = Decimal(1) / Decimal(steps)
    quantum = Decimal(1).scaleb(exact.adjusted() - 3)
    return float(exact.quantize(quantum, rounding=ROUND_CEILING))


def steps_to_run(strength: float, steps: int) -> int:
    """img2img's t_enc, the sampling steps run: floor(strength * steps) after removing float
    noise (0.29 * 100 -> 29).  Raises RequestError when that is 0: img2img must run a step."""
    t_enc = math.floor(round(strength * steps, 6))
    if t_enc < 1:
        raise RequestError(
            f"-f/--strength {strength:g} with -s/--steps {steps} runs no sampling steps "
            f"(floor({strength:g} * {steps}) = 0); expected strength * steps >= 1: "
            f"-f {least_strength(steps):g} or more")
    return t_enc


def _check_schedule(r: Request) -> None:
    """The sampler takes the schedule type; --karras agrees with --schedule; -s fits LCM."""
    if not isinstance(r.karras, bool):
        raise RequestError(f"--karras: {r.karras!r} is not on/off; expected a flag")
    if r.schedule not in SCHEDULES:
        raise RequestError(f"--schedule: {r.schedule!r} is not a schedule type; expected one of "
                           f"{', '.join(SCHEDULES)}")
    if r.karras and r.schedule not in ("model", "karras"):
        raise RequestError(f"--karras and --schedule {r.schedule} disagree; expected one "
                           "schedule type (--karras is short for --schedule karras)")
    row = sampler_table.spec(r.sampler)
    schedule = r.sigma_schedule
    if schedule not in row.schedules:
        switch = "--karras" if r.karras else f"--schedule {schedule}"
        kind = "Karras" if schedule == "karras" else schedule
        raise RequestError(f"{switch}: the {kind} sigma schedule is for the samplers that walk "
                           f"sigmas, not {r.sampler!r}; expected one of "
                           f"{', '.join(sampler_table.SCHEDULED_NAMES)}")
    if row.max_steps is not None and r.steps > row.max_steps:
        raise RequestError(f"-s/--steps: {r.steps} is too many for the {r.sampler} sampler; "
                           f"expected at most {row.max_steps}")


def validate(request: Request) -> Request:
    """Check every field of ``request``; return it unchanged or raise RequestError."""
    r = request
    _text("prompt", r.prompt, path=False)
    for name, path, kind in (("-I/--init_img", r.init_img, "an image path"),
                             ("-M/--init_mask", r.init_mask, "an image path"),
                             ("-o/--outdir", r.outdir, "a directory path")):
        if path is not None:
            _text(name, path, path=True, expected=kind)
    _number("-s/--steps", r.steps, int)
    _in_range("-s/--steps", r.steps, 1, MAX_STEPS, expected=f"a whole number from 1 to {MAX_STEPS}")
    if r.seed is not None:
        _number("-S/--seed", r.seed, int)
        _in_range("-S/--seed", r.seed, 0, SEED_MAX, expected=f"a seed from 0 to {SEED_MAX}")
    _number("-n/--iterations", r.iterations, int)
    _in_range("-n/--iterations", r.iterations, 1, 1000, expected="a whole number from 1 to 1000")
    for name, side in (("-W/--width", r.width), ("-H/--height", r.height)):
        if side is not None:
            _number(name, side, int)
            _in_range(name, side, 8, MAX_SIDE, expected=f"a size in pixels from 8 to {MAX_SIDE}")
    _number("-C/--cfg_scale", r.cfg_scale, float)
    _in_range("-C/--cfg_scale", r.cfg_scale, *CFG_SCALE_RANGE, expected=CFG_SCALE_EXPECTED)
    if r.sampler not in SAMPLERS:
        raise RequestError(f"-A/--sampler: {r.sampler!r} is not a sampler; expected one of "
                           f"{', '.join(SAMPLERS)}")
    _check_schedule(r)
    _number("-f/--strength", r.strength, float)
    _in_range("-f/--strength", r.strength, 0.0, 1.0, low_open=True)
    _number("-v/--variation_amount", r.variation_amount, float)
    _off_or_range("-v/--variation_amount", r.variation_amount, VARIATION_MIN, 1.0,
                  VARIATION_EXPECTED)
    for seed, weight in r.with_variations:
        _number("-V/--with_variations seed", seed, int)
        _in_range("-V/--with_variations seed", seed, 0, SEED_MAX,
                  expected=f"a seed from 0 to {SEED_MAX}")
        _number("-V/--with_variations weight", weight, float)
        _in_range("-V/--with_variations weight", weight, 0.0, 1.0)
    if r.with_variations and r.seed is None:
        raise RequestError("-V/--with_variations needs -S/--seed: the variations blend into "
                           "that seed's noise")
    if r.init_img is not None:
        steps_to_run(r.strength, r.steps)  # img2img must run at least one sampling step
    if r.init_mask is not None and r.init_img is None:
        raise RequestError(f"-M/--init_mask: {r.init_mask!r} needs an init image (-I)")
    if r.save_intermediates is not None:
        _number("--save_intermediates", r.save_intermediates, int)
        _in_range("--save_intermediates", r.save_intermediates, 1, MAX_STEPS,
                  expected=f"a step interval from 1 to {MAX_STEPS}")
    if not isinstance(r.decode_intermediates, bool):
        raise RequestError(f"--decode_intermediates: {r.decode_intermediates!r} is not on/off; "
                           "expected a flag")
    if r.decode_intermediates and r.save_intermediates is None:
        raise RequestError("--decode_intermediates: there are no intermediates to decode; "
                           "expected --save_intermediates N as well")
    if not isinstance(r.dry_run, bool):
        raise RequestError(f"--dry_run: {r.dry_run!r} is not on/off; expected a flag")
    _check_loras(r)
    _number("--deepcache", r.deepcache, int)
    _in_range("--deepcache", r.deepcache, 1, MAX_STEPS, expected=DEEPCACHE_EXPECTED)
    _number("--tome", r.tome, float)
    _off_or_range("--tome", r.tome, TOME_MIN, TOME_MAX, TOME_EXPECTED)
    return r


def _check_loras(r: Request) -> None:
    """--lora pairs and the prompt's <lora:name:weight> tags: a name and a finite weight."""
    try:
        prompt_loras(r.prompt)
    except LoraTagError as error:
        raise RequestError(f"prompt: {error}") from None
    if not isinstance(r.loras, tuple):
        raise RequestError(f"--lora: {r.loras!r} is not a list of name:weight pairs")
    for pair in r.loras:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise RequestError(f"--lora: {pair!r} is not a name:weight pair")
        name, weight = pair
        if not name.strip() or any(char in name for char in ",<>"):
            raise RequestError(f"--lora: {name!r} is not a LoRA name; expected a file name or "
                               f"path without ',', '<' or '>'")
        _text("--lora", name, path=True)
        _number("--lora weight", weight, float)
