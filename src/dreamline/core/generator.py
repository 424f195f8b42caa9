"""The Generator: one validated Request (and, for img2img, the init image's pixels) in,
finished images out, one at a time.  The caller opens and hashes the init file
(dreamline.init_input); the core never reads paths and, by default, never prints.

Per image: seed a CPU generator; for img2img draw the init latent sample first and then the noise
(diffusers' draw order, so our results equal its pipelines'); blend -V/-v variation noise; slice
the schedule by strength; run the loop on the guided noise prediction; decode.  Everything random
comes from that image's generator, so the request returned with each image reproduces it.

A Generator lives as long as its model is loaded (one per model in the REPL), so it keeps what
would otherwise be recomputed line after line (dreamline.core.cache): each text's encoding (per
LoRA set) and each init picture's encoder Gaussian (the sample is still drawn per image).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from PIL import Image

from dreamline.core import latents as latent_ops
from dreamline.core.accelerators import accelerated_unet, check_accelerators
from dreamline.core.cache import INIT_ENTRIES, InitCache
from dreamline.core.compiled import Compile, CompiledUNet
from dreamline.core.conditioning import Conditioning, TextEncoder
from dreamline.core.guidance import GuidedNoise, UNetNoise
from dreamline.core.inpaint_unet import InpaintCondition, InpaintUNetNoise, is_inpainting
from dreamline.core.loop import OnStep, sample
from dreamline.core.noise import (
    blend_variations,
    derive_seed,
    draw_noise,
    resolve_seed,
    seeded_generator,
)
from dreamline.core.schedule import Schedule, make_scheduler
from dreamline.core.types import GeneratedImage, RunInfo, StartInfo
from dreamline.images import mask_to_latent, paste_kept
from dreamline.init_input import PreparedInit
from dreamline.models.embeddings import EmbeddingSet
from dreamline.lora_tags import strip_lora_tags
from dreamline.models.lora import LoraLibrary, use_loras
from dreamline.models.types import LoadedModel
from dreamline.image_sizes import floor_side
from dreamline.request import Request, steps_to_run, validate
from dreamline.plural import counted

Report = Callable[[str], None]
OnStart = Callable[[StartInfo], None]
LATENT_CHANNELS = 4


def _silent(_line: str) -> None:
    """The default report: the core prints nothing unless its caller asks."""


@dataclass
class _Init:
    """The caller's prepared init image, its encoder output and its latent-size mask."""

    prepared: PreparedInit
    dist: latent_ops.LatentDistribution | None  # None when nothing needs the init latents
    keep: torch.Tensor | None  # latent-size mask, 1 = keep


@dataclass(frozen=True)
class _Plan:
    """What one image of a command uses: its generator seed and how its noise is blended."""

    seed: int  # seeds the image's generator (the original seed for -v variations)
    file_seed: int  # names the file: own seed, or the variation seed
    variations: tuple[tuple[int, float], ...]  # -V list, extended by (variation seed, amount)


