"""Opt-in accelerators that change pixels: ``--deepcache N`` and ``--tome R``.

Both wrap or patch the UNet for one image only, and keep its call shape
``unet(x, t, encoder_hidden_states=context, return_dict=False) -> (prediction,)``, so guidance,
the inpainting adapter and the loop work unchanged and know nothing of them.

* DeepCache (Ma, Fang and Wang 2023, arXiv 2312.00858): the deep features of the UNet change
  slowly from step to step.  Every N-th UNet call runs the whole UNet and caches the input of the
  last layer of the last up block (the features that come up from the deep part, before they are
  joined with the outermost skip branch, the ``conv_in`` output: the paper's branch 0).  The
  calls between run only the shallow path: ``conv_in``, that last up-block layer on the cached
  features, and the output convolution.  N counts UNet calls (one per step for the one-call
  samplers; Heun and DPM2 call twice per step).  N = 1 is the plain UNet.
* ToMe for SD (Bolya and Hoffman 2023), through the ``tomesd`` package: merges a fraction R of the
  image tokens before the self-attention of the full-resolution transformer blocks and unmerges
  them after.  Its random choice of merge targets comes from a generator seeded by the image's
  seed, so an image is reproducible by seed.  R = 0 leaves the UNet untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from dreamline.request import Request, RequestError

TOME_MAX_DOWNSAMPLE = 1  # tomesd's default: only the full-resolution transformer blocks


def check_accelerators(unet: Any, request: Request) -> None:
    """Raise RequestError (one line) when this UNet cannot run the request's accelerators:
    ``--deepcache`` needs an SD 1.x/2.x-shaped UNet2DConditionModel, ``--tome`` the ``tomesd``
    package."""
    if request.deepcache > 1:
        why = _deepcache_refusal(unet)
        if why is not None:
            raise RequestError(f"--deepcache {request.deepcache}: {why}; expected no --deepcache "
                               "with this model")
    if request.tome > 0:
        try:
            import tomesd  # noqa: F401  (a dependency; checked so a broken install is one line)
        except ImportError:
            raise RequestError(f"--tome {request.tome!r}: needs the tomesd package, which is not "
                               "installed; expected `pip install tomesd`, or no --tome") from None


def _deepcache_refusal(unet: Any) -> str | None:
    """Why DeepCache cannot wrap ``unet`` (None: it can)."""
    config = getattr(unet, "config", None)
    blocks = getattr(unet, "up_blocks", None)
    if config is None or blocks is None or not hasattr(unet, "conv_in"):
        return "the UNet is not a diffusers UNet2DConditionModel"
    extras = [name for name in ("class_embed_type", "addition_embed_type", "encoder_hid_dim_type",
                                "time_embedding_act_fn")
              if getattr(config, name, None) is not None]
    if extras or getattr(config, "center_input_sample", False):
        return f"the UNet uses {', '.join(extras) or 'center_input_sample'}, which it cannot skip"
    last = blocks[-1]
    if getattr(last, "upsamplers", None) is not None or not hasattr(last, "resnets"):
        return "the UNet's last up block is not SD-shaped"
    return None


class DeepCacheUNet:
    """The UNet with DeepCache: a full call every ``interval`` calls, the shallow path between.

    Call shape: ``(x (n, c, h, w), t, encoder_hidden_states (n, 77, dim), return_dict=False)
    -> ((n, 4, h, w),)``.  A call whose batch, size or dtype differs from the cached features'
    runs in full.  Make one per image (its first call is always full).
    """

    def __init__(self, unet: Any, interval: int) -> None:
        self.unet = unet
        self.interval = interval
        self.calls = 0
        self.full_calls = 0
        self._cached: torch.Tensor | None = None
        last = unet.up_blocks[-1]
        self._resnet = last.resnets[-1]
        attentions = getattr(last, "attentions", None)
        self._attention = attentions[-1] if attentions else None
        self._skip_channels = int(unet.conv_in.out_channels)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *, encoder_hidden_states: torch.Tensor,
                 return_dict: bool = False) -> tuple[torch.Tensor]:
        full = (self.calls % self.interval == 0 or self._cached is None
                or self._cached.shape[0] != x.shape[0] or self._cached.dtype != x.dtype
                or self._cached.shape[-2:] != x.shape[-2:])
        self.calls += 1
        if full:
            self.full_calls += 1
            return (self._full(x, t, encoder_hidden_states),)
        return (self._shallow(x, t, encoder_hidden_states),)

    def _full(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The whole UNet, keeping the deep features that enter the last up-block layer."""

        def keep(_module: Any, args: tuple[Any, ...]) -> None:
            joined = args[0]  # torch.cat([deep features, conv_in skip], dim=1)
            self._cached = joined[:, :joined.shape[1] - self._skip_channels].clone()

        handle = self._resnet.register_forward_pre_hook(keep)
        try:
            return self.unet(x, t, encoder_hidden_states=context, return_dict=False)[0]
        finally:
            handle.remove()

    def _shallow(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """conv_in, the last up-block layer on the cached deep features, the output convs
        (the same operations as UNet2DConditionModel.forward for these layers)."""
        unet = self.unet
        emb = unet.time_embedding(unet.get_time_embed(sample=x, timestep=t), None)
        skip = unet.conv_in(x)
        assert self._cached is not None  # a full call came first (see __call__)
        hidden = self._resnet(torch.cat([self._cached, skip], dim=1), emb)
        if self._attention is not None:
            hidden = self._attention(hidden, encoder_hidden_states=context,
                                     return_dict=False)[0]
        if unet.conv_norm_out is not None:
            hidden = unet.conv_act(unet.conv_norm_out(hidden))
        return unet.conv_out(hidden)


@contextmanager
def accelerated_unet(unet: Any, request: Request, seed: int) -> Iterator[Any]:
    """The UNet callable for one image of ``request``: plain, with ToMe patched in for the
    duration (removed on exit, even on an error or Ctrl-C), and/or wrapped in DeepCache.

    ``seed``: the image's seed; ToMe's random merge targets are drawn from a generator seeded
    with it.  Raises RequestError as ``check_accelerators`` does.
    """
    check_accelerators(unet, request)
    if request.tome <= 0:
        yield DeepCacheUNet(unet, request.deepcache) if request.deepcache > 1 else unet
        return
    import tomesd

    tomesd.apply_patch(unet, ratio=float(request.tome), max_downsample=TOME_MAX_DOWNSAMPLE)
    try:
        device = next(unet.parameters()).device
        # tomesd forks the global RNG when it has no generator: give it one of this image.
        unet._tome_info["args"]["generator"] = torch.Generator(device=device).manual_seed(seed)
        yield DeepCacheUNet(unet, request.deepcache) if request.deepcache > 1 else unet
    finally:
        tomesd.remove_patch(unet)  # restores the blocks' classes and removes its hook
        for module in unet.modules():  # and its bookkeeping, which it leaves behind
            if "_tome_info" in vars(module):
                del module._tome_info
