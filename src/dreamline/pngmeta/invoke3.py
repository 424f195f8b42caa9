"""InvokeAI 3.x and later: the ``invokeai_metadata`` JSON that its "Recall parameters" and image
import read, so today's InvokeAI reads our files.

Keys as InvokeAI writes them (invokeai/app/invocations/metadata.py, CoreMetadata):
``generation_mode``, ``positive_prompt``, ``negative_prompt``, ``width``, ``height``, ``seed``,
``cfg_scale``, ``cfg_rescale_multiplier``, ``steps``, ``scheduler``, ``seamless_x/y``, ``model``
(name, hash, base, type), and for img2img ``strength`` and ``init_image``.  Prompts are in
InvokeAI's compel syntax: several weighted sub-prompts become ``("a", "b").blend(w1, w2)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamline import __version__
from dreamline import samplers as sampler_table
from dreamline.pngmeta.fields import number_text
from dreamline.prompts import split_negative

INVOKEAI_METADATA_KEY = "invokeai_metadata"

# ComfyUI-dialect names (samplers.py's ``comfy`` column) -> InvokeAI's scheduler names
# (invokeai/backend/stable_diffusion/schedulers/schedulers.py); Karras adds "_k" where it exists.
SCHEDULERS: dict[str, str] = {
    "ddim": "ddim", "plms": "pndm", "lms": "lms", "euler": "euler",
    "euler_ancestral": "euler_a", "heun": "heun", "dpm_2": "kdpm_2",
    "dpm_2_ancestral": "kdpm_2_a", "dpmpp_2m": "dpmpp_2m", "dpmpp_2m_sde": "dpmpp_2m_sde",
    "dpmpp_sde": "dpmpp_sde", "dpmpp_2s_ancestral": "dpmpp_2s", "dpmpp_3m_sde": "dpmpp_3m",
    "uni_pc": "unipc", "deis": "deis", "lcm": "lcm", "ddpm": "ddpm", "tcd": "tcd",
}
KARRAS: frozenset[str] = frozenset({
    "lms_k", "euler_k", "heun_k", "kdpm_2_k", "kdpm_2_a_k", "dpmpp_2m_k", "dpmpp_2m_sde_k",
    "dpmpp_sde_k", "dpmpp_2s_k", "dpmpp_3m_k", "unipc_k", "deis_k",
})


def invoke_scheduler(sampler: str, schedule: str) -> str | None:
    """InvokeAI's scheduler name for our sampler and schedule; None when it has none."""
    if sampler not in sampler_table.BY_NAME:
        return None
    base = SCHEDULERS.get(sampler_table.spec(sampler).comfy)
    if base is None:
        return None
    if schedule == "karras":
        return f"{base}_k" if f"{base}_k" in KARRAS else None
    return base


def _compel_text(text: str) -> str:
    """Literal text for compel: its grouping and weighting characters escaped."""
    for char in "\\()+-\"":
        text = text.replace(char, "\\" + char)
    return text


def compel_prompt(parts: tuple[tuple[str, float], ...]) -> str:
    """One sub-prompt as literal text, several as compel's ``.blend``."""
    if len(parts) == 1 and parts[0][1] == 1.0:
        return _compel_text(parts[0][0])
    texts = ", ".join('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
                      for text, _ in parts)
    weights = ", ".join(number_text(weight) for _, weight in parts)
    return f"({texts}).blend({weights})"


def _v2_parts(entries: Any) -> tuple[tuple[tuple[str, float], ...], str]:
    """(sub-prompts, negative) from sd-metadata's 2.x-style ``prompt`` list (``\\:`` escapes,
    negative words in ``[...]``)."""
    parts: list[tuple[str, float]] = []
    negatives: list[str] = []
    for entry in entries if isinstance(entries, list) else [{"prompt": str(entries)}]:
        text = str(entry.get("prompt", ""))
        positive, negative = split_negative(text)
        if negative:
            negatives.append(negative)
        parts.append((" ".join(positive.replace("\\:", ":").split()),
                      float(entry.get("weight", 1.0))))
    return tuple(parts), " ".join(negatives)


def from_sd_metadata(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """``invokeai_metadata`` for the image our ``sd-metadata`` dict describes (a grid: its first
    image); None when it describes none."""
    images = metadata.get("images")
    image = images[0] if isinstance(images, list) and images else metadata.get("image")
    if not isinstance(image, Mapping):
        return None
    parts, negative = _v2_parts(image.get("prompt", ""))
    img2img = image.get("type") == "img2img"
    data: dict[str, Any] = {
        "generation_mode": "img2img" if img2img else "txt2img",
        "positive_prompt": compel_prompt(parts),
        "negative_prompt": _compel_text(negative),
        "width": image.get("width"),
        "height": image.get("height"),
        "seed": image.get("seed"),
        "cfg_scale": image.get("cfg_scale"),
        "cfg_rescale_multiplier": 0.0,
        "steps": image.get("steps"),
        "scheduler": invoke_scheduler(str(image.get("sampler")),
                                      str(image.get("schedule", "model"))),
        "seamless_x": bool(image.get("seamless")),
        "seamless_y": bool(image.get("seamless")),
        "model": {"name": metadata.get("model_weights"), "hash": metadata.get("model_hash"),
                  "base": "sd-1", "type": "main"},
        "app_version": f"dreamline {__version__}",
    }
    if img2img:
        data["strength"] = image.get("strength")
        data["init_image"] = image.get("init_img")
    if image.get("prediction_type") is not None:
        data["prediction_type"] = image["prediction_type"]
    for key in ("deepcache", "tome"):  # dreamline's accelerators (InvokeAI keeps extra keys)
        if image.get(key) is not None:
            data[key] = image[key]
    return data
