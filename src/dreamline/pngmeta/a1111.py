"""AUTOMATIC1111's ``parameters`` text: writing it, and taking it apart (``parse_a1111``).

Writing: prompt, ``Negative prompt:``, then one ``name: value`` settings line, with the prompt
escaped so A1111's parser reads the same words, and ``Schedule type`` so A1111 1.9+ reads the
schedule that ran.  Emphasis the user typed (compel's ``(x)1.3``, ``word++``, ``word-``, A1111's
``(x:1.2)``, ``((x))``) is written in A1111's syntax, ``(x:1.3)``, with the weight each word got
here.  compel's ``.blend()``/``.and()``/``.swap()`` have no A1111 form: their prompts are written
one after another, and a ``Prompt note`` field says so (the exact prompt is in the ``Dream``
chunk).  Turning another tool's text into a dreamline Request (its prompt syntax,
samplers, what cannot be replayed) is ``dreamline.pngmeta.readers.a1111``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from dreamline import samplers as sampler_table
from dreamline.lora_tags import lora_tag
from dreamline.pngmeta.fields import number_text, ran, request_and_info
from dreamline.prompt_syntax import weighted_runs
from dreamline.prompts import split_prompt
from dreamline.request import Request

# A1111's own field pattern (modules/generation_parameters_copypaste.py): name: value, where a
# value holding ',' ':' or a newline is JSON-quoted.
_A1111_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_AND = re.compile(r"\s+AND\s+")
_A1111_WEIGHT = re.compile(r"^(?P<text>.*?)\s*:\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$",
                           re.DOTALL)


# ---- writing ----------------------------------------------------------------------------------

def _a1111_value(text: str) -> str:
    """A1111's quote(): JSON-quote a value that holds ',', ':' or a newline."""
    if "," in text or ":" in text or "\n" in text or '"' in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def a1111_sampler(sampler: str, schedule: str) -> str:
    """A1111's name for one of our samplers: 'Euler a', 'LMS Karras', ..."""
    return sampler_table.a1111_name(sampler, schedule)


# The opt-in accelerators: A1111's own name for token merging, ours for DeepCache.
TOME_FIELD = "Token merging ratio"
DEEPCACHE_FIELD = "DeepCache"

# A1111 1.9+'s "Schedule type" labels (modules/sd_schedulers.py) for our schedules: "Uniform" is
# the model's own discretisation; without the field A1111 takes the sampler's default, which is
# Karras for DPM2 and DPM2 a.
SCHEDULE_TYPES: dict[str, str] = {"model": "Uniform", "karras": "Karras",
                                  "exponential": "Exponential"}

# A1111's attention syntax: these characters mean emphasis unless escaped with a backslash.
_A1111_SPECIAL = re.compile(r"([\\()\[\]])")
_LITERAL_AND = re.compile(r"\bAND\b")
# What A1111 reads as a sub-prompt's trailing weight (its re_weight, composable diffusion).
_ENDS_IN_WEIGHT = re.compile(r":\s*[-+]?(?:\d+\.?|\d*\.\d+)\s*$")


def a1111_text(text: str) -> str:
    """Literal ``text`` written so that A1111's prompt parser reads the same words.

    ``( ) [ ] \\`` are backslash-escaped (they are emphasis there), a literal ``AND`` becomes
    ``and`` (A1111 splits prompts on ``AND``; CLIP lower-cases every prompt, so the tokens are
    the same).  A trailing ``:number`` (``16:9``) is handled by ``a1111_part``.
    """
    return _LITERAL_AND.sub("and", _A1111_SPECIAL.sub(r"\\\1", text))


_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"')
BLEND_NOTE = "compel .blend()/.and()/.swap() written as its prompts one after another"


def a1111_emphasis(text: str, notes: list[str]) -> str:
    """``text`` in dreamline's syntax written in A1111's: each run of weight w != 1 as
    ``(text:w)``, literal text escaped (``a1111_text``); compel's methods as their prompts
    one after another, with BLEND_NOTE added to ``notes``."""
    runs = weighted_runs(text)
    if runs is None:
        if BLEND_NOTE not in notes:
            notes.append(BLEND_NOTE)
        quoted = _QUOTED.findall(text)
        if not quoted:
            return a1111_text(text)
        return ", ".join(a1111_emphasis(part.replace('\\"', '"'), notes) for part in quoted)
    out: list[str] = []
    for piece, weight in runs:
        literal = a1111_text(piece)
        shown = f"{round(weight, 4):g}"
        if shown == "1" or not piece.strip():
            out.append(literal)
            continue
        lead = literal[:len(literal) - len(literal.lstrip())]
        trail = literal[len(literal.rstrip()):]
        out.append(f"{lead}({literal.strip()}:{shown}){trail}")
    return "".join(out)


def a1111_part(text: str, weight: float | None, notes: list[str] | None = None) -> str:
    """One sub-prompt: its text (emphasis in A1111's syntax, see ``a1111_emphasis``), then
    `` :weight`` when weighted or when the text itself ends like a weight (A1111 would read
    ``16:9`` as weight 9, so it gets an explicit ``:1``)."""
    literal = a1111_emphasis(text, notes if notes is not None else [])
    if weight is None and _ENDS_IN_WEIGHT.search(literal):
        weight = 1.0
    return literal if weight is None else f"{literal} :{number_text(weight)}"


