"""What a single file holds, from its key names (and one shape), before any weights are read.

``sd1_problem`` answers "is this a whole SD 1.x checkpoint in the original CompVis layout?"
and, when it is not, names what the file is instead (a LoRA, an embedding, a VAE, an inpainting
UNet, SDXL, SD 2.x, one diffusers part) and what to do with it.  Pure key logic: no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX_OLD = "cond_stage_model.transformer."  # with or without a "text_model." level
REQUIRED_PREFIXES: dict[str, str] = {
    UNET_PREFIX: "UNet", VAE_PREFIX: "VAE", TEXT_PREFIX_OLD: "CLIP text encoder",
}
UNET_FIRST_CONV = UNET_PREFIX + "input_blocks.0.0.weight"
V_PRED_KEY = "v_pred"  # an empty tensor some v-prediction fine-tunes carry as a marker

WHOLE_MODEL = "give dreamline a whole SD 1.x checkpoint"
HOW_TO_GIVE_VAE = ("give a VAE with --vae PATH, a 'vae:' field in its models.yaml entry, or a "
                   "sidecar file <checkpoint>.vae.safetensors (.vae.pt, .vae.ckpt) beside it")
_EMBEDDING_KEYS = ("string_to_param", "string_to_token", "emb_params", "clip_l")
_VAE_STARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_DIFFUSERS_PART_STARTS = ("down_blocks.", "encoder.down_blocks.", "text_model.",
                          "embeddings.token_embedding", "unet.", "text_encoder.")


def _is_lora(keys: Sequence[str]) -> bool:
    return any("lora" in key.lower() for key in keys)


def _is_embedding(keys: Sequence[str]) -> bool:
    """A1111/textual-inversion embeddings: string_to_param dicts or emb_params tensors."""
    return any(key in _EMBEDDING_KEYS for key in keys) and not any(
        key.startswith(UNET_PREFIX) for key in keys)


def _is_vae(keys: Sequence[str]) -> bool:
    return (all(key.startswith(_VAE_STARTS + (VAE_PREFIX,)) for key in keys)
            and any(key.startswith(("encoder.", "decoder.", VAE_PREFIX + "encoder.",
                                    VAE_PREFIX + "decoder.")) for key in keys))


def sd1_problem(keys: Iterable[str], first_conv_shape: Sequence[int] | None = None, *,
                vae_given: bool = False) -> str | None:
    """Why a file with these top-level keys is not a whole SD 1.x model, or None if it is.

    ``keys``: every top-level key (tensors and other values); ``first_conv_shape``: the shape of
    the UNet's first convolution when the file has one ([out, in, 3, 3]; in = 9: inpainting).
    ``vae_given``: a VAE comes from elsewhere, so a file without one (a "no-VAE" download) is
    whole.
    """
    keys = [key for key in keys if key != V_PRED_KEY]
    if _is_embedding(keys):
        return ("it is a textual-inversion embedding (a learned word), not a model; load it "
                "with --embedding_path (or put it in the embeddings/ folder beside the models "
                f"file) and write its name in the prompt; {WHOLE_MODEL}")
    if _is_lora(keys):
        return ("it is a LoRA (changes to apply to a model), not a whole model; put it in the "
                f"loras folder and use <lora:name:weight> in a prompt or --lora: {WHOLE_MODEL}")
    if not keys:
        return f"it holds no tensors; {WHOLE_MODEL}"
    if any(key.startswith("conditioner.embedders.") for key in keys):
        return "it looks like an SDXL checkpoint; only SD 1.x models are supported"
    if any(key.startswith("cond_stage_model.model.") for key in keys):
        return ("it looks like an SD 2.x checkpoint (OpenCLIP text encoder); only SD 1.x models "
                "are supported")
    if _is_vae(keys):
        return (f"it is a VAE alone (the image decoder), not a whole model; {WHOLE_MODEL} (its "
                f"own VAE is used)")
    if any(key.startswith(_DIFFUSERS_PART_STARTS) for key in keys):
        return ("it holds a single diffusers part, not a whole model; give the diffusers folder "
                "that holds model_index.json instead")
    if (first_conv_shape is not None and len(first_conv_shape) == 4
            and first_conv_shape[1] not in (4, 9)):
        return (f"it is a UNet with {first_conv_shape[1]} input channels; expected an SD 1.x "
                f"model with 4 (an image model) or 9 (an inpainting model)")
    missing = [f"{prefix}* ({part})" for prefix, part in REQUIRED_PREFIXES.items()
               if not any(key.startswith(prefix) for key in keys)]
    if missing == [f"{VAE_PREFIX}* (VAE)"]:
        if vae_given:
            return None
        return (f"it has no {VAE_PREFIX}* (VAE) keys: a checkpoint shipped without its VAE; "
                f"{HOW_TO_GIVE_VAE}")
    if missing:
        return (f"it has no {', no '.join(missing)} keys; expected an SD 1.x checkpoint in the "
                f"CompVis layout")
    return None