class Generator:
    """Turns requests into images with one loaded model.

    ``report`` gets one-line messages (img2img's start step, floored sizes, long prompts'
    chunks); None keeps the core silent.  ``embeddings``: textual-inversion words the prompts may
    use (dreamline.models.embeddings.EmbeddingSet; None: none).  ``loras`` finds and caches the
    LoRA files a request names (None: a library of paths only, no folder).  ``compile_unet``
    (--compile): True runs the UNet through torch.compile (dreamline.core.compiled; a callable
    stands in for torch.compile), False the plain UNet.
    """

    def __init__(self, model: LoadedModel, *, report: Report | None = None,
                 embeddings: EmbeddingSet | None = None,
                 loras: LoraLibrary | None = None,
                 compile_unet: bool | Compile = False) -> None:
        self.model = model
        self.report: Report = report if report is not None else _silent
        self.embeddings = embeddings
        self.loras = loras if loras is not None else LoraLibrary(None)
        self.text = TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                                self.report, embeddings=embeddings)
        self._preview_map: latent_ops.PreviewMap | None = None  # fitted on first use
        self.init_cache = InitCache(INIT_ENTRIES)  # each init picture's encoder Gaussian
        self.compiled: CompiledUNet | None = None
        if compile_unet is not False:
            self.compiled = CompiledUNet(model.unet, self.report, compile_with=(
                None if compile_unet is True else compile_unet))

    # --- public -------------------------------------------------------------------------------

    def generate(self, request: Request, *, init: PreparedInit | None = None,
                 on_step: OnStep | None = None, on_start: OnStart | None = None
                 ) -> list[GeneratedImage]:
        """All images of ``request`` (see ``iter_generate``)."""
        return list(self.iter_generate(request, init=init, on_step=on_step, on_start=on_start))

    def iter_generate(self, request: Request, *, init: PreparedInit | None = None,
                      on_step: OnStep | None = None, on_start: OnStart | None = None,
                      first: int = 0) -> Iterator[GeneratedImage]:
        """Yield each image as soon as it is done, so an interrupt keeps the finished ones.

        ``init`` is the init image the caller prepared (dreamline.init_input.prepare_init) for
        an img2img request, None for txt2img; its sides must be multiples of the model's
        ``size_multiple``.  ``on_start`` sees each image's starting latents, ``on_step`` each
        finished step.  ``first``: the index of the first image to make (a retry after running
        out of memory makes only the images not yet made; each keeps its seed).
        Raises RequestError for a request this model cannot run, ValueError
        for an img2img request without ``init`` (or a txt2img one with it).
        """
        request = validate(request)
        self._check_init(request, init)
        check_accelerators(self.model.unet, request)
        # Built once per command (DPM2's takes a noticeable time); each image gets a copy, so
        # it still starts from a fresh scheduler state.
        scheduler = make_scheduler(request.sampler, self.model.scheduler_config,
                                   schedule=request.sigma_schedule,
                                   prediction_type=self.model.prediction_type)
        seed = resolve_seed(request.seed)
        # Every line sets the LoRAs it uses (none: the plain model), before any encoding.
        chosen = [(self.loras.get(name), weight) for name, weight in request.all_loras]
        use_loras(self.model, chosen, self.report)
        lora_info = tuple((lora.name, weight, lora.a1111_hash or lora.short_hash)
                          for lora, weight in chosen)  # A1111's LoRA hash: its "Lora hashes"
        # the text encoder's weights: an adapter name stands for its file's content
        text_weights = tuple((lora.adapter, float(weight)) for lora, weight in chosen)
        with torch.inference_mode():
            cond = self.text.conditioning(strip_lora_tags(request.prompt),
                                          normalize=not request.skip_normalize,
                                          log_tokens=request.log_tokenization,
                                          weights=text_weights)
            encoded = self._encode_init(request, init) if init is not None else None
        if encoded is not None:
            width, height = encoded.prepared.image.size
            t_enc = steps_to_run(request.strength, request.steps)
            self.report(f"starting at step {request.steps - t_enc} of {request.steps} "
                        f"({counted(t_enc, 'new sampling step')})")
        else:
            multiple = self.model.size_multiple
            width = floor_side("-W/--width", request.width if request.width is not None
                               else self.model.default_width, multiple, self.report)
            height = floor_side("-H/--height", request.height if request.height is not None
                                else self.model.default_height, multiple, self.report)
        inpaint = None
        if is_inpainting(self.model.unet):  # 9-channel UNet: mask and masked image as inputs
            with torch.inference_mode():
                inpaint = InpaintCondition.build(
                    self.model.vae, encoded.prepared.image.image if encoded else None,
                    encoded.prepared.image.mask if encoded else None, (width, height),
                    self.model.vae_scale_factor)
        for index in range(first, request.iterations):
            plan = self._plan(request, seed, index)
            with torch.inference_mode():
                image = self._one(request, plan, cond, encoded, width, height, scheduler,
                                  on_step, on_start, inpaint)
            yield replace(image, info=replace(image.info, loras=lora_info,
                                              vae_name=self.model.vae_name,
                                              vae_hash=self.model.vae_hash))

    def decode(self, latents: torch.Tensor) -> Image.Image:
        """Full VAE decode of loop latents (e.g. an intermediate from StepInfo)."""
        with torch.inference_mode():
            return latent_ops.decode(self.model.vae, latents, report=self.report)

    @property
    def preview_map(self) -> latent_ops.PreviewMap:
        """This model's linear latent -> RGB map, fitted from its own VAE on first use (a fixed
        SD 1.x matrix is wrong for other VAEs, e.g. the demo model's)."""
        if self._preview_map is None:
            self._preview_map = latent_ops.fit_preview_map(self.model.vae,
                                                           self.model.vae_scale_factor)
        return self._preview_map

    def preview(self, latents: torch.Tensor) -> Image.Image:
        """A cheap RGB estimate of loop latents at the image's size (nearest-neighbour cells)."""
        return latent_ops.latents_to_preview_rgb(latents, self.preview_map)

    # --- one command ----------------------------------------------------------------------------

    def _check_init(self, request: Request, init: PreparedInit | None) -> None:
        """The caller's contract: an img2img request comes with its prepared init image."""
        if request.is_img2img and init is None:
            raise ValueError(f"img2img request (-I {request.init_img!r}) without its init image; "
                             "pass init=prepare_init(request, ...)")
        if init is not None and not request.is_img2img:
            raise ValueError("an init image was given for a txt2img request (no -I)")
        if init is not None:
            multiple = self.model.size_multiple
            width, height = init.image.size
            if width % multiple or height % multiple or width == 0 or height == 0:
                raise ValueError(f"init image is {width}x{height}; expected sides that are "
                                 f"multiples of {multiple} (prepare_init floors them)")

    def _encode_init(self, request: Request, init: PreparedInit) -> _Init:
        """Encode the init image once per command (only when its latents are used)."""
        keep = None  # an inpainting UNet repaints by its own inputs: no kept-region blending
        if init.image.mask is not None and not is_inpainting(self.model.unet):
            small = mask_to_latent(init.image.mask, self.model.vae_scale_factor)
            keep = torch.from_numpy(small)[None, None].to(self.model.device, self.model.dtype)
        needs_latents = request.strength < 1.0 or keep is not None
        dist = (self.init_cache.distribution(self.model.vae, init.image.image)
                if needs_latents else None)
        return _Init(prepared=init, dist=dist, keep=keep)

    @staticmethod
    def _plan(request: Request, seed: int, index: int) -> _Plan:
        """Image ``index``'s seeds: -n gives each image its own seed, -v its own variation."""
        if request.variation_amount > 0:
            variation_seed = derive_seed(seed, index, "variation")
            extended = request.with_variations + ((variation_seed, request.variation_amount),)
            return _Plan(seed=seed, file_seed=variation_seed, variations=extended)
        own = derive_seed(seed, index, "image")
        return _Plan(seed=own, file_seed=own, variations=request.with_variations)

    def _one(self, request: Request, plan: _Plan, cond: Conditioning, init: _Init | None,
             width: int, height: int, built: tuple[Any, str], on_step: OnStep | None,
             on_start: OnStart | None, inpaint: InpaintCondition | None = None
             ) -> GeneratedImage:
        started = time.perf_counter()
        model = self.model
        factor = model.vae_scale_factor
        shape = (1, LATENT_CHANNELS, height // factor, width // factor)
        generator = seeded_generator(plan.seed)

        # Draw order matters: the init latent sample first, then the noise (as diffusers does).
        init_latents = None
        if init is not None and init.dist is not None:
            init_latents = init.dist.sample(generator, model.scaling_factor).to(model.dtype)
        noise = draw_noise(generator, shape, model.device, model.dtype)
        noise = blend_variations(noise, plan.variations)

        scheduler, schedule_name = copy.deepcopy(built[0]), built[1]  # a fresh state per image
        schedule = Schedule.full(scheduler, request.sampler, request.steps,
                                 schedule=schedule_name, device=model.device)
        strength = request.strength if init is not None else None
        if init_latents is not None and request.strength < 1.0:
            schedule = schedule.sliced(steps_to_run(request.strength, request.steps))
            x = schedule.noise_init(init_latents, noise)
        else:
            x = schedule.pure_noise(noise)

        after_step = None
        if init is not None and init.keep is not None and init_latents is not None:
            after_step = self._keep_region(schedule, init_latents, noise, init.keep)

        with latent_ops.seamless(model.unet, model.vae, enabled=request.seamless), \
                accelerated_unet(model.unet, request, plan.seed) as accelerated:
            # --deepcache/--tome wrap or patch the plain UNet; otherwise --compile's may run
            unet = self._unet(request) if accelerated is model.unet else accelerated
            unet_noise = UNetNoise(unet)
            if inpaint is not None:  # its masked-image latents are drawn after the noise
                unet_noise = InpaintUNetNoise(unet, inpaint.channels(
                    generator, model.scaling_factor, model.dtype))
            predict_noise = GuidedNoise(unet_noise, cond.cond, cond.uncond,
                                        float(request.cfg_scale))
            if on_start is not None:
                on_start(self._start_info(schedule, x))
            x = sample(predict_noise, x, schedule, generator=generator, on_step=on_step,
                       after_step=after_step)
            image = latent_ops.decode(model.vae, x, report=self.report)
        if init is not None and init.prepared.image.mask is not None:
            image = paste_kept(image, init.prepared.image)

        fit_box_kept = init is not None and request.fit
        exact = replace(
            request, seed=plan.seed, iterations=1, variation_amount=0.0,
            with_variations=plan.variations,
            width=request.width if fit_box_kept else width,
            height=request.height if fit_box_kept else height)
        info = RunInfo(
            sampler=request.sampler, schedule=schedule_name, width=width, height=height,
            steps=request.steps, steps_run=schedule.steps_run, start_step=schedule.start_step,
            strength=strength, init_img=request.init_img,
            init_hash=init.prepared.short_hash if init is not None else None,
            model_name=model.name, model_hash=model.short_hash,
            seconds=time.perf_counter() - started,
            variation_seed=plan.file_seed if request.variation_amount > 0 else None,
            prediction_type=schedule.prediction_type,
            embeddings=self._embedding_hashes(cond.embeddings))
        return GeneratedImage(image=image, seed=plan.file_seed, request=exact, info=info)

    def _embedding_hashes(self, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """(name, short hash) of each embedding the prompt used, for the metadata."""
        if self.embeddings is None:
            return ()
        found = [self.embeddings.get(name) for name in names]
        return tuple((item.name, item.short_hash) for item in found if item is not None)

    def _unet(self, request: Request) -> Any:
        """The compiled UNet (--compile), except for lines that change its modules in place."""
        if self.compiled is None:
            return self.model.unet
        if request.seamless or request.all_loras:
            self.report("--compile: this line runs the plain UNet (--seamless and LoRAs change "
                        "its layers)")
            return self.model.unet
        return self.compiled

    @staticmethod
    def _start_info(schedule: Schedule, x: torch.Tensor) -> StartInfo:
        """What the sampler starts from, at the noise level of the first timestep run."""
        sigma = float(schedule.start_sigma()) if schedule.uses_sigmas else None
        return StartInfo(start_step=schedule.start_step, steps=schedule.steps,
                         steps_run=schedule.steps_run, sigma=sigma, latents=x)

    @staticmethod
    def _keep_region(schedule: Schedule, init_latents: torch.Tensor, noise: torch.Tensor,
                     keep: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """Inpainting: after each scheduler call, put back the kept region noised to the level
        the next call expects (the clean init latents after the last call)."""

        def put_back(x: torch.Tensor, call: int) -> torch.Tensor:
            kept = schedule.noised_for_next_call(init_latents, noise, call)
            return keep * kept + (1 - keep) * x

        return put_back
