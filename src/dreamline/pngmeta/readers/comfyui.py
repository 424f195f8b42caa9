"""ComfyUI ``prompt`` graphs (the API-format JSON every ComfyUI PNG carries) as a Request.

The graph is traced backwards from the saved image: the decoder, the sampler node (``KSampler``
or ``KSamplerAdvanced``) that made its latent, that node's seed, steps, cfg, sampler and
scheduler, denoise, the positive and negative texts through their text-encode nodes, the size
from the empty latent, and the init image's name when the latent comes from an encoded image.
Later sampler passes on the same latent (hires fix, refiner) are named in a note.  A graph that
cannot be traced this way (custom samplers, latent composites, ...) is a MetadataError saying
where the trace stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dreamline.pngmeta.chunks import MetadataError
from dreamline.pngmeta.readers.common import Collector, Fetched
from dreamline.pngmeta.readers.prompt_syntax import lost_note, translate

SAMPLERS = ("KSampler", "KSamplerAdvanced")
_TEXT_KEYS = ("text", "prompt", "text_g", "string", "value", "positive", "wildcard_text")
_SCALAR_KEYS = ("value", "seed", "noise_seed", "int", "float", "number", "string", "text",
                "sampler_name", "scheduler", "steps", "cfg", "denoise")
_PASS_IMAGE = ("image", "pixels", "images")

Graph = Mapping[str, Mapping[str, Any]]


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


class _Tracer:
    def __init__(self, name: str, graph: Graph) -> None:
        self.name = name
        self.graph = graph

    def fail(self, why: str) -> MetadataError:
        return MetadataError(f"{self.name}: ComfyUI graph cannot be traced: {why}; dreamline "
                             "reads graphs built from KSampler/KSamplerAdvanced, text-encode "
                             "nodes and an empty latent or a loaded image")

    def node(self, link: Any) -> tuple[str, Mapping[str, Any]]:
        key = str(link[0])
        node = self.graph.get(key)
        if not isinstance(node, Mapping):
            raise self.fail(f"node {key} is missing")
        return key, node

    def inputs(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        found = node.get("inputs")
        return found if isinstance(found, Mapping) else {}

    def value(self, value: Any, what: str, depth: int = 0) -> Any:
        """A sampler setting, following links to primitive nodes."""
        if not _is_link(value):
            return value
        if depth > 20:
            raise self.fail(f"{what} goes round in circles")
        _, node = self.node(value)
        inputs = self.inputs(node)
        for key in (what, *_SCALAR_KEYS):
            if key in inputs:
                return self.value(inputs[key], what, depth + 1)
        raise self.fail(f"{what} comes from a {node.get('class_type')} node")

    def text(self, link: Any, which: str, depth: int = 0) -> str:
        """The prompt text behind a conditioning input, through its text-encode node."""
        if not _is_link(link):
            raise self.fail(f"the {which} conditioning is not connected")
        if depth > 20:
            raise self.fail(f"the {which} text goes round in circles")
        _, node = self.node(link)
        inputs = self.inputs(node)
        for key in _TEXT_KEYS:
            found = inputs.get(key)
            if isinstance(found, str):
                return found
            if _is_link(found):
                return self.text(found, which, depth + 1)
        if _is_link(inputs.get("conditioning")):
            return self.text(inputs["conditioning"], which, depth + 1)
        raise self.fail(f"the {which} text comes from a {node.get('class_type')} node")

    def final_sampler(self) -> tuple[str, Mapping[str, Any]]:
        """The sampler node whose latent the saved image decodes."""
        savers = [node for node in self.graph.values() if isinstance(node, Mapping)
                  and ("Save" in str(node.get("class_type")) or
                       "Preview" in str(node.get("class_type")))
                  and _is_link(self.inputs(node).get("images"))]
        for saver in savers:
            link = self.inputs(saver)["images"]
            for _ in range(50):
                key, node = self.node(link)
                if node.get("class_type") in SAMPLERS:
                    return key, node
                inputs = self.inputs(node)
                nxt = inputs.get("samples", next((inputs[k] for k in _PASS_IMAGE
                                                  if _is_link(inputs.get(k))), None))
                if not _is_link(nxt):
                    raise self.fail(f"the image comes from a {node.get('class_type')} node")
                link = nxt
        samplers = [(key, node) for key, node in self.graph.items()
                    if isinstance(node, Mapping) and node.get("class_type") in SAMPLERS]
        if len(samplers) == 1:
            return samplers[0]
        kinds = sorted({str(node.get("class_type")) for node in self.graph.values()
                        if isinstance(node, Mapping) and "ampler" in str(node.get("class_type"))})
        raise self.fail("no KSampler/KSamplerAdvanced node makes the saved image"
                        + (f" (it has {', '.join(kinds)})" if kinds else ""))

    def origin(self, sampler: Mapping[str, Any], collector: Collector
               ) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
        """Walk the latent back to where it starts; returns (first sampler, later passes) and
        sets the size or the init image on ``collector``."""
        passes = [sampler]
        link = self.inputs(sampler).get("latent_image")
        for _ in range(50):
            if not _is_link(link):
                raise self.fail("the sampler's latent_image is not connected")
            _, node = self.node(link)
            kind = str(node.get("class_type"))
            inputs = self.inputs(node)
            if kind in SAMPLERS:
                passes.insert(0, node)
                link = inputs.get("latent_image")
            elif "EmptyLatent" in kind or "Empty Latent" in kind:
                self._size(node, collector)
                return passes[0], passes[1:]
            elif kind.startswith("LoadImage"):
                collector.changes["init_img"] = str(self.value(inputs.get("image"), "image"))
                return passes[0], passes[1:]
            elif "Composite" in kind or "Batch" in kind:
                raise self.fail(f"the latent is combined by a {kind} node")
            else:
                nxt = inputs.get("samples", next((inputs[k] for k in _PASS_IMAGE
                                                  if _is_link(inputs.get(k))), None))
                if nxt is None:
                    raise self.fail(f"the latent comes from a {kind} node")
                if "Upscale" in kind or "Scale" in kind:
                    collector.skip(f"upscaling ({kind})")
                link = nxt
        raise self.fail("the latent chain is too long")

    def _size(self, node: Mapping[str, Any], collector: Collector) -> None:
        inputs = self.inputs(node)
        if "width" in inputs and "height" in inputs:
            collector.size(self.value(inputs["width"], "width"),
                           self.value(inputs["height"], "height"))
        elif isinstance(inputs.get("dimensions"), str):
            width, _, rest = inputs["dimensions"].partition("x")
            collector.size(width.strip(), rest.split()[0] if rest.split() else "")
        batch = inputs.get("batch_size", 1)
        if isinstance(batch, int) and batch > 1:
            collector.note(f"a batch of {batch}: the command makes the first image")


def _features(tracer: _Tracer, collector: Collector) -> None:
    """Name the nodes that change the image in ways dreamline does not run."""
    for node in tracer.graph.values():
        if not isinstance(node, Mapping):
            continue
        kind = str(node.get("class_type"))
        inputs = tracer.inputs(node)
        if kind == "CLIPSetLastLayer" and inputs.get("stop_at_clip_layer", -1) != -1:
            layer = collector.to_number("stop_at_clip_layer", inputs["stop_at_clip_layer"], int)
            collector.skip(f"clip skip {-layer}")
        elif "lora" in kind.lower():
            collector.skip(f"LoRA ({inputs.get('lora_name', kind)})")
        elif "controlnet" in kind.lower():
            collector.skip("ControlNet")
        elif "ipadapter" in kind.lower().replace("-", "").replace("_", ""):
            collector.skip("IP-Adapter")


def comfyui_fetched(name: str, text: str) -> Fetched:
    """The Request a ComfyUI ``prompt`` graph describes, with notes.

    Raises MetadataError naming the file when the JSON is broken or the graph cannot be traced.
    """
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{name}: its ComfyUI prompt chunk is not valid JSON "
                            f"({error.msg})") from None
    if not isinstance(graph, Mapping):
        raise MetadataError(f"{name}: its ComfyUI prompt chunk is not a JSON object")
    tracer = _Tracer(name, graph)
    collector = Collector(name, "ComfyUI")
    _, last = tracer.final_sampler()
    first, later = tracer.origin(last, collector)
    inputs = tracer.inputs(first)
    advanced = first.get("class_type") == "KSamplerAdvanced"
    positive = tracer.text(inputs.get("positive"), "positive")  # the graph first, then values
    negative = tracer.text(inputs.get("negative"), "negative")
    collector.seed(tracer.value(inputs.get("noise_seed" if advanced else "seed"), "seed"))
    collector.number("steps", tracer.value(inputs.get("steps"), "steps"), int)
    collector.number("cfg_scale", tracer.value(inputs.get("cfg"), "cfg"))
    collector.sampler(tracer.value(inputs.get("sampler_name"), "sampler_name"),
                      tracer.value(inputs.get("scheduler"), "scheduler"))
    denoise = collector.to_number("denoise", tracer.value(inputs.get("denoise", 1.0), "denoise"))
    start = tracer.value(inputs.get("start_at_step", 0), "start_at_step")
    if advanced and collector.to_number("start_at_step", start, int) > 0:
        raise tracer.fail("the first KSamplerAdvanced starts at a later step")
    if "init_img" in collector.changes:
        collector.changes["strength"] = denoise
    elif denoise < 1.0:
        collector.skip(f"denoise {denoise:g} on an empty latent")
    prompt = translate(positive, negative, style="comfyui", and_parts=False)
    collector.changes["prompt"] = prompt.prompt
    for what in prompt.unrun:
        collector.skip(what)
    for extra in later:
        extra_inputs = tracer.inputs(extra)
        if extra.get("class_type") == "KSamplerAdvanced":
            start = tracer.value(extra_inputs.get("start_at_step", 0), "start_at_step")
            total = tracer.value(extra_inputs.get("steps"), "steps")
            where = f"from step {start} of {total}"
        else:
            where = f"at denoise {tracer.value(extra_inputs.get('denoise', 1.0), 'denoise')}"
        collector.skip(f"a second sampler pass (hires fix / refiner) {where}")
    _features(tracer, collector)
    note = lost_note(prompt.lost, "ComfyUI")
    if note:
        collector.notes.append(note)
    return collector.finish()