def a1111_parameters(request: Request | Any, run_info: Mapping[str, Any] | Any | None = None,
                     model_name: str | None = None, model_hash: str | None = None) -> str:
    """AUTOMATIC1111's ``parameters`` text: prompt, ``Negative prompt:``, then one settings line.

    Several sub-prompts are written in A1111's ``text :weight AND ...`` syntax; literal text is
    escaped so A1111 reads the same prompt (see ``a1111_text``).  ``Schedule type`` is written
    for samplers that walk sigmas.  A1111 has one variation seed, so ``Variation seed`` is
    written only when there is exactly one.  ``--tome`` is A1111's ``Token merging ratio``,
    ``--deepcache`` our own ``DeepCache`` field.  Takes the same arguments as
    ``pngmeta.invokeai.sd_metadata``.
    """
    request, info = request_and_info(request, run_info)
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    notes: list[str] = []
    if len(parts.positive) == 1 and parts.positive[0][1] == 1.0:
        positive = a1111_part(parts.positive[0][0], None, notes)
    else:
        positive = " AND ".join(a1111_part(text, weight, notes)
                                for text, weight in parts.positive)
    # A1111 knows LoRAs only as prompt tags: --lora ones are written as tags too.
    positive = " ".join([positive, *(lora_tag(name, weight) for name, weight in request.loras)])
    lines = [positive.strip()]
    if parts.negative:
        # the negative is never AND-split or weighted
        lines.append(f"Negative prompt: {a1111_emphasis(parts.negative, notes)}")
    width = ran(info, "width", request.width)
    height = ran(info, "height", request.height)
    name = model_name if model_name is not None else info.get("model_name")
    digest = model_hash if model_hash is not None else info.get("model_hash")
    sampler = ran(info, "sampler", request.sampler)
    schedule = ran(info, "schedule", request.sigma_schedule)
    uses_sigmas = sampler in sampler_table.BY_NAME and sampler_table.spec(sampler).uses_sigmas
    settings: list[tuple[str, Any]] = [
        ("Steps", request.steps),
        ("Sampler", a1111_sampler(sampler, schedule)),
        ("Schedule type", SCHEDULE_TYPES.get(schedule, schedule.title()) if uses_sigmas
         else None),
        ("CFG scale", number_text(request.cfg_scale)),
        ("Seed", request.seed),
        ("Size", f"{width}x{height}" if width is not None and height is not None else None),
        ("Model hash", digest),
        ("Model", name),
    ]
    if request.is_img2img:
        settings.append(("Denoising strength",
                         number_text(ran(info, "strength", request.strength))))
    if len(request.with_variations) == 1:
        seed, weight = request.with_variations[0]
        settings += [("Variation seed", seed), ("Variation seed strength", number_text(weight))]
    if request.seamless:
        settings.append(("Tiling", "True"))
    if request.tome != 0:  # A1111's own field (its token merging is tomesd too)
        settings.append((TOME_FIELD, number_text(request.tome)))
    if request.deepcache != 1:  # A1111 has none: our own field
        settings.append((DEEPCACHE_FIELD, request.deepcache))
    if info.get("prediction_type") == "v_prediction":
        settings.append(("Prediction type", "v_prediction"))
    embeddings = info.get("embeddings") or ()
    if embeddings:  # textual-inversion words the prompt used: A1111's "TI hashes"
        settings.append(("TI hashes", ", ".join(f"{name}: {digest}"
                                                for name, digest in embeddings)))
    if info.get("vae_name"):
        settings += [("VAE hash", info.get("vae_hash")), ("VAE", info["vae_name"])]
    loras = info.get("loras") or ()
    if loras:
        settings.append(("Lora hashes", ", ".join(f"{name}: {digest}"
                                                  for name, _weight, digest in loras)))
    if notes:
        settings.append(("Prompt note", "; ".join(notes)))
    lines.append(", ".join(f"{key}: {_a1111_value(str(value))}"
                           for key, value in settings if value is not None))
    return "\n".join(lines)


def grid_parameters(first: Any) -> str:
    """A grid's ``parameters``: A1111 gives a grid the infotext of its first image; ``first``
    is that image's GeneratedImage (or ``(request, run_info)`` as for ``a1111_parameters``)."""
    if isinstance(first, tuple):
        return a1111_parameters(*first)
    return a1111_parameters(first)


# ---- reading ----------------------------------------------------------------------------------

class A1111Parameters(NamedTuple):
    """A1111's ``parameters`` text taken apart: prompt, negative prompt, settings by name."""

    prompt: str
    negative: str
    fields: dict[str, str]


def parse_a1111(text: str) -> A1111Parameters:
    """Split A1111's text the way A1111 does: the last line holds the settings (when it has at
    least three ``name: value`` pairs), lines from ``Negative prompt:`` on the negative."""
    *lines, last = text.strip().split("\n")
    if len(_A1111_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    fields: dict[str, str] = {}
    for key, value in _A1111_FIELD.findall(last):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        fields[key.strip()] = str(value)
    return A1111Parameters(" ".join(prompt).strip(), " ".join(negative).strip(), fields)
